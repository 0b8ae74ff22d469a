"""Reductions: sum, prod, max, min as primitives; everything else composes them.

Axes are normalised to negative integers (``norm_axes``), so the same rule serves a tangent
or cotangent with a leading batch axis; the ufunc-style ones (sum, prod, max, min, their nan
forms, ptp) use ``reduce_axes``, which takes NumPy's axis 0 or -1 of a 0-d array. A reverse rule re-inserts the reduced axes
(``expand_to``) and broadcasts back to the input's shape.

The compositions: mean, var, std, average, ptp; the NaN-ignoring reductions (NaNs replaced by
the operation's identity, so they get a zero derivative); order statistics (median, quantile,
percentile: ``(1-γ)·x₍ₖ₎ + γ·x₍ₖ₊₁₎`` with ``k`` and ``γ`` from NumPy's method, the order taken
from ``argsort`` and the values picked by indexing, so the derivative flows to the one or two
order statistics interpolated); cov, corrcoef; and bincount's weights (a scatter-add).
"""
import numpy as np

from ..arrays import asarray
from ..boxes import data, meta, unbox
from ..core import box_types, is_complex, lead, ndim_of, shape_of
from . import dependency
from .define import (broadcast, check_no_out, defprim, expand_to, handles, norm_axes,
                     reduce_axes)
from .shape import index_add_p


def _spread(g, ans, x, axis, keepdims):
    """Broadcast an output cotangent back over the reduced axes of ``x``."""
    if type(g) is float:            # a scalar's cotangent, no batch axis: a filled array
        out = np.empty(shape_of(x))
        out.fill(g)
        return out
    return broadcast(expand_to(g, axis, keepdims), lead(g, ans) + shape_of(x))


def _sum(x, axis, keepdims):
    # (ndarray's method: NumPy's function adds its dispatch, a microsecond per call)
    if type(x) is np.ndarray:
        return x.sum(axis=axis, keepdims=keepdims)
    return np.sum(x, axis=axis, keepdims=keepdims)


sum_p = defprim(
    "sum", _sum,
    vjp=(lambda g, ans, x, axis, keepdims: _spread(g, ans, x, axis, keepdims),),
    linear=True, flops=1)


def _prod_others(ans, x, axis, keepdims):
    """∏_{j≠i} x_j along the axes: ans/x without zeros; with zeros, the product of the
    non-zeros where x_i is the only zero in its slice; where x_i is one of several zeros,
    the product itself (0, but its derivative in another zero x_k is not: the second
    derivative of x_i·x_k is 1)."""
    zero = x == 0
    ansk = expand_to(ans, axis, keepdims)
    if not np.any(zero):
        return ansk / x
    x1 = np.where(zero, 1.0, x)
    nzeros = np.sum(zero, axis=axis, keepdims=True)
    p = prod_p(x1, axis=axis, keepdims=True)
    several = _others_explicit(x, axis) if np.any(unbox(nzeros) > 1) else 0.0
    return np.where(zero, np.where(nzeros == 1, p, several), ansk / x1)


def _others_explicit(x, axis):
    """∏_{j≠i} x_j for every i of the reduced axes, as products of n copies of the slice
    with x_i set to 1 (n² work: only where a slice holds several zeros)."""
    nd = ndim_of(x)
    red = [a + nd for a in axis]
    rest = [i for i in range(nd) if i not in red]
    xt = np.transpose(x, rest + red)
    shape = shape_of(xt)
    n = _count(x, axis)
    xr = np.reshape(xt, shape[:len(rest)] + (n,))
    rows = np.where(np.eye(n, dtype=bool), 1.0, np.expand_dims(xr, -2))
    out = np.reshape(prod_p(rows, axis=(-1,), keepdims=False), shape)
    return np.transpose(out, list(np.argsort(rest + red)))


prod_p = defprim(
    "prod", lambda x, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims),
    jvp=(lambda t, ans, x, axis, keepdims:
         sum_p(t * _prod_others(ans, x, axis, keepdims), axis=axis, keepdims=keepdims),),
    vjp=(lambda g, ans, x, axis, keepdims:
         _spread(g, ans, x, axis, keepdims) * _prod_others(ans, x, axis, keepdims),), flops=1)


def _share(ans, x, axis, keepdims):
    """Where x attains the extremum, each tie taking an equal share of the derivative."""
    hit = x == expand_to(ans, axis, keepdims)
    # (a mask recorded by ad.jit is a tracked value: cast by astype, which records)
    hit = hit.astype(_real_dtype(x)) if type(hit) in box_types else \
        asarray(hit, dtype=_real_dtype(x))
    return hit / np.sum(hit, axis=axis, keepdims=True)


