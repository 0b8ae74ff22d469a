"""Shape primitives: reshape, transpose, broadcast, indexing, concatenation, casts.

All are linear, so each rule moves the tangent or cotangent the way the primitive moves
its input. A batch of directions rides on a leading axis (``lead``); indexing moves it to
the end instead, where no index can reach it.
"""
import numpy as np

from ..arrays import asarray, sum_to
from ..boxes import data, meta, unbox
from ..core import box_types, lead, ndim_of, shape_of
from . import dependency
from .define import check_no_out, defprim, handles, norm_axes


def _batch_perm(axes, nb):
    return tuple(range(nb)) + tuple(a + nb for a in axes)


# ----- Reshape and transpose -----
# (ndarray's methods where the value is one: NumPy's functions add their dispatch, about
# a microsecond per call of a replayed program or an eager sweep)
def _reshape(x, shape):
    return x.reshape(shape) if type(x) is np.ndarray else np.reshape(x, shape)


def _transpose(x, axes):
    return x.transpose(axes) if type(x) is np.ndarray else np.transpose(x, axes)


reshape_p = defprim(
    "reshape", _reshape,
    jvp=(lambda t, ans, x, shape: np.reshape(t, lead(t, x) + shape_of(ans)),),
    vjp=(lambda g, ans, x, shape: np.reshape(g, lead(g, ans) + shape_of(x)),), flops=0)

transpose_p = defprim(
    "transpose", _transpose,
    jvp=(lambda t, ans, x, axes: np.transpose(t, _batch_perm(axes, ndim_of(t) - len(axes))),),
    vjp=(lambda g, ans, x, axes: np.transpose(
        g, _batch_perm(tuple(np.argsort(axes)), ndim_of(g) - len(axes))),), flops=0)


def _broadcast_jvp(t, ans, x, shape):
    nb = ndim_of(t) - ndim_of(x)
    s = shape_of(t)
    t = np.reshape(t, s[:nb] + (1,) * (len(shape) - ndim_of(x)) + s[nb:])
    return np.broadcast_to(t, s[:nb] + shape)


def _broadcast_vjp(g, ans, x, shape):
    return sum_to(g, x, ndim_of(g) - len(shape))


broadcast_to_p = defprim("broadcast_to", lambda x, shape: np.broadcast_to(x, shape),
                         jvp=(_broadcast_jvp,), vjp=(_broadcast_vjp,), flops=0)

# NumPy returns these as views of their input (reshape and ravel when the layout allows;
# refusing a write is right either way): a write through one is refused (Box.__setitem__).
reshape_p.view = ("reshape (x.reshape, np.reshape, ravel, squeeze, expand_dims, "
                  "atleast_2d, x.flat, ...)")
transpose_p.view = "transpose (x.T, np.transpose, swapaxes, moveaxis, ...)"
broadcast_to_p.view = "np.broadcast_to (a read-only view in NumPy)"


@handles(np.reshape)
def _reshape(a, shape=None, order="C", **kw):
    shape = kw.pop("newshape", shape)
    if order != "C":
        raise NotImplementedError("reshape of a tracked value supports order='C' only")
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(int(d) for d in shape)
    if -1 in shape:
        shape = np.empty(shape_of(a), dtype=bool).reshape(shape).shape
    if shape == shape_of(a):
        return a
    return reshape_p(a, shape=shape)


@handles(np.ravel)
def _ravel(a, order="C"):
    return _reshape(a, (-1,), order)


@handles(np.squeeze)
def _squeeze(a, axis=None):
    s = shape_of(a)
    axes = [i for i, d in enumerate(s) if d == 1] if axis is None else \
        [i % len(s) for i in (axis if isinstance(axis, tuple) else (axis,))]
    return _reshape(a, tuple(d for i, d in enumerate(s) if i not in axes))


@handles(np.expand_dims)
def _expand_dims(a, axis):
    return _reshape(a, np.expand_dims(np.empty(shape_of(a), dtype=bool), axis).shape)


@handles(np.transpose)
def _transpose(a, axes=None):
    n = ndim_of(a)
    axes = tuple(range(n))[::-1] if axes is None else tuple(int(i) % n for i in axes)
    if axes == tuple(range(n)):
        return a
    return transpose_p(a, axes=axes)


def _axes_list(axes, n):
    """User axes (an int or a sequence) as non-negative ints, checked as NumPy checks them."""
    out = [norm_axes(int(a), n)[0] + n for a in np.atleast_1d(axes)]
    if len(set(out)) != len(out):
        raise ValueError("repeated axis")
    return out


@handles(np.swapaxes)
def _swapaxes(a, axis1, axis2):
    n = ndim_of(a)
    axes = list(range(n))
    (i,), (j,) = _axes_list(axis1, n), _axes_list(axis2, n)
    axes[i], axes[j] = axes[j], axes[i]
    return _transpose(a, axes)


