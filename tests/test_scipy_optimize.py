"""autodiff.scipy.optimize: SciPy's solvers, differentiable in ``args`` (API.md "Implicit
functions, solvers and ODEs").

Every derivative is checked against finite differences of SciPy's own solver at tight
tolerances (``check_grads`` re-runs the solve at shifted arguments), in both modes and
batched, second order where it applies. The issue's three examples are here: a Fermi level
by ``brentq``, a 1-D Bratu problem by ``root``, a mean-field magnetisation by
``fixed_point``. Plain-value call counts show that SciPy's solve runs once per derivative
call; a solver that does not converge raises.
"""
import numpy as np
import pytest
import scipy.optimize as so

import autodiff as ad
from autodiff.scipy import optimize as aso
from autodiff.tree import flatten

RTOL, ATOL = 1e-6, 1e-8


def close(a, b, rtol=1e-8, atol=1e-10):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=rtol, atol=atol)


def counting(f):
    """``f`` with a count of its calls on plain values only: SciPy's own calls."""
    def g(x, *a, **k):
        if not any(type(v) in (ad.Dual, ad.Variable) for v in flatten((x, a, k))[0]):
            g.plain += 1
        return f(x, *a, **k)
    g.plain = 0
    return g


# ----- brentq: the Fermi level mu with sum_i f_FD(e_i, mu, T) = N ------------------------
E = np.linspace(-1.0, 1.0, 12) + 0.05 * np.sin(np.arange(12.0))
NEL = 5.3


def occupancy(mu, e, T, n):
    return np.sum(1.0 / (1.0 + np.exp((e - mu) / T))) - n


def fermi_level(e, T, n=NEL):
    return aso.brentq(occupancy, -3.0, 3.0, args=(e, T, n), xtol=1e-14)


def test_brentq_fermi_level_against_finite_differences_and_theory():
    T = 0.1
    mu = fermi_level(E, T)
    assert type(mu) is float                      # as SciPy, when nothing is tracked
    f = 1 / (1 + np.exp((E - mu) / T))
    w = f * (1 - f)
    close(ad.grad(fermi_level, argnums=0)(E, T), w / w.sum())          # d mu / d e_i
    close(ad.grad(fermi_level, argnums=1)(E, T), -np.sum(w * (E - mu)) / (T * w.sum()))
    close(ad.grad(fermi_level, argnums=2)(E, T, NEL), T / w.sum())      # d mu / d N
    ad.check_grads(fermi_level, (E, T), order=2, rtol=RTOL, atol=ATOL)
    H = ad.hessian(fermi_level, argnums=(0, 1))(E, T)
    close(H[0][1], ad.jacrev(ad.grad(fermi_level, argnums=0), argnums=1)(E, T), rtol=1e-9)


def test_brentq_runs_once_per_derivative_and_keeps_scipy_outputs():
    g = counting(occupancy)
    so.brentq(g, -3.0, 3.0, args=(E, 0.1, NEL))
    n_solve = g.plain
    g.plain = 0
    mu = lambda T: aso.brentq(g, -3.0, 3.0, args=(E, T, NEL))
    for transform in (ad.grad, ad.jacfwd, ad.jacrev, ad.hessian):
        g.plain = 0
        transform(mu)(0.1)
        assert g.plain == n_solve
    x, r = aso.brentq(occupancy, -3.0, 3.0, args=(E, 0.1, NEL), full_output=True)
    assert isinstance(r, so.RootResults) and r.converged and r.root == x
    tracked = ad.grad(lambda T: aso.brentq(occupancy, -3.0, 3.0, args=(E, T, NEL),
                                           full_output=True)[1].root)(0.1)
    close(tracked, ad.grad(mu)(0.1))


def test_brentq_failures_raise():
    with pytest.raises(ValueError, match="different signs"):          # SciPy's own error
        aso.brentq(occupancy, 2.0, 3.0, args=(E, 0.1, NEL))
    with pytest.raises(RuntimeError):
        aso.brentq(occupancy, -3.0, 3.0, args=(E, 0.1, NEL), maxiter=2)
    with pytest.raises(aso.ConvergenceError, match="brentq did not converge"):
        ad.grad(lambda T: aso.brentq(occupancy, -3.0, 3.0, args=(E, T, NEL), maxiter=2,
                                     disp=False))(0.1)


