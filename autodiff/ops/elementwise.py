"""Elementwise primitives: each one's implementation and partial derivatives side by side.

Partials are written with NumPy calls on whatever they receive (plain or tracked values),
so every rule is itself differentiable. Non-differentiable points follow JAX:
``abs'(0) = 0``, ``d/dx x**0 = 0``, ties in ``maximum``/``minimum`` split the derivative.
"""
import math
import operator

import numpy as np

from ..arrays import asarray
from ..boxes import data, meta, opaque_types, unbox
from ..core import box_types, is_complex
from . import dependency
from .define import defprim, elementwise, handles, scalar_fast

# ----- Fast implementations (math on Python floats, NumPy otherwise) -----
sin = scalar_fast(np.sin, math.sin)
cos = scalar_fast(np.cos, math.cos)
tan = scalar_fast(np.tan, math.tan)
exp = scalar_fast(np.exp, math.exp)
log = scalar_fast(np.log, math.log)
log1p = scalar_fast(np.log1p, math.log1p)
expm1 = scalar_fast(np.expm1, math.expm1)
sqrt = scalar_fast(np.sqrt, math.sqrt)
arcsin = scalar_fast(np.arcsin, math.asin)
arccos = scalar_fast(np.arccos, math.acos)
arctan = scalar_fast(np.arctan, math.atan)
sinh = scalar_fast(np.sinh, math.sinh)
cosh = scalar_fast(np.cosh, math.cosh)
tanh = scalar_fast(np.tanh, math.tanh)
absolute = scalar_fast(np.absolute, abs)


def _floats(x, y):
    return type(x) is float and type(y) in (float, int) or type(x) is int and type(y) is float


def divide(x, y):
    if _floats(x, y) and y != 0:
        return x / y
    return np.divide(x, y)


def power(x, y):
    if _floats(x, y):
        try:
            return math.pow(x, y)
        except (ValueError, OverflowError, ZeroDivisionError):
            pass
    elif type(y) is int and y == 2 and type(x) is np.ndarray:
        return np.square(x)          # what NumPy computes for x**2, without np.power's setup
    return np.power(x, y)


def square(x):
    return x * x if type(x) is float else np.square(x)


def reciprocal(x):
    return 1.0 / x if type(x) is float and x != 0 else np.reciprocal(x)


def _dpow_x(ans, x, y):
    # y·x**(y-1), with JAX's choice d/dx x**0 = 0 also at x = 0 (where it is 0·inf).
    if type(y) in (int, float):
        if y == 2:
            return 2.0 * x
        return y * x ** (y - 1) if y != 0 else 0.0 * x
    # Only the base is made safe, at the points x = y = 0: the exponent stays y - 1, so the
    # partial's own y-derivative x**(y-1)·(1 + y log x) is right at y = 0 (1/x, not x).
    bad = (x == 0) & (y == 0)
    return y * (np.where(bad, 1.0, x) if np.any(bad) else x) ** (y - 1)


def _dpow_y(ans, x, y):
    # d/dy x**y = x**y log x, taken as 0 at x = 0 (its limit for y > 0).
    if type(x) in (int, float):
        return ans * (math.log(x) if x > 0 else (0.0 if x == 0 else math.nan))
    return ans * np.log(np.where(x == 0, 1.0, x))


def _arr(x):
    """A list or tuple of constants as an array; anything else as it is."""
    return np.asarray(x) if isinstance(x, (list, tuple)) else x


def _ties(x, y, ans):
    """1 where x wins, 1/2 where tied, 0 where y wins (as x's share of the derivative), in
    the output's float dtype: a float64 mask would turn float32 derivatives into float64."""
    s = (x > y) * 1.0 + (x == y) * 0.5
    if type(s) is float:
        return s
    dt = getattr(meta(ans), "dtype", None)
    if dt is not None and dt.kind == "f" and dt != s.dtype:
        return s.astype(dt)
    return s


