"""Regression tests for silent wrong numbers and crashes in the op families (issue 9):
each test fails on the defect it names."""
import numpy as np
import pytest

import autodiff as ad
import autodiff.numpy as anp
from autodiff.scipy.special import logsumexp


# ----- 1. Mixed partials of x**y at y = 0 -----
@pytest.mark.parametrize("power", [np.power, np.float_power])
@pytest.mark.parametrize("y", [0.0, 1.0, 2.5])
def test_power_mixed_partials_every_order(y, power):
    x = 4.0
    f = lambda a, b: power(a, b)                                  # noqa: E731
    # ∂²/∂x∂y x**y = x**(y-1)·(1 + y log x): 1/x at y = 0.
    want = x ** (y - 1) * (1 + y * np.log(x))
    assert np.isclose(ad.grad(ad.grad(f, 0), 1)(x, y), want)
    assert np.isclose(ad.grad(ad.grad(f, 1), 0)(x, y), want)
    hess = np.array([[y * (y - 1) * x ** (y - 2), want], [want, x ** y * np.log(x) ** 2]])
    g = lambda v: power(v[0], v[1])                                # noqa: E731
    v = np.array([x, y])
    for h in (ad.hessian(g), ad.jacfwd(ad.jacrev(g)), ad.jacrev(ad.jacfwd(g)),
              ad.jacfwd(ad.jacfwd(g)), ad.jacrev(ad.jacrev(g))):
        np.testing.assert_allclose(h(v), hess, rtol=1e-12, atol=1e-12)
    ad.check_grads(f, (np.array([x, 2.0]), np.array([y, y])), order=2)


@pytest.mark.parametrize("power", [np.power, np.float_power])
def test_power_zero_base_zero_exponent_convention(power):
    # d/dx x**0 = 0 at x = 0 too (JAX), for arrays of exponents.
    gx = ad.grad(lambda a, b: np.sum(power(a, b)), 0)(np.array([0.0, 2.0]), np.array([0.0, 0.0]))
    np.testing.assert_array_equal(gx, [0.0, 0.0])


# ----- 2. Variance of complex data, std over one element -----
_Z = np.array([[1 + 2j, 3 - 1j], [0.5j, 2 + 0j], [-1 + 1j, 0.3 - 0.2j]])


@pytest.mark.parametrize("name", ["var", "std", "nanvar", "nanstd"])
@pytest.mark.parametrize("kw", [{}, {"axis": 0}, {"axis": 1, "ddof": 1}])
def test_complex_variance_is_mean_abs_squared(name, kw):
    f = lambda z: getattr(np, name)(z, **kw)                      # noqa: E731
    out = ad.jvp(f, (_Z,), (_Z,))[0]
    np.testing.assert_allclose(out, f(_Z), rtol=1e-12)
    assert not np.iscomplexobj(out)
    ad.check_grads(f, (_Z,), order=2)


@pytest.mark.parametrize("name", ["std", "nanstd"])
def test_std_of_one_element_has_zero_derivative(name):
    f = getattr(np, name)
    assert ad.grad(f)(3.0) == 0.0
    assert ad.grad(f)(np.array(3.0)) == 0.0
    g = ad.grad(lambda x: f(x, axis=0).sum())(np.ones((1, 3)))
    np.testing.assert_array_equal(g, np.zeros((1, 3)))
    np.testing.assert_array_equal(ad.jacfwd(lambda x: f(x, axis=1))(np.ones((2, 1))),
                                  np.zeros((2, 2, 1)))
    np.testing.assert_array_equal(ad.hessian(f)(np.array([2.0])), [[0.0]])


def test_nanstd_slice_with_one_value_has_zero_derivative():
    x = np.array([[1.0, np.nan], [2.0, 3.0]])
    g = ad.grad(lambda x: np.nanstd(x, axis=0).sum())(x)
    np.testing.assert_allclose(g, [[-0.5, 0.0], [0.5, 0.0]])


def test_mean_where_is_refused_not_ignored():
    with pytest.raises(NotImplementedError, match="np.mean"):
        ad.grad(lambda x: np.mean(x, where=np.array([True, False, True])))(np.arange(3.0))
    with pytest.raises(NotImplementedError, match="np.var"):
        ad.grad(lambda x: np.var(x, where=np.array([True, False, True])))(np.arange(3.0))


# ----- 3. Functions whose outputs are input elements are not non-differentiable -----
_X = np.array([3.0, 1.0, 4.0, 2.0, 5.0])


