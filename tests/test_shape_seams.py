"""0-d and empty inputs at the seams: where plain NumPy (or SciPy) answers, a transform answers
the same primal, with derivatives that agree across jvp, vjp, jacfwd and jacrev and with
finite differences. Each group failed (an exception under the transform) before its fix."""
import numpy as np
import pytest
import scipy.special as sps

import autodiff as ad
import autodiff.scipy.special as S

X0 = np.array(0.7)


def _fd_jacobian(f, x, h=1e-6):
    """Central differences of ``f`` at float64 ``x``: shape ``f(x).shape + x.shape``."""
    x = np.asarray(x, dtype=float)
    out = np.asarray(f(x))
    cols = []
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * h))
    J = np.stack(cols, axis=-1) if cols else np.zeros(out.shape + (0,))
    return J.reshape(out.shape + x.shape)


def _seams(f, x, numpy_f=None):
    """Run ``f`` at ``x`` under jvp, vjp, jacfwd and jacrev; compare with NumPy's primal
    (``numpy_f``, default ``f`` on the plain array) and, for a non-empty ``x``, with central
    differences and ``check_grads`` to order 2 in both modes."""
    want = (numpy_f or f)(x.copy())
    v = np.linspace(0.5, 1.5, x.size).reshape(x.shape)
    out, jv = ad.jvp(f, (x,), (v,))
    assert np.shape(out) == np.shape(want)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    assert np.shape(jv) == np.shape(want)
    out2, pull = ad.vjp(f, x)
    np.testing.assert_allclose(out2, want, rtol=1e-12, atol=1e-12)
    u = np.linspace(-1.0, 1.0, np.size(want)).reshape(np.shape(want))
    (jtu,) = pull(u)
    assert np.shape(jtu) == x.shape
    np.testing.assert_allclose(np.sum(u * jv), np.sum(jtu * v), rtol=1e-10, atol=1e-12)
    Jf, Jr = ad.jacfwd(f)(x), ad.jacrev(f)(x)
    assert np.shape(Jf) == np.shape(Jr) == np.shape(want) + x.shape
    np.testing.assert_allclose(Jf, Jr, rtol=1e-10, atol=1e-12)
    if x.size and np.size(want):
        np.testing.assert_allclose(Jf, _fd_jacobian(numpy_f or f, x), rtol=1e-6, atol=1e-7)
        ad.check_grads(f, (x,), order=2)


# ----- ufunc-style reductions take axis 0 / -1 on a 0-d array, as NumPy does -----
REDUCTIONS = {
    "sum-axis0": lambda x: np.sum(x, axis=0),
    "sum-axis-1-keep": lambda x: np.sum(x, axis=-1, keepdims=True) ** 2,
    "prod-axis0": lambda x: np.prod(x, axis=0) * x,
    "max-axis0": lambda x: np.max(x, axis=0) ** 3,
    "min-axis-1": lambda x: np.min(x, axis=-1),
    "amax-axis0": lambda x: np.amax(x, 0),
    "add.reduce": lambda x: np.add.reduce(x, axis=0) ** 2,
    "multiply.reduce": lambda x: np.multiply.reduce(x, axis=-1),
    "method-sum": lambda x: x.sum(axis=0) * x.mean(),
    "method-prod": lambda x: x.prod(-1) ** 2,
    "method-max": lambda x: x.max(axis=0),
    "sum-complex": lambda x: np.real(np.sum((x * (1 + 2j)) ** 2, axis=0)),
    "nansum": lambda x: np.nansum(x ** 2, axis=0),
    "nanprod": lambda x: np.nanprod(x, axis=-1),
    "nanmax": lambda x: np.nanmax(x, axis=0),
    "nanmin-keep": lambda x: np.nanmin(x, axis=-1, keepdims=True),
    "nanmean": lambda x: np.nanmean(x, axis=0) * x,
    "nanvar": lambda x: np.nanvar(x, axis=0) + x,
    "ptp": lambda x: np.ptp(x, axis=0) + x,
}


@pytest.mark.parametrize("name", REDUCTIONS)
def test_reduction_of_0d_takes_axis_0_or_minus_1(name):
    _seams(REDUCTIONS[name], X0)


@pytest.mark.parametrize("name", ["sum-axis0", "prod-axis0", "max-axis0", "nansum"])
@pytest.mark.parametrize("shape", [(3,), (2, 3)])
def test_reduction_axis_still_normal_on_arrays(name, shape):
    _seams(REDUCTIONS[name], np.linspace(0.3, 1.4, int(np.prod(shape))).reshape(shape))


@pytest.mark.parametrize("f", [
    lambda x: np.sum(x, axis=1), lambda x: np.sum(x, axis=(0,)), lambda x: np.max(x, axis=(-1,)),
    lambda x: np.mean(x, axis=0), lambda x: np.var(x, axis=-1)])
