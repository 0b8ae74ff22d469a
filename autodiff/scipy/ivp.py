"""``solve_ivp`` with derivatives: forward sensitivities integrated with the state, and an
adjoint along the stored forward solution.

``solve_ivp(fun, t_span, y0, ...)`` runs SciPy's own solver on the primal values and returns
SciPy's result, with ``.y`` (and ``.t``, ``.t_events``, ``.y_events``, ``.sol``) differentiable
in ``y0``, ``t_span``, ``t_eval`` and the tracked values in ``args``. The samples ``Y(tᵢ)`` of
``y' = f(t, y, p)`` are one primitive, ``ivp_p(y0, t, p)`` (``t[0]`` the initial time,
``Y[0] = y0``), whose rules are ODE solves themselves:

- JVP (forward sensitivities): ``S' = ∂f/∂y·S + ∂f/∂p·ṗ``, ``S(t₀) = ẏ₀ - f(t₀, y₀)·ṫ₀``,
  integrated *with* the state by the same method (one augmented system ``(y, S₁ … S_k)`` for
  all k directions, each ``∂f·S`` from one batched forward sweep of ``f``), and
  ``Ẏ(tᵢ) = S(tᵢ) + f(tᵢ, Y(tᵢ))·ṫᵢ``. The implicit methods get the exact augmented
  Jacobian, block lower triangular: ``∂f/∂y`` (AD) on the diagonal, shared by all blocks,
  and the couplings ``∂(∂f·Sᵢ)/∂y`` in the first column, all from one forward sweep of n
  directions (leaving the couplings out, as CVODES's simultaneous corrector may, stalls
  SciPy's Newton on Robertson's kinetics: ten times the LU factorisations).
- VJP: by the same forward sensitivities (one direction per input value, then ``gᵀ·Ẏ``)
  when there are few inputs, else by the adjoint ``λ' = -λ·∂f/∂y``, ``a' = -λ·∂f/∂p``
  integrated backwards along the dense output of a forward solve (``adjoint_sweep``): only
  ``(λ, a)`` moves backwards, never the state (re-integrating a stiff state backwards blows
  up). The adjoint of a stiff problem is as stiff: the implicit methods solve it with its
  exact Jacobian built from the AD Jacobian, and ``a`` is the quadrature of ``λ·∂f/∂p``
  carried along with error control. ``sensitivity=`` picks the method of the pullback
  ("auto": forward for at most 16 input values); forward-mode transforms always push
  forward sensitivities.

Event times are differentiated by the implicit function theorem,
``ṫₑ = -(∂g/∂y·Ẏ(tₑ) + ∂g/∂p·ṗ) / (∂g/∂y·f + ∂g/∂t)``, written as two Newton steps on
``g(t, Y(t; θ), θ) = 0`` from SciPy's root that move its value by nothing (exact to third
order, in both modes). A solver failure raises ``RuntimeError`` (SciPy returns status -1).

>>> import autodiff as ad
>>> def y1(k):
...     sol = solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), [1.0], args=(k,), rtol=1e-10,
...                     atol=1e-12)
...     return sol.y[0, -1]
>>> round(float(ad.grad(y1)(0.5)), 6)                # d/dk e^{-k} = -e^{-k}
-0.606531
"""
import numpy as np
import scipy.integrate as si
from scipy import sparse

from ..api import _level, jacfwd, jvp, stop_gradient
from ..boxes import unbox
from ..core import box_types, lead, ndim_of, shape_of
from ..forward import Dual
from ..ops.define import defprim
from ..reverse import Variable, backward_pass
from ..tree import flatten, unflatten

__all__ = ["solve_ivp", "dense_solution", "adjoint_sweep"]

_SENSITIVITIES = ("auto", "forward", "adjoint")
# "auto" pulls back by forward sensitivities up to this many input values (the augmented
# system has one copy of the state per value); the adjoint's cost does not grow with them.
_AUTO_DIRECTIONS = 16
# Past this many unknowns the augmented Newton matrix is given sparse (BDF, Radau).
_DENSE_MAX = 200


# ----- Helpers -----
def _failed(what, detail, fix):
    return RuntimeError(f"{what} failed ({detail}); its result would be wrong, so none is "
                        f"returned. {fix}")


_FIX = ("Raise mxstep, loosen rtol/atol, or check that func stays finite along the "
        "solution (a stiff problem needs tolerances its solver can meet).")
_FIX_IVP = ("Loosen rtol/atol, use an implicit method (BDF, Radau, LSODA) for a stiff "
            "problem, or check that fun stays finite along the solution.")


def _refuse_closures(exc, solver, probes):
    """Re-raise the ``TypeError`` SciPy's solve met as a clear one when it came from a
    function that closes over a tracked value: called with plain numbers, it returned a
    tracked one, whose derivative the solve cannot follow. ``probes`` are ``(name, call)``
    pairs, each ``call()`` evaluating one of the user's functions at the initial point."""
    for name, call in probes:
        try:
            out = call()
        except Exception:          # noqa: BLE001  (the probe only asks; SciPy's error stands)
            continue
        if any(type(v) in box_types for v in flatten(out)[0]):
            raise TypeError(
                f"{solver}: `{name}` returned a tracked value when called with plain numbers: "
                "it closes over a tracked value (an input of a transform or of ad.jit), whose "
                "derivative the solve cannot follow. Pass that value through `args=` "
                f"({name} receives it as an extra argument) instead of capturing it.") from exc
    raise exc


def _implicit(method):
    """Whether ``method`` (a name or an ``OdeSolver`` class) solves with a Jacobian."""
    if isinstance(method, str):
        return method in ("BDF", "Radau", "LSODA")
    return isinstance(method, type) and issubclass(method, (si.BDF, si.Radau, si.LSODA))


