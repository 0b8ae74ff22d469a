"""``scipy.linalg`` with derivatives. SciPy converts its inputs with ``np.asarray``, so these
stand in for its functions: with no tracked argument each one calls SciPy itself; with one
it composes the engine's ``numpy.linalg`` primitives and the few primitives below.

Where SciPy reads one triangle of a matrix (``lower=``), the derivative flows to that
triangle only: the symmetric matrix is built from it first. Rules:

- ``x = op(T)⁻¹ b`` (triangular): ``dx = op(T)⁻¹(db - op(dT) x)``; ``b̄ = op(T)⁻ᵀ g``,
  ``op(T)̄ = -b̄ xᵀ`` kept on the used triangle.
- ``expm``/``logm``: the Fréchet derivative ``L(A, E)`` is the upper-right block of
  ``f([[A, E], [0, A]])``; the VJP is ``L(Aᵀ, G)`` (plain transpose, also for complex).
- ``X = sqrtm(A)``: ``X dX + dX X = dA``, a Sylvester equation; its transpose solves
  ``Xᵀ Ā + Ā Xᵀ = G``.
- ``AX + XB = Q`` (``solve_sylvester``): ``dX`` solves the same equation with right side
  ``dQ - dA X - X dB``; ``Q̄`` solves it with ``Aᵀ, Bᵀ, G``; ``Ā = -Q̄ Xᵀ``, ``B̄ = -Xᵀ Q̄``.
- ``A[perm] = L U`` (``lu_factor``): with ``F = L⁻¹ dA[perm] U⁻¹``,
  ``dL = L·tril(F, -1)``, ``dU = triu(F)·U``.
"""
import numpy as np
import scipy.linalg

from ..boxes import meta, unbox
from ..core import box_types, is_complex, ndim_of, shape_of
from ..ops import dependency
from ..ops.define import defprim
from ..ops.nondiff import plain_call
from ..ops.linalg import as_columns, like, mT

__all__ = ["solve_triangular", "cho_factor", "cho_solve", "cholesky", "expm", "logm", "sqrtm",
           "solve_sylvester", "solve_banded", "lu_factor", "lu_solve", "det", "inv", "solve",
           "eigh", "eigvalsh"]


def _tracked(*xs):
    return any(type(x) in box_types for x in xs)


def _H(x):
    """Conjugate transpose (plain transpose of real values)."""
    return np.conj(mT(x)) if is_complex(x) else mT(x)


def _tri(n, lower, k=0):
    """The mask of the lower (upper) triangle from diagonal ``k`` (``-k``) on; boolean, so
    multiplying by it keeps the other factor's dtype (float32 stays float32)."""
    return np.tri(n, k=k, dtype=bool) if lower else ~np.tri(n, k=-k - 1, dtype=bool)


def _from_triangle(a, lower, hermitian=True):
    """The symmetric (Hermitian) matrix SciPy sees when it reads one triangle of ``a``."""
    n = shape_of(a)[-1]
    strict = a * _tri(n, lower, -1)
    # LAPACK reads only the real part of a Hermitian matrix's diagonal.
    diag = (np.real(a) if hermitian and is_complex(a) else a) * np.eye(n, dtype=bool)
    return diag + strict + (_H(strict) if hermitian else mT(strict))


def _trans(trans):
    return {0: 0, 1: 1, 2: 2, "N": 0, "T": 1, "C": 2}[trans]


# ----- Triangular solves -----
def _st_impl(a, b, lower, trans, unit_diagonal):
    return scipy.linalg.solve_triangular(a, b, trans=trans, lower=lower,
                                         unit_diagonal=unit_diagonal)


def _op(m, trans):
    return mT(m) if trans else m


def _st_jvp_a(t, ans, a, b, lower, trans, unit_diagonal):
    dt = t * _tri(shape_of(a)[-1], lower, -1 if unit_diagonal else 0)
    return -solve_triangular_p(a, _op(dt, trans) @ ans, lower=lower, trans=trans,
                               unit_diagonal=unit_diagonal)


def _st_vjp(g, ans, a, b, lower, trans, unit_diagonal):
    gb = solve_triangular_p(a, g, lower=lower, trans=1 - trans, unit_diagonal=unit_diagonal)
    ga = -(ans @ mT(gb)) if trans else -(gb @ mT(ans))
    return [ga * _tri(shape_of(a)[-1], lower, -1 if unit_diagonal else 0), gb]


