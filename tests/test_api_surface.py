"""The transforms' API surface (API.md "More transforms"): has_aux everywhere, linearize,
linear_operator, chunk_size, JAX's exception types, namedtuple pytrees, float32 results."""
import collections
import typing

import numpy as np
import pytest
import scipy.sparse.linalg as spla

import autodiff as ad


def close(a, b, rtol=1e-9, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a, dtype=complex), np.asarray(b, dtype=complex),
                               rtol=rtol, atol=atol)


def assert_plain(a):
    for leaf in ad.tree.flatten(a)[0]:
        assert not type(leaf).__module__.startswith("autodiff"), type(leaf)


X = np.array([0.3, -1.2, 0.8])


def f_vec(x):
    return np.stack([x[0] * x[1], np.sin(x[2]) * x[0], x[1] ** 2]) + np.tanh(x)


def J_vec(x):
    return ad.jacobian(f_vec, mode="reverse")(x)


# ----- 1. has_aux ------------------------------------------------------------------------

def with_aux(x):
    y = f_vec(x)
    return y, {"y": y, "tag": "t", "n": 3}


@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "jacobian"])
def test_jacobians_has_aux(name):
    jac, aux = getattr(ad, name)(with_aux, has_aux=True)(X)
    close(jac, J_vec(X))
    assert aux["tag"] == "t" and aux["n"] == 3
    assert_plain(aux)
    close(aux["y"], f_vec(X))


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_modes_has_aux(mode):
    jac, aux = ad.jacobian(with_aux, mode=mode, has_aux=True)(X)
    close(jac, J_vec(X))
    assert_plain(aux)


def test_hessian_has_aux():
    def f(x):
        s = np.sum(np.sin(x) * x ** 2)
        return s, (s, np.cos(x))

    H, (s, c) = ad.hessian(f, has_aux=True)(X)
    close(H, ad.hessian(lambda x: f(x)[0])(X))
    assert_plain((s, c))
    close(s, f(X)[0])
    close(c, np.cos(X))


def test_jvp_has_aux():
    v = np.array([1.0, 0.5, -2.0])
    out, tan, aux = ad.jvp(with_aux, (X,), (v,), has_aux=True)
    close(out, f_vec(X))
    close(tan, J_vec(X) @ v)
    assert_plain(aux)
    close(aux["y"], f_vec(X))


def test_vjp_has_aux():
    u = np.array([1.0, 0.5, -2.0])
    out, pull, aux = ad.vjp(with_aux, X, has_aux=True)
    close(pull(u)[0], u @ J_vec(X))
    assert_plain(aux)
    close(aux["y"], f_vec(X))


def test_has_aux_nested_aux_is_plain_at_its_level():
    # Under an outer grad the aux of the inner jacfwd is still tracked by the outer level,
    # so the outer transform can differentiate through it.
    def outer(x):
        jac, aux = ad.jacfwd(lambda y: (np.sin(y) * x, np.sum(y * x)), has_aux=True)(X)
        return np.sum(jac) + aux

    eps = 1e-6
    num = (outer(0.7 + eps) - outer(0.7 - eps)) / (2 * eps)
    close(ad.grad(outer)(0.7), num, rtol=1e-7)


@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "jacobian", "hessian", "grad",
                                  "value_and_grad"])
def test_aux_not_a_pair_is_type_error(name):
    want = "grad" if name == "value_and_grad" else name
    with pytest.raises(TypeError, match=rf"^{want}\(has_aux=True\).*\(out, aux\).*a float"):
        getattr(ad, name)(lambda x: np.sum(x), has_aux=True)(X)
    with pytest.raises(TypeError, match=r"has_aux=True.*\(out, aux\).*tuple of length 3"):
        getattr(ad, name)(lambda x: (np.sum(x), 1, 2), has_aux=True)(X)


