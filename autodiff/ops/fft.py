"""``numpy.fft``: four linear primitives along one axis; every other transform composes them.

Every transform is (R-)linear, so its JVP is the same transform of the tangent. The VJP is
the transpose under the pairing ``<a, b> = Re Σ a·b`` (no conjugation, JAX's convention):

- ``fft``: the DFT matrix ``F_jk = e^{-2πi jk/n}`` is symmetric, so ``fft``'s transpose is
  ``fft`` with the same norm (and ``ifft``'s is ``ifft``).
- ``rfft`` keeps bins ``k = 0..n//2`` of ``F x`` for real ``x``: its transpose is
  ``x̄_j = Re Σ_k g_k e^{-2πi jk/n} = hfft(g / w)``.
- ``hfft(c)_j = Re Σ_k w_k c_k e^{-2πi jk/n}`` (the Hermitian extension of ``c``): its
  transpose is ``c̄ = w · rfft(g)``.
- ``ihfft`` and ``irfft`` are the same pair with the sign ``+``.

``w_k`` is the weight of bin ``k`` in the Hermitian extension: 1 at ``k = 0`` and at the
Nyquist bin ``n/2`` (even ``n``), 2 elsewhere. Within a pair both members scale alike under
each ``norm`` (1, 1/√n or 1/n), so a transpose keeps the norm. ``n=``/``s=`` zero-pad or
truncate first (``fft_resize``, whose transpose is the opposite resize).

>>> ad.grad(lambda x: np.sum(np.abs(np.fft.fft(x)) ** 2))(np.array([1.0, 2.0, 3.0]))
array([ 6., 12., 18.])

(Parseval: ``Σ|fft(x)|² = n Σ x²``, whose gradient is ``2n x``.)
"""
import numpy as np

from ..core import ndim_of, shape_of
from . import dependency
from .define import check_no_out, defprim, handles, norm_axes

_NORMS = ("backward", "ortho", "forward")


# ----- Zero-padding and truncation (what n= and s= do) -----
def _resize_impl(x, n, axis):
    m = x.shape[axis]
    tail = (slice(None),) * (-axis - 1)
    if n <= m:
        return x[(Ellipsis, slice(0, n)) + tail]
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, n - m)
    return np.pad(x, widths)


fft_resize_p = defprim(
    "fft_resize", _resize_impl,
    vjp=(lambda g, ans, x, n, axis: fft_resize_p(g, n=shape_of(x)[axis], axis=axis),),
    linear=True, flops=0)


def _resize(x, n, axis):
    return x if shape_of(x)[axis] == n else fft_resize_p(x, n=n, axis=axis)


