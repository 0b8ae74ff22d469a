"""Functions with derivative rules of their own: ``custom_jvp``, ``custom_vjp``, ``checkpoint``.

Each wraps the user's function as a primitive made for it (not in the registry), so it goes
through ``bind`` like any other and nests with every transform. JAX's semantics throughout:

- Arguments and outputs may be pytrees, and keywords are resolved to positions by the
  function's signature (defaults included). The primitive sees the flat leaves of the
  differentiable arguments; several output leaves travel packed into one flat vector, as the
  multi-output decompositions do, and are unpacked (sliced, reshaped) after ``bind``.
- A rule sees one direction at a time. When the engine pushes or pulls a batch of directions
  (``jacfwd``, ``jacrev``, ``hessian``: one leading batch axis), the custom rule runs once per
  direction and the results are stacked; the batch is never the rule's business.
- ``custom_jvp``: ``rule(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)``
  serves both modes. Reverse mode needs ``Jᵀg``: the tangent output is linear in the tangents,
  so ``Jᵀg`` is the VJP of ``t ↦ rule(x, t)[1]`` (one recording, one sweep per call).
- ``custom_vjp``: ``fwd(*args) -> (out, res)``, ``bwd(*nondiff_args, res, g) -> cotangents``,
  reverse mode only (forward mode is a clear error, as in JAX). ``fwd`` runs again during the
  sweep to get the residuals.
- ``checkpoint``: the rules re-run ``f`` under a fresh trace, trading compute for memory:
  nothing inside ``f`` is kept on the tape between the forward and the backward sweep.
- A tracked value the function closes over (a ``Dual``/``Variable`` made outside it) would
  have no derivative through the primitive. ``checkpoint`` then differentiates ``f`` as it
  stands (right numbers, no memory saved); ``custom_jvp`` and ``custom_vjp`` refuse with an
  error naming the function (JAX refuses it for custom_vjp). It is detected when the body,
  run on plain leaves, returns a tracked value: only a closure can have brought it in.
"""
import functools
import inspect
import math

import numpy as np

from .api import _level
from .arrays import zeros
from .boxes import unbox
from .core import Primitive, bind, box_types, ndim_of, shape_of
from .forward import Dual
from .reverse import Variable, backward_pass, origin
from .tree import flatten, unflatten

__all__ = ["custom_jvp", "custom_vjp", "checkpoint"]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _is_float(v):
    """Whether leaf ``v`` has derivatives: tracked, or a float or complex number or array
    (a NumPy one, or another array type: ``autodiff.gpu``'s device arrays)."""
    t = type(v)
    if t is float or t is complex or t in box_types:
        return True
    if t is np.ndarray or isinstance(v, np.generic):
        return v.dtype.kind in "fc"
    dt = getattr(v, "dtype", None)
    if dt is None or not hasattr(v, "shape"):
        return False
    try:
        return np.dtype(dt).kind in ("f", "c")
    except TypeError:
        return False


def _zero_tangent(v):
    """The tangent the rule gets for an argument leaf nobody perturbs: zeros like it (JAX
    instantiates zeros too); float zeros for an integer leaf (JAX's float0), ``None`` for a
    leaf that is not a number at all (a function, a string)."""
    if type(v) is float:
        return 0.0
    if _is_float(v):
        return zeros(shape_of(v), v.dtype, like=v)
    if isinstance(v, (int, np.ndarray, np.generic)):
        return np.zeros(np.shape(v))
    return None


def _batch(tangents, xs):
    """The leading batch axes the tangents carry (``()`` or ``(B,)``)."""
    for t, x in zip(tangents, xs):
        if t is not None:
            return tuple(shape_of(t)[:ndim_of(t) - ndim_of(x)])
    return ()


def _stack(parts):
    """Per-direction results ``[[leaf cotangent or None, …], …]`` stacked on a leading axis
    (zeros standing in for a ``None`` beside a known cotangent)."""
    out = []
    for col in zip(*parts):
        known = next((c for c in col if c is not None), None)
        if known is None:
            out.append(None)
            continue
        zero = zeros(shape_of(known), np.result_type(getattr(known, "dtype", float)),
                     like=unbox(known))
        out.append(np.stack([zero if c is None else c for c in col]))
    return out


class _Leak(Exception):
    """Internal: a checkpointed body closed over a tracked value (caught by its call)."""


class _Slot:
    """One output leaf: a differentiable one lives in the packed output (``offset``, ``size``,
    ``shape``, ``dtype``); any other (an integer, a string) is kept as ``value``."""
    __slots__ = ("diff", "value", "shape", "dtype", "offset", "size")


