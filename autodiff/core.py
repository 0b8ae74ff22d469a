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

__all__ = ["Primitive", "bind", "new_level", "close_level", "registry", "ufunc_table",
           "function_table", "shape_of", "ndim_of", "lead", "is_complex", "real_like", "NO_KW"]

#: name -> Primitive, in registration order.
registry = {}
#: NumPy ufunc -> Primitive, for ``__array_ufunc__``.
ufunc_table = {}
#: NumPy/SciPy function -> handler(*args, **kwargs), for ``__array_function__``.
function_table = {}

# Boxes register their exact types here (Dual, Variable); ``bind`` checks ``type(a) in``.
box_types = set()

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
#: leaked out of its transform; only the slow paths (``apply``, ``backward``, assignment)
#: look here, so the operator lanes pay nothing. Bounded by the nesting depth.
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
    """
    __slots__ = ("name", "impl", "jvp", "vjp", "linear", "broadcasts", "full_jvp",
                 "full_vjp", "nondiff", "flops", "partials", "vjp_into", "real_out", "view",
                 "__weakref__")

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


def bind(prim, *args, **kw):
    """Apply ``prim``: the highest-level tracked argument's mode handles it."""
    top = None
    for a in args:
        if type(a) in box_types and (top is None or a.level > top.level):
            top = a
    if top is None:
        return prim.impl(*args, **kw)
    return top.apply(prim, args, kw)


# ----- Small helpers the rules and modes share -----

def shape_of(x):
    """``np.shape`` without NumPy's dispatch (fast on floats and tracked values)."""
    if type(x) is float:
        return ()
    try:
        return x.shape
    except AttributeError:
        return np.shape(x)


def is_complex(x):
    """Whether ``x`` (a number, an array or a tracked value) holds complex numbers."""
    t = type(x)
    if t is float:
        return False
    if t is complex:
        return True
    try:
        return x.dtype.kind == "c"
    except AttributeError:
        return isinstance(x, complex)


def real_like(t, x):
    """``t`` with its imaginary part dropped when ``x`` is real: a complex tangent reaching a
    real output (the pushforward Re(d·t)) or a complex cotangent reaching a real input (the
    transpose of the real-to-complex embedding under JAX's pairing Re(Σ a·b))."""
    if type(t) is not float and is_complex(t) and not is_complex(x):
        return np.real(t)
    return t


def ndim_of(x):
    if type(x) is float:
        return 0
    try:
        return x.ndim
    except AttributeError:
        return np.ndim(x)


def lead(t, x):
    """The batch axes of tangent/cotangent ``t`` of a value shaped like ``x``: ``()`` or ``(B,)``.

    A batch of directions is one leading axis on the tangent (or cotangent) only; rules that
    reshape, transpose or contract use this helper to carry it along.
    """
    s = shape_of(t)
    return s[:len(s) - ndim_of(x)]
