"""Complex directions for real functions: a complex tangent or cotangent of a real value is
refused (as JAX's dtype check), since the real rules would drop its imaginary part; the
Jacobian as a LinearOperator takes the complex blocks SciPy's solvers pass it, as
J·Re v + i·J·Im v."""
import numpy as np
import pytest
import scipy.sparse.linalg as spla

import autodiff as ad

X = np.array([0.3, -0.5, 0.8])
V = np.array([1.0, 2.0, 3.0])
W = np.array([[4.0, 1, 0], [1, 3, 1], [0, 1, 2]])


def f(x):
    return W @ x + 0.1 * x ** 3


J = W + np.diag(0.3 * X ** 2)


@pytest.mark.parametrize("call", [
    lambda: ad.jvp(np.sum, (X,), (1j * V,)),
    lambda: ad.jvp(lambda x: x[0], (X,), (1j * V,)),
    lambda: ad.linearize(np.cumsum, X)[1](1j * V),
    lambda: ad.hvp(lambda x: np.sum(x ** 3), X, 1j * V),
    lambda: ad.vjp(f, X)[1](1j * V),
    lambda: ad.Dual(X, 1j * V),
    lambda: (ad.Variable(X) * 2).backward(1j * V)], ids=[
        "jvp sum", "jvp index", "linearize", "hvp", "vjp", "Dual", "backward"])
def test_a_complex_direction_of_a_real_value_is_refused(call):
    with pytest.raises(TypeError, match="complex (tangent|cotangent|gradient) for a real"):
        call()


def test_complex_values_keep_complex_directions():
    z = X + 0.5j
    _, t = ad.jvp(lambda z: np.sum(z * z), (z,), (1j * V,))
    np.testing.assert_allclose(t, np.sum(2 * z * 1j * V))
    assert np.sum(ad.Dual(z, 1j * V)).tangent == pytest.approx(6j)


def test_linear_operator_takes_complex_blocks():
    L = ad.linear_operator(f, X)
    b = np.array([1.0, 1j, 2.0 + 1j])
    B = np.stack([b, 2j * b, np.ones(3)], axis=1)
    np.testing.assert_allclose(L.matvec(b), J @ b, rtol=1e-14)
    np.testing.assert_allclose(L.rmatvec(b), J.T @ b, rtol=1e-14)
    np.testing.assert_allclose(L.matmat(B), J @ B, rtol=1e-14)
    np.testing.assert_allclose(L.rmatmat(B), J.T @ B, rtol=1e-14)
    np.testing.assert_allclose(L.H.matvec(b), J.T @ b, rtol=1e-14)     # J is real
    np.testing.assert_allclose(L.matvec(V), J @ V, rtol=1e-14)         # real stays real
    assert not np.iscomplexobj(L.matvec(V))


def test_gmres_with_a_complex_right_hand_side():
    """SciPy's gmres on the real Jacobian operator with a complex b: the solve converges
    to J⁻¹b (it used to stall with the imaginary parts dropped)."""
    b = np.array([1.0, 1j, 2.0 + 1j])
    x, info = spla.gmres(ad.linear_operator(f, X), b, rtol=1e-12, atol=0)
    assert info == 0
    np.testing.assert_allclose(x, np.linalg.solve(J, b), rtol=1e-10, atol=1e-12)
