"""More of PyTorch's activations, distances and losses against torch: forward values and
every gradient (inputs and parameters) with copied state, float64 to 1e-10, on random
inputs with points placed exactly on the kinks (where the one-sided derivatives differ, the
value torch's backward gives); the reductions, float32 end to end, PyTorch's signatures and
errors, and derivatives to second order."""
import inspect
import math
import warnings

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

torch = pytest.importorskip("torch")
from test_nn_torch_parity import close, run_both  # noqa: E402

TF = torch.nn.functional
rng = np.random.default_rng(7)
f32 = np.float32


def _with_kinks(kinks, shape=(4, 6), scale=3.0):
    """Random values with the kink points written into the first entries."""
    x = rng.standard_normal(shape) * scale
    flat = x.reshape(-1)
    flat[:len(kinks)] = kinks
    return x


# ----- activations -----

ACTIVATIONS = [
    ("SELU", {}, [0.0]),
    ("CELU", {}, [0.0]),
    ("CELU", {"alpha": 0.7}, [0.0]),
    ("LogSigmoid", {}, [0.0, 40.0, -40.0, 800.0, -800.0]),
    ("Hardswish", {}, [-3.0, 3.0, 0.0]),
    ("Hardsigmoid", {}, [-3.0, 3.0]),
    ("Softsign", {}, [0.0]),
    ("Softmin", {"dim": 1}, []),
    ("Softmin", {"dim": 0}, []),
    ("GLU", {}, []),
    ("GLU", {"dim": 0}, []),
    ("Threshold", {"threshold": 0.3, "value": -2.0}, [0.3, -0.3]),
    ("Tanhshrink", {}, [0.0]),
    ("Softshrink", {}, [0.5, -0.5, 0.0]),
    ("Softshrink", {"lambd": 1.2}, [1.2, -1.2]),
    ("Hardshrink", {}, [0.5, -0.5, 0.0]),
    ("Hardshrink", {"lambd": 1.2}, [1.2, -1.2]),
    ("RReLU", {}, [0.0]),                       # eval mode: the mean slope
    ("RReLU", {"lower": 0.05, "upper": 0.5}, [0.0]),
    ("PReLU", {}, [0.0]),
]


def _torch_tol(name, alpha=0.5):
    """torch's float64 backward of hardsigmoid uses the float32 constant 1/6, and celu's
    1/α in float32 (``alpha.toFloat()``): it is off by ~1e-8 relative there, so those
    cases compare at 1e-7 and ``test_exact_derivatives_where_torch_rounds`` checks ours
    exactly."""
    if name.lower() == "hardsigmoid" or (name.lower() == "celu" and alpha != float(
            np.float32(alpha))):
        return 1e-7
    return 1e-10


@pytest.mark.parametrize("name,kw,kinks", ACTIVATIONS,
                         ids=[f"{n}{k}" for n, k, _ in ACTIVATIONS])
def test_activation_modules_match_torch(name, kw, kinks):
    ours, theirs = getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw)
    ours.eval()
    theirs.eval()
    if name == "PReLU":
        with torch.no_grad():
            theirs.weight.fill_(-0.7)
    run_both(ours, theirs, [_with_kinks(kinks)], tol=_torch_tol(name, kw.get("alpha", 0.5)))


def test_exact_derivatives_where_torch_rounds():
    x = np.array([-4.0, -3.0, -1.2, 0.0, 0.4, 2.9, 3.0, 5.0])
    g = ad.grad(lambda v: np.sum(F.hardsigmoid(v)))(x)
    np.testing.assert_array_equal(g, np.where((x > -3) & (x < 3), 1.0 / 6.0, 0.0))
    g = ad.grad(lambda v: np.sum(F.celu(v, 0.7)))(x)
    np.testing.assert_allclose(g, np.where(x > 0, 1.0, np.exp(x / 0.7)), rtol=1e-13)
    g = ad.grad(lambda v: np.sum(F.elu(v, 0.7)))(x)        # α at 0, the lower branch's
    np.testing.assert_allclose(g, np.where(x > 0, 1.0, 0.7 * np.exp(x)), rtol=1e-13)


