"""The transforms: grad, jacobian, jvp, vjp, hessian, … each a short composition.

Two cores do the work. ``_push`` runs ``f`` on ``Dual`` inputs of a fresh level (optionally
with a batch of tangents on a leading axis) and ``_pull`` runs it on ``Variable`` inputs and
returns a function that sweeps cotangents (optionally batched) back. Pytrees are flattened
here, at the boundary; the engine sees flat arguments only.
"""
import gc
import inspect
import threading

import numpy as np

from .arrays import as_like, is_host, zeros
from .boxes import P, meta, unbox
from .core import (batched_levels, box_types, close_level, is_complex, new_level,
                   recording_types, shape_of)
from .forward import Dual
from .reverse import Variable, backward_pass, origin
from .tree import flatten, structure, unflatten

__all__ = ["grad", "value_and_grad", "jacobian", "jacfwd", "jacrev", "hessian", "jvp", "vjp",
           "hvp", "linearize", "linear_operator", "derivative", "elementwise_grad",
           "stop_gradient"]


# ----- Inputs and levels -----
class _level:
    """``with _level(batched) as level:`` a fresh level (batched: its tangents or cotangents
    carry a leading axis of directions while it is open)."""
    __slots__ = ("level", "batched")

    def __init__(self, batched=0):
        self.level = new_level()
        self.batched = batched

    def __enter__(self):
        if self.batched:
            batched_levels[self.level] = self.batched
        _gc_hold(1)
        return self.level

    def __exit__(self, *exc):
        _gc_hold(-1)
        close_level(self.level)         # its boxes that escaped now raise when used
        if self.batched:
            del batched_levels[self.level]


# The cyclic garbage collector is paused while a transform runs. Records form no reference
# cycles (a record points at its parents, never back), so reference counting frees them;
# but every record is a gc-tracked object, and the collector's passes over the growing live
# tape made recording slow down with its length (1.4 µs per operation at 10³ operations,
# 5.3 µs at 10⁵). Cycles made meanwhile are collected once the outermost transform returns.
_gc_state = [0, False]
_gc_lock = threading.Lock()


def _gc_hold(k):
    with _gc_lock:
        if k > 0:
            if _gc_state[0] == 0:
                _gc_state[1] = gc.isenabled()
                if _gc_state[1]:
                    gc.disable()
            _gc_state[0] += 1
        else:
            _gc_state[0] -= 1
            if _gc_state[0] == 0 and _gc_state[1]:
                gc.enable()


def _arg_name(f, i):
    try:
        params = list(inspect.signature(inspect.unwrap(f)).parameters)
        return f"argument {i} ({params[i]!r})" if i < len(params) else f"argument {i}"
    except (TypeError, ValueError):
        return f"argument {i}"


def _check_leaf(x, f, i, transform):
    """Refuse integer and boolean inputs by name: they have no derivative."""
    v = meta(x)
    if type(v) is float or type(v) is complex:
        return x
    if isinstance(v, (bool, int, np.integer, np.bool_)):
        kind = "boolean" if isinstance(v, (bool, np.bool_)) else "integer"
    else:
        if not hasattr(v, "__array_function__"):    # a list; an array (of any type) stays
            v = np.asarray(v)
        if v.dtype.kind in "fc":
            return x if type(x) is not list else v
        kind = {"b": "boolean", "i": "integer", "u": "integer"}.get(
            v.dtype.kind, f"non-numeric ({type(meta(x)).__name__})")
    raise TypeError(
        f"{transform} got {kind} input for {_arg_name(f, i)} of "
        f"{getattr(inspect.unwrap(f), '__name__', f)}: "
        f"only floating-point inputs are differentiable. Pass floats, e.g. np.asarray(x, "
        f"dtype=float) or 2.0 instead of 2.")


def _fname(f):
    return getattr(inspect.unwrap(f), "__name__", "the function")


def _check_complex(f, transform, leaves, outputs, holomorphic):
    """JAX's rules for complex numbers: ``holomorphic=True`` needs complex inputs; without
    it, forward-mode Jacobians need real inputs and reverse-mode ones real outputs (the
    derivative of a non-holomorphic map C → C is not one complex number per entry)."""
    if holomorphic:
        if not all(is_complex(meta(x)) for x in leaves):
            raise TypeError(f"{transform}(holomorphic=True) needs complex inputs, but an input "
                            f"of {_fname(f)} is real; convert it with x.astype(complex).")
        return
    if outputs is None and any(is_complex(meta(x)) for x in leaves):
        raise TypeError(
            f"{transform} of {_fname(f)} got a complex input: for a holomorphic function pass "
            "holomorphic=True; for a real-valued function of complex inputs use jacrev or "
            "grad (JAX's convention).")
    if outputs is not None and any(is_complex(meta(o)) for o in outputs):
        raise TypeError(
            f"{transform} of {_fname(f)} got a complex output: for a holomorphic function pass "
            "holomorphic=True; otherwise differentiate its real and imaginary parts "
            "(np.real, np.imag), or use jacfwd with real inputs (JAX's convention).")