def test_aux_not_a_pair_jvp_vjp():
    with pytest.raises(TypeError, match=r"jvp.*has_aux=True.*\(out, aux\)"):
        ad.jvp(np.sin, (X,), (X,), has_aux=True)
    with pytest.raises(TypeError, match=r"vjp.*has_aux=True.*\(out, aux\)"):
        ad.vjp(np.sin, X, has_aux=True)


# ----- 2. linearize ----------------------------------------------------------------------

def counted(f):
    def g(*a):
        g.calls += 1
        return f(*a)
    g.calls = 0
    return g


def test_linearize_replays_without_running_f():
    f = counted(f_vec)
    out, f_jvp = ad.linearize(f, X)
    assert f.calls == 1
    close(out, f_vec(X))
    rng = np.random.default_rng(0)
    for _ in range(3):
        v = rng.standard_normal(3)
        close(f_jvp(v), J_vec(X) @ v)
        assert_plain(f_jvp(v))
    assert f.calls == 1


def test_linearize_pytrees():
    def f(p, s):
        return {"a": np.sin(p["w"]) * s, "b": (np.sum(p["w"] ** 2), p["v"] * s ** 2)}

    p = {"w": X, "v": np.array([[1.0, 2.0]])}
    s = 0.7
    tp = {"w": np.array([0.1, 0.2, 0.3]), "v": np.array([[-1.0, 0.5]])}
    ts = 0.4
    out, f_jvp = ad.linearize(f, p, s)
    want_out, want_t = ad.jvp(f, (p, s), (tp, ts))
    got = f_jvp(tp, ts)
    assert ad.tree.flatten(got)[1] == ad.tree.flatten(want_t)[1]
    for a, b in zip(ad.tree.flatten(got)[0], ad.tree.flatten(want_t)[0]):
        close(a, b)


def test_linearize_complex_holomorphic():
    z = np.array([0.3 + 0.4j, -1.0 + 0.2j])
    t = np.array([1.0 - 0.5j, 0.25 + 2.0j])
    _, f_jvp = ad.linearize(np.sin, z)
    close(f_jvp(t), np.cos(z) * t)


def test_linearize_under_batching():
    # jacfwd/jacrev of f_jvp push a batch of tangents through the replayed linearisation.
    _, f_jvp = ad.linearize(f_vec, X)
    close(ad.jacfwd(f_jvp)(np.zeros(3)), J_vec(X))
    close(ad.jacrev(f_jvp)(np.zeros(3)), J_vec(X))


def test_linearize_nested_in_grad():
    v = np.array([1.0, -0.5, 2.0])
    u = np.array([0.3, 0.2, -1.0])

    def g(x):                       # u·J(x)v, differentiated in x through linearize
        return u @ ad.linearize(f_vec, x)[1](v)

    want = ad.grad(lambda x: u @ ad.jvp(f_vec, (x,), (v,))[1])(X)
    close(ad.grad(g)(X), want)
    close(ad.jacfwd(g)(X), want)


def test_linearize_tangent_mismatch():
    _, f_jvp = ad.linearize(f_vec, X)
    with pytest.raises(ValueError, match="shape"):
        f_jvp(np.zeros(4))
    with pytest.raises(TypeError, match="structure"):
        f_jvp((np.zeros(3),))
    with pytest.raises(TypeError, match="structure"):
        f_jvp(np.zeros(3), np.zeros(3))


# ----- 3. linear_operator ----------------------------------------------------------------

def test_linear_operator_products():
    x = np.array([[0.3, -1.2], [0.8, 0.1]])

    def f(x):
        return np.concatenate([np.ravel(np.sin(x) @ x), np.reshape(np.sum(x ** 3), (1,))])

    A = ad.linear_operator(f, x)
    J = np.reshape(ad.jacfwd(f)(x), (5, 4))
    assert A.shape == (5, 4) and A.dtype == np.float64
    rng = np.random.default_rng(1)
    v, u = rng.standard_normal(4), rng.standard_normal(5)
    close(A.matvec(v), J @ v)
    close(A @ v, J @ v)
    close(A.matvec(v[:, None]), (J @ v)[:, None])      # SciPy's (n, 1) column
    close(A.rmatvec(u), J.T @ u)
    V, U = rng.standard_normal((4, 3)), rng.standard_normal((5, 2))
    close(A.matmat(V), J @ V)
    close(A @ V, J @ V)
    close(A.rmatmat(U), J.T @ U)
    close(A.H @ U, J.T @ U)


