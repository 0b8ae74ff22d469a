"""autodiff.ase.Calculator against ASE's own analytic calculators (LennardJones,
MorsePotential): energy, forces, stress, a BFGS relaxation, an MD run and a cell relaxation
give ASE's numbers and trajectories."""
import numpy as np
import pytest

ase = pytest.importorskip("ase")
from ase import Atoms  # noqa: E402
from ase.build import bulk, molecule  # noqa: E402
from ase.calculators.calculator import PropertyNotImplementedError  # noqa: E402
from ase.calculators.lj import LennardJones  # noqa: E402
from ase.calculators.morse import MorsePotential, fcut  # noqa: E402
from ase.filters import ExpCellFilter, FrechetCellFilter  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402
from ase.optimize import BFGS  # noqa: E402
from ase import units  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.ase import (Calculator, NeighborList, all_pairs, minimum_image,  # noqa: E402
                          neighbor_list)

SIGMA, EPS, RC = 3.405, 0.0104, 7.4          # argon; RC below half the 108-atom cell
E0 = 4 * EPS * ((SIGMA / RC) ** 12 - (SIGMA / RC) ** 6)


def lj_pair(r2):
    """ASE's LennardJones pair energy: shifted to zero at the cutoff, zero beyond."""
    c6 = (SIGMA ** 2 / r2) ** 3
    return np.where(r2 < RC ** 2, 4 * EPS * (c6 * c6 - c6) - E0, 0.0)


def lj_all_pairs(positions, cell, numbers):
    i, j, d = all_pairs(positions, cell)
    return np.sum(lj_pair(np.sum(d * d, axis=-1)))


def lj_neighbors(positions, cell, numbers):
    i, j, D = neighbor_list(positions, cell, RC)
    return 0.5 * np.sum(lj_pair(np.sum(D * D, axis=-1)))


def argon(n=3, rattle=0.1, seed=1):
    atoms = bulk("Ar", "fcc", a=5.26, cubic=True).repeat(n)
    atoms.rattle(rattle, seed=seed)
    return atoms


def ase_lj():
    return LennardJones(sigma=SIGMA, epsilon=EPS, rc=RC)


def compare(atoms, ours, theirs, tol=1e-10):
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = ours, theirs
    assert abs(a.get_potential_energy() - b.get_potential_energy()) < tol
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=0, atol=tol)
    if atoms.cell.rank == 3:
        np.testing.assert_allclose(a.get_stress(), b.get_stress(), rtol=0, atol=tol)
    return a, b


@pytest.mark.parametrize("energy", [lj_all_pairs, lj_neighbors], ids=["all-pairs", "nlist"])
def test_lennard_jones_equals_ase(energy):
    atoms = argon()
    a, _ = compare(atoms, Calculator(energy), ase_lj())
    assert np.abs(a.get_forces()).max() > 1e-3          # the rattle makes forces nonzero
    assert np.abs(a.get_stress()).max() > 1e-5


def test_lennard_jones_strained_triclinic_cell_with_neighbor_list():
    atoms = argon(n=2, rattle=0.05)
    cell = atoms.cell.array.copy()
    cell[0, 1] += 0.7
    cell[2, 0] -= 0.4
    atoms.set_cell(cell, scale_atoms=True)
    a, _ = compare(atoms, Calculator(lj_neighbors), ase_lj())
    s = a.get_stress()
    assert np.abs(s[3:]).max() > 1e-6                   # shear components are present


def test_verlet_list_is_reused_and_exact():
    nl = NeighborList(RC, skin=0.5)

    def energy(positions, cell, numbers):
        i, j, D = nl(positions, cell)
        return 0.5 * np.sum(lj_pair(np.sum(D * D, axis=-1)))

    atoms = argon()
    ours = Calculator(energy)
    for step in range(4):
        atoms.positions[3, 0] += 0.05                     # small moves: no rebuild
        compare(atoms, ours, ase_lj())
    assert nl.rebuilds == 1
    atoms.positions[3, 0] += 0.5                          # beyond skin/2: rebuilt
    compare(atoms, ours, ase_lj())
    assert nl.rebuilds == 2
    with pytest.raises(ValueError):
        NeighborList(-1.0)


