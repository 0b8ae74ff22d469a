"""Contract tests: transforms nest, with no perturbation confusion (shared/API.md).

All values are compared against analytic derivatives (rtol 1e-7).
"""
import numpy as np
import pytest

import autodiff as ad

RTOL = 1e-7
ATOL = 1e-10


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64),
                               np.asarray(b, dtype=np.float64),
                               rtol=rtol, atol=atol)


# ----- perturbation confusion --------------------------------------------------

def d_scalar(kind, fn, at):
    """d fn / d arg at `at`, built with the transform named `kind`."""
    if kind == "grad":
        return ad.grad(fn)(at)
    if kind == "derivative":
        return ad.derivative(fn)(at)
    if kind == "jvp":
        return ad.jvp(fn, (at,), (1.0,))[1]
    raise ValueError(kind)


KINDS = ["grad", "derivative", "jvp"]
XS = [-2.0, 0.5, 1.0, 3.0]


@pytest.mark.parametrize("outer", KINDS)
@pytest.mark.parametrize("inner", KINDS)
def test_perturbation_confusion_sum(outer, inner):
    # d/dx [x * d/dy (x + y)] = 1 everywhere; confusion gives 2
    for x0 in XS:
        def f(x):
            return x * d_scalar(inner, lambda y: x + y, 1.0)

        close(d_scalar(outer, f, x0), 1.0)


@pytest.mark.parametrize("outer", KINDS)
@pytest.mark.parametrize("inner", KINDS)
def test_perturbation_confusion_inner_at_x(outer, inner):
    # the inner derivative evaluated at y = x, a value tracked by the outer transform
    for x0 in XS:
        def f(x):
            return x * d_scalar(inner, lambda y: x + y, x)

        close(d_scalar(outer, f, x0), 1.0)


@pytest.mark.parametrize("outer", KINDS)
@pytest.mark.parametrize("inner", KINDS)
def test_perturbation_confusion_product(outer, inner):
    # d/dx [x * d/dy (x * y)] = d/dx x^2 = 2x
    for x0 in XS:
        def f(x):
            return x * d_scalar(inner, lambda y: x * y, 2.0)

        close(d_scalar(outer, f, x0), 2 * x0)

        def g(x):   # inner at y = x: d/dy (x y^2)|_{y=x} = 2x^2 ; times x -> 2x^3 ; derivative 6x^2
            return x * d_scalar(inner, lambda y: x * y ** 2, x)

        close(d_scalar(outer, g, x0), 6 * x0 ** 2)


def test_perturbation_confusion_vector_closure():
    # g(x) = sum(grad_y sum(x * y^2) at y = x) = sum(2 x^2) ; grad = 4x
    x = np.array([0.5, -1.5, 2.0])

    def g(x):
        return np.sum(ad.grad(lambda y: np.sum(x * y ** 2))(x))

    close(ad.grad(g)(x), 4 * x)
    close(ad.jacfwd(g)(x), 4 * x)


# ----- second derivatives --------------------------------------------------------

def f1(x):
    return np.sin(x) * x ** 3


def f1_dd(x):
    return -x ** 3 * np.sin(x) + 6 * x ** 2 * np.cos(x) + 6 * x * np.sin(x)


@pytest.mark.parametrize("x0", [-1.3, 0.4, 2.2])
def test_grad_of_grad(x0):
    close(ad.grad(ad.grad(f1))(x0), f1_dd(x0))
    close(ad.derivative(f1, order=2)(x0), f1_dd(x0))
    close(ad.derivative(ad.grad(f1))(x0), f1_dd(x0))
    close(ad.grad(ad.derivative(f1))(x0), f1_dd(x0))


def fv(x):
    return np.sum(np.sin(x) * x ** 2) + x[0] * x[1] * x[2]


def fv_hess(x):
    H = np.diag(-np.sin(x) * x ** 2 + 4 * x * np.cos(x) + 2 * np.sin(x))
    H[0, 1] = H[1, 0] = x[2]
    H[0, 2] = H[2, 0] = x[1]
    H[1, 2] = H[2, 1] = x[0]
    return H


X = np.array([0.7, -1.1, 1.9])


@pytest.mark.parametrize("name,hess", [
    ("jacfwd(jacrev)", lambda f: ad.jacfwd(ad.jacrev(f))),
    ("jacrev(jacfwd)", lambda f: ad.jacrev(ad.jacfwd(f))),
    ("jacrev(jacrev)", lambda f: ad.jacrev(ad.jacrev(f))),
    ("jacfwd(jacfwd)", lambda f: ad.jacfwd(ad.jacfwd(f))),
    ("jacfwd(grad)", lambda f: ad.jacfwd(ad.grad(f))),
    ("jacrev(grad)", lambda f: ad.jacrev(ad.grad(f))),
    ("hessian", lambda f: ad.hessian(f)),
])
def test_hessian_compositions(name, hess):
    H = hess(fv)(X)
    assert np.shape(H) == (3, 3), name
    close(H, fv_hess(X))


