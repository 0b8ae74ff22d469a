"""Convolution, pooling and batch-norm layers: outputs and gradients against PyTorch (float64,
1e-10), derivatives of compositions to second order in both modes, batched Jacobians of
nested transforms, and the layers' PyTorch habits (repr, buffers, state_dict, errors)."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

TOL = dict(rtol=1e-10, atol=1e-10)


def _close(got, want):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), **TOL)


# ----- Against PyTorch -----
def _copy_params(ours, theirs, torch):
    with torch.no_grad():
        for name, p in ours.named_parameters():
            theirs.get_parameter(name).copy_(torch.tensor(p.value))


def _run_both(ours, theirs, x, torch, seed=0):
    """Forward and backward of ``Σ R·layer(x)`` (R random) in both libraries; compares
    the output, the input's gradient and every parameter's gradient."""
    xv = ad.Variable(x)
    y = ours(xv)
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    _close(y.value, yt.detach().numpy())
    r = np.random.default_rng(seed).standard_normal(tuple(yt.shape))
    np.sum(y * r).backward()
    (yt * torch.tensor(r)).sum().backward()
    _close(xv.grad, xt.grad.numpy())
    for name, p in ours.named_parameters():
        _close(p.grad, theirs.get_parameter(name).grad.numpy())
    ours.zero_grad()
    theirs.zero_grad()
    return y


def _data(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


CONV2D = [
    dict(),
    dict(stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1)),
    dict(padding=2, dilation=2, bias=False),
    dict(padding="same", kernel_size=(2, 4)),
    dict(padding="valid", stride=3),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kw", CONV2D, ids=[str(k) for k in CONV2D])
def test_conv2d_matches_torch(kw):
    torch = pytest.importorskip("torch")
    kw = dict(kw)
    k = kw.pop("kernel_size", 3)
    ours = nn.Conv2d(3, 4, k, **kw)
    theirs = torch.nn.Conv2d(3, 4, k, **kw, dtype=torch.float64)
    _copy_params(ours, theirs, torch)
    _run_both(ours, theirs, _data((2, 3, 7, 8)), torch)
    assert repr(ours) == repr(theirs)


CONV1D = [dict(), dict(stride=2, padding=1, dilation=2), dict(padding="same", bias=False)]


@pytest.mark.parametrize("kw", CONV1D, ids=[str(k) for k in CONV1D])
def test_conv1d_matches_torch(kw):
    torch = pytest.importorskip("torch")
    ours = nn.Conv1d(2, 3, 3, **kw)
    theirs = torch.nn.Conv1d(2, 3, 3, **kw, dtype=torch.float64)
    _copy_params(ours, theirs, torch)
    _run_both(ours, theirs, _data((3, 2, 9)), torch)
    assert repr(ours) == repr(theirs)


def test_conv_unbatched_input_matches_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs, shape in [
            (nn.Conv2d(2, 3, 3, padding=1), torch.nn.Conv2d(2, 3, 3, padding=1,
                                                           dtype=torch.float64), (2, 5, 4)),
            (nn.Conv1d(2, 3, 3), torch.nn.Conv1d(2, 3, 3, dtype=torch.float64), (2, 6))]:
        _copy_params(ours, theirs, torch)
        _run_both(ours, theirs, _data(shape), torch)


@pytest.mark.parametrize("kw", [dict(), dict(stride=2, padding=1, output_padding=1),
                                dict(stride=(2, 3), padding=(0, 1), output_padding=(1, 2),
                                     dilation=(2, 1))])
def test_conv_transpose2d_matches_torch(kw):
    torch = pytest.importorskip("torch")
    x, w, b = _data((2, 3, 4, 5)), _data((3, 2, 3, 2), 2), _data((2,), 3)
    vs = [ad.Variable(a) for a in (x, w, b)]
    y = F.conv_transpose2d(*vs, **kw)
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    yt = torch.nn.functional.conv_transpose2d(*ts, **kw)
    _close(y.value, yt.detach().numpy())
    r = _data(tuple(yt.shape), 4)
    np.sum(y * r).backward()
    (yt * torch.tensor(r)).sum().backward()
    for v, t in zip(vs, ts):
        _close(v.grad, t.grad.numpy())


POOLS = [
    ("MaxPool2d", dict(kernel_size=2)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("MaxPool2d", dict(kernel_size=3, stride=1)),                          # overlapping
    ("MaxPool2d", dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1), ceil_mode=True)),
    ("MaxPool2d", dict(kernel_size=2, stride=2, dilation=2, ceil_mode=True)),
    ("MaxPool2d", dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("AvgPool2d", dict(kernel_size=2)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("AvgPool2d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("AvgPool2d", dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True,
                       count_include_pad=False)),
    ("AvgPool2d", dict(kernel_size=2, stride=1, divisor_override=3)),
    ("MaxPool1d", dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("AvgPool1d", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True,
                       count_include_pad=False)),
]


@pytest.mark.parametrize("name,kw", POOLS, ids=[f"{n}-{k}" for n, k in POOLS])
def test_pools_match_torch(name, kw):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
    shape = (2, 3, 7, 8) if name.endswith("2d") else (2, 3, 9)
    _run_both(ours, theirs, _data(shape), torch)
    _run_both(ours, theirs, _data(shape[1:]), torch)                    # unbatched
    assert repr(ours) == repr(theirs)


def test_max_pool_ties_go_to_the_first_maximum():
    # PyTorch's rule (the engine's max_pool2d primitive): the whole derivative goes to the
    # window's first maximum in row-major order, in both modes.
    x = np.zeros((1, 1, 2, 2))
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = 1.0
    g = ad.grad(lambda x: np.sum(F.max_pool2d(x, 2)))(x)
    _close(g[0, 0], [[1.0, 0.0], [0.0, 0.0]])
    t = ad.jvp(lambda x: F.max_pool2d(x, 2), (x,), (np.arange(4.0).reshape(x.shape),))[1]
    _close(t, [[[[0.0]]]])


BN = [
    ("BatchNorm2d", dict(), (4, 3, 5, 4)),
    ("BatchNorm2d", dict(momentum=None), (4, 3, 5, 4)),
    ("BatchNorm2d", dict(affine=False, momentum=0.3), (4, 3, 3, 3)),
    ("BatchNorm2d", dict(bias=False), (2, 3, 3, 3)),
    ("BatchNorm1d", dict(), (6, 3)),
    ("BatchNorm1d", dict(eps=1e-3), (4, 3, 5)),
    ("BatchNorm1d", dict(track_running_stats=False), (4, 3, 5)),
]


@pytest.mark.parametrize("name,kw,shape", BN, ids=[f"{n}-{k}-{s}" for n, k, s in BN])
def test_batchnorm_train_eval_and_running_stats_match_torch(name, kw, shape):
    torch = pytest.importorskip("torch")
    ours = getattr(nn, name)(3, **kw)
    theirs = getattr(torch.nn, name)(3, **kw, dtype=torch.float64)
    if ours.weight is not None:               # non-trivial affine parameters
        ours.weight.value[...] = _data(3, 7)
        if ours.bias is not None:
            ours.bias.value[...] = _data(3, 8)
    _copy_params(ours, theirs, torch)
    assert repr(ours) == repr(theirs)
    for step in range(3):
        _run_both(ours, theirs, 2.0 * _data(shape, 10 + step) + step, torch, seed=step)
        for bname, b in theirs.named_buffers():
            _close(getattr(ours, bname), b.numpy())
    ours.eval()
    theirs.eval()
    _run_both(ours, theirs, _data(shape, 20), torch, seed=5)
    if ours.track_running_stats:
        assert int(ours.num_batches_tracked) == 3
        assert set(dict(ours.named_buffers())) == {
            "running_mean", "running_var", "num_batches_tracked"}


def test_functional_batch_norm_and_layer_norm_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, w, b = _data((4, 3, 2, 2)), _data(3, 2), _data(3, 3)
    rm, rv = _data(3, 4), np.abs(_data(3, 5)) + 0.5
    rm_t, rv_t = torch.tensor(rm), torch.tensor(rv)
    for training in (True, False):
        y = F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.2, eps=1e-4)
        yt = tf.batch_norm(torch.tensor(x), rm_t, rv_t, torch.tensor(w), torch.tensor(b),
                           training=training, momentum=0.2, eps=1e-4)
        _close(y, yt.numpy())
        _close(rm, rm_t.numpy())
        _close(rv, rv_t.numpy())
    x, w, b = _data((2, 3, 4), 6), _data((3, 4), 7), _data((3, 4), 8)
    _close(F.layer_norm(x, (3, 4), w, b), tf.layer_norm(
        torch.tensor(x), (3, 4), torch.tensor(w), torch.tensor(b)).numpy())
    _close(F.layer_norm(x, 4), tf.layer_norm(torch.tensor(x), (4,)).numpy())


# ----- Derivatives of compositions -----
def _net(x, w, b, gamma, beta):
    """conv → batch norm (batch statistics) → tanh → max pool → avg pool."""
    y = F.conv2d(x, w, b, padding=1)
    y = F.batch_norm(y, None, None, gamma, beta, training=True)
    y = np.tanh(y)
    return F.avg_pool2d(F.max_pool2d(y, 2, stride=1), 2, padding=1)


def _net_args():
    rng = np.random.default_rng(3)
    return (rng.standard_normal((2, 2, 4, 4)), rng.standard_normal((2, 2, 3, 3)),
            rng.standard_normal(2), 1.0 + 0.1 * rng.standard_normal(2),
            rng.standard_normal(2))


def test_check_grads_order2_conv_bn_pool_composition():
    ad.check_grads(_net, _net_args(), order=2, modes=("fwd", "rev"))


def test_check_grads_order2_conv1d_and_strided_pools():
    rng = np.random.default_rng(4)

    def f(x, w):
        y = F.conv1d(x, w, stride=2, padding=2)
        return np.sum(np.sin(F.max_pool1d(y, 2, ceil_mode=True)) ** 2)

    ad.check_grads(f, (rng.standard_normal((2, 2, 7)), rng.standard_normal((2, 2, 3))), order=2)


def test_jacfwd_and_jacrev_agree_on_a_conv_net():
    args = _net_args()
    for argnum in range(5):
        fwd = ad.jacfwd(_net, argnum)(*args)
        rev = ad.jacrev(_net, argnum)(*args)
        np.testing.assert_allclose(fwd, rev, rtol=1e-10, atol=1e-12)


def test_nested_batched_jacobians_of_conv():
    """jacfwd(jacrev) and jacrev(jacfwd): a batch of directions at two levels at once, so
    each rule folds a batch while its operands carry another one."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 2, 2))

    def f(x, w):
        return np.sum(np.tanh(F.conv2d(x, w * w, stride=2, padding=1)))

    for i in (0, 1):
        h1 = ad.jacfwd(ad.jacrev(f, i), i)(x, w)
        h2 = ad.jacrev(ad.jacfwd(f, i), i)(x, w)
        h3 = ad.jacfwd(ad.jacfwd(f, i), i)(x, w)
        np.testing.assert_allclose(h1, h2, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(h1, h3, rtol=1e-9, atol=1e-12)
    cross = ad.jacfwd(ad.grad(f, 0), 1)(x, w)
    cross2 = np.moveaxis(ad.jacfwd(ad.grad(f, 1), 0)(x, w), range(4, 8), range(4))
    np.testing.assert_allclose(cross, cross2.reshape(cross.shape), rtol=1e-9, atol=1e-12)


def test_grad_of_a_conv_model_as_a_function_of_its_parameters():
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Tanh(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 1))
    x = np.random.default_rng(0).standard_normal((3, 1, 4, 4))
    params = {k: p.value for k, p in model.named_parameters()}

    def loss(p):
        return np.sum(nn.functional_call(model, p, x) ** 2)

    g = ad.grad(loss)(params)
    vs = {k: ad.Variable(v) for k, v in params.items()}
    loss(vs).backward()
    assert int(model[1].num_batches_tracked) == 2
    assert set(g) == set(params)
    for k in params:                            # ad.grad and backward() agree
        np.testing.assert_allclose(g[k], vs[k].grad, rtol=1e-12, atol=1e-12)
    # The hessian (forward over reverse) of a block is symmetric.
    h = ad.hessian(lambda w: loss({**params, "0.weight": w}))(params["0.weight"])
    h = h.reshape(18, 18)
    np.testing.assert_allclose(h, h.T, rtol=1e-8, atol=1e-10)