def _flat_args(f, args, argnums, transform):
    """Leaves of the differentiated arguments, and a function rebuilding the call."""
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    need = max([n + 1 if n >= 0 else -n for n in nums], default=0)
    if need > len(args):
        # JAX's message and type: most often the argument was passed by keyword.
        raise TypeError(
            f"{transform}: differentiating with respect to argnums={argnums} requires at "
            f"least {need} positional arguments to be passed by the caller, but got only "
            f"{len(args)} positional arguments. Pass the arguments to differentiate by "
            f"position, not by keyword.")
    nums = tuple(n % len(args) for n in nums)
    if len(set(nums)) != len(nums):
        # (each occurrence would get its own share of the derivative: a wrong number)
        raise ValueError(f"{transform}: argnums={argnums} names an argument more than once; "
                         "list each position once.")
    leaves, defs, counts = [], [], []
    for n in nums:
        ls, d = flatten(args[n])
        leaves.extend(_check_leaf(x, f, n, transform) for x in ls)
        defs.append(d)
        counts.append(len(ls))

    def rebuild(new_leaves):
        out, k = list(args), 0
        for n, d, c in zip(nums, defs, counts):
            out[n] = unflatten(d, new_leaves[k:k + c])
            k += c
        return out

    def pack(per_leaf):
        trees, k = [], 0
        for d, c in zip(defs, counts):
            trees.append(unflatten(d, per_leaf[k:k + c]))
            k += c
        return trees[0] if single else tuple(trees)

    return leaves, rebuild, pack


def _zeros(x):
    v = meta(x)
    if type(v) is float:
        return 0.0
    return zeros(np.shape(v), np.result_type(v), like=v)


def _like_input(g, x):
    """Cotangent ``g`` with the input's type, shape and dtype (float32 stays float32)."""
    v = meta(x)
    if type(v) is float:
        return g
    if type(v) is complex:
        return g if is_complex(g) or type(g) in box_types else complex(g)
    tg = type(g)
    if tg is np.ndarray:
        return g if g.dtype == v.dtype else g.astype(v.dtype)
    if tg is float or isinstance(g, np.generic):
        return as_like(np.asarray(g, dtype=v.dtype).reshape(np.shape(v)), v)
    if tg in box_types:         # tracked by an outer transform, or recorded by ad.jit
        dt = getattr(meta(g), "dtype", None)
        if dt is not None and dt != v.dtype and dt.kind == "f" and v.dtype.kind == "f":
            g = g.astype(v.dtype)
        if tg in recording_types and type(meta(g)) is not np.ndarray \
                and (type(v) is np.ndarray or isinstance(v, np.generic)):
            # Recorded by ad.jit: as above, NumPy's scalar becomes the input's 0-d array, by
            # an instruction (the replay computes a scalar again); astype is linear, so
            # transforms of the replay differentiate through it.
            g = P["astype"](g, dtype=v.dtype)
    return g


