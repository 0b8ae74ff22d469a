"""Module and init API details as torch's: shared sub-modules come once from modules(),
named_modules(), children() and apply(), but under each name in state_dict; Sequential's
and ModuleList's list methods and ModuleList's collapsed repr; calculate_gain's names,
kaiming's mode check and sparse_."""
import math

import numpy as np
import pytest

from autodiff import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


def _shared(M):
    lin = M.Linear(2, 2)
    return M.Sequential(lin, M.Sequential(lin, M.ReLU()), lin)


def test_a_shared_module_comes_once_as_torchs():
    ours, theirs = _shared(nn), _shared(tnn)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == \
        [n for n, _ in theirs.named_modules(remove_duplicate=False)]
    assert len(list(ours.modules())) == len(list(theirs.modules())) == 4
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(list(ours.parameters())) == len(list(theirs.parameters())) == 2
    calls, tcalls = [], []
    ours.apply(lambda m: calls.append(type(m).__name__))
    theirs.apply(lambda m: tcalls.append(type(m).__name__))
    assert calls == tcalls
    named = [n for n, _ in ours.named_modules(prefix="net")]
    assert named == [n for n, _ in theirs.named_modules(prefix="net")]


def test_sequential_list_methods_as_torchs():
    def run(M):
        s = M.Sequential(M.ReLU(), M.Tanh(), M.Sigmoid())
        s[0] = M.GELU()
        del s[1]
        s.insert(1, M.SiLU())
        s.extend(M.Sequential(M.ReLU()))
        popped = s.pop(0)
        s += M.Sequential(M.Tanh())
        return repr(s), repr(popped), repr(s + M.Sequential(M.ELU())), len(s)
    assert run(nn) == run(tnn)


def test_module_list_methods_and_repr_as_torchs():
    def run(M):
        ml = M.ModuleList([M.Linear(2, 2), M.Linear(2, 2), M.ReLU()])
        ml += [M.Tanh(), M.Tanh(), M.Tanh()]
        both = ml + M.ModuleList([M.ReLU()])
        ml.insert(0, M.ReLU())
        del ml[-1]
        return repr(ml), repr(both), repr(M.ModuleList()), len(both)
    assert run(nn) == run(tnn)


@pytest.mark.parametrize("name", ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                                  "conv_transpose2d", "conv_transpose3d", "sigmoid", "tanh",
                                  "relu", "leaky_relu", "selu"])
def test_calculate_gain_as_torchs(name):
    assert nn.init.calculate_gain(name) == pytest.approx(tnn.init.calculate_gain(name),
                                                         rel=1e-15)
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        tnn.init.calculate_gain("leaky_relu", 0.2))
    with pytest.raises(ValueError):
        nn.init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError):
        nn.init.calculate_gain("softmax")


@pytest.mark.parametrize("fn", [nn.init.kaiming_uniform_, nn.init.kaiming_normal_])
def test_kaiming_refuses_an_unknown_mode(fn):
    w = nn.Parameter(np.zeros((30, 10)))
    with pytest.raises(ValueError, match="Mode fan_inn not supported"):
        fn(w, mode="fan_inn")
    fn(w, mode="fan_out", nonlinearity="relu")
    std = math.sqrt(2) / math.sqrt(30)                # fan_out = 30
    assert abs(np.std(w.value) - std) < 0.15 * std
    if fn is nn.init.kaiming_uniform_:
        assert np.abs(w.value).max() <= math.sqrt(3) * std


def test_sparse_init_as_torchs_structure():
    w = nn.Parameter(np.zeros((10, 400)))
    nn.init.manual_seed(1)
    nn.init.sparse_(w, 0.3, std=0.02)
    zeros = np.sum(w.value == 0, axis=0)
    np.testing.assert_array_equal(zeros, 3)          # ceil(0.3 · 10) per column, as torch
    assert abs(np.std(w.value[w.value != 0]) - 0.02) < 0.002
    with pytest.raises(ValueError, match="2 dimensions"):
        nn.init.sparse_(nn.Parameter(np.zeros(3)), 0.1)
