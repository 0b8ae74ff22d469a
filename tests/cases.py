"""The case table: every primitive (and NumPy entry point) with inputs from its domain.

Each case is ``Case(primitive, id, fn, args)``: ``fn`` is written with plain NumPy, as a user
would, and ``args`` are (shape, domain) pairs. The same table drives the op tests in both
modes, the batched Jacobian tests and the completeness test.
"""
from dataclasses import dataclass

import numpy as np
import scipy.special as sp

from autodiff.ops.elementwise import relu_p as _relu
from autodiff.ops.linalg import linear_p as linear
from autodiff.ops.softmax import softmax_cross_entropy
from autodiff.scipy.special import log_softmax, logsumexp, polygamma, softmax

DOMAINS = {
    "real": (-2.0, 2.0),
    "pos": (0.5, 2.0),
    "unit": (-0.8, 0.8),
    "big": (2.0, 4.0),
}


@dataclass
class Case:
    prim: str
    id: str
    fn: object
    args: tuple          # ((shape, domain), ...); domain: a DOMAINS name, "spd",
    #                      "nonzero", "complex", or a callable ``dom(rng, shape)``

    def make_args(self, seed=0):
        rng = np.random.default_rng(seed)
        out = []
        for shape, dom in self.args:
            if callable(dom):                 # dom(rng, shape) -> array
                out.append(dom(rng, shape))
            elif dom == "complex":
                out.append(rng.uniform(-1.5, 1.5, shape) + 1j * rng.uniform(-1.5, 1.5, shape))
            elif dom == "spd":
                n = shape[-1]
                a = rng.standard_normal(shape)
                out.append(a @ np.swapaxes(a, -1, -2) + n * np.eye(n))
            elif dom == "nonzero":
                a = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
                out.append(a)
            else:
                lo, hi = DOMAINS[dom]
                if shape == "float":          # a plain Python float input
                    out.append(float(rng.uniform(lo, hi)))
                else:
                    out.append(rng.uniform(lo, hi, shape))
        return tuple(out)


def _shapes_unary(prim, fn, dom="real"):
    return [Case(prim, f"{prim}-{s}", fn, ((s, dom),)) for s in [(), (3,), (2, 3)]]


def _shapes_binary(prim, fn, dx="real", dy="real"):
    pairs = [((), ()), ((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3))]
    return [Case(prim, f"{prim}-{a}-{b}", fn, ((a, dx), (b, dy))) for a, b in pairs]


CASES = []
# ----- Elementwise -----
CASES += _shapes_binary("add", lambda x, y: x + y)
CASES += _shapes_binary("subtract", lambda x, y: x - y)
CASES += _shapes_binary("multiply", lambda x, y: x * y)
CASES += _shapes_binary("divide", lambda x, y: x / y, dy="nonzero")
CASES += _shapes_binary("power", lambda x, y: x ** y, dx="pos")
CASES += [Case("power", "power-int-exponent", lambda x: x ** 3, (((3,), "real"),)),
          Case("power", "power-float", lambda x: x ** 2.5, (("float", "pos"),)),
          # At y = 0 the mixed partial is 1/x (the convention d/dx x**0 = 0 must not leak).
          Case("power", "power-at-y0", lambda x, y: x ** y,
               (((3,), "pos"), ((3,), lambda rng, s: np.zeros(s)))),
          Case("power", "power-at-y1", lambda x, y: x ** y,
               (((3,), "pos"), ((3,), lambda rng, s: np.ones(s))))]
CASES += _shapes_binary("arctan2", np.arctan2, dx="nonzero", dy="nonzero")
CASES += _shapes_binary("hypot", np.hypot, dx="nonzero", dy="nonzero")
CASES += _shapes_binary("maximum", np.maximum)
CASES += _shapes_binary("minimum", np.minimum)
CASES += _shapes_binary("fmax", np.fmax)
CASES += _shapes_binary("fmin", np.fmin)
# a NaN operand: fmax/fmin give the other one, and so its derivative (was 0: maximum's rule)
_NAN = np.array([np.nan, 0.5, np.nan])
CASES += [Case("fmax", "fmax-nan", lambda x: np.fmax(x, _NAN) * np.fmax(_NAN[::-1], x),
               (((3,), "real"),)),
          Case("fmin", "fmin-nan", lambda x: np.fmin(_NAN, x) + np.fmin(x, -_NAN) ** 2,
               (((3,), "real"),))]
