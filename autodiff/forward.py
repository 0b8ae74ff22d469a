"""Forward mode: ``Dual`` numbers ``value + tangent·ε`` with ``ε² = 0``, and the JVP step.

``sin(a + bε) = sin a + b cos a · ε``: applying a primitive to a dual number applies its
implementation to the value and its JVP rule to the tangent. The tangent may carry a batch
of directions on one leading axis (``jacfwd`` pushes all basis vectors in one sweep).
"""
import numpy as np

from .boxes import Box
from .core import EAGER_FORWARD, batched_levels, bind, box_types, shape_of

__all__ = ["Dual"]


class Dual(Box):
    """A forward-mode value: ``value + tangent·ε`` at a nesting ``level``.

    >>> d = Dual(0.5, 1.0)
    >>> y = np.sin(d) * d           # d/dx x sin x = sin x + x cos x
    >>> round(float(y.tangent), 6)
    0.918217
    """
    __slots__ = ("value", "tangent", "level")

    def __init__(self, value, tangent=None, level=EAGER_FORWARD):
        if tangent is None:
            tangent = np.zeros_like(value) if type(value) is not float else 0.0
        self.value = value
        self.tangent = tangent
        self.level = level

    def apply(self, prim, args, kw):
        level = self.level
        vals = []
        tans = []
        for a in args:
            if type(a) is Dual and a.level == level:
                vals.append(a.value)
                tans.append(a.tangent)
            else:
                vals.append(a)
                tans.append(None)
        ans = bind(prim, *vals, **kw)
        if prim.nondiff:
            return ans
        nb = batched_levels.get(level, 0) if batched_levels else 0
        if prim.broadcasts and nb:
            tans = _pad_batch(tans, vals, ans, nb)
        if prim.full_jvp:
            t_out = prim.jvp(tans, ans, *vals, **kw)
        elif prim.linear:
            batch = next(shape_of(t)[:nb] for t in tans if t is not None)
            t_out = bind(prim, *[np.zeros(batch + shape_of(v)) if t is None else t
                                 for t, v in zip(tans, vals)], **kw)
        else:
            t_out = None
            rules = prim.jvp
            for i, t in enumerate(tans):
                if t is None:
                    continue
                rule = rules[i]
                if rule is None:
                    continue
                ti = rule(t, ans, *vals, **kw)
                t_out = ti if t_out is None else t_out + ti
        if t_out is None:
            return ans
        if prim.broadcasts and type(ans) is not float:
            t_out = _full_shape(t_out, ans, nb)
        return Dual(ans, t_out, level)

    def __repr__(self):
        return f"Dual({self.value!r}, {self.tangent!r})"


box_types.add(Dual)


def _pad_batch(tans, vals, ans, nb):
    """Give batched tangents ``(B,) + (1,)*k + x.shape`` so they broadcast like ``x`` does."""
    out_nd = np.ndim(ans) if type(ans) is not float else 0
    padded = []
    for t, v in zip(tans, vals):
        if t is not None:
            k = out_nd - (np.ndim(v) if type(v) is not float else 0)
            if k > 0:
                s = shape_of(t)
                t = np.reshape(t, s[:nb] + (1,) * k + s[nb:])
        padded.append(t)
    return padded


def _full_shape(t, ans, nb):
    """A tangent has the output's full shape (plus batch), even if it came from a scalar."""
    s = shape_of(t)
    target = shape_of(ans)
    if s[nb:] != target or len(s) != nb + len(target):
        t = np.broadcast_to(t, s[:nb] + target)
    return t
