"""``scipy.integrate`` with derivatives: quadrature of samples, and ``odeint``.

``trapezoid``, ``cumulative_trapezoid`` and ``simpson`` are weighted sums of the samples
(SciPy's formulas, composed of differences, slices and sums), differentiable in ``y``, ``x``
and ``dx``. SciPy's versions convert with ``np.asarray`` and so never dispatch.

``odeint(func, y0, t, args)`` solves ``dy/dt = func(y, t, *args)`` and is one primitive whose
rules are ODE solves themselves, built from derivatives of ``func``:

- JVP (forward sensitivities): ``ds/dt = ∂f/∂y·s + ∂f/∂p·ṗ``, ``s(t₀) = ẏ₀ - f(y₀, t₀)·ṫ₀``,
  and ``ẏ(tᵢ) = s(tᵢ) + f(y(tᵢ), tᵢ)·ṫᵢ``.
- VJP (adjoint): backwards over each interval ``dλ/dt = -λ·∂f/∂y``, ``da/dt = -λ·∂f/∂p``,
  with the jump ``λ += ḡᵢ`` at each output time; ``ȳ₀ = λ(t₀)``, ``p̄ = a(t₀)``,
  ``t̄ᵢ = ḡᵢ·f(y(tᵢ), tᵢ)`` and ``t̄₀ = -λ(t₀⁺)·f(y₀, t₀)``. Only ``(λ, a)`` is integrated
  backwards (LSODA, with the AD Jacobian ``-∂f/∂yᵀ``), along the dense output of a forward
  solve: re-integrating a stiff state backwards blows up.

The JVP calls ``odeint`` again on the augmented system, the VJP calls ``odeint_adjoint``, a
primitive whose own rules are forward sensitivities pulled back (second derivatives are
symmetric), so both are differentiable in turn (each order costs a larger system). Batches
of directions ride along as extra state. A solver failure raises ``RuntimeError``; SciPy's
``odeint`` only warns and returns garbage.

>>> import autodiff as ad
>>> ys = lambda k: odeint(lambda y, t, k: -k * y, 1.0, np.array([0.0, 1.0]), (k,),
...                       rtol=1e-10, atol=1e-10)[-1, 0]
>>> round(float(ad.grad(ys)(0.5)), 6)                # d/dk e^{-k} = -e^{-k}
-0.606531
"""
import warnings

import numpy as np
import scipy.integrate as si
from scipy import sparse

from ..api import _level, jacfwd
from ..core import box_types, lead, ndim_of, shape_of
from ..ops import dependency
from ..ops.define import defprim, norm_axes
from ..reverse import Variable, backward_pass
from .stiff import ivp_jacobian  # noqa: F401  (the AD Jacobian for solve_ivp's jac=)

__all__ = ["trapezoid", "cumulative_trapezoid", "simpson", "odeint", "ivp_jacobian"]


# ----- Helpers -----
def _arr(a):
    return a if type(a) in box_types else np.asarray(a, dtype=float)


def _along(axis, nd, s):
    """An index applying ``s`` along (negative) ``axis`` of an ``nd``-dimensional array."""
    return (slice(None),) * (axis % nd) + (s,)


def _div0(a, b):
    """``a/b``, 0 where ``b == 0`` (SciPy's ``true_divide(..., where=b != 0)``)."""
    nz = b != 0
    return np.where(nz, a / np.where(nz, b, 1.0), 0.0)


def _spacing(x, nd, axis):
    """Differences of ``x`` along ``axis``, shaped to broadcast against ``y``."""
    if ndim_of(x) == 1:
        s = [1] * nd
        s[axis] = -1
        return np.reshape(np.diff(x), tuple(s))
    if ndim_of(x) != nd:
        raise ValueError("If given, shape of x must be 1-D or the same as y.")
    return np.diff(x, axis=axis)


# ----- Quadrature of samples -----
def trapezoid(y, x=None, dx=1.0, axis=-1):
    """``Σ (x_{i+1} - x_i)(y_{i+1} + y_i)/2`` along ``axis`` (``np.trapezoid``).

    >>> float(trapezoid(np.array([1.0, 2.0, 3.0]), dx=0.5))
    2.0
    """
    if x is None and type(dx) in box_types:      # NumPy dispatches on y and x only
        return dx * np.trapezoid(y, axis=axis)
    return np.trapezoid(y, x, dx=dx, axis=axis)


