"""autodiff.ase as an ASE user meets it: the calculator protocol (properties, caching,
invalidation, refusals), boundary conditions (mixed, none, skewed and small cells), two
species (ASE's EMT), constraints, cell filters and MD against ASE's own calculators, the
stress's sign and Voigt order against finite differences, odd energies, and threads; each
with ``jit=False`` and ``jit=True``."""
import threading
import warnings

import numpy as np
import pytest

ase = pytest.importorskip("ase")
from ase import Atoms, units  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.calculator import PropertyNotImplementedError  # noqa: E402
from ase.calculators.emt import EMT, beta as EMT_BETA  # noqa: E402
from ase.calculators.lj import LennardJones  # noqa: E402
from ase.calculators.morse import MorsePotential, fcut  # noqa: E402
from ase.constraints import FixAtoms  # noqa: E402
from ase.filters import ExpCellFilter, FrechetCellFilter, UnitCellFilter  # noqa: E402
from ase.geometry import find_mic  # noqa: E402
from ase.md.langevin import Langevin  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402
from ase.optimize import BFGS  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.ase import (Calculator, NeighborList, all_pairs, minimum_image,  # noqa: E402
                          neighbor_list)

SIGMA, EPS, RC = 3.405, 0.0104, 7.4
E0 = 4 * EPS * ((SIGMA / RC) ** 12 - (SIGMA / RC) ** 6)
JIT = pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])


def lj_pair(r2, rc=RC):
    """ASE's LennardJones pair energy (shifted to zero at rc, zero beyond)."""
    e0 = 4 * EPS * ((SIGMA / rc) ** 12 - (SIGMA / rc) ** 6)
    c6 = (SIGMA ** 2 / r2) ** 3
    return np.where(r2 < rc ** 2, 4 * EPS * (c6 * c6 - c6) - e0, 0.0)


def lj_nl(rc=RC):
    def energy(positions, cell, numbers):
        i, j, D = neighbor_list(positions, cell, rc)
        return 0.5 * np.sum(lj_pair(np.sum(D * D, axis=-1), rc))
    return energy


def lj_verlet(rc=RC, skin=0.3):
    nl = NeighborList(rc, skin=skin)

    def energy(positions, cell, numbers):
        i, j, D = nl(positions, cell)
        return 0.5 * np.sum(lj_pair(np.sum(D * D, axis=-1), rc))
    energy.nl = nl
    return energy


def lj_all_pairs(rc=RC, check=False):
    def energy(positions, cell, numbers):
        i, j, d = all_pairs(positions, cell, cutoff=rc if check else None)
        return np.sum(lj_pair(np.sum(d * d, axis=-1), rc))
    return energy


def ase_lj(rc=RC):
    return LennardJones(sigma=SIGMA, epsilon=EPS, rc=rc)


def argon(n=2, rattle=0.05, seed=1, a=5.26):
    atoms = bulk("Ar", "fcc", a=a, cubic=True).repeat(n)
    atoms.rattle(rattle, seed=seed)
    return atoms


def same(atoms, ours, theirs, tol=1e-10, stress=None):
    """Energy, free energy, forces and (for a 3-D cell) stress of two calculators."""
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = ours, theirs
    assert abs(a.get_potential_energy() - b.get_potential_energy()) < tol
    assert a.get_potential_energy(force_consistent=True) == a.get_potential_energy()
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), rtol=0, atol=tol)
    if stress is None:
        stress = atoms.cell.rank == 3
    if stress:
        np.testing.assert_allclose(a.get_stress(), b.get_stress(), rtol=0, atol=tol)
    else:
        with pytest.raises(PropertyNotImplementedError):
            a.get_stress()
    return a, b


# ----- the calculator protocol -----

@JIT
def test_properties_caching_and_refusals(jit):
    calls = []

    def energy(positions, cell, numbers):
        calls.append(1)
        return lj_nl()(positions, cell, numbers)

    atoms = argon()
    atoms.calc = calc = Calculator(energy, jit=jit)
    assert calc.calculation_required(atoms, ["energy"])
    e = atoms.get_potential_energy()
    assert not calc.calculation_required(atoms, ["energy", "forces", "stress",
                                                 "free_energy"])
    F, S = atoms.get_forces(), atoms.get_stress()      # from the same sweep: cached
    assert len(calls) == 1
    assert calc.get_property("free_energy", atoms) == e == calc.results["energy"]
    np.testing.assert_array_equal(calc.get_property("forces", atoms), F)
    assert atoms.get_stress(voigt=False).shape == (3, 3)
    np.testing.assert_allclose(atoms.get_stress(voigt=False)[[0, 1, 2, 1, 0, 0],
                                                             [0, 1, 2, 2, 2, 1]], S)
    F[0, 0] += 1.0                           # a copy: the cache is not written through
    assert atoms.get_forces()[0, 0] != F[0, 0]
    # what this calculator does not compute is ASE's PropertyNotImplementedError
    for name in ("stresses", "energies", "magmom", "dipole", "charges"):
        with pytest.raises(PropertyNotImplementedError):
            calc.get_property(name, atoms)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stresses()
    assert calc.get_property("energy", atoms, allow_calculation=False) == e


