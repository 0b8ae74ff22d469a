"""nn on the device: ``model.to("gpu")`` trains to the host's numbers (1e-10), the optimizer
state lives on the device, ``model.to("cpu")`` brings it back, ``fit(device="gpu")``."""
import copy

import numpy as np
import pytest

pytest.importorskip("numba")
from autodiff import gpu, nn  # noqa: E402
from autodiff.nn import functional as F  # noqa: E402


def _mlp():
    nn.init.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def _cnn():
    nn.init.manual_seed(1)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3 * 2 * 2, 3))


def _train(model, x, y, steps, opt_cls, **kw):
    opt = opt_cls(model.parameters(), **kw)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.value))
    return losses


@pytest.mark.parametrize("make,xshape,opt_cls,kw", [
    (_mlp, (9, 5), nn.optim.Adam, dict(lr=0.05)),
    (_mlp, (9, 5), nn.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    (_cnn, (2, 2, 5, 5), nn.optim.Adam, dict(lr=0.02)),
])
def test_training_on_the_device_equals_the_host(make, xshape, opt_cls, kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xshape)
    y = rng.integers(0, 3, xshape[0])
    host = make()
    dev = copy.deepcopy(host).to("gpu")
    assert all(type(p.value) is gpu.DeviceArray for p in dev.parameters())
    want = _train(host, x, y, 2, opt_cls, **kw)
    got = _train(dev, gpu.to_device(x), gpu.to_device(y), 2, opt_cls, **kw)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    for p in dev.parameters():
        assert type(p.grad) is gpu.DeviceArray
    back = dev.to("cpu")
    for (n, a), (_, b) in zip(host.named_parameters(), back.named_parameters()):
        assert type(b.value) is np.ndarray
        np.testing.assert_allclose(b.value, a.value, rtol=1e-10, atol=1e-12, err_msg=n)


def test_optimizer_state_lives_on_the_device():
    model = _mlp().to("gpu")
    opt = nn.optim.Adam(model.parameters(), lr=0.01)
    x = gpu.to_device(np.ones((2, 5)))
    F.mse_loss(model(x), gpu.to_device(np.zeros((2, 3)))).backward()
    opt.step()
    state = opt.state[id(model[0].weight)]
    assert type(state["exp_avg"]) is gpu.DeviceArray
    assert type(state["exp_avg_sq"]) is gpu.DeviceArray


def test_fit_on_the_device_equals_the_host():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((7, 5)), rng.integers(0, 3, 7)
    host, dev = _mlp(), _mlp()
    h1 = nn.fit(host, x, y, epochs=1, batch_size=4, progress=False, shuffle=False)
    h2 = nn.fit(dev, x, y, epochs=1, batch_size=4, progress=False, shuffle=False,
                device="gpu")
    assert type(dev[0].weight.value) is gpu.DeviceArray
    np.testing.assert_allclose(h2.history["loss"], h1.history["loss"], rtol=1e-10)
    np.testing.assert_allclose(nn.predict(dev, x), nn.predict(host, x), rtol=1e-10)


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device"):
        _mlp().to("tpu")