def _jac(f, x):
    jf, jr = ad.jacfwd(f)(x), ad.jacrev(f)(x)
    np.testing.assert_array_equal(jf, jr)
    return jf


def _onehot(rows, n):
    """Row k: the unit vector of input element rows[k] (zeros for None: a constant)."""
    return np.array([np.zeros(n) if r is None else np.eye(n)[r] for r in rows])


@pytest.mark.parametrize("name, f, rows", [
    # unique: the first occurrence of each value carries its derivative
    ("unique", lambda x: np.unique(np.concatenate([x, x[:2]])), [1, 3, 0, 2, 4]),
    ("unique_values", lambda x: np.unique_values(x), [1, 3, 0, 2, 4]),
    ("unique_all", lambda x: np.unique_all(x).values, [1, 3, 0, 2, 4]),
    ("unique_counts", lambda x: np.unique_counts(x).values, [1, 3, 0, 2, 4]),
    ("unique_inverse", lambda x: np.unique_inverse(x).values, [1, 3, 0, 2, 4]),
    ("union1d", lambda x: np.union1d(x[:3], np.array([9.0, 3.0])), [1, 0, 2, None]),
    ("intersect1d", lambda x: np.intersect1d(x, np.array([4.0, 1.0, 7.0])), [1, 2]),
    ("setdiff1d", lambda x: np.setdiff1d(x, np.array([4.0, 1.0])), [3, 0, 4]),
    ("setxor1d", lambda x: np.setxor1d(x, np.array([4.0, 7.0])), [1, 3, 0, 4, None]),
    ("sort_complex", lambda x: np.real(np.sort_complex(x)), [1, 3, 0, 2, 4]),
])
def test_set_values_carry_derivatives(name, f, rows):
    np.testing.assert_array_equal(ad.jvp(f, (_X,), (_X,))[0], f(_X))
    np.testing.assert_array_equal(_jac(f, _X), _onehot(rows, 5))


def test_unique_keeps_integer_outputs_plain():
    f = lambda x: np.unique(x, return_index=True, return_inverse=True, return_counts=True)  # noqa
    x = np.array([2.0, 1.0, 2.0])
    got = ad.jvp(lambda x: f(x)[0], (x,), (np.array([1.0, 2.0, 3.0]),))
    np.testing.assert_array_equal(got[1], [2.0, 1.0])
    for a, b in zip(f(x)[1:], np.unique(x, True, True, True)[1:]):
        np.testing.assert_array_equal(a, b)
    grads = ad.grad(lambda x: np.sum(np.unique(x, axis=0) * np.array([[1.0], [2.0]])))(
        np.array([[2.0, 0.0], [1.0, 5.0], [2.0, 0.0]]))
    np.testing.assert_array_equal(grads, [[2.0, 2.0], [1.0, 1.0], [0.0, 0.0]])


def test_nextafter_and_heaviside_derivatives():
    assert ad.grad(lambda x: np.nextafter(x, 5.0))(1.0) == 1.0
    assert ad.grad(lambda y: np.nextafter(1.0, y))(5.0) == 0.0
    np.testing.assert_array_equal(
        ad.grad(lambda h: np.sum(np.heaviside(np.array([0.0, 1.0, -1.0]), h)))(np.full(3, 0.5)),
        [1.0, 0.0, 0.0])


def test_histogram_edges_move_with_the_data():
    x = np.array([3.0, 1.0, 4.0, 2.0, 5.0])
    u = np.linspace(0.0, 1.0, 11)
    want = np.zeros((11, 5))
    want[:, 1], want[:, 4] = 1 - u, u                 # edges = min + (max - min)·u
    for f in (lambda x: np.histogram(x)[1], lambda x: np.histogram_bin_edges(x)):
        np.testing.assert_array_equal(ad.jvp(f, (x,), (x,))[0], np.histogram(x)[1])
        np.testing.assert_allclose(_jac(f, x), want, atol=1e-15)
    # With a range or given edges, the edges are constant; the counts are plain.
    np.testing.assert_array_equal(ad.jacrev(lambda x: np.histogram(x, range=(0, 6))[1])(x), 0.0)
    ad.check_grads(lambda x: np.histogram(x, bins=3, density=True)[0], (x,), order=2)
    ad.check_grads(lambda x: np.histogram2d(x, x ** 2, bins=3)[2], (x,), order=2)
    with pytest.raises(NotImplementedError, match="np.histogram"):
        ad.grad(lambda w: np.histogram(x, weights=w)[0].sum())(np.ones(5))


