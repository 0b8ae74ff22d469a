"""Sparsity detection: patterns equal the dense Jacobians' nonzeros on the programs physics
writes (stencils, gathers, assignment), contain them on every case of the case table (a
pattern that misses one is a silent wrong derivative), hold for every x (value-dependent
branches refused or widened), and Hessian patterns from the gradient's."""
import numpy as np
import pytest
import scipy.sparse

import autodiff as ad
from autodiff.sparsity import ValueDependentError, hessian_sparsity, undeclared
from autodiff.testing import split_complex

from cases import CASES

rng = np.random.default_rng(0)


def _dense_nonzeros(jac, f, points, argnums=0):
    """The union of the nonzeros of ``jac(f)`` at several points, as a 2-D boolean array."""
    out = None
    for x in points:
        J = np.asarray(jac(f, argnums)(x))
        J = J.reshape(-1, np.size(x)) if np.ndim(J) else J.reshape(1, 1)
        out = (J != 0) if out is None else out | (J != 0)
    return out


def assert_exact(f, shape, *, points=3):
    xs = [rng.uniform(0.2, 1.0, shape) for _ in range(points)]
    P = ad.sparsity(f)(xs[0])
    assert isinstance(P, scipy.sparse.csr_array) and P.dtype == bool
    want = _dense_nonzeros(ad.jacfwd, f, xs)
    assert P.shape == want.shape
    np.testing.assert_array_equal(P.toarray(), want)
    return P


# ----- Exact patterns -----
def bratu(u, lam=1.0):
    h = 1.0 / (len(u) + 1)
    up = np.concatenate([[0.0], u, [0.0]])
    return (up[:-2] - 2 * up[1:-1] + up[2:]) / h ** 2 + lam * np.exp(u)


def test_bratu_is_tridiagonal():
    P = assert_exact(bratu, (12,))
    assert P.nnz == 12 + 2 * 11
    np.testing.assert_array_equal(P.toarray(), np.abs(np.subtract.outer(
        np.arange(12), np.arange(12))) <= 1)


def stencil_roll(u):
    w = u.reshape(6, 7)
    lap = np.roll(w, 1, 0) + np.roll(w, -1, 0) + np.roll(w, 1, 1) + np.roll(w, -1, 1) - 4 * w
    return (lap + w ** 2).ravel()


def stencil_slices(u):
    w = u.reshape(6, 7)
    out = np.zeros_like(w)
    out[1:-1, 1:-1] = (w[:-2, 1:-1] + w[2:, 1:-1] + w[1:-1, :-2] + w[1:-1, 2:]
                       - 4 * w[1:-1, 1:-1]) * np.sin(w[1:-1, 1:-1])
    return out


def test_five_point_stencils():
    assert assert_exact(stencil_roll, (42,)).nnz == 5 * 42      # periodic: 5 per row
    P = assert_exact(stencil_slices, (6, 7))
    assert P.shape == (42, 42) and P.nnz == 5 * 4 * 5           # interior rows only


def test_elementwise_map_and_dense_rows():
    assert assert_exact(lambda x: np.tanh(x) * np.exp(-x) + x ** 3, (7,)).nnz == 7
    assert assert_exact(lambda x: np.sum(x ** 2), (5,)).nnz == 5
    assert assert_exact(lambda x: x @ x + np.dot(x, np.ones(5)), (5,)).nnz == 5
    assert assert_exact(lambda x: np.mean(x.reshape(2, 3), axis=0), (6,)).nnz == 6


def test_indexing_and_assignment():
    assert_exact(lambda x: x[::2] * x[[3, 1, 3]], (6,))
    assert_exact(lambda x: x[1:4][::-1] + x[np.array([0, 0, 5])], (6,))

    def shifted(x):
        out = np.zeros_like(x)
        out[1:] = x[:-1] ** 2
        return out
    assert assert_exact(shifted, (5,)).nnz == 4

    def at_updates(x):
        y = x.at[2].set(x[0] * x[1])
        return y.at[np.array([0, 0, 4])].add(x[3])
    assert_exact(at_updates, (5,))


