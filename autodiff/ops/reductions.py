"""Reductions: sum, prod, max, min as primitives; mean, var, std as compositions.

Axes are normalised to negative integers (``norm_axes``), so the same rule serves a tangent
or cotangent with a leading batch axis. A reverse rule re-inserts the reduced axes
(``expand_to``) and broadcasts back to the input's shape.
"""
import numpy as np

from ..core import lead, ndim_of, shape_of
from .define import broadcast, check_no_out, defprim, expand_to, handles, norm_axes


def _spread(g, ans, x, axis, keepdims):
    """Broadcast an output cotangent back over the reduced axes of ``x``."""
    return broadcast(expand_to(g, axis, keepdims), lead(g, ans) + shape_of(x))


sum_p = defprim(
    "sum", lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
    vjp=(lambda g, ans, x, axis, keepdims: _spread(g, ans, x, axis, keepdims),),
    linear=True, flops=1)


def _prod_others(ans, x, axis, keepdims):
    """∏_{j≠i} x_j along the axes: ans/x without zeros; with zeros, the product of the
    non-zeros where x_i is the only zero in its slice, else 0."""
    zero = x == 0
    ansk = expand_to(ans, axis, keepdims)
    if not np.any(zero):
        return ansk / x
    x1 = np.where(zero, 1.0, x)
    nzeros = np.sum(zero, axis=axis, keepdims=True)
    p = prod_p(x1, axis=axis, keepdims=True)
    return np.where(zero, np.where(nzeros == 1, p, 0.0), ansk / x1)


prod_p = defprim(
    "prod", lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims),
    jvp=(lambda t, ans, x, axis, keepdims:
         sum_p(t * _prod_others(ans, x, axis, keepdims), axis=axis, keepdims=keepdims),),
    vjp=(lambda g, ans, x, axis, keepdims:
         _spread(g, ans, x, axis, keepdims) * _prod_others(ans, x, axis, keepdims),), flops=1)


def _share(ans, x, axis, keepdims):
    """Where x attains the extremum, each tie taking an equal share of the derivative."""
    hit = (x == expand_to(ans, axis, keepdims)) * 1.0
    return hit / np.sum(hit, axis=axis, keepdims=True)


def _extremum(name, fn):
    return defprim(
        name, lambda x, axis, keepdims: fn(x, axis=axis, keepdims=keepdims),
        jvp=(lambda t, ans, x, axis, keepdims:
             sum_p(t * _share(ans, x, axis, keepdims), axis=axis, keepdims=keepdims),),
        vjp=(lambda g, ans, x, axis, keepdims:
             _spread(g, ans, x, axis, keepdims) * _share(ans, x, axis, keepdims),), flops=1)


max_p = _extremum("max", np.max)
min_p = _extremum("min", np.min)


# ----- NumPy entry points -----
def _reducer(prim, name):
    def handler(a, axis=None, dtype=None, out=None, keepdims=False, initial=None,
                where=None):
        check_no_out(out, name)
        if initial is not None or where is not None:
            raise NotImplementedError(f"np.{name}(..., initial=/where=) on a tracked value")
        return prim(a, axis=norm_axes(axis, ndim_of(a)), keepdims=bool(keepdims))
    return handler


handles(np.sum)(_reducer(sum_p, "sum"))
handles(np.prod)(_reducer(prod_p, "prod"))
handles(np.max, np.amax)(_reducer(max_p, "max"))
handles(np.min, np.amin)(_reducer(min_p, "min"))
handles((np.add, "reduce"))(lambda a, axis=0, **kw: _reducer(sum_p, "add.reduce")(a, axis, **kw))


def _count(a, axes):
    s = shape_of(a)
    return int(np.prod([s[i] for i in axes])) if axes else 1


@handles(np.mean)
def _mean(a, axis=None, dtype=None, out=None, keepdims=False, where=None):
    check_no_out(out, "mean")
    axes = norm_axes(axis, ndim_of(a))
    return sum_p(a, axis=axes, keepdims=bool(keepdims)) / _count(a, axes)


@handles(np.var)
def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=None, mean=None,
         correction=None):
    check_no_out(out, "var")
    if correction is not None:
        ddof = correction
    axes = norm_axes(axis, ndim_of(a))
    d = a - _mean(a, axes, keepdims=True)
    return sum_p(d * d, axis=axes, keepdims=bool(keepdims)) / (_count(a, axes) - ddof)


@handles(np.std)
def _std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=None, mean=None,
         correction=None):
    return np.sqrt(_var(a, axis, dtype, out, ddof, keepdims, correction=correction))
