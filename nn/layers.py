"""Basic layers: Linear, Flatten, Dropout, Identity, Embedding, LayerNorm and the
activation modules. Default initialisation is PyTorch's, drawn from ``nn.init``'s
generator; ``dtype`` defaults to float64 (the engine's default)."""
import math

import numpy as np

from autodiff.arrays import host_values
from autodiff.boxes import meta, unbox
from autodiff.core import opaque_types
from autodiff.ops.shape import getitem_p

from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Flatten", "Unflatten", "Dropout", "Identity", "Embedding", "LayerNorm",
           "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Mish", "Hardtanh", "ReLU6", "Tanh", "Sigmoid",
           "Softplus", "Softmax", "LogSoftmax", "SELU", "CELU", "LogSigmoid", "Hardswish",
           "Hardsigmoid", "Softsign", "Softmin", "GLU", "Threshold", "Tanhshrink", "Softshrink",
           "Hardshrink", "PReLU", "RReLU", "CosineSimilarity", "PairwiseDistance",
           "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
           "Bilinear", "Softmax2d", "ChannelShuffle", "LocalResponseNorm", "EmbeddingBag"]


class Linear(Module):
    """``y = x Wᵀ + b``, ``W`` of shape (out_features, in_features); W and b uniform in
    ±1/√in_features (PyTorch's default)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float64):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if bias:
            bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
            init.uniform_(self.bias, -bound, bound)
        else:
            self.bias = None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input; takes (and ignores) any arguments, as PyTorch's."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Unflatten(Module):
    """Splits axis ``dim`` into ``unflattened_size`` (PyTorch's ``nn.Unflatten``)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        s = np.shape(x)
        d = self.dim % len(s)
        return np.reshape(x, s[:d] + self.unflattened_size + s[d + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Flatten(Module):
    """Flattens axes ``start_dim``…``end_dim`` (default: all but the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        s = np.shape(x)
        a, b = self.start_dim % len(s), self.end_dim % len(s)
        return np.reshape(x, s[:a] + (int(np.prod(s[a:b + 1])),) + s[b + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode, scaling the rest by
    1/(1-p); the identity in eval mode. ``inplace`` is accepted and ignored."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training, rng=init.default_generator())

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class _DropoutNd(Dropout):
    fn = None

    def forward(self, x):
        return type(self).fn(x, self.p, self.training)


class Dropout1d(_DropoutNd):
    """Zero whole channels of (N, C, L) or (C, L) in training mode (``F.dropout1d``)."""
    fn = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """Zero whole feature maps of (N, C, H, W) in training mode (``F.dropout2d``)."""
    fn = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) (``F.dropout3d``)."""
    fn = staticmethod(F.dropout3d)


class AlphaDropout(_DropoutNd):
    """Dropout that keeps SELU's mean and variance (``F.alpha_dropout``)."""
    fn = staticmethod(F.alpha_dropout)


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole feature maps (``F.feature_alpha_dropout``)."""
    fn = staticmethod(F.feature_alpha_dropout)


class Bilinear(Module):
    """``y = x1ᵀ W x2 + b``, ``W`` of shape (out_features, in1_features, in2_features); W and b
    uniform in ±1/√in1_features (PyTorch's default)."""

    def __init__(self, in1_features, in2_features, out_features, bias=True,
                 dtype=np.float64):
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        bound = 1.0 / math.sqrt(in1_features) if in1_features > 0 else 0.0
        self.weight = Parameter(np.empty((out_features, in1_features, in2_features), dtype))
        init.uniform_(self.weight, -bound, bound)
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
            init.uniform_(self.bias, -bound, bound)
        else:
            self.bias = None

    def forward(self, input1, input2):
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class Softmax2d(Module):
    """Softmax over the channels of (N, C, H, W) or (C, H, W) (axis -3)."""

    def forward(self, x):
        if x.ndim not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {x.ndim}D "
                             "instead")
        return F.softmax(x, -3)


class ChannelShuffle(Module):
    """Interleave ``groups`` groups of channels (``F.channel_shuffle``, ShuffleNet)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        return F.channel_shuffle(x, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"


class LocalResponseNorm(Module):
    """``x / (k + α/n Σ x²)^β`` over ``size`` neighbouring channels
    (``F.local_response_norm``)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


def _table(module, num_embeddings, embedding_dim, padding_idx, _weight, dtype,
           requires_grad=True):
    """Give an Embedding(Bag) its ``weight`` (N(0, 1), the ``padding_idx`` row zero, or a
    given table) and return ``padding_idx`` counted from 0 (PyTorch's checks)."""
    if padding_idx is not None:
        if not -num_embeddings <= padding_idx < num_embeddings:
            raise AssertionError("Padding_idx must be within num_embeddings")
        padding_idx = padding_idx % num_embeddings
    if _weight is None:
        module.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        init.normal_(module.weight)
        if padding_idx is not None:
            module.weight.value[padding_idx] = 0.0
    else:
        w = np.asarray(unbox(_weight))
        if w.shape != (num_embeddings, embedding_dim):
            raise ValueError("Shape of weight does not match num_embeddings and "
                             "embedding_dim")
        module.weight = Parameter(w, requires_grad=requires_grad)
    return padding_idx


class Embedding(Module):
    """A lookup table: integer indices → rows of ``weight`` (N(0, 1) initialised). The row
    ``padding_idx`` starts at zero and gets no gradient (PyTorch's semantics)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, dtype=np.float64):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq:
            raise NotImplementedError("Embedding: max_norm and scale_grad_by_freq are not "
                                      "supported")
        self.num_embeddings, self.embedding_dim, self.sparse = (num_embeddings,
                                                                embedding_dim, sparse)
        self.padding_idx = _table(self, num_embeddings, embedding_dim, padding_idx, _weight,
                                  dtype, requires_grad=not _freeze)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, **kw):
        """An Embedding holding ``embeddings`` (2-d), frozen unless ``freeze=False``."""
        w = np.asarray(unbox(embeddings))
        if w.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        return cls(w.shape[0], w.shape[1], padding_idx=padding_idx, _weight=w,
                   _freeze=freeze, **kw)

    def forward(self, idx):
        i = host_values(meta(idx))
        _check_indices(self, i)
        # Indices recorded by ad.jit (nn.export_onnx, compile_step) stay recorded, so the
        # program gathers each call's own rows; F.embedding reads them as a gather.
        return F.embedding(idx if type(idx) in opaque_types else i, self.weight,
                           self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embedding rows (``F.embedding_bag``), ``weight``
    N(0, 1) initialised; the row ``padding_idx`` starts at zero and is left out of bags."""

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, dtype=np.float64):
        super().__init__()
        if max_norm is not None or scale_grad_by_freq:
            raise NotImplementedError("EmbeddingBag: max_norm and scale_grad_by_freq are not "
                                      "supported")
        self.num_embeddings, self.embedding_dim, self.mode = num_embeddings, embedding_dim, mode
        self.include_last_offset, self.sparse = include_last_offset, sparse
        self.padding_idx = _table(self, num_embeddings, embedding_dim, padding_idx, _weight,
                                  dtype)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, mode="mean", **kw):
        """An EmbeddingBag holding ``embeddings`` (2-d), frozen unless ``freeze=False``."""
        w = np.asarray(unbox(embeddings))
        if w.ndim != 2:
            raise ValueError("Embeddings parameter is expected to be 2-dimensional")
        bag = cls(w.shape[0], w.shape[1], mode=mode, _weight=w, **kw)
        bag.weight.requires_grad = not freeze
        return bag

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, mode=self.mode,
                               per_sample_weights=per_sample_weights,
                               include_last_offset=self.include_last_offset,
                               padding_idx=self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}, mode={self.mode!r}"
        return s if self.padding_idx is None else s + f", padding_idx={self.padding_idx}"


