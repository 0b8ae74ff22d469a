"""PyTorch's multilabel_margin_loss, triplet_margin_with_distance_loss and ctc_loss (and
their modules) against torch: values and gradients in float64 to 1e-10 for every reduction,
in eager mode (``.backward()``) and functional mode (``ad.grad``), PyTorch's signatures,
defaults and errors, and one second derivative (``ad.hessian``)."""
import inspect

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(11)
REDUCTIONS = ["mean", "sum", "none"]
TOL = 1e-10


def close(a, b, tol=TOL):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def check(ours, theirs, arrays, *, const=(), tol=TOL):
    """``ours(*arrays)`` against ``theirs(*tensors)``: the value, then the gradients of
    Σ g·out (g random) for every float array not in ``const``, by ``.backward()`` on
    ``ad.Variable`` inputs and by ``ad.grad`` on plain arrays. Returns torch's gradients."""
    arrays = [np.asarray(a) for a in arrays]
    diff = [i for i, a in enumerate(arrays) if a.dtype.kind == "f" and i not in const]
    tens = [torch.tensor(a, requires_grad=i in diff) for i, a in enumerate(arrays)]
    tout = theirs(*tens)
    g = rng.standard_normal(tuple(tout.shape))
    (tout * torch.tensor(g)).sum().backward()
    want = [tens[i].grad.numpy() for i in diff]

    mine = [ad.Variable(a) if i in diff else a for i, a in enumerate(arrays)]
    out = ours(*mine)
    assert tuple(out.shape) == tuple(tout.shape)
    assert np.asarray(out.value).dtype == np.float64
    close(out.value, tout.detach().numpy(), tol)
    np.sum(out * g).backward()
    for i, w in zip(diff, want):
        close(mine[i].grad, w, tol)

    def f(*d):
        a = list(arrays)
        for i, v in zip(diff, d):
            a[i] = v
        return np.sum(ours(*a) * g)

    got = ad.grad(f, argnums=tuple(range(len(diff))))(*[arrays[i] for i in diff])
    for gi, w in zip(got, want):
        close(gi, w, tol)
    return want


def _params(fn):
    return [(p.name, p.default, p.kind == p.KEYWORD_ONLY)
            for p in inspect.signature(fn).parameters.values() if p.name != "self"]


# ----- exports and signatures -----

FUNCTIONS = ["multilabel_margin_loss", "triplet_margin_with_distance_loss", "ctc_loss"]
MODULES = ["MultiLabelMarginLoss", "TripletMarginWithDistanceLoss", "CTCLoss"]


def test_exported_with_torchs_signatures():
    for name in FUNCTIONS:
        assert name in F.__all__
        assert _params(getattr(F, name)) == _params(getattr(TF, name)), name
    for name in MODULES:
        assert name in nn.__all__ and issubclass(getattr(nn, name), nn.Module)
        cls, tcls = getattr(nn, name), getattr(torch.nn, name)
        assert _params(cls.__init__) == _params(tcls.__init__), name
        assert _params(cls.forward) == _params(tcls.forward), name


def test_module_defaults_as_torch():
    ours, theirs = nn.CTCLoss(), torch.nn.CTCLoss()
    assert (ours.blank, ours.reduction, ours.zero_infinity) == \
        (theirs.blank, theirs.reduction, theirs.zero_infinity)
    m = nn.TripletMarginWithDistanceLoss()
    assert (m.margin, m.swap, m.reduction) == (1.0, False, "mean")
    assert isinstance(m.distance_function, nn.PairwiseDistance)      # a submodule, as torch
    assert nn.MultiLabelMarginLoss().reduction == "mean"
    assert nn.CTCLoss(blank=3).state_dict() == {}
    with pytest.raises(TypeError):
        nn.TripletMarginWithDistanceLoss(None)                        # keyword-only
    with pytest.raises(TypeError):
        nn.MultiLabelMarginLoss(size_average=True)
    for name in MODULES:
        with pytest.raises(ValueError):
            getattr(nn, name)(reduction="avg")


# ----- multilabel_margin_loss -----

