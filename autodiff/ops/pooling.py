"""Max pooling as a primitive — for speed — with its two linear companions.

``max_pool2d(x)`` takes the maximum of each window of the last two axes of ``x`` (any
leading axes), PyTorch's geometry: ``stride``, ``padding`` (with −∞), ``dilation``,
``ceil_mode``. As a composition it is a tree of ``maximum``s over the kernel's strided views,
whose tie masks are recorded at every node; as a primitive it is one record, and its rules
are two linear maps that share one weight array ``W`` (one slice per kernel tap, shaped like
the output), one-hot at the tap that takes the window's derivative:

* ``pool_gather(t, W)  = Σ_k W_k · t_k`` — the JVP of max pooling (``t_k`` the tap views);
* ``pool_scatter(g, W) = Σ_k (W_k · g) placed back at tap k`` — its VJP, the transpose.

The chosen tap is PyTorch's: its kernel scans a window in row-major order and keeps a value
when ``val > maxval or isnan(val)``, so the whole derivative of a window goes to one
element, its first maximum, or its last NaN when it holds one; the padding is never chosen.
At a tie any split is a valid subgradient; this one is PyTorch's (``autodiff.nn`` follows
it, and it is the element ``return_indices`` names and ``max_unpool`` puts back, see
``max_pool2d_indices``), and JAX's ``reduce_window`` max also gives a tie's derivative to
one element. Max pooling is a pooling primitive, not a NumPy function, so there is no
NumPy rule (``maximum``'s equal split) to keep.

Each companion is the other's transpose, so every derivative of any order is one of the two
again, making the same choice in both modes. ``W`` is locally constant in ``x`` (it changes
only where the maximum switches), so it is computed from the primal values: under
``ad.jit`` one recorded call (``lift``), not a guard on them. A leading batch of directions
on ``t`` or ``g`` broadcasts against ``W`` as it stands. A first-order reverse sweep on plain
arrays skips ``W``: it scatters ``g`` through the tap masks, each window's first only
(``_scatter_first``), the same numbers.

>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> max_pool2d(x, (2, 2), (2, 2))[0, 0]
array([[ 5.,  7.],
       [13., 15.]])
"""
import numpy as np

from ..arrays import shape_of
from ..boxes import lift
from . import dependency
from .define import defprim
from .windows import geometry, pool_output_size, tap_slices  # noqa: F401

__all__ = ["max_pool2d", "max_pool2d_indices", "max_pool2d_p", "pool_gather_p",
           "pool_scatter_p", "pool_output_size"]


def _padded(x, pads, fill):
    if not any(a or b for a, b in pads):
        return x
    width = [(0, 0)] * (np.ndim(x) - 2) + list(pads)
    return np.pad(x, width, constant_values=fill)


# ----- The NumPy implementations (plain arrays) -----
def _max_of(views, out=None):
    if len(views) == 1:
        if out is None:
            return views[0].copy()
        np.copyto(out, views[0])
        return out
    ans = np.maximum(views[0], views[1], out=out)
    for v in views[2:]:
        np.maximum(ans, v, out=ans)
    return ans


