"""PyTorch's tensor methods on tracked values (a forward written for torch runs as it
stands): values and gradients against torch's own, float64; inside transforms too."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import nn

torch = pytest.importorskip("torch")
rng = np.random.default_rng(1)
A = rng.standard_normal((2, 3, 4))


def _index(a, arr):
    return arr if not isinstance(a, torch.Tensor) else torch.tensor(arr, dtype=torch.int64)


def _mask(a):
    return (a > 0.3) if isinstance(a, torch.Tensor) else (a.value > 0.3)


def _bools(a, arr):
    return np.array(arr) if not isinstance(a, torch.Tensor) else torch.tensor(arr)


# index tensors for the scatters on A's (2, 3, 4): along dim 2, and a repeated one
_I2 = [[[0], [3], [1]], [[2], [2], [0]]]
_REP = [[[0, 0, 1], [3, 3, 3]], [[2, 2, 0], [1, 0, 1]]]
_PAIRS = [[[0, 0, 1, 1]] * 3] * 2


CASES = {
    "expand": lambda a: a[:, :1].expand(2, 3, 4),
    "expand, new leading dim": lambda a: a[0, 0].expand(3, -1),
    "norm": lambda a: a.norm(),
    "norm p=1 dim": lambda a: a.norm(p=1, dim=1),
    "norm p=3 dims keepdim": lambda a: a.norm(3, dim=(0, 2), keepdim=True),
    "clamp": lambda a: a.clamp(-0.5, 0.7),
    "clamp min": lambda a: a.clamp(min=0.1),
    "clamp_min": lambda a: a.clamp_min(0.0),
    "matmul": lambda a: a.matmul(a.transpose(1, 2)),
    "bmm": lambda a: a.bmm(a.transpose(1, 2)),
    "mm": lambda a: a[0].mm(a[0].t()),
    "masked_fill": lambda a: a.masked_fill(_mask(a), 0.5),
    "masked_select": lambda a: a.masked_select(_mask(a)),
    "where": lambda a: a.where(_mask(a), 0.0),
    "chunk": lambda a: a.chunk(3, dim=2)[1],
    "chunk, last shorter": lambda a: a.chunk(3, dim=2)[-1],
    "split": lambda a: a.split(1, dim=1)[2],
    "split sizes": lambda a: a.split([1, 3], dim=2)[1],
    "unbind": lambda a: a.unbind(1)[1],
    "narrow": lambda a: a.narrow(2, 1, 2),
    "gather": lambda a: a.gather(2, _index(a, np.array([[[0], [3], [1]], [[2], [2], [0]]]))),
    "index_select": lambda a: a.index_select(1, _index(a, np.array([0, 2]))),
    "topk": lambda a: a.topk(2, dim=2)[0],
    "topk smallest, indices": lambda a: a.topk(2, dim=1, largest=False)[1],
    "sort dim": lambda a: a.sort(dim=2)[0],
    "sort descending": lambda a: a.sort(dim=1, descending=True)[0],
    "sort indices": lambda a: a.sort(dim=2)[1],
    "amax": lambda a: a.amax(1),
    "amin dims keepdim": lambda a: a.amin(dim=(0, 2), keepdim=True),
    "logsumexp": lambda a: a.logsumexp(1),
    "flip": lambda a: a.flip(0),
    "flip two dims": lambda a: a.flip(0, 2),
    "roll": lambda a: a.roll(1, 1),
    "diff": lambda a: a.diff(dim=1),
    "neg": lambda a: a.neg(),
    "square": lambda a: a.square(),
    "mul": lambda a: a.mul(2),
    "div": lambda a: a.div(2),
    "div floor": lambda a: a.div(0.3, rounding_mode="floor"),
    "sub alpha": lambda a: a.sub(1, alpha=2),
    "add alpha": lambda a: a.add(a, alpha=2),
    "maximum": lambda a: a.maximum(a * 0 + 0.2),
    "lerp": lambda a: a.lerp(a * 2, 0.3),
    "erf": lambda a: a.erf(),
    "rsqrt": lambda a: (a * a + 1).rsqrt(),
    "reciprocal": lambda a: (a + 3).reciprocal(),
    "log1p": lambda a: (a * a).log1p(),
    "sign": lambda a: a.sign(),
    "floor": lambda a: a.floor(),
    "new_zeros": lambda a: a.new_zeros((2, 2)),
    "new_full": lambda a: a.new_full((2,), 3.0),
    # scatters and index writes (torch's index_fill/scatter backward mishandle negative
    # indices and an index smaller than src: the gradient cases avoid both)
    "index_add, repeated indices": lambda a: a.index_add(1, _index(a, np.array([0, 2, 0])),
                                                         a.flip(1) * 2, alpha=3),
    "index_add negative dim": lambda a: a.index_add(-1, _index(a, np.array([3, 0])),
                                                    a[..., 1:3]),
    "index_copy": lambda a: a.index_copy(2, _index(a, np.array([3, 0])), a[..., 1:3] ** 2),
    "index_fill": lambda a: a.index_fill(1, _index(a, np.array([0, -1])), 0.5),
    "index_fill, tracked value": lambda a: a.index_fill(1, _index(a, np.array([0, 2, 2])),
                                                        a[0, 0, 0]),
    "scatter": lambda a: a.scatter(2, _index(a, np.array(_I2)), a[..., :1] * 3),
    "scatter value, smaller index": lambda a: a.scatter(
        1, _index(a, np.array([[[0, 2]], [[1, 1]]])), 0.25),
    "scatter_add, repeated indices": lambda a: a.scatter_add(
        2, _index(a, np.array(_REP)), a[:, :2, :3].sin()),
    "scatter reduce='multiply'": lambda a: (
        a.scatter(2, _index(a, np.array(_PAIRS)), a.cos(), reduce="multiply")
        if not isinstance(a, torch.Tensor) else     # (torch has no derivative for it)
        a.scatter_reduce(2, _index(a, np.array(_PAIRS)), a.cos(), "prod")),
    "scatter_reduce sum, include_self=False": lambda a: a.scatter_reduce(
        2, _index(a, np.array(_PAIRS)), a.sin(), "sum", include_self=False),
    "scatter_reduce prod": lambda a: a.scatter_reduce(
        2, _index(a, np.array(_PAIRS)), a.sin(), "prod"),
    "scatter_reduce prod, include_self=False": lambda a: a.scatter_reduce(
        2, _index(a, np.array(_PAIRS)), a.sin(), "prod", include_self=False),
    "scatter_reduce mean": lambda a: a.scatter_reduce(
        2, _index(a, np.array(_PAIRS)), a.sin(), "mean"),
    "scatter_reduce mean, include_self=False": lambda a: a.scatter_reduce(
        2, _index(a, np.array(_PAIRS)), a.sin(), "mean", include_self=False),
    "scatter_reduce amax": lambda a: a.scatter_reduce(
        2, _index(a, np.array(_PAIRS)), a.sin(), "amax"),
    "scatter_reduce amin, include_self=False, dim -1": lambda a: a.scatter_reduce(
        -1, _index(a, np.array(_PAIRS)), a.sin(), "amin", include_self=False),
    "scatter_reduce amax, ties": lambda a: a.scatter_reduce(      # x[..., 0] thrice there
        2, _index(a, np.array(_PAIRS)), a[..., :1].expand(2, 3, 4) * 1, "amax"),
    "index_put": lambda a: a.index_put((_index(a, np.array([0, 1])),
                                        _index(a, np.array([2, 0]))), a[0, 0] * 2),
    "index_put accumulate, repeated": lambda a: a.index_put(
        (_index(a, np.array([0, 1, 0])), _index(a, np.array([2, 0, 2]))), a[0, :3] * 2,
        accumulate=True),
    "index_put boolean": lambda a: a.index_put((_bools(a, [True, False]),), a[1] * 2),
    "masked_scatter": lambda a: a.masked_scatter(_bools(a, [[True, False, True, True]]),
                                                 a.flip(0) * 2),
    "masked_scatter, broadcast": lambda a: a[0, 0].masked_scatter(
        _bools(a, [[True], [False]]), a.flip(0) * 2),
    # in place, on a non-leaf (torch refuses a leaf that requires grad, as autodiff does)
    "index_add_": lambda a: (a * 1).index_add_(1, _index(a, np.array([1, 1])), a[:, :2]),
    "index_copy_": lambda a: (a * 1).index_copy_(0, _index(a, np.array([1])), a[:1] ** 2),
    "index_fill_": lambda a: (a * 1).index_fill_(2, _index(a, np.array([1, 3])), -1.0),
    "scatter_": lambda a: (a * 1).scatter_(1, _index(a, np.array([[[0, 2]], [[1, 0]]])),
                                           a[:, :1, :2] * 2),
    "scatter_add_": lambda a: (a * 1).scatter_add_(2, _index(a, np.array(_REP)),
                                                   a[:, :2, :3] ** 2),
    "scatter_reduce_": lambda a: (a * 1).scatter_reduce_(0, _index(a, np.array([[[1]]])),
                                                         a[:1, :1, :1].cos(), "amax"),
    "index_put_": lambda a: (a * 1).index_put_((_index(a, np.array([1])),), a[0],
                                               accumulate=True),
    "masked_scatter_": lambda a: (a * 1).masked_scatter_(
        _bools(a, [True, False, False, True]), a * 2),
}

#: the scatters also run inside transforms, on all of A
INDEX_WRITES = ["index_add, repeated indices", "index_fill, tracked value",
                "scatter_add, repeated indices", "scatter_reduce prod",
                "scatter_reduce amax, ties", "index_put accumulate, repeated",
                "masked_scatter", "index_fill_", "scatter_"]


@pytest.mark.parametrize("name", CASES)
def test_tensor_method_as_torchs(name):
    f = CASES[name]
    x = nn.Parameter(A.copy())
    t = torch.tensor(A, requires_grad=True)
    out, tout = f(x), f(t)
    got = np.asarray(getattr(out, "value", out))
    np.testing.assert_allclose(got, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert got.shape == tuple(tout.shape)
    if isinstance(out, ad.Variable) and tout.requires_grad:
        w = rng.standard_normal(got.shape)
        (out * w).sum().backward()
        (tout * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["norm p=3 dims keepdim", "expand", "topk", "split sizes",
                                  "logsumexp", "lerp", "clamp", "gather"] + INDEX_WRITES)
def test_tensor_methods_inside_transforms(name):
    """A model's forward runs inside ad.grad/jacfwd/hessian: the methods work at every level;
    the gradient and the Hessian (forward over reverse) against torch's."""
    f = CASES[name]
    a = A[0, :2, :3].copy() if name == "gather" else A.copy() if name in INDEX_WRITES else \
        A[:1, :2].copy()
    if name == "gather":
        f = lambda x: x.gather(1, _index(x, np.array([[2, 0], [1, 1]])))  # noqa: E731
    loss = lambda x: (np.sin(f(x)) if not isinstance(x, torch.Tensor)  # noqa: E731
                      else torch.sin(f(x))).sum()
    th = torch.autograd.functional.hessian(loss, torch.tensor(a)).numpy()
    tg = torch.autograd.functional.jacobian(loss, torch.tensor(a)).numpy()
    np.testing.assert_allclose(ad.grad(loss)(a), tg, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(ad.hessian(loss)(a), th, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(ad.jacrev(ad.grad(loss))(a), th, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("call", [
    "x.index_add(2, ix([0]), x[:1])",              # dim out of range
    "x.index_add(0, ix([0, 3]), x[:2])",           # index out of range
    "x.index_add(0, ix([0, -1]), x[:2])",          # negative (index_fill counts back)
    "x.index_add(0, ix([0.0]), x[:1])",            # not an integer index
    "x.index_add(0, ix([0]), x[:2])",              # one index, two slices
    "x.index_add(0, ix([0]), x[:1, :2])",          # source's shape
    "x.index_copy(0, ix([[0]]), x[:1])",           # an index of two dims
    "x.index_fill(1, ix([0]), x[0])",              # a value of one dim
    "x.scatter(1, ix([[0, 1]] * 4), x)",           # an index larger than self
    "x.scatter(1, ix([[0, 1]]), x[:1, :1])",       # ... or than src
    "x.scatter(1, ix([0, 1]), x)",                 # index's dims
    "x.scatter(1, ix([[0, 4]]), x)",
    "x.scatter(1, ix([[0, 1]]), x, reduce='sum')",
    "x.scatter_reduce(1, ix([[0, 1]]), x, 'add')",
    "x.index_put((ix([0, 1]),), x[0, :3])",        # values that do not broadcast
    "x.masked_scatter(ix([True, False, True]), x)",
    "x.masked_scatter(ix([1, 0, 1, 1]), x)",       # not a boolean mask
    "x.masked_scatter(ix([[True] * 4] * 3), x[:1])",   # too few values
    "(x * 1)[0].masked_scatter_(ix([[True] * 4] * 3), x)",    # in place: no broadcast of x
    "x.index_add_(0, ix([0]), x[:1])",             # in place on a leaf that requires grad
    "x.scatter_(1, ix([[0]]), 1.0)",
])
@pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter")
def test_scatter_errors_as_torchs(call):
    """Bad arguments raise as torch's do: RuntimeError, or IndexError where torch's is."""
    x, ix = torch.tensor(A[0], requires_grad=True), torch.tensor
    with pytest.raises((RuntimeError, IndexError)) as want:
        eval(call)
    x, ix = nn.Parameter(A[0].copy()), np.array
    match = "leaf Variable that requires grad" if "leaf" in str(want.value) else None
    with pytest.raises(want.type, match=match):
        eval(call)


def test_inplace_scatter_into_a_leaf_under_no_grad():
    """An in-place method on a parameter under no_grad writes it and returns it (torch's)."""
    p, t = nn.Parameter(A[0].copy()), torch.tensor(A[0], requires_grad=True)
    with nn.no_grad():
        assert p.index_fill_(1, np.array([0, 2]), 0.0).scatter_add_(
            0, np.array([[2, 0]]), np.ones((1, 2))) is p
    with torch.no_grad():
        t.index_fill_(1, torch.tensor([0, 2]), 0.0).scatter_add_(
            0, torch.tensor([[2, 0]]), torch.ones((1, 2), dtype=torch.float64))
    np.testing.assert_array_equal(p.value, t.detach().numpy())


def test_numpys_methods_keep_numpys_meaning():
    """Where NumPy has the name, NumPy's meaning stays: sort() sorts in place, repeat
    repeats elements."""
    x = ad.Variable(np.array([3.0, 1.0, 2.0])) * 1.0
    assert x.sort() is None
    np.testing.assert_array_equal(x.value, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(ad.Variable(np.array([1.0, 2.0])).repeat(2).value,
                                  [1.0, 1.0, 2.0, 2.0])
    with pytest.raises(RuntimeError, match="at least one"):
        x.clamp()


@pytest.mark.parametrize("call", ["std([0, 1])", "var([0, 2])", "std([1], keepdim=True)",
                                  "var([0, 1], unbiased=False)"])
def test_std_var_take_a_list_of_dims_as_pytorch(call):
    """``x.std([0, 1])``: a list of axes is PyTorch's ``dim`` (NumPy refuses a list), with
    PyTorch's unbiased default; value and gradient as torch's."""
    x = np.random.default_rng(3).standard_normal((3, 4, 5))
    p, t = nn.Parameter(x.copy()), torch.tensor(x, requires_grad=True)
    a, b = eval("p." + call), eval("t." + call)
    np.testing.assert_allclose(a.value, b.detach().numpy(), rtol=1e-13)
    w = np.random.default_rng(4).standard_normal(tuple(b.shape))
    (a * w).sum().backward()
    (b * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12)
    assert p.std(0).shape == x.std(0).shape        # NumPy's positional axis stays NumPy's
    np.testing.assert_allclose(p.var((0, 1)).value, x.var((0, 1)), rtol=1e-14)
