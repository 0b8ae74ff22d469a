"""The fused backend of recorded array programs: chains of elementwise primitives in one loop.

A replayed ``ad.jit`` program of arrays makes one full pass over memory per instruction, and
the reverse sweep of a gradient is mostly elementwise instructions (the rules' products with
the primitives' declared partials, recorded like any other call). This backend finds the
maximal connected groups of elementwise instructions over arrays of one shape and runs each
as one compiled loop: the values only the group reads stay in registers, the ones read
outside it (or returned) are written once. A full ``sum`` (or a sum over the last axis) of a
group's value closes it as an accumulator, so ``np.sum(f(x))`` never materialises ``f(x)``.
The loop bodies are not written by hand: each instruction's scalar code is the primitive's
own implementation ufunc (``np.sin(x)``, ``x * y``), and the cotangent loops are the
instructions the partials recorded during the reverse sweep.

Four steps, each a function of its own:

* ``groups(program, values)`` (target-neutral): which instructions fuse, from the
  instruction list and the values of one probe replay (shapes, dtypes, layouts). A group
  (:class:`Fused`) lists its members in program order, its inputs (arrays that broadcast to
  its shape, 0-d values, constants of one number become literals), its outputs, its
  accumulators, and the scalar instructions reading its sums that run right after it.
  Besides the elementwise primitives it takes ``index_add`` of a 1-d slice (the transpose
  of ``x[a:b:c]``, read at shifted positions), so a gradient's scatter-adds fuse with the
  adds combining them.
* ``_schedule(program, groups)`` (target-neutral): where each loop runs: after its last
  member, before the first outside instruction reading it, before the loops reading it.
* ``_emit_cpu(group)``: the loop's source for Numba (``njit(cache=True)``): one flat loop,
  or one loop per axis when an input broadcasts or is strided. A CUDA emitter for
  ``autodiff.gpu`` is one more function of the same ``Fused`` description: the body lines
  unchanged, the loops replaced by ``i = cuda.grid(1)`` with a bounds check (the
  multi-index unravelled from ``i``), the block sums by a grid-stride block reduction;
  ``_compiled`` would take the emitter (and the device's compile call) as arguments.
* ``lower_fused(program, leaves)``: the replay: the plain backend's generated Python
  function (``program._generate``) in which each group is one call of its kernel.

Tiered as the scalar backend: ``Program`` calls ``lower_fused`` once a program has replayed
``program.NUMBA_AFTER`` times on the plain backend, so a function called a few times never
imports Numba. Kernels are keyed by their source's hash: the source is written to
``$AUTODIFF_CACHE/fused/<hash>.py`` (default ``~/.cache/autodiff``) and compiled with
Numba's on-disk cache, so equal chains share a kernel and a second process does not
compile again. Without Numba, with ``AUTODIFF_JIT_NUMBA=0``, or without a writable cache
directory, programs stay on the plain backend. Semantics are NumPy's: the result dtype of
every instruction (float32 stays float32, Python scalars are weak), ``error_model="numpy"``
(1/0 is inf, log(-1) is nan), NaN-propagating ``maximum``/``minimum``; sums accumulate in
float64 in blocks, then add the blocks with NumPy's pairwise sum (as accurate as NumPy's).
Each kernel is checked once, at lowering, against the probe replay's values; a kernel that
fails to compile or disagrees is left out (its instructions stay NumPy calls), with a
warning.
"""
import hashlib
import importlib.util
import math
import operator
import os
import sys
import threading
import types as _types
import warnings

import numpy as np

from . import compiled as _compiled_backend
from . import program as _program
from .core import ufunc_table
from .program import CALL, FUNC, GUARD, ITEM, GuardMiss, Slot, _same, reads
from .program import fill as _fill

__all__ = ["lower_fused", "groups", "kernels", "available", "gather", "loops"]

#: Blocks of a sum: each is accumulated in a register, the blocks by NumPy's pairwise sum.
BLOCK = 1024

# ----- The fusible primitives: scalar code for one element -----
# Operators (their implementation is the Python operator, NumPy's ufunc on arrays).
_OPERATORS = {"add": "({0} + {1})", "subtract": "({0} - {1})", "multiply": "({0} * {1})",
              "divide": "({0} / {1})", "negative": "(-{0})", "positive": "{0}",
              "square": "({0} * {0})", "absolute": "abs({0})", "reciprocal": "({1} / {0})",
              # NumPy's sign: 0 for both zeros, NaN for NaN (no derivative: a mask-like
              # value inside cotangent chains, abs's partial).
              "sign": "({1} if {0} > {2} else (-{1} if {0} < {2} else "
                      "({2} if {0} == {2} else {0})))",
              # NumPy's loops: maximum/minimum propagate NaN (the first operand's on ties).
              "maximum": "({0} if ({0} >= {1} or {0} != {0}) else {1})",
              "minimum": "({0} if ({0} <= {1} or {0} != {0}) else {1})",
              # np.maximum(x, 0)
              "relu": "({0} if ({0} >= {2} or {0} != {0}) else {2})"}
_COMPARISONS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=",
                "equal": "==", "not_equal": "!="}
#: Primitives whose implementation ufunc Numba compiles on scalars (``np.<name>(x)``).
_UFUNCS = {"exp", "log", "log1p", "expm1", "sqrt", "sin", "cos", "tan", "arcsin", "arccos",
           "arctan", "sinh", "cosh", "tanh", "arctan2", "hypot"}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_BOOL = np.dtype(bool)
_NUMBERS = (int, float, bool)


#: Whether the fused backend may be used: Numba installed and ``AUTODIFF_JIT_NUMBA`` not 0
#: (the scalar backend's switch).
available = _compiled_backend.available


_ufunc_names = {}


def _ufunc_of(prim):
    """The name of the NumPy ufunc a primitive implements (the loop calls ``np.<name>``)."""
    name = _ufunc_names.get(prim)
    if name is None:
        u = prim.impl if isinstance(prim.impl, np.ufunc) else next(
            (u for u, p in ufunc_table.items() if p is prim), None)
        name = _ufunc_names[prim] = "" if u is None else u.__name__
    return name


# ----- The probe: one replay that keeps every value's metadata -----
_CHECKS = {"value": _same, "shape": lambda v, k: np.shape(v) == k,
           "bool": lambda v, k: bool(v) == k, "int": lambda v, k: int(v) == k,
           "index": lambda v, k: operator.index(v) == k}




