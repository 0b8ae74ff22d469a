"""PyTorch's eager habits on the eager tape (API.md, autodiff.nn): explicit detaches, grad
mode, torch-named tensor methods; and the refusals that stay inside transforms."""
import threading

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn

torch = pytest.importorskip("torch")


def close(a, b, tol=1e-12):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# ----- explicit detaches in eager mode -----

def test_item_tolist_of_a_training_loss():
    w = nn.Parameter(np.array([1.0, -2.0, 0.5]))
    loss = (w * w).sum()
    assert isinstance(loss.item(), float) and loss.item() == 5.25
    assert loss.tolist() == 5.25
    assert w.tolist() == [1.0, -2.0, 0.5]
    loss.backward()                     # item() recorded nothing that breaks backward
    close(w.grad, 2 * w.value)
    with pytest.raises(ValueError):     # several elements (PyTorch: RuntimeError)
        w.item()
    with pytest.raises(RuntimeError):
        w.item()


def test_numpy_refuses_while_requiring_grad_as_torch():
    w = nn.Parameter(np.ones(2))
    t = torch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError):
        t.numpy()
    with pytest.raises(RuntimeError, match="detach"):
        w.numpy()
    a = w.detach().numpy()
    close(a, [1.0, 1.0])
    with pytest.raises(ValueError):     # read-only: the records share the array
        a[0] = 3.0
    close(w.numpy(force=True), [1.0, 1.0])


def test_detach_cuts_the_graph():
    x = ad.Variable(np.array([1.0, 2.0]))
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    y = (x * d).sum()
    y.backward()
    close(x.grad, [1.0, 2.0])           # d counted as a constant
    assert d.grad is None


def test_conversions_of_non_requires_grad_eager_values_work():
    c = ad.Variable(np.array([1.5, 2.5]), requires_grad=False)
    close(np.asarray(c), [1.5, 2.5])
    assert float(c[0]) == 1.5 and int(c[1]) == 2
    with pytest.raises(TypeError, match="item"):
        float(ad.Variable(1.5))         # requires grad: explicit .item() needed
    with pytest.raises(TypeError):
        np.asarray(ad.Variable(np.ones(2)))


@pytest.mark.parametrize("what", ["item", "tolist", "numpy", "detach"])
def test_detaches_stay_refused_inside_transforms(what):
    def f(x):
        getattr(x * 2.0, what)()
        return x * 3.0

    with pytest.raises(TypeError):
        ad.grad(f)(2.0)
    with pytest.raises(TypeError):
        ad.jacrev(lambda v: f(v).sum())(np.ones(2))


def test_item_inside_grad_of_a_module_call():
    model = nn.Linear(2, 1)

    def loss(p, x):
        out = nn.functional_call(model, p, x).sum()
        out.item()
        return out

    params = dict(model.named_parameters())
    with pytest.raises(TypeError, match="item"):
        ad.grad(loss)({k: v.value for k, v in params.items()}, np.ones((3, 2)))


def test_eager_constant_item_inside_a_transform_is_a_constant():
    # A parameter not differentiated by the transform is eager data there.
    p = nn.Parameter(np.array(2.0))
    g = ad.grad(lambda x: x * p.item())(3.0)
    close(g, 2.0)


def test_requires_grad_flags():
    x = ad.Variable(np.ones(2), requires_grad=False)
    x.requires_grad_()
    assert x.requires_grad
    y = (x * 3.0).sum()
    with pytest.raises(RuntimeError):
        y.requires_grad = False          # only leaves
    y.backward()
    close(x.grad, [3.0, 3.0])


# ----- grad mode -----

def test_no_grad_records_nothing_and_updates_in_place():
    w = nn.Parameter(np.array([1.0, 2.0]))
    (w * w).sum().backward()
    with nn.no_grad():
        assert not nn.is_grad_enabled()
        y = w * 3.0
        w -= 0.25 * w.grad
        ref = w
    assert ref is w and w.requires_grad and w.is_leaf
    assert not y.requires_grad and y.is_leaf
    close(w.value, [0.5, 1.0])
    assert nn.is_grad_enabled()
    assert y.prim is None and y.parents is None          # no record behind it


