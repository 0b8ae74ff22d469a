"""``scipy.optimize`` with derivatives: SciPy's own solvers, differentiable in ``args``.

Each function has SciPy's signature and returns SciPy's result. It runs SciPy's solver once,
on plain values (the tracked values in ``args`` unwrapped), and attaches the derivative of
the solution with respect to ``args`` by the implicit function theorem (``ad.custom_root``'s
machinery) applied to the condition the solution satisfies:

- ``root``, ``fsolve``, ``root_scalar``, ``brentq`` (and ``brenth``, ``ridder``,
  ``bisect``, ``toms748``, ``newton``): ``fun(x, *args) = 0``;
- ``minimize``: stationarity ``∇f(x, *args) = 0``; with ``bounds`` and ``constraints``
  (dicts; their ``args`` are differentiable too) the KKT conditions with the active set
  fixed, ``(∇f - Cᵀλ, c_active) = 0`` (LICQ and strict complementarity checked; constraint
  objects are refused when a derivative is asked for);
- ``least_squares``: the normal equations ``∇ cost = Jᵀ ρ'·r = 0`` (any of SciPy's losses;
  bounds as in ``minimize``);
- ``fixed_point``: ``x = func(x, *args)``.

``x0`` (and a bracket) get no derivative. ``.x`` (``.root``) of the result is tracked when
``args`` are; ``minimize``'s ``.fun`` and ``least_squares``' ``.fun`` and ``.cost`` are
recomputed at the tracked solution, so they are differentiable too (``df*/dθ = ∂f/∂θ``).
The solver's ``jac=``, ``hess=``/``hessp=`` and ``fprime=`` are filled from the engine
(exact derivatives, not finite differences) where the method uses them and the caller gave
none, and where the engine can trace the function (tried once at ``x0``): one it cannot
(``np.array`` of a list of numbers, ``float(x)``, ``math.*``) gets SciPy's defaults, so the
plain call is SciPy's own, and a derivative fails with the engine's error. A solver that did not converge raises :class:`ConvergenceError` (a ``RuntimeError``)
where SciPy would only report or warn, and where SciPy raises its own ``RuntimeError``
(``brentq``, ``newton`` with ``disp=True``, ``fixed_point``; its message kept); SciPy's other
errors (a bracket without a sign change: ``ValueError``) stand.

Only ``args`` are differentiated. A function that closes over a value tracked by an
enclosing transform (``lambda x: x - a`` inside ``ad.grad`` of ``a``) is refused with a
``TypeError`` that says to pass ``a`` in ``args``: SciPy runs on plain numbers, so such a
value would either stop it or give the derivative of its iterations (a wrong one for the
secant method). Tracked bounds or ``f_scale`` are a ``NotImplementedError``.

>>> import autodiff as ad
>>> x = lambda a: brentq(lambda x, a: x ** 3 - a, 0.0, 4.0, args=(a,))
>>> round(float(ad.grad(x)(8.0)), 12)                   # d a^(1/3)/da = 1 / (3 a^(2/3))
0.083333333333
"""
import numpy as np
import scipy.optimize as _so

from .. import numpy as anp
from ..api import grad, hessian, hvp, jacfwd, jacobian, jvp
from ..boxes import unbox
from ..core import box_types
from ..implicit import _Implicit, _ImplicitFixedPoint
from ..tree import flatten, leaf_tuple, unflatten

__all__ = ["root", "root_scalar", "brentq", "brenth", "ridder", "bisect", "toms748", "newton",
           "fsolve", "minimize", "least_squares", "fixed_point", "ConvergenceError",
           "OptimizeResult", "RootResults"]

OptimizeResult = _so.OptimizeResult
RootResults = _so.RootResults


class ConvergenceError(RuntimeError):
    """The solver did not converge: its result has no derivative worth attaching."""


# ----- helpers -----
def _tracked(tree):
    leaves = leaf_tuple(tree)
    if leaves is None:
        leaves = flatten(tree)[0]
    return any(type(v) in box_types for v in leaves)


def _plain(tree):
    if leaf_tuple(tree) is not None:
        return tuple([unbox(v) for v in tree])
    leaves, t = flatten(tree)
    return unflatten(t, [unbox(v) for v in leaves])


def _vector(out):
    """A residual as a flat vector (a list of tracked numbers included)."""
    return anp.ravel(anp.asarray(out))


def _implicit(name, F, x_star, args, kwargs=None, fixed_point=False):
    """``x_star`` as a function of the tracked values in ``args`` (and ``kwargs``), by the
    implicit function theorem on ``F(x, *args, **kwargs) = 0`` (or ``x = F(x, ...)``)."""
    cls = _ImplicitFixedPoint if fixed_point else _Implicit
    return cls.solved(name, F, x_star, args, kwargs or {})


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _failed(what, message, cause=None):
    raise ConvergenceError(f"{what} did not converge: {str(message).rstrip('.')}. Its "
                           "result would be a wrong number with a wrong derivative; change "
                           "x0, the bracket, the tolerances or maxiter (options=) and call "
                           "again.") from cause


def _closure_error(what):
    return TypeError(
        f"{what}: the function returns a tracked value on plain inputs: it closes over a "
        "value tracked by an enclosing transform (ad.grad, ad.jvp, ad.jit, ...), whose "
        "derivative SciPy's solver cannot carry (the solution would get a wrong one). Pass "
        "that value through args=(...), as fun(x, *args), and the solution is "
        "differentiated with respect to it.")


