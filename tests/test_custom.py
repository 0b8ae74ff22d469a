"""custom_jvp, custom_vjp and checkpoint follow JAX (API.md "More transforms").

A rule sees one direction at a time (batches are the engine's business), arguments and outputs
may be pytrees and keywords, ``nondiff_argnums`` and ``defjvps`` exist, and a tracked value a
function closes over is differentiated (checkpoint) or refused (custom_vjp, custom_jvp), never
dropped. Derivatives are compared with analytic values and central differences.
"""
import collections
import functools

import numpy as np
import pytest

import autodiff as ad
from autodiff.tree import flatten

RTOL, ATOL = 1e-7, 1e-10

_rng = np.random.default_rng(7)
A = _rng.standard_normal((3, 3))
B = _rng.standard_normal((2, 3))          # m = 2 outputs, n = 3 inputs: non-square
X3 = np.array([0.3, -0.7, 1.1])


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               rtol=rtol, atol=atol)


def num_jac(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    y0 = np.asarray(f(x), dtype=np.float64)
    J = np.zeros(y0.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        J[(Ellipsis,) + idx] = (np.asarray(f(xp)) - np.asarray(f(xm))) / (2 * eps)
    return J


def plain(a):
    assert type(a) not in (ad.Dual, ad.Variable), type(a)


# ----- the functions under test --------------------------------------------------------

def tanh_b(x):
    return np.tanh(B @ x)


def tanh_b_jac(x):
    y = np.tanh(B @ x)
    return (1 - y ** 2)[:, None] * B


def tanh_b_grad_sq(x):
    """∇ Σ tanh(Bx)² = 2 Jᵀ y."""
    return 2 * tanh_b_jac(x).T @ tanh_b(x)


def make_jvp_tanh():
    """custom_jvp of x ↦ tanh(Bx) (R³ → R²) recording the tangent shapes its rule sees."""
    seen = []

    @ad.custom_jvp
    def f(x):
        return np.tanh(B @ x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        seen.append(np.shape(t))
        y = np.tanh(B @ x)
        return y, (1 - y ** 2) * (B @ t)

    return f, seen


def make_vjp_tanh():
    """custom_vjp of x ↦ tanh(Bx), recording the cotangent shapes its bwd sees."""
    seen = []

    @ad.custom_vjp
    def f(x):
        return np.tanh(B @ x)

    def fwd(x):
        y = np.tanh(B @ x)
        return y, y

    def bwd(y, g):
        seen.append(np.shape(g))
        return (B.T @ ((1 - y ** 2) * g),)

    f.defvjp(fwd, bwd)
    return f, seen


def make_half_sin_jvp():
    """sin with half its derivative, so that using the rule shows."""
    @ad.custom_jvp
    def s(x):
        return np.sin(x)

    @s.defjvp
    def s_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return np.sin(x), 0.5 * np.cos(x) * t

    return s


def make_half_sin_vjp():
    @ad.custom_vjp
    def s(x):
        return np.sin(x)

    s.defvjp(lambda x: (np.sin(x), np.cos(x)), lambda c, g: (0.5 * c * g,))
    return s


# ----- 1. one direction at a time -----------------------------------------------------------

def test_custom_jvp_square_linear_rule_under_jacobians():
    seen = []

    @ad.custom_jvp
    def lin(x):
        return A @ x

    def rule(p, t):
        seen.append(np.shape(t[0]))
        return A @ p[0], A @ t[0]

    lin.defjvp(rule)
    x = np.ones(3)
    close(ad.jacfwd(lin)(x), A)
    close(ad.jacrev(lin)(x), A)
    close(ad.jacobian(lin, mode="forward")(x), A)
    assert seen and set(seen) == {(3,)}, seen


def test_custom_jvp_non_square_rule_all_transforms():
    f, seen = make_jvp_tanh()
    J = tanh_b_jac(X3)
    for jac in (ad.jacfwd(f), ad.jacrev(f), ad.jacobian(f, mode="forward"),
                ad.jacobian(f, mode="reverse")):
        got = jac(X3)
        plain(got)
        assert np.shape(got) == (2, 3)
        close(got, J)
    sq = lambda x: np.sum(f(x) ** 2)           # noqa: E731
    close(ad.grad(sq)(X3), tanh_b_grad_sq(X3))
    H = num_jac(tanh_b_grad_sq, X3)
    close(ad.hessian(sq)(X3), H, rtol=1e-6, atol=1e-8)
    close(ad.jacrev(ad.grad(sq))(X3), H, rtol=1e-6, atol=1e-8)
    close(ad.jacfwd(ad.jacrev(f))(X3), num_jac(tanh_b_jac, X3), rtol=1e-6, atol=1e-8)
    v = np.array([0.2, -1.0, 0.5])
    close(ad.jvp(ad.grad(sq), (X3,), (v,))[1], H @ v, rtol=1e-6, atol=1e-8)
    close(ad.hvp(sq, X3, v), H @ v, rtol=1e-6, atol=1e-8)
    assert seen and set(seen) == {(3,)}, seen


def test_custom_vjp_non_square_rule_under_jacrev():
    f, seen = make_vjp_tanh()
    J = tanh_b_jac(X3)
    for jac in (ad.jacrev(f), ad.jacobian(f, mode="reverse"), ad.jacobian(f)):
        got = jac(X3)
        plain(got)
        close(got, J)
    sq = lambda x: np.sum(f(x) ** 2)           # noqa: E731
    close(ad.grad(sq)(X3), tanh_b_grad_sq(X3))
    u = np.array([0.4, -2.0])
    close(ad.vjp(f, X3)[1](u)[0], J.T @ u)
    # reverse over reverse: bwd is differentiated again, one direction at a time
    H = num_jac(tanh_b_grad_sq, X3)
    close(ad.jacrev(ad.grad(sq))(X3), H, rtol=1e-6, atol=1e-8)
    close(ad.jacrev(ad.jacrev(f))(X3), num_jac(tanh_b_jac, X3), rtol=1e-6, atol=1e-8)
    assert seen and set(seen) == {(2,)}, seen


def test_custom_vjp_under_forward_mode_is_a_clear_type_error():
    f, _ = make_vjp_tanh()
    sq = lambda x: np.sum(f(x) ** 2)           # noqa: E731
    for run in (lambda: ad.hessian(sq)(X3), lambda: ad.jacfwd(f)(X3),
                lambda: ad.jvp(f, (X3,), (X3,))):
        with pytest.raises(TypeError) as ei:
            run()
        msg = str(ei.value)
        assert "custom_vjp[f]" in msg and "custom_jvp" in msg, msg


def test_checkpoint_non_square_batched():
    c = ad.checkpoint(tanh_b)
    close(ad.jacfwd(c)(X3), tanh_b_jac(X3))
    close(ad.jacrev(c)(X3), tanh_b_jac(X3))
    sq = lambda x: np.sum(c(x) ** 2)           # noqa: E731
    close(ad.hessian(sq)(X3), num_jac(tanh_b_grad_sq, X3), rtol=1e-6, atol=1e-8)


# ----- scalars, float32, second order -------------------------------------------------------

@pytest.mark.parametrize("x0", [0.3, np.float64(-1.1), np.array(0.8)])
def test_custom_jvp_scalar_second_order(x0):
    s = make_half_sin_jvp()
    close(ad.grad(s)(x0), 0.5 * np.cos(x0))
    close(ad.grad(ad.grad(s))(x0), -0.5 * np.sin(x0))
    close(ad.jvp(ad.grad(s), (x0,), (np.ones_like(x0) * 2.0,))[1], -np.sin(x0))
    close(ad.derivative(s, 2)(x0), -0.5 * np.sin(x0))
    close(ad.hessian(s)(x0), -0.5 * np.sin(x0))


@pytest.mark.parametrize("x0", [0.3, np.array(0.8)])
def test_custom_vjp_scalar_second_order(x0):
    s = make_half_sin_vjp()
    close(ad.grad(s)(x0), 0.5 * np.cos(x0))
    close(ad.grad(ad.grad(s))(x0), -0.5 * np.sin(x0))
    close(ad.jacrev(ad.jacrev(s))(x0), -0.5 * np.sin(x0))


def test_float32_stays_float32():
    x = X3.astype(np.float32)
    fj, _ = make_jvp_tanh()
    fv, _ = make_vjp_tanh()
    for f in (fj, fv, ad.checkpoint(tanh_b)):
        g = ad.grad(lambda x: np.sum(f(x) ** 2))(x)
        assert g.dtype == np.float32, (f, g.dtype)
        close(g, tanh_b_grad_sq(X3), rtol=1e-4, atol=1e-5)
        Jr = ad.jacrev(f)(x)
        close(Jr, tanh_b_jac(X3), rtol=1e-4, atol=1e-5)
    for f in (fj, ad.checkpoint(tanh_b)):
        Jf = ad.jacfwd(f)(x)
        close(Jf, tanh_b_jac(X3), rtol=1e-4, atol=1e-5)
    s = make_half_sin_jvp()
    g0 = ad.grad(s)(np.float32(0.5))
    assert np.result_type(g0) == np.float32
    close(g0, 0.5 * np.cos(0.5), rtol=1e-6)


def test_check_grads_order_2_on_custom_functions():
    fj, _ = make_jvp_tanh()
    ad.check_grads(fj, (X3,), order=2)
    ad.check_grads(lambda x: np.sum(fj(x) ** 2), (X3,), order=2)
    fv, _ = make_vjp_tanh()
    ad.check_grads(fv, (X3,), order=2, modes=("rev",))
    ad.check_grads(ad.checkpoint(tanh_b), (X3,), order=2)
    ad.check_grads(ad.checkpoint(lambda x, y: (np.sin(x) * y, x + y)),
                   (X3, np.array([1.0, 2.0, 0.5])), order=2)


# ----- 2. pytree arguments and outputs ------------------------------------------------------

def test_custom_jvp_dict_argument_uses_the_rule():
    @ad.custom_jvp
    def f(x):
        return np.sin(x["a"])

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        assert isinstance(x, dict) and isinstance(t, dict)
        return np.sin(x["a"]), 2 * np.cos(x["a"]) * t["a"]

    g = ad.grad(f)({"a": 3.0})
    assert isinstance(g, dict)
    close(g["a"], 2 * np.cos(3.0))
    close(ad.jvp(f, ({"a": 3.0},), ({"a": 1.5},))[1], 3.0 * np.cos(3.0))
    x = {"a": np.array([0.1, 0.2])}
    close(ad.jacfwd(f)(x)["a"], np.diag(2 * np.cos(x["a"])))
    close(ad.jacrev(f)(x)["a"], np.diag(2 * np.cos(x["a"])))


def make_tree_jvp():
    """custom_jvp f((x, [y]), {"w": w}) -> {"p": Bx·y₀ᵢ…, "q": (w·Σx, 2.0)} with a rule that
    checks the structures it gets and returns a pytree tangent."""
    seen = []

    @ad.custom_jvp
    def f(xy, d):
        x, (y,) = xy
        return {"p": np.tanh(B @ x) * y, "q": (d["w"] * np.sum(x), 2.0)}

    @f.defjvp
    def f_jvp(primals, tangents):
        (xy, d), (txy, td) = primals, tangents
        assert type(xy) is tuple and type(xy[1]) is list and type(d) is dict
        assert type(txy) is tuple and type(txy[1]) is list and type(td) is dict
        (x, (y,)), (tx, (ty,)) = xy, txy
        seen.append(np.shape(tx))
        u = np.tanh(B @ x)
        out = {"p": u * y, "q": (d["w"] * np.sum(x), 2.0)}
        tan = {"p": (1 - u ** 2) * (B @ tx) * y + u * ty,
               "q": (td["w"] * np.sum(x) + d["w"] * np.sum(tx), 0.0)}
        return out, tan

    return f, seen


def _tree_ref(x, y, w):
    u = np.tanh(B @ x)
    Jp = np.concatenate([(1 - u ** 2)[:, None] * B * y, u[:, None], np.zeros((2, 1))], axis=1)
    Jq = np.concatenate([w * np.ones(3), [0.0], [np.sum(x)]])
    return Jp, Jq


def test_custom_jvp_pytree_args_and_outputs():
    f, seen = make_tree_jvp()
    x, y, w = X3, 1.7, 0.6
    out = f((x, [y]), {"w": w})
    assert set(out) == {"p", "q"} and type(out["q"]) is tuple
    close(out["p"], np.tanh(B @ x) * y)
    close(out["q"][1], 2.0)
    Jp, Jq = _tree_ref(x, y, w)

    def flat(z):          # z = [x0, x1, x2, y, w]
        o = f((z[:3], [z[3]]), {"w": z[4]})
        return np.concatenate([o["p"], np.reshape(o["q"][0], (1,))])

    z = np.concatenate([x, [y, w]])
    for jac in (ad.jacfwd(flat), ad.jacrev(flat)):
        close(jac(z), np.vstack([Jp, Jq]))
    _, t = ad.jvp(f, ((x, [y]), {"w": w}), ((np.ones(3), [0.5]), {"w": -1.0}))
    close(t["p"], Jp @ np.array([1, 1, 1, 0.5, -1.0]))
    close(t["q"][0], Jq @ np.array([1, 1, 1, 0.5, -1.0]))
    close(t["q"][1], 0.0)
    # grad with respect to a pytree argument, jacfwd of a pytree output
    g = ad.grad(lambda xy: np.sum(f(xy, {"w": w})["p"]))((x, [y]))
    assert type(g) is tuple and type(g[1]) is list
    close(np.concatenate([g[0], g[1]]), np.sum(Jp, axis=0)[:4])
    Jt = ad.jacfwd(lambda x: f((x, [y]), {"w": w}))(x)
    close(Jt["p"], Jp[:, :3])
    close(Jt["q"][0], Jq[:3])
    close(Jt["q"][1], np.zeros(3))
    Jr = ad.jacrev(lambda x: f((x, [y]), {"w": w}))(x)
    close(Jr["p"], Jp[:, :3])
    close(Jr["q"][0], Jq[:3])
    assert seen and set(seen) == {(3,)}, seen


def test_custom_vjp_pytree_args_and_outputs():
    seen = []

    @ad.custom_vjp
    def f(d, ys):
        return np.tanh(B @ d["x"]) * ys[0], (np.sum(d["x"]) * ys[1],)

    def fwd(d, ys):
        u = np.tanh(B @ d["x"])
        return (u * ys[0], (np.sum(d["x"]) * ys[1],)), (u, d, ys)

    def bwd(res, g):
        u, d, ys = res
        gp, (gq,) = g
        seen.append((np.shape(gp), np.shape(gq)))
        gx = B.T @ ((1 - u ** 2) * gp * ys[0]) + gq * ys[1]
        return {"x": gx}, [np.sum(gp * u), gq * np.sum(d["x"])]

    f.defvjp(fwd, bwd)
    x, y0, y1 = X3, 1.5, -0.4

    def flat(z):
        p, (q,) = f({"x": z[:3]}, [z[3], z[4]])
        return np.concatenate([p, np.reshape(q, (1,))])

    z = np.concatenate([x, [y0, y1]])
    J = ad.jacrev(flat)(z)
    close(J, num_jac(flat, z), rtol=1e-6, atol=1e-8)
    g = ad.grad(lambda d, ys: np.sum(f(d, ys)[0]) + f(d, ys)[1][0], argnums=(0, 1))(
        {"x": x}, [y0, y1])
    assert type(g[0]) is dict and type(g[1]) is list
    close(np.concatenate([g[0]["x"], g[1]]), np.sum(J, axis=0))
    assert seen and set(seen) == {((2,), ())}, seen


def test_namedtuple_arguments():
    P = collections.namedtuple("P", "a b")
    if len(flatten(P(1.0, 2.0))[0]) != 2:
        pytest.skip("autodiff.tree does not flatten namedtuples on this branch")

    @ad.custom_jvp
    def f(p):
        return p.a * p.b

    @f.defjvp
    def f_jvp(primals, tangents):
        (p,), (t,) = primals, tangents
        assert type(p) is P and type(t) is P
        return p.a * p.b, 3.0 * (t.a * p.b + p.a * t.b)

    g = ad.grad(f)(P(2.0, 5.0))
    close(g.a, 15.0)
    close(g.b, 6.0)


# ----- keywords, defaults, nondiff_argnums, defjvps -----------------------------------------

def test_custom_jvp_keywords_and_defaults():
    got = []

    @ad.custom_jvp
    def f(x, scale=2.0):
        return scale * np.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        got.append(len(primals))
        (x, s), (tx, ts) = primals, tangents
        return s * np.sin(x), 3.0 * (s * np.cos(x) * tx + np.sin(x) * ts)   # 3x: rule shows

    close(f(0.5, scale=4.0), 4.0 * np.sin(0.5))
    close(ad.grad(lambda x: f(x, scale=4.0))(0.5), 12.0 * np.cos(0.5))
    close(ad.grad(lambda s: f(0.5, scale=s))(4.0), 3.0 * np.sin(0.5))
    close(ad.grad(f)(0.5), 6.0 * np.cos(0.5))                       # the default 2.0
    close(ad.grad(lambda x: f(scale=1.0, x=x))(0.5), 3.0 * np.cos(0.5))
    close(ad.jacfwd(lambda x: f(x, scale=4.0))(X3), np.diag(12.0 * np.cos(X3)))
    assert set(got) == {2}


def test_custom_vjp_keywords():
    @ad.custom_vjp
    def f(x, y=1.0):
        return x * y

    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (2.0 * g * r[1], 2.0 * g * r[0]))
    close(ad.grad(lambda y: f(3.0, y=y))(4.0), 6.0)
    close(ad.grad(lambda x: f(y=4.0, x=x))(3.0), 8.0)
    close(ad.grad(f)(3.0), 2.0)


def test_keyword_only_parameter_is_refused():
    @ad.custom_jvp
    def f(x, *, k):
        return x * k

    f.defjvp(lambda p, t: (p[0] * p[1], t[0] * p[1]))
    with pytest.raises(TypeError, match="keyword"):
        f(1.0, k=2.0)


def test_custom_jvp_nondiff_argnums():
    calls = []

    @functools.partial(ad.custom_jvp, nondiff_argnums=(0, 1))
    def app(fn, n, x):
        return fn(x) ** n

    def app_jvp(fn, n, primals, tangents):
        calls.append((fn, n))
        (x,), (t,) = primals, tangents
        return fn(x) ** n, n * fn(x) ** (n - 1) * np.cos(x) * t * 0.5   # half: rule shows

    app.defjvp(app_jvp)
    close(app(np.sin, 2, 0.4), np.sin(0.4) ** 2)
    d = lambda x: np.sin(x) * np.cos(x)         # noqa: E731  (half of 2 sin cos)
    close(ad.grad(lambda x: app(np.sin, 2, x))(0.4), d(0.4))
    close(ad.jacfwd(lambda x: app(np.sin, 2, x))(X3), np.diag(d(X3)))
    close(ad.jacrev(lambda x: app(np.sin, 2, x))(X3), np.diag(d(X3)))
    close(ad.grad(ad.grad(lambda x: app(np.sin, 2, x)))(0.4), np.cos(2 * 0.4))
    close(ad.grad(lambda x: app(np.sin, n=2, x=x))(0.4), d(0.4))
    assert calls and all(c == (np.sin, 2) for c in calls)


def test_custom_jvp_tracked_nondiff_argument_gets_no_derivative():
    # JAX stops the gradient of nondiff arguments of custom_jvp
    @functools.partial(ad.custom_jvp, nondiff_argnums=(0,))
    def f(c, x):
        return c * x

    f.defjvp(lambda c, p, t: (c * p[0], c * t[0]))
    close(ad.grad(lambda x: f(x, x))(3.0), 3.0)


def test_custom_vjp_nondiff_argnums():
    @functools.partial(ad.custom_vjp, nondiff_argnums=(0,))
    def app(fn, x):
        return fn(x)

    def fwd(fn, x):
        return fn(x), x

    def bwd(fn, x, g):
        assert fn is np.sin
        return (0.5 * np.cos(x) * g,)

    app.defvjp(fwd, bwd)
    close(ad.grad(lambda x: app(np.sin, x))(0.4), 0.5 * np.cos(0.4))
    close(ad.jacrev(lambda x: app(np.sin, x))(X3), np.diag(0.5 * np.cos(X3)))
    close(ad.grad(ad.grad(lambda x: app(np.sin, x)))(0.4), -0.5 * np.sin(0.4))


def test_custom_vjp_tracked_nondiff_argument_is_refused():
    f = ad.custom_vjp(lambda c, x: c * x, nondiff_argnums=(0,))
    f.defvjp(lambda c, x: (c * x, None), lambda c, r, g: (c * g,))
    close(ad.grad(lambda x: f(2.0, x))(3.0), 2.0)
    with pytest.raises(TypeError, match="nondiff_argnums"):
        ad.grad(lambda x: f(x, x))(3.0)


def test_defjvps():
    @ad.custom_jvp
    def f(x, y):
        return np.sin(x) * y

    f.defjvps(lambda tx, ans, x, y: 2.0 * np.cos(x) * tx * y,       # doubled: rule shows
              lambda ty, ans, x, y: ans / y * ty)
    x, y = 0.4, 1.5
    gx, gy = ad.grad(f, argnums=(0, 1))(x, y)
    close(gx, 2.0 * np.cos(x) * y)
    close(gy, np.sin(x))
    close(ad.jvp(f, (x, y), (1.0, 2.0))[1], 2.0 * np.cos(x) * y + 2.0 * np.sin(x))
    close(ad.jacfwd(lambda v: f(v, y))(X3), np.diag(2.0 * np.cos(X3) * y))
    close(ad.jacrev(lambda v: f(v, y))(X3), np.diag(2.0 * np.cos(X3) * y))
    close(ad.grad(ad.grad(f))(x, y), -2.0 * np.sin(x) * y)

    @ad.custom_jvp
    def g(x, y):
        return x * y

    g.defjvps(None, lambda ty, ans, x, y: x * ty)       # no derivative through x
    close(ad.grad(g, argnums=(0, 1))(2.0, 3.0), (0.0, 2.0))
    close(ad.jvp(g, (2.0, 3.0), (1.0, 1.0))[1], 2.0)


def test_defjvps_with_nondiff_argnums_is_refused():
    f = ad.custom_jvp(lambda n, x: x ** n, nondiff_argnums=(0,))
    with pytest.raises(TypeError, match="defjvps"):
        f.defjvps(lambda t, ans, x: t)


# ----- errors --------------------------------------------------------------------------------

def test_missing_rules_are_clear_errors():
    f = ad.custom_jvp(np.sin)
    with pytest.raises(TypeError, match="defjvp"):
        f(1.0)
    g = ad.custom_vjp(np.sin)
    with pytest.raises(TypeError, match="defvjp"):
        g(1.0)


def test_bwd_with_wrong_number_of_cotangents_is_a_clear_error():
    f = ad.custom_vjp(lambda x, y: x * y)
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1],))
    with pytest.raises(TypeError, match="bwd"):
        ad.grad(f)(2.0, 3.0)


