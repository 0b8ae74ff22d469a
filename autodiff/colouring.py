"""Colourings of sparsity patterns: few directions recover a whole sparse derivative.

A Jacobian ``J`` (m × n) whose columns ``j, k`` never share a row can be pushed together in
one forward direction ``eⱼ + eₖ``: the product ``J·(eⱼ + eₖ)`` holds column ``j`` in the rows
of ``j`` and column ``k`` in those of ``k``. A **column colouring** groups the columns so that
no two of a colour share a row (a distance-2 colouring of the bipartite row–column graph);
one forward sweep with one direction per colour, ``B = J·S`` with ``S[j, c] = [colour(j) = c]``,
then gives ``J[i, j] = B[i, colour(j)]``. A **row colouring** does the same for ``Sᵀ·J`` in
reverse mode.

A symmetric Hessian needs less: a **star colouring** (Gebremedhin, Manne and Pothen, *What
colour is your Jacobian?*, SIAM Review 2005) is a distance-1 colouring in which every path on
four vertices uses at least three colours. Then for every off-diagonal ``H[i, j]`` one of the
two ends, say ``i``, has ``j`` as its only neighbour of colour ``colour(j)``, so
``H[i, j] = B[i, colour(j)]`` with ``B = H·S``; the diagonal is ``B[i, colour(i)]``.

The colourings are greedy (first fit): in the natural order, which on stencils laid out
point by point is already near optimal, then recoloured class by class (Culberson's
iterated greedy, which never needs more colours than it had; each class is independent, so
a pass is a few vectorised steps) while that helps.

>>> import scipy.sparse as sp
>>> P = sp.diags_array([1.0, 1.0, 1.0], offsets=[-1, 0, 1], shape=(6, 6))
>>> column_colouring(P)                  # tridiagonal: three colours
array([0, 1, 2, 0, 1, 2])
"""
import numpy as np
import scipy.sparse as sp

__all__ = ["as_pattern", "column_colouring", "row_colouring", "star_colouring", "seed_matrix",
           "decompress_columns", "decompress_rows", "decompress_star", "Layout", "StarLayout"]

# At most this many passes of iterated greedy after the first colouring.
_PASSES = 8


def as_pattern(sparsity, shape=None, what="sparsity"):
    """``sparsity`` (a scipy.sparse matrix or array, or a dense array) as a boolean
    ``csr_array`` with sorted indices and no duplicates; a ``ValueError`` unless ``shape``."""
    if sp.issparse(sparsity):
        P = sp.csr_array(sparsity, copy=True)
    else:
        a = np.asarray(sparsity)
        if a.ndim != 2:
            raise ValueError(f"{what} must be a 2-D pattern (a scipy.sparse matrix or a dense "
                             f"boolean array), not an array of shape {a.shape}")
        P = sp.csr_array(a != 0)
    if shape is not None and tuple(P.shape) != tuple(shape):
        raise ValueError(f"{what} has shape {tuple(P.shape)}, but the derivative has shape "
                         f"{tuple(shape)} (outputs × inputs, each flattened in C order)")
    P.sum_duplicates()
    P.data = np.ones(P.nnz, dtype=bool)          # stored zeros still mark a possible nonzero
    P.sort_indices()
    return P


def _conflicts(P):
    """The column intersection graph of pattern ``P``: ``j ~ k`` when they share a row."""
    Pi = sp.csr_array(P, dtype=np.int32)
    G = (Pi.T @ Pi).tocsr()
    G.setdiag(0)
    G.eliminate_zeros()
    G.sort_indices()
    return G


def _greedy(ptr, ind, order, n):
    """First-fit colouring of the graph (``ptr``, ``ind``) visiting ``order``."""
    colour = [-1] * n
    for v in order:
        taken = {colour[w] for w in ind[ptr[v]:ptr[v + 1]]}
        c = 0
        while c in taken:
            c += 1
        colour[v] = c
    return colour


