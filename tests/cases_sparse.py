"""Case-table entries for scipy.sparse products and spsolve (constant patterns, random
values; the matrices are diagonally dominant so that solves are well conditioned)."""
import numpy as np
import scipy.sparse as sps

from autodiff.scipy.sparse import csr_array
from autodiff.scipy.sparse.linalg import spsolve

_A = sps.csr_array(sps.random_array((4, 3), density=0.5, random_state=3))
_S = sps.csr_array(sps.random_array((4, 4), density=0.4, random_state=4) + 4 * sps.eye_array(4))
_S.sort_indices()


def _stored(rng, shape):
    return rng.uniform(0.5, 1.5, shape) + np.where(_S.tocoo().row == _S.tocoo().col, 3.0, 0.0)


def make(Case):
    spm = sps.csr_matrix(_A)
    return [
        Case("sparse_matmul", "sparse_matmul-csr-vector", lambda x: _A @ x, (((3,), "real"),)),
        Case("sparse_matmul", "sparse_matmul-csc-matrix", lambda x: _A.tocsc() @ x,
             (((3, 2), "real"),)),
        Case("sparse_matmul", "sparse_matmul-spmatrix-dot", lambda x: spm.dot(np.sin(x)),
             (((3,), "real"),)),
        Case("sparse_matmul", "sparse_matmul-right", lambda x: x @ _A,
             (((2, 4), "real"),)),
        Case("sparse_matmul", "sparse_matmul-tracked-data",
             lambda d, x: csr_array((d, _S.indices, _S.indptr), shape=(4, 4)) @ x,
             (((_S.nnz,), "real"), ((4,), "real"))),
        Case("spsolve", "spsolve-vector", lambda d, b: spsolve(
            csr_array((d, _S.indices, _S.indptr), shape=(4, 4)), b),
            (((_S.nnz,), _stored), ((4,), "real"))),
        Case("spsolve", "spsolve-matrix", lambda d, b: spsolve(
            csr_array((d, _S.indices, _S.indptr), shape=(4, 4)), b),
            (((_S.nnz,), _stored), ((4, 2), "real"))),
        Case("spsolve", "spsolve-constant-A", lambda b: spsolve(_S, b), (((4,), "real"),)),
    ]
