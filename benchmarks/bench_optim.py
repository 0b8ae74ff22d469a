"""Optimizer-step benchmark: ``nn.optim.Adam.step`` (in place, fused ufuncs) beside the
previous allocating update and PyTorch's Adam, on an MLP 784-512-256-10, float32.

Usage::

    python benchmarks/bench_optim.py                 # full run, about half a minute
    python benchmarks/bench_optim.py --quick         # a few seconds, noisier
    python benchmarks/bench_optim.py --out benchmarks/results_optim.md

Two workloads, each timed in interleaved rounds on one pinned thread (medians reported):

- ``adam``: one ``Adam.step()`` over the MLP's parameters with fixed gradients (535,818
  float32 parameters). The baseline is the update as ``nn.optim`` wrote it before it ran
  in place: the same formulas as NumPy expressions, each allocating its result.
- ``train``: one training step at batch 256 (forward, cross-entropy, ``backward()``,
  ``Adam.step()``), ours with the in-place Adam, ours with the allocating one, and
  PyTorch's step with ``torch.optim.Adam`` (its default, single-tensor on CPU).
"""
import harness  # noqa: I001 - first: one thread everywhere

ARGS, CFG = harness.parse_args(
    __doc__, "results_optim.md", quick="fewer rounds, shorter timings",
    repeats=("rounds per workload", 15, 5), min_time=("seconds per timing", 0.2, 0.05),
    budget=("seconds per contender and workload", 20, 5),
    only="comma-separated workloads: adam,train (default: both)")
PINNED_CPU = harness.pin_to_one_core(ARGS.cpu)

import math  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from autodiff import nn  # noqa: E402
from autodiff.nn import functional as F  # noqa: E402

LOAD_START = harness.loadavg()
SIZES = (784, 512, 256, 10)
BATCH = 256
F32 = np.float32


class Contender:
    def __init__(self, name):
        self.name = name
        self.n, self.rounds, self.error = 0, 0, None
        self.times, self.ratios = [], []


def allocating_adam_step(params, states, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """The previous ``nn.optim.Adam`` update: NumPy expressions, a temporary per operation."""
    for p in params:
        g, v = p.grad, p.value
        st = states.setdefault(id(p), {"step": 0, "m": np.zeros_like(v),
                                       "v": np.zeros_like(v)})
        st["step"] += 1
        m, s, t = st["m"], st["v"], st["step"]
        m *= b1
        m += (1.0 - b1) * g
        s *= b2
        s += (1.0 - b2) * g * g
        bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
        v -= (lr / bc1) * m / (np.sqrt(s) / math.sqrt(bc2) + eps)


def make_model():
    nn.init.manual_seed(0)
    layers = []
    for i, (fi, fo) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nn.Linear(fi, fo, dtype=F32))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def data():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((BATCH, SIZES[0])).astype(F32),
            rng.integers(0, SIZES[-1], BATCH))


def check_same_numbers():
    """The in-place update and the allocating one give the same numbers, bit for bit."""
    a, b = make_model(), make_model()
    x, y = data()
    opt, states = nn.optim.Adam(a.parameters(), lr=1e-3), {}
    for _ in range(3):
        for model in (a, b):
            model.zero_grad()
            F.cross_entropy(model(x), y).backward()
        opt.step()
        allocating_adam_step(list(b.parameters()), states)
    same = all(np.array_equal(p.value, q.value) for p, q in zip(a.parameters(), b.parameters()))
    assert same, "the in-place Adam differs from the allocating one"
    return same


def summarize(name, baseline_times, contenders, base_label):
    med = statistics.median(baseline_times)
    rows = [(base_label, med, 1.0)]
    for c in contenders:
        rows.append((c.name, statistics.median(c.times), statistics.median(c.ratios)))
    print(f"\n{name}")
    for label, t, r in rows:
        print(f"  {label:<48} {harness.fmt_time(t):>10}  {r:5.2f}x")
    return rows


