"""``clip_grad_norm_`` and ``clip_grad_value_``: PyTorch's gradient clipping, on the
parameters' ``.grad`` arrays."""
import math

import numpy as np

from .optimizer import _param_list

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale all gradients together so their joint norm is at most ``max_norm``; returns
    the total norm before clipping, as PyTorch's ``clip_grad_norm_``.

    ``parameters``: one parameter or any iterable (a generator such as
    ``model.parameters()`` is read once). The total is the ``norm_type``-norm of the
    per-parameter norms (``inf``: the largest |g|); every gradient is multiplied by
    ``min(max_norm / (total + 1e-6), 1)``. A non-finite total raises when
    ``error_if_nonfinite``, else scales by it (NaN gradients stay visible). ``foreach`` is
    accepted and ignored.
    """
    params = _param_list(parameters, "clip_grad_norm_")
    max_norm, norm_type = float(max_norm), float(norm_type)
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return np.float64(0.0)
    norms = np.array([_norm(p.grad, norm_type) for p in with_grad])
    total = float(np.linalg.norm(norms, ord=norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"non-finite ({total}), so it cannot be clipped; set error_if_nonfinite=False to "
            "scale the gradients by it anyway")
    coef = min(max_norm / (total + 1e-6), 1.0) if not math.isnan(total) else math.nan
    if coef != 1.0:
        for p in with_grad:
            p.grad = p.grad * coef           # a Python float keeps float32 gradients float32
    # a NumPy scalar in the gradients' dtype: PyTorch returns a 0-d tensor (``.item()``)
    return np.asarray(total, dtype=np.result_type(*[_dtype(p.grad) for p in with_grad]))[()]


def _dtype(g):
    return getattr(g, "dtype", np.float64)


def _norm(g, order):
    """The ``order``-norm of a gradient; a device array's is reduced on its device and one
    number read back (``np.asarray`` of it would be the refused implicit copy)."""
    if not hasattr(g, "to_host"):
        return np.linalg.norm(np.ravel(np.asarray(g)), ord=order)
    a = np.abs(g)
    r = np.max(a) if order == math.inf else np.sqrt(np.sum(a * a)) if order == 2 else \
        np.sum(a ** order) ** (1.0 / order)
    return float(r.to_host())


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient elementwise into ``[-clip_value, clip_value]`` (PyTorch's
    ``clip_grad_value_``; one parameter or any iterable, a generator read once)."""
    clip_value = float(clip_value)
    for p in _param_list(parameters, "clip_grad_value_"):
        if p.grad is not None:
            p.grad = np.clip(p.grad, -clip_value, clip_value)
