"""Complex numbers, JAX's convention: the VJP is the transpose of the R-linear JVP under
Re(Σ a·b); grad of a real f(z) is ∂f/∂x - i ∂f/∂y; holomorphic=True gives f'(z). Every
derivative here is checked against finite differences of real and imaginary parts."""
import numpy as np
import pytest

import autodiff as ad


def fd_partials(f, z, h=1e-6):
    """(∂f/∂x, ∂f/∂y) of f at z = x + iy by central differences."""
    dx = (f(z + h) - f(z - h)) / (2 * h)
    dy = (f(z + 1j * h) - f(z - 1j * h)) / (2 * h)
    return dx, dy


def energy(z):                         # a real function of complex amplitudes
    return np.sum(np.abs(z) ** 2 * np.log1p(np.abs(z) ** 2)) + np.real(np.sum(z[:-1] * np.conj(z[1:])))


Z = np.array([0.3 + 0.4j, -1.0 + 0.2j, 0.5 - 0.7j])


def test_grad_of_real_function_is_conjugate_of_steepest_ascent():
    g = ad.grad(energy)(Z)
    assert g.dtype == np.complex128 and g.shape == Z.shape
    for k in range(3):
        e = np.zeros(3)
        e[k] = 1.0
        dx, dy = fd_partials(lambda z: energy(Z + (z - Z[k]) * e), Z[k])
        np.testing.assert_allclose(g[k], dx - 1j * dy, rtol=1e-7, atol=1e-8)


def test_forward_and_reverse_agree_on_real_function_of_complex():
    v = np.array([1.0 - 0.5j, 0.2 + 1.0j, -0.3 + 0.1j])
    _, jv = ad.jvp(energy, (Z,), (v,))
    g = ad.grad(energy)(Z)
    np.testing.assert_allclose(jv, np.real(np.sum(g * v)), rtol=1e-12)


@pytest.mark.parametrize("f, df", [
    (lambda z: z ** 3 - 2 * z, lambda z: 3 * z ** 2 - 2),
    (lambda z: np.exp(np.sin(z)) / z, lambda z: np.exp(np.sin(z)) * (np.cos(z) / z - 1 / z ** 2)),
    (lambda z: np.sqrt(z) * np.log(z), lambda z: np.log(z) / (2 * np.sqrt(z)) + 1 / np.sqrt(z)),
])
def test_holomorphic_grad_is_complex_derivative(f, df):
    z = 0.7 + 0.4j
    np.testing.assert_allclose(ad.grad(f, holomorphic=True)(z), df(z), rtol=1e-12)
    dx, dy = fd_partials(f, z)
    np.testing.assert_allclose(dx, df(z), rtol=1e-7)            # Cauchy–Riemann: df/dz = ∂f/∂x
    np.testing.assert_allclose(dy, 1j * df(z), rtol=1e-7)


def test_holomorphic_jacobians_both_modes():
    f = lambda z: np.array([1.0, 2.0]) * z[:2] ** 2 * z[1:]     # noqa: E731
    z = np.array([0.5 + 1j, -1 + 0.5j, 2 - 1j])
    want = np.zeros((2, 3), complex)
    want[0, 0], want[0, 1] = 2 * z[0] * z[1], z[0] ** 2
    want[1, 1], want[1, 2] = 4 * z[1] * z[2], 2 * z[1] ** 2
    for mode in ("forward", "reverse", "auto"):
        np.testing.assert_allclose(ad.jacobian(f, mode=mode, holomorphic=True)(z), want)


def test_jacobian_auto_picks_the_mode_complex_allows():
    real_of_complex = ad.jacobian(lambda z: np.abs(z) ** 2)
    np.testing.assert_allclose(real_of_complex(Z), np.diag(2 * np.conj(Z)))
    assert real_of_complex.last_mode == "reverse"
    complex_of_real = ad.jacobian(lambda x: np.exp(1j * x[:1] * x))
    x = np.array([0.3, 0.5])
    got = complex_of_real(x)
    assert complex_of_real.last_mode == "forward"
    want = np.stack([1j * np.exp(1j * x[0] * x) * np.array([2 * x[0], x[1]]),
                     1j * np.exp(1j * x[0] * x[1]) * np.array([0.0, x[0]])])
    want[0] = [2j * x[0] * np.exp(1j * x[0] ** 2), 0.0]
    want[1] = [1j * x[1] * np.exp(1j * x[0] * x[1]), 1j * x[0] * np.exp(1j * x[0] * x[1])]
    np.testing.assert_allclose(got, want)


