"""The bottom floor: small array helpers every layer shares, importing nothing of autodiff.

Shapes and batch axes (``shape_of``, ``ndim_of``, ``lead``), axis arithmetic
(``norm_axes``, ``reduce_axes``, ``expand_to``), undoing and doing broadcasting (``sum_to``,
``broadcast``), and the array-type seam (``is_host``, ``zeros``, ``as_like``): the engine
builds a zero or a seed "like this value", so a value of another array type (a device
array that implements NumPy's protocols) gets zeros and seeds of its own type, while NumPy
arrays and Python numbers take the plain NumPy calls they always took.

The modes (``forward``, ``reverse``), the registry (``ops/``) and ``nn/`` import these from
here, below all of them, so no module imports upward or in a circle.
"""
import operator

import numpy as np

__all__ = ["shape_of", "ndim_of", "lead", "is_complex", "real_like", "norm_axes",
           "reduce_axes", "expand_to", "broadcast", "sum_to", "is_host", "zeros", "as_like",
           "asarray",
           "dtype_of"]

#: Types whose values are NumPy's own (host arrays and numbers); ``np.generic`` subclasses
#: are matched by ``isinstance`` in ``is_host``.
HOST_TYPES = frozenset((np.ndarray, float, int, complex, bool))


def is_host(x):
    """Whether ``x`` is a NumPy array or a number (not a tracked value, not a device array)."""
    t = type(x)
    return t in HOST_TYPES or isinstance(x, np.generic)


def dtype_of(x):
    """The dtype of a plain value; Python floats are float64."""
    if type(x) is float:
        return np.dtype(np.float64)
    try:
        return x.dtype
    except AttributeError:
        return np.result_type(x)


def zeros(shape, dtype, like=None):
    """Zeros of ``shape`` and ``dtype`` of ``like``'s array type: a NumPy array for NumPy
    values, numbers and ``None``; for another array type NumPy's ``like=`` (NEP 35) hands
    the call to that type's ``__array_function__``.

    >>> zeros((2,), np.float64, like=np.ones(3))
    array([0., 0.])
    """
    if like is None or is_host(like):
        return np.zeros(shape, dtype)
    return np.zeros(shape, dtype, like=like)


def asarray(x, dtype=None):
    """``np.asarray(x, dtype)`` that leaves an array of another type (a device array) where
    it is (cast to ``dtype`` there): NumPy's own ``asarray`` would copy it to the host."""
    if type(x) is not np.ndarray and hasattr(x, "__array_function__") \
            and not isinstance(x, np.ndarray):
        return x if dtype is None or x.dtype == np.dtype(dtype) else x.astype(dtype)
    return np.asarray(x, dtype=dtype)


def as_like(a, like):
    """Host array ``a`` as ``like``'s array type (the identity for NumPy values)."""
    if like is None or is_host(like):
        return a
    return np.asarray(a, like=like)


def host_values(x):
    """The NumPy array of a host or device array (indices, labels: integers that carry no
    derivative, read on the host)."""
    return x.to_host() if hasattr(x, "to_host") else np.asarray(x)


def shape_of(x):
    """``np.shape`` without NumPy's dispatch (fast on floats and tracked values)."""
    if type(x) is float:
        return ()
    try:
        return x.shape
    except AttributeError:
        return np.shape(x)


def is_complex(x):
    """Whether ``x`` (a number, an array or a tracked value) holds complex numbers."""
    t = type(x)
    if t is float:
        return False
    if t is complex:
        return True
    try:
        return x.dtype.kind == "c"
    except AttributeError:
        return isinstance(x, complex)


def real_like(t, x):
    """``t`` with its imaginary part dropped when ``x`` is real: a complex tangent reaching a
    real output (the pushforward Re(d·t)) or a complex cotangent reaching a real input (the
    transpose of the real-to-complex embedding under JAX's pairing Re(Σ a·b))."""
    if type(t) is not float and is_complex(t) and not is_complex(x):
        return np.real(t)
    return t


