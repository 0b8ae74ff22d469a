"""The seam fuzzer: random programs across the primitive registry *and* the engine's seams.

A *program* is a pytree of tiny inputs and 2-6 *steps*. The values form an environment
``env`` (the input leaves first); each step applies a *block* to it and appends the result, and
the program's output is the last value. A block is written twice:

- ``fn(env)``: the code a user writes (NumPy calls on tracked values, ``custom_jvp``,
  ``checkpoint``, assignment, closures, inner transforms, ...);
  A custom rule's primal function wraps its inputs in ``stop_gradient``: a derivative must
  come from the rule, so an engine that bypasses the rule is caught;
- ``ref(env)``: the same mathematics in plain NumPy (for a ``custom_jvp`` block ``A @ x``, for
  an inner ``grad`` its closed form), whose central differences are the true derivatives.

``check(program)`` holds every transform to those references: the primal of ``fn`` (plain,
under ``jvp`` and under ``vjp``) equals ``ref`` with the same dtype; ``jvp`` along a random
``v`` equals the Richardson central difference of ``ref``; ``<u, Jv> = <Jᵀu, v>``; ``jacfwd``
equals ``jacrev``, ``J v`` and ``uᵀ J``; for ``G = Σ w·sin(out)``: ``hessian(G)`` is symmetric
and equals ``jacrev(grad(G))``, ``jvp(grad(G))`` and the central difference of ``grad(G)``; and an
exception raised inside a backward sweep leaves the next sweeps (functional and eager,
retained graph and fresh Variables) correct. A program with a ``custom_vjp`` must be refused by
forward mode with a ``TypeError`` (JAX's rule); a block marked ``refusable`` may be refused
with a clear error instead of differentiated (the contract allows it), never answered wrongly.
A failure raises ``SeamFailure(kind, program, detail)``; ``repr(program)`` lists its blocks
and ``program.spec`` rebuilds it: ``check(Program(spec))``.

Later features register their own blocks (their tests import this module)::

    import seams
    def build(rng, shapes, dtype):          # shapes: those of env; dtype: the inputs'
        A = rng.standard_normal((2, 3)).astype(dtype)
        if shapes[-1] != (3,):
            return None                      # does not apply to this input
        return (lambda env: my_op(env[-1], A),          # as a user writes it
                lambda env: A @ env[-1])                 # plain NumPy, same mathematics
    seams.register_block("my_op", build, forward=True, order2=True, refusable=False)

``forward=False``: forward mode must refuse it (a reverse-only rule). ``order2=False``: no
second derivatives are checked through it. ``build`` returning ``None`` (or a ``ref`` that
raises, or gives a non-finite, integer or over-large value) means "not for these shapes"; the
generator then takes the next block. ``seams.random_spec(rng)`` draws a program spec from a
NumPy generator (the long run, ``tests/run_seams.py``); ``spec_strategy()`` is the same for
hypothesis (``tests/test_seams.py``).
"""
import collections
import copy
import sys
from dataclasses import dataclass, field

import numpy as np

import autodiff as ad
from autodiff.boxes import Box

__all__ = ["register_block", "Block", "Program", "SeamFailure", "check", "random_spec",
           "spec_strategy", "program_through", "SEAM_BLOCKS", "CASE_BLOCKS"]


@dataclass
class Block:
    name: str
    build: object               # build(rng, shapes, dtype) -> (fn, ref) | None
    forward: bool = True        # forward mode may differentiate it (else: must refuse)
    order2: bool = True         # twice differentiable (hessian checked through it)
    refusable: bool = False     # a clear refusal is an allowed answer
    plain: bool = True          # fn on plain ndarrays means ref (False: tracked semantics
    #                             differ from NumPy's on purpose, e.g. views are values)
    tags: tuple = ()


SEAM_BLOCKS = []     # engine seams (custom rules, checkpoint, assignment, views, ...)

CASE_BLOCKS = []     # registry primitives, from the case table (tests/cases*.py)


def register_block(name, build, *, forward=True, order2=True, refusable=False, plain=True,
                   tags=(), table=None):
    """Add a block to the seam registry (see the module docstring). Returns the Block."""
    b = Block(name, build, forward, order2, refusable, plain, tuple(tags))
    (SEAM_BLOCKS if table is None else table).append(b)
    return b


def seam(name, **kw):
    def deco(build):
        register_block(name, build, **kw)
        return build
    return deco


# ---------------------------------------------------------------------------------------
# Helpers shared by the blocks
# ---------------------------------------------------------------------------------------
def _size(shape):
    return int(np.prod(shape, dtype=int))