def test_linear_operator_matmat_is_one_sweep():
    f = counted(lambda x: np.tanh(x) * x[0])
    A = ad.linear_operator(f, X)
    f.calls = 0
    A.matmat(np.eye(3))
    assert f.calls == 1


def test_linear_operator_gmres():
    x = np.array([0.5, -0.3, 0.2, 0.9])
    M = np.array([[4.0, 1.0, 0.0, 0.5], [1.0, 3.0, 0.2, 0.0], [0.0, 0.2, 5.0, 1.0],
                  [0.5, 0.0, 1.0, 2.0]])

    def f(x):
        return M @ x + 0.1 * np.sin(x)

    A = ad.linear_operator(f, x)
    b = np.array([1.0, 2.0, -1.0, 0.5])
    sol, info = spla.gmres(A, b, rtol=1e-12, atol=0.0)
    assert info == 0
    close(ad.jacfwd(f)(x) @ sol, b, rtol=1e-9, atol=1e-10)


def test_linear_operator_lsqr():
    x = np.array([0.5, -0.3, 0.2])

    def f(x):
        return np.stack([x[0] * x[1], x[1] + x[2] ** 2, np.exp(x[0]), x[2] - x[0], x[1]])

    A = ad.linear_operator(f, x)
    b = np.arange(5.0)
    sol = spla.lsqr(A, b, atol=1e-14, btol=1e-14)[0]
    J = ad.jacrev(f)(x)
    close(sol, np.linalg.lstsq(J, b, rcond=None)[0], rtol=1e-8, atol=1e-10)


def test_linear_operator_eigsh_hessian():
    x = np.linspace(-1.0, 1.0, 8)

    def f(x):
        return np.sum(x ** 4) / 4 + np.sum(np.diff(x) ** 2) + np.sum(np.sin(x))

    H = ad.linear_operator(ad.grad(f), x)
    w = spla.eigsh(H, k=3, which="LA", return_eigenvectors=False)
    want = np.linalg.eigvalsh(ad.hessian(f)(x))[-3:]
    close(np.sort(w), want, rtol=1e-8, atol=1e-10)


def test_linear_operator_complex_refused():
    with pytest.raises(TypeError, match="linear_operator.*complex"):
        ad.linear_operator(np.sin, np.array([1.0 + 1.0j]))


# ----- 4. chunk_size ---------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 100])
@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "jacobian"])
def test_chunk_size_same_result(name, chunk):
    x = {"a": np.array([[0.3, -1.2], [0.8, 0.1]]), "b": 0.5}

    def f(p):
        return {"y": np.sin(p["a"]) * p["b"], "z": np.sum(p["a"]) * p["b"] ** 2}

    full = getattr(ad, name)(f)(x)
    got = getattr(ad, name)(f, chunk_size=chunk)(x)
    la, ta = ad.tree.flatten(full)
    lb, tb = ad.tree.flatten(got)
    assert ta == tb
    for a, b in zip(la, lb):
        close(a, b)


@pytest.mark.parametrize("name", ["jacfwd", "jacrev"])
def test_chunk_size_caps_directions_per_sweep(name):
    f = counted(lambda x: np.sin(x) * np.sum(x))
    x = np.linspace(0.1, 1.0, 7)
    close(getattr(ad, name)(f, chunk_size=3)(x), ad.jacfwd(lambda x: np.sin(x) * np.sum(x))(x))
    # forward: one run of f per chunk of 3 directions (3 chunks); reverse: f runs once.
    assert f.calls == (3 if name == "jacfwd" else 1)


