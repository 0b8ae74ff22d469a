"""Products: one ``einsum`` primitive, and every other product as a composition of it.

``einsum`` is multilinear, so each rule is an einsum again with the subscripts rearranged:
for ``C = einsum("ij,jk->ik", A, B)``, ``dC = einsum("ij,jk->ik", dA, B) + (A, dB)`` and
``Ā = einsum("ik,jk->ij", C̄, B)``. A batch of directions gets a fresh letter. The entry
point reduces everything else to this form first: ``...`` becomes letters, a letter
repeated within an operand becomes a diagonal (``np.diagonal``), size-1 axes are broadcast,
and more than two operands are contracted pairwise along ``np.einsum_path``.
``tensordot``, ``inner``, ``dot``, ``kron``, ``cross``, ``vdot`` and the NumPy 2
vector/matrix products build on it or on ``matmul``. Convolution is a sliding dot product,
``correlate(x, w)[k] = Σ_j x[k+j] w[j]``, whose rules are sliding dot products again;
``interp`` is a primitive for speed.

>>> import autodiff as ad
>>> f = lambda a, b: np.einsum("ij,jk->ik", a, b).sum()    # ∂/∂a = rows of b summed
>>> ad.grad(f)(np.ones((2, 3)), np.arange(6.0).reshape(3, 2))
array([[1., 5., 9.],
       [1., 5., 9.]])
"""
import functools
import math
import string

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..boxes import meta
from ..core import box_types, is_complex, lead, ndim_of, shape_of
from . import dependency
from .define import broadcast, check_no_out, defprim, handles, norm_axes
from .assembly import _arr
from .linalg import _matmul

__all__ = ["einsum_p", "correlate_p", "interp_p", "einsum"]

_LETTERS = string.ascii_letters


def _conj(x):
    """``conj(x)``, skipped on real values (no record, no complex dtype)."""
    return np.conj(x) if is_complex(x) else x


# ----- einsum -----
def _split(subscripts):
    ins, out = subscripts.split("->")
    return ins.split(","), out


def _fresh(subscripts):
    """A letter the subscripts do not use: the batch axis of a tangent or cotangent."""
    return next(c for c in _LETTERS if c not in subscripts)


def _einsum_impl(*ops, subscripts):
    # Large two-operand contractions go to BLAS (tensordot) through NumPy's optimizer; small
    # ones skip its path search, which costs more than the contraction.
    big = len(ops) == 2 and np.size(ops[0]) * np.size(ops[1]) > 1 << 16
    return np.einsum(subscripts, *ops, optimize=big)


def _einsum_jvp(i, t, ans, *ops, subscripts):
    ins, out = _split(subscripts)
    b = _fresh(subscripts) if lead(t, ops[i]) else ""
    ins[i] = b + ins[i]
    return einsum_p(*ops[:i], t, *ops[i + 1:], subscripts=",".join(ins) + "->" + b + out)


def _einsum_vjp(i, g, ans, *ops, subscripts):
    ins, out = _split(subscripts)
    batch = lead(g, ans)
    b = _fresh(subscripts) if batch else ""
    others = [(o, s) for j, (o, s) in enumerate(zip(ops, ins)) if j != i]
    seen = set(out).union(*[s for _, s in others])
    keep = "".join(c for c in ins[i] if c in seen)
    r = einsum_p(g, *[o for o, _ in others],
                 subscripts=",".join([b + out] + [s for _, s in others]) + "->" + b + keep)
    if keep != ins[i]:
        # Letters summed within operand i alone: its cotangent is constant along them.
        x_shape = shape_of(ops[i])
        r = np.reshape(r, batch + tuple(d if c in seen else 1 for c, d in zip(ins[i], x_shape)))
        r = broadcast(r, batch + x_shape)
    return r


def _einsum_flops(ans, *ops):
    if len(ops) < 2:
        return np.size(ops[0])
    # Exact for a contraction where every letter sits in two of the three arrays.
    return 2 * int(math.sqrt(np.size(ops[0]) * np.size(ops[1]) * max(np.size(ans), 1)))