def _mlm_case():
    x = rng.standard_normal((5, 4))
    y = np.array([[3, 0, -1, 1],       # targets {3, 0}; the 1 after the -1 is ignored
                  [1, 1, -1, -1],      # a class listed twice counts twice (torch)
                  [-1, 2, 3, 0],       # no targets: loss 0
                  [0, 1, 2, 3],        # every class a target: loss 0
                  [2, -1, 0, 0]])
    x[4] = [0.5, 0.0, 1.5, 0.5]        # x[2] - x[0] = 1 and x[2] - x[3] = 1: hinges at 0
    return x, y


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_multilabel_margin_loss_matches_torch(reduction):
    x, y = _mlm_case()
    kw = {"reduction": reduction}
    check(lambda a, b: F.multilabel_margin_loss(a, b, **kw),
          lambda a, b: TF.multilabel_margin_loss(a, b, **kw), [x, y])
    check(nn.MultiLabelMarginLoss(**kw), torch.nn.MultiLabelMarginLoss(**kw), [x, y])
    for i in (0, 1, 4):                                                   # 1-d input
        check(nn.MultiLabelMarginLoss(**kw), torch.nn.MultiLabelMarginLoss(**kw), [x[i], y[i]])
    check(nn.MultiLabelMarginLoss(**kw), torch.nn.MultiLabelMarginLoss(**kw),   # 0-d input
          [np.array(0.3), np.array([0])])


def test_multilabel_margin_loss_larger_random():
    x = rng.standard_normal((7, 6)) * 2
    y = np.full((7, 6), -1)
    for n in range(7):
        k = rng.integers(0, 7)
        y[n, :k] = rng.choice(6, size=k, replace=False) if k < 7 else np.arange(6)
    for reduction in REDUCTIONS:
        check(lambda a, b: F.multilabel_margin_loss(a, b, reduction=reduction),
              lambda a, b: TF.multilabel_margin_loss(a, b, reduction=reduction), [x, y])


def test_multilabel_margin_loss_float32():
    x = ad.Variable(rng.standard_normal((3, 4)).astype(np.float32))
    out = F.multilabel_margin_loss(x, np.array([[0, -1, 0, 0]] * 3))
    assert out.dtype == np.float32
    out.backward()
    assert x.grad.dtype == np.float32


def test_multilabel_margin_loss_errors_as_torch():
    x = np.ones((3, 5))
    y = np.zeros((3, 5), dtype=np.int64)
    cases = [(x, y[:, :4], "inconsistent target size"),
             (x, np.full((3, 5), 5), "out of range"),
             (x, np.full((3, 5), -2), "out of range"),
             (x[0], np.array([0, -1, 7, 0, 0]), "out of range"),    # after the -1 too
             (np.ones((2, 3, 4)), np.zeros((2, 3, 4), dtype=np.int64), "non-empty vector"),
             (np.ones(0), np.zeros(0, dtype=np.int64), "non-empty vector")]
    for a, b, msg in cases:
        with pytest.raises(RuntimeError, match=msg):
            TF.multilabel_margin_loss(torch.tensor(a), torch.tensor(b))
        with pytest.raises(RuntimeError, match=msg):
            F.multilabel_margin_loss(a, b)
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        F.multilabel_margin_loss(x, y, reduction="avg")
    with pytest.raises(TypeError, match="integer"):
        F.multilabel_margin_loss(x, y.astype(float))
    with pytest.raises(TypeError, match="size_average"):
        F.multilabel_margin_loss(x, y, size_average=True)


# ----- triplet_margin_with_distance_loss -----

def _cosine_distance(lib):
    return lambda a, b: 1.0 - lib.cosine_similarity(a, b, dim=-1)


TRIPLET = [{}, {"margin": 0.5}, {"swap": True}, {"margin": 2.0, "swap": True},
           {"distance": "cosine"}, {"distance": "cosine", "swap": True},
           {"distance": "l1"}]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", TRIPLET, ids=[str(k) for k in TRIPLET])
