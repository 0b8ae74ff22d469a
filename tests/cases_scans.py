"""Case-table entries for scans (cumsum, cumprod, the linear recurrence), differences and the
reductions composed from the primitives: average, ptp, order statistics, NaN-ignoring
reductions, trapezoid, gradient, cov, corrcoef, bincount (see cases.py).

Inputs for order statistics and extrema come from ``_apart`` (values at least a few tenths
apart), so the finite differences never swap two of them; NaN inputs leave no slice empty.
"""
import numpy as np

from autodiff.ops.scans import linear_recurrence_p


# ----- Domains: dom(rng, shape) -> array -----
def _apart(rng, shape):
    """A random permutation of evenly spaced values in [-2, 2], slightly jittered."""
    n = int(np.prod(shape))
    step = 4.0 / max(n - 1, 1)
    v = np.linspace(-2.0, 2.0, n) + rng.uniform(-0.2, 0.2, n) * step
    return rng.permutation(v).reshape(shape)


def _with_nans(rng, shape):
    """``_apart`` values with NaNs at (0, 1), (1, 3), (2, 0) of a (3, 4) array: every row
    and every column keeps numbers."""
    a = _apart(rng, shape)
    a[0, 1] = a[1, 3] = a[2, 0] = np.nan
    return a


def _with_zeros(rng, shape):
    """Real values with zeros, two of them in row 1 (a (3, 4) array)."""
    a = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    a[0, 1] = a[1, 0] = a[1, 2] = 0.0
    return a


def _increasing(rng, shape):
    """Coordinates: a strictly increasing sequence along the last axis."""
    return np.cumsum(rng.uniform(0.5, 1.5, shape), axis=-1)