def _blocks(xp):
    """Slices of the leading axis of about ``_BLOCK_BYTES`` each (the whole array if it
    has no leading axis): work that visits every tap goes block by block, in cache."""
    if xp.ndim > 2 and xp.shape[0] > 1:
        per = max(1, _BLOCK_BYTES // max(1, xp[0].nbytes))
        return [slice(i, i + per) for i in range(0, xp.shape[0], per)]
    return [slice(None)]


def _max_pool(x, ksize, stride, padding, dilation, ceil_mode):
    """The window maximum is separable: over the kernel's rows first (whole padded rows,
    so the inner loops run along contiguous memory), then over its columns — kh + kw
    elementwise maxima instead of kh·kw."""
    out, pads = geometry(shape_of(x)[-2:], ksize, stride, padding, dilation, ceil_mode)
    xp = _padded(x, pads, -np.inf)
    (ho, wo), (kh, kw), (sh, sw), (dh, dw) = out, ksize, stride, dilation
    ans = np.empty(shape_of(xp)[:-2] + (ho, wo), dtype=xp.dtype)
    for b in _blocks(xp):
        xb = xp[b]
        rows = _max_of([xb[..., i * dh:i * dh + sh * (ho - 1) + 1:sh, :] for i in range(kh)])
        _max_of([rows[..., j * dw:j * dw + sw * (wo - 1) + 1:sw] for j in range(kw)],
                out=ans[b])
    return ans


# ----- PyTorch's choice: the tap that takes each window's derivative -----
def _pick(x, ans, ksize, stride, padding, dilation, ceil_mode):
    """The kept tap (its row-major number in the kernel) of each window, int32 shaped like
    ``ans``, on plain arrays: the first tap equal to the maximum, or the last NaN of a NaN
    window. Padded with NaN for the comparison, so the padding never equals a maximum (a
    window of −∞ keeps its first element inside the input)."""
    out, pads = geometry(shape_of(x)[-2:], ksize, stride, padding, dilation, ceil_mode)
    taps = tap_slices(out, ksize, stride, dilation)
    xp = _padded(x, pads, np.nan)
    pick = np.full(shape_of(ans), -1, dtype=np.int32)
    for k in range(len(taps) - 1, -1, -1):            # later taps first: the first one wins
        np.copyto(pick, k, where=np.equal(xp[taps[k]], ans))
    nan = np.isnan(ans)
    if nan.any():
        isnan = _padded(np.isnan(x), pads, False)
        for k, sl in enumerate(taps):                 # earlier taps first: the last one wins
            np.copyto(pick, k, where=isnan[sl] & nan)
    return pick


def _plain_weights(x, ans, ksize, stride, padding, dilation, ceil_mode):
    """``W`` (taps, *ans.shape): 1 at each window's kept tap, 0 elsewhere."""
    pick = _pick(x, ans, ksize, stride, padding, dilation, ceil_mode)
    k = np.arange(ksize[0] * ksize[1], dtype=np.int32).reshape((-1,) + (1,) * pick.ndim)
    return np.equal(pick, k).astype(np.result_type(x.dtype, np.float32))


def _weights(x, ans, ksize, stride, padding, dilation, ceil_mode):
    """``W`` of the rules. Piecewise constant (no derivative): under ``ad.jit`` one recorded
    call, not a guard."""
    return lift(_plain_weights, x, ans, ksize, stride, padding, dilation, ceil_mode)


def _plain_indices(x, ans, ksize, stride, padding, dilation, ceil_mode):
    pick = _pick(x, ans, ksize, stride, padding, dilation, ceil_mode)
    ki, kj = np.divmod(pick.astype(np.int64), ksize[1])
    ho, wo = shape_of(ans)[-2:]
    rows = (np.arange(ho) * stride[0] - padding[0])[:, None] + ki * dilation[0]
    cols = np.arange(wo) * stride[1] - padding[1] + kj * dilation[1]
    return rows * shape_of(x)[-1] + cols


def max_pool2d_indices(x, ans, kernel_size, stride, padding=(0, 0), dilation=(1, 1),
                       ceil_mode=False):
    """PyTorch's ``return_indices``: for ``ans = max_pool2d(x, …)``, the flat index into its
    (H, W) input plane of the element each window's derivative goes to (int64, shaped like
    ``ans``). A function of numbers: under ``ad.jit`` one recorded call."""
    return lift(_plain_indices, x, ans, tuple(kernel_size), tuple(stride), tuple(padding),
                tuple(dilation), bool(ceil_mode))


def _gather(t, w, size, ksize, stride, padding, dilation, ceil_mode):
    out, pads = geometry(size, ksize, stride, padding, dilation, ceil_mode)
    tp = _padded(t, pads, 0.0)
    taps = tap_slices(out, ksize, stride, dilation)
    acc = tp[taps[0]] * w[0]
    for k, sl in enumerate(taps[1:], 1):
        acc += tp[sl] * w[k]
    return acc


def _scatter(g, w, size, ksize, stride, padding, dilation, ceil_mode):
    out, pads = geometry(size, ksize, stride, padding, dilation, ceil_mode)
    (pt, pb), (pl, pr) = pads
    h, wd = size
    lead = shape_of(g)[:-2]
    acc = np.zeros(lead + (h + pt + pb, wd + pl + pr), dtype=np.result_type(g, w))
    for k, sl in enumerate(tap_slices(out, ksize, stride, dilation)):
        acc[sl] += g * w[k]
    return acc[..., pt:pt + h, pl:pl + wd]


_BLOCK_BYTES = 2 ** 19         # one block of the leading axis: a few hundred KiB, in L2


def _scatter_first(g, x, ans, ksize, stride, padding, dilation, ceil_mode):
    """``pool_scatter(g, W)`` without building ``W``: tap k receives ``g·m_k``, with ``m_k``
    the mask ``x_k = ans`` (NaN padding: the padding never matches) where no earlier tap of
    the window matched. Without a NaN maximum every window has at least one match, so the
    total number of matches equals the number of windows exactly when none is tied, and
    only then are the masks used as they are. A NaN window has no match and would offset a
    tie in that count, so a NaN maximum is ruled out first: None, the caller's general
    path (last NaN). Blocks of the leading axis go through all taps at once, while they
    are in cache; where the windows do not overlap each tap is written straight into its
    slice."""
    size = shape_of(x)[-2:]
    out, pads = geometry(size, ksize, stride, padding, dilation, ceil_mode)
    xp = _padded(x, pads, np.nan)
    taps = tap_slices(out, ksize, stride, dilation)
    disjoint = all(d * (k - 1) < s for k, s, d in zip(ksize, stride, dilation))
    cover = disjoint and all(d == 1 and s == k and o * k == m
                             for k, s, d, o, m in zip(ksize, stride, dilation, out,
                                                      shape_of(xp)[-2:]))
    dtype = np.result_type(g, x.dtype, np.float32)
    acc = (np.empty if cover else np.zeros)(shape_of(xp), dtype=dtype)  # cover: all written
    for b in _blocks(xp):
        gb, xb, ab, cb = g[b], xp[b], ans[b], acc[b]
        if np.isnan(ab).any():
            return None
        eqs = [np.equal(xb[sl], ab) for sl in taps]
        if sum(np.count_nonzero(e) for e in eqs) != ab.size:      # ties: keep the first
            seen = eqs[0].copy()
            for e in eqs[1:]:
                np.greater(e, seen, out=e)                          # e and not seen
                seen |= e
        for sl, e in zip(taps, eqs):
            if disjoint:
                np.multiply(gb, e, out=cb[sl])
            else:
                cb[sl] += gb * e
    (pt, _), (pl, _) = pads
    return acc[..., pt:pt + size[0], pl:pl + size[1]]


def _max_pool_jvp(t, ans, x, **geo):
    return pool_gather_p(t, _weights(x, ans, **geo), size=shape_of(x)[-2:], **geo)


def _max_pool_vjp(g, ans, x, **geo):
    # A first-order sweep on plain arrays scatters through the tap masks, without W.
    if type(g) is np.ndarray and type(x) is np.ndarray and type(ans) is np.ndarray \
            and g.shape == ans.shape:
        r = _scatter_first(g, x, ans, **geo)
        if r is not None:
            return r
    return pool_scatter_p(g, _weights(x, ans, **geo), size=shape_of(x)[-2:], **geo)


# ----- The three primitives -----
# ``geo``: ksize, stride, padding (one int per axis), dilation (pairs) and ceil_mode.
max_pool2d_p = defprim("max_pool2d", _max_pool, jvp=(_max_pool_jvp,), vjp=(_max_pool_vjp,))

pool_gather_p = defprim(
    "pool_gather", _gather,
    jvp=(lambda t, ans, u, w, **kw: pool_gather_p(t, w, **kw), None),
    vjp=(lambda g, ans, u, w, **kw: pool_scatter_p(g, w, **kw), None))

pool_scatter_p = defprim(
    "pool_scatter", _scatter,
    jvp=(lambda t, ans, g, w, **kw: pool_scatter_p(t, w, **kw), None),
    vjp=(lambda c, ans, g, w, **kw: pool_gather_p(c, w, **kw), None))


def max_pool2d(x, kernel_size, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    """The maximum of each window of the last two axes of ``x``: pairs of ints for the
    geometry (PyTorch's meaning), padding with −∞."""
    return max_pool2d_p(x, ksize=tuple(kernel_size), stride=tuple(stride),
                        padding=tuple(padding), dilation=tuple(dilation),
                        ceil_mode=bool(ceil_mode))

# ----- Dependency structure (the sparsity mode): each window -----
for _p in (max_pool2d_p, pool_gather_p, pool_scatter_p):
    _p.sparsity = dependency.pooling
