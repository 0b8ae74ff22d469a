"""nn.RNN, nn.LSTM, nn.GRU: outputs and every gradient equal PyTorch's in float64; higher
derivatives by check_grads; the LSTM example learns its task."""
import doctest
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn

ROOT = pathlib.Path(__file__).resolve().parents[1]
KINDS = {"RNN": {}, "RNN_relu": {"nonlinearity": "relu"}, "LSTM": {}, "GRU": {}}
SEQ, BATCH, IN, HID = 5, 3, 4, 6


def _make(kind, **kw):
    cls = getattr(nn, kind.split("_")[0])
    return cls(IN, HID, **KINDS[kind], **kw)


def _torch_twin(torch, ours, kind, **kw):
    cls = getattr(torch.nn, kind.split("_")[0])
    theirs = cls(IN, HID, **KINDS[kind], **kw).double()
    names = [n for n, _ in theirs.named_parameters()]
    assert names == [n for n, _ in ours.named_parameters()]
    with torch.no_grad():
        for n, p in theirs.named_parameters():
            assert tuple(p.shape) == getattr(ours, n).shape, n
            p.copy_(torch.from_numpy(getattr(ours, n).value))
    return theirs


def _state_shape(num_layers, dirs=1):
    return (num_layers * dirs, BATCH, HID)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_h0", [False, True])
def test_matches_torch(kind, num_layers, batch_first, bias, with_h0):
    torch = pytest.importorskip("torch")
    _compare(torch, kind, dict(num_layers=num_layers, batch_first=batch_first, bias=bias),
             with_h0, seed=num_layers * 8 + batch_first * 4 + bias * 2 + with_h0)


@pytest.mark.parametrize("kind", list(KINDS))
def test_matches_torch_bidirectional(kind):
    torch = pytest.importorskip("torch")
    _compare(torch, kind, dict(num_layers=2, batch_first=True, bidirectional=True), True,
             seed=99)