CASES += _shapes_unary("negative", lambda x: -x)
CASES += _shapes_unary("positive", np.positive)
CASES += _shapes_unary("absolute", np.abs, "nonzero")
CASES += _shapes_unary("exp", np.exp)
CASES += _shapes_unary("log", np.log, "pos")
CASES += _shapes_unary("log1p", np.log1p, "pos")
CASES += _shapes_unary("expm1", np.expm1)
CASES += _shapes_unary("sqrt", np.sqrt, "pos")
CASES += _shapes_unary("square", np.square)
CASES += _shapes_unary("reciprocal", np.reciprocal, "nonzero")
CASES += _shapes_unary("sin", np.sin)
CASES += _shapes_unary("cos", np.cos)
CASES += _shapes_unary("tan", np.tan, "unit")
CASES += _shapes_unary("arcsin", np.arcsin, "unit")
CASES += _shapes_unary("arccos", np.arccos, "unit")
CASES += _shapes_unary("arctan", np.arctan)
CASES += _shapes_unary("sinh", np.sinh)
CASES += _shapes_unary("cosh", np.cosh)
CASES += _shapes_unary("tanh", np.tanh)
CASES += _shapes_unary("relu", lambda x: _relu(x) * x, "nonzero")
CASES += [Case("where", "where", lambda x, y: np.where(x > 0, x * y, np.sin(y)),
               (((2, 3), "real"), ((3,), "real"))),
          Case("where", "clip", lambda x: np.clip(x, -0.5, 0.7) * x, (((4, 3), "real"),)),
          Case("where", "x.clip", lambda x: x.clip(-0.5) ** 2, (((5,), "real"),))]
# ----- Special functions -----
CASES += _shapes_unary("erf", sp.erf)
CASES += _shapes_unary("gammaln", sp.gammaln, "pos")
CASES += _shapes_unary("digamma", sp.digamma, "pos")
CASES += [Case("polygamma", "polygamma-1", lambda x: polygamma(1, x), (((3,), "pos"),)),
          Case("polygamma", "polygamma-2", lambda x: polygamma(2, x), (((), "pos"),))]
# ----- Reductions -----
for _name, _fn in [("sum", np.sum), ("prod", np.prod), ("max", np.max), ("min", np.min)]:
    CASES += [
        Case(_name, f"{_name}-all", lambda x, f=_fn: f(x), (((2, 3), "pos"),)),
        Case(_name, f"{_name}-axis0", lambda x, f=_fn: f(x, axis=0), (((3, 4), "pos"),)),
        Case(_name, f"{_name}-axis-1-keep", lambda x, f=_fn: f(x, axis=-1, keepdims=True),
             (((2, 3, 2), "pos"),)),
        Case(_name, f"{_name}-axes", lambda x, f=_fn: f(x, axis=(0, 2)), (((2, 3, 2), "pos"),)),
        Case(_name, f"{_name}-0d", lambda x, f=_fn: f(x), (((), "pos"),)),
    ]
CASES += [
    Case("prod", "prod-with-zero", lambda x: np.prod(x * np.array([1.0, 0.0, 1.0, 1.0]), axis=0),
         (((4,), "pos"),)),
    Case("sum", "mean", lambda x: np.mean(x, axis=1), (((3, 4), "real"),)),
    Case("sum", "var", lambda x: np.var(x, axis=0), (((5, 2), "real"),)),
    Case("sum", "std-ddof", lambda x: np.std(x, ddof=1), (((6,), "real"),)),
    Case("sum", "std-one-element", lambda x: np.std(x, axis=1) + np.std(x[0, 0]),
         (((3, 1), "real"),)),
    Case("sum", "nanstd-one-value", lambda x: np.nanstd(np.where([[1, 0], [1, 1]], x, np.nan),
                                                        axis=0), (((2, 2), "real"),)),
    Case("sum", "method-sum", lambda x: x.sum(axis=0) * x.mean(), (((3, 2), "real"),)),
]
# ----- Shape -----
CASES += [
    Case("reshape", "reshape", lambda x: np.reshape(x, (3, 2)) ** 2, (((2, 3), "real"),)),
    Case("reshape", "ravel-squeeze", lambda x: np.squeeze(x).ravel() * np.expand_dims(x, 0).sum(),
         (((1, 3), "real"),)),
    Case("transpose", "transpose", lambda x: np.transpose(x, (2, 0, 1)) * 2.0 + x.T.sum(),
         (((2, 3, 4), "real"),)),
    Case("transpose", "moveaxis", lambda x: np.sin(np.moveaxis(x, 0, -1)),
         (((2, 3, 4), "real"),)),
    Case("broadcast_to", "broadcast_to", lambda x: np.broadcast_to(x, (4, 3)) ** 2,
         (((3,), "real"),)),
    Case("getitem", "basic", lambda x: x[1:, ::2] ** 2 + x[0, -1], (((3, 4), "real"),)),
    Case("getitem", "advanced-repeat", lambda x: x[np.array([0, 2, 0])] * x[[1, 1, 2]],
         (((3, 2), "real"),)),
    Case("getitem", "boolean", lambda x: np.sin(x[np.array([True, False, True, True])]),
         (((4,), "real"),)),
    Case("getitem", "ellipsis-newaxis", lambda x: x[..., 1, None] * x[None, 0],
         (((2, 3), "real"),)),
    Case("getitem", "mixed", lambda x: x[:, [0, 2]] ** 2, (((2, 3), "real"),)),
    Case("index_add", "index_add", lambda x: (x[np.array([1, 1, 0])] ** 2).sum() * x,
         (((3,), "real"),)),
    Case("concatenate", "concatenate", lambda x, y: np.concatenate([x, y ** 2, x], axis=1),
         (((2, 2), "real"), ((2, 3), "real"))),
    Case("concatenate", "stack", lambda x, y: np.stack([x, np.sin(y)], axis=-1),
         (((3,), "real"), ((3,), "real"))),
    Case("concatenate", "hstack-vstack", lambda x: np.vstack([x, np.hstack([x[1:], x[:1]])]),
         (((3,), "real"),)),
    Case("astype", "astype", lambda x: x.astype(np.float64) * x,
         (((3,), "real"),)),
]
# ----- Linear algebra -----
CASES += [
    Case("matmul", "mat-mat", lambda a, b: a @ b, (((2, 3), "real"), ((3, 4), "real"))),
    Case("matmul", "mat-vec", lambda a, b: a @ b, (((2, 3), "real"), ((3,), "real"))),
    Case("matmul", "vec-mat", lambda a, b: np.matmul(a, b), (((3,), "real"), ((3, 2), "real"))),
    Case("matmul", "vec-vec", lambda a, b: np.dot(a, b), (((3,), "real"), ((3,), "real"))),
    Case("matmul", "stack-mat", lambda a, b: a @ b, (((2, 2, 3), "real"), ((3, 2), "real"))),
    Case("matmul", "outer", lambda a, b: np.outer(a, b), (((3,), "real"), ((2,), "real"))),
    Case("inv", "inv", lambda a: np.linalg.inv(a), (((3, 3), "spd"),)),
    Case("solve", "solve-vec", lambda a, b: np.linalg.solve(a, b), (((3, 3), "spd"), ((3,), "real"))),
    Case("solve", "solve-mat", lambda a, b: np.linalg.solve(a, b),
         (((3, 3), "spd"), ((3, 2), "real"))),
    Case("det", "det", lambda a: np.linalg.det(a), (((3, 3), "spd"),)),
    Case("logabsdet", "slogdet", lambda a: np.linalg.slogdet(a)[1], (((3, 3), "spd"),)),
    Case("sum", "norm-vec", lambda x: np.linalg.norm(x), (((4,), "nonzero"),)),
    Case("sum", "norm-fro-axis", lambda x: np.linalg.norm(x, axis=1), (((3, 2), "nonzero"),)),
    Case("sum", "norm-ord1-3", lambda x: np.linalg.norm(x, 1) + np.linalg.norm(x, 3),
         (((4,), "nonzero"),)),
]
# ----- Softmax family (stable primitives) -----
def _bce(p, y):
    from autodiff.nn.functional import bce_p         # (nn's primitive: imported late)
    return bce_p(p, y)


