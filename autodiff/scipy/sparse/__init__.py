"""``scipy.sparse`` with tracked stored values: ``csr_array`` and ``linalg.spsolve``.

A constant ``scipy.sparse`` matrix needs nothing from here: ``A @ x`` and ``x @ A`` are
differentiable in ``x`` as they stand. What SciPy cannot hold is a *tracked* array of stored
values: ``scipy.sparse.csr_array((data, indices, indptr))`` converts ``data`` with
``np.asarray``. ``autodiff.scipy.sparse.csr_array`` takes the same arguments (also COO's
``(data, (row, col))``, or a SciPy matrix) and keeps ``data`` tracked on a fixed pattern, so
``A @ x``, ``x @ A``, ``A.T``, ``A.toarray()`` and ``spsolve(A, b)`` are differentiable in the
stored values as well as in ``x`` or ``b``. The products are compositions of a gather, an
elementwise product and one constant sparse product (``ops/sparse.py``):
``(A x)ᵢ = Σₖ [rowₖ = i] dataₖ x[colₖ]``.

>>> import autodiff as ad
>>> indices, indptr = np.array([0, 1, 1]), np.array([0, 2, 3])
>>> f = lambda d: np.sum(csr_array((d, indices, indptr), shape=(2, 2)) @ np.array([1.0, 2.0]))
>>> ad.grad(f)(np.array([1.0, 1.0, 1.0]))           # ∂/∂dataₖ = x[colₖ]
array([1., 2., 2.])
"""
import numpy as np
import scipy.sparse as sps

from ...boxes import unbox
from ...core import box_types, ndim_of, shape_of
from ...ops.sparse import sparse_matmul_p

__all__ = ["csr_array", "Pattern", "linalg"]


class Pattern:
    """A fixed CSR pattern (sorted, no duplicates) and the constant matrices its products
    use: ``E`` (m × nnz) sums entries into their rows, ``Ecol`` (n × nnz) into columns."""
    __slots__ = ("shape", "indices", "indptr", "rows", "cols", "E", "Ecol", "perm_T",
                 "_transpose")

    def __init__(self, indices, indptr, shape):
        self.shape = (int(shape[0]), int(shape[1]))
        self.indices = np.asarray(indices, dtype=np.intp)
        self.indptr = np.asarray(indptr, dtype=np.intp)
        m, n = self.shape
        nnz = self.indices.size
        if self.indptr.shape != (m + 1,) or self.indptr[0] != 0 or self.indptr[-1] != nnz \
                or np.any(np.diff(self.indptr) < 0):
            raise ValueError(f"csr_array: indptr must have {m + 1} nondecreasing entries from "
                             f"0 to nnz = {nnz}")
        if nnz and (self.indices.min() < 0 or self.indices.max() >= n):
            raise ValueError(f"csr_array: column indices must lie in [0, {n})")
        self.rows = np.repeat(np.arange(m, dtype=np.intp), np.diff(self.indptr))
        self.cols = self.indices
        key = self.rows * n + self.cols
        if nnz and np.any(np.diff(key) <= 0):
            raise ValueError("csr_array: the column indices of each row must be sorted and "
                             "distinct (call A.sort_indices() and A.sum_duplicates() on a "
                             "SciPy matrix first, or pass the COO form (data, (row, col)), "
                             "which sums duplicates)")
        ones = np.ones(nnz)
        self.E = sps.csr_array((ones, np.arange(nnz), self.indptr), shape=(m, nnz))
        self.Ecol = sps.csr_array((ones, (self.cols, np.arange(nnz))), shape=(n, nnz))
        # Entry order of the transpose's CSR pattern: the entries sorted by (col, row).
        self.perm_T = np.lexsort((self.rows, self.cols))
        self._transpose = None

    @property
    def nnz(self):
        return self.indices.size

    def transpose(self):
        if self._transpose is None:
            counts = np.bincount(self.cols, minlength=self.shape[1])
            indptr = np.concatenate([[0], np.cumsum(counts)])
            self._transpose = Pattern(self.rows[self.perm_T], indptr, self.shape[::-1])
            self._transpose._transpose = self
        return self._transpose

    def matvec(self, data, x, transpose=False):
        """``A(data) @ x`` (``Aᵀ @ x`` with ``transpose``) for ``x`` of shape ``(n,)`` or
        ``(n, k)``; tracked ``data`` and ``x`` alike, and leading batch axes on ``data``."""
        gather, into = (self.rows, self.Ecol) if transpose else (self.cols, self.E)
        if ndim_of(x) == 1:
            return sparse_matmul_p(data * x[..., gather], matrix=into, core=1)
        return sparse_matmul_p(data[..., :, None] * x[..., gather, :], matrix=into, core=2)

    def scipy(self, data):
        return sps.csr_array((data, self.indices, self.indptr), shape=self.shape)


def _canonical(A):
    """A SciPy matrix as a canonical CSR array (sorted, duplicates summed), copied."""
    A = sps.csr_array(A, copy=True)
    A.sum_duplicates()
    A.sort_indices()
    return A