# One rule per operand position; the entry point passes one or two operands.
einsum_p = defprim(
    "einsum", _einsum_impl,
    jvp=tuple(functools.partial(_einsum_jvp, i) for i in range(32)),
    vjp=tuple(functools.partial(_einsum_vjp, i) for i in range(32)),
    flops=_einsum_flops)


def _from_sublists(args):
    """``einsum(op0, sublist0, op1, sublist1, ..., [sublistout])`` as a subscripts string."""
    def letters(sub):
        return "".join("..." if s is Ellipsis else _LETTERS[int(s)] for s in sub)
    ops, subs = list(args[0::2]), [letters(s) for s in args[1::2]]
    out = None
    if len(subs) < len(ops):          # odd count: the last entry is the output sublist
        out = letters(ops.pop())
    return ",".join(subs) + ("" if out is None else "->" + out), ops


def _normalise(subscripts, ops):
    """Explicit subscripts with distinct letters per operand and no ``...``; the operands
    with diagonals taken and size-1 axes broadcast. Returns (ins, out, ops)."""
    subscripts = subscripts.replace(" ", "")
    ins, out = subscripts.split("->") if "->" in subscripts else (subscripts, None)
    ins = ins.split(",")
    if len(ins) != len(ops):
        raise ValueError("more operands provided to einstein sum function than specified "
                         "in the subscripts string" if len(ops) > len(ins) else
                         "fewer operands provided to einstein sum function than specified "
                         "in the subscripts string")
    # '...' becomes fresh letters, aligned from the right across operands (broadcasting).
    fresh = [c for c in _LETTERS if c not in subscripts]
    n_ell = max([ndim_of(o) - len(s) + 3 for s, o in zip(ins, ops) if "..." in s] or [0])
    ell = "".join(fresh[:n_ell])
    ins = [s.replace("...", ell[n_ell - (ndim_of(o) - len(s) + 3):]) if "..." in s else s
           for s, o in zip(ins, ops)]
    if out is None:                   # implicit mode: letters seen once, sorted
        alls = "".join(ins)
        out = ell + "".join(sorted(c for c in set(alls) if alls.count(c) == 1 and c not in ell))
    elif "..." in out:
        out = out.replace("...", ell)
    elif ell:
        raise ValueError("output has more dimensions than subscripts given in einstein sum, "
                         "but no '...' ellipsis provided to broadcast the extra dimensions.")
    ops = list(ops)
    for k, (s, o) in enumerate(zip(ins, ops)):
        if len(s) != ndim_of(o):
            raise ValueError(f"einstein sum subscripts string contains too many subscripts "
                             f"for operand {k}")
        while len(set(s)) < len(s):   # a repeated letter: take that diagonal
            c = next(c for c in s if s.count(c) > 1)
            i = s.index(c)
            j = s.index(c, i + 1)
            o = np.diagonal(o, 0, i, j)
            s = "".join(ch for p, ch in enumerate(s) if p not in (i, j)) + c
        ins[k], ops[k] = s, o
    sizes = {}
    for s, o in zip(ins, ops):
        for c, d in zip(s, shape_of(o)):
            if sizes.get(c, 1) == 1:          # size 1 broadcasts (to 0 too); 0 stays 0
                sizes[c] = d
            elif d not in (1, sizes[c]):
                raise ValueError(f"operands could not be broadcast together: dimension "
                                 f"{c!r} is {sizes[c]} and {d}")
    for k, (s, o) in enumerate(zip(ins, ops)):
        want = tuple(sizes[c] for c in s)
        if want != shape_of(o):
            ops[k] = np.broadcast_to(o, want)
    if len(set(out)) < len(out) or not set(out) <= set(sizes):
        raise ValueError(f"einstein sum output subscripts {out!r} repeat a letter or name "
                         "one that no operand has")
    return ins, out, ops


