"""An ASE calculator for an energy written in NumPy: forces and stress from one reverse sweep.

``Calculator(energy)`` wraps ``energy(positions, cell, numbers) -> float`` (eV, Å). For a
structure with a three-dimensional cell it differentiates

    E(R, ε) = energy(R (I + ε)ᵀ, h (I + ε)ᵀ, Z)

with respect to the positions ``R`` and the strain ``ε`` at ``ε = 0`` in one reverse sweep:

    forces  F = −∂E/∂R,        stress  σ = (1/V) ∂E/∂ε   (ASE's sign, Voigt xx yy zz yz xz xy).

Periodic energies are written with the helpers here: :func:`minimum_image` (displacements
folded to their nearest image, in any cell), :func:`all_pairs` (every pair once, nearest
image: the periodic energy for a range up to half the shortest period, which
``cutoff=`` checks) and :func:`neighbor_list` (ASE's own neighbour list, every pair in
both directions, with the displacement vectors rebuilt differentiably from positions and
cell: right for any cell and range). Inside a calculation the helpers take the atoms'
``pbc`` unless given one.

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
import collections
import contextvars
import functools
import threading

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
from .boxes import data, lift, meta, recorded, unbox
from .ops.sparse import sparse_matmul_p
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

    In fractional coordinates ``s = d h⁻¹`` the image is ``(s − n) h`` with ``n`` integer
    along the periodic directions: ``n = round(s)``, which is the nearest image when the
    cell's vectors are orthogonal; in a skewed cell the images that rounding leaves longer
    than half the cell's smallest width are moved to the nearest one (searched in a
    Minkowski-reduced basis, as ASE's ``find_mic`` does, but right with mixed ``pbc`` too).
    A zero cell vector is completed (ASE's ``complete_cell``) along a direction that is not
    periodic, and refused along a periodic one. ``n`` is locally constant, so derivatives
    flow through ``d`` and ``cell`` only.
    """
    mask = _pbc(pbc)
    if not mask.any():
        return d
    h, orthogonal = _complete(_cell(cell), mask)
    s = d @ np.linalg.inv(h)
    return (s - _image_shift(s, h, mask, orthogonal)) @ h


def all_pairs(positions, cell=None, pbc=None, cutoff=None):
    """Every pair ``i < j`` once: ``(i, j, d)`` with ``d = r_j − r_i`` (the nearest image,
    as :func:`minimum_image`, when periodic). ``sum(u(|d|))`` is then the pair energy with
    no double counting. ``i`` and ``j`` are read-only (kept between calls per atom count).

    One image per pair is the periodic energy only for an interaction range at most half
    the cell's shortest periodic translation: beyond it a pair may have several images in
    range (and an atom see its own). Give the energy's ``cutoff`` to have that checked (a
    ``ValueError`` when it fails; in a skewed cell, pairs beyond it may then keep a
    farther image, which such an energy ignores); use :func:`neighbor_list` or a
    :class:`NeighborList` for small cells.
    """
    n = len(positions)
    i, j, B = _pairs(n, _float_dtype(positions))
    mask = _pbc(pbc) if cell is not None else np.zeros(3, bool)
    if not mask.any():
        return i, j, _differences(B, i, j, positions)
    h, orthogonal = _complete(_cell(cell), mask)
    if cutoff is not None:
        _check_cutoff(h, mask, cutoff)
    # In fractional coordinates, per atom: one n × 3 product instead of one per pair.
    ds = _differences(B, i, j, positions @ np.linalg.inv(h))
    return i, j, (ds - _image_shift(ds, h, mask, orthogonal, cutoff)) @ h


def _widths(h):
    """The distances between opposite faces of the cell ``h`` (rows a, b, c):
    ``|V| / |b × c|``, ``|V| / |c × a|``, ``|V| / |a × b|``."""
    cross = np.cross(h[[1, 2, 0]], h[[2, 0, 1]])
    return np.abs(np.linalg.det(h)) / np.sqrt(np.sum(cross * cross, axis=-1))


