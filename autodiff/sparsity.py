"""Sparsity detection: a mode whose values carry index sets instead of derivatives.

``sparsity(f)(x)`` runs ``f`` once on a tracked value of a fresh level that holds the primal
``x`` (so shapes, dtypes and NumPy's dispatch work as usual) and, for every element, the set
of input elements it may depend on: a boolean ``scipy.sparse`` matrix with one row per
element. Each primitive maps its arguments' sets to its result's by the rule it declares
beside its derivative rules (``autodiff/ops/dependency.py``): elementwise operations keep
rows, data movement gathers them, reductions and products OR them together. A primitive
without a declaration is dense, so the pattern is conservative: it may hold an entry the
Jacobian never has, never miss one.

The pattern is global: valid for every ``x`` of the shape, not just the one given. So a
branch on a value computed from ``x`` (``if x[0] > 0``, ``x[mask]`` with a mask from ``x``,
``int(x)``) raises :class:`ValueDependentError` instead of following the branch taken at
this ``x``; ``np.where(cond, a, b)`` depends on both ``a`` and ``b`` whatever ``cond`` is,
and ``maximum``, ``abs``, ``clip`` are elementwise whatever the values.

The Hessian's pattern is the pattern of the gradient: ``hessian_sparsity(f)`` runs this
mode under ``grad(f)``, whose reverse rules are primitives again.
"""
import functools
import sys

import numpy as np

from .boxes import _DEFER, Box, _sparse_matmul_probe, opaque_types, unbox
from .core import NO_KW, bind, box_types, close_level, live_levels, new_level, registry
from .ops import dependency
from .tree import flatten

__all__ = ["sparsity", "hessian_sparsity", "undeclared", "ValueDependentError", "Sparsity"]


class ValueDependentError(TypeError):
    """The program branches on (or indexes with, or converts) a value computed from ``x``,
    so its sparsity pattern could depend on ``x``: a global pattern cannot follow it."""


def _refusal(what):
    return ValueDependentError(
        f"{what} of a value computed from the input during sparsity detection: the "
        "sparsity pattern would depend on x, and a detected pattern must hold for every x. "
        "Write the choice with np.where(cond, a, b) (its pattern covers both branches), or "
        "pass the pattern yourself (sparsity=... of ad.sparse_jacobian / ad.sparse_hessian).")


def _engine_frame():
    """Whether the code asking (the first frame outside the boxes) is the engine's own: its
    branches on values choose between formulas of the same dependency (a safe division at
    a zero, a NaN guard), never between programs of different structure."""
    f = sys._getframe(2)
    while f is not None and (f.f_globals.get("__name__") or "") in _PASSING:
        f = f.f_back
    name = (f.f_globals.get("__name__") or "") if f is not None else ""
    return name.startswith("autodiff.") and not name.startswith("autodiff.nn")


_PASSING = ("autodiff.boxes", "autodiff.sparsity")


