"""autodiff.nn core: modules, layers and losses against PyTorch (float64, 1e-10),
optimisers against their update formulas, state dicts and files, functional_call."""
import math

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

rng = np.random.default_rng(0)


def _torch():
    return pytest.importorskip("torch")


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ----- Layers and activations against PyTorch -----------------------------------------

ACTIVATIONS = [("ReLU", {}), ("LeakyReLU", {"negative_slope": 0.2}), ("ELU", {"alpha": 0.7}),
               ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("Tanh", {}), ("Sigmoid", {}),
               ("Softplus", {"beta": 2.0}), ("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": 1})]


@pytest.mark.parametrize("name,kw", ACTIVATIONS, ids=[f"{a}{b}" for a, b in ACTIVATIONS])
def test_activation_matches_torch(name, kw):
    torch = _torch()
    x = rng.standard_normal((4, 5)) * 3
    w = rng.standard_normal((4, 5))
    ours = getattr(nn, name)(**kw)
    xv = ad.Variable(x)
    y = ours(xv)
    np.sum(y * w).backward()
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn, name)(**kw)(xt)
    (yt * torch.tensor(w)).sum().backward()
    close(y.value, yt.detach().numpy())
    close(xv.grad, xt.grad.numpy())


def _copy_params(ours, theirs):
    import torch
    with torch.no_grad():
        for name, p in ours.named_parameters():
            dict(theirs.named_parameters())[name].copy_(torch.tensor(p.value))


def _compare_module(ours, theirs, x, tol=1e-10):
    torch = _torch()
    _copy_params(ours, theirs)
    xv = ad.Variable(x)
    y = ours(xv)
    w = rng.standard_normal(np.shape(y.value))
    np.sum(y * w).backward()
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    (yt * torch.tensor(w)).sum().backward()
    close(y.value, yt.detach().numpy(), tol)
    close(xv.grad, xt.grad.numpy(), tol)
    tp = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        close(p.grad, tp[name].grad.numpy(), tol)


def test_linear_and_sequential_match_torch():
    torch = _torch()
    ours = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3), nn.Sigmoid())
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3),
                                 torch.nn.Sigmoid()).double()
    _compare_module(ours, theirs, rng.standard_normal((6, 5)))


def test_linear_without_bias_and_3d_input_match_torch():
    torch = _torch()
    _compare_module(nn.Linear(4, 2, bias=False),
                    torch.nn.Linear(4, 2, bias=False).double(), rng.standard_normal((3, 5, 4)))


def test_layernorm_matches_torch():
    torch = _torch()
    _compare_module(nn.LayerNorm((3, 4)), torch.nn.LayerNorm((3, 4)).double(),
                    rng.standard_normal((2, 3, 4)))


def test_embedding_matches_torch():
    torch = _torch()
    ours, theirs = nn.Embedding(10, 3), torch.nn.Embedding(10, 3).double()
    _copy_params(ours, theirs)
    idx = np.array([[1, 2, 2], [9, 0, 1]])
    y = ours(idx)
    w = rng.standard_normal(y.value.shape)
    np.sum(y * w).backward()
    yt = theirs(torch.tensor(idx))
    (yt * torch.tensor(w)).sum().backward()
    close(y.value, yt.detach().numpy())
    close(ours.weight.grad, theirs.weight.grad.numpy())       # repeated index 2 accumulates


def test_dropout_train_and_eval():
    nn.init.manual_seed(1)
    d = nn.Dropout(0.25)
    x = np.ones((200, 50))
    y = d(x)
    kept = y != 0
    assert 0.70 < kept.mean() < 0.80
    close(y[kept], 1.0 / 0.75)
    assert d.eval()(x) is x


def test_flatten():
    x = rng.standard_normal((2, 3, 4, 5))
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)


# ----- Losses ---------------------------------------------------------------------------