def test_no_grad_as_decorator_and_nested_enable_grad():
    w = nn.Parameter(np.ones(2))

    @nn.no_grad()
    def f():
        a = w * 2.0
        with nn.enable_grad():
            b = w * 2.0
        return a, b

    @nn.no_grad
    def g():
        return w * 2.0

    a, b = f()
    assert not a.requires_grad and b.requires_grad
    assert not g().requires_grad
    assert f.__name__ == "f"
    assert (w * 2.0).requires_grad


def test_inference_mode_and_set_grad_enabled():
    w = nn.Parameter(np.ones(2))
    with nn.inference_mode():
        assert not (w + 1.0).requires_grad
    with nn.inference_mode(False):
        assert (w + 1.0).requires_grad
    with nn.set_grad_enabled(False):
        assert not (w + 1.0).requires_grad
    assert nn.is_grad_enabled()
    nn.set_grad_enabled(False)
    try:
        assert not (w + 1.0).requires_grad
    finally:
        nn.set_grad_enabled(True)
    assert (w + 1.0).requires_grad


def test_no_grad_belongs_to_the_thread():
    w = nn.Parameter(np.ones(2))
    seen = []
    inside, done = threading.Event(), threading.Event()

    def other():
        inside.wait()
        seen.append((w * 2.0).requires_grad)
        done.set()

    t = threading.Thread(target=other)
    t.start()
    with nn.no_grad():
        inside.set()
        done.wait()
    t.join()
    assert seen == [True]


def test_no_grad_does_not_touch_transforms():
    with nn.no_grad():
        close(ad.grad(lambda x: np.sin(x) * x)(0.3), np.cos(0.3) * 0.3 + np.sin(0.3))


def test_in_place_methods_as_torch():
    w = nn.Parameter(np.array([1.0, -2.0]))
    with pytest.raises(RuntimeError, match="in-place"):
        w.add_(1.0)
    with nn.no_grad():
        w.mul_(2.0).add_(np.array([1.0, 1.0]), alpha=0.5)
        close(w.value, [2.5, -3.5])
        w.clamp_(-1.0, 1.0)
        close(w.value, [1.0, -1.0])
        w[1] = 4.0
        close(w.value, [1.0, 4.0])
        w.copy_(np.array([7.0, 8.0]))
        close(w.value, [7.0, 8.0])
        w.zero_()
    close(w.value, [0.0, 0.0])
    assert w.requires_grad
    # a non-leaf in-place op is a recorded assignment: differentiable
    x = ad.Variable(np.array([1.0, 2.0]))
    y = x * 1.0
    y.mul_(x)
    y.sum().backward()
    close(x.grad, 2 * x.value)


def test_tutorial_manual_sgd_step_matches_torch():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)), rng.normal(size=(20, 1))
    model = nn.Linear(3, 1)
    ref = torch.nn.Linear(3, 1).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(model.weight.value))
        ref.bias.copy_(torch.tensor(model.bias.value))
    for _ in range(5):
        for m, x, y in ((model, X, Y), (ref, torch.tensor(X), torch.tensor(Y))):
            loss = ((m(x) - y) ** 2).mean()
            m.zero_grad()
            loss.backward()
            with (nn.no_grad() if m is model else torch.no_grad()):
                for p in m.parameters():
                    p -= 0.1 * p.grad
    close(model.weight.value, ref.weight.detach().numpy(), 1e-12)
    close(model.bias.value, ref.bias.detach().numpy(), 1e-12)


# ----- torch-named tensor methods -----

def _pair(shape=(3, 4), seed=0):
    a = np.random.default_rng(seed).normal(size=shape)
    return ad.Variable(a), torch.tensor(a, requires_grad=True)


