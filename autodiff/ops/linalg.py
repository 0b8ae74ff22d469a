"""Matrix products and inverses: matmul, inv, solve, det, log|det|, and their compositions.

The primitives work on stacks of matrices (``(..., m, n)``) whose leading axes broadcast as
in ``np.matmul``; 1-D operands are promoted to matrices by the NumPy entry points, so the
rules never special-case vectors. With ``X = A⁻¹``: ``dX = -X dA X``; for ``x = A⁻¹b``:
``dx = A⁻¹(db - dA x)``; ``d det A = tr(adj(A) dA)``, the adjugate (``det A · A⁻¹`` where A
is invertible) taken from the SVD so that singular matrices have it too; ``d log|det A| =
tr(A⁻¹ dA)``, refused at a singular A. These maps are holomorphic, so
the same formulas, with plain transposes, serve complex matrices. ``matrix_power``,
``multi_dot``, ``tensorinv`` and ``tensorsolve`` are compositions of them; the other
products live in products.py, the decompositions (and norms) in decomp.py.
"""
import math
import operator

import numpy as np

from ..boxes import unbox
from ..core import is_complex, lead, ndim_of, shape_of
from . import dependency
from .define import check_no_out, defprim, handles


def like(c, x):
    """The constant array ``c`` (a mask, an identity) in the precision of ``x``: NumPy
    promotes float32 · float64 arrays to float64, and float32 must stay float32."""
    dt = getattr(x, "dtype", None)
    if dt is None or dt.kind not in "fc":
        return c
    return c.astype(np.finfo(dt).dtype, copy=False)


def mT(a):
    """Matrix transpose of a stack: swap the last two axes (the array method: NumPy's
    ``np.swapaxes`` adds a Python-level call)."""
    return a.swapaxes(-1, -2)


def _mm(a, b):
    """``a @ b`` in the rules, where one operand may carry a batch of directions: a stack
    times one plain matrix is one matrix product (NumPy loops over the stack, which for a
    batch of matrix-vector products, ``jacfwd`` of ``J @ x``, is several times slower)."""
    if type(a) is np.ndarray and type(b) is np.ndarray and a.size and b.size:
        if b.ndim == 2 and a.ndim > 2:
            a2 = a.reshape(-1, a.shape[-1])
            out = _basis_times(a2, b)
            if out is None:
                out = a2 @ b
            return out.reshape(a.shape[:-1] + b.shape[-1:])
        if a.ndim == 2 and b.ndim > 2:
            return mT(_mm(mT(b), mT(a)))
    return a @ b


def _basis_times(x, b):
    """``x @ b`` without the product when the ``(r, n)`` stack of directions ``x`` is the
    basis ``[I; 0]`` a Jacobian's sweep seeds (``jacfwd``, ``jacrev``, the implicit
    function theorem's ``∂F/∂x``): then it is ``b`` and zero rows. ``None`` otherwise; the
    test reads O(1) entries before it reads all (n = 200: 10 µs against 0.2 ms)."""
    r, n = x.shape
    if r < n or r * n < 1024 or x[0, 0] != 1 or x[0, 1] != 0 or x[1, 0] != 0 \
            or x[n - 1, n - 1] != 1 or x.dtype.kind not in "fc":
        return None
    if np.count_nonzero(x) != n or not (x[:n].diagonal() == 1).all():
        return None
    out = np.zeros((r, b.shape[1]), np.result_type(x, b))
    out[:n] = b
    return out


matmul_p = defprim(
    "matmul", lambda a, b: np.matmul(a, b),
    jvp=(lambda t, ans, a, b: _mm(t, b), lambda t, ans, a, b: _mm(a, t)),
    vjp=(lambda g, ans, a, b: _mm(g, mT(b)), lambda g, ans, a, b: _mm(mT(a), g)),
    broadcasts=True, flops=lambda ans, a, b: 2 * np.size(ans) * np.shape(a)[-1])

inv_p = defprim(
    "inv", lambda a: np.linalg.inv(a),
    jvp=(lambda t, ans, a: -(ans @ t @ ans),),
    vjp=(lambda g, ans, a: -(mT(ans) @ g @ mT(ans)),), flops=lambda ans, a: 2 * np.size(a) * np.shape(a)[-1])


def _solve_vjp(g, ans, a, b):
    gb = solve_p(mT(a), g)
    return [-(gb @ mT(ans)), gb]