def test_complex_errors_name_the_fix():
    with pytest.raises(TypeError, match="holomorphic=True"):
        ad.grad(lambda z: z ** 2)(1.0 + 1.0j)
    with pytest.raises(TypeError, match="needs complex inputs"):
        ad.grad(lambda z: z ** 2 + 0j, holomorphic=True)(1.0)
    with pytest.raises(TypeError, match="complex input.*holomorphic=True"):
        ad.jacfwd(lambda z: z * 2)(Z)
    with pytest.raises(TypeError, match="complex output.*holomorphic=True"):
        ad.jacrev(lambda x: x * 1j)(np.ones(2))
    with pytest.raises(TypeError, match="complex"):
        ad.jacobian(lambda z: z * 2)(Z)            # complex on both sides, not holomorphic


def test_nesting_hessian_of_real_function_through_complex_intermediates():
    # f(x) = |Σ x_k e^{i k x_k}|²: complex inside, real in and out.
    k = np.arange(1.0, 4.0)

    def f(x):
        s = np.sum(x * np.exp(1j * k * x))
        return np.real(s * np.conj(s))

    x = np.array([0.2, -0.4, 0.7])
    h_fr = ad.hessian(f)(x)
    h_rr = ad.jacrev(ad.grad(f))(x)
    h_ff = ad.jacfwd(ad.jacfwd(f))(x)
    np.testing.assert_allclose(h_fr, h_rr, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_fr, h_ff, rtol=1e-10, atol=1e-12)
    eps = 1e-5
    fd = np.stack([(ad.grad(f)(x + eps * e) - ad.grad(f)(x - eps * e)) / (2 * eps)
                   for e in np.eye(3)])
    np.testing.assert_allclose(h_fr, fd, rtol=1e-6, atol=1e-7)


def test_holomorphic_second_derivative_by_nesting():
    d2 = ad.grad(ad.grad(lambda z: z ** 4, holomorphic=True), holomorphic=True)
    np.testing.assert_allclose(d2(1.0 + 1.0j), 12 * (1.0 + 1.0j) ** 2)
    h = ad.hessian(lambda z: np.sum(z ** 3), holomorphic=True)(np.array([1 + 1j, 2 - 1j]))
    np.testing.assert_allclose(h, np.diag(6 * np.array([1 + 1j, 2 - 1j])))


def test_dual_and_variable_objects_carry_complex_values():
    d = ad.Dual(1.0 + 1.0j, 1.0 + 0.0j)
    y = np.exp(d) * d
    np.testing.assert_allclose(y.tangent, np.exp(1 + 1j) * (2 + 1j))
    v = ad.Variable(np.array([1.0 + 2.0j, -0.5j]))
    loss = np.sum(np.abs(v) ** 2)
    loss.backward()
    np.testing.assert_allclose(v.grad, 2 * np.conj(v.value))


def test_real_cotangent_never_leaks_complex_into_real_inputs():
    # A real input meets complex constants; its gradient is real and matches the real math.
    g = ad.grad(lambda x: np.real(np.sum(np.exp(1j * x) * (1 + 2j))))(np.array([0.1, 0.9]))
    assert g.dtype == np.float64
    x = np.array([0.1, 0.9])
    np.testing.assert_allclose(g, np.real(1j * np.exp(1j * x) * (1 + 2j)))


def test_check_grads_on_complex_functions_catches_a_conjugation_slip():
    ad.check_grads(lambda z: np.conj(z) * np.exp(z) + np.angle(z), (Z,), order=2)
    wrong = ad.custom_jvp(lambda z: np.exp(z))
    wrong.defjvp(lambda primals, tangents: (np.exp(primals[0]), np.conj(np.exp(primals[0])) * tangents[0]))
    with pytest.raises(AssertionError):
        ad.check_grads(wrong, (Z,), order=1, modes=("fwd",))


def test_a_python_complex_cotangent_reaches_a_reduction():
    """imag's partial is the Python complex -1j, so a Python float cotangent times it is a
    Python complex; the reductions' rules re-inserted the reduced axes with a method only
    arrays have (the seam fuzzer found it: a complex prod read as real, then custom_root)."""
    from autodiff.arrays import expand_to
    assert np.shape(expand_to(1.5j, (-1,), False)) == (1,)
    import seams
    seams.check(seams.Program((0, (1, 0), False, False, 24769,
                               ((1, 37891, 44456), (0, 26999, 38232)), 0)))
