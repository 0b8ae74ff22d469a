"""Shape manipulation and array assembly as compositions of the shape primitives.

Every function here only moves, copies, selects or linearly combines elements, so each is
a linear map ``y = A x`` written with the primitives of ``shape.py`` (``reshape``,
``transpose``, ``broadcast_to``, ``getitem``, ``index_add``, ``concatenate``) and ``where``;
their rules give ``dy = A dx`` and ``x̄ = Aᵀ ȳ`` with no new derivative math.

Regular rearrangements (flips, rolls, tiles, splits, stacks) use views and concatenation,
whose reverse rules copy instead of scattering. Irregular ones use one trick: NumPy's own
function runs on the element numbers ``0 … size-1`` of ``x`` (plain integers), and the
numbers it returns gather ``x``'s flat elements: ``y = ravel(x)[f(arange(x.size))]`` in
``x``'s shape (``insert``, ``delete``, ``resize``, ``pad``'s copying modes). NumPy then does
the shape logic and the argument checks, so the semantics are NumPy's by construction; a
flat gather (its transpose a flat scatter-add) is also the fastest advanced index, which is
why ``take_along_axis`` gathers by flat numbers too.

Sorting follows the sorting permutation (as JAX): ``sort(x) = take_along_axis(x,
argsort(x))``, so tied elements each keep their own derivative. No new primitive pays here.

NumPy dispatches ``pad`` on its first argument and ``select`` on the conditions and choices
only: a tracked ``constant_values`` or ``default`` alone does not reach these handlers.
"""
import operator

import numpy as np

from ..arrays import asarray
from ..boxes import concrete, lift, meta, recorded, unbox
from ..core import box_types, ndim_of, shape_of
from .define import check_no_out, handles, norm_axes
from .elementwise import where_p
from .shape import (_atleast_1d, _atleast_2d, _concatenate, _ravel, _reshape, _transpose,
                    getitem_p, index_add_p)


# ----- Helpers -----
def _has_box(x):
    if type(x) in box_types:
        return True
    if isinstance(x, (list, tuple)):
        return any(_has_box(e) for e in x)
    return False


def _build(x):
    if isinstance(x, (list, tuple)) and _has_box(x):
        return np.stack([_build(e) for e in x])
    if isinstance(x, (list, tuple)):
        return np.asarray(x, dtype=float)
    return x


def array_of(object, dtype=None, copy=True, **kw):
    """``np.array``; a (nested) list holding tracked values becomes a tracked array
    (``autodiff.numpy.array`` and ``np.array(..., like=x)``)."""
    if _has_box(object):
        out = _build(object)
        return out if dtype is None else out.astype(dtype)
    return np.array(object, dtype=dtype, copy=copy, **kw)


def _arr(x):
    """A tracked value as it is; anything else as a plain array."""
    return x if type(x) in box_types else asarray(x)


def _axis(axis, nd):
    """One user axis as a non-negative int (indices are applied to primal values only,
    where no batch axis exists)."""
    return norm_axes(operator.index(axis), nd)[0] + nd


def _along(x, axis, i):
    """``x`` indexed by ``i`` (an int, slice or index array) along non-negative ``axis``."""
    return getitem_p(x, idx=(slice(None),) * axis + (i,))


def _as_view(out, what):
    """Mark ``out`` as what NumPy returns as a view (``np.flip``, ``np.split``, …): a write
    into it would reach the input in NumPy, but tracked arrays share no memory, so it is
    refused (``boxes._no_write_through``) instead of silently lost."""
    if type(out) in box_types and ndim_of(out) > 0:
        out._view = what
    return out


def _numbers(x):
    """The element numbers of ``x``: ``arange(x.size)`` in ``x``'s shape."""
    s = shape_of(x)
    return np.arange(int(np.prod(s, dtype=np.int64))).reshape(s)


def _gather(x, codes):
    """``ravel(x)[codes]``: the elements of ``x`` whose numbers ``codes`` holds."""
    if recorded(codes):
        return getitem_p(_ravel(x), idx=(codes,))
    return getitem_p(_ravel(x), idx=(np.asarray(codes, dtype=np.intp),))


def _rearranged(x, f):
    """``x``'s elements moved as NumPy's ``f`` moves them (``f`` runs on element numbers)."""
    return _gather(x, f(_numbers(x)))


def _several(f, arys):
    out = tuple(f(a) for a in arys)
    return out[0] if len(out) == 1 else out


# ----- Flips, rotations, rolls -----
@handles(np.flip)
def _flip(m, axis=None):
    nd = ndim_of(m)
    if axis is None and nd == 0:
        return m
    idx = [slice(None)] * nd
    for a in norm_axes(axis, nd):
        idx[a] = slice(None, None, -1)
    return _as_view(getitem_p(m, idx=tuple(idx)), "np.flip (also flipud, fliplr, rot90)")


@handles(np.fliplr)
def _fliplr(m):
    if ndim_of(m) < 2:
        raise ValueError("Input must be >= 2-d.")
    return _flip(m, 1)


