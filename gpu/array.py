"""``DeviceArray``: an n-d array in GPU memory that NumPy code runs on unchanged.

NumPy's own protocols route the calls: ``np.sin(d)`` reaches ``__array_ufunc__`` and
``np.sum(d)`` ``__array_function__``, and both hand them to the kernels (``functions.py``).
Data stays on the device between calls; ``to_host()`` is the one way back, and an implicit
``np.asarray(d)`` is a ``TypeError``, as in CuPy, so no copy happens by accident (numba's own
device array silently copies to the host there). Scalars read from a 0-d or one-element
array (``float(d)``, ``bool(d)``, ``d.item()``) wait for the device and copy that one value,
as CuPy's do. Arrays are C-contiguous; ``reshape`` shares the buffer, other views copy.
"""
import sys

import numpy as np

from . import kernels as K

__all__ = ["DeviceArray", "to_device", "asarray"]


class DeviceArray:
    """An array on the GPU (or Numba's simulator).

    >>> import numpy as np
    >>> from autodiff import gpu
    >>> d = gpu.to_device(np.arange(3.0))
    >>> (np.sin(d) * 2).to_host().round(3)
    array([0.   , 1.683, 1.819])
    """
    __slots__ = ("_buf", "shape", "dtype", "_view", "__weakref__")
    # Below the engine's tracked values (1000): a Variable of a device array wins the
    # binary operators and the NumPy protocols, so it records them.
    __array_priority__ = 100.0

    def __init__(self, buf, shape, dtype, view=None):
        self._buf = buf
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        # what NumPy would return as a view of another array that this one copies (basic
        # indexing, a transpose): a write into it would be lost, so it is refused
        self._view = view

    # ----- metadata -----
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def itemsize(self):
        return self.dtype.itemsize

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize

    @property
    def T(self):
        return self.transpose()

    @property
    def mT(self):
        return np.swapaxes(self, -1, -2)

    @property
    def real(self):
        return self

    @property
    def device(self):
        return "gpu"

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __repr__(self):
        return f"DeviceArray({np.array2string(self.to_host(), separator=', ')}, " \
               f"dtype={self.dtype})"

    # ----- transfers -----
    def to_host(self):
        """A NumPy copy of the data (waits for the device)."""
        return K.to_host(self._buf, self.size).reshape(self.shape)

    get = to_host      # CuPy's name

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "an implicit conversion of a gpu.DeviceArray to a NumPy array (np.asarray, "
            "np.array, a NumPy function without a device implementation) would copy it to "
            "the host: call .to_host() for that copy explicitly.")

    def _scalar(self):
        if self.size != 1:
            raise TypeError(f"only arrays of one element convert to Python scalars, not "
                            f"shape {self.shape}")
        return self.to_host().reshape(()).item()

    def item(self):
        return self._scalar()

    def __float__(self):
        return float(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def __complex__(self):
        return complex(self._scalar())

    def __bool__(self):
        if self.size != 1:
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous. Use a.any() or a.all()")
        return bool(self._scalar())

    def __index__(self):
        if self.dtype.kind not in "iu" or self.ndim:
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(self._scalar())

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __reduce__(self):
        return (to_device, (self.to_host(),))

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    # ----- NumPy protocols -----
    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        from .functions import ufunc_call
        return ufunc_call(ufunc, method, inputs, kw)

    def __array_function__(self, func, types, args, kwargs):
        from .functions import function_call
        return function_call(func, types, args, kwargs)

    # ----- methods NumPy users call -----
    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return np.reshape(self, shape, order=order)

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0]) if axes[0] is not None else None
        return np.transpose(self, axes or None)

    def swapaxes(self, a, b):
        return np.swapaxes(self, a, b)

    def ravel(self, order="C"):
        return np.reshape(self, (-1,))

    def flatten(self, order="C"):
        return self.copy().reshape(-1)

    def squeeze(self, axis=None):
        return np.squeeze(self, axis)

    def astype(self, dtype, copy=True, **kw):
        from .functions import astype
        return astype(self, dtype, copy)

    def copy(self, order="C"):
        from .functions import astype
        return astype(self, self.dtype, True)

    def fill(self, value):
        from .functions import fill
        fill(self, value)

    def conj(self):
        return self

    conjugate = conj

    def clip(self, a_min=None, a_max=None):
        return np.clip(self, a_min, a_max)

    def sum(self, axis=None, dtype=None, keepdims=False, **kw):
        return np.sum(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def prod(self, axis=None, dtype=None, keepdims=False, **kw):
        return np.prod(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def mean(self, axis=None, dtype=None, keepdims=False, **kw):
        return np.mean(self, axis=axis, dtype=dtype, keepdims=keepdims, **kw)

    def max(self, axis=None, keepdims=False, **kw):
        return np.max(self, axis=axis, keepdims=keepdims, **kw)

    def min(self, axis=None, keepdims=False, **kw):
        return np.min(self, axis=axis, keepdims=keepdims, **kw)

    def argmax(self, axis=None, **kw):
        return np.argmax(self, axis=axis, **kw)

    def argmin(self, axis=None, **kw):
        return np.argmin(self, axis=axis, **kw)

    def any(self, axis=None, keepdims=False):
        return np.any(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return np.all(self, axis=axis, keepdims=keepdims)

    def dot(self, other):
        return np.dot(self, other)

    # ----- indexing -----
    def __getitem__(self, idx):
        from .functions import getitem
        return getitem(self, idx)

    def __setitem__(self, idx, value):
        from .functions import setitem
        setitem(self, idx, value)

    # ----- operators: the ufuncs, so NumPy's dispatch and dtype rules apply -----
    def _binary(ufunc, reflected=False):
        def op(self, other):
            if not _operand(other):
                return NotImplemented
            return ufunc(other, self) if reflected else ufunc(self, other)
        return op

    __add__, __radd__ = _binary(np.add), _binary(np.add, True)
    __sub__, __rsub__ = _binary(np.subtract), _binary(np.subtract, True)
    __mul__, __rmul__ = _binary(np.multiply), _binary(np.multiply, True)
    __truediv__, __rtruediv__ = _binary(np.divide), _binary(np.divide, True)
    __floordiv__, __rfloordiv__ = _binary(np.floor_divide), _binary(np.floor_divide, True)
    __mod__, __rmod__ = _binary(np.remainder), _binary(np.remainder, True)
    __pow__, __rpow__ = _binary(np.power), _binary(np.power, True)
    __matmul__, __rmatmul__ = _binary(np.matmul), _binary(np.matmul, True)
    __lt__, __le__ = _binary(np.less), _binary(np.less_equal)
    __gt__, __ge__ = _binary(np.greater), _binary(np.greater_equal)
    __eq__, __ne__ = _binary(np.equal), _binary(np.not_equal)
    __and__, __or__ = _binary(np.logical_and), _binary(np.logical_or)
    __hash__ = None

    def _inplace(ufunc):
        def op(self, other):
            if not _operand(other):
                return NotImplemented
            r = ufunc(self, other)
            if r.shape != self.shape:
                raise ValueError(f"non-broadcastable output operand with shape {self.shape} "
                                 f"doesn't match the broadcast shape {r.shape}")
            from .functions import copy_into, no_write_through
            if self._view is not None:
                # ``x[i] += v`` stores the result back with ``x[i] = ...`` (the engine's
                # rule for tracked views); ``row += v`` would lose NumPy's write into x
                from autodiff.boxes import _stored_back
                if _stored_back(sys._getframe(1)):
                    return r
                no_write_through(self, f"y {ufunc.__name__} = v (in place)")
            copy_into(self, r)          # in place: views sharing the buffer see it
            return self
        return op

    __iadd__, __isub__ = _inplace(np.add), _inplace(np.subtract)
    __imul__, __itruediv__ = _inplace(np.multiply), _inplace(np.divide)

    def __neg__(self):
        return np.negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return np.absolute(self)

    def __invert__(self):
        return np.logical_not(self)

    del _binary, _inplace


def _operand(x):
    """Whether a binary operator takes ``x`` (else it defers to ``x``'s reflected one: a
    tracked value records the operation)."""
    return type(x) is DeviceArray or isinstance(x, (int, float, complex, np.generic))


def to_device(array, dtype=None):
    """A copy of ``array`` (anything ``np.asarray`` takes) on the device.

    >>> import numpy as np
    >>> from autodiff import gpu
    >>> gpu.to_device(np.ones((2, 3))).shape
    (2, 3)
    """
    if type(array) is DeviceArray:
        return array if dtype is None else array.astype(dtype)
    a = np.asarray(array, dtype=dtype)
    if a.dtype.kind == "c":
        raise TypeError("complex arrays are not supported on the device yet")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"arrays of dtype {a.dtype} cannot move to the device")
    return DeviceArray(K.to_device(a), a.shape, a.dtype)


def asarray(a, dtype=None):
    """``a`` on the device (a device array stays where it is)."""
    return to_device(a, dtype)