def _dheaviside_h(ans, x, h):
    # heaviside(x, h) is h exactly where x == 0 (and a constant 0 or 1 elsewhere).
    hit = data(x) == 0
    dt = np.result_type(meta(h), np.float16)
    return hit.astype(dt) if type(hit) in box_types else asarray(hit, dtype=dt)


# ----- Linear -----
add_p = elementwise("add", operator.add, 1.0, 1.0, ufuncs=(np.add,))
subtract_p = elementwise("subtract", operator.sub, 1.0, -1.0, ufuncs=(np.subtract,))
negative_p = elementwise("negative", operator.neg, -1.0, ufuncs=(np.negative,))
positive_p = elementwise("positive", operator.pos, 1.0, ufuncs=(np.positive,), flops=0)

# ----- Binary -----
multiply_p = elementwise("multiply", operator.mul,
                         lambda ans, x, y: y, lambda ans, x, y: x, ufuncs=(np.multiply,))
divide_p = elementwise("divide", divide,
                       lambda ans, x, y: 1.0 / y, lambda ans, x, y: -ans / y,
                       ufuncs=(np.divide, np.true_divide))
power_p = elementwise("power", power, _dpow_x, _dpow_y, ufuncs=(np.power,), flops=10)
arctan2_p = elementwise("arctan2", np.arctan2,
                        lambda ans, y, x: x / (x * x + y * y),
                        lambda ans, y, x: -y / (x * x + y * y), ufuncs=(np.arctan2,), flops=20)
hypot_p = elementwise("hypot", np.hypot,
                      lambda ans, x, y: x / ans, lambda ans, x, y: y / ans,
                      ufuncs=(np.hypot,), flops=10)
maximum_p = elementwise("maximum", np.maximum,
                        lambda ans, x, y: _ties(x, y, ans), lambda ans, x, y: _ties(y, x, ans),
                        ufuncs=(np.maximum,))
minimum_p = elementwise("minimum", np.minimum,
                        lambda ans, x, y: _ties(y, x, ans), lambda ans, x, y: _ties(x, y, ans),
                        ufuncs=(np.minimum,))


def _nan_ties(share, x, y, ans):
    """fmax's (fmin's) share for x: maximum's ``share``, and all of it where y alone is
    NaN (the result is x there)."""
    return share + (np.isnan(y) & ~np.isnan(x))


# fmax/fmin ignore a NaN: the result, and the derivative, are the other operand's.
fmax_p = elementwise("fmax", np.fmax,
                     lambda ans, x, y: _nan_ties(_ties(x, y, ans), x, y, ans),
                     lambda ans, x, y: _nan_ties(_ties(y, x, ans), y, x, ans),
                     ufuncs=(np.fmax,))
fmin_p = elementwise("fmin", np.fmin,
                     lambda ans, x, y: _nan_ties(_ties(y, x, ans), x, y, ans),
                     lambda ans, x, y: _nan_ties(_ties(x, y, ans), y, x, ans),
                     ufuncs=(np.fmin,))

# nextafter(x, y) moves x by one ulp towards y: locally x plus a constant step.
nextafter_p = elementwise("nextafter", np.nextafter, 1.0, None, ufuncs=(np.nextafter,), flops=1)
heaviside_p = elementwise("heaviside", np.heaviside, None, _dheaviside_h, ufuncs=(np.heaviside,),
                          flops=1)

# ----- Complex parts -----
# Real-valued functions of a complex z: their pushforward is R-linear, Re(d·t), with the
# partial d below; the reverse rule g·d is its transpose under Re(Σ a·b) (JAX's pairing).
# For a real input each partial is real, so no complex number leaks into a real program.
def _dabs(ans, x):
    # d|z| = Re(conj(z)/|z| · dz); abs'(0) = 0 as in JAX, also for complex zero.
    if is_complex(x):
        return np.conj(x) / np.where(ans == 0, 1.0, ans)
    return np.sign(x)


def _dangle(ans, x):
    # d arg z = Im(dz / z) = Re(-i/z · dz); constant (0 or π) on the real line.
    if is_complex(x):
        return -1j / np.where(x == 0, 1.0, x)
    return 0.0 * x