def _const(rng, shape, dtype, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(dtype)


def _earlier(rng, shapes):
    """Index of an earlier value of env (not the current one), or None."""
    return int(rng.integers(len(shapes) - 1)) if len(shapes) > 1 else None


def _cplx(dtype):
    return np.complex64 if np.dtype(dtype) == np.float32 else np.complex128


# ----- registry primitives ---------------------------------------------------------------
def _squash(dom, dtype):
    """A smooth map of the reals into a case's input domain (so any value may feed it)."""
    d = np.dtype(dtype).type
    c = _cplx(dtype)
    if dom == "real":
        return lambda y: d(2.0) * np.tanh(y / d(2.0))
    if dom == "pos":
        return lambda y: d(1.25) + d(0.75) * np.tanh(y)
    if dom == "nonzero":
        return lambda y: d(1.0) + d(0.5) * np.tanh(y)
    if dom == "unit":
        return lambda y: d(0.8) * np.tanh(y)
    if dom == "big":
        return lambda y: d(3.0) + np.tanh(y)
    if dom == "complex":
        return lambda y: np.tanh(y) * c(1.2 + 0.9j) + c(0.3j)
    return None


def _realify(w):
    """A complex result read as a real one (both parts count)."""
    if np.iscomplexobj(w):
        return np.real(w) + 0.5 * np.imag(w)
    return w


# Too slow for tiny random programs or needing inputs of a special structure.
_SKIP_PRIMS = {"odeint", "astype", "eig", "svd", "qr", "lu_factor", "expm", "logm", "sqrtm"}


def _case_blocks():
    import os
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    from cases import CASES
    seen = set()
    for case in CASES:
        if len(case.args) != 1 or case.prim in _SKIP_PRIMS:
            continue
        dom = case.args[0][1]
        if callable(dom) or dom not in ("real", "pos", "nonzero", "unit", "big", "complex"):
            continue
        key = (case.prim, case.id.split("-")[0], dom, case.fn.__code__.co_code
               if hasattr(case.fn, "__code__") else case.id)
        if key in seen:              # the shape variants of one case: one block
            continue
        seen.add(key)

        def build(rng, shapes, dtype, fn=case.fn, dom=dom, wrap="wrap" in case.id,
                  prim=case.prim):
            if wrap and 0 in shapes[-1]:
                return None          # np.take(..., mode="wrap") on an empty axis never returns
            if prim == "irfft" and 0 in shapes[-1]:
                return None          # NumPy's irfft/hfft of an empty input, padded to n, reads
                                     # uninitialised memory: no reference to compare with
            sq = _squash(dom, dtype)
            return (lambda env: _realify(fn(sq(env[-1]))),) * 2
        register_block(f"case[{case.id}]", build, table=CASE_BLOCKS, tags=(case.prim,))


_case_blocks()


# ----- seam blocks -----------------------------------------------------------------------
@seam("matvec")
def _matvec(rng, shapes, dtype):
    m = int(rng.integers(1, 4))
    A = _const(rng, (m, _size(shapes[-1])), dtype)
    return (lambda env: A @ np.reshape(env[-1], -1),) * 2


@seam("einsum")
def _einsum(rng, shapes, dtype):
    s = shapes[-1]
    if len(s) == 2:
        B = _const(rng, (s[1], 2), dtype)
        return (lambda env: np.einsum("ij,jk->ik", env[-1], B),) * 2
    c = _const(rng, (_size(s),), dtype)
    return (lambda env: np.einsum("i,i->", np.reshape(env[-1], -1), c) * env[-1],) * 2


@seam("reshape")
def _reshape(rng, shapes, dtype):
    s = shapes[-1]
    k = int(rng.integers(5))
    if k == 0:
        f = lambda y: np.reshape(y, (-1,))                        # noqa: E731
    elif k == 1:
        f = lambda y: np.reshape(y, tuple(reversed(s)))           # noqa: E731
    elif k == 2:
        f = lambda y: y.T                                         # noqa: E731
    elif k == 3:
        f = lambda y: np.expand_dims(y, 0) * 2.0                  # noqa: E731
    else:
        f = lambda y: np.squeeze(np.swapaxes(y[None], 0, -1))     # noqa: E731
    return (lambda env: f(env[-1]),) * 2


@seam("index")
def _index(rng, shapes, dtype):
    n = _size(shapes[-1])
    k = int(rng.integers(4))
    if k == 0:
        f = lambda y: np.reshape(y, -1)[::-1]                     # noqa: E731
    elif k == 1:
        f = lambda y: np.reshape(y, -1)[1:]          # noqa: E731 (may be empty)
    elif k == 2:
        if n == 0:
            return None
        idx = rng.integers(0, n, size=int(rng.integers(1, 5)))   # repeats: gather-add
        f = lambda y: np.reshape(y, -1)[idx]                      # noqa: E731
    else:
        mask = rng.random(n) < 0.5
        f = lambda y: np.reshape(y, -1)[mask]                     # noqa: E731
    return (lambda env: f(env[-1]),) * 2


@seam("view_read")
def _view_read(rng, shapes, dtype):
    """Views that are read: a transpose, a strided slice, a reshaped row."""
    s = shapes[-1]
    if len(s) != 2 or s[0] == 0:
        return None

    def f(env):
        y = env[-1]
        v = y.T
        r = y.reshape(-1)[::2]
        return np.concatenate([np.ravel(v[:, 0] * 2.0), r * y[0, 0], y.reshape(s[0], -1)[0]])
    return f, f


@seam("write_after_view", plain=False)
def _write_after_view(rng, shapes, dtype):
    """Views are values: a write into ``z`` after ``v = z[...]`` leaves ``v`` as it was
    (NumPy would change it; the reference copies)."""
    if _size(shapes[-1]) < 2:
        return None

    def body(env, copy_view):
        # On a plain array (a constant of the transform: nothing tracked reaches it) NumPy's
        # view semantics rightly apply; views are values for tracked arrays only.
        copy_view = copy_view or not isinstance(env[-1], Box)
        y = np.reshape(env[-1], -1)
        z = np.zeros_like(y) + y
        v = z[:2]
        if copy_view:
            v = v.copy()
        z[0] = 3.0 * z[1]
        z[1:] += np.sin(z[:-1])
        return np.concatenate([v * 1.0, z])
    return (lambda env: body(env, False)), (lambda env: body(env, True))


@seam("assign")
def _assign(rng, shapes, dtype):
    """``out = zeros_like(x); out[i] = ...; out += ...``, the pattern users write."""
    if _size(shapes[-1]) < 2:
        return None
    k = int(rng.integers(3))

    def f(env):
        y = np.reshape(env[-1], -1)
        out = np.zeros_like(y)
        out[0] = y[-1] * 2.0
        out[1:] = np.sin(y[:-1])
        if k == 0:
            out += y ** 2
        elif k == 1:
            out[::2] *= y[::2]
        else:
            out[-1] = out[0] * y[0]
        return out
    return f, f


@seam("assign_2d", refusable=True)
def _assign_2d(rng, shapes, dtype):
    """A write through a view (``z[0][1] = v``, ``z.T[0] = v``): carried into ``z`` as NumPy
    does, or refused, never lost."""
    s = shapes[-1]
    if len(s) != 2 or s[0] < 1 or s[1] < 2:
        return None

    def f(env):
        y = env[-1]
        z = np.zeros_like(y) + y
        z[0][1] = z[0, 0] * 2.0
        z.T[0] = np.cos(z[:, 1])
        return z
    return f, f


def _matrix_custom_jvp(A):
    @ad.custom_jvp
    def f(x):      # stop_gradient: a derivative must come from the rule, never from here
        return np.sin(A @ ad.stop_gradient(x))

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        u = A @ x
        return np.sin(u), np.cos(u) * (A @ t)
    return f


@seam("custom_jvp_matrix")
def _cjvp_matrix(rng, shapes, dtype):
    """A custom_jvp whose rule is matrix-valued and not square: the rule sees one tangent
    at a time (a batch is the engine's business)."""
    n = _size(shapes[-1])
    A = _const(rng, (int(rng.integers(1, 4)), n), dtype)
    f = _matrix_custom_jvp(A)
    return (lambda env: f(np.reshape(env[-1], -1)),
            lambda env: np.sin(A @ np.reshape(env[-1], -1)))


@seam("custom_jvp_linear")
def _cjvp_linear(rng, shapes, dtype):
    n = _size(shapes[-1])
    A = _const(rng, (int(rng.integers(1, 4)), n), dtype)

    @ad.custom_jvp
    def lin(x):
        return A @ ad.stop_gradient(x)

    @lin.defjvp
    def lin_jvp(primals, tangents):
        return A @ primals[0], A @ tangents[0]
    return (lambda env: lin(np.reshape(env[-1], -1)),
            lambda env: A @ np.reshape(env[-1], -1))


P = collections.namedtuple("P", "a b")


@seam("custom_jvp_pytree", refusable=True)
def _cjvp_pytree(rng, shapes, dtype):
    """A custom_jvp taking a namedtuple holding a dict and returning a tuple."""
    @ad.custom_jvp
    def f(p):
        a, s = ad.stop_gradient(p.a), ad.stop_gradient(p.b["s"])
        return a * s, np.sum(a)

    @f.defjvp
    def f_jvp(primals, tangents):
        (p,), (t,) = primals, tangents
        return ((p.a * p.b["s"], np.sum(p.a)),
                (t.a * p.b["s"] + p.a * t.b["s"], np.sum(t.a)))

    def fn(env):
        y = env[-1]
        o = f(P(a=y, b={"s": np.cos(y)}))
        return o[0] + o[1]
    return fn, (lambda env: env[-1] * np.cos(env[-1]) + np.sum(env[-1]))


@seam("custom_jvp_closure", refusable=True)
def _cjvp_closure(rng, shapes, dtype):
    """A custom_jvp closing over an earlier tracked value: differentiated or refused."""
    j = _earlier(rng, shapes)
    if j is None:
        return None

    def fn(env):
        c = env[j]

        @ad.custom_jvp
        def f(y):
            return ad.stop_gradient(y) * np.sum(np.sin(c))

        @f.defjvp
        def f_jvp(primals, tangents):
            return primals[0] * np.sum(np.sin(c)), tangents[0] * np.sum(np.sin(c))
        return f(env[-1])
    return fn, (lambda env: env[-1] * np.sum(np.sin(env[j])))


def _reads(indices, fn):
    """Mark which values of env a reverse-only block's rule reads (for forward mode's
    refusal: it is due only where a tangent reaches them)."""
    fn.reads = indices
    return fn


@seam("custom_vjp_matrix", forward=False)
def _cvjp_matrix(rng, shapes, dtype):
    n = _size(shapes[-1])
    A = _const(rng, (int(rng.integers(1, 4)), n), dtype)

    @ad.custom_vjp
    def f(x):
        return np.tanh(A @ ad.stop_gradient(x))

    def fwd(x):
        o = np.tanh(A @ x)
        return o, o

    def bwd(o, g):
        return (A.T @ (g * (1.0 - o * o)),)
    f.defvjp(fwd, bwd)
    return (_reads((-1,), lambda env: f(np.reshape(env[-1], -1))),
            lambda env: np.tanh(A @ np.reshape(env[-1], -1)))


@seam("custom_vjp_dict", forward=False, refusable=True)
def _cvjp_dict(rng, shapes, dtype):
    """A custom_vjp taking a dict."""
    @ad.custom_vjp
    def f(d):
        x, y = ad.stop_gradient(d["x"]), ad.stop_gradient(d["y"])
        return x * np.exp(-y ** 2)

    def fwd(d):
        e = np.exp(-d["y"] ** 2)
        return d["x"] * e, (d, e)

    def bwd(res, g):
        d, e = res
        return ({"x": g * e, "y": -2.0 * d["y"] * d["x"] * e * g},)
    f.defvjp(fwd, bwd)
    return (_reads((-1,), lambda env: f({"x": env[-1], "y": np.sin(env[-1])})),
            lambda env: env[-1] * np.exp(-np.sin(env[-1]) ** 2))


@seam("custom_vjp_closure", forward=False, refusable=True)
def _cvjp_closure(rng, shapes, dtype):
    j = _earlier(rng, shapes)
    if j is None:
        return None

    def fn(env):
        c = env[j]

        @ad.custom_vjp
        def f(y):
            return ad.stop_gradient(y) * np.sum(c * c)

        f.defvjp(lambda y: (f(y), None), lambda res, g: (g * np.sum(c * c),))
        return f(env[-1])
    return _reads((-1, j), fn), (lambda env: env[-1] * np.sum(env[j] * env[j]))


_SMOOTH = [lambda y: np.sin(y) * np.cos(2.0 * y), lambda y: np.exp(-y * y) + y,
           lambda y: np.log1p(y * y) * y, lambda y: np.tanh(y) ** 2]


@seam("checkpoint")
def _checkpoint(rng, shapes, dtype):
    g = _SMOOTH[int(rng.integers(len(_SMOOTH)))]
    nested = bool(rng.integers(2))
    inner = ad.checkpoint(g)
    if nested:
        outer = ad.checkpoint(lambda y: inner(y) * 2.0)
        return (lambda env: outer(env[-1])), (lambda env: g(env[-1]) * 2.0)
    return (lambda env: inner(env[-1])), (lambda env: g(env[-1]))


@seam("checkpoint_tuple", refusable=True)
def _checkpoint_tuple(rng, shapes, dtype):
    """checkpoint of a function returning a tuple holding a dict."""
    f = ad.checkpoint(lambda y: (np.sin(y), {"c": y * y}))

    def fn(env):
        a, b = f(env[-1])
        return a + b["c"]
    return fn, (lambda env: np.sin(env[-1]) + env[-1] ** 2)


@seam("checkpoint_closure", refusable=True)
def _checkpoint_closure(rng, shapes, dtype):
    j = _earlier(rng, shapes)
    if j is None:
        return None

    def fn(env):
        c = env[j]
        return ad.checkpoint(lambda y: np.sin(y) * np.sum(c))(env[-1])
    return fn, (lambda env: np.sin(env[-1]) * np.sum(env[j]))


@seam("mix")
def _mix(rng, shapes, dtype):
    """Combines the current value with an earlier one (a second input, say)."""
    j = _earlier(rng, shapes)
    if j is None:
        return None
    c = _const(rng, shapes[j], dtype)
    f = lambda env: env[-1] * (1.0 + 0.5 * np.tanh(np.sum(env[j] * c)))  # noqa: E731
    return f, f


@seam("complex_mid")
def _complex_mid(rng, shapes, dtype):
    """Complex intermediates, real results: x·(1+i) through exp/abs/real/conj."""
    k = int(rng.integers(3))
    c = _cplx(dtype)

    def f(env):
        z = env[-1] * c(1 + 1j)
        if k == 0:
            return np.abs(z * z + c(0.5j))
        if k == 1:
            return np.real(np.exp(c(1j) * z) * np.conj(z))
        return np.imag(z ** 2) + np.angle(z + c(2.0))
    return f, f


@seam("complex_var")
def _complex_var(rng, shapes, dtype):
    """var/std of a complex array (real results)."""
    if _size(shapes[-1]) < 2:
        return None
    k = int(rng.integers(2))
    c = _cplx(dtype)

    def f(env):
        z = env[-1] * c(1 + 2j) + np.sin(env[-1]) * c(0.5j)
        if k == 0:
            return np.var(z) * env[-1]
        return np.std(z) + np.var(z.ravel()[:2])
    return f, f


@seam("pow_xy")
def _pow_xy(rng, shapes, dtype):
    """``x ** y`` with the exponent tracked too (exact zeros in the inputs reach y = 0)."""
    d = np.dtype(dtype).type
    f = lambda env: (d(1.25) + d(0.75) * np.tanh(env[-1])) ** env[-1]   # noqa: E731
    return f, f


@seam("inner_grad")
def _inner_grad(rng, shapes, dtype):
    """An inner ``grad`` over a dict argument (perturbation confusion if levels mix)."""
    c = _const(rng, shapes[-1], dtype)
    g = ad.grad(lambda d: np.sum(np.sin(d["a"]) * d["b"]))
    return (lambda env: g({"a": env[-1], "b": c})["a"] * env[-1],
            lambda env: np.cos(env[-1]) * c * env[-1])


@seam("inner_jvp")
def _inner_jvp(rng, shapes, dtype):
    def fn(env):
        y = env[-1]
        _, t = ad.jvp(lambda u: np.sin(u) * u, (y,), (np.ones(np.shape(y), dtype=dtype),))
        return t
    return fn, (lambda env: np.cos(env[-1]) * env[-1] + np.sin(env[-1]))


@seam("inner_jacobian")
def _inner_jacobian(rng, shapes, dtype):
    """Batched inner transforms: jacfwd / jacrev / hessian inside the program."""
    n = _size(shapes[-1])
    A = _const(rng, (2, n), dtype)
    v = _const(rng, (n,), dtype)
    k = int(rng.integers(3))
    if k == 2:
        H = ad.hessian(lambda u: np.sum(np.sin(u) * u))
        return (lambda env: H(np.reshape(env[-1], -1)) @ v,
                lambda env: (2.0 * np.cos(np.reshape(env[-1], -1))
                             - np.reshape(env[-1], -1) * np.sin(np.reshape(env[-1], -1))) * v)
    jac = (ad.jacfwd, ad.jacrev)[k](lambda u: A @ np.sin(u))
    return (lambda env: jac(np.reshape(env[-1], -1)) @ v,
            lambda env: A @ (np.cos(np.reshape(env[-1], -1)) * v))


@seam("inner_custom_jacfwd")
def _inner_custom_jacfwd(rng, shapes, dtype):
    """jacfwd of a matrix-valued custom_jvp, inside the program."""
    n = _size(shapes[-1])
    A = _const(rng, (2, n), dtype)
    f = _matrix_custom_jvp(A)
    J = ad.jacfwd(f)

    def ref(env):
        y = np.reshape(env[-1], -1)
        return np.sum(np.cos(A @ y)[:, None] * A, axis=1)
    return (lambda env: np.sum(J(np.reshape(env[-1], -1)), axis=1)), ref


@seam("copy", refusable=True)
def _copy(rng, shapes, dtype):
    """``copy.copy``/``copy.deepcopy`` of an eager leaf ``Variable`` is a new leaf, as in
    PyTorch (``copy.deepcopy(model)``): its gradient goes to the copy's ``.grad``, not to
    the original. The eager checks skip a program that copies an input leaf that way."""
    k = int(rng.integers(4))
    cp = [copy.copy, copy.deepcopy, np.copy, lambda y: y.copy()][k]

    def fn(env):
        x = env[-1]
        if k < 2 and type(x) is ad.Variable and x.is_leaf:
            _COPIED_LEAF[0] = True      # an eager leaf (an input, or one passed on as is)
        return cp(x) * x
    return fn, (lambda env: env[-1] * env[-1])


_COPIED_LEAF = [False]     # set when a copy block copied an eager leaf (see _copy)


@seam("reduce_axis")
def _reduce_axis(rng, shapes, dtype):
    s = shapes[-1]
    if len(s) == 0:
        return None
    ax = int(rng.integers(-len(s), len(s)))
    keep = bool(rng.integers(2))
    k = int(rng.integers(4))
    red = [np.sum, np.mean, lambda y, **kw: np.max(y, **kw), np.prod][k]
    if k == 2 and s[ax] == 0:
        return None
    return (lambda env: red(env[-1], axis=ax, keepdims=keep),) * 2


# The block that raises inside the backward sweep (the injection check, not drawn).
class _Flag:
    on = False
    raised = False      # the rule did raise (else no cotangent reached it: a constant)


def _raise_once_block(flag):
    @ad.custom_vjp
    def f(x):
        return x * 1.0

    def bwd(_, g):
        if flag.on:
            flag.raised = True
            raise RuntimeError("seam fuzzer: injected failure in a backward sweep")
        return (g * 1.0,)
    f.defvjp(lambda x: (x * 1.0, None), bwd)
    return f


# ---------------------------------------------------------------------------------------
# Programs
# ---------------------------------------------------------------------------------------
SHAPES = [(), (1,), (3,), (2, 3), (1, 1), (0,), (2, 0), (2,), (3, 1)]
STRUCTURES = ["array", "tuple", "dict", "namedtuple", "two_args"]
XW = collections.namedtuple("XW", "x w")
MAX_SIZE = 16


def _pack(structure, leaves):
    """The transform's positional arguments for these leaves."""
    if structure == "array":
        return (leaves[0],)
    if structure == "tuple":
        return ((leaves[0], leaves[1]),)
    if structure == "dict":
        return ({"x": leaves[0], "w": leaves[1]},)
    if structure == "namedtuple":
        return (XW(leaves[0], leaves[1]),)
    return (leaves[0], leaves[1])


def _unpack(structure, args):
    """The leaves from a result with the arguments' structure (checked)."""
    if structure == "array":
        return [args[0]]
    if structure == "two_args":
        if not (isinstance(args, tuple) and len(args) == 2):
            raise _Structure(f"expected a 2-tuple, one per argnum, got {type(args).__name__}")
        return list(args)
    t = args[0]
    want = {"tuple": tuple, "dict": dict, "namedtuple": XW}[structure]
    if type(t) is not want:
        raise _Structure(f"expected a {want.__name__} like the input, got {type(t).__name__}")
    return [t["x"], t["w"]] if structure == "dict" else [t[0], t[1]]


class _Structure(Exception):
    pass


@dataclass
class Step:
    block: Block
    seed: int
    fn: object = field(repr=False, default=None)
    ref: object = field(repr=False, default=None)
    shape: tuple = ()

    def __repr__(self):
        return f"{self.block.name}(seed={self.seed}) -> {self.shape}"


class Program:
    """A program built from a spec (plain ints, as hypothesis draws them):
    ``(structure, leaf shape indices, float32?, zeros?, seed, steps, inject_at)`` with steps
    ``((kind, index, seed), ...)``; kind 0 = a seam block, 1 = a registry block. An index that
    does not apply to the current shapes moves on to the next block that does."""

    def __init__(self, spec):
        self.spec = spec
        structure, shape_ix, f32, zeros, seed, steps, inject_at = spec
        self.structure = STRUCTURES[structure % len(STRUCTURES)]
        self.dtype = np.float32 if f32 else np.float64
        n_leaves = 1 if self.structure == "array" else 2
        shape_ix = (tuple(shape_ix) + (2, 2))[:n_leaves]
        rng = np.random.default_rng(seed)
        self.leaves = []
        for i in shape_ix:
            s = SHAPES[i % len(SHAPES)]
            x = rng.uniform(-1.5, 1.5, s)
            if zeros and x.size:
                x[rng.random(s) < 0.4] = 0.0
            self.leaves.append(x.astype(self.dtype))
        env = [x.copy() for x in self.leaves]
        self.steps = []
        for kind, index, sseed in steps:
            table = SEAM_BLOCKS if kind % 2 == 0 else CASE_BLOCKS
            for k in range(len(table)):
                block = table[(index + k) % len(table)]
                made = _try(block, sseed, env, self.dtype)
                if made is not None:
                    fn, ref, val = made
                    env.append(val)
                    self.steps.append(Step(block, sseed, fn, ref, np.shape(val)))
                    break
        self.inject_at = inject_at % (len(self.steps) + 1)
        self.forward = all(s.block.forward for s in self.steps)
        self.order2 = all(s.block.order2 for s in self.steps)
        self.refusable = any(s.block.refusable for s in self.steps)
        self.plain = all(s.block.plain for s in self.steps)

    def __repr__(self):
        leaves = ", ".join(f"{np.dtype(self.dtype).name}{x.shape}" for x in self.leaves)
        steps = "; ".join(map(repr, self.steps))
        return (f"Program({self.structure}[{leaves}]{' with zeros' if self.spec[3] else ''}: "
                f"{steps or '(identity)'}; spec={self.spec!r})")

    def run(self, leaves, reference=False, inject=None):
        env = list(leaves)
        for i, s in enumerate(self.steps):
            if inject is not None and i == self.inject_at:
                env[-1] = inject(env[-1])
            env.append((s.ref if reference else s.fn)(env))
        if inject is not None and self.inject_at == len(self.steps):
            env[-1] = inject(env[-1])
        return env[-1]

    def env(self, leaves):
        """Every value of the reference program: the leaves, then each step's."""
        env = list(leaves)
        for s in self.steps:
            env.append(s.ref(env))
        return env

    def function(self, inject=None):
        """The program as a user function of the structured arguments."""
        def f(*args):
            return self.run(_unpack(self.structure, args), inject=inject)
        return f


def _try(block, seed, env, dtype):
    """``(fn, ref, value)`` if the block applies to env (its reference runs, finite, small)."""
    rng = np.random.default_rng(seed)
    try:
        made = block.build(rng, [np.shape(v) for v in env], dtype)
        if made is None:
            return None
        fn, ref = made
        with np.errstate(all="ignore"):
            val = ref(env)
        val = np.asarray(val)
    except Exception:
        return None
    if val.dtype.kind != "f" or val.ndim > 3 or val.size > MAX_SIZE:
        return None
    if not np.all(np.isfinite(val)) or (val.size and np.max(np.abs(val)) > 1e3):
        return None
    return fn, ref, val


# ---------------------------------------------------------------------------------------
# Drawing specs
# ---------------------------------------------------------------------------------------
def random_spec(rng, max_steps=6):
    n = int(rng.integers(2, max_steps + 1))
    steps = tuple((int(rng.random() < 0.35), int(rng.integers(1 << 16)),
                   int(rng.integers(1 << 16))) for _ in range(n))
    return (int(rng.integers(len(STRUCTURES))), (int(rng.integers(len(SHAPES))),
            int(rng.integers(len(SHAPES)))), bool(rng.random() < 0.25),
            bool(rng.random() < 0.2), int(rng.integers(1 << 16)), steps,
            int(rng.integers(8)))


def spec_strategy(max_steps=6):
    from hypothesis import strategies as st
    i = st.integers(0, (1 << 16) - 1)
    step = st.tuples(st.integers(0, 2).map(lambda k: int(k == 2)), i, i)
    return st.tuples(st.integers(0, len(STRUCTURES) - 1),
                     st.tuples(st.integers(0, len(SHAPES) - 1), st.integers(0, len(SHAPES) - 1)),
                     st.booleans(), st.booleans(), i,
                     st.lists(step, min_size=2, max_size=max_steps).map(tuple),
                     st.integers(0, 7))


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------
class SeamFailure(AssertionError):
    def __init__(self, kind, program, detail):
        self.kind, self.program, self.detail = kind, program, detail
        super().__init__(f"[{kind}] {detail}\n  {program!r}\n  reproduce: "
                         f"seams.check(seams.Program({program.spec!r}))")


class Refused(Exception):
    pass


def _flat(x):
    return np.ravel(np.asarray(x, dtype=np.float64))


def _tol(dtype):
    return (1e-3, 1e-4) if dtype == np.float32 else (1e-7, 1e-8)


def _close(got, want, rtol, atol):
    got, want = _flat(got), _flat(want)
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    bound = atol + rtol * max(1.0, float(np.max(np.abs(want), initial=0.0)))
    err = float(np.max(np.abs(got - want), initial=0.0))
    if not err <= bound:
        return (f"worst error {err:.3g} > {bound:.3g}; got {np.round(got[:5], 6)}, "
                f"want {np.round(want[:5], 6)}")
    return None


def _fd(fun, x, v, h):
    """Richardson central difference of a function of a flat float64 vector."""
    def c(h):
        return (_flat(fun(x + h * v)) - _flat(fun(x - h * v))) / (2 * h)
    return (4 * c(h / 2) - c(h)) / 3


def _fd_reliable(fun, x, v, tol):
    """The central difference, or None where it cannot be trusted: two step sizes disagree
    (a jump, a branch changed by a step), or the one-sided differences do (a kink at ``x``,
    where the central difference averages two slopes and the derivative is a convention)."""
    try:
        with np.errstate(all="ignore"):
            a, b = _fd(fun, x, v, 1e-3), _fd(fun, x, v, 2.5e-4)
            f0, h = _flat(fun(x)), 1e-5
            fr, fl = _flat(fun(x + h * v)), _flat(fun(x - h * v))
            fr2, fl2 = _flat(fun(x + 2 * h * v)), _flat(fun(x - 2 * h * v))
            if not f0.shape == fr.shape == fl.shape == fr2.shape == fl2.shape == a.shape:
                return None     # a shape that depends on the values (np.unique at a tie)
            # one-sided slopes with one Richardson step (error O(h²)), so that a kink as
            # small as the comparison's tolerance still shows
            right = 2 * (fr - f0) / h - (fr2 - f0) / (2 * h)
            left = 2 * (f0 - fl) / h - (f0 - fl2) / (2 * h)
    except (ValueError, IndexError):    # a shape that depends on the values changed
        return None                     # (np.trim_zeros; a mask sized by np.unique)
    if not all(np.all(np.isfinite(t)) for t in (a, b, right, left)):
        return None
    scale = max(1.0, float(np.max(np.abs(a), initial=0.0)))
    if float(np.max(np.abs(right - left), initial=0.0)) > 1e-7 * scale:
        return None
    # |a - b| estimates a's error; b's (a quarter of the step, O(h⁴)) is 256 times smaller
    return b if float(np.max(np.abs(a - b), initial=0.0)) <= tol * scale else None


def _step_at_kink(prog, rng, tries=2, shape_only=False):
    """The first step whose block, as a function of all the values before it (float64), is
    not differentiable at the program's input: its one-sided differences along a random
    direction disagree, or it jumps (a shape, a branch). None when every block is smooth
    there. ``shape_only``: only a block whose output shape changes nearby (``np.unique``
    of tied values: the program is discontinuous on the ties through this point)."""
    env = [np.asarray(x, dtype=np.float64) for x in prog.leaves]
    with np.errstate(all="ignore"):
        for i, st in enumerate(prog.steps):
            shapes = [np.shape(e) for e in env]
            x = np.concatenate([np.ravel(e) for e in env]) if env else np.zeros(0)

            def fun(vec, shapes=shapes, st=st):
                vals, k = [], 0
                for sh in shapes:
                    m = _size(sh)
                    vals.append(np.reshape(vec[k:k + m], sh))
                    k += m
                return _flat(st.ref(vals))
            try:
                f0 = fun(x)
                for _ in range(tries):
                    d = rng.standard_normal(x.size)
                    for h in (1e-5, 1e-6):
                        if shape_only:
                            if not f0.shape == fun(x + h * d).shape == fun(x - h * d).shape:
                                break
                            continue
                        right, left = (fun(x + h * d) - f0) / h, (f0 - fun(x - h * d)) / h
                        scale = max(1.0, float(np.max(np.abs(right), initial=0.0)))
                        if not (np.all(np.isfinite(right)) and np.all(np.isfinite(left))) or \
                                float(np.max(np.abs(right - left), initial=0.0)) > 1e-3 * scale:
                            break
                    else:
                        continue
                    return i
            except Exception:                                    # noqa: BLE001
                return i       # a shape changed under the step (or the block refused)
            env.append(np.asarray(st.ref(env), dtype=np.float64))
    return None


class _Checker:
    def __init__(self, prog, rng):
        self.p, self.rng = prog, rng
        self.shapes = [x.shape for x in prog.leaves]
        self.sizes = [x.size for x in prog.leaves]
        self.n = sum(self.sizes)
        self.rtol, self.atol = _tol(prog.dtype)
        self.stats = collections.Counter()
        self.keeps_dtype = False
        self._jumps = self._reaches = self._convention = None
        # primal vs NumPy: float64 to rounding; float32 to rounding amplified by the program
        # (an ulp of a rad2deg of 100 is 1e-5)
        self.primal_scale = 1e-2 if prog.dtype == np.float64 else 1.0

    def fail(self, kind, detail):
        raise SeamFailure(kind, self.p, detail)

    def expect(self, kind, got, want, scale=1.0):
        if isinstance(got, Box):
            self.fail(f"{kind}: a tracked value came out",
                      f"got a {type(got).__name__} (a leaked tracer), not an array")
        msg = _close(got, want, self.rtol * scale, self.atol * scale)
        if msg:
            self.fail(kind, msg)

    def same_shape(self, what, got, want):
        """The shape NumPy gives (``expect`` compares flattened values only)."""
        if np.shape(got) != np.shape(want):
            self.fail(f"{what} shape", f"{np.shape(got)} != NumPy's {np.shape(want)}")

    def tangent_reaches_vjp(self):
        """Whether a tangent reaches a reverse-only block: a value it reads changes when the
        inputs do. JAX refuses forward mode through a custom_vjp when a tangent flows in;
        where every value it reads is a constant of the program (computed from zero-size
        arrays, say), no direction reaches it and a derivative (0) is as right."""
        if self._reaches is None:
            p = self.p
            self._reaches = False
            if self.n:
                x = self.join(p.leaves)
                with np.errstate(all="ignore"):
                    e0 = p.env(self.split(x, np.float64))
                    e1 = p.env(self.split(x + 0.1 * self.rng.standard_normal(self.n),
                                          np.float64))
                for i, st in enumerate(p.steps):
                    if st.block.forward:
                        continue
                    reads = getattr(st.fn, "reads", None)
                    k = len(p.leaves) + i
                    if reads is None or any(
                            not np.array_equal(e0[r % k], e1[r % k]) for r in reads):
                        self._reaches = True
                        break
        return self._reaches

    def fd_agrees(self, got, fd):
        """False where ``got`` misses the central difference ``fd`` because a block's output
        shape depends on the values there (ties merged by ``np.unique``): the program
        jumps on the ties through this point, so no derivative exists. Only looked at
        (once) when they differ."""
        if _close(got, fd, self.rtol * 10, self.atol * 10) is None:
            return True
        if self._jumps is None:
            self._jumps = _step_at_kink(self.p, self.rng, shape_only=True) is not None
        if self._jumps:
            self.stats["value-dependent shape"] += 1
            return False
        if self._convention is None:
            self._convention = self.first_order_convention_point()
        if self._convention:
            self.stats["block at a kink (first order)"] += 1
        return not self._convention

    def first_order_convention_point(self, tries=2):
        """Whether a first derivative that misses the central difference is a block's
        convention at a point where that block is not differentiable in its own inputs,
        while the program happens to be smooth along the direction: ``max(x) + min(x)`` at a
        tie is linear along every line, but not differentiable, and the chain rule gives
        the convention's value (tied maxima share), as JAX and PyTorch do. Only where a
        step is at a kink, and a step away from the point the reverse derivative agrees
        with the central difference again: a rule wrong on a neighbourhood is reported."""
        p = self.p
        if not self.n or _step_at_kink(p, self.rng) is None:
            return False
        x, f = self.join(p.leaves), p.function()
        ref64 = lambda vec: p.run(self.split(vec, np.float64), reference=True)  # noqa: E731
        for _ in range(tries):
            y = x + 1e-3 * self.rng.standard_normal(self.n)
            v = self.rng.standard_normal(self.n)
            try:
                fd = _fd_reliable(ref64, y, v, 1e-6)
                if fd is None:
                    return False
                out, pull = ad.vjp(f, *self.args(self.split(y, p.dtype)))
                out = np.asarray(out)
                u = self.rng.standard_normal(out.shape).astype(out.dtype)
                cts = pull(u)
                jtu = self.join(self.leaves_of(cts if p.structure == "two_args" else cts[0]))
            except Exception:                                    # noqa: BLE001
                return False
            if _close(jtu @ v, _flat(u) @ fd, self.rtol * 10, self.atol * 10):
                return False
        return True

    def split(self, vec, dtype):
        out, k = [], 0
        for s, n in zip(self.shapes, self.sizes):
            out.append(np.reshape(vec[k:k + n], s).astype(dtype))
            k += n
        return out

    def join(self, leaves):
        return np.concatenate([_flat(x) for x in leaves]) if leaves else np.zeros(0)

    def args(self, leaves=None):
        return _pack(self.p.structure, self.p.leaves if leaves is None else leaves)

    def call(self, what, thunk, refuse=True):
        """Run a transform; an unexpected exception is a failure, a refusal by a refusable
        block or by forward mode through a custom_vjp is reported as ``Refused``."""
        try:
            return thunk()
        except SeamFailure:
            raise
        except _Structure as e:
            self.fail(f"{what}: structure", str(e))
        except Exception as e:                                   # noqa: BLE001
            msg = str(e).split("\n")[0]
            if (not self.p.forward and what.startswith("fwd") and isinstance(e, TypeError)
                    and "custom_vjp" in msg):
                raise Refused(what)
            if refuse and self.p.refusable and isinstance(e, (TypeError, NotImplementedError,
                                                   ValueError)) and len(msg) > 20:
                raise Refused(what)
            if refuse and (isinstance(e, NotImplementedError) and msg.startswith("autodiff")
                           or isinstance(e, np.linalg.LinAlgError) and "no derivative" in msg):
                raise Refused(what)      # the engine refusing by name: allowed, never wrong
            self.fail(f"{what}: {type(e).__name__}", f"{msg[:300]}")

    def leaves_of(self, r):
        return _unpack(self.p.structure, r if self.p.structure == "two_args" else (r,))

    def matrix(self, r, m, what="jacobian"):
        """A Jacobian with the arguments' structure as one (m, n) float64 matrix."""
        blocks = self.leaves_of(r)
        if self.keeps_dtype and any(np.asarray(b).dtype != self.p.dtype for b in blocks):
            self.fail(f"{what} dtype", f"{[np.asarray(b).dtype.name for b in blocks]}, inputs "
                                       f"{np.dtype(self.p.dtype).name}")
        return np.concatenate([np.reshape(np.asarray(b, dtype=np.float64), (m, n))
                               for b, n in zip(blocks, self.sizes)], axis=1)

    def run(self):
        p = self.p
        f = p.function()
        x64 = self.join(p.leaves)
        ref64 = lambda vec: p.run(self.split(vec, np.float64), reference=True)  # noqa: E731
        with np.errstate(all="ignore"):
            want = p.run([x.copy() for x in p.leaves], reference=True)
        want = np.asarray(want)
        m = want.size
        same_dtype = want.dtype == p.dtype   # the program keeps the inputs' precision
        self.keeps_dtype = same_dtype
        if p.dtype == np.float32:
            # Two float32 evaluations of one program agree only as well as float32 itself
            # computes it: widen the primal tolerance to the float32 reference's own error
            # against float64 where the program amplifies rounding that much.
            try:
                with np.errstate(all="ignore"):
                    exact = np.asarray(ref64(x64), dtype=np.float64)
            except (ValueError, IndexError):    # a shape decided otherwise in float64
                exact = np.zeros(0)
            if exact.shape == want.shape and np.all(np.isfinite(exact)):
                err = float(np.max(np.abs(want - exact), initial=0.0))
                bound = self.rtol * self.primal_scale * max(
                    1.0, float(np.max(np.abs(want), initial=0.0)))
                if err > bound / 4:
                    self.primal_scale *= 4 * err / bound
        # ---- primal ----
        if p.plain:
            got = self.call("primal", lambda: f(*self.args()), refuse=False)
            self.expect("primal vs NumPy", got, want, self.primal_scale)
            self.same_shape("primal", got, want)
            if np.asarray(got).dtype != want.dtype:
                self.fail("primal dtype", f"{np.asarray(got).dtype} != NumPy's {want.dtype}")
        v = self.rng.standard_normal(self.n)
        u = self.rng.standard_normal(m)
        v_tree = self.args(self.split(v, p.dtype))
        fd = _fd_reliable(ref64, x64, v, 1e-6)
        if fd is not None and fd.size != m:
            # the float64 reference has another shape: a value-dependent shape decided
            # differently in the inputs' precision (values equal in float32 only)
            self.stats["value-dependent shape"] += 1
            fd = None
        if fd is None:
            self.stats["fd-unreliable"] += 1
        # ---- jvp ----
        jv = None
        try:
            out, jv = self.call("fwd jvp", lambda: ad.jvp(f, self.args(), v_tree))
            if not p.forward and self.tangent_reaches_vjp():
                self.fail("custom_vjp under forward mode", "jvp did not refuse")
            self.expect("jvp primal vs NumPy", out, want, self.primal_scale)
            self.same_shape("jvp primal", out, want)
            if fd is not None and self.fd_agrees(jv, fd):
                self.expect("jvp vs central difference", jv, fd, 10)
            if same_dtype and np.asarray(jv).dtype != p.dtype:
                self.fail("jvp dtype", f"tangent {np.asarray(jv).dtype}, inputs {p.dtype}")
        except Refused:
            self.stats["refused"] += 1
        # ---- vjp ----
        jtu = None
        try:
            out, pull = self.call("rev vjp", lambda: ad.vjp(f, *self.args()))
            self.expect("vjp primal vs NumPy", out, want, self.primal_scale)
            self.same_shape("vjp primal", out, want)
            cts = self.call("rev vjp pullback",
                            lambda: pull(np.reshape(u, want.shape).astype(want.dtype)))
            leaves = self.leaves_of(cts if p.structure == "two_args" else cts[0])
            if same_dtype and any(np.asarray(c).dtype != p.dtype for c in leaves):
                self.fail("vjp dtype", f"{[np.asarray(c).dtype.name for c in leaves]}, "
                                       f"inputs {p.dtype}")
            jtu = self.join(leaves)
            if fd is not None and self.fd_agrees(jtu @ v, u @ fd):
                self.expect("vjp vs central difference <u, Jv>", jtu @ v, u @ fd, 10)
            if jv is not None:
                self.expect("dot-product identity <u, Jv> = <Jᵀu, v>", jtu @ v, u @ _flat(jv))
        except Refused:
            self.stats["refused"] += 1
        # ---- Jacobians ----
        argnums = (0, 1) if p.structure == "two_args" else 0
        Jf = Jr = None
        try:
            Jf = self.matrix(self.call("fwd jacfwd",
                                       lambda: ad.jacfwd(f, argnums)(*self.args())), m, "jacfwd")
            if not p.forward and self.tangent_reaches_vjp():
                self.fail("custom_vjp under forward mode", "jacfwd did not refuse")
            if jv is not None:
                self.expect("jacfwd vs jvp (J v)", Jf @ v, jv)
        except Refused:
            self.stats["refused"] += 1
        try:
            Jr = self.matrix(self.call("rev jacrev",
                                       lambda: ad.jacrev(f, argnums)(*self.args())), m, "jacrev")
            if jtu is not None:
                self.expect("jacrev vs vjp (uᵀJ)", u @ Jr, jtu)
            if fd is not None and self.fd_agrees(Jr @ v, fd):
                self.expect("jacrev vs central difference", Jr @ v, fd, 10)
        except Refused:
            self.stats["refused"] += 1
        if Jf is not None and Jr is not None:
            self.expect("jacfwd vs jacrev", Jf, Jr)
        # ---- second order, through G = Σ w·sin(out) ----
        w = self.rng.standard_normal(want.shape).astype(want.dtype)

        def G(*a):
            return np.sum(np.sin(f(*a)) * w)
        if p.order2 and self.n <= 8:
            self.second_order(G, argnums, v, v_tree)
        # ---- an exception inside a backward sweep, then clean sweeps ----
        if jtu is not None and np.any(jtu != 0):   # else a sweep may rightly skip the rule
            self.injection(u, jtu, want)
        if jv is not None and np.any(_flat(jv) != 0):
            self.forward_injection(v_tree, jv)
        return self.stats

    def second_order(self, G, argnums, v, v_tree):
        p, n = self.p, self.n
        self._hv_direction = v
        try:
            g = self.call("rev grad", lambda: ad.grad(G, argnums)(*self.args()))
            g = self.join(self.leaves_of(g))
        except Refused:
            self.stats["refused"] += 1
            return

        def grad64(vec):
            return self.join(self.leaves_of(ad.grad(G, argnums)(*self.args(
                self.split(vec, p.dtype)))))
        if p.dtype == np.float64:
            try:
                fdg = _fd_reliable(grad64, self.join(p.leaves), v, 1e-6)
            except Exception:                                    # noqa: BLE001
                fdg = None
        else:
            fdg = None       # float32: second differences are noise; AD vs AD only
        kink = []

        def against_fd(kind, Hv, transform):
            """Hv against the central difference of grad along v, unless a step's block sits
            at a point where it is not differentiable in its own inputs (a tie of max, a
            norm or std of a vanishing vector, abs at 0). The program may still be smooth
            there (min(1 + x², 1 + y²) at 0, std(x²·c) at 0) but its second derivative
            needs the limit of the block's gradient along the path, which a local rule at
            that point does not know: the engine's value is the convention's (ties share,
            abs'(0) = 0), as JAX's is. First derivatives are still checked there."""
            if fdg is None:
                return
            if _close(Hv, fdg, self.rtol * 100, self.atol * 100) and not kink:
                kink.append(_step_at_kink(p, self.rng))
            if kink and kink[0] is not None:
                self.stats["block at a kink"] += 1
                return
            if _close(Hv, fdg, self.rtol * 100, self.atol * 100) and \
                    self.inner_convention_point(lambda vec: hv_at(vec, transform), grad64):
                self.stats["inner primitive at its convention point"] += 1
                return
            self.expect(kind, Hv, fdg, 100)

        def hv_at(vec, transform):
            return square(transform(*self.args(self.split(vec, p.dtype))), "nearby") @ v

        def square(r, what):
            rows = self.leaves_of(r)
            return np.concatenate([self.matrix(row, int(np.prod(s, dtype=int)), what)
                                   for row, s in zip(rows, self.shapes)], axis=0) \
                if n else np.zeros((0, 0))
        Hrr = Hf = None
        try:
            Hrr = square(self.call("rev jacrev(grad)",
                                   lambda: ad.jacrev(ad.grad(G, argnums), argnums)(*self.args())),
                         "jacrev(grad)")
            self.expect("jacrev(grad) symmetric", Hrr, Hrr.T, 10)
            against_fd("jacrev(grad) vs central difference of grad", Hrr @ v,
                       ad.jacrev(ad.grad(G, argnums), argnums))
        except Refused:
            self.stats["refused"] += 1
        try:
            H = square(self.call("fwd hessian", lambda: ad.hessian(G, argnums)(*self.args())),
                       "hessian")
            if not p.forward and self.tangent_reaches_vjp():
                self.fail("custom_vjp under forward mode", "hessian did not refuse")
            Hf = H
            self.expect("hessian symmetric", H, H.T, 10)
            against_fd("hessian vs central difference of grad", H @ v, ad.hessian(G, argnums))
            _, hv = self.call("fwd jvp(grad)",
                              lambda: ad.jvp(ad.grad(G, argnums), self.args(), v_tree))
            self.expect("jvp(grad) vs hessian·v", self.join(self.leaves_of(hv)), H @ v, 10)
            if p.structure == "array":
                Hfr = self.call("fwd jacfwd(grad)",
                                lambda: ad.jacfwd(ad.grad(G))(*self.args()))
                self.expect("jacfwd(grad) vs hessian", square(Hfr, "jacfwd(grad)"), H, 10)
        except Refused:
            self.stats["refused"] += 1
        if Hrr is not None and Hf is not None:
            self.expect("hessian vs jacrev(grad)", Hf, Hrr, 10)
        self.stats["order2"] += 1

    def inner_convention_point(self, hv_at, grad64, tries=2):
        """Whether a second derivative that disagrees with the central difference is an inner
        primitive's convention at a point of measure zero (abs at 0 inside |z|², a smooth
        composite): the chain rule then gives the convention's value (abs'(0) = 0, as in JAX
        and PyTorch), no local rule can know the limit, and a step away from the point the
        engine agrees with the central difference again. A defect that is wrong on a whole
        neighbourhood is still reported."""
        x = self.join(self.p.leaves)
        v = self._hv_direction
        for _ in range(tries):
            y = x + 1e-3 * self.rng.standard_normal(x.size)
            try:
                fdg = _fd_reliable(grad64, y, v, 1e-6)
                if fdg is None or _close(hv_at(y), fdg, self.rtol * 100, self.atol * 100):
                    return False
            except Exception:                                    # noqa: BLE001
                return False
        return True

    def forward_injection(self, v_tree, jv):
        """A custom_jvp rule raising inside a forward sweep, then a clean jvp."""
        flag = _Flag()

        @ad.custom_jvp
        def ident(x):
            return ad.stop_gradient(x) * 1.0

        @ident.defjvp
        def ident_jvp(primals, tangents):
            if flag.on:
                raise RuntimeError("seam fuzzer: injected failure in a forward sweep")
            return primals[0] * 1.0, tangents[0] * 1.0
        def inject(x):
            # (a constant there, e.g. after np.resize of an empty input, rightly calls no
            # rule: the output's tangent then comes from elsewhere, and nothing can raise)
            flag.tracked = flag.tracked or any(isinstance(v, ad.Dual)
                                               for v in ad.tree.flatten(x)[0])
            return ident(x)
        flag.tracked = False
        fi = self.p.function(inject=inject)
        flag.on = True
        try:
            ad.jvp(fi, self.args(), v_tree)
            if not flag.tracked:
                flag.on = False
                return
            self.fail("injected exception (forward)", "the jvp did not raise (swallowed?)")
        except RuntimeError as e:
            if "injected" not in str(e):
                self.fail("injected exception (forward)", f"another error came out: {e}")
        except SeamFailure:
            raise
        except Exception as e:                                   # noqa: BLE001
            self.fail("injected exception (forward)",
                      f"{type(e).__name__} instead of the RuntimeError: {str(e)[:200]}")
        flag.on = False
        _, jv2 = self.call("jvp after a failed forward sweep",
                           lambda: ad.jvp(fi, self.args(), v_tree))
        self.expect("jvp after a failed forward sweep", jv2, jv)

    def injection(self, u, jtu, want):
        p = self.p
        flag = _Flag()
        fi = p.function(inject=_raise_once_block(flag))
        uu = np.reshape(u, want.shape).astype(want.dtype)
        flag.on = True
        try:
            _, pull = ad.vjp(fi, *self.args())
            pull(uu)
            if not flag.raised:     # no cotangent reached it (a constant, an empty value);
                self.stats["injection not reached"] += 1    # the sweep's numbers are checked
                return
            self.fail("injected exception", "the backward sweep did not raise (swallowed?)")
        except RuntimeError as e:
            if "injected" not in str(e):
                self.fail("injected exception", f"another error came out: {e}")
        except SeamFailure:
            raise
        except Exception as e:                                   # noqa: BLE001
            self.fail("injected exception", f"{type(e).__name__} instead of the RuntimeError: "
                                            f"{str(e)[:200]}")
        flag.on = False
        cts = self.call("vjp after a failed sweep", lambda: ad.vjp(fi, *self.args())[1](uu))
        self.expect("vjp after a failed sweep",
                    self.join(self.leaves_of(cts if p.structure == "two_args" else cts[0])), jtu)
        # eager Variables: a failed backward, then the retained graph, then fresh Variables
        flag.on = True
        xs = [ad.Variable(x.copy()) for x in p.leaves]
        _COPIED_LEAF[0] = False
        try:
            loss = np.sum(fi(*self.args(xs)) * uu)
            if _COPIED_LEAF[0]:
                self.stats["eager leaf copied"] += 1     # the copy is a new leaf (see _copy)
                return
        except Exception as e:                                   # noqa: BLE001
            if p.refusable:
                self.stats["refused"] += 1
                return
            self.fail(f"eager forward: {type(e).__name__}", str(e)[:300])
        if not isinstance(loss, ad.Variable):
            return
        try:
            loss.backward(retain_graph=True)
            self.fail("injected exception (eager)", "backward did not raise")
        except RuntimeError:
            pass
        bad = [x.grad for x in xs if x.grad is not None and np.any(np.asarray(x.grad) != 0)]
        if bad:
            self.fail("eager .grad after a failed backward",
                      f"a failed backward left partial gradients {_flat(bad[0])[:4]}")
        for x in xs:
            x.grad = None
        flag.on = False
        try:
            loss.backward()
        except Exception as e:                                   # noqa: BLE001
            self.fail(f"eager backward after a failed one: {type(e).__name__}", str(e)[:300])
        self.expect("eager .grad after a failed then a clean backward",
                    self.join([np.zeros(x.value.shape) if x.grad is None else x.grad
                               for x in xs]), jtu)
        xs = [ad.Variable(x.copy()) for x in p.leaves]
        loss = np.sum(fi(*self.args(xs)) * uu)
        loss.backward()
        self.expect("eager .grad on fresh Variables after a failed backward",
                    self.join([np.zeros(x.value.shape) if x.grad is None else x.grad
                               for x in xs]), jtu)


def shrink(spec, kind, budget=200):
    """A smaller spec failing with the same ``kind``: steps dropped, plain array input,
    float64, no zeros, smaller shapes (greedy, at most ``budget`` checks)."""
    def fails(s):
        nonlocal budget
        budget -= 1
        try:
            check(s)
        except SeamFailure as e:
            return e.kind == kind
        except Exception:                                        # noqa: BLE001
            return False
        return False

    def variants(s):
        structure, shapes, f32, zeros, seed, steps, inj = s
        for i in range(len(steps)):
            yield (structure, shapes, f32, zeros, seed, steps[:i] + steps[i + 1:], inj)
        if structure:
            yield (0, shapes, f32, zeros, seed, steps, inj)
        if f32:
            yield (structure, shapes, False, zeros, seed, steps, inj)
        if zeros:
            yield (structure, shapes, f32, False, seed, steps, inj)
        for k in range(2):
            for smaller in range(shapes[k]):
                sh = list(shapes)
                sh[k] = smaller
                yield (structure, tuple(sh), f32, zeros, seed, steps, inj)
        if inj:
            yield (structure, shapes, f32, zeros, seed, steps, 0)

    better = True
    while better and budget > 0:
        better = False
        for cand in variants(spec):
            if budget <= 0:
                break
            if fails(cand):
                spec, better = cand, True
                break
    return spec


def program_through(block, rng, seed, max_steps=3, tries=50):
    """A random program with ``block`` (registered) as one of its steps: drawn from ``rng``
    until the block applies to the shapes before it (the tests of a feature's blocks)."""
    index = SEAM_BLOCKS.index(block)
    for _ in range(tries):
        structure, shapes, f32, zeros, pseed, steps, inject = random_spec(rng, max_steps)
        at = int(rng.integers(len(steps)))      # the block among the others
        steps = steps[:at] + ((0, index, seed),) + steps[at + 1:]
        program = Program((structure, shapes, f32, zeros, pseed, steps, inject))
        if any(s.block is block for s in program.steps):
            return program
    raise AssertionError(f"no program drawn took the block {block.name}")


def check(program, seed=0):
    """Run every check on ``program`` (a Program or a spec); raises ``SeamFailure``."""
    if not isinstance(program, Program):
        program = Program(program)
    with np.errstate(all="ignore"):
        return _Checker(program, np.random.default_rng(seed)).run()


# The fused primitives' and the newer entry points' blocks (after everything they import),
# those of the solvers and of the later NumPy and nn features.
import seams_fused  # noqa: E402,F401
import seams_solvers  # noqa: E402,F401
import seams_numpy  # noqa: E402,F401

if __name__ == "__main__":          # python tests/seams.py "<spec>": rerun one reproducer
    import ast

    import seams                    # the module the blocks registered into (not __main__)
    print(seams.check(seams.Program(ast.literal_eval(sys.argv[1]))))