def einsum(subscripts, *ops, optimize="greedy"):
    """``np.einsum`` on tracked operands: normalised, then one or more ``einsum_p`` calls,
    two operands at a time for three or more (in ``np.einsum_path``'s order)."""
    ins, out, ops = _normalise(subscripts, ops)
    if len(ops) <= 2:
        return einsum_p(*ops, subscripts=",".join(ins) + "->" + out)
    if optimize is False or optimize is None:
        optimize = "greedy"
    path = np.einsum_path(",".join(ins) + "->" + out,
                          *[np.empty(shape_of(o)) for o in ops], optimize=optimize)[0]
    for step in path[1:]:
        picked = [(ops.pop(i), ins.pop(i)) for i in sorted(step, reverse=True)]
        needed = set(out).union(*ins)
        inter = out if not ins else "".join(
            dict.fromkeys(c for _, s in picked for c in s if c in needed))
        ops.append(einsum_p(*[o for o, _ in picked],
                            subscripts=",".join(s for _, s in picked) + "->" + inter))
        ins.append(inter)
    return ops[0] if ins[0] == out else einsum_p(ops[0], subscripts=ins[0] + "->" + out)


@handles(np.einsum)
def _einsum(*operands, out=None, optimize=False, dtype=None, order="K", casting="safe"):
    check_no_out(out, "einsum")
    if isinstance(operands[0], str):
        subscripts, ops = operands[0], operands[1:]
    else:
        subscripts, ops = _from_sublists(operands)
    r = einsum(subscripts, *ops, optimize=optimize)
    return r if dtype is None else r.astype(dtype)


# ----- Compositions of einsum and matmul -----
def _letters(n, skip=""):
    return "".join(c for c in _LETTERS if c not in skip)[:n]


@handles(np.tensordot, np.linalg.tensordot)
def _tensordot(a, b, axes=2):
    na, nb = ndim_of(a), ndim_of(b)
    if isinstance(axes, (int, np.integer)):
        ax_a, ax_b = list(range(na - int(axes), na)), list(range(int(axes)))
    else:
        ax_a, ax_b = ([x] if isinstance(x, (int, np.integer)) else list(x) for x in axes)
        ax_a, ax_b = [i % na for i in ax_a], [i % nb for i in ax_b]
    if len(ax_a) != len(ax_b) or any(shape_of(a)[i] != shape_of(b)[j]
                                     for i, j in zip(ax_a, ax_b)):
        raise ValueError("shape-mismatch for sum")
    sa = _letters(na)
    free_b = iter(_letters(nb, sa))
    sb = "".join(sa[ax_a[ax_b.index(j)]] if j in ax_b else next(free_b) for j in range(nb))
    out = "".join(c for i, c in enumerate(sa) if i not in ax_a) + \
        "".join(c for j, c in enumerate(sb) if j not in ax_b)
    return einsum_p(a, b, subscripts=f"{sa},{sb}->{out}")


@handles(np.inner)
def _inner(a, b):
    a, b = _arr(a), _arr(b)
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        return a * b
    return _tensordot(a, b, ([-1], [-1]))


@handles(np.dot)
def _dot(a, b, out=None):
    check_no_out(out, "dot")
    a, b = _arr(a), _arr(b)
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        return a * b
    if na <= 2 and nb <= 2:
        return _matmul(a, b)
    # N-d: the last axis of a with the second-to-last of b (the last, for a vector b).
    return _tensordot(a, b, ([-1], [max(nb - 2, 0)]))


@handles(np.vdot)
def _vdot(a, b):
    a, b = _arr(a), _arr(b)
    return _matmul(np.ravel(_conj(a)), np.ravel(b))


@handles(np.outer)
def _outer(a, b, out=None):
    check_no_out(out, "outer")
    return np.reshape(a, (-1, 1)) * np.reshape(b, (1, -1))


@handles(np.linalg.outer)
def _linalg_outer(x1, x2, /):
    if ndim_of(x1) != 1 or ndim_of(x2) != 1:
        raise ValueError("Input arrays must be one-dimensional")
    return _outer(x1, x2)


@handles(np.kron)
def _kron(a, b):
    na, nb = ndim_of(a), ndim_of(b)
    if na == 0 or nb == 0:
        return a * b
    nd = max(na, nb)
    sa = (1,) * (nd - na) + shape_of(a)
    sb = (1,) * (nd - nb) + shape_of(b)
    # a[i]·b[k] at i·len(b) + k: interleave the axes of a and b, then merge each pair.
    a2 = np.reshape(a, tuple(d for p in zip(sa, (1,) * nd) for d in p))
    b2 = np.reshape(b, tuple(d for p in zip((1,) * nd, sb) for d in p))
    return np.reshape(a2 * b2, tuple(x * y for x, y in zip(sa, sb)))