def _check_indices(emb, idx):
    if idx.dtype.kind not in "iu":
        raise TypeError(f"Embedding needs integer indices, got dtype {idx.dtype}")
    if idx.size:
        # As PyTorch: no wrap-around of negative indices (-1 is no "last row").
        lo, hi = idx.min(), idx.max()
        if lo < 0 or hi >= emb.num_embeddings:
            bad = lo if lo < 0 else hi
            raise IndexError(f"Embedding({emb.num_embeddings}, {emb.embedding_dim}): "
                             f"index {bad} out of range [0, {emb.num_embeddings})")


class LayerNorm(Module):
    """Normalise over the last ``len(normalized_shape)`` axes, then scale and shift."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=np.float64):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype)) if bias \
                else None
        else:
            self.weight = self.bias = None

    def forward(self, x):
        axes = tuple(range(-len(self.normalized_shape), 0))
        mu = np.mean(x, axis=axes, keepdims=True)
        d = x - mu
        var = np.mean(d * d, axis=axes, keepdims=True)
        y = d / np.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


def _activation(name, fn, doc, _repr=None, **defaults):
    def __init__(self, *args, **kw):
        Module.__init__(self)
        params = dict(defaults)
        params.update(zip(defaults, args))
        params.update(kw)
        for k, v in params.items():
            object.__setattr__(self, k, v)

    def forward(self, x):
        return fn(x, **{k: getattr(self, k) for k in defaults})

    def extra_repr(self):
        if _repr is not None:
            return _repr(self)
        return ", ".join(f"{k}={getattr(self, k)!r}" if isinstance(getattr(self, k), str)
                         else f"{k}={getattr(self, k)}" for k in defaults)

    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "__doc__": doc})


ReLU = _activation("ReLU", F.relu, "max(x, 0)")
LeakyReLU = _activation("LeakyReLU", F.leaky_relu, "x, or slope·x below 0",
                        negative_slope=0.01)
ELU = _activation("ELU", F.elu, "x, or α(eˣ - 1) below 0", alpha=1.0)
GELU = _activation("GELU", F.gelu, "x Φ(x)", approximate="none")
SiLU = _activation("SiLU", F.silu, "x σ(x)")
Mish = _activation("Mish", F.mish, "x tanh(softplus(x))")
Hardtanh = _activation("Hardtanh", F.hardtanh, "x clipped to [min_val, max_val]",
                       min_val=-1.0, max_val=1.0)
ReLU6 = _activation("ReLU6", F.relu6, "x clipped to [0, 6]")
Tanh = _activation("Tanh", F.tanh, "tanh x")
Sigmoid = _activation("Sigmoid", F.sigmoid, "1 / (1 + e^{-x})")
Softplus = _activation("Softplus", F.softplus, "log(1 + e^{βx}) / β, x above the threshold",
                       beta=1.0, threshold=20.0)
Softmax = _activation("Softmax", F.softmax, "softmax along dim", dim=None)
LogSoftmax = _activation("LogSoftmax", F.log_softmax, "log softmax along dim", dim=None)
SELU = _activation("SELU", F.selu, "λx above 0, λα(eˣ - 1) at and below (self-normalising)")
CELU = _activation("CELU", F.celu, "x, or α(e^{x/α} - 1) below 0", alpha=1.0)
LogSigmoid = _activation("LogSigmoid", F.logsigmoid, "log σ(x) = -softplus(-x)")
Hardswish = _activation("Hardswish", F.hardswish, "x·relu6(x + 3)/6")
Hardsigmoid = _activation("Hardsigmoid", F.hardsigmoid, "relu6(x + 3)/6")
Softsign = _activation("Softsign", F.softsign, "x / (1 + |x|)")
Softmin = _activation("Softmin", F.softmin, "softmax(-x) along dim", dim=None)
GLU = _activation("GLU", F.glu, "a·σ(b) for the halves a, b along dim", dim=-1)
Tanhshrink = _activation("Tanhshrink", F.tanhshrink, "x - tanh x")
Softshrink = _activation("Softshrink", F.softshrink, "x ∓ λ beyond ±λ, else 0",
                         _repr=lambda m: str(m.lambd), lambd=0.5)
Hardshrink = _activation("Hardshrink", F.hardshrink, "x where |x| > λ, else 0",
                         _repr=lambda m: str(m.lambd), lambd=0.5)


class Threshold(Module):
    """x where x > ``threshold``, else ``value`` (both required, as in PyTorch)."""

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, x):
        return F.threshold(x, self.threshold, self.value)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}"


class PReLU(Module):
    """x above 0, a·x at and below, with learnt slopes ``weight`` (num_parameters,), all
    ``init`` at the start: one shared, or one per channel (axis 1)."""

    def __init__(self, num_parameters=1, init=0.25, dtype=np.float64):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(np.full(num_parameters, init, dtype=dtype))

    def forward(self, x):
        return F.prelu(x, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Leaky ReLU with a random slope in [lower, upper] per element in training mode, the
    mean slope (lower + upper)/2 in eval mode (``F.rrelu``)."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, x):
        return F.rrelu(x, self.lower, self.upper, self.training)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}"


class CosineSimilarity(Module):
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim``: ``F.cosine_similarity``."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """``‖x1 - x2 + eps‖_p`` along the last axis: ``F.pairwise_distance``."""

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim   # PyTorch's attribute names

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
