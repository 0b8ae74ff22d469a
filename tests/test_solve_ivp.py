"""solve_ivp: SciPy's signature and result, derivatives of ``.y`` (and event times, dense
output) against finite differences of the solver at tight tolerances, in both modes, by both
sensitivity methods, for every SciPy method; failures raise; an end-to-end parameter fit.

The case table (tests/cases_scipy.py) adds check_grads to second order of the samples and of
the adjoint primitive; Robertson's stiff kinetics are in benchmarks/bench_ivp.py.
"""
import numpy as np
import pytest
import scipy.integrate as si
import scipy.linalg as sl
import scipy.optimize as so

import autodiff as ad
from autodiff.boxes import unbox
from autodiff.scipy import integrate, ivp
from autodiff.scipy.integrate import solve_ivp

METHODS = ["RK45", "DOP853", "BDF", "Radau", "LSODA"]
TOL = dict(rtol=1e-11, atol=1e-12)


def oscillator(t, y, k, c):
    return [y[1], -k * y[0] - c * y[1] + 0.3 * np.sin(t)]


def _fd(f, x, h=1e-5):
    """Central differences of ``f`` at ``x``, one column per entry of ``x``."""
    x = np.asarray(x, dtype=float)
    return np.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)], -1)


# ----- the result is SciPy's -----
def test_plain_inputs_give_scipys_result():
    ours = solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.5], args=(1.3, 0.2))
    ref = si.solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.5], args=(1.3, 0.2))
    for key in ("t", "y"):
        np.testing.assert_array_equal(ours[key], ref[key])
    assert (ours.status, ours.success, ours.message, ours.nfev) == \
        (ref.status, ref.success, ref.message, ref.nfev)


def test_tracked_inputs_keep_scipys_numbers_and_fields():
    """Differentiated, the values are still those of SciPy's own solve."""
    ref = si.solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.5], method="Radau", args=(1.3, 0.2),
                       t_eval=[0.5, 1.0, 2.0], jac=ivp._ad_jac(oscillator))
    seen = {}

    def f(k):
        sol = solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.5], method="Radau", args=(k, 0.2),
                        t_eval=[0.5, 1.0, 2.0])
        seen.update(sol)
        seen["y"] = unbox(sol.y)
        return sol.y
    ad.jacfwd(f)(1.3)
    np.testing.assert_array_equal(seen["y"], ref.y)
    for key in ("t", "status", "message", "success", "nfev", "njev", "nlu", "sol",
                "t_events", "y_events"):
        assert key in seen
    assert seen["njev"] >= 1                  # the AD Jacobian, not finite differences


def test_implicit_methods_get_the_ad_jacobian():
    calls = []

    def f(t, y):
        calls.append(y.shape)
        return -50.0 * (y - np.cos(t))
    sol = solve_ivp(f, (0.0, 1.0), [0.0, 1.0], method="BDF")
    ref = si.solve_ivp(f, (0.0, 1.0), [0.0, 1.0], method="BDF")
    assert sol.njev >= 1 and sol.success
    # SciPy estimates its Jacobian by n extra calls per evaluation; ours needs none
    assert sol.nfev <= ref.nfev
    np.testing.assert_allclose(sol.y[:, -1], ref.y[:, -1], rtol=1e-3)


# ----- derivatives against finite differences: every method, both sensitivities -----
def pendulum(t, y, k, c):
    return [y[1], -k * np.sin(y[0]) - c * y[1] + 0.3 * np.sin(t)]


# the implicit methods take many short steps at 1e-11: 1e-10 keeps them quick
_TOL_OF = {"BDF": 1e-10, "Radau": 1e-10, "LSODA": 1e-11, "RK45": 1e-11, "DOP853": 1e-12}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sensitivity", ["forward", "adjoint"])
def test_derivatives_match_finite_differences(method, sensitivity):
    """y(t_end) of a damped, driven pendulum: jacfwd (forward sensitivities, always) and
    jacrev (by ``sensitivity``) against central differences of the same solver."""
    tol = _TOL_OF[method]

    def f(x):
        sol = solve_ivp(pendulum, (0.0, 1.0), x[:2], method=method, args=(x[2], x[3]),
                        sensitivity=sensitivity, rtol=tol, atol=tol)
        return sol.y[:, -1]
    x = np.array([1.0, 0.5, 1.3, 0.2])
    num = _fd(f, x)
    np.testing.assert_allclose(ad.jacrev(f)(x), num, rtol=2e-6, atol=1e-7)
    if sensitivity == "forward":       # forward mode does not depend on ``sensitivity``
        np.testing.assert_allclose(ad.jacfwd(f)(x), num, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["DOP853", "BDF"])
