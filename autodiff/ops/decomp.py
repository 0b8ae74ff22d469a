"""Matrix decompositions — cholesky, eigh, eig, svd, qr — and pinv; norms, cond, lstsq on top.

``eigvalsh`` and ``svdvals`` (also ``svd(compute_uv=False)``) are primitives of their own, for
speed: their tangents need only ``diag(Vᴴ dA V)``, not the vectors' tangents.

Each decomposition is one primitive; its several outputs travel packed in one array (each
flattened over its matrix axes, joined on the last axis) and the NumPy entry point unpacks
them, so one factorisation serves every output and the rules see all cotangents at once.
The JVPs are the classic perturbation formulas (JAX's); each VJP is the exact transpose of
its JVP under the pairing ⟨a, b⟩ = Re Σ a·b, written step by step in reverse. With ``Xᴴ``
the conjugate transpose, ``F_ij = 1/(λ_j - λ_i)`` (0 on the diagonal) and ``sym(X) =
(X + Xᴴ)/2``:

* eigh ``A = V diag(w) Vᴴ``: ``M = Vᴴ sym(dA) V``, ``dw = diag M``, ``dV = V (F ∘ M)``;
* eig ``A V = V diag(w)``: ``M = V⁻¹ dA V``, ``dw = diag M``, ``dV = V (F ∘ M + diag c)``
  with ``c`` keeping each column at unit norm and its largest component real (LAPACK's);
* svd ``A = U diag(s) Vᴴ``: ``dS = Uᴴ dA V``, ``ds = Re diag dS``, and ``dU``, ``dV`` from
  ``F_ij = 1/(s_j² - s_i²)`` plus the parts outside the column spaces;
* qr ``A = QR`` (m ≥ n): ``Y = Qᴴ dA R⁻¹`` splits into a skew-Hermitian ``Ω`` and an
  upper triangle: ``dQ = Q(Ω - Y) + dA R⁻¹``, ``dR = (Y - Ω) R``; a wide ``A = [X | Y]``
  (m < n) is the square case for ``X`` and ``dR₂ = Qᴴ dY - Ω R₂``;
* cholesky ``A = L Lᴴ``: ``dL = L Φ(L⁻¹ sym(dA) L⁻ᴴ)``, Φ = lower triangle, half diagonal;
* pinv (constant rank): ``dP = -P dA P + P Pᴴ dAᴴ (I - AP) + (I - PA) dAᴴ Pᴴ P``.

Hermitian inputs (eigh, cholesky) are read as ``sym(A)``, as JAX does: the tangent and the
cotangent are symmetrised. Eigen- and singular vectors are NumPy's (no sign or phase is
changed); their rules assume distinct eigen/singular values and fix the gauge freedom as
JAX does (eigh: ``Vᴴ dV`` zero on the diagonal; svd: the same for V, U taking the phase),
so derivatives of gauge-invariant functions (``|v|²``, ``U diag(s) Vᴴ``, projectors) are
exact. eig fixes it as LAPACK's ``geev`` does (unit columns, ``Re vⱼᴴ dvⱼ = 0``, and the
largest component of each column stays real), so its vectors' derivatives are those of
``np.linalg.eig``'s own output, not only of gauge-invariant functions of it (LAPACK leaves
a sign free, which may flip between nearby matrices: the derivative is that of the
smooth branch through the given one). The extra columns of ``full_matrices``
and ``complete`` span the orthogonal complement; their rule moves them with it
(``dU₂ = -U₁ dU₁ᴴ U₂``), right for every function of the projector ``U₂U₂ᴴ``.

>>> import autodiff as ad
>>> a = np.array([[2.0, 1.0], [1.0, 3.0]])
>>> ad.grad(lambda a: np.linalg.eigvalsh(a)[-1])(a)      # v vᵀ of the top eigenvector
array([[0.2763932, 0.4472136],
       [0.4472136, 0.7236068]])
"""
import math

import numpy as np

from ..boxes import lift, meta, recorded, unbox
from ..core import is_complex, lead, ndim_of, shape_of
from . import dependency
from .define import defprim, handles, norm_axes
from .linalg import _matmul, inv_p, like, mT, solve_p
from .reductions import root0

__all__ = ["cholesky_p", "eigh_p", "eigvalsh_p", "eig_p", "svd_p", "svdvals_p", "qr_p",
           "pinv_p"]

