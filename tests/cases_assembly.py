"""Case-table entries for autodiff/ops/assembly.py: shape manipulation and array assembly.

All these functions are compositions of the shape primitives, so each case names the
primitive it mostly exercises. Many wrap the linear map in a nonlinearity (``** 2``,
``sin``) so the second-order checks differentiate the shape rules again. Functions that
return several arrays are joined (``_joined``) into one output. Sorting and the
order-statistic paddings draw well-separated values (``_separated``), so no perturbation of
the finite differences swaps two elements."""
import numpy as np


def _separated(rng, shape):
    """Distinct values at least 0.3 apart, in random order."""
    n = int(np.prod(shape, dtype=int))
    return (rng.permutation(n) * 0.5 - n * 0.25 + rng.uniform(-0.1, 0.1, n)).reshape(shape)


def _joined(parts):
    """Several outputs as one array, each piece weighted differently."""
    return np.concatenate([np.ravel(p) * (i + 1.0) for i, p in enumerate(parts)])


_MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False,
                                                                           False]])
_CHOICE = np.array([[0, 2, 1, 1], [2, 0, 0, 1], [1, 2, 2, 0]])


def make(Case):
    m, m3, v = ((3, 4), "real"), ((2, 3, 4), "real"), ((5,), "real")
    sq = lambda f: (lambda x: f(x) ** 2)  # noqa: E731
    return [
        # ----- Flips, rotations, rolls, axis permutations -----
        Case("getitem", "flip-none", sq(np.flip), (m3,)),
        Case("getitem", "flip-axis1", lambda x: np.sin(np.flip(x, 1)), (m3,)),
        Case("getitem", "flip-axes-neg", lambda x: np.flip(x, (0, -1)) * x, (m3,)),
        Case("getitem", "fliplr-flipud", lambda x: np.fliplr(x) * np.flipud(x), (m,)),
        Case("transpose", "rot90-k1", sq(np.rot90), (m,)),
        Case("transpose", "rot90-k3-axes", lambda x: np.rot90(x, 3, axes=(2, 0)), (m3,)),
        Case("getitem", "rot90-k2", lambda x: np.rot90(x, -2) * x, (m,)),
        Case("concatenate", "roll-none", sq(lambda x: np.roll(x, 5)), (m,)),
        Case("concatenate", "roll-axis-neg", lambda x: np.roll(x, -1, axis=-1) * x, (m3,)),
        Case("concatenate", "roll-tuple", lambda x: np.sin(np.roll(x, (1, 2, 1), axis=(0, 2, 0))),
             (m3,)),
        Case("transpose", "rollaxis", lambda x: np.rollaxis(x, -1, 1) ** 2, (m3,)),
        Case("transpose", "moveaxis-tuple", lambda x: np.moveaxis(x, (0, -1), (-1, 0)) ** 2,
             (m3,)),
        Case("transpose", "swapaxes-neg", lambda x: np.swapaxes(x, -1, 0) ** 2, (m3,)),
        Case("transpose", "permute_dims", lambda x: np.permute_dims(x, (1, 2, 0)) ** 2, (m3,)),
        Case("transpose", "matrix_transpose", lambda x: np.matrix_transpose(x) ** 2, (m3,)),
        # ----- Tiling, repeating, resizing -----
        Case("broadcast_to", "tile-int", sq(lambda x: np.tile(x, 2)), (m,)),
        Case("broadcast_to", "tile-promote", lambda x: np.tile(x, (2, 1, 3)) * 2.0, (v,)),
        Case("broadcast_to", "tile-0d", lambda x: np.sin(np.tile(x, (2, 2))), (((), "real"),)),
        Case("broadcast_to", "repeat-none", sq(lambda x: np.repeat(x, 2)), (m,)),
        Case("broadcast_to", "repeat-axis-neg", lambda x: np.repeat(x, 3, axis=-1) ** 2, (m3,)),
        Case("getitem", "repeat-per-element", lambda x: np.repeat(x, [2, 0, 1], axis=0) ** 2,
             (m,)),
        Case("getitem", "resize", sq(lambda x: np.resize(x, (3, 5))), (((2, 3), "real"),)),
        # ----- Padding -----
        Case("index_add", "pad-constant", sq(lambda x: np.pad(x, 1)), (m,)),
        Case("index_add", "pad-constant-values",
             lambda x: np.pad(x, ((1, 2), (0, 1)), constant_values=((1.0, 2.0), (3.0, 4.0))) * x.sum(),
             (m,)),
        Case("concatenate", "pad-constant-tracked",
             # NumPy dispatches np.pad on its first argument only: keep it tracked.
             lambda x, c: np.pad(x + c[0, 0], ((1, 0), (2, 1)), constant_values=c) ** 2,
             (m, ((2, 2), "real"))),
        Case("getitem", "pad-edge", sq(lambda x: np.pad(x, (2, 1), mode="edge")), (m,)),
        Case("getitem", "pad-reflect", sq(lambda x: np.pad(x, ((1, 2), (3, 2)), mode="reflect")),
             (m,)),
        Case("getitem", "pad-reflect-large", lambda x: np.pad(x, 5, mode="reflect") * 3.0, (v,)),
        Case("getitem", "pad-symmetric",
             sq(lambda x: np.pad(x, {-1: (2, 3)}, mode="symmetric")), (m3,)),
        Case("getitem", "pad-wrap", sq(lambda x: np.pad(x, ((0, 2), (5, 1)), mode="wrap")), (m,)),
        Case("matmul", "pad-reflect-odd",
             sq(lambda x: np.pad(x, ((1, 4), (2, 1)), mode="reflect", reflect_type="odd")), (m,)),
        Case("sum", "pad-mean", sq(lambda x: np.pad(x, ((1, 1), (2, 0)), mode="mean",
                                                   stat_length=2)), (m,)),
        Case("max", "pad-maximum", sq(lambda x: np.pad(x, 2, mode="maximum")), (((3, 3), _separated),)),
        Case("concatenate", "pad-linear-ramp",
             sq(lambda x: np.pad(x, ((2, 1), (1, 3)), mode="linear_ramp", end_values=(1.0, -1.0))),
             (m,)),
        # ----- Triangles and diagonals -----
        Case("where", "triu-k", sq(lambda x: np.triu(x, 1)), (m,)),
        Case("where", "tril-neg-k-stack", sq(lambda x: np.tril(x, -1)), (m3,)),
        Case("where", "tril-1d", lambda x: np.tril(x) * 2.0, (v,)),
        Case("index_add", "diag-vector-k", sq(lambda x: np.diag(x, 1)), (v,)),
        Case("index_add", "diag-vector-neg-k", lambda x: np.diag(x, -2) * 2.0, (((3,), "real"),)),
        Case("getitem", "diag-matrix", lambda x: np.diag(x, -1) ** 2, (m,)),
        Case("index_add", "diagflat", lambda x: np.diagflat(x ** 2, 1), (((2, 2), "real"),)),
        Case("getitem", "diagonal-offset", lambda x: np.diagonal(x, 1) ** 2, (m3,)),
        Case("getitem", "diagonal-axes", lambda x: np.diagonal(x, -1, axis1=-1, axis2=0) ** 2,
             (m3,)),
        Case("getitem", "trace", lambda x: np.trace(x) * np.trace(x, 1), (m,)),
        Case("getitem", "trace-axes", lambda x: np.trace(x ** 2, 0, 2, 1), (m3,)),
        # ----- Splitting -----
        Case("getitem", "split-sections", lambda x: _joined(np.split(x ** 2, 2, axis=-1)), (m3,)),
        Case("getitem", "split-indices", lambda x: _joined(np.split(x, [1, 3, 10], axis=1)), (m,)),
        Case("getitem", "array_split-uneven", lambda x: _joined(np.array_split(x ** 2, 3)), (v,)),
        Case("getitem", "hsplit-vsplit-dsplit",
             lambda x: _joined(np.hsplit(x, [1]) + np.vsplit(x, 2) + np.dsplit(x, 2)), (m3,)),
        Case("getitem", "unstack", lambda x: _joined(np.unstack(np.sin(x), axis=-1)), (m3,)),
        # ----- Joining -----
        Case("concatenate", "dstack", lambda x, y: np.dstack([x, y ** 2]), (m, m)),
        Case("concatenate", "dstack-1d", lambda x: np.dstack([x, x ** 2]), (v,)),
        Case("concatenate", "column_stack", lambda x, y: np.column_stack([x, y ** 2, x[:3]]) ** 2,
             (((3,), "real"), ((3, 2), "real"))),
        Case("concatenate", "hstack-0d", lambda x: np.hstack([x, x ** 2, 1.0]), (((), "real"),)),
        Case("concatenate", "hstack-2d", lambda x: np.hstack([x, x ** 2]), (m,)),
        Case("concatenate", "vstack-0d-1d", lambda x, y: np.vstack([x, y ** 2]) ** 2,
             (((), "real"), ((1,), "real"))),
        Case("concatenate", "vstack-2d", lambda x: np.vstack([x, x[:1] ** 2, [1.0] * 4]), (m,)),
        Case("concatenate", "block", lambda x, y: np.block([[x, y ** 2], [y, x]]) ** 2,
             (((2, 2), "real"), ((2, 2), "real"))),
        Case("concatenate", "block-promote", lambda x: np.block([[x], [x[0] ** 2]]) * 2.0,
             (((2, 3), "real"),)),
        Case("concatenate", "concat-none", lambda x, y: np.concat([x, y ** 2], axis=None),
             (m, v)),
        Case("concatenate", "append-none", lambda x, y: np.append(x, y) ** 2, (m, v)),
        Case("concatenate", "append-axis", lambda x: np.append(x, x[:1] ** 2, axis=0), (m,)),
        Case("getitem", "insert-scalar-obj", lambda x, y: np.insert(x, 1, y, axis=1) ** 2,
             (m, ((3,), "real"))),
        Case("getitem", "insert-broadcast",
             lambda x, y: np.insert(x, [0, 2, 2], y, axis=0) ** 2, (m, ((4,), "real"))),
        Case("getitem", "insert-none", lambda x: np.insert(x, [1, 5], 7.0) ** 2, (m,)),
        Case("getitem", "delete", lambda x: np.delete(x, [0, 2], axis=-1) ** 2, (m,)),
        Case("getitem", "delete-none", lambda x: np.delete(x, slice(1, None, 3)) ** 2, (m,)),
        # ----- Selecting by index -----
        Case("getitem", "take-none", lambda x: np.take(x, [[0, 5], [11, 5]]) ** 2, (m,)),
        Case("getitem", "take-axis", lambda x: np.take(x, [3, 0, 3], axis=1) ** 2, (m,)),
        Case("getitem", "take-neg-axis-wrap",
             lambda x: np.take(x, [5, -1], axis=-2, mode="wrap") ** 2, (m3,)),
        Case("getitem", "take_along_axis",
             lambda x: np.take_along_axis(x, np.array([[[2], [0], [2]]]), axis=1) ** 2, (m3,)),
        Case("getitem", "take_along_axis-none",
             lambda x: np.take_along_axis(x, np.array([3, 1, 1]), axis=None) ** 2, (m,)),
        Case("getitem", "sort-last", sq(np.sort), (((2, 3, 4), _separated),)),
        Case("getitem", "sort-axis0", lambda x: np.sort(x, axis=0) * np.arange(4.0),
             (((3, 4), _separated),)),
        Case("getitem", "sort-none", lambda x: np.sin(np.sort(x, axis=None)),
             (((2, 3), _separated),)),
        Case("getitem", "partition", lambda x: np.partition(x, 1, axis=-1)[..., 1] ** 2,
             (((3, 4), _separated),)),
        Case("getitem", "partition-none", lambda x: np.partition(x, (0, 3), axis=None)[:4] ** 2,
             (((2, 3), _separated),)),
        Case("getitem", "compress", lambda x: np.compress([True, False, True], x, axis=-1) ** 2,
             (m,)),
        Case("getitem", "compress-none", lambda x: np.compress([0, 1, 1, 0, 1], x) ** 2, (m,)),
        Case("getitem", "extract", lambda x: np.extract(_MASK, x) ** 2, (m,)),
        Case("getitem", "trim_zeros",
             lambda x: np.trim_zeros(x * np.array([0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0])) ** 2,
             (((7,), "pos"),)),
        Case("getitem", "trim_zeros-2d-axis",
             lambda x: np.trim_zeros(x * np.array([[0.0, 1.0, 1.0, 0.0]]), "b", axis=-1) ** 2,
             (m,)),
        # ----- Selecting by condition -----
        # NumPy dispatches np.select on the conditions and choices only: keep one tracked.
        Case("where", "select",
             lambda x, y, d: np.select([_MASK, ~_MASK[0]], [x, y * d], d) ** 2,
             (m, ((4,), "real"), ((), "real"))),
        Case("where", "select-plain-default", lambda x: np.select([_MASK], [np.sin(x)]), (m,)),
        Case("where", "choose", lambda x, y: np.choose(_CHOICE, [x, y, 1.0]) ** 2,
             (m, ((4,), "real"))),
        Case("where", "choose-array", lambda x: np.choose(_CHOICE + 3, x, mode="wrap") ** 2,
             (((3, 3, 4), "real"),)),
        # ----- Grids and broadcasting -----
        Case("broadcast_to", "meshgrid-xy", lambda x, y: _joined(np.meshgrid(x, y ** 2)),
             (((3,), "real"), ((2,), "real"))),
        Case("broadcast_to", "meshgrid-ij-sparse",
             lambda x, y: _joined(np.meshgrid(x, y, x, indexing="ij", sparse=True)) ** 2,
             (((3,), "real"), ((2, 1), "real"))),
        Case("reshape", "atleast_nd",
             lambda x, y: _joined((np.atleast_1d(x),) + np.atleast_2d(x, y) + np.atleast_3d(x, y))
             ** 2, (((), "real"), ((3,), "real"))),
        Case("broadcast_to", "broadcast_arrays",
             lambda x, y: _joined(np.broadcast_arrays(x, y, 1.0)) ** 2,
             (((3, 1), "real"), ((2,), "real"))),
        # np.full dispatches through like= only; ops/assign.py builds it (zeros + fill).
        Case("add", "full-tracked-fill", lambda x: np.full((2, 3), x, like=x) ** 2,
             (((1,), "real"),)),
        Case("add", "full-row-fill", lambda x: np.full((2, 3), x, like=x) * x, (((3,), "real"),)),
        # ----- Ranges with tracked ends -----
        Case("where", "linspace", lambda a, b: np.linspace(a, b, 5) ** 2,
             (((), "real"), ((), "real"))),
        Case("where", "linspace-arrays-axis", lambda a, b: np.linspace(a, b, 4, axis=-1) ** 2,
             (((2,), "real"), ((3, 1), "real"))),
        Case("multiply", "linspace-no-endpoint-step",
             lambda a, b: _joined(np.linspace(a, b, 3, endpoint=False, retstep=True)) ** 2,
             (((), "real"), ((), "real"))),
        Case("power", "logspace", lambda a, b: np.logspace(a, b, 4, base=2.0),
             (((), "unit"), ((2,), "unit"))),
        Case("power", "logspace-array-base", lambda a, b: np.logspace(a, 1.0, 3, base=b, axis=-1),
             (((2,), "unit"), ((2,), "pos"))),
        Case("exp", "geomspace", lambda a, b: np.geomspace(a, b, 4), (((), "pos"), ((2,), "pos"))),
        Case("exp", "geomspace-negative-axis",
             lambda a: np.geomspace(-a, -3.0, 3, endpoint=False, axis=-1), (((2,), "pos"),)),
        # ----- Sets: values are input elements; duplicates and matches are built from the
        # same tracked elements, so perturbations keep them -----
        Case("getitem", "unique", lambda x: np.unique(_dup(x)) ** 2, (v,)),
        Case("getitem", "unique-all-outputs",
             lambda x: np.unique(_dup(x), return_index=True, return_inverse=True,
                                 return_counts=True)[0] * np.arange(1.0, 6.0), (v,)),
        Case("getitem", "unique-axis0",
             lambda x: np.sin(np.unique(np.concatenate([x, x[:1], x[1:]]), axis=0)), (m,)),
        Case("getitem", "unique-values-all",
             lambda x: _joined([np.unique_values(_dup(x)), np.unique_all(_dup(x)).values,
                                np.unique_counts(_dup(x)).values,
                                np.unique_inverse(_dup(x)).values]), (v,)),
        Case("getitem", "union1d", lambda x, y: np.union1d(x, np.concatenate([y, x[:2]])) ** 2,
             (v, ((3,), "real"))),
        Case("getitem", "intersect1d", lambda x, y: np.intersect1d(np.concatenate([x, y]), y[1:])
             * 3.0, (v, ((3,), "real"))),
        Case("getitem", "setdiff1d", lambda x: np.sin(np.setdiff1d(x, x[1:3])), (v,)),
        Case("getitem", "setdiff1d-unique", lambda x: np.setdiff1d(x, x[1:3], assume_unique=True)
             ** 2, (v,)),
        Case("getitem", "setxor1d", lambda x, y: np.setxor1d(x, np.concatenate([y, x[:2]])) ** 2,
             (v, ((3,), "real"))),
        Case("getitem", "sort_complex", lambda x: np.sort_complex(x) ** 2,
             (((2, 4), _separated),)),
    ]


def _dup(x):
    """``x`` with its first two elements repeated: duplicates that move together."""
    return np.concatenate([x[3:], x, x[:2]])
