"""Attention: ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention``, PyTorch's.

Both compose the engine's primitives (matrix products, the ``log_softmax`` primitive, adds),
so every derivative comes from the tape:

    attention(Q, K, V) = softmax(Q Kᵀ · scale + mask) V,   scale = 1/√E by default

Masks follow PyTorch exactly, which means two conventions: in
``scaled_dot_product_attention`` a boolean ``attn_mask`` is True where attention is
*allowed*; in ``MultiheadAttention`` boolean ``attn_mask`` and ``key_padding_mask`` are True
where it is *not* allowed. A float mask is added to the scores in both.

>>> import numpy as np
>>> from autodiff import nn
>>> mha = nn.MultiheadAttention(8, 2, batch_first=True)
>>> out, w = mha(np.ones((3, 5, 8)), np.ones((3, 4, 8)), np.ones((3, 4, 8)))
>>> out.shape, w.shape
((3, 5, 8), (3, 5, 4))
"""
import math

import numpy as np

from autodiff.boxes import unbox
from autodiff.core import ndim_of, shape_of

from . import functional as F
from . import init
from .layers import Linear
from .module import Module, Parameter

__all__ = ["scaled_dot_product_attention", "MultiheadAttention"]


def _float_mask(mask, dtype, allowed_when_true):
    """A boolean mask as 0 / -inf in ``dtype``; a float mask unchanged."""
    if type(mask) is not np.ndarray and unbox(mask) is not mask:
        return mask                     # a tracked float mask: differentiable, as it is
    m = np.asarray(mask)
    if m.dtype == bool:
        keep = m if allowed_when_true else ~m
        return np.where(keep, 0.0, -np.inf).astype(dtype)
    return m.astype(dtype, copy=False)  # a float32 model stays float32


def _float_dtype(x):
    dt = np.result_type(getattr(x, "dtype", np.float64))
    return dt if dt.kind == "f" else np.dtype(np.float64)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """``softmax(Q Kᵀ·scale + mask) V`` over (…, L, E), (…, S, E), (…, S, Ev) → (…, L, Ev)
    (PyTorch's ``F.scaled_dot_product_attention``). ``attn_mask``: boolean (True = take
    part) or float (added), broadcast to (…, L, S); ``is_causal``: position i attends to
    j ≤ i; ``scale`` defaults to 1/√E; ``dropout_p`` drops attention weights (always, as
    PyTorch's function does: pass ``dropout_p=0.0`` in eval mode)."""
    if enable_gqa:
        raise NotImplementedError("scaled_dot_product_attention: enable_gqa is not supported")
    L, E = shape_of(query)[-2:]
    S = shape_of(key)[-2]
    dtype = _float_dtype(query)
    scale = 1.0 / math.sqrt(E) if scale is None else scale
    scores = (query @ np.swapaxes(key, -2, -1)) * scale
    if is_causal:
        if attn_mask is not None:
            raise F.ShapeError("scaled_dot_product_attention: explicit attn_mask should not "
                               "be set when is_causal=True (PyTorch refuses this too)")
        attn_mask = np.tril(np.ones((L, S), dtype=bool))
    if attn_mask is not None:
        scores = scores + _float_mask(attn_mask, dtype, allowed_when_true=True)
    weights = F.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p, True)
    return weights @ value