def _split_aux(out, transform):
    """``(out, aux)`` of a function called with ``has_aux=True``, refused unless a pair."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        what = (f"a {type(out).__name__} of length {len(out)}"
                if isinstance(out, (tuple, list)) else f"a {type(meta(out)).__name__}")
        raise TypeError(f"{transform}(has_aux=True) needs the function to return a pair "
                        f"(out, aux), but it returned {what}.")
    return out


def _plain_aux(aux, level):
    """``aux`` with the values tracked at ``level`` unwrapped: aux is not differentiated
    there (outer levels still track it)."""
    leaves, tree = flatten(aux)
    return unflatten(tree, [a.value if type(a) in box_types and a.level == level else a
                            for a in leaves])


def _one(value, holomorphic=False):
    """The seed cotangent of a scalar output, in its dtype (float32 stays float32)."""
    v = meta(value)
    if not is_host(v):                  # another array type (a device array): its own one
        return np.ones_like(v)
    dt = getattr(v, "dtype", None)
    if dt is None or dt == np.float64:
        return np.complex128(1.0) if holomorphic else 1.0
    return dt.type(1)


# ----- The two cores -----
def _push(f, args, leaves, rebuild, tangents, batched=0, has_aux=False, transform="jvp"):
    """Run ``f`` on Duals; returns (output leaves, their tangents, output treedef, aux)."""
    aux = None
    with _level(batched) as level:
        duals = [Dual(x, t, level) for x, t in zip(leaves, tangents)]
        out = f(*rebuild(duals))
        if has_aux:
            out, aux = _split_aux(out, transform)
            aux = _plain_aux(aux, level)
    outs, tree = flatten(out)
    values, tans = [], []
    for o in outs:
        if type(o) is Dual and o.level == level:
            values.append(o.value)
            tans.append(o.tangent)
        else:
            values.append(o)
            tans.append(None)
    return values, tans, tree, aux


def _pull(f, args, leaves, rebuild, has_aux=False, retain=False, transform="vjp"):
    """Run ``f`` on Variables; returns (output value tree, aux, output values, sweep)."""
    aux = None
    with _level() as level:
        vs = [Variable(x, level=level) for x in leaves]
        out = f(*rebuild(vs))
        if has_aux:
            out, aux = _split_aux(out, transform)
            aux = _plain_aux(aux, level)
    outs, tree = flatten(out)
    nodes = [o if type(o) is Variable and o.level == level else None for o in outs]
    values = [o.value if n is not None else o for o, n in zip(outs, nodes)]

    def sweep(cts, nb=0):
        """Cotangents of the output leaves -> cotangents of the input leaves."""
        roots = [(n, c) for n, c in zip(nodes, cts) if n is not None]
        got = {id(v): g for v, g in backward_pass(roots, nb, retain=retain)}
        out = []
        for v, x in zip(vs, leaves):
            g = got.get(id(origin(v)))          # the input as it was, before any x[i] = v
            if g is None:
                g = _zeros(x) if nb == 0 else zeros(
                    shape_of(cts[0])[:nb] + np.shape(meta(x)), np.result_type(meta(x)),
                    like=meta(x))
            out.append(_like_input(g, x))
        return out

    return unflatten(tree, values), aux, values, sweep


# ----- grad and friends -----
def _scalar(a, kind="f"):
    """Whether ``a`` is a real (``kind="f"``) or complex (``"c"``) scalar: a Python or
    NumPy number, or a 0-d array."""
    t = type(a)
    if t is float or t is complex:
        return (t is complex) == (kind == "c")
    if t is np.ndarray:
        return a.shape == () and a.dtype.kind == kind
    if isinstance(a, np.generic):
        return isinstance(a, np.complexfloating if kind == "c" else np.floating)
    # another array type (a device array): a 0-d array of the kind
    return getattr(a, "shape", None) == () and getattr(a, "dtype", None) is not None \
        and a.dtype.kind == kind


def _not_scalar(f, value, holomorphic=False):
    want = "a complex scalar output (holomorphic=True)" if holomorphic else "a real scalar output"
    if isinstance(value, (list, tuple, dict)):
        what = f"a {type(value).__name__}; use jacobian or vjp for containers"
    elif value is None:
        what = "None (a missing return statement?)"
    else:
        shape = np.shape(value)
        kind = np.result_type(value).kind if not isinstance(value, (bool, int)) else "i"
        what = (f"an output of shape {shape}" if shape != () else
                f"a {'complex' if kind == 'c' else 'real' if kind == 'f' else 'non-float'} "
                f"output ({np.result_type(value)})")
        if shape != ():
            what += "; use jacobian, vjp or elementwise_grad for non-scalar outputs"
        elif kind == "c":
            what += ("; for a holomorphic function pass holomorphic=True, otherwise take "
                     "np.real or np.abs of it")
    raise TypeError(f"grad requires {want}, but {_fname(f)} returned {what}.")


def _value_and_grad_leaf(f, args, kwargs, argnum, x):
    """grad's common case, one plain float or array argument: no pytree machinery."""
    with _level() as level:
        v = Variable(x, level=level)
        out = f(*args[:argnum], v, *args[argnum + 1:], **kwargs)
    if type(out) is Variable and out.level == level:
        if not _scalar(meta(out.value)):
            _not_scalar(f, meta(out.value))
        reached = backward_pass([(out, _one(out.value))])
        return out.value, _like_input(reached[0][1] if reached else _zeros(x), x)
    if isinstance(out, (list, tuple, dict)) or not _scalar(meta(out)):
        _not_scalar(f, out if isinstance(out, (list, tuple, dict)) else meta(out))
    return out, _zeros(x)


def _plain_float(x):
    """A plain float or float array: an argument ``grad`` differentiates without pytrees."""
    return type(x) is float or type(x) is np.ndarray and x.dtype.kind == "f"


def _value_and_grad_leaves(f, args, kwargs, nums):
    """grad's common case with a tuple ``argnums`` of plain float or array arguments:
    ``_pull``'s steps without the pytree layers. (``_value_and_grad_leaf`` stays apart for
    one argument: without the tuple and the dict it costs 1–4 µs less per call.)"""
    with _level() as level:
        call = list(args)
        vs = []
        for n in nums:
            call[n] = v = Variable(args[n], level=level)
            vs.append(v)
        out = f(*call, **kwargs)
    if type(out) is not Variable or out.level != level:
        if isinstance(out, (list, tuple, dict)) or not _scalar(meta(out)):
            _not_scalar(f, out if isinstance(out, (list, tuple, dict)) else meta(out))
        return out, tuple([_zeros(args[n]) for n in nums])
    if not _scalar(meta(out.value)):
        _not_scalar(f, meta(out.value))
    got = {id(v): g for v, g in backward_pass([(out, _one(out.value))])}
    gs = []
    for v, n in zip(vs, nums):
        g = got.get(id(origin(v)))          # the input as it was, before any x[i] = v
        gs.append(_zeros(args[n]) if g is None else _like_input(g, args[n]))
    return out.value, tuple(gs)


def _leaf_argnums(argnums, args):
    """``argnums`` when it is a tuple of distinct positions of plain float or float-array
    arguments (the fast path of ``value_and_grad``), else ``None``."""
    n = len(args)
    for k in argnums:
        if type(k) is not int or not 0 <= k < n:
            return None
        if not _plain_float(args[k]):
            return None
    return argnums if len(set(argnums)) == len(argnums) else None


