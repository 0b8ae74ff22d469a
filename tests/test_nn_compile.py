"""``nn.compile_step`` and ``fit(..., compile=True)``: the eager loop's numbers from one
recorded program per batch shape."""
import copy

import numpy as np
import pytest

from autodiff import nn


def _model(out=3):
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(),
                         nn.Linear(8, out))


@pytest.mark.parametrize("opt", [lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.9),
                                 lambda p: nn.optim.Adam(p, lr=1e-2)])
def test_compile_step_equals_the_eager_loop(opt):
    rng = np.random.default_rng(0)
    eager = _model()
    compiled = copy.deepcopy(eager)
    o1, o2 = opt(eager.parameters()), opt(compiled.parameters())
    step = nn.compile_step(compiled, nn.functional.cross_entropy, o2)
    for i in range(6):
        X = rng.standard_normal((16, 5))
        y = rng.integers(0, 3, 16)          # new labels every batch: replayed, not baked in
        o1.zero_grad()
        loss = nn.functional.cross_entropy(eager(X), y)
        loss.backward()
        o1.step()
        got = step(X, y)
        assert type(got) is float
        assert got == pytest.approx(float(loss.value), rel=1e-12, abs=1e-14)
    for a, b in zip(eager.parameters(), compiled.parameters()):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-12, atol=1e-14)
    assert not step.program(X, y).guards or all(g[2] == "shape" for g in step.program(X, y).guards)


def test_fit_compile_matches_eager_fit():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((70, 5)), rng.standard_normal(70)
    m1 = _model(1)
    m2 = copy.deepcopy(m1)
    h1 = nn.fit(m1, X, y, loss="mse", epochs=2, batch_size=32, progress=False, metrics=("mae",))
    h2 = nn.fit(m2, X, y, loss="mse", epochs=2, batch_size=32, progress=False,
                metrics=("mae",), compile=True)
    for k in h1.history:
        np.testing.assert_allclose(h1.history[k], h2.history[k], rtol=1e-12)


def test_compile_step_refuses_dropout_in_training():
    model = nn.Sequential(nn.Linear(5, 4), nn.Dropout(0.5), nn.Linear(4, 1))
    step = nn.compile_step(model, nn.functional.mse_loss, nn.optim.SGD(model.parameters()))
    with pytest.raises(NotImplementedError, match="Dropout"):
        step(np.ones((2, 5)), np.zeros((2, 1)))


@pytest.mark.parametrize("loss", ["nll", "mse", "bce_with_logits"])
def test_compile_step_other_losses_replay_new_targets(loss):
    rng = np.random.default_rng(2)
    fn = {"nll": nn.functional.nll_loss, "mse": nn.functional.mse_loss,
          "bce_with_logits": nn.functional.binary_cross_entropy_with_logits}[loss]
    eager = _model(3 if loss == "nll" else 1)
    if loss == "nll":
        eager = nn.Sequential(eager, nn.LogSoftmax(dim=1))
    compiled = copy.deepcopy(eager)
    o1 = nn.optim.SGD(eager.parameters(), lr=0.1)
    step = nn.compile_step(compiled, fn, nn.optim.SGD(compiled.parameters(), lr=0.1))
    for _ in range(4):
        X = rng.standard_normal((12, 5))
        y = rng.integers(0, 3, 12) if loss == "nll" else (rng.random((12, 1)) > 0.5) * 1.0
        o1.zero_grad()
        ref = fn(eager(X), y)
        ref.backward()
        o1.step()
        assert step(X, y) == pytest.approx(float(ref.value), rel=1e-12)
    assert all(g[2] == "shape" for g in step.program(X, y).guards)


