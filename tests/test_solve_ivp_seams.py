"""solve_ivp and odeint at their seams, as a SciPy or JAX user meets them: every method in both
sensitivity modes, the t_eval / t_span / dense_output / events / args / vectorized / dtype /
shape variants, the result fields against SciPy's own call, derivatives against central
differences of SciPy's solve at tight tolerances (first and second order), a stiff adjoint,
failures and closures refused clearly, ad.jit, and odeint's JAX-like signature.
"""
import numpy as np
import pytest
import scipy.integrate as si

import autodiff as ad
from autodiff.boxes import unbox
from autodiff.scipy.integrate import ivp_jacobian, odeint, solve_ivp

ALL = ["RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA"]
IMPLICIT = ("Radau", "BDF", "LSODA")
SENS = ["forward", "adjoint"]
TOL = dict(rtol=1e-10, atol=1e-12)
# LSODA's solution moves in small jumps with its inputs (its order and method switch), too
# rough to difference at this accuracy: its derivatives are checked against DOP853's solve


def ref_method(method):
    return "DOP853" if method == "LSODA" else method


def forced(t, y, k, c):
    """A damped, forced oscillator: smooth, non-stiff, with t in the right-hand side."""
    return [y[1], -k * y[0] - c * y[1] + 0.3 * np.sin(t)]


def scipy_solve(fun, t_span, y0, method="RK45", **kw):
    """SciPy's own solve; the implicit methods get the exact Jacobian so that central
    differences see a smooth map (a differenced Jacobian adds its own noise)."""
    if method in IMPLICIT and "jac" not in kw:
        kw["jac"] = ivp_jacobian(fun, sparse=False)
    return si.solve_ivp(fun, t_span, y0, method=method, **kw)


def fd(f, x, h=1e-6):
    """Central differences of ``f`` at ``x``: the derivative's axes last, as jacfwd's."""
    x = np.asarray(x, dtype=float)
    cols = [(np.asarray(f(x + h * e)) - np.asarray(f(x - h * e))) / (2 * h)
            for e in np.eye(x.size).reshape((x.size,) + x.shape)]
    return np.moveaxis(np.stack(cols), 0, -1).reshape(np.shape(cols[0]) + x.shape)


def fd2(f, x, h=1e-4):
    """Central second differences of a scalar ``f``: the Hessian."""
    x = np.asarray(x, dtype=float)
    e = np.eye(x.size) * h
    return np.array([[(f(x + a + b) - f(x + a - b) - f(x - a + b) + f(x - a - b)) / (4 * h * h)
                      for b in e] for a in e])


