"""Case-table entries for products (einsum and its compositions, convolution, polyval,
interp) and numpy.linalg (decompositions, pinv, lstsq, norms, cond, powers, tensor solves).

Inputs are small and well-conditioned, with distinct eigen/singular values. NumPy's
eigen- and singular vectors keep NumPy's signs and phases, so the cases check functions
invariant to them: ``v * v`` (real) or ``|v|²`` (complex) per column, ``U diag(s) Vᴴ``,
projectors ``U₂U₂ᴴ`` of the extra ``full_matrices`` columns. Hermitian inputs are
symmetrised inside the function, as the rules read them (``sym(A) = (A + Aᴴ)/2``).
``eig``'s vectors are also checked up to their sign only (``v∘v``): their rule keeps
LAPACK's gauge (unit columns, the largest component real), so they are NumPy's vectors,
differentiated.
"""
import numpy as np

from autodiff.scipy import linalg as sla


# ----- Domains -----
def _unitary(rng, shape, k, cplx=False):
    """(..., n, k) with orthonormal columns."""
    a = rng.standard_normal(shape[:-1] + (k,))
    if cplx:
        a = a + 1j * rng.standard_normal(shape[:-1] + (k,))
    return np.linalg.qr(a)[0]


def _spectrum(shape):
    n = shape[-1]
    return np.linspace(1.0, 1.0 + 1.3 * (n - 1), n)


def _symmetric(rng, shape, cplx=False):
    q = _unitary(rng, shape, shape[-1], cplx)
    w = _spectrum(shape) * rng.choice([-1.0, 1.0])
    return (q * w[..., None, :]) @ np.conj(np.swapaxes(q, -1, -2))


def _hermitian(rng, shape):
    return _symmetric(rng, shape, cplx=True)


def _spd(rng, shape):
    q = _unitary(rng, shape, shape[-1])
    return (q * _spectrum(shape)[..., None, :]) @ np.swapaxes(q, -1, -2)


def _hpd(rng, shape):
    q = _unitary(rng, shape, shape[-1], cplx=True)
    return (q * _spectrum(shape)[..., None, :]) @ np.conj(np.swapaxes(q, -1, -2))


def _real_spectrum(rng, shape):
    """A non-symmetric real matrix with real, distinct eigenvalues."""
    n = shape[-1]
    p = np.eye(n) + 0.3 * rng.standard_normal(shape)
    return (p * _spectrum(shape)[..., None, :]) @ np.linalg.inv(p)


def _rotation_like(rng, shape):
    """A real matrix with complex-conjugate eigenvalue pairs (and a real one if n is odd)."""
    n = shape[-1]
    d = np.zeros((n, n))
    for i in range(0, n - 1, 2):
        d[i:i + 2, i:i + 2] = [[1.0 + i, 0.7 + 0.4 * i], [-(0.7 + 0.4 * i), 1.0 + i]]
    if n % 2:
        d[-1, -1] = 2.5 + n
    p = np.eye(n) + 0.3 * rng.standard_normal((n, n))
    return p @ d @ np.linalg.inv(p)


def _cgeneral(rng, shape):
    n = shape[-1]
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
            + np.diag(np.linspace(2.0, 2.0 + 2.0 * (n - 1), n)))


def _separated(rng, shape, cplx=False):
    """(..., m, n) with singular values 1, 2.3, 3.6, … (well apart, well away from 0)."""
    m, n = shape[-2:]
    k = min(m, n)
    u = _unitary(rng, shape[:-1] + (k,), k, cplx)
    v = _unitary(rng, shape[:-2] + (n, k), k, cplx)
    s = np.linspace(1.0, 1.0 + 1.3 * (k - 1), k)
    return (u * s) @ np.conj(np.swapaxes(v, -1, -2))


def _cseparated(rng, shape):
    return _separated(rng, shape, cplx=True)