@pytest.mark.parametrize("sensitivity", ["forward", "adjoint"])
def test_t_eval_samples_match_finite_differences(method, sensitivity):
    """Cotangents at several samples: the adjoint jumps at each."""
    tol = _TOL_OF[method]

    def f(x):
        sol = solve_ivp(pendulum, (0.0, 1.5), x[:2], method=method, t_eval=[0.3, 0.9, 1.5],
                        args=(x[2], x[3]), sensitivity=sensitivity, rtol=tol, atol=tol)
        assert sol.y.shape == (2, 3)
        return sol.y.ravel()
    x = np.array([1.0, 0.5, 1.3, 0.2])
    num = _fd(f, x)
    np.testing.assert_allclose(ad.jacrev(f)(x), num, rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(ad.jacfwd(f)(x), num, rtol=2e-6, atol=1e-7)


def test_step_times_are_held_fixed():
    """Without t_eval, .t is SciPy's step control's choice; the derivative of .y at those
    times is that of the solution at fixed times (finite differences of a solve that samples
    at the same times)."""
    sol = si.solve_ivp(oscillator, (0.0, 1.5), [1.0, 0.5], args=(1.3, 0.2), **TOL)

    def f(k):
        return solve_ivp(oscillator, (0.0, 1.5), [1.0, 0.5], args=(k, 0.2), **TOL).y

    def at_steps(k):
        return si.solve_ivp(oscillator, (0.0, 1.5), [1.0, 0.5], args=(k[0], 0.2),
                            t_eval=sol.t, **TOL).y
    J = ad.jacrev(f)(1.3)
    assert J.shape == sol.y.shape
    np.testing.assert_allclose(J, _fd(at_steps, [1.3])[..., 0], rtol=1e-6, atol=1e-8)


def test_grad_of_a_scalar_and_nested_second_order():
    """grad (the adjoint past 16 input values is not needed here: "auto"), and the Hessian
    by forward-over-reverse and reverse-over-forward against differences of the gradient."""
    def loss(x):
        sol = solve_ivp(oscillator, (0.0, 1.0), x[:2], method="DOP853", t_eval=[0.5, 1.0],
                        args=(x[2], x[3]), **TOL)
        return np.sum(sol.y ** 2)
    x = np.array([1.0, 0.5, 1.3, 0.2])
    g = ad.grad(loss)(x)
    np.testing.assert_allclose(g, _fd(lambda x: np.array([loss(x)]), x)[0], rtol=1e-6)
    num = _fd(ad.grad(loss), x, h=1e-4)
    np.testing.assert_allclose(ad.jacfwd(ad.grad(loss))(x), num, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ad.hessian(loss)(x), num, rtol=1e-5, atol=1e-7)


def test_adjoint_second_order():
    def loss(k):
        sol = solve_ivp(oscillator, (0.0, 1.0), [1.0, 0.5], method="RK45", args=(k, 0.2),
                        sensitivity="adjoint", **TOL)
        return sol.y[0, -1]
    d2 = ad.grad(ad.grad(loss))(1.3)
    num = (ad.grad(loss)(1.3 + 1e-4) - ad.grad(loss)(1.3 - 1e-4)) / 2e-4
    np.testing.assert_allclose(d2, num, rtol=1e-5)


def test_jvp_vjp_and_vectors_of_parameters():
    A = np.array([[-1.0, 0.3], [0.2, -2.0]])

    def f(y0, A):
        return solve_ivp(lambda t, y, A: A @ y, (0.0, 0.7), y0, args=(A,), **TOL).y[:, -1]
    y0 = np.array([1.0, -0.5])
    dA = np.array([[0.1, 0.0], [-0.3, 0.2]])
    _, tan = ad.jvp(f, (y0, A), (np.zeros(2), dA))
    want = sl.expm_frechet(0.7 * A, 0.7 * dA, compute_expm=False) @ y0
    np.testing.assert_allclose(tan, want, rtol=1e-8, atol=1e-11)
    _, pull = ad.vjp(f, y0, A)
    gy0, gA = pull(np.array([1.0, 2.0]))
    np.testing.assert_allclose(gy0, sl.expm(0.7 * A).T @ [1.0, 2.0], rtol=1e-8)
    E = np.eye(4).reshape(4, 2, 2)
    want = [np.array([1.0, 2.0]) @ sl.expm_frechet(0.7 * A, 0.7 * e, compute_expm=False)
            @ y0 for e in E]
    np.testing.assert_allclose(gA.ravel(), want, rtol=1e-8, atol=1e-11)


@pytest.mark.parametrize("sensitivity", ["forward", "adjoint"])
@pytest.mark.parametrize("method", METHODS)
def test_linear_ode_against_expm(sensitivity, method):
    """y' = A y: y(T) = e^{AT} y0, ∂y(T)/∂y0 = e^{AT}, ∂y(T)/∂A from the Fréchet derivative."""
    rng = np.random.default_rng(3)
    A = rng.standard_normal((3, 3)) - 2 * np.eye(3)
    y0 = rng.standard_normal(3)
    T = 0.8

    tol = _TOL_OF[method] * 10

    def f(y0, A):
        return solve_ivp(lambda t, y, A: A @ y, (0.0, T), y0, method=method, args=(A,),
                         sensitivity=sensitivity, rtol=tol, atol=tol).y[:, -1]
    for jac in (ad.jacfwd, ad.jacrev) if sensitivity == "forward" else (ad.jacrev,):
        jy, jA = jac(f, argnums=(0, 1))(y0, A)
        np.testing.assert_allclose(jy, sl.expm(A * T), rtol=1e-6, atol=1e-8)
        want = np.stack([sl.expm_frechet(A * T, T * e.reshape(3, 3), compute_expm=False)
                         @ y0 for e in np.eye(9)], -1).reshape(3, 3, 3)
        np.testing.assert_allclose(jA, want, rtol=1e-6, atol=1e-8)


def test_many_parameters_auto_picks_the_adjoint():
    """40 parameters: "auto" pulls back by the adjoint; forward sensitivities agree."""
    w = np.linspace(0.5, 1.5, 40)

    def loss(w, sensitivity="auto"):
        sol = solve_ivp(lambda t, y, w: -w * y + 0.1 * np.sum(w * y) / 40, (0.0, 1.0),
                        np.ones(40), args=(w,), sensitivity=sensitivity, **TOL)
        return np.sum(sol.y[:, -1] ** 2)
    np.testing.assert_allclose(ad.grad(loss)(w), ad.grad(lambda w: loss(w, "forward"))(w),
                               rtol=1e-7)


# ----- args, t_span, t_eval, dense output -----
def test_args_pytrees_and_static_args_pass_through():
    def f(t, y, params, n, scale):
        assert isinstance(n, int) and callable(scale)
        return -params["k"] * y ** n + scale(params["c"])

    def y_end(k, c):
        return solve_ivp(f, (0.0, 1.0), [1.0], args=({"k": k, "c": c}, 2, np.sin),
                         **TOL).y[0, -1]
    g = ad.grad(y_end, argnums=(0, 1))(0.7, 0.3)
    num = [(y_end(0.7 + 1e-5, 0.3) - y_end(0.7 - 1e-5, 0.3)) / 2e-5,
           (y_end(0.7, 0.3 + 1e-5) - y_end(0.7, 0.3 - 1e-5)) / 2e-5]
    np.testing.assert_allclose(g, num, rtol=1e-6)


def test_args_must_be_a_tuple():
    with pytest.raises(TypeError, match="args"):
        solve_ivp(oscillator, (0.0, 1.0), [1.0, 0.0], args=1.3)


def test_t_span_and_t_eval_are_differentiable():
    """Moving the end or a sample time moves the sample along the flow: dy/dt = f."""
    def f(x):
        sol = solve_ivp(oscillator, (x[0], x[1]), [1.0, 0.5], t_eval=[x[2], x[1]],
                        args=(1.3, 0.2), **TOL)
        return sol.y.ravel()
    x = np.array([0.1, 1.2, 0.6])
    num = _fd(f, x)
    np.testing.assert_allclose(ad.jacfwd(f)(x), num, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ad.jacrev(f)(x), num, rtol=1e-6, atol=1e-8)


def test_backwards_in_time():
    def f(k):
        return solve_ivp(oscillator, (1.5, 0.0), [1.0, 0.5], method="Radau",
                         t_eval=[1.0, 0.2], args=(k[0], 0.2), **TOL).y.ravel()
    np.testing.assert_allclose(ad.jacrev(f)(np.array([1.3])), _fd(f, [1.3]), rtol=1e-6,
                               atol=1e-8)


def test_dense_output_is_differentiable():
    def f(k, s):
        sol = solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.5], dense_output=True,
                        args=(k, 0.2), **TOL)
        return sol.sol(s)
    ref = si.solve_ivp(oscillator, (0.0, 2.0), [1.0, 0.5], dense_output=True,
                       args=(1.3, 0.2), **TOL)
    s = np.array([1.7, 0.4])
    np.testing.assert_array_equal(ad.jvp(lambda k: f(k, s), (1.3,), (1.0,))[0], ref.sol(s))
    num = (f(1.3 + 1e-5, s) - f(1.3 - 1e-5, s)) / 2e-5
    np.testing.assert_allclose(ad.jacrev(lambda k: f(k, s))(1.3), num, rtol=1e-6)
    np.testing.assert_allclose(ad.jacfwd(lambda k: f(k, 0.9))(1.3),
                               (f(1.3 + 1e-5, 0.9) - f(1.3 - 1e-5, 0.9)) / 2e-5, rtol=1e-6)


