"""The case table (tests/cases.py) on device arrays: for every primitive with a device
implementation, the value and the Jacobians of both modes equal NumPy's, and derivatives
come back as device arrays. Plus what the table does not reach: 0-d and empty arrays,
odd sizes across several blocks, float32, second order, ``Variable.backward()``."""
import os

import numpy as np
import pytest

pytest.importorskip("numba")
import autodiff as ad  # noqa: E402
from autodiff import gpu  # noqa: E402
from autodiff.reverse import Variable  # noqa: E402

from cases import CASES  # noqa: E402

#: The primitives with a device implementation (kernels, or NumPy's implementation running
#: on the kernels through NumPy's dispatch): elementwise, reductions, shape, indexing,
#: matmul/linear, the softmax family and the convolutions nn uses.
DEVICE = set("""add subtract multiply divide power arctan2 hypot maximum minimum negative
positive absolute exp log log1p expm1 sqrt square reciprocal sin cos tan arcsin arccos arctan
sinh cosh tanh where erf sum prod max min reshape transpose broadcast_to getitem
index_add concatenate astype matmul linear softmax_cross_entropy logsumexp log_softmax conv2d
conv2d_transpose_x conv2d_grad_w""".split())

#: Cases whose function mixes in host constants or NumPy functions the device refuses
#: (an explicit TypeError, tested below), not device gaps of the primitive itself.
HOST_ONLY = {
    "prod-with-zero": "multiplies by a host np.array constant",
    "nanstd-one-value": "np.where with a host list mask and np.nan",
    "std-ddof": "np.std", "var": "np.var", "std-one-element": "np.std",
    "hstack-vstack": "np.vstack/np.hstack", "outer": "np.outer",
    "norm-ord1-3": "np.linalg.norm(ord=1, 3)",
}

#: The convolution cases that run (each takes seconds on the simulator): stride, padding,
#: and the two transposed primitives reached through both modes' rules.
CONV = {"conv2d-valid", "conv2d-stride2-pad1"}


def _base_table(c):
    """A case of tests/cases.py itself (the other tables hold composites of NumPy and SciPy
    functions beyond the device's set), or one of the chosen convolutions."""
    code = getattr(c.fn, "__code__", None)       # a NumPy ufunc itself: of the base table
    return code is None or code.co_filename.endswith(os.sep + "cases.py") or c.id in CONV


SELECTED = [c for c in CASES if c.prim in DEVICE and c.id not in HOST_ONLY
            and not any(d == "complex" for _, d in c.args) and _base_table(c)]


def _dev(a):
    return a if type(a) is float else gpu.to_device(a)


def _host(a):
    return a.to_host() if type(a) is gpu.DeviceArray else a


def _directions(args, seed):
    rng = np.random.default_rng(seed)
    return tuple(float(rng.standard_normal()) if type(a) is float else
                 rng.standard_normal(np.shape(a)) for a in args)


@pytest.mark.parametrize("case", SELECTED, ids=[c.id for c in SELECTED])
def test_case_value_jvp_and_vjp_equal_numpy(case):
    """Both modes' rules, run on device arrays, against the same rules on NumPy's: one
    forward sweep (``jvp``) and one reverse sweep (``vjp``) along random directions."""
    args = case.make_args()
    dargs = tuple(_dev(a) for a in args)
    want = case.fn(*args)
    np.testing.assert_allclose(_host(case.fn(*dargs)), want, rtol=1e-12, atol=1e-13)
    tans = _directions(args, 1)
    _, t_want = ad.jvp(case.fn, args, tans)
    _, t_got = ad.jvp(case.fn, dargs, tuple(_dev(t) for t in tans))
    np.testing.assert_allclose(_host(t_got), t_want, rtol=1e-10, atol=1e-12)
    _, pull = ad.vjp(case.fn, *args)
    _, dpull = ad.vjp(case.fn, *dargs)
    ct = np.random.default_rng(2).standard_normal(np.shape(want))
    for g_want, g_got, a in zip(pull(ct), dpull(_dev(ct)), args):
        if type(a) is not float:
            assert type(g_got) is gpu.DeviceArray, type(g_got)
        np.testing.assert_allclose(_host(g_got), g_want, rtol=1e-10, atol=1e-12)


