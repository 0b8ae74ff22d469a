"""Regression tests for silent wrong numbers and crashes in the op families (issue 9):
each test fails on the defect it names."""
import numpy as np
import pytest

import autodiff as ad
import autodiff.numpy as anp


# ----- 1. Mixed partials of x**y at y = 0 -----
@pytest.mark.parametrize("y", [0.0, 1.0, 2.5])
def test_power_mixed_partials_every_order(y):
    x = 4.0
    f = lambda a, b: a ** b                                       # noqa: E731
    # ∂²/∂x∂y x**y = x**(y-1)·(1 + y log x): 1/x at y = 0.
    want = x ** (y - 1) * (1 + y * np.log(x))
    assert np.isclose(ad.grad(ad.grad(f, 0), 1)(x, y), want)
    assert np.isclose(ad.grad(ad.grad(f, 1), 0)(x, y), want)
    hess = np.array([[y * (y - 1) * x ** (y - 2), want], [want, x ** y * np.log(x) ** 2]])
    g = lambda v: v[0] ** v[1]                                     # noqa: E731
    v = np.array([x, y])
    for h in (ad.hessian(g), ad.jacfwd(ad.jacrev(g)), ad.jacrev(ad.jacfwd(g)),
              ad.jacfwd(ad.jacfwd(g)), ad.jacrev(ad.jacrev(g))):
        np.testing.assert_allclose(h(v), hess, rtol=1e-12, atol=1e-12)
    ad.check_grads(f, (np.array([x, 2.0]), np.array([y, y])), order=2)


def test_power_zero_base_zero_exponent_convention():
    # d/dx x**0 = 0 at x = 0 too (JAX), for arrays of exponents.
    gx = ad.grad(lambda a, b: np.sum(a ** b), 0)(np.array([0.0, 2.0]), np.array([0.0, 0.0]))
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
