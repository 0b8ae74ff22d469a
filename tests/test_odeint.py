"""odeint on a stiff system (Robertson's kinetics): reverse mode integrates only the adjoint
backwards, along the stored forward solution, and agrees with forward mode and with finite
differences; integrator failures raise instead of returning garbage.

The non-stiff cases (check_grads to second order in both modes, batched Jacobians) live in
the case table (tests/cases_scipy.py).
"""
import warnings

import numpy as np
import pytest
import scipy.integrate as si

import autodiff as ad
from autodiff.scipy import integrate

K = np.array([0.04, 3e7, 1e4])
Y0 = np.array([1.0, 0.0, 0.0])


def robertson(y, t, k1, k2, k3):
    return [-k1 * y[0] + k3 * y[1] * y[2], k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2]


def robertson_jac(y, t, k1, k2, k3):
    return [[-k1, k3 * y[2], k3 * y[1]], [k1, -k3 * y[2] - 2 * k2 * y[1], -k3 * y[1]],
            [0.0, 2 * k2 * y[1], 0.0]]


def y40(k, y0, rtol=1e-10, atol=1e-12):
    """y(40) by autodiff's odeint (one output interval needs more than 500 steps)."""
    return integrate.odeint(robertson, y0, np.array([0.0, 40.0]), (k[0], k[1], k[2]),
                            rtol=rtol, atol=atol, mxstep=100000)[-1]


def _tight(k, y0):
    """y(40) by SciPy alone, with its exact Jacobian, at tolerances far below the checks."""
    return si.odeint(robertson, y0, [0.0, 40.0], args=tuple(k), Dfun=robertson_jac,
                     rtol=3e-14, atol=1e-20, mxstep=10 ** 6)[-1]


def _richardson(f, x, h):
    """The Jacobian of ``f`` at ``x`` by central differences with one Richardson step."""
    def central(h):
        return np.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)], -1)
    return (4 * central(h / 2) - central(h)) / 3


@pytest.fixture(scope="module")
def reference():
    """dy(40)/dk and dy(40)/dy0 by finite differences. The rates span 0.04 to 3e7, so k is
    stepped relatively (in log k); y0 absolutely and small, as y₂ < 0 must not run away."""
    jk = _richardson(lambda r: _tight(K * np.exp(r), Y0), np.zeros(3), 4e-4) / K
    jy = _richardson(lambda y0: _tight(K, y0), Y0, 4e-6)
    # the differences are converged: half the steps give the same numbers (in y0 to ~3e-7,
    # the solver's noise over a step of 2e-6 in the row of y₂ ≈ 1e-5)
    jk2 = _richardson(lambda r: _tight(K * np.exp(r), Y0), np.zeros(3), 2e-4) / K
    jy2 = _richardson(lambda y0: _tight(K, y0), Y0, 2e-6)
    np.testing.assert_allclose(jk2, jk, rtol=1e-8)
    np.testing.assert_allclose(jy2, jy, rtol=1e-6)
    return jk, jy


