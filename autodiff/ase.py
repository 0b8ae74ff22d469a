"""An ASE calculator for an energy written in NumPy: forces and stress from one reverse sweep.

``Calculator(energy)`` wraps ``energy(positions, cell, numbers) -> float`` (eV, Å). For a
structure with a three-dimensional cell it differentiates

    E(R, ε) = energy(R (I + ε)ᵀ, h (I + ε)ᵀ, Z)

with respect to the positions ``R`` and the strain ``ε`` at ``ε = 0`` in one reverse sweep:

    forces  F = −∂E/∂R,        stress  σ = (1/V) ∂E/∂ε   (ASE's sign, Voigt xx yy zz yz xz xy).

Periodic energies are written with the helpers here: :func:`minimum_image` (displacements
folded into the cell), :func:`all_pairs` (every pair once, minimum image) and
:func:`neighbor_list` (ASE's own neighbour list, every pair in both directions, with the
displacement vectors rebuilt differentiably from positions and cell). Inside a calculation
the helpers take the atoms' ``pbc`` unless given one.

>>> import numpy as np
>>> from ase.build import bulk
>>> from autodiff.ase import Calculator, all_pairs
>>> def energy(positions, cell, numbers):
...     i, j, d = all_pairs(positions, cell)
...     r2 = np.sum(d ** 2, axis=-1)
...     return np.sum(np.exp(-r2))
>>> atoms = bulk("Ar", "fcc", a=5.26, cubic=True)
>>> atoms.calc = Calculator(energy)
>>> atoms.get_forces().shape, atoms.get_stress().shape
((4, 3), (6,))
"""
import contextvars
import functools

import numpy as np
import scipy.sparse as _sps

try:
    from ase import Atoms
    from ase.calculators.calculator import Calculator as _ASECalculator
    from ase.calculators.calculator import PropertyNotImplementedError, all_changes
    from ase.neighborlist import neighbor_list as _ase_neighbor_list
except ImportError as e:  # pragma: no cover - exercised only without ASE
    raise ImportError("autodiff.ase needs ASE: pip install 'autodiff[ase]' "
                      "(or pip install ase)") from e

from .api import value_and_grad
from .boxes import data, meta, unbox
from .tracing import jit as _jit

__all__ = ["Calculator", "minimum_image", "all_pairs", "neighbor_list", "NeighborList"]

# The periodic directions of the structure being calculated: the helpers' default ``pbc``
# while a Calculator runs the energy (a ContextVar, so threads do not see each other's).
_current_pbc = contextvars.ContextVar("autodiff_ase_pbc", default=None)


def _pbc(pbc):
    if pbc is None:
        pbc = _current_pbc.get()
    if pbc is None:
        pbc = True
    return np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))


def minimum_image(d, cell, pbc=None):
    """Displacements ``d`` (shape ``(..., 3)``) folded to their nearest periodic image.

    In fractional coordinates ``s = d h⁻¹``, the image is ``(s − round(s)) h`` along the
    periodic directions. That is the nearest image when the interaction range is below half
    the distance between opposite cell faces (always so for the pairs that matter in an
    orthorhombic cell); use :func:`neighbor_list` for longer ranges or skewed cells. The
    rounding is locally constant, so derivatives flow through ``d`` and ``cell`` only.
    """
    mask = _pbc(pbc)
    if not mask.any():
        return d
    s = d @ np.linalg.inv(cell)
    shift = np.where(mask, np.round(data(s)), 0.0)     # (recorded under ad.jit)
    return (s - shift) @ cell


def all_pairs(positions, cell=None, pbc=None):
    """Every pair ``i < j`` once: ``(i, j, d)`` with ``d = r_j − r_i`` (minimum image when
    periodic). ``sum(u(|d|))`` is then the pair energy with no double counting. ``i`` and
    ``j`` are read-only (kept between calls for each atom count)."""
    n = len(positions)
    i, j, B = _pairs(n, _float_dtype(positions))
    mask = _pbc(pbc) if cell is not None else np.zeros(3, bool)
    if not mask.any():
        return i, j, _differences(B, i, j, positions)
    # In fractional coordinates, per atom: one n × 3 product instead of one per pair.
    ds = _differences(B, i, j, positions @ np.linalg.inv(cell))
    shift = np.round(data(ds))
    if not mask.all():
        shift = np.where(mask, shift, 0.0)
    return i, j, (ds - shift) @ cell


def _float_dtype(x):
    dt = np.result_type(meta(x))
    return dt if dt.kind == "f" else np.dtype(np.float64)