def test_broadcasting_and_shapes():
    assert_exact(lambda x: (x.reshape(2, 3) + x[:3] * x[3:].reshape(3, 1)[:2]).ravel(), (6,))
    assert_exact(lambda x: np.stack([x, np.flip(x), np.cumsum(x)]).T.ravel(), (4,))
    assert_exact(lambda x: np.pad(x, 2, mode="reflect") * np.tile(x, 2)[:9], (5,))
    assert_exact(lambda x: np.broadcast_to(x[:2], (3, 2)).ravel() * 2.0, (4,))


def test_matmul_with_a_constant_matrix_keeps_its_zeros():
    n = 8
    A = 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)
    P = assert_exact(lambda x: A @ x, (n,))
    assert P.nnz == np.count_nonzero(A)
    assert_exact(lambda x: (x.reshape(2, 4) @ A[:4, :3]).ravel(), (8,))
    assert_exact(lambda x: np.einsum("ij,j->i", A, x) + x @ A, (n,))
    assert_exact(lambda x: np.convolve(x, np.array([1.0, 0.0, -1.0]), mode="same"), (n,))


def test_pytrees_and_argnums():
    def f(p):
        return {"a": p["x"] * p["y"][0], "b": np.sum(p["y"] ** 2)}
    p = {"x": np.ones(3), "y": np.ones(2)}
    P = ad.sparsity(f)(p)
    # columns: x (3) then y (2) (sorted keys); rows: a (3) then b (1)
    want = np.array([[1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]], bool)
    np.testing.assert_array_equal(P.toarray(), want)

    Px, Py = ad.sparsity(lambda x, y: x * y[1], argnums=(0, 1))(np.ones(3), np.ones(2))
    np.testing.assert_array_equal(Px.toarray(), np.eye(3, dtype=bool))
    np.testing.assert_array_equal(Py.toarray(), np.array([[0, 1]] * 3, bool))
    P1 = ad.sparsity(lambda x, y: x * y[1], argnums=1)(np.ones(3), np.ones(2))
    np.testing.assert_array_equal(P1.toarray(), Py.toarray())


def test_edge_inputs_and_outputs():
    assert ad.sparsity(lambda x: x * 2.0)(3.0).toarray().tolist() == [[True]]
    P = ad.sparsity(lambda x: np.sin(x))(np.ones((2, 3), np.float32))
    assert P.shape == (6, 6) and P.nnz == 6
    assert ad.sparsity(lambda x: np.ones(4))(np.ones(3)).shape == (4, 3)
    assert ad.sparsity(lambda x: np.ones(4))(np.ones(3)).nnz == 0
    assert ad.sparsity(lambda x: x[:0])(np.ones(3)).shape == (0, 3)
    assert ad.sparsity(lambda x: x > 0)(np.ones(3)).nnz == 0      # a mask: no derivative
    with pytest.raises(TypeError, match="integer"):
        ad.sparsity(lambda x: x)(np.arange(3))


# ----- The case table: never miss an entry -----
# Refused: the output's structure (its size, or which elements an assignment reaches)
# follows the values of x, so there is no global pattern to give.
REFUSED = {"trim_zeros", "trim_zeros-2d-axis", "unique", "unique-all-outputs", "unique-axis0",
           "unique-values-all", "union1d", "intersect1d", "setdiff1d", "setdiff1d-unique",
           "setxor1d", "setitem-iadd-mask", "place-putmask-copyto"}