def make(Case):
    real, pos = "real", "pos"
    m34 = ((3, 4), real)
    nan34 = ((3, 4), _with_nans)
    lr = linear_recurrence_p
    return [
        # ----- cumsum -----
        Case("cumsum", "cumsum-flat", lambda x: np.cumsum(x), (((2, 3), real),)),
        Case("cumsum", "cumsum-axis0-squared", lambda x: np.cumsum(x, axis=0) ** 2, (m34,)),
        Case("cumsum", "cumsum-axis-1", lambda x: np.cumsum(x * x, axis=-1) * x,
             (((2, 2, 3), real),)),
        Case("cumsum", "cumsum-add-accumulate", lambda x: np.sin(np.add.accumulate(x)),
             (((3, 2), real),)),
        Case("cumsum", "cumsum-cumulative_sum-initial",
             lambda x: np.cumulative_sum(x, axis=0, include_initial=True) * 2.0, (m34,)),
        Case("cumsum", "cumsum-nancumsum", lambda x: np.nancumsum(x, axis=1) ** 2, (nan34,)),
        # ----- cumprod (rules: the linear recurrence) -----
        Case("cumprod", "cumprod-flat", lambda x: np.cumprod(x), (((2, 3), real),)),
        Case("cumprod", "cumprod-axis0", lambda x: np.cumprod(x, axis=0), (((4, 2), real),)),
        Case("cumprod", "cumprod-zeros", lambda x: np.cumprod(x, axis=-1),
             (((3, 4), _with_zeros),)),
        Case("cumprod", "cumprod-zeros-axis0", lambda x: np.cumprod(x, axis=0) * x,
             (((3, 4), _with_zeros),)),
        Case("cumprod", "cumprod-multiply-accumulate",
             lambda x: np.multiply.accumulate(x, axis=1), (m34,)),
        Case("cumprod", "cumprod-cumulative_prod-initial",
             lambda x: np.cumulative_prod(x, axis=-1, include_initial=True), (m34,)),
        Case("cumprod", "cumprod-nancumprod", lambda x: np.nancumprod(x, axis=0), (nan34,)),
        # ----- the recurrence itself -----
        Case("linear_recurrence", "linear_recurrence-broadcast",
             lambda a, b: lr(a, b, axis=-1, reverse=False), (((4,), real), ((2, 4), real))),
        Case("linear_recurrence", "linear_recurrence-reverse-axis0",
             lambda a, b: lr(a, b * b, axis=-2, reverse=True) * a,
             (((3, 2), real), ((3, 2), real))),
        Case("linear_recurrence", "linear_recurrence-zeros",
             lambda a, b: lr(a, b, axis=-1, reverse=True), (((3, 4), _with_zeros), m34)),
        # ----- complex inputs (holomorphic: no conjugation in the rules) -----
        Case("cumsum", "cumsum-complex", lambda z: np.cumsum(z * z, axis=0),
             (((3, 2), "complex"),)),
        Case("cumprod", "cumprod-complex", lambda z: np.cumprod(z), (((4,), "complex"),)),
        Case("linear_recurrence", "linear_recurrence-complex",
             lambda a, b: lr(a, b, axis=-1, reverse=False),
             (((4,), "complex"), ((4,), "complex"))),
        Case("matmul", "cov-complex", lambda z: np.cov(z), (((2, 4), "complex"),)),
        # ----- differences -----
        Case("getitem", "diff-last", lambda x: np.diff(x) * x[:, 1:], (m34,)),
        Case("getitem", "diff-n2-axis0", lambda x: np.diff(x ** 2, n=2, axis=0),
             (((4, 3), real),)),
        Case("getitem", "diff-prepend-append",
             lambda x, p: np.diff(x, axis=1, prepend=p, append=0.5) ** 2,
             (((2, 3), real), ((2, 1), real))),
        Case("getitem", "ediff1d-ends", lambda x, b: np.ediff1d(x ** 2, to_begin=b, to_end=1.0),
             (((2, 3), real), ((2,), real))),
        # ----- average, ptp -----
        Case("sum", "average-all", lambda x: np.average(x ** 2), (m34,)),
        Case("sum", "average-weights-axis1", lambda x, w: np.average(x, axis=1, weights=w),
             (m34, ((4,), pos))),
        Case("sum", "average-returned-keepdims",
             lambda x, w: np.average(x, axis=-1, weights=w, returned=True, keepdims=True)[0]
             * np.average(x, axis=0, weights=w, returned=True)[1].sum(),
             (((3, 4), real), ((3, 4), pos))),
        Case("max", "ptp-all", lambda x: np.ptp(x), (((3, 4), _apart),)),
        Case("max", "ptp-axis0", lambda x: np.ptp(x, axis=0), (((3, 4), _apart),)),
        Case("min", "ptp-axis-1-keepdims", lambda x: np.ptp(x, axis=-1, keepdims=True),
             (((2, 3, 4), _apart),)),
        Case("prod", "prod-multiply-reduce", lambda x: np.multiply.reduce(x, axis=1), (m34,)),
        Case("max", "max-maximum-reduce", lambda x: np.maximum.reduce(x), (((3, 4), _apart),)),
        # ----- order statistics -----
        Case("getitem", "median-all-odd", lambda x: np.median(x), (((3, 5), _apart),)),
        Case("getitem", "median-axis1-even", lambda x: np.median(x, axis=1), (((3, 4), _apart),)),
        Case("getitem", "median-axes-keepdims",
             lambda x: np.median(x, axis=(0, 2), keepdims=True), (((2, 3, 2), _apart),)),
        Case("getitem", "quantile-linear-qs", lambda x: np.quantile(x, [0.1, 0.5, 0.9], axis=-1),
             (((3, 5), _apart),)),
        Case("getitem", "quantile-methods",
             lambda x: np.quantile(x, 0.3, axis=0, method="hazen")
             + np.quantile(x, 0.6, axis=0, method="midpoint")
             + np.quantile(x, 0.4, axis=0, method="lower")
             + np.quantile(x, 0.4, axis=0, method="median_unbiased"),
             (((5, 3), _apart),)),
        Case("getitem", "percentile-axis0-keepdims",
             lambda x: np.percentile(x, [25.0, 80.0], axis=0, keepdims=True),
             (((4, 3), _apart),)),
        # Exact copies stay tied under any perturbation: the tied path, checked smoothly.
        Case("getitem", "median-tied-copies",
             lambda x: np.median(np.concatenate([x, x[:, ::-1]], axis=-1), axis=-1),
             (((2, 3), _apart),)),
        Case("getitem", "nanpercentile-tied-copies",
             lambda x: np.nanpercentile(np.concatenate([x, x], axis=1), [20.0, 70.0], axis=1),
             (nan34,)),
        # ----- ignoring NaNs -----
        Case("sum", "nansum-axis0", lambda x: np.nansum(x, axis=0) ** 2, (nan34,)),
        Case("prod", "nanprod-all", lambda x: np.nanprod(x), (nan34,)),
        Case("sum", "nanmean-axis1", lambda x: np.nanmean(x, axis=1), (nan34,)),
        Case("sum", "nanvar-ddof1", lambda x: np.nanvar(x, axis=0, ddof=1), (nan34,)),
        Case("sum", "nanstd-keepdims", lambda x: np.nanstd(x, axis=-1, keepdims=True), (nan34,)),
        Case("max", "nanmax-axis1", lambda x: np.nanmax(x, axis=1), (nan34,)),
        Case("min", "nanmin-all", lambda x: np.nanmin(x), (nan34,)),
        Case("getitem", "nanmedian-axis1", lambda x: np.nanmedian(x, axis=1), (nan34,)),
        Case("getitem", "nanmedian-all", lambda x: np.nanmedian(x), (nan34,)),
        Case("getitem", "nanquantile-axis0", lambda x: np.nanquantile(x, [0.3, 0.7], axis=0),
             (nan34,)),
        Case("getitem", "nanpercentile-keepdims",
             lambda x: np.nanpercentile(x, 40.0, axis=-1, keepdims=True), (nan34,)),
        # ----- integrals and derivatives of samples -----
        Case("sum", "trapezoid-y", lambda y: np.trapezoid(y ** 2), (m34,)),
        Case("sum", "trapezoid-dx-axis0", lambda y, dx: np.trapezoid(y, dx=dx, axis=0),
             (m34, ((), pos))),
        Case("sum", "trapezoid-x1d", lambda y, x: np.trapezoid(y, x, axis=1),
             (m34, ((4,), _increasing))),
        Case("sum", "trapezoid-xNd", lambda y, x: np.trapezoid(y * y, x),
             (m34, ((3, 4), _increasing))),
        Case("concatenate", "gradient-default", lambda f: np.stack(np.gradient(f ** 2)),
             (m34,)),
        Case("concatenate", "gradient-edge2-spacings",
             lambda f: np.stack(np.gradient(f, 0.5, np.array([0.0, 0.4, 1.5, 1.8]), edge_order=2)),
             (m34,)),
        Case("concatenate", "gradient-axis-coords-tracked",
             lambda f, x: np.gradient(f, x, axis=-1), (((2, 5), real), ((5,), _increasing))),
        Case("concatenate", "gradient-edge2-coords-tracked",
             lambda f, x: np.gradient(f * f, x, axis=0, edge_order=2),
             (((4, 2), real), ((4,), _increasing))),
        # ----- covariance and correlation -----
        Case("matmul", "cov-rows", lambda x: np.cov(x), (((3, 5), real),)),
        Case("matmul", "cov-rowvar-false-y-bias",
             lambda x, y: np.cov(x, y, rowvar=False, bias=True), (((5, 2), real), ((5,), real))),
        Case("matmul", "cov-weights",
             lambda x, w: np.cov(x, fweights=np.array([1, 2, 1, 3, 1]), aweights=w),
             (((2, 5), real), ((5,), pos))),
        Case("matmul", "corrcoef-rows", lambda x: np.corrcoef(x), (((3, 5), real),)),
        Case("matmul", "corrcoef-xy", lambda x, y: np.corrcoef(x, y ** 2),
             (((5,), real), ((5,), real))),
        # ----- Histogram bin edges: linspace(min, max) unless given or ranged -----
        Case("max", "histogram-edges", lambda x: np.histogram(x, bins=4)[1] ** 2,
             (((6,), _distinct),)),
        Case("max", "histogram-density", lambda x: np.histogram(x, bins=3, density=True)[0],
             (((5,), _distinct),)),
        Case("max", "histogram_bin_edges-auto", lambda x: np.histogram_bin_edges(x, "auto") * x[0],
             (((5,), _distinct),)),
        Case("min", "histogram2d-edges", lambda x, y: _cat(np.histogram2d(x, y, bins=(2, 3))[1:]),
             (((4,), _distinct), ((4,), _distinct))),
        Case("min", "histogramdd-edges",
             lambda s: _cat(np.histogramdd(s, bins=2, range=[None, (0.0, 1.0)])[1]),
             (((4, 2), _distinct),)),
        # ----- bincount's weights -----
        Case("index_add", "bincount-weights",
             lambda w: np.bincount(np.array([0, 2, 2, 4, 0, 1]), weights=w ** 2, minlength=6),
             (((6,), real),)),
    ]


def _distinct(rng, shape):
    """Distinct values, 0.3 apart at least: the extremes (and so the edges) are unique."""
    n = int(np.prod(shape, dtype=int))
    return (rng.permutation(n) * 0.4 + rng.uniform(-0.05, 0.05, n)).reshape(shape)


def _cat(parts):
    return np.concatenate([np.ravel(p) * (i + 1.0) for i, p in enumerate(parts)])