def test_rule_tangent_of_wrong_shape_is_a_clear_error():
    @ad.custom_jvp
    def f(x):
        return np.sin(x)

    f.defjvp(lambda p, t: (np.sin(p[0]), np.sum(t[0])))
    with pytest.raises((TypeError, ValueError), match="shape"):
        ad.jvp(f, (X3,), (X3,))


def test_rule_tangent_of_wrong_structure_is_a_clear_error():
    @ad.custom_jvp
    def f(x):
        return np.sin(x), np.cos(x)

    f.defjvp(lambda p, t: ((np.sin(p[0]), np.cos(p[0])), np.cos(p[0]) * t[0]))
    with pytest.raises(TypeError, match="structure"):
        ad.jvp(f, (X3,), (X3,))


# ----- 3. closures over tracked values ------------------------------------------------------

def test_checkpoint_closure_is_differentiated():
    x = np.array([0.1, -0.4, 0.9])
    want = np.cos(x) * x + np.sin(x) + 1.0
    f = lambda x: np.sum(ad.checkpoint(lambda y: np.sin(y) * y + x)(x))   # noqa: E731
    close(ad.grad(f)(x), want)
    close(ad.jacfwd(f)(x), want)
    close(ad.jvp(f, (x,), (np.ones(3),))[1], np.sum(want))

    def h(x):
        y = 2 * x
        return ad.checkpoint(lambda x: x * y)(x)

    g = ad.grad(h)(2.0)
    plain(g)
    close(g, 8.0)
    close(ad.derivative(h)(2.0), 8.0)
    close(ad.grad(ad.grad(h))(2.0), 4.0)
    hv = lambda x: h(x) * np.ones(2)           # noqa: E731
    close(ad.jacrev(hv)(2.0), [8.0, 8.0])