def _probe(program, leaves):
    """Every slot's value on these inputs (``GuardMiss`` where a guard fails)."""
    env = dict(enumerate(leaves))
    for k, (kind, out, fn, args, kw) in enumerate(program.instructions):
        a = _fill(args, env)
        if kind == GUARD:
            if not _CHECKS[fn](a[0], kw):
                raise GuardMiss(k)
            continue
        if kind == CALL:
            v = fn.impl(*a, **_fill(kw, env))
        elif kind == FUNC:
            v = fn(*a, **_fill(kw, env))
        elif kind == ITEM:
            v = a[0][fn]
        else:
            v = a[0]
        env[out] = v
    return env


# ----- Grouping (target-neutral) -----
class Fused:
    """One fused group: what any target's emitter needs.

    ``shape``/``size``: the common shape of the members' values. ``inputs``: the argument
    templates (a ``Slot`` or a constant) with their ``kinds``: ``"a"`` (an array that
    broadcasts to ``shape``), ``"g"`` (a 1-d array an ``index_add`` reads at shifted
    positions) or ``"s"`` (a 0-d value); ``in_dtypes``, ``in_shapes``, and ``flat`` (an
    array of the group's shape read as one flat run; else by its multi-index). ``body``:
    ``(slot, primitive name, operands, dtype, computation dtype)`` per member in program
    order, ``operands`` as ``("r", slot)`` (a register), ``("a"|"g"|"s", j)`` (input
    ``j``), ``("m", (j, number))`` (a constant equal to that number times constant input
    ``j``, bit for bit: read once) or ``("l", number)``, each with its dtype (for ``index_add`` the fifth entry is
    its slice's ``(start, stop, step)``). ``outputs``: the member slots read outside the
    group. ``sums``: ``(slot, (operand, its dtype), dtype, type, shape)`` of the accumulators;
    ``row``: the length of the summed rows (``size`` for a full sum). ``position``: the
    index of the instruction the group's call replaces; ``members``: the instructions';
    ``deferred``: the scalar instructions reading its sums that run right after it.
    ``place``: ``{j: (M, G, OFF, total, shape)}`` for outputs the loop writes straight
    into their places in one concatenated array (see :func:`_placed`), else empty.
    A constant input of small integers is passed as ``int8`` (its ``in_dtypes`` entry
    stays the values' dtype: the loop converts, exactly); see :func:`_small`.
    """
    __slots__ = ("shape", "size", "inputs", "kinds", "in_dtypes", "in_shapes", "flat", "body",
                 "outputs", "sums", "row", "position", "members", "deferred", "place")


class _Group:
    __slots__ = ("members", "shape", "sealed", "row", "deferred", "succ")

    def __init__(self, shape):
        self.members, self.shape, self.sealed, self.row = [], shape, False, None
        self.deferred = []      # scalar instructions of its sums, moved after its loop
        self.succ = set()       # the groups with a member reading one of its values

    def _downstream(self, start):
        """Every group reachable from ``start`` through the readers (``succ``), once."""
        stack, seen = list(start), set()
        while stack:
            g = stack.pop()
            if id(g) not in seen:
                seen.add(id(g))
                yield g
                stack.extend(g.succ)

    def reaches(self, other):
        """Whether ``other`` reads (through groups) a value of this group."""
        return any(g is other for g in self._downstream([self]))

    def open(self):
        """Whether every group reading this one's values may still run later."""
        return not any(g.sealed for g in self._downstream(self.succ))


def _meta(v):
    """(shape, dtype) of a value that may enter a loop, else None."""
    t = type(v)
    if t is np.ndarray or isinstance(v, np.generic):
        return v.shape, v.dtype
    if t in _NUMBERS:
        return (), None             # a weak Python scalar
    return None


def _operand_ok(v, shape):
    """An operand a loop can read: a 0-d number, or a float or boolean array that
    broadcasts to the group's shape (read through its strides, never copied)."""
    m = _meta(v)
    if m is None:
        return False
    s, dt = m
    if s == ():
        return dt is None or dt in _FLOATS or dt == _BOOL or dt.kind in "iu"
    if dt not in _FLOATS and dt != _BOOL:
        return False
    return len(s) <= len(shape) and all(a in (1, b) for a, b in zip(s[::-1], shape[::-1]))


def _pad(ins, env):
    """``(start, stop, step)`` of an ``index_add`` that pads a 1-d array into a 1-d zero
    array (the transpose of a slice ``x[start:stop:step]``), else None."""
    kind, out, fn, args, kw = ins
    if len(args) != 1 or type(args[0]) is not Slot or sorted(kw) != ["idx", "shape"]:
        return None
    g, idx, shape = env[args[0].index], kw["idx"], kw["shape"]
    if type(g) is not np.ndarray or g.ndim != 1 or g.dtype not in _FLOATS or \
            type(idx) is not tuple or len(idx) != 1 or type(idx[0]) is not slice or \
            type(shape) is not tuple or len(shape) != 1 or not shape[0]:
        return None
    sl = idx[0]
    if not all(x is None or type(x) is int for x in (sl.start, sl.stop, sl.step)):
        return None
    start, stop, step = sl.indices(shape[0])
    if step <= 0 or len(range(start, stop, step)) != g.shape[0]:
        return None
    return start, stop, step


def _fusible(ins, env):
    """``(shape, row)`` when the instruction may join a loop (``row`` for a sum: the
    summed rows' length), else None."""
    kind, out, fn, args, kw = ins
    if kind != CALL:
        return None
    name = fn.name
    v = env[out]
    if name == "sum":
        x = env[args[0].index] if len(args) == 1 and type(args[0]) is Slot else None
        if x is None or type(x) is not np.ndarray or x.dtype not in _FLOATS or x.ndim == 0 \
                or x.size == 0 or sorted(kw) != ["axis", "keepdims"] or \
                getattr(v, "dtype", None) != x.dtype:
            return None
        axis = kw["axis"]
        axes = range(x.ndim) if axis is None else axis if type(axis) is tuple else (axis,)
        if not all(type(a) is int for a in axes):
            return None
        axes = sorted({a % x.ndim for a in axes})
        if axes == list(range(x.ndim)):
            return x.shape, x.size
        if axes == [x.ndim - 1]:
            return x.shape, x.shape[-1]
        return None
    if name == "index_add":
        return (v.shape, None) if _pad(ins, env) is not None else None
    if kw or type(v) is not np.ndarray or v.ndim == 0 or v.size == 0:
        return None
    if v.dtype not in _FLOATS and not (v.dtype == _BOOL and name in _COMPARISONS):
        return None
    if name == "where":
        if len(args) != 3 or getattr(_fill(args[0], env), "dtype", None) != _BOOL:
            return None
    elif name == "power":
        if len(args) != 2 or type(args[1]) not in (int, float):
            return None
    elif name in _COMPARISONS:
        vals = [_fill(a, env) for a in args]
        if len(args) != 2 or np.result_type(*vals) not in _FLOATS:
            return None
    elif name not in _OPERATORS and not (fn.partials is not None and
                                         _ufunc_of(fn) in _UFUNCS):
        return None
    for a in args:
        if type(a) is not Slot and type(a) not in _NUMBERS and not _operand_ok(a, v.shape):
            return None
        if type(a) is Slot and not _operand_ok(env[a.index], v.shape):
            return None
    return v.shape, None