def _diagnose(what, e, x, args, funs, kwargs=None, vector=False):
    """After SciPy's solver raised ``e``: a clear error for its two causes seen from here
    (otherwise ``e`` stands). A function of ``funs`` that closes over a tracked value makes
    SciPy convert a tracked number, and its message would name the wrong fix; a
    ``RuntimeError`` SciPy raises itself (``brentq``, ``newton`` with ``disp=True``,
    ``fixed_point``) is a convergence failure."""
    if isinstance(e, ConvergenceError):
        return
    _closure_check(what, x, args, funs, kwargs, e, vector)
    if type(e) is RuntimeError and _raised_in_scipy(e):
        _failed(what, e, e)


def _closure_check(what, x, args, funs, kwargs=None, cause=None, vector=False):
    """Raise the closure error when one of ``funs`` at ``(x, *args)`` returns a tracked
    value (run where SciPy failed: a solver may also just stop on the values it could not
    read). ``x`` is the plain ``x0``, made SciPy's float vector (``vector``: root, fsolve,
    minimize, least_squares) or array where it converts."""
    try:
        if vector:
            x = np.atleast_1d(np.asarray(x, dtype=float))
        elif np.ndim(x) or isinstance(x, (list, tuple)):
            x = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        pass
    plain = _plain(tuple(args))
    k = _plain(kwargs or {})
    for f in funs:
        if not callable(f):
            continue
        try:
            out = f(x, *plain, **k)
        except Exception:
            continue
        if _tracked(out):
            raise _closure_error(what) from cause


def _raised_in_scipy(e):
    tb = e.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).startswith("scipy.")


def _refuse_tracked(what, **given):
    """Only ``args`` (and ``kwargs``) are differentiated: a tracked value elsewhere (bounds,
    ``f_scale``) would reach SciPy, which converts it (a misleading error), so it is refused
    here, naming the fix."""
    for name, v in given.items():
        if v is not None and not callable(v) and _tracked(v):
            raise NotImplementedError(
                f"{what}: derivatives with respect to {name} are not supported (only the "
                f"values in args are differentiated); pass a plain {name} (x.value), or make "
                "the quantity part of args, for instance by rescaling the variables.")


def _probed(filled, x0, args, kwargs=None):
    """``filled`` (a derivative from the engine) where it runs at ``x0``, else ``None``:
    SciPy's default, as in SciPy's own call. A function the engine cannot trace
    (``np.array`` of a list of numbers, ``float(x)``, ``math.*``) is so still solved as
    SciPy solves it; only a derivative with respect to ``args`` then fails, with the
    engine's error. The value at ``x0`` serves SciPy's first call, when it is there."""
    kwargs = kwargs or {}
    try:
        first = filled(x0, *args, **kwargs)
    except Exception:
        return None
    kept = [x0, first]

    def d(x, *a, **k):
        if kept:
            x_first, out = kept
            kept.clear()
            if np.shape(x) == np.shape(x_first) and np.array_equal(x, x_first):
                return out
        return filled(x, *a, **k)
    d.__name__ = getattr(filled, "__name__", "derivative")
    return d


def _for_solver(d):
    """An engine derivative as SciPy's solvers take it: at least float64. Their line
    searches and tolerances are float64 arithmetic; a float32 gradient makes BFGS stop on
    "precision loss" where SciPy's own float64 finite differences converge."""
    d = np.asarray(d)
    return d if d.dtype.kind == "c" or d.dtype.itemsize >= 8 else d.astype(np.float64)


def _float64(x0):
    """A float32 (or float16) ``x0`` as float64; anything else as it is."""
    dt = getattr(x0, "dtype", None)
    return x0.astype(np.float64) if dt is not None and dt.kind == "f" and dt.itemsize < 8 \
        else x0


def _start(x0, vector=True):
    """``x0`` as SciPy hands it to the functions: a float vector (``vector``) or array."""
    try:
        x = np.asarray(x0)
        if x.dtype.kind != "f":
            x = x.astype(float)
    except (TypeError, ValueError):
        return x0
    return np.ravel(x) if vector else (x if x.ndim else x[()])


def _check_result(what, x):
    """SciPy's result is tracked only when the function closed over a tracked value (SciPy
    ran on plain ones): its derivative would be that of the iterations (for the secant
    method, a wrong one), so it is refused."""
    if type(x) in box_types:                    # (a result is one array or number)
        raise _closure_error(what)


# ----- roots -----
def root(fun, x0, args=(), method="hybr", jac=None, tol=None, callback=None, options=None):
    """``scipy.optimize.root``, differentiable in ``args``: ``dx = -J⁻¹ ∂fun/∂args·dargs``.
    ``jac`` (methods ``hybr``, ``lm``) is the engine's Jacobian unless given; ``jac=True``
    means ``fun`` returns ``(f, J)``, as in SciPy (``fun`` then also runs on tracked values,
    its ``J`` unused, so build ``J`` with ``autodiff.numpy``). Raises
    :class:`ConvergenceError` when ``success`` is False, and, when ``args`` are tracked,
    when a success is no root (``lm`` stopping at a minimum of ``|fun|²``)."""
    if not isinstance(args, tuple):
        args = (args,)
    plain = _plain(args)
    meth = method.lower() if isinstance(method, str) else method
    x0 = _plain(x0)
    if jac is None and meth in ("hybr", "lm"):
        def jac(x, *a):
            return _for_solver(jacfwd(lambda y: _vector(fun(y, *a)))(x))
        jac = _probed(jac, _start(x0), plain)
    try:
        res = _so.root(fun, x0, args=plain,
                       method=method, jac=jac, tol=tol, callback=callback, options=options)
    except Exception as e:
        _diagnose(f"root(method={method!r})", e, x0, args, (fun, jac), vector=True)
        raise
    _check_result(f"root(method={method!r})", res.x)
    if not res.success:
        _closure_check(f"root(method={method!r})", x0, args, (fun,), vector=True)
        _failed(f"root(method={method!r})", res.message)
    if _tracked(args):
        value = _first if jac is True else (lambda o: o)
        F = lambda x, *a: _vector(value(fun(x, *a)))
        _check_root(f"root(method={method!r})", F, res, plain)
        res.x = _implicit("root", F, res.x, args)
    return res