def _loss_pair(name, ours_kw=None, torch_kw=None, target="float", shape=(5, 4)):
    ours_kw = ours_kw or {}
    torch_kw = ours_kw if torch_kw is None else torch_kw
    x = rng.standard_normal(shape)
    if target == "float":
        t = rng.standard_normal(shape)
    elif target == "prob":
        t = rng.uniform(0.05, 0.95, shape)
    elif target == "int":
        t = rng.integers(0, shape[1], (shape[0],) + shape[2:])
    else:                                   # a distribution over classes (axis 1)
        t = rng.uniform(0.1, 1.0, shape)
        t /= t.sum(axis=1, keepdims=True)
    return x, t, ours_kw, torch_kw


LOSSES = [
    ("mse_loss", {}, "float"), ("mse_loss", {"reduction": "sum"}, "float"),
    ("l1_loss", {}, "float"), ("huber_loss", {"delta": 0.5}, "float"),
    ("huber_loss", {"reduction": "none"}, "float"),
    ("cross_entropy", {}, "int"), ("cross_entropy", {"label_smoothing": 0.1}, "int"),
    ("cross_entropy", {"reduction": "sum"}, "int"), ("cross_entropy", {}, "dist"),
    ("cross_entropy", {"label_smoothing": 0.2}, "dist"),
    ("cross_entropy", {"weight": np.array([1.0, 2.0, 0.5, 1.5])}, "int"),
    ("binary_cross_entropy_with_logits", {}, "prob"),
    ("binary_cross_entropy_with_logits", {"pos_weight": np.array([1.0, 2.0, 3.0, 0.5])}, "prob"),
]


@pytest.mark.parametrize("name,kw,target", LOSSES, ids=[f"{n}-{t}-{sorted(k)}" for n, k, t in LOSSES])
def test_loss_matches_torch(name, kw, target):
    torch = _torch()
    x, t, _, _ = _loss_pair(name, target=target)
    xv = ad.Variable(x)
    loss = getattr(F, name)(xv, t, **kw)
    g = rng.standard_normal(np.shape(loss.value))
    np.sum(loss * g).backward()
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    xt = torch.tensor(x, requires_grad=True)
    lt = getattr(torch.nn.functional, name)(xt, torch.tensor(t), **tkw)
    (lt * torch.tensor(g)).sum().backward()
    close(loss.value, lt.detach().numpy())
    close(xv.grad, xt.grad.numpy())


def test_nll_and_bce_match_torch():
    torch = _torch()
    logp = F.log_softmax(rng.standard_normal((6, 3)), dim=1)
    t = rng.integers(0, 3, 6)
    close(F.nll_loss(logp, t), torch.nn.functional.nll_loss(torch.tensor(logp), torch.tensor(t)))
    p, y = rng.uniform(0.05, 0.95, (4, 3)), rng.uniform(0, 1, (4, 3))
    pv = ad.Variable(p)
    loss = F.binary_cross_entropy(pv, y)
    loss.backward()
    pt = torch.tensor(p, requires_grad=True)
    lt = torch.nn.functional.binary_cross_entropy(pt, torch.tensor(y))
    lt.backward()
    close(loss.value, lt.item())
    close(pv.grad, pt.grad.numpy())


def test_losses_second_order():
    x = rng.standard_normal((3, 4))
    labels = np.array([0, 3, 1])
    ad.check_grads(lambda z: F.cross_entropy(z, labels, label_smoothing=0.1), (x,), order=2)
    ad.check_grads(lambda z: F.binary_cross_entropy_with_logits(z, np.abs(x) / 3), (x,), order=2)
    ad.check_grads(lambda z: F.huber_loss(z, 0.3 * x, delta=0.8), (x,), order=2)
    ad.check_grads(lambda z: F.softplus(z, beta=1.5) + F.gelu(z) + F.elu(z), (x,), order=2)