def test_checkpoint_closure_over_eager_variable():
    w = ad.Variable(np.array([1.0, 2.0]))
    y = ad.checkpoint(lambda x: np.sum(x * w))(np.array([3.0, 4.0]))
    y.backward()
    close(w.grad, [3.0, 4.0])


def test_custom_vjp_closure_is_refused():
    def h(x):
        @ad.custom_vjp
        def f(z):
            return z * x

        f.defvjp(lambda z: (z * x, None), lambda r, g: (g * x,))
        return f(x)

    with pytest.raises(TypeError) as ei:
        ad.grad(h)(2.0)
    msg = str(ei.value)
    assert "custom_vjp" in msg and "argument" in msg, msg


def test_custom_jvp_closure_is_refused():
    def h(x):
        @ad.custom_jvp
        def f(z):
            return z * x

        f.defjvp(lambda p, t: (p[0] * x, t[0] * x))
        return f(x)

    for run in (lambda: ad.grad(h)(2.0), lambda: ad.jvp(h, (2.0,), (1.0,)),
                lambda: ad.jacfwd(h)(X3)):
        with pytest.raises(TypeError) as ei:
            run()
        msg = str(ei.value)
        assert "custom_jvp" in msg and "argument" in msg, msg


def test_closure_over_constants_is_fine():
    c = np.array([1.0, 2.0, 3.0])

    @ad.custom_jvp
    def f(x):
        return x * c

    f.defjvp(lambda p, t: (p[0] * c, t[0] * c))
    close(ad.jacfwd(f)(X3), np.diag(c))
    close(ad.jacrev(f)(X3), np.diag(c))


