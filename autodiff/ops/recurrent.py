"""Fused recurrent cells: one LSTM or GRU time step as one primitive — for speed.

Written with the engine's primitives, an LSTM step records a sigmoid, three slices, two
tanh, three products and a sum (each one record and one backward call); fused, it is one
record whose rules are a handful of array expressions. The rules are written with NumPy
calls on whatever they receive, so they are differentiable again (any order, both modes).
σ is ``(1 + tanh(x/2)) / 2``, as ``nn.functional.sigmoid``: no overflow for any x.

``lstm_cell(a, c)``: ``a`` (…, 4H) the gate pre-activations ``x W_ihᵀ + b_ih + h W_hhᵀ + b_hh``
in PyTorch's row order (i, f, g, o), ``c`` (…, H) the cell state; returns ``(h', c')``
stacked on a new axis before the state's axes, shape (2, …, H):

    i, f, g, o = σ(a_i), σ(a_f), tanh(a_g), σ(a_o)
    c' = f c + i g,      h' = o tanh(c')

``gru_cell(xp, hp, h)``: ``xp = x W_ihᵀ + b_ih`` and ``hp = h W_hhᵀ + b_hh`` (…, 3H) in
PyTorch's order (r, z, n), ``h`` (…, H):

    r, z = σ(xp_r + hp_r), σ(xp_z + hp_z),   n = tanh(xp_n + r hp_n),   h' = n + z (h − n)

>>> a, c = np.zeros((1, 8)), np.ones((1, 2))
>>> lstm_cell(a, c)[1]                    # c' = σ(0)·1 + σ(0)·tanh(0)
array([[0.5, 0.5]])
"""
import numpy as np

from ..arrays import ndim_of
from . import dependency
from .define import defprim

__all__ = ["lstm_cell", "gru_cell", "lstm_cell_p", "gru_cell_p"]


