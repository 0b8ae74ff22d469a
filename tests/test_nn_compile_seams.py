"""``nn.compile_step`` at its seams: parameters frozen or unfrozen between steps, forwards
that branch on values, layers that draw random numbers or write buffers, and models on the
GPU. Either the eager loop's numbers, step for step, or a clear refusal."""
import copy

import numpy as np
import pytest

from autodiff import nn

F = nn.functional

OPTIMIZERS = {
    "sgd-momentum-wd": lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.05),
    "adamw": lambda p: nn.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    "rmsprop": lambda p: nn.optim.RMSprop(p, lr=1e-2, momentum=0.5),
}


@pytest.fixture(params=[True, False], ids=["fused", "eager-update"])
def fused(request, monkeypatch):
    from autodiff.nn import compile as compile_module
    monkeypatch.setattr(compile_module, "FUSED_UPDATE", request.param)
    return request.param


def _eager_step(model, opt, X, y, loss_fn=F.mse_loss):
    opt.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    opt.step()
    return float(loss.value)


def _same(eager, compiled, o1, o2):
    """Parameters, their ``.grad`` (None or the numbers) and the optimizer's state alike."""
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
        np.testing.assert_allclose(b.value, a.value, rtol=1e-12, atol=1e-14, err_msg=name)
        assert (a.grad is None) == (b.grad is None), name
        if a.grad is not None:
            np.testing.assert_allclose(b.grad, a.grad, rtol=1e-12, atol=1e-14, err_msg=name)
    s1, s2 = o1.state_dict()["state"], o2.state_dict()["state"]
    assert sorted(s1) == sorted(s2)
    for i in s1:
        assert list(s1[i]) == list(s2[i])
        for k in s1[i]:
            np.testing.assert_allclose(s2[i][k], s1[i][k], rtol=1e-12, atol=1e-14)


def _pair(make, opt):
    nn.init.manual_seed(0)
    eager = make()
    compiled = copy.deepcopy(eager)
    return eager, compiled, opt(eager.parameters()), opt(compiled.parameters())


# ----- requires_grad changed between steps -----
def _mlp():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_freezing_after_the_first_step_is_followed_reproducer():
    X, y = np.ones((4, 3)), np.zeros((4, 1))
    nn.init.manual_seed(0)
    m = nn.Linear(3, 1)
    step = nn.compile_step(m, F.mse_loss, nn.optim.SGD(m.parameters(), lr=0.1))
    step(X, y)
    m.weight.requires_grad_(False)
    w = m.weight.value.copy()
    step(X, y)
    np.testing.assert_array_equal(m.weight.value, w)
    assert m.weight.grad is None and m.bias.grad is not None
    # and unfreezing: the weight moves again
    m.weight.requires_grad_(True)
    step(X, y)
    assert np.abs(m.weight.value - w).max() > 1e-3 and m.weight.grad is not None


@pytest.mark.parametrize("opt", OPTIMIZERS.values(), ids=OPTIMIZERS)
def test_freeze_and_unfreeze_between_steps_equal_the_eager_loop(opt, fused):
    rng = np.random.default_rng(0)
    eager, compiled, o1, o2 = _pair(_mlp, opt)
    step = nn.compile_step(compiled, F.mse_loss, o2)
    # (which parameters are frozen before each step: by Parameter, and by sub-module)
    plan = [(), ("0.weight",), ("0.weight",), ("0.weight", "2.bias"), (), ("2",), ("2",), ()]
    for frozen in plan:
        for model in (eager, compiled):
            model.requires_grad_(True)
            for name in frozen:
                if name.isdigit():
                    model[int(name)].requires_grad_(False)
                else:
                    model.get_parameter(name).requires_grad_(False)
        X, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12, abs=1e-14)
        _same(eager, compiled, o1, o2)


def test_a_model_frozen_from_the_start_then_unfrozen(fused):
    X, y = np.ones((4, 3)), np.zeros((4, 1))
    make = lambda: nn.Linear(3, 1)                                  
    eager, compiled, o1, o2 = _pair(make, lambda p: nn.optim.Adam(p, lr=0.1))
    for m in (eager, compiled):
        m.weight.requires_grad_(False)
    step = nn.compile_step(compiled, F.mse_loss, o2)
    for k in range(4):
        if k == 2:
            for m in (eager, compiled):
                m.weight.requires_grad_(True)
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12)
        _same(eager, compiled, o1, o2)
    assert np.abs(compiled.weight.value - eager.weight.value).max() < 1e-12