def _real_dtype(x):
    """The real float dtype of ``x``'s values (float64 for integers): the dtype a share or
    weight multiplying ``x``'s tangent keeps, so float32 stays float32."""
    v = meta(x)
    dt = np.dtype(np.float64 if isinstance(v, (int, float)) else np.result_type(v))
    return np.finfo(dt).dtype if dt.kind in "fc" else np.dtype(np.float64)


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
# The identity each reduction fills masked-out elements with (``where=``), and how it
# folds in ``initial``: ``initial`` is one more element of every slice.
_IDENTITY = {"sum": 0.0, "prod": 1.0, "max": -np.inf, "min": np.inf}


def _fold(name, r, initial):
    if name == "sum":
        return r + initial
    if name == "prod":
        return r * initial
    from .elementwise import maximum_p, minimum_p
    return (maximum_p if name == "max" else minimum_p)(r, initial)


def _reducer(prim, name):
    def handler(a, axis=None, dtype=None, out=None, keepdims=False, initial=None,
                where=None):
        if axis is None and dtype is None and out is None and keepdims is False and \
                initial is None and where is None:         # np.sum(x): the common call
            return prim(a, axis=tuple(range(-ndim_of(a), 0)), keepdims=False)
        check_no_out(out, name)
        a = _in_dtype(a, dtype)
        where, initial = _given(where, None), _given(initial, None)
        if type(initial) in box_types or type(where) in box_types:
            raise NotImplementedError(f"np.{name}(..., initial=/where=) with a tracked "
                                      "initial or where")
        axes, keepdims = reduce_axes(axis, ndim_of(a)), bool(keepdims)
        if where is None and initial is None:
            return prim(a, axis=axes, keepdims=keepdims)
        base = prim.name
        if where is not None and where is not True:
            if initial is None and base in ("max", "min"):
                raise ValueError(f"reduction operation {name!r} does not have an identity, "
                                 "so to use a where mask one has to specify 'initial'")
            a = np.where(np.broadcast_to(np.asarray(where), shape_of(a)), a, _IDENTITY[base])
        if _count(a, axes) == 0 and initial is not None:    # empty slices: initial alone
            # A zero-derivative value of the right shape: the sum of the empty slices.
            return sum_p(a, axis=axes, keepdims=keepdims) + initial
        r = prim(a, axis=axes, keepdims=keepdims)
        return r if initial is None else _fold(base, r, initial)
    return handler


handles(np.sum)(_reducer(sum_p, "sum"))
handles(np.prod)(_reducer(prod_p, "prod"))
handles(np.max, np.amax)(_reducer(max_p, "max"))
handles(np.min, np.amin)(_reducer(min_p, "min"))
for _ufunc, _prim in ((np.add, sum_p), (np.multiply, prod_p), (np.maximum, max_p),
                      (np.minimum, min_p)):
    handles((_ufunc, "reduce"))(
        lambda a, axis=0, _r=_reducer(_prim, f"{_ufunc.__name__}.reduce"), **kw: _r(a, axis, **kw))


def _nonzero(n, a):
    """The divisor ``n``; a zero one in ``a``'s dtype, so the quotient is NumPy's NaN or inf
    (with its warning) instead of Python's ZeroDivisionError."""
    return n if n != 0 else _real_dtype(a).type(0)


def _count(a, axes):
    s = shape_of(a)
    return int(np.prod([s[i] for i in axes])) if axes else 1


@handles(np.mean)
def _mean(a, axis=None, dtype=None, out=None, keepdims=False, where=None):
    check_no_out(out, "mean")
    _no_where(where, "mean")
    a = _in_dtype(a, dtype)
    axes = norm_axes(axis, ndim_of(a))
    return sum_p(a, axis=axes, keepdims=bool(keepdims)) / _nonzero(_count(a, axes), a)


def _abs2(d):
    """|d|²: d·d, or Re(d·conj d) for complex d (the variance of complex data is real)."""
    return np.real(d * np.conj(d)) if is_complex(d) else d * d


def _no_where(where, name):
    if _given(where, None) is not None:
        raise NotImplementedError(f"np.{name}(..., where=) on a tracked value; select the "
                                  "elements first (x[mask]) or use np.where inside the sum")


