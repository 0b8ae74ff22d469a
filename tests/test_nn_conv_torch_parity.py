"""PyTorch parity of nn's pooling and convolution extras (float64 on both sides):

* max pooling (the engine's ``max_pool2d`` primitive) sends a window's whole derivative to
  its first maximum in row-major order (its last NaN), as torch's kernel, in the reverse
  and the forward mode and to any order, with overlapping windows, dilation, padding and
  ceil mode; the first-order fast path equals the one-hot scatter; ``return_indices``
  gives torch's flat indices;
* adaptive max pooling, max unpooling, ``unfold``/``fold`` and the pixel shuffles;
* ``ConvTranspose`` with ``output_padding`` up to max(stride, dilation) - 1, and
  ``padding='same'`` with the reflect / replicate / circular padding modes.

Values, ``loss.backward()`` gradients and whole Jacobians (``ad.jacfwd``, ``ad.jacrev``)
are compared with torch's (``torch.autograd.functional.jacobian``)."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import conv as C
from autodiff.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = dict(rtol=1e-10, atol=1e-10)


def _close(got, want):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), **TOL)


def _t(x, grad=False):
    return torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=grad)


def _values_and_grads(ours, theirs, x, seed=0):
    """Forward and backward of ``Σ R·f(x)`` (R random) in both libraries."""
    xv = ad.Variable(x)
    y = ours(xv)
    xt = _t(x, True)
    yt = theirs(xt)
    _close(y.value, yt.detach().numpy())
    r = np.random.default_rng(seed).standard_normal(tuple(yt.shape))
    np.sum(y * r).backward()
    (yt * torch.tensor(r)).sum().backward()
    _close(xv.grad, xt.grad.numpy())
    return y


def _copy(ours, theirs):
    with torch.no_grad():
        for name, p in ours.named_parameters():
            theirs.get_parameter(name).copy_(torch.tensor(p.value))


def _run_layer(ours, theirs, x):
    """A layer pair with nn's parameters copied into torch's: values and every gradient."""
    _copy(ours, theirs)
    y = _values_and_grads(ours, theirs, x)
    for name, p in ours.named_parameters():
        _close(p.grad, theirs.get_parameter(name).grad.numpy())
    ours.zero_grad()
    theirs.zero_grad()
    return y


def _jacobians(ours, theirs, x):
    """Both modes' whole Jacobians against torch's (reverse mode, one row at a time)."""
    want = torch.autograd.functional.jacobian(theirs, _t(x)).numpy()
    _close(ad.jacfwd(ours)(x), want)
    _close(ad.jacrev(ours)(x), want)


def _tied(shape, seed=0, levels=3):
    """Small integers: most windows hold several equal maxima."""
    return np.random.default_rng(seed).integers(0, levels, size=shape).astype(float)


# ----- Max pooling: the first maximum takes the derivative -----
def test_the_two_examples_of_torchs_rule():
    x = np.array([[[[1.0, 0.0], [0.0, 1.0]]]])
    xv = ad.Variable(x)
    np.sum(F.max_pool2d(xv, 2)).backward()
    _close(xv.grad.ravel(), [1, 0, 0, 0])
    _close(ad.grad(lambda x: np.sum(F.max_pool2d(x, 2)))(x).ravel(), [1, 0, 0, 0])
    _close(ad.jacfwd(lambda x: F.max_pool2d(x, 2))(x).ravel(), [1, 0, 0, 0])
    z = np.zeros((1, 1, 4))
    _close(ad.grad(lambda x: np.sum(F.max_pool1d(x, 2)))(z).ravel(), [1, 0, 1, 0])
    _close(ad.jvp(lambda x: F.max_pool1d(x, 2), (z,), (np.arange(4.0).reshape(z.shape),))[1]
           .ravel(), [0, 2])
    zt = _t(z, True)
    TF.max_pool1d(zt, 2).sum().backward()
    _close(zt.grad.numpy().ravel(), [1, 0, 1, 0])


MAX2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),                                         # overlapping
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=2),
    dict(kernel_size=3, stride=2, dilation=(2, 1), padding=1, ceil_mode=True),
]


@pytest.mark.parametrize("kw", MAX2D, ids=[str(k) for k in MAX2D])
@pytest.mark.parametrize("levels", [2, 1000])
def test_max_pool2d_values_gradients_and_jacobians(kw, levels):
    x = _tied((2, 2, 6, 7), levels=levels)
    _values_and_grads(lambda v: F.max_pool2d(v, **kw), lambda t: TF.max_pool2d(t, **kw), x)
    _values_and_grads(lambda v: F.max_pool2d(v, **kw), lambda t: TF.max_pool2d(t, **kw),
                      x[0])                                              # unbatched
    _jacobians(lambda v: F.max_pool2d(v, **kw), lambda t: TF.max_pool2d(t, **kw), x[:1, :1])


MAX1D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=3, padding=1),
]


@pytest.mark.parametrize("kw", MAX1D, ids=[str(k) for k in MAX1D])
def test_max_pool1d_values_gradients_jacobians_and_modules(kw):
    x = _tied((2, 3, 9))
    _values_and_grads(lambda v: F.max_pool1d(v, **kw), lambda t: TF.max_pool1d(t, **kw), x)
    _jacobians(lambda v: F.max_pool1d(v, **kw), lambda t: TF.max_pool1d(t, **kw), x[0])
    ours, theirs = nn.MaxPool1d(**kw), torch.nn.MaxPool1d(**kw)
    _values_and_grads(ours, theirs, x)
    assert repr(ours) == repr(theirs)


def test_second_derivatives_follow_the_first_maximum():
    """The Hessian of Σ sin(pool(x²)) at a tie: forward-over-reverse and the other orders
    agree with torch's."""
    x = _tied((1, 1, 4, 5), seed=3) - 1.0
    f = lambda x: np.sum(np.sin(F.max_pool2d(x * x, 2, stride=1)))       # noqa: E731
    ft = lambda x: torch.sin(TF.max_pool2d(x * x, 2, stride=1)).sum()    # noqa: E731
    want = torch.autograd.functional.hessian(ft, _t(x)).numpy()
    _close(ad.hessian(f)(x), want)
    _close(ad.jacfwd(ad.jacfwd(f))(x), want)
    _close(ad.jacrev(ad.jacrev(f))(x), want)
    ad.check_grads(f, (np.random.default_rng(4).standard_normal((1, 1, 4, 5)),), order=2)