def test_bracket_gets_no_derivative():
    g = ad.grad(lambda a: aso.brentq(lambda x, c: x ** 3 - c, a, 4.0, args=(8.0,)))(0.0)
    assert g == 0.0


# ----- root: the 1-D Bratu problem -u'' = lambda e^u, u(0) = u(1) = 0 ---------------------
NB = 30
HB = 1.0 / (NB + 1)


def bratu(u, lam):
    up = np.concatenate([u[1:], np.zeros(1)])
    um = np.concatenate([np.zeros(1), u[:-1]])
    return (2 * u - up - um) / HB ** 2 - lam * np.exp(u)


def bratu_u(lam, method="hybr"):
    res = aso.root(bratu, np.zeros(NB), args=(lam,), method=method, tol=1e-13)
    return res.x


@pytest.mark.parametrize("method", ["hybr", "lm"])
def test_root_bratu_du_dlambda(method):
    lam = 1.0
    u = bratu_u(lam, method)
    close(bratu(u, lam), 0, atol=1e-9)
    A = (2 * np.eye(NB) - np.eye(NB, k=1) - np.eye(NB, k=-1)) / HB ** 2 - np.diag(lam * np.exp(u))
    want = np.linalg.solve(A, np.exp(u))
    close(ad.jacfwd(lambda l: bratu_u(l, method))(lam), want)
    close(ad.jacrev(lambda l: bratu_u(l, method))(lam), want)
    ad.check_grads(lambda l: bratu_u(l, method), (lam,), order=2, rtol=RTOL, atol=ATOL)


def test_root_jac_comes_from_the_engine():
    g = counting(bratu)
    ours = aso.root(g, np.zeros(NB), args=(1.0,), tol=1e-13)
    theirs = so.root(bratu, np.zeros(NB), args=(1.0,), tol=1e-13)
    assert ours.njev >= 1 and ours.nfev < theirs.nfev
    close(ours.x, theirs.x, rtol=1e-9)
    assert isinstance(ours, so.OptimizeResult) and ours.success
    n_solve = g.plain
    g.plain = 0
    ad.grad(lambda l: np.sum(aso.root(g, np.zeros(NB), args=(l,), tol=1e-13).x))(1.0)
    assert g.plain == n_solve


def test_root_with_user_jacobian_and_jac_true():
    f = lambda x, a: ad.numpy.stack([x[0] ** 2 + x[1] - a, x[1] - x[0] * a])

    def fj(x, a):
        # with jac=True, fun also runs on tracked values (its Jacobian output unused)
        return f(x, a), ad.numpy.array([[2 * x[0], 1.0], [-a, 1.0]])
    g1 = lambda a: aso.root(f, [1.0, 1.0], args=(a,), tol=1e-13).x
    g2 = lambda a: aso.root(fj, [1.0, 1.0], args=(a,), jac=True, tol=1e-13).x
    close(ad.jacfwd(g1)(2.0), ad.jacfwd(g2)(2.0))
    ad.check_grads(g2, (2.0,), order=1, rtol=RTOL, atol=ATOL)


def test_root_failure_raises():
    with pytest.raises(aso.ConvergenceError, match="root"):
        aso.root(lambda x, a: x ** 2 + a, [1.0], args=(1.0,))


# ----- fsolve --------------------------------------------------------------------------
def test_fsolve_tuple_args_full_output_and_failure():
    f = lambda x, p, q: np.tanh(x) + p[0] * x - q
    x = lambda p, q: aso.fsolve(f, np.zeros(3), args=(p, q), xtol=1e-13)
    p, q = (0.7,), np.array([0.1, 0.5, -0.3])
    ad.check_grads(x, (p, q), order=2, rtol=RTOL, atol=ATOL)
    out = aso.fsolve(f, np.zeros(3), args=(p, q), full_output=True)
    assert len(out) == 4 and out[2] == 1 and out[0].shape == (3,)
    with pytest.raises(aso.ConvergenceError, match="fsolve"):
        aso.fsolve(lambda x: x ** 2 + 1, [1.0])


