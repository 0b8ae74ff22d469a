"""``ad.jit``: record a function once per input signature, then replay the program.

Recording runs the function on :class:`Tracer` values: a box of its own level that carries
the recording's concrete value, so Python control flow runs as usual, and that turns every
primitive call reaching it through ``bind`` into one instruction of a
:class:`~autodiff.program.Program`. Under ``ad.grad`` inside the jit the reverse sweep's
rules run on tracers too, so the whole gradient computation is in the program. Values
without a derivative (comparison masks, ``argmax``, indices) are recorded like any other,
and every decision Python took from a value (``bool``, ``int``, ``operator.index`` on a
tracer, a shape chosen by a mask) is a guard: a replay whose inputs decide otherwise
records again instead of replaying a wrong branch.

The cache maps a signature (pytree structure, shapes, dtypes and Python types of the
arguments, and the static arguments' values) to up to ``MAX_RECORDINGS`` programs, most
recently used first. Called with tracked arguments (``ad.grad(ad.jit(f))``) the program
recorded on their values is replayed through ``bind``, so it is differentiated as ``f``
would be.
"""
import collections
import functools
import inspect
import operator
import sys
import threading
import warnings

import numpy as np

from . import boxes, core
from .boxes import Box, meta
from .core import (NO_KW, bind, box_types, close_level, live_levels, new_level,
                   opaque_types)
from . import program as _program
from .compiled import lower_numba
from .fusion import lower_fused
from .program import CALL, CONST, FUNC, GUARD, ITEM, GuardMiss, Program, Slot
from .tree import flatten, unflatten

__all__ = ["jit", "Tracer"]

#: Recordings kept per signature (LRU): a function whose branches depend on values keeps
#: one program per path taken recently.
MAX_RECORDINGS = 8


