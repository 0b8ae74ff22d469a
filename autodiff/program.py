"""A recorded program: a flat, immutable list of primitive calls with guards, and its replays.

``ad.jit`` records a function once per input signature into a :class:`Program`: numbered
slots (``v0, v1, ...``) for the inputs and for every value computed from them, constants
(``c0, c1, ...``) for everything else, one instruction per primitive call (the reverse
sweep's rule calls included when the function takes a gradient), and a guard for every
value-dependent decision Python made while recording (``if x > 0``, a loop's trip count, an
index read with ``int``). Repeated calls (the same primitive on the same arguments) are
merged, and instructions no output and no guard depend on are dropped.

Lowering. A program is lowered to a backend by walking its instructions once:

* ``plain`` (the default): one generated Python function that calls each primitive's
  ``impl`` on plain arrays, with no boxes and no dispatch; a value is released after its
  last use, so NumPy's allocator reuses its buffer.
* ``bound``: the same walk, but every call goes through ``bind``, so the replay on tracked
  arguments (``ad.grad(ad.jit(f))``) is differentiated by the outer transforms, or recorded
  by an outer ``ad.jit``.
* ``numba`` (``autodiff/compiled.py``): programs on Python floats only, run by a compiled
  interpreter over a flat opcode array, once a program has replayed ``NUMBA_AFTER`` times
  on the Python backend (tiered, so a function called a few times never imports Numba), or
  at its first replay when it is long or the interpreter is loaded already.
* ``fused`` (``autodiff/fusion.py``): array programs, tiered the same way: the plain
  replay with each maximal chain of elementwise instructions (and a sum closing it) run
  as one Numba loop.

A new target (a CUDA backend for ``autodiff.gpu``: fused elementwise kernels, library calls
for the rest) is one more function ``lower_<target>(program)`` reading the same
instruction list (``Program.instructions``); the recording, the guards and the cache stay.

A guard that fails raises :class:`GuardMiss`; ``ad.jit`` then tries its other recordings for
the signature and records again if none fits. A wrong branch is never replayed.
"""
import operator

import numpy as np

from .core import bind

__all__ = ["Program", "Slot", "GuardMiss", "fill"]


#: Replays of a scalar program on the Python backend before it moves to Numba's.
NUMBA_AFTER = 20
#: The scalar backend (``compiled.lower_numba``), set by ``autodiff.tracing`` when it loads:
#: program.py imports no backend, so the backends may import the program's definitions.
scalar_backend = [None]
#: The array backend (``fusion.lower_fused(program, leaves)``: elementwise chains fused into
#: Numba loops), set the same way; tried after the same number of replays.
array_backend = [None]


class GuardMiss(Exception):
    """A guard of a program failed: the replayed inputs take another branch."""


class Slot:
    """A reference to a value of the program (``v{index}``) inside an argument template."""
    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def __repr__(self):
        return f"v{self.index}"


# Instruction kinds. Each instruction is a tuple ``(kind, out, fn, args, kw)``.
CALL = "call"       # out = prim(*args, **kw)        (prim.impl, or bind when tracked)
FUNC = "func"       # out = fn(*args, **kw)          (a NumPy function without derivative)
ITEM = "item"       # out = args[0][fn]              (an element of a tuple result)
CONST = "const"     # out = args[0]                  (a constant made trackable)
GUARD = "guard"     # check(args[0]) == kw           (fn names the check; out is None)

_INLINE = {operator.add: "+", operator.sub: "-", operator.mul: "*"}
_UNARY = {operator.neg: "-", operator.pos: "+"}


def _slots(t, out):
    tt = type(t)
    if tt is Slot:
        out.add(t.index)
    elif tt is tuple or tt is list:
        for a in t:
            _slots(a, out)
    elif tt is dict:
        for a in t.values():
            _slots(a, out)
    elif tt is slice:
        _slots(t.start, out)
        _slots(t.stop, out)
        _slots(t.step, out)
    return out


def fill(t, values):
    """An argument template with its slots replaced by their values (``values[i]`` for
    ``v{i}``), through tuples, lists, dicts and slices."""
    tt = type(t)
    if tt is Slot:
        return values[t.index]
    if tt is tuple or tt is list:
        return tt(fill(a, values) for a in t)
    if tt is dict:
        return {k: fill(a, values) for k, a in t.items()}
    if tt is slice:
        return slice(fill(t.start, values), fill(t.stop, values), fill(t.step, values))
    return t