_EighResult = type(np.linalg.eigh(np.eye(1)))
_EigResult = type(np.linalg.eig(np.eye(1)))
_SVDResult = type(np.linalg.svd(np.eye(1)))
_QRResult = type(np.linalg.qr(np.eye(1)))


# ----- Helpers (plain or tracked values, any leading axes) -----
def _conj(x):
    return np.conj(x) if is_complex(x) else x


def _real(x):
    return np.real(x) if is_complex(x) else x


def _H(x):
    """Conjugate transpose of a stack of matrices."""
    return _conj(mT(x))


def _sym(x):
    return (x + _H(x)) * 0.5


def _diag(x):
    return np.diagonal(x, 0, -2, -1)


def _diag_embed(v):
    return np.expand_dims(v, -1) * np.eye(shape_of(v)[-1], dtype=bool)


def _gaps(w):
    """``F_ij = 1/(w_j - w_i)``, 0 on the diagonal and wherever two values coincide (no
    vector derivative exists there; 0 keeps derivatives of the values alone finite)."""
    d = np.expand_dims(w, -2) - np.expand_dims(w, -1)
    same = np.asarray(d == 0)
    return np.where(same, 0.0, 1.0 / np.where(same, 1.0, d))


def _safe_inv(s):
    zero = np.asarray(s == 0)
    return np.where(zero, 0.0, 1.0 / np.where(zero, 1.0, s))


def _pack(*parts):
    """Outputs ``(array, core_ndim)`` as one array: flattened over their core axes, joined."""
    # The core size spelled out, not -1: a zero-size stack cannot infer it.
    flat = [x if c == 1 else np.reshape(x, shape_of(x)[:ndim_of(x) - c]
                                        + (math.prod(shape_of(x)[ndim_of(x) - c:]),))
            for x, c in parts]
    return np.concatenate(flat, axis=-1)


def _unpack(p, *cores):
    """The arrays ``_pack`` joined, given their core shapes; leading axes (a stack of
    matrices, a batch of directions) are kept."""
    s = shape_of(p)[:-1]
    out, k = [], 0
    for c in cores:
        size = math.prod(c)
        piece = p[..., k:k + size]
        out.append(piece if len(c) == 1 else np.reshape(piece, s + c))
        k += size
    return out


def _square(a, name):
    s = shape_of(a)
    if len(s) < 2 or s[-1] != s[-2]:
        raise np.linalg.LinAlgError(f"{name}: last 2 dimensions of the array must be square")
    return s[-1]


def _cube(ans, a):
    return 10 * np.size(a) * np.shape(a)[-1]


# ----- cholesky -----
def _phi(n, x):
    """Φ's mask: the strict lower triangle and half the diagonal (in ``x``'s precision)."""
    return like(np.tri(n, k=-1) + 0.5 * np.eye(n), x)


def _cholesky_jvp(t, ans, a):
    low = ans
    x = solve_p(low, _sym(t))                    # L⁻¹ S
    z = _H(solve_p(low, _H(x)))                  # L⁻¹ S L⁻ᴴ
    return low @ (z * _phi(shape_of(a)[-1], z))


def _cholesky_vjp(g, ans, a):
    low = ans
    p = (mT(low) @ g) * _phi(shape_of(a)[-1], g)  # Φ(Lᵀ Ḡ)
    q = solve_p(mT(low), p)                      # L⁻ᵀ Φ(Lᵀ Ḡ)
    return _sym(mT(solve_p(_H(low), mT(q))))     # sym(L⁻ᵀ Φ(Lᵀ Ḡ) conj(L)⁻¹)


