"""Standardisation over axes as a primitive — for speed: batch and layer normalisation.

``standardize(x, axes, eps) = (x − μ) / √(σ² + ε)`` with the mean ``μ`` and the biased
variance ``σ²`` over ``axes`` (kept as size-1 axes). Composed, it records a mean, a
difference, a square, a second mean, a sum, a square root and a quotient; as a primitive it
is one record. Its Jacobian within each group of ``N`` standardised entries is symmetric,

    J = (1/√(σ² + ε)) · (I − 𝟙𝟙ᵀ/N − x̂ x̂ᵀ/N),        x̂ = ans,

so the JVP and the VJP are the same expression, ``(t − mean(t) − x̂·mean(t·x̂)) / √(σ² + ε)``,
written with NumPy calls on whatever it receives (differentiable again). ``axes`` are taken
from the end (negative), so a leading batch of directions rides along.

>>> standardize(np.array([[1.0, 3.0]]), axes=(-1,), eps=0.0)
array([[-1.,  1.]])
"""
import numpy as np

from . import dependency
from .define import defprim

__all__ = ["standardize", "standardize_p"]


def _standardize(x, axes, eps):
    mean = np.mean(x, axis=axes, keepdims=True)
    d = x - mean
    return d / np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + eps)


def _rule(t, ans, x, axes, eps):
    d = x - np.mean(x, axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + eps)
    return inv * (t - np.mean(t, axis=axes, keepdims=True)
                  - ans * np.mean(t * ans, axis=axes, keepdims=True))


standardize_p = defprim("standardize", _standardize, jvp=(_rule,), vjp=(_rule,),
                        flops=lambda ans, x, axes, eps: 8 * np.size(x))


def standardize(x, axes, eps=1e-5):
    """``(x − mean) / √(var + eps)`` over ``axes`` (biased variance); see the module."""
    nd = np.ndim(x)
    axes = tuple(sorted({(int(a) % nd) - nd for a in
                         ((axes,) if isinstance(axes, (int, np.integer)) else axes)}))
    return standardize_p(x, axes=axes, eps=float(eps))

# ----- Dependency structure (the sparsity mode): each standardised group -----
standardize_p.sparsity = dependency.groups