def _rank(r, cplx=False):
    """Square matrices of rank ``r`` (< n: singular), products of random n×r and r×n."""
    def dom(rng, shape):
        a, b = rng.standard_normal(shape[:-1] + (r,)), rng.standard_normal(shape[:-2] + (r, shape[-1]))
        if cplx:
            a = a + 1j * rng.standard_normal(np.shape(a))
            b = b + 1j * rng.standard_normal(np.shape(b))
        return a @ b
    return dom


def _dominant(rng, shape):
    """Square (stacks of) matrices with a dominant diagonal: well conditioned, both
    triangles filled (a triangular solve must ignore the unused one)."""
    n = shape[-1]
    return rng.uniform(-1.0, 1.0, shape) + (n + 1.0) * np.eye(n)


def _band_stack(rng, shape):
    """Stacks of diagonal ordered forms (l = u = 1) with a dominant main diagonal."""
    ab = rng.uniform(-1.0, 1.0, shape)
    ab[..., 1, :] += 4.0
    return ab


_XP = np.array([0.0, 0.4, 1.1, 1.5, 2.0])


def _between_knots(rng, shape):
    """Points of (-0.15, 2.15), some outside [0, 2], at least 0.05 away from the knots of
    _XP (also from 2.2 ≡ 0, the knot that interp's period=2.2 adds)."""
    x = rng.uniform(-0.15, 2.15, shape)
    near = np.abs(x[..., None] - _XP).min(axis=-1) < 0.05
    return np.where(near, x + 0.1, x)


# ----- Small function helpers (plain NumPy, as a user writes them) -----
def _sym(x):
    return (x + np.swapaxes(x, -1, -2)) / 2


def _hsym(z):
    return (z + np.conj(np.swapaxes(z, -1, -2))) / 2


def _flat(*xs):
    """Several results as one vector (the batched-Jacobian test wants one array)."""
    return np.concatenate([np.ravel(x) for x in xs])


def _usv(u, s, vh):
    return (u * s[..., None, :]) @ vh


