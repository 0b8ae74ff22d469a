"""GPU benchmark: autodiff.gpu beside torch CUDA (and CuPy when installed), in one run.

Workloads (each a median of interleaved rounds, every timing closed by a device sync):

- copy: the device copy kernel at 2^26 float64 (read + write): the bandwidth yardstick;
- elementwise forward + backward: ``value_and_grad(sum(sin(x)·x²))`` at 2^26 float64,
  reported as the fraction of copy bandwidth for the traffic of a fused kernel (read x,
  write the gradient: 16 bytes per element);
- reductions sum / max / logsumexp at 2^26 float64, as bandwidth (8 bytes read per element)
  against the copy's;
- eager dispatch: µs per recorded operation on small arrays (a Variable chain);
- matmul 4096³ float32 against cuBLAS (torch.matmul, CuPy's ``@``), as a fraction;
- an MLP training step 784-4096-4096-10, batch 1024, float32 (forward, backward, SGD)
  against torch CUDA eager.

Targets (issue "autodiff.gpu"): elementwise ≥ 85 % of copy bandwidth, reductions ≥ 80 %,
dispatch ≤ 12 µs/op, matmul ≥ 30 % of cuBLAS, MLP step within 2× of torch.

    python benchmarks/bench_gpu.py                      # a CUDA GPU, < 8 minutes on an H200
    NUMBA_ENABLE_CUDASIM=1 python benchmarks/bench_gpu.py --simulator
                                                        # tiny sizes: a correctness run

``--simulator`` (alias ``--small``) runs every workload at tiny sizes and checks each result
against NumPy instead of timing anything meaningful (the simulator runs one Python thread
per CUDA thread). Results go to ``benchmarks/results_gpu.md`` unless ``--no-write``.
"""
import argparse
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--simulator", "--small", action="store_true", dest="small",
                help="tiny sizes on Numba's CUDA simulator; checks results against NumPy")
ap.add_argument("--rounds", type=int, default=None, help="rounds per workload (default 7)")
ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results_gpu.md"))
ap.add_argument("--no-write", action="store_true")
ARGS = ap.parse_args()
if ARGS.small:
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff import gpu, nn  # noqa: E402
from autodiff.reverse import Variable  # noqa: E402

ROUNDS = ARGS.rounds or (1 if ARGS.small else 7)
SIZES = dict(n=2 ** 10, mm=24, mlp=(16, 32, 32, 4), batch=12, chain=20) if ARGS.small else \
    dict(n=2 ** 26, mm=4096, mlp=(784, 4096, 4096, 10), batch=1024, chain=200)

try:
    import torch
    TORCH = torch if torch.cuda.is_available() and not ARGS.small else None
except Exception:        # noqa: BLE001  (torch is optional)
    TORCH = None
try:
    import cupy
    CUPY = None if ARGS.small else cupy
except Exception:        # noqa: BLE001
    CUPY = None

ROWS, CHECKS = [], []


def timed(fn, sync, rounds=ROUNDS):
    """Median seconds of ``fn()`` over ``rounds`` (after one warm-up call)."""
    fn()
    sync()
    ts = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def tsync():
    TORCH.cuda.synchronize()


def check(name, got, want, rtol):
    ok = np.allclose(got, want, rtol=rtol, atol=rtol)
    CHECKS.append((name, ok))
    print(f"   check {name}: {'ok' if ok else 'MISMATCH'}", flush=True)


def row(name, ours, peer=None, peer_name="", metric="", target=""):
    ROWS.append((name, ours, peer, peer_name, metric, target))
    print(f"{name:44s} ours {ours}  {peer_name} {peer if peer is not None else '—'}  "
          f"{metric}  {target}", flush=True)


