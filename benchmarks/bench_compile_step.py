"""``nn.compile_step`` (update fused into the program), ``ad.jit``'s per-call overhead and
the scalar chain on the Numba interpreter, in interleaved rounds on one pinned thread.

Rows: the MLP step 64-128-128-10 at batch 32 (SGD, and Adam) against the NumPy forward
pass (as ``bench_jit.py``); an identity-like jitted function of a tuple of arrays and
floats against the same plain function (the call path: signature key, cache lookup,
replay, outputs); the 1,000-operation scalar chain's ``ad.jit(ad.grad)`` per call, whose
per-operation cost is the time / 1000. Prints the figures (it writes no file).

    python benchmarks/bench_compile_step.py [--quick] [--cpu N]
"""
import harness  # first: one thread everywhere

import argparse
import statistics

PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
PARSER.add_argument("--quick", action="store_true")
PARSER.add_argument("--cpu", type=int, default=None)
ARGS = PARSER.parse_args()
PINNED = harness.pin_to_one_core(ARGS.cpu)

import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff import nn  # noqa: E402


class _Cfg:
    repeats = 5 if ARGS.quick else 9
    min_time = 0.05 if ARGS.quick else 0.2
    budget = 10.0 if ARGS.quick else 40.0


class _C:
    def __init__(self, name):
        self.name, self.times, self.ratios, self.n, self.rounds, self.error = \
            name, [], [], 0, 0, None


def row(title, f, contenders, warm=30):
    for _ in range(warm):           # steady state: recorded, lowered, tiered
        f()
        for _, fn in contenders:
            fn()
    timed = [(_C(name), fn) for name, fn in contenders]
    _, base, done = harness.time_interleaved(f, timed, _Cfg)
    print(f"{title}: f {harness.fmt_time(statistics.median(base))}; " + "; ".join(
        f"{c.name} {harness.fmt_time(statistics.median(c.times))} "
        f"({statistics.median(c.ratios):.2f}x f)" for c in done), flush=True)


def chain_plain(x):
    """bench_jit's scalar chain: 1000 operations on Python floats."""
    for _ in range(100):
        x = x * 1.0001 + np.sin(x) * 0.001 - 0.0005
        x = x / (1.0 + np.exp(x * 0.01) * 1e-4)
    return x


def main():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 64)), rng.integers(0, 10, 32)

    def mlp():
        return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                             nn.Linear(128, 10))
    model = mlp()
    W = [p.value for p in model.parameters()]

    def numpy_forward():
        h = np.maximum(X @ W[0].T + W[1], 0)
        h = np.maximum(h @ W[2].T + W[3], 0)
        z = h @ W[4].T + W[5]
        z = z - z.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(32), y])

    for name, make in (("SGD", lambda p: nn.optim.SGD(p, lr=1e-4)),
                       ("SGD momentum", lambda p: nn.optim.SGD(p, lr=1e-4, momentum=0.9)),
                       ("Adam", lambda p: nn.optim.Adam(p, lr=1e-5))):
        m1, m2 = mlp(), mlp()
        o1, o2 = make(m1.parameters()), make(m2.parameters())
        step = nn.compile_step(m2, nn.functional.cross_entropy, o2)

        def eager_step(m1=m1, o1=o1):
            o1.zero_grad()
            loss = nn.functional.cross_entropy(m1(X), y)
            loss.backward()
            o1.step()
        row(f"MLP step 64-128-128-10 batch 32, {name} (fused: {getattr(step, 'fused', bool)()})",
            numpy_forward, [("eager step", eager_step),
                            ("compile_step", lambda step=step: step(X, y))])

    a, b, s = rng.standard_normal(3), rng.standard_normal((2, 2)), 0.5

    def ident(a, b, s):
        return a, b
    jid = ad.jit(ident)
    row("identity-like jit of (array, array, float)", lambda: ident(a, b, s),
        [("ad.jit", lambda: jid(a, b, s))])

    g = ad.jit(ad.grad(chain_plain))
    g(0.3)
    row("scalar chain 1000 ops, ad.jit grad per call (per op: /1000)",
        lambda: chain_plain(0.3), [("ad.jit grad", lambda: g(0.3))])
    prog = g.program(0.3)
    print(f"  chain program: {len(prog)} instructions, backend {prog.backend}")
    print(f"pinned CPU {PINNED}; load average {harness.loadavg()}")


if __name__ == "__main__":
    main()