# ----- Layer habits -----
def test_conv_default_init_bounds_and_dtype():
    nn.init.manual_seed(0)
    m = nn.Conv2d(4, 6, 3)
    bound = 1.0 / np.sqrt(4 * 9)
    assert m.weight.value.shape == (6, 4, 3, 3) and m.bias.value.shape == (6,)
    assert np.abs(m.weight.value).max() <= bound and np.abs(m.bias.value).max() <= bound
    assert np.abs(m.weight.value).max() > 0.8 * bound
    m32 = nn.Conv2d(2, 3, 3, dtype=np.float32)
    assert m32(np.ones((1, 2, 4, 4), dtype=np.float32)).dtype == np.float32
    bn = nn.BatchNorm2d(3, dtype=np.float32)
    assert bn(np.ones((2, 3, 2, 2), dtype=np.float32)).dtype == np.float32


def test_batchnorm_state_dict_round_trip():
    a, b = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    a(_data((4, 3, 2, 2)))
    sd = a.state_dict()
    assert set(sd) == {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
    b.load_state_dict(sd)
    b(_data((4, 3, 2, 2), 2))                  # updates b's own buffers, not a's
    _close(a.running_mean, sd["running_mean"])
    assert int(b.num_batches_tracked) == 2 and int(a.num_batches_tracked) == 1
    b.eval()
    a.eval()
    x = _data((2, 3, 2, 2), 3)
    assert not np.allclose(a(x), b(x))


def test_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 2, 3, groups=2)            # groups are supported (test_nn_torch_parity)
    with pytest.raises(ValueError, match="channels"):
        nn.Conv2d(3, 2, 3)(np.ones((1, 2, 5, 5)))
    with pytest.raises(ValueError, match="larger than"):
        nn.Conv2d(1, 1, 5)(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="strided"):
        F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match="half"):
        F.max_pool2d(np.ones((1, 1, 4, 4)), 2, padding=2)
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm1d(2)(np.ones((1, 2)))
    with pytest.raises(ValueError, match="4D"):
        nn.BatchNorm2d(2)(np.ones((3, 2)))