def bench_copy_and_elementwise():
    n = SIZES["n"]
    xh = np.random.default_rng(0).uniform(-1, 1, n)
    x = gpu.to_device(xh)
    t_copy = timed(lambda: x.copy(), gpu.synchronize)
    bw_copy = 16 * n / t_copy
    row("copy 2^%d float64 (GB/s)" % round(np.log2(n)), f"{bw_copy / 1e9:.0f}")
    f = lambda x: np.sum(np.sin(x) * x ** 2)            # noqa: E731
    vg = ad.value_and_grad(f)
    t_el = timed(lambda: vg(x), gpu.synchronize)
    frac = 16 * n / t_el / bw_copy
    peer = None
    if TORCH is not None:
        xt = TORCH.tensor(xh, device="cuda", requires_grad=True)

        def step():
            xt.grad = None
            y = (TORCH.sin(xt) * xt ** 2).sum()
            y.backward()
        peer = f"{16 * n / timed(step, tsync) / bw_copy:.0%}"
    row("elementwise fwd+bwd sum(sin(x)x^2)", f"{frac:.0%} of copy", peer, "torch",
        f"{t_el * 1e3:.2f} ms", "≥ 85 %")
    v, g = vg(x)
    check("elementwise value", float(v), f(xh), 1e-9)
    check("elementwise grad", g.to_host(), np.sin(xh) * 2 * xh + np.cos(xh) * xh ** 2, 1e-9)
    return x, xh, bw_copy


def bench_reductions(x, xh, bw_copy):
    n = SIZES["n"]
    from autodiff.scipy.special import logsumexp
    for name, fn, ref in (("sum", np.sum, np.sum), ("max", np.max, np.max),
                          ("logsumexp", lambda a: logsumexp(a), None)):
        t = timed(lambda: fn(x), gpu.synchronize)
        peer = None
        if TORCH is not None:
            xt = TORCH.tensor(xh, device="cuda")
            tf = {"sum": TORCH.sum, "max": TORCH.max, "logsumexp":
                  lambda a: TORCH.logsumexp(a, 0)}[name]
            peer = f"{8 * n / timed(lambda: tf(xt), tsync) / bw_copy:.0%}"
        row(f"reduction {name} (of copy bandwidth)", f"{8 * n / t / bw_copy:.0%}", peer,
            "torch", f"{t * 1e3:.3f} ms", "≥ 80 %")
        want = ref(xh) if ref is not None else np.log(np.sum(np.exp(xh - xh.max()))) + xh.max()
        check(f"reduction {name}", float(fn(x)), want, 1e-9)