def test_nondiff_list_holds_only_locally_constant_functions():
    from autodiff.ops.nondiff import NONDIFF_FUNCTIONS, NONDIFF_UFUNCS
    moved = {np.unique, np.union1d, np.intersect1d, np.setdiff1d, np.setxor1d, np.sort_complex,
             np.unique_all, np.unique_counts, np.unique_inverse, np.unique_values,
             np.nextafter, np.heaviside, np.histogram, np.histogram_bin_edges}
    assert not moved & set(NONDIFF_FUNCTIONS + NONDIFF_UFUNCS)


# ----- 4. Constants given as lists; lists of tracked values in autodiff.numpy -----
_L3, _M3 = [1.0, -2.0, 0.5], [[1.0, 2.0, 3.0], [0.0, 1.0, 2.0], [2.0, 0.0, 1.0]]
_LIST_CALLS = {
    "interp": lambda x, c: np.interp(x, c([0.0, 1.0, 2.0]), c([0.0, 3.0, 1.0])),
    "interp-period": lambda x, c: np.interp(x, c([0.0, 1.0, 2.0]), c([0.0, 3.0, 1.0]), period=3),
    "interp-fp": lambda x, c: np.interp(c([0.5, 1.2]), c([0.0, 1.0, 2.0]), x),
    "convolve": lambda x, c: np.convolve(x, c(_L3)),
    "convolve-first": lambda x, c: np.convolve(c(_L3), x, mode="same"),
    "correlate": lambda x, c: np.correlate(x, c([1.0, -2.0]), mode="full"),
    "correlate-first": lambda x, c: np.correlate(c([1.0, -2.0]), x, mode="same"),
    "dot": lambda x, c: np.dot(x, c(_M3)) + np.dot(c(_M3), x),
    "vdot-inner": lambda x, c: np.vdot(c(_L3), x) + np.inner(c(_L3), x),
    "matvec-vecmat": lambda x, c: np.matvec(c(_M3), x) + np.vecmat(x, c(_M3)),
    "linalg.matmul": lambda x, c: np.linalg.matmul(c(_M3), x),
    "polyval": lambda x, c: np.polyval(x, c([1.0, 2.0])).sum() + np.polyval(c(_L3), x),
    "polyadd-sub-mul": lambda x, c: np.concatenate([np.polyadd(c(_L3), x), np.polysub(x, c(_L3)),
                                                    np.polymul(c(_L3), x)]),
    "polydiv": lambda x, c: np.polydiv(x, c([1.0, 2.0]))[0] + np.polydiv(c(_L3), x)[0],
    "polyder-polyint": lambda x, c: np.polyint(x, k=c([1.0])) * np.polyder(c([1.0] + _L3)).sum(),
    "trapezoid": lambda x, c: np.trapezoid(x, c([0.0, 1.0, 3.0])) + np.trapezoid(c(_L3), x),
    "gradient": lambda x, c: np.gradient(x, c([0.0, 1.0, 3.0])) + np.gradient(c(_L3), x),
    "clip": lambda x, c: np.clip(x, c([1.0, 0.0, 0.0]), c([2.0, 2.0, 2.0])),
    "binary-ufuncs-list-first": lambda x, c: np.maximum(c(_L3), x) + np.arctan2(c(_L3), x)
    + np.hypot(c(_L3), x),
    "matmul": lambda x, c: np.matmul(c(_M3), x) + c(_M3) @ x,
    "cov-aweights": lambda x, c: np.cov(np.stack([x, x ** 2]), aweights=c([1.0, 2.0, 1.0])),
    "linspace": lambda x, c: np.linspace(c(_L3), x, 3),
}


@pytest.mark.parametrize("name", list(_LIST_CALLS))
def test_list_constants_work_as_arrays(name):
    x = np.array([0.5, 1.5, 2.5])
    lists = lambda x: _LIST_CALLS[name](x, lambda a: a)           # noqa: E731
    arrays = lambda x: _LIST_CALLS[name](x, np.asarray)           # noqa: E731
    np.testing.assert_allclose(ad.jvp(lists, (x,), (x,))[0], arrays(x))
    want = ad.jacfwd(arrays)(x)
    np.testing.assert_allclose(ad.jacfwd(lists)(x), want)
    np.testing.assert_allclose(ad.jacrev(lists)(x), want)
    ad.check_grads(lists, (x,), order=2)