@handles(np.cross)
def _cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    if axis is not None:
        axisa = axisb = axisc = axis
    a = np.moveaxis(a, axisa, -1)
    b = np.moveaxis(b, axisb, -1)
    da, db = shape_of(a)[-1], shape_of(b)[-1]
    if da not in (2, 3) or db not in (2, 3):
        raise ValueError("incompatible dimensions for cross product\n"
                         "(dimension must be 2 or 3)")
    a0, a1, a2 = a[..., 0], a[..., 1], (a[..., 2] if da == 3 else None)
    b0, b1, b2 = b[..., 0], b[..., 1], (b[..., 2] if db == 3 else None)
    c2 = a0 * b1 - a1 * b0
    if da == 2 and db == 2:
        return c2
    # A missing third component is zero.
    c0 = a1 * b2 if a2 is None else (-(a2 * b1) if b2 is None else a1 * b2 - a2 * b1)
    c1 = -(a0 * b2) if a2 is None else (a2 * b0 if b2 is None else a2 * b0 - a0 * b2)
    shape = np.broadcast_shapes(shape_of(c0), shape_of(c1), shape_of(c2))
    return np.stack([np.broadcast_to(c, shape) for c in (c0, c1, c2)],
                    axis=norm_axes(axisc, len(shape) + 1)[0])


@handles(np.linalg.cross)
def _linalg_cross(x1, x2, /, *, axis=-1):
    if shape_of(x1)[axis] != 3 or shape_of(x2)[axis] != 3:
        raise ValueError("Both input arrays must be (arrays of) 3-dimensional vectors")
    return _cross(x1, x2, axis=axis)


def _gufunc_kw(kw, name):
    check_no_out(kw.pop("out", None), name)
    kw.pop("casting", None)
    kw.pop("dtype", None)
    if kw:
        raise NotImplementedError(f"np.{name}(..., {', '.join(kw)}=) on tracked values")


@handles(np.vecdot, np.linalg.vecdot)
def _vecdot(x1, x2, /, *, axis=-1, **kw):
    """Σ conj(x1)·x2 along ``axis`` (both conjugate the first argument)."""
    _gufunc_kw(kw, "vecdot")
    return np.sum(_conj(x1) * x2, axis=axis)


@handles(np.matvec)
def _matvec(x1, x2, /, **kw):
    _gufunc_kw(kw, "matvec")
    x1, x2 = _arr(x1), _arr(x2)
    return _matmul(x1, np.expand_dims(x2, -1))[..., 0]


@handles(np.vecmat)
def _vecmat(x1, x2, /, **kw):
    """conj(x1)ᵀ·x2: NumPy's vecmat conjugates the vector."""
    _gufunc_kw(kw, "vecmat")
    x1, x2 = _arr(x1), _arr(x2)
    return _matmul(np.expand_dims(_conj(x1), -2), x2)[..., 0, :]


@handles(np.linalg.matmul)
def _linalg_matmul(x1, x2, /):
    return _matmul(_arr(x1), _arr(x2))


@handles(np.linalg.matrix_transpose)
def _matrix_transpose(x, /):
    if ndim_of(x) < 2:
        raise ValueError("Input array must be at least 2-dimensional")
    return np.swapaxes(x, -1, -2)


@handles(np.linalg.diagonal)
def _linalg_diagonal(x, /, *, offset=0):
    return np.diagonal(x, offset, -2, -1)


@handles(np.linalg.trace)
def _linalg_trace(x, /, *, offset=0, dtype=None):
    return np.trace(x, offset, -2, -1, dtype=dtype)