# Their dense Jacobians alone take a second or more (adjoint ODE solves, matrix functions):
# detected (it must not fail) but not compared.
SLOW = {"odeint-pullback", "lu_solve-stack-rhs", "lu_solve-trans-stack-rhs", "logm"}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case_table_patterns_contain_the_jacobian(case):
    """Detected at one point, compared with the Jacobian at another: a pattern narrowed by
    the values at the first point (a sort, a mask) would miss entries at the second."""
    fn, args = split_complex(case.fn, case.make_args(seed=1))
    nums = tuple(range(len(args)))
    if case.id in REFUSED:
        with pytest.raises(ValueDependentError, match="would depend on x"):
            ad.sparsity(fn, argnums=nums)(*args)
        return
    patterns = ad.sparsity(fn, argnums=nums)(*args)
    if case.id in SLOW:
        return
    fn2, args2 = split_complex(case.fn, case.make_args(seed=2))
    jacs = ad.jacobian(fn2, argnums=nums)(*args2)
    for P, J, x in zip(patterns, _per_arg(jacs, fn2(*args2), len(nums)), args2):
        assert P.shape == (J.shape[0], np.size(x)), (P.shape, J.shape)
        missing = (J != 0) & ~P.toarray()
        assert not missing.any(), f"pattern misses {int(missing.sum())} entries"


def _per_arg(jacs, out, nargs):
    """The Jacobian blocks of ``jacobian(argnums=tuple)`` as one (m, n_i) block per argument,
    rows over the output leaves concatenated."""
    from autodiff.tree import flatten
    outs = flatten(out)[0]
    per_out = flatten(jacs)[0] if outs else []
    # flatten(jacs) lists, for each output leaf, one block per argument
    blocks = [[np.zeros((0, 0))] for _ in range(nargs)]
    for k in range(len(outs)):
        for i in range(nargs):
            blocks[i].append(np.reshape(per_out[k * nargs + i], (np.size(outs[k]), -1)))
    return [np.concatenate(b[1:], axis=0) if len(b) > 1 else b[0] for b in blocks]


# The reverse rules, run in the sparsity mode, make the Hessian pattern: every rule of a
# sample of the table (the full table passes too, in a few minutes), on sum(sin(f)·f).
HESSIAN_SAMPLE = [c for k, c in enumerate(CASES) if k % 12 == 5 and c.id not in SLOW
                  and c.id not in REFUSED and not c.id.startswith(("odeint", "interp"))]
# Value-ordered functions under grad: refused (their backward sweep gathers by the order).
HESSIAN_REFUSED = ("sort", "median", "quantile", "percentile", "partition", "nanmedian",
                   "nanquantile", "nanpercentile")


@pytest.mark.parametrize("case", HESSIAN_SAMPLE, ids=[c.id for c in HESSIAN_SAMPLE])
def test_case_table_hessian_patterns_contain_the_hessian(case):
    from autodiff.tree import flatten
    fn, args = split_complex(case.fn, case.make_args(seed=1))
    if not all(isinstance(a, (np.ndarray, float)) for a in args):
        pytest.skip("non-array arguments")

    def energy(*xs):
        outs = [o for o in flatten(fn(*xs))[0] if np.result_type(o).kind == "f"]
        return sum(np.sum(np.sin(o) * o) for o in outs)
    nums = tuple(range(len(args)))
    if case.id.startswith(HESSIAN_REFUSED):
        with pytest.raises(ValueDependentError):
            hessian_sparsity(energy, argnums=nums)(*args)
        return
    H = hessian_sparsity(energy, argnums=nums)(*args).toarray()
    np.testing.assert_array_equal(H, H.T)
    fn2, args2 = split_complex(case.fn, case.make_args(seed=2))
    blocks = ad.hessian(energy, argnums=nums)(*args2)
    sizes = [np.size(a) for a in args2]
    D = np.block([[np.reshape(blocks[i][j], (sizes[i], sizes[j])) for j in nums] for i in nums])
    missing = (D != 0) & ~H
    assert not missing.any(), f"Hessian pattern misses {int(missing.sum())} entries"


