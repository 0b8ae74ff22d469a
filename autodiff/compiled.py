"""The Numba backend of recorded programs: scalar (Python-float) programs run by one
compiled interpreter over a flat opcode array.

A program whose every value is a Python float (the scalar chain, a Newton iteration on
numbers, the gradient of either: ``ad.jit(ad.grad(f))(1.5)``) is lowered to an ``int32``
array of rows ``(opcode, out, a, b, c)`` over one ``float64`` register file holding the
inputs, the constants and every intermediate. A product, a quotient or a
``sin``/``cos``/``exp`` with one use only is fused into the operation that uses it
(``a·b + c``, ``a·b − c``, ``c − a·b``, ``a·cos(b)``, ``a·(b/c)``: the adjoint patterns
of the reverse sweep), with the same roundings in the same order: a gradient is about a
third fewer opcodes. The interpreter is compiled once per installation
(``numba.njit(cache=True)``, on-disk) whatever the program, so compile time does not grow
with program length; a replay then costs some nanoseconds per operation
instead of a Python call. Guards are opcodes too: a failing one returns its row and the
replay raises ``GuardMiss`` as the Python backend does.

Numba is imported here lazily, inside ``_numba_interpreter``, the first time a scalar
program is lowered: after ``program.NUMBA_AFTER`` replays on the Python backend, so a
function called a few times never pays Numba's import (``import autodiff`` never does);
at its first replay already when the interpreter is loaded, or when the program has
``EARLY_LENGTH`` instructions or more (generating and compiling the Python replay of
such a program, about 0.1 ms per instruction, costs more than loading the interpreter
from Numba's cache, about 0.1–0.5 s). Without Numba, or with
``AUTODIFF_JIT_NUMBA=0``, programs replay on the Python backend. Opcode semantics are
NumPy's on float64 (``error_model="numpy"``: 1/0 is inf, log(-1) is nan), which is what
the primitives' implementations give on Python floats where ``math`` refuses.
"""
import math
import os
import threading

import numpy as np

from .program import CALL, CONST, GUARD, GuardMiss, Slot

__all__ = ["lower_numba", "available"]

#: Programs shorter than this replay faster in Python than through one Numba call.
MIN_LENGTH = 24
#: Scalar programs this long skip the Python backend (see the module's docstring).
EARLY_LENGTH = 1000

_BINARY = {"add": 0, "multiply": 1, "subtract": 2, "divide": 3, "power": 4,
           "less": 5, "less_equal": 6, "greater": 7, "greater_equal": 8, "equal": 9,
           "not_equal": 10, "arctan2": 11, "hypot": 12}
_UNARY = {"negative": 20, "positive": 21, "sin": 22, "cos": 23, "tan": 24, "exp": 25,
          "log": 26, "sqrt": 27, "tanh": 28, "sinh": 29, "cosh": 30, "arctan": 31,
          "arcsin": 32, "arccos": 33, "log1p": 34, "expm1": 35, "absolute": 36,
          "square": 37, "reciprocal": 38}
_GUARD_TRUE, _GUARD_FALSE, _COPY = 40, 41, 42
# Fused opcodes (a product or a sin/cos/exp feeding the next operation).
_MULADD, _MULSUB, _SUBMUL, _MULSIN, _MULCOS, _MULEXP, _MULDIV = 50, 51, 52, 53, 54, 55, 56
_MUL, _ADD, _SUB, _DIV = _BINARY["multiply"], _BINARY["add"], _BINARY["subtract"], \
    _BINARY["divide"]
_UNARY_FUSED = {_UNARY["sin"]: _MULSIN, _UNARY["cos"]: _MULCOS, _UNARY["exp"]: _MULEXP}
#: The value types of a scalar program: floats, and comparisons' booleans (NumPy's, as
#: the comparison primitives give them).
_TYPES = (float, bool, np.bool_)

_lock = threading.Lock()
_compiled = []


def available():
    """Whether the Numba backend may be used (Numba installed, not switched off)."""
    if os.environ.get("AUTODIFF_JIT_NUMBA", "1") == "0":
        return False
    try:
        import importlib.util
        return importlib.util.find_spec("numba") is not None
    except (ImportError, ValueError):
        return False