# ----- Convolution -----
# ``correlate(x, w)[..., k] = Σ_j x[..., k+j] w[..., j]`` for k = 0 … n-m ("valid"), leading
# axes broadcasting as in matmul. A primitive for speed (one windowed matmul, no index
# arrays). Bilinear, so its JVP is itself; its VJPs are sliding dot products again:
# x̄ = the full convolution of ḡ with w (correlate the zero-padded ḡ with reversed w),
# w̄ = correlate(x, ḡ).
def _correlate_impl(x, w):
    m = np.shape(w)[-1]
    win = sliding_window_view(x, m, axis=-1)
    return np.matmul(win, np.expand_dims(w, -1))[..., 0]


def _pad_last(x, before, after):
    s = shape_of(x)[:-1]
    dt = np.result_type(x)
    parts = ([np.zeros(s + (before,), dt)] if before else []) + [x] + \
        ([np.zeros(s + (after,), dt)] if after else [])
    return np.concatenate(parts, axis=-1) if len(parts) > 1 else x


def _correlate_vjp_x(g, ans, x, w):
    m = shape_of(w)[-1]
    return correlate_p(_pad_last(g, m - 1, m - 1), w[..., ::-1])


correlate_p = defprim(
    "correlate", _correlate_impl,
    jvp=(lambda t, ans, x, w: correlate_p(t, w), lambda t, ans, x, w: correlate_p(x, t)),
    vjp=(_correlate_vjp_x, lambda g, ans, x, w: correlate_p(x, g)),
    broadcasts=True, flops=lambda ans, x, w: 2 * np.size(ans) * np.shape(w)[-1])


def _full_then_mode(a, v, mode, name):
    """The full correlation of 1-D ``a`` and ``v`` (zero-extended), cut to ``mode`` as
    NumPy cuts it: 'valid' where they overlap fully; 'same' the length of the longer one,
    centred, an odd extra element on the right — on the left for ``correlate`` with the
    shorter input first, which NumPy computes swapped and reversed."""
    if ndim_of(a) != 1 or ndim_of(v) != 1:
        raise ValueError(f"{name}: object too deep for desired array")
    n, m = shape_of(a)[0], shape_of(v)[0]
    if n == 0 or m == 0:
        raise ValueError(f"{name}: inputs cannot be empty")
    full = correlate_p(_pad_last(a, m - 1, m - 1), v)
    k = min(n, m)
    if mode == "full":
        return full
    if mode == "same":
        start = k // 2 if name == "correlate" and n < m else (k - 1) - k // 2
        return full[start:start + max(n, m)]
    if mode == "valid":
        return full[k - 1:max(n, m)]
    raise ValueError(f"mode must be one of 'valid', 'same', or 'full' (got {mode!r})")


@handles(np.correlate)
def _np_correlate(a, v, mode="valid"):
    """Σ_n a[n+k]·conj(v[n]): NumPy conjugates the second argument."""
    a, v = _arr(a), _arr(v)
    return _full_then_mode(a, _conj(v), mode, "correlate")


@handles(np.convolve)
def _np_convolve(a, v, mode="full"):
    """Σ_m a[m]·v[k-m]: the correlation with v reversed (no conjugate)."""
    a, v = _arr(a), _arr(v)
    if ndim_of(v) == 1:
        v = v[::-1]
    return _full_then_mode(a, v, mode, "convolve")


# ----- Polynomials and interpolation -----
@handles(np.polyval)
def _polyval(p, x):
    """Horner's scheme, y = (…(p₀x + p₁)x + …)x + pₙ: differentiable in p and x."""
    p, x = _arr(p), _arr(x)
    if ndim_of(p) != 1:
        raise NotImplementedError("np.polyval of a tracked value needs 1-D coefficients")
    y = p[0] + 0.0 * x if shape_of(p)[0] == 1 else p[0]
    for i in range(1, shape_of(p)[0]):
        y = y * x + p[i]
    return y


def _segment(x, xp):
    """Index j of the segment [xp[j], xp[j+1]] that holds x (clamped to the end segments),
    and where x lies inside [xp[0], xp[-1]]. Plain values: they carry no derivative."""
    n = shape_of(xp)[0]
    j = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, max(n - 2, 0))
    inside = (x >= xp[0]) & (x <= xp[-1])
    return j, inside if type(inside) in box_types else np.asarray(inside)


