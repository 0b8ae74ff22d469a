"""Regression tests for ``autodiff.nn`` defects that gave silently wrong results: gradient
clipping through a generator, float class labels, negative embedding indices, broadcasting
losses, float64 leaking into float32 models, and weight files that were trusted."""
import warnings
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

rng = np.random.default_rng(7)


def _torch():
    return pytest.importorskip("torch")


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _grad_norm(params):
    return float(np.sqrt(sum(np.sum(p.grad ** 2) for p in params)))


# ----- 1. clip_grad_norm_ / clip_grad_value_ / optimizers on generators ------------------

def _model_with_grads():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = rng.standard_normal((5, 3)) * 30
    F.mse_loss(model(x), np.full((5, 2), 50.0)).backward()
    return model


def test_clip_grad_norm_reads_a_generator_once():
    model = _model_with_grads()
    before = _grad_norm(model.parameters())
    assert before > 10
    total = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    close(total, before)
    close(_grad_norm(model.parameters()), 1.0, 1e-5)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = _torch()
    grads = [rng.standard_normal((3, 2)) * 5, rng.standard_normal(4), rng.standard_normal(())]
    ours = [nn.Parameter(np.zeros(np.shape(g))) for g in grads]
    theirs = [torch.zeros(np.shape(g), dtype=torch.float64, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(iter(ours), 0.5, norm_type=norm_type, foreach=None)
    total_t = torch.nn.utils.clip_grad_norm_(iter(theirs), 0.5, norm_type=norm_type)
    close(total, total_t.item())
    for p, q in zip(ours, theirs):
        close(p.grad, q.grad.numpy())


def test_clip_grad_norm_single_parameter_and_small_norms():
    torch = _torch()
    p = nn.Parameter(np.zeros(3))
    p.grad = np.array([3.0, 4.0, 0.0])
    q = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    q.grad = torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)
    close(nn.utils.clip_grad_norm_(p, 1.0), torch.nn.utils.clip_grad_norm_(q, 1.0).item())
    close(p.grad, q.grad.numpy())
    # Below max_norm: PyTorch multiplies by 1 (the coefficient is clamped), nothing changes.
    nn.utils.clip_grad_norm_(p, 10.0)
    close(p.grad, q.grad.numpy())
    p32 = nn.Parameter(np.zeros(2, np.float32))
    p32.grad = np.array([30.0, 40.0], np.float32)
    nn.utils.clip_grad_norm_([p32], 1.0)
    assert p32.grad.dtype == np.float32


def test_clip_grad_norm_nonfinite():
    torch = _torch()
    p = nn.Parameter(np.zeros(2))
    p.grad = np.array([np.inf, 1.0])
    q = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    q.grad = torch.tensor([np.inf, 1.0], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(q, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    close(p.grad, [np.inf, 1.0], 0)                      # left as it was
    # Without the error a NaN total scales to NaN, as PyTorch: the failure stays visible.
    p.grad = np.array([np.nan, 1.0])
    q.grad = torch.tensor([np.nan, 1.0], dtype=torch.float64)
    assert np.isnan(nn.utils.clip_grad_norm_(p, 1.0))
    assert np.isnan(torch.nn.utils.clip_grad_norm_(q, 1.0).item())
    assert np.all(np.isnan(p.grad)) and bool(torch.isnan(q.grad).all())


def test_clip_grad_value_matches_torch():
    torch = _torch()
    model = _model_with_grads()
    grads = [p.grad.copy() for p in model.parameters()]
    nn.utils.clip_grad_value_(model.parameters(), 0.3)
    for p, g in zip(model.parameters(), grads):
        t = torch.tensor(g)
        tp = torch.zeros_like(t, requires_grad=True)
        tp.grad = t
        torch.nn.utils.clip_grad_value_(tp, 0.3)
        close(p.grad, tp.grad.numpy())
    assert max(np.max(np.abs(p.grad)) for p in model.parameters()) == pytest.approx(0.3)


def test_optimizer_takes_a_generator_and_refuses_what_it_cannot_step():
    torch = _torch()
    model = _model_with_grads()
    before = [p.value.copy() for p in model.parameters()]
    grads = [p.grad.copy() for p in model.parameters()]
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    opt.step()
    for p, b, g in zip(model.parameters(), before, grads):
        close(p.value, b - 0.1 * g)
    p = nn.Parameter(np.zeros(2))
    with pytest.raises(TypeError):
        torch.optim.SGD(torch.zeros(2, requires_grad=True), lr=0.1)
    with pytest.raises(TypeError, match="SGD"):
        nn.optim.SGD(p, lr=0.1)                          # iterating it would give non-leaves
    with pytest.raises(TypeError, match="set"):
        nn.optim.Adam({p}, lr=0.1)
    with pytest.raises(TypeError, match="leaf"):
        nn.optim.Adam([p * 2.0], lr=0.1)
    with pytest.raises(TypeError, match="leaf"):
        nn.optim.Adam([np.zeros(2)], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        nn.optim.Adam([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        nn.optim.Adam([{"params": [p]}, {"params": [p], "lr": 0.2}], lr=0.1)
    q = nn.Parameter(np.zeros(2))
    opt = nn.optim.SGD([{"params": p}, {"params": (x for x in [q]), "lr": 0.5}], lr=0.1)
    assert [g["params"] for g in opt.param_groups] == [[p], [q]]


def test_shared_parameters_are_listed_and_stepped_once():
    torch = _torch()
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.Tanh(), lin)
    tlin = torch.nn.Linear(2, 2).double()
    with torch.no_grad():
        tlin.weight.copy_(torch.tensor(lin.weight.value))
        tlin.bias.copy_(torch.tensor(lin.bias.value))
    tmodel = torch.nn.Sequential(tlin, torch.nn.Tanh(), tlin)
    assert len(list(model.parameters())) == len(list(tmodel.parameters())) == 2
    assert list(model.state_dict()) == list(tmodel.state_dict())   # every name kept
    x = rng.standard_normal((3, 2))
    opt, topt = nn.optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(tmodel.parameters(),
                                                                          lr=0.1)
    np.sum(model(x) ** 2).backward()
    (tmodel(torch.tensor(x)) ** 2).sum().backward()
    opt.step()
    topt.step()
    close(lin.weight.value, tlin.weight.detach().numpy())
    close(lin.bias.value, tlin.bias.detach().numpy())


# ----- 2. cross_entropy targets ----------------------------------------------------------

def test_cross_entropy_refuses_float_class_labels():
    torch = _torch()
    x = rng.standard_normal((3, 3))                     # N == C: the labels would broadcast
    y = np.array([0, 2, 1])
    with pytest.raises(RuntimeError):
        torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(y).double())
    with pytest.raises(ValueError, match="cross_entropy.*integers"):
        F.cross_entropy(x, y.astype(float))
    with pytest.raises(ValueError, match="cross_entropy"):
        F.cross_entropy(x[0], np.array(1.0))
    with pytest.raises(ValueError, match="cross_entropy"):
        F.cross_entropy(x, rng.random((3, 4)))
    close(F.cross_entropy(x, y), torch.nn.functional.cross_entropy(torch.tensor(x),
                                                                    torch.tensor(y)).item())
    # Probabilities with the input's shape stay accepted.
    p = rng.random((3, 3))
    p /= p.sum(1, keepdims=True)
    close(F.cross_entropy(x, p), torch.nn.functional.cross_entropy(torch.tensor(x),
                                                                    torch.tensor(p)).item())


def test_class_labels_out_of_range_are_refused():
    torch = _torch()
    x = rng.standard_normal((4, 3))
    for bad in ([0, 1, 3, 1], [0, -1, 2, 1]):
        with pytest.raises(IndexError):
            torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(bad))
        with pytest.raises(ValueError, match="cross_entropy: labels"):
            F.cross_entropy(x, np.array(bad))
        with pytest.raises(ValueError, match="nll_loss: labels"):
            F.nll_loss(F.log_softmax(x, 1), np.array(bad))
    with pytest.raises(ValueError, match="nll_loss: labels"):
        F.nll_loss(F.log_softmax(x, 1), np.array([0, 1, -100, 1]), ignore_index=2)


IGNORE = [({}, [0, -100, 2, 1]), ({"ignore_index": 1}, [0, 1, 2, 1]),
          ({"weight": np.array([0.5, 2.0, 1.5])}, [0, -100, 2, 1]),
          ({"label_smoothing": 0.2}, [0, -100, 2, 1]),
          ({"label_smoothing": 0.1, "weight": np.array([0.5, 2.0, 1.5])}, [2, -100, 2, 1]),
          ({"reduction": "sum"}, [0, -100, 2, 1]), ({"reduction": "none"}, [0, -100, 2, 1])]


@pytest.mark.parametrize("kw,labels", IGNORE, ids=[str(sorted(k)) for k, _ in IGNORE])
def test_ignore_index_matches_torch(kw, labels):
    torch = _torch()
    x = rng.standard_normal((4, 3))
    g = None
    for fn, tfn, take_log in ((F.cross_entropy, torch.nn.functional.cross_entropy, False),
                              (F.nll_loss, torch.nn.functional.nll_loss, True)):
        if take_log and "label_smoothing" in kw:
            continue
        xv = ad.Variable(x)
        loss = fn(F.log_softmax(xv, 1) if take_log else xv, np.array(labels), **kw)
        g = rng.standard_normal(np.shape(loss.value))
        np.sum(loss * g).backward()
        tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        xt = torch.tensor(x, requires_grad=True)
        lt = tfn(torch.log_softmax(xt, 1) if take_log else xt, torch.tensor(labels), **tkw)
        (lt * torch.tensor(g)).sum().backward()
        close(loss.value, lt.detach().numpy())
        close(xv.grad, xt.grad.numpy())


def test_ignore_index_on_spatial_targets_second_order():
    x = rng.standard_normal((2, 3, 2, 2))
    labels = np.array([[[0, -100], [2, 1]], [[1, 1], [-100, 0]]])
    ad.check_grads(lambda z: F.cross_entropy(z, labels, label_smoothing=0.1), (x,), order=2)


# ----- 3. Embedding indices --------------------------------------------------------------

def test_embedding_refuses_out_of_range_and_non_integer_indices():
    torch = _torch()
    ours, theirs = nn.Embedding(5, 2), torch.nn.Embedding(5, 2)
    for bad in ([-1], [0, 5], [[1, 2], [7, 0]]):
        with pytest.raises(IndexError, match="out of range"):
            theirs(torch.tensor(bad))
        with pytest.raises(IndexError, match="out of range"):
            ours(np.array(bad))
    with pytest.raises(IndexError):
        ours(np.array([5], np.uint8))
    with pytest.raises(TypeError, match="integer"):
        ours(np.array([1.0]))
    with pytest.raises(TypeError, match="integer"):
        ours(np.array([True]))
    close(ours(np.array([4, 0])).value, ours.weight.value[[4, 0]], 0)
    assert ours(np.zeros((0,), int)).shape == (0, 2)


# ----- 4. Loss sizes ---------------------------------------------------------------------

REGRESSION = ["mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss"]


@pytest.mark.parametrize("name", REGRESSION)
def test_regression_losses_warn_on_broadcasting_targets(name):
    torch = _torch()
    x, t = rng.standard_normal((4, 1)), rng.standard_normal(4)
    with pytest.warns(UserWarning, match="different to the input size"):
        lt = getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(t))
    with pytest.warns(UserWarning, match=f"{name}.*different to the input size.*broadcasting"):
        loss = getattr(F, name)(x, t)
    close(loss, lt.item())                      # the same (broadcast) number, but warned
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(F, name)(x, t[:, None])         # same size: no warning


@pytest.mark.parametrize("kw", [{}, {"beta": 0.4}, {"reduction": "none", "beta": 2.0}])
def test_smooth_l1_matches_torch(kw):
    torch = _torch()
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    xv = ad.Variable(x)
    loss = F.smooth_l1_loss(xv, t, **kw)
    np.sum(loss).backward()
    xt = torch.tensor(x, requires_grad=True)
    lt = torch.nn.functional.smooth_l1_loss(xt, torch.tensor(t), **kw)
    lt.sum().backward()
    close(loss.value, lt.detach().numpy())
    close(xv.grad, xt.grad.numpy())


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_binary_cross_entropy_refuses_other_sizes(name):
    torch = _torch()
    for xs, ts in (((4, 1), (4,)), ((4, 3), (3,))):
        x, t = rng.uniform(0.1, 0.9, xs), rng.uniform(0, 1, ts)
        with pytest.raises(ValueError):
            getattr(torch.nn.functional, name)(torch.tensor(x), torch.tensor(t))
        with pytest.raises(ValueError, match=f"{name}: target size"):
            getattr(F, name)(x, t)


@pytest.mark.parametrize("name", ["binary_cross_entropy", "binary_cross_entropy_with_logits"])
def test_binary_cross_entropy_weight_matches_torch(name):
    torch = _torch()
    x, t, w = rng.uniform(0.1, 0.9, (4, 3)), rng.uniform(0, 1, (4, 3)), rng.random(3)
    xv = ad.Variable(x)
    loss = getattr(F, name)(xv, t, weight=w)
    loss.backward()
    xt = torch.tensor(x, requires_grad=True)
    lt = getattr(torch.nn.functional, name)(xt, torch.tensor(t), weight=torch.tensor(w))
    lt.backward()
    close(loss.value, lt.item())
    close(xv.grad, xt.grad.numpy())


# ----- 5. float32 stays float32 ----------------------------------------------------------

f32 = np.float32
LABELS = np.array([0, 2, 1, 1])
PROBS = rng.random((4, 3)).astype(f32)
W32 = np.array([1.0, 2.0, 0.5], f32)
FUNCTIONS = {
    "relu": F.relu, "leaky_relu": F.leaky_relu, "elu": F.elu,
    "elu_alpha": lambda x: F.elu(x, 0.4), "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, "tanh"), "tanh": F.tanh, "sigmoid": F.sigmoid,
    "softplus": F.softplus, "softplus_beta": lambda x: F.softplus(x, 2.0),
    "softmax": F.softmax, "log_softmax": F.log_softmax, "logsumexp": F.logsumexp,
    "dropout": lambda x: F.dropout(x, 0.3),
    "mse_loss": lambda x: F.mse_loss(x, PROBS), "l1_loss": lambda x: F.l1_loss(x, PROBS),
    "huber_loss": lambda x: F.huber_loss(x, PROBS, delta=0.5),
    "smooth_l1_loss": lambda x: F.smooth_l1_loss(x, PROBS, beta=0.5),
    "cross_entropy": lambda x: F.cross_entropy(x, LABELS),
    "cross_entropy_weight": lambda x: F.cross_entropy(x, LABELS, weight=W32),
    "cross_entropy_weight64": lambda x: F.cross_entropy(x, LABELS, weight=W32.astype(float)),
    "cross_entropy_probs": lambda x: F.cross_entropy(x, PROBS, label_smoothing=0.1),
    "nll_loss_weight": lambda x: F.nll_loss(x, LABELS, weight=W32.astype(float)),
    "bce": lambda x: F.binary_cross_entropy(F.sigmoid(x), PROBS),
    "bce_weight": lambda x: F.binary_cross_entropy(F.sigmoid(x), PROBS, weight=W32),
    "bce_logits": lambda x: F.binary_cross_entropy_with_logits(x, PROBS),
    "bce_logits_pos_weight": lambda x: F.binary_cross_entropy_with_logits(
        x, PROBS, pos_weight=W32.astype(float)),
}
POOLS = {
    "max_pool2d": lambda x: F.max_pool2d(x, 2),
    "max_pool2d_padded": lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False, ceil_mode=True),
    "max_pool1d": lambda x: F.max_pool1d(x[:, :, 0], 2),
    "avg_pool1d": lambda x: F.avg_pool1d(x[:, :, 0], 2),
    "MaxPool2d": nn.MaxPool2d(2), "AvgPool2d": nn.AvgPool2d(2),
    "MaxPool1d": lambda x: nn.MaxPool1d(3, 1, 1)(x[:, :, 0]),
    "AvgPool1d": lambda x: nn.AvgPool1d(2)(x[:, :, 0]),
}


def _assert_float32(fn, *params):
    out = fn(*params)
    assert out.dtype == f32
    (np.sum(out) if np.ndim(out.value) else out).backward()
    assert [p.grad.dtype for p in params] == [f32] * len(params)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float32_functions(name):
    _assert_float32(FUNCTIONS[name], nn.Parameter(rng.standard_normal((4, 3)).astype(f32)))


@pytest.mark.parametrize("name", list(POOLS))
def test_float32_pooling(name):
    _assert_float32(POOLS[name], nn.Parameter(rng.standard_normal((2, 3, 5, 5)).astype(f32)))


ACTIVATION_LAYERS = [nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Softplus,
                     nn.Softmax, nn.LogSoftmax, nn.Identity, nn.Flatten, nn.Dropout]


@pytest.mark.parametrize("cls", ACTIVATION_LAYERS, ids=lambda c: c.__name__)
def test_float32_activation_layers(cls):
    _assert_float32(cls(), nn.Parameter(rng.standard_normal((4, 3)).astype(f32)))


def test_float32_model_with_pooling_and_every_activation():
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=f32), nn.ELU(), nn.MaxPool2d(2),
                          nn.Softplus(), nn.Flatten(), nn.Linear(16, 3, dtype=f32), nn.GELU())
    x = rng.standard_normal((2, 2, 4, 4)).astype(f32)
    loss = F.cross_entropy(model(x), np.array([0, 2]), weight=np.array([1.0, 2.0, 3.0]))
    assert loss.dtype == f32
    loss.backward()
    assert all(p.grad.dtype == f32 for p in model.parameters())


