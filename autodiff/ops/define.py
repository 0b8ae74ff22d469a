"""How a primitive is declared: one statement with its implementation and both rules.

``defprim`` registers a general primitive. ``elementwise`` declares a ufunc-like primitive
by its partial derivatives ``∂ans/∂xᵢ = d_i(ans, *xs)``; both rules follow from them:
JVP ``Σ tᵢ·dᵢ`` and VJP ``g·dᵢ``. ``scalar_fast`` gives an implementation that uses ``math``
on Python floats (a NumPy ufunc on a float costs ~20× more) with NumPy's semantics kept:
where ``math`` refuses (domain errors, overflow) NumPy answers instead.
"""
import operator

import numpy as np

from ..arrays import broadcast, expand_to, norm_axes, reduce_axes  # noqa: F401 (re-exported)
from ..arrays import partial_at
from ..core import Primitive, function_table, register

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

    def rule(t, ans, *xs):
        try:
            return t * d(ans, *xs)
        except ArithmeticError:             # float 1/0 in the partial: NumPy's inf
            return t * partial_at(d, ans, xs)
    return rule


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


def check_no_out(out, name):
    if out is not None:
        raise TypeError(f"np.{name}(..., out=...) cannot write a tracked result into an "
                        "array; drop `out=` and use the returned value.")

