"""Basic layers: Linear, Flatten, Dropout, Identity, Embedding, LayerNorm and the
activation modules. Default initialisation is PyTorch's, drawn from ``nn.init``'s
generator; ``dtype`` defaults to float64 (the engine's default)."""
import math

import numpy as np

from autodiff.boxes import meta, unbox
from autodiff.core import opaque_types
from autodiff.ops.shape import getitem_p

from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["Linear", "Flatten", "Dropout", "Identity", "Embedding", "LayerNorm", "ReLU",
           "LeakyReLU", "ELU", "GELU", "Tanh", "Sigmoid", "Softplus", "Softmax", "LogSoftmax"]


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
    def forward(self, x):
        return x


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
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training, init.default_generator())

    def extra_repr(self):
        return f"p={self.p}"


class Embedding(Module):
    """A lookup table: integer indices → rows of ``weight`` (N(0, 1) initialised)."""

    def __init__(self, num_embeddings, embedding_dim, dtype=np.float64):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        init.normal_(self.weight)

    def forward(self, idx):
        if type(idx) in opaque_types:
            # Indices recorded by ad.jit (nn.export_onnx, compile_step): a gather of the
            # recorded indices, so the program reads each call's own (checked: its numbers).
            _check_indices(self, np.asarray(meta(idx)))
            return getitem_p(self.weight, idx=idx)
        idx = np.asarray(unbox(idx))
        _check_indices(self, idx)
        return self.weight[idx]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


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

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=np.float64):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
        else:
            self.weight = self.bias = None

    def forward(self, x):
        axes = tuple(range(-len(self.normalized_shape), 0))
        mu = np.mean(x, axis=axes, keepdims=True)
        d = x - mu
        var = np.mean(d * d, axis=axes, keepdims=True)
        y = d / np.sqrt(var + self.eps)
        return y if self.weight is None else y * self.weight + self.bias

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}"


def _activation(name, fn, doc, **defaults):
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
        return ", ".join(f"{k}={getattr(self, k)}" for k in defaults)

    return type(name, (Module,), {"__init__": __init__, "forward": forward,
                                  "extra_repr": extra_repr, "__doc__": doc})


ReLU = _activation("ReLU", F.relu, "max(x, 0)")
LeakyReLU = _activation("LeakyReLU", F.leaky_relu, "x, or slope·x below 0",
                        negative_slope=0.01)
ELU = _activation("ELU", F.elu, "x, or α(eˣ - 1) below 0", alpha=1.0)
GELU = _activation("GELU", F.gelu, "x Φ(x)", approximate="none")
Tanh = _activation("Tanh", F.tanh, "tanh x")
Sigmoid = _activation("Sigmoid", F.sigmoid, "1 / (1 + e^{-x})")
Softplus = _activation("Softplus", F.softplus, "log(1 + e^{βx}) / β", beta=1.0)
Softmax = _activation("Softmax", F.softmax, "softmax along dim", dim=-1)
LogSoftmax = _activation("LogSoftmax", F.log_softmax, "log softmax along dim", dim=-1)
