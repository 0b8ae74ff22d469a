"""autodiff.ase.Calculator beside ASE's analytic LennardJones and JAX jit: LJ argon forces and
stress, 108 and 500 atoms, every pair (minimum image) and with a Verlet neighbour list.

Each timing is one full calculation: energy, forces and stress (ASE's ``calculate`` called
directly, so ASE's result cache is bypassed; both neighbour lists are kept between calls, as
in an MD run). Ratios are time / ASE's LennardJones time in the same round. JAX differentiates
the same energy (written with ``jax.numpy``) with ``jax.jit(jax.value_and_grad)`` in positions
and strain; its neighbour-list row is given the same pair list as an input.

    python benchmarks/bench_ase.py            # full run
    python benchmarks/bench_ase.py --quick    # under a minute, noisier
"""
import harness  # first: one thread everywhere

ARGS, CFG = harness.parse_args(
    __doc__, "results_ase.md",
    quick="fewer rounds, shorter timings",
    repeats=("rounds per workload", 9, 3), min_time=("shortest timing, s", 0.2, 0.05),
    budget=("seconds one contender may take per workload", 10, 3),
    only="comma-separated workloads: pairs108,nl108,pairs500,nl500")
CFG = harness.Cfg(ARGS, (9, 3), (0.2, 0.05), (10, 3))
PINNED = harness.pin_to_one_core(ARGS.cpu)

import time  # noqa: E402

import numpy as np  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.calculator import all_changes  # noqa: E402
from ase.calculators.lj import LennardJones  # noqa: E402

import autodiff  # noqa: E402
from autodiff.ase import Calculator, NeighborList, all_pairs  # noqa: E402

try:
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
except ImportError:  # pragma: no cover
    jax = None
    harness.note("jax is not installed: its column is empty")

SIGMA, EPS, RC = 3.405, 0.0104, 7.4
E0 = 4 * EPS * ((SIGMA / RC) ** 12 - (SIGMA / RC) ** 6)
PROPS = ["energy", "forces", "stress"]


def lj_pair(r2, xp=np):
    c6 = (SIGMA ** 2 / r2) ** 3
    return xp.where(r2 < RC ** 2, 4 * EPS * (c6 * c6 - c6) - E0, 0.0)


def ours_pairs(positions, cell, numbers):
    i, j, d = all_pairs(positions, cell)
    return np.sum(lj_pair(np.sum(d * d, axis=-1)))


def ours_verlet():
    nl = NeighborList(RC)

    def energy(positions, cell, numbers):
        i, j, D = nl(positions, cell)
        return 0.5 * np.sum(lj_pair(np.sum(D * D, axis=-1)))
    return energy, nl


def jax_pairs(n):
    i, j = np.triu_indices(n, k=1)

    def energy(r, eps, cell):
        deform = jnp.eye(3) + eps
        r, cell = r @ deform.T, cell @ deform.T
        d = r[j] - r[i]
        s = d @ jnp.linalg.inv(cell)
        d = (s - jax.lax.stop_gradient(jnp.round(s))) @ cell
        return jnp.sum(lj_pair(jnp.sum(d * d, axis=-1), jnp))
    return jax.jit(jax.value_and_grad(energy, argnums=(0, 1)))


def jax_list():
    def energy(r, eps, cell, i, j, S):
        deform = jnp.eye(3) + eps
        r, cell = r @ deform.T, cell @ deform.T
        D = r[j] - r[i] + S @ cell
        return 0.5 * jnp.sum(lj_pair(jnp.sum(D * D, axis=-1), jnp))
    return jax.jit(jax.value_and_grad(energy, argnums=(0, 1)))


class Contender:
    def __init__(self, name):
        self.name, self.times, self.ratios, self.error = name, [], [], None
        self.n = self.rounds = 0