class Tracer(Box):
    """A value being recorded by ``ad.jit``: the recording's ``value`` and its slot."""
    __slots__ = ("value", "level", "slot", "rec", "_view", "__weakref__")

    def apply(self, prim, args, kw):
        if self.level not in live_levels:
            raise _leaked()
        return self.rec.call(prim, args, kw)

    @staticmethod
    def _elementwise(prim, args, level):
        for a in args:
            if type(a) is Tracer and a.level == level:
                return a.apply(prim, args, NO_KW)

    # ----- metadata from the recorded value (shapes and dtypes are in the signature) -----
    @property
    def shape(self):
        return np.shape(self.value)

    @property
    def ndim(self):
        return np.ndim(self.value)

    @property
    def dtype(self):
        v = self.value
        return v.dtype if hasattr(v, "dtype") else np.result_type(v)

    def __len__(self):
        return len(self.value)

    # ----- comparisons are recorded (masks are values of the program) -----
    def __lt__(self, o): return bind(_CMP[np.less], self, o)
    def __le__(self, o): return bind(_CMP[np.less_equal], self, o)
    def __gt__(self, o): return bind(_CMP[np.greater], self, o)
    def __ge__(self, o): return bind(_CMP[np.greater_equal], self, o)

    def __eq__(self, o):
        if o is None:
            return self.value == o
        return bind(_CMP[np.equal], self, o)

    def __ne__(self, o):
        if o is None:
            return self.value != o
        return bind(_CMP[np.not_equal], self, o)

    __hash__ = object.__hash__

    # Masks combine with the bitwise operators (booleans carry no derivative elsewhere).
    def __and__(self, o): return np.bitwise_and(self, o)
    def __rand__(self, o): return np.bitwise_and(o, self)
    def __or__(self, o): return np.bitwise_or(self, o)
    def __ror__(self, o): return np.bitwise_or(o, self)
    def __xor__(self, o): return np.bitwise_xor(self, o)
    def __rxor__(self, o): return np.bitwise_xor(o, self)
    def __invert__(self): return np.invert(self)

    # ----- decisions Python takes from values: guards -----
    def __bool__(self):
        b = bool(self.value)
        self.rec.guard("bool", self, b)
        return b

    def __index__(self):
        i = operator.index(self.value)
        self.rec.guard("index", self, i)
        return i

    def __int__(self):
        i = int(self.value)
        self.rec.guard("int", self, i)
        return i

    def nondiff(self, f, args, kw):
        """``f`` (a function with a zero derivative: np.any, argmax, round, …) of recorded
        values: one recorded call, replayed on each new input (the opaque-box protocol)."""
        return boxes.lift(f, *args, **kw)

    def guarded_value(self):
        """The recorded value, guarded: a replay with other numbers here records again."""
        v = self.value
        self.rec.guard("value", self, v.copy() if type(v) is np.ndarray else v)
        return v

    def __float__(self):
        raise TypeError(
            "float(x) of a value traced by ad.jit: the program would bake in this number. "
            "Keep the computation in NumPy functions (np.sin, not math.sin), or mark the "
            "argument static (ad.jit(f, static_argnums=...)). (JAX refuses this too: "
            "ConcretizationTypeError.)")

    def __complex__(self):
        raise TypeError("complex(x) of a value traced by ad.jit would bake in this number; "
                        "use NumPy functions, or a static argument.")

    def __array__(self, dtype=None, copy=None):
        if boxes._sparse_matmul_probe(sys._getframe(1)):
            return boxes._DEFER         # SciPy's sparse A @ x: Python then asks x.__rmatmul__
        if np.result_type(self.value).kind in "biu":
            # A mask, count or index read as a plain array: guarded, so a replay whose
            # mask differs records again (floats are refused: they differ every call).
            return np.asarray(self.guarded_value(), dtype=dtype)
        raise TypeError(
            "np.asarray(x) of a value traced by ad.jit (also called when it is written into "
            "a plain ndarray, or passed to a library outside NumPy): the program would bake "
            "in this value. Build arrays with np.zeros_like(x) / np.stack, or call the "
            "library outside the jitted function.")

    # ----- assignment (Box.__setitem__) -----
    def constant(self, value):
        return self.rec.constant(value)

    def _assignable(self):
        pass

    def _become(self, new):
        if type(new) is Tracer and new.rec is self.rec:
            self.value, self.slot = new.value, new.slot
            return
        if type(new) in box_types:
            from .forward import _cross_level_assignment
            raise _cross_level_assignment()
        c = self.rec.constant(new)
        self.value, self.slot = c.value, c.slot

    def __repr__(self):
        return f"Tracer(v{self.slot}, shape={np.shape(self.value)}, dtype={self.dtype})"


box_types.add(Tracer)
_program.scalar_backend[0] = lower_numba     # scalar programs move to Numba when hot
_program.array_backend[0] = lower_fused      # array programs: elementwise chains fused
opaque_types.add(Tracer)
core.recording_types.add(Tracer)
_new = object.__new__


def _leaked():
    return TypeError(
        "a value traced by ad.jit was used after the jitted function returned: it leaked "
        "out (stored in a global, a list or an attribute). Return it as an output instead.")


def _comparisons():
    from .core import ufunc_table
    return {u: ufunc_table[u] for u in (np.less, np.less_equal, np.greater,
                                        np.greater_equal, np.equal, np.not_equal)}


_CMP = {}


