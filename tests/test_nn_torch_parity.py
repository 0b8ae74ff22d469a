"""The modules and functions PyTorch users reach for, against torch with copied weights:
forward values and every gradient (inputs and parameters), float64 to 1e-10; PyTorch's
parameter names, shapes and default initialisations; derivatives to second order."""
import math

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(0)


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [o for x in out for o in _flat(x)]
    return [] if out is None else [out]


def run_both(ours, theirs, arrays, *, args=(), kwargs=None, torch_kwargs=None, tol=1e-10,
             const=()):
    """Call ``ours`` and ``theirs`` on the same float64 inputs (``arrays``: float arrays are
    differentiated, integer/boolean ones passed as they are), after copying torch's state
    into ours; compare every output, then the gradients of Σ gᵢ·outᵢ (random gᵢ) for the
    inputs and for every parameter by name."""
    kwargs = kwargs or {}
    torch_kwargs = kwargs if torch_kwargs is None else torch_kwargs
    if isinstance(ours, nn.Module):
        theirs.double()
        state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
        assert list(state) == list(ours.state_dict()), (list(state), list(ours.state_dict()))
        ours.load_state_dict(state)
    mine, yours = [], []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        if a.dtype.kind == "f" and i not in const:
            mine.append(ad.Variable(a))
            yours.append(torch.tensor(a, requires_grad=True))
        else:
            mine.append(a)
            yours.append(torch.tensor(a))
    out = _flat(ours(*mine, *args, **kwargs))
    tout = _flat(theirs(*yours, *args, **torch_kwargs))
    assert len(out) == len(tout)
    total, ttotal = 0.0, 0.0
    for o, t in zip(out, tout):
        assert tuple(o.shape) == tuple(t.shape), (o.shape, t.shape)
        close(o.value, t.detach().numpy(), tol)
        g = rng.standard_normal(tuple(t.shape))
        total = total + np.sum(o * g)
        ttotal = ttotal + (t * torch.tensor(g)).sum()
    total.backward()
    ttotal.backward()
    for m, t in zip(mine, yours):
        if isinstance(m, ad.Variable):
            close(m.grad, t.grad.numpy(), tol)
    if isinstance(ours, nn.Module):
        tp = dict(theirs.named_parameters())
        ps = dict(ours.named_parameters())
        assert set(ps) == set(tp)
        for name, p in ps.items():
            assert tp[name].grad is not None or p.grad is None
            if tp[name].grad is not None:
                close(p.grad, tp[name].grad.numpy(), tol)
    return out, tout


# ----- losses -----

def _logits(*shape):
    return rng.standard_normal(shape) * 2


LOSS_CASES = [
    ("CrossEntropyLoss", {}, "labels"),
    ("CrossEntropyLoss", {"reduction": "sum"}, "labels"),
    ("CrossEntropyLoss", {"reduction": "none"}, "labels"),
    ("CrossEntropyLoss", {"ignore_index": 2}, "labels"),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, "labels"),
    ("CrossEntropyLoss", {"weight": np.array([0.5, 2.0, 1.0, 3.0])}, "labels"),
    ("CrossEntropyLoss", {"weight": np.array([0.5, 2.0, 1.0, 3.0]), "label_smoothing": 0.1,
                          "ignore_index": 1}, "labels"),
    ("CrossEntropyLoss", {"weight": np.array([0.5, 2.0, 1.0, 3.0]), "label_smoothing": 0.1,
                          "reduction": "none"}, "labels"),
    ("CrossEntropyLoss", {"label_smoothing": 0.1}, "probs"),
    ("CrossEntropyLoss", {"ignore_index": 0}, "labels3d"),
    ("NLLLoss", {}, "logp"),
    ("NLLLoss", {"weight": np.array([0.5, 2.0, 1.0, 3.0]), "ignore_index": 3}, "logp"),
    ("NLLLoss", {"reduction": "sum"}, "logp"),
]


@pytest.mark.parametrize("name,kw,kind", LOSS_CASES,
                         ids=[f"{n}-{'-'.join(k)}-{c}" for n, k, c in LOSS_CASES])