# ----- every method, both sensitivity modes, every transform -----
@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("sensitivity", SENS)
def test_every_method_in_both_modes_against_scipy_differences(method, sensitivity):
    """θ = (y0, k, c) → y(t_eval): jacrev, jacfwd, grad and jvp against central differences
    of SciPy's solve; the values are SciPy's own."""
    te = [0.5, 1.2, 2.0]

    def ours(x):
        return solve_ivp(forced, (0.0, 2.0), x[:2], method=method, t_eval=te,
                         args=(x[2], x[3]), sensitivity=sensitivity, **TOL).y

    def ref(x, method=method):
        return scipy_solve(forced, (0.0, 2.0), x[:2], method, t_eval=te, args=(x[2], x[3]),
                           **TOL).y
    x = np.array([1.0, 0.5, 1.3, 0.2])
    num = fd(lambda x: ref(x, ref_method(method)), x)
    np.testing.assert_array_equal(unbox(ad.jvp(ours, (x,), (np.ones(4),))[0]), ref(x))
    np.testing.assert_allclose(ad.jacrev(ours)(x), num, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(ours)(x), num, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ad.grad(lambda x: ours(x)[0, -1])(x), num[0, -1], rtol=1e-6,
                               atol=1e-7)
    v = np.array([0.3, -1.0, 0.5, 2.0])
    np.testing.assert_allclose(ad.jvp(ours, (x,), (v,))[1], num @ v, rtol=1e-6, atol=1e-7)
    w = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(ad.vjp(ours, x)[1](w)[0], np.tensordot(w, num, 2), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("method", ["RK45", "BDF"])
def test_forward_and_adjoint_agree_and_auto_picks_one(method):
    def f(x, sensitivity):
        return solve_ivp(forced, (0.0, 3.0), x[:2], method=method, t_eval=[0.0, 1.0, 3.0],
                         args=(x[2], x[3]), sensitivity=sensitivity, **TOL).y
    x = np.array([1.0, 0.5, 1.3, 0.2])
    fw, ad_, au = (ad.jacrev(lambda x: f(x, s))(x) for s in ("forward", "adjoint", "auto"))
    np.testing.assert_allclose(ad_, fw, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(au, fw, rtol=1e-7, atol=1e-9)
    # a sample at t0 is y0 itself: its derivative is the identity in y0 and 0 in args
    np.testing.assert_allclose(fw[:, 0], np.hstack([np.eye(2), np.zeros((2, 2))]), atol=1e-14)


# ----- t_eval and t_span -----
def _decay(t, y, k):
    return -k * y + np.sin(t)


def test_t_eval_none_empty_one_point():
    k = 0.7
    # None: SciPy's step times, derivative with the times held fixed
    sol = solve_ivp(_decay, (0.0, 1.0), [1.0, 2.0], args=(ad.Variable(k),), **TOL)
    ref = si.solve_ivp(_decay, (0.0, 1.0), [1.0, 2.0], args=(k,), **TOL)
    np.testing.assert_array_equal(unbox(sol.t), ref.t)
    np.testing.assert_array_equal(unbox(sol.y), ref.y)
    # empty: arrays (0,) and (n, 0) in every mode, derivatives of the right (empty) shape
    for s in SENS:
        for jac in (ad.jacfwd, ad.jacrev):
            d = jac(lambda k: solve_ivp(_decay, (0.0, 1.0), [1.0, 2.0], t_eval=[], args=(k,),
                                        sensitivity=s).y)(k)
            assert np.shape(d) == (2, 0)
    # one point
    for s in SENS:
        d = ad.jacrev(lambda k: solve_ivp(_decay, (0.0, 1.0), [1.0, 2.0], t_eval=[0.4],
                                          args=(k,), sensitivity=s, **TOL).y)(k)
        num = fd(lambda k: si.solve_ivp(_decay, (0.0, 1.0), [1.0, 2.0], t_eval=[0.4],
                                        args=(k,), **TOL).y, k)
        assert np.shape(d) == (2, 1)
        np.testing.assert_allclose(d, num, rtol=1e-6)


@pytest.mark.parametrize("t_eval, match", [([0.5, 0.2], "not properly sorted"),
                                           ([0.2, 0.5, 0.5], "not properly sorted"),
                                           ([0.5, 1.5], "not within `t_span`")])
def test_t_eval_refusals_are_scipys(t_eval, match):
    for k in (0.5, ad.Variable(0.5)):
        with pytest.raises(ValueError, match=match):
            solve_ivp(_decay, (0.0, 1.0), [1.0], t_eval=t_eval, args=(k,))


@pytest.mark.parametrize("method", ["RK45", "Radau", "LSODA"])
@pytest.mark.parametrize("sensitivity", SENS)
def test_backward_integration(method, sensitivity):
    """A decreasing t_span: t_eval decreasing, or SciPy's own (decreasing) steps."""
    def ours(x, te):
        return solve_ivp(_decay, (1.0, -1.0), x[:2], method=method, t_eval=te, args=(x[2],),
                         sensitivity=sensitivity, **TOL).y

    def ref(x, te):
        return scipy_solve(_decay, (1.0, -1.0), x[:2], ref_method(method), t_eval=te,
                           args=(x[2],),
                           **TOL).y
    x = np.array([1.0, -0.5, 0.8])
    te = [0.5, 0.0, -1.0]
    h = 1e-6
    np.testing.assert_allclose(ad.jacrev(lambda x: ours(x, te))(x),
                               fd(lambda x: ref(x, te), x, h), rtol=1e-6, atol=1e-7)
    end = ad.jacfwd(lambda x: ours(x, None)[:, -1])(x)
    np.testing.assert_allclose(end, fd(lambda x: ref(x, None)[:, -1], x, h), rtol=1e-6,
                               atol=1e-7)


@pytest.mark.parametrize("method", ["RK45", "BDF"])
@pytest.mark.parametrize("sensitivity", SENS)
def test_t_span_ends_and_t_eval_are_differentiable(method, sensitivity):
    def ours(ts):
        return solve_ivp(forced, (ts[0], ts[1]), [1.0, 0.0], method=method,
                         t_eval=[1.0, ts[2]], args=(2.0, 0.1), sensitivity=sensitivity,
                         **TOL).y

    def ref(ts):
        return scipy_solve(forced, (ts[0], ts[1]), [1.0, 0.0], method, t_eval=[1.0, ts[2]],
                           args=(2.0, 0.1), **TOL).y
    ts = np.array([0.1, 2.5, 2.0])
    num = fd(ref, ts)
    np.testing.assert_allclose(ad.jacrev(ours)(ts), num, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ad.jacfwd(ours)(ts), num, rtol=1e-6, atol=1e-8)
    # without t_eval the last sample is at t_span's end: y'(t1) = f(t1, y(t1))
    y_end = ad.grad(lambda t1: solve_ivp(forced, (0.0, t1), [1.0, 0.0], method=method,
                                         args=(2.0, 0.1), sensitivity=sensitivity,
                                         **TOL).y[1, -1])(2.5)
    num = fd(lambda t1: scipy_solve(forced, (0.0, t1), [1.0, 0.0], method, args=(2.0, 0.1),
                                    **TOL).y[1, -1], 2.5)
    np.testing.assert_allclose(y_end, num, rtol=1e-6)


def test_equal_t_span_ends():
    ref = si.solve_ivp(_decay, (1.0, 1.0), [1.0], args=(0.5,))
    sol = solve_ivp(_decay, (1.0, 1.0), [1.0], args=(ad.Variable(0.5),))
    np.testing.assert_array_equal(unbox(sol.y), ref.y)
    assert ad.grad(lambda k: solve_ivp(_decay, (1.0, 1.0), [1.0], args=(k,)).y[0, -1])(
        0.5) == 0.0
    np.testing.assert_array_equal(
        ad.grad(lambda y0: solve_ivp(_decay, (1.0, 1.0), y0, args=(0.5,)).y[0, -1])(
            np.array([1.0, 2.0])), [1.0, 0.0])


# ----- dense output -----
@pytest.mark.parametrize("method", ["DOP853", "Radau"])
@pytest.mark.parametrize("t_span", [(0.0, 2.0), (2.0, 0.0)])
def test_dense_output_values_and_derivatives(method, t_span):
    def ours(x, t):
        return solve_ivp(forced, t_span, x[:2], method=method, dense_output=True,
                         args=(x[2], 0.1), **TOL).sol(t)

    def ref(x, t):
        return scipy_solve(forced, t_span, x[:2], method, dense_output=True, args=(x[2], 0.1),
                           **TOL).sol(t)
    x = np.array([1.0, 0.5, 1.3])
    sol = solve_ivp(forced, t_span, x[:2], method=method, dense_output=True,
                    args=(ad.Variable(1.3), 0.1), **TOL).sol
    assert callable(sol) and (sol.t_min, sol.t_max) == (0.0, 2.0)
    ts = np.array([1.7, 0.3, 1.0])             # unsorted, as SciPy's sol accepts
    np.testing.assert_array_equal(unbox(sol(ts)), ref(x, ts))
    np.testing.assert_array_equal(unbox(sol(0.3)), ref(x, 0.3))
    assert np.shape(sol(0.3)) == (2,) and np.shape(sol(ts)) == (2, 3)
    for t in (0.3, ts):
        num = fd(lambda x: ref(x, t), x)
        np.testing.assert_allclose(ad.jacrev(lambda x: ours(x, t))(x), num, rtol=1e-5,
                                   atol=1e-7)
        np.testing.assert_allclose(ad.jacfwd(lambda x: ours(x, t))(x), num, rtol=1e-5,
                                   atol=1e-7)
    # the time where sol is read is differentiable too: d/dt sol(t) = f(t, y(t))
    np.testing.assert_allclose(
        ad.grad(lambda t: ours(x, t)[0])(1.0), ref(x, 1.0)[1], rtol=1e-7)


def test_plain_dense_output_is_scipys_and_differentiable_in_t():
    ours = solve_ivp(_decay, (0.0, 1.0), [1.0], args=(0.5,), dense_output=True, **TOL)
    ref = si.solve_ivp(_decay, (0.0, 1.0), [1.0], args=(0.5,), dense_output=True, **TOL)
    assert isinstance(ours.sol, si.OdeSolution) and ours.nfev == ref.nfev
    np.testing.assert_array_equal(ours.sol.ts, ref.sol.ts)
    ts = np.array([0.2, 0.9])
    np.testing.assert_array_equal(ours.sol(ts), ref.sol(ts))
    np.testing.assert_array_equal(ours.sol(0.2), ref.sol(0.2))
    # d/dt sol(t) = f(t, y(t)), in both modes
    f = np.array([_decay(t, ref.sol(t), 0.5)[0] for t in ts])
    for jac in (ad.jacfwd, ad.jacrev):
        np.testing.assert_allclose(jac(lambda t: ours.sol(t)[0])(ts), np.diag(f), rtol=1e-7,
                                   atol=1e-12)
    assert solve_ivp(_decay, (0.0, 1.0), [1.0], args=(ad.Variable(0.5),)).sol is None


# ----- events -----
def _two_rates(t, y, k):
    return [-k * y[0], -y[1] + 0.0 * k]


def _half(t, y, k):
    return y[0] - 0.5


def _three_halves(t, y, k):
    return y[1] - 1.5


def _never(t, y, k):
    return y[0] + 5.0


@pytest.mark.parametrize("method", ["RK45", "Radau", "LSODA"])
@pytest.mark.parametrize("sensitivity", SENS)
@pytest.mark.parametrize("terminal", [True, False])
def test_events_of_several_functions_out_of_time_order(method, sensitivity, terminal):
    """SciPy lists event times by function, not by time (here 1.386 before 0.288): each
    t_events and y_events entry is differentiable, as is the (possibly truncated) .y."""
    def half(t, y, k):
        return _half(t, y, k)
    half.terminal = terminal

    def run(x, solver=solve_ivp):
        kw = dict(sensitivity=sensitivity) if solver is solve_ivp else {}
        if solver is not solve_ivp and method in IMPLICIT:
            kw["jac"] = ivp_jacobian(_two_rates, sparse=False)
        sol = solver(_two_rates, (0.0, 3.0), x[:2], method=method, args=(x[2],),
                     events=[half, _never, _three_halves], **kw, **TOL)
        return sol

    def flat(x, solver=solve_ivp):
        sol = run(x, solver)
        return np.concatenate([sol.t_events[0], sol.t_events[2], np.ravel(sol.y_events[0]),
                               np.ravel(sol.y_events[2]), sol.y[:, -1], sol.t[-1:]])
    x = np.array([1.0, 2.0, 0.5])
    sol, ref = run(ad.Variable(x)), run(x, si.solve_ivp)
    assert sol.status == ref.status == (1 if terminal else 0)
    for a, b in zip(sol.t_events, ref.t_events):
        np.testing.assert_array_equal(unbox(a), b)
    for a, b in zip(sol.y_events, ref.y_events):
        np.testing.assert_array_equal(unbox(a), b)
    np.testing.assert_allclose(ad.jacrev(flat)(x), fd(lambda x: flat(x, si.solve_ivp), x),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(flat)(x), fd(lambda x: flat(x, si.solve_ivp), x),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("direction, count", [(1, 2), (-1, 3), (0, 5)])
def test_event_direction(direction, count):
    def zero(t, y, k):
        return y[0]
    zero.direction = direction

    def times(k, solver=solve_ivp):
        return solver(lambda t, y, k: [y[1], -k * y[0]], (0.0, 10.0), [1.0, 0.0], args=(k,),
                      events=zero, **TOL).t_events[0]
    np.testing.assert_array_equal(unbox(times(ad.Variable(2.0))), times(2.0, si.solve_ivp))
    assert times(2.0).shape == (count,)
    # zeros of cos(√k t): t = (j + 1/2)π/√k, dt/dk = -t/(2k)
    np.testing.assert_allclose(ad.jacfwd(times)(2.0), -times(2.0) / 4.0, rtol=1e-7)
    np.testing.assert_allclose(ad.jacrev(times)(2.0), -times(2.0) / 4.0, rtol=1e-7)


@pytest.mark.parametrize("sensitivity", SENS)
def test_event_time_to_third_order_and_against_t0(sensitivity):
    """y' = -k y reaches 1/2 at t = ln2/k (+ t0): derivatives in k up to the third, and in t0."""
    def hit(t, y, k):
        return y[0] - 0.5
    hit.terminal = True

    def te(k, t0=0.0):
        return solve_ivp(lambda t, y, k: -k * y, (t0, t0 + 9.0), [1.0], args=(k,), events=hit,
                         sensitivity=sensitivity, rtol=1e-11, atol=1e-13).t_events[0][0]
    k, ln2 = 0.5, np.log(2.0)
    np.testing.assert_allclose(ad.grad(te)(k), -ln2 / k ** 2, rtol=1e-8)
    np.testing.assert_allclose(ad.grad(ad.grad(te))(k), 2 * ln2 / k ** 3, rtol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(ad.grad(te))(k), 2 * ln2 / k ** 3, rtol=1e-7)
    np.testing.assert_allclose(ad.grad(ad.grad(ad.grad(te)))(k), -6 * ln2 / k ** 4, rtol=1e-6)
    np.testing.assert_allclose(ad.grad(lambda t0: te(k, t0))(0.3), 1.0, rtol=1e-8)


def test_events_with_t_eval_and_backward():
    def hit(t, y, k):
        return y[0] - 2.0
    hit.terminal = True
    sol = solve_ivp(lambda t, y, k: -k * y, (0.0, -5.0), [1.0], args=(ad.Variable(0.5),),
                    events=hit, t_eval=[-0.5, -1.0, -4.0], **TOL)
    ref = si.solve_ivp(lambda t, y, k: -k * y, (0.0, -5.0), [1.0], args=(0.5,), events=hit,
                       t_eval=[-0.5, -1.0, -4.0], **TOL)
    np.testing.assert_array_equal(unbox(sol.t), ref.t)
    np.testing.assert_array_equal(unbox(sol.y), ref.y)
    # t_e = -ln2/k
    for s in SENS:
        g = ad.grad(lambda k: solve_ivp(lambda t, y, k: -k * y, (0.0, -5.0), [1.0], args=(k,),
                                        events=hit, sensitivity=s, **TOL).t_events[0][0])(0.5)
        np.testing.assert_allclose(g, np.log(2.0) / 0.25, rtol=1e-8)


# ----- args, vectorized, dtypes, shapes -----
def test_args_tuple_list_and_refusals():
    def end(k, args):
        return solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), [1.0], args=args(k),
                         **TOL).y[0, -1]
    for args in (lambda k: (k,), lambda k: [k]):
        np.testing.assert_allclose(ad.grad(lambda k: end(k, args))(0.5), -np.exp(-0.5),
                                   rtol=1e-8)
    with pytest.raises(TypeError, match="Supplied 'args' cannot be unpacked"):
        solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), [1.0], args=ad.Variable(0.5))


