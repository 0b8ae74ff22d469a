"""The rest of NumPy's differentiable ufuncs, and a few elementwise NumPy functions.

Each is elementwise, so its partials ``∂ans/∂xᵢ`` say everything: ``exp2' = 2ˣ ln 2``,
``log2' = 1/(x ln 2)``, ``logaddexp' = (eˣ⁻ᵃⁿˢ, eʸ⁻ᵃⁿˢ)``, ``fmod(x, y) = x − q·y`` with the
integer ``q`` locally constant, so ``(1, −q)``. Holomorphic ones keep their partials
holomorphic, so the same formulas serve complex inputs. What is a scaling of an existing
primitive (``deg2rad``) is a composition; the ufuncs with two outputs (``frexp``, ``modf``,
``divmod``) are handlers that return one differentiable part and one plain part.
"""
import math

import numpy as np
import scipy.special as sp

from ..boxes import unbox
from .define import elementwise, handles, scalar_fast
from .elementwise import where_p

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
# ``np.where(x == 0, _ONE64, x)`` is float64 (complex128) even for float32 ``x`` (NEP 50):
# float_power's partials are then computed in float64, as float_power itself is.
_ONE64 = np.float64(1.0)


def _no_kw(kw, name):
    """Ufunc keywords a tracked call cannot honour (``out=`` is refused before this)."""
    kw.pop("out", None)
    kw.pop("casting", None)
    if kw.pop("where", True) is not True or kw:
        raise TypeError(f"numpy.{name}: keyword arguments {sorted(kw)} are not supported on "
                        "tracked values.")


# ----- Exponentials and logarithms -----
exp2_p = elementwise("exp2", scalar_fast(np.exp2, math.exp2), lambda ans, x: ans * _LN2,
                     ufuncs=(np.exp2,), flops=10)
log2_p = elementwise("log2", scalar_fast(np.log2, math.log2),
                     lambda ans, x: 1.0 / (_LN2 * x), ufuncs=(np.log2,), flops=10)
log10_p = elementwise("log10", scalar_fast(np.log10, math.log10),
                      lambda ans, x: 1.0 / (_LN10 * x), ufuncs=(np.log10,), flops=10)
# Primitives for stability: log(eˣ + eʸ) overflows where logaddexp does not. Their partials
# are softmax weights, computed from ``ans`` so they never overflow either.
logaddexp_p = elementwise("logaddexp", np.logaddexp,
                          lambda ans, x, y: np.exp(x - ans), lambda ans, x, y: np.exp(y - ans),
                          ufuncs=(np.logaddexp,), flops=20)
logaddexp2_p = elementwise("logaddexp2", np.logaddexp2,
                           lambda ans, x, y: np.exp2(x - ans), lambda ans, x, y: np.exp2(y - ans),
                           ufuncs=(np.logaddexp2,), flops=20)
cbrt_p = elementwise("cbrt", scalar_fast(np.cbrt, math.cbrt),
                     lambda ans, x: 1.0 / (3.0 * (ans * ans)), ufuncs=(np.cbrt,), flops=10)


# ----- float_power: power computed in float64 -----
def _dfloat_power_x(ans, x, y):
    # As power: JAX's choice d/dx x**0 = 0 (also at x = 0, where y·x**(y-1) is 0·inf).
    if type(y) in (int, float):
        return y * np.float_power(x, y - 1) if y != 0 else 0.0 * np.float_power(x, 1)
    # Only the base is made safe where x = y = 0, so the exponent keeps its derivative.
    bad = (x == 0) & (y == 0)
    return y * np.float_power(np.where(bad, _ONE64, x) if np.any(bad) else x, y - 1)


def _dfloat_power_y(ans, x, y):
    # x**y log x, taken as 0 at x = 0 (its limit for y > 0).
    return ans * np.log(np.where(x == 0, _ONE64, x))


float_power_p = elementwise("float_power", np.float_power, _dfloat_power_x, _dfloat_power_y,
                            ufuncs=(np.float_power,), flops=10)

# ----- Inverse hyperbolic functions -----
# arccosh' = 1/(√(x−1)·√(x+1)), not 1/√(x²−1): the product is the principal branch's
# derivative for complex x as well (the two differ left of the cut, Re x < 0).
arcsinh_p = elementwise("arcsinh", scalar_fast(np.arcsinh, math.asinh),
                        lambda ans, x: 1.0 / np.sqrt(1.0 + x * x), ufuncs=(np.arcsinh,), flops=20)
arccosh_p = elementwise("arccosh", scalar_fast(np.arccosh, math.acosh),
                        lambda ans, x: 1.0 / (np.sqrt(x - 1.0) * np.sqrt(x + 1.0)),
                        ufuncs=(np.arccosh,), flops=20)
arctanh_p = elementwise("arctanh", scalar_fast(np.arctanh, math.atanh),
                        lambda ans, x: 1.0 / (1.0 - x * x), ufuncs=(np.arctanh,), flops=20)


# ----- Remainders and signs -----
def _quotient(ans, x, y):
    # The integer q in ans = x − q·y, locally constant. JAX takes trunc(x/y) (fmod) or
    # floor(x/y) (remainder); x/y can round onto the next integer where ans is near y, which
    # rint((x − ans)/y) cannot, and it serves both ufuncs. A plain value: rint has no rule.
    return np.rint((x - ans) / y)