def _compare(torch, kind, kw, with_h0, seed):
    rng = np.random.default_rng(seed)
    nn.init.manual_seed(seed)
    ours = _make(kind, **kw)
    theirs = _torch_twin(torch, ours, kind, **kw)
    lstm = kind == "LSTM"
    dirs = 2 if kw.get("bidirectional") else 1
    shape = (BATCH, SEQ, IN) if kw.get("batch_first") else (SEQ, BATCH, IN)
    x = rng.standard_normal(shape)
    states = [rng.standard_normal(_state_shape(kw["num_layers"], dirs))
              for _ in range(2 if lstm else 1)] if with_h0 else []

    # ours: tracked input and initial states, loss.backward()
    xv = ad.Variable(x)
    sv = [ad.Variable(s) for s in states]
    h0 = None if not with_h0 else (tuple(sv) if lstm else sv[0])
    out, hn = ours(xv, h0)
    finals = list(hn) if lstm else [hn]
    w_out = rng.standard_normal(out.shape)
    w_fin = [rng.standard_normal(f.shape) for f in finals]
    loss = np.sum(out * w_out) + sum(np.sum(f * w) for f, w in zip(finals, w_fin))
    loss.backward()

    # theirs
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    h0t = None if not with_h0 else (tuple(st) if lstm else st[0])
    out_t, hn_t = theirs(xt, h0t)
    finals_t = list(hn_t) if lstm else [hn_t]
    loss_t = (out_t * torch.from_numpy(w_out)).sum() + sum(
        (f * torch.from_numpy(w)).sum() for f, w in zip(finals_t, w_fin))
    loss_t.backward()

    tol = dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.value, out_t.detach().numpy(), **tol)
    for f, ft in zip(finals, finals_t):
        np.testing.assert_allclose(f.value, ft.detach().numpy(), **tol)
    np.testing.assert_allclose(loss.value, loss_t.item(), **tol)
    np.testing.assert_allclose(xv.grad, xt.grad.numpy(), **tol)
    for s, s_t in zip(sv, st):
        np.testing.assert_allclose(s.grad, s_t.grad.numpy(), **tol)
    for n, p in theirs.named_parameters():
        np.testing.assert_allclose(getattr(ours, n).grad, p.grad.numpy(), err_msg=n, **tol)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_unbatched_input_matches_torch(kind):
    torch = pytest.importorskip("torch")
    nn.init.manual_seed(3)
    ours = _make(kind, num_layers=2)
    theirs = _torch_twin(torch, ours, kind, num_layers=2)
    x = np.random.default_rng(3).standard_normal((SEQ, IN))
    out, hn = ours(x)
    out_t, hn_t = theirs(torch.from_numpy(x))
    assert out.shape == (SEQ, HID)
    np.testing.assert_allclose(out.value, out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    for a, b in zip(hn if kind == "LSTM" else [hn], hn_t if kind == "LSTM" else [hn_t]):
        assert a.shape == (2, HID)
        np.testing.assert_allclose(a.value, b.detach().numpy(), rtol=1e-10, atol=1e-10)


# ----- functional use: ad.grad of functional_call, plain arrays, forward mode -----
@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_functional_call_grad_equals_backward(kind):
    nn.init.manual_seed(1)
    model = _make(kind, num_layers=2, batch_first=True)
    x = np.random.default_rng(1).standard_normal((BATCH, SEQ, IN))

    def loss(params):
        out, _ = nn.functional_call(model, params, x)
        return np.sum(np.tanh(out) ** 2)

    params = {n: p.value for n, p in model.named_parameters()}
    g = ad.grad(loss)(params)
    out, _ = model(x)
    np.sum(np.tanh(out) ** 2).backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(g[n], p.grad, rtol=1e-12, atol=1e-12, err_msg=n)

    # plain arrays all the way: the result is a plain array, equal to the tracked forward
    plain, _ = nn.functional_call(model, params, x)
    assert type(plain) is np.ndarray
    np.testing.assert_allclose(plain, out.value, rtol=0, atol=0)


def test_jacfwd_equals_jacrev_wrt_input():
    nn.init.manual_seed(2)
    model = nn.GRU(2, 3)
    params = {n: p.value for n, p in model.named_parameters()}
    f = lambda x: nn.functional_call(model, params, x)[0][-1]  # noqa: E731
    x = np.random.default_rng(2).standard_normal((4, 1, 2))
    np.testing.assert_allclose(ad.jacfwd(f)(x), ad.jacrev(f)(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_check_grads_order2_tiny_cell_three_steps(kind):
    nn.init.manual_seed(0)
    model = getattr(nn, kind)(2, 2)
    names = [n for n, _ in model.named_parameters()]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 1, 2))                 # 3 steps, batch 1, 2 features
    h0 = 0.5 * rng.standard_normal((1, 1, 2))

    def f(x, h0, *ps):
        state = (h0, np.tanh(h0)) if kind == "LSTM" else h0
        out, hn = nn.functional_call(model, dict(zip(names, ps)), x, state)
        last = hn[1] if kind == "LSTM" else hn
        return np.sum(out * out) + np.sum(last)

    ad.check_grads(f, (x, h0) + tuple(p.value for p in model.parameters()), order=2)


def test_float32_stays_float32():
    model = nn.LSTM(3, 4, dtype=np.float32)
    out, (h, c) = model(np.ones((2, 1, 3), dtype=np.float32))
    assert out.dtype == h.dtype == c.dtype == np.float32


def test_shapes_and_errors():
    model = nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input_size"):
        model(np.ones((5, 2, 7)))
    with pytest.raises(ValueError, match="h0"):
        model(np.ones((5, 2, 3)), (np.zeros((1, 2, 4)), np.zeros((2, 2, 4))))
    with pytest.raises(TypeError, match="pair"):
        model(np.ones((5, 2, 3)), np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    out, h = nn.GRU(3, 4, batch_first=True)(np.ones((2, 5, 3)), hx=np.zeros((1, 2, 4)))
    assert out.shape == (2, 5, 4) and h.shape == (1, 2, 4)
    assert repr(nn.RNN(3, 4, 2, "relu", batch_first=True)) == \
        "RNN(3, 4, num_layers=2, nonlinearity='relu', batch_first=True)"


def test_dropout_between_layers_only_in_training():
    nn.init.manual_seed(4)
    model = nn.GRU(3, 4, num_layers=2, dropout=0.5)
    x = np.random.default_rng(4).standard_normal((5, 2, 3))
    ref = nn.GRU(3, 4, num_layers=2)
    ref.load_state_dict(model.state_dict())
    a, b = model(x)[0], model(x)[0]
    assert not np.allclose(a.value, b.value)           # a fresh mask each call
    np.sum(a).backward()
    assert model.weight_ih_l0.grad is not None
    np.testing.assert_allclose(model.eval()(x)[0].value, ref(x)[0].value, rtol=0, atol=0)


def test_default_init_is_uniform_in_bound():
    nn.init.manual_seed(0)
    model = nn.GRU(5, 16, num_layers=2)
    for n, p in model.named_parameters():
        assert np.all(np.abs(p.value) <= 1 / 4), n
    w = model.weight_hh_l1.value
    assert w.std() > 0.1                               # spread over ±0.25, not zeros


def test_state_dict_round_trip_into_torch():
    torch = pytest.importorskip("torch")
    ours = nn.LSTM(3, 4, num_layers=2)
    theirs = torch.nn.LSTM(3, 4, num_layers=2).double()
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    back = nn.LSTM(3, 4, num_layers=2)
    back.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    np.testing.assert_allclose(back(x)[0].value, ours(x)[0].value, rtol=0, atol=0)


def test_docstring_example_runs():
    from autodiff.nn import recurrent
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(recurrent, "autodiff.nn.recurrent"):
        runner.run(test)
    assert runner.failures == 0


def test_import_nn_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import numpy as np\n"
            "from autodiff import nn\n"
            "out, (h, c) = nn.LSTM(2, 3)(np.ones((4, 1, 2)))\n"
            "assert out.shape == (4, 1, 3)\n"
            "assert sys.modules['torch'] is None\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ----- the example learns its task -----
def test_lstm_example_learns_quickly():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import lstm_sequence
    finally:
        sys.path.remove(str(ROOT / "examples"))
    acc = lstm_sequence.train(**lstm_sequence.QUICK)
    assert acc >= 0.9, acc