@pytest.mark.parametrize("method", ALL)
def test_vectorized_fun(method):
    def fv(t, y, k):
        assert y.ndim == 2                    # SciPy's contract: fun sees (n, k) columns
        return np.vstack([y[1], -k * y[0]])

    def ours(x):
        return solve_ivp(fv, (0.0, 1.0), x[:2], method=method, vectorized=True, args=(x[2],),
                         t_eval=[0.5, 1.0], **TOL).y

    def ref(x):              # SciPy's implicit solves would difference their Jacobian
        return si.solve_ivp(fv, (0.0, 1.0), x[:2], method="DOP853", vectorized=True,
                            args=(x[2],), t_eval=[0.5, 1.0], **TOL).y
    x = np.array([1.0, 0.0, 2.0])
    np.testing.assert_allclose(ad.jacrev(ours)(x), fd(ref, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(ours)(x), ad.jacrev(ours)(x), rtol=1e-7, atol=1e-9)


def test_complex_y0_is_solved_not_differentiated():
    ref = si.solve_ivp(lambda t, y: -1j * y, (0.0, 1.0), [1.0 + 0j])
    np.testing.assert_array_equal(solve_ivp(lambda t, y: -1j * y, (0.0, 1.0), [1.0 + 0j]).y,
                                  ref.y)
    with pytest.raises(NotImplementedError, match="complex"):
        ad.grad(lambda y0: solve_ivp(lambda t, y: -1j * y, (0.0, 1.0), y0).y[0, -1].real)(
            np.array([1.0 + 0j]))


def test_float32_y0():
    """SciPy integrates a float32 y0 in float64: .y is float64 as in SciPy; a reverse-mode
    derivative has the input's dtype (JAX's convention), forward mode the output's."""
    y0 = np.array([1.0, 2.0], np.float32)
    f = lambda y0: solve_ivp(lambda t, y: -y, (0.0, 1.0), y0, **TOL).y[:, -1]    # noqa: E731
    assert f(y0).dtype == si.solve_ivp(lambda t, y: -y, (0.0, 1.0), y0).y.dtype
    g = ad.grad(lambda y0: f(y0)[0])(y0)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [np.exp(-1.0), 0.0], rtol=1e-6)
    np.testing.assert_allclose(ad.jacfwd(f)(y0), np.exp(-1.0) * np.eye(2), rtol=1e-8)