def _check_root(what, F, res, plain):
    """Refuse a "success" that is no root: ``lm`` minimises ``|F|²`` and reports success at
    a local minimum where ``F ≠ 0`` (``x² + 1``: ``x ≈ 0``, where ``∂F/∂x ≈ 0``), and the
    implicit function theorem there gives a huge, wrong derivative. A residual above 1e-8
    is judged by the Newton step ``J⁻¹F`` it leaves; a converged root's is negligible."""
    r = np.abs(np.ravel(np.asarray(getattr(res, "fun", 0.0), dtype=float)))
    if r.size == 0 or not np.max(r) > 1e-8:
        return
    x = np.ravel(np.asarray(res.x, dtype=float))
    J = np.atleast_2d(np.asarray(jacfwd(lambda y: F(y, *plain))(x), dtype=float))
    step = np.linalg.lstsq(J, r, rcond=None)[0] if J.shape[0] != J.shape[1] else None
    if step is None:
        try:
            step = np.linalg.solve(J, r)
        except np.linalg.LinAlgError:
            step = np.full(x.shape, np.inf)
    if np.all(np.isfinite(step)) and np.max(np.abs(step)) <= 1e-4 * (1 + np.max(np.abs(x))):
        return
    raise ConvergenceError(
        f"{what} reports success, but fun is {np.max(r):.3g} there and a Newton step from "
        f"it has length {np.max(np.abs(step)):.3g}: x is not a root (a least-squares method "
        "stops at a local minimum of |fun|², too), and the implicit derivative there would "
        "be wrong. Try another x0 or method, or check that a root exists.")


def fsolve(func, x0, args=(), fprime=None, full_output=0, col_deriv=0, xtol=1.49012e-08,
           maxfev=0, band=None, epsfcn=None, factor=100, diag=None):
    """``scipy.optimize.fsolve``, differentiable in ``args``; ``fprime`` is the engine's
    Jacobian unless given. SciPy only warns when it fails; this raises
    :class:`ConvergenceError`."""
    if not isinstance(args, tuple):
        args = (args,)
    plain = _plain(args)
    x0 = _plain(x0)
    if fprime is None:
        def fprime(x, *a):
            J = _for_solver(jacfwd(lambda y: _vector(func(y, *a)))(x))
            return J.T if col_deriv else J
        fprime = _probed(fprime, _start(x0), plain)
    try:
        x, info, ier, mesg = _so.fsolve(func, x0, args=plain, fprime=fprime,
                                        full_output=True, col_deriv=col_deriv, xtol=xtol,
                                        maxfev=maxfev, band=band, epsfcn=epsfcn,
                                        factor=factor, diag=diag)
    except Exception as e:
        _diagnose("fsolve", e, x0, args, (func, fprime), vector=True)
        raise
    _check_result("fsolve", x)
    if ier != 1:
        _closure_check("fsolve", x0, args, (func,), vector=True)
        _failed("fsolve", mesg)
    if _tracked(args):
        x = _implicit("fsolve", lambda y, *a: _vector(func(y, *a)), x, args)
    return (x, info, ier, mesg) if full_output else x


def _scalar_derivative(f, order):
    def d(x, *a):
        g = lambda y: _first(f(y, *a))
        for _ in range(order):
            g = grad(g)
        return float(g(float(x)))
    return d


def root_scalar(f, args=(), method=None, bracket=None, fprime=None, fprime2=None, x0=None,
                x1=None, xtol=None, rtol=None, maxiter=None, options=None):
    """``scipy.optimize.root_scalar``, differentiable in ``args``: ``dx = -∂f/∂args / f'``.
    Returns SciPy's ``RootResults`` with ``.root`` tracked. For Newton's method (SciPy's
    choice for ``x0`` alone, or ``method="newton"``) ``fprime`` is the engine's derivative
    unless given, and so is ``fprime2`` for ``method="halley"``. Raises
    :class:`ConvergenceError` when ``converged`` is False."""
    if not isinstance(args, tuple):
        args = (args,)
    plain = _plain(args)
    meth = method.lower() if isinstance(method, str) else method
    if meth is None and bracket is None and x0 is not None and not fprime and x1 is None:
        meth = "newton"        # SciPy's choice here; with an exact fprime it is Newton's
    bracket, x0, x1 = _plain(bracket), _plain(x0), _plain(x1)
    at = None if x0 is None else _start(x0, vector=False)
    if meth in ("newton", "halley") and fprime is None and at is not None:
        fprime = _probed(_scalar_derivative(f, 1), at, plain)
    if meth == "halley" and fprime2 is None and fprime is not True and at is not None \
            and fprime is not None:
        fprime2 = _probed(_scalar_derivative(f, 2), at, plain)
    try:
        sol = _so.root_scalar(f, args=plain, method=meth, bracket=bracket, fprime=fprime,
                              fprime2=fprime2, x0=x0, x1=x1, xtol=xtol, rtol=rtol,
                              maxiter=maxiter, options=options)
    except Exception as e:
        at = x0 if x0 is not None else bracket[0] if bracket is not None else None
        if at is not None:
            _diagnose(f"root_scalar(method={meth!r})", e, at, args, (f, fprime, fprime2))
        raise
    _check_result(f"root_scalar(method={sol.method!r})", sol.root)
    if not sol.converged:
        if x0 is not None or bracket is not None:
            _closure_check("root_scalar", x0 if x0 is not None else bracket[0], args, (f,))
        _failed(f"root_scalar(method={sol.method!r})", sol.flag)
    if _tracked(args):
        # f itself when it returns the value alone (an ad.jit f keeps its compiled sweep)
        F = (lambda x, *a: _first(f(x, *a))) if fprime is True else f
        sol.root = _implicit("root_scalar", F, sol.root, args)
    return sol