absolute_p = elementwise("absolute", absolute, _dabs, ufuncs=(np.absolute, np.fabs))
real_p = elementwise("real", np.real, lambda ans, x: 1.0, flops=0)
imag_p = elementwise("imag", np.imag, lambda ans, x: -1j if is_complex(x) else 0.0 * x, flops=0)
angle_p = elementwise("angle", np.angle, _dangle, flops=20)
for _p in (absolute_p, real_p, imag_p, angle_p):
    _p.real_out = True
# conj is R-linear but not of the form Re(d·t): its own transpose (conj g).
conj_p = defprim("conj", np.conj, vjp=(lambda g, ans, x: np.conj(g),), linear=True,
                 ufuncs=(np.conj, np.conjugate), flops=0)


@handles(np.real)
def _real(val):
    return real_p(val) if is_complex(val) else val


@handles(np.imag)
def _imag(val):
    return imag_p(val)


@handles(np.angle)
def _angle(z, deg=False):
    a = angle_p(z)
    return a * (180.0 / np.pi) if deg else a


@handles(np.real_if_close)
def _real_if_close(a, tol=100):
    v = unbox(a)
    if is_complex(v) and np.all(np.abs(v.imag) < tol * np.finfo(v.dtype).eps):
        return real_p(a)
    return a


# ----- Unary -----
exp_p = elementwise("exp", exp, lambda ans, x: ans, ufuncs=(np.exp,), flops=10)
log_p = elementwise("log", log, lambda ans, x: 1.0 / x, ufuncs=(np.log,), flops=10)
log1p_p = elementwise("log1p", log1p, lambda ans, x: 1.0 / (1.0 + x), ufuncs=(np.log1p,), flops=10)
expm1_p = elementwise("expm1", expm1, lambda ans, x: ans + 1.0, ufuncs=(np.expm1,), flops=10)
sqrt_p = elementwise("sqrt", sqrt, lambda ans, x: 0.5 / ans, ufuncs=(np.sqrt,), flops=5)
square_p = elementwise("square", square, lambda ans, x: 2.0 * x, ufuncs=(np.square,))
reciprocal_p = elementwise("reciprocal", reciprocal, lambda ans, x: -(ans * ans),
                           ufuncs=(np.reciprocal,))
sin_p = elementwise("sin", sin, lambda ans, x: cos(x), ufuncs=(np.sin,), flops=10)
cos_p = elementwise("cos", cos, lambda ans, x: -sin(x), ufuncs=(np.cos,), flops=10)
tan_p = elementwise("tan", tan, lambda ans, x: 1.0 + ans * ans, ufuncs=(np.tan,), flops=10)
arcsin_p = elementwise("arcsin", arcsin, lambda ans, x: 1.0 / sqrt(1.0 - x * x),
                       ufuncs=(np.arcsin,), flops=20)
arccos_p = elementwise("arccos", arccos, lambda ans, x: -1.0 / sqrt(1.0 - x * x),
                       ufuncs=(np.arccos,), flops=20)
arctan_p = elementwise("arctan", arctan, lambda ans, x: 1.0 / (1.0 + x * x),
                       ufuncs=(np.arctan,), flops=20)
sinh_p = elementwise("sinh", sinh, lambda ans, x: cosh(x), ufuncs=(np.sinh,), flops=10)
cosh_p = elementwise("cosh", cosh, lambda ans, x: sinh(x), ufuncs=(np.cosh,), flops=10)
tanh_p = elementwise("tanh", tanh, lambda ans, x: 1.0 - ans * ans, ufuncs=(np.tanh,), flops=10)

# ----- Rectifier -----
# One primitive for max(x, 0): as ``np.where(x > 0, x, 0)`` it is a select, ~10× slower than
# ``np.maximum`` on a mask without pattern (a conv net's activations), and its cotangent
# another select. relu'(0) = 0 (PyTorch's and JAX's choice, not maximum's tie share of ½);
# NaN propagates, as in PyTorch.
def relu(x):
    if type(x) is float:
        return x if x >= 0.0 or x != x else 0.0
    return np.maximum(x, 0)