class Sparsity(Box):
    """A value during sparsity detection: the primal ``value`` at the given ``x`` and its
    dependency ``pattern`` (a boolean CSR matrix, one row per element, one column per input
    element; None for a constant: the same for every ``x``)."""
    __slots__ = ("value", "pattern", "level", "_view")

    def __init__(self, value, pattern, level):
        self.value = value
        self.pattern = pattern
        self.level = level

    def apply(self, prim, args, kw):
        return _apply(prim, args, kw, self.level)

    def constant(self, value):
        return Sparsity(value, None, self.level)

    def _assignable(self):
        pass

    def _become(self, new):
        if type(new) is not Sparsity:
            new = Sparsity(new, None, self.level)
        self.value, self.pattern, self.level = new.value, new.pattern, new.level

    def __repr__(self):
        nnz = "constant" if self.pattern is None else f"{self.pattern.nnz} dependencies"
        return f"Sparsity({self.value!r}, {nnz})"

    # ----- a value that stands for every x: no branching on it -----
    def _varies(self):
        return self.pattern is not None

    def __bool__(self):
        if self._varies() and not _engine_frame():
            raise _refusal("bool() (an if, while, and/or, or assert)")
        return bool(unbox(self))

    def __array__(self, dtype=None, copy=None):
        # A zero-derivative float or mask (a comparison's result) read as numbers by the
        # engine's own code (np.where(d == 0, ...) in a rule): its value at this x serves.
        # Integers are indices: never.
        if _sparse_matmul_probe(sys._getframe(1)):     # scipy.sparse's A @ x (boxes.py)
            return _DEFER
        if self.pattern is not None and (self.pattern.nnz or not _engine_frame()
                                         or np.result_type(unbox(self)).kind in "iu"):
            raise _refusal("np.asarray()")
        v = np.asarray(unbox(self))
        return v if dtype is None else v.astype(dtype)

    def __float__(self):
        if self._varies():
            raise _refusal("float()")
        return float(unbox(self))

    def __int__(self):
        if self._varies():
            raise _refusal("int()")
        return int(unbox(self))

    def __index__(self):
        if self._varies():
            raise _refusal("using as an integer (an index, a shape or a count)")
        return int(unbox(self))

    def __lt__(self, o): return np.less(self, o)
    def __le__(self, o): return np.less_equal(self, o)
    def __gt__(self, o): return np.greater(self, o)
    def __ge__(self, o): return np.greater_equal(self, o)
    def __eq__(self, o): return np.equal(self, o)
    def __ne__(self, o): return np.not_equal(self, o)
    __hash__ = object.__hash__
    # Masks combine with the bitwise operators (zero-derivative ufuncs: marked, not read).
    def __invert__(self): return np.invert(self)
    def __and__(self, o): return np.bitwise_and(self, o)
    def __rand__(self, o): return np.bitwise_and(o, self)
    def __or__(self, o): return np.bitwise_or(self, o)
    def __ror__(self, o): return np.bitwise_or(o, self)
    def __xor__(self, o): return np.bitwise_xor(self, o)
    def __rxor__(self, o): return np.bitwise_xor(o, self)

    def guarded_value(self):
        """The primal value at the given x, for code that reads numbers off a value (the
        opaque-box protocol; ``ad.jit``'s tracers guard it instead)."""
        return unbox(self.value)

    def nondiff(self, f, args, kw):
        """``f`` (a function with a zero derivative: np.any, argmax, round, …) of values
        that vary with x: its plain result, marked as varying too."""
        leaves = flatten((args, kw))[0]
        r = f(*[_unbox_tree(a) for a in args], **{k: _unbox_tree(v) for k, v in kw.items()})
        if not any(type(a) in box_types and _varying_at(a) for a in leaves):
            return r
        return _mark(r, self.level, _ncols(leaves))


def _varying_at(a):
    while type(a) in box_types:
        if type(a) is Sparsity:
            return a.pattern is not None
        a = a.value
    return False


def _ncols(leaves):
    for a in leaves:
        while type(a) in box_types:
            if type(a) is Sparsity and a.pattern is not None:
                return a.pattern.shape[1]
            a = a.value
    return 0


def _unbox_tree(a):
    if isinstance(a, (list, tuple)):
        return type(a)(_unbox_tree(x) for x in a)
    return unbox(a)


def _empty(m, n):
    from scipy import sparse
    return sparse.csr_array((m, n), dtype=bool)


def _mark(r, level, n):
    """A plain result computed from varying values: a Sparsity with no dependencies (its
    derivative is zero) that still refuses branching."""
    if isinstance(r, tuple):
        return tuple(_mark(x, level, n) for x in r)
    if isinstance(r, (bool, int, float, complex, np.ndarray, np.generic)):
        return Sparsity(r, _empty(int(np.size(r)), n), level)
    return r


box_types.add(Sparsity)
opaque_types.add(Sparsity)


def _apply(prim, args, kw, level):
    if level not in live_levels:
        raise TypeError(
            "a value of sparsity detection (ad.sparsity, hessian_sparsity) was used after "
            "detection returned: it leaked out of the function, e.g. stored in a global or "
            "an attribute. Return it as an output instead.")
    vals, pats, nested, ours = [], [], False, False
    for a in args:
        if type(a) is Sparsity and a.level == level:
            vals.append(a.value)
            pats.append(a.pattern)
            ours = True
        else:
            vals.append(a)
            pats.append(None)
        if type(vals[-1]) in box_types:
            nested = True
    steered = bool(kw) and _steered(kw)
    if steered:
        idx = kw["idx"]
        n = _ncols(idx if isinstance(idx, tuple) else (idx,))
        kw = dict(kw, idx=tuple(unbox(i) for i in idx) if isinstance(idx, tuple) else unbox(idx))
    ans = bind(prim, *vals, **kw) if nested else prim.impl(*vals, **kw)
    varying = [p for p in pats if p is not None]
    if not varying:
        if steered:                     # constants picked by an index computed from x
            return _mark(ans, level, n)
        return Sparsity(ans, None, level) if ours and not prim.nondiff else ans
    n = varying[0].shape[1]
    if prim.nondiff:
        return _mark(ans, level, n)
    rule = prim.sparsity
    if steered:                         # which element goes where follows the values
        rule = dependency.dense
    elif rule is None:
        rule = dependency.elementwise if prim.partials is not None else dependency.dense
    P = rule(prim, ans, vals, pats, kw)
    if P is None:
        P = _empty(_elements(ans), n)
    return Sparsity(ans, P.tocsr() if P.format != "csr" else P, level)


