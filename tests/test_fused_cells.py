"""The fused recurrent cells (autodiff/ops/recurrent.py) equal the cells written with the
engine's primitives, in value and in every derivative; they refuse mismatched shapes and keep
float32. (Both rules, to second order and batched, are checked through the case table.)"""
import numpy as np
import pytest

import autodiff as ad
from autodiff.ops.recurrent import gru_cell, lstm_cell


def sig(x):
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def lstm_composed(a, c):
    n = a.shape[-1] // 4
    i, f, g, o = sig(a[..., :n]), sig(a[..., n:2 * n]), np.tanh(a[..., 2 * n:3 * n]), \
        sig(a[..., 3 * n:])
    c2 = f * c + i * g
    return np.stack([o * np.tanh(c2), c2])


def gru_composed(xp, hp, h):
    n = h.shape[-1]
    r = sig(xp[..., :n] + hp[..., :n])
    z = sig(xp[..., n:2 * n] + hp[..., n:2 * n])
    cand = np.tanh(xp[..., 2 * n:] + r * hp[..., 2 * n:])
    return cand + z * (h - cand)


RNG = np.random.default_rng(3)
A, C = RNG.standard_normal((4, 12)), RNG.standard_normal((4, 3))
XP, HP, H = RNG.standard_normal((4, 9)), RNG.standard_normal((4, 9)), RNG.standard_normal((4, 3))


@pytest.mark.parametrize("jac", [ad.jacfwd, ad.jacrev])
def test_lstm_cell_equals_composition(jac):
    np.testing.assert_allclose(lstm_cell(A, C), lstm_composed(A, C), rtol=1e-15, atol=1e-15)
    for k in (0, 1):
        np.testing.assert_allclose(jac(lstm_cell, k)(A, C), jac(lstm_composed, k)(A, C),
                                   rtol=1e-13, atol=1e-14)
    loss = lambda a, c: np.sum(np.sin(lstm_cell(a, c)))                  # noqa: E731
    ref = lambda a, c: np.sum(np.sin(lstm_composed(a, c)))               # noqa: E731
    np.testing.assert_allclose(ad.hessian(loss)(A, C), ad.hessian(ref)(A, C), atol=1e-13)


@pytest.mark.parametrize("jac", [ad.jacfwd, ad.jacrev])
def test_gru_cell_equals_composition(jac):
    np.testing.assert_allclose(gru_cell(XP, HP, H), gru_composed(XP, HP, H), atol=1e-15)
    for k in (0, 1, 2):
        np.testing.assert_allclose(jac(gru_cell, k)(XP, HP, H), jac(gru_composed, k)(XP, HP, H),
                                   rtol=1e-13, atol=1e-14)
    loss = lambda h: np.sum(gru_cell(XP, HP * h[..., :1], h) ** 3)       # noqa: E731
    ref = lambda h: np.sum(gru_composed(XP, HP * h[..., :1], h) ** 3)    # noqa: E731
    np.testing.assert_allclose(ad.hessian(loss)(H), ad.hessian(ref)(H), atol=1e-12)


def test_cells_refuse_mismatched_shapes_and_keep_float32():
    with pytest.raises(ValueError, match="lstm_cell"):
        lstm_cell(np.zeros((2, 8)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="gru_cell"):
        gru_cell(np.zeros((2, 9)), np.zeros((2, 6)), np.zeros((2, 3)))
    a32, c32 = A.astype(np.float32), C.astype(np.float32)
    assert lstm_cell(a32, c32).dtype == np.float32
    g = ad.grad(lambda a: np.sum(lstm_cell(a, c32)))(a32)
    assert g.dtype == np.float32


def test_lstm_records_one_sequence_per_layer_and_direction_and_cells_one_cell():
    from autodiff import nn
    lstm = nn.LSTM(3, 4, num_layers=2, bidirectional=True)
    with ad.Tape() as tape:
        out, _ = lstm(ad.Variable(np.ones((5, 2, 3))))
    names = [r.primitive for r in tape]
    assert names.count("lstm_sequence") == 4 and "lstm_cell" not in names
    assert len(names) < 60                  # a handful of records per layer, none per step
    gru = nn.GRU(3, 4)
    with ad.Tape() as tape:
        gru(ad.Variable(np.ones((5, 2, 3))))
    assert [r.primitive for r in tape].count("gru_sequence") == 1
    cell = nn.LSTMCell(3, 4)
    with ad.Tape() as tape:
        cell(ad.Variable(np.ones((2, 3))))
    assert [r.primitive for r in tape].count("lstm_cell") == 1


def test_max_pool_matches_torch_and_gives_a_tie_to_its_first_maximum():
    torch = pytest.importorskip("torch")
    from autodiff.ops.pooling import max_pool2d
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    geo = ((3, 2), (2, 1), (1, 1), (1, 2), True)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, *geo)
    (ty * ty).sum().backward()
    y = max_pool2d(x, *geo)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    g = ad.grad(lambda x: np.sum(max_pool2d(x, *geo) ** 2))(x)
    np.testing.assert_allclose(g, tx.grad.numpy(), atol=1e-13)     # no ties in random data
    # A tie of four: the first in row-major order takes it all, as PyTorch's, in both modes
    # (the reverse fast path, the weighted scatter under a transform, the forward gather).
    ones = np.ones((1, 1, 2, 2))
    first = np.array([[[[1.0, 0.0], [0.0, 0.0]]]])
    f = lambda x: np.sum(max_pool2d(x, (2, 2), (2, 2)))          # noqa: E731
    np.testing.assert_array_equal(ad.grad(f)(ones), first)
    np.testing.assert_array_equal(ad.jacfwd(f)(ones), first)
    np.testing.assert_array_equal(ad.jacrev(ad.grad(f))(ones), np.zeros((1, 1, 2, 2) * 2))
    tt = torch.tensor(ones, requires_grad=True)
    torch.nn.functional.max_pool2d(tt, 2).sum().backward()
    np.testing.assert_array_equal(tt.grad.numpy(), first)


def test_standardize_is_batch_and_layer_norm_of_torch():
    torch = pytest.importorskip("torch")
    from autodiff import nn
    x = np.random.default_rng(6).standard_normal((4, 3, 2, 5))
    tx = torch.tensor(x, requires_grad=True)
    w = torch.linspace(0.5, 1.5, 3, dtype=torch.float64)
    ty = torch.nn.functional.batch_norm(tx, None, None, w, None, training=True)
    (ty ** 3).sum().backward()
    bn = lambda x: nn.functional.batch_norm(x, None, None, w.numpy(), None,   # noqa: E731
                                            training=True)
    np.testing.assert_allclose(bn(x), ty.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ad.grad(lambda x: np.sum(bn(x) ** 3))(x), tx.grad.numpy(),
                               atol=1e-10)
    tx.grad = None
    tl = torch.nn.functional.layer_norm(tx, (2, 5))
    (tl.sin()).sum().backward()
    ln = lambda x: nn.functional.layer_norm(x, (2, 5))                        # noqa: E731
    np.testing.assert_allclose(ad.grad(lambda x: np.sum(np.sin(ln(x))))(x), tx.grad.numpy(),
                               atol=1e-10)