# ----- 4. checkpoint with pytree outputs and arguments --------------------------------------

def test_checkpoint_tuple_output_with_constant_leaf():
    c = ad.checkpoint(lambda x: (np.sin(x), 3.0))
    y, t = ad.jvp(lambda x: c(x)[0], (2.0,), (1.0,))
    close(y, np.sin(2.0))
    close(t, np.cos(2.0))
    close(ad.grad(lambda x: c(x)[0])(2.0), np.cos(2.0))
    close(ad.grad(lambda x: c(x)[0] * c(x)[1])(2.0), 3.0 * np.cos(2.0))
    close(ad.grad(ad.grad(lambda x: c(x)[0]))(2.0), -np.sin(2.0))
    out = c(2.0)
    assert type(out) is tuple and out[1] == 3.0


def test_checkpoint_pytree_outputs_all_modes():
    def block(x):
        return {"a": np.sin(x) * x, "b": [np.tanh(B @ x), 7]}

    c = ad.checkpoint(block)
    out = c(X3)
    assert out["b"][1] == 7 and type(out["b"]) is list
    Ja = np.diag(np.cos(X3) * X3 + np.sin(X3))
    for jac in (ad.jacfwd, ad.jacrev):
        J = jac(lambda x: c(x)["a"])(X3)
        close(J, Ja)
        close(jac(lambda x: c(x)["b"][0])(X3), tanh_b_jac(X3))
    Jt = ad.jacfwd(lambda x: {"a": c(x)["a"], "b": c(x)["b"][0]})(X3)
    close(Jt["a"], Ja)
    close(Jt["b"], tanh_b_jac(X3))
    f = lambda x: np.sum(c(x)["a"]) + np.sum(c(x)["b"][0] ** 2)   # noqa: E731
    ref = lambda x: np.sum(block(x)["a"]) + np.sum(block(x)["b"][0] ** 2)   # noqa: E731
    close(ad.grad(f)(X3), ad.grad(ref)(X3))
    close(ad.hessian(f)(X3), ad.hessian(ref)(X3))
    close(ad.jacrev(ad.grad(f))(X3), ad.hessian(ref)(X3))