def test_size_numel_dim_view():
    x, t = _pair((2, 3, 4))
    assert x.size == 24 and isinstance(x.size, int)       # NumPy's int
    assert x.size() == tuple(t.size()) and x.size(1) == t.size(1) and x.size(-1) == 4
    assert x.numel() == t.numel() and x.dim() == t.dim() == 3
    close(x.view(6, 4).value, t.view(6, 4).detach().numpy())
    close(x.view(-1).value, t.view(-1).detach().numpy())
    close(x.view((4, 6)).value, t.view((4, 6)).detach().numpy())
    v = x.view()                                    # NumPy's x.view(): a same-valued array
    close(v.value, x.value)
    with pytest.raises(TypeError):
        x.view(np.int32)                            # NumPy's dtype view stays refused
    with pytest.raises(TypeError, match="view"):
        x.view(6, 4)[0] = 1.0                       # a view: writes through it are refused


def _grads_match(ours, theirs, x, t):
    g = np.random.default_rng(1).normal(size=np.shape(theirs.detach().numpy()))
    x.grad = None
    ours.backward(g)
    theirs.backward(torch.tensor(g))
    close(ours.value, theirs.detach().numpy())
    close(x.grad, t.grad.numpy())
    t.grad = None


@pytest.mark.parametrize("name,args,kw", [
    ("sum", (), {"dim": 1}), ("sum", (), {"dim": 1, "keepdim": True}),
    ("mean", (), {"dim": (0, 2)}), ("mean", (), {"dim": [0, 2]}),
    ("prod", (), {"dim": 2}),
    ("var", (), {"dim": 1}), ("std", (), {"dim": 1, "keepdim": True}),
    ("var", (), {"dim": 1, "unbiased": False}), ("std", (), {"dim": 0, "correction": 0}),
    ("softmax", (1,), {}), ("log_softmax", (-1,), {}), ("softmax", (), {"dim": 0}),
    ("unsqueeze", (1,), {}), ("permute", (2, 0, 1), {}), ("permute", ((1, 2, 0),), {}),
    ("flatten", (1,), {}), ("flatten", (0, 1), {}), ("flatten", (), {}),
    ("transpose", (1, 2), {}), ("transpose", (-1, 0), {}),
    ("squeeze", (), {"dim": 1}), ("squeeze", (0,), {}), ("squeeze", ((0, 1),), {}),
    ("std", (-1,), {"keepdim": True}), ("cumsum", (), {"dim": 1}),
    ("exp", (), {}), ("tanh", (), {}), ("sigmoid", (), {}), ("relu", (), {}),
    ("abs", (), {}), ("pow", (3,), {}), ("clone", (), {}), ("float", (), {}),
])
def test_methods_match_torch(name, args, kw):
    x, t = _pair((2, 3, 4) if name != "squeeze" else (2, 1, 4))
    ours, theirs = getattr(x, name)(*args, **kw), getattr(t, name)(*args, **kw)
    if name == "float":
        assert ours.dtype == np.float32
        close(ours.value, theirs.detach().numpy(), 1e-6)
        return
    _grads_match(ours, theirs, x, t)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_with_dim_give_values_and_indices(name):
    a = np.array([[1.0, 5.0, 5.0], [7.0, -1.0, 2.0]])
    for call in (lambda v: getattr(v, name)(1), lambda v: getattr(v, name)(dim=1),
                 lambda v: getattr(v, name)(1, keepdim=True),
                 lambda v: getattr(v, name)(dim=0, keepdim=True)):
        x, t = ad.Variable(a), torch.tensor(a, requires_grad=True)
        r, rt = call(x), call(t)
        assert r._fields == ("values", "indices")
        values, indices = r                          # unpacks as torch's
        np.testing.assert_array_equal(indices, rt.indices.numpy())
        _grads_match(values, rt.values, x, t)       # the gradient goes to one index (ties)
    x = ad.Variable(a)
    close(getattr(x, name)().value, getattr(a, name)())            # no dim: a scalar
    close(getattr(x, name)(axis=1).value, getattr(a, name)(axis=1))  # NumPy's keyword
    close(getattr(x, name)(axis=0, keepdims=True).value, getattr(a, name)(axis=0, keepdims=True))
    other = np.full_like(a, 3.0)
    close(getattr(x, name)(ad.Variable(other)).value, getattr(np, name + "imum")(a, other))


