"""Implicit functions: the derivative of a solver's result from the equation it solves.

If ``x*(θ)`` solves ``F(x, θ) = 0`` and ``A = ∂F/∂x`` is invertible there, the implicit function
theorem gives, without differentiating the solver's iterations,

    forward:  ẋ = -A⁻¹ (∂F/∂θ · θ̇)          reverse:  θ̄ = -(∂F/∂θ)ᵀ A⁻ᵀ x̄

``custom_root(F)`` decorates ``solver(x0, *params)`` with these rules (``custom_fixed_point(T)``
uses ``F = T(x) - x``). Two primitives carry them:

- the *root*: its implementation is the solver (run once, on plain values), its rules are the
  two formulas above, built from the engine's ``jvp``/``vjp`` of ``F``;
- the *tangent solve* ``y = A⁻¹ r`` (or ``A⁻ᵀ r``) at ``(x*, θ)``: its implementation is a
  dense LU, a Krylov solve (GMRES on ``jvp``/``vjp`` of ``F``: matrix-free) or a sparse LU;
  its rules are those of a linear solve, ``dy = A⁻¹(dr - dA·y)``, where ``dA·y`` is the
  derivative of ``(x, θ) ↦ ∂F/∂x·y``: a second derivative of ``F``, by the engine.

Both rules call the tangent solve again, so every order of derivative is one more linear solve
with the same matrix (factorised once per call) and never another run of the solver. In the
common first-order case (nothing tracked by an outer transform, a dense system) ``∂F/∂x``
and ``∂F/∂θ`` come from one sweep of ``F`` together; for a scalar unknown that sweep records
``F`` on the scalar itself and the tangent solve is a division, and an ``F`` given as an
``ad.jit`` function has the sweep recorded once per signature and replayed. ``x0``
gets no derivative (JAX's semantics). A tangent system that cannot be solved (a singular
``∂F/∂x``, a Krylov solve that does not converge) raises instead of returning a number.
"""
import functools
import importlib
import math
import sys
import weakref

import numpy as np

from .api import _level, _one, _pull, _push
from .boxes import unbox
from .core import NO_KW, Primitive, bind, box_types, live_levels, ndim_of, shape_of
from .reverse import Variable, backward_pass, origin
from .tree import flatten, leaf_tuple, unflatten

__all__ = ["custom_root", "custom_fixed_point", "DENSE_MAX"]

#: ``solve="auto"`` factorises ``∂F/∂x`` densely up to this many unknowns, above it GMRES.
DENSE_MAX = 200
#: The dense reverse rule keeps ``(∂F/∂θ)ᵀ`` of all n basis cotangents (n × size of θ
#: numbers) and contracts them with ``A⁻ᵀx̄`` up to this many; above, it sweeps once more.
CONTRACT_MAX = 1 << 22

_SOLVES = ("auto", "dense", "krylov", "sparse")
#: ``solve="auto"`` above ``DENSE_MAX``: more than ``BATCH_DIRECT`` right-hand sides at once
#: (a Jacobian) are solved by one LU of ``∂F/∂x``, formed by a batched sweep, up to
#: ``DIRECT_MAX`` unknowns, instead of one GMRES solve each.
BATCH_DIRECT, DIRECT_MAX = 8, 2000


# ----- batched jvp / vjp of a flat function, on values tracked or not -----
def _lead(t, x):
    s = shape_of(t)
    return tuple(s[:len(s) - ndim_of(x)])


def _push_flat(fun, prims, tans):
    """``∂fun(*prims)·tans`` (``None`` tangents are zero; any leading batch axes, the same on
    every tangent); ``None`` when no tangent reaches the output. ``fun`` returns one array."""
    idx = [i for i, t in enumerate(tans) if t is not None]
    if not idx:
        return None
    lead = _lead(tans[idx[0]], prims[idx[0]])
    nb = math.prod(lead)
    if lead and nb == 0:
        return None
    ts = [tans[i] if not lead else np.reshape(tans[i], (nb,) + shape_of(prims[i])) for i in idx]

    def f(*sub):
        full = list(prims)
        for i, s in zip(idx, sub):
            full[i] = s
        return fun(*full)

    values, t_out, _, _ = _push(f, None, [prims[i] for i in idx], lambda ls: ls, ts,
                                batched=1 if lead else 0, transform="custom_root")
    t = t_out[0]
    if t is None or not lead:
        return t
    return np.reshape(t, lead + shape_of(values[0]))


def _pull_flat(fun, prims, ct, out_ndim):
    """The cotangents of every one of ``prims`` for the output cotangent ``ct`` (which may
    carry leading batch axes before the output's ``out_ndim`` axes)."""
    s = shape_of(ct)
    lead = tuple(s[:len(s) - out_ndim])
    nb = math.prod(lead)
    if lead and nb == 0:
        return [np.zeros(lead + shape_of(p)) for p in prims]
    _, _, values, sweep = _pull(fun, None, list(prims), lambda ls: ls, transform="custom_root")
    if not lead:
        return sweep([ct])
    out = sweep([np.reshape(ct, (nb,) + shape_of(values[0]))], nb=1)
    return [np.reshape(g, lead + shape_of(p)) for g, p in zip(out, prims)]


# ----- one call: how the flat vector z maps to x, and the params to their leaves -----
_FLAT = {}


def _flat_params(k):
    """The treedef of ``(args, kwargs)`` for ``k`` positional leaves and no keywords."""
    d = _FLAT.get(k)
    if d is None:
        d = _FLAT[k] = flatten((tuple(range(k)), {}))[1]
    return d