def _interp_slope(ans, x, xp, fp):
    """∂y/∂x: the slope of the segment holding x, 0 outside [xp[0], xp[-1]]."""
    if shape_of(xp)[0] < 2:
        return 0.0 * x
    j, inside = _segment(x, xp)
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    return np.where(inside, slope, 0.0)


def _interp_weight(x, xp):
    """w in y = (1-w)·fp[j] + w·fp[j+1] (0 left of xp[0], 1 right of xp[-1])."""
    j, inside = _segment(x, xp)
    if shape_of(xp)[0] < 2:
        return j, 0.0 * x
    w = (x - xp[j]) / (xp[j + 1] - xp[j])
    return j, np.where(inside, w, (x > xp[-1]) * 1.0)


def _interp_fp_jvp(t, ans, x, xp, fp):
    j, w = _interp_weight(x, xp)
    return t[..., j] * (1.0 - w) + t[..., np.minimum(j + 1, shape_of(xp)[0] - 1)] * w


def _interp_fp_vjp(g, ans, x, xp, fp):
    from .shape import index_add_p
    j, w = _interp_weight(x, xp)
    shape = lead(g, ans) + shape_of(fp)
    j1 = np.minimum(j + 1, shape_of(xp)[0] - 1)
    return index_add_p(g * (1.0 - w), idx=(Ellipsis, j), shape=shape) + \
        index_add_p(g * w, idx=(Ellipsis, j1), shape=shape)


def _interp_xp(*args):
    # None would claim a zero derivative; the knots' positions do move y.
    raise NotImplementedError("np.interp: no derivative with respect to the sample points "
                              "xp; pass xp as a constant (it may not be tracked)")


# A primitive for speed: NumPy's C loop evaluates, and one record replaces the ~12 (two
# searches, four gathers, arithmetic) of a composition.
def _as_ans(t, ans):
    """A tangent in the primal's dtype: NumPy's interp is float64 for float32 inputs."""
    dt = meta(ans).dtype
    return t if meta(t).dtype == dt else t.astype(dt)


interp_p = defprim(
    "interp", lambda x, xp, fp: np.interp(x, xp, fp),
    jvp=(lambda t, ans, x, xp, fp: _as_ans(t * _interp_slope(ans, x, xp, fp), ans),
         _interp_xp, lambda t, ans, x, xp, fp: _as_ans(_interp_fp_jvp(t, ans, x, xp, fp), ans)),
    vjp=(lambda g, ans, x, xp, fp: g * _interp_slope(ans, x, xp, fp), _interp_xp,
         _interp_fp_vjp),
    flops=10)


@handles(np.interp)
def _interp(x, xp, fp, left=None, right=None, period=None):
    x, xp, fp = _arr(x), _arr(xp), _arr(fp)
    if period is not None:
        if type(xp) in box_types:
            _interp_xp()
        if period == 0:
            raise ValueError("period must be a non-zero value")
        period = abs(period)
        left = right = None
        x = x - period * np.floor(x / period)          # floor carries no derivative
        xp = np.asarray(xp, dtype=float) % period
        order = np.argsort(xp)
        xp, fp = xp[order], fp[order]
        xp = np.concatenate([xp[-1:] - period, xp, xp[:1] + period])
        fp = np.concatenate([fp[-1:], fp, fp[:1]])
    if ndim_of(xp) != 1 or ndim_of(fp) != 1:
        raise ValueError("object too deep for desired array")
    if shape_of(xp)[0] != shape_of(fp)[0]:
        raise ValueError("fp and xp are not of the same length.")
    y = interp_p(x, xp, fp)
    if left is not None:
        y = np.where(x < xp[0], left, y)
    if right is not None:
        y = np.where(x > xp[-1], right, y)
    return y


# ----- Dependency structure (the sparsity mode) -----
# einsum from its subscripts (a constant operand's zeros narrow it), correlate as the
# contraction of a sliding window of x with w, interp elementwise in x and dense in fp.
einsum_p.sparsity = dependency.einsum
correlate_p.sparsity = dependency.correlate
interp_p.sparsity = dependency.interp