def test_classification_losses_match_torch(name, kw, kind):
    N, C = 6, 4
    x = _logits(N, C, 3) if kind == "labels3d" else _logits(N, C)
    if kind in ("labels", "logp"):
        y = np.array([0, 1, 2, 3, 2, 1])
    elif kind == "labels3d":
        y = rng.integers(0, C, size=(N, 3))
    else:
        y = np.exp(_logits(N, C))
        y /= y.sum(1, keepdims=True)
    if kind == "logp":
        x = x - np.log(np.exp(x).sum(1, keepdims=True))
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    run_both(getattr(nn, name)(**kw), getattr(torch.nn, name)(**tkw), [x, y])


REGRESSION = [
    ("MSELoss", {}), ("MSELoss", {"reduction": "sum"}), ("L1Loss", {}),
    ("L1Loss", {"reduction": "none"}), ("HuberLoss", {"delta": 0.5}),
    ("HuberLoss", {"reduction": "sum"}), ("SmoothL1Loss", {"beta": 0.5}),
    ("SmoothL1Loss", {}),
]


@pytest.mark.parametrize("name,kw", REGRESSION, ids=[f"{n}{k}" for n, k in REGRESSION])
def test_regression_losses_match_torch(name, kw):
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    run_both(getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw), [x, y])


@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"}, {"weight": "w"}])
def test_bce_losses_match_torch(kw):
    p = 1 / (1 + np.exp(-_logits(5, 3)))
    y = (rng.random((5, 3)) > 0.5).astype(float)
    w = rng.random((5, 3)) + 0.5
    k = {key: (w if v == "w" else v) for key, v in kw.items()}
    tk = {key: (torch.tensor(w) if v == "w" else v) for key, v in kw.items()}
    run_both(nn.BCELoss(**k), torch.nn.BCELoss(**tk), [p, y])
    run_both(nn.BCEWithLogitsLoss(**k), torch.nn.BCEWithLogitsLoss(**tk), [_logits(5, 3), y])


def test_bce_with_logits_pos_weight_matches_torch():
    pw = np.array([0.5, 2.0, 3.0])
    y = (rng.random((5, 3)) > 0.5).astype(float)
    run_both(nn.BCEWithLogitsLoss(pos_weight=pw),
             torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw)), [_logits(5, 3), y])
    assert "pos_weight" in nn.BCEWithLogitsLoss(pos_weight=pw).state_dict()


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(reduction, log_target):
    logp = _logits(4, 5)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    q = np.exp(_logits(4, 5))
    q /= q.sum(1, keepdims=True)
    q[0, 1] = 0.0                       # a zero target probability counts for nothing
    t = np.log(q + 1e-3) if log_target else q
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch warns about reduction='mean'
        run_both(nn.KLDivLoss(reduction=reduction, log_target=log_target),
                 torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), [logp, t],
                 const=() if log_target else (1,))   # torch: NaN d/dq at q = 0, ours finite


def test_loss_argument_errors():
    with pytest.raises(ValueError):
        nn.MSELoss(reduction="avg")
    with pytest.raises(TypeError):
        nn.MSELoss(size_average=True)
    with pytest.raises(ValueError):
        nn.KLDivLoss(reduction="batchsum")
    with pytest.raises(ValueError):
        nn.CrossEntropyLoss()(np.zeros((2, 3)), np.array([0, 3]))


# ----- attention and transformers -----

def _mha_pair(E=8, H=2, **kw):
    torch.manual_seed(0)
    return nn.MultiheadAttention(E, H, **kw), torch.nn.MultiheadAttention(E, H, **kw)


MHA_CASES = {
    "self": dict(),
    "cross-L-S": dict(S=5),
    "kpm": dict(kpm=True),
    "bool-mask": dict(mask="bool"),
    "float-mask": dict(mask="float"),
    "3d-mask": dict(mask="3d"),
    "per-head": dict(average=False),
    "no-weights": dict(need_weights=False),
    "batch-first": dict(batch_first=True, kpm=True),
    "no-bias": dict(bias=False),
    "kdim-vdim": dict(kdim=3, vdim=5, S=4),
    "unbatched": dict(unbatched=True, mask="bool"),
}