@handles(np.flipud)
def _flipud(m):
    if ndim_of(m) < 1:
        raise ValueError("Input must be >= 1-d.")
    return _flip(m, 0)


@handles(np.rot90)
def _rot90(m, k=1, axes=(0, 1)):
    # NumPy's own composition: a rotation is a flip and a transpose.
    nd = ndim_of(m)
    axes = tuple(axes)
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    a0, a1 = _axis(axes[0], nd), _axis(axes[1], nd)
    if a0 == a1:
        raise ValueError("Axes must be different.")
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return _flip(_flip(m, a0), a1)
    perm = list(range(nd))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    return _transpose(_flip(m, a1), perm) if k == 1 else _flip(_transpose(m, perm), a1)


@handles(np.roll)
def _roll(a, shift, axis=None):
    if axis is None:
        return _reshape(_roll(_ravel(a), shift, 0), shape_of(a))
    nd = ndim_of(a)
    shifts = {}
    for s, ax in np.broadcast(shift, axis):
        ax = _axis(ax, nd)
        shifts[ax] = shifts.get(ax, 0) + int(s)
    for ax, s in shifts.items():
        n = shape_of(a)[ax]
        s = s % n if n else 0
        if s:   # the last s elements move to the front: two views, one concatenation
            a = _concatenate([_along(a, ax, slice(n - s, None)), _along(a, ax, slice(0, n - s))],
                             axis=ax)
    return a


@handles(np.rollaxis)
def _rollaxis(a, axis, start=0):
    n = ndim_of(a)
    axis = _axis(axis, n)
    start = operator.index(start)
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise np.exceptions.AxisError(f"'start' arg requires {-n} <= start < {n + 1}, "
                                      f"but {start} was passed in")
    if axis < start:
        start -= 1
    if axis == start:
        return a
    axes = list(range(n))
    axes.remove(axis)
    axes.insert(start, axis)
    return _transpose(a, axes)


@handles(np.permute_dims)
def _permute_dims(a, axes=None):
    return _transpose(a, axes)


@handles(np.matrix_transpose)
def _matrix_transpose(x):
    if ndim_of(x) < 2:
        raise ValueError("Input array must be at least 2-dimensional, "
                         f"but it is {ndim_of(x)}")
    return np.swapaxes(x, -1, -2)


# ----- Tiling and repeating: broadcasts, no copies until the final reshape -----
@handles(np.tile)
def _tile(A, reps):
    reps = tuple(reps) if np.iterable(reps) else (reps,)
    reps = tuple(operator.index(r) for r in reps)
    nd = max(len(reps), ndim_of(A))
    shape = (1,) * (nd - ndim_of(A)) + shape_of(A)
    reps = (1,) * (nd - len(reps)) + reps
    # (s0, s1, …) -> (1, s0, 1, s1, …) -> broadcast (r0, s0, r1, s1, …) -> (r0·s0, r1·s1, …)
    x = _reshape(A, sum(((1, s) for s in shape), ()))
    x = np.broadcast_to(x, sum(((r, s) for r, s in zip(reps, shape)), ()))
    return _reshape(x, tuple(r * s for r, s in zip(reps, shape)))


@handles(np.repeat)
def _repeat(a, repeats, axis=None):
    if axis is None:
        a, axis = _ravel(a), 0
    elif ndim_of(a) == 0:       # NumPy reads a 0-d array as 1-d here (axis 0 or -1)
        a = _ravel(a)
    s = shape_of(a)
    axis = _axis(axis, len(s))
    r = np.asarray(concrete(repeats))
    if r.size == 1:     # one count for all: insert an axis after ``axis``, broadcast, merge
        k = operator.index(r.reshape(()).item())
        if k < 0:
            raise ValueError("repeats may not contain negative values.")
        x = _reshape(a, s[:axis + 1] + (1,) + s[axis + 1:])
        x = np.broadcast_to(x, s[:axis + 1] + (k,) + s[axis + 1:])
        return _reshape(x, s[:axis] + (s[axis] * k,) + s[axis + 1:])
    return _along(a, axis, np.repeat(np.arange(s[axis]), r))


@handles(np.resize)
def _resize(a, new_shape):
    new_shape = (new_shape,) if isinstance(new_shape, (int, np.integer)) else tuple(new_shape)
    size = int(np.prod(new_shape, dtype=np.int64))
    if any(d < 0 for d in new_shape):
        raise ValueError("all elements of `new_shape` must be non-negative")
    if np.size(meta(a)) == 0 or size == 0:
        return np.zeros(new_shape, dtype=np.result_type(meta(a)))   # no element survives
    return _rearranged(a, lambda n: np.resize(n, new_shape))