def value_and_grad(f, argnums=0, has_aux=False, holomorphic=False, *, _transform="grad"):
    """``(f(x), ∇f(x))`` from one forward and one backward sweep (reverse mode).

    For a real ``f`` of a complex ``z = x + iy`` the gradient is ``∂f/∂x - i ∂f/∂y``, the
    conjugate of the steepest-ascent direction (JAX's convention); with
    ``holomorphic=True`` it is ``f'(z)`` of a holomorphic ``f``.

    >>> value_and_grad(lambda x: x ** 3)(2.0)
    (8.0, 12.0)
    """
    def value_and_grad_f(*args, **kwargs):
        if type(argnums) is int and not has_aux and not holomorphic and 0 <= argnums < len(args):
            x = args[argnums]
            if _plain_float(x):
                return _value_and_grad_leaf(f, args, kwargs, argnums, x)
        elif type(argnums) is tuple and argnums and not has_aux and not holomorphic:
            nums = _leaf_argnums(argnums, args)
            if nums is not None:
                return _value_and_grad_leaves(f, args, kwargs, nums)
        leaves, rebuild, pack = _flat_args(f, args, argnums, _transform)
        if holomorphic:
            _check_complex(f, "grad", leaves, None, True)
        value, aux, values, sweep = _pull(lambda *a: f(*a, **kwargs), args, leaves, rebuild,
                                          has_aux, transform=_transform)
        if len(values) != 1 or isinstance(value, (list, tuple, dict)):
            _not_scalar(f, value, holomorphic)
        if not _scalar(meta(values[0]), "c" if holomorphic else "f"):
            _not_scalar(f, meta(values[0]), holomorphic)
        g = pack(sweep([_one(values[0], holomorphic)]))
        return ((value, aux), g) if has_aux else (value, g)

    value_and_grad_f.__wrapped__ = f
    value_and_grad_f.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    value_and_grad_f.__doc__ = f.__doc__
    return value_and_grad_f


def grad(f, argnums=0, has_aux=False, holomorphic=False, *, _transform="grad"):
    """∇f for a real scalar-valued ``f`` (reverse mode); ``argnums`` may be a tuple.

    Complex inputs follow JAX: for a real ``f(z)`` the result is ``∂f/∂x - i ∂f/∂y``, the
    conjugate of the steepest-ascent direction; ``holomorphic=True`` gives ``f'(z)``.

    >>> grad(lambda x: x * x)(3.0)
    6.0
    >>> complex(grad(lambda z: np.real(z * np.conj(z)))(3.0 + 4.0j))   # |z|²: 2 conj(z)
    (6-8j)
    >>> complex(grad(lambda z: z ** 3, holomorphic=True)(1.0 + 1.0j))  # 3 z²
    6j
    """
    vg = value_and_grad(f, argnums, has_aux, holomorphic, _transform=_transform)

    def grad_f(*args, **kwargs):
        (_, aux), g = vg(*args, **kwargs) if has_aux else ((None, None), vg(*args, **kwargs)[1])
        return (g, aux) if has_aux else g

    grad_f.__wrapped__ = f
    grad_f.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    grad_f.__doc__ = f.__doc__
    return grad_f


def _tangent_leaves(primals, tangents, transform):
    """The tangents' leaves, refused (as JAX) unless shaped like the primals: a different
    tree structure is a TypeError, a different leaf shape a ValueError."""
    p_leaves, p_tree = flatten(tuple(primals))
    t_leaves, t_tree = flatten(tuple(tangents))
    if p_tree != t_tree:
        raise TypeError(f"{transform}: primal and tangent arguments must have the same tree "
                        f"structure; primals have {structure(p_tree)} whereas tangents have "
                        f"{structure(t_tree)}.")
    for p, t in zip(p_leaves, t_leaves):
        if shape_of(meta(t)) != shape_of(meta(p)):
            raise ValueError(f"{transform} called with different primal and tangent shapes: "
                             f"primal shape {shape_of(meta(p))}, tangent shape "
                             f"{shape_of(meta(t))}.")
        _no_complex_for_real(t, p, transform, "tangent", "primal")
    return t_leaves


def _no_complex_for_real(t, p, transform, what, of):
    """Refuse a complex tangent (cotangent) of a real primal (output), as JAX does: the
    derivative of a real function is real, and the linear rules would drop the imaginary
    part. J(a + ib) = Ja + i·Jb: differentiate the two parts apart."""
    if is_complex(meta(t)) and not is_complex(meta(p)):
        raise TypeError(f"{transform}: a complex {what} for a real {of} (dtype "
                        f"{np.result_type(meta(p))}); the derivatives of real values are "
                        f"real. Pass the real and imaginary parts as two {what}s and "
                        f"combine the results (J(a + ib) = Ja + i·Jb).")