def reads(instr):
    """The slots an instruction reads."""
    kind, out, fn, args, kw = instr
    s = _slots(args, set())
    if kind != GUARD:
        _slots(kw, s)
    return s


def _same(a, b):
    """A value guard: the same type, shape, dtype and numbers (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is np.ndarray:
        return a.shape == b.shape and a.dtype == b.dtype and \
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    return a == b or (a != a and b != b)


class Program:
    """An immutable recorded program: inputs, instructions, outputs.

    ``len(program)`` counts instructions, ``program.guards`` the guards; ``str(program)``
    lists it; ``program(*leaves)`` replays it on plain values (``GuardMiss`` when a guard
    fails); ``program.bound(*leaves)`` replays it through ``bind`` on tracked values.
    """

    def __init__(self, n_inputs, instructions, outputs, out_tree, name="f", types=None):
        self.n_inputs = n_inputs
        self.types = types or {}
        self.out_tree = out_tree
        self.name = name
        self.instructions, self.outputs = _prune(*_cse(tuple(instructions), tuple(outputs)))
        self._plain = None
        self._bound = None
        self.backend = None     # "python", "numba" or "fused" once lowered
        self._calls = 0

    @property
    def guards(self):
        return [i for i in self.instructions if i[0] == GUARD]

    def __len__(self):
        return len(self.instructions)

    def __call__(self, *leaves):
        run = self._plain
        if run is None:
            # A long scalar program goes to the Numba interpreter at once (compiled.py).
            run = None if scalar_backend[0] is None else scalar_backend[0](self, self.types,
                                                                          early=True)
            self.backend, self._calls = ("python", self._calls) if run is None else ("numba", None)
            run = self._plain = run or _lower(self, bound=False)
        elif self._calls is not None:
            # Tiered: a scalar program replayed often moves to the Numba interpreter (whose
            # first use in a process costs Numba's import, about a second). A local copy:
            # another thread may finish the move meanwhile.
            calls = (self._calls or 0) + 1
            self._calls = calls
            if calls == NUMBA_AFTER:
                self._calls = None
                fast = None if scalar_backend[0] is None else scalar_backend[0](self, self.types)
                if fast is None and array_backend[0] is not None:
                    fast = array_backend[0](self, leaves)
                if fast is not None:
                    run = self._plain = fast
                    self.backend = getattr(fast, "backend", "numba")
        return run(*leaves)

    def bound(self, *leaves):
        run = self._bound
        if run is None:
            run = self._bound = _lower(self, bound=True)
        return run(*leaves)

    def source(self, bound=False):
        """The generated Python source of a replay (for reading and teaching)."""
        return _generate(self, bound)[0]

    def __str__(self):
        lines = [f"program {self.name}({', '.join(f'v{i}' for i in range(self.n_inputs))}): "
                 f"{len(self)} instructions, {len(self.guards)} guards"]
        for kind, out, fn, args, kw in self.instructions:
            if kind == GUARD:
                lines.append(f"  guard {fn}({_show(args[0])}) == {kw!r}"
                             if fn != "value" else f"  guard value({_show(args[0])})")
                continue
            if kind == ITEM:
                rhs = f"{_show(args[0])}[{fn}]"
            elif kind == CONST:
                rhs = f"constant {_show(args[0])}"
            else:
                name = fn.name if kind == CALL else getattr(fn, "__name__", repr(fn))
                parts = [_show(a) for a in args] + [f"{k}={_show(v)}" for k, v in kw.items()]
                rhs = f"{name}({', '.join(parts)})"
            lines.append(f"  v{out} = {rhs}")
        lines.append("  return " + ", ".join(_show(o) for o in self.outputs))
        return "\n".join(lines)

    __repr__ = __str__


def _show(a):
    t = type(a)
    if t is Slot:
        return repr(a)
    if t is tuple:
        return "(" + ", ".join(_show(x) for x in a) + ("," if len(a) == 1 else "") + ")"
    if t is list:
        return "[" + ", ".join(_show(x) for x in a) + "]"
    if t is slice:
        parts = [a.start, a.stop] + ([a.step] if a.step is not None else [])
        return ":".join("" if x is None else _show(x) for x in parts)
    if t is np.ndarray:
        return f"array{a.shape}" if a.size > 3 else np.array2string(a, separator=", ")
    if t is float:
        return f"{a:.6g}"
    return repr(a)


_PLAIN_KEY = (int, float, bool, complex, str, type(None), type(Ellipsis), np.dtype)


def _key(t):
    """A hashable key of an argument template: equal keys, equal arguments."""
    tt = type(t)
    if tt is Slot:
        return ("v", t.index)
    if tt is tuple or tt is list:
        return (tt.__name__,) + tuple(_key(a) for a in t)
    if tt is dict:
        return ("d",) + tuple((k, _key(v)) for k, v in t.items())
    if tt is slice:
        return ("s", _key(t.start), _key(t.stop), _key(t.step))
    if tt in _PLAIN_KEY:
        return (tt.__name__, repr(t))       # repr: 0.0 and -0.0 stay apart
    return ("id", id(t))                    # arrays and the rest: the same object only


def _rename(t, alias):
    tt = type(t)
    if tt is Slot:
        return Slot(alias[t.index]) if t.index in alias else t
    if tt is tuple or tt is list:
        return tt(_rename(a, alias) for a in t)
    if tt is dict:
        return {k: _rename(v, alias) for k, v in t.items()}
    if tt is slice and any(type(x) is Slot for x in (t.start, t.stop, t.step)):
        return slice(_rename(t.start, alias), _rename(t.stop, alias), _rename(t.step, alias))
    return t


def _cse(instructions, outputs):
    """Merge repeated calls: the same primitive on the same arguments (the implementations
    are pure functions) is computed once; the reverse sweep repeats forward slices, masks
    and partials often."""
    alias, seen, kept = {}, {}, []
    for ins in instructions:
        kind, out, fn, args, kw = ins
        if alias and _slots((args, kw), set()) & alias.keys():
            args = _rename(args, alias)
            if kind != GUARD:
                kw = _rename(kw, alias)
            ins = (kind, out, fn, args, kw)
        if kind in (CALL, FUNC, ITEM):
            key = (kind, fn if kind == ITEM else id(fn), _key(args), _key(kw))
            first = seen.get(key)
            if first is not None:
                alias[out] = first
                continue
            seen[key] = out
        # An instruction no merge touched stays the same object (readers such as
        # nn.export_onnx key what they noted while recording by its identity).
        kept.append(ins)
    return tuple(kept), tuple(_rename(o, alias) for o in outputs)


def _prune(instructions, outputs):
    """Drop instructions whose results no output and no guard needs (dead records)."""
    live = set()
    for o in outputs:
        if type(o) is Slot:
            live.add(o.index)
    kept = []
    for ins in reversed(instructions):
        if ins[0] == GUARD or ins[1] in live:
            live |= reads(ins)
            kept.append(ins)
    kept.reverse()
    return tuple(kept), outputs


def _generate(program, bound):
    """Python source of a replay and the names it uses."""
    names = {"_miss": GuardMiss, "_index": operator.index, "_bool": bool, "_int": int,
             "_same": _same, "_shape": np.shape, "_bind": bind}
    if bound:
        from .boxes import concrete, data, lift
        names["_lift"] = lift           # a function without derivative sees plain values
        names["_index"] = lambda v: operator.index(data(v))
        names["_int"] = lambda v: int(data(v))
        names["_concrete"] = concrete
    consts = {}

    def const(c):
        key = id(c)
        if key not in consts:
            consts[key] = f"c{len(consts)}"
            names[consts[key]] = c
        return consts[key]

    def expr(t):
        tt = type(t)
        if tt is Slot:
            return f"v{t.index}"
        if (tt is tuple or tt is slice or tt is dict) and not _slots(t, set()):
            return const(t)         # one constant, not rebuilt on every replay
        if tt is tuple:
            return "(" + "".join(expr(a) + ", " for a in t) + ")"
        if tt is list:
            return "[" + ", ".join(expr(a) for a in t) + "]"
        if tt is slice:
            return f"slice({expr(t.start)}, {expr(t.stop)}, {expr(t.step)})"
        if tt is dict:
            return "{" + ", ".join(f"{k!r}: {expr(v)}" for k, v in t.items()) + "}"
        if t is None or tt is bool or tt is int:
            return repr(t)
        return const(t)

    types = program.types
    names["_square"] = np.square
    # Last use of each slot: a value is deleted after it, so its buffer can be reused.
    last = {}
    for k, ins in enumerate(program.instructions):
        for s in reads(ins):
            last[s] = k
    keep = {o.index for o in program.outputs if type(o) is Slot}
    lines = [f"def replay({''.join(f'v{i}, ' for i in range(program.n_inputs))}):"]
    for k, (kind, out, fn, args, kw) in enumerate(program.instructions):
        if kind == GUARD:
            v = expr(args[0])
            if fn == "value":
                test = (f"not _same(_concrete({v}), {const(kw)})" if bound
                        else f"not _same({v}, {const(kw)})")
            elif fn == "shape":
                test = f"_shape({v}) != {kw!r}"
            else:
                test = f"_{fn}({v}) != {kw!r}"
            lines.append(f"    if {test}: raise _miss({k})")
        elif kind == ITEM:
            lines.append(f"    v{out} = {expr(args[0])}[{fn}]")
        elif kind == CONST:
            lines.append(f"    v{out} = {expr(args[0])}")
        else:
            call_args = [expr(a) for a in args] + [f"{key}={expr(v)}" for key, v in kw.items()]
            if kind == CALL and bound:
                rhs = f"_bind({const(fn)}, {', '.join(call_args)})"
            elif kind == FUNC and bound:
                rhs = f"_lift({const(fn)}, {', '.join(call_args)})"
            elif kind == CALL and not bound and _special(fn, args, kw, types) is not None:
                rhs = _special(fn, args, kw, types).format(*call_args, **{
                    key: expr(v) for key, v in kw.items()})
            elif kind == CALL and not kw and fn.impl in _INLINE and len(args) == 2:
                rhs = f"{call_args[0]} {_INLINE[fn.impl]} {call_args[1]}"
            elif kind == CALL and not kw and fn.impl in _UNARY and len(args) == 1:
                rhs = f"{_UNARY[fn.impl]}{call_args[0]}"
            else:
                f = fn.impl if kind == CALL else fn
                rhs = f"{const(f)}({', '.join(call_args)})"
            lines.append(f"    v{out} = {rhs}")
        dead = sorted(s for s, j in last.items() if j == k and s not in keep)
        if dead:
            lines.append("    del " + ", ".join(f"v{s}" for s in dead))
    outs = []
    for o in program.outputs:
        if type(o) is Slot:
            outs.append(f"v{o.index}")
        elif type(o) is np.ndarray:
            outs.append(f"{const(o)}.copy()")       # the cache's constant stays unshared
        else:
            outs.append(expr(o))
    lines.append(f"    return ({''.join(o + ', ' for o in outs)})")
    return "\n".join(lines) + "\n", names


def _special(fn, args, kw, types):
    """A cheaper spelling of a call that computes the same thing, when the recorded types
    allow it (NumPy's Python-level wrappers cost microseconds on small arrays)."""
    name = fn.name

    def array(t):
        return type(t) is Slot and types.get(t.index) is np.ndarray
    if name == "getitem" and len(args) == 1 and list(kw) == ["idx"]:
        return "{0}[{idx}]"                       # the implementation is x[idx]
    if name == "sum" and len(args) == 1 and array(args[0]) and sorted(kw) == ["axis",
                                                                             "keepdims"]:
        return "{0}.sum(axis={axis}, keepdims={keepdims})"
    if name == "divide" and not kw and len(args) == 2 and (array(args[0]) or array(args[1])):
        return "{0} / {1}"                        # np.divide on an array operand
    if name == "power" and not kw and len(args) == 2 and array(args[0]) \
            and type(args[1]) is int and args[1] == 2:
        return "_square({0})"                     # what the implementation calls
    return None


def _lower(program, bound):
    src, names = _generate(program, bound)
    code = compile(src, f"<ad.jit program {program.name}>", "exec")
    exec(code, names)
    return names["replay"]