def _tol(x):
    """A tolerance as a keyword of the primitives: a float, or a tuple of floats when it is
    given per component (SciPy takes ``rtol`` and ``atol`` as arrays of the state's size)."""
    return tuple(float(v) for v in np.ravel(x)) if np.ndim(x) else float(x)


def _tiled(tol, copies):
    """A per-component tolerance for ``copies`` stacked copies of the state."""
    return tuple(np.tile(np.asarray(tol, dtype=float), copies)) if np.ndim(tol) else tol


def _vector(out):
    """``func``'s result as a flat vector (it may be a list of scalars, as SciPy allows)."""
    if isinstance(out, (list, tuple)):
        return np.concatenate([np.ravel(o) for o in out])
    return np.ravel(out)


#: Above this many unknowns the implicit methods get the sparse AD Jacobian (compressed
#: evaluation, ``ivp_jacobian``) when its pattern is sparse; below it, the dense one.
SPARSE_FROM = 100


def _ad_jac(fun):
    """``jac(t, y, *args) = ∂fun(t, y, *args)/∂y``: the AD Jacobian the implicit methods get
    without being asked. Dense (one batched forward sweep) for small systems; past
    ``SPARSE_FROM`` unknowns, a ``scipy.sparse`` one by compressed evaluation when the
    detected pattern fills at most a quarter of the matrix (a function whose pattern cannot
    be detected, e.g. one that branches on values, keeps the dense one)."""
    state = {"sparse": None}

    def dense(t, y, *args):
        return jacfwd(lambda y: _vector(fun(t, y, *args)))(y)

    def jac(t, y, *args):
        if np.size(y) > SPARSE_FROM and state["sparse"] is not False:
            try:
                if state["sparse"] is None:
                    from .stiff import ivp_jacobian
                    state["sparse"] = ivp_jacobian(lambda t, y, *a: _vector(fun(t, y, *a)))
                J = state["sparse"](t, y, *args)
                if J.nnz <= 0.25 * J.shape[0] * J.shape[1]:
                    return J
            except (TypeError, NotImplementedError, ValueError):
                pass
            state["sparse"] = False         # dense from now on: the pattern is not sparse
        return dense(t, y, *args)
    return jac


# ----- Dense forward solution and backward adjoint (shared with odeint) -----
def dense_solution(fun, jac, t_span, y0, *, rtol, atol, max_step=np.inf, method="LSODA",
                   what="the forward solve"):
    """The forward solution ``y(s)`` of ``y' = fun(s, y)`` on ``t_span`` as a callable (the
    solver's dense output), for a backward sweep that must not integrate ``y`` backwards.

    ``jac(s, y) = ∂fun/∂y`` serves the implicit methods (the explicit ones do not use it);
    LSODA switches between Adams and BDF as the problem turns stiff. A solver failure raises.
    """
    extra = {"jac": jac} if _implicit(method) and jac is not None else {}
    sol = si.solve_ivp(fun, t_span, y0, method=method, rtol=rtol, atol=atol,
                       max_step=max_step, dense_output=True, **extra)
    if sol.status < 0:
        raise _failed(what, sol.message, _FIX)
    return sol.sol


def adjoint_sweep(jac_yp, ysol, t, g, m, *, rtol, atol, max_step=np.inf, method=None,
                  vjp=None, what="the adjoint solve", fix=_FIX):
    """``(λ(t₀), a)`` for cotangents ``g`` (B, T, n) of the samples ``y(tᵢ)`` of
    ``y' = f(y, s, p)``, ``p`` of size ``m``.

    Backwards over each ``[tᵢ₋₁, tᵢ]``: ``λ' = -λ·∂f/∂y``, ``a' = -λ·∂f/∂p`` from
    ``λ(t_{T-1}) = g_{T-1}``, ``a = 0``, with the jump ``λ += gᵢ₋₁`` at each sample; then
    ``λ(t₀) = Σᵢ gᵢ·∂y(tᵢ)/∂y₀`` and ``a = Σᵢ gᵢ·∂y(tᵢ)/∂p``. Only ``(λ, a)`` is integrated;
    ``y(s)`` comes from ``ysol``, the stored forward solution, because integrating a stiff
    state backwards blows up. ``jac_yp(y, s) = [∂f/∂y | ∂f/∂p]``, shape (n, n + m); given
    ``vjp(y, s, λ) = λ·[∂f/∂y | ∂f/∂p]`` (B, n + m), the right-hand side is one reverse sweep
    and the Jacobian is formed only for the implicit methods. The system is linear in
    ``(λ, a)`` and as stiff as the forward one, so the implicit methods get its exact
    Jacobian ``[[I⊗(-∂f/∂yᵀ), 0], [I⊗(-∂f/∂pᵀ), 0]]``: dense for LSODA (the default), sparse
    for BDF and Radau (the default past 1000 unknowns, where a dense one would be large).
    Samples whose cotangent is zero add no jump, so no solve stops there.
    """
    keep = [i for i in range(g.shape[1])
            if i in (0, g.shape[1] - 1) or np.any(g[:, i] != 0)]
    t, g = np.asarray(t)[keep], g[:, keep]
    bsz, nt, n = g.shape
    k = bsz * n
    size = k + bsz * m
    if method is None or (method == "LSODA" and size > 1000):
        method = "LSODA" if size <= 1000 else "BDF"
    memo = [None, None]

    def jac_at(s):                      # the solver asks for rhs and Jacobian at one s
        if memo[0] != s:
            memo[0], memo[1] = s, jac_yp(ysol(s), s)
        return memo[1]

    def rhs(s, z):
        # a copy: LSODA's z is a view of Fortran memory, whose base no sweep should follow
        lam = np.array(np.reshape(z[:k], (bsz, n)))
        if vjp is not None:
            la = vjp(ysol(s), s, lam)
            return -np.concatenate([np.ravel(la[:, :n]), np.ravel(la[:, n:])])
        j = jac_at(s)
        return np.concatenate([np.ravel(lam @ -j[:, :n]), np.ravel(lam @ -j[:, n:])])

    extra = {}
    if method == "LSODA":
        eye = np.eye(bsz)

        def jac(s, z):
            j = jac_at(s)
            return np.block([[np.kron(eye, -j[:, :n].T), np.zeros((k, bsz * m))],
                             [np.kron(eye, -j[:, n:].T), np.zeros((bsz * m, bsz * m))]])
        extra["jac"] = jac
    elif _implicit(method):
        eye = sparse.identity(bsz, format="csr")

        def jac(s, z):
            j = jac_at(s)
            left = sparse.vstack([sparse.kron(eye, -j[:, :n].T), sparse.kron(eye, -j[:, n:].T)])
            return sparse.hstack([left, sparse.csr_matrix((size, bsz * m))], format="csc")
        extra["jac"] = jac

    lam, a = np.array(g[:, nt - 1], dtype=float), np.zeros((bsz, m))
    for i in range(nt - 1, 0, -1):
        if t[i] != t[i - 1]:
            sol = si.solve_ivp(rhs, (t[i], t[i - 1]), np.concatenate([np.ravel(lam),
                               np.ravel(a)]), method=method, rtol=rtol, atol=atol,
                               max_step=max_step, **extra)
            if sol.status < 0:
                raise _failed(what, sol.message, fix)
            z = sol.y[:, -1]
            lam, a = np.reshape(z[:k], (bsz, n)), np.reshape(z[k:], (bsz, m))
        lam = lam + g[:, i - 1]
    if not (np.all(np.isfinite(lam)) and np.all(np.isfinite(a))):
        raise _failed(what, "non-finite adjoint", fix)
    return lam, a


