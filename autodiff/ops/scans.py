"""Scans along an axis and their inverses, differences: cumsum, cumprod, diff, gradient, trapezoid.

A scan is a first-order linear recurrence ``y_i = a_i·y_{i-1} + b_i`` (``y_{-1} = 0``):
``cumsum`` has ``a = 1``; the derivative of ``cumprod`` (``y_i = x_i·y_{i-1}``) is
``dy_i = x_i·dy_{i-1} + dx_i·y_{i-1}``, the recurrence with ``a = x`` and ``b = dx·y_{i-1}``.
The recurrence is linear in ``b`` and its transpose runs the other way,
``z_j = g_j + a_{j+1}·z_{j+1}``: reverse-mode rules are reversed scans. Written so, every rule is
a polynomial in the inputs, right at zeros (no ``ans/x``) and to every order.
Differences (``diff``, ``ediff1d``, ``gradient``) and ``trapezoid`` are slices and arithmetic.
"""
import math

import numpy as np

from ..core import box_types, ndim_of, shape_of
from .assembly import _arr
from . import dependency
from .define import check_no_out, defprim, handles, norm_axes


# ----- Helpers the rules share -----
def _edge(x, axis, fill):
    """``fill`` shaped like ``x`` but one long along ``axis``."""
    s = list(shape_of(x))
    s[axis] = 1
    return np.full(s, fill, dtype=np.result_type(x))


def _shift(x, axis, fill, step):
    """``x`` moved one place along ``axis`` (negative): ``out_i = x_{i-step}``, the vacated
    end filled with ``fill``. Slices and a concatenate, so it carries tracked values and a
    leading batch axis alike."""
    if shape_of(x)[axis] == 0:
        return x
    tail = (slice(None),) * (-axis - 1)
    pad = _edge(x, axis, fill)
    if step > 0:
        return np.concatenate([pad, x[(Ellipsis, slice(None, -1)) + tail]], axis=axis)
    return np.concatenate([x[(Ellipsis, slice(1, None)) + tail], pad], axis=axis)


# ----- Primitives -----
def _cumsum(x, axis, reverse):
    if reverse:
        return np.flip(np.cumsum(np.flip(x, axis), axis), axis)
    return np.cumsum(x, axis)


# ``cumsum(x, axis, reverse)``: running sums from the start (or from the end when
# ``reverse``); its transpose is the running sum the other way.
cumsum_p = defprim(
    "cumsum", _cumsum,
    vjp=(lambda g, ans, x, axis, reverse: cumsum_p(g, axis=axis, reverse=not reverse),),
    linear=True, flops=1)


def _linear_recurrence(a, b, axis, reverse):
    a, b = np.broadcast_arrays(a, b)
    dtype = np.result_type(a, b)
    if reverse:
        a, b = np.flip(a, axis), np.flip(b, axis)
    a = np.moveaxis(a, axis, 0)
    y = np.array(np.moveaxis(b, axis, 0), dtype=dtype, order="C")
    n = y.shape[0]
    m = y.size // n if n else 0
    # Cost model, in element-operations, with ~1000 for the overhead of one NumPy call: a
    # sequential loop costs 2n·(1000 + m); Hillis–Steele's log-depth scan 3·log2(n)·(1000 + nm).
    if n > 1 and 3 * math.log2(n) * (1000 + n * m) < 2 * n * (1000 + m):
        a = np.array(a, dtype=dtype, order="C")       # a copy: the scan writes into it
        d = 1
        while d < n:
            # (a, y)_i ∘ (a, y)_{i-d}: y_i += a_i·y_{i-d}, a_i *= a_{i-d}. NumPy buffers the
            # overlapping operands, so the right-hand sides read the values before the step.
            y[d:] += a[d:] * y[:-d]
            a[d:] *= a[:-d]
            d *= 2
    else:
        for i in range(1, n):
            y[i] += a[i] * y[i - 1]
    y = np.moveaxis(y, 0, axis)
    return np.flip(y, axis) if reverse else y