def test_triplet_margin_with_distance_loss_matches_torch(kw, reduction):
    kw = dict(kw, reduction=reduction)
    ours_kw, torch_kw = dict(kw), dict(kw)
    distance = kw.pop("distance", None)
    ours_kw.pop("distance", None)
    torch_kw.pop("distance", None)
    if distance == "cosine":
        ours_kw["distance_function"] = _cosine_distance(F)
        torch_kw["distance_function"] = _cosine_distance(TF)
    elif distance == "l1":
        ours_kw["distance_function"] = nn.PairwiseDistance(p=1.0)
        torch_kw["distance_function"] = torch.nn.PairwiseDistance(p=1.0)
    a, p, n = (rng.standard_normal((6, 4)) for _ in range(3))
    check(lambda *v: F.triplet_margin_with_distance_loss(*v, **ours_kw),
          lambda *v: TF.triplet_margin_with_distance_loss(*v, **torch_kw), [a, p, n])
    check(nn.TripletMarginWithDistanceLoss(**ours_kw),
          torch.nn.TripletMarginWithDistanceLoss(**torch_kw), [a, p, n])
    check(nn.TripletMarginWithDistanceLoss(**ours_kw),                        # 1-d inputs
          torch.nn.TripletMarginWithDistanceLoss(**torch_kw), [a[0], p[0], n[0]])


def test_triplet_margin_with_distance_loss_kinks_as_torch():
    # Row 0: margin + d(a,p) - d(a,n) = 0 exactly (clamp_min passes the gradient); row 1:
    # d(a,n) = d(p,n) under swap (the minimum's tie splits the gradient evenly).
    a = np.array([[0.0, 0.0], [0.0, 0.0]])
    p = np.array([[1.0, 0.0], [0.0, 2.0]])
    n = np.array([[0.0, 2.0], [1.0, 1.0]])
    for kw in ({"margin": 1.0}, {"margin": 5.0, "swap": True}):
        check(lambda *v: F.triplet_margin_with_distance_loss(
                  *v, distance_function=lambda x, y: F.pairwise_distance(x, y, eps=0.0), **kw),
              lambda *v: TF.triplet_margin_with_distance_loss(
                  *v, distance_function=lambda x, y: TF.pairwise_distance(x, y, eps=0.0), **kw),
              [a, p, n])


def test_triplet_margin_with_distance_loss_equals_triplet_margin_loss():
    a, p, n = (rng.standard_normal((5, 3)) for _ in range(3))
    for swap in (False, True):
        close(F.triplet_margin_with_distance_loss(a, p, n, swap=swap, reduction="none"),
              F.triplet_margin_loss(a, p, n, swap=swap, reduction="none"), 1e-14)


def test_triplet_margin_with_distance_loss_errors_as_torch():
    x = np.ones((2, 3))
    t = torch.tensor(x)
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0.0"):
        TF.triplet_margin_with_distance_loss(t, t, t, margin=0.0)
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0.0"):
        F.triplet_margin_with_distance_loss(x, x, x, margin=0.0)
    with pytest.raises(ValueError, match="expected margin to be greater than 0, got -1"):
        nn.TripletMarginWithDistanceLoss(margin=-1)
    with pytest.raises(RuntimeError, match="anchor 2D, positive 1D, and negative 2D"):
        TF.triplet_margin_with_distance_loss(t, t[0], t)
    with pytest.raises(RuntimeError, match="anchor 2D, positive 1D, and negative 2D"):
        F.triplet_margin_with_distance_loss(x, x[0], x)
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        F.triplet_margin_with_distance_loss(x, x, x, reduction="avg")
    with pytest.raises(TypeError):
        F.triplet_margin_with_distance_loss(x, x, x, None)                 # keyword-only


def test_triplet_margin_with_distance_loss_hessian_matches_torch():
    a, p, n = (rng.standard_normal((3, 4)) for _ in range(3))
    n[0] = a[0] + 0.3 * rng.standard_normal(4)             # every hinge active (margin 4)
    for swap in (False, True):
        def ours(v):
            v = v.reshape(3, 4)
            return F.triplet_margin_with_distance_loss(v, p, n, margin=4.0, swap=swap)

        def theirs(v):
            v = v.reshape(3, 4)
            return TF.triplet_margin_with_distance_loss(v, torch.tensor(p), torch.tensor(n),
                                                        margin=4.0, swap=swap)

        flat = a.reshape(-1)
        want = torch.autograd.functional.hessian(theirs, torch.tensor(flat)).numpy()
        assert np.all(np.isfinite(want)) and np.abs(want).max() > 0.1
        close(ad.hessian(ours)(flat), want)


# ----- ctc_loss -----