def _recolour(G, colour, class_order):
    """One pass of iterated greedy: first fit again, visiting whole colour classes in
    ``class_order``. A class is independent, so all its vertices are coloured at once (one
    vectorised step per class) and the result is what sequential first fit would give; it
    never uses more colours than ``colour`` (Culberson)."""
    new = np.full(colour.size, -1, dtype=np.intp)
    by_class = np.argsort(colour, kind="stable")
    bounds = np.searchsorted(colour[by_class], np.arange(colour.max() + 2))
    Gc = G[by_class]                        # the rows grouped by class, once per pass
    ptr, ind = Gc.indptr, Gc.indices
    owner = np.repeat(np.arange(colour.size), np.diff(ptr))
    for c in class_order:
        a, b = bounds[c], bounds[c + 1]
        if a == b:
            continue
        lo, hi = ptr[a], ptr[b]
        taken = new[ind[lo:hi]]
        seen = taken >= 0
        used = np.zeros((b - a, int(taken.max(initial=-1)) + 2), dtype=bool)
        used[owner[lo:hi][seen] - a, taken[seen]] = True
        new[by_class[a:b]] = np.argmin(used, axis=1)   # the first colour no neighbour has
    return new


def _distance1(G, colour=None):
    """A greedy distance-1 colouring of the graph ``G`` (symmetric CSR, no diagonal):
    first fit in the natural order (or the given first colouring), then passes of
    iterated greedy while they help."""
    n = G.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.intp)
    if colour is None:
        colour = np.asarray(_greedy(G.indptr.tolist(), G.indices.tolist(), range(n), n),
                            dtype=np.intp)
    best = colour
    stale = 0
    for _ in range(_PASSES):
        # The classes in reverse order (Culberson's best single rule on stencils).
        colour = _recolour(G, colour, np.arange(int(colour.max()) + 1)[::-1])
        if colour.max() < best.max():
            best, stale = colour, 0
        else:
            stale += 1
            if stale == 2:
                break
    return best


def _first_fit_columns(P):
    """First fit of the columns in the natural order: SciPy's column grouping for finite
    differences computes exactly that, compiled (``scipy.optimize._numdiff``, private but
    used by ``least_squares`` and the stiff solvers); the same loop in Python otherwise."""
    try:
        from scipy.optimize._numdiff import group_columns
    except ImportError:                                     # pragma: no cover
        return None
    return np.asarray(group_columns(sp.csc_matrix(P), order=np.arange(P.shape[1])),
                      dtype=np.intp)


def column_colouring(sparsity):
    """Colours of the columns of a Jacobian pattern (m × n) such that no two columns of a
    colour have a nonzero in the same row: ``J·S`` then holds every entry of ``J``
    (forward mode). Returns an int array of length n, colours ``0 … k-1``."""
    P = as_pattern(sparsity)
    if P.shape[1] == 0:
        return np.zeros(0, dtype=np.intp)
    return _distance1(_conflicts(P), _first_fit_columns(P))


def row_colouring(sparsity):
    """Colours of the rows (m) of a Jacobian pattern such that no two rows of a colour share
    a column: ``Sᵀ·J`` then holds every entry (reverse mode)."""
    return column_colouring(as_pattern(sparsity).T)


def star_colouring(sparsity):
    """A star colouring of a symmetric pattern (n × n): adjacent vertices differ in colour
    and every path on four vertices has three colours, so ``H·S`` determines the symmetric
    ``H`` (see ``decompress_star``). The pattern is symmetrised first (``P | Pᵀ``).
    Greedy, Algorithm 4.1 of Gebremedhin, Manne and Pothen (2005), in the natural order
    and in the order of a distance-1 colouring's classes; the fewer colours win.

    >>> arrow = np.eye(6, dtype=bool); arrow[0] = arrow[:, 0] = True
    >>> star_colouring(arrow)                # the hub, then all the rest: two colours
    array([0, 1, 1, 1, 1, 1])
    >>> int(column_colouring(arrow).max()) + 1   # columns share the dense row: six
    6
    """
    P = as_pattern(sparsity)
    if P.shape[0] != P.shape[1]:
        raise ValueError(f"a Hessian pattern must be square, not {P.shape}")
    G = sp.csr_array(P + P.T)
    G.setdiag(False)
    G.eliminate_zeros()
    G.sort_indices()
    n = G.shape[0]
    ptr, ind = G.indptr.tolist(), G.indices.tolist()
    nbrs = [ind[ptr[v]:ptr[v + 1]] for v in range(n)]
    best = _star(nbrs, range(n))
    # Visiting the vertices class by class of a distance-1 colouring often saves colours
    # (five on the five-point stencil, eleven on the nine-point one); keep the better.
    d1 = _distance1(G)
    other = _star(nbrs, np.lexsort((np.arange(n), d1)).tolist())
    return other if other.max(initial=-1) < best.max(initial=-1) else best