class Recorder:
    """Collects the instructions of one recording."""

    def __init__(self, level, name):
        self.level = level
        self.name = name
        self.instructions = []
        self.n = 0
        self.guarded = set()
        self.copies = {}
        self.types = {}         # slot -> Python type of its recorded value (backends)

    def _tracer(self, value):
        t = _new(Tracer)
        t.value = value
        t.level = self.level
        t.slot = self.n
        t.rec = self
        self.types[self.n] = type(value)
        self.n += 1
        return t

    def input(self, value):
        return self._tracer(value)

    # Templates: arguments with tracers replaced by slots; the recorded concrete values.
    def _template(self, a, strip):
        t = type(a)
        if t is Tracer:
            if a.rec is not self:
                raise _foreign(a)
            return Slot(a.slot), a.value
        if t in box_types:
            if strip:            # a function without derivative: the levels above drop
                return self._template(a.value, strip)
            raise _closure(a)
        if t is tuple or t is list:
            parts = [self._template(x, strip) for x in a]
            return t(p[0] for p in parts), t(p[1] for p in parts)
        if t is slice and any(type(x) in box_types for x in (a.start, a.stop, a.step)):
            s = [self._template(x, strip) for x in (a.start, a.stop, a.step)]
            return slice(*[p[0] for p in s]), slice(*[p[1] for p in s])
        if t is dict:
            parts = {k: self._template(v, strip) for k, v in a.items()}
            return {k: p[0] for k, p in parts.items()}, {k: p[1] for k, p in parts.items()}
        if t is np.ndarray:
            # The program owns its constants: later writes into the caller's array (or a
            # buffer the engine reuses) do not change a recorded program.
            c = self.copies.get(id(a))
            if c is None or c[0] is not a:
                c = self.copies[id(a)] = (a, a.copy())
            return c[1], a
        return a, a

    def call(self, prim, args, kw, kind=CALL, strip=False):
        targs, vals = self._template(args, strip)
        if kw:
            tkw, vkw = self._template(kw, strip)
        else:
            tkw, vkw = NO_KW, NO_KW
        fn = prim.impl if kind == CALL else prim
        ans = fn(*vals, **vkw)
        out = self._result(kind, prim, targs, tkw, ans)
        if kw and type(out) is Tracer and _mask_in(vkw.values()):
            # A boolean mask as an index: the result's shape depends on the values.
            self.guard("shape", out, np.shape(out.value))
        return out

    def _result(self, kind, fn, targs, tkw, ans):
        if ans is None:
            return None
        if type(ans) in box_types:
            raise _closure(ans)
        out = self._tracer(ans)
        self.instructions.append((kind, out.slot, fn, targs, tkw))
        if isinstance(ans, tuple):
            items = []
            for i, v in enumerate(ans):
                t = self._tracer(v)
                self.instructions.append((ITEM, t.slot, i, (Slot(out.slot),), NO_KW))
                items.append(t)
            return type(ans)(*items) if hasattr(type(ans), "_fields") else tuple(items)
        return out

    def function(self, fn, args, kw):
        """A NumPy function without derivative, on the values under the derivative levels;
        its result's shape may depend on values (nonzero), so the shape is guarded."""
        out = self.call(fn, args, kw, kind=FUNC, strip=True)
        for o in (out if isinstance(out, tuple) else (out,)):
            if type(o) is Tracer:
                self.guard("shape", o, np.shape(o.value))
        return out

    def constant(self, value):
        t, v = self._template(value, False)
        out = self._tracer(v)
        self.instructions.append((CONST, out.slot, None, (t,), NO_KW))
        return out

    def guard(self, check, tracer, outcome):
        if tracer.rec is not self:
            raise _foreign(tracer)
        key = (check, tracer.slot)
        if key in self.guarded:
            return
        self.guarded.add(key)
        self.instructions.append((GUARD, None, check, (Slot(tracer.slot),), outcome))

    def finish(self, n_inputs, out_leaves, out_tree):
        outs = []
        for o in out_leaves:
            if type(o) is Tracer:
                if o.rec is not self:
                    raise _foreign(o)
                outs.append(Slot(o.slot))
            elif type(o) in box_types:
                raise _closure(o)
            else:
                outs.append(self._template(o, False)[0])
        return Program(n_inputs, self.instructions, outs, out_tree, self.name, self.types)


def _mask_in(values):
    for v in values:
        t = type(v)
        if t is np.ndarray and v.dtype == bool:
            return True
        if (t is tuple or t is list) and _mask_in(v):
            return True
    return False


def _record_function(fn, args, kw):
    rec = _innermost(args, kw)
    return rec.function(fn, args, kw)


def _innermost(*trees):
    best = None
    stack = list(trees)
    while stack:
        a = stack.pop()
        t = type(a)
        if t is tuple or t is list:
            stack.extend(a)
        elif t is dict:
            stack.extend(a.values())
        elif t is Tracer:
            if best is None or a.level > best.level:
                best = a
        elif t in box_types:
            stack.append(a.value)
    if best.level not in live_levels:
        raise _leaked()
    return best.rec


