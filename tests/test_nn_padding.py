"""PyTorch's padding modules: values, gradients and repr against torch's own (float64),
batched and unbatched; and under ad.grad / ad.hessian (functional use of a module)."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import nn

torch = pytest.importorskip("torch")
rng = np.random.default_rng(5)

PADS = {1: [2, (1, 3), (0, 2)], 2: [1, (1, 0, 2, 1)], 3: [1, (1, 0, 0, 2, 1, 1)]}
KINDS = [("ZeroPad", ()), ("ConstantPad", (2.5,)), ("ReflectionPad", ()),
         ("ReplicationPad", ()), ("CircularPad", ())]
CASES = [(k, extra, n, p, batched) for k, extra in KINDS for n in (1, 2, 3) for p in PADS[n]
         for batched in (False, True)]


@pytest.mark.parametrize("kind, extra, n, padding, batched", CASES)
def test_padding_module_as_torchs(kind, extra, n, padding, batched):
    shape = (2,) * batched + (2,) + (3, 4, 5)[-n:]
    a = rng.standard_normal(shape)
    ours = getattr(nn, f"{kind}{n}d")(padding, *extra)
    theirs = getattr(torch.nn, f"{kind}{n}d")(padding, *extra)
    assert repr(ours) == repr(theirs)
    x = nn.Parameter(a.copy())
    t = torch.tensor(a, requires_grad=True)
    out, tout = ours(x), theirs(t)
    np.testing.assert_allclose(out.value, tout.detach().numpy(), rtol=0, atol=0)
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-14, atol=1e-14)


def test_padding_modules_under_transforms():
    """A model with padding layers, differentiated functionally (jacfwd = jacrev; the
    Hessian of a smooth loss through reflection and circular padding against torch's)."""
    model = nn.Sequential(nn.ReflectionPad1d(2), nn.CircularPad1d((1, 2)), nn.ZeroPad1d(1))
    tmodel = torch.nn.Sequential(torch.nn.ReflectionPad1d(2), torch.nn.CircularPad1d((1, 2)),
                                 torch.nn.ZeroPad1d(1))
    a = rng.standard_normal((1, 4))
    loss = lambda x: np.sum(np.sin(model(x)) * np.arange(13.0))               # noqa: E731
    tloss = lambda x: (torch.sin(tmodel(x)) * torch.arange(13.0)).sum()       # noqa: E731
    th = torch.autograd.functional.hessian(tloss, torch.tensor(a)).numpy()
    np.testing.assert_allclose(ad.hessian(loss)(a), th, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ad.jacfwd(model)(a), ad.jacrev(model)(a), rtol=0, atol=0)


@pytest.mark.parametrize("make, shape", [(lambda: nn.ReflectionPad2d(1), (4, 4)),
                                         (lambda: nn.ReplicationPad1d(1), (4,)),
                                         (lambda: nn.CircularPad3d(1), (2, 2, 2))])
def test_non_constant_padding_refuses_inputs_of_the_wrong_rank(make, shape):
    with pytest.raises(ValueError, match="expected a"):
        make()(np.ones(shape))


def test_padding_size_is_checked():
    with pytest.raises(ValueError, match="4-tuple"):
        nn.ZeroPad2d((1, 2))
    with pytest.raises(Exception, match="reflect padding"):
        nn.ReflectionPad1d(4)(np.ones((1, 3)))
