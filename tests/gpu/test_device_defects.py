"""Device-array defects found by probing, each once silently wrong: custom rules and
checkpoint saw a device leaf as a constant (zero gradients), np.linalg.norm ignored ord,
the index cache took True for 1, writes through copies NumPy would make views were lost,
and cbrt/arctanh/signbit did not build (their formula spells a y); dropout in training
mode, fit() of a model already on the device and padded or adaptive pools failed with a
host/device mix."""
import numpy as np
import pytest

pytest.importorskip("numba")
import autodiff as ad  # noqa: E402
from autodiff import gpu, nn  # noqa: E402
from autodiff.nn import functional as F  # noqa: E402

X = np.array([0.3, -1.2, 2.0])
A = np.arange(6.0).reshape(2, 3)


def _sin_vjp():
    f = ad.custom_vjp(lambda v: np.sin(ad.stop_gradient(v)))
    f.defvjp(lambda v: (np.sin(v), v), lambda v, g: (g * np.cos(v),))
    return f


def _sin_jvp():
    f = ad.custom_jvp(lambda v: np.sin(ad.stop_gradient(v)))
    f.defjvp(lambda p, t: (np.sin(p[0]), np.cos(p[0]) * t[0]))
    return f


@pytest.mark.parametrize("make", [lambda: ad.checkpoint(np.sin), _sin_vjp, _sin_jvp],
                         ids=["checkpoint", "custom_vjp", "custom_jvp"])
def test_custom_rules_differentiate_device_leaves(make):
    f = make()
    g = ad.grad(lambda v: np.sum(f(v)))(gpu.to_device(X))
    assert type(g) is gpu.DeviceArray
    np.testing.assert_allclose(g.to_host(), np.cos(X), rtol=1e-14)


@pytest.mark.parametrize("ord", [None, 1, 2, 3, 0.5, 0, np.inf, -np.inf])
def test_vector_norms_take_ord(ord):
    d = gpu.to_device(X)
    np.testing.assert_allclose(float(np.linalg.norm(d, ord=ord)), np.linalg.norm(X, ord=ord),
                               rtol=1e-14)
    if ord not in (0, np.inf, -np.inf):
        g = ad.grad(lambda v: np.linalg.norm(v, ord=ord))
        np.testing.assert_allclose(g(d).to_host(), g(X), rtol=1e-13)
    np.testing.assert_allclose(np.linalg.norm(gpu.to_device(A), ord=ord, axis=1).to_host(),
                               np.linalg.norm(A, ord=ord, axis=1), rtol=1e-14)


def test_matrix_norms_fro_or_refused():
    dA = gpu.to_device(A)
    assert float(np.linalg.norm(dA, "fro")) == pytest.approx(np.linalg.norm(A, "fro"))
    with pytest.raises(TypeError, match="no device implementation"):
        np.linalg.norm(dA, ord=1)


def test_boolean_scalar_index_is_not_an_integer():
    dA = gpu.to_device(A)
    dA[1], dA[0]                                    # fill the index cache with 1 and 0
    assert dA[True].shape == A[True].shape == (1, 2, 3)
    assert dA[False].shape == A[False].shape == (0, 2, 3)
    np.testing.assert_array_equal(dA[1].to_host(), A[1])


@pytest.mark.parametrize("name", ["cbrt", "arctanh", "signbit"])
def test_unary_functions_whose_formula_spells_a_y(name):
    fn = getattr(np, name)
    np.testing.assert_allclose(fn(gpu.to_device(X * 0.1)).to_host(), fn(X * 0.1), rtol=1e-15)
    g = ad.grad(lambda v: np.sum(np.copysign(v, -1.0)))(gpu.to_device(X))
    np.testing.assert_array_equal(g.to_host(), -np.sign(X))


@pytest.mark.parametrize("write", [
    lambda z: z[0].__setitem__(1, 5.0), lambda z: z.T.__setitem__((1, 0), 7.0),
    lambda z: z[:, 1].fill(2.0), lambda z: np.add.at(z[0], [0, 0], 1.0)],
    ids=["z[0][1] = v", "z.T[i, j] = v", "z[:, 1].fill(v)", "np.add.at(z[0], ...)"])
def test_a_write_through_a_copied_view_is_refused(write):
    z = gpu.to_device(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="would be lost"):
        write(z)
    assert not np.any(z.to_host())


def test_writes_that_reach_the_array_still_work():
    z = gpu.to_device(np.zeros((2, 3)))
    h = np.zeros((2, 3))
    for a in (z, h):
        a[0, 1] = 5.0
        a.reshape(3, 2)[0, 0] = 2.0                 # reshape shares the buffer: a view
        a[0] += 1.0                                 # stored back by a[0] = ...
        a[:, 1] *= 3.0
    np.testing.assert_array_equal(z.to_host(), h)
    w = z[0].copy()
    w[1] = 9.0
    np.testing.assert_array_equal(w.to_host(), [3.0, 9.0, 1.0])
    with pytest.raises(TypeError, match="would be lost"):
        row = z[0]
        row += 1.0


@pytest.mark.parametrize("drop", [lambda v: F.dropout(v, 0.5), lambda v: F.dropout2d(v, 0.4),
                                  lambda v: F.alpha_dropout(v, 0.3, True),
                                  lambda v: nn.Dropout(0.3)(v)],
                         ids=["dropout", "dropout2d", "alpha_dropout", "Dropout"])