boxes.record_function[0] = _record_function


def _closure(box):
    return TypeError(
        f"ad.jit: the function uses a tracked value ({type(box).__name__}) that is not one of "
        "its arguments: a value of an enclosing transform or an eager Variable (an "
        "nn.Parameter, say) captured by a closure. The program could not see its later "
        "values. Pass it as an argument of the jitted function (nn.compile_step does this "
        "for a model's parameters).")


def _foreign(t):
    return TypeError(
        "ad.jit: a value traced by an enclosing ad.jit reached a nested jitted function "
        "through a closure. Pass it as an argument of the nested jitted function.")


# ----- Signatures -----
def _leaf_signature(x):
    v = meta(x)
    t = type(v)
    if t is np.ndarray:
        return (v.shape, v.dtype)       # (a dtype hashes faster than its .str)
    if t is float or t is int or t is bool or t is complex:
        return t
    if isinstance(v, np.generic):
        return (t, v.dtype.str)
    raise TypeError(
        f"ad.jit: an argument of type {t.__name__} is not an array or a number, so it "
        "cannot be traced. Mark it static (ad.jit(f, static_argnums=...) or "
        "static_argnames=...), or pass arrays.")


#: Number of leaves -> the treedef of ``(tuple of that many leaves, {})``: the dynamic
#: arguments of a call with positional arrays and numbers only.
_FLAT_TREEDEFS = {}


def _out_kind(out_tree):
    """How a program's outputs are rebuilt: 0 one leaf, 1 a flat tuple, 2 a pytree."""
    if out_tree == ():
        return 0
    if out_tree[0] is tuple and all(c == () for c in out_tree[1]):
        return 1
    return 2


def _outputs(prog, flat):
    kind = getattr(prog, "out_kind", 2)
    if kind == 0:
        return flat[0]
    if kind == 1:
        return flat if type(flat) is tuple else tuple(flat)
    return unflatten(prog.out_tree, flat)


class UnhashableStaticArgument(TypeError, ValueError):
    """A static argument that cannot key the cache: JAX raises ``ValueError`` here, and an
    unhashable value is a ``TypeError`` in Python; this is both."""


def _hashable(v, where, fname):
    try:
        hash(v)
    except TypeError:
        raise UnhashableStaticArgument(
            f"ad.jit: the static argument {where} of {fname} has the unhashable type "
            f"{type(v).__name__}; static arguments must be hashable (they key the cache). "
            "Pass a tuple instead of a list, or make the argument non-static (arrays are "
            "traced).") from None


_count_lock = threading.Lock()