@pytest.mark.parametrize("case", list(MHA_CASES))
def test_multihead_attention_matches_torch(case):
    c = MHA_CASES[case]
    L, N, E, H = 4, 3, 8, 2
    S = c.get("S", L)
    kw = {k: c[k] for k in ("batch_first", "bias", "kdim", "vdim") if k in c}
    ours, theirs = _mha_pair(E, H, **kw)
    bf = c.get("batch_first", False)

    def seq(n, d):
        if c.get("unbatched"):
            return rng.standard_normal((n, d))
        return rng.standard_normal((N, n, d) if bf else (n, N, d))

    q = seq(L, E)
    k, v = seq(S, c.get("kdim", E)), seq(S, c.get("vdim", E))
    if "S" not in c and "kdim" not in c:
        k = v = q                                   # self-attention: one input three times
        arrays = [q, q, q]
    else:
        arrays = [q, k, v]
    fkw, tkw = {}, {}
    if c.get("kpm"):
        kpm = np.zeros((N, S), bool)
        kpm[0, -1] = kpm[2, :2] = True
        fkw["key_padding_mask"], tkw["key_padding_mask"] = kpm, torch.tensor(kpm)
    mask = c.get("mask")
    if mask == "bool":
        m = np.triu(np.ones((L, S), bool), 1)
    elif mask == "float":
        m = rng.standard_normal((L, S))
    elif mask == "3d":
        m = rng.standard_normal((N * H, L, S))
    if mask:
        fkw["attn_mask"], tkw["attn_mask"] = m, torch.tensor(m)
    for key in ("need_weights",):
        if key in c:
            fkw[key] = tkw[key] = c[key]
    if "average" in c:
        fkw["average_attn_weights"] = tkw["average_attn_weights"] = c["average"]
    out, tout = run_both(ours, theirs, arrays, kwargs=fkw, torch_kwargs=tkw)
    assert len(out) == (1 if c.get("need_weights") is False else 2)


def test_multihead_attention_parameters_as_torch():
    mha = nn.MultiheadAttention(12, 3)
    names = [n for n, _ in mha.named_parameters()]
    assert names == [n for n, _ in torch.nn.MultiheadAttention(12, 3).named_parameters()]
    assert mha.in_proj_weight.shape == (36, 12) and mha.batch_first is False
    assert np.all(mha.in_proj_bias.value == 0) and np.all(mha.out_proj.bias.value == 0)
    bound = math.sqrt(6.0 / (12 + 36))              # Xavier-uniform on (3E, E)
    w = mha.in_proj_weight.value
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    with pytest.raises(AssertionError):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(RuntimeError, match="is_causal"):
        mha(np.ones((2, 1, 12)), np.ones((2, 1, 12)), np.ones((2, 1, 12)), is_causal=True)


SDPA_CASES = {
    "plain": {}, "bool": {"mask": "bool"}, "float": {"mask": "float"},
    "causal": {"is_causal": True}, "scale": {"scale": 0.3}, "L-ne-S": {"S": 6},
    "broadcast-mask": {"mask": "bcast"},
}


@pytest.mark.parametrize("case", list(SDPA_CASES))
def test_scaled_dot_product_attention_matches_torch(case):
    c = SDPA_CASES[case]
    N, H, L, E = 2, 3, 4, 5
    S = c.get("S", L)
    q = rng.standard_normal((N, H, L, E))
    k, v = rng.standard_normal((N, H, S, E)), rng.standard_normal((N, H, S, 7))
    kw = {key: c[key] for key in ("is_causal", "scale") if key in c}
    tkw = dict(kw)
    if c.get("mask") == "bool":
        m = rng.random((N, H, L, S)) > 0.3
        m[..., 0] = True                            # no row fully masked
        kw["attn_mask"], tkw["attn_mask"] = m, torch.tensor(m)
    elif c.get("mask") == "float":
        m = rng.standard_normal((L, S))
        kw["attn_mask"], tkw["attn_mask"] = m, torch.tensor(m)
    elif c.get("mask") == "bcast":
        m = rng.random((N, 1, 1, S)) > 0.2
        m[..., 0] = True
        kw["attn_mask"], tkw["attn_mask"] = m, torch.tensor(m)
    run_both(F.scaled_dot_product_attention, TF.scaled_dot_product_attention, [q, k, v],
             kwargs=kw, torch_kwargs=tkw)