def pull_linear(fun, xs, g, nb):
    """The cotangents of ``fun``'s arguments ``xs`` for the output cotangent ``g``, which
    carries ``nb`` leading batch axes: one reverse sweep of ``fun`` recorded at ``xs``."""
    with _level() as level:
        vs = [Variable(x, level=level) for x in xs]
        out = fun(*vs)
    if not (type(out) is Variable and out.level == level):
        return [None] * len(xs)
    got = {id(v): c for v, c in backward_pass([(out, g)], nb)}
    return [got.get(id(v)) for v in vs]


def _push_batch(fun, s, y, p, ty, tp):
    """``fun(s, y, p)`` and its derivatives along the k directions ``(ty, tp)`` (k, n) and
    (k, m): one batched forward sweep."""
    with _level(batched=1) as level:
        out = fun(s, Dual(y, ty, level), Dual(p, tp, level))
    if type(out) is Dual and out.level == level:
        return out.value, out.tangent
    return out, np.zeros(shape_of(ty)[:1] + shape_of(out))


def _jac_yp(fun, n, y, s, p):
    """``[∂f/∂y | ∂f/∂p]`` at ``(s, y, p)``, shape (n, n + m): one batched forward sweep."""
    return jacfwd(lambda yp: fun(s, yp[:n], yp[n:]))(np.concatenate([y, p]))


def _vjp_yp(fun, y, s, p, lam):
    """``λ·[∂f/∂y | ∂f/∂p]`` for the B rows of ``λ``: one batched reverse sweep."""
    cy, cp = pull_linear(lambda y, p: fun(s, y, p), [y, p], lam, 1)
    bsz = shape_of(lam)[0]
    cy = np.zeros((bsz, shape_of(y)[0])) if cy is None else cy
    cp = np.zeros((bsz, shape_of(p)[0])) if cp is None else cp
    return np.concatenate([cy, cp], axis=-1)


# ----- The primitive: samples of the solution at given times, on flat vectors -----
# ``ivp_p(y0, t, p, fun=f, jac=J, ...)``: y0 (n,), t (T,) with t[0] the initial time and the
# samples in the direction of integration, p (m,) the tracked parameters flattened,
# ``f(s, y, p)`` -> (n,), ``J(s, y, p) = ∂f/∂y`` (None: the AD Jacobian). The result is (T, n).
# Keywords: method, rtol, atol, opts (options every solve gets), sens, y0_active (whether y0
# can carry a derivative: a plain y0 needs no sensitivities of its own) and primal (the
# values SciPy's solve gave, returned as they are instead of solving again).

class _Primal:
    """The primal solve's samples (and dense output): the primitive returns these very
    numbers when called at the same inputs, so the result is SciPy's and is solved once."""

    def __init__(self, y0, t0, p, times, rows, sol=None):
        self.y0, self.t0, self.p, self.sol = y0, t0, p, sol
        self.rows = {float(t0): np.asarray(y0, dtype=float)}
        self.add(times, rows)

    def add(self, times, rows):
        self.rows.update((float(s), r) for s, r in zip(times, rows))

    def covers(self, y0, t, p):
        """Whether the dense output is of this problem and spans the samples ``t``."""
        if self.sol is None or t[0] != self.t0 or not (
                np.array_equal(y0, self.y0) and np.array_equal(p, self.p)):
            return False
        lo, hi = min(self.sol.t_min, self.sol.t_max), max(self.sol.t_min, self.sol.t_max)
        return bool(np.all((np.asarray(t) >= lo) & (np.asarray(t) <= hi)))

    def lookup(self, y0, t, p):
        if t[0] != self.t0 or not (np.array_equal(y0, self.y0) and np.array_equal(p, self.p)):
            return None
        out = [np.asarray(y0, dtype=float)]
        for s in t[1:]:
            r = self.rows.get(float(s))
            if r is None:
                if self.sol is None:
                    return None
                r = self.sol(float(s))
            out.append(r)
        return np.stack(out)