def _check_cutoff(h, mask, cutoff):
    # (a comparison of a recorded call's value: a guard under ad.jit, not one on the cell)
    shortest = lift(_shortest_period, h, mask)
    if not 2 * cutoff <= shortest:
        raise ValueError(
            f"all_pairs keeps one image per pair, which is the periodic energy only for a "
            f"cutoff at most half the cell's shortest periodic translation "
            f"({float(meta(shortest)):.6g} Å here); with cutoff {float(cutoff):.6g} some "
            "pairs have several images within range (and atoms may see their own): use "
            "neighbor_list or a NeighborList")


def _shortest_period(h, mask):
    """The length of the shortest lattice vector along the periodic directions (the first
    of ASE's Minkowski-reduced basis)."""
    from ase.geometry import minkowski_reduce
    reduced, _ = minkowski_reduce(np.asarray(h, dtype=float), pbc=mask)
    return np.asarray(np.min(np.sqrt(np.sum(reduced[mask] ** 2, axis=-1))))


def _cell(cell):
    """A plain cell as ASE reads one (3 × 3 rows, three lengths, or lengths and angles, an
    ``ase.cell.Cell``) as a 3 × 3 array; a tracked one must be 3 × 3."""
    if meta(cell) is cell:
        c = np.asarray(cell)
        if c.shape != (3, 3):
            from ase.cell import Cell
            c = Cell.new(c).array
        return c
    if np.shape(meta(cell)) != (3, 3):
        raise ValueError(f"a tracked cell must be 3 × 3 (rows a, b, c), got shape "
                         f"{np.shape(meta(cell))}")
    return cell


def _complete(cell, mask):
    """``(h, orthogonal)``: ``cell`` with its zero vectors completed (ASE's
    ``complete_cell``) where the direction is not periodic, so it can be inverted (a
    constant added: derivatives still flow to the given rows), and under ``ad.jit``
    whether its rows are orthogonal (one recorded call and a guard decide both; ``None``
    eagerly, where the shift decides on the values)."""
    if not recorded(cell):
        c = np.asarray(meta(cell))
        return (cell if c.any(1).all() else cell + _completion(c, mask)), None
    kind = int(lift(_cell_kind, cell, mask))
    return (cell if kind < 2 else cell + lift(_completion, cell, mask)), kind % 2 == 0


def _cell_kind(cell, mask):
    """2 × (a vector needs completing) + (its rows are not orthogonal)."""
    c = np.asarray(cell)
    full = c.any(1).all()
    h = c if full else c + _completion(c, mask)
    return np.asarray(2 * (not full) + (not _orthogonal(h)))


def _completion(cell, mask):
    c = np.asarray(cell)
    zero = ~c.any(1)
    if (zero & mask).any():
        raise ValueError(
            f"pbc is {mask.tolist()} but cell vector(s) {np.flatnonzero(zero & mask).tolist()}"
            " are zero: give the cell a length along every periodic direction, or set pbc "
            "False there")
    from ase.geometry import complete_cell
    return (complete_cell(c) - c).astype(c.dtype)


def _image_shift(s, h, mask, orthogonal, reach=None):
    """The integer shifts ``n`` (as floats, ``s``'s dtype) that take fractional
    displacements ``s`` to their nearest image ``(s − n) h``. Rounding is exact when the
    cell's vectors are orthogonal (under ``ad.jit`` it stays in the program, where the
    fused backend joins it to the elementwise work around it); in a skewed cell the
    rounded images are corrected (those within ``reach`` only, when given: farther ones
    may keep a farther image), from the plain values (one recorded call under ``ad.jit``,
    which each replay runs again)."""
    if orthogonal:
        shift = np.round(data(s))
        return shift if mask.all() else np.where(mask, shift, 0.0)
    return lift(_nearest_shift, s, h, mask, np.inf if reach is None else float(reach))