def _zero_d(v):
    return type(v) in _NUMBERS or (isinstance(v, (np.ndarray, np.generic)) and v.ndim == 0)


def _deferrable(ins, read, env, owner, acc, later):
    """The one unsealed group whose sums a scalar instruction reads, when the instruction
    may run after that group's loop instead (0-d values only, no guard), else None."""
    kind, out = ins[0], ins[1]
    if kind not in (CALL, FUNC) or not read or not _zero_d(env[out]):
        return None
    groups = set()
    for s in read:
        if not _zero_d(env[s]):
            return None
        g = later.get(s) if s in later else owner.get(s) if s in acc else None
        if g is not None and not g.sealed:
            groups.add(g)
    return groups.pop() if len(groups) == 1 else None


def groups(program, env, strict=False):
    """The fused groups of ``program`` (a list of :class:`Fused`), found in one pass over
    its instructions with the values ``env`` of a probe replay.

    An instruction joins the unsealed groups of the values it reads (merging them) when it
    is fusible with their shape; any other reader of a group's value seals the group (no
    member may come after an outside reader), except (unless ``strict``) a member of
    another group: that one only has to run after it (``_schedule`` orders the loops), so
    a gradient's scatter-adds (``index_add``, in a loop of their own) do not end the loop
    that computes their operands. A group grows only while every group reading it may
    still run later, and never into a cycle. Groups of fewer than two members are dropped.
    """
    ins_list = program.instructions
    owner = {}          # slot -> its group
    acc = set()         # slots that are a group's accumulator
    later = {}          # slot -> the group after whose loop its (deferred) instruction runs
    shares = {}         # slot computed outside every group -> the groups reading it
    found = []
    for k, ins in enumerate(ins_list):
        read = reads(ins)
        f = _fusible(ins, env)
        g = _deferrable(ins, read, env, owner, acc, later)
        if g is not None:
            # A scalar computed from a sum (``0.5 * np.sum(e)``, a loss's terms) does not
            # end the loop: it moves after it.
            g.deferred.append(k)
            later[ins[1]] = g
            continue
        join = []
        if f is not None:
            shape, row = f
            blocked = set()     # groups this instruction may not join
            for s in read:
                g = owner.get(s)
                if g is None:
                    if s in later:      # a scalar computed after the loop
                        blocked.add(later[s])
                    continue
                # A member cannot read an accumulator of its own group (the sum is not
                # complete inside the loop), nor join a sealed group or another shape.
                if s in acc or g.sealed or g.shape != shape:
                    blocked.add(g)
                elif g not in join:
                    join.append(g)
            join = [g for g in join if g not in blocked and g.open()]
            if ins[2].name == "index_add":
                join = []       # it reads its operand shifted: never in the same loop
            if len(({g.row for g in join} | {row}) - {None}) > 1:
                join = []       # sums over rows of different lengths: two loops
            if any(a is not b and a.reaches(b) for a in join for b in join):
                join = []       # one reads the other through a third: not one loop
            if not join:
                # Siblings: a loop already reading one of the same inputs takes it too
                # (the forward chain and a cotangent chain of one slice, say).
                for s in read:
                    for g in shares.get(s, ()):
                        if not g.sealed and g.shape == shape and g not in blocked and \
                                g.open() and len({g.row, row} - {None}) <= 1:
                            join = [g]
                            break
                    if join:
                        break
        target = None
        if f is not None:
            if join:
                target = join[0]
                for h in join[1:]:
                    target.members += h.members
                    for m in h.members:
                        owner[ins_list[m][1]] = target
                    if h.row is not None:
                        target.row = h.row
                    target.deferred += h.deferred
                    for m in h.deferred:
                        later[ins_list[m][1]] = target
                    target.succ |= h.succ
                    for q in found:
                        if h in q.succ:
                            q.succ.discard(h)
                            q.succ.add(target)
                    for lst in shares.values():
                        if h in lst:
                            lst[:] = [target if x is h else x for x in lst]
                    found.remove(h)
                target.succ.discard(target)
                target.members.sort()
            else:
                target = _Group(shape)
                found.append(target)
        for s in read:
            g = owner.get(s) or later.get(s)
            if g is None or g is target:
                continue
            if target is not None and not strict and not target.reaches(g):
                g.succ.add(target)      # read by a member of another loop: runs before it
            else:
                g.sealed = True
        if f is None:
            continue
        g = target
        g.members.append(k)
        for s in read:
            if s not in owner and s not in later:
                lst = shares.setdefault(s, [])
                if g not in lst:
                    lst.append(g)
        owner[ins[1]] = g
        if row is not None:
            g.row = row
            acc.add(ins[1])
    out = []
    for g in found:
        if len(g.members) >= 2:
            out.append(_describe(program, env, g, owner, acc))
    return out