def test_maximum_derivative_keeps_float32_in_both_modes():
    x = np.array([1.0, -2.0, 0.0], f32)
    for f in (lambda z: np.maximum(z, 0.0), lambda z: np.minimum(z, 0.0),
              lambda z: np.maximum(z, z[::-1])):
        assert ad.jvp(f, (x,), (np.ones_like(x),))[1].dtype == f32
        assert ad.jacrev(f)(x).dtype == f32
        v = ad.Variable(x)
        np.sum(f(v)).backward()
        assert v.grad.dtype == f32
    ad.check_grads(lambda z: np.maximum(z, 0.5 * z[::-1]) * z, (rng.standard_normal(4),),
                   order=2)


def test_float32_max_pool_gradient_matches_torch():
    torch = _torch()
    x = rng.standard_normal((1, 2, 6, 6)).astype(f32)
    xv = nn.Parameter(x)
    np.sum(F.max_pool2d(xv, 3, 2, 1) ** 2).backward()
    xt = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.max_pool2d(xt, 3, 2, 1) ** 2).sum().backward()
    assert xv.grad.dtype == f32
    close(xv.grad, xt.grad.numpy(), 1e-6)


# ----- 6. Weight files -------------------------------------------------------------------

def _npy_member(zf, name, header, data, compress=zipfile.ZIP_STORED):
    """A member ``name`` holding an .npy header (dict) written by hand and raw ``data``."""
    import io
    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, header)
    zf.writestr(zipfile.ZipInfo(name), buf.getvalue() + data, compress_type=compress)


