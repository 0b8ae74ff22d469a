"""Seam blocks for NumPy and nn features added after the fuzzer's core (imported by
seams.py): ``fmax``/``fmin`` with NaN constants, ``median``, ``ufunc.outer`` and
``ufunc.at``, a wide ``qr``, ``cholesky(upper=True)``, ``np.put`` with negative indices,
``nn.functional.binary_cross_entropy`` and OrderedDict/defaultdict pytrees under an inner
``grad``; PyTorch's scatter methods on tracked values, ``F.pad``'s modes,
``F.embedding_bag``, ``F.ctc_loss``, ``F.local_response_norm``, ``F.conv3d``,
``F.max_pool3d`` and ``F.bilinear``. In random programs every transform, nesting,
batching, dtype and exception seam the fuzzer checks runs through them. Each reference is the same mathematics on plain
values (NumPy's own call where NumPy has it), whose central differences are the true
derivatives."""
import collections

import numpy as np

import autodiff as ad
from autodiff.boxes import Box
from autodiff.nn import functional as F
from seams import _const, _size, register_block


def _fmax_fmin_block(rng, shapes, dtype):
    """``np.fmax(y, c)`` / ``np.fmin(c, y)`` with NaN among the constants: a NaN side
    yields the other, so its derivative goes wholly to ``y`` there."""
    shape = shapes[-1]
    c = _const(rng, shape, dtype)
    c[rng.random(shape) < 0.4] = np.nan
    op = (np.fmax, np.fmin)[int(rng.integers(2))]
    swap = bool(rng.integers(2))

    def f(env):
        return op(c, env[-1]) if swap else op(env[-1], c)
    return f, f


def _median_block(rng, shapes, dtype):
    """``np.median`` over all entries or one axis (an even count averages the two middle
    entries: the derivative is split between them), of the value plus distinct offsets: at
    tied entries (an all-zero input) the median is odd and homogeneous along every line
    through the point, so the fuzzer could not tell the kink there from a smooth point."""
    shape = shapes[-1]
    if _size(shape) == 0:
        return None
    axis = None if not shape or rng.integers(2) else int(rng.integers(-len(shape), len(shape)))
    keep = bool(rng.integers(2))
    c = _const(rng, shape, dtype)

    def f(env):
        return np.median(env[-1] + c, axis=axis, keepdims=keep)
    return f, f


def _ufunc_outer_block(rng, shapes, dtype):
    """``ufunc.outer`` of the value with a constant vector (or with itself)."""
    n = _size(shapes[-1])
    if n > 6:
        return None
    op = (np.multiply, np.add, np.subtract)[int(rng.integers(3))]
    c = _const(rng, (2,), dtype)
    own = bool(rng.integers(2))

    def f(env):
        y = np.reshape(env[-1], -1)
        return op.outer(y, y) if own else op.outer(c, np.sin(y))
    return f, f


def _ufunc_at_block(rng, shapes, dtype):
    """``np.add.at`` / ``np.multiply.at`` with repeated indices into a tracked array (the
    unbuffered update: repeats accumulate)."""
    n = _size(shapes[-1])
    if n == 0:
        return None
    idx = rng.integers(-n, n, size=int(rng.integers(1, 5)))
    op = (np.add, np.multiply)[int(rng.integers(2))]

    def f(env):
        y = np.reshape(env[-1], -1)
        z = y * 1.0
        op.at(z, idx, np.cos(y[: len(idx)]) if len(idx) <= n else 0.5)
        return z
    return f, f


