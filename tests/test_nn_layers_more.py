"""More of PyTorch's layers: channel dropout (1/2/3-d), alpha dropout, Bilinear, Softmax2d,
ChannelShuffle, LocalResponseNorm and the Upsampling* aliases; values, gradients and reprs
against torch 2.13 (float64), the random masks by their structure and statistics."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(11)


def _both(ours, theirs, *arrays):
    """Values and the gradients of Σ w·out for every input, ours against torch's."""
    xs = [nn.Parameter(a.copy()) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.value, tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_bilinear_as_torchs():
    m = nn.Bilinear(3, 4, 5)
    tm = torch.nn.Bilinear(3, 4, 5).double()
    assert repr(m) == repr(tm)
    assert m.weight.shape == tuple(tm.weight.shape) and m.bias.shape == tuple(tm.bias.shape)
    with torch.no_grad():
        tm.weight.copy_(torch.tensor(m.weight.value))
        tm.bias.copy_(torch.tensor(m.bias.value))
    a, b = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 4))
    _both(m, tm, a, b)
    np.testing.assert_array_less(np.abs(m.weight.value), 1 / np.sqrt(3))
    W, c = rng.standard_normal((5, 3, 4)), rng.standard_normal(5)
    _both(lambda x, y: F.bilinear(x, y, W), lambda x, y: TF.bilinear(x, y, torch.tensor(W)),
          a[0], b[0])
    _both(lambda x, y: F.bilinear(x, y, W, c),
          lambda x, y: TF.bilinear(x, y, torch.tensor(W), torch.tensor(c)), a[0, 0], b[0, 0])


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4, 5)])
def test_softmax2d_as_torchs(shape):
    assert repr(nn.Softmax2d()) == repr(torch.nn.Softmax2d())
    _both(nn.Softmax2d(), torch.nn.Softmax2d(), rng.standard_normal(shape))


def test_channel_shuffle_refuses_as_torch():
    with pytest.raises(RuntimeError, match="> 2 dims"):
        F.channel_shuffle(np.ones((2, 4)), 2)
    with pytest.raises(RuntimeError, match="divisible"):
        F.channel_shuffle(np.ones((2, 5, 1)), 2)


def test_softmax2d_refuses_other_ranks():
    with pytest.raises(ValueError, match="3D or 4D"):
        nn.Softmax2d()(np.ones((2, 3)))


@pytest.mark.parametrize("shape, groups", [((2, 6, 3), 2), ((1, 6, 2, 2), 3), ((2, 4, 1), 4)])
def test_channel_shuffle_as_torchs(shape, groups):
    assert repr(nn.ChannelShuffle(groups)) == repr(torch.nn.ChannelShuffle(groups))
    _both(nn.ChannelShuffle(groups), torch.nn.ChannelShuffle(groups), rng.standard_normal(shape))
    _both(lambda x: F.channel_shuffle(x, groups), lambda x: TF.channel_shuffle(x, groups),
          rng.standard_normal(shape))


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("shape", [(2, 5, 3), (2, 5, 3, 2), (1, 3, 2, 2, 2)])
def test_local_response_norm_as_torchs(size, shape):
    m = nn.LocalResponseNorm(size, alpha=0.3, beta=0.6, k=1.5)
    tm = torch.nn.LocalResponseNorm(size, alpha=0.3, beta=0.6, k=1.5)
    assert repr(m) == repr(tm)
    _both(m, tm, rng.standard_normal(shape))