def test_autodiff_numpy_stacks_lists_of_tracked_values():
    x = 1.0
    assert np.isclose(ad.grad(lambda x: anp.linalg.norm([x, x + 2]))(x), 4 / np.sqrt(10))
    assert ad.grad(lambda x: anp.mean([x, x + 2]))(x) == 1.0
    assert ad.grad(lambda x: anp.append([x, 2.0], [x]).sum())(x) == 2.0
    assert ad.grad(lambda x: anp.sin([x, 2 * x]).sum())(x) == np.cos(1.0) + 2 * np.cos(2.0)
    assert ad.grad(lambda x: anp.add([x, 2 * x], 1.0).sum())(x) == 3.0
    assert ad.grad(lambda x: anp.fft.fft([x, 2 * x]).real.sum())(x) == 2.0
    assert ad.grad(lambda x: anp.dot([x, 2 * x], [1.0, 3.0]))(x) == 7.0
    assert ad.grad(lambda x: anp.where(anp.array([True, False]), [x, 3.0], [0.0, x]).sum())(x) \
        == 2.0
    # Functions that take sequences of arrays get them as they are.
    v = np.array([1.0, 2.0])
    np.testing.assert_array_equal(
        ad.jacfwd(lambda v: anp.concatenate([v, v[:1]]))(v), [[1, 0], [0, 1], [1, 0]])
    np.testing.assert_array_equal(ad.jacrev(lambda v: anp.stack([v, 2 * v]).sum(0))(v),
                                  3 * np.eye(2))
    import autodiff.numpy.linalg as alinalg
    assert alinalg is anp.linalg and anp.linalg.LinAlgError is np.linalg.LinAlgError
    assert anp.mean([1.0, 2.0]) == 1.5


# ----- 5. float32 stays float32 -----
_F32 = {
    "max": np.max, "min": np.min, "ptp": np.ptp, "nanmax": np.nanmax,
    "clip": lambda v: np.clip(v, 0, 2), "clip-arrays": lambda v: np.clip(v, v[0], v[-1]),
    "maximum": lambda v: np.maximum(v, 1.5), "minimum": lambda v: np.minimum(2, v),
    "nanmean": np.nanmean, "nanvar": np.nanvar, "nanstd": np.nanstd,
    "percentile": lambda v: np.percentile(v, 30), "quantile": lambda v: np.quantile(v, 0.3),
    "median-ties": np.median, "nanmedian": np.nanmedian,
    "pad-linear_ramp": lambda v: np.pad(v, 2, mode="linear_ramp"),
    "linspace": lambda v: np.linspace(0, v, 3),
    "histogram-edges": lambda v: np.histogram(v, bins=3)[1],
}


@pytest.mark.parametrize("name", list(_F32))
def test_float32_primal_tangent_and_cotangent(name):
    f = _F32[name]
    x = np.array([1.0, 2.0, 3.0, 3.0], np.float32)
    assert np.result_type(f(x)) == np.float32               # NumPy's own
    y, t = ad.jvp(f, (x,), (np.ones(4, np.float32),))
    assert y.dtype == np.float32 and t.dtype == np.float32, (y.dtype, t.dtype)
    assert ad.jacfwd(f)(x).dtype == np.float32
    assert ad.jacrev(f)(x).dtype == np.float32
    assert ad.grad(lambda v: np.sum(f(v)))(x).dtype == np.float32


def test_quantile_dtype_follows_numpy_for_array_q():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    for q in ([0.3], np.array(0.3), np.float32(0.3)):
        y = ad.jvp(lambda v: np.quantile(v, q), (x,), (x,))[0]
        assert y.dtype == np.quantile(x, q).dtype