@pytest.mark.parametrize("jac", [ad.jacrev, ad.jacfwd], ids=["jacrev", "jacfwd"])
def test_robertson_jacobians_match_finite_differences(reference, jac):
    jk, jy = jac(y40, argnums=(0, 1))(K, Y0)
    # every entry to 1e-6 of itself, down to dy₂/dk₂ ≈ -1.1e-13
    np.testing.assert_allclose(jk, reference[0], rtol=1e-6, atol=0)
    np.testing.assert_allclose(jy, reference[1], rtol=1e-6, atol=0)
    # y₁ + y₂ + y₃ is conserved: exactly, whatever the solver's error
    np.testing.assert_allclose(np.sum(jk, axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(jy, axis=0), 1.0, rtol=0, atol=1e-12)


def test_robertson_grad_of_y1(reference):
    g = ad.grad(lambda k: y40(k, Y0)[0])(K)
    np.testing.assert_allclose(g, [-4.2476, -2.2884e-9, 1.3731e-5], rtol=1e-4)
    np.testing.assert_allclose(g, reference[0][0], rtol=1e-6, atol=0)


def test_robertson_reverse_equals_forward_at_several_times():
    """The adjoint jumps at every output time; its cotangents come in one batch."""
    t = np.array([0.0, 1e-3, 0.4, 4.0, 40.0])

    def ys(k, y0):
        return integrate.odeint(robertson, y0, t, tuple(k), rtol=1e-10, atol=1e-12,
                                mxstep=100000)
    rk, ry = ad.jacrev(ys, argnums=(0, 1))(K, Y0)
    fk, fy = ad.jacfwd(ys, argnums=(0, 1))(K, Y0)
    assert np.all(np.isfinite(rk)) and np.all(np.isfinite(ry))
    # relative to each output's own scale (entries at t = 0 are exactly zero)
    scale = np.max(np.abs(fk), axis=-1, keepdims=True) + 1e-300
    np.testing.assert_allclose(rk / scale, fk / scale, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ry, fy, rtol=1e-6, atol=1e-12)


def test_robertson_second_order_through_the_adjoint():
    """Forward-over-reverse and reverse-over-reverse (the adjoint's own rules) on the stiff
    system agree with forward-over-forward (sensitivities of sensitivities, all integrated
    forwards): none of them integrates the state backwards."""
    def y1(r):                           # y₁(40) as a function of log k
        return y40(K * np.exp(r), Y0, rtol=1e-9, atol=1e-12)[0]
    x, v = np.zeros(3), np.array([0.3, -0.5, 0.8])
    ff = ad.jvp(lambda x: ad.jvp(y1, (x,), (v,))[1], (x,), (v,))[1]
    fr = ad.hvp(y1, x, v) @ v
    rr = ad.grad(lambda x: ad.grad(y1)(x) @ v)(x) @ v
    np.testing.assert_allclose([fr, rr], [ff, ff], rtol=1e-5)


def _pendulum(y, t, w, c):
    return [y[1], -w ** 2 * np.sin(y[0]) - c * y[1]]


def test_second_order_with_batched_cotangents_and_tangents():
    """jacfwd(jacrev) and jacrev(jacrev) of a vector output: the adjoint's rules meet a
    batch of cotangents (its input g) and a batch of directions at once."""
    t = np.array([0.0, 0.5, 1.2])

    def f(x):
        out = integrate.odeint(_pendulum, x[:2], t, (x[2], x[3]), rtol=1e-11, atol=1e-11)
        return out[1:].ravel()
    x = np.array([0.7, -0.2, 1.3, 0.4])
    ff = ad.jacfwd(ad.jacfwd(f))(x)
    fr = ad.jacfwd(ad.jacrev(f))(x)
    rr = ad.jacrev(ad.jacrev(f))(x)
    rf = ad.jacrev(ad.jacfwd(f))(x)
    num = _richardson(ad.jacfwd(f), x, 1e-3)
    np.testing.assert_allclose(ff, num, rtol=1e-6, atol=1e-7)
    for h in (fr, rr, rf):
        np.testing.assert_allclose(h, ff, rtol=1e-6, atol=1e-8)


def test_decreasing_times():
    t = np.array([1.5, 0.8, 0.0])

    def f(x):
        return integrate.odeint(_pendulum, x[:2], t, (x[2], 0.3), rtol=1e-11, atol=1e-11)
    x = np.array([0.5, 0.1, 1.1])
    np.testing.assert_allclose(ad.jacrev(f)(x), _richardson(f, x, 1e-3),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ad.jacrev(f)(x), ad.jacfwd(f)(x), rtol=1e-7, atol=1e-10)


# ----- failures raise -----
@pytest.mark.parametrize("how", ["solve", "jacfwd", "jacrev"])
def test_excess_work_raises_instead_of_warning(how):
    def f(k):
        return integrate.odeint(robertson, Y0, np.array([0.0, 40.0]), tuple(k), rtol=1e-10,
                                atol=1e-12, mxstep=20)[-1]
    run = {"solve": f, "jacfwd": ad.jacfwd(f), "jacrev": ad.jacrev(f)}[how]
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # SciPy's ODEintWarning must not escape
        with pytest.raises(RuntimeError, match=r"odeint failed \(LSODA: Excess work.*mxstep"):
            run(K)


def test_default_mxstep_on_a_long_stiff_interval_raises():
    """The issue's setting: one output interval [0, 40] at rtol 1e-10 needs more than
    LSODA's 500 steps; SciPy only warns and returns a wrong y(40)."""
    with pytest.raises(RuntimeError, match="odeint failed"):
        integrate.odeint(robertson, Y0, np.array([0.0, 40.0]), tuple(K), rtol=1e-10,
                         atol=1e-12)


def test_successful_solve_matches_scipy():
    t = np.array([0.0, 0.4, 4.0, 40.0])
    ours = integrate.odeint(robertson, Y0, t, tuple(K), rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(ours, si.odeint(robertson, Y0, t, tuple(K), rtol=1e-8,
                                                  atol=1e-12))


# ----- the reusable pieces: dense forward solution, backward adjoint with quadrature -----
@pytest.mark.parametrize("method", ["LSODA", "BDF", "Radau"])
def test_adjoint_sweep_against_the_exact_solution(method):
    """y' = -p ⊙ y: y(t) = e^{-pt} y0, ∂y(t)/∂y0 = e^{-pt}, ∂y(t)/∂p = -t e^{-pt} y0.
    LSODA gets the dense Jacobian of the adjoint system, BDF and Radau a sparse one."""
    p, y0 = np.array([0.5, 300.0]), np.array([1.0, 2.0])          # stiff: the Jacobian is used
    t = np.array([0.0, 0.01, 1.0])
    g = np.random.default_rng(0).standard_normal((4, 3, 2))

    def jac_yp(y, s):
        return np.hstack([np.diag(-p), np.diag(-y)])
    ysol = integrate.dense_solution(lambda s, y: -p * y, lambda s, y: np.diag(-p), (0.0, 1.0),
                                    y0, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(ysol(0.01), np.exp(-0.01 * p) * y0, rtol=1e-8, atol=1e-13)
    lam, a = integrate.adjoint_sweep(jac_yp, ysol, t, g, 2, rtol=1e-11, atol=1e-13,
                                     method=method)
    e = np.exp(-np.outer(t, p))                                   # (T, n)
    np.testing.assert_allclose(lam, np.einsum("bti,ti->bi", g, e), rtol=1e-8, atol=1e-11)
    np.testing.assert_allclose(a, np.einsum("bti,ti->bi", g, -t[:, None] * e * y0),
                               rtol=1e-8, atol=1e-11)


def test_adjoint_sweep_refuses_a_non_finite_adjoint():
    ysol = integrate.dense_solution(lambda s, y: -y, lambda s, y: -np.eye(1), (0.0, 1.0),
                                    np.ones(1), rtol=1e-8, atol=1e-10)
    with pytest.raises(RuntimeError, match="adjoint solve failed"):
        integrate.adjoint_sweep(lambda y, s: np.array([[np.nan, 1.0]]), ysol,
                                np.array([0.0, 1.0]), np.ones((1, 2, 1)), 1,
                                rtol=1e-8, atol=1e-10)
