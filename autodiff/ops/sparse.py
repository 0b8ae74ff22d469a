"""Constant ``scipy.sparse`` matrices meet tracked values: ``A @ x`` and ``x @ A``.

One primitive, ``sparse_matmul(x, matrix=M, core=c)``: the product of a constant sparse
matrix ``M`` with ``x`` along ``x``'s axis ``-c`` (``c = 1``: ``x`` is a vector or a stack
of them; ``c = 2``: the rows of a matrix ``x``). It is linear in ``x``, so its JVP is the
same product of the tangent and its VJP the product with ``Mᵀ`` (a plain transpose, also
for complex values: JAX's convention). ``transpose=Mᵀ`` may come with ``M``: then the
VJP uses it, and ``M`` is never transposed by a rule (a matrix made afresh at each replay
of an ``ad.jit`` program, a neighbour list's, is a value of the program that its rules
cannot transpose). Every other product reduces to it: ``A @ x`` is
``M = A`` along the vector or the matrix's rows, ``x @ A`` is ``M = Aᵀ`` along ``x``'s last
axis. Leading axes of ``x`` ride along, which is how a batch of tangents goes through.

SciPy converts the other operand of ``A @ x`` with ``np.asanyarray`` and, when that gives a
0-d object array, returns ``NotImplemented`` so that Python asks ``x.__rmatmul__(A)``: the
boxes answer that probe (see ``boxes.Box.__array__``), and ``np.matmul``/``np.dot`` route a
sparse operand here. SciPy is imported only once a sparse matrix has been seen.

>>> import autodiff as ad, scipy.sparse as sps
>>> A = sps.csr_array(np.array([[2.0, 0.0], [1.0, 3.0]]))
>>> ad.jacobian(lambda x: A @ x)(np.ones(2))
array([[2., 0.],
       [1., 3.]])
"""
import functools
import math
import sys

import numpy as np

from ..core import function_table, ndim_of, shape_of
from .define import check_no_out, defprim

__all__ = ["sparse_matmul_p", "is_sparse", "sparse_product"]


def is_sparse(a):
    """Whether ``a`` is a scipy.sparse matrix or array (without importing SciPy)."""
    sps = sys.modules.get("scipy.sparse")
    return sps is not None and sps.issparse(a)


def _apply(x, matrix, core, transpose=None):
    """``matrix`` applied along axis ``-core`` of the plain array ``x``; other axes ride
    along."""
    M = matrix
    s = np.shape(x)
    if len(s) == core == 1:
        return np.asarray(M @ x).reshape(M.shape[:1])   # SciPy's coo_array drops a 1-row axis
    if len(s) == core == 2 and type(x) is np.ndarray and M.format in ("csr", "csc"):
        return M @ x                                    # (no other axes to move)
    n = s[-core]
    rest = s[:len(s) - core] + s[len(s) - core + 1:]
    # The other axes' size given explicitly: ``reshape(0, -1)`` cannot infer it (a matrix
    # with no rows, as the transpose in a reverse rule of one with no columns).
    X = np.moveaxis(np.asarray(x), -core, 0).reshape(n, math.prod(rest))
    Y = np.asarray(M @ X)
    return np.moveaxis(Y.reshape((M.shape[0],) + rest), 0, -core)


def _sparse_matmul_jvp(t, ans, x, matrix, core, transpose=None):
    if transpose is None:
        return sparse_matmul_p(t, matrix=matrix, core=core)
    return sparse_matmul_p(t, matrix=matrix, core=core, transpose=transpose)


def _sparse_matmul_vjp(g, ans, x, matrix, core, transpose=None):
    if transpose is None:
        return sparse_matmul_p(g, matrix=matrix.T, core=core)
    return sparse_matmul_p(g, matrix=transpose, core=core, transpose=matrix)


sparse_matmul_p = defprim(
    "sparse_matmul", _apply, jvp=(_sparse_matmul_jvp,), vjp=(_sparse_matmul_vjp,),
    flops=lambda ans, x, matrix, core, transpose=None: 2 * matrix.nnz * max(np.size(x) // max(
        shape_of(x)[-core], 1), 1))


def _sparse_matmul_pattern(prim, ans, args, pats, kw):
    """Output element (…, i, …) depends on x's (…, j, …) where ``M[i, j]`` is stored."""
    from scipy import sparse
    (x,), (p,) = args, pats
    if p is None:
        return None
    M, core = kw["matrix"], kw["core"]
    s = shape_of(x)
    pre = int(np.prod(s[:len(s) - core], dtype=np.int64))
    post = int(np.prod(s[len(s) - core + 1:], dtype=np.int64))
    L = sparse.csr_array(M, dtype=bool)
    L = sparse.kron(sparse.kron(sparse.eye_array(pre, dtype=bool), L),
                    sparse.eye_array(post, dtype=bool), format="csr").astype(bool)
    return (L.astype(np.int8) @ p.astype(np.int8)).astype(bool)


sparse_matmul_p.sparsity = _sparse_matmul_pattern


def sparse_product(a, b):
    """``a @ b`` where one side is a constant scipy.sparse matrix and the other a (tracked)
    dense array: NumPy's shapes (a vector operand gives a vector)."""
    if is_sparse(a) and is_sparse(b):
        return a @ b
    if is_sparse(a):
        nb = ndim_of(b)
        if nb not in (1, 2):
            raise ValueError(f"matmul: a sparse matrix times an array of {nb} dimensions; "
                             "scipy.sparse multiplies vectors and matrices only")
        if shape_of(b)[0] != a.shape[-1]:
            raise ValueError(f"matmul: dimension mismatch, {a.shape} @ {shape_of(b)}")
        return sparse_matmul_p(b, matrix=a, core=nb)
    na = ndim_of(a)
    if na not in (1, 2):
        raise ValueError(f"matmul: an array of {na} dimensions times a sparse matrix; "
                         "scipy.sparse multiplies vectors and matrices only")
    if shape_of(a)[-1] != b.shape[0]:
        raise ValueError(f"matmul: dimension mismatch, {shape_of(a)} @ {b.shape}")
    return sparse_matmul_p(a, matrix=b.T, core=1)


def _route(handler, name):
    """``handler`` (NumPy's entry point for ``np.matmul`` or ``np.dot``) with a sparse
    operand sent to ``sparse_product`` first."""
    @functools.wraps(handler)         # still listed under its own module (docs/coverage.md)
    def entry(a, b, out=None, **kw):
        if is_sparse(a) or is_sparse(b):
            check_no_out(out, name)
            return sparse_product(a, b)
        return handler(a, b, out=out, **kw)
    return entry


function_table[np.matmul] = _route(function_table[np.matmul], "matmul")
function_table[np.dot] = _route(function_table[np.dot], "dot")