@JIT
def test_results_are_invalidated_by_every_change(jit):
    # ASE's check_state: a change of positions, cell, numbers or pbc recomputes, and the
    # new numbers are those of a fresh calculator (species-dependent energy: numbers)
    def energy(positions, cell, numbers):
        i, j, D = neighbor_list(positions, cell, 6.0)
        w = (numbers[i] + numbers[j]) / 36.0
        return 0.5 * np.sum(w * np.exp(-0.3 * np.sum(D * D, axis=-1)))

    atoms = argon(rattle=0.1)
    atoms.calc = calc = Calculator(energy, jit=jit)
    seen = [atoms.get_potential_energy()]
    changes = [
        ("positions", lambda a: a.positions.__setitem__((3, 1), a.positions[3, 1] + 0.1)),
        ("cell", lambda a: a.set_cell(a.cell.array * 1.01, scale_atoms=False)),
        ("numbers", lambda a: a.numbers.__setitem__(2, 36)),
        ("pbc", lambda a: setattr(a, "pbc", (True, False, True))),
        ("numbers", lambda a: a.numbers.__setitem__(2, 18)),
        ("pbc", lambda a: setattr(a, "pbc", True)),
    ]
    for name, change in changes:
        change(atoms)
        assert name in calc.check_state(atoms)
        assert calc.calculation_required(atoms, ["energy"])
        fresh = atoms.copy()
        fresh.calc = Calculator(energy)
        e = atoms.get_potential_energy()
        assert abs(e - fresh.get_potential_energy()) < 1e-12
        np.testing.assert_allclose(atoms.get_forces(), fresh.get_forces(), atol=1e-12)
        np.testing.assert_allclose(atoms.get_stress(), fresh.get_stress(), atol=1e-12)
        assert abs(e - seen[-1]) > 1e-9                         # each change is seen
        seen.append(e)
    assert not calc.check_state(atoms)


@pytest.mark.parametrize("ret", ["0-d array", "float", "float64", "float32 0-d", "python",
                                 "int"])
@JIT
def test_energy_may_return_a_float_or_a_0d_array(ret, jit):
    def energy(positions, cell, numbers):
        i, j, D = neighbor_list(positions, cell, 5.0)
        e = 0.5 * np.sum(np.exp(-np.sum(D * D, axis=-1)))
        if ret == "0-d array":
            return e.reshape(())
        if ret == "float":
            return e + 0.0
        if ret == "float64":
            return np.float64(2.5)                 # a constant: zero forces and stress
        if ret == "float32 0-d":
            return np.asarray(2.5, dtype=np.float32)
        if ret == "int":
            return 2                                          # a constant integer energy
        return 2.5
    atoms = argon(n=1, rattle=0.2)
    atoms.calc = Calculator(energy, jit=jit)
    e, F, S = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert isinstance(e, float) and F.dtype == S.dtype == np.float64
    if ret in ("0-d array", "float"):
        ref = atoms.copy()
        ref.calc = Calculator(lambda r, h, z: 0.5 * np.sum(np.exp(-np.sum(
            neighbor_list(r, h, 5.0)[2] ** 2, axis=-1))))
        same(atoms, atoms.calc, ref.calc, tol=1e-13)
        assert np.abs(F).max() > 1e-6
    else:
        assert e == (2.0 if ret == "int" else 2.5)
        np.testing.assert_array_equal(F, np.zeros((4, 3)))
        np.testing.assert_array_equal(S, np.zeros(6))
        assert not np.signbit(F).any()                          # no −0.0


@JIT
def test_a_non_scalar_or_nonfinite_energy_is_refused_by_name(jit):
    atoms = argon(n=1)
    atoms.calc = Calculator(lambda r, h, z: np.sum(r ** 2, axis=0), jit=jit)
    with pytest.raises(TypeError, match="energy must return a scalar.*shape \\(3,\\)"):
        atoms.get_potential_energy()
    atoms.calc = Calculator(lambda r, h, z: np.sum(r ** 2).reshape(1), jit=jit)
    with pytest.raises(TypeError, match="shape \\(1,\\)"):
        atoms.get_forces()
    for energy in (lambda r, h, z: True, lambda r, h, z: 1j * np.sum(r),
                   lambda r, h, z: np.complex128(1.0)):
        atoms.calc = Calculator(energy, jit=jit)
        with pytest.raises(TypeError, match="energy must be real"):
            atoms.get_potential_energy()
    atoms.calc = Calculator(lambda r, h, z: np.sum(np.log(r[:, 0] - r[0, 0])), jit=jit)
    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(FloatingPointError, match="energy is"):
            atoms.get_potential_energy()


@JIT
def test_an_energy_raising_mid_run_leaves_the_calculator_working(jit):
    class Boom(RuntimeError):
        pass
    state = {"raise": False, "calls": 0}
    inner = lj_verlet()

    def energy(positions, cell, numbers):
        state["calls"] += 1
        i, j, D = inner.nl(positions, cell)
        e = 0.5 * np.sum(lj_pair(np.sum(D * D, axis=-1)))
        if state["raise"]:
            raise Boom("mid-sweep")
        return e

    atoms = argon(n=2, rattle=0.1, seed=3)
    atoms.calc = calc = Calculator(energy, jit=jit)
    rng = np.random.default_rng(0)
    for step in range(6):
        atoms.positions += rng.normal(0, 0.01, atoms.positions.shape)
        state["raise"] = step == (0 if jit else 3)       # (jit: during the recording)
        if state["raise"]:
            with pytest.raises(Boom):
                atoms.get_forces()
            state["raise"] = False
        same(atoms, calc, ase_lj())
    # other transforms are unaffected by the aborted sweep
    assert ad.grad(lambda x: np.sum(x ** 3))(np.array(2.0)) == 12.0
    assert ad.jit(lambda x: x * 2.0)(np.array(3.0)) == 6.0


# ----- boundary conditions -----

@pytest.mark.parametrize("energy", ["nl", "verlet", "all_pairs"])
@pytest.mark.parametrize("case", ["slab", "slab-2d-cell", "no-pbc-cell", "no-pbc-no-cell",
                                  "wire"])
@JIT
def test_mixed_and_missing_periodicity_equal_ase(case, energy, jit):
    atoms = argon(n=(3, 3, 2), rattle=0.1, seed=2)
    if case in ("slab", "slab-2d-cell"):
        atoms.pbc = (True, True, False)
    if case == "wire":
        atoms.pbc = (False, False, True)
    if case == "slab-2d-cell":
        c = atoms.cell.array.copy()
        c[2] = 0.0                                       # rank 2: no stress
        atoms.set_cell(c)
    if case.startswith("no-pbc"):
        atoms.pbc = False
    if case == "no-pbc-no-cell":
        atoms.set_cell(np.zeros((3, 3)))
    if energy == "all_pairs":
        e = lj_all_pairs(check=True)
        if case == "wire":          # 10.52 Å along the wire: one image is not enough
            a = atoms.copy()
            a.calc = Calculator(e, jit=jit)
            with pytest.raises(ValueError, match="several images"):
                a.get_potential_energy()
            atoms = atoms.repeat((1, 1, 2))
    else:
        e = {"nl": lj_nl, "verlet": lj_verlet}[energy]()
    same(atoms, Calculator(e, jit=jit), ase_lj())


