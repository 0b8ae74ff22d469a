"""InstanceNorm1d/2d, RMSNorm and BatchNorm3d against torch with copied state (forward,
every gradient, running statistics in both modes, float64 to 1e-10), and the functions to
second order."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

torch = pytest.importorskip("torch")
from test_nn_torch_parity import run_both  # noqa: E402

rng = np.random.default_rng(0)
X2, X3, X4 = (rng.standard_normal(s) for s in ((3, 5), (4, 3, 5), (2, 3, 4, 5)))
OPTIONS = [{}, {"affine": True}, {"track_running_stats": True},
           {"affine": True, "track_running_stats": True, "momentum": 0.3},
           {"track_running_stats": True, "momentum": None}]


@pytest.mark.parametrize("kw", OPTIONS)
@pytest.mark.parametrize("kind, x", [("InstanceNorm1d", X3), ("InstanceNorm2d", X4),
                                     ("InstanceNorm1d", X2)])
def test_instance_norm_as_torchs(kind, x, kw):
    ours, theirs = getattr(nn, kind)(3, **kw), getattr(torch.nn, kind)(3, **kw)
    if kw.get("affine"):
        with torch.no_grad():
            theirs.weight.uniform_()
            theirs.bias.uniform_()
    run_both(ours, theirs, [x])                         # training mode
    if kw.get("track_running_stats"):
        for k, v in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), atol=1e-12)
        ours.eval()
        theirs.eval()
        run_both(ours, theirs, [x])                     # the running statistics


@pytest.mark.parametrize("shape, kw", [((5,), {}), ((3, 5), {}),
                                       ((5,), {"eps": 1e-3, "elementwise_affine": False})])
def test_rms_norm_as_torchs(shape, kw):
    ours, theirs = nn.RMSNorm(shape, **kw), torch.nn.RMSNorm(shape, **kw)
    if theirs.weight is not None:
        with torch.no_grad():
            theirs.weight.uniform_()
    run_both(ours, theirs, [X3])
    run_both(F.rms_norm, torch.nn.functional.rms_norm, [X3], args=(shape,))


def test_batch_norm_3d_as_torchs():
    x = rng.standard_normal((2, 3, 2, 3, 4))
    ours, theirs = nn.BatchNorm3d(3), torch.nn.BatchNorm3d(3)
    run_both(ours, theirs, [x])
    ours.eval()
    theirs.eval()
    run_both(ours, theirs, [x])


def test_norm_functions_to_second_order_and_float32():
    ad.check_grads(lambda x: np.sum(np.sin(F.rms_norm(x, (5,)))), (X3,), order=2)
    ad.check_grads(lambda x: np.sum(np.sin(F.instance_norm(x))), (X3,), order=2)
    x32 = X3.astype(np.float32)
    assert nn.RMSNorm(5, dtype=np.float32)(x32).dtype == np.float32
    assert F.instance_norm(x32).dtype == np.float32
