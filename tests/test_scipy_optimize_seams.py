"""User-level seams of ``autodiff.scipy.optimize`` (API.md "Implicit functions, solvers and
ODEs"), tried as a SciPy or JAX user would: every public function against SciPy's own call on
plain values (signature, result fields, numbers), ``args`` as a tuple and as one value,
derivatives with respect to ``args`` against central finite differences of SciPy's own solve
in both modes and batched, second order, float32, 0-d and size-1 inputs, functions that close
over a tracked value, ``ad.jit`` and nested transforms, convergence failures, a call after an
exception in a derivative sweep, and the solver's ``jac``/``hess``/``fprime`` filled from the
engine (counted).
"""
import inspect

import numpy as np
import pytest
import scipy.optimize as so

import autodiff as ad
from autodiff.scipy import optimize as aso
from autodiff.tree import flatten

PUBLIC = ["root", "root_scalar", "brentq", "brenth", "ridder", "bisect", "toms748", "newton",
          "fsolve", "minimize", "least_squares", "fixed_point"]


def close(a, b, rtol=1e-8, atol=1e-10):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                               rtol=rtol, atol=atol)


def fd(fn, theta, h=1e-3):
    """Central differences of ``fn`` (a plain-value SciPy solve) at ``theta``, fourth order
    (a step large against the solver's tolerance): the Jacobian, shape
    ``out.shape + theta.shape``."""
    theta = np.asarray(theta, dtype=float)
    cols = []
    for i in range(theta.size):
        e = np.zeros(theta.size)
        e[i] = h
        e = e.reshape(theta.shape)
        f = lambda s: np.asarray(fn(theta + s * e), float)
        cols.append((8 * (f(1) - f(-1)) - (f(2) - f(-2))) / (12 * h))
    out = np.stack(cols, axis=-1)
    return out.reshape(np.shape(fn(theta)) + theta.shape)


from test_scipy_optimize import counting  # noqa: E402 (one counter for both files)


# ----- signatures: SciPy's, parameter for parameter ------------------------------------
@pytest.mark.parametrize("name", PUBLIC)
def test_signature_is_scipys(name):
    ours = inspect.signature(getattr(aso, name)).parameters
    theirs = inspect.signature(getattr(so, name)).parameters
    assert list(ours) == list(theirs)
    for k in theirs:
        assert ours[k].kind == theirs[k].kind, k
        d1, d2 = ours[k].default, theirs[k].default
        if isinstance(d2, (float, np.floating)):
            assert d1 == d2, k
        else:
            assert type(d1) is type(d2) and (d1 is d2 or d1 == d2), k
    assert aso.OptimizeResult is so.OptimizeResult and aso.RootResults is so.RootResults
    assert issubclass(aso.ConvergenceError, RuntimeError)


# ----- the problems: each as ours(theta), SciPy's own solve theta -> x, and theta ---------
def cube(x, a):
    return x ** 3 + 0.5 * x - a


def system(x, a):
    return np.tanh(x) + 2.0 * x + 0.1 * x[::-1] - a


A3 = np.array([0.3, -0.5, 1.0])
QM = np.array([[3.0, 0.5], [0.5, 2.0]])


def quartic(x, a):
    return 0.25 * np.sum((x - a) ** 4) + 0.5 * x @ QM @ x - a @ x


def quartic_grad(x, a):
    return (x - a) ** 3 + QM @ x - a


def quartic_hess(x, a):
    return np.diag(3 * (x - a) ** 2) + QM


A2 = np.array([0.7, -0.3])
TT = np.linspace(0.0, 2.0, 12)
YY = 1.5 * np.exp(-0.8 * TT) + 0.1 * np.cos(5 * TT)


def resid(c, t, y):
    return c[0] * np.exp(-c[1] * t) - y


def cosmap(x, a):
    return np.cos(a * x)


