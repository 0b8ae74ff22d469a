"""The whole-sequence recurrent primitives (``lstm_sequence``, ``gru_sequence`` in
autodiff/ops/recurrent.py) equal the step-by-step composition of the fused cells in value and
in every derivative (both modes, batched, second order), their fast reverse path equals the
general one, and nn.LSTM / nn.GRU built on them equal torch's layers with copied weights
(outputs, final states and every gradient), also exported to ONNX. (The case table in
cases_conv.py checks both rules against numerical derivatives to second order.)"""
import numpy as np
import pytest

import autodiff as ad
from autodiff.ops import recurrent as R
from autodiff.ops.recurrent import gru_cell, gru_sequence, lstm_cell, lstm_sequence

import seams


# ----- references: the cells, one step at a time -----
def lstm_steps(xp, w, h0, c0, reverse=False):
    """(T, 6, ..., H): h, c and the gates of each step, from lstm_cell and plain NumPy."""
    T, H = xp.shape[0], h0.shape[-1]
    h, c, rows = h0, c0, [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        a = xp[t] + h @ w.T
        hc = lstm_cell(a, c)
        sig = 0.5 * (np.tanh(0.5 * a) + 1.0)
        gates = [sig[..., :H], sig[..., H:2 * H], np.tanh(a[..., 2 * H:3 * H]), sig[..., 3 * H:]]
        h, c = hc[0], hc[1]
        rows[t] = np.stack([h, c] + gates)
    return np.stack(rows)


def gru_steps(xp, w, b, h0, reverse=False):
    T = xp.shape[0]
    h, rows = h0, [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        h = gru_cell(xp[t], h @ w.T + b, h)
        rows[t] = h
    return np.stack(rows)


RNG = np.random.default_rng(11)


def lstm_args(T=4, S=(3,), H=2, dtype=np.float64):
    r = np.random.default_rng(sum(S) + T + H)
    return tuple(a.astype(dtype) for a in (
        r.standard_normal((T,) + S + (4 * H,)), 0.7 * r.standard_normal((4 * H, H)),
        r.standard_normal(S + (H,)), r.standard_normal(S + (H,))))


def gru_args(T=4, S=(3,), H=2, dtype=np.float64):
    r = np.random.default_rng(sum(S) + T + H + 1)
    return tuple(a.astype(dtype) for a in (
        r.standard_normal((T,) + S + (3 * H,)), 0.7 * r.standard_normal((3 * H, H)),
        r.standard_normal(3 * H), r.standard_normal(S + (H,))))


SHAPES = [dict(T=4, S=(3,), H=2), dict(T=3, S=(), H=3), dict(T=2, S=(2, 2), H=1),
          dict(T=1, S=(2,), H=2)]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"T{s['T']}-S{s['S']}-H{s['H']}")
def test_lstm_sequence_equals_the_cells(shape, reverse):
    args = lstm_args(**shape)
    f = lambda *a: lstm_sequence(*a, reverse=reverse)          # noqa: E731
    ref = lambda *a: lstm_steps(*a, reverse=reverse)           # noqa: E731
    np.testing.assert_allclose(f(*args), ref(*args), rtol=1e-14, atol=1e-14)
    for k in range(4):
        for jac in (ad.jacfwd, ad.jacrev):
            np.testing.assert_allclose(jac(f, k)(*args), jac(ref, k)(*args),
                                       rtol=1e-12, atol=1e-13)
    out = f(*args)
    wts = np.linspace(0.5, 1.5, out.size).reshape(out.shape)   # every row, states and gates
    loss = lambda *a: np.sum(np.sin(f(*a)) * wts)              # noqa: E731
    ref_loss = lambda *a: np.sum(np.sin(ref(*a)) * wts)        # noqa: E731
    for k in range(4):
        np.testing.assert_allclose(ad.hessian(loss, k)(*args), ad.hessian(ref_loss, k)(*args),
                                   rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"T{s['T']}-S{s['S']}-H{s['H']}")
def test_gru_sequence_equals_the_cells(shape, reverse):
    args = gru_args(**shape)
    f = lambda *a: gru_sequence(*a, reverse=reverse)           # noqa: E731
    ref = lambda *a: gru_steps(*a, reverse=reverse)            # noqa: E731
    np.testing.assert_allclose(f(*args), ref(*args), rtol=1e-14, atol=1e-14)
    for k in range(4):
        for jac in (ad.jacfwd, ad.jacrev):
            np.testing.assert_allclose(jac(f, k)(*args), jac(ref, k)(*args),
                                       rtol=1e-12, atol=1e-13)
    loss = lambda *a: np.sum(np.sin(f(*a)) ** 2)               # noqa: E731
    ref_loss = lambda *a: np.sum(np.sin(ref(*a)) ** 2)         # noqa: E731
    for k in range(4):
        np.testing.assert_allclose(ad.hessian(loss, k)(*args), ad.hessian(ref_loss, k)(*args),
                                   rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("reverse", [False, True])
def test_check_grads_second_order_both_modes(reverse):
    ad.check_grads(lambda *a: lstm_sequence(*a, reverse=reverse), lstm_args(T=3, S=(2,)),
                   order=2, modes=("fwd", "rev"))
    ad.check_grads(lambda *a: gru_sequence(*a, reverse=reverse), gru_args(T=3, S=(2,)),
                   order=2, modes=("fwd", "rev"))
    # forward over reverse and reverse over forward, through the loop
    f = lambda xp, w: np.sum(np.tanh(lstm_sequence(xp, w, *lstm_args(T=3)[2:])) ** 2)  # noqa
    xp, w = lstm_args(T=3)[:2]
    np.testing.assert_allclose(ad.jacfwd(ad.grad(f, 1), 1)(xp, w),
                               ad.jacrev(ad.grad(f, 1), 1)(xp, w), rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("reverse", [False, True])
def test_fast_reverse_path_equals_the_general_one(reverse):
    """Plain arrays take an in-place path; a batch of one cotangent takes the general one."""
    xp, w, h0, c0 = lstm_args(T=5, S=(3,), H=2)
    ans = R._lstm_seq(xp, w, h0, c0, reverse)
    for gates in (False, True):                   # cotangents on the states only, or all rows
        g = RNG.standard_normal(ans.shape)
        if not gates:
            g[:, 2:] = 0.0
        fast = R._lstm_seq_vjp(g, ans, xp, w, h0, c0, reverse)
        general = R._lstm_seq_vjp(g[None], ans, xp, w, h0, c0, reverse)
        for a, b in zip(fast, general):
            np.testing.assert_allclose(a, b[0], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("S", [(3,), (), (2, 2)])
def test_fast_gru_reverse_path_equals_the_general_one(reverse, S):
    xp, w, b, h0 = gru_args(T=5, S=S, H=2)
    ans = R._gru_seq(xp, w, b, h0, reverse)
    g = RNG.standard_normal(ans.shape)
    fast = R._gru_seq_vjp(g, ans, xp, w, b, h0, reverse)
    general = R._gru_seq_vjp(g[None], ans, xp, w, b, h0, reverse)
    for a, c in zip(fast, general):
        assert a.shape == c.shape[1:]
        np.testing.assert_allclose(a, c[0], rtol=1e-13, atol=1e-14)


def test_float32_is_kept_and_shapes_are_checked():
    args = lstm_args(dtype=np.float32)
    y = lstm_sequence(*args)
    assert y.dtype == np.float32 and y.shape == (4, 6, 3, 2)
    grads = ad.grad(lambda *a: np.sum(lstm_sequence(*a)[:, 0]), (0, 1, 2, 3))(*args)
    assert all(g.dtype == np.float32 for g in grads)
    np.testing.assert_allclose(y, lstm_steps(*(a.astype(np.float64) for a in args)),
                               rtol=1e-5, atol=1e-6)
    gargs = gru_args(dtype=np.float32)
    assert gru_sequence(*gargs).dtype == np.float32
    assert all(g.dtype == np.float32 for g in
               ad.grad(lambda *a: np.sum(gru_sequence(*a)), (0, 1, 2, 3))(*gargs))
    xp, w, h0, c0 = lstm_args()
    with pytest.raises(ValueError, match="lstm_sequence.*do not fit"):
        lstm_sequence(xp, w[:, :1], h0, c0)
    with pytest.raises(ValueError, match="lstm_sequence.*do not fit"):
        lstm_sequence(xp, w, h0[:2], c0)
    with pytest.raises(ValueError, match="no time steps"):
        lstm_sequence(xp[:0], w, h0, c0)
    with pytest.raises(ValueError, match="steps=3"):
        R.lstm_sequence_p(xp, w, h0, c0, reverse=False, steps=3)
    gx, gw, gb, gh = gru_args()
    with pytest.raises(ValueError, match="gru_sequence.*b_hh"):
        gru_sequence(gx, gw, gb[:2], gh)
    # an empty batch is fine
    e = lstm_args(S=(0,))
    assert lstm_sequence(*e).shape == (4, 6, 0, 2)
    assert ad.grad(lambda w: np.sum(lstm_sequence(e[0], w, e[2], e[3])))(e[1]).shape == (8, 2)


def test_empty_batches_of_directions():
    """jacrev of a function of an empty input pulls zero cotangents (a batch of none)."""
    xp, w, h0, c0 = lstm_args(T=2, S=(2,), H=1)
    gx, gw, gb, gh = gru_args(T=2, S=(2,), H=1)
    A, B = np.ones((xp.size, 0)), np.ones((gx.size, 0))
    f = lambda e: lstm_sequence(xp + np.reshape(A @ e, xp.shape), w, h0, c0)     # noqa
    g = lambda e: gru_sequence(gx + np.reshape(B @ e, gx.shape), gw, gb, gh)     # noqa
    for fn, out in ((f, (2, 6, 2, 1)), (g, (2, 2, 1))):
        for jac in (ad.jacfwd, ad.jacrev):
            assert jac(fn)(np.zeros(0)).shape == out + (0,)
        hess = ad.jacrev(ad.grad(lambda v: np.sum(np.sin(fn(v)))))     # no cotangent at all
        assert hess(np.zeros(0)).shape == (0, 0)


def test_sparsity_is_conservative_and_jacobians_right():
    xp, w, h0, c0 = lstm_args(T=2, S=(2,), H=1)
    f = lambda xp: lstm_sequence(xp, w, h0, c0)          # noqa: E731
    pattern = ad.sparsity(f)(xp)
    J = ad.jacfwd(f)(xp).reshape(pattern.shape)
    assert not np.any((J != 0) & ~pattern.toarray().astype(bool))   # a superset of J's support
    np.testing.assert_allclose(ad.sparse_jacobian(f)(xp).toarray(), J, atol=1e-15)


# ----- the modules against torch, weights copied -----
def _torch_pair(kind, torch, **kw):
    from autodiff import nn
    nn.init.manual_seed(3)
    ours = getattr(nn, kind)(3, 4, **kw)
    theirs = getattr(torch.nn, kind)(3, 4, dtype=torch.float64, **kw)
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(np.asarray(getattr(ours, name).value)))
    return ours, theirs


CONFIGS = [dict(), dict(batch_first=True), dict(num_layers=2), dict(bidirectional=True),
           dict(num_layers=2, bidirectional=True, batch_first=True), dict(bias=False)]


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}" for k in c) or "plain")
@pytest.mark.parametrize("with_state", [False, True])
def test_modules_equal_torch(kind, cfg, with_state):
    torch = pytest.importorskip("torch")
    ours, theirs = _torch_pair(kind, torch, **cfg)
    r = np.random.default_rng(4)
    x = r.standard_normal((2, 5, 3) if cfg.get("batch_first") else (5, 2, 3))
    nstate = ours.num_layers * (2 if ours.bidirectional else 1)
    states = [r.standard_normal((nstate, 2, 4)) for _ in range(2 if kind == "LSTM" else 1)]
    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    targs = (tx,) + ((tuple(ts) if kind == "LSTM" else ts[0]),) if with_state else (tx,)
    tout, tstate = theirs(*targs)
    tfin = tstate if kind == "LSTM" else (tstate,)
    tloss = (tout ** 2).sum() + sum((3.0 * s).sin().sum() for s in tfin)
    tloss.backward()

    xv = ad.Variable(x)
    sv = [ad.Variable(s) for s in states]
    args = (xv,) + ((tuple(sv) if kind == "LSTM" else sv[0]),) if with_state else (xv,)
    out, state = ours(*args)
    fin = state if kind == "LSTM" else (state,)
    np.testing.assert_allclose(out.value, tout.detach().numpy(), rtol=1e-12, atol=1e-13)
    for a, b in zip(fin, tfin):
        np.testing.assert_allclose(a.value, b.detach().numpy(), rtol=1e-12, atol=1e-13)
    loss = np.sum(out ** 2) + sum(np.sum(np.sin(3.0 * s)) for s in fin)
    loss.backward()
    np.testing.assert_allclose(xv.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    if with_state:
        for a, b in zip(sv, ts):
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, name).grad, p.grad.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=name)


def test_module_second_derivative_through_the_sequence():
    from autodiff import nn
    nn.init.manual_seed(5)
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True)
    x = np.random.default_rng(6).standard_normal((4, 2, 2))
    params = {n: p.value for n, p in lstm.named_parameters()}

    def f(x):
        out, (h, c) = nn.functional_call(lstm, params, x)
        return np.sum(np.sin(out)) + np.sum(c ** 2)

    H = ad.hessian(f)(x).reshape(x.size, x.size)
    np.testing.assert_allclose(H, H.T, atol=1e-12)
    ad.check_grads(f, (x,), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_onnx_export_of_deep_bidirectional_layers(kind, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from autodiff import nn
    nn.init.manual_seed(7)
    m = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=True, batch_first=True,
                          dtype=np.float32)

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = m

        def forward(self, x):
            out, state = self.rnn(x)
            h = state[0] if kind == "LSTM" else state
            return np.concatenate([out[:, -1], h[-1]], axis=-1)

    model = Head()
    x = np.random.default_rng(8).standard_normal((2, 5, 3)).astype(np.float32)
    nn.export_onnx(model, x, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    for batch in (2, 3):
        xb = np.random.default_rng(batch).standard_normal((batch, 5, 3)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: xb})[0]
        np.testing.assert_allclose(got, model(xb).value, rtol=1e-5, atol=1e-6)


# ----- a seam-fuzzer block: any value feeds an LSTM layer (or a GRU layer) -----
def _sequence_block(rng, shapes, dtype):
    n = int(np.prod(shapes[-1], dtype=int))    # (an empty value feeds zeros)
    lstm = bool(rng.integers(2))
    T, H = 2, (1 if lstm else 2)        # unbatched and small: at most 3 axes, 16 elements
    k = 4 if lstm else 3
    A = rng.uniform(-1, 1, (T * k * H, n)).astype(dtype)
    w = rng.uniform(-0.8, 0.8, (k * H, H)).astype(dtype)
    b = rng.uniform(-1, 1, k * H).astype(dtype)
    h0 = rng.uniform(-1, 1, H).astype(dtype)
    c0 = rng.uniform(-1, 1, H).astype(dtype)
    reverse = bool(rng.integers(2))

    def fn(env):
        xp = np.reshape(A @ np.reshape(env[-1], -1), (T, k * H))
        if lstm:
            return lstm_sequence(xp, w, h0, c0, reverse=reverse)
        return gru_sequence(xp, w, b, h0, reverse=reverse)

    def ref(env):                       # plain NumPy, one step at a time
        xp = np.reshape(A @ np.reshape(env[-1], -1), (T, k * H))
        sig = lambda a: 0.5 * (np.tanh(0.5 * a) + 1.0)     # noqa: E731
        h, c, rows = h0, c0, [None] * T
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            if lstm:
                a = xp[t] + h @ w.T
                i, f, o = sig(a[..., :H]), sig(a[..., H:2 * H]), sig(a[..., 3 * H:])
                g = np.tanh(a[..., 2 * H:3 * H])
                c = f * c + i * g
                h = o * np.tanh(c)
                rows[t] = np.stack([h, c, i, f, g, o])
            else:
                hp = h @ w.T + b
                x = xp[t]
                r, z = sig(x[..., :H] + hp[..., :H]), sig(x[..., H:2 * H] + hp[..., H:2 * H])
                nn_ = np.tanh(x[..., 2 * H:] + r * hp[..., 2 * H:])
                h = nn_ + z * (h - nn_)
                rows[t] = h
        return np.stack(rows)

    return fn, ref


BLOCK = seams.register_block("recurrent_sequence", _sequence_block)


@pytest.mark.parametrize("seed", range(6))
def test_seam_programs_through_a_sequence_block(seed):
    index = seams.SEAM_BLOCKS.index(BLOCK)
    rng = np.random.default_rng(seed)
    spec = seams.random_spec(rng, max_steps=3)
    structure, shapes, f32, zeros, pseed, steps, inject = spec
    steps = ((0, index, seed),) + steps[1:]         # the sequence block first, then others
    program = seams.Program((structure, shapes, f32, zeros, pseed, steps, inject))
    assert any(s.block is BLOCK for s in program.steps)
    seams.check(program)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_module_jacobians_both_modes_wrt_input_and_initial_state(kind):
    from autodiff import nn
    nn.init.manual_seed(9)
    m = getattr(nn, kind)(2, 3, num_layers=2, bidirectional=True, batch_first=True)
    params = {n: p.value for n, p in m.named_parameters()}
    r = np.random.default_rng(10)
    x, h0 = r.standard_normal((2, 4, 2)), r.standard_normal((4, 2, 3))

    def f(x, h0):
        state = (h0, np.cos(h0)) if kind == "LSTM" else h0
        out, fin = nn.functional_call(m, params, x, state)
        return np.concatenate([np.reshape(out, -1), np.reshape(fin[-1] if kind == "LSTM"
                                                               else fin, -1)])

    for k in (0, 1):
        np.testing.assert_allclose(ad.jacfwd(f, k)(x, h0), ad.jacrev(f, k)(x, h0),
                                   rtol=1e-12, atol=1e-13)
    ad.check_grads(f, (x, h0), order=1, modes=("fwd", "rev"))