def root0(s, p=2):
    """``s ** (1/p)`` of a sum ``s = Σ|d|^p`` (p > 1), with the derivative 0 where ``s = 0``.

    There ``s`` is at its minimum (``ds = 0``) and ``root'(0) = inf``: inf·0 would be NaN.
    The root is ``‖d‖_p``, a norm, like ``|x|`` at 0: the derivative exists (and is 0)
    exactly when ``d`` stays 0 to first order (``std([x, x])``, a constant input), else
    it is a kink whose symmetric derivative is 0: ``abs'(0) = 0`` (JAX), PyTorch's
    ``std``/``norm`` at 0. The root of ``where(s = 0, 1, s)`` times the 0/1 mask keeps
    inf out of every derivative."""
    v = data(s)
    zero = v == 0
    if not np.any(zero):
        return np.sqrt(s) if p == 2 else s ** (1.0 / p)
    safe = np.where(zero, 1.0, s)
    mask = (~zero).astype(np.result_type(v))
    return (np.sqrt(safe) if p == 2 else safe ** (1.0 / p)) * mask


@handles(np.var)
def _var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=None, mean=None,
         correction=None):
    """mean(|a - mean(a)|²) · n/(n - ddof)."""
    check_no_out(out, "var")
    _no_where(where, "var")
    a = _in_dtype(a, dtype)
    if correction is not None:
        ddof = correction
    axes = norm_axes(axis, ndim_of(a))
    d = a - _mean(a, axes, keepdims=True)
    return sum_p(_abs2(d), axis=axes, keepdims=bool(keepdims)) / \
        _nonzero(_count(a, axes) - ddof, a)


@handles(np.std)
def _std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, where=None, mean=None,
         correction=None):
    """sqrt(var). Over a single element the variance is identically 0 (value and every
    derivative), so it is the standard deviation too: no sqrt'(0) = inf times 0 = NaN."""
    v = _var(a, axis, dtype, out, ddof, keepdims, where=where, correction=correction)
    if correction is not None:
        ddof = correction
    if _count(a, norm_axes(axis, ndim_of(a))) == 1 and ddof < 1:
        return v
    return root0(v)


@handles(np.average)
def _average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    keepdims = _given(keepdims, False)
    nd = ndim_of(a)
    axes = norm_axes(axis, nd)
    if weights is None:
        avg = _mean(a, axes, keepdims=keepdims)
        scl = np.result_type(avg).type(_count(a, axes))
    else:
        w = weights
        if shape_of(w) != shape_of(a):
            if axis is None:
                raise TypeError("Axis must be specified when shapes of a and weights differ.")
            given = tuple(int(i) % nd for i in (axis if isinstance(axis, tuple) else (axis,)))
            if shape_of(w) != tuple(shape_of(a)[i] for i in given):
                raise ValueError("Shape of weights must be consistent with shape of a along "
                                 "specified axis.")
            if len(given) > 1:                       # w's axes in the order of a's
                w = np.transpose(w, tuple(int(i) for i in np.argsort(given)))
            w = np.reshape(w, tuple(d if i - nd in axes else 1
                                    for i, d in enumerate(shape_of(a))))
        scl = sum_p(np.broadcast_to(w, shape_of(a)), axis=axes, keepdims=keepdims)
        if np.any(unbox(scl) == 0.0):
            raise ZeroDivisionError("Weights sum to zero, can't be normalized")
        avg = sum_p(a * w, axis=axes, keepdims=keepdims) / scl
    if not returned:
        return avg
    if shape_of(scl) != shape_of(avg):
        scl = np.broadcast_to(scl, shape_of(avg))
    return avg, scl


@handles(np.ptp)
def _ptp(a, axis=None, out=None, keepdims=False):
    check_no_out(out, "ptp")
    axes, keepdims = reduce_axes(axis, ndim_of(a)), bool(_given(keepdims, False))
    return max_p(a, axis=axes, keepdims=keepdims) - min_p(a, axis=axes, keepdims=keepdims)


# ----- Ignoring NaNs -----
def _given(v, default):
    """NumPy's "argument not passed" marker (``np._NoValue``) as ``default``."""
    return default if v is np._NoValue else v


def _in_dtype(a, dtype):
    """``a`` in the ``dtype=`` a reduction was given: NumPy reduces in that dtype (a float32
    mean of float64 values is float32), so the result has it too."""
    dtype = _given(dtype, None)
    if dtype is None:
        return a
    return a.astype(dtype) if hasattr(a, "astype") else np.asarray(a, dtype=dtype)