def cumulative_trapezoid(y, x=None, dx=1.0, axis=-1, initial=None):
    """Running trapezoid sums along ``axis``; ``initial=0`` prepends a zero as in SciPy.

    >>> cumulative_trapezoid(np.array([1.0, 2.0, 3.0]), initial=0)
    array([0. , 1.5, 4. ])
    """
    y = _arr(y)
    nd = ndim_of(y)
    axis = norm_axes(axis, nd)[0]
    d = dx if x is None else _spacing(_arr(x), nd, axis)
    hi, lo = _along(axis, nd, slice(1, None)), _along(axis, nd, slice(None, -1))
    res = np.cumsum(d * (y[hi] + y[lo]) / 2.0, axis=axis)
    if initial is not None:
        if initial != 0:
            raise ValueError("`initial` must be `None` or `0`.")
        s = list(shape_of(res))
        s[axis] = 1
        res = np.concatenate([np.zeros(tuple(s)), res], axis=axis)
    return res


def _basic_simpson(y, start, stop, x, dx, axis):
    """Composite Simpson over the pairs of intervals ``[start, stop)``; uneven spacing
    weighs each pair by its own parabola."""
    nd = ndim_of(y)
    s0, s1, s2 = (_along(axis, nd, slice(start + k, stop + k, 2)) for k in range(3))
    if x is None:
        return np.sum(y[s0] + 4.0 * y[s1] + y[s2], axis=axis) * (dx / 3.0)
    h = np.diff(x, axis=axis)
    h0, h1 = h[s0], h[s1]
    hsum, hprod = h0 + h1, h0 * h1
    h0divh1 = _div0(h0, h1)
    tmp = hsum / 6.0 * (y[s0] * (2.0 - _div0(1.0, h0divh1)) + y[s1] * (hsum * _div0(hsum, hprod))
                        + y[s2] * (2.0 - h0divh1))
    return np.sum(tmp, axis=axis)


def simpson(y, x=None, *, dx=1.0, axis=-1):
    """Simpson's rule along ``axis`` (SciPy ≥ 1.11: an even number of samples closes with
    Cartwright's correction for the last interval).

    >>> round(float(simpson(np.array([0.0, 1.0, 4.0, 9.0]), dx=1.0)), 12)     # ∫₀³ x² dx
    9.0
    """
    y = _arr(y)
    nd = ndim_of(y)
    axis = norm_axes(axis, nd)[0]
    n = shape_of(y)[axis]
    if x is not None:
        x = _arr(x)
        if ndim_of(x) == 1:
            s = [1] * nd
            s[axis] = shape_of(x)[0]
            x = np.reshape(x, tuple(s))
        elif ndim_of(x) != nd:
            raise ValueError("If given, shape of x must be 1-D or the same as y.")
        if shape_of(x)[axis] != n:
            raise ValueError("If given, length of x along axis must be the same as y.")
    if n % 2 == 1:
        return _basic_simpson(y, 0, n - 2, x, dx, axis)

    def at(i):
        return _along(axis, nd, i)
    if n == 2:
        h = dx if x is None else x[at(-1)] - x[at(-2)]
        return 0.5 * h * (y[at(-1)] + y[at(-2)])
    result = _basic_simpson(y, 0, n - 3, x, dx, axis)
    h0, h1 = (dx, dx) if x is None else (x[at(-2)] - x[at(-3)], x[at(-1)] - x[at(-2)])
    alpha = _div0(2.0 * h1 * h1 + 3.0 * h0 * h1, 6.0 * (h1 + h0))
    beta = _div0(h1 * h1 + 3.0 * h0 * h1, 6.0 * h0)
    eta = _div0(h1 * h1 * h1, 6.0 * h0 * (h0 + h1))
    return result + alpha * y[at(-1)] + beta * y[at(-2)] - eta * y[at(-3)]


# ----- Dense forward solution and backward adjoint (shared by the ODE solvers) -----
def _failed(what, detail, fix):
    return RuntimeError(f"{what} failed ({detail}); its result would be wrong, so none is "
                        f"returned. {fix}")