def test_stable_for_extreme_logits():
    x = np.array([[1000.0, -1000.0, 0.0]])
    xv = ad.Variable(x)
    loss = F.cross_entropy(xv, np.array([1]))
    loss.backward()
    assert np.isfinite(loss.value) and np.all(np.isfinite(xv.grad))
    close(loss.value, 2000.0)
    s = F.sigmoid(np.array([-800.0, 800.0]))
    close(s, [0.0, 1.0])
    assert np.isfinite(F.binary_cross_entropy_with_logits(np.array([800.0]), np.array([0.0])))


def test_integer_labels_are_checked():
    with pytest.raises(ValueError, match="labels"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="integer"):
        F.nll_loss(np.zeros((2, 3)), np.array([0.5, 1.0]))


# ----- Optimisers against their update formulas --------------------------------------

def _run(opt_cls, steps=5, **kw):
    """Minimise a quadratic with gradients from the tape; return the trajectory."""
    A = np.array([[3.0, 0.5], [0.5, 1.0]])
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = opt_cls([p], **kw)
    traj = []
    for _ in range(steps):
        opt.zero_grad()
        loss = 0.5 * (p @ (A @ p)) + np.sum(np.sin(p))
        loss.backward()
        opt.step()
        traj.append(p.value.copy())
    return np.array(traj), A


def _grad(p, A):
    return A @ p + np.cos(p)


def test_sgd_momentum_nesterov_weight_decay_formula():
    lr, mu, wd = 0.1, 0.9, 0.01
    traj, A = _run(nn.optim.SGD, lr=lr, momentum=mu, nesterov=True, weight_decay=wd)
    p, b = np.array([1.0, -2.0]), None
    for k in range(5):
        g = _grad(p, A) + wd * p
        b = g.copy() if b is None else mu * b + g
        p = p - lr * (g + mu * b)
        close(traj[k], p)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_formula(amsgrad):
    lr, b1, b2, eps = 0.05, 0.8, 0.95, 1e-8
    traj, A = _run(nn.optim.Adam, lr=lr, betas=(b1, b2), eps=eps, amsgrad=amsgrad)
    p, m, v, vmax = np.array([1.0, -2.0]), 0.0, 0.0, 0.0
    for t in range(1, 6):
        g = _grad(p, A)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        vmax = np.maximum(vmax, v)
        vv = vmax if amsgrad else v
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(vv / (1 - b2 ** t)) + eps)
        close(traj[t - 1], p)


def test_adamw_decouples_weight_decay():
    lr, wd = 0.05, 0.1
    traj, A = _run(nn.optim.AdamW, lr=lr, weight_decay=wd)
    p, m, v = np.array([1.0, -2.0]), 0.0, 0.0
    for t in range(1, 6):
        g = _grad(p, A)
        p = p * (1 - lr * wd)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        p = p - lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        close(traj[t - 1], p)


@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.5)])
def test_rmsprop_formula(centered, momentum):
    lr, a, eps = 0.01, 0.9, 1e-8
    traj, A = _run(nn.optim.RMSprop, lr=lr, alpha=a, centered=centered, momentum=momentum)
    p, v, ga, buf = np.array([1.0, -2.0]), 0.0, 0.0, 0.0
    for k in range(5):
        g = _grad(p, A)
        v = a * v + (1 - a) * g * g
        ga = a * ga + (1 - a) * g
        avg = np.sqrt(v - ga * ga if centered else v) + eps
        if momentum:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
        close(traj[k], p)


def test_adagrad_formula():
    lr, decay = 0.1, 0.05
    traj, A = _run(nn.optim.Adagrad, lr=lr, lr_decay=decay)
    p, s = np.array([1.0, -2.0]), 0.0
    for t in range(1, 6):
        g = _grad(p, A)
        s = s + g * g
        p = p - lr / (1 + (t - 1) * decay) * g / (np.sqrt(s) + 1e-10)
        close(traj[t - 1], p)


