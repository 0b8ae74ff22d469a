"""Case-table entries for autodiff/ops/ufuncs.py: the remaining differentiable ufuncs and
sinc, nan_to_num, i0. Inputs stay away from each function's jumps (integer quotients of
fmod/remainder, powers of two for frexp, integers for modf) and kinks."""
import numpy as np

_UNARY = [(), (3,), (2, 3)]
_BINARY = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3))]


def _signs(rng, shape):
    return rng.choice([-1.0, 1.0], shape)


def _dividend(rng, shape):
    # With _divisor: |x/y| in (2.54, 2.87), so the integer quotient is constant nearby.
    return rng.uniform(5.2, 5.6, shape) * _signs(rng, shape)


def _divisor(rng, shape):
    return rng.uniform(1.95, 2.05, shape) * _signs(rng, shape)


def _mantissa(rng, shape):
    # |x| = m·2**e with m in (0.55, 0.95): away from the powers of two where e jumps.
    return rng.uniform(0.55, 0.95, shape) * 2.0 ** rng.integers(-2, 3, shape) * _signs(rng, shape)


def _fractional(rng, shape):
    return rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.9, shape)


def _with_zero(rng, shape):
    x = rng.uniform(-1.5, 1.5, shape)
    x.flat[0] = 0.0
    return x


def _non_finite(rng, shape):
    x = rng.uniform(-2.0, 2.0, shape)
    x.flat[1:4] = [np.nan, np.inf, -np.inf]
    return x


