"""Resuming training: optimizers with parameter groups and PyTorch-format state dicts,
``nn.optim.lr_scheduler`` against PyTorch step for step, and a checkpoint file (model,
optimizer, scheduler, epoch) that resumes to the same trajectory."""
import math

import numpy as np
import pytest

from autodiff import nn
from autodiff.nn import functional as F

try:
    import torch
except ImportError:                     # the comparisons skip; the resume tests still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="compares with PyTorch")
rng = np.random.default_rng(0)

X = rng.standard_normal((8, 5))
C = rng.standard_normal((8, 3))
SHAPES = {"w1": (4, 5), "b1": (4,), "w2": (3, 4)}
INIT = {k: rng.standard_normal(s) * 0.5 for k, s in SHAPES.items()}


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def ours_params():
    return {k: nn.Parameter(v) for k, v in INIT.items()}


def torch_params():
    return {k: torch.tensor(v, requires_grad=True) for k, v in INIT.items()}


def ours_loss(p):
    h = np.tanh(X @ p["w1"].T + p["b1"])
    return np.sum((h @ p["w2"].T) * C) + 0.1 * np.sum(h ** 4)


def torch_loss(p):
    h = torch.tanh(torch.tensor(X) @ p["w1"].T + p["b1"])
    return torch.sum((h @ p["w2"].T) * torch.tensor(C)) + 0.1 * torch.sum(h ** 4)


def groups(p, extra):
    """Two groups: the first layer at the defaults, the second with its own options."""
    return [{"params": [p["w1"], p["b1"]]}, dict({"params": [p["w2"]]}, **extra)]


