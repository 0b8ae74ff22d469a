"""custom_root / custom_fixed_point at the user's seams (API.md "Implicit functions, solvers
and ODEs"; jaxopt's ``implicit_diff.custom_root`` semantics).

Every derivative is held to finite differences of the solver itself (the solver runs at
shifted parameters), for scalar, vector, matrix and pytree solutions, every transform and
every ``solve=`` option on both sides of ``DENSE_MAX``; then the seams: keyword and mixed
params, float32, 0-d and empty values, singular systems, closures over tracked values
(right or refused, never silently wrong), exceptions inside F, threads.
"""
import threading

import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse.linalg as spla

import autodiff as ad
import autodiff.numpy as anp
from autodiff import implicit
from autodiff.tree import flatten


def close(a, b, rtol=1e-6, atol=1e-8):
    for u, v in zip(flatten(a)[0], flatten(b)[0]):
        np.testing.assert_allclose(np.asarray(u, dtype=float), np.asarray(v, dtype=float),
                                   rtol=rtol, atol=atol)
    assert len(flatten(a)[0]) == len(flatten(b)[0])


def newton(F, x, *params, iters=40):
    """A plain Newton solver for a flat or shaped unknown (the solver being decorated)."""
    x = np.array(x, dtype=float)
    for _ in range(iters):
        J = np.reshape(ad.jacfwd(lambda y: F(y, *params))(x), (x.size, x.size))
        x = x - np.reshape(np.linalg.solve(J, np.ravel(F(x, *params))), x.shape)
    return x


# ----- numerical references: finite differences of the solver, nothing else -----------
H = 1e-5


def num_jac(f, a, h=H):
    """∂f/∂a (f: vector -> array) by central differences, shape out + (a.size,)."""
    a = np.asarray(a, dtype=float)
    cols = []
    for i in range(a.size):
        e = np.zeros(a.size)
        e[i] = h
        e = e.reshape(a.shape)
        cols.append((np.asarray(f(a + e), float) - np.asarray(f(a - e), float)) / (2 * h))
    return np.stack(cols, axis=-1)


def num_hess(s, a, h=2e-4):
    a = np.asarray(a, dtype=float)
    n = a.size
    Hm = np.zeros((n, n))
    E = np.eye(n) * h
    for i in range(n):
        for j in range(n):
            Hm[i, j] = (s(a + E[i] + E[j]) - s(a + E[i] - E[j]) - s(a - E[i] + E[j])
                        + s(a - E[i] - E[j])) / (4 * h * h)
    return Hm


# ----- problems: a ↦ x(a), a a vector of 3 params ---------------------------------------
_rng = np.random.default_rng(11)
M4 = 3 * np.eye(4) + 0.3 * _rng.standard_normal((4, 4))
A3 = 3 * np.eye(3) + 0.3 * _rng.standard_normal((3, 3))


def F_scalar(x, a, b):          # x³ + a₀x + sin(a₁ x) = a₂ b
    return x ** 3 + a[0] * x + np.sin(a[1] * x) - a[2] * b


@ad.custom_root(F_scalar)
def scalar_solver(x0, a, b):
    return so.brentq(lambda x: F_scalar(x, a, b), -10.0, 10.0, xtol=1e-15)


def F_vec(x, a):
    return M4 @ x + a[0] * np.sin(x) + 0.2 * x ** 3 - a[1] * np.arange(1.0, 5.0) - a[2]


def F_mat(X, a):                # X A + a₀ X³ = B(a)
    return X @ A3 + a[0] * X ** 3 - anp.outer(anp.stack([a[1], 1.0]),
                                             anp.stack([1.0, a[2], a[1] * a[2]]))


def F_tree(x, p, *, scale=1.0):
    u, (v, W) = x["u"], x["vw"]
    return {"u": 2 * u + np.sum(v) * p["k"][0] - scale,
            "vw": (3 * v + np.sin(u) * p["k"][1] - p["c"], 4 * W + W ** 3 - p["k"][0] * u)}


def _tree_solver(x0, p, *, scale=1.0):
    def flat(z):
        r = F_tree({"u": z[0], "vw": (z[1:3], z[3:].reshape(2, 1))}, p, scale=scale)
        return np.concatenate([[r["u"]], r["vw"][0], np.ravel(r["vw"][1])])
    z = so.fsolve(flat, np.zeros(5), xtol=1e-14)
    return {"u": z[0], "vw": (z[1:3], z[3:].reshape(2, 1))}


def T_fp(m, a):
    return np.tanh(a[0] * (A3 / 6) @ m + a[1:3].sum() * np.array([1.0, -0.5, 0.2]))


def _fp_solver(m0, a):
    m = np.zeros(3)
    for _ in range(300):
        m = T_fp(m, a)
    return m, {"iterations": 300}


def make_problems(solve="auto"):
    vec = ad.custom_root(F_vec, solve=solve)(lambda x0, a: newton(F_vec, x0, a))
    mat = ad.custom_root(F_mat, solve=solve)(lambda X0, a: newton(F_mat, X0, a))
    tree = ad.custom_root(F_tree, solve=solve)(_tree_solver)
    fp = ad.custom_fixed_point(T_fp, solve=solve, has_aux=True)(_fp_solver)
    return {
        "scalar": (lambda a: scalar_solver(None, a, 0.7), np.array([1.5, 0.8, 1.2])),
        "vector": (lambda a: vec(np.zeros(4), a), np.array([0.5, 0.7, 0.3])),
        "matrix": (lambda a: mat(np.zeros((2, 3)), a), np.array([0.1, 0.6, 0.9])),
        "pytree": (lambda a: tree(None, {"k": (a[0], a[1]), "c": a[2]}, scale=1.3),
                   np.array([0.4, 0.9, -0.3])),
        "fixed_point": (lambda a: fp(None, a)[0], np.array([0.8, 0.2, 0.1])),
    }


