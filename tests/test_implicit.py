"""custom_root and custom_fixed_point (API.md "Implicit functions, solvers and ODEs").

Derivatives of a solver's result come from the implicit function theorem: they are checked
against finite differences of the solver itself (``check_grads`` runs the solver at shifted
parameters), in both modes, batched (jacfwd/jacrev) and to second and third order; call
counters show one solver run per derivative call; singular or unsolvable tangent systems
raise.
"""
import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse.linalg as spla

import autodiff as ad
from autodiff import implicit
from autodiff.tree import flatten

RTOL, ATOL = 1e-6, 1e-8


def close(a, b, rtol=1e-9, atol=1e-11):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=rtol, atol=atol)


# ----- a scalar root by Newton's method: x = sqrt(a) -------------------------------------
def sq(x, a):
    return x ** 2 - a


calls = {"n": 0}


@ad.custom_root(sq)
def newton_sqrt(x0, a):
    calls["n"] += 1
    x = x0
    for _ in range(60):
        x = x - sq(x, a) / (2 * x)
    return x


def f_sqrt(a):
    return newton_sqrt(1.0, a)


def test_scalar_root_all_orders_analytic():
    a = 3.0
    close(f_sqrt(a), np.sqrt(a))
    close(ad.grad(f_sqrt)(a), 0.5 * a ** -0.5)
    close(ad.jvp(f_sqrt, (a,), (2.0,))[1], a ** -0.5)
    close(ad.grad(ad.grad(f_sqrt))(a), -0.25 * a ** -1.5)
    close(ad.derivative(f_sqrt, 3)(a), 0.375 * a ** -2.5)
    close(ad.jacfwd(ad.grad(f_sqrt))(a), -0.25 * a ** -1.5)
    close(ad.jacrev(ad.jacfwd(f_sqrt))(a), -0.25 * a ** -1.5)
    ad.check_grads(f_sqrt, (a,), order=3, rtol=RTOL, atol=ATOL)


