"""Cases for scipy.special, scipy.stats and scipy.integrate.

Order and shape parameters without a derivative (``v`` of ``jv``, ``a`` of ``gammainc``) are
fixed inside ``fn``; every differentiable argument is an input of some case.
"""
import numpy as np
import scipy.special as sp

import autodiff as ad
from autodiff.scipy import integrate, special, stats


def _u(lo, hi):
    """A uniform domain on ``[lo, hi]``."""
    return lambda rng, shape: rng.uniform(lo, hi, shape)


def _simplex(k):
    """The first ``k`` coordinates of points well inside the (k+1)-simplex, one per column."""
    def dom(rng, shape):
        w = rng.uniform(1.0, 2.0, (k + 1,) + shape[1:])
        return (w / w.sum(axis=0))[:k]
    return dom


def make(Case):
    cases = []

    def unary(prim, fn, dom="real", name=None, shapes=((), (2, 3))):
        name = name or prim
        return [Case(prim, f"{name}-{s}", fn, ((s, dom),)) for s in shapes]

    def binary(prim, fn, dx="real", dy="real", name=None):
        name = name or prim
        return [Case(prim, f"{name}-{a}-{b}", fn, ((a, dx), (b, dy)))
                for a, b in [((), ()), ((2, 3), (3,)), ((2, 1), (1, 3))]]

    # ----- scipy.special: gamma family -----
    cases += unary("gamma", sp.gamma, "pos")
    cases += unary("rgamma", sp.rgamma, "real")
    cases += binary("beta", sp.beta, "pos", "pos")
    cases += binary("betaln", sp.betaln, "pos", "pos")
    cases += unary("zeta", lambda q: sp.zeta(np.array([2.5, 3.0, 4.5]), q), "pos",
                   shapes=((3,), (2, 3)))
    cases += [Case("gammaln", "multigammaln", lambda a: special.multigammaln(a, 3),
                   (((3,), "big"),))]

    # ----- scipy.special: logistic, xlogy and entropies -----
    cases += unary("expit", sp.expit)
    cases += unary("logit", sp.logit, _u(0.2, 0.8))
    cases += unary("log_expit", sp.log_expit)
    cases += binary("xlogy", sp.xlogy, "real", "pos")
    cases += binary("xlog1py", sp.xlog1py, "real", "pos")
    cases += [Case("xlogy", "xlogy-zero-x", lambda y: sp.xlogy(np.array([0.0, 1.5]), y),
                   (((2,), "pos"),)),
              Case("xlogy", "xlogy-at-x-zero", sp.xlogy,
                   (((3,), lambda rng, shape: np.zeros(shape)), ((3,), "pos"))),
              Case("xlog1py", "xlog1py-at-x-zero", sp.xlog1py,
                   (((3,), lambda rng, shape: np.zeros(shape)), ((3,), "pos")))]
    cases += unary("entr", sp.entr, "pos")
    cases += binary("rel_entr", sp.rel_entr, "pos", "pos")
    cases += binary("kl_div", sp.kl_div, "pos", "pos")

    # ----- scipy.special: error function and normal distribution -----
    cases += unary("erfc", sp.erfc)
    cases += unary("erfcx", sp.erfcx)
    cases += unary("erfinv", sp.erfinv, "unit")
    cases += unary("erfcinv", sp.erfcinv, _u(0.2, 1.8))
    cases += unary("ndtr", sp.ndtr)
    cases += unary("ndtri", sp.ndtri, _u(0.1, 0.9))
    cases += unary("log_ndtr", sp.log_ndtr, _u(-6.0, 3.0))

    # ----- scipy.special: incomplete functions (in x) -----
    a = np.array([0.7, 1.0, 2.5])
    cases += unary("gammainc", lambda x: sp.gammainc(a, x), "pos", shapes=((3,), (2, 3)))
    cases += unary("gammaincc", lambda x: sp.gammaincc(a, x), "pos", shapes=((3,), (2, 3)))
    cases += unary("stdtr", lambda x: sp.stdtr(np.array([1.5, 4.0, 30.0]), x), "real",
                   shapes=((3,), (2, 3)))
    cases += unary("betainc", lambda x: sp.betainc(a, 1.5, x), _u(0.1, 0.9),
                   shapes=((3,), (2, 3)))
    cases += unary("betaincc", lambda x: sp.betaincc(1.5, a, x), _u(0.1, 0.9),
                   shapes=((3,), (2, 3)))

    # ----- scipy.special: Bessel functions (in x) -----
    v = np.array([0.0, 1.5, 2.0])
    cases += unary("jv", lambda x: sp.jv(v, x), "pos", shapes=((3,), (2, 3)))
    cases += unary("jv", lambda x: sp.jn(3, x), "real", name="jn")
    cases += unary("yv", lambda x: sp.yv(v, x), "pos", shapes=((3,), (2, 3)))
    cases += unary("yn", lambda x: sp.yn(2, x), "pos")
    cases += unary("iv", lambda x: sp.iv(v, x), "pos", shapes=((3,), (2, 3)))
    cases += unary("ive", lambda x: sp.ive(2, x), "nonzero")
    cases += unary("kv", lambda x: sp.kv(v, x), "pos", shapes=((3,), (2, 3)))
    for name, dom in [("j0", "real"), ("j1", "real"), ("y0", "pos"), ("y1", "pos"),
                      ("i0", "real"), ("i1", "real"), ("i0e", "nonzero"), ("i1e", "nonzero"),
                      ("k0", "pos"), ("k1", "pos")]:
        cases += unary(name, getattr(sp, name), dom)

    # ----- scipy.special: logsumexp with b and return_sign (a composition) -----
    lse = special.logsumexp
    b = np.array([1.0, -0.5, 2.0])
    cases += [
        Case("exp", "logsumexp-b-all", lambda x, b: lse(x, b=b),
             (((2, 3), "real"), ((3,), "pos"))),
        Case("exp", "logsumexp-b-axis1-keep", lambda x, b: lse(x, axis=1, b=b, keepdims=True),
             (((2, 3), "real"), ((2, 3), "pos"))),
        Case("exp", "logsumexp-sign-axis-2", lambda x: lse(x, axis=-2, b=b, return_sign=True)[0],
             (((2, 3), "real"),)),
    ]

    # ----- scipy.stats -----
    x3 = ((3,), "real")
    cases += [
        Case("log", "norm.logpdf", stats.norm.logpdf, (x3, ((), "real"), ((), "pos"))),
        Case("exp", "norm.pdf", stats.norm.pdf, (x3, ((3,), "real"), ((), "pos"))),
        Case("ndtr", "norm.cdf-sf",
             lambda x, l, s: stats.norm.cdf(x, l, s) * stats.norm.sf(x, l, s),
             (x3, ((), "real"), ((), "pos"))),
        Case("log_ndtr", "norm.logcdf-logsf",
             lambda x, s: stats.norm.logcdf(x, 0.5, s) + stats.norm.logsf(x, scale=s),
             (x3, ((), "pos"))),
        Case("ndtri", "norm.ppf-isf",
             lambda q, l, s: stats.norm.ppf(q, l, s) + stats.norm.isf(q, l, s) ** 2,
             (((3,), _u(0.1, 0.9)), ((), "real"), ((), "pos"))),
        Case("gammaln", "t.logpdf", stats.t.logpdf, (x3, ((), "big"), ((), "real"), ((), "pos"))),
        Case("gammaln", "t.pdf", lambda x, df: stats.t.pdf(x, df), (x3, ((3,), "big"))),
        Case("stdtr", "t.cdf-sf",
             lambda x, l, s: stats.t.cdf(x, 3.5, l, s) + stats.t.sf(x, 2.5, l, s) ** 2,
             (x3, ((), "real"), ((), "pos"))),
        Case("stdtr", "t.logcdf-logsf", lambda x: stats.t.logcdf(x, 3.5) + stats.t.logsf(x, 5.0),
             (x3,)),
        Case("xlogy", "gamma.logpdf", stats.gamma.logpdf,
             (((3,), "big"), ((), "pos"), ((), "real"), ((), "pos"))),
        Case("xlogy", "gamma.pdf", lambda x, a: stats.gamma.pdf(x, a),
             (((2, 3), "pos"), ((3,), "big"))),
        Case("gammainc", "gamma.cdf-sf",
             lambda x, l, s: stats.gamma.cdf(x, 2.5, l, s) + stats.gamma.sf(x, 1.5, l, s) ** 2,
             (((3,), "big"), ((), "real"), ((), "pos"))),
        Case("gammainc", "gamma.logcdf-logsf",
             lambda x: stats.gamma.logcdf(x, 2.5) + stats.gamma.logsf(x, 1.5), (((3,), "pos"),)),
        Case("xlogy", "chi2.logpdf-pdf",
             lambda x, df, s: stats.chi2.logpdf(x, df, 0.1, s) + stats.chi2.pdf(x, df),
             (((3,), "big"), ((), "big"), ((), "pos"))),
        Case("gammaincc", "chi2.cdf-sf-log",
             lambda x: stats.chi2.cdf(x, 3.0) + stats.chi2.logsf(x, 2.0)
             + stats.chi2.logcdf(x, 4.0) * stats.chi2.sf(x, 3.0), (((3,), "pos"),)),
        Case("betaln", "beta.logpdf", stats.beta.logpdf,
             (((3,), _u(0.2, 0.8)), ((), "big"), ((), "big"), ((), _u(-0.1, 0.1)),
              ((), _u(1.0, 1.1)))),
        Case("betaln", "beta.pdf", lambda x, a, b: stats.beta.pdf(x, a, b),
             (((2, 3), _u(0.2, 0.8)), ((3,), "big"), ((), "pos"))),
        Case("betainc", "beta.cdf-sf",
             lambda x, l, s: stats.beta.cdf(x, 2.5, 1.5, l, s)
             + stats.beta.sf(x, 1.5, 2.0, l, s) ** 2,
             (((3,), _u(0.2, 0.8)), ((), _u(-0.1, 0.1)), ((), _u(1.0, 1.1)))),
        Case("betaincc", "beta.logcdf-logsf",
             lambda x: stats.beta.logcdf(x, 2.5, 1.5) + stats.beta.logsf(x, 1.5, 2.0),
             (((3,), _u(0.2, 0.8)),)),
        Case("xlogy", "poisson.logpmf-pmf",
             lambda mu: stats.poisson.logpmf(np.array([0.0, 1.0, 3.0]), mu)
             + stats.poisson.pmf(np.array([[2.0], [5.0]]), mu, 1), (((3,), "pos"),)),
        Case("gammaincc", "poisson.cdf-sf",
             lambda mu: stats.poisson.cdf(np.array([0.0, 1.0, 3.5]), mu)
             + stats.poisson.logsf(np.array([1.0, 2.0, 4.0]), mu)
             + stats.poisson.logcdf(2.0, mu) * stats.poisson.sf(0.0, mu), (((3,), "pos"),)),
        Case("logabsdet", "multivariate_normal.logpdf", stats.multivariate_normal.logpdf,
             (((2, 3), "real"), ((3,), "real"), ((3, 3), "spd"))),
        Case("solve", "multivariate_normal.pdf-1d",
             lambda x, m, c: stats.multivariate_normal.pdf(x, m, 1.0 + c) * 10.0,
             (((3,), "real"), ((), "real"), ((), "pos"))),
        Case("logabsdet", "multivariate_normal.entropy", stats.multivariate_normal.entropy,
             (((2,), "real"), ((2, 2), "spd"))),
        Case("xlogy", "dirichlet.logpdf", stats.dirichlet.logpdf,
             (((2, 3), _simplex(2)), ((3,), "big"))),
        Case("gammaln", "dirichlet.pdf", stats.dirichlet.pdf,
             (((2,), _simplex(2)), ((3,), "pos"))),
    ]

    # ----- scipy.integrate: quadrature of samples -----
    cases += [
        Case("sum", "trapezoid-dx", lambda y, dx: integrate.trapezoid(y, dx=dx),
             (((2, 4), "real"), ((), "pos"))),
        Case("sum", "trapezoid-x-axis0", lambda y, x: integrate.trapezoid(y, np.cumsum(x), axis=0),
             (((4, 2), "real"), ((4,), "pos"))),
        Case("cumsum", "cumulative_trapezoid-x", lambda y, x: integrate.cumulative_trapezoid(
            y, np.cumsum(x, axis=-1), initial=0), (((2, 4), "real"), ((2, 4), "pos"))),
        Case("cumsum", "cumulative_trapezoid-dx-axis-2",
             lambda y, dx: integrate.cumulative_trapezoid(y, dx=dx, axis=-2),
             (((3, 2), "real"), ((), "pos"))),
        Case("sum", "simpson-odd-dx", lambda y, dx: integrate.simpson(y, dx=dx, axis=0),
             (((5, 2), "real"), ((), "pos"))),
        Case("sum", "simpson-even-x", lambda y, x: integrate.simpson(y, x=np.cumsum(x)),
             (((2, 6), "real"), ((6,), "pos"))),
        Case("sum", "simpson-two", lambda y, x: integrate.simpson(y, x=np.cumsum(x)),
             (((2,), "real"), ((2,), "pos"))),
    ]

    # ----- scipy.integrate: odeint (tolerances tight enough for the numerical checks) -----
    def oscillator(y, t, k, c):
        return [y[1], -k * y[0] - c * y[1] + 0.3 * np.sin(t)]

    ts = np.array([0.0, 0.4, 1.0])
    cases += [
        Case("odeint", "odeint-y0-args", lambda y0, k, c: integrate.odeint(
            oscillator, y0, ts, (k, c), rtol=1e-10, atol=1e-10),
             (((2,), "real"), ((), "pos"), ((), "pos"))),
        Case("odeint", "odeint-t", lambda t: integrate.odeint(
            oscillator, np.array([1.0, 0.5]), np.cumsum(t), (1.3, 0.2), rtol=1e-10, atol=1e-10),
             (((3,), "pos"),)),
        Case("odeint", "odeint-vector-param", lambda y0, w: integrate.odeint(
            lambda y, t, w: -w * y, y0, ts, (w,), rtol=1e-10, atol=1e-10),
             (((3,), "pos"), ((3,), "pos"))),
    ]

    # odeint's pullback is a primitive of its own (the adjoint along the dense forward
    # solution): its derivatives, third derivatives of the solve, in y0, t, args and g.
    def odeint_pullback(y0, t, k, g):
        ybar, tbar, kbar = ad.vjp(lambda y0, t, k: integrate.odeint(
            oscillator, y0, np.cumsum(t), (k, 0.2), rtol=1e-10, atol=1e-10), y0, t, k)[1](g)
        return np.concatenate([ybar, tbar, np.reshape(kbar, (1,))])

    cases += [Case("ode_adjoint", "odeint-pullback", odeint_pullback,
                   (((2,), "real"), ((3,), "pos"), ((), "pos"), ((3, 2), "real")))]

    # ----- scipy.integrate: solve_ivp (the samples, and the adjoint it shares with odeint) --
    def oscillator_ivp(t, y, k, c):
        return oscillator(y, t, k, c)

    cases += [
        Case("solve_ivp", "solve_ivp-y0-args", lambda y0, k: integrate.solve_ivp(
            oscillator_ivp, (0.0, 1.0), y0, method="DOP853", t_eval=ts[1:], args=(k, 0.2),
            rtol=1e-11, atol=1e-11).y, (((2,), "real"), ((), "pos"))),
        Case("solve_ivp", "solve_ivp-t-eval-bdf", lambda t: integrate.solve_ivp(
            oscillator_ivp, (0.0, 10.0), np.array([1.0, 0.5]), method="BDF",
            t_eval=np.cumsum(t), args=(1.3, 0.2), rtol=1e-11, atol=1e-11).y,
             (((3,), "pos"),)),
    ]

    def ivp_pullback(y0, k, g):
        ybar, kbar = ad.vjp(lambda y0, k: integrate.solve_ivp(
            oscillator_ivp, (0.0, 1.0), y0, method="DOP853", t_eval=ts[1:], args=(k, 0.2),
            rtol=1e-11, atol=1e-11, sensitivity="adjoint").y, y0, k)[1](g)
        return np.concatenate([ybar, np.reshape(kbar, (1,))])

    cases += [Case("ode_adjoint", "solve_ivp-pullback", ivp_pullback,
                   (((2,), "real"), ((), "pos"), ((2, 2), "real")))]
    return cases
