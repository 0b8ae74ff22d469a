"""Reverse mode: ``Variable``, the adjoint tape and the backward sweep.

Each operation on a ``Variable`` makes a new ``Variable`` that is also its tape record: the
primitive, the input values it saved and its parents, numbered in creation order. Reverse
creation order is a valid sweep order, so the sweep pops records from a heap by number:
no recursion, and only records the output depends on are visited. Once a record has passed
its adjoint on, it drops its saved inputs (unless asked to keep them).
"""
import contextvars
import copy
import heapq
import itertools
import sys

import numpy as np

from .arrays import partial_at, sum_to  # noqa: F401 (re-exported: reverse.sum_to)
from .boxes import _DEFER, Box, _refuse_in_library, _sparse_matmul_probe, unbox
from .core import (EAGER_REVERSE, NO_KW, bind, box_types, grad_enabled, grad_off, is_complex,
                   leaked, live_levels, real_like, shape_of)

__all__ = ["Variable", "Tape", "backward_pass", "sum_to"]

_number = itertools.count()

#: Tapes open in this context; ``_open[0]`` counts open tapes in all threads so the hot
#: path pays for the context lookup only while some tape is open somewhere.
_tapes = contextvars.ContextVar("autodiff_tapes", default=())
_open = [0]
_SUSPENDABLE = 0x20 | 0x80 | 0x100 | 0x200      # CO_GENERATOR, COROUTINE, ITERABLE_, ASYNC_GEN


