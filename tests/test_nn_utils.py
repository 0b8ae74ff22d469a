"""nn.utils as torch.nn.utils: parameters_to_vector / vector_to_parameters and
nn.utils.rnn's pad_sequence / unpad_sequence, values and gradients against torch 2.13."""
import numpy as np
import pytest

import autodiff as ad
from autodiff import nn
from autodiff.nn.utils.rnn import pad_sequence, unpad_sequence

torch = pytest.importorskip("torch")
rng = np.random.default_rng(8)


def test_parameters_to_vector_and_back_as_torchs():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    tmodel = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                 torch.nn.Linear(4, 2)).double()
    tmodel.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    v = nn.utils.parameters_to_vector(model.parameters())
    tv = torch.nn.utils.parameters_to_vector(tmodel.parameters())
    np.testing.assert_array_equal(v.value, tv.detach().numpy())
    w = rng.standard_normal(v.shape)
    (v * w).sum().backward()
    (tv * torch.tensor(w)).sum().backward()
    for p, q in zip(model.parameters(), tmodel.parameters()):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())
    new = rng.standard_normal(v.shape)
    nn.utils.vector_to_parameters(new, model.parameters())
    torch.nn.utils.vector_to_parameters(torch.tensor(new), tmodel.parameters())
    for p, q in zip(model.parameters(), tmodel.parameters()):
        np.testing.assert_array_equal(p.value, q.detach().numpy())
        assert p.is_leaf and p.requires_grad
    with pytest.raises(RuntimeError, match="entries"):
        nn.utils.vector_to_parameters(new[:-1], model.parameters())


def test_parameters_to_vector_in_a_transform():
    """Functionally (a loss of the flat vector under ad.grad), the gradient is the
    vector's cotangent split back over the parameters."""
    a, b = np.ones((2, 2)), np.arange(3.0)
    g = ad.grad(lambda ps: np.sum(nn.utils.parameters_to_vector(ps) ** 2))([a, b])
    np.testing.assert_array_equal(g[0], 2 * a)
    np.testing.assert_array_equal(g[1], 2 * b)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence_as_torchs(batch_first, side):
    seqs = [rng.standard_normal((n, 3)) for n in (4, 1, 3)]
    xs = [nn.Parameter(s.copy()) for s in seqs]
    ts = [torch.tensor(s, requires_grad=True) for s in seqs]
    out = pad_sequence(xs, batch_first=batch_first, padding_value=-1.5, padding_side=side)
    tout = torch.nn.utils.rnn.pad_sequence(ts, batch_first=batch_first, padding_value=-1.5,
                                           padding_side=side)
    np.testing.assert_array_equal(out.value, tout.detach().numpy())
    w = rng.standard_normal(out.shape)
    (out * w).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts):
        np.testing.assert_array_equal(x.grad, t.grad.numpy())
    if side == "right":
        back = unpad_sequence(out, np.array([4, 1, 3]), batch_first=batch_first)
        for got, s in zip(back, seqs):
            np.testing.assert_array_equal(got.value, s)


def test_pad_sequence_of_plain_arrays_and_1d_sequences():
    out = pad_sequence([np.arange(3.0), np.arange(1.0)], batch_first=True)
    np.testing.assert_array_equal(out, [[0, 1, 2], [0, 0, 0]])
    with pytest.raises(ValueError, match="padding_side"):
        pad_sequence([np.ones(2)], padding_side="up")