def test_scaled_dot_product_attention_second_order_and_dropout():
    q, k, v = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    ad.check_grads(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                   (q, k, v), order=2)
    nn.init.manual_seed(0)
    ones = np.ones((1, 200, 200))
    out = F.scaled_dot_product_attention(ones * 0.0, ones * 0.0, ones, dropout_p=0.25)
    assert abs(np.mean(out) - 1.0) < 0.02      # inverted dropout keeps the mean
    assert np.std(out) > 0.01                  # and the weights were dropped


TRANSFORMER_CASES = {
    "post-norm": {}, "pre-norm": {"norm_first": True}, "gelu": {"activation": "gelu"},
    "batch-first-masks": {"batch_first": True, "masks": True},
    "no-bias": {"bias": False},
}


@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
def test_transformer_encoder_layer_matches_torch(case):
    c = dict(TRANSFORMER_CASES[case])
    masks = c.pop("masks", False)
    kw = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, **c)
    torch.manual_seed(1)
    ours, theirs = nn.TransformerEncoderLayer(**kw), torch.nn.TransformerEncoderLayer(**kw)
    L, N = 5, 3
    x = rng.standard_normal((N, L, 8) if c.get("batch_first") else (L, N, 8))
    fkw, tkw = {}, {}
    if masks:
        m = np.triu(np.ones((L, L), bool), 1)
        kpm = np.zeros((N, L), bool)
        kpm[1, -2:] = True
        fkw = {"src_mask": m, "src_key_padding_mask": kpm}
        tkw = {"src_mask": torch.tensor(m), "src_key_padding_mask": torch.tensor(kpm)}
    run_both(ours, theirs, [x], kwargs=fkw, torch_kwargs=tkw)


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_decoder_layer_matches_torch(norm_first):
    kw = dict(d_model=8, nhead=4, dim_feedforward=12, dropout=0.0, norm_first=norm_first)
    torch.manual_seed(2)
    ours, theirs = nn.TransformerDecoderLayer(**kw), torch.nn.TransformerDecoderLayer(**kw)
    tgt, mem = rng.standard_normal((4, 2, 8)), rng.standard_normal((6, 2, 8))
    m = nn.transformer.generate_square_subsequent_mask(4)
    kpm = np.zeros((2, 6), bool)
    kpm[0, -1] = True
    run_both(ours, theirs, [tgt, mem],
             kwargs={"tgt_mask": m, "memory_key_padding_mask": kpm},
             torch_kwargs={"tgt_mask": torch.tensor(m),
                           "memory_key_padding_mask": torch.tensor(kpm)})


def test_transformer_stacks_and_defaults():
    layer = nn.TransformerEncoderLayer(8, 2)
    t = torch.nn.TransformerEncoderLayer(8, 2)
    assert layer.linear1.weight.shape == (2048, 8) and layer.dropout.p == 0.1
    assert layer.self_attn.batch_first is False and layer.norm_first is False
    assert list(layer.state_dict()) == list(t.state_dict())
    torch.manual_seed(3)
    kw = dict(d_model=8, nhead=2, dim_feedforward=8, dropout=0.0)
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(**kw), 2, norm=nn.LayerNorm(8))
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**kw), 2,
                                         norm=torch.nn.LayerNorm(8), enable_nested_tensor=False)
    # the two copies are independent parameters
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight
    run_both(ours, theirs, [rng.standard_normal((3, 2, 8))])
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(**kw), 2)
    tdec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(**kw), 2)
    run_both(dec, tdec, [rng.standard_normal((3, 2, 8)), rng.standard_normal((4, 2, 8))])


# ----- convolution, pooling, resampling, normalisation -----