# ``solve(a, b)`` with ``b`` a stack of matrices ``(..., n, k)``.
solve_p = defprim(
    "solve", lambda a, b: np.linalg.solve(a, b),
    jvp=(lambda t, ans, a, b: -solve_p(a, t @ ans), lambda t, ans, a, b: solve_p(a, t)),
    vjp=_solve_vjp, broadcasts=True,
    flops=lambda ans, a, b: np.size(a) * np.shape(a)[-1] * 2 // 3 + 2 * np.size(a) * np.shape(b)[-1])


def _trace_inv_dot(a, t):
    """tr(A⁻¹ T) over the last two axes."""
    return np.sum(mT(inv_p(a)) * t, axis=(-2, -1))


def _mat(g):
    return np.expand_dims(g, (-2, -1))


# ----- The adjugate: det's derivative, defined at singular matrices too -----
# ``adj(A) = det(A) A⁻¹`` where A is invertible, but it is a polynomial in A's entries and
# exists everywhere; det·inv breaks down (or loses all accuracy) near singular matrices.
# With the SVD ``A = U S Vᴴ`` and ``adj(XYZ) = adj(Z) adj(Y) adj(X)``:
#   adj(A) = c · V adj(S) Uᴴ,  c = det(U) det(Vᴴ) (a unit number),  adj(S) = diag(pᵢ),
#   pᵢ = Π_{k≠i} s_k;
# and, U and V held fixed (the identity is exact for every S), in a direction T with
# W = Uᴴ T V:  d adj = c · V D Uᴴ,  D = -(W ∘ P) + diag(P · diag W),  P_ij = Π_{k∉{i,j}} s_k
# (P_ii = 0). No step divides by a singular value, so rank n-1 and lower are exact.
def _products_without(s):
    """``p_i = Π_{k≠i} s_k`` and ``P_ij = Π_{k∉{i,j}} s_k`` (0 on the diagonal) over the
    last axis, by prefix, suffix and running products: no division (s may hold zeros)."""
    n = shape_of(s)[-1]
    one = np.ones(shape_of(s)[:-1] + (1,), s.dtype)
    pre = np.cumprod(np.concatenate([one, s[..., :-1]], axis=-1), axis=-1)     # Π_{k<i}
    suf = np.flip(np.cumprod(np.concatenate([one, np.flip(s, -1)[..., :-1]], axis=-1),
                             axis=-1), -1)                                       # Π_{k>i}
    # run[i, j] = Π_{i<k<j} s_k for j > i: a running product along each row of
    # q[i, k] = s_k (k > i) or 1, shifted right by one column.
    upper = np.tri(n, k=-1, dtype=bool).T                                       # k > i
    q = np.where(upper, np.expand_dims(s, -2), like(np.ones((n, n)), s))
    run = np.cumprod(q, axis=-1)
    # Zeroed for j ≤ i before the products: there pre·suf would count factors twice and
    # could overflow (then inf·0 = nan); every product formed below is a partial product.
    run = np.concatenate([np.zeros(shape_of(run)[:-1] + (1,), s.dtype), run[..., :-1]],
                         axis=-1) * upper
    half = (np.expand_dims(pre, -1) * run) * np.expand_dims(suf, -2)          # i < j
    return pre * suf, half + mT(half)


def _adjugate_frame(a):
    """``(c, U, s, V, p, P)`` for the formulas above."""
    u, s, vh = np.linalg.svd(a)
    c = np.linalg.det(u) * np.linalg.det(vh)
    p, pp = _products_without(s)
    return c, u, s, np.conj(mT(vh)) if is_complex(vh) else mT(vh), p, pp


def _adjugate_impl(a):
    c, u, s, v, p, _ = _adjugate_frame(a)
    uh = np.conj(mT(u)) if is_complex(u) else mT(u)
    return _mat(c) * ((v * np.expand_dims(p, -2)) @ uh)


def _adjugate_jvp(t, ans, a):
    c, u, s, v, p, pp = _adjugate_frame(a)
    uh = np.conj(mT(u)) if is_complex(u) else mT(u)
    w = uh @ t @ v
    dw = np.diagonal(w, 0, -2, -1)
    d = -(w * pp) + np.expand_dims(np.sum(pp * np.expand_dims(dw, -2), axis=-1), -1) \
        * np.eye(shape_of(a)[-1], dtype=bool)
    return _mat(c) * (v @ d @ uh)


def _adjugate_vjp(g, ans, a):
    # The transpose of the JVP under ⟨X, Y⟩ = Re Σ X·Y, step by step in reverse.
    c, u, s, v, p, pp = _adjugate_frame(a)
    uc = np.conj(u) if is_complex(u) else u
    xbar = _mat(c) * (mT(v) @ g @ uc)
    dx = np.diagonal(xbar, 0, -2, -1)
    wbar = -(xbar * pp) + np.expand_dims(np.sum(pp * np.expand_dims(dx, -2), axis=-1), -1) \
        * np.eye(shape_of(a)[-1], dtype=bool)
    return uc @ wbar @ mT(v)


adjugate_p = defprim("adjugate", _adjugate_impl, jvp=(_adjugate_jvp,), vjp=(_adjugate_vjp,),
                     flops=lambda ans, a: 12 * np.size(a) * np.shape(a)[-1])

# d det A = tr(adj(A) dA): exact at singular matrices (JAX's rule too), where det·A⁻¹ fails.
det_p = defprim(
    "det", lambda a: np.linalg.det(a),
    jvp=(lambda t, ans, a: np.sum(mT(adjugate_p(a)) * t, axis=(-2, -1)),),
    vjp=(lambda g, ans, a: _mat(g) * mT(adjugate_p(a)),),
    flops=lambda ans, a: np.size(a) * np.shape(a)[-1] * 2 // 3)


def _check_nonsingular(ans):
    """log|det A| = -inf at a singular A, where its derivative tr(A⁻¹ dA) does not exist."""
    if np.any(np.isneginf(unbox(ans))):
        raise np.linalg.LinAlgError(
            "np.linalg.slogdet has no derivative at a singular matrix: log|det A| = -inf "
            "there and d log|det A| = tr(A⁻¹ dA) is unbounded (nor has the phase "
            "det A/|det A| of a complex A one). Differentiate np.linalg.det instead (its "
            "derivative, the adjugate, exists everywhere), or keep A off the singular set "
            "(e.g. A + εI).")


def _logabsdet_jvp(t, ans, a):
    _check_nonsingular(ans)
    return _trace_inv_dot(a, t)


def _logabsdet_vjp(g, ans, a):
    _check_nonsingular(ans)
    return _mat(g) * mT(inv_p(a))


logabsdet_p = defprim(
    "logabsdet", lambda a: np.linalg.slogdet(a)[1],
    jvp=(_logabsdet_jvp,), vjp=(_logabsdet_vjp,),
    flops=lambda ans, a: np.size(a) * np.shape(a)[-1] * 2 // 3)


# ----- NumPy entry points -----
@handles(np.matmul)
def _matmul(a, b, out=None, **kw):
    check_no_out(out, "matmul")
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        raise ValueError("matmul: input operand does not have enough dimensions")
    a2 = np.reshape(a, (1,) + shape_of(a)) if na == 1 else a
    b2 = np.reshape(b, shape_of(b) + (1,)) if nb == 1 else b
    r = matmul_p(a2, b2)
    if na == 1 or nb == 1:
        s = shape_of(r)
        s = s[:-2] + ((s[-2],) if na > 1 else ()) + ((s[-1],) if nb > 1 else ())
        r = np.reshape(r, s)
    return r


@handles(np.linalg.inv)
def _inv(a):
    return inv_p(a)


def as_columns(b, solve):
    """NumPy 2's rule for a right-hand side: ``b`` is one vector ``(n,)`` only when it is
    exactly 1-D (then ``x`` is ``(..., n)``, the stack axes coming from the matrix);
    otherwise it is a stack of ``(n, k)`` matrices. ``solve`` takes a matrix right side."""
    if ndim_of(b) == 1:
        x = solve(np.reshape(b, shape_of(b) + (1,)))
        return np.reshape(x, shape_of(x)[:-1])
    return solve(b)


@handles(np.linalg.solve)
def _solve(a, b):
    return as_columns(b, lambda b2: solve_p(a, b2))


@handles(np.linalg.det)
def _det(a):
    return det_p(a)


@handles(np.linalg.slogdet)
def _slogdet(a):
    logabs = logabsdet_p(a)
    if is_complex(a):   # the phase det/|det| moves with a complex matrix
        _check_nonsingular(logabs)      # NumPy's sign is 0 there, the phase undefined
        sign = det_p(a) / np.exp(logabs)
    else:               # ±1 (0 at a singular matrix): piecewise constant, no derivative
        sign = np.linalg.slogdet(unbox(a))[0]
    return type(np.linalg.slogdet(np.eye(1)))(sign, logabs)


# ----- Compositions of matmul, inv and solve -----
@handles(np.linalg.matrix_power)
def _matrix_power(a, n):
    """Binary powering by matmul; a negative power is a power of ``inv(a)``."""
    n = operator.index(n)
    s = shape_of(a)
    if len(s) < 2 or s[-1] != s[-2]:
        raise np.linalg.LinAlgError("Last 2 dimensions of the array must be square")
    if n == 0:          # the identity: a constant
        return np.broadcast_to(np.eye(s[-1], dtype=np.result_type(a)), s).copy()
    if n < 0:
        a, n = inv_p(a), -n
    out = None
    while True:
        if n & 1:
            out = a if out is None else _matmul(out, a)
        n >>= 1
        if not n:
            return out
        a = _matmul(a, a)


def _chain_order(shapes):
    """The cheapest parenthesisation of a matrix chain (dynamic programming, as NumPy's
    multi_dot): ``split[i][j]`` is where the product of matrices i..j splits."""
    dims = [s[0] for s in shapes] + [shapes[-1][1]]
    n = len(shapes)
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


@handles(np.linalg.multi_dot)
def _multi_dot(arrays, *, out=None):
    check_no_out(out, "linalg.multi_dot")
    arrays = list(arrays)
    if len(arrays) < 2:
        raise ValueError("Expecting at least two arrays.")
    first, last = ndim_of(arrays[0]) == 1, ndim_of(arrays[-1]) == 1
    if first:
        arrays[0] = np.reshape(arrays[0], (1, -1))
    if last:
        arrays[-1] = np.reshape(arrays[-1], (-1, 1))
    if any(ndim_of(x) != 2 for x in arrays):
        raise np.linalg.LinAlgError("multi_dot: every array but the first and last must be 2-D")
    split = _chain_order([shape_of(x) for x in arrays])

    def product(i, j):
        if i == j:
            return arrays[i]
        k = split[i][j]
        return _matmul(product(i, k), product(k + 1, j))

    r = product(0, len(arrays) - 1)
    if first and last:
        return np.reshape(r, ())
    if first or last:
        return np.reshape(r, (-1,))
    return r


@handles(np.linalg.tensorinv)
def _tensorinv(a, ind=2):
    s = shape_of(a)
    if ind <= 0:
        raise ValueError("Invalid ind argument.")
    rows, cols = s[:ind], s[ind:]
    a2 = np.reshape(a, (math.prod(rows), -1))
    return np.reshape(inv_p(a2), cols + rows)


@handles(np.linalg.tensorsolve)
def _tensorsolve(a, b, axes=None):
    if axes is not None:
        nd = ndim_of(a)
        axes = [k % nd for k in axes]
        a = np.transpose(a, [k for k in range(nd) if k not in axes] + axes)
    s = shape_of(a)
    x_shape = s[ndim_of(b):]
    n = math.prod(x_shape)
    a2 = np.reshape(a, (-1, n))
    if shape_of(a2)[0] != n:
        raise np.linalg.LinAlgError("tensorsolve: a is not square once reshaped")
    x = solve_p(a2, np.reshape(b, (n, 1)))
    return np.reshape(x, x_shape)


# ----- Linear layer -----
# ``linear(x, w, b) = x wᵀ + b``: one primitive instead of transpose, matmul and add, for
# speed (the most frequent operation of a network). x (..., in), w (out, in), b (out,).
def _linear_w_vjp(g, ans, x, w, b):
    # Σ over every row of x: gᵀ x with all leading axes of x folded into rows; a batch of
    # cotangents keeps its own leading axis.
    batch = lead(g, ans)
    gm = g.reshape(batch + (-1, shape_of(g)[-1]))
    xm = x.reshape((-1, shape_of(x)[-1]))
    return mT(gm) @ xm


def _linear(x, w, b):
    # x wᵀ + b: the leading axes of x folded into rows (``_mm``), and b added in place (a
    # second full-size temporary costs page faults at training sizes) where that is
    # NumPy's own result, a bias of the output's dtype and features.
    out = _mm(x, w.T)
    if type(out) is np.ndarray and type(b) is np.ndarray and b.dtype == out.dtype and \
            b.shape == out.shape[-1:] and out.ndim:
        out += b
        return out
    return out + b


linear_p = defprim(
    "linear", _linear,
    jvp=(lambda t, ans, x, w, b: t @ mT(w), lambda t, ans, x, w, b: x @ mT(t),
         lambda t, ans, x, w, b: t),
    vjp=(lambda g, ans, x, w, b: g @ w, _linear_w_vjp, lambda g, ans, x, w, b: g),
    broadcasts=True, flops=lambda ans, x, w, b: 2 * np.size(ans) * np.shape(w)[-1])


# ----- Dependency structure (the sparsity mode) -----
# Products from their index structure (a constant matrix's zeros narrow A @ x); the
# inverse, determinant and solve are dense within each matrix of a stack.
matmul_p.sparsity = dependency.matmul
linear_p.sparsity = dependency.linear
inv_p.sparsity = adjugate_p.sparsity = dependency.stacked(2)
det_p.sparsity = logabsdet_p.sparsity = dependency.stacked(2)
solve_p.sparsity = dependency.stacked(2, 2)