def test_nan_propagates_and_the_last_nan_takes_the_derivative():
    nan = np.nan
    for x, kw in [(np.array([[[nan, 1.0, nan, 1.0]]]), dict(kernel_size=4)),
                  (np.array([[[1.0, nan, nan, 1.0, 2.0, 0.0]]]), dict(kernel_size=3, stride=1)),
                  (np.array([[[nan, 3.0, 3.0, nan, 2.0]]]), dict(kernel_size=2, padding=1))]:
        _values_and_grads(lambda v: F.max_pool1d(v, **kw), lambda t: TF.max_pool1d(t, **kw), x)
        y, i = F.max_pool1d(x, **kw, return_indices=True)
        _, ti = TF.max_pool1d(_t(x), **kw, return_indices=True)
        np.testing.assert_array_equal(i, ti.numpy())
        t = np.arange(1.0, x.size + 1).reshape(x.shape)
        jt = ad.jvp(lambda v: F.max_pool1d(v, **kw), (x,), (t,))[1]
        _close(jt, t.ravel()[i])                                 # the same element
    x = np.array([[[[nan, 1.0], [nan, 1.0]]]])
    _values_and_grads(lambda v: F.max_pool2d(v, 2), lambda t: TF.max_pool2d(t, 2), x)


def test_a_window_of_minus_infinity_gives_its_first_element_inside_the_input():
    x = np.full((1, 1, 3), -np.inf)
    kw = dict(kernel_size=2, stride=1, padding=1)
    g = ad.grad(lambda v: np.sum(F.max_pool1d(v, **kw)))(x)
    xt = _t(x, True)
    TF.max_pool1d(xt, **kw).sum().backward()
    _close(g, xt.grad.numpy())
    _close(g.ravel(), [2, 1, 1])