#: The batched sweeps (all basis directions at once) on a few cases that carry the batch
#: axis through broadcasting, reductions along axes, indexing, matmul and the softmax.
BATCHED = ["multiply-(2, 1)-(1, 3)", "max-axes", "advanced-repeat", "stack-mat",
           "logsumexp-axis-keep", "concatenate"]


@pytest.mark.parametrize("cid", BATCHED)
def test_batched_jacobians_equal_numpy(cid):
    (case,) = [c for c in SELECTED if c.id == cid]
    args = case.make_args()
    dargs = tuple(_dev(a) for a in args)
    for i in range(len(args)):
        for jac in (ad.jacfwd, ad.jacrev):
            got = jac(case.fn, i)(*dargs)
            assert type(got) is gpu.DeviceArray
            np.testing.assert_allclose(got.to_host(), jac(case.fn, i)(*args), rtol=1e-10,
                                       atol=1e-12)


def test_the_table_covers_every_device_primitive():
    assert DEVICE - {"conv2d_transpose_x", "conv2d_grad_w"} <= {c.prim for c in SELECTED}


def test_grad_of_grad_and_hessian_on_the_device():
    x = np.array([0.3, -1.2, 0.7])
    f = lambda x: np.sum(np.sin(x) * x ** 2)                         # noqa: E731
    h = ad.hessian(f)(gpu.to_device(x))
    assert type(h) is gpu.DeviceArray
    np.testing.assert_allclose(h.to_host(), ad.hessian(f)(x), rtol=1e-12)
    g2 = ad.grad(lambda t: ad.grad(lambda s: np.sum(np.tanh(s * t)))(t)[0])
    np.testing.assert_allclose(g2(gpu.to_device(x)).to_host(), g2(x), rtol=1e-12)



def test_backward_and_odd_sizes_across_blocks():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((5, 13))                     # 65 elements: several blocks
    x = Variable(gpu.to_device(a))
    w = gpu.to_device(rng.standard_normal((13, 3)))
    y = np.sum(np.maximum(x @ w, 0.0) ** 2) + np.max(x)
    y.backward()
    assert type(x.grad) is gpu.DeviceArray
    xh = Variable(a)
    yh = np.sum(np.maximum(xh @ w.to_host(), 0.0) ** 2) + np.max(xh)
    yh.backward()
    np.testing.assert_allclose(float(y.value), float(yh.value), rtol=1e-12)
    np.testing.assert_allclose(x.grad.to_host(), xh.grad, rtol=1e-12)


def test_zero_d_empty_and_float32():
    z = gpu.to_device(np.float64(1.5).reshape(()))
    assert ad.grad(lambda x: np.sin(x) * x)(z).shape == ()
    e = gpu.to_device(np.zeros((0, 3)))
    assert np.sum(e, axis=0).to_host().tolist() == [0.0, 0.0, 0.0]
    assert ad.grad(lambda x: np.sum(x ** 2))(e).shape == (0, 3)
    with pytest.raises(ValueError, match="zero-size"):
        np.max(e)
    x32 = np.linspace(-1, 1, 11, dtype=np.float32)
    g = ad.grad(lambda x: np.sum(np.tanh(x) * 2.0))(gpu.to_device(x32))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g.to_host(), ad.grad(lambda x: np.sum(np.tanh(x) * 2.0))(x32),
                               rtol=1e-6)


def test_no_implicit_host_copies():
    d = gpu.to_device(np.arange(3.0))
    with pytest.raises(TypeError, match="to_host"):
        np.asarray(d)
    with pytest.raises(TypeError, match="host NumPy array"):
        d + np.ones(3)
    with pytest.raises(TypeError, match="no device implementation"):
        np.fft.fft(d)
    assert gpu.is_available()
    gpu.synchronize()


def test_memory_pool_reuses_freed_buffers():
    from autodiff.gpu import kernels
    kernels.pool_clear()
    a = gpu.to_device(np.ones(37))
    b = np.sin(a)
    del b                                   # its buffer goes to the free list ...
    assert kernels.pool_stats()[0] == 1
    c = np.cos(a)                           # ... and the next result of that size takes it
    assert kernels.pool_stats()[0] == 0
    np.testing.assert_allclose(c.to_host(), np.cos(np.ones(37)))
