#!/usr/bin/env python
"""Training steps of ``autodiff.nn`` beside PyTorch CPU eager, float32, one thread.

One step is ``zero_grad``, forward, loss, ``backward`` and the optimizer's update, on the
same batch, both libraries starting from the same weights (copied from ours into torch):

- ``lstm``: Embedding(1000, 32) - LSTM(32, 64, batch_first) - Linear(64, 4) on the last
  hidden state; sequence 20, batch 32; cross-entropy; Adam;
- ``cnn32``/``cnn256``: the digits CNN, Conv2d(1, 8, 3, padding=1) - ReLU - MaxPool2d(2) -
  Flatten - Linear(128, 10) on 8×8 images, batch 32 / 256; SGD;
- ``mnist``: Conv2d(1, 32, 3) - ReLU - MaxPool2d(2) - Conv2d(32, 64, 3) - ReLU -
  MaxPool2d(2) - Flatten - Linear(1600, 10) on 28×28 images, batch 64; SGD;
- ``mlp256``: MLP 784-512-256-10 with ReLU, batch 256; Adam.

Figures: the median over interleaved rounds of (our step time / torch's step time in the
same round), and each library's median step time; the first step's losses are compared.
Peak memory of one step: tracemalloc (NumPy buffers and Python objects) for ours, torch's
CPU allocator events (``torch.profiler``, tensor storage) for torch.

    python benchmarks/bench_nn_steps.py            # about a minute
    python benchmarks/bench_nn_steps.py --quick
"""
import harness  # first: one thread everywhere

ARGS, CFG = harness.parse_args(
    __doc__, "results_nn_steps.md",
    quick="fewer rounds, shorter timings",
    repeats=("rounds per workload", 11, 3), min_time=("shortest timing, s", 0.2, 0.05),
    budget=("seconds one contender may take per workload", 15, 4),
    only="comma-separated workloads: lstm,cnn32,cnn256,mnist,mlp256")
PINNED = harness.pin_to_one_core(ARGS.cpu)

import gc  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

import autodiff  # noqa: E402
from autodiff import nn  # noqa: E402
import autodiff.nn.functional as F  # noqa: E402

try:
    import torch
    harness.torch_one_thread(torch)
except ImportError:  # pragma: no cover
    torch = None
    harness.note("torch is not installed: pip install torch==2.13.0")

TARGETS = {"lstm": 1.5, "cnn32": 1.5, "cnn256": 1.5, "mnist": 1.5, "mlp256": 1.2}
F32 = np.float32


# ----- the models, ours and torch's, built side by side -----
class OursLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(1000, 32, dtype=F32)
        self.lstm = nn.LSTM(32, 64, batch_first=True, dtype=F32)
        self.fc = nn.Linear(64, 4, dtype=F32)

    def forward(self, x):
        out, (h, c) = self.lstm(self.emb(x))
        return self.fc(h[-1])


def torch_lstm():
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(1000, 32)
            self.lstm = torch.nn.LSTM(32, 64, batch_first=True)
            self.fc = torch.nn.Linear(64, 4)

        def forward(self, x):
            out, (h, c) = self.lstm(self.emb(x))
            return self.fc(h[-1])
    return M()


def ours_cnn_small():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, dtype=F32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10, dtype=F32))


def torch_cnn_small():
    t = torch.nn
    return t.Sequential(t.Conv2d(1, 8, 3, padding=1), t.ReLU(), t.MaxPool2d(2), t.Flatten(),
                        t.Linear(128, 10))


def ours_mnist():
    return nn.Sequential(nn.Conv2d(1, 32, 3, dtype=F32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, dtype=F32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(1600, 10, dtype=F32))


def torch_mnist():
    t = torch.nn
    return t.Sequential(t.Conv2d(1, 32, 3), t.ReLU(), t.MaxPool2d(2), t.Conv2d(32, 64, 3),
                        t.ReLU(), t.MaxPool2d(2), t.Flatten(), t.Linear(1600, 10))


def ours_mlp():
    return nn.Sequential(nn.Linear(784, 512, dtype=F32), nn.ReLU(),
                         nn.Linear(512, 256, dtype=F32), nn.ReLU(), nn.Linear(256, 10, dtype=F32))


def torch_mlp():
    t = torch.nn
    return t.Sequential(t.Linear(784, 512), t.ReLU(), t.Linear(512, 256), t.ReLU(),
                        t.Linear(256, 10))


def data(name, rng):
    if name == "lstm":
        return rng.integers(0, 1000, (32, 20)), rng.integers(0, 4, 32)
    if name in ("cnn32", "cnn256"):
        b = 32 if name == "cnn32" else 256
        return rng.random((b, 1, 8, 8)).astype(F32), rng.integers(0, 10, b)
    if name == "mnist":
        return rng.random((64, 1, 28, 28)).astype(F32), rng.integers(0, 10, 64)
    return rng.random((256, 784)).astype(F32), rng.integers(0, 10, 256)


BUILD = {"lstm": (OursLSTM, torch_lstm, "adam"), "cnn32": (ours_cnn_small, torch_cnn_small, "sgd"),
         "cnn256": (ours_cnn_small, torch_cnn_small, "sgd"),
         "mnist": (ours_mnist, torch_mnist, "sgd"), "mlp256": (ours_mlp, torch_mlp, "adam")}


def copy_weights(ours, theirs):
    """Ours' parameters into torch's, by name (both follow PyTorch's layout)."""
    sd = {k: np.asarray(v) for k, v in ours.state_dict().items()}
    with torch.no_grad():
        for k, p in theirs.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(sd[k])))


