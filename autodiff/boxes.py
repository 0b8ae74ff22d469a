"""What ``Dual`` and ``Variable`` share: operators, NumPy protocols and the loud errors.

A tracked value ("box") behaves like the array it wraps: arithmetic, indexing, ``.shape``,
array methods and NumPy's dispatch (``__array_ufunc__``, ``__array_function__``) all go to
``bind``. Whatever would silently drop the derivative (``float(x)``, ``np.asarray(x)``,
writing into a plain ndarray) raises a ``TypeError`` that says what happened and the fix.
So do writes through a view (``x.reshape(...)[i] = v``, ``x.T[i] = v``, ``x[0][1] = v``,
``row += v`` in a loop over rows): NumPy would carry them into ``x``, but tracked arrays are
values that share no memory, so the write would be lost.
"""
import collections
import dis
import math
import sys

import numpy as np

from .core import (EAGER_REVERSE, bind, box_types, function_table, grad_enabled, grad_off, leaked,
                   live_levels, ndim_of, opaque_types, recording_types, ufunc_table)

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


_SEQ = (list, tuple)


def unbox(x):
    """The plain value under every level of tracking. Under ``ad.jit`` that is the
    recording's value, so reading it guards it: a replay with other numbers there records
    again (code that only reads shapes and dtypes uses ``meta``; code that computes from
    the numbers without a derivative, ``lift``, which records the computation)."""
    while type(x) in box_types:
        if type(x) in opaque_types:
            return x.guarded_value()
        x = x.value
    return x


def meta(x):
    """The plain value under every level, for its type, shape and dtype only (no guard)."""
    while type(x) in box_types:
        x = x.value
    return x


def data(x):
    """The value under the differentiating levels (Dual, Variable) for code that reads
    numbers without a derivative (comparisons, masks, indices): the plain value, or under
    ``ad.jit`` the recorded value, whose uses are recorded or guarded in turn."""
    while type(x) in box_types and type(x) not in opaque_types:
        x = x.value
    return x


#: The sparsity mode's name for ``data``: its values stand for every input, so comparisons,
#: ``bool`` and the zero-derivative functions stop at them, as at ``ad.jit``'s. Both kinds
#: are ``opaque_types`` and answer ``nondiff(f, args, kw)`` and ``guarded_value()``.
peel = data


def _recorded(x):
    t = type(x)
    if t in recording_types:
        return True
    if t is tuple or t is list:
        return any(_recorded(a) for a in x)
    while t in box_types:
        x = x.value
        t = type(x)
        if t in recording_types:
            return True
    return False


def recorded(*trees):
    """Whether any value in ``trees`` (nested lists and tuples) is recorded by ``ad.jit``."""
    return bool(recording_types) and any(_recorded(a) for a in trees)


def lift(fn, *args, **kw):
    """``fn(*args, **kw)`` on the values under the derivative levels: a function of numbers
    without a derivative (a permutation, an index, a mask). Under ``ad.jit`` it is one
    recorded call, replayed on each new input; otherwise ``fn`` on the plain values."""
    if recorded(args, tuple(kw.values())):
        return record_function[0](fn, args, kw)
    return fn(*[_unbox_tree(a) for a in args], **{k: _unbox_tree(v) for k, v in kw.items()})


def concrete(x):
    """The plain value of ``x`` for code that bakes it in (a count, a selection); under
    ``ad.jit`` a guard on it: a replay with another value records again."""
    d = data(x)
    if type(d) in opaque_types:
        return d.guarded_value()
    return unbox(d)


def _unbox_tree(a):
    if isinstance(a, (list, tuple)):
        return type(a)(_unbox_tree(x) for x in a)
    return meta(a)


#: Set by ``autodiff.jit``: records ``fn(*args, **kw)`` as one call of a recorded program.
record_function = [None]