_FIX = ("Raise mxstep, loosen rtol/atol, or check that func stays finite along the "
        "solution (a stiff problem needs tolerances its solver can meet).")


def dense_solution(fun, jac, t_span, y0, *, rtol, atol, max_step=np.inf, method="LSODA",
                   what="the forward solve"):
    """The forward solution ``y(s)`` of ``y' = fun(s, y)`` on ``t_span`` as a callable (the
    solver's dense output), for a backward sweep that must not integrate ``y`` backwards.

    ``jac(s, y) = ∂fun/∂y`` serves the implicit methods; LSODA switches between Adams and BDF
    as the problem turns stiff. A solver failure raises.
    """
    sol = si.solve_ivp(fun, t_span, y0, method=method, jac=jac, rtol=rtol, atol=atol,
                       max_step=max_step, dense_output=True)
    if sol.status < 0:
        raise _failed(what, sol.message, _FIX)
    return sol.sol


def adjoint_sweep(jac_yp, ysol, t, g, m, *, rtol, atol, max_step=np.inf, method=None,
                  what="the adjoint solve"):
    """``(λ(t₀), a)`` for cotangents ``g`` (B, T, n) of the samples ``y(tᵢ)`` of
    ``y' = f(y, s, p)``, ``p`` of size ``m``.

    Backwards over each ``[tᵢ₋₁, tᵢ]``: ``λ' = -λ·∂f/∂y``, ``a' = -λ·∂f/∂p`` from
    ``λ(t_{T-1}) = g_{T-1}``, ``a = 0``, with the jump ``λ += gᵢ₋₁`` at each sample; then
    ``λ(t₀) = Σᵢ gᵢ·∂y(tᵢ)/∂y₀`` and ``a = Σᵢ gᵢ·∂y(tᵢ)/∂p``. Only ``(λ, a)`` is integrated;
    ``y(s)`` comes from ``ysol``, the stored forward solution, because integrating a stiff
    state backwards blows up. ``jac_yp(y, s) = [∂f/∂y | ∂f/∂p]``, shape (n, n + m). The
    system is linear in ``(λ, a)`` and as stiff as the forward one, so the implicit methods
    get its exact Jacobian ``[[I⊗(-∂f/∂yᵀ), 0], [I⊗(-∂f/∂pᵀ), 0]]``: dense for LSODA (the
    default), sparse for BDF and Radau (the default past 1000 unknowns, where a dense one
    would be large).
    """
    bsz, nt, n = g.shape
    k = bsz * n
    size = k + bsz * m
    if method is None:
        method = "LSODA" if size <= 1000 else "BDF"
    memo = [None, None]

    def jac_at(s):                      # the solver asks for rhs and Jacobian at one s
        if memo[0] != s:
            memo[0], memo[1] = s, jac_yp(ysol(s), s)
        return memo[1]

    def rhs(s, z):
        j = jac_at(s)
        lam = np.reshape(z[:k], (bsz, n))
        return np.concatenate([np.ravel(lam @ -j[:, :n]), np.ravel(lam @ -j[:, n:])])

    if method == "LSODA":
        eye = np.eye(bsz)

        def jac(s, z):
            j = jac_at(s)
            return np.block([[np.kron(eye, -j[:, :n].T), np.zeros((k, bsz * m))],
                             [np.kron(eye, -j[:, n:].T), np.zeros((bsz * m, bsz * m))]])
    else:
        eye = sparse.identity(bsz, format="csr")

        def jac(s, z):
            j = jac_at(s)
            left = sparse.vstack([sparse.kron(eye, -j[:, :n].T), sparse.kron(eye, -j[:, n:].T)])
            return sparse.hstack([left, sparse.csr_matrix((size, bsz * m))], format="csc")

    lam, a = np.array(g[:, nt - 1], dtype=float), np.zeros((bsz, m))
    for i in range(nt - 1, 0, -1):
        if t[i] != t[i - 1]:
            sol = si.solve_ivp(rhs, (t[i], t[i - 1]), np.concatenate([np.ravel(lam),
                               np.ravel(a)]), method=method, jac=jac, rtol=rtol, atol=atol,
                               max_step=max_step)
            if sol.status < 0:
                raise _failed(what, sol.message, _FIX)
            z = sol.y[:, -1]
            lam, a = np.reshape(z[:k], (bsz, n)), np.reshape(z[k:], (bsz, m))
        lam = lam + g[:, i - 1]
    if not (np.all(np.isfinite(lam)) and np.all(np.isfinite(a))):
        raise _failed(what, "non-finite adjoint", _FIX)
    return lam, a