def _orthogonal(h):
    """Whether the rows of ``h`` are mutually orthogonal (to round-off)."""
    g = h @ h.T
    return np.all(np.abs(g - g * np.eye(3)) <= 1e-12 * np.max(np.abs(g)))


def _nearest_shift(s, h, mask, reach):
    """``_image_shift`` on plain values. In a skewed cell ``round(s)`` can leave an image
    ``d = (s − n) h`` longer than the nearest one, but only when ``|d|`` exceeds half the
    cell's smallest width ``w`` (another image differs by a lattice vector, at least ``w``
    long): those are searched among the 27 neighbours in a Minkowski-reduced basis, where
    the nearest image lies, and ``n`` is corrected by the integer ``(d − d_min) h⁻¹``.
    Nothing needs correcting when ``reach ≤ w/2``: an image that near is the rounded one."""
    if _orthogonal(h):
        shift = np.round(s)
        return shift if mask.all() else np.where(mask, shift, 0.0).astype(s.dtype)
    n = np.where(mask, np.round(s), 0.0).astype(s.dtype)
    hf = np.asarray(h, dtype=float)
    half = 0.5 * np.min(_widths(hf)[mask])
    if not len(n) or reach <= half:
        return n
    flat = n.reshape(-1, 3)
    d = (s.reshape(-1, 3) - flat) @ hf
    far = np.flatnonzero(np.einsum("pi,pi->p", d, d) > half * half)
    if len(far):
        v = _nearest_images(d[far], hf, mask)
        better = np.sum(v * v, axis=-1) < np.sum(d[far] ** 2, axis=-1) * (1 - 1e-12)
        far, v = far[better], v[better]
        flat[far] += np.round((d[far] - v) @ np.linalg.inv(hf))
    return n


def _nearest_images(d, h, mask):
    """The nearest periodic images of the vectors ``d`` (rows): wrapped in a
    Minkowski-reduced basis (ASE's ``minkowski_reduce``) of the periodic lattice, then the
    shortest of the wrapped vector and its 26 neighbours (or 8, or 2, with fewer periodic
    directions: the Voronoi-relevant vectors lie among them)."""
    from ase.geometry import minkowski_reduce
    R, _ = minkowski_reduce(h, pbc=mask)
    if not mask.all():
        # Non-periodic rows orthogonal to the periodic ones: wrapping then rounds the
        # orthogonal projection onto the periodic lattice, not an oblique one.
        q, _ = np.linalg.qr(R[mask].T, mode="complete")
        R = R.copy()
        R[~mask] = q[:, mask.sum():].T
    s = d @ np.linalg.inv(R)
    d0 = (s - np.where(mask, np.round(s), 0.0)) @ R
    k = np.array(np.meshgrid(*[[-1, 0, 1] if p else [0] for p in mask], indexing="ij"))
    x = d0[None] + (k.reshape(3, -1).T @ R)[:, None]         # (neighbours, vectors, 3)
    best = np.argmin(np.einsum("kvi,kvi->kv", x, x), axis=0)
    return x[best, np.arange(len(d))]


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
    ``cutoff`` takes ASE's forms: one distance, per-atom radii (a pair when closer than
    ``r_i + r_j``), or a dict ``{(Z_i, Z_j): distance}``, which needs ``numbers``.

    The list itself is found from the primal values, so it is held fixed while
    differentiating: exact wherever no pair crosses the cutoff. Under ``ad.jit`` the search
    is one recorded call that each replay runs again, as a :class:`NeighborList`'s is. For
    repeated calls (MD, relaxations) a :class:`NeighborList` keeps its list between calls.
    """
    mask, cell = _pbc(pbc), _cell(cell)
    if isinstance(cutoff, dict) and numbers is None:
        raise ValueError("a cutoff per pair of species needs numbers=")
    cutoff = cutoff if isinstance(cutoff, dict) or np.ndim(cutoff) else float(cutoff)
    if recorded((positions, cell)):
        search = functools.partial(_listed, mask=mask, cutoff=cutoff)
        return _replayed_pairs(positions, cell, lift(search, positions, cell) if numbers
                               is None else lift(search, positions, cell, numbers))
    i, j, S = _search(positions, cell, cutoff, mask, numbers)
    dtype = _float_dtype(positions)
    B = _difference_matrix(i, j, len(positions), dtype)
    return i, j, _displacements(positions, cell, B, S.astype(dtype), i, j)


def _listed(positions, cell, numbers=None, *, mask, cutoff):
    """``neighbor_list``'s search on plain values: ``(i, j, S, B, Bᵀ)``."""
    i, j, S = _search(positions, cell, cutoff, mask, numbers)
    dtype = _float_dtype(positions)
    B = _difference_matrix(i, j, len(positions), dtype)
    return i, j, S.astype(dtype), B, B.T