def test_y0_shapes():
    # 0-d and 2-D y0 are SciPy's ValueError, tracked or not
    for y0 in (1.0, np.ones((2, 2))):
        for x in (y0, ad.Variable(y0)):
            with pytest.raises(ValueError, match="`y0` must be 1-dimensional"):
                solve_ivp(lambda t, y: -y, (0.0, 1.0), x)
    # a list holding tracked values, and an integer list (SciPy makes it float)
    np.testing.assert_allclose(
        ad.grad(lambda a: solve_ivp(lambda t, y: -y, (0.0, 1.0), [a, 2 * a],
                                    **TOL).y[1, -1])(1.0), 2 * np.exp(-1.0), rtol=1e-8)
    np.testing.assert_allclose(
        ad.grad(lambda k: solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), [1, 2], args=(k,),
                                    **TOL).y[1, -1])(1.0), -2 * np.exp(-1.0), rtol=1e-8)
    # an empty state
    ref = si.solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), np.zeros(0), args=(1.0,))
    for jac in (ad.jacfwd, ad.jacrev):
        d = jac(lambda k: solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), np.zeros(0),
                                    args=(k,)).y)(1.0)
        assert np.shape(d) == ref.y.shape


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("sensitivity", SENS)
def test_rtol_and_atol_arrays(method, sensitivity):
    """SciPy takes both tolerances per component (an rtol array only for the explicit methods
    and LSODA: its Radau and BDF fail on one, and so do ours, with SciPy's error); so do the
    sensitivity and adjoint solves."""
    tol = dict(rtol=np.array([1e-10, 1e-11]), atol=np.array([1e-12, 1e-11]))
    if method in ("Radau", "BDF"):
        for k in (2.0, ad.Variable(2.0)):
            with pytest.raises(ValueError, match="truth value of an array"):
                solve_ivp(forced, (0.0, 2.0), [1.0, 0.0], method=method, args=(k, 0.1), **tol)
        tol["rtol"] = 1e-10

    def ours(x):
        return solve_ivp(forced, (0.0, 2.0), x[:2], method=method, t_eval=[1.0, 2.0],
                         args=(x[2], 0.1), sensitivity=sensitivity, **tol).y

    def ref(x, method=method):
        return scipy_solve(forced, (0.0, 2.0), x[:2], method, t_eval=[1.0, 2.0],
                           args=(x[2], 0.1), **tol).y
    x = np.array([1.0, 0.0, 2.0])
    np.testing.assert_array_equal(unbox(ad.jvp(ours, (x,), (x,))[0]), ref(x))
    num = fd(lambda x: ref(x, ref_method(method)), x)
    np.testing.assert_allclose(ad.jacrev(ours)(x), num, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(ours)(x), num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["RK45", "Radau", "BDF", "LSODA"])
