"""Sparse derivatives: colourings (checked by checkers of their own), compressed Jacobians
and Hessians against dense ones, scipy.sparse matrices meeting tracked values, spsolve, and
the sparse AD Jacobian in scipy's stiff solver."""
import numpy as np
import pytest
import scipy.sparse as sps
from scipy.integrate import solve_ivp

import autodiff as ad
from autodiff.colouring import (column_colouring, decompress_star, row_colouring, seed_matrix,
                                star_colouring)
from autodiff.scipy.integrate import ivp_jacobian
from autodiff.scipy.sparse import csr_array
from autodiff.scipy.sparse.linalg import spsolve


# ----- Programs with known patterns -----
def bratu(u, lam=1.0):
    h = 1.0 / (u.size + 1)
    up = np.concatenate([np.zeros(1), u, np.zeros(1)])
    return (up[:-2] - 2 * u + up[2:]) / h ** 2 + lam * np.exp(u)


def brusselator_2d(y, N):
    """Two species per point of an N × N periodic grid, five-point diffusion; y is (N, N, 2)
    flattened (the species interleaved point by point)."""
    Y = y.reshape(N, N, 2)
    u, v = Y[..., 0], Y[..., 1]

    def lap(a):
        return (np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1) + np.roll(a, -1, 1)
                - 4 * a)
    du = 1.0 + u * u * v - 4.4 * u + 10.0 * lap(u)
    dv = 3.4 * u - u * u * v + 10.0 * lap(v)
    return np.stack([du, dv], axis=-1).reshape(-1)


def energy_5(x, N):
    """A nonlinear energy on an N × N grid whose Hessian is the five-point stencil."""
    X = x.reshape(N, N)
    return (np.sum((X[1:] - X[:-1]) ** 2) + np.sum((X[:, 1:] - X[:, :-1]) ** 2)
            + np.sum(np.cosh(X)))


def energy_9(x, N):
    """Adds the diagonal neighbours: the nine-point stencil."""
    X = x.reshape(N, N)
    return (energy_5(x, N) + np.sum(np.sin(X[1:, 1:] * X[:-1, :-1]))
            + np.sum((X[1:, :-1] - X[:-1, 1:]) ** 2))


def grid_pattern(N, nine=False):
    idx = np.arange(N * N).reshape(N, N)
    offs = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
    if nine:
        offs += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    rows, cols = [], []
    for di, dj in offs:
        a = idx[max(0, -di):N - max(0, di), max(0, -dj):N - max(0, dj)]
        b = idx[max(0, di):N - max(0, -di), max(0, dj):N - max(0, -dj)]
        rows.append(a.ravel())
        cols.append(b.ravel())
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sps.csr_array((np.ones(r.size, bool), (r, c)), shape=(N * N, N * N))


# ----- Checkers of their own -----
def assert_column_colouring(P, colours):
    """No two columns of one colour have a nonzero in the same row."""
    P = sps.csr_array(P)
    colours = np.asarray(colours)
    assert colours.shape == (P.shape[1],)
    for i in range(P.shape[0]):
        cs = colours[P.indices[P.indptr[i]:P.indptr[i + 1]]]
        assert len(set(cs.tolist())) == cs.size, f"row {i} has two columns of one colour"


def assert_star_colouring(P, colours, seed=0):
    """Distance-1 valid, and H·S recovers a random symmetric matrix with the pattern."""
    P = sps.csr_array(P, dtype=bool)
    P = sps.csr_array(P + P.T)
    rng = np.random.default_rng(seed)
    C = P.tocoo()
    off = C.row != C.col
    assert np.all(colours[C.row[off]] != colours[C.col[off]]), "neighbours share a colour"
    vals = rng.standard_normal(C.nnz)
    H = sps.coo_array((vals, (C.row, C.col)), shape=P.shape).toarray()
    H = H + H.T
    B = H @ seed_matrix(colours).T
    np.testing.assert_array_equal(decompress_star(B, P, colours).toarray(), H)


def n_colours(c):
    return int(np.max(c)) + 1 if np.size(c) else 0


PATTERNS = {
    "tridiagonal": sps.diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(9, 9)),
    "random": sps.random_array((12, 10), density=0.25, random_state=0),
    "dense-row": np.vstack([np.ones((1, 6)), np.eye(6)]),
    "empty": np.zeros((3, 4)),
    "grid-5": grid_pattern(5),
    "grid-9": grid_pattern(5, nine=True),
}


@pytest.mark.parametrize("name", PATTERNS)
def test_column_and_row_colourings_are_valid(name):
    P = sps.csr_array(PATTERNS[name])
    assert_column_colouring(P, column_colouring(P))
    assert_column_colouring(P.T, row_colouring(P))


