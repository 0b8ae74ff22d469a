"""Functions with derivative rules of their own: ``custom_jvp``, ``custom_vjp``, ``checkpoint``.

Each wraps the user's function as a primitive made for it (not in the registry), so it goes
through ``bind`` like any other and nests with every transform.

- ``custom_jvp``: the rule serves both modes. Reverse mode needs ``Jᵀg``; the rule's tangent
  output is linear in the tangents, so ``Jᵀg`` is the VJP of ``t ↦ rule(x, t)[1]``.
- ``custom_vjp``: reverse mode only (forward mode is a clear error, as in JAX). ``fwd`` is
  run again during the sweep to get the residuals.
- ``checkpoint``: the VJP re-runs ``f`` under a fresh reverse trace, trading compute for
  memory: nothing inside ``f`` is kept on the tape between the two sweeps.
"""
import functools

import numpy as np

from .boxes import unbox
from .core import Primitive, bind, ndim_of, shape_of

__all__ = ["custom_jvp", "custom_vjp", "checkpoint"]


def _zeros_like(x, batch=()):
    v = unbox(x)
    return np.zeros(batch + np.shape(v), dtype=np.result_type(v) if type(v) is not float
                    else np.float64)


def _batch_of(ts, xs):
    for t, x in zip(ts, xs):
        if t is not None:
            return shape_of(t)[:ndim_of(t) - ndim_of(x)]
    return ()


def _pull_linear(fun, xs, g, nb):
    """The cotangents of ``fun``'s arguments ``xs`` for output cotangent ``g`` (batched)."""
    from .api import _level
    from .reverse import Variable, backward_pass
    with _level() as level:
        vs = [Variable(x, level=level) for x in xs]
        out = fun(*vs)
    if not (type(out) is Variable and out.level == level):
        return [None] * len(xs)
    got = {id(v): c for v, c in backward_pass([(out, g)], nb)}
    return [got.get(id(v)) for v in vs]


class custom_jvp:
    """A function with its own forward rule, used by both modes (JAX's semantics).

    >>> @custom_jvp
    ... def f(x):
    ...     return np.sin(x)
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return np.sin(x), np.cos(x) * t
    """

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.rule = None
        self.prim = Primitive(f"custom_jvp[{getattr(fun, '__name__', 'f')}]",
                              lambda *xs: fun(*xs), jvp=self._jvp, vjp=self._vjp)

    def defjvp(self, rule):
        self.rule = rule
        return rule

    def __call__(self, *args):
        if self.rule is None:
            raise TypeError(f"{self.prim.name}: no rule yet; give one with @f.defjvp")
        return bind(self.prim, *args)

    def _jvp(self, tangents, ans, *xs):
        batch = _batch_of(tangents, xs)
        ts = tuple(_zeros_like(x, batch) if t is None else t for t, x in zip(tangents, xs))
        return self.rule(tuple(xs), ts)[1]

    def _vjp(self, g, ans, *xs):
        nb = ndim_of(g) - ndim_of(ans)
        return _pull_linear(lambda *ts: self.rule(tuple(xs), ts)[1],
                            [_zeros_like(x) for x in xs], g, nb)


class custom_vjp:
    """A function with its own reverse rule (JAX's semantics): ``f.defvjp(fwd, bwd)`` with
    ``fwd(*args) -> (out, residuals)`` and ``bwd(residuals, g) -> tuple of cotangents``."""

    def __init__(self, fun):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.fwd = self.bwd = None
        self.prim = Primitive(f"custom_vjp[{getattr(fun, '__name__', 'f')}]",
                              lambda *xs: fun(*xs), jvp=self._jvp, vjp=self._vjp)

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args):
        if self.bwd is None:
            raise TypeError(f"{self.prim.name}: no rule yet; give one with f.defvjp(fwd, bwd)")
        return bind(self.prim, *args)

    def _jvp(self, tangents, ans, *xs):
        raise TypeError(
            f"{self.prim.name} has only a reverse-mode rule (custom_vjp), so forward mode "
            "(jvp, jacfwd, hessian, Dual) cannot differentiate it; use custom_jvp instead.")

    def _vjp(self, g, ans, *xs):
        _, res = self.fwd(*xs)
        cts = self.bwd(res, g)
        if not isinstance(cts, (tuple, list)) or len(cts) != len(xs):
            raise TypeError(f"{self.prim.name}: bwd must return a tuple with one cotangent "
                            f"per argument ({len(xs)}), got {type(cts).__name__}")
        return list(cts)


def checkpoint(f):
    """``f`` whose intermediate values are recomputed in the backward sweep, not stored."""
    def jvp_rule(tangents, ans, *xs):
        from .api import _level
        from .forward import Dual
        batch = _batch_of(tangents, xs)
        with _level(len(batch)) as level:
            out = f(*[Dual(x, _zeros_like(x, batch) if t is None else t, level)
                      for x, t in zip(xs, tangents)])
        return out.tangent if type(out) is Dual and out.level == level else None

    def vjp_rule(g, ans, *xs):
        return _pull_linear(f, list(xs), g, ndim_of(g) - ndim_of(ans))

    prim = Primitive(f"checkpoint[{getattr(f, '__name__', 'f')}]", lambda *xs: f(*xs),
                     jvp=jvp_rule, vjp=vjp_rule)

    @functools.wraps(f)
    def checkpointed(*args):
        return bind(prim, *args)

    return checkpointed
