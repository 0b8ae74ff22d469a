"""Assignment into tracked arrays as NumPy users write it: ``x[i] = v`` (basic, advanced,
boolean, repeated, ``+=``), ``x.at[i]`` updates, tracked constructors, copy-on-write of
saved values, both modes and nesting, and the refusals that keep derivatives right."""
import numpy as np
import pytest

import autodiff as ad
from autodiff.ops.assign import at

X = np.array([0.3, -1.2, 0.8, 1.5])


def fd_grad(f, x, eps=1e-6):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def both_modes(f, x):
    """grad, jacfwd-of-scalar and finite differences agree."""
    g = ad.grad(f)(x)
    np.testing.assert_allclose(ad.jacfwd(f)(x), g, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, fd_grad(f, x), rtol=1e-6, atol=1e-8)
    return g


def test_physicist_loop_fills_forces():
    # Pairwise spring forces written with an output array filled in a loop.
    def energy_and_forces(x):
        f = np.zeros_like(x)
        for i in range(x.size - 1):
            d = x[i + 1] - x[i] - 1.0
            f[i] += d
            f[i + 1] -= d
        return np.sum(f * f)

    both_modes(energy_and_forces, X)


def test_saved_value_overwritten_later_keeps_its_derivative():
    def f(x):
        y = np.sin(x)
        z = y * y                      # the record of y*y saved y
        y[:2] = x[2:] ** 2             # copy-on-write: z's saved y is untouched
        return np.sum(z * y)

    both_modes(f, X)
    # The value the user sees is NumPy's.
    y = np.sin(X)
    z = y * y
    y[:2] = X[2:] ** 2
    np.testing.assert_allclose(ad.value_and_grad(f)(X)[0], np.sum(z * y))


def test_repeated_indices_follow_numpy():
    x = X.copy()
    want = x.copy()
    want[[0, 2, 0]] = [10.0, 20.0, 30.0]
    got = ad.Dual(x, np.ones(4))
    got[[0, 2, 0]] = np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(got.value, want)
    np.testing.assert_array_equal(got.tangent, [0.0, 1.0, 0.0, 1.0])
    # ``+=`` with repeats adds once (it is get, add, set), as in NumPy.
    g = ad.grad(lambda x: np.sum((lambda y: (y.__setitem__([1, 1], y[[1, 1]] + x[0]), y)[1])(x * 1.0) ** 2))(X)
    y = X.copy()
    y[[1, 1]] += X[0]
    np.testing.assert_allclose(g, [2 * y[0] + 2 * y[1], 2 * y[1], 2 * y[2], 2 * y[3]])


@pytest.mark.parametrize("method, ufunc", [("add", np.add), ("multiply", np.multiply),
                                            ("min", np.minimum), ("max", np.maximum)])
def test_at_matches_numpy_ufunc_at_and_differentiates(method, ufunc):
    idx = np.array([0, 3, 0, 1, 0])
    v = np.array([0.5, -2.0, 1.7, 0.25, -0.4])
    want = X.copy()
    ufunc.at(want, idx, v)
    np.testing.assert_allclose(getattr(at(X)[idx], method)(v), want)
    v_tracked = ad.Variable(v)
    got = getattr(ad.Variable(X).at[idx], method)(v_tracked)
    np.testing.assert_allclose(got.value, want)
    f = lambda x: np.sum(np.sin(getattr(at(x)[idx], method)(x[[1, 2, 3, 2, 1]] * 2.0)))  # noqa
    both_modes(f, X)


def test_at_leaves_the_original_unchanged():
    x = ad.Variable(X.copy())
    y = x.at[1].set(5.0)
    np.testing.assert_array_equal(x.value, X)
    assert float(y.value[1]) == 5.0
    np.testing.assert_allclose(ad.grad(lambda x: np.sum(x.at[1:3].apply(np.exp)))(X),
                               [1.0, np.exp(X[1]), np.exp(X[2]), 1.0])


