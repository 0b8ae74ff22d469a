"""Regression tests for numpy.linalg / scipy.linalg defects: NumPy 2's right-hand-side rule
for solve, eig's eigenvector gauge, det at singular matrices, zero-size matrices, float32."""
import numpy as np
import pytest
import scipy.linalg

import autodiff as ad
from autodiff.core import registry
from autodiff.scipy import linalg as sla


def _numerical_jvp(f, x, t, h=1e-6):
    return (np.asarray(f(x + h * t)) - np.asarray(f(x - h * t))) / (2 * h)


def _grads(f, args):
    """Every argument's gradient of the real scalar ``f``, by both modes."""
    rev = [ad.grad(f, argnums=i)(*args) for i in range(len(args))]
    fwd = [ad.jacfwd(f, i)(*args) for i in range(len(args))]
    return rev, fwd


# ----- 1. solve: b is one vector only when it is exactly 1-D (NumPy 2) -------------

def test_solve_stack_of_1x1_with_1d_rhs_matches_numpy():
    a = np.array([[[2.0]], [[3.0]], [[4.0]]])
    b = np.array([1.0])
    c = np.array([[1.0], [2.0], [3.0]])

    def f(a, b):
        return np.sum(np.linalg.solve(a, b) * c)

    want = f(a, b)                                      # NumPy: x has shape (3, 1)
    assert np.isclose(want, 0.5 + 2 / 3 + 0.75)
    assert np.isclose(ad.value_and_grad(f)(a, b)[0], want)
    (ga, gb), (fa, fb) = _grads(f, (a, b))
    np.testing.assert_allclose(ga, -c[:, :, None] / a ** 2, rtol=1e-12)
    np.testing.assert_allclose(gb, [np.sum(c[:, 0] / a[:, 0, 0])], rtol=1e-12)
    np.testing.assert_allclose(fa, ga, rtol=1e-12)
    np.testing.assert_allclose(fb, gb, rtol=1e-12)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 1, 1), (1,)), ((2, 3, 3), (3,)), ((3, 3), (3,)), ((2, 3, 3), (3, 2)),
    ((2, 1, 3, 3), (4, 3, 2)), ((3, 3), (2, 3, 1))])
def test_solve_shapes_and_derivatives_follow_numpy(a_shape, b_shape):
    rng = np.random.default_rng(0)
    n = a_shape[-1]
    a = rng.standard_normal(a_shape) + 3 * np.eye(n)
    b = rng.standard_normal(b_shape)
    want = np.linalg.solve(a, b)
    for tracked in ((0,), (1,), (0, 1)):
        got, tan = ad.jvp(np.linalg.solve, (a, b),
                          tuple(rng.standard_normal(x.shape) if i in tracked else np.zeros_like(x)
                                for i, x in enumerate((a, b))))
        assert np.shape(got) == want.shape and np.shape(tan) == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12)
    ad.check_grads(np.linalg.solve, (a, b), order=2, modes=("fwd", "rev"))
    for i in range(2):
        jf = ad.jacfwd(np.linalg.solve, i)(a, b)
        jr = ad.jacrev(np.linalg.solve, i)(a, b)
        assert jf.shape == want.shape + (a, b)[i].shape
        np.testing.assert_allclose(jf, jr, rtol=1e-10, atol=1e-12)


def test_solve_2d_rhs_that_numpy_rejects_is_rejected():
    a = np.eye(3)[None].repeat(2, 0)            # (2, 3, 3)
    b = np.ones((2, 3))                         # a (3,)-vector stack to NumPy 1, an error to 2
    with pytest.raises(ValueError):
        np.linalg.solve(a, b)
    with pytest.raises(ValueError):
        ad.grad(lambda b: np.sum(np.linalg.solve(a, b)))(b)


