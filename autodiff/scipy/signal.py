"""``scipy.signal`` convolutions with derivatives: one bilinear primitive, the N-D full
convolution ``y_n = Σ_i x_i k_{n-i}``; every mode and ``correlate`` slice or flip it.

Bilinear, so the JVP convolves each tangent with the other argument. The transposes are
correlations: ``x̄_i = Σ_j g_{i+j} k_j``, which is the full convolution of ``g`` with the
reversed ``k`` read from position ``K-1`` on (and likewise ``k̄`` with ``x``). No
conjugation (JAX's convention), so the same rules hold for complex inputs. SciPy's
``method`` changes how the primal is computed, not its value, and is ignored.
"""
import numpy as np
import scipy.signal

from ..core import box_types, is_complex, ndim_of, shape_of
from ..ops import dependency
from ..ops.define import defprim

__all__ = ["convolve", "correlate", "fftconvolve"]


def _lift(k, t, x):
    """``k`` with size-1 axes in front for the batch axes ``t`` carries over ``x``."""
    nb = ndim_of(t) - ndim_of(x)
    return np.reshape(k, (1,) * nb + shape_of(k)) if nb else k


def _flip(x):
    return x[(slice(None, None, -1),) * ndim_of(x)]


def _window(y, starts, sizes):
    """``y[..., s0:s0+n0, s1:s1+n1, …]`` over the trailing axes."""
    idx = tuple(slice(s, s + n) for s, n in zip(starts, sizes))
    return y[(Ellipsis,) + idx]


def _transpose_rule(g, ans, x, k):
    """The cotangent of ``x`` in ``y = x * k`` (full): a correlation of ``g`` with ``k``."""
    c = convolve_nd_p(g, _lift(_flip(k), g, ans))
    return _window(c, [n - 1 for n in shape_of(k)], shape_of(x))


convolve_nd_p = defprim(
    "convolve_nd", lambda x, k: scipy.signal.convolve(x, k, mode="full"),
    jvp=(lambda t, ans, x, k: convolve_nd_p(t, _lift(k, t, x)),
         lambda t, ans, x, k: convolve_nd_p(_lift(x, t, k), t)),
    vjp=(lambda g, ans, x, k: _transpose_rule(g, ans, x, k),
         lambda g, ans, x, k: _transpose_rule(g, ans, k, x)),
    flops=lambda ans, x, k: 2 * np.size(x) * np.size(k))


def _tracked(*xs):
    return any(type(x) in box_types for x in xs)


def _mode(y, s1, s2, mode):
    """Cut the full convolution ``y`` of arrays shaped ``s1``, ``s2`` down to ``mode``."""
    if mode == "full":
        return y
    if mode == "same":          # centred, the size of in1
        return _window(y, [(b - 1) // 2 for b in s2], s1)
    if mode == "valid":
        if not (all(a >= b for a, b in zip(s1, s2)) or all(a <= b for a, b in zip(s1, s2))):
            raise ValueError("For 'valid' mode, one must be at least as large as the other "
                             "in every dimension")
        return _window(y, [min(a, b) - 1 for a, b in zip(s1, s2)],
                       [abs(a - b) + 1 for a, b in zip(s1, s2)])
    raise ValueError("Acceptable mode flags are 'valid', 'same', or 'full'.")


def _check(in1, in2):
    if ndim_of(in1) != ndim_of(in2):
        raise ValueError("in1 and in2 should have the same dimensionality")


def convolve(in1, in2, mode="full", method="auto"):
    """N-dimensional convolution, differentiable in both inputs.

    >>> ad.grad(lambda x: np.sum(convolve(x, np.array([1.0, -1.0])) ** 2))(
    ...     np.array([1.0, 2.0, 4.0]))
    array([ 0., -2., 12.])
    """
    if not _tracked(in1, in2):
        return scipy.signal.convolve(in1, in2, mode, method)
    _check(in1, in2)
    return _mode(convolve_nd_p(in1, in2), shape_of(in1), shape_of(in2), mode)


def correlate(in1, in2, mode="full", method="auto"):
    """N-dimensional cross-correlation ``Σ_n in1[n + k] conj(in2[n])``: the convolution
    with ``in2`` reversed (and conjugated)."""
    if not _tracked(in1, in2):
        return scipy.signal.correlate(in1, in2, mode, method)
    _check(in1, in2)
    k = _flip(np.conj(in2) if is_complex(in2) else in2)
    return _mode(convolve_nd_p(in1, k), shape_of(in1), shape_of(in2), mode)


def fftconvolve(in1, in2, mode="full", axes=None):
    """``convolve`` (the FFT is SciPy's way to compute the same values)."""
    if not _tracked(in1, in2):
        return scipy.signal.fftconvolve(in1, in2, mode, axes)
    if axes is not None and sorted(int(a) % ndim_of(in1) for a in np.atleast_1d(axes)) \
            != list(range(ndim_of(in1))):
        raise NotImplementedError("fftconvolve(..., axes=) over some axes only, of a tracked "
                                  "value")
    return convolve(in1, in2, mode)


# Dependency structure (the sparsity mode): declared dense (every output element of a full
# N-d convolution may depend on every element of both operands: conservative).
convolve_nd_p.sparsity = dependency.dense