# ``solve_triangular(a, b, lower, trans, unit_diagonal)``: b is (..., n, k); trans is 0 or 1
# (SciPy's 'C' is trans=1 of the conjugate, in the entry point). Only the used triangle of
# ``a`` (without its diagonal when unit_diagonal) carries a derivative.
solve_triangular_p = defprim(
    "solve_triangular", _st_impl,
    jvp=(_st_jvp_a, lambda t, ans, a, b, lower, trans, unit_diagonal: solve_triangular_p(
        a, t, lower=lower, trans=trans, unit_diagonal=unit_diagonal)),
    vjp=_st_vjp, broadcasts=True,
    flops=lambda ans, a, b: np.size(ans) * np.shape(a)[-1])


def solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False, overwrite_b=False,
                     check_finite=True):
    """``op(a) x = b`` for triangular ``a``; ``op`` is chosen by ``trans`` (0/'N', 1/'T',
    2/'C'). Differentiable in the used triangle of ``a`` and in ``b``.

    >>> a = np.array([[2.0, 0.0], [1.0, 4.0]])
    >>> ad.grad(lambda b: solve_triangular(a, b, lower=True).sum())(np.ones(2))
    array([0.375, 0.25 ])
    """
    if not _tracked(a, b):
        return scipy.linalg.solve_triangular(a, b, trans, lower, unit_diagonal,
                                             overwrite_b, check_finite)
    trans = _trans(trans)
    if trans == 2:
        a, trans = (np.conj(a), 1) if is_complex(a) else (a, 1)
    return as_columns(b, lambda b2: solve_triangular_p(a, b2, lower=bool(lower), trans=trans,
                                                     unit_diagonal=bool(unit_diagonal)))


# ----- Cholesky -----
def cholesky(a, lower=False, overwrite_a=False, check_finite=True):
    """The Cholesky factor (``L`` with ``a = L Lᴴ``, or ``U = Lᴴ``) of the symmetric matrix
    held in the chosen triangle of ``a``; the other triangle carries no derivative."""
    if not _tracked(a):
        return scipy.linalg.cholesky(a, lower, overwrite_a, check_finite)
    factor = np.linalg.cholesky(_from_triangle(a, bool(lower)))
    return factor if lower else _H(factor)


def cho_factor(a, lower=False, overwrite_a=False, check_finite=True):
    """``(c, lower)`` as SciPy's; on tracked values the unused triangle of ``c`` is zero
    (SciPy leaves arbitrary values there)."""
    if not _tracked(a):
        return scipy.linalg.cho_factor(a, lower, overwrite_a, check_finite)
    return cholesky(a, lower), bool(lower)


def cho_solve(c_and_lower, b, overwrite_b=False, check_finite=True):
    """``x`` with ``a x = b`` from ``cho_factor(a)``: two triangular solves with the used
    triangle of ``c`` (differentiable in it and in ``b``)."""
    c, lower = c_and_lower
    if not _tracked(c, b):
        return scipy.linalg.cho_solve(c_and_lower, b, overwrite_b, check_finite)
    first, second = (0, 2) if lower else (2, 0)     # a = L Lᴴ or a = Uᴴ U
    # As a matrix right side throughout: a 1-D b with a stack c gives a stacked y.
    return as_columns(b, lambda b2: solve_triangular(
        c, solve_triangular(c, b2, trans=first, lower=bool(lower)),
        trans=second, lower=bool(lower)))


# ----- Matrix functions: Fréchet derivatives from a block-triangular matrix -----
def _frechet(prim, a, e):
    """``L_f(a, e)``: the upper-right block of ``f([[a, e], [0, a]])`` (``e`` may carry a
    batch of directions on a leading axis)."""
    n = shape_of(a)[-1]
    ab = np.broadcast_to(a, shape_of(e)) if shape_of(e) != shape_of(a) else a
    zero = np.zeros(shape_of(e), dtype=np.result_type(a.dtype, e.dtype))
    block = np.concatenate([np.concatenate([ab, e], axis=-1),
                            np.concatenate([zero, ab], axis=-1)], axis=-2)
    return prim(block)[..., :n, n:]