def test_compile_step_reads_buffers_and_modes_afresh():
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    X, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 1))
    model.train()
    for _ in range(3):               # eager training moves the running statistics
        loss = nn.functional.mse_loss(model(X), y)
        loss.backward()
    model.eval()
    twin = copy.deepcopy(model)
    o1 = nn.optim.SGD(twin.parameters(), lr=0.01)
    step = nn.compile_step(model, nn.functional.mse_loss, nn.optim.SGD(model.parameters(), lr=0.01))
    for k in range(3):
        o1.zero_grad()
        ref = nn.functional.mse_loss(twin(X), y)
        ref.backward()
        o1.step()
        assert step(X, y) == pytest.approx(float(ref.value), rel=1e-12)
        if k == 1:                   # change the statistics between steps: read afresh
            for m in (model, twin):
                m[1].running_mean[...] = 0.5


# ----- the optimizer's update fused into the program -----
try:
    import torch
except ImportError:                     # the PyTorch comparison skips; the rest runs
    torch = None

OPTIMIZERS = {
    "sgd": lambda p: nn.optim.SGD(p, lr=0.05),
    "sgd-momentum-wd": lambda p: nn.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=1e-2),
    "sgd-nesterov": lambda p: nn.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    "sgd-dampening-maximize": lambda p: nn.optim.SGD(p, lr=0.01, momentum=0.5,
                                                     dampening=0.3, maximize=True),
    "adam": lambda p: nn.optim.Adam(p, lr=1e-2),
    "adam-amsgrad-wd": lambda p: nn.optim.Adam(p, lr=1e-2, weight_decay=0.1, amsgrad=True),
    "adamw": lambda p: nn.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99)),
    "adam-maximize": lambda p: nn.optim.Adam(p, lr=1e-3, maximize=True),
    "rmsprop": lambda p: nn.optim.RMSprop(p, lr=1e-2),
    "rmsprop-centered-momentum-wd": lambda p: nn.optim.RMSprop(
        p, lr=1e-2, momentum=0.5, centered=True, weight_decay=1e-2),
    "rmsprop-momentum-maximize": lambda p: nn.optim.RMSprop(p, lr=1e-3, momentum=0.9,
                                                            maximize=True),
    "adagrad": lambda p: nn.optim.Adagrad(p, lr=1e-1),
    "adagrad-decay-wd-maximize": lambda p: nn.optim.Adagrad(
        p, lr=1e-1, lr_decay=0.1, weight_decay=1e-2, initial_accumulator_value=0.5,
        maximize=True),
}


def _eager_step(model, opt, X, y, loss_fn=nn.functional.cross_entropy):
    opt.zero_grad()
    loss = loss_fn(model(X), y)
    loss.backward()
    opt.step()
    return float(loss.value)


def _assert_same_state(o1, o2):
    s1, s2 = o1.state_dict(), o2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    assert sorted(s1["state"]) == sorted(s2["state"])
    for i in s1["state"]:
        a, b = s1["state"][i], s2["state"][i]
        assert list(a) == list(b)
        for k in a:
            if isinstance(a[k], np.ndarray):
                assert b[k].dtype == a[k].dtype
                np.testing.assert_allclose(b[k], a[k], rtol=1e-13, atol=1e-15)
            else:
                assert type(b[k]) is type(a[k]) and b[k] == a[k]