def _bracketed(name, f, a, b, args, full_output, disp, **kw):
    """SciPy's bracketing solver ``name`` on plain values, then the implicit derivative."""
    if not isinstance(args, tuple):
        args = (args,)
    tracked = _tracked(args)
    x, r = getattr(_so, name)(f, unbox(a), unbox(b), args=_plain(args) if tracked else args,
                              full_output=True, disp=disp, **kw)
    if not r.converged:
        _failed(name, r.flag)
    if tracked:
        x = _implicit(name, f, x, args)
        r.root = x
    return (x, r) if full_output else x


def _bracket_call(name, f, a, b, args, full_output, disp, **kw):
    """``_bracketed`` with the clear errors of :func:`_diagnose`."""
    try:
        return _bracketed(name, f, a, b, args, full_output, disp, **kw)
    except Exception as e:
        _diagnose(name, e, unbox(a), args if isinstance(args, tuple) else (args,), (f,))
        raise


def brentq(f, a, b, args=(), xtol=2e-12, rtol=8.881784197001252e-16, maxiter=100,
           full_output=False, disp=True):
    """``scipy.optimize.brentq``, differentiable in ``args``: ``dx = -∂f/∂args / f'(x)``.
    Returns the root (a float when nothing is tracked), or ``(x, RootResults)`` with
    ``full_output=True``. No sign change: SciPy's ``ValueError``; not converged:
    :class:`ConvergenceError` (a ``RuntimeError``, as SciPy's with ``disp=True``). The bracket gets no derivative. ``brenth``,
    ``ridder``, ``bisect`` and ``toms748`` are the same with SciPy's other methods."""
    return _bracket_call("brentq", f, a, b, args, full_output, disp, xtol=xtol, rtol=rtol,
                         maxiter=maxiter)


def brenth(f, a, b, args=(), xtol=2e-12, rtol=8.881784197001252e-16, maxiter=100,
           full_output=False, disp=True):
    """``scipy.optimize.brenth``, differentiable in ``args`` (as :func:`brentq`)."""
    return _bracket_call("brenth", f, a, b, args, full_output, disp, xtol=xtol, rtol=rtol,
                         maxiter=maxiter)


def ridder(f, a, b, args=(), xtol=2e-12, rtol=8.881784197001252e-16, maxiter=100,
           full_output=False, disp=True):
    """``scipy.optimize.ridder``, differentiable in ``args`` (as :func:`brentq`)."""
    return _bracket_call("ridder", f, a, b, args, full_output, disp, xtol=xtol, rtol=rtol,
                         maxiter=maxiter)


def bisect(f, a, b, args=(), xtol=2e-12, rtol=8.881784197001252e-16, maxiter=100,
           full_output=False, disp=True):
    """``scipy.optimize.bisect``, differentiable in ``args`` (as :func:`brentq`)."""
    return _bracket_call("bisect", f, a, b, args, full_output, disp, xtol=xtol, rtol=rtol,
                         maxiter=maxiter)


def toms748(f, a, b, args=(), k=1, xtol=2e-12, rtol=8.881784197001252e-16, maxiter=100,
            full_output=False, disp=True):
    """``scipy.optimize.toms748``, differentiable in ``args`` (as :func:`brentq`)."""
    return _bracket_call("toms748", f, a, b, args, full_output, disp, k=k, xtol=xtol,
                         rtol=rtol, maxiter=maxiter)


def newton(func, x0, fprime=None, args=(), tol=1.48e-08, maxiter=50, fprime2=None, x1=None,
           rtol=0.0, full_output=False, disp=True):
    """``scipy.optimize.newton`` (scalar, or elementwise on an array ``x0``, as SciPy),
    differentiable in ``args``. ``fprime`` is the engine's derivative unless given or
    ``x1`` asks for the secant method. Not converged (for arrays: any element):
    :class:`ConvergenceError`, a ``RuntimeError`` as SciPy's with ``disp=True``."""
    if not isinstance(args, tuple):
        args = (args,)
    plain = _plain(args)
    x0 = _plain(x0)
    if fprime is None and x1 is None:
        def fprime(x, *a):
            one = 1.0 if np.ndim(x) == 0 else np.ones(np.shape(x))
            return np.asarray(jvp(lambda y: func(y, *a), (x,), (one,))[1])
        fprime = _probed(fprime, _start(x0, vector=False), plain)
    try:
        out = _so.newton(func, x0, fprime=fprime, args=plain, tol=tol, maxiter=maxiter,
                         fprime2=fprime2, x1=_plain(x1), rtol=rtol, full_output=True,
                         disp=disp)
    except Exception as e:
        _diagnose("newton", e, x0, args, (func, fprime, fprime2))
        raise
    # SciPy's array form (size > 1) returns a namedtuple (root, converged, zero_der); its
    # scalar form (a size-1 array x0 included) a pair (x, RootResults)
    scalar = not hasattr(out, "zero_der")
    _check_result("newton", out[0])
    x, ok = (out[0], out[1].converged) if scalar else (out.root, np.all(out.converged))
    if not ok:
        _closure_check("newton", x0, args, (func,))
        _failed("newton", out[1].flag if scalar else
                f"elements {np.flatnonzero(~np.asarray(out.converged)).tolist()} did not")
    if _tracked(args):
        x = _implicit("newton", func, x, args)
        out = (x, out[1]) if scalar else out._replace(root=x)
        if scalar:
            out[1].root = x
    if not full_output:
        return x
    return out