# ----- events: the event time by the implicit function theorem -----
def _ball(t, y, g):
    return [y[1], -g]


def _ground(t, y, g):
    return y[0]


_ground.terminal = True
_ground.direction = -1


@pytest.mark.parametrize("method", ["RK45", "Radau"])
@pytest.mark.parametrize("sensitivity", ["forward", "adjoint"])
def test_terminal_event_time_and_state(method, sensitivity):
    """A ball dropped from h: t_e = √(2h/g), v_e = -√(2gh); the last sample is the event."""
    def run(h, g):
        return solve_ivp(_ball, (0.0, 10.0), h * np.array([1.0, 0.0]),
                         method=method, events=_ground, args=(g,), sensitivity=sensitivity,
                         **TOL)

    def te(h, g):
        return run(h, g).t_events[0][0]

    def ve(h, g):
        return run(h, g).y_events[0][0, 1]
    h, g = 2.0, 9.81
    sol = run(h, g)
    assert sol.status == 1 and sol.t[-1] == sol.t_events[0][0]
    np.testing.assert_allclose(sol.t_events[0][0], np.sqrt(2 * h / g), rtol=1e-9)
    dte = [np.sqrt(2 / (g * h)) / 2, -np.sqrt(2 * h / g) / (2 * g)]
    for grad in (lambda f: ad.grad(f, argnums=(0, 1)),
                 lambda f: ad.jacfwd(f, argnums=(0, 1))):
        np.testing.assert_allclose(grad(te)(h, g), dte, rtol=1e-7)
        np.testing.assert_allclose(grad(ve)(h, g), [-np.sqrt(g / h) / np.sqrt(2),
                                                    -np.sqrt(h / g) / np.sqrt(2)], rtol=1e-7)
    # the last sample of .t and .y are the event's
    np.testing.assert_allclose(ad.grad(lambda h: run(h, g).t[-1])(h), dte[0], rtol=1e-7)
    np.testing.assert_allclose(ad.grad(lambda h: run(h, g).y[1, -1])(h),
                               -np.sqrt(g / h) / np.sqrt(2), rtol=1e-7)
    # second order: d²t_e/dh² = -√(2/g)/(4 h^{3/2})
    np.testing.assert_allclose(ad.grad(ad.grad(te))(h, g), -np.sqrt(2 / g) / (4 * h ** 1.5),
                               rtol=1e-6)