CONV_CASES = [
    ("ConvTranspose2d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1), (2, 4, 5, 4)),
    ("ConvTranspose2d", (4, 6, (2, 3)), dict(groups=2, dilation=2), (2, 4, 3, 4)),
    ("ConvTranspose2d", (3, 2, 3), dict(bias=False), (3, 5, 5)),                # unbatched
    ("ConvTranspose1d", (4, 3, 3), dict(stride=2, padding=1), (2, 4, 6)),
    ("Conv2d", (4, 6, 3), dict(groups=2, padding=1), (2, 4, 5, 5)),
    ("Conv2d", (4, 8, 3), dict(groups=4, stride=2), (2, 4, 7, 7)),              # depthwise
    ("Conv2d", (2, 4, 3), dict(groups=2), (2, 5, 5)),                            # unbatched
    ("Conv1d", (6, 3, 3), dict(groups=3, padding=2, dilation=2), (2, 6, 9)),
    ("Conv2d", (3, 2, 3), dict(padding=1, padding_mode="reflect"), (2, 3, 5, 6)),
    ("Conv2d", (3, 2, 3), dict(padding=(1, 2), padding_mode="replicate"), (2, 3, 5, 6)),
    ("Conv2d", (3, 2, 3), dict(padding=1, padding_mode="circular"), (2, 3, 5, 6)),
    ("Conv1d", (3, 2, 3), dict(padding=2, padding_mode="reflect"), (2, 3, 6)),
]


@pytest.mark.parametrize("name,args,kw,shape", CONV_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CONV_CASES)])
def test_convolutions_match_torch(name, args, kw, shape):
    torch.manual_seed(4)
    ours, theirs = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert ours.weight.shape == tuple(theirs.weight.shape)
    run_both(ours, theirs, [rng.standard_normal(shape)])


def test_conv_transpose_default_init_bounds():
    layer = nn.ConvTranspose2d(4, 6, 3, groups=2)
    fan_in = 3 * 9                                   # weight (4, 3, 3, 3): size(1)·k·k
    for p in (layer.weight, layer.bias):
        a = np.abs(p.value).max()
        assert a <= 1 / math.sqrt(fan_in) and a > 0.5 / math.sqrt(fan_in)
    with pytest.raises(ValueError):
        nn.Conv2d(3, 4, 3, groups=2)


@pytest.mark.parametrize("groups,affine,shape", [(3, True, (2, 6, 4, 5)), (2, False, (3, 4, 7)),
                                                 (1, True, (2, 3, 4)), (6, True, (2, 6, 3))])
def test_group_norm_matches_torch(groups, affine, shape):
    torch.manual_seed(5)
    ours = nn.GroupNorm(groups, shape[1], affine=affine)
    theirs = torch.nn.GroupNorm(groups, shape[1], affine=affine)
    if affine:                      # non-trivial scale and shift
        with torch.no_grad():
            theirs.weight.normal_()
            theirs.bias.normal_()
    run_both(ours, theirs, [rng.standard_normal(shape) * 3 + 1])


@pytest.mark.parametrize("out,shape", [((2, 3), (2, 3, 5, 7)), (1, (2, 3, 4, 4)),
                                       ((3, None), (1, 2, 7, 5)), (4, (3, 4, 6)),
                                       ((5, 7), (1, 1, 5, 7))])
def test_adaptive_avg_pool_matches_torch(out, shape):
    cls = "AdaptiveAvgPool2d" if len(shape) == 4 or isinstance(out, tuple) else "AdaptiveAvgPool1d"
    if len(shape) == 3 and not isinstance(out, tuple):
        cls = "AdaptiveAvgPool1d"
    run_both(getattr(nn, cls)(out), getattr(torch.nn, cls)(out), [rng.standard_normal(shape)])


UPSAMPLE_CASES = [
    dict(scale_factor=2), dict(size=(7, 5)), dict(scale_factor=(1.5, 2.5)),
    dict(size=(7, 9), mode="bilinear", align_corners=True),
    dict(size=(7, 9), mode="bilinear", align_corners=False),
    dict(scale_factor=2, mode="bilinear"),
    dict(scale_factor=1.7, mode="bilinear", align_corners=False),
    dict(size=(3, 2), mode="bilinear"),                           # downsampling
    dict(size=(1, 1), mode="bilinear", align_corners=True),
]


@pytest.mark.parametrize("kw", UPSAMPLE_CASES, ids=[str(k) for k in UPSAMPLE_CASES])
def test_upsample_matches_torch(kw):
    run_both(nn.Upsample(**kw), torch.nn.Upsample(**kw), [rng.standard_normal((2, 3, 4, 5))])


@pytest.mark.parametrize("kw", [dict(scale_factor=3, mode="linear"),
                                dict(size=11, mode="linear", align_corners=True),
                                dict(size=6)])