def test_dropout_in_training_on_the_device(drop):
    """The mask is drawn on the host (nn.init's generator) and moved to the input's
    device: the host's numbers, value and gradient (it was a host/device mix error)."""
    x = np.random.default_rng(0).standard_normal((4, 3, 2, 2))
    nn.init.manual_seed(3)
    got = drop(gpu.to_device(x))
    nn.init.manual_seed(3)
    np.testing.assert_array_equal(got.to_host(), drop(x))
    nn.init.manual_seed(3)
    g = ad.grad(lambda v: np.sum(np.sin(drop(v))))(gpu.to_device(x))
    nn.init.manual_seed(3)
    np.testing.assert_array_equal(g.to_host(), ad.grad(lambda v: np.sum(np.sin(drop(v))))(x))


@pytest.mark.parametrize("data_on_device", [False, True])
def test_fit_a_model_already_on_the_device(data_on_device):
    """fit() without device= follows the model's device (it multiplied device weights by
    host batches); device data are used as they are."""
    X = np.random.default_rng(0).standard_normal((8, 3))
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    losses = []
    for on_gpu in (False, True):
        nn.init.manual_seed(0)
        m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
        data = (X, y)
        if on_gpu:
            m.to("gpu")
            if data_on_device:
                data = (gpu.to_device(X), gpu.to_device(y))
        h = nn.fit(m, *data, epochs=2, batch_size=4, verbose=0, loss="cross_entropy",
                   optimizer="sgd", lr=0.1, shuffle=False)
        losses.append(h.history["loss"])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-12)


def _filled(a):
    z = np.zeros_like(a)
    z[1] = a[0]
    z[0, 1:] += a[1, :2] ** 2
    z[z > 3] = 0.5 * a[z > 3]
    return np.sum(z * a)


def _built(a):
    out = np.zeros(3, like=a)
    out[0] = a[0, 0]
    out[1:] = np.sin(a[1, 1:])
    return out


@pytest.mark.parametrize("transform, f", [(ad.grad, _filled), (ad.jacfwd, _filled),
                                          (ad.hessian, _filled), (ad.jacrev, _built),
                                          (ad.jacfwd, _built)])
def test_assignment_inside_transforms_on_the_device(transform, f):
    """``out = np.zeros_like(x); out[i] = ...`` differentiated on device arrays (the
    setitem primitive copied with np.array, a host-only call): the host's derivatives."""
    A = np.arange(6.0).reshape(2, 3)
    got = transform(f)(gpu.to_device(A))
    assert type(got) is gpu.DeviceArray
    np.testing.assert_allclose(got.to_host(), transform(f)(A), rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("labels_on_device", [False, True])
def test_embedding_and_nll_loss_with_device_indices(labels_on_device):
    """Indices and labels may be device arrays (read on the host: integers carry no
    derivative); the class mask is moved to the scores' device."""
    nn.init.manual_seed(0)
    emb = nn.Embedding(5, 3)
    W = emb.weight.value.copy()
    emb.to("gpu")
    idx = np.array([0, 2, 2])
    put = gpu.to_device if labels_on_device else (lambda a: a)
    np.testing.assert_array_equal(emb(put(idx)).value.to_host(), W[idx])
    A = np.arange(6.0).reshape(2, 3)
    t = np.array([0, 2])
    for kw in ({}, {"weight": np.array([1.0, 2.0, 3.0])}):
        loss = lambda a, t: F.nll_loss(a, t, **kw)                         # noqa: E731
        assert float(loss(gpu.to_device(A), put(t))) == pytest.approx(float(loss(A, t)))
        g = ad.grad(loss)(gpu.to_device(A), put(t))
        np.testing.assert_allclose(g.to_host(), ad.grad(loss)(A, t), rtol=1e-15)


@pytest.mark.parametrize("pool", [
    lambda v: F.avg_pool2d(v, 3, stride=2, padding=1),
    lambda v: F.avg_pool2d(v, 3, stride=2, padding=1, count_include_pad=False),
    lambda v: F.avg_pool2d(v, 2, ceil_mode=True),
    lambda v: F.max_pool2d(v, 3, stride=2, padding=1),
    lambda v: F.avg_pool3d(v[None], 2, padding=1, count_include_pad=False),
    lambda v: F.adaptive_avg_pool2d(v, (2, 3)), lambda v: F.adaptive_avg_pool1d(v[0], 3)],
    ids=["avg padded", "avg exclude pad", "avg ceil", "max padded", "avg3d exclude pad",
         "adaptive avg 2d", "adaptive avg 1d"])
def test_padded_and_adaptive_pools_on_the_device(pool):
    """The padding, the per-window divisors and the adaptive bins' averaging matrices are
    made in the input's array type (they were host arrays meeting device ones; the bins
    used np.tensordot, which has no device kernel: a matmul now)."""
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    d = gpu.to_device(x)
    # (the device's matmul sums in another order: rounding, relative to the values' scale)
    np.testing.assert_allclose(pool(d).to_host(), pool(x), rtol=1e-13, atol=1e-15)
    loss = lambda v: np.sum(np.sin(pool(v)))                                  # noqa: E731
    np.testing.assert_allclose(ad.grad(loss)(d).to_host(), ad.grad(loss)(x), rtol=1e-13,
                               atol=1e-15)
