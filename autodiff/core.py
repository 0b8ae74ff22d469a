"""Primitives, the registry, levels and ``bind``: the one call path of the engine.

Every differentiable operation is a :class:`Primitive`. ``bind(prim, *args)`` finds the
tracked argument of the highest level; that mode (forward: ``Dual``, reverse: ``Variable``)
unwraps its own level, calls ``bind`` again on the unwrapped values and applies its rule.
With no tracked argument ``bind`` calls the implementation. Rules therefore run on tracked
values of the outer levels, which is what makes every derivative differentiable again.
"""
import contextvars
import itertools

import numpy as np

# The small array helpers the rules and modes share live on the bottom floor (arrays.py);
# they stay importable from here.
from .arrays import is_complex, lead, ndim_of, real_like, shape_of  # noqa: F401

__all__ = ["Primitive", "bind", "def_impl", "new_level", "close_level", "registry", "ufunc_table",
           "function_table", "shape_of", "ndim_of", "lead", "is_complex", "real_like", "NO_KW"]

#: name -> Primitive, in registration order.
registry = {}
#: NumPy ufunc -> Primitive, for ``__array_ufunc__``.
ufunc_table = {}
#: NumPy/SciPy function -> handler(*args, **kwargs), for ``__array_function__``.
function_table = {}

# Boxes register their exact types here (Dual, Variable); ``bind`` checks ``type(a) in``.
box_types = set()
# Box types whose value is a recording's, not the numbers of a later call (``ad.jit``'s
# tracer): code reading numbers stops at them (``boxes.data``) so the reads are recorded.
opaque_types = set()
#: The opaque types that record the calls they meet (``ad.jit``'s tracers); the others (the
#: sparsity mode's values) answer for themselves.
recording_types = set()
#: Number of ``ad.jit`` recordings running (in any thread): ``bind`` then also looks for
#: recorded values among keyword arguments (indices).
recording = [0]

# Level 0 belongs to user-made Variables (PyTorch style), level 1 to user-made Duals, so
# ``Dual(Variable(...))`` is forward-over-reverse. Transforms draw fresh, increasing levels:
# an inner transform always gets a higher level than the outer one it runs in. Levels are
# never reused, so threads need no level state of their own; the one piece of state that
# belongs to a context, the open tapes, lives in a ContextVar (reverse.py).
EAGER_REVERSE, EAGER_FORWARD = 0, 1
_levels = itertools.count(2)

#: Keyword arguments of a call that has none, shared (never mutated) by the hot paths.
NO_KW = {}
#: Levels whose tangents or cotangents carry a leading batch axis: level -> batch ndim.
#: Levels are never reused, so this dict needs no per-thread copy.
batched_levels = {}


#: Levels whose transform is running (the eager ones always are). A box of any other level
#: leaked out of its transform: every operation starting from one raises (JAX's
#: leaked-tracer error), the operator lanes included, for one set lookup (a leaked value
#: in ``l * 2`` or ``np.sin(l)`` made a stale box). Bounded by the nesting depth.
live_levels = {EAGER_REVERSE, EAGER_FORWARD}


#: PyTorch's grad mode, for the eager reverse level only (``nn.no_grad``): ``grad_off[0]``
#: counts the no-grad blocks open in all threads, so the hot path looks up the context's
#: mode only while one is open somewhere. Transforms' levels never look here.
grad_off = [0]
grad_enabled = contextvars.ContextVar("autodiff_grad_enabled", default=True)


def eager_grad_enabled():
    """Whether operations on the eager tape record (False inside ``nn.no_grad()``)."""
    return not grad_off[0] or grad_enabled.get()


def new_level():
    """A fresh level, higher than every level made before it; live until ``close_level``."""
    level = next(_levels)
    live_levels.add(level)
    return level


def close_level(level):
    """The transform of ``level`` has returned: its boxes may no longer start operations."""
    live_levels.discard(level)


def leaked(box, what="used"):
    """The error for a box whose transform has returned (JAX's leaked-tracer error)."""
    kind, names = (("forward-mode", "jvp, jacfwd, hessian, linearize, ...")
                   if hasattr(box, "tangent") else
                   ("reverse-mode", "grad, value_and_grad, vjp, jacrev, ..."))
    # A TypeError, as JAX's UnexpectedTracerError is.
    return TypeError(
        f"a value tracked by a {kind} transform ({names}; level {box.level}) was {what} "
        "after that transform returned: it leaked out of the differentiated function, e.g. "
        "stored in a global, a list or an attribute. Return it as an output instead "
        "(has_aux=True for values that are not differentiated), or store `.value`.")


