"""How each primitive's output elements depend on its input elements: the sparsity rules.

The sparsity mode (``autodiff.sparsity``) carries, for every array, a boolean matrix ``P``
with one row per element (C order) and one column per input element of the differentiated
function: ``P[k, j]`` says element ``k`` may depend on input ``j``. A primitive's rule maps
the patterns of its arguments to the pattern of its result; most are ``L @ P`` with ``L``
the primitive's own local dependency matrix (output elements × argument elements), built
vectorised from shapes and never from the arguments' values (the pattern holds for every
``x``). Only plain constants, which are the same for every ``x``, may narrow a rule (a
constant matrix's zeros in ``A @ x``).

A rule is ``rule(prim, ans, args, pats, kw) -> P`` (or None for no dependence): ``args``
are the values the implementation got (plain constants, or tracked values of other levels),
``pats`` their patterns (None for those that do not depend on ``x``). Primitives declare
theirs beside their rules as ``prim.sparsity = <rule>``. Elementwise primitives need none
(their ``partials`` say which arguments count); any other primitive without one is dense:
every output element depends on every input element (conservative, never wrong).
"""
import math

import numpy as np

from ..core import box_types, shape_of

__all__ = ["elementwise", "select", "gather", "scatter_add", "reduction", "slices", "scan", "einsum",
           "matmul", "linear", "correlate", "interp", "conv2d", "conv2d_transpose_x",
           "conv2d_grad_w", "dense", "stacked", "active", "union", "lstm_cell", "gru_cell",
           "sequence", "pooling", "groups"]


def _sp():
    from scipy import sparse
    return sparse


def _size(shape):
    return math.prod(shape)