def leaves_vector(x):
    return np.concatenate([np.ravel(v) for v in flatten(x)[0]])


def weights(x):
    return [np.linspace(0.5, 1.5, int(np.size(v))).reshape(np.shape(v)) + k
            for k, v in enumerate(flatten(x)[0])]


def scalarize(g, w):
    """A scalar of the solution: Σ w · sin(leaf), so the derivatives are all nonzero."""
    return lambda a: sum(np.sum(wk * np.sin(v)) for wk, v in zip(w, flatten(g(a))[0]))


PROBLEMS = make_problems()
V = np.array([0.3, -0.7, 0.5])       # a direction


def _reference(name):
    g, a = PROBLEMS[name]
    x = g(a)
    s = scalarize(g, weights(x))
    J = num_jac(lambda a: leaves_vector(g(a)), a)
    return g, s, a, J, num_jac(s, a), num_hess(s, a)


_REFS = {}


def ref(name):
    if name not in _REFS:
        _REFS[name] = _reference(name)
    return _REFS[name]


def _vec(g):
    return lambda a: leaves_vector(g(a))


TRANSFORMS = {
    "grad": lambda g, s, a: (ad.grad(s)(a), "G"),
    "value_and_grad": lambda g, s, a: (ad.value_and_grad(s)(a)[1], "G"),
    "jvp": lambda g, s, a: (ad.jvp(_vec(g), (a,), (V,))[1], "JV"),
    "vjp": lambda g, s, a: (ad.vjp(_vec(g), a)[1](np.arange(1.0, 1 + np.size(
        leaves_vector(g(a)))))[0], "UJ"),
    "jacfwd": lambda g, s, a: (ad.jacfwd(_vec(g))(a), "J"),
    "jacrev": lambda g, s, a: (ad.jacrev(_vec(g))(a), "J"),
    "jacfwd_tree": lambda g, s, a: (leaves_jac(ad.jacfwd(g)(a)), "J"),
    "jacrev_tree": lambda g, s, a: (leaves_jac(ad.jacrev(g)(a)), "J"),
    "hessian": lambda g, s, a: (ad.hessian(s)(a), "H"),
    "jacfwd(jacrev)": lambda g, s, a: (ad.jacfwd(ad.jacrev(s))(a), "H"),
    "jacrev(jacfwd)": lambda g, s, a: (ad.jacrev(ad.jacfwd(s))(a), "H"),
    "grad(grad)": lambda g, s, a: (ad.grad(ad.grad(lambda t: s(a + t * V)))(0.0), "vHv"),
    "jvp(grad)": lambda g, s, a: (ad.jvp(ad.grad(s), (a,), (V,))[1], "HV"),
    "jit(grad)": lambda g, s, a: (ad.jit(ad.grad(s))(a), "G"),
    "jit(jacrev)": lambda g, s, a: (ad.jit(ad.jacrev(_vec(g)))(a), "J"),
    "jit(jacfwd)": lambda g, s, a: (ad.jit(ad.jacfwd(_vec(g)))(a), "J"),
    "jit(hessian)": lambda g, s, a: (ad.jit(ad.hessian(s))(a), "H"),
    "grad(jit)": lambda g, s, a: (ad.grad(ad.jit(s))(a), "G"),
}


def leaves_jac(jac):
    """A pytree jacobian (leaves of shape leaf + (3,)) as one (n, 3) matrix."""
    return np.concatenate([np.reshape(v, (-1, 3)) for v in flatten(jac)[0]])


@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_every_transform_against_finite_differences(problem, transform):
    g, s, a, J, G, Hm = ref(problem)
    got, kind = TRANSFORMS[transform](g, s, a)
    want = {"G": G, "J": J, "H": Hm, "JV": J @ V, "HV": Hm @ V, "vHv": V @ Hm @ V,
            "UJ": np.arange(1.0, 1 + J.shape[0]) @ J}[kind]
    rtol = 1e-4 if kind in ("H", "HV", "vHv") else 1e-6
    close(got, want, rtol=rtol, atol=1e-6 if rtol > 1e-6 else 1e-8)


def test_jit_replays_at_new_params():
    g, s, a, *_ = ref("vector")
    jg, jh = ad.jit(ad.grad(s)), ad.jit(ad.hessian(s))
    for t in (0.0, 0.05, -0.1):
        b = a + t
        close(jg(b), ad.grad(s)(b), rtol=1e-12)
        close(jh(b), ad.hessian(s)(b), rtol=1e-12)
    close(jg(a + 0.05), num_jac(s, a + 0.05), rtol=1e-6)


def test_pytree_derivatives_keep_the_structures():
    g, _ = PROBLEMS["pytree"]

    def h(k, c):
        return g(anp.stack([k[0], k[1], c]))
    jf = ad.jacfwd(h, argnums=(0, 1))((0.4, 0.9), -0.3)
    jr = ad.jacrev(h, argnums=(0, 1))((0.4, 0.9), -0.3)
    assert set(jf) == {"u", "vw"} and isinstance(jf["vw"], tuple)
    assert isinstance(jf["vw"][1][0], tuple) and np.shape(jf["vw"][1][0][1]) == (2, 1)
    assert np.shape(jf["vw"][0][1]) == (2,)
    close(jf, jr, rtol=1e-10)


