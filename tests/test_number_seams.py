"""Wrong numbers the seam fuzzer found: NaN derivatives where the function is constant or
smooth, lost second derivatives, and the fuzzer's own wrong references (each spec below
failed before its fix). Engine defects are checked against numerical derivatives in both
modes; the fuzzer specs rerun the whole program through ``seams.check``."""
import copy
import os
import sys

import numpy as np
import pytest
import scipy.special as sp

import autodiff as ad
import autodiff.numpy as anp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seams  # noqa: E402


def _all_modes(f, x):
    """grad, jacfwd, jvp along ones, hessian (forward) and jacrev(grad) of a scalar f."""
    x = np.asarray(x, dtype=float)
    return (ad.grad(f)(x), ad.jacfwd(f)(x), ad.jvp(f, (x,), (np.ones_like(x),))[1],
            ad.hessian(f)(x), ad.jacrev(ad.grad(f))(x))


def _fd(f, x, h=1e-5):
    x = np.asarray(x, dtype=float)
    e = np.eye(x.size).reshape((x.size,) + x.shape)
    return np.array([(f(x + h * d) - f(x - h * d)) / (2 * h) for d in e]).reshape(x.shape)


# ----- 1. std, var-based std and norms where the sum of squares is 0 -----
CONSTANT_AT_ZERO = {
    # std of equal values: identically 0 in x (the fuzzer's case[nanstd-one-value])
    "std-equal": lambda x: np.std(anp.stack([x, x])),
    "nanstd-equal": lambda x: np.sum(np.nanstd(np.where([[1, 0], [1, 1]], x, np.nan), axis=0)),
    "std-ddof-equal": lambda x: np.std(anp.stack([x, x, x]), ddof=1),
    "std-complex-equal": lambda x: np.std(anp.stack([x, x]) * (1 + 2j)),
    # a norm or std of a vector that does not depend on x at all
    "norm-const": lambda x: np.linalg.norm(np.zeros((2, 0)) @ np.zeros(0) + 0.0 * x) + x,
    "norm3-const": lambda x: np.linalg.norm(0.0 * anp.stack([x, x]), 3) + x,
    "norm-fro-const": lambda x: np.linalg.norm(0.0 * anp.stack([anp.stack([x, x])] * 2)) + x,
}


@pytest.mark.parametrize("name", sorted(CONSTANT_AT_ZERO))
def test_std_and_norm_at_zero_spread_are_not_nan(name):
    f = CONSTANT_AT_ZERO[name]
    for x in (0.7, 0.0):
        want = _fd(f, x)
        g, jf, jv, h, hr = _all_modes(f, x)
        for got in (g, jf, jv):
            np.testing.assert_allclose(got, want, atol=1e-9)
        for got in (h, hr):                 # the function is x or 0: no curvature
            np.testing.assert_allclose(got, 0.0, atol=1e-9)


def test_std_and_norm_values_and_smooth_derivatives_unchanged():
    x = np.array([0.3, -1.2, 2.0])
    for f in (np.std, lambda y: np.std(y, ddof=1), np.linalg.norm,
              lambda y: np.linalg.norm(y, 3), lambda y: np.nanstd(y)):
        assert f(ad.Variable(x)).value == pytest.approx(f(x), rel=1e-15)
        ad.check_grads(lambda y: f(y) ** 2 + f(y), (x,), order=2)


def test_norm_at_zero_vector_takes_the_zero_subgradient_in_both_modes():
    """A kink (‖tv‖ = |t|·‖v‖): the symmetric derivative 0, as abs'(0) = 0, in every mode."""
    z = np.zeros(3)
    for f in (np.linalg.norm, lambda y: np.std(y), lambda y: np.linalg.norm(y, 3)):
        np.testing.assert_array_equal(ad.grad(f)(z), 0.0)
        np.testing.assert_array_equal(ad.jacfwd(f)(z), 0.0)


# ----- 2. rgamma at the poles of gamma -----
@pytest.mark.parametrize("x0", [0.0, -1.0, -2.0])
def test_rgamma_derivatives_at_the_poles_of_gamma(x0):
    # 1/Γ is entire: near -n it is (-1)^n n! (x + n) + ...; no 0·inf there
    assert ad.grad(sp.rgamma)(x0) == pytest.approx((-1) ** int(-x0) * sp.factorial(-x0))
    h = 1e-4
    second = (sp.rgamma(x0 + h) - 2 * sp.rgamma(x0) + sp.rgamma(x0 - h)) / h ** 2
    assert ad.grad(ad.grad(sp.rgamma))(x0) == pytest.approx(second, rel=1e-6)
    x = np.array([x0, 0.5, 2.0])
    ad.check_grads(lambda y: sp.rgamma(y), (x,), order=2)
    _, t = ad.jvp(sp.rgamma, (x,), (np.ones(3),))
    assert np.all(np.isfinite(t))


