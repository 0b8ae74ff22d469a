"""Two costs of the eager tape fixed with ad.jit's issue: the gather's transpose as one
``bincount`` (same sums as ``np.add.at``) and the cyclic gc paused while a transform runs."""
import gc

import numpy as np
import pytest

import autodiff as ad


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_gather_transpose_matches_add_at(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 3)).astype(dtype)
    i = np.array([0, 3, 3, -1, 6, 0, 0, 2])          # repeats and a negative index
    w = rng.standard_normal((8, 3)).astype(dtype)
    g = ad.grad(lambda x: np.sum(x[i] * w))(x)
    ref = np.zeros_like(x)
    np.add.at(ref, (i,), w)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, ref, rtol=1e-6 if dtype == np.float32 else 1e-15)
    # fancy index with extra axes and a scalar broadcast
    j = np.array([[1, 1], [4, 0]])
    g2 = ad.grad(lambda x: np.sum(x[j] ** 2))(x)
    ref2 = np.zeros_like(x)
    np.add.at(ref2, (j,), 2 * x[j])
    np.testing.assert_allclose(g2, ref2, rtol=1e-6 if dtype == np.float32 else 1e-15)


def test_row_gather_out_of_bounds_is_numpys_index_error():
    from autodiff.ops.shape import _scatter_add
    with pytest.raises(IndexError):
        _scatter_add(np.zeros((3, 2)), (np.array([0, 3]),), np.ones((2, 2)))


def test_gc_is_paused_inside_a_transform_and_restored_after():
    assert gc.isenabled()
    seen = []
    ad.grad(lambda x: seen.append(gc.isenabled()) or x * x)(1.0)
    assert seen == [False] and gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        ad.grad(lambda x: 1 / 0)(1.0)
    assert gc.isenabled()
    gc.disable()
    try:
        ad.grad(lambda x: x * x)(1.0)
        assert not gc.isenabled()       # a user's own setting is kept
    finally:
        gc.enable()