def test_reduction_of_0d_refuses_what_numpy_refuses(f):
    """A tuple, another axis, or mean/var (NumPy normalises those axes): NumPy's AxisError."""
    with pytest.raises(np.exceptions.AxisError):
        f(X0)
    with pytest.raises(np.exceptions.AxisError):
        ad.jvp(f, (X0,), (np.array(1.0),))


@pytest.mark.parametrize("name", ["logsumexp", "softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, -1])
def test_scipy_softmax_family_of_0d(name, axis):
    _seams(lambda x: getattr(S, name)(x, axis=axis) * x, X0,
           lambda x: getattr(sps, name)(x, axis=axis) * x)


# ----- repeat, take, compress read a 0-d array as 1-d -----
@pytest.mark.parametrize("f", [
    lambda x: np.repeat(x, 3, axis=-1) ** 2, lambda x: np.repeat(x, [2], axis=0) * x,
    lambda x: x.repeat(2, axis=0) ** 2,
    lambda x: np.take(x, [0, -1, 0], axis=0) ** 2, lambda x: np.take(x, 0, axis=-1) * x,
    lambda x: np.compress([True, False], x, axis=0) ** 3])
def test_repeat_take_compress_of_0d(f):
    _seams(f, X0)


def test_take_out_of_range_on_0d_still_raises():
    with pytest.raises(IndexError):
        ad.jvp(lambda x: np.take(x, [1], axis=0), (X0,), (np.array(1.0),))


def test_take_from_an_empty_array_checks_no_index():
    """No element to take (another axis is empty): NumPy checks no index, the result is
    empty; an empty axis itself still raises, as in NumPy."""
    f = lambda x: np.take(x, [3, 0, -5], axis=1) ** 2           # noqa: E731
    _seams(f, np.zeros((0, 3)))
    with pytest.raises(IndexError):
        np.take(np.zeros((3, 0)), [1], axis=1)
    with pytest.raises(IndexError):
        ad.jvp(lambda x: np.take(x, [1], axis=1), (np.zeros((3, 0)),), (np.zeros((3, 0)),))


# ----- fftshift / ifftshift of an empty axis: nothing moves -----
@pytest.mark.parametrize("f", [
    lambda x: np.fft.fftshift(x) * x, lambda x: np.fft.ifftshift(x, axes=(0,)) ** 2,
    lambda x: np.fft.fftshift(x, axes=-1) * 2.0])
@pytest.mark.parametrize("shape", [(0,), (0, 3), (2, 0)])
def test_fftshift_of_empty(f, shape):
    _seams(f, np.zeros(shape))


@pytest.mark.parametrize("f", [lambda x: np.fft.fftshift(x) * x,
                               lambda x: np.fft.ifftshift(x, axes=(0,)) ** 2])
def test_fftshift_still_shifts(f):
    _seams(f, np.linspace(0.1, 1.1, 12).reshape(3, 4))


# ----- polymul reads its inputs as np.poly1d does -----
@pytest.mark.parametrize("a, b", [
    ([1.0, 2.0], []), ([], [1.0, 2.0]), ([], []), ([0.0, 1.5], [1.0, 2.0]),
    ([0.0, 0.0], [1.0, 2.0]), ([0.5], [2.0, -1.0]), (0.5, [2.0, -1.0])])
def test_polymul_as_numpy(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    want = np.polymul(a, b)
    for x, f in ((a, lambda a: np.polymul(a, b)), (b, lambda b: np.polymul(a, b))):
        if x.size and x.ndim and x[0] == 0:
            # a tracked leading zero would be trimmed with its derivative: refused
            with pytest.raises(NotImplementedError, match="np.polymul"):
                ad.jvp(f, (x,), (np.ones_like(x),))
            continue
        out, _ = ad.jvp(f, (x,), (np.ones_like(x),))
        assert np.shape(out) == want.shape
        np.testing.assert_allclose(out, want)


def test_polyval_polymul_of_empty():
    f = lambda x: np.polyval([1.0, -2.0, 0.5], x) * np.polymul([1.0, 2.0], x[:2]).sum()  # noqa
    _seams(f, np.zeros(0))
    _seams(f, np.array([0.3, -0.4, 0.9]))       # nonzero leading coefficient: unchanged


# ----- pad of a 0-d array: nothing to pad -----
@pytest.mark.parametrize("kw", [{}, {"constant_values": 4.0}, {"mode": "edge"},
                                {"mode": "mean"}, {"mode": "linear_ramp"}])
def test_pad_of_0d(kw):
    _seams(lambda x: np.pad(x, 1, **kw) * 2.0, X0)
    _seams(lambda x: np.pad(x, ((1, 2),), **kw) * x, X0)


def test_grad_through_pad_of_0d():
    """The seed cotangent of a 0-d output is a Python float; index_add's VJP takes it."""
    assert ad.grad(lambda x: np.pad(x, 1) * 2.0)(X0) == 2.0


# ----- a custom rule asked about no directions keeps the value tracked -----
def test_empty_jacobian_of_custom_jvp_stays_tracked():
    """jacfwd of a custom_jvp at an empty input, inside a jvp, is tracked like the same
    jacfwd of a plain function: views into it are values (a plain array would follow NumPy's
    view semantics, and the write below would change ``v``)."""
    A = np.ones((2, 0))

    @ad.custom_jvp
    def f(x):
        return np.sin(A @ ad.stop_gradient(x))

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return np.sin(A @ x), np.cos(A @ x) * (A @ t)

    def g(y, jac):
        s = np.sum(jac(y), axis=1) + 1.0
        z = np.zeros_like(s) + s
        v = z[:1]
        z[0] = 5.0
        return np.concatenate([v, z])

    plain = lambda y: np.sin(A @ y)                              # noqa: E731
    for fun in (f, plain):
        out, t = ad.jvp(lambda y: g(y, ad.jacfwd(fun)), (np.zeros(0),), (np.zeros(0),))
        np.testing.assert_array_equal(out, [1.0, 5.0, 1.0])
        np.testing.assert_array_equal(t, [0.0, 0.0, 0.0])


def test_compress_of_an_empty_array_checks_no_index():
    # NumPy takes nothing from an empty array, so a condition longer than the axis is fine.
    f = lambda x: np.compress([True, False, True], x, axis=-1) ** 2
    x = np.zeros((0, 2))
    assert f(x).shape == (0, 2)
    assert ad.jvp(f, (x,), (x,))[1].shape == (0, 2)
    assert ad.jacfwd(f)(x).shape == ad.jacrev(f)(x).shape == (0, 2, 0, 2)


def test_take_along_an_empty_axis_of_an_empty_array_checks_no_index():
    f = lambda x: np.take(x, [3, 0, 3], axis=1) ** 2
    x = np.zeros((0, 0))
    assert f(x).shape == np.take(x, [3, 0, 3], axis=1).shape == (0, 3)
    assert ad.jvp(f, (x,), (x,))[1].shape == (0, 3)
    assert ad.jacrev(f)(x).shape == (0, 3, 0, 0)
    with pytest.raises(IndexError):
        ad.jvp(f, (np.zeros((2, 0)),), (np.zeros((2, 0)),))   # NumPy refuses this one


def test_full_with_a_fill_of_more_dimensions_follows_numpy():
    # NumPy's copyto drops leading size-1 axes of the fill and refuses a fill that does
    # not broadcast into the shape.
    x = np.full((1, 2, 3), 0.5)
    f = lambda x: np.full((2, 3), x, like=x) ** 2
    assert f(x).shape == np.full((2, 3), x).shape == (2, 3)
    assert ad.jvp(f, (x,), (x,))[1].shape == (2, 3)
    ad.check_grads(f, (x,), order=2)
    with pytest.raises(ValueError, match="could not broadcast"):
        ad.jvp(lambda y: np.full((1, 3), y, like=y), (np.ones((2, 1)),), (np.ones((2, 1)),))


def test_assignment_of_a_value_with_extra_leading_axes_under_batched_reverse_mode():
    # NumPy drops the value's leading size-1 axes in a[i] = v (np.fill_diagonal here);
    # the batched reverse sweep summed its cotangent back to the wrong rank.
    def f(x):
        b = x @ x
        np.fill_diagonal(b, np.sum(x, axis=0))
        return np.sum(np.sin(b))
    def g(s, m):                        # two inputs: a batch of two cotangents
        return f(np.reshape(m, (1, 1, 1)) * s)
    args = (0.7, np.full((1, 1), 0.3))
    H = ad.jacrev(ad.grad(g, (0, 1)), (0, 1))(*args)
    F = ad.jacfwd(ad.grad(g, (0, 1)), (0, 1))(*args)
    for i in range(2):
        for j in range(2):
            assert np.allclose(H[i][j], F[i][j])
    ad.check_grads(g, args, order=2)


def test_at_with_an_empty_or_0d_index():
    # x.at[([],)] touches nothing (NumPy reads [] as integer indices); x.at[()] of a 0-d x
    # is the whole value.
    h = lambda x, y: np.sum(np.sin(x).at[([],)].add(y) * 2)
    x = np.array([0.3, 0.4])
    gx, gy = ad.grad(h, (0, 1))(x, 0.5)
    assert np.allclose(gx, 2 * np.cos(x)) and gy == 0.0
    assert np.sin(ad.Variable(x))[[]].shape == (0,)
    g = lambda x, y: np.sin(x).at[()].set(y) * 2
    gx, gy = ad.grad(g, (0, 1))(np.array(0.3), 0.5)
    assert gx == 0.0 and gy == 2.0
    k = lambda x: np.sin(x).at[([],)].add(x[0]) ** 2
    assert np.allclose(ad.jacfwd(k)(x), ad.jacrev(k)(x))
    assert np.allclose(ad.jacfwd(k)(x), np.diag(2 * np.sin(x) * np.cos(x)))