def test_nested_checkpoint_with_pytrees():
    inner = ad.checkpoint(lambda x: (np.sin(x), np.cos(x)))
    outer = ad.checkpoint(lambda d: {"s": inner(d["x"])[0] * inner(d["x"])[1], "k": 1.0})
    f = lambda x: np.sum(outer({"x": x})["s"])                   # noqa: E731
    want = np.cos(2 * X3)                                         # d/dx sin x cos x
    close(ad.grad(f)(X3), want)
    close(ad.jacfwd(lambda x: outer({"x": x})["s"])(X3), np.diag(want))
    close(ad.jacrev(lambda x: outer({"x": x})["s"])(X3), np.diag(want))
    close(ad.grad(ad.grad(lambda x: outer({"x": x})["s"]))(0.3), -2 * np.sin(0.6))


def test_checkpoint_pytree_args_and_keywords():
    @ad.checkpoint
    def block(d, scale=1.0):
        return np.sin(d["x"]) * d["y"] * scale

    g = ad.grad(lambda d: np.sum(block(d, scale=2.0)))({"x": X3, "y": 0.5})
    close(g["x"], 2.0 * np.cos(X3) * 0.5)
    close(g["y"], 2.0 * np.sum(np.sin(X3)))
    gs = ad.grad(lambda s: np.sum(block({"x": X3, "y": 0.5}, scale=s)))(2.0)
    close(gs, 0.5 * np.sum(np.sin(X3)))
    J = ad.jacfwd(lambda x: block({"x": x, "y": 0.5}, scale=2.0))(X3)
    close(J, np.diag(np.cos(X3)))