def test_interpolate_1d_matches_torch(kw):
    run_both(F.interpolate, TF.interpolate, [rng.standard_normal((2, 3, 4))], kwargs=kw)


def test_interpolate_errors():
    with pytest.raises(NotImplementedError):
        F.interpolate(np.ones((1, 1, 2, 2)), scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError):
        F.interpolate(np.ones((1, 1, 2, 2)), size=3, scale_factor=2)
    with pytest.raises(ValueError):
        F.interpolate(np.ones((1, 1, 2, 2)), size=3, align_corners=True)


# ----- activations, cells, containers, embedding -----

@pytest.mark.parametrize("name,kw", [("SiLU", {}), ("Mish", {}), ("GELU", {}),
                                     ("GELU", {"approximate": "tanh"}), ("Hardtanh", {}),
                                     ("ReLU6", {})])
def test_activations_match_torch(name, kw):
    x = rng.standard_normal((4, 6)) * 4
    run_both(getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw), [x])


@pytest.mark.parametrize("name,kw", [("RNNCell", {}), ("RNNCell", {"nonlinearity": "relu"}),
                                     ("LSTMCell", {}), ("GRUCell", {}),
                                     ("LSTMCell", {"bias": False})])
@pytest.mark.parametrize("state", ["zeros", "given", "unbatched"])
def test_cells_match_torch(name, kw, state):
    torch.manual_seed(6)
    ours, theirs = getattr(nn, name)(3, 5, **kw), getattr(torch.nn, name)(3, 5, **kw)
    x = rng.standard_normal((3,) if state == "unbatched" else (4, 3))
    arrays = [x]
    if state == "given":
        arrays.append(rng.standard_normal((4, 5)))
        if name == "LSTMCell":
            arrays.append(rng.standard_normal((4, 5)))

    def call(m):
        def f(x, *s):
            if not s:
                return m(x)
            return m(x, tuple(s) if len(s) == 2 else s[0])
        return f
    # load torch's weights, then compare through the wrappers (hx given as torch takes it)
    theirs.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    run_both(call(ours), call(theirs), arrays)
    tp = dict(theirs.named_parameters())
    for n, p in ours.named_parameters():
        close(p.grad, tp[n].grad.numpy())


def test_cell_init_bounds():
    cell = nn.LSTMCell(3, 16)
    assert cell.weight_ih.shape == (64, 3) and cell.weight_hh.shape == (64, 16)
    for p in cell.parameters():
        assert np.abs(p.value).max() <= 0.25


def _container_net(lib, array):
    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.heads = lib.ModuleDict({"a": lib.Linear(2, 3), "b": lib.Linear(2, 1)})
            self.scales = lib.ParameterList([lib.Parameter(array(np.ones(3))),
                                             lib.Parameter(array(np.zeros(1)))])

        def forward(self, x):
            return self.heads["a"](x) * self.scales[0], self.heads["b"](x) + self.scales[1]
    return Net()


def test_module_dict_and_parameter_list_register_as_torch():
    ours, theirs = _container_net(nn, np.asarray), _container_net(torch.nn, torch.tensor)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    run_both(ours, theirs, [rng.standard_normal((4, 2))])
    assert "a" in ours.heads and len(ours.heads) == 2 and list(ours.heads) == ["a", "b"]
    ours.heads["c"] = nn.Linear(1, 1)
    names = [n for n, _ in ours.named_parameters()]
    assert names[names.index("heads.b.bias") + 1:][:2] == ["heads.c.weight", "heads.c.bias"]
    ours.scales.append(np.ones(2))
    assert len(ours.scales) == 3 and isinstance(ours.scales[2], nn.Parameter)
    with pytest.raises(TypeError):
        nn.ModuleDict({"x": 3})