def _no_nan(a, fill):
    """``a`` with NaNs replaced by ``fill`` (where they get a zero derivative), and the mask."""
    nan = np.isnan(a)
    return (np.where(nan, fill, a) if np.any(nan) else a), nan


def _nan_reducer(prim, fill, name):
    def handler(a, axis=None, dtype=None, out=None, keepdims=False, initial=np._NoValue,
                where=np._NoValue):
        check_no_out(out, name)
        if _given(initial, None) is not None or _given(where, None) is not None:
            raise NotImplementedError(f"np.{name}(..., initial=/where=) on a tracked value")
        a = _in_dtype(a, dtype)
        return prim(_no_nan(a, fill)[0], axis=reduce_axes(axis, ndim_of(a)),
                    keepdims=bool(_given(keepdims, False)))
    return handler


handles(np.nansum)(_nan_reducer(sum_p, 0.0, "nansum"))
handles(np.nanprod)(_nan_reducer(prod_p, 1.0, "nanprod"))


def _nan_extremum(prim, fill, name):
    def handler(a, axis=None, out=None, keepdims=False, initial=np._NoValue, where=np._NoValue):
        check_no_out(out, name)
        if _given(initial, None) is not None or _given(where, None) is not None:
            raise NotImplementedError(f"np.{name}(..., initial=/where=) on a tracked value")
        axes, keepdims = reduce_axes(axis, ndim_of(a)), bool(_given(keepdims, False))
        x, nan = _no_nan(a, fill)
        r = prim(x, axis=axes, keepdims=keepdims)
        empty = np.all(nan, axis=axes, keepdims=keepdims)
        return np.where(empty, np.nan, r) if np.any(empty) else r   # NumPy: NaN, all-NaN slice
    return handler


handles(np.nanmax)(_nan_extremum(max_p, -np.inf, "nanmax"))
handles(np.nanmin)(_nan_extremum(min_p, np.inf, "nanmin"))


def _like(n, x):
    """The plain count ``n`` in the real dtype of ``x``, so float32 stays float32."""
    if type(n) in box_types:        # a count the sparsity mode marks as varying with x
        return n.astype(_real_dtype(x))
    return np.asarray(n).astype(_real_dtype(x))


def _nan_count(nan, axes, keepdims, x):
    return _like(np.sum(~nan, axis=axes, keepdims=keepdims), x)


@handles(np.nanmean)
def _nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=np._NoValue):
    check_no_out(out, "nanmean")
    _no_where(where, "nanmean")
    a = _in_dtype(a, dtype)
    axes, keepdims = reduce_axes(axis, ndim_of(a)), bool(_given(keepdims, False))
    x, nan = _no_nan(a, 0.0)
    return sum_p(x, axis=axes, keepdims=keepdims) / _nan_count(nan, axes, keepdims, x)


def _nanvar_parts(a, axis, ddof, keepdims, name, where):
    """Σ|d|² over the non-NaN entries (d = x - their mean), the degrees of freedom (plain,
    NaN-free count - ddof) and the non-NaN count, each over ``axis``."""
    _no_where(where, name)
    axes, keepdims = reduce_axes(axis, ndim_of(a)), bool(_given(keepdims, False))
    x, nan = _no_nan(a, 0.0)
    n = _nan_count(nan, axes, True, x)
    d = x - sum_p(x, axis=axes, keepdims=True) / n
    if np.any(nan):
        d = np.where(nan, 0.0, d)
    count = np.sum(~nan, axis=axes, keepdims=keepdims)
    return sum_p(_abs2(d), axis=axes, keepdims=keepdims), count - ddof, count


def _nan_divide(ss, dof):
    """ss/dof, NaN where dof <= 0 as in NumPy, in the dtype of ss."""
    if not np.any(dof <= 0):
        return ss / _like(dof, ss)
    v = ss / _like(np.where(dof <= 0, 1, dof), ss)
    return np.where(dof <= 0, np.nan, v)


@handles(np.nanvar)
def _nanvar(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=np._NoValue,
            mean=np._NoValue, correction=np._NoValue):
    check_no_out(out, "nanvar")
    a = _in_dtype(a, dtype)
    ddof = _given(correction, ddof)
    ss, dof, _ = _nanvar_parts(a, axis, ddof, keepdims, "nanvar", where)
    return _nan_divide(ss, dof)