# ----- solve= options, both sides of DENSE_MAX; one solver run per derivative call ------
def make_chain(n, solve):
    calls = {"solver": 0}

    def F(x, b, c):
        Lx = 2 * x - np.concatenate([x[1:], [0.0]]) - np.concatenate([[0.0], x[:-1]])
        return x + c * x ** 3 + 0.3 * Lx - b

    @ad.custom_root(F, solve=solve)
    def solver(x0, b, c):
        calls["solver"] += 1
        return so.root(lambda x: F(x, b, c), np.zeros(n), tol=1e-14,
                       jac=lambda x: np.eye(n) * (1.6 + 3 * c * x ** 2)
                       - 0.3 * (np.eye(n, k=1) + np.eye(n, k=-1))).x
    return solver, calls


SOLVES = {"dense": "dense", "krylov": "krylov", "sparse": "sparse", "auto": "auto",
          "none": None,
          "callable": lambda op, b: spla.gmres(op, b, rtol=1e-13, atol=0.0)[0],
          "callable_matvec": lambda matvec, b: spla.gmres(
              spla.LinearOperator((b.size, b.size), matvec=matvec), b, rtol=1e-13,
              atol=0.0)[0]}


@pytest.mark.parametrize("n", [6, implicit.DENSE_MAX + 4])
@pytest.mark.parametrize("solve", list(SOLVES))
def test_solve_options_against_finite_differences(solve, n):
    solver, calls = make_chain(n, SOLVES[solve])
    b, c = np.linspace(-1, 1, n), 0.3
    g = lambda b, c: solver(None, b, c)
    fd_c = num_jac(lambda c: g(b, c[0]), np.array([c]))[:, 0]
    e = np.zeros(n)
    e[2] = 1.0
    fd_b2 = num_jac(lambda t: g(b + t[0] * e, c), np.zeros(1))[:, 0]
    tol = dict(rtol=1e-6, atol=1e-8)
    close(ad.jacfwd(lambda c: g(b, c))(c), fd_c, **tol)
    close(ad.jacrev(lambda c: g(b, c))(c), fd_c, **tol)
    close(ad.jvp(lambda b: g(b, c), (b,), (e,))[1], fd_b2, **tol)
    close(ad.vjp(lambda b: g(b, c), b)[1](np.ones(n))[0],
          num_jac(lambda b: np.sum(g(b, c)), b) if n < 20 else
          ad.grad(lambda b: np.sum(g(b, c)))(b), **tol)
    s = lambda c: np.sum(np.sin(g(b, c)))
    hfd = num_jac(lambda c: ad.grad(s)(c[0]), np.array([c]), h=1e-5)[0]
    calls["solver"] = 0
    close(ad.hessian(s)(c), hfd, rtol=1e-5, atol=1e-7)
    close(ad.grad(ad.grad(s))(c), hfd, rtol=1e-5, atol=1e-7)
    close(ad.jvp(ad.grad(s), (c,), (1.0,))[1], hfd, rtol=1e-5, atol=1e-7)
    assert calls["solver"] == 3                      # one per second-order call
    calls["solver"] = 0
    ad.grad(lambda b, c: np.sum(g(b, c) ** 2), argnums=(0, 1))(b, c)
    ad.jacfwd(lambda c: g(b, c))(c)
    assert calls["solver"] == 2
    if n < 20:
        calls["solver"] = 0
        Hb = ad.jacfwd(ad.jacrev(lambda b: np.sum(np.sin(g(b, c)))))(b)
        assert calls["solver"] == 1
        close(Hb, Hb.T, rtol=1e-8, atol=1e-10)
        close(Hb[:, 2], num_jac(lambda t: ad.grad(lambda b: np.sum(np.sin(g(b, c))))(
            b + t[0] * e), np.zeros(1))[:, 0], rtol=1e-5, atol=1e-7)


def test_auto_is_dense_up_to_dense_max_then_krylov(monkeypatch):
    made = []
    for name in ("_DenseLU", "_Krylov"):
        cls = getattr(implicit, name)
        monkeypatch.setattr(implicit, name,
                            lambda *a, _c=cls, _n=name: made.append(_n) or _c(*a))
    for n, want in ((implicit.DENSE_MAX, "_DenseLU"), (implicit.DENSE_MAX + 1, "_Krylov")):
        solver, _ = make_chain(n, "auto")
        made.clear()
        ad.hessian(lambda c: np.sum(solver(None, np.linspace(-1, 1, n), c)))(0.3)
        assert made and set(made) == {want}


@pytest.mark.parametrize("transform", [
    lambda f: ad.grad(f), lambda f: ad.value_and_grad(f),
    lambda f: (lambda a: ad.jvp(f, (a,), (np.ones_like(a),))),
    lambda f: (lambda a: ad.vjp(f, a)[1](1.0)), lambda f: ad.jacfwd(f), lambda f: ad.jacrev(f),
    lambda f: ad.hessian(f), lambda f: ad.jacfwd(ad.jacrev(f)),
    lambda f: ad.jacrev(ad.jacfwd(f)),
    lambda f: (lambda a: ad.jvp(ad.grad(f), (a,), (np.ones_like(a),))),
    lambda f: ad.jit(ad.grad(f)), lambda f: ad.jit(ad.hessian(f)),
    lambda f: (lambda a: ad.derivative(lambda t: f(a * t), 3)(1.0))])
@pytest.mark.parametrize("shape", [(), (3,)])
def test_one_solver_run_per_derivative_call(transform, shape):
    calls = {"n": 0}
    F = lambda x, a: x ** 3 + x - a

    @ad.custom_root(F)
    def solver(x0, a):
        calls["n"] += 1
        return newton(F, np.zeros(np.shape(a)), a)
    f = lambda a: np.sum(np.sin(solver(None, a)))
    a = np.full(shape, 1.3)
    d = transform(f)
    d(a)                                   # a first call may record (ad.jit)
    calls["n"] = 0
    d(a)
    assert calls["n"] == 1