CONFIGS = [
    ("SGD", {"lr": 0.05}, {"lr": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, {"lr": 0.02, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
     {"momentum": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "maximize": True}, {}),
    ("Adam", {"lr": 0.01}, {"lr": 0.003, "betas": (0.8, 0.99)}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}, {"eps": 1e-6}),
    ("AdamW", {"lr": 0.01}, {"weight_decay": 0.5, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}, {"alpha": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1},
     {"lr": 0.001}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05}, {"weight_decay": 0.1,
                                                 "initial_accumulator_value": 0.2}),
    ("Adamax", {"lr": 0.01}, {"betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("Adamax", {"lr": 0.01, "maximize": True}, {"eps": 1e-3}),
    ("NAdam", {"lr": 0.01}, {"momentum_decay": 0.01}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1}, {"decoupled_weight_decay": True}),
    ("RAdam", {"lr": 0.01}, {"betas": (0.5, 0.6)}),           # rectified from step 6 on
    ("RAdam", {"lr": 0.01, "betas": (0.5, 0.6), "weight_decay": 0.1},
     {"decoupled_weight_decay": True}),
    ("Adadelta", {}, {"rho": 0.5, "weight_decay": 0.1}),
    ("Adadelta", {"lr": 0.5, "maximize": True}, {"eps": 1e-3}),
    ("Rprop", {"lr": 0.01}, {"etas": (0.3, 1.5), "step_sizes": (1e-4, 0.02)}),
    ("Rprop", {"lr": 0.05, "maximize": True}, {}),
    ("ASGD", {"lr": 0.05}, {"lambd": 0.1, "alpha": 0.5}),
    ("ASGD", {"lr": 0.05, "t0": 2, "weight_decay": 0.1}, {"lr": 0.02}),
]
IDS = [f"{n}-{i}" for i, (n, _, _) in enumerate(CONFIGS)]


def run_ours(opt, p, steps):
    for _ in range(steps):
        opt.zero_grad()
        ours_loss(p).backward()
        opt.step()


def run_torch(opt, p, steps):
    for _ in range(steps):
        opt.zero_grad()
        torch_loss(p).backward()
        opt.step()


@pytest.fixture
def torch_float64():
    """torch keeps NAdam's ``mu_product`` and ASGD's ``eta``/``mu`` as tensors of the
    default dtype (float32 unless changed); ours are float64 numbers, so the comparison
    runs with torch's default dtype float64."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@needs_torch
@pytest.mark.parametrize("name,kw,extra", CONFIGS, ids=IDS)
def test_optimizer_with_param_groups_matches_torch(name, kw, extra, torch_float64):
    p, tp = ours_params(), torch_params()
    opt = getattr(nn.optim, name)(groups(p, extra), **kw)
    topt = getattr(torch.optim, name)(groups(tp, extra), **kw)
    for _ in range(6):
        run_ours(opt, p, 1)
        run_torch(topt, tp, 1)
        for k in p:
            close(p[k].value, tp[k].detach().numpy())
    # The state dict is PyTorch's: the same indices, state names and values, and the
    # groups' options.
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    assert len(sd["state"]) == (0 if name == "SGD" and not kw.get("momentum") else 3)
    for i, ts in tsd["state"].items():
        assert set(sd["state"][i]) == set(ts), (i, set(sd["state"][i]), set(ts))
        for key, v in ts.items():
            close(sd["state"][i][key], v.numpy() if hasattr(v, "numpy") else v)
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        assert g == tg                          # every option, PyTorch's names and values


@pytest.mark.parametrize("name,kw,extra", CONFIGS, ids=IDS)
def test_load_state_dict_resumes_bitwise(name, kw, extra):
    p = ours_params()
    opt = getattr(nn.optim, name)(groups(p, extra), **kw)
    run_ours(opt, p, 3)
    sd = opt.state_dict()
    weights = {k: v.value.copy() for k, v in p.items()}
    run_ours(opt, p, 3)
    straight = {k: v.value.copy() for k, v in p.items()}
    # A fresh optimizer on fresh parameters with the weights and state of step 3.
    q = {k: nn.Parameter(v) for k, v in weights.items()}
    opt2 = getattr(nn.optim, name)(groups(q, {}), **kw)     # the saved groups' options win
    opt2.load_state_dict(sd)
    run_ours(opt2, q, 3)
    for k in p:
        np.testing.assert_array_equal(q[k].value, straight[k])


@needs_torch
def test_state_dict_is_a_snapshot_and_torch_state_loads():
    p, tp = ours_params(), torch_params()
    opt = nn.optim.Adam(groups(p, {"lr": 0.002}), lr=0.01)
    run_ours(opt, p, 2)
    sd = opt.state_dict()
    before = sd["state"][0]["exp_avg"].copy()
    run_ours(opt, p, 1)
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], before)
    assert opt.state[p["w1"]]["step"] == 3 and p["w1"] in opt.state
    # A torch optimizer's state, converted to NumPy, loads and continues as torch does.
    topt = torch.optim.Adam(groups(tp, {"lr": 0.002}), lr=0.01)
    run_torch(topt, tp, 2)
    tsd = topt.state_dict()
    conv = {"state": {i: {k: v.numpy() for k, v in s.items()} for i, s in tsd["state"].items()},
            "param_groups": [dict(g) for g in tsd["param_groups"]]}
    q = {k: nn.Parameter(v.detach().numpy()) for k, v in tp.items()}
    mine = nn.optim.Adam(groups(q, {}), lr=0.5)
    mine.load_state_dict(conv)
    assert mine.param_groups[1]["lr"] == 0.002 and mine.param_groups[0]["lr"] == 0.01
    run_ours(mine, q, 3)
    run_torch(topt, tp, 3)
    for k in q:
        close(q[k].value, tp[k].detach().numpy())


def test_float32_state_stays_float32_and_loading_casts():
    p = {k: nn.Parameter(v.astype(np.float32)) for k, v in INIT.items()}
    opt = nn.optim.Adam(list(p.values()), lr=0.01)
    run_ours(opt, p, 2)
    assert all(v.value.dtype == np.float32 for v in p.values())
    sd = opt.state_dict()
    assert sd["state"][0]["exp_avg"].dtype == np.float32
    sd64 = {"state": {i: {k: (v.astype(np.float64) if isinstance(v, np.ndarray) else v)
                          for k, v in s.items()} for i, s in sd["state"].items()},
            "param_groups": sd["param_groups"]}
    opt2 = nn.optim.Adam(list(p.values()), lr=0.01)
    opt2.load_state_dict(sd64)
    assert opt2.state[p["w1"]]["exp_avg"].dtype == np.float32


@needs_torch
def test_add_param_group_matches_torch():
    p, tp = ours_params(), torch_params()
    opt = nn.optim.SGD([p["w1"], p["b1"]], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([tp["w1"], tp["b1"]], lr=0.1, momentum=0.9)
    run_ours(opt, p, 2)
    run_torch(topt, tp, 2)
    opt.add_param_group({"params": p["w2"], "lr": 0.01})    # unfreeze the last layer
    topt.add_param_group({"params": tp["w2"], "lr": 0.01})
    assert opt.param_groups[1]["momentum"] == 0.9
    run_ours(opt, p, 3)
    run_torch(topt, tp, 3)
    for k in p:
        close(p[k].value, tp[k].detach().numpy())
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [p["w1"]]})
    with pytest.raises(TypeError, match="must be a dict"):
        opt.add_param_group([p["w1"]])


def test_load_state_dict_refusals():
    p = ours_params()
    opt = nn.optim.Adam(groups(p, {}), lr=0.01)
    run_ours(opt, p, 1)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="number of parameter groups"):
        nn.optim.Adam(list(p.values())).load_state_dict(sd)
    with pytest.raises(ValueError, match="size of optimizer's group"):
        nn.optim.Adam([{"params": [p["w1"]]}, {"params": [p["b1"], p["w2"]]}]
                      ).load_state_dict(sd)
    bad = {"state": {0: dict(sd["state"][0], exp_avg=np.zeros(3))},
           "param_groups": sd["param_groups"]}
    with pytest.raises(ValueError, match="shape"):
        nn.optim.Adam(groups(p, {})).load_state_dict(bad)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        nn.optim.Adam(groups(p, {})).load_state_dict({"state": {}})


@needs_torch
def test_named_parameters_and_torch_flags():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = nn.optim.AdamW(model.named_parameters(), lr=0.01, foreach=False, fused=None)
    assert opt.param_groups[0]["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert opt.param_groups[0]["decoupled_weight_decay"] is True
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    topt = torch.optim.AdamW(tm.named_parameters(), lr=0.01, foreach=False)
    assert opt.state_dict()["param_groups"] == topt.state_dict()["param_groups"]
    with pytest.raises(NotImplementedError, match="differentiable=True"):
        nn.optim.SGD(model.parameters(), differentiable=True)
    with pytest.raises(ValueError, match="named"):
        nn.optim.SGD([("w", model[0].weight), model[0].bias])
    # Adam(decoupled_weight_decay=True) is AdamW, as in PyTorch
    p, q = ours_params(), ours_params()
    a = nn.optim.Adam(list(p.values()), lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)
    b = nn.optim.AdamW(list(q.values()), lr=0.01, weight_decay=0.1)
    run_ours(a, p, 3)
    run_ours(b, q, 3)
    for k in p:
        np.testing.assert_array_equal(p[k].value, q[k].value)


def test_sgd_documented_usage_of_groups():
    """PyTorch's docs example: a base at the default rate, a classifier at its own."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = nn.optim.SGD([{"params": model[0].parameters()},
                        {"params": model[2].parameters(), "lr": 1e-3}], lr=1e-2, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-3]
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    assert opt.defaults["momentum"] == 0.9
    loss = F.mse_loss(model(np.ones((2, 3))), np.zeros((2, 2)))
    loss.backward()
    assert opt.step(closure=lambda: 1.5) == 1.5