def jvp(f, primals, tangents, has_aux=False):
    """``(f(*primals), J·tangents)`` in one forward sweep; with ``has_aux=True``, ``f``
    returns ``(out, aux)`` and the result is ``(out, J·tangents, aux)``.

    >>> jvp(np.sin, (0.0,), (2.0,))
    (0.0, 2.0)
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"jvp: primals and tangents must be tuples or lists, one entry per "
                        f"argument of {_fname(f)}; got {type(primals).__name__} and "
                        f"{type(tangents).__name__}. Write jvp(f, (x,), (v,)).")
    tleaves = _tangent_leaves(primals, tangents, "jvp")
    primals = tuple(primals)
    leaves, rebuild, _ = _flat_args(f, primals, tuple(range(len(primals))), "jvp")
    values, tans, tree, aux = _push(f, primals, leaves, rebuild, tleaves, has_aux=has_aux)
    tans = [_zeros(v) if t is None else t for v, t in zip(values, tans)]
    out = unflatten(tree, values), unflatten(tree, tans)
    return out + (aux,) if has_aux else out


def _cotangent_leaves(cotangent, out_tree, values, transform):
    """The cotangent's leaves, refused (as JAX) unless shaped like the output."""
    cts, ct_tree = flatten(cotangent)
    if ct_tree != out_tree:
        raise TypeError(f"{transform}: the tree structure of the cotangent, "
                        f"{structure(ct_tree)}, does not match that of the function's output, "
                        f"{structure(out_tree)}.")
    for c, v in zip(cts, values):
        if shape_of(meta(c)) != shape_of(meta(v)):
            raise ValueError(f"{transform}: a cotangent of shape {shape_of(meta(c))} for an "
                             f"output of shape {shape_of(meta(v))}; they must be equal.")
        _no_complex_for_real(c, v, transform, "cotangent", "output")
    return cts


def vjp(f, *primals, has_aux=False):
    """``(f(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` is a tuple, one entry per primal.
    With ``has_aux=True``, ``f`` returns ``(out, aux)`` and the result is
    ``(out, vjp_fn, aux)``.

    >>> out, pull = vjp(lambda x, y: x * y, 2.0, 3.0)
    >>> pull(1.0)
    (3.0, 2.0)
    """
    leaves, rebuild, pack = _flat_args(f, primals, tuple(range(len(primals))), "vjp")
    value, aux, values, sweep = _pull(f, primals, leaves, rebuild, has_aux, retain=True)
    out_tree = flatten(value)[1]

    def vjp_fn(cotangent):
        return pack(sweep(_cotangent_leaves(cotangent, out_tree, values, "vjp_fn")))

    vjp_fn.out_tree = out_tree
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def linearize(f, *primals, has_aux=False):
    """``(f(*primals), f_jvp)``: ``f_jvp(*tangents)`` is ``J·tangents`` at ``primals``,
    replayed from one recording without running ``f`` again (with ``has_aux=True``:
    ``(out, f_jvp, aux)``).

    ``f`` is recorded once on the tape, and the linear map ``u ↦ Jᵀu`` of its backward sweep
    is recorded once more, on a tape of its own; ``f_jvp`` sweeps that second tape back,
    which transposes ``Jᵀ`` to ``J``. Each call costs one backward sweep over the
    linearisation; batches of tangents and outer transforms go through it like any other
    sweep.

    >>> out, f_jvp = linearize(np.sin, 0.0)
    >>> f_jvp(2.0)
    2.0
    """
    leaves, rebuild, _ = _flat_args(f, primals, tuple(range(len(primals))), "linearize")
    value, aux, values, sweep = _pull(f, primals, leaves, rebuild, has_aux, retain=True,
                                      transform="linearize")
    out_tree = flatten(value)[1]
    seeds = [_zero_like(v) for v in values]
    # The backward sweep is linear in the cotangents: record it once as a function of them.
    sweep_t = _pull(lambda *us: tuple(sweep(list(us))), seeds, seeds, lambda us: us,
                    retain=True)[3]

    def f_jvp(*tangents):
        return unflatten(out_tree, sweep_t(_tangent_leaves(primals, tangents, "f_jvp")))

    f_jvp.__name__ = f"linearize({_fname(f)})"
    return (value, f_jvp, aux) if has_aux else (value, f_jvp)


def _zero_like(v):
    """A zero tangent for output ``v``: a Python scalar stays a Python scalar."""
    v = meta(v)
    if type(v) is float or type(v) is complex:
        return type(v)(0)
    return zeros(shape_of(v), _tangent_dtype(v), like=v)


def _tangent_dtype(v):
    v = meta(v)
    if type(v) is float:
        return np.float64
    dt = np.result_type(v)
    return dt if dt.kind in "fc" else np.float64


# ----- Jacobians -----
def _basis(shapes, dtypes, a=0, b=None, likes=None):
    """Rows ``a:b`` of the identity, split by leaf: one ``(b-a,) + shape`` seed per leaf,
    of the array type of the leaf's value in ``likes`` (built on the host, moved once)."""
    sizes = [int(np.prod(s)) for s in shapes]
    b = sum(sizes) if b is None else b
    seeds, start = [], 0
    for s, n, dt in zip(shapes, sizes, dtypes):
        e = np.zeros((b - a, n), dtype=dt)
        lo, hi = max(a, start), min(b, start + n)
        if lo < hi:
            e[np.arange(lo - a, hi - a), np.arange(lo - start, hi - start)] = 1
        seeds.append(as_like(e.reshape((b - a,) + tuple(s)),
                             None if likes is None else likes[len(seeds)]))
        start += n
    return seeds, sizes