@handles(np.moveaxis)
def _moveaxis(a, source, destination):
    n = ndim_of(a)
    src, dst = _axes_list(source, n), _axes_list(destination, n)
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number "
                         "of elements")
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return _transpose(a, order)


@handles(np.broadcast_to)
def _broadcast_to(array, shape, subok=False):
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if shape == shape_of(array):
        return array
    return broadcast_to_p(array, shape=shape)


# ----- Indexing -----
def _norm_index(idx):
    """A hashable-free, canonical index: a tuple, lists as arrays, tracked values unboxed."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out = []
    for i in idx:
        i = data(i)     # computed from values (ad.jit records it; sparsity refuses it)
        if type(i) in box_types:
            out.append(i)
            continue
        if isinstance(i, list):
            i = np.asarray(i)
            if i.size == 0 and i.dtype.kind == "f":
                i = i.astype(np.intp)       # NumPy reads an empty list as integer indices
        out.append(i)
    return tuple(out)


def _basic(idx):
    """True when no integer array appears, so no position is picked twice."""
    for i in idx:
        if isinstance(i, np.ndarray) and i.dtype != bool:
            return False
    return True


def _trailing(idx):
    # With the batch axis moved last, an Ellipsis would swallow it: name it explicitly.
    return idx + (slice(None),) if any(i is Ellipsis for i in idx) else idx


def _batch_last(fn, t, nb, idx, *rest):
    """Apply an indexing ``fn`` to ``t`` whose ``nb`` leading axes are a batch."""
    if nb == 0:
        return fn(t, idx, *rest)
    n = ndim_of(t)
    moved = t.transpose(tuple(range(1, n)) + (0,))
    out = fn(moved, _trailing(idx), *rest)
    m = ndim_of(out)
    return out.transpose((m - 1,) + tuple(range(m - 1)))


def _batched(fn, t, nb, idx, shape=None):
    """``fn(t, idx)``, or the scatter ``fn(t, idx, shape)`` into the unbatched ``shape``, for
    ``t`` with ``nb`` leading batch axes. Basic indices (ints, slices, None, Ellipsis) get
    the batch axes sliced in front: no transposes, and contiguous results. Others (arrays,
    whose result axes NumPy may move to the front) reach ``t`` with its batch axes last."""
    if nb == 0:
        return fn(t, idx) if shape is None else fn(t, idx, shape)
    lead = shape_of(t)[:nb]
    for i in idx:
        if type(i) not in _BASIC:
            return _batch_last(fn, t, nb, idx) if shape is None else \
                _batch_last(fn, t, nb, idx, shape + lead)
    full = (slice(None),) * nb + idx
    return fn(t, full) if shape is None else fn(t, full, lead + shape)


def _take(x, idx):
    if type(x) is float:        # a 0-d cotangent seeded as a Python float (idx is ())
        x = np.float64(x)
    return getitem_p(x, idx=idx)


def _put(g, idx, shape):
    return index_add_p(g, idx=idx, shape=shape)


def _index_add(g, idx, shape):
    z = np.zeros(shape, dtype=g.dtype if type(g) is np.ndarray else np.result_type(g))
    if _basic(idx):
        z[idx] = g
    else:
        _scatter_add(z, idx, g)
    return z


def _scatter_add(acc, idx, g):
    """``np.add.at(acc, idx, g)``. Rows picked by one integer array (a gather's transpose:
    ``x[i]`` with pair lists, ASE's neighbour lists) of float64 values are one ``bincount``,
    several times faster than ``add.at`` and the same sums in the same order (NumPy's own
    ``add.at`` is fast on 1-d targets, which keep it)."""
    if len(idx) == 1 and type(idx[0]) is np.ndarray and idx[0].dtype.kind in "iu" \
            and acc.ndim > 1 and acc.dtype == np.float64 and np.result_type(g) == np.float64 \
            and idx[0].size:
        i = idx[0].ravel()
        n = acc.shape[0]
        if i.min() < 0:
            i = np.where(i < 0, i + n, i)
        m = acc.size // n
        flat = acc.reshape(-1)
        if i.min() >= 0 and m:
            gm = np.broadcast_to(g, idx[0].shape + acc.shape[1:]).reshape(-1)
            sums = np.bincount((i[:, None] * m + np.arange(m)).reshape(-1), weights=gm,
                               minlength=flat.size)
            if sums.size == flat.size:          # else an index is out of bounds
                flat += sums
                return
    np.add.at(acc, idx, g)                      # (and NumPy's IndexError, by name)


getitem_p = defprim(
    "getitem", lambda x, idx: x[idx],
    jvp=(lambda t, ans, x, idx: _batched(_take, t, ndim_of(t) - ndim_of(x), idx),),
    vjp=(lambda g, ans, x, idx: _batched(_put, g, ndim_of(g) - ndim_of(ans), idx,
                                         shape_of(x)),), flops=0)

# ``index_add(g, idx, shape)``: zeros of ``shape`` with ``g`` added at ``idx`` (the
# transpose of indexing; repeated integer indices accumulate).
index_add_p = defprim(
    "index_add", _index_add,
    jvp=(lambda t, ans, g, idx, shape: _batched(_put, t, ndim_of(t) - ndim_of(g), idx,
                                                shape),),
    vjp=(lambda c, ans, g, idx, shape: _batched(_take, c, ndim_of(c) - len(shape), idx),),
    flops=0)


def _getitem_into(acc, g, ans, x, idx):
    if _basic(idx):
        acc[idx] += g
    else:
        _scatter_add(acc, idx, g)


getitem_p.vjp_into = _getitem_into

_BASIC = (int, slice, type(None), type(Ellipsis))


def index(x, idx):
    """``x[idx]`` on a tracked value (``Box.__getitem__``)."""
    t = type(idx)
    if t in _BASIC:
        idx = (idx,)
    elif not (t is tuple and all(type(i) in _BASIC for i in idx)):
        idx = _norm_index(idx)
    return x.apply(getitem_p, (x,), {"idx": idx})


# ----- Joining -----
def _concatenate_vjp(g, ans, *xs, axis):
    ends = np.cumsum([shape_of(x)[axis] for x in xs])
    tail = (slice(None),) * (-axis - 1)
    return [getitem_p(g, idx=(Ellipsis, slice(e - shape_of(x)[axis], e)) + tail)
            for x, e in zip(xs, ends)]


concatenate_p = defprim("concatenate", lambda *xs, axis: np.concatenate(xs, axis=axis),
                        vjp=_concatenate_vjp, linear=True, flops=0)


@handles(np.concatenate)
def _concatenate(arrays, axis=0, out=None, dtype=None, casting=None):
    check_no_out(out, "concatenate")
    # Plain operands as arrays: the rules take their shapes and dtypes (lists have none).
    arrays = [a if type(a) in box_types else asarray(a) for a in arrays]
    if axis is None:
        arrays, axis = [_ravel(a) for a in arrays], 0
    nd = ndim_of(arrays[0])
    return concatenate_p(*arrays, axis=norm_axes(axis, nd)[0])


@handles(np.stack)
def _stack(arrays, axis=0, out=None, dtype=None, casting=None):
    check_no_out(out, "stack")
    arrays = list(arrays)
    nd = ndim_of(arrays[0]) + 1
    axis = norm_axes(axis, nd)[0]
    return concatenate_p(*[_expand_dims(a, axis) for a in arrays], axis=axis)


@handles(np.hstack)
def _hstack(tup, dtype=None, casting=None):
    arrays = [_atleast_1d(a) for a in tup]
    return _concatenate(arrays, axis=0 if ndim_of(arrays[0]) == 1 else 1)


@handles(np.vstack, np.row_stack)      # row_stack: NumPy's deprecated alias
def _vstack(tup, dtype=None, casting=None):
    return _concatenate([_atleast_2d(a) for a in tup], axis=0)


def _atleast_1d(a):
    return _reshape(a, (1,)) if ndim_of(a) == 0 else a


def _atleast_2d(a):
    return _reshape(a, (1,) * (2 - ndim_of(a)) + shape_of(a)) if ndim_of(a) < 2 else a


# ----- Casts -----
astype_p = defprim(
    "astype", lambda x, dtype: np.asarray(x).astype(dtype),
    vjp=(lambda g, ans, x, dtype: astype_p(g, dtype=np.result_type(x)),), linear=True, flops=0)


@handles(np.astype)
def _astype(x, dtype, /, *, copy=True, device=None):
    return x.astype(dtype)      # the method's rule: casts between float kinds only


# ----- Metadata: no derivative, no refusal -----
@handles(np.shape)
def _shape(a):
    return shape_of(a)


@handles(np.ndim)
def _ndim(a):
    return ndim_of(a)


@handles(np.size)
def _size(a, axis=None):
    return np.size(meta(a), axis)


@handles(np.result_type)
def _result_type(*arrays_and_dtypes):
    return np.result_type(*[meta(a) for a in arrays_and_dtypes])



# ----- Dependency structure (the sparsity mode): data movement, read off the implementation -----
for _p in (reshape_p, transpose_p, broadcast_to_p, getitem_p, concatenate_p):
    _p.sparsity = dependency.gather
astype_p.sparsity = dependency.elementwise
index_add_p.sparsity = dependency.scatter_add