# ----- The fast paths of a first-order sweep (autodiff/ops/conv.py, pooling.py) -----
GEOMETRIES = [
    dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1)),
    dict(stride=(2, 1), padding=((1, 1), (2, 0)), dilation=(1, 2)),
    dict(stride=(1, 3), padding=((0, 2), (1, 1)), dilation=(2, 1)),
    dict(stride=(2, 3), padding=((0, 0), (0, 0)), dilation=(1, 1)),    # more taps than pixels
]


@pytest.mark.parametrize("geo", GEOMETRIES, ids=range(len(GEOMETRIES)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 3])
def test_conv_weight_gradient_reuses_the_forward_windows(geo, dtype, n):
    """The reverse sweep's ∂w uses the window matrix its forward call saved; it equals
    ⟨g, conv2d(x, ·)⟩'s gradient rebuilt from scratch (the primitive conv2d_grad_w) and
    the forward equals a per-pixel sum, in float32 and float64."""
    from autodiff.ops import conv as C
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 3, 7, 8)).astype(dtype)
    w = rng.standard_normal((4, 3, 2, 3)).astype(dtype)
    y = C.conv2d_p(x, w, **geo)
    assert y.dtype == dtype and y.flags.c_contiguous
    (pt, pb), (pl, pr) = geo["padding"]
    xp = np.pad(x.astype(float), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    (sh, sw), (dh, dw) = geo["stride"], geo["dilation"]
    want = np.zeros(y.shape)
    for p in range(y.shape[2]):
        for q in range(y.shape[3]):
            rows = p * sh + dh * np.arange(2)
            cols = q * sw + dw * np.arange(3)
            win = xp[:, :, rows[:, None], cols[None, :]]
            want[:, :, p, q] = np.einsum("ncij,ocij->no", win, w)
    np.testing.assert_allclose(y, want, rtol=1e-4 if dtype == np.float32 else 1e-12,
                               atol=1e-4 if dtype == np.float32 else 1e-12)
    g = rng.standard_normal(y.shape).astype(dtype)
    assert C._saved(y, x, ((2, 3), geo["stride"], geo["padding"], geo["dilation"])) is not None
    fast = C._grad_w_rule(g, y, x, w, **geo)
    slow = C.conv2d_grad_w_p(x, g, ksize=(2, 3), **geo)
    assert fast.dtype == dtype
    np.testing.assert_array_equal(fast, slow)
    # Through the engine: the gradient of ⟨g, conv2d(x, w)⟩ in w.
    gw = ad.grad(lambda w: np.sum(C.conv2d_p(x, w, **geo) * g))(w)
    np.testing.assert_allclose(gw, slow, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_conv_saved_windows_answer_only_their_call_and_go_with_it():
    import gc

    from autodiff.ops import conv as C
    rng = np.random.default_rng(8)
    kw = dict(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1))
    geo = ((3, 3),) + tuple(kw.values())
    x, x2 = rng.standard_normal((2, 1, 6, 6)), rng.standard_normal((2, 1, 6, 6))
    w = rng.standard_normal((2, 1, 3, 3))
    y = C.conv2d_p(x, w, **kw)
    assert C._saved(y, x2, geo) is None                         # another input
    assert C._saved(y, x, ((3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1))) is None   # geometry
    assert C._saved(C.conv2d_p(x, w, **kw), x, geo) is not None  # its own call only
    assert C._saved(y.copy(), x, geo) is None
    n = len(C._SAVED)
    del y
    gc.collect()
    assert len(C._SAVED) == n - 1
    # A freed matrix is reused by the next call of its shape, and results stay right.
    for _ in range(3):
        x = rng.standard_normal((2, 1, 6, 6))
        g = rng.standard_normal((2, 2, 4, 4))
        y = C.conv2d_p(x, w, **kw)
        np.testing.assert_allclose(C._grad_w_rule(g, y, x, w, **kw),
                                   C._conv2d_grad_w(x, g, (3, 3), **kw), rtol=1e-12)
        del y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_net_step_gradients_match_torch_float32_and_repeated_steps(dtype):
    """Two training steps of a small conv net, one convolution grouped (the saved windows
    and reused buffers in play): losses and every gradient equal torch's from the same
    weights, in the weights' dtype."""
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(2, 4, 3, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 4, 2, padding=1, groups=2, dtype=dtype), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten())
    t = torch.nn
    theirs = t.Sequential(t.Conv2d(2, 4, 3), t.ReLU(), t.MaxPool2d(2),
                          t.Conv2d(4, 4, 2, padding=1, groups=2), t.ReLU(), t.MaxPool2d(2),
                          t.Flatten()).to(torch.float32 if dtype == np.float32
                                          else torch.float64)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            theirs.get_parameter(name).copy_(torch.from_numpy(np.asarray(p.value)))
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else TOL
    rng = np.random.default_rng(9)
    for step in range(2):
        x = rng.standard_normal((3, 2, 10, 9)).astype(dtype)
        r = rng.standard_normal((3, 16)).astype(dtype)
        loss = np.sum(ours(x) * r)
        loss.backward()
        tl = (theirs(torch.from_numpy(x)) * torch.from_numpy(r)).sum()
        tl.backward()
        np.testing.assert_allclose(np.asarray(loss.value), tl.item(), **tol)
        for name, p in ours.named_parameters():
            assert p.grad.dtype == dtype
            np.testing.assert_allclose(p.grad, theirs.get_parameter(name).grad.numpy(), **tol)
        ours.zero_grad()
        theirs.zero_grad()


