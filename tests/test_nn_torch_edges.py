"""PyTorch's answers at the edges a ported program meets: bounds of clamp-like activations,
saturated probabilities in binary cross-entropy, a batch of ignored targets, softmax
without ``dim``, and the Module/state-dict/tensor-method surface found different by
running torch programs side by side. Each against torch 2.13 in float64."""
import warnings

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

torch = pytest.importorskip("torch")
from test_nn_torch_parity import close, run_both  # noqa: E402

TF = torch.nn.functional


# ----- derivatives at the bounds ---------------------------------------------------------
BOUNDS = np.array([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0, 6.0, 7.0])


@pytest.mark.parametrize("ours, theirs", [
    (F.relu6, TF.relu6),
    (F.hardtanh, TF.hardtanh),
    (lambda x: F.hardtanh(x, 0.0, 6.0), lambda x: TF.hardtanh(x, 0.0, 6.0)),
    (lambda x: x.clamp(0, 1), lambda x: x.clamp(0, 1)),
    (lambda x: x.clamp(min=0), lambda x: x.clamp(min=0)),
    (lambda x: x.clamp(max=1.0), lambda x: x.clamp(max=1.0)),
    (lambda x: x.clamp_min(0.0), lambda x: x.clamp_min(0.0)),
    (lambda x: x.clamp_max(6.0), lambda x: x.clamp_max(6.0)),
    (lambda x: x.clamp(1.0, 0.0), lambda x: x.clamp(1.0, 0.0)),     # min > max: all max
], ids=["relu6", "hardtanh", "hardtanh-0-6", "clamp", "clamp-min", "clamp-max",
        "clamp_min", "clamp_max", "clamp-crossed"])
def test_derivative_at_the_bounds_is_pytorchs(ours, theirs):
    run_both(ours, theirs, [BOUNDS])
    modules = {F.relu6: nn.ReLU6(), F.hardtanh: nn.Hardtanh()}
    if ours in modules:
        run_both(modules[ours], {F.relu6: torch.nn.ReLU6(),
                                 F.hardtanh: torch.nn.Hardtanh()}[ours], [BOUNDS])


def test_clamp_bounds_in_every_mode_and_in_place():
    x = np.array([0.0, 0.25, 1.0, 2.0])
    close(np.diag(ad.jacfwd(lambda v: v.clamp(0, 1))(x)), [1, 1, 1, 0])
    close(np.diag(ad.jacrev(lambda v: v.clamp(0, 1))(x)), [1, 1, 1, 0])
    close(ad.jit(ad.grad(lambda v: np.sum(F.relu6(v * 6.0))))(x), [0, 6, 0, 0])
    close(ad.jit(ad.grad(lambda v: np.sum(F.relu6(v * 6.0))))(x / 2), [0, 6, 6, 0])
    lo = ad.Variable(np.array([0.0, 1.0]))          # a tracked bound gets the clamped part
    ad.Variable(np.array([-1.0, 2.0])).clamp(lo, 1.5).sum().backward()
    close(lo.grad, [1.0, 0.0])
    w = ad.Variable(np.array([-2.0, 0.5, 3.0]))
    with nn.no_grad():
        w.clamp_(-1, 1)
    close(w.value, [-1.0, 0.5, 1.0])
    close(ad.grad(lambda v: np.clip(v, 0.0, 1.0))(0.0), 0.5)        # np.clip keeps JAX's ½


# ----- binary cross-entropy at p = 0 and 1 --------------------------------------------------
def test_binary_cross_entropy_derivative_is_finite_at_saturated_probabilities():
    p = np.array([0.0, 1.0, 0.5, 0.0, 1.0, 0.3])
    y = np.array([0.3, 0.6, 0.2, 0.0, 1.0, 1.0])
    # torch's ε is float32(1e-12) in its float64 kernel too: its ±3e11 differ from our
    # exact 1e-12's by 4e-9 relative (docs/pytorch_porting.md lists its float32 constants)
    for reduction in ("none", "mean", "sum"):
        run_both(lambda a, b: F.binary_cross_entropy(a, b, reduction=reduction),
                 lambda a, b: TF.binary_cross_entropy(a, b, reduction=reduction),
                 [p, y], const=(1,), tol=1e-8)
    w = np.array([1.0, 2.0, 0.5, 1.0, 1.0, 3.0])
    run_both(nn.BCELoss(weight=w), torch.nn.BCELoss(weight=torch.tensor(w)), [p, y],
             const=(1,), tol=1e-8)
    run_both(lambda a, b: F.binary_cross_entropy(a, b), lambda a, b: TF.binary_cross_entropy(
        a, b), [p[2:4], y[2:4]], const=(1,), tol=1e-12)
    # a saturated sigmoid in training: finite gradients, so the step stays finite
    logits = ad.Variable(np.array([40.0, -40.0, 0.0]))
    F.binary_cross_entropy(F.sigmoid(logits), np.array([0.0, 1.0, 1.0])).backward()
    assert np.all(np.isfinite(logits.grad))


