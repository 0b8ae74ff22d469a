"""NumPy's polynomial functions (``np.poly*``, ``roots``, ``vander``) as compositions.

Coefficients are highest power first, as in NumPy. Sums and products of polynomials are
sums and convolutions of coefficient arrays; derivatives and integrals scale them by powers;
``roots`` are the eigenvalues of the companion matrix and ``poly`` the product of the linear
factors; ``polyfit`` is the least-squares solve on the Vandermonde matrix. Every derivative
comes from the primitives these are built of.
"""
import numpy as np

from ..boxes import meta, unbox
from ..core import box_types, ndim_of, shape_of
from .assembly import _arr
from .define import handles


def _pad_front(p, n):
    return np.concatenate([np.zeros(n, dtype=np.result_type(meta(p))), p]) if n > 0 else p


@handles(np.polyadd)
def _polyadd(a1, a2):
    a1, a2 = _arr(a1), _arr(a2)
    n1, n2 = shape_of(a1)[0], shape_of(a2)[0]
    return _pad_front(a1, n2 - n1) + _pad_front(a2, n1 - n2)


@handles(np.polysub)
def _polysub(a1, a2):
    return _polyadd(a1, -_arr(a2))


def _poly1d(p):
    """The coefficients as ``np.poly1d`` keeps them: 1-D, leading zeros dropped (by value,
    as NumPy does), none left giving ``[0]``."""
    p = _arr(p)
    if ndim_of(p) == 0:
        p = np.reshape(p, (1,))
    if ndim_of(p) > 1:
        raise ValueError("Polynomial must be 1d only.")
    nz = np.flatnonzero(np.asarray(unbox(p)))
    if type(p) in box_types and shape_of(p) != (0,) and (nz.size == 0 or nz[0]):
        # Trimming by value makes the output's length jump at this point: the coefficients
        # dropped have no derivative to give, so refuse rather than silently drop it.
        raise NotImplementedError(
            "autodiff: np.polymul drops leading zero coefficients by value (NumPy's poly1d), "
            "so at a tracked polynomial whose leading coefficient is exactly 0 its output's "
            "length jumps and the derivative in that coefficient does not exist. Use "
            "np.convolve(a1, a2), which keeps every coefficient (as jax.numpy.polymul does "
            "by default).")
    if nz.size == 0:
        return np.zeros(1, dtype=np.result_type(meta(p)))
    return p[int(nz[0]):] if nz[0] else p


@handles(np.polymul)
def _polymul(a1, a2):
    """``convolve(a1, a2)`` of the inputs read as ``np.poly1d`` reads them (so an empty one
    is the zero polynomial, as in NumPy)."""
    return np.convolve(_poly1d(a1), _poly1d(a2))


@handles(np.polyder)
def _polyder(p, m=1):
    p = _arr(p)
    for _ in range(m):
        n = shape_of(p)[0] - 1
        p = p[:-1] * np.arange(n, 0, -1.0) if n > 0 else p[:0] * 0.0
    return p


@handles(np.polyint)
def _polyint(p, m=1, k=None):
    p, k = _arr(p), (None if k is None else _arr(k))
    ks = np.zeros(m) if k is None else (k if ndim_of(k) else np.full(m, k))
    for i in range(m):
        n = shape_of(p)[0]
        p = np.concatenate([p / np.arange(n, 0, -1.0), np.reshape(ks[i], (1,)) * 1.0])
    return p


@handles(np.polydiv)
def _polydiv(u, v):
    """Long division: ``u = q·v + r``; each step is differentiable arithmetic."""
    u, v = _arr(u), _arr(v)
    n, m = shape_of(u)[0], shape_of(v)[0]
    if n < m:
        return np.zeros(1, dtype=np.result_type(meta(u))), u
    r = u * 1.0
    q = []
    for k in range(n - m + 1):
        c = r[k] / v[0]
        q.append(c)
        z = np.zeros(n - m + 1, dtype=np.result_type(meta(r)))     # float32 stays float32
        r = r - np.concatenate([z[:k], c * v, z[:n - m - k]])
    q = np.stack(q)
    rem = r[n - m + 1:] if m > 1 else r[-1:] * 0.0    # a constant divisor: NumPy's r = [0.]
    # NumPy trims leading (near-)zeros of the remainder; keep its length rule
    keep = np.flatnonzero(np.abs(unbox(rem)) > 1e-14 * max(1.0, float(np.max(np.abs(unbox(u))))))
    rem = rem[keep[0]:] if keep.size else rem[-1:] * 0.0
    return q, rem


@handles(np.vander)
def _vander(x, N=None, increasing=False):
    x = _arr(x)
    n = shape_of(x)[0] if N is None else N
    powers = np.arange(n, dtype=float) if increasing else np.arange(n - 1, -1, -1, dtype=float)
    return np.reshape(x, (-1, 1)) ** powers


@handles(np.roots)
def _roots(p):
    pv = np.asarray(unbox(p))
    nz = np.flatnonzero(pv)
    if nz.size == 0:
        return np.zeros(0)
    p = p[nz[0]:nz[-1] + 1]
    trailing = shape_of(pv)[0] - 1 - nz[-1]
    n = shape_of(p)[0] - 1
    if n < 1:
        return np.zeros(trailing)
    companion = np.zeros((n, n), like=p, dtype=np.result_type(meta(p)))
    companion[0, :] = -p[1:] / p[0]
    if n > 1:
        companion[np.arange(1, n), np.arange(n - 1)] = 1.0
    r = np.linalg.eigvals(companion)
    return np.concatenate([r, np.zeros(trailing, dtype=np.result_type(meta(r)))])


@handles(np.poly)
def _poly(seq_of_zeros):
    z = seq_of_zeros
    if ndim_of(z) == 2 and shape_of(z)[0] == shape_of(z)[1] and shape_of(z)[0] > 0:
        z = np.linalg.eigvals(z)
    out = np.ones(1, like=z, dtype=np.result_type(meta(z)))
    for k in range(shape_of(z)[0]):
        out = np.convolve(out, np.stack([np.ones((), dtype=np.result_type(meta(z))), -z[k]]))
    vals = unbox(z)
    if np.iscomplexobj(vals) and np.allclose(np.sort_complex(vals),
                                             np.sort_complex(np.conj(vals))):
        out = np.real(out)          # conjugate pairs: real coefficients, as NumPy gives
    return out


@handles(np.polyfit)
def _polyfit(x, y, deg, rcond=None, full=False, w=None, cov=False):
    if full or cov:
        raise NotImplementedError("np.polyfit(full=True / cov=True) on tracked values; "
                                  "the coefficients alone are differentiable")
    a = _vander(x, deg + 1)
    if w is not None:
        a = a * np.reshape(w, (-1, 1))
        y = y * (w if ndim_of(y) == 1 else np.reshape(w, (-1, 1)))
    scale = np.sqrt(np.sum(a * a, axis=0))       # NumPy's column scaling, for conditioning
    c = np.linalg.lstsq(a / scale, y, rcond=rcond)[0]
    return (c.T / scale).T
