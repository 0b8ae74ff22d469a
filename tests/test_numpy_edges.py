"""NumPy code on tracked values at the edges found by running NumPy programs side by side:
``cholesky(upper=True)``, ``np.put`` with negative indices, the array methods with NumPy's
full signatures (``clip(min=)``, ``sum(where=, initial=)``, ``max(axis, out, keepdims)``),
``v in x``, ``interp``'s tangent dtype, and the messages for what stays refused."""
import numpy as np
import pytest

import autodiff as ad

X = np.array([[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]])


@pytest.mark.parametrize("a", [np.array([[4.0, 1.0], [0.5, 3.0]]),
                               np.array([[4.0, 1.0], [9.0, 3.0]]),       # lower: not PD
                               np.array([[4.0, 1 + 1j], [0.5, 3.0]])])
def test_cholesky_upper_reads_the_upper_triangle_as_numpy(a):
    # it factored the lower triangle and transposed: a wrong value, or a refusal
    want = np.linalg.cholesky(a, upper=True)
    y, t = ad.jvp(lambda m: np.linalg.cholesky(m, upper=True), (a,),
                  (np.eye(2).astype(a.dtype),))
    np.testing.assert_allclose(y, want, atol=1e-15)
    h = 1e-6
    fd = (np.linalg.cholesky(a + h * np.eye(2), upper=True) -
          np.linalg.cholesky(a - h * np.eye(2), upper=True)) / (2 * h)
    np.testing.assert_allclose(t, fd, atol=1e-8)


def test_put_with_negative_indices_and_a_short_value_as_numpy():
    x = np.arange(4.0)

    def f(x):
        y = x * 1.0
        np.put(y, [-1, 0], 5.0 * x[1])
        return y

    np.testing.assert_array_equal(f(ad.Variable(x)).value, [5.0, 1.0, 2.0, 5.0])
    np.testing.assert_array_equal(ad.jacfwd(f)(x)[:, 1], [5.0, 1.0, 0.0, 5.0])

    def g(x):
        y = x * 1.0
        np.put(y, [0, 1, 2], x[:2])             # v repeats over the indices
        return y

    want = x.copy()
    np.put(want, [0, 1, 2], x[:2])
    np.testing.assert_array_equal(g(ad.Variable(x)).value, want)
    with pytest.raises(IndexError, match="out of bounds"):
        np.put(ad.Variable(x) * 1.0, [9], 1.0)


METHODS = [
    ("clip-min", lambda a: a.clip(min=0)), ("clip-max", lambda a: a.clip(max=0)),
    ("clip", lambda a: a.clip(-1, 1)), ("ravel-C", lambda a: a.ravel("C")),
    ("ravel-order", lambda a: a.ravel(order="C")), ("take-wrap", lambda a: a.take([7], mode="wrap")),
    ("sum-where", lambda a: a.sum(where=X > 0)), ("sum-initial", lambda a: a.sum(0, initial=2.0)),
    ("prod-where", lambda a: a.prod(where=X > 0)), ("prod-initial", lambda a: a.prod(initial=2.0)),
    ("max-initial", lambda a: a.max(initial=9.0)),
    ("min-where", lambda a: a.min(where=X > 0, initial=10.0)),
    ("max-numpy-positional", lambda a: a.max(0, None, True)),
]


@pytest.mark.parametrize("name, f", METHODS, ids=[m[0] for m in METHODS])
def test_array_methods_take_numpys_arguments(name, f):
    got = f(ad.Variable(X))
    np.testing.assert_array_equal(got.value, f(X))
    ad.check_grads(lambda a: f(a) * 1.0, (X + 0.1,), order=1)


def test_pytorch_max_forms_still_give_values_and_indices():
    v = ad.Variable(X)
    np.testing.assert_array_equal(v.max(1).values.value, X.max(1))
    np.testing.assert_array_equal(v.max(1, True).indices, X.argmax(1)[:, None])


def test_membership_as_numpy():
    v = ad.Variable(X)
    assert (1.0 in v) and (7.0 not in v) and (1.0 in X)
    assert ad.grad(lambda a: np.sum(a) if 5.0 in a else 0.0)(X).sum() == 6.0


def test_interp_tangent_has_the_primal_dtype():
    x, xp, fp = (np.array(v, np.float32) for v in ([0.5, 1.5], [0.0, 1.0, 2.0], [0.0, 2.0, 3.0]))
    for f, p, t in [(lambda x: np.interp(x, xp, fp), x, np.ones(2, np.float32)),
                    (lambda f: np.interp(x, xp, f), fp, np.ones(3, np.float32))]:
        y, ty = ad.jvp(f, (p,), (t,))
        assert y.dtype == ty.dtype == np.interp(x, xp, fp).dtype


def test_messages_name_the_call_and_the_fix():
    v = ad.Variable(np.arange(3.0))
    with pytest.raises(TypeError, match=r"where=\) on a tracked value.*np.where"):
        np.add(v, 1.0, where=v.value > 1)
    with pytest.raises(NotImplementedError, match="np.frompyfunc"):
        np.frompyfunc(lambda a: a, 1, 1)(v)
    with pytest.raises(AttributeError, match=r"x.value.flags") as e:
        v.flags
    assert "np.flags" not in str(e.value)
    with pytest.raises(AttributeError, match=r"np.compress\(x"):
        v.compress([True, False, True])


@pytest.mark.parametrize("ufunc", [np.add, np.subtract, np.multiply, np.divide, np.maximum,
                                   np.minimum, np.power, np.arctan2, np.hypot])
def test_outer_of_the_binary_ufuncs(ufunc):
    a, b = np.array([1.0, 2.0]), np.array([[0.5, 1.5, 2.5]])
    np.testing.assert_array_equal(ufunc.outer(ad.Variable(a), ad.Variable(b)).value,
                                  ufunc.outer(a, b))
    ad.check_grads(lambda a, b: ufunc.outer(a, b), (a, b), order=2)


def test_ufunc_at_applies_every_repeated_index_as_numpy():
    x = np.arange(3.0) + 1

    def f(x):
        y = x * 1.0
        np.add.at(y, np.array([0, 0, 2]), x[1] * np.array([1.0, 2.0, 3.0]))
        np.subtract.at(y, [1, 1], x[0])
        np.multiply.at(y, [2, 2], x[2])
        np.maximum.at(y, [0], 10.0)
        return y

    want = x.copy()
    np.add.at(want, [0, 0, 2], x[1] * np.array([1.0, 2.0, 3.0]))
    np.subtract.at(want, [1, 1], x[0])
    np.multiply.at(want, [2, 2], x[2])
    np.maximum.at(want, [0], 10.0)
    np.testing.assert_allclose(f(ad.Variable(x)).value, want, rtol=1e-15)
    ad.check_grads(f, (x,), order=2)
    with pytest.raises(TypeError, match="plain array"):
        np.add.at(np.zeros(3), [0], ad.Variable(1.0))
