"""Fused recurrent cells and layers: one LSTM or GRU time step, or a whole sequence, as one
primitive — for speed.

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

``lstm_sequence(xp, w_hh, h0, c0, reverse=False)`` and ``gru_sequence(xp, w_hh, b_hh, h0,
reverse=False)`` run those steps over a whole sequence (``a = xp[t] + h W_hhᵀ``, resp.
``hp = h W_hhᵀ + b_hh``) inside one record, as torch's ``_VF.lstm`` does: nn.LSTM and nn.GRU
are one such record per layer and direction (see the section below for shapes and rules).

>>> a, c = np.zeros((1, 8)), np.ones((1, 2))
>>> lstm_cell(a, c)[1]                    # c' = σ(0)·1 + σ(0)·tanh(0)
array([[0.5, 0.5]])
>>> y = lstm_sequence(np.zeros((3, 1, 8)), np.zeros((8, 2)), np.zeros((1, 2)), np.ones((1, 2)))
>>> y.shape, y[0, 1]                      # (T, [h, c, i, f, g, o], batch, H); c after step 0
((3, 6, 1, 2), array([[0.5, 0.5]]))
"""
import numpy as np

from ..arrays import lead, ndim_of
from . import dependency
from .define import defprim

__all__ = ["lstm_cell", "gru_cell", "lstm_cell_p", "gru_cell_p", "lstm_sequence",
           "gru_sequence", "lstm_sequence_p", "gru_sequence_p"]


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


# ----- Whole sequences: one primitive per layer and direction (as torch's _VF.lstm) -----
# A layer of T steps written with the cells records 2T matmuls, T cells and T getitems, and
# its reverse sweep runs ~6T backward calls plus a full-size scatter per step. The sequence
# primitives run the loop inside one record: per step only ``h W_hhᵀ`` and the gates (in
# place, on plain arrays); the reverse rule recomputes every step's gates from the saved
# states with one matmul over the stacked steps, runs back-propagation through time in one
# loop, and forms ``dW_hh`` with one matmul over the stacked steps. Both rules are NumPy
# calls on whatever they receive (loops over steps of array expressions), so they are
# differentiable again, to any order, in both modes, batched.
#
# Shapes: ``xp`` (T, …, k·H) the input projections of all steps (biases included),
# ``w_hh`` (k·H, H), states (…, H). ``reverse=True`` runs from step T−1 down to 0 (the
# backward direction of a bidirectional layer); output step t is always the state after
# reading input t. ``steps`` is the sequence length, passed by the wrappers so that a recorded
# program states its loop's length (ONNX export unrolls the loop, so a length that changes
# with the batch size must be refused there, not written as a fixed one).
def _check_seq(name, xp, k, w_hh, states, steps):
    s0 = np.shape(states[0])
    H = s0[-1] if s0 else 0
    ok = (np.ndim(xp) >= 2 and np.shape(xp)[1:-1] == s0[:-1] and np.shape(xp)[-1] == k * H
          and np.shape(w_hh) == (k * H, H) and all(np.shape(s) == s0 for s in states))
    if not ok:
        raise ValueError(f"{name}: inputs of shapes {np.shape(xp)} (xp), {np.shape(w_hh)} "
                         f"(w_hh), {[np.shape(s) for s in states]} (states) do not fit "
                         f"(need (T, ..., {k}·H), ({k}·H, H) and (..., H))")
    if np.shape(xp)[0] == 0:
        raise ValueError(f"{name}: the sequence has no time steps")
    if steps is not None and steps != np.shape(xp)[0]:
        raise ValueError(f"{name}: steps={steps} but xp has {np.shape(xp)[0]} time steps")


def _plain(*xs):
    """Plain float arrays only (no tracked values, no other array types): the fast paths."""
    return all(type(x) is np.ndarray and x.dtype.kind == "f" for x in xs)