def _chunks(total, chunk_size, transform):
    """``[(a, b), …]``: the basis rows each sweep takes, at most ``chunk_size`` of them."""
    if chunk_size is None:
        return [(0, total)]
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) \
            or chunk_size < 1:
        raise ValueError(f"{transform}: chunk_size must be a positive integer or None, "
                         f"not {chunk_size!r}")
    return [(a, min(a + int(chunk_size), total))
            for a in range(0, total, int(chunk_size))] or [(0, 0)]


def _concat(parts, shape, dtype):
    """One output's tangents (or one input's cotangents) of every chunk, on one axis."""
    if len(parts) == 1:
        return parts[0][1]
    if all(p is None for _, p in parts):
        return None
    like = meta(next(p for _, p in parts if p is not None))
    return np.concatenate([zeros((n,) + shape, dtype, like=like) if p is None else p
                           for n, p in parts])


def _shape_dtype(x):
    v = meta(x)
    return np.shape(v), (np.float64 if type(v) is float else np.result_type(v))


def _with_kwargs(f, kwargs):
    return (lambda *a: f(*a, **kwargs)) if kwargs else f


def jacfwd(f, argnums=0, has_aux=False, holomorphic=False, chunk_size=None):
    """The Jacobian by forward mode: all n basis tangents in one batched sweep (or sweeps of
    at most ``chunk_size``). Inputs must be real unless ``holomorphic=True`` (then ∂f/∂z of
    a holomorphic ``f``). With ``has_aux=True``, ``f`` returns ``(out, aux)`` and the result
    is ``(jacobian, aux)``."""
    def jacfwd_f(*args, **kwargs):
        leaves, rebuild, pack = _flat_args(f, args, argnums, "jacfwd")
        _check_complex(f, "jacfwd", leaves, None, holomorphic)
        in_sd = [_shape_dtype(x) for x in leaves]
        shapes, dtypes = [s for s, _ in in_sd], [d for _, d in in_sd]
        runs = []
        for a, b in _chunks(sum(int(np.prod(s)) for s in shapes), chunk_size, "jacfwd"):
            seeds, sizes = _basis(shapes, dtypes, a, b, [meta(x) for x in leaves])
            values, tans, tree, aux = _push(_with_kwargs(f, kwargs), args, leaves, rebuild,
                                            seeds, batched=1, has_aux=has_aux,
                                            transform="jacfwd")
            runs.append((b - a, tans))
        per_out = []
        for k, v in enumerate(values):
            osh = np.shape(meta(v))
            t = _concat([(n, tans[k]) for n, tans in runs], osh, _tangent_dtype(v))
            blocks, start = [], 0
            for (ish, dt), n in zip(in_sd, sizes):
                if t is None:
                    blocks.append(zeros(osh + ish, dt, like=meta(v)))
                else:
                    blk = t[start:start + n]                    # (n,) + osh
                    blk = np.moveaxis(blk, 0, -1) if len(osh) else blk
                    blocks.append(np.reshape(blk, osh + ish))
                start += n
            per_out.append(pack(blocks))
        jac = unflatten(tree, per_out)
        return (jac, aux) if has_aux else jac

    jacfwd_f.__wrapped__ = f
    jacfwd_f.__name__ = f"jacfwd({getattr(f, '__name__', 'f')})"
    return jacfwd_f


def _jacrev_from(f, pulled, holomorphic=False, chunk_size=None):
    leaves, pack, value, values, sweep = pulled
    _check_complex(f, "jacrev", leaves, None if holomorphic else values, holomorphic)
    out_sd = [_shape_dtype(v) for v in values]
    shapes, dtypes = [s for s, _ in out_sd], [d for _, d in out_sd]
    runs = []
    for a, b in _chunks(sum(int(np.prod(s)) for s in shapes), chunk_size, "jacrev"):
        seeds, sizes = _basis(shapes, dtypes, a, b, [meta(v) for v in values])
        runs.append((b - a, sweep(seeds, nb=1)))                 # each (b-a,) + in.shape
    grads = [_concat([(n, g[i]) for n, g in runs], np.shape(meta(x)), _tangent_dtype(x))
             for i, x in enumerate(leaves)]
    per_out, start = [], 0
    for (osh, _), m in zip(out_sd, sizes):
        blocks = [np.reshape(g[start:start + m], osh + np.shape(meta(x)))
                  for g, x in zip(grads, leaves)]
        per_out.append(pack(blocks))
        start += m
    return unflatten(flatten(value)[1], per_out)


def _pull_args(f, args, kwargs, argnums, transform, has_aux, chunk_size):
    leaves, rebuild, pack = _flat_args(f, args, argnums, transform)
    value, aux, values, sweep = _pull(_with_kwargs(f, kwargs), args, leaves, rebuild, has_aux,
                                      retain=chunk_size is not None, transform=transform)
    return (leaves, pack, value, values, sweep), aux