def morse_energy(epsilon=1.0, rho0=6.0, r0=1.0, rcut1=1.9, rcut2=2.7):
    rc1, rc2 = rcut1 * r0, rcut2 * r0

    def energy(positions, cell, numbers):
        i, j, D = neighbor_list(positions, cell, rc2)
        d = np.sqrt(np.sum(D * D, axis=-1))
        expf = np.exp(rho0 * (1.0 - d / r0))
        return 0.5 * np.sum(epsilon * expf * (expf - 2.0) * fcut(d, rc1, rc2))
    return energy


def test_morse_equals_ase():
    atoms = bulk("Cu", "fcc", a=1.5, cubic=True).repeat(2)   # lengths in units of r0 = 1
    atoms.rattle(0.03, seed=4)
    compare(atoms, Calculator(morse_energy()), MorsePotential())


def test_forces_and_stress_are_derivatives_of_the_energy():
    atoms = argon(n=2, rattle=0.2, seed=7)
    atoms.calc = Calculator(lj_neighbors)
    F, S = atoms.get_forces(), atoms.get_stress(voigt=False)
    h = 1e-5
    for (a, k) in [(0, 0), (3, 2), (5, 1)]:
        p = atoms.copy()
        p.calc = Calculator(lj_neighbors)
        p.positions[a, k] += h
        ep = p.get_potential_energy()
        p.positions[a, k] -= 2 * h
        em = p.get_potential_energy()
        assert abs(-(ep - em) / (2 * h) - F[a, k]) < 1e-7
    V = atoms.get_volume()
    for (a, b) in [(0, 0), (1, 2), (0, 1)]:
        es = []
        for sgn in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = sgn * h / 2 if a != b else sgn * h
            p = atoms.copy()
            p.set_cell(atoms.cell.array @ (np.eye(3) + eps).T, scale_atoms=True)
            p.calc = Calculator(lj_neighbors)
            es.append(p.get_potential_energy())
        # ε_ab = ε_ba = h/2 off the diagonal: dE = (G_ab + G_ba) h/2 = G_ab h, σ = G/V.
        assert abs(S[a, b] - (es[0] - es[1]) / (2 * h) / V) < 1e-8


def test_bfgs_relaxation_follows_ase_trajectory():
    atoms = argon(n=1, rattle=0.3, seed=3)
    runs = []
    for calc in (Calculator(lj_neighbors), ase_lj()):
        a = atoms.copy()
        a.calc = calc
        opt = BFGS(a, logfile=None)
        path = []
        opt.attach(lambda: path.append(a.positions.copy()))
        opt.run(fmax=1e-4, steps=25)
        runs.append((np.array(path), a.get_potential_energy()))
    (pa, ea), (pb, eb) = runs
    assert pa.shape == pb.shape and len(pa) > 3
    np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-8)
    assert abs(ea - eb) < 1e-10


def test_md_run_follows_ase_trajectory():
    atoms = argon(n=2, rattle=0.1, seed=5)
    rng = np.random.default_rng(0)
    atoms.set_momenta(rng.normal(0, 0.05, (len(atoms), 3)))
    nl = NeighborList(RC)            # a Verlet list, as an MD code would keep

    def energy(positions, cell, numbers):
        i, j, D = nl(positions, cell)
        return 0.5 * np.sum(lj_pair(np.sum(D * D, axis=-1)))

    ends = []
    for calc in (Calculator(energy), ase_lj()):
        a = atoms.copy()
        a.calc = calc
        VelocityVerlet(a, timestep=5 * units.fs).run(30)
        ends.append((a.positions.copy(), a.get_total_energy()))
    np.testing.assert_allclose(ends[0][0], ends[1][0], rtol=0, atol=1e-9)
    assert abs(ends[0][1] - ends[1][1]) < 1e-9