def test_checkpoint_still_recomputes():
    calls = []

    def block(x):
        calls.append(1)
        return (np.sin(x) * x, x)

    g = ad.grad(lambda x: np.sum(ad.checkpoint(block)(x)[0]))(X3)
    close(g, np.cos(X3) * X3 + np.sin(X3))
    assert len(calls) >= 2


def test_checkpoint_static_argnums_and_options():
    c = ad.checkpoint(lambda x, n: x ** n, static_argnums=(1,))
    close(ad.grad(c)(2.0, 3), 12.0)
    close(ad.jacfwd(c)(X3, 2), np.diag(2 * X3))
    with pytest.raises(TypeError, match="static_argnums"):
        ad.grad(lambda x: c(x, x))(2.0)
    c2 = ad.checkpoint(np.sin, prevent_cse=False)
    close(ad.grad(c2)(0.3), np.cos(0.3))
    with pytest.raises(NotImplementedError, match="policy"):
        ad.checkpoint(np.sin, policy=lambda *a: True)


def test_custom_jvp_as_a_method():
    class M:
        k = 3.0

        @functools.partial(ad.custom_jvp, nondiff_argnums=(0,))
        def f(self, x):
            return self.k * x

    M.f.defjvp(lambda self, p, t: (self.k * p[0], 2.0 * self.k * t[0]))
    close(M().f(2.0), 6.0)
    close(ad.grad(M().f)(1.0), 6.0)


