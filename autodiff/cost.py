"""What a recorded tape costs: operations, floating-point work and memory, per sweep.

A primitive declares its floating-point operations (``flops``): a number is the work per
element of its largest operand, a callable ``flops(ans, *args)`` gives the total (matmul
``2mkn``). From the records of a tape this module counts

- the evaluation: each record's declared flops;
- one forward-mode sweep (one direction): per record and active argument, the rule's
  partial derivative (the primitive's own flops) and one multiply-add per output element;
- one reverse sweep (one cotangent): the same per record and argument, per input element;
- the bytes the tape holds: every record's output and saved inputs, each array once.

A Jacobian of f: Rⁿ → Rᵐ costs n forward sweeps or m reverse sweeps on top of one
evaluation; reverse mode also holds the tape. These are models, stated so they can be
checked against a stopwatch (the third tutorial does), not measurements.
"""
from dataclasses import dataclass, field

import numpy as np

from .boxes import unbox
from .core import box_types

__all__ = ["TapeCost", "JacobianCost", "tape_cost", "jacobian_cost"]


def _size(x):
    x = unbox(x)
    return 1 if type(x) is float else int(np.size(x))


def _nbytes(x):
    x = unbox(x)
    return 8 if type(x) is float else int(getattr(np.asarray(x), "nbytes", 8))


def _active(v):
    """The argument indices a record differentiates with respect to."""
    return [i for i, _ in (v.parents or ())]


def _flops(v):
    prim = v.prim
    f = prim.flops
    if f is None:
        return None
    args = [a for a in (v.args or ()) if not isinstance(a, (str, tuple))]
    if callable(f):
        return int(f(unbox(v.value), *[unbox(a) for a in args]))
    return int(f * max([_size(v.value)] + [_size(a) for a in args]))


@dataclass
class TapeCost:
    """Counts for one tape (see the module docstring for the model)."""
    records: int
    inputs: int
    flops: int
    flops_jvp: int
    flops_vjp: int
    bytes: int
    by_primitive: dict = field(default_factory=dict)
    undeclared: tuple = ()

    def __str__(self):
        rows = [f"{'primitive':<22}{'records':>9}{'flops':>14}"]
        for name, (n, fl) in sorted(self.by_primitive.items(), key=lambda kv: -kv[1][1]):
            rows.append(f"{name:<22}{n:>9}{fl:>14,}")
        rows.append("")
        rows.append(f"{self.records} records on {self.inputs} inputs, holding "
                    f"{self.bytes:,} bytes")
        rows.append(f"evaluation {self.flops:,} flops; one forward sweep {self.flops_jvp:,}; "
                    f"one reverse sweep {self.flops_vjp:,}")
        if self.undeclared:
            rows.append(f"(no flop count declared for: {', '.join(self.undeclared)})")
        return "\n".join(rows)


@dataclass
class JacobianCost:
    """The cost of an (n_out × n_in) Jacobian on this tape in each mode."""
    n_in: int
    n_out: int
    forward_flops: int
    reverse_flops: int
    forward_bytes: int
    reverse_bytes: int

    @property
    def cheaper(self):
        return "forward" if self.forward_flops < self.reverse_flops else "reverse"

    def __str__(self):
        return (f"Jacobian {self.n_out}×{self.n_in}: forward mode {self.n_in} sweeps, "
                f"{self.forward_flops:,} flops, {self.forward_bytes:,} bytes; reverse mode "
                f"{self.n_out} sweeps, {self.reverse_flops:,} flops, {self.reverse_bytes:,} "
                f"bytes -> {self.cheaper} is cheaper")


def tape_cost(records):
    ops = [v for v in records if v.prim is not None]
    by, undeclared = {}, set()
    flops = jvp = vjp = 0
    seen, held = set(), 0
    for v in records:
        for a in [v.value] + list(v.args or ()):
            a = unbox(a) if type(a) in box_types else a
            if isinstance(a, (np.ndarray, float, np.generic)) and id(a) not in seen:
                seen.add(id(a))
                held += _nbytes(a)
    for v in ops:
        f = _flops(v)
        name = v.prim.name
        if f is None:
            undeclared.add(name)
            f = 0
        n, total = by.get(name, (0, 0))
        by[name] = (n + 1, total + f)
        flops += f
        for i in _active(v):
            jvp += f + 2 * _size(v.value)
            vjp += f + 2 * _size(v.args[i]) if v.args is not None else f
    return TapeCost(records=len(ops), inputs=len(records) - len(ops), flops=flops,
                    flops_jvp=jvp, flops_vjp=vjp, bytes=held, by_primitive=by,
                    undeclared=tuple(sorted(undeclared)))


def jacobian_cost(records, n_in=None, n_out=None):
    cost = tape_cost(records)
    leaves = [v for v in records if v.prim is None]
    ops = [v for v in records if v.prim is not None]
    if n_in is None:
        n_in = sum(_size(v.value) for v in leaves)
    if n_out is None:
        n_out = _size(ops[-1].value) if ops else 0
    widest = max([_nbytes(v.value) for v in records] or [0])
    return JacobianCost(
        n_in=n_in, n_out=n_out,
        forward_flops=cost.flops + n_in * cost.flops_jvp,
        reverse_flops=cost.flops + n_out * cost.flops_vjp,
        forward_bytes=n_in * widest,
        reverse_bytes=cost.bytes + n_out * widest)