@pytest.mark.parametrize("Filter", [ExpCellFilter, FrechetCellFilter])
def test_cell_relaxation_uses_the_stress(Filter):
    atoms = argon(n=1, rattle=0.02, seed=2)       # 4 atoms; the list spans many images
    atoms.set_cell(atoms.cell.array * 1.03, scale_atoms=True)
    finals = []
    for calc in (Calculator(lj_neighbors), ase_lj()):
        a = atoms.copy()
        a.calc = calc
        BFGS(Filter(a), logfile=None).run(fmax=1e-4, steps=30)
        finals.append((a.cell.array.copy(), a.get_stress()))
    np.testing.assert_allclose(finals[0][0], finals[1][0], rtol=0, atol=1e-7)
    assert np.abs(finals[0][1]).max() < 1e-4         # relaxed: stress gone
    assert not np.allclose(finals[0][0], atoms.cell.array)


def test_molecule_without_cell_has_forces_but_no_stress():
    m = molecule("CH4")

    def harmonic(positions, cell, numbers):
        i, j, d = all_pairs(positions)                    # no cell: plain differences
        r = np.sqrt(np.sum(d * d, axis=-1))
        return np.sum((r - 1.2) ** 2 * numbers[i] * numbers[j] / 36.0)

    m.calc = Calculator(harmonic)
    F = m.get_forces()
    g = ad.grad(lambda r: harmonic(r, None, m.numbers))(m.positions)
    np.testing.assert_allclose(F, -g, rtol=0, atol=1e-14)
    with pytest.raises(PropertyNotImplementedError):
        m.get_stress()


def test_helpers_take_the_atoms_pbc():
    # A dimer near opposite faces of a box: periodic, the atoms are 1 Å apart; not
    # periodic, 9 Å. Inside the calculator the helpers use atoms.pbc.
    def energy(positions, cell, numbers):
        i, j, d = all_pairs(positions, cell)
        r = np.sqrt(np.sum(d * d, axis=-1))
        return np.sum((r - 2.0) ** 2)

    for pbc, r in ((True, 1.0), (False, 9.0)):
        a = Atoms("Ar2", positions=[[0.5, 5, 5], [9.5, 5, 5]], cell=[10, 10, 10], pbc=pbc)
        a.calc = Calculator(energy)
        assert abs(a.get_potential_energy() - (r - 2.0) ** 2) < 1e-12
    d = minimum_image(np.array([[9.0, 0, 0]]), 10 * np.eye(3), pbc=[False, True, True])
    np.testing.assert_allclose(d, [[9.0, 0, 0]])
    d = minimum_image(np.array([[9.0, 0, 0]]), 10 * np.eye(3), pbc=True)
    np.testing.assert_allclose(d, [[-1.0, 0, 0]])


def test_energy_may_take_pbc_and_a_nonfinite_energy_raises():
    got = {}

    def energy(positions, cell, numbers, pbc):
        got["pbc"] = tuple(pbc)
        return np.sum(positions ** 2)

    a = Atoms("Ar2", positions=[[0, 0, 0], [1, 0, 0]], cell=[5, 5, 5], pbc=[True, False, True])
    a.calc = Calculator(energy)
    a.get_forces()
    assert got["pbc"] == (True, False, True)

    a.calc = Calculator(lambda r, c, z: np.sum(np.log(r[:, 1])))      # log(0)
    with pytest.raises(FloatingPointError):
        with np.errstate(divide="ignore", invalid="ignore"):
            a.get_potential_energy()