@pytest.mark.parametrize("name,kw", [("SGD", {"lr": 0.1, "momentum": 0.9}),
                                     ("Adam", {"lr": 0.01}), ("AdamW", {"lr": 0.01}),
                                     ("RMSprop", {"lr": 0.01, "centered": True}),
                                     ("Adagrad", {"lr": 0.1})])
def test_optimisers_match_torch(name, kw):
    torch = _torch()
    traj, A = _run(getattr(nn.optim, name), steps=6, **kw)
    pt = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, name)([pt], **kw)
    At = torch.tensor(A)
    for k in range(6):
        opt.zero_grad()
        (0.5 * pt @ (At @ pt) + torch.sin(pt).sum()).backward()
        opt.step()
        close(traj[k], pt.detach().numpy(), 1e-12)


def test_schedulers():
    p = nn.Parameter(np.zeros(1))
    opt = nn.optim.SGD([p], lr=1.0)
    step = nn.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(step.get_last_lr()[0])
        step.step()
    close(lrs, [1.0, 1.0, 0.5, 0.5, 0.25])
    opt = nn.optim.SGD([p], lr=2.0)
    cos = nn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.5)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        cos.step()
    close(seen, [0.5 + 1.5 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(5)])
    opt = nn.optim.SGD([p], lr=1.0)
    ex = nn.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
    ex.step()
    ex.step()
    close(ex.get_last_lr(), [0.81])


def test_clip_grad_norm():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    close(total, 5.0)
    close(np.sqrt(np.sum(a.grad ** 2) + np.sum(b.grad ** 2)), 1.0, 1e-6)
    close(a.grad / b.grad[0], [0.75, 0.0])


# ----- Initialisation ---------------------------------------------------------------------

def test_default_init_is_pytorch_and_seeded():
    nn.init.manual_seed(3)
    a = nn.Linear(100, 50)
    nn.init.manual_seed(3)
    b = nn.Linear(100, 50)
    close(a.weight.value, b.weight.value, 0)
    bound = 1 / math.sqrt(100)
    assert np.abs(a.weight.value).max() <= bound and np.abs(a.bias.value).max() <= bound
    assert np.abs(a.weight.value).max() > 0.95 * bound       # uniform over the whole range


def test_xavier_and_kaiming_statistics():
    g = np.random.default_rng(0)
    w = nn.Parameter(np.empty((400, 300)))
    nn.init.xavier_normal_(w, generator=g)
    assert abs(w.value.std() - math.sqrt(2 / 700)) < 0.02 * math.sqrt(2 / 700) * 5
    nn.init.kaiming_uniform_(w, nonlinearity="relu", generator=g)
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert np.abs(w.value).max() <= bound and abs(w.value.std() - bound / math.sqrt(3)) < 0.01
    nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu", generator=g)
    assert abs(w.value.std() - math.sqrt(2 / 400)) < 0.003
    nn.init.xavier_uniform_(w, gain=nn.init.calculate_gain("tanh"), generator=g)
    assert np.abs(w.value).max() <= 5 / 3 * math.sqrt(6 / 700)


# ----- Modules ----------------------------------------------------------------------------

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        self.head = nn.Linear(4, 2)
        self.scale = nn.Parameter(np.ones(2))
        self.note = "not a parameter"

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_module_registration_and_traversal():
    m = Block()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "head.weight", "head.bias"]
    assert [type(c).__name__ for c in m.children()] == ["Sequential", "Linear"]
    assert len(list(m.modules())) == 5
    assert isinstance(m.scale, nn.Parameter) and not isinstance(m.note, nn.Parameter)
    assert m.eval().training is False and m.body[0].training is False
    assert m.train().body[1].training is True
    assert "(head): Linear(in_features=4, out_features=2, bias=True)" in repr(m)