# ----- params: keywords, pytrees, mixed tracked and untracked leaves, ints and bools -----
def test_keyword_params_and_mixed_leaves():
    seen = []

    def F(x, a, k, *, flag=True, how="cube", scale=1.0, extra=None):
        p = x ** k if flag else x
        return p + extra["w"] * x - a * scale

    @ad.custom_root(F)
    def solver(x0, a, k, *, flag=True, how="cube", scale=1.0, extra=None):
        seen.append((type(k), type(flag), how, type(extra["w"])))
        assert how == "cube" and callable(extra["fn"])
        return so.brentq(lambda x: F(x, a, k, flag=flag, how=how, scale=scale, extra=extra),
                         -5.0, 5.0, xtol=1e-15)

    w = np.array(0.5)
    f = lambda a, s: solver(None, a, 3, flag=np.True_, how="cube", scale=s,
                            extra={"w": w, "fn": np.sin, "n": np.int64(2)})
    x = f(2.0, 1.5)
    da = 1.5 / (3 * x ** 2 + 0.5)
    close(ad.grad(f, argnums=(0, 1))(2.0, 1.5), (da, 2.0 / (3 * x ** 2 + 0.5)), rtol=1e-10)
    ad.check_grads(f, (2.0, 1.5), order=2, rtol=1e-6, atol=1e-8)
    # a tracked leaf next to plain ones inside the same dict
    fw = lambda w_: solver(None, 2.0, 3, scale=1.5, extra={"w": w_, "fn": np.sin})
    close(ad.grad(fw)(0.5), -x / (3 * x ** 2 + 0.5), rtol=1e-10)
    ad.check_grads(fw, (0.5,), order=2, rtol=1e-6, atol=1e-8)
    # ints and bools reach the solver as they were (not refused, not made floats)
    assert all(t[0] is int and t[1] in (bool, np.bool_) for t in seen)
    assert any(t[1] is np.bool_ for t in seen)
    # an int asked for a derivative is the transform's TypeError (JAX's convention)
    with pytest.raises(TypeError, match="integer"):
        ad.grad(lambda k: solver(None, 2.0, k, extra={"w": w, "fn": np.sin}))(3)


def test_x0_gets_no_derivative_and_reaches_the_solver_plain():
    got = []
    F = lambda x, a: x ** 2 - a

    @ad.custom_root(F)
    def solver(x0, a):
        got.append(type(x0))
        return newton(F, x0, a)
    close(ad.grad(lambda x0, a: solver(x0, a), argnums=(0, 1))(1.5, 4.0), (0.0, 0.25))
    close(ad.jvp(lambda x0, a: solver(x0, a), (1.5, 4.0), (1.0, 0.0))[1], 0.0)
    close(ad.jacfwd(lambda x0: solver(x0, np.array([4.0, 9.0])))(np.ones(2)), np.zeros((2, 2)))
    assert all(t in (float, np.ndarray, np.float64) for t in got)


# ----- dtypes and shapes -------------------------------------------------------------
F_sq = lambda x, a: x ** 2 + x - a


@pytest.mark.parametrize("solve", ["auto", "dense", "krylov", "sparse"])
def test_float32_stays_float32(solve):
    @ad.custom_root(F_sq, solve=solve)
    def solver(x0, a):
        return ((-1 + np.sqrt(1 + 4 * a)) / 2).astype(a.dtype)
    a = np.array([2.0, 6.0, 12.0], np.float32)
    x = solver(None, a)
    d = 1 / (2 * x.astype(float) + 1)
    f = lambda a: solver(None, a)
    s = lambda a: np.sum(solver(None, a))
    outs = {"grad": ad.grad(s)(a), "jacfwd": ad.jacfwd(f)(a), "jacrev": ad.jacrev(f)(a),
            "jvp": ad.jvp(f, (a,), (np.ones(3, np.float32),))[1],
            "vjp": ad.vjp(f, a)[1](np.ones(3, np.float32))[0], "hessian": ad.hessian(s)(a)}
    for name, o in outs.items():
        assert np.result_type(o) == np.float32, name
    close(outs["grad"], d, rtol=1e-5)
    close(outs["jacfwd"], np.diag(d), rtol=1e-5, atol=1e-6)
    close(outs["jacrev"], np.diag(d), rtol=1e-5, atol=1e-6)
    close(np.diag(outs["hessian"]), -2 * d ** 3, rtol=1e-4, atol=1e-6)
    # a 0-d float32 unknown and param
    a0 = np.float32(6.0)
    g0 = ad.grad(lambda a: solver(None, np.reshape(a, (1,)))[0])(a0)
    assert np.result_type(g0) == np.float32
    close(g0, 0.2, rtol=1e-5)


def test_float32_krylov_is_held_to_float32_rounding_not_float64():
    # the tangent operator is evaluated in float32: a residual of 1e-10 is out of its reach
    # (before: "GMRES did not solve the tangent system" for these well-conditioned systems)
    sq = ad.custom_root(lambda x, a: x ** 2 - a, solve="krylov")(lambda x0, a: np.sqrt(a))
    a = np.array([4.0, 9.0], np.float32)
    close(ad.grad(lambda a: np.sum(sq(None, a)))(a), np.array([0.25, 1 / 6]), rtol=1e-5)
    close(np.diag(ad.hessian(lambda a: np.sum(sq(None, a)))(a)), np.array([-1 / 32, -1 / 108]),
          rtol=1e-4)
    for seed in range(20):
        a = np.random.default_rng(seed).uniform(1, 10, 3).astype(np.float32)
        x = ((-1 + np.sqrt(1 + 4 * a.astype(float))) / 2).astype(np.float32)
        s = ad.custom_root(F_sq, solve="krylov")(lambda x0, a, x=x: x)
        for J in (ad.jacfwd(lambda a: s(None, a))(a), ad.jacrev(lambda a: s(None, a))(a)):
            assert J.dtype == np.float32
            close(J, np.diag(1 / (2 * x.astype(float) + 1)), rtol=1e-5, atol=1e-6)