POOLS = [
    dict(ksize=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False),
    dict(ksize=(2, 2), stride=(2, 2), padding=(1, 0), dilation=(1, 1), ceil_mode=True),
    dict(ksize=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2), ceil_mode=True),
    dict(ksize=(2, 3), stride=(3, 3), padding=(0, 1), dilation=(2, 1), ceil_mode=False),
]


# (the first-order fast path against the one-hot scatter, by blocks and against torch:
# tests/test_nn_conv_torch_parity.py)


def test_max_pool_reverse_with_a_nan_maximum_takes_the_general_path():
    from autodiff.ops import pooling as P
    geo = dict(ksize=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = np.nan
    ans = P.max_pool2d_p(x, **geo)
    g = np.ones(ans.shape)
    assert P._scatter_first(g, x, ans, **geo) is None
    got = P._max_pool_vjp(g, ans, x, **geo)
    want = P.pool_scatter_p(g, P._weights(x, ans, **geo), size=(4, 4), **geo)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[0, 0, :2, :2], [[1.0, 0.0], [0.0, 0.0]])  # the NaN
    assert got[0, 0, 3, 3] == 1.0


def test_max_pool_reverse_a_nan_window_and_a_tie_do_not_cancel():
    """Regression: a NaN window (no tap equals its maximum) and a tied window (two do)
    give as many mask hits as windows; the fast path must not take that for "no ties"."""
    from autodiff.ops import pooling as P
    x = np.array([[[[np.nan, 0.0, 1.0, 1.0]]]])
    geo = dict(ksize=(1, 2), stride=(1, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False)
    ans = P.max_pool2d_p(x, **geo)
    assert P._scatter_first(np.ones(ans.shape), x, ans, **geo) is None
    want = [[[[1.0, 0.0, 1.0, 0.0]]]]                 # the NaN, then the first of the tie
    _close(ad.grad(lambda v: np.sum(P.max_pool2d_p(v, **geo)))(x), want)
    _close(ad.grad(lambda v: np.sum(F.max_pool1d(v[0], 2)))(x), want)
    _close(ad.jacfwd(lambda v: np.sum(F.max_pool2d(v, (1, 2))))(x), want)
    xv = ad.Variable(x)
    np.sum(F.max_pool2d(xv, (1, 2))).backward()
    _close(xv.grad, want)


def test_conv_spare_buffers_never_alias_a_live_result():
    """Results computed with recycled buffers stay intact after later calls, and a second
    sweep over the same tape (its window matrix already handed back) is still right."""
    from autodiff.ops import conv as C
    rng = np.random.default_rng(11)
    kw = dict(stride=(1, 1), padding=((1, 1), (0, 1)), dilation=(1, 1))
    w = rng.standard_normal((3, 2, 3, 2)).astype(np.float32)
    gs = [rng.standard_normal((2, 3, 5, 6)).astype(np.float32) for _ in range(3)]
    outs = [C._conv2d_transpose_x(g, w, (5, 6), **kw) for g in gs]
    copies = [o.copy() for o in outs]
    for _ in range(2):
        [C._conv2d_transpose_x(g * 2, w, (5, 6), **kw) for g in gs]
    for o, c in zip(outs, copies):
        np.testing.assert_array_equal(o, c)
    x = ad.Variable(rng.standard_normal((2, 2, 5, 6)).astype(np.float32))
    wv = ad.Variable(w)
    loss = np.sum(C.conv2d(x, wv, padding=(1, 0)) ** 2)
    loss.backward(retain_graph=True)
    first = wv.grad.copy()
    wv.grad = None
    loss.backward()
    np.testing.assert_allclose(wv.grad, first, rtol=1e-6)


@pytest.mark.parametrize("geo", POOLS[:3], ids=range(3))
def test_max_pool_reverse_in_blocks_of_the_leading_axis(geo, monkeypatch):
    """The fast path walks the leading axis in blocks (here of one image each): the same
    result as the weighted scatter, ties in some blocks only, and a NaN in the last block
    still sends the whole call to the general path."""
    from autodiff.ops import pooling as P
    monkeypatch.setattr(P, "_BLOCK_BYTES", 1)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 2, 6, 7)).astype(np.float32)
    x[1] = np.maximum(x[1], 0)
    ans = P.max_pool2d_p(x, **geo)
    g = rng.standard_normal(ans.shape).astype(np.float32)
    want = P.pool_scatter_p(g, P._weights(x, ans, **geo), size=(6, 7), **geo)
    np.testing.assert_allclose(P._scatter_first(g, x, ans, **geo), want, rtol=1e-6)
    x[3, 1, 2, 2] = np.nan
    ans = P.max_pool2d_p(x, **geo)
    assert P._scatter_first(g, x, ans, **geo) is None


