"""Max pooling as a primitive — for speed — with its two linear companions.

``max_pool2d(x)`` takes the maximum of each window of the last two axes of ``x`` (any
leading axes), PyTorch's geometry: ``stride``, ``padding`` (with −∞), ``dilation``,
``ceil_mode``. As a composition it is a tree of ``maximum``s over the kernel's strided views,
whose tie masks are recorded at every node; as a primitive it is one record, and its rules
are two linear maps that share one weight array ``W`` (one slice per kernel tap, shaped like
the output): ``W_k = [x_k = ans] / #{k : x_k = ans}``, so tied maxima share the derivative
equally (the engine's rule for ``max``; PyTorch gives all of it to one).

* ``pool_gather(t, W)  = Σ_k W_k · t_k`` — the JVP of max pooling (``t_k`` the tap views);
* ``pool_scatter(g, W) = Σ_k (W_k · g) placed back at tap k`` — its VJP, the transpose.

Each is the other's transpose, so every derivative of any order is one of the two again.
``W`` is locally constant in ``x`` (it changes only where the maximum switches), so it is
computed from the primal values. A leading batch of directions on ``t`` or ``g`` broadcasts
against ``W`` as it stands. A first-order reverse sweep on plain arrays skips ``W``: it
scatters ``g / #maxima`` through the tap masks (``_scatter_untied``), the same numbers.

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

__all__ = ["max_pool2d", "max_pool2d_p", "pool_gather_p", "pool_scatter_p", "pool_output_size"]


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


def _weights(x, ans, ksize, stride, padding, dilation, ceil_mode):
    """``W`` (taps, *ans.shape): each tap's share of the derivative at each output.
    Piecewise constant (no derivative): under ``ad.jit`` one recorded call, not a guard."""
    return lift(_plain_weights, x, ans, ksize, stride, padding, dilation, ceil_mode)


def _plain_weights(x, ans, ksize, stride, padding, dilation, ceil_mode):
    out, pads = geometry(shape_of(x)[-2:], ksize, stride, padding, dilation, ceil_mode)
    xp = _padded(x, pads, -np.inf)
    taps = tap_slices(out, ksize, stride, dilation)
    w = np.empty((len(taps),) + shape_of(ans), dtype=np.result_type(x.dtype, np.float32))
    for k, sl in enumerate(taps):
        np.equal(xp[sl], ans, out=w[k], casting="unsafe")
    w /= np.sum(w, axis=0)
    return w


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


def _scatter_untied(g, x, ans, ksize, stride, padding, dilation, ceil_mode):
    """``pool_scatter(g, W)`` without building ``W``: with ``W_k = [x_k = ans] / n`` (``n``
    the window's number of maxima) tap k receives ``(g / n)·[x_k = ans]``, written straight
    into its slice when the windows do not overlap; ``n`` is computed only where some
    window is tied. None when a maximum is NaN (no tap equals it): the caller's general
    path. Blocks of the leading axis go through all taps at once, while they are in cache."""
    size = shape_of(x)[-2:]
    out, pads = geometry(size, ksize, stride, padding, dilation, ceil_mode)
    xp = _padded(x, pads, -np.inf)
    taps = tap_slices(out, ksize, stride, dilation)
    disjoint = all(d * (k - 1) < s for k, s, d in zip(ksize, stride, dilation))
    cover = disjoint and all(d == 1 and s == k and o * k == m
                             for k, s, d, o, m in zip(ksize, stride, dilation, out,
                                                      shape_of(xp)[-2:]))
    dtype = np.result_type(g, x.dtype, np.float32)
    acc = (np.empty if cover else np.zeros)(shape_of(xp), dtype=dtype)
    for b in _blocks(xp):
        if not _untied_block(g[b], xp[b], ans[b], acc[b], taps, disjoint):
            return None
    (pt, pb), (pl, pr) = pads
    return acc[..., pt:pt + size[0], pl:pl + size[1]]


_BLOCK_BYTES = 2 ** 19         # one block of the leading axis: a few hundred KiB, in L2


def _untied_block(g, xp, ans, acc, taps, disjoint):
    eqs, hits = [], 0
    for sl in taps:
        e = np.equal(xp[sl], ans)
        hits += np.count_nonzero(e)
        eqs.append(e)
    if hits != ans.size:             # a tie (more hits) or a NaN maximum (fewer)
        dt = np.uint8 if len(eqs) < 256 else np.int64
        n = np.add(eqs[0], eqs[1], dtype=dt) if len(eqs) > 1 else eqs[0].astype(dt)
        for e in eqs[2:]:
            n += e
        if not n.all():
            return False
        g = g / n
    for sl, e in zip(taps, eqs):
        if disjoint:
            np.multiply(g, e, out=acc[sl])
        else:
            acc[sl] += g * e
    return True


def _max_pool_vjp(g, ans, x, **geo):
    # A first-order sweep on plain arrays skips the weights when nothing is tied.
    if type(g) is np.ndarray and type(x) is np.ndarray and type(ans) is np.ndarray \
            and g.shape == ans.shape:
        r = _scatter_untied(g, x, ans, **geo)
        if r is not None:
            return r
    return pool_scatter_p(g, _w_of(ans, x, **geo), size=shape_of(x)[-2:], **geo)


# ----- The three primitives -----
# ``geo``: ksize, stride, padding (one int per axis), dilation (pairs) and ceil_mode.
def _w_of(ans, x, **geo):
    return _weights(x, ans, **geo)


max_pool2d_p = defprim(
    "max_pool2d", _max_pool,
    jvp=(lambda t, ans, x, **geo: pool_gather_p(t, _w_of(ans, x, **geo),
                                                 size=shape_of(x)[-2:], **geo),),
    vjp=(_max_pool_vjp,))

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