# ----- odeint: the primitives on flat vectors -----
# ``odeint_p(y0, t, p, func=f, ...)``: y0 (n,), t (T,), p (m,) the flattened parameters,
# ``f(y, t, p)`` -> (n,). The result is (T, n).

def _solve(y0, t, p, func, rtol, atol, mxstep, hmax):
    # SciPy's odeint only warns when LSODA gives up and returns the rows it did not reach
    # as garbage; made an error here (other warnings, e.g. from func, pass through). The
    # filter is process-wide while it is set, as every use of catch_warnings is.
    with warnings.catch_warnings():
        warnings.simplefilter("error", si.ODEintWarning)
        try:
            return si.odeint(lambda y, s: func(y, s, p), y0, t, rtol=rtol, atol=atol,
                             mxstep=mxstep, hmax=hmax)
        except si.ODEintWarning as e:
            msg = str(e).split(" Run with full_output")[0]
            raise _failed("odeint", f"LSODA: {msg}",
                          f"Raise mxstep (the steps allowed per output interval, now "
                          f"{mxstep or 500}), loosen rtol/atol (now {rtol:g}/{atol:g}), or add "
                          "output times; check that func stays finite.") from None


def _jac(func, n, y, s, p):
    """``[∂f/∂y | ∂f/∂p]`` at ``(y, s, p)``, shape (n, n + m): one batched forward sweep."""
    return jacfwd(lambda yp: func(yp[:n], s, yp[n:]))(np.concatenate([y, p]))


def _sensitivity_system(func, n, m, b, with_tp):
    """State ``(y, S)`` with ``S`` of shape b+(n,); parameters ``(p, ṗ)``."""
    def aug(z, s, q):
        y, p = z[:n], q[:m]
        j = _jac(func, n, y, s, p)
        ds = np.reshape(z[n:], b + (n,)) @ j[:, :n].T
        if with_tp:
            ds = ds + np.reshape(q[m:], b + (m,)) @ j[:, n:].T
        return np.concatenate([func(y, s, p), np.ravel(ds)])
    return aug


def _odeint_jvp(tans, ans, y0, t, p, *, func, **opt):
    """Forward sensitivities (``ans`` is used only when ``t`` has a tangent)."""
    ty0, tt, tp = tans
    n, m, nt = shape_of(y0)[0], shape_of(p)[0], shape_of(t)[0]
    b = next(lead(d, x) for d, x in zip(tans, (y0, t, p)) if d is not None)
    out = None
    s0 = ty0
    if tt is not None:                       # moving t₀ moves the start along the flow
        df0 = func(y0, t[0], p) * tt[..., :1]
        s0 = -df0 if s0 is None else s0 - df0
    if s0 is not None or tp is not None:
        z0 = np.concatenate([y0, np.ravel(np.zeros(b + (n,)) if s0 is None else s0)])
        q = p if tp is None else np.concatenate([p, np.ravel(tp)])
        z = odeint_p(z0, t, q, func=_sensitivity_system(func, n, m, b, tp is not None), **opt)
        s = np.reshape(z[:, n:], (nt,) + b + (n,))
        out = np.moveaxis(s, 0, -2) if b else s
    if tt is not None:                       # moving tᵢ moves the sample along the flow
        f = np.stack([func(ans[i], t[i], p) for i in range(nt)])
        out = f * tt[..., None] if out is None else out + f * tt[..., None]
    return out


def _odeint_vjp(g, ans, y0, t, p, *, func, **opt):
    """``ȳ₀ = λ(t₀)`` and ``p̄ = a`` from the adjoint; ``t̄ᵢ = gᵢ·f(y(tᵢ), tᵢ)`` and
    ``t̄₀ = -λ(t₀⁺)·f(y₀, t₀)`` with ``λ(t₀⁺) = λ(t₀) - g₀``."""
    n, nt = shape_of(y0)[0], shape_of(t)[0]
    la = adjoint_p(g, y0, t, p, func=func, **opt)
    lam0 = la[..., :n]
    gt = [-np.sum((lam0 - g[..., 0, :]) * func(y0, t[0], p), axis=-1)]
    gt += [np.sum(g[..., i, :] * func(ans[i], t[i], p), axis=-1) for i in range(1, nt)]
    return [lam0, np.stack(gt, axis=-1), la[..., n:]]


