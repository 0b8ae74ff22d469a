#!/usr/bin/env python
"""Derivatives through solvers: the cost of an implicit derivative beside the solve itself.

Run from the repository root:

    python benchmarks/bench_solvers.py            # full run, about a minute
    python benchmarks/bench_solvers.py --quick    # a few seconds, noisier

Each workload times the plain solve (``autodiff.scipy.optimize`` on plain values: SciPy's
solver with the engine's exact ``jac``, exactly the solve a derivative call runs) and then
each derivative call (which runs that solve once and attaches the implicit derivative) in
interleaved rounds, one pinned thread; the figure is the median over rounds of
(derivative call time / solve time). Each derivative is checked against central finite
differences of the solve, and the solver's plain-value calls are counted to show one solve
per derivative call. SciPy's solve with its own defaults (finite-difference Jacobians where
it needs them) is listed for reference, on the same (counting) function.

A workload is one function ``workload_<name>()`` returning a :class:`Workload`; add one
(e.g. for ``solve_ivp``) by writing another and listing it in ``WORKLOADS``.
"""
import harness  # first: one thread everywhere, before numpy is imported

import statistics
import time

from harness import fmt_time, note

ARGS, CFG = harness.parse_args(
    __doc__, "results_solvers.md",
    quick="fewer rounds and shorter timings (a few seconds)",
    repeats=("rounds per workload", 11, 3),
    min_time=("minimum seconds per timing; sets the inner loop count", 0.05, 0.01),
    budget=("seconds one contender may spend timing one workload", 10.0, 1.0),
    only="comma-separated workloads to run: fermi,fermi20k,fermi_jit,fermi20k_jit,bratu,"
         "meanfield")
PINNED_CPU = harness.pin_to_one_core(ARGS.cpu)

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.optimize as so  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.scipy import optimize as aso  # noqa: E402

TARGET = 1.5            # an implicit gradient costs at most this many solves


class Workload:
    """``solve()`` the plain solve; ``derivs``: [(label, call, check)] where ``check()``
    returns (derivative, finite-difference estimate); ``reference``: [(label, call)] timed
    for information; ``count``: the counter of the solver's plain-value calls."""

    def __init__(self, name, what, solve, derivs, reference=(), count=None):
        self.name, self.what, self.solve = name, what, solve
        self.derivs, self.reference, self.count = derivs, list(reference), count


def counted(f):
    """``f`` counting its calls on plain values (SciPy's own calls, not the rules')."""
    def g(x, *a):
        if type(x) not in (ad.Dual, ad.Variable) and not any(
                type(v) in (ad.Dual, ad.Variable) for v in ad.tree.flatten(a)[0]):
            g.plain += 1
        return f(x, *a)
    g.plain = 0
    return g


def central(f, x, dx, h=1e-5):
    return (np.asarray(f(x + h * dx)) - np.asarray(f(x - h * dx))) / (2 * h)


# ----- the workloads ---------------------------------------------------------------------
class SolveCounter:
    """``scipy.optimize`` as ``autodiff.scipy.optimize`` sees it, counting the brentq solves
    (for an ``F`` given as ``ad.jit`` function, whose replays run no Python to count)."""

    def __init__(self):
        self.plain = 0

    def __getattr__(self, name):
        return getattr(so, name)

    def brentq(self, *a, **k):
        self.plain += 1
        return so.brentq(*a, **k)


SOLVES = SolveCounter()
aso._so = SOLVES


