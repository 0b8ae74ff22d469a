"""``scipy.integrate`` with derivatives: quadrature of samples, ``odeint`` and ``solve_ivp``.

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

``solve_ivp`` (SciPy's signature and result, forward sensitivities or the adjoint, the AD
Jacobian for the implicit methods) lives in ``ivp.py`` and is re-exported here.

The JVP calls ``odeint`` again on the augmented system, the VJP calls ``ode_adjoint``, the
adjoint primitive ``solve_ivp`` uses too (``ivp.py``), whose own rules are forward
sensitivities pulled back (second derivatives are symmetric), so both are differentiable in
turn (each order costs a larger system). Batches
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

from ..api import jacfwd
from ..boxes import unbox
from ..core import box_types, lead, ndim_of, shape_of
from ..ops import dependency
from ..ops.define import defprim, norm_axes
from ..reverse import Variable, backward_pass
from .ivp import (_FIX, _as_array, _failed, _refuse_closures, _tiled, _tol, _vector,  # noqa: F401
                  adjoint_p, adjoint_sweep, dense_solution, ivp_p, solve_ivp)
from .stiff import ivp_jacobian  # noqa: F401  (the AD Jacobian for solve_ivp's jac=)

__all__ = ["trapezoid", "cumulative_trapezoid", "simpson", "odeint", "solve_ivp", "ivp_jacobian"]


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
            return si.odeint(lambda y, s: func(y, s, p), y0, t, rtol=_array(rtol),
                             atol=_array(atol), mxstep=mxstep, hmax=hmax)
        except si.ODEintWarning as e:
            msg = str(e).split(" Run with full_output")[0]
            raise _failed("odeint", f"LSODA: {msg}",
                          f"Raise mxstep (the steps allowed per output interval, now "
                          f"{mxstep or 500}), loosen rtol/atol (now {np.min(rtol):g}/"
                          f"{np.min(atol):g}), or add "
                          "output times; check that func stays finite.") from None


def _array(tol):
    return np.asarray(tol, dtype=float) if np.ndim(tol) else tol


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
        copies = 1 + int(np.prod(b, dtype=int))        # (y, S): the state's tolerances each
        opt_ = dict(opt, rtol=_tiled(opt["rtol"], copies), atol=_tiled(opt["atol"], copies))
        z = odeint_p(z0, t, q, func=_sensitivity_system(func, n, m, b, tp is not None), **opt_)
        s = np.reshape(z[:, n:], (nt,) + b + (n,))
        out = np.moveaxis(s, 0, -2) if b else s
    if tt is not None:                       # moving tᵢ moves the sample along the flow
        f = np.stack([func(ans[i], t[i], p) for i in range(nt)])
        out = f * tt[..., None] if out is None else out + f * tt[..., None]
    return out


def _adjoint_keywords(func, rtol, atol, mxstep, hmax):
    """odeint's system for the adjoint it shares with ``solve_ivp`` (``ivp.adjoint_p``):
    LSODA with the AD Jacobian, the reverse sweep along a dense forward solution."""
    opt = dict(rtol=rtol, atol=atol, mxstep=mxstep, hmax=hmax)
    # its derivatives (the higher orders) are odeint's own forward sensitivities
    forward = (lambda y0, t, p: odeint_p(y0, t, p, func=func, **opt),
               lambda d, ans, y0, t, p: _odeint_jvp(d, ans, y0, t, p, func=func, **opt))
    return dict(fun=lambda s, y, p: func(y, s, p), jac=None, method="LSODA", rtol=rtol,
                atol=atol, opts=(("max_step", np.inf if hmax == 0 else hmax),), sens="adjoint",
                y0_active=True, primal=None, forward=forward, refine=1e-2)


def _odeint_vjp(g, ans, y0, t, p, *, func, **opt):
    """``ȳ₀ = λ(t₀)`` and ``p̄ = a`` from the adjoint; ``t̄ᵢ = gᵢ·f(y(tᵢ), tᵢ)`` and
    ``t̄₀ = -λ(t₀⁺)·f(y₀, t₀)`` with ``λ(t₀⁺) = λ(t₀) - g₀``."""
    n, nt = shape_of(y0)[0], shape_of(t)[0]
    la = adjoint_p(g, y0, t, p, **_adjoint_keywords(func, **opt))
    lam0 = la[..., :n]
    gt = [-np.sum((lam0 - g[..., 0, :]) * func(y0, t[0], p), axis=-1)]
    gt += [np.sum(g[..., i, :] * func(ans[i], t[i], p), axis=-1) for i in range(1, nt)]
    return [lam0, np.stack(gt, axis=-1), la[..., n:]]


odeint_p = defprim("odeint", _solve, jvp=_odeint_jvp, vjp=_odeint_vjp)


# ----- odeint: SciPy's entry point -----
def odeint(func, y0, t, args=(), rtol=None, atol=None, mxstep=0, hmax=0.0, tfirst=False):
    """``scipy.integrate.odeint`` (LSODA), differentiable in ``y0``, ``t`` and the
    floating-point ``args``; the result has shape ``(len(t), y0.size)`` as in SciPy.

    ``func(y, t, *args)`` (``func(t, y, *args)`` with ``tfirst``) is written with NumPy and
    may return a list; ``y0`` is 0-d or 1-D (SciPy's ``ValueError`` otherwise), ``rtol`` and
    ``atol`` scalars or arrays of its size. Derivatives are as accurate as the solves: pass
    tight ``rtol`` and ``atol`` (e.g. 1e-10) when they matter. Other arguments (ints,
    callables) pass through unchanged; a ``func`` that closes over a tracked value is a
    ``TypeError`` (pass it in ``args``); ``Dfun``, ``full_output`` and the banded options are
    not supported.
    """
    y0, t = _arr(_as_array(y0)), _arr(_as_array(t))     # lists may hold tracked values
    if ndim_of(y0) > 1:                       # SciPy's words; a flattened y would reach a
        raise ValueError("Initial condition y0 must be one-dimensional.")  # func written for
    y0 = np.ravel(y0)                         # another shape: a 0-d y0 is one value
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"odeint: extra arguments must be in a tuple, got "
                        f"{type(args).__name__} (e.g. `args=(k,)`).")
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

    opt = dict(rtol=1.49012e-8 if rtol is None else _tol(rtol),
               atol=1.49012e-8 if atol is None else _tol(atol),
               mxstep=int(mxstep), hmax=float(hmax))
    try:
        return odeint_p(y0, t, p, func=flat, **opt)
    except TypeError as exc:
        plain = [unbox(a) for a in args]
        s0 = unbox(t)[0] if np.size(unbox(t)) else 0.0
        _refuse_closures(exc, "odeint", [("func", lambda: func(s0, unbox(y0), *plain) if tfirst
                                          else func(unbox(y0), s0, *plain))])


# Dependency structure (the sparsity mode): a solution depends on every input of the solve.
odeint_p.sparsity = adjoint_p.sparsity = dependency.dense
ivp_p.sparsity = dependency.dense        # a whole trajectory depends on the whole state
