"""Convolution and pooling, as functions (PyTorch's signatures) and as layers.

Convolution is the engine's ``conv2d`` primitive (``autodiff/ops/conv.py``) plus a bias;
``conv1d`` is ``conv2d`` on a height-1 image, and ``conv3d`` is one ``conv2d`` of the depth
slabs folded into the batch, the kd depth taps stacked beside the channels
(``conv_transpose3d`` scatters ``conv_transpose2d``'s slabs back by depth). Max pooling on
NumPy arrays is the engine's ``max_pool2d`` primitive (``autodiff/ops/pooling.py``), whose
rules make PyTorch's choice at ties: the whole derivative of a window goes to one element,
its first maximum in row-major order (or its last NaN), in both modes and to any order;
``return_indices`` names that element. Average pooling, and max pooling on another array
type, are compositions: the input is padded (with -inf for max, 0 for average), each of the
kh·kw kernel taps is a strided slice, and the slices are combined pairwise (elementwise
operations on whole slices: NumPy's reductions over small trailing axes are ~20× slower),
the max keeping the earlier slice unless the later is greater or NaN, so its derivative
makes the same choice. The 3-d pools are the 2-d ones of each depth plane, combined over
the depth taps the same way (``where``, the earlier tap kept at a tie), so the derivative
goes to the first maximum in row-major (d, h, w) order, or the last NaN. Adaptive max
pooling, unpooling, ``unfold`` and ``fold``
gather or scatter by flat indices (``take_along_axis``, ``index_add``): each is the
other's transpose, so their derivatives are exact to any order too.

>>> import numpy as np
>>> from autodiff import nn
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> nn.functional.max_pool2d(x, 2)[0, 0]
array([[ 5.,  7.],
       [13., 15.]])
"""
import math
import operator

import numpy as np

from autodiff.arrays import as_like
from autodiff.boxes import lift, meta
from autodiff.core import ndim_of, shape_of
from autodiff.ops import conv as _conv
from autodiff.ops import pooling as _pool
from autodiff.ops.shape import index_add_p
from autodiff.ops.windows import pool_output_size

from . import init
from .module import Module, Parameter, ShapeError

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d",
           "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d", "interpolate", "Conv1d", "Conv2d", "ConvTranspose1d",
           "ConvTranspose2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
           "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "Upsample",
           "max_unpool1d", "max_unpool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
           "unfold", "fold", "pixel_shuffle", "pixel_unshuffle", "MaxUnpool1d", "MaxUnpool2d",
           "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Unfold", "Fold", "PixelShuffle",
           "PixelUnshuffle", "UpsamplingNearest2d", "UpsamplingBilinear2d",
           "conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d", "adaptive_avg_pool3d",
           "adaptive_max_pool3d", "Conv3d", "ConvTranspose3d", "MaxPool3d", "AvgPool3d",
           "AdaptiveAvgPool3d", "AdaptiveMaxPool3d"]


def _shape_error(msg):
    """PyTorch's RuntimeError that is also a ValueError."""
    return ShapeError(msg)


# ----- Convolution -----
def _groups(groups, c_in, c_out, what):
    if not (isinstance(groups, (int, np.integer)) and groups > 0):
        raise ValueError(f"{what}: groups must be a positive integer, got {groups!r}")
    if c_in % groups or c_out % groups:
        raise ValueError(f"{what}: in_channels ({c_in}) and out_channels ({c_out}) must be "
                         f"divisible by groups ({groups})")


def _grouped(conv, input, weight, groups, transposed, *args):
    """A grouped convolution as ``groups`` convolutions of channel slices, concatenated
    along the channel axis (composed: each slice's derivative comes from ``conv``)."""
    if groups == 1:
        return conv(input, weight, *args)
    axis = -(ndim_of(weight) - 1)           # the channel axis, batched or not
    c = shape_of(input)[axis]
    if c % groups:
        raise ValueError(f"convolution: {c} input channels are not divisible by groups "
                         f"({groups})")
    ci, wo = c // groups, shape_of(weight)[0] // groups
    step = ci if transposed else wo
    spatial = (slice(None),) * (-axis - 1)
    outs = [conv(input[(Ellipsis, slice(g * ci, (g + 1) * ci)) + spatial],
                 weight[g * step:(g + 1) * step], *args) for g in range(groups)]
    return np.concatenate(outs, axis=axis)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv2d``: (N, C, H, W) ⋆ (O, C/groups, kh, kw) + bias (O,)."""
    y = _grouped(_conv.conv2d, input, weight, groups, False, stride, padding, dilation)
    return y if bias is None else y + np.reshape(bias, (-1, 1, 1))


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv1d``: (N, C, L) ⋆ (O, C/groups, k) + bias (O,)."""
    y = _grouped(_conv.conv1d, input, weight, groups, False, stride, padding, dilation)
    return y if bias is None else y + np.reshape(bias, (-1, 1))


def _conv_transpose(x, w, stride, padding, output_padding, dilation):
    """The engine's ``conv_transpose2d``, its refusals (``output_padding`` not below
    max(stride, dilation), shapes) raised as PyTorch's RuntimeError (also a ValueError)."""
    try:
        return _conv.conv_transpose2d(x, w, stride, padding, output_padding, dilation)
    except ValueError as e:
        raise _shape_error(str(e)) from None


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """``torch.nn.functional.conv_transpose2d``: weight (Cin, Cout/groups, kh, kw); the
    transpose (adjoint) of ``conv2d`` with the same stride, padding and dilation."""
    y = _grouped(_conv_transpose, input, weight, groups, True, stride, padding,
                 output_padding, dilation)
    return y if bias is None else y + np.reshape(bias, (-1, 1, 1))


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """``torch.nn.functional.conv_transpose1d`` on (N, Cin, L) or (Cin, L):
    ``conv_transpose2d`` on a height-1 image."""
    p = (lambda v: (0, v[0] if isinstance(v, (tuple, list)) else v))
    one = (lambda v: (1, v[0] if isinstance(v, (tuple, list)) else v))
    y = conv_transpose2d(input[..., None, :], weight[:, :, None], None, one(stride),
                         p(padding), p(output_padding), groups, one(dilation))[..., 0, :]
    return y if bias is None else y + np.reshape(bias, (-1, 1))

def _triple(v, name):
    v = (v,) * 3 if isinstance(v, (int, np.integer)) else tuple(v)
    if len(v) != 3 or not all(isinstance(i, (int, np.integer)) for i in v):
        raise ValueError(f"{name} must be an int or a triple of ints, got {v!r}")
    return tuple(int(i) for i in v)


