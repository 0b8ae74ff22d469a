"""``scipy.special``: each special function with its derivative, written with special functions.

Every partial is itself a special function, so the rules differentiate again:
``erf' = 2/√π·e^{-x²}``, ``Γ' = Γ·ψ``, ``ψ⁽ⁿ⁾' = ψ⁽ⁿ⁺¹⁾``, ``Φ' = φ``, and the Bessel
recurrences ``J_v' = (J_{v-1} - J_{v+1})/2``, ``I_v' = (I_{v-1} + I_{v+1})/2``,
``K_v' = -(K_{v-1} + K_{v+1})/2``. The incomplete functions differentiate in ``x`` by their
integrand: ``∂P(a, x)/∂x = x^{a-1} e^{-x}/Γ(a)``, ``∂I_x(a, b)/∂x = x^{a-1}(1-x)^{b-1}/B(a, b)``.

Derivatives in an order or a shape parameter (``v`` of ``jv``, ``a`` of ``gammainc``, ``x`` of
``zeta``) exist but have no closed form SciPy evaluates: their rules raise
``NotImplementedError`` naming the function and the argument, because no rule (``None``)
would claim a zero derivative. Pass such arguments as plain numbers.

Rules hold for complex inputs where SciPy accepts them (holomorphic: ``g·f'(z)``).
SciPy's ``polygamma`` converts with ``np.asarray``, so ours is reached as
``autodiff.scipy.special.polygamma``.
"""
import math

import numpy as np
import scipy.special as sp

from ..boxes import data, unbox
from . import dependency
from .define import defprim
from .define import elementwise as _elementwise

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT_PI_OVER_TWO = math.sqrt(math.pi) / 2.0
_SQRT_2PI = math.sqrt(2.0 * math.pi)


_SINGLE = (np.dtype(np.float32), np.dtype(np.complex64))


def _single(r, ans):
    """The partial ``r`` in single precision when the output ``ans`` is float32/complex64:
    SciPy's ``polygamma`` and the ``np.float64`` scalars that special functions of Python-float
    parameters return (``gammaln(0.5·(df + 1))``) would promote a float32 tangent to float64
    (JAX's rule: float32 inputs keep float32 derivatives)."""
    dt = getattr(r, "dtype", None)
    if dt is None or getattr(ans, "dtype", None) not in _SINGLE \
            or dt.itemsize <= (8 if dt.kind == "c" else 4):
        return r
    return r.astype(np.complex64 if dt.kind == "c" else np.float32)


def elementwise(name, impl, *partials, **kw):
    """``define.elementwise`` with each partial kept in the output's precision (``_single``)."""
    def keep(d):
        return d if d is None or type(d) is float else (
            lambda ans, *xs: _single(d(ans, *xs), ans))
    return _elementwise(name, impl, *map(keep, partials), **kw)


def _unavailable(fname, arg):
    """A partial for an argument whose derivative SciPy cannot evaluate: it raises."""
    def d(ans, *xs):
        raise NotImplementedError(
            f"autodiff has no derivative of scipy.special.{fname} in its argument {arg!r}; "
            f"pass {arg!r} as a constant (a plain number or array), not a tracked value.")
    return d


def _safe_div(x, y):
    """``x/y``, taken as 0 where ``x == y == 0``: the ``0·log 0 = 0`` convention of ``xlogy``
    carried to its derivatives. (Only that point is guarded: at ``x = 0, y ≠ 0`` the plain
    quotient is 0 already and its own derivative in ``x``, ``1/y``, stays right.)"""
    return x / np.where((x == 0) & (y == 0), 1.0, y)


def polygamma(n, x):
    """ψ⁽ⁿ⁾(x) for an integer order ``n`` (no derivative in ``n``)."""
    return polygamma_p(n, x)


# ----- Gamma family -----
polygamma_p = elementwise("polygamma", lambda n, x: sp.polygamma(n, x),
                          None, lambda ans, n, x: polygamma_p(n + 1, x), flops=50)
digamma_p = elementwise("digamma", sp.digamma, lambda ans, x: polygamma_p(1, x),
                        ufuncs=(sp.digamma,), flops=50)
gammaln_p = elementwise("gammaln", sp.gammaln, lambda ans, x: digamma_p(x),
                        ufuncs=(sp.gammaln,), flops=50)