def _matrix_function(name, fn, flops):
    prim = defprim(
        name, fn,
        jvp=(lambda t, ans, a: _frechet(prim, a, t),),
        vjp=(lambda g, ans, a: _frechet(prim, mT(a), g),),
        flops=lambda ans, a: flops * np.size(a) * np.shape(a)[-1])
    return prim


expm_p = _matrix_function("expm", scipy.linalg.expm, 20)
logm_p = _matrix_function("logm", scipy.linalg.logm, 30)


def expm(A):
    """The matrix exponential, differentiable through its Fréchet derivative.

    >>> rot = np.array([[0.0, 1.0], [-1.0, 0.0]])       # expm(t·rot)[0, 1] = sin t
    >>> ad.grad(lambda t: expm(t * rot)[0, 1])(0.5)
    array(0.87758256)
    """
    return expm_p(A) if _tracked(A) else scipy.linalg.expm(A)


def logm(A, disp=True):
    """The principal matrix logarithm, differentiable through its Fréchet derivative."""
    if not _tracked(A):
        return scipy.linalg.logm(A) if disp is True else scipy.linalg.logm(A, disp)
    if disp is not True:
        raise NotImplementedError("logm(..., disp=False) of a tracked value")
    return logm_p(A)


# ----- Sylvester equations and the matrix square root -----
def _sylv_vjp(g, ans, a, b, q):
    gq = solve_sylvester_p(mT(a), mT(b), g)
    return [-(gq @ mT(ans)), -(mT(ans) @ gq), gq]


# ``solve_sylvester(a, b, q)``: X with a X + X b = q; q may carry leading batch axes.
solve_sylvester_p = defprim(
    "solve_sylvester", lambda a, b, q: scipy.linalg.solve_sylvester(a, b, q),
    jvp=(lambda t, ans, a, b, q: -solve_sylvester_p(a, b, t @ ans),
         lambda t, ans, a, b, q: -solve_sylvester_p(a, b, ans @ t),
         lambda t, ans, a, b, q: solve_sylvester_p(a, b, t)),
    vjp=_sylv_vjp, broadcasts=True,
    flops=lambda ans, a, b, q: 20 * np.size(ans) * np.shape(ans)[-1])

sqrtm_p = defprim(
    "sqrtm", lambda a: scipy.linalg.sqrtm(a),
    jvp=(lambda t, ans, a: solve_sylvester_p(ans, ans, t),),
    vjp=(lambda g, ans, a: solve_sylvester_p(mT(ans), mT(ans), g),),
    flops=lambda ans, a: 30 * np.size(a) * np.shape(a)[-1])


def solve_sylvester(a, b, q):
    """``X`` with ``a X + X b = q``, differentiable in all three."""
    if not _tracked(a, b, q):
        return scipy.linalg.solve_sylvester(a, b, q)
    return solve_sylvester_p(a, b, q)


def sqrtm(A, **kw):
    """The principal matrix square root ``X`` (``X @ X = A``); ``dX`` solves
    ``X dX + dX X = dA``.

    >>> ad.grad(lambda s: sqrtm(s * np.eye(2))[0, 0])(4.0)     # d√s/ds at 4
    array(0.25)
    """
    if not _tracked(A):
        return scipy.linalg.sqrtm(A, **kw)
    if kw:
        raise NotImplementedError("sqrtm(..., disp=/blocksize=) of a tracked value")
    return sqrtm_p(A)


# ----- Banded systems (SciPy's diagonal ordered form ab[u + i - j, j] = A[i, j]) -----
def _band_index(l, u, n):
    """Row-by-row positions: for band row r and column j, the matrix row i = j - u + r,
    clipped into range, and the 0/1 mask of the valid ones."""
    r = np.arange(l + u + 1)[:, None]
    i = np.arange(n)[None, :] - u + r
    valid = (i >= 0) & (i < n)
    return np.clip(i, 0, n - 1), valid


