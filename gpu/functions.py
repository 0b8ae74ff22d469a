"""NumPy's functions on ``DeviceArray``s: what ``__array_ufunc__`` and ``__array_function__``
reach, each a short composition of the kernels' templates.

Ufuncs run the map template with NumPy's result dtype (NEP 50: a Python scalar is weak);
reductions move the reduced axes last and run the two-pass row reduction; shape functions
are strided copies (``reshape`` shares the buffer); indexing turns NumPy's own index
semantics into a flat position map once (computed on the host from the shape alone) and
gathers or scatters with it. A NumPy function without a device implementation is a
``TypeError`` naming it, never a silent copy to the host.
"""
import numbers
import operator

import numpy as np

from . import kernels as K
from .array import DeviceArray, to_device

__all__ = ["ufunc_call", "function_call", "astype", "fill", "getitem", "setitem",
           "copy_into", "HANDLED"]

_UFUNC_NAMES = {"true_divide": "divide", "abs": "absolute", "conj": "conjugate"}


def _new(shape, dtype):
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    n = 1
    for d in shape:
        n *= d
    return DeviceArray(K.empty(n, dtype), shape, dtype)


def _strides_in(shape, out_shape):
    """Element strides reading an array of ``shape`` broadcast to ``out_shape``."""
    st = K.c_strides(shape)
    pad = len(out_shape) - len(shape)
    return (0,) * pad + tuple(s if d != 1 else 0 for s, d in zip(st, shape))


_consts = {}


def _const(value, dtype):
    """A one-element device buffer holding a scalar operand (cached: scalars recur)."""
    dtype = np.dtype(dtype)
    key = (repr(value), type(value), dtype.str)
    b = _consts.get(key)
    if b is None:
        if len(_consts) > 512:
            _consts.clear()
        b = _consts[key] = K.to_device(np.asarray(value, dtype=dtype).reshape(1))
    return b


def _is_scalar(x):
    return isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, DeviceArray)


def _host_array_error(name):
    return TypeError(f"np.{name} mixes a gpu.DeviceArray with a host NumPy array: move the "
                     "host one with gpu.to_device(...) first (no implicit transfers).")


_dtypes = {}


def _result_dtype(ufunc, ops):
    key = (ufunc,) + tuple(o.dtype.str if type(o) is DeviceArray else type(o) for o in ops)
    dt = _dtypes.get(key)
    if dt is None:
        dummies = [np.zeros((), o.dtype) if type(o) is DeviceArray else o for o in ops]
        with np.errstate(all="ignore"):
            r = ufunc(*dummies)
        dt = _dtypes[key] = np.result_type(r[0] if isinstance(r, tuple) else r)
    return dt


def _operand(x, name):
    if type(x) is DeviceArray:
        return x
    if _is_scalar(x):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return x[()]
    if isinstance(x, np.ndarray):
        raise _host_array_error(name)
    return NotImplemented


def elementwise(name, ops, dtype, shape=None):
    """``name`` from the scalar table over ``ops`` (device arrays and scalars), broadcast."""
    if shape is None:
        shape = np.broadcast_shapes(*[o.shape for o in ops if type(o) is DeviceArray])
    out = _new(shape, dtype)
    ins = []
    for o in ops:
        if type(o) is DeviceArray:
            ins.append((o._buf, _strides_in(o.shape, shape), 0))
        else:
            cdt = dtype if np.dtype(dtype).kind in "fc" and isinstance(
                o, (float, int, np.floating)) else np.asarray(o).dtype
            ins.append((_const(o, cdt), (0,) * len(shape), 0))
    K.map_kernel(name, out._buf, K.c_strides(shape), 0, shape, ins)
    return out