TIGHT = dict(ftol=1e-15, xtol=1e-15, gtol=1e-15)
MIN_OPTS = {"BFGS": {"gtol": 1e-9}, "L-BFGS-B": {"gtol": 1e-12, "ftol": 1e-15},
            "Newton-CG": {"xtol": 1e-13}, "trust-ncg": {"gtol": 1e-10},
            "trust-krylov": {"gtol": 1e-8}, "trust-exact": {"gtol": 1e-12},
            "dogleg": {"gtol": 1e-12}, "SLSQP": {"ftol": 1e-15},
            "Nelder-Mead": {"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20000},
            "Powell": {"xtol": 1e-12, "ftol": 1e-15}}
# SciPy's own solve gets the exact derivatives too, where the method needs them
MIN_EXACT = {"Newton-CG": dict(jac=quartic_grad, hessp=lambda x, p, a: quartic_hess(x, a) @ p),
             "trust-ncg": dict(jac=quartic_grad, hess=quartic_hess),
             "trust-krylov": dict(jac=quartic_grad, hess=quartic_hess),
             "trust-exact": dict(jac=quartic_grad, hess=quartic_hess),
             "dogleg": dict(jac=quartic_grad, hess=quartic_hess),
             "BFGS": dict(jac=quartic_grad), "L-BFGS-B": dict(jac=quartic_grad),
             "SLSQP": dict(jac=quartic_grad)}


def _problems():
    P = {}
    for m in ["hybr", "lm", "broyden1", "krylov", "df-sane"]:
        P[f"root-{m}"] = (
            lambda a, m=m, mod=aso: mod.root(system, np.zeros(3), args=(a,), method=m,
                                             tol=1e-13).x, A3)
    for m, kw in [("brentq", dict(bracket=(0, 3))), ("brenth", dict(bracket=(0, 3))),
                  ("bisect", dict(bracket=(0, 3))), ("ridder", dict(bracket=(0, 3))),
                  ("toms748", dict(bracket=(0, 3))), ("newton", dict(x0=1.0)),
                  ("secant", dict(x0=1.0, x1=2.0)), ("halley", dict(x0=1.0))]:
        def rs(a, m=m, kw=kw, mod=aso):
            if mod is so and m in ("newton", "halley"):
                kw = dict(kw, fprime=lambda x, a: 3 * x ** 2 + 0.5,
                          fprime2=(lambda x, a: 6 * x) if m == "halley" else None)
            return mod.root_scalar(cube, args=(a,), method=m, xtol=1e-15, rtol=1e-15,
                                   **kw).root
        P[f"root_scalar-{m}"] = (rs, 2.0)
    for n in ["brentq", "brenth", "ridder", "bisect", "toms748"]:
        P[n] = (lambda a, n=n, mod=aso: getattr(mod, n)(cube, 0.0, 3.0, args=(a,),
                                                         xtol=1e-15), 2.0)
    P["newton-scalar"] = (lambda a, mod=aso: mod.newton(
        cube, 1.0, fprime=None if mod is aso else (lambda x, a: 3 * x ** 2 + 0.5),
        args=(a,), tol=1e-15), 2.0)
    P["newton-secant"] = (lambda a, mod=aso: mod.newton(cube, 1.0, x1=1.5, args=(a,),
                                                         tol=1e-15), 2.0)
    P["newton-array"] = (lambda a, mod=aso: mod.newton(
        cube, np.ones(3), fprime=None if mod is aso else (lambda x, a: 3 * x ** 2 + 0.5),
        args=(a,), tol=1e-15), np.array([2.0, 9.0, 0.3]))
    P["fsolve"] = (lambda a, mod=aso: mod.fsolve(system, np.zeros(3), args=(a,),
                                                 xtol=1e-14), A3)
    for m in MIN_OPTS:
        def mn(a, m=m, mod=aso):
            kw = MIN_EXACT.get(m, {}) if mod is so else {}
            return mod.minimize(quartic, np.zeros(2), args=(a,), method=m,
                                options=MIN_OPTS[m], **kw).x
        P[f"minimize-{m}"] = (mn, A2)
    for loss in ["linear", "soft_l1", "huber", "cauchy", "arctan"]:
        P[f"least_squares-{loss}"] = (
            lambda y, loss=loss, mod=aso: mod.least_squares(
                resid, [1.0, 1.0], args=(TT, y), loss=loss, f_scale=0.05, **TIGHT).x, YY)
    P["least_squares-lm"] = (lambda y, mod=aso: mod.least_squares(
        resid, [1.0, 1.0], args=(TT, y), method="lm", **TIGHT).x, YY)
    P["least_squares-dogbox"] = (lambda y, mod=aso: mod.least_squares(
        resid, [1.0, 1.0], args=(TT, y), method="dogbox", **TIGHT).x, YY)
    for m in ["del2", "iteration"]:
        P[f"fixed_point-{m}"] = (lambda a, m=m, mod=aso: mod.fixed_point(
            cosmap, np.full(2, 0.5), args=(a,), method=m, xtol=1e-14, maxiter=5000),
            np.array([1.0, 0.5]))
    return P


PROBLEMS = _problems()
# SciPy's own solve is accurate to ~1e-12 on most of these; least_squares' to ~1e-9 (its
# steps stop at xtol), Nelder-Mead's and Powell's less
FD_TOL = {"minimize-Nelder-Mead": 1e-4, "minimize-Powell": 1e-4,
          **{k: 2e-5 for k in PROBLEMS if k.startswith("least_squares")}}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_plain_value_is_scipys(name):
    solve, theta = PROBLEMS[name]
    ours, theirs = solve(theta), solve(theta, mod=so)
    assert type(ours) is type(theirs)
    assert np.shape(ours) == np.shape(theirs)
    close(ours, theirs, rtol=FD_TOL.get(name, 1e-7), atol=FD_TOL.get(name, 1e-9))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_first_derivatives_both_modes_against_finite_differences(name):
    solve, theta = PROBLEMS[name]
    tol = FD_TOL.get(name, 1e-6)
    want = fd(lambda t: solve(t, mod=so), theta)
    J_fwd = ad.jacfwd(solve)(theta)
    J_rev = ad.jacrev(solve)(theta)
    close(J_fwd, want, rtol=tol, atol=tol)
    close(J_rev, J_fwd, rtol=1e-10, atol=1e-12)
    t = np.linspace(0.5, -0.7, np.size(theta)).reshape(np.shape(theta))
    x, dx = ad.jvp(solve, (theta,), (t,))
    close(x, solve(theta), rtol=1e-12, atol=1e-14)
    close(dx, np.tensordot(J_fwd, t, axes=np.ndim(theta)), rtol=1e-10, atol=1e-12)
    w = np.linspace(1.0, 2.0, np.size(x)).reshape(np.shape(x))
    g = ad.grad(lambda th: np.sum(w * solve(th)))(theta)
    close(g, np.tensordot(w, J_rev, axes=np.ndim(x)), rtol=1e-10, atol=1e-12)


SECOND = ["root-hybr", "root_scalar-brentq", "root_scalar-newton", "root_scalar-halley",
          "brentq", "toms748", "newton-scalar", "newton-array", "fsolve", "minimize-BFGS",
          "minimize-trust-exact", "minimize-Newton-CG", "least_squares-linear",
          "least_squares-soft_l1", "fixed_point-del2"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", SECOND)
def test_second_derivatives(name):
    """ad.hessian and jacfwd(jacrev) of a scalar of the solution agree, and match central
    differences of the (already checked) first derivative."""
    solve, theta = PROBLEMS[name]
    w = lambda th: np.sum(np.cos(np.arange(1.0, 1.0 + np.size(solve(th)))) * solve(th))
    H = ad.hessian(w)(theta)
    close(ad.jacfwd(ad.jacrev(w))(theta), H, rtol=1e-9, atol=1e-11)
    close(ad.jacrev(ad.grad(w))(theta), H, rtol=1e-9, atol=1e-11)
    close(H, fd(ad.grad(w), theta), rtol=1e-6, atol=FD_TOL.get(name, 1e-6) / 100)


def test_grad_of_grad_is_analytic():
    r = lambda a: aso.brentq(lambda x, a: x ** 3 - a, 0.0, 10.0, args=(a,), xtol=1e-15)
    close(ad.grad(r)(8.0), 1 / 12, rtol=1e-12)
    close(ad.grad(ad.grad(r))(8.0), -2 / 9 * 8.0 ** (-5 / 3), rtol=1e-10)
    close(ad.grad(ad.grad(ad.grad(r)))(8.0), 10 / 27 * 8.0 ** (-8 / 3), rtol=1e-10)
    close(ad.jvp(ad.grad(r), (8.0,), (1.0,))[1], -2 / 9 * 8.0 ** (-5 / 3), rtol=1e-10)
    close(ad.derivative(r, 2)(8.0), -2 / 9 * 8.0 ** (-5 / 3), rtol=1e-10)
    m = lambda a: aso.minimize(lambda x, a: np.sum((x - a) ** 2 + x ** 4), np.zeros(1),
                               args=(a,), options={"gtol": 1e-12}).fun
    # f* = min_x (x - a)^2 + x^4; df*/da = -2 (x* - a); d2f*/da2 = 2 - 2 dx*/da
    a = 0.8
    x = aso.minimize(lambda x, a: np.sum((x - a) ** 2 + x ** 4), np.zeros(1), args=(a,),
                     options={"gtol": 1e-12}).x[0]
    close(ad.grad(m)(a), -2 * (x - a), rtol=1e-9)
    close(ad.grad(ad.grad(m))(a), 2 - 2 * 2 / (2 + 12 * x ** 2), rtol=1e-8)


def test_no_perturbation_confusion():
    inner = lambda x: ad.grad(lambda y: aso.brentq(lambda z, c: z ** 3 - c, -10.0, 10.0,
                                                   args=(x + y,), xtol=1e-15))(1.0)
    # d/dx [x * d/dy cbrt(x + y)] at y = 1 is cbrt'(x+1) + x cbrt''(x+1)
    x = 7.0
    want = (1 / 3) * 8.0 ** (-2 / 3) + x * (-2 / 9) * 8.0 ** (-5 / 3)
    close(ad.grad(lambda x: x * inner(x))(x), want, rtol=1e-10)
    close(ad.grad(lambda x: x * ad.grad(lambda y: aso.brentq(
        lambda z, c: z - c, -10.0, 10.0, args=(x + y,)))(1.0))(2.0), 1.0, rtol=1e-12)


# ----- args as a tuple and as one value ----------------------------------------------------
def _single_arg_calls():
    f = lambda x, a: x ** 3 - a
    return {
        "root": lambda a, args: aso.root(f, np.ones(2), args=args).x,
        "root_scalar": lambda a, args: aso.root_scalar(f, args=args, bracket=(0, 5)).root,
        "brentq": lambda a, args: aso.brentq(f, 0.0, 5.0, args=args),
        "brenth": lambda a, args: aso.brenth(f, 0.0, 5.0, args=args),
        "ridder": lambda a, args: aso.ridder(f, 0.0, 5.0, args=args),
        "bisect": lambda a, args: aso.bisect(f, 0.0, 5.0, args=args),
        "toms748": lambda a, args: aso.toms748(f, 0.0, 5.0, args=args),
        "newton": lambda a, args: aso.newton(f, 1.0, args=args),
        "fsolve": lambda a, args: aso.fsolve(f, np.ones(2), args=args),
        "minimize": lambda a, args: aso.minimize(lambda x, a: np.sum((x - a) ** 2 + x ** 4),
                                                 np.zeros(2), args=args).x,
        "least_squares": lambda a, args: aso.least_squares(lambda x, a: x ** 2 - a,
                                                           np.ones(2), args=args).x,
        "fixed_point": lambda a, args: aso.fixed_point(lambda x, a: np.cos(a * x), 0.5,
                                                       args=args),
    }


@pytest.mark.parametrize("name", list(_single_arg_calls()))
def test_args_as_one_value_or_a_tuple(name):
    call = _single_arg_calls()[name]
    a = 8.0 if name not in ("minimize", "fixed_point") else 0.7
    via_tuple = lambda a: call(a, (a,))
    via_value = lambda a: call(a, a)
    close(via_value(a), via_tuple(a), rtol=1e-12, atol=1e-14)
    d = lambda f: ad.jacfwd(f)(a)
    close(d(via_value), d(via_tuple), rtol=1e-12, atol=1e-14)
    close(ad.jacrev(via_value)(a), d(via_tuple), rtol=1e-12, atol=1e-14)


# ----- result objects: SciPy's types and fields --------------------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_result_objects_have_scipys_fields():
    for m in ["hybr", "lm", "broyden1", "krylov", "df-sane"]:
        ours = aso.root(system, np.zeros(3), args=(A3,), method=m, tol=1e-12)
        theirs = so.root(system, np.zeros(3), args=(A3,), method=m, tol=1e-12)
        assert type(ours) is so.OptimizeResult
        assert set(theirs) <= set(ours), m          # the engine's jac adds njev
        assert ours.success and ours.x.shape == theirs.x.shape == (3,)
    for kw in [dict(bracket=(0, 3)), dict(bracket=(0, 3), method="bisect"), dict(x0=1.0),
               dict(x0=1.0, x1=2.0), dict(x0=1.0, method="secant")]:
        ours, theirs = aso.root_scalar(cube, args=(2.0,), **kw), \
            so.root_scalar(cube, args=(2.0,), **kw)
        assert type(ours) is so.RootResults and set(ours) == set(theirs)
        assert ours.method == theirs.method and ours.converged and ours.flag == theirs.flag
        close(ours.root, theirs.root, rtol=1e-9)
        tracked = ad.grad(lambda a: aso.root_scalar(cube, args=(a,), **kw).root)(2.0)
        close(tracked, 1 / (3 * ours.root ** 2 + 0.5), rtol=1e-8)
    for n in ["brentq", "brenth", "ridder", "bisect", "toms748"]:
        x, r = getattr(aso, n)(cube, 0.0, 3.0, args=(2.0,), full_output=True)
        x2, r2 = getattr(so, n)(cube, 0.0, 3.0, args=(2.0,), full_output=True)
        assert x == x2 and type(x) is type(x2) and set(r) == set(r2) and r.root == x
        assert (r.iterations, r.function_calls, r.method) == \
            (r2.iterations, r2.function_calls, r2.method)
        assert getattr(aso, n)(cube, 0.0, 3.0, args=(2.0,)) == x
    x, info, ier, msg = aso.fsolve(system, np.zeros(3), args=(A3,), full_output=True)
    x2, info2, ier2, msg2 = so.fsolve(system, np.zeros(3), args=(A3,), full_output=True)
    assert ier == ier2 == 1 and msg == msg2 and set(info2) <= set(info)
    close(x, x2, rtol=1e-9)
    out = aso.fsolve(system, np.zeros(3), args=(A3,), full_output=1)
    assert isinstance(out, tuple) and len(out) == 4
    assert isinstance(aso.fsolve(system, np.zeros(3), args=(A3,)), np.ndarray)
    res = aso.minimize(quartic, np.zeros(2), args=(A2,))
    res2 = so.minimize(quartic, np.zeros(2), args=(A2,))
    assert type(res) is so.OptimizeResult and set(res) == set(res2)
    res = aso.least_squares(resid, [1.0, 1.0], args=(TT, YY))
    res2 = so.least_squares(resid, [1.0, 1.0], args=(TT, YY))
    assert type(res) is so.OptimizeResult and set(res) == set(res2)


def test_tracked_result_fields():
    """``.x``/``.root`` are tracked; ``.fun`` (and least_squares' ``.cost``) too, with the
    envelope theorem's derivative; full_output's RootResults carries the tracked root."""
    g = ad.grad(lambda a: aso.root_scalar(cube, args=(a,), x0=1.0).root)(2.0)
    for n in ["brentq", "toms748"]:
        gr = ad.grad(lambda a: getattr(aso, n)(cube, 0.0, 3.0, args=(a,),
                                               full_output=True)[1].root)(2.0)
        close(gr, g, rtol=1e-9)
    gn = ad.grad(lambda a: aso.newton(cube, 1.0, args=(a,), full_output=True)[1].root)(2.0)
    close(gn, g, rtol=1e-9)
    gn = ad.jacrev(lambda a: aso.newton(cube, np.ones(2), args=(a,), full_output=True)
                   .root)(np.array([2.0, 2.0]))
    close(gn, np.eye(2) * g, rtol=1e-9)
    gf = ad.grad(lambda a: aso.fsolve(cube, 1.0, args=(a,), full_output=True)[0][0])(2.0)
    close(gf, g, rtol=1e-9)
    x = aso.minimize(quartic, np.zeros(2), args=(A2,), options={"gtol": 1e-12}).x
    close(ad.grad(lambda a: aso.minimize(quartic, np.zeros(2), args=(a,),
                                         options={"gtol": 1e-12}).fun)(A2),
          -(x - A2) ** 3 - x, rtol=1e-8)                        # ∂f/∂a at x*
    c = aso.least_squares(resid, [1.0, 1.0], args=(TT, YY), **TIGHT).x
    res = lambda y: aso.least_squares(resid, [1.0, 1.0], args=(TT, y), **TIGHT)
    close(ad.grad(lambda y: res(y).cost)(YY), -resid(c, TT, YY), rtol=1e-8)
    close(ad.jacfwd(lambda y: res(y).fun)(YY),
          fd(lambda y: so.least_squares(resid, [1.0, 1.0], args=(TT, y), **TIGHT).fun, YY),
          rtol=1e-4, atol=2e-6)


# ----- float32, 0-d and size-1 inputs ----------------------------------------------------
F32_CALLS = {
    "root": lambda a: aso.root(lambda x, a: x ** 3 - a, np.ones(2), args=(a,)).x,
    "root_scalar": lambda a: aso.root_scalar(lambda x, a: x ** 3 - a, args=(a[0],),
                                             x0=1.0).root,
    "brentq": lambda a: aso.brentq(lambda x, a: x ** 3 - a, 0.0, 5.0, args=(a[0],)),
    "newton": lambda a: aso.newton(lambda x, a: x ** 3 - a, np.ones(2, np.float32),
                                   args=(a,)),
    "fsolve": lambda a: aso.fsolve(lambda x, a: x ** 3 - a, np.ones(2), args=(a,)),
    "minimize": lambda a: aso.minimize(lambda x, a: np.sum((x - a / 8) ** 2 + x ** 4),
                                       np.zeros(2), args=(a,)).x,
    "least_squares": lambda a: aso.least_squares(lambda x, a: x ** 2 - a, np.ones(2),
                                                 args=(a,)).x,
    "fixed_point": lambda a: aso.fixed_point(lambda x, a: np.cos(a / 8 * x),
                                             np.full(2, 0.5, np.float32), args=(a,)),
}


@pytest.mark.parametrize("name", list(F32_CALLS))
def test_float32_args_give_float32_derivatives(name):
    call = F32_CALLS[name]
    a32 = np.array([8.0, 7.0], np.float32)
    J64 = ad.jacrev(call)(a32.astype(np.float64))
    J = ad.jacrev(call)(a32)
    assert J.dtype == np.float32
    close(J, J64, rtol=1e-5, atol=1e-6)
    g = ad.grad(lambda a: np.sum(call(a)))(a32)
    assert g.dtype == np.float32


def test_float32_values_stay_float32_where_scipy_keeps_them():
    f = lambda x, a: x ** 3 - a
    x = aso.newton(f, np.float32(1.0), args=(np.float32(8.0),))
    assert type(x) is type(so.newton(f, np.float32(1.0), args=(np.float32(8.0),)))
    v = aso.fixed_point(cosmap, np.full(2, 0.5, np.float32), args=(np.float32(1.0),))
    assert v.dtype == so.fixed_point(cosmap, np.full(2, 0.5, np.float32),
                                     args=(np.float32(1.0),)).dtype == np.float32
    # tracked: the value keeps SciPy's dtype
    vt = aso.fixed_point(cosmap, np.full(2, 0.5, np.float32),
                         args=(ad.Variable(np.float32(1.0)),))
    assert vt.dtype == np.float32


def test_zero_d_and_size_one_inputs():
    f = lambda x, a: x ** 3 - a
    # root, fsolve, minimize, least_squares: SciPy makes x 1-d
    for call, ref in [
            (lambda a, x0: aso.root(f, x0, args=(a,)).x, lambda a, x0: so.root(f, x0, args=(a,)).x),
            (lambda a, x0: aso.fsolve(f, x0, args=(a,)), lambda a, x0: so.fsolve(f, x0, args=(a,))),
            (lambda a, x0: aso.least_squares(f, x0, args=(a,)).x,
             lambda a, x0: so.least_squares(f, x0, args=(a,)).x)]:
        for x0 in (1.0, np.array(1.0), np.array([1.0])):
            assert call(8.0, x0).shape == ref(8.0, x0).shape == (1,)
            close(call(8.0, x0), ref(8.0, x0), rtol=1e-7)
            close(ad.grad(lambda a: call(a, x0)[0])(8.0), 1 / 12, rtol=1e-6)
            close(ad.grad(lambda a: call(a, x0)[0])(np.array(8.0)), 1 / 12, rtol=1e-6)
    m = lambda a, x0: aso.minimize(lambda x, a: np.sum((x - a) ** 2 + x ** 4), x0,
                                   args=(a,), options={"gtol": 1e-12}).x
    for x0 in (0.0, np.array(0.0), np.array([0.0])):
        x = m(0.5, x0)
        assert x.shape == (1,)
        close(ad.grad(lambda a: m(a, x0)[0])(np.array(0.5)), 2 / (2 + 12 * x[0] ** 2),
              rtol=1e-8)
    # newton: a 0-d or size-1 x0 is SciPy's scalar form, its shape kept
    for x0 in (1.0, np.array(1.0), np.array([1.0])):
        ours, theirs = aso.newton(f, x0, args=(8.0,)), so.newton(f, x0, args=(8.0,))
        assert np.shape(ours) == np.shape(theirs)
        close(ours, 2.0, rtol=1e-12)
        x, r = aso.newton(f, x0, args=(8.0,), full_output=True)
        assert r.converged and np.shape(x) == np.shape(theirs)
        close(ad.grad(lambda a: np.sum(aso.newton(f, x0, args=(a,))))(8.0), 1 / 12,
              rtol=1e-10)
        close(ad.grad(lambda a: np.sum(aso.newton(f, x0, args=(a,), full_output=True)[0]))(
            8.0), 1 / 12, rtol=1e-10)
    # fixed_point: a 0-d x0 gives a 0-d result, a size-1 one a size-1 result
    for x0 in (0.5, np.array(0.5), np.array([0.5])):
        ours, theirs = aso.fixed_point(cosmap, x0, args=(1.0,)), \
            so.fixed_point(cosmap, x0, args=(1.0,))
        assert np.shape(ours) == np.shape(theirs)
        g = ad.jacfwd(lambda a: aso.fixed_point(cosmap, x0, args=(a,), xtol=1e-14))(1.0)
        xs = np.ravel(theirs)[0]
        close(np.ravel(g), -xs * np.sin(xs) / (1 + np.sin(xs)), rtol=1e-8)
    # a 0-d array arg of a bracketing solver
    close(ad.grad(lambda a: aso.brentq(f, 0.0, 5.0, args=(a,)))(np.array(8.0)), 1 / 12,
          rtol=1e-10)


# ----- closures over a tracked value: refused, never silently wrong ------------------------
def _closures():
    return {
        "root": lambda a: aso.root(lambda x: x ** 3 - a, [1.0]).x[0],
        "root-broyden1": lambda a: aso.root(lambda x: x ** 3 - a, [1.8],
                                            method="broyden1").x[0],
        "root_scalar-bracket": lambda a: aso.root_scalar(lambda x: x ** 3 - a,
                                                         bracket=(0, 4)).root,
        "root_scalar-secant": lambda a: aso.root_scalar(lambda x: x ** 3 - a, x0=1.0,
                                                        x1=2.0).root,
        "root_scalar-newton": lambda a: aso.root_scalar(lambda x: x ** 3 - a, x0=1.0).root,
        "brentq": lambda a: aso.brentq(lambda x: x ** 3 - a, 0.0, 4.0),
        "toms748": lambda a: aso.toms748(lambda x: x ** 3 - a, 0.0, 4.0),
        "newton": lambda a: aso.newton(lambda x: x ** 3 - a, 1.0),
        "newton-secant": lambda a: aso.newton(lambda x: x ** 3 - a, 1.0, x1=2.0),
        "newton-fprime": lambda a: aso.newton(lambda x: x ** 3 - a, 1.0,
                                              fprime=lambda x: 3 * x ** 2),
        "newton-array": lambda a: aso.newton(lambda x: x ** 3 - a, np.ones(2))[0],
        "fsolve": lambda a: aso.fsolve(lambda x: x ** 3 - a, [1.0])[0],
        "minimize": lambda a: aso.minimize(lambda x: np.sum((x - a) ** 2), [1.0]).x[0],
        "minimize-0d-x0": lambda a: aso.minimize(lambda x: (x[0] - a) ** 2, 1.0).x[0],
        "least_squares-0d-x0": lambda a: aso.least_squares(lambda x: x[0] - a, 1.0).x[0],
        "minimize-nelder-mead": lambda a: aso.minimize(lambda x: np.sum((x - a) ** 2), [1.0],
                                                       method="Nelder-Mead").x[0],
        "minimize-constraint": lambda a: aso.minimize(
            lambda x: np.sum(x ** 2), [1.0, 1.0],
            constraints={"type": "eq", "fun": lambda x: x[0] - a / 16}).x[0],
        "least_squares": lambda a: aso.least_squares(lambda x: x - a, [1.0]).x[0],
        "least_squares-lm": lambda a: aso.least_squares(lambda x: x - a, [1.0],
                                                        method="lm").x[0],
        "fixed_point": lambda a: aso.fixed_point(lambda x: np.cos(a / 8 * x), 0.5),
        "fixed_point-iteration": lambda a: aso.fixed_point(lambda x: np.cos(a / 8 * x), 0.5,
                                                           method="iteration"),
    }


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", list(_closures()))
@pytest.mark.parametrize("transform", ["grad", "jvp", "jit"])
def test_a_function_closing_over_a_tracked_value_is_refused_clearly(name, transform):
    call = _closures()[name]
    run = {"grad": lambda: ad.grad(call)(8.0),
           "jvp": lambda: ad.jvp(call, (8.0,), (1.0,)),
           "jit": lambda: ad.jit(call)(8.0)}[transform]
    with pytest.raises(TypeError, match=r"closes over a value tracked.*args"):
        run()
    assert np.isfinite(call(8.0))                    # the plain call still works
    # and so does the same transform with the value passed in args
    close(ad.grad(lambda a: aso.brentq(lambda x, a: x ** 3 - a, 0.0, 4.0, args=(a,)))(8.0),
          1 / 12, rtol=1e-10)


# ----- ad.jit: a jitted function calling the solvers -------------------------------------
def test_jit_calls_solvers_with_fresh_numbers_each_time():
    f = lambda x, a: x ** 3 - a
    calls = {
        "brentq": (lambda a: aso.brentq(f, 0.0, 5.0, args=(a,)),
                   lambda a: so.brentq(f, 0.0, 5.0, args=(a,))),
        "root": (lambda a: aso.root(f, np.ones(2), args=(a,)).x,
                 lambda a: so.root(f, np.ones(2), args=(a,)).x),
        "root_scalar": (lambda a: aso.root_scalar(f, args=(a,), x0=1.0).root,
                        lambda a: 0.0 + a ** (1 / 3)),
        "newton": (lambda a: aso.newton(f, 1.0, args=(a,)), lambda a: 0.0 + a ** (1 / 3)),
        "fsolve": (lambda a: aso.fsolve(f, np.ones(2), args=(a,)),
                   lambda a: so.fsolve(f, np.ones(2), args=(a,))),
        "minimize": (lambda a: aso.minimize(lambda x, a: np.sum((x - a / 8) ** 2 + x ** 4),
                                            np.zeros(2), args=(a,),
                                            options={"gtol": 1e-10}).x,
                     lambda a: so.minimize(lambda x, a: np.sum((x - a / 8) ** 2 + x ** 4),
                                           np.zeros(2), args=(a,),
                                           jac=lambda x, a: 2 * (x - a / 8) + 4 * x ** 3,
                                           options={"gtol": 1e-10}).x),
        "least_squares": (lambda a: aso.least_squares(f, np.ones(2), args=(a,), **TIGHT).x,
                          lambda a: so.least_squares(f, np.ones(2), args=(a,), **TIGHT).x),
        "fixed_point": (lambda a: aso.fixed_point(lambda x, a: np.cos(a / 8 * x), 0.5,
                                                  args=(a,), xtol=1e-14),
                        lambda a: so.fixed_point(lambda x, a: np.cos(a / 8 * x), 0.5,
                                                 args=(a,), xtol=1e-14)),
    }
    for name, (ours, ref) in calls.items():
        j = ad.jit(ours)
        for a in (8.0, 27.0, 3.0):
            close(j(a), ref(a), rtol=1e-7, atol=1e-9)
            close(ad.jacfwd(j)(a), ad.jacfwd(ours)(a), rtol=1e-9)
            close(ad.jacrev(j)(a), ad.jacfwd(ours)(a), rtol=1e-9)
        jg = ad.jit(ad.jacrev(ours))
        for a in (8.0, 27.0):
            close(jg(a), fd(lambda t: ref(t[0]), np.array([a]))[..., 0], rtol=1e-5,
                  atol=1e-7)
    # bounds whose active set changes between calls
    jb = ad.jit(lambda a: aso.minimize(lambda x, a: np.sum((x - a) ** 2), [1.0], args=(a,),
                                       bounds=[(0.0, 10.0)]).x[0])
    for a, x, d in [(8.0, 8.0, 1.0), (27.0, 10.0, 0.0), (-1.0, 0.0, 0.0), (5.0, 5.0, 1.0)]:
        close(jb(a), x, rtol=1e-6, atol=1e-8)
        close(ad.grad(jb)(a), d, atol=1e-8)


# ----- convergence failures ---------------------------------------------------------------
def _failures():
    return {
        "root": lambda: aso.root(lambda x, a: x ** 2 + a, [1.0], args=(1.0,)),
        "root-broyden1": lambda: aso.root(lambda x, a: x ** 2 + a, [1.0], args=(1.0,),
                                          method="broyden1", options={"maxiter": 5}),
        "root_scalar-bracket": lambda: aso.root_scalar(cube, args=(2.0,), bracket=(0, 3),
                                                       maxiter=2),
        "root_scalar-newton": lambda: aso.root_scalar(cube, args=(2.0,), x0=100.0,
                                                      maxiter=2),
        "brentq-disp": lambda: aso.brentq(cube, 0.0, 3.0, args=(2.0,), maxiter=2),
        "brentq": lambda: aso.brentq(cube, 0.0, 3.0, args=(2.0,), maxiter=2, disp=False),
        "bisect-disp": lambda: aso.bisect(cube, 0.0, 3.0, args=(2.0,), maxiter=2),
        "toms748": lambda: aso.toms748(cube, 0.0, 3.0, args=(2.0,), maxiter=1, disp=False),
        "newton-disp": lambda: aso.newton(lambda x: x ** 2 + 1, 1.0, maxiter=5),
        "newton": lambda: aso.newton(lambda x: x ** 2 + 1, 1.0, maxiter=5, disp=False),
        "newton-array": lambda: aso.newton(lambda x: x ** 2 + 1, np.ones(2), maxiter=5,
                                           disp=False),
        "newton-array-disp": lambda: aso.newton(lambda x: x ** 2 + 1, np.ones(2),
                                                maxiter=5),
        "fsolve": lambda: aso.fsolve(lambda x: x ** 2 + 1, [1.0]),
        "fsolve-full": lambda: aso.fsolve(lambda x: x ** 2 + 1, [1.0], full_output=True),
        "minimize": lambda: aso.minimize(quartic, np.zeros(2), args=(A2,),
                                         options={"maxiter": 1}),
        "minimize-nelder-mead": lambda: aso.minimize(quartic, np.zeros(2), args=(A2,),
                                                     method="Nelder-Mead",
                                                     options={"maxiter": 3}),
        "least_squares": lambda: aso.least_squares(resid, [1.0, 1.0], args=(TT, YY),
                                                   max_nfev=2),
        "fixed_point": lambda: aso.fixed_point(lambda x, a: x + a, 0.5, args=(3.0,),
                                               maxiter=20),
        "fixed_point-iteration": lambda: aso.fixed_point(lambda x, a: x + a, 0.5,
                                                         args=(3.0,), maxiter=20,
                                                         method="iteration"),
    }


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", list(_failures()))
def test_convergence_failure_raises_convergence_error(name):
    with pytest.raises(aso.ConvergenceError, match="did not converge") as info:
        _failures()[name]()
    assert isinstance(info.value, RuntimeError)
    assert name.split("-")[0] in str(info.value)


def test_scipys_own_value_errors_stand():
    with pytest.raises(ValueError, match="different signs"):
        aso.brentq(cube, 2.0, 3.0, args=(2.0,))
    with pytest.raises(ValueError, match="different signs"):
        ad.grad(lambda a: aso.brentq(cube, 2.0, 3.0, args=(a,)))(2.0)


def test_a_user_error_inside_the_function_is_not_a_convergence_error():
    def f(x, a):
        raise RuntimeError("user's own")
    for call in (lambda: aso.brentq(f, 0.0, 1.0, args=(1.0,)),
                 lambda: aso.newton(f, 1.0, args=(1.0,)),
                 lambda: aso.fixed_point(f, 1.0, args=(1.0,)),
                 lambda: aso.root(f, [1.0], args=(1.0,))):
        with pytest.raises(RuntimeError, match="user's own") as info:
            call()
        assert not isinstance(info.value, aso.ConvergenceError)


# ----- a call after an exception in a derivative sweep ------------------------------------
def test_calls_after_an_exception_in_a_derivative_sweep_are_correct():
    f = lambda x, a: x ** 3 - a
    flat = lambda a: aso.brentq(lambda x, a: a * (x - 0.5), 0.0, 1.0, args=(a,))
    with pytest.raises(np.linalg.LinAlgError, match="singular"):   # ∂F/∂x = a = 0
        ad.grad(flat)(0.0)
    with pytest.raises(np.linalg.LinAlgError, match="singular"):
        ad.jacfwd(lambda a: aso.root(lambda x, a: a * (x - 0.5), np.ones(2), args=(a,)).x)(
            0.0)
    r = lambda a: aso.brentq(f, -1.0, 4.0, args=(a,), xtol=1e-15)
    close(ad.grad(r)(8.0), 1 / 12, rtol=1e-12)
    close(ad.hessian(r)(8.0), -2 / 9 * 8.0 ** (-5 / 3), rtol=1e-10)

    def only_plain(x, a):          # fails on the derivative sweep's tracked arguments
        if any(type(v) in (ad.Dual, ad.Variable) for v in flatten((x, a))[0]):
            raise KeyError("tracked")
        return x ** 3 - a
    solvers = [lambda g, a: aso.brentq(g, 0.0, 4.0, args=(a,)),
               lambda g, a: aso.root(g, [1.0], args=(a,)).x[0],
               lambda g, a: aso.newton(g, 1.0, args=(a,), fprime=lambda x, a: 3 * x ** 2),
               lambda g, a: aso.minimize(lambda x, a: np.sum(g(x, a) ** 2), [1.0],
                                         args=(a,), method="Nelder-Mead").x[0]]
    for solve in solvers:
        with pytest.raises(KeyError):
            ad.grad(lambda a: solve(only_plain, a))(8.0)
        with pytest.raises(KeyError):
            ad.jvp(lambda a: solve(only_plain, a), (8.0,), (1.0,))
        close(ad.grad(lambda a: solve(f, a))(27.0), 1 / 27, rtol=1e-6)
        close(ad.jvp(lambda a: solve(f, a), (27.0,), (2.0,))[1], 2 / 27, rtol=1e-6)
    close(ad.jacrev(lambda a: aso.root(f, np.ones(2), args=(a,)).x)(np.array([8.0, 27.0])),
          np.diag([1 / 12, 1 / 27]), rtol=1e-9)


# ----- the solver's derivatives come from the engine ---------------------------------------
def test_root_and_fsolve_jacobian_from_the_engine():
    g = counting(system)
    ours = aso.root(g, np.zeros(3), args=(A3,), method="hybr")
    assert ours.njev >= 1 and g.plain == ours.nfev        # no finite-difference calls
    theirs = so.root(system, np.zeros(3), args=(A3,), method="hybr")
    assert ours.nfev < theirs.nfev
    g.plain = 0
    ours = aso.root(g, np.zeros(3), args=(A3,), method="lm")
    assert ours.njev >= 1 and g.plain == ours.nfev
    g.plain = 0
    x, info, ier, _ = aso.fsolve(g, np.zeros(3), args=(A3,), full_output=True)
    assert info["njev"] >= 1 and g.plain == info["nfev"]
    g.plain = 0
    aso.fsolve(g, np.zeros(3), args=(A3,), col_deriv=True)
    close(aso.fsolve(system, np.zeros(3), args=(A3,), col_deriv=True),
          so.fsolve(system, np.zeros(3), args=(A3,)), rtol=1e-9)


def test_scalar_solvers_fprime_from_the_engine():
    f = counting(cube)
    x, r = aso.newton(f, 1.0, args=(2.0,), full_output=True)
    assert r.method == "newton" and r.converged
    assert f.plain == r.function_calls // 2       # SciPy counts f and f' calls
    x2, r2 = so.newton(cube, 1.0, fprime=lambda x, a: 3 * x ** 2 + 0.5, args=(2.0,),
                       full_output=True)
    assert x == x2 and r.iterations == r2.iterations
    f.plain = 0
    sol = aso.root_scalar(f, args=(2.0,), method="halley", x0=1.0)
    ref = so.root_scalar(cube, args=(2.0,), method="halley", x0=1.0,
                         fprime=lambda x, a: 3 * x ** 2 + 0.5, fprime2=lambda x, a: 6 * x)
    assert sol.method == "halley" and sol.iterations == ref.iterations
    assert f.plain == sol.function_calls // 3
    close(sol.root, ref.root, rtol=1e-14)
    f.plain = 0
    sol = aso.root_scalar(f, args=(2.0,), x0=1.0)
    assert sol.method == "newton" and f.plain == sol.function_calls // 2
    xs = aso.newton(f, np.ones(3), args=(np.array([2.0, 9.0, 0.3]),))
    close(cube(xs, np.array([2.0, 9.0, 0.3])), 0.0, atol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_minimize_and_least_squares_derivatives_from_the_engine():
    g = counting(quartic)
    for m in ["BFGS", "L-BFGS-B", "CG", "SLSQP", "TNC"]:
        g.plain = 0
        res = aso.minimize(g, np.zeros(2), args=(A2,), method=m)
        assert res.success and g.plain == res.nfev, m        # no finite differences
        assert res.get("njev", 1) >= 1
    for m in ["Newton-CG", "trust-ncg", "trust-krylov", "trust-exact", "dogleg"]:
        res = aso.minimize(quartic, np.zeros(2), args=(A2,), method=m)
        assert res.success and (res.get("nhev", 0) >= 1), m   # hess or hessp filled
        ref = so.minimize(quartic, np.zeros(2), args=(A2,), method=m,
                          **MIN_EXACT.get(m, dict(jac=quartic_grad, hess=quartic_hess)))
        close(res.x, ref.x, rtol=1e-8, atol=1e-10)
    cons = [{"type": "ineq", "fun": lambda x: 1.0 - x[0] - x[1]}]
    res = aso.minimize(quartic, np.zeros(2), args=(A2,), constraints=cons)
    ref = so.minimize(quartic, np.zeros(2), args=(A2,), constraints=cons, jac=quartic_grad)
    close(res.x, ref.x, rtol=1e-7, atol=1e-9)
    r = counting(resid)
    res = aso.least_squares(r, [1.0, 1.0], args=(TT, YY))
    assert res.success and res.njev >= 1 and r.plain == res.nfev
    close(res.jac, ad.jacfwd(resid)(res.x, TT, YY), rtol=1e-12)


# ----- minimize: bounds and constraints, active and inactive -------------------------------
def _f2(x, a):
    return np.sum((x - a) ** 2) + 0.1 * np.sum(x ** 4)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("method", ["L-BFGS-B", "TNC", "SLSQP", "Nelder-Mead"])
def test_minimize_bounds_active_and_inactive(method):
    opts = {"L-BFGS-B": {"gtol": 1e-12, "ftol": 1e-15}, "TNC": {"gtol": 1e-12, "ftol": 1e-15,
                                                                 "xtol": 1e-15},
            "SLSQP": {"ftol": 1e-15}, "Powell": {"xtol": 1e-13, "ftol": 1e-15},
            "Nelder-Mead": {"xatol": 1e-13, "fatol": 1e-15, "maxiter": 20000}}[method]
    bounds = [(0.0, 1.0), (-1.0, 1.0), (None, 0.5)]

    def xs(a, mod=aso):
        kw = {"jac": lambda x, a: 2 * (x - a) + 0.4 * x ** 3} \
            if mod is so and method in ("L-BFGS-B", "TNC", "SLSQP") else {}
        return mod.minimize(_f2, np.full(3, 0.2), args=(a,), method=method, bounds=bounds,
                            options=opts, **kw).x
    a = np.array([0.5, 2.0, 1.5])      # x0 free, x1 on its upper bound, x2 on its upper bound
    x = xs(a)
    close(x[1:], [1.0, 0.5], atol=1e-7)
    J = ad.jacrev(xs)(a)
    close(ad.jacfwd(xs)(a), J, rtol=1e-10, atol=1e-12)
    want = np.zeros((3, 3))
    want[0, 0] = 2 / (2 + 1.2 * x[0] ** 2)
    close(J, want, rtol=1e-5, atol=1e-6)
    close(J, fd(lambda t: xs(t, so), a, h=1e-3), rtol=1e-3, atol=1e-4)
    a = np.array([0.5, 0.3, -0.2])     # all inactive
    close(ad.jacrev(xs)(a), fd(lambda t: xs(t, so), a, h=1e-3), rtol=1e-3, atol=1e-4)


def _xs_constrained(a, c, typ, bounds, method="SLSQP", mod=aso):
    cons = [{"type": typ, "fun": lambda x, c: c - np.sum(x), "args": (c,)},
            {"type": "ineq", "fun": lambda x: 5.0 - x[1]}]                # never active
    opts = {"ftol": 1e-15, "maxiter": 500} if method == "SLSQP" else \
        {"gtol": 1e-13, "xtol": 1e-15, "maxiter": 5000}
    kw = {"jac": lambda x, a: 2 * (x - a) + 0.4 * x ** 3} if mod is so else {}
    return mod.minimize(_f2, np.zeros(3), args=(a,), method=method, constraints=cons,
                        bounds=bounds, options=opts, **kw).x


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore:delta_grad")
@pytest.mark.parametrize("typ", ["eq", "ineq"])
@pytest.mark.parametrize("case", ["active", "inactive", "active+bound"])
def test_minimize_slsqp_constraints_against_finite_differences(typ, case):
    a = {"active": np.array([1.0, 2.0, 0.5]), "inactive": np.array([0.1, 0.2, 0.3]),
         "active+bound": np.array([1.0, 2.0, -0.5])}[case]
    bounds = [(None, None), (None, None), (0.0, None)] if case == "active+bound" else None
    c = 1.0
    x = _xs_constrained(a, c, typ, bounds)
    if typ == "eq" or case != "inactive":
        close(np.sum(x), c, atol=1e-9)
    if case == "active+bound":
        close(x[2], 0.0, atol=1e-12)
    Ja, Jc = ad.jacrev(lambda a, c: _xs_constrained(a, c, typ, bounds), argnums=(0, 1))(a, c)
    close(ad.jacfwd(lambda a: _xs_constrained(a, c, typ, bounds))(a), Ja, rtol=1e-9,
          atol=1e-12)
    close(Ja, fd(lambda t: _xs_constrained(t, c, typ, bounds, mod=so), a, h=1e-3),
          rtol=1e-4, atol=1e-5)
    close(Jc, fd(lambda t: _xs_constrained(a, t[0], typ, bounds, mod=so), np.array([c]),
                 h=1e-3)[:, 0], rtol=1e-4, atol=1e-5)
    if typ == "eq" or case != "inactive":
        close(np.sum(Jc), 1.0, rtol=1e-9)              # sum(x) = c holds to first order
    else:
        close(Jc, 0.0, atol=1e-12)


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore:delta_grad")
def test_minimize_trust_constr_matches_slsqp():
    a = np.array([1.0, 2.0, 0.5])
    J1 = ad.jacrev(lambda a: _xs_constrained(a, 1.0, "ineq", None))(a)
    J2 = ad.jacrev(lambda a: _xs_constrained(a, 1.0, "ineq", None, "trust-constr"))(a)
    close(J2, J1, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:Method .* cannot handle constraints")
@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "Nelder-Mead"])
def test_constraints_a_method_ignores_do_not_enter_the_derivative(method):
    """SciPy warns and ignores constraints for these methods: the solution is unconstrained,
    and so is its derivative."""
    cons = {"type": "eq", "fun": lambda x: x[0] + x[1] - 1.0}
    opts = {"xatol": 1e-12, "fatol": 1e-15, "maxiter": 20000} if method == "Nelder-Mead" \
        else {}
    xs = lambda a, cons: aso.minimize(_f2, np.zeros(2), args=(a,), method=method,
                                      constraints=cons, options=opts).x
    a = np.array([1.0, 2.0])
    with pytest.warns(RuntimeWarning, match="cannot handle constraints"):
        J = ad.jacrev(lambda a: xs(a, cons))(a)
    close(J, ad.jacrev(lambda a: xs(a, ()))(a), rtol=1e-9, atol=1e-12)
    x = xs(a, ())
    close(J, np.diag(2 / (2 + 1.2 * x ** 2)), rtol=1e-4)


def test_tracked_bounds_are_refused_clearly():
    with pytest.raises(NotImplementedError, match="bounds"):
        ad.grad(lambda b: aso.minimize(_f2, np.zeros(1), args=(np.ones(1),),
                                       bounds=[(b, None)]).x[0])(0.5)
    with pytest.raises(NotImplementedError, match="bounds"):
        ad.grad(lambda b: aso.least_squares(lambda x: x - 1.0, [1.0],
                                            bounds=(b, 5.0)).x[0])(0.5)
    with pytest.raises(NotImplementedError, match="f_scale"):
        ad.grad(lambda s: aso.least_squares(lambda x: x - 1.0, [1.0], loss="soft_l1",
                                            f_scale=s).x[0])(0.5)


# ----- least_squares: losses and bounds ----------------------------------------------------
@pytest.mark.parametrize("loss", ["linear", "soft_l1", "huber", "cauchy", "arctan"])
@pytest.mark.parametrize("bounds", [None, ([0.0, 0.0], [1.2, 5.0]), (0.0, 1.2),
                                    "Bounds"])
def test_least_squares_losses_and_bounds(loss, bounds):
    if bounds == "Bounds":
        bounds = so.Bounds([0.0, 0.9], [np.inf, np.inf])
    kw = dict(loss=loss, f_scale=0.1, **TIGHT)
    if bounds is not None:
        kw["bounds"] = bounds

    def fit(y, kwargs=None, mod=aso):
        return mod.least_squares(lambda c, t, y, s=1.0: resid(c, t, y) * s, [1.0, 1.0],
                                 args=(TT, y), kwargs=kwargs, **kw).x
    ours, theirs = fit(YY), fit(YY, mod=so)
    close(ours, theirs, rtol=1e-7, atol=1e-9)
    J = ad.jacrev(fit)(YY)
    close(ad.jacfwd(fit)(YY), J, rtol=1e-9, atol=1e-12)
    close(J, fd(lambda y: fit(y, mod=so), YY, h=1e-3), rtol=1e-4, atol=1e-5)
    if bounds is not None and not isinstance(bounds, so.Bounds):
        close(J[0], 0.0, atol=1e-12)                   # c0 = 1.2 on its bound
    # kwargs are differentiated too
    Js = ad.jacrev(lambda s: fit(YY, {"s": s}))(1.0)
    close(Js, fd(lambda s: fit(YY, {"s": s[0]}, mod=so), np.array([1.0]))[:, 0],
          rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings("ignore:delta_grad")
@pytest.mark.parametrize("opts", [{}, {"gtol": 1e-12, "xtol": 1e-14}])
def test_minimize_interior_point_bounds_are_seen_as_active(opts):
    """trust-constr stops short of an active bound (x = 0.9996 for a bound at 1): that
    coordinate is held on its bound, not taken as a stationary one (which gave the identity
    instead of 0, silently)."""
    f = lambda x, a: np.sum((x - a) ** 2)
    xs = lambda a: aso.minimize(f, [0.5, 0.5], args=(a,), method="trust-constr",
                                bounds=[(0, 1), (0, 1)], options=opts).x
    close(ad.jacrev(xs)(np.array([0.5, 2.0])), [[1.0, 0.0], [0.0, 0.0]], atol=1e-9)
    close(ad.jacfwd(xs)(np.array([0.5, 2.0])), [[1.0, 0.0], [0.0, 0.0]], atol=1e-9)
    # near the bound but stationary there: free
    close(ad.jacrev(xs)(np.array([0.5, 0.9999])), np.eye(2), atol=1e-6)


@pytest.mark.parametrize("method,opts", [("Nelder-Mead", {"xatol": 0.05, "fatol": 0.5}),
                                         ("Powell", {"xtol": 0.1, "ftol": 0.1})])
def test_minimize_bounded_solution_that_is_not_stationary_is_refused(method, opts):
    f = lambda x, a: 100 * np.sum((x - a) ** 2)
    xs = lambda a: aso.minimize(f, [0.2, 0.2], args=(a,), method=method,
                                bounds=[(0, 1), (0, 1)], options=opts).x
    assert np.all(np.isfinite(xs(np.array([0.5, 2.0]))))        # the plain solve stands
    with pytest.raises(ValueError, match="not stationary.*Tighten"):
        ad.jacrev(xs)(np.array([0.5, 2.0]))


@pytest.mark.filterwarnings("ignore:delta_grad")
@pytest.mark.parametrize("method,opts", [("trust-constr", {}),
                                         ("trust-constr", {"gtol": 1e-12, "xtol": 1e-14}),
                                         ("SLSQP", {"ftol": 1e-14})])
def test_minimize_constraint_and_bound_nearly_active(method, opts):
    """x = (0.1, 0.9): the bound x1 <= 0.9 and x0 + x1 <= 1 both active, so x is pinned
    (derivative 0). trust-constr stops short of both (by 1e-4 with its defaults): they were
    missed and the derivative came out as the identity, silently."""
    f = lambda x, a: np.sum((x - a) ** 2)
    cons = [{"type": "ineq", "fun": lambda x: 1.0 - np.sum(x)}]
    xs = lambda a, b: aso.minimize(f, np.zeros(2), args=(a,), method=method, constraints=cons,
                                   bounds=b, options=opts).x
    a = np.array([1.0, 2.0])
    close(xs(a, [(0, 0.9), (0, 0.9)]), [0.1, 0.9], atol=1e-3)
    close(ad.jacrev(lambda a: xs(a, [(0, 0.9), (0, 0.9)]))(a), np.zeros((2, 2)), atol=1e-9)
    close(ad.jacfwd(lambda a: xs(a, [(0, 0.9), (0, 0.9)]))(a), np.zeros((2, 2)), atol=1e-9)
    # the constraint alone: the projection onto x0 + x1 <= 1
    close(ad.jacrev(lambda a: xs(a, None))(a), [[0.5, -0.5], [-0.5, 0.5]], atol=1e-6)
    # a near constraint that is not active (zero multiplier): the free derivative
    a = np.array([0.3, 0.6999])
    close(ad.jacrev(lambda a: xs(a, None))(a), np.eye(2), atol=1e-5)


@pytest.mark.filterwarnings("ignore:delta_grad")
def test_minimize_constrained_solution_that_is_not_stationary_is_refused():
    f = lambda x, a: np.sum((x - a) ** 2)
    cons = [{"type": "ineq", "fun": lambda x: 10.0 - np.sum(x)}]
    xs = lambda a: aso.minimize(f, np.zeros(2), args=(a,), method="trust-constr",
                                constraints=cons, options={"gtol": 0.3, "xtol": 0.3}).x
    assert np.all(np.isfinite(xs(np.array([1.0, 2.0]))))
    with pytest.raises(ValueError, match="not stationary.*Tighten"):
        ad.jacrev(xs)(np.array([1.0, 2.0]))


def test_minimize_vector_constraint_with_active_and_inactive_components():
    """One ``ineq`` constraint returning three numbers: two active, one not."""
    def cfun(x, s):
        return ad.numpy.stack([s - x[0] - x[1], 2.0 - x[2], 5.0 + x[0]])
    cons = {"type": "ineq", "fun": cfun, "args": (1.0,)}

    def xs(a, s, mod=aso):
        kw = {"jac": lambda x, a: 2 * (x - a) + 0.4 * x ** 3} if mod is so else {}
        c = dict(cons, args=(s,))
        return mod.minimize(_f2, np.zeros(3), args=(a,), method="SLSQP", constraints=c,
                            options={"ftol": 1e-15}, **kw).x
    a, s = np.array([1.0, 2.0, 5.0]), 1.0
    x = xs(a, s)
    close([x[0] + x[1], x[2]], [s, 2.0], atol=1e-10)
    Ja, Js = ad.jacrev(xs, argnums=(0, 1))(a, s)
    # (SciPy's own solve differences the constraint: a reference good to ~1e-5)
    close(Ja, fd(lambda t: xs(t, s, so), a), rtol=1e-4, atol=1e-5)
    close(Js, fd(lambda t: xs(a, t[0], so), np.array([s]))[:, 0], rtol=1e-4, atol=1e-5)
    close(Ja[2], 0.0, atol=1e-12)
    close(ad.jacfwd(xs, argnums=1)(a, s), Js, rtol=1e-10)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_functions_the_engine_cannot_trace_are_solved_as_scipy_solves_them():
    """np.array of a list of numbers, float(x), math.*: SciPy's own calls work on them, and so
    do these (the engine's jac/fprime/hess are left out where they cannot run; they used to
    make the plain call fail). A derivative then fails with the engine's clear error."""
    import math
    vec = lambda x, a: np.array([x[0] ** 2 - a, x[1] - 2.0])
    sca = lambda x, a: float(x) ** 2 - a
    calls = {
        "root": lambda m, a: m.root(vec, [0.5, 0.5], args=(a,)).x,
        "root-lm": lambda m, a: m.root(vec, [0.5, 0.5], args=(a,), method="lm").x,
        "fsolve": lambda m, a: m.fsolve(vec, [0.5, 0.5], args=(a,)),
        "minimize": lambda m, a: m.minimize(lambda x, a: np.sum(vec(x, a) ** 2), [0.5, 0.5],
                                            args=(a,)).x,
        "minimize-constraint": lambda m, a: m.minimize(
            lambda x, a: np.sum((x - a) ** 2), [0.5, 0.5], args=(a,),
            constraints={"type": "eq", "fun": lambda x: np.array([x[0] + x[1] - 1.0])}).x,
        "least_squares": lambda m, a: m.least_squares(vec, [0.5, 0.5], args=(a,)).x,
        "newton": lambda m, a: m.newton(sca, 0.5, args=(a,)),
        "newton-array": lambda m, a: m.newton(
            lambda x, a: np.array([math.sin(v) - a / 10 for v in x]), np.array([0.5, 3.0]),
            args=(a,)),
        "root_scalar": lambda m, a: m.root_scalar(sca, x0=0.5, args=(a,)).root,
        "fixed_point": lambda m, a: m.fixed_point(lambda x, a: math.cos(a * float(x)), 0.5,
                                                  args=(a,)),
    }
    for name, call in calls.items():
        close(call(aso, 2.0), call(so, 2.0), rtol=1e-12, atol=1e-14)
        with pytest.raises((TypeError, NotImplementedError),
                           match=r"float\(x\)|np.asarray|autodiff.numpy|math"):
            ad.grad(lambda a: np.sum(call(aso, a)))(2.0)


def test_batched_paths_chunked_and_sparse():
    r = lambda a: aso.root(system, np.zeros(3), args=(a,), tol=1e-13).x
    J = ad.jacfwd(r)(A3)
    close(ad.jacfwd(r, chunk_size=1)(A3), J, rtol=1e-12)
    close(ad.jacrev(r, chunk_size=2)(A3), J, rtol=1e-12)
    close(ad.jacobian(r, chunk_size=1)(A3), J, rtol=1e-12)
    close(ad.sparse_jacobian(r)(A3).toarray(), J, rtol=1e-12)
    w = lambda a: np.sum(r(a) ** 2)
    close(ad.hessian(w, chunk_size=1)(A3), ad.hessian(w)(A3), rtol=1e-10)
    close(ad.linear_operator(r, A3).matvec(np.ones(3)), J @ np.ones(3), rtol=1e-12)
