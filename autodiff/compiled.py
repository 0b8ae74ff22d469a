"""The Numba backend of recorded programs: scalar (Python-float) programs run by one
compiled interpreter over a flat opcode array.

A program whose every value is a Python float (the scalar chain, a Newton iteration on
numbers, the gradient of either: ``ad.jit(ad.grad(f))(1.5)``) is lowered to an ``int64``
array of rows ``(opcode, out, a, b)`` over one ``float64`` register file holding the
inputs, the constants and every intermediate. The interpreter is compiled once per
installation (``numba.njit(cache=True)``, on-disk) whatever the program, so compile time
does not grow with program length; a replay then costs some nanoseconds per operation
instead of a Python call. Guards are opcodes too: a failing one returns its row and the
replay raises ``GuardMiss`` as the Python backend does.

Numba is imported here lazily, inside ``_numba_interpreter``, the first time a scalar
program is lowered: after ``program.NUMBA_AFTER`` replays on the Python backend, so a
function called a few times never pays Numba's import (``import autodiff`` never does). Without Numba, or with
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

_BINARY = {"add": 0, "multiply": 1, "subtract": 2, "divide": 3, "power": 4,
           "less": 5, "less_equal": 6, "greater": 7, "greater_equal": 8, "equal": 9,
           "not_equal": 10, "arctan2": 11, "hypot": 12}
_UNARY = {"negative": 20, "positive": 21, "sin": 22, "cos": 23, "tan": 24, "exp": 25,
          "log": 26, "sqrt": 27, "tanh": 28, "sinh": 29, "cosh": 30, "arctan": 31,
          "arcsin": 32, "arccos": 33, "log1p": 34, "expm1": 35, "absolute": 36,
          "square": 37, "reciprocal": 38}
_GUARD_TRUE, _GUARD_FALSE, _COPY = 40, 41, 42
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
                if op < 20:
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


def lower_numba(program, types):
    """A replay of ``program`` through the compiled interpreter, or ``None`` when the
    program is not a scalar one (a value that is not a Python float or a comparison's
    bool, a primitive without an opcode, another guard than ``bool``)."""
    if len(program.instructions) < MIN_LENGTH or not available():
        return None
    if any(types.get(i) is not float for i in range(program.n_inputs)):
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
                code.append((_GUARD_TRUE if kw else _GUARD_FALSE, 0, operand(args[0]), 0))
                continue
            if kind == CONST:
                if types.get(out) is not float:
                    return None
                src = operand(args[0])
                reg_of[out] = len(regs0)
                regs0.append(0.0)
                code.append((_COPY, reg_of[out], src, 0))
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
            code.append((op, reg_of[out], a, b))
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
    code = np.asarray(code, dtype=np.int64).reshape(-1, 4)
    template = np.asarray(regs0, dtype=np.float64)
    n_in = program.n_inputs

    def replay(*leaves):
        regs = template.copy()
        for i in range(n_in):
            x = leaves[i]
            if type(x) is not float:
                raise GuardMiss(-1)     # (the cache keys on the type; never reached)
            regs[i] = x
        k = run(code, regs)
        if k >= 0:
            raise GuardMiss(k)
        return tuple(t(regs[r]) for r, t in outs)

    return replay


class _NotScalar(Exception):
    pass