def _numba_interpreter():
    """The compiled interpreter (built, or loaded from Numba's on-disk cache, once)."""
    with _lock:
        if _compiled:
            return _compiled[0]
        import numba    # lazy: only when a scalar program is lowered (tests/test_layering.py)

        @numba.njit(cache=True, error_model="numpy", nogil=True)
        def run(code, regs):
            for k in range(code.shape[0]):
                op = code[k, 0]
                a = regs[code[k, 2]]
                if op >= 50:
                    b = regs[code[k, 3]]
                    if op == 50:
                        r = a * b + regs[code[k, 4]]
                    elif op == 51:
                        r = a * b - regs[code[k, 4]]
                    elif op == 52:
                        r = regs[code[k, 4]] - a * b
                    elif op == 53:
                        r = a * math.sin(b)
                    elif op == 54:
                        r = a * math.cos(b)
                    elif op == 55:
                        r = a * math.exp(b)
                    else:
                        r = a * (b / regs[code[k, 4]])
                elif op < 20:
                    b = regs[code[k, 3]]
                    if op == 0:
                        r = a + b
                    elif op == 1:
                        r = a * b
                    elif op == 2:
                        r = a - b
                    elif op == 3:
                        r = a / b
                    elif op == 4:
                        r = a ** b
                    elif op == 5:
                        r = 1.0 if a < b else 0.0
                    elif op == 6:
                        r = 1.0 if a <= b else 0.0
                    elif op == 7:
                        r = 1.0 if a > b else 0.0
                    elif op == 8:
                        r = 1.0 if a >= b else 0.0
                    elif op == 9:
                        r = 1.0 if a == b else 0.0
                    elif op == 10:
                        r = 1.0 if a != b else 0.0
                    elif op == 11:
                        r = math.atan2(a, b)
                    else:
                        r = math.hypot(a, b)
                elif op < 40:
                    if op == 20:
                        r = -a
                    elif op == 21:
                        r = a
                    elif op == 22:
                        r = math.sin(a)
                    elif op == 23:
                        r = math.cos(a)
                    elif op == 24:
                        r = math.tan(a)
                    elif op == 25:
                        r = math.exp(a)
                    elif op == 26:
                        r = math.log(a)
                    elif op == 27:
                        r = math.sqrt(a)
                    elif op == 28:
                        r = math.tanh(a)
                    elif op == 29:
                        r = math.sinh(a)
                    elif op == 30:
                        r = math.cosh(a)
                    elif op == 31:
                        r = math.atan(a)
                    elif op == 32:
                        r = math.asin(a)
                    elif op == 33:
                        r = math.acos(a)
                    elif op == 34:
                        r = math.log1p(a)
                    elif op == 35:
                        r = math.expm1(a)
                    elif op == 36:
                        r = abs(a)
                    elif op == 37:
                        r = a * a
                    else:
                        r = 1.0 / a
                elif op == 40:
                    if a == 0.0:
                        return k
                    continue
                elif op == 41:
                    if a != 0.0:
                        return k
                    continue
                else:
                    r = a
                regs[code[k, 1]] = r
            return -1

        _compiled.append(run)
        return run


def lower_numba(program, types, early=False):
    """A replay of ``program`` through the compiled interpreter, or ``None`` when the
    program is not a scalar one (a value that is not a Python float or a comparison's
    bool, a primitive without an opcode, another guard than ``bool``). ``early``: asked
    at the program's first replay, which moves only a long program, or any once the
    interpreter is loaded."""
    if any(types.get(i) is not float for i in range(program.n_inputs)):
        return None
    n = len(program.instructions)
    if n < MIN_LENGTH or (early and n < EARLY_LENGTH and not _compiled) or not available():
        return None
    regs0 = [0.0] * program.n_inputs
    reg_of = {}                 # slot -> register
    for i in range(program.n_inputs):
        reg_of[i] = i
    consts = {}

    def operand(t):
        if type(t) is Slot:
            return reg_of[t.index]
        if type(t) in (float, int, bool) and not isinstance(t, np.generic):
            key = (type(t), t)
            if key not in consts:
                consts[key] = len(regs0)
                regs0.append(float(t))
            return consts[key]
        raise _NotScalar()

    code = []
    try:
        for kind, out, fn, args, kw in program.instructions:
            if kind == GUARD:
                if fn != "bool":
                    return None
                code.append((_GUARD_TRUE if kw else _GUARD_FALSE, 0, operand(args[0]), 0, 0))
                continue
            if kind == CONST:
                if types.get(out) is not float:
                    return None
                src = operand(args[0])
                reg_of[out] = len(regs0)
                regs0.append(0.0)
                code.append((_COPY, reg_of[out], src, 0, 0))
                continue
            if kind != CALL or kw or types.get(out) not in _TYPES:
                return None
            name = fn.name
            if name in _BINARY and len(args) == 2:
                a, b = operand(args[0]), operand(args[1])
                op = _BINARY[name]
            elif name in _UNARY and len(args) == 1:
                a, b = operand(args[0]), 0
                op = _UNARY[name]
            else:
                return None
            if types.get(out) is not float and op not in range(5, 11):
                return None
            reg_of[out] = len(regs0)
            regs0.append(0.0)
            code.append((op, reg_of[out], a, b, 0))
        outs = []
        for o in program.outputs:
            if type(o) is Slot:
                t = types.get(o.index)
                if t not in _TYPES:
                    return None
                outs.append((reg_of[o.index], t))
            elif type(o) is float:
                outs.append((operand(o), float))
            else:
                return None
    except _NotScalar:
        return None
    run = _numba_interpreter()
    rows = _fuse(code, {r for r, _ in outs})
    # int32 rows: half the bytes of int64 to stream per replay (a replay after the caches
    # were flushed, by a garbage collection say, waits on memory more than it computes).
    if len(regs0) >= 2 ** 31:
        return None
    code = np.asarray([row for row, _ in rows], dtype=np.int32).reshape(-1, 5)
    # A failing guard's row -> its instruction (GuardMiss reports the instruction).
    guard_at = {k: src for k, (_, src) in enumerate(rows) if src is not None}
    template = np.asarray(regs0, dtype=np.float64)
    n_in = program.n_inputs
    # Register files to reuse: each register is written before it is read (inputs by the
    # call, constants never, intermediates by their instruction), so a file needs no reset;
    # one per concurrent replay (list.pop and append are atomic).
    pool = []
    floats = all(t is float for _, t in outs)
    out_regs = [r for r, _ in outs]
    out_types = [t for _, t in outs]
    one = len(outs) == 1 and floats

    def replay(*leaves):
        regs = pool.pop() if pool else template.copy()
        try:
            for i in range(n_in):
                x = leaves[i]
                if type(x) is not float:
                    raise GuardMiss(-1)     # (the cache keys on the type; never reached)
                regs[i] = x
            k = run(code, regs)
            if k >= 0:
                raise GuardMiss(guard_at[k])
            if one:
                return (regs.item(out_regs[0]),)
            if floats:
                return tuple([regs.item(r) for r in out_regs])
            return tuple([t(regs.item(r)) for r, t in zip(out_regs, out_types)])
        finally:
            pool.append(regs)

    return replay


