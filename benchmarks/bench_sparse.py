#!/usr/bin/env python
"""Sparse benchmark: compressed Jacobians and Hessians (ad.sparse_jacobian, ad.sparse_hessian)
beside the dense ones and asdex (JAX), colour counts, and a stiff BDF solve.

Run from the repository root:

    python benchmarks/bench_sparse.py            # full run, a few minutes
    python benchmarks/bench_sparse.py --quick    # about a minute, noisier

Derivatives are timed as a RATIO to the plain NumPy function of the same workload, in
interleaved rounds (harness.py): each round times the NumPy function, then every contender;
the figure is the median over rounds of (contender time / NumPy time). asdex's Jacobian is
``jax.jit`` of ``asdex.jacobian_from_coloring`` (its BCOO output), timed against the same
NumPy function. Preparation (detection + colouring) is timed once per contender, in a
fresh function object, and so are the colour counts. The BDF solve is
``scipy.integrate.solve_ivp(method="BDF")`` on the 1-D Brusselator with 200 points (400
unknowns), t in [0, 10]: wall time (median of the rounds) and Jacobian evaluations. All
float64, one thread, one core.
"""
import harness  # first: one thread everywhere, before numpy / jax are imported

import statistics
import time
import warnings

from harness import PROBLEMS, fmt_time, note, short_exc

ARGS, CFG = harness.parse_args(
    __doc__, "results_sparse.md",
    quick="fewer rounds and shorter timings (about a minute)",
    repeats=("rounds per workload", 9, 3),
    min_time=("minimum seconds per timing; sets the inner loop count", 0.05, 0.01),
    budget=("seconds one contender may spend timing one workload", 10.0, 1.0),
    only="comma-separated workloads to run: bratu,hessian,brusselator,colours,bdf")
PINNED_CPU = harness.pin_to_one_core(ARGS.cpu)

import numpy as np  # noqa: E402
import scipy.sparse as sps  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.colouring import column_colouring, row_colouring, star_colouring  # noqa: E402
from autodiff.scipy.integrate import ivp_jacobian  # noqa: E402
from autodiff.sparsity import hessian_sparsity  # noqa: E402

try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import asdex
except Exception as exc:  # noqa: BLE001
    jax = jnp = asdex = None
    note(f"asdex (with jax) not usable: {short_exc(exc)}; its columns are empty")


# =====================================================================================
# Workloads, written once for NumPy (ours) and once for jax.numpy (asdex)
# =====================================================================================
def bratu(u, m):
    h = 1.0 / (u.shape[0] + 1)
    z = m.zeros(1)
    up = m.concatenate([z, u, z])
    return (up[:-2] - 2.0 * u + up[2:]) / (h * h) + m.exp(u)


def hess_fun(x, m):
    """bench_core.py's Hessian workload: log(1 + x²) summed, plus Rosenbrock."""
    return m.log(1.0 + x ** 2).sum() + (100.0 * (x[1:] - x[:-1] ** 2) ** 2
                                        + (1.0 - x[:-1]) ** 2).sum()


def brusselator_2d(y, m, N):
    """Two species on an N × N periodic grid, five-point diffusion. ``y`` is (2, N, N)
    flattened: all u, then all v (the layout asdex's figure of 12 colours is for)."""
    Y = y.reshape(2, N, N)
    u, v = Y[0], Y[1]

    def lap(a):
        return (m.roll(a, 1, 0) + m.roll(a, -1, 0) + m.roll(a, 1, 1) + m.roll(a, -1, 1)
                - 4.0 * a)
    du = 1.0 + u * u * v - 4.4 * u + 10.0 * lap(u)
    dv = 3.4 * u - u * u * v + 10.0 * lap(v)
    return m.stack([du, dv]).reshape(-1)


def _deinterleave(y, m, N):
    """(N, N, 2) flattened -> (2, N, N) flattened: the interleaved layout's input."""
    return m.moveaxis(y.reshape(N, N, 2), -1, 0).reshape(-1)


def energy(x, m, N, nine):
    X = x.reshape(N, N)
    e = (((X[1:] - X[:-1]) ** 2).sum() + ((X[:, 1:] - X[:, :-1]) ** 2).sum()
         + m.cosh(X).sum())
    if nine:
        e = e + m.sin(X[1:, 1:] * X[:-1, :-1]).sum() + ((X[1:, :-1] - X[:-1, 1:]) ** 2).sum()
    return e