# ----- root_scalar -----------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(bracket=[0.0, 3.0]),
                                dict(bracket=[0.0, 3.0], method="toms748"),
                                dict(x0=1.0), dict(x0=1.0, method="halley"),
                                dict(x0=1.0, x1=2.0)])
def test_root_scalar_methods(kw):
    f = lambda x, a, b: x ** 3 + b * x - a
    r = lambda a, b: aso.root_scalar(f, args=(a, b), xtol=1e-14, **kw).root
    ad.check_grads(r, (2.0, 0.5), order=2, rtol=RTOL, atol=ATOL)
    x = r(2.0, 0.5)
    close(ad.grad(r, argnums=(0, 1))(2.0, 0.5), (1 / (3 * x ** 2 + 0.5), -x / (3 * x ** 2 + 0.5)))


def test_root_scalar_newton_uses_engine_fprime_and_failure_raises():
    sol = aso.root_scalar(lambda x: x ** 2 - 2, x0=1.0)
    assert sol.method == "newton" and sol.converged
    close(sol.root, np.sqrt(2))
    assert isinstance(sol, so.RootResults)
    with pytest.raises(RuntimeError):
        aso.root_scalar(lambda x, a: x ** 2 - a, args=(2.0,), x0=1.0, maxiter=2)


# ----- fixed_point: the mean-field magnetisation m = tanh(beta (J m + h)) -----------------
_rng = np.random.default_rng(5)
_J = _rng.standard_normal((8, 8)) * 0.25
JM = (_J + _J.T) / 2


def T_mf(m, beta, h):
    return np.tanh(beta * (JM @ m + h))


def magnetisation(beta, h):
    # SciPy's default del2 fails ~10 % of these solves near convergence (it raises, as
    # SciPy does); plain iteration converges every time for this contraction
    return aso.fixed_point(T_mf, np.zeros(8), args=(beta, h), xtol=1e-12, method="iteration",
                           maxiter=2000)


def test_fixed_point_mean_field_dm_dbeta_dm_dh():
    h = np.linspace(0.2, 0.6, 8)        # magnetisations away from 0 (del2's relative test)
    beta = 0.9
    m = magnetisation(beta, h)
    D = np.diag(1 - m ** 2)
    A = np.eye(8) - beta * D @ JM
    close(ad.jacrev(magnetisation, argnums=1)(beta, h), np.linalg.solve(A, beta * D))
    close(ad.jacfwd(magnetisation, argnums=0)(beta, h), np.linalg.solve(A, D @ (JM @ m + h)))
    ad.check_grads(magnetisation, (beta, h), order=2, rtol=RTOL, atol=ATOL)


def test_fixed_point_failure_raises():
    with pytest.raises(RuntimeError, match="converge"):
        aso.fixed_point(lambda x, a: x + a, 0.5, args=(3.0,), maxiter=20)


# ----- minimize --------------------------------------------------------------------------
Q = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 1.5]])


def objective(x, a, b):
    return np.sum((x - a) ** 4) / 4 + 0.5 * x @ Q @ x - b @ x


A0, B0 = np.array([0.2, -0.4, 0.6]), np.array([1.0, 0.5, -0.7])
TIGHT = {"BFGS": {"gtol": 1e-8}, "Newton-CG": {"xtol": 1e-14},
         "trust-exact": {"gtol": 1e-12}, "trust-krylov": {"gtol": 1e-12},
         "L-BFGS-B": {"gtol": 1e-12, "ftol": 1e-15}, "SLSQP": {"ftol": 1e-14}}


@pytest.mark.parametrize("method", list(TIGHT))
def test_minimize_stationarity_derivatives(method):
    def xstar(a, b):
        return aso.minimize(objective, np.zeros(3), args=(a, b), method=method,
                            options=TIGHT[method]).x
    ad.check_grads(xstar, (A0, B0), order=1, rtol=1e-5, atol=1e-7)
    x = xstar(A0, B0)
    H = np.diag(3 * (x - A0) ** 2) + Q
    close(ad.jacrev(xstar, argnums=1)(A0, B0), np.linalg.inv(H), rtol=1e-6)
    close(ad.jacfwd(xstar, argnums=1)(A0, B0), np.linalg.inv(H), rtol=1e-6)