def fixed_point(func, x0, args=(), xtol=1e-08, maxiter=500, method="del2"):
    """``scipy.optimize.fixed_point``, differentiable in ``args``:
    ``dx = (I - ∂func/∂x)⁻¹ ∂func/∂args·dargs``. Not converged: :class:`ConvergenceError`
    (a ``RuntimeError``, as SciPy's)."""
    if not isinstance(args, tuple):
        args = (args,)
    x0 = _plain(x0)
    try:
        x = _so.fixed_point(func, x0, args=_plain(args), xtol=xtol, maxiter=maxiter,
                            method=method)
    except Exception as e:
        _diagnose("fixed_point", e, x0, args, (func,))
        raise
    _check_result("fixed_point", x)
    if not np.all(np.isfinite(x)):
        _failed("fixed_point", "it returned non-finite values")
    if _tracked(args):
        x = _implicit("fixed_point", func, x, args, fixed_point=True)
    return x


# ----- bounds: the active set of a bound-constrained stationary point -----
def _bound_arrays(bounds, n, pairs=True):
    """``(lb, ub)`` arrays from ``Bounds``, ``minimize``'s ``(lo, hi)`` pairs (``pairs``) or
    ``least_squares``' ``(lb, ub)``."""
    if isinstance(bounds, _so.Bounds):
        lb, ub = bounds.lb, bounds.ub
    elif not pairs:
        lb, ub = bounds
    else:
        pairs = list(bounds)
        if len(pairs) != n:
            raise ValueError(f"bounds have {len(pairs)} pairs for {n} variables")
        lb = [-np.inf if p[0] is None else p[0] for p in pairs]
        ub = [np.inf if p[1] is None else p[1] for p in pairs]
    if _tracked((lb, ub)):
        raise NotImplementedError("derivatives with respect to the bounds are not supported: "
                                  "pass plain bounds (and the quantity as part of args).")
    return (np.broadcast_to(np.asarray(lb, dtype=float), (n,)),
            np.broadcast_to(np.asarray(ub, dtype=float), (n,)))


def _kkt(name, gradient, x_star, lb, ub, args, kwargs=None):
    """The stationarity residual with the active bounds fixed: ``g_i`` for free coordinates,
    ``x_i - bound_i`` for active ones (strict complementarity assumed, and checked).

    A coordinate is active on a bound (to 1e-8) or near one (to 1e-3, where interior-point
    methods such as ``trust-constr`` stop) with a gradient that clearly pushes it outward;
    the others must be stationary: a solution that is neither would get the derivative of
    an equation it does not satisfy, so it is refused."""
    x_star = np.asarray(x_star, dtype=float)
    g = np.asarray(gradient(x_star, *_plain(args), **_plain(kwargs or {})), dtype=float)
    scale = max(1.0, float(np.max(np.abs(g)))) if g.size else 1.0
    clear = 1e-2 * scale                        # a gradient no stopping test leaves behind
    with np.errstate(invalid="ignore"):         # inf - inf: an absent bound
        on_lo = x_star <= lb + 1e-8 * (1 + np.abs(lb))
        on_hi = x_star >= ub - 1e-8 * (1 + np.abs(ub))
        at_lo = on_lo | (x_star <= lb + 1e-3 * (1 + np.abs(lb))) & (g > clear)
        at_hi = on_hi | (x_star >= ub - 1e-3 * (1 + np.abs(ub))) & (g < -clear)
    weak = (on_lo & (g <= 1e-8 * scale)) | (on_hi & (g >= -1e-8 * scale))
    if np.any(weak):
        raise ValueError(
            f"{name}: the solution sits on a bound whose multiplier is zero or has the wrong "
            f"sign (coordinates {np.flatnonzero(weak).tolist()}): the solution is not "
            "differentiable there (strict complementarity fails). Move the bound or "
            "reparametrise.")
    off = ~(at_lo | at_hi) & (np.abs(g) > clear)
    if np.any(off):
        raise ValueError(
            f"{name}: the solution is not stationary in the coordinates off the bounds "
            f"({np.flatnonzero(off).tolist()}: |gradient| up to {np.max(np.abs(g[off])):.2e}"
            "), so the implicit function theorem would give a wrong derivative. Tighten the "
            "solver's tolerances (tol=, options=), or use a method that lands on the bounds "
            "(L-BFGS-B, TNC, SLSQP for minimize; trf for least_squares).")
    active = at_lo | at_hi
    if not np.any(active):
        return None
    b = np.where(at_lo, lb, ub)

    def F(x, *a, **k):
        return anp.where(active, x - b, gradient(x, *a, **k))
    return F


# ----- minimisation -----
_USES_JAC = {"cg", "bfgs", "newton-cg", "l-bfgs-b", "tnc", "slsqp", "dogleg", "trust-ncg",
             "trust-krylov", "trust-exact", "trust-constr"}