@pytest.mark.parametrize("name", ["tridiagonal", "grid-5", "grid-9"])
def test_star_colouring_recovers_symmetric_matrices(name):
    P = PATTERNS[name]
    assert_star_colouring(P, star_colouring(P))


def test_star_colouring_of_random_symmetric_patterns():
    for seed in range(5):
        A = sps.random_array((15, 15), density=0.2, random_state=seed)
        P = sps.csr_array(A + A.T + sps.eye_array(15))
        assert_star_colouring(P, star_colouring(P), seed)


def test_checker_catches_a_bad_colouring():
    P = PATTERNS["tridiagonal"]
    with pytest.raises(AssertionError):
        assert_column_colouring(P, np.zeros(9, int))
    with pytest.raises((AssertionError, ValueError)):
        assert_star_colouring(P, np.arange(9) % 2)         # distance-1 only: not a star


def test_colour_counts():
    assert n_colours(column_colouring(PATTERNS["tridiagonal"])) == 3
    assert n_colours(star_colouring(np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1))) <= 3
    arrow = np.eye(8, dtype=bool)
    arrow[0] = arrow[:, 0] = True
    assert n_colours(star_colouring(arrow)) == 2           # where columns need 8
    assert n_colours(column_colouring(arrow)) == 8
    J = ad.sparsity(lambda y: brusselator_2d(y, 16))(np.ones(512))
    assert n_colours(column_colouring(J)) <= 10


# ----- sparse_jacobian -----
def test_bratu_three_colours_and_equal_to_dense():
    u = np.linspace(0.1, 0.5, 50)
    jac = ad.sparse_jacobian(bratu)
    J = jac(u)
    assert sps.issparse(J) and J.format == "csr" and J.shape == (50, 50)
    np.testing.assert_allclose(J.toarray(), ad.jacobian(bratu)(u), rtol=1e-12)
    assert jac.n_colours == 3 and jac.mode == "forward"
    assert jac.colours.shape == (50,) and jac.colors is jac.colours
    assert (jac.sparsity != sps.csr_array(np.abs(J.toarray()) > 0)).nnz == 0


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
@pytest.mark.parametrize("format", ["csr", "csc", "coo"])
def test_modes_and_formats(mode, format):
    N = 6
    y = np.random.default_rng(0).uniform(0.5, 1.5, 2 * N * N)
    f = lambda y: brusselator_2d(y, N)
    J = ad.sparse_jacobian(f, mode=mode, format=format)(y)
    assert J.format == format
    np.testing.assert_allclose(J.toarray(), ad.jacobian(f)(y), rtol=1e-12, atol=1e-12)


def test_auto_picks_reverse_for_a_dense_row():
    f = lambda x: np.stack([np.sum(x ** 2), x[0] * x[1]])
    jac = ad.sparse_jacobian(f)
    x = np.arange(1.0, 9.0)
    np.testing.assert_allclose(jac(x).toarray(), ad.jacobian(f)(x))
    assert jac.mode == "reverse" and jac.n_colours == 2


