"""``nn.functional``: activations and losses as compositions of the engine's primitives.

Every function takes NumPy arrays or tracked values and is differentiable to any order.
Stable forms where the naive one overflows: ``sigmoid(x) = (1 + tanh(x/2))/2``,
``softplus(x) = max(x, 0) + log1p(exp(-|x|))``, ``log_softmax`` is a primitive, and the
logits losses never exponentiate a large number.
"""
import math
import warnings

import numpy as np
from scipy.special import erf

from autodiff.arrays import as_like, host_values
from autodiff.boxes import data, lift, meta, recorded, unbox
from autodiff.core import ndim_of, opaque_types, shape_of
from autodiff.ops.define import elementwise
from autodiff.ops.elementwise import relu_p
from autodiff.ops.linalg import linear_p
from autodiff.ops.shape import getitem_p, index_add_p
from autodiff.ops.softmax import log_softmax as _log_softmax
from autodiff.ops.softmax import logsumexp as _logsumexp
from autodiff.ops.softmax import softmax_cross_entropy

from .module import ShapeError  # noqa: F401 (F.ShapeError, the errors of this module)

__all__ = ["linear", "relu", "leaky_relu", "elu", "gelu", "tanh", "sigmoid", "softplus",
           "silu", "mish", "hardtanh", "relu6", "selu", "celu", "logsigmoid", "hardswish",
           "hardsigmoid", "softsign", "tanhshrink", "softshrink", "hardshrink", "threshold",
           "prelu", "rrelu", "glu",
           "softmax", "softmin", "log_softmax", "dropout", "embedding", "one_hot", "pad",
           "normalize", "cosine_similarity", "pairwise_distance",
           "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss", "kl_div",
           "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "logsumexp",
           "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
           "poisson_nll_loss", "gaussian_nll_loss", "triplet_margin_loss", "soft_margin_loss",
           "multilabel_soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss",
           "triplet_margin_with_distance_loss", "ctc_loss",
           "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout",
           "bilinear", "channel_shuffle", "local_response_norm", "embedding_bag"]


# ----- Layers as functions -----
def linear(x, weight, bias=None):
    """``x Wᵀ + b`` with ``W`` of shape (out_features, in_features), as PyTorch."""
    if bias is None:
        return x @ weight.T
    return linear_p(x, weight, bias)


def dropout(input, p=0.5, training=True, inplace=False, *, rng=None):
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p), when
    ``training`` (PyTorch's default ``True``: pass ``training=self.training`` in a module).
    Draws from ``nn.init``'s generator (``nn.init.manual_seed``) unless ``rng`` is given;
    ``inplace`` is accepted and ignored (a new value is returned)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    dtype = _float_dtype(input)
    if p == 1.0:
        return input * np.zeros(np.shape(input), dtype=dtype)
    if rng is None:
        from .init import default_generator
        rng = default_generator()
    keep = rng.random(np.shape(input)) >= p
    return input * _on_device_of(input, (keep / (1.0 - p)).astype(dtype))


def _on_device_of(input, mask):
    """A host-drawn mask where ``input`` lives (on the device for ``autodiff.gpu``)."""
    return as_like(mask, meta(input))


def _feature_mask(input, p, lead):
    """Keep (1) or drop (0) each entry of the ``lead`` leading axes (whole feature maps),
    broadcast over the rest; from ``nn.init``'s generator, as ``dropout``."""
    from .init import default_generator
    shape = tuple(shape_of(input))
    keep = default_generator().random(shape[:lead] + (1,) * (len(shape) - lead)) >= p
    return keep, _float_dtype(input)


def _dropout_nd(input, p, training, n):
    """Channel dropout for ``n`` spatial axes: a batched input (``n + 2`` axes) drops each
    (sample, channel) map, an unbatched one each channel, as PyTorch's ``dropout{n}d``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    nd = ndim_of(input)
    if n == 1 and nd not in (2, 3):
        raise RuntimeError(f"dropout1d: Expected 2D or 3D input, but received a {nd}D input")
    if not training or p == 0.0:
        return input
    # dropout2d masks the first two axes whatever the rank (a 3-d input is (N, C, L)), as
    # PyTorch does; dropout1d/3d count an input of n + 1 axes as unbatched
    lead = 2 if n == 2 or nd == n + 2 else 1
    keep, dtype = _feature_mask(input, p, lead)
    if p == 1.0:
        return input * np.zeros(keep.shape, dtype=dtype)
    return input * _on_device_of(input, (keep / (1.0 - p)).astype(dtype))


def dropout1d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, L) or (C, L) with probability ``p``, scale by 1/(1-p)."""
    return _dropout_nd(input, p, training, 1)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole (N, C) feature maps of (N, C, H, W) with probability ``p``."""
    return _dropout_nd(input, p, training, 2)


def dropout3d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) with probability ``p``."""
    return _dropout_nd(input, p, training, 3)


_SELU_ALPHA_LAMBDA = 1.7580993408473766      # λα of SELU: its negative saturation is -λα


def _alpha_dropout(input, p, training, lead):
    """Dropped entries set to SELU's saturation -λα, then ``a x + b`` keeps the mean and
    variance of a standard input: ``a = ((1-p)(1 + p λ²α²))^{-1/2}``, ``b = a λα p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * np.zeros(np.shape(input), dtype=_float_dtype(input))
    keep, dtype = _feature_mask(input, p, lead)
    c = _SELU_ALPHA_LAMBDA
    a = 1.0 / math.sqrt((c * c * p + 1.0) * (1.0 - p))
    shift = (keep - 1.0) * (c * a) + c * a * p
    return (input * _on_device_of(input, (keep * a).astype(dtype))
            + _on_device_of(input, shift.astype(dtype)))


def alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Dropout for SELU networks (PyTorch's default ``training=False`` for this one)."""
    return _alpha_dropout(input, p, training, ndim_of(input))


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False):
    """Alpha dropout of whole (N, C) feature maps."""
    return _alpha_dropout(input, p, training, min(2, ndim_of(input)))


def bilinear(input1, input2, weight, bias=None):
    """``y_o = Σ_ij x1_i W_oij x2_j + b_o`` over the last axes (PyTorch's ``F.bilinear``)."""
    y = np.einsum("...i,oij,...j->...o", input1, weight, input2)
    return y if bias is None else y + bias