_SCIPY_SOLVES = {
    "solve_triangular": (lambda a, b: sla.solve_triangular(a, b, lower=True),
                         lambda a, b: scipy.linalg.solve_triangular(a, b, lower=True)),
    "solve_triangular-T": (lambda a, b: sla.solve_triangular(a, b, trans=1),
                           lambda a, b: scipy.linalg.solve_triangular(a, b, trans=1)),
    "cho_solve": (lambda a, b: sla.cho_solve((np.tril(a), True), b),
                  lambda a, b: scipy.linalg.cho_solve((np.tril(a), True), b)),
    "cho_solve-upper": (lambda a, b: sla.cho_solve((np.triu(a), False), b),
                        lambda a, b: scipy.linalg.cho_solve((np.triu(a), False), b)),
    "solve_banded": (lambda a, b: sla.solve_banded((1, 1), a[..., :3, :], b),
                     lambda a, b: scipy.linalg.solve_banded((1, 1), a[..., :3, :], b)),
    "solve": (lambda a, b: sla.solve(a, b), lambda a, b: scipy.linalg.solve(a, b)),
}


@pytest.mark.parametrize("name", list(_SCIPY_SOLVES))
@pytest.mark.parametrize("b_shape", [(4,), (4, 2), (3, 4, 2)])
def test_scipy_solves_with_a_stack_and_any_rhs_follow_scipy(name, b_shape):
    ours, theirs = _SCIPY_SOLVES[name]
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (3, 4, 4)) + 5 * np.eye(4)
    a[..., 1, :] += 5.0                          # the banded form's main diagonal
    b = rng.standard_normal(b_shape)
    want = theirs(a, b)
    for args in ((ad.jvp, 0), (ad.jvp, 1)):
        tangents = [np.zeros_like(a), np.zeros_like(b)]
        tangents[args[1]] = rng.standard_normal(tangents[args[1]].shape)
        got, tan = ad.jvp(ours, (a, b), tuple(tangents))
        assert np.shape(got) == want.shape and np.shape(tan) == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-10)
        np.testing.assert_allclose(tan, _numerical_jvp(lambda x: theirs(
            *(x if i == args[1] else y for i, y in enumerate((a, b)))), (a, b)[args[1]],
            tangents[args[1]]), rtol=1e-6, atol=1e-8)
    ad.check_grads(ours, (a, b), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("trans", [0, 1])
def test_lu_solve_with_a_stack_of_right_sides(trans):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((3, 3)) + np.array([[0, 0, 3.0], [4, 0, 0], [0, 5, 0]])
    b = rng.standard_normal((2, 3, 2))
    want = scipy.linalg.lu_solve(scipy.linalg.lu_factor(a), b, trans=trans)

    def f(a, b):
        return sla.lu_solve(sla.lu_factor(a), b, trans=trans)

    got, _ = ad.jvp(f, (a, b), (np.zeros_like(a), np.ones_like(b)))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    ad.check_grads(f, (a, b), order=2, modes=("fwd", "rev"))


def test_lu_solve_with_a_stack_of_factors_refuses_clearly():
    lu, piv = scipy.linalg.lu_factor(np.eye(3)[None].repeat(2, 0) * 2.0)
    with pytest.raises(NotImplementedError, match="lu_solve"):
        ad.grad(lambda b: np.sum(sla.lu_solve((lu, piv), b)))(np.ones(3))


# ----- 2. eig: NumPy's own eigenvectors, differentiated ---------------------------

def _eig_matrices():
    """Random 4×4 matrices, real (with a complex pair) and complex, whose eigenvalues are
    0.5 apart (the vectors' derivatives grow as 1/gap; finite differences need room)."""
    rng = np.random.default_rng(3)
    out = []
    while len(out) < 8:
        a = rng.standard_normal((4, 4))
        if len(out) % 2:
            a = a + 1j * rng.standard_normal((4, 4))
        w = np.linalg.eigvals(a)
        gap = np.min(np.abs(w[:, None] - w[None, :]) + np.eye(4) * 9)
        if gap > 0.5 and np.iscomplexobj(w) and np.any(np.abs(w.imag) > 0.25):
            out.append(a)
    return out


@pytest.mark.parametrize("k", range(8))
def test_eig_vectors_match_finite_differences_of_numpy(k):
    a = _eig_matrices()[k]
    rng = np.random.default_rng(10 + k)
    t = rng.standard_normal(a.shape) + (1j * rng.standard_normal(a.shape) if k % 2 else 0)

    def vectors(a):
        return np.linalg.eig(a)[1]

    assert np.iscomplexobj(vectors(a))          # complex pairs (real input) or complex input
    want = _numerical_jvp(vectors, a, t)
    _, got = ad.jvp(vectors, (a,), (t,))
    np.testing.assert_allclose(got, want, atol=1e-7)
    # reverse mode: ⟨g, dV⟩ = ⟨Ā, dA⟩ (pairing Re Σ x·y)
    g = rng.standard_normal(want.shape) + 1j * rng.standard_normal(want.shape)
    _, pull = ad.vjp(vectors, a)
    abar = pull(g)
    abar = abar[0] if isinstance(abar, tuple) else abar
    np.testing.assert_allclose(np.real(np.sum(abar * t)), np.real(np.sum(g * want)),
                               rtol=1e-6, atol=1e-7)
    # To second order: v∘v keeps the phase (v → e^{iθ}v gives e^{2iθ}v∘v) and drops the
    # sign, which LAPACK may flip between nearby matrices (check_grads' steps are large).
    ad.check_grads(lambda a: vectors(a) ** 2, (a,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("k", range(8))
def test_eig_gauge_invariant_functions_and_values_still_right(k):
    a = _eig_matrices()[k]

    def f(a):
        w, v = np.linalg.eig(a)
        return np.concatenate([w, np.ravel(np.real(v * np.conj(v)))])

    ad.check_grads(f, (a,), order=2, modes=("fwd", "rev"))
    ad.check_grads(np.linalg.eigvals, (a,), order=2, modes=("fwd", "rev"))


# ----- 2b. scipy.linalg.eigh: SciPy's eigenvectors, signs included -----------------------
# NumPy's and SciPy's LAPACK drivers flip different columns; a tracked call once returned
# NumPy's vectors, whose derivatives were then the negatives of the plain call's in those
# columns (seed 1 below flips columns 0 and 2).

def _eigh_problem():
    rs = np.random.RandomState(1)
    a = rs.randn(4, 4)
    s = a @ a.T + 4 * np.eye(4)
    e = rs.randn(4, 4)
    b = rs.randn(4, 4)
    return s, e + e.T, b @ b.T + 4 * np.eye(4)


@pytest.mark.parametrize("options", [{}, {"lower": False}, {"subset_by_index": (1, 2)},
                                     {"driver": "evd"}, {"generalized": True}])
def test_scipy_eigh_vectors_and_derivatives_are_scipys(options):
    s, e, b = _eigh_problem()
    options = dict(options)
    bb = b if options.pop("generalized", False) else None
    plain = lambda m: scipy.linalg.eigh(m, bb, **options)[1]
    tracked = lambda m: sla.eigh(m, bb, **options)[1]
    if not options and bb is None:       # the case that was wrong: the signs do differ
        assert np.any(np.sign(np.linalg.eigh(s)[1][0]) != np.sign(plain(s)[0]))
    want = _numerical_jvp(plain, s, e)
    y, got = ad.jvp(tracked, (s,), (e,))
    np.testing.assert_allclose(y, plain(s), atol=1e-14)
    np.testing.assert_allclose(got, want, atol=1e-8)
    _, pull = ad.vjp(tracked, s)
    g = np.random.default_rng(3).standard_normal(want.shape)
    np.testing.assert_allclose(np.sum(pull(g)[0] * e), np.sum(g * got), rtol=1e-10)
    np.testing.assert_allclose(ad.jacfwd(tracked)(s), ad.jacrev(tracked)(s), atol=1e-12)
    jitted = ad.jit(tracked)
    for m in (s, s + 0.3 * e):          # the replay takes the new matrix's signs
        np.testing.assert_allclose(jitted(m), plain(m), atol=1e-14)


def test_scipy_eigh_vectors_derivative_in_b_and_second_order():
    s, e, b = _eigh_problem()
    plain = lambda m: scipy.linalg.eigh(s, m)[1]
    _, got = ad.jvp(lambda m: sla.eigh(s, m)[1], (b,), (e,))
    np.testing.assert_allclose(got, _numerical_jvp(plain, b, e), atol=1e-8)

    def f(m):
        v = sla.eigh(m)[1]
        return v[0, 0] * v[1, 2]
    want = _numerical_jvp(ad.grad(f), s, e)
    np.testing.assert_allclose(np.tensordot(ad.hessian(f)(s), e, 2), want, atol=1e-7)
    c = s + 1j * np.triu(e, 1) - 1j * np.tril(e, -1)            # Hermitian
    np.testing.assert_allclose(ad.jvp(lambda m: sla.eigh(m)[1], (c,), (e + 0j,))[0],
                               scipy.linalg.eigh(c)[1], atol=1e-14)


# ----- 3. det and slogdet at singular matrices ------------------------------------

def _adjugate_by_minors(a):
    n = a.shape[-1]
    out = np.zeros_like(a)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, j, 0), i, 1)
            out[i, j] = (-1) ** (i + j) * (np.linalg.det(minor) if n > 1 else 1.0)
    return out


def _rank(n, r, rng, cplx=False):
    a, b = rng.standard_normal((n, r)), rng.standard_normal((r, n))
    if cplx:
        a, b = a + 1j * rng.standard_normal((n, r)), b + 1j * rng.standard_normal((r, n))
    return a @ b


@pytest.mark.parametrize("n, r, cplx", [(3, 2, False), (4, 3, False), (4, 2, False),
                                        (3, 1, False), (3, 0, False), (3, 2, True),
                                        (4, 2, True), (2, 1, False)])
def test_det_derivative_is_the_adjugate_at_singular_matrices(n, r, cplx):
    a = _rank(n, r, np.random.default_rng(n + r), cplx)
    adj_t = _adjugate_by_minors(a).T
    for mode in ("forward", "reverse"):
        if cplx:       # holomorphic: the Jacobian of det is adj(A)ᵀ
            jac = ad.jacobian(np.linalg.det, mode=mode, holomorphic=True)(a) \
                if mode == "forward" else ad.grad(lambda a: np.real(np.linalg.det(a)))(a)
        else:
            jac = ad.jacobian(np.linalg.det, mode=mode)(a)
        np.testing.assert_allclose(jac, adj_t, atol=1e-10)
    ad.check_grads(np.linalg.det, (a,), order=2, modes=("fwd", "rev"))


def test_det_hessian_at_a_rank_deficient_matrix():
    a = _rank(3, 1, np.random.default_rng(4))       # adj(A) = 0 here, its derivative is not
    h = ad.hessian(np.linalg.det)(a)
    num = np.stack([_numerical_jvp(lambda x: _adjugate_by_minors(x).T, a, e.reshape(3, 3))
                    for e in np.eye(9)], axis=-1).reshape(3, 3, 3, 3)
    assert np.abs(num).max() > 0.1
    np.testing.assert_allclose(h, num, atol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(ad.jacrev(np.linalg.det))(a), num, atol=1e-7)


def test_det_stack_of_singular_matrices_batched_jacobians():
    rng = np.random.default_rng(5)
    a = np.stack([_rank(3, 2, rng), _rank(3, 1, rng), rng.standard_normal((3, 3))])
    want = np.zeros((3, 3, 3, 3))
    for i in range(3):
        want[i, i] = _adjugate_by_minors(a[i]).T
    np.testing.assert_allclose(ad.jacfwd(np.linalg.det)(a), want, atol=1e-10)
    np.testing.assert_allclose(ad.jacrev(np.linalg.det)(a), want, atol=1e-10)


def test_det_gradient_of_a_large_matrix_is_finite_and_right():
    """The adjugate's partial products must not overflow where det itself does not."""
    a = np.random.default_rng(6).standard_normal((200, 200))
    with np.errstate(all="raise"):
        g = ad.grad(np.linalg.det)(a)
    want = np.linalg.det(a) * np.linalg.inv(a).T
    np.testing.assert_allclose(g, want, rtol=1e-8, atol=1e-10 * np.abs(want).max())


@pytest.mark.parametrize("how", ["grad", "jvp", "jacrev"])
def test_slogdet_derivative_at_a_singular_matrix_refuses_clearly(how):
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    f = lambda a: np.linalg.slogdet(a)[1]   # noqa: E731
    with pytest.raises(np.linalg.LinAlgError, match=r"slogdet.*singular.*np\.linalg\.det"):
        if how == "grad":
            ad.grad(f)(a)
        elif how == "jvp":
            ad.jvp(f, (a,), (np.ones_like(a),))
        else:
            ad.jacrev(f)(a)


def test_slogdet_sign_of_a_singular_matrix_has_no_derivative_to_raise_for():
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    # the real sign is piecewise constant: NumPy's 0, a zero derivative
    assert ad.grad(lambda a: np.linalg.slogdet(a)[0] * np.sum(a))(a).tolist() == [[0.0] * 2] * 2
    with pytest.raises(np.linalg.LinAlgError, match="slogdet"):
        ad.grad(lambda a: np.real(np.linalg.slogdet(a)[0]))(a + 0j)


# ----- 4. Zero-size matrices: empty Jacobians of the right shape ------------------

_ZERO_SIZE = {
    "qr-q": (lambda a: np.linalg.qr(a)[0], "rect"),
    "qr-r": (lambda a: np.linalg.qr(a)[1], "rect"),
    "qr-complete": (lambda a: np.linalg.qr(a, mode="complete")[0], "rect"),
    "eig-w": (lambda a: np.linalg.eig(a)[0], "square"),
    "eig-v": (lambda a: np.linalg.eig(a)[1], "square"),
    "eigvals": (np.linalg.eigvals, "square"),
    "eigh-w": (lambda a: np.linalg.eigh(a)[0], "square"),
    "eigh-v": (lambda a: np.linalg.eigh(a)[1], "square"),
    "eigvalsh": (np.linalg.eigvalsh, "square"),
    "svd-u": (lambda a: np.linalg.svd(a)[0], "rect"),
    "svd-s": (lambda a: np.linalg.svd(a, full_matrices=False)[1], "rect"),
    "svd-vh": (lambda a: np.linalg.svd(a, full_matrices=False)[2], "rect"),
    "svdvals": (np.linalg.svdvals, "rect"),
    "pinv": (np.linalg.pinv, "rect"),
    "cholesky": (np.linalg.cholesky, "square"),
    "inv": (np.linalg.inv, "square"),
    "det": (np.linalg.det, "square"),
    "slogdet": (lambda a: np.linalg.slogdet(a)[1], "square"),
    "solve": (lambda a: np.linalg.solve(a, np.ones(a.shape[:-1] + (2,))), "square"),
}
_SHAPES = {"square": [(0, 0), (2, 0, 0), (0, 3, 3)],
           "rect": [(3, 0), (0, 3), (0, 0), (2, 3, 0), (0, 3, 2)]}


@pytest.mark.parametrize("name", list(_ZERO_SIZE))
def test_zero_size_inputs_give_empty_jacobians(name):
    f, kind = _ZERO_SIZE[name]
    for shape in _SHAPES[kind]:
        x = np.zeros(shape)
        out_shape = np.shape(f(x))
        for mode in ("forward", "reverse"):
            j = ad.jacobian(f, mode=mode)(x)
            assert j.shape == out_shape + shape, (name, shape, mode, j.shape)


@pytest.mark.parametrize("shape", [(0, 0), (2, 0, 0), (0, 3, 3)])
@pytest.mark.parametrize("name", ["eig-v", "det", "inv", "qr-q", "svd-u", "eigh-v", "cholesky"])
def test_zero_size_complex_inputs(name, shape):
    f = _ZERO_SIZE[name][0]
    x = np.zeros(shape, complex)
    out_shape = np.shape(f(x))
    assert ad.jacrev(lambda a: np.real(f(a)))(x).shape == out_shape + shape
    assert ad.jacfwd(f, holomorphic=True)(x).shape == out_shape + shape


def test_zero_size_stack_of_nonempty_matrices_through_qr_and_eig():
    for f in (lambda a: np.linalg.qr(a)[0], lambda a: np.linalg.eig(a)[1]):
        x = np.zeros((0, 3, 3))
        assert ad.jacfwd(f)(x).shape == (0, 3, 3, 0, 3, 3)
        assert ad.jacrev(f)(x).shape == (0, 3, 3, 0, 3, 3)


# ----- 5. float32 stays float32 ----------------------------------------------------

def test_cholesky_tangent_stays_float32():
    a = (np.eye(3) * 2.0 + 0.1).astype(np.float32)
    y, t = ad.jvp(np.linalg.cholesky, (a,), (a,))
    assert y.dtype == np.float32 and t.dtype == np.float32
    assert ad.jacfwd(np.linalg.cholesky)(a).dtype == np.float32
    want = ad.jvp(np.linalg.cholesky, (a.astype(float),), (a.astype(float),))[1]
    np.testing.assert_allclose(t, want, rtol=1e-5)


def _rule_cases(dt):
    rng = np.random.default_rng(6)
    cplx = np.dtype(dt).kind == "c"

    def rnd(*shape):
        x = rng.standard_normal(shape)
        return (x + 1j * rng.standard_normal(shape) if cplx else x).astype(dt)

    q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    spd = ((q * [1.0, 2.0, 3.0]) @ q.T).astype(dt)
    g = rnd(3, 3) + np.eye(3, dtype=dt) * 3
    tall = rnd(4, 3)
    rot = np.array([[1.0, 2.0, 0.0], [-2.0, 1.0, 0.3], [0.1, 0.2, 3.0]], dt)
    return [("inv", (g,), {}), ("solve", (g, tall[:3]), {}), ("det", (g,), {}),
            ("adjugate", (g,), {}), ("logabsdet", (g,), {}), ("cholesky", (spd,), {}),
            ("eigh", (spd,), {"UPLO": "L"}), ("eigvalsh", (spd,), {"UPLO": "L"}),
            ("eig", (g,), {}), ("eig", (rot,), {}),
            ("svd", (tall,), {"full_matrices": True, "hermitian": False}),
            ("svd", (tall,), {"full_matrices": False, "hermitian": False}),
            ("svdvals", (tall,), {"hermitian": False}), ("qr", (tall,), {"complete": False}),
            ("qr", (tall,), {"complete": True}),
            ("pinv", (tall,), {"rcond": 1e-6, "hermitian": False}),
            ("solve_triangular", (np.tril(spd), tall[:3]),
             {"lower": True, "trans": 0, "unit_diagonal": False}),
            ("lu_factor", (g,), {"perm": (0, 1, 2)}), ("expm", (g * 0.1,), {}),
            ("sqrtm", (spd,), {}), ("solve_sylvester", (g, spd, g), {}),
            ("solve_banded", (rnd(3, 3) + np.array([[0], [4], [0]], dt), tall[:3]),
             {"l": 1, "u": 1})]


@pytest.mark.parametrize("dt", [np.float32, np.complex64])
def test_decomposition_rules_keep_single_precision(dt):
    """Every rule's tangent and cotangent carries the primal's precision (NumPy's float32
    decompositions are float32; a float64 mask in a rule would promote them)."""
    bits = np.finfo(dt).bits
    for name, args, kw in _rule_cases(dt):
        prim = registry[name]
        ans = prim.impl(*args, **kw)
        assert np.finfo(ans.dtype).bits == bits, (name, ans.dtype)
        for i, a in enumerate(args):
            t = np.ones_like(a)
            tan = prim.jvp[i](t, ans, *args, **kw)
            g = np.ones_like(ans)
            ct = prim.vjp(g, ans, *args, **kw)[i] if prim.full_vjp else \
                prim.vjp[i](g, ans, *args, **kw)
            assert np.finfo(tan.dtype).bits == bits, (name, kw, i, "jvp", tan.dtype)
            assert np.finfo(ct.dtype).bits == bits, (name, kw, i, "vjp", ct.dtype)


@pytest.mark.parametrize("f", [
    np.linalg.cholesky, np.linalg.inv, np.linalg.det, lambda a: np.linalg.slogdet(a)[1],
    lambda a: np.linalg.eigh(a)[1], lambda a: np.linalg.eig(a)[1],
    lambda a: np.linalg.svd(a)[0], lambda a: np.linalg.qr(a, mode="complete")[0],
    np.linalg.pinv, lambda a: np.linalg.lstsq(a, np.ones(3, np.float32))[0],
    lambda a: sla.cholesky(a), lambda a: sla.solve_triangular(a, np.ones(3, np.float32)),
    lambda a: sla.lu_solve(sla.lu_factor(a), np.ones(3, np.float32)), sla.expm,
    lambda a: sla.solve_banded((1, 1), a, np.ones(3, np.float32))],
    ids=["cholesky", "inv", "det", "slogdet", "eigh", "eig", "svd", "qr-complete", "pinv",
         "lstsq", "scipy-cholesky", "solve_triangular", "lu_solve", "expm", "solve_banded"])
def test_float32_primal_tangent_and_jacobians_stay_float32(f):
    rng = np.random.default_rng(7)
    q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    a = ((q * [1.0, 2.0, 3.0]) @ q.T + 0.2 * np.triu(np.ones((3, 3)))).astype(np.float32)
    y, t = ad.jvp(f, (a,), (np.ones_like(a),))
    assert np.asarray(y).dtype == np.float32 and np.asarray(t).dtype == np.float32
    assert ad.jacfwd(f)(a).dtype == np.float32
    assert ad.jacrev(f)(a).dtype == np.float32


@pytest.mark.parametrize("a", [np.array([[2.0, 1.0], [0.0, 2.0]]),      # defective (Jordan)
                               np.eye(3),                                # repeated, diagonal
                               np.diag([1.0, 1.0, 3.0]) + 1e-12 * np.triu(np.ones((3, 3)), 1)])
def test_eig_at_repeated_eigenvalues_refuses_instead_of_silent_numbers(a):
    # Before: eigenvalue derivatives ~4.5e15 at a Jordan block, eigenvector derivatives 0.
    for transform in (ad.jacfwd, ad.jacrev):
        with pytest.raises(np.linalg.LinAlgError, match="repeated eigenvalue"):
            transform(lambda m: np.real(np.linalg.eigvals(m)))(a)
    ad.check_grads(lambda m: np.real(np.linalg.eigvals(m)),
                   (np.array([[1.0, 2.0], [3.0, 4.0]]),), order=2)


# ----- qr of a wide matrix (m < n): the square case for the first m columns --------------
@pytest.mark.parametrize("shape", [(2, 4), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("cplx", [False, True])
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr_of_a_wide_matrix_in_both_modes(shape, cplx, mode):
    rng = np.random.default_rng(len(shape) + 3 * cplx)
    a = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if cplx else 0)
    t = rng.standard_normal(shape) + (1j * rng.standard_normal(shape) if cplx else 0)

    def f(x):
        out = np.linalg.qr(x, mode=mode)
        return np.ravel(out) if mode == "r" else np.concatenate([np.ravel(v) for v in out])

    y, got = ad.jvp(f, (a,), (t,))
    np.testing.assert_allclose(y, f(a), atol=1e-14)
    np.testing.assert_allclose(got, _numerical_jvp(f, a, t), atol=1e-8)
    g = rng.standard_normal(np.shape(y)) + (1j * rng.standard_normal(np.shape(y)) if cplx else 0)
    (abar,) = ad.vjp(f, a)[1](g)
    np.testing.assert_allclose(np.real(np.sum(abar * t)), np.real(np.sum(g * got)),
                               rtol=1e-12, atol=1e-12)
    if not cplx:
        ad.check_grads(f, (a,), order=2, modes=("fwd", "rev"))
