"""Recurrent layers — ``RNN``, ``LSTM``, ``GRU`` — as PyTorch defines them.

The input projection ``x W_ihᵀ + b_ih`` of a whole layer is one matrix product; the
recurrence of each layer and direction is then one primitive for LSTM and GRU
(``lstm_sequence``/``gru_sequence`` in ``autodiff.ops.recurrent``: the loop over time steps
and back-propagation through time inside one record, with rules that are differentiable
again), and a Python loop of ``h W_hhᵀ`` and ``tanh``/``relu`` per step for RNN. Every
derivative — of the input, the initial state and each parameter, in either mode, to any
order — comes from the tape. The cells (LSTMCell, GRUCell) are one step: ``h W_hhᵀ`` and the
fused ``lstm_cell``/``gru_cell`` primitive. Parameter names, shapes, gate order and the default
initialisation (uniform in ±1/√hidden_size) are PyTorch's, so a ``state_dict`` copies across
by name:

    RNN   h' = act(W_ih x + b_ih + W_hh h + b_hh)                       act = tanh or relu
    LSTM  i, f, g, o = σ, σ, tanh, σ of (W_ih x + b_ih + W_hh h + b_hh)   (rows in that order)
          c' = f c + i g,   h' = o tanh(c')         with proj_size > 0: h' = W_hr (o tanh(c'))
    GRU   r, z = σ(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z})
          n = tanh(W_in x + b_in + r (W_hn h + b_hn)),   h' = (1 - z) n + z h

>>> import numpy as np
>>> from autodiff import nn
>>> lstm = nn.LSTM(3, 5, num_layers=2, batch_first=True)
>>> out, (h_n, c_n) = lstm(np.ones((4, 7, 3)))          # (batch, seq, feature)
>>> out.shape, h_n.shape, c_n.shape
((4, 7, 5), (2, 4, 5), (2, 4, 5))
>>> np.sum(out).backward()
>>> lstm.weight_hh_l1.grad.shape
(20, 5)
"""
import math

import numpy as np

from autodiff.ops.recurrent import gru_cell, gru_sequence, lstm_cell, lstm_sequence

from . import functional as F
from . import init
from .module import Module, Parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]


# ----- Cells: one time step, on the precomputed input projection ``xp = x W_ihᵀ + b_ih`` -----
def _rnn_cell(act):
    def step(xp, state, w_hh_t, b_hh):
        a = xp + state @ w_hh_t
        if b_hh is not None:
            a = a + b_hh
        h = act(a)
        return h, h
    return step


def _lstm_cell(xp, state, w_hh_t, b_hh):
    h, c = state
    gates = xp + h @ w_hh_t
    if b_hh is not None:
        gates = gates + b_hh
    hc = lstm_cell(gates, c)            # one fused primitive for the gates and the state
    h = hc[0]
    return h, (h, hc[1])


def _gru_cell(xp, h, w_hh_t, b_hh):
    hp = h @ w_hh_t
    if b_hh is not None:
        hp = hp + b_hh
    h = gru_cell(xp, hp, h)             # one fused primitive for the gates and the state
    return h, h