class _Call:
    """One call of a custom function: how the flat leaves the primitive sees map back to the
    user's arguments, and (once the body has run) how its output is laid out."""
    __slots__ = ("owner", "nargs", "static", "defs", "out_tree", "slots", "diff", "packed",
                 "pack_dtype", "kw")

    def __init__(self, owner, args, static_pos, kw=False):
        self.owner = owner
        self.kw = kw            # the last argument is a dict of keyword-only arguments
        self.nargs = len(args)
        self.static = {i: args[i] for i in static_pos}
        self.defs = []
        self.out_tree = None

    def split(self, args):
        """The leaves of the differentiable arguments, remembering each one's structure."""
        leaves = []
        for i, a in enumerate(args):
            if i in self.static:
                continue
            ls, d = flatten(a)
            self.defs.append((d, len(ls)))
            leaves.extend(ls)
        return leaves

    def primals(self, leaves):
        """The differentiable arguments rebuilt from ``leaves``: a tuple, one per argument."""
        out, k = [], 0
        for d, n in self.defs:
            out.append(unflatten(d, leaves[k:k + n]))
            k += n
        return tuple(out)

    def args(self, leaves):
        """Every positional argument, the static ones in their places."""
        it = iter(self.primals(leaves))
        return [self.static[i] if i in self.static else next(it) for i in range(self.nargs)]

    def invoke(self, fun, leaves):
        """``fun`` called on the arguments rebuilt from ``leaves``."""
        a = self.args(leaves)
        return fun(*a[:-1], **a[-1]) if self.kw else fun(*a)

    def static_args(self):
        """The static (nondiff) arguments, in the order ``nondiff_argnums`` names them (JAX)."""
        return [self.static[i] for i in self.owner._static]

    def per_arg(self, tree_leaves):
        """``tree_leaves`` (one per argument leaf) cut into one list per argument."""
        out, k = [], 0
        for _, n in self.defs:
            out.append(tree_leaves[k:k + n])
            k += n
        return out

    # ----- the output -----
    def record(self, out):
        """Lay out the body's output (run on plain leaves) and return it packed."""
        outs, self.out_tree = flatten(out)
        slots, diff = [], []
        for o in outs:
            if type(o) in box_types:
                raise self.owner._leak(self)
            s = _Slot()
            s.diff = _is_float(o)
            if s.diff:
                s.shape = shape_of(o)
                s.dtype = np.float64 if type(o) is float else (
                    np.complex128 if type(o) is complex else o.dtype)
                s.size = math.prod(s.shape)
                diff.append((s, o))
            else:
                s.value = o
            slots.append(s)
        self.slots = slots
        self.diff = [s for s, _ in diff]
        self.packed = len(diff) > 1
        if not diff:
            return 0.0                  # nothing differentiable: a placeholder output
        if not self.packed:
            return diff[0][1]
        self.pack_dtype = np.result_type(*[s.dtype for s in self.diff])
        k = 0
        for s in self.diff:
            s.offset = k
            k += s.size
        return np.concatenate([np.ravel(np.asarray(o, dtype=self.pack_dtype)) for _, o in diff])

    def piece(self, p, s, batch=()):
        """Output leaf ``s`` cut out of the packed ``p`` (value, tangent or cotangent with
        leading ``batch`` axes), with the leaf's shape and kind."""
        if not self.packed:
            return p
        if s.shape == ():
            q = p[(Ellipsis, s.offset)] if batch else p[s.offset]
        else:
            q = np.reshape(p[..., s.offset:s.offset + s.size], tuple(batch) + s.shape)
        if np.dtype(s.dtype).kind != "c" and np.dtype(self.pack_dtype).kind == "c":
            q = np.real(q)
        if np.dtype(s.dtype) != np.dtype(self.pack_dtype) and np.dtype(s.dtype).kind in "fc":
            q = q.astype(s.dtype)
        return q

    def unpack(self, p, batch=(), static_zero=False):
        """The output tree from the primitive's (packed) output. With ``static_zero``, the
        non-differentiable leaves become zeros (they are then a cotangent's leaves)."""
        leaves = []
        for s in self.slots:
            if s.diff:
                leaves.append(self.piece(p, s, batch))
            else:
                leaves.append(_zero_tangent(s.value) if static_zero else s.value)
        return unflatten(self.out_tree, leaves)

    def pack(self, diff_leaves, batch=()):
        """Tangents of the differentiable output leaves -> the primitive's output tangent."""
        if not self.packed:
            return diff_leaves[0]
        return np.concatenate([np.reshape(t, tuple(batch) + (-1,)) for t in diff_leaves],
                              axis=-1)

    def diff_leaves(self, tree, what):
        """The differentiable leaves of ``tree``, an output-shaped tree the user's rule made;
        its structure and shapes must match the output's (JAX checks the same)."""
        leaves, d = flatten(tree)
        if d != self.out_tree:
            raise TypeError(
                f"{self.owner.name}: the {what} has a different pytree structure from the "
                f"function's output ({_describe(d, len(leaves))} vs. "
                f"{_describe(self.out_tree, len(self.slots))}); return one leaf per output "
                "leaf, in the same containers (JAX's rule).")
        out = []
        for s, t in zip(self.slots, leaves):
            if not s.diff:
                continue
            if shape_of(t) != s.shape:
                raise ValueError(
                    f"{self.owner.name}: the {what} has a leaf of shape {shape_of(t)} for an "
                    f"output leaf of shape {s.shape}; the shapes must be the same.")
            out.append(t)
        return out

    def __repr__(self):
        return f"<call of {self.owner.name}>"


