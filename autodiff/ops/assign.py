"""Assignment, as NumPy users write it: ``x[i] = v``, ``x.at[i].add(v)``, tracked constructors.

Arrays of the engine are values: ``setitem(x, v, idx)`` returns a new array equal to ``x``
with ``v`` written at ``idx``, so a value saved by an earlier record is never overwritten
(copy-on-write) and every derivative stays right. ``x[i] = v`` on a tracked ``x`` applies it
and makes ``x`` the result in place (``Box.__setitem__``). With unique positions the rules
are those of a masked sum: ``d out = dx`` outside ``idx`` and ``dv`` at ``idx``; the
transpose zeroes the cotangent at ``idx`` for ``x`` and gathers it there for ``v``.
Repeated integer indices are split into rounds of unique positions, applied in order, so
``set`` keeps NumPy's last write and ``multiply``/``min``/``max`` compose per occurrence.
"""
import numpy as np

from ..arrays import sum_to, zeros
from ..boxes import P, concrete, meta, unbox
from ..core import box_types, lead, ndim_of, shape_of
from . import dependency
from .define import defprim, handles
from .shape import _basic, _batch_last, _norm_index, _take, getitem_p, index_add_p


# ----- The primitive -----
def _setitem(x, v, idx):
    out = np.array(x, copy=True)
    out[idx] = v
    return out


def _write(t, v, idx, nb):
    """``setitem`` on a tangent/cotangent ``t`` with ``nb`` leading batch axes (moved last,
    out of the index's reach); a batched ``v`` moves its batch axis last as well."""
    if nb == 0:
        return setitem_p(t, v, idx=idx)
    if ndim_of(v) > 0 and type(v) is not float:
        m = ndim_of(v)
        v = np.transpose(v, tuple(range(1, m)) + (0,))
    return _batch_last(lambda T, i: setitem_p(T, v, idx=i), t, nb, idx)


def _setitem_jvp(tans, ans, x, v, idx):
    tx, tv = tans
    if tx is None:                      # x a constant: its tangent is zero (tv's array type)
        tx = zeros(lead(tv, v) + shape_of(x), np.result_type(meta(tv), meta(x)),
                   like=meta(tv))
    return _write(tx, 0.0 if tv is None else tv, idx, ndim_of(tx) - ndim_of(x))


def _setitem_vjp(g, ans, x, v, idx):
    nb = ndim_of(g) - ndim_of(ans)
    gx = _write(g, 0.0, idx, nb)
    gv = sum_to(_batch_last(_take, g, nb, idx), v, nb)
    return [gx, gv]


setitem_p = defprim("setitem", _setitem, jvp=_setitem_jvp, vjp=_setitem_vjp, flops=0)


# ----- Repeated positions: rounds of unique writes -----
def _rounds(shape, idx, v):
    """``[(idx_r, v_r)]``: the writes of ``x[idx] = v`` as rounds with unique positions, in
    NumPy's order (the r-th occurrence of every position in round r)."""
    if _basic(idx):
        return [(idx, v)]
    pos = np.arange(int(np.prod(shape)), dtype=np.intp).reshape(shape)[idx]
    flat = pos.ravel()
    order = np.argsort(flat, kind="stable")
    s = flat[order]
    first = np.r_[True, s[1:] != s[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(s.size), 0))
    occ = np.empty(s.size, dtype=np.intp)
    occ[order] = np.arange(s.size) - start
    if s.size == 0 or occ.max() == 0:
        return [(idx, v)]
    vs = np.reshape(np.broadcast_to(v, pos.shape), (-1,))
    out = []
    for r in range(int(occ.max()) + 1):
        sel = np.flatnonzero(occ == r)
        out.append((np.unravel_index(flat[sel], shape), vs[sel]))
    return out


def assign(x, idx, v, op=None):
    """``x`` with ``op(x[idx], v)`` (``v`` itself when ``op`` is None) written at ``idx``,
    as a new (tracked) array."""
    idx = _norm_index(idx)
    for i, vr in _rounds(shape_of(x), idx, v):
        new = vr if op is None else op(getitem_p(x, idx=i), vr)
        x = setitem_p(x, new, idx=i)
    return x


# ----- x.at[idx]: JAX's functional updates -----
class At:
    """``x.at[idx].set(v)`` and friends: a new array, ``x`` unchanged (JAX's habit).

    >>> import autodiff as ad
    >>> ad.grad(lambda x: np.sum(x.at[1].set(x[0] ** 2) ** 2))(np.array([1.0, 2.0, 3.0]))
    array([6., 0., 6.])
    """
    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x

    def __getitem__(self, idx):
        return _AtIndex(self.x, idx)