class Variable(Box):
    """A reverse-mode value: its primal ``value``, the record that made it, its ``level``.

    Made by the user it is a leaf (PyTorch habit): ``y.backward()`` accumulates ``dy/dx``
    into ``x.grad`` until it is reset.

    >>> x = Variable(3.0)
    >>> y = x * x + 2.0 * x
    >>> y.backward()
    >>> float(x.grad)
    8.0
    """
    # ``prev`` (the record this one replaced by an assignment) and ``_view`` (set on results
    # NumPy gives as views: basic indexing, reshape, transpose) stay unset unless used: no
    # cost on the hot path.
    __slots__ = ("value", "level", "prim", "parents", "args", "kw", "idx", "g", "grad",
                 "keep", "prev", "_view", "__weakref__")

    def __init__(self, value, requires_grad=True, level=EAGER_REVERSE):
        if type(value) is not float and type(value) not in box_types:
            if isinstance(value, np.ndarray) or not hasattr(value, "__array_function__"):
                # (another array type, a device array, stays as it is)
                value = np.asarray(value)
            if value.dtype.kind not in "fc":
                raise TypeError(
                    f"Variable needs a floating-point value, got dtype {value.dtype}: only "
                    "floats have derivatives. Convert with np.asarray(x, dtype=float).")
        self.value = value
        self.level = level
        self.prim = None
        self.parents = () if requires_grad else None
        self.args = self.kw = None
        self.idx = next(_number)
        self.g = self.grad = None
        self.keep = False
        if _open[0]:
            _record(self)

    @property
    def requires_grad(self):
        return self.parents is not None

    @property
    def is_leaf(self):
        return self.prim is None

    def apply(self, prim, args, kw):
        level = self.level
        if level not in live_levels:        # (the lanes check it too: _apply_elementwise)
            raise leaked(self)
        if prim.partials is not None:        # elementwise: unary or binary
            return _apply_elementwise(prim, args, level)
        if len(args) == 1:
            return _apply_unary(prim, self, kw, level)
        vals = []
        parents = []
        nested = False
        i = 0
        for a in args:
            if type(a) is Variable and a.level == level:
                v = a.value
                if a.parents is not None:
                    parents.append((i, a))
            else:
                v = a
            vals.append(v)
            if type(v) in box_types:
                nested = True
            i += 1
        ans = bind(prim, *vals, **kw) if nested else prim.impl(*vals, **kw)
        if prim.nondiff:
            return ans
        if not parents:
            return _constant(ans, level)
        if not prim.full_vjp:
            rules = prim.vjp
            for ip in parents:
                if rules[ip[0]] is None:
                    parents = [ip for ip in parents if rules[ip[0]] is not None]
                    if not parents:
                        return _constant(ans, level)
                    break
        return _node(ans, level, prim, parents, vals, kw)

    def backward(self, gradient=None, retain_graph=False):
        """Accumulate ``d self / d leaf`` into every leaf's ``.grad`` (PyTorch habit)."""
        if self.level not in live_levels:
            raise leaked(self, "swept by backward()")
        if self.parents is None and self.level == EAGER_REVERSE:
            # PyTorch's error: nothing it depends on requires grad (made under
            # nn.no_grad(), or from constants only), so no .grad would be filled.
            raise RuntimeError("element 0 of tensors does not require grad and does not "
                               "have a grad_fn: backward() of a value that depends on no "
                               "Variable requiring grad (computed under nn.no_grad(), or "
                               "from constants only)")
        if gradient is None:
            if shape_of(self.value) != ():
                raise TypeError(
                    f"backward() of an output of shape {shape_of(self.value)} needs the "
                    "cotangent: y.backward(gradient) (only a scalar output defaults to 1).")
            gradient = np.ones_like(self.value) if type(self.value) is not float else 1.0
        elif is_complex(gradient) and not is_complex(self.value):
            raise TypeError("backward(gradient): a complex gradient for a real output; the "
                            "derivatives of real values are real. Call backward with the "
                            "real and the imaginary part (retain_graph=True for the first) "
                            "and combine the .grad values.")
        for leaf, g in backward_pass([(self, gradient)], retain=retain_graph):
            leaf.grad = g if leaf.grad is None else leaf.grad + g

    def zero_grad(self):
        self.grad = None

    # ----- PyTorch's eager habits: explicit detaches, grad flags, in-place updates -----
    # Only on the eager tape (level 0, a plain value): inside a transform a detach would
    # drop a derivative in progress, so the refusals of ``Box`` stay.
    def _eager(self):
        return self.level == EAGER_REVERSE and type(self.value) not in box_types

    @requires_grad.setter
    def requires_grad(self, flag):
        if self.prim is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf variables "
                               "(PyTorch's rule); take y = x.detach() first.")
        self.parents = () if flag else None

    def requires_grad_(self, requires_grad=True):
        """PyTorch's ``x.requires_grad_()``: mark a leaf as trainable (or not); returns ``x``."""
        self.requires_grad = requires_grad
        return self

    def item(self, *args):
        """The value of a one-element eager Variable as a Python number (an explicit detach,
        as PyTorch's ``item``); refused inside a transform."""
        if not self._eager():
            return Box.item(self, *args)
        v = self.value
        if type(v) is float:
            return v
        if not args and v.size != 1:
            raise _ScalarError(f"a Variable with {v.size} elements cannot be converted to "
                               "Scalar: x.item() needs exactly one element (index it first, "
                               "or use x.tolist())")
        return v.item(*args)

    def tolist(self):
        """The value as nested Python lists (a number for 0-d): an explicit detach."""
        if not self._eager():
            return Box.tolist(self)
        return np.asarray(self.value).tolist()

    def numpy(self, force=False):
        """The value as a read-only ndarray, as PyTorch's ``numpy()``: refused (RuntimeError,
        PyTorch's) while the Variable requires grad; ``x.detach().numpy()`` or
        ``force=True`` detach explicitly. Read-only: the engine's records share the array,
        so a write through it would change recorded history (an error instead)."""
        if not self._eager():
            raise TypeError(
                "x.numpy() of a value tracked by a transform would drop its derivative. "
                "Keep the computation in NumPy functions (to use only the primal value, "
                "with no derivative, take `.value`).")
        if self.parents is not None and not force:
            raise RuntimeError("Can't call numpy() on Variable that requires grad. Use "
                               "x.detach().numpy() instead.")
        v = self.value
        if isinstance(v, np.ndarray):
            out = v.view()
        elif isinstance(v, (float, np.generic)):
            out = np.array(v)
        else:
            raise TypeError(f"x.numpy() of a Variable whose value is a {type(v).__name__} "
                            "(a device array): copy it to the host first (PyTorch's "
                            ".cpu(); here model.to('cpu') or the array's .to_host()).")
        out.flags.writeable = False
        return out

    def detach(self):
        """A new eager Variable of the same value that requires no grad (PyTorch's
        ``detach``); inside a transform use ``ad.stop_gradient(x)``."""
        if not self._eager():
            raise TypeError(
                "x.detach() of a value tracked by a transform: detaching inside "
                "ad.grad/jacrev/... is ad.stop_gradient(x) (a value whose derivative is "
                "zero that stays in the computation).")
        return Variable(self.value, requires_grad=False)

    def _plain(self):
        """The value of an eager Variable that requires no grad (nothing to lose), for
        ``float``/``int``/``np.asarray``; None when the conversion must be refused."""
        if self.parents is None and self._eager():
            return self.value
        return None

    def __float__(self):
        v = self._plain()
        if v is None:
            if self._eager():
                _refuse_in_library("float")     # scipy.optimize(...) given a Parameter
                raise TypeError(
                    "float(x) of a Variable that requires grad would drop its derivative. "
                    "Detach explicitly, as in PyTorch: x.item() (a Python number) or "
                    "x.detach(). (Use NumPy functions, `np.sin`, not `math.sin`.)")
            return Box.__float__(self)
        return float(v)

    def __int__(self):
        v = self._plain()
        return Box.__int__(self) if v is None else int(v)

    def __array__(self, dtype=None, copy=None):
        v = self._plain()
        if v is None:
            if _sparse_matmul_probe(sys._getframe(1)):
                return _DEFER       # SciPy's sparse A @ x: Python then asks x.__rmatmul__
            return Box.__array__(self, dtype, copy)
        out = np.asarray(v, dtype=dtype)
        return out.copy() if copy else out

    def __setitem__(self, idx, v):
        # Under nn.no_grad() a leaf is written in place, unrecorded (an optimizer step).
        if grad_off[0] and self.prim is None and not grad_enabled.get() and self._eager() \
                and (type(v) not in box_types or v.level == EAGER_REVERSE):
            new = np.array(self.value, copy=True)
            new[idx] = unbox(v)
            self.value = new if type(self.value) is not float else float(new)
            return
        Box.__setitem__(self, idx, v)

    def _inplace(self, what, fn):
        """PyTorch's in-place methods (``add_``, ``zero_``, …): a leaf that requires grad
        only under ``nn.no_grad()`` (PyTorch's rule), written in place; anything else is a
        recorded assignment ``x[...] = fn(x)``."""
        if self.prim is None and self._eager():
            if self.parents is not None and (not grad_off[0] or grad_enabled.get()):
                raise RuntimeError(
                    f"a leaf Variable that requires grad is being used in an in-place "
                    f"operation ({what}); do it under `with nn.no_grad():` (an optimizer "
                    "step), or on x.detach() / a copy.")
            r = fn(self)
            if type(r) is Variable and r.parents is None and r.level == EAGER_REVERSE:
                r = r.value
            if type(r) not in box_types:
                old = self.value
                r = np.broadcast_to(r, np.shape(old))
                self.value = float(r) if type(old) is float else r.astype(old.dtype)
                return self
        Box.__setitem__(self, Ellipsis, fn(self))
        return self

    def zero_(self): return self._inplace("zero_", lambda x: 0.0)
    def fill_(self, value): return self._inplace("fill_", lambda x: value)
    def copy_(self, src): return self._inplace("copy_", lambda x: src)
    def add_(self, other, alpha=1): return self._inplace("add_", lambda x: x + alpha * other)
    def sub_(self, other, alpha=1): return self._inplace("sub_", lambda x: x - alpha * other)
    def mul_(self, other): return self._inplace("mul_", lambda x: x * other)
    def div_(self, other): return self._inplace("div_", lambda x: x / other)

    def clamp_(self, min=None, max=None):
        return self._inplace("clamp_", lambda x: x.clamp(min, max))

    def _eager_leaf(self):
        """Made by the user outside any transform, of a plain value: data, as in PyTorch."""
        return self.prim is None and self.level == EAGER_REVERSE and \
            type(self.value) not in box_types

    def _copy(self, deep):
        """An eager leaf copies as a new leaf (PyTorch's habit: ``copy.deepcopy(model)``);
        anything else is a recorded, differentiable ``x.copy()``."""
        if self._eager_leaf():
            new = Variable(self.value.copy() if deep and type(self.value) is not float
                           else self.value, requires_grad=self.parents is not None)
            if self.grad is not None:
                new.grad = copy.deepcopy(self.grad) if deep else self.grad
            return new
        return Box._copy(self, deep)

    def __reduce_ex__(self, protocol):
        # An eager leaf is data (value, requires_grad), pickled as PyTorch pickles a tensor.
        if self._eager_leaf():
            return (Variable, (self.value, self.parents is not None))
        return Box.__reduce_ex__(self, protocol)

    def __repr__(self):
        if self.prim is None:
            return f"Variable({self.value!r})"
        return f"Variable({self.value!r}, prim={self.prim.name})"

    # ----- assignment (Box.__setitem__) -----
    def constant(self, value):
        """``value`` as a Variable of this level with no derivative of its own."""
        return Variable(value, requires_grad=False, level=self.level)

    def _assignable(self):
        if self.prim is None and self.parents is not None and self.level == EAGER_REVERSE:
            raise TypeError(
                "x[i] = v into a leaf Variable that requires grad (PyTorch refuses this "
                "too): its .grad would belong to a value that no longer exists. Assign "
                "into a copy (y = x.copy(); y[i] = v) or use x.at[i].set(v).")

    def _become(self, new):
        """Make this Variable the record ``new`` (the array after an assignment). Records
        made earlier keep pointing at this object; the sweep sends them to the version
        they saw (``prev``, by creation number), which keeps the old record and value."""
        if type(new) is not Variable:
            if type(new) in box_types:
                from .forward import _cross_level_assignment
                raise _cross_level_assignment()
            self.value = new                    # a constant stays a constant
            return
        old = _new(Variable)
        for name in _STATE:
            setattr(old, name, getattr(self, name))
        prev = getattr(self, "prev", None)
        if prev is not None:
            old.prev = prev
        x = new                                 # the assignment's records read ``self``
        while type(x) is Variable:
            if x.parents:
                x.parents = [(i, old if p is self else p) for i, p in x.parents]
            x = x.value
        for name in _STATE:
            setattr(self, name, getattr(new, name))
        self.prev = old
        _rebased[0] += 1
        if _open[0]:
            for tape in _tapes.get():
                recs = tape._records
                recs[:] = [old if r is self else self if r is new else r for r in recs]