def bench_dispatch():
    k = SIZES["chain"]
    x0 = gpu.to_device(np.linspace(0.1, 1.0, 1000))

    def chain():
        v = Variable(x0)
        y = v
        for _ in range(k // 2):
            y = np.sin(y) * 0.5
        return y
    t = timed(chain, gpu.synchronize)
    peer = None
    if TORCH is not None:
        xt = TORCH.linspace(0.1, 1.0, 1000, device="cuda", dtype=TORCH.float64,
                            requires_grad=True)

        def tchain():
            y = xt
            for _ in range(k // 2):
                y = TORCH.sin(y) * 0.5
            return y
        peer = f"{timed(tchain, tsync) / k * 1e6:.1f} µs"
    row("eager dispatch per recorded op", f"{t / k * 1e6:.1f} µs", peer, "torch", "",
        "≤ 12 µs")


def bench_matmul():
    m = SIZES["mm"]
    rng = np.random.default_rng(1)
    ah, bh = rng.standard_normal((m, m), np.float32), rng.standard_normal((m, m), np.float32)
    a, b = gpu.to_device(ah), gpu.to_device(bh)
    t = timed(lambda: a @ b, gpu.synchronize)
    fl = 2 * m ** 3
    peer, pname = None, ""
    if TORCH is not None:
        at, bt = TORCH.tensor(ah, device="cuda"), TORCH.tensor(bh, device="cuda")
        peer, pname = f"{timed(lambda: at @ bt, tsync) / t:.0%} (ours/cuBLAS)", "torch"
    if CUPY is not None:
        ac, bc = CUPY.asarray(ah), CUPY.asarray(bh)
        tc = timed(lambda: ac @ bc, CUPY.cuda.Device().synchronize)
        peer, pname = f"{tc / t:.0%} (ours/cuBLAS)", "cupy"
    row(f"matmul {m}^3 float32", f"{fl / t / 1e12:.2f} TFLOP/s", peer, pname,
        f"{t * 1e3:.2f} ms", "≥ 30 % of cuBLAS")
    check("matmul", (a @ b).to_host(), ah @ bh, 1e-3)


def bench_mlp():
    d0, d1, d2, d3 = SIZES["mlp"]
    B = SIZES["batch"]
    rng = np.random.default_rng(2)
    xh = rng.standard_normal((B, d0)).astype(np.float32)
    yh = rng.integers(0, d3, B)
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(d0, d1), nn.ReLU(), nn.Linear(d1, d2), nn.ReLU(),
                          nn.Linear(d2, d3)).to("gpu", dtype=np.float32)
    opt = nn.optim.SGD(model.parameters(), lr=0.01)
    x, y = gpu.to_device(xh), gpu.to_device(yh)

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    t = timed(step, gpu.synchronize)
    peer = None
    if TORCH is not None:
        tm = TORCH.nn.Sequential(TORCH.nn.Linear(d0, d1), TORCH.nn.ReLU(),
                                 TORCH.nn.Linear(d1, d2), TORCH.nn.ReLU(),
                                 TORCH.nn.Linear(d2, d3)).cuda()
        topt = TORCH.optim.SGD(tm.parameters(), lr=0.01)
        xt, yt = TORCH.tensor(xh, device="cuda"), TORCH.tensor(yh, device="cuda")

        def tstep():
            topt.zero_grad()
            TORCH.nn.functional.cross_entropy(tm(xt), yt).backward()
            topt.step()
        peer = f"{t / timed(tstep, tsync):.2f}× torch's time"
    row(f"MLP step {d0}-{d1}-{d2}-{d3} batch {B} f32", f"{t * 1e3:.2f} ms", peer, "torch",
        "", "≤ 2× torch")
    if ARGS.small:                      # the same step on the host gives the same numbers
        nn.init.manual_seed(0)
        host = nn.Sequential(nn.Linear(d0, d1), nn.ReLU(), nn.Linear(d1, d2), nn.ReLU(),
                             nn.Linear(d2, d3)).to("cpu", dtype=np.float32)
        for p, q in zip(host.parameters(), model.parameters()):
            p.value = q.value.to_host()
        hopt = nn.optim.SGD(host.parameters(), lr=0.01)
        hopt.zero_grad()
        hl = nn.functional.cross_entropy(host(xh), yh)
        hl.backward()
        hopt.step()
        dl = step()
        check("MLP step loss", float(dl.value), float(hl.value), 1e-5)


def main():
    t0 = time.perf_counter()
    kind = "simulator (tiny sizes, correctness only)" if ARGS.small else "device"
    print(f"autodiff.gpu benchmark: {kind}; "
          f"torch CUDA: {TORCH is not None}; CuPy: {CUPY is not None}", flush=True)
    x, xh, bw = bench_copy_and_elementwise()
    bench_reductions(x, xh, bw)
    bench_dispatch()
    bench_matmul()
    bench_mlp()
    took = time.perf_counter() - t0
    bad = [n for n, ok in CHECKS if not ok]
    md = ["# autodiff.gpu benchmark", "",
          f"Command: `python benchmarks/bench_gpu.py{' --simulator' if ARGS.small else ''}`; "
          f"{took:.0f} s; medians of {ROUNDS} rounds.", "",
          "| workload | ours | peer | peer library | time | target |",
          "|---|---:|---:|---|---:|---|"]
    md += [f"| {n} | {o} | {p or '—'} | {pn or '—'} | {m} | {tg} |"
           for n, o, p, pn, m, tg in ROWS]
    md += ["", f"Checks against NumPy: {len(CHECKS) - len(bad)}/{len(CHECKS)} ok"
           + (f"; MISMATCH: {', '.join(bad)}" if bad else "")]
    if ARGS.small:
        md += ["", "Simulator run: the figures above are not device speeds."]
    if not ARGS.no_write:
        with open(ARGS.out, "w") as fh:
            fh.write("\n".join(md) + "\n")
    print(f"total {took:.0f} s; checks {len(CHECKS) - len(bad)}/{len(CHECKS)} ok", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