def make(Case):
    r, c = "real", "complex"
    cases = [
        # ----- einsum -----
        Case("einsum", "einsum-matmul", lambda a, b: np.einsum("ij,jk->ik", a, b),
             (((2, 3), r), ((3, 2), r))),
        Case("einsum", "einsum-implicit", lambda a, b: np.einsum("ij,kj", a, b) ** 2,
             (((2, 3), r), ((2, 3), r))),
        Case("einsum", "einsum-ellipsis", lambda a, b: np.einsum("...ij,jk->...ki", a, b),
             (((2, 2, 3), r), ((3, 2), r))),
        Case("einsum", "einsum-ellipsis-broadcast",
             lambda a, b: np.einsum("...i,...i->...", a, b), (((2, 1, 3), r), ((2, 3), r))),
        Case("einsum", "einsum-three-operands",
             lambda a, b, x: np.einsum("ij,jk,k->i", a, b, x),
             (((2, 3), r), ((3, 2), r), ((2,), r))),
        Case("einsum", "einsum-four-optimize",
             lambda a, b: np.einsum("ij,jk,kl,lm->im", a, b, a, b, optimize="optimal"),
             (((2, 3), r), ((3, 2), r))),
        Case("einsum", "einsum-trace-diagonal",
             lambda a, t: np.einsum("ii", a) * np.einsum("iij->ij", t),
             (((3, 3), r), ((2, 2, 3), r))),
        Case("einsum", "einsum-sum-only-operand", lambda a, b: np.einsum("ij,k->k", a, b),
             (((2, 3), r), ((2,), r))),
        Case("einsum", "einsum-outer-transpose",
             lambda x, y: np.einsum("i,j->ji", x, np.sin(y)), (((3,), r), ((2,), r))),
        Case("einsum", "einsum-sublists",
             lambda a, b: np.einsum(a, [0, Ellipsis], b, [1, 0], [Ellipsis, 1]),
             (((2, 3), r), ((2, 2), r))),
        Case("einsum", "einsum-complex", lambda a, b: np.einsum("ij,jk->ki", a, b),
             (((2, 3), c), ((3, 2), c))),
        Case("einsum", "einsum-real-complex", lambda a, b: np.einsum("ij,j->i", a, b),
             (((2, 3), r), ((3,), c))),
        # ----- Compositions of einsum / matmul -----
        Case("einsum", "tensordot-int", lambda a, b: np.tensordot(a, b, 2),
             (((2, 2, 3), r), ((2, 3, 2), r))),
        Case("einsum", "tensordot-pairs", lambda a, b: np.tensordot(a, b, ([0, 2], [1, 0])),
             (((2, 3, 2), r), ((2, 2, 3), r))),
        Case("einsum", "tensordot-linalg", lambda a, b: np.linalg.tensordot(a, b, axes=1),
             (((2, 3), r), ((3, 2), r))),
        Case("einsum", "inner-nd", lambda a, b: np.inner(a, b), (((2, 3), r), ((2, 2, 3), r))),
        Case("einsum", "dot-nd", lambda a, b: np.dot(a, b), (((2, 2, 3), r), ((2, 3, 2), r))),
        Case("einsum", "dot-nd-vector", lambda a, b: np.dot(a, b), (((2, 2, 3), r), ((3,), r))),
        Case("matmul", "vdot-real", lambda a, b: np.vdot(a, b), (((2, 3), r), ((2, 3), r))),
        Case("matmul", "vdot-complex", lambda a, b: np.vdot(a, b), (((3,), c), ((3,), c))),
        Case("multiply", "outer-linalg", lambda a, b: np.linalg.outer(a, b),
             (((3,), r), ((2,), r))),
        Case("multiply", "kron-2d", lambda a, b: np.kron(a, b), (((2, 2), r), ((2, 3), r))),
        Case("multiply", "kron-mixed-ndim", lambda a, b: np.kron(a, b),
             (((3,), r), ((2, 2), r))),
        Case("multiply", "cross-3d", lambda a, b: np.cross(a, b), (((2, 3), r), ((3,), r))),
        Case("multiply", "cross-axes", lambda a, b: np.cross(a, b, axisa=0, axisb=-1, axisc=0),
             (((3, 2), r), ((2, 3), r))),
        Case("multiply", "cross-linalg", lambda a, b: np.linalg.cross(a, b),
             (((2, 3), r), ((2, 3), r))),
        Case("multiply", "cross-complex", lambda a, b: np.cross(a, b), (((3,), c), ((3,), c))),
        Case("sum", "vecdot-axis", lambda a, b: np.vecdot(a, b, axis=0),
             (((3, 2), r), ((3, 2), r))),
        Case("sum", "vecdot-complex", lambda a, b: np.linalg.vecdot(a, b),
             (((2, 3), c), ((3,), c))),
        Case("matmul", "matvec", lambda a, x: np.matvec(a, x), (((2, 2, 3), r), ((3,), r))),
        Case("matmul", "vecmat-complex", lambda x, a: np.vecmat(x, a),
             (((3,), c), ((3, 2), c))),
        Case("matmul", "matmul-linalg", lambda a, b: np.linalg.matmul(a, b),
             (((2, 3), r), ((2, 3, 2), r))),
        Case("getitem", "diagonal-trace-linalg",
             lambda a: np.linalg.diagonal(a, offset=1) * np.linalg.trace(a, offset=-1)[..., None]
             + np.linalg.matrix_transpose(a)[..., 0, :2],
             (((2, 3, 3), r),)),
        # ----- Convolution -----
        Case("correlate", "convolve-full-1d", lambda a, v: np.convolve(a, v),
             (((5,), r), ((3,), r))),
        Case("correlate", "convolve-same-short-first",
             lambda a, v: np.convolve(a, v, mode="same"), (((2,), r), ((4,), r))),
        Case("correlate", "convolve-valid", lambda a, v: np.convolve(a, v, "valid"),
             (((5,), r), ((2,), r))),
        Case("correlate", "correlate-valid-1d", lambda a, v: np.correlate(a, v),
             (((5,), r), ((3,), r))),
        Case("correlate", "correlate-same-even", lambda a, v: np.correlate(a, v, "same"),
             (((2,), r), ((5,), r))),
        Case("correlate", "correlate-full-complex", lambda a, v: np.correlate(a, v, "full"),
             (((4,), c), ((2,), c))),
        # ----- Polynomials and interpolation -----
        Case("multiply", "polyval", lambda p, x: np.polyval(p, x), (((4,), r), ((2, 3), r))),
        Case("interp", "interp-x-fp", lambda x, fp: np.interp(x, _XP, fp),
             (((6,), _between_knots), ((5,), r))),
        Case("interp", "interp-left-right",
             lambda x, fp: np.interp(x, _XP, fp ** 2, left=-1.0, right=fp[0] * 3.0),
             (((3, 2), _between_knots), ((5,), r))),
        Case("interp", "interp-scalar", lambda x, fp: np.interp(x, _XP, fp),
             (((), _between_knots), ((5,), r))),
        Case("interp", "interp-period", lambda x, fp: np.interp(x, _XP, fp, period=2.2),
             (((4,), _between_knots), ((5,), r))),
        # ----- cholesky -----
        Case("cholesky", "cholesky", lambda a: np.linalg.cholesky(_sym(a)), (((3, 3), _spd),)),
        Case("cholesky", "cholesky-upper-stack",
             lambda a: np.linalg.cholesky(_sym(a), upper=True), (((2, 3, 3), _spd),)),
        Case("cholesky", "cholesky-complex", lambda a: np.linalg.cholesky(_hsym(a)),
             (((3, 3), _hpd),)),
        # ----- eigh -----
        Case("eigh", "eigh", lambda a: _eigh_invariants(*np.linalg.eigh(_sym(a))),
             (((3, 3), _symmetric),)),
        Case("eigh", "eigh-upper-stack",
             lambda a: _eigh_invariants(*np.linalg.eigh(_sym(a), UPLO="U")),
             (((2, 3, 3), _symmetric),)),
        Case("eigvalsh", "eigvalsh", lambda a: np.linalg.eigvalsh(_sym(a)),
             (((4, 4), _symmetric),)),
        Case("eigvalsh", "eigvalsh-complex-upper",
             lambda a: np.linalg.eigvalsh(_hsym(a), UPLO="U") ** 2, (((3, 3), _hermitian),)),
        Case("eigh", "eigh-complex",
             lambda a: _eigh_invariants(*np.linalg.eigh(_hsym(a))), (((3, 3), _hermitian),)),
        Case("eigh", "eigh-reconstruct-complex",
             lambda a: (lambda w, v: (v * w[..., None, :]) @ np.conj(v.T))(
                 *np.linalg.eigh(_hsym(a))), (((3, 3), _hermitian),)),
        # ----- eig -----
        Case("eig", "eig-real-spectrum", lambda a: _eig_invariants(*np.linalg.eig(a)),
             (((3, 3), _real_spectrum),)),
        Case("eig", "eig-complex-pairs", lambda a: _eig_invariants(*np.linalg.eig(a)),
             (((3, 3), _rotation_like),)),
        Case("eig", "eig-complex-input", lambda a: _eig_invariants(*np.linalg.eig(a)),
             (((3, 3), _cgeneral),)),
        Case("eig", "eigvals", lambda a: np.linalg.eigvals(a), (((4, 4), _rotation_like),)),
        Case("eig", "eig-vectors-real-spectrum", lambda a: _eig_phased(*np.linalg.eig(a)),
             (((3, 3), _real_spectrum),)),
        Case("eig", "eig-vectors-complex-pairs", lambda a: _eig_phased(*np.linalg.eig(a)),
             (((3, 3), _rotation_like),)),
        Case("eig", "eig-vectors-complex-input", lambda a: _eig_phased(*np.linalg.eig(a)),
             (((3, 3), _cgeneral),)),
        Case("eig", "eig-vectors-stack", lambda a: _eig_phased(*np.linalg.eig(a)),
             (((2, 3, 3), _cgeneral),)),
        Case("eig", "eig-vectors-pairs-4x4", lambda a: _eig_phased(*np.linalg.eig(a)),
             (((4, 4), _rotation_like),)),
        # ----- svd -----
        Case("svd", "svd-reduced-tall",
             lambda a: _svd_invariants(*np.linalg.svd(a, full_matrices=False)),
             (((4, 3), _separated),)),
        Case("svd", "svd-reduced-wide",
             lambda a: _svd_invariants(*np.linalg.svd(a, full_matrices=False)),
             (((2, 4), _separated),)),
        Case("svd", "svd-full-tall", lambda a: _svd_full(a, *np.linalg.svd(a)),
             (((4, 2), _separated),)),
        Case("svd", "svd-full-wide", lambda a: _svd_full(a, *np.linalg.svd(a)),
             (((2, 4), _separated),)),
        Case("svdvals", "svd-values-stack", lambda a: np.linalg.svd(a, compute_uv=False),
             (((2, 3, 2), _separated),)),
        Case("svdvals", "svdvals", lambda a: np.linalg.svdvals(a) ** 2, (((3, 3), _separated),)),
        Case("svdvals", "svdvals-complex-wide", lambda a: np.linalg.svdvals(a) ** 2,
             (((2, 3), _cseparated),)),
        Case("svd", "svd-complex",
             lambda a: _svd_invariants(*np.linalg.svd(a, full_matrices=False)),
             (((3, 2), _cseparated),)),
        Case("svd", "svd-complex-wide-reconstruct",
             lambda a: _usv(*np.linalg.svd(a, full_matrices=False)), (((2, 3), _cseparated),)),
        # ----- qr -----
        Case("qr", "qr-reduced-tall", lambda a: np.concatenate(np.linalg.qr(a), axis=0),
             (((4, 3), _separated),)),
        Case("qr", "qr-square", lambda a: np.linalg.qr(a)[0] + np.linalg.qr(a)[1],
             (((3, 3), _separated),)),
        Case("qr", "qr-complete",
             lambda a: (lambda q, rr: _flat(q[:, 2:] @ q[:, 2:].T, q[:, :2], rr))(
                 *np.linalg.qr(a, mode="complete")), (((4, 2), _separated),)),
        Case("qr", "qr-r-stack", lambda a: np.linalg.qr(a, mode="r"),
             (((2, 3, 2), _separated),)),
        Case("qr", "qr-complex", lambda a: np.concatenate(np.linalg.qr(a), axis=0),
             (((3, 2), _cseparated),)),
        # ----- pinv, lstsq -----
        Case("pinv", "pinv-tall", lambda a: np.linalg.pinv(a), (((4, 2), _separated),)),
        Case("pinv", "pinv-wide-stack", lambda a: np.linalg.pinv(a), (((2, 2, 3), _separated),)),
        Case("pinv", "pinv-complex", lambda a: np.linalg.pinv(a), (((2, 3), _cseparated),)),
        Case("pinv", "lstsq-vector", lambda a, b: _lstsq_parts(a, b),
             (((4, 2), _separated), ((4,), r))),
        Case("pinv", "lstsq-matrix-rcond", lambda a, b: _lstsq_parts(a, b, rcond=1e-10),
             (((3, 2), _separated), ((3, 2), r))),
        Case("pinv", "lstsq-underdetermined", lambda a, b: np.linalg.lstsq(a, b)[0],
             (((2, 3), _separated), ((2,), r))),
        # ----- Powers, chains, tensor inverses -----
        Case("matmul", "matrix_power-3", lambda a: np.linalg.matrix_power(a, 3),
             (((2, 2, 2), r),)),
        Case("inv", "matrix_power-negative", lambda a: np.linalg.matrix_power(a, -2)
             + np.linalg.matrix_power(a, 0) * a, (((3, 3), _spd),)),
        Case("matmul", "multi_dot", lambda x, a, b, y: np.linalg.multi_dot([x, a, b, y]),
             (((3,), r), ((3, 4), r), ((4, 2), r), ((2,), r))),
        Case("matmul", "multi_dot-matrices", lambda a, b, cc: np.linalg.multi_dot([a, b, cc]),
             (((2, 4), r), ((4, 3), r), ((3, 3), r))),
        Case("inv", "tensorinv", lambda a: np.linalg.tensorinv(a, ind=1),
             (((4, 2, 2), _tensor_spd),)),
        Case("solve", "tensorsolve", lambda a, b: np.linalg.tensorsolve(a, b),
             (((2, 2, 4), _tensor_spd), ((2, 2), r))),
        Case("solve", "tensorsolve-axes", lambda a, b: np.linalg.tensorsolve(a, b, axes=(0,)),
             (((4, 2, 2), _tensor_spd), ((2, 2), r))),
        Case("det", "slogdet-sign-complex", lambda a: np.linalg.slogdet(a)[0],
             (((3, 3), _cgeneral),)),
        # ----- det through the adjugate: singular matrices too -----
        Case("adjugate", "det-general", lambda a: np.linalg.det(a), (((3, 3), r),)),
        Case("adjugate", "det-rank-n-1", lambda a: np.linalg.det(a), (((3, 3), _rank(2)),)),
        Case("adjugate", "det-rank-n-2", lambda a: np.linalg.det(a), (((4, 4), _rank(2)),)),
        Case("adjugate", "det-rank-1-of-3", lambda a: np.linalg.det(a), (((3, 3), _rank(1)),)),
        Case("adjugate", "det-zero-matrix", lambda a: np.linalg.det(a), (((3, 3), _rank(0)),)),
        Case("adjugate", "det-rank-deficient-complex", lambda a: np.linalg.det(a),
             (((3, 3), _rank(2, cplx=True)),)),
        Case("adjugate", "det-rank-deficient-stack", lambda a: np.linalg.det(a) * 2.0,
             (((2, 3, 3), _rank(2)),)),
        Case("adjugate", "det-1x1-stack", lambda a: np.linalg.det(a), (((2, 1, 1), r),)),
        # ----- Right-hand sides by NumPy 2's rule: a vector only when exactly 1-D -----
        Case("solve", "solve-stack-vector-rhs", lambda a, b: np.linalg.solve(a, b),
             (((3, 2, 2), _spd), ((2,), r))),
        Case("solve", "solve-1x1-stack-vector-rhs",
             lambda a, b: np.linalg.solve(a, b) * np.array([[1.0], [2.0], [3.0]]),
             (((3, 1, 1), "pos"), ((1,), r))),
        Case("solve", "solve-broadcast-matrix-rhs", lambda a, b: np.linalg.solve(a, b),
             (((2, 1, 3, 3), _spd), ((4, 3, 2), r))),
        Case("solve", "solve-stack-vector-rhs-complex", lambda a, b: np.linalg.solve(a, b),
             (((2, 3, 3), _cgeneral), ((3,), c))),
        Case("solve_triangular", "solve_triangular-stack-vector-rhs",
             lambda a, b: sla.solve_triangular(a, b, lower=True), (((2, 3, 3), _dominant), ((3,), r))),
        Case("solve_triangular", "cho_solve-stack-vector-rhs",
             lambda a, b: sla.cho_solve((np.linalg.cholesky(_sym(a)), True), b),
             (((2, 3, 3), _spd), ((3,), r))),
        Case("solve_banded", "solve_banded-stack-vector-rhs",
             lambda ab, b: sla.solve_banded((1, 1), ab, b), (((2, 3, 4), _band_stack), ((4,), r))),
        Case("lu_factor", "lu_solve-stack-rhs",
             lambda a, b: sla.lu_solve(sla.lu_factor(a), b), (((3, 3), _dominant), ((2, 3, 2), r))),
        Case("lu_factor", "lu_solve-trans-stack-rhs",
             lambda a, b: sla.lu_solve(sla.lu_factor(a), b, trans=1),
             (((3, 3), _dominant), ((2, 3, 2), r))),
        # ----- Norms and cond -----
        Case("sum", "norm-vector-ords",
             lambda x: np.stack([np.linalg.norm(x, o) for o in (None, 1, np.inf, -np.inf, 3, 0.5)])
             + np.linalg.norm(x, 0), (((4,), "nonzero"),)),
        Case("sum", "norm-vector-axis-keepdims",
             lambda x: np.linalg.norm(x, -1, axis=-2, keepdims=True), (((2, 3, 2), "nonzero"),)),
        Case("sum", "norm-vector-complex", lambda z: np.linalg.norm(z) * np.linalg.norm(z, 3),
             (((3,), c),)),
        Case("sum", "norm-matrix-ords",
             lambda x: np.stack([np.linalg.norm(x, o) for o in ("fro", 1, -1, np.inf, -np.inf)]),
             (((3, 4), "nonzero"),)),
        Case("svdvals", "norm-matrix-svd-ords",
             lambda x: np.stack([np.linalg.norm(x, o) for o in ("nuc", 2, -2)]),
             (((3, 2), _separated),)),
        Case("svdvals", "norm-matrix-axes-keepdims",
             lambda x: np.linalg.norm(x, "nuc", axis=(2, 0), keepdims=True)
             + np.linalg.norm(x, -1, axis=(0, 2)).sum(), (((3, 2, 2), "nonzero"),)),
        Case("svdvals", "norm-matrix-complex",
             lambda z: np.linalg.norm(z, "nuc") + np.linalg.norm(z, "fro") ** 2
             + np.linalg.norm(z, np.inf), (((2, 3), _cseparated),)),
        Case("sum", "vector_norm", lambda x: np.linalg.vector_norm(x, axis=(0, 2), ord=4),
             (((2, 3, 2), "nonzero"),)),
        Case("svdvals", "matrix_norm", lambda x: np.linalg.matrix_norm(x, ord=2, keepdims=True),
             (((2, 3, 2), _separated),)),
        Case("svdvals", "cond-2", lambda a: np.linalg.cond(a) + np.linalg.cond(a, -2),
             (((3, 2), _separated),)),
        Case("inv", "cond-fro-1", lambda a: np.linalg.cond(a, "fro") + np.linalg.cond(a, 1),
             (((3, 3), _spd),)),
    ]
    return cases