def test_pair_helpers_match_explicit_gathers_in_both_modes():
    # all_pairs / neighbor_list build displacements with a sparse difference matrix:
    # the same numbers as r[j] - r[i] (+ S h), and the same derivatives (both modes,
    # second order, float32 kept), with partial periodicity too.
    atoms = argon(n=1, rattle=0.2, seed=11)
    r, h = atoms.positions.copy(), atoms.cell.array.copy()
    for pbc in (True, False, (True, False, True)):
        i, j, d = all_pairs(r, h, pbc)
        assert not i.flags.writeable and not j.flags.writeable
        # (fractional coordinates per atom, then differences: equal to round-off)
        np.testing.assert_allclose(d, minimum_image(r[j] - r[i], h, pbc), rtol=0,
                                   atol=1e-13)

        def ours(r, h):
            return np.sum(np.exp(-0.1 * np.sum(all_pairs(r, h, pbc)[2] ** 2, axis=-1)))

        def theirs(r, h):
            i, j = np.triu_indices(len(r), k=1)
            d = minimum_image(r[j] - r[i], h, pbc)
            return np.sum(np.exp(-0.1 * np.sum(d ** 2, axis=-1)))
        for tr in (ad.grad, ad.jacfwd, ad.hessian):
            got = ad.tree.flatten(tr(ours, argnums=(0, 1))(r, h))[0]
            want = ad.tree.flatten(tr(theirs, argnums=(0, 1))(r, h))[0]
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
        ad.check_grads(ours, (r, h), order=1, modes=("fwd", "rev"))
    for m in (0, 1):                                # no pairs: empty, in both sweeps
        assert all_pairs(r[:m], h)[2].shape == (0, 3)
        np.testing.assert_array_equal(
            ad.grad(lambda r: np.sum(all_pairs(r, h)[2] ** 2) + np.sum(r))(r[:m]),
            np.ones((m, 3)))
    i, j, d = all_pairs(r)                          # no cell: plain differences
    np.testing.assert_array_equal(d, r[j] - r[i])
    r32, h32 = r.astype(np.float32), h.astype(np.float32)
    assert all_pairs(r32, h32)[2].dtype == np.float32
    assert all_pairs(r32)[2].dtype == np.float32
    assert ad.grad(lambda r: np.sum(all_pairs(r, h32)[2] ** 2))(r32).dtype == np.float32
    i, j, D = neighbor_list(r, h, 4.0)
    S = ase.neighborlist.neighbor_list("S", atoms, 4.0)
    np.testing.assert_allclose(D, r[j] - r[i] + S @ h, rtol=0, atol=1e-14)
    g = ad.grad(lambda r: np.sum(neighbor_list(r, h, 4.0)[2] ** 3))(r)
    want = ad.grad(lambda r: np.sum((r[j] - r[i] + S @ h) ** 3))(r)
    np.testing.assert_allclose(g, want, rtol=1e-12, atol=1e-12)


def test_verlet_list_follows_pairs_crossing_the_cutoff_between_rebuilds():
    # a dimer in a large box, moved across the cutoff in steps below skin/2: no rebuild,
    # but the returned pairs follow (the kept pairs are reused only while the mask holds)
    nl = NeighborList(3.0, skin=1.0)
    h = np.eye(3) * 20.0
    seen = []
    for x in (2.8, 2.9, 3.1, 3.2, 2.95):
        r = np.array([[5.0, 5.0, 5.0], [5.0 + x, 5.0, 5.0]])
        i, j, D = nl(r, h)
        want = neighbor_list(r, h, 3.0)
        assert sorted(zip(i, j)) == sorted(zip(*want[:2]))
        np.testing.assert_allclose(np.abs(D[:, 0]), x if len(i) else [], rtol=1e-14)
        g = ad.grad(lambda r: np.sum(nl(r, h)[2] ** 2))(r)
        np.testing.assert_allclose(g, np.array([[-4 * x, 0, 0], [4 * x, 0, 0]])
                                   if x < 3.0 else np.zeros((2, 3)), rtol=1e-14)
        seen.append(len(i))
    assert seen == [2, 2, 0, 0, 2] and nl.rebuilds == 1
    assert not i.flags.writeable