@pytest.mark.parametrize("kw", MAX2D, ids=[str(k) for k in MAX2D])
def test_return_indices_are_torchs(kw):
    x = _tied((2, 3, 6, 7), seed=5)
    for inp in (x, x[0]):
        y, i = F.max_pool2d(inp, **kw, return_indices=True)
        ty, ti = TF.max_pool2d(_t(inp), **kw, return_indices=True)
        _close(y, ty.numpy())
        assert i.dtype == np.int64
        np.testing.assert_array_equal(i, ti.numpy())
    ours, theirs = nn.MaxPool2d(**kw, return_indices=True), torch.nn.MaxPool2d(
        **kw, return_indices=True)
    y, i = ours(ad.Variable(x))
    np.testing.assert_array_equal(i, theirs(_t(x))[1].numpy())
    assert repr(ours) == repr(theirs)


def test_return_indices_1d_and_their_gradient_path():
    x = _tied((2, 3, 10), seed=6)
    kw = dict(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)
    y, i = F.max_pool1d(x, **kw, return_indices=True)
    ty, ti = TF.max_pool1d(_t(x), **kw, return_indices=True)
    np.testing.assert_array_equal(i, ti.numpy())
    y, i = nn.MaxPool1d(**kw, return_indices=True)(x)
    np.testing.assert_array_equal(i, ti.numpy())
    # the derivative lands where the indices say
    g = ad.grad(lambda v: np.sum(F.max_pool1d(v, **kw)))(x[:1, :1])
    want = np.zeros(10)
    np.add.at(want, i[0, 0], 1.0)
    _close(g.ravel(), want)


# ----- The first-order fast path against the weighted scatter -----
GEOS = [
    dict(ksize=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False),
    dict(ksize=(2, 2), stride=(2, 2), padding=(1, 0), dilation=(1, 1), ceil_mode=True),
    dict(ksize=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True),
    dict(ksize=(2, 3), stride=(3, 3), padding=(0, 1), dilation=(2, 1), ceil_mode=False),
    dict(ksize=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), ceil_mode=False),
]


@pytest.mark.parametrize("geo", GEOS, ids=range(len(GEOS)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True])
def test_fast_reverse_path_equals_the_one_hot_scatter(geo, dtype, ties, monkeypatch):
    """The first-order reverse rule (masks, no weights) gives what pool_scatter with the
    one-hot weights gives: a tie's first maximum takes it all, overlapping windows add up,
    padding reads nothing; by blocks of the leading axis too."""
    from autodiff.ops import pooling as P
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 2, 7, 8)).astype(dtype)
    if ties:                                   # ReLU-like: many windows all zero
        x = np.maximum(x, 0).astype(dtype)
        x[0, 0, :3, :3] = 1.5
    ans = P.max_pool2d_p(x, **geo)
    g = rng.standard_normal(ans.shape).astype(dtype)
    slow = P.pool_scatter_p(g, P._weights(x, ans, **geo), size=x.shape[-2:], **geo)
    for block in (P._BLOCK_BYTES, 1):          # whole array, then one image per block
        monkeypatch.setattr(P, "_BLOCK_BYTES", block)
        fast = P._scatter_first(g, x, ans, **geo)
        assert fast is not None and fast.shape == x.shape and fast.dtype == dtype
        np.testing.assert_array_equal(fast, slow)
        np.testing.assert_array_equal(P._max_pool_vjp(g[1], ans[1], x[1], **geo), slow[1])
    if ties:                                   # one element of each window, never a share
        assert set(np.unique(P._weights(x, ans, **geo))) == {0.0, 1.0}
    # 3-D input (C, H, W) and a single image
    a3 = P.max_pool2d_p(x[0], **geo)
    np.testing.assert_allclose(P._max_pool_vjp(g[0], a3, x[0], **geo), slow[0],
                               rtol=1e-6 if dtype == np.float32 else 1e-15)
    # torch's gradient is the same
    xt = torch.tensor(x.astype(float), requires_grad=True)
    yt = TF.max_pool2d(xt, geo["ksize"], geo["stride"], geo["padding"], geo["dilation"],
                       geo["ceil_mode"])
    (yt * torch.tensor(g.astype(float))).sum().backward()
    np.testing.assert_allclose(slow, xt.grad.numpy(), rtol=1e-6)