def _solver_jac(fun, jac, method, p):
    if not _implicit(method):
        return {}
    J = jac if jac is not None else _ad_jac(fun)
    if method == "LSODA":
        return {"jac": lambda s, y: _dense(J(s, y, p))}
    return {"jac": lambda s, y: J(s, y, p)}


def _dense(J):
    return J.toarray() if sparse.issparse(J) else J


def _solve(y0, t, p, *, fun, jac, method, rtol, atol, opts, sens, y0_active, primal):
    if primal is not None:
        got = primal.lookup(y0, t, p)
        if got is not None:
            return got
    t = np.asarray(t, dtype=float)
    y0 = np.asarray(y0, dtype=float)
    nt = t.shape[0]
    if t[0] == t[-1]:
        return np.tile(y0, (nt, 1))
    # SciPy wants distinct samples in the direction of integration; t may repeat (t₀ first)
    sign = 1.0 if t[-1] > t[0] else -1.0
    u, inv = np.unique(sign * t, return_inverse=True)
    sol = si.solve_ivp(lambda s, y: fun(s, y, p), (t[0], t[-1]), y0, method=method,
                       t_eval=sign * u,
                       rtol=np.asarray(rtol, dtype=float) if np.ndim(rtol) else rtol,
                       atol=np.asarray(atol, dtype=float) if np.ndim(atol) else atol,
                       **_solver_jac(fun, jac, method, p), **dict(opts))
    if sol.status < 0:
        raise _failed(f"solve_ivp ({_name(method)})", sol.message, _FIX_IVP)
    return sol.y.T[np.ravel(inv)]


def _name(method):
    return method if isinstance(method, str) else getattr(method, "__name__", str(method))


def _block_lower(col, n, copies, method):
    """The augmented Jacobian ``I_copies ⊗ J`` plus the couplings ``Cᵢ`` in the first block
    column, from ``col = [J; C₁; …]``; sparse when it is large (BDF, Radau)."""
    J = col[:n]
    if shape_of(J)[0] * copies > _DENSE_MAX and method != "LSODA":
        diag = sparse.kron(sparse.identity(copies, format="csr"), sparse.csr_matrix(J))
        low = sparse.csr_matrix((np.ravel(col[n:]), (np.repeat(np.arange(n, n * copies), n),
                                                     np.tile(np.arange(n), n * (copies - 1)))),
                                shape=(n * copies, n * copies))
        return (diag + low).tocsc()
    out = np.kron(np.eye(copies), J)
    out[n:, :n] = col[n:]
    return out


def _augmented(kw, n, m, k):
    """The keywords of ``ivp_p`` for the state ``(y, S₁ … S_k)`` and parameters
    ``(p, P₁ … P_k)``: ``S' = ∂f/∂y·S + ∂f/∂p·P`` for all k directions in one sweep."""
    fun, jac, method = kw["fun"], kw["jac"], kw["method"]

    def aug(s, z, q):
        f, fdot = _push_batch(fun, s, z[:n], q[:m], np.reshape(z[n:], (k, n)),
                              np.reshape(q[m:], (k, m)))
        return np.concatenate([f, np.ravel(fdot)])

    def augjac(s, z, q):
        # ∂(f, ∂f·S)/∂y by one batched forward sweep (n directions over the k inner ones):
        # J on top, the couplings Cᵢ = ∂(∂f·Sᵢ)/∂y below; the Newton matrix is then exact
        # (without the Cᵢ Newton stalls where they are large, e.g. Robertson's kinetics)
        col = jacfwd(lambda y: aug(s, np.concatenate([y, z[n:]]), q))(z[:n])
        return _block_lower(col, n, k + 1, method)

    return dict(kw, fun=aug, jac=augjac, rtol=_tiled(kw["rtol"], k + 1),
                atol=_tiled(kw["atol"], k + 1), y0_active=True, primal=None)


def _sensitivities(tans, ans, y0, t, p, kw):
    """``Ẏ`` for the tangents ``(ẏ₀, ṫ, ṗ)`` by forward sensitivities (``ans`` is used only
    when ``t`` has a tangent)."""
    ty0, tt, tp = tans
    fun = kw["fun"]
    n, m, nt = shape_of(y0)[0], shape_of(p)[0], shape_of(t)[0]
    b = next(lead(d, x) for d, x in zip(tans, (y0, t, p)) if d is not None)
    k = int(np.prod(b, dtype=int))
    out = None
    s0 = ty0
    if tt is not None:                       # moving t₀ moves the start along the flow
        df0 = fun(t[0], y0, p) * tt[..., :1]
        s0 = -df0 if s0 is None else s0 - df0
    if s0 is not None or tp is not None:
        S0 = np.zeros((k, n)) if s0 is None else np.reshape(s0, (k, n))
        P = np.zeros((k, m)) if tp is None else np.reshape(tp, (k, m))
        z = ivp_p(np.concatenate([y0, np.ravel(S0)]), t,
                  np.concatenate([p, np.ravel(P)]), **_augmented(kw, n, m, k))
        s = np.reshape(z[:, n:], (nt, k, n))
        out = np.reshape(np.moveaxis(s, 0, 1), b + (nt, n)) if b else s[:, 0]
    if tt is not None:                       # moving tᵢ moves the sample along the flow
        f = np.stack([fun(t[i], ans[i], p) for i in range(nt)])
        out = f * tt[..., None] if out is None else out + f * tt[..., None]
    return out


def _ivp_jvp(tans, ans, y0, t, p, **kw):
    # A tangent is pushed forward whatever ``sensitivity`` says: the adjoint would need one
    # cotangent per component of every sample to give it.
    return _sensitivities(tans, ans, y0, t, p, kw)