def test_non_terminal_events_against_finite_differences():
    def crossing(t, y, k, c):
        return y[0] - 0.2

    def f(x):
        sol = solve_ivp(oscillator, (0.0, 9.0), x[:2], method="DOP853", events=crossing,
                        args=(x[2], x[3]), rtol=1e-12, atol=1e-12)
        assert len(sol.t_events[0]) == 2
        return np.concatenate([sol.t_events[0], sol.y_events[0][:, 1], sol.y[:, -1]])
    x = np.array([1.0, 0.5, 1.3, 0.2])
    num = _fd(f, x)
    np.testing.assert_allclose(ad.jacfwd(f)(x), num, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ad.jacrev(f)(x), num, rtol=1e-6, atol=1e-8)


# ----- failures and validation -----
@pytest.mark.parametrize("how", ["solve", "grad", "jacfwd"])
def test_solver_failure_raises(how):
    """y' = y² blows up at t = 1/y0; SciPy returns status -1, we raise with its message."""
    def f(y0):
        return solve_ivp(lambda t, y: y ** 2, (0.0, 2.0), np.reshape(y0, (1,)),
                         method="BDF").y[0, -1]
    run = {"solve": f, "grad": ad.grad(f), "jacfwd": ad.jacfwd(f)}[how]
    with pytest.raises(RuntimeError, match=r"solve_ivp \(BDF\) failed \(Required step size"):
        run(1.0)


