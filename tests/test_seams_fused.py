"""The fused primitives and the newer entry points in the seam fuzzer (tests/seams_fused.py),
and regression tests for the defects the fuzzer found there.

Each fused block is forced into random programs (every structure of arguments, float32,
0-d and empty inputs, exact zeros, an exception injected into a sweep) and checked by
``seams.check`` against central differences of its NumPy reference. Budget:
``AUTODIFF_SEAMS_FUSED=N`` programs per block (default 24).
"""
import os
import threading
import zlib

import numpy as np
import pytest

import autodiff as ad
import seams
import seams_fused
from autodiff import nn

N = int(os.environ.get("AUTODIFF_SEAMS_FUSED", "24"))
NAMES = [b.name for b in seams_fused.FUSED]


def _programs_with(name, count, seed=0):
    """Random specs with the block ``name`` as one of their steps (where it applies)."""
    index = next(i for i, b in enumerate(seams.SEAM_BLOCKS) if b.name == name)
    rng = np.random.default_rng(zlib.crc32(name.encode()) + seed)
    for _ in range(count):
        spec = list(seams.random_spec(rng, max_steps=4))
        steps = list(spec[5])
        k = int(rng.integers(len(steps)))
        steps[k] = (0, index, steps[k][2])
        spec[5] = tuple(steps)
        yield tuple(spec)


@pytest.mark.parametrize("name", NAMES)
def test_fused_block_under_every_transform(name):
    reached = 0
    for spec in _programs_with(name, N):
        prog = seams.Program(spec)
        if not any(s.block.name == name for s in prog.steps):
            continue
        reached += 1
        try:
            seams.check(prog)
        except seams.SeamFailure as e:
            seams.check(seams.shrink(spec, e.kind, budget=100))    # raises the shrunk one
            raise
    assert reached >= N // 2, f"{name} applied to only {reached} of {N} programs"


def test_fused_blocks_are_seam_blocks():
    """Registered where the fuzzer draws (tests/run_seams.py's long run sees them too)."""
    assert set(NAMES) <= {b.name for b in seams.SEAM_BLOCKS}
    assert {"fused_lstm_cell", "fused_gru_cell", "fused_max_pool2d", "fused_pool_gather",
            "fused_pool_scatter", "fused_standardize", "fused_conv2d_groups",
            "fused_conv_transpose2d_groups", "fused_attention", "fused_sparse_matmul",
            "fused_custom_root", "fused_jit"} <= set(NAMES)


# ----- Defects found by the fuzzer -----
def _dense_and_sparse(dense, fmt):
    sps = pytest.importorskip("scipy.sparse")
    return sps.coo_array(dense).asformat(fmt)


@pytest.mark.parametrize("fmt", ["coo", "csr", "csc"])
def test_sparse_product_with_one_row_keeps_its_axis(fmt):
    """SciPy's ``coo_array`` of one row times a vector gives a 0-d result; the product's
    result (and so its cotangent's shape) is NumPy's (1,), in every mode."""
    D = np.array([[2.0, 0.0, -1.0]])
    A = _dense_and_sparse(D, fmt)
    x = np.array([0.5, 1.0, 2.0])
    f = lambda v: np.sin(A @ v)                               # noqa: E731
    out, jv = ad.jvp(f, (x,), (np.ones(3),))
    assert out.shape == (1,) and jv.shape == (1,)
    np.testing.assert_allclose(ad.jacrev(f)(x), np.cos(D @ x)[:, None] * D)
    np.testing.assert_allclose(ad.jacfwd(f)(x), np.cos(D @ x)[:, None] * D)
    g = lambda v: np.sum(np.sin(v @ A.T) * 3.0)               # noqa: E731  (x @ A)
    np.testing.assert_allclose(ad.grad(g)(x), 3.0 * np.cos(D @ x) @ D)
    np.testing.assert_allclose(ad.hessian(g)(x), -3.0 * D.T @ (np.sin(D @ x)[:, None] * D))