def test_local_response_norm_second_derivative_as_torchs():
    a = rng.standard_normal((1, 4, 2))
    loss = lambda x: np.sum(F.local_response_norm(x, 3, 0.5, 0.75, 1.0) ** 2)   # noqa: E731
    tloss = lambda x: (TF.local_response_norm(x, 3, 0.5, 0.75, 1.0) ** 2).sum()  # noqa: E731
    th = torch.autograd.functional.hessian(tloss, torch.tensor(a)).numpy()
    np.testing.assert_allclose(ad.hessian(loss)(a), th, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("ours, theirs, kw", [
    (nn.UpsamplingNearest2d, torch.nn.UpsamplingNearest2d, {"scale_factor": 2}),
    (nn.UpsamplingNearest2d, torch.nn.UpsamplingNearest2d, {"size": (5, 7)}),
    (nn.UpsamplingBilinear2d, torch.nn.UpsamplingBilinear2d, {"scale_factor": 2}),
    (nn.UpsamplingBilinear2d, torch.nn.UpsamplingBilinear2d, {"size": (4, 5)})])
def test_upsampling_aliases_as_torchs(ours, theirs, kw):
    assert repr(ours(**kw)) == repr(theirs(**kw))
    _both(ours(**kw), theirs(**kw), rng.standard_normal((2, 3, 3, 4)))


@pytest.mark.parametrize("module, shape, lead", [
    (nn.Dropout1d, (4, 6, 50), 2), (nn.Dropout1d, (6, 50), 1),
    (nn.Dropout2d, (4, 6, 5, 10), 2), (nn.Dropout2d, (4, 6, 50), 2),
    (nn.Dropout3d, (4, 6, 2, 5, 5), 2), (nn.Dropout3d, (6, 2, 5, 5), 1)])
def test_channel_dropout_drops_whole_maps(module, shape, lead):
    """Each (sample, channel) map (or each channel, unbatched) is all dropped or all kept
    and scaled by 1/(1-p), as torch's; the gradient is the same mask; eval is the identity."""
    nn.init.manual_seed(0)
    m = module(0.4)
    assert repr(m) == repr(getattr(torch.nn, module.__name__)(0.4))
    x = nn.Parameter(rng.uniform(1, 2, shape))
    y = m(x)
    ratio = np.reshape(y.value / x.value, shape[:lead] + (-1,))
    kept = np.all(np.isclose(ratio, 1 / 0.6), axis=-1)
    assert np.all(kept | np.all(ratio == 0, axis=-1))
    assert 0 < kept.mean() < 1
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.value / x.value, rtol=1e-15, atol=0)
    m.eval()
    assert m(x) is x


def test_channel_dropout_rates_and_errors():
    nn.init.manual_seed(1)
    y = F.dropout2d(np.ones((200, 50, 2, 2)), 0.3)
    assert abs(np.mean(y[:, :, 0, 0] == 0) - 0.3) < 0.02
    assert np.all(F.dropout3d(np.ones((2, 3, 1, 1, 1)), 1.0) == 0)
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        F.dropout1d(np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout2d(1.5)


@pytest.mark.parametrize("module, lead", [(nn.AlphaDropout, 3), (nn.FeatureAlphaDropout, 2)])
def test_alpha_dropout_as_torchs(module, lead):
    """Kept entries are a·x + a·λα·p and dropped ones a·λα·(p - 1), as torch's (checked at
    torch's own mask); SELU's mean and variance survive; eval is the identity."""
    p, c = 0.2, 1.7580993408473766
    a = 1 / np.sqrt((c * c * p + 1) * (1 - p))
    nn.init.manual_seed(2)
    x = rng.standard_normal((400, 40, 3))
    m = module(p)
    assert repr(m) == repr(getattr(torch.nn, module.__name__)(p))
    m.train()
    y = m(x)
    kept = np.isclose(y, a * x + a * c * p)
    assert np.all(kept | np.isclose(y, a * c * (p - 1)))
    if lead == 2:
        assert np.all(kept.all(-1) | (~kept).all(-1))
    assert abs(np.mean(~kept) - p) < 0.01
    assert abs(np.mean(y)) < 0.02 and abs(np.var(y) - 1) < 0.03
    tm = getattr(torch.nn, module.__name__)(p)
    ty = tm(torch.tensor(x)).numpy()
    tkept = np.isclose(ty, a * x + a * c * p)
    assert np.all(tkept | np.isclose(ty, a * c * (p - 1)))
    m.eval()
    assert m(x) is x
    assert F.alpha_dropout(x, p) is x          # torch's default training=False


def _bag_pair(n, d, **kw):
    ours = nn.EmbeddingBag(n, d, **kw)
    theirs = torch.nn.EmbeddingBag(n, d, **kw).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.value))
    return ours, theirs