@JIT
def test_a_zero_cell_vector_along_a_periodic_direction_is_refused(jit):
    # (ASE's own neighbour list would search it as a unit vector: nonsense pairs)
    atoms = Atoms("Ar2", positions=[[0, 0, 0], [3.8, 0, 0]], pbc=True)
    for e in (lj_nl(), lj_verlet(), lj_all_pairs()):
        atoms.calc = Calculator(e, jit=jit)
        with pytest.raises(ValueError, match="cell vector.*zero"):
            atoms.get_potential_energy()
    with pytest.raises(ValueError, match="cell vector"):
        minimum_image(np.ones((2, 3)), np.diag([5.0, 5.0, 0.0]))
    np.testing.assert_allclose(minimum_image(np.array([[4.0, 4.0, 9.0]]),
                                             np.diag([5.0, 5.0, 0.0]), (True, True, False)),
                               [[-1.0, -1.0, 9.0]])


def skewed_cell(kind):
    h = np.diag([6.0, 6.5, 7.0])
    if kind == "triclinic":
        h[1, 0], h[2, 0], h[2, 1] = 2.0, -1.5, 2.5
    if kind == "strong":
        h[1, 0], h[2, 0], h[2, 1] = 5.5, 4.0, -6.0
    if kind == "left-handed":
        h = h[[1, 0, 2]]
        h[0, 1] += 1.0
    return h