@functools.lru_cache(maxsize=8)
def _pairs(n, dtype):
    i, j = np.triu_indices(n, k=1)
    i.setflags(write=False)
    j.setflags(write=False)
    return i, j, _difference_matrix(i, j, n, dtype)


def _difference_matrix(i, j, n, dtype=np.float64):
    """The sparse ``P × n`` matrix ``B`` with ``(B @ r)[p] = r[j[p]] − r[i[p]]`` (row ``p``:
    −1 at column ``i[p]``, +1 at ``j[p]``; a pair of an atom with its own image is a zero
    row). The pair gathers' reverse, two scatter-adds of ``P`` rows, is then one sparse
    product ``Bᵀ ḡ``; the forward ``-r_i + r_j`` is exactly ``r_j - r_i``."""
    P = len(i)
    idx_t = np.int32 if max(n, 2 * P) < 2 ** 31 else np.int64
    cols = np.empty(2 * P, idx_t)
    cols[0::2], cols[1::2] = i, j
    vals = np.empty(2 * P, dtype)
    vals[0::2], vals[1::2] = -1, 1
    return _sps.csr_array((vals, cols, np.arange(0, 2 * P + 1, 2, dtype=idx_t)), shape=(P, n))


def neighbor_list(positions, cell, cutoff, pbc=None, numbers=None):
    """ASE's neighbour list within ``cutoff``: ``(i, j, D)``, every pair in both directions
    (ASE's ``neighbor_list("ijS", ...)``), ``D = r_j − r_i + S h`` rebuilt from the tracked
    positions and cell so forces and stress flow through it; sum pair terms with a factor ½.

    The list itself is found from the primal values, so it is held fixed while
    differentiating: exact wherever no pair crosses the cutoff. For repeated calls (MD,
    relaxations) a :class:`NeighborList` keeps its list between calls.
    """
    i, j, S = _search(positions, cell, cutoff, pbc, numbers)
    B = _difference_matrix(i, j, len(positions), _float_dtype(positions))
    return i, j, _displacements(positions, cell, B, S.astype(float), i, j)


def _search(positions, cell, cutoff, pbc, numbers=None):
    r = np.asarray(unbox(positions), dtype=float)
    atoms = Atoms(numbers=np.ones(len(r), int) if numbers is None else unbox(numbers),
                  positions=r, cell=np.asarray(unbox(cell), dtype=float), pbc=_pbc(pbc))
    return _ase_neighbor_list("ijS", atoms, float(cutoff))


def _differences(B, i, j, x):
    """``x[j] − x[i]`` by the difference matrix (no pairs: the gathers, which keep the
    empty shapes in both sweeps)."""
    return B @ x if len(i) else x[j] - x[i]


def _displacements(positions, cell, B, S, i, j):
    """``r_j − r_i + S h`` for every pair, ``B`` the pairs' difference matrix."""
    return _differences(B, i, j, positions) + S @ cell


class NeighborList:
    """A Verlet list: pairs within ``cutoff + skin`` found by ASE, kept until an atom has
    moved more than ``skin / 2`` (or the cell, ``pbc`` or the atom count changed), so each
    call only rebuilds ``D`` and keeps the pairs now within ``cutoff``.

    ``nl(positions, cell)`` returns ``(i, j, D)`` exactly as :func:`neighbor_list` does.

    >>> nl = NeighborList(cutoff=3.0)
    >>> def energy(positions, cell, numbers):
    ...     i, j, D = nl(positions, cell)
    ...     return 0.5 * np.sum(np.exp(-np.sum(D ** 2, axis=-1)))
    """

    def __init__(self, cutoff, skin=0.3):
        if cutoff <= 0 or skin < 0:
            raise ValueError(f"need cutoff > 0 and skin >= 0, got {cutoff} and {skin}")
        self.cutoff, self.skin = float(cutoff), float(skin)
        self._key = self._kept = None
        self.rebuilds = 0

    def __call__(self, positions, cell, pbc=None):
        r = np.asarray(unbox(positions), dtype=float)
        h = np.asarray(unbox(cell), dtype=float)
        mask = _pbc(pbc)
        key = (len(r), h.tobytes(), mask.tobytes())
        if (self._key != key
                or np.max(np.sum((r - self._r0) ** 2, axis=-1), initial=0.0)
                > (0.5 * self.skin) ** 2):
            self._i, self._j, S = _search(r, h, self.cutoff + self.skin, mask)
            self._S = S.astype(float)
            self._B = _difference_matrix(self._i, self._j, len(r))
            self._key, self._r0 = key, r.copy()
            self._kept = None
            self.rebuilds += 1
        D0 = _displacements(r, h, self._B, self._S, self._i, self._j)
        keep = np.einsum("pi,pi->p", D0, D0) < self.cutoff ** 2
        dtype = _float_dtype(positions)
        # The pairs within the cutoff change only when one crosses it: keep them (and
        # their difference matrix) until the mask differs.
        if self._kept is None or self._kept[0] != dtype or not np.array_equal(keep,
                                                                              self._keep):
            i, j, S = self._i[keep], self._j[keep], self._S[keep]
            i.setflags(write=False)
            j.setflags(write=False)
            self._keep = keep
            self._kept = (dtype, i, j, S, _difference_matrix(i, j, len(r), dtype))
        _, i, j, S, B = self._kept
        return i, j, _displacements(positions, cell, B, S, i, j)