def _band_matmul(ab, x, l, u):
    """``A @ x`` for ``A`` in band form ``ab`` (..., l+u+1, n) and ``x`` (..., n, k)."""
    n = shape_of(ab)[-1]
    # (A x)_i = Σ_r ab[r, j] x_j with j = i + u - r: gather per band row, then sum.
    r = np.arange(l + u + 1)[:, None]
    j = np.arange(n)[None, :] + u - r
    valid = (j >= 0) & (j < n)
    jc = np.clip(j, 0, n - 1)
    coef = ab[..., np.broadcast_to(r, jc.shape), jc] * valid          # (..., m, n)
    return np.sum(coef[..., None] * x[..., jc, :], axis=-3)


def _band_outer(p, q, l, u):
    """The band part of ``p @ qᵀ`` (``p``, ``q`` (..., n, k)) in band form."""
    n = shape_of(q)[-2]
    i, valid = _band_index(l, u, n)
    return np.sum(p[..., i, :] * q[..., None, :, :], axis=-1) * valid


def _band_transpose(ab, l, u):
    """``Aᵀ`` in band form (bandwidths swapped): abT[r, j] = ab[l + u - r, j - l + r]."""
    m, n = shape_of(ab)[-2:]
    r = np.arange(m)[:, None]
    j = np.arange(n)[None, :] - l + r
    valid = (j >= 0) & (j < n)
    return ab[..., np.broadcast_to(m - 1 - r, j.shape), np.clip(j, 0, n - 1)] * valid


def _banded_vjp(g, ans, ab, b, l, u):
    gb = solve_banded_p(_band_transpose(ab, l, u), g, l=u, u=l)
    return [-_band_outer(gb, ans, l, u), gb]


# ``solve_banded(ab, b, l, u)``: b is (..., n, k); the rules stay in band form, so they
# cost O(n·(l+u+1)·k) like the solve.
solve_banded_p = defprim(
    "solve_banded",
    lambda ab, b, l, u: scipy.linalg.solve_banded((l, u), ab, b),
    jvp=(lambda t, ans, ab, b, l, u: -solve_banded_p(ab, _band_matmul(t, ans, l, u), l=l, u=u),
         lambda t, ans, ab, b, l, u: solve_banded_p(ab, t, l=l, u=u)),
    vjp=_banded_vjp, broadcasts=True,
    flops=lambda ans, ab, b: 2 * np.size(ab) * (np.shape(ab)[-2] + np.shape(ans)[-1]))


def solve_banded(l_and_u, ab, b, overwrite_ab=False, overwrite_b=False, check_finite=True):
    """``A x = b`` with ``A`` in diagonal ordered form ``ab``; differentiable in ``ab``
    (its entries inside the matrix) and ``b``."""
    if not _tracked(ab, b):
        return scipy.linalg.solve_banded(l_and_u, ab, b, overwrite_ab, overwrite_b,
                                         check_finite)
    l, u = (int(k) for k in l_and_u)
    return as_columns(b, lambda b2: solve_banded_p(ab, b2, l=l, u=u))


# ----- LU -----
def _permutation(piv):
    """Rows ``perm`` with ``a[perm] = L U`` from LAPACK's sequential row interchanges."""
    perm = np.arange(len(piv))
    for i, p in enumerate(piv):
        perm[i], perm[p] = perm[p], perm[i]
    return tuple(int(k) for k in perm)


def _lu_parts(lu):
    n = shape_of(lu)[-1]
    return _tri(n, True, -1), _tri(n, False)


def _lu_jvp(t, ans, a, perm):
    strict, upper = _lu_parts(ans)
    f = solve_triangular_p(ans, t[..., np.array(perm), :], lower=True, trans=0, unit_diagonal=True)
    f = mT(solve_triangular_p(ans, mT(f), lower=False, trans=1, unit_diagonal=False))
    low = ans * strict + like(np.eye(shape_of(ans)[-1]), ans)
    return low @ (f * strict) + (f * upper) @ (ans * upper)


def _lu_vjp(g, ans, a, perm):
    strict, upper = _lu_parts(ans)
    low = ans * strict + like(np.eye(shape_of(ans)[-1]), ans)
    h = (mT(low) @ (g * strict)) * strict + ((g * upper) @ mT(ans * upper)) * upper
    h = solve_triangular_p(ans, h, lower=True, trans=1, unit_diagonal=True)
    h = mT(solve_triangular_p(ans, mT(h), lower=False, trans=0, unit_diagonal=False))
    return h[..., np.argsort(perm), :]