def _order(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def _at(x, t, nd):
    """Step ``t`` of a stack of steps with ``nd`` axes (a leading batch of directions kept)."""
    return x[(Ellipsis, t) + (slice(None),) * (nd - 1)]


def _prev(states, s0, reverse):
    """The state each step starts from: ``s0`` then the outputs, shifted one step."""
    if reverse:
        return np.concatenate([states[1:], s0[None]], axis=0)
    return np.concatenate([s0[None], states[:-1]], axis=0)


def _proj(hprev, w, like):
    """``hprev @ wᵀ`` over all steps in one matmul: (T, …, H) by (B?, k·H, H) gives
    (B?, T, …, k·H) (``w`` may be a tangent with a leading batch of directions)."""
    H = np.shape(hprev)[-1]
    flat = np.reshape(hprev, (_rows(hprev), H)) @ np.swapaxes(w, -1, -2)
    return np.reshape(flat, lead(w, like) + np.shape(hprev)[:-1] + (np.shape(w)[-2],))


def _outer(d, hprev, like):
    """``Σ_steps dᵀ hprev`` in one matmul: the weight's cotangent (B?, k·H, H)."""
    kH, H = np.shape(d)[-1], np.shape(hprev)[-1]
    flat = np.reshape(d, lead(d, like) + (_rows(hprev), kH))
    return np.swapaxes(flat, -1, -2) @ np.reshape(hprev, (_rows(hprev), H))


def _rows(x):
    """The number of rows of ``x`` folded to (rows, last axis), stated (a -1 is ambiguous
    when a batch of directions is empty)."""
    return int(np.prod(np.shape(x)[:-1], dtype=np.int64))


# LSTM: output (T, 6, …, H), every step's h, c and gates i, f, g, o. The gates are what the
# reverse rule needs (saved, as torch's kernel keeps its workspace, instead of recomputed
# with another matmul over all steps); they are outputs like the states, so every rule
# covers them (a cotangent on them is added in, a tangent of them given). Each step's six
# rows are contiguous: the loops' elementwise operations run on contiguous memory.
def _lstm_affine(H, dt):
    """Per-column factors that make the four gates one tanh: σ(a) = ½ tanh(½a) + ½ for i, f,
    o and tanh(a) for g, i.e. ``gates = tanh(a · scale) · scale + shift`` (scale ½ or 1)."""
    scale = np.repeat(np.array([0.5, 0.5, 1.0, 0.5], dt), H)
    return scale, np.repeat(np.array([0.5, 0.5, 0.0, 0.5], dt), H)


def _lstm_seq(xp, w_hh, h0, c0, reverse=False, steps=None):
    _check_seq("lstm_sequence", xp, 4, w_hh, (h0, c0), steps)
    T, H = np.shape(xp)[0], np.shape(c0)[-1]
    M = np.size(c0) // H if H else 0
    dt = np.result_type(xp, w_hh, h0, c0)
    out = np.empty((T, 6, M, H), dt)
    # By gate: h @ w4[k] is gate k's pre-activation, written straight into the output's
    # rows (a batch of four products; contiguous throughout, no strided pass).
    w4 = np.ascontiguousarray(np.reshape(w_hh, (4, H, H)).transpose(0, 2, 1), dtype=dt)
    x4 = np.ascontiguousarray(np.reshape(xp, (T, M, 4, H)).transpose(0, 2, 1, 3))
    scale, shift = (v.reshape(4, H)[:, :1, None] for v in _lstm_affine(H, dt))
    ig = np.empty((M, H), dt)
    h, c = np.reshape(h0, (M, H)), np.reshape(c0, (M, H))
    for t in _order(T, reverse):                # every operation in place
        h2, c2, i, f, g, o = y = out[t]
        gates = y[2:]
        np.matmul(h, w4, out=gates)
        gates += x4[t]
        gates *= scale                          # gates = tanh(a · scale) · scale + shift
        np.tanh(gates, out=gates)
        gates *= scale
        gates += shift
        np.multiply(f, c, out=c2)
        np.multiply(i, g, out=ig)
        c2 += ig
        np.tanh(c2, out=h2)
        h2 *= o
        h, c = h2, c2
    return out.reshape((T, 6) + np.shape(c0))


def _gate_slopes(i, f, g, o):
    """σ' = σ(1 − σ) and tanh' = 1 − tanh² of the four gates, from their values."""
    return i * (1.0 - i), f * (1.0 - f), 1.0 - g * g, o * (1.0 - o)


def _lstm_seq_vjp_arrays(g, ans, xp, w_hh, h0, c0, reverse):
    """The reverse rule on plain arrays (first order, no batch of cotangents): the same
    mathematics as ``_lstm_seq_vjp`` with every step's operations in place."""
    T, H = np.shape(xp)[0], np.shape(c0)[-1]
    M = np.size(c0) // H if H else 0
    dt = np.result_type(g, ans, xp, w_hh)
    y, g = ans.reshape(T, 6, M, H), g.reshape(T, 6, M, H)
    hs, cs, i, f, gg, o = (y[:, k] for k in range(6))
    hprev = np.empty((T, M, H), dt)             # contiguous, for dW_hh's one product
    first, rest, later = ((T - 1, slice(0, T - 1), slice(1, T)) if reverse
                          else (0, slice(1, T), slice(0, T - 1)))
    hprev[first], hprev[rest] = np.reshape(h0, (M, H)), hs[later]
    gates = y[:, 2:]
    direct = g[:, 2:]                           # cotangents on the gates themselves
    if direct.any():
        slope = gates * (1.0 - gates)           # σ' of i, f, o, and tanh' of g:
        np.subtract(1.0, gg * gg, out=slope[:, 2])
        direct = (direct * slope).transpose(0, 2, 1, 3)
    else:
        direct = None
    tc = np.tanh(cs)
    # By gate, in place: ∂c'/∂a for i, f, g (g σ'_i, c σ'_f, i tanh'_g) and ∂h'/∂a_o
    # (tanh c' σ'_o); then P = o (1 − tanh² c') = ∂h'/∂c'.
    d = np.subtract(1.0, gates)
    d *= gates
    d[:, 0] *= gg
    d[first, 1] *= np.reshape(c0, (M, H))       # (the cell state each step starts from)
    d[rest, 1] *= cs[later]
    dg = d[:, 2]
    np.multiply(gg, gg, out=dg)
    np.subtract(1.0, dg, out=dg)
    dg *= i
    d[:, 3] *= tc
    P = np.multiply(tc, tc)
    np.subtract(1.0, P, out=P)
    P *= o
    da = np.empty((T, M, 4, H), dt)
    by_gate = da.transpose(0, 2, 1, 3)          # the same memory, (T, 4, M, H)
    ghc = g[:, :2]
    dhc, tmp = np.zeros((2, M, H), dt), np.empty((M, H), dt)
    dh, dc = dhc
    for t in reversed(_order(T, reverse)):      # back-propagation through time
        dhc += ghc[t]
        np.multiply(dh, P[t], out=tmp)
        dc += tmp
        np.multiply(d[t, :3], dc, out=by_gate[t, :3])
        np.multiply(d[t, 3], dh, out=by_gate[t, 3])
        if direct is not None:
            da[t] += direct[t]
        dc *= f[t]
        np.matmul(da[t].reshape(M, 4 * H), w_hh, out=dh)
    da = da.reshape(T * M, 4 * H)
    dw = np.matmul(da.T, hprev.reshape(T * M, H))
    return (da.reshape(np.shape(xp)), dw, dh.reshape(np.shape(h0)), dc.reshape(np.shape(c0)))


def _lstm_seq_saved(ans, nd, h0, c0, reverse):
    """From the saved output: the states each step starts from, the forget gate, the gates'
    slopes, ``P = o (1 − tanh² c')`` (∂h'/∂c') and the four blocks' ``∂c'/∂a`` (i, f, g)
    and ``∂h'/∂a_o``."""
    hs, cs, i, f, g, o = (_at(ans, k, nd) for k in range(6))
    hprev, cprev = _prev(hs, h0, reverse), _prev(cs, c0, reverse)
    si, sf, sg, so = slopes = _gate_slopes(i, f, g, o)
    tanh_c = np.tanh(cs)
    d = (g * si, cprev * sf, i * sg, tanh_c * so)
    return hprev, f, o * (1.0 - tanh_c * tanh_c), d, slopes


def _lstm_seq_jvp(tangents, ans, xp, w_hh, h0, c0, reverse=False, steps=None):
    txp, tw, th, tc = tangents
    nd = ndim_of(xp)
    hprev, f, P, (di, df, dg, do), (si, sf, sg, so) = _lstm_seq_saved(ans, nd, h0, c0,
                                                                      reverse)
    base = txp
    if tw is not None:                          # hprev · tw_hhᵀ for all steps at once
        base = _proj(hprev, tw, w_hh) if base is None else base + _proj(hprev, tw, w_hh)
    w_t = np.swapaxes(w_hh, -1, -2)
    rows = [None] * len(f)                      # (th, tc, ti, tf, tg, to) of every step
    for t in _order(len(f), reverse):
        ta = None if base is None else _at(base, t, nd)
        if th is not None:
            ta = th @ w_t if ta is None else ta + th @ w_t
        if ta is None:                          # only c0 moves, at the first step
            dc = f[t] * tc
            dh = P[t] * dc
            tg = (0.0 * tc,) * 4
        else:
            ti, tf, tgg, to = _blocks(ta, 4)
            tg = (ti * si[t], tf * sf[t], tgg * sg[t], to * so[t])
            dc = ti * di[t] + tf * df[t] + tgg * dg[t]
            if tc is not None:
                dc = dc + f[t] * tc
            dh = to * do[t] + P[t] * dc
        th, tc = dh, dc
        rows[t] = np.stack((dh, dc) + tg, axis=-nd)
    return np.stack(rows, axis=-(nd + 1))


def _lstm_seq_vjp(g, ans, xp, w_hh, h0, c0, reverse=False, steps=None):
    if _plain(g, ans, xp, w_hh, h0, c0) and np.ndim(g) == np.ndim(ans):
        return _lstm_seq_vjp_arrays(g, ans, xp, w_hh, h0, c0, reverse)
    nd = ndim_of(xp)
    hprev, f, P, (di, df, dg, do), slopes = _lstm_seq_saved(ans, nd, h0, c0, reverse)
    gr = [_at(g, k, nd) for k in range(6)]
    direct = np.concatenate([gr[2 + k] * slopes[k] for k in range(4)], axis=-1)
    dh = dc = None
    das = [None] * len(f)
    for t in reversed(_order(len(f), reverse)):   # back-propagation through time
        gh, gc = _at(gr[0], t, nd), _at(gr[1], t, nd)
        dh = gh if dh is None else gh + dh
        dc = gc + dh * P[t] if dc is None else gc + dh * P[t] + dc
        da = np.concatenate([dc * di[t], dc * df[t], dc * dg[t], dh * do[t]], axis=-1)
        da = da + _at(direct, t, nd)
        das[t] = da
        dc = dc * f[t]
        dh = da @ w_hh
    da = np.stack(das, axis=-nd)
    return da, _outer(da, hprev, xp), dh, dc


lstm_sequence_p = defprim("lstm_sequence", _lstm_seq, jvp=_lstm_seq_jvp, vjp=_lstm_seq_vjp,
                          flops=lambda ans, xp, w_hh, h0, c0, **kw:
                          2 * np.size(xp) * np.shape(c0)[-1] + 5 * np.size(ans))


# GRU: output (T, …, H), the state after each step.
def _gru_seq(xp, w_hh, b_hh, h0, reverse=False, steps=None):
    _check_seq("gru_sequence", xp, 3, w_hh, (h0,), steps)
    if np.shape(b_hh) != np.shape(w_hh)[:1]:
        raise ValueError(f"gru_sequence: b_hh of shape {np.shape(b_hh)} does not fit w_hh of "
                         f"shape {np.shape(w_hh)}")
    T, H = np.shape(xp)[0], np.shape(h0)[-1]
    dt = np.result_type(xp, w_hh, b_hh, h0)
    out = np.empty(np.shape(xp)[:-1] + (H,), dt)
    w_t = np.ascontiguousarray(np.swapaxes(w_hh, 0, 1), dtype=dt)
    hp = np.empty(np.shape(xp)[1:], dt)
    rz = np.empty(np.shape(h0)[:-1] + (2 * H,), dt)
    n = np.empty(np.shape(h0), dt)
    h = h0
    for t in _order(T, reverse):
        np.matmul(h, w_t, out=hp)
        hp += b_hh
        x = xp[t]
        np.add(x[..., :2 * H], hp[..., :2 * H], out=rz)
        rz *= 0.5                               # σ = (1 + tanh(a/2)) / 2, in place
        np.tanh(rz, out=rz)
        rz += 1.0
        rz *= 0.5
        np.multiply(rz[..., :H], hp[..., 2 * H:], out=n)
        n += x[..., 2 * H:]
        np.tanh(n, out=n)
        h2 = out[t]                             # h' = n + z (h − n)
        np.subtract(h, n, out=h2)
        h2 *= rz[..., H:]
        h2 += n
        h = h2
    return out


def _gru_gates(hprev, xp, w_hh, b_hh):
    """Every step's r, z, n and ``hp``'s n block, recomputed from the states each step
    starts from with one product ``hp = hprev W_hhᵀ + b_hh`` over all steps."""
    return _gru_parts(xp, _proj(hprev, w_hh, w_hh) + b_hh)


def _gru_seq_saved(ans, xp, w_hh, b_hh, h0, reverse):
    hprev = _prev(ans, h0, reverse)
    return (hprev,) + _gru_gates(hprev, xp, w_hh, b_hh)


def _gru_seq_jvp(tangents, ans, xp, w_hh, b_hh, h0, reverse=False, steps=None):
    txp, tw, tb, th = tangents
    nd = ndim_of(xp)
    hprev, r, z, n, hn = _gru_seq_saved(ans, xp, w_hh, b_hh, h0, reverse)
    hp = None if tw is None else _proj(hprev, tw, w_hh)    # hprev · tw_hhᵀ, all steps
    if tb is not None:                          # the same every step: (B?, 1, …, 3H)
        tb = np.reshape(tb, lead(tb, b_hh) + (1,) * (nd - 2) + np.shape(b_hh))
    dr, dz, dn = r * (1.0 - r), z * (1.0 - z), 1.0 - n * n
    w_t = np.swapaxes(w_hh, -1, -2)
    hs = [None] * len(r)
    for t in _order(len(r), reverse):
        tx = None if txp is None else _at(txp, t, nd)
        thp = None if hp is None else _at(hp, t, nd)
        if tb is not None:
            thp = tb if thp is None else thp + tb
        if th is not None:
            thp = th @ w_t if thp is None else thp + th @ w_t
        t_ar = t_az = t_an = t_hn = 0.0
        if tx is not None:
            t_ar, t_az, t_an = _blocks(tx, 3)
        if thp is not None:
            hr, hz, t_hn = _blocks(thp, 3)
            t_ar, t_az = t_ar + hr, t_az + hz
        tr, tz = dr[t] * t_ar, dz[t] * t_az
        tn = dn[t] * (t_an + tr * hn[t] + r[t] * t_hn)
        out = tn + tz * (hprev[t] - n[t]) - z[t] * tn
        if th is not None:
            out = out + z[t] * th
        hs[t] = th = out
    return np.stack(hs, axis=-nd)


def _gru_seq_vjp_arrays(g, ans, xp, w_hh, b_hh, h0, reverse):
    """The reverse rule on plain arrays (first order, no batch of cotangents): the same
    mathematics as ``_gru_seq_vjp``, each step's operations in place into the cotangents."""
    T, H = np.shape(xp)[0], np.shape(h0)[-1]
    M = np.size(h0) // H if H else 0
    dt = np.result_type(g, ans, xp, w_hh, b_hh)
    hs, g = ans.reshape(T, M, H), g.reshape(T, M, H)
    hprev = np.empty((T, M, H), dt)             # contiguous, for dW_hh's one product
    first, rest, later = ((T - 1, slice(0, T - 1), slice(1, T)) if reverse
                          else (0, slice(1, T), slice(0, T - 1)))
    hprev[first], hprev[rest] = np.reshape(h0, (M, H)), hs[later]
    r, z, n, hn = _gru_gates(hprev, np.reshape(xp, (T, M, 3 * H)), w_hh, b_hh)
    a_z = (hprev - n) * (z * (1.0 - z))         # ∂h'/∂a_z, ∂h'/∂a_n, ∂n/∂a_r · (1/∂a_n)
    a_n = (1.0 - z) * (1.0 - n * n)
    a_r = hn * (r * (1.0 - r))
    dx, dhp = np.empty((T, M, 3 * H), dt), np.empty((T, M, 3 * H), dt)
    dh, tmp = np.zeros((M, H), dt), np.empty((M, H), dt)
    for t in reversed(_order(T, reverse)):
        dh += g[t]
        dr, dz, dan = _blocks(dx[t], 3)
        np.multiply(dh, a_n[t], out=dan)
        np.multiply(dan, a_r[t], out=dr)
        np.multiply(dh, a_z[t], out=dz)
        dhp[t, :, :2 * H] = dx[t, :, :2 * H]
        np.multiply(dan, r[t], out=dhp[t, :, 2 * H:])
        np.multiply(dh, z[t], out=tmp)
        np.matmul(dhp[t], w_hh, out=dh)
        dh += tmp
    flat = dhp.reshape(T * M, 3 * H)
    return (dx.reshape(np.shape(xp)), np.matmul(flat.T, hprev.reshape(T * M, H)),
            flat.sum(axis=0), dh.reshape(np.shape(h0)))


def _gru_seq_vjp(g, ans, xp, w_hh, b_hh, h0, reverse=False, steps=None):
    if _plain(g, ans, xp, w_hh, b_hh, h0) and np.ndim(g) == np.ndim(ans):
        return _gru_seq_vjp_arrays(g, ans, xp, w_hh, b_hh, h0, reverse)
    nd = ndim_of(xp)
    hprev, r, z, n, hn = _gru_seq_saved(ans, xp, w_hh, b_hh, h0, reverse)
    a_z = (hprev - n) * (z * (1.0 - z))
    a_n = (1.0 - z) * (1.0 - n * n)
    a_r = hn * (r * (1.0 - r))
    dh = None
    dxs, dhs = [None] * len(r), [None] * len(r)
    for t in reversed(_order(len(r), reverse)):
        dh = _at(g, t, nd) if dh is None else _at(g, t, nd) + dh
        dan = dh * a_n[t]
        dr = dan * a_r[t]
        dz = dh * a_z[t]
        dxs[t] = np.concatenate([dr, dz, dan], axis=-1)
        dhs[t] = dhp = np.concatenate([dr, dz, dan * r[t]], axis=-1)
        dh = dh * z[t] + dhp @ w_hh
    dxp, dhp = np.stack(dxs, axis=-nd), np.stack(dhs, axis=-nd)
    db = np.sum(np.reshape(dhp, lead(dhp, xp) + (_rows(xp), np.shape(b_hh)[0])), axis=-2)
    return dxp, _outer(dhp, hprev, xp), db, dh


gru_sequence_p = defprim("gru_sequence", _gru_seq, jvp=_gru_seq_jvp, vjp=_gru_seq_vjp,
                         flops=lambda ans, xp, w_hh, b_hh, h0, **kw:
                         2 * np.size(xp) * np.shape(h0)[-1] + 25 * np.size(ans))


def lstm_sequence(xp, w_hh, h0, c0, reverse=False):
    """A whole LSTM layer (one direction) from the input projections ``xp`` (T, …, 4H) — all
    of ``x W_ihᵀ + b_ih + b_hh`` — the recurrent weight ``w_hh`` (4H, H) and the initial
    states ``h0``, ``c0`` (…, H): every step's hidden and cell states and gates
    ``h, c, i, f, g, o``, shape (T, 6, …, H). Step t: ``a = xp[t] + h W_hhᵀ``, then
    :func:`lstm_cell`'s equations. ``reverse=True`` reads the steps from T−1 down to 0."""
    return lstm_sequence_p(xp, w_hh, h0, c0, reverse=bool(reverse), steps=np.shape(xp)[0])


def gru_sequence(xp, w_hh, b_hh, h0, reverse=False):
    """A whole GRU layer (one direction) from the input projections ``xp = x W_ihᵀ + b_ih``
    (T, …, 3H), ``w_hh`` (3H, H), ``b_hh`` (3H,) and the initial state ``h0`` (…, H): the
    state after every step, (T, …, H). Step t: ``hp = h W_hhᵀ + b_hh``, then
    :func:`gru_cell`'s equations. ``reverse=True`` reads the steps from T−1 down to 0."""
    return gru_sequence_p(xp, w_hh, b_hh, h0, reverse=bool(reverse),
                          steps=np.shape(xp)[0])


# ----- Dependency structure (the sparsity mode) -----
lstm_cell_p.sparsity = dependency.lstm_cell
gru_cell_p.sparsity = dependency.gru_cell
lstm_sequence_p.sparsity = dependency.sequence
gru_sequence_p.sparsity = dependency.sequence