def workload_fermi(levels=2000, jit=False):
    """brentq: the Fermi level mu with sum_i f_FD(e_i, mu, T) = N for ``levels`` levels;
    with ``jit``, F is given as ``ad.jit(occ)`` (its sweep at the root is then compiled
    too)."""
    rng = np.random.default_rng(0)
    e = np.sort(rng.standard_normal(levels))
    T, N = 0.05, 0.45 * levels

    def occ(mu, e, T):
        return np.sum(1.0 / (1.0 + np.exp((e - mu) / T))) - N
    g = SOLVES if jit else counted(occ)
    F = ad.jit(occ) if jit else g
    mu = lambda e, T: aso.brentq(F, -10.0, 10.0, args=(e, T))
    de = rng.standard_normal(e.shape)
    tag = ", F = ad.jit(occ)" if jit else ""
    return Workload(
        f"fermi{levels}", f"brentq, Fermi level of {levels} levels{tag}: dmu/de (grad), "
        "dmu/dT (jvp)",
        lambda: mu(e, T),
        [("grad dmu/d(e, T)", lambda: ad.grad(mu, argnums=(0, 1))(e, T),
          lambda: (ad.grad(mu)(e, T) @ de, central(lambda s: mu(e + s * de, T), 0.0, 1.0))),
         ("jvp dmu/dT", lambda: ad.jvp(lambda T: mu(e, T), (T,), (1.0,))[1],
          lambda: (ad.jvp(lambda T: mu(e, T), (T,), (1.0,))[1],
                   central(lambda s: mu(e, T + s), 0.0, 1.0)))],
        [] if jit else [("scipy.optimize.brentq", lambda: so.brentq(g, -10.0, 10.0,
                                                                    args=(e, T)))], g)


def workload_bratu():
    """root (hybr): 1-D Bratu -u'' = lambda e^u on 200 interior points, du/dlambda."""
    n = 200
    h = 1.0 / (n + 1)

    def bratu(u, lam):
        up = np.concatenate([u[1:], np.zeros(1)])
        um = np.concatenate([np.zeros(1), u[:-1]])
        return (2 * u - up - um) / h ** 2 - lam * np.exp(u)
    g = counted(bratu)
    u = lambda lam: aso.root(g, np.zeros(n), args=(lam,), tol=1e-12).x
    mean_u = lambda lam: np.mean(u(lam))
    return Workload(
        "bratu", "root (hybr), 1-D Bratu, 200 unknowns: d mean(u)/dlambda (grad), du/dlambda "
        "(jacfwd)",
        lambda: u(2.0),
        [("grad d mean(u)/dlambda", lambda: ad.grad(mean_u)(2.0),
          lambda: (ad.grad(mean_u)(2.0), central(mean_u, 2.0, 1.0))),
         ("jacfwd du/dlambda", lambda: ad.jacfwd(u)(2.0),
          lambda: (ad.jacfwd(u)(2.0), central(u, 2.0, 1.0)))],
        [("scipy.optimize.root (FD Jacobian)",
          lambda: so.root(g, np.zeros(n), args=(2.0,), tol=1e-12).x)], g)


def workload_meanfield():
    """fixed_point: mean-field m = tanh(beta (J m + h)) on 200 sites, dm/dbeta, dm/dh."""
    rng = np.random.default_rng(1)
    n = 200
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    J = (A + A.T) / 2
    h0 = rng.uniform(0.2, 0.6, n)

    def T(m, beta, h):
        return np.tanh(beta * (J @ m + h))
    g = counted(T)
    m = lambda beta, h: aso.fixed_point(g, np.zeros(n), args=(beta, h), xtol=1e-12,
                                        method="iteration", maxiter=5000)
    energy = lambda beta, h: -np.sum(m(beta, h) * h)
    dh = rng.standard_normal(n)
    return Workload(
        "meanfield", "fixed_point (iteration), mean field on 200 sites: grad of -h.m "
        "w.r.t. (beta, h), jvp dm/dbeta",
        lambda: m(0.5, h0),
        [("grad d(-h.m)/d(beta, h)", lambda: ad.grad(energy, argnums=(0, 1))(0.5, h0),
          lambda: (ad.grad(energy, argnums=1)(0.5, h0) @ dh,
                   central(lambda s: energy(0.5, h0 + s * dh), 0.0, 1.0))),
         ("jvp dm/dbeta", lambda: ad.jvp(lambda b: m(b, h0), (0.5,), (1.0,))[1],
          lambda: (ad.jvp(lambda b: m(b, h0), (0.5,), (1.0,))[1],
                   central(lambda b: m(b, h0), 0.5, 1.0)))],
        [("scipy.optimize.fixed_point", lambda: so.fixed_point(
            g, np.zeros(n), args=(0.5, h0), xtol=1e-12, method="iteration", maxiter=5000))], g)


WORKLOADS = {"fermi": workload_fermi, "fermi20k": lambda: workload_fermi(20000),
             "fermi_jit": lambda: workload_fermi(jit=True),
             "fermi20k_jit": lambda: workload_fermi(20000, jit=True),
             "bratu": workload_bratu, "meanfield": workload_meanfield}