def test_hessian_chunk_size():
    f = lambda x: np.sum(np.sin(x) * x ** 2) * x[0]   # noqa: E731
    x = np.linspace(0.1, 1.0, 5)
    close(ad.hessian(f, chunk_size=2)(x), ad.hessian(f)(x))


def test_chunk_size_must_be_positive():
    for bad in (0, -1):
        with pytest.raises(ValueError, match="chunk_size"):
            ad.jacfwd(np.sin, chunk_size=bad)(X)


# ----- 5. exception types ----------------------------------------------------------------

def test_grad_argument_by_keyword_is_type_error():
    with pytest.raises(TypeError, match=r"argnums=0 requires at least 1 positional argument"):
        ad.grad(lambda x: x ** 2)(x=1.0)
    with pytest.raises(TypeError, match=r"argnums=0 requires at least 1 positional argument"):
        ad.grad(lambda x: np.sum(x ** 2))(x=X)


@pytest.mark.parametrize("name", ["grad", "value_and_grad", "jacfwd", "jacrev", "jacobian",
                                  "hessian", "elementwise_grad"])
def test_argnums_out_of_range_is_type_error(name):
    with pytest.raises(TypeError, match=r"argnums=\(0, 2\) requires at least 3 positional"):
        getattr(ad, name)(lambda x, y: np.sum(x * y), argnums=(0, 2))(X, X)


def test_jvp_tangent_mismatch():
    with pytest.raises(TypeError, match="same tree structure"):
        ad.jvp(lambda p: p["a"], ({"a": X},), ({"b": X},))
    with pytest.raises(TypeError, match="same tree structure"):
        ad.jvp(lambda p: p[0], ((X, X),), ((X,),))
    with pytest.raises(TypeError, match="same tree structure"):
        ad.jvp(np.sin, (X,), (X, X))
    with pytest.raises(ValueError, match="shape"):          # JAX: ValueError for shapes
        ad.jvp(np.sin, (X,), (np.ones(4),))
    with pytest.raises(TypeError, match="tuples or lists"):
        ad.jvp(np.sin, X, X)


def test_vjp_cotangent_mismatch():
    _, pull = ad.vjp(lambda x: (np.sin(x), np.sum(x)), X)
    with pytest.raises(TypeError, match="structure"):
        pull(X)
    with pytest.raises(TypeError, match="structure"):
        pull([X, 1.0])
    with pytest.raises(ValueError, match="shape"):          # JAX: ValueError for shapes
        pull((np.ones(4), 1.0))
    _, pull = ad.vjp(np.sin, X)
    with pytest.raises(ValueError, match="shape"):
        pull(np.ones((3, 1)))


# ----- 6. namedtuples, None, empty containers --------------------------------------------

class Point(typing.NamedTuple):
    x: float
    y: np.ndarray


Pair = collections.namedtuple("Pair", ["a", "b"])


def test_namedtuple_round_trip():
    for t in (Point(1.0, X), Pair(X, Point(2.0, None)), Pair((), {}), [None, (), []]):
        leaves, tree = ad.tree.flatten(t)
        back = ad.tree.unflatten(tree, leaves)
        assert type(back) is type(t)
        assert repr(back) == repr(t)
    assert ad.tree.flatten(Pair(X, Point(2.0, None)))[0][1] == 2.0
    assert len(ad.tree.flatten(Pair(X, Point(2.0, None)))[0]) == 2


def test_grad_wrt_namedtuple():
    def f(p):
        return p.x ** 2 * np.sum(np.sin(p.y))

    g = ad.grad(f)(Point(1.5, X))
    assert type(g) is Point
    close(g.x, 2 * 1.5 * np.sum(np.sin(X)))
    close(g.y, 1.5 ** 2 * np.cos(X))
    ad.check_grads(lambda x, y: f(Point(x, y)), (1.5, X), order=2)


