"""``import autodiff.numpy as np``: NumPy, plus what NumPy's dispatch cannot reach.

Every NumPy name is here and behaves as NumPy's: calls on tracked values already reach the
engine through ``__array_ufunc__``/``__array_function__``. What differs: an array_like
argument given as a (nested) list holding tracked values is built into a tracked array with
``stack`` first, instead of being refused, which is what ``np.array([x, y])``,
``np.mean([x, x + 2])`` or ``np.linalg.norm([x, y])`` need (also in ``linalg`` and ``fft``).
Functions that take a sequence of arrays (``concatenate``, ``stack``, ``block``, …) get
their lists as they are: NumPy finds the tracked values inside those itself.
"""
from builtins import any as _any
import functools as _functools
import sys as _sys
import types as _types

import numpy as _np
from numpy import *  # noqa: F401,F403
from numpy import random  # noqa: F401

from .boxes import unbox as _unbox
from .core import box_types as _box_types
from .core import ufunc_table as _ufunc_table
from .ops.assembly import _build, _has_box
from .ops.assembly import array_of as _array_of

__all__ = [n for n in dir(_np) if not n.startswith("_")] + ["fft", "linalg", "random"]


def array(object, dtype=None, copy=True, **kw):
    """``np.array``; a (nested) list holding tracked values becomes a tracked array."""
    return _array_of(object, dtype=dtype, copy=copy, **kw)


def asarray(a, dtype=None, **kw):
    """``np.asarray``; a tracked value (or a list of them) stays tracked."""
    if _has_box(a):
        out = _build(a)
        return out if dtype is None or _np.dtype(dtype) == _np.result_type(_unbox(out)) \
            else out.astype(dtype)
    return _np.asarray(a, dtype=dtype, **kw)


def _fast_ufunc(ufunc, prim):
    """``ufunc`` that hands tracked values straight to the engine's elementwise hot path,
    skipping NumPy's override protocol (about 0.3 µs a call): what a scalar loop wants."""
    if ufunc.nin == 1:
        def f(x, *args, **kw):
            if type(x) in _box_types and not args and not kw:
                return x._elementwise(prim, (x,), x.level)
            if _listed(x):
                x = _build(x)
            return ufunc(x, *args, **kw)
    else:
        def f(x, y, *args, **kw):
            tx, ty = type(x) in _box_types, type(y) in _box_types
            if (tx or ty) and not args and not kw:
                top = x if tx and (not ty or x.level >= y.level) else y
                return top._elementwise(prim, (x, y), top.level)
            if _listed(x) or _listed(y):
                x, y = (_build(x) if _listed(x) else x), (_build(y) if _listed(y) else y)
            return ufunc(x, y, *args, **kw)
    f.__name__ = ufunc.__name__
    f.__doc__ = f"``numpy.{ufunc.__name__}``, handing tracked values straight to the engine."
    f.ufunc = ufunc
    return f


# NumPy's dispatchers look inside the sequences these take (their lists are of arrays).
_SEQUENCES = {_np.concatenate, _np.stack, _np.hstack, _np.vstack, _np.dstack,
              _np.column_stack, _np.block, _np.select, _np.piecewise, _np.choose, _np.lexsort,
              _np.einsum, _np.broadcast_arrays, _np.meshgrid, _np.histogramdd, _np.ix_,
              _np.atleast_1d, _np.atleast_2d, _np.atleast_3d, _np.savez,
              _np.savez_compressed, _np.linalg.multi_dot}


def _listed(a):
    return type(a) in (list, tuple) and _has_box(a)


def _stacking(func):
    """``func`` with its list arguments that hold tracked values stacked first."""
    def f(*args, **kw):
        if _any(_listed(a) for a in args) or kw and _any(_listed(v) for v in kw.values()):
            args = tuple(_build(a) if _listed(a) else a for a in args)
            kw = {k: _build(v) if _listed(v) else v for k, v in kw.items()}
        return func(*args, **kw)
    return _functools.update_wrapper(f, func)


def _wrap_namespace(mod, into):
    for name in dir(mod):
        f = getattr(mod, name)
        if not name.startswith("_") and type(f) is type(_np.mean) and f not in _SEQUENCES:
            into[name] = _stacking(f)


_wrap_namespace(_np, globals())


def _namespace(mod):
    """``mod`` (numpy.linalg, numpy.fft) with the same list handling."""
    ns = _types.ModuleType(f"{__name__}.{mod.__name__.split('.')[-1]}", mod.__doc__)
    ns.__dict__.update({k: v for k, v in vars(mod).items() if not k.startswith("__")})
    _wrap_namespace(mod, ns.__dict__)
    _sys.modules[ns.__name__] = ns
    return ns


linalg = _namespace(_np.linalg)
fft = _namespace(_np.fft)


for _uf, _prim in list(_ufunc_table.items()):
    if _prim.partials is not None and _uf.nin in (1, 2) and hasattr(_np, _uf.__name__):
        globals()[_uf.__name__] = _fast_ufunc(_uf, _prim)


def _dispatched(func, doc):
    """``func`` that reaches the engine when any argument is tracked, also those NumPy does
    not dispatch on (``np.pad``'s ``constant_values``, ``np.select``'s ``default``)."""
    from .core import function_table

    def f(*args, **kw):
        if _any(_has_box(a) for a in args) or _any(_has_box(v) for v in kw.values()):
            return function_table[func](*args, **kw)
        return func(*args, **kw)
    f.__name__ = func.__name__
    f.__doc__ = doc
    return f


pad = _dispatched(_np.pad, "``numpy.pad``; a tracked ``constant_values`` alone is tracked too.")
select = _dispatched(_np.select, "``numpy.select``; a tracked ``default`` alone is tracked too.")


def full(shape, fill_value, dtype=None, order="C", **kw):
    """``numpy.full``; a tracked ``fill_value`` gives a tracked array."""
    if _has_box(fill_value):
        from .ops.assign import _filled
        return _filled(fill_value, fill_value, shape, dtype)
    return _np.full(shape, fill_value, dtype=dtype, order=order, **kw)