def main():
    t_start = time.perf_counter()
    import torch
    harness.torch_one_thread(torch)
    harness.announce(CFG, PINNED_CPU)
    check_same_numbers()
    results = {}

    if CFG.wants("adam"):
        model = make_model()
        x, y = data()
        F.cross_entropy(model(x), y).backward()
        params = list(model.parameters())
        opt, states = nn.optim.Adam(params, lr=1e-3), {}
        tparams = [torch.tensor(p.value, requires_grad=True) for p in params]
        for tp, p in zip(tparams, params):
            tp.grad = torch.tensor(p.grad)
        topt = torch.optim.Adam(tparams, lr=1e-3)
        base = lambda: allocating_adam_step(params, states)  # noqa: E731
        ours = Contender("nn.optim.Adam.step (in place)")
        theirs = Contender("torch.optim.Adam.step")
        fns = [(ours, opt.step), (theirs, topt.step)]
        base()
        for _, fn in fns:
            fn()
        _, bt, kept = harness.time_interleaved(base, fns, CFG)
        results["adam"] = summarize("Adam step, MLP 784-512-256-10 float32", bt, kept,
                                    "allocating Adam (before)")

    if CFG.wants("train"):
        x, y = data()

        def ours_step(model, step):
            model.zero_grad()
            F.cross_entropy(model(x), y).backward()
            step()

        m1, m2 = make_model(), make_model()
        opt1, states = nn.optim.Adam(m1.parameters(), lr=1e-3), {}
        p2 = list(m2.parameters())
        tm = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                 torch.nn.Linear(512, 256), torch.nn.ReLU(),
                                 torch.nn.Linear(256, 10))
        with torch.no_grad():
            for tp, p in zip(tm.parameters(), m1.parameters()):
                tp.copy_(torch.tensor(p.value))
        topt = torch.optim.Adam(tm.parameters(), lr=1e-3)
        tx, ty = torch.tensor(x), torch.tensor(y)

        def torch_step():
            topt.zero_grad()
            torch.nn.functional.cross_entropy(tm(tx), ty).backward()
            topt.step()

        base = lambda: ours_step(m2, lambda: allocating_adam_step(p2, states))  # noqa: E731
        ours = Contender("ours, in-place Adam")
        theirs = Contender("torch")
        fns = [(ours, lambda: ours_step(m1, opt1.step)), (theirs, torch_step)]
        base()
        for _, fn in fns:
            fn()
        _, bt, kept = harness.time_interleaved(base, fns, CFG)
        results["train"] = summarize(f"Training step, batch {BATCH}, float32", bt, kept,
                                     "ours, allocating Adam (before)")

    import autodiff
    vers = harness.versions([], autodiff.__version__, ["autodiff", "nn"], "autodiff/ or nn/",
                            [("torch", torch)])
    md = harness.header_md("Optimizer step benchmark (`nn.optim.Adam`)",
                           f"{time.perf_counter() - t_start:.0f} s", harness.machine_info(),
                           PINNED_CPU, "OMP/MKL/OpenBLAS variables, "
                           "torch.set_num_threads(1)", vers)
    md += ["", f"- **Load average** (1 min) at start / end: {LOAD_START} / "
           f"{harness.loadavg()}.",
           f"- Medians over {CFG.repeats} interleaved rounds; ratios are to the first row "
           "of each table, in the same round. The in-place and the allocating updates give "
           "bitwise equal parameters after three steps (checked at the start).", ""]
    for key, title in (("adam", "Adam step, MLP 784-512-256-10, float32 (535,818 "
                                "parameters)"),
                       ("train", f"Training step (forward, backward, Adam), batch {BATCH}, "
                                 "float32")):
        if key in results:
            md += [f"## {title}", "", "| contender | median | ratio |", "|---|---:|---:|"]
            md += [f"| {label} | {harness.fmt_time(t)} | {r:.2f}× |"
                   for label, t, r in results[key]]
            md.append("")
    harness.finish(md, [], time.perf_counter() - t_start, ARGS)


if __name__ == "__main__":
    main()