def ufunc_call(ufunc, method, inputs, kw):
    name = _UFUNC_NAMES.get(ufunc.__name__, ufunc.__name__)
    if method == "at" and ufunc is np.add:
        a, idx = inputs[0], inputs[1]
        v = inputs[2] if len(inputs) > 2 else 1.0
        return _add_at(a, idx, v)
    if method == "reduce":
        op = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
              "logical_or": "any", "logical_and": "all"}.get(name)
        if op is None:
            raise TypeError(f"np.{name}.reduce has no device implementation")
        return reduce(op, inputs[0], kw.get("axis", 0), kw.get("keepdims", False),
                      kw.get("dtype"))
    if method != "__call__":
        raise TypeError(f"np.{name}.{method} has no device implementation")
    out = kw.pop("out", None)
    if kw.pop("where", True) is not True:
        raise TypeError(f"np.{name}(..., where=...) has no device implementation")
    dtype = kw.pop("dtype", None)
    kw.pop("casting", None)
    if kw:
        raise TypeError(f"np.{name}: keyword arguments {sorted(kw)} have no device "
                        "implementation")
    ops = [_operand(x, name) for x in inputs]
    if any(o is NotImplemented for o in ops):
        return NotImplemented
    if name == "matmul":
        r = matmul(*ops)
    elif name in K.SCALAR:
        if name in ("isnan", "isinf", "isfinite", "signbit") and all(
                type(o) is not DeviceArray or o.dtype.kind in "biu" for o in ops):
            r = _like(ops[0], name == "isfinite", bool)     # integers: always finite
        else:
            r = elementwise(name, ops, dtype or _result_dtype(ufunc, ops))
    else:
        raise TypeError(f"np.{ufunc.__name__} has no device implementation for "
                        "gpu.DeviceArray; call .to_host() to compute it with NumPy")
    if out is not None:
        (o,) = out
        copy_into(o, r)
        return o
    return r


def copy_into(dst, src):
    """``dst[...] = src`` in place (broadcasting ``src``), in ``dst``'s dtype."""
    shape = dst.shape
    if type(src) is DeviceArray:
        if np.broadcast_shapes(src.shape, shape) != shape:
            raise ValueError(f"could not broadcast input array from shape {src.shape} "
                             f"into shape {shape}")
        ins = [(src._buf, _strides_in(src.shape, shape), 0)]
    else:
        ins = [(_const(src, dst.dtype), (0,) * len(shape), 0)]
    K.map_kernel("identity", dst._buf, K.c_strides(shape), 0, shape, ins)


def astype(a, dtype, copy=True):
    dtype = np.dtype(dtype)
    if dtype == a.dtype and not copy:
        return a
    out = _new(a.shape, dtype)
    if dtype.kind == "b" and a.dtype.kind != "b":
        return elementwise("not_equal", [a, 0], bool)
    copy_into(out, a)
    return out


def fill(a, value):
    no_write_through(a, "x.fill(v)")
    copy_into(a, value)