def test_minimize_value_is_differentiable_and_second_order():
    fstar = lambda a, b: aso.minimize(objective, np.zeros(3), args=(a, b), method="BFGS",
                                      options={"gtol": 1e-8}).fun
    x = aso.minimize(objective, np.zeros(3), args=(A0, B0), method="BFGS",
                     options={"gtol": 1e-8}).x
    close(ad.grad(fstar, argnums=1)(A0, B0), -x, rtol=1e-7)        # envelope theorem
    ad.check_grads(fstar, (A0, B0), order=2, rtol=1e-5, atol=1e-7)


def test_minimize_fills_jac_and_hess_from_the_engine():
    g = counting(objective)
    res = aso.minimize(g, np.zeros(3), args=(A0, B0), method="BFGS")
    assert res.success and res.njev >= 1 and res.nfev == res.njev   # no finite differences
    assert g.plain == res.nfev
    res = aso.minimize(objective, np.zeros(3), args=(A0, B0), method="trust-exact")
    assert res.success and res.nhev >= 1                          # SciPy needs hess here
    res = aso.minimize(objective, np.zeros(3), args=(A0, B0), method="dogleg")
    assert res.success and res.nhev >= 1
    res = aso.minimize(objective, np.zeros(3), args=(A0, B0), method="Newton-CG")
    assert res.success and res.nhev >= 1                          # hessp
    res = aso.minimize(objective, np.zeros(3), args=(A0, B0), method="Nelder-Mead")
    assert res.success


def test_minimize_with_active_bounds():
    a = np.array([0.5, -1.0, 2.0])
    f = lambda x, a: 0.5 * (x - a) @ Q @ (x - a)

    def xstar(a):
        return aso.minimize(f, np.full(3, 0.5), args=(a,), method="L-BFGS-B",
                            bounds=[(0.0, 1.0)] * 3, options={"gtol": 1e-12, "ftol": 1e-15}).x
    x = xstar(a)
    assert x[1] == 0.0 and x[2] == 1.0 and 0 < x[0] < 1
    J = ad.jacrev(xstar)(a)
    close(J, [[1, Q[0, 1] / Q[0, 0], Q[0, 2] / Q[0, 0]], [0, 0, 0], [0, 0, 0]], rtol=1e-7)
    close(ad.jacfwd(xstar)(a), J)
    ad.check_grads(xstar, (a,), order=1, rtol=1e-5, atol=1e-7)
    bnd = so.Bounds([0, 0, 0], [1, 1, 1])
    close(ad.jacrev(lambda a: aso.minimize(f, np.full(3, 0.5), args=(a,), bounds=bnd,
                                           options={"gtol": 1e-12, "ftol": 1e-15}).x)(a), J)


@pytest.mark.filterwarnings("ignore:delta_grad")     # trust-constr's quasi-Newton Hessians
def test_minimize_with_constraints_through_kkt():
    f = lambda x, a: 0.5 * (x - a) @ Q @ (x - a)

    def xstar(a, s, method="SLSQP"):
        cons = [{"type": "eq", "fun": lambda x, s: np.sum(x) - s, "args": (s,)},
                {"type": "ineq", "fun": lambda x: x[0] - 0.2},          # active
                {"type": "ineq", "fun": lambda x: 5.0 - x[1]}]          # inactive
        return aso.minimize(f, np.zeros(3), args=(a,), constraints=cons, method=method,
                            options={"ftol": 1e-14} if method == "SLSQP" else
                            {"gtol": 1e-12, "xtol": 1e-14}).x
    a = np.array([0.0, 1.0, 0.5])
    x = xstar(a, 1.0)
    close(x[0], 0.2)
    close(np.sum(x), 1.0)
    ad.check_grads(xstar, (a, 1.0), order=1, rtol=1e-5, atol=1e-7)
    Ja, Js = ad.jacrev(xstar, argnums=(0, 1))(a, 1.0)
    close(Ja[0], 0.0, atol=1e-12)                                      # x0 = 0.2 is pinned
    close(Js[0], 0.0, atol=1e-12)
    close(Js.sum(), 1.0)                                               # sum(x) = s
    close(ad.jacfwd(xstar, argnums=1)(a, 1.0), Js)
    close(ad.jacrev(lambda a: xstar(a, 1.0, "trust-constr"))(a), Ja, rtol=1e-5, atol=1e-7)