def _describe(treedef, n):
    """A pytree structure for messages: its containers, with ``*`` for each leaf."""
    try:
        return repr(unflatten(treedef, ["*"] * n))
    except Exception:
        return "?"


class _Custom:
    """What the three share: keyword resolution, pytree flattening, the primitive, the
    closure check. ``kind`` names the decorator in messages."""
    kind = "custom"
    _kw_only = False            # whether keyword-only parameters may be passed (checkpoint)

    def __init__(self, fun, static_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        if isinstance(static_argnums, int):
            static_argnums = (static_argnums,)
        self._static = tuple(static_argnums)
        for i in self._static:
            if not isinstance(i, int) or i < 0:
                raise TypeError(f"{self.kind}: argument numbers must be non-negative ints, "
                                f"got {i!r}")
        self.name = f"{self.kind}[{getattr(fun, '__name__', 'f')}]"
        self.prim = Primitive(self.name, self._impl, jvp=self._jvp, vjp=self._vjp)
        try:
            self._sig = inspect.signature(fun)
        except (TypeError, ValueError):
            self._sig = None
        params = self._sig.parameters.values() if self._sig is not None else ()
        self._npos = sum(p.kind in _POSITIONAL for p in params)

    def __get__(self, instance, owner=None):       # as a method, like JAX's
        return self if instance is None else functools.partial(self, instance)

    def _resolve(self, args, kwargs):
        """Keywords -> positions by the signature, defaults filled in (JAX's resolve_kwargs)."""
        if not kwargs and len(args) >= self._npos:
            return args, None
        if self._sig is None:
            if kwargs:
                raise TypeError(f"{self.name}: keyword arguments need a function with an "
                                "inspectable signature; pass the arguments by position.")
            return args, None
        try:
            ba = self._sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self.name}: {e}") from None
        ba.apply_defaults()
        passed = {k: v for k, v in ba.kwargs.items() if k in kwargs}
        if passed and not self._kw_only:
            raise TypeError(
                f"{self.name}: keyword-only arguments {sorted(passed)} cannot be resolved to "
                "positions (JAX's rule); make them positional parameters.")
        return ba.args, passed

    def _call(self, args, kwargs):
        args, kw_only = self._resolve(args, kwargs)
        for i in self._static:
            if i >= len(args):
                raise TypeError(f"{self.name}: {self._static_name} {self._static} but the "
                                f"call has {len(args)} positional arguments")
        args = self._static_args(args)
        if kw_only:     # checkpoint only: keyword-only arguments travel as one more pytree
            args = tuple(args) + (kw_only,)
        call = _Call(self, args, self._static, bool(kw_only))
        leaves = call.split(args)
        out = bind(self.prim, *leaves, call=call)
        return call.unpack(out)

    def _static_args(self, args):
        return args

    def _impl(self, *leaves, call):
        return call.record(call.invoke(self.fun, leaves))

    def _leak(self, call):
        return TypeError(
            f"{self.name} closes over a tracked value (a Dual or Variable made outside it, "
            f"e.g. by an enclosing grad or jvp), or got one inside a container that "
            f"autodiff.tree does not flatten: its derivative through that value would be "
            f"lost. Pass the value as an explicit argument of "
            f"{getattr(self.fun, '__name__', 'the function')} instead.")

    def _tangent_batches(self, tangents, leaves, one, ans):
        """``one(per-leaf tangents)`` for each direction of a batch, stacked."""
        batch = _batch(tangents, leaves)
        if not batch:
            return one(tangents)
        if batch[0] == 0:           # no directions (a zero-size input): nothing to ask
            return _no_directions(ans)
        return np.stack([one([None if t is None else t[b] for t in tangents])
                         for b in range(batch[0])])


