"""The hot-path lanes that skip general machinery, each against the general path it
shortcuts: the scalar root of SciPy's scalar solvers (``implicit._scalar_impl``: a 0-d
primitive output, no index record), ``grad`` with a tuple ``argnums`` of plain arrays
(``api._value_and_grad_leaves``), and the product of a Jacobian's basis seed with a
matrix (``ops.linalg._basis_times``). A lane must give the general path's numbers, in
every mode, nested, batched, float32, and leave the general path to everything else."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import implicit
from autodiff.ops import linalg as alin
from autodiff.scipy import optimize as aso
from autodiff.tree import flatten


def close(a, b, rtol=1e-12, atol=1e-14):
    np.testing.assert_allclose(np.asarray(a, dtype=complex), np.asarray(b, dtype=complex),
                               rtol=rtol, atol=atol)


# ----- the scalar root lane --------------------------------------------------------------
E = np.linspace(-1.0, 1.0, 9) + 0.05 * np.cos(np.arange(9.0))


def occ(mu, e, T):
    return np.sum(1.0 / (1.0 + np.exp((e - mu) / T))) - 4.2


def lane(e, T):
    return aso.brentq(occ, -5.0, 5.0, args=(e, T), xtol=1e-14)


def general(e, T):
    # the same root through the general path: args in a container (not leaves)
    return aso.brentq(lambda x, p: occ(x, p[0], p[1]), -5.0, 5.0, args=([e, T],),
                      xtol=1e-14)


TRANSFORMS = [
    lambda f: ad.grad(f, argnums=(0, 1)),
    lambda f: ad.grad(f, argnums=1),
    lambda f: (lambda e, T: ad.jvp(f, (e, T), (np.sin(e), 0.3))[1]),
    lambda f: (lambda e, T: ad.vjp(f, e, T)[1](2.5)),
    lambda f: ad.jacfwd(f, argnums=(0, 1)),
    lambda f: ad.jacrev(lambda e, T: f(e, T) * np.arange(1.0, 4.0), argnums=(0, 1)),
    lambda f: ad.hessian(f, argnums=0),
    lambda f: ad.hessian(f, argnums=1),
    lambda f: ad.jacfwd(ad.grad(f, argnums=1), argnums=0),
    lambda f: ad.grad(lambda e, T: ad.jvp(lambda T: f(e, T), (T,), (1.0,))[1], argnums=1),
]


@pytest.mark.parametrize("k", range(len(TRANSFORMS)))
def test_scalar_lane_equals_the_general_path(k):
    tr = TRANSFORMS[k]
    got, want = tr(lane)(E, 0.2), tr(general)(E, 0.2)
    for a, b in zip(flatten(got)[0], flatten(want)[0]):
        assert np.shape(a) == np.shape(b)
        close(a, b, rtol=1e-10, atol=1e-12)


def test_scalar_lane_is_taken_and_records_no_index():
    e = ad.Variable(E)
    with ad.Tape() as tape:
        x = lane(e, 0.2)
    assert type(x) is ad.Variable and np.shape(x.value) == ()
    assert [r.primitive for r in tape] == ["custom_root[brentq]"]
    with ad.Tape() as tape:
        general(e, 0.2)
    assert "custom_root[brentq]" in [r.primitive for r in tape]
    assert len(tape) > 1                      # the general path indexes its flat vector


def test_scalar_lane_float32_0d_and_unused_params():
    e32 = E.astype(np.float32)
    ge, gT = ad.grad(lane, argnums=(0, 1))(e32, np.float32(0.2))
    assert ge.dtype == np.float32 and np.result_type(gT) == np.float32
    we, wT = ad.grad(general, argnums=(0, 1))(e32, np.float32(0.2))
    close(ge, we, rtol=1e-6)
    close(gT, wT, rtol=1e-6)
    # a 0-d array param, an int param and a param F does not read
    f = lambda x, e, T, k, c: occ(x, e, T) + 0 * k
    g = ad.grad(lambda T, c: aso.brentq(f, -5.0, 5.0, args=(E, T, 3, c)),
                argnums=(0, 1))(np.array(0.2), 1.5)
    close(g[0], ad.grad(general, argnums=1)(E, 0.2), rtol=1e-8)
    assert g[1] == 0.0
    t = ad.jvp(lambda c: aso.brentq(f, -5.0, 5.0, args=(E, 0.2, 3, c)), (1.5,), (1.0,))[1]
    assert t == 0.0


def test_scalar_lane_refuses_what_the_general_path_refuses():
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ad.grad(lambda a: aso.brentq(lambda x, a: np.where(x > 0, 1.0, -1.0) + 0 * a,
                                     -1.0, 1.0, args=(a,)))(0.3)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ad.jvp(lambda a: aso.brentq(lambda x, a: np.where(x > 0, 1.0, -1.0) + 0 * a,
                                    -1.0, 1.0, args=(a,)), (0.3,), (1.0,))
    # a complex param is refused, as on the general path
    with pytest.raises(NotImplementedError, match="complex parameter"):
        ad.grad(lambda c: aso.brentq(lambda x, c: x ** 3 + x - np.real(c), -5.0, 5.0,
                                     args=(c,)))(1.0 + 0.5j)
    outer = ad.Variable(2.0)
    with pytest.raises(TypeError, match="closes over"):
        ad.grad(lambda a: aso.brentq(lambda x, a: x ** 3 - a * outer, 0.0, 4.0,
                                     args=(a,)))(8.0)


def test_scalar_lane_with_an_ad_jit_residual_replays_on_a_float_root():
    # the compiled sweep is called with the root as a Python float: jit's fast key, no
    # recording per call (a NumPy scalar would take jit's general path each time)
    F = ad.jit(occ)
    f = lambda e, T: aso.brentq(F, -5.0, 5.0, args=(e, T), xtol=1e-14)
    close(ad.grad(f, argnums=(0, 1))(E, 0.2)[0], ad.grad(lane, argnums=(0, 1))(E, 0.2)[0],
          rtol=1e-10)
    (fn,) = implicit._SWEEPS[F].values()
    before = fn.recordings
    for T in (0.2, 0.21, 0.22):
        ad.grad(f, argnums=(0, 1))(E, T)
        ad.jvp(lambda T: f(E, T), (T,), (1.0,))
    assert fn.recordings == before
    assert len(fn._fast) == 1                  # every call took the fast key


# ----- grad with a tuple argnums of plain arrays -----------------------------------------
def _general_grad(f, argnums):
    # the same gradient through the pytree path: the arguments in a list
    def g(*args):
        packed = [args[i] for i in argnums]
        rest = lambda p: f(*[p[argnums.index(i)] if i in argnums else a
                             for i, a in enumerate(args)])
        return tuple(ad.grad(rest)(packed))
    return g


@pytest.mark.parametrize("argnums", [(0, 1), (1, 0), (2,), (0, 2), (2, 1, 0)])
def test_tuple_argnums_lane_equals_the_pytree_path(argnums):
    def f(x, y, s):
        return np.sum(np.sin(x) * y) * s + s ** 2
    args = (np.linspace(0.1, 1.0, 5), np.cos(np.arange(5.0)), 0.7)
    got = ad.grad(f, argnums=argnums)(*args)
    want = _general_grad(f, list(argnums))(*args)
    assert type(got) is tuple and len(got) == len(argnums)
    for a, b in zip(got, want):
        assert type(a) is type(b) and np.shape(a) == np.shape(b)
        close(a, b)


def test_tuple_argnums_lane_edge_cases():
    x, y = np.arange(3.0), np.ones(3, np.float32)
    # an argument the output ignores: zeros of its shape and dtype
    gx, gy = ad.grad(lambda x, y: np.sum(x ** 2), argnums=(0, 1))(x, y)
    close(gx, 2 * x)
    assert gy.dtype == np.float32 and not gy.any()
    # an output independent of every argument
    gx, gy = ad.grad(lambda x, y: 3.0, argnums=(0, 1))(x, y)
    assert not gx.any() and not gy.any() and gy.dtype == np.float32
    # float32 stays float32
    assert ad.grad(lambda x, y: np.sum(x * y), argnums=(0, 1))(x, y)[1].dtype == np.float32
    # writing into an argument: the gradient is of the input as it was
    def w(x, y):
        x[0] = 5.0 * y[0]
        return np.sum(x * x) + np.sum(y)
    gx, gy = ad.grad(w, argnums=(0, 1))(x.copy(), y.astype(float))
    close(gx, [0.0, 2.0, 4.0])
    close(gy, [51.0, 1.0, 1.0])
    # non-scalar output, duplicate and negative argnums, keywords
    with pytest.raises(TypeError, match="real scalar output"):
        ad.grad(lambda x, y: x * y, argnums=(0, 1))(x, y)
    close(ad.grad(lambda x, y: np.sum(x * y), argnums=(-1, 0))(x, x + 1)[0], x)
    gx, = ad.grad(lambda x, y, k=2.0: k * np.sum(x * y), argnums=(0,))(x, x, k=3.0)
    close(gx, 3 * x)
    # has_aux and value_and_grad keep the general path's conventions
    (v, aux), g = ad.value_and_grad(lambda x, y: (np.sum(x * y), "a"), argnums=(0, 1),
                                    has_aux=True)(x, x)
    assert aux == "a" and len(g) == 2
    v, g = ad.value_and_grad(lambda x, y: np.sum(x * y), argnums=(0, 1))(x, 2 * x)
    close(v, 10.0)
    close(g[0], 2 * x)


def test_tuple_argnums_lane_nests():
    f = lambda x, y: np.sum(x ** 3 * y)
    x, y = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    H = ad.jacfwd(lambda x, y: ad.grad(f, argnums=(0, 1))(x, y)[0])(x, y)
    close(H, np.diag(6 * x * y))
    g = ad.grad(lambda x: ad.grad(f, argnums=(0, 1))(x, y)[1] @ np.ones(2))(x)
    close(g, 3 * x ** 2)


# ----- the basis seed times a matrix -----------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_basis_products_give_the_matrix_exactly(dtype, monkeypatch):
    rng = np.random.default_rng(3)
    n = 40
    A = rng.standard_normal((n, n)).astype(dtype)
    if dtype == np.complex128:
        A = A + 1j * rng.standard_normal((n, n))
    x = rng.standard_normal(n).astype(dtype)
    hits = []
    rule = alin._basis_times
    monkeypatch.setattr(alin, "_basis_times",
                        lambda a, b: hits.append(rule(a, b) is not None) or rule(a, b))
    holo = dtype == np.complex128
    for f, J in ((lambda x: A @ x, A), (lambda x: x @ A, A.T),
                 (lambda x: np.tanh(A @ x), None)):
        jf = ad.jacfwd(f, holomorphic=holo)(x) if holo else ad.jacfwd(f)(x)
        jr = ad.jacrev(f, holomorphic=holo)(x) if holo else ad.jacrev(f)(x)
        if J is not None:
            assert jf.dtype == J.dtype and jr.dtype == J.dtype
            np.testing.assert_array_equal(jf, J)
            np.testing.assert_array_equal(jr, J)
        else:
            close(jf, jr, rtol=1e-5 if dtype == np.float32 else 1e-12)
    # jacfwd and jacrev of A @ x and x @ A meet the basis; of tanh(A @ x), only jacfwd
    # does (jacrev's cotangent reaches the product scaled by tanh')
    assert hits == [True] * 5 + [False]


def test_basis_products_fall_back_for_anything_but_the_basis():
    rng = np.random.default_rng(4)
    n = 40
    b = rng.standard_normal((n, 3))
    eye = np.eye(n)
    assert alin._basis_times(eye, b) is not None
    np.testing.assert_array_equal(alin._basis_times(np.vstack([eye, 0 * eye[:5]]), b),
                                  np.vstack([b, np.zeros((5, 3))]))
    near = [eye.copy() for _ in range(5)]
    near[0][3, 7] = 1e-300                      # one off-diagonal entry
    near[1][n - 2, n - 2] = 2.0                 # a diagonal entry not 1
    near[2] = eye[::-1].copy()                  # a permutation
    near[3] = np.vstack([eye, eye[:1]])         # a nonzero row below the basis
    near[4][5, 5] = 0.0
    near[4][5, 6] = 1.0                         # n nonzeros, one off the diagonal
    for x in near:
        assert alin._basis_times(x, b) is None
        np.testing.assert_array_equal(alin._mm(x[None], b)[0], x @ b)
    assert alin._basis_times(np.eye(8), b[:8]) is None          # small: the product
    assert alin._basis_times(np.eye(n, dtype=int), b) is None   # not a float seed


def test_basis_product_in_the_implicit_tangent_system():
    # the dense ∂F/∂x of a fixed point x = tanh(β(J x + h)) is assembled from the basis
    rng = np.random.default_rng(5)
    n = 48
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    J = (A + A.T) / 2
    T = lambda m, beta, h: np.tanh(beta * (J @ m + h))
    h = rng.uniform(0.2, 0.6, n)
    m = lambda beta, h: aso.fixed_point(T, np.zeros(n), args=(beta, h), xtol=1e-13,
                                        method="iteration", maxiter=5000)
    x = m(0.5, h)
    D = np.diag(0.5 * (1 - x ** 2))
    want = np.linalg.solve(np.eye(n) - D @ J, D)                 # dm/dh
    close(ad.jacfwd(m, argnums=1)(0.5, h), want, rtol=1e-9, atol=1e-11)
    close(ad.jacrev(m, argnums=1)(0.5, h), want, rtol=1e-9, atol=1e-11)
    g = ad.grad(lambda h: np.sum(m(0.5, h) * h))(h)
    close(g, x + want.T @ h, rtol=1e-9, atol=1e-11)


def test_scalar_root_with_no_directions_and_empty_params():
    # jacfwd of an empty input: no directions reach the root (found by the seam fuzzer)
    f = lambda v: aso.brentq(lambda x, v: x ** 3 + 2 * x - np.sum(np.sin(v)) - 1.0,
                             -5.0, 5.0, args=(v,))
    for jac in (ad.jacfwd, ad.jacrev):
        J = jac(f)(np.zeros(0))
        assert J.shape == (0,)
    assert ad.grad(f)(np.zeros(0)).shape == (0,)
    close(ad.jacfwd(f)(np.zeros(2)), ad.jacrev(f)(np.zeros(2)))


def test_scalar_root_of_an_f_that_ignores_its_tracked_param_under_jit():
    # under ad.jit the rule takes the general path, whose tangent is None when no tangent
    # reaches F's value: the root's tangent is then none too (found by the seam fuzzer)
    f = lambda v: aso.brentq(lambda x, v: x ** 3 + x - 1.0, -5.0, 5.0, args=(v,)) * v
    v = np.array([0.5, 2.0])
    x = aso.brentq(lambda x: x ** 3 + x - 1.0, -5.0, 5.0)
    for tr in (ad.jacfwd, ad.jacrev):
        close(tr(f)(v), x * np.eye(2))
        close(ad.jit(tr(f))(v), x * np.eye(2), rtol=1e-9)


# ----- the reverse sweep's elementwise step and the reductions on ndarrays ---------------
# backward_pass inlines sum_to, real_like and the first accumulation for an array
# cotangent of an array of its own shape; sum_to and sum use ndarray's methods where the
# cotangent is an ndarray. Each against the general path: NumPy's functions on an ndarray
# subclass (which the fast paths leave alone), and central differences.
class _Sub(np.ndarray):
    pass


@pytest.mark.parametrize("gshape,xshape,nb", [
    ((4,), (), 0), ((3, 4), (4,), 0), ((3, 4), (3, 1), 0), ((3, 4), (1, 4), 0),
    ((2, 3, 4), (3, 1), 0), ((5, 3, 4), (3, 4), 1), ((5, 3, 4), (4,), 1),
    ((5, 3, 4), (), 1), ((5, 4), (1, 1, 4), 0), ((0, 3), (3,), 0), ((3,), (3,), 0)])
def test_sum_to_on_ndarrays_equals_numpys_functions(gshape, xshape, nb):
    from autodiff.arrays import sum_to
    g = np.arange(float(np.prod(gshape))).reshape(gshape) + 0.5
    fast = sum_to(g, np.ones(xshape), nb)
    slow = sum_to(g.view(_Sub), np.ones(xshape), nb)
    assert type(fast) is np.ndarray and fast.shape == np.shape(slow) == gshape[:nb] + xshape
    np.testing.assert_array_equal(fast, np.asarray(slow))
    assert sum_to(g.astype(np.float32), np.ones(xshape), nb).dtype == np.float32


def _fd_grad(f, x, h=1e-6):
    x = np.asarray(x, dtype=float)
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


SWEEP_PROGRAMS = [
    # (f(x, y), x shape, y shape): broadcasting both ways, a float, 0-d, negated partials
    (lambda x, y: np.sum(np.exp(x - y) / (1.0 + y * y)), (3, 1), (1, 4)),
    (lambda x, y: np.sum(1.0 / (1.0 + np.exp((x - y) / 0.3))) - 2.0, (5,), ()),
    (lambda x, y: np.sum(-(x * y) - x / y + (y - x) ** 2), (2, 3), (3,)),
    (lambda x, y: np.sum(np.tanh(x) * np.sin(y)), (), (4,)),
    (lambda x, y: np.sum(np.real(np.exp(1j * x) * y)), (3,), (3,)),   # complex to real
]


@pytest.mark.parametrize("k", range(len(SWEEP_PROGRAMS)))
def test_sweep_elementwise_step_against_finite_differences(k):
    f, xs, ys = SWEEP_PROGRAMS[k]
    rng = np.random.default_rng(k)
    x = rng.uniform(0.5, 1.5, xs) if xs else float(rng.uniform(0.5, 1.5))
    y = rng.uniform(0.5, 1.5, ys) if ys else float(rng.uniform(0.5, 1.5))
    gx, gy = ad.grad(f, argnums=(0, 1))(x, y)
    assert np.shape(gx) == np.shape(x) and np.shape(gy) == np.shape(y)
    close(gx, _fd_grad(lambda v: f(v, y), x), rtol=1e-7, atol=1e-8)
    close(gy, _fd_grad(lambda v: f(x, v), y), rtol=1e-7, atol=1e-8)
    # batched (jacrev's nb = 1 through the same step) and float32 kept
    J = ad.jacrev(lambda x, y: f(x, y) * np.arange(1.0, 3.0), argnums=(0, 1))(x, y)
    close(J[0], np.multiply.outer(np.arange(1.0, 3.0), gx), rtol=1e-12, atol=1e-12)
    x32 = np.asarray(x, np.float32)
    assert np.asarray(ad.grad(f)(x32, y)).dtype == np.float32


@pytest.mark.parametrize("red", [np.sum, np.prod, np.mean, np.var, np.std, np.nansum,
                                 np.nanprod, np.nanmean, np.nanvar, np.nanstd])
def test_reductions_with_dtype_reduce_in_that_dtype(red):
    # (the handlers ignored dtype=: a float32 reduction of float64 values came out float64)
    x = np.linspace(0.1, 1.0, 7)
    f = lambda x: red(x * x, dtype=np.float32)
    v, g = ad.value_and_grad(f)(x)
    assert np.asarray(v).dtype == np.float32
    close(v, red(x * x, dtype=np.float32), rtol=1e-6)
    close(g, ad.grad(lambda x: red(x * x))(x), rtol=1e-5)
    y, t = ad.jvp(f, (x,), (np.ones(7),))
    assert np.asarray(t).dtype == np.float32
    close(t, ad.jvp(lambda x: red(x * x), (x,), (np.ones(7),))[1], rtol=1e-5)


def test_tracked_shape_and_ndim_of_every_value_kind():
    for v in (2.0, np.float64(2.0), np.array(2.0), np.ones(3), np.ones((2, 0))):
        seen = []
        ad.grad(lambda x: (seen.append((x.shape, x.ndim)), np.sum(x * x))[1])(v)
        assert seen == [(np.shape(v), np.ndim(v))]