def test_mixed_dtype_and_integer_output_leaves():
    @ad.custom_jvp
    def f(x):
        return np.sin(x), np.sum(x).astype(np.float64) * 2.0, 4

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), (np.cos(x) * t, 2.0 * np.sum(t).astype(np.float64), 0)

    x = X3.astype(np.float32)
    a, b, n = f(x)
    assert a.dtype == np.float32 and np.result_type(b) == np.float64 and n == 4
    (a, b, n), (ta, tb, tn) = ad.jvp(f, (x,), (np.ones(3, np.float32),))
    assert a.dtype == np.float32 and ta.dtype == np.float32 and n == 4
    close(ta, np.cos(X3), rtol=1e-6)
    close(tb, 6.0)
    J = ad.jacrev(lambda x: f(x)[0] + f(x)[1])(x)
    close(J, np.diag(np.cos(X3)) + 2.0, rtol=1e-6)

    @ad.custom_vjp
    def g(x):
        return np.sin(x), 7

    def bwd(x, ct):
        gy, gn = ct
        assert np.shape(gy) == (3,)
        return (np.cos(x) * gy,)

    g.defvjp(lambda x: (g(x), x), bwd)
    close(ad.jacrev(lambda x: g(x)[0])(X3), np.diag(np.cos(X3)))


def test_custom_primitive_on_the_tape():
    s = make_half_sin_jvp()
    with ad.Tape() as tape:
        x = ad.Variable(0.3)
        y = s(x) * 2.0
    assert "custom_jvp[s]" in str(tape)
    y.backward()
    close(x.grad, np.cos(0.3))


# ----- every combination: pytree arguments and outputs, a keyword, a non-square map, --------
# ----- float64/float32, under every transform, against the same function without rules -----

def _body(d, ys, scale=1.0):
    u = np.tanh(B @ d["x"]) * ys[0] * scale                  # R³ × R -> R²: non-square
    return {"u": u, "s": (np.sum(d["x"] ** 2) * ys[0] * scale, 5)}


def _body_tangent(d, ys, scale, td, tys, tscale):
    x, y = d["x"], ys[0]
    v = np.tanh(B @ x)
    tu = ((1 - v ** 2) * (B @ td["x"]) * y + v * tys[0]) * scale + v * y * tscale
    q = np.sum(x ** 2)
    ts = (2 * np.sum(x * td["x"]) * y + q * tys[0]) * scale + q * y * tscale
    return {"u": tu, "s": (ts, 0)}


def _make(kind, seen):
    if kind == "plain":
        return _body
    if kind == "checkpoint":
        return ad.checkpoint(_body)
    if kind == "custom_jvp":
        f = ad.custom_jvp(_body)

        @f.defjvp
        def rule(primals, tangents):
            seen.append(np.shape(tangents[0]["x"]))
            return _body(*primals), _body_tangent(*primals, *tangents)

        return f
    f = ad.custom_vjp(_body)

    def fwd(d, ys, scale):
        return _body(d, ys, scale), (d, ys, scale)

    def bwd(res, g):
        d, ys, scale = res
        gu, (gs, _) = g["u"], g["s"]
        seen.append(np.shape(gu))
        x, y = d["x"], ys[0]
        v = np.tanh(B @ x)
        q = np.sum(x ** 2)
        gx = (B.T @ ((1 - v ** 2) * gu) * y + 2 * x * gs * y) * scale
        gy = (np.sum(gu * v) + gs * q) * scale
        gscale = np.sum(gu * v) * y + gs * q * y
        return {"x": gx}, [gy], gscale

    f.defvjp(fwd, bwd)
    return f