# ----- Reductions -----
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, tuple):
        axis = (axis,)
    out = []
    for ax in axis:
        ax = operator.index(ax)
        if not -ndim <= ax < max(ndim, 1):
            raise np.exceptions.AxisError(ax, ndim)
        out.append(ax % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError("duplicate value in 'axis'")
    return tuple(sorted(out)) if ndim else ()


def _rows(a, axes):
    """``a`` with ``axes`` moved last, as a contiguous (M, K) buffer."""
    rest = [i for i in range(a.ndim) if i not in axes]
    perm = rest + list(axes)
    if perm != list(range(a.ndim)):
        a = transpose(a, perm)
    M = int(np.prod([a.shape[i] for i in range(len(rest))])) if rest else 1
    Kn = int(np.prod(a.shape[len(rest):])) if axes else 1
    return a, M, Kn, [a.shape[i] for i in range(len(rest))]


def reduce(op, a, axis=None, keepdims=False, dtype=None, initial=None, where=None):
    if type(a) is not DeviceArray:
        a = _operand(a, op)
        if type(a) is not DeviceArray:
            return getattr(np, op)(a)
    if where is not None and where is not True:
        raise TypeError(f"np.{op}(..., where=...) has no device implementation")
    axes = _axes(axis, a.ndim)
    if op in ("sum", "prod"):
        out_dt = np.dtype(dtype) if dtype is not None else getattr(np, op)(
            np.zeros(1, a.dtype)).dtype
    elif op in ("any", "all"):
        out_dt = np.dtype(bool)
    else:
        out_dt = a.dtype
    src = a if a.dtype == out_dt else astype(a, out_dt)
    moved, M, Kn, kept = _rows(src, axes)
    if Kn == 0 and op in ("max", "min") and initial is None:
        raise ValueError(f"zero-size array to reduction operation {op}imum which has no "
                         "identity")
    buf = K.reduce_rows(op, moved._buf, M, Kn, out_dt)
    r = DeviceArray(buf, tuple(kept), out_dt)
    if keepdims:
        r = r.reshape(tuple(1 if i in axes else d for i, d in enumerate(a.shape)))
    if initial is not None:
        r = {"sum": np.add, "prod": np.multiply, "max": np.maximum,
             "min": np.minimum}[op](r, initial)
    return r


def mean(a, axis=None, dtype=None, out=None, keepdims=False, where=None):
    _no_out(out, "mean")
    axes = _axes(axis, a.ndim)
    n = int(np.prod([a.shape[i] for i in axes])) if axes else 1
    dt = np.dtype(dtype) if dtype is not None else np.mean(np.zeros(1, a.dtype)).dtype
    s = reduce("sum", a, axis, keepdims, dt, where=where)
    with np.errstate(all="ignore"):
        return s / dt.type(n) if n else s * dt.type(np.nan)


def _arg(op, a, axis=None, out=None, keepdims=False):
    _no_out(out, "arg" + op)
    if a.size == 0:
        raise ValueError(f"attempt to get arg{op} of an empty sequence")
    if axis is None:
        buf = K.arg_rows(op, a._buf, 1, a.size)
        r = DeviceArray(buf, (), np.int64)
        return r.reshape((1,) * a.ndim) if keepdims else r
    (ax,) = _axes(axis, a.ndim)
    moved, M, Kn, kept = _rows(a, (ax,))
    r = DeviceArray(K.arg_rows(op, moved._buf, M, Kn), tuple(kept), np.int64)
    return r.reshape(tuple(1 if i == ax else d for i, d in enumerate(a.shape))) \
        if keepdims else r


def _no_out(out, name):
    if out is not None:
        raise TypeError(f"np.{name}(..., out=...) has no device implementation")


# ----- Shapes -----
def reshape(a, shape, order="C", **kw):
    shape = kw.pop("newshape", shape)
    if order not in ("C", None):
        raise NotImplementedError("reshape of a gpu.DeviceArray supports order='C' only")
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = np.empty(a.shape, dtype=bool).reshape(tuple(shape)).shape   # NumPy's checks
    return DeviceArray(a._buf, shape, a.dtype, a._view)      # the same buffer: a true view


def transpose(a, axes=None):
    n = a.ndim
    axes = tuple(range(n))[::-1] if axes is None else tuple(operator.index(i) % n
                                                            for i in axes)
    if sorted(axes) != list(range(n)):
        raise ValueError("axes don't match array")
    if axes == tuple(range(n)):
        return a
    shape = tuple(a.shape[i] for i in axes)
    st = _strides_in(a.shape, a.shape)
    out = _new(shape, a.dtype)
    K.map_kernel("identity", out._buf, K.c_strides(shape), 0, shape,
                 [(a._buf, tuple(st[i] for i in axes), 0)])
    out._view = "a transpose (x.T, np.transpose, swapaxes, moveaxis)"
    return out


def broadcast_to(a, shape, subok=False):
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if type(a) is not DeviceArray:
        a = _operand(a, "broadcast_to")
        out = _new(shape, np.asarray(a).dtype)
        copy_into(out, a)
        return out
    if np.broadcast_shapes(a.shape, shape) != shape:
        raise ValueError(f"operands could not be broadcast together with remapped shapes "
                         f"[original->remapped]: {a.shape} and requested shape {shape}")
    if shape == a.shape:
        return a
    out = _new(shape, a.dtype)
    copy_into(out, a)
    return out


def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    _no_out(out, "concatenate")
    arrays = [x if type(x) is DeviceArray else _operand(x, "concatenate") for x in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrays, axis = [x.reshape(-1) for x in arrays], 0
    nd = arrays[0].ndim
    if nd == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    ax = _axes(axis, nd)[0]
    for x in arrays:
        if x.ndim != nd or any(x.shape[i] != arrays[0].shape[i] for i in range(nd) if i != ax):
            raise ValueError("all the input array dimensions except for the concatenation "
                             "axis must match exactly")
    dt = np.dtype(dtype) if dtype is not None else np.result_type(*[x.dtype for x in arrays])
    shape = list(arrays[0].shape)
    shape[ax] = sum(x.shape[ax] for x in arrays)
    res = _new(shape, dt)
    ost = K.c_strides(res.shape)
    true_st = int(np.prod(res.shape[ax + 1:]))
    start = 0
    for x in arrays:
        if x.size:
            K.map_kernel("identity", res._buf, ost, start * true_st, x.shape,
                         [(x._buf, _strides_in(x.shape, x.shape), 0)])
        start += x.shape[ax]
    return res


def stack(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    arrays = list(arrays)
    if not arrays:
        raise ValueError("need at least one array to stack")
    nd = np.ndim(arrays[0]) + 1
    ax = _axes(axis, nd)[0]
    return concatenate([expand_dims(x if type(x) is DeviceArray else to_device(x), ax)
                        for x in arrays], axis=ax, dtype=dtype)


def expand_dims(a, axis):
    return reshape(a, np.expand_dims(np.empty(a.shape, dtype=bool), axis).shape)


def squeeze(a, axis=None):
    return reshape(a, np.squeeze(np.empty(a.shape, dtype=bool), axis).shape)


def swapaxes(a, axis1, axis2):
    axes = list(range(a.ndim))
    i, j = operator.index(axis1) % a.ndim, operator.index(axis2) % a.ndim
    axes[i], axes[j] = axes[j], axes[i]
    return transpose(a, axes)


def moveaxis(a, source, destination):
    src = [operator.index(s) % a.ndim for s in np.atleast_1d(source)]
    dst = [operator.index(d) % a.ndim for d in np.atleast_1d(destination)]
    order = [i for i in range(a.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def where(condition, x=None, y=None):
    if x is None and y is None:
        raise TypeError("np.where(condition) (nonzero) has no device implementation")
    ops = [_operand(o, "where") for o in (condition, x, y)]
    shape = np.broadcast_shapes(*[np.shape(o) for o in ops])
    dt = np.result_type(*[o.dtype if type(o) is DeviceArray else o for o in ops[1:]])
    c = ops[0]
    if type(c) is DeviceArray and c.dtype.kind != "b":
        c = astype(c, bool)
    return elementwise("where", [c] + ops[1:], dt, shape)


def clip(a, a_min=None, a_max=None, out=None, **kw):
    _no_out(out, "clip")
    r = a
    if a_min is not None:
        r = np.maximum(r, a_min)
    if a_max is not None:
        r = np.minimum(r, a_max)
    return r


# ----- Matmul -----
def matmul(a, b):
    if type(a) is not DeviceArray or type(b) is not DeviceArray:
        raise TypeError("np.matmul on the device needs two gpu.DeviceArrays")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: Input operand does not have enough dimensions")
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
    M, Ka = a2.shape[-2:]
    Kb, N = b2.shape[-2:]
    if Ka != Kb:
        raise ValueError(f"matmul: Input operand 1 has a mismatch in its core dimension 0, "
                         f"with gufunc signature (n?,k),(k,m?)->(n?,m?) (size {Kb} is "
                         f"different from {Ka})")
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    dt = np.result_type(a.dtype, b.dtype)
    nb = int(np.prod(batch)) if batch else 1

    def prep(x, core):
        if x.dtype != dt:
            x = astype(x, dt)
        shared = x.ndim == 2 or int(np.prod(x.shape[:-2])) == 1
        if shared:
            return x, False
        return broadcast_to(x, batch + core), True
    A, ab = prep(a2, (M, Ka))
    B, bb = prep(b2, (Kb, N))
    buf = K.matmul(A._buf, B._buf, nb, M, N, Ka, dt, ab, bb)
    r = DeviceArray(buf, batch + (M, N), dt)
    if a.ndim == 1 or b.ndim == 1:
        s = batch + ((M,) if a.ndim > 1 else ()) + ((N,) if b.ndim > 1 else ())
        r = r.reshape(s)
    return r


def dot(a, b, out=None):
    _no_out(out, "dot")
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return np.multiply(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    raise TypeError("np.dot of arrays above 2-D has no device implementation; use np.matmul")


# ----- Indexing: NumPy's semantics, once, on the host, as a flat position map -----
def _host_index(idx):
    if not isinstance(idx, tuple):
        idx = (idx,)
    return tuple(i.to_host() if type(i) is DeviceArray else i for i in idx)


_maps = {}


def _positions(shape, idx):
    """(flat positions of ``x[idx]`` as a device int64 buffer, result shape)."""
    idx = _host_index(idx)
    hashable = all(isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis)))
                   for i in idx)
    # (the type too: True and 1, False and 0 are equal keys but other indices)
    key = (shape, tuple((i.start, i.stop, i.step) if type(i) is slice else (type(i), i)
                        for i in idx)) if hashable else None
    if key is not None and key in _maps:
        return _maps[key]
    pos = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)[idx]
    pos = np.asarray(pos)
    out = (K.to_device(pos.reshape(-1)), pos.shape, pos.size)
    if key is not None:
        if len(_maps) > 256:
            _maps.clear()
        _maps[key] = out
    return out


_BASIC = (int, np.integer, slice, type(None), type(Ellipsis))


def getitem(a, idx):
    buf, shape, n = _positions(a.shape, idx)
    basic = all(isinstance(i, _BASIC) and not isinstance(i, (bool, np.bool_))
                for i in (idx if isinstance(idx, tuple) else (idx,)))
    return DeviceArray(K.gather(a._buf, buf, n, a.dtype), shape, a.dtype,
                       "basic indexing (x[i], x[i:j])" if basic and shape else None)


def _values(v, shape, dtype):
    v = v if type(v) is DeviceArray else _operand(v, "setitem")
    if isinstance(v, DeviceArray) and v.dtype == dtype and v.shape == tuple(shape):
        return v
    out = _new(shape, dtype)
    copy_into(out, v)
    return out


def no_write_through(a, op):
    """Refuse a write into a copy NumPy would have made a view (see DeviceArray._view)."""
    if a._view is not None:
        raise TypeError(
            f"{op} into the result of {a._view} of a gpu.DeviceArray: NumPy would write "
            "through this view into the original array, but a device array's indexing "
            "and transposes are copies, so the write would be lost. Assign into the "
            "original directly (x[i, j] = v instead of x[i][j] = v), or take .copy() "
            "first to make a separate array.")


def setitem(a, idx, v):
    no_write_through(a, "assignment (y[i] = v)")
    buf, shape, n = _positions(a.shape, idx)
    K.scatter(a._buf, buf, _values(v, shape, a.dtype)._buf, n, add=False)


def _add_at(a, idx, v):
    no_write_through(a, "np.add.at")
    buf, shape, n = _positions(a.shape, idx)
    K.scatter(a._buf, buf, _values(v, shape, a.dtype)._buf, n, add=True)


def take(a, indices, axis=None, out=None, mode="raise"):
    _no_out(out, "take")
    if axis is None:
        return getitem(a.reshape(-1), indices)
    ax = _axes(axis, a.ndim)[0]
    return getitem(a, (slice(None),) * ax + (indices,))


def take_along_axis(arr, indices, axis):
    host = indices.to_host() if type(indices) is DeviceArray else np.asarray(indices)
    pos = np.take_along_axis(np.arange(arr.size).reshape(arr.shape), host, axis)
    return getitem(arr.reshape(-1), pos)


# ----- Constructors (``like=``) and metadata -----
def _dt(dtype):
    return np.dtype(float if dtype is None else dtype)


def _filled(shape, value, dtype):
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    out = _new(shape, dtype)
    copy_into(out, value)
    return out


def _like(a, value, dtype=None, shape=None, **kw):
    return _filled(a.shape if shape is None else shape, value,
                   a.dtype if dtype is None else dtype)


HANDLED = {
    np.sum: lambda a, axis=None, dtype=None, out=None, keepdims=False, initial=None,
    where=None: _no_out(out, "sum") or reduce("sum", a, axis, keepdims, dtype, initial, where),
    np.prod: lambda a, axis=None, dtype=None, out=None, keepdims=False, initial=None,
    where=None: _no_out(out, "prod") or reduce("prod", a, axis, keepdims, dtype, initial,
                                                where),
    np.max: lambda a, axis=None, out=None, keepdims=False, initial=None, where=None:
    _no_out(out, "max") or reduce("max", a, axis, keepdims, None, initial, where),
    np.min: lambda a, axis=None, out=None, keepdims=False, initial=None, where=None:
    _no_out(out, "min") or reduce("min", a, axis, keepdims, None, initial, where),
    np.any: lambda a, axis=None, out=None, keepdims=False, where=None:
    reduce("any", a, axis, keepdims),
    np.all: lambda a, axis=None, out=None, keepdims=False, where=None:
    reduce("all", a, axis, keepdims),
    np.mean: mean,
    np.argmax: lambda a, axis=None, out=None, keepdims=False: _arg("max", a, axis, out,
                                                                    keepdims),
    np.argmin: lambda a, axis=None, out=None, keepdims=False: _arg("min", a, axis, out,
                                                                    keepdims),
    np.reshape: reshape, np.ravel: lambda a, order="C": reshape(a, (-1,)),
    np.transpose: transpose, np.broadcast_to: broadcast_to,
    np.concatenate: concatenate, np.stack: stack, np.expand_dims: expand_dims,
    np.squeeze: squeeze, np.swapaxes: swapaxes, np.moveaxis: moveaxis,
    np.where: where, np.clip: clip, np.dot: dot, np.take: take,
    np.take_along_axis: take_along_axis,
    np.matmul: lambda a, b, **kw: matmul(a, b),
    np.copy: lambda a, order="K", subok=False: astype(a, a.dtype, True),
    np.ascontiguousarray: lambda a, dtype=None, **kw: a if dtype is None else astype(a, dtype),
    np.zeros_like: lambda a, dtype=None, order="K", subok=True, shape=None, **kw:
    _like(a, 0, dtype, shape),
    np.empty_like: lambda a, dtype=None, order="K", subok=True, shape=None, **kw:
    _like(a, 0, dtype, shape),
    np.ones_like: lambda a, dtype=None, order="K", subok=True, shape=None, **kw:
    _like(a, 1, dtype, shape),
    np.full_like: lambda a, fill_value, dtype=None, order="K", subok=True, shape=None, **kw:
    _like(a, fill_value, dtype, shape),
    np.zeros: lambda shape, dtype=None, order="C", **kw: _filled(shape, 0, _dt(dtype)),
    np.empty: lambda shape, dtype=None, order="C", **kw: _filled(shape, 0, _dt(dtype)),
    np.ones: lambda shape, dtype=None, order="C", **kw: _filled(shape, 1, _dt(dtype)),
    np.full: lambda shape, fill_value, dtype=None, order="C", **kw:
    _filled(shape, fill_value, np.result_type(fill_value) if dtype is None else dtype),
    np.eye: lambda *a, **kw: to_device(np.eye(*a, **kw)),
    np.identity: lambda *a, **kw: to_device(np.identity(*a, **kw)),
    np.shape: lambda a: a.shape, np.ndim: lambda a: a.ndim, np.size: lambda a, axis=None:
    a.size if axis is None else a.shape[axis],
    np.real: lambda a: a, np.imag: lambda a: _like(a, 0),
    np.iscomplexobj: lambda a: False, np.isrealobj: lambda a: True,
    np.atleast_1d: lambda *arys: (arys[0].reshape(-1) if arys[0].ndim == 0 else arys[0])
    if len(arys) == 1 else [a.reshape(-1) if a.ndim == 0 else a for a in arys],
}


def _asarray(a, dtype=None, order=None, **kw):
    if type(a) is DeviceArray:
        return a if dtype is None or np.dtype(dtype) == a.dtype else astype(a, dtype)
    return to_device(np.asarray(a, dtype=dtype))


for _f in (np.asarray, np.array, np.asanyarray):
    HANDLED[_f] = _asarray


def _result_type(*args):
    return np.result_type(*[a.dtype if type(a) is DeviceArray else a for a in args])


HANDLED[np.result_type] = _result_type


def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    if x.dtype.kind != "f":
        return astype(x, x.dtype, copy)
    info = np.finfo(x.dtype)
    big = info.max if posinf is None else posinf
    small = -info.max if neginf is None else neginf
    r = where(x != x, nan, x)
    r = where(r == np.inf, big, r)
    return astype(where(r == -np.inf, small, r), x.dtype, False)


HANDLED[np.nan_to_num] = _nan_to_num
def _norm(x, ord=None, axis=None, keepdims=False):
    """Vector norms (NumPy's ``ord``: 2, 1, ±inf, 0, any p) over ``axis``, and the
    Frobenius norm; other matrix norms have no device implementation."""
    matrix = (axis is None and x.ndim == 2) or (isinstance(axis, tuple) and len(axis) == 2)
    if ord is None or ord == "fro" and matrix or ord == 2 and not matrix:
        return np.sqrt(reduce("sum", x * x, axis, keepdims))
    if matrix or isinstance(ord, str):
        raise TypeError(f"np.linalg.norm(ord={ord!r}) of a matrix has no device "
                        "implementation for gpu.DeviceArray; call .to_host() to compute it "
                        "with NumPy")
    a = np.abs(x)
    if ord == np.inf:
        return reduce("max", a, axis, keepdims)
    if ord == -np.inf:
        return reduce("min", a, axis, keepdims)
    if ord == 0:
        return reduce("sum", astype(x != 0, x.dtype, False), axis, keepdims)
    if ord == 1:
        return reduce("sum", a, axis, keepdims)
    return reduce("sum", a ** ord, axis, keepdims) ** (1.0 / ord)


HANDLED[np.linalg.norm] = _norm


def function_call(func, types, args, kwargs):
    if any(t is not DeviceArray and not issubclass(t, np.ndarray) for t in types):
        return NotImplemented       # a tracked value among the arguments: its turn
    impl = HANDLED.get(func)
    if impl is None:
        raise TypeError(f"np.{getattr(func, '__name__', func)} has no device implementation "
                        "for gpu.DeviceArray; call .to_host() to compute it with NumPy")
    return impl(*args, **kwargs)