def test_a_float32_leaf_next_to_a_float64_leaf_stays_float32():
    # (before: the tracked solution's float32 leaf came back float64)
    @ad.custom_root(lambda x, a: {"s": x["s"] ** 2 - a[0], "v": 3 * x["v"] - a[1:] * x["s"]})
    def solver(x0, a):
        s = np.sqrt(a[0]).astype(np.float32)
        return {"s": s, "v": a[1:] * np.float64(s) / 3}
    a = np.array([4.0, 1.0, 2.0])
    f = lambda a: solver(None, a)
    x, t = ad.jvp(f, (a,), (np.ones(3),))
    assert np.result_type(x["s"]) == np.result_type(t["s"]) == np.float32
    assert np.result_type(x["v"]) == np.result_type(t["v"]) == np.float64
    J = ad.jacfwd(f)(a)
    assert np.result_type(J["s"]) == np.float32 and np.result_type(J["v"]) == np.float64
    close(J["s"], np.array([0.25, 0.0, 0.0]), rtol=1e-6)
    close(J["v"], ad.jacrev(f)(a)["v"], rtol=1e-6)
    ad.check_grads(f, (a,), order=2, rtol=1e-4, atol=1e-5)


def test_zero_d_solutions_and_params():
    @ad.custom_root(F_sq)
    def solver(x0, a):
        return np.asarray((-1 + np.sqrt(1 + 4 * a)) / 2)
    a = np.array(6.0)
    assert np.shape(solver(None, a)) == ()
    for d in (ad.grad(lambda a: solver(None, a))(a), ad.jacfwd(lambda a: solver(None, a))(a),
              ad.jacrev(lambda a: solver(None, a))(a)):
        assert np.shape(d) == ()
        close(d, 0.2, rtol=1e-12)
    close(ad.hessian(lambda a: solver(None, a))(a), -2 * 0.2 ** 3, rtol=1e-10)
    # a 0-d solution of a vector param
    v = np.array([1.0, 2.0, 3.0])
    J = ad.jacrev(lambda v: solver(None, np.sum(v)))(v)
    assert J.shape == (3,)
    close(J, np.full(3, 0.2), rtol=1e-12)
    close(ad.jacfwd(lambda v: solver(None, np.sum(v)))(v), J, rtol=1e-12)


@pytest.mark.parametrize("solve", ["auto", "krylov", "sparse"])
def test_empty_solutions_and_params(solve):
    @ad.custom_root(lambda x, a: x - a[:0], solve=solve)
    def empty(x0, a):
        return np.zeros(0)
    a = np.array([1.0, 2.0])
    f = lambda a: empty(None, a)
    assert ad.jacfwd(f)(a).shape == ad.jacrev(f)(a).shape == (0, 2)
    close(ad.grad(lambda a: np.sum(f(a)))(a), np.zeros(2))
    close(ad.hessian(lambda a: np.sum(f(a)))(a), np.zeros((2, 2)))
    assert ad.jvp(f, (a,), (a,))[1].shape == (0,)
    assert ad.jacrev(f)(a.astype(np.float32)).dtype == np.float32

    # an empty param next to a tracked one
    @ad.custom_root(lambda x, a, e: x ** 2 - a - np.sum(e), solve=solve)
    def s(x0, a, e):
        return np.sqrt(a + np.sum(e))
    e, a2 = np.zeros(0), np.array([4.0, 9.0])
    Ja, Je = ad.jacrev(lambda a, e: s(None, a, e), argnums=(0, 1))(a2, e)
    close(Ja, np.diag([0.25, 1 / 6]), rtol=1e-8)
    assert Je.shape == (2, 0)
    Ja, Je = ad.jacfwd(lambda a, e: s(None, a, e), argnums=(0, 1))(a2, e)
    close(Ja, np.diag([0.25, 1 / 6]), rtol=1e-8)
    assert Je.shape == (2, 0)
    assert ad.grad(lambda e: np.sum(s(None, a2, e)))(e).shape == (0,)
    assert ad.hessian(lambda e: np.sum(s(None, a2, e)))(e).shape == (0, 0)


# ----- systems with no derivative raise ------------------------------------------------
@pytest.mark.parametrize("solve", ["auto", "dense", "sparse"])
@pytest.mark.parametrize("shape", [(), (3,)])
def test_singular_jacobian_raises_linalg_error(solve, shape):
    @ad.custom_root(lambda x, a: (x - a) ** 2, solve=solve)        # a double root
    def double(x0, a):
        return np.array(a, dtype=float)
    a = np.full(shape, 1.0)
    f = lambda a: np.sum(double(None, a))
    for call in (lambda: ad.grad(f)(a), lambda: ad.jvp(f, (a,), (np.ones(shape),)),
                 lambda: ad.jacrev(lambda a: double(None, a))(a),
                 lambda: ad.jacfwd(lambda a: double(None, a))(a),
                 lambda: ad.hessian(f)(a)):
        with pytest.raises(np.linalg.LinAlgError, match="singular"):
            call()
    # a non-finite ∂F/∂x is no number either
    if solve != "sparse":
        @ad.custom_root(lambda x, a: np.inf * x - a, solve=solve)
        def inf(x0, a):
            return np.array(a, dtype=float)
        with pytest.raises(np.linalg.LinAlgError):
            ad.grad(lambda a: np.sum(inf(None, a)))(a)