def test_minimize_refusals_and_failures():
    lin = so.LinearConstraint(np.ones((1, 3)), -np.inf, 1.0)
    res = aso.minimize(objective, np.zeros(3), args=(A0, B0), constraints=lin)
    assert res.success                                              # nothing to differentiate
    with pytest.raises(NotImplementedError, match="LinearConstraint"):
        ad.grad(lambda b: aso.minimize(objective, np.zeros(3), args=(A0, b),
                                       constraints=lin).fun)(B0)
    weak = {"type": "ineq", "fun": lambda x: x[0]}       # active with a zero multiplier
    with pytest.raises(ValueError, match="complementarity"):
        ad.jacrev(lambda a: aso.minimize(lambda x, a: np.sum((x - a) ** 2), [0.5, 0.5],
                                         args=(a,), constraints=weak,
                                         options={"ftol": 1e-14}).x)(np.array([0.0, 1.0]))
    with pytest.raises(aso.ConvergenceError, match="minimize"):
        aso.minimize(objective, np.zeros(3), args=(A0, B0), method="BFGS",
                     options={"maxiter": 1})
    with pytest.raises(ValueError, match="not differentiable"):   # on a bound, zero multiplier
        ad.grad(lambda a: np.sum(aso.minimize(lambda x, a: np.sum((x - a) ** 2), [0.5],
                                              args=(a,), bounds=[(0.0, 1.0)]).x))(np.zeros(1))


# ----- least_squares ----------------------------------------------------------------------
TT = np.linspace(0, 3, 15)
YY = 2.0 * np.exp(-1.3 * TT) + 0.5 + 0.02 * np.sin(7 * TT)


def resid(c, t, y, scale=1.0):
    return (c[0] * np.exp(-c[1] * t) + c[2] - y) * scale


LSQ = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15)


@pytest.mark.parametrize("loss", ["linear", "soft_l1", "cauchy"])
def test_least_squares_normal_equations(loss):
    def fit(y, scale):
        return aso.least_squares(resid, [1.0, 1.0, 0.0], args=(TT, y), kwargs={"scale": scale},
                                 loss=loss, f_scale=0.1, **LSQ).x
    ad.check_grads(fit, (YY, 1.0), order=1, rtol=1e-5, atol=1e-7)
    close(ad.jacfwd(fit)(YY, 1.0), ad.jacrev(fit)(YY, 1.0))
    if loss == "linear":
        c = fit(YY, 1.0)
        J = ad.jacfwd(resid)(c, TT, YY)
        r = resid(c, TT, YY)
        H = J.T @ J + np.einsum("i,ijk->jk", r, ad.jacfwd(ad.jacfwd(resid))(c, TT, YY))
        close(ad.jacrev(fit)(YY, 1.0), np.linalg.solve(H, J.T), rtol=1e-7)


def test_least_squares_outputs_jac_and_bounds():
    g = counting(resid)
    res = aso.least_squares(g, [1.0, 1.0, 0.0], args=(TT, YY))
    theirs = so.least_squares(resid, [1.0, 1.0, 0.0], args=(TT, YY))
    assert res.success and res.njev >= 1 and g.plain == res.nfev < theirs.nfev + theirs.njev * 3
    close(res.x, theirs.x, rtol=1e-6)
    cost = lambda y: aso.least_squares(resid, [1.0, 1.0, 0.0], args=(TT, y), **LSQ).cost
    c = aso.least_squares(resid, [1.0, 1.0, 0.0], args=(TT, YY), **LSQ).x
    close(ad.grad(cost)(YY), -resid(c, TT, YY), rtol=1e-7)          # envelope theorem
    bounded = lambda y: aso.least_squares(resid, [1.0, 1.0, 0.6], args=(TT, y),
                                          bounds=([0, 0, 0.6], [5, 5, 5]), **LSQ).x
    x = bounded(YY)
    close(x[2], 0.6, rtol=1e-15)
    J = ad.jacrev(bounded)(YY)
    close(J[2], 0.0)
    ad.check_grads(bounded, (YY,), order=1, rtol=1e-5, atol=1e-7)