@pytest.mark.parametrize("make", [
    lambda x: np.zeros_like(x), lambda x: np.empty_like(x), lambda x: np.ones_like(x),
    lambda x: np.full_like(x, 2.0), lambda x: np.zeros(x.shape, like=x),
    lambda x: np.empty(x.shape, like=x), lambda x: np.ones(4, like=x),
    lambda x: np.full(4, 3.0, like=x), lambda x: np.array([0.0, 0.0, 0.0, 0.0], like=x),
])
def test_tracked_constructors_then_assignment_both_modes(make):
    def f(x):
        out = make(x)
        out[1:] = x[:-1] * x[1:]
        out[0] = np.cos(x[3])
        return np.sum(out ** 2)

    both_modes(f, X)


def test_constructors_with_plain_input_stay_plain_numpy():
    assert type(np.zeros_like(X)) is np.ndarray
    assert type(np.zeros(3, like=X)) is np.ndarray
    a = ad.Variable(X)
    assert type(np.zeros_like(a, dtype=int)) is np.ndarray         # ints carry nothing
    np.testing.assert_array_equal(np.ones_like(a).value, np.ones(4))


def test_full_with_tracked_fill_value_is_differentiable():
    g = ad.grad(lambda s: np.sum(np.full(4, s, like=s) * X))(0.7)
    np.testing.assert_allclose(g, np.sum(X))
    gx, gs = ad.grad(lambda x, s: np.sum(np.full_like(x, s) * x), argnums=(0, 1))(X, 0.7)
    np.testing.assert_allclose(gx, np.full(4, 0.7))
    np.testing.assert_allclose(gs, np.sum(X))
    with pytest.raises(TypeError, match="like=x"):       # NumPy never dispatches on s here
        ad.grad(lambda s: np.sum(np.full_like(X, s)))(0.7)