class _AtIndex:
    __slots__ = ("x", "idx")

    def __init__(self, x, idx):
        self.x, self.idx = x, idx

    def get(self):
        return self.x[self.idx]

    def set(self, v):
        return assign(self.x, self.idx, v)

    def add(self, v):
        # Repeated positions accumulate (np.add.at): one scatter-add, no rounds needed.
        idx = _norm_index(self.idx)
        shape = shape_of(self.x)
        sub = np.empty(shape, dtype=bool)[idx].shape
        return self.x + index_add_p(np.broadcast_to(v, sub), idx=idx, shape=shape)

    def subtract(self, v):
        return self.add(-v)

    def multiply(self, v):
        return assign(self.x, self.idx, v, np.multiply)

    def divide(self, v):
        return assign(self.x, self.idx, v, np.divide)

    def power(self, v):
        return assign(self.x, self.idx, v, np.power)

    def min(self, v):
        return assign(self.x, self.idx, v, np.minimum)

    def max(self, v):
        return assign(self.x, self.idx, v, np.maximum)

    def apply(self, fn):
        return assign(self.x, self.idx, None, lambda old, _: fn(old))


def at(x):
    """``at(x)[idx].set(v)`` on plain and tracked arrays alike (tracked ones also have
    ``x.at``): what to write where a NumPy array may or may not be tracked."""
    return At(x)


# ----- Tracked constructors -----
def _top(*args):
    top = None
    for a in args:
        if type(a) in box_types and (top is None or a.level > top.level):
            top = a
    return top


def constant_like(like, value):
    """``value`` as a tracked constant at the top level of ``like`` (no derivative of its
    own), so that writing tracked values into it records them; plain if ``like`` is."""
    top = _top(like)
    return value if top is None else top.constant(value)


def _filled(like, fill, shape, dtype):
    """An array of ``shape`` filled with ``fill``, tracked when ``like`` or ``fill`` is and
    the dtype can carry a derivative (float or complex)."""
    dt = np.dtype(dtype) if dtype is not None else np.result_type(meta(fill))
    if dt.kind not in "fc":
        return np.full(shape, unbox(fill), dtype=dt)
    zeros = constant_like(_top(like, fill), np.zeros(shape, dtype=dt))
    shape, fs = shape_of(meta(zeros)), shape_of(fill)
    extra = len(fs) - len(shape)
    if extra > 0 and all(d == 1 for d in fs[:extra]):
        fill = np.reshape(fill, fs[extra:])      # NumPy's copyto drops leading 1s of fill
    if np.broadcast_shapes(shape_of(fill), shape) != shape:
        raise ValueError(f"could not broadcast input array from shape {fs} into shape {shape}")
    return zeros + fill if type(fill) in box_types or np.any(unbox(fill) != 0) else zeros


def _like_dtype(a, dtype):
    return np.result_type(meta(a)) if dtype is None else dtype


@handles(np.zeros_like, np.empty_like)
def _zeros_like(a, dtype=None, order="K", subok=True, shape=None, **kw):
    return _filled(a, 0.0, shape_of(a) if shape is None else shape, _like_dtype(a, dtype))


@handles(np.ones_like)
def _ones_like(a, dtype=None, order="K", subok=True, shape=None, **kw):
    return _filled(a, 1.0, shape_of(a) if shape is None else shape, _like_dtype(a, dtype))


@handles(np.full_like)
def _full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, **kw):
    return _filled(a, fill_value, shape_of(a) if shape is None else shape,
                   _like_dtype(a, dtype))


def like_constructor(func, like, args, kwargs):
    """``func(*args, like=like)`` (NumPy hands ``like``'s ``__array_function__`` the call
    without it): the array as a tracked constant at ``like``'s level."""
    kwargs = {k: v for k, v in kwargs.items() if k not in ("order", "device")}
    if func is np.full:
        shape, fill = (args + (kwargs.pop("fill_value", None),))[:2]
        return _filled(like, fill, shape, kwargs.get("dtype"))
    if func in (np.array, np.asarray, np.asanyarray, np.ascontiguousarray):
        from .assembly import array_of
        value = array_of(*args, **kwargs)
        return value if type(value) in box_types else constant_like(
            like, value) if value.dtype.kind in "fc" else value
    value = LIKE_CONSTRUCTORS[func](*args, **kwargs)
    return constant_like(like, value) if value.dtype.kind in "fc" else value