def _voigt(s):
    """A symmetric 3×3 stress in ASE's Voigt order xx, yy, zz, yz, xz, xy."""
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


class Calculator(_ASECalculator):
    """ASE calculator for ``energy(positions, cell, numbers) -> float`` (eV, Å).

    Energy, forces (eV/Å) and, for a three-dimensional cell, the stress (eV/Å³, Voigt
    order, ASE's sign: ``σ = (1/V) ∂E/∂ε``) come from one value-and-gradient sweep; all of
    them are computed together and cached by ASE until the atoms change. Without a
    three-dimensional cell the stress is ASE's ``PropertyNotImplementedError``.

    ``energy`` may also take a ``pbc`` keyword (the atoms' periodic directions); the
    helpers of this module use them by default either way.

    ``jit=True`` records the sweep with ``ad.jit`` once per signature (atom count, dtypes,
    ``pbc``) and replays it: ``ad.jit``'s semantics, so arrays ``energy`` closes over are
    constants of the recording. It pays for energies whose Python decisions do not read the
    positions (:func:`all_pairs`); a neighbour search reads them, so with
    :func:`neighbor_list` or a :class:`NeighborList` each call records again (right, but
    slower than ``jit=False``).
    """
    implemented_properties = ["energy", "free_energy", "forces", "stress"]
    nolabel = True

    def __init__(self, energy, jit=False, **kwargs):
        super().__init__(**kwargs)
        self.energy = energy
        try:
            import inspect
            params = inspect.signature(energy).parameters
            self._takes_pbc = "pbc" in params or any(
                p.kind is p.VAR_KEYWORD for p in params.values())
        except (TypeError, ValueError):
            self._takes_pbc = False
        self.jit = bool(jit)
        sweep = value_and_grad(self._strained, argnums=(0, 1))
        sweep_r = value_and_grad(self._unstrained)
        if self.jit:        # pbc (a tuple of bools) is static: the helpers read it
            sweep, sweep_r = _jit(sweep, static_argnums=(4,)), _jit(sweep_r, static_argnums=(3,))
        self._sweep, self._sweep_r = sweep, sweep_r

    def _call(self, positions, cell, numbers, pbc):
        pbc = np.array(pbc, dtype=bool)
        if self._takes_pbc:
            return self.energy(positions, cell, numbers, pbc=pbc)
        return self.energy(positions, cell, numbers)

    def _strained(self, positions, strain, cell, numbers, pbc):
        # The strain acts on positions and cell alike; at ε = 0 the values are unchanged.
        deform = np.eye(3) + strain
        return self._call(positions @ deform.T, cell @ deform.T, numbers, pbc)

    def _unstrained(self, positions, cell, numbers, pbc):
        return self._call(positions, cell, numbers, pbc)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        positions = np.array(atoms.positions, dtype=float)
        cell = np.array(atoms.cell.array, dtype=float)
        numbers = np.array(atoms.numbers)
        pbc = tuple(bool(p) for p in np.broadcast_to(atoms.pbc, (3,)))
        periodic_cell = atoms.cell.rank == 3
        if "stress" in properties and not periodic_cell:
            raise PropertyNotImplementedError(
                "stress needs a three-dimensional cell (atoms.cell.rank == 3)")
        token = _current_pbc.set(np.array(pbc, dtype=bool))
        try:
            if periodic_cell:
                energy, (grad_r, grad_e) = self._sweep(positions, np.zeros((3, 3)), cell,
                                                       numbers, pbc)
            else:
                energy, grad_r = self._sweep_r(positions, cell, numbers, pbc)
                grad_e = None
        finally:
            _current_pbc.reset(token)
        energy = float(np.asarray(energy))
        if not np.isfinite(energy):
            raise FloatingPointError(f"the energy is {energy} at these positions")
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = -np.asarray(grad_r, dtype=float)
        if grad_e is not None:
            g = np.asarray(grad_e, dtype=float)
            self.results["stress"] = _voigt(0.5 * (g + g.T)) / atoms.get_volume()