def _compiled_against_eager(make, steps, seed, fused):
    """``steps`` steps of the eager loop and of ``compile_step`` side by side from the same
    model, comparing loss, parameters, gradients and optimizer state after each."""
    rng = np.random.default_rng(seed)
    eager = _model()
    compiled = copy.deepcopy(eager)
    o1, o2 = make(eager.parameters()), make(compiled.parameters())
    step = nn.compile_step(compiled, nn.functional.cross_entropy, o2)
    assert step.fused() is fused
    arrays = [p.value for p in compiled.parameters()]
    for i in range(steps):
        X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
        ref = _eager_step(eager, o1, X, y)
        assert step(X, y) == pytest.approx(ref, rel=1e-12, abs=1e-14)
        for a, b in zip(eager.parameters(), compiled.parameters()):
            np.testing.assert_allclose(b.value, a.value, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(b.grad, a.grad, rtol=1e-12, atol=1e-15)
        _assert_same_state(o1, o2)
    return compiled, o2, step, arrays, X, y


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_fused_update_equals_the_eager_loop(name):
    compiled, o2, step, arrays, X, y = _compiled_against_eager(OPTIMIZERS[name], 5, 4, True)
    # In place: the parameters keep their arrays, the state its buffers from step 2 on.
    assert all(p.value is a for p, a in zip(compiled.parameters(), arrays))
    bufs = {k: id(v) for s in o2.state.values() for k, v in s.items()
            if isinstance(v, np.ndarray)}
    step(X, y)
    assert bufs == {k: id(v) for s in o2.state.values() for k, v in s.items()
                    if isinstance(v, np.ndarray)}
    # The update is in the program: it returns the new parameters (and buffers).
    prog = step.program(X, y)
    n_params = len(list(compiled.parameters()))
    assert len(prog.outputs) >= 2 + 2 * n_params
    # At most two recordings: the first step (momentum buffers start as the gradient).
    assert step.jitted.recordings <= 2


EAGER_UPDATE = {
    "adamax": lambda p: nn.optim.Adamax(p, lr=1e-2, weight_decay=0.1),
    "nadam": lambda p: nn.optim.NAdam(p, lr=1e-2),
    "radam": lambda p: nn.optim.RAdam(p, lr=1e-2, betas=(0.5, 0.6)),
    "adadelta": lambda p: nn.optim.Adadelta(p, maximize=True),
    "rprop": lambda p: nn.optim.Rprop(p, lr=1e-2),
    "asgd": lambda p: nn.optim.ASGD(p, lr=1e-2, t0=2),
}


@pytest.mark.parametrize("name", sorted(EAGER_UPDATE))
def test_optimizers_without_a_fused_form_update_eagerly_after_the_replay(name):
    _compiled_against_eager(EAGER_UPDATE[name], 7, 6, False)


def test_fused_update_float32_keeps_the_dtype():
    rng = np.random.default_rng(5)
    eager = _model().to(dtype=np.float32)
    compiled = copy.deepcopy(eager)
    o1 = nn.optim.Adam(eager.parameters(), lr=1e-2)
    o2 = nn.optim.Adam(compiled.parameters(), lr=1e-2)
    step = nn.compile_step(compiled, nn.functional.cross_entropy, o2)
    for _ in range(3):
        X, y = rng.standard_normal((16, 5)).astype(np.float32), rng.integers(0, 3, 16)
        _eager_step(eager, o1, X, y)
        step(X, y)
    for a, b in zip(eager.parameters(), compiled.parameters()):
        assert b.value.dtype == np.float32
        np.testing.assert_allclose(b.value, a.value, rtol=1e-5, atol=1e-6)
    state = o2.state_dict()["state"]
    assert state and all(v.dtype == np.float32 for s in state.values()
                         for v in s.values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("make", [
    lambda o: nn.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5),
    lambda o: nn.optim.lr_scheduler.ExponentialLR(o, gamma=0.7)])
@pytest.mark.parametrize("name", ["sgd-momentum-wd", "adamw"])
def test_scheduler_learning_rate_takes_effect_without_recording(make, name):
    rng = np.random.default_rng(6)
    eager = _model()
    compiled = copy.deepcopy(eager)
    o1, o2 = OPTIMIZERS[name](eager.parameters()), OPTIMIZERS[name](compiled.parameters())
    s1, s2 = make(o1), make(o2)
    step = nn.compile_step(compiled, nn.functional.cross_entropy, o2)
    X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
    lrs = set()
    for _ in range(6):
        _eager_step(eager, o1, X, y)
        step(X, y)
        s1.step()
        s2.step()
        lrs.add(o2.param_groups[0]["lr"])
        for a, b in zip(eager.parameters(), compiled.parameters()):
            np.testing.assert_allclose(b.value, a.value, rtol=1e-13, atol=1e-15)
    assert len(lrs) >= 3                    # the rate changed, and was not baked in
    assert step.jitted.recordings <= 2
    _assert_same_state(o1, o2)


def test_resume_either_way_from_a_compiled_state():
    rng = np.random.default_rng(7)
    data = [(rng.standard_normal((16, 5)), rng.integers(0, 3, 16)) for _ in range(6)]
    ref = _model()
    compiled = copy.deepcopy(ref)
    o_ref = nn.optim.Adam(ref.parameters(), lr=1e-2, amsgrad=True)
    o_c = nn.optim.Adam(compiled.parameters(), lr=1e-2, amsgrad=True)
    step = nn.compile_step(compiled, nn.functional.cross_entropy, o_c)
    for X, y in data[:3]:
        _eager_step(ref, o_ref, X, y)
        step(X, y)
    # Compiled -> eager: a fresh optimizer from the compiled state dict goes on eagerly.
    eager = copy.deepcopy(compiled)
    o_e = nn.optim.Adam(eager.parameters(), lr=1e-2, amsgrad=True)
    o_e.load_state_dict(o_c.state_dict())
    # Eager -> compiled: a compiled step on a model trained eagerly so far.
    again = copy.deepcopy(ref)
    o_a = nn.optim.Adam(again.parameters(), lr=1e-2, amsgrad=True)
    o_a.load_state_dict(o_ref.state_dict())
    step_a = nn.compile_step(again, nn.functional.cross_entropy, o_a)
    for X, y in data[3:]:
        _eager_step(ref, o_ref, X, y)
        _eager_step(eager, o_e, X, y)
        step_a(X, y)
    for a, b, c in zip(ref.parameters(), eager.parameters(), again.parameters()):
        np.testing.assert_allclose(b.value, a.value, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(c.value, a.value, rtol=1e-12, atol=1e-14)
    _assert_same_state(o_ref, o_e)
    _assert_same_state(o_ref, o_a)


def test_optimizers_without_a_functional_form_update_eagerly():
    class Mine(nn.optim.Optimizer):     # an optimizer of one's own: no functional form
        def __init__(self, params, lr):
            super().__init__(params, dict(lr=lr))

        def _update(self, p, g, state, group, work):
            state["n"] = state.get("n", 0) + 1
            p -= group["lr"] / state["n"] * g
    rng = np.random.default_rng(8)
    for make in (lambda p: Mine(p, lr=1e-1),):
        eager = _model()
        compiled = copy.deepcopy(eager)
        o1, o2 = make(eager.parameters()), make(compiled.parameters())
        step = nn.compile_step(compiled, nn.functional.cross_entropy, o2)
        assert not step.fused()
        for _ in range(3):
            X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
            assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12)
        for a, b in zip(eager.parameters(), compiled.parameters()):
            np.testing.assert_allclose(b.value, a.value, rtol=1e-13, atol=1e-15)
        _assert_same_state(o1, o2)


def test_subclass_with_its_own_update_is_not_fused():
    class Halving(nn.optim.SGD):
        def _update(self, p, g, state, group, work):
            p -= 0.5 * group["lr"] * g
    eager = _model()
    compiled = copy.deepcopy(eager)
    o1, o2 = Halving(eager.parameters(), lr=0.1), Halving(compiled.parameters(), lr=0.1)
    step = nn.compile_step(compiled, nn.functional.cross_entropy, o2)
    assert not step.fused()
    X, y = np.ones((4, 5)), np.array([0, 1, 2, 0])
    for _ in range(2):
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12)