def test_first_step_and_max_step(method):
    def run(k, solver=solve_ivp):
        kw = {"jac": ivp_jacobian(forced, sparse=False)} if (
            solver is si.solve_ivp and method in IMPLICIT) else {}
        return solver(forced, (0.0, 2.0), [1.0, 0.0], method=method, args=(k, 0.1),
                      first_step=1e-3, max_step=0.05, **kw, **TOL)
    sol, ref = run(ad.Variable(2.0)), run(2.0, si.solve_ivp)
    np.testing.assert_array_equal(unbox(sol.t), ref.t)
    assert np.all(np.diff(ref.t) <= 0.05 + 1e-15)
    if method != "LSODA":
        np.testing.assert_allclose(ad.jacrev(lambda k: run(k).y[:, -1])(2.0),
                                   fd(lambda k: run(k, si.solve_ivp).y[:, -1], 2.0), rtol=1e-6)
    np.testing.assert_allclose(ad.jacrev(lambda k: run(k).y[:, -1])(2.0),
                               ad.jacfwd(lambda k: run(k).y[:, -1])(2.0), rtol=1e-8)


# ----- the result object -----
@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("tracked", [False, True])
def test_result_fields_match_scipys(method, tracked):
    def hit(t, y, k, c):
        return y[0] - 0.2

    kw = dict(method=method, events=hit, t_eval=None, dense_output=False, **TOL)
    k = ad.Variable(1.3) if tracked else 1.3
    ours = solve_ivp(forced, (0.0, 4.0), [1.0, 0.5], args=(k, 0.2), **kw)
    # the implicit methods get the AD Jacobian in our call: give SciPy the same one
    ref = scipy_solve(forced, (0.0, 4.0), [1.0, 0.5], args=(1.3, 0.2), **kw)
    assert type(ours) is type(ref) and set(ours) == set(ref)
    for key in ("t", "y"):
        np.testing.assert_array_equal(unbox(ours[key]), ref[key])
    for a, b in zip(ours.t_events + ours.y_events, ref.t_events + ref.y_events):
        np.testing.assert_array_equal(unbox(a), b)
    for key in ("nfev", "njev", "nlu", "status", "message", "success", "sol"):
        assert ours[key] == ref[key], key
    if method in ("Radau", "BDF"):                 # LSODA stays with Adams here
        assert ours.njev >= 1