# ``lu_factor(a, perm)``: SciPy's packed ``lu`` (L below the unit diagonal, U on and above);
# the row order ``perm`` is static, read from the pivots in the entry point.
lu_factor_p = defprim(
    "lu_factor", lambda a, perm: scipy.linalg.lu_factor(a)[0],
    jvp=(_lu_jvp,), vjp=(_lu_vjp,),
    flops=lambda ans, a: 2 * np.size(a) * np.shape(a)[-1] // 3)


def lu_factor(a, overwrite_a=False, check_finite=True):
    """``(lu, piv)`` as SciPy's, ``lu`` differentiable (the pivots are integers)."""
    if not _tracked(a):
        return scipy.linalg.lu_factor(a, overwrite_a, check_finite)
    if ndim_of(a) != 2:
        raise NotImplementedError("lu_factor of a stack of tracked matrices")
    piv = scipy.linalg.lu_factor(unbox(a))[1]
    return lu_factor_p(a, perm=_permutation(piv)), piv


def lu_solve(lu_and_piv, b, trans=0, overwrite_b=False, check_finite=True):
    """``a x = b`` (or ``aᵀ``/``aᴴ`` by ``trans``) from ``lu_factor(a)``: triangular solves
    with the packed factors, differentiable in ``lu`` and ``b``."""
    lu, piv = lu_and_piv
    if not _tracked(lu, b):
        return scipy.linalg.lu_solve(lu_and_piv, b, trans, overwrite_b, check_finite)
    if ndim_of(lu) != 2 or np.ndim(meta(piv)) != 1:
        raise NotImplementedError("lu_solve with a stack of LU factors and a tracked value; "
                                  "factor and solve each matrix in a loop")
    perm = np.array(_permutation(unbox(piv)))

    def rows(x, order):     # permute the rows: axis 0 of a vector, axis -2 of a stack
        return x[order] if ndim_of(x) == 1 else x[..., order, :]

    trans = _trans(trans)
    if trans == 0:          # L U x = b[perm]
        y = solve_triangular(lu, rows(b, perm), 0, lower=True, unit_diagonal=True)
        return solve_triangular(lu, y, 0, lower=False)
    y = solve_triangular(lu, b, trans, lower=False)      # Uᵀ Lᵀ x[perm] = b
    return rows(solve_triangular(lu, y, trans, lower=True, unit_diagonal=True),
                np.argsort(perm))


# ----- Determinant, inverse, solve: the numpy.linalg primitives -----
_SYM = {"sym": False, "symmetric": False, "her": True, "hermitian": True, "pos": True,
        "positive definite": True}


def _structured(a, assume_a, lower):
    """The matrix SciPy's solver reads, for the structures that read part of ``a``."""
    if assume_a in (None, "gen", "general", "banded"):
        return a
    n = shape_of(a)[-1]
    if assume_a in _SYM:
        return _from_triangle(a, bool(lower), hermitian=_SYM[assume_a])
    if assume_a == "diagonal":
        return a * np.eye(n, dtype=bool)
    if assume_a == "tridiagonal":
        return a * (np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1.0)
    if assume_a in ("upper triangular", "lower triangular"):
        return a * _tri(n, assume_a == "lower triangular")
    raise ValueError(f"{assume_a!r} is not a recognized matrix structure")


def det(a, overwrite_a=False, check_finite=True):
    """The determinant (``np.linalg.det``'s rule)."""
    return np.linalg.det(a) if _tracked(a) else scipy.linalg.det(a, overwrite_a, check_finite)


def inv(a, overwrite_a=False, check_finite=True, *, assume_a=None, lower=False):
    """The inverse of the matrix SciPy reads from ``a`` under ``assume_a``/``lower``."""
    if not _tracked(a):
        return scipy.linalg.inv(a, overwrite_a, check_finite, assume_a=assume_a, lower=lower)
    return np.linalg.inv(_structured(a, assume_a, lower))


def solve(a, b, lower=False, overwrite_a=False, overwrite_b=False, check_finite=True,
          assume_a=None, transposed=False):
    """``a x = b`` (``aᵀ x = b`` when transposed) for the matrix SciPy reads from ``a``."""
    if not _tracked(a, b):
        return scipy.linalg.solve(a, b, lower, overwrite_a, overwrite_b, check_finite,
                                  assume_a, transposed)
    m = _structured(a, assume_a, lower)
    return np.linalg.solve(mT(m) if transposed else m, b)


# ----- Symmetric eigenproblems: numpy.linalg.eigh on the triangle SciPy reads -----
def _reduced(a, b, lower, type):
    """``(S, back)``: the standard Hermitian problem and the map from its eigenvectors to
    those of ``a v = λ b v``: with ``b = L Lᴴ``, ``S = L⁻¹ a L⁻ᴴ`` and ``v = L⁻ᴴ u`` (so
    ``vᴴ b v = I``, SciPy's normalisation)."""
    s = _from_triangle(a, bool(lower))
    if b is None:
        return s, lambda u: u
    if type != 1:
        raise NotImplementedError("eigh(..., type=2 or 3) of a tracked value")
    low = np.linalg.cholesky(_from_triangle(b, bool(lower)))
    x = solve_triangular(low, s, lower=True)
    return (solve_triangular(low, _H(x), lower=True),
            lambda u: solve_triangular(low, u, trans=2, lower=True))


def eigh(a, b=None, *, lower=True, eigvals_only=False, overwrite_a=False, overwrite_b=False,
         type=1, check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    """Eigenvalues (ascending) and eigenvectors of the symmetric (Hermitian) matrix held in
    the ``lower`` (or upper) triangle of ``a`` (and of ``a v = λ b v`` with ``b``, type 1).
    The eigenvectors are SciPy's, signs (phases) included: ``np.linalg.eigh``'s, each column
    turned by the constant unit factor that makes it SciPy's."""
    if not _tracked(a, b):
        return scipy.linalg.eigh(a, b, lower=lower, eigvals_only=eigvals_only,
                                 overwrite_a=overwrite_a, overwrite_b=overwrite_b, type=type,
                                 check_finite=check_finite, subset_by_index=subset_by_index,
                                 subset_by_value=subset_by_value, driver=driver)
    if subset_by_value is not None:
        raise NotImplementedError("eigh/eigvalsh(..., subset_by_value=) of a tracked value")
    s, back = _reduced(a, b, lower, type)
    pick = slice(None) if subset_by_index is None else \
        slice(int(subset_by_index[0]), int(subset_by_index[1]) + 1)
    if eigvals_only:
        return np.linalg.eigvalsh(s)[..., pick]
    w, u = np.linalg.eigh(s)
    v = back(u[..., pick])
    # LAPACK's drivers choose each eigenvector's sign (phase) differently: without this
    # factor the vectors and their derivatives would not be those of the plain call.
    return w[..., pick], v * plain_call(_phases)(a, b, v, lower=lower, type=type,
                                                 subset_by_index=subset_by_index,
                                                 driver=driver)


def _phases(a, b, v, **options):
    """Per column j, the unit number c_j with ``c_j v_j`` SciPy's eigenvector x_j: for a
    simple eigenvalue x_j = c_j v_j, so c_j = v_jᴴ x_j / |v_jᴴ x_j| (1 where they are
    orthogonal, in a degenerate eigenspace, whose vectors have no derivative)."""
    x = scipy.linalg.eigh(a, b, **options)[1]
    c = np.sum(np.conj(v) * x, axis=-2)
    size = np.abs(c)
    return np.where(size > 0, c / np.where(size > 0, size, 1.0), 1.0).astype(x.dtype)


def eigvalsh(a, b=None, *, lower=True, overwrite_a=False, overwrite_b=False, type=1,
             check_finite=True, subset_by_index=None, subset_by_value=None, driver=None):
    """``eigh(..., eigvals_only=True)``."""
    return eigh(a, b, lower=lower, eigvals_only=True, overwrite_a=overwrite_a,
                overwrite_b=overwrite_b, type=type, check_finite=check_finite,
                subset_by_index=subset_by_index, subset_by_value=subset_by_value,
                driver=driver)


# Dependency structure (the sparsity mode): dense within each matrix of a stack.
for _p in (expm_p, logm_p, sqrtm_p, lu_factor_p, solve_triangular_p, solve_sylvester_p,
           solve_banded_p):
    _p.sparsity = dependency.stacked(2)