# ----- Padding -----
def _pad_pairs(pad_width, nd):
    """``pad_width`` as ``nd`` (before, after) pairs, as NumPy reads it."""
    if isinstance(pad_width, dict):
        pairs = [(0, 0)] * nd
        for ax, w in pad_width.items():
            pairs[_axis(ax, nd)] = (w, w) if isinstance(w, (int, np.integer)) else tuple(w)
        pw = np.asarray(pairs)
    else:
        pw = np.asarray(pad_width)
        if pw.dtype.kind not in "iu":
            raise TypeError("`pad_width` must be of integral type.")
        pw = np.broadcast_to(pw, (nd, 2))
    if (pw < 0).any():
        raise ValueError("index can't contain negative values")
    return [(int(b), int(a)) for b, a in pw]


def _pad_constant(array, pw, cv):
    shape = shape_of(array)
    if type(cv) not in box_types:
        # One scatter of x into the padded shape plus the constants (plain).
        out = index_add_p(array, idx=tuple(slice(b, b + s) for s, (b, a) in zip(shape, pw)),
                          shape=tuple(s + b + a for s, (b, a) in zip(shape, pw)))
        if not pw:          # a 0-d array: nothing to pad, as in NumPy
            return out
        c = np.pad(np.zeros(shape, dtype=np.result_type(meta(array))), pw,
                   constant_values=cv)
        return out + c if c.any() else out
    # Tracked constants: axis by axis, as NumPy fills them (later axes cover the corners).
    cvb = np.broadcast_to(cv, (len(shape), 2))
    out = array
    for ax, (b, a) in enumerate(pw):
        blocks = []
        for side, w in ((0, b), (1, a)):
            s = list(shape_of(out))
            s[ax] = w
            blocks.append(np.broadcast_to(cvb[ax, side], tuple(s)) if w else None)
        out = _concatenate([x for x in (blocks[0], out, blocks[1]) if x is not None], axis=ax)
    return out


def _pad_stat(array, pw, stat, stat_length):
    """``maximum``/``minimum``/``mean``/``median``: axis by axis, each side a statistic of
    the first/last ``stat_length`` elements, broadcast over its width."""
    nd = ndim_of(array)
    lengths = [(None, None)] * nd if stat_length is None else \
        np.broadcast_to(np.asarray(stat_length), (nd, 2)).tolist()
    out = array
    for ax, ((b, a), (lb, la)) in enumerate(zip(pw, lengths)):
        n = shape_of(out)[ax]
        parts = [out]
        for w, ln, before in ((b, lb, True), (a, la, False)):
            if not w:
                continue
            ln = n if ln is None else min(int(ln), n)
            if ln <= 0:
                raise ValueError("stat_length of 0 yields no value for padding")
            region = _along(out, ax, slice(0, ln) if before else slice(n - ln, n))
            s = list(shape_of(out))
            s[ax] = w
            v = np.broadcast_to(stat(region, axis=ax, keepdims=True), tuple(s))
            parts.insert(0 if before else len(parts), v)
        out = _concatenate(parts, axis=ax) if len(parts) > 1 else out
    return out


def _cast(x, dt):
    """``x`` in dtype ``dt`` (NumPy writes padding into an array of the input's dtype)."""
    return x if np.result_type(meta(x)) == dt else x.astype(dt)


def _pad_linear_ramp(array, pw, end_values):
    """Axis by axis, ramps from ``end_values`` to the edge (``linspace`` without endpoint)."""
    nd = ndim_of(array)
    ends = np.broadcast_to(np.asarray(end_values), (nd, 2)).tolist()
    dt = np.result_type(meta(array))
    out = array
    for ax, ((b, a), (eb, ea)) in enumerate(zip(pw, ends)):
        n = shape_of(out)[ax]
        parts = [out]
        if b:
            edge = _along(out, ax, 0)
            parts.insert(0, _cast(np.linspace(eb, edge, b, endpoint=False, axis=ax), dt))
        if a:
            edge = _along(out, ax, n - 1)
            ramp = np.linspace(ea, edge, a, endpoint=False, axis=ax)
            parts.append(_flip(_cast(ramp, dt), ax))
        out = _concatenate(parts, axis=ax) if len(parts) > 1 else out
    return out


def _pad_odd(array, pw, mode):
    """``reflect``/``symmetric`` with ``reflect_type='odd'`` (2·edge − mirror, iterated):
    linear along each axis, so each axis is a matrix NumPy builds by padding the identity.
    Dense, O(n²) per axis: fine for this rare mode."""
    out = array
    for ax, (b, a) in enumerate(pw):
        if b or a:
            n = shape_of(out)[ax]
            m = np.pad(np.eye(n, dtype=np.result_type(meta(out))), ((b, a), (0, 0)),
                       mode=mode, reflect_type="odd")      # in x's dtype: float32 stays
            out = np.moveaxis(np.moveaxis(out, ax, -1) @ m.T, -1, ax)
    return out


_STATS = {"maximum": np.max, "minimum": np.min, "mean": np.mean, "median": np.median}