_probability = lambda rng, s: rng.uniform(0.1, 0.9, s)   # noqa: E731
CASES += [Case("binary_cross_entropy", "bce", _bce, (((2, 3), _probability), ((2, 3), "unit"))),
          Case("binary_cross_entropy", "bce-broadcast-target", _bce,
               (((3,), _probability), ((), _probability)))]
_sce = softmax_cross_entropy
CASES += [
    Case("softmax_cross_entropy", "sce-last", lambda x, y: _sce(x, y, axis=-1),
         (((3, 4), "real"), ((3, 4), "pos"))),
    Case("softmax_cross_entropy", "sce-axis1-large", lambda x, y: _sce(20.0 * x, y, axis=1),
         (((2, 3, 2), "real"), ((2, 3, 2), "pos"))),
    Case("linear", "linear-2d", lambda x, w, b: linear(x, w, b),
         (((4, 3), "real"), ((2, 3), "real"), ((2,), "real"))),
    Case("linear", "linear-3d", lambda x, w, b: linear(x, w, b),
         (((2, 4, 3), "real"), ((2, 3), "real"), ((2,), "real"))),
    Case("logsumexp", "logsumexp-all", lambda x: logsumexp(x), (((2, 3), "real"),)),
    Case("logsumexp", "logsumexp-axis-keep", lambda x: logsumexp(x * 30.0, axis=1, keepdims=True),
         (((3, 4), "real"),)),
    Case("logsumexp", "logsumexp-axis0", lambda x: logsumexp(x, axis=0), (((3, 2), "real"),)),
    Case("log_softmax", "log_softmax-last", lambda x: log_softmax(x, axis=-1), (((2, 4), "real"),)),
    Case("log_softmax", "log_softmax-large", lambda x: log_softmax(x * 50.0, axis=0),
         (((3, 2), "real"),)),
    Case("log_softmax", "softmax", lambda x: softmax(x, axis=1) * x, (((2, 3), "real"),)),
]

# ----- Convolution and pooling primitives (autodiff/ops/conv.py) -----
import cases_assembly  # noqa: E402
import cases_assign  # noqa: E402
import cases_complex  # noqa: E402
import cases_conv  # noqa: E402
import cases_fft  # noqa: E402
import cases_functional  # noqa: E402
import cases_linalg  # noqa: E402
import cases_scans  # noqa: E402
import cases_scipy  # noqa: E402
import cases_sparse  # noqa: E402
import cases_ufuncs  # noqa: E402

for _m in (cases_conv, cases_ufuncs, cases_scans, cases_assembly, cases_linalg, cases_fft,
           cases_scipy, cases_assign, cases_complex, cases_functional, cases_sparse):
    CASES += _m.make(Case)