def _qr_wide_block(rng, shapes, dtype):
    """``Q, R = qr(M)`` of a wide matrix (rows < columns) built from the value: R's leading
    square block is invertible, Householder's signs stay fixed nearby."""
    n = _size(shapes[-1])
    if n == 0 or n > 8:
        return None
    m = 2
    k = max(3, -(-n // m) + 1)
    B = _const(rng, (m, k), dtype)
    B[:, :m] += 2.0 * np.eye(m, dtype=dtype)
    P = _const(rng, (m * k, n), dtype, -0.3, 0.3)

    def f(env):
        M = B + np.reshape(P @ np.reshape(env[-1], -1), (m, k))
        Q, R = np.linalg.qr(M)
        return np.concatenate([np.ravel(Q), np.ravel(R)])
    return f, f


def _cholesky_upper_block(rng, shapes, dtype):
    """``cholesky(A, upper=True)`` (NumPy 2's keyword): ``U`` with ``Uᴴ U = A`` for
    ``A = S Sᵀ + 3 I``, S built from the value."""
    n = _size(shapes[-1])
    if n > 9:
        return None
    m = 3
    P = _const(rng, (m * m, n), dtype, -0.4, 0.4)

    def f(env):
        S = np.reshape(P @ np.reshape(env[-1], -1), (m, m))
        return np.linalg.cholesky(S @ S.T + 3.0 * np.eye(m, dtype=dtype), upper=True)
    return f, f


def _put_negative_block(rng, shapes, dtype):
    """``np.put(z, ind, v)`` with negative indices (counted from the end, as NumPy's), the
    last write to a repeated index winning."""
    n = _size(shapes[-1])
    if n < 2:
        return None
    ind = rng.integers(-n, 0, size=int(rng.integers(1, 4)))

    def f(env):
        y = np.reshape(env[-1], -1)
        z = np.zeros_like(y) + y
        np.put(z, ind, np.sin(y[: len(ind)]) if len(ind) <= n else y[0])
        return z * y
    return f, f


def _binary_cross_entropy_block(rng, shapes, dtype):
    """``nn.functional.binary_cross_entropy(sigmoid(y), t)`` with soft targets, each
    reduction; the reference is PyTorch's formula (its log clamped at -100)."""
    shape = shapes[-1]
    t = _const(rng, shape, dtype, 0.0, 1.0)
    red = ("mean", "sum", "none")[int(rng.integers(3))]
    if red == "mean" and _size(shape) == 0:
        return None
    one = np.dtype(dtype).type(1.0)

    def fn(env):
        p = one / (one + np.exp(-env[-1]))
        return F.binary_cross_entropy(p, t, reduction=red)

    def ref(env):
        p = one / (one + np.exp(-env[-1]))
        e = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))
        return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[red](e)
    return fn, ref


def _mapping_tree_block(rng, shapes, dtype):
    """An inner ``grad`` over an OrderedDict (its keys' order kept, not sorted) or a
    defaultdict (sorted as a dict's, its factory kept: JAX's flattening); each gradient must
    come back to its own key."""
    c = _const(rng, shapes[-1], dtype)
    ordered = bool(rng.integers(2))

    def loss(d):
        return np.sum(np.sin(d["z"]) * d["a"]) + np.sum(d["a"] ** 2)

    g = ad.grad(loss)

    def fn(env):
        y = env[-1]
        d = (collections.OrderedDict([("z", y), ("a", c)]) if ordered
             else collections.defaultdict(list, [("z", y), ("a", c)]))
        out = g(d)
        assert type(out) is type(d) and list(out) == (["z", "a"] if ordered else ["a", "z"])
        assert ordered or out.default_factory is list
        return out["z"] * y + out["a"]

    def ref(env):
        y = env[-1]
        return np.cos(y) * c * y + (np.sin(y) + 2 * c)
    return fn, ref


def _torch_scatter_block(rng, shapes, dtype):
    """PyTorch's ``index_add``, ``scatter_add``, ``scatter_reduce('amax')``, ``index_put``
    (accumulating) and ``masked_scatter`` on the flattened value; the reference writes with
    ``np.add.at``/``np.maximum.at``/a mask. On a plain array (no method) it is the
    reference itself."""
    n = _size(shapes[-1])
    if n < 2:
        return None
    k = int(rng.integers(1, min(n, 4) + 1))
    idx = rng.integers(0, n, size=k)
    mask = rng.random(n) < 0.5
    which = int(rng.integers(5))

    def ref(env):
        y = np.reshape(env[-1], -1)
        src = np.sin(y[:k])
        out = np.array(y, copy=True)
        if which == 3:
            out = np.maximum(out, -1.0)          # the same clip as fn's, then amax
            np.maximum.at(out, idx, src)
            return out
        if which == 4:
            out[mask] = np.cos(y)[: int(mask.sum())]
            return out * y
        np.add.at(out, idx, src)
        return out

    def fn(env):
        y = env[-1]
        if not isinstance(y, Box):
            return ref(env)
        y = np.reshape(y, -1)
        src = np.sin(y[:k])
        if which == 0:
            return y.index_add(0, idx, src)
        if which == 1:
            return y.scatter_add(0, idx, src)
        if which == 2:
            return (y * 1.0).index_put_((idx,), src, accumulate=True)
        if which == 3:
            return np.maximum(y, -1.0).scatter_reduce(0, idx, src, "amax")
        return y.masked_scatter(mask, np.cos(y)) * y
    return fn, ref