def partial_at(d, ans, vals):
    """The partial ``d(ans, *vals)`` once more with each Python float as a NumPy float64:
    called where its float arithmetic raised (``0.5 / 0.0`` at ``sqrt(0)``, ``0.0 ** -0.5``),
    since NumPy, and JAX, give inf or nan there. Off the hot path: only after the raise."""
    def f(v):
        return np.float64(v) if type(v) is float else v
    return d(f(ans), *[f(v) for v in vals])


def ndim_of(x):
    if type(x) is float:
        return 0
    try:
        return x.ndim
    except AttributeError:
        return np.ndim(x)


def lead(t, x):
    """The batch axes of tangent/cotangent ``t`` of a value shaped like ``x``: ``()`` or ``(B,)``.

    A batch of directions is one leading axis on the tangent (or cotangent) only; rules that
    reshape, transpose or contract use this helper to carry it along.
    """
    s = shape_of(t)
    return s[:len(s) - ndim_of(x)]


def norm_axes(axis, ndim):
    """``axis`` as a tuple of negative ints. Negative axes count from the end, so they
    stay right when a tangent carries a leading batch axis."""
    if axis is None:
        return tuple(range(-ndim, 0))
    if not isinstance(axis, tuple):
        axis = (axis,)
    out = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(a, ndim)
        out.append(a - ndim if a >= 0 else a)
    return tuple(sorted(out))


def reduce_axes(axis, ndim):
    """``norm_axes`` for a ufunc-style reduction (``np.sum``, ``np.add.reduce``, ...): as
    NumPy, a 0-d array also takes a single ``axis`` of 0 or -1 (not in a tuple), meaning
    no axis at all (``np.sum(np.array(2.0), axis=0) == 2.0``)."""
    if ndim == 0 and not isinstance(axis, tuple) and axis is not None \
            and operator.index(axis) in (0, -1):
        return ()
    return norm_axes(axis, ndim)


def expand_to(g, axes, keepdims):
    """Re-insert the reduced ``axes`` (negative) into ``g`` as size-1 axes."""
    if keepdims or not axes:
        return g
    shape = list(shape_of(g))
    nd = len(shape) + len(axes)
    for a in sorted(a + nd for a in axes):
        shape.insert(a, 1)
    # (a Python float or complex cotangent has no method: NumPy's function makes it 0-d)
    return g.reshape(tuple(shape)) if hasattr(g, "reshape") else np.reshape(g, tuple(shape))


def broadcast(g, shape):
    """``np.broadcast_to(g, shape)``; on host values a filled array, which small arrays get
    ~4× faster than from NumPy's Python-level ``broadcast_to``. Tracked values and other
    array types (a device array) take NumPy's call, which dispatches to them."""
    if not is_host(g):
        return np.broadcast_to(g, shape)
    out = np.empty(shape, dtype=np.result_type(g))
    out[...] = g
    return out




def sum_to(g, x, nb=0):
    """Sum cotangent ``g`` back to the shape of ``x`` (undo broadcasting), keeping ``nb``
    leading batch axes."""
    if type(g) is float:
        return g
    target = shape_of(x)
    s = shape_of(g)
    if s[nb:] == target and len(s) == nb + len(target):
        return g
    # (ndarray's own methods where g is one: a third of the cost of NumPy's functions,
    # which dispatch; the cotangent of a scalar is the commonest reduction of a sweep)
    host = type(g) is np.ndarray
    if host and not target and not nb:
        return g.sum(keepdims=True).reshape(())
    extra = len(s) - nb - len(target)
    if extra < 0:       # x has leading size-1 axes that NumPy's assignment drops (a[i] = v)
        g = np.reshape(g, s[:nb] + (1,) * -extra + s[nb:])
        s, extra = shape_of(g), 0
    axes = tuple(range(nb, nb + extra)) + tuple(
        nb + extra + i for i, d in enumerate(target) if d == 1 and s[nb + extra + i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True) if host else np.sum(g, axis=axes, keepdims=True)
    return g.reshape(s[:nb] + target) if host else np.reshape(g, s[:nb] + target)