def test_jit_calculator_replays_and_records_again_when_it_must():
    atoms = argon(n=3, rattle=0.1, seed=9)
    eager, jitted = Calculator(lj_all_pairs), Calculator(lj_all_pairs, jit=True)
    for step in range(3):
        atoms.positions[step, 1] += 0.07          # moved atoms: replayed, ASE's numbers
        a, _ = compare(atoms, jitted, ase_lj())
        b, _ = compare(atoms, eager, ase_lj())
        np.testing.assert_array_equal(a.get_forces(), b.get_forces())
    assert jitted._sweep.recordings == 1
    compare(argon(n=4, rattle=0.1), jitted, ase_lj())            # another atom count
    assert jitted._sweep.recordings == 2
    m = atoms.copy()
    m.pbc = (True, True, False)                                  # another pbc: recorded
    compare(m, jitted, Calculator(lj_all_pairs))
    assert jitted._sweep.recordings == 3
    # a NeighborList's search is one recorded call that every replay runs again: moved
    # atoms replay with the current pairs; another count within the cutoff records again
    nl = NeighborList(RC)
    calc = Calculator(lambda r, h, z: 0.5 * np.sum(lj_pair(np.sum(nl(r, h)[2] ** 2, -1))),
                      jit=True)
    counts = []
    for step in range(3):
        atoms.positions[0, 0] += 0.02
        compare(atoms, calc, ase_lj())
        counts.append(len(nl._kept[1]))
    assert calc._sweep.recordings == len(set(counts)) == 1
    atoms.positions[0, 0] += 0.6    # pairs cross the cutoff (and past skin/2: rebuilt)
    compare(atoms, calc, ase_lj())
    assert len(nl._kept[1]) != counts[0] and nl.rebuilds == 2
    assert calc._sweep.recordings == 2
    mol = molecule("CH4")                                        # no cell: forces only
    mol.calc = Calculator(lambda r, h, z: np.sum(all_pairs(r)[2] ** 2), jit=True)
    i, j = np.triu_indices(5, k=1)
    np.testing.assert_allclose(mol.get_forces(), -ad.grad(
        lambda r: np.sum((r[j] - r[i]) ** 2))(mol.positions), rtol=1e-13, atol=1e-13)


def _verlet_energy(nl):
    def energy(positions, cell, numbers):
        i, j, D = nl(positions, cell)
        return 0.5 * np.sum(lj_pair(np.sum(D * D, axis=-1)))
    return energy


def test_jit_verlet_list_replays_the_current_pairs_in_both_modes():
    # the pairs (i, j) reach the energy as values of the program: a species-dependent
    # energy reads numbers[i], numbers[j] at each replay; the strain derivative (stress)
    # flows through D = B r + S h in the program as in the eager sweep
    def energy_of(nl):
        def energy(positions, cell, numbers):
            i, j, D = nl(positions, cell)
            w = np.where(numbers[i] == numbers[j], 1.0, 0.5)
            return 0.5 * np.sum(w * lj_pair(np.sum(D * D, axis=-1)))
        return energy
    atoms = argon(n=3, rattle=0.05, seed=4)
    atoms.numbers[::3] = 36
    eager = Calculator(energy_of(NeighborList(RC)))
    jitted = Calculator(energy_of(NeighborList(RC)), jit=True)
    rng = np.random.default_rng(3)
    for step in range(6):
        a, b = compare(atoms, jitted, eager, tol=1e-12)
        assert np.abs(a.get_stress()).max() > 1e-5
        atoms.positions += rng.normal(0, 0.004, atoms.positions.shape)
    assert jitted._sweep.recordings < 6          # replayed where the count held


