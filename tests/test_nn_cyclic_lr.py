"""``nn.optim.lr_scheduler.CyclicLR`` against PyTorch, step for step: the rates and the
cycled momenta (SGD/RMSprop's momentum, Adam's β₁) bitwise over a few hundred steps, the
trained parameters, PyTorch's errors, state_dict fields and resuming."""
import math

import numpy as np
import pytest

from autodiff import nn

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="compares with PyTorch")

STEPS = 300
rng = np.random.default_rng(0)
INIT = [rng.standard_normal((3, 4)), rng.standard_normal(4)]
TARGET = [rng.standard_normal((3, 4)), rng.standard_normal(4)]


def make_opt(lib, name, **kw):
    """Two parameter groups (so per-group lists matter) of optimizer ``name``."""
    if lib is nn:
        ps = [nn.Parameter(v.copy()) for v in INIT]
    else:
        ps = [torch.tensor(v, requires_grad=True) for v in INIT]
    opt = getattr(lib.optim, name)([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.05}],
                                   lr=0.1, **kw)
    return opt, ps


def train_step(opt, ps):
    """One optimizer step on Σ (p - target)², gradients written by hand (both libraries)."""
    for p, t in zip(ps, TARGET):
        if isinstance(p, nn.Parameter):
            p.grad = 2 * (p.value - t)
        else:
            p.grad = 2 * (p.detach() - torch.from_numpy(t))
    opt.step()


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g.get("momentum") for g in opt.param_groups]


def trace(sched, opt, ps, steps):
    lrs, moms = [], []
    for _ in range(steps):
        lrs.append(sched.get_last_lr())
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
        moms.append(momenta(opt))
        train_step(opt, ps)
        sched.step()
    return lrs, moms