# ----- 6. Zero-size and 0-d arrays -----
_E = np.ones((2, 0))
_EMPTY = {
    "einsum-ab->b": (lambda x: np.einsum("ab->b", x), _E),
    "einsum-ab->a": (lambda x: np.einsum("ab->a", x), _E),
    "einsum-contract-empty": (lambda x: np.einsum("ab,bc->ac", x, np.ones((0, 2))), _E),
    "einsum-ab->": (lambda x: np.einsum("ab->", x), _E),
    "sum-empty-axis": (lambda x: np.sum(x, axis=1), _E),
    "prod-empty-axis": (lambda x: np.prod(x, axis=1), _E),
    "max-initial": (lambda x: np.max(x, axis=1, initial=0.5), _E),
    "min-initial-where": (lambda x: np.min(x, axis=1, initial=3.0,
                                           where=np.array([True, False, True])),
                          np.array([[1.0, 5.0, 4.0], [2.0, 0.0, 3.5]])),
    "sum-where": (lambda x: np.sum(x, axis=0, where=np.array([True, False])),
                  np.array([[1.0, 5.0], [2.0, 0.0]])),
    "nansum-empty-axis": (lambda x: np.nansum(x, axis=1), _E),
    "mean-empty-axis": (lambda x: np.mean(x, axis=1), _E),
    "var-empty-axis": (lambda x: np.var(x, axis=1), _E),
    "std-empty-axis": (lambda x: np.std(x, axis=1), _E),
    "average-empty-axis": (lambda x: np.average(x, axis=1), _E),
    "nanmean-empty-axis": (lambda x: np.nanmean(x, axis=1), _E),
    "logsumexp-empty-axis": (lambda x: logsumexp(x, axis=1), _E),
    "cumsum-empty-axis": (lambda x: np.cumsum(x, axis=1), _E),
    "vector_norm-inf-empty": (lambda x: np.linalg.vector_norm(x, ord=np.inf), np.ones(0)),
    "vector_norm-inf-empty-axis": (lambda x: np.linalg.vector_norm(x, ord=np.inf, axis=1), _E),
    "norm-inf-empty": (lambda x: np.linalg.norm(x, ord=np.inf), np.ones(0)),
    "median-empty": (lambda x: np.median(x, axis=1), _E),
    "nanmedian-empty": (lambda x: np.nanmedian(x, axis=1, keepdims=True), _E),
    "cumsum-0d-axis0": (lambda x: np.cumsum(x, axis=0), np.array(2.0)),
    "cumprod-0d-axis-1": (lambda x: np.cumprod(x, axis=-1) * x, np.array(2.0)),
    "nancumsum-0d-axis0": (lambda x: np.nancumsum(x, axis=0), np.array(2.0)),
}


@pytest.mark.parametrize("name", list(_EMPTY))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_zero_size_and_0d_match_numpy(name):
    f, x = _EMPTY[name]
    want = f(x)
    np.testing.assert_array_equal(ad.jvp(f, (x,), (x,))[0], want)
    jf, jr = ad.jacfwd(f)(x), ad.jacrev(f)(x)
    assert jf.shape == jr.shape == np.shape(want) + x.shape
    np.testing.assert_allclose(jf, jr)
    if x.size:
        ad.check_grads(f, (x,), order=2)


@pytest.mark.parametrize("f, x", [
    (lambda x: np.quantile(x, 0.5, axis=1), _E),
    (lambda x: np.ptp(x, axis=1), _E),
    (lambda x: np.linalg.vector_norm(x, ord=-np.inf), np.ones(0)),
    (lambda x: np.add.accumulate(x), np.array(2.0)),
    (lambda x: np.cumsum(x, axis=1), np.array(2.0)),
    (lambda x: np.max(x, axis=1, where=np.array([True, False])), np.ones((2, 2))),
])
def test_zero_size_and_0d_raise_as_numpy_does(f, x):
    with pytest.raises(Exception) as plain:
        f(x)
    with pytest.raises(type(plain.value)):
        ad.jacfwd(f)(x)
    with pytest.raises(type(plain.value)):
        ad.jacrev(f)(x)


def test_polymul_refuses_a_tracked_leading_zero_instead_of_dropping_its_derivative():
    # NumPy's polymul trims leading zeros by value; the trimmed coefficient's derivative
    # (here d/dx0 of sum(polymul([1, 2], x)) = 3) would silently vanish.
    f = lambda x: np.sum(np.polymul([1.0, 2.0], x))
    x = np.array([0.0, 0.3])
    assert np.isclose(f(x), np.sum(np.polymul([1.0, 2.0], x)))
    for transform in (ad.grad, ad.jacfwd):
        with pytest.raises(NotImplementedError, match="np.polymul.*np.convolve"):
            transform(f)(x)
    assert np.allclose(ad.grad(f)(np.array([0.5, 0.3])), [3.0, 3.0])
    assert np.allclose(ad.grad(lambda x: np.sum(np.convolve([1.0, 2.0], x)))(x), [3.0, 3.0])
