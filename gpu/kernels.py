"""Every Numba call of autodiff.gpu: device buffers, the memory pool, and the kernels.

numba-cuda is in maintenance mode; moving to its successor is this module's work alone.
The rest of ``gpu/`` sees flat 1-D device buffers and the functions below, never Numba.

The kernels follow the numba-cuda documentation's shape: each writes into an output
buffer, takes its index from ``cuda.grid``, checks bounds, and is launched with a ceiling
division of the element count by the block size. Scalar math lives in
``cuda.jit(device=True)`` functions generated from one table (``SCALAR``) and dropped into
a few templates: map (1-3 inputs, broadcasting through element strides), a grid-stride
two-pass reduction, a register-blocked tiled matmul (batched), gather/scatter for
indexing, and a row-wise arg-extremum.
"""
import math  # noqa: F401  (the generated device functions call math.*)
import os
import re

import numpy as np
from numba import cuda, from_dtype

__all__ = ["SIMULATOR", "TPB", "is_available", "synchronize", "empty", "to_device",
           "to_host", "map_kernel", "reduce_rows", "arg_rows", "matmul", "gather",
           "scatter", "SCALAR", "pool_stats", "pool_clear"]

#: Numba's CUDA simulator runs one Python thread per CUDA thread: small blocks keep it quick
#: while a few dozen elements still span several blocks.
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"
TPB = 4 if SIMULATOR else 256
#: Grid-stride kernels launch at most this many blocks (the simulator pays per block), and
#: a reduction at most MAX_PARTS blocks per row before its second pass.
MAX_BLOCKS = 2 if SIMULATOR else 32768
MAX_PARTS = 2 if SIMULATOR else 1024


def is_available():
    """True on a CUDA GPU and under the simulator."""
    try:
        return bool(cuda.is_available())
    except Exception:       # no driver at all
        return False


def synchronize():
    """Wait until every launched kernel has finished."""
    cuda.synchronize()


# ----- Memory pool -----
# numba-cuda frees each device array at once (cuMemFree); a tape makes and drops many
# temporaries of a few sizes, so freed buffers go to free lists by (size, dtype) instead.
_free = {}
_cached = [0]
POOL_LIMIT = 8 << 30        # bytes kept in the free lists at most


class Buffer:
    """A flat device buffer; when dropped, its memory goes back to the pool."""
    __slots__ = ("data", "key", "__weakref__")

    def __init__(self, data, key):
        self.data = data
        self.key = key

    def __del__(self):
        try:
            nbytes = self.key[0] * np.dtype(self.key[1]).itemsize
            if _cached[0] + nbytes <= POOL_LIMIT:
                _free.setdefault(self.key, []).append(self.data)
                _cached[0] += nbytes
        except Exception:    # interpreter shutdown
            pass


def empty(n, dtype):
    """An uninitialised flat buffer of ``n`` elements, from the pool when one is free."""
    dtype = np.dtype(dtype)
    key = (int(n), dtype.str)
    lst = _free.get(key)
    if lst:
        _cached[0] -= int(n) * dtype.itemsize
        return Buffer(lst.pop(), key)
    return Buffer(cuda.device_array(max(int(n), 1), dtype=dtype), key)


def pool_stats():
    """(number of cached buffers, cached bytes)."""
    return sum(len(v) for v in _free.values()), _cached[0]


def pool_clear():
    _free.clear()
    _cached[0] = 0


def to_device(a):
    """A host array as a flat device buffer (C order)."""
    a = np.ascontiguousarray(a).reshape(-1)
    buf = empty(a.size, a.dtype)
    if a.size:
        buf.data.copy_to_device(a)
    return buf


def to_host(buf, n):
    """The first ``n`` elements of a flat buffer as a host array."""
    if n == 0:
        return np.empty(0, dtype=np.dtype(buf.key[1]))
    return buf.data.copy_to_host()[:n]


