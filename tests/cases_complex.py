"""Case-table entries with complex inputs: the complex parts (abs, real, imag, angle, conj)
and the holomorphic primitives of the core families. check_grads and the batched-Jacobian
test read complex functions as real maps of the real and imaginary parts
(``autodiff.testing.split_complex``), so these hold every rule to finite differences."""
import numpy as np


def _hermitian_pd(rng, shape):
    n = shape[-1]
    a = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return a @ np.conj(np.swapaxes(a, -1, -2)) + n * np.eye(n)


def _cgeneral(rng, shape):
    n = shape[-1]
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape) + 2 * n * np.eye(n)


def make(Case):
    c = "complex"
    cases = []
    for name, fn in [("absolute", np.abs), ("real", np.real), ("imag", np.imag),
                     ("angle", np.angle), ("conj", np.conj)]:
        cases += [Case(name, f"{name}-complex-{s}", fn, ((s, c),)) for s in [(), (3,), (2, 3)]]
    cases += [
        Case("real", "real-imag-method", lambda z: z.real * z.imag + z.conj() ** 2,
             (((3,), c),)),
        Case("conj", "conj-of-real", lambda x: np.conj(x) * x, (((3,), "real"),)),
        Case("angle", "angle-real-input", lambda x: np.angle(x) + x, (((3,), "nonzero"),)),
        Case("angle", "angle-deg", lambda z: np.angle(z, deg=True), (((3,), c),)),
        Case("absolute", "abs-squared-complex", lambda z: np.abs(z) ** 2, (((4,), c),)),
        Case("sum", "var-complex", lambda z: np.var(z, axis=0), (((3, 2), c),)),
        Case("sum", "std-complex", lambda z: np.std(z, ddof=1), (((4,), c),)),
        Case("sum", "nanvar-complex", lambda z: np.nanvar(z, axis=1), (((2, 3), c),)),
        Case("sum", "nanstd-complex", lambda z: np.nanstd(z), (((2, 2), c),)),
        Case("multiply", "real-times-complex", lambda x, z: x * z + np.exp(1j * x),
             (((3,), "real"), ((3,), c))),
    ]
    holo = [("exp", np.exp), ("log", np.log), ("sqrt", np.sqrt), ("square", np.square),
            ("reciprocal", np.reciprocal), ("sin", np.sin), ("cos", np.cos), ("tan", np.tan),
            ("sinh", np.sinh), ("cosh", np.cosh), ("tanh", np.tanh), ("negative", np.negative),
            ("expm1", np.expm1), ("log1p", np.log1p), ("arctan", np.arctan),
            ("arcsin", np.arcsin), ("arccos", np.arccos)]
    for name, fn in holo:
        cases.append(Case(name, f"{name}-complex", fn, (((2, 3), c),)))
    cases += [Case(name, f"{name}-complex-binary", fn, (((2, 3), c), ((3,), c)))
              for name, fn in [("add", np.add), ("subtract", np.subtract),
                               ("multiply", np.multiply), ("divide", np.divide),
                               ("power", np.power)]]
    cases += [
        Case("sum", "sum-complex", lambda z: np.sum(z * z, axis=0), (((3, 2), c),)),
        Case("prod", "prod-complex", lambda z: np.prod(z, axis=-1), (((2, 3), c),)),
        Case("getitem", "getitem-complex", lambda z: z[::2] * z[1], (((4,), c),)),
        Case("concatenate", "concatenate-complex", lambda z, x: np.concatenate([z, x]),
             (((2,), c), ((3,), "real"))),
        Case("reshape", "reshape-complex", lambda z: z.reshape(3, 2).T ** 2, (((2, 3), c),)),
        Case("matmul", "matmul-complex", lambda a, b: a @ b, (((2, 3), c), ((3, 2), c))),
        Case("inv", "inv-complex", np.linalg.inv, (((3, 3), _cgeneral),)),
        Case("solve", "solve-complex", np.linalg.solve, (((3, 3), _cgeneral), ((3,), c))),
        Case("det", "det-complex", np.linalg.det, (((3, 3), _cgeneral),)),
        Case("logabsdet", "slogdet-complex", lambda a: np.linalg.slogdet(a)[1],
             (((3, 3), _hermitian_pd),)),
        Case("where", "where-complex", lambda z: np.where(np.real(z) > 0, z * z, z),
             (((4,), c),)),
    ]
    return cases