@pytest.mark.parametrize("kind", ["triclinic", "strong", "left-handed"])
@pytest.mark.parametrize("pbc", [True, (True, False, True), (False, False, True)])
@JIT
def test_minimum_image_is_the_nearest_image_in_skewed_cells(kind, pbc, jit):
    h = skewed_cell(kind)
    rng = np.random.default_rng(5)
    d = rng.uniform(-15, 15, (400, 3))
    fn = ad.jit(minimum_image, static_argnums=(2,)) if jit else minimum_image
    got = fn(d, h, pbc)
    # the nearest image by brute force (ASE's find_mic misses some with mixed pbc)
    per = np.broadcast_to(pbc, 3)
    k = np.array(np.meshgrid(*[range(-9, 10) if p else [0] for p in per], indexing="ij"))
    images = d[:, None] - (k.reshape(3, -1).T @ h)[None]
    want = np.min(np.linalg.norm(images, axis=-1), axis=1)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), want, rtol=1e-12)
    if per.all():
        np.testing.assert_allclose(want, find_mic(d, h, pbc)[1], rtol=1e-12)
    # an image of d: d − got is a lattice vector of the periodic directions
    n = (d - got) @ np.linalg.inv(h)
    np.testing.assert_allclose(n, np.round(n), atol=1e-9)
    assert np.all(np.round(n)[:, ~np.broadcast_to(pbc, 3)] == 0)
    # derivatives: d ↦ image is the identity (locally), and the cell's derivative is
    # that of d − n h with n held fixed
    n = np.round(n)
    f = lambda d, h: np.sum(np.sin(minimum_image(d, h, pbc)))       # noqa: E731
    g = lambda d, h: np.sum(np.sin(d - n @ h))                       # noqa: E731
    for a, b in zip(ad.grad(f, argnums=(0, 1))(d, h), ad.grad(g, argnums=(0, 1))(d, h)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)
    # (away from the faces of the Voronoi cell, where the nearest image jumps)
    near = rng.uniform(-1.5, 1.5, (20, 3)) * np.broadcast_to(pbc, 3)
    far = near + rng.integers(-2, 3, (20, 3)) * np.broadcast_to(pbc, 3) @ h
    np.testing.assert_allclose(minimum_image(far, h, pbc), near, atol=1e-12)
    ad.check_grads(f, (far, h), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("kind", ["triclinic", "strong", "left-handed"])
@JIT
def test_skewed_cells_equal_ase(kind, jit):
    # a cutoff below half the smallest width: all_pairs is exact; neighbour lists always
    h = skewed_cell(kind) * 2.2
    rng = np.random.default_rng(1)
    atoms = Atoms("Ar40", scaled_positions=rng.uniform(0, 1, (40, 3)), cell=h, pbc=True)
    # keep atoms apart (random positions may overlap: LJ's wall)
    d = atoms.get_all_distances(mic=True) + 10 * np.eye(40)
    keep = [0]
    for k in range(1, 40):
        if d[k, keep].min() > 2.8:
            keep.append(k)
    atoms = atoms[keep]
    assert len(atoms) > 8
    rc = 0.45 * min(abs(np.linalg.det(h)) / np.linalg.norm(np.cross(h[(k + 1) % 3],
                                                              h[(k + 2) % 3]))
                    for k in range(3))
    for e in (lj_nl(rc), lj_verlet(rc), lj_all_pairs(rc, check=True)):
        a, _ = same(atoms, Calculator(e, jit=jit), ase_lj(rc), tol=1e-10)
        assert np.abs(a.get_stress()[3:]).max() > 1e-7


@JIT
def test_small_cells_need_the_neighbor_list(jit):
    # one atom in a primitive fcc cell, a cutoff several cells long: each atom sees its
    # own images; neighbor_list and a NeighborList are right, all_pairs refuses when told
    # the cutoff (and without it is the one-image energy, documented as such)
    for atoms in (bulk("Ar", "fcc", a=5.26), bulk("Ar", "fcc", a=5.26).repeat((2, 1, 1))):
        atoms.rattle(0.05, seed=3)
        c = atoms.cell.array.copy()
        c[2, 0] += 0.4
        atoms.set_cell(c, scale_atoms=True)
        for e in (lj_nl(), lj_verlet()):
            a, _ = same(atoms, Calculator(e, jit=jit), ase_lj())
            assert abs(a.get_potential_energy()) > 1e-3
        b = atoms.copy()
        b.calc = Calculator(lj_all_pairs(check=True), jit=jit)
        with pytest.raises(ValueError, match="half the cell's shortest periodic translation"):
            b.get_potential_energy()
    r = np.zeros((1, 3))
    assert all_pairs(r, np.eye(3))[2].shape == (0, 3)
    i, j, D = neighbor_list(r, np.eye(3) * 2.0, 3.0)         # own images only
    assert np.all(i == 0) and np.all(j == 0) and len(i) == 18
    np.testing.assert_allclose(np.sort(np.linalg.norm(D, axis=1)),
                               np.sort([2.0] * 6 + [2.0 * 2 ** 0.5] * 12))


@JIT
def test_single_atom(jit):
    for pbc, cell in ((False, None), (True, [4.0, 4.0, 4.0])):
        atoms = Atoms("Ar", positions=[[0.3, 0.2, 0.1]], cell=cell, pbc=pbc)
        for e in (lj_nl(3.9), lj_verlet(3.9), lj_all_pairs(3.9)):
            a, _ = same(atoms, Calculator(e, jit=jit), ase_lj(3.9), stress=pbc)
            assert a.get_forces().shape == (1, 3)
    # periodic: the atom sees its six images at 4 Å (rc 4.5)
    atoms = Atoms("Ar", positions=[[0.3, 0.2, 0.1]], cell=[4.0, 4.0, 4.0], pbc=True)
    a, _ = same(atoms, Calculator(lj_nl(4.5), jit=jit), ase_lj(4.5))
    assert abs(a.get_potential_energy() - 3 * lj_pair(16.0, 4.5)) < 1e-13
    assert a.get_stress()[0] != 0


def test_float32_positions_keep_float32_through_the_helpers():
    rng = np.random.default_rng(2)
    r = rng.uniform(0, 8, (12, 3)).astype(np.float32)
    for h in (np.diag([8.0, 8.5, 9.0]), skewed_cell("triclinic") * 1.3):
        h = h.astype(np.float32)
        for fn in (lambda r, h: all_pairs(r, h)[2], lambda r, h: minimum_image(r, h),
                   lambda r, h: neighbor_list(r, h, 3.5)[2],
                   lambda r, h, nl=NeighborList(3.5): nl(r, h)[2]):
            out = fn(r, h)
            assert out.dtype == np.float32
            g = ad.grad(lambda r, h: np.sum(fn(r, h) ** 2), argnums=(0, 1))(r, h)
            assert g[0].dtype == g[1].dtype == np.float32
            # the same numbers as float64, to float32's precision
            out64 = fn(r.astype(float), h.astype(float))
            np.testing.assert_allclose(np.sort(np.sum(out ** 2, -1)),
                                       np.sort(np.sum(out64 ** 2, -1)), rtol=1e-4)


# ----- two species: ASE's EMT written with the helpers -----

def emt_energy(template, verlet=False):
    """ASE's EMT (Jacobsen, Stoltze, Nørskov 1996) as a function of positions, cell and
    numbers, with ASE's parameters (species-dependent: s0, eta2, kappa, chi, ...)."""
    ref = EMT()
    ref.initialize(template)
    par = {k: np.asarray(v) for k, v in ref.par.items()}
    species = np.full(119, -1)
    species[par["Z"].astype(int)] = np.arange(len(par["Z"]))
    chi, beta = ref.chi, EMT_BETA
    rc, acut = ref.rc, ref.acut
    nl = NeighborList(ref.rc_list, skin=0.2) if verlet else None

    def energy(positions, cell, numbers):
        i, j, D = nl(positions, cell) if verlet else neighbor_list(positions, cell,
                                                                   ref.rc_list)
        s = species[numbers]
        si, sj = s[i], s[j]
        r = np.sqrt(np.sum(D * D, axis=-1))
        w = 1.0 / (1.0 + np.exp(acut * (r - rc)))
        c = chi[si, sj]
        onehot = (np.arange(len(positions))[:, None] == i[None, :]) * 1.0
        sigma1 = onehot @ (np.exp(-par["eta2"][sj] * (r - beta * par["s0"][sj])) * c * w)
        ds = -np.log(sigma1 * par["inv12gamma1"][s]) / (beta * par["eta2"][s])
        lam, e0 = par["lambda"][s], par["E0"][s]
        e_c = e0 * (1.0 + lam * ds) * np.exp(-lam * ds)
        e_as2 = 6.0 * par["V0"][s] * np.exp(-par["kappa"][s] * ds)
        hv = par["neghalfv0overgamma2"]
        e_as1 = 0.5 * np.sum(
            hv[si] * np.exp(-par["kappa"][sj] * (r / beta - par["s0"][sj])) * c * w
            + hv[sj] * np.exp(-par["kappa"][si] * (r / beta - par["s0"][si])) / c * w)
        return np.sum(e_c + e_as2 - e0) + e_as1
    return energy


@pytest.mark.parametrize("verlet", [False, True], ids=["neighbor_list", "NeighborList"])
@JIT
def test_two_species_emt_equals_ase(verlet, jit):
    atoms = bulk("Cu", "fcc", a=3.7, cubic=True).repeat((2, 2, 2))
    atoms.numbers[::3] = 79                                  # CuAu alloy
    c = atoms.cell.array.copy()
    c[1, 0] += 0.6
    atoms.set_cell(c, scale_atoms=True)
    atoms.rattle(0.05, seed=8)
    calc = Calculator(emt_energy(atoms, verlet), jit=jit)
    rng = np.random.default_rng(4)
    for step in range(4):
        a, _ = same(atoms, calc, EMT(), tol=1e-10)
        assert np.abs(a.get_stress()[3:]).max() > 1e-4
        atoms.positions += rng.normal(0, 0.01, atoms.positions.shape)
    swapped = atoms.copy()
    swapped.numbers[[0, 1]] = swapped.numbers[[1, 0]]        # same count, other species
    assert swapped.numbers[0] != atoms.numbers[0]
    same(swapped, calc, EMT(), tol=1e-10)


# ----- stress and forces as derivatives (sign, Voigt order, units) -----

@pytest.mark.parametrize("energy", ["nl", "all_pairs", "emt"])
@JIT
def test_stress_of_a_strained_triclinic_cell_is_the_strain_derivative(energy, jit):
    if energy == "emt":
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
        atoms.numbers[::2] = 46
        e = emt_energy(atoms)
    else:
        atoms = argon(n=3 if energy == "all_pairs" else 2, rattle=0.1, seed=6)
        e = lj_nl() if energy == "nl" else lj_all_pairs(check=True)
    strain = np.array([[0.02, 0.03, -0.01], [0.03, -0.015, 0.02], [-0.01, 0.02, 0.01]])
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain).T, scale_atoms=True)
    c = atoms.cell.array.copy()
    c[2, 0] += 0.5
    c[1, 0] -= 0.3
    atoms.set_cell(c, scale_atoms=True)
    atoms.rattle(0.05, seed=9)
    atoms.calc = Calculator(e, jit=jit)
    S = atoms.get_stress()
    assert atoms.get_stress(voigt=False).shape == (3, 3)
    V, h = atoms.get_volume(), 1e-6
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]        # xx yy zz yz xz xy
    for k, (a, b) in enumerate(pairs):
        es = []
        for sgn in (1, -1):
            eps = np.zeros((3, 3))
            eps[a, b] += sgn * h / 2
            eps[b, a] += sgn * h / 2
            p = atoms.copy()
            p.set_cell(atoms.cell.array @ (np.eye(3) + eps).T, scale_atoms=True)
            p.calc = Calculator(e)
            es.append(p.get_potential_energy())
        # symmetric strain ε_ab = ε_ba = h/2: dE/dh = V σ_ab (ASE: σ = (1/V) ∂E/∂ε)
        assert abs(S[k] - (es[0] - es[1]) / (2 * h) / V) < 2e-8 * max(1, np.abs(S).max())
    assert np.abs(S[3:]).max() > 1e-5
    # units: eV/Å³ as ASE gives; a hydrostatic strain's energy change is −p dV
    es = []
    for sgn in (1, -1):
        p = atoms.copy()
        p.calc = Calculator(e)
        p.set_cell(atoms.cell.array * (1 + sgn * h), scale_atoms=True)
        es.append(p.get_potential_energy())
    de = (es[0] - es[1]) / 2
    assert abs(de - np.sum(S[:3]) * V * h) < 1e-6 * max(1e-3, abs(de))