def _elements(ans):
    if type(ans) is tuple:
        return sum(int(np.size(unbox(a))) for a in ans)
    return int(np.size(unbox(ans)))


def _steered(kw):
    """Whether ``kw["idx"]`` (indexing, assignment, scatter-add) holds an index computed
    from x: then every element of the result may come from every element (widened); a
    mask computed from x would make even the result's size depend on x (refused)."""
    idx = kw.get("idx")
    if idx is None:
        return False
    steer = [i for i in (idx if isinstance(idx, tuple) else (idx,))
             if type(i) in box_types and _varying_at(i)]
    if not steer:
        return False
    if any(np.result_type(unbox(i)).kind not in "iu" for i in steer):
        raise _refusal("indexing with a mask (x[mask], x[mask] = v)")
    return True


Sparsity._elementwise = staticmethod(lambda prim, args, level: _apply(prim, args, NO_KW, level))


# ----- NumPy functions whose structure follows the values -----
# The engine implements these with indices computed from the values (an argsort, a mask):
# right for derivatives at x, but a pattern must hold for every x. ``widen``: the order
# picks which element goes where, so every output element may depend on every input
# element; ``refuse``: the output's size follows the values, or an in-place write is
# steered by them. Each entry names the arguments whose values steer (None: the data).
def _value_steered():
    import numpy as np
    widen = {np.sort: None, np.partition: None, np.median: None, np.quantile: None,
             np.percentile: None, np.nanmedian: None, np.nanquantile: None,
             np.nanpercentile: None, np.sort_complex: None, np.take: (1, "indices"),
             np.take_along_axis: (1, "indices"), np.select: (0, "condlist"),
             np.choose: (0, "a")}
    refuse = {np.unique: None, np.unique_values: None, np.unique_counts: None,
              np.unique_inverse: None, np.unique_all: None, np.union1d: None,
              np.intersect1d: None, np.setdiff1d: None, np.setxor1d: None,
              np.trim_zeros: None, np.compress: (0, "condition"), np.extract: (0, "condition"),
              np.place: (1, "mask"), np.putmask: (1, "mask"), np.copyto: (3, "where"),
              np.repeat: (1, "repeats")}
    return widen, refuse


def _steering(args, kwargs, where):
    if where is None:
        return flatten((args, kwargs))[0]
    pos, name = where
    picked = [args[pos]] if pos < len(args) else []
    if name in kwargs:
        picked.append(kwargs[name])
    return flatten(picked)[0]


def _varying_sparsity(leaves):
    """The varying Sparsity values among ``leaves`` (looking under other boxes), and
    whether one sits under another transform's box."""
    found, nested = [], False
    for a in leaves:
        depth = 0
        while type(a) in box_types:
            if type(a) is Sparsity:
                if a.pattern is not None:
                    found.append(a)
                    nested = nested or depth > 0
                break
            a, depth = a.value, depth + 1
    return found, nested


def _guard(func, handler, where, widen):
    name = f"np.{func.__name__}"

    @functools.wraps(handler)           # the handler's own name and module (docs/coverage.md)
    def guarded(*args, **kwargs):
        steer, nested = _varying_sparsity(_steering(args, kwargs, where))
        if not steer:
            return handler(*args, **kwargs)
        if not widen or nested:
            raise _refusal(f"{name} (its result's structure follows the values)")
        sources, _ = _varying_sparsity(flatten((args, kwargs))[0])
        return _widened(handler(*args, **kwargs), sources)

    guarded.sparsity_guard = True
    return guarded


def _widened(r, sources):
    """``r`` with every element depending on everything ``sources`` depend on."""
    if isinstance(r, tuple):
        return type(r)(*[_widened(x, sources) for x in r]) if hasattr(r, "_fields") \
            else tuple(_widened(x, sources) for x in r)
    if type(r) is Sparsity:
        level, n = sources[0].level, sources[0].pattern.shape[1]
        if np.result_type(unbox(r)).kind not in "fc":
            return _mark(unbox(r), level, n)
        rows = [s.pattern for s in sources]
        return Sparsity(r.value, dependency._dense_rows(rows, int(np.size(unbox(r)))), level)
    if isinstance(r, (np.ndarray, np.generic)):
        return _mark(r, sources[0].level, sources[0].pattern.shape[1])
    return r


def _install_guards():
    from .core import function_table
    widen, refuse = _value_steered()
    for table, w in ((widen, True), (refuse, False)):
        for func, where in table.items():
            handler = function_table.get(func)
            if handler is not None and not getattr(handler, "sparsity_guard", False):
                function_table[func] = _guard(func, handler, where, w)


_install_guards()


# ----- The public functions -----
def _identity_rows(n, start, m):
    from scipy import sparse
    return sparse.csr_array((np.ones(m, dtype=bool), np.arange(start, start + m),
                             np.arange(m + 1)), shape=(m, n))