def test_parameters_outside_the_optimizer_stay():
    eager = _model()
    compiled = copy.deepcopy(eager)
    first = list(compiled.parameters())[:2]
    o1 = nn.optim.SGD(list(eager.parameters())[:2], lr=0.1, momentum=0.9)
    o2 = nn.optim.SGD(first, lr=0.1, momentum=0.9)
    step = nn.compile_step(compiled, nn.functional.cross_entropy, o2)
    before = [p.value.copy() for p in list(compiled.parameters())[2:]]
    X, y = np.linspace(-1, 1, 20).reshape(4, 5), np.array([0, 1, 2, 0])
    for _ in range(3):
        step(X, y)
        _eager_step(eager, o1, X, y)
    for p, b in zip(list(compiled.parameters())[2:], before):
        np.testing.assert_array_equal(p.value, b)
    for a, b in zip(eager.parameters(), compiled.parameters()):
        np.testing.assert_allclose(b.value, a.value, rtol=1e-13, atol=1e-15)


@pytest.mark.skipif(torch is None, reason="compares with PyTorch")
@pytest.mark.parametrize("name", ["sgd-nesterov", "adam-amsgrad-wd", "adamw"])
def test_fused_update_matches_torch(name):
    rng = np.random.default_rng(9)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for p, t in zip(model.parameters(), tmodel.parameters()):
            t.copy_(torch.from_numpy(p.value))
    kw = {"sgd-nesterov": dict(lr=0.05, momentum=0.8, nesterov=True),
          "adam-amsgrad-wd": dict(lr=1e-2, weight_decay=0.1, amsgrad=True),
          "adamw": dict(lr=1e-2, betas=(0.8, 0.99))}[name]
    cls = {"sgd-nesterov": "SGD", "adam-amsgrad-wd": "Adam", "adamw": "AdamW"}[name]
    opt = getattr(nn.optim, cls)(model.parameters(), **kw)
    topt = getattr(torch.optim, cls)(tmodel.parameters(), **kw)
    step = nn.compile_step(model, nn.functional.cross_entropy, opt)
    for _ in range(5):
        X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(X)),
                                                  torch.from_numpy(y))
        tloss.backward()
        topt.step()
        assert step(X, y) == pytest.approx(tloss.item(), rel=1e-10)
    for p, t in zip(model.parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_fit_compile_fuses_the_update():
    rng = np.random.default_rng(10)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    m1 = _model()
    m2 = copy.deepcopy(m1)
    kw = dict(loss="cross_entropy", epochs=2, batch_size=16, progress=False,
              optimizer=nn.optim.Adam(m1.parameters(), lr=1e-2))
    h1 = nn.fit(m1, X, y, **kw)
    kw["optimizer"] = nn.optim.Adam(m2.parameters(), lr=1e-2)
    h2 = nn.fit(m2, X, y, compile=True, **kw)
    np.testing.assert_allclose(h1.history["loss"], h2.history["loss"], rtol=1e-12)
    for a, b in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(b.value, a.value, rtol=1e-12, atol=1e-14)


def test_no_memory_growth_over_many_compiled_steps():
    import gc
    import tracemalloc
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    opt = nn.optim.Adam(model.parameters(), lr=1e-3)
    step = nn.compile_step(model, nn.functional.cross_entropy, opt)
    X, y = np.linspace(-1, 1, 40).reshape(8, 5), np.arange(8) % 3
    for _ in range(100):
        step(X, y)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(1000):
        step(X, y)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after - before < 50_000, after - before
    assert step.jitted.recordings == 1


def test_groups_changed_after_compiling_are_followed():
    rng = np.random.default_rng(11)
    eager = _model()
    compiled = copy.deepcopy(eager)
    pe, pc = list(eager.parameters()), list(compiled.parameters())
    o1 = nn.optim.SGD(pe[:2], lr=0.1, momentum=0.9)
    o2 = nn.optim.SGD(pc[:2], lr=0.1, momentum=0.9)
    step = nn.compile_step(compiled, nn.functional.cross_entropy, o2)
    data = [(rng.standard_normal((8, 5)), rng.integers(0, 3, 8)) for _ in range(4)]
    for k, (X, y) in enumerate(data):
        if k == 1:                      # unfreeze the rest, with its own rate
            o1.add_param_group({"params": pe[2:], "lr": 0.05})
            o2.add_param_group({"params": pc[2:], "lr": 0.05})
        if k == 2:                      # a state dict loaded: new group dicts
            sd = o1.state_dict()
            sd["param_groups"][0]["lr"] = 0.02
            o1.load_state_dict(copy.deepcopy(sd))
            o2.load_state_dict(copy.deepcopy(sd))
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y), rel=1e-12)
        for a, b in zip(pe, pc):
            np.testing.assert_allclose(b.value, a.value, rtol=1e-13, atol=1e-15)
    _assert_same_state(o1, o2)