def _sigmoid(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _blocks(a, k):
    """The k equal blocks of the last axis of ``a``."""
    n = a.shape[-1] // k
    return [a[..., j * n:(j + 1) * n] for j in range(k)]


def _stack_axis(state):
    """The axis that stacks (h', c'): just before the state's own axes, so a leading batch
    of directions stays in front."""
    return -(ndim_of(state) + 1)


def _part(y, k, state):
    """Element ``k`` of the stacked pair ``y`` (which may carry a batch of directions)."""
    return y[(Ellipsis, k) + (slice(None),) * ndim_of(state)]


# ----- LSTM -----
def _lstm_gates(a):
    # One σ over all four blocks (g's block unused): three array passes instead of twelve.
    s = _blocks(_sigmoid(a), 4)
    return s[0], s[1], np.tanh(_blocks(a, 4)[2]), s[3]


def _check(name, pre, k, state):
    if (np.ndim(pre) < 1 or np.shape(pre)[:-1] != np.shape(state)[:-1]
            or np.shape(pre)[-1] != k * np.shape(state)[-1]):
        raise ValueError(f"{name}: pre-activations of shape {np.shape(pre)} do not fit a "
                         f"state of shape {np.shape(state)} (need (..., {k}·H) and (..., H))")


def _lstm(a, c):
    _check("lstm_cell", a, 4, c)
    i, f, g, o = _lstm_gates(a)
    c2 = f * c + i * g
    return np.stack([o * np.tanh(c2), c2], axis=_stack_axis(c))


def _lstm_jvp(tangents, ans, a, c):
    ta, tc = tangents
    i, f, g, o = _lstm_gates(a)
    c2 = _part(ans, 1, c)
    tanh_c2 = np.tanh(c2)
    dc2 = 0.0
    th_o = 0.0
    if ta is not None:
        ti, tf, tg, to = _blocks(ta, 4)
        dc2 = tf * (f * (1.0 - f)) * c + ti * (i * (1.0 - i)) * g + i * ((1.0 - g * g) * tg)
        th_o = to * (o * (1.0 - o)) * tanh_c2
    if tc is not None:
        dc2 = dc2 + f * tc
    dh = th_o + o * (1.0 - tanh_c2 * tanh_c2) * dc2     # the same shape as dc2
    return np.stack([dh, dc2], axis=_stack_axis(c))


def _lstm_vjp(g, ans, a, c):
    i, f, gg, o = _lstm_gates(a)
    c2 = _part(ans, 1, c)
    gh, gc = _part(g, 0, c), _part(g, 1, c)
    tanh_c2 = np.tanh(c2)
    dc2 = gc + gh * o * (1.0 - tanh_c2 * tanh_c2)
    da = np.concatenate([dc2 * gg * (i * (1.0 - i)),
                         dc2 * c * (f * (1.0 - f)),
                         dc2 * i * (1.0 - gg * gg),
                         gh * tanh_c2 * (o * (1.0 - o))], axis=-1)
    return da, dc2 * f


lstm_cell_p = defprim("lstm_cell", _lstm, jvp=_lstm_jvp, vjp=_lstm_vjp,
                      flops=lambda ans, a, c: 30 * np.size(c))


# ----- GRU -----
def _gru_parts(xp, hp):
    n2 = np.shape(hp)[-1] // 3 * 2
    r, z = _blocks(_sigmoid(xp[..., :n2] + hp[..., :n2]), 2)     # one σ for r and z
    hn = hp[..., n2:]
    n = np.tanh(xp[..., n2:] + r * hn)
    return r, z, n, hn


def _gru(xp, hp, h):
    _check("gru_cell", xp, 3, h)
    _check("gru_cell", hp, 3, h)
    r, z, n, hn = _gru_parts(xp, hp)
    return n + z * (h - n)


def _gru_jvp(tangents, ans, xp, hp, h):
    txp, thp, th = tangents
    r, z, n, hn = _gru_parts(xp, hp)
    t_ar = t_az = t_an = 0.0
    if txp is not None:
        t_ar, t_az, t_an = _blocks(txp, 3)
    t_hn = 0.0
    if thp is not None:
        hr, hz, t_hn = _blocks(thp, 3)
        t_ar, t_az = t_ar + hr, t_az + hz
    tr = (r * (1.0 - r)) * t_ar
    tz = (z * (1.0 - z)) * t_az
    tn = (1.0 - n * n) * (t_an + tr * hn + r * t_hn)
    out = tn + tz * (h - n) - z * tn
    if th is not None:
        out = out + z * th
    return out


def _gru_vjp(g, ans, xp, hp, h):
    r, z, n, hn = _gru_parts(xp, hp)
    dn = g * (1.0 - z)
    dz = g * (h - n) * (z * (1.0 - z))
    dan = dn * (1.0 - n * n)
    dr = dan * hn * (r * (1.0 - r))
    return (np.concatenate([dr, dz, dan], axis=-1),
            np.concatenate([dr, dz, dan * r], axis=-1),
            g * z)


gru_cell_p = defprim("gru_cell", _gru, jvp=_gru_jvp, vjp=_gru_vjp,
                     flops=lambda ans, xp, hp, h: 25 * np.size(h))


def lstm_cell(a, c):
    """One LSTM step from the gate pre-activations ``a`` (…, 4H) and cell state ``c``
    (…, H): ``(h', c')`` stacked, shape (2, …, H). See the module docstring."""
    return lstm_cell_p(a, c)


def gru_cell(xp, hp, h):
    """One GRU step from the input and hidden projections ``xp``, ``hp`` (…, 3H) and the
    state ``h`` (…, H): ``h'``. See the module docstring."""
    return gru_cell_p(xp, hp, h)

# ----- Dependency structure (the sparsity mode) -----
lstm_cell_p.sparsity = dependency.lstm_cell
gru_cell_p.sparsity = dependency.gru_cell