# ----- schedulers ------------------------------------------------------------------------

def make_schedulers(lib, opt):
    S = lib.optim.lr_scheduler
    return {
        "StepLR": lambda: S.StepLR(opt, step_size=3, gamma=0.5),
        "MultiStepLR": lambda: S.MultiStepLR(opt, milestones=[2, 5, 5, 9], gamma=0.3),
        "ExponentialLR": lambda: S.ExponentialLR(opt, gamma=0.9),
        "CosineAnnealingLR": lambda: S.CosineAnnealingLR(opt, T_max=5, eta_min=0.001),
        "LambdaLR": lambda: S.LambdaLR(opt, [lambda e: 0.95 ** e, lambda e: 1 / (1 + e)]),
        "LinearLR": lambda: S.LinearLR(opt, start_factor=0.1, total_iters=4),
        "OneCycleLR": lambda: S.OneCycleLR(opt, max_lr=[0.5, 0.1], total_steps=15),
        "OneCycleLR-linear-3": lambda: S.OneCycleLR(opt, max_lr=0.3, epochs=3,
                                                    steps_per_epoch=5, pct_start=0.25,
                                                    anneal_strategy="linear",
                                                    three_phase=True),
        "SequentialLR": lambda: S.SequentialLR(
            opt, [S.LinearLR(opt, start_factor=0.2, total_iters=3),
                  S.CosineAnnealingLR(opt, T_max=6)], milestones=[3]),
        "MultiplicativeLR": lambda: S.MultiplicativeLR(opt, lambda e: 0.9),
        "ConstantLR": lambda: S.ConstantLR(opt, factor=0.5, total_iters=4),
        "PolynomialLR": lambda: S.PolynomialLR(opt, total_iters=8, power=2.0),
        "CosineAnnealingWarmRestarts": lambda: S.CosineAnnealingWarmRestarts(opt, T_0=3,
                                                                             T_mult=2),
        "ChainedScheduler": lambda: S.ChainedScheduler(
            [S.ConstantLR(opt, factor=0.1, total_iters=2), S.ExponentialLR(opt, gamma=0.9)]),
    }