def channel_shuffle(input, groups):
    """(N, g·k, …) → (N, k·g, …): channel ``i·k + j`` moves to ``j·g + i``."""
    s = tuple(shape_of(input))
    if len(s) < 3:
        raise RuntimeError(f"channel_shuffle expects input with > 2 dims, but got input with "
                           f"sizes {list(s)}")
    if s[1] % groups:
        raise RuntimeError(f"channel_shuffle: number of channels ({s[1]}) must be divisible "
                           f"by groups ({groups})")
    y = np.reshape(input, (s[0], groups, s[1] // groups) + s[2:])
    return np.reshape(np.swapaxes(y, 1, 2), s)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """``x / (k + α/n Σ x²)^β``, the sum over ``size`` neighbouring channels (zero-padded,
    ``size // 2`` before and ``(size - 1) // 2`` after), as PyTorch's."""
    nd = ndim_of(input)
    if nd < 3:
        raise ValueError(f"local_response_norm: expected 3D or higher dimensional input "
                         f"(got {nd} dimensions)")
    sq = input * input
    c = shape_of(input)[1]
    padded = pad(sq, (0, 0) * (nd - 2) + (size // 2, (size - 1) // 2))
    window = sum(padded[:, j:j + c] for j in range(size))
    return input / (k + alpha / size * window) ** beta


def embedding(input, weight, padding_idx=None):
    """Rows ``weight[input]`` (PyTorch's ``F.embedding``); the row ``padding_idx`` gets no
    gradient."""
    traced = type(input) in opaque_types        # recorded by ad.jit: stays a gather
    idx = host_values(meta(input))
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding needs integer indices, got dtype {idx.dtype}")
    n = shape_of(weight)[0]
    if idx.size:
        lo, hi = idx.min(), idx.max()
        if lo < 0 or hi >= n:
            # As PyTorch: no wrap-around of negative indices (-1 is no "last row").
            raise IndexError(f"embedding: index {lo if lo < 0 else hi} out of range [0, {n})")
    from autodiff.api import stop_gradient
    if traced:
        rows = getitem_p(weight, idx=input)
        if padding_idx is None:
            return rows
        if padding_idx < 0:
            padding_idx += n
        # No shortcut on pad.any(): that would guard the recording on the indices' values.
        return np.where((input == padding_idx)[..., None],
                        getitem_p(stop_gradient(weight), idx=input), rows)
    rows = weight[idx]
    if padding_idx is None:
        return rows
    if padding_idx < 0:
        padding_idx += n
    pad = idx == padding_idx
    if not pad.any():
        return rows
    return np.where(pad[..., None], stop_gradient(weight)[idx], rows)


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2,
                  scale_grad_by_freq=False, mode="mean", sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sums, means or maxima of bags of rows of ``weight`` (PyTorch's ``F.embedding_bag``):
    the bags are the rows of a 2-d ``input``, or the slices ``input[offsets[b]:
    offsets[b+1]]`` of a 1-d one. Entries equal to ``padding_idx`` are left out (of a mean's
    count too); an empty bag gives zeros; ``per_sample_weights`` scale the rows of a sum. The
    derivative is that of a gather followed by a segment sum (or a max, to its maximum)."""
    if max_norm is not None or scale_grad_by_freq:
        raise NotImplementedError("embedding_bag: max_norm and scale_grad_by_freq are not "
                                  "supported")
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(f"embedding_bag: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' "
                                  f"(got mode='{mode}')")
    idx = host_values(meta(input))
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is "
                             "treated is a mini-batch of fixed length sequences")
        starts = np.arange(idx.shape[0]) * idx.shape[1]
        ends = starts + idx.shape[1]
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        off = np.asarray(meta(offsets)).astype(np.int64).reshape(-1)
        if off.size and off[0] != 0:
            raise RuntimeError("offsets[0] has to be 0, i.e., the first sequence in the "
                               "mini-batch has to start from position 0")
        if np.any(np.diff(off) < 0) or (off.size and off[-1] > idx.size):
            raise RuntimeError("embedding_bag: offsets must be non-decreasing and within "
                               f"the input's {idx.size} entries")
        starts = off[:-1] if include_last_offset else off
        ends = off[1:] if include_last_offset else np.append(off[1:], idx.size)
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{idx.ndim}")
    n_bags, dim = len(starts), shape_of(weight)[1]
    counts = ends - starts
    bag = np.repeat(np.arange(n_bags), counts)
    pos = np.arange(counts.sum()) + np.repeat(starts - (np.cumsum(counts) - counts), counts)
    flat = idx.reshape(-1)[pos]
    if padding_idx is not None:
        keep = flat != padding_idx % shape_of(weight)[0]
        bag, pos, flat = bag[keep], pos[keep], flat[keep]
    rows = embedding(flat, weight)
    if per_sample_weights is not None:
        rows = rows * np.reshape(per_sample_weights, -1)[pos][:, None]
    dtype = _float_dtype(weight)
    if mode == "max":
        count = np.bincount(bag, minlength=n_bags)
        if not count.size or count.max() == 0:
            return np.zeros((n_bags, dim), dtype) + 0.0 * np.sum(rows)   # still tracked
        # a (bag, rank) table of row numbers; short bags point at a row of -inf
        rank = np.arange(len(bag)) - np.repeat(np.cumsum(count) - count, count)
        table = np.full((n_bags, count.max()), len(bag))
        table[bag, rank] = np.arange(len(bag))
        ext = np.concatenate([rows, np.full((1, dim), -np.inf, dtype)])
        return np.where(count[:, None] > 0, np.max(ext[table], axis=1), 0.0)
    out = index_add_p(rows, idx=(bag,), shape=(n_bags, dim))
    if mode == "mean":
        count = np.bincount(bag, minlength=n_bags)
        out = out / np.maximum(count, 1)[:, None].astype(dtype)
    return out


def one_hot(tensor, num_classes=-1):
    """Integer labels (…) → int64 one-hot rows (…, num_classes); ``num_classes=-1`` takes
    the largest label + 1 (PyTorch's ``F.one_hot``)."""
    t = host_values(unbox(tensor))
    if t.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensors (integer labels), "
                           f"got dtype {t.dtype}")
    if t.size and t.min() < 0:
        raise RuntimeError("one_hot: class values must be non-negative")
    if num_classes == -1:
        num_classes = int(t.max()) + 1 if t.size else 0
        if not t.size:
            raise RuntimeError("one_hot: cannot infer the number of classes of an empty "
                               "tensor; pass num_classes")
    if t.size and t.max() >= num_classes:
        raise RuntimeError("one_hot: class values must be smaller than num_classes")
    return (t[..., None] == np.arange(num_classes)).astype(np.int64)


def pad(input, pad, mode="constant", value=None):
    """PyTorch's ``F.pad``: ``pad = (left, right)`` for the last axis, then
    ``(left, right)`` of the one before, …; modes ``'constant'`` (``value``, default 0;
    negative amounts crop), ``'reflect'`` (no edge repeat), ``'replicate'`` (the edge),
    ``'circular'`` (wrap around)."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ShapeError(f"pad: padding length must be divisible by 2, got {len(pad)}")
    nd = ndim_of(input)
    if len(pad) // 2 > nd:
        raise ShapeError(f"pad: padding length {len(pad)} is too large for a {nd}-d input")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad: mode {mode!r} (use 'constant', 'reflect', "
                                  "'replicate' or 'circular')")
    if mode != "constant" and value:
        raise ShapeError(f"pad: value= is for mode='constant', not {mode!r}")
    x = input
    for k in range(len(pad) // 2):
        axis = nd - 1 - k
        before, after = pad[2 * k], pad[2 * k + 1]
        n = shape_of(x)[axis]
        if mode == "constant":
            x = _pad_constant(x, axis, before, after, 0.0 if value is None else value)
            continue
        if before < 0 or after < 0:
            raise ShapeError("pad: negative padding is only for mode='constant'")
        if mode == "reflect" and (before >= n or after >= n):
            raise ShapeError(f"pad: reflect padding ({before}, {after}) must be smaller than "
                             f"the axis size {n}")
        if mode == "circular" and (before > n or after > n):
            raise ShapeError(f"pad: circular padding ({before}, {after}) must be at most the "
                             f"axis size {n}")
        j = np.arange(-before, n + after)
        if mode == "reflect":
            j = np.abs(j)
            j = np.where(j > n - 1, 2 * (n - 1) - j, j)
        elif mode == "replicate":
            j = np.clip(j, 0, n - 1)
        else:
            j = j % n
        x = np.take(x, j, axis=axis)
    return x


def _pad_constant(x, axis, before, after, value):
    s = shape_of(x)
    n = s[axis]
    if before < 0 or after < 0:            # negative padding crops
        sl = [slice(None)] * len(s)
        sl[axis] = slice(max(-before, 0), n - max(-after, 0))
        x = x[tuple(sl)]
        before, after = max(before, 0), max(after, 0)
    parts = []
    for m in (before, after):
        shape = list(shape_of(x))
        shape[axis] = m
        parts.append(np.full(tuple(shape), value, dtype=_float_dtype(x)) if m else None)
    if parts[0] is None and parts[1] is None:
        return x
    return np.concatenate([a for a in (parts[0], x, parts[1]) if a is not None], axis=axis)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """``x / max(‖x‖_p, eps)`` along ``dim`` (PyTorch's ``F.normalize``); the norm is
    clamped before the root, so a zero vector has a finite derivative."""
    if p == 2:
        n = np.sqrt(np.maximum(np.sum(input * input, axis=dim, keepdims=True), eps * eps))
    elif p == np.inf:
        n = np.maximum(np.max(np.abs(input), axis=dim, keepdims=True), eps)
    else:
        s = np.sum(np.abs(input) ** p, axis=dim, keepdims=True)
        n = np.maximum(s, eps ** p) ** (1.0 / p)
    return input / n


def _norm_last(d, p, axis, keepdim):
    """‖d‖_p along ``axis`` with a zero derivative at d = 0 (PyTorch's choice for a norm,
    where √ and the p-th root have none)."""
    if p == np.inf:
        return np.max(np.abs(d), axis=axis, keepdims=keepdim)
    if p == -np.inf:
        return np.min(np.abs(d), axis=axis, keepdims=keepdim)
    if p == 0:      # the number of nonzero entries: no derivative
        return np.sum((d != 0).astype(_float_dtype(d)), axis=axis, keepdims=keepdim)
    if p == 1:
        return np.sum(np.abs(d), axis=axis, keepdims=keepdim)
    s = np.sum(d * d if p == 2 else np.abs(d) ** p, axis=axis, keepdims=keepdim)
    pos = s > 0
    safe = np.where(pos, s, 1.0)
    return np.where(pos, np.sqrt(safe) if p == 2 else safe ** (1.0 / p), 0.0)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """``‖x1 - x2 + eps‖_p`` along the last axis of the broadcast inputs (PyTorch's
    ``F.pairwise_distance``; ``p`` may be any number, ``inf`` or ``-inf``)."""
    axis = max(ndim_of(x1), ndim_of(x2)) - 1
    return _norm_last(x1 - x2 + eps, p, axis, keepdim)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """``Σ (x1/max(‖x1‖, ε)) (x2/max(‖x2‖, ε))`` along ``dim`` of the broadcast inputs
    (PyTorch's ``F.cosine_similarity``).

    As PyTorch, each vector is divided by its norm first (the result stays in [-1, 1]), and
    the clamp at ``eps`` carries no derivative of its own: below ``eps`` the norm's derivative
    still flows, so the gradients equal torch's for tiny vectors too.
    """
    shape = np.broadcast_shapes(shape_of(x1), shape_of(x2))
    from autodiff.api import stop_gradient
    out = None
    for x in (x1, x2):
        if shape_of(x) != shape:     # PyTorch expands first: a norm over the broadcast axis
            x = np.broadcast_to(x, shape)
        n = _norm_last(x, 2, dim, True)
        n = n + stop_gradient(np.maximum(n, eps) - n)
        out = x / n if out is None else out * (x / n)
    return np.sum(out, axis=dim)


# ----- Activations -----
# ``inplace=`` is PyTorch's signature; accepted and ignored (values are never overwritten).
def silu(x, inplace=False):
    """x σ(x) (also called swish)."""
    return x * sigmoid(x)


def mish(x, inplace=False):
    """x tanh(softplus(x))."""
    return x * np.tanh(_softplus(x))


def hardtanh(x, min_val=-1.0, max_val=1.0, inplace=False):
    """x clipped to [min_val, max_val]; the derivative is PyTorch's, 1 strictly inside and
    0 at the bounds (``np.clip`` would give ½ there)."""
    v = data(x)
    return np.where(v <= min_val, min_val, np.where(v >= max_val, max_val, x))


def relu6(x, inplace=False):
    """hardtanh(x, 0, 6)."""
    return hardtanh(x, 0.0, 6.0)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """λ·x above 0, λα(eˣ - 1) at and below (λ ≈ 1.0507, α ≈ 1.6733: self-normalising)."""
    return _SELU_SCALE * elu(input, _SELU_ALPHA)


def celu(input, alpha=1.0, inplace=False):
    """x above 0, α(e^{x/α} - 1) at and below: the derivative is 1 at 0 from both sides."""
    return np.where(input > 0, input, alpha * np.expm1(np.where(input > 0, 0.0, input) / alpha))


def logsigmoid(input):
    """log σ(x) = -softplus(-x): no overflow for any x."""
    return -_softplus(-input)


def hardswish(input, inplace=False):
    """x·relu6(x + 3)/6; derivative 0 at x = -3 and 1 at x = 3 (PyTorch's)."""
    x = input
    return np.where(x <= -3.0, 0.0, np.where(x < 3.0, x * (x + 3.0) / 6.0, x))


def hardsigmoid(input, inplace=False):
    """relu6(x + 3)/6; derivative 1/6 strictly inside (-3, 3), 0 elsewhere (PyTorch's)."""
    x = input
    return np.where(x <= -3.0, 0.0, np.where(x < 3.0, x / 6.0 + 0.5, 1.0))


def softsign(input):
    """x / (1 + |x|)."""
    return input / (np.abs(input) + 1.0)


def tanhshrink(input):
    """x - tanh x."""
    return input - np.tanh(input)


def softshrink(input, lambd=0.5):
    """x ∓ λ beyond ±λ, 0 on [-λ, λ] (derivative 0 at ±λ, as PyTorch)."""
    if lambd < 0:
        raise ShapeError(f"softshrink: lambda must be greater or equal to 0, got {lambd}")
    x = input
    return np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, 0.0))


def hardshrink(input, lambd=0.5):
    """x where |x| > λ, else 0 (derivative 0 at ±λ, as PyTorch)."""
    x = input
    return np.where((x > lambd) | (x < -lambd), x, 0.0)


def threshold(input, threshold, value, inplace=False):
    """x where x > threshold, else ``value``."""
    return np.where(input > threshold, input, value)


def prelu(input, weight):
    """x above 0, a·x at and below, with ``weight`` a scalar or one slope per channel (axis 1,
    PyTorch's layout; an input of fewer than 2 axes has one channel)."""
    nw, nd = ndim_of(weight), ndim_of(input)
    if nw > 1:
        raise ShapeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: "
                         f"ndim = {nw}")
    n = int(np.prod(shape_of(weight)))
    if n == 1:
        a = np.reshape(weight, ())           # a 0-d input stays 0-d
    else:
        c = shape_of(input)[1] if nd >= 2 else 1
        if c != n:
            raise ShapeError("Mismatch of parameter numbers and input channel size. Found "
                             f"parameter numbers = {n} and channel size = {c}.")
        a = np.reshape(weight, (n,) + (1,) * (nd - 2))
    return np.where(input > 0, input, a * input)


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, *, rng=None):
    """Leaky ReLU with slope a ~ U(lower, upper) drawn per element where x ≤ 0 in training
    (from ``nn.init``'s generator unless ``rng`` is given), and the fixed slope
    (lower + upper)/2 otherwise (PyTorch's default ``training=False``)."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2.0)
    if rng is None:
        from .init import default_generator
        rng = default_generator()
    a = rng.uniform(lower, upper, np.shape(input)).astype(_float_dtype(input))
    return np.where(input <= 0, a * input, input)


def glu(input, dim=-1):
    """a·σ(b) for the halves a, b of ``input`` along ``dim`` (a gated linear unit)."""
    nd = ndim_of(input)
    if nd == 0:
        raise ShapeError("glu does not support scalars because halving size must be even")
    d = dim % nd
    n = shape_of(input)[d]
    if n % 2:
        raise ShapeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    first = [slice(None)] * nd
    second = list(first)
    first[d], second[d] = slice(0, n // 2), slice(n // 2, n)
    return input[tuple(first)] * sigmoid(input[tuple(second)])


def relu(x, inplace=False):
    """max(x, 0), with relu'(0) = 0 (PyTorch's and JAX's choice); NaN stays NaN."""
    return relu_p(x)


def leaky_relu(x, negative_slope=0.01, inplace=False):
    return np.where(x > 0, x, negative_slope * x)


def elu(x, alpha=1.0, inplace=False):
    # expm1 of x masked to 0 above 0: the unused branch never overflows (its derivative is
    # no NaN), and at x = 0 the derivative is α, the lower branch's (PyTorch's and JAX's);
    # np.minimum would split the tie and give α/2.
    return np.where(x > 0, x, alpha * np.expm1(np.where(x > 0, 0.0, x)))


def gelu(x, approximate="none"):
    """x Φ(x); ``approximate="tanh"`` for PyTorch's tanh form."""
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    if approximate != "none":
        raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


def tanh(x):
    return np.tanh(x)


def sigmoid(x):
    """1 / (1 + e^{-x}) written as (1 + tanh(x/2)) / 2: no overflow for any x."""
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _softplus(x):
    """log(1 + eˣ) = max(x, 0) + log1p(e^{-|x|}): no overflow, exact for every x."""
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + e^{βx}) / β, and x itself where βx > ``threshold`` (PyTorch's: there the two
    differ by under e^{-threshold}/β, and the derivative is 1)."""
    bx = beta * x
    out = _softplus(bx)
    if beta != 1.0:
        out = out / beta
    return np.where(bx > threshold, x, out)


def _softmax_dim(name, x, dim, axis, stacklevel, dtype):
    """``(x, axis)``: ``axis`` (NumPy's name) or ``dim``; neither takes PyTorch's deprecated
    implicit choice, axis 0 for 0-, 1- and 3-d inputs, else 1, with its warning; ``dtype``
    casts first."""
    if axis is None:
        axis = dim
    if axis is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the "
                      "call to include dim=X as an argument.", UserWarning,
                      stacklevel=stacklevel + 1)
        axis = 0 if ndim_of(x) in (0, 1, 3) else 1
    if dtype is not None:
        x = x.astype(dtype) if hasattr(x, "astype") else np.asarray(x, dtype)
    return x, axis


def log_softmax(x, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """x - logsumexp(x) along ``dim`` (see :func:`softmax` for ``dim=None``)."""
    x, axis = _softmax_dim("log_softmax", x, dim, axis, _stacklevel, dtype)
    return _log_softmax(x, axis=axis)


def softmax(x, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """eˣ / Σ eˣ along ``dim``; ``dim=None`` takes PyTorch's deprecated implicit choice (axis
    0 for 0-, 1- and 3-d inputs, else 1) with its warning; ``dtype`` casts first."""
    x, axis = _softmax_dim("softmax", x, dim, axis, _stacklevel, dtype)
    return np.exp(_log_softmax(x, axis=axis))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """softmax(-x) along ``dim`` (see :func:`softmax` for ``dim=None``)."""
    input, axis = _softmax_dim("softmin", input, dim, None, _stacklevel, dtype)
    return np.exp(_log_softmax(-input, axis=axis))


def logsumexp(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``log Σ exp(x)`` along ``dim`` (PyTorch's ``torch.logsumexp(x, dim, keepdim)``; also
    NumPy/SciPy's ``axis``/``keepdims``), without overflow."""
    return _logsumexp(x, axis=dim if axis is None else axis,
                      keepdims=keepdim if keepdims is None else keepdims)


# ----- Losses -----
def _reduce(loss, reduction):
    if reduction == "mean":
        return np.mean(loss)
    if reduction == "sum":
        return np.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_size(input, target, what):
    """PyTorch's warning for a regression target that broadcasts against the input
    ((N, 1) against (N,) gives an (N, N) loss)."""
    si, st = shape_of(input), shape_of(target)
    if si != st:
        warnings.warn(f"{what}: using a target size {st} that is different to the input "
                      f"size {si}. This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=3)


def _float_dtype(x):
    """The float dtype of a (tracked) value, float64 for Python numbers and integers."""
    dt = np.result_type(getattr(x, "dtype", np.float64))
    return dt if dt.kind == "f" else np.dtype(np.float64)


def mse_loss(input, target, reduction="mean"):
    """mean((x - y)²)."""
    _same_size(input, target, "mse_loss")
    d = input - target
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    """mean(|x - y|)."""
    _same_size(input, target, "l1_loss")
    return _reduce(np.abs(input - target), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """½d² where |d| ≤ δ, δ(|d| - ½δ) beyond (PyTorch's ``huber_loss``)."""
    _same_size(input, target, "huber_loss")
    d = input - target
    a = np.abs(d)
    quad = np.minimum(a, delta)
    return _reduce(0.5 * quad * quad + delta * (a - quad), reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """½d²/β where |d| < β, |d| - ½β beyond (PyTorch's ``smooth_l1_loss``: the Huber loss
    divided by β)."""
    _same_size(input, target, "smooth_l1_loss")
    if beta == 0.0:
        return l1_loss(input, target, reduction)
    d = input - target
    a = np.abs(d)
    quad = np.minimum(a, beta)
    return _reduce((0.5 / beta) * quad * quad + (a - quad), reduction)


def _labels(target, n_classes, what, ignore_index=None):
    """Integer class labels in [0, n_classes) (``ignore_index`` excepted), and the mask of
    the labels that count."""
    target = host_values(unbox(target))
    if target.dtype.kind not in "iu":
        raise TypeError(f"{what}: integer class labels expected, got dtype {target.dtype}")
    keep = np.ones(target.shape, dtype=bool) if ignore_index is None else target != ignore_index
    counted = target[keep]
    if counted.size:
        lo, hi = np.min(counted), np.max(counted)
        if lo < 0 or hi >= n_classes:
            bad = counted[(counted < 0) | (counted >= n_classes)][0]
            raise ValueError(f"{what}: labels must lie in [0, {n_classes}) (or equal "
                             f"ignore_index={ignore_index}), got {bad}")
    return np.where(keep, target, 0), keep


def _class_weight(weight, n_classes, input, what):
    """``weight`` (C,) as an array in the input's float dtype (float32 stays float32)."""
    w = np.asarray(unbox(weight))
    if w.shape != (n_classes,):
        raise ValueError(f"{what}: weight must have shape ({n_classes},) (one per class), got "
                         f"{w.shape}")
    return w.astype(_float_dtype(input))


def _pick(logp, target):
    """logp[n, target[n], ...] for class axis 1 (PyTorch's layout (N, C, d1, …))."""
    idx = np.expand_dims(target, 1)
    onehot = np.arange(logp.shape[1]).reshape((1, -1) + (1,) * (logp.ndim - 2)) == idx
    return np.sum(logp * _on_device_of(logp, onehot), axis=1)


def _counted_mean(loss, count):
    """``Σ loss / count``, PyTorch's mean over the counted targets' weights. None counted
    (every target ``ignore_index``: a padded batch) is NaN, as PyTorch's, with PyTorch's
    derivative 0 (0·(1/0) would be NaN, poisoning every weight the step updates)."""
    if type(count) not in opaque_types:
        return np.sum(loss) / count if count != 0 else np.sum(loss) * 0.0 + np.nan
    none = count == 0                           # recorded by ad.jit: a replay decides
    return np.sum(loss) / np.where(none, 1.0, count) + np.where(none, np.nan, 0.0)


def nll_loss(input, target, weight=None, reduction="mean", ignore_index=-100):
    """Negative log-likelihood of integer labels given log-probabilities (class axis 1);
    labels equal to ``ignore_index`` count for nothing, also in the mean's divisor."""
    if ndim_of(input) == 1:
        return nll_loss(input[None], host_values(unbox(target))[None],
                        weight, reduction, ignore_index)
    n_classes = shape_of(input)[1]
    if recorded(target):    # under ad.jit (nn.compile_step): recorded, replayed per batch
        target, keep = lift(lambda t: _labels(t, n_classes, "nll_loss", ignore_index), target)
    else:
        target, keep = _labels(target, n_classes, "nll_loss", ignore_index)
    w = keep.astype(_float_dtype(input))
    if weight is not None:
        w = w * _class_weight(weight, n_classes, input, "nll_loss")[target]
    loss = -_pick(input, target) * _on_device_of(input, w)
    return _counted_mean(loss, np.sum(w)) if reduction == "mean" else _reduce(loss, reduction)


def cross_entropy(input, target, weight=None, reduction="mean", label_smoothing=0.0,
                  ignore_index=-100):
    """Softmax cross-entropy of logits ``input`` (N, C, …) against integer labels (N, …)
    or class probabilities (N, C, …), with PyTorch's ``weight``, ``ignore_index`` and
    ``label_smoothing``.

    A float target is read as probabilities and must have the input's shape (as in
    PyTorch; float class labels are refused, never broadcast). One primitive
    (``softmax_cross_entropy``) computes ``-Σ_c y_c log softmax(x)_c`` per sample from the
    logits, stably; labels become the class weights ``y`` here.
    """
    si = shape_of(input)
    if recorded(target) and weight is None and len(si) >= 2 and \
            np.result_type(meta(target)).kind in "iu":
        return _recorded_labels_cross_entropy(input, target, reduction, label_smoothing,
                                              ignore_index)
    t = unbox(target)
    if hasattr(t, "to_host") and t.dtype.kind not in "fc":
        t = t.to_host()             # device labels: read on the host once (they index)
    elif not hasattr(t, "to_host"):
        t = np.asarray(t)
    if t.dtype.kind in "fc" and t.shape != si:
        raise ValueError(
            f"cross_entropy: a float target is read as class probabilities and must have the "
            f"input's shape {si}, got {t.shape}; class labels must be integers "
            f"(target.astype(np.int64)).")
    if len(si) == 1:
        return cross_entropy(input[None], target[None] if t.dtype.kind == "f" else t[None],
                             weight, reduction, label_smoothing, ignore_index)
    n_classes = si[1]
    shape = (1, n_classes) + (1,) * (len(si) - 2)
    dtype = _float_dtype(input)
    wc = None if weight is None else _class_weight(weight, n_classes, input, "cross_entropy")
    labels = None
    if t.dtype.kind == "f":                    # class probabilities
        y = target
    else:
        labels, keep = _labels(t, n_classes, "cross_entropy", ignore_index)
        # One-hot in the logits' dtype: a float32 model must stay float32 end to end.
        y = np.eye(n_classes, dtype=dtype)[labels] * keep[..., None].astype(dtype)
        if len(si) > 2:
            y = np.moveaxis(y, -1, 1)
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / n_classes
        if labels is not None:
            y = y * np.expand_dims(keep, 1).astype(dtype)
    if wc is not None:
        y = y * wc.reshape(shape)
    if labels is not None:
        y = as_like(y, meta(input))     # the one-hot goes where the logits are (a device)
    loss = softmax_cross_entropy(input, y, axis=1 - len(si))
    if reduction == "mean" and labels is not None:
        # PyTorch divides by the summed weights of the counted targets' classes.
        w = keep.astype(dtype) if wc is None else wc[labels] * keep
        return _counted_mean(loss, np.sum(w))
    return _reduce(loss, reduction)


def _recorded_labels_cross_entropy(input, target, reduction, label_smoothing, ignore_index):
    """``cross_entropy`` of integer labels recorded by ``ad.jit`` (``nn.compile_step``):
    the one-hot weights and the count are one recorded function of the labels, so a
    replay on the next batch's labels computes them afresh (the eager code above reads the
    labels as plain numbers)."""
    si = shape_of(input)
    n_classes, dtype = si[1], _float_dtype(input)

    def weights(t):
        labels, keep = _labels(t, n_classes, "cross_entropy", ignore_index)
        y = np.eye(n_classes, dtype=dtype)[labels] * keep[..., None].astype(dtype)
        if len(si) > 2:
            y = np.moveaxis(y, -1, 1)
        if label_smoothing:
            y = y * (1.0 - label_smoothing) + label_smoothing / n_classes
            y = y * np.expand_dims(keep, 1).astype(dtype)
        return y, np.sum(keep.astype(dtype))

    y, count = lift(weights, target)
    loss = softmax_cross_entropy(input, y, axis=1 - len(si))
    return _counted_mean(loss, count) if reduction == "mean" else _reduce(loss, reduction)


def _bce_size(input, target, what):
    # PyTorch refuses a target of another size here (no broadcasting, not even a warning).
    si, st = shape_of(input), shape_of(target)
    if si != st:
        raise ValueError(f"{what}: target size {st} must be the same as input size {si}")


def _clamped_logs(p):
    """``(log p, log(1-p))``, each clamped at -100 as PyTorch's loss (finite at 0 and 1)."""
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(p), -100.0), np.maximum(np.log1p(-p), -100.0)


def _bce(p, y):
    logp, log1mp = _clamped_logs(p)
    return -(y * logp + (1.0 - y) * log1mp)


def _dbce_y(ans, p, y):
    logp, log1mp = _clamped_logs(p)
    return log1mp - logp


# PyTorch's rule in p, not the clamped logs' derivative (which is 0 where a log is clamped
# and NaN at p = 0 or 1, where sigmoid saturates in training): ∂/∂p = (p - y) / max(p(1-p),
# 1e-12). In y, the derivative of the loss as computed: log(1-p) - log p, clamped (PyTorch's
# leaves the logs unclamped there: ±inf at p = 0 or 1).
bce_p = elementwise("binary_cross_entropy", _bce,
                    lambda ans, p, y: (p - y) / np.maximum(p * (1.0 - p), 1e-12), _dbce_y)


def binary_cross_entropy(input, target, reduction="mean", weight=None):
    """-w(y log p + (1-y) log(1-p)) of probabilities ``input``; logs clamped at -100 as
    PyTorch does, so p = 0 or 1 gives a finite loss, and its derivative is PyTorch's:
    (p - y) / max(p(1-p), 10⁻¹²) in p (finite at p = 0 or 1)."""
    _bce_size(input, target, "binary_cross_entropy")
    loss = bce_p(input, target)
    if weight is not None:
        loss = loss * np.asarray(unbox(weight)).astype(_float_dtype(input))
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None,
                                     weight=None):
    """The same from logits, stably: max(x, 0) - x·y + log(1 + e^{-|x|})."""
    _bce_size(input, target, "binary_cross_entropy_with_logits")
    dtype = _float_dtype(input)
    if pos_weight is None:
        loss = np.maximum(input, 0.0) - input * target + np.log1p(np.exp(-np.abs(input)))
    else:
        pos_weight = np.asarray(unbox(pos_weight)).astype(dtype)
        log_sig = -_softplus(-input)
        log_1m_sig = -_softplus(input)
        loss = -(pos_weight * target * log_sig + (1.0 - target) * log_1m_sig)
    if weight is not None:
        loss = loss * np.asarray(unbox(weight)).astype(dtype)
    return _reduce(loss, reduction)


def kl_div(input, target, reduction="mean", log_target=False):
    """KL divergence pointwise ``y (log y - x)`` of log-probabilities ``x`` and
    probabilities ``y`` (0 where y = 0), or ``eʸ (y - x)`` of log-probabilities with
    ``log_target``; ``reduction='batchmean'`` divides the sum by the batch size (the KL
    divergence PyTorch recommends), ``'mean'`` by the number of elements."""
    if log_target:
        loss = np.exp(target) * (target - input)
    else:
        t = target
        # xlogy: a zero target contributes 0 (and no NaN derivative through log 0).
        safe = np.where(unbox(t) > 0, t, 1.0)
        loss = np.where(unbox(t) > 0, t * np.log(safe), 0.0) - t * input
    if reduction == "batchmean":
        n = shape_of(input)[0] if ndim_of(input) else 1
        return np.sum(loss) / n
    return _reduce(loss, reduction)



# ----- Margin, embedding and likelihood losses -----
def _no_legacy(what, size_average, reduce):
    if size_average is not None or reduce is not None:
        raise TypeError(f"{what}: size_average= and reduce= are deprecated in PyTorch and not "
                        "supported here; use reduction='mean', 'sum' or 'none'.")


def _clamp_min0(z):
    """max(z, 0) as PyTorch's ``clamp_min``: at z = 0 the derivative is 1."""
    return np.where(z >= 0, z, 0.0)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1, with
    cos = x1·x2 / √((‖x1‖² + 10⁻¹²)(‖x2‖² + 10⁻¹²)) over the last axis (PyTorch's)."""
    _no_legacy("cosine_embedding_loss", size_average, reduce)
    td = ndim_of(target)
    if td not in (0, 1):
        raise ShapeError("0D or 1D target tensor expected, multi-target not supported")
    d1, d2 = ndim_of(input1), ndim_of(input2)
    if d1 != td + 1 or d2 != td + 1:
        raise ShapeError(f"{td}D target tensor expects {td + 1}D input tensors, but found "
                         f"inputs with sizes {list(shape_of(input1))} and "
                         f"{list(shape_of(input2))}.")
    m1 = np.sum(input1 * input1, axis=td) + 1e-12
    m2 = np.sum(input2 * input2, axis=td) + 1e-12
    cos = np.sum(input1 * input2, axis=td) / np.sqrt(m1 * m2)
    loss = np.where(target == 1, 1.0 - cos, 0.0) + \
        np.where(target == -1, _clamp_min0(cos - margin), 0.0)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """max(0, -y (x1 - x2) + margin)."""
    _no_legacy("margin_ranking_loss", size_average, reduce)
    if not ndim_of(input1) == ndim_of(input2) == ndim_of(target):
        raise ShapeError("margin_ranking_loss : All input tensors should have same dimension "
                         f"but got sizes: input1: {shape_of(input1)}, input2: "
                         f"{shape_of(input2)}, target: {shape_of(target)} ")
    return _reduce(_clamp_min0(-target * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """x where y = 1, max(0, margin - x) where y = -1 (PyTorch's: a label that is neither
    gets both terms)."""
    _no_legacy("hinge_embedding_loss", size_average, reduce)
    loss = np.where(target != 1, _clamp_min0(margin - input), 0.0) + \
        np.where(target != -1, input, 0.0)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    """Poisson negative log-likelihood: eˣ - y·x of a log-rate x (``log_input``), else
    x - y·log(x + eps); ``full`` adds Stirling's y log y - y + ½ log(2πy) where y > 1."""
    _no_legacy("poisson_nll_loss", size_average, reduce)
    if log_input:
        loss = np.exp(input) - target * input
    else:
        loss = input - target * np.log(input + eps)
    if full:
        big = target > 1
        # Evaluated at 1 where masked, so a target of 0 has no NaN derivative (torch: NaN).
        t = np.where(big, target, 1.0)
        stirling = t * np.log(t) - t + 0.5 * np.log((2.0 * math.pi) * t)
        loss = loss + np.where(big, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """½(log max(σ², eps) + (x - y)²/max(σ², eps)) (+ ½ log 2π with ``full``).

    ``var`` has the input's shape, or one axis fewer, or size 1 on one axis (one variance
    shared along it), or is a float. As PyTorch, the clamp at ``eps`` carries no derivative
    of its own (the derivative with respect to σ² flows as if unclamped)."""
    from autodiff.api import stop_gradient
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = var * np.ones(shape_of(input), dtype=_float_dtype(input))
    elif not recorded(var) and np.any(unbox(var) < 0):
        raise ValueError("var has negative entry/entries")
    si, sv = shape_of(input), shape_of(var)
    if sv != si:
        if si[:-1] == sv:
            var = np.expand_dims(var, -1)
        elif not (len(si) == len(sv) and sum(b for a, b in zip(si, sv) if a != b) == 1):
            raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var + stop_gradient(np.maximum(var, eps) - var)
    d = input - target
    loss = 0.5 * (np.log(var) + d * d / var)
    if full:
        loss = loss + 0.5 * math.log(2.0 * math.pi)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)) with d = ``pairwise_distance(·, ·, p, eps)``;
    ``swap`` uses min(d(a, n), d(p, n)) for the negative distance."""
    _no_legacy("triplet_margin_loss", size_average, reduce)
    return triplet_margin_with_distance_loss(
        anchor, positive, negative, distance_function=lambda a, b: pairwise_distance(
            a, b, p, eps), margin=margin, swap=swap, reduction=reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """log(1 + e^{-y·x}), as a softplus: no overflow for any y·x."""
    _no_legacy("soft_margin_loss", size_average, reduce)
    return _reduce(_softplus(-target * input), reduction)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """-(1/C) Σ_c w_c (y_c log σ(x_c) + (1 - y_c) log σ(-x_c)) over the last axis (C
    classes): one loss per sample."""
    _no_legacy("multilabel_soft_margin_loss", size_average, reduce)
    loss = -(target * logsigmoid(input) + (1.0 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * np.asarray(unbox(weight)).astype(_float_dtype(input))
    c = shape_of(input)[-1]
    return _reduce(np.sum(loss, axis=-1) / c, reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    """(1/C) Σ_{i≠y} w_y max(0, margin - x_y + x_i)^p of scores (N, C) or (C,) and integer
    labels y, for p = 1 or 2; the derivative is 0 where the hinge is exactly 0 (PyTorch's)."""
    _no_legacy("multi_margin_loss", size_average, reduce)
    if p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and np.ndim(unbox(weight)) != 1:
        raise ValueError("weight must be one-dimensional")
    nd = ndim_of(input)
    if nd not in (1, 2):
        raise ShapeError("multi_margin_loss: expected a vector (C,) or a matrix (N, C) of "
                         f"scores, got shape {shape_of(input)}")
    x = input[None] if nd == 1 else input
    n, c = shape_of(x)
    dtype = _float_dtype(input)
    w = None if weight is None else _class_weight(weight, c, input, "multi_margin_loss")

    def masks(t):
        # One function of the labels (recorded as one call under ad.jit, nn.compile_step).
        t = np.reshape(t, (-1,))
        if t.shape[0] != n:
            raise ShapeError(f"multi_margin_loss: inconsistent target size: {t.shape[0]} "
                             f"labels for {n} samples")
        labels, _ = _labels(t, c, "multi_margin_loss")
        onehot = labels[:, None] == np.arange(c)
        others = (~onehot).astype(dtype)
        if w is not None:
            others = others * w[labels][:, None]
        return onehot.astype(dtype), others

    onehot, others = lift(masks, target)
    xy = np.sum(x * onehot, axis=1, keepdims=True)
    h = relu(margin - xy + x)
    if p == 2:
        h = h * h
    loss = np.sum(h * others, axis=1) / c
    return _reduce(loss[0] if nd == 1 else loss, reduction)

def _valid_reduction(reduction):
    # PyTorch's message (``_Reduction.get_enum``) for these three losses.
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Σ_j Σ_i max(0, 1 - (x[y_j] - x[i])) / C per sample of scores (N, C), (C,) or a
    scalar, over the target classes y_j (``target``'s indices before its first -1; the
    entries after it are ignored) and the classes i that are not targets (PyTorch's
    ``multilabel_margin_loss``). A class listed twice counts twice, as in PyTorch, and the
    derivative is 0 where a hinge is exactly 0."""
    _no_legacy("multilabel_margin_loss", size_average, reduce)
    _valid_reduction(reduction)
    si = shape_of(input)
    nd = len(si)
    if not ((nd == 2 and si[1] != 0) or (nd == 1 and si[0] != 0) or nd == 0):
        raise ShapeError("Expected non-empty vector or matrix with optional 0-dim batch size, "
                         f"but got: {list(si)}")
    n, c = si if nd == 2 else (1, si[0] if nd == 1 else 1)
    dtype = _float_dtype(input)

    def weights(t):
        # One function of the labels (recorded as one call under ad.jit, nn.compile_step):
        # w[n, j, i] = (times class j is listed) · (class i is not a target).
        t = np.asarray(t)
        if t.dtype.kind not in "iu":
            raise TypeError("multilabel_margin_loss: integer class indices expected (padded "
                            f"with -1), got dtype {t.dtype}")
        ok = (t.ndim == 2 and t.shape == (n, c)) if nd == 2 else (t.ndim <= 1 and t.size == c)
        if not ok:
            raise ShapeError(f"inconsistent target size: {list(t.shape)} for input of size: "
                             f"{list(si)}")
        t = t.reshape(n, c)
        bad = t[(t < -1) | (t >= c)]
        if bad.size:
            raise ShapeError(f"argument #2 'target' is out of range: class indices must lie "
                             f"in [0, {c}) or be -1 (the end of the list), got {bad[0]}")
        listed = np.cumprod(t >= 0, axis=1).astype(bool)          # before the first -1
        count = np.sum(listed[:, :, None] & (t[:, :, None] == np.arange(c)), axis=1)
        return (count[:, :, None] * (count == 0)[:, None, :]).astype(dtype)

    w = lift(weights, target)
    x = np.reshape(input, (n, c))
    h = relu(1.0 - x[:, :, None] + x[:, None, :])
    loss = np.sum(h * w, axis=(1, 2)) / c
    return _reduce(loss if nd == 2 else loss[0], reduction)


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)) with any distance function ``d`` of two batches
    (default ``pairwise_distance``); ``swap`` uses min(d(a, n), d(p, n)) for the negative
    distance (PyTorch's ``triplet_margin_with_distance_loss``)."""
    _valid_reduction(reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    da, dp, dn = ndim_of(anchor), ndim_of(positive), ndim_of(negative)
    if not da == dp == dn:
        raise ShapeError("The anchor, positive, and negative tensors are expected to have the "
                         f"same number of dimensions, but got: anchor {da}D, positive {dp}D, "
                         f"and negative {dn}D inputs")
    dist = pairwise_distance if distance_function is None else distance_function
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = np.minimum(d_neg, dist(positive, negative))
    return _reduce(_clamp_min0(margin + d_pos - d_neg), reduction)


_CTC = " (while checking arguments for ctc_loss)"


def _ctc_lengths(v, what, n):
    a = np.asarray(unbox(v))
    if a.dtype.kind not in "iu":
        raise ShapeError(f"{what} must be integral")
    a = a.reshape(-1).astype(np.int64)
    if a.size != n:
        raise ShapeError(f"{what} must be of size batch_size")
    return a


def _logsumexp_or_neginf(z, axis):
    """``logsumexp`` along ``axis``, -inf where every term is -inf (an unreachable CTC state),
    with derivative 0 there, not the primitive's NaN softmax weights exp(-inf - (-inf))."""
    none = np.all(z == -np.inf, axis=axis)
    safe = np.where(np.expand_dims(none, axis), 0.0, z)
    return np.where(none, -np.inf, _logsumexp(safe, axis=axis))


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """Connectionist temporal classification: -log Σ over the alignments of each target
    to its input of Π_t p_t(label) (PyTorch's ``ctc_loss``).

    ``log_probs`` (T, N, C), or (T, C) unbatched, are log-probabilities (``log_softmax``
    over C, ``blank`` among the classes); ``targets`` are padded (N, S) or concatenated
    (Σ target_lengths,) class indices (float targets are truncated, as PyTorch's);
    ``input_lengths`` and ``target_lengths`` are integers, one per sample. An alignment
    that is impossible (an input too short for its target and the blanks its repeated
    labels need) gives +inf, zeroed with its gradient by ``zero_infinity``. ``'mean'``
    divides each loss by its target length (at least 1), then averages over the batch.

    The forward (alpha) recursion runs in log space over the extended label sequence
    (blank, l₁, blank, l₂, …, blank), vectorised over the batch and the labels, one step
    per time frame; the derivatives are the engine's, to any order. The derivative is that
    of the value returned: PyTorch's backward adds exp(log_probs) (the term a
    ``log_softmax`` before it cancels), so the gradients agree with PyTorch's with respect
    to the logits of a ``log_softmax``, not with respect to ``log_probs`` themselves.
    """
    _valid_reduction(reduction)
    nd = ndim_of(log_probs)
    if nd not in (2, 3):
        raise ShapeError(f"Expected 3-dimensional tensor, but got {nd + 1}-dimensional tensor "
                         f"for argument #1 'log_probs'{_CTC}")
    batched = nd == 3
    if not batched:
        log_probs = np.expand_dims(log_probs, 1)
    T, N, C = shape_of(log_probs)
    if not 0 <= blank < C:
        raise ShapeError("blank must be in label range")
    il = _ctc_lengths(input_lengths, "input_lengths", N)
    tl = _ctc_lengths(target_lengths, "target_lengths", N)
    tg = np.asarray(unbox(targets))
    if tg.dtype.kind not in "biuf":
        raise TypeError(f"ctc_loss: integer class indices expected as targets, got dtype "
                        f"{tg.dtype}")
    tg = tg.astype(np.int64)                    # PyTorch: targets.to(kLong)
    if tg.ndim not in (1, 2):
        raise ShapeError(f"Expected 1 to 2 dimensions, but got {tg.ndim}-dimensional tensor "
                         f"for argument #2 'targets'{_CTC}")
    for what, lengths in (("target_lengths", tl), ("input_lengths", il)):
        if np.any(lengths < 0):
            raise ShapeError(f"Expected {what} to have value at least 0, but got value "
                             f"{lengths[lengths < 0][0]}{_CTC}")
    S = int(np.max(tl)) if N else 0
    if tg.ndim == 1 and tg.shape[0] != np.sum(tl):
        raise ShapeError(f"Expected tensor to have size {np.sum(tl)} at dimension 0, but got "
                         f"size {tg.shape[0]} for argument #2 'targets'{_CTC}")
    if tg.ndim == 2 and tg.shape[0] != N:
        raise ShapeError(f"Expected tensor to have size {N} at dimension 0, but got size "
                         f"{tg.shape[0]} for argument #2 'targets'{_CTC}")
    if tg.ndim == 2 and tg.shape[1] < S:
        raise ShapeError(f"Expected tensor to have size at least {S} at dimension 1, but got "
                         f"size {tg.shape[1]} for argument #2 'targets'{_CTC}")
    if np.any(il > T):
        raise ShapeError(f"Expected input_lengths to have value at most {T}, but got value "
                         f"{il[il > T][0]}{_CTC}")
    used = np.arange(S) < tl[:, None]                          # (N, S)
    labels = np.full((N, S), blank, dtype=np.int64)
    labels[used] = tg if tg.ndim == 1 else tg[:, :S][used]
    bad = labels[used & ((labels < 0) | (labels >= C))]
    if bad.size:        # PyTorch reads out of bounds here
        raise ShapeError(f"ctc_loss: target labels must lie in [0, {C}), got {bad[0]}")

    dtype = _float_dtype(log_probs)
    L = 2 * S + 1                                # the extended labels: blank, l₁, blank, …
    ext = np.full((N, L), blank, dtype=np.int64)
    ext[:, 1::2] = labels
    skip = np.zeros((N, L), dtype=bool)          # s-2 → s: between two different labels
    skip[:, 2:] = ext[:, 2:] != ext[:, :-2]
    neg = np.full((N, 2), -np.inf, dtype=dtype)
    rows = np.arange(N)
    t_max = int(np.max(il)) if N else 0
    if t_max == 0:
        # Every input empty: a loss of 0 for an empty target, inf otherwise (PyTorch's).
        const = np.where(tl == 0, 0.0, np.inf).astype(dtype)
        loss = np.where(np.ones(N, dtype=bool), const, np.sum(log_probs, axis=(0, 2)))
    else:
        lp = log_probs[:t_max][:, rows[:, None], ext]         # (t_max, N, L)
        alpha = np.where(np.arange(L) < 2, lp[0], -np.inf)
        last = np.where((il == 1)[:, None], alpha, -np.inf)    # alpha at t = length - 1
        for t in range(1, t_max):
            terms = [alpha]
            if L > 1:
                terms.append(np.concatenate([neg[:, :1], alpha[:, :-1]], axis=1))
            if L > 2:
                terms.append(np.where(skip, np.concatenate([neg, alpha[:, :-2]], axis=1),
                                      -np.inf))
            alpha = lp[t] + _logsumexp_or_neginf(np.stack(terms), 0)
            last = np.where((il == t + 1)[:, None], alpha, last)
        end = last[rows, 2 * tl]
        before = np.where(tl > 0, last[rows, np.maximum(2 * tl - 1, 0)], -np.inf)
        loss = -_logsumexp_or_neginf(np.stack([end, before]), 0)
        loss = np.where((il == 0) & (tl == 0), 0.0, loss)     # (an empty input's inf stays)
    if zero_infinity:
        loss = np.where(loss == np.inf, 0.0, loss)
    if reduction == "mean":
        return np.mean(loss / np.maximum(tl, 1).astype(dtype))
    if reduction == "sum":
        return np.sum(loss)
    return loss if batched else loss[0]


# ----- Convolution, pooling and normalisation (nn/conv.py, nn/norm.py) -----
from .conv import (adaptive_avg_pool1d, adaptive_avg_pool2d, avg_pool1d,  # noqa: E402
                   avg_pool2d, conv1d, conv2d, conv_transpose1d, conv_transpose2d, interpolate,
                   max_pool1d, max_pool2d)
from .conv import (adaptive_max_pool1d, adaptive_max_pool2d, fold, max_unpool1d,  # noqa: E402
                   max_unpool2d, pixel_shuffle, pixel_unshuffle, unfold)
from .conv import (adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d, conv3d,  # noqa: E402
                   conv_transpose3d, max_pool3d)
from .norm import batch_norm, group_norm, instance_norm, layer_norm, rms_norm  # noqa: E402
from .attention import scaled_dot_product_attention  # noqa: E402

__all__ += ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d",
            "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
            "adaptive_avg_pool2d", "interpolate", "batch_norm", "layer_norm", "group_norm",
            "instance_norm", "rms_norm", "scaled_dot_product_attention"]
__all__ += ["adaptive_max_pool1d", "adaptive_max_pool2d", "max_unpool1d", "max_unpool2d",
            "unfold", "fold", "pixel_shuffle", "pixel_unshuffle"]
__all__ += ["conv3d", "conv_transpose3d", "max_pool3d", "avg_pool3d", "adaptive_avg_pool3d",
            "adaptive_max_pool3d"]