# ----- Gauge-invariant views of the decompositions -----
def _eigh_invariants(w, v):
    """w and v∘conj(v) (each column's sign or phase drops out)."""
    vv = np.real(v * np.conj(v))
    return np.concatenate([w[..., None, :], vv], axis=-2)


def _eig_invariants(w, v):
    """w and |v|² per column (unit columns: the phase drops out)."""
    return _flat(w, np.real(v * np.conj(v)))


def _eig_phased(w, v):
    """w and v∘v: the phase of each column counts (v → e^{iθ}v gives e^{2iθ} v∘v), its
    sign not (LAPACK may flip it between nearby matrices)."""
    return _flat(w, v * v)


def _svd_invariants(u, s, vh):
    uu = np.real(u * np.conj(u))
    vv = np.real(vh * np.conj(vh))
    return _flat(s, uu, vv, _usv(u, s, vh))


def _svd_full(a, u, s, vh):
    """The first k columns (sign-invariant) and the projector onto the complement."""
    m, n = np.shape(a)[-2:]
    k = min(m, n)
    u1, u2, v1, v2 = u[:, :k], u[:, k:], vh[:k], vh[k:]
    return _flat(s, u1 * u1, v1 * v1, u2 @ u2.T, v2.T @ v2)


def _lstsq_parts(a, b, rcond=None):
    x, res, rank, s = np.linalg.lstsq(a, b, rcond=rcond)
    return _flat(x, res, s)


def _tensor_spd(rng, shape):
    n = int(np.sqrt(np.prod(shape)))
    return _spd(rng, (n, n)).reshape(shape)