box_types.add(Variable)

_STATE = ("value", "level", "prim", "parents", "args", "kw", "idx", "g", "grad", "keep")
#: Number of assignments so far: sweeps look for replaced records only once there are any.
_rebased = [0]


class _ScalarError(RuntimeError, ValueError):
    """``x.item()`` of several elements: PyTorch's RuntimeError, NumPy's ValueError."""


def _at_version(parents, idx):
    """Parents as record ``idx`` saw them: an input replaced by a later assignment (its
    number is then higher) is followed back through ``prev`` to the version it was."""
    out = None
    for k, (i, p) in enumerate(parents):
        if p.idx > idx:
            while p.idx > idx:
                p = p.prev
            out = list(parents) if out is None else out
            out[k] = (i, p)
    return parents if out is None else out


def origin(v):
    """The first version of ``v`` (before any assignment into it)."""
    while True:
        p = getattr(v, "prev", None)
        if p is None:
            return v
        v = p


def _constant(ans, level):
    """A value computed from constants of this level only (no parent needs a derivative)
    stays a Variable of the level, as in PyTorch, so assignment into it still records."""
    if type(ans) in box_types or type(ans) is tuple:
        return ans
    return _node(ans, level, None, None, None, None)


def _record_node(ans, level, prim, parents, args, kw):
    """A new record: the output value of ``prim`` applied to ``args`` (saved for the sweep),
    its parents [(argument index, Variable)], numbered in creation order."""
    v = _new(Variable)
    v.value = ans
    v.level = level
    v.prim = prim
    v.parents = parents
    v.args = args
    v.kw = kw
    v.idx = next(_number)
    v.g = v.grad = None
    v.keep = False
    if _open[0]:
        _record(v)
    return v