def test_least_squares_failure_raises():
    with pytest.raises(aso.ConvergenceError, match="least_squares"):
        aso.least_squares(resid, [1.0, 1.0, 0.0], args=(TT, YY), max_nfev=2)


def test_untracked_calls_match_scipy():
    assert aso.brentq(lambda x: x - 0.25, 0, 1) == so.brentq(lambda x: x - 0.25, 0, 1)
    close(aso.fixed_point(lambda x: np.cos(x), 0.5), so.fixed_point(lambda x: np.cos(x), 0.5))


# ----- one SciPy solve per derivative call, for every wrapper -----------------------------
def _solves():
    mf_h = np.linspace(0.2, 0.6, 8)
    return {
        "root": (bratu, lambda g, l: aso.root(g, np.zeros(NB), args=(l,), tol=1e-12).x, 1.0),
        "fsolve": (bratu, lambda g, l: aso.fsolve(g, np.zeros(NB), args=(l,)), 1.0),
        "root_scalar": (lambda x, a: x ** 3 - a,
                        lambda g, a: aso.root_scalar(g, args=(a,), x0=1.0).root, 2.0),
        "minimize": (lambda x, a: objective(x, A0, a * B0),
                     lambda g, a: aso.minimize(g, np.zeros(3), args=(a,)).x, 1.0),
        "least_squares": (lambda c, s: resid(c, TT, YY * s),
                          lambda g, s: aso.least_squares(g, [1.0, 1.0, 0.0], args=(s,)).x, 1.0),
        "fixed_point": (lambda m, b: T_mf(m, b, mf_h),
                        lambda g, b: aso.fixed_point(g, np.zeros(8), args=(b,)), 0.9),
    }


@pytest.mark.parametrize("name", list(_solves()))
def test_one_solve_per_derivative_call(name):
    f, solve, p = _solves()[name]
    g = counting(f)
    solve(g, p)
    n_solve = g.plain
    assert n_solve > 0
    for transform in (ad.grad, ad.jacfwd):          # (hessian: brentq and test_implicit)
        g.plain = 0
        out = transform(lambda p: np.sum(solve(g, p)))(p)
        assert g.plain == n_solve, (transform, g.plain, n_solve)
        assert np.all(np.isfinite(out))


def test_user_given_derivatives_are_used_and_still_differentiated():
    def fg(x, a, b):                                 # jac=True: fun returns (f, grad f)
        return objective(x, a, b), (x - a) ** 3 + Q @ x - b
    x1 = lambda b: aso.minimize(fg, np.zeros(3), args=(A0, b), jac=True,
                                options={"gtol": 1e-8}).x
    x2 = lambda b: aso.minimize(objective, np.zeros(3), args=(A0, b),
                                options={"gtol": 1e-8}).x
    close(ad.jacrev(x1)(B0), ad.jacrev(x2)(B0), rtol=1e-7)
    f = lambda x, a: (x ** 3 - a, 3 * x ** 2)        # fprime=True: f returns (f, f')
    r = lambda a: aso.root_scalar(f, args=(a,), x0=1.0, fprime=True, xtol=1e-14).root
    close(ad.grad(r)(8.0), 1 / 12)
    lm = lambda y: aso.least_squares(resid, [1.0, 1.0, 0.0], args=(TT, y), method="lm",
                                     **LSQ).x
    close(ad.jacfwd(lm)(YY), ad.jacrev(lambda y: aso.least_squares(
        resid, [1.0, 1.0, 0.0], args=(TT, y), **LSQ).x)(YY), rtol=1e-6, atol=1e-9)