@pytest.mark.parametrize("shape", [(3, 4, 5), (3, 4), (2, 4, 3, 2)])
def test_prelu_per_channel_matches_torch(shape):
    ours, theirs = nn.PReLU(4), torch.nn.PReLU(4)
    assert ours.weight.shape == (4,) and np.all(ours.weight.value == 0.25)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(rng.standard_normal(4)))
    x = _with_kinks([0.0, 0.0], shape)
    run_both(ours, theirs, [x])            # the input's and the slopes' gradients
    run_both(F.prelu, TF.prelu, [x, rng.standard_normal(4)])
    run_both(F.prelu, TF.prelu, [x, np.array([0.3])])


def test_prelu_shapes_and_errors_as_torch():
    x0 = np.array(-2.0)
    assert np.shape(F.prelu(x0, np.array([0.1]))) == tuple(TF.prelu(
        torch.tensor(x0), torch.tensor([0.1], dtype=torch.float64)).shape) == ()
    run_both(F.prelu, TF.prelu, [rng.standard_normal(5), np.array([0.2])])
    with pytest.raises(RuntimeError, match="channel size = 4"):
        F.prelu(np.ones((2, 4)), np.ones(3))
    with pytest.raises(RuntimeError, match="channel size = 1"):
        F.prelu(np.ones(3), np.ones(3))
    with pytest.raises(RuntimeError, match="scalar or 1D"):
        F.prelu(np.ones((2, 3)), np.ones((1, 3)))


FUNCTIONAL = [
    ("selu", (), {}), ("celu", (0.5,), {}), ("logsigmoid", (), {}), ("hardswish", (), {}),
    ("hardsigmoid", (), {}), ("softsign", (), {}), ("tanhshrink", (), {}),
    ("softshrink", (0.7,), {}), ("hardshrink", (0.7,), {}), ("threshold", (0.7, 3.0), {}),
    ("rrelu", (0.1, 0.3), {}), ("rrelu", (), {"training": False}), ("glu", (0,), {}),
    ("softmin", (), {"dim": -1}),
]


@pytest.mark.parametrize("name,args,kw", FUNCTIONAL,
                         ids=[f"{n}{a}{k}" for n, a, k in FUNCTIONAL])
def test_functional_activations_match_torch(name, args, kw):
    kinks = [-3.0, 3.0, 0.0, 0.7, -0.7]
    run_both(getattr(F, name), getattr(TF, name), [_with_kinks(kinks)], args=args, kwargs=kw,
             tol=_torch_tol(name, args[0] if args else 1.0))


def test_softmin_implicit_dim_as_torch():
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 2)]:
        x = rng.standard_normal(shape)
        with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
            ours = F.softmin(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            close(ours, TF.softmin(torch.tensor(x)).numpy())
    assert nn.Softmin().dim is None
    assert F.softmin(np.ones(3), dim=0, dtype=f32).dtype == f32


def test_rrelu_training_samples_slopes():
    nn.init.manual_seed(3)
    x = _with_kinks([0.0], (200,))
    xv = ad.Variable(x)
    y = F.rrelu(xv, 0.1, 0.3, training=True)
    np.sum(y).backward()
    neg = x <= 0
    slope = xv.grad[neg]
    assert np.all((slope >= 0.1) & (slope <= 0.3)) and slope.std() > 0.02
    close(y.value[neg], x[neg] * slope)
    close(y.value[~neg], x[~neg])
    close(xv.grad[~neg], 1.0)
    nn.init.manual_seed(3)
    close(F.rrelu(x, 0.1, 0.3, training=True), y.value)       # repeatable
    m = nn.RReLU(0.1, 0.3)
    assert m.training and not np.allclose(m(x), F.rrelu(x, 0.1, 0.3))
    m.eval()
    close(m(x), F.leaky_relu(x, 0.2))


def test_glu_errors_as_torch():
    with pytest.raises(RuntimeError, match="Halving dimension must be even, but dimension 1 "
                                           "is size 3"):
        F.glu(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="scalars"):
        F.glu(np.array(1.0))
    with pytest.raises(ValueError):
        F.softshrink(np.ones(2), -1.0)


# ----- distances -----

DISTANCES = [
    ("CosineSimilarity", {}, (5, 4), (5, 4)),
    ("CosineSimilarity", {"dim": -1, "eps": 1e-3}, (3, 2, 4), (3, 2, 4)),
    ("CosineSimilarity", {"dim": 1}, (3, 1, 2), (3, 4, 2)),     # norm over the broadcast axis
    ("CosineSimilarity", {"dim": 0}, (4,), (3, 4)),
    ("PairwiseDistance", {}, (5, 4), (5, 4)),
    ("PairwiseDistance", {"p": 1.0}, (5, 4), (5, 4)),
    ("PairwiseDistance", {"p": 3.0, "keepdim": True}, (5, 4), (5, 4)),
    ("PairwiseDistance", {"p": 1.5, "eps": 0.0}, (5, 4), (5, 4)),
    ("PairwiseDistance", {"p": math.inf}, (5, 4), (5, 4)),
    ("PairwiseDistance", {"p": -math.inf}, (5, 4), (5, 4)),
    ("PairwiseDistance", {}, (4,), (3, 4)),
    ("PairwiseDistance", {"keepdim": True}, (4,), (4,)),
]


@pytest.mark.parametrize("name,kw,s1,s2", DISTANCES,
                         ids=[f"{n}{k}{a}{b}" for n, k, a, b in DISTANCES])
def test_distance_modules_match_torch(name, kw, s1, s2):
    run_both(getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw),
             [rng.standard_normal(s1), rng.standard_normal(s2)])