# ----- The four primitives -----
def _weights(n, axis, like):
    """``w_k`` over the ``n//2 + 1`` bins of a real signal of length ``n``, along ``axis``, in
    the real precision of the cotangent ``like`` (float64 weights would promote complex64)."""
    w = np.full(n // 2 + 1, 2.0, dtype=np.finfo(like.dtype).dtype)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w.reshape((-1,) + (1,) * (-axis - 1))


def _fft_impl(x, axis, norm, inverse):
    return (np.fft.ifft if inverse else np.fft.fft)(x, axis=axis, norm=norm)


def _rfft_impl(x, axis, norm, inverse):
    return (np.fft.ihfft if inverse else np.fft.rfft)(x, axis=axis, norm=norm)


def _irfft_impl(c, n, axis, norm, inverse):
    return (np.fft.irfft if inverse else np.fft.hfft)(c, n=n, axis=axis, norm=norm)


def _fft_flops(ans, *args):
    # 5 n log2 n per transformed line; the cost model passes no axis, so take the longest.
    return int(5 * np.size(ans) * np.log2(max(np.shape(ans) + (2,))))


# ``fft(x, axis, norm, inverse)``: np.fft.fft (inverse=False) or np.fft.ifft, full length.
fft_p = defprim(
    "fft", _fft_impl,
    vjp=(lambda g, ans, x, axis, norm, inverse:
         fft_p(g, axis=axis, norm=norm, inverse=inverse),),
    linear=True, flops=_fft_flops)

# ``rfft(x, axis, norm, inverse)``: np.fft.rfft (sign -) or np.fft.ihfft (sign +) of real x.
rfft_p = defprim(
    "rfft", _rfft_impl,
    vjp=(lambda g, ans, x, axis, norm, inverse:
         irfft_p(g / _weights(shape_of(x)[axis], axis, g), n=shape_of(x)[axis], axis=axis,
                 norm=norm, inverse=inverse),),
    linear=True, flops=_fft_flops)

# ``irfft(c, n, axis, norm, inverse)``: np.fft.hfft (sign -) or np.fft.irfft (sign +) of the
# n//2 + 1 bins c; the imaginary parts of bin 0 (and of the Nyquist bin) are ignored.
irfft_p = defprim(
    "irfft", _irfft_impl,
    vjp=(lambda g, ans, c, n, axis, norm, inverse:
         _weights(n, axis, g) * rfft_p(g, axis=axis, norm=norm, inverse=inverse),),
    linear=True, flops=_fft_flops)


# ----- One axis: numpy.fft's 1-D functions -----
def _norm(norm):
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise ValueError(f'Invalid norm value {norm}; should be "backward", "ortho" or '
                         '"forward".')
    return norm


def _axis(a, axis):
    return norm_axes(axis, ndim_of(a))[0]


def _points(n):
    if n < 1:
        raise ValueError(f"Invalid number of FFT data points ({n}) specified.")
    return int(n)


def _c2c(a, n, axis, norm, inverse):
    axis = _axis(a, axis)
    n = _points(shape_of(a)[axis] if n is None else n)
    return fft_p(_resize(a, n, axis), axis=axis, norm=_norm(norm), inverse=inverse)


def _r2c(a, n, axis, norm, inverse):
    axis = _axis(a, axis)
    n = _points(shape_of(a)[axis] if n is None else n)
    return rfft_p(_resize(a, n, axis), axis=axis, norm=_norm(norm), inverse=inverse)


def _c2r(a, n, axis, norm, inverse):
    axis = _axis(a, axis)
    n = _points(2 * (shape_of(a)[axis] - 1) if n is None else n)
    return irfft_p(_resize(a, n // 2 + 1, axis), n=n, axis=axis, norm=_norm(norm),
                   inverse=inverse)


@handles(np.fft.fft)
def _fft(a, n=None, axis=-1, norm=None, out=None):
    check_no_out(out, "fft.fft")
    return _c2c(a, n, axis, norm, False)


@handles(np.fft.ifft)
def _ifft(a, n=None, axis=-1, norm=None, out=None):
    check_no_out(out, "fft.ifft")
    return _c2c(a, n, axis, norm, True)


@handles(np.fft.rfft)
def _rfft(a, n=None, axis=-1, norm=None, out=None):
    check_no_out(out, "fft.rfft")
    return _r2c(a, n, axis, norm, False)


@handles(np.fft.ihfft)
def _ihfft(a, n=None, axis=-1, norm=None, out=None):
    check_no_out(out, "fft.ihfft")
    return _r2c(a, n, axis, norm, True)


@handles(np.fft.irfft)
def _irfft(a, n=None, axis=-1, norm=None, out=None):
    check_no_out(out, "fft.irfft")
    return _c2r(a, n, axis, norm, True)


@handles(np.fft.hfft)
def _hfft(a, n=None, axis=-1, norm=None, out=None):
    check_no_out(out, "fft.hfft")
    return _c2r(a, n, axis, norm, False)


# ----- Several axes: one axis at a time, in NumPy's order -----
def _cook(a, s, axes, invreal=False):
    """NumPy's ``_cook_nd_args``: the lengths and the axes of an n-D transform."""
    shape = shape_of(a)
    shapeless = s is None
    if axes is None:
        axes = list(range(-(len(shape) if shapeless else len(s)), 0))
    axes = [int(ax) for ax in axes]
    s = [shape[ax] for ax in axes] if shapeless else list(s)
    if len(s) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    if invreal and shapeless:
        s[-1] = (shape[axes[-1]] - 1) * 2
    return [shape[ax] if n == -1 else n for n, ax in zip(s, axes)], axes


def _c2c_nd(a, s, axes, norm, out, inverse, name):
    check_no_out(out, name)
    s, axes = _cook(a, s, axes)
    for n, ax in reversed(list(zip(s, axes))):
        a = _c2c(a, n, ax, norm, inverse)
    return a


def _rfftn(a, s=None, axes=None, norm=None, out=None):
    check_no_out(out, "fft.rfftn")
    s, axes = _cook(a, s, axes)
    a = _r2c(a, s[-1], axes[-1], norm, False)
    for n, ax in reversed(list(zip(s[:-1], axes[:-1]))):
        a = _c2c(a, n, ax, norm, False)
    return a


def _irfftn(a, s=None, axes=None, norm=None, out=None):
    check_no_out(out, "fft.irfftn")
    s, axes = _cook(a, s, axes, invreal=True)
    for n, ax in zip(s[:-1], axes[:-1]):
        a = _c2c(a, n, ax, norm, True)
    return _c2r(a, s[-1], axes[-1], norm, True)


handles(np.fft.fftn)(lambda a, s=None, axes=None, norm=None, out=None:
                     _c2c_nd(a, s, axes, norm, out, False, "fft.fftn"))
handles(np.fft.ifftn)(lambda a, s=None, axes=None, norm=None, out=None:
                      _c2c_nd(a, s, axes, norm, out, True, "fft.ifftn"))
handles(np.fft.fft2)(lambda a, s=None, axes=(-2, -1), norm=None, out=None:
                     _c2c_nd(a, s, axes, norm, out, False, "fft.fft2"))
handles(np.fft.ifft2)(lambda a, s=None, axes=(-2, -1), norm=None, out=None:
                      _c2c_nd(a, s, axes, norm, out, True, "fft.ifft2"))
handles(np.fft.rfftn)(_rfftn)
handles(np.fft.irfftn)(_irfftn)
handles(np.fft.rfft2)(lambda a, s=None, axes=(-2, -1), norm=None, out=None:
                      _rfftn(a, s, axes, norm, out))
handles(np.fft.irfft2)(lambda a, s=None, axes=(-2, -1), norm=None, out=None:
                       _irfftn(a, s, axes, norm, out))


# ----- Shifts: rolls by half the length, as two slices joined -----
def _roll(x, shift, axis):
    axis = _axis(x, axis)
    n = shape_of(x)[axis]
    k = shift % n if n else 0       # an empty axis: nothing moves
    if k == 0:
        return x
    tail = (slice(None),) * (-axis - 1)
    return np.concatenate([x[(Ellipsis, slice(-k, None)) + tail],
                           x[(Ellipsis, slice(0, -k)) + tail]], axis=axis)


def _shift(x, axes, inverse):
    if axes is None:
        axes = range(ndim_of(x))
    for ax in np.atleast_1d(axes):
        n = shape_of(x)[int(ax)]
        x = _roll(x, -(n // 2) if inverse else n // 2, int(ax))
    return x


handles(np.fft.fftshift)(lambda x, axes=None: _shift(x, axes, False))
handles(np.fft.ifftshift)(lambda x, axes=None: _shift(x, axes, True))


# Dependency structure (the sparsity mode): resizing moves data; a transform mixes a line.
fft_resize_p.sparsity = dependency.gather
for _p in (fft_p, rfft_p, irfft_p):
    _p.sparsity = dependency.slices
