"""Sparse Jacobians and Hessians by compressed evaluation: one direction per colour.

``sparse_jacobian(f)`` finds the pattern of ``∂f/∂x`` (``autodiff.sparsity``, or the
``sparsity=`` you give), colours it (``autodiff.colouring``) and then, at every call, pushes
one batched forward sweep whose tangents are the colours' indicator vectors (or pulls one
batched reverse sweep of row colours), and reads the entries back into a ``scipy.sparse``
array. The cost is ``k`` directions instead of ``n``: three for a tridiagonal Jacobian of
any size. ``sparse_hessian(f)`` does the same for ``∇²f`` with a star colouring and
Hessian-vector products (forward over reverse), batched over the colours.

Pattern and colouring are computed on the first call for an input shape and dtype and kept,
with the sweep recorded by ``ad.jit`` (one program over all colours, cut into blocks only
when its arrays would pass a few megabytes) and the decompression precomputed as one
gather (a compiled loop over ``int32`` indices once a large plan is hot). Later calls on plain arrays replay
the programs directly, gather the stored values and assemble the result around fresh copies
of the index arrays: each call returns a new matrix that shares nothing with another.
"""
import threading

import numpy as np

from .api import _flat_args, _pull, _push, _tangent_dtype, grad
from .boxes import meta, unbox
from .colouring import (Layout, StarLayout, as_pattern, column_colouring, row_colouring,
                        seed_matrix, star_colouring)
from .core import box_types, is_complex
from .program import GuardMiss

__all__ = ["sparse_jacobian", "sparse_hessian"]


class _Replay:
    """``directions(*args, **kwargs)`` (the compressed sweep: a plain array of the colours'
    directions) recorded once by ``ad.jit`` and replayed box-free on later calls, which is
    what makes the few directions cheap. Arguments that are not numbers or arrays (a module,
    a function, a string) are static. A function ``ad.jit`` cannot record (it raises while
    recording) runs eagerly instead, for this plan from then on."""
    __slots__ = ("directions", "jitted", "recordable")

    def __init__(self, directions, args, argnums):
        from .tracing import jit
        static = tuple(i for i, a in enumerate(args) if i != argnums and not _numeric(a))
        self.directions = directions
        self.jitted = jit(directions, static_argnums=static)
        self.recordable = True

    def __call__(self, *args, **kwargs):
        if self.recordable:
            try:
                return self.jitted(*args, **kwargs)
            except (TypeError, NotImplementedError, ValueError):
                self.recordable = False         # eagerly below: its own error, if any
        return self.directions(*args, **kwargs)

    def program(self, args):
        """The recorded program the last call ``self(*args)`` replayed (``args`` all plain
        arrays or numbers, so they are the program's inputs), or ``None``. Calling it
        directly skips ``ad.jit``'s keying, which costs more than the replay itself on
        small inputs; a failed guard (``GuardMiss``) sends the caller back through
        ``ad.jit``, which records again. This reads ``ad.jit``'s cache (signature keys
        ``(treedef, leaf signatures, statics)`` to recordings, the last used first); a
        cache of another form just turns the shortcut off."""
        if not self.recordable:
            return None
        try:
            from .tracing import _leaf_signature
            from .tree import flatten
            leaves, treedef = flatten((tuple(args), {}))
            sig = tuple(_leaf_signature(a) for a in leaves)
            found = [progs for key, progs in list(self.jitted._cache.items())
                     if key == (treedef, sig, ())]
            if len(found) != 1:
                return None
            prog = found[0][0]
            if len(prog.outputs) != 1 or not callable(prog) or prog.n_inputs != len(args):
                return None
        except Exception:  # noqa: BLE001 -- no shortcut; ad.jit's own path stays
            return None
        return prog


def _array_key(args):
    """The signature of ``args`` when all are plain arrays or numbers (what ``ad.jit``
    traces, never static), else ``None``: the key of the shortcut past ``ad.jit``."""
    key = []
    for a in args:
        t = type(a)
        if t is np.ndarray:
            key.append((a.shape, a.dtype))
        elif t is float or t is int or t is bool:
            key.append(t)
        elif isinstance(a, np.generic) and t in _SCALARS:
            key.append((t,))
        else:
            return None
    return tuple(key)


