"""``scipy.special`` with derivatives, under SciPy's names.

SciPy's ufuncs (``erf``, ``gammaln``, ``jv``, ``xlogy``, …) dispatch by themselves and are
re-exported unchanged. SciPy's Python-level functions that convert with ``np.asarray``
(``polygamma``, ``multigammaln``, ``logsumexp``, ``softmax``, ``log_softmax``) never dispatch,
so ours stand in for them.
"""
import math

import numpy as np
from scipy.special import (  # noqa: F401
    beta, betainc, betaincc, betaln, digamma, entr, erf, erfc, erfcinv, erfcx, erfinv, expit,
    gamma, gammainc, gammaincc, gammaln, i0, i0e, i1, i1e, iv, ive, j0, j1, jn, jv, k0, k1,
    kl_div, kv, log_expit, log_ndtr, logit, ndtr, ndtri, psi, rel_entr, rgamma, stdtr, xlog1py,
    xlogy, y0, y1, yn, yv, zeta)

from ..boxes import data, unbox
from ..core import ndim_of
from ..ops.define import reduce_axes
from ..ops.softmax import log_softmax, logsumexp_p, softmax  # noqa: F401
from ..ops.special import polygamma  # noqa: F401

__all__ = ["beta", "betainc", "betaincc", "betaln", "digamma", "entr", "erf", "erfc", "erfcinv",
           "erfcx", "erfinv", "expit", "gamma", "gammainc", "gammaincc", "gammaln", "i0", "i0e",
           "i1", "i1e", "iv", "ive", "j0", "j1", "jn", "jv", "k0", "k1", "kl_div", "kv",
           "log_expit", "log_ndtr", "logit", "ndtr", "ndtri", "psi", "rel_entr", "rgamma",
           "stdtr", "xlog1py", "xlogy", "y0", "y1", "yn", "yv", "zeta", "polygamma",
           "multigammaln", "logsumexp", "softmax", "log_softmax"]


def multigammaln(a, d):
    """Log of the multivariate gamma function,
    ``ln Γ_d(a) = d(d-1)/4 · ln π + Σ_{j=0}^{d-1} ln Γ(a - j/2)``; differentiable in ``a``.

    >>> round(float(multigammaln(3.0, 2)), 6)
    1.550195
    """
    d = int(d)
    if np.any(unbox(a) <= 0.5 * (d - 1)):
        raise ValueError("condition a (%f) > 0.5 * (d-1) (%f) not met"
                         % (float(np.min(unbox(a))), 0.5 * (d - 1)))
    out = 0.25 * d * (d - 1) * math.log(math.pi)
    for j in range(d):
        out = out + gammaln(a - 0.5 * j)
    return out


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``log Σ b·exp(a)`` along ``axis`` without overflow (SciPy's signature).

    Without ``b`` and ``return_sign`` this is the stable primitive. With them it is a
    composition shifted by the (constant) maximum of ``a``; the result does not depend on
    the shift, so treating it as a constant is exact at every order. A negative sum gives
    NaN unless ``return_sign=True``, which returns ``(log |Σ b·eᵃ|, sign)`` as SciPy does.

    >>> out, sign = logsumexp(np.array([0.0, 1.0]), b=np.array([2.0, -1.0]), return_sign=True)
    >>> round(float(out), 6), float(sign)
    (-0.330893, -1.0)
    """
    axes = reduce_axes(axis, ndim_of(a))   # as scipy's np.max/np.sum: 0-d takes axis 0
    if b is None and not return_sign:
        return logsumexp_p(a, axis=axes, keepdims=bool(keepdims))
    m = np.max(data(a), axis=axes, keepdims=True)     # a shift: no derivative
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(a - m)
    s = np.sum(e if b is None else b * e, axis=axes, keepdims=True)
    if return_sign:
        sign = np.sign(s)
        s = np.abs(s)
    out = np.log(s) + m
    if not keepdims:
        out = np.squeeze(out, axis=axes)
    if return_sign:
        return out, sign if keepdims else np.squeeze(sign, axis=axes)
    return out