def test_jit_md_run_with_verlet_list_follows_eager_and_backs_off():
    # MD: a pair crosses the cutoff every few steps, so a jitted sweep keeps recording;
    # the calculator then runs eagerly for a while (no warning, eager's numbers)
    import warnings
    atoms = argon(n=3, rattle=0.1, seed=5)
    atoms.set_momenta(np.random.default_rng(0).normal(0, 0.4, (len(atoms), 3)))
    ends = []
    for jit in (False, True):
        a = atoms.copy()
        a.calc = calc = Calculator(_verlet_energy(NeighborList(RC)), jit=jit)
        calc.JIT_WINDOW, calc.JIT_BACKOFF = 4, 6
        calc._recorded = type(calc._recorded)(maxlen=4)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            VelocityVerlet(a, timestep=5 * units.fs).run(40)
        ends.append((a.positions.copy(), a.get_total_energy()))
        if jit:
            assert 0 < calc._sweep.recordings < 40
            assert calc.JIT_BACKOFF >= calc._eager_left
    np.testing.assert_allclose(ends[1][0], ends[0][0], rtol=0, atol=1e-10)
    assert abs(ends[1][1] - ends[0][1]) < 1e-10


def test_jit_backoff_runs_eagerly_then_tries_the_recordings_again():
    nl = NeighborList(3.0, skin=1.0)
    calc = Calculator(lambda r, h, z: 0.5 * np.sum(np.exp(-np.sum(nl(r, h)[2] ** 2, -1))),
                      jit=True)
    calc.JIT_WINDOW, calc.JIT_BACKOFF = 2, 3
    calc._recorded = type(calc._recorded)(maxlen=2)
    h = np.eye(3) * 20.0
    recorded = []
    # a trimer whose third atom moves in and out of range: the count changes each call
    for x in (2.5, 3.5, 2.6, 3.6, 2.7, 2.8, 2.8, 2.8, 2.8):
        atoms = Atoms("Ar3", positions=[[5, 5, 5], [7, 5, 5], [7 + x, 5, 5]], cell=h,
                      pbc=True)
        ref = Calculator(lambda r, h, z: 0.5 * np.sum(np.exp(-np.sum(
            neighbor_list(r, h, 3.0)[2] ** 2, -1))))
        compare(atoms, calc, ref, tol=1e-13)
        recorded.append(calc._sweep.recordings)
    # two calls recorded (the window), so three run eagerly (no recording); then the
    # jitted sweep records once more and replays while the count holds
    assert recorded == [1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert calc._eager_left == 0


def test_cutoff_pass_loops_equal_numpy():
    # the Verlet list's per-call check: Numba's loops and the NumPy fallback agree
    from autodiff.ase import _cutoff_pass, _cutoff_pass_loops, _cutoff_pass_numpy
    rng = np.random.default_rng(0)
    r0 = rng.uniform(0, 10, (30, 3))
    h = np.diag([10.0, 11.0, 12.0]) + 0.3 * np.triu(rng.standard_normal((3, 3)), 1)
    i, j = (a.astype(np.intp) for a in np.triu_indices(30, 1))
    S = rng.integers(-1, 2, (len(i), 3)).astype(float)
    prev = rng.random(len(i)) < 0.5
    for move, fn in [(m, f) for m in (0.01, 0.2, 2.0)
                     for f in (_cutoff_pass(), _cutoff_pass_loops, _cutoff_pass_numpy)]:
        r = r0 + move          # every atom moved by move·√3: past skin/2 for the last
        keep = np.zeros(len(i), bool)
        got = fn(r, r0, h, i, j, S, 36.0, 0.25, keep, prev)
        want_keep = np.zeros(len(i), bool)
        want = _cutoff_pass_numpy(r, r0, h, i, j, S, 36.0, 0.25, want_keep, prev)
        assert got == want
        if want >= 0:
            np.testing.assert_array_equal(keep, want_keep)
            assert want == int(not np.array_equal(want_keep, prev))