_NEEDS_HESS = {"dogleg", "trust-exact"}
_HANDLE_BOUNDS = {"nelder-mead", "powell", "l-bfgs-b", "tnc", "slsqp", "trust-constr", "cobyla",
                  "cobyqa"}            # the others ignore bounds (SciPy warns), and so do we
_TAKES_HESSP = {"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"}
_HANDLE_CONSTRAINTS = {"cobyla", "cobyqa", "slsqp", "trust-constr"}


def _has_constraints(constraints):
    if constraints is None:
        return False
    if isinstance(constraints, (dict, _so.LinearConstraint, _so.NonlinearConstraint)):
        return True
    return len(constraints) > 0


def minimize(fun, x0, args=(), method=None, jac=None, hess=None, hessp=None, bounds=None,
             constraints=(), tol=None, callback=None, options=None):
    """``scipy.optimize.minimize``, differentiable in ``args`` through the stationarity
    condition ``∇f(x*, args) = 0``: ``dx* = -H⁻¹ ∂(∇f)/∂args·dargs``. With ``bounds`` or
    ``constraints`` (dicts, their own ``args`` differentiable too) the KKT conditions with
    the active set held fixed (see the module docstring; constraints count for the methods
    that use them, as in SciPy, which ignores them elsewhere); ``LinearConstraint`` and
    ``NonlinearConstraint`` objects with tracked values raise ``NotImplementedError``.
    The constraints' ``jac`` is the engine's too. ``jac`` is the engine's gradient
    and ``hess``/``hessp`` its Hessian (products) where the method uses them and none was
    given. ``.x`` and ``.fun`` are tracked when ``args`` are. Raises
    :class:`ConvergenceError` when ``success`` is False."""
    if not isinstance(args, tuple):
        args = (args,)
    if method is None:
        meth = "slsqp" if _has_constraints(constraints) else (
            "l-bfgs-b" if bounds is not None else "bfgs")
    else:
        meth = method.lower() if isinstance(method, str) else None
    # constraints count where the method uses them: the others ignore them (SciPy warns),
    # and a KKT system with constraints the solution does not satisfy is a wrong derivative
    cons = _constraint_dicts(constraints) if meth in _HANDLE_CONSTRAINTS else []
    tracked = _tracked(args) or bool(cons) and _tracked([c.get("args", ()) for c in cons])
    _refuse_tracked(f"minimize(method={meth!r})", bounds=bounds)
    if tracked and meth in _HANDLE_CONSTRAINTS and _has_constraints(constraints) \
            and cons is None:
        raise NotImplementedError(
            f"minimize(method={meth!r}): derivatives through LinearConstraint or "
            "NonlinearConstraint objects are not implemented; pass the constraints as dicts "
            "({'type': 'eq' or 'ineq', 'fun': ..., 'args': ...}), which are differentiated "
            "through the KKT conditions.")
    if tracked and meth is None:
        raise NotImplementedError("minimize with a custom method callable cannot be "
                                  "differentiated; use one of SciPy's methods.")

    def value(x, *a):
        return _first(fun(x, *a)) if jac is True else fun(x, *a)

    # (float64 for SciPy's minimizers, float64 algorithms: from a float32 x0 SciPy's own
    # cg returns x0 as "converged" and slsqp refuses it)
    x0 = _float64(_plain(x0))
    start, plain = _start(x0), _plain(args)
    traced = None                # whether the engine's gradient ran at x0 (None: not tried)
    if jac is None and meth in _USES_JAC:
        def jac(x, *a):
            return _for_solver(grad(lambda y: value(y, *a))(x))
        jac = _probed(jac, start, plain)
        traced = jac is not None
    if hess is None and hessp is None and traced is not False:
        if meth in _NEEDS_HESS:
            def hess(x, *a):
                return _for_solver(hessian(lambda y: value(y, *a))(x))
            hess = _probed(hess, start, plain)
        elif meth in _TAKES_HESSP:
            def hessp(x, p, *a):
                return _for_solver(hvp(lambda y: value(y, *a), x, p))
            if not traced and _probed(lambda x, *a: hessp(x, np.ones_like(x), *a), start,
                                      plain) is None:
                hessp = None     # (SciPy's first hessp is at an unknown p: not kept)
    try:
        res = _so.minimize(fun, x0, args=_plain(args), method=method, jac=jac, hess=hess,
                           hessp=hessp, bounds=bounds,
                           constraints=constraints if not cons else
                           _plain_constraints(cons, start),
                           tol=tol, callback=callback, options=options)
    except Exception as e:
        what = f"minimize(method={meth!r})"
        _diagnose(what, e, x0, args, (value, jac if callable(jac) else None, hess),
                  vector=True)
        for c in cons or ():
            _diagnose(what, e, x0, tuple(c.get("args", ())), (c.get("fun"), c.get("jac")),
                      vector=True)
        raise
    if not res.success:
        _closure_check(f"minimize(method={meth!r})", x0, args, (value,), vector=True)
        _failed(f"minimize(method={meth!r})", res.message)
    if tracked:
        def gradient(x, *a):
            return grad(lambda y: value(y, *a))(x)
        lb = ub = None
        if bounds is not None and meth in _HANDLE_BOUNDS:
            lb, ub = _bound_arrays(bounds, np.size(res.x))
        if cons:
            res.x = _kkt_constrained(value, res.x, args, cons, lb, ub)
        else:
            F = _kkt("minimize", gradient, res.x, lb, ub, args) if lb is not None else None
            res.x = _implicit("minimize", F or gradient, res.x, args)
        res.fun = value(res.x, *args)
    return res