fmod_p = elementwise("fmod", np.fmod, 1.0, lambda ans, x, y: -_quotient(ans, x, y),
                     ufuncs=(np.fmod,), flops=10)
remainder_p = elementwise("remainder", np.remainder, 1.0,
                          lambda ans, x, y: -_quotient(ans, x, y),
                          ufuncs=(np.remainder,), flops=10)     # np.mod is np.remainder
# copysign(x, y) = |x|·sgn y: x's partial is the sign agreement (±1, plain), y's is zero.
copysign_p = elementwise("copysign", np.copysign,
                         lambda ans, x, y: np.where(np.signbit(x) == np.signbit(y),
                                                    *np.array([1.0, -1.0], dtype=ans.dtype)),
                         None, ufuncs=(np.copysign,))
# ldexp(x, i) = x·2**i; the integer exponent has no derivative. The partial 2**i is made in
# the output's precision (np.ldexp(1.0, i) would be float64 for a float32 x).
ldexp_p = elementwise("ldexp", np.ldexp,
                      lambda ans, x, i: np.ldexp(np.ones((), dtype=ans.dtype), i), None,
                      ufuncs=(np.ldexp,))


# ----- Ufuncs with two outputs: one differentiable part, one plain -----
@handles(np.frexp)
def _frexp(x, **kw):
    """``x = m·2**e``: ``m = ldexp(x, −e)`` exactly, ``dm/dx = 2**−e``; ``e`` is an int."""
    _no_kw(kw, "frexp")
    e = np.frexp(unbox(x))[1]
    return ldexp_p(x, -e), e


@handles(np.modf)
def _modf(x, **kw):
    """``x = f + i``: ``f = fmod(x, 1)`` (bit for bit, signed zeros included), ``df/dx = 1``;
    ``i = trunc(x)`` is plain."""
    _no_kw(kw, "modf")
    v = unbox(x)
    inf = np.isinf(v)
    with np.errstate(invalid="ignore"):   # fmod(±inf, 1) is nan; modf's (±0, ±inf) below
        f = fmod_p(x, 1.0)
    if np.any(inf):
        f = where_p(inf, np.copysign(0.0, v), f)
    return f, np.trunc(v)


@handles(np.divmod)
def _divmod(x, y, **kw):
    """``(floor_divide(x, y), remainder(x, y))``: the quotient is plain, as floor_divide's."""
    _no_kw(kw, "divmod")
    return np.floor_divide(unbox(x), unbox(y)), remainder_p(x, y)


# ----- Angle units: scalings, so compositions (NumPy multiplies by the same constants) -----
_DEG2RAD = math.pi / 180.0
_RAD2DEG = 180.0 / math.pi


def _to_radians(x, **kw):
    _no_kw(kw, "deg2rad")
    return x * _DEG2RAD


def _to_degrees(x, **kw):
    _no_kw(kw, "rad2deg")
    return x * _RAD2DEG


handles(np.deg2rad, np.radians)(_to_radians)
handles(np.rad2deg, np.degrees)(_to_degrees)

# ----- sinc -----
# A primitive for stability: (sin πx)/(πx) differentiated by the engine cancels near 0
# (its second derivative by ~ε/x³). Values are np.sinc's own; the partial
#   d/dx sinc x = (cos πx − sinc x)/x
# switches to its Taylor series π(−y/3 + y³/30 − y⁵/840), y = πx, below |y| = 1e-2
# (truncation error < y⁷/45360 ≈ 2e-19 there). Both branches are holomorphic, and
# differentiating the series gives the second derivative −π²/3 at 0.
_SINC_SMALL = 1e-2 / math.pi


def _dsinc(ans, x):
    small = np.abs(x) < _SINC_SMALL             # plain: comparisons carry no derivative
    safe = np.where(small, 1.0, x)              # the quotient branch never divides by ~0
    y = math.pi * x
    y2 = y * y
    series = math.pi * y * (-1.0 / 3.0 + y2 * (1.0 / 30.0 - y2 / 840.0))
    return np.where(small, series, (np.cos(math.pi * safe) - ans) / safe)


sinc_p = elementwise("sinc", np.sinc, _dsinc, flops=20)


@handles(np.sinc)
def _sinc(x):
    return sinc_p(x)


# ----- Other elementwise functions (compositions) -----
@handles(np.nan_to_num)
def _nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """Derivative 1 where the value is kept, 0 where it is replaced (a constant)."""
    v = unbox(x)
    if np.iscomplexobj(v):                # NumPy replaces in each part on its own
        return (_nan_to_num(np.real(x), copy, nan, posinf, neginf)
                + 1j * _nan_to_num(np.imag(x), copy, nan, posinf, neginf))
    return where_p(np.isfinite(v), x, np.nan_to_num(v, nan=nan, posinf=posinf, neginf=neginf))


@handles(np.i0)
def _i0(x):
    # scipy.special.i0 is the primitive (i0' = i1); NumPy's i0 has no complex loop either.
    return sp.i0(x)