def _by_forward(kw, directions, bsz):
    sens = kw["sens"]
    return sens == "forward" or (sens == "auto"
                                 and directions <= max(_AUTO_DIRECTIONS, bsz))


def _ivp_vjp(g, ans, y0, t, p, **kw):
    """``ȳ₀``, ``p̄`` by forward sensitivities or the adjoint; ``t̄ᵢ = gᵢ·f(tᵢ, Y(tᵢ))`` and
    ``t̄₀ = -λ(t₀⁺)·f(t₀, y₀)`` with ``λ(t₀⁺) = ȳ₀ - g₀``."""
    fun = kw["fun"]
    n, m, nt = shape_of(y0)[0], shape_of(p)[0], shape_of(t)[0]
    nb = ndim_of(g) - 2
    bsz = int(np.prod(shape_of(g)[:nb], dtype=int))
    ny = n if kw["y0_active"] else 0
    if _by_forward(kw, ny + m, bsz):
        # one augmented solve with a direction per input value, then gᵀ·Ẏ
        e = np.eye(ny + m)
        ty0 = e[:, :n] if ny else None
        tp = e[:, ny:] if m else None
        if ty0 is None and tp is None:
            la = np.zeros(shape_of(g)[:nb] + (n + m,))
        else:
            ydot = _sensitivities((ty0, None, tp), ans, y0, t, p, dict(kw, sens="forward"))
            flat = np.reshape(ydot, (ny + m, nt * n))
            la = np.reshape(g, shape_of(g)[:nb] + (nt * n,)) @ flat.T
            if not ny:
                la = np.concatenate([np.zeros(shape_of(la)[:-1] + (n,)), la], axis=-1)
    else:
        la = adjoint_p(g, y0, t, p, **kw)
    lam0 = la[..., :n]
    # a sample with a zero cotangent moves nothing: f is evaluated only where one is not.
    # A tracked cotangent (reverse over reverse) always takes the product: its value may be
    # zero where its derivative is not (d/dg of g·f(tᵢ) is f(tᵢ)).
    gv = unbox(g)
    tracked = type(g) in box_types
    gt = [-np.sum((lam0 - g[..., 0, :]) * fun(t[0], y0, p), axis=-1)]
    for i in range(1, nt):
        if tracked or np.any(gv[..., i, :] != 0):
            gt.append(np.sum(g[..., i, :] * fun(t[i], ans[i], p), axis=-1))
        else:
            gt.append(np.zeros(shape_of(g)[:nb]))
    return [lam0, np.stack(gt, axis=-1), la[..., n:]]


ivp_p = defprim("solve_ivp", _solve, jvp=_ivp_jvp, vjp=_ivp_vjp)


# ``adjoint_p(g, y0, t, p, **kw)``: for cotangents g, b+(T, n), of ivp_p's samples
# ``Y(y0, t, p)``, the pullback ``[gᵀ∂Y/∂y0 | gᵀ∂Y/∂p]``, b+(n + m,): the dense forward solution
# and the backward adjoint sweep. Its own derivatives are second derivatives of ``Y``; by
# the symmetry of those, each is a forward sensitivity pulled back by ``g``:
# ``d[gᵀ∂Y/∂x]·θ̇ = ∂/∂x ⟨g, Ẏ(θ; θ̇)⟩`` with ``Ẏ`` the forward sensitivities, θ = (y0, t, p),
# x = (y0, p). odeint's reverse mode is this same primitive; ``forward`` (a pair of functions,
# the samples and their sensitivities) lets odeint's own forward mode serve the higher
# orders (None: ivp_p's).

def _adjoint(g, y0, t, p, *, fun, jac, method, rtol, atol, opts, sens, y0_active, primal,
             forward=None, refine=None):
    n, m, nt = shape_of(y0)[0], shape_of(p)[0], shape_of(t)[0]
    b = shape_of(g)[:-2]
    gs = np.reshape(g, (-1, nt, n))
    step = dict(opts).get("max_step", np.inf)
    J = jac if jac is not None else _ad_jac(fun)
    sol_atol = np.asarray(atol, dtype=float)
    ysol = None
    if primal is not None and primal.covers(y0, t, p):
        ysol = primal.sol                 # the primal solve's own dense output
    if nt == 1 or t[0] == t[-1]:
        lam, a = np.sum(gs, axis=1), np.zeros((gs.shape[0], m))
    else:
        # ``refine``: a forward solve this much tighter (odeint: 1e-2, so that its
        # interpolant's jumps between steps stop costing the sweep steps)
        if ysol is None or refine is not None:
            ysol = _dense_forward(fun, J, method, t, y0, p, rtol, sol_atol, step,
                                  1.0 if refine is None else refine)
        lam, a = adjoint_sweep(lambda y, s: _jac_yp(fun, n, y, s, p), ysol, t, gs, m,
                               # (λ, a) is not the state: its tolerances are the tightest
                               rtol=float(np.min(rtol)), atol=float(np.min(sol_atol)),
                               max_step=step,
                               # a stiff adjoint goes to LSODA (dense Jacobian, BDF past
                               # 1000 unknowns): SciPy's BDF fails on Robertson's adjoint
                               method="LSODA" if _implicit(method) else method,
                               # few values: one Jacobian per time serves rhs and Newton
                               vjp=None if n + m <= _AUTO_DIRECTIONS else
                               (lambda y, s, lam: _vjp_yp(fun, y, s, p, lam)),
                               what=f"the reverse mode of {_name(method)} (the adjoint "
                                    "solve)", fix=_FIX if refine is not None else _FIX_IVP)
    return np.reshape(np.concatenate([lam, a], axis=-1), b + (n + m,))