def test_undeclared_primitives_are_listed_and_dense(monkeypatch):
    from autodiff.core import registry
    names = undeclared()
    print(f"{len(names)} primitives without a dependency declaration: {names}")
    assert names == []                      # every registered primitive declares one
    x = np.arange(1.0, 7.0)
    assert ad.sparsity(lambda x: x[::2])(x).nnz == 3
    # without its declaration a primitive is counted and treated as dense (conservative)
    monkeypatch.setattr(registry["getitem"], "sparsity", None)
    assert undeclared() == ["getitem"]
    assert ad.sparsity(lambda x: x[::2])(x).nnz == 3 * 6
    # so are custom rules (their body may differ from what the rule differentiates)
    f = ad.custom_jvp(lambda x: np.sin(x))
    f.defjvp(lambda primals, tangents: (np.sin(primals[0]), np.cos(primals[0]) * tangents[0]))
    assert ad.sparsity(f)(x).nnz == 36


def test_convolutions_are_exact():
    from autodiff.nn import functional as F
    x = rng.uniform(size=(2, 2, 5, 5))
    w = rng.uniform(size=(3, 2, 3, 3))
    w[0, 1, 1, 1] = 0.0                     # a constant kernel's zero narrows the pattern
    for kw in ({}, {"stride": 2, "padding": 1}, {"dilation": 2, "padding": 2}):
        for k in (0, 1):
            f = lambda x, w: F.conv2d(x, w, **kw)
            P = ad.sparsity(f, argnums=k)(x, w)
            J = np.asarray(ad.jacfwd(f, argnums=k)(x, w)).reshape(P.shape)
            np.testing.assert_array_equal(P.toarray(), J != 0)
        e = lambda x: np.sum(np.tanh(F.conv2d(x, w, **kw)))      # its reverse rules too
        H = hessian_sparsity(e)(x).toarray()
        np.testing.assert_array_equal(H, np.asarray(ad.hessian(e)(x)).reshape(H.shape) != 0)


# ----- Global patterns: value-dependent branches -----
def test_branches_on_values_are_refused():
    x = np.array([0.5, -1.0, 2.0])
    for f in (lambda x: x if x[0] > 0 else -x,
              lambda x: x * (1.0 if np.any(x > 1) else 2.0),
              lambda x: x[x > 0],
              lambda x: np.zeros(int(x[0])),
              lambda x: np.asarray(x > 0) * x,
              lambda x: x * float(np.sum(x))):
        with pytest.raises(ValueDependentError, match="would depend on x"):
            ad.sparsity(f)(x)
    # ...also under a transform (the gradient is what the Hessian pattern reads)
    with pytest.raises(ValueDependentError):
        hessian_sparsity(lambda x: np.sum(x ** 2) if x[0] > 0 else np.sum(x))(x)
    assert issubclass(ValueDependentError, TypeError)


def test_where_and_kinks_cover_every_x():
    x = np.array([0.5, -1.0, 2.0, 0.1])
    P = ad.sparsity(lambda x: np.where(x > 0, x ** 2, x[::-1]))(x)
    np.testing.assert_array_equal(P.toarray(), np.eye(4, dtype=bool) | np.eye(4, dtype=bool)[::-1])
    # a constant condition is the same for every x: it picks one branch per element
    inner = np.array([False, True, True, False])
    P = ad.sparsity(lambda x: np.where(inner, x ** 2, x[::-1] * 0.0))(x)
    np.testing.assert_array_equal(P.toarray(), np.where(inner[:, None], np.eye(4, dtype=bool),
                                                        np.eye(4, dtype=bool)[::-1]))
    assert_exact(lambda x: np.where(np.arange(5) % 2 == 0, np.sin(x), 0.0) + x[0], (5,))
    for f in (np.abs, lambda x: np.maximum(x, 0.0), lambda x: np.clip(x, -0.5, 0.5)):
        assert ad.sparsity(f)(x).nnz == 4
    # an index computed from x: every output may come from every input
    P = ad.sparsity(lambda x: x[np.argmax(x)] * x[:2])(x)
    assert P.shape == (2, 4) and P.nnz == 8
    # a sort's permutation follows the values, too
    assert ad.sparsity(np.sort)(x).nnz == 16
    assert ad.sparsity(lambda x: np.median(x) * x)(x).nnz == 16
    assert ad.sparsity(lambda x: np.take(x, np.argsort(x)))(x).nnz == 16