_SCALARS = frozenset((np.float64, np.float32, np.float16, np.int64, np.int32, np.bool_))


def _numeric(a):
    """Whether ``a`` is a number, an array or a pytree of them (what ``ad.jit`` traces)."""
    from .tree import flatten
    leaves = flatten(a)[0]
    return all(isinstance(v, (int, float, complex, np.ndarray, np.generic)) for v in leaves)

_FORMATS = ("csr", "csc", "coo")
# Entries from which the decompression's gather is a compiled loop, after that many calls.
_GATHER_MIN, _GATHER_AFTER = 1 << 16, 20
_GATHERED = (np.dtype(np.float64), np.dtype(np.float32))
# Numbers per array of one replayed block of colours (4 MB in float64; see _Plan.blocks).
_BLOCK = 1 << 19


def _check_format(format, transform):
    if format not in _FORMATS:
        raise ValueError(f'{transform}: format must be "csr", "csc" or "coo", not {format!r}')


def _single_argnum(argnums, transform):
    if isinstance(argnums, bool) or not isinstance(argnums, (int, np.integer)):
        raise TypeError(f"{transform} differentiates one array argument: argnums must be an "
                        f"int, not {argnums!r}. Concatenate several inputs into one vector "
                        "(np.concatenate) to get their joint sparse Jacobian.")
    return int(argnums)


def _leaf(f, args, argnums, transform):
    """The differentiated argument as a float array, and a call of ``f`` with it replaced."""
    leaves, rebuild, _ = _flat_args(f, args, argnums, transform)
    if len(leaves) != 1:
        raise TypeError(f"{transform} differentiates one array argument, but argument "
                        f"{argnums} is a pytree of {len(leaves)} leaves; pass one array "
                        "(np.concatenate the leaves).")
    x = _plain(leaves[0], transform)
    if is_complex(unbox(x)):
        raise TypeError(f"{transform}: complex inputs have no sparse complex Jacobian here; "
                        "split them into real and imaginary parts (np.real, np.imag).")
    return x, rebuild


def _plain(a, transform):
    """``a`` if it carries no derivative of an outer transform; a scipy.sparse result could
    not carry one, so a tracked value here is refused rather than silently dropped."""
    if type(a) in box_types:
        raise TypeError(
            f"{transform} inside another transform (or of a function closing over a value "
            "that transform tracks): its scipy.sparse result cannot carry that transform's "
            "derivative. Use ad.jacobian / ad.hessian there, or differentiate outside.")
    return a


def _key(x):
    v = unbox(x)
    if type(v) is np.ndarray:
        return (v.shape, v.dtype.str)
    return (np.shape(v), "float" if type(v) is float else np.result_type(v).str)


def _detect(f, args, argnums, hessian):
    """The pattern found by sparsity detection (``autodiff.sparsity``)."""
    # ``autodiff.sparsity`` is the function on the package; its module holds both.
    from .sparsity import hessian_sparsity, sparsity
    return (hessian_sparsity if hessian else sparsity)(f, argnums=argnums)(*args)