def jacrev(f, argnums=0, has_aux=False, holomorphic=False, chunk_size=None):
    """The Jacobian by reverse mode: all m basis cotangents in one batched sweep (or sweeps
    of at most ``chunk_size``) over one recording. Outputs must be real unless
    ``holomorphic=True``; complex inputs give JAX's conjugate gradients, row by row. With
    ``has_aux=True``, ``f`` returns ``(out, aux)`` and the result is ``(jacobian, aux)``."""
    def jacrev_f(*args, **kwargs):
        pulled, aux = _pull_args(f, args, kwargs, argnums, "jacrev", has_aux, chunk_size)
        jac = _jacrev_from(f, pulled, holomorphic, chunk_size)
        return (jac, aux) if has_aux else jac

    jacrev_f.__wrapped__ = f
    jacrev_f.__name__ = f"jacrev({getattr(f, '__name__', 'f')})"
    return jacrev_f


def auto_mode(n_in, n_out):
    """The mode ``jacobian(mode="auto")`` picks: forward when inputs are fewer than outputs."""
    return "forward" if n_in < n_out else "reverse"


def jacobian(f, argnums=0, mode="auto", has_aux=False, holomorphic=False, chunk_size=None):
    """The Jacobian, shape ``out.shape + in.shape``, by ``mode`` ``"forward"``,
    ``"reverse"`` or ``"auto"`` (forward when inputs are fewer than outputs). After a call,
    the returned function's ``last_mode`` says which mode ran. Complex numbers follow JAX:
    ``holomorphic=True`` for ∂f/∂z; otherwise complex inputs need the reverse mode and
    complex outputs the forward mode, which ``"auto"`` picks. ``has_aux`` and
    ``chunk_size`` as in ``jacfwd``/``jacrev``.

    >>> jacobian(lambda x: x[:2] * x[1:], mode="forward")(np.array([1.0, 2.0, 3.0]))
    array([[2., 1., 0.],
           [0., 3., 2.]])
    """
    if mode not in ("forward", "reverse", "auto"):
        raise ValueError(f'jacobian mode must be "forward", "reverse" or "auto", not {mode!r}')
    fwd = jacfwd(f, argnums, has_aux, holomorphic, chunk_size)
    rev = jacrev(f, argnums, has_aux, holomorphic, chunk_size)

    def jacobian_f(*args, **kwargs):
        if mode == "forward":
            jacobian_f.last_mode = "forward"
            return fwd(*args, **kwargs)
        if mode == "reverse":
            jacobian_f.last_mode = "reverse"
            return rev(*args, **kwargs)
        # Auto: record once in reverse mode; if outputs outnumber inputs, forward wins and
        # the recording is dropped.
        pulled, aux = _pull_args(f, args, kwargs, argnums, "jacobian", has_aux, chunk_size)
        leaves, values = pulled[0], pulled[3]
        n_in = sum(int(np.prod(np.shape(meta(x)))) for x in leaves)
        n_out = sum(int(np.prod(np.shape(meta(v)))) for v in values)
        mode_ = auto_mode(n_in, n_out)
        if not holomorphic:         # a complex side can only be the seeded one's opposite
            if any(is_complex(meta(x)) for x in leaves):
                mode_ = "reverse"
            elif any(is_complex(meta(v)) for v in values):
                mode_ = "forward"
        jacobian_f.last_mode = mode_
        if mode_ == "forward":
            del pulled
            return fwd(*args, **kwargs)
        jac = _jacrev_from(f, pulled, holomorphic, chunk_size)
        return (jac, aux) if has_aux else jac

    jacobian_f.last_mode = None
    jacobian_f.__wrapped__ = f
    jacobian_f.__name__ = f"jacobian({getattr(f, '__name__', 'f')})"
    return jacobian_f


def hessian(f, argnums=0, has_aux=False, holomorphic=False, chunk_size=None):
    """The Hessian of a scalar function, forward-over-reverse: ``jacfwd(grad(f))``
    (``has_aux=True``: ``(hessian, aux)``; ``chunk_size`` caps the directions per sweep).

    >>> hessian(lambda x: x[0] ** 2 * x[1])(np.array([1.0, 2.0]))
    array([[4., 2.],
           [2., 0.]])
    """
    g = grad(f, argnums, has_aux, holomorphic, _transform="hessian")
    jac = jacfwd(g, argnums, has_aux, holomorphic, chunk_size)

    def hessian_f(*args, **kwargs):
        _flat_args(f, args, argnums, "hessian")           # refuse integer inputs by name
        return jac(*args, **kwargs)

    hessian_f.__name__ = f"hessian({getattr(f, '__name__', 'f')})"
    hessian_f.__wrapped__ = f
    return hessian_f


