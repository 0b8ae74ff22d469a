"""PyTorch parity of nn's 3-d convolution and pooling family (float64 on both sides):
``conv3d``/``Conv3d``, ``conv_transpose3d``/``ConvTranspose3d``, ``max_pool3d``,
``avg_pool3d``, the adaptive 3-d pools, ``InstanceNorm3d``, ``BatchNorm3d``. Values and the
gradients of input, weight and bias, reprs, unbatched inputs, errors; max pooling's ties
(the first maximum in row-major (d, h, w) order takes a window's whole derivative) and NaN
exactly; forward mode and second order through conv3d and max_pool3d."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import conv as C
from autodiff.nn import norm as N   # the layers by module: nn's exports are added apart

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = dict(rtol=1e-12, atol=1e-12)


def _close(got, want):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), **TOL)


def _data(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _both(ours, theirs, *args, seed=1, exact=False):
    """Values and the gradients of every argument of ``Σ R·f(args)`` (R random) in both
    libraries; ``exact``: bit-equal gradients (a pool's choice of element; R small integers,
    so that overlapping windows sum exactly in any order)."""
    vs = [ad.Variable(a) for a in args]
    ts = [torch.tensor(a, requires_grad=True) for a in args]
    y, yt = ours(*vs), theirs(*ts)
    _close(y.value, yt.detach().numpy())
    rng = np.random.default_rng(seed)
    r = (rng.integers(-4, 5, tuple(yt.shape)).astype(float) if exact else
         rng.standard_normal(tuple(yt.shape)))
    np.sum(y * r).backward()
    (yt * torch.tensor(r)).sum().backward()
    for v, t in zip(vs, ts):
        (np.testing.assert_array_equal if exact else _close)(v.grad, t.grad.numpy())
    return y


def _layer(ours, theirs, x):
    """A layer pair, nn's parameters copied into torch's: values and every gradient."""
    theirs.double()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            theirs.get_parameter(name).copy_(torch.tensor(p.value))
    assert repr(ours) == repr(theirs)
    _both(ours, theirs, x)
    for name, p in ours.named_parameters():
        _close(p.grad, theirs.get_parameter(name).grad.numpy())


# ----- conv3d -----
CONV = [dict(), dict(stride=2), dict(stride=(1, 2, 3), padding=(2, 0, 1)),
        dict(padding=1, dilation=(2, 1, 2)), dict(groups=2, padding=(0, 1, 0)),
        dict(groups=4, stride=(2, 1, 1), dilation=(1, 2, 1)), dict(padding="valid"),
        dict(padding="same"), dict(padding="same", dilation=(2, 3, 1))]


@pytest.mark.parametrize("k", [(1, 1, 1), (2, 3, 2), (3, 2, 1)])
@pytest.mark.parametrize("kw", CONV)
def test_conv3d_values_and_gradients(k, kw):
    g = kw.get("groups", 1)
    x, w, b = _data((2, 4, 6, 7, 5), 1), _data((4, 4 // g) + k, 2), _data(4, 3)
    _both(lambda x, w, b: C.conv3d(x, w, b, **kw),
          lambda x, w, b: TF.conv3d(x, w, b, **kw), x, w, b)
    _both(lambda x, w: C.conv3d(x, w, **kw), lambda x, w: TF.conv3d(x, w, **kw),
          x[1], w)                                                      # unbatched, no bias


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("kw", [dict(padding=(1, 2, 0)), dict(padding="same", dilation=2),
                                dict(stride=2, padding=1, groups=2, bias=False)])
def test_Conv3d_layer_with_padding_modes(mode, kw):
    ours = C.Conv3d(2, 4, (3, 2, 3), padding_mode=mode, **kw)
    theirs = torch.nn.Conv3d(2, 4, (3, 2, 3), padding_mode=mode, **kw)
    _layer(ours, theirs, _data((2, 2, 5, 6, 7), 4))
    ours.zero_grad()
    theirs.zero_grad()
    _layer(ours, theirs, _data((2, 5, 6, 7), 5))                        # unbatched


def test_Conv3d_repr_and_default_init():
    for args, kw in [((2, 4, 3), {}), ((2, 4, 3), dict(padding="same")),
                     ((2, 4, (1, 2, 3)), dict(stride=2, padding=1, dilation=2, groups=2,
                                              bias=False, padding_mode="reflect"))]:
        ours, theirs = C.Conv3d(*args, **kw), torch.nn.Conv3d(*args, **kw)
        assert repr(ours) == repr(theirs)
        assert ours.weight.shape == tuple(theirs.weight.shape)
    m = C.Conv3d(3, 4, (2, 3, 3))
    bound = 1 / np.sqrt(3 * 2 * 3 * 3)
    assert np.abs(m.weight.value).max() <= bound and np.abs(m.bias.value).max() <= bound


def test_conv3d_errors_are_torchs():
    x, w = np.ones((1, 2, 3, 3, 3)), np.ones((2, 2, 1, 1, 1))
    with pytest.raises(RuntimeError, match="5D"):
        C.conv3d(np.ones((2, 3, 3)), w)
    with pytest.raises(RuntimeError, match="to have 2 channels, but got 3"):
        C.conv3d(np.ones((1, 3, 3, 3, 3)), w)
    with pytest.raises(RuntimeError, match="divisible by 2 at dimension 0"):
        C.conv3d(x, np.ones((3, 1, 1, 1, 1)), groups=2)
    with pytest.raises(RuntimeError, match="strided"):
        C.conv3d(x, w, stride=2, padding="same")
    with pytest.raises(RuntimeError, match="negative padding"):
        C.conv3d(x, w, padding=-1)
    with pytest.raises(ValueError, match="Invalid padding string"):
        C.conv3d(x, w, padding="full")
    with pytest.raises(ValueError):
        C.conv3d(x, np.ones((2, 2, 4, 1, 1)))                   # kernel deeper than input
    with pytest.raises(ValueError, match="strided"):
        C.Conv3d(2, 2, 3, stride=2, padding="same")


# ----- conv_transpose3d -----
TRANSPOSED = [dict(), dict(stride=2), dict(stride=(2, 1, 3), padding=(1, 0, 1)),
              dict(stride=2, output_padding=(1, 0, 1)),
              dict(dilation=(2, 1, 2), output_padding=(1, 0, 1), padding=1),
              dict(groups=2, stride=(1, 2, 2), output_padding=(0, 1, 0)),
              dict(padding=(1, 1, 0), groups=4)]


@pytest.mark.parametrize("kw", TRANSPOSED)
@pytest.mark.parametrize("k", [(1, 1, 1), (3, 2, 2)])
def test_conv_transpose3d_values_and_gradients(kw, k):
    g = kw.get("groups", 1)
    x, w, b = _data((2, 4, 3, 4, 3), 6), _data((4, 8 // g) + k, 7), _data(8, 8)
    _both(lambda x, w, b: C.conv_transpose3d(x, w, b, **kw),
          lambda x, w, b: TF.conv_transpose3d(x, w, b, **kw), x, w, b)
    _both(lambda x, w: C.conv_transpose3d(x, w, **kw),
          lambda x, w: TF.conv_transpose3d(x, w, **kw), x[0], w)


def test_ConvTranspose3d_layer_repr_and_errors():
    kw = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=2)
    _layer(C.ConvTranspose3d(2, 4, 3, **kw), torch.nn.ConvTranspose3d(2, 4, 3, **kw),
           _data((2, 2, 3, 4, 3), 9))
    assert repr(C.ConvTranspose3d(2, 4, 2, bias=False)) == \
        repr(torch.nn.ConvTranspose3d(2, 4, 2, bias=False))
    with pytest.raises(RuntimeError, match="output_padding_depth: 2"):
        C.conv_transpose3d(np.ones((1, 2, 3, 3, 3)), np.ones((2, 1, 2, 2, 2)), stride=2,
                           output_padding=(2, 0, 0))
    with pytest.raises(RuntimeError, match="not positive"):
        C.conv_transpose3d(np.ones((1, 2, 3, 3, 3)), np.ones((2, 1, 2, 2, 2)), padding=3)
    with pytest.raises(NotImplementedError):
        C.ConvTranspose3d(2, 2, 2, padding_mode="reflect")


def test_conv_transpose3d_is_the_adjoint_of_conv3d():
    x, w = _data((2, 3, 5, 6, 4), 10), _data((4, 3, 2, 3, 2), 11)
    kw = dict(stride=(2, 1, 2), padding=(1, 1, 0), dilation=(1, 2, 1))
    y = C.conv3d(x, w, **kw)
    g = _data(y.shape, 12)
    xt = C.conv_transpose3d(g, w, **kw, output_padding=(1, 0, 0))
    assert xt.shape == x.shape
    np.testing.assert_allclose(np.sum(y * g), np.sum(x * xt), rtol=1e-12)


# ----- max_pool3d -----
POOL = [dict(kernel_size=2), dict(kernel_size=(2, 3, 2), stride=1),
        dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(3, 2, 3), stride=(1, 2, 2),
                                                      padding=(1, 0, 1), ceil_mode=True),
        dict(kernel_size=2, stride=(2, 1, 3), dilation=(2, 1, 2), ceil_mode=True),
        dict(kernel_size=(1, 3, 3), stride=2, padding=(0, 1, 1), dilation=(1, 2, 1))]


@pytest.mark.parametrize("kw", POOL)
def test_max_pool3d_values_gradients_and_indices(kw):
    x = _data((2, 3, 6, 7, 8), 13)
    _both(lambda x: C.max_pool3d(x, **kw), lambda x: TF.max_pool3d(x, **kw), x, exact=True)
    _both(lambda x: C.max_pool3d(x, **kw), lambda x: TF.max_pool3d(x, **kw), x[0], exact=True)
    y, i = C.max_pool3d(x, **kw, return_indices=True)
    yt, it = TF.max_pool3d(torch.tensor(x), **kw, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(i, it.numpy())
    assert i.dtype == np.int64


@pytest.mark.parametrize("kw", POOL[:4])
def test_max_pool3d_ties_go_to_the_first_maximum(kw):
    """ReLU'd data: many all-zero windows (every element ties), and small integers: most
    windows hold several equal maxima, across depth planes as well as within them."""
    x = _data((2, 2, 6, 7, 6), 14) - 1.5
    y = _both(lambda x: C.max_pool3d(np.maximum(x, 0.0), **kw),
              lambda x: TF.max_pool3d(torch.relu(x), **kw), x, exact=True)
    assert np.mean(y.value == 0) > 0.05                       # windows of zeros are common
    ints = np.random.default_rng(15).integers(0, 3, size=(2, 2, 6, 7, 6)).astype(float)
    _both(C.MaxPool3d(**kw), torch.nn.MaxPool3d(**kw), ints, exact=True)


def test_max_pool3d_a_window_of_equal_maxima():
    x = np.zeros((1, 1, 2, 2, 2))
    x[0, 0, 1, 0, 1] = x[0, 0, 0, 1, 0] = x[0, 0, 1, 1, 1] = 5.0   # the first: (0, 1, 0)
    y = ad.Variable(x)
    np.sum(C.max_pool3d(y, 2)).backward()
    want = np.zeros_like(x)
    want[0, 0, 0, 1, 0] = 1.0
    np.testing.assert_array_equal(y.grad, want)
    _both(lambda x: C.max_pool3d(x, 2), lambda x: TF.max_pool3d(x, 2), x, exact=True)


def test_max_pool3d_nan_propagates_and_the_last_nan_takes_the_derivative():
    x = _data((1, 2, 4, 4, 4), 16)
    x[0, 0, 0, 0, 1] = x[0, 0, 1, 0, 0] = np.nan     # two NaNs in one window, other planes
    x[0, 1, 2, 3, 3] = np.nan
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
        y = ad.Variable(x)
        out = C.max_pool3d(y, **kw)
        xt = torch.tensor(x, requires_grad=True)
        outt = TF.max_pool3d(xt, **kw)
        np.testing.assert_array_equal(np.isnan(out.value), np.isnan(outt.detach().numpy()))
        np.sum(out * np.ones(out.shape)).backward()
        outt.sum().backward()
        np.testing.assert_array_equal(y.grad, xt.grad.numpy())


def test_MaxPool3d_repr_and_errors():
    for kw in (dict(kernel_size=2), dict(kernel_size=(2, 3, 1), stride=1, padding=1,
                                         ceil_mode=True, return_indices=True)):
        assert repr(C.MaxPool3d(**kw)) == repr(torch.nn.MaxPool3d(**kw))
    with pytest.raises(ValueError, match="at most half"):
        C.max_pool3d(np.ones((1, 3, 3, 3)), 2, padding=2)
    with pytest.raises(ValueError, match="4-D or 5-D"):
        C.max_pool3d(np.ones((3, 3, 3)), 2)


# ----- avg_pool3d -----
AVG = [dict(kernel_size=2), dict(kernel_size=(2, 3, 2), stride=1),
       dict(kernel_size=3, stride=2, padding=1),
       dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
       dict(kernel_size=(3, 2, 3), stride=(2, 2, 1), padding=(1, 0, 1), ceil_mode=True),
       dict(kernel_size=(3, 2, 3), stride=(2, 2, 1), padding=(1, 0, 1), ceil_mode=True,
            count_include_pad=False),
       dict(kernel_size=2, stride=(1, 2, 3), ceil_mode=True, divisor_override=3)]


@pytest.mark.parametrize("kw", AVG)
def test_avg_pool3d_values_and_gradients(kw):
    x = _data((2, 3, 6, 7, 8), 17)
    _both(lambda x: C.avg_pool3d(x, **kw), lambda x: TF.avg_pool3d(x, **kw), x)
    _both(lambda x: C.AvgPool3d(**kw)(x), lambda x: torch.nn.AvgPool3d(**kw)(x), x[1])
    assert repr(C.AvgPool3d(**kw)) == repr(torch.nn.AvgPool3d(**kw))


# ----- adaptive pools -----
@pytest.mark.parametrize("out", [1, 3, (2, None, 5), (4, 3, 1), (None, None, None), (6, 7, 8)])
def test_adaptive_pools_3d(out):
    x = _data((2, 3, 5, 7, 6), 18)
    ints = np.random.default_rng(19).integers(0, 2, size=x.shape).astype(float)
    for ours, theirs in ((C.AdaptiveAvgPool3d(out), torch.nn.AdaptiveAvgPool3d(out)),
                         (C.AdaptiveMaxPool3d(out), torch.nn.AdaptiveMaxPool3d(out))):
        assert repr(ours) == repr(theirs)
        exact = isinstance(ours, C.AdaptiveMaxPool3d)
        for v in (x, x[0], ints):
            _both(ours, theirs, v, exact=exact)
    y, i = C.adaptive_max_pool3d(ints, out, return_indices=True)
    yt, it = TF.adaptive_max_pool3d(torch.tensor(ints), out, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(i, it.numpy())


# ----- Normalisation -----
@pytest.mark.parametrize("kw", [dict(), dict(affine=True), dict(track_running_stats=True),
                                dict(affine=True, track_running_stats=True, momentum=None)])
def test_InstanceNorm3d(kw):
    ours, theirs = N.InstanceNorm3d(3, **kw), torch.nn.InstanceNorm3d(3, **kw).double()
    assert repr(ours) == repr(theirs)
    x = _data((2, 3, 3, 4, 5), 20)
    for v in (x, x[0]):
        _layer(ours, theirs, v)
        ours.zero_grad()
        theirs.zero_grad()
    if ours.track_running_stats:
        _close(ours.running_mean, theirs.running_mean.numpy())
        _close(ours.running_var, theirs.running_var.numpy())
        ours.eval()
        theirs.eval()
        _both(ours, theirs, x)
    with pytest.raises(ValueError, match="4D or 5D"):
        ours(np.ones((3, 4, 5)))


def test_BatchNorm3d_is_there():
    ours, theirs = N.BatchNorm3d(3), torch.nn.BatchNorm3d(3).double()
    assert repr(ours) == repr(theirs)
    _layer(ours, theirs, _data((2, 3, 3, 4, 5), 21))
    _close(ours.running_var, theirs.running_var.numpy())


# ----- Forward mode and second order -----
def test_forward_mode_and_second_order_through_conv3d_and_max_pool3d():
    x, w = _data((1, 2, 4, 4, 4), 22), _data((2, 2, 2, 2, 2), 23)

    def f(x, w):
        y = np.tanh(C.conv3d(x, w, padding=1, stride=(1, 2, 1)))
        return C.max_pool3d(y, 2, stride=1, padding=1)

    for i in (0, 1):
        np.testing.assert_allclose(ad.jacfwd(f, i)(x, w), ad.jacrev(f, i)(x, w),
                                   rtol=1e-10, atol=1e-12)

    def loss(w):
        return np.sum(f(x, w) ** 2)

    def loss_t(w):
        return (torch_f(torch.tensor(x), w) ** 2).sum()

    def torch_f(x, w):
        y = torch.tanh(TF.conv3d(x, w, padding=1, stride=(1, 2, 1)))
        return TF.max_pool3d(y, 2, stride=1, padding=1)

    h = ad.hessian(loss)(w)
    ht = torch.autograd.functional.hessian(loss_t, torch.tensor(w)).numpy()
    np.testing.assert_allclose(h, ht, rtol=1e-10, atol=1e-10)
    ad.check_grads(lambda x: np.sum(np.sin(f(x, w))), (x,), order=2, modes=("fwd", "rev"))


def test_jit_replays_max_pool3d_and_conv3d():
    w = _data((2, 2, 2, 2, 2), 24)
    f = ad.jit(lambda x: np.sum(C.max_pool3d(C.conv3d(x, w), 2, stride=1) ** 2))
    g = ad.grad(lambda x: np.sum(C.max_pool3d(C.conv3d(x, w), 2, stride=1) ** 2))
    for seed in (25, 26):
        x = _data((1, 2, 4, 5, 4), seed)
        np.testing.assert_allclose(f(x), np.sum(C.max_pool3d(C.conv3d(x, w), 2, 1) ** 2),
                                   rtol=1e-12)
        np.testing.assert_allclose(ad.jit(g)(x), g(x), rtol=1e-12)