def _dense_forward(fun, J, method, t, y0, p, rtol, sol_atol, step, refine):
    return dense_solution(lambda s, y: fun(s, y, p), lambda s, y: _dense(J(s, y, p))
                              if method == "LSODA" else J(s, y, p), (t[0], t[-1]), y0,
                          rtol=np.maximum(np.asarray(rtol, dtype=float) * refine,
                                          100 * np.finfo(float).eps),
                          atol=sol_atol * refine, max_step=step, method=method,
                          what=f"the reverse mode of {_name(method)} (the dense forward "
                               "solve)")


def _forward(kw):
    """``(Y, Ẏ)``: the samples and their forward sensitivities, as functions of
    ``(y0, t, p)``; odeint gives its own (``kw["forward"]``), solve_ivp uses ivp_p's."""
    if kw.get("forward") is not None:
        return kw["forward"]
    fwd = dict(kw, sens="forward" if kw["sens"] == "adjoint" else kw["sens"])
    fwd.pop("forward", None)
    return (lambda y0, t, p: ivp_p(y0, t, p, **fwd),
            lambda d, ans, y0, t, p: _sensitivities(d, ans, y0, t, p, fwd))


def _pull_jvp(g, d, y0, t, p, nb, kw):
    """``∂/∂(y0, t, p) ⟨g, Ẏ(θ; d)⟩``; ``g`` carries ``nb`` batch axes of its own."""
    primal, sens = _forward(kw)

    def ydot(y0, t, p):
        ans = primal(y0, t, p) if d[1] is not None else None
        return sens(d, ans, y0, t, p)
    cts = pull_linear(ydot, [y0, t, p], g, nb)
    lead_ = shape_of(g)[:nb]
    return [np.zeros(lead_ + shape_of(x)) if c is None else c for c, x in zip(cts, (y0, t, p))]


def _adjoint_jvp(tans, ans, g, y0, t, p, **kw):
    tg, dirs = tans[0], tans[1:]
    out = None if tg is None else adjoint_p(tg, y0, t, p, **kw)
    if any(d is not None for d in dirs):
        b = next(lead(d, x) for d, x in zip(dirs, (y0, t, p)) if d is not None)
        nb = ndim_of(g) - 2
        if b:                         # one pullback per direction: g has batch axes of its own
            flat = [None if d is None else np.reshape(d, (-1,) + shape_of(x))
                    for d, x in zip(dirs, (y0, t, p))]
            parts = []
            for j in range(int(np.prod(b, dtype=int))):
                c = _pull_jvp(g, [None if d is None else d[j] for d in flat], y0, t, p, nb, kw)
                parts.append(np.concatenate([c[0], c[2]], axis=-1))
            second = np.reshape(np.stack(parts), b + shape_of(ans))
        else:
            c = _pull_jvp(g, list(dirs), y0, t, p, nb, kw)
            second = np.concatenate([c[0], c[2]], axis=-1)
        out = second if out is None else out + second
    return out


def _adjoint_vjp(w, ans, g, y0, t, p, **kw):
    """``ḡ = Ẏ(θ; (w_y0, 0, w_p))`` and ``θ̄ = ∂/∂θ ⟨g, Ẏ(θ; (w_y0, 0, w_p))⟩``."""
    n = shape_of(y0)[0]
    nb = ndim_of(w) - ndim_of(ans)          # the sweep's own batch of cotangents
    wy, wp = w[..., :n], w[..., n:]
    gbar = _forward(kw)[1]((wy, None, wp), None, y0, t, p)
    if nb == 0:
        return [gbar] + _pull_jvp(g, (wy, None, wp), y0, t, p, 0, kw)
    bw = shape_of(w)[:nb]
    wy = np.reshape(wy, (-1,) + shape_of(wy)[nb:])
    wp = np.reshape(wp, (-1,) + shape_of(wp)[nb:])
    rows = [_pull_jvp(g, (wy[j], None, wp[j]), y0, t, p, 0, kw)
            for j in range(shape_of(wy)[0])]
    return [gbar] + [np.reshape(np.stack([r[i] for r in rows]), bw + shape_of(x))
                     for i, x in enumerate((y0, t, p))]


adjoint_p = defprim("ode_adjoint", _adjoint, jvp=_adjoint_jvp, vjp=_adjoint_vjp)


# ----- solve_ivp: SciPy's entry point -----
def _tracked(x):
    return type(x) in box_types


def _times(parts):
    """One 1-D array of times from scalars and arrays, tracked or not."""
    pieces = [np.reshape(q, (-1,)) for q in parts]
    if not any(_tracked(q) for q in pieces):
        return np.concatenate([np.asarray(q, dtype=float) for q in pieces])
    return np.concatenate(pieces)


def _free_dense(method):
    """Whether the solver's dense output costs no evaluations of ``fun`` (DOP853's does: three
    per step, which would change ``nfev`` from what SciPy's own call reports)."""
    if isinstance(method, str):
        return method in ("RK45", "RK23", "Radau", "BDF", "LSODA")
    return isinstance(method, type) and issubclass(
        method, (si.RK45, si.RK23, si.Radau, si.BDF, si.LSODA))


def _as_array(x):
    """A list of values some of which are tracked, as one tracked array."""
    if isinstance(x, (list, tuple)) and any(_tracked(a) for a in flatten(list(x))[0]):
        from .. import numpy as anp
        return anp.array(x)
    return x


def _samples_at(y0, t0, ts, p, kw):
    """``Y(tsᵢ)`` for 1-D times ``ts`` in any order: ``ivp_p`` wants its samples in the
    direction of integration (the farthest last, it ends the solve), so they go in sorted by
    their distance from ``t₀`` and come back in the order given."""
    order = np.argsort(np.abs(np.asarray(unbox(ts), dtype=float) - float(unbox(t0))),
                       kind="stable")
    Y = ivp_p(y0, _times([t0, ts[order]]), p, **kw)[1:]
    return Y[np.argsort(order)]