class Halving:
    """A stateful scale function (its ``__dict__`` is saved by ``state_dict()``)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, x):
        return self.base ** x


CONFIGS = {
    "triangular-sgd": ("SGD", {"momentum": 0.9},
                       dict(base_lr=[0.01, 0.002], max_lr=[0.1, 0.03], step_size_up=7)),
    "triangular2-asymmetric": ("SGD", {"momentum": 0.5},
                               dict(base_lr=0.01, max_lr=0.2, step_size_up=5,
                                    step_size_down=12, mode="triangular2",
                                    base_momentum=[0.7, 0.6], max_momentum=[0.95, 0.9])),
    "exp_range-adam": ("Adam", {}, dict(base_lr=0.001, max_lr=0.01, step_size_up=9,
                                        mode="exp_range", gamma=0.995)),
    "exp_range-rmsprop": ("RMSprop", {"momentum": 0.3},
                          dict(base_lr=0.0005, max_lr=0.005, step_size_up=4, step_size_down=3,
                               mode="exp_range", gamma=0.99, base_momentum=0.1,
                               max_momentum=0.4)),
    "scale_fn-cycle-adamw": ("AdamW", {}, dict(
        base_lr=0.001, max_lr=0.004, step_size_up=6,
        scale_fn=lambda x: 0.5 * (1 + math.sin(x * math.pi / 2)))),
    "scale_fn-iterations": ("SGD", {"momentum": 0.9}, dict(
        base_lr=0.01, max_lr=0.05, step_size_up=10, scale_fn=Halving(0.999),
        scale_mode="iterations", mode="ignored-with-scale_fn")),
    "no-momentum-adagrad": ("Adagrad", {}, dict(base_lr=0.01, max_lr=0.1, step_size_up=11,
                                                cycle_momentum=False)),
    "defaults": ("SGD", {"momentum": 0.9}, dict(base_lr=0.01, max_lr=0.1)),
}


@needs_torch
@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_torch(name):
    opt_name, opt_kw, kw = CONFIGS[name]
    opt, ps = make_opt(nn, opt_name, **opt_kw)
    topt, tps = make_opt(torch, opt_name, **opt_kw)
    sched = nn.optim.lr_scheduler.CyclicLR(opt, **kw)
    tsched = torch.optim.lr_scheduler.CyclicLR(topt, **kw)
    ours, theirs = trace(sched, opt, ps, STEPS), trace(tsched, topt, tps, STEPS)
    assert ours[0] == theirs[0]                         # the rates, bitwise
    assert ours[1] == theirs[1]                         # the momenta, bitwise
    assert len(set(map(tuple, ours[0]))) > 3            # it does cycle
    for p, tp in zip(ps, tps):
        np.testing.assert_allclose(p.value, tp.detach().numpy(), rtol=1e-10, atol=1e-10)
    assert set(sched.state_dict()) == set(tsched.state_dict())
    assert (sched.last_epoch, sched.base_lrs, sched.max_lrs) == \
        (tsched.last_epoch, tsched.base_lrs, tsched.max_lrs)
    for g, tg in zip(opt.param_groups, topt.param_groups):
        assert {k: g.get(k) for k in ("initial_lr", "max_momentum", "base_momentum")} == \
            {k: tg.get(k) for k in ("initial_lr", "max_momentum", "base_momentum")}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_state_dict_resumes(name):
    opt_name, opt_kw, kw = CONFIGS[name]
    opt, ps = make_opt(nn, opt_name, **opt_kw)
    sched = nn.optim.lr_scheduler.CyclicLR(opt, **kw)
    full = trace(sched, opt, ps, 60)

    opt, ps = make_opt(nn, opt_name, **opt_kw)
    sched = nn.optim.lr_scheduler.CyclicLR(opt, **kw)
    trace(sched, opt, ps, 25)
    osd, ssd = opt.state_dict(), sched.state_dict()
    if isinstance(kw.get("scale_fn"), Halving):
        assert ssd["_scale_fn_custom"] == {"base": 0.999}
    elif kw.get("scale_fn") is not None:
        assert ssd["_scale_fn_custom"] is None          # a plain function is not data
    assert "_scale_fn_ref" not in ssd
    fresh_kw = dict(kw, scale_fn=Halving(0.5)) if isinstance(kw.get("scale_fn"), Halving) \
        else kw
    opt2, _ = make_opt(nn, opt_name, **opt_kw)
    for g, p in zip(opt2.param_groups, ps):
        g["params"] = [p]
    sched2 = nn.optim.lr_scheduler.CyclicLR(opt2, **fresh_kw)
    opt2.load_state_dict(osd)
    sched2.load_state_dict(ssd)
    assert ssd == sched.state_dict()                    # loading left the dict alone
    rest = trace(sched2, opt2, ps, 35)
    assert rest == (full[0][25:], full[1][25:])


@needs_torch
def test_last_epoch_resume_matches_torch():
    """Made with last_epoch=k on an optimizer that has 'initial_lr': continues at step k+1
    without resetting the groups, as PyTorch."""
    kw = dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="triangular2")
    runs = []
    for lib in (nn, torch):
        opt, ps = make_opt(lib, "SGD", momentum=0.9)
        lib.optim.lr_scheduler.CyclicLR(opt, **kw)
        train_step(opt, ps)
        sched = lib.optim.lr_scheduler.CyclicLR(opt, last_epoch=10, **kw)
        runs.append(trace(sched, opt, ps, 20))
    assert runs[0] == runs[1]


def test_errors_as_torch():
    opt, _ = make_opt(nn, "Adagrad")
    with pytest.raises(ValueError, match="must support momentum or beta1"):
        nn.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1)
    opt, _ = make_opt(nn, "SGD", momentum=0.9)
    with pytest.raises(ValueError, match="mode is invalid and scale_fn is None"):
        nn.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        nn.optim.lr_scheduler.CyclicLR(opt, 0.01, [0.1, 0.2, 0.3])
    with pytest.raises(TypeError, match="not an Optimizer"):
        nn.optim.lr_scheduler.CyclicLR(object(), 0.01, 0.1)
    fresh, _ = make_opt(nn, "SGD", momentum=0.9)
    with pytest.raises(KeyError, match="initial_lr"):
        nn.optim.lr_scheduler.CyclicLR(fresh, 0.01, 0.1, last_epoch=5)


def test_first_steps_by_hand():
    """lr = base + (max − base)·s: up over step_size_up, down over step_size_down."""
    opt, _ = make_opt(nn, "SGD", momentum=0.9)
    sched = nn.optim.lr_scheduler.CyclicLR(opt, base_lr=0.0, max_lr=1.0, step_size_up=2,
                                           step_size_down=4, base_momentum=0.5,
                                           max_momentum=0.9)
    lrs, moms = [], []
    for _ in range(8):
        lrs.append(sched.get_last_lr()[0])
        moms.append(opt.param_groups[0]["momentum"])
        sched.step()
    np.testing.assert_allclose(lrs, [0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0.5], atol=1e-15)
    np.testing.assert_allclose(moms, 0.9 - 0.4 * np.array(lrs), atol=1e-15)
    assert opt.param_groups[1]["initial_lr"] == 0.0      # base_lr replaced the group's lr