def test_conv_on_plain_arrays_keeps_no_window_matrix():
    """Inference on plain arrays records nothing, so outputs kept alive hold no windows."""
    from autodiff.ops import conv as C
    rng = np.random.default_rng(13)
    n = len(C._SAVED)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    kept = [F.conv2d(x, w, padding=1) for _ in range(3)]
    assert len(C._SAVED) == n
    np.testing.assert_allclose(kept[0], C.conv2d_p(x, w, stride=(1, 1),
                                                   padding=((1, 1), (1, 1)),
                                                   dilation=(1, 1)), rtol=1e-12)


@pytest.mark.parametrize("k,s,p,d,ceil", [((2, 1), (2, 1), (1, 0), (1, 1), False),
                                          ((1, 3), (1, 2), (0, 1), (1, 1), True),
                                          ((3, 3), (2, 2), (1, 1), (2, 1), False)])
def test_max_pool_forward_in_blocks_equals_a_window_loop(k, s, p, d, ceil, monkeypatch):
    """The separable, blocked forward against the plain window maximum (kernels with one
    row or one column included)."""
    from autodiff.ops import pooling as P
    from autodiff.ops.windows import geometry
    monkeypatch.setattr(P, "_BLOCK_BYTES", 1)
    x = np.random.default_rng(14).standard_normal((3, 2, 7, 8)).astype(np.float32)
    got = P._max_pool(x, k, s, p, d, ceil)
    out, pads = geometry((7, 8), k, s, p, d, ceil)
    xp = np.pad(x, ((0, 0), (0, 0)) + pads, constant_values=-np.inf)
    want = np.empty(x.shape[:2] + out, np.float32)
    for i in range(out[0]):
        for j in range(out[1]):
            win = xp[..., i * s[0]:i * s[0] + d[0] * (k[0] - 1) + 1:d[0],
                     j * s[1]:j * s[1] + d[1] * (k[1] - 1) + 1:d[1]]
            want[..., i, j] = win.max(axis=(-2, -1))
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float32