def _volumes(input, weight, name):
    """``input`` as (N, C, D, H, W) (a 4-D one is one volume) and whether it was unbatched."""
    if ndim_of(input) not in (4, 5) or ndim_of(weight) != 5:
        raise _shape_error(f"Expected 4D (unbatched) or 5D (batched) input to {name} and a "
                           f"5D weight, but got input of size: {list(shape_of(input))} and "
                           f"weight of size: {list(shape_of(weight))}")
    single = ndim_of(input) == 4
    return (input[None] if single else input), single


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``torch.nn.functional.conv3d``: (N, C, D, H, W) or (C, D, H, W) ⋆ (O, C/groups, kd,
    kh, kw) + bias (O,). A sum of 2-d convolutions over the depth taps,
    ``y[:, :, p] = Σ_k conv2d(xpad[:, :, p·s_d + k·d_d], w[:, :, k])``, done as one
    ``conv2d``: the depth slabs folded into the batch (N·Do, C·kd, H, W), tap k beside
    channel c (index c·kd + k), so that w (O, C/groups·kd, kh, kw) is a plain reshape and
    each group keeps its channels. Depth zero padding is concatenated, 'same' splits
    d·(k-1) as PyTorch does (the odd one after)."""
    x, single = _volumes(input, weight, "conv3d")
    (n, c, _, h, w), (o, cg, kd, kh, kw) = shape_of(x), shape_of(weight)
    if not (isinstance(groups, (int, np.integer)) and groups > 0) or o % groups:
        raise _shape_error(f"Given groups={groups}, expected weight to be divisible by "
                           f"{groups} at dimension 0, but got weight of size "
                           f"{list(shape_of(weight))} instead")
    if c != cg * groups:
        raise _shape_error(f"Given groups={groups}, weight of size {list(shape_of(weight))}, "
                           f"expected input{list(shape_of(x))} to have {cg * groups} "
                           f"channels, but got {c} channels instead")
    s, d = _triple(stride, "stride"), _triple(dilation, "dilation")
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                             "{'valid', 'same'}")
        if padding == "same" and s != (1, 1, 1):
            raise _shape_error("padding='same' is not supported for strided convolutions")
        tot = d[0] * (kd - 1) if padding == "same" else 0
        depth, plane = (tot // 2, tot - tot // 2), padding
    else:
        p = _triple(padding, "padding")
        if min(p) < 0:
            raise _shape_error("negative padding is not supported")
        depth, plane = (p[0], p[0]), p[1:]
    x = _pad(x, -3, *depth, 0.0)
    do = (shape_of(x)[2] - d[0] * (kd - 1) - 1) // s[0] + 1
    if do < 1:
        raise _shape_error(f"conv3d: kernel depth {kd} (dilation {d[0]}) is larger than the "
                           f"padded input depth {shape_of(x)[2]}")
    slabs = np.stack([x[:, :, k * d[0]:k * d[0] + s[0] * (do - 1) + 1:s[0]]
                      for k in range(kd)], axis=2)                    # (N, C, kd, Do, H, W)
    slabs = np.reshape(np.transpose(slabs, (0, 3, 1, 2, 4, 5)), (n * do, c * kd, h, w))
    y = conv2d(slabs, np.reshape(weight, (o, cg * kd, kh, kw)), None, s[1:], plane, d[1:],
               groups)                                                # (N·Do, O, Ho, Wo)
    y = np.transpose(np.reshape(y, (n, do) + shape_of(y)[1:]), (0, 2, 1, 3, 4))
    if bias is not None:
        y = y + np.reshape(bias, (-1, 1, 1, 1))
    return y[0] if single else y


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1):
    """``torch.nn.functional.conv_transpose3d``: (N, Cin, D, H, W) or (Cin, D, H, W) with
    weight (Cin, Cout/groups, kd, kh, kw), the transpose (adjoint) of ``conv3d``: each
    input depth slab id goes through ``conv_transpose2d`` with every depth tap k at once
    (weight (Cin, Cout/groups·kd, kh, kw)), and tap k's slab is added at output depth
    ``od = id·s_d + k·d_d - p_d`` (a scatter, ``index_add``; output depth
    ``(D - 1)·s_d - 2·p_d + d_d·(kd - 1) + output_padding_d + 1``)."""
    x, single = _volumes(input, weight, "conv_transpose3d")
    (n, ci, dn, h, w), (_, cg, kd, kh, kw) = shape_of(x), shape_of(weight)
    s, p = _triple(stride, "stride"), _triple(padding, "padding")
    op, d = _triple(output_padding, "output_padding"), _triple(dilation, "dilation")
    if any(a >= max(b, e) for a, b, e in zip(op, s, d)):
        names = [f"output_padding_{a}: {v}" for a, v in zip(("depth", "height", "width"), op)]
        names += [f"stride_{a}: {v}" for a, v in zip(("depth", "height", "width"), s)]
        names += [f"dilation_{a}: {v}" for a, v in zip(("depth", "height", "width"), d)]
        raise _shape_error("output padding must be smaller than either stride or dilation, "
                           f"but got {' '.join(names)}")
    out = (dn - 1) * s[0] - 2 * p[0] + d[0] * (kd - 1) + op[0] + 1
    if out < 1:
        raise _shape_error(f"conv_transpose3d: the output depth {out} is not positive")
    planes = np.reshape(np.transpose(x, (0, 2, 1, 3, 4)), (n * dn, ci, h, w))
    y = conv_transpose2d(planes, np.reshape(weight, (ci, cg * kd, kh, kw)), None, s[1:],
                         p[1:], op[1:], groups, d[1:])           # (N·D, Cout·kd, Ho, Wo)
    ho, wo = shape_of(y)[-2:]
    co = cg * groups
    y = np.reshape(np.transpose(np.reshape(y, (n, dn, co, kd, ho, wo)), (1, 3, 0, 2, 4, 5)),
                   (dn * kd, n, co, ho, wo))                     # (D·kd, N, Cout, Ho, Wo)
    od = (np.arange(dn)[:, None] * s[0] + np.arange(kd) * d[0] - p[0]).ravel()
    od = np.where((od >= 0) & (od < out), od, out)               # outside: one spare slot
    y = index_add_p(y, idx=(od,), shape=(out + 1, n, co, ho, wo))[:out]
    y = np.transpose(y, (1, 2, 0, 3, 4))
    if bias is not None:
        y = y + np.reshape(bias, (-1, 1, 1, 1))
    return y[0] if single else y


# ----- Pooling -----
def _pad(x, axis, before, after, fill):
    """``x`` with ``before``/``after`` entries of ``fill`` along ``axis`` (negative)."""
    if not before and not after:
        return x
    s = list(shape_of(x))
    parts = []
    for n in (before, after):
        s[axis] = n
        # (the fill in x's array type: on the device for autodiff.gpu)
        parts.append(as_like(np.full(tuple(s), fill, dtype=x.dtype), meta(x)) if n else None)
    return np.concatenate([a for a in (parts[0], x, parts[1]) if a is not None], axis=axis)


def _taps(x, ksize, stride, padding, dilation, ceil_mode, fill):
    """The pooling windows of ``x`` (…, H, W) as ``("taps", [slice (…, Ho, Wo) per kernel
    tap])``: one strided view per tap, no copies."""
    sizes = []
    for ax, k, s, p, d in zip((-2, -1), ksize, stride, padding, dilation):
        n = shape_of(x)[ax]
        out = pool_output_size(n, k, s, p, d, ceil_mode)
        x = _pad(x, ax, p, max((out - 1) * s + d * (k - 1) + 1 - n - p, 0), fill)
        sizes.append(out)
    (ho, wo), (kh, kw) = sizes, ksize
    (sh, sw), (dh, dw) = stride, dilation
    return "taps", [x[..., i * dh:i * dh + sh * (ho - 1) + 1:sh,
                      j * dw:j * dw + sw * (wo - 1) + 1:sw]
                    for i in range(kh) for j in range(kw)]


def _default(stride):
    """PyTorch's pools take ``stride=None`` (or an empty list) for ``kernel_size``."""
    return stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0)