class _Spec:
    """One call of a decorated solver: the flat layout of ``x``, the params split into the
    tracked leaves (the primitives' arguments) and everything else (kept here), the
    residual as a function of flat vectors, and the tangent system's factorisation."""

    def __init__(self, owner, x0, args, kwargs, leaves, ptree):
        self.owner = owner
        self.x0 = x0
        self.ptree = ptree
        self.tracked = [i for i, v in enumerate(leaves) if type(v) in box_types]
        self.leaves = [None if type(v) in box_types else v for v in leaves]
        self.flat = ptree == _flat_params(len(leaves))      # (args of leaves, no kwargs)
        self.aux = None
        self.cache = None           # (z, leaves, factorisation): one point per call

    @classmethod
    def scalar(cls, owner, x, args):
        """The spec of the scalar lane: the float root ``x`` of ``F(x, *args)``, ``args`` a
        tuple of leaves (``_Implicit.solved``); ``x0`` holds the root."""
        self = cls(owner, x, args, {}, args, _flat_params(len(args)))
        self._float_layout()
        return self

    def _float_layout(self):
        self.xtree, self.xshapes, self.sizes, self.n = (), [()], [1], 1
        self.dtype, self.casts = np.dtype(np.float64), None

    # params
    def params(self, dleaves):
        leaves = list(self.leaves)
        for i, v in zip(self.tracked, dleaves):
            leaves[i] = v
        if self.flat:
            return tuple(leaves), {}
        return unflatten(self.ptree, leaves)

    # x
    def record(self, x):
        """Lay out the solver's result ``x`` and return it as a flat vector."""
        if type(x) is float:            # a scalar solver's root (SciPy's brentq family)
            self._float_layout()
            return np.array([x])
        leaves, self.xtree = flatten(x)
        name = self.owner.name
        if not leaves:
            raise TypeError(f"{name}: the solver returned {x!r}, which holds no array")
        for v in leaves:
            if type(v) in box_types:
                raise TypeError(
                    f"{name}: the solver returned a tracked value although it was run on "
                    "plain values: it closes over a value tracked by an enclosing transform. "
                    "Pass that value as one of the params instead.")
            kind = np.result_type(v).kind
            if kind == "c":
                raise NotImplementedError(
                    f"{name}: a complex solution is not supported; solve for its real and "
                    "imaginary parts as a real vector.")
            if kind != "f":
                raise TypeError(f"{name}: the solver returned a {np.result_type(v)} leaf; the "
                                "solution must be floating point to be differentiated")
        self.xshapes = [shape_of(v) for v in leaves]
        self.sizes = [math.prod(s) for s in self.xshapes]
        self.n = sum(self.sizes)
        dtypes = [np.result_type(v) for v in leaves]
        self.dtype = np.result_type(*dtypes)
        # leaves of a narrower dtype than the flat vector's get theirs back (float32 stays)
        self.casts = None if all(d == self.dtype for d in dtypes) else dtypes
        return np.concatenate([np.ravel(np.asarray(v, dtype=self.dtype)) for v in leaves])

    def unpack(self, z):
        """``x``'s pytree from the flat ``z`` (slices and reshapes: differentiable)."""
        if len(self.xshapes) == 1:
            s = self.xshapes[0]
            x = z[0] if s == () else np.reshape(z, s)
            return x if self.xtree == () else unflatten(self.xtree, [x])
        out, k = [], 0
        for s, m in zip(self.xshapes, self.sizes):
            out.append(z[k] if s == () else np.reshape(z[k:k + m], s))
            k += m
        if self.casts is not None:
            out = [v if d == self.dtype else v.astype(d) for v, d in zip(out, self.casts)]
        return unflatten(self.xtree, out)

    def Fz(self, z, dleaves):
        """The residual as a flat vector of ``n`` entries, of the flat ``z``."""
        args, kwargs = self.params(dleaves)
        out = self.owner.residual(self.unpack(z), args, kwargs)
        leaves = flatten(out)[0]
        _check_closure(self.owner, leaves, (z, *dleaves))
        flat = [np.reshape(v, (-1,)) for v in leaves]
        r = flat[0] if len(flat) == 1 else np.concatenate(flat)
        if shape_of(r) != (self.n,):
            raise ValueError(
                f"{self.owner.name}: the residual has {shape_of(r)[0] if ndim_of(r) else 1} "
                f"entries for a solution of {self.n}: F(x, *params) must return as many "
                "numbers as x holds (a square system).")
        return r


# ----- F closing over a tracked value -----
# Only the params are the primitive's inputs, so no rule sees x's dependence on a value
# tracked by a transform that F closes over: its derivative would be silently wrong. F's
# value (not its tangent) depends on the levels of what it was given; one more is a closure.
def _levels(values):
    out = set()
    for v in values:
        while type(v) in box_types:
            out.add(v.level)
            v = v.value
    return out


def _check_closure(owner, leaves, inputs):
    """Raise when F's result ``leaves`` depend on a tracked value other than ``inputs``
    (what F was given)."""
    seen = _levels(leaves)
    if seen and not seen <= _levels(inputs):
        f = "T" if getattr(owner, "kind", "") == "custom_fixed_point" else "F"
        raise TypeError(
            f"{owner.name}: {f}(x, *params) depends on a value tracked by an enclosing "
            f"transform that is not one of the params ({f} closes over it), so the derivative "
            "of the solution with respect to it would be lost. Pass that value to the "
            "solver as one of the params instead.")


# ----- the tangent system A y = r, A = ∂F/∂x at the solution -----
def _jac_dense(spec, z, dleaves):
    """``∂F/∂x`` as an ``n × n`` array, from one batched forward sweep."""
    n = spec.n
    T = _push_flat(lambda z_: spec.Fz(z_, dleaves), [z], [np.eye(n, dtype=z.dtype)])
    return np.zeros((n, n)) if T is None else np.asarray(T, dtype=np.float64).T