LIKE_CONSTRUCTORS = {np.zeros: np.zeros, np.empty: np.zeros, np.ones: np.ones,
                     np.full: np.full, np.identity: np.identity, np.eye: np.eye,
                     np.array: np.array, np.asarray: np.asarray,
                     np.asanyarray: np.asanyarray, np.ascontiguousarray: np.ascontiguousarray}


# ----- In-place NumPy functions on tracked arrays -----
def _target(a, name):
    if type(a) not in box_types:
        raise TypeError(
            f"np.{name} (also used by np.full and np.full_like) would write a tracked "
            "value into a plain ndarray, dropping its derivative. Create the array tracked "
            "with `np.zeros_like(x)`, `np.full_like(x, v)` with a tracked x, or "
            "`np.full(n, v, like=x)`.")
    return a


@handles(np.copyto)
def _copyto(dst, src, casting="same_kind", where=True):
    _target(dst, "copyto")
    if where is True:
        dst[...] = src
    else:
        dst[...] = np.where(where, src, dst)


@handles(np.fill_diagonal)
def _fill_diagonal(a, val, wrap=False):
    _target(a, "fill_diagonal")
    s = shape_of(a)
    if len(s) == 2 and not wrap:
        n = min(s)
        idx = (np.arange(n), np.arange(n))
    else:
        flat = np.arange(int(np.prod(s))).reshape(s)
        probe = np.zeros(s, dtype=bool)
        np.fill_diagonal(probe, True, wrap=wrap)
        idx = np.unravel_index(flat[probe], s)
    m = len(idx[0])
    if ndim_of(val) and m:
        # NumPy writes through a.flat: val's entries in order, repeated or cut to the
        # diagonal's length (a (2, 2) val on the diagonal of a (2, 2, 2) array: two of them)
        v = np.ravel(val)
        k = int(np.size(meta(v)))
        if k != m:
            v = v[np.arange(m) % k]
        val = v
    a[idx] = val


@handles(np.put)
def _put(a, ind, v, mode="raise"):
    _target(a, "put")
    s = shape_of(a)
    n = int(np.prod(s))
    ind = np.ravel(np.asarray(ind))
    if mode == "wrap":
        ind = ind % n
    elif mode == "clip":
        ind = np.clip(ind, 0, n - 1)
    else:                               # NumPy's: negative indices count from the end
        bad = (ind < -n) | (ind >= n)
        if np.any(bad):
            raise IndexError(f"index {ind[bad][0]} is out of bounds for axis 0 with size {n}")
        ind = ind % n if n else ind
    if ndim_of(v):                      # NumPy repeats v over the indices as needed
        v = np.ravel(v)
        k = int(np.size(meta(v)))
        if k != ind.size and k:
            v = v[np.arange(ind.size) % k]
    a[np.unravel_index(ind, s)] = v


@handles(np.put_along_axis)
def _put_along_axis(arr, indices, values, axis):
    _target(arr, "put_along_axis")
    s = shape_of(arr)
    if axis is None:
        arr[np.unravel_index(np.ravel(indices), s)] = values
        return
    axis = axis % len(s)
    idx = tuple(indices if k == axis else np.arange(n).reshape(
        (1,) * k + (n,) + (1,) * (len(s) - k - 1)) for k, n in enumerate(s))
    arr[idx] = values


@handles(np.place)
def _place(arr, mask, vals):
    # NumPy repeats ``vals`` as needed over the True positions, in order.
    _target(arr, "place")
    mask = np.asarray(concrete(mask), dtype=bool)
    n = int(np.count_nonzero(mask))
    if n:
        arr[mask] = np.ravel(vals)[np.arange(n) % int(np.size(meta(vals)))]


@handles(np.putmask)
def _putmask(a, mask, values):
    # NumPy takes values[k % len] for the k-th position of the flattened array.
    _target(a, "putmask")
    s = shape_of(a)
    mask = np.broadcast_to(np.asarray(concrete(mask), dtype=bool), s)
    flat = np.flatnonzero(mask)
    if flat.size:
        a[np.unravel_index(flat, s)] = np.ravel(values)[flat % int(np.size(meta(values)))]


@handles(np.copy)
def _copy(a, order="K", subok=False):
    return P["positive"](a)


# Dependency structure (the sparsity mode): x's elements outside idx, v's inside.
setitem_p.sparsity = dependency.gather