T, N, C = 8, 4, 5
PADDED = np.array([[1, 2, 2, 0, 0],      # a repeated label: needs a blank between
                   [3, 1, 4, 2, 1],
                   [4, 4, 4, 0, 3],      # three repeats: 5 frames at least
                   [2, 0, 0, 0, 0]])
IN_LENGTHS = np.array([8, 6, 5, 7])
TG_LENGTHS = np.array([3, 5, 3, 0])      # sample 3: an empty target (all blanks)


def _concatenated(padded, lengths):
    return np.concatenate([row[:k] for row, k in zip(padded, lengths)])


def _ctc_pair(targets, input_lengths, target_lengths, **kw):
    """Ours and torch's ctc_loss of logits (through log_softmax, the documented use)."""
    def ours(x):
        return F.ctc_loss(F.log_softmax(x, dim=-1), targets, input_lengths, target_lengths,
                          **kw)

    def theirs(x):
        return TF.ctc_loss(x.log_softmax(-1), torch.tensor(targets),
                           torch.tensor(input_lengths), torch.tensor(target_lengths), **kw)
    return ours, theirs


@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("form", ["padded", "concatenated"])
def test_ctc_loss_matches_torch(form, reduction, zero_infinity):
    x = rng.standard_normal((T, N, C))
    targets = PADDED if form == "padded" else _concatenated(PADDED, TG_LENGTHS)
    kw = {"reduction": reduction, "zero_infinity": zero_infinity}
    check(*_ctc_pair(targets, IN_LENGTHS, TG_LENGTHS, **kw), [x])
    # The module, on log-probabilities computed outside
    lp = np.asarray(F.log_softmax(x, dim=-1))
    mod = nn.CTCLoss(reduction=reduction, zero_infinity=zero_infinity)
    tmod = torch.nn.CTCLoss(reduction=reduction, zero_infinity=zero_infinity)
    close(mod(lp, targets, IN_LENGTHS, TG_LENGTHS),
          tmod(torch.tensor(lp), torch.tensor(targets), torch.tensor(IN_LENGTHS),
               torch.tensor(TG_LENGTHS)).numpy())


def test_ctc_loss_gradient_wrt_log_probs_is_the_true_one():
    # torch's backward returns exp(log_probs) + ∂loss/∂log_probs for the frames in the input
    # (what a log_softmax before it turns into the right logits gradient); ours is the
    # derivative of the value itself.
    lp = np.asarray(F.log_softmax(rng.standard_normal((T, N, C)), dim=-1))
    g = rng.standard_normal(N)
    tl = torch.tensor(lp, requires_grad=True)
    out = TF.ctc_loss(tl, torch.tensor(PADDED), torch.tensor(IN_LENGTHS),
                      torch.tensor(TG_LENGTHS), reduction="none")
    (out * torch.tensor(g)).sum().backward()
    ours = ad.grad(lambda v: np.sum(F.ctc_loss(v, PADDED, IN_LENGTHS, TG_LENGTHS,
                                               reduction="none") * g))(lp)
    frames = (np.arange(T)[:, None] < IN_LENGTHS)[:, :, None]
    close(ours + frames * g[:, None] * np.exp(lp), tl.grad.numpy())
    # and it is the derivative: a central difference
    e = np.zeros_like(lp)
    e[2, 1, 4] = 1e-6

    def f(v):
        return np.sum(np.asarray(F.ctc_loss(v, PADDED, IN_LENGTHS, TG_LENGTHS,
                                            reduction="none")) * g)
    assert abs((f(lp + e) - f(lp - e)) / 2e-6 - ours[2, 1, 4]) < 1e-6