def two_group_sgd(lib, momentum=0.9):
    if lib is nn:
        p = ours_params()
        return nn.optim.SGD(groups(p, {"lr": 0.05}), lr=0.2, momentum=momentum), p
    p = torch_params()
    return torch.optim.SGD(groups(p, {"lr": 0.05}), lr=0.2, momentum=momentum), p


def trace(sched, opt, steps, p, lib):
    rates, moms = [], []
    for _ in range(steps):
        rates.append(sched.get_last_lr())
        moms.append([g["momentum"] for g in opt.param_groups])
        (run_ours if lib is nn else run_torch)(opt, p, 1)
        sched.step()
    return rates, moms


@needs_torch
@pytest.mark.parametrize("kind", list(make_schedulers(nn, None)))
def test_scheduler_matches_torch_and_resumes(kind):
    opt, p = two_group_sgd(nn)
    topt, tp = two_group_sgd(torch)
    sched, tsched = make_schedulers(nn, opt)[kind](), make_schedulers(torch, topt)[kind]()
    ours, theirs = trace(sched, opt, 14, p, nn), trace(tsched, topt, 14, tp, torch)
    assert ours[0] == theirs[0]                                   # bitwise equal rates
    assert set(sched.state_dict()) == set(tsched.state_dict())    # PyTorch's fields
    close(ours[1], theirs[1], 1e-15)                              # OneCycle's momentum
    for k in p:
        close(p[k].value, tp[k].detach().numpy())
    # Resume: a fresh optimizer and scheduler from state dicts at step 6 continue as one.
    opt, p = two_group_sgd(nn)
    sched = make_schedulers(nn, opt)[kind]()
    trace(sched, opt, 6, p, nn)
    osd, ssd = opt.state_dict(), sched.state_dict()
    opt2, _ = two_group_sgd(nn)
    for g, q in zip(opt2.param_groups, [[p["w1"], p["b1"]], [p["w2"]]]):
        g["params"] = q
    sched2 = make_schedulers(nn, opt2)[kind]()
    opt2.load_state_dict(osd)
    sched2.load_state_dict(ssd)
    rest = trace(sched2, opt2, 8, p, nn)
    assert ours[0][6:] == rest[0]


def test_scheduler_initial_step_and_last_epoch():
    opt, _ = two_group_sgd(nn)
    sched = nn.optim.lr_scheduler.StepLR(opt, step_size=2)
    assert sched.last_epoch == 0 and sched._step_count == 1
    assert opt.param_groups[0]["initial_lr"] == 0.2 and sched.base_lrs == [0.2, 0.05]
    fresh, _ = two_group_sgd(nn)
    with pytest.raises(KeyError, match="initial_lr"):
        nn.optim.lr_scheduler.StepLR(fresh, step_size=2, last_epoch=3)
    with pytest.raises(TypeError, match="not an Optimizer"):
        nn.optim.lr_scheduler.StepLR(object(), step_size=2)
    from autodiff.nn.optim.lr_scheduler import CosineAnnealingLR     # PyTorch's module path
    assert CosineAnnealingLR is nn.optim.lr_scheduler.CosineAnnealingLR