def test_sensitivity_is_validated():
    with pytest.raises(ValueError, match="sensitivity must be one of"):
        solve_ivp(oscillator, (0.0, 1.0), [1.0, 0.0], args=(1.0, 0.1), sensitivity="fwd")


def test_complex_solutions_are_solved_but_not_differentiated():
    sol = solve_ivp(lambda t, y: 1j * y, (0.0, 1.0), np.array([1.0 + 0j]))
    assert np.iscomplexobj(sol.y)
    with pytest.raises(NotImplementedError, match="complex"):
        ad.grad(lambda k: solve_ivp(lambda t, y, k: 1j * k * y, (0.0, 1.0),
                                    np.array([1.0 + 0j]), args=(k,)).y[0, -1].real)(1.0)


def test_re_exported_from_integrate():
    assert integrate.solve_ivp is ivp.solve_ivp


# ----- end to end: a stiff parameter fit with SciPy's optimizer and our gradient -----
def _chain(t, y, logk):
    """A → B → C with rates e^{logk}: stiff when k₂ ≫ k₁."""
    k1, k2 = np.exp(logk[0]), np.exp(logk[1])
    return [-k1 * y[0], k1 * y[0] - k2 * y[1], k2 * y[1]]


def test_parameter_fit_through_a_stiff_solve():
    t_obs = np.array([0.5, 1.0, 2.0, 4.0])
    true = np.log([0.8, 400.0])
    data = si.solve_ivp(_chain, (0.0, 4.0), [1.0, 0.0, 0.0], method="LSODA", t_eval=t_obs,
                        args=(true,), rtol=1e-10, atol=1e-12).y

    def loss(logk):
        sol = solve_ivp(_chain, (0.0, 4.0), [1.0, 0.0, 0.0], method="LSODA", t_eval=t_obs,
                        args=(logk,), rtol=1e-10, atol=1e-12)
        r = (sol.y - data) / np.array([[1.0], [1e-3], [1.0]])    # B stays tiny: weigh it
        return np.sum(r ** 2)
    x0 = np.log([0.3, 100.0])
    res = so.minimize(loss, x0, jac=ad.grad(loss), method="BFGS", options={"gtol": 1e-9})
    assert res.success or res.fun < 1e-14, res.message
    np.testing.assert_allclose(res.x, true, rtol=1e-5)
    assert res.njev < 60


def test_vectorized_fun():
    """vectorized=True: fun sees y of shape (n, k), here (n, 1)."""
    def y_end(k):
        return solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), [1.0, 2.0], method="BDF",
                         vectorized=True, args=(k,), **TOL).y[:, -1]
    want = -np.exp(-0.5) * np.array([1.0, 2.0])
    np.testing.assert_allclose(ad.jacrev(y_end)(0.5), want, rtol=1e-8)
    np.testing.assert_allclose(ad.jacfwd(y_end)(0.5), want, rtol=1e-8)