def linear_operator(f, x):
    """The Jacobian of ``f`` at ``x`` as a ``scipy.sparse.linalg.LinearOperator`` of shape
    ``(out.size, x.size)`` (pytrees flattened, leaf by leaf): ``matvec`` is a JVP,
    ``rmatvec`` a VJP over one recording, ``matmat`` one batched forward sweep and
    ``rmatmat`` one batched backward sweep. For ``gmres``, ``lsqr``, ``eigsh``, …; the
    Hessian of ``f`` is ``linear_operator(grad(f), x)``.
    """
    from scipy.sparse.linalg import LinearOperator
    leaves, rebuild, _ = _flat_args(f, (x,), 0, "linear_operator")
    value, _, values, sweep = _pull(f, (x,), leaves, rebuild, retain=True,
                                    transform="linear_operator")
    if any(is_complex(meta(v)) for v in list(leaves) + list(values)):
        raise TypeError(f"linear_operator of {_fname(f)}: complex inputs or outputs have no "
                        "complex Jacobian matrix in general; split them into real and "
                        "imaginary parts (np.real, np.imag).")
    in_sd = [_shape_dtype(v) for v in leaves]
    out_sd = [_shape_dtype(v) for v in values]
    n = sum(int(np.prod(s)) for s, _ in in_sd)
    m = sum(int(np.prod(s)) for s, _ in out_sd)

    def split(V, sds):                 # (size, k) columns -> per leaf (k,) + shape
        parts, start = [], 0
        for s, _ in sds:
            c = int(np.prod(s))
            parts.append(np.reshape(V[start:start + c].T, (V.shape[1],) + s))
            start += c
        return parts

    def join(parts, sds, k):           # per leaf (k,) + shape (None: zero) -> (size, k)
        cols = [np.zeros((int(np.prod(s)), k), dt) if p is None else
                np.reshape(unbox(p), (k, -1)).T for p, (s, dt) in zip(parts, sds)]
        return np.concatenate(cols, axis=0) if cols else np.zeros((0, k))

    def real_parts(apply):
        # The Jacobian is real: a complex block (SciPy passes one for a complex right-hand
        # side or shift) is J·Re V + i·J·Im V, the two parts as columns of one sweep.
        def op(V):
            if not np.iscomplexobj(V):
                return apply(V)
            k = V.shape[1]
            W = apply(np.concatenate([V.real, V.imag], axis=1))
            return W[:, :k] + 1j * W[:, k:]
        return op

    @real_parts
    def matmat(V):
        V = np.asarray(V).reshape(n, -1)
        tans = _push(f, (x,), leaves, rebuild, split(V, in_sd), batched=1,
                     transform="linear_operator")[1]
        return join(tans, out_sd, V.shape[1])

    @real_parts
    def rmatmat(U):
        U = np.asarray(U).reshape(m, -1)
        return join(sweep(split(U, out_sd), nb=1), in_sd, U.shape[1])

    def matvec(v):                     # SciPy may pass an (n, 1) column
        v = np.asarray(v)
        if np.iscomplexobj(v):
            return matmat(np.reshape(v, (n, 1)))[:, 0]
        parts = [p[0] for p in split(np.reshape(v, (n, 1)), in_sd)]
        tans = _push(f, (x,), leaves, rebuild, parts, transform="linear_operator")[1]
        return join([None if t is None else np.reshape(unbox(t), (1, -1)) for t in tans],
                    out_sd, 1)[:, 0]

    def rmatvec(u):
        u = np.asarray(u)
        if np.iscomplexobj(u):
            return rmatmat(np.reshape(u, (m, 1)))[:, 0]
        parts = [p[0] for p in split(np.reshape(u, (m, 1)), out_sd)]
        return join([np.reshape(unbox(g), (1, -1)) for g in sweep(parts)], in_sd, 1)[:, 0]

    dtype = np.result_type(*[dt for _, dt in in_sd + out_sd]) if in_sd + out_sd else float
    return LinearOperator((m, n), matvec=matvec, rmatvec=rmatvec, matmat=matmat,
                          rmatmat=rmatmat, dtype=dtype)


def hvp(f, x, v):
    """``H(x)·v`` without forming ``H``: one forward sweep over the reverse sweep."""
    _flat_args(f, (x,), 0, "hvp")
    return jvp(grad(f), (x,), (v,))[1]


def derivative(f, order=1):
    """The ``order``-th derivative of a scalar function of one scalar (nested forward mode).

    >>> d2 = derivative(np.sin, order=2)     # -sin
    >>> print(round(float(d2(0.5)), 12), round(-np.sin(0.5), 12))
    -0.479425538604 -0.479425538604
    """
    if order < 0:
        raise ValueError("derivative order must be ≥ 0")
    if order == 0:
        return f

    inner = derivative(f, order - 1)

    def df(x, *args):
        one = 1.0 if type(meta(x)) is float else np.ones_like(meta(x))  # dispatches
        return jvp(lambda y: inner(y, *args), (x,), (one,))[1]

    df.__name__ = f"derivative({getattr(f, '__name__', 'f')}, {order})"
    return df


def elementwise_grad(f, argnums=0):
    """The VJP with a cotangent of ones: for ``f`` applied elementwise, its derivative at
    every element (autograd's ``elementwise_grad``)."""
    def egrad_f(*args):
        leaves, rebuild, pack = _flat_args(f, args, argnums, "elementwise_grad")
        value, _, values, sweep = _pull(f, args, leaves, rebuild, transform="elementwise_grad")
        return pack(sweep([np.ones_like(meta(v)) for v in values]))

    egrad_f.__wrapped__ = f
    egrad_f.__name__ = f"elementwise_grad({getattr(f, '__name__', 'f')})"
    return egrad_f


def stop_gradient(x):
    """``x`` with no derivative flowing through it (at any level); pytrees allowed."""
    from .ops.nondiff import stop_gradient_p
    leaves, tree = flatten(x)
    return unflatten(tree, [stop_gradient_p(v) for v in leaves])