def test_krylov_that_does_not_converge_raises():
    rng = np.random.default_rng(0)
    n = 30
    S = rng.standard_normal((n, n))
    S[:, 0] = S[:, 1]                          # singular, b not in its range

    @ad.custom_root(lambda x, b: S @ x - b, solve="krylov")
    def solver(x0, b):
        return np.linalg.lstsq(S, b, rcond=None)[0]
    b = rng.standard_normal(n)
    with pytest.raises(RuntimeError, match="did not solve the tangent system"):
        ad.grad(lambda b: solver(None, b) @ np.arange(n))(b)      # Sᵀy = g: no y
    with pytest.raises(RuntimeError, match="did not solve the tangent system"):
        ad.jvp(lambda b: solver(None, b), (b,), (rng.standard_normal(n),))
    # a double root: ∂F/∂x = 0 and ∂F/∂θ = 0, so the forward right-hand side is 0 (before:
    # a zero tangent, silently, where the solver's own derivative is 1)
    @ad.custom_root(lambda x, a: (x - a) ** 2, solve="krylov")
    def double(x0, a):
        return np.array(a, dtype=float)
    a = np.array([1.0, 2.0])
    for call in (lambda: ad.jvp(lambda a: double(None, a), (a,), (np.ones(2),)),
                 lambda: ad.jacfwd(lambda a: double(None, a))(a),
                 lambda: ad.grad(lambda a: np.sum(double(None, a)))(a)):
        with pytest.raises(RuntimeError, match="did not solve the tangent system"):
            call()
    # a given solve whose answer does not solve the system raises the same way
    bad = ad.custom_root(lambda x, b: 2 * x - b, solve=lambda op, r: r)(lambda x0, b: b / 2)
    with pytest.raises(RuntimeError, match="did not solve the tangent system"):
        ad.grad(lambda b: np.sum(bad(None, b)))(b)


def test_a_given_solve_of_the_wrong_size_is_named():
    bad = ad.custom_root(lambda x, b: 2 * x - b, solve=lambda op, r: np.zeros(5))(
        lambda x0, b: b / 2)
    with pytest.raises(ValueError, match=r"solve\(op, b\) returned 5 numbers"):
        ad.grad(lambda b: np.sum(bad(None, b)))(np.ones(3))


# ----- closures and tracked values ------------------------------------------------------
def test_closure_over_a_plain_array():
    w = np.array([1.0, 2.0, 4.0])

    @ad.custom_root(lambda x, a: w * x + x ** 3 - a)
    def solver(x0, a):
        return newton(lambda x, a: w * x + x ** 3 - a, np.zeros(3), a)
    f = lambda a: solver(None, a)
    a = np.array([1.0, 2.0, 3.0])
    x = f(a)
    close(ad.jacrev(f)(a), np.diag(1 / (w + 3 * x ** 2)), rtol=1e-10)
    ad.check_grads(f, (a,), order=2, rtol=1e-6, atol=1e-8)


def test_a_solver_that_returns_a_tracked_value_is_refused():
    def outer(c):
        @ad.custom_root(lambda x, a: x ** 2 - a)
        def leaky(x0, a):
            return np.sqrt(a) * c / c                 # the solver closes over tracked c
        return leaky(1.0, c)
    for call in (lambda: ad.grad(outer)(4.0), lambda: ad.jvp(outer, (4.0,), (1.0,)),
                 lambda: ad.jacrev(lambda c: outer(c) * np.ones(2))(4.0)):
        with pytest.raises(TypeError, match="closes over a value tracked"):
            call()


def _closing(solve="auto", shape=()):
    """x = sqrt(a c) from F = x² - a c, F closing over c; the solver uses c's plain value
    (as a solver on plain values would): the derivative in c must not be silently lost."""
    def x_of(c, a):
        F = lambda x, a: x ** 2 - a * c

        @ad.custom_root(F, solve=solve)
        def solver(x0, a):
            return np.sqrt(a * ad.stop_gradient(c)) * np.ones(shape)
        return solver(None, a)
    return x_of


@pytest.mark.parametrize("solve", ["auto", "krylov"])
@pytest.mark.parametrize("shape", [(), (2,)])
def test_a_closure_over_a_tracked_value_is_refused(solve, shape):
    x_of = _closing(solve, shape)
    s = lambda c, a: np.sum(x_of(c, a))
    calls = {
        # the value F closes over is not a param: no param tracked at all
        "grad_c": lambda: ad.grad(lambda c: s(c, 4.0))(4.0),
        "jvp_c": lambda: ad.jvp(lambda c: s(c, 4.0), (4.0,), (1.0,)),
        "jacfwd_c": lambda: ad.jacfwd(lambda c: x_of(c, 4.0))(4.0),
        # the same transform tracks a param and the closed-over value
        "grad_both": lambda: ad.grad(s, argnums=(0, 1))(4.0, 4.0),
        "jvp_both": lambda: ad.jvp(s, (4.0, 4.0), (1.0, 1.0)),
        "jacrev_both": lambda: ad.jacrev(lambda c, a: x_of(c, a) * np.ones(2),
                                         argnums=(0, 1))(4.0, 4.0),
        # an outer transform tracks the closed-over value, an inner one the param
        # (before the fix: 0.125 where the answer is 1/16, silently)
        "grad_c(grad_a)": lambda: ad.grad(lambda c: ad.grad(lambda a: s(c, a))(4.0))(4.0),
        "jvp_c(grad_a)": lambda: ad.jvp(lambda c: ad.grad(lambda a: s(c, a))(4.0), (4.0,),
                                        (1.0,)),
        "grad_c(jvp_a)": lambda: ad.grad(lambda c: ad.jvp(lambda a: s(c, a), (4.0,),
                                                          (1.0,))[1])(4.0),
        "grad_c(hessian_a)": lambda: ad.grad(lambda c: ad.hessian(lambda a: s(c, a))(4.0))(
            4.0),
    }
    for name, call in calls.items():
        with pytest.raises(TypeError, match="closes over") as e:
            call()
        assert "params" in str(e.value), name
    # the param alone, with c plain, is right
    n = max(1, int(np.prod(shape)))
    close(ad.grad(lambda a: s(4.0, a))(4.0), n * 0.5, rtol=1e-10)
    close(ad.hessian(lambda a: s(4.0, a))(4.0), -n / 16, rtol=1e-10)