@handles(np.nanstd)
def _nanstd(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=np._NoValue,
            mean=np._NoValue, correction=np._NoValue):
    """sqrt(nanvar); identically 0 (derivative 0, not NaN) where one value is not NaN."""
    check_no_out(out, "nanstd")
    a = _in_dtype(a, dtype)
    ddof = _given(correction, ddof)
    ss, dof, count = _nanvar_parts(a, axis, ddof, keepdims, "nanstd", where)
    v = _nan_divide(ss, dof)
    one = (count == 1) & (dof > 0)
    if not np.any(one):
        return root0(v)
    return np.where(one, v, root0(np.where(one, 1.0, v)))


# ----- Order statistics: median, quantile, percentile -----
def _discrete(index, lower):
    """An integer index from a virtual one: the floor where ``lower(γ, index)``, else the
    ceiling (NumPy's ``_discrete_interpolation_to_boundaries``)."""
    k = np.floor(index)
    return np.where(lower(index - k, index), k, k + 1)


def _hf(alpha, beta):
    """Hyndman & Fan's continuous methods: ``n·q + α + q·(1-α-β) - 1``."""
    return lambda n, q: n * q + (alpha + q * (1 - alpha - beta)) - 1


# method -> (virtual index (n, q), γ correction (γ, index) or None for a discrete index).
_METHODS = {
    "inverted_cdf": (lambda n, q: _discrete(n * q - 1, lambda g, i: g == 0), None),
    "averaged_inverted_cdf": (lambda n, q: n * q - 1,
                              lambda g, i: np.where(g == 0, 0.5, 1.0)),
    "closest_observation": (
        lambda n, q: _discrete(n * q - 1.5, lambda g, i: (g == 0) & (np.floor(i) % 2 == 1)),
        None),
    "interpolated_inverted_cdf": (_hf(0, 1), lambda g, i: g),
    "hazen": (_hf(0.5, 0.5), lambda g, i: g),
    "weibull": (_hf(0, 0), lambda g, i: g),
    "linear": (lambda n, q: (n - 1) * q, lambda g, i: g),
    "median_unbiased": (_hf(1 / 3.0, 1 / 3.0), lambda g, i: g),
    "normal_unbiased": (_hf(3 / 8.0, 3 / 8.0), lambda g, i: g),
    "lower": (lambda n, q: np.floor((n - 1) * q), None),
    "higher": (lambda n, q: np.ceil((n - 1) * q), None),
    "midpoint": (lambda n, q: 0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q)),
                 lambda g, i: np.where(i % 1 == 0, 0.0, 0.5)),
    "nearest": (lambda n, q: np.around((n - 1) * q), None),
}


def _positions(n, q, method):
    """Sorted positions ``lo``, ``hi`` (ints) and weight ``γ`` of ``q`` in ``n`` values (NumPy's
    ``_quantile``: below the first or past the last position, both are that position)."""
    try:
        virtual, fix = _METHODS[method]
    except KeyError:
        raise ValueError(f"{method!r} is not a valid method. Use one of: "
                         f"{tuple(_METHODS)}") from None
    with np.errstate(invalid="ignore"):
        i = virtual(n, q)
        last = np.maximum(n - 1, 0)
        if fix is None:
            lo = np.clip(i, 0, last)
            return lo.astype(np.intp), lo.astype(np.intp), np.zeros(np.shape(lo))
        lo = np.floor(i)
        g = fix(i - lo, i)
        hi = np.where(i >= last, last, np.where(i < 0, 0, lo + 1))
        lo = np.where(i >= last, last, np.where(i < 0, 0, lo))
    return lo.astype(np.intp), hi.astype(np.intp), np.asarray(g, dtype=np.float64)