class RNNBase(Module):
    """What RNN, LSTM and GRU share: parameters, shapes, the loop over layers and time."""

    _gates = 1
    _has_cell = False

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float64, proj_size=0):
        super().__init__()
        if not (isinstance(hidden_size, int) and hidden_size > 0):
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        if not (isinstance(num_layers, int) and num_layers > 0):
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout must be in [0, 1], got {dropout}")
        if not isinstance(proj_size, int) or isinstance(proj_size, bool):
            raise TypeError(f"proj_size must be an integer, got {proj_size!r}")
        if proj_size and not self._has_cell:        # PyTorch's messages
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bool(bidirectional)
        self.proj_size = proj_size
        gh = self._gates * hidden_size
        hs = self._h_size                   # what h carries: proj_size when projecting
        dirs = 2 if bidirectional else 1
        for k in range(num_layers):
            fan_in = input_size if k == 0 else hs * dirs
            for sfx in ("", "_reverse")[:dirs]:
                setattr(self, f"weight_ih_l{k}{sfx}", Parameter(np.empty((gh, fan_in), dtype)))
                setattr(self, f"weight_hh_l{k}{sfx}", Parameter(np.empty((gh, hs), dtype)))
                if bias:
                    setattr(self, f"bias_ih_l{k}{sfx}", Parameter(np.empty(gh, dtype)))
                    setattr(self, f"bias_hh_l{k}{sfx}", Parameter(np.empty(gh, dtype)))
                if proj_size:           # after the biases: PyTorch's state_dict order
                    setattr(self, f"weight_hr_l{k}{sfx}",
                            Parameter(np.empty((proj_size, hidden_size), dtype)))
        self.reset_parameters()

    @property
    def _h_size(self):
        """The size of h (and of each direction's output): proj_size, or hidden_size."""
        return self.proj_size or self.hidden_size

    def reset_parameters(self):
        """Every weight and bias uniform in ±1/√hidden_size (PyTorch's default)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self):
        """A no-op, for code written for PyTorch's cuDNN path."""

    def _cell(self, xp, state, w_hh_t, b_hh):
        raise NotImplementedError

    def _project(self, inp, w_ih, b_ih, b_hh, swap):
        """The input projection ``x W_ihᵀ + b_ih`` of all steps in one product, time-major
        (``swap``: ``inp`` is batch-major)."""
        shape = np.shape(inp)
        # As one 2-D product: NumPy runs a 3-D one as a loop of small ones (~3× slower).
        xp = np.reshape(F.linear(np.reshape(inp, (-1, shape[-1])), w_ih, b_ih),
                        shape[:-1] + (np.shape(w_ih)[0],))
        return np.swapaxes(xp, 0, 1) if swap else xp

    def _layer(self, xp, w_hh, b_hh, h_init, c_init, j, reverse):
        """One layer and direction over the whole sequence, from its input projection:
        ``(outputs, h_last, c_last)``. This base runs the cells step by step (RNN); LSTM and
        GRU run one sequence primitive instead."""
        seq, batch = np.shape(xp)[:2]
        state = self._initial(h_init, j, batch, xp.dtype, self.hidden_size)
        w_hh_t = w_hh.T
        ys = [None] * seq
        for t in (range(seq - 1, -1, -1) if reverse else range(seq)):
            ys[t], state = self._cell(xp[t], state, w_hh_t, b_hh)
        return np.stack(ys), state, None

    @staticmethod
    def _initial(given, j, batch, dtype, size):
        """Layer-direction ``j``'s initial state: the given one, or zeros of ``size``."""
        if given is not None:
            return given[j]
        return np.zeros((batch, size), dtype=dtype)

    # ----- shapes -----
    def _check_state(self, s, batch, unbatched, what, size):
        want = (self.num_layers * (2 if self.bidirectional else 1),) + \
            (() if unbatched else (batch,)) + (size,)
        if tuple(np.shape(s)) != want:
            raise ValueError(f"{type(self).__name__}: expected {what} of shape {want}, got "
                             f"{tuple(np.shape(s))}")
        return s[:, None] if unbatched else s

    def forward(self, x, h0=None, *, hx=None):
        """``x`` of shape (seq, batch, input_size), or (batch, seq, input_size) with
        ``batch_first``, or (seq, input_size) unbatched. ``h0`` (``hx`` in PyTorch; for LSTM
        the pair ``(h0, c0)``) of shape (num_layers·directions, batch, hidden_size), zeros
        when omitted (an LSTM with proj_size: h0 and h_n have proj_size features). Returns
        ``(output, h_n)``, for LSTM ``(output, (h_n, c_n))``."""
        if hx is not None:
            if h0 is not None:
                raise TypeError("pass the initial state once, as h0 or as hx")
            h0 = hx
        name = type(self).__name__
        nd = np.ndim(x)
        if nd not in (2, 3):
            raise ValueError(f"{name}: expected a 2-D (unbatched) or 3-D input, got "
                             f"{nd}-D of shape {np.shape(x)}")
        if np.shape(x)[-1] != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must equal input_size "
                             f"({self.input_size}), got {np.shape(x)[-1]}")
        unbatched = nd == 2
        if unbatched:
            x = x[:, None]
        # The first layer's input projection runs on the input as given (a contiguous
        # matmul), the recurrence on time-major steps.
        swap = not unbatched and self.batch_first
        batch, seq = np.shape(x)[:2] if swap else np.shape(x)[1::-1]
        if seq == 0:
            raise ValueError(f"{name}: the input has no time steps")

        dirs = 2 if self.bidirectional else 1
        if h0 is None:
            h_init = c_init = None
        elif self._has_cell:
            if not (isinstance(h0, (tuple, list)) and len(h0) == 2):
                raise TypeError(f"{name}: the initial state is a pair (h0, c0)")
            h_init = self._check_state(h0[0], batch, unbatched, "h0", self._h_size)
            c_init = self._check_state(h0[1], batch, unbatched, "c0", self.hidden_size)
        else:
            h_init = self._check_state(h0, batch, unbatched, "h0", self.hidden_size)
            c_init = None

        h_n, c_n = [], []
        inp = x
        for k in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(("", "_reverse")[:dirs]):
                j = k * dirs + d
                w_ih = getattr(self, f"weight_ih_l{k}{sfx}")
                w_hh = getattr(self, f"weight_hh_l{k}{sfx}")
                b_ih = getattr(self, f"bias_ih_l{k}{sfx}") if self.bias else None
                b_hh = getattr(self, f"bias_hh_l{k}{sfx}") if self.bias else None
                xp = self._project(inp, w_ih, b_ih, b_hh, swap and k == 0)
                y, h, c = self._layer(xp, w_hh, b_hh, h_init, c_init, j, d == 1)
                outs.append(y)
                h_n.append(h)
                if self._has_cell:
                    c_n.append(c)
            inp = outs[0] if dirs == 1 else np.concatenate(outs, axis=-1)
            if self.dropout and self.training and k < self.num_layers - 1:
                inp = F.dropout(inp, self.dropout, True, rng=init.default_generator())

        out = inp
        h_n = np.stack(h_n)
        c_n = np.stack(c_n) if self._has_cell else None
        if unbatched:
            out, h_n = out[:, 0], h_n[:, 0]
            c_n = c_n[:, 0] if c_n is not None else None
        elif swap:
            out = np.swapaxes(out, 0, 1)
        return (out, (h_n, c_n)) if self._has_cell else (out, h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h' = act(W_ih x + b_ih + W_hh h + b_hh)``, ``act`` = tanh or relu.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float64)`` — PyTorch's
    positional order; ``weight_ih_l{k}`` is (hidden_size, input_size)."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, dtype=np.float64):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)
        self.nonlinearity = nonlinearity
        self._step = _rnn_cell(np.tanh if nonlinearity == "tanh" else F.relu)

    def _cell(self, xp, state, w_hh_t, b_hh):
        return self._step(xp, state, w_hh_t, b_hh)


class LSTM(RNNBase):
    """Long short-term memory; gates i, f, g, o stacked in that order in
    ``weight_ih_l{k}`` (4·hidden_size, input_size). Returns ``(output, (h_n, c_n))``.

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0, dtype=np.float64)`` — PyTorch's positional order. With
    ``0 < proj_size < hidden_size`` each step's ``o tanh(c')`` is projected by
    ``weight_hr_l{k}`` (proj_size, hidden_size): h, the outputs and ``weight_hh_l{k}``'s
    columns have proj_size features; c stays hidden_size."""

    _gates = 4
    _has_cell = True

    _cell = staticmethod(_lstm_cell)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, dtype=np.float64):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, proj_size)

    def _project(self, inp, w_ih, b_ih, b_hh, swap):
        # Both biases enter the pre-activations only as their sum: one add of a vector.
        return super()._project(inp, w_ih, None if b_ih is None else b_ih + b_hh, None, swap)

    def _layer(self, xp, w_hh, b_hh, h_init, c_init, j, reverse):
        seq, batch = np.shape(xp)[:2]
        h = self._initial(h_init, j, batch, xp.dtype, self._h_size)
        c = self._initial(c_init, j, batch, xp.dtype, self.hidden_size)
        if not self.proj_size:
            hc = lstm_sequence(xp, w_hh, h, c, reverse=reverse)
            last = 0 if reverse else -1
            return hc[:, 0], hc[last, 0], hc[last, 1]
        # The fused sequence primitive has no projection: step by step, the fused cell and
        # then h = (o tanh c) W_hrᵀ.
        dirs = 2 if self.bidirectional else 1
        w_hr = getattr(self, f"weight_hr_l{j // dirs}{'_reverse' if reverse else ''}")
        w_hh_t, w_hr_t = w_hh.T, w_hr.T
        ys = [None] * seq
        for t in (range(seq - 1, -1, -1) if reverse else range(seq)):
            hc = lstm_cell(xp[t] + h @ w_hh_t, c)
            h, c = hc[0] @ w_hr_t, hc[1]
            ys[t] = h
        return np.stack(ys), h, c