def _no_directions(x):
    """A batch of no derivatives of the shape of ``x``: zeros of shape ``(0,) + x.shape``,
    tracked where ``x`` is (by an enclosing transform), as the rule's answers would be: a
    plain array here would let the enclosing transform lose the value (NumPy's view
    semantics, no derivative) only because the batch is empty."""
    return np.zeros_like(np.broadcast_to(x, (0,) + shape_of(x)))


class custom_jvp(_Custom):
    """A function with its own forward rule, used by both modes (JAX's semantics).

    ``rule(*nondiff_args, primals, tangents) -> (primal_out, tangent_out)``: ``primals`` and
    ``tangents`` are tuples of the differentiable arguments (pytrees, as passed; zeros for
    the unperturbed ones), one direction at a time. The arguments in ``nondiff_argnums``
    come first and get no derivative (JAX stops their gradient). The value of a call is the
    function's own; the rule's ``primal_out`` is not used (the two must agree, as in JAX).

    >>> @custom_jvp
    ... def f(x):
    ...     return np.sin(x)
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return np.sin(x), np.cos(x) * t
    """
    kind = "custom_jvp"
    _static_name = "nondiff_argnums"

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.nondiff_argnums = self._static
        self.rule = None
        self._jvps = None

    def defjvp(self, jvp, symbolic_zeros=False):
        """Set the rule ``jvp(*nondiff_args, primals, tangents) -> (out, tangent_out)``;
        the tangents of unperturbed arguments are zeros (JAX's ``symbolic_zeros=False``)."""
        _refuse_symbolic_zeros(self.name, symbolic_zeros)
        self.rule, self._jvps = jvp, None
        return jvp

    def defjvps(self, *jvps):
        """One rule per argument, ``jvps[i](t_i, ans, *primals)`` (``None``: no derivative);
        the output tangent is the sum of the rules of the perturbed arguments."""
        if self.nondiff_argnums:
            raise TypeError(f"{self.name}: defjvps cannot be used with nondiff_argnums "
                            "(JAX's rule); use defjvp.")
        self.rule, self._jvps = None, jvps

    def __call__(self, *args, **kwargs):
        if self.rule is None and self._jvps is None:
            raise TypeError(f"{self.name}: no JVP rule defined; give one with @f.defjvp "
                            "(or f.defjvps)")
        return self._call(args, kwargs)

    def _static_args(self, args):
        # JAX stops the gradient of nondiff arguments of a custom_jvp function
        if not self._static:
            return args
        from .ops.nondiff import stop_gradient_p
        args = list(args)
        for i in self._static:
            ls, d = flatten(args[i])
            if any(type(v) in box_types for v in ls):
                args[i] = unflatten(d, [stop_gradient_p(v) if type(v) in box_types else v
                                        for v in ls])
        return args

    def _tangent_out(self, call, leaves, tangents, ans):
        """The rule's tangent output for one direction, as the output's differentiable leaves."""
        primals = call.primals(leaves)
        if self._jvps is not None:
            if len(self._jvps) != len(call.defs):
                raise TypeError(f"{self.name}: defjvps got {len(self._jvps)} rules for "
                                f"{len(call.defs)} arguments")
            ans_tree = call.unpack(ans)
            total = None
            for rule, (d, _), ts, xs in zip(self._jvps, call.defs, call.per_arg(tangents),
                                            call.per_arg(leaves)):
                if rule is None or all(t is None for t in ts):
                    continue
                t_arg = unflatten(d, [_zero_tangent(x) if t is None else t
                                      for t, x in zip(ts, xs)])
                part = call.diff_leaves(rule(t_arg, ans_tree, *primals), "defjvps rule's output")
                total = part if total is None else [a + b for a, b in zip(total, part)]
            if total is None:
                return [np.zeros(s.shape, dtype=s.dtype) for s in call.diff]
            return total
        ts = [_zero_tangent(x) if t is None else t for t, x in zip(tangents, leaves)]
        res = self.rule(*call.static_args(), primals, call.primals(ts))
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise TypeError(f"{self.name}: the JVP rule must return a pair (primal_out, "
                            f"tangent_out), got {type(res).__name__}")
        return call.diff_leaves(res[1], "JVP rule's tangent output")

    def _jvp(self, tangents, ans, *leaves, call):
        if not call.diff:
            return None
        return self._tangent_batches(
            tangents, leaves, lambda ts: call.pack(self._tangent_out(call, leaves, ts, ans)), ans)

    def _vjp(self, g, ans, *leaves, call):
        # Jᵀg: the VJP of the rule's tangent map t ↦ rule(x, t)[1], linear in t.
        batch = tuple(shape_of(g)[:ndim_of(g) - ndim_of(ans)])
        with _level() as level:
            ts = [Variable(_zero_tangent(x), level=level) if _is_float(x) else None
                  for x in leaves]
            outs = self._tangent_out(call, leaves, ts, ans)
        roots = [(o, call.piece(g, s, batch)) for o, s in zip(outs, call.diff)
                 if type(o) is Variable and o.level == level]
        got = {id(v): c for v, c in backward_pass(roots, len(batch))}
        return [None if t is None else got.get(id(origin(t))) for t in ts]