def test_nesting_hessian_and_jvp_of_grad_through_assignment():
    def f(x):
        out = np.zeros_like(x)
        out[0] = x[0] * x[1]
        out[1:3] = np.sin(x[2:]) * x[0]
        out[3] = out[0] ** 2          # reads a value written before
        return np.sum(out * out)

    H = ad.hessian(f)(X)
    np.testing.assert_allclose(H, ad.jacrev(ad.jacrev(f))(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H, ad.jacfwd(ad.jacfwd(f))(X), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H, np.stack([fd_grad(lambda y: ad.grad(f)(y)[k], X)
                                            for k in range(4)]), rtol=1e-5, atol=1e-6)
    v = np.array([1.0, -0.5, 0.2, 0.3])
    np.testing.assert_allclose(ad.jvp(ad.grad(f), (X,), (v,))[1], H @ v, rtol=1e-10)


def test_assignment_inside_inner_transform_into_outer_array():
    # x ↦ d/dy Σ (x ⊙ [y, y²]) written by assignment into an array made from x (outer level)
    def inner(x):
        def g(y):
            out = x * 1.0
            out[0] = out[0] * y
            return np.sum(out)
        return ad.grad(g)(0.5)

    # Reverse over reverse: the outer array becomes an inner-level record.
    np.testing.assert_allclose(ad.grad(inner)(X), [1.0, 0.0, 0.0, 0.0])
    # A forward-mode array cannot hold a reverse-mode value of an inner transform.
    with pytest.raises(TypeError, match="created outside"):
        ad.jacfwd(inner)(X)
    # The functional form works across levels.
    d = ad.grad(lambda x: ad.grad(lambda y: np.sum((x * 1.0).at[0].multiply(y)))(0.5))(X)
    np.testing.assert_allclose(d, [1.0, 0.0, 0.0, 0.0])


def test_assignment_into_a_transform_input():
    def f(x):
        x[0] = 0.0                     # NumPy code that normalises its argument in place
        return np.sum(x ** 2)

    np.testing.assert_allclose(ad.grad(f)(X.copy()), [0.0, *(2 * X[1:])])
    np.testing.assert_allclose(ad.jacfwd(f)(X.copy()), [0.0, *(2 * X[1:])])


def test_copy_is_a_separate_array():
    def f(x):
        y = x.copy()
        y[0] = 10.0
        z = np.copy(x)
        z[1] = 0.0
        return np.sum(x * y * z)

    both_modes(f, X)
    x = ad.Variable(X)
    y = x.copy()
    y[0] = 1.0
    np.testing.assert_array_equal(x.value, X)


def test_copyto_put_and_put_along_axis():
    def f(x):
        a = np.zeros_like(x)
        np.copyto(a, x ** 2)
        np.put(a, [0, 2], x[1:3])
        b = np.zeros((2, 2), like=x)
        np.put_along_axis(b, np.array([[1], [0]]), x[:2, None], axis=1)
        return np.sum(a * x) + np.sum(b ** 3)

    both_modes(f, X)


def test_refusals_name_the_fix():
    with pytest.raises(TypeError, match="zeros_like"):
        ad.grad(lambda x: (lambda a: (a.__setitem__(slice(0, 2), x[:2]), a.sum())[1])(np.zeros(4)))(X)
    with pytest.raises(TypeError, match=r"x\[i, j\] = v"):
        def chained(x):
            out = np.zeros((2, 2), like=x)
            out[0][1] = x[0]
            return np.sum(out)
        ad.grad(chained)(X)
    leaf = ad.Variable(X.copy())
    with pytest.raises(TypeError, match="leaf Variable"):
        leaf[0] = 1.0
    with pytest.raises(TypeError, match="leaf Variable"):
        leaf[1] += 1.0


def test_eager_backward_through_assignment_and_tape():
    x = ad.Variable(X.copy())
    with ad.Tape() as tape:
        y = x * 2.0
        s = np.sum(y)               # saw y before the write
        y[0] = x[1] ** 2
        loss = s + np.sum(y)
    loss.backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0 + 2 * X[1], 4.0, 4.0])
    names = [r.primitive for r in tape]
    assert "setitem" in names
    assert names.index("multiply") < names.index("setitem")


@pytest.mark.parametrize("shape,vshape", [((2, 2, 2), (2, 2)), ((3, 3), (5,)), ((3, 3), (2,)),
                                          ((4, 3), (3,)), ((3, 3), ())])
def test_fill_diagonal_takes_vals_entries_in_flat_order(shape, vshape):
    """np.fill_diagonal writes through a.flat: val's entries in order, repeated or cut to
    the diagonal's length. A val of another shape than the diagonal raised a broadcasting
    error on tracked values (the seam fuzzer: a (2, 2) sum on a (2, 2, 2) array)."""
    rng = np.random.default_rng(len(shape) + len(vshape))
    a0, v0 = rng.standard_normal(shape), rng.standard_normal(vshape)

    def f(a, v):
        b = a * a
        np.fill_diagonal(b, v)
        return b

    plain = f                   # on plain arrays: NumPy's own fill_diagonal
    np.testing.assert_allclose(ad.jvp(f, (a0, v0), (np.ones(shape), np.ones(vshape)))[0],
                               plain(a0, v0))
    Ja, Jv = ad.jacrev(f, argnums=(0, 1))(a0, v0)
    Fa, Fv = ad.jacfwd(f, argnums=(0, 1))(a0, v0)
    np.testing.assert_allclose(Ja, Fa)
    np.testing.assert_allclose(Jv, Fv)
    h = 1e-6
    dv = np.ones(vshape)
    np.testing.assert_allclose(np.tensordot(Jv, dv, axes=len(vshape)) if vshape else Jv,
                               (plain(a0, v0 + h * dv) - plain(a0, v0 - h * dv)) / (2 * h),
                               atol=1e-7)