class _Jitted:
    """The jitted function: the cache of programs and the call path."""

    def __init__(self, f, static_argnums, static_argnames):
        self.f = f
        self.name = getattr(f, "__name__", "f")
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        if isinstance(static_argnames, str):
            static_argnames = (static_argnames,)
        nums, names = set(static_argnums), set(static_argnames)
        try:
            params = list(inspect.signature(f).parameters.values())
        except (TypeError, ValueError):
            params = []
        positional = [p.name for p in params
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        # As JAX: a static name given positionally, and a static number given by name.
        for n in list(names):
            if n in positional:
                nums.add(positional.index(n))
        for i in list(nums):
            if 0 <= i < len(positional):
                names.add(positional[i])
        self.static_argnums = tuple(sorted(nums))
        self.static_argnames = frozenset(names)
        self._n_positional = len(positional)
        self._cache = collections.OrderedDict()
        self._lock = threading.Lock()
        self._misses = {}
        self._static_pos = {}       # number of positional arguments -> static positions
        self._fast = {}             # the fast path's keys -> lists of self._cache
        self.recordings = 0
        functools.update_wrapper(self, f)

    def _split(self, args, kwargs):
        n = len(args)
        static_pos = {i % n for i in self.static_argnums if -n <= i < n}
        statics = []
        dyn_args = []
        for i, a in enumerate(args):
            if i in static_pos:
                _hashable(a, f"at position {i}", self.name)
                statics.append((i, a))
            else:
                dyn_args.append(a)
        dyn_kw = {}
        for k in sorted(kwargs):
            if k in self.static_argnames:
                _hashable(kwargs[k], repr(k), self.name)
                statics.append((k, kwargs[k]))
            else:
                dyn_kw[k] = kwargs[k]
        return tuple(statics), static_pos, (tuple(dyn_args), dyn_kw), n

    def _flat_key(self, args):
        """The common case's ``(signature, statics)`` and leaves, fast: positional
        arguments that are each a plain array or a Python number (or static).
        ``(None, None)`` otherwise. With the treedef of a flat tuple in front, it is the
        key the general path computes for these arguments."""
        n = len(args)
        static_pos = self._static_pos.get(n)
        if static_pos is None:
            static_pos = self._static_pos[n] = frozenset(
                i % n for i in self.static_argnums if -n <= i < n)
        sig, statics = [], []
        leaves = [] if static_pos else args
        for i, a in enumerate(args):
            if static_pos and i in static_pos:
                statics.append((i, a))
                continue
            # _leaf_signature's answer for these two kinds, inlined: anything else (a
            # box, a pytree, a NumPy scalar) takes the general path
            t = type(a)
            if t is np.ndarray:
                sig.append((a.shape, a.dtype))
            elif t is float or t is int or t is bool or t is complex:
                sig.append(t)
            else:
                return None, None
            if static_pos:
                leaves.append(a)
        return (tuple(sig), tuple(statics)), leaves

    def __call__(self, *args, **kwargs):
        if not kwargs:
            # The fast path: a tuple of arrays and numbers (no pytree walk, no boxes).
            key, leaves = self._flat_key(args)
            if key is not None:
                try:
                    # (signature, statics) -> the cache's list for the general key (the
                    # treedef, implied by the signature's length, is not hashed again).
                    progs = self._fast.get(key)
                    if progs is None:
                        m = len(leaves)
                        treedef = _FLAT_TREEDEFS.get(m)
                        if treedef is None:
                            treedef = _FLAT_TREEDEFS[m] = flatten((tuple(range(m)), {}))[1]
                        progs = self._cache.get((treedef,) + key)
                        if progs is not None:
                            self._fast[key] = progs
                except TypeError:       # an unhashable static: the general path says so
                    progs = None
                if progs:
                    for prog in tuple(progs):
                        try:
                            flat = prog(*leaves)
                        except GuardMiss:
                            continue
                        if progs[0] is not prog:
                            self._touch_list(progs, prog)
                        return _outputs(prog, flat)
        statics, static_pos, dyn, n = self._split(args, kwargs)
        leaves, treedef = flatten(dyn)
        sig = tuple(_leaf_signature(x) for x in leaves)
        key = (treedef, sig, statics)
        tracked = any(type(x) in box_types for x in leaves)
        with self._lock:
            progs = self._cache.get(key)
            progs = list(progs) if progs else []
        for prog in progs:
            try:
                flat = prog.bound(*leaves) if tracked else prog(*leaves)
            except GuardMiss:
                continue
            self._touch(key, prog)
            return _outputs(prog, flat)
        plain = [meta(x) for x in leaves]
        prog, out = self._record(statics, static_pos, treedef, plain, n)
        with self._lock:
            lst = self._cache.setdefault(key, [])
            lst.insert(0, prog)
            del lst[MAX_RECORDINGS:]
            self._cache.move_to_end(key)
            self._misses[key] = k = self._misses.get(key, 0) + 1
        if k == 4 * MAX_RECORDINGS:
            kinds = sorted({g[2] for g in prog.guards})
            warnings.warn(
                f"ad.jit: {self.name} was recorded {k} times for one input signature: its "
                f"guards ({', '.join(kinds)}) keep failing, so the recordings are not "
                "reused. A 'value' guard means code read the numbers of a traced value "
                "(np.asarray, .item(), a library call); a 'bool'/'index' guard, Python "
                "branching on values. Mark such arguments static, or use np.where.",
                RuntimeWarning, stacklevel=2)
        if tracked:
            return _outputs(prog, prog.bound(*leaves))
        return out

    def _touch_list(self, lst, prog):
        with self._lock:
            if lst and lst[0] is not prog and prog in lst:
                lst.remove(prog)
                lst.insert(0, prog)

    def _touch(self, key, prog):
        with self._lock:
            lst = self._cache.get(key)
            if lst and lst[0] is not prog and prog in lst:
                lst.remove(prog)
                lst.insert(0, prog)

    def _record(self, statics, static_pos, treedef, plain, n):
        level = new_level()
        rec = Recorder(level, self.name)
        with _count_lock:
            core.recording[0] += 1
        try:
            tracers = [rec.input(v) for v in plain]
            dyn_args, dyn_kw = unflatten(treedef, tracers)
            it = iter(dyn_args)
            st = dict(statics)
            args = [st[i] if i in static_pos else next(it) for i in range(n)]
            kwargs = dict(dyn_kw)
            kwargs.update((k, v) for k, v in statics if isinstance(k, str))
            out = self.f(*args, **kwargs)
            out_leaves, out_tree = flatten(out)
            prog = rec.finish(len(plain), out_leaves, out_tree)
            prog.out_kind = _out_kind(out_tree)
        finally:
            with _count_lock:
                core.recording[0] -= 1
            close_level(level)
        self.recordings += 1
        values = [o.value if type(o) is Tracer else o for o in out_leaves]
        return prog, unflatten(out_tree, values)

    def program(self, *args, **kwargs):
        """The program a call with these arguments replays (recording it if needed)."""
        statics, static_pos, dyn, n = self._split(args, kwargs)
        leaves, treedef = flatten(dyn)
        key = (treedef, tuple(_leaf_signature(x) for x in leaves), statics)
        plain = [meta(x) for x in leaves]
        for prog in self._cache.get(key, ()):
            try:
                prog(*plain)
                return prog
            except GuardMiss:
                pass
        self(*args, **kwargs)
        return self._cache[key][0]

    def clear_cache(self):
        """Drop every recording (and the count of recordings made for one signature)."""
        with self._lock:
            self._cache.clear()
            self._fast.clear()
            self._misses.clear()

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    def __repr__(self):
        return f"<ad.jit of {self.name}>"


def jit(f=None, static_argnums=(), static_argnames=()):
    """``f`` recorded once per input signature and replayed as a program afterwards.

    The signature is the pytree structure of the arguments, each leaf's shape and dtype
    (or Python type), and the values of the static arguments (``static_argnums``,
    ``static_argnames``: hashable; they may steer Python freely). The first call runs
    ``f`` on tracers and records every primitive call into a flat program; later calls
    with the same signature replay it on plain arrays, with no boxes and no per-operation
    dispatch. ``ad.jit`` composes with every transform in both orders:
    ``ad.jit(ad.grad(f))`` records the gradient computation itself, the reverse sweep
    included; ``ad.grad(ad.jit(f))`` differentiates the replay.

    Control flow on values is guarded: each ``bool()`` of a traced value (``if x > 0``,
    ``while abs(dx) > tol``), ``int()`` or index of one, and each shape chosen by a mask is
    checked when the program replays; a different outcome records again (up to
    ``MAX_RECORDINGS`` programs per signature are kept). ``float(x)`` of a traced value is
    refused (it would bake the number in): use NumPy functions, or a static argument.

    Python side effects (printing, appending to a list, counters) happen when ``f`` is
    recorded, not when the program replays (JAX's rule). Values read with ``x.value`` and
    arrays captured from the enclosing scope are constants of the program.

    >>> import numpy as np
    >>> f = jit(lambda x: np.sum(np.sin(x) ** 2))
    >>> round(float(f(np.array([1.0, 2.0]))), 6)
    1.534895
    >>> g = jit(lambda x: x * 2.0 if x > 0 else -x)      # guarded: both branches right
    >>> g(3.0), g(-3.0)
    (6.0, 3.0)
    """
    if f is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames)
    if not _CMP:
        _CMP.update(_comparisons())
    return _Jitted(f, static_argnums, static_argnames)