_new = object.__new__


def _record_node_no_grad(ans, level, prim, parents, args, kw):
    """``_record_node`` while ``nn.no_grad()`` is open in some thread: on the eager tape of
    a thread where it is, a value and no record."""
    if parents is not None and level == EAGER_REVERSE and not grad_enabled.get():
        parents = prim = args = kw = None
    return _record_node(ans, level, prim, parents, args, kw)


#: The record maker the operations call (a module global, looked up at each call). Grad
#: mode swaps it (``grad_mode_changed``) so that the common path, no ``no_grad`` block open
#: anywhere, pays nothing for the check: the record path is the hot path of every
#: eager operation (the scalar chain's microseconds).
_node = _record_node


def grad_mode_changed():
    """Choose the record maker for ``grad_off[0]`` (the no-grad blocks open in all threads);
    ``nn.grad_mode`` calls it, under its lock, after every change of the count."""
    global _node
    _node = _record_node_no_grad if grad_off[0] else _record_node


def _apply_elementwise(prim, args, level):
    """The hot path: record a unary or binary elementwise primitive, no loops."""
    if level not in live_levels:        # a leaked box (JAX's leaked-tracer error): one
        raise leaked(next(x for x in args if type(x) is Variable and x.level == level))
    a = args[0]
    if type(a) is Variable and a.level == level:
        av = a.value
        parents = [(0, a)] if a.parents is not None else []
    else:
        av, parents = a, []
    if len(args) == 1:
        vals = (av,)
        ans = bind(prim, av) if type(av) in box_types else prim.impl(av)
    else:
        b = args[1]
        if type(b) is Variable and b.level == level:
            bv = b.value
            if b.parents is not None and prim.partials[1] is not None:
                parents.append((1, b))
        else:
            bv = b
        vals = (av, bv)
        if type(av) in box_types or type(bv) in box_types:
            ans = bind(prim, av, bv)
        else:
            ans = prim.impl(av, bv)
        if parents and parents[0][0] == 0 and prim.partials[0] is None:
            del parents[0]
    if not parents:
        return _constant(ans, level)
    return _node(ans, level, prim, parents, vals, NO_KW)