def test_a_fixed_point_map_closing_over_a_tracked_value_is_refused():
    def x_of(c, a):
        T = lambda x, a: 0.5 * np.cos(x) * c + a

        @ad.custom_fixed_point(T)
        def solver(x0, a):
            x, cv = 0.0, ad.stop_gradient(c)
            for _ in range(200):
                x = 0.5 * np.cos(x) * cv + a
            return x
        return solver(None, a)
    for call in (lambda: ad.grad(lambda c: x_of(c, 0.3))(1.0),
                 lambda: ad.grad(lambda c: ad.grad(lambda a: x_of(c, a))(0.3))(1.0),
                 lambda: ad.jvp(x_of, (1.0, 0.3), (1.0, 1.0))):
        with pytest.raises(TypeError, match=r"T\(x, \*params\) depends on a value tracked"):
            call()
    x = x_of(1.0, 0.3)
    close(ad.grad(lambda a: x_of(1.0, a))(0.3), 1 / (1 + 0.5 * np.sin(x)), rtol=1e-10)


def test_passing_the_closed_over_value_as_a_param_is_right():
    def x_of(c, a):
        F = lambda x, a, c: x ** 2 - a * c

        @ad.custom_root(F)
        def solver(x0, a, c):
            return np.sqrt(a * c)
        return solver(None, a, c)
    close(ad.grad(lambda c: ad.grad(lambda a: x_of(c, a))(4.0))(4.0), 1 / 16, rtol=1e-10)
    ad.check_grads(x_of, (4.0, 4.0), order=3, rtol=1e-6, atol=1e-8)


def test_a_newton_solver_closing_over_a_tracked_value_unrolls_correctly():
    # nothing tracked among the params: the solver runs as it stands; its iterations
    # carry the closed-over value's derivative (no implicit rule is involved)
    def x_of(c):
        F = lambda x, a: x ** 2 - a * c

        @ad.custom_root(F)
        def solver(x0, a):
            x = 1.0
            for _ in range(40):
                x = x - F(x, a) / (2 * x)
            return x
        return solver(None, 4.0)
    close(ad.grad(x_of)(4.0), 0.5, rtol=1e-10)


def test_a_call_with_nothing_tracked_is_the_solver_itself():
    calls = {"F": 0, "solver": 0}
    marker = object()

    def F(x, a):
        calls["F"] += 1
        return x - a

    @ad.custom_fixed_point(F, has_aux=True)
    def solver(x0, a, *, k=1):
        calls["solver"] += 1
        return a, marker
    x, aux = solver(np.zeros(2), np.array([1.0, 2.0]), k=3)
    assert aux is marker and type(x) is np.ndarray and calls == {"F": 0, "solver": 1}
    assert solver.__name__ == "solver"


def test_a_jitted_F_closing_over_a_tracked_value_is_refused_by_jit():
    def x_of(c, a):
        F = ad.jit(lambda x, a: x ** 2 - a * c)

        @ad.custom_root(F)
        def solver(x0, a):
            return np.sqrt(a * ad.stop_gradient(c))
        return solver(None, a)
    for call in (lambda: ad.grad(lambda c: ad.grad(lambda a: x_of(c, a))(4.0))(4.0),
                 lambda: ad.jvp(x_of, (4.0, 4.0), (1.0, 1.0))):
        with pytest.raises(TypeError, match="captured by a closure"):
            call()
    close(ad.grad(lambda a: x_of(4.0, a))(4.0), 0.5, rtol=1e-12)


def test_eager_variables_and_duals():
    sq = ad.custom_root(lambda x, a: x ** 2 - a)(lambda x0, a: np.sqrt(a))
    a = ad.Variable(4.0)
    x = sq(None, a)
    x.backward()
    close(a.grad, 0.25, rtol=1e-12)
    close(sq(None, ad.Dual(4.0, 1.0)).tangent, 0.25, rtol=1e-12)


def test_a_param_given_twice_and_a_solver_inside_F():
    rep = ad.custom_root(lambda x, a, b: x - a * b)(lambda x0, a, b: a * b)
    close(ad.grad(lambda a: rep(None, a, a))(3.0), 6.0, rtol=1e-12)
    close(ad.hessian(lambda a: rep(None, a, a))(3.0), 2.0, rtol=1e-12)
    close(ad.jacrev(lambda a: rep(None, a, a))(np.array([1.0, 2.0])), np.diag([2.0, 4.0]))
    # bilevel: F itself calls a decorated solver (of the params and of x)
    Fi = lambda y, a: y ** 3 + y - a
    inner = ad.custom_root(Fi)(
        lambda y0, a: so.brentq(lambda y: Fi(y, a), -10, 10, xtol=1e-15))
    Fo = lambda x, a: x ** 2 - inner(None, a * x) - 1
    outer = ad.custom_root(Fo)(
        lambda x0, a: so.brentq(lambda x: Fo(x, a), 0.5, 10, xtol=1e-15))
    ad.check_grads(lambda a: outer(None, a), (1.3,), order=2, rtol=1e-6, atol=1e-8)


