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