def _replayed_pairs(positions, cell, found):
    """``(i, j, D)`` from a recorded search's ``(i, j, S, B, Bᵀ)``: program values, so a
    replay reads the pairs of the configuration it is given, not those of its recording
    (a replay with another pair count records again: the count is a shape)."""
    i, j, S, B, BT = found
    if len(i) == 0:
        return i, j, positions[j] - positions[i] + S @ cell
    return i, j, sparse_matmul_p(positions, matrix=B, core=2, transpose=BT) + S @ cell


def _search(positions, cell, cutoff, mask, numbers=None):
    r = np.asarray(unbox(positions), dtype=float)
    h = np.asarray(unbox(cell), dtype=float)
    _completion(h, mask)        # (ASE would search a zero periodic vector as a unit one)
    atoms = Atoms(numbers=np.ones(len(r), int) if numbers is None else unbox(numbers),
                  positions=r, cell=h, pbc=mask)
    if not isinstance(cutoff, dict):
        cutoff = np.asarray(cutoff, dtype=float) if np.ndim(cutoff) else float(cutoff)
    return _ase_neighbor_list("ijS", atoms, cutoff)


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
        self._lock = threading.Lock()   # one list, shared by calculators in threads

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __call__(self, positions, cell, pbc=None):
        mask, cell = _pbc(pbc), _cell(cell)
        if recorded((positions, cell)):
            # Under ad.jit (``Calculator(jit=True)``): the list is found by one recorded
            # call that each replay runs again on the new positions.
            return _replayed_pairs(positions, cell, lift(self._pairs, positions, cell, mask))
        i, j, S, B = self._update(unbox(positions), unbox(cell), mask, _float_dtype(positions))
        return i, j, _displacements(positions, cell, B, S, i, j)

    def _pairs(self, positions, cell, mask):
        return self._update(positions, cell, mask, _float_dtype(positions), True)

    def _update(self, positions, cell, mask, dtype, transposed=False):
        """The pairs within the cutoff at these plain positions: ``(i, j, S, B)``, and
        ``Bᵀ`` after them when ``transposed``."""
        with self._lock:
            return self._update_locked(positions, cell, mask, dtype, transposed)

    def _update_locked(self, positions, cell, mask, dtype, transposed):
        r = np.ascontiguousarray(positions, dtype=float)
        h = np.ascontiguousarray(cell, dtype=float)
        key = (len(r), h.tobytes(), mask.tobytes())
        status = -1
        if self._key == key:
            # One pass: has an atom moved more than skin/2 (status -1), else has a pair
            # crossed the cutoff (1) or not (0); the new mask is written into ``keep``.
            keep = np.empty(len(self._i), bool)
            status = _cutoff_pass()(r, self._r0, h, self._i, self._j, self._S,
                                    self.cutoff ** 2, (0.5 * self.skin) ** 2, keep,
                                    self._keep)
        if status < 0:
            self._i, self._j, S = _search(r, h, self.cutoff + self.skin, mask)
            self._S = np.ascontiguousarray(S, dtype=float)
            self._key, self._r0 = key, r.copy()
            self.rebuilds += 1
            D0 = r[self._j] - r[self._i] + self._S @ h
            keep = np.einsum("pi,pi->p", D0, D0) < self.cutoff ** 2
            status = 1
        # The pairs within the cutoff change only when one crosses it: keep them (and
        # their difference matrix) until the mask differs.
        if status or self._kept[0] != dtype:
            i, j, S = self._i[keep], self._j[keep], self._S[keep]
            i.setflags(write=False)
            j.setflags(write=False)
            self._keep = keep
            B = _difference_matrix(i, j, len(r), dtype)
            self._kept = (dtype, i, j, S.astype(dtype), B, B.T)
        return self._kept[1:] if transposed else self._kept[1:5]