def _constraint_dicts(constraints):
    """The constraints as a list of dicts, or None when they are given as objects."""
    if constraints is None:
        return []
    if isinstance(constraints, dict):
        return [constraints]
    if isinstance(constraints, (_so.LinearConstraint, _so.NonlinearConstraint)):
        return None
    cons = list(constraints)
    return cons if all(isinstance(c, dict) for c in cons) else None


def _plain_constraints(cons, x0):
    """SciPy's constraint dicts with plain ``args`` and, where missing, the engine's
    Jacobian of each constraint (where it runs: see :func:`_probed`)."""
    out = []
    for c in cons:
        c = dict(c)
        c["args"] = _plain(tuple(c.get("args", ())))
        if "jac" not in c or c["jac"] is None:
            def cjac(x, *a, _f=c["fun"]):
                return np.atleast_2d(_for_solver(jacfwd(lambda y: _vector(_f(y, *a)))(x)))
            c["jac"] = _probed(cjac, x0, c["args"])
            if c["jac"] is None:
                del c["jac"]
        out.append(c)
    return out


def _kkt_constrained(value, x_star, args, cons, lb, ub, tol=1e-8, near=1e-3):
    """``x*`` of a constrained minimum, differentiated through the KKT conditions with the
    active set fixed: with ``c_A`` the equality and active inequality constraints (and active
    bounds), the multipliers ``λ`` solve ``∇f = Cᵀλ`` at ``x*`` (``C = ∂c_A/∂x``), and
    ``(x*, λ)`` is the root of ``(∇f - Cᵀλ, c_A)``. LICQ (``C`` of full row rank) and strict
    complementarity (``λ > 0`` on active inequalities) are checked; where they fail, the
    solution is not differentiable and this raises.

    An inequality (or bound) is active when it holds with equality (to ``tol``), or nearly
    (to ``near``, where interior-point methods such as ``trust-constr`` stop) with a clearly
    positive multiplier; a solution whose ``∇f`` is not a combination of the active
    constraints' gradients is refused (the derivative would be that of a wrong system)."""
    x_star = np.asarray(x_star, dtype=float)
    plain_args = _plain(args)
    cargs = tuple(tuple(c.get("args", ())) for c in cons)
    plain_cargs = _plain(cargs)

    def gradient(x, *a):
        return grad(lambda y: value(y, *a))(x)

    g = np.asarray(gradient(x_star, *plain_args), dtype=float)
    scale = max(1.0, float(np.max(np.abs(g)))) if g.size else 1.0
    clear = 1e-2 * scale
    # candidates: (constraint k or "lo"/"hi", index, inequality?, active to tol?)
    cand = []
    for k, c in enumerate(cons):
        typ = str(c.get("type", "")).lower()
        if typ not in ("eq", "ineq"):
            raise ValueError(f"minimize: constraint type must be 'eq' or 'ineq', not {typ!r}")
        v = np.ravel(np.asarray(c["fun"](x_star, *plain_cargs[k]), dtype=float))
        m = 1 + np.max(np.abs(v), initial=0.0)
        for i in range(v.size):
            if typ == "eq":
                cand.append((k, i, False, True))
            elif v[i] <= near * m:
                cand.append((k, i, True, bool(abs(v[i]) <= tol * m)))
    with np.errstate(invalid="ignore"):         # inf - inf: an absent bound
        for side, bnd, d in (("lo", lb, x_star - lb if lb is not None else None),
                             ("hi", ub, ub - x_star if ub is not None else None)):
            if bnd is None:
                continue
            m = 1 + np.abs(bnd)
            for i in np.flatnonzero(np.isfinite(bnd) & (d <= near * m)):
                cand.append((side, i, True, bool(d[i] <= tol * m[i])))

    def c_act(x, ca, sel):
        vals = {k: _vector(cons[k]["fun"](x, *ca[k])) for k in {e[0] for e in sel}
                if not isinstance(k, str)}
        parts = [x[i] - lb[i] if k == "lo" else ub[i] - x[i] if k == "hi" else vals[k][i]
                 for k, i, _, _ in sel]
        return anp.stack(parts) if parts else None

    def multipliers(sel):
        C = np.atleast_2d(np.asarray(jacfwd(lambda y: c_act(y, plain_cargs, sel))(x_star),
                                     dtype=float))
        return C, np.linalg.lstsq(C.T, g, rcond=None)[0]

    # a nearly active inequality whose multiplier is not clearly positive is inactive
    sel = list(cand)
    while any(ineq and not exact for _, _, ineq, exact in sel):
        C, lam = multipliers(sel)
        loose = [j for j, e in enumerate(sel) if e[2] and not e[3]]
        j = min(loose, key=lambda j: lam[j])
        if lam[j] > clear:
            break
        del sel[j]
    if not sel:                               # nothing active: plain stationarity
        if np.max(np.abs(g), initial=0.0) > clear:
            raise ValueError(
                "minimize: the solution is not stationary and no constraint is active there "
                f"(|∇f| up to {np.max(np.abs(g)):.2e}), so the implicit function theorem "
                "would give a wrong derivative. Tighten the solver's tolerances (tol=, "
                "options=).")
        return _implicit("minimize", gradient, x_star, args)
    C, lam = multipliers(sel)
    kinds = np.array([ineq for _, _, ineq, _ in sel], dtype=bool)
    sv = np.linalg.svd(C, compute_uv=False)
    if C.shape[0] > C.shape[1] or sv.min() <= 1e-10 * max(1.0, sv.max()):
        raise ValueError("minimize: the active constraints' gradients are linearly dependent "
                         "at the solution (LICQ fails): the multipliers, and so the "
                         "derivative, are not unique. Remove redundant constraints.")
    if np.max(np.abs(C.T @ lam - g)) > 1e-5 * scale:
        raise ValueError("minimize: the solution does not satisfy the KKT conditions to "
                         "accuracy (∇f is not a combination of the active constraints' "
                         "gradients); tighten the solver's tolerance (tol=, options=).")
    weak = kinds & (lam <= 1e-8 * scale)
    if np.any(weak):
        raise ValueError("minimize: an active inequality constraint has a zero or negative "
                         "multiplier at the solution (strict complementarity fails): the "
                         "solution is not differentiable there.")

    def F(xl, a, ca):
        x, lm = xl
        return (grad(lambda y: value(y, *a) - anp.sum(lm * c_act(y, ca, sel)))(x),
                c_act(x, ca, sel))
    return _implicit("minimize", F, (x_star, lam), (args, cargs))[0]


