"""``nn.functional``: activations and losses as compositions of the engine's primitives.

Every function takes NumPy arrays or tracked values and is differentiable to any order.
Stable forms where the naive one overflows: ``sigmoid(x) = (1 + tanh(x/2))/2``,
``softplus(x) = max(x, 0) + log1p(exp(-|x|))``, ``log_softmax`` is a primitive, and the
logits losses never exponentiate a large number.
"""
import math

import numpy as np
from scipy.special import erf

from autodiff.ops.linalg import linear_p
from autodiff.ops.softmax import log_softmax as _log_softmax
from autodiff.ops.softmax import logsumexp, softmax_cross_entropy

__all__ = ["linear", "relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid", "softplus",
           "softmax", "log_softmax", "dropout", "mse_loss", "l1_loss", "huber_loss",
           "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "logsumexp"]


# ----- Layers as functions -----
def linear(x, weight, bias=None):
    """``x Wᵀ + b`` with ``W`` of shape (out_features, in_features), as PyTorch."""
    if bias is None:
        return x @ weight.T
    return linear_p(x, weight, bias)


def dropout(x, p=0.5, training=True, rng=None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training)."""
    if not training or p == 0.0:
        return x
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    rng = rng if rng is not None else np.random.default_rng()
    keep = rng.random(np.shape(x)) >= p
    return x * (keep / (1.0 - p)).astype(np.result_type(getattr(x, "dtype", np.float64)))


# ----- Activations -----
def relu(x):
    """max(x, 0), with relu'(0) = 0 (PyTorch's and JAX's choice)."""
    return np.where(x > 0, x, 0.0)


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, negative_slope * x)


def elu(x, alpha=1.0):
    # expm1 of min(x, 0): the unused branch never overflows, so its derivative is no NaN.
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def gelu(x, approximate="none"):
    """x Φ(x); ``approximate="tanh"`` for PyTorch's tanh form."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if approximate != "none":
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def tanh(x):
    return np.tanh(x)


def sigmoid(x):
    """1 / (1 + e^{-x}) written as (1 + tanh(x/2)) / 2: no overflow for any x."""
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def softplus(x, beta=1.0):
    """log(1 + e^{βx}) / β, stable for large |x|."""
    bx = beta * x
    out = np.maximum(bx, 0.0) + np.log1p(np.exp(-np.abs(bx)))
    return out if beta == 1.0 else out / beta


def log_softmax(x, dim=-1):
    return _log_softmax(x, axis=dim)


def softmax(x, dim=-1):
    return np.exp(_log_softmax(x, axis=dim))


# ----- Losses -----
def _reduce(loss, reduction):
    if reduction == "mean":
        return np.mean(loss)
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mse_loss(input, target, reduction="mean"):
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    return _reduce(np.abs(input - target), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """½d² where |d| ≤ δ, δ(|d| - ½δ) beyond (PyTorch's ``huber_loss``)."""
    d = input - target
    a = np.abs(d)
    quad = np.minimum(a, delta)
    return _reduce(0.5 * quad * quad + delta * (a - quad), reduction)


def _labels(target, n_classes, what):
    target = np.asarray(getattr(target, "value", target))
    if target.dtype.kind not in "iu":
        raise TypeError(f"{what}: integer class labels expected, got dtype {target.dtype}")
    if target.size:
        lo, hi = np.min(target), np.max(target)
        if lo < 0 or hi >= n_classes:
            raise ValueError(f"{what}: labels must lie in [0, {n_classes}), got [{lo}, {hi}]")
    return target


def _pick(logp, target):
    """logp[n, target[n], ...] for class axis 1 (PyTorch's layout (N, C, d1, …))."""
    idx = np.expand_dims(target, 1)
    onehot = np.arange(logp.shape[1]).reshape((1, -1) + (1,) * (logp.ndim - 2)) == idx
    return np.sum(logp * onehot, axis=1)


def nll_loss(input, target, weight=None, reduction="mean"):
    """Negative log-likelihood of integer labels given log-probabilities (class axis 1)."""
    target = _labels(target, input.shape[1], "nll_loss")
    loss = -_pick(input, target)
    if weight is None:
        return _reduce(loss, reduction)
    w = np.asarray(weight)[target]
    loss = loss * w
    return np.sum(loss) / np.sum(w) if reduction == "mean" else _reduce(loss, reduction)


def cross_entropy(input, target, weight=None, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits ``input`` (N, C, …) against integer labels (N, …)
    or class probabilities (N, C, …), with PyTorch's ``weight`` and ``label_smoothing``.

    One primitive (``softmax_cross_entropy``) computes ``-Σ_c y_c log softmax(x)_c`` per
    sample from the logits, stably; labels become the class weights ``y`` here.
    """
    if input.ndim == 1:
        t = np.asarray(getattr(target, "value", target))
        return cross_entropy(input[None], target[None] if t.dtype.kind == "f" else t[None],
                             weight, reduction, label_smoothing)
    n_classes = input.shape[1]
    shape = (1, n_classes) + (1,) * (input.ndim - 2)
    w = None if weight is None else np.asarray(weight, dtype=float).reshape(shape)
    t = getattr(target, "value", target)
    labels = None
    if np.asarray(t).dtype.kind == "f":                    # class probabilities
        y = target
    else:
        labels = _labels(t, n_classes, "cross_entropy")
        # One-hot in the logits' dtype: a float32 model must stay float32 end to end.
        y = np.eye(n_classes, dtype=np.result_type(getattr(input, "dtype", np.float64)))[labels]
        if input.ndim > 2:
            y = np.moveaxis(y, -1, 1)
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / n_classes
    if w is not None:
        y = y * w
    loss = softmax_cross_entropy(input, y, axis=1 - input.ndim)
    if reduction == "mean" and w is not None and labels is not None:
        # PyTorch divides by the summed weights of the targets' classes.
        return np.sum(loss) / np.sum(np.asarray(weight, dtype=float)[labels])
    return _reduce(loss, reduction)


def binary_cross_entropy(input, target, reduction="mean"):
    """-(y log p + (1-y) log(1-p)) of probabilities ``input``; logs clamped at -100 as
    PyTorch does, so p = 0 or 1 gives a finite loss."""
    logp = np.maximum(np.log(input), -100.0)
    log1mp = np.maximum(np.log1p(-input), -100.0)
    return _reduce(-(target * logp + (1.0 - target) * log1mp), reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None):
    """The same from logits, stably: max(x, 0) - x·y + log(1 + e^{-|x|})."""
    if pos_weight is None:
        loss = np.maximum(input, 0.0) - input * target + np.log1p(np.exp(-np.abs(input)))
    else:
        log_sig = -softplus(-input)
        log_1m_sig = -softplus(input)
        loss = -(pos_weight * target * log_sig + (1.0 - target) * log_1m_sig)
    return _reduce(loss, reduction)


# ----- Convolution, pooling and normalisation (nn/conv.py, nn/norm.py) -----
from .conv import (avg_pool1d, avg_pool2d, conv1d, conv2d, conv_transpose2d,  # noqa: E402
                   max_pool1d, max_pool2d)
from .norm import batch_norm, layer_norm  # noqa: E402

__all__ += ["conv1d", "conv2d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
            "avg_pool2d", "batch_norm", "layer_norm"]