def _hand_made(path, header, data, compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w") as zf:
        _npy_member(zf, "ok.npy", {"descr": "<f8", "fortran_order": False, "shape": (2,)},
                    np.arange(2.0).tobytes())
        _npy_member(zf, "bad.npy", header, data, compress)
    return path


def test_load_refuses_a_plain_npy_file(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros(3))
    with pytest.raises(ValueError, match="weights.npy.*single .npy array"):
        nn.load(path)


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_load_refuses_a_huge_declared_shape_before_allocating(tmp_path, compress):
    path = _hand_made(tmp_path / "huge.npz",
                      {"descr": "<f8", "fortran_order": False, "shape": (10 ** 12,)},
                      np.zeros(1).tobytes(), compress)
    with pytest.raises(ValueError, match=r"huge.npz.*'bad'.*\(1000000000000,\)"):
        nn.load(path)


@pytest.mark.parametrize("compress", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_load_refuses_a_dtype_that_disagrees_with_the_data(tmp_path, compress):
    # The header says 3 float64 (24 bytes); the data is 3 float32 (12 bytes).
    path = _hand_made(tmp_path / "mixed.npz",
                      {"descr": "<f8", "fortran_order": False, "shape": (3,)},
                      np.ones(3, np.float32).tobytes(), compress)
    with pytest.raises(ValueError, match=r"mixed.npz.*'bad'.*24 bytes.*12 bytes"):
        nn.load(path)


def test_load_refuses_damaged_compression(tmp_path):
    path = tmp_path / "damaged.npz"
    np.savez_compressed(path, w=rng.standard_normal(2000), b=np.zeros(3))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("w.npy")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + info.compress_size // 3, start + info.compress_size // 3 + 40):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="damaged.npz.*'w'"):
        nn.load(path)


def test_load_refuses_a_bad_checksum(tmp_path):
    path = tmp_path / "crc.npz"
    np.savez(path, w=np.arange(4.0))
    raw = bytearray(path.read_bytes())
    i = raw.find(np.arange(4.0).tobytes())
    raw[i + 9] ^= 1                                       # a data byte; the CRC now disagrees
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="crc.npz.*'w'.*CRC"):
        nn.load(path)


@pytest.mark.parametrize("array,what", [
    (np.array(["a", "bc"]), "string"), (np.array([b"a"]), "bytes"),
    (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime"),
    (np.array([1], dtype="timedelta64[s]"), "timedelta"),
    (np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")]), "structured"),
    (np.zeros((2,), dtype=("<f8", (3,))), "float"),       # a subarray dtype unpacks to float
    (np.array([1 + 2j]), "complex"), (np.zeros(2, dtype=np.complex64), "complex"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_load_refuses_dtypes_a_state_dict_cannot_hold(tmp_path, array, what):
    path = tmp_path / "odd.npz"
    np.savez(path, ok=np.zeros(2), bad=array)
    if array.dtype.kind == "f":                           # np.savez made it (2, 3) float64
        assert set(nn.load(path)) == {"ok", "bad"}
        return
    with pytest.raises(ValueError, match=f"odd.npz.*'bad'.*{what}"):
        nn.load(path)
    with pytest.raises(TypeError, match=f"nn.save: 'bad'.*{what}"):
        nn.save({"bad": array}, tmp_path / "out.npz")


def test_load_refuses_object_arrays_without_unpickling(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.zeros(2), obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="evil.npz.*'obj'.*object.*refused"):
        nn.load(path)
    with pytest.raises(TypeError, match="nn.save: 'obj'.*object"):
        nn.save({"obj": np.array([None])}, tmp_path / "out.npz")
    # A hand-written structured header holding an object field is refused as well.
    path = _hand_made(tmp_path / "rec.npz",
                      {"descr": [("a", "|O")], "fortran_order": False, "shape": (1,)},
                      b"\0" * 8)
    with pytest.raises(ValueError, match="rec.npz.*'bad'.*object"):
        nn.load(path)


def test_load_refuses_duplicate_and_foreign_members(tmp_path):
    path = tmp_path / "dup.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # zipfile's "Duplicate name"
        with zipfile.ZipFile(path, "w") as zf:
            for v in (1.0, 2.0):
                _npy_member(zf, "w.npy", {"descr": "<f8", "fortran_order": False,
                                          "shape": ()}, np.float64(v).tobytes())
    with pytest.raises(ValueError, match="dup.npz.*'w.npy'.*more than once"):
        nn.load(path)
    path = tmp_path / "foreign.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="foreign.npz.*'readme.txt'"):
        nn.load(path)
    path = tmp_path / "noheader.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", b"not an npy header at all")
    with pytest.raises(ValueError, match="noheader.npz.*'w'"):
        nn.load(path)


def test_save_load_round_trip_every_kept_dtype(tmp_path):
    sd = {"b": np.array([True, False]), "i8": np.arange(3, dtype=np.int8),
          "u64": np.array([2 ** 63], np.uint64), "f16": np.ones(2, np.float16),
          "f32": rng.standard_normal((2, 3)).astype(f32), "f64": rng.standard_normal(4),
          "scalar": np.array(3.5), "empty": np.zeros((0, 3)),
          "fortran": np.asfortranarray(rng.standard_normal((3, 2))),
          "big_endian": np.arange(3.0).astype(">f8"),
          "file": np.zeros(1), "allow_pickle": np.ones(1),  # np.savez's own argument names
          "param": nn.Parameter(np.ones(2))}
    path = tmp_path / "all.npz"
    nn.save(sd, path)
    back = nn.load(path)
    assert list(back) == list(sd)
    for k, v in sd.items():
        v = np.asarray(getattr(v, "value", v))
        assert back[k].dtype == v.dtype.newbyteorder("="), k
        assert back[k].dtype.isnative
        np.testing.assert_array_equal(back[k], v)
    # np.load reads the same file.
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["fortran"], sd["fortran"])
    # and a file from np.savez_compressed loads too.
    np.savez_compressed(tmp_path / "c.npz", w=sd["f64"])
    np.testing.assert_array_equal(nn.load(tmp_path / "c.npz")["w"], sd["f64"])