def test_embedding_padding_idx_as_torch():
    torch.manual_seed(7)
    ours, theirs = nn.Embedding(6, 3, padding_idx=1), torch.nn.Embedding(6, 3, padding_idx=1)
    assert np.all(ours.weight.value[1] == 0)                    # the padding row starts at 0
    with torch.no_grad():
        theirs.weight[1] = torch.tensor([0.5, -1.0, 2.0])       # a non-zero padding row
    idx = np.array([[0, 1, 2], [1, 1, 5]])
    run_both(ours, theirs, [idx])
    assert np.all(ours.weight.grad[1] == 0)
    neg = nn.Embedding(6, 3, padding_idx=-1)
    assert neg.padding_idx == 5 and np.all(neg.weight.value[5] == 0)
    # inside a transform too: no derivative reaches the padding row
    params = {"weight": ours.weight.value}
    g = ad.grad(lambda p: np.sum(nn.functional_call(ours, p, idx) ** 2))(params)
    assert np.all(g["weight"][1] == 0) and np.any(g["weight"][0] != 0)
    pre = nn.Embedding.from_pretrained(np.arange(6.0).reshape(3, 2))
    assert not pre.weight.requires_grad
    close(pre(np.array([2])).value, [[4.0, 5.0]])


# ----- functions -----

PAD_CASES = [((1, 2), "constant", (2, 3, 4)), ((1, 2, 3, 0), "constant", (2, 3, 4)),
             ((-1, 2, 0, -1), "constant", (2, 3, 4)), ((2, 1), "reflect", (2, 3, 4)),
             ((1, 1, 2, 1), "reflect", (1, 2, 3, 4)), ((2, 3), "replicate", (2, 3, 4)),
             ((1, 2, 2, 1), "replicate", (1, 2, 3, 4)), ((2, 1, 1, 3), "circular", (1, 2, 3, 4))]


@pytest.mark.parametrize("pad,mode,shape", PAD_CASES, ids=[f"{m}{p}" for p, m, _ in PAD_CASES])
def test_pad_matches_torch(pad, mode, shape):
    kw = {"mode": mode}
    if mode == "constant":
        kw["value"] = 0.5
    run_both(lambda x: F.pad(x, pad, **kw), lambda x: TF.pad(x, pad, **kw),
             [rng.standard_normal(shape)])


def test_pad_second_order_and_errors():
    ad.check_grads(lambda x: np.sum(F.pad(x, (2, 1), mode="reflect") ** 3), (
        rng.standard_normal((2, 4)),), order=2)
    with pytest.raises(ValueError):
        F.pad(np.ones((2, 3)), (3, 0), mode="reflect")
    with pytest.raises(ValueError):
        F.pad(np.ones((2, 3)), (1,))


def test_one_hot_as_torch():
    y = np.array([[0, 2], [3, 1]])
    np.testing.assert_array_equal(F.one_hot(y), TF.one_hot(torch.tensor(y)).numpy())
    np.testing.assert_array_equal(F.one_hot(y, 6), TF.one_hot(torch.tensor(y), 6).numpy())
    assert F.one_hot(y).dtype == np.int64
    with pytest.raises(RuntimeError):
        F.one_hot(np.array([0, 4]), 3)
    with pytest.raises(RuntimeError):
        F.one_hot(np.array([0.0, 1.0]))


@pytest.mark.parametrize("kw", [{}, {"p": 1.0}, {"dim": 0}, {"p": 3.0, "dim": -1},
                                {"p": math.inf}])
def test_normalize_matches_torch(kw):
    x = rng.standard_normal((4, 5))
    x[2] = 0.0                                   # a zero vector: finite, as torch
    x[:, 3] = 0.0
    run_both(lambda x: F.normalize(x, **kw), lambda x: TF.normalize(x, **kw), [x])


def test_normalize_second_order():
    ad.check_grads(lambda x: F.normalize(x, dim=-1), (rng.standard_normal((3, 4)),), order=2)


def test_dropout_statistics_and_modes():
    nn.init.manual_seed(0)
    x = np.ones((400, 500))
    y = F.dropout(x, 0.3)                            # training=True by default, as torch
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    close(y[kept], 1 / 0.7, 1e-12)
    assert F.dropout(x, 0.3, training=False) is x
    assert np.all(F.dropout(x, 1.0) == 0)
    with pytest.raises(ValueError):
        F.dropout(x, 1.5)
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x
    layer.train()
    assert abs((layer(x) == 0).mean() - 0.5) < 0.01
    nn.init.manual_seed(1)
    a = F.dropout(x[:10], 0.5)
    nn.init.manual_seed(1)
    close(F.dropout(x[:10], 0.5), a)                 # repeatable from nn.init.manual_seed