def test_a_nan_maximum_takes_the_general_path():
    from autodiff.ops import pooling as P
    geo = GEOS[0]
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = x[0, 0, 1, 0] = np.nan
    ans = P.max_pool2d_p(x, **geo)
    g = np.ones(ans.shape)
    assert P._scatter_first(g, x, ans, **geo) is None
    got = P._max_pool_vjp(g, ans, x, **geo)
    want = np.zeros((4, 4))
    want[1, 0] = want[1, 3] = want[3, 1] = want[3, 3] = 1.0          # the last NaN, maxima
    _close(got[0, 0], want)


def test_a_nan_window_beside_a_tie_is_torchs():
    """A NaN window (no tap equals its maximum) and a tied one (two do) hit as many taps as
    there are windows: still the last NaN and the first maximum, as torch."""
    from autodiff.ops import pooling as P
    x = np.array([[[[np.nan, 0.0, 1.0, 1.0]]]])
    geo = dict(ksize=(1, 2), stride=(1, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
    assert P._scatter_first(np.ones((1, 1, 1, 2)), x, P.max_pool2d_p(x, **geo), **geo) is None
    _values_and_grads(lambda v: F.max_pool2d(v, (1, 2)), lambda t: TF.max_pool2d(t, (1, 2)), x)
    _values_and_grads(lambda v: F.max_pool1d(v, 2), lambda t: TF.max_pool1d(t, 2), x[0])
    _close(ad.grad(lambda v: np.sum(F.max_pool2d(v, (1, 2))))(x).ravel(), [1, 0, 1, 0])


def test_the_primitive_is_the_engines():
    """nn's max pooling records the engine's registered max_pool2d primitive, and its
    return_indices come from the same pick."""
    from autodiff.ops import pooling as P
    x = _tied((1, 2, 4, 5), seed=9)
    with ad.Tape() as tape:
        F.max_pool2d(ad.Variable(x), 2, stride=1)
    assert [v.prim for v in tape._records if v.prim is not None] == [P.max_pool2d_p]
    geo = ((2, 2), (1, 1), (0, 0), (1, 1), False)
    _, i = F.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(i, P.max_pool2d_indices(x, P.max_pool2d(x, *geo), *geo))


def test_the_composition_for_other_arrays_makes_the_same_choice():
    """``_first_max`` over the tap slices (the path of autodiff.gpu's arrays) against the
    primitive: values, both modes' Jacobians, at ties and NaNs."""
    x = _tied((1, 2, 5, 6), seed=8)
    x[0, 1, 0, :2] = np.nan
    for kw in MAX2D:
        k, s, p, d = C._pool_args(kw["kernel_size"], kw.get("stride"), kw.get("padding", 0),
                                  kw.get("dilation", 1))
        ceil = kw.get("ceil_mode", False)
        comp = lambda v: C._first_max(C._taps(v, k, s, p, d, ceil, -np.inf)[1])  # noqa: E731
        prim = lambda v: F.max_pool2d(v, **kw)                                  # noqa: E731
        np.testing.assert_array_equal(comp(x), prim(x))
        np.testing.assert_array_equal(ad.jacfwd(comp)(x), ad.jacfwd(prim)(x))
        np.testing.assert_array_equal(ad.jacrev(comp)(x), ad.jacrev(prim)(x))


def test_jit_records_the_choice_once():
    f = lambda x: np.sum(np.sin(F.max_pool2d(x, 2, 1)) * np.cos(x[..., :3, :3]))  # noqa: E731
    rng = np.random.default_rng(2)
    for name in ("grad", "hessian"):
        t = getattr(ad, name)(f)
        jt = ad.jit(t)
        for _ in range(4):
            x = rng.integers(0, 2, size=(1, 1, 4, 4)).astype(float)
            _close(jt(x), t(x))
        assert jt.recordings == 1


def test_sparsity_and_onnx_see_max_pool2d():
    x = np.random.default_rng(3).standard_normal((1, 2, 4, 5))
    f = lambda v: F.max_pool2d(v, 3, stride=1, padding=1)                  # noqa: E731
    pattern = ad.sparsity(f)(x).toarray()
    assert np.all(pattern[np.abs(ad.jacrev(f)(x).reshape(pattern.shape)) > 0])
    with ad.Tape() as tape:
        F.max_pool2d(ad.Variable(x), 2)
    assert [r.primitive for r in tape if r.primitive != "input"] == ["max_pool2d"]


# ----- Adaptive max pooling -----
@pytest.mark.parametrize("out", [3, (2, 4), (6, 7), (4, None), (8, 9), 1])
@pytest.mark.parametrize("levels", [2, 1000])
def test_adaptive_max_pool2d(out, levels):
    x = _tied((2, 3, 6, 7), seed=11, levels=levels)
    ours = lambda v: F.adaptive_max_pool2d(v, out)                         # noqa: E731
    theirs = lambda t: TF.adaptive_max_pool2d(t, out)                      # noqa: E731
    _values_and_grads(ours, theirs, x)
    _values_and_grads(ours, theirs, x[0])
    _jacobians(ours, theirs, x[:1, :1])
    y, i = F.adaptive_max_pool2d(x, out, return_indices=True)
    np.testing.assert_array_equal(i, TF.adaptive_max_pool2d(_t(x), out, True)[1].numpy())
    m, tm = nn.AdaptiveMaxPool2d(out, return_indices=True), torch.nn.AdaptiveMaxPool2d(
        out, return_indices=True)
    np.testing.assert_array_equal(m(x)[1], tm(_t(x))[1].numpy())
    assert repr(m) == repr(tm)


@pytest.mark.parametrize("out", [1, 3, 5, 8])
def test_adaptive_max_pool1d(out):
    x = _tied((2, 3, 5), seed=12)
    ours = lambda v: F.adaptive_max_pool1d(v, out)                         # noqa: E731
    theirs = lambda t: TF.adaptive_max_pool1d(t, out)                      # noqa: E731
    _values_and_grads(ours, theirs, x)
    _jacobians(ours, theirs, x[0])
    m, tm = nn.AdaptiveMaxPool1d(out, True), torch.nn.AdaptiveMaxPool1d(out, True)
    np.testing.assert_array_equal(m(x)[1], tm(_t(x))[1].numpy())
    _values_and_grads(nn.AdaptiveMaxPool1d(out), torch.nn.AdaptiveMaxPool1d(out), x)
    assert repr(m) == repr(tm)


def test_adaptive_max_pool_with_nan():
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 2.0, 0.0, np.nan]]])
    for out in (1, 2, 3):
        _values_and_grads(lambda v: F.adaptive_max_pool1d(v, out),
                          lambda t: TF.adaptive_max_pool1d(t, out), x)
        np.testing.assert_array_equal(F.adaptive_max_pool1d(x, out, True)[1],
                                      TF.adaptive_max_pool1d(_t(x), out, True)[1].numpy())