def _local(rows, cols, m, k):
    """The boolean ``m × k`` matrix with ones at (rows, cols) (repeats merge)."""
    sparse = _sp()
    return sparse.csr_array((np.ones(len(rows), dtype=bool),
                             (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
                            shape=(m, k))


def union(parts):
    """The elementwise OR of patterns (None where there are none)."""
    seen = set()          # x * x: one pattern twice, OR-ed once
    parts = [p for p in parts if p is not None and not (id(p) in seen or seen.add(id(p)))]
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


def take_rows(P, src):
    """Rows ``src`` of ``P`` (``-1``: an empty row): what a gather does to a pattern."""
    sparse = _sp()
    src = np.asarray(src, dtype=np.int64).ravel()
    m = src.size
    if m and src[0] >= 0 and src[-1] == src[0] + m - 1 and \
            (m == 1 or np.array_equal(src, np.arange(src[0], src[0] + m))):
        if m == P.shape[0]:
            return P                                 # a reshape: the same rows
        lo, hi = P.indptr[src[0]], P.indptr[src[0] + m]
        return sparse.csr_array((P.data[lo:hi], P.indices[lo:hi], P.indptr[src[0]:src[0] + m + 1]
                                 - lo), shape=(m, P.shape[1]))
    valid = src >= 0
    s = np.where(valid, src, 0)
    counts = np.diff(P.indptr)[s]
    counts[~valid] = 0
    indptr = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    # entry e of output row r is entry e - indptr[r] of source row s[r]
    shift = np.repeat(P.indptr[s].astype(np.int64) - indptr[:-1], counts)
    shift += np.arange(indptr[-1], dtype=np.int64)
    return sparse.csr_array((np.ones(indptr[-1], dtype=bool), P.indices[shift], indptr),
                            shape=(m, P.shape[1]))


def active(prim, i):
    """Whether argument ``i`` of ``prim`` carries a derivative (a ``None`` rule: it does not)."""
    if prim.linear or prim.full_jvp or prim.full_vjp:
        return True
    jvp, vjp = prim.jvp, prim.vjp
    return (jvp is not None and i < len(jvp) and jvp[i] is not None) or \
        (vjp is not None and i < len(vjp) and vjp[i] is not None)


def _broadcast_rows(P, shape, out_shape):
    """The pattern of ``broadcast_to(a, out_shape)`` from ``a``'s pattern."""
    if tuple(shape) == tuple(out_shape):
        return P
    ids = np.arange(_size(shape), dtype=np.int64).reshape(shape)
    return P[np.broadcast_to(ids, out_shape).ravel()]


# ----- The rules -----
def elementwise(prim, ans, args, pats, kw):
    """Output element k depends on element k of every (broadcast) active argument."""
    out_shape = shape_of(ans)
    return union([_broadcast_rows(p, shape_of(a), out_shape)
                  for i, (a, p) in enumerate(zip(args, pats)) if p is not None and active(prim, i)])


def select(prim, ans, args, pats, kw):
    """``where(cond, x, y)``: ``x``'s element where a constant ``cond`` holds and ``y``'s
    where it does not; both where ``cond`` is computed from x (it differs between x's)."""
    c = args[0]
    if pats[0] is not None or type(c) in box_types:
        return elementwise(prim, ans, args, pats, kw)
    out_shape = shape_of(ans)
    keep = np.broadcast_to(np.asarray(c, dtype=bool), out_shape).ravel()
    rows = np.arange(keep.size, dtype=np.int64)
    parts = []
    for a, p, picked in ((args[1], pats[1], keep), (args[2], pats[2], ~keep)):
        if p is not None:
            parts.append(take_rows(_broadcast_rows(p, shape_of(a), out_shape),
                                   np.where(picked, rows, -1)))
    return union(parts)


def gather(prim, ans, args, pats, kw):
    """Pure data movement (reshape, transpose, indexing, concatenation, assignment): the
    primitive's own implementation, run on integer labels of the argument elements (0 for
    constants), says which element each output element is a copy of."""
    labels, spans, start = [], [], 1
    for a, p in zip(args, pats):
        s = shape_of(a)
        if p is None:
            labels.append(np.zeros(s, dtype=np.int64))
        else:
            m = _size(s)
            labels.append(np.arange(start, start + m, dtype=np.int64).reshape(s))
            spans.append((start, m, p))
            start += m
    src = np.asarray(prim.impl(*labels, **kw))
    if src.dtype.kind not in "iu":          # the implementation computes: be conservative
        return dense(prim, ans, args, pats, kw)
    src = src.ravel() - 1               # rows of the stacked patterns; -1: a constant
    if len(spans) == 1:
        return take_rows(spans[0][2], src)
    return take_rows(_sp().vstack([p for _, _, p in spans], format="csr"), src)


def scatter_add(prim, ans, args, pats, kw):
    """``index_add(g, idx, shape)``: zeros of ``shape`` with ``g`` added at ``idx`` (repeated
    positions gather several elements of ``g``)."""
    g, p = args[0], pats[0]
    if p is None:
        return None
    shape = kw["shape"]
    target = np.arange(_size(shape), dtype=np.int64).reshape(shape)[kw["idx"]]
    src = np.broadcast_to(np.arange(_size(shape_of(g)), dtype=np.int64).reshape(shape_of(g)),
                          target.shape)
    return _local(target.ravel(), src.ravel(), _size(shape), _size(shape_of(g))) @ p


def _slice_ids(shape, axes):
    """For each element of ``shape``: the index of its slice when ``axes`` are reduced."""
    nd = len(shape)
    red = {a % nd for a in axes} if nd else set()
    kshape = tuple(1 if i in red else d for i, d in enumerate(shape))
    ids = np.arange(_size(kshape), dtype=np.int64).reshape(kshape)
    return np.broadcast_to(ids, shape).ravel(), _size(kshape)


def _joint(prim, args, pats):
    """The active arguments' patterns broadcast to their common shape, OR-ed."""
    shapes = [shape_of(a) for a in args]
    common = np.broadcast_shapes(*shapes)
    P = union([_broadcast_rows(p, s, common) for i, (s, p) in enumerate(zip(shapes, pats))
               if p is not None and active(prim, i)])
    return P, common


def reduction(prim, ans, args, pats, kw):
    """A reduction over ``kw["axis"]`` (sum, prod, max, logsumexp, …): an output element
    depends on every element of its slice."""
    P, shape = _joint(prim, args, pats)
    if P is None:
        return None
    ids, m = _slice_ids(shape, _axes(kw))
    return _local(ids, np.arange(ids.size), m, ids.size) @ P


def _axes(kw):
    axes = kw.get("axis")
    return () if axes is None else tuple(axes) if isinstance(axes, (tuple, list)) else (axes,)


def slices(prim, ans, args, pats, kw):
    """Each output element depends on the whole line (slice along ``kw["axis"]``) it sits
    on: log_softmax, and the FFTs (whose output line may differ in length)."""
    P, shape = _joint(prim, args, pats)
    if P is None:
        return None
    axes = _axes(kw)
    ids, m = _slice_ids(shape, axes)
    out_ids, m_out = _slice_ids(shape_of(ans), axes)
    if m_out != m:
        return dense(prim, ans, args, pats, kw)
    return (_local(ids, np.arange(ids.size), m, ids.size) @ P)[out_ids]


def scan(prim, ans, args, pats, kw):
    """A running operation along ``kw["axis"]`` (cumsum, cumprod, linear recurrences):
    element i of a slice depends on elements 0..i (i..end when ``kw["reverse"]``)."""
    P, shape = _joint(prim, args, pats)
    if P is None:
        return None
    axis = kw["axis"] % len(shape)
    ids = np.moveaxis(np.arange(_size(shape), dtype=np.int64).reshape(shape), axis, -1)
    m = shape[axis]
    r, c = np.triu_indices(m) if kw.get("reverse") else np.tril_indices(m)
    ids = ids.reshape(-1, m)
    return _local(ids[:, r].ravel(), ids[:, c].ravel(), _size(shape), _size(shape)) @ P


def _dense_rows(rows, m):
    """``m`` rows, each the union of all rows of the patterns ``rows``."""
    sparse = _sp()
    if not rows:
        return None
    n = rows[0].shape[1]
    cols = np.unique(np.concatenate([p.indices for p in rows]))
    return sparse.csr_array((np.ones(m * cols.size, dtype=bool), np.tile(cols, m),
                             np.arange(m + 1, dtype=np.int64) * cols.size), shape=(m, n))


def dense(prim, ans, args, pats, kw):
    """Every output element depends on every element of every active argument."""
    m = _size(shape_of(ans)) if type(ans) is not tuple else sum(_size(shape_of(a)) for a in ans)
    return _dense_rows([p for i, p in enumerate(pats) if p is not None and active(prim, i)], m)


def stacked(*cores):
    """Dense within each matrix of a stack (linalg): argument i's last ``cores[i]`` axes
    (the last entry serves the remaining arguments) form its matrix, the leading axes,
    broadcast, index the stack, and the output's leading axes are the same stack."""
    def rule(prim, ans, args, pats, kw):
        cs = [cores[min(i, len(cores) - 1)] for i in range(len(args))]
        try:
            batch = np.broadcast_shapes(*[shape_of(a)[:max(len(shape_of(a)) - c, 0)]
                                          for a, c in zip(args, cs)])
        except ValueError:
            return dense(prim, ans, args, pats, kw)
        nb, out_shape = len(batch), shape_of(ans)
        if type(ans) is tuple or tuple(out_shape[:nb]) != tuple(batch):
            return dense(prim, ans, args, pats, kw)
        B, per = _size(batch), _size(out_shape[nb:])
        parts = []
        for i, (a, p, c) in enumerate(zip(args, pats, cs)):
            if p is None or not active(prim, i):
                continue
            s = shape_of(a)
            sb, k = s[:len(s) - c], _size(s[len(s) - c:])
            ids = np.arange(_size(s), dtype=np.int64).reshape(tuple(sb) + (k,))
            ids = np.broadcast_to(ids.reshape((1,) * (nb - len(sb)) + ids.shape),
                                  tuple(batch) + (k,)).reshape(B, k)
            blocks = _local(np.repeat(np.arange(B), k), ids.ravel(), B, _size(s)) @ p
            parts.append(blocks[np.repeat(np.arange(B), per)])
        return union(parts)
    rule.__name__ = f"stacked{cores}"
    return rule


def interp(prim, ans, args, pats, kw):
    """``interp(x, xp, fp)``: elementwise in ``x``, dense in the table."""
    x, xp, fp = args
    px, pxp, pfp = pats
    m = _size(shape_of(ans))
    return union([None if px is None else _broadcast_rows(px, shape_of(x), shape_of(ans)),
                  _dense_rows([p for p in (pxp, pfp) if p is not None], m)])


# ----- Contractions -----
def _nonzeros(v, const):
    """Index tuples (one column per axis) where operand ``v`` may be nonzero: a plain
    constant's own nonzeros (the same for every x), every position of anything else."""
    if isinstance(v, _Relation):
        return v.nz
    s = shape_of(v)
    if const and type(v) not in box_types and not isinstance(v, _Shape):
        v = np.asarray(v)
        if v.ndim == 0:
            return np.zeros((int(v != 0), 0), dtype=np.int64)
        return np.stack(np.nonzero(v != 0), axis=1).astype(np.int64)
    if len(s) == 0:
        return np.zeros((1, 0), dtype=np.int64)
    return np.indices(s).reshape(len(s), -1).T.astype(np.int64)


def _flat(idx, letters, sizes):
    """Flat C-order positions of the index columns ``idx[letter]`` over ``letters``."""
    out = np.zeros(len(next(iter(idx.values()))) if idx else 1, dtype=np.int64)
    for c in letters:
        out = out * sizes[c] + idx[c]
    return out


def contraction(ins, out, ops, pats):
    """The pattern of ``einsum(",".join(ins) + "->" + out, *ops)`` (distinct letters per
    operand): output element o depends on element e of operand i when some assignment of
    the letters agrees with both and every other operand may be nonzero there."""
    sizes = {}
    for s, o in zip(ins, ops):
        sizes.update(zip(s, shape_of(o)))
    m = _size([sizes[c] for c in out])
    parts = []
    for i, (s, p) in enumerate(zip(ins, pats)):
        if p is None:
            continue
        # Start from every element of operand i, then join the others' possible nonzeros.
        cols = {c: col for c, col in zip(s, np.indices([sizes[c] for c in s]).reshape(
            len(s), -1).astype(np.int64))} if s else {}
        count = _size([sizes[c] for c in s])
        rest = [j for j in range(len(ins)) if j != i]
        while rest:
            # next, the operand sharing the most letters with those fixed so far
            j = max(rest, key=lambda j: sum(c in cols for c in ins[j]))
            rest.remove(j)
            sj, oj = ins[j], ops[j]
            nz = _nonzeros(oj, pats[j] is None)          # (k, len(sj))
            shared = [c for c in sj if c in cols]
            new = [c for c in sj if c not in cols]
            if shared:
                # match rows of ``cols`` with rows of ``nz`` on the shared letters
                key_sizes = [sizes[c] for c in shared]
                left = _flat(cols, shared, sizes) if cols else np.zeros(count, np.int64)
                right = np.zeros(len(nz), dtype=np.int64)
                for c, d in zip(shared, key_sizes):
                    right = right * d + nz[:, sj.index(c)]
                order = np.argsort(right, kind="stable")
                rs = right[order]
                lo = np.searchsorted(rs, left, "left")
                hi = np.searchsorted(rs, left, "right")
                reps = hi - lo
                li = np.repeat(np.arange(count), reps)
                starts = np.repeat(lo - np.cumsum(np.r_[0, reps[:-1]]), reps)
                ri = order[np.arange(li.size) + starts]
            else:
                li = np.repeat(np.arange(count), len(nz))
                ri = np.tile(np.arange(len(nz)), count)
            cols = {c: col[li] for c, col in cols.items()}
            for c in new:
                cols[c] = nz[ri, sj.index(c)]
            count = li.size
        if count == 0:
            continue
        rows = _flat(cols, out, sizes) if out else np.zeros(count, dtype=np.int64)
        src = _flat(cols, s, sizes) if s else np.zeros(count, dtype=np.int64)
        parts.append(_local(rows, src, m, _size([sizes[c] for c in s])) @ p)
    return union(parts)


def einsum(prim, ans, args, pats, kw):
    """``einsum_p``: the contraction of its (normalised) subscripts."""
    ins, out = kw["subscripts"].split("->")
    return contraction(ins.split(","), out, list(args), pats)


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _batched(args, pats, core):
    """Operands broadcast over their leading (stack) axes (patterns too), and the letters."""
    batch = np.broadcast_shapes(*[shape_of(a)[:len(shape_of(a)) - c] for a, c in zip(args, core)])
    out_args, out_pats = [], []
    for a, p, c in zip(args, pats, core):
        s = shape_of(a)
        want = batch + s[len(s) - c:]
        if p is not None:
            p = _broadcast_rows(p, s, want)
        if p is not None or type(a) in box_types:
            a = _Shape(want)
        elif s != want:
            a = np.broadcast_to(a, want)
        out_args.append(a)
        out_pats.append(p)
    return out_args, out_pats, _LETTERS[len(_LETTERS) - len(batch):] if batch else ""


class _Shape:
    """A stand-in with a shape only: an operand that is not a constant."""
    def __init__(self, shape):
        self.shape = tuple(shape)


def matmul(prim, ans, args, pats, kw):
    """``matmul_p(a, b)`` on stacks of matrices: ``...ij,...jk->...ik``."""
    a, b = args
    (a, b), (pa, pb), z = _batched([a, b], list(pats), (2, 2))
    return contraction([z + "ij", z + "jk"], z + "ik", [a, b], [pa, pb])


def linear(prim, ans, args, pats, kw):
    """``linear(x, w, b) = x wᵀ + b``: x (..., in), w (out, in), b (out,)."""
    x, w, b = args
    px, pw, pb = pats
    lead = "ABCDEFGH"[:len(shape_of(x)) - 1]
    P = contraction([lead + "i", "oi"], lead + "o", [x, w], [px, pw])
    if pb is not None:
        P = union([P, _broadcast_rows(pb, shape_of(b), shape_of(ans))])
    return P


def correlate(prim, ans, args, pats, kw):
    """``correlate(x, w)[..., k] = Σ_j x[..., k+j] w[..., j]``: a sliding window of ``x``
    (a gather) contracted with ``w``; a constant ``w``'s zeros narrow it."""
    from numpy.lib.stride_tricks import sliding_window_view
    x, w = args
    px, pw = pats
    m = shape_of(w)[-1]
    if px is not None:
        labels = np.arange(_size(shape_of(x)), dtype=np.int64).reshape(shape_of(x))
        win_ids = sliding_window_view(labels, m, axis=-1)
        win, pwin = _Shape(win_ids.shape), px[np.ascontiguousarray(win_ids).ravel()]
    else:
        win, pwin = (sliding_window_view(x, m, axis=-1) if type(x) not in box_types
                     else _Shape(shape_of(x)[:-1] + (shape_of(x)[-1] - m + 1, m))), None
    (win, w), (pwin, pw), z = _batched([win, w], [pwin, pw], (2, 1))
    return contraction([z + "kj", z + "j"], z + "k", [win, w], [pwin, pw])


class _Relation:
    """A constant 0/1 tensor given by its nonzero index tuples ``nz`` (k × ndim)."""
    def __init__(self, shape, nz):
        self.shape, self.nz = tuple(shape), nz


def _taps(size, out, k, stride, dil, pad):
    """(position, output index, tap) triples along one axis of a convolution:
    ``position = output·stride + tap·dilation - pad`` inside ``[0, size)``."""
    i, a = np.meshgrid(np.arange(out), np.arange(k), indexing="ij")
    h = i * stride + a * dil - pad
    ok = (h >= 0) & (h < size)
    return np.stack([h[ok], i[ok], a[ok]], axis=1).astype(np.int64)


def _conv_relation(H, W, Ho, Wo, kh, kw, kw_):
    """The constant ``T[h, w, i, j, a, b]``: input pixel (h, w) meets kernel tap (a, b) at
    output pixel (i, j), for conv2d's stride, padding and dilation."""
    (sh, sw), ((pt, _), (pl, _)), (dh, dw) = kw_["stride"], kw_["padding"], kw_["dilation"]
    rh, rw = _taps(H, Ho, kh, sh, dh, pt), _taps(W, Wo, kw, sw, dw, pl)
    a, b = np.repeat(np.arange(len(rh)), len(rw)), np.tile(np.arange(len(rw)), len(rh))
    nz = np.stack([rh[a, 0], rw[b, 0], rh[a, 1], rw[b, 1], rh[a, 2], rw[b, 2]], axis=1)
    return _Relation((H, W, Ho, Wo, kh, kw), nz.reshape(-1, 6))


def conv2d(prim, ans, args, pats, kw):
    """``conv2d(x, w)[n,o,i,j] = Σ x[n,c,h,w] w[o,c,a,b] T[h,w,i,j,a,b]``."""
    x, w = args
    (_, _, H, W), (_, _, kh, kw_), (_, _, Ho, Wo) = shape_of(x), shape_of(w), shape_of(ans)
    T = _conv_relation(H, W, Ho, Wo, kh, kw_, kw)
    return contraction(["nchw", "ocab", "hwijab"], "noij", [x, w, T], [pats[0], pats[1], None])


def conv2d_transpose_x(prim, ans, args, pats, kw):
    """Its transpose in x: ``out[n,c,h,w] = Σ g[n,o,i,j] w[o,c,a,b] T[h,w,i,j,a,b]``."""
    g, w = args
    (_, _, Ho, Wo), (_, _, kh, kw_), (H, W) = shape_of(g), shape_of(w), tuple(kw["size"])
    T = _conv_relation(H, W, Ho, Wo, kh, kw_, kw)
    return contraction(["noij", "ocab", "hwijab"], "nchw", [g, w, T], [pats[0], pats[1], None])


def conv2d_grad_w(prim, ans, args, pats, kw):
    """Its transpose in w: ``out[o,c,a,b] = Σ x[n,c,h,w] g[n,o,i,j] T[h,w,i,j,a,b]``."""
    x, g = args
    (_, _, H, W), (_, _, Ho, Wo), (kh, kw_) = shape_of(x), shape_of(g), tuple(kw["ksize"])
    T = _conv_relation(H, W, Ho, Wo, kh, kw_, kw)
    return contraction(["nchw", "noij", "hwijab"], "ocab", [x, g, T], [pats[0], pats[1], None])


# ----- The fused primitives (recurrent cells, pooling, standardisation) -----
def _blocks_relation(out_shape, state_shape, arg_shape, k, stacked_out):
    """Rows (output elements) and columns (argument elements) of a cell whose output
    element (…, i) reads element (…, i + j·H) of a (…, k·H) argument for every block j, or
    element (…, i) of a (…, H) argument (k = 1); both halves of a stacked output alike."""
    H = state_shape[-1] if state_shape else 1
    M = _size(state_shape) // max(H, 1) if H else 0
    m, i = np.divmod(np.arange(M * H, dtype=np.int64), max(H, 1))
    rows = [np.arange(M * H, dtype=np.int64)]
    if stacked_out:
        rows = [rows[0], rows[0] + M * H]
    r, c = [], []
    for base in rows:
        for j in range(k):
            r.append(base)
            c.append(m * (k * H) + j * H + i)
    return np.concatenate(r), np.concatenate(c)


def lstm_cell(prim, ans, args, pats, kw):
    """(h', c')[…, i] depends on the four gate pre-activations a[…, i + jH] and on c[…, i]."""
    a, c = args
    parts = []
    for arg, p, k in ((a, pats[0], 4), (c, pats[1], 1)):
        if p is not None:
            r, cols = _blocks_relation(shape_of(ans), shape_of(c), shape_of(arg), k, True)
            parts.append(_local(r, cols, _size(shape_of(ans)), _size(shape_of(arg))) @ p)
    return union(parts)


def gru_cell(prim, ans, args, pats, kw):
    """h'[…, i] depends on xp[…, i + jH], hp[…, i + jH] (j = r, z, n) and on h[…, i]."""
    h = args[2]
    parts = []
    for arg, p, k in ((args[0], pats[0], 3), (args[1], pats[1], 3), (h, pats[2], 1)):
        if p is not None:
            r, cols = _blocks_relation(shape_of(ans), shape_of(h), shape_of(arg), k, False)
            parts.append(_local(r, cols, _size(shape_of(ans)), _size(shape_of(arg))) @ p)
    return union(parts)


def sequence(prim, ans, args, pats, kw):
    """A whole recurrent layer (lstm_sequence, gru_sequence): conservatively dense. Each
    state reads every earlier step and the whole recurrent weight; that the batch rows are
    independent of each other is what this rule forgoes."""
    return dense(prim, ans, args, pats, kw)


def pooling(prim, ans, args, pats, kw):
    """An output of max_pool2d / pool_gather depends on every element of its window (the
    taps inside the input; padding reads nothing); pool_scatter is the transpose: an input
    position gathers from every window that covers it."""
    from .windows import geometry, tap_slices
    scatter = prim.name == "pool_scatter"
    x = args[0]
    size = kw.get("size") or shape_of(x)[-2:]
    full = shape_of(ans) if scatter else shape_of(x)
    out, pads = geometry(size, kw["ksize"], kw["stride"], kw["padding"], kw["dilation"],
                          kw["ceil_mode"])
    (pt, pb), (pl, pr) = pads
    lead = full[:-2]
    ids = np.pad(np.arange(_size(full), dtype=np.int64).reshape(full),
                 [(0, 0)] * len(lead) + [(pt, pb), (pl, pr)], constant_values=-1)
    win = np.arange(_size(lead + out), dtype=np.int64).reshape(lead + out)
    r, c = [], []
    for sl in tap_slices(out, kw["ksize"], kw["stride"], kw["dilation"]):
        src = ids[sl]
        keep = src >= 0
        r.append(win[keep])
        c.append(src[keep])
    r, c = np.concatenate(r), np.concatenate(c)
    if scatter:                       # input position (row) ← windows (columns)
        r, c = c, r
    if pats[0] is None:
        return None
    return _local(r, c, _size(shape_of(ans)), _size(shape_of(x))) @ pats[0]


def groups(prim, ans, args, pats, kw):
    """Each output element depends on its whole group, the elements sharing its position
    off ``kw["axes"]`` (standardisation: batch and layer norm)."""
    P, shape = _joint(prim, args, pats)
    if P is None:
        return None
    ids, m = _slice_ids(shape, kw["axes"])
    return (_local(ids, np.arange(ids.size), m, ids.size) @ P)[ids]