# ----- SciPy's other scalar root finders ----------------------------------------------
@pytest.mark.parametrize("name", ["brenth", "ridder", "bisect", "toms748"])
def test_other_bracketing_solvers(name):
    fermi = lambda e, T: getattr(aso, name)(occupancy, -3.0, 3.0, args=(e, T, NEL), xtol=1e-14)
    for got, want in zip(ad.grad(fermi, argnums=(0, 1))(E, 0.1),
                         ad.grad(fermi_level, argnums=(0, 1))(E, 0.1)):
        close(got, want, rtol=1e-7)
    x, r = getattr(aso, name)(occupancy, -3.0, 3.0, args=(E, 0.1, NEL), full_output=True)
    assert r.converged and isinstance(x, float)


@pytest.mark.filterwarnings("ignore:Derivative was zero")      # SciPy's, on the failing case
def test_newton_scalar_array_and_failure():
    f = lambda x, a: x ** 3 - a
    r = lambda a: aso.newton(f, 1.0, args=(a,), tol=1e-14)
    ad.check_grads(r, (8.0,), order=2, rtol=RTOL, atol=ATOL)
    x, res = aso.newton(f, 1.0, args=(8.0,), full_output=True)
    assert res.method == "newton" and res.converged            # fprime from the engine
    a = np.array([8.0, 27.0])
    close(ad.jacrev(lambda a: aso.newton(f, np.ones(2), args=(a,), tol=1e-14))(a),
          np.diag(1 / (3 * np.array([2.0, 3.0]) ** 2)))
    with pytest.raises(RuntimeError):
        aso.newton(lambda x: x ** 2 + 1, 1.0, maxiter=5)
    with pytest.raises(aso.ConvergenceError, match="newton"):
        aso.newton(lambda x: x ** 2 + 1, 1.0, maxiter=5, disp=False)


def test_scalar_solvers_with_an_ad_jit_function_use_its_compiled_sweep(monkeypatch):
    from autodiff import implicit
    used = []
    orig = implicit._compiled_sweep
    monkeypatch.setattr(implicit, "_compiled_sweep",
                        lambda *a: used.append(orig(*a) is not None) or orig(*a))
    f = ad.jit(lambda x, a, b: x ** 3 + b * x - a)
    calls = [lambda a, b: aso.brentq(f, -5.0, 5.0, args=(a, b)),
             lambda a, b: aso.root_scalar(f, args=(a, b), bracket=(-5.0, 5.0)).root,
             lambda a, b: aso.root_scalar(f, args=(a, b), x0=1.0).root,
             lambda a, b: aso.newton(f, 1.0, args=(a, b))]
    for call in calls:
        x = call(2.0, 1.0)
        want = np.array([1.0, -x]) / (3 * x ** 2 + 1.0)       # dx/d(a, b)
        np.testing.assert_allclose(ad.grad(call, argnums=(0, 1))(2.0, 1.0), want,
                                   rtol=1e-10)
        np.testing.assert_allclose(ad.jvp(call, (2.0, 1.0), (1.0, 0.5))[1], want @ [1, 0.5],
                                   rtol=1e-10)
    assert used == [True] * 8                     # every call replayed the compiled sweep
    assert len(implicit._SWEEPS[f]) == 1          # one layout, recorded once, shared


def test_scalar_root_one_reverse_sweep_serves_every_mode_batched_and_float32():
    # the scalar fast path (one reverse sweep of F, its rows contracted with the
    # tangents): batched jacfwd over many directions, jvp, vjp, float32, 0-d params,
    # a param F does not use (zero derivative), against the closed form
    T = 0.1
    mu = fermi_level(E, T)
    f = 1 / (1 + np.exp((E - mu) / T))
    w = f * (1 - f)
    de_want = w / w.sum()
    close(ad.jacfwd(fermi_level)(E, T), de_want)                      # 12 directions
    close(ad.jacrev(fermi_level)(E, T), de_want)
    t = np.cos(np.arange(12.0))
    close(ad.jvp(lambda e: fermi_level(e, T), (E,), (t,))[1], de_want @ t)
    _, pull = ad.vjp(lambda e, T: fermi_level(e, T), E, T)
    ge, gT = pull(2.0)
    close(ge, 2 * de_want)
    close(gT, 2 * ad.grad(fermi_level, argnums=1)(E, T))
    # float32 params: the derivative stays float32 (computed in float64, as the solve)
    g32 = ad.grad(fermi_level)(E.astype(np.float32), np.float32(T))
    assert g32.dtype == np.float32
    close(g32, de_want, rtol=1e-5)
    # a param F ignores gets zeros; an F without x is refused as singular
    g = ad.grad(lambda e, c: aso.brentq(lambda x, e, c: occupancy(x, e, T, NEL), -3.0, 3.0,
                                        args=(e, c)), argnums=(0, 1))(E, 1.5)
    close(g[0], de_want)
    assert g[1] == 0.0
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ad.grad(lambda a: aso.brentq(lambda x, a: np.sign(x) * 0 + 0 * a - 1e-300 +
                                     np.where(x > 0, 1.0, -1.0), -1.0, 1.0, args=(a,)))(0.3)