# ----- second order, stiff adjoint -----
@pytest.mark.parametrize("sensitivity", SENS)
@pytest.mark.parametrize("method", ["DOP853", "Radau"])
def test_second_order_in_y0_and_args(sensitivity, method):
    def pend(x, solver=solve_ivp):
        kw = dict(sensitivity=sensitivity) if solver is solve_ivp else {}
        return solver(lambda t, y, g: [y[1], -g * np.sin(y[0])], (0.0, 2.0), x[:2],
                      method=method, args=(x[2],), **kw, **TOL).y[0, -1]

    def ref(x):
        return scipy_solve(lambda t, y, g: [y[1], -g * np.sin(y[0])], (0.0, 2.0), x[:2],
                           method, args=(x[2],), **TOL).y[0, -1]
    x = np.array([1.0, 0.0, 1.5])
    num = fd2(ref, x)
    np.testing.assert_allclose(ad.hessian(pend)(x), num, rtol=1e-5, atol=1e-6)
    if method == "DOP853":                    # (the implicit ones: the same rules, slower)
        np.testing.assert_allclose(ad.jacfwd(ad.jacrev(pend))(x), num, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ad.jacrev(ad.jacrev(pend))(x), num, rtol=1e-5, atol=1e-6)
    v = np.array([1.0, -0.5, 0.2])
    np.testing.assert_allclose(ad.hvp(pend, x, v), num @ v, rtol=1e-5, atol=1e-6)


def _robertson(t, y, k1, k2, k3):
    return [-k1 * y[0] + k3 * y[1] * y[2], k1 * y[0] - k2 * y[1] ** 2 - k3 * y[1] * y[2],
            k2 * y[1] ** 2]