def test_a_guard_that_fails_records_again_and_updates_once():
    def loss_fn(out, y):                # a branch on a value: a guard in the program
        err = nn.functional.mse_loss(out, y)
        return err * 2.0 if np.sum(out) > 0 else err
    rng = np.random.default_rng(12)
    eager = _model(1)
    compiled = copy.deepcopy(eager)
    o1 = nn.optim.SGD(eager.parameters(), lr=0.05, momentum=0.9)
    o2 = nn.optim.SGD(compiled.parameters(), lr=0.05, momentum=0.9)
    step = nn.compile_step(compiled, loss_fn, o2)
    for k in range(8):
        X = rng.standard_normal((8, 5)) * (1 if k % 2 else -1) + (2 if k % 2 else -2)
        y = rng.standard_normal((8, 1))
        assert step(X, y) == pytest.approx(_eager_step(eager, o1, X, y, loss_fn), rel=1e-12)
        for a, b in zip(eager.parameters(), compiled.parameters()):
            np.testing.assert_allclose(b.value, a.value, rtol=1e-12, atol=1e-14)
    assert any(g[2] == "bool" for g in step.program(X, y).guards)
    assert step.jitted.recordings >= 3      # both branches (and the first step) recorded
    _assert_same_state(o1, o2)


def test_the_eager_update_switch_gives_the_same_numbers(monkeypatch):
    from autodiff.nn import compile as compile_module
    rng = np.random.default_rng(13)
    a = _model()
    b = copy.deepcopy(a)
    oa, ob = (nn.optim.Adam(m.parameters(), lr=1e-2, amsgrad=True) for m in (a, b))
    sa = nn.compile_step(a, nn.functional.cross_entropy, oa)
    sb = nn.compile_step(b, nn.functional.cross_entropy, ob)
    for k in range(4):
        X, y = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)
        monkeypatch.setattr(compile_module, "FUSED_UPDATE", k % 2 == 0)
        assert sb.fused() == (k % 2 == 0)
        monkeypatch.setattr(compile_module, "FUSED_UPDATE", True)
        la = sa(X, y)
        monkeypatch.setattr(compile_module, "FUSED_UPDATE", k % 2 == 0)
        assert sb(X, y) == pytest.approx(la, rel=1e-12)     # switched between steps
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(q.value, p.value, rtol=1e-13, atol=1e-15)
    _assert_same_state(oa, ob)