gamma_p = elementwise("gamma", sp.gamma, lambda ans, x: ans * digamma_p(x),
                      ufuncs=(sp.gamma,), flops=50)


def _drgamma(ans, x):
    """(1/Γ)' = -ψ/Γ, which is 0·inf at the poles of Γ (x = 0, -1, ...) where 1/Γ is
    smooth. There: the reflection 1/Γ(x) = sin(πx)Γ(1-x)/π differentiated,
    Γ(1-x)·(cos πx - sin πx·ψ(1-x)/π), finite and differentiable again."""
    v = data(x)
    pole = (v <= 0) & (v == np.round(v))
    if not np.any(pole):
        return -ans * digamma_p(x)
    r = np.where(pole, x, 0.0)
    at_pole = gamma_p(1.0 - r) * (np.cos(np.pi * r) - np.sin(np.pi * r) * digamma_p(1.0 - r)
                                  / np.pi)
    return np.where(pole, at_pole, -ans * digamma_p(np.where(pole, 1.0, x)))


rgamma_p = elementwise("rgamma", sp.rgamma, _drgamma, ufuncs=(sp.rgamma,), flops=50)
# B(a, b) = Γ(a)Γ(b)/Γ(a+b): ∂ ln B/∂a = ψ(a) - ψ(a+b).
betaln_p = elementwise("betaln", sp.betaln,
                       lambda ans, a, b: digamma_p(a) - digamma_p(a + b),
                       lambda ans, a, b: digamma_p(b) - digamma_p(a + b),
                       ufuncs=(sp.betaln,), flops=100)
beta_p = elementwise("beta", sp.beta,
                     lambda ans, a, b: ans * (digamma_p(a) - digamma_p(a + b)),
                     lambda ans, a, b: ans * (digamma_p(b) - digamma_p(a + b)),
                     ufuncs=(sp.beta,), flops=100)
# Hurwitz ζ(x, q) = Σ_k (k+q)^{-x}: ∂/∂q = -x ζ(x+1, q). (The one-argument Riemann ζ is
# SciPy's separate ufunc ``_riemann_zeta``; it has only the x-derivative, which we lack.)
zeta_p = elementwise("zeta", sp._ufuncs._zeta, _unavailable("zeta", "x"),
                     lambda ans, x, q: -x * zeta_p(x + 1.0, q),
                     ufuncs=(sp._ufuncs._zeta,), flops=100)

# ----- Logistic and entropy functions -----
expit_p = elementwise("expit", sp.expit, lambda ans, x: ans * (1.0 - ans),
                      ufuncs=(sp.expit,), flops=10)
logit_p = elementwise("logit", sp.logit, lambda ans, x: 1.0 / (x * (1.0 - x)),
                      ufuncs=(sp.logit,), flops=10)
log_expit_p = elementwise("log_expit", sp.log_expit, lambda ans, x: expit_p(-x),
                          ufuncs=(sp.log_expit,), flops=20)
# xlogy(0, y) = 0 for every y, so ∂/∂y = x/y is taken as 0 where x = 0.
xlogy_p = elementwise("xlogy", sp.xlogy, lambda ans, x, y: np.log(y),
                      lambda ans, x, y: _safe_div(x, y), ufuncs=(sp.xlogy,), flops=10)
xlog1py_p = elementwise("xlog1py", sp.xlog1py, lambda ans, x, y: np.log1p(y),
                        lambda ans, x, y: _safe_div(x, 1.0 + y), ufuncs=(sp.xlog1py,),
                        flops=10)
entr_p = elementwise("entr", sp.entr, lambda ans, x: -(np.log(x) + 1.0),
                     ufuncs=(sp.entr,), flops=10)
# rel_entr = x log(x/y), kl_div = x log(x/y) - x + y (x, y > 0; 0 at x = 0).
rel_entr_p = elementwise("rel_entr", sp.rel_entr, lambda ans, x, y: np.log(x / y) + 1.0,
                         lambda ans, x, y: -_safe_div(x, y), ufuncs=(sp.rel_entr,), flops=10)
kl_div_p = elementwise("kl_div", sp.kl_div, lambda ans, x, y: np.log(x / y),
                       lambda ans, x, y: 1.0 - _safe_div(x, y), ufuncs=(sp.kl_div,), flops=10)