# ----- running and reporting -------------------------------------------------------------
class _C:
    def __init__(self, label, fn):
        self.label, self.fn = label, fn
        self.n = self.rounds = self.error = None
        self.times, self.ratios = [], []


def run(w):
    w.solve()
    w.count.plain = 0
    w.solve()
    per_solve = w.count.plain
    rows = []
    for label, call, check in w.derivs:
        w.count.plain = 0
        call()
        runs = w.count.plain / per_solve if per_solve else float("nan")
        d, fd = check()
        err = float(np.max(np.abs(np.asarray(d) - fd)) / max(1e-300, np.max(np.abs(fd))))
        rows.append((label, call, runs, err))
    cs = [_C(label, call) for label, call, _, _ in rows] + [_C(l, c) for l, c in w.reference]
    for c in cs:
        c.fn()
    _, base, timed = harness.time_interleaved(w.solve, [(c, c.fn) for c in cs], CFG)
    by = {c.label: c for c in timed}
    out = []
    for label, _, runs, err in rows:
        c = by.get(label)
        r = statistics.median(c.ratios) if c else float("nan")
        out.append((label, runs, err, r, statistics.median(c.times) if c else float("nan")))
    ref = [(c.label, statistics.median(c.ratios), statistics.median(c.times))
           for c in cs[len(rows):] if c.ratios]
    return statistics.median(base), out, ref


def main():
    t0 = time.time()
    machine = harness.announce(CFG, PINNED_CPU)
    md_rows, verdicts = [], []
    for name, make in WORKLOADS.items():
        if not CFG.wants(name):
            continue
        w = make()
        base, rows, ref = run(w)
        print(f"{w.what}: solve {fmt_time(base)}")
        for label, runs, err, r, t in rows:
            met = "PASS" if r <= TARGET and runs == 1 else "MISS"
            print(f"  {label}: {r:.2f}x the solve ({fmt_time(t)}), solver runs {runs:g}, "
                  f"rel. err vs FD {err:.1e}  {met}")
            md_rows.append(f"| {w.what.split(':')[0]} | {label} | {fmt_time(base)} | "
                           f"{fmt_time(t)} | {r:.2f}× | {runs:g} | {err:.1e} | "
                           f"≤ {TARGET}× | {met} |")
            verdicts.append((f"{name}: {label}", f"{r:.2f}x", f"≤ {TARGET}x", met))
        for label, r, t in ref:
            print(f"  (reference) {label}: {fmt_time(t)}, {r:.2f}x our solve")
            md_rows.append(f"| {w.what.split(':')[0]} | (reference) {label} | "
                           f"{fmt_time(base)} | {fmt_time(t)} | {r:.2f}× | — | — | — | — |")
    took = f"{time.time() - t0:.0f} s"
    vers = harness.versions([("scipy", scipy.__version__)], ad.__version__,
                            ["autodiff", "benchmarks"], "autodiff/ or benchmarks/", {})
    md = harness.header_md("Solver benchmark results", took, machine, PINNED_CPU,
                           "OMP/MKL/OPENBLAS_NUM_THREADS=1", vers)
    md += [f"- **Method:** {CFG.repeats} interleaved rounds per workload (each round times "
           "the plain solve, then every derivative call); inner loops sized so each timing "
           f"lasts ≥ {CFG.min_time * 1e3:.0f} ms; figure = median over rounds of (call time "
           "/ solve time). *solver runs* counts SciPy's plain-value calls of the function "
           "during one derivative call, in solves (for `F = ad.jit(occ)`, the calls of SciPy's "
           "brentq). *rel. err* is against a central finite "
           "difference (h = 1e-5) of the solve.",
           f"- **Load average** (1 min) at end: {harness.loadavg()}", "",
           "| workload | call | solve | call time | ratio | solver runs | rel. err vs FD | "
           "target | met? |", "|---|---|---:|---:|---:|---:|---:|---:|:---:|"]
    md += md_rows + [""] + harness.notes_md() + harness.include_md("analysis_solvers.md")
    harness.finish(md, verdicts, time.time() - t0, ARGS)


if __name__ == "__main__":
    main()