def test_ctc_loss_larger_random():
    t, n, c = 15, 5, 7
    x = rng.standard_normal((t, n, c)) * 2
    il = rng.integers(6, t + 1, size=n)
    tl = rng.integers(0, 6, size=n)
    padded = rng.integers(1, c, size=(n, 6))
    padded[0, :3] = [2, 2, 2]
    for reduction in REDUCTIONS:
        check(*_ctc_pair(padded, il, tl, reduction=reduction), [x])
        check(*_ctc_pair(_concatenated(padded, tl), il, tl, reduction=reduction), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_loss_unbatched_matches_torch(reduction):
    x = rng.standard_normal((T, C))
    # Unbatched 1-d targets are read as concatenated (exactly target_length labels)
    for targets, il, tl in [(np.array([1, 3, 3]), np.array(7), np.array(3)),
                            (np.array([[1, 3, 3, 0]]), np.array([8]), np.array([3])),
                            (np.array([2]), 1, 1)]:
        ours, theirs = _ctc_pair(targets, il, tl, reduction=reduction)
        if isinstance(il, int):                 # torch wants lists/tensors; ours any int
            theirs = _ctc_pair(targets, [il], [tl], reduction=reduction)[1]
        check(ours, theirs, [x])
        assert np.shape(ours(x)) == ()


@pytest.mark.parametrize("blank", [2, C - 1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_loss_blank_not_zero(blank, reduction):
    x = rng.standard_normal((T, N, C))
    # label 0 is a class here; sample 1: a repeat (3 3), sample 2: 5 labels in 5 frames
    targets = np.array([[0, 1, 0, 3, 0], [3, 3, 1, 0, 0], [0, 1, 0, 1, 0], [1, 0, 3, 1, 0]])
    assert not np.any(targets == blank)
    check(*_ctc_pair(targets, IN_LENGTHS, np.array([3, 4, 5, 2]), blank=blank,
                     reduction=reduction), [x])


def test_ctc_loss_repeated_labels_need_a_blank():
    x = rng.standard_normal((3, 1, C))
    lp = np.asarray(F.log_softmax(x, dim=-1))
    # [1, 1] in 3 frames: only "1 blank 1"; in 2 frames: impossible
    got = F.ctc_loss(lp, np.array([[1, 1]]), [3], [2], reduction="none")
    close(got, [-(lp[0, 0, 1] + lp[1, 0, 0] + lp[2, 0, 1])])
    assert F.ctc_loss(lp, np.array([[1, 1]]), [2], [2], reduction="sum") == np.inf
    # [1, 2] in 2 frames: only "1 2"
    close(F.ctc_loss(lp, np.array([[1, 2]]), [2], [2], reduction="sum"),
          -(lp[0, 0, 1] + lp[1, 0, 2]))
    for il, tl in (([3], [2]), ([2], [2])):
        for reduction in REDUCTIONS:
            close(F.ctc_loss(lp, np.array([[1, 1]]), il, tl, reduction=reduction),
                  TF.ctc_loss(torch.tensor(lp), torch.tensor([[1, 1]]), torch.tensor(il),
                              torch.tensor(tl), reduction=reduction).numpy())


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_ctc_loss_impossible_alignment(reduction):
    x = rng.standard_normal((T, N, C))
    il = np.array([8, 4, 5, 7])      # sample 1: 5 labels in 4 frames; sample 2: 4 4 4 in 5
    tl = np.array([3, 5, 3, 0])
    targets = PADDED.copy()
    targets[2, :3] = [4, 4, 4]
    il[2] = 4                        # 4 4 4 needs 5 frames
    ours, theirs = _ctc_pair(targets, il, tl, reduction="none")
    assert list(np.isinf(ours(x))) == [False, True, True, False]
    close(ours(x), theirs(torch.tensor(x)).detach().numpy())
    # zero_infinity: the infinite losses and their gradients are zero, as torch's
    check(*_ctc_pair(targets, il, tl, reduction=reduction, zero_infinity=True), [x])
    # without it: +inf, as torch. torch's gradient of an infinite loss is NaN; ours is 0 for
    # the impossible samples, the others' gradients are torch's.
    ours, theirs = _ctc_pair(targets, il, tl, reduction=reduction)
    xt = torch.tensor(x, requires_grad=True)
    tout = theirs(xt)
    out = ours(x)
    close(out, tout.detach().numpy())
    assert np.all(np.isinf(out) == [False, True, True, False] if reduction == "none"
                  else np.isinf(out))
    g = np.ones(tuple(tout.shape))
    (tout * torch.tensor(g)).sum().backward()
    got = ad.grad(lambda v: np.sum(ours(v) * g))(x)
    assert np.all(np.isnan(xt.grad.numpy()[:4, 1:3]))       # the frames of the inputs
    assert np.all(got[:, 1:3] == 0)
    close(got[:, [0, 3]], xt.grad.numpy()[:, [0, 3]])


def test_ctc_loss_empty_inputs_and_lengths():
    x = rng.standard_normal((T, N, C))
    il = np.array([0, 0, 5, 7])      # an empty input: 0 for an empty target, inf otherwise
    tl = np.array([0, 2, 3, 0])
    for reduction in REDUCTIONS:
        for zi in (False, True):
            ours, theirs = _ctc_pair(PADDED, il, tl, reduction=reduction, zero_infinity=zi)
            close(ours(x), theirs(torch.tensor(x)).detach().numpy())
    check(*_ctc_pair(PADDED, il, tl, reduction="sum", zero_infinity=True), [x])
    # every input empty, and an empty target list
    ours, theirs = _ctc_pair(PADDED, np.zeros(N, int), np.array([0, 1, 0, 0]),
                             reduction="none")
    close(ours(x), theirs(torch.tensor(x)).detach().numpy())
    ours, theirs = _ctc_pair(np.zeros(0, int), IN_LENGTHS, np.zeros(N, int), reduction="none")
    check(ours, theirs, [x])


def test_ctc_loss_float_targets_and_list_lengths_as_torch():
    lp = np.asarray(F.log_softmax(rng.standard_normal((T, N, C)), dim=-1))
    want = TF.ctc_loss(torch.tensor(lp), torch.tensor(PADDED), torch.tensor(IN_LENGTHS),
                       torch.tensor(TG_LENGTHS), reduction="none").numpy()
    close(F.ctc_loss(lp, PADDED + 0.5, list(IN_LENGTHS), tuple(TG_LENGTHS), reduction="none"),
          want)                                       # float targets: truncated, as torch
    close(F.ctc_loss(lp, PADDED, IN_LENGTHS[None], TG_LENGTHS, reduction="none"), want)


def test_ctc_loss_float32_stays_float32():
    x = ad.Variable(rng.standard_normal((T, N, C)).astype(np.float32))
    out = F.ctc_loss(F.log_softmax(x, dim=-1), PADDED, IN_LENGTHS, TG_LENGTHS)
    assert out.dtype == np.float32
    out.backward()
    assert x.grad.dtype == np.float32 and np.all(np.isfinite(x.grad))


def test_ctc_loss_errors_as_torch():
    lp = np.asarray(F.log_softmax(rng.standard_normal((T, N, C)), dim=-1))
    base = {"log_probs": lp, "targets": PADDED, "input_lengths": IN_LENGTHS,
            "target_lengths": TG_LENGTHS}
    cases = [({"input_lengths": np.array([9, 5, 5, 5])}, "at most 8, but got value 9"),
             ({"input_lengths": np.array([-1, 5, 5, 5])}, "at least 0, but got value -1"),
             ({"target_lengths": np.array([-1, 1, 1, 1])}, "at least 0, but got value -1"),
             ({"input_lengths": IN_LENGTHS[:3]}, "input_lengths must be of size batch_size"),
             ({"target_lengths": TG_LENGTHS[:3]}, "target_lengths must be of size batch_size"),
             ({"input_lengths": IN_LENGTHS * 1.0}, "input_lengths must be integral"),
             ({"target_lengths": TG_LENGTHS * 1.0}, "target_lengths must be integral"),
             ({"target_lengths": np.array([6, 1, 1, 1])},
              "size at least 6 at dimension 1, but got size 5"),
             ({"targets": PADDED[:3]}, "size 4 at dimension 0, but got size 3"),
             ({"targets": _concatenated(PADDED, TG_LENGTHS)[:-1]},
              "size 11 at dimension 0, but got size 10"),
             ({"targets": PADDED[None]}, "Expected 1 to 2 dimensions"),
             ({"log_probs": lp[None]}, "Expected 3-dimensional tensor"),
             ({"blank": C}, "blank must be in label range"),
             ({"blank": -1}, "blank must be in label range")]
    for change, msg in cases:
        kw = dict(base, **change)
        tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        with pytest.raises(RuntimeError, match=msg):
            TF.ctc_loss(**tkw)
        with pytest.raises(RuntimeError, match=msg):
            F.ctc_loss(**kw)
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        F.ctc_loss(**base, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nn.CTCLoss(reduction="avg")
    with pytest.raises(RuntimeError, match=r"labels must lie in \[0, 5\)"):
        F.ctc_loss(**dict(base, targets=PADDED + 5))   # torch reads out of bounds here