def test_binary_cross_entropy_rule_in_both_modes_to_second_order():
    p, y = np.array([0.2, 0.7, 0.45]), np.array([0.1, 0.9, 1.0])
    ad.check_grads(lambda a, b: F.binary_cross_entropy(a, b), (p, y), order=2)
    g = ad.grad(lambda a: F.binary_cross_entropy(a, y, reduction="sum"))(p)
    close(g, (p - y) / (p * (1 - p)), 1e-12)
    close(ad.jit(ad.grad(lambda a: F.binary_cross_entropy(a, y)))(p),
          ad.grad(lambda a: F.binary_cross_entropy(a, y))(p), 1e-14)
    g32 = ad.grad(lambda a: F.binary_cross_entropy(a, y.astype(np.float32)))(
        p.astype(np.float32))
    assert g32.dtype == np.float32
    # the target's derivative is that of the loss as computed (logs clamped at -100)
    t = ad.Variable(np.array([0.3, 0.6]))
    F.binary_cross_entropy(np.array([0.0, 1.0]), t, reduction="sum").backward()
    close(t.grad, [100.0, -100.0])


# ----- every target ignored -----------------------------------------------------------------
@pytest.mark.parametrize("loss", ["cross_entropy", "cross_entropy_weighted", "nll_loss"])
def test_a_batch_of_ignored_targets_is_nan_with_zero_gradient(loss):
    x = np.random.default_rng(0).standard_normal((3, 4))
    t = np.array([-100, -100, -100])
    ours = {"cross_entropy": F.cross_entropy, "nll_loss": F.nll_loss,
            "cross_entropy_weighted": lambda a, b: F.cross_entropy(a, b, weight=np.ones(4))}
    theirs = {"cross_entropy": TF.cross_entropy, "nll_loss": TF.nll_loss,
              "cross_entropy_weighted": lambda a, b: TF.cross_entropy(
                  a, b, weight=torch.ones(4, dtype=torch.float64))}
    v, tv = ad.Variable(x), torch.tensor(x, requires_grad=True)
    out, tout = ours[loss](v, t), theirs[loss](tv, torch.tensor(t))
    assert np.isnan(out.value) and torch.isnan(tout)
    out.backward()
    tout.backward()
    close(v.grad, tv.grad.numpy(), 0)
    close(v.grad, np.zeros_like(x), 0)


def test_compiled_step_on_a_batch_of_ignored_targets_keeps_the_weights_finite():
    nn.init.manual_seed(0)
    model = nn.Linear(4, 3)
    step = nn.compile_step(model, nn.CrossEntropyLoss(), nn.optim.SGD(model.parameters(),
                                                                      lr=0.1))
    x = np.random.default_rng(1).standard_normal((3, 4))
    assert np.isfinite(step(x, np.array([0, 1, 2])))
    before = model.weight.value.copy()
    assert np.isnan(step(x, np.array([-100, -100, -100])))       # the replayed program
    close(model.weight.value, before, 0)                          # a zero gradient
    assert np.isfinite(step(x, np.array([0, -100, 2])))


# ----- softmax without dim ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4), (2, 3, 4, 2)])
def test_softmax_without_dim_takes_pytorchs_implicit_axis(name, shape):
    x = np.random.default_rng(2).standard_normal(shape)
    mod = {"softmax": nn.Softmax, "log_softmax": nn.LogSoftmax, "softmin": nn.Softmin}[name]
    tmod = {"softmax": torch.nn.Softmax, "log_softmax": torch.nn.LogSoftmax,
            "softmin": torch.nn.Softmin}[name]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_both(mod(), tmod(), [x])
        run_both(getattr(F, name), getattr(TF, name), [x])
    ours = [w for w in caught if "autodiff" in w.filename or "nn" in w.filename]
    assert any("Implicit dimension choice" in str(w.message) for w in ours)
    assert repr(mod()) == repr(tmod()) == f"{mod.__name__}(dim=None)"
    run_both(lambda a: getattr(F, name)(a, dim=-1), lambda a: getattr(TF, name)(a, dim=-1),
             [x])


# ----- Module and state dicts ---------------------------------------------------------------
def _pair():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    ours = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    return ours, theirs


def test_state_dict_prefix_and_destination_as_torch():
    ours, theirs = _pair()
    assert list(ours.state_dict(prefix="enc.")) == list(theirs.state_dict(prefix="enc."))
    dest = {"other": 1}
    assert ours.state_dict(destination=dest) is dest and "0.weight" in dest