def gv(x):
    # R^3 -> R^2: g_i = sin(x_i) x_2
    return np.sin(x[:2]) * x[2]


def gv_second(x):
    T = np.zeros((2, 3, 3))
    for i in range(2):
        T[i, i, i] = -np.sin(x[i]) * x[2]
        T[i, i, 2] = T[i, 2, i] = np.cos(x[i])
    return T


@pytest.mark.parametrize("outer", ["jacfwd", "jacrev"])
@pytest.mark.parametrize("inner", ["jacfwd", "jacrev"])
def test_second_derivative_tensor_of_vector_function(outer, inner):
    T = getattr(ad, outer)(getattr(ad, inner)(gv))(X)
    assert np.shape(T) == (2, 3, 3)
    close(T, gv_second(X))


def test_jvp_of_grad():
    v = np.array([1.0, -0.5, 2.0])
    g, hv = ad.jvp(ad.grad(fv), (X,), (v,))
    # analytic gradient
    expect_g = np.sin(X) * 2 * X + np.cos(X) * X ** 2 + np.array([X[1] * X[2], X[0] * X[2], X[0] * X[1]])
    close(g, expect_g)
    close(hv, fv_hess(X) @ v)
    close(ad.hvp(fv, X, v), fv_hess(X) @ v)


# ----- third and higher derivatives ----------------------------------------------

def f3(x):
    return x ** 5 + np.sin(2 * x)


def f3_ddd(x):
    return 60 * x ** 2 - 8 * np.cos(2 * x)


@pytest.mark.parametrize("x0", [-0.8, 0.3, 1.7])
def test_third_derivatives(x0):
    expect = f3_ddd(x0)
    close(ad.derivative(f3, order=3)(x0), expect)
    close(ad.grad(ad.grad(ad.grad(f3)))(x0), expect)
    close(ad.derivative(ad.grad(ad.grad(f3)))(x0), expect)
    close(ad.grad(ad.derivative(f3, order=2))(x0), expect)
    close(ad.jvp(ad.grad(ad.grad(f3)), (x0,), (1.0,))[1], expect)
    close(ad.grad(lambda x: ad.jvp(ad.grad(f3), (x,), (1.0,))[1])(x0), expect)


def test_higher_orders():
    for x0 in (0.4, -1.2):
        close(ad.derivative(lambda x: x ** 5, order=4)(x0), 120 * x0)
        close(ad.derivative(lambda x: x ** 5, order=5)(x0), 120.0)
        close(ad.derivative(lambda x: x ** 5, order=6)(x0), 0.0)
        close(ad.derivative(np.sin, order=6)(x0), -np.sin(x0))
        close(ad.derivative(np.exp, order=5)(x0), np.exp(x0))


def test_third_order_tensor():
    def f(x):
        return np.sum(x ** 3) + x[0] * x[1] * x[2]

    T = np.zeros((3, 3, 3))
    for i in range(3):
        T[i, i, i] = 6.0
    for p in [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]:
        T[p] = 1.0
    x = np.array([0.3, -0.2, 1.5])
    close(ad.jacfwd(ad.jacrev(ad.grad(f)))(x), T)
    close(ad.jacrev(ad.jacfwd(ad.jacrev(f)))(x), T)
    close(ad.jacfwd(ad.hessian(f))(x), T)


def test_grad_of_hvp():
    # g(x) = v . H(x) v with f = sum(x^4): H = diag(12 x^2) -> g = 12 sum(x^2 v^2), grad = 24 x v^2
    v = np.array([0.5, -1.0, 2.0])
    x = np.array([1.0, 0.3, -0.7])

    def g(x):
        return np.sum(v * ad.hvp(lambda z: np.sum(z ** 4), x, v))

    close(g(x), 12 * np.sum(x ** 2 * v ** 2))
    close(ad.grad(g)(x), 24 * x * v ** 2)


# ----- custom rules and checkpoint under nesting ------------------------------------

def _custom_jvp_sin():
    @ad.custom_jvp
    def s(x):
        return np.sin(x)

    @s.defjvp
    def s_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return np.sin(x), 0.5 * np.cos(x) * t     # half the true derivative, to see it is used

    return s