def workload(name, n_cells, listed):
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(n_cells)
    atoms.rattle(0.05, seed=1)
    ase_calc = LennardJones(sigma=SIGMA, epsilon=EPS, rc=RC)
    ase_calc.calculate(atoms, PROPS, all_changes)
    ref = dict(ase_calc.results)

    if listed:
        energy, nl = ours_verlet()
    else:
        energy = ours_pairs
    ours = Calculator(energy)
    ours.calculate(atoms, PROPS, all_changes)
    err = max(abs(ours.results["energy"] - ref["energy"]),
              np.abs(ours.results["forces"] - ref["forces"]).max(),
              np.abs(ours.results["stress"] - ref["stress"]).max())

    timed = [(Contender("autodiff"), lambda: ours.calculate(atoms, PROPS, all_changes))]
    # Calculator(jit=True): the sweep recorded once and replayed. A NeighborList's search
    # is one recorded call that every replay runs again (the positions do not change
    # here, but the list's check runs each call as it would in MD).
    energy_jit = ours_verlet()[0] if listed else energy
    ours_jit = Calculator(energy_jit, jit=True)
    ours_jit.calculate(atoms, PROPS, all_changes)
    err = max(err, abs(ours_jit.results["energy"] - ref["energy"]),
              np.abs(ours_jit.results["forces"] - ref["forces"]).max(),
              np.abs(ours_jit.results["stress"] - ref["stress"]).max())
    timed.append((Contender("autodiff jit"),
                  lambda: ours_jit.calculate(atoms, PROPS, all_changes)))
    if jax is not None:
        r, h = jnp.asarray(atoms.positions), jnp.asarray(atoms.cell.array)
        z = jnp.zeros((3, 3))
        if listed:
            i, j, D = nl(atoms.positions, atoms.cell.array)
            # the same pairs as ours (those within the cutoff)
            from ase.neighborlist import neighbor_list
            i, j, S = neighbor_list("ijS", atoms, RC)
            f = jax_list()
            args = (r, z, h, jnp.asarray(i), jnp.asarray(j), jnp.asarray(S, dtype=float))
        else:
            f = jax_pairs(len(atoms))
            args = (r, z, h)
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        first = time.perf_counter() - t0
        harness.note(f"{name}: JAX jit first call (trace + compile) {first:.2f} s")
        timed.append((Contender("jax jit"), lambda: jax.block_until_ready(f(*args))))
    n_f, base, kept = harness.time_interleaved(
        lambda: ase_calc.calculate(atoms, PROPS, all_changes), timed, CFG)
    return len(atoms), err, float(np.median(base)), kept


def main():
    t_start = time.perf_counter()
    rows, verdicts = [], []
    for name, cells, listed in (("pairs108", 3, False), ("nl108", 3, True),
                                ("pairs500", 5, False), ("nl500", 5, True)):
        if not CFG.wants(name):
            continue
        n, err, t_ase, kept = workload(name, cells, listed)
        by = {c.name: c for c in kept}
        jx = by.get("jax jit")
        r_jax = float(np.median(jx.ratios)) if jx else None
        kind = "Verlet list" if listed else "all pairs"
        for label in ("autodiff", "autodiff jit"):
            ours = by.get(label)
            if ours is None:
                continue
            r_ours = float(np.median(ours.ratios))
            vs_jax = r_ours / r_jax if r_jax else None
            what = f"{n} atoms, {kind}" + (", `jit=True`" if label.endswith("jit") else "")
            tag = name + (" jit=True" if label.endswith("jit") else "")
            rows.append(f"| {what} | {harness.fmt_time(t_ase)} | "
                        f"{harness.fmt_time(float(np.median(ours.times)))} ({r_ours:.2f}×) | "
                        + (f"{harness.fmt_time(float(np.median(jx.times)))} ({r_jax:.2f}×) | "
                           f"{vs_jax:.2f}× |" if jx else "— | — |")
                        + f" {err:.1e} |")
            verdicts.append((f"{tag} faster than ASE", f"{r_ours:.2f}×", "< 1×",
                             "PASS" if r_ours < 1 else "MISS"))
            # Compiled against compiled: the JAX target is the jit=True row's (the eager
            # row's ratio is in the table).
            if vs_jax is not None and label.endswith("jit"):
                verdicts.append((f"{tag} within 1.5× of JAX jit", f"{vs_jax:.2f}×", "≤ 1.5×",
                                 "PASS" if vs_jax <= 1.5 else "MISS"))
    took = f"{time.perf_counter() - t_start:.0f} s"
    libs = [("ase", __import__("ase")), ("jax", jax)]
    vers = harness.versions([], autodiff.__version__, ["autodiff"], "autodiff/", libs)
    md = harness.header_md("ASE calculator benchmark", took, harness.machine_info(), PINNED,
                           "OMP/MKL/OPENBLAS_NUM_THREADS=1, XLA one thread", vers)
    md += ["", f"- **Load average** (1 min) at end: {harness.loadavg()}", "",
           "Energy, forces and stress of Lennard-Jones argon (fcc, a = 5.26 Å, rattled "
           "0.05 Å; σ = 3.405 Å, ε = 0.0104 eV, cutoff 7.4 Å shifted as ASE's). Ratios in "
           "brackets are time / ASE's `LennardJones` in the same round (median); "
           "`vs jax` is ours / JAX jit; its target (within 1.5×) is the `jit=True` rows' "
           "(compiled against compiled). `max error` is our largest difference from ASE "
           "over energy, forces and stress (both calculators of the row's workload). "
           "`jit=True` rows: `Calculator(energy, jit=True)`, the sweep recorded by `ad.jit` "
           "once and replayed; with a `NeighborList`, each replay runs the list's check "
           "(has an atom moved by half the skin, has a pair crossed the cutoff) again.", "",
           "| workload | ASE LennardJones | autodiff | JAX jit | vs jax | max error |",
           "|---|---:|---:|---:|---:|---:|"] + rows + [""]
    md += [f"| target | ours | target | met? |", "|---|---:|---:|:---:|"]
    md += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in verdicts] + [""]
    md += harness.notes_md() + harness.include_md("analysis_ase.md")
    harness.finish(md, verdicts, time.perf_counter() - t_start, ARGS)


if __name__ == "__main__":
    main()