# ----- Max unpooling -----
@pytest.mark.parametrize("kw,size", [(dict(kernel_size=2), None),
                                     (dict(kernel_size=2), (7, 9)),
                                     (dict(kernel_size=2, stride=2, padding=1), None),
                                     (dict(kernel_size=(2, 3), stride=(2, 3)), (1, 2, 6, 8))])
def test_max_unpool2d(kw, size):
    x = np.random.default_rng(13).standard_normal((2, 3, 6, 8))
    y, i = F.max_pool2d(x, **kw, return_indices=True)
    ti = torch.tensor(i)
    ours = lambda v: F.max_unpool2d(v, i, **kw, output_size=size)           # noqa: E731
    theirs = lambda t: TF.max_unpool2d(t, ti, **kw, output_size=size)       # noqa: E731
    _values_and_grads(ours, theirs, y)
    _jacobians(ours, theirs, y)
    m, tm = nn.MaxUnpool2d(**kw), torch.nn.MaxUnpool2d(**kw)
    _close(m(y, i, size), tm(_t(y), ti, size).numpy())
    assert repr(m) == repr(tm)
    # unbatched, and the round trip keeps each window's maximum
    _close(F.max_unpool2d(y[0], i[0], **kw, output_size=size),
           TF.max_unpool2d(_t(y[0]), ti[0], **kw, output_size=size).numpy())