class csr_array:
    """A CSR matrix whose stored values may be tracked (SciPy's constructor forms).

    ``csr_array((data, indices, indptr), shape=(m, n))`` with sorted, distinct column
    indices per row; ``csr_array((data, (row, col)), shape=(m, n))`` (COO: duplicates are
    summed, differentiably); or ``csr_array(A)`` for a SciPy sparse matrix or a dense
    array (constant values). ``.data`` are the stored values (tracked or not), ``.indices``,
    ``.indptr``, ``.shape``, ``.nnz``; ``A @ x``, ``x @ A``, ``A.dot(x)``, ``A.T``,
    ``A.toarray()``, and ``autodiff.scipy.sparse.linalg.spsolve(A, b)``.
    """
    __array_ufunc__ = None          # ndarray @ A: NumPy defers to A.__rmatmul__

    def __init__(self, arg, shape=None, dtype=None, copy=False):
        if isinstance(arg, tuple) and len(arg) == 3:
            data, indices, indptr = arg
            if shape is None:
                indices = np.asarray(indices)
                shape = (len(indptr) - 1, int(indices.max()) + 1 if indices.size else 0)
            self.pattern = Pattern(indices, indptr, shape)
        elif isinstance(arg, tuple) and len(arg) == 2 and isinstance(arg[1], tuple):
            data, (row, col) = arg
            row, col = np.asarray(row, dtype=np.intp), np.asarray(col, dtype=np.intp)
            if shape is None:
                shape = (int(row.max()) + 1 if row.size else 0,
                         int(col.max()) + 1 if col.size else 0)
            # The canonical pattern, and the constant map summing COO entries into it.
            slot = _canonical(sps.csr_array((np.ones(row.size), (row, col)), shape=shape))
            self.pattern = Pattern(slot.indices, slot.indptr, shape)
            n = self.pattern.shape[1]
            pos = np.searchsorted(self.pattern.rows * n + self.pattern.cols, row * n + col)
            S = sps.csr_array((np.ones(row.size), (pos, np.arange(row.size))),
                              shape=(self.pattern.nnz, row.size))
            data = sparse_matmul_p(data, matrix=S, core=1) if type(data) in box_types \
                else S @ np.asarray(data)
        elif type(arg) is csr_array:
            self.pattern, data = arg.pattern, arg.data
        elif sps.issparse(arg) or isinstance(arg, np.ndarray):
            A = _canonical(arg)
            self.pattern = Pattern(A.indices, A.indptr, A.shape)
            data = A.data
        else:
            raise TypeError(f"csr_array: cannot build a sparse matrix from "
                            f"{type(arg).__name__}; pass (data, indices, indptr), "
                            "(data, (row, col)) or a scipy.sparse matrix")
        if type(data) not in box_types:
            data = np.array(data, dtype=dtype, copy=True) if copy or dtype else np.asarray(data)
        elif dtype is not None:
            data = data.astype(dtype)
        if shape_of(data) != (self.pattern.nnz,):
            raise ValueError(f"csr_array: data has shape {shape_of(data)}, but the pattern "
                             f"stores {self.pattern.nnz} entries")
        self.data = data

    # ----- SciPy's attributes -----
    shape = property(lambda self: self.pattern.shape)
    ndim = 2
    nnz = property(lambda self: self.pattern.nnz)
    indices = property(lambda self: self.pattern.indices)
    indptr = property(lambda self: self.pattern.indptr)
    dtype = property(lambda self: np.result_type(unbox(self.data)))
    format = "csr"

    def __repr__(self):
        tracked = " (tracked values)" if type(self.data) in box_types else ""
        return (f"<autodiff csr_array of dtype '{self.dtype}' with {self.nnz} stored elements "
                f"and shape {self.shape}{tracked}>")

    # ----- products -----
    def __matmul__(self, x):
        if sps.issparse(x) or type(x) is csr_array:
            self._refuse_sparse()
        x = x if type(x) in box_types else np.asarray(x)
        if ndim_of(x) not in (1, 2) or shape_of(x)[0] != self.shape[1]:
            raise ValueError(f"matmul: dimension mismatch, {self.shape} @ {shape_of(x)}")
        return self.pattern.matvec(self.data, x)

    def __rmatmul__(self, x):
        if sps.issparse(x):
            self._refuse_sparse()
        x = x if type(x) in box_types else np.asarray(x)
        if ndim_of(x) not in (1, 2) or shape_of(x)[-1] != self.shape[0]:
            raise ValueError(f"matmul: dimension mismatch, {shape_of(x)} @ {self.shape}")
        if ndim_of(x) == 1:
            return self.pattern.matvec(self.data, x, transpose=True)
        return self.pattern.matvec(self.data, x.T, transpose=True).T

    def _refuse_sparse(self):
        raise NotImplementedError("a product of two sparse matrices, one of them an autodiff "
                                  "csr_array, is not supported; multiply by a dense array "
                                  "(B.toarray())")

    dot = __matmul__

    @property
    def T(self):
        pT = self.pattern.transpose()
        out = csr_array.__new__(csr_array)
        out.pattern, out.data = pT, self.data[self.pattern.perm_T]
        return out

    def transpose(self):
        return self.T

    def toarray(self):
        """The dense matrix, differentiable in the stored values."""
        m, n = self.shape
        p = self.pattern
        S = sps.csr_array((np.ones(p.nnz), (p.rows * n + p.cols, np.arange(p.nnz))),
                          shape=(m * n, p.nnz))
        d = self.data
        flat = sparse_matmul_p(d, matrix=S, core=1) if type(d) in box_types else S @ d
        return np.reshape(flat, (m, n))

    def to_scipy(self):
        """The SciPy ``csr_array`` of the primal values (no derivative)."""
        return self.pattern.scipy(np.asarray(unbox(self.data)))


from . import linalg  # noqa: E402,F401