class Primitive:
    """An operation with its implementation, forward rule and reverse rule.

    ``jvp``/``vjp`` are tuples with one function per argument (``None`` for a zero
    derivative): ``jvp[i](t, ans, *args, **kw)`` is the output tangent caused by tangent
    ``t`` of argument ``i``; ``vjp[i](g, ans, *args, **kw)`` is the cotangent of argument
    ``i`` given the output cotangent ``g``. A single callable instead of a tuple is a
    "full" rule: ``jvp(tangents, ans, *args, **kw)`` gets every tangent (``None`` where
    zero); ``vjp(g, ans, *args, **kw)`` returns one cotangent per argument.

    ``partials`` (elementwise primitives) are ``∂ans/∂xᵢ`` as functions ``d(ans, *xs)``
    or the constants ``1.0``/``-1.0``; the rules then are ``t·dᵢ`` and ``g·dᵢ``.

    ``linear=True`` derives the JVP from the implementation (``impl`` applied to the
    tangents, zeros standing in for absent ones). ``broadcasts=True`` marks operations
    whose arguments broadcast against each other as in ufuncs: the engine then pads
    tangents and sums cotangents back to each argument's shape, so rules never do.

    ``impl`` is NumPy's implementation; another array type (the GPU's device array) adds its
    own with ``def_impl``, and ``impls`` then maps array types to implementations.
    """
    __slots__ = ("name", "impl", "jvp", "vjp", "linear", "broadcasts", "full_jvp",
                 "full_vjp", "nondiff", "flops", "partials", "vjp_into", "real_out", "view",
                 "impls", "sparsity", "__weakref__")

    def __init__(self, name, impl, jvp=None, vjp=None, linear=False, broadcasts=False,
                 flops=None, partials=None):
        self.name = name
        # Elementwise primitives also keep their partials ``d_i(ans, *xs)`` (or the
        # constants ±1.0), so the modes multiply by them inline: the hot path.
        self.partials = partials
        # Optional ``vjp_into(acc, g, ans, *args, **kw)``: add the first argument's
        # cotangent into the plain array ``acc`` in place (indexing scatters into it).
        self.vjp_into = None
        # ``real_out``: a real output even of a complex input (abs, real, imag, angle): the
        # forward mode keeps the real part of ``t·d`` (the R-linear pushforward Re(d·t)).
        self.real_out = False
        # ``view``: NumPy returns a view for this operation (reshape, transpose, basic
        # indexing); the modes mark its result so that a write through it is refused
        # instead of silently not reaching the original (``Box.__setitem__``).
        self.view = None
        # ``impls``: array type -> implementation, ``None`` while NumPy's is the only one.
        self.impls = None
        # ``sparsity``: how each output element depends on the input elements, a rule of
        # ``autodiff.ops.dependency`` (the sparsity mode reads it; None: elementwise from
        # ``partials``, else conservatively dense).
        self.sparsity = None
        self.impl = impl
        self.linear = linear
        self.broadcasts = broadcasts
        self.full_jvp = callable(jvp)
        self.full_vjp = callable(vjp)
        self.jvp = jvp
        self.vjp = vjp
        self.nondiff = jvp is None and vjp is None and not linear
        self.flops = flops

    def __call__(self, *args, **kw):
        return bind(self, *args, **kw)

    def __repr__(self):
        return f"<primitive {self.name}>"


def register(prim, ufuncs=(), functions=None):
    """Add ``prim`` to the registry; map NumPy ufuncs (and function handlers) to it."""
    if prim.name in registry:
        raise ValueError(f"primitive {prim.name!r} is registered twice")
    registry[prim.name] = prim
    for u in ufuncs:
        ufunc_table[u] = prim
    for f in functions or ():
        function_table[f] = prim
    return prim


def def_impl(prim, array_type, fn):
    """Give ``prim`` the implementation ``fn`` for arguments of ``array_type``.

    NumPy's implementation stays the default. Most NumPy code already runs on another array
    type through NumPy's own dispatch (``__array_ufunc__``, ``__array_function__``); this
    table is for the implementations that do not dispatch (``np.asarray``, ndarray-only
    methods) or have a faster kernel. Until a second type registers, ``prim.impl`` is
    NumPy's function itself: the CPU path pays nothing; afterwards, one type lookup per
    argument (the first element of a list argument counts, for ``concatenate``).
    """
    if prim.impls is None:
        prim.impls = {np.ndarray: prim.impl}
        prim.impl = _by_array_type(prim.impls)
    prim.impls[array_type] = fn
    return fn


def _by_array_type(table):
    host = table[np.ndarray]

    def impl(*args, **kw):
        for a in args:
            t = type(a)
            if t is list or t is tuple:
                if not a:
                    continue
                t = type(a[0])
            fn = table.get(t)
            if fn is not None and fn is not host:
                return fn(*args, **kw)
        return host(*args, **kw)
    impl.__wrapped__ = host
    impl.__name__ = getattr(host, "__name__", "impl")
    return impl


def bind(prim, *args, **kw):
    """Apply ``prim``: the highest-level tracked argument's mode handles it; with none,
    the implementation for the argument types (``def_impl``)."""
    top = None
    for a in args:
        if type(a) in box_types and (top is None or a.level > top.level):
            top = a
    if top is None:
        if kw and recording[0]:
            # Under ad.jit an index (a keyword argument) may be computed from values.
            top = _recorded_in(kw.values())
            if top is not None:
                return top.apply(prim, args, kw)
        return prim.impl(*args, **kw)
    return top.apply(prim, args, kw)


def _recorded_in(values):
    for v in values:
        t = type(v)
        if t in opaque_types:
            return v
        if t is tuple or t is list:
            found = _recorded_in(v)
            if found is not None:
                return found
        elif t is slice:
            found = _recorded_in((v.start, v.stop, v.step))
            if found is not None:
                return found
    return None