def test_sparse_product_of_an_empty_axis_under_a_batch():
    """A (m, 0) sparse matrix times an empty vector or matrix: a batch of directions rides
    along an empty core axis (NumPy's reshape(0, -1) is ambiguous)."""
    A = _dense_and_sparse(np.zeros((2, 0)), "csr")
    assert ad.jacfwd(lambda v: A @ v)(np.zeros(0)).shape == (2, 0)
    assert ad.jacrev(lambda v: A @ v + 1.0)(np.zeros(0)).shape == (2, 0)
    X = np.zeros((0, 3))
    J = ad.jacfwd(lambda v: A @ v)(X)
    assert J.shape == (2, 3, 0, 3)


def test_conv_rules_take_an_empty_batch_of_directions():
    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((9, 0)), rng.standard_normal(9)
    w = rng.standard_normal((2, 1, 2, 2))

    def f(v):                                   # a constant image: no directions reach it
        return np.reshape(nn.functional.conv2d(np.reshape(A @ v + b, (1, 1, 3, 3)), w), -1)
    assert ad.jacfwd(f)(np.zeros(0)).shape == (8, 0)

    def g(v):                                   # an empty output: no cotangent directions
        y = nn.functional.conv_transpose2d(np.reshape(v, (1, 1, 2, 2)), w[:1], stride=2)
        return np.reshape(y, -1)[:0]
    assert ad.jacrev(g)(np.ones(4)).shape == (0, 4)


# ----- Grad mode: the record path checks it only while a no_grad block is open -----
def test_grad_mode_swaps_the_record_maker_and_restores_it():
    from autodiff import reverse
    plain = reverse._node
    w = nn.Parameter(np.ones(2))
    assert plain is reverse._record_node
    with nn.no_grad():
        assert reverse._node is reverse._record_node_no_grad
        with nn.enable_grad():
            assert reverse._node is plain       # no thread has recording off
            assert (w * 2.0).requires_grad
        assert reverse._node is reverse._record_node_no_grad
        assert not (w * 2.0).requires_grad
    assert reverse._node is plain and (w * 2.0).requires_grad
    with pytest.raises(KeyError):
        with nn.inference_mode():
            raise KeyError("inside")
    assert reverse._node is plain

    @nn.no_grad()
    def step():
        return w * 3.0
    assert not step().requires_grad and reverse._node is plain
    prev = nn.set_grad_enabled(False)
    assert reverse._node is reverse._record_node_no_grad
    nn.set_grad_enabled(True)
    assert prev is not None and reverse._node is plain


def test_grad_mode_count_across_threads():
    """Threads entering and leaving no_grad together leave the count at zero and the plain
    record maker in place; while one is inside, another thread still records."""
    from autodiff import core, reverse
    w = nn.Parameter(np.ones(2))
    inside, release = threading.Event(), threading.Event()
    errors = []

    def hold():
        with nn.no_grad():
            inside.set()
            release.wait(5)

    def churn():
        try:
            for _ in range(300):
                with nn.no_grad():
                    assert not (w * 2.0).requires_grad
        except AssertionError as e:             # pragma: no cover - reported below
            errors.append(e)
    t = threading.Thread(target=hold)
    t.start()
    inside.wait(5)
    assert (w * 2.0).requires_grad              # this thread's mode is on
    workers = [threading.Thread(target=churn) for _ in range(4)]
    for x in workers:
        x.start()
    for x in workers:
        x.join()
    release.set()
    t.join()
    assert not errors
    assert core.grad_off[0] == 0 and reverse._node is reverse._record_node


def test_solve_ivp_with_an_empty_t_eval_under_forward_mode():
    from autodiff.scipy import integrate

    def f(k):
        return integrate.solve_ivp(lambda t, y, k: -k * y, (0.0, 1.0), np.array([1.0, 0.5]),
                                   t_eval=np.zeros(0), args=(k,)).y
    y, t = ad.jvp(f, (1.5,), (1.0,))
    assert np.shape(y) == np.shape(t) == (2, 0)