class _Plan:
    """What the first call for an input shape found: the pattern and its colouring."""
    __slots__ = ("pattern", "colours", "mode", "seeds", "count", "build", "take", "run",
                 "spans", "_scratch", "_take32", "_need", "_gather", "_calls")

    def __init__(self, pattern, colours, mode, seeds):
        self.pattern, self.colours, self.mode, self.seeds = pattern, colours, mode, seeds
        self.count = _count(colours)
        self.build = self.take = self.run = self.spans = None
        self._scratch = threading.local()
        self._take32 = self._gather = None
        self._need, self._calls = 0, 0

    def read_from(self, layout, colour_of, row, size):
        """Decompression as one gather: entry (row, col) of the result is element
        ``colour_of · size + row`` of the flat ``(k, size)`` array of directions (the
        formulas of ``colouring.decompress_*``, precomputed)."""
        self.build = layout.build
        self.take = np.asarray(colour_of, dtype=np.intp) * size + row
        self._need = int(self.take.max()) + 1 if self.take.size else 0
        if self.take.size >= _GATHER_MIN and self._need <= np.iinfo(np.int32).max:
            self._take32 = self.take.astype(np.int32)

    def _values(self, d):
        """The stored values, gathered from the flat directions ``d``: by a compiled loop
        over ``int32`` indices on large problems once the plan is hot (as ``ad.jit``'s
        tiers: a few calls never compile it), else ``np.take``."""
        g = self._gather
        if g is None and self._take32 is not None:
            self._calls += 1
            if self._calls >= _GATHER_AFTER:
                from .fusion import gather
                g = self._gather = gather() or False
        if g and d.size >= self._need and d.dtype in _GATHERED:
            d = np.ascontiguousarray(d)
            out = np.empty(self.take.size, d.dtype)
            g(d, self._take32, out)
            return out
        # mode="clip" skips the bounds check that raises (the indices are in range by
        # construction), a few per cent of the gather.
        return d.take(self.take, mode="clip")

    def decompress(self, outputs):
        """The ``scipy.sparse`` result from the directions, given as an iterable of blocks
        of colours (``(b, ...)`` arrays in colour order, ``self.spans`` of them); the
        gather makes a fresh array of values. Several blocks are copied one by one, while
        each is still in cache, into a scratch array of this thread that is kept between
        calls (a fresh one of megabytes costs its page faults on every call)."""
        if self.spans is None:
            (d,) = outputs
        else:
            scratch = self._scratch
            buf, scratch.buf = getattr(scratch, "buf", None), None   # in use: not shared
            for (lo, hi), out in zip(self.spans, outputs):
                if buf is None or buf.dtype != out.dtype or buf.shape[1:] != out.shape[1:]:
                    buf = np.empty((self.spans[-1][1],) + out.shape[1:], out.dtype)
                if out.shape != (hi - lo,) + buf.shape[1:]:
                    raise RuntimeError(f"compressed sweep: a block of colours {lo}..{hi} "
                                       f"has shape {out.shape}; this is a bug, please "
                                       "report it")
                buf[lo:hi] = out
            d = buf
        out = self.build(self._values(np.reshape(d, -1)))
        if self.spans is not None:
            self._scratch.buf = d
        return out

    def blocks(self):
        """The seeds in blocks of colours, one replayed program each, of about ``_BLOCK``
        numbers per array of the sweep. With the fused backend of ``ad.jit`` (elementwise
        chains in one loop, the seeds' folded constants read as bytes) one program over
        all colours beats one per colour on a 2-D stencil of 32,768 unknowns and 10
        colours (measured: fewer calls, one output, no copy of the blocks); very large
        sweeps are still cut so that one block's arrays stay a few megabytes."""
        k = self.seeds.shape[0]
        per = max(1, _BLOCK // max(1, *self.pattern.shape))
        q = -(-k // per) if k else 1            # blocks, then their (balanced) width
        b = -(-k // q) if k else 0
        blocks = [self.seeds[i:i + b] for i in range(0, k, b)] if k else [self.seeds]
        if len(blocks) > 1:
            self.spans = [(i, min(i + b, k)) for i in range(0, k, b)]
        return blocks


def _unattached(fn, f, given, transform):
    """``fn`` before its first call: the given pattern (if any), no colouring yet."""
    fn.sparsity = given
    fn.colours = fn.colors = fn.n_colours = fn.n_colors = fn.mode = None
    fn.__wrapped__ = f
    fn.__name__ = f"{transform}({getattr(f, '__name__', 'f')})"
    return fn


def _attach(fn, plan):
    fn.sparsity = plan.pattern
    fn.colours = fn.colors = plan.colours
    fn.n_colours = fn.n_colors = plan.count
    fn.mode = plan.mode


def _sparse_function(f, argnums, given, transform, make_plan, make_directions):
    """The function of ``sparse_jacobian`` / ``sparse_hessian``: per input shape and dtype
    a plan (``make_plan(call, args, x)``: pattern, colouring, decompression) and its
    replayed compressed sweep (``make_directions(plan, seeds, dtype)`` for each block of
    seeds), then per call the sweep and the decompression. Calls whose arguments are all
    plain arrays or numbers, without keywords, go straight to the recorded programs
    (``_Replay.program``) once they exist."""
    plans = {}
    fast = {}               # _array_key(args) -> (plan, its blocks' programs)
    attached = [None]

    def sparse_f(*args, **kwargs):
        key = None if kwargs else _array_key(args)
        hit = fast.get(key) if key is not None else None
        if hit is not None:
            plan, progs = hit
            try:
                # Lazily: each block's directions are copied out before the next runs.
                out = plan.decompress(prog(*args)[0] for prog in progs)
            except GuardMiss:
                pass                            # ad.jit below records the new branch
            else:
                if attached[0] is not plan:
                    _attach(sparse_f, plan)
                    attached[0] = plan
                return out
        x, _ = _leaf(f, args, argnums, transform)
        pkey = _key(x)
        plan = plans.get(pkey)
        if plan is None:
            call = (lambda *a: f(*a, **kwargs)) if kwargs else f
            plan = plans[pkey] = make_plan(call, args, x)
        _attach(sparse_f, plan)
        attached[0] = plan
        if plan.run is None:
            dtype = _tangent_dtype(x)
            plan.run = [_Replay(make_directions(plan, seeds, dtype), args, argnums)
                        for seeds in plan.blocks()]
        # A tracked sweep (f closes over a value an outer transform tracks, so it ran
        # eagerly) is refused: the scipy.sparse result could not carry its derivative.
        out = plan.decompress([_plain(run(*args, **kwargs), transform) for run in plan.run])
        if key is not None:
            progs = [run.program(args) for run in plan.run]
            if all(prog is not None for prog in progs):
                fast[key] = (plan, progs)
        return out

    sparse_f._plans = plans                 # for tests: what the calls found
    sparse_f._fast = fast
    return _unattached(sparse_f, f, given, transform)


def sparse_jacobian(f, argnums=0, sparsity=None, mode="auto", format="csr"):
    """The Jacobian of ``f`` as a ``scipy.sparse`` array, by compressed evaluation.

    For ``f: Rⁿ → Rᵐ`` the result is the ``m × n`` matrix ``J[i, j] = ∂fᵢ/∂xⱼ`` over the
    *flattened* input and output (C order): inputs and outputs of any shape are accepted
    and raveled, so ``J`` is what ``jacobian(f)(x).reshape(m, n)`` would be. The pattern
    comes from ``autodiff.sparsity`` on the first call for an input shape and dtype, or
    from ``sparsity=`` (a scipy.sparse matrix or array, or a dense boolean array of shape
    ``(m, n)``; a wrong shape is a ``ValueError``). A given pattern must contain every
    nonzero: the colouring relies on it, and a missing one corrupts other entries too
    (detected patterns hold for every ``x`` of the shape).
    The columns (``mode="forward"``) or rows (``"reverse"``) are coloured so that one
    batched sweep with one direction per colour gives every entry; ``"auto"`` takes the
    mode with fewer colours. ``format`` is ``"csr"``, ``"csc"`` or ``"coo"``.

    After a call the returned function has ``.sparsity`` (the boolean pattern used for the
    last input shape), ``.colours`` (the colour of each column, or of each row in reverse
    mode; alias ``.colors``), ``.n_colours`` (their number: the directions per call; alias
    ``.n_colors``) and ``.mode`` (``"forward"`` or ``"reverse"``).

    >>> import autodiff as ad
    >>> f = lambda x: x[1:] ** 2 - x[:-1]            # bidiagonal
    >>> jac = ad.sparse_jacobian(f)
    >>> jac(np.arange(4.0)).toarray()
    array([[-1.,  2.,  0.,  0.],
           [ 0., -1.,  4.,  0.],
           [ 0.,  0., -1.,  6.]])
    >>> jac.n_colours, jac.mode
    (2, 'forward')
    """
    argnums = _single_argnum(argnums, "sparse_jacobian")
    if mode not in ("forward", "reverse", "auto"):
        raise ValueError(f'sparse_jacobian mode must be "forward", "reverse" or "auto", '
                         f'not {mode!r}')
    _check_format(format, "sparse_jacobian")
    given = None if sparsity is None else as_pattern(sparsity)

    def make_plan(call, args, x):
        n = int(np.size(unbox(x)))
        pattern = given if given is not None else as_pattern(_detect(call, args, argnums,
                                                                     False))
        if pattern.shape[1] != n:
            raise ValueError(f"sparse_jacobian: sparsity has shape {pattern.shape}, but "
                             f"the input has {n} elements (the pattern is outputs × "
                             "inputs, both flattened)")
        plan = _plan_jacobian(pattern, mode)
        L = Layout(pattern, format)
        if plan.mode == "forward":      # J[i, j] = (J·S)[i, colour(j)]
            plan.read_from(L, plan.colours[L.cols], L.rows, pattern.shape[0])
        else:                           # J[i, j] = (Sᵀ·J)[colour(i), j]
            plan.read_from(L, plan.colours[L.rows], L.cols, pattern.shape[1])
        return plan

    def make_directions(plan, seeds, dtype):
        return _jacobian_directions(f, argnums, plan, seeds, dtype)

    return _sparse_function(f, argnums, given, "sparse_jacobian", make_plan, make_directions)


def _jacobian_directions(f, argnums, plan, seeds, dtype):
    """The compressed Jacobian of ``f`` as a function of its arguments: ``J·S`` (forward,
    one direction per column colour) or ``Sᵀ·J`` (reverse, per row colour), a plain array."""
    m, k = plan.pattern.shape[0], seeds.shape[0]
    S = seeds

    def directions(*args, **kwargs):
        call = (lambda *a: f(*a, **kwargs)) if kwargs else f
        leaves, rebuild, _ = _flat_args(f, args, argnums, "sparse_jacobian")
        x = leaves[0]
        if plan.mode == "forward":
            tangents = [S.astype(dtype, copy=False).reshape((k,) + np.shape(meta(x)))]
            values, tans, _, _ = _push(call, args, [x], rebuild, tangents, batched=1,
                                       transform="sparse_jacobian")
            out = _one_output(values, m)
            if tans[0] is not None:
                return tans[0]
            odt = np.result_type(meta(out), dtype) if type(meta(out)) is not float else dtype
            return np.zeros((k,) + np.shape(meta(out)), odt)
        _, _, values, sweep = _pull(call, args, [x], rebuild, transform="sparse_jacobian")
        out = _one_output(values, m)
        cts = [S.astype(_tangent_dtype(out), copy=False).reshape(
            (k,) + np.shape(meta(out)))]
        return sweep(cts, nb=1)[0]
    return directions


def _hessian_directions(g, argnums, plan, seeds, dtype):
    """``H·S`` of the function whose gradient is ``g``: one Hessian-vector product per
    colour, batched (forward over reverse), a plain array."""
    k = seeds.shape[0]
    S = seeds

    def directions(*args, **kwargs):
        call_g = (lambda *a: g(*a, **kwargs)) if kwargs else g
        leaves, rebuild, _ = _flat_args(g, args, argnums, "sparse_hessian")
        x = leaves[0]
        tangents = [S.astype(dtype, copy=False).reshape((k,) + np.shape(meta(x)))]
        _, tans, _, _ = _push(call_g, args, [x], rebuild, tangents, batched=1,
                              transform="sparse_hessian")
        if tans[0] is None:
            return np.zeros((k,) + np.shape(meta(x)), dtype)
        return tans[0]
    return directions


def _one_output(values, m):
    if len(values) != 1:
        raise TypeError(f"sparse_jacobian needs one array output, but the function returned "
                        f"{len(values)} leaves; concatenate them into one vector.")
    out = values[0]
    if int(np.size(meta(out))) != m:
        raise ValueError(f"sparse_jacobian: sparsity has {m} rows, but the function's output "
                         f"has {np.size(meta(out))} elements (shape {np.shape(meta(out))})")
    if is_complex(meta(out)):
        raise TypeError("sparse_jacobian: a complex output has no real sparse Jacobian; "
                        "differentiate np.real and np.imag of it.")
    return out


def _plan_jacobian(pattern, mode):
    """Colour the columns (forward), the rows (reverse), or for ``"auto"`` both, and take
    the fewer colours (forward on a tie). A structurally symmetric pattern has the same
    row and column colourings: coloured once."""
    m, n = pattern.shape
    if mode == "reverse":
        rows = row_colouring(pattern)
        return _Plan(pattern, rows, "reverse", seed_matrix(rows))
    cols = column_colouring(pattern)
    if mode == "auto" and not (m == n and (pattern != pattern.T).nnz == 0):
        rows = row_colouring(pattern)
        if _count(rows) < _count(cols):
            return _Plan(pattern, rows, "reverse", seed_matrix(rows))
    return _Plan(pattern, cols, "forward", seed_matrix(cols))


def _count(colours):
    return int(colours.max()) + 1 if colours.size else 0


def sparse_hessian(f, argnums=0, sparsity=None, format="csr"):
    """The Hessian ``∇²f`` of a scalar ``f`` as a symmetric ``scipy.sparse`` array.

    ``H`` is ``n × n`` over the flattened input (C order). Its pattern comes from
    ``autodiff.sparsity.hessian_sparsity`` on the first call per input shape and dtype, or
    from ``sparsity=`` (symmetrised: ``P | Pᵀ``; a wrong shape is a ``ValueError``). A star
    colouring of it takes few colours (fewer than a column colouring needs where the
    symmetry helps; the fewer of the two is used), and one forward-over-reverse sweep computes ``H·S``, a batch of
    Hessian-vector products with one direction per colour; each entry is then read from
    one of its two symmetric places, so the result is exactly symmetric. The returned
    function has ``.sparsity``, ``.colours`` (alias ``.colors``) and ``.n_colours``.

    >>> import autodiff as ad
    >>> f = lambda x: np.sum((x[1:] - x[:-1]) ** 2) + np.sum(x ** 4)
    >>> H = ad.sparse_hessian(f)(np.ones(4))
    >>> H.toarray()
    array([[14., -2.,  0.,  0.],
           [-2., 16., -2.,  0.],
           [ 0., -2., 16., -2.],
           [ 0.,  0., -2., 14.]])
    """
    argnums = _single_argnum(argnums, "sparse_hessian")
    _check_format(format, "sparse_hessian")
    given = None if sparsity is None else as_pattern(sparsity)
    g = grad(f, argnums, _transform="sparse_hessian")

    def make_plan(call, args, x):
        n = int(np.size(unbox(x)))
        pattern = given if given is not None else as_pattern(_detect(call, args, argnums,
                                                                     True))
        if pattern.shape != (n, n):
            raise ValueError(f"sparse_hessian: sparsity has shape {pattern.shape}, but "
                             f"the input has {n} elements, so the Hessian is {(n, n)}")
        pattern = as_pattern(pattern + pattern.T)
        colours = star_colouring(pattern)
        # A distance-2 colouring is a star colouring too; on some stencils (the
        # nine-point one) greedy finds a better one of those.
        d2 = column_colouring(pattern)
        if _count(d2) < _count(colours):
            colours = d2
        plan = _Plan(pattern, colours, "forward-over-reverse", seed_matrix(colours))
        SL = StarLayout(pattern, colours, format)     # H[i, j] = (H·S)[src_row, src_col]
        plan.read_from(SL.layout, SL.src_col, SL.src_row, n)
        return plan

    def make_directions(plan, seeds, dtype):
        return _hessian_directions(g, argnums, plan, seeds, dtype)

    return _sparse_function(f, argnums, given, "sparse_hessian", make_plan, make_directions)