cholesky_p = defprim("cholesky", lambda a: np.linalg.cholesky(a),
                     jvp=(_cholesky_jvp,), vjp=(_cholesky_vjp,),
                     flops=lambda ans, a: np.size(a) * np.shape(a)[-1] // 3)


@handles(np.linalg.cholesky)
def _cholesky(a, /, *, upper=False):
    if upper:       # NumPy reads the upper triangle: the lower one of aᴴ, factor transposed
        return _H(cholesky_p(_H(a)))
    return cholesky_p(a)


# ----- eigh: packed (w, V) -----
def _eigh_impl(a, UPLO):
    w, v = np.linalg.eigh(a, UPLO)
    return _pack((w, 1), (v, 2))


def _eigh_jvp(t, ans, a, UPLO):
    n = shape_of(a)[-1]
    w, v = _unpack(ans, (n,), (n, n))
    m = _H(v) @ _sym(t) @ v
    return _pack((_real(_diag(m)), 1), (v @ (_gaps(w) * m), 2))


def _eigh_vjp(g, ans, a, UPLO):
    n = shape_of(a)[-1]
    w, v = _unpack(ans, (n,), (n, n))
    gw, gv = _unpack(g, (n,), (n, n))
    mbar = _diag_embed(gw) + _gaps(w) * (mT(v) @ gv)
    return _sym(_conj(v) @ mbar @ mT(v))


eigh_p = defprim("eigh", _eigh_impl, jvp=(_eigh_jvp,), vjp=(_eigh_vjp,), flops=_cube)


def _eigh_parts(a, UPLO):
    n = _square(a, "eigh")
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    w, v = _unpack(eigh_p(a, UPLO=UPLO), (n,), (n, n))
    return _real(w), v


@handles(np.linalg.eigh)
def _eigh(a, UPLO="L"):
    return _EighResult(*_eigh_parts(a, UPLO))


# ``eigvalsh``: a primitive for speed. LAPACK skips the vectors in the evaluation, and a
# tangent costs one product, ``dw = Re diag(Vᴴ sym(dA) V)``, not the vectors' tangents too.
def _eigvalsh_vectors(a, UPLO):
    n = shape_of(a)[-1]
    return _unpack(eigh_p(a, UPLO=UPLO), (n,), (n, n))[1]


def _eigvalsh_jvp(t, ans, a, UPLO):
    v = _eigvalsh_vectors(a, UPLO)
    return _real(np.sum((_H(v) @ _sym(t)) * mT(v), axis=-1))


def _eigvalsh_vjp(g, ans, a, UPLO):
    v = _eigvalsh_vectors(a, UPLO)
    return _sym((_conj(v) * np.expand_dims(g, -2)) @ mT(v))


eigvalsh_p = defprim("eigvalsh", lambda a, UPLO: np.linalg.eigvalsh(a, UPLO),
                     jvp=(_eigvalsh_jvp,), vjp=(_eigvalsh_vjp,), flops=_cube)


@handles(np.linalg.eigvalsh)
def _eigvalsh(a, UPLO="L"):
    _square(a, "eigvalsh")
    if UPLO not in ("L", "U"):
        raise ValueError("UPLO argument must be 'L' or 'U'")
    return eigvalsh_p(a, UPLO=UPLO)


# ----- eig: packed (w, V); complex where NumPy's are -----
def _eig_impl(a):
    w, v = np.linalg.eig(a)
    return _pack((w, 1), (v, 2))


def _lapack_phase(v):
    """LAPACK's gauge for complex eigenvectors (``geev``): each unit column has its largest
    component (the first of equal moduli) real. Returns the 0/1 mask ``E`` of that component
    per column and its real value ``ρ`` (``|ρ| ≥ 1/√n``). The choice is discrete: no
    derivative flows through it."""
    n = shape_of(v)[-1]
    if n == 0:                                               # argmax of nothing fails
        return np.zeros(shape_of(v), bool), np.zeros(shape_of(v)[:-1], np.real(v).dtype)
    k = np.argmax(np.abs(v), axis=-2)                        # (..., n): one row per column
    e = np.arange(n)[:, None] == np.expand_dims(k, -2)       # (..., n, n) boolean
    return e, np.sum(np.real(v) * e, axis=-2)


def _eig_differentiable(w, v):
    """Refuse where eig has no derivative: at a repeated eigenvalue the eigenvalues split
    along each direction (and the vectors are not determined), and at a defective matrix
    (eigenvectors nearly dependent) the first-order formulas divide by ~0. Silent numbers
    there (zeros, or 1e15) would be wrong. Under ``ad.jit`` the test is one recorded call
    and its outcome a guard (not the numbers of ``w`` and ``v``)."""
    if lift(_not_differentiable, w, v):
        raise np.linalg.LinAlgError(
            "np.linalg.eig: no derivative at a matrix with a repeated eigenvalue or nearly "
            "dependent eigenvectors (a defective matrix): the eigenvalues split along each "
            "direction there. For a symmetric or Hermitian matrix use np.linalg.eigh; "
            "otherwise differentiate a function that stays smooth there (np.trace, "
            "np.linalg.det) or perturb the matrix.")


def _not_differentiable(w0, v0):
    """Whether eigenvalues ``w0`` repeat or eigenvectors ``v0`` are nearly dependent."""
    w0, v0 = np.asarray(w0), np.asarray(v0)
    n = w0.shape[-1]
    if n < 2 or w0.size == 0:
        return False
    d = np.abs(w0[..., :, None] - w0[..., None, :]) + np.where(np.eye(n, dtype=bool), np.inf, 0)
    scale = max(1.0, float(np.max(np.abs(w0))))
    return bool(float(np.min(d)) <= 1e-9 * scale or float(np.max(np.linalg.cond(v0))) > 1e8)


def _eig_jvp(t, ans, a):
    n = shape_of(a)[-1]
    w, v = _unpack(ans, (n,), (n, n))
    _eig_differentiable(w, v)
    m = solve_p(v, t @ v)                        # V⁻¹ dA V
    k = _gaps(w) * m
    c = -_real(_diag(_H(v) @ v @ k))             # Re vⱼᴴ dvⱼ = 0: unit columns stay unit
    dv = v @ k + v * np.expand_dims(c, -2)
    if is_complex(v):                            # Im dv_kj = 0: v_kj stays real (LAPACK)
        e, rho = _lapack_phase(v)
        dv = dv - 1j * v * np.expand_dims(np.imag(np.sum(dv * e, axis=-2)) / rho, -2)
    return _pack((_diag(m), 1), (dv, 2))


def _eig_vjp(g, ans, a):
    n = shape_of(a)[-1]
    w, v = _unpack(ans, (n,), (n, n))
    gw, gv = _unpack(g, (n,), (n, n))
    _eig_differentiable(w, v)
    if is_complex(v):                            # the phase step of the JVP, transposed
        e, rho = _lapack_phase(v)
        gv = gv - 1j * (e * np.expand_dims(np.imag(np.sum(gv * v, axis=-2)) / rho, -2))
    cbar = mT(v) @ gv
    kbar = cbar - mT(_H(v) @ v) * np.expand_dims(_real(_diag(cbar)), -2)
    mbar = _gaps(w) * kbar + _diag_embed(gw)
    return solve_p(mT(v), mbar @ mT(v))          # V⁻ᵀ M̄ Vᵀ


eig_p = defprim("eig", _eig_impl, jvp=(_eig_jvp,), vjp=(_eig_vjp,), flops=_cube)


def _eig_parts(a):
    n = _square(a, "eig")
    p = eig_p(a)
    if recorded(p):
        # NumPy's eig is real or complex by the values (a real spectrum or not): under
        # ad.jit that outcome is guarded, or a replay would run the other dtype's program.
        bool(lift(np.iscomplexobj, p))
    return _unpack(p, (n,), (n, n))


@handles(np.linalg.eig)
def _eig(a):
    return _EigResult(*_eig_parts(a))


@handles(np.linalg.eigvals)
def _eigvals(a):
    # Through eig, so the order matches eig's; the derivative needs the vectors anyway.
    return _eig_parts(a)[0]


# ----- svd: packed (U, s, Vh) -----
def _svd_impl(a, full_matrices, hermitian):
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices, hermitian=hermitian)
    return _pack((u, 2), (s, 1), (vh, 2))