@handles(np.pad)
def _pad(array, pad_width, mode="constant", **kwargs):
    if callable(mode) or mode == "empty":
        raise NotImplementedError(f"np.pad(mode={mode!r}) on a tracked value: the padding "
                                  "is not a fixed function of the input")
    nd = ndim_of(array)
    if mode in ("edge", "wrap") or mode in ("reflect", "symmetric") and \
            kwargs.get("reflect_type", "even") == "even":
        # Each padded element copies one input element: pad the element numbers.
        return _rearranged(array, lambda n: np.pad(n, pad_width, mode=mode, **kwargs))
    pw = _pad_pairs(pad_width, nd)
    if mode == "constant":
        return _pad_constant(array, pw, kwargs.get("constant_values", 0))
    if mode in _STATS:
        return _pad_stat(array, pw, _STATS[mode], kwargs.get("stat_length"))
    if mode == "linear_ramp":
        return _pad_linear_ramp(array, pw, kwargs.get("end_values", 0))
    if mode in ("reflect", "symmetric"):
        if kwargs["reflect_type"] != "odd":
            raise ValueError(f"unsupported reflect_type {kwargs['reflect_type']!r}")
        return _pad_odd(array, pw, mode)
    raise ValueError(f"mode {mode!r} is not supported")


# ----- Triangles and diagonals -----
def _tri_mask(m, k, lower):
    s = shape_of(m)[-2:]
    mask = np.tri(*s, k=k, dtype=bool) if len(s) == 2 else np.tri(s[0], s[0], k, dtype=bool)
    return mask if lower else ~mask


@handles(np.tril)
def _tril(m, k=0):
    return where_p(_tri_mask(m, operator.index(k), True), m, 0.0)


@handles(np.triu)
def _triu(m, k=0):
    return where_p(_tri_mask(m, operator.index(k) - 1, False), m, 0.0)


def _diagonal_index(n1, n2, offset):
    d = max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))
    i = np.arange(d)
    return (i, i + offset) if offset >= 0 else (i - offset, i)


@handles(np.diagonal)
def _diagonal(a, offset=0, axis1=0, axis2=1):
    nd = ndim_of(a)
    if nd < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    a1, a2 = _axis(axis1, nd), _axis(axis2, nd)
    if a1 == a2:
        raise ValueError("axis1 and axis2 cannot be the same")
    x = np.moveaxis(a, (a1, a2), (-2, -1))      # NumPy appends the diagonal as the last axis
    rows, cols = _diagonal_index(*shape_of(x)[-2:], operator.index(offset))
    return _as_view(getitem_p(x, idx=(Ellipsis, rows, cols)),
                    "np.diagonal (a read-only view in NumPy)")


@handles(np.trace)
def _trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    check_no_out(out, "trace")
    return np.sum(_diagonal(a, offset, axis1, axis2), axis=-1)


@handles(np.diag)
def _diag(v, k=0):
    s = shape_of(v)
    k = operator.index(k)
    if len(s) == 2:
        return _diagonal(v, k)
    if len(s) != 1:
        raise ValueError("Input must be 1- or 2-d.")
    n = s[0] + abs(k)
    i = np.arange(s[0])
    idx = (i, i + k) if k >= 0 else (i - k, i)
    return index_add_p(v, idx=idx, shape=(n, n))


@handles(np.diagflat)
def _diagflat(v, k=0):
    return _diag(_ravel(v), k)


# ----- Splitting -----
def _split_points(n, indices_or_sections):
    try:
        points = [0] + [operator.index(i) for i in indices_or_sections] + [n]
    except TypeError:
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.") from None
        each, extra = divmod(n, sections)
        points = np.cumsum([0] + extra * [each + 1] + (sections - extra) * [each]).tolist()
    return points


@handles(np.array_split)
def _array_split(ary, indices_or_sections, axis=0):
    ax = _axis(axis, ndim_of(ary))
    points = _split_points(shape_of(ary)[ax], indices_or_sections)
    return [_as_view(_along(ary, ax, slice(b, e)), "np.split (also array_split, hsplit, "
                     "vsplit, dsplit)") for b, e in zip(points[:-1], points[1:])]


@handles(np.split)
def _split(ary, indices_or_sections, axis=0):
    if not np.iterable(indices_or_sections) and \
            shape_of(ary)[_axis(axis, ndim_of(ary))] % operator.index(indices_or_sections):
        raise ValueError("array split does not result in an equal division")
    return _array_split(ary, indices_or_sections, axis)


@handles(np.hsplit)
def _hsplit(ary, indices_or_sections):
    if ndim_of(ary) == 0:
        raise ValueError("hsplit only works on arrays of 1 or more dimensions")
    return _split(ary, indices_or_sections, 1 if ndim_of(ary) > 1 else 0)


@handles(np.vsplit)
def _vsplit(ary, indices_or_sections):
    if ndim_of(ary) < 2:
        raise ValueError("vsplit only works on arrays of 2 or more dimensions")
    return _split(ary, indices_or_sections, 0)


@handles(np.dsplit)
def _dsplit(ary, indices_or_sections):
    if ndim_of(ary) < 3:
        raise ValueError("dsplit only works on arrays of 3 or more dimensions")
    return _split(ary, indices_or_sections, 2)