def test_max_unpool1d_and_errors():
    x = np.random.default_rng(14).standard_normal((2, 3, 8))
    y, i = F.max_pool1d(x, 2, stride=2, padding=1, return_indices=True)
    ti = torch.tensor(i)
    for size in (None, (9,), (2, 3, 8)):
        _values_and_grads(lambda v: F.max_unpool1d(v, i, 2, 2, 1, output_size=size),
                          lambda t: TF.max_unpool1d(t, ti, 2, 2, 1, output_size=size), y)
        _values_and_grads(lambda v: F.max_unpool1d(v, i[0], 2, 2, 1, output_size=size),
                          lambda t: TF.max_unpool1d(t, ti[0], 2, 2, 1, output_size=size), y[0])
    m, tm = nn.MaxUnpool1d(2, stride=2, padding=1), torch.nn.MaxUnpool1d(2, stride=2, padding=1)
    _close(m(y, i), tm(_t(y), ti).numpy())
    assert repr(m) == repr(tm)
    with pytest.raises(ValueError, match="invalid output_size"):
        F.max_unpool1d(y, i, 2, 2, 1, output_size=(11,))
    with pytest.raises(ValueError, match="invalid max index"):
        F.max_unpool1d(y, i + 100, 2, 2, 1)
    with pytest.raises(ValueError, match="integer indices"):
        F.max_unpool1d(y, i[..., :1], 2, 2, 1)


def test_max_unpool_of_a_repeated_index_keeps_the_later_element():
    y = np.array([[[5.0, 5.0, 3.0]]])
    i = np.array([[[1, 1, 4]]])
    _close(F.max_unpool1d(y, i, 3, 1), TF.max_unpool1d(_t(y), torch.tensor(i), 3, 1).numpy())
    _close(ad.grad(lambda v: np.sum(F.max_unpool1d(v, i, 3, 1) * np.arange(5.0)))(y).ravel(),
           [0.0, 1.0, 4.0])


# ----- ConvTranspose: output_padding below max(stride, dilation) -----
TRANSPOSE1D = [
    dict(kernel_size=3, dilation=2, output_padding=1),
    dict(kernel_size=3, dilation=3, output_padding=2, padding=2),
    dict(kernel_size=2, dilation=3, output_padding=2),
    dict(kernel_size=3, stride=2, dilation=3, output_padding=2, padding=1),
    dict(kernel_size=2, stride=2, dilation=3, output_padding=2, groups=2),
    dict(kernel_size=3, stride=2, padding=1, output_padding=1),           # op < stride
]


@pytest.mark.parametrize("kw", TRANSPOSE1D, ids=[str(k) for k in TRANSPOSE1D])
def test_conv_transpose1d_output_padding_up_to_the_dilation(kw):
    ours = nn.ConvTranspose1d(2, 4, **kw)
    theirs = torch.nn.ConvTranspose1d(2, 4, **kw).double()
    x = np.random.default_rng(15).standard_normal((2, 2, 6))
    y = _run_layer(ours, theirs, x)
    assert y.shape == tuple(theirs(_t(x)).shape)
    _run_layer(ours, theirs, x[0])


def test_dilation_2_output_padding_1_gives_torchs_length():
    x = np.zeros((1, 2, 6))
    assert nn.ConvTranspose1d(2, 3, 3, dilation=2, output_padding=1)(x).shape == \
        tuple(torch.nn.ConvTranspose1d(2, 3, 3, dilation=2, output_padding=1).double()(
            _t(x)).shape) == (1, 3, 11)


@pytest.mark.parametrize("kw", [dict(kernel_size=(3, 2), dilation=(2, 3), output_padding=(1, 2)),
                                dict(kernel_size=2, stride=(2, 1), dilation=(1, 3),
                                     output_padding=(1, 2), padding=(0, 1))])