def _svd_cores(a, full_matrices):
    m, n = shape_of(a)[-2:]
    k = min(m, n)
    return (m, m if full_matrices else k), (k,), (n if full_matrices else k, n)


def _svd_jvp(t, ans, a, full_matrices, hermitian):
    m, n = shape_of(a)[-2:]
    k = min(m, n)
    u, s, vh = _unpack(ans, *_svd_cores(a, full_matrices))
    u1, v1, s = u[..., :k], _H(vh[..., :k, :]), _real(s)
    ds_mat = _H(u1) @ t @ v1                     # dS = Uᴴ dA V
    f = _gaps(s * s)
    sinv = _safe_inv(s)
    dss = ds_mat * np.expand_dims(s, -2)
    sds = np.expand_dims(s, -1) * ds_mat
    du = u1 @ (f * (dss + _H(dss)))
    dv = v1 @ (f * (sds + _H(sds)))
    if is_complex(ds_mat):                       # the phase of uᵢ takes Im dSᵢᵢ / sᵢ
        du = du + u1 * np.expand_dims(0.5 * _diag(ds_mat - _H(ds_mat)) * sinv, -2)
    if m > k:                                    # the part of dA V outside span(U)
        du = du + (t @ v1 - u1 @ ds_mat) * np.expand_dims(sinv, -2)
    if n > k:
        dv = dv + (_H(t) @ u1 - v1 @ _H(ds_mat)) * np.expand_dims(sinv, -2)
    if full_matrices and m > k:
        du = np.concatenate([du, -(u1 @ (_H(du) @ u[..., k:]))], axis=-1)
    if full_matrices and n > k:
        v2 = _H(vh[..., k:, :])
        dv = np.concatenate([dv, -(v1 @ (_H(dv) @ v2))], axis=-1)
    return _pack((du, 2), (_real(_diag(ds_mat)), 1), (_H(dv), 2))