@handles(np.unstack)
def _unstack(x, *, axis=0):
    if ndim_of(x) == 0:
        raise ValueError("Input array must be at least 1-d.")
    ax = _axis(axis, ndim_of(x))
    return tuple(_as_view(_along(x, ax, i), "np.unstack") for i in range(shape_of(x)[ax]))


# ----- Joining -----
@handles(np.atleast_1d)
def _atleast_1d_all(*arys):
    return _several(_atleast_1d, arys)


@handles(np.atleast_2d)
def _atleast_2d_all(*arys):
    return _several(_atleast_2d, arys)


def _atleast_3d(a):
    s = shape_of(a)
    return _reshape(a, (1, 1, 1) if len(s) == 0 else (1,) + s + (1,) if len(s) == 1 else
                    s + (1,) if len(s) == 2 else s)


@handles(np.atleast_3d)
def _atleast_3d_all(*arys):
    return _several(_atleast_3d, arys)


@handles(np.dstack)
def _dstack(tup):
    return _concatenate([_atleast_3d(_arr(a)) for a in tup], axis=2)


@handles(np.column_stack)
def _column_stack(tup):
    cols = []
    for a in tup:
        a = _arr(a)
        s = shape_of(a)
        cols.append(_reshape(a, (-1, 1) if len(s) == 1 else (1, 1)) if len(s) < 2 else a)
    return _concatenate(cols, axis=1)


def _block_depth(x, path=()):
    """Depth of list nesting (all leaves must sit at the same depth) and the leaves' max ndim."""
    if isinstance(x, tuple):
        raise TypeError("arrays is a tuple. Only lists can be used to arrange blocks, and "
                        "np.block does not allow implicit conversion from tuple to ndarray.")
    if not isinstance(x, list):
        return len(path), ndim_of(x)
    if not x:
        raise ValueError(f"List at arrays{''.join(f'[{i}]' for i in path)} cannot be empty")
    found = [_block_depth(e, path + (i,)) for i, e in enumerate(x)]
    if len({d for d, _ in found}) > 1:
        raise ValueError("List depths are mismatched.")
    return found[0][0], max(n for _, n in found)


@handles(np.block)
def _block(arrays):
    depth, leaf_nd = _block_depth(arrays)
    nd = max(depth, leaf_nd)

    def assemble(x, d):
        if isinstance(x, list):     # the innermost lists join along the last axis
            return _concatenate([assemble(e, d + 1) for e in x], axis=d - depth)
        x = _arr(x)
        return _reshape(x, (1,) * (nd - ndim_of(x)) + shape_of(x))
    return assemble(arrays, 0)


@handles(np.append)
def _append(arr, values, axis=None):
    arr, values = _arr(arr), _arr(values)
    if axis is None:
        arr = _ravel(arr) if ndim_of(arr) != 1 else arr
        values, axis = _ravel(values), ndim_of(arr) - 1
    return _concatenate([arr, values], axis=axis)


@handles(np.insert)
def _insert(arr, obj, values, axis=None):
    # Number arr's elements 0…N-1 and values' N…N+M-1, let NumPy insert the numbers (it
    # broadcasts values and places them), then gather from the joined flat elements.
    arr, values = _arr(arr), _arr(values)
    dt, vt = np.result_type(meta(arr)), np.result_type(meta(values))
    if dt.kind in "fc" and vt.kind in "biuf" + dt.kind:
        values = _cast(values, dt)      # NumPy casts values to arr's dtype (7.0 into float32)
    n = _numbers(arr)
    v = n.size + _numbers(values)
    codes = np.insert(n, concrete(obj), v, axis=axis)
    return _gather(_concatenate([_ravel(arr), _ravel(values)], axis=0), codes)


@handles(np.delete)
def _delete(arr, obj, axis=None):
    return _rearranged(arr, lambda n: np.delete(n, concrete(obj), axis=axis))


# ----- Selecting by index -----
@handles(np.take)
def _take(a, indices, axis=None, out=None, mode="raise"):
    check_no_out(out, "take")
    if axis is None or ndim_of(a) == 0:     # NumPy reads a 0-d array as 1-d here
        a, axis = _ravel(a), 0 if axis is None else axis
    ax = _axis(axis, ndim_of(a))
    i = np.asarray(concrete(indices))
    n = shape_of(a)[ax]
    others = shape_of(a)[:ax % ndim_of(a)] + shape_of(a)[ax % ndim_of(a) + 1:]
    if 0 in others:
        # NumPy checks no index when there is no element to take (another axis is empty):
        # the result is empty whatever the indices.
        return np.reshape(a, np.take(np.empty(shape_of(a)), i, axis=ax, mode=mode).shape)
    if mode == "wrap":
        i = i % n
    elif mode == "clip":
        i = np.clip(i, 0, n - 1)
    return _along(a, ax, int(i) if i.ndim == 0 else i)