class custom_vjp(_Custom):
    """A function with its own reverse rule (JAX's semantics): ``f.defvjp(fwd, bwd)`` with
    ``fwd(*args) -> (out, res)`` and ``bwd(*nondiff_args, res, g) -> cotangents``, a tuple
    with one pytree per differentiable argument (``None`` for a zero one). ``g`` has the
    output's structure and is one direction at a time. Arguments in ``nondiff_argnums`` are
    passed to ``bwd`` first and must not be tracked values (JAX's rule: use them for
    functions and other non-array arguments)."""
    kind = "custom_vjp"
    _static_name = "nondiff_argnums"

    def __init__(self, fun, nondiff_argnums=()):
        super().__init__(fun, nondiff_argnums)
        self.nondiff_argnums = self._static
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd, symbolic_zeros=False):
        """Set ``fwd(*args) -> (out, residuals)`` and ``bwd(*nondiff_args, residuals,
        cotangent) -> cotangents`` (zeros, not symbolic ones: JAX's default)."""
        _refuse_symbolic_zeros(self.name, symbolic_zeros)
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args, **kwargs):
        if self.fwd is None or self.bwd is None:
            raise TypeError(f"{self.name}: no VJP rule defined; give one with "
                            "f.defvjp(fwd, bwd)")
        return self._call(args, kwargs)

    def _static_args(self, args):
        for i in self._static:
            if any(type(v) in box_types for v in flatten(args[i])[0]):
                raise TypeError(
                    f"{self.name}: argument {i} is in nondiff_argnums but holds a tracked "
                    "value (JAX refuses this too): nondiff_argnums are for functions and "
                    "other non-array arguments. Pass arrays as ordinary arguments; bwd "
                    "may return None as the cotangent of one it does not differentiate.")
        return args

    def _leak(self, call):
        e = super()._leak(call)
        return TypeError(str(e) + " (bwd then returns its cotangent; nondiff_argnums "
                                  "cannot hold tracked values.)")

    def _jvp(self, tangents, ans, *leaves, call):
        raise TypeError(
            f"{self.name} has only a reverse-mode rule (custom_vjp), so forward mode "
            "(jvp, jacfwd, hessian, Dual) cannot differentiate it; use custom_jvp instead "
            "(its rule serves both modes).")

    def _vjp(self, g, ans, *leaves, call):
        res = self.fwd(*call.args(leaves))
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise TypeError(f"{self.name}: fwd must return a pair (output, residuals), got "
                            f"{type(res).__name__}")
        if flatten(res[0])[1] != call.out_tree:
            raise TypeError(f"{self.name}: fwd's output has a different pytree structure "
                            "from the function's output")
        res = res[1]
        batch = tuple(shape_of(g)[:ndim_of(g) - ndim_of(ans)])
        if not batch:
            return self._pull(call, leaves, res, g)
        if batch[0] == 0:           # no directions (a zero-size output): nothing to ask
            return [_no_directions(x) if _is_float(x) else None for x in leaves]
        return _stack([self._pull(call, leaves, res, g[b]) for b in range(batch[0])])

    def _pull(self, call, leaves, res, g):
        """The argument leaves' cotangents from ``bwd`` for one output cotangent ``g``."""
        cts = self.bwd(*call.static_args(), res, call.unpack(g, static_zero=True))
        n = len(call.defs)
        if not isinstance(cts, (tuple, list)) or len(cts) != n:
            raise TypeError(
                f"{self.name}: bwd must return a tuple with one cotangent per differentiable "
                f"argument ({n}), got "
                + (f"{len(cts)}" if isinstance(cts, (tuple, list)) else type(cts).__name__))
        out = []
        for k, (ct, (d, m), xs) in enumerate(zip(cts, call.defs, call.per_arg(list(leaves)))):
            if ct is None:
                out.extend([None] * m)
                continue
            cl, cd = flatten(ct)
            if cd != d:
                raise TypeError(f"{self.name}: bwd's cotangent {k} has a different pytree "
                                f"structure from argument {k}")
            for c, x in zip(cl, xs):
                if not _is_float(x):
                    out.append(None)
                    continue
                if shape_of(c) != shape_of(x):
                    raise ValueError(f"{self.name}: bwd's cotangent {k} has a leaf of shape "
                                     f"{shape_of(c)} for an argument leaf of shape "
                                     f"{shape_of(x)}; the shapes must be the same.")
                out.append(c)
        return out


