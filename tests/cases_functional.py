"""Case-table entries for the compositions in ops/polynomial.py and ops/functional.py:
np.poly*, roots, vander, apply_along_axis, apply_over_axes, piecewise, unwrap, and the
in-place np.place / np.putmask / np.copyto."""
import numpy as np


def _place_putmask(x):
    a = np.zeros_like(x)
    np.place(a, x > 0.0, x[:2] ** 2)
    b = x * 1.0
    np.putmask(b, x < 0.5, np.sin(x))
    c = np.zeros_like(x)
    np.copyto(c, b, where=x > -1.0)
    return a + b * c


def make(Case):
    p3 = ((3,), "big")
    return [
        Case("add", "polyadd-polysub", lambda p, q: np.polysub(np.polyadd(p, q), q[:2] * p[0]),
             (p3, ((2,), "real"))),
        Case("multiply", "polymul-polyder-polyint",
             lambda p, q: np.polyint(np.polyder(np.polymul(p, q), 1), 2, 0.5), (p3, p3)),
        Case("divide", "polydiv", lambda u, v: np.concatenate(np.polydiv(u, v)),
             (((4,), "big"), ((2,), "pos"))),
        Case("power", "vander", lambda x: np.vander(x, 4)[:, 1:] + np.vander(x, increasing=True),
             (((3,), "real"),)),
        Case("multiply", "polyfit", lambda x, y: np.polyfit(x, y, 2),
             (((5,), lambda rng, s: np.linspace(0.0, 2.0, 5) + 0.05 * rng.random(5)),
              ((5,), "real"))),
        Case("multiply", "poly-roots", lambda p: np.poly(np.roots(p)),
             (((3,), lambda rng, s: np.array([1.0, -3.0, 2.0]) + 0.1 * rng.random(3)),)),
        Case("sum", "apply-along-axis", lambda x: np.apply_along_axis(
            lambda r: np.sin(r) * r[0], 1, x), (((2, 3), "real"),)),
        Case("sum", "apply-over-axes", lambda x: np.apply_over_axes(np.sum, x ** 2, [0, 2]),
             (((2, 3, 2), "real"),)),
        Case("where", "piecewise", lambda x: np.piecewise(
            x, [x < 0.0, x > 1.0], [lambda v: v ** 2, np.sin, lambda v: 2.0 * v]),
             (((6,), "real"),)),
        Case("add", "unwrap", lambda x: np.unwrap(x * 4.0) ** 2, (((5,), "real"),)),
        Case("setitem", "place-putmask-copyto", _place_putmask, (((4,), "real"),)),
        # ----- Constants given as lists -----
        Case("interp", "interp-list-constants",
             lambda x: np.interp(x, [0.0, 1.0, 2.0], [0.0, 3.0, 1.0]) * x,
             (((4,), lambda rng, s: rng.uniform(0.1, 0.9, s) + rng.integers(0, 2, s)),)),
        Case("correlate", "convolve-correlate-list-constants",
             lambda a: np.concatenate([np.convolve(a, [1.0, -2.0, 0.5]),
                                       np.correlate([1.0, -2.0], a ** 2, mode="full")]),
             (((4,), "real"),)),
        Case("multiply", "polyval-polymul-list-constants",
             lambda x: np.polyval([1.0, -2.0, 0.5], x) * np.polymul([1.0, 2.0], x[:2]).sum(),
             (((3,), "real"),)),
        Case("matmul", "dot-list-constant", lambda x: np.dot([[1.0, 2.0], [0.5, -1.0]], x) ** 2,
             (((2, 3), "real"),)),
        Case("sum", "trapezoid-gradient-list-spacing",
             lambda y: np.trapezoid(y ** 2, [0.0, 1.0, 3.0]) + np.gradient(y, [0.0, 1.0, 3.0]),
             (((3,), "real"),)),
    ]