def test_scalar_root_after_an_exception_in_f_during_the_sweep():
    # F raises only when it sees tracked values (inside the rule's sweep): the error
    # reaches the caller, and the next call is right (no level or tape left open)
    state = {"fail": True}

    def F(x, a):
        if state["fail"] and type(a) is ad.Variable:
            raise FloatingPointError("boom in the sweep")
        return x ** 3 - a
    cube_root = lambda a: aso.brentq(F, 0.0, 4.0, args=(a,))
    with pytest.raises(FloatingPointError, match="boom"):
        ad.grad(cube_root)(8.0)
    state["fail"] = False
    close(ad.grad(cube_root)(8.0), 1 / 12)
    close(ad.grad(ad.grad(cube_root))(8.0), -2 / (9 * 8.0 ** (5 / 3)))   # second order


@pytest.mark.parametrize("method", ["bfgs", "l-bfgs-b", "cg", "trust-exact", "slsqp"])
def test_minimize_float32_start_converges_with_the_engines_float64_gradient(method):
    # The engine's gradient of a float32 problem is float32; BFGS's float64 line search on
    # it stopped on "precision loss" where SciPy's own finite differences converge.
    def f(x, a):
        return np.sum((x - a) ** 2 + x ** 4)
    a = np.array([1.0, 2.0], np.float32)
    res = aso.minimize(f, np.zeros(2, np.float32), args=(a,), method=method, tol=1e-10)
    assert res.success and res.x.dtype == np.float64     # SciPy's float64 algorithms
    np.testing.assert_allclose(2 * (res.x - a) + 4 * res.x ** 3, 0, atol=1e-4)
    # the float64 problem's solve, step for step
    np.testing.assert_array_equal(res.x, aso.minimize(f, np.zeros(2), args=(a,),
                                                      method=method, tol=1e-10).x)
    jac = ad.jacobian(lambda a: aso.minimize(f, np.zeros(2, np.float32), args=(a,),
                                             method=method, tol=1e-10).x)(a)
    assert jac.dtype == np.float32                  # float32 params: float32 derivative
    np.testing.assert_allclose(jac, np.diag(2 / (2 + 12 * res.x ** 2)), rtol=1e-5)


def test_root_lm_success_at_a_minimum_that_is_no_root_is_refused():
    # SciPy's lm reports success at x ≈ 0 for x² + 1 (a local minimum of |f|²); the
    # implicit derivative there was -1e5, silently.
    def f(x, a):
        return x ** 2 + a
    res = so.root(f, np.array([0.5]), args=(1.0,), method="lm")
    assert res.success and abs(res.fun[0]) > 0.5         # SciPy's verdict, as it stands
    with pytest.raises(aso.ConvergenceError, match="not a root"):
        ad.grad(lambda a: aso.root(f, np.array([0.5]), args=(a,), method="lm").x[0])(1.0)
    # a real root with a loose tolerance still differentiates (dx/da = -1/(2x))
    for options in (None, {"xtol": 1e-3}):
        g = ad.grad(lambda a: aso.root(f, np.array([0.5]), args=(a,), method="lm",
                                       options=options).x[0])(-1.0)
        np.testing.assert_allclose(g, -0.5, rtol=1e-6)