# ----- Error function and the normal distribution -----
erf_p = elementwise("erf", sp.erf, lambda ans, x: _TWO_OVER_SQRT_PI * np.exp(-(x * x)),
                    ufuncs=(sp.erf,), flops=20)
erfc_p = elementwise("erfc", sp.erfc, lambda ans, x: -_TWO_OVER_SQRT_PI * np.exp(-(x * x)),
                     ufuncs=(sp.erfc,), flops=20)
# erfcx = e^{x²} erfc(x): a primitive because the product overflows (SciPy's reason too).
erfcx_p = elementwise("erfcx", sp.erfcx, lambda ans, x: 2.0 * x * ans - _TWO_OVER_SQRT_PI,
                      ufuncs=(sp.erfcx,), flops=20)
# Inverses: 1/f'(ans).
erfinv_p = elementwise("erfinv", sp.erfinv,
                       lambda ans, x: _SQRT_PI_OVER_TWO * np.exp(ans * ans),
                       ufuncs=(sp.erfinv,), flops=30)
erfcinv_p = elementwise("erfcinv", sp.erfcinv,
                        lambda ans, x: -_SQRT_PI_OVER_TWO * np.exp(ans * ans),
                        ufuncs=(sp.erfcinv,), flops=30)
ndtr_p = elementwise("ndtr", sp.ndtr, lambda ans, x: np.exp(-0.5 * (x * x)) / _SQRT_2PI,
                     ufuncs=(sp.ndtr,), flops=20)
ndtri_p = elementwise("ndtri", sp.ndtri, lambda ans, x: _SQRT_2PI * np.exp(0.5 * (ans * ans)),
                      ufuncs=(sp.ndtri,), flops=30)
# (log Φ)' = φ/Φ = exp(-x²/2 - log Φ)/√(2π): no underflow of Φ far in the left tail.
log_ndtr_p = elementwise("log_ndtr", sp.log_ndtr,
                         lambda ans, x: np.exp(-0.5 * (x * x) - ans) / _SQRT_2PI,
                         ufuncs=(sp.log_ndtr,), flops=30)

# ----- Incomplete gamma and beta functions (derivatives in x only) -----
def _dgammainc(ans, a, x):
    return np.exp(xlogy_p(a - 1.0, x) - x - gammaln_p(a))


def _dbetainc(ans, a, b, x):
    return _single(np.exp(xlogy_p(a - 1.0, x) + xlog1py_p(b - 1.0, -x) - betaln_p(a, b)), ans)


def _dstdtr(ans, df, t):
    """Student's t density at ``t``: the derivative of its distribution function."""
    return np.exp(gammaln_p(0.5 * (df + 1.0)) - gammaln_p(0.5 * df) - 0.5 * np.log(df * math.pi)
                  - 0.5 * (df + 1.0) * np.log1p(t * t / df))


gammainc_p = elementwise("gammainc", sp.gammainc, _unavailable("gammainc", "a"), _dgammainc,
                         ufuncs=(sp.gammainc,), flops=100)
gammaincc_p = elementwise("gammaincc", sp.gammaincc, _unavailable("gammaincc", "a"),
                          lambda ans, a, x: -_dgammainc(ans, a, x),
                          ufuncs=(sp.gammaincc,), flops=100)
stdtr_p = elementwise("stdtr", sp.stdtr, _unavailable("stdtr", "df"), _dstdtr,
                      ufuncs=(sp.stdtr,), flops=100)


def _no_ab(fname, arg):
    d = _unavailable(fname, arg)
    return lambda t, ans, *xs: d(ans, *xs)


# Three arguments: a broadcasting ``defprim`` (the elementwise hot paths take one or two).
betainc_p = defprim(
    "betainc", sp.betainc,
    jvp=(_no_ab("betainc", "a"), _no_ab("betainc", "b"),
         lambda t, ans, a, b, x: t * _dbetainc(ans, a, b, x)),
    vjp=(_no_ab("betainc", "a"), _no_ab("betainc", "b"),
         lambda g, ans, a, b, x: g * _dbetainc(ans, a, b, x)),
    ufuncs=(sp.betainc,), broadcasts=True, flops=200)