class _DenseLU:
    """LU of the dense ``∂F/∂x`` (LAPACK's getrf; getrs solves with it or its transpose)."""

    def __init__(self, spec, A):
        from scipy.linalg import lapack
        self.lapack = lapack
        A = np.asarray(A, dtype=np.float64)
        anorm = float(np.abs(A).sum(axis=0).max()) if A.size else 0.0
        if not np.isfinite(anorm):
            raise np.linalg.LinAlgError(
                f"{spec.owner.name}: ∂F/∂x at the solution holds non-finite values; the "
                "implicit function theorem gives no derivative there.")
        self.scalar = A.shape == (1, 1)
        if self.scalar:             # rcond of a nonzero 1 × 1 matrix is 1: no LAPACK calls
            self.a = A[0, 0]
            rcond = 1.0 if self.a != 0 else 0.0
        else:
            self.lu, self.piv, info = lapack.dgetrf(A)
            rcond = lapack.dgecon(self.lu, anorm, norm="1")[0] if info == 0 and anorm > 0 \
                else 0.0
        if not rcond > 10 * np.finfo(float).eps:
            raise np.linalg.LinAlgError(
                f"{spec.owner.name}: ∂F/∂x is singular at the solution (reciprocal condition "
                f"number {rcond:.2e}): the root is not isolated, so the implicit function "
                "theorem gives no derivative. Check that F has an isolated root in x there "
                "(for a fixed point: that ∂T/∂x has no eigenvalue 1).")

    def __call__(self, R, transpose):
        if self.scalar:
            return R / self.a
        Y, info = self.lapack.dgetrs(self.lu, self.piv, R.T, trans=1 if transpose else 0)
        return Y.T


class _SparseLU:
    def __init__(self, spec, z, dleaves):
        from scipy.sparse.linalg import splu
        sparse_jacobian = getattr(importlib.import_module(__package__), "sparse_jacobian", None)
        if sparse_jacobian is None:
            raise NotImplementedError(
                f"{spec.owner.name}: solve='sparse' needs ad.sparse_jacobian, which this "
                "build lacks; use solve='krylov' (matrix-free) or solve='dense'.")
        A = sparse_jacobian(lambda z_: spec.Fz(z_, dleaves))(z)
        try:
            self.lu = splu(A.tocsc().astype(np.float64))
        except RuntimeError as e:
            raise np.linalg.LinAlgError(f"{spec.owner.name}: ∂F/∂x is singular at the solution "
                                        f"({e}); the implicit function theorem gives no "
                                        "derivative there.") from None

    def __call__(self, R, transpose):
        return self.lu.solve(np.ascontiguousarray(R.T), trans="T" if transpose else "N").T