def _svd_vjp(g, ans, a, full_matrices, hermitian):
    m, n = shape_of(a)[-2:]
    k = min(m, n)
    u, s, vh = _unpack(ans, *_svd_cores(a, full_matrices))
    gu, gs, gvh = _unpack(g, *_svd_cores(a, full_matrices))
    u1, v1, s = u[..., :k], _H(vh[..., :k, :]), _real(s)
    gv = _H(gvh)
    if full_matrices and m > k:                  # dU₂ = -U₁ dU₁ᴴ U₂
        gu2, gu = gu[..., k:], gu[..., :k]
        gu = gu - _conj(u[..., k:]) @ _H(gu2) @ _conj(u1)
    if full_matrices and n > k:
        v2 = _H(vh[..., k:, :])
        gv2, gv = gv[..., k:], gv[..., :k]
        gv = gv - _conj(v2) @ _H(gv2) @ _conj(v1)
    f = _gaps(s * s)
    sinv = _safe_inv(s)
    xu = f * (mT(u1) @ gu)
    xv = f * (mT(v1) @ gv)
    dsbar = (_diag_embed(gs) + (xu + _H(xu)) * np.expand_dims(s, -2)
             + np.expand_dims(s, -1) * (xv + _H(xv)))
    if is_complex(u1):
        z = _diag_embed(_diag(mT(u1) @ gu) * sinv)
        dsbar = dsbar + 0.5 * (z - _H(z))
    abar = _conj(u1) @ dsbar @ mT(v1)
    if m > k:
        w = gu * np.expand_dims(sinv, -2)
        abar = abar + (w - _conj(u1) @ (mT(u1) @ w)) @ mT(v1)
    if n > k:
        w = gv * np.expand_dims(sinv, -2)
        abar = abar + _H((w - _conj(v1) @ (mT(v1) @ w)) @ mT(u1))
    return abar


svd_p = defprim("svd", _svd_impl, jvp=(_svd_jvp,), vjp=(_svd_vjp,), flops=_cube)


def _svd_parts(a, full_matrices=False, hermitian=False):
    if ndim_of(a) < 2:
        raise np.linalg.LinAlgError(f"{ndim_of(a)}-dimensional array given. Array must be "
                                    "at least two-dimensional")
    u, s, vh = _unpack(svd_p(a, full_matrices=bool(full_matrices), hermitian=bool(hermitian)),
                       *_svd_cores(a, full_matrices))
    return u, _real(s), vh


@handles(np.linalg.svd)
def _svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    if not compute_uv:
        return _svdvals(a, hermitian)
    return _SVDResult(*_svd_parts(a, full_matrices, hermitian))


# ``svdvals``: a primitive for speed (norms and cond use it). LAPACK skips the vectors in the
# evaluation, and a tangent costs one product, ``ds = Re diag(Uᴴ dA V)``.
def _svdvals_vectors(a, hermitian):
    u, _, vh = _unpack(svd_p(a, full_matrices=False, hermitian=hermitian),
                       *_svd_cores(a, False))
    return u, vh


def _svdvals_jvp(t, ans, a, hermitian):
    u, vh = _svdvals_vectors(a, hermitian)
    return _real(np.sum((_H(u) @ t) * _conj(vh), axis=-1))


def _svdvals_vjp(g, ans, a, hermitian):
    u, vh = _svdvals_vectors(a, hermitian)
    return (_conj(u) * np.expand_dims(g, -2)) @ _conj(vh)


svdvals_p = defprim(
    "svdvals", lambda a, hermitian: np.linalg.svd(a, compute_uv=False, hermitian=hermitian),
    jvp=(_svdvals_jvp,), vjp=(_svdvals_vjp,), flops=_cube)


@handles(np.linalg.svdvals)
def _svdvals(x, /, hermitian=False):
    if ndim_of(x) < 2:
        raise np.linalg.LinAlgError(f"{ndim_of(x)}-dimensional array given. Array must be "
                                    "at least two-dimensional")
    return svdvals_p(x, hermitian=bool(hermitian))