betaincc_p = defprim(
    "betaincc", sp.betaincc,
    jvp=(_no_ab("betaincc", "a"), _no_ab("betaincc", "b"),
         lambda t, ans, a, b, x: -t * _dbetainc(ans, a, b, x)),
    vjp=(_no_ab("betaincc", "a"), _no_ab("betaincc", "b"),
         lambda g, ans, a, b, x: -g * _dbetainc(ans, a, b, x)),
    ufuncs=(sp.betaincc,), broadcasts=True, flops=200)

# ----- Bessel functions (derivatives in x; the order v raises) -----
def _sign_re(x):
    # The exponential scaling of ive, i0e, i1e is e^{-|Re x|}: its derivative is -sign(Re x).
    return np.sign(np.real(x))


jv_p = elementwise("jv", sp.jv, _unavailable("jv", "v"),
                   lambda ans, v, x: 0.5 * (jv_p(v - 1.0, x) - jv_p(v + 1.0, x)),
                   ufuncs=(sp.jv,), flops=100)
yv_p = elementwise("yv", sp.yv, _unavailable("yv", "v"),
                   lambda ans, v, x: 0.5 * (yv_p(v - 1.0, x) - yv_p(v + 1.0, x)),
                   ufuncs=(sp.yv,), flops=100)
yn_p = elementwise("yn", sp.yn, _unavailable("yn", "n"),
                   lambda ans, n, x: 0.5 * (yv_p(n - 1.0, x) - yv_p(n + 1.0, x)),
                   ufuncs=(sp.yn,), flops=100)
iv_p = elementwise("iv", sp.iv, _unavailable("iv", "v"),
                   lambda ans, v, x: 0.5 * (iv_p(v - 1.0, x) + iv_p(v + 1.0, x)),
                   ufuncs=(sp.iv,), flops=100)
ive_p = elementwise("ive", sp.ive, _unavailable("ive", "v"),
                    lambda ans, v, x: 0.5 * (ive_p(v - 1.0, x) + ive_p(v + 1.0, x))
                    - _sign_re(x) * ans, ufuncs=(sp.ive,), flops=100)
kv_p = elementwise("kv", sp.kv, _unavailable("kv", "v"),
                   lambda ans, v, x: -0.5 * (kv_p(v - 1.0, x) + kv_p(v + 1.0, x)),
                   ufuncs=(sp.kv,), flops=100)
# Integer orders: J₀' = -J₁, J₁' = (J₀ - J₂)/2, and alike for Y, I, K.
j0_p = elementwise("j0", sp.j0, lambda ans, x: -j1_p(x), ufuncs=(sp.j0,), flops=50)
j1_p = elementwise("j1", sp.j1, lambda ans, x: 0.5 * (j0_p(x) - jv_p(2.0, x)),
                   ufuncs=(sp.j1,), flops=50)
y0_p = elementwise("y0", sp.y0, lambda ans, x: -y1_p(x), ufuncs=(sp.y0,), flops=50)
y1_p = elementwise("y1", sp.y1, lambda ans, x: 0.5 * (y0_p(x) - yv_p(2.0, x)),
                   ufuncs=(sp.y1,), flops=50)
i0_p = elementwise("i0", sp.i0, lambda ans, x: i1_p(x), ufuncs=(sp.i0,), flops=50)
i1_p = elementwise("i1", sp.i1, lambda ans, x: 0.5 * (i0_p(x) + iv_p(2.0, x)),
                   ufuncs=(sp.i1,), flops=50)
i0e_p = elementwise("i0e", sp.i0e, lambda ans, x: i1e_p(x) - _sign_re(x) * ans,
                    ufuncs=(sp.i0e,), flops=50)
i1e_p = elementwise("i1e", sp.i1e,
                    lambda ans, x: 0.5 * (i0e_p(x) + ive_p(2.0, x)) - _sign_re(x) * ans,
                    ufuncs=(sp.i1e,), flops=50)
k0_p = elementwise("k0", sp.k0, lambda ans, x: -k1_p(x), ufuncs=(sp.k0,), flops=50)
k1_p = elementwise("k1", sp.k1, lambda ans, x: -0.5 * (k0_p(x) + kv_p(2.0, x)),
                   ufuncs=(sp.k1,), flops=50)


# Dependency structure (the sparsity mode): elementwise, with three arguments.
betainc_p.sparsity = betaincc_p.sparsity = dependency.elementwise