def test_explicit_sparsity_scipy_or_dense_and_its_errors():
    u = np.linspace(0.1, 0.5, 20)
    P = sps.diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(20, 20))
    want = ad.jacobian(bratu)(u)
    for pattern in (P, sps.csr_matrix(P), P.toarray() != 0):
        jac = ad.sparse_jacobian(bratu, sparsity=pattern)
        np.testing.assert_allclose(jac(u).toarray(), want, rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        ad.sparse_jacobian(bratu, sparsity=sps.eye_array(19))(u)
    with pytest.raises(ValueError, match="rows"):
        ad.sparse_jacobian(lambda x: x[:-1], sparsity=sps.eye_array(20))(u)
    with pytest.raises(ValueError):
        ad.sparse_jacobian(bratu, mode="sideways")
    with pytest.raises(ValueError):
        ad.sparse_jacobian(bratu, format="dense")
    with pytest.raises(TypeError):
        ad.sparse_jacobian(bratu, argnums=(0, 1))


def test_pattern_computed_once_per_shape():
    calls = []

    def f(x):
        calls.append(1)
        return np.sin(x) * x[::-1]
    jac = ad.sparse_jacobian(f)
    jac(np.ones(6))
    first = len(calls)
    pattern = jac.sparsity
    jac(np.full(6, 2.0))
    # No detection again; the compressed sweep is a replayed recording (ad.jit), so f's
    # Python body does not even run (side effects at recording only, JAX's rule).
    assert len(calls) == first and jac.sparsity is pattern
    jac(np.ones(8))                                                  # a new shape: detected
    assert jac.sparsity.shape == (8, 8)
    np.testing.assert_allclose(jac(np.ones(8)).toarray(), ad.jacobian(f)(np.ones(8)))


def test_shapes_flatten_and_float32_stays():
    f = lambda X: (X[1:] * X[:-1]).T              # (3, 4) -> (4, 2)
    X = np.arange(1.0, 13.0).reshape(3, 4).astype(np.float32)
    J = ad.sparse_jacobian(f)(X)
    assert J.shape == (8, 12) and J.dtype == np.float32
    np.testing.assert_allclose(J.toarray(), ad.jacobian(f)(X).reshape(8, 12))
    Jr = ad.sparse_jacobian(f, mode="reverse")(X)
    assert Jr.dtype == np.float32
    np.testing.assert_allclose(Jr.toarray(), J.toarray())


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_scalar_empty_and_constant_cases(mode):
    cases = [(lambda x: np.stack([x ** 2, np.sin(x)]), 2.0, (2, 1)),
             (lambda x: 3 * x, np.array(2.0), (1, 1)),
             (lambda x: np.sum(x ** 2), np.arange(3.0), (1, 3)),
             (lambda x: 2 * x, np.zeros(0), (0, 0)),
             (lambda x: np.ones(3), np.ones(2), (3, 2))]
    for f, x, shape in cases:
        jac = ad.sparse_jacobian(f, mode=mode)
        for _ in range(2):                  # the second call takes the shortcut
            J = jac(x)
            assert J.shape == shape
            np.testing.assert_allclose(J.toarray(), np.reshape(ad.jacobian(f)(x), shape))
    hes = ad.sparse_hessian(lambda x: x ** 3)
    for x in (2.0, 2.0, 3.0):
        np.testing.assert_allclose(hes(x).toarray(), [[6.0 * x]])


def test_argnums_and_keywords():
    f = lambda a, x, scale=1.0: scale * a * np.exp(x[1:] - x[:-1])
    x = np.linspace(0.0, 1.0, 7)
    J = ad.sparse_jacobian(f, argnums=1)(2.0, x, scale=3.0)
    np.testing.assert_allclose(J.toarray(), ad.jacobian(lambda x: f(2.0, x, 3.0))(x))


def test_inside_another_transform_is_refused():
    # A scipy.sparse result cannot carry an outer derivative: refused, never dropped.
    x = np.linspace(0.2, 1.0, 6)
    with pytest.raises(TypeError, match="scipy.sparse"):
        ad.grad(lambda s: ad.sparse_jacobian(bratu)(s * x).sum())(1.0)
    with pytest.raises(TypeError, match="scipy.sparse"):
        ad.grad(lambda s: ad.sparse_jacobian(lambda y: s * y)(x).sum())(1.0)
    with pytest.raises(TypeError, match="scipy.sparse"):
        ad.grad(lambda s: ad.sparse_hessian(lambda y: np.sum(s * y ** 3))(x).sum())(1.0)


def _kept(M):
    return M.copy(), {k: np.array(v, copy=True) for k, v in vars(M).items()
                      if isinstance(v, np.ndarray)}


@pytest.mark.parametrize("format", ["csr", "csc", "coo"])
@pytest.mark.parametrize("which", ["forward", "reverse", "hessian"])
def test_results_never_alias_between_calls(format, which):
    # The second call's matrix must survive anything done to the first, in place.
    x = np.linspace(0.1, 0.9, 12)
    if which == "hessian":
        fn = ad.sparse_hessian(lambda x: np.sum(x[1:] * x[:-1] ** 2) + np.sum(x ** 4),
                               format=format)
    else:
        fn = ad.sparse_jacobian(bratu, mode=which, format=format)
    first, second = fn(x), fn(x)
    assert fn._fast                 # the second call took the shortcut past ad.jit
    want, arrays = _kept(second)
    first.data[:] = 0
    for v in vars(first).values():
        if isinstance(v, np.ndarray):
            v[...] = 0
        elif isinstance(v, tuple):          # coo's coords
            for c in v:
                if isinstance(c, np.ndarray):
                    c[...] = 0
    if format != "coo":
        first.eliminate_zeros()
    third = fn(x)
    for M in (second, third):
        assert M.format == format and (M != want).nnz == 0
    for k, v in arrays.items():
        np.testing.assert_array_equal(vars(second)[k], v)
    assert third.data is not second.data
    if format != "coo":
        assert third.indices is not second.indices and third.indptr is not second.indptr
        assert third.has_canonical_format
        third.sum_duplicates()
        assert (third != want).nnz == 0


def test_results_equal_scipys_constructor():
    # The result assembled from the template is the array SciPy's constructor would give.
    u = np.linspace(0.1, 0.5, 30)
    for format in ("csr", "csc", "coo"):
        fn = ad.sparse_jacobian(bratu, format=format)
        fn(u)
        J = fn(u)
        ref = {"csr": sps.csr_array, "csc": sps.csc_array, "coo": sps.coo_array}[format](
            ad.jacobian(bratu)(u))
        assert type(J) is type(ref) and J.shape == ref.shape
        np.testing.assert_allclose((J - ref).toarray(), 0, atol=1e-9)
        np.testing.assert_allclose((J @ np.ones(30)), ref @ np.ones(30), rtol=1e-12)
        np.testing.assert_allclose(J.T.toarray(), ref.T.toarray(), rtol=1e-12)
        assert repr(J).startswith("<")          # printable: its state is complete


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_blocks_of_colours_equal_one_sweep(mode, monkeypatch):
    # Large problems replay one program per block of colours: the same numbers.
    import autodiff.compressed as compressed
    N = 6
    y = np.random.default_rng(1).uniform(0.5, 1.5, 2 * N * N)
    f = lambda y: brusselator_2d(y, N)
    want = ad.jacobian(f)(y)
    monkeypatch.setattr(compressed, "_BLOCK", 2 * N * N * 3)       # three colours a block
    jac = ad.sparse_jacobian(f, mode=mode)
    for _ in range(2):
        np.testing.assert_allclose(jac(y).toarray(), want, rtol=1e-12, atol=1e-12)
    (plan,) = jac._plans.values()
    assert len(plan.run) == -(-jac.n_colours // 3) > 1
    monkeypatch.setattr(compressed, "_BLOCK", 1)                   # one colour a block
    x = np.linspace(-1, 1, 16)
    hes = ad.sparse_hessian(lambda x: energy_9(x, 4))
    for _ in range(2):
        np.testing.assert_allclose(hes(x).toarray(), ad.hessian(lambda x: energy_9(x, 4))(x),
                                   rtol=1e-12, atol=1e-12)
    (plan,) = hes._plans.values()
    assert len(plan.run) == hes.n_colours > 1


def test_value_branches_and_errors_leave_the_cache_usable():
    # A branch on values is guarded in the recording: the other branch records again,
    # and the shortcut past ad.jit follows; an exception in a call changes nothing.
    def f(x):
        if np.sum(x) > 0:
            return x[1:] * x[:-1]
        if np.sum(x) < -100:
            raise ArithmeticError("too negative")
        return np.sin(x[1:]) + x[:-1] ** 3
    P = sps.diags_array([1.0, 1.0], offsets=[0, 1], shape=(7, 8))
    jac = ad.sparse_jacobian(f, sparsity=P)
    pos, neg = np.linspace(0.5, 1.5, 8), np.linspace(-1.5, -0.5, 8)
    for x in (pos, pos, neg, neg, pos, neg):
        np.testing.assert_allclose(jac(x).toarray(), ad.jacobian(f)(x), rtol=1e-12)
    with pytest.raises(ArithmeticError, match="too negative"):
        jac(np.full(8, -50.0))
    for x in (pos, neg):
        np.testing.assert_allclose(jac(x).toarray(), ad.jacobian(f)(x), rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        jac(np.ones(5))                      # the given pattern does not fit: no plan kept
    np.testing.assert_allclose(jac(pos).toarray(), ad.jacobian(f)(pos), rtol=1e-12)


def test_shortcut_keys_on_shape_and_dtype():
    f = lambda X: np.tanh(X[1:] - X[:-1]) * X[1:]
    jac = ad.sparse_jacobian(f)
    for X in (np.linspace(0, 1, 6), np.linspace(0, 1, 6).astype(np.float32),
              np.linspace(0, 1, 9), np.linspace(0, 1, 6).astype(np.float32),
              np.linspace(0, 1, 6), np.linspace(0, 1, 12).reshape(6, 2)):
        for _ in range(2):
            J = jac(X)
            assert J.dtype == X.dtype and jac.sparsity.shape == J.shape
            want = np.reshape(ad.jacobian(f)(X), J.shape)
            np.testing.assert_allclose(J.toarray(), want, rtol=1e-6)
    assert len(jac._fast) == 4


# ----- sparse_hessian -----
@pytest.mark.parametrize("energy,nine", [(energy_5, False), (energy_9, True)])
def test_sparse_hessian_equals_dense_and_is_symmetric(energy, nine):
    N = 5
    x = np.random.default_rng(1).uniform(-1, 1, N * N)
    f = lambda x: energy(x, N)
    hes = ad.sparse_hessian(f)
    H = hes(x)
    dense = ad.hessian(f)(x)
    np.testing.assert_allclose(H.toarray(), dense, rtol=1e-12, atol=1e-12)
    assert (H != H.T).nnz == 0                             # exactly symmetric
    assert (hes.sparsity != grid_pattern(N, nine)).nnz == 0
    assert_star_colouring(hes.sparsity, hes.colours)
    d2 = n_colours(column_colouring(hes.sparsity))
    assert hes.n_colours < d2 if not nine else hes.n_colours <= d2


def test_sparse_hessian_explicit_pattern_float32_and_errors():
    N = 4
    f = lambda x: energy_5(x, N)
    x = np.linspace(-1, 1, N * N).astype(np.float32)
    H = ad.sparse_hessian(f, sparsity=grid_pattern(N), format="csc")(x)
    assert H.format == "csc" and H.dtype == np.float32
    np.testing.assert_allclose(H.toarray(), ad.hessian(f)(x), rtol=1e-5)
    upper = sps.triu(grid_pattern(N))                      # symmetrised
    np.testing.assert_allclose(ad.sparse_hessian(f, sparsity=upper)(x).toarray(),
                               H.toarray(), rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        ad.sparse_hessian(f, sparsity=sps.eye_array(5))(x)


# ----- scipy.sparse matrices meet tracked values -----
_A = sps.random_array((5, 4), density=0.5, random_state=2, format="csr")
MATRICES = {"csr_array": _A, "csc_array": _A.tocsc(), "coo_array": _A.tocoo(),
            "csr_matrix": sps.csr_matrix(_A), "csc_matrix": sps.csc_matrix(_A),
            "coo_matrix": sps.coo_matrix(_A)}


@pytest.mark.parametrize("name", MATRICES)
def test_sparse_times_tracked_both_sides_all_transforms(name):
    A = MATRICES[name]
    D = A.toarray()
    x, X, y = np.linspace(0.5, 1.5, 4), np.arange(8.0).reshape(4, 2), np.linspace(-1, 1, 5)
    pairs = [(lambda x: A @ x, lambda x: D @ x, x), (lambda X: A @ X, lambda X: D @ X, X),
             (lambda y: y @ A, lambda y: y @ D, y), (lambda Y: Y.T @ A, lambda Y: Y.T @ D,
                                                     np.ones((5, 3)))]
    for f, fd, arg in pairs:
        for jac in (ad.jacfwd, ad.jacrev):
            np.testing.assert_allclose(jac(f)(arg), jac(fd)(arg), atol=1e-14)
        g, gd = (lambda f: lambda a: np.sum(np.sin(f(a)) ** 2))(f), \
            (lambda f: lambda a: np.sum(np.sin(f(a)) ** 2))(fd)
        np.testing.assert_allclose(ad.hessian(g)(arg), ad.hessian(gd)(arg), atol=1e-12)
        np.testing.assert_allclose(ad.jacfwd(ad.jacrev(g))(arg), ad.hessian(gd)(arg),
                                   atol=1e-12)
    ad.check_grads(lambda x: np.sin(A @ x), (x,), order=2)


def test_sparse_matmul_with_its_transpose_given_in_all_transforms_and_as_a_jit_value():
    # transpose=Aᵀ: the rules never transpose A (a matrix made at each replay of an
    # ad.jit program, a neighbour list's, is a value of the program)
    from autodiff.boxes import lift
    from autodiff.ops.sparse import sparse_matmul_p
    A = sps.csr_array(np.array([[1.0, -1.0, 0.0], [0.0, 2.0, 1.0], [0.5, 0.0, 0.0],
                                [0.0, 0.0, 3.0]]))
    D = A.toarray()
    X = np.linspace(0.5, 1.5, 6).reshape(3, 2)
    f = lambda X: np.sum(np.sin(sparse_matmul_p(X, matrix=A, core=2, transpose=A.T)) ** 2)
    fd = lambda X: np.sum(np.sin(D @ X) ** 2)
    for jac in (ad.jacfwd, ad.jacrev):
        np.testing.assert_allclose(jac(f)(X), jac(fd)(X), atol=1e-14)
    np.testing.assert_allclose(ad.hessian(f)(X), ad.hessian(fd)(X), atol=1e-12)
    ad.check_grads(f, (X,), order=2)
    scale = [1.0]

    def made(X):          # a fresh matrix at each replay, read from outside the program
        M = A * scale[0]
        return M, M.T

    def g(X):
        M, MT = lift(made, X)
        return np.sum(np.sin(sparse_matmul_p(X, matrix=M, core=2, transpose=MT)) ** 2)
    jg = ad.jit(ad.value_and_grad(g))
    for s in (1.0, 2.0, -0.5):
        scale[0] = s
        v, dg = jg(X)
        w, dw = ad.value_and_grad(lambda X: np.sum(np.sin((s * D) @ X) ** 2))(X)
        np.testing.assert_allclose(v, w, rtol=1e-14)
        np.testing.assert_allclose(dg, dw, rtol=1e-13, atol=1e-15)
    assert jg.recordings == 1


def test_sparse_product_entry_points_and_refusals():
    A = _A
    x = np.linspace(0.5, 1.5, 4)
    np.testing.assert_allclose(ad.grad(lambda x: np.sum(A.dot(x) ** 2))(x),
                               ad.grad(lambda x: np.sum((A.toarray() @ x) ** 2))(x))
    np.testing.assert_allclose(ad.jacobian(lambda y: np.dot(y, A))(np.ones(5)), A.toarray().T)
    with pytest.raises(TypeError, match="A @ x"):
        ad.grad(lambda x: np.sum(sps.csr_matrix(A) * x))(x)     # spmatrix * x is a product
    with pytest.raises(ValueError, match="mismatch"):
        ad.grad(lambda x: np.sum(A @ x))(np.ones(3))


def test_detected_pattern_of_sparse_products_is_the_matrix_pattern():
    A = sps.csr_array(sps.random_array((30, 20), density=0.1, random_state=5))
    x = np.linspace(0.5, 1.5, 20)
    P = ad.sparsity(lambda x: A @ np.sin(x))(x)
    assert (P != (A != 0)).nnz == 0
    PT = ad.sparsity(lambda y: y @ A)(np.ones(30))
    assert (PT != (A.T != 0)).nnz == 0
    f = lambda x: np.exp(A @ x) + sps.csr_matrix(A) @ x ** 2
    J = ad.sparse_jacobian(f)(x)
    np.testing.assert_allclose(J.toarray(), ad.jacobian(f)(x), rtol=1e-12)


# ----- tracked stored values and spsolve -----
def _system(n=6, seed=0):
    A = sps.random_array((n, n), density=0.3, random_state=seed) + 4 * sps.eye_array(n)
    A = sps.csr_array(A)
    A.sort_indices()
    return A


@pytest.mark.parametrize("rhs_shape", [(6,), (6, 2)])
def test_spsolve_in_b_and_in_the_stored_values(rhs_shape):
    A = _system()
    b = np.random.default_rng(3).standard_normal(rhs_shape)

    def f(data, b):
        return spsolve(csr_array((data, A.indices, A.indptr), shape=A.shape), b)

    def fd(data, b):
        return np.linalg.solve(csr_array((data, A.indices, A.indptr), shape=A.shape)
                               .toarray(), b)
    np.testing.assert_allclose(f(A.data, b), np.linalg.solve(A.toarray(), b), rtol=1e-12)
    ad.check_grads(f, (A.data, b), order=2)
    for argnum in (0, 1):
        for jac in (ad.jacfwd, ad.jacrev):
            np.testing.assert_allclose(jac(f, argnum)(A.data, b), jac(fd, argnum)(A.data, b),
                                       atol=1e-12)
    np.testing.assert_allclose(ad.jacobian(lambda b: spsolve(A, b))(b),
                               ad.jacobian(lambda b: np.linalg.solve(A.toarray(), b))(b),
                               atol=1e-12)


def test_spsolve_scipy_shapes_and_errors():
    A = _system()
    assert spsolve(A, np.ones((6, 1))).shape == (6,)
    np.testing.assert_allclose(spsolve(A, np.ones(6)),
                               __import__("scipy.sparse.linalg").sparse.linalg.spsolve(
                                   A, np.ones(6)))
    with pytest.raises(RuntimeError, match="singular"):
        spsolve(sps.csr_array(np.array([[1.0, 2.0], [2.0, 4.0]])), np.ones(2))
    with pytest.raises(ValueError, match="square"):
        spsolve(sps.csr_array(np.ones((2, 3))), np.ones(2))
    with pytest.raises(TypeError, match="np.linalg.solve"):
        spsolve(np.eye(2), np.ones(2))


def test_csr_array_forms_products_and_dense():
    rng = np.random.default_rng(4)
    row, col = np.array([0, 1, 1, 2, 0]), np.array([1, 0, 0, 2, 1])    # duplicates summed
    d = rng.standard_normal(5)
    want = sps.coo_array((d, (row, col)), shape=(3, 3)).toarray()
    M = lambda d: csr_array((d, (row, col)), shape=(3, 3))
    np.testing.assert_allclose(M(d).toarray(), want)
    x = rng.standard_normal(3)
    np.testing.assert_allclose(M(d) @ x, want @ x)
    np.testing.assert_allclose(x @ M(d), x @ want)
    np.testing.assert_allclose(M(d).T.toarray(), want.T)
    ad.check_grads(lambda d: M(d).T @ np.sin(d[:3]), (d,), order=2)
    ad.check_grads(lambda d: np.sin(d[:3]) @ M(d) + M(d).toarray()[0], (d,), order=2)
    ad.check_grads(lambda d, X: X.T @ M(d), (d, rng.standard_normal((3, 2))), order=1)
    with pytest.raises(NotImplementedError, match="two sparse"):
        M(d) @ sps.eye_array(3)
    with pytest.raises(ValueError, match="sorted"):
        csr_array((np.ones(2), np.array([1, 0]), np.array([0, 2])), shape=(1, 2))
    with pytest.raises(ValueError, match="entries"):
        csr_array((np.ones(3), np.array([0, 1]), np.array([0, 2])), shape=(1, 2))


# ----- stiff solvers -----
def brusselator_1d(t, y, N=200):
    c = (N + 1) ** 2 / 50.0
    u, v = y[0::2], y[1::2]
    up = np.concatenate([np.ones(1), u, np.ones(1)])
    vp = np.concatenate([np.full(1, 3.0), v, np.full(1, 3.0)])
    du = 1 + u * u * v - 4 * u + c * (up[:-2] - 2 * u + up[2:])
    dv = 3 * u - u * u * v + c * (vp[:-2] - 2 * v + vp[2:])
    return np.stack([du, dv], axis=1).reshape(-1)


def test_solve_ivp_bdf_with_the_sparse_ad_jacobian():
    N = 200
    x = np.linspace(0, 1, N + 2)[1:-1]
    y0 = np.stack([1 + np.sin(2 * np.pi * x), np.full(N, 3.0)], axis=1).reshape(-1)
    jac = ivp_jacobian(brusselator_1d)
    J = jac(0.0, y0)
    assert J.format == "csc" and jac.n_colours <= 5
    np.testing.assert_allclose(J.toarray(), ad.jacobian(lambda y: brusselator_1d(0.0, y))(y0),
                               rtol=1e-12, atol=1e-9)
    opts = dict(method="BDF", rtol=1e-6, atol=1e-8)
    ad_sol = solve_ivp(brusselator_1d, (0.0, 2.0), y0, jac=jac, **opts)
    fd_sol = solve_ivp(brusselator_1d, (0.0, 2.0), y0, jac_sparsity=jac.sparsity, **opts)
    assert ad_sol.success and fd_sol.success
    assert ad_sol.njev == fd_sol.njev
    np.testing.assert_allclose(ad_sol.y[:, -1], fd_sol.y[:, -1], rtol=1e-6)
    # dense, and with solve_ivp's args= passed through to fun and jac
    dense = ivp_jacobian(lambda t, y, k: k * brusselator_1d(t, y), sparse=False)
    np.testing.assert_allclose(dense(0.0, y0, 2.0), 2 * J.toarray(), rtol=1e-12, atol=1e-9)


def test_shortcut_with_number_arguments():
    # ivp_jacobian's call sj(y, t): a number beside the array takes the shortcut too, and
    # its value reaches the replay (it is traced, not frozen).
    f = lambda y, t, k: np.sin(t * y[1:]) * y[:-1] + k * y[1:]
    jac = ad.sparse_jacobian(f)
    y = np.linspace(0.2, 1.0, 7)
    for t, k in ((0.5, 2), (1.5, 3), (np.float64(2.5), 1), (np.float32(0.25), 4),
                 (0.5, 2)):
        for _ in range(2):
            want = ad.jacobian(lambda y: f(y, t, k))(y)
            np.testing.assert_allclose(jac(y, t, k).toarray(), want, rtol=1e-6)
    assert len(jac._fast) >= 3


def test_shortcut_with_argnums_and_a_static_argument():
    # argnums=1 with an array before it; a string argument is static (no shortcut then,
    # the same numbers).
    f = lambda a, x, how="sum": np.sum(a * x[1:] ** 2 * x[:-1]) + np.sum(np.cos(x))
    hes = ad.sparse_hessian(f, argnums=1)
    a = np.linspace(1.0, 2.0, 5)
    for x in (np.linspace(0.1, 0.6, 6), np.linspace(-0.6, 0.1, 6)):
        for _ in range(2):
            np.testing.assert_allclose(hes(a, x).toarray(),
                                       ad.hessian(lambda x: f(a, x))(x), rtol=1e-12)
    assert len(hes._fast) == 1
    g = lambda x, how: np.sum(x ** 3) if how == "cube" else np.sum(x ** 4)
    hs = ad.sparse_hessian(g)
    x = np.linspace(0.5, 1.0, 4)
    for how, p in (("cube", 3), ("quartic", 4), ("cube", 3)):
        np.testing.assert_allclose(hs(x, how).toarray(),
                                   np.diag(p * (p - 1) * x ** (p - 2)), rtol=1e-12)
    assert not hs._fast


def test_threads_share_a_function_with_blocks(monkeypatch):
    # Blocks are copied into a scratch array per thread: concurrent calls never mix.
    import threading
    import autodiff.compressed as compressed
    monkeypatch.setattr(compressed, "_BLOCK", 1)
    N = 5
    f = lambda y: brusselator_2d(y, N)
    jac = ad.sparse_jacobian(f)
    ys = [np.random.default_rng(i).uniform(0.5, 1.5, 2 * N * N) for i in range(4)]
    wants = [ad.jacobian(f)(y) for y in ys]
    jac(ys[0])
    errors = []

    def work(i):
        try:
            for _ in range(30):
                np.testing.assert_allclose(jac(ys[i]).toarray(), wants[i], rtol=1e-12,
                                           atol=1e-12)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    (plan,) = jac._plans.values()
    assert plan.spans is not None and len(plan.spans) == jac.n_colours


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (0, 0)])
@pytest.mark.parametrize("trailing", [(), (3,)])
def test_constant_sparse_matrix_with_no_rows_or_columns(shape, trailing):
    # A matrix with no rows (an empty pair list) or no columns: both rules, both modes,
    # batched, against the dense matrix.
    import scipy.sparse as sps
    rng = np.random.default_rng(3)
    A = sps.csr_array(np.zeros(shape))
    D = np.zeros(shape)
    x = rng.standard_normal((shape[1],) + trailing)

    def f(x, M):
        y = M @ x
        return np.sum(y ** 2) + np.sum(np.sin(x))

    for tr in (ad.grad, ad.jacfwd, ad.jacrev):
        got = tr(lambda x: f(x, A))(x)
        want = tr(lambda x: f(x, D))(x)
        np.testing.assert_allclose(got, want)
        assert np.shape(got) == np.shape(want)
    y = ad.jacrev(lambda x: A @ x)(x)
    assert y.shape == (shape[0],) + trailing + (shape[1],) + trailing


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_hot_large_decompression_gathers_in_a_compiled_loop_and_agrees(dtype):
    from autodiff import compressed, fusion
    n = compressed._GATHER_MIN // 2 + 10            # 3 entries a row: past the size

    def f(x):
        return np.sin(x[1:-1]) * x[2:] - x[:-2] ** 2

    x = np.random.default_rng(3).uniform(-1, 1, n).astype(dtype)
    hot, cold = ad.sparse_jacobian(f), ad.sparse_jacobian(f)
    for _ in range(compressed._GATHER_AFTER + 1):
        J = hot(x)
    (plan,) = hot._plans.values()
    assert bool(plan._gather) == (fusion.gather() is not None)
    x2 = np.random.default_rng(4).uniform(-1, 1, n).astype(dtype)
    J2, ref = hot(x2), cold(x2)
    assert J2.dtype == ref.dtype == dtype
    # (the sweeps' sin may differ in float32's last bit: fused loop against NumPy)
    np.testing.assert_allclose(J2.data, ref.data, rtol=1e-6 if dtype == np.float32 else 0)
    D = np.random.default_rng(5).uniform(-1, 1, plan._need).astype(dtype)
    np.testing.assert_array_equal(plan._values(D), D.take(plan.take))   # the gather, exact
    np.testing.assert_array_equal(J2.indices, ref.indices)
    np.testing.assert_array_equal(J2.indptr, ref.indptr)
    np.testing.assert_allclose(J2.diagonal(0), -2 * x2[:-2], rtol=1e-6)
    np.testing.assert_allclose(J2.diagonal(1), np.cos(x2[1:-1]) * x2[2:], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(J.diagonal(2), np.sin(x[1:-1]), rtol=1e-6)
