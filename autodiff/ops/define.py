"""How a primitive is declared: one statement with its implementation and both rules.

``defprim`` registers a general primitive. ``elementwise`` declares a ufunc-like primitive
by its partial derivatives ``∂ans/∂xᵢ = d_i(ans, *xs)``; both rules follow from them:
JVP ``Σ tᵢ·dᵢ`` and VJP ``g·dᵢ``. ``scalar_fast`` gives an implementation that uses ``math``
on Python floats (a NumPy ufunc on a float costs ~20× more) with NumPy's semantics kept:
where ``math`` refuses (domain errors, overflow) NumPy answers instead.
"""
import operator

import numpy as np

from ..core import Primitive, box_types, function_table, register, shape_of

__all__ = ["defprim", "elementwise", "scalar_fast", "handles", "norm_axes", "reduce_axes",
           "expand_to", "broadcast", "check_no_out"]


def defprim(name, impl, jvp=None, vjp=None, *, ufuncs=(), functions=(), linear=False,
            broadcasts=False, flops=None, partials=None):
    """Declare and register a primitive; map NumPy ufuncs and functions straight to it."""
    return register(Primitive(name, impl, jvp, vjp, linear=linear, broadcasts=broadcasts,
                              flops=flops, partials=partials), ufuncs=ufuncs, functions=functions)


def elementwise(name, impl, *partials, ufuncs=(), flops=1):
    """A broadcasting primitive given by its partials: ``partials[i](ans, *xs)``, or the
    constants ``1.0``/``-1.0`` for a linear argument."""
    rule = tuple(None if d is None else _rule_from(d) for d in partials)
    return defprim(name, impl, rule, rule, ufuncs=ufuncs, broadcasts=True, flops=flops,
                   partials=partials)


def _rule_from(d):
    """``t ↦ t·d`` (the JVP) which is also ``g ↦ g·d`` (the VJP) of an elementwise op."""
    if type(d) is float:
        return (lambda t, ans, *xs: t) if d == 1.0 else (lambda t, ans, *xs: -t)
    return lambda t, ans, *xs: t * d(ans, *xs)


def scalar_fast(ufunc, mathfn):
    """``mathfn`` on Python floats, ``ufunc`` otherwise (arrays, tracked values)."""
    def f(x):
        if type(x) is float:
            try:
                return mathfn(x)
            except (ValueError, OverflowError):
                pass
        return ufunc(x)
    f.__name__ = ufunc.__name__
    return f


def handles(*funcs):
    """Decorator: route these NumPy/SciPy functions' ``__array_function__`` to the handler."""
    def deco(handler):
        for f in funcs:
            function_table[f] = handler
        return handler
    return deco


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
    return np.reshape(g, tuple(shape)) if type(g) is float else g.reshape(tuple(shape))


def broadcast(g, shape):
    """``np.broadcast_to(g, shape)``; on plain values a filled array, which small arrays get
    ~4× faster than from NumPy's Python-level ``broadcast_to``."""
    if type(g) in box_types:
        return np.broadcast_to(g, shape)
    out = np.empty(shape, dtype=np.result_type(g))
    out[...] = g
    return out


def check_no_out(out, name):
    if out is not None:
        raise TypeError(f"np.{name}(..., out=...) cannot write a tracked result into an "
                        "array; drop `out=` and use the returned value.")

