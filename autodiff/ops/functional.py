"""NumPy functions that take functions: ``apply_along_axis``, ``apply_over_axes``,
``piecewise``. They call the user's function on tracked pieces and assemble the results
with differentiable primitives (stacking, assignment), exactly as NumPy's loops do. Also
``unwrap``, whose correction is piecewise constant.
"""
import numpy as np

from ..boxes import concrete, unbox
from ..core import ndim_of, shape_of
from .define import handles


@handles(np.apply_along_axis)
def _apply_along_axis(func1d, axis, arr, *args, **kwargs):
    nd = ndim_of(arr)
    axis = axis % nd
    moved = np.moveaxis(arr, axis, -1)
    outer = shape_of(moved)[:-1]
    results = [func1d(moved[idx], *args, **kwargs) for idx in np.ndindex(*outer)]
    out = np.stack(results).reshape(outer + shape_of(results[0]))
    # NumPy puts the function's output axes where ``axis`` was.
    k = ndim_of(results[0])
    return np.moveaxis(out, tuple(range(len(outer), len(outer) + k)),
                       tuple(range(axis, axis + k))) if k else out


@handles(np.apply_over_axes)
def _apply_over_axes(func, a, axes):
    for axis in np.atleast_1d(axes):
        res = func(a, int(axis))
        if ndim_of(res) == ndim_of(a) - 1:
            res = np.expand_dims(res, int(axis))
        elif ndim_of(res) != ndim_of(a):
            raise ValueError("function is not returning an array of the correct shape")
        a = res
    return a


@handles(np.piecewise)
def _piecewise(x, condlist, funclist, *args, **kw):
    conds = condlist if isinstance(condlist, list) else [condlist]
    conds = [np.asarray(concrete(c), dtype=bool) for c in conds]
    if len(funclist) == len(conds) + 1:            # the "otherwise" piece
        conds.append(~np.any(conds, axis=0))
    out = np.zeros_like(x)
    for c, f in zip(conds, funclist):
        if not np.any(c):
            continue
        out[c] = f(x[c], *args, **kw) if callable(f) else f
    return out


@handles(np.unwrap)
def _unwrap(p, discont=None, axis=-1, *, period=2 * np.pi):
    # Adds multiples of the period, constant between jumps: derivative 1 almost everywhere.
    v = unbox(p)
    return p + (np.unwrap(v, discont, axis, period=period) - v)
