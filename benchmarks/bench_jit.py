"""Compiled tapes (``ad.jit``) against the eager engine, the plain function and JAX ``jit``.

Each row times, in interleaved rounds on one pinned thread, the function ``f`` itself (the
baseline), the eager derivative, the ``ad.jit``-compiled derivative (steady state: the
program replayed) and, where installed, ``jax.jit`` of the same derivative; medians of the
per-round times and of the ratios to ``f``. The first call (recording, or JAX's trace and
compile) is timed separately, once, in a fresh jitted function, and so is the tier-up (the
slowest of the next calls: the replay on which a hot program moves to Numba, the fused
loops' compilation or their load from Numba's on-disk cache included). Every contender is
called past the tier before timing (``program.NUMBA_AFTER``), so ``ad.jit`` rows are its
steady state; the backend each program ended on is in brackets (``fused: k loops`` when
its elementwise chains run as Numba loops, autodiff/fusion.py).

    python benchmarks/bench_jit.py            # results in benchmarks/results_jit.md
    python benchmarks/bench_jit.py --quick    # a short run (also written there)
"""
import harness  # first: one thread everywhere

import argparse
import os
import statistics
import time

PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
PARSER.add_argument("--quick", action="store_true")
PARSER.add_argument("--cpu", type=int, default=None)
ARGS = PARSER.parse_args()
PINNED = harness.pin_to_one_core(ARGS.cpu)

import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff import fusion, nn  # noqa: E402
from autodiff import program as _program  # noqa: E402

try:
    import jax  # noqa: E402
    import jax.numpy as jnp  # noqa: E402
    jax.config.update("jax_enable_x64", True)
except Exception:  # noqa: BLE001
    jax = None


class _Cfg:
    repeats = 3 if ARGS.quick else 7
    min_time = 0.02 if ARGS.quick else 0.1
    budget = 5.0 if ARGS.quick else 30.0


class _C:
    def __init__(self, name):
        self.name, self.times, self.ratios, self.n, self.rounds, self.error = \
            name, [], [], 0, 0, None


def first_call(make, *args):
    fn = make()
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


WARM = _program.NUMBA_AFTER + 5       # calls that take a program past the tier


def tier_up(make, *args):
    """The slowest of calls 2 … WARM of a fresh jitted function (the call that lowers the
    program to Numba's backends is one of them)."""
    fn = make()
    fn(*args)
    worst = 0.0
    for _ in range(WARM):
        t = time.perf_counter()
        fn(*args)
        worst = max(worst, time.perf_counter() - t)
    return worst


def backend(jf, *args):
    """The backend the program of ``jf`` on ``args`` replays on, past the tier."""
    prog = jf.program(*args)
    k = len(fusion.kernels(prog))
    return f"{prog.backend}: {k} loops" if k else prog.backend


ROWS = []


def row(title, f, contenders, firsts=(), target=None, where=None):
    f()
    timed = []
    for name, fn in contenders:
        for _ in range(WARM):       # past the tier: the steady state is timed
            fn()
        timed.append((_C(name), fn))
    _, base, done = harness.time_interleaved(f, timed, _Cfg)
    tf = statistics.median(base)
    cells = {c.name: (statistics.median(c.times), statistics.median(c.ratios)) for c in done}
    if where:
        title = f"{title} [{where()}]"
    ROWS.append((title, tf, cells, dict(firsts), target))
    print(title, f"f {harness.fmt_time(tf)}",
          "  ".join(f"{k} {harness.fmt_time(t)} ({r:.2f}x f)" for k, (t, r) in cells.items()),
          "  first: " + ", ".join(f"{k} {harness.fmt_time(t)}" for k, t in dict(firsts).items()),
          flush=True)


# ----- the programs -----
def chain_plain(x):
    """bench_core's scalar chain: 1000 operations on Python floats (100 iterations of 10)."""
    for _ in range(100):
        x = x * 1.0001 + np.sin(x) * 0.001 - 0.0005
        x = x / (1.0 + np.exp(x * 0.01) * 1e-4)
    return x


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def lj(pos):
    d = pos[:, None, :] - pos[None, :, :]
    r2 = np.sum(d * d, axis=-1) + np.eye(pos.shape[0])
    inv6 = (1.0 / r2) ** 3
    e = 4.0 * (inv6 * inv6 - inv6)
    return 0.5 * np.sum(e)


