"""``nn.init``: in-place initialisers, PyTorch's formulas, from one seedable generator.

``nn.init.manual_seed(s)`` makes every default initialisation (and ``Dropout``) repeatable;
each function also takes its own ``generator=``.
"""
import math

import numpy as np

__all__ = ["manual_seed", "default_generator", "calculate_gain", "uniform_", "normal_",
           "constant_", "zeros_", "ones_", "xavier_uniform_", "xavier_normal_",
           "kaiming_uniform_", "kaiming_normal_"]

_state = {"rng": np.random.default_rng(0)}


def manual_seed(seed):
    """Re-seed the generator behind default initialisations and dropout."""
    _state["rng"] = np.random.default_rng(seed)


def default_generator():
    return _state["rng"]


def _rng(generator):
    return generator if generator is not None else _state["rng"]


def _set(p, values):
    v = getattr(p, "value", p)
    v[...] = values
    return p


def _fans(p):
    shape = np.shape(getattr(p, "value", p))
    if len(shape) < 2:
        raise ValueError("fan in and fan out need a tensor of at least 2 dimensions")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gains: tanh 5/3, relu √2, leaky_relu √(2/(1+a²)), selu 3/4."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def uniform_(p, a=0.0, b=1.0, generator=None):
    return _set(p, _rng(generator).uniform(a, b, np.shape(getattr(p, "value", p))))


def normal_(p, mean=0.0, std=1.0, generator=None):
    return _set(p, _rng(generator).normal(mean, std, np.shape(getattr(p, "value", p))))


def constant_(p, val):
    return _set(p, val)


def zeros_(p):
    return _set(p, 0.0)


def ones_(p):
    return _set(p, 1.0)


def xavier_uniform_(p, gain=1.0, generator=None):
    fan_in, fan_out = _fans(p)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(p, -a, a, generator)


def xavier_normal_(p, gain=1.0, generator=None):
    fan_in, fan_out = _fans(p)
    return normal_(p, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(p, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    fan = _fans(p)[0 if mode == "fan_in" else 1]
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(p, -bound, bound, generator)


def kaiming_normal_(p, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    fan = _fans(p)[0 if mode == "fan_in" else 1]
    return normal_(p, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(fan), generator)