def _along_axis_codes(shape, indices, axis):
    """Flat element numbers of ``take_along_axis``: ``indices`` along ``axis``, the
    position itself along the others."""
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise IndexError("`indices` must be an integer array")
    if idx.ndim != len(shape):
        raise ValueError("`indices` and `arr` must have the same number of dimensions")
    n = shape[axis]
    idx = np.where(idx < 0, idx + n, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError(f"index out of bounds for axis {axis} with size {n}")
    strides = np.cumprod((1,) + shape[:0:-1])[::-1]
    codes = idx * strides[axis]
    for d, (s, st) in enumerate(zip(shape, strides)):
        if d != axis:
            codes = codes + np.arange(s).reshape((-1,) + (1,) * (len(shape) - d - 1)) * st
    return codes


@handles(np.take_along_axis)
def _take_along_axis(arr, indices, axis=-1):
    if axis is None:
        arr, axis = _ravel(arr), 0
    ax = _axis(axis, ndim_of(arr))
    if recorded(indices):        # under ad.jit: the codes are recorded from the indices
        return _gather(arr, lift(_along_axis_codes, shape_of(arr), indices, ax))
    return _gather(arr, _along_axis_codes(shape_of(arr), unbox(indices), ax))


def _by_permutation(a, perm_of, axis):
    """``a`` reordered along ``axis`` by the plain permutation ``perm_of(values, axis)``."""
    if axis is None:
        a, axis = _ravel(a), -1
    ax = _axis(axis, ndim_of(a))
    if recorded(a):         # under ad.jit: the permutation is recorded from the values
        return _gather(a, lift(lambda v: _along_axis_codes(shape_of(v), perm_of(v, ax), ax), a))
    return _gather(a, _along_axis_codes(shape_of(a), perm_of(unbox(a), ax), ax))


@handles(np.sort)
def _sort(a, axis=-1, kind=None, order=None, *, stable=None):
    if order is not None:
        raise NotImplementedError("np.sort(..., order=) on a tracked value (structured arrays)")
    return _by_permutation(a, lambda v, ax: np.argsort(v, axis=ax, kind=kind, stable=stable),
                           axis)


@handles(np.partition)
def _partition(a, kth, axis=-1, kind="introselect", order=None):
    if order is not None:
        raise NotImplementedError("np.partition(..., order=) on a tracked value")
    return _by_permutation(a, lambda v, ax: np.argpartition(v, kth, axis=ax, kind=kind), axis)


@handles(np.compress)
def _compress(condition, a, axis=None, out=None):
    check_no_out(out, "compress")
    if axis is None or ndim_of(a) == 0:     # NumPy reads a 0-d array as 1-d here
        a, axis = _ravel(a), 0 if axis is None else axis
    keep = np.nonzero(np.ravel(concrete(condition)))[0]
    if 0 in shape_of(a):        # NumPy checks no index when there is nothing to take
        return np.reshape(a, np.compress(np.ravel(unbox(condition)), np.empty(shape_of(a)),
                                         axis=axis).shape)
    return _along(a, _axis(axis, ndim_of(a)), keep)


@handles(np.extract)
def _extract(condition, arr):
    return _gather(arr, np.nonzero(np.ravel(concrete(condition)))[0])


@handles(np.trim_zeros)
def _trim_zeros(filt, trim="fb", axis=None):
    v = np.asarray(unbox(filt))
    trim = trim.lower()
    if trim not in {"fb", "bf", "f", "b"}:
        raise ValueError(f"unexpected character(s) in `trim`: {trim!r}")
    axes = range(v.ndim) if axis is None else \
        [a + v.ndim for a in norm_axes(axis if isinstance(axis, tuple) else (axis,), v.ndim)]
    nz = np.argwhere(v)
    if nz.size == 0:    # all zero: empty along every trimmed axis
        start = stop = [0] * v.ndim
    else:
        start = nz.min(axis=0) if "f" in trim else [None] * v.ndim
        stop = nz.max(axis=0) + 1 if "b" in trim else [None] * v.ndim
    idx = tuple(slice(start[d], stop[d]) if d in axes else slice(None) for d in range(v.ndim))
    return getitem_p(filt, idx=idx)


# ----- Selecting by condition -----
@handles(np.select)
def _select(condlist, choicelist, default=0):
    if len(condlist) != len(choicelist):
        raise ValueError("list of cases must be same length as list of conditions")
    if not condlist:
        raise ValueError("select with an empty condition list is not possible")
    shape = np.broadcast_shapes(*[np.shape(meta(x)) for x in
                                  list(condlist) + list(choicelist) + [default]])
    out = default
    for c, x in zip(condlist[::-1], choicelist[::-1]):    # the first true condition wins
        c = np.asarray(unbox(c))
        if c.dtype != bool:
            raise TypeError("invalid entry in condlist: should be boolean ndarray")
        out = where_p(c, x, out)
    return out if shape_of(out) == shape else np.broadcast_to(out, shape)


@handles(np.choose)
def _choose(a, choices, out=None, mode="raise"):
    check_no_out(out, "choose")
    choices = [choices[k] for k in range(len(choices))]
    i = np.asarray(unbox(a))
    n = len(choices)
    if mode == "wrap":
        i = i % n
    elif mode == "clip":
        i = np.clip(i, 0, n - 1)
    elif i.size and (i.min() < 0 or i.max() >= n):
        raise ValueError("invalid entry in choice array")
    shape = np.broadcast_shapes(i.shape, *[np.shape(meta(x)) for x in choices])
    res = choices[-1]
    for k in range(n - 2, -1, -1):
        res = where_p(i == k, choices[k], res)
    return res if shape_of(res) == shape else np.broadcast_to(res, shape)


# ----- Grids and broadcasting -----
@handles(np.broadcast_arrays)
def _broadcast_arrays(*args, subok=False):
    shape = np.broadcast_shapes(*[shape_of(_arr(a)) for a in args])
    return tuple(np.broadcast_to(_arr(a), shape) for a in args)


@handles(np.meshgrid)
def _meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    nd = len(xi)
    axes = list(range(nd))
    if indexing == "xy" and nd > 1:     # Cartesian: the first input varies along columns
        axes[0], axes[1] = 1, 0
    out = [_reshape(_ravel(_arr(x)), tuple(-1 if d == ax else 1 for d in range(nd)))
           for x, ax in zip(xi, axes)]
    return tuple(out) if sparse else _broadcast_arrays(*out)


# ----- Ranges with tracked ends -----
@handles(np.linspace)
def _linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *,
              device=None):
    # NumPy's formula: y_i = i·step + start, step = (stop - start)/div; the last is stop.
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    if dtype is not None and np.dtype(dtype).kind not in "fc":   # floored: no derivative
        return np.linspace(unbox(start), unbox(stop), num, endpoint, retstep, dtype, axis)
    # NumPy's result dtype (float32 ends stay float32), read off an empty linspace.
    dt = np.linspace(unbox(start), unbox(stop), 0).dtype
    start, stop = [e if type(e) in box_types else np.asarray(e, dt) for e in (start, stop)]
    div = num - 1 if endpoint else num
    delta = stop - start
    y = np.arange(num, dtype=np.finfo(dt).dtype).reshape((-1,) + (1,) * ndim_of(delta))
    if div > 0:
        step = delta / div
        zero = np.any(unbox(step) == 0)     # denormal deltas: divide first, as NumPy does
        y = y / div * delta if zero else y * step
    else:
        step = np.nan
        y = y * delta
    y = y + start
    if endpoint and num > 1:
        last = np.zeros(shape_of(y)[:1], dtype=bool)
        last[-1] = True
        y = where_p(last.reshape((-1,) + (1,) * ndim_of(delta)), stop, y)
    if axis != 0:
        y = np.moveaxis(y, 0, axis)
    if dtype is not None and np.dtype(dtype) != np.result_type(meta(y)):
        y = y.astype(dtype)
    return (y, step) if retstep else y