def _pool_args(kernel_size, stride, padding, dilation):
    p = _conv._pair
    kernel_size = p(kernel_size, "kernel_size")
    stride = kernel_size if _default(stride) else p(stride, "stride")
    return kernel_size, stride, p(padding, "padding"), p(dilation, "dilation")


def _spatial(x, nd, name):
    if ndim_of(x) not in (nd + 1, nd + 2):
        raise ValueError(f"{name}: expected a {nd + 1}-D or {nd + 2}-D input, got shape "
                         f"{shape_of(x)}")


# ----- Max pooling -----
def _first_max(xs):
    """PyTorch's window maximum as a composition (another array type): pairwise over the
    taps in order, the later one taken only when greater or NaN, so the derivative follows
    the first maximum (the last NaN) through ``where``."""
    while len(xs) > 1:
        xs = [np.where((xs[i + 1] > xs[i]) | (xs[i + 1] != xs[i + 1]), xs[i + 1], xs[i])
              if i + 1 < len(xs) else xs[i] for i in range(0, len(xs), 2)]
    return xs[0]


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """``torch.nn.functional.max_pool2d`` on (N, C, H, W) or (C, H, W): the maximum of each
    window, padding with -inf. The derivative goes to the window's first maximum in
    row-major order (its last NaN), as PyTorch's; ``return_indices=True`` also gives that
    element's flat index into its (H, W) plane, int64."""
    _spatial(input, 2, "max_pool2d")
    k, s, p, d = _pool_args(kernel_size, stride, padding, dilation)
    if type(meta(input)) is np.ndarray:
        y = _pool.max_pool2d(input, k, s, p, d, ceil_mode)       # one primitive, one record
        if return_indices:
            return y, _pool.max_pool2d_indices(input, y, k, s, p, d, ceil_mode)
        return y
    if return_indices:
        raise NotImplementedError("max_pool2d(return_indices=True) needs a NumPy array")
    # Another array type (autodiff.gpu's): a composition of its kernels.
    _, w = _taps(input, k, s, p, d, ceil_mode, -np.inf)
    return _first_max(w)


def _pairwise(op, xs):
    """op over a list, as a balanced tree: elementwise ops on whole slices are far faster
    than NumPy's reductions over a few small trailing axes."""
    while len(xs) > 1:
        xs = [op(xs[i], xs[i + 1]) if i + 1 < len(xs) else xs[i] for i in range(0, len(xs), 2)]
    return xs[0]


