#!/usr/bin/env python
"""solve_ivp's derivatives: accuracy on a stiff problem, and their cost next to the solve.

Run from the repository root:

    python benchmarks/bench_ivp.py            # full run, several minutes
    python benchmarks/bench_ivp.py --quick    # fewer rounds
    python benchmarks/bench_ivp.py --only robertson

- Robertson's kinetics (BDF, rtol 1e-10, atol 1e-14): dy(40)/dk (three rate constants) and
  dy(40)/dy0 by forward sensitivities (``jacfwd``) and by the adjoint (``jacrev``,
  ``sensitivity="adjoint"``), each entry against central differences (one Richardson step)
  of SciPy's LSODA with its exact Jacobian at rtol 3e-14; wall time of each next to the
  plain solve (with the AD Jacobian), in interleaved rounds.
- The 1-D Brusselator, 200 points (400 unknowns, BDF, rtol 1e-6): the sensitivities of the
  final state to its two parameters (A, B) by ``jacfwd`` (forward sensitivities), and the
  gradient of a scalar of it by the adjoint, next to the plain solve with the dense AD
  Jacobian (what ``solve_ivp`` gives the implicit methods) and with a sparse one.

Each figure is the median over rounds of (derivative time / plain solve time in the same
round); one thread, one pinned core (harness.py).
"""
import harness  # first: one thread everywhere, before numpy is imported

import statistics
import time

ARGS, CFG = harness.parse_args(
    __doc__, "results_ivp.md",
    quick="fewer rounds (a few minutes)",
    repeats=("rounds per workload", 5, 2),
    min_time=("minimum seconds per timing", 0.2, 0.05),
    budget=("seconds one contender may spend timing one workload", 120.0, 40.0),
    only="comma-separated workloads to run: robertson,brusselator")
PINNED_CPU = harness.pin_to_one_core(ARGS.cpu)

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.integrate as si  # noqa: E402
from scipy import sparse  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.scipy.integrate import solve_ivp  # noqa: E402


class Contender:
    def __init__(self, name, fn):
        self.name, self.fn = name, fn
        self.n = self.rounds = 0
        self.times, self.ratios, self.error = [], [], None


def _timed(baseline, contenders):
    for c in contenders:
        c.fn()
    _, base, ok = harness.time_interleaved(baseline, [(c, c.fn) for c in contenders], CFG)
    return statistics.median(base), ok


# ----- Robertson -----
K = np.array([0.04, 3e7, 1e4])
Y0 = np.array([1.0, 0.0, 0.0])
TOL = dict(rtol=1e-10, atol=1e-14)


def robertson(t, y, k1, k2, k3):
    return [-k1 * y[0] + k3 * y[1] * y[2], k1 * y[0] - k3 * y[1] * y[2] - k2 * y[1] ** 2,
            k2 * y[1] ** 2]


def _robertson_jac(y, t, k1, k2, k3):
    return [[-k1, k3 * y[2], k3 * y[1]], [k1, -k3 * y[2] - 2 * k2 * y[1], -k3 * y[1]],
            [0.0, 2 * k2 * y[1], 0.0]]


def y40(k, y0, sensitivity="auto"):
    return solve_ivp(robertson, (0.0, 40.0), y0, method="BDF", args=(k[0], k[1], k[2]),
                     sensitivity=sensitivity, **TOL).y[:, -1]


def _tight(k, y0):
    return si.odeint(lambda y, t, *k: robertson(t, y, *k), y0, [0.0, 40.0], args=tuple(k),
                     Dfun=_robertson_jac, rtol=3e-14, atol=1e-20, mxstep=10 ** 6)[-1]


def _richardson(f, x, h):
    def central(h):
        return np.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)], -1)
    return (4 * central(h / 2) - central(h)) / 3


def robertson_workload(md, verdicts):
    print("Robertson: finite-difference reference ...")
    # k spans 0.04 to 3e7: stepped relatively (in log k); y0 absolutely
    ref_k = _richardson(lambda r: _tight(K * np.exp(r), Y0), np.zeros(3), 4e-4) / K
    ref_y = _richardson(lambda y0: _tight(K, y0), Y0, 4e-6)

    def fwd():
        return ad.jacfwd(y40, argnums=(0, 1))(K, Y0, "forward")

    def rev():
        return ad.jacrev(y40, argnums=(0, 1))(K, Y0, "adjoint")

    def plain():
        return y40(K, Y0)
    rows = []
    for name, fn in (("forward sensitivities (jacfwd)", fwd), ("adjoint (jacrev)", rev)):
        jk, jy = fn()
        ek = float(np.max(np.abs(jk - ref_k) / np.abs(ref_k)))
        nz = ref_y != 0
        ey = float(max(np.max(np.abs(jy - ref_y)[nz] / np.abs(ref_y[nz])),
                       np.max(np.abs(jy[~nz]), initial=0.0)))
        rows.append((name, ek, ey))
        verdicts.append((f"Robertson {name}: max relative error of dy(40)/dk, dy(40)/dy0",
                         f"{ek:.1e}, {ey:.1e}", "≤ 1e-6", "MET" if max(ek, ey) <= 1e-6
                         else "NOT MET"))
    base, ok = _timed(plain, [Contender("forward sensitivities (jacfwd)", fwd),
                              Contender("adjoint (jacrev)", rev)])
    md += ["## Robertson (BDF, rtol 1e-10, atol 1e-14): dy(40)/dk and dy(40)/dy0", "",
           f"Plain solve (AD Jacobian): {harness.fmt_time(base)} (median).", "",
           "| derivative | max rel. error dy/dk | max rel. error dy/dy0 | time | × plain solve |",
           "|---|---|---|---|---|"]
    for (name, ek, ey), c in zip(rows, ok):
        md.append(f"| {name} | {ek:.1e} | {ey:.1e} | {harness.fmt_time(statistics.median(c.times))}"
                  f" | {statistics.median(c.ratios):.2f}× |")
    md += ["", "Errors are the largest over the 9 entries, each relative to itself (down to "
           "dy₂/dk₂ ≈ 1e-13); an entry that is exactly 0 counts absolutely.", ""]