class _Krylov:
    """GMRES on the operator ``v ↦ ∂F/∂x·v`` (a JVP) or its transpose (a VJP): ``∂F/∂x`` is
    never formed. ``solve`` may be a callable ``solve(op, b) -> y`` instead, given the same
    ``scipy.sparse.linalg.LinearOperator`` (``op`` is ``Aᵀ`` for the transposed system)."""

    def __init__(self, spec, z, dleaves, solve):
        from .api import linear_operator
        self.spec, self.z, self.dleaves, self.direct = spec, z, dleaves, None
        self.op = linear_operator(lambda z_: spec.Fz(z_, dleaves), z)
        self.solve = solve
        self.nonzero = False            # ∂F/∂x seen to be nonzero
        # an operator evaluated in float32 cannot meet a residual below its rounding
        dt = np.result_type(self.op.dtype, spec.dtype)
        self.tol = max(spec.owner.tol, 10 * float(np.finfo(dt if dt.kind == "f"
                                                             else np.float64).eps))

    def __call__(self, R, transpose):
        from scipy.sparse.linalg import gmres
        op = self.op.T if transpose else self.op
        spec, tol = self.spec, self.tol
        if self.solve is None and spec.owner.solve == "auto" and spec.n <= DIRECT_MAX and \
                np.count_nonzero(np.any(R != 0, axis=-1)) > BATCH_DIRECT:
            # Many right-hand sides (a Jacobian: one per output or input): one GMRES each
            # would cost up to n operator applications apiece; ∂F/∂x formed once by a batched
            # sweep and factorised serves them all.
            if self.direct is None:
                self.direct = _DenseLU(spec, _jac_dense(spec, self.z, self.dleaves))
            return self.direct(R, transpose)
        out = np.zeros_like(R)
        for k, b in enumerate(R):
            bnorm = np.linalg.norm(b)
            if bnorm == 0:
                # y = 0, unless ∂F/∂x is singular: refuse the plainest case, ∂F/∂x = 0 (a
                # double root), as the dense LU does (a zero b never reaches the check below)
                self._refuse_zero(op)
                continue
            if self.solve is not None:
                y = np.asarray(self.solve(op, b), dtype=np.float64).reshape(-1)
                if y.shape != b.shape:
                    raise ValueError(
                        f"{spec.owner.name}: solve(op, b) returned {y.size} numbers for a "
                        f"tangent system of {b.size} unknowns; it must return y with op(y) = b.")
                info = 0
            else:
                n = spec.n
                restart = min(n, 100)
                y, info = gmres(op, b, rtol=tol, atol=0.0, restart=restart,
                                maxiter=max(20, 20 * n // restart))
            res = np.linalg.norm(op.matvec(y) - b)
            if info != 0 or not res <= 100 * tol * bnorm:
                how = "the given solve" if self.solve is not None else "GMRES"
                raise RuntimeError(
                    f"{spec.owner.name}: {how} did not solve the tangent system "
                    f"(∂F/∂x){'ᵀ' if transpose else ''} y = b (relative residual "
                    f"{res / bnorm:.1e}, tolerance {tol:.0e}): ∂F/∂x may be singular or badly "
                    "conditioned at the solution. Pass solve='dense' (a direct LU for up to a "
                    "few thousand unknowns) or a looser tol=.")
            out[k] = y
        return out

    def _refuse_zero(self, op):
        # (the error of a failed solve, as for a nonzero b with this operator)
        if not self.nonzero:
            v = np.random.default_rng(0).standard_normal(self.spec.n)
            if not np.any(op.matvec(v)):
                raise RuntimeError(
                    f"{self.spec.owner.name}: the Krylov solve did not solve the tangent "
                    "system: ∂F/∂x is 0 at the solution, so the root is not isolated and the "
                    "implicit function theorem gives no derivative.")
            self.nonzero = True


def _dense(spec):
    solve = spec.owner.solve
    return solve == "dense" or solve == "auto" and spec.n <= DENSE_MAX


def _plain(*xs):
    return not any(type(x) in box_types for x in xs)


def _factor(spec, z, dleaves):
    """The tangent system's solver at ``(z, θ)`` (plain values), made once per point."""
    c = spec.cache
    if c is not None and c[0] is z and len(c[1]) == len(dleaves) \
            and all(a is b for a, b in zip(c[1], dleaves)):
        return c[2]
    solve = spec.owner.solve
    if callable(solve):
        f = _Krylov(spec, z, dleaves, solve)
    elif _dense(spec):
        f = _DenseLU(spec, _jac_dense(spec, z, dleaves))
    elif solve == "sparse":
        f = _SparseLU(spec, z, dleaves)
    else:
        f = _Krylov(spec, z, dleaves, None)
    spec.cache = (z, tuple(dleaves), f)
    return f


def _apply_M(spec, z, dleaves, y, transpose):
    """``∂F/∂x·y`` (or ``(∂F/∂x)ᵀ·y``) at ``(z, θ)`` for ``y`` with leading batch axes."""
    if transpose:
        return _pull_flat(lambda z_: spec.Fz(z_, dleaves), [z], y, 1)[0]
    t = _push_flat(lambda z_: spec.Fz(z_, dleaves), [z], [y])
    return np.zeros_like(y) if t is None else t


def _solve_impl(r, z, *dleaves, spec, transpose):
    R = np.reshape(np.asarray(r, dtype=np.float64), (-1, spec.n))
    Y = _factor(spec, z, dleaves)(R, transpose)
    return Y.reshape(shape_of(r)).astype(np.result_type(r, spec.dtype), copy=False)


def _solve_jvp(tangents, ans, r, z, *dleaves, spec, transpose):
    # y = M⁻¹ r, M = ∂F/∂x (or its transpose):  dy = M⁻¹ (dr - dM·y)
    rhs = tangents[0]
    if any(t is not None for t in tangents[1:]):
        dMy = _push_flat(lambda z_, *ls: _apply_M(spec, z_, ls, ans, transpose),
                         [z, *dleaves], list(tangents[1:]))
        if dMy is not None:
            rhs = -dMy if rhs is None else rhs - dMy
    if rhs is None:
        return None
    return _solve_p(rhs, z, *dleaves, spec=spec, transpose=transpose)


def _solve_vjp(g, ans, r, z, *dleaves, spec, transpose):
    # <g, dy> = <w, dr - dM·y> with w = M⁻ᵀ g: r̄ = w, (z̄, θ̄) = -(∂(M·y)/∂(z, θ))ᵀ w
    w = _solve_p(g, z, *dleaves, spec=spec, transpose=not transpose)
    cts = _pull_flat(lambda z_, *ls: _apply_M(spec, z_, ls, ans, transpose), [z, *dleaves],
                     w, ndim_of(ans))
    return [w] + [-c for c in cts]


_solve_p = Primitive("implicit_tangent_solve", _solve_impl, jvp=_solve_jvp, vjp=_solve_vjp)


# ----- the root -----
def _root_impl(*dleaves, spec):
    args, kwargs = spec.params(dleaves)
    out = spec.owner.solver(spec.x0, *args, **kwargs)
    if spec.owner.has_aux:
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"{spec.owner.name}(has_aux=True): the solver must return a "
                            f"pair (x, aux), got {type(out).__name__}")
        out, spec.aux = out
    return spec.record(out)


def _root_jvp(tangents, ans, *dleaves, spec):
    if spec.n == 0:             # an empty solution: an empty derivative
        k = next(i for i, t in enumerate(tangents) if t is not None)
        return np.zeros(_lead(tangents[k], dleaves[k]) + (0,), spec.dtype)
    if _dense(spec) and _plain(ans, *dleaves, *tangents):
        if spec.xshapes == [()]:
            return _root_jvp_scalar(tangents, ans, dleaves, spec)
        return _root_jvp_dense(tangents, ans, dleaves, spec)
    u = _push_flat(lambda *ls: spec.Fz(ans, ls), list(dleaves), list(tangents))
    if u is None:
        return None
    return _solve_p(-u, ans, *dleaves, spec=spec, transpose=False)


def _root_vjp(g, ans, *dleaves, spec):
    if spec.n == 0:
        return [np.zeros(_lead(g, ans) + shape_of(x), np.result_type(unbox(x)))
                for x in dleaves]
    try:
        if _dense(spec) and _plain(g, ans, *dleaves):
            if spec.xshapes == [()]:
                return _root_vjp_scalar(g, ans, dleaves, spec)
            return _root_vjp_dense(g, ans, dleaves, spec)
        mu = _solve_p(g, ans, *dleaves, spec=spec, transpose=True)
        return [-c for c in _pull_flat(lambda *ls: spec.Fz(ans, ls), list(dleaves), mu, 1)]
    except TypeError as e:
        # F closing over a value of this very reverse sweep's transform meets it after
        # that transform returned (the sweep runs then): name the cause
        if not str(e).startswith("a value tracked by a reverse-mode transform"):
            raise
        raise TypeError(f"{spec.owner.name}: F(x, *params) closes over a value tracked by the "
                        "transform being differentiated, which is not one of the params; "
                        "pass that value to the solver as one of the params instead.") from e


def _check_options(kind, solve, tol):
    if solve is None:           # jaxopt's default
        return "auto"
    if not (callable(solve) or solve in _SOLVES):
        raise ValueError(f"{kind}: solve must be one of {_SOLVES} or a callable "
                         f"solve(op, b) -> x, not {solve!r}")
    if not 0 < tol < 1:
        raise ValueError(f"{kind}: tol must be in (0, 1), not {tol!r}")
    return solve


# The common first-order case, nothing tracked by an outer transform: ∂F/∂x and ∂F/∂θ come
# from one sweep together (no rule of an outer level needs the tangent solve as a
# primitive), and the factorisation is kept for any later solve at the same point.
def _root_jvp_dense(tangents, ans, dleaves, spec):
    """ẋ = -A⁻¹ (∂F/∂θ·θ̇): A's n columns and the B tangents' images in one forward sweep
    of n + B directions."""
    n = spec.n
    k = next(i for i, t in enumerate(tangents) if t is not None)
    lead = _lead(tangents[k], dleaves[k])
    nb = math.prod(lead) if lead else 1
    dt = np.result_type(spec.dtype, *[t for t in tangents if t is not None])
    seeds = [np.concatenate([np.eye(n, dtype=dt), np.zeros((nb, n), dt)])]
    for t, x in zip(tangents, dleaves):
        if t is not None:
            shape = shape_of(x)
            t = np.concatenate([np.zeros((n,) + shape, dt),
                                np.reshape(t, (nb,) + shape).astype(dt, copy=False)])
        seeds.append(t)
    T = _push_flat(lambda z, *ls: spec.Fz(z, ls), [ans, *dleaves], seeds)
    T = np.zeros((n + nb, n)) if T is None else np.asarray(T, dtype=np.float64)
    f = _DenseLU(spec, T[:n].T)
    spec.cache = (ans, tuple(dleaves), f)
    Y = f(-T[n:], False).astype(dt, copy=False)
    return np.reshape(Y, lead + (n,)) if lead else Y[0]


def _root_vjp_dense(g, ans, dleaves, spec):
    """θ̄ = -(∂F/∂θ)ᵀ A⁻ᵀ x̄. For few cotangents (a gradient): A from a forward sweep of
    the n basis tangents of x alone, then one reverse sweep of F in θ for the solved rows
    (measured on the mean field of 200 sites: 20 % less than the batched reverse sweep
    below, which also carries every basis cotangent to θ). For many (a Jacobian): one
    recording of F, whose sweep of the n basis cotangents gives A and (∂F/∂θ)ᵀ of each,
    contracted with A⁻ᵀ x̄ (or swept once more, when large)."""
    n = spec.n
    lead = _lead(g, ans)
    G = np.reshape(np.asarray(g, dtype=np.float64), (-1, n))
    if 4 * G.shape[0] <= n:
        MU = _factor(spec, ans, dleaves)(G, True).astype(spec.dtype, copy=False)
        ct = np.reshape(MU, lead + (n,)) if lead else MU[0]
        cts = _pull_flat(lambda *ls: spec.Fz(ans, ls), list(dleaves), ct, 1)
        return [-np.asarray(c) for c in cts]
    _, _, _, sweep = _pull(lambda z, *ls: spec.Fz(z, ls), None, [ans, *dleaves],
                           lambda ls: ls, retain=True, transform="custom_root")
    if n == 1:      # one row: an unbatched sweep is cheaper
        rows = [np.reshape(r, (1,) + shape_of(r)) for r in sweep([np.ones(1, spec.dtype)])]
    else:
        rows = sweep([np.eye(n, dtype=spec.dtype)], nb=1)
    f = _DenseLU(spec, np.asarray(rows[0], dtype=np.float64))
    spec.cache = (ans, tuple(dleaves), f)
    MU = f(G, True)
    if n * sum(math.prod(shape_of(x)) for x in dleaves) <= CONTRACT_MAX:
        # (a 1 × 1 matmul costs more than the product it is)
        cts = [(-MU[:, :1]) * np.reshape(r, (1, -1)) if n == 1 else
               -(MU @ np.reshape(r, (n, -1))) for r in rows[1:]]
    else:
        cts = [-c for c in sweep([MU], nb=1)[1:]]
    return [np.reshape(c, lead + shape_of(x)) if lead else np.reshape(c[0], shape_of(x))
            for c, x in zip(cts, dleaves)]


# A scalar unknown (one 0-d leaf, the root_scalar/brentq family), first order, nothing
# tracked outside: F is recorded on the scalar itself (no flat vector, no index or reshape
# in the recording), ∂F/∂x and ∂F/∂θ come from one sweep and the tangent solve is a
# division. The numbers are those of the dense path with n = 1.
def _one_entry(spec, out):
    t = type(out)
    if (t in box_types or t is np.ndarray) and math.prod(shape_of(out)) == 1 or t is float:
        return out
    leaves = flatten(out)[0]
    if len(leaves) != 1 or math.prod(shape_of(leaves[0])) != 1:
        size = sum(math.prod(shape_of(v)) for v in leaves)
        raise ValueError(
            f"{spec.owner.name}: the residual has {size} entries for a solution of 1: "
            "F(x, *params) must return as many numbers as x holds (a square system).")
    return leaves[0]


def _scalar_residual(spec, x, ls):
    """F at the scalar ``x`` and params ``ls`` (Variables of one level): its one entry,
    refused when F closes over a tracked value. A float recorded at that level, the common
    case, needs neither check's walk."""
    xs = x if spec.xtree == () else unflatten(spec.xtree, [x])
    if spec.flat and len(ls) == len(spec.leaves):
        out = spec.owner.residual(xs, ls, NO_KW)           # every param tracked
    else:
        args, kwargs = spec.params(ls)
        out = spec.owner.residual(xs, args, kwargs)
    if type(out) is Variable and out.level == x.level and \
            (type(out.value) is float or type(out.value) is np.float64):
        return out
    out = _one_entry(spec, out)
    _check_closure(spec.owner, (out,), (x, *ls))
    return out


def _scalar_slope(spec, a):
    """``∂F/∂x`` at the root as a float, refused where the theorem gives no derivative."""
    a = float(a) if type(a) is float else float(np.asarray(a, dtype=np.float64).reshape(()))
    if not np.isfinite(a):
        raise np.linalg.LinAlgError(
            f"{spec.owner.name}: ∂F/∂x at the solution holds non-finite values; the "
            "implicit function theorem gives no derivative there.")
    if a == 0:
        raise np.linalg.LinAlgError(
            f"{spec.owner.name}: ∂F/∂x is singular at the solution (it is 0): the root is "
            "not isolated, so the implicit function theorem gives no derivative. Check that "
            "F has an isolated root in x there (for a fixed point: that ∂T/∂x ≠ 1).")
    return a


def _scalar_sweep(spec, x, dleaves):
    """``(∂F/∂x, [∂F/∂θ_k])`` at the root from one reverse sweep of ``F``: compiled when
    ``F`` is an ``ad.jit`` function, else recorded on fresh leaves of a level of its own
    (``api._pull``'s steps without its pytree layers: the hot path of every scalar root)."""
    compiled = _compiled_sweep(spec, x, dleaves)
    if compiled is not None:
        return compiled
    with _level() as level:
        xv = Variable(x, level=level)
        tv = [Variable(v, level=level) for v in dleaves]
        out = _scalar_residual(spec, xv, tv)
    if type(out) is not Variable or out.level != level:
        return 0.0, [None] * len(dleaves)         # F does not depend on x or θ: singular
    got = {id(v): g for v, g in backward_pass([(out, _one(out.value))])}
    a = got.get(id(origin(xv)), 0.0)
    return a, [got.get(id(origin(v))) for v in tv]


def _root_jvp_scalar(tangents, ans, dleaves, spec):
    """ẋ = -(∂F/∂θ·θ̇) / (∂F/∂x): F has one output, so one reverse sweep gives ∂F/∂x and
    every ∂F/∂θ, contracted with the tangents (a forward sweep would carry 1 + B
    directions through every operation)."""
    k = next(i for i, t in enumerate(tangents) if t is not None)
    lead = _lead(tangents[k], dleaves[k])
    nb = math.prod(lead) if lead else 1
    dt = np.result_type(spec.dtype, *[t for t in tangents if t is not None])
    if nb == 0:                         # no directions (jacfwd of an empty input)
        return np.zeros(lead + (1,), dt)
    if not lead:
        return np.array([_scalar_tangent(tangents, ans[0], dleaves, spec)], dt)
    a, grads = _scalar_sweep(spec, ans[0], dleaves)
    U = np.zeros(nb)
    for t, b in zip(tangents, grads):
        if t is not None and b is not None:
            U = U + np.reshape(t, (nb, -1)) @ np.reshape(np.asarray(b, np.float64), (-1,))
    Y = (-U / _scalar_slope(spec, a)).astype(dt, copy=False).reshape(nb, 1)
    return np.reshape(Y, lead + (1,)) if lead else Y[0]


def _scalar_tangent(tangents, x, dleaves, spec):
    """One direction: ẋ = -(∂F/∂θ·θ̇) / (∂F/∂x) at the root ``x``, a float; the sweep's
    rows contracted with the tangents as they come."""
    a, rows = _scalar_sweep(spec, x, dleaves)
    u = 0.0
    for t, b in zip(tangents, rows):
        if t is not None and b is not None:
            if type(t) is float and (type(b) is float or shape_of(b) == ()):
                u += float(b) * t           # a scalar param: no array calls
            else:
                u += float(np.dot(np.ravel(np.asarray(b, np.float64)), np.ravel(t)))
    return -u / _scalar_slope(spec, a)


def _scalar_cotangents(g, x, dleaves, spec):
    """One cotangent, the float ``g``: θ̄ = -(g / (∂F/∂x)) ∂F/∂θ, each row scaled."""
    a, rows = _scalar_sweep(spec, x, dleaves)
    s = -g / _scalar_slope(spec, a)
    return [np.zeros(shape_of(v), np.result_type(v)) if b is None else b * s
            for b, v in zip(rows, dleaves)]


def _root_vjp_scalar(g, ans, dleaves, spec):
    """θ̄ = -(x̄ / (∂F/∂x)) ∂F/∂θ: one reverse sweep of F gives ∂F/∂x and ∂F/∂θ together."""
    lead = _lead(g, ans)
    if not lead:
        return _scalar_cotangents(float(np.reshape(g, (-1,))[0]), ans[0], dleaves, spec)
    a, rows = _scalar_sweep(spec, ans[0], dleaves)
    a = _scalar_slope(spec, a)
    MU = np.asarray(g, dtype=np.float64).reshape(-1, 1) / a
    out = []
    for b, x in zip(rows, dleaves):
        if b is None:
            out.append(np.zeros(lead + shape_of(x), np.result_type(x)))
            continue
        c = (-MU) * np.reshape(b, (1, -1))
        out.append(np.reshape(c, lead + shape_of(x)) if lead else np.reshape(c[0], shape_of(x)))
    return out


# F given as an ``ad.jit`` function: its caller has accepted jit's semantics for F (arrays
# it closes over are constants of its program), so the sweep of F at the root may be
# recorded once per signature too and replayed; F's own recording is inlined into it.
# Kept per F (weakly), per params layout and kind of residual.
_SWEEPS = weakref.WeakKeyDictionary()
_ARRAYLIKE = (np.ndarray, np.generic, float, int)


def _compiled_sweep(spec, x, dleaves):
    """``(∂F/∂x, [∂F/∂θ_k])`` at the root from a compiled sweep, or ``None`` when F is not
    an ``ad.jit`` function (or a param is not an array or number)."""
    F = spec.owner.F
    tracing = sys.modules.get(__package__ + ".tracing")
    if tracing is None or type(F) is not tracing._Jitted or F.static_argnums \
            or F.static_argnames:       # (static params would reach F as traced values)
        return None
    leaves = list(spec.leaves)
    for i, v in zip(spec.tracked, dleaves):
        leaves[i] = v
    if not all(isinstance(v, _ARRAYLIKE) for v in leaves):
        return None
    key = (spec.ptree, tuple(spec.tracked), spec.xtree, type(spec.owner))
    per_f = _SWEEPS.setdefault(F, {})
    fn = per_f.get(key)
    if fn is None:
        fn = per_f[key] = tracing.jit(_sweep_function(spec))
    # (a Python float takes jit's fast path; a NumPy scalar would take its general path)
    return fn(float(x) if type(x) is np.float64 else x, *leaves)


def _sweep_function(spec):
    """``(x, *leaves) ↦ (∂F/∂x, ∂F/∂θ_tracked…)``, built from nothing of this call but its
    layout (the jitted function outlives it)."""
    from .api import grad
    owner, ptree, tracked, xtree = spec.owner, spec.ptree, list(spec.tracked), spec.xtree
    residual = type(owner).residual
    stand_in = _Stand(owner.F, owner.name)      # residual() reads only .F and .name

    def sweep(x, *leaves):
        def r(x, *tl):
            ls = list(leaves)
            for i, v in zip(tracked, tl):
                ls[i] = v
            args, kwargs = unflatten(ptree, ls)
            out = _one_entry(stand_in, residual(stand_in, unflatten(xtree, [x]), args, kwargs))
            return np.reshape(out, ())
        return grad(r, argnums=tuple(range(1 + len(tracked))))(
            x, *[leaves[i] for i in tracked])

    def compiled(x, *leaves):
        a, *rows = sweep(x, *leaves)
        return a, rows
    return compiled


class _Stand:
    """What a residual and its error messages read of the solver object; F held weakly,
    as ``_SWEEPS`` holds it (a strong reference from its own entry would keep it alive)."""

    def __init__(self, F, name):
        self._F, self.name = weakref.ref(F), name
        self.owner = self

    @property
    def F(self):
        return self._F()


def _plain_tree(t):
    leaves, tree = flatten(t)
    return unflatten(tree, [unbox(v) for v in leaves])


class _Implicit:
    """A solver decorated by ``custom_root`` or ``custom_fixed_point``."""
    kind = "custom_root"

    def __init__(self, solver, F, solve, tol, has_aux):
        functools.update_wrapper(self, solver)
        solve = _check_options(self.kind, solve, tol)
        self.solver, self.F, self.solve, self.tol, self.has_aux = solver, F, solve, tol, has_aux
        self.name = f"{self.kind}[{getattr(solver, '__name__', 'solver')}]"
        self.prim = Primitive(self.name, _root_impl, jvp=_root_jvp, vjp=_root_vjp)

    @classmethod
    def solved(cls, name, F, x_star, args, kwargs):
        """``x_star``, a solution already found on plain values (``autodiff.scipy.optimize``
        runs SciPy's solver first), as a function of the tracked values in ``args`` and
        ``kwargs``: a call of the decorated form without decorating a solver per call."""
        self = object.__new__(cls)
        self.F, self.solve, self.tol, self.has_aux = F, "auto", 1e-10, False
        self.solver = _Given(x_star)
        self.name = name = f"{cls.kind}[{name}]"
        prims = _PRIMS.get(name)
        if prims is None:
            prims = _PRIMS[name] = (
                Primitive(name, _root_impl, jvp=_root_jvp, vjp=_root_vjp),
                Primitive(name, _scalar_impl, jvp=_scalar_jvp, vjp=_scalar_vjp))
        self.prim = prims[0]
        if type(x_star) is float and not kwargs and leaf_tuple(args) is not None:
            spec = _Spec.scalar(self, x_star, args)
            if spec.tracked:
                tracked = [args[i] for i in spec.tracked]
                self._refuse_complex(tracked)
                return bind(prims[1], *tracked, spec=spec)
        return self._bind(None, args, kwargs)

    def residual(self, x, args, kwargs):
        return self.F(x, *args, **kwargs)

    def __call__(self, x0, *args, **kwargs):
        x0 = _plain_tree(x0)            # no derivative through the initial guess (JAX)
        return self._bind(x0, args, kwargs)

    def _bind(self, x0, args, kwargs):
        leaves, ptree = flatten((args, kwargs))
        if not any(type(v) in box_types for v in leaves):
            out = self.solver(x0, *args, **kwargs)
            if len(live_levels) > 2:        # a transform is running (levels 0, 1: eager)
                x = out[0] if self.has_aux and isinstance(out, (tuple, list)) else out
                if not any(type(v) in box_types for v in flatten(x)[0]):
                    _check_closure(self, flatten(self.residual(x, args, kwargs))[0], ())
            return out
        spec = _Spec(self, x0, args, kwargs, leaves, ptree)
        tracked = [leaves[i] for i in spec.tracked]
        self._refuse_complex(tracked)
        z = bind(self.prim, *tracked, spec=spec)
        x = spec.unpack(z)
        return (x, spec.aux) if self.has_aux else x

    def _refuse_complex(self, tracked):
        for v in tracked:
            u = unbox(v)
            if type(u) is float or type(u) is np.ndarray and u.dtype.kind == "f":
                continue                # (the common case without NumPy's type promotion)
            if np.result_type(u).kind == "c":
                raise NotImplementedError(
                    f"{self.name}: differentiating with respect to a complex parameter is not "
                    "supported; pass its real and imaginary parts as two real parameters.")

    def __repr__(self):
        return f"<{self.name}>"


#: The primitives of ``_Implicit.solved``, a pair per solver name: the general one and
#: the scalar lane's.
_PRIMS = {}


# ----- the scalar lane -----
# A departure from the general path on purpose (the hot path of SciPy's scalar solvers,
# brentq and root_scalar, whose root is a Python float and whose args are arrays or
# numbers): the primitive's output is the root itself, a Python float as SciPy returns it
# (so float32 code around it stays float32, as on plain values), not a flat vector of one
# entry indexed afterwards; the spec is made without the pytree walks. Its rules are the
# general ones on the one-entry vector.
def _scalar_impl(*dleaves, spec):
    return spec.x0          # SciPy's Python float: NumPy's weak scalar (float32 stays)


def _scalar_jvp(tangents, ans, *dleaves, spec):
    plain = _plain(ans, *dleaves, *tangents)
    if plain and all(t is None or shape_of(t) == shape_of(x)
                     for t, x in zip(tangents, dleaves)):
        return _scalar_tangent(tangents, ans, dleaves, spec)  # a Python float, as the root
    z = np.reshape(ans, (1,))
    if plain:
        y = _root_jvp_scalar(tangents, z, dleaves, spec)
    else:
        y = _root_jvp(tangents, z, *dleaves, spec=spec)
        if y is None:                   # no tangent reaches F's value: none reaches x
            return None
    y = np.reshape(y, shape_of(y)[:-1])
    # the root is weakly typed: a batch of float32 tangents stays float32 (as one does)
    dt = np.result_type(*[t for t in tangents if t is not None])
    if dt == np.float32 and type(y) is np.ndarray and y.dtype == np.float64:
        y = y.astype(np.float32)
    return y


def _scalar_vjp(g, ans, *dleaves, spec):
    if (type(g) is float or type(g) is np.float64) and _plain(ans, *dleaves):
        return _scalar_cotangents(float(g), ans, dleaves, spec)
    z, g = np.reshape(ans, (1,)), np.reshape(g, shape_of(g) + (1,))
    if _plain(g, ans, *dleaves):
        return _root_vjp_scalar(g, z, dleaves, spec)
    return _root_vjp(g, z, *dleaves, spec=spec)


class _Given:
    """The solver of an already solved call: its solution, whatever it is asked."""
    __slots__ = ("x",)

    def __init__(self, x):
        self.x = x

    def __call__(self, x0, *args, **kwargs):
        return self.x


class _ImplicitFixedPoint(_Implicit):
    kind = "custom_fixed_point"

    def residual(self, x, args, kwargs):
        tx = self.F(x, *args, **kwargs)
        a, ta = flatten(x), flatten(tx)
        if a[1] != ta[1]:
            raise TypeError(f"{self.name}: T(x, *params) must return the structure of x")
        return unflatten(a[1], [u - v for u, v in zip(ta[0], a[0])])


def custom_root(F, *, solve="auto", tol=1e-10, has_aux=False):
    """Decorate ``solver(x0, *params, **kwparams) -> x`` whose result solves
    ``F(x, *params, **kwparams) = 0``: its derivatives with respect to the params come from
    the implicit function theorem (jaxopt's ``implicit_diff.custom_root``), in both modes, to
    any order, with the solver run once per call.

    ``ẋ = -(∂F/∂x)⁻¹ ∂F/∂θ·θ̇`` and ``θ̄ = -(∂F/∂θ)ᵀ (∂F/∂x)⁻ᵀ x̄``. ``x`` and the params may be
    pytrees; ``x0`` gets no derivative. ``solve`` says how the tangent system with matrix
    ``∂F/∂x`` is solved: ``"dense"`` (LU of the Jacobian from one batched forward sweep),
    ``"krylov"`` (GMRES on JVPs/VJPs of ``F``: matrix-free, to relative residual ``tol``),
    ``"sparse"`` (sparse LU of ``ad.sparse_jacobian``), ``"auto"`` (dense up to
    ``DENSE_MAX`` = 200 unknowns, then Krylov; ``None`` means the same), or a callable
    ``solve(op, b) -> y`` given a ``scipy.sparse.linalg.LinearOperator`` (callable as
    ``op(v)``: jaxopt's ``solve(matvec, b)``; ``op`` is ``(∂F/∂x)ᵀ`` for reverse mode).
    A singular ``∂F/∂x`` raises ``numpy.linalg.LinAlgError``; a Krylov solve that does not
    converge ``RuntimeError``. The solver's result is trusted to solve ``F = 0`` (check it
    in the solver: a wrong root gets the derivative of a wrong root). With
    ``has_aux=True`` the solver returns ``(x, aux)``; ``aux`` is not differentiated.
    ``F`` may close over plain arrays; a value tracked by a transform must be one of the
    params (an ``F`` that closes over one raises ``TypeError``: its derivative would be lost).

    >>> import autodiff as ad
    >>> F = lambda x, a: x ** 2 - a
    >>> @ad.custom_root(F)
    ... def sqrt(x0, a):
    ...     x = x0
    ...     for _ in range(50):
    ...         x = x - F(x, a) / (2 * x)     # Newton
    ...     return x
    >>> round(float(ad.grad(lambda a: sqrt(1.0, a))(4.0)), 12)     # 1 / (2 sqrt a)
    0.25
    """
    solve = _check_options("custom_root", solve, tol)

    def decorate(solver):
        return _Implicit(solver, F, solve, tol, has_aux)
    return decorate


def custom_fixed_point(T, *, solve="auto", tol=1e-10, has_aux=False):
    """Decorate ``solver(x0, *params) -> x`` whose result satisfies ``x = T(x, *params)``:
    ``custom_root`` with ``F = T(x) - x``, so ``ẋ = (I - ∂T/∂x)⁻¹ ∂T/∂θ·θ̇``. Same options.

    >>> import autodiff as ad
    >>> T = lambda x, a: np.cos(a * x)
    >>> @ad.custom_fixed_point(T)
    ... def fp(x0, a):
    ...     for _ in range(200):
    ...         x0 = T(x0, a)
    ...     return x0
    >>> x = fp(0.5, 1.0)
    >>> bool(abs(ad.grad(lambda a: fp(0.5, a))(1.0) - (-x * np.sin(x)) / (1 + np.sin(x))) < 1e-12)
    True
    """
    solve = _check_options("custom_fixed_point", solve, tol)

    def decorate(solver):
        return _ImplicitFixedPoint(solver, T, solve, tol, has_aux)
    return decorate