class _Sorted:
    """The rows of ``x`` (M, N) in sorted order, for picking order statistics. The order and
    the runs of equal values come from the plain values; only indexing and sums see ``x``."""

    def __init__(self, x):
        self.x = x
        v = np.asarray(unbox(x))
        m, n = v.shape
        self.rows = np.arange(m)[:, None]
        self.order = np.argsort(v, axis=-1, kind="stable")          # NaNs sort last
        self.sv = sv = np.take_along_axis(v, self.order, axis=-1)
        # Runs of equal values in sorted order: each position's first and last index.
        k = np.broadcast_to(np.arange(n), (m, n))
        step = sv[:, 1:] != sv[:, :-1]
        start = np.concatenate([np.ones((m, 1), bool), step], axis=1)
        end = np.concatenate([step, np.ones((m, 1), bool)], axis=1)
        self.first = np.maximum.accumulate(np.where(start, k, 0), axis=1)
        self.last = np.minimum.accumulate(np.where(end, k, n)[:, ::-1], axis=1)[:, ::-1]
        self.tied = self.first != self.last
        self._excess = None

    def __getitem__(self, pos):
        """The order statistics at sorted positions ``pos`` (M, Q); a tied value gives each
        of its equal elements an equal share of the derivative."""
        rows, x = self.rows, self.x
        if not np.any(self.tied[rows, pos]):
            return x[rows, self.order[rows, pos]]
        p, r = self.first[rows, pos], self.last[rows, pos]
        if self._excess is None:
            # Σ over a run of (x_j - x_first): exactly 0 in value (the run's values are
            # equal), the run's tangents summed (less the first one's) in derivative.
            with np.errstate(invalid="ignore"):                 # inf - inf, masked next
                d = x[rows, self.order] - x[rows, self.order[rows, self.first]]
            d = np.where(np.isfinite(self.sv), d, 0.0)
            c = np.cumsum(d, axis=-1)
            dt = _real_dtype(x)
            self._excess = np.concatenate([np.zeros(shape_of(c)[:1] + (1,), dt), c], axis=-1)
        e = self._excess
        return x[rows, self.order[rows, p]] + (e[rows, r + 1] - e[rows, p]) / \
            (r - p + 1).astype(_real_dtype(x))


def _order_statistics(x, q, method, nan, median, dtype):
    """The ``q``-quantiles (m, Q) of the rows of ``x`` (m, n), n > 0."""
    n = shape_of(x)[1]
    m = shape_of(x)[0]
    srt = _Sorted(x)
    nans = np.isnan(srt.sv)
    count = (n - np.sum(nans, axis=-1))[:, None] if nan else n
    lo, hi, g = _positions(count, q.reshape(1, -1), method)
    g = g.astype(dtype)
    lo, hi = np.broadcast_to(lo, (m, q.size)), np.broadcast_to(hi, (m, q.size))
    x_lo = srt[lo]
    if np.all(g == 0):
        r = x_lo
    else:
        x_hi = srt[hi]
        if median:
            r = np.where(g == 0, x_lo, (x_lo + x_hi) / 2.0)
        else:                                              # NumPy's _lerp, for equal values
            d = x_hi - x_lo
            up = g >= 0.5
            r = x_lo + d * g if not np.any(up) else x_hi - d * (1 - g) if np.all(up) else \
                np.where(up, x_hi - d * (1 - g), x_lo + d * g)
    bad = (count == 0) if nan else np.any(nans, axis=-1, keepdims=True)
    if np.any(bad):
        r = np.where(bad, np.nan, r)
    return r


def _quantile(a, q, axis, method, keepdims, nan, median=False, dtype=None):
    """``q``-quantiles of ``a`` over ``axis``; ``nan``: ignore NaNs (else a slice with a NaN
    gives NaN); ``median``: the mean of the two middle values, as ``np.median`` computes it.
    ``dtype``: of the interpolation weights, NumPy's result dtype (``a``'s by default)."""
    if type(q) in box_types:
        raise NotImplementedError("a quantile's derivative with respect to q")
    dtype = _real_dtype(a) if dtype is None else dtype
    q = np.asarray(q, dtype=np.float64)
    if np.any((q < 0) | (q > 1)):
        raise ValueError("Quantiles must be in the range [0, 1]")
    nd = ndim_of(a)
    axes = norm_axes(axis, nd)
    s = shape_of(a)
    kept = [i for i in range(-nd, 0) if i not in axes]
    lead_shape = tuple(s[i] for i in kept)
    m, n = int(np.prod(lead_shape)), _count(a, axes)
    x = np.reshape(np.transpose(a, [i + nd for i in kept + list(axes)]), (m, n))
    if n == 0:
        if not (nan or median):            # NumPy's own error for an empty quantile
            raise IndexError("index -1 is out of bounds for axis 0 with size 0")
        # NaN, as NumPy's median and nan-quantiles give; no element to differentiate.
        r = np.broadcast_to(np.sum(x, axis=-1, keepdims=True) + np.nan, (m, q.size))
    else:
        r = _order_statistics(x, q, method, nan, median, dtype)
    r = np.reshape(r, lead_shape + q.shape)
    nq = q.ndim
    r = np.transpose(r, tuple(range(len(lead_shape), len(lead_shape) + nq))
                     + tuple(range(len(lead_shape))))
    if keepdims:
        r = np.reshape(r, q.shape + tuple(1 if i - nd in axes else d for i, d in enumerate(s)))
    return r