def brusselator_1d(t, y, N=200):
    c = (N + 1) ** 2 / 50.0
    u, v = y[0::2], y[1::2]
    up = np.concatenate([np.ones(1), u, np.ones(1)])
    vp = np.concatenate([np.full(1, 3.0), v, np.full(1, 3.0)])
    du = 1 + u * u * v - 4 * u + c * (up[:-2] - 2 * u + up[2:])
    dv = 3 * u - u * u * v + c * (vp[:-2] - 2 * v + vp[2:])
    return np.stack([du, dv], axis=1).reshape(-1)


# =====================================================================================
# Timing helpers
# =====================================================================================
class Contender:
    def __init__(self, label, make):
        self.label, self.make = label, make
        self.fn = self.error = self.n = self.rounds = self.setup_time = None
        self.ratios, self.times = [], []

    def median_ratio(self):
        return statistics.median(self.ratios) if self.ratios else None

    def median_time(self):
        return statistics.median(self.times) if self.times else None


def as_csr(r):
    """A result (scipy.sparse, jax BCOO or dense) as a scipy CSR array."""
    if sps.issparse(r):
        return sps.csr_array(r)
    if hasattr(r, "indices") and hasattr(r, "data") and hasattr(r, "todense"):   # BCOO
        idx = np.asarray(r.indices)
        return sps.coo_array((np.asarray(r.data), (idx[:, 0], idx[:, 1])),
                             shape=r.shape).tocsr()
    return sps.csr_array(np.asarray(r))


def check_against(want):
    """A check that a result equals ``want`` (a scipy.sparse or dense reference)."""
    want = sps.csr_array(want)
    scale = max(1.0, float(abs(want).max())) if want.nnz else 1.0

    def check(got):
        d = abs(as_csr(got) - want)
        err = float(d.max()) if d.nnz else 0.0
        if err > 1e-6 * scale:
            raise AssertionError(f"wrong result: max |diff| {err:.3e}")
    return check


def run(title, baseline, contenders, check):
    """Set up, verify with ``check``, time in interleaved rounds."""
    print(f"\n== {title}")
    for c in contenders:
        try:
            t0 = time.perf_counter()
            c.fn = c.make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = c.fn()
            c.setup_time = time.perf_counter() - t0
            check(got)
        except Exception as exc:  # noqa: BLE001
            c.error, c.fn = short_exc(exc), None
            print(f"   {c.label}: ERROR {c.error}")
            if c.label.startswith("ours"):
                PROBLEMS.append((title, c.label, c.error, "", None))
    ok = [c for c in contenders if c.fn is not None]
    n_f, base_times, ok = harness.time_interleaved(baseline, [(c, c.fn) for c in ok], CFG)
    for c in ok:
        print(f"   {c.label:<44s} {c.median_ratio():9.2f} x  {fmt_time(c.median_time()):>10s}"
              f"/call  first call {fmt_time(c.setup_time)}")
    print(f"   {'NumPy f (no AD)':<44s} {1:9.2f} x  {fmt_time(statistics.median(base_times)):>10s}")
    return {"title": title, "f": statistics.median(base_times), "contenders": contenders}