class _Checkpointed(_Custom):
    """``checkpoint(f)``: its rules re-run ``f`` (forward: on Duals, reverse: on Variables of
    a fresh level), so nothing inside ``f`` stays on the tape. A batch of directions is pushed
    or pulled through ``f`` in one sweep: ``f`` is made of primitives, which take batches."""
    kind = "checkpoint"
    _static_name = "static_argnums"
    _kw_only = True

    def __call__(self, *args, **kwargs):
        try:
            return self._call(args, kwargs)
        except _Leak:
            # f closes over a tracked value: differentiate f as it stands (right numbers,
            # its intermediates kept on the tape as without checkpoint)
            return self.fun(*args, **kwargs)

    def _static_args(self, args):
        for i in self._static:
            if any(type(v) in box_types for v in flatten(args[i])[0]):
                raise TypeError(f"{self.name}: argument {i} is in static_argnums but holds a "
                                "tracked value; pass it as an ordinary argument.")
        return args

    def _leak(self, call):
        return _Leak()

    def _jvp(self, tangents, ans, *leaves, call):
        if not call.diff:
            return None
        batch = _batch(tangents, leaves)
        with _level(len(batch)) as level:
            out = call.invoke(self.fun, [x if t is None else Dual(x, t, level)
                                         for x, t in zip(leaves, tangents)])
        outs, d = flatten(out)
        if d != call.out_tree:
            raise TypeError(f"{self.name}: the function's output changed structure when run "
                            "again")
        tans = []
        for o, s in zip(outs, call.slots):
            if not s.diff:
                continue
            if type(o) is Dual and o.level == level:
                tans.append(o.tangent)
            else:
                tans.append(np.zeros(batch + s.shape, dtype=s.dtype))
        return call.pack(tans, batch)

    def _vjp(self, g, ans, *leaves, call):
        batch = tuple(shape_of(g)[:ndim_of(g) - ndim_of(ans)])
        with _level() as level:
            vs = [Variable(x, level=level) if _is_float(x) else x for x in leaves]
            out = call.invoke(self.fun, vs)
        outs = flatten(out)[0]
        diff_outs = [o for o, s in zip(outs, call.slots) if s.diff]
        roots = [(o, call.piece(g, s, batch)) for o, s in zip(diff_outs, call.diff)
                 if type(o) is Variable and o.level == level]
        got = {id(v): c for v, c in backward_pass(roots, len(batch))}
        return [got.get(id(origin(v))) if type(v) is Variable and v.level == level else None
                for v in vs]


def checkpoint(fun, *, prevent_cse=True, policy=None, static_argnums=()):
    """``fun`` whose intermediate values are recomputed in the backward sweep, not stored
    (``jax.checkpoint``). Arguments and outputs may be pytrees; ``static_argnums`` are passed
    through untouched. ``prevent_cse`` is accepted for JAX compatibility (nothing here merges
    common subexpressions); only ``policy=None`` (save nothing) is supported."""
    if policy is not None:
        raise NotImplementedError("checkpoint: only policy=None (recompute everything) is "
                                  "supported")
    return _Checkpointed(fun, static_argnums)


def _refuse_symbolic_zeros(name, symbolic_zeros):
    if symbolic_zeros:
        raise NotImplementedError(
            f"{name}: symbolic_zeros=True is not supported; the rule receives zero arrays "
            "for unperturbed arguments (symbolic_zeros=False, JAX's default), so drop the "
            "argument and treat zeros as zeros.")