def test_everything_frozen_is_the_eager_loops_error():
    X, y = np.ones((4, 3)), np.zeros((4, 1))
    m = nn.Linear(3, 1)
    m.requires_grad_(False)
    opt = nn.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="does not require grad"):
        _eager_step(m, opt, X, y)
    with pytest.raises(RuntimeError, match="requires_grad"):
        nn.compile_step(m, F.mse_loss, opt)(X, y)


# ----- forwards that branch on values -----
class _Gate(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Linear(2, 1)
        self.c = nn.Linear(2, 1)

    def forward(self, x):
        if x.sum() > 0:                 # a value-dependent choice of sub-network
            return self.b(x)
        return self.c(x)


class _Routed(nn.Module):
    """A shared trunk and three heads, one chosen per batch by the trunk's output."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(3, 4)
        self.heads = nn.ModuleList([nn.Linear(4, 2) for _ in range(3)])

    def forward(self, x):
        h = np.tanh(self.trunk(x))
        k = 0 if h.mean() > 0.1 else (1 if h.mean() > -0.1 else 2)
        return self.heads[k](h)


def test_the_branch_not_taken_first_is_trained_reproducer():
    X1, X2, Y = np.ones((4, 2)), -np.ones((4, 2)), np.zeros((4, 1))
    changes = []
    for compiled in (False, True):
        nn.init.manual_seed(0)
        m = _Gate()
        o = nn.optim.SGD(m.parameters(), lr=0.1)
        step = nn.compile_step(m, F.mse_loss, o)
        c0 = m.c.weight.value.copy()
        for X in (X1, X2, X2):
            step(X, Y) if compiled else _eager_step(m, o, X, Y)
        changes.append(np.abs(m.c.weight.value - c0).max())
        assert m.c.weight.grad is not None and m.b.weight.grad is None
    assert changes[0] > 0.1 and changes[1] == pytest.approx(changes[0], rel=1e-12)


@pytest.mark.parametrize("opt", OPTIMIZERS.values(), ids=OPTIMIZERS)
def test_value_dependent_branches_equal_the_eager_loop_step_for_step(opt, fused):
    rng = np.random.default_rng(1)
    eager, compiled, o1, o2 = _pair(_Gate, opt)
    step = nn.compile_step(compiled, F.mse_loss, o2)
    for k in range(10):
        sign = 1.0 if k in (0, 3, 4, 8) else -1.0
        X, y = sign * (1.0 + rng.random((5, 2))), rng.standard_normal((5, 1))
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12, abs=1e-14)
        _same(eager, compiled, o1, o2)
    assert step.jitted.recordings >= 2


def test_three_routed_heads_equal_the_eager_loop(fused):
    rng = np.random.default_rng(2)
    eager, compiled, o1, o2 = _pair(_Routed, OPTIMIZERS["adamw"])
    step = nn.compile_step(compiled, F.mse_loss, o2)
    for k in range(12):
        X, y = rng.standard_normal((6, 3)) * 3 + rng.standard_normal(3), rng.standard_normal((6, 2))
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12, abs=1e-14)
        _same(eager, compiled, o1, o2)


def test_fit_compile_with_a_branching_model_matches_eager_fit():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 2)) + np.where(rng.random((40, 1)) > 0.5, 2.0, -2.0)
    y = rng.standard_normal((40, 1))
    nn.init.manual_seed(0)
    m1 = _Gate()
    m2 = copy.deepcopy(m1)
    h1 = nn.fit(m1, X, y, loss="mse", epochs=2, batch_size=1, progress=False, shuffle=False)
    h2 = nn.fit(m2, X, y, loss="mse", epochs=2, batch_size=1, progress=False, shuffle=False,
                compile=True)
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-12)
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(b.value, a.value, rtol=1e-12, atol=1e-14)


# ----- layers that draw random numbers or write buffers -----
class _FunctionalDropout(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        return F.dropout(self.l(x), 0.5, training=self.training)


class _MyDropout(nn.Dropout):
    pass


class _MyBatchNorm(nn.BatchNorm1d):
    pass


class _BN3(nn.Module):
    def __init__(self, momentum=0.1):
        super().__init__()
        self.l = nn.Linear(4, 4)
        self.bn = nn.BatchNorm3d(4, momentum=momentum)

    def forward(self, x):
        return self.bn(self.l(x).reshape(-1, 4, 1, 1, 1)).reshape(-1, 4)


class _Instance(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)
        self.n = nn.InstanceNorm1d(4, track_running_stats=True)

    def forward(self, x):
        return self.n(self.l(x).reshape(-1, 4, 1).repeat(3, axis=2)).mean(axis=2)


class _Attention(nn.Module):
    def __init__(self, dropout=0.5):
        super().__init__()
        self.a = nn.MultiheadAttention(4, 2, dropout=dropout)

    def forward(self, x):
        x = x.reshape(2, -1, 4)
        return self.a(x, x, x)[0].reshape(-1, 4)


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=8)

    def forward(self, x):
        return self.layer(x.reshape(2, -1, 4)).reshape(-1, 4)


class _GlobalNoise(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)

    def forward(self, x):
        return self.l(x) + 0.1 * np.random.standard_normal(x.shape)


class _OwnGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)
        self.noise = np.random.default_rng(5)

    def forward(self, x):
        return self.l(x) * (self.noise.random(x.shape) > 0.2)


class _Counter(nn.Module):
    """A buffer assigned anew on every forward."""

    def __init__(self):
        super().__init__()
        self.l = nn.Linear(4, 4)
        self.register_buffer("calls", np.zeros(()))

    def forward(self, x):
        self.calls = self.calls + 1.0
        return self.l(x)


STATEFUL = {
    "F.dropout in forward": (_FunctionalDropout, "_FunctionalDropout"),
    "Dropout subclass": (lambda: nn.Sequential(nn.Linear(4, 4), _MyDropout(0.5)), "_MyDropout"),
    "Dropout": (lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.3)), "Dropout"),
    "AlphaDropout-like RReLU": (lambda: nn.Sequential(nn.Linear(4, 4), nn.RReLU()), "RReLU"),
    "MultiheadAttention(dropout)": (_Attention, "MultiheadAttention"),
    "TransformerEncoderLayer": (_Encoder, "in the forward of .layer\\."),
    "BatchNorm1d subclass": (lambda: nn.Sequential(nn.Linear(4, 4), _MyBatchNorm(4)),
                             "_MyBatchNorm"),
    "BatchNorm3d": (_BN3, "BatchNorm3d"),
    "BatchNorm3d(momentum=None)": (lambda: _BN3(None), "BatchNorm3d"),
    "InstanceNorm1d(track_running_stats)": (_Instance, "InstanceNorm1d"),
    "np.random in forward": (_GlobalNoise, "np.random"),
    "a module's own generator": (_OwnGenerator, "'noise'.*_OwnGenerator"),
    "a buffer assigned in forward": (_Counter, "'calls'"),
}


@pytest.mark.parametrize("case", STATEFUL.values(), ids=STATEFUL)
def test_random_draws_and_buffer_writes_are_refused_by_name(case):
    make, name = case
    rng = np.random.default_rng(4)
    X, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 4))
    nn.init.manual_seed(0)
    model = make()
    model.train()
    params = [p.value.copy() for p in model.parameters()]
    buffers = {k: np.array(b) for k, b in model.named_buffers()}
    gen_state = nn.init.default_generator().bit_generator.state
    legacy = np.random.get_state()
    own = [g.bit_generator.state for g in vars(model).values()
           if isinstance(g, np.random.Generator)]
    step = nn.compile_step(model, F.mse_loss, nn.optim.SGD(model.parameters(), lr=0.1))
    for _ in range(2):                  # refused every time, not only the first
        with pytest.raises(NotImplementedError, match=name) as info:
            step(X, y)
        assert "compile=False" in str(info.value) and "eval()" in str(info.value)
    # nothing moved: the parameters, the buffers, and the generators (the eager loop run
    # afterwards draws what it would have drawn)
    for p, v in zip(model.parameters(), params):
        np.testing.assert_array_equal(p.value, v)
    for k, b in model.named_buffers():
        np.testing.assert_array_equal(np.array(b), buffers[k])
    assert nn.init.default_generator().bit_generator.state == gen_state
    now = np.random.get_state()
    assert now[0] == legacy[0] and np.array_equal(now[1], legacy[1]) and now[2:] == legacy[2:]
    assert own == [g.bit_generator.state for g in vars(model).values()
                   if isinstance(g, np.random.Generator)]


@pytest.mark.parametrize("case", ["Dropout subclass", "MultiheadAttention(dropout)",
                                  "TransformerEncoderLayer", "BatchNorm1d subclass",
                                  "BatchNorm3d", "InstanceNorm1d(track_running_stats)"])
def test_the_same_layers_in_eval_mode_equal_the_eager_loop(case, fused):
    make = STATEFUL[case][0]
    rng = np.random.default_rng(5)
    eager, compiled, o1, o2 = _pair(make, OPTIMIZERS["sgd-momentum-wd"])
    X = rng.standard_normal((8, 4))
    for m in (eager, compiled):         # some running statistics first, eagerly
        m.train()
        with nn.no_grad():
            m(X)
        m.eval()
    step = nn.compile_step(compiled, F.mse_loss, o2)
    for _ in range(4):
        X, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 4))
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12, abs=1e-14)
        _same(eager, compiled, o1, o2)


def test_switching_to_training_mode_after_compiling_is_refused():
    rng = np.random.default_rng(6)
    model = nn.Sequential(nn.Linear(4, 4), _MyDropout(0.5), nn.Linear(4, 1))
    model.eval()
    step = nn.compile_step(model, F.mse_loss, nn.optim.SGD(model.parameters(), lr=0.1))
    X, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 1))
    step(X, y)
    model.train()
    with pytest.raises(NotImplementedError, match="_MyDropout"):
        step(X, y)
    model.eval()
    step(X, y)                          # the eval recording still replays


def test_dropout_that_draws_nothing_is_compiled(fused):
    # p = 0 (and eval mode) draws no numbers: nothing to refuse, the eager loop's numbers
    make = lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.0), nn.RReLU(),
                                 nn.Linear(4, 1))
    rng = np.random.default_rng(7)
    eager, compiled, o1, o2 = _pair(make, OPTIMIZERS["adamw"])
    compiled[2].eval()
    eager[2].eval()                     # RReLU's fixed slope
    step = nn.compile_step(compiled, F.mse_loss, o2)
    for _ in range(3):
        X, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 1))
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12)
        _same(eager, compiled, o1, o2)


def test_fit_compile_refuses_dropout_in_training():
    rng = np.random.default_rng(8)
    X, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 1))
    model = nn.Sequential(nn.Linear(4, 4), _MyDropout(0.5), nn.Linear(4, 1))
    with pytest.raises(NotImplementedError, match="_MyDropout"):
        nn.fit(model, X, y, loss="mse", epochs=1, progress=False, compile=True)


# ----- models on the GPU -----
def _gpu():
    pytest.importorskip("numba")
    from autodiff import gpu
    return gpu


def test_compile_step_on_a_gpu_model_is_refused_clearly():
    gpu = _gpu()
    X, y = np.ones((4, 3)), np.zeros((4, 1))
    m = nn.Linear(3, 1)
    m.to("gpu")
    opt = nn.optim.SGD(m.parameters(), lr=0.1)
    with pytest.raises(NotImplementedError, match="CPU models.*compile=False"):
        nn.compile_step(m, F.mse_loss, opt)
    # a model moved after compiling, and a batch on the device
    m = nn.Linear(3, 1)
    step = nn.compile_step(m, F.mse_loss, nn.optim.SGD(m.parameters(), lr=0.1))
    with pytest.raises(NotImplementedError, match="the batch is on the GPU"):
        step(gpu.to_device(X), gpu.to_device(y))
    m.to("gpu")
    for args in ((X, y), (gpu.to_device(X), gpu.to_device(y))):
        with pytest.raises(NotImplementedError, match="CPU models"):
            step(*args)
    m.to("cpu")
    assert isinstance(step(X, y), float)


def test_fit_compile_on_the_gpu_is_refused_clearly():
    _gpu()
    X, y = np.ones((4, 3)), np.zeros((4, 1))
    with pytest.raises(NotImplementedError, match="CPU models.*fit\\(..., compile=False\\)"):
        nn.fit(nn.Linear(3, 1), X, y, loss="mse", optimizer="sgd", epochs=1, progress=False,
               device="gpu", compile=True)