def _describe(program, env, g, owner, acc):
    ins_list = program.instructions
    mine = {ins_list[m][1] for m in g.members}
    fz = Fused()
    fz.shape, fz.size, fz.members = g.shape, int(np.prod(g.shape)), list(g.members)
    fz.position = g.members[-1]
    fz.row = g.row
    fz.deferred = sorted(g.deferred)
    fz.place = {}
    fz.inputs, fz.kinds, fz.in_dtypes, fz.body, fz.sums = [], [], [], [], []
    fz.in_shapes, fz.flat = [], []
    keyed = {}
    consts = []         # (input index, the constant array) of the constants read so far

    def operand(a, gather=False):
        if gather:          # an array read at shifted positions (index_add)
            key = ("g", a.index) if type(a) is Slot else ("gc", id(a))
            if key not in keyed:
                v = env[a.index] if type(a) is Slot else a
                keyed[key] = len(fz.inputs)
                fz.inputs.append(a)
                fz.kinds.append("g")
                fz.in_dtypes.append(v.dtype)
                fz.in_shapes.append(v.shape)
                fz.flat.append(True)
            j = keyed[key]
            return ("g", j), fz.in_dtypes[j]
        if type(a) is Slot and a.index in mine:
            return ("r", a.index), env[a.index].dtype
        if type(a) in _NUMBERS:
            return ("l", a), None
        v = env[a.index] if type(a) is Slot else a
        if type(a) is np.ndarray and a.size and a.dtype in _FLOATS + (_BOOL,) and \
                bool(np.all(a == a.flat[0])) and (a.dtype == _BOOL or bool(
                    np.all(np.signbit(a) == np.signbit(a.flat[0])))):
            # A constant array of one number (the seed of a sum's cotangent, ones): a
            # literal of its dtype, so the loop does not read it.
            return ("l", a.flat[0].item()), a.dtype
        key = ("v", a.index) if type(a) is Slot else ("c", id(a))
        if key not in keyed and type(a) is np.ndarray:
            for j, b in consts:
                lam = _ratio(a, b)
                if lam is not None:     # a = lam * b: the loop reads b once for both
                    return ("m", (j, lam)), a.dtype
        if key not in keyed:
            keyed[key] = len(fz.inputs)
            small = _small(a) if type(a) is np.ndarray else None
            if type(a) is np.ndarray:
                consts.append((keyed[key], a))
            fz.inputs.append(a if small is None else small)
            s, dt = _meta(v)
            fz.kinds.append("s" if s == () else "a")
            fz.in_dtypes.append(dt if dt is not None else np.result_type(v))
            v = v if small is None else small       # its layout is the int8 copy's
            fz.in_shapes.append(s)
            fz.flat.append(s == g.shape and (len(s) == 1 or v.flags.c_contiguous))
        j = keyed[key]
        return (fz.kinds[j], j), fz.in_dtypes[j]

    for m in g.members:
        kind, out, fn, args, kw = ins_list[m]
        v = env[out]
        if fn.name == "index_add":
            fz.body.append((out, "index_add", [operand(args[0], True)], v.dtype,
                            _pad(ins_list[m], env)))
            continue
        ops = [operand(a) for a in args]
        if out in acc:
            fz.sums.append((out, operand(args[0]), v.dtype, type(v), np.shape(v)))
            continue
        name = fn.name if fn.name in _OPERATORS or fn.name in _COMPARISONS or \
            fn.name in ("where", "power") else _ufunc_of(fn)
        fz.body.append((out, name, ops, v.dtype,
                        np.result_type(*[_fill(a, env) for a in args])
                        if fn.name in _COMPARISONS else v.dtype))
    outside = set()
    members = set(g.members)
    for k, ins in enumerate(ins_list):
        if k not in members:
            outside |= reads(ins) & mine
    for o in program.outputs:
        if type(o) is Slot and o.index in mine:
            outside.add(o.index)
    fz.outputs = [ins_list[m][1] for m in g.members
                  if ins_list[m][1] in outside and ins_list[m][1] not in acc]
    return fz


# ----- Constants: the seeds' folded values, read cheaply -----
#: Constant arrays of at least this many elements are checked for the forms below.
SMALL_MIN = 4096
_I8 = np.dtype(np.int8)


def _small(a):
    """``a`` as ``int8`` when its values are small integers (no ``-0.0``), else ``None``.
    The constants a program folds from seeds (the compressed sweep's indicator directions
    and their stencils: 0, 1, -4, ...) are most of its memory traffic; as ``int8`` the loop
    streams one byte per element instead of eight and converts it, exactly."""
    if a.dtype not in _FLOATS or a.size < SMALL_MIN:
        return None
    if not bool(np.all(np.abs(a) <= 127)):          # NaN fails too
        return None
    a = np.ascontiguousarray(a)     # a seed's view (s[:, 0]) is strided
    b = a.astype(_I8)
    bits = np.dtype(f"u{a.dtype.itemsize}")
    if not np.array_equal(b.astype(a.dtype).view(bits), a.view(bits)):
        return None                                 # fractions, or a -0.0
    return b


def _ratio(a, b):
    """The number ``lam`` with ``lam * b == a`` bit for bit (NumPy's product in ``a``'s
    dtype, which the loop repeats), or ``None``: the seeds' constants scaled by the
    function's coefficients (``-4.4 * s`` beside ``s``) are then one array read."""
    if a.dtype != b.dtype or a.shape != b.shape or a.size < SMALL_MIN:
        return None
    a0, b0 = a.flat[:SMALL_MIN], b.flat[:SMALL_MIN]     # the start: a cheap first look
    nz = np.flatnonzero(b0)
    if nz.size == 0:
        return None
    lam = a.dtype.type(a0[nz[0]] / b0[nz[0]])
    if not np.isfinite(lam):
        return None
    bits = np.dtype(f"u{a.dtype.itemsize}")
    with np.errstate(all="ignore"):
        if not np.array_equal((lam * b0).view(bits), a0.view(bits)):
            return None         # most pairs of a program's constants end here
        fa, fb = np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1)
        if not np.array_equal((lam * fb).view(bits), fa.view(bits)):
            return None
    return float(lam)


# ----- The CPU emitter (Numba) -----
def _lit(x, dt):
    """A Python number as a literal of dtype ``dt`` inside the loop."""
    if dt == _BOOL:
        return repr(bool(x))
    x = float(x)
    if math.isnan(x):
        s = "np.nan"
    elif math.isinf(x):
        s = "np.inf" if x > 0 else "(-np.inf)"
    else:
        s = repr(x)
    return s if dt == np.float64 else f"np.{dt.name}({s})"


def _cast(expr, have, want):
    if have == want:
        return expr
    return f"np.{want.name}({expr})"


def _nested(fz):
    """Whether the loop runs over the multi-index (an input broadcasts or is strided)."""
    return not all(f for f, k in zip(fz.flat, fz.kinds) if k == "a")