class _Solution(si.OdeSolution):
    """The dense output ``sol(t)``: SciPy's ``OdeSolution`` (its attributes and, at plain
    inputs, its very values), differentiable in ``y0`` and ``args`` and in ``t`` (``f(t, y(t))``)
    by the same sensitivities as ``.y``, one solve per call."""

    def __init__(self, ode, y0, t0, p, kw):        # shares SciPy's interpolants, no copy
        self.__dict__.update(ode.__dict__)
        self.ode, self._args = ode, (y0, t0, p, kw)

    def __getattr__(self, name):          # anything SciPy sets later on its own object
        return getattr(self.__dict__["ode"], name)

    def __call__(self, t):
        y0, t0, p, kw = self._args
        if not any(_tracked(v) for v in (t, y0, t0, p)):
            return self.ode(t)
        scalar = np.ndim(unbox(t)) == 0
        ts = np.reshape(t, (-1,)) if _tracked(t) else np.reshape(np.asarray(t, float), (-1,))
        Y = _samples_at(y0, t0, ts, p, kw)
        return Y[0] if scalar else Y.T


def _event_times(events, found, y0, t0, p, kw, f, call_args):
    """The event times SciPy found, each made a function of ``(y0, t₀, p)`` by two Newton
    steps on ``g(t, Y(t)) = 0`` that keep SciPy's value (``G - stop_gradient(G)`` is 0):
    ``t ← t - (G - G₀)/(∂g/∂t + ∂g/∂y·f)``. The first step gives the implicit function
    theorem's derivative, the second makes it exact to third order."""
    te = np.asarray([s for _, s in found], dtype=float)
    for _ in range(2):
        # events of several functions are found out of time order (SciPy lists them by
        # function): _samples_at sorts them for the solve
        Y = _samples_at(y0, t0, te, p, kw)
        new = []
        for j, (i, _) in enumerate(found):
            ev = events[i]
            s, y = te[j], Y[j]
            G, dG = jvp(lambda s, y: np.reshape(ev(s, y, *call_args), ()),
                        (s, y), (np.ones_like(unbox(s)), f(s, y, p)))
            if not np.all(np.isfinite(unbox(dG))) or unbox(dG) == 0:
                raise ValueError(
                    f"solve_ivp: event {i} at t = {float(unbox(s))!r} is a tangency (its "
                    "function does not change along the solution there), so the event time "
                    "has no derivative. Use an event that crosses zero transversally.")
            new.append(s - (G - stop_gradient(G)) / dG)
        te = _times(new)
    return te