def _star(nbrs, order):
    """Greedy star colouring visiting ``order`` (Algorithm 4.1 of GMP 2005)."""
    colour = [-1] * len(nbrs)
    for v in order:
        forbid = set()
        for w in nbrs[v]:
            cw = colour[w]
            if cw >= 0:
                forbid.add(cw)
            for x in nbrs[w]:
                cx = colour[x]
                if cx < 0 or x == v:
                    continue
                if cw < 0:
                    # v–w–x with w still uncoloured: v must differ from x (distance 2).
                    forbid.add(cx)
                else:
                    # v–w–x–y with colour(y) = colour(w): giving v the colour of x would
                    # make that path two-coloured.
                    for y in nbrs[x]:
                        if y != w and colour[y] == cw:
                            forbid.add(cx)
                            break
        c = 0
        while c in forbid:
            c += 1
        colour[v] = c
    return np.asarray(colour, dtype=np.intp)


def seed_matrix(colours, dtype=np.float64):
    """The ``(k, n)`` seed directions of a colouring: row ``c`` is the indicator of colour
    ``c``, one direction per colour (the transpose of ``S``)."""
    colours = np.asarray(colours)
    k = int(colours.max()) + 1 if colours.size else 0
    S = np.zeros((k, colours.size), dtype=dtype)
    S[colours, np.arange(colours.size)] = 1
    return S


class Layout:
    """Where each stored entry of a pattern sits in ``format``'s arrays, precomputed once:
    the entries' rows and columns in that format's order, and a function building the
    ``scipy.sparse`` array from values in that order (no sorting or checks per call)."""
    __slots__ = ("shape", "format", "rows", "cols", "_index", "_ptr", "_template")

    def __init__(self, pattern, format="csr"):
        P = as_pattern(pattern)
        self.shape, self.format = P.shape, format
        if format == "csc":
            C = sp.csc_array(P)
            C.sort_indices()
            self._index, self._ptr = C.indices, C.indptr
            self.cols = np.repeat(np.arange(P.shape[1]), np.diff(C.indptr))
            self.rows = C.indices.astype(np.intp)
        else:
            self._index, self._ptr = P.indices, P.indptr
            self.rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
            self.cols = P.indices.astype(np.intp)
        # The smallest index type SciPy would choose: half the bytes to copy per result.
        if max(P.shape + (P.nnz,)) < np.iinfo(np.int32).max:
            self._index, self._ptr = (self._index.astype(np.int32, copy=False),
                                      self._ptr.astype(np.int32, copy=False))
        self._template = None

    def checked(self, vals):
        """The array through SciPy's constructor (which checks the index arrays)."""
        if self.format == "coo":
            return sp.coo_array((vals, (self.rows.copy(), self.cols.copy())),
                                shape=self.shape)
        cls = sp.csc_array if self.format == "csc" else sp.csr_array
        return cls((vals, self._index.copy(), self._ptr.copy()), shape=self.shape)

    def build(self, vals):
        """The ``scipy.sparse`` array with stored values ``vals`` (in this layout's order,
        taken over without a copy). Each result owns fresh copies of the index arrays, so
        one result's in-place edits (``eliminate_zeros``, ``indices[...] = ``) never reach
        another or this layout. SciPy's constructor checks the index arrays on every call,
        which costs more than the rest at small sizes; the indices were checked once, so
        the result is assembled from a checked template's state instead (verified on
        first use to equal what the constructor gives, else the constructor it is)."""
        t = self._template
        if t is None:
            t = self._template = self._make_template(vals)
        if t is False:
            return self.checked(vals)
        return _assemble(t, vals)

    def _make_template(self, vals):
        """``(class, state without the arrays, [(name, index array)])`` of a checked
        result, or ``False`` where assembling it from that state is not verifiably the
        same (another SciPy's internals)."""
        try:
            ref = self.checked(np.array(vals, copy=True))
            if self.format != "coo":
                ref.has_canonical_format      # computed once, kept in the state
            state = dict(ref.__dict__)
            if "data" not in state or state["data"].shape != (len(self.rows),):
                return False
            del state["data"]
            arrays = [(k, v) for k, v in state.items()
                      if type(v) is np.ndarray
                      or (type(v) is tuple and v and all(type(c) is np.ndarray for c in v))]
            for k, _ in arrays:
                del state[k]
            t = (type(ref), state, arrays)
            probe = np.arange(1, len(self.rows) + 1, dtype=np.float64)
            got, want = _assemble(t, probe), self.checked(probe.copy())
            ok = (type(got) is type(want) and got.shape == want.shape
                  and got.format == want.format and got.nnz == want.nnz
                  and (got != want).nnz == 0 and got.data is probe
                  and all(got.__dict__[k] is not v for k, v in arrays))
            return t if ok else False
        except Exception:  # noqa: BLE001 -- any surprise: SciPy's own constructor
            return False