@handles(np.logspace)
def _logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    if np.ndim(meta(base)):    # an array base broadcasts with the ends (NumPy's rule)
        start, stop, base = _arr(start), _arr(stop), _arr(base)
        nd = max(ndim_of(start), ndim_of(stop), ndim_of(base))
        start, stop, base = [_reshape(x, (1,) * (nd - ndim_of(x)) + shape_of(x))
                             for x in (start, stop, base)]
        base = np.expand_dims(base, axis)
    y = np.power(base, _linspace(start, stop, num, endpoint, axis=axis))
    return y if dtype is None else y.astype(dtype)


@handles(np.geomspace)
def _geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    start, stop = _arr(start), _arr(stop)
    s0, s1 = np.asarray(unbox(start)), np.asarray(unbox(stop))
    if np.any(s0 == 0) or np.any(s1 == 0):
        raise ValueError("Geometric sequence cannot include zero")
    if np.iscomplexobj(s0) or np.iscomplexobj(s1):
        raise NotImplementedError("np.geomspace with complex ends on a tracked value")
    # NumPy's rotation to a positive start; the sign is piecewise constant.
    sign = np.sign(s0)
    start, stop = start / sign, stop / sign
    y = np.exp(_linspace(np.log(start), np.log(stop), num, endpoint))
    # The ends are exactly start and stop (10**log10(x) need not be x).
    nd = ndim_of(y) - 1
    if num > 0:
        first = (np.arange(num) == 0).reshape((-1,) + (1,) * nd)
        y = where_p(first, start, y)
        if num > 1 and endpoint:
            y = where_p(first[::-1], stop, y)
    y = sign * y
    if axis != 0:
        y = np.moveaxis(y, 0, axis)
    return y if dtype is None else y.astype(dtype)