# ----- qr: packed (Q, R) -----
def _qr_impl(a, complete):
    q, r = np.linalg.qr(a, mode="complete" if complete else "reduced")
    return _pack((q, 2), (r, 2))


def _qr_cores(a, complete):
    m, n = shape_of(a)[-2:]
    k = m if complete else min(m, n)
    return (m, k), (k, n)


def _qr_empty(a):
    """A matrix with no entries (also a wide 0×n one): its Jacobian is empty, so zero."""
    return math.prod(shape_of(a)[-2:]) == 0


# A wide matrix (m < n) is [X | Y] with X square: Q R₁ = X is the square case, and
# R₂ = Qᴴ Y gives dR₂ = Qᴴ dY - Ω R₂ (Qᴴ dQ = Ω, the skew part of the square case).
def _qr_wide_jvp(t, ans, a, complete):
    m = shape_of(a)[-2]
    q, r = _unpack(ans, *_qr_cores(a, complete))
    sq = _pack((q, 2), (r[..., :m], 2))
    dq, dr1 = _unpack(_qr_jvp(t[..., :m], sq, a[..., :m], complete), (m, m), (m, m))
    omega = _H(q) @ dq
    dr2 = _H(q) @ t[..., m:] - omega @ r[..., m:]
    return _pack((dq, 2), (np.concatenate([dr1, dr2], axis=-1), 2))


def _qr_wide_vjp(g, ans, a, complete):
    m = shape_of(a)[-2]
    q, r = _unpack(ans, *_qr_cores(a, complete))
    gq, gr = _unpack(g, *_qr_cores(a, complete))
    r2, gr2 = r[..., m:], gr[..., m:]
    # Ω = Qᴴ dQ: the term -Ω R₂ sends -Ḡ₂ R₂ᵀ to Ω, i.e. (Ω = Qᴴ dQ) -conj(Q) Ḡ₂ R₂ᵀ to dQ
    sq = _pack((q, 2), (r[..., :m], 2))
    gq = gq - _conj(q) @ (gr2 @ mT(r2))
    gx = _qr_vjp(_pack((gq, 2), (gr[..., :m], 2)), sq, a[..., :m], complete)
    return np.concatenate([gx, _conj(q) @ gr2], axis=-1)


def _qr_jvp(t, ans, a, complete):
    if _qr_empty(a):
        return np.zeros(lead(t, a) + shape_of(ans), t.dtype)
    m, n = shape_of(a)[-2:]
    if m < n:
        return _qr_wide_jvp(t, ans, a, complete)
    q, r = _unpack(ans, *_qr_cores(a, complete))
    q1, r1 = q[..., :n], r[..., :n, :]
    x = mT(solve_p(mT(r1), mT(t)))               # dA R⁻¹
    y = _H(q1) @ x
    low = y * np.tri(n, k=-1, dtype=bool)
    omega = low - _H(low)
    if is_complex(y):                            # R keeps a real diagonal
        omega = omega + np.eye(n, dtype=bool) * (y - np.real(y))
    dq = q1 @ (omega - y) + x
    dr = (y - omega) @ r1
    if complete and m > n:
        dq = np.concatenate([dq, -(q1 @ (_H(dq) @ q[..., n:]))], axis=-1)
        dr = np.concatenate([dr, np.zeros(shape_of(dr)[:-2] + (m - n, n), np.result_type(dr))],
                            axis=-2)
    return _pack((dq, 2), (dr, 2))


def _qr_vjp(g, ans, a, complete):
    if _qr_empty(a):
        return np.zeros(lead(g, ans) + shape_of(a), g.dtype)
    m, n = shape_of(a)[-2:]
    if m < n:
        return _qr_wide_vjp(g, ans, a, complete)
    q, r = _unpack(ans, *_qr_cores(a, complete))
    gq, gr = _unpack(g, *_qr_cores(a, complete))
    q1, r1 = q[..., :n], r[..., :n, :]
    if complete and m > n:                       # dQ₂ = -Q₁ dQ₁ᴴ Q₂; R's zero rows are fixed
        gq, gq2 = gq[..., :n], gq[..., n:]
        gq = gq - _conj(q[..., n:]) @ _H(gq2) @ _conj(q1)
        gr = gr[..., :n, :]
    ybar = gr @ mT(r1) - mT(q1) @ gq             # from dR = (Y - Ω)R and dQ = Q(Ω - Y) + X
    obar = -ybar
    lbar = obar - _H(obar)
    ybar = ybar + lbar * np.tri(n, k=-1, dtype=bool)
    if is_complex(obar):
        ybar = ybar + np.eye(n, dtype=bool) * (obar - np.real(obar))
    xbar = gq + _conj(q1) @ ybar
    return mT(solve_p(r1, mT(xbar)))             # X̄ R⁻ᵀ