@needs_torch
def test_one_cycle_cycles_adam_beta1_as_torch():
    p, tp = ours_params(), torch_params()
    opt = nn.optim.Adam(list(p.values()), lr=0.01)
    topt = torch.optim.Adam(list(tp.values()), lr=0.01)
    s = nn.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=10)
    ts = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=10)
    for _ in range(10):
        assert s.get_last_lr() == ts.get_last_lr()
        assert opt.param_groups[0]["betas"] == pytest.approx(topt.param_groups[0]["betas"])
        run_ours(opt, p, 1)
        run_torch(topt, tp, 1)
        s.step()
        ts.step()
    for k in p:
        close(p[k].value, tp[k].detach().numpy())
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        s.step()


@needs_torch
@pytest.mark.parametrize("kw", [{}, {"mode": "max", "threshold_mode": "abs", "threshold": 0.1,
                                     "cooldown": 2, "patience": 1, "factor": 0.5,
                                     "min_lr": [0.01, 0.04]}])
def test_reduce_lr_on_plateau_matches_torch(kw):
    opt, _ = two_group_sgd(nn)
    topt, _ = two_group_sgd(torch)
    kw = dict({"patience": 2}, **kw)
    s = nn.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.5, 0.6, 0.7, 0.7, 0.7, 0.7, 0.2, 0.3, 0.3, 0.3]
    for i, m in enumerate(metrics):
        s.step(m)
        ts.step(m)
        assert s.get_last_lr() == ts.get_last_lr(), i
        assert (s.best, s.num_bad_epochs, s.cooldown_counter) == \
            (ts.best, ts.num_bad_epochs, ts.cooldown_counter)
        if i == 6:
            sd = s.state_dict()
    s2 = nn.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    s2.load_state_dict(sd)
    assert s2.best == (1.0 if kw.get("mode") == "max" else 0.5) and s2.last_epoch == 7


# ----- checkpoints -----------------------------------------------------------------------

def make_training(seed=0):
    nn.init.manual_seed(seed)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3))
    opt = nn.optim.AdamW([{"params": model[0].parameters()},
                          {"params": model[2].parameters(), "lr": 3e-3}], lr=1e-2,
                         amsgrad=True)
    sched = nn.optim.lr_scheduler.OneCycleLR(opt, max_lr=[0.05, 0.02], epochs=4,
                                             steps_per_epoch=4)
    return model, opt, sched


DATA_X = rng.standard_normal((32, 5))
DATA_Y = rng.integers(0, 3, 32)


def train_epochs(model, opt, sched, first, last):
    for epoch in range(first, last):
        order = np.random.default_rng(epoch).permutation(32)
        for b in range(4):
            idx = order[b * 8:(b + 1) * 8]
            opt.zero_grad()
            F.cross_entropy(model(DATA_X[idx]), DATA_Y[idx]).backward()
            opt.step()
            sched.step()


def test_checkpoint_file_resumes_to_the_same_trajectory(tmp_path):
    model, opt, sched = make_training()
    train_epochs(model, opt, sched, 0, 4)
    straight = model.state_dict()

    model, opt, sched = make_training()
    train_epochs(model, opt, sched, 0, 2)
    path = tmp_path / "ckpt.npz"
    nn.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "epoch": 2}, path,
            metadata={"class": "Sequential", "config": {"sizes": [5, 16, 3]}})
    with np.load(path, allow_pickle=False) as z:                 # readable without pickle
        assert "optimizer/state/0/exp_avg" in z.files

    model, opt, sched = make_training(seed=7)                   # other weights: all restored
    ck, meta = nn.load(path, with_metadata=True)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    assert ck["epoch"] == 2 and meta["config"]["sizes"] == [5, 16, 3]
    assert opt.param_groups[0]["betas"] == ck["optimizer"]["param_groups"][0]["betas"]
    train_epochs(model, opt, sched, ck["epoch"], 4)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, straight[k])