def _assemble(template, vals):
    """A new array of the template's class and state, with fresh copies of its index
    arrays and ``vals`` as its stored values."""
    cls, state, arrays = template
    A = object.__new__(cls)
    d = A.__dict__
    d.update(state)
    for name, a in arrays:
        d[name] = tuple(c.copy() for c in a) if type(a) is tuple else a.copy()
    d["data"] = vals
    return A


def decompress_columns(B, sparsity, colours, format="csr"):
    """``J`` from ``B = J·S`` (m × k) of a column colouring: ``J[i, j] = B[i, colour(j)]``
    on the pattern's entries. ``sparsity`` may be a precomputed ``Layout``."""
    L = sparsity if type(sparsity) is Layout else Layout(sparsity, format)
    return L.build(B[L.rows, np.asarray(colours)[L.cols]])


def decompress_rows(C, sparsity, colours, format="csr"):
    """``J`` from ``C = Sᵀ·J`` (k × n) of a row colouring: ``J[i, j] = C[colour(i), j]``."""
    L = sparsity if type(sparsity) is Layout else Layout(sparsity, format)
    return L.build(C[np.asarray(colours)[L.rows], L.cols])


def decompress_star(B, sparsity, colours, format="csr"):
    """The symmetric ``H`` from ``B = H·S`` (n × k) of a star colouring.

    For an entry ``(i, j)``, with ``a = min(i, j)`` and ``b = max(i, j)``: if ``b`` is the
    only neighbour of ``a`` coloured ``colour(b)``, then ``H[a, b] = B[a, colour(b)]``,
    otherwise ``B[b, colour(a)]`` (a star colouring makes one of the two hold). Both
    ``(i, j)`` and ``(j, i)`` read the same entry of ``B``, so the result is exactly
    symmetric. A colouring that is not a star colouring of the pattern is a ``ValueError``.
    """
    plan = sparsity if type(sparsity) is StarLayout else StarLayout(sparsity, colours,
                                                                     format)
    return plan.layout.build(B[plan.src_row, plan.src_col])


class StarLayout:
    """``decompress_star``'s reads, precomputed for a pattern and a star colouring: each
    stored entry's (row, colour) in ``B``."""
    __slots__ = ("layout", "src_row", "src_col")

    def __init__(self, sparsity, colours, format="csr"):
        P = as_pattern(sparsity)
        P = as_pattern(P + P.T)
        colours = np.asarray(colours)
        self.layout = L = Layout(P, format)
        n = P.shape[0]
        k = int(colours.max()) + 1 if colours.size else 0
        r, c = L.rows, L.cols
        off = r != c
        # How many neighbours of each vertex carry each colour (the diagonal excluded).
        count = np.bincount(r[off] * k + colours[c[off]], minlength=n * k).reshape(n, k)
        a, b = np.minimum(r, c), np.maximum(r, c)
        direct = count[a, colours[b]] == 1
        diag = ~off
        bad = off & ~direct & (count[b, colours[a]] != 1)
        if bad.any() or (count[r[diag], colours[r[diag]]] != 0).any():
            raise ValueError("decompress_star: the colouring is not a star colouring of the "
                             "pattern, so some Hessian entries cannot be recovered; colour it "
                             "with star_colouring")
        self.src_row = np.where(direct | diag, a, b)
        self.src_col = np.where(direct | diag, colours[b], colours[a])
