"""The wrapper never leans on Numba's device-array conveniences: real device arrays have no
arithmetic, and ``np.asarray`` of one silently copies it to the host. The simulator's fake
arrays have both (they forward to NumPy), so here those are switched off and a gradient, a
Jacobian and a training step still run: every operation goes through a kernel."""
import os
import sys

import numpy as np
import pytest

pytest.importorskip("numba")
from numba.cuda.simulator.cudadrv import devicearray as fake  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff import gpu, nn  # noqa: E402

# What the simulator's own machinery (launches, copies) reads from its fake arrays.
_ALLOWED = {"shape", "dtype", "size", "ndim", "strides", "itemsize", "nbytes", "flags",
            "copy_to_host", "copy_to_device", "__cuda_array_interface__", "_ary"}
_OPERATORS = ("__add__", "__sub__", "__mul__", "__truediv__", "__floordiv__", "__mod__",
              "__pow__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
              "__getitem__", "__setitem__", "transpose", "reshape", "ravel", "view", "T")


GPU_DIR = os.path.dirname(os.path.abspath(gpu.__file__))


def _from_gpu_package():
    caller = sys._getframe(2).f_code.co_filename
    return os.path.dirname(os.path.abspath(caller)) == GPU_DIR


@pytest.fixture
def no_fake_arithmetic(monkeypatch):
    cls = fake.FakeCUDAArray

    def refuse(name, original):
        # The simulator itself indexes its fake arrays (copies, launches): only calls
        # from autodiff.gpu's own modules are refused.
        def f(self, *a, **k):
            if _from_gpu_package():
                raise AssertionError(f"autodiff.gpu used the simulator's "
                                     f"FakeCUDAArray.{name}")
            return original(self, *a, **k)
        return f
    for name in _OPERATORS:
        orig = getattr(cls, name, None)
        if name == "T":
            monkeypatch.setattr(cls, "T", property(refuse("T", lambda s: orig.fget(s))))
        elif orig is not None:
            monkeypatch.setattr(cls, name, refuse(name, orig))
    original = cls.__getattr__

    def getattr_(self, name):
        if name not in _ALLOWED and _from_gpu_package():
            raise AssertionError(f"autodiff.gpu read FakeCUDAArray.{name} (forwarded to a "
                                 "NumPy array: a real device array has no such thing)")
        return original(self, name)
    monkeypatch.setattr(cls, "__getattr__", getattr_)
    yield


def test_grad_jacobian_and_training_use_kernels_only(no_fake_arithmetic):
    rng = np.random.default_rng(0)
    xh = rng.standard_normal((3, 5))
    x = gpu.to_device(xh)
    f = lambda x: np.sum(np.tanh(x @ x.T)[:, 1:] ** 2) + np.max(x)     # noqa: E731
    np.testing.assert_allclose(ad.grad(f)(x).to_host(), ad.grad(f)(xh), rtol=1e-12)
    j = ad.jacfwd(lambda x: np.exp(x[0]) * x[1])(x)
    np.testing.assert_allclose(j.to_host(), ad.jacfwd(lambda x: np.exp(x[0]) * x[1])(xh),
                               rtol=1e-12)
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2)).to("gpu")
    opt = nn.optim.Adam(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model(x), gpu.to_device(np.array([0, 1, 1])))
    loss.backward()
    opt.step()
    assert np.isfinite(float(loss.value))