def test_vector_of_roots_batched_jacobians_and_hessian():
    a = np.array([1.0, 4.0, 9.0])
    g = lambda a: newton_sqrt(np.ones(3), a)
    want = np.diag(0.5 / np.sqrt(a))
    close(ad.jacfwd(g)(a), want)
    close(ad.jacrev(g)(a), want)
    close(ad.jacobian(g, chunk_size=2)(a), want)
    close(ad.hessian(lambda a: np.sum(g(a)))(a), np.diag(-0.25 * a ** -1.5))
    ad.check_grads(g, (a,), order=2, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("transform", [
    lambda f: ad.grad(f), lambda f: ad.jacfwd(f), lambda f: ad.jacrev(f),
    lambda f: ad.hessian(f), lambda f: ad.grad(ad.grad(f)),
    lambda f: (lambda a: ad.jvp(f, (a,), (1.0,))),
    lambda f: (lambda a: ad.vjp(f, a)[1](1.0)),
    lambda f: (lambda a: ad.linearize(f, a)[1](1.0))])
def test_the_solver_runs_once_per_derivative_call(transform):
    calls["n"] = 0
    transform(f_sqrt)(2.0)
    assert calls["n"] == 1


def test_x0_gets_no_derivative():
    # JAX's semantics: the initial guess is stopped
    g = ad.grad(lambda x0, a: newton_sqrt(x0, a), argnums=(0, 1))(1.5, 4.0)
    close(g, (0.0, 0.25))
    close(ad.grad(lambda x0: newton_sqrt(x0, 4.0))(1.5), 0.0)


# ----- a coupled nonlinear system, pytree params, positional and keyword ----------------
_rng = np.random.default_rng(3)
N = 5
M = _rng.standard_normal((N, N)) * 0.3 + 3 * np.eye(N)


def F_sys(x, p, q, scale=1.0):
    return M @ x + p[0] * np.sin(x) + p[1] * x ** 3 - q["b"] * scale


def make_sys(solve):
    @ad.custom_root(F_sys, solve=solve)
    def solver(x0, p, q, scale=1.0):
        return so.fsolve(lambda x: F_sys(x, p, q, scale), x0, xtol=1e-13,
                         fprime=lambda x: M + np.diag(p[0] * np.cos(x) + 3 * p[1] * x ** 2))
    return solver


P = (0.5, 0.2)
B = _rng.standard_normal(N)


@pytest.mark.parametrize("solve", ["dense", "krylov",
                                   lambda op, b: spla.bicgstab(op, b, rtol=1e-13)[0]])
def test_system_with_pytree_params_against_finite_differences(solve):
    solver = make_sys(solve)

    def g(p, b, s):
        return solver(np.zeros(N), p, {"b": b}, scale=s)
    ad.check_grads(g, (P, B, 1.3), order=2, rtol=1e-5, atol=1e-7)
    J1 = ad.jacfwd(g, argnums=1)(P, B, 1.3)
    J2 = ad.jacrev(g, argnums=1)(P, B, 1.3)
    x = g(P, B, 1.3)
    A = M + np.diag(P[0] * np.cos(x) + 3 * P[1] * x ** 2)
    close(J1, np.linalg.solve(A, 1.3 * np.eye(N)), rtol=1e-8)
    close(J2, J1, rtol=1e-8)
    # a tuple param's derivative is a tuple
    dp = ad.jacrev(g, argnums=0)(P, B, 1.3)
    assert isinstance(dp, tuple) and len(dp) == 2 and dp[0].shape == (N,)


def test_reverse_rule_sweeps_again_for_large_params(monkeypatch):
    solver = make_sys("auto")
    g = lambda p, b: solver(np.zeros(N), p, {"b": b})
    want = ad.jacrev(g, argnums=(0, 1))(P, B)
    monkeypatch.setattr(implicit, "CONTRACT_MAX", 0)
    got = ad.jacrev(g, argnums=(0, 1))(P, B)
    for a, b in zip(flatten(got)[0], flatten(want)[0]):
        close(a, b, rtol=1e-12)
    gb = ad.grad(lambda p, b: np.sum(g(p, b)), argnums=1)(P, B)
    close(gb, np.sum(want[1], axis=0), rtol=1e-12)


def test_auto_switches_to_krylov_above_dense_max(monkeypatch):
    solver = make_sys("auto")
    g = lambda b: solver(np.zeros(N), P, {"b": b})
    dense = ad.jacrev(g)(B)
    monkeypatch.setattr(implicit, "DENSE_MAX", 2)
    close(ad.jacrev(g)(B), dense, rtol=1e-8)
    close(ad.jacfwd(g)(B), dense, rtol=1e-8)


def test_pytree_solution():
    def F(x, a):
        u, v = x
        return (u ** 2 + v - a, v - u * a)

    @ad.custom_root(F)
    def solve(x0, a):
        w = so.fsolve(lambda w: np.array(F((w[0], w[1]), a)), [1.0, 1.0], xtol=1e-12)
        return (w[0], w[1])

    g = lambda a: solve(None, a)
    out = ad.jacfwd(g)(2.0)
    assert isinstance(out, tuple) and len(out) == 2
    close(out, ad.jacrev(g)(2.0))
    ad.check_grads(g, (2.0,), order=2, rtol=RTOL, atol=ATOL)


# ----- fixed points: mean-field magnetisation m = tanh(beta (J m + h)) --------------------
_J = _rng.standard_normal((6, 6)) * 0.2
JM = (_J + _J.T) / 2


def T_mf(m, beta, h):
    return np.tanh(beta * (JM @ m + h))


@ad.custom_fixed_point(T_mf)
def mean_field(m0, beta, h):
    m = m0
    for _ in range(200):
        m = T_mf(m, beta, h)
    return m


def test_fixed_point_mean_field():
    h = np.linspace(-0.3, 0.4, 6)
    g = lambda beta, h: mean_field(np.zeros(6), beta, h)
    ad.check_grads(g, (0.8, h), order=3, rtol=RTOL, atol=ATOL)          # to third order
    m = g(0.8, h)
    D = np.diag(0.8 * (1 - m ** 2))
    close(ad.jacrev(g, argnums=1)(0.8, h), np.linalg.solve(np.eye(6) - D @ JM, D), rtol=1e-8)
    close(ad.jacfwd(g, argnums=1)(0.8, h), ad.jacrev(g, argnums=1)(0.8, h), rtol=1e-9)


# ----- seams: has_aux, float32, methods, errors ----------------------------------------
def test_has_aux_and_float32():
    @ad.custom_root(sq, has_aux=True)
    def s(x0, a):
        return newton_sqrt(x0, a), {"iterations": 60}
    (x, aux) = s(1.0, 4.0)
    assert aux == {"iterations": 60}
    close(ad.grad(lambda a: s(1.0, a)[0])(4.0), 0.25)
    a32 = np.array([4.0, 9.0], dtype=np.float32)
    x = newton_sqrt(np.ones(2, np.float32), a32)
    g = ad.grad(lambda a: np.sum(newton_sqrt(np.ones(2, np.float32), a)))(a32)
    assert x.dtype == np.float32 and g.dtype == np.float32
    close(g, [0.25, 1 / 6], rtol=1e-6)


def test_singular_jacobian_raises():
    @ad.custom_root(lambda x, a: (x - a) ** 2)     # a double root: ∂F/∂x = 0 there
    def double(x0, a):
        return a
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ad.grad(lambda a: double(0.0, a))(1.0)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ad.jvp(lambda a: double(0.0, a), (1.0,), (1.0,))


def test_krylov_failure_raises():
    @ad.custom_root(lambda x, a: (x - a) ** 2, solve="krylov")
    def double(x0, a):
        return np.full(3, a)
    with pytest.raises(RuntimeError, match="did not solve the tangent system"):
        ad.grad(lambda a: np.sum(double(0.0, a)))(1.0)


def test_bad_uses_raise():
    with pytest.raises(ValueError, match="solve must be"):
        ad.custom_root(sq, solve="lu")
    @ad.custom_root(lambda x, a: x[:1] - a)        # 1 residual for 2 unknowns
    def nonsquare(x0, a):
        return np.array([a, a])
    with pytest.raises(ValueError, match="square system"):
        ad.grad(lambda a: np.sum(nonsquare(None, a)))(1.0)

    def outer(c):
        @ad.custom_root(sq)
        def leaky(x0, a):
            return np.sqrt(a) + 0 * c              # closes over the tracked c
        return leaky(1.0, c)
    with pytest.raises(TypeError, match="closes over a value tracked"):
        ad.grad(outer)(4.0)
    with pytest.raises(NotImplementedError, match="complex"):
        ad.grad(lambda a: np.real(newton_sqrt(1.0, a * (1 + 0j))), holomorphic=False)(4.0)


def test_sparse_solve_hook():
    solver = make_sys("sparse")
    g = lambda b: solver(np.zeros(N), P, {"b": b})
    if not hasattr(ad, "sparse_jacobian"):
        with pytest.raises(NotImplementedError, match="sparse_jacobian"):
            ad.jacrev(g)(B)
    else:
        close(ad.jacrev(g)(B), ad.jacrev(lambda b: make_sys("dense")(np.zeros(N), P,
                                                                       {"b": b}))(B))


def test_empty_and_zero_d_solutions():
    @ad.custom_root(lambda x, a: x - a[:0])
    def empty(x0, a):
        return np.zeros(0)
    a = np.array([1.0, 2.0])
    assert ad.jacfwd(lambda a: empty(None, a))(a).shape == (0, 2)
    assert ad.jacrev(lambda a: empty(None, a))(a).shape == (0, 2)
    x = newton_sqrt(np.array(1.0), np.array(9.0))            # 0-d arrays
    assert np.shape(x) == ()
    close(ad.grad(lambda a: newton_sqrt(np.array(1.0), a))(np.array(9.0)), 1 / 6)


def test_static_params_travel_untouched():
    # non-float params (a function, a string, an int) are passed through, not differentiated
    def F(x, a, g, how, k):
        return g(x) - a ** k

    @ad.custom_root(F)
    def solve(x0, a, g, how="brentq", k=2):
        assert how == "brentq" and k == 2 and callable(g)
        return so.brentq(lambda x: F(x, a, g, how, k), 0.0, 10.0, xtol=1e-14)
    r = lambda a: solve(None, a, np.sinh, how="brentq", k=2)       # x = asinh(a²)
    close(ad.grad(r)(1.5), 2 * 1.5 / np.sqrt(1 + 1.5 ** 4))
    ad.check_grads(r, (1.5,), order=2, rtol=RTOL, atol=ATOL)


def test_untracked_call_is_the_solver_itself():
    calls["n"] = 0
    assert newton_sqrt(1.0, 4.0) == 2.0 and calls["n"] == 1


# ----- the scalar fast path (one 0-d unknown, first order) against the general path -----
def occupation(mu, e, T, n):
    return np.sum(1.0 / (1.0 + np.exp((e - mu) / T))) - n


def _fermi_solver(F, shape):
    @ad.custom_root(F)
    def fermi(mu0, e, T, n):
        mu = so.brentq(occupation, -10.0, 10.0, args=(e, T, n), xtol=1e-14)
        return np.full(shape, mu)
    return fermi


_e = np.sort(np.random.default_rng(5).standard_normal(40))
# scalar unknown (fast path) and the same unknown as a 1-vector (the dense path, n = 1)
fermi_scalar = _fermi_solver(occupation, ())
fermi_vector = _fermi_solver(lambda mu, e, T, n: np.reshape(occupation(mu[0], e, T, n), (1,)),
                             (1,))


def _both(e, T, n=18.0):
    return fermi_scalar(0.0, e, T, n), fermi_vector(np.zeros(1), e, T, n)[0]


@pytest.mark.parametrize("transform", [
    lambda f: ad.grad(f, argnums=(0, 1)),
    lambda f: (lambda e, T: ad.jvp(lambda T: f(e, T), (T,), (1.0,))[1]),
    lambda f: (lambda e, T: ad.jvp(f, (e, T), (np.linspace(-1, 1, 40), 0.3))[1]),
    lambda f: (lambda e, T: ad.vjp(f, e, T)[1](2.0)),
    lambda f: ad.jacfwd(lambda e, T: f(e, T) * np.ones(2), argnums=(0, 1)),
    lambda f: ad.jacrev(lambda e, T: f(e, T) * np.ones(2), argnums=(0, 1)),
    lambda f: ad.hessian(f, argnums=1),
    lambda f: ad.jacfwd(ad.grad(f, argnums=1), argnums=0),
])
def test_scalar_path_equals_the_general_path(transform):
    T = 0.2
    got = transform(lambda e, T: _both(e, T)[0])(_e, T)
    want = transform(lambda e, T: _both(e, T)[1])(_e, T)
    for a, b in zip(flatten(got)[0], flatten(want)[0]):
        close(a, b, rtol=1e-12, atol=1e-14)


def test_scalar_path_against_finite_differences_and_float32():
    f = lambda e, T: fermi_scalar(0.0, e, T, 18.0)
    ad.check_grads(f, (_e, 0.2), order=2, rtol=RTOL, atol=ATOL)
    e32, T32 = _e.astype(np.float32), np.float32(0.2)
    ge, gT = ad.grad(f, argnums=(0, 1))(e32, T32)
    assert ge.dtype == np.float32 and np.result_type(gT) == np.float32
    we, wT = ad.grad(lambda e, T: fermi_vector(np.zeros(1), e, T, 18.0)[0],
                     argnums=(0, 1))(e32, T32)
    assert we.dtype == np.float32
    close(ge, we, rtol=1e-6)
    close(gT, wT, rtol=1e-6)


def test_scalar_path_singular_and_wrong_size_residual_raise():
    @ad.custom_root(lambda x, a: (x - a) ** 2)      # a double root: ∂F/∂x = 0 there
    def double(x0, a):
        return a
    for call in (lambda: ad.grad(lambda a: double(0.0, a))(1.0),
                 lambda: ad.jvp(lambda a: double(0.0, a), (1.0,), (1.0,))):
        with pytest.raises(np.linalg.LinAlgError, match="singular"):
            call()

    @ad.custom_root(lambda x, a: np.stack([x - a, x + a]))
    def two(x0, a):
        return a
    with pytest.raises(ValueError, match="as many numbers as x holds"):
        ad.grad(lambda a: two(0.0, a))(1.0)


# ----- F given as an ad.jit function: the sweep of F is compiled too ---------------------
def test_jitted_residual_gives_the_eager_numbers_and_records_once():
    F = ad.jit(occupation)
    fermi_jit = _fermi_solver(F, ())
    f_jit = lambda e, T: fermi_jit(0.0, e, T, 18.0)
    f_eager = lambda e, T: fermi_scalar(0.0, e, T, 18.0)
    for tr in (lambda f: ad.grad(f, argnums=(0, 1)),
               lambda f: (lambda e, T: ad.jvp(f, (e, T), (np.cos(e), 0.3))[1]),
               lambda f: ad.jacrev(lambda e, T: f(e, T) * np.ones(3), argnums=(0, 1)),
               lambda f: ad.jacfwd(lambda e, T: f(e, T) * np.ones(3), argnums=(0, 1)),
               lambda f: ad.hessian(f, argnums=1)):
        for a, b in zip(flatten(tr(f_jit)(_e, 0.2))[0], flatten(tr(f_eager)(_e, 0.2))[0]):
            close(a, b, rtol=1e-12, atol=1e-14)
    sweeps = implicit._SWEEPS[F]
    before = {k: v.recordings for k, v in sweeps.items()}
    for T in (0.2, 0.25, 0.3):
        ad.grad(f_jit, argnums=(0, 1))(_e, T)
    assert {k: v.recordings for k, v in sweeps.items()} == before     # replayed
    # another signature (float32) records once more, and gives float32 cotangents
    g32 = ad.grad(f_jit)(_e.astype(np.float32), np.float32(0.2))
    assert g32.dtype == np.float32


def test_scalar_path_is_taken_at_first_order(monkeypatch):
    seen = []
    for name in ("_root_vjp_scalar", "_root_jvp_scalar"):
        rule = getattr(implicit, name)
        monkeypatch.setattr(implicit, name,
                            lambda *a, _r=rule, _n=name: seen.append(_n) or _r(*a))
    f = lambda e, T: fermi_scalar(0.0, e, T, 18.0)
    ad.grad(f, argnums=(0, 1))(_e, 0.2)
    ad.jvp(lambda T: f(_e, T), (0.2,), (1.0,))
    ad.jacrev(f)(_e, 0.2)
    assert seen == ["_root_vjp_scalar", "_root_jvp_scalar", "_root_vjp_scalar"]


def test_batched_matvec_rules_equal_the_unbatched_ones():
    # ops/linalg.py folds a batch of matrix-vector products (jacfwd/jacrev of J @ x, as
    # in the dense tangent system of a fixed point) into one matrix product
    rng = np.random.default_rng(2)
    for dt in (np.float64, np.float32, np.complex128):
        J = (rng.standard_normal((6, 5)) + (1j * rng.standard_normal((6, 5))
                                             if dt is np.complex128 else 0)).astype(dt)
        x = rng.standard_normal(5).astype(dt)
        for f in (lambda x: J @ x, lambda x: x @ J.T, lambda x: np.tanh(J @ x) @ J):
            hol = dt is np.complex128
            jf = ad.jacfwd(f, holomorphic=True)(x) if hol else ad.jacfwd(f)(x)
            jr = ad.jacrev(f, holomorphic=True)(x) if hol else ad.jacrev(f)(x)
            cols = np.stack([ad.jvp(f, (x,), (e,))[1] for e in np.eye(5, dtype=dt)], -1)
            assert jf.dtype == jr.dtype == np.result_type(f(x))
            tol = 1e-5 if dt is np.float32 else 1e-13
            np.testing.assert_allclose(jf, cols, rtol=tol, atol=tol)
            np.testing.assert_allclose(jr, cols, rtol=tol, atol=tol)
    A = rng.standard_normal((3, 4, 4))              # stacks still broadcast as before
    y = rng.standard_normal((4, 2))
    close(ad.jacfwd(lambda y: A @ y)(y), ad.jacrev(lambda y: A @ y)(y), rtol=1e-13)
    close(ad.jacfwd(lambda y: np.ones((0, 4)) @ y)(y), np.zeros((0, 2, 4, 2)))


def test_jitted_residual_with_static_params_stays_eager():
    F = ad.jit(lambda mu, e, T, n, kind: occupation(mu, e, T, n) * (2.0 if kind == "x2"
                                                                   else 1.0),
               static_argnums=(4,))

    @ad.custom_root(F)
    def fermi(mu0, e, T, n, kind):
        return so.brentq(occupation, -10.0, 10.0, args=(e, T, n), xtol=1e-14)
    g = ad.grad(lambda T: fermi(0.0, _e, T, 18.0, "x2"))(0.2)
    close(g, ad.grad(lambda T: fermi_scalar(0.0, _e, T, 18.0))(0.2), rtol=1e-12)
    assert F not in implicit._SWEEPS


def test_auto_above_dense_max_solves_a_jacobians_many_rows_by_one_lu(monkeypatch):
    # solve="auto" past DENSE_MAX is GMRES per right-hand side; a Jacobian's n rows at once
    # are solved by one LU of ∂F/∂x instead (one GMRES each took minutes at 250 unknowns)
    from autodiff import implicit
    n = implicit.DENSE_MAX + 20
    M = np.eye(n) * 3.0 + np.diag(np.full(n - 1, -1.0), 1) + np.diag(np.full(n - 1, -1.0), -1)
    F = lambda x, a: M @ x + 0.1 * np.sin(x) - a

    @ad.custom_root(F)
    def solve(x0, a):
        x = np.asarray(x0, dtype=float)
        for _ in range(60):
            J = M + 0.1 * np.diag(np.cos(x))
            x = x - np.linalg.solve(J, F(x, a))
        return x
    a = np.linspace(-1.0, 1.0, n)
    x = solve(np.zeros(n), a)
    want = np.linalg.inv(M + 0.1 * np.diag(np.cos(x)))
    built = []
    orig = implicit._DenseLU.__init__
    monkeypatch.setattr(implicit._DenseLU, "__init__",
                        lambda self, *args: built.append(1) or orig(self, *args))
    np.testing.assert_allclose(ad.jacrev(lambda a: solve(np.zeros(n), a))(a), want,
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ad.jacfwd(lambda a: solve(np.zeros(n), a))(a), want,
                               rtol=1e-9, atol=1e-12)
    assert len(built) == 2                      # one LU per Jacobian call
    g = ad.grad(lambda a: np.sum(solve(np.zeros(n), a) ** 2))(a)   # one row: GMRES
    np.testing.assert_allclose(g, 2 * want.T @ x, rtol=1e-8, atol=1e-10)
    assert len(built) == 2