odeint_p = defprim("odeint", _solve, jvp=_odeint_jvp, vjp=_odeint_vjp)


# ``adjoint_p(g, y0, t, p, func=f, ...)``: for cotangents g, b+(T, n), of odeint_p's samples
# ``Y(y0, t, p)``, the pullback ``[gᵀ∂Y/∂y0 | gᵀ∂Y/∂p]``, b+(n + m,): the dense forward solution
# and the backward adjoint sweep. Its own derivatives are second derivatives of ``Y``; by
# the symmetry of those, each is a forward sensitivity pulled back by ``g``:
# ``d[gᵀ∂Y/∂x]·θ̇ = ∂/∂x ⟨g, Ẏ(θ; θ̇)⟩`` with ``Ẏ`` odeint's JVP, θ = (y0, t, p), x = (y0, p).

def _adjoint(g, y0, t, p, func, rtol, atol, mxstep, hmax):
    n, m, nt = shape_of(y0)[0], shape_of(p)[0], shape_of(t)[0]
    b = shape_of(g)[:-2]
    gs = np.reshape(g, (-1, nt, n))
    if nt == 1 or t[0] == t[-1]:
        lam, a = np.sum(gs, axis=1), np.zeros((gs.shape[0], m))
    else:
        step = np.inf if hmax == 0 else hmax
        # The forward solve is cheap next to the sweep (no Jacobian per step); made 100×
        # tighter, its interpolant's jumps between steps stop costing the sweep steps.
        ysol = dense_solution(lambda s, y: func(y, s, p),
                              lambda s, y: _jac(func, n, y, s, p)[:, :n], (t[0], t[-1]), y0,
                              rtol=max(rtol * 1e-2, 100 * np.finfo(float).eps),
                              atol=atol * 1e-2, max_step=step,
                              what="odeint's reverse mode (the dense forward solve)")
        lam, a = adjoint_sweep(lambda y, s: _jac(func, n, y, s, p), ysol, t, gs, m,
                               rtol=rtol, atol=atol, max_step=step,
                               what="odeint's reverse mode (the adjoint solve)")
    return np.reshape(np.concatenate([lam, a], axis=-1), b + (n + m,))



def _pull_linear(fun, xs, g, nb):
    """The cotangents of ``fun``'s arguments ``xs`` for the output cotangent ``g``, which
    carries ``nb`` leading batch axes: one reverse sweep of ``fun`` recorded at ``xs``."""
    with _level() as level:
        vs = [Variable(x, level=level) for x in xs]
        out = fun(*vs)
    if not (type(out) is Variable and out.level == level):
        return [None] * len(xs)
    got = {id(v): c for v, c in backward_pass([(out, g)], nb)}
    return [got.get(id(v)) for v in vs]

def _pull_jvp(g, d, y0, t, p, nb, func, opt):
    """``∂/∂(y0, t, p) ⟨g, Ẏ(θ; d)⟩``; ``g`` carries ``nb`` batch axes of its own."""
    def ydot(y0, t, p):
        ans = odeint_p(y0, t, p, func=func, **opt) if d[1] is not None else None
        return _odeint_jvp(d, ans, y0, t, p, func=func, **opt)
    cts = _pull_linear(ydot, [y0, t, p], g, nb)
    lead_ = shape_of(g)[:nb]
    return [np.zeros(lead_ + shape_of(x)) if c is None else c for c, x in zip(cts, (y0, t, p))]