class GRU(RNNBase):
    """Gated recurrent unit; gates r, z, n stacked in that order in ``weight_ih_l{k}``
    (3·hidden_size, input_size), with ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``."""

    _gates = 3

    _cell = staticmethod(_gru_cell)

    def _layer(self, xp, w_hh, b_hh, h_init, c_init, j, reverse):
        if b_hh is None:
            b_hh = np.zeros(np.shape(w_hh)[0], dtype=xp.dtype)
        h = self._initial(h_init, j, np.shape(xp)[1], xp.dtype, self.hidden_size)
        y = gru_sequence(xp, w_hh, b_hh, h, reverse=reverse)
        return y, y[0 if reverse else -1], None


# ----- Cells: one step as a layer (PyTorch's RNNCell, LSTMCell, GRUCell) -----
class _CellBase(Module):
    _gates = 1

    def __init__(self, input_size, hidden_size, bias=True, dtype=np.float64):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gh = self._gates * hidden_size
        self.weight_ih = Parameter(np.empty((gh, input_size), dtype))
        self.weight_hh = Parameter(np.empty((gh, hidden_size), dtype))
        if bias:
            self.bias_ih = Parameter(np.empty(gh, dtype))
            self.bias_hh = Parameter(np.empty(gh, dtype))
        else:
            self.bias_ih = self.bias_hh = None
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias uniform in ±1/√hidden_size (PyTorch's default)."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _prepare(self, x, state, what):
        name = type(self).__name__
        nd = np.ndim(x)
        if nd not in (1, 2):
            raise F.ShapeError(f"{name}: expected input to be 1-D or 2-D, got {nd}-D")
        if np.shape(x)[-1] != self.input_size:
            raise F.ShapeError(f"{name}: input has {np.shape(x)[-1]} features, expected "
                             f"input_size={self.input_size}")
        unbatched = nd == 1
        if unbatched:
            x = x[None]
        xp = x @ self.weight_ih.T
        if self.bias_ih is not None:
            xp = xp + self.bias_ih
        batch = np.shape(x)[0]
        zeros = np.zeros((batch, self.hidden_size), dtype=xp.dtype)
        states = []
        for s in (state if self._gates == 4 else (state,)) if state is not None else ():
            want = (() if unbatched else (batch,)) + (self.hidden_size,)
            if tuple(np.shape(s)) != want:
                raise F.ShapeError(f"{name}: expected {what} of shape {want}, got "
                                 f"{tuple(np.shape(s))}")
            states.append(s[None] if unbatched else s)
        if not states:
            states = [zeros] * (2 if self._gates == 4 else 1)
        return xp, states, unbatched

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class RNNCell(_CellBase):
    """``h' = act(W_ih x + b_ih + W_hh h + b_hh)``; ``forward(input, hx=None)`` → h'."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh",
                 dtype=np.float64):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        xp, (h,), unbatched = self._prepare(input, hx, "hx")
        step = _rnn_cell(np.tanh if self.nonlinearity == "tanh" else F.relu)
        h, _ = step(xp, h, self.weight_hh.T, self.bias_hh)
        return h[0] if unbatched else h


class LSTMCell(_CellBase):
    """One LSTM step; ``forward(input, hx=None)`` with ``hx = (h, c)`` → ``(h', c')``."""
    _gates = 4

    def forward(self, input, hx=None):
        xp, (h, c), unbatched = self._prepare(input, hx, "hx")
        _, (h, c) = _lstm_cell(xp, (h, c), self.weight_hh.T, self.bias_hh)
        return (h[0], c[0]) if unbatched else (h, c)


class GRUCell(_CellBase):
    """One GRU step; ``forward(input, hx=None)`` → h'."""
    _gates = 3

    def forward(self, input, hx=None):
        xp, (h,), unbatched = self._prepare(input, hx, "hx")
        h, _ = _gru_cell(xp, h, self.weight_hh.T, self.bias_hh)
        return h[0] if unbatched else h