def _pad_modes_block(rng, shapes, dtype):
    """``F.pad`` of the value as a 2-d array in each mode (reflection below the size)."""
    n = _size(shapes[-1])
    if n < 2:
        return None
    if n > 6:
        return None
    mode = ("constant", "reflect", "replicate", "circular")[int(rng.integers(4))]
    r = int(rng.integers(1, n))
    pads = tuple(int(p) for p in rng.integers(0, 2, size=4))       # the result stays small
    if mode == "reflect" and r == 1:
        pads = pads[:2] + (0, 0)
    if mode == "reflect" and n // r == 1:
        pads = (0, 0) + pads[2:]

    def f(env):
        y = np.reshape(np.reshape(env[-1], -1)[: r * (n // r)], (r, n // r))
        return F.pad(y, pads, mode, 0.5 if mode == "constant" else None)
    return f, f


def _embedding_bag_block(rng, shapes, dtype):
    """``F.embedding_bag`` with the value as the table (rows of 2, or 1), bags given by
    offsets (one may be empty) and a mode; the reference sums, averages or maximises the
    rows bag by bag."""
    n = _size(shapes[-1])
    if n < 2:
        return None
    d = 2 if n % 2 == 0 else 1
    rows = n // d
    idx = rng.integers(0, rows, size=int(rng.integers(1, 6)))
    cuts = np.sort(rng.integers(0, len(idx) + 1, size=int(rng.integers(0, 3))))
    offsets = np.concatenate([[0], cuts]).astype(np.int64)
    mode = ("sum", "mean", "max")[int(rng.integers(3))]

    def fn(env):
        return F.embedding_bag(idx, np.reshape(env[-1], (rows, d)), offsets, mode=mode)

    def ref(env):
        W = np.reshape(env[-1], (rows, d))
        ends = np.append(offsets[1:], len(idx))
        red = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
        return np.stack([red(W[idx[a:b]], axis=0) if b > a else np.zeros(d, W.dtype)
                         for a, b in zip(offsets, ends)])
    return fn, ref


def _ctc_block(rng, shapes, dtype):
    """``F.ctc_loss`` of log-softmax scores A·y (T frames, C classes) against a target
    (repeats included); sum or none reduction of one, or mean of two samples."""
    n = _size(shapes[-1])
    if n == 0 or n > 12:
        return None
    T, C, N = int(rng.integers(3, 6)), 3, int(rng.integers(1, 3))
    A = _const(rng, (T * N * C, n), dtype)
    S = int(rng.integers(1, 3))
    targets = rng.integers(1, C, size=(N, S))
    red = ("sum", "mean", "none")[int(rng.integers(3))]

    def f(env):
        z = np.reshape(A @ np.reshape(env[-1], -1), (T, N, C))
        return F.ctc_loss(F.log_softmax(z, 2), targets, [T] * N, [S] * N, reduction=red)
    return f, f


def _local_response_norm_block(rng, shapes, dtype):
    """``F.local_response_norm`` of the value as (1, C, L) channels."""
    n = _size(shapes[-1])
    if n < 2:
        return None
    c = int(rng.integers(2, n + 1))
    size = int(rng.integers(1, 4))

    def f(env):
        y = np.reshape(np.reshape(env[-1], -1)[: c * (n // c)], (1, c, n // c))
        return F.local_response_norm(y, size, alpha=0.5, beta=0.75, k=1.0)
    return f, f


def _conv3d_block(rng, shapes, dtype):
    """``F.conv3d`` of the value as a (1, 1, D, H, W) volume (padding 1, a 2×2×2 kernel),
    then ``F.max_pool3d`` of it plus distinct offsets (ties are kinks), or ``F.bilinear`` of
    the flat value with itself."""
    n = _size(shapes[-1])
    if n < 2 or n > 8:
        return None
    which = int(rng.integers(3))
    if which == 2:
        W = _const(rng, (2, n, n), dtype)
        c = _const(rng, (2,), dtype)

        def f(env):
            y = np.reshape(env[-1], -1)
            return F.bilinear(y, np.sin(y), W, c)
        return f, f
    dims = (1, 1, 2, 1, n // 2) if n % 2 == 0 else (1, 1, 1, 1, n)
    w = _const(rng, (2, 1, 2, 2, 2), dtype)
    off = _const(rng, (1, 2, dims[2] + 1, dims[3] + 1, dims[4] + 1), dtype, -2.0, 2.0)

    def f(env):
        y = F.conv3d(np.reshape(env[-1], dims), w, padding=1)
        y = y if which == 0 else F.max_pool3d(y + off, 2, stride=1)
        return np.reshape(y, -1)[:12]           # (the fuzzer's values: 3-d at most, small)
    return f, f


BLOCKS = [register_block("fmax_fmin_nan", _fmax_fmin_block),
          register_block("median", _median_block),
          register_block("ufunc_outer", _ufunc_outer_block),
          register_block("ufunc_at", _ufunc_at_block),
          register_block("qr_wide", _qr_wide_block),
          register_block("cholesky_upper", _cholesky_upper_block),
          register_block("put_negative", _put_negative_block),
          register_block("binary_cross_entropy", _binary_cross_entropy_block),
          register_block("ordered_mapping_tree", _mapping_tree_block),
          register_block("torch_scatter_methods", _torch_scatter_block),
          register_block("pad_modes", _pad_modes_block),
          register_block("embedding_bag", _embedding_bag_block),
          register_block("ctc_loss", _ctc_block),
          register_block("local_response_norm", _local_response_norm_block),
          register_block("conv3d_pool3d_bilinear", _conv3d_block)]