_Z = np.array([0.3, -0.7, 1.1, 0.8])
_V = np.array([0.5, 1.0, -0.25, 2.0])


def _transforms(f):
    def F(z):
        out = f({"x": z[:3]}, [z[3]], scale=np.asarray(0.7, dtype=z.dtype))
        assert out["s"][1] == 5
        return np.concatenate([out["u"], np.reshape(out["s"][0], (1,))])

    def S(z):
        return np.sum(F(z) ** 2)

    def s0(t):
        return S(_Z.astype(np.result_type(t)) + t * _V.astype(np.result_type(t)))

    def Fscale(c):
        x = _Z[:3].astype(np.result_type(c))
        return f({"x": x}, [x[0]], c)["u"]

    return {
        "F": F,
        "grad": lambda z: ad.grad(S)(z),
        "jacfwd": lambda z: ad.jacfwd(F)(z),
        "jacrev": lambda z: ad.jacrev(F)(z),
        "hessian": lambda z: ad.hessian(S)(z),
        "jacrev_grad": lambda z: ad.jacrev(ad.grad(S))(z),
        "grad_grad_0d": lambda z: ad.grad(ad.grad(s0))(np.asarray(0.1, dtype=z.dtype)),
        "grad_grad_float": lambda z: ad.grad(ad.grad(s0))(0.1) if z.dtype == np.float64
        else ad.grad(ad.grad(s0))(np.float32(0.1)),
        "jvp_of_grad": lambda z: ad.jvp(ad.grad(S), (z,), (_V.astype(z.dtype),))[1],
        "jacfwd_jacrev": lambda z: ad.jacfwd(ad.jacrev(F))(z),
        "jacfwd_jacfwd": lambda z: ad.jacfwd(ad.jacfwd(F))(z),
        "jacrev_jacfwd": lambda z: ad.jacrev(ad.jacfwd(F))(z),
        "jacrev_jacrev": lambda z: ad.jacrev(ad.jacrev(F))(z),
        "keyword_arg": lambda z: ad.jacrev(Fscale)(np.asarray(0.7, dtype=z.dtype)),
    }


_FORWARD = {"jacfwd", "hessian", "jvp_of_grad", "jacfwd_jacrev", "jacfwd_jacfwd",
            "jacrev_jacfwd"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["custom_jvp", "custom_vjp", "checkpoint"])
@pytest.mark.parametrize("transform", sorted(set(_transforms(_body)) - {"F"}))
def test_every_transform_on_pytrees_keywords_dtypes(kind, transform, dtype):
    seen = []
    got_fn = _transforms(_make(kind, seen))[transform]
    z = _Z.astype(dtype)
    if kind == "custom_vjp" and transform in _FORWARD:
        with pytest.raises(TypeError, match=r"custom_vjp\[_body\].*custom_jvp"):
            got_fn(z)
        return
    got = got_fn(z)
    want = _transforms(_body)[transform](z)       # the same function, no custom machinery
    plain(got)
    assert np.shape(got) == np.shape(want)
    assert np.result_type(got) == np.result_type(want)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    close(got, want, **tol)
    if dtype == np.float64 and transform in ("jacfwd", "jacrev"):
        F = _transforms(_body)["F"]
        close(got, num_jac(F, _Z), rtol=1e-6, atol=1e-8)
    if kind != "checkpoint":
        assert seen, "the custom rule was not used"
        want_shape = (3,) if kind == "custom_jvp" else (2,)
        assert set(seen) == {want_shape}, seen


def test_checkpoint_keyword_only_arguments():
    # jax.checkpoint flattens keywords with the arguments; keyword-only ones included
    @ad.checkpoint
    def block(x, *, w, n=2):
        return np.sin(x) * w["a"] ** n

    f = lambda x, a: np.sum(block(x, w={"a": a}))               # noqa: E731
    gx, ga = ad.grad(f, argnums=(0, 1))(X3, 1.5)
    close(gx, np.cos(X3) * 1.5 ** 2)
    close(ga, np.sum(np.sin(X3)) * 2 * 1.5)
    close(ad.jacfwd(lambda x: block(x, w={"a": 1.5}, n=3))(X3), np.diag(np.cos(X3) * 1.5 ** 3))


def test_nondiff_argnums_out_of_range_is_a_clear_error():
    f = ad.custom_jvp(lambda x: x, nondiff_argnums=(1,))
    f.defjvp(lambda n, p, t: (p[0], t[0]))
    with pytest.raises(TypeError, match="nondiff_argnums"):
        f(1.0)
    with pytest.raises(TypeError, match="non-negative"):
        ad.custom_vjp(lambda x: x, nondiff_argnums=(-1,))