@pytest.mark.parametrize("method", IMPLICIT)
def test_robertson_adjoint_against_scipy_radau_differences(method):
    """Stiff kinetics: the adjoint (and forward) pullback of y(40) w.r.t. the rate constants,
    against relative central differences of SciPy's Radau with the exact Jacobian (LSODA's own
    solve is too rough to difference at this accuracy)."""
    K = np.array([0.04, 3e7, 1e4])
    tol = dict(rtol=1e-10, atol=1e-14)

    def ours(k, sensitivity):
        return solve_ivp(_robertson, (0.0, 40.0), [1.0, 0.0, 0.0], method=method,
                         t_eval=[1.0, 40.0], args=tuple(k), sensitivity=sensitivity,
                         **tol).y[:, -1]

    def ref(k):
        return scipy_solve(_robertson, (0.0, 40.0), [1.0, 0.0, 0.0], "Radau",
                           t_eval=[1.0, 40.0], args=tuple(k), **tol).y[:, -1]
    num = np.stack([(ref(K + h) - ref(K - h)) / (2 * h[i])
                    for i, h in enumerate(np.diag(K * 1e-5))], -1)
    for s in SENS:
        np.testing.assert_allclose(ad.jacrev(lambda k: ours(k, s))(K), num, rtol=1e-6,
                                   atol=1e-20)


# ----- failures, closures, jit -----
@pytest.mark.parametrize("method", ["RK45", "RK23", "DOP853", "Radau", "BDF"])
@pytest.mark.parametrize("how", ["plain", "grad", "adjoint", "jacfwd"])
def test_step_size_failure_raises(method, how):
    """y' = y² blows up at t = 1: SciPy's status -1 becomes a RuntimeError with its message."""
    ref = si.solve_ivp(lambda t, y: y ** 2, (0.0, 2.0), [1.0], method=method)
    assert ref.status == -1

    def f(y0):
        return solve_ivp(lambda t, y: y ** 2, (0.0, 2.0), np.reshape(y0, (1,)), method=method,
                         sensitivity="adjoint" if how == "adjoint" else "auto").y[0, -1]
    run = {"plain": f, "grad": ad.grad(f), "adjoint": ad.grad(f), "jacfwd": ad.jacfwd(f)}[how]
    with pytest.raises(RuntimeError, match=rf"solve_ivp \({method}\) failed \(Required step"):
        run(1.0)


def test_closures_over_tracked_values_are_refused_clearly():
    def by_closure(k):
        return solve_ivp(lambda t, y: -k * y, (0.0, 1.0), [1.0]).y[0, -1]

    def event_closure(k):
        def hit(t, y, k2):
            return y[0] - k
        return solve_ivp(lambda t, y, k2: -k2 * y, (0.0, 5.0), [1.0], args=(k,),
                         events=hit).t_events[0]

    def ode_closure(k):
        return odeint(lambda y, t: -k * y, 1.0, np.array([0.0, 1.0]))[-1, 0]
    for f, name in ((by_closure, "fun"), (event_closure, "events"), (ode_closure, "func")):
        for transform in (ad.grad, ad.jacfwd):
            with pytest.raises(TypeError, match=rf"`{name}` returned a tracked value.*"
                                                r"Pass that value through `args=`"):
                transform(f)(0.5)
    # the way that works: the value goes in args
    np.testing.assert_allclose(
        ad.grad(lambda k: solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), [1.0], args=(k,),
                                    **TOL).y[0, -1])(0.5), -np.exp(-0.5), rtol=1e-8)


def test_jit_composes():
    def end(k):
        return solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), [1.0], args=(k,), **TOL).y[0, -1]

    def hit(t, y, k):
        return y[0] - 0.5
    hit.terminal = True

    def te(k):
        return solve_ivp(lambda t, y, k: -k * y, (0.0, 9.0), [1.0], args=(k,), events=hit,
                         **TOL).t_events[0][0]
    fj, gj, gj2, tj = ad.jit(end), ad.jit(ad.grad(end)), ad.grad(ad.jit(end)), ad.jit(ad.grad(te))
    for k in (0.5, 0.7, 1.1):                  # other numbers: never a stale replay
        np.testing.assert_allclose(fj(k), np.exp(-k), rtol=1e-8)
        np.testing.assert_allclose(gj(k), -np.exp(-k), rtol=1e-8)
        np.testing.assert_allclose(gj2(k), -np.exp(-k), rtol=1e-8)
        np.testing.assert_allclose(tj(k), -np.log(2.0) / k ** 2, rtol=1e-8)
    # the number of steps (so .y's shape) follows the numbers, as SciPy's does
    steps = ad.jit(lambda k: solve_ivp(lambda t, y, k: -k * y, (0.0, 5.0), [1.0],
                                       args=(k,)).y)
    for k in (0.5, 5.0):
        assert np.shape(steps(k)) == si.solve_ivp(lambda t, y, k: -k * y, (0.0, 5.0), [1.0],
                                                   args=(k,)).y.shape


# ----- odeint: JAX's / SciPy's func(y, t, *args) -----
def _osc(y, t, k, c):
    return [y[1], -k * y[0] - c * y[1] + 0.3 * np.sin(t)]


T = np.linspace(0.0, 2.0, 5)
OTOL = dict(rtol=1e-11, atol=1e-12)