def _emit_cpu(fz):
    """The source of a Numba kernel for ``fz``.

    Flat (every array input is a run of the group's shape): ``kernel(n, *inputs,
    *outputs)`` over ``n`` elements. Nested (an input broadcasts, or is a strided view):
    ``kernel(d0, …, d_{D-1}, *inputs, *outputs)``, one loop per axis, the broadcast inputs
    indexed by their own multi-index (0 on a broadcast axis). With sums the innermost run
    (``row`` elements: the group for a flat full sum, else the last axis) is cut into
    ``nb`` blocks after the sizes, each block's float64 sum written to a ``partials``
    array after the outputs. The sizes are arguments, so one kernel serves every shape of
    the same rank and layout.

    In a nested loop each row's arrays are 1-d views made once per row (``rows``), read
    and written by the innermost loop's variable alone: LLVM knows it is nonnegative, so
    Numba's wraparound of a negative index folds away and the loop vectorises with
    contiguous loads and stores. Indexed by ``r·d + j`` instead, every lane keeps its
    select, the accesses become gathers and scatters (measured 3.5× slower on the
    compressed sweep of a 2-D stencil)."""
    nested = _nested(fz)
    D = len(fz.shape)
    last = f"d{D - 1}"
    rows = []           # nested: the row views, made at the row's start (base w = r·d)
    names = [f"s{j}" if k == "s" else f"a{j}" for j, k in enumerate(fz.kinds)]
    outs = [f"o{j}" for j in range(len(fz.outputs))]
    parts = [f"p{j}" for j in range(len(fz.sums))]
    body = []
    loaded = set()
    dtypes = {}
    reg = {}

    def index(j):
        if not nested or fz.flat[j]:
            return "i"
        s = (1,) * (D - len(fz.in_shapes[j])) + fz.in_shapes[j]
        return ", ".join("0" if a == 1 and b != 1 else f"j{k}"
                         for k, (a, b) in enumerate(zip(s, fz.shape)))

    def ref(j):
        """Array input ``j``'s element in the loop (through its row view when nested)."""
        if not nested:
            return f"a{j}[i]"
        if fz.flat[j]:
            rows.append(f"A{j} = a{j}[w:w + {last}]")
            return f"A{j}[j{D - 1}]"
        at = index(j).split(", ")
        if at[-1] != f"j{D - 1}":       # broadcast along the row: one element per row
            return f"a{j}[{index(j)}]"
        rows.append(f"A{j} = a{j}[{', '.join(at[:-1])}]" if D > 1 else f"A{j} = a{j}")
        return f"A{j}[j{D - 1}]"

    def get(op, dt, want):
        kind, x = op
        if kind == "l":
            return _lit(x, want)
        if kind == "r":
            return _cast(reg[x], dtypes[x], want)
        if kind == "m":
            j, lam = x
            return _cast(f"({_lit(lam, dt)} * {get(('a', j), dt, dt)})", dt, want)
        if kind == "a" and x not in loaded:
            loaded.add(x)
            body.append(f"x{x} = np.{fz.in_dtypes[x].name}({ref(x)})"
                        if type(fz.inputs[x]) is np.ndarray and fz.inputs[x].dtype == _I8
                        else f"x{x} = {ref(x)}")
        return _cast(f"x{x}" if kind == "a" else f"s{x}", dt, want)

    for out, name, ops, dt, cd in fz.body:
        if name in _COMPARISONS:
            a, b = (get(o, d, cd) for o, d in ops)
            code = f"({a} {_COMPARISONS[name]} {b})"
        elif name == "where":
            c = get(*ops[0], _BOOL)
            a, b = (get(o, d, dt) for o, d in ops[1:])
            code = f"({a} if {c} else {b})"
        elif name == "index_add":
            (_, j), have = ops[0]
            start, stop, step = cd
            if step == 1:
                cond, at = f"{start} <= i < {stop}", f"i - {start}"
            else:
                cond = f"{start} <= i < {stop} and (i - {start}) % {step} == 0"
                at = f"(i - {start}) // {step}"
            code = f"({_cast(f'a{j}[{at}]', have, dt)} if {cond} else {_lit(0, dt)})"
        elif name == "power":
            a = get(*ops[0], dt)
            y = ops[1][0][1]
            # NumPy's impl squares for the exponent 2 (np.square: x*x), else calls pow;
            # a small whole exponent is multiplied out here (pow costs tens of cycles and
            # the loop would wait on it; the product is within round-off of pow: _agrees).
            if type(y) is int and y == 2:
                code = f"({a} * {a})"
            elif y in (3, 4) and float(y) == y:
                code = f"({a} * {a} * {a})" if y == 3 else f"(({a} * {a}) * ({a} * {a}))"
            else:
                code = f"({a} ** {_lit(y, dt)})"
        elif name in ("reciprocal", "sign", "relu"):
            a = get(*ops[0], dt)
            code = _OPERATORS[name].format(a, _lit(1, dt), _lit(0, dt))
        elif name in _OPERATORS:
            code = _OPERATORS[name].format(*(get(o, d, dt) for o, d in ops))
        else:
            code = f"np.{name}({', '.join(get(o, d, dt) for o, d in ops)})"
        reg[out] = f"v{len(reg)}"      # numbered in the loop, not by slot: equal chains
        body.append(f"{reg[out]} = {code}")     # of any program share one kernel
        dtypes[out] = dt
    # A placed output's element i goes to i + (i // M) * G + OFF of the concatenation
    # (see _placed): the same M and G for all (the parts have the loop's shape). The
    # (i // M) * G term is computed once per run of the innermost loop (``q``), so the
    # store stays affine in it (a division per element would keep it from vectorising).
    M, G = next(iter(fz.place.values()))[:2] if fz.place else (1, 0)
    hoist = bool(G) and (nested and fz.shape[-1] and M % fz.shape[-1] == 0 or
                         not nested and not fz.sums)
    for j, out in enumerate(fz.outputs):
        at = "i"
        if j in fz.place:
            OFF = fz.place[j][2]
            at = (f"i + q + {OFF}" if hoist else f"i + (i // {M}) * {G} + {OFF}") if G \
                else f"i + {OFF}"
        if nested and (j not in fz.place or hoist or not G):    # the row's run of it
            start = "w" + at[1:]
            rows.append(f"O{j} = o{j}[{start}:{start} + {last}]")
            at = f"j{D - 1}"
            body.append(f"O{j}[{at}] = {reg[out]}")
            continue
        body.append(f"o{j}[{at}] = {reg[out]}")
    for j, (out, (op, have), dt, _, _) in enumerate(fz.sums):
        body.append(f"t{j} += {get(op, have, np.dtype(np.float64))}")
    sizes = [f"d{k}" for k in range(D)] if nested else ["n"]
    if fz.sums:
        sizes += ["nb"] if nested else ["row", "nb"]
    head = ["import numpy as np", "", "",
            f"def kernel({', '.join(sizes + names + outs + parts)}):"]
    if not nested:
        if not fz.sums:
            if hoist:           # runs of M elements, each placed after a gap of G
                return "\n".join(head + [f"    for a in range(n // {M}):",
                                          f"        q = a * {G}",
                                          f"        for i in range(a * {M}, (a + 1) * {M}):"]
                                 + ["            " + b for b in body]) + "\n"
            return "\n".join(head + ["    for i in range(n):"] +
                             ["        " + b for b in body]) + "\n"
        lines = head + [
            "    for r in range(n // row):",
            "        for b in range(nb):",
            f"            lo = r * row + b * {BLOCK}",
            f"            hi = min(lo + {BLOCK}, (r + 1) * row)"]
        lines += [f"            t{j} = 0.0" for j in range(len(fz.sums))]
        lines += ["            for i in range(lo, hi):"] + ["                " + b for b in body]
        lines += [f"            p{j}[r * nb + b] = t{j}" for j in range(len(fz.sums))]
        return "\n".join(lines) + "\n"
    lines = head + ["    r = 0"]
    pad = "    "
    for k in range(D - 1):
        lines.append(f"{pad}for j{k} in range(d{k}):")
        pad += "    "
    if hoist:                   # M is a multiple of the row: one q per row
        lines.append(f"{pad}q = (r * {last} // {M}) * {G}")
    lines.append(f"{pad}w = r * {last}")
    lines += [pad + v for v in rows]
    if fz.sums:
        lines += [f"{pad}for b in range(nb):",
                  f"{pad}    lo = b * {BLOCK}",
                  f"{pad}    hi = min(lo + {BLOCK}, {last})"]
        lines += [f"{pad}    t{j} = 0.0" for j in range(len(fz.sums))]
        lines += [f"{pad}    for j{D - 1} in range(lo, hi):",
                  f"{pad}        i = r * {last} + j{D - 1}"]
        lines += [f"{pad}        {b}" for b in body]
        lines += [f"{pad}    p{j}[r * nb + b] = t{j}" for j in range(len(fz.sums))]
    else:
        lines += [f"{pad}for j{D - 1} in range({last}):", f"{pad}    i = r * {last} + j{D - 1}"]
        lines += [f"{pad}    {b}" for b in body]
    lines.append(f"{pad}r += 1")
    return "\n".join(lines) + "\n"