# ----- Hessian patterns -----
def _hessian_nonzeros(f, shape, points=3):
    out = None
    for _ in range(points):
        H = np.asarray(ad.hessian(f)(rng.uniform(0.2, 1.0, shape))).reshape(
            int(np.prod(shape)), -1)
        out = (H != 0) if out is None else out | (H != 0)
    return out


def assert_hessian_exact(f, shape):
    H = hessian_sparsity(f)(rng.uniform(0.2, 1.0, shape))
    D = H.toarray()
    np.testing.assert_array_equal(D, D.T)
    np.testing.assert_array_equal(D, _hessian_nonzeros(f, shape))
    return H


def test_hessian_of_a_chain_has_no_diagonal():
    H = assert_hessian_exact(lambda x: np.sum(x[1:] * x[:-1]) + 3.0 * np.sum(x), (6,))
    assert H.nnz == 10 and not H.diagonal().any()


def energy5(u):
    w = u.reshape(5, 6)
    return 0.5 * np.sum((w[1:] - w[:-1]) ** 2) + 0.5 * np.sum((w[:, 1:] - w[:, :-1]) ** 2) \
        + np.sum(w ** 4) + np.sum(u)


def energy9(u):
    w = u.reshape(5, 6)
    grad2 = (w[1:, 1:] - w[:-1, :-1]) ** 2 + (w[1:, :-1] - w[:-1, 1:]) ** 2
    return np.sum((w[1:] - w[:-1]) ** 2) + np.sum((w[:, 1:] - w[:, :-1]) ** 2) \
        + np.sum(grad2) + np.sum(np.cos(w))


def test_hessians_of_stencil_energies():
    H5 = assert_hessian_exact(energy5, (30,))
    H9 = assert_hessian_exact(energy9, (30,))
    assert np.diff(H5.indptr).max() == 5 and np.diff(H9.indptr).max() == 9


def test_hessian_of_pair_potentials():
    def pairs(x):
        r = x.reshape(-1, 2)
        d = r[1:] - r[:-1]
        return np.sum((np.sqrt(np.sum(d ** 2, axis=1)) - 1.0) ** 2)

    def lennard_jones(x):
        r = x.reshape(-1, 3)
        i, j = np.triu_indices(len(r), 1)
        r2 = np.sum((r[i] - r[j]) ** 2, axis=1)
        return np.sum(r2 ** -6 - r2 ** -3)
    assert_hessian_exact(pairs, (10,))
    assert_hessian_exact(lennard_jones, (12,))


def test_hessian_sparsity_argnums_and_module_names():
    H = hessian_sparsity(lambda x, y: np.sum(x * y) + np.sum(y ** 2), argnums=(0, 1))(
        np.ones(2), np.ones(2))
    want = np.array([[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1]], bool)
    np.testing.assert_array_equal(H.toarray(), want)
    assert ad.sparsity.hessian_sparsity is hessian_sparsity      # attribute access works too


# ----- Nesting with the other modes -----
def test_transforms_inside_and_outside_detection():
    f = lambda x: np.sin(x) * x[0]
    x = rng.uniform(size=4)
    want = np.eye(4, dtype=bool)
    want[:, 0] = True
    # a Jacobian inside the detected function: its pattern is that of the Jacobian's entries
    P = ad.sparsity(lambda x: ad.jacfwd(f)(x).ravel())(x)
    assert P.shape == (16, 4)
    J2 = np.asarray(ad.jacfwd(lambda x: ad.jacfwd(f)(x).ravel())(x))
    assert not ((J2 != 0) & ~P.toarray()).any()
    # detection on values tracked by an outer transform
    out = ad.jacfwd(lambda y: np.sum(ad.sparsity(f)(y).toarray()) * y)(x)
    np.testing.assert_allclose(out, np.sum(want) * np.eye(4))
    np.testing.assert_array_equal(ad.sparsity(f)(ad.Variable(x)).toarray(), want)
