"""What ``Dual`` and ``Variable`` share: operators, NumPy protocols and the loud errors.

A tracked value ("box") behaves like the array it wraps: arithmetic, indexing, ``.shape``,
array methods and NumPy's dispatch (``__array_ufunc__``, ``__array_function__``) all go to
``bind``. Whatever would silently drop the derivative (``float(x)``, ``np.asarray(x)``,
writing into a plain ndarray) raises a ``TypeError`` that says what happened and the fix.
"""
import dis
import sys

import numpy as np

from .core import bind, box_types, function_table, leaked, live_levels, ndim_of, ufunc_table

# The operator methods look primitives up here by name once the ops package has loaded;
# boxes must not import ops (ops import boxes' helpers indirectly through core).
P = {}


def _loud(what, fix):
    return TypeError(
        f"{what} of a tracked value would drop its derivative. {fix} "
        "(To use only the primal value, with no derivative, take `.value`.)")


_FIX_ARRAY = ("Build arrays of tracked values with `autodiff.numpy` (e.g. `anp.stack`, "
              "`anp.array`); to fill an array by assignment, create it tracked with "
              "`np.zeros_like(x)` or `np.zeros(n, like=x)` instead of a plain ndarray.")


def unbox(x):
    """The plain value under every level of tracking."""
    while type(x) in box_types:
        x = x.value
    return x