@JIT
def test_forces_are_minus_the_gradient(jit):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 1))
    atoms.numbers[1::3] = 79
    atoms.pbc = (True, False, True)
    atoms.rattle(0.08, seed=1)
    e = emt_energy(atoms)
    atoms.calc = Calculator(e, jit=jit)
    F = atoms.get_forces()
    h = 1e-5
    for a in range(0, len(atoms), 3):
        for k in range(3):
            es = []
            for sgn in (1, -1):
                p = atoms.copy()
                p.positions[a, k] += sgn * h
                p.calc = Calculator(e)
                es.append(p.get_potential_energy())
            assert abs(-(es[0] - es[1]) / (2 * h) - F[a, k]) < 1e-7
    assert np.abs(F).max() > 1e-2


# ----- optimisers, filters, MD against ASE -----

@JIT
def test_bfgs_with_fixed_atoms_follows_ase(jit):
    atoms = argon(n=2, rattle=0.2, seed=4)
    atoms.set_constraint(FixAtoms(indices=[0, 5, 9]))
    runs = []
    for calc in (Calculator(lj_verlet(), jit=jit), ase_lj()):
        a = atoms.copy()
        a.calc = calc
        path = []
        opt = BFGS(a, logfile=None)
        opt.attach(lambda: path.append(a.positions.copy()))
        opt.run(fmax=1e-3, steps=20)
        runs.append((np.array(path), a.get_potential_energy()))
        np.testing.assert_array_equal(a.positions[[0, 5, 9]], atoms.positions[[0, 5, 9]])
        assert np.all(a.get_forces()[[0, 5, 9]] == 0)
    assert runs[0][0].shape == runs[1][0].shape and len(runs[0][0]) > 3
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=0, atol=1e-8)
    assert abs(runs[0][1] - runs[1][1]) < 1e-10


@pytest.mark.parametrize("Filter", [ExpCellFilter, FrechetCellFilter, UnitCellFilter])
@JIT
def test_cell_filters_relax_as_ase(Filter, jit):
    atoms = argon(n=1, rattle=0.02, seed=2)
    c = atoms.cell.array * 1.03
    c[1, 0] += 0.2                                           # a triclinic start
    atoms.set_cell(c, scale_atoms=True)
    finals = []
    for calc in (Calculator(lj_verlet(), jit=jit), ase_lj()):
        a = atoms.copy()
        a.calc = calc
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)     # ExpCellFilter's
            BFGS(Filter(a), logfile=None).run(fmax=1e-4, steps=40)
        finals.append((a.cell.array.copy(), a.positions.copy(), a.get_stress()))
    np.testing.assert_allclose(finals[0][0], finals[1][0], rtol=0, atol=1e-7)
    np.testing.assert_allclose(finals[0][1], finals[1][1], rtol=0, atol=1e-7)
    assert np.abs(finals[0][2]).max() < 2e-4
    assert np.abs(finals[0][0] - atoms.cell.array).max() > 1e-2