def make(Case):
    def unary(prim, fn, dom="real", name=None):
        name = name or prim
        return [Case(prim, f"{name}-{s}", fn, ((s, dom),)) for s in _UNARY]

    def binary(prim, fn, dx="real", dy="real", name=None):
        name = name or prim
        return [Case(prim, f"{name}-{a}-{b}", fn, ((a, dx), (b, dy))) for a, b in _BINARY]

    c = "complex"
    cases = []
    # ----- Exponentials and logarithms -----
    cases += unary("exp2", np.exp2)
    cases += unary("log2", np.log2, "pos")
    cases += unary("log10", np.log10, "pos")
    cases += unary("cbrt", np.cbrt, "nonzero")
    cases += binary("logaddexp", np.logaddexp)
    cases += binary("logaddexp2", np.logaddexp2)
    cases += [Case("logaddexp", "logaddexp-large", lambda x, y: np.logaddexp(800.0 * x, 800.0 * y),
                   (((3,), "real"), ((3,), "real")))]
    # ----- float_power -----
    cases += binary("float_power", np.float_power, dx="pos")
    cases += [
        Case("float_power", "float_power-int-exponent", lambda x: np.float_power(x, 3),
             (((3,), "real"),)),
        Case("float_power", "float_power-zero-exponent",
             lambda x: np.float_power(x, np.array([0.0, 1.0, 2.5])), (((3,), "pos"),)),
        Case("float_power", "float_power-scalar-zero", lambda x: np.float_power(x, 0) * x,
             (((2,), "real"),)),
        Case("float_power", "float_power-float", lambda x: np.float_power(x, 1.5),
             (("float", "pos"),)),
        Case("float_power", "float_power-at-y0", np.float_power,
             (((3,), "pos"), ((3,), lambda rng, s: np.zeros(s)))),
    ]
    # ----- nextafter (x plus a constant step), heaviside (h where x == 0) -----
    cases += binary("nextafter", np.nextafter)
    cases += [Case("heaviside", "heaviside-h", lambda h: np.heaviside(np.array([0.0, 1.0, -1.0]),
                                                                      h) * h, (((3,), "real"),)),
              Case("heaviside", "heaviside-x", lambda x: np.heaviside(x, 0.5) + x,
                   (((3,), "nonzero"),))]
    # ----- Inverse hyperbolic functions -----
    cases += unary("arcsinh", np.arcsinh)
    cases += unary("arccosh", np.arccosh, "big")
    cases += unary("arctanh", np.arctanh, "unit")
    cases += [Case("arcsinh", "arcsinh-float", np.arcsinh, (("float", "real"),))]
    # ----- Remainders and signs -----
    cases += binary("fmod", np.fmod, _dividend, _divisor)
    cases += binary("remainder", np.remainder, _dividend, _divisor)
    cases += [
        Case("remainder", "mod-operator", lambda x, y: x % y + np.mod(x, 2.0),
             (((3,), _dividend), ((3,), _divisor))),
        Case("fmod", "fmod-constant-divisor", lambda x: np.fmod(x, 2.0), (((4,), _dividend),)),
    ]
    cases += binary("copysign", np.copysign, "nonzero", "nonzero")
    cases += [
        Case("ldexp", "ldexp-int", lambda x: np.ldexp(x, 3), (((), "real"),)),
        Case("ldexp", "ldexp-vec", lambda x: np.ldexp(x, np.array([1, -2, 0])), (((3,), "real"),)),
        Case("ldexp", "ldexp-broadcast", lambda x: np.ldexp(x, np.array([1, -2, 3])),
             (((2, 3), "real"),)),
        Case("ldexp", "ldexp-scalar-x", lambda x: np.ldexp(x, np.array([[1], [-1]])),
             (((), "real"),)),
    ]
    # ----- Two outputs (handlers composing primitives) -----
    cases += [
        Case("ldexp", "frexp", lambda x: np.frexp(x)[0], (((3,), _mantissa),)),
        Case("ldexp", "frexp-both", lambda x: np.frexp(x)[0] * np.frexp(x)[1],
             (((2, 3), _mantissa),)),
        Case("ldexp", "frexp-0d", lambda x: np.frexp(x)[0], (((), _mantissa),)),
        Case("fmod", "modf", lambda x: np.modf(x)[0], (((3,), _fractional),)),
        Case("fmod", "modf-both", lambda x: np.modf(x)[0] ** 2 * np.modf(x)[1],
             (((2, 3), _fractional),)),
        Case("remainder", "divmod", lambda x, y: np.divmod(x, y)[1] * np.divmod(x, y)[0],
             (((2, 3), _dividend), ((3,), _divisor))),
        Case("remainder", "divmod-0d", lambda x, y: np.divmod(x, y)[1],
             (((), _dividend), ((), _divisor))),
    ]
    # ----- Angle units (compositions) -----
    cases += [Case("multiply", f"{f.__name__}-{s}", f, ((s, "real"),))
              for f in (np.deg2rad, np.radians, np.rad2deg, np.degrees) for s in [(), (2, 3)]]
    # ----- sinc, nan_to_num, i0 -----
    cases += unary("sinc", np.sinc)
    cases += [
        Case("sinc", "sinc-at-zero", np.sinc, (((4,), _with_zero),)),
        Case("sinc", "sinc-zero-0d", np.sinc, (((), lambda rng, s: np.zeros(s)),)),
        Case("sinc", "sinc-near-zero", lambda x: np.sinc(1e-3 * x), (((3,), "real"),)),
        Case("where", "nan_to_num", np.nan_to_num, (((5,), _non_finite),)),
        Case("where", "nan_to_num-values",
             lambda x: np.sin(np.nan_to_num(x, nan=1.0, posinf=2.0, neginf=-3.0)) * x[1, 1],
             (((2, 3), _non_finite),)),
        Case("where", "nan_to_num-finite", np.nan_to_num, (((2, 3), "real"),)),
    ]
    cases += unary("i0", np.i0, name="np.i0")
    # ----- Complex inputs (holomorphic ones) -----
    for name, fn in [("exp2", np.exp2), ("log2", np.log2), ("log10", np.log10),
                     ("arcsinh", np.arcsinh), ("arccosh", np.arccosh), ("arctanh", np.arctanh),
                     ("sinc", np.sinc)]:
        cases += [Case(name, f"{name}-complex-{s}", fn, ((s, c),)) for s in [(), (2, 3)]]
    cases += [
        Case("float_power", "float_power-complex", np.float_power, (((2, 3), c), ((3,), c))),
        Case("float_power", "float_power-complex-real-exponent", np.float_power,
             (((3,), c), ((3,), "real"))),
        Case("where", "nan_to_num-complex", np.nan_to_num, (((3,), c),)),
    ]
    return cases