def _bag_both(ours, theirs, idx, offsets=None, psw=None):
    x = torch.tensor(idx)
    o = None if offsets is None else torch.tensor(offsets)
    kw = {} if psw is None else {"per_sample_weights": psw}
    tkw = {} if psw is None else {"per_sample_weights": torch.tensor(psw, requires_grad=True)}
    out, tout = ours(idx, offsets, **kw), theirs(x, o, **tkw)
    np.testing.assert_allclose(out.value, tout.detach().numpy(), rtol=1e-14, atol=1e-15)
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-14,
                               atol=1e-15)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_bag_as_torchs(mode, padding_idx):
    ours, theirs = _bag_pair(7, 3, mode=mode, padding_idx=padding_idx)
    assert repr(ours) == repr(theirs)
    _bag_both(ours, theirs, np.array([[1, 2, 4], [4, 3, 2], [2, 2, 2], [0, 6, 5]]))
    ours.zero_grad(), theirs.zero_grad()
    # 1-d input with offsets: an empty bag (zeros) and repeated rows
    _bag_both(ours, theirs, np.array([1, 2, 4, 4, 3, 0, 6, 6]), np.array([0, 3, 3, 5]))


def test_embedding_bag_include_last_offset_and_weights():
    ours, theirs = _bag_pair(6, 2, mode="sum", include_last_offset=True)
    idx, off = np.array([0, 5, 2, 2, 1, 3]), np.array([0, 2, 2, 6])
    _bag_both(ours, theirs, idx, off)
    ours.zero_grad(), theirs.zero_grad()
    psw = rng.standard_normal(6)
    x = nn.Parameter(psw.copy())
    t = torch.tensor(psw, requires_grad=True)
    out = ours(idx, off, per_sample_weights=x)
    tout = theirs(torch.tensor(idx), torch.tensor(off), per_sample_weights=t)
    np.testing.assert_allclose(out.value, tout.detach().numpy(), rtol=1e-14)
    (out ** 2).sum().backward()
    (tout ** 2).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-13)


def test_embedding_bag_under_transforms():
    """F.embedding_bag differentiated functionally in the weight: jacfwd = jacrev = torch's
    Jacobian, and the Hessian of a smooth loss of a mean bag is Jᵀ diag(-c sin f) J (torch has
    no second derivative of embedding_bag)."""
    W = rng.standard_normal((5, 2))
    idx, off = np.array([0, 3, 3, 1, 4]), np.array([0, 2])
    f = lambda w: F.embedding_bag(idx, w, off, mode="mean")                   # noqa: E731
    tj = torch.autograd.functional.jacobian(
        lambda w: TF.embedding_bag(torch.tensor(idx), w, torch.tensor(off), mode="mean"),
        torch.tensor(W)).numpy()
    np.testing.assert_allclose(ad.jacfwd(f)(W), tj, rtol=0, atol=1e-15)
    np.testing.assert_allclose(ad.jacrev(f)(W), tj, rtol=0, atol=1e-15)
    c = np.arange(4.0).reshape(2, 2)
    loss = lambda w: np.sum(np.sin(f(w)) * c)                                # noqa: E731
    J = tj.reshape(4, 10)
    H = J.T @ np.diag(np.ravel(-c * np.sin(f(W)))) @ J
    np.testing.assert_allclose(ad.hessian(loss)(W).reshape(10, 10), H, rtol=1e-12,
                               atol=1e-14)


def test_embedding_bag_refuses_as_torch():
    W = np.ones((4, 2))
    with pytest.raises(ValueError, match="offsets has to be None"):
        F.embedding_bag(np.zeros((2, 2), int), W, np.array([0]))
    with pytest.raises(ValueError, match="offsets has to be a 1D"):
        F.embedding_bag(np.zeros(3, int), W)
    with pytest.raises(RuntimeError, match="offsets\\[0\\] has to be 0"):
        F.embedding_bag(np.zeros(3, int), W, np.array([1]))
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        F.embedding_bag(np.zeros((1, 3), int), W, per_sample_weights=np.ones((1, 3)))
    with pytest.raises(IndexError):
        F.embedding_bag(np.array([[4]]), W)