def test_grad_of_a_namedtuple_output_is_refused_by_name():
    with pytest.raises(TypeError, match="grad requires a real scalar output.*SlogdetResult"):
        ad.grad(np.linalg.slogdet)(np.array([[2.0, 0.3], [0.1, -1.5]]))


def test_jacobian_of_slogdet():
    A = np.array([[2.0, 0.3], [0.1, -1.5]])
    res = np.linalg.slogdet(A)
    for mode in ("forward", "reverse"):
        J = ad.jacobian(np.linalg.slogdet, mode=mode)(A)
        assert type(J) is type(res)
        close(J.sign, np.zeros((2, 2)))
        close(J.logabsdet, np.linalg.inv(A).T)


def test_eigh_result_is_namedtuple_pytree():
    A = np.array([[2.0, 0.3], [0.3, -1.5]])
    out, tan = ad.jvp(np.linalg.eigh, (A,), (np.eye(2),))
    assert type(out) is type(np.linalg.eigh(A)) and type(tan) is type(out)
    close(tan.eigenvalues, [1.0, 1.0])


def test_none_and_empty_containers_pass_through():
    def f(p):
        return {"y": np.sum(p["w"] ** 2), "none": None, "empty": (), "e": []}

    p = {"w": X, "skip": None, "nothing": {}}
    g = ad.grad(lambda p: f(p)["y"])(p)
    assert g["skip"] is None and g["nothing"] == {}
    close(g["w"], 2 * X)
    J = ad.jacrev(f)(p)
    assert J["none"] is None and J["empty"] == () and J["e"] == []
    close(J["y"]["w"], 2 * X)
    out, tan = ad.jvp(f, (p,), ({"w": X, "skip": None, "nothing": {}},))
    assert tan["none"] is None and tan["empty"] == ()
    close(tan["y"], 2 * X @ X)


# ----- 7. float32 stays float32 ----------------------------------------------------------

X32 = X.astype(np.float32)


def scalar32(x):
    return np.sum(np.sin(x) * x ** 2) + x @ x


@pytest.mark.parametrize("transform", [
    lambda x: ad.grad(scalar32)(x),
    lambda x: ad.value_and_grad(scalar32)(x)[1],
    lambda x: ad.hessian(scalar32)(x),
    lambda x: ad.hessian(scalar32, chunk_size=2)(x),
    lambda x: ad.jacfwd(ad.grad(scalar32))(x),
    lambda x: ad.jacrev(ad.grad(scalar32))(x),
    lambda x: ad.jacfwd(np.tanh)(x),
    lambda x: ad.jacrev(np.tanh)(x),
    lambda x: ad.jacobian(np.tanh)(x),
    lambda x: ad.jvp(np.tanh, (x,), (x,))[1],
    lambda x: ad.jvp(ad.grad(scalar32), (x,), (x,))[1],
    lambda x: ad.vjp(np.tanh, x)[1](x)[0],
    lambda x: ad.vjp(ad.grad(scalar32), x)[1](x)[0],
    lambda x: ad.hvp(scalar32, x, x),
    lambda x: ad.linearize(np.tanh, x)[1](x),
    lambda x: ad.linearize(ad.grad(scalar32), x)[1](x),
    lambda x: ad.elementwise_grad(np.tanh)(x),
], ids=["grad", "value_and_grad", "hessian", "hessian_chunked", "jacfwd_grad", "jacrev_grad",
        "jacfwd", "jacrev", "jacobian", "jvp", "jvp_grad", "vjp", "vjp_grad", "hvp",
        "linearize", "linearize_grad", "elementwise_grad"])
def test_float32_stays_float32(transform):
    got = transform(X32)
    assert got.dtype == np.float32, got.dtype
    want = transform(X)
    close(got, want, rtol=1e-5, atol=1e-6)


def test_float32_outputs_of_the_primal():
    out, tan = ad.jvp(ad.grad(scalar32), (X32,), (X32,))
    assert out.dtype == np.float32
    assert ad.linear_operator(np.tanh, X32).dtype == np.float32