# ----- least squares -----
def _rho(loss, z):
    """SciPy's loss functions ``ρ(z)``, ``z = (r/f_scale)²``."""
    if loss == "linear":
        return z
    if loss == "soft_l1":
        return 2 * ((1 + z) ** 0.5 - 1)
    if loss == "huber":
        return anp.where(z <= 1, z, 2 * anp.sqrt(anp.maximum(z, 1.0)) - 1)
    if loss == "cauchy":
        return anp.log1p(z)
    if loss == "arctan":
        return anp.arctan(z)
    raise NotImplementedError(f"least_squares: derivatives with the loss {loss!r} are not "
                              "supported; use one of SciPy's named losses.")


def least_squares(fun, x0, jac="2-point", bounds=(-np.inf, np.inf), method="trf",
                  ftol=1e-08, xtol=1e-08, gtol=1e-08, x_scale=None, loss="linear",
                  f_scale=1.0, diff_step=None, tr_solver=None, tr_options=None,
                  jac_sparsity=None, max_nfev=None, verbose=0, args=(), kwargs=None,
                  callback=None, workers=None):
    """``scipy.optimize.least_squares``, differentiable in ``args`` and ``kwargs`` through
    the normal equations ``∇cost(x*) = 0`` (``Jᵀr = 0`` for the linear loss); active bounds
    are held fixed. ``jac`` (the default ``"2-point"``) is the engine's Jacobian;
    ``"3-point"``, ``"cs"`` or a callable are used as given. ``.x``, ``.fun`` and ``.cost``
    are tracked when the arguments are. Raises :class:`ConvergenceError` when ``success``
    is False."""
    if not isinstance(args, tuple):
        args = (args,)
    kwargs = {} if kwargs is None else dict(kwargs)
    tracked = _tracked((args, kwargs))
    extra = {} if workers is None else {"workers": workers}
    _refuse_tracked("least_squares", bounds=bounds, f_scale=f_scale)
    x0 = _plain(x0)
    if jac == "2-point" and jac_sparsity is None:
        def engine_jac(x, *a, **k):
            return np.atleast_2d(_for_solver(jacobian(lambda y: _vector(fun(y, *a, **k)))(x)))
        jac = _probed(engine_jac, _start(x0), _plain(args), _plain(kwargs)) or "2-point"
    try:
        res = _so.least_squares(fun, x0, jac=jac, bounds=bounds, method=method, ftol=ftol,
                                xtol=xtol, gtol=gtol, x_scale=x_scale, loss=loss,
                                f_scale=f_scale, diff_step=diff_step, tr_solver=tr_solver,
                                tr_options=tr_options, jac_sparsity=jac_sparsity,
                                max_nfev=max_nfev, verbose=verbose, args=_plain(args),
                                kwargs=_plain(kwargs), callback=callback, **extra)
    except Exception as e:
        _diagnose(f"least_squares(method={method!r})", e, x0, args, (fun, jac), kwargs,
                  vector=True)
        raise
    if not res.success:
        _closure_check(f"least_squares(method={method!r})", x0, args, (fun,), kwargs,
                       vector=True)
        _failed(f"least_squares(method={method!r})", res.message)
    if tracked:
        if callable(loss):
            raise NotImplementedError("least_squares: derivatives with a callable loss are "
                                      "not supported; use one of SciPy's named losses.")

        def cost(x, *a, **k):
            r = _vector(fun(x, *a, **k))
            return 0.5 * f_scale ** 2 * anp.sum(_rho(loss, (r / f_scale) ** 2))

        def gradient(x, *a, **k):
            return grad(lambda y: cost(y, *a, **k))(x)
        n = np.size(res.x)
        lb, ub = _bound_arrays(bounds, n, pairs=False) if _bounded(bounds) else (None, None)
        F = _kkt("least_squares", gradient, res.x, lb, ub, args, kwargs) \
            if lb is not None else None
        res.x = _implicit("least_squares", F or gradient, res.x, args, kwargs)
        res.fun = _vector(fun(res.x, *args, **kwargs))
        res.cost = 0.5 * f_scale ** 2 * anp.sum(_rho(loss, (res.fun / f_scale) ** 2))
    return res


def _bounded(bounds):
    if isinstance(bounds, _so.Bounds):
        return bool(np.any(np.isfinite(bounds.lb)) or np.any(np.isfinite(bounds.ub)))
    lb, ub = bounds
    return bool(np.any(np.isfinite(np.asarray(_plain(lb), dtype=float)))
                or np.any(np.isfinite(np.asarray(_plain(ub), dtype=float))))