class _TwoHeads(nn.Module):
    """A model whose second head the loss never reaches (eager: its ``.grad`` stays None)."""

    def __init__(self):
        super().__init__()
        self.used = nn.Linear(4, 3)
        self.unused = nn.Linear(4, 3)

    def forward(self, x):
        return self.used(x)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("opt", [lambda p: nn.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.1),
                                 lambda p: nn.optim.AdamW(p, lr=1e-2, weight_decay=0.1)])
def test_unreached_parameters_are_skipped_as_in_the_eager_loop(opt, fused, monkeypatch):
    from autodiff.nn import compile as compile_module
    monkeypatch.setattr(compile_module, "FUSED_UPDATE", fused)
    rng = np.random.default_rng(5)
    eager = _TwoHeads()
    compiled = copy.deepcopy(eager)
    o1, o2 = opt(eager.parameters()), opt(compiled.parameters())
    step = nn.compile_step(compiled, nn.functional.mse_loss, o2)
    for _ in range(3):
        X, y = rng.standard_normal((8, 4)), rng.standard_normal((8, 3))
        o1.zero_grad()
        nn.functional.mse_loss(eager(X), y).backward()
        o1.step()
        step(X, y)
    assert compiled.unused.weight.grad is None and eager.unused.weight.grad is None
    for a, b in zip(eager.parameters(), compiled.parameters()):
        np.testing.assert_allclose(b.value, a.value, rtol=1e-12, atol=1e-14)
    assert compiled.unused.weight not in o2.state and id(compiled.unused.weight) not in o2.state