def _recurrence_vjp(g, ans, a, b, axis, reverse):
    step = -1 if reverse else 1
    z = linear_recurrence_p(_shift(a, axis, 0.0, -step), g, axis=axis, reverse=not reverse)
    return [z * _shift(ans, axis, 0.0, step), z]


# ``linear_recurrence(a, b, axis, reverse)``: ``y_i = a_i·y_{i-1} + b_i`` along ``axis`` from
# ``y_{-1} = 0`` (``y_i = a_i·y_{i+1} + b_i`` from the end when ``reverse``); ``a`` at the first
# step is unused. The derivative of ``cumprod`` and of itself; a primitive because no
# composition solves it without dividing by ``a`` (wrong at zeros) or O(n²) work.
linear_recurrence_p = defprim(
    "linear_recurrence", _linear_recurrence,
    jvp=(lambda t, ans, a, b, axis, reverse: linear_recurrence_p(
             a, t * _shift(ans, axis, 0.0, -1 if reverse else 1), axis=axis, reverse=reverse),
         lambda t, ans, a, b, axis, reverse: linear_recurrence_p(
             a, t, axis=axis, reverse=reverse)),
    vjp=_recurrence_vjp, broadcasts=True, flops=2)


def _exclusive(ans, axis):
    """The running product before each position: ``y_{i-1}``, 1 at the start."""
    return _shift(ans, axis, 1.0, 1)


# ``cumprod(x, axis)``: NumPy's running product (fast, one pass); its rules are the
# recurrence above, so zeros in ``x`` need no special case.
cumprod_p = defprim(
    "cumprod", lambda x, axis: np.cumprod(x, axis=axis),
    jvp=(lambda t, ans, x, axis: linear_recurrence_p(
        x, t * _exclusive(ans, axis), axis=axis, reverse=False),),
    vjp=(lambda g, ans, x, axis: linear_recurrence_p(
        _shift(x, axis, 0.0, -1), g, axis=axis, reverse=True) * _exclusive(ans, axis),),
    flops=1)


# ----- NumPy entry points: scans -----
def _cast(a, dtype):
    if dtype is None:
        return a
    return a.astype(dtype) if type(a) in box_types else np.asarray(a, dtype=dtype)


def _scan_axis(a, axis):
    """``(a, axis)`` with ``axis`` one negative int; ``axis=None`` scans the flattened array."""
    if axis is None:
        return np.ravel(a), -1
    if isinstance(axis, tuple):
        raise TypeError("a scan takes a single integer axis, not a tuple")
    if ndim_of(a) == 0 and int(axis) in (0, -1):      # NumPy scans a 0-d array as 1-d
        return np.ravel(a), -1
    return a, norm_axes(axis, ndim_of(a))[0]


@handles(np.cumsum)
def _cumsum_fn(a, axis=None, dtype=None, out=None):
    check_no_out(out, "cumsum")
    a, axis = _scan_axis(_cast(a, dtype), axis)
    return cumsum_p(a, axis=axis, reverse=False)


@handles(np.cumprod)
def _cumprod_fn(a, axis=None, dtype=None, out=None):
    check_no_out(out, "cumprod")
    a, axis = _scan_axis(_cast(a, dtype), axis)
    return cumprod_p(a, axis=axis)


def _no_scalar(array):
    if ndim_of(array) == 0:
        raise TypeError("cannot accumulate on a scalar")


@handles((np.add, "accumulate"))
def _add_accumulate(array, axis=0, dtype=None, out=None):
    _no_scalar(array)
    return _cumsum_fn(array, axis, dtype, out)


@handles((np.multiply, "accumulate"))
def _multiply_accumulate(array, axis=0, dtype=None, out=None):
    _no_scalar(array)
    return _cumprod_fn(array, axis, dtype, out)