def test_has_aux_under_jit_replays_the_aux():
    T = lambda x, a: np.cos(a * x)

    @ad.custom_fixed_point(T, has_aux=True)
    def fp(x0, a):
        x, i = 0.5, 0
        while True:
            xn, i = T(x, a), i + 1
            if abs(xn - x) < 1e-14:
                return xn, {"iterations": i}
            x = xn
    for tr in (lambda f: f, lambda f: ad.grad(f, has_aux=True),
               lambda f: ad.value_and_grad(f, has_aux=True)):
        f = lambda a: fp(None, a)
        j = ad.jit(tr(f))
        for a in (1.0, 0.3, 0.7):
            got, want = j(a), tr(f)(a)
            close(got, want, rtol=1e-12)              # the iteration count included
            assert flatten(got)[1] == flatten(want)[1]


# ----- exceptions, complex values, threads -------------------------------------------
@pytest.mark.parametrize("solve", ["auto", "krylov", "jit"])
@pytest.mark.parametrize("shape", [(), (3,)])
def test_an_exception_inside_F_then_the_next_call_is_right(solve, shape):
    state = {"boom": False}

    def F(x, a):
        if state["boom"]:
            raise ValueError("boom inside F")
        return x ** 3 + x - a
    Fd = ad.jit(F) if solve == "jit" else F

    @ad.custom_root(Fd, solve="auto" if solve == "jit" else solve)
    def solver(x0, a):
        return newton(lambda x, a: x ** 3 + x - a, np.zeros(np.shape(a)), a)
    f = lambda a: np.sum(np.sin(solver(None, a)))
    a = np.full(shape, 1.3)
    want_g, want_h = num_jac(f, np.atleast_1d(a)), None
    state["boom"] = True
    for call in (ad.grad(f), ad.hessian(f), lambda a: ad.jvp(f, (a,), (np.ones(shape),))):
        with pytest.raises(ValueError, match="boom inside F"):
            call(a)
    state["boom"] = False
    close(np.atleast_1d(ad.grad(f)(a)), want_g)
    want_h = num_jac(lambda a: np.atleast_1d(ad.grad(f)(np.reshape(a, shape))),
                     np.atleast_1d(a))
    close(np.reshape(ad.hessian(f)(a), want_h.shape), want_h, rtol=1e-5)


def test_an_exception_in_the_solver_or_a_given_solve_then_the_next_call_is_right():
    state = {"solver": False, "solve": False}
    F = lambda x, a: x ** 3 + x - a

    def lin(op, b):
        if state["solve"]:
            raise ValueError("boom in solve")
        return spla.gmres(op, b, rtol=1e-13, atol=0.0)[0]

    def solver(x0, a):
        if state["solver"]:
            raise ValueError("boom in solver")
        return newton(F, np.zeros_like(a), a)
    s = ad.custom_root(F, solve=lin)(solver)
    f = lambda a: np.sum(np.sin(s(None, a)))
    a = np.array([1.0, 2.0])
    want = ad.hessian(f)(a)
    for key in state:
        state[key] = True
        with pytest.raises(ValueError, match="boom in"):
            ad.hessian(f)(a)
        state[key] = False
        close(ad.hessian(f)(a), want, rtol=1e-12)
        close(ad.jit(ad.hessian(f))(a), want, rtol=1e-12)


def test_complex_params_are_refused_complex_untracked_params_travel():
    @ad.custom_root(lambda x, a, z: x ** 2 - a * abs(z))
    def solver(x0, a, z):
        return np.sqrt(a * abs(z))
    with pytest.raises(NotImplementedError, match="complex parameter"):
        ad.grad(lambda a: np.real(solver(None, a, 1.0)), holomorphic=True)(4.0 + 0j)
    with pytest.raises(NotImplementedError, match="complex parameter"):
        ad.jvp(lambda z: solver(None, 4.0, z), (1j,), (1.0 + 0j,))
    close(ad.grad(lambda a: solver(None, a, 1j))(4.0), 0.25, rtol=1e-12)

    @ad.custom_root(lambda x, a: x - a)
    def csol(x0, a):
        return a + 0j
    with pytest.raises(NotImplementedError, match="complex solution"):
        ad.grad(lambda a: np.real(csol(None, a)))(1.0)


def test_threads():
    F = lambda x, a: x ** 3 + x - a
    solvers = {s: ad.custom_root(F, solve=s)(lambda x0, a: newton(F, np.zeros(np.shape(a)), a))
               for s in ("auto", "krylov")}
    errors = []

    def work(i):
        try:
            for k in range(4):
                a = np.array([1.0, 2.0, 3.0]) * (1 + 0.1 * i + 0.01 * k)
                for s in solvers.values():
                    x = s(None, a)
                    d = 1 / (3 * x ** 2 + 1)
                    close(ad.jacrev(lambda a: s(None, a))(a), np.diag(d), rtol=1e-8)
                    close(ad.jacfwd(lambda a: s(None, a))(a), np.diag(d), rtol=1e-8)
                    close(ad.grad(lambda t: s(None, t))(a[0]), d[0], rtol=1e-8)
                    close(np.diag(ad.hessian(lambda a: np.sum(s(None, a)))(a)),
                          -6 * x * d ** 3, rtol=1e-7)
        except Exception as e:          # noqa: BLE001 (reported below)
            errors.append(repr(e))
    ts = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