def test_argmax_dim_and_numpy_methods_unchanged():
    a = np.random.default_rng(3).normal(size=(3, 4))
    x, t = ad.Variable(a), torch.tensor(a)
    np.testing.assert_array_equal(x.argmax(dim=1), t.argmax(dim=1).numpy())
    np.testing.assert_array_equal(x.argmin(1), t.argmin(1).numpy())
    np.testing.assert_array_equal(x.argmax(dim=0, keepdim=True), t.argmax(0, keepdim=True))
    # NumPy's methods keep NumPy's meaning
    close(x.sum(axis=0).value, a.sum(axis=0))
    close(x.var(axis=1).value, a.var(axis=1))        # ddof 0 (NumPy) without dim=
    close(x.reshape(4, 3).value, a.reshape(4, 3))
    close(x.transpose().value, a.T)
    close(x.transpose((1, 0)).value, a.T)
    close(x.flatten().value, a.flatten())
    close(x.squeeze().value, a)
    with pytest.raises(TypeError):
        x.sum(axis=0, dim=0)


def test_methods_inside_transforms():
    # A model's forward written with torch's methods runs inside ad.grad and ad.jacfwd.
    def f(a):
        v = a.view(2, 3).permute(1, 0).unsqueeze(0)
        return v.softmax(dim=-1).max(dim=1).values.sum() + a.var(dim=0) * a.numel()

    a = np.random.default_rng(2).normal(size=6)
    g = ad.grad(f)(a)
    close(ad.jacfwd(f)(a), g)
    h = 1e-6
    num = [(f(ad.Variable(a + h * e)).value - f(ad.Variable(a - h * e)).value) / (2 * h)
           for e in np.eye(6)]
    close(g, num, 1e-7)
    close(ad.hessian(f)(a), ad.jacfwd(ad.grad(f))(a), 1e-10)


def test_module_helpers_as_torch():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1))
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "BatchNorm1d", "Linear", "Sequential"]     # children first
    model.float()
    assert model[0].weight.dtype == np.float32 and model[1].running_mean.dtype == np.float32
    assert model(np.ones((4, 2), np.float32)).dtype == np.float32
    model.double()
    assert model[2].bias.dtype == np.float64
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    out = model(np.ones((4, 2))).sum()
    out.backward()
    model.zero_grad(set_to_none=False)
    assert np.all(model[0].weight.grad == 0)
    model.zero_grad()
    assert model[0].weight.grad is None
    assert list(model.parameters(recurse=False)) == []
    assert [n for n, _ in model[0].named_parameters(recurse=False)] == ["weight", "bias"]


def test_backward_of_a_value_that_requires_no_grad_is_an_error():
    w = nn.Parameter(np.ones(2))
    with nn.no_grad():
        y = (w * 2.0).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with pytest.raises(RuntimeError):
        (ad.Variable(np.ones(2), requires_grad=False) * 2.0).sum().backward()


def test_frozen_parameters_stay_registered_as_torch():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.ones(2), requires_grad=False)
            self.b = nn.Parameter(np.zeros(2))

    m = M()
    assert list(m.state_dict()) == ["w", "b"] and not m.w.requires_grad
    assert [n for n, _ in m.named_parameters()] == ["w", "b"]
    lin = nn.Linear(2, 2)
    lin.weight.requires_grad_(False)
    lin.weight = lin.weight                     # assigned back: still a parameter, in place
    assert list(lin.state_dict()) == ["weight", "bias"]
    pre = nn.Embedding.from_pretrained(np.arange(6.0).reshape(3, 2))
    assert list(pre.state_dict()) == ["weight"] and not pre.weight.requires_grad
    assert not isinstance(ad.Variable(np.ones(2), requires_grad=False), nn.Parameter)