def _detect(f, args, kwargs, argnums, transform):
    """Run ``f`` in the sparsity mode: (pattern of every output element, column counts per
    differentiated argument)."""
    from scipy import sparse
    from .api import _flat_args
    leaves, rebuild, _ = _flat_args(f, args, argnums, transform)
    sizes = [int(np.size(unbox(x))) for x in leaves]
    n = sum(sizes)
    level = new_level()
    try:
        boxes, start = [], 0
        for x, m in zip(leaves, sizes):
            boxes.append(Sparsity(x, _identity_rows(n, start, m), level))
            start += m
        out = f(*rebuild(boxes), **kwargs)
    finally:
        close_level(level)
    rows = []
    for o in flatten(out)[0]:
        m = int(np.size(unbox(o)))
        if type(o) is Sparsity and o.level == level and o.pattern is not None \
                and np.result_type(unbox(o)).kind in "fc":
            rows.append(o.pattern)
        else:
            rows.append(_empty(m, n))
    P = sparse.vstack(rows, format="csr") if rows else _empty(0, n)
    P = sparse.csr_array(P, dtype=bool, copy=True)
    P.sum_duplicates()
    P.sort_indices()
    counts = [0]
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for k in nums:
        counts.append(counts[-1] + sum(int(np.size(unbox(x)))
                                       for x in flatten(args[k % len(args)])[0]))
    return P, counts


def sparsity(f, argnums=0):
    """The Jacobian's sparsity pattern of ``f``: a function of ``f``'s arguments returning a
    boolean ``scipy.sparse.csr_array`` of shape ``(out.size, x.size)``, valid for every
    ``x`` of that shape. ``P[i, j]`` is False only where ``∂out_i/∂x_j`` is zero for every x.

    Rows are the output's elements and columns the input's, both flattened in C order; a
    pytree input or output is flattened leaf by leaf (``autodiff.tree``'s order, dict keys
    sorted) and the leaves concatenated. With ``argnums`` a tuple the result is a tuple of
    patterns, one per argument. Detection runs ``f`` once on tracked values; branching on a
    value computed from ``x`` raises :class:`ValueDependentError`.

    >>> import autodiff as ad
    >>> P = ad.sparsity(lambda x: x[1:] * x[:-1])(np.ones(4))
    >>> P.toarray().astype(int)
    array([[1, 1, 0, 0],
           [0, 1, 1, 0],
           [0, 0, 1, 1]])
    """
    def sparsity_f(*args, **kwargs):
        P, counts = _detect(f, args, kwargs, argnums, "sparsity")
        if isinstance(argnums, int):
            return P
        return tuple(P[:, a:b] for a, b in zip(counts[:-1], counts[1:]))

    sparsity_f.__wrapped__ = f
    sparsity_f.__name__ = f"sparsity({getattr(f, '__name__', 'f')})"
    return sparsity_f


def hessian_sparsity(f, argnums=0):
    """The Hessian's sparsity pattern of a scalar ``f``: a symmetric boolean
    ``scipy.sparse.csr_array`` of shape ``(x.size, x.size)``, valid for every ``x``; the
    pattern of ``grad(f)``, symmetrised. With ``argnums`` a tuple the pattern covers all
    those arguments' elements, concatenated (one square matrix).

    >>> H = hessian_sparsity(lambda x: np.sum(x[1:] * x[:-1]) + np.sum(x))(np.ones(3))
    >>> H.toarray().astype(int)
    array([[0, 1, 0],
           [1, 0, 1],
           [0, 1, 0]])
    """
    from .api import grad

    def hessian_sparsity_f(*args, **kwargs):
        g = grad(f, argnums)
        P, counts = _detect(lambda *a, **k: g(*a, **k), args, kwargs, argnums,
                            "hessian_sparsity")
        P = (P + P.T).tocsr()
        P.sort_indices()
        return P

    hessian_sparsity_f.__wrapped__ = f
    hessian_sparsity_f.__name__ = f"hessian_sparsity({getattr(f, '__name__', 'f')})"
    return hessian_sparsity_f


def undeclared():
    """Names of the differentiable primitives that declare no dependency structure (the
    sparsity mode treats them as dense: every output element depends on every input)."""
    return sorted(name for name, p in registry.items()
                  if not p.nondiff and p.sparsity is None and p.partials is None)


# ``autodiff.sparsity`` is also the public function (``ad.sparsity``): give it the module's
# other names, so ``autodiff.sparsity.hessian_sparsity`` reads the same either way.
sparsity.hessian_sparsity = hessian_sparsity
sparsity.undeclared = undeclared
sparsity.ValueDependentError = ValueDependentError
sparsity.Sparsity = Sparsity