def _drelu(ans, x):
    # the mask itself: a boolean multiplies a cotangent of any float dtype unpromoted
    return x > 0


relu_p = elementwise("relu", relu, _drelu)


# ----- Selection -----
# ``where(cond, x, y)``: the condition carries no derivative.
where_p = defprim("where", np.where,
                  jvp=(None, lambda t, ans, c, x, y: np.where(c, t, 0.0),
                       lambda t, ans, c, x, y: np.where(c, 0.0, t)),
                  vjp=(None, lambda g, ans, c, x, y: np.where(c, g, 0.0),
                       lambda g, ans, c, x, y: np.where(c, 0.0, g)),
                  broadcasts=True, flops=1)


@handles(np.where)
def _where(condition, x=None, y=None):
    if x is None and y is None:
        c = data(condition)
        if type(c) in opaque_types:         # computed from values (ad.jit, sparsity)
            return c.nondiff(np.where, (c,), {})
        return np.where(unbox(condition))
    c = data(condition)
    if type(c) in opaque_types:     # recorded by ad.jit, or marked by sparsity detection
        return where_p(c if meta(c).dtype == bool else c != 0, x, y)
    return where_p(asarray(unbox(condition), dtype=bool), x, y)


@handles(np.clip)
def _clip(a, a_min=None, a_max=None, out=None, **kw):
    # As jax.numpy.clip: minimum(maximum(x, lo), hi), so a tie at a bound splits the derivative.
    if out is not None:
        raise TypeError("np.clip(..., out=...) cannot write a tracked result; drop `out=`.")
    a_min = _arr(kw.pop("min", a_min))
    a_max = _arr(kw.pop("max", a_max))
    if a_min is not None:
        a = maximum_p(a, a_min)
    if a_max is not None:
        a = minimum_p(a, a_max)
    return a


# ----- Ufunc methods of the binary primitives -----
def _outer(prim):
    def outer(a, b, **kw):
        """``ufunc.outer(a, b)``: ``ufunc(a[..., None, …], b)``, one axis per axis of b."""
        if kw:
            raise TypeError(f"np.{prim.name}.outer: keyword arguments {sorted(kw)} are not "
                            "supported on tracked values.")
        a, b = _arr(a), _arr(b)
        return prim(np.reshape(a, np.shape(meta(a)) + (1,) * np.ndim(meta(b))), b)
    return outer


# ``ufunc.at(a, i, b)``: unbuffered, so repeated indices all apply, as ``a.at[i]``'s updates
_AT = {np.add: lambda u, b: u.add(b), np.subtract: lambda u, b: u.add(-b),
       np.multiply: lambda u, b: u.multiply(b), np.divide: lambda u, b: u.divide(b),
       np.maximum: lambda u, b: u.max(b), np.minimum: lambda u, b: u.min(b),
       np.power: lambda u, b: u.power(b)}


def _at(ufunc):
    def at(a, indices, b=None):
        if type(a) not in box_types:
            raise TypeError(f"np.{ufunc.__name__}.at(a, i, b) writes a tracked b into the plain "
                            "array a, which would drop its derivative; make a tracked array "
                            f"first (a = np.zeros_like(b, shape=...)) or use a.at[i] updates.")
        a[...] = _AT[ufunc](a.at[indices], b)
    return at


for _u, _p in ((np.add, add_p), (np.subtract, subtract_p), (np.multiply, multiply_p),
               (np.divide, divide_p), (np.power, power_p), (np.maximum, maximum_p),
               (np.minimum, minimum_p), (np.arctan2, arctan2_p), (np.hypot, hypot_p),
               (np.fmax, fmax_p), (np.fmin, fmin_p)):
    handles((_u, "outer"))(_outer(_p))
for _u in _AT:
    handles((_u, "at"))(_at(_u))


# Dependency structure (the sparsity mode): the primitives with ``partials`` are elementwise
# without saying so; conj is too, and where takes each branch where a constant condition
# picks it (both where the condition is computed from x).
conj_p.sparsity = dependency.elementwise
where_p.sparsity = dependency.select