def _cutoff_pass_numpy(r, r0, h, i, j, S, rc2, half_skin2, keep, prev):
    if np.max(np.sum((r - r0) ** 2, axis=-1), initial=0.0) > half_skin2:
        return -1
    D = r[j] - r[i] + S @ h
    keep[:] = np.einsum("pi,pi->p", D, D) < rc2
    return int(not np.array_equal(keep, prev))


def _cutoff_pass_loops(r, r0, h, i, j, S, rc2, half_skin2, keep, prev):
    for a in range(r.shape[0]):
        d = 0.0
        for k in range(3):
            d += (r[a, k] - r0[a, k]) ** 2
        if d > half_skin2:
            return -1
    changed = 0
    for p in range(i.shape[0]):
        a, b = i[p], j[p]
        d = 0.0
        for k in range(3):
            x = r[b, k] - r[a, k] + S[p, 0] * h[0, k] + S[p, 1] * h[1, k] + S[p, 2] * h[2, k]
            d += x * x
        keep[p] = d < rc2
        if keep[p] != prev[p]:
            changed = 1
    return changed


_PASS = []


def _cutoff_pass():
    """The Verlet list's per-call check, compiled by Numba once (its loops are one pass
    over the atoms and one over the pairs, against several NumPy passes); NumPy's where
    Numba is missing or switched off (``AUTODIFF_JIT_NUMBA=0``)."""
    if not _PASS:
        from .fusion import loops
        _PASS.append(loops(_cutoff_pass_loops) or _cutoff_pass_numpy)
    return _PASS[0]


_NO_STRAIN = np.zeros((3, 3))
_NO_STRAIN.setflags(write=False)