def test_state_dict_round_trips_every_type(tmp_path):
    p = ours_params()
    opt = nn.optim.RMSprop(groups(p, {"centered": True}), lr=0.01, momentum=0.5)
    run_ours(opt, p, 2)
    sched = nn.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3, 3])
    obj = {"opt": opt.state_dict(), "sched": sched.state_dict(), "none": None,
           "name": "run-1", "nan": math.nan, "inf": -math.inf, "tuple": (1, 2.5, [3]),
           "np_scalar": np.float32(1.5), "flag": True, "big": 2 ** 70}
    path = tmp_path / "all.npz"
    nn.save(obj, path)
    back = nn.load(path)
    assert back["opt"]["param_groups"] == obj["opt"]["param_groups"]
    for i, s in obj["opt"]["state"].items():
        for k, v in s.items():
            np.testing.assert_array_equal(back["opt"]["state"][i][k], v)
    assert back["sched"]["milestones"] == {1: 1, 3: 2}
    assert back["none"] is None and back["name"] == "run-1" and math.isnan(back["nan"])
    assert back["inf"] == -math.inf and back["tuple"] == (1, 2.5, [3])
    assert type(back["np_scalar"]) is np.float32 and back["flag"] is True
    assert back["big"] == 2 ** 70
    assert nn.load_metadata(path) == {}


@pytest.mark.parametrize("name,kw,extra", CONFIGS, ids=IDS)
def test_step_updates_in_place_without_temporaries(name, kw, extra):
    """After the first step (state and work buffers made), a step allocates nothing of a
    parameter's size and writes into the same arrays."""
    import tracemalloc
    big = {k: nn.Parameter(rng.standard_normal((200, 250))) for k in ("w1", "b1", "w2")}
    opt = getattr(nn.optim, name)(groups(big, extra), **kw)
    for p in big.values():
        p.grad = rng.standard_normal((200, 250))
    opt.step()
    arrays = [p.value for p in big.values()]
    tracemalloc.start()
    try:
        opt.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 250 * 8 // 4, peak                     # under a quarter of one
    assert all(p.value is a for p, a in zip(big.values(), arrays))


def _reference_step(name, kw, p, g, s, t):
    """The updates as plain NumPy expressions (each operation allocating its result), in
    the order the in-place code must keep: the numbers must be bitwise these."""
    lr, wd = kw["lr"], kw.get("weight_decay", 0.0)
    if name in ("Adam", "AdamW"):
        b1, b2, eps = 0.9, 0.999, 1e-8
        if wd and name == "AdamW":
            p = p * (1.0 - lr * wd)
        elif wd:
            g = g + wd * p
        s["m"] = s.get("m", 0.0) * b1 + (1.0 - b1) * g
        s["v"] = s.get("v", 0.0) * b2 + (1.0 - b2) * g * g
        v = s["v"]
        if kw.get("amsgrad"):
            v = s["vmax"] = np.maximum(s.get("vmax", 0.0), v)
        return p - (lr / (1.0 - b1 ** t)) * s["m"] / (np.sqrt(v) / math.sqrt(1.0 - b2 ** t)
                                                      + eps)
    if name == "RMSprop":
        a, eps = 0.99, 1e-8
        if wd:
            g = g + wd * p
        s["v"] = s.get("v", 0.0) * a + (1.0 - a) * g * g
        return p - lr * g / (np.sqrt(s["v"]) + eps)
    if name == "Adagrad":
        if wd:
            g = g + wd * p
        s["s"] = s.get("s", 0.0) + g * g
        return p - (lr / (1.0 + (t - 1) * kw["lr_decay"])) * g / (np.sqrt(s["s"]) + 1e-10)
    raise AssertionError(name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kw", [("Adam", {"lr": 0.01}),
                                     ("Adam", {"lr": 0.01, "weight_decay": 0.1,
                                               "amsgrad": True}),
                                     ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
                                     ("RMSprop", {"lr": 0.01, "weight_decay": 0.1}),
                                     ("Adagrad", {"lr": 0.1, "lr_decay": 0.05})])
def test_in_place_updates_are_bitwise_the_expressions(name, kw, dtype):
    r = np.random.default_rng(3)
    p = nn.Parameter(r.standard_normal((30, 20)).astype(dtype))
    ref, state = p.value.copy(), {}
    opt = getattr(nn.optim, name)([p], **kw)
    for t in range(1, 6):
        p.grad = r.standard_normal((30, 20)).astype(dtype)
        opt.step()
        ref = _reference_step(name, kw, ref, p.grad, state, t)
        assert ref.dtype == dtype
        np.testing.assert_array_equal(p.value, ref)