@JIT
def test_velocity_verlet_conserves_energy_and_follows_ase(jit):
    atoms = argon(n=2, rattle=0.05, seed=5)
    atoms.set_momenta(np.random.default_rng(0).normal(0, 0.3, (len(atoms), 3)))
    ends = []
    for calc in (Calculator(lj_verlet(), jit=jit), ase_lj()):
        a = atoms.copy()
        a.calc = calc
        etot = []
        md = VelocityVerlet(a, timestep=2 * units.fs)
        md.attach(lambda: etot.append(a.get_total_energy()))
        md.run(60)
        ends.append((a.positions.copy(), np.array(etot)))
    np.testing.assert_allclose(ends[0][0], ends[1][0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ends[0][1], ends[1][1], rtol=0, atol=1e-9)
    kinetic = atoms.get_kinetic_energy()
    assert np.ptp(ends[0][1]) < 1e-3 * kinetic          # conserved, to the step's error


@JIT
def test_langevin_follows_ase_with_the_same_random_numbers(jit):
    atoms = argon(n=2, rattle=0.05, seed=6)
    ends = []
    for calc in (Calculator(lj_verlet(), jit=jit), ase_lj()):
        a = atoms.copy()
        a.calc = calc
        Langevin(a, 5 * units.fs, temperature_K=60, friction=0.02, fixcm=False,
                 rng=np.random.RandomState(7)).run(40)
        ends.append((a.positions.copy(), a.get_momenta().copy()))
    np.testing.assert_allclose(ends[0][0], ends[1][0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ends[0][1], ends[1][1], rtol=0, atol=1e-9)


# ----- jit=True: the Verlet list across changes -----

def test_jit_verlet_list_across_counts_rebuilds_sizes_and_pbc():
    # one jitted calculator (and its NeighborList) through a series of structures: moved
    # atoms (pairs crossing the cutoff, rebuilds), another atom count, other pbc, another
    # cell; every call gives ASE's numbers
    e = lj_verlet(skin=0.4)
    calc = Calculator(e, jit=True)
    ref = Calculator(lj_nl())
    rng = np.random.default_rng(11)
    structures = []
    base = argon(n=2, rattle=0.1, seed=1)
    for step in range(5):
        base.positions += rng.normal(0, 0.08, base.positions.shape)
        structures.append(base.copy())
    structures.append(argon(n=(2, 2, 3), rattle=0.1))             # another count
    s = structures[-1].copy()
    s.pbc = (True, True, False)
    structures.append(s)                                          # another pbc
    s = s.copy()
    s.pbc = True
    s.set_cell(s.cell.array * 1.02, scale_atoms=True)             # another cell
    structures.append(s)
    structures.append(structures[2].copy())                       # back to the first
    counts = set()
    for atoms in structures:
        same(atoms, calc, ref, stress=True)
        same(atoms, calc, ase_lj(), stress=True)
        counts.add(len(e.nl._kept[1]))
    assert len(counts) > 3 and e.nl.rebuilds >= 4


# ----- threads -----

@JIT
def test_two_calculators_in_two_threads(jit):
    import sys
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)                 # interleave the threads finely
    rng = np.random.default_rng(0)
    jobs = []
    for k in range(2):
        atoms = argon(n=(3, 3, 2 + k), rattle=0.1, seed=k)
        atoms.pbc = (True, True, k == 1)
        moves = rng.normal(0, 0.02, (12,) + atoms.positions.shape)
        jobs.append((atoms, moves, lj_verlet() if k == 0 else lj_all_pairs()))
    results, errors = {}, []

    def run(k):
        try:
            atoms, moves, e = jobs[k]
            a = atoms.copy()
            a.calc = Calculator(e, jit=jit)
            out = []
            for m in moves:
                a.positions += m
                out.append((a.get_potential_energy(), a.get_forces(), a.get_stress()))
            results[k] = out
        except Exception as exc:        # pragma: no cover - reported below
            errors.append(exc)
    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    for k, (atoms, moves, e) in enumerate(jobs):
        a = atoms.copy()
        a.calc = ase_lj()
        for m, (en, F, S) in zip(moves, results[k]):
            a.positions += m
            assert abs(en - a.get_potential_energy()) < 1e-10
            np.testing.assert_allclose(F, a.get_forces(), rtol=0, atol=1e-10)
            np.testing.assert_allclose(S, a.get_stress(), rtol=0, atol=1e-10)


# ----- Morse, as ASE writes it -----

@JIT
def test_morse_in_a_skewed_slab_equals_ase(jit):
    def energy(positions, cell, numbers):
        i, j, D = neighbor_list(positions, cell, 2.7)
        d = np.sqrt(np.sum(D * D, axis=-1))
        expf = np.exp(6.0 * (1.0 - d))
        return 0.5 * np.sum(expf * (expf - 2.0) * fcut(d, 1.9, 2.7))
    atoms = bulk("Cu", "fcc", a=1.5, cubic=True).repeat((3, 3, 2))
    c = atoms.cell.array.copy()
    c[1, 0] += 0.7
    atoms.set_cell(c, scale_atoms=True)
    atoms.pbc = (True, True, False)
    atoms.rattle(0.03, seed=2)
    same(atoms, Calculator(energy, jit=jit), MorsePotential())


# ----- the calculator as an object: files, copies, direct calls -----

def lj_module_level(positions, cell, numbers):
    return lj_nl()(positions, cell, numbers)


@JIT
def test_calculator_pickles_copies_and_writes_results(jit, tmp_path):
    import copy
    import pickle
    from ase.io import Trajectory, read, write
    atoms = argon(rattle=0.1)
    atoms.calc = calc = Calculator(lj_module_level, jit=jit)
    e, F, S = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    for other in (pickle.loads(pickle.dumps(calc)), copy.deepcopy(calc)):
        assert other.jit == jit and other.results["energy"] == e        # results kept
        b = atoms.copy()
        b.positions[0, 0] += 0.05
        same(b, other, ase_lj())
    assert atoms.get_potential_energy() == e                 # the original is untouched
    with Trajectory(str(tmp_path / "a.traj"), "w") as t:
        t.write(atoms)
    write(str(tmp_path / "a.extxyz"), atoms)
    for name, tol in (("a.traj", 1e-14), ("a.extxyz", 1e-7)):     # (8 decimals)
        b = read(str(tmp_path / name))
        assert abs(b.get_potential_energy() - e) < tol
        np.testing.assert_allclose(b.get_forces(), F, rtol=0, atol=tol)
        np.testing.assert_allclose(b.get_stress(), S, rtol=0, atol=tol)


def test_direct_calculate_calls():
    atoms = argon()
    calc = Calculator(lj_nl())
    calc.calculate(atoms)                                     # ASE's default: energy
    calc.calculate(atoms, None)
    calc.calculate(atoms, ["energy", "forces", "stress"])
    ref = atoms.copy()
    ref.calc = ase_lj()
    assert abs(calc.results["energy"] - ref.get_potential_energy()) < 1e-10
    np.testing.assert_allclose(calc.results["stress"], ref.get_stress(), atol=1e-10)
    lonely = Calculator(lj_nl(), atoms=atoms.copy())          # attached, nothing computed
    with pytest.raises(ValueError, match="no atoms"):
        lonely.get_potential_energy()


@JIT
def test_all_pairs_cutoff_check_is_exact_and_tilted_slabs_equal_ase(jit):
    # the check is on the shortest periodic translation (2 rc at most), not on face
    # distances: a slab with a tilted, non-periodic c vector keeps the 15.78 Å period
    atoms = argon(n=(3, 3, 2), rattle=0.1)
    c = atoms.cell.array.copy()
    c[2] = [6.0, 4.0, 10.52]
    atoms.set_cell(c, scale_atoms=True)
    atoms.pbc = (True, True, False)
    for e in (lj_all_pairs(check=True), lj_nl()):
        a, _ = same(atoms, Calculator(e, jit=jit), ase_lj())
        assert np.abs(a.get_stress()[3:]).max() > 1e-6
    r = np.random.default_rng(0).uniform(0, 10, (5, 3))
    fn = ad.jit(all_pairs, static_argnums=(2, 3)) if jit else all_pairs
    fn(r, np.eye(3) * 10.0, True, 5.0)                      # 2 rc = the period: fine
    with pytest.raises(ValueError, match="several images"):
        fn(r, np.eye(3) * 10.0, True, 5.01)
    skew = np.array([[10.0, 0, 0], [9.0, 4.0, 0], [0, 0, 10.0]])  # shortest: |b − a| ≈ 4.12
    fn(r, skew, (True, False, True), 4.9)                   # b is not periodic
    with pytest.raises(ValueError, match="several images"):
        fn(r, skew, True, 2.1)
    fn(r, skew, True, 2.0)


@JIT
def test_a_cell_only_energy_gives_its_pressure(jit):
    # E = p·det(h): σ = (1/|V|) ∂E/∂ε = p·sign(det h)·I, whatever the handedness
    for h, sign in ((np.diag([5.0, 6, 7]), 1), (np.diag([5.0, 6, 7])[[1, 0, 2]], -1)):
        a = Atoms("Ar", positions=[[0, 0, 0]], cell=h, pbc=True)
        a.calc = Calculator(lambda r, h, z: 0.1 * np.linalg.det(h), jit=jit)
        np.testing.assert_allclose(a.get_stress(), sign * np.array([0.1] * 3 + [0] * 3),
                                   atol=1e-15)


def test_jit_neighbor_list_replays_its_search():
    # neighbor_list's search is one recorded call: a replay on moved atoms reads their
    # pairs (ASE's numbers every step), and records again only for a new pair count
    atoms = argon(n=2, rattle=0.1, seed=2)
    atoms.set_momenta(np.random.default_rng(1).normal(0, 0.3, (len(atoms), 3)))
    calc = Calculator(lj_nl(), jit=True)
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = calc, ase_lj()
    counts = set()
    for step in range(12):
        VelocityVerlet(a, timestep=4 * units.fs).run(1)
        VelocityVerlet(b, timestep=4 * units.fs).run(1)
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-10)
        same(a, calc, ase_lj())
        counts.add(len(neighbor_list(a.positions, a.cell.array, RC)[0]))
    assert calc._sweep.recordings <= len(counts) < 12
    f = ad.jit(lambda r, h: np.sum(neighbor_list(r, h, 4.0)[2] ** 2))
    r, h = atoms.positions, atoms.cell.array
    for k in range(3):
        moved = r + 0.01 * k
        D = neighbor_list(moved, h, 4.0)[2]
        assert abs(f(moved, h) - np.sum(D ** 2)) < 1e-9
        np.testing.assert_allclose(ad.grad(f)(moved, h), ad.grad(
            lambda r: np.sum(neighbor_list(r, h, 4.0)[2] ** 2))(moved), atol=1e-10)
    assert f.recordings == 1