def _volume(cell):
    """``|det h|``, ASE's ``atoms.get_volume()``, as a triple product of the rows."""
    (a, b, c), (d, e, f), (g, h, i) = cell.tolist()
    return abs(a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g))


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
    positions: :func:`all_pairs`, and a :class:`NeighborList`, whose search each replay
    runs again on the new positions (one recorded call), so the program reads the current
    pairs. The number of pairs within the cutoff is a shape of the program: a replay with
    another count records again. Where that keeps happening (molecular dynamics, where a
    pair crosses the cutoff every few steps), the calculator runs eagerly for a while
    (``JIT_BACKOFF`` calls) before it tries the recordings again, so it is never much
    slower than ``jit=False``. :func:`neighbor_list`'s search is one recorded call too
    (ASE's search at each replay); a :class:`NeighborList` keeps its list between calls.
    """
    #: ``jit=True``: when more than half of the last ``JIT_WINDOW`` calls recorded, the
    #: next ``JIT_BACKOFF`` calls run eagerly. A short window: a recording costs several
    #: eager calls, so three in four calls recording is already a loss to stop.
    JIT_WINDOW, JIT_BACKOFF = 4, 64
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
        self._build()

    def _build(self):
        self._eager = (value_and_grad(self._strained, argnums=(0, 1)),
                       value_and_grad(self._unstrained))
        self._sweep, self._sweep_r = self._eager
        if self.jit:        # pbc (a tuple of bools) is static: the helpers read it
            self._sweep = _jit(self._eager[0], static_argnums=(4,))
            self._sweep_r = _jit(self._eager[1], static_argnums=(3,))
        self._recorded = collections.deque(maxlen=self.JIT_WINDOW)
        self._eager_left = 0

    # Pickled (multiprocessing, copies) without the sweeps, which are rebuilt: a jitted
    # one records again. ``energy`` itself must be picklable (a module-level function).
    _UNPICKLED = ("_eager", "_sweep", "_sweep_r", "_recorded", "_eager_left")

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._build()

    def _run(self, periodic, *args):
        """The value-and-gradient sweep, recorded and replayed with ``jit=True`` unless the
        recordings are not being reused (see the class docstring)."""
        sweep = self._sweep if periodic else self._sweep_r
        if not self.jit or self._eager_left:
            self._eager_left = max(0, self._eager_left - 1)
            return self._eager[0 if periodic else 1](*args)
        before = sweep.recordings
        out = sweep(*args)
        self._recorded.append(sweep.recordings != before)
        if len(self._recorded) == self.JIT_WINDOW and \
                2 * sum(self._recorded) > self.JIT_WINDOW:
            self._eager_left = self.JIT_BACKOFF
            self._recorded.clear()
            sweep.clear_cache()     # (the recordings of counts gone by)
        return out

    def _call(self, positions, cell, numbers, pbc):
        pbc = np.array(pbc, dtype=bool)
        if self._takes_pbc:
            out = self.energy(positions, cell, numbers, pbc=pbc)
        else:
            out = self.energy(positions, cell, numbers)
        if np.ndim(meta(out)) != 0:
            raise TypeError(f"the energy must return a scalar (a float or a 0-d array), "
                            f"got an array of shape {np.shape(meta(out))}; sum it, or "
                            "index a single element")
        kind = np.result_type(meta(out)).kind
        if kind in "iu":        # a constant (integers carry no derivative): zero forces
            return float(out)
        if kind != "f":
            raise TypeError(f"the energy must be real (eV), got a {np.result_type(meta(out))}"
                            " value")
        return out

    def _strained(self, positions, strain, cell, numbers, pbc):
        # The strain acts on positions and cell alike; at ε = 0 the values are unchanged.
        deform = np.eye(3) + strain
        return self._call(positions @ deform.T, cell @ deform.T, numbers, pbc)

    def _unstrained(self, positions, cell, numbers, pbc):
        return self._call(positions, cell, numbers, pbc)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        if atoms is None:
            raise ValueError("no atoms to calculate: attach the calculator (atoms.calc = "
                             "calc) and ask the atoms (atoms.get_forces()), or pass them")
        properties = ("energy",) if properties is None else properties
        positions = np.array(atoms.positions, dtype=float)
        cell = np.array(atoms.cell.array, dtype=float)
        numbers = np.array(atoms.numbers)
        pbc = tuple(np.broadcast_to(atoms.pbc, (3,)).tolist())
        periodic_cell = bool(cell.any(1).all())         # ASE's cell.rank == 3
        if "stress" in properties and not periodic_cell:
            raise PropertyNotImplementedError(
                "stress needs a three-dimensional cell (atoms.cell.rank == 3)")
        token = _current_pbc.set(np.array(pbc, dtype=bool))
        try:
            if periodic_cell:
                energy, (grad_r, grad_e) = self._run(True, positions, _NO_STRAIN, cell,
                                                     numbers, pbc)
            else:
                energy, grad_r = self._run(False, positions, cell, numbers, pbc)
                grad_e = None
        finally:
            _current_pbc.reset(token)
        energy = float(np.asarray(energy))
        if not np.isfinite(energy):
            raise FloatingPointError(f"the energy is {energy} at these positions")
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["forces"] = 0.0 - np.asarray(grad_r, dtype=float)  # (no −0.0)
        if grad_e is not None:
            g = np.asarray(grad_e, dtype=float)
            self.results["stress"] = _voigt(0.5 * (g + g.T)) / _volume(cell)