def test_load_state_dict_returns_and_raises_as_torch():
    ours, theirs = _pair()
    sd = ours.state_dict()
    sd.pop("0.bias")
    sd["extra"] = np.ones(1)
    tsd = {k: torch.tensor(np.asarray(v)) for k, v in sd.items()}
    r, tr = ours.load_state_dict(sd, strict=False), theirs.load_state_dict(tsd, strict=False)
    assert (r.missing_keys, r.unexpected_keys) == (tr.missing_keys, tr.unexpected_keys)
    assert repr(ours.load_state_dict(ours.state_dict())) == \
        repr(theirs.load_state_dict(theirs.state_dict())) == "<All keys matched successfully>"
    with pytest.raises(RuntimeError) as e:
        ours.load_state_dict(sd)
    with pytest.raises(RuntimeError) as te:
        theirs.load_state_dict(tsd)
    assert str(e.value).split("\n")[1:] == str(te.value).split("\n")[1:]
    assert isinstance(e.value, KeyError)                   # as before, for KeyError handlers
    bad = ours.state_dict()
    bad["0.weight"] = np.ones((3, 3))
    before = ours[0].bias.value.copy()
    with pytest.raises(RuntimeError, match="size mismatch for 0.weight") as e:
        ours.load_state_dict(bad)
    assert isinstance(e.value, ValueError)
    close(ours[0].bias.value, before, 0)                    # a failed load changes nothing


def test_module_to_a_dtype_and_module_list_editing():
    m = nn.Linear(2, 3)
    assert m.to(np.float32) is m and m.weight.value.dtype == np.float32
    m.to("cpu", np.float64)
    assert m.weight.value.dtype == np.float64
    ours = nn.ModuleList([nn.Linear(1, 1), nn.ReLU()])
    theirs = torch.nn.ModuleList([torch.nn.Linear(1, 1), torch.nn.ReLU()])
    ours.insert(1, nn.Tanh())
    theirs.insert(1, torch.nn.Tanh())
    names = lambda ml: [(k, type(v).__name__) for k, v in ml._modules.items()]   # noqa: E731
    assert names(ours) == names(theirs)
    assert type(ours.pop(0)).__name__ == type(theirs.pop(0)).__name__ == "Linear"
    del ours[0]
    del theirs[0]
    assert names(ours) == names(theirs)


def test_clip_grad_norm_returns_a_number_with_item():
    m = nn.Linear(3, 2)
    np.sum(m(np.ones((2, 3))) ** 2).backward()
    total = nn.utils.clip_grad_norm_(m.parameters(), 0.1)
    assert isinstance(total.item(), float) and float(total) == total.item() > 0.1
    assert nn.utils.clip_grad_norm_(nn.Linear(2, 2).parameters(), 1.0).item() == 0.0
    m32 = nn.Linear(3, 2, dtype=np.float32)
    np.sum(m32(np.ones((2, 3), np.float32)) ** 2).backward()
    assert nn.utils.clip_grad_norm_(m32.parameters(), 1.0).dtype == np.float32


# ----- tensor methods -----------------------------------------------------------------------
X = np.array([[3.0, 1.0, 2.0, 2.0], [0.0, 5.0, 5.0, 1.0]])


@pytest.mark.parametrize("name, ours, theirs", [
    ("median", lambda x: x.median(), lambda x: x.median()),
    ("median-dim", lambda x: x.median(1).values, lambda x: x.median(1).values),
    ("median-dim0-keepdim", lambda x: x.median(0, keepdim=True).values,
     lambda x: x.median(0, keepdim=True).values),
    ("mT", lambda x: x.mT * 1.0, lambda x: x.mT * 1.0),
    ("view_as", lambda x: x.view_as(np.zeros(8)), lambda x: x.view_as(torch.zeros(8))),
    ("reshape_as", lambda x: x.reshape_as(np.zeros((4, 2))),
     lambda x: x.reshape_as(torch.zeros(4, 2))),
    ("repeat_interleave", lambda x: x.repeat_interleave(2, dim=1),
     lambda x: x.repeat_interleave(2, dim=1)),
    ("repeat_interleave-flat", lambda x: x.repeat_interleave(3),
     lambda x: x.repeat_interleave(3)),
])
def test_tensor_methods_as_torch(name, ours, theirs):
    run_both(ours, theirs, [X])


def test_median_indices_and_argsort_as_torch():
    t = torch.tensor(X)
    v = ad.Variable(X)
    for dim in (0, 1):
        np.testing.assert_array_equal(v.median(dim).indices, t.median(dim).indices.numpy())
        for descending in (False, True):
            np.testing.assert_array_equal(
                v.argsort(dim=dim, descending=descending),
                t.argsort(dim=dim, descending=descending, stable=True).numpy())
    assert v.median().value == 2.0 and ad.Variable(np.full(3, 0.1)).median().value == 0.1
    row = np.array([[1.0, 3.0, 2.0]])
    for jac in (ad.jacfwd, ad.jacrev):
        close(jac(lambda x: x.median(1).values)(row), [[[0.0, 0.0, 1.0]]], 0)
    close(ad.jit(lambda x: x.median())(np.array([5.0, 3.0, 2.0])), 3.0, 0)