@JIT
def test_a_value_dependent_refusal_mid_run(jit):
    # a refusal decided on the values (a guard under jit) raises where it applies and
    # the calculator goes on with ASE's numbers afterwards
    inner = lj_verlet()

    def energy(positions, cell, numbers):
        i, j, D = inner.nl(positions, cell)
        r2 = np.sum(D * D, axis=-1)
        if np.any(r2 < 2.0 ** 2):
            raise ValueError("atoms overlap")
        return 0.5 * np.sum(lj_pair(r2))

    atoms = argon(n=2, rattle=0.05)
    calc = Calculator(energy, jit=jit)
    for step in range(6):
        a = atoms.copy()
        if step == 3:
            a.positions[1] = a.positions[0] + [1.0, 0.0, 0.0]
        a.calc = calc
        if step == 3:
            with pytest.raises(ValueError, match="overlap"):
                a.get_forces()
        else:
            same(a, calc, ase_lj())
        atoms.positions[5, 0] += 0.01


def test_helpers_take_a_cell_as_ase_does():
    # an ase.cell.Cell, nested lists, three lengths, lengths and angles: ASE's forms
    atoms = argon(n=2)
    r, h = atoms.positions, atoms.cell.array
    want = [all_pairs(r, h)[2], minimum_image(r[:3] - r[5], h),
            neighbor_list(r, h, 4.0)[2], NeighborList(4.0)(r, h)[2]]
    for cell in (atoms.cell, h.tolist(), [10.52] * 3, [10.52] * 3 + [90] * 3):
        got = [all_pairs(r, cell)[2], minimum_image(r[:3] - r[5], cell),
               neighbor_list(r, cell, 4.0)[2], NeighborList(4.0)(r, cell)[2]]
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="3 × 3"):
        ad.grad(lambda c: np.sum(minimum_image(r[:3], c)))(np.full(3, 10.52))


