"""Transforms at the edges found by running JAX's programs side by side: Python floats at
points where a partial divides by zero, fmax/fmin beside a NaN, OrderedDict and
defaultdict pytrees, repeated argnums, and the messages for odd inputs and outputs."""
from collections import OrderedDict, defaultdict

import numpy as np
import pytest

import autodiff as ad

INF, NAN = np.inf, np.nan

# f, the point (a Python float), the derivative NumPy's arithmetic gives (JAX's too)
SINGULAR = [
    ("sqrt", np.sqrt, 0.0, INF), ("log", np.log, 0.0, INF), ("log10", np.log10, 0.0, INF),
    ("log2", np.log2, 0.0, INF), ("log1p", np.log1p, -1.0, INF),
    ("arcsin", np.arcsin, 1.0, INF), ("arccos", np.arccos, 1.0, -INF),
    ("arctanh", np.arctanh, 1.0, INF), ("cbrt", np.cbrt, 0.0, INF),
    ("pow-half", lambda v: v ** 0.5, 0.0, INF), ("pow-minus-one", lambda v: v ** -1, 0.0, -INF),
    ("reciprocal", lambda v: 1 / v, 0.0, -INF),
    ("quotient", lambda v: v / (v - 1.0), 1.0, NAN),
]


def _same(got, want):
    got = np.asarray(got, dtype=float)
    return np.isnan(want) and np.isnan(got) or got == want


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name, f, x, want", SINGULAR, ids=[c[0] for c in SINGULAR])
def test_python_float_at_a_singular_point_gives_numpys_inf_in_every_mode(name, f, x, want):
    # The partials' arithmetic on Python floats raised ZeroDivisionError here; NumPy
    # scalars (and JAX) give inf or nan.
    assert _same(ad.grad(f)(x), want)
    assert _same(ad.jacfwd(f)(x), want)
    assert _same(ad.jacrev(f)(x), want)
    assert _same(ad.jvp(f, (x,), (1.0,))[1], want)
    assert _same(ad.vjp(f, x)[1](1.0)[0], want)
    assert _same(ad.derivative(f)(x), want)
    assert _same(ad.grad(lambda p: f(p["a"]))({"a": x})["a"], want)
    assert _same(ad.jit(ad.grad(f))(x), want)
    assert _same(ad.grad(ad.jit(f))(x), want)
    assert _same(f(ad.Dual(x, 1.0)).tangent, want)
    v = ad.Variable(x)
    f(v).backward()
    assert _same(v.grad, want)
    assert _same(ad.grad(f)(np.array(x)), want)          # what arrays always gave


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_higher_orders_at_a_singular_point():
    assert _same(ad.hessian(lambda v: 1 / v)(0.0), INF)
    assert _same(ad.derivative(np.sqrt, 3)(0.0), INF)
    assert _same(ad.hessian(np.sqrt)(0.0), -INF)


def test_fmax_fmin_beside_a_nan_differentiate_the_operand_they_return():
    a, b = np.array([0.5, NAN, 2.0, 1.0]), np.array([NAN, 1.0, 1.0, 1.0])
    for fn, want_a, want_b in [(np.fmax, [1, 0, 1, 0.5], [0, 1, 0, 0.5]),
                               (np.fmin, [1, 0, 0, 0.5], [0, 1, 1, 0.5])]:
        ga, gb = ad.grad(lambda x, y: np.sum(fn(x, y)), argnums=(0, 1))(a, b)
        np.testing.assert_array_equal(ga, want_a)
        np.testing.assert_array_equal(gb, want_b)
        np.testing.assert_array_equal(np.diag(ad.jacfwd(lambda x: fn(x, b))(a)), want_a)
        np.testing.assert_array_equal(fn(ad.Variable(a), b).value, fn(a, b))
    assert ad.value_and_grad(lambda v: np.fmax(v, NAN))(0.5) == (0.5, 1.0)
    assert np.isnan(ad.value_and_grad(lambda v: np.maximum(v, NAN))(0.5)[0])


def test_ordered_and_default_dicts_are_pytrees():
    p = OrderedDict(b=2.0, a=1.0)                       # its own order, as JAX keeps it
    g = ad.grad(lambda p: p["a"] * p["b"])(p)
    assert type(g) is OrderedDict and list(g) == ["b", "a"] and g == {"b": 1.0, "a": 2.0}
    for jac in (ad.jacfwd, ad.jacrev):
        j = jac(lambda x: OrderedDict(z=x, a=2 * x))(1.0)
        assert type(j) is OrderedDict and list(j) == ["z", "a"]
        assert float(j["z"]) == 1.0 and float(j["a"]) == 2.0
    h = ad.hessian(lambda p: p["a"] ** 2 * p["b"])(p)
    assert float(h["a"]["a"]) == 4.0 and float(h["a"]["b"]) == 2.0 and list(h) == ["b", "a"]
    assert ad.jit(lambda p: p["a"] * p["b"])(p) == 2.0
    (ct,) = ad.vjp(lambda p: OrderedDict(q=p["a"] * p["b"]), p)[1](OrderedDict(q=1.0))
    assert type(ct) is OrderedDict and ct == {"b": 1.0, "a": 2.0}
    d = defaultdict(list, {"w": np.ones(2), "s": 3.0})
    g = ad.grad(lambda p: np.sum(p["w"]) * p["s"])(d)
    assert type(g) is defaultdict and g.default_factory is list
    np.testing.assert_array_equal(g["w"], [3.0, 3.0])
    assert float(g["s"]) == 2.0


def test_repeated_argnums_are_refused():
    # each occurrence would get its own share: (0.0, 12.0) came back, silently
    for transform in (ad.grad, ad.jacfwd, ad.jacrev, ad.hessian):
        with pytest.raises(ValueError, match="more than once"):
            transform(lambda x, y: x * y ** 2, argnums=(0, 0))(2.0, 3.0)
    with pytest.raises(ValueError, match="more than once"):
        ad.grad(lambda x, y: x * y, argnums=(1, -1))(2.0, 3.0)
    assert ad.grad(lambda x, y: x * y ** 2, argnums=(1, 0))(2.0, 3.0) == (12.0, 9.0)


def test_messages_for_odd_inputs_and_outputs():
    with pytest.raises(TypeError, match="returned None"):
        ad.grad(lambda x: None)(1.0)
    with pytest.raises(TypeError, match=r"non-numeric \(str\) input for argument 0"):
        ad.grad(lambda x: 1.0)("a")
    with pytest.raises(TypeError, match="integer input"):
        ad.grad(lambda x: x)(2)


def test_symbolic_zeros_false_is_jaxs_default_and_true_is_refused():
    f = ad.custom_jvp(lambda x, y: x * y)
    f.defjvp(lambda p, t: (p[0] * p[1], t[0] * p[1] + p[0] * t[1]), symbolic_zeros=False)
    assert ad.grad(f)(2.0, 3.0) == 3.0
    with pytest.raises(NotImplementedError, match="symbolic_zeros=True"):
        f.defjvp(lambda p, t: None, symbolic_zeros=True)
    g = ad.custom_vjp(lambda x: 2 * x)
    g.defvjp(lambda x: (2 * x, None), lambda r, ct: (2 * ct,), symbolic_zeros=False)
    assert ad.grad(g)(1.0) == 2.0
    with pytest.raises(NotImplementedError, match="symbolic_zeros=True"):
        g.defvjp(lambda x: (2 * x, None), lambda r, ct: (2 * ct,), symbolic_zeros=True)