qr_p = defprim("qr", _qr_impl, jvp=(_qr_jvp,), vjp=(_qr_vjp,), flops=_cube)


@handles(np.linalg.qr)
def _qr(a, mode="reduced"):
    if mode not in ("reduced", "complete", "r"):
        raise NotImplementedError(f"np.linalg.qr(mode={mode!r}) on a tracked value; use "
                                  "'reduced', 'complete' or 'r'")
    if ndim_of(a) < 2:
        raise np.linalg.LinAlgError(f"{ndim_of(a)}-dimensional array given. Array must be "
                                    "at least two-dimensional")
    complete = mode == "complete"
    q, r = _unpack(qr_p(a, complete=complete), *_qr_cores(a, complete))
    return r if mode == "r" else _QRResult(q, r)


# ----- pinv -----
# A primitive for stability: through the SVD its rules would divide by s_i² - s_j², which
# repeated singular values make infinite, while the pseudo-inverse is smooth at constant rank.
def _pinv_jvp(t, ans, a, rcond, hermitian):
    p = ans
    m, n = shape_of(a)[-2:]
    th = _H(t)
    return (-(p @ t @ p) + p @ _H(p) @ th @ (like(np.eye(m), p) - a @ p)
            + (like(np.eye(n), p) - p @ a) @ th @ _H(p) @ p)


def _pinv_vjp(g, ans, a, rcond, hermitian):
    p = ans
    m, n = shape_of(a)[-2:]
    r = -(mT(p) @ g @ mT(p))
    r = r + _H(mT(p @ _H(p)) @ g @ mT(like(np.eye(m), p) - a @ p))
    return r + _H(mT(like(np.eye(n), p) - p @ a) @ g @ mT(_H(p) @ p))


pinv_p = defprim("pinv", lambda a, rcond, hermitian: np.linalg.pinv(a, rcond, hermitian),
                 jvp=(_pinv_jvp,), vjp=(_pinv_vjp,), flops=_cube)


@handles(np.linalg.pinv)
def _pinv(a, rcond=None, hermitian=False, **kw):
    if "rtol" in kw:
        rtol = kw.pop("rtol")
        if rcond is not None:
            raise ValueError("`rtol` and `rcond` can't be both set.")
        rcond = max(shape_of(a)[-2:]) * np.finfo(np.float64).eps if rtol is None else rtol
    if kw:
        raise TypeError(f"pinv() got unexpected keyword arguments {sorted(kw)}")
    return pinv_p(a, rcond=1e-15 if rcond is None else rcond, hermitian=bool(hermitian))


@handles(np.linalg.lstsq)
def _lstsq(a, b, rcond=None):
    """x = pinv(a)·b (the minimum-norm solution, differentiable at constant rank); the
    residuals Σ|b - a x|² and the singular values are differentiable too, the rank is not."""
    if ndim_of(a) != 2 or ndim_of(b) not in (1, 2):
        raise np.linalg.LinAlgError("lstsq: a must be 2-D and b 1-D or 2-D")
    m, n = shape_of(a)
    if shape_of(b)[0] != m:
        raise np.linalg.LinAlgError("Incompatible dimensions")
    if rcond is None:
        rcond = np.finfo(np.float64).eps * max(m, n)
    s = _svdvals(a)
    sv = unbox(s)
    rank = np.int32(np.sum(sv > rcond * sv[0])) if sv.size else np.int32(0)
    x = _matmul(pinv_p(a, rcond=rcond, hermitian=False), b)
    if rank == n and m > n:
        resid = np.sum(_abs2(b - _matmul(a, x)), axis=0)
        if ndim_of(b) == 1:
            resid = np.reshape(resid, (1,))
    else:
        resid = np.empty((0,))
    return x, resid, rank, s


# ----- Norms and the condition number -----
def _abs2(x):
    """|x|² without a square root: smooth at 0 (x·x, or Re(x·conj x) for complex x)."""
    return np.real(x * np.conj(x)) if is_complex(x) else x * x