class Box:
    """Base of Dual and Variable: array behaviour routed through ``bind``."""
    __slots__ = ()
    __array_priority__ = 1000.0

    # ----- array metadata -----
    @property
    def shape(self):
        v = meta(self)
        return v.shape if type(v) is np.ndarray else np.shape(v)

    @shape.setter
    def shape(self, new):
        raise TypeError("x.shape = s (NumPy's in-place reshape) on a tracked value: its views "
                        "and records keep the old shape. Write x = x.reshape(s) instead.")

    @property
    def ndim(self):
        return ndim_of(meta(self))

    @property
    def size(self):
        """The number of elements, an int (NumPy); also callable as PyTorch's ``x.size()``
        (the shape) and ``x.size(dim)``."""
        return _Size(np.size(meta(self)), np.shape(meta(self)))

    @property
    def dtype(self):
        v = meta(self)
        return v.dtype if hasattr(v, "dtype") else np.result_type(v)

    def __len__(self):
        return len(meta(self))

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    # ----- arithmetic: installed from the registry by ``install_operators`` -----
    # An operand with ``__array_ufunc__ = None`` (autodiff.scipy.sparse.csr_array) asks
    # binary operators to defer to its reflected method, as ndarray's operators do.
    def __matmul__(self, o):
        return NotImplemented if _defers(o) else np.matmul(self, o)

    def __rmatmul__(self, o):
        return NotImplemented if _defers(o) else np.matmul(o, self)

    def __pos__(self): return self
    def __floordiv__(self, o): return np.floor_divide(self, o)
    def __rfloordiv__(self, o): return np.floor_divide(o, self)
    def __mod__(self, o): return np.mod(self, o)
    def __rmod__(self, o): return np.mod(o, self)
    def __divmod__(self, o): return np.divmod(self, o)
    def __rdivmod__(self, o): return np.divmod(o, self)

    # Comparisons give plain booleans, so value-dependent control flow works.
    def __lt__(self, o): return data(self) < data(o)
    def __le__(self, o): return data(self) <= data(o)
    def __gt__(self, o): return data(self) > data(o)
    def __ge__(self, o): return data(self) >= data(o)
    def __eq__(self, o): return data(self) == data(o)
    def __ne__(self, o): return data(self) != data(o)
    __hash__ = object.__hash__

    def __bool__(self):
        return bool(data(self))

    # ----- indexing and assignment -----
    def __getitem__(self, idx):
        out = P["index"](self, idx)
        # NumPy's basic indexing gives a view, whose writes reach this array; ours are
        # values, so the result remembers it came from a view and refuses writes.
        if type(out) in box_types and _view_index(idx) and ndim_of(meta(out)) > 0:
            out._view = "basic indexing (x[i], x[i:j], a row of a loop over x)"
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
    # PyTorch's ``dim=``/``keepdim=`` are accepted beside ``axis=``/``keepdims=``.
    def sum(self, axis=None, dtype=None, out=None, keepdims=False, *, dim=None, keepdim=None,
            **numpy_kw):
        axis, keepdims = _torch_axis(axis, dim, keepdims, keepdim)
        return function_table[np.sum](self, axis, dtype, out, keepdims, **numpy_kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, *, dim=None, keepdim=None,
            **numpy_kw):
        axis, keepdims = _torch_axis(axis, dim, keepdims, keepdim)
        return function_table[np.mean](self, axis, dtype, out, keepdims, **numpy_kw)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, *, dim=None, keepdim=None,
            **numpy_kw):
        axis, keepdims = _torch_axis(axis, dim, keepdims, keepdim)
        return function_table[np.prod](self, axis, dtype, out, keepdims, **numpy_kw)

    def max(self, *args, **kw):
        """NumPy's ``x.max(axis=…)``; PyTorch's ``x.max(dim)`` / ``x.max(dim=…)`` (a positional
        int or ``dim=``) gives the namedtuple ``(values, indices)``, ``x.max(other)`` the
        elementwise maximum."""
        return _extremum(self, np.max, np.argmax, np.maximum, "max", args, kw)

    def min(self, *args, **kw):
        """NumPy's ``x.min(axis=…)``; PyTorch's ``x.min(dim)`` gives ``(values, indices)``."""
        return _extremum(self, np.min, np.argmin, np.minimum, "min", args, kw)

    def var(self, axis=None, dtype=None, out=None, ddof=None, keepdims=False, *, dim=None,
            keepdim=None, unbiased=None, correction=None):
        """NumPy's ``ddof=0`` default; with PyTorch's ``dim=`` (or ``unbiased``/``correction``)
        PyTorch's unbiased default (``correction=1``). A list of axes is PyTorch's spelling
        (NumPy takes a tuple): ``x.var([0, 1])`` is PyTorch's ``dim=[0, 1]``."""
        axis, dim = _list_dim(axis, dim)
        ddof = _ddof(ddof, dim, keepdim, unbiased, correction)
        axis, keepdims = _torch_axis(axis, dim, keepdims, keepdim)
        return function_table[np.var](self, axis, dtype, out, ddof, keepdims)

    def std(self, axis=None, dtype=None, out=None, ddof=None, keepdims=False, *, dim=None,
            keepdim=None, unbiased=None, correction=None):
        axis, dim = _list_dim(axis, dim)            # (as var)
        ddof = _ddof(ddof, dim, keepdim, unbiased, correction)
        axis, keepdims = _torch_axis(axis, dim, keepdims, keepdim)
        return function_table[np.std](self, axis, dtype, out, ddof, keepdims)

    @property
    def real(self):
        return function_table[np.real](self)

    @property
    def imag(self):
        return function_table[np.imag](self)

    def conj(self): return bind(P["conj"], self)
    conjugate = conj

    def cumsum(self, axis=None, dtype=None, out=None, *, dim=None):
        return function_table[np.cumsum](self, _torch_axis(axis, dim)[0], dtype, out)

    def cumprod(self, axis=None, dtype=None, out=None, *, dim=None):
        return function_table[np.cumprod](self, _torch_axis(axis, dim)[0], dtype, out)

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return function_table[np.trace](self, offset, axis1, axis2, dtype, out)

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return function_table[np.diagonal](self, offset, axis1, axis2)

    def repeat(self, repeats, axis=None): return function_table[np.repeat](self, repeats, axis)
    def take(self, indices, axis=None, out=None, mode="raise"):
        return function_table[np.take](self, indices, axis, out, mode)
    def round(self, decimals=0): return np.round(data(self), decimals)
    def argsort(self, axis=-1, kind=None, *, dim=None, descending=False, stable=False):
        """NumPy's ``x.argsort(axis, kind)``; PyTorch's ``dim=``/``descending=`` too."""
        d = data(self)
        if dim is not None:
            axis = dim
        if descending:                  # (a stable descending order, as PyTorch's)
            n = np.shape(d)[axis] if np.ndim(d) else 1
            return n - 1 - np.flip(np.argsort(np.flip(d, axis), axis, kind="stable"), axis)
        return np.argsort(d, axis, kind="stable" if stable else kind)
    def nonzero(self): return np.nonzero(data(self))
    def searchsorted(self, v, side="left"): return np.searchsorted(data(self), data(v), side)

    def sort(self, axis=-1, kind=None, *, dim=None, descending=False, stable=False):
        """In place, as ``ndarray.sort``: the array becomes its sorted copy. With PyTorch's
        ``dim=``, ``descending=`` or ``stable=``: PyTorch's ``(values, indices)``."""
        if dim is None and not descending and not stable:
            self[...] = function_table[np.sort](self, axis, kind)
            return None
        dim = axis if dim is None else dim
        d = data(self)
        idx = np.argsort(-d if descending else d, axis=dim, kind="stable")
        return _SORT(np.take_along_axis(self, idx, axis=dim), idx)

    def dot(self, o): return function_table[np.dot](self, o)
    def ravel(self, order="C"): return function_table[np.ravel](self, order)

    def flatten(self, start_dim=0, end_dim=-1):
        """NumPy's ``x.flatten()`` (a 1-d copy); PyTorch's ``x.flatten(start_dim, end_dim)``
        merges the axes from ``start_dim`` to ``end_dim``."""
        if isinstance(start_dim, str) or (start_dim == 0 and end_dim == -1):
            if isinstance(start_dim, str) and start_dim not in ("C", "A", "K"):
                raise NotImplementedError(f"x.flatten({start_dim!r}): only C order")
            return function_table[np.ravel](self).copy()    # a copy, not a view
        s = self.shape
        if not s:
            return self.reshape(1)
        a, b = start_dim % len(s), end_dim % len(s)
        return self.reshape(s[:a] + (int(np.prod(s[a:b + 1])),) + s[b + 1:])

    def squeeze(self, axis=None, *, dim=None):
        """``x.squeeze()`` drops every axis of size 1; ``x.squeeze(d)`` (or ``dim=d``, or a
        tuple) drops those of the given axes that have size 1 and leaves the others, as
        PyTorch does (NumPy would raise for them)."""
        axis, _ = _torch_axis(axis, dim)
        if axis is not None:
            dims = axis if isinstance(axis, (tuple, list)) else (axis,)
            s = self.shape
            for d in dims:
                if not -len(s) <= d < len(s) and s:
                    raise np.exceptions.AxisError(d, len(s))
            axis = tuple(d % len(s) for d in dims if s[d] == 1) if s else None
            if s and not axis:
                return self.reshape(s)
        return function_table[np.squeeze](self, axis)

    def clip(self, min=None, max=None, out=None, **kw):
        """``ndarray.clip(min, max)`` (NumPy 2's names; ``a_min=``/``a_max=`` too)."""
        lo, hi = kw.pop("a_min", min), kw.pop("a_max", max)
        return function_table[np.clip](self, lo, hi, out, **kw)

    def __contains__(self, v):
        return bool(np.any(data(self) == data(v)))          # NumPy's (x == v).any()

    def argmax(self, axis=None, out=None, *, keepdims=False, dim=None, keepdim=None):
        axis, keepdims = _torch_axis(axis, dim, keepdims, keepdim)
        return np.argmax(data(self), axis, out, keepdims=keepdims)

    def argmin(self, axis=None, out=None, *, keepdims=False, dim=None, keepdim=None):
        axis, keepdims = _torch_axis(axis, dim, keepdims, keepdim)
        return np.argmin(data(self), axis, out, keepdims=keepdims)

    def copy(self, order="K"): return self._elementwise(P["positive"], (self,), self.level)

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = shape[0]
        if type(shape) in box_types or any(type(d) in box_types for d in shape):
            Box.__index__(self)         # a tracked value as a shape: refused by name
        return function_table[np.reshape](self, shape, order=order)

    def transpose(self, *axes):
        """NumPy's ``x.transpose(axes)``; two axes ``x.transpose(d0, d1)`` swap them, as in
        PyTorch (NumPy accepts two axes only for a 2-d array, where (1, 0) is the same swap)."""
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = axes[0]
        if len(axes) == 2 and all(isinstance(a, (int, np.integer)) for a in axes):
            return function_table[np.swapaxes](self, axes[0], axes[1])
        return function_table[np.transpose](self, axes or None)

    def swapaxes(self, a, b): return function_table[np.swapaxes](self, a, b)

    @property
    def T(self):
        return function_table[np.transpose](self)

    @property
    def mT(self):
        """The last two axes swapped (PyTorch's and NumPy's ``mT``)."""
        return function_table[np.swapaxes](self, -1, -2)

    # PyTorch's shape methods that NumPy lacks
    def view_as(self, other): return self.reshape(np.shape(meta(other)))
    def reshape_as(self, other): return self.reshape(np.shape(meta(other)))

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        """Each element ``repeats`` times along ``dim`` (flattened first without one):
        NumPy's ``np.repeat``, under PyTorch's name."""
        return function_table[np.repeat](self, data(repeats), dim)

    def median(self, dim=None, keepdim=False):
        """PyTorch's median: the lower of the two middle values of an even count (not
        their mean, as ``np.median``); with ``dim``, the ``(values, indices)`` pair."""
        if dim is None:
            # the value: that element exactly; the derivative: shared equally by every
            # element equal to it (PyTorch's rule for the median of all elements)
            flat = function_table[np.ravel](self)
            d = data(flat)
            v = np.sort(d)[(np.size(d) - 1) // 2]
            tied = d == v
            s = np.sum(flat * (tied / np.sum(tied)))
            return v + (s - data(s))        # (the value v exactly; the derivative s's)
        order = np.argsort(data(self), axis=dim, kind="stable")
        k = (np.shape(order)[dim] - 1) // 2
        idx = np.take(order, [k], axis=dim)
        values = np.take_along_axis(self, idx, axis=dim)
        if not keepdim:
            values, idx = values.squeeze(dim), np.squeeze(idx, dim)
        return _MEDIAN(values, idx)

    def astype(self, dtype, copy=True):
        dtype = np.dtype(dtype)
        if dtype.kind not in "fc":
            raise _loud(f"astype({dtype})", "Cast only between float types inside a derivative.")
        return bind(P["astype"], self, dtype=dtype)

    def any(self, axis=None, keepdims=False):
        return np.any(data(self), axis=axis, keepdims=keepdims)     # booleans: no derivative

    def all(self, axis=None, keepdims=False):
        return np.all(data(self), axis=axis, keepdims=keepdims)

    def __imatmul__(self, o):
        _no_write_through(self, "y @= v")
        return np.matmul(self, o)

    def __ifloordiv__(self, o):
        _no_write_through(self, "y //= v")
        return np.floor_divide(self, o)

    def __imod__(self, o):
        _no_write_through(self, "y %= v")
        return np.mod(self, o)

    # ----- PyTorch's tensor methods (every level: a model's forward runs in transforms) -----
    def dim(self): return self.ndim
    def numel(self): return int(np.size(unbox(self)))
    def unsqueeze(self, dim): return function_table[np.expand_dims](self, dim)
    def float(self): return self.astype(np.float32)
    def double(self): return self.astype(np.float64)
    def clone(self): return self.copy()
    def contiguous(self): return self
    def t(self): return self.T if self.ndim == 2 else self
    def exp(self): return np.exp(self)
    def log(self): return np.log(self)
    def sqrt(self): return np.sqrt(self)
    def abs(self): return np.abs(self)
    def tanh(self): return np.tanh(self)
    def sin(self): return np.sin(self)
    def cos(self): return np.cos(self)
    def pow(self, exponent): return self ** exponent
    def relu(self): return np.where(data(self) > 0, self, 0.0)

    def sigmoid(self):
        return 0.5 * (np.tanh(0.5 * self) + 1.0)

    def softmax(self, dim):
        from .ops.softmax import log_softmax
        return np.exp(log_softmax(self, axis=dim))

    def log_softmax(self, dim):
        from .ops.softmax import log_softmax
        return log_softmax(self, axis=dim)

    def permute(self, *dims):
        if len(dims) == 1 and not isinstance(dims[0], (int, np.integer)):
            dims = dims[0]
        return function_table[np.transpose](self, tuple(dims))

    def expand_as(self, other):
        return function_table[np.broadcast_to](self, np.shape(unbox(other)))

    def type_as(self, other):
        return self.astype(other.dtype)

    # arithmetic and elementwise functions by PyTorch's method names
    def neg(self): return -self
    def square(self): return self * self
    def reciprocal(self): return 1.0 / self
    def rsqrt(self): return 1.0 / np.sqrt(self)
    def log1p(self): return np.log1p(self)
    def expm1(self): return np.expm1(self)
    def sign(self): return np.sign(self)
    def floor(self): return np.floor(self)
    def ceil(self): return np.ceil(self)
    def matmul(self, other): return self @ other
    mm = bmm = matmul
    def mul(self, other): return self * other
    def maximum(self, other): return np.maximum(self, other)
    def minimum(self, other): return np.minimum(self, other)
    def clamp_min(self, min): return self.clamp(min, None)
    def clamp_max(self, max): return self.clamp(None, max)
    def lerp(self, end, weight): return self + weight * (end - self)

    def erf(self):
        import scipy.special
        return scipy.special.erf(self)

    def add(self, other, *, alpha=1):
        return self + (other if alpha == 1 else alpha * other)

    def sub(self, other, *, alpha=1):
        return self - (other if alpha == 1 else alpha * other)

    def div(self, other, *, rounding_mode=None):
        if rounding_mode is None:
            return self / other
        if rounding_mode == "floor":
            return np.floor_divide(self, other)
        if rounding_mode == "trunc":
            return np.trunc(self / other)
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', "
                         f"got {rounding_mode!r}")

    def clamp(self, min=None, max=None):
        """PyTorch's ``min(max(x, min), max)``, whose derivative is 1 on the closed interval
        (``np.clip`` follows JAX: its bounds share a tie's derivative, ½ there); NaN stays."""
        if min is None and max is None:
            raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
        out = self
        if min is not None:
            out = np.where(data(out) < data(min), min, out)
        if max is not None:
            out = np.where(data(out) > data(max), max, out)
        return out

    def masked_fill(self, mask, value):
        return np.where(data(mask), value, self)

    def where(self, condition, other):
        """PyTorch's ``x.where(condition, y)``: ``x`` where ``condition`` holds, else ``y``."""
        return np.where(data(condition), self, other)

    # reductions and norms with PyTorch's dim/keepdim
    def amax(self, dim=None, keepdim=False):
        return function_table[np.amax](self, axis=_dims(dim), keepdims=keepdim)

    def amin(self, dim=None, keepdim=False):
        return function_table[np.amin](self, axis=_dims(dim), keepdims=keepdim)

    def logsumexp(self, dim, keepdim=False):
        from .ops.softmax import logsumexp
        return logsumexp(self, axis=_dims(dim), keepdims=keepdim)

    def norm(self, p="fro", dim=None, keepdim=False):
        """‖x‖_p over ``dim`` (all axes by default; ``"fro"`` is the 2-norm of the entries,
        ``"nuc"`` the nuclear norm of the matrices over ``dim``, by default the last two)."""
        if p == "nuc":
            return np.linalg.norm(self, "nuc", axis=(-2, -1) if dim is None else tuple(dim),
                                  keepdims=keepdim)
        return np.linalg.vector_norm(self, ord=2 if p in ("fro", None) else p,
                                     axis=_dims(dim), keepdims=keepdim)

    # shapes and selections
    def expand(self, *sizes):
        """A broadcast view of ``sizes`` (``-1`` keeps a dimension; new ones lead)."""
        if len(sizes) == 1 and not isinstance(sizes[0], (int, np.integer)):
            sizes = tuple(sizes[0])
        s = (1,) * (len(sizes) - self.ndim) + tuple(self.shape)
        if len(s) != len(sizes):
            raise RuntimeError(f"expand: {len(sizes)} sizes for a tensor of {self.ndim} dims")
        return function_table[np.broadcast_to](
            self.reshape(s), tuple(d if n == -1 else n for d, n in zip(s, sizes)))

    def flip(self, *dims):
        if len(dims) == 1 and not isinstance(dims[0], (int, np.integer)):
            dims = dims[0]
        return np.flip(self, axis=tuple(dims))

    def roll(self, shifts, dims=None): return np.roll(self, shifts, axis=dims)
    def diff(self, n=1, dim=-1): return np.diff(self, n=n, axis=dim)
    def gather(self, dim, index): return np.take_along_axis(self, data(index), axis=dim)
    def index_select(self, dim, index): return np.take(self, data(index), axis=dim)
    def masked_select(self, mask): return self[data(mask)]

    def narrow(self, dim, start, length):
        dim = dim % self.ndim
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def unbind(self, dim=0):
        dim = dim % self.ndim
        return tuple(self[(slice(None),) * dim + (i,)] for i in range(self.shape[dim]))

    def split(self, split_size_or_sections, dim=0):
        """Pieces of ``split_size`` along ``dim`` (the last may be shorter), or of the
        given sizes."""
        n = self.shape[dim]
        if isinstance(split_size_or_sections, (int, np.integer)):
            step = int(split_size_or_sections)
            sizes = [min(step, n - i) for i in range(0, n, step)] or [0]
        else:
            sizes = [int(k) for k in split_size_or_sections]
            if sum(sizes) != n:
                raise RuntimeError(f"split: sizes {sizes} do not add up to {n} (dim {dim})")
        return tuple(self.narrow(dim, int(a), k)
                     for a, k in zip(np.cumsum([0] + sizes[:-1]), sizes))

    def chunk(self, chunks, dim=0):
        """At most ``chunks`` pieces of ``ceil(n / chunks)`` along ``dim``."""
        n = self.shape[dim]
        return self.split(max(1, -(-n // chunks)), dim)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """``(values, indices)`` of the ``k`` largest (or smallest) entries along ``dim``;
        the derivative goes to those entries."""
        d = data(self)
        idx = np.take(np.argsort(-d if largest else d, axis=dim, kind="stable"),
                      np.arange(k), axis=dim)
        return _TOPK(np.take_along_axis(self, idx, axis=dim), idx)

    # scatters and index writes: out-of-place, on ``x.at[...]`` (``np.add.at`` for sums,
    # recorded assignment otherwise); ``name_`` writes the result into ``x`` (PyTorch's)
    def index_add(self, dim, index, source, *, alpha=1):
        """``out[..., index[i], ...] = x[..., index[i], ...] + alpha·source[..., i, ...]``
        along ``dim``; repeated indices add up."""
        idx = _slab(self, "index_add_", dim, index, source)
        return self.at[idx].add(source if alpha == 1 else alpha * source)

    def index_copy(self, dim, index, source):
        """``out[..., index[i], ...] = source[..., i, ...]`` along ``dim``."""
        return self.at[_slab(self, "index_copy_", dim, index, source)].set(source)

    def index_fill(self, dim, index, value):
        """``out[..., j, ...] = value`` for ``j`` in ``index`` (negative ones count from the
        end) along ``dim``; a tracked 0-d ``value`` gets the sum of those entries'
        derivatives."""
        dim = _torch_dim(self, dim)
        i = _index_of("index_fill_", index, 1)
        if np.ndim(meta(value)):
            raise RuntimeError("index_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {np.ndim(meta(value))} dimension(s).")
        i = np.unique(_in_bounds("index_fill_", i.reshape(-1), self.shape[dim], dim, True))
        return self.at[(slice(None),) * dim + (i,)].set(value)

    def scatter(self, dim, index, src=None, value=None, *, reduce=None):
        """``out[p with p_dim = index[p]] = src[p]`` for every position ``p`` of ``index``
        (or ``value``); ``reduce='add'``/``'multiply'`` adds or multiplies into ``x``'s
        entry instead. A position written twice without ``reduce`` keeps the last write
        (PyTorch leaves it unspecified)."""
        if reduce not in (None, "add", "multiply"):
            raise RuntimeError("reduce argument must be either add or multiply.")
        if (src is None) == (value is None):
            raise TypeError("scatter(dim, index, src) or scatter(dim, index, value)")
        idx, v = _scatter_index(self, "scatter", dim, index, src, value)
        at = self.at[idx]
        return at.set(v) if reduce is None else at.add(v) if reduce == "add" else \
            at.multiply(v)

    def scatter_add(self, dim, index, src):
        """``out[p with p_dim = index[p]] += src[p]`` for every position ``p`` of ``index``;
        repeated positions add up."""
        idx, v = _scatter_index(self, "scatter_add", dim, index, src)
        return self.at[idx].add(v)

    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        """The ``src[p]`` sent to ``q = p with p_dim = index[p]`` reduced with ``x[q]``
        (unless ``include_self=False``) by ``reduce``: ``'sum'``, ``'prod'``, ``'mean'``
        (over the count, ``x[q]`` included), ``'amax'``, ``'amin'`` (or ``'max'``, ``'min'``;
        the derivative shared equally by the entries equal to the result, PyTorch's rule).
        Entries no ``p`` reaches stay ``x``'s."""
        reduce = {"max": "amax", "min": "amin"}.get(reduce, reduce)
        if reduce not in ("sum", "prod", "mean", "amax", "amin"):
            raise RuntimeError("reduce argument must be either sum, prod, mean, amax or "
                               f"amin, got {reduce}")
        idx, v = _scatter_index(self, "scatter_reduce", dim, index, src)
        count = np.zeros(self.shape, self.dtype)
        np.add.at(count, idx, 1)
        start = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -np.inf, "amin": np.inf}
        base = self if include_self else np.where(count > 0, start[reduce], self)
        if reduce == "prod":
            return base.at[idx].multiply(v)
        if reduce == "sum" or reduce == "mean":
            out = base.at[idx].add(v)
            return out if reduce == "sum" else out / np.maximum(count + include_self, 1)
        # amax, amin: the extremum r, whose n equal entries carry 1/n of the derivative each
        at = P["at"](data(base))[idx]
        r = at.max(data(v)) if reduce == "amax" else at.min(data(v))
        on_x, on_v = data(base) == r, data(v) == r[idx]
        n = on_x.astype(self.dtype)
        np.add.at(n, idx, on_v)
        s = np.where(on_x, base, 0.0).at[idx].add(np.where(on_v, v, 0.0)) / np.maximum(n, 1)
        # s is r up to the rounding of a sum of ties over n: then r exactly, with s's
        # derivative; r where no entry equals it (NaN)
        tie = (n > 1) & np.isfinite(r)
        return np.where(tie, r + (s - data(s)), np.where(n > 0, s, r))

    def index_put(self, indices, values, accumulate=False):
        """``out[indices] = values`` (``indices`` a tuple of index arrays, NumPy's advanced
        indexing); ``accumulate=True`` adds, repeated positions adding up."""
        if not isinstance(indices, (tuple, list)):
            raise TypeError("index_put(): argument 'indices' must be tuple of Tensors, not "
                            f"{type(indices).__name__}")
        at = self.at[tuple(data(i) for i in indices)]
        try:
            return at.add(values) if accumulate else at.set(values)
        except ValueError as e:
            raise RuntimeError(f"index_put: {e}") from None

    def masked_scatter(self, mask, source):
        """``x`` with the entries where ``mask`` holds (broadcast with ``x``), in row-major
        order, taken in turn from ``source``'s (flattened) first ones."""
        m = _bool_mask(mask, self.shape)
        n = int(np.count_nonzero(m))
        if np.size(meta(source)) < n:
            raise RuntimeError("Number of elements of source < number of ones in mask")
        x = self if m.shape == self.shape else self.expand(m.shape)
        return x.at[m].set(np.ravel(source)[:n])

    def index_add_(self, dim, index, source, *, alpha=1):
        return self._inplace("index_add_", lambda x: x.index_add(dim, index, source,
                                                                 alpha=alpha))

    def index_copy_(self, dim, index, source):
        return self._inplace("index_copy_", lambda x: x.index_copy(dim, index, source))

    def index_fill_(self, dim, index, value):
        return self._inplace("index_fill_", lambda x: x.index_fill(dim, index, value))

    def scatter_(self, dim, index, src=None, value=None, *, reduce=None):
        return self._inplace("scatter_", lambda x: x.scatter(dim, index, src, value,
                                                             reduce=reduce))

    def scatter_add_(self, dim, index, src):
        return self._inplace("scatter_add_", lambda x: x.scatter_add(dim, index, src))

    def scatter_reduce_(self, dim, index, src, reduce, *, include_self=True):
        return self._inplace("scatter_reduce_", lambda x: x.scatter_reduce(
            dim, index, src, reduce, include_self=include_self))

    def index_put_(self, indices, values, accumulate=False):
        return self._inplace("index_put_", lambda x: x.index_put(indices, values, accumulate))

    def masked_scatter_(self, mask, source):
        _bool_mask(mask, self.shape, inplace=True)
        return self._inplace("masked_scatter_", lambda x: x.masked_scatter(mask, source))

    def _inplace(self, what, fn):
        """PyTorch's in-place method ``what``: ``x`` becomes ``fn(x)`` (a recorded
        assignment) and is returned. Variable refuses it on a leaf that requires grad."""
        self[...] = fn(self)
        return self

    def new_zeros(self, size, dtype=None): return np.zeros(size, dtype or self.dtype)
    def new_ones(self, size, dtype=None): return np.ones(size, dtype or self.dtype)
    def new_full(self, size, fill_value, dtype=None):
        return np.full(size, fill_value, dtype or self.dtype)

    # ----- formatting, rounding, copying: the primal, or a recorded copy -----
    def __format__(self, spec):
        """``f"{x:.3f}"`` formats the primal value (a string carries no derivative)."""
        if not spec:
            return str(self)
        return format(_scalar_primal(self, f"format(x, {spec!r})"), spec)

    def __round__(self, ndigits=None):
        """``round(x)``: the rounded primal, a plain number (its derivative is zero almost
        everywhere, as in JAX)."""
        v = _scalar_primal(self, "round(x)")
        return round(v) if ndigits is None else round(v, ndigits)

    def __floor__(self): return math.floor(_scalar_primal(self, "math.floor(x)"))
    def __ceil__(self): return math.ceil(_scalar_primal(self, "math.ceil(x)"))
    def __trunc__(self): return math.trunc(_scalar_primal(self, "math.trunc(x)"))

    def __copy__(self):
        """``copy.copy(x)`` inside a transform is ``x.copy()``: recorded, differentiable."""
        return self._copy(False)

    def __deepcopy__(self, memo):
        return self._copy(True)

    def _copy(self, deep):
        if self.level not in live_levels:
            raise leaked(self, "copied")
        return self.copy()

    def __reduce_ex__(self, protocol):
        raise TypeError(
            f"pickling a {type(self).__name__} tracked by a transform: a derivative in "
            "progress cannot be pickled (its records and level live in this process). "
            "Pickle the primal `x.value`, or return the value from the transform first.")

    # ----- the loud refusals -----
    def __float__(self):
        _refuse_in_library("float")
        raise _loud("float(x) (also called by `math` functions and by writing into a plain "
                    "ndarray)", "Use NumPy functions (`np.sin`, not `math.sin`); " + _FIX_ARRAY)

    def __int__(self):
        raise _loud("int(x) (also called when a tracked value is used as a shape or a "
                    "count)", "Keep the computation in NumPy functions; give shapes and "
                    "counts as ints (x.shape, len(x)).")

    def __index__(self):
        raise _loud("using a tracked value as an integer: an index, a shape or a count "
                    "(operator.index, e.g. np.zeros(x), range(x))",
                    "Indices and shapes carry no derivative: use `x.shape`, an int, or "
                    "`x.value`.")

    def __complex__(self):
        raise _loud("complex(x)", "Use NumPy functions on the tracked value.")

    def item(self, *args):
        raise _loud("x.item()", "Keep the value as a 0-d array and use NumPy functions on it.")

    def tolist(self):
        raise _loud("x.tolist()", "Keep the value as an array; index it to get elements.")

    def __array__(self, dtype=None, copy=None):
        if _sparse_matmul_probe(sys._getframe(1)):
            return _DEFER
        _refuse_in_library("np.asarray")
        raise _loud("np.asarray(x) / np.array(x) / np.float64(x) (also called when a tracked "
                    "value is written into a plain ndarray)", _FIX_ARRAY)

    def __bytes__(self):
        raise _loud("bytes(x)", "Bytes carry no derivative: use bytes(x.value).")

    def tobytes(self, order="C"):
        raise _loud("x.tobytes()", "Bytes carry no derivative: use x.value.tobytes().")

    def tofile(self, *args, **kw):
        raise _loud("x.tofile()", "Save the primal x.value (np.save(path, x.value)).")

    def __buffer__(self, flags):            # memoryview(x), Python 3.12+
        raise _loud("memoryview(x) (the buffer protocol)",
                    "A buffer carries no derivative: use memoryview(x.value).")

    @property
    def data(self):
        raise _loud("x.data (NumPy's raw memory buffer; PyTorch's .data detaches)",
                    "Use x.value for the primal, or ad.stop_gradient(x) for a value "
                    "without a derivative that stays in the computation.")

    @property
    def flat(self):
        """``x.flat[i]`` reads ``x.reshape(-1)[i]``; a write through it into an array of
        two or more dimensions is refused, as every write through a view is."""
        return self.reshape(-1)

    def view(self, *shape, dtype=None, type=None):
        """``x.view()``: a new array object of the same values; writes through it are
        refused (NumPy would carry them into ``x``). A new dtype or type is refused.
        Integers are PyTorch's ``x.view(*shape)``: ``x.reshape(*shape)`` (NumPy has no
        integer argument here, so nothing clashes)."""
        if shape and (_is_shape(shape) or len(shape) == 1 and _is_shape(shape[0])):
            return self.reshape(*shape)
        if len(shape) == 1 and dtype is None:
            dtype = shape[0]
        elif shape:
            raise TypeError(f"x.view{shape}: give a shape of ints or a dtype")
        if dtype is not None or type is not None:
            raise _loud(f"x.view({dtype if dtype is not None else type}) (a reinterpretation "
                        "of the bytes)", "Use x.astype(float-type) to convert values.")
        out = self.copy()
        out._view = "x.view()"
        return out

    @property
    def nbytes(self): return meta(self).nbytes if hasattr(meta(self), "nbytes") else 8

    @property
    def itemsize(self): return self.dtype.itemsize

    # ----- NumPy dispatch -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        if len(inputs) == 2 and (type(inputs[0]) in _SEQ or type(inputs[1]) in _SEQ):
            # A constant given as a list is an array to NumPy; the rules need it as one too.
            inputs = tuple(np.asarray(a) if type(a) in _SEQ else a for a in inputs)
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
            if kw.get("where", True) is not True:
                raise TypeError(f"{_qualname(ufunc)}(..., where=) on a tracked value: without "
                                "out= NumPy leaves the masked-out entries uninitialised; use "
                                f"np.where(mask, {ufunc.__name__}(...), other) instead.")
            kw.pop("where", None)
            if kw:
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




# ``A @ x`` with ``A`` a scipy.sparse matrix: SciPy's ``_matmul_dispatch`` converts ``x``
# with ``np.asanyarray`` and returns NotImplemented when that gives a 0-d object array, so
# Python then calls ``x.__rmatmul__(A)`` (which ops/sparse.py differentiates). Answering
# that one probe with such an array is the only hook SciPy offers; any other conversion
# still raises.
_DEFER = np.empty((), dtype=object)


def _defers(o):
    return getattr(type(o), "__array_ufunc__", False) is None


def _sparse_matmul_probe(frame):
    """Whether ``np.asarray(x)`` was called by scipy.sparse's matrix product."""
    if frame.f_code.co_name != "_matmul_dispatch" or \
            not _module(frame).startswith("scipy.sparse"):
        return False
    caller = frame.f_back
    if caller is not None and caller.f_code.co_name == "__mul__":
        # ``spmatrix * x`` is a matrix product in SciPy but an elementwise one to Python's
        # reflected ``x.__rmul__``: refuse rather than answer the wrong product.
        raise TypeError("A * x with a scipy.sparse matrix A (spmatrix) and a tracked x: "
                        "write the matrix product as A @ x.")
    return True


class _Size(int):
    """``x.size``: NumPy's element count, an int; called, PyTorch's ``x.size()`` (the shape)
    or ``x.size(dim)``."""

    def __new__(cls, n, shape):
        self = int.__new__(cls, n)
        self._shape = shape
        return self

    def __call__(self, dim=None):
        return self._shape if dim is None else self._shape[dim]


def _is_shape(s):
    return isinstance(s, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in s)


def _torch_axis(axis, dim, keepdims=False, keepdim=None):
    """NumPy's ``axis``/``keepdims`` from either spelling (PyTorch's ``dim``/``keepdim``)."""
    if dim is not None:
        if axis is not None:
            raise TypeError("give axis= (NumPy) or dim= (PyTorch), not both")
        axis = tuple(dim) if isinstance(dim, list) else dim
    if keepdim is not None:
        keepdims = keepdim
    return axis, keepdims


def _list_dim(axis, dim):
    """A positional list of axes is PyTorch's ``dim`` (NumPy's ``axis`` is an int or a
    tuple): ``(axis, dim)`` with it moved to ``dim``."""
    if type(axis) is list and dim is None:
        return None, axis
    return axis, dim


def _ddof(ddof, dim, keepdim, unbiased, correction):
    """NumPy's ``ddof=0`` by default; PyTorch's spelling (``dim=``, ``keepdim=``,
    ``unbiased``, ``correction``) brings PyTorch's default correction of 1."""
    if correction is not None:
        return correction
    if unbiased is not None:
        return int(bool(unbiased))
    if ddof is not None:
        return ddof
    return 1 if dim is not None or keepdim is not None else 0


def _extremum(x, reduce, arg, pairwise, name, args, kw):
    dim = kw.pop("dim", None)
    keepdim = kw.pop("keepdim", None)
    if args and (type(args[0]) in box_types or isinstance(args[0], np.ndarray)):
        if len(args) > 1 or kw or dim is not None:
            raise TypeError(f"x.{name}(other) takes no further arguments")
        return pairwise(x, args[0])                 # PyTorch's x.max(other)
    numpy_form = len(args) > 2 or len(args) == 2 and not isinstance(args[1], bool) or \
        any(k in kw for k in ("axis", "out", "keepdims", "initial", "where"))
    if dim is None and args and isinstance(args[0], (int, np.integer)) and \
            not isinstance(args[0], bool) and not numpy_form:
        dim, args = args[0], args[1:]
        if args:                                    # x.max(dim, keepdim)
            keepdim, args = args[0], args[1:]
    if dim is None:
        if keepdim is not None:
            kw["keepdims"] = keepdim
        axis = args[0] if args else kw.pop("axis", None)
        out = args[1] if len(args) > 1 else kw.pop("out", None)
        keepdims = args[2] if len(args) > 2 else kw.pop("keepdims", False)
        extra = dict(zip(("initial", "where"), args[3:]))       # NumPy's positional order
        extra.update((k, kw.pop(k)) for k in ("initial", "where") if k in kw)
        if kw or len(args) > 5:
            raise TypeError(f"x.{name}: unexpected arguments {sorted(kw)}")
        return function_table[reduce](x, axis, None, out, keepdims, **extra)
    if args or kw:
        raise TypeError(f"x.{name}(dim, keepdim=False) takes no other arguments")
    # PyTorch: the values at the first extremum, whose derivative goes to that index only.
    idx = np.expand_dims(arg(data(x), axis=dim), dim)
    values = function_table[np.take_along_axis](x, idx, dim)
    if not keepdim:
        values = function_table[np.squeeze](values, dim)
        idx = np.squeeze(idx, dim)
    return _MINMAX[name](values, idx)


_MINMAX = {name: collections.namedtuple(name, ["values", "indices"]) for name in ("max", "min")}
_TOPK = collections.namedtuple("topk", ["values", "indices"])
_SORT = collections.namedtuple("sort", ["values", "indices"])
_MEDIAN = collections.namedtuple("median", ["values", "indices"])


def _dims(dim):
    """PyTorch's ``dim`` (an int, a list or a tuple) as NumPy's ``axis``."""
    return tuple(dim) if isinstance(dim, list) else dim


class _BadIndex(IndexError, RuntimeError):
    """A dim out of range or a bad index: PyTorch raises IndexError or RuntimeError for it,
    by method; this is both."""


def _torch_dim(x, dim):
    """PyTorch's ``dim`` of ``x``, in ``[0, ndim)``."""
    n = x.ndim
    if n == 0:
        raise RuntimeError("index and scatter methods on a 0-d tracked value: reshape it "
                           "to (1,) first")
    if not -n <= dim < n:
        raise _BadIndex(f"Dimension out of range (expected to be in range of [{-n}, "
                          f"{n - 1}], but got {dim})")
    return dim % n


def _index_of(name, index, max_ndim=None):
    """The integer index array of ``index``, at most ``max_ndim``-d."""
    i = np.asarray(concrete(index))
    if i.dtype.kind not in "iu":
        raise _BadIndex(f"{name}(): Expected dtype int32/int64 for index but got: {i.dtype}")
    if max_ndim is not None and i.ndim > max_ndim:
        raise _BadIndex(f"{name}(): Index is supposed to be a vector, but got dim: "
                        f"{i.ndim} with size: {list(i.shape)}")
    return i


def _in_bounds(name, i, n, dim, wrap=False):
    """``i`` checked against the size ``n`` of ``dim`` (negative ones from the end if
    ``wrap``, else refused as PyTorch's index_add/index_copy/scatter refuse them)."""
    bad = (i < (-n if wrap else 0)) | (i >= n)
    if bad.any():
        raise _BadIndex(f"{name}(): index {i[bad][0]} is out of bounds for dimension {dim} "
                          f"with size {n}")
    return i % n if wrap else i


def _slab(x, name, dim, index, source):
    """NumPy's index of the slices ``x[..., index[i], ...]`` along ``dim`` that
    ``source[..., i, ...]`` is written to (index_add, index_copy), with PyTorch's checks."""
    dim = _torch_dim(x, dim)
    i = _index_of(name, index, 1).reshape(-1)
    s, ss = x.shape, np.shape(meta(source))
    if len(ss) != len(s) or ss[:dim] + ss[dim + 1:] != s[:dim] + s[dim + 1:]:
        raise RuntimeError(f"{name}(): source tensor shape must match self tensor shape, "
                           f"excluding the specified dimension. Got self.shape = {list(s)} "
                           f"source.shape = {list(ss)}")
    if ss[dim] != i.size:
        raise RuntimeError(f"{name}(): Number of indices ({i.size}) should be equal to "
                           f"source.size(dim): ({ss[dim]}), for dim: {dim}")
    return (slice(None),) * dim + (_in_bounds(name, i, s[dim], dim),)


def _scatter_index(x, name, dim, index, src, value=None):
    """``(idx, v)``: NumPy's index of the positions ``p with p_dim = index[p]`` of ``x``
    for every position ``p`` of ``index``, and the values sent there: ``src[p]`` (a number
    as ``src`` is a value too), or the scalar ``value``; with PyTorch's checks."""
    dim = _torch_dim(x, dim)
    i = _index_of(name, index)
    i = i.reshape(1) if i.ndim == 0 else i          # PyTorch's: 0-d as 1-d
    s = x.shape
    array = value is None and (type(src) in box_types or isinstance(src, np.ndarray))
    src = src if value is None else value
    ss = (np.shape(meta(src)) or (1,)) if array else None
    if i.ndim != len(s) or array and i.ndim != len(ss):
        raise _BadIndex(f"Index tensor must have the same number of dimensions as "
                        f"{'self' if i.ndim != len(s) else 'src'} tensor")
    if i.size and (any(k != dim and n > m for k, (n, m) in enumerate(zip(i.shape, s))) or
                   array and any(n > m for n, m in zip(i.shape, ss))):
        raise RuntimeError(f"Expected index {list(i.shape)} to be no larger than self "
                           f"{list(s)} apart from dimension {dim}"
                           + (f" and to be no larger size than src {list(ss)}" if array else ""))
    i = _in_bounds(name, i, s[dim], dim)
    m = i.ndim
    idx = tuple(i if k == dim else np.arange(n).reshape((1,) * k + (n,) + (1,) * (m - k - 1))
                for k, n in enumerate(i.shape))
    if array and ss != i.shape:
        src = np.reshape(src, ss)[tuple(slice(0, n) for n in i.shape)]
    return idx, src


def _bool_mask(mask, shape, inplace=False):
    """``mask``, a boolean array, broadcast with ``shape`` (to it, for an in-place method)."""
    m = np.asarray(concrete(mask))
    if m.dtype != bool:
        raise RuntimeError(f"masked_scatter_ only supports boolean masks, but got mask with "
                           f"dtype {m.dtype}")
    try:
        out = np.broadcast_shapes(m.shape, shape)
        if inplace and out != shape:
            raise ValueError
    except ValueError:
        raise RuntimeError(f"masked_scatter: the mask of shape {list(m.shape)} does not "
                           f"broadcast {'to' if inplace else 'with'} the tensor's "
                           f"{list(shape)}") from None
    return np.broadcast_to(m, out)


#: NumPy constructors that reach ``__array_function__`` only through ``like=``; filled by
#: the ops package from ``ops.assign.LIKE_CONSTRUCTORS``.
_LIKE = set()
_VIEW = (int, slice, type(None), type(Ellipsis))


def _refuse_in_library(conversion):
    """Name the library function (``scipy.linalg.expm``) that converted a tracked value,
    and its ``autodiff.scipy`` replacement if there is one."""
    api = _foreign_caller()
    if api is None:
        return
    name, replacement = api
    fix = (f"Use `{replacement}`, its differentiable version." if replacement else
           "Write it with NumPy functions (they dispatch on tracked values), or give it a "
           "derivative with ad.custom_jvp / ad.custom_vjp.")
    raise TypeError(
        f"{name} converts its input with {conversion}(), which would drop the derivative "
        f"of a tracked value: {name} never dispatches to autodiff. {fix} (To use only the "
        "primal value, with no derivative, pass `x.value`.)")


def _foreign_caller():
    """``(name, replacement)`` of the function outside NumPy and autodiff that called
    ``np.asarray`` on a tracked value: the outermost frame of the library (SciPy, …)
    below the user's code, named by its public module (``scipy.linalg.expm``), and the
    ``autodiff.scipy`` function of that name if there is one. ``None`` when the user's
    own code called ``np.asarray``."""
    f = sys._getframe(2)
    while f is not None and _module(f).split(".")[0] in ("numpy", "autodiff"):
        f = f.f_back
    if f is None or _module(f).split(".")[0] not in _LIBRARIES:
        return None
    root = _module(f).split(".")[0]
    frames = []                                 # the library's frames, innermost first
    while f is not None and _module(f).split(".")[0] in (root, "numpy"):
        if _module(f).split(".")[0] == root:
            frames.append(f)
        f = f.f_back
    # The outermost frame is the function the user called; a decorator's wrapper
    # (``<locals>``) stands for the function it wraps (a free variable of the wrapper).
    top = frames[-1]
    module, fname = _module(top), top.f_code.co_name
    if "<locals>" in getattr(top.f_code, "co_qualname", ""):
        for var in top.f_code.co_freevars:
            fn = top.f_locals.get(var)
            if callable(fn) and str(getattr(fn, "__module__", "")).startswith(root) \
                    and not getattr(fn, "__name__", "_").startswith("_"):
                module, fname = fn.__module__, fn.__name__
                break
    parts = []
    for part in module.split("."):
        if part.startswith("_"):
            break
        parts.append(part)
    owner = top.f_locals.get("self")
    if fname == "__init__" and owner is not None:
        # a constructor (scipy.sparse.csr_array((data, indices, indptr))): name its class
        path = [type(owner).__name__]
    elif isinstance(getattr(owner, "name", None), str):
        # a method of a named object (scipy.stats.norm.pdf): name it by the object
        path = [owner.name, fname]
    else:
        path = [fname]
    name = ".".join(parts + path)
    replacement = None
    if root == "scipy" and len(parts) >= 2:
        try:
            import importlib
            obj = importlib.import_module("autodiff.scipy." + parts[1])
            for attr in path:
                obj = getattr(obj, attr)
            if callable(obj):
                replacement = ".".join(["autodiff.scipy", parts[1]] + path)
        except (ImportError, AttributeError):
            pass
        if replacement is None and parts[1] == "sparse" and path[0][:3] in ("csr", "csc", "coo"):
            # one tracked sparse type serves every constructor of stored values
            replacement = "autodiff.scipy.sparse.csr_array"
    return name, replacement


#: Libraries whose functions convert with np.asarray; the refusal names their function.
_LIBRARIES = {"scipy", "sklearn", "pandas", "numba", "matplotlib", "statsmodels"}


def _module(frame):
    return frame.f_globals.get("__name__") or ""


def _scalar_primal(x, what):
    """The primal of a 0-d tracked value as a NumPy scalar (what ``round``/``format`` need)."""
    v = concrete(x)
    if type(v) is np.ndarray:
        if v.ndim:
            raise TypeError(
                f"{what} needs a scalar, but the tracked value has shape {v.shape} (NumPy "
                "refuses this for arrays too); use np.round / np.floor on the array, or "
                "index one element first.")
        v = v[()]
    return v


def _view_index(idx):
    return type(idx) in _VIEW or type(idx) is tuple and all(type(i) in _VIEW for i in idx)


def _no_write_through(x, op):
    """Refuse a write into ``x`` if NumPy would carry it through a view into another array
    (arrays of the engine are values and share no memory, so it would be lost)."""
    view = getattr(x, "_view", None)
    if view is not None:
        raise TypeError(
            f"{op} into the result of {view}: NumPy would write through this view into "
            "the original array, which a tracked array does not share, so the write would "
            "be lost. Assign into the original directly (x[i, j] = v instead of "
            "x[i][j] = v; x[...] = y.reshape(x.shape) to write a reshaped array back), or "
            "take .copy() first (or write y = y + v) to make a separate array.")


_f64 = np.float64


def _install_ndarray_refusals(cls):
    """Every public ndarray attribute a tracked value has no version of raises an
    AttributeError that names it and the fix. Properties, not ``__getattr__``: a class
    with ``__getattr__`` loses CPython's specialised attribute loads on the hot path."""
    def refusal(name):
        def get(self):
            raise AttributeError(
                f"x.{name}: ndarray.{name} is not available on a tracked value (it has no "
                "derivative rule, or exposes memory a tracked value does not have). Use "
                + (f"the NumPy function (np.{name}(x, ...)), which has a rule, or "
                   if callable(getattr(np, name, None)) else "")
                + f"x.value.{name} for the primal only, with no derivative.")
        return property(get)
    for name in dir(np.ndarray):
        if not name.startswith("_") and not hasattr(cls, name):
            setattr(cls, name, refusal(name))


def _stored_back(frame):
    """Whether the in-place operator running in ``frame`` stores its result back with a
    subscript or attribute assignment (``x[i] += v``, ``o.a += v``) rather than into a
    name (``y += v``, which would rebind ``y`` and lose NumPy's write through the view)."""
    last = frame.f_lasti
    current = None
    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == last:
            current = ins.opname
        elif ins.offset > last and ins.opname != "CACHE":
            if current is None or not current.startswith(("BINARY_OP", "INPLACE_")):
                return False        # called as operator.iadd(y, v) or y.__iadd__(v)
            name = ins.opname
            return not (name.startswith("STORE_") and name not in ("STORE_SUBSCR",
                                                                   "STORE_ATTR"))
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
        # never a view, so the common ``s += term`` pays a type check or two.
        if grad_off[0] and self.level == EAGER_REVERSE and not grad_enabled.get() and \
                self.prim is None:
            # nn.no_grad(): ``p -= lr * p.grad`` updates the parameter in place (PyTorch).
            return self._inplace(f"{symbol}=", lambda x: prim(x, o))
        tv = type(self.value)
        if tv is not float and tv is not _f64 and getattr(self, "_view", None) is not None \
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
        if getattr(np, name, None) is f:
            mod = "numpy"
        else:
            import scipy.special
            if getattr(scipy.special, name, None) is not f:     # a Python function's
                return f"{name} (made by np.frompyfunc: a Python function, no rule)"
            mod = "scipy.special"
    else:
        mod = getattr(f, "__module__", None) or "numpy"
    return f"{mod}.{name}"


_install_ndarray_refusals(Box)