class Box:
    """Base of Dual and Variable: array behaviour routed through ``bind``."""
    __slots__ = ()
    __array_priority__ = 1000.0

    # ----- array metadata -----
    @property
    def shape(self):
        return np.shape(unbox(self))

    @property
    def ndim(self):
        return np.ndim(unbox(self))

    @property
    def size(self):
        return np.size(unbox(self))

    @property
    def dtype(self):
        v = unbox(self)
        return v.dtype if hasattr(v, "dtype") else np.result_type(v)

    def __len__(self):
        return len(unbox(self))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ----- arithmetic: installed from the registry by ``install_operators`` -----
    def __matmul__(self, o): return np.matmul(self, o)
    def __rmatmul__(self, o): return np.matmul(o, self)
    def __pos__(self): return self
    def __floordiv__(self, o): return np.floor_divide(self, o)
    def __rfloordiv__(self, o): return np.floor_divide(o, self)
    def __mod__(self, o): return np.mod(self, o)
    def __rmod__(self, o): return np.mod(o, self)
    def __divmod__(self, o): return np.divmod(self, o)
    def __rdivmod__(self, o): return np.divmod(o, self)

    # Comparisons give plain booleans, so value-dependent control flow works.
    def __lt__(self, o): return unbox(self) < unbox(o)
    def __le__(self, o): return unbox(self) <= unbox(o)
    def __gt__(self, o): return unbox(self) > unbox(o)
    def __ge__(self, o): return unbox(self) >= unbox(o)
    def __eq__(self, o): return unbox(self) == unbox(o)
    def __ne__(self, o): return unbox(self) != unbox(o)
    __hash__ = object.__hash__

    def __bool__(self):
        return bool(unbox(self))

    # ----- indexing and assignment -----
    def __getitem__(self, idx):
        out = P["index"](self, idx)
        # NumPy's basic indexing gives a view, whose writes reach this array; ours are
        # values, so the result remembers it came from a view and refuses writes.
        if type(out) in box_types and _view_index(idx) and ndim_of(unbox(out)) > 0:
            out.view = "basic indexing (x[i], x[i:j], a row of a loop over x)"
        return out

    def __setitem__(self, idx, v):
        """``x[idx] = v``: recorded as ``setitem`` and ``x`` becomes the result. The arrays
        saved by earlier records are never written (copy-on-write)."""
        _no_write_through(self, "assignment (y[i] = v)")
        if self.level not in live_levels:
            raise leaked(self, "assigned into")
        self._assignable()
        self._become(P["assign"](self, idx, v))

    @property
    def at(self):
        """JAX's functional updates: ``x.at[i].set(v)``, ``.add``, ``.multiply``, ``.min``,
        ``.max``, ``.divide``, ``.power``, ``.apply``, ``.get`` return new arrays."""
        return P["at"](self)

    def fill(self, value):
        self[...] = value

    # ----- array methods (NumPy's names and signatures) -----
    # They call the engine's handlers directly: NumPy's __array_function__ dispatch
    # costs a few µs a call, which a small-array loop feels.
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return function_table[np.sum](self, axis, dtype, out, keepdims)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return function_table[np.mean](self, axis, dtype, out, keepdims)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False):
        return function_table[np.prod](self, axis, dtype, out, keepdims)

    def max(self, axis=None, out=None, keepdims=False):
        return function_table[np.max](self, axis, None, out, keepdims)

    def min(self, axis=None, out=None, keepdims=False):
        return function_table[np.min](self, axis, None, out, keepdims)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return function_table[np.var](self, axis, dtype, out, ddof, keepdims)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return function_table[np.std](self, axis, dtype, out, ddof, keepdims)

    @property
    def real(self):
        return function_table[np.real](self)

    @property
    def imag(self):
        return function_table[np.imag](self)

    def conj(self): return bind(P["conj"], self)
    conjugate = conj

    def cumsum(self, axis=None, dtype=None, out=None):
        return function_table[np.cumsum](self, axis, dtype, out)

    def cumprod(self, axis=None, dtype=None, out=None):
        return function_table[np.cumprod](self, axis, dtype, out)

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return function_table[np.trace](self, offset, axis1, axis2, dtype, out)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return function_table[np.diagonal](self, offset, axis1, axis2)

    def repeat(self, repeats, axis=None): return function_table[np.repeat](self, repeats, axis)
    def take(self, indices, axis=None): return function_table[np.take](self, indices, axis)
    def round(self, decimals=0): return np.round(unbox(self), decimals)
    def argsort(self, axis=-1, kind=None): return np.argsort(unbox(self), axis, kind=kind)
    def nonzero(self): return np.nonzero(unbox(self))
    def searchsorted(self, v, side="left"): return np.searchsorted(unbox(self), unbox(v), side)

    def sort(self, axis=-1, kind=None):
        """In place, as ``ndarray.sort``: the array becomes its sorted copy."""
        self[...] = function_table[np.sort](self, axis, kind)

    def dot(self, o): return function_table[np.dot](self, o)
    def ravel(self): return function_table[np.ravel](self)
    def flatten(self): return function_table[np.ravel](self).copy()    # a copy, not a view
    def squeeze(self, axis=None): return function_table[np.squeeze](self, axis)
    def clip(self, a_min=None, a_max=None): return function_table[np.clip](self, a_min, a_max)
    def argmax(self, axis=None): return np.argmax(unbox(self), axis)
    def argmin(self, axis=None): return np.argmin(unbox(self), axis)
    def copy(self, order="K"): return self._elementwise(P["positive"], (self,), self.level)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        return function_table[np.reshape](self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        return function_table[np.transpose](self, axes or None)

    def swapaxes(self, a, b): return function_table[np.swapaxes](self, a, b)

    @property
    def T(self):
        return function_table[np.transpose](self)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":
            raise _loud(f"astype({dtype})", "Cast only between float types inside a derivative.")
        return bind(P["astype"], self, dtype=dtype)

    # ----- the loud refusals -----
    def __float__(self):
        raise _loud("float(x) (also called by `math` functions and by writing into a plain "
                    "ndarray)", "Use NumPy functions (`np.sin`, not `math.sin`); " + _FIX_ARRAY)

    def __int__(self):
        raise _loud("int(x)", "Keep the computation in NumPy functions.")

    def __index__(self):
        raise _loud("using a tracked value as an index (operator.index)",
                    "Indices carry no derivative: index with `x.value` or an int.")

    def __complex__(self):
        raise _loud("complex(x)", "Use NumPy functions on the tracked value.")

    def item(self, *args):
        raise _loud("x.item()", "Keep the value as a 0-d array and use NumPy functions on it.")

    def tolist(self):
        raise _loud("x.tolist()", "Keep the value as an array; index it to get elements.")

    def __array__(self, dtype=None, copy=None):
        raise _loud("np.asarray(x) / np.array(x) (also called when a tracked value is written "
                    "into a plain ndarray)", _FIX_ARRAY)

    # ----- NumPy dispatch -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        if method == "__call__" and not kw:
            prim = ufunc_table.get(ufunc)
            if prim is not None:
                if len(inputs) == 1 and prim.partials is not None:
                    return self._elementwise(prim, inputs, self.level)
                return bind(prim, *inputs)
        if kw.get("out") is not None:
            raise TypeError(f"numpy.{ufunc.__name__}(..., out=...) cannot write a tracked "
                            "result into an array; drop `out=` and use the returned value.")
        if method != "__call__":
            handler = function_table.get((ufunc, method))
            if handler is None:
                raise NotImplementedError(
                    f"autodiff has no derivative rule for numpy.{ufunc.__name__}.{method}; "
                    "use the equivalent function (e.g. np.sum for np.add.reduce).")
            return handler(*inputs, **kw)
        prim = ufunc_table.get(ufunc)
        if prim is None:
            handler = function_table.get(ufunc)     # ufuncs with an entry point (matmul)
            if handler is not None:
                return handler(*inputs, **kw)
            raise NotImplementedError(
                f"autodiff has no derivative rule for the ufunc {_qualname(ufunc)}; "
                "write it with functions that have one, or give it one with ad.custom_jvp.")
        kw.pop("out", None)
        if kw:
            kw.pop("casting", None)
            if kw.pop("where", True) is not True or kw:
                raise TypeError(f"{_qualname(ufunc)}: keyword arguments {sorted(kw)} are not "
                                "supported on tracked values.")
        return bind(prim, *inputs)

    def __array_function__(self, func, types, args, kwargs):
        if func in _LIKE:           # np.zeros(n, like=x): the only way these dispatch
            return P["like"](func, self, args, kwargs)
        handler = function_table.get(func)
        if handler is None:
            raise NotImplementedError(
                f"autodiff has no derivative rule for {_qualname(func)}; write it with "
                "functions that have one, or give it one with ad.custom_jvp / ad.custom_vjp.")
        return handler(*args, **kwargs)




#: NumPy constructors that reach ``__array_function__`` only through ``like=``; filled by
#: the ops package from ``ops.assign.LIKE_CONSTRUCTORS``.
_LIKE = set()
_VIEW = (int, slice, type(None), type(Ellipsis))


def _view_index(idx):
    return type(idx) in _VIEW or type(idx) is tuple and all(type(i) in _VIEW for i in idx)


def _no_write_through(x, op):
    """Refuse a write into ``x`` if NumPy would carry it through a view into another array
    (arrays of the engine are values and share no memory, so it would be lost)."""
    view = getattr(x, "view", None)
    if view is not None:
        raise TypeError(
            f"{op} into the result of {view}: NumPy would write through this view into "
            "the original array, which a tracked array does not share, so the write would "
            "be lost. Assign into the original directly (x[i, j] = v instead of "
            "x[i][j] = v; x[...] = y.reshape(x.shape) to write a reshaped array back), or "
            "take .copy() first (or write y = y + v) to make a separate array.")


def _stored_back(frame):
    """Whether the in-place operator running in ``frame`` stores its result with a
    subscript or attribute assignment (``x[i] += v``, ``o.a += v``), not into a name."""
    code, last = frame.f_code, frame.f_lasti
    for ins in dis.get_instructions(code):
        if ins.offset > last and ins.opname != "CACHE":
            return ins.opname in ("SWAP", "ROT_THREE", "ROT_TWO", "STORE_SUBSCR",
                                  "STORE_ATTR", "DUP_TOP_TWO")
    return False


def _binary(prim, symbol):
    # Elementwise primitives go straight to the box type's ``_elementwise`` hot path.
    def op(self, o):
        if type(o) in box_types and o.level > self.level:
            return o._elementwise(prim, (self, o), o.level)
        return self._elementwise(prim, (self, o), self.level)

    def rop(self, o):
        if type(o) in box_types and o.level > self.level:
            return o._elementwise(prim, (o, self), o.level)
        return self._elementwise(prim, (o, self), self.level)

    def iop(self, o):
        # ``y += v`` rebinds ``y`` (a tracked array is a value), which loses the write
        # NumPy would make through a view: refused on views, unless the result is stored
        # back into a container (``x[i] += v`` stores it with ``x[i] = ...``). A scalar is
        # never a view, so the common ``s += term`` pays one type check.
        if type(self.value) is not float and getattr(self, "view", None) is not None \
                and not _stored_back(sys._getframe(1)):
            _no_write_through(self, f"y {symbol}= v")
        if type(o) in box_types and o.level > self.level:
            return o._elementwise(prim, (self, o), o.level)
        return self._elementwise(prim, (self, o), self.level)
    return op, rop, iop


def install_operators(registry):
    """Give Box its arithmetic operators, each bound to its primitive once (no lookups,
    no outer ``bind``: the box itself is the top level unless the other operand is higher)."""
    for name, prim, symbol in (("add", "add", "+"), ("sub", "subtract", "-"),
                               ("mul", "multiply", "*"), ("truediv", "divide", "/"),
                               ("pow", "power", "**")):
        op, rop, iop = _binary(registry[prim], symbol)
        setattr(Box, f"__{name}__", op)
        setattr(Box, f"__r{name}__", rop)
        setattr(Box, f"__i{name}__", iop)
    neg, absolute = registry["negative"], registry["absolute"]
    Box.__neg__ = lambda self: self._elementwise(neg, (self,), self.level)
    Box.__abs__ = lambda self: self._elementwise(absolute, (self,), self.level)


def _qualname(f):
    name = getattr(f, "__name__", repr(f))
    if isinstance(f, np.ufunc):
        mod = "numpy" if getattr(np, name, None) is f else "scipy.special"
    else:
        mod = getattr(f, "__module__", None) or "numpy"
    return f"{mod}.{name}"
