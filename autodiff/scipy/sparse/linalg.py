"""``scipy.sparse.linalg.spsolve``, differentiable in the right-hand side and the stored values.

``x = A⁻¹ b`` for a sparse ``A`` is one primitive ``spsolve(data, b; pattern)`` over the
stored values of a fixed CSR pattern. Its rules are solves with the same factorisation:
``dx = A⁻¹ (db - dA x)`` (JVP) and ``b̄ = A⁻ᵀ x̄``, ``d̄ataₖ = -b̄[rowₖ] x[colₖ]`` (VJP), so
they are differentiable again. A batch of directions is one solve with many right-hand
sides, and the LU factors (SciPy's ``splu``) of the last few matrices are kept, so a
Jacobian costs one factorisation. A singular matrix raises (SciPy only warns and returns
NaN).

``A`` is a constant SciPy matrix (derivatives in ``b``) or an
``autodiff.scipy.sparse.csr_array`` whose ``data`` may be tracked (derivatives in both).

>>> import autodiff as ad, scipy.sparse as sps
>>> A = sps.csr_array(np.array([[4.0, 1.0], [0.0, 2.0]]))
>>> ad.jacobian(lambda b: spsolve(A, b))(np.ones(2))
array([[ 0.25 , -0.125],
       [ 0.   ,  0.5  ]])
"""
import collections
import threading

import numpy as np
import scipy.sparse as sps
from scipy.sparse import linalg as spla

from ...core import box_types, ndim_of, shape_of
from ...ops import dependency
from ...ops.define import defprim
from . import Pattern, _canonical, csr_array

__all__ = ["spsolve"]

_FACTORS = collections.OrderedDict()       # (pattern id, dtype, data bytes) -> SuperLU
_LOCK = threading.Lock()
_KEEP = 4


def _factor(data, pattern):
    key = (id(pattern), data.dtype.str, data.tobytes())
    with _LOCK:
        lu = _FACTORS.get(key)
        if lu is not None:
            _FACTORS.move_to_end(key)
            return lu
    try:
        lu = spla.splu(sps.csc_array(pattern.scipy(data)))
    except RuntimeError as e:
        raise RuntimeError(f"spsolve: the matrix is singular ({e}); SciPy would warn and "
                           "return NaN.") from None
    with _LOCK:
        _FACTORS[key] = (lu, pattern)             # the pattern kept alive with its id
        while len(_FACTORS) > _KEEP:
            _FACTORS.popitem(last=False)
    return _FACTORS[key]


def _solve_impl(data, b, pattern, trans, core):
    lu = _factor(np.asarray(data), pattern)[0]
    s = np.shape(b)
    n = pattern.shape[0]
    dtype = np.result_type(data, b)
    B = np.moveaxis(np.asarray(b, dtype=dtype), -core, 0).reshape(n, -1)
    X = lu.solve(np.ascontiguousarray(B, dtype=np.result_type(lu.L.dtype, dtype)),
                 trans="T" if trans else "N")
    rest = s[:len(s) - core] + s[len(s) - core + 1:]
    return np.moveaxis(X.reshape((n,) + rest), 0, -core).astype(dtype, copy=False)


def _jvp_data(t, ans, data, b, pattern, trans, core):
    # A dx = -dA x (or Aᵀ dx = -dAᵀ x): dA has the stored values t on the same pattern.
    return -spsolve_p(data, pattern.matvec(t, ans, transpose=trans), pattern=pattern,
                      trans=trans, core=core)


def _jvp_b(t, ans, data, b, pattern, trans, core):
    return spsolve_p(data, t, pattern=pattern, trans=trans, core=core)


def _vjp(g, ans, data, b, pattern, trans, core):
    gb = spsolve_p(data, g, pattern=pattern, trans=not trans, core=core)
    r, c = (pattern.cols, pattern.rows) if trans else (pattern.rows, pattern.cols)
    if core == 1:
        gd = -(gb[..., r] * ans[c])
    else:
        gd = -np.sum(gb[..., r, :] * ans[c, :], axis=-1)
    return [gd, gb]


spsolve_p = defprim(
    "spsolve", _solve_impl, jvp=(_jvp_data, _jvp_b), vjp=_vjp,
    flops=lambda ans, data, b, pattern, trans, core: 10 * data.size + 4 * np.size(ans))
# The inverse of a sparse matrix is dense in general: every output on every input.
spsolve_p.sparsity = dependency.dense


def spsolve(A, b, permc_spec=None, use_umfpack=True):
    """``A⁻¹ b`` for a sparse square ``A``, as ``scipy.sparse.linalg.spsolve``: ``b`` of shape
    ``(n,)`` or ``(n, 1)`` gives ``(n,)``, ``(n, k)`` gives ``(n, k)``. Differentiable in ``b``
    and, when ``A`` is an ``autodiff.scipy.sparse.csr_array`` with tracked ``data``, in the
    stored values. (``permc_spec`` and ``use_umfpack`` are accepted for SciPy's signature;
    the factorisation is SuperLU's with its default ordering.)"""
    if type(A) is csr_array:
        pattern, data = A.pattern, A.data
    elif sps.issparse(A):
        A = _canonical(A)
        pattern, data = _pattern_of(A), A.data
    elif type(A) in box_types or isinstance(A, np.ndarray):
        raise TypeError("spsolve needs a sparse matrix A; for a dense (or tracked dense) "
                        "matrix use np.linalg.solve, or build a sparse one with "
                        "autodiff.scipy.sparse.csr_array")
    else:
        raise TypeError(f"spsolve: A must be a sparse matrix, not {type(A).__name__}")
    m, n = pattern.shape
    if m != n:
        raise ValueError(f"matrix must be square (has shape {pattern.shape})")
    if sps.issparse(b):
        if type(data) in box_types:
            raise NotImplementedError("spsolve with a sparse right-hand side and tracked "
                                      "values of A: pass b.toarray()")
        return spla.spsolve(pattern.scipy(data), b)
    b = b if type(b) in box_types else np.asarray(b)
    if ndim_of(b) not in (1, 2) or shape_of(b)[0] != n:
        raise ValueError(f"spsolve: the right-hand side has shape {shape_of(b)}, but A is "
                         f"{pattern.shape}")
    if ndim_of(b) == 2 and shape_of(b)[1] == 1:
        return spsolve_p(data, b[:, 0], pattern=pattern, trans=False, core=1)
    return spsolve_p(data, b, pattern=pattern, trans=False, core=ndim_of(b))


_PATTERNS = collections.OrderedDict()


def _pattern_of(A):
    """The Pattern of a canonical SciPy CSR matrix, reused for the same pattern (so that a
    repeated solve finds its factorisation)."""
    key = (A.shape, A.indptr.tobytes(), A.indices.tobytes())
    p = _PATTERNS.get(key)
    if p is None:
        p = Pattern(A.indices, A.indptr, A.shape)
        _PATTERNS[key] = p
        while len(_PATTERNS) > _KEEP:
            _PATTERNS.popitem(last=False)
    return p