def dop(func, y0, t, args=()):
    """odeint's samples by DOP853 (odeint's LSODA is too rough to difference)."""
    return si.solve_ivp(lambda s, y: func(y, s, *args), (t[0], t[-1]), y0, method="DOP853",
                        t_eval=t, **OTOL).y.T


def test_odeint_values_and_reverse_mode_in_every_input():
    def ours(x):
        return odeint(_osc, x[:2], x[4:], args=(x[2], x[3]), **OTOL)

    def ref(x):
        return si.odeint(_osc, x[:2], x[4:], args=(x[2], x[3]), **OTOL)
    x = np.concatenate([[1.0, 0.5, 1.3, 0.2], T])
    np.testing.assert_array_equal(ours(x), ref(x))
    ref = lambda x: dop(_osc, x[:2], x[4:], (x[2], x[3]))             # noqa: E731
    num = fd(ref, x)
    np.testing.assert_allclose(ad.jacrev(ours)(x), num, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(ours)(x), num, rtol=1e-5, atol=1e-7)
    # grad of a loss over the trajectory (the JAX idiom), and a decreasing t
    loss = lambda x: np.sum(ours(x) ** 2)                            # noqa: E731
    np.testing.assert_allclose(ad.grad(loss)(x), fd(lambda x: np.sum(ref(x) ** 2), x),
                               rtol=1e-5, atol=1e-7)
    xr = np.concatenate([x[:4], T[::-1]])
    np.testing.assert_allclose(ad.jacrev(ours)(xr), fd(ref, xr), rtol=1e-5, atol=1e-7)


def test_odeint_second_order_and_tfirst():
    def end(x):
        return odeint(lambda y, t, g: [y[1], -g * np.sin(y[0])], x[:2], T, args=(x[2],),
                      **OTOL)[-1, 0]

    def ref(x):
        return dop(lambda y, t, g: [y[1], -g * np.sin(y[0])], x[:2], T, (x[2],))[-1, 0]
    x = np.array([1.0, 0.0, 1.5])
    np.testing.assert_allclose(ad.hessian(end)(x), fd2(ref, x), rtol=1e-4, atol=1e-5)
    tf = ad.grad(lambda k: odeint(lambda t, y, k: -k * y, 1.0, T, args=(k,), tfirst=True,
                                  **OTOL)[-1, 0])(0.5)
    np.testing.assert_allclose(tf, -2.0 * np.exp(-1.0), rtol=1e-7)


def test_odeint_shapes_args_and_tolerances():
    # a 0-d y0 is one state, as in SciPy; a 2-D one is SciPy's ValueError
    assert odeint(lambda y, t: -y, ad.Variable(1.0), T).shape == si.odeint(
        lambda y, t: -y, 1.0, T).shape
    for y0 in (np.ones((2, 2)), ad.Variable(np.ones((2, 2)))):
        with pytest.raises(ValueError, match="y0 must be one-dimensional"):
            odeint(lambda y, t: -y, y0, T)
    # lists holding tracked values, for y0 and t
    np.testing.assert_allclose(
        ad.grad(lambda a: odeint(lambda y, t: -y, [a, 2 * a], T, **OTOL)[-1, 1])(1.0),
        2 * np.exp(-2.0), rtol=1e-7)
    np.testing.assert_allclose(
        ad.grad(lambda s: odeint(lambda y, t: -y, [1.0], [0.0, s], **OTOL)[-1, 0])(1.0),
        -np.exp(-1.0), rtol=1e-7)
    with pytest.raises(TypeError, match="extra arguments must be in a tuple"):
        odeint(lambda y, t, k: -k * y, 1.0, T, args=ad.Variable(1.0))
    # rtol/atol per component (SciPy's odeint takes them), in both modes
    tol = dict(rtol=np.array([1e-11, 1e-10]), atol=np.array([1e-12, 1e-11]))

    def ours(k):
        return odeint(_osc, [1.0, 0.0], T, args=(k, 0.1), **tol)
    ref = lambda k: si.odeint(_osc, [1.0, 0.0], T, args=(k, 0.1), **tol)   # noqa: E731
    np.testing.assert_array_equal(ours(2.0), ref(2.0))
    ref = lambda k: dop(_osc, [1.0, 0.0], T, (k, 0.1))                  # noqa: E731
    num = fd(ref, 2.0)
    np.testing.assert_allclose(ad.jacrev(ours)(2.0), num, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(ours)(2.0), num, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ad.grad(ad.grad(lambda k: ours(k)[-1, 0]))(2.0),
                               fd2(lambda k: ref(k[0])[-1, 0], [2.0])[0, 0], rtol=1e-4)


def test_odeint_failure_raises():
    with pytest.raises(RuntimeError, match="odeint failed"):
        ad.grad(lambda y0: odeint(lambda y, t: y ** 2, y0, T)[-1, 0])(1.0)