def _apply_unary(prim, a, kw, level):
    """One argument (indexing, reductions, reshapes): no loops, no lists."""
    v = a.value
    ans = bind(prim, v, **kw) if type(v) in box_types else prim.impl(v, **kw)
    if prim.nondiff:
        return ans
    if a.parents is None or not prim.full_vjp and prim.vjp[0] is None:
        out = _constant(ans, level)
    else:
        out = _node(ans, level, prim, [(0, a)], (v,), kw)
    if prim.view is not None and type(out) is Variable:
        out._view = prim.view
    return out


Variable._elementwise = staticmethod(_apply_elementwise)


def backward_pass(roots, nb=0, retain=False):
    """Sweep adjoints from ``roots`` [(variable, cotangent), …] back to the leaves.

    Returns [(leaf, adjoint), …] for every leaf reached. ``nb`` is the number of leading
    batch axes the cotangents carry (``jacrev`` pulls all its basis cotangents at once).

    Cotangents from several uses add up. A sum this sweep made itself is "owned": nobody
    else holds it, so later contributions are added into it in place, and indexing
    scatters into it (``vjp_into``) instead of building a zero array per use.
    """
    heap = []
    pop, push = heapq.heappop, heapq.heappush
    owned = set()
    ndarray = np.ndarray

    def accumulate(p, gp):
        acc = p.g
        if acc is None:
            p.g = gp
            push(heap, (-p.idx, p))
        elif id(acc) in owned and type(gp) is ndarray and gp.shape == acc.shape \
                and gp.dtype == acc.dtype:
            acc += gp
        else:
            acc = acc + gp
            p.g = acc
            if type(acc) is ndarray:
                owned.add(id(acc))

    leaves = []
    rebased = _rebased[0]
    kept = []                   # records whose .grad (tape adjoint) this sweep set
    try:
        for node, g in roots:
            if node.parents is None:
                continue
            if node.g is None:
                node.g = g
                heap.append((-node.idx, node))
            else:
                node.g = node.g + g
        heapq.heapify(heap)
        while heap:
            node = pop(heap)[1]
            g = node.g
            node.g = None
            if owned:
                owned.discard(id(g))
            prim = node.prim
            if prim is None:
                leaves.append((node, g))
                continue
            args = node.args
            if args is None:
                if node.level not in live_levels:
                    raise leaked(node, "swept")
                raise RuntimeError(
                    f"the record of {prim.name} was already swept and freed; call "
                    "backward(retain_graph=True) the first time to sweep a graph twice.")
            if node.keep:
                kept.append((node, node.grad))
                node.grad = g
            parents = node.parents
            if rebased:
                parents = _at_version(parents, node.idx)
            partials = prim.partials
            try:
                if partials is not None:
                    # The hot path: an elementwise primitive; the cotangent is g·∂ans/∂x,
                    # summed back over broadcast axes (before negating: a smaller array).
                    # sum_to, core.real_like and accumulate are inlined for the commonest
                    # case, an array cotangent of an array of its own shape: the per-record
                    # microseconds of every eager gradient.
                    ans = node.value
                    for i, p in parents:
                        d = partials[i]
                        x = args[i]
                        try:
                            gp = g if type(d) is float else g * d(ans, *args)
                        except ArithmeticError:     # float 1/0 in the partial: NumPy's inf
                            gp = g * partial_at(d, ans, args)
                        if type(gp) is ndarray:
                            if nb or type(x) is not ndarray or gp.shape != x.shape:
                                gp = sum_to(gp, x, nb)
                            if gp.dtype.kind == "c" and not is_complex(x):
                                gp = gp.real
                        elif type(gp) is not float:
                            gp = sum_to(gp, x, nb)
                            if is_complex(gp) and not is_complex(x):
                                gp = np.real(gp)
                        if d == -1.0:
                            gp = -gp
                        if p.g is None:
                            p.g = gp
                            push(heap, (-p.idx, p))
                        else:
                            accumulate(p, gp)
                elif prim.vjp_into is not None and nb == 0 and type(g) is ndarray \
                        and g.dtype.kind != "c" and type(node.value) not in box_types \
                        and (parents[0][1].g is None
                                                     or type(parents[0][1].g) is ndarray):
                    # (a tracked cotangent already there cannot be scattered into in place)
                    x = args[0]
                    p = parents[0][1]
                    acc = p.g
                    if acc is None or id(acc) not in owned or type(acc) is not ndarray:
                        fresh = np.zeros(shape_of(x), dtype=g.dtype if acc is None
                                         else np.result_type(g, acc))
                        if acc is not None:
                            fresh += acc
                        else:
                            push(heap, (-p.idx, p))
                        p.g = acc = fresh
                        owned.add(id(acc))
                    prim.vjp_into(acc, g, node.value, *args, **node.kw)
                elif prim.full_vjp:
                    cts = prim.vjp(g, node.value, *args, **node.kw)
                    for i, p in parents:
                        gp = cts[i]
                        if gp is not None:
                            gp = real_like(gp, args[i])
                            accumulate(p, sum_to(gp, args[i], nb) if prim.broadcasts else gp)
                else:
                    rules = prim.vjp
                    ans, kw = node.value, node.kw
                    for i, p in parents:
                        gp = rules[i](g, ans, *args, **kw)
                        if gp is not None:
                            if type(gp) is not ndarray or gp.dtype.kind == "c":
                                gp = real_like(gp, args[i])
                            accumulate(p, sum_to(gp, args[i], nb) if prim.broadcasts else gp)
            except Exception as e:
                if hasattr(e, "add_note"):
                    e.add_note(f"(raised by the reverse rule of {prim.name} during the "
                               "backward sweep)")
                raise
            if not (retain or node.keep):
                node.args = None
                node.parents = ()
    except BaseException:
        # Exception-safe (KeyboardInterrupt too): no record or leaf keeps a cotangent or
        # an adjoint from the failed sweep, so a later backward() starts clean.
        for _, n in heap:
            n.g = None
        for n, old in kept:
            n.grad = old
        raise
    return _independent(leaves, roots)