@pytest.mark.parametrize("x0", [0.3, -1.1])
def test_second_derivative_through_custom_jvp(x0):
    s = _custom_jvp_sin()
    close(ad.grad(s)(x0), 0.5 * np.cos(x0))
    # the rule itself is differentiated: d/dx (0.5 cos x) = -0.5 sin x
    expect = -0.5 * np.sin(x0)
    close(ad.grad(ad.grad(s))(x0), expect)
    close(ad.derivative(s, order=2)(x0), expect)
    close(ad.derivative(ad.grad(s))(x0), expect)
    close(ad.grad(ad.derivative(s))(x0), expect)


def _custom_vjp_sin():
    def sin_(x):
        return np.sin(x)

    s = ad.custom_vjp(sin_)

    def fwd(x):
        return np.sin(x), np.cos(x)

    def bwd(c, g):
        return (0.5 * c * g,)

    s.defvjp(fwd, bwd)
    return s


@pytest.mark.parametrize("x0", [0.3, -1.1])
def test_grad_of_grad_through_custom_vjp(x0):
    s = _custom_vjp_sin()
    close(ad.grad(s)(x0), 0.5 * np.cos(x0))
    close(ad.grad(ad.grad(s))(x0), -0.5 * np.sin(x0))
    x = np.array([0.3, -1.1, 0.8])
    H = ad.jacrev(ad.grad(lambda x: np.sum(s(x))))(x)
    close(H, np.diag(-0.5 * np.sin(x)))


def test_grad_of_grad_through_checkpoint():
    def block(x):
        return np.sin(x) * x ** 2

    f = lambda x: ad.checkpoint(block)(x) * 3.0
    for x0 in (0.4, -1.3):
        close(ad.grad(ad.grad(f))(x0), 3.0 * (-np.sin(x0) * x0 ** 2 + 4 * x0 * np.cos(x0) + 2 * np.sin(x0)))


def test_stop_gradient_under_nesting():
    # f(x) = x^2 * sg(x): f' = 2x * x, f'' = 2x (the stopped factor stays constant at every level)
    f = lambda x: x ** 2 * ad.stop_gradient(x)
    for x0 in (0.5, 2.0):
        close(ad.grad(f)(x0), 2 * x0 * x0)
        close(ad.grad(ad.grad(f))(x0), 2 * x0)
        close(ad.derivative(f, order=2)(x0), 2 * x0)


# ----- second derivatives through indexing (repeated indices scatter-add) ---------------

def f_idx(x):
    # = (2 x0^3 + x2^3) x1 + x0 x2^2 + sin(x1) x0 + sin(x2) x1
    return np.sum(x[[0, 0, 2]] ** 3 * x[1]) + x[0] * x[2] ** 2 + np.sum(np.sin(x[1:]) * x[:-1])


def f_idx_grad(x):
    x0, x1, x2 = x
    return np.array([6 * x0 ** 2 * x1 + x2 ** 2 + np.sin(x1),
                     2 * x0 ** 3 + x2 ** 3 + x0 * np.cos(x1) + np.sin(x2),
                     3 * x2 ** 2 * x1 + 2 * x0 * x2 + x1 * np.cos(x2)])


def f_idx_hess(x):
    x0, x1, x2 = x
    H = np.array([[12 * x0 * x1, 6 * x0 ** 2 + np.cos(x1), 2 * x2],
                  [0.0, -x0 * np.sin(x1), 3 * x2 ** 2 + np.cos(x2)],
                  [0.0, 0.0, 6 * x2 * x1 + 2 * x0 - x1 * np.sin(x2)]])
    return np.triu(H) + np.triu(H, 1).T


@pytest.mark.parametrize("name", ["hessian", "jacfwd(jacfwd)", "jacfwd(jacrev)", "jacrev(jacfwd)",
                                  "jacrev(jacrev)", "jacrev(grad)"])
def test_second_derivatives_through_indexing(name):
    x = np.array([0.3, -0.7, 1.1])
    close(ad.grad(f_idx)(x), f_idx_grad(x))
    close(ad.jacfwd(f_idx)(x), f_idx_grad(x))
    make = {
        "hessian": ad.hessian,
        "jacfwd(jacfwd)": lambda f: ad.jacfwd(ad.jacfwd(f)),
        "jacfwd(jacrev)": lambda f: ad.jacfwd(ad.jacrev(f)),
        "jacrev(jacfwd)": lambda f: ad.jacrev(ad.jacfwd(f)),
        "jacrev(jacrev)": lambda f: ad.jacrev(ad.jacrev(f)),
        "jacrev(grad)": lambda f: ad.jacrev(ad.grad(f)),
    }[name]
    close(make(f_idx)(x), f_idx_hess(x))
