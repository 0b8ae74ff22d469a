"""Products and ``numpy.linalg``: matmul, inv, solve, det, log|det|; dot, outer, norm.

The primitives work on stacks of matrices (``(..., m, n)``) whose leading axes broadcast as
in ``np.matmul``; 1-D operands are promoted to matrices by the NumPy entry points, so the
rules never special-case vectors. With ``X = A⁻¹``: ``dX = -X dA X``; for ``x = A⁻¹b``:
``dx = A⁻¹(db - dA x)``; ``d det A = det A · tr(A⁻¹ dA)``.
"""
import numpy as np

from ..core import lead, ndim_of, shape_of
from .define import check_no_out, defprim, handles, norm_axes


def mT(a):
    """Matrix transpose of a stack: swap the last two axes (the array method: NumPy's
    ``np.swapaxes`` adds a Python-level call)."""
    return a.swapaxes(-1, -2)


matmul_p = defprim(
    "matmul", lambda a, b: np.matmul(a, b),
    jvp=(lambda t, ans, a, b: t @ b, lambda t, ans, a, b: a @ t),
    vjp=(lambda g, ans, a, b: g @ mT(b), lambda g, ans, a, b: mT(a) @ g),
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


det_p = defprim(
    "det", lambda a: np.linalg.det(a),
    jvp=(lambda t, ans, a: ans * _trace_inv_dot(a, t),),
    vjp=(lambda g, ans, a: _mat(g * ans) * mT(inv_p(a)),),
    flops=lambda ans, a: np.size(a) * np.shape(a)[-1] * 2 // 3)

logabsdet_p = defprim(
    "logabsdet", lambda a: np.linalg.slogdet(a)[1],
    jvp=(lambda t, ans, a: _trace_inv_dot(a, t),),
    vjp=(lambda g, ans, a: _mat(g) * mT(inv_p(a)),),
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


@handles(np.dot)
def _dot(a, b, out=None):
    check_no_out(out, "dot")
    if ndim_of(a) == 0 or ndim_of(b) == 0:
        return a * b
    if ndim_of(a) <= 2 and ndim_of(b) <= 2:
        return _matmul(a, b)
    raise NotImplementedError("np.dot of arrays with more than 2 dimensions on tracked "
                              "values; use np.matmul or np.einsum-style reshapes")


@handles(np.outer)
def _outer(a, b, out=None):
    check_no_out(out, "outer")
    return np.reshape(a, (-1, 1)) * np.reshape(b, (1, -1))


@handles(np.linalg.inv)
def _inv(a):
    return inv_p(a)


@handles(np.linalg.solve)
def _solve(a, b):
    if ndim_of(b) == 1:
        return np.reshape(solve_p(a, np.reshape(b, (-1, 1))), (-1,))
    return solve_p(a, b)


@handles(np.linalg.det)
def _det(a):
    return det_p(a)


@handles(np.linalg.slogdet)
def _slogdet(a):
    from ..boxes import unbox
    sign = np.linalg.slogdet(unbox(a))[0]
    return type(np.linalg.slogdet(np.eye(1)))(sign, logabsdet_p(a))


@handles(np.linalg.norm)
def _norm(x, ord=None, axis=None, keepdims=False):
    nd = ndim_of(x)
    if axis is None and ord is None:
        axes = norm_axes(None, nd)
    elif axis is None:
        axes = norm_axes(None, nd)
        if nd == 2:
            return _matrix_norm(x, ord, axes, keepdims)
        if nd != 1:
            raise ValueError("Improper number of dimensions to norm.")
    else:
        axes = norm_axes(axis, nd)
        if len(axes) == 2:
            return _matrix_norm(x, ord, axes, keepdims)
    return _vector_norm(x, ord, axes, keepdims)


def _vector_norm(x, ord, axes, keepdims):
    ax = np.abs(x)
    if ord is None or ord == 2:
        return np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims))
    if ord == np.inf:
        return np.max(ax, axis=axes, keepdims=keepdims)
    if ord == -np.inf:
        return np.min(ax, axis=axes, keepdims=keepdims)
    if ord == 1:
        return np.sum(ax, axis=axes, keepdims=keepdims)
    if ord == 0:
        return np.sum((ax != 0) * 1.0, axis=axes, keepdims=keepdims)
    return np.sum(ax ** ord, axis=axes, keepdims=keepdims) ** (1.0 / ord)


def _matrix_norm(x, ord, axes, keepdims):
    ax = np.abs(x)
    r, c = axes
    if ord in (None, "fro"):
        return np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        inner, outer = (r, c) if ord in (1, -1) else (c, r)
        s = np.sum(ax, axis=inner, keepdims=True)
        pick = np.max if ord in (1, np.inf) else np.min
        out = pick(s, axis=outer, keepdims=True)
        return out if keepdims else np.reshape(out, tuple(
            d for i, d in enumerate(shape_of(out)) if i - ndim_of(out) not in axes))
    raise NotImplementedError(f"np.linalg.norm(ord={ord!r}) of a matrix (needs the SVD) "
                              "has no derivative rule yet")


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


linear_p = defprim(
    "linear", lambda x, w, b: np.matmul(x, w.T) + b,
    jvp=(lambda t, ans, x, w, b: t @ mT(w), lambda t, ans, x, w, b: x @ mT(t),
         lambda t, ans, x, w, b: t),
    vjp=(lambda g, ans, x, w, b: g @ w, _linear_w_vjp, lambda g, ans, x, w, b: g),
    broadcasts=True, flops=lambda ans, x, w, b: 2 * np.size(ans) * np.shape(w)[-1])