def _quantile_handler(name, scale, nan):
    def handler(a, q, axis=None, out=None, overwrite_input=False, method="linear",
                keepdims=False, *, weights=None, interpolation=None):
        check_no_out(out, name)
        if weights is not None:
            raise NotImplementedError(f"np.{name}(..., weights=) on a tracked value")
        if interpolation is not None:
            method = interpolation
        if type(q) in box_types:
            raise NotImplementedError(f"np.{name}: no derivative with respect to q")
        # NumPy's result dtype: a float32 input stays float32 for a Python-number q.
        dt = np.result_type(_real_dtype(a), q if isinstance(q, (int, float)) else np.asarray(q))
        return _quantile(a, np.true_divide(q, scale), axis, method,
                         bool(_given(keepdims, False)), nan, dtype=dt)
    return handler


handles(np.quantile)(_quantile_handler("quantile", 1.0, False))
handles(np.percentile)(_quantile_handler("percentile", 100.0, False))
handles(np.nanquantile)(_quantile_handler("nanquantile", 1.0, True))
handles(np.nanpercentile)(_quantile_handler("nanpercentile", 100.0, True))


@handles(np.median)
def _median(a, axis=None, out=None, overwrite_input=False, keepdims=False):
    check_no_out(out, "median")
    return _quantile(a, 0.5, axis, "linear", bool(keepdims), False, median=True)


@handles(np.nanmedian)
def _nanmedian(a, axis=None, out=None, overwrite_input=False, keepdims=np._NoValue):
    check_no_out(out, "nanmedian")
    return _quantile(a, 0.5, axis, "linear", bool(_given(keepdims, False)), True, median=True)


# ----- Covariance and correlation (NumPy's own algorithm) -----
def _rows(m, rowvar):
    if ndim_of(m) > 2:
        raise ValueError("m has more than 2 dimensions")
    x = np.reshape(m, (1, -1)) if ndim_of(m) < 2 else m
    return np.transpose(x) if not rowvar and ndim_of(m) == 2 else x


