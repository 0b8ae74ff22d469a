"""Forward mode: ``Dual`` numbers ``value + tangent·ε`` with ``ε² = 0``, and the JVP step.

``sin(a + bε) = sin a + b cos a · ε``: applying a primitive to a dual number applies its
implementation to the value and its JVP rule to the tangent. The tangent may carry a batch
of directions on one leading axis (``jacfwd`` pushes all basis vectors in one sweep).
"""
import numpy as np

from .arrays import broadcast, dtype_of, zeros
from .boxes import Box, meta
from .arrays import partial_at
from .core import (EAGER_FORWARD, batched_levels, bind, box_types, is_complex, leaked,
                   live_levels, ndim_of, real_like, shape_of)

__all__ = ["Dual"]


class Dual(Box):
    """A forward-mode value: ``value + tangent·ε`` at a nesting ``level``.

    >>> d = Dual(0.5, 1.0)
    >>> y = np.sin(d) * d           # d/dx x sin x = sin x + x cos x
    >>> round(float(y.tangent), 6)
    0.918217
    """
    # ``_view`` (set only on results NumPy gives as views: basic indexing, reshape,
    # transpose; a write through one is refused) is left unset otherwise: no cost.
    __slots__ = ("value", "tangent", "level", "_view")

    def __init__(self, value, tangent=None, level=EAGER_FORWARD):
        if tangent is None:
            tangent = np.zeros_like(value) if type(value) is not float else 0.0
        elif level == EAGER_FORWARD and is_complex(tangent) and not is_complex(value):
            # a user's Dual(x, 1j·v): the real rules would drop the imaginary part
            raise TypeError("Dual: a complex tangent for a real value; the derivatives of "
                            "real values are real. Make two Duals, of the real and the "
                            "imaginary part, and combine the tangents (J(a + ib) = Ja + i·Jb).")
        self.value = value
        self.tangent = tangent
        self.level = level

    def apply(self, prim, args, kw):
        level = self.level
        if level not in live_levels:        # (the lanes check it too: _apply_elementwise)
            raise leaked(self)
        if prim.partials is not None:        # elementwise: unary or binary
            return _apply_elementwise(prim, args, level)
        if len(args) == 1 and not prim.full_jvp:
            return _apply_unary(prim, self, kw, level)
        vals = []
        tans = []
        nested = False
        for a in args:
            if type(a) is Dual and a.level == level:
                v = a.value
                vals.append(v)
                tans.append(a.tangent)
            else:
                v = a
                vals.append(a)
                tans.append(None)
            if type(v) in box_types:
                nested = True
        ans = bind(prim, *vals, **kw) if nested else prim.impl(*vals, **kw)
        if prim.nondiff:
            return ans
        nb = batched_levels.get(level, 0) if batched_levels else 0
        if prim.broadcasts and nb:
            tans = _pad_batch(tans, vals, ans, nb)
        if prim.full_jvp:
            t_out = prim.jvp(tans, ans, *vals, **kw)
        elif prim.linear:
            batch = next(shape_of(t)[:nb] for t in tans if t is not None)
            t_out = bind(prim, *[_zeros(batch, v) if t is None else t
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
        return _dual(ans, real_like(t_out, ans), level)

    def __repr__(self):
        return f"Dual({self.value!r}, {self.tangent!r})"

    def __reduce_ex__(self, protocol):
        # A user-made Dual of plain arrays is data: value and tangent.
        if self.level == EAGER_FORWARD and type(self.value) not in box_types \
                and type(self.tangent) not in box_types:
            return (Dual, (self.value, self.tangent))
        return Box.__reduce_ex__(self, protocol)

    # ----- assignment (Box.__setitem__) -----
    def constant(self, value):
        """``value`` as a Dual of this level with a zero tangent (batch axes included)."""
        batch = shape_of(self.tangent)[:ndim_of(self.tangent) - ndim_of(self.value)]
        return _dual(value, zeros(batch + shape_of(value), np.result_type(value),
                                  like=meta(value)), self.level)

    def _assignable(self):
        pass

    def _become(self, new):
        """Take the value and tangent of ``new`` (the array after an assignment): forward
        mode keeps no graph, so rebinding in place is all assignment needs."""
        if type(new) is not Dual:
            raise _cross_level_assignment()
        self.value, self.tangent, self.level = new.value, new.tangent, new.level


def _cross_level_assignment():
    return TypeError(
        "x[i] = v: v is tracked by a transform that x is not part of (x was created "
        "outside it), so x cannot hold it. Create x inside the transform "
        "(np.zeros_like(v)), or use x.at[i].set(v), which returns a new array.")


box_types.add(Dual)


def _apply_elementwise(prim, args, level):
    """The hot path: a unary or binary elementwise primitive, no lists. With a batch of
    directions, a tangent of a lower-rank argument is padded so it broadcasts as the
    argument does."""
    if level not in live_levels:        # a leaked box (JAX's leaked-tracer error)
        raise leaked(next(x for x in args if type(x) is Dual and x.level == level))
    nb = batched_levels.get(level, 0) if batched_levels else 0
    partials = prim.partials
    if len(args) == 2:
        a, b = args
        if type(a) is Dual and a.level == level:
            av, at = a.value, a.tangent
        else:
            av = a
            at = None
        if type(b) is Dual and b.level == level:
            bv, bt = b.value, b.tangent
        else:
            bv = b
            bt = None
        if type(av) in box_types or type(bv) in box_types:
            ans = bind(prim, av, bv)
        else:
            ans = prim.impl(av, bv)
        if nb and type(ans) is not float:
            nd = ndim_of(ans)
            if at is not None and ndim_of(av) < nd:
                at = _pad(at, nb, nd - ndim_of(av))
            if bt is not None and ndim_of(bv) < nd:
                bt = _pad(bt, nb, nd - ndim_of(bv))
        da, db = partials
        try:
            if at is not None and da is not None:
                t = (at if da == 1.0 else -at) if type(da) is float else at * da(ans, av, bv)
                if bt is not None and db is not None:
                    t = t + ((bt if db == 1.0 else -bt) if type(db) is float
                             else bt * db(ans, av, bv))
            elif bt is not None and db is not None:
                t = (bt if db == 1.0 else -bt) if type(db) is float else bt * db(ans, av, bv)
            else:
                return ans
        except ArithmeticError:             # float 1/0 in a partial: NumPy's inf
            t = _tangent_at(partials, ans, (av, bv), (at, bt))
    else:
        a = args[0]
        if type(a) is Dual and a.level == level:
            av, at = a.value, a.tangent
        else:
            return bind(prim, *args)
        ans = bind(prim, av) if type(av) in box_types else prim.impl(av)
        d = partials[0]
        try:
            t = (at if d == 1.0 else -at) if type(d) is float else at * d(ans, av)
        except ArithmeticError:             # float 1/0 in the partial: NumPy's inf
            t = at * partial_at(d, ans, (av,))
        if prim.real_out:
            t = real_like(t, ans)      # abs, real, imag, angle: Re(d·t)
    if type(ans) is not float:
        t = _full_shape(t, ans, nb)
    # _dual() inlined: this is the scalar hot path, where a call costs ~10 % of an operation.
    out = _new(Dual)
    out.value = ans
    out.tangent = t
    out.level = level
    return out


_new = object.__new__


def _tangent_at(partials, ans, vals, tans):
    """``Σ tᵢ·∂ᵢ`` of a binary primitive with its partials at NumPy floats (``partial_at``)."""
    t = None
    for d, ti in zip(partials, tans):
        if ti is None or d is None:
            continue
        c = (ti if d == 1.0 else -ti) if type(d) is float else ti * partial_at(d, ans, vals)
        t = c if t is None else t + c
    return t


def _dual(ans, t, level):
    out = _new(Dual)
    out.value = ans
    out.tangent = t
    out.level = level
    return out
Dual._elementwise = staticmethod(_apply_elementwise)


def _apply_unary(prim, a, kw, level):
    """One argument (indexing, reductions, reshapes): no loops, no lists."""
    v = a.value
    ans = bind(prim, v, **kw) if type(v) in box_types else prim.impl(v, **kw)
    if prim.nondiff:
        return ans
    if prim.linear:
        t = bind(prim, a.tangent, **kw)
    else:
        rule = prim.jvp[0]
        if rule is None:
            return ans
        t = rule(a.tangent, ans, v, **kw)
    out = _dual(ans, real_like(t, ans), level)
    if prim.view is not None:
        out._view = prim.view
    return out


def _pad(t, nb, k):
    s = shape_of(t)
    return t.reshape(s[:nb] + (1,) * k + s[nb:])


def _pad_batch(tans, vals, ans, nb):
    """Give batched tangents ``(B,) + (1,)*k + x.shape`` so they broadcast like ``x`` does."""
    out_nd = np.ndim(ans) if type(ans) is not float else 0
    padded = []
    for t, v in zip(tans, vals):
        if t is not None:
            k = out_nd - (np.ndim(v) if type(v) is not float else 0)
            if k > 0:
                t = _pad(t, nb, k)
        padded.append(t)
    return padded


def _zeros(batch, v):
    v = meta(v)
    return zeros(batch + shape_of(v), dtype_of(v), like=v)


def _full_shape(t, ans, nb):
    """A tangent has the output's full shape (plus batch), even if it came from a scalar."""
    s = shape_of(t)
    target = shape_of(ans)
    if s[nb:] != target or len(s) != nb + len(target):
        t = broadcast(t, s[:nb] + target)
    return t