def bratu(u):
    n = u.shape[0]
    h = 1.0 / (n + 1)
    up = np.concatenate([u[1:], np.zeros(1)])
    um = np.concatenate([np.zeros(1), u[:-1]])
    return (up - 2.0 * u + um) / h ** 2 + np.exp(u)


def ext_rosen(x):
    a, b = x[0::2], x[1::2]
    return np.sum(100.0 * (b - a ** 2) ** 2 + (1.0 - a) ** 2)


def main():
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)

    # scalar chain, reverse (Python floats)
    g_e, g_j = ad.grad(chain_plain), ad.jit(ad.grad(chain_plain))
    row("scalar chain 1000 ops, grad (per call; per op: /1000)", lambda: chain_plain(0.3),
        [("eager grad", lambda: g_e(0.3)), ("ad.jit grad", lambda: g_j(0.3))],
        [("ad.jit", first_call(lambda: ad.jit(ad.grad(chain_plain)), 0.3)),
         ("ad.jit tier-up", tier_up(lambda: ad.jit(ad.grad(chain_plain)), 0.3))],
        where=lambda: backend(g_j, 0.3))

    for n in (10, 100_000):
        x = rng.uniform(-1, 1, n)
        ge, gj = ad.grad(rosen), ad.jit(ad.grad(rosen))
        cont = [("eager grad", lambda: ge(x)), ("ad.jit grad", lambda: gj(x))]
        firsts = [("ad.jit", first_call(lambda: ad.jit(ad.grad(rosen)), x)),
                  ("ad.jit tier-up", tier_up(lambda: ad.jit(ad.grad(rosen)), x))]
        if jax is not None:
            jr = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
            jg = jax.jit(jax.grad(jr))
            xj = jnp.asarray(x)
            cont.append(("jax.jit grad", lambda: jg(xj).block_until_ready()))
            firsts.append(("jax.jit", first_call(lambda: jax.jit(jax.grad(jr)), xj)))
        row(f"Rosenbrock grad n={n}", lambda: rosen(x), cont, firsts, "<= 1.5x f",
            where=lambda: backend(gj, x))

    pos = rng.uniform(0, 10, (1024 if not ARGS.quick else 256, 3))
    ge, gj = ad.grad(lj), ad.jit(ad.grad(lj))
    row(f"Lennard-Jones grad N={pos.shape[0]}", lambda: lj(pos),
        [("eager grad", lambda: ge(pos)), ("ad.jit grad", lambda: gj(pos))],
        [("ad.jit", first_call(lambda: ad.jit(ad.grad(lj)), pos)),
         ("ad.jit tier-up", tier_up(lambda: ad.jit(ad.grad(lj)), pos))], "<= 1.3x f",
        where=lambda: backend(gj, pos))

    x = rng.uniform(-1, 1, 100)
    he, hj = ad.hessian(rosen), ad.jit(ad.hessian(rosen))
    cont = [("eager hessian", lambda: he(x)), ("ad.jit hessian", lambda: hj(x))]
    firsts = [("ad.jit", first_call(lambda: ad.jit(ad.hessian(rosen)), x)),
              ("ad.jit tier-up", tier_up(lambda: ad.jit(ad.hessian(rosen)), x))]
    if jax is not None:
        jr = lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
        jh = jax.jit(jax.hessian(jr))
        xj = jnp.asarray(x)
        cont.append(("jax.jit hessian", lambda: jh(xj).block_until_ready()))
        firsts.append(("jax.jit", first_call(lambda: jax.jit(jax.hessian(jr)), xj)))
    row("Rosenbrock Hessian n=100", lambda: rosen(x), cont, firsts, "within 1.5x of JAX jit",
        where=lambda: backend(hj, x))

    u = rng.uniform(0, 0.5, 200)
    je, jj = ad.jacfwd(bratu), ad.jit(ad.jacfwd(bratu))
    cont = [("eager jacfwd", lambda: je(u)), ("ad.jit jacfwd", lambda: jj(u))]
    firsts = [("ad.jit", first_call(lambda: ad.jit(ad.jacfwd(bratu)), u)),
              ("ad.jit tier-up", tier_up(lambda: ad.jit(ad.jacfwd(bratu)), u))]
    if jax is not None:
        def jbratu(u):
            h = 1.0 / (u.shape[0] + 1)
            up = jnp.concatenate([u[1:], jnp.zeros(1)])
            um = jnp.concatenate([jnp.zeros(1), u[:-1]])
            return (up - 2.0 * u + um) / h ** 2 + jnp.exp(u)
        jjac = jax.jit(jax.jacfwd(jbratu))
        uj = jnp.asarray(u)
        cont.append(("jax.jit jacfwd", lambda: jjac(uj).block_until_ready()))
        firsts.append(("jax.jit", first_call(lambda: jax.jit(jax.jacfwd(jbratu)), uj)))
    row("Bratu Jacobian n=200 (jacfwd)", lambda: bratu(u), cont, firsts,
        "within 1.5x of JAX jit", where=lambda: backend(jj, u))

    x, v = rng.uniform(-1, 1, 1000), rng.uniform(-1, 1, 1000)
    hv = ad.jit(lambda x, v: ad.hvp(ext_rosen, x, v))
    cont = [("eager hvp", lambda: ad.hvp(ext_rosen, x, v)), ("ad.jit hvp", lambda: hv(x, v))]
    firsts = [("ad.jit", first_call(lambda: ad.jit(lambda x, v: ad.hvp(ext_rosen, x, v)),
                                    x, v)),
              ("ad.jit tier-up", tier_up(lambda: ad.jit(lambda x, v: ad.hvp(ext_rosen, x, v)),
                                         x, v))]
    if jax is not None:
        def jext(x):
            a, b = x[0::2], x[1::2]
            return jnp.sum(100.0 * (b - a ** 2) ** 2 + (1.0 - a) ** 2)

        def jhvp(x, v):
            return jax.jvp(jax.grad(jext), (x,), (v,))[1]
        jh = jax.jit(jhvp)
        xj, vj = jnp.asarray(x), jnp.asarray(v)
        cont.append(("jax.jit hvp", lambda: jh(xj, vj).block_until_ready()))
        firsts.append(("jax.jit", first_call(lambda: jax.jit(jhvp), xj, vj)))
    row("extended Rosenbrock hvp n=1000", lambda: ext_rosen(x), cont, firsts,
        "within 1.5x of JAX jit", where=lambda: backend(hv, x, v))

    # MLP training step against the NumPy forward pass
    X, y = rng.standard_normal((32, 64)), rng.integers(0, 10, 32)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    W = [p.value for p in model.parameters()]

    def numpy_forward():
        h = np.maximum(X @ W[0].T + W[1], 0)
        h = np.maximum(h @ W[2].T + W[3], 0)
        z = h @ W[4].T + W[5]
        z = z - z.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(32), y])

    opt = nn.optim.SGD(model.parameters(), lr=1e-4)
    step = nn.compile_step(model, nn.functional.cross_entropy, opt)

    def eager_step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(X), y)
        loss.backward()
        opt.step()

    row("MLP step 64-128-128-10, batch 32", numpy_forward,
        [("eager step", eager_step), ("compile_step", lambda: step(X, y))], (), "<= 2x f")
    return time.perf_counter() - t0


if __name__ == "__main__":
    took = main()
    lines = ["# Compiled tapes (`ad.jit`): benchmark results", "",
             f"`python benchmarks/bench_jit.py{' --quick' if ARGS.quick else ''}`; "
             f"{took:.0f} s; pinned CPU {PINNED}; load average {harness.loadavg()}; "
             f"medians of {_Cfg.repeats} interleaved rounds.", "",
             "| row | f | contender: median time (× f) | first call | target |",
             "|---|---|---|---|---|"]
    for title, tf, cells, firsts, target in ROWS:
        c = "<br>".join(f"{k}: {harness.fmt_time(t)} ({r:.2f}×)" for k, (t, r) in cells.items())
        fc = "<br>".join(f"{k}: {harness.fmt_time(t)}" for k, t in firsts.items())
        lines.append(f"| {title} | {harness.fmt_time(tf)} | {c} | {fc} | {target or ''} |")
    lines += [""] + harness.include_md("analysis_jit.md")     # the hand-written reading
    text = "\n".join(lines).rstrip() + "\n"
    print(text)
    with open(os.path.join(harness.HERE, "results_jit.md"), "w") as fh:
        fh.write(text)