# ----- Brusselator -----
N = 200
X = np.arange(1, N + 1) / (N + 1)
C = (N + 1) ** 2 / 50.0


def brusselator(t, y, a, b):
    u, v = y[:N], y[N:]
    one = np.ones(1)
    lap_u = np.concatenate([one, u[:-1]]) - 2 * u + np.concatenate([u[1:], one])
    lap_v = np.concatenate([3 * one, v[:-1]]) - 2 * v + np.concatenate([v[1:], 3 * one])
    u2v = u * u * v
    return np.concatenate([a + u2v - (b + 1) * u + C * lap_u, b * u - u2v + C * lap_v])


BY0 = np.concatenate([1 + np.sin(2 * np.pi * X), 3 * np.ones(N)])
BTOL = dict(rtol=1e-6, atol=1e-8)


def brusselator_workload(md, verdicts):
    ab = np.array([1.0, 3.0])
    dense_jac = ad.jacfwd(lambda y, a, b: brusselator(0.0, y, a, b))

    def sparse_jac(t, y, a, b):          # the same AD Jacobian, given to BDF as CSC
        return sparse.csc_matrix(dense_jac(y, a, b))

    def plain():
        return solve_ivp(brusselator, (0.0, 10.0), BY0, method="BDF", args=(1.0, 3.0), **BTOL)

    def plain_sparse():
        return solve_ivp(brusselator, (0.0, 10.0), BY0, method="BDF", args=(1.0, 3.0),
                         jac=sparse_jac, **BTOL)

    def final(ab):
        return solve_ivp(brusselator, (0.0, 10.0), BY0, method="BDF", args=(ab[0], ab[1]),
                         **BTOL).y[:, -1]

    def fwd():
        return ad.jacfwd(final)(ab)

    def adj():
        return ad.grad(lambda ab: np.sum(solve_ivp(
            brusselator, (0.0, 10.0), BY0, method="BDF", args=(ab[0], ab[1]),
            sensitivity="adjoint", **BTOL).y[:N, -1]))(ab)
    J = fwd()
    h = 1e-6
    num = np.stack([(final(ab + h * e) - final(ab - h * e)) / (2 * h) for e in np.eye(2)], -1)
    err = float(np.max(np.abs(J - num)) / np.max(np.abs(num)))
    g = adj()
    gerr = float(np.max(np.abs(g - np.sum(J[:N], axis=0)) / np.abs(np.sum(J[:N], axis=0))))
    sol = plain()
    cs = [Contender("plain solve, sparse AD Jacobian", plain_sparse),
          Contender("dy(10)/d(A, B), forward sensitivities (jacfwd)", fwd),
          Contender("grad of Σu(10), adjoint", adj)]
    base, ok = _timed(plain, cs)
    by = {c.name: c for c in ok}
    sp = statistics.median(by[cs[0].name].times) if cs[0].name in by else None
    md += ["## Brusselator, 200 points (400 unknowns, BDF, rtol 1e-6): sensitivities to (A, B)",
           "", f"Plain solve with the dense AD Jacobian: {harness.fmt_time(base)} (median; "
           f"{sol.t.size} steps, {sol.nfev} rhs calls, {sol.njev} Jacobians, {sol.nlu} LUs). "
           f"dy/d(A, B) agrees with central differences of the solve to {err:.1e} "
           f"(relative to its largest entry); the adjoint gradient with the forward one to "
           f"{gerr:.1e}.", "",
           "| | time | × plain (dense Jacobian) | × plain (sparse Jacobian) |", "|---|---|---|---|"]
    for c in ok:
        t = statistics.median(c.times)
        md.append(f"| {c.name} | {harness.fmt_time(t)} | {statistics.median(c.ratios):.2f}× | "
                  f"{t / sp:.2f}× |" if sp else "— |")
    md.append("")
    if cs[1].name in by:
        r = statistics.median(by[cs[1].name].ratios)
        verdicts.append(("Brusselator 400: jacfwd over (A, B) / plain solve (dense AD Jacobian)",
                         f"{r:.2f}×", "≤ 5×", "MET" if r <= 5 else "NOT MET"))
        if sp:
            r2 = statistics.median(by[cs[1].name].times) / sp
            verdicts.append(("Brusselator 400: jacfwd over (A, B) / plain solve (sparse "
                             "Jacobian)", f"{r2:.2f}×", "(no target)", ""))


def main():
    t_start = time.perf_counter()
    machine = harness.announce(CFG, PINNED_CPU)
    md, verdicts = [], []
    if CFG.wants("robertson"):
        robertson_workload(md, verdicts)
    if CFG.wants("brusselator"):
        brusselator_workload(md, verdicts)
    elapsed = time.perf_counter() - t_start
    vers = harness.versions([("scipy", scipy.__version__)], ad.__version__, ["autodiff"],
                            "autodiff", [])
    head = harness.header_md("solve_ivp: derivatives of a stiff solve", f"{elapsed:.0f} s",
                             machine, PINNED_CPU, "OMP/MKL/OpenBLAS threads = 1", vers)
    out = head + ["", "## Targets", ""] + [f"- {label}: **{val}** (target {tgt}) {met}"
                                           for label, val, tgt, met in verdicts] + [""] + md
    out += harness.notes_md()
    harness.finish(out, verdicts, elapsed, ARGS)


if __name__ == "__main__":
    main()