# ----- 3. prod with several zeros: the second derivative -----
def test_prod_second_derivative_with_two_zeros():
    x = np.array([-0.9, 0.0, 0.0])
    want = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, -0.9], [0.0, -0.9, 0.0]])
    np.testing.assert_allclose(ad.hessian(np.prod)(x), want)
    np.testing.assert_allclose(ad.jacrev(ad.grad(np.prod))(x), want)
    m = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 3.0]])

    def f(y):
        return np.sum(np.sin(np.prod(y, axis=1))) + np.sum(np.prod(y, axis=0) ** 2)
    H = ad.hessian(f)(m).reshape(6, 6)
    g = lambda v: ad.grad(f)(v.reshape(2, 3)).ravel()  # noqa: E731
    num = np.array([(g(m.ravel() + 1e-6 * d) - g(m.ravel() - 1e-6 * d)) / 2e-6
                    for d in np.eye(6)])
    np.testing.assert_allclose(H, num, atol=1e-6)
    np.testing.assert_allclose(ad.jacrev(ad.grad(f))(m).reshape(6, 6), num, atol=1e-6)


# ----- 4. the fuzzer's references (specs from the 20,000-program run) -----
FUZZER_SPECS = {
    # std over equal values: NaN tangent where the function is identically 0
    "nanstd-one-value": (0, (0, 0), False, False, 61016, ((1, 36805, 31059),), 0),
    "nanstd-then-custom-vjp": (0, (0, 0), False, False, 19072,
                               ((1, 46309, 64284), (0, 61389, 7979)), 0),
    "complex-var-of-zeros": (3, (5, 7), False, True, 29386,
                             ((0, 26648, 48323), (0, 27789, 4453)), 0),
    "rgamma-at-zero": (4, (3, 7), False, True, 21231, ((1, 3069, 29278), (1, 9387, 11844)), 5),
    "prod-two-zeros": (0, (2, 4), False, True, 42470, ((0, 37491, 20634),), 5),
    # min over ties of squares: no Hessian exists (the block sits at its kink)
    "min-ties": (2, (4, 3), False, True, 45005,
                 ((1, 17533, 20620), (1, 63582, 457), (0, 35430, 29772)), 4),
    # a value-dependent output shape (setdiff1d, unique at ties): no reference
    "setdiff1d-shape": (3, (6, 4), False, True, 45150,
                        ((0, 65137, 48298), (1, 8913, 11568)), 7),
    "unique-ties": (1, (1, 8), False, True, 8718, ((1, 64640, 56251), (0, 59835, 44884)), 4),
    # copy.copy of an eager leaf is a new leaf (PyTorch)
    "eager-leaf-copy": (0, (0, 0), False, False, 48714, ((0, 59442, 29896),), 1),
    # no tangent reaches the custom_vjp (it reads a constant computed from a (0,) array)
    "custom-vjp-constant-input": (2, (3, 5), False, False, 22502,
                                  ((0, 57481, 22368), (0, 25437, 5610)), 5),
}


@pytest.mark.parametrize("name", sorted(FUZZER_SPECS))
def test_fuzzer_programs_that_failed(name):
    seams.check(FUZZER_SPECS[name])


def test_eager_copy_of_a_leaf_is_a_new_leaf():
    """The semantics the fuzzer's eager check now allows for: the copy's gradient goes to
    the copy, as PyTorch's copy.deepcopy of a leaf tensor."""
    x = ad.Variable(np.array(0.3))
    c = copy.copy(x)
    (c * x).backward()
    assert x.grad == pytest.approx(0.3) and c.grad == pytest.approx(0.3)
    y = ad.Variable(np.array(0.3))
    (copy.copy(y * 1.0) * y).backward()       # a recorded copy: both factors reach y
    assert y.grad == pytest.approx(0.6)


def test_forward_mode_still_refuses_a_custom_vjp_a_tangent_reaches():
    @ad.custom_vjp
    def f(x):
        return np.tanh(ad.stop_gradient(x))
    f.defvjp(lambda x: (np.tanh(x), x), lambda r, g: (g,))
    with pytest.raises(TypeError, match="custom_vjp"):
        ad.jvp(lambda x: f(x * 2.0), (np.ones(2),), (np.ones(2),))
    i = [b.name for b in seams.SEAM_BLOCKS].index("custom_vjp_matrix")
    p = seams.Program((0, (2, 2), False, False, 1, ((0, i, 3),), 0))
    assert seams._Checker(p, np.random.default_rng(0)).tangent_reaches_vjp()
    p = seams.Program((0, (5, 5), False, False, 1, ((0, i, 3),), 0))
    assert not seams._Checker(p, np.random.default_rng(0)).tangent_reaches_vjp()