def _blocks(n):
    """Ceiling division (one thread per element), capped: the kernels stride over the rest."""
    return max(1, min(-(-n // TPB), MAX_BLOCKS))


# ----- Scalar functions: one table, one device function each -----
#: name -> expression in x (unary), x, y (binary) or c, x, y (ternary). NumPy's semantics
#: (NaN propagation of maximum, sign of NaN, ...) are written out where math differs.
SCALAR = {
    # unary
    "negative": "-x", "positive": "x", "absolute": "abs(x)", "fabs": "abs(x)",
    "exp": "math.exp(x)", "expm1": "math.expm1(x)", "exp2": "2.0 ** x",
    "log": "math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)",
    "log2": "math.log2(x) if x > 0 else (-math.inf if x == 0 else math.nan)",
    "log10": "math.log10(x) if x > 0 else (-math.inf if x == 0 else math.nan)",
    "log1p": "math.log1p(x) if x > -1 else (-math.inf if x == -1 else math.nan)",
    "sqrt": "math.sqrt(x) if x >= 0 else math.nan", "square": "x * x",
    "reciprocal": "1.0 / x", "cbrt": "math.copysign(abs(x) ** (1.0 / 3.0), x)",
    "sin": "math.sin(x)", "cos": "math.cos(x)", "tan": "math.tan(x)",
    "arcsin": "math.asin(x) if -1 <= x <= 1 else math.nan",
    "arccos": "math.acos(x) if -1 <= x <= 1 else math.nan", "arctan": "math.atan(x)",
    "sinh": "math.sinh(x)", "cosh": "math.cosh(x)", "tanh": "math.tanh(x)",
    "arcsinh": "math.asinh(x)", "arccosh": "math.acosh(x) if x >= 1 else math.nan",
    "arctanh": "math.atanh(x) if -1 < x < 1 else "
               "(math.copysign(math.inf, x) if abs(x) == 1 else math.nan)",
    "sign": "x if x != x else (1 if x > 0 else (-1 if x < 0 else 0))",
    "floor": "math.floor(x)", "ceil": "math.ceil(x)", "trunc": "math.trunc(x)",
    "rint": "x - math.remainder(x, 1.0)", "isnan": "x != x",
    "isinf": "abs(x) == math.inf", "isfinite": "abs(x) < math.inf",
    "logical_not": "not x", "signbit": "math.copysign(1.0, x) < 0",
    "erf": "math.erf(x)", "erfc": "math.erfc(x)", "gammaln": "math.lgamma(x)",
    "identity": "x", "deg2rad": "x * 0.017453292519943295",
    "rad2deg": "x * 57.29577951308232", "conjugate": "x",
    "radians": "x * 0.017453292519943295", "degrees": "x * 57.29577951308232",
    # binary
    "add": "x + y", "subtract": "x - y", "multiply": "x * y",
    "divide": "x / y if y != 0 else (math.nan if x == 0 or x != x else "
              "math.copysign(math.inf, x) * math.copysign(1.0, y))",
    "power": "x ** y", "float_power": "x ** y",
    "maximum": "x if x > y or x != x else y", "minimum": "x if x < y or x != x else y",
    "fmax": "x if x > y or y != y else y", "fmin": "x if x < y or y != y else y",
    "arctan2": "math.atan2(x, y)", "hypot": "math.hypot(x, y)",
    "copysign": "math.copysign(x, y)",
    "logaddexp": "max(x, y) + math.log1p(math.exp(-abs(x - y))) if x != y else x + "
                 "0.6931471805599453",
    "greater": "x > y", "greater_equal": "x >= y", "less": "x < y", "less_equal": "x <= y",
    "equal": "x == y", "not_equal": "x != y", "logical_and": "x and y",
    "logical_or": "x or y", "logical_xor": "(not x) != (not y)",
    "floor_divide": "x // y", "remainder": "x % y", "fmod": "math.fmod(x, y)",
    "heaviside": "(0.0 if x < 0 else (1.0 if x > 0 else y)) if x == x else x",
    # ternary
    "where": "x if c else y", "clip": "c if c != c else min(max(c, x), y)",
}
_ARGS = {1: "x", 2: "x, y", 3: "c, x, y"}


def _arity(name):
    e = SCALAR[name]
    # the second operand is the name y (not a letter of copysign, ...)
    return 3 if name in ("where", "clip") else (2 if re.search(r"\by\b", e) else 1)


_device_fns = {}


def device_fn(name):
    fn = _device_fns.get(name)
    if fn is None:
        ns = {"math": math}
        exec(f"def {name}_s({_ARGS[_arity(name)]}):\n    return {SCALAR[name]}\n", ns)
        fn = _device_fns[name] = cuda.jit(device=True)(ns[f"{name}_s"])
    return fn


# ----- The map template: out[i] = f(a[i], b[i], ...) with broadcasting strides -----
_maps = {}


def _make_map(name, nin, flat):
    ins = ", ".join(f"a{k}, s{k}, o{k}" for k in range(nin))
    if flat:
        src = [f"def k(out, n, {', '.join(f'a{k}' for k in range(nin))}):",
               "    i = cuda.grid(1)",
               "    step = cuda.gridsize(1)",
               "    while i < n:",
               f"        out[i] = f({', '.join(f'a{k}[i]' for k in range(nin))})",
               "        i += step"]
    else:
        src = [f"def k(out, so, oo, n, shape, {ins}):",
               "    i = cuda.grid(1)",
               "    step = cuda.gridsize(1)",
               "    while i < n:",
               "        r = i",
               "        jo = oo"] + [f"        j{k} = o{k}" for k in range(nin)] + [
               "        for d in range(len(shape) - 1, -1, -1):",
               "            q = r % shape[d]",
               "            r = r // shape[d]",
               "            jo += q * so[d]"] + [
               f"            j{k} += q * s{k}[d]" for k in range(nin)] + [
               f"        out[jo] = f({', '.join(f'a{k}[j{k}]' for k in range(nin))})",
               "        i += step"]
    ns = {"cuda": cuda, "f": device_fn(name)}
    exec("\n".join(src), ns)
    return cuda.jit(ns["k"])


def map_kernel(name, out, out_strides, out_offset, shape, inputs):
    """``out[...] = f(*inputs)`` over ``shape``; ``inputs`` are (buffer, strides, offset)
    with element strides (0 on broadcast axes). A contiguous same-shape call takes the
    flat kernel (no index arithmetic: the bandwidth path)."""
    n = 1
    for d in shape:
        n *= d
    if n == 0:
        return
    nin = len(inputs)
    cstr = _c_strides(shape)
    flat = out_offset == 0 and tuple(out_strides) == cstr and all(
        o == 0 and tuple(s) == cstr for _, s, o in inputs)
    key = (name, nin, flat)
    k = _maps.get(key)
    if k is None:
        k = _maps[key] = _make_map(name, nin, flat)
    if flat:
        k[_blocks(n), TPB](out.data, n, *[b.data for b, _, _ in inputs])
        return
    shape = tuple(shape) or (1,)
    pad = lambda s: tuple(int(v) for v in s) or (0,)     # noqa: E731  (0-d: one element)
    args = []
    for b, s, o in inputs:
        args += [b.data, pad(s), int(o)]
    k[_blocks(n), TPB](out.data, pad(out_strides), int(out_offset), n,
                       tuple(int(d) for d in shape), *args)


def _c_strides(shape):
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc if d != 1 else 0)
        acc *= d
    return tuple(reversed(out))


def c_strides(shape):
    """Element strides of a C-contiguous array (0 on size-1 axes, which never advance)."""
    return _c_strides(shape)


# ----- Reductions: grid-stride partials per block, then a second pass over them -----
_reducers = {}
_COMBINE = {"sum": "a + b", "prod": "a * b", "max": "a if a > b or a != a else b",
            "min": "a if a < b or a != a else b", "any": "a or b", "all": "a and b"}


def _identity(op, dtype):
    if op in ("sum", "any"):
        return dtype.type(0)
    if op in ("prod", "all"):
        return dtype.type(1)
    if dtype.kind == "f":
        return dtype.type(-np.inf if op == "max" else np.inf)
    if dtype.kind == "b":
        return dtype.type(op == "min")
    info = np.iinfo(dtype)
    return dtype.type(info.min if op == "max" else info.max)


def _make_reducer(op, dtype):
    nbt = from_dtype(dtype)
    ident = _identity(op, dtype)
    ns = {"cuda": cuda}
    exec(f"def comb(a, b):\n    return {_COMBINE[op]}\n", ns)
    comb = cuda.jit(device=True)(ns["comb"])
    T = TPB

    def red(x, M, K, P, out):
        # Block b takes part b % P of rows b // P, b // P + R, ... (R row groups): a
        # grid-stride loop within each row, then a tree in shared memory.
        tid = cuda.threadIdx.x
        b = cuda.blockIdx.x
        R = cuda.gridDim.x // P
        part = b % P
        sm = cuda.shared.array(T, nbt)
        row = b // P
        while row < M:
            acc = ident
            k = part * T + tid
            base = row * K
            while k < K:
                acc = comb(acc, x[base + k])
                k += P * T
            sm[tid] = acc
            cuda.syncthreads()
            s = T // 2
            while s > 0:
                if tid < s:
                    sm[tid] = comb(sm[tid], sm[tid + s])
                cuda.syncthreads()
                s //= 2
            if tid == 0:
                out[row * P + part] = sm[0]
            cuda.syncthreads()
            row += R
    return cuda.jit(red)


def reduce_rows(op, buf, M, K, dtype):
    """Reduce each row of the (M, K) C-contiguous buffer: a flat buffer of M results.
    First pass: P blocks per row, each a grid-stride loop and a tree in shared memory;
    a second pass folds the P partials. Nothing comes back to the host."""
    dtype = np.dtype(dtype)
    key = (op, dtype.str)
    k = _reducers.get(key)
    if k is None:
        k = _reducers[key] = _make_reducer(op, dtype)
    if M == 0:
        return empty(0, dtype)
    P = max(1, min(-(-K // TPB), max(1, (4 * MAX_PARTS) // M), MAX_PARTS))
    part = empty(M * P, dtype)
    k[min(M, MAX_BLOCKS) * P, TPB](buf.data, M, K, P, part.data)
    if P == 1:
        return part
    out = empty(M, dtype)
    k[min(M, MAX_BLOCKS), TPB](part.data, M, P, 1, out.data)
    return out


_args = {}


def _make_arg(op):
    def arg(x, M, K, out):
        r = cuda.grid(1)
        while r < M:
            best = x[r * K]
            j = 0
            for k in range(1, K):
                v = x[r * K + k]
                if best == best and (v != v or (v > best if op == 0 else v < best)):
                    best = v
                    j = k
            out[r] = j
            r += cuda.gridsize(1)
    return cuda.jit(arg)


def arg_rows(op, buf, M, K):
    """argmax (``op="max"``) or argmin of each row of an (M, K) buffer (the first of ties,
    the first NaN as NumPy); one thread per row (these index, they are not differentiated)."""
    k = _args.get(op)
    if k is None:
        k = _args[op] = _make_arg(0 if op == "max" else 1)
    out = empty(M, np.int64)
    if M:
        k[_blocks(M), TPB](buf.data, M, K, out.data)
    return out


# ----- Matmul: shared-memory tiles, each thread a W×W block of registers -----
_matmuls = {}
TILE, TILE_K, WORK = (4, 4, 2) if SIMULATOR else (64, 16, 4)


def _make_matmul(dtype):
    nbt = from_dtype(dtype)
    TS, TK, W = TILE, TILE_K, WORK
    T = TS // W
    NT = T * T

    def mm(A, B, C, M, N, K, sa, sb):
        bz = cuda.blockIdx.z
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * T + tx
        row0 = cuda.blockIdx.y * TS
        col0 = cuda.blockIdx.x * TS
        As = cuda.shared.array((TS, TK), nbt)
        Bs = cuda.shared.array((TK, TS), nbt)
        acc = cuda.local.array((W, W), nbt)
        for i in range(W):
            for j in range(W):
                acc[i, j] = 0
        aoff = bz * sa
        boff = bz * sb
        for k0 in range(0, K, TK):
            for e in range(tid, TS * TK, NT):
                r = e // TK
                c = e % TK
                gr = row0 + r
                gc = k0 + c
                if gr < M and gc < K:
                    As[r, c] = A[aoff + gr * K + gc]
                else:
                    As[r, c] = 0
            for e in range(tid, TK * TS, NT):
                r = e // TS
                c = e % TS
                gr = k0 + r
                gc = col0 + c
                if gr < K and gc < N:
                    Bs[r, c] = B[boff + gr * N + gc]
                else:
                    Bs[r, c] = 0
            cuda.syncthreads()
            for kk in range(TK):
                for i in range(W):
                    a = As[ty + i * T, kk]
                    for j in range(W):
                        acc[i, j] += a * Bs[kk, tx + j * T]
            cuda.syncthreads()
        coff = bz * M * N
        for i in range(W):
            r = row0 + ty + i * T
            for j in range(W):
                c = col0 + tx + j * T
                if r < M and c < N:
                    C[coff + r * N + c] = acc[i, j]
    return cuda.jit(mm)


def matmul(a, b, batch, M, N, K, dtype, a_batched=True, b_batched=True):
    """C[z] = A[z] @ B[z] for z < batch, each C-contiguous (M, K) and (K, N); an operand
    with ``*_batched=False`` is one matrix shared by every z."""
    dtype = np.dtype(dtype)
    k = _matmuls.get(dtype.str)
    if k is None:
        k = _matmuls[dtype.str] = _make_matmul(dtype)
    out = empty(batch * M * N, dtype)
    if batch * M * N == 0:
        return out
    if K == 0:
        map_kernel("identity", out, (1,), 0, (batch * M * N,), [(_zero(dtype), (0,), 0)])
        return out
    T = TILE // WORK
    grid = (-(-N // TILE), -(-M // TILE), batch)
    k[grid, (T, T)](a.data, b.data, out.data, M, N, K, M * K if a_batched else 0,
                    K * N if b_batched else 0)
    return out


_zeros = {}


def _zero(dtype):
    z = _zeros.get(dtype.str)
    if z is None:
        z = _zeros[dtype.str] = to_device(np.zeros(1, dtype))
    return z


# ----- Indexing: gather, and scatter (set or add) -----
@cuda.jit
def _gather(x, idx, out, n):
    i = cuda.grid(1)
    while i < n:
        j = idx[i]
        out[i] = x[j] if j >= 0 else 0
        i += cuda.gridsize(1)


@cuda.jit
def _scatter_set(acc, idx, v, n):
    i = cuda.grid(1)
    while i < n:
        if idx[i] >= 0:
            acc[idx[i]] = v[i]
        i += cuda.gridsize(1)


@cuda.jit
def _scatter_add(acc, idx, v, n):
    i = cuda.grid(1)
    while i < n:
        if idx[i] >= 0:
            cuda.atomic.add(acc, idx[i], v[i])
        i += cuda.gridsize(1)


def gather(x, idx, n, dtype):
    """out[i] = x[idx[i]] for a flat int64 index buffer of n positions (0 where the
    position is -1: the padding of im2col)."""
    out = empty(n, dtype)
    if n:
        _gather[_blocks(n), TPB](x.data, idx.data, out.data, n)
    return out


def scatter(acc, idx, v, n, add):
    """acc[idx[i]] = v[i] (or += with atomics, so repeated positions accumulate); a
    position of -1 is skipped."""
    if n:
        (_scatter_add if add else _scatter_set)[_blocks(n), TPB](acc.data, idx.data, v.data, n)
