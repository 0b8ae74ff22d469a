"""PyTorch's encoder-decoder nn.Transformer: its state_dict names and shapes, its outputs
and gradients with torch's weights loaded (eval mode, float64), masks, batch_first and
norm_first, and its argument checks."""
import numpy as np
import pytest

from autodiff import nn

torch = pytest.importorskip("torch")
rng = np.random.default_rng(3)


def _pair(**kw):
    torch.manual_seed(0)
    theirs = torch.nn.Transformer(**kw).double().eval()
    ours = nn.Transformer(**kw).eval()
    sd = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert sorted(ours.state_dict()) == sorted(sd)
    assert all(ours.state_dict()[k].shape == sd[k].shape for k in sd)
    ours.load_state_dict(sd)
    return ours, theirs


@pytest.mark.parametrize("kw", [dict(batch_first=False), dict(batch_first=True),
                                dict(batch_first=True, norm_first=True, activation="gelu")])
def test_transformer_as_torchs(kw):
    ours, theirs = _pair(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1,
                         dim_feedforward=16, **kw)
    b, s, t = (3, 5, 4)
    shape = (lambda n: (b, n, 8)) if kw["batch_first"] else (lambda n: (n, b, 8))
    src, tgt = rng.standard_normal(shape(s)), rng.standard_normal(shape(t))
    mask = nn.Transformer.generate_square_subsequent_mask(t)
    np.testing.assert_array_equal(mask, torch.nn.Transformer.generate_square_subsequent_mask(
        t, dtype=torch.float64).numpy())
    pad = np.zeros((b, s), bool)
    pad[0, -2:] = True
    x, y = nn.Parameter(src.copy()), nn.Parameter(tgt.copy())
    tx, ty = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    out = ours(x, y, tgt_mask=mask, src_key_padding_mask=pad, memory_key_padding_mask=pad)
    tout = theirs(tx, ty, tgt_mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(pad),
                  memory_key_padding_mask=torch.tensor(pad))
    np.testing.assert_allclose(out.value, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), rtol=1e-9, atol=1e-11)
    tgrads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, tgrads[name].grad.numpy(), rtol=1e-9, atol=1e-11,
                                   err_msg=name)


def test_transformer_initialisation_and_checks():
    m = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                       dim_feedforward=16)
    w = m.encoder.layers[0].linear1.weight.value
    bound = np.sqrt(6 / (8 + 16))                   # Xavier uniform, as torch's
    assert np.all(np.abs(w) <= bound) and np.abs(w).max() > 0.8 * bound
    assert m.encoder.norm is not None and m.decoder.norm is not None
    with pytest.raises(RuntimeError, match="batch number"):
        m(np.ones((5, 2, 8)), np.ones((4, 3, 8)))
    with pytest.raises(RuntimeError, match="d_model"):
        m(np.ones((5, 2, 8)), np.ones((4, 2, 6)))
    out = m.eval()(np.ones((5, 8)), np.ones((4, 8)))              # unbatched
    assert out.shape == (4, 8)