def test_large_stiff_systems_get_the_sparse_ad_jacobian():
    """Past SPARSE_FROM unknowns the implicit methods get the sparse AD Jacobian (the same
    solution as SciPy's finite differences with the pattern); small systems the dense one."""
    import scipy.sparse as sp
    from scipy.integrate import solve_ivp as scipy_solve_ivp
    from autodiff.scipy.ivp import SPARSE_FROM, _ad_jac

    def heat(t, u, k):
        up = np.concatenate([u[1:], u[-1:]])
        um = np.concatenate([u[:1], u[:-1]])
        return k * (up - 2 * u + um) - u ** 3

    n = SPARSE_FROM + 50
    u0 = np.sin(np.linspace(0, 3, n))
    J = _ad_jac(heat)(0.0, u0, 40.0)
    assert sp.issparse(J) and J.nnz == 3 * n - 2
    assert not sp.issparse(_ad_jac(heat)(0.0, u0[:20], 40.0))
    ours = solve_ivp(heat, (0, 0.5), u0, method="BDF", args=(40.0,), rtol=1e-8, atol=1e-10)
    pattern = sp.diags([1.0, 1.0, 1.0], [-1, 0, 1], shape=(n, n))
    ref = scipy_solve_ivp(heat, (0, 0.5), u0, method="BDF", args=(40.0,), rtol=1e-8,
                          atol=1e-10, jac_sparsity=pattern)
    np.testing.assert_allclose(ours.y[:, -1], ref.y[:, -1], rtol=1e-6, atol=1e-8)
    g = ad.grad(lambda k: np.sum(solve_ivp(heat, (0, 0.5), u0, method="BDF", args=(k,),
                                           rtol=1e-8, atol=1e-10).y[:, -1]))(40.0)
    h = 1e-4
    fd = (np.sum(scipy_solve_ivp(heat, (0, 0.5), u0, method="BDF", args=(40.0 + h,),
                                 rtol=1e-10, atol=1e-12, jac_sparsity=pattern).y[:, -1])
          - np.sum(scipy_solve_ivp(heat, (0, 0.5), u0, method="BDF", args=(40.0 - h,),
                                   rtol=1e-10, atol=1e-12, jac_sparsity=pattern).y[:, -1])) / (2 * h)
    assert abs(g - fd) <= 1e-4 * abs(fd)


@pytest.mark.parametrize("method", ["RK45", "BDF"])
def test_an_empty_t_eval_gives_empty_arrays_in_every_mode(method):
    # SciPy returns lists for an empty t_eval; the documented shapes are t (0,), y (n, 0).
    def osc(t, y, k):
        return np.stack([y[1], -k * y[0]])

    def f(k):
        return integrate.solve_ivp(osc, (0.0, 1.0), np.array([1.0, 0.5]), method=method,
                                   t_eval=np.zeros(0), args=(k,)).y
    res = integrate.solve_ivp(osc, (0.0, 1.0), np.array([1.0, 0.5]), method=method,
                              t_eval=np.zeros(0), args=(1.3,))
    assert type(res.t) is np.ndarray and res.t.shape == (0,)
    assert type(res.y) is np.ndarray and res.y.shape == (2, 0)
    assert np.shape(ad.jvp(f, (1.3,), (1.0,))[1]) == (2, 0)
    assert np.shape(ad.jacrev(f)(1.3)) == (2, 0)
    assert np.shape(ad.jacfwd(f)(1.3)) == (2, 0)


def test_second_order_through_a_zero_cotangent_of_the_sample_times():
    """Reverse over reverse where the inner cotangent of the samples is zero in value but
    not in derivative: f(t, s) = s·Σ sin y(tᵢ) at s = 0. The t_eval rule skipped the
    samples whose cotangent is zero, and lost ∂²f/∂s∂tᵢ = Σ cos y·y'(tᵢ) (the Hessian came
    out unsymmetric; the seam fuzzer found it)."""
    def Y(t):
        return solve_ivp(oscillator, (0.0, 5.0), np.array([1.0, 0.5]), method="BDF",
                         t_eval=np.cumsum(t), args=(1.3, 0.2), **TOL).y

    def f(x):
        return x[2] * np.sum(np.sin(Y(x[:2])))
    x = np.array([0.6, 0.9, 0.0])

    def fd_grad(x, h=1e-5):
        return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(3)])
    want = np.array([(fd_grad(x + 1e-4 * e) - fd_grad(x - 1e-4 * e)) / 2e-4
                     for e in np.eye(3)])
    for H in (ad.jacrev(ad.grad(f))(x), ad.jacfwd(ad.grad(f))(x), ad.hessian(f)(x)):
        np.testing.assert_allclose(H, H.T, atol=1e-9)
        np.testing.assert_allclose(H, want, rtol=1e-5, atol=1e-6)
    assert np.abs(want[2, :2]).min() > 0.1          # the terms that were lost