@handles(np.cov)
def _cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *,
         dtype=None):
    if ddof is not None and ddof != int(ddof):
        raise ValueError("ddof must be integer")
    x = _rows(m, rowvar)
    # NumPy computes a covariance in at least float64 from the start (its result is float64
    # for float32 data): the same order of roundings gives NumPy's numbers to the last bit.
    want = np.dtype(dtype) if dtype is not None else np.result_type(meta(x), np.float64)
    if np.result_type(meta(x)) != want:
        x = x.astype(want) if type(x) in box_types else np.asarray(x, dtype=want)
    if shape_of(x)[0] == 0:
        return np.array([]).reshape(0, 0)
    if y is not None:
        y2 = np.reshape(y, (1, -1)) if ndim_of(y) < 2 else y
        if not rowvar and shape_of(y2)[0] != 1:
            y2 = np.transpose(y2)
        x = np.concatenate((x, y2), axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    w = None
    if fweights is not None:
        w = fweights = np.asarray(unbox(fweights), dtype=float)
        if not np.all(fweights == np.around(fweights)):
            raise TypeError("fweights must be integer")
    if aweights is not None:
        aweights = aweights if type(aweights) in box_types else np.asarray(aweights)
        w = aweights if w is None else w * aweights
    avg, w_sum = _average(x, axis=1, weights=w, returned=True)
    w_sum = w_sum[0]
    if w is None:
        fact = shape_of(x)[1] - ddof
    elif ddof == 0:
        fact = w_sum
    elif aweights is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * np.sum(w * aweights) / w_sum
    if unbox(fact) <= 0:
        fact = 0.0
    x = x - avg[:, None]
    xt = np.transpose(x if w is None else x * w)
    if np.result_type(xt).kind == "c":
        xt = np.conj(xt)
    c = (x @ xt) * np.true_divide(1, fact)
    return np.squeeze(c)


@handles(np.corrcoef)
def _corrcoef(x, y=None, rowvar=True, *, dtype=None):
    c = _cov(x, y, rowvar, dtype=dtype)
    if ndim_of(c) == 0:
        return c / c
    k = np.arange(shape_of(c)[0])
    d = c[k, k]
    if np.result_type(d).kind == "c":
        d = np.real(d)
    stddev = np.sqrt(d)
    c = c / stddev[:, None]
    c = c / stddev[None, :]
    return np.clip(c, -1, 1) if np.result_type(c).kind != "c" else c


# ----- Counting into bins -----
@handles(np.bincount)
def _bincount(x, weights=None, minlength=0):
    # The counts come from NumPy (which also checks ``x``); the weights scatter-add into
    # them, differentiably.
    x = unbox(x)
    counts = np.bincount(x, minlength=minlength)
    if weights is None:
        return counts
    x = np.asarray(x)
    return index_add_p(np.reshape(weights, shape_of(x)), idx=(x,), shape=shape_of(counts))


def _refuse_weights(weights, name):
    if type(weights) in box_types:
        raise NotImplementedError(
            f"autodiff has no derivative rule for np.{name} with respect to tracked weights; "
            "use np.bincount(..., weights=w) or a sum over masks.")


def _tracked_edges(a, edges, bins, lohi):
    """The bin edges as functions of the data. Given as an array, they are ``bins`` itself;
    from a count (or an estimator's name) with no ``range`` they are
    ``linspace(min a, max a, n+1)``, which moves with the extreme values: NumPy's edges plus
    ``(lo - lo₀)(1 - u) + (hi - hi₀)u`` (u the edges' place in [0, 1]), 0 in value, so the
    numbers stay NumPy's. With a ``range`` they are constant."""
    if np.ndim(meta(bins)) == 1:
        return bins if type(bins) in box_types else edges
    if not lohi or type(a) not in box_types or shape_of(a) == () or np.size(meta(a)) == 0:
        return edges
    lo, hi = np.min(a), np.max(a)
    u = (edges - edges[0]) / (edges[-1] - edges[0])
    return edges + (lo - unbox(lo)) * (1 - u) + (hi - unbox(hi)) * u


@handles(np.histogram_bin_edges)
def _histogram_bin_edges(a, bins=10, range=None, weights=None):
    # The edges do not depend on the weights (no estimator uses them).
    edges = np.histogram_bin_edges(unbox(a), unbox(bins), range, unbox(weights))
    return _tracked_edges(a, edges, bins, range is None)


@handles(np.histogram)
def _histogram(a, bins=10, range=None, density=None, weights=None):
    """The counts are plain; the edges move with the data (``_tracked_edges``), and so do the
    densities ``count / (width · Σcount)``."""
    _refuse_weights(weights, "histogram")
    counts, edges = np.histogram(unbox(a), unbox(bins), range, weights=weights)
    e = _tracked_edges(a, edges, bins, range is None)
    if density and type(e) in box_types:
        return counts / np.diff(e) / counts.sum(), e
    if density:
        return np.histogram(unbox(a), unbox(bins), range, density=True, weights=weights)[0], e
    return counts, e


def _sample_columns(sample):
    """The D coordinate arrays of a histogramdd sample ((N, D) array or D sequences)."""
    if isinstance(sample, (list, tuple)):
        return list(sample)
    if ndim_of(sample) < 2:
        return [np.ravel(sample)]
    return [sample[:, i] for i in range(shape_of(sample)[1])]


@handles(np.histogramdd)
def _histogramdd(sample, bins=10, range=None, density=None, weights=None):
    _refuse_weights(weights, "histogramdd")
    cols = _sample_columns(sample)
    plain = np.asarray(unbox(sample)) if not isinstance(sample, (list, tuple)) \
        else [np.asarray(unbox(c)) for c in sample]
    d = len(cols)
    try:
        per_dim = len(bins) == d
    except TypeError:
        per_dim = False
    b = list(bins) if per_dim else [bins] * d
    hist, edges = np.histogramdd(plain, [unbox(x) for x in b], range, weights=weights)
    out = [_tracked_edges(cols[i], edges[i], b[i], range is None or range[i] is None)
           for i in np.arange(d)]
    tracked = any(type(e) in box_types for e in out)
    if density:
        if tracked:
            raise NotImplementedError("np.histogramdd/histogram2d(density=True) with edges "
                                      "that move with a tracked sample; give range= or bins "
                                      "as arrays")
        hist = np.histogramdd(plain, [unbox(x) for x in b], range, density=True,
                              weights=weights)[0]
    return hist, out


@handles(np.histogram2d)
def _histogram2d(x, y, bins=10, range=None, density=None, weights=None):
    try:
        n = len(bins)
    except TypeError:
        n = 1
    if n != 1 and n != 2:
        bins = [bins, bins]
    hist, edges = _histogramdd([x, y], bins, range, density, weights)
    return hist, edges[0], edges[1]


# ----- Dependency structure (the sparsity mode): each output element, its whole slice -----
for _p in (sum_p, prod_p, max_p, min_p):
    _p.sparsity = dependency.reduction