class Contender:
    def __init__(self, name):
        self.name, self.times, self.ratios, self.error = name, [], [], None
        self.n = self.rounds = 0


def steppers(name):
    build_ours, build_torch, optname = BUILD[name]
    nn.init.manual_seed(0)
    ours = build_ours()
    x, y = data(name, np.random.default_rng(1))
    opt = (nn.optim.Adam(ours.parameters(), lr=1e-3) if optname == "adam"
           else nn.optim.SGD(ours.parameters(), lr=0.05))

    def our_step():
        opt.zero_grad()
        loss = F.cross_entropy(ours(x), y)
        loss.backward()
        opt.step()
        return loss

    theirs = build_torch()
    copy_weights(ours, theirs)
    topt = (torch.optim.Adam(theirs.parameters(), lr=1e-3) if optname == "adam"
            else torch.optim.SGD(theirs.parameters(), lr=0.05))
    tx = torch.from_numpy(x) if x.dtype != np.int64 else torch.from_numpy(x).long()
    ty = torch.from_numpy(y).long()
    tce = torch.nn.functional.cross_entropy

    def torch_step():
        topt.zero_grad()
        loss = tce(theirs(tx), ty)
        loss.backward()
        topt.step()
        return loss

    return our_step, torch_step


def peak_ours(step):
    step()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def peak_torch(step):
    step()
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e.time_range.start, e.cpu_memory_usage) for e in prof.events()
                    if getattr(e, "cpu_memory_usage", 0))
    run = peak = 0
    for _, b in events:
        run += b
        peak = max(peak, run)
    return peak


def fmt_mem(b):
    return "—" if b is None else (f"{b / 2 ** 20:.1f} MiB" if b >= 2 ** 20 else f"{b / 1024:.0f} KiB")


def main():
    t_start = time.perf_counter()
    rows, verdicts = [], []
    for name in ("lstm", "cnn32", "cnn256", "mnist", "mlp256"):
        if not CFG.wants(name) or torch is None:
            continue
        print(f"== {name}")
        our_step, torch_step = steppers(name)
        l_ours, l_torch = float(np.asarray(our_step().value)), float(torch_step().item())
        mem_ours, mem_torch = peak_ours(our_step), peak_torch(torch_step)
        c = Contender("ours")
        _, base, kept = harness.time_interleaved(torch_step, [(c, our_step)], CFG)
        r = statistics.median(c.ratios)
        t_o, t_t = statistics.median(c.times), statistics.median(base)
        tgt = TARGETS[name]
        rows.append(f"| {name} | {harness.fmt_time(t_o)} | {harness.fmt_time(t_t)} | "
                    f"{r:.2f}× | ≤ {tgt:g}× | {'PASS' if r <= tgt else 'MISS'} | "
                    f"{fmt_mem(mem_ours)} | {fmt_mem(mem_torch)} | "
                    f"{abs(l_ours - l_torch):.1e} |")
        verdicts.append((f"{name} step vs torch", f"{r:.2f}×", f"≤ {tgt:g}×",
                         "PASS" if r <= tgt else "MISS"))
        print(f"   ours {harness.fmt_time(t_o)}  torch {harness.fmt_time(t_t)}  ratio {r:.2f}")
    took = f"{time.perf_counter() - t_start:.0f} s"
    vers = harness.versions([], autodiff.__version__, ["autodiff", "nn"], "autodiff/ or nn/",
                            [("torch", torch)])
    md = harness.header_md("Training steps beside PyTorch (float32)", took,
                           harness.machine_info(), PINNED,
                           "OMP/MKL/OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)", vers)
    md += ["", f"- **Load average** (1 min) at end: {harness.loadavg()}", "",
           "One step = zero_grad, forward, cross-entropy, backward, optimizer update, on one "
           "fixed batch, both libraries from the same weights. `ratio` is the median over "
           "interleaved rounds of our step time / torch's in the same round. Peak memory: "
           "tracemalloc for ours, torch's allocator events for torch. `|Δ loss|`: the first "
           "step's losses.", "",
           "| workload | ours | torch | ratio | target | met? | peak ours | peak torch | "
           "\\|Δ loss\\| |", "|---|---:|---:|---:|---:|:---:|---:|---:|---:|"] + rows + [""]
    md += harness.notes_md()
    harness.finish(md, verdicts, time.perf_counter() - t_start, ARGS)


if __name__ == "__main__":
    main()