# ----- Compilation: on-disk sources, Numba's on-disk cache -----
_lock = threading.Lock()
_kernels = {}           # source hash -> compiled kernel


def _cache_dir():
    root = os.environ.get("AUTODIFF_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "autodiff")
    path = os.path.join(root, "fused")
    os.makedirs(path, exist_ok=True)
    return path


_numba_module = []


def _numba():
    if not _numba_module:
        import numba    # lazy: only when a program is lowered (tests/test_layering.py)
        _numba_module.append(numba)
    return _numba_module[0]


def _compile(src):
    """The kernel of a source, compiled once per source (and cached on disk by Numba)."""
    h = hashlib.sha256(src.encode()).hexdigest()[:24]
    with _lock:
        k = _kernels.get(h)
        if k is not None:
            return k
        path = os.path.join(_cache_dir(), f"k{h}.py")
        if not os.path.exists(path):
            # Written once and never rewritten (Numba's cache keys on the file's stamp);
            # atomically, as another process may be writing the same kernel.
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "w") as fh:
                fh.write(src)
            os.replace(tmp, path)
        spec = importlib.util.spec_from_file_location(f"autodiff_fused_{h}", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod        # Numba's cache finds the function's module
        spec.loader.exec_module(mod)
        k = _numba().njit(cache=True, fastmath=False, error_model="numpy",
                          nogil=True)(mod.kernel)
        _kernels[h] = k
        return k


_GATHER = """import numpy as np


def kernel(d, idx, out):
    for i in range(idx.size):
        out[i] = d[idx[i]]
"""


def loops(fn):
    """``fn``, a function of plain loops over arrays, compiled by Numba (cached on disk),
    or ``None`` where Numba is missing or switched off (``AUTODIFF_JIT_NUMBA=0``): for
    modules with one hot loop of their own (``autodiff.ase``'s neighbour-list check)."""
    if not available():
        return None
    try:
        return _numba().njit(cache=True, nogil=True)(fn)
    except Exception:   # noqa: BLE001 - no kernel: the caller's NumPy version
        return None


def gather():
    """``kernel(d, idx, out)``: ``out[i] = d[idx[i]]`` (no bounds check: the caller
    checks the indices once), compiled once and cached on disk, or ``None`` without
    Numba. With ``int32`` indices it reads half the index bytes ``np.take`` does (which
    converts any other index dtype to ``intp`` first): the sparse Jacobians' decompression."""
    if not available():
        return None
    try:
        return _compile(_GATHER)
    except Exception:   # noqa: BLE001 - no kernel: the caller's np.take
        return None


def _flat(a):
    return a if a.ndim == 1 else a.reshape(-1)


def _scalar(s):
    return s[()] if type(s) is np.ndarray else s


def _wrapper(fz, kernel):
    """A Python function of the group's inputs returning its outputs (a tuple when more
    than one): it allocates them, calls the kernel, and finishes the sums."""
    names = {"_k": kernel, "_empty": np.empty, "_flat": _flat, "_scalar": _scalar,
             "_miss": GuardMiss, "_f8": np.float64, "_array": np.array, "S": fz.shape}
    nested = _nested(fz)
    D = len(fz.shape)
    params = [f"i{j}" for j in range(len(fz.inputs))]
    lines = [f"def group({', '.join(params)}):"]
    checks = []
    call = [str(d) for d in fz.shape] if nested else [str(fz.size)]
    if fz.sums:
        row = fz.shape[-1] if nested else fz.row
        rows, nb = fz.size // row, -(-row // BLOCK)
        call += [str(nb)] if nested else [str(row), str(nb)]
    for j, (p, k) in enumerate(zip(params, fz.kinds)):
        if k == "s":
            call.append(f"_scalar({p})")
            continue
        names[f"S{j}"] = fz.in_shapes[j]
        checks.append(f"{p}.shape != S{j}")
        if k == "g":
            call.append(p)          # 1-d, any strides
        elif fz.flat[j] or not nested:
            call.append(f"_flat({p})")
        elif len(fz.in_shapes[j]) < D:
            names[f"P{j}"] = (1,) * (D - len(fz.in_shapes[j])) + fz.in_shapes[j]
            call.append(f"{p}.reshape(P{j})")
        else:
            call.append(p)
    if checks:
        # The recording's shapes (guards keep them): a mismatch would read out of bounds.
        lines.append("    if " + " or ".join(checks) + ": raise _miss(-1)")
    results = []
    first = min(fz.place, default=None)
    for j, out in enumerate(fz.outputs):
        dt = next(b[3] for b in fz.body if b[0] == out)
        names[f"d{j}"] = dt
        if j in fz.place:       # one buffer for all: the concatenation's value
            total, shape = fz.place[j][3:]
            names[f"C{j}"] = shape
            lines.append(f"    o{j} = _empty({total}, d{j})" if j == first else
                         f"    o{j} = o{first}")
            results.append(f"o{j}.reshape(C{j})" if j == first else "None")
        else:
            lines.append(f"    o{j} = _empty({fz.size}, d{j})")
            results.append(f"o{j}.reshape(S)")
        call.append(f"o{j}")
    for j, (out, x, dt, typ, shape) in enumerate(fz.sums):
        lines.append(f"    p{j} = _empty({rows * nb}, _f8)")
        call.append(f"p{j}")
        names[f"e{j}"], names[f"z{j}"] = dt.type, shape
        if fz.row == fz.size:               # a full sum: the partials' pairwise sum
            total = f"p{j}.sum()"
            if typ is np.ndarray:
                total = f"_array({total}, e{j}).reshape(z{j})"
            elif dt != np.float64:
                total = f"e{j}({total})"
        else:
            total = f"p{j}" if nb == 1 else f"p{j}.reshape({rows}, {nb}).sum(axis=1)"
            if dt != np.float64:
                total += f".astype(e{j})"
            total += f".reshape(z{j})"
            if typ is not np.ndarray:
                total += "[()]"
        results.append(total)
    lines.append(f"    _k({', '.join(call)})")
    ret = results[0] if len(results) == 1 else "(" + ", ".join(results) + ",)"
    lines.append(f"    return {ret}")
    exec(compile("\n".join(lines) + "\n", "<fused group>", "exec"), names)
    return names["group"]


def _agrees(got, want, single=False):
    """The kernel's value against the probe's: round-off apart (a check of the lowering,
    not of the digits: transcendental functions may differ in the last bits). ``single``:
    the loop reads float32 values, whose last-bit differences (NumPy's float32 ``tanh``
    against Numba's) reach even its float64 results."""
    if type(got) is not type(want) or np.shape(got) != np.shape(want) or \
            np.result_type(got) != np.result_type(want):
        return False
    if np.result_type(want) == _BOOL:
        return bool(np.all(got == want))
    tol = 1e-3 if single or np.result_type(want) == np.float32 else 1e-9
    w = np.asarray(want, dtype=np.float64)
    scale = float(np.max(np.abs(w[np.isfinite(w)]), initial=0.0))
    return bool(np.allclose(got, want, rtol=tol, atol=tol * scale, equal_nan=True))


# ----- The lowering -----
def _compiled(program, env, strict):
    """``(group, its compiled call)`` for every group that compiles and agrees with the
    probe replay's values."""
    found = []
    for fz in groups(program, env, strict):
        try:
            g = _wrapper(fz, _compile(_emit_cpu(fz)))
            got = g(*[_fill(a, env) for a in fz.inputs])
        except Exception as e:      # noqa: BLE001 - a kernel Numba refuses stays NumPy
            warnings.warn(f"ad.jit: a fused loop of {program.name} was left out: {e}",
                          RuntimeWarning, stacklevel=3)
            continue
        got = got if isinstance(got, tuple) else (got,)
        want = [env[s] for s in fz.outputs] + [env[s[0]] for s in fz.sums]
        single = any(getattr(_fill(a, env), "dtype", None) == np.float32 for a in fz.inputs)
        if not all(_agrees(a, b, single) for a, b in zip(got, want)):
            warnings.warn(f"ad.jit: a fused loop of {program.name} disagreed with NumPy "
                          "and was left out (please report this)", RuntimeWarning,
                          stacklevel=3)
            continue
        found.append((fz, g))
    return found


def _schedule(program, loops):
    """Where each loop runs: ``(k, rank)`` per loop, meaning just before instruction ``k``
    (after loops of lower rank there), or None when no order works.

    A loop runs after its last member (and its deferred scalars right after it), before
    the first instruction outside every loop that reads one of its values, and before the
    loops whose members read its values; as late as that allows."""
    ins_list = program.instructions
    where = {}          # instruction index -> its loop
    made = {}           # slot -> the loop computing it
    for j, fz in enumerate(loops):
        for m in fz.members + fz.deferred:
            where[m] = j
            made[ins_list[m][1]] = j
    deadline = [len(ins_list)] * len(loops)
    succ = [set() for _ in loops]
    for k, ins in enumerate(ins_list):
        q = where.get(k)
        for s in reads(ins):
            p = made.get(s)
            if p is None or p == q:
                continue
            if q is None:
                deadline[p] = min(deadline[p], k)
            else:
                succ[p].add(q)
    at, state = [None] * len(loops), [0] * len(loops)

    def visit(p):           # at[p] = min(deadline, the successors' places); None: a cycle
        if state[p] == 1:
            return False
        if state[p] == 2:
            return True
        state[p] = 1
        e = deadline[p]
        for q in succ[p]:
            if not visit(q):
                return False
            e = min(e, at[q][0])
        state[p] = 2
        at[p] = (e, 0)
        return True
    for p in range(len(loops)):
        if not visit(p):
            return None
    for p, fz in enumerate(loops):
        if at[p][0] <= max(fz.members + fz.deferred):
            return None
    # Ranks: a loop after every loop it reads, among those placed at one instruction.
    rank = [0] * len(loops)
    changed = True
    while changed:
        changed = False
        for p in range(len(loops)):
            for q in succ[p]:
                if rank[q] <= rank[p]:
                    rank[q] = rank[p] + 1
                    changed = True
    return [(at[p][0], rank[p]) for p in range(len(loops))]


def lower_fused(program, leaves):
    """A replay of ``program`` with its elementwise chains fused, or ``None`` (no group of
    two or more instructions, Numba unavailable, or a guard of these inputs failed)."""
    if not available() or not any(type(x) is np.ndarray for x in leaves):
        return None
    try:
        env = _probe(program, leaves)
    except GuardMiss:
        # These inputs took another branch: try again on a later call (a few times).
        tries = getattr(program, "_fuse_tries", 0)
        if tries < 3:
            program._fuse_tries = tries + 1
            program._calls = _program.NUMBA_AFTER - 1
        return None
    try:
        _cache_dir()
    except OSError:
        return None
    try:
        return _lower(program, env)
    except Exception as e:      # noqa: BLE001 - never a failed replay: the plain backend
        warnings.warn(f"ad.jit: {program.name} stays on the plain backend: the fused "
                      f"lowering failed ({type(e).__name__}: {e}); please report this",
                      RuntimeWarning, stacklevel=2)
        return None


def _placed(program, env, fz):
    """Where a ``concatenate`` of this loop's outputs, each reshaped (the stacked tangents
    of a function's outputs: ``np.stack([du, dv])``), can be written by the loop itself:
    ``(placements, concatenate's slot, removed instruction indices)`` or ``None``.

    Output ``o`` (flat index ``i``) reshaped to ``(outer, n, inner)`` around the axis is
    the block ``(a, off + b, e)`` of the concatenation ``(outer, N, inner)``: its element
    ``i + (i // (n·inner))·(N - n)·inner + off·inner``."""
    ins_list = program.instructions
    readers = {}
    for k, ins in enumerate(ins_list):
        for sl in reads(ins):
            readers.setdefault(sl, []).append(k)
    outs = {o.index for o in program.outputs if type(o) is Slot}
    index = {o: j for j, o in enumerate(fz.outputs)}
    for k, ins in enumerate(ins_list):
        if ins[0] != CALL or getattr(ins[2], "name", None) != "concatenate" or \
                ins[4].keys() - {"axis"} or not all(type(a) is Slot for a in ins[3]):
            continue
        c = env[ins[1]]
        if type(c) is not np.ndarray or c.ndim == 0 or len(ins[3]) < 2:
            continue
        ax = ins[4].get("axis", 0)
        if type(ax) is not int or not -c.ndim <= ax < c.ndim:
            continue
        ax %= c.ndim
        inner = int(np.prod(c.shape[ax + 1:], dtype=np.int64))
        place, removed, off = {}, [k], 0
        for part in ins[3]:
            r = next((m for m in range(k) if ins_list[m][1] == part.index), None)
            if r is None or ins_list[r][0] != CALL or \
                    getattr(ins_list[r][2], "name", None) != "reshape" or \
                    len(ins_list[r][3]) != 1 or type(ins_list[r][3][0]) is not Slot:
                break
            o = ins_list[r][3][0].index
            if o not in index or index[o] in place or readers.get(o) != [r] or \
                    readers.get(part.index) != [k] or o in outs or part.index in outs or \
                    env[part.index].dtype != c.dtype or env[o].dtype != c.dtype:
                break
            n = env[part.index].shape[ax]
            place[index[o]] = (n * inner, (c.shape[ax] - n) * inner, off * inner,
                               c.size, c.shape)
            removed.append(r)
            off += n
        else:
            if off == c.shape[ax]:
                return place, ins[1], removed
    return None


def _place_all(program, env, found):
    """Each loop's concatenation written in place where it compiles and agrees:
    ``{loop index: (concatenate's slot, removed instructions)}``."""
    done = {}
    for q, (fz, g) in enumerate(found):
        p = _placed(program, env, fz)
        if p is None:
            continue
        fz.place = p[0]
        try:
            g2 = _wrapper(fz, _compile(_emit_cpu(fz)))
            got = g2(*[_fill(a, env) for a in fz.inputs])
            got = got if isinstance(got, tuple) else (got,)
            ok = _agrees(got[min(fz.place)], env[p[1]])
        except Exception:  # noqa: BLE001 - the loop as it was, the NumPy concatenate
            ok = False
        if not ok:
            fz.place = {}
            continue
        found[q] = (fz, g2)
        done[q] = p[1:]
    return done


def _lower(program, env):
    for strict in (False, True):
        # The loops that only order themselves against each other; if dropping one (a
        # group of one, a kernel Numba refused) leaves no order, the strict grouping.
        found = _compiled(program, env, strict)
        order = _schedule(program, [fz for fz, _ in found]) if found else None
        if not found or order is not None:
            break
    if not found or order is None:
        return None
    fresh = max([i[1] for i in program.instructions if i[1] is not None] +
                [program.n_inputs]) + 1
    calls = {}          # position -> the loops that run just before that instruction
    moved = set()
    placed = _place_all(program, env, found)
    for q, (at, (fz, g)) in enumerate(zip(order, found)):
        moved.update(fz.members)
        moved.update(fz.deferred)
        results = fz.outputs + [s[0] for s in fz.sums]
        if q in placed:         # the loop's buffer is the concatenation's value
            slot, removed = placed[q]
            moved.update(removed)
            results[min(fz.place)] = slot
        if len(results) == 1:
            lines = [(FUNC, results[0], g, tuple(fz.inputs), {})]
        else:
            lines = [(FUNC, fresh, g, tuple(fz.inputs), {})]
            lines += [(ITEM, s, i, (Slot(fresh),), {}) for i, s in enumerate(results)]
            fresh += 1
        calls.setdefault(at[0], []).append((at[1], lines +
                                            [program.instructions[k] for k in fz.deferred]))
    instructions = []
    for k in range(len(program.instructions) + 1):
        for _, lines in sorted(calls.get(k, ()), key=lambda c: c[0]):
            instructions += lines
        if k < len(program.instructions) and k not in moved:
            instructions.append(program.instructions[k])
    lowered = _types.SimpleNamespace(instructions=tuple(instructions), types=program.types,
                                     n_inputs=program.n_inputs, outputs=program.outputs,
                                     name=program.name)
    replay = _program._lower(lowered, bound=False)
    replay.backend = "fused"
    replay.fused = [fz for fz, _ in found]
    replay.source = _program._generate(lowered, False)[0]
    return replay


def kernels(program):
    """The fused groups a lowered program runs (empty on another backend)."""
    return list(getattr(program._plain, "fused", ()))