def _cumulative(fn, initial, name):
    """The array API's ``cumulative_sum``/``cumulative_prod``: ``axis`` required past 1-D,
    and ``include_initial`` starts the scan with the identity."""
    def handler(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
        check_no_out(out, name)
        if axis is None:
            if ndim_of(x) != 1:
                raise ValueError("For arrays which have more than one dimension ``axis`` "
                                 "argument is required.")
            axis = -1
        y = fn(x, axis, dtype)
        return np.concatenate([_edge(y, axis, initial), y], axis=axis) if include_initial else y
    return handler


handles(np.cumulative_sum)(_cumulative(_cumsum_fn, 0.0, "cumulative_sum"))
handles(np.cumulative_prod)(_cumulative(_cumprod_fn, 1.0, "cumulative_prod"))


@handles(np.nancumsum)
def _nancumsum(a, axis=None, dtype=None, out=None):
    return _cumsum_fn(_nan_to(a, 0.0), axis, dtype, out)


@handles(np.nancumprod)
def _nancumprod(a, axis=None, dtype=None, out=None):
    return _cumprod_fn(_nan_to(a, 1.0), axis, dtype, out)


def _nan_to(a, fill):
    """``a`` with NaNs replaced by ``fill`` (they get a zero derivative)."""
    nan = np.isnan(a)
    return np.where(nan, fill, a) if np.any(nan) else a


# ----- NumPy entry points: differences -----
def _along(axis, nd, s):
    """An index applying slice ``s`` along ``axis`` of an ``nd``-dimensional array."""
    return (slice(None),) * (axis % nd) + (s,)


@handles(np.diff)
def _diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    if n < 0:
        raise ValueError("order must be non-negative but got " + repr(n))
    if n == 0:
        return a
    nd = ndim_of(a)
    if nd == 0:
        raise ValueError("diff requires input that is at least one dimensional")
    axis = norm_axes(axis, nd)[0]
    parts = []
    for end in (prepend, a, append):
        if end is np._NoValue:
            continue
        if ndim_of(end) == 0:
            s = list(shape_of(a))
            s[axis] = 1
            end = np.broadcast_to(end, tuple(s))
        parts.append(end)
    if len(parts) > 1:
        a = np.concatenate(parts, axis=axis)
    hi, lo = _along(axis, nd, slice(1, None)), _along(axis, nd, slice(None, -1))
    for _ in range(n):
        a = a[hi] - a[lo]
    return a


@handles(np.ediff1d)
def _ediff1d(ary, to_end=None, to_begin=None):
    ary = np.ravel(ary)
    out = ary[1:] - ary[:-1]
    if to_begin is None and to_end is None:
        return out
    parts = [] if to_begin is None else [np.ravel(to_begin)]
    parts.append(out)
    if to_end is not None:
        parts.append(np.ravel(to_end))
    return np.concatenate([p if type(p) in box_types else np.asarray(p, dtype=out.dtype)
                           for p in parts])


@handles(np.trapezoid)
def _trapezoid(y, x=None, dx=1.0, axis=-1):
    y, x = _arr(y), (None if x is None else _arr(x))
    nd = ndim_of(y)
    if x is None:
        d = dx
    elif ndim_of(x) == 1:
        d = np.diff(x)
        s = [1] * nd
        s[axis] = shape_of(d)[0]
        d = np.reshape(d, tuple(s))
    else:
        d = np.diff(x, axis=axis)
    hi, lo = _along(axis, nd, slice(1, None)), _along(axis, nd, slice(None, -1))
    return np.sum(d * (y[hi] + y[lo]) / 2.0, axis=axis)


@handles(np.gradient)
def _gradient(f, *varargs, axis=None, edge_order=1):
    f, varargs = _arr(f), tuple(_arr(h) for h in varargs)
    nd = ndim_of(f)
    axes = tuple(a % nd for a in norm_axes(axis, nd)) if axis is not None else tuple(range(nd))
    if not varargs:
        spacing = [1.0] * len(axes)
    elif len(varargs) == 1 and ndim_of(varargs[0]) == 0:
        spacing = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacing = [_spacing(h, shape_of(f)[ax]) for h, ax in zip(varargs, axes)]
    else:
        raise TypeError("invalid number of arguments")
    if edge_order not in (1, 2):
        raise ValueError("'edge_order' greater than 2 not supported")
    if np.result_type(f).kind not in "fc":
        f = np.asarray(f, dtype=np.float64)
    # NumPy writes each result into an array of f's dtype: float32 f stays float32 even with
    # float64 spacings. Plain spacings are taken in f's precision, so that the cotangents and
    # second derivatives stay float32 too; tracked ones are cast at the end.
    dt = np.result_type(f)
    rdt = np.finfo(dt).dtype
    spacing = [np.asarray(h).astype(rdt) if type(h) not in box_types and type(h) is not float
               and np.result_type(h).kind in "biuf" and np.result_type(h) != rdt else h
               for h in spacing]
    outs = [_gradient_axis(f, h, ax, nd, edge_order) for h, ax in zip(spacing, axes)]
    outs = [o if np.result_type(o) == dt else o.astype(dt) for o in outs]
    return outs[0] if len(outs) == 1 else tuple(outs)


def _spacing(h, n):
    """Spacing along one axis: a scalar, or the differences of 1-D coordinates ``h``. Plain
    uniform coordinates reduce to a scalar, as NumPy does; tracked ones never do, since a
    derivative with respect to each coordinate needs the general formula."""
    if ndim_of(h) == 0:
        return h
    if ndim_of(h) != 1:
        raise ValueError("distances must be either scalars or 1d")
    if shape_of(h)[0] != n:
        raise ValueError("when 1d, distances must match the length of the corresponding "
                         "dimension")
    if type(h) not in box_types:
        h = np.asarray(h)
        if h.dtype.kind not in "fc":
            h = h.astype(np.float64)
    d = np.diff(h)
    if type(d) not in box_types and np.all(d == d[0]):
        return d[0]
    return d


def _gradient_axis(f, h, axis, nd, edge_order):
    n = shape_of(f)[axis]
    if n < edge_order + 1:
        raise ValueError("Shape of array too small to calculate a numerical gradient, at "
                         "least (edge_order + 1) elements are required.")

    def at(s):
        return f[_along(axis, nd, s)]

    def along(c):                     # 1-D coefficients, broadcast along ``axis``
        s = [1] * nd
        s[axis] = -1
        return np.reshape(c, tuple(s))
    uniform = ndim_of(h) == 0
    # Interior: second-order central differences.
    if uniform:
        mid = (at(slice(2, None)) - at(slice(None, -2))) / (2.0 * h)
    else:
        h1, h2 = h[:-1], h[1:]
        a = along(-h2 / (h1 * (h1 + h2)))
        b = along((h2 - h1) / (h1 * h2))
        c = along(h1 / (h2 * (h1 + h2)))
        mid = a * at(slice(None, -2)) + b * at(slice(1, -1)) + c * at(slice(2, None))
    # Edges: one-sided differences of the requested order.
    if edge_order == 1:
        first = (at(slice(1, 2)) - at(slice(0, 1))) / (h if uniform else h[0])
        last = (at(slice(-1, None)) - at(slice(-2, -1))) / (h if uniform else h[-1])
    else:
        if uniform:
            a0, b0, c0 = -1.5 / h, 2.0 / h, -0.5 / h
            a1, b1, c1 = 0.5 / h, -2.0 / h, 1.5 / h
        else:
            h1, h2 = h[0], h[1]
            a0 = -(2.0 * h1 + h2) / (h1 * (h1 + h2))
            b0 = (h1 + h2) / (h1 * h2)
            c0 = -h1 / (h2 * (h1 + h2))
            h1, h2 = h[-2], h[-1]
            a1 = h2 / (h1 * (h1 + h2))
            b1 = -(h2 + h1) / (h1 * h2)
            c1 = (2.0 * h2 + h1) / (h2 * (h1 + h2))
        first = a0 * at(slice(0, 1)) + b0 * at(slice(1, 2)) + c0 * at(slice(2, 3))
        last = a1 * at(slice(-3, -2)) + b1 * at(slice(-2, -1)) + c1 * at(slice(-1, None))
    return np.concatenate([first, mid, last], axis=axis)


# Dependency structure (the sparsity mode): element i of a line, the elements up to i.
for _p in (cumsum_p, cumprod_p, linear_recurrence_p):
    _p.sparsity = dependency.scan
