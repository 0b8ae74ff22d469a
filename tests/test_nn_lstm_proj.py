"""nn.LSTM with ``proj_size``: parameters, state_dict, outputs and every gradient equal
PyTorch's in float64; PyTorch's errors; ad.grad and check_grads through the projection."""
import itertools

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn

SEQ, BATCH, IN, HID, PROJ = 5, 3, 4, 6, 2
TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(old)


def _twin(torch, ours, **kw):
    """PyTorch's LSTM with the same options, loaded from our state_dict (so names, order
    and shapes must agree)."""
    theirs = torch.nn.LSTM(IN, HID, proj_size=PROJ, **kw)
    assert list(theirs.state_dict()) == list(ours.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return theirs


CONFIGS = [dict(num_layers=n, bidirectional=bi, batch_first=bf, bias=b)
           for n, bi, bf, b in itertools.product([1, 2], [False, True], [False, True],
                                                 [True, False])]


@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("kw", CONFIGS, ids=lambda kw: "-".join(f"{k}={v}" for k, v in
                                                                kw.items()))
def test_matches_torch(torch, kw, with_state):
    seed = len(str(kw)) + with_state
    rng = np.random.default_rng(seed)
    nn.init.manual_seed(seed)
    ours = nn.LSTM(IN, HID, proj_size=PROJ, **kw)
    theirs = _twin(torch, ours, **kw)
    dirs = 2 if kw["bidirectional"] else 1
    x = rng.standard_normal((BATCH, SEQ, IN) if kw["batch_first"] else (SEQ, BATCH, IN))
    L = kw["num_layers"] * dirs
    states = [rng.standard_normal((L, BATCH, PROJ)),
              rng.standard_normal((L, BATCH, HID))] if with_state else []

    xv, sv = ad.Variable(x), [ad.Variable(s) for s in states]
    out, (h_n, c_n) = ours(xv, tuple(sv) if with_state else None)
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    out_t, (h_t, c_t) = theirs(xt, tuple(st) if with_state else None)

    assert out.shape == tuple(out_t.shape) == x.shape[:2] + (PROJ * dirs,)
    assert h_n.shape == tuple(h_t.shape) == (L, BATCH, PROJ)
    assert c_n.shape == tuple(c_t.shape) == (L, BATCH, HID)
    for a, b in [(out, out_t), (h_n, h_t), (c_n, c_t)]:
        np.testing.assert_allclose(a.value, b.detach().numpy(), **TOL)

    ws = [rng.standard_normal(a.shape) for a in (out, h_n, c_n)]
    loss = sum(np.sum(a * w) for a, w in zip((out, h_n, c_n), ws))
    loss_t = sum((a * torch.from_numpy(w)).sum() for a, w in zip((out_t, h_t, c_t), ws))
    loss.backward()
    loss_t.backward()
    np.testing.assert_allclose(xv.grad, xt.grad.numpy(), **TOL)
    for s, s_t in zip(sv, st):
        np.testing.assert_allclose(s.grad, s_t.grad.numpy(), **TOL)
    for n, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, n).grad, p.grad.numpy(), err_msg=n, **TOL)


@pytest.mark.parametrize("with_state", [False, True])
def test_unbatched_matches_torch(torch, with_state):
    rng = np.random.default_rng(7)
    nn.init.manual_seed(7)
    kw = dict(num_layers=2, bidirectional=True)
    ours = nn.LSTM(IN, HID, proj_size=PROJ, **kw)
    theirs = _twin(torch, ours, **kw)
    x = rng.standard_normal((SEQ, IN))
    state = (rng.standard_normal((4, PROJ)), rng.standard_normal((4, HID))) \
        if with_state else None
    out, (h_n, c_n) = ours(x, state)
    out_t, (h_t, c_t) = theirs(torch.from_numpy(x),
                               None if state is None else tuple(map(torch.from_numpy, state)))
    assert (out.shape, h_n.shape, c_n.shape) == ((SEQ, 2 * PROJ), (4, PROJ), (4, HID))
    for a, b in [(out, out_t), (h_n, h_t), (c_n, c_t)]:
        np.testing.assert_allclose(a.value, b.detach().numpy(), **TOL)


