"""``nn.init``: in-place initialisers, PyTorch's formulas, from one seedable generator.

``nn.init.manual_seed(s)`` makes every default initialisation (and ``Dropout``) repeatable;
each function also takes its own ``generator=``.
"""
import math

import numpy as np

__all__ = ["manual_seed", "default_generator", "calculate_gain", "uniform_", "normal_",
           "constant_", "zeros_", "ones_", "xavier_uniform_", "xavier_normal_",
           "kaiming_uniform_", "kaiming_normal_", "trunc_normal_", "orthogonal_", "eye_",
           "dirac_", "sparse_"]

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
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                        "conv_transpose2d", "conv_transpose3d", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is not None and (isinstance(param, bool) or
                                  not isinstance(param, (int, float))):
            raise ValueError(f"negative_slope {param} not a valid number")
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


def _fan(p, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', "
                         "'fan_out']")
    return _fans(p)[0 if mode == "fan_in" else 1]


def kaiming_uniform_(p, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(p, mode))
    return uniform_(p, -bound, bound, generator)


def kaiming_normal_(p, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    return normal_(p, 0.0, calculate_gain(nonlinearity, a) / math.sqrt(_fan(p, mode)),
                   generator)


def sparse_(p, sparsity, std=0.01, generator=None):
    """A 2-d parameter drawn from N(0, std²) with a ``sparsity`` fraction of each column's
    entries zeroed (``ceil(sparsity · rows)`` per column, at random rows; PyTorch's)."""
    shape = np.shape(getattr(p, "value", p))
    if len(shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = shape
    rng = _rng(generator)
    w = rng.normal(0.0, std, shape)
    zeros = int(math.ceil(sparsity * rows))
    for c in range(cols):
        w[rng.permutation(rows)[:zeros], c] = 0.0
    return _set(p, w)


def trunc_normal_(p, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Normal(mean, std²) cut to ``[a, b]`` (absolute bounds, PyTorch's), by the inverse
    CDF of a uniform draw between the bounds' probabilities."""
    from scipy.special import ndtr, ndtri
    lo, hi = ndtr((a - mean) / std), ndtr((b - mean) / std)
    u = _rng(generator).uniform(lo, hi, size=np.shape(getattr(p, "value", p)))
    return _set(p, np.clip(mean + std * ndtri(u), a, b))


def orthogonal_(p, gain=1.0, generator=None):
    """A (semi-)orthogonal matrix of the parameter's first axis by the product of the rest
    (PyTorch's): Q of the QR factorisation of a normal draw, its signs fixed by R's diagonal
    so the draw is uniform (Haar)."""
    shape = np.shape(getattr(p, "value", p))
    if len(shape) < 2:
        raise ValueError("orthogonal_ needs a tensor of at least 2 dimensions")
    rows, cols = shape[0], int(np.prod(shape[1:]))
    a = _rng(generator).standard_normal((rows, cols))
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _set(p, gain * q.reshape(shape))


def eye_(p):
    """The identity of a 2-d parameter (ones on the diagonal of a rectangular one)."""
    shape = np.shape(getattr(p, "value", p))
    if len(shape) != 2:
        raise ValueError("eye_ needs a 2-dimensional tensor")
    return _set(p, np.eye(*shape))


def dirac_(p, groups=1):
    """A convolution kernel (out, in, *k) that passes its input through: one at the centre
    of each kernel whose out and in channels match, per group (PyTorch's)."""
    shape = np.shape(getattr(p, "value", p))
    if len(shape) not in (3, 4, 5) or shape[0] % groups:
        raise ValueError("dirac_ needs a 3-, 4- or 5-d tensor whose first dimension is "
                         "divisible by groups")
    out = shape[0] // groups
    w = np.zeros(shape)
    centre = tuple(k // 2 for k in shape[2:])
    for g in range(groups):
        for d in range(min(out, shape[1])):
            w[(g * out + d, d) + centre] = 1.0
    return _set(p, w)