@pytest.mark.parametrize("pbc", [True, (True, False, True)])
@JIT
def test_all_pairs_takes_the_nearest_image_in_skewed_cells(pbc, jit):
    h = skewed_cell("strong") * 1.5
    r = np.random.default_rng(8).uniform(0, 1, (30, 3)) @ h
    i, j = np.triu_indices(30, 1)
    want = minimum_image(r[j] - r[i], h, pbc)
    fn = ad.jit(all_pairs, static_argnums=(2, 3)) if jit else all_pairs
    np.testing.assert_allclose(np.linalg.norm(fn(r, h, pbc)[2], axis=1),
                               np.linalg.norm(want, axis=1), rtol=1e-12)
    # with the energy's cutoff, the pairs within it are the nearest images
    rc = 0.5 * min(abs(np.linalg.det(h)) / np.linalg.norm(np.cross(h[(k + 1) % 3],
                                                                   h[(k + 2) % 3]))
                   for k in range(3))
    d = fn(r, h, pbc, rc)[2]
    near = np.linalg.norm(want, axis=1) < rc
    assert near.sum() > 10
    np.testing.assert_allclose(np.linalg.norm(d[near], axis=1),
                               np.linalg.norm(want[near], axis=1), rtol=1e-12)
    assert np.all(np.linalg.norm(d[~near], axis=1) >= rc * (1 - 1e-12))


@JIT
def test_one_neighbor_list_shared_by_calculators_in_two_threads(jit):
    # one energy (and its NeighborList) behind two calculators in two threads: the list
    # is updated under a lock, so each structure gets its own pairs (rebuilt as needed)
    import pickle
    import sys
    e = lj_verlet()
    rng = np.random.default_rng(0)
    jobs = [(argon(n=2, rattle=0.1, seed=k), rng.normal(0, 0.02, (15, 32, 3)))
            for k in range(2)]
    results, errors = {}, []

    def run(k):
        try:
            a = jobs[k][0].copy()
            a.calc = Calculator(e, jit=jit)
            out = []
            for m in jobs[k][1]:
                a.positions += m
                out.append((a.get_potential_energy(), a.get_forces()))
            results[k] = out
        except Exception as exc:        # pragma: no cover - reported below
            errors.append(exc)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors
    for k, (atoms, moves) in enumerate(jobs):
        a = atoms.copy()
        a.calc = ase_lj()
        for m, (en, F) in zip(moves, results[k]):
            a.positions += m
            assert abs(en - a.get_potential_energy()) < 1e-10
            np.testing.assert_allclose(F, a.get_forces(), rtol=0, atol=1e-10)
    nl = pickle.loads(pickle.dumps(e.nl))                   # (the lock is not pickled)
    r, h = jobs[0][0].positions, jobs[0][0].cell.array
    np.testing.assert_array_equal(nl(r, h)[2], e.nl(r, h)[2])


def test_one_jitted_all_pairs_across_cell_kinds():
    # orthogonal (rounding in the program), skewed (corrected), a zero vector along a
    # non-periodic direction (completed): a guard tells them apart, each value is right
    f = ad.jit(lambda r, h: all_pairs(r, h, (True, True, False))[2])
    g = ad.jit(ad.grad(lambda r, h: np.sum(np.sin(all_pairs(r, h, (True, True, False))[2])),
                       argnums=(0, 1)))
    r = np.random.default_rng(3).uniform(0, 6, (9, 3))
    cells = [np.diag([6.0, 6.5, 7.0]), skewed_cell("strong"), np.diag([6.0, 6.5, 0.0]),
             np.diag([6.2, 6.5, 7.0]), skewed_cell("triclinic")]
    for h in cells + cells[::-1]:
        want = all_pairs(r, h, (True, True, False))[2]
        np.testing.assert_allclose(f(r, h), want, rtol=0, atol=1e-12)
        gw = ad.grad(lambda r, h: np.sum(np.sin(all_pairs(r, h, (True, True, False))[2])),
                     argnums=(0, 1))(r, h)
        for a, b in zip(g(r, h), gw):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert f.recordings <= 3


@JIT
def test_neighbor_list_takes_ases_cutoff_forms(jit):
    from ase.neighborlist import neighbor_list as ase_neighbor_list
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.numbers[::3] = 79
    atoms.rattle(0.05, seed=2)
    r, h, z = atoms.positions, atoms.cell.array, atoms.numbers
    forms = (3.0, np.where(z == 79, 1.6, 1.3),
             {(29, 29): 2.6, (29, 79): 3.0, (79, 79): 3.2})
    for cutoff in forms:
        i, j, S = ase_neighbor_list("ijS", atoms, cutoff)

        def energy(r, h, cutoff=cutoff):
            return np.sum(np.exp(-neighbor_list(r, h, cutoff, numbers=z)[2] ** 2))
        fn = ad.jit(energy) if jit else energy
        got_i, got_j, D = neighbor_list(r, h, cutoff, numbers=z)
        np.testing.assert_array_equal(got_i, i)
        np.testing.assert_array_equal(got_j, j)
        np.testing.assert_allclose(D, r[j] - r[i] + S @ h, rtol=0, atol=1e-13)
        assert abs(fn(r, h) - np.sum(np.exp(-(r[j] - r[i] + S @ h) ** 2))) < 1e-10
        np.testing.assert_allclose(
            ad.grad(fn, argnums=(0, 1))(r, h)[1],
            ad.grad(lambda h: np.sum(np.exp(-(r[j] - r[i] + S @ h) ** 2)))(h), atol=1e-10)
    assert len(ase_neighbor_list("i", atoms, forms[0])) != len(
        ase_neighbor_list("i", atoms, forms[1]))          # (the forms differ here)
    with pytest.raises(ValueError, match="needs numbers"):
        neighbor_list(r, h, forms[2])