def test_conv_transpose2d_output_padding_up_to_the_dilation(kw):
    ours = nn.ConvTranspose2d(2, 3, **kw)
    theirs = torch.nn.ConvTranspose2d(2, 3, **kw).double()
    x = np.random.default_rng(16).standard_normal((2, 2, 4, 5))
    _run_layer(ours, theirs, x)
    w = np.random.default_rng(17).standard_normal((2, 3, 2, 2))
    f = lambda x, w: F.conv_transpose2d(x, w, stride=(1, 2), dilation=3,          # noqa: E731
                                        output_padding=2)
    ad.check_grads(f, (x[:1], w), order=2)


def test_output_padding_at_max_of_stride_and_dilation_is_refused():
    x = np.zeros((1, 2, 6))
    with pytest.raises(RuntimeError, match="smaller than either stride or dilation"):
        nn.ConvTranspose1d(2, 3, 3, dilation=2, output_padding=2)(x)
    with pytest.raises(ValueError, match="smaller than either stride or dilation"):
        F.conv_transpose1d(x, np.zeros((2, 3, 3)), stride=2, output_padding=2)


# ----- padding='same' with a padding mode -----
SAME = [("Conv2d", 3, 1), ("Conv2d", 4, 1), ("Conv2d", (2, 3), (3, 2)), ("Conv1d", 4, 1),
        ("Conv1d", 3, 2), ("Conv1d", 2, 3)]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("name,k,d", SAME, ids=[str(s) for s in SAME])
def test_same_padding_with_a_padding_mode(mode, name, k, d):
    ours = getattr(nn, name)(2, 3, k, padding="same", padding_mode=mode, dilation=d)
    theirs = getattr(torch.nn, name)(2, 3, k, padding="same", padding_mode=mode,
                                     dilation=d).double()
    shape = (2, 2, 6, 7) if name == "Conv2d" else (2, 2, 8)
    x = np.random.default_rng(18).standard_normal(shape)
    y = _run_layer(ours, theirs, x)
    assert y.shape[2:] == shape[2:]
    assert repr(ours) == repr(theirs)
    _run_layer(ours, theirs, x[0])
    _run_layer(getattr(nn, name)(2, 3, k, padding="valid", padding_mode=mode),
               getattr(torch.nn, name)(2, 3, k, padding="valid", padding_mode=mode).double(), x)


def test_strided_same_padding_is_refused_at_construction_as_torch():
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same", padding_mode="reflect")
    with pytest.raises(ValueError, match="Invalid padding string"):
        nn.Conv1d(2, 3, 3, padding="full")


# ----- unfold / fold -----
BLOCKS = [
    dict(kernel_size=2),
    dict(kernel_size=(2, 3), stride=(1, 2)),
    dict(kernel_size=3, padding=1, dilation=1, stride=2),
    dict(kernel_size=(3, 2), dilation=(2, 1), padding=(1, 2), stride=(2, 1)),
]


@pytest.mark.parametrize("kw", BLOCKS, ids=[str(k) for k in BLOCKS])
def test_unfold_and_fold(kw):
    x = np.random.default_rng(19).standard_normal((2, 3, 6, 7))
    ours = lambda v: F.unfold(v, **kw)                                      # noqa: E731
    theirs = lambda t: TF.unfold(t, **kw)                                   # noqa: E731
    cols = _values_and_grads(ours, theirs, x).value
    _values_and_grads(ours, theirs, x[0])                                  # unbatched
    _jacobians(ours, theirs, x[:1, :1, :5, :5])
    ours_f = lambda c: F.fold(c, (6, 7), **kw)                              # noqa: E731
    theirs_f = lambda c: TF.fold(c, (6, 7), **kw)                           # noqa: E731
    _values_and_grads(ours_f, theirs_f, cols)
    _values_and_grads(ours_f, theirs_f, cols[0])
    small = F.unfold(x[:1, :1, :5, :5], **kw)
    _jacobians(lambda c: F.fold(c, (5, 5), **kw), lambda c: TF.fold(c, (5, 5), **kw), small)
    u, tu = nn.Unfold(**kw), torch.nn.Unfold(**kw)
    _close(u(x), tu(_t(x)).numpy())
    assert repr(u) == repr(tu)
    f, tf = nn.Fold((6, 7), **kw), torch.nn.Fold((6, 7), **kw)
    _close(f(cols), tf(_t(cols)).numpy())
    assert repr(f) == repr(tf)
    ad.check_grads(lambda v: np.sum(np.sin(F.fold(F.unfold(v, **kw), (6, 7), **kw)) ** 2),
                   (x[:1, :2],), order=2)