def _avg_divisor(n, k, s, p, out, count_include_pad):
    """Per output position along one axis: the window's size counting the padding (but not
    what ceil mode reads past it), or counting real entries only (PyTorch's formulas)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, n + p)
    if count_include_pad:
        return (end - start).astype(float)
    return (np.minimum(end, n) - np.maximum(start, 0)).astype(float)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """``torch.nn.functional.avg_pool2d`` on (N, C, H, W) or (C, H, W): the mean of each
    window, padding with zeros (counted unless ``count_include_pad=False``)."""
    _spatial(input, 2, "avg_pool2d")
    k, s, p, d = _pool_args(kernel_size, stride, padding, 1)
    _, w = _taps(input, k, s, p, d, ceil_mode, 0.0)
    return _mean(_pairwise(operator.add, w), input, k, s, p, count_include_pad,
                 divisor_override)


def _height1(x):
    """(…, L) as the height-1 image (…, 1, L)."""
    s = shape_of(x)
    return np.reshape(x, s[:-1] + (1, s[-1]))


def _drop_height(y):
    """(…, 1, L) back to (…, L); a pair (values, indices) both."""
    if isinstance(y, tuple):
        return tuple(_drop_height(v) for v in y)
    s = shape_of(y)
    return np.reshape(y, s[:-2] + s[-1:])


def _as_2d_pool(fn, input, kernel_size, stride, padding, *rest, **kw):
    """A 1-d pool as the 2-d one on a height-1 image (its flat indices are then the
    positions along L)."""
    one = _conv._single
    return _drop_height(fn(_height1(input), (1, one(kernel_size)),
                           None if _default(stride) else (1, one(stride)),
                           (0, one(padding)), *rest, **kw))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """``torch.nn.functional.max_pool1d`` on (N, C, L) or (C, L)."""
    _spatial(input, 1, "max_pool1d")
    return _as_2d_pool(max_pool2d, input, kernel_size, stride, padding,
                       (1, _conv._single(dilation)), ceil_mode, return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """``torch.nn.functional.avg_pool1d`` on (N, C, L) or (C, L)."""
    _spatial(input, 1, "avg_pool1d")
    return _as_2d_pool(avg_pool2d, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad)


# ----- 3-d pools: the 2-d pool of each depth plane, combined over the depth taps -----
def _pool_args3(kernel_size, stride, padding, dilation):
    kernel_size = _triple(kernel_size, "kernel_size")
    stride = kernel_size if _default(stride) else _triple(stride, "stride")
    return (kernel_size, stride, _triple(padding, "padding"),
            _triple(dilation, "dilation"))


def _planes(x):
    """(…, D, H, W) as the stack of its depth planes (L, H, W), for a 2-d pool."""
    return np.reshape(x, (-1,) + shape_of(x)[-2:])


def _depth_sources(n, k, s, p, d, ceil_mode):
    """Per depth tap, the input depth each output depth reads, ``o·s - p + k·d`` (outside
    [0, n): the padding)."""
    out = pool_output_size(n, k, s, p, d, ceil_mode)
    return [np.arange(out) * s - p + i * d for i in range(k)]


def _later(acc, v, ok, seen):
    """Where a later depth tap takes the window (plain values): a real tap that is the first
    real one, or greater, or NaN (PyTorch's ``val > maxval || isnan(val)``)."""
    return ok & (~seen | (v > acc) | np.isnan(v))


def _depth_max(planes, sources, idx=None, plane=1):
    """The maximum over depth taps of the per-plane maxima ``planes`` (…, D, Ho, Wo), tap by
    tap in order (``sources`` from ``_depth_sources``: padding never taken). A later tap
    wins only when greater or NaN, so the derivative (through ``where``) goes to the first
    maximum in (d, h, w) order, or the last NaN; ``idx`` (flat indices into each plane of
    size ``plane``) becomes d·plane + index, for ``return_indices``."""
    n = shape_of(planes)[-3]
    acc = ids = seen = None
    for src in sources:
        ok = (src >= 0) & (src < n)
        if not ok.any():
            continue
        at = np.clip(src, 0, n - 1)
        v = np.take(planes, at, axis=-3)
        vi = None if idx is None else np.take(idx, at, axis=-3) + (at * plane)[:, None, None]
        if acc is None:
            acc, ids, seen = v, vi, ok
            continue
        take = lift(_later, acc, v, ok[:, None, None], seen[:, None, None])
        acc = np.where(take, v, acc)
        ids = None if idx is None else np.where(take, vi, ids)
        seen = seen | ok
    return acc if idx is None else (acc, ids)


def _depth_combined(input, y, sources):
    """The 2-d pools ``y`` of ``_planes(input)`` (values, or (values, indices)) back in
    (…, D, Ho, Wo), combined over the depth taps by ``_depth_max``."""
    lead = shape_of(input)[:-2]

    def back(a):
        return np.reshape(a, lead + shape_of(a)[-2:])
    if isinstance(y, tuple):
        h, w = shape_of(input)[-2:]
        return _depth_max(back(y[0]), sources, back(y[1]), h * w)
    return _depth_max(back(y), sources)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """``torch.nn.functional.max_pool3d`` on (N, C, D, H, W) or (C, D, H, W): ``max_pool2d``
    of every depth plane, then the maximum over the kd depth taps of each window (padding
    never chosen). The derivative goes to the window's first maximum in row-major (d, h, w)
    order (its last NaN), as PyTorch's; ``return_indices=True`` (NumPy arrays) also gives
    that element's flat index into its (D, H, W) volume, int64."""
    _spatial(input, 3, "max_pool3d")
    k, s, p, d = _pool_args3(kernel_size, stride, padding, dilation)
    src = _depth_sources(shape_of(input)[-3], k[0], s[0], p[0], d[0], ceil_mode)
    return _depth_combined(input, max_pool2d(_planes(input), k[1:], s[1:], p[1:], d[1:],
                                             ceil_mode, return_indices), src)


def _mean(total, input, k, s, p, count_include_pad, divisor_override):
    """A pool's window sums over the last len(k) axes divided by PyTorch's divisor: the
    product over the axes of ``_avg_divisor``, or ``divisor_override``."""
    if divisor_override is not None:
        if not divisor_override:
            raise ValueError("divisor must be not zero")
        return total / float(divisor_override)
    nd = len(k)
    div = np.ones(())
    for n, kk, ss, pp, o in zip(shape_of(input)[-nd:], k, s, p, shape_of(total)[-nd:]):
        div = np.multiply.outer(div, _avg_divisor(n, kk, ss, pp, o, count_include_pad))
    if np.all(div == div.flat[0]):
        return total / float(div.flat[0])
    return total / as_like(div.astype(total.dtype), meta(total))


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """``torch.nn.functional.avg_pool3d`` on (N, C, D, H, W) or (C, D, H, W): the window sums
    of every depth plane (as ``avg_pool2d``), summed over the kd depth taps, divided by
    PyTorch's divisor (the product of the three axes', ``count_include_pad`` as 2-d)."""
    _spatial(input, 3, "avg_pool3d")
    k, s, p, d = _pool_args3(kernel_size, stride, padding, 1)
    _, w = _taps(input, k[1:], s[1:], p[1:], d[1:], ceil_mode, 0.0)
    planes = _pairwise(operator.add, w)                                 # (…, D, Ho, Wo)
    n = shape_of(planes)[-3]
    out = pool_output_size(n, k[0], s[0], p[0], 1, ceil_mode)
    planes = _pad(planes, -3, p[0], max((out - 1) * s[0] + k[0] - n - p[0], 0), 0.0)
    total = _pairwise(operator.add, [planes[..., i:i + s[0] * (out - 1) + 1:s[0], :, :]
                                     for i in range(k[0])])           # (…, Do, Ho, Wo)
    return _mean(total, input, k, s, p, count_include_pad, divisor_override)


# ----- Adaptive pooling and resampling: linear maps along each spatial axis -----
def _adaptive_matrix(n_in, n_out, dtype):
    """(n_out, n_in): row i averages PyTorch's bin [⌊i·n/m⌋, ⌈(i+1)·n/m⌉)."""
    m = np.zeros((n_out, n_in), dtype=dtype)
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return m


def _along(x, axis, m):
    """Apply the matrix ``m`` (n_out, n_in) along ``axis`` of ``x``."""
    # a matrix product over the last axis (matmul runs on every array type, the device's too)
    return np.moveaxis(np.moveaxis(x, axis, -1) @ as_like(m.T, meta(x)), -1, axis)


def _sizes(x, output_size, nd, what):
    s = shape_of(x)
    if ndim_of(x) < nd + 1:
        raise ValueError(f"{what}: expected an input with at least {nd + 1} dimensions, got "
                         f"shape {s}")
    out = _ntuple(output_size, nd)
    return [s[-nd + k] if o is None else int(o) for k, o in enumerate(out)]


def _adaptive_avg(input, output_size, nd, what):
    sizes = _sizes(input, output_size, nd, what)
    dtype = _float(input)
    for k, n_out in enumerate(sizes):
        axis = ndim_of(input) - nd + k
        input = _along(input, axis, _adaptive_matrix(shape_of(input)[axis], n_out, dtype))
    return input


def adaptive_avg_pool2d(input, output_size):
    """Average over PyTorch's adaptive bins, giving (…, *output_size); ``None`` keeps an
    axis. A bin is a rectangle, so the mean is a row average of column averages."""
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool3d(input, output_size):
    """``torch.nn.functional.adaptive_avg_pool3d`` on (N, C, D, H, W) or (C, D, H, W): a bin
    is a box, so its mean is the bin matrix applied along each of the three axes."""
    _spatial(input, 3, "adaptive_avg_pool3d")
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")


# ----- Adaptive max pooling and unpooling: gathers and scatters by flat indices -----
def _adaptive_max_indices(x, sizes):
    """Flat indices into each (H, W) plane of PyTorch's choice in its adaptive bins
    [⌊i·n/m⌋, ⌈(i+1)·n/m⌉): the first maximum in row-major order, the last NaN (plain
    arrays). Bins are gathered padded to the widest, the padding masked out."""
    h, w = shape_of(x)[-2:]
    picks = []
    for n, m in zip((h, w), sizes):
        i = np.arange(m)
        a, b = (i * n) // m, -(-((i + 1) * n) // m)
        pos = a[:, None] + np.arange(np.max(b - a))
        picks.append((np.minimum(pos, b[:, None] - 1), pos < b[:, None]))
    (rows, rok), (cols, cok) = picks
    (oh, kh), (ow, kw) = rows.shape, cols.shape
    v = x[..., rows[:, :, None, None], cols[None, None, :, :]]          # (…, oh, kh, ow, kw)
    v = np.moveaxis(v, -3, -2).reshape(shape_of(x)[:-2] + (oh, ow, kh * kw))
    ok = np.moveaxis(rok[:, :, None, None] & cok[None, None], 1, 2).reshape(oh, ow, -1)
    first = np.argmax(np.where(ok, v, -np.inf), axis=-1)
    nan = np.isnan(v) & ok
    last = nan.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
    pick = np.where(nan.any(axis=-1), last, first)
    ki, kj = np.divmod(pick, kw)
    return rows[np.arange(oh)[:, None], ki] * w + cols[np.arange(ow), kj]


def _gather_plane(x, idx):
    """x's elements (…, *idx.shape[-2:]) at the flat indices ``idx`` into each plane."""
    s = shape_of(x)
    flat = np.reshape(x, s[:-2] + (s[-2] * s[-1],))
    lead = shape_of(idx)[:-2]
    y = np.take_along_axis(flat, np.reshape(idx, lead + (-1,)), axis=-1)
    return np.reshape(y, shape_of(idx))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """``torch.nn.functional.adaptive_max_pool2d``: the maximum over PyTorch's adaptive
    bins, giving (…, *output_size) (``None`` keeps an axis); the derivative goes to the
    chosen element as in ``max_pool2d``, whose flat index ``return_indices`` gives."""
    sizes = _sizes(input, output_size, 2, "adaptive_max_pool2d")
    idx = lift(_adaptive_max_indices, input, tuple(sizes))
    y = _gather_plane(input, idx)
    return (y, idx) if return_indices else y


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """``torch.nn.functional.adaptive_max_pool1d`` on (N, C, L) or (C, L)."""
    sizes = _sizes(input, output_size, 1, "adaptive_max_pool1d")
    return _drop_height(adaptive_max_pool2d(_height1(input), (1, sizes[0]), return_indices))


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """``torch.nn.functional.adaptive_max_pool3d`` on (N, C, D, H, W) or (C, D, H, W):
    ``adaptive_max_pool2d`` of every depth plane, then the maximum over each depth bin
    [⌊i·D/m⌋, ⌈(i+1)·D/m⌉) as ``max_pool3d`` combines its depth taps (the first maximum in
    (d, h, w) order, the last NaN); ``return_indices`` gives flat indices into (D, H, W)."""
    _spatial(input, 3, "adaptive_max_pool3d")
    sizes = _sizes(input, output_size, 3, "adaptive_max_pool3d")
    dn = shape_of(input)[-3]
    i = np.arange(sizes[0])
    a, b = (i * dn) // sizes[0], -(-((i + 1) * dn) // sizes[0])
    src = [np.where(a + j < b, a + j, -1) for j in range(int(np.max(b - a)))]
    return _depth_combined(input, adaptive_max_pool2d(_planes(input), sizes[1:],
                                                      return_indices), src)


def _unpool_size(spatial, k, s, p, output_size, name):
    """PyTorch's ``_unpool_output_size``: (n - 1)·s - 2p + k, or ``output_size`` (its last
    axes) if it lies strictly within a stride of that."""
    default = [(n - 1) * si - 2 * pi + ki for n, ki, si, pi in zip(spatial, k, s, p)]
    if output_size is None:
        return tuple(default)
    out = [int(o) for o in output_size]
    if len(out) == len(k) + 2:
        out = out[2:]
    if len(out) != len(k):
        raise ValueError(f"{name}: output_size should be a sequence containing {len(k)} or "
                         f"{len(k) + 2} elements, but it has a length of '{len(out)}'")
    for dim, (o, n, si) in enumerate(zip(out, default, s)):
        if not n - si < o < n + si:
            raise ValueError(f'invalid output_size "{tuple(out)}" (dim {dim} must be between '
                             f"{n - si} and {n + si})")
    return tuple(out)


def _unpool_positions(indices, shape, size, name):
    """Flat positions in the stacked output planes for ``indices`` (plain, of the input's
    ``shape``). An index named twice keeps the later element (the order of PyTorch's loop):
    the earlier goes to one spare slot past the end, dropped after."""
    idx = np.asarray(indices)
    if idx.shape != tuple(shape) or idx.dtype.kind not in "iu":
        raise _shape_error(f"{name}: expected integer indices of the input's shape "
                           f"{tuple(shape)}, got {idx.dtype} of shape {idx.shape}")
    n = size[0] * size[1]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise _shape_error(f"{name}: found an invalid max index {int(idx.max())} (output "
                           f"volumes are of size {size[0]}x{size[1]})")
    m = idx.size // max(shape[-1] * shape[-2], 1)
    pos = (idx.reshape(m, -1) + (np.arange(m) * n)[:, None]).ravel()
    later = len(pos) - 1 - np.unique(pos[::-1], return_index=True)[1]
    out = np.full_like(pos, m * n)
    out[later] = pos[later]
    return out


def _scatter_plane(x, indices, size, name):
    """Zeros of (…, *size) with x's elements at their flat indices into each plane (the
    transpose of ``_gather_plane``); a repeated index keeps the later element only."""
    lead = shape_of(x)[:-2]
    total = int(np.prod(lead, dtype=np.int64)) * size[0] * size[1]
    pos = lift(_unpool_positions, indices, shape_of(x), tuple(size), name)
    y = index_add_p(np.reshape(x, (-1,)), idx=(pos,), shape=(total + 1,))
    return np.reshape(y[:total], lead + tuple(size))


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """``torch.nn.functional.max_unpool2d``: zeros with each value of ``input`` (N, C, H, W)
    or (C, H, W) put back at its flat index from ``max_pool2d(..., return_indices=True)``."""
    _spatial(input, 2, "max_unpool2d")
    k, s, p, _ = _pool_args(kernel_size, stride, padding, 1)
    size = _unpool_size(shape_of(input)[-2:], k, s, p, output_size, "max_unpool2d")
    return _scatter_plane(input, indices, size, "max_unpool2d")


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """``torch.nn.functional.max_unpool1d`` on (N, C, L) or (C, L)."""
    _spatial(input, 1, "max_unpool1d")
    one = _conv._single
    k = one(kernel_size)
    s = k if _default(stride) else one(stride)
    size = _unpool_size(shape_of(input)[-1:], (k,), (s,), (one(padding),), output_size,
                        "max_unpool1d")
    return _drop_height(_scatter_plane(_height1(input), _height1(indices), (1,) + size,
                                       "max_unpool1d"))


# ----- Sliding blocks and pixel shuffles -----
def _block_geometry(size, kernel_size, dilation, padding, stride, name):
    p = _conv._pair
    k, d = p(kernel_size, "kernel_size"), p(dilation, "dilation")
    pad, s = p(padding, "padding"), p(stride, "stride")
    out = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                for n, kk, dd, pp, ss in zip(size, k, d, pad, s))
    if min(out) < 1:
        raise _shape_error(f"{name}: given spatial size {tuple(size)}, kernel_size={k}, "
                           f"dilation={d}, padding={pad}, the shape of the array of sliding "
                           f"blocks is {out}, but its components must be at least one")
    return k, d, pad, s, out