def test_parameters_and_state_dict_as_torch(torch):
    ours = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    theirs = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert ours.weight_hr_l1_reverse.shape == (2, 5)
    assert ours.weight_hh_l0.shape == (20, 2) and ours.weight_ih_l1.shape == (20, 4)
    # PyTorch's state_dict, converted to NumPy, loads; the outputs then agree.
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    np.testing.assert_allclose(ours(x)[0].value, theirs(torch.from_numpy(x))[0].detach(),
                               **TOL)
    assert repr(ours) == repr(theirs)
    # init: every parameter uniform in ±1/√hidden_size, as PyTorch
    assert all(np.all(np.abs(p.value) <= 1 / np.sqrt(5)) for p in ours.parameters())


def test_errors_as_torch():
    for bad in (-1, 6, 7):
        with pytest.raises(ValueError, match="proj_size"):
            nn.LSTM(IN, HID, proj_size=bad)
    with pytest.raises(ValueError, match="smaller than hidden_size"):
        nn.LSTM(IN, HID, proj_size=HID)
    with pytest.raises(ValueError, match="positive integer or zero"):
        nn.LSTM(IN, HID, proj_size=-1)
    with pytest.raises(TypeError, match="proj_size"):
        nn.LSTM(IN, HID, proj_size=2.5)
    model = nn.LSTM(IN, HID, proj_size=PROJ)
    x = np.ones((SEQ, BATCH, IN))
    with pytest.raises(ValueError, match="h0"):             # h0 has proj_size features
        model(x, (np.zeros((1, BATCH, HID)), np.zeros((1, BATCH, HID))))
    with pytest.raises(ValueError, match="c0"):             # c0 keeps hidden_size
        model(x, (np.zeros((1, BATCH, PROJ)), np.zeros((1, BATCH, PROJ))))
    assert nn.LSTM(IN, HID, 1, True, False, 0.0, False, PROJ).proj_size == PROJ  # positional
    assert nn.LSTM(IN, HID).proj_size == 0 and not hasattr(nn.LSTM(IN, HID), "weight_hr_l0")


def test_ad_grad_equals_backward():
    nn.init.manual_seed(1)
    model = nn.LSTM(IN, HID, num_layers=2, batch_first=True, bidirectional=True,
                    proj_size=PROJ)
    x = np.random.default_rng(1).standard_normal((BATCH, SEQ, IN))

    def loss(params, x):
        out, (h, c) = nn.functional_call(model, params, x)
        return np.sum(np.tanh(out) ** 2) + np.sum(h * c[..., :PROJ])

    params = {n: p.value for n, p in model.named_parameters()}
    g, gx = ad.grad(loss, argnums=(0, 1))(params, x)
    xv = ad.Variable(x)
    out, (h, c) = model(xv)
    (np.sum(np.tanh(out) ** 2) + np.sum(h * c[..., :PROJ])).backward()
    np.testing.assert_allclose(gx, xv.grad, rtol=1e-12, atol=1e-12)
    for n, p in model.named_parameters():
        np.testing.assert_allclose(g[n], p.grad, rtol=1e-12, atol=1e-12, err_msg=n)


def test_check_grads_order2_tiny():
    nn.init.manual_seed(0)
    model = nn.LSTM(2, 3, proj_size=1)
    names = [n for n, _ in model.named_parameters()]
    rng = np.random.default_rng(0)
    x, h0, c0 = rng.standard_normal((3, 1, 2)), rng.standard_normal((1, 1, 1)), \
        rng.standard_normal((1, 1, 3))

    def f(x, h0, c0, *ps):
        out, (h, c) = nn.functional_call(model, dict(zip(names, ps)), x, (h0, c0))
        return np.sum(out * out) + np.sum(c) + np.sum(h)

    ad.check_grads(f, (x, h0, c0) + tuple(p.value for p in model.parameters()), order=2)


def test_float32_stays_float32():
    model = nn.LSTM(3, 4, proj_size=2, dtype=np.float32)
    out, (h, c) = model(np.ones((2, 1, 3), dtype=np.float32))
    assert out.dtype == h.dtype == c.dtype == np.float32
    assert (out.shape, h.shape, c.shape) == ((2, 1, 2), (1, 1, 2), (1, 1, 4))


def test_proj_size_is_lstm_only():
    with pytest.raises(ValueError, match="only supported for LSTM"):
        nn.GRU(3, 4, proj_size=2)