def _fuse(code, keep):
    """The rows with a product, or a sin/cos/exp, merged into the one operation that uses
    it (when nothing else reads its register and it is not an output): ``[(row, src)]``,
    ``src`` the guard's position for guard rows. Each fused opcode evaluates the same
    floating-point operations in the same order, so the numbers do not change."""
    uses = {}
    for op, out, a, b, _ in code:
        uses[a] = uses.get(a, 0) + 1
        if op < 20 or op >= 50:
            uses[b] = uses.get(b, 0) + 1
    made = {}                   # register -> the row that computes it (single use only)
    for k, (op, out, a, b, _) in enumerate(code):
        if op < 40 and uses.get(out) == 1 and out not in keep:
            made[out] = k
    dead, merged = set(), set()     # rows absorbed; rows that absorbed one (not movable)
    rows = []

    def single(reg, kinds):
        k = made.get(reg)
        if k is not None and code[k][0] in kinds and k not in dead and k not in merged:
            return k
        return None

    for k, (op, out, a, b, _) in enumerate(code):
        row = (op, out, a, b, 0)
        if op == _ADD or op == _SUB:
            ka, kb = single(a, (_MUL,)), single(b, (_MUL,))
            if ka is not None:              # a·b + c, a·b − c
                row = (_MULADD if op == _ADD else _MULSUB, out, code[ka][2], code[ka][3], b)
                dead.add(ka)
            elif kb is not None:            # c + a·b (addition commutes exactly), c − a·b
                row = (_MULADD if op == _ADD else _SUBMUL, out, code[kb][2], code[kb][3], a)
                dead.add(kb)
        elif op == _MUL:
            ka, kb = single(a, _UNARY_FUSED), single(b, _UNARY_FUSED)
            da, db = single(a, (_DIV,)), single(b, (_DIV,))
            if kb is not None:              # a·f(x) (multiplication commutes exactly)
                row = (_UNARY_FUSED[code[kb][0]], out, a, code[kb][2], 0)
                dead.add(kb)
            elif ka is not None:
                row = (_UNARY_FUSED[code[ka][0]], out, b, code[ka][2], 0)
                dead.add(ka)
            elif db is not None:            # a·(x/y)
                row = (_MULDIV, out, a, code[db][2], code[db][3])
                dead.add(db)
            elif da is not None:
                row = (_MULDIV, out, b, code[da][2], code[da][3])
                dead.add(da)
        if row[0] != op:
            merged.add(k)
        rows.append((row, k if op in (_GUARD_TRUE, _GUARD_FALSE) else None))
    return [r for k, r in enumerate(rows) if k not in dead]


class _NotScalar(Exception):
    pass