def _adjoint_jvp(tans, ans, g, y0, t, p, *, func, **opt):
    tg, dirs = tans[0], tans[1:]
    out = None if tg is None else adjoint_p(tg, y0, t, p, func=func, **opt)
    if any(d is not None for d in dirs):
        b = next(lead(d, x) for d, x in zip(dirs, (y0, t, p)) if d is not None)
        nb = ndim_of(g) - 2
        if b:                         # one pullback per direction: g has batch axes of its own
            flat = [None if d is None else np.reshape(d, (-1,) + shape_of(x))
                    for d, x in zip(dirs, (y0, t, p))]
            parts = []
            for j in range(int(np.prod(b, dtype=int))):
                c = _pull_jvp(g, [None if d is None else d[j] for d in flat], y0, t, p, nb,
                              func, opt)
                parts.append(np.concatenate([c[0], c[2]], axis=-1))
            second = np.reshape(np.stack(parts), b + shape_of(ans))
        else:
            c = _pull_jvp(g, list(dirs), y0, t, p, nb, func, opt)
            second = np.concatenate([c[0], c[2]], axis=-1)
        out = second if out is None else out + second
    return out


def _adjoint_vjp(w, ans, g, y0, t, p, *, func, **opt):
    """``ḡ = Ẏ(θ; (w_y0, 0, w_p))`` and ``θ̄ = ∂/∂θ ⟨g, Ẏ(θ; (w_y0, 0, w_p))⟩``."""
    n = shape_of(y0)[0]
    nb = ndim_of(w) - ndim_of(ans)          # the sweep's own batch of cotangents
    wy, wp = w[..., :n], w[..., n:]
    gbar = _odeint_jvp((wy, None, wp), None, y0, t, p, func=func, **opt)
    if nb == 0:
        return [gbar] + _pull_jvp(g, (wy, None, wp), y0, t, p, 0, func, opt)
    bw = shape_of(w)[:nb]
    wy = np.reshape(wy, (-1,) + shape_of(wy)[nb:])
    wp = np.reshape(wp, (-1,) + shape_of(wp)[nb:])
    rows = [_pull_jvp(g, (wy[j], None, wp[j]), y0, t, p, 0, func, opt)
            for j in range(shape_of(wy)[0])]
    return [gbar] + [np.reshape(np.stack([r[i] for r in rows]), bw + shape_of(x))
                     for i, x in enumerate((y0, t, p))]


adjoint_p = defprim("odeint_adjoint", _adjoint, jvp=_adjoint_jvp, vjp=_adjoint_vjp)


# ----- odeint: SciPy's entry point -----
def _vector(out):
    """``func``'s result as a flat vector (it may be a list of scalars, as SciPy allows)."""
    if isinstance(out, (list, tuple)):
        return np.concatenate([np.ravel(o) for o in out])
    return np.ravel(out)


def odeint(func, y0, t, args=(), rtol=None, atol=None, mxstep=0, hmax=0.0, tfirst=False):
    """``scipy.integrate.odeint`` (LSODA), differentiable in ``y0``, ``t`` and the
    floating-point ``args``; the result has shape ``(len(t), y0.size)`` as in SciPy.

    ``func(y, t, *args)`` (``func(t, y, *args)`` with ``tfirst``) is written with NumPy and
    may return a list. Derivatives are as accurate as the solves: pass tight ``rtol`` and
    ``atol`` (e.g. 1e-10) when they matter. Other arguments (ints, callables) pass through
    unchanged; ``Dfun``, ``full_output`` and the banded options are not supported.
    """
    y0, t = np.ravel(_arr(y0)), _arr(t)        # SciPy's func sees y flat, as does ours
    diff = []                                 # (index, size, shape) of the packed args
    parts = []
    args = list(args)
    for i, a in enumerate(args):
        if type(a) not in box_types:
            a = np.asarray(a)
            if a.dtype.kind != "f":
                continue
            args[i] = a
        parts.append(np.ravel(a))
        diff.append((i, shape_of(parts[-1])[0], shape_of(a)))
    p = np.concatenate(parts) if parts else np.zeros(0)

    def flat(y, s, p):
        a, k = list(args), 0
        for i, size, sh in diff:
            a[i] = np.reshape(p[k:k + size], sh)
            k += size
        return _vector(func(s, y, *a) if tfirst else func(y, s, *a))

    opt = dict(rtol=1.49012e-8 if rtol is None else float(rtol),
               atol=1.49012e-8 if atol is None else float(atol),
               mxstep=int(mxstep), hmax=float(hmax))
    return odeint_p(y0, t, p, func=flat, **opt)


# Dependency structure (the sparsity mode): a solution depends on every input of the solve.
odeint_p.sparsity = adjoint_p.sparsity = dependency.dense