class MultiheadAttention(Module):
    """PyTorch's ``nn.MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True,
    add_bias_kv=False, add_zero_attn=False, kdim=None, vdim=None, batch_first=False)``.

    Parameters as PyTorch's: ``in_proj_weight`` (3E, E) holding W_q, W_k, W_v stacked
    (Xavier-uniform), ``in_proj_bias`` (3E, zeros), ``out_proj`` a Linear(E, E) with a zero
    bias; with ``kdim``/``vdim`` ≠ E, ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight``
    instead. ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)`` returns ``(output,
    weights)``: output (L, N, E) — (N, L, E) with ``batch_first``, (L, E) unbatched — and
    weights (N, L, S) averaged over heads, (N, heads, L, S) otherwise, or None.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False,
                 dtype=np.float64):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are "
                                      "not supported")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.batch_first, self.head_dim = batch_first, embed_dim // num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dtype=dtype))
            object.__setattr__(self, "q_proj_weight", None)
            object.__setattr__(self, "k_proj_weight", None)
            object.__setattr__(self, "v_proj_weight", None)
        else:
            object.__setattr__(self, "in_proj_weight", None)
            self.q_proj_weight = Parameter(np.empty((E, E), dtype=dtype))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dtype=dtype))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dtype=dtype))
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * E, dtype=dtype))
        else:
            object.__setattr__(self, "in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def _project(self, x, i):
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight[i * E:(i + 1) * E]
        else:
            w = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[i]
        b = None if self.in_proj_bias is None else self.in_proj_bias[i * E:(i + 1) * E]
        return F.linear(x, w, b)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        name = "MultiheadAttention"
        unbatched = ndim_of(query) == 2
        if unbatched:
            query, key, value = query[:, None], key[:, None], value[:, None]
            if key_padding_mask is not None:
                key_padding_mask = np.asarray(unbox(key_padding_mask))[None]
        elif ndim_of(query) != 3:
            raise ValueError(f"{name}: query should be unbatched 2-D or batched 3-D, got "
                             f"{ndim_of(query)}-D")
        elif self.batch_first:
            query, key, value = (np.swapaxes(t, 0, 1) for t in (query, key, value))
        L, N, E = shape_of(query)
        S = shape_of(key)[0]
        if E != self.embed_dim:
            raise ValueError(f"{name}: was expecting embedding dimension of "
                             f"{self.embed_dim}, but got {E}")
        if shape_of(key)[:2] != shape_of(value)[:2]:
            raise ValueError(f"{name}: key shape {shape_of(key)} does not match value shape "
                             f"{shape_of(value)}")
        if is_causal and attn_mask is None:
            raise RuntimeError("Need attn_mask if specifying the is_causal hint (PyTorch's "
                               "rule): pass the causal mask, e.g. "
                               "np.triu(np.ones((L, L), bool), 1)")
        H, D = self.num_heads, self.head_dim
        dtype = _float_dtype(query)

        def heads(t, n):            # (n, N, E) → (N, H, n, D)
            return np.transpose(np.reshape(t, (n, N, H, D)), (1, 2, 0, 3))

        q = heads(self._project(query, 0), L)
        k = heads(self._project(key, 1), S)
        v = heads(self._project(value, 2), S)
        scores = (q * (1.0 / math.sqrt(D))) @ np.swapaxes(k, -2, -1)     # (N, H, L, S)
        if attn_mask is not None:
            m = _float_mask(attn_mask, dtype, allowed_when_true=False)
            ms = shape_of(m)
            if len(ms) == 2:
                if ms != (L, S):
                    raise RuntimeError(f"{name}: the shape of the 2D attn_mask is {ms}, but "
                                       f"should be {(L, S)}.")
            elif len(ms) == 3:
                if ms != (N * H, L, S):
                    raise RuntimeError(f"{name}: the shape of the 3D attn_mask is {ms}, but "
                                       f"should be {(N * H, L, S)}.")
                m = np.reshape(m, (N, H, L, S))
            else:
                raise RuntimeError(f"{name}: attn_mask's dimension {len(ms)} is not supported")
            scores = scores + m
        if key_padding_mask is not None:
            kp = _float_mask(key_padding_mask, dtype, allowed_when_true=False)
            if shape_of(kp) != (N, S):
                raise RuntimeError(f"{name}: expected key_padding_mask of shape {(N, S)}, got "
                                   f"{shape_of(kp)}")
            scores = scores + np.reshape(kp, (N, 1, 1, S))
        weights = F.softmax(scores, dim=-1)
        if self.training and self.dropout > 0.0:
            weights = F.dropout(weights, self.dropout, True)
        out = weights @ v                                                  # (N, H, L, D)
        out = np.reshape(np.transpose(out, (2, 0, 1, 3)), (L, N, E))
        out = self.out_proj(out)
        if unbatched:
            out = out[:, 0]
        elif self.batch_first:
            out = np.swapaxes(out, 0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = np.mean(weights, axis=1)
        if unbatched:
            weights = weights[0]
        return out, weights