def _vector_norm(x, ord, axes, keepdims):
    if ord is None or ord == 2:
        return root0(np.sum(_abs2(x), axis=axes, keepdims=keepdims))
    if isinstance(ord, str):
        raise ValueError(f"Invalid norm order '{ord}' for vectors")
    ax = np.abs(x)
    if ord == np.inf:          # NumPy: 0 for an empty vector (a max with initial 0)
        empty = np.size(meta(x)) == 0
        return np.max(ax, axis=axes, keepdims=keepdims, **({"initial": 0.0} if empty else {}))
    if ord == -np.inf:
        return np.min(ax, axis=axes, keepdims=keepdims)
    if ord == 1:
        return np.sum(ax, axis=axes, keepdims=keepdims)
    if ord == 0:                  # a count: no derivative; in x's real precision (NumPy's)
        return lift(lambda v: np.sum(np.asarray(v != 0, dtype=np.asarray(v).real.dtype),
                                     axis=axes, keepdims=keepdims), x)
    s = np.sum(ax ** ord, axis=axes, keepdims=keepdims)
    return root0(s, ord) if ord > 1 else s ** (1.0 / ord)


def _drop(x, axes):
    """Remove the size-1 ``axes`` (negative) of ``x``."""
    s = shape_of(x)
    nd = len(s)
    return np.reshape(x, tuple(d for i, d in enumerate(s) if i - nd not in axes))


def _matrix_norm(x, ord, axes, keepdims):
    r, c = axes
    if r == c:
        raise ValueError("Duplicate axes given.")
    if ord in (None, "fro"):
        return root0(np.sum(_abs2(x), axis=axes, keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        inner, outer = (r, c) if ord in (1, -1) else (c, r)
        s = np.sum(np.abs(x), axis=inner, keepdims=True)
        out = (np.max if ord in (1, np.inf) else np.min)(s, axis=outer, keepdims=True)
    elif ord in ("nuc", 2, -2):
        nd = ndim_of(x)
        rest = [i for i in range(nd) if i - nd not in (r, c)]
        sv = _svdvals(np.transpose(x, rest + [r + nd, c + nd]))
        out = {"nuc": np.sum, 2: np.max, -2: np.min}[ord](sv, axis=-1)
        out = np.reshape(out, shape_of(out) + (1, 1))
        order = rest + [r + nd, c + nd]        # put the two unit axes back where r, c were
        out = np.transpose(out, list(np.argsort(order)))
    else:
        raise ValueError("Invalid norm order for matrices.")
    return out if keepdims else _drop(out, (min(r, c), max(r, c)))


@handles(np.linalg.norm)
def _norm(x, ord=None, axis=None, keepdims=False):
    nd = ndim_of(x)
    if axis is None:
        if ord is not None and nd == 2:
            return _matrix_norm(x, ord, (-2, -1), keepdims)
        if ord is not None and nd != 1:
            raise ValueError("Improper number of dimensions to norm.")
        if ord is None:
            return root0(np.sum(_abs2(x), axis=norm_axes(None, nd), keepdims=keepdims))
        return _vector_norm(x, ord, (-1,), keepdims)
    axis = axis if isinstance(axis, tuple) else (axis,)
    if len(axis) == 2:
        return _matrix_norm(x, ord, tuple(a % nd - nd for a in axis), keepdims)
    if len(axis) != 1:
        raise ValueError("Improper number of dimensions to norm.")
    return _vector_norm(x, ord, norm_axes(axis, nd), keepdims)


@handles(np.linalg.vector_norm)
def _np_vector_norm(x, /, *, axis=None, keepdims=False, ord=2):
    return _vector_norm(x, ord, norm_axes(axis, ndim_of(x)), keepdims)


@handles(np.linalg.matrix_norm)
def _np_matrix_norm(x, /, *, keepdims=False, ord="fro"):
    return _matrix_norm(x, ord, (-2, -1), keepdims)


@handles(np.linalg.cond)
def _cond(x, p=None):
    if p in (None, 2, -2):
        s = _svdvals(x)
        return s[..., 0] / s[..., -1] if p != -2 else s[..., -1] / s[..., 0]
    _square(x, "cond")
    return _matrix_norm(x, p, (-2, -1), False) * _matrix_norm(inv_p(x), p, (-2, -1), False)


# Dependency structure (the sparsity mode): dense within each matrix of a stack.
for _p in (cholesky_p, eigh_p, eigvalsh_p, eig_p, svd_p, svdvals_p, qr_p, pinv_p):
    _p.sparsity = dependency.stacked(2)