# ----- Sets: every value is an element of an input -----
# ``unique`` and the set operations return elements of their inputs, so each is a gather of
# the flat elements NumPy picks: the first occurrence of each value (as JAX), an element of
# ``ar1`` for a value both inputs hold. Integer outputs (indices, counts) stay plain.
def _checked(vals, want, name):
    """``vals`` if its primal equals NumPy's own result ``want``, else a refusal (an order
    this reconstruction does not reproduce)."""
    if not np.array_equal(np.asarray(unbox(vals)), np.asarray(want), equal_nan=True):
        raise NotImplementedError(f"np.{name} of a tracked value: its result order could not "
                                  "be matched to input elements")
    return vals


@handles(np.unique)
def _unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None,
            **kw):
    v = np.asarray(unbox(ar))
    res = np.unique(v, return_index=True, return_inverse=return_inverse,
                    return_counts=return_counts, axis=axis, **kw)
    idx = res[1]
    if axis is None:
        vals = _gather(ar, idx)
    else:
        vals = _along(_arr(ar), _axis(axis, v.ndim), idx)
    out = (vals,) + ((idx,) if return_index else ()) + tuple(res[2:])
    return out[0] if len(out) == 1 else out


def _first_occurrences(x, want, name):
    """The elements of ``x`` at the first occurrence of each of NumPy's unique values."""
    v = np.asarray(unbox(x))
    return _checked(_gather(x, np.unique(v, return_index=True, equal_nan=False)[1]), want,
                    name)


@handles(np.unique_values)
def _unique_values(x, /):
    return _first_occurrences(x, np.unique_values(np.asarray(unbox(x))), "unique_values")


@handles(np.unique_counts)
def _unique_counts(x, /):
    res = np.unique_counts(np.asarray(unbox(x)))
    return type(res)(_first_occurrences(x, res.values, "unique_counts"), res.counts)


@handles(np.unique_inverse)
def _unique_inverse(x, /):
    res = np.unique_inverse(np.asarray(unbox(x)))
    return type(res)(_first_occurrences(x, res.values, "unique_inverse"), res.inverse_indices)


@handles(np.unique_all)
def _unique_all(x, /):
    res = np.unique_all(np.asarray(unbox(x)))
    vals = _checked(_gather(x, res.indices), res.values, "unique_all")
    return type(res)(vals, res.indices, res.inverse_indices, res.counts)


def _joined(ar1, ar2):
    """``concatenate(ravel(ar1), ravel(ar2))`` and the two plain flat arrays."""
    v1, v2 = np.ravel(unbox(ar1)), np.ravel(unbox(ar2))
    both = _concatenate([_ravel(_arr(ar1)), _ravel(_arr(ar2))], axis=0)
    return both, v1, v2


@handles(np.union1d)
def _union1d(ar1, ar2):
    both, v1, v2 = _joined(ar1, ar2)
    return _unique(both)


@handles(np.intersect1d)
def _intersect1d(ar1, ar2, assume_unique=False, return_indices=False):
    v1, v2 = np.asarray(unbox(ar1)), np.asarray(unbox(ar2))
    common, i1, i2 = np.intersect1d(v1, v2, assume_unique=assume_unique, return_indices=True)
    vals = _checked(_gather(ar1 if type(ar1) in box_types or type(ar2) not in box_types
                            else ar2, i1 if type(ar1) in box_types or
                            type(ar2) not in box_types else i2), common, "intersect1d")
    return (vals, i1, i2) if return_indices else vals


@handles(np.setdiff1d)
def _setdiff1d(ar1, ar2, assume_unique=False):
    v1, v2 = np.ravel(unbox(ar1)), np.asarray(unbox(ar2))
    if assume_unique:
        idx = np.flatnonzero(~np.isin(v1, v2))
    else:
        u, first = np.unique(v1, return_index=True)
        idx = first[~np.isin(u, v2)]
    return _checked(_gather(ar1, idx), np.setdiff1d(v1, v2, assume_unique), "setdiff1d")


@handles(np.setxor1d)
def _setxor1d(ar1, ar2, assume_unique=False):
    both, v1, v2 = _joined(ar1, ar2)
    if assume_unique:
        codes = np.arange(v1.size + v2.size)
    else:
        codes = np.concatenate([np.unique(v1, return_index=True)[1],
                                v1.size + np.unique(v2, return_index=True)[1]])
    aux = np.concatenate([v1, v2])[codes]
    order = np.argsort(aux, kind="stable")
    s = aux[order]
    flag = np.concatenate([[True], s[1:] != s[:-1], [True]])
    idx = codes[order][flag[1:] & flag[:-1]]
    return _checked(_gather(both, idx), np.setxor1d(v1, v2, assume_unique), "setxor1d")


@handles(np.sort_complex)
def _sort_complex(a):
    """``sort`` along the last axis (complex order: real part, then imaginary), as complex."""
    b = _sort(a)
    dt = np.result_type(meta(b))
    if dt.kind == "c":
        return b
    # Adding a complex zero (not astype): the real input's cotangent is then the real part
    # of a complex one, without the casting warning.
    return b + np.zeros((), np.complex64 if dt.char in "bhBH" else np.clongdouble
                        if dt.char == "g" else np.complex128)
