"""``logsumexp`` and ``log_softmax``: primitives for stability, not speed.

Composed from ``exp``/``sum``/``log`` they overflow for large inputs; as primitives they
shift by the maximum first. With ``s = softmax(x) = exp(x - logsumexp(x))``:
``d logsumexp = Σ s·dx`` and ``d log_softmax = dx - Σ s·dx`` (sums along ``axis``).
"""
import numpy as np

from . import dependency
from .define import defprim, expand_to, norm_axes, reduce_axes
from ..core import ndim_of, shape_of


def _logsumexp(x, axis, keepdims):
    # Over an empty axis: log 0 = -inf, as scipy's (a max needs an initial value there).
    empty = {"initial": -np.inf} if 0 in shape_of(x) else {}
    m = np.max(x, axis=axis, keepdims=True, **empty)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax_of(ans, x, axis, keepdims):
    return np.exp(x - expand_to(ans, axis, keepdims))


logsumexp_p = defprim(
    "logsumexp", _logsumexp,
    jvp=(lambda t, ans, x, axis, keepdims: np.sum(
        t * _softmax_of(ans, x, axis, keepdims), axis=axis, keepdims=keepdims),),
    vjp=(lambda g, ans, x, axis, keepdims:
         expand_to(g, axis, keepdims) * _softmax_of(ans, x, axis, keepdims),), flops=5)


def _log_softmax(x, axis):
    return x - _logsumexp(x, axis, True)


log_softmax_p = defprim(
    "log_softmax", _log_softmax,
    jvp=(lambda t, ans, x, axis: t - np.sum(np.exp(ans) * t, axis=axis, keepdims=True),),
    vjp=(lambda g, ans, x, axis: g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True),),
    flops=6)


def logsumexp(a, axis=None, keepdims=False):
    """``log Σ exp(a)`` along ``axis``, computed without overflow (scipy.special's name)."""
    return logsumexp_p(a, axis=reduce_axes(axis, ndim_of(a)), keepdims=bool(keepdims))


def log_softmax(x, axis=None):
    """``x - logsumexp(x, axis, keepdims=True)`` (scipy.special's name and default axis)."""
    return log_softmax_p(x, axis=reduce_axes(axis, ndim_of(x)))


def softmax(x, axis=None):
    """``exp(log_softmax(x, axis))``."""
    return np.exp(log_softmax(x, axis))


# ----- Cross-entropy of logits -----
# ``softmax_cross_entropy(x, y, axis)`` = -Σ_c y_c log softmax(x)_c = lse(x)·Σy - Σ y·x, one
# value per sample. A primitive for stability and speed: no log of a probability, and one
# record where the composition takes five. ∂/∂x = softmax(x)·Σy - y, ∂/∂y = -log softmax(x).
def _sce(x, y, axis):
    lse = _logsumexp(x, axis, True)
    return np.sum(y * (lse - x), axis=axis)


def _sce_dx(ans, x, y, axis):
    lse = logsumexp_p(x, axis=axis, keepdims=True)
    return np.exp(x - lse) * np.sum(y, axis=axis, keepdims=True) - y


def _sce_dy(ans, x, y, axis):
    return logsumexp_p(x, axis=axis, keepdims=True) - x


softmax_cross_entropy_p = defprim(
    "softmax_cross_entropy", _sce,
    jvp=(lambda t, ans, x, y, axis: np.sum(t * _sce_dx(ans, x, y, axis), axis=axis),
         lambda t, ans, x, y, axis: np.sum(t * _sce_dy(ans, x, y, axis), axis=axis)),
    vjp=(lambda g, ans, x, y, axis: expand_to(g, axis, False) * _sce_dx(ans, x, y, axis),
         lambda g, ans, x, y, axis: expand_to(g, axis, False) * _sce_dy(ans, x, y, axis)),
    flops=8)


def softmax_cross_entropy(x, y, axis=-1):
    """Per-sample cross-entropy of logits ``x`` against class weights ``y`` along ``axis``."""
    return softmax_cross_entropy_p(x, y, axis=norm_axes(axis, ndim_of(x)))


# Dependency structure (the sparsity mode): reductions over ``axis``; log_softmax keeps the
# shape, each element depending on its whole slice.
logsumexp_p.sparsity = dependency.reduction
softmax_cross_entropy_p.sparsity = dependency.reduction
log_softmax_p.sparsity = dependency.slices