def _block_index(out, k, d, s, width):
    """(kh·kw, L): each tap's flat index into the padded plane of ``width`` columns, per
    block; taps and blocks in row-major order (PyTorch's im2col layout)."""
    rows = (np.arange(k[0]) * d[0])[:, None] + np.arange(out[0]) * s[0]      # (kh, oh)
    cols = (np.arange(k[1]) * d[1])[:, None] + np.arange(out[1]) * s[1]      # (kw, ow)
    flat = rows[:, None, :, None] * width + cols[None, :, None, :]
    return flat.reshape(k[0] * k[1], out[0] * out[1])


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """``torch.nn.functional.unfold`` (im2col): the sliding blocks of (N, C, H, W) or
    (C, H, W) as columns, (N, C·kh·kw, L) with row c·kh·kw + i·kw + j; zero padding."""
    if ndim_of(input) not in (3, 4):
        raise _shape_error(f"unfold: expected a 3-D or 4-D input, got shape {shape_of(input)}")
    k, d, p, s, out = _block_geometry(shape_of(input)[-2:], kernel_size, dilation, padding,
                                      stride, "unfold")
    x = _pad(_pad(input, -2, p[0], p[0], 0.0), -1, p[1], p[1], 0.0)
    lead = shape_of(x)[:-2]
    cols = np.take(np.reshape(x, lead + (-1,)), _block_index(out, k, d, s, shape_of(x)[-1]),
                   axis=-1)                                              # (…, C, K, L)
    return np.reshape(cols, lead[:-1] + (lead[-1] * k[0] * k[1], out[0] * out[1]))


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """``torch.nn.functional.fold`` (col2im), the transpose of ``unfold``: columns
    (N, C·kh·kw, L) or (C·kh·kw, L) summed back into (N, C, *output_size)."""
    if ndim_of(input) not in (2, 3):
        raise _shape_error(f"fold: expected a 2-D or 3-D input, got shape {shape_of(input)}")
    size = _conv._pair(output_size, "output_size")
    k, d, p, s, out = _block_geometry(size, kernel_size, dilation, padding, stride, "fold")
    ck, n = shape_of(input)[-2:]
    taps = k[0] * k[1]
    if ck % taps:
        raise _shape_error(f"fold: expected size of input's dimension 1 to be divisible by "
                           f"the product of kernel_size, but got input.size(1)={ck} and "
                           f"kernel_size={k}")
    if n != out[0] * out[1]:
        raise _shape_error(f"fold: given output_size={size}, kernel_size={k}, dilation={d}, "
                           f"padding={p}, stride={s}, expected size of input's dimension 2 "
                           f"to match the calculated number of sliding blocks "
                           f"{out[0]} * {out[1]} = {out[0] * out[1]}, but got {n}")
    hp, wp = size[0] + 2 * p[0], size[1] + 2 * p[1]
    lead = shape_of(input)[:-2] + (ck // taps,)
    idx = _block_index(out, k, d, s, wp).ravel()
    y = index_add_p(np.reshape(input, lead + (taps * n,)), idx=(Ellipsis, idx),
                    shape=lead + (hp * wp,))
    y = np.reshape(y, lead + (hp, wp))
    return y[..., p[0]:p[0] + size[0], p[1]:p[1] + size[1]]


def pixel_shuffle(input, upscale_factor):
    """``torch.nn.functional.pixel_shuffle``: (…, C·r², H, W) → (…, C, H·r, W·r)."""
    r = int(upscale_factor)
    s = shape_of(input)
    if len(s) < 3:
        raise _shape_error(f"pixel_shuffle expects input to have at least 3 dimensions, but "
                           f"got input with {len(s)} dimension(s)")
    (c, h, w), lead, n = s[-3:], s[:-3], len(s) - 3
    if c % (r * r):
        raise _shape_error(f"pixel_shuffle expects its input's 'channel' dimension to be "
                           f"divisible by the square of upscale_factor, but "
                           f"input.size(-3)={c} is not divisible by {r * r}")
    x = np.reshape(input, lead + (c // (r * r), r, r, h, w))
    x = np.transpose(x, tuple(range(n)) + (n, n + 3, n + 1, n + 4, n + 2))
    return np.reshape(x, lead + (c // (r * r), h * r, w * r))


def pixel_unshuffle(input, downscale_factor):
    """``torch.nn.functional.pixel_unshuffle``, the inverse of ``pixel_shuffle``:
    (…, C, H·r, W·r) → (…, C·r², H, W)."""
    r = int(downscale_factor)
    s = shape_of(input)
    if len(s) < 3:
        raise _shape_error(f"pixel_unshuffle expects input to have at least 3 dimensions, "
                           f"but got input with {len(s)} dimension(s)")
    (c, h, w), lead, n = s[-3:], s[:-3], len(s) - 3
    for what, v, i in (("height", h, -2), ("width", w, -1)):
        if v % r:
            raise _shape_error(f"pixel_unshuffle expects {what} to be divisible by "
                               f"downscale_factor, but input.size({i})={v} is not divisible "
                               f"by {r}")
    x = np.reshape(input, lead + (c, h // r, r, w // r, r))
    x = np.transpose(x, tuple(range(n)) + (n, n + 2, n + 4, n + 1, n + 3))
    return np.reshape(x, lead + (c * r * r, h // r, w // r))


def _float(x):
    dt = np.result_type(getattr(x, "dtype", np.float64))
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _source(n_in, n_out, scale, align_corners, mode):
    """PyTorch's source coordinate of each output index (``area_pixel_compute_source_index``
    and ``nearest``'s floor)."""
    j = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        # PyTorch's kernel computes the nearest index in float32: so do we, to agree on
        # the indices where j·in/out rounds onto an integer.
        r = np.float32(n_in) / np.float32(n_out) if scale is None else np.float32(1.0 / scale)
        return np.minimum(np.floor(j.astype(np.float32) * r).astype(np.int64), n_in - 1)
    if align_corners:
        return j * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    r = n_in / n_out if scale is None else 1.0 / scale
    return np.maximum((j + 0.5) * r - 0.5, 0.0)


def _linear_matrix(n_in, src, dtype):
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    m = np.zeros((len(src), n_in), dtype=dtype)
    rows = np.arange(len(src))
    np.add.at(m, (rows, i0), 1.0 - lam)
    np.add.at(m, (rows, i1), lam)
    return m


_MODES = {"nearest": None, "linear": 1, "bilinear": 2, "trilinear": 3}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """PyTorch's ``F.interpolate`` for modes ``'nearest'``, ``'linear'`` (3-d input),
    ``'bilinear'`` (4-d), ``'trilinear'`` (5-d): resample the spatial axes to ``size`` or by
    ``scale_factor``, with ``align_corners`` as PyTorch (default False)."""
    if mode not in _MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported (use "
                                  "'nearest', 'linear', 'bilinear' or 'trilinear')")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    nd = ndim_of(input) - 2
    if nd < 1:
        raise ValueError(f"interpolate: expected a batched input (N, C, ...), got shape "
                         f"{shape_of(input)}")
    if _MODES[mode] is not None and _MODES[mode] != nd:
        raise NotImplementedError(f"interpolate: mode {mode!r} needs a {_MODES[mode] + 2}-d "
                                  f"input, got {nd + 2}-d")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = shape_of(input)[2:]
    if size is not None:
        sizes, scales = list(_ntuple(size, nd)), [None] * nd
    else:
        scales = list(_ntuple(scale_factor, nd))
        sizes = [int(math.floor(n * s)) for n, s in zip(spatial, scales)]
        if recompute_scale_factor:
            scales = [None] * nd
    dtype = _float(input)
    x = input
    for k in range(nd):
        axis, n_in = 2 + k, spatial[k]
        src = _source(n_in, sizes[k], scales[k], bool(align_corners), mode)
        # PyTorch's CPU kernels take shortcuts a non-integer scale_factor can reach: a
        # linear axis that keeps its size is copied, and so is a nearest axis of a 2-d
        # input, which takes i // 2 where it doubles (1-d and 3-d nearest: no shortcut).
        if n_in == sizes[k] and (mode != "nearest" or nd == 2):
            src = np.arange(n_in) if mode == "nearest" else np.arange(n_in, dtype=np.float64)
        elif mode == "nearest" and nd == 2 and sizes[k] == 2 * n_in:
            src = np.arange(sizes[k]) // 2
        if mode == "nearest":
            x = np.take(x, src, axis=axis)
        else:
            x = _along(x, axis, _linear_matrix(n_in, src, dtype))
    return x


# ----- Layers -----
def _ntuple(v, n):
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


class _ConvNd(Module):
    _nd = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        _groups(groups, in_channels, out_channels, name)
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be 'zeros', 'reflect', 'replicate' "
                             f"or 'circular', got {padding_mode!r}")
        if padding_mode != "zeros" and self._transposed:
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r} on a transposed "
                                      "convolution (PyTorch supports only 'zeros' there)")
        n = self._nd
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and any(s != 1 for s in _ntuple(stride, n)):
                raise ValueError("padding='same' is not supported for strided convolutions")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = _ntuple(kernel_size, n), _ntuple(stride, n)
        self.padding = padding if isinstance(padding, str) else _ntuple(padding, n)
        self.dilation = _ntuple(dilation, n)
        self.groups, self.padding_mode = groups, padding_mode
        # PyTorch's layouts: (out, in/groups, k…), transposed (in, out/groups, k…).
        wshape = ((in_channels, out_channels // groups) if self._transposed else
                  (out_channels, in_channels // groups))
        self.weight = Parameter(np.empty(wshape + self.kernel_size, dtype=dtype))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if bias:
            fan_in = wshape[1] * int(np.prod(self.kernel_size))
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
            init.uniform_(self.bias, -bound, bound)
        else:
            self.bias = None

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self._nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0,) * self._nd) != (0,) * self._nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _padded(self, x):
        """The input padded by ``padding_mode`` (reflect, replicate, circular) and the
        padding left for the convolution itself. ``'same'`` pads d·(k-1) in all, the odd one
        after (PyTorch's split)."""
        if self.padding_mode == "zeros":
            return x, self.padding
        from .functional import pad
        if self.padding == "valid":
            pairs = [(0, 0)] * self._nd
        elif self.padding == "same":
            tot = [d * (k - 1) for k, d in zip(self.kernel_size, self.dilation)]
            pairs = [(t // 2, t - t // 2) for t in tot]
        else:
            pairs = [(p, p) for p in self.padding]
        amounts = []
        for pair in reversed(pairs):
            amounts += list(pair)
        return pad(x, amounts, mode=self.padding_mode), (0,) * self._nd


class Conv2d(_ConvNd):
    """2-d convolution (cross-correlation) of (N, C, H, W) inputs, weight
    (O, C/groups, kh, kw), PyTorch's default initialisation (Kaiming-uniform with a = √5,
    bias ±1/√fan_in)."""
    _nd = 2

    def forward(self, x):
        x, padding = self._padded(x)
        return conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                      self.groups)


class Conv1d(_ConvNd):
    """1-d convolution of (N, C, L) inputs, weight (O, C/groups, k)."""
    _nd = 1

    def forward(self, x):
        x, padding = self._padded(x)
        return conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                      self.groups)


class Conv3d(_ConvNd):
    """3-d convolution of (N, C, D, H, W) or (C, D, H, W) inputs, weight
    (O, C/groups, kd, kh, kw)."""
    _nd = 3

    def forward(self, x):
        x, padding = self._padded(x)
        return conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                      self.groups)


class ConvTranspose2d(_ConvNd):
    """The transpose (gradient) of ``Conv2d``: weight (Cin, Cout/groups, kh, kw); output
    size ``(H - 1)·stride - 2·padding + dilation·(k - 1) + output_padding + 1``."""
    _nd = 2
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=np.float64):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, dtype)
        self.output_padding = _ntuple(output_padding, self._nd)

    def forward(self, x, output_size=None):
        if output_size is not None:
            raise NotImplementedError("ConvTranspose: output_size= is not supported; give "
                                      "output_padding= instead")
        fn = {1: conv_transpose1d, 2: conv_transpose2d, 3: conv_transpose3d}[self._nd]
        return fn(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                  self.groups, self.dilation)


class ConvTranspose1d(ConvTranspose2d):
    """The transpose of ``Conv1d``: weight (Cin, Cout/groups, k)."""
    _nd = 1


class ConvTranspose3d(ConvTranspose2d):
    """The transpose of ``Conv3d``: weight (Cin, Cout/groups, kd, kh, kw)."""
    _nd = 3


class MaxPool2d(Module):
    """The maximum over each window (``stride`` defaults to ``kernel_size``)."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.dilation, self.ceil_mode = padding, dilation, ceil_mode
        self.return_indices = return_indices

    def forward(self, x):
        return max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(MaxPool2d):
    """The maximum over each window of (N, C, L) inputs."""

    def forward(self, x):
        return max_pool1d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)


class MaxPool3d(MaxPool2d):
    """The maximum over each window of (N, C, D, H, W) or (C, D, H, W) inputs."""

    def forward(self, x):
        return max_pool3d(x, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)


class AvgPool2d(Module):
    """The mean over each window (``stride`` defaults to ``kernel_size``)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding, self.ceil_mode = padding, ceil_mode
        self.count_include_pad, self.divisor_override = count_include_pad, divisor_override

    def forward(self, x):
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool3d(AvgPool2d):
    """The mean over each window of (N, C, D, H, W) or (C, D, H, W) inputs."""

    def forward(self, x):
        return avg_pool3d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


class AvgPool1d(Module):
    """The mean over each window of (N, C, L) inputs."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, 1)
        self.stride = _ntuple(stride if stride is not None else kernel_size, 1)
        self.padding = _ntuple(padding, 1)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, x):
        return avg_pool1d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """The mean over PyTorch's adaptive bins to ``output_size`` (an int, a pair, ``None``
    keeps an axis)."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    def forward(self, x):
        return adaptive_avg_pool1d(x, self.output_size)


class AdaptiveAvgPool3d(AdaptiveAvgPool2d):
    def forward(self, x):
        return adaptive_avg_pool3d(x, self.output_size)


class AdaptiveMaxPool2d(Module):
    """The maximum over PyTorch's adaptive bins to ``output_size`` (an int, a pair, ``None``
    keeps an axis); ``return_indices=True`` also gives the flat indices."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size, self.return_indices = output_size, return_indices

    def forward(self, x):
        return adaptive_max_pool2d(x, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    def forward(self, x):
        return adaptive_max_pool1d(x, self.output_size, self.return_indices)


class AdaptiveMaxPool3d(AdaptiveMaxPool2d):
    def forward(self, x):
        return adaptive_max_pool3d(x, self.output_size, self.return_indices)


class MaxUnpool2d(Module):
    """``max_unpool2d`` as a layer: ``forward(input, indices, output_size=None)``."""
    _nd = 2

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        n = self._nd
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride if stride is not None else kernel_size, n)
        self.padding = _ntuple(padding, n)

    def forward(self, input, indices, output_size=None):
        fn = max_unpool2d if self._nd == 2 else max_unpool1d
        return fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(MaxUnpool2d):
    _nd = 1


class Unfold(Module):
    """``unfold`` as a layer: the sliding blocks of (N, C, H, W) as columns."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, x):
        return unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Module):
    """``fold`` as a layer: columns summed back into (N, C, *output_size)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x):
        return fold(x, self.output_size, self.kernel_size, self.dilation, self.padding,
                    self.stride)

    def extra_repr(self):
        return (f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
                f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}")


class PixelShuffle(Module):
    """(…, C·r², H, W) → (…, C, H·r, W·r)."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x):
        return pixel_shuffle(x, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(…, C, H·r, W·r) → (…, C·r², H, W)."""

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x):
        return pixel_unshuffle(x, self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"


class Upsample(Module):
    """``F.interpolate`` as a layer: ``Upsample(size=None, scale_factor=None,
    mode='nearest', align_corners=None)``."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        # PyTorch keeps a scale factor as float(s) (its repr shows 2.0)
        if scale_factor is not None:
            scale_factor = (tuple(float(f) for f in scale_factor)
                            if isinstance(scale_factor, (tuple, list)) else float(scale_factor))
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def extra_repr(self):
        s = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        return s + f", mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``Upsample(size, scale_factor, mode='nearest')`` (PyTorch's older name)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(size, scale_factor, mode='bilinear', align_corners=True)``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