def test_new_functions_second_order():
    x = rng.standard_normal((2, 4, 3, 3))
    ad.check_grads(lambda x: F.group_norm(x, 2), (x,), order=2)
    ad.check_grads(lambda x: F.interpolate(x, size=(4, 5), mode="bilinear"), (x,), order=2)
    ad.check_grads(lambda x: F.adaptive_avg_pool2d(x, 2), (x,), order=2)
    ad.check_grads(F.silu, (x,), order=2)
    ad.check_grads(F.mish, (x,), order=2)
    w = rng.standard_normal((4, 2, 2, 2))
    ad.check_grads(lambda x, w: F.conv2d(x, w, groups=2), (x, w), order=2)


def test_transformer_layer_in_transforms_equals_eager():
    # The same gradients from loss.backward() and from ad.grad of functional_call, and
    # forward- and reverse-mode Jacobians of attention agree (batched paths).
    layer = nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0)
    x = rng.standard_normal((3, 2, 4))
    loss = np.sum(layer(x) ** 2)
    loss.backward()
    params = {k: v.value for k, v in layer.named_parameters()}
    g = ad.grad(lambda p: np.sum(nn.functional_call(layer, p, x) ** 2))(params)
    for k, p in layer.named_parameters():
        close(g[k], p.grad, 1e-12)
    q, k, v = (rng.standard_normal((3, 2)) for _ in range(3))
    f = lambda q: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
    close(ad.jacfwd(f)(q), ad.jacrev(f)(q), 1e-12)
    mha = nn.MultiheadAttention(4, 2)
    h = lambda x: mha(x, x, x)[0]  # noqa: E731
    xq = rng.standard_normal((2, 4))
    with nn.no_grad():          # the eager parameters record nothing: plain Jacobians
        close(ad.jacfwd(h)(xq), ad.jacrev(h)(xq), 1e-12)
    assert ad.jacrev(h)(xq).requires_grad       # outside, they depend on the parameters


def test_new_layers_keep_float32():
    x32 = rng.standard_normal((3, 2, 8)).astype(np.float32)
    nn.init.manual_seed(0)
    layers = [nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, dtype=np.float32),
              nn.MultiheadAttention(8, 2, dtype=np.float32)]
    for layer in layers:
        out = layer(x32) if isinstance(layer, nn.TransformerEncoderLayer) else \
            layer(x32, x32, x32, attn_mask=np.triu(np.ones((3, 3)), 1) * -1e9)[0]
        assert out.dtype == np.float32, type(layer).__name__
        np.sum(out).backward()
        assert all(p.grad.dtype == np.float32 for p in layer.parameters())
    img = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    for f in (lambda v: F.interpolate(v, scale_factor=2, mode="bilinear"),
              lambda v: F.adaptive_avg_pool2d(v, 2), lambda v: F.group_norm(v, 2),
              lambda v: F.pad(v, (1, 1), value=2.0), lambda v: F.pad(v, (1, 2), mode="reflect"),
              lambda v: F.normalize(v), lambda v: nn.ConvTranspose2d(4, 2, 3, groups=2,
                                                                    dtype=np.float32)(v),
              lambda v: F.scaled_dot_product_attention(v, v, v, is_causal=True)):
        out = f(ad.Variable(img))
        assert out.dtype == np.float32
        out.sum().backward()


def test_norm_defaults_as_torch():
    gn, tgn = nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)
    close(gn.weight.value, tgn.weight.detach().numpy())
    close(gn.bias.value, tgn.bias.detach().numpy())
    assert gn.eps == tgn.eps and list(gn.state_dict()) == list(tgn.state_dict())
    assert list(nn.GroupNorm(2, 4, affine=False).state_dict()) == []
    ln = nn.LayerNorm(3, bias=False)
    assert list(ln.state_dict()) == list(torch.nn.LayerNorm(3, bias=False).state_dict())
    with pytest.raises(ValueError):
        nn.GroupNorm(3, 4)


def test_identity_and_unflatten_as_torch():
    assert nn.Identity(54, unused="x")(3.0) == 3.0
    run_both(nn.Sequential(nn.Flatten(), nn.Unflatten(1, (3, 4))),
             torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Unflatten(1, (3, 4))),
             [rng.standard_normal((2, 12))])