def test_unfold_copies_infinities_exactly():
    x = np.array([[[[1.0, np.inf], [-np.inf, 2.0]]]])
    _close(F.unfold(x, 1), TF.unfold(_t(x), 1).numpy())


def test_unfold_fold_errors():
    with pytest.raises(RuntimeError, match="at least one"):
        F.unfold(np.ones((1, 1, 2, 2)), 3)
    with pytest.raises(ValueError, match="sliding blocks"):
        F.fold(np.ones((1, 4, 3)), (3, 3), 2)
    with pytest.raises(ValueError, match="divisible by the product of kernel_size"):
        F.fold(np.ones((1, 5, 4)), (3, 3), 2)
    with pytest.raises(ValueError, match="3-D or 4-D"):
        F.unfold(np.ones((2, 2)), 1)


# ----- pixel shuffles -----
@pytest.mark.parametrize("shape,r", [((2, 8, 3, 5), 2), ((18, 2, 3), 3), ((2, 3, 4, 2, 2), 2)])
def test_pixel_shuffle_and_unshuffle(shape, r):
    x = np.random.default_rng(20).standard_normal(shape)
    _values_and_grads(lambda v: F.pixel_shuffle(v, r), lambda t: TF.pixel_shuffle(t, r), x)
    y = F.pixel_shuffle(x, r)
    _values_and_grads(lambda v: F.pixel_unshuffle(v, r),
                      lambda t: TF.pixel_unshuffle(t, r), y)
    _close(F.pixel_unshuffle(y, r), x)
    m, tm = nn.PixelShuffle(r), torch.nn.PixelShuffle(r)
    _close(m(x), tm(_t(x)).numpy())
    assert repr(m) == repr(tm)
    m, tm = nn.PixelUnshuffle(r), torch.nn.PixelUnshuffle(r)
    _close(m(y), tm(_t(y)).numpy())
    assert repr(m) == repr(tm)
    _close(ad.jacfwd(lambda v: F.pixel_shuffle(v, r))(x[..., :1, :1]),
           torch.autograd.functional.jacobian(lambda t: TF.pixel_shuffle(t, r),
                                              _t(x[..., :1, :1])).numpy())


def test_pixel_shuffle_errors():
    with pytest.raises(RuntimeError, match="divisible by the square"):
        F.pixel_shuffle(np.ones((1, 5, 4, 4)), 2)
    with pytest.raises(ValueError, match="height to be divisible"):
        F.pixel_unshuffle(np.ones((1, 5, 5, 4)), 2)
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        F.pixel_shuffle(np.ones((4, 4)), 2)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_interpolate_takes_pytorchs_kernel_shortcuts(nd):
    # with a non-integer scale_factor: a linear axis keeping its size is copied (all nd), a
    # nearest one only for 2-d input, which also takes i // 2 where it doubles
    rng = np.random.default_rng(nd)
    linear = {1: "linear", 2: "bilinear", 3: "trilinear"}[nd]
    cases = [((3,) * nd, "nearest", 1.24), ((3,) * nd, "nearest", 2.24), ((4,) * nd, "nearest", 1.1),
             ((4,) * nd, linear, 1.24), ((4,) * nd, linear, 2.3), ((5,) * nd, "nearest", 0.7)]
    for spatial, mode, sf in cases:
        x = rng.standard_normal((1, 2) + spatial)
        want = torch.nn.functional.interpolate(torch.tensor(x), scale_factor=sf, mode=mode)
        np.testing.assert_allclose(np.asarray(F.interpolate(x, scale_factor=sf, mode=mode)),
                                   want.numpy(), atol=1e-12)