def _buffer(a):
    while a.base is not None:
        a = a.base
    return id(a)


def _independent(leaves, roots):
    """Each leaf gets its own array: a cotangent passed through unchanged (by ``add``,
    ``reshape``, …) may be the caller's array, or reach two leaves, or a view of either."""
    if len(leaves) < 2 and not any(type(g) is np.ndarray for _, g in roots):
        return leaves           # (nothing to share a buffer with: the common gradient)
    taken = {_buffer(g) for _, g in roots if type(g) is np.ndarray}
    out = []
    for leaf, g in leaves:
        if type(g) is np.ndarray:
            b = _buffer(g)
            if b in taken:
                g = g.copy()
                b = id(g)
            taken.add(b)
        out.append((leaf, g))
    return out


# ----- The tape as an object, for teaching -----

def _record(v):
    for tape in _tapes.get():
        if tape._active():
            tape._records.append(v)
            v.keep = True


class Record:
    """One line of the Wengert list: ``output = primitive(inputs)`` and, after a sweep,
    the output's adjoint."""
    __slots__ = ("index", "primitive", "inputs", "output", "adjoint")

    def __init__(self, index, primitive, inputs, output, adjoint):
        self.index, self.primitive, self.inputs = index, primitive, inputs
        self.output, self.adjoint = output, adjoint

    def __repr__(self):
        return (f"Record({self.index}, {self.primitive!r}, inputs={self.inputs}, "
                f"output={self.output!r}, adjoint={self.adjoint!r})")