def test_zero_grad_and_accumulation():
    m = Block()
    x = rng.standard_normal((5, 3))
    np.sum(m(x)).backward()
    g1 = m.head.weight.grad.copy()
    np.sum(m(x)).backward()
    close(m.head.weight.grad, 2 * g1)
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())


def test_state_dict_round_trip_and_errors(tmp_path):
    a, b = Block(), Block()
    x = rng.standard_normal((2, 3))
    b.load_state_dict(a.state_dict())
    close(a(x).value, b(x).value, 0)
    path = tmp_path / "block.npz"
    nn.save(a.state_dict(), path)
    c = Block()
    c.load_state_dict(nn.load(path))
    close(a(x).value, c(x).value, 0)
    sd = a.state_dict()
    sd.pop("head.bias")
    with pytest.raises(KeyError, match="head.bias"):
        c.load_state_dict(sd)
    sd = a.state_dict()
    sd["extra.weight"] = np.zeros(1)
    with pytest.raises(KeyError, match="extra.weight"):
        c.load_state_dict(sd)
    sd = a.state_dict()
    sd["head.weight"] = np.zeros((3, 3))
    with pytest.raises(ValueError, match="head.weight"):
        c.load_state_dict(sd)


def test_bad_files_are_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="bad.npz"):
        nn.load(bad)
    evil = tmp_path / "evil.npz"
    np.savez(evil, obj=np.array([{"a": 1}], dtype=object))      # pickled content
    with pytest.raises(ValueError, match="refused"):
        nn.load(evil)
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "missing.npz")


# ----- Functional use and derivatives with respect to inputs ----------------------------

def test_functional_call_grad_matches_backward():
    m = Block()
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    params = {k: p.value for k, p in m.named_parameters()}

    def loss(params):
        return F.mse_loss(nn.functional_call(m, params, x), y)
    g = ad.grad(loss)(params)
    F.mse_loss(m(x), y).backward()
    for k, p in m.named_parameters():
        close(g[k], p.grad)
    assert isinstance(m.head.weight, nn.Parameter)            # restored afterwards


def test_second_derivative_of_network_wrt_input():
    """What physics-informed training needs: u''(x) of a network, to second order."""
    net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    u = lambda x: net(np.reshape(x, (1, 1)))[0, 0]             # noqa: E731
    d2 = ad.derivative(u, order=2)
    x0, h = 0.3, 1e-3
    fd = (u(x0 + h).value - 2 * u(x0).value + u(x0 - h).value) / h ** 2
    close(getattr(d2(x0), "value", d2(x0)), fd, 1e-5)
    # and its gradient with respect to the parameters (the PINN loss needs both)
    params = {k: p.value for k, p in net.named_parameters()}
    g = ad.grad(lambda p: ad.derivative(
        lambda x: nn.functional_call(net, p, np.reshape(x, (1, 1)))[0, 0], order=2)(x0) ** 2)(params)
    assert set(g) == set(params) and all(np.all(np.isfinite(v)) for v in g.values())


def test_dataloader_batches_and_seeded_shuffle():
    X, y = np.arange(10.0)[:, None], np.arange(10)
    batches = list(nn.DataLoader((X, y), batch_size=4))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert len(nn.DataLoader((X, y), batch_size=4, drop_last=True)) == 2
    a = [b[1].tolist() for b in nn.DataLoader((X, y), batch_size=3, shuffle=True, seed=5)]
    b = [b[1].tolist() for b in nn.DataLoader((X, y), batch_size=3, shuffle=True, seed=5)]
    assert a == b and sorted(sum(a, [])) == list(range(10)) and sum(a, []) != list(range(10))