def test_distances_at_degenerate_points_as_torch():
    # A zero vector and one below eps: torch's clamp carries no derivative of its own.
    x1 = np.array([[0.0, 0.0, 0.0], [1e-9, 0.0, 0.0], [1.0, 2.0, -1.0]])
    x2 = np.array([[1.0, 2.0, 0.5], [1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    run_both(F.cosine_similarity, TF.cosine_similarity, [x1, x2])
    # Zero distance: derivative 0 (torch's norm); ties of the max split evenly.
    a = np.array([[1.0, 2.0, 3.0], [1.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    b = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    for p in (2.0, 1.0, 3.0, math.inf):
        run_both(F.pairwise_distance, TF.pairwise_distance, [a, b],
                 kwargs={"p": p, "eps": 0.0})
    # p = 0 counts the nonzero differences (no derivative).
    close(F.pairwise_distance(a, b, p=0), TF.pairwise_distance(
        torch.tensor(a), torch.tensor(b), p=0).numpy())


# ----- losses -----

REDUCTIONS = ["mean", "sum", "none"]


def _pm1(n):
    return np.where(rng.random(n) > 0.5, 1.0, -1.0)


def _loss_pair(name, kw):
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    return getattr(nn, name)(**kw), getattr(torch.nn, name)(**tkw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_cosine_embedding_loss_matches_torch(reduction, margin):
    x1, x2 = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    # Row 0: cos exactly 0, on the hinge for margin 0 (torch's clamp passes the gradient).
    x1[0], x2[0] = [0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]
    y = np.array([-1.0, 1.0, -1.0, 1.0, -1.0, -1.0])
    run_both(*_loss_pair("CosineEmbeddingLoss", {"margin": margin, "reduction": reduction}),
             [x1, x2, y], const=(2,))
    run_both(*_loss_pair("CosineEmbeddingLoss", {"reduction": reduction}),
             [x1[1], x2[1], np.array(-1.0)], const=(2,))            # 1-d inputs, 0-d target


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_margin_ranking_loss_matches_torch(reduction, margin):
    x1, x2, y = rng.standard_normal(8), rng.standard_normal(8), _pm1(8)
    x1[:3], x2[:3], y[:3] = [0.0, 1.0, 2.0], [0.0, 0.5, 2.5], [1.0, 1.0, -1.0]    # hinges
    run_both(*_loss_pair("MarginRankingLoss", {"margin": margin, "reduction": reduction}),
             [x1, x2, y])                                # the target's gradient too


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("margin", [1.0, 0.4])
def test_hinge_embedding_loss_matches_torch(reduction, margin):
    x = rng.standard_normal((3, 4))
    y = np.where(rng.random((3, 4)) > 0.5, 1.0, -1.0)
    x[0, :2], y[0, :3] = margin, [-1.0, 1.0, 0.0]        # the hinge, and a label of neither
    run_both(*_loss_pair("HingeEmbeddingLoss", {"margin": margin, "reduction": reduction}),
             [x, y], const=(1,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("log_input,full", [(True, False), (False, False), (True, True),
                                            (False, True)])
def test_poisson_nll_loss_matches_torch(reduction, log_input, full):
    x = rng.standard_normal((4, 3))
    if not log_input:
        x = np.exp(x)
    y = rng.poisson(2.0, (4, 3)).astype(float)
    y[0, :3] = [0.0, 1.0, 3.0]
    # full: torch's target derivative is NaN at y = 0 (0·log 0), ours 0; compare the input's.
    run_both(*_loss_pair("PoissonNLLLoss", {"log_input": log_input, "full": full,
                                            "reduction": reduction}),
             [x, y], const=(1,) if full else ())
    yp = y + 1.5
    run_both(*_loss_pair("PoissonNLLLoss", {"log_input": log_input, "full": full}), [x, yp])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", [(4, 3), (4,), (4, 1), (1, 3)])
def test_gaussian_nll_loss_matches_torch(reduction, full, var_shape):
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    var = rng.random(var_shape) + 0.1
    var.reshape(-1)[0] = 1e-8            # below eps: clamped, the derivative still flows
    run_both(*_loss_pair("GaussianNLLLoss", {"full": full, "reduction": reduction}),
             [x, y, var])


def test_gaussian_nll_loss_float_var_and_errors():
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    run_both(lambda a, b: F.gaussian_nll_loss(a, b, 0.5),
             lambda a, b: TF.gaussian_nll_loss(a, b, 0.5), [x, y])
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(x, y, -np.ones((4, 3)))
    with pytest.raises(ValueError, match="incorrect size"):
        F.gaussian_nll_loss(x, y, np.ones((4, 2)))
    with pytest.raises(ValueError, match="not valid"):
        F.gaussian_nll_loss(x, y, np.ones((4, 3)), reduction="avg")
    with pytest.raises(TypeError):
        nn.GaussianNLLLoss(True)                     # keyword-only, as PyTorch


TRIPLET = [{}, {"margin": 0.5, "p": 1.0}, {"swap": True}, {"p": 3.0, "eps": 1e-3},
           {"reduction": "sum"}, {"reduction": "none", "swap": True}]


@pytest.mark.parametrize("kw", TRIPLET, ids=[str(k) for k in TRIPLET])
def test_triplet_margin_loss_matches_torch(kw):
    a, p, n = (rng.standard_normal((6, 4)) for _ in range(3))
    run_both(*_loss_pair("TripletMarginLoss", kw), [a, p, n])


def test_triplet_margin_loss_kinks_as_torch():
    # Row 0: margin + d(a,p) - d(a,n) = 1 + 1 - 2 = 0 exactly (the gradient passes, torch's
    # clamp_min); row 1: d(a,n) = d(p,n) = √2 under swap (the minimum's tie splits evenly).
    a = np.array([[0.0, 0.0], [0.0, 0.0]])
    p = np.array([[1.0, 0.0], [0.0, 2.0]])
    n = np.array([[0.0, 2.0], [1.0, 1.0]])
    for kw in ({"margin": 1.0, "eps": 0.0}, {"margin": 5.0, "eps": 0.0, "swap": True}):
        run_both(F.triplet_margin_loss, TF.triplet_margin_loss, [a, p, n], kwargs=kw)
    run_both(F.triplet_margin_loss, TF.triplet_margin_loss, [a[0], p[0], n[0]],
             kwargs={"eps": 0.0})                                         # 1-d inputs


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_soft_margin_loss_matches_torch(reduction):
    x = _with_kinks([0.0, 30.0, -30.0], (4, 5))
    y = np.where(rng.random((4, 5)) > 0.5, 1.0, -1.0)
    # torch: soft_margin_loss is not differentiable in the target.
    run_both(*_loss_pair("SoftMarginLoss", {"reduction": reduction}), [x, y], const=(1,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_multilabel_soft_margin_loss_matches_torch(reduction, weighted):
    x = _with_kinks([0.0], (4, 5))
    y = (rng.random((4, 5)) > 0.5).astype(float)
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = rng.random(5) + 0.5
    ours, theirs = _loss_pair("MultiLabelSoftMarginLoss", kw)
    assert ("weight" in ours.state_dict()) == weighted
    run_both(ours, theirs, [x, y])
    run_both(ours, theirs, [x[0], y[0]])                                  # 1-d input


MULTI_MARGIN = [{}, {"p": 2}, {"margin": 0.5}, {"weight": np.array([0.5, 2.0, 1.0, 3.0])},
                {"p": 2, "weight": np.array([0.5, 2.0, 1.0, 3.0]), "reduction": "none"},
                {"reduction": "sum"}, {"reduction": "none"}]


@pytest.mark.parametrize("kw", MULTI_MARGIN, ids=[str(k) for k in MULTI_MARGIN])
def test_multi_margin_loss_matches_torch(kw):
    x = rng.standard_normal((6, 4))
    y = np.array([0, 1, 2, 3, 2, 0])
    x[0] = [1.0, 0.0, 0.5, -1.0]            # margin 1: the hinge of class 1 is exactly 0
    ours, theirs = _loss_pair("MultiMarginLoss", kw)
    run_both(ours, theirs, [x, y])
    run_both(ours, theirs, [x[3], np.array(1)])                           # 1-d input


def test_multi_margin_loss_errors_as_torch():
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        F.multi_margin_loss(np.ones((2, 3)), np.array([0, 1]), p=3)
    with pytest.raises(ValueError, match="one-dimensional"):
        F.multi_margin_loss(np.ones((2, 3)), np.array([0, 1]), weight=np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        F.multi_margin_loss(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="integer"):
        F.multi_margin_loss(np.ones((2, 3)), np.array([0.0, 1.0]))


def test_loss_argument_errors_as_torch():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        F.triplet_margin_loss(x, x, x, margin=0.0)
    with pytest.raises(ValueError, match="greater than 0"):
        nn.TripletMarginLoss(margin=-1.0)
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        F.triplet_margin_loss(x, x[0], x)
    with pytest.raises(RuntimeError, match="same dimension"):
        F.margin_ranking_loss(x, x, np.ones(2))
    with pytest.raises(RuntimeError, match="multi-target not supported"):
        F.cosine_embedding_loss(x, x, np.ones((2, 1)))
    with pytest.raises(RuntimeError, match="expects 2D input"):
        F.cosine_embedding_loss(x, x[0], np.ones(2))
    for name in ("SoftMarginLoss", "HingeEmbeddingLoss", "MultiMarginLoss", "PoissonNLLLoss"):
        with pytest.raises(ValueError):
            getattr(nn, name)(reduction="avg")
        with pytest.raises(TypeError):
            getattr(nn, name)(size_average=True)
    with pytest.raises(TypeError, match="size_average"):
        F.soft_margin_loss(x, x, size_average=False)
    with pytest.raises(ValueError):
        F.hinge_embedding_loss(x, x, reduction="avg")


# ----- signatures, exports, float32, second order -----

NEW_FUNCTIONS = ["selu", "celu", "logsigmoid", "hardswish", "hardsigmoid", "softsign",
                 "softmin", "glu", "threshold", "tanhshrink", "softshrink", "hardshrink",
                 "prelu", "rrelu", "cosine_similarity", "pairwise_distance",
                 "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
                 "poisson_nll_loss", "gaussian_nll_loss", "triplet_margin_loss",
                 "soft_margin_loss", "multilabel_soft_margin_loss", "multi_margin_loss"]
NEW_MODULES = ["SELU", "CELU", "LogSigmoid", "Hardswish", "Hardsigmoid", "Softsign", "Softmin",
               "GLU", "Threshold", "Tanhshrink", "Softshrink", "Hardshrink", "PReLU", "RReLU",
               "CosineSimilarity", "PairwiseDistance", "CosineEmbeddingLoss",
               "MarginRankingLoss", "HingeEmbeddingLoss", "PoissonNLLLoss", "GaussianNLLLoss",
               "TripletMarginLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss",
               "MultiMarginLoss"]


def _params(fn):
    sig = inspect.signature(fn)
    return [(p.name, p.default, p.kind == p.KEYWORD_ONLY) for p in sig.parameters.values()
            if p.name not in ("self", "rng", "dtype", "device")]


def test_exported_with_torchs_signatures():
    for name in NEW_FUNCTIONS:
        assert name in F.__all__ and callable(getattr(F, name))
        try:
            theirs = _params(getattr(TF, name))
        except ValueError:           # a builtin without an inspectable signature
            continue
        assert _params(getattr(F, name)) == theirs, name
    for name in NEW_MODULES:
        assert name in nn.__all__ and issubclass(getattr(nn, name), nn.Module)
        init = getattr(nn, name).__init__
        if list(inspect.signature(init).parameters) != ["self", "args", "kw"]:
            assert _params(init) == _params(getattr(torch.nn, name).__init__), name
    for name in ("softmax", "relu"):                      # untouched
        assert name in F.__all__


def test_module_defaults_as_torch():
    for name in ("CELU", "Softshrink", "Hardshrink", "GLU", "Softmin", "RReLU"):
        ours, theirs = getattr(nn, name)(), getattr(torch.nn, name)()
        for k in ("alpha", "lambd", "dim", "lower", "upper"):
            if hasattr(theirs, k):
                assert getattr(ours, k) == getattr(theirs, k), (name, k)
    assert nn.PairwiseDistance().norm == 2.0 and nn.CosineSimilarity().eps == 1e-8
    assert nn.Threshold(0.1, 2.0).value == 2.0
    with pytest.raises(TypeError):
        nn.Threshold()
    assert nn.CELU(0.3).alpha == 0.3 and nn.Softshrink(0.2).lambd == 0.2


def _f32_cases():
    x = rng.standard_normal((4, 6)).astype(f32)
    y = rng.standard_normal((4, 6)).astype(f32)
    pm = np.where(x > 0, 1.0, -1.0).astype(f32)
    labels = np.array([0, 1, 5, 2])
    acts = [F.selu, F.celu, F.logsigmoid, F.hardswish, F.hardsigmoid, F.softsign, F.tanhshrink,
            F.softshrink, F.hardshrink, lambda v: F.threshold(v, 0.1, 2.0), F.rrelu,
            lambda v: F.rrelu(v, training=True), F.glu, lambda v: F.softmin(v, 1),
            lambda v: F.prelu(v, np.full(6, 0.1, f32)), nn.PReLU(6, dtype=f32),
            lambda v: F.cosine_similarity(v, y), lambda v: F.pairwise_distance(v, y),
            lambda v: F.pairwise_distance(v, y, p=3.0),
            lambda v: F.cosine_embedding_loss(v, y, pm[:, 0]),
            lambda v: F.margin_ranking_loss(v, y, pm), lambda v: F.hinge_embedding_loss(v, pm),
            lambda v: F.poisson_nll_loss(v, np.abs(y), full=True),
            lambda v: F.gaussian_nll_loss(v, y, np.abs(y)),
            lambda v: F.gaussian_nll_loss(v, y, 0.5),
            lambda v: F.triplet_margin_loss(v, y, y[::-1], swap=True),
            lambda v: F.soft_margin_loss(v, pm),
            lambda v: F.multilabel_soft_margin_loss(v, (pm > 0).astype(f32),
                                                    weight=np.ones(6)),
            lambda v: F.multi_margin_loss(v, labels, p=2, weight=np.ones(6))]
    return x, acts


@pytest.mark.parametrize("k", range(len(_f32_cases()[1])))
def test_float32_stays_float32(k):
    x, fns = _f32_cases()
    f = fns[k]
    xv = nn.Parameter(x)
    out = f(xv)
    assert out.dtype == f32, k
    plain = f(x)          # plain arrays in, plain dtype out (a module's output is tracked)
    assert np.asarray(getattr(plain, "value", plain)).dtype == f32, k
    np.sum(out).backward()
    assert xv.grad.dtype == f32
    if isinstance(f, nn.Module):
        assert all(p.grad.dtype == f32 for p in f.parameters())


def test_second_order():
    x = rng.standard_normal((3, 4))
    y = rng.standard_normal((3, 4))
    pm = np.where(rng.random((3, 4)) > 0.5, 1.0, -1.0)
    for f in (F.selu, lambda v: F.celu(v, 0.6), F.logsigmoid, F.softsign, F.tanhshrink,
              F.glu, lambda v: F.softmin(v, 1), lambda v: F.cosine_similarity(v, y),
              lambda v: F.pairwise_distance(v, y, 3.0),
              lambda v: F.soft_margin_loss(v, pm),
              lambda v: F.multilabel_soft_margin_loss(v, (pm > 0) * 1.0),
              lambda v: F.poisson_nll_loss(v, np.abs(y), full=True)):
        ad.check_grads(f, (x,), order=2)
    ad.check_grads(lambda m, v: F.gaussian_nll_loss(m, y, v), (x, np.abs(y) + 0.5), order=2)


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (2.0, 5.0), (0.5, 3.0)])
def test_softplus_threshold_as_torch(beta, threshold):
    # Above βx = threshold torch returns x itself (derivative 1); the exact form differs
    # there by ~e^{-threshold}/β, more than the tolerance for threshold 5.
    x = _with_kinks([threshold / beta, 25.0, -25.0, 2.4, 60.0])
    run_both(lambda v: F.softplus(v, beta, threshold), lambda v: TF.softplus(v, beta, threshold),
             [x])
    run_both(nn.Softplus(beta, threshold), torch.nn.Softplus(beta, threshold), [x])
    ad.check_grads(lambda v: F.softplus(v, beta, threshold), (x[:, 3:] * 0.3,), order=2)