class Tape:
    """Collects the records made inside ``with Tape() as tape:`` (in this thread only).

    Opened in a generator, it records only while the generator runs: a generator that is
    suspended or abandoned inside the ``with`` shares its caller's context, and the
    caller's operations are not its records.

    ``len(tape)``, iteration (``Record`` objects), ``print(tape)`` (the Wengert list with
    values and, after a sweep, adjoints) and ``tape.to_dot()`` (Graphviz source).
    """

    def __init__(self):
        self._records = []
        self._frame = None
        self._open = False

    def __enter__(self):
        frame = sys._getframe(1)
        # A generator (or coroutine) that opened the tape and is suspended, or abandoned,
        # shares its caller's context: the tape records only while its frame runs.
        self._frame = frame if frame.f_code.co_flags & _SUSPENDABLE else None
        _tapes.set(_tapes.get() + (self,))
        _open[0] += 1
        self._open = True
        return self

    def __exit__(self, *exc):
        if self._open:              # once, even if a generator is closed elsewhere
            self._open = False
            _open[0] -= 1
            _tapes.set(tuple(t for t in _tapes.get() if t is not self))
            self._frame = None      # no cycle tape -> generator frame -> tape
        return False

    def _active(self):
        frame = self._frame
        if frame is None:
            return True
        f = sys._getframe(2)
        while f is not None:
            if f is frame:
                return True
            f = f.f_back
        return False

    def __len__(self):
        return len(self._records)

    def _names(self):
        return {id(v): f"v{k}" for k, v in enumerate(self._records)}

    def _arg(self, a, names):
        if type(a) is Variable and id(a) in names:
            return names[id(a)]
        return _short(a)

    def __iter__(self):
        names = self._names()
        for k, v in enumerate(self._records):
            if v.prim is None:
                yield Record(k, "input", (), v.value, v.grad)
            else:
                ins = tuple(self._arg(a, names) for a in self._inputs(v))
                yield Record(k, v.prim.name, ins, v.value, v.grad)

    @staticmethod
    def _inputs(v):
        # The saved values are unwrapped; show parents by name, the rest by value.
        if v.args is None:
            return ()
        byidx = {i: p for i, p in v.parents}
        return [byidx.get(i, a) for i, a in enumerate(v.args)]

    def __str__(self):
        names = self._names()
        lines = []
        for k, v in enumerate(self._records):
            lhs = f"v{k}"
            if v.prim is None:
                rhs = "input"
            else:
                args = ", ".join(self._arg(a, names) for a in self._inputs(v))
                kw = "".join(f", {key}={_short(val)}" for key, val in (v.kw or {}).items())
                rhs = f"{v.prim.name}({args}{kw})"
            line = f"{lhs:>5} = {rhs:<28} = {_short(v.value)}"
            if v.grad is not None:
                line += f"    adjoint {_short(v.grad)}"
            lines.append(line)
        return "\n".join(lines)

    __repr__ = __str__

    def cost(self):
        """What the recorded tape costs (``autodiff.cost.TapeCost``): records, declared
        floating-point operations of the evaluation and of one forward and one reverse
        sweep, and the bytes the tape holds."""
        from .cost import tape_cost
        return tape_cost(self._records)

    def jacobian_cost(self, n_in=None, n_out=None):
        """What a Jacobian would cost on this tape in each mode (``JacobianCost``): n_in
        forward sweeps or n_out reverse sweeps (defaults: the tape's inputs and its last
        output), and which is cheaper."""
        from .cost import jacobian_cost
        return jacobian_cost(self._records, n_in, n_out)

    def to_dot(self):
        """Graphviz DOT source of the recorded graph (inputs as boxes, operations as ellipses)."""
        names = self._names()
        out = ["digraph tape {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for k, v in enumerate(self._records):
            label = "input" if v.prim is None else v.prim.name
            shape = "box" if v.prim is None else "ellipse"
            out.append(f'  v{k} [label="v{k}: {label}\\n{_short(v.value)}", shape={shape}];')
        for k, v in enumerate(self._records):
            for i, p in (v.parents or ()):
                if id(p) in names:
                    out.append(f"  {names[id(p)]} -> v{k};")
        out.append("}")
        return "\n".join(out)


def _short(a):
    a = getattr(a, "value", a)
    if type(a) in box_types:
        return type(a).__name__
    # options (axis=(0,), keepdims=False, an index (0, slice(1, None))) as they were given
    if a is None or a is Ellipsis or isinstance(a, (bool, int, str, slice, np.dtype, type)):
        return repr(a)
    if type(a) is tuple:
        return "(" + ", ".join(_short(i) for i in a) + ("," if len(a) == 1 else "") + ")"
    if np.ndim(a) == 0:
        try:
            return f"{float(a):.6g}"
        except TypeError:
            return repr(a)
    return f"array{np.shape(a)}"