def test_pinn_example_solves_poisson():
    """examples/pinn_poisson.py: u'' = -π² sin(πx), u(0) = u(1) = 0, fitted by a network
    whose loss holds its own second derivative with respect to the input."""
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "pinn_poisson.py"
    spec = importlib.util.spec_from_file_location("pinn_poisson", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.train(steps=1000) < 2e-3


def test_float32_model_stays_float32():
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8, dtype=np.float32), nn.Tanh(), nn.Dropout(0.1),
                          nn.Linear(8, 3, dtype=np.float32))
    x = np.ones((5, 4), np.float32)
    for loss_fn, target in [(F.cross_entropy, np.array([0, 2, 1, 1, 0])),
                            (F.mse_loss, np.zeros((5, 3), np.float32))]:
        model.zero_grad()
        loss = loss_fn(model(x), target)
        loss.backward()
        assert loss.value.dtype == np.float32, loss_fn.__name__
        assert all(p.grad.dtype == np.float32 for p in model.parameters()), loss_fn.__name__


# ----- buffers and the order of state_dict (PyTorch's) -----
def test_state_dict_order_is_pytorchs_module_by_module():
    """Each module's parameters, then its buffers, then its children's (the buffers all
    came last); code that zips two state dicts' values relies on it."""
    torch = _torch()

    def build(n):
        return n.Sequential(n.Linear(3, 4), n.BatchNorm1d(4), n.ReLU(),
                            n.Sequential(n.Linear(4, 2), n.BatchNorm1d(2)))
    ours, theirs = build(nn), build(torch.nn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    for (k, a), (k2, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert k == k2
        close(a, b.numpy())


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("count", np.zeros(1))
        self.register_buffer("scratch", np.ones(2), persistent=False)
        self.register_buffer("absent", None)
        self.lin = nn.Linear(2, 2)

    def forward(self, x):
        self.count = self.count + 1.0          # PyTorch's habit: assignment updates it
        return self.lin(x)


def test_assigning_a_buffer_updates_it():
    m = _Counting()
    m(np.ones((1, 2)))
    m(np.ones((1, 2)))
    assert list(m.state_dict()) == ["count", "lin.weight", "lin.bias"]
    close(m.state_dict()["count"], [2.0])
    assert [n for n, _ in m.named_buffers()] == ["count", "scratch"]
    m2 = _Counting()
    m2.load_state_dict(m.state_dict())         # strict: the non-persistent one not expected
    close(m2.count, [2.0])
    close(m2.scratch, [1.0, 1.0])


def test_register_buffer_checks_and_keep_vars():
    m = _Counting()
    with pytest.raises(KeyError):
        m.register_buffer("lin", np.zeros(1))          # a module's name
    with pytest.raises(KeyError):
        m.register_buffer("a.b", np.zeros(1))
    sd = m.state_dict(keep_vars=True)
    assert sd["lin.weight"] is m.lin.weight and sd["count"] is m.count
    assert len(list(m.buffers())) == 2


# ----- forward hooks and dotted lookups (PyTorch's) -----
def test_forward_hooks_as_pytorchs():
    torch = _torch()

    def build(n):
        return n.Sequential(n.Linear(3, 4), n.Tanh(), n.Linear(4, 2))
    ours, theirs = build(nn), build(torch.nn).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((5, 3))
    seen = {}
    handles = []
    for lib, model in (("ours", ours), ("torch", theirs)):
        handles += [
            model[0].register_forward_hook(
                lambda m, a, out, lib=lib: seen.__setitem__(lib, out)),
            model[2].register_forward_pre_hook(lambda m, a: (2.0 * a[0],)),
            model[2].register_forward_hook(lambda m, a, out: out - 1.0)]
    y = ours(ad.Variable(x))
    ty = theirs(torch.tensor(x, requires_grad=True))
    close(y.value, ty.detach().numpy())
    close(seen["ours"].value, seen["torch"].detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    close(ours[0].weight.grad, theirs[0].weight.grad.numpy())
    for h in handles:
        h.remove()
    close(ours(x).value, theirs(torch.tensor(x)).detach().numpy())   # hooks gone
    assert ours.get_submodule("2") is ours[2]
    assert ours.get_parameter("0.weight") is ours[0].weight
    with pytest.raises(AttributeError):
        ours.get_submodule("5")


# ----- the other initialisers of torch.nn.init -----
@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (3, 2, 3, 3)])
def test_orthogonal_init(shape):
    w = nn.Parameter(np.zeros(shape))
    nn.init.orthogonal_(w, gain=2.0, generator=np.random.default_rng(0))
    m = w.value.reshape(shape[0], -1)
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m
    close(gram, 4.0 * np.eye(small), 1e-12)


def test_trunc_normal_eye_dirac_as_torchs():
    torch = _torch()
    w = nn.Parameter(np.zeros(200_000))
    nn.init.trunc_normal_(w, mean=0.5, std=1.0, a=0.0, b=1.0,
                          generator=np.random.default_rng(0))
    assert w.value.min() >= 0.0 and w.value.max() <= 1.0
    # the truncated normal's moments: mean 0.5 (symmetric), std 0.2841 (torch agrees)
    t = torch.nn.init.trunc_normal_(torch.empty(200_000, dtype=torch.float64), 0.5, 1.0, 0.0, 1.0)
    assert abs(w.value.mean() - 0.5) < 3e-3 and abs(w.value.std() - float(t.std())) < 3e-3
    for shape, f, args in [((3, 5), "eye_", ()), ((4, 2, 3), "dirac_", ()),
                           ((4, 4, 3, 3), "dirac_", (2,)), ((2, 3, 3, 3, 3), "dirac_", ())]:
        w = nn.Parameter(np.ones(shape))
        getattr(nn.init, f)(w, *args)
        t = getattr(torch.nn.init, f)(torch.ones(shape, dtype=torch.float64), *args)
        close(w.value, t.numpy())


def test_repr_is_pytorchs_layout():
    """Nested containers print as PyTorch's (a module with sub-modules and its own extra
    text put the text on a line of its own; it ran into the opening parenthesis)."""
    torch = _torch()

    def build(n):
        return n.Sequential(n.Linear(2, 3), n.ReLU(), n.Sequential(n.Tanh()),
                            n.LSTM(10, 20, batch_first=True),
                            n.ModuleList([n.Linear(1, 1)]), n.Sequential())
    assert repr(build(nn)) == repr(build(torch.nn))


LEAF_REPRS = [("Dropout", (), {}), ("Dropout", (0.2,), {}), ("LayerNorm", (4,), {}),
              ("LayerNorm", (4,), {"bias": False}),
              ("LayerNorm", ((2, 3),), {"elementwise_affine": False}),
              ("GELU", (), {}), ("GELU", (), {"approximate": "tanh"}), ("Softplus", (), {}),
              ("Softplus", (2.0, 5.0), {}), ("Softshrink", (), {}), ("Hardshrink", (0.3,), {}),
              ("CosineSimilarity", (), {}), ("PairwiseDistance", (), {}), ("ELU", (), {}),
              ("LeakyReLU", (0.2,), {}), ("Hardtanh", (), {}), ("Softmax", (1,), {}),
              ("CELU", (), {}), ("PReLU", (3,), {}), ("Threshold", (0.1, 2.0), {}),
              ("SELU", (), {}), ("GLU", (), {}), ("RReLU", (), {}), ("Embedding", (5, 3), {}),
              ("Linear", (2, 3), {}), ("Flatten", (), {}), ("Unflatten", (1, (2, 2)), {}),
              ("MSELoss", (), {}), ("CrossEntropyLoss", (), {})]


@pytest.mark.parametrize("name,args,kw", LEAF_REPRS,
                         ids=[f"{n}{a}{k}" for n, a, k in LEAF_REPRS])
def test_leaf_module_repr_is_pytorchs(name, args, kw):
    torch = _torch()
    assert repr(getattr(nn, name)(*args, **kw)) == repr(getattr(torch.nn, name)(*args, **kw))