def solve_ivp(fun, t_span, y0, method="RK45", t_eval=None, dense_output=False, events=None,
              vectorized=False, args=(), sensitivity="auto", **options):
    """``scipy.integrate.solve_ivp`` whose result is differentiable in ``y0``, ``t_span``,
    ``t_eval`` and the tracked values in ``args``: SciPy's signature and ``OdeResult``.

    ``fun(t, y, *args)`` is written with NumPy. The implicit methods (BDF, Radau, LSODA) get
    the AD Jacobian ``∂fun/∂y`` unless ``jac=`` is given. Forward-mode transforms (``jvp``,
    ``jacfwd``) get forward sensitivities integrated with the state by the same method.
    Reverse-mode ones (``grad``, ``vjp``, ``jacrev``) pull back by
    ``sensitivity="forward"`` (one sensitivity per input value), ``"adjoint"`` (one
    backward solve along the stored forward solution, whatever the number of parameters)
    or ``"auto"`` (forward for at most 16 input values, else the adjoint). They are
    derivatives of the ODE's solution, as accurate as the solves: pass tight
    ``rtol``/``atol`` when they matter.

    - Without ``t_eval``, ``.t`` holds SciPy's step times, chosen by the step control; the
      derivative of ``.y`` holds those times fixed (only ``t_span``'s ends and event times
      move with the inputs).
    - ``dense_output=True``: ``sol(t)`` (an ``OdeSolution``) is differentiable too, also in
      ``t`` when the solve itself is plain (one sensitivity solve per call).
    - ``events``: ``t_events`` and ``y_events`` are differentiable (the event time by the
      implicit function theorem); a terminal event's time ends ``.t``. An event met
      tangentially has no derivative and raises ``ValueError``.
    - A solver failure (SciPy's status -1) raises ``RuntimeError`` with SciPy's message;
      complex ``y0`` is solved but not differentiated (``NotImplementedError``). ``fun`` or an
      event that closes over a tracked value is a ``TypeError``: pass the value in ``args``.
    - ``rtol`` and ``atol`` may be arrays of the state's size, as in SciPy.

    >>> import autodiff as ad
    >>> def y_end(y0):
    ...     return solve_ivp(lambda t, y: -2.0 * y, (0.0, 1.0), y0, method="BDF",
    ...                      rtol=1e-10, atol=1e-12).y[:, -1]
    >>> np.round(ad.jacfwd(y_end)(np.array([1.0, 3.0])), 6)       # e^{-2} I
    array([[0.135335, 0.      ],
           [0.      , 0.135335]])
    """
    if sensitivity not in _SENSITIVITIES:
        raise ValueError(f"sensitivity must be one of {_SENSITIVITIES}, got {sensitivity!r}.")
    if args is None:
        args = ()
    try:
        args = tuple(args)
    except TypeError as exc:            # SciPy's own message
        raise TypeError("Supplied 'args' cannot be unpacked. Please supply `args` as a tuple "
                        "(e.g. `args=(arg,)`)") from exc
    leaves, tree = flatten(list(args))
    slots = [i for i, a in enumerate(leaves) if _tracked(a)]
    plain_args = tuple(unflatten(tree, [unbox(a) for a in leaves]))
    t0, t1 = t_span
    tracked = (slots or _tracked(y0) or _tracked(t0) or _tracked(t1)
               or (t_eval is not None and _tracked(t_eval)))
    opts = dict(options)
    if _implicit(method) and opts.get("jac") is None:
        opts["jac"] = _ad_jac((lambda t, y, *a: fun(t, y[:, None], *a)) if vectorized
                              else fun)
    y0 = _as_array(y0)
    t_eval = None if t_eval is None else _as_array(t_eval)
    tracked = tracked or _tracked(y0) or (t_eval is not None and _tracked(t_eval))
    # differentiated, the dense output is kept where it is free: the adjoint runs along it
    try:
        res = si.solve_ivp(fun, (unbox(t0), unbox(t1)), unbox(y0), method=method,
                           t_eval=None if t_eval is None else unbox(t_eval),
                           dense_output=dense_output or bool(tracked) and _free_dense(method),
                           events=events,
                           vectorized=vectorized, args=plain_args or None, **opts)
    except TypeError as exc:
        s0, z0 = unbox(t0), np.asarray(unbox(y0), dtype=float)
        z0 = z0[:, None] if vectorized else z0
        evs = ([] if events is None else list(events) if isinstance(events, (list, tuple))
               else [events])
        _refuse_closures(exc, "solve_ivp", [("fun", lambda: fun(s0, z0, *plain_args))] + [
            ("events", lambda e=e: e(s0, np.asarray(unbox(y0), dtype=float), *plain_args))
            for e in evs])
    if res.status < 0:
        raise _failed(f"solve_ivp ({_name(method)})", res.message, _FIX_IVP)
    if type(res.t) is not np.ndarray:
        # SciPy returns empty lists for an empty ``t_eval``; its documented types are
        # arrays ``t`` (0,) and ``y`` (n, 0), which every later step (and the user) expects.
        y0_ = np.asarray(unbox(y0))
        res.t = np.asarray(res.t, dtype=float)
        res.y = np.zeros((y0_.shape[0] if y0_.ndim else 1, 0),
                         dtype=np.result_type(y0_, float))
    if not (tracked or dense_output) or (not tracked and np.iscomplexobj(res.y)):
        return res
    if np.iscomplexobj(res.y):
        raise NotImplementedError("solve_ivp: derivatives of a complex solution are not "
                                  "supported; split y into real and imaginary parts.")

    # ----- the differentiable samples -----
    shapes = [shape_of(leaves[i]) for i in slots]
    sizes = [int(np.prod(s, dtype=int)) for s in shapes]
    p = (np.concatenate([np.ravel(leaves[i]) for i in slots]) if slots else np.zeros(0))
    y0v = y0 if _tracked(y0) else np.asarray(y0, dtype=float)
    n = shape_of(y0v)[0]

    def call_args(p):
        vals, k = list(leaves), 0
        for i, size, sh in zip(slots, sizes, shapes):
            vals[i] = np.reshape(p[k:k + size], sh)
            k += size
        return unflatten(tree, vals)

    def F(s, y, p):
        out = fun(s, np.reshape(y, (n, 1)) if vectorized else y, *call_args(p))
        return _vector(out)

    shared = {k: opts[k] for k in ("first_step", "max_step", "min_step") if k in opts}
    atol = opts.get("atol", 1e-6)
    primal = _Primal(unbox(y0v), float(unbox(t0)), unbox(p), res.t, res.y.T, res.sol)
    if not dense_output:
        res.sol = None
    kw = dict(fun=F, jac=None, method=method, rtol=_tol(opts.get("rtol", 1e-3)),
              atol=_tol(atol),
              opts=tuple(shared.items()), sens=sensitivity,
              # t₀'s cotangent needs ȳ₀'s: t̄₀ = -(ȳ₀ - g₀)·f(t₀, y₀)
              y0_active=_tracked(y0) or _tracked(t0),
              primal=primal)
    if not tracked:              # plain inputs: SciPy's result, with sol(t) differentiable in t
        res.sol = _Solution(res.sol, y0v, t0, p, kw)
        return res

    ev_list = ([] if events is None else list(events) if isinstance(events, (list, tuple))
               else [events])
    found = [(i, s) for i, te in enumerate(res.t_events or []) for s in te]
    te = None
    if found:
        primal.add([s for _, s in found],
                   [y for ye in res.y_events for y in ye])
        te = _event_times(ev_list, found, y0v, t0, p, kw, F, args)
    if t_eval is None:
        ts = list(res.t[1:-1])
        last = t1 if res.status == 0 else None
        if res.status == 1:            # stopped by a terminal event: the last one found
            last = te[int(np.argmin([abs(s - res.t[-1]) for _, s in found]))]
        parts = [t0, np.asarray(ts, dtype=float)] + ([last] if res.t.shape[0] > 1 else [])
        times = _times(parts)
        Y = ivp_p(y0v, times, p, **kw)
        out_t = times if _tracked(times) else res.t
        y = Y.T if res.t.shape[0] > 1 else Y[:1].T
    else:
        k = res.t.shape[0]
        te_ = np.reshape(t_eval, (-1,))[:k]
        times = _times([t0, te_])
        Y = ivp_p(y0v, times, p, **kw)[1:]
        out_t = times[1:] if _tracked(times) else res.t
        y = Y.T
    res.t, res.y = out_t, y
    if found:
        Ye = _samples_at(y0v, t0, te, p, kw)
        t_events, y_events, j = [], [], 0
        for te_i in res.t_events:
            c = len(te_i)
            t_events.append(te[j:j + c] if c else te_i)
            y_events.append(Ye[j:j + c] if c else res.y_events[len(t_events) - 1])
            j += c
        res.t_events, res.y_events = t_events, y_events
    if dense_output:
        res.sol = _Solution(res.sol, y0v, t0, p, kw)
    return res