def once(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def best_of(k, fn):
    """The result of ``fn()`` and the least of ``k`` timings of it (a deterministic step:
    the least is the one other processes disturbed least)."""
    times = []
    for _ in range(k):
        out, t = once(fn)
        times.append(t)
    return out, min(times)


def n_col(c):
    return int(np.max(c)) + 1 if np.size(c) else 0


# =====================================================================================
# Workloads
# =====================================================================================
RESULTS, ROWS, COLOURS, PREP, BDF = [], [], [], [], []


def workload_bratu(n=200):
    u0 = 0.1 * np.sin(np.pi * np.linspace(0, 1, n + 2)[1:-1])
    f = lambda u: bratu(u, np)              # noqa: E731
    want = ad.jacobian(f)(u0)
    sj = ad.sparse_jacobian(f)
    cs = [Contender("ours ad.sparse_jacobian", lambda: (lambda: sj(u0))),
          Contender("ours ad.jacobian (dense, forward)",
                    lambda: (lambda J: lambda: J(u0))(ad.jacobian(f, mode="forward")))]
    if asdex is not None:
        fj = lambda u: bratu(u, jnp)        # noqa: E731
        cs.append(Contender("asdex (jax.jit)", lambda: _asdex_jac(fj, u0)))
    res = run(f"Bratu Jacobian n = {n}", lambda: f(u0), cs, check_against(want))
    res["colours"] = sj.n_colours
    RESULTS.append(res)
    ROWS.append((f"Bratu Jacobian n = {n} ({sj.n_colours} colours, target 3)", res, 6.0))


def _asdex_jac(fj, x0):
    x = jnp.asarray(x0)
    col = asdex.jacobian_coloring(fj, x)
    J = jax.jit(asdex.jacobian_from_coloring(fj, col))
    return lambda: jax.block_until_ready(J(x))


def _asdex_hes(fj, x0):
    x = jnp.asarray(x0)
    col = asdex.hessian_coloring(fj, x)
    H = jax.jit(asdex.hessian_from_coloring(fj, col))
    return lambda: jax.block_until_ready(H(x))


def workload_hessian(n=100):
    x0 = np.linspace(-1.2, 1.1, n)
    f = lambda x: hess_fun(x, np)           # noqa: E731
    want = ad.hessian(f)(x0)
    sh = ad.sparse_hessian(f)
    cs = [Contender("ours ad.sparse_hessian", lambda: (lambda: sh(x0))),
          Contender("ours ad.hessian (dense)",
                    lambda: (lambda H: lambda: H(x0))(ad.hessian(f)))]
    if asdex is not None:
        fj = lambda x: hess_fun(x, jnp)     # noqa: E731
        cs.append(Contender("asdex hessian (jax.jit)", lambda: _asdex_hes(fj, x0)))
    res = run(f"Hessian n = {n} (bench_core's)", lambda: f(x0), cs, check_against(want))
    res["colours"] = sh.n_colours
    RESULTS.append(res)
    ROWS.append((f"Hessian n = {n} ({sh.n_colours} colours)", res, 8.0))


def workload_brusselator(N=128):
    n = 2 * N * N
    rng = np.random.default_rng(0)
    y0 = np.concatenate([1.0 + 0.1 * rng.standard_normal(N * N),
                         3.0 + 0.1 * rng.standard_normal(N * N)])
    f = lambda y: brusselator_2d(y, np, N)  # noqa: E731
    # Preparation: detection and colouring, each timed once on fresh objects.
    column_colouring(sps.eye_array(3))             # one-time imports out of the timing
    P, t_detect = best_of(3, lambda: ad.sparsity(f)(y0))
    cols, t_cols = best_of(3, lambda: column_colouring(P))
    rows = row_colouring(P)
    sj = ad.sparse_jacobian(f)
    _, t_first = once(lambda: sj(y0))
    PREP.append(("ours: ad.sparsity (detection), best of 3", t_detect))
    PREP.append(("ours: column colouring, best of 3 (the pattern is symmetric: auto mode "
                 "colours once)", t_cols))
    PREP.append(("ours: detection + colouring", t_detect + t_cols))
    PREP.append(("ours: first ad.sparse_jacobian call (detection, colouring, one sweep), "
                 "once", t_first))
    COLOURS.append((f"2-D Brusselator N = {N} (n = {n}), u then v: columns / rows",
                    f"{n_col(cols)} / {n_col(rows)}", None, "≤ 10 (asdex 12)"))
    row_blocked = len(COLOURS) - 1
    # The same equations with the species interleaved point by point, shape (N, N, 2).
    Pi = ad.sparsity(lambda y: brusselator_2d(_deinterleave(y, np, N), np, N))(y0)
    theirs = None
    if asdex is not None:
        gi = lambda y: brusselator_2d(_deinterleave(y, jnp, N), jnp, N)   # noqa: E731
        theirs = str(asdex.jacobian_coloring(gi, jnp.asarray(y0)).num_colors)
    COLOURS.append(("the same, species interleaved point by point: columns",
                    str(n_col(column_colouring(Pi))), theirs, "—"))
    # A dense Jacobian of 32,768² is 8.6 GB: check entries against forward-mode JVPs.
    J = sj(y0)
    v = rng.standard_normal(n)
    jv = ad.jvp(f, (y0,), (v,))[1]
    if not np.allclose(J @ v, jv, rtol=1e-10, atol=1e-8):
        PROBLEMS.append(("Brusselator", "ours", "J @ v differs from the JVP", "", None))
    cs = [Contender("ours ad.sparse_jacobian", lambda: (lambda: sj(y0)))]
    if asdex is not None:
        fj = lambda y: brusselator_2d(y, jnp, N)   # noqa: E731
        x = jnp.asarray(y0)
        col, t_prep = once(lambda: asdex.jacobian_coloring(fj, x))
        PREP.append(("asdex: jacobian_coloring (detection + colouring), once", t_prep))
        COLOURS[row_blocked] = (COLOURS[row_blocked][:2] + (f"{col.num_colors} ({col.mode})",)
                                + COLOURS[row_blocked][3:])
        cs.append(Contender("asdex (jax.jit)", lambda: (lambda Jx: lambda: jax.block_until_ready(
            Jx(x)))(jax.jit(asdex.jacobian_from_coloring(fj, col)))))
    res = run(f"2-D Brusselator Jacobian N = {N} (n = {n})", lambda: f(y0), cs,
              check_against(J))
    res["colours"] = sj.n_colours
    RESULTS.append(res)
    ROWS.append((f"2-D Brusselator N = {N} ({sj.n_colours} colours, {sj.mode})", res, 12.0))


def workload_colours(N=32):
    for nine, asdex_said, d2_said in ((False, 5, 9), (True, 11, 15)):
        f = lambda x, nine=nine: energy(x, np, N, nine)   # noqa: E731
        x0 = np.linspace(-1, 1, N * N)
        H = hessian_sparsity(f)(x0)
        star, d2 = star_colouring(H), column_colouring(H)
        theirs = "—"
        if asdex is not None:
            fj = lambda x, nine=nine: energy(x, jnp, N, nine)   # noqa: E731
            theirs = str(asdex.hessian_coloring(fj, jnp.asarray(x0)).num_colors)
        COLOURS.append((f"{'9' if nine else '5'}-point energy Hessian, N = {N}: star / "
                        f"distance-2", f"{n_col(star)} / {n_col(d2)}", theirs,
                        f"asdex {asdex_said}, distance-2 {d2_said} (issue)"))


def workload_bdf(N=200):
    x = np.linspace(0, 1, N + 2)[1:-1]
    y0 = np.stack([1 + np.sin(2 * np.pi * x), np.full(N, 3.0)], axis=1).reshape(-1)
    fun = brusselator_1d
    jac = ivp_jacobian(fun)
    jac(0.0, y0)
    P = jac.sparsity
    opts = dict(method="BDF", rtol=1e-6, atol=1e-8)
    setups = [("sparse AD Jacobian (ivp_jacobian)", dict(jac=jac)),
              ("jac_sparsity + finite differences", dict(jac_sparsity=P)),
              ("dense AD Jacobian (ivp_jacobian(sparse=False))",
               dict(jac=ivp_jacobian(fun, sparse=False)))]
    rounds = max(1, min(CFG.repeats, 5))
    ref = None
    for label, kw in setups:
        times, sol = [], None
        for _ in range(rounds):
            t0 = time.perf_counter()
            sol = solve_ivp(fun, (0.0, 10.0), y0, **opts, **kw)
            times.append(time.perf_counter() - t0)
        agree = "—"
        if ref is None:
            ref = sol.y[:, -1]
        else:
            agree = f"{np.abs(sol.y[:, -1] - ref).max():.1e}"
        BDF.append((label, statistics.median(times), sol.njev, sol.nfev, sol.nlu, agree,
                    sol.success))
    # One Jacobian: ours vs SciPy's finite differences with the same pattern (num_jac).
    from scipy.integrate._ivp.common import num_jac
    from scipy.optimize._numdiff import group_columns
    groups = group_columns(sps.csc_matrix(P))
    f0 = fun(0.0, y0)

    def fvec(t, Y):
        return np.stack([fun(t, Y[:, i]) for i in range(Y.shape[1])], axis=1)
    cs = [Contender("ours ivp_jacobian (sparse AD)", lambda: (lambda: jac(0.0, y0))),
          Contender(f"SciPy num_jac, {groups.max() + 1} groups",
                    lambda: (lambda: num_jac(fvec, 0.0, y0, f0, 1e-8, None,
                                             (sps.csc_matrix(P), groups))[0]))]
    res = run(f"one Brusselator-{N} Jacobian (n = {2 * N})", lambda: fun(0.0, y0), cs,
              check_against(jac(0.0, y0)))
    res["colours"] = jac.n_colours
    RESULTS.append(res)
    ROWS.append((f"Brusselator-{N} Jacobian ({jac.n_colours} colours)", res, None))


# =====================================================================================
# Report
# =====================================================================================
def _fig(c):
    if c.error:
        return f"error: {c.error}"
    return f"{c.median_ratio():.2f}× ({fmt_time(c.median_time())})" if c.ratios else "—"


def main():
    t_start = time.perf_counter()
    machine = harness.announce(CFG, PINNED_CPU)
    load_start = harness.loadavg()
    for name, w in (("bratu", workload_bratu), ("hessian", workload_hessian),
                    ("brusselator", workload_brusselator), ("colours", workload_colours),
                    ("bdf", workload_bdf)):
        if CFG.wants(name):
            try:
                w()
            except Exception as exc:  # noqa: BLE001
                PROBLEMS.append((name, "workload", short_exc(exc), "", None))
                print(f"   {name}: ERROR {short_exc(exc)}")
    elapsed = time.perf_counter() - t_start
    note("Ours replays the compressed sweep as ad.jit recordings (past ad.jit's tier the "
         "fused backend: elementwise chains as one Numba loop; on the Brusselator the whole "
         "sweep over all 10 colours is one loop that reads the seeds' folded constants as "
         "int8, or as a multiple of another constant, and writes the stacked tangents "
         "straight into their concatenation), gathers the stored values (a compiled loop "
         "over int32 indices once hot, else np.take) and assembles the scipy.sparse result "
         "without SciPy's per-call index checks (fresh index arrays each call); asdex runs "
         "compiled under jax.jit. On the Brusselator the sweep's loop (about 0.7x f: its "
         "rows read and written through 1-d views, so it vectorises) and the gather (about "
         "0.9x f, bound by memory traffic: the 2.6 MB of compressed directions read, the "
         "1.5 MB of values written) take most of the time; the index arrays' copies and "
         "the wrapper the rest.")
    vers = harness.versions([("scipy", __import__("scipy").__version__)], ad.__version__,
                            ["autodiff"], "autodiff/", (("jax", jax), ("asdex", asdex)))
    md = harness.header_md("Sparse benchmark results", f"{elapsed:.0f} s", machine, PINNED_CPU,
                           f"OMP/MKL/OPENBLAS_NUM_THREADS=1, XLA_FLAGS=`{harness.XLA_ONE_THREAD}`",
                           vers)
    md.append(f"- **Method:** {CFG.repeats} interleaved rounds (each times the NumPy function, "
              f"then every contender); timings ≥ {CFG.min_time * 1e3:.0f} ms; figure = median "
              f"of (derivative time / NumPy f time) in the same round. First calls "
              f"(detection, colouring, jit compilation) are not timed there; they are listed "
              f"separately. Every result is checked against a reference.")
    md.append(f"- **Load average** (1 min) at start / end: {load_start} / {harness.loadavg()}.")
    md += ["", "## Derivatives (ratio to the NumPy function; lower is better)", "",
           "| workload | target | ours sparse | ours dense | asdex | first call (ours sparse) |",
           "|---|---|---|---|---|---|"]
    verdicts = []
    for label, res, target in ROWS:
        cs = res["contenders"]
        ours = cs[0]
        dense_c = next((c for c in cs if "dense" in c.label or "num_jac" in c.label), None)
        peer = next((c for c in cs if c.label.startswith("asdex")), None)
        tgt = f"≤ {target:g}×" if target else "—"
        md.append(f"| {label} | {tgt} | {_fig(ours)} | {_fig(dense_c) if dense_c else '—'} | "
                  f"{_fig(peer) if peer else '—'} | {fmt_time(ours.setup_time)} |")
        if target and ours.ratios:
            met = "met" if ours.median_ratio() <= target else "NOT met"
            verdicts.append((label, f"{ours.median_ratio():.2f}×", f"≤ {target:g}×", met))
    md += ["", "In the Brusselator-200 row the second column is SciPy's finite differences "
           "(`num_jac` with `group_columns` of the same pattern), as BDF computes them.", ""]
    if COLOURS:
        md += ["## Colour counts", "", "| pattern | ours | asdex (same run) | issue's figures |",
               "|---|---|---|---|"]
        md += [f"| {a} | {b} | {c or '—'} | {d} |" for a, b, c, d in COLOURS]
        md.append("")
    if PREP:
        md += ["## Preparation (one call each)", "", "| step | time |", "|---|---|"]
        md += [f"| {a} | {fmt_time(t)} |" for a, t in PREP]
        md.append("")
    if BDF:
        md += ["## Brusselator-200 BDF solve (`solve_ivp`, t in [0, 10], rtol 1e-6, atol 1e-8)",
               "", "| Jacobian | wall time (median) | njev | nfev | nlu | max diff to first | "
               "success |", "|---|---|---|---|---|---|---|"]
        md += [f"| {a} | {fmt_time(t)} | {j} | {f} | {lu} | {d} | {ok} |"
               for a, t, j, f, lu, d, ok in BDF]
        md.append("")
    md.extend(harness.notes_md())
    md.extend(harness.problems_md())
    harness.finish(md, verdicts, elapsed, ARGS)


if __name__ == "__main__":
    main()
