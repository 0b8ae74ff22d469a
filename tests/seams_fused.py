"""Seam blocks for the fused primitives and the newer entry points (imported by seams.py).

Each block builds the primitive's arguments from the fuzzer's current value (any shape,
empty and 0-d included): ``_lin`` maps its flattened entries through a constant matrix to
as many numbers as the primitive needs, reshaped to (N, C, H, W), (…, 4H) and so on; a
second argument may come from an earlier value of the program (two tracked inputs). The
reference is written independently in plain NumPy (loops over windows, the textbook
formulas, a Newton solve), so an engine rule is held to the mathematics, never to itself.

Blocks: ``lstm_cell``, ``gru_cell``, ``max_pool2d`` (also with exact ties), ``pool_gather``,
``pool_scatter``, ``standardize`` (and ``layer_norm``), grouped ``conv2d``, grouped
``conv_transpose2d``, ``scaled_dot_product_attention`` (masks, causal, scale), a constant
``scipy.sparse`` matrix times a tracked value, ``custom_root`` / ``custom_fixed_point``
(pytree and keyword parameters, every tangent solver), ``ad.jit`` bodies (pytree and
keyword arguments, static arguments, guarded branches, an inner transform, a fused
primitive inside, a closure over a tracked value), and ``nn.no_grad`` and its kin inside a
transform (which they leave alone).
"""
import numpy as np

import autodiff as ad
from autodiff import nn
from autodiff.ops import pooling, recurrent
from autodiff.boxes import Box
from autodiff.ops.normalization import standardize

from seams import _const, _earlier, _size, register_block

F = nn.functional
FUSED = []          # the blocks registered here (tests/test_seams_fused.py drives them)


def fused(name, **kw):
    def deco(build):
        FUSED.append(register_block(name, build, tags=("fused",) + kw.pop("tags", ()), **kw))
        return build
    return deco


def _lin(rng, shapes, j, m, dtype, scale=1.0):
    """``z(env) = A · flat(env[j]) + b``: ``m`` numbers from value ``j`` (any size, empty
    included: then ``b`` alone, a constant of the program)."""
    n = _size(shapes[j])
    A = (_const(rng, (m, n), dtype) * (scale / max(1.0, np.sqrt(n)))).astype(dtype)
    b = _const(rng, (m,), dtype, -0.5, 0.5)
    return lambda env: A @ np.reshape(env[j], -1) + b


def _other(rng, shapes):
    """The index of the value a second argument comes from: an earlier one (half the time,
    where there is one) or the current one."""
    j = _earlier(rng, shapes)
    return j if j is not None and rng.integers(2) else -1


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


# ----- recurrent cells -----
@fused("fused_lstm_cell")
def _lstm(rng, shapes, dtype):
    H, B = int(rng.integers(1, 3)), int(rng.integers(0, 3))
    lead = (B,) if B else ()
    a = _lin(rng, shapes, -1, _size(lead) * 4 * H, dtype, 2.0)
    c = _lin(rng, shapes, _other(rng, shapes), _size(lead) * H, dtype)
    by_name = bool(rng.integers(2))

    def fn(env):
        av, cv = np.reshape(a(env), lead + (4 * H,)), np.reshape(c(env), lead + (H,))
        return recurrent.lstm_cell(a=av, c=cv) if by_name else recurrent.lstm_cell(av, cv)

    def ref(env):
        av, cv = np.reshape(a(env), lead + (4 * H,)), np.reshape(c(env), lead + (H,))
        i, f, g, o = (av[..., k * H:(k + 1) * H] for k in range(4))
        c2 = _sig(f) * cv + _sig(i) * np.tanh(g)
        return np.stack([_sig(o) * np.tanh(c2), c2])
    return fn, ref


@fused("fused_gru_cell")
def _gru(rng, shapes, dtype):
    H, B = int(rng.integers(1, 3)), int(rng.integers(0, 3))
    lead = (B,) if B else ()
    k = _size(lead)
    xp = _lin(rng, shapes, -1, k * 3 * H, dtype, 2.0)
    j = _other(rng, shapes)
    hp = _lin(rng, shapes, j, k * 3 * H, dtype, 2.0)
    h = _lin(rng, shapes, j, k * H, dtype)

    def args(env):
        return (np.reshape(xp(env), lead + (3 * H,)), np.reshape(hp(env), lead + (3 * H,)),
                np.reshape(h(env), lead + (H,)))

    def ref(env):
        x, p, hv = args(env)
        r = _sig(x[..., :H] + p[..., :H])
        z = _sig(x[..., H:2 * H] + p[..., H:2 * H])
        n = np.tanh(x[..., 2 * H:] + r * p[..., 2 * H:])
        return (1.0 - z) * n + z * hv
    return (lambda env: recurrent.gru_cell(*args(env))), ref


# ----- max pooling and its two linear companions -----
_POOL_INPUTS = [(1, 1, 3, 3), (1, 2, 3, 2), (2, 1, 2, 3), (1, 1, 4, 4), (3, 3), (1, 2, 2)]


def _pool_geometry(rng, hw):
    """A random PyTorch pooling geometry that fits ``hw``, or None."""
    k = tuple(int(rng.integers(1, 4)) for _ in range(2))
    s = tuple(int(rng.integers(1, 3)) for _ in range(2))
    p = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
    d = tuple(int(rng.integers(1, 3)) if rng.random() < 0.3 else 1 for _ in range(2))
    ceil = bool(rng.integers(2))
    try:
        out = tuple(pooling.pool_output_size(n, *g, ceil) for n, *g in zip(hw, k, s, p, d))
    except ValueError:
        return None
    return k, s, p, d, ceil, out


def _ref_taps(hw, out, k, s, p, d):
    """Every (output position, tap number, input position inside the input) of the window
    geometry, PyTorch's meaning (positions in the padding are left out)."""
    for oi in range(out[0]):
        for oj in range(out[1]):
            for ti in range(k[0]):
                for tj in range(k[1]):
                    i, j = oi * s[0] - p[0] + ti * d[0], oj * s[1] - p[1] + tj * d[1]
                    if 0 <= i < hw[0] and 0 <= j < hw[1]:
                        yield (oi, oj), ti * k[1] + tj, (i, j)


def _ref_max_pool(x, k, s, p, d, out):
    y = np.full(x.shape[:-2] + out, -np.inf, dtype=x.dtype)
    for o, _, i in _ref_taps(x.shape[-2:], out, k, s, p, d):
        y[(Ellipsis,) + o] = np.maximum(y[(Ellipsis,) + o], x[(Ellipsis,) + i])
    return y


@fused("fused_max_pool2d")
def _max_pool(rng, shapes, dtype):
    shape = _POOL_INPUTS[int(rng.integers(len(_POOL_INPUTS)))]
    geo = _pool_geometry(rng, shape[-2:])
    if geo is None or len(shape) < 3:
        return None
    k, s, p, d, ceil, out = geo
    m = _size(shape)
    tied = rng.random() < 0.3       # exact ties: each value appears twice
    z = _lin(rng, shapes, -1, (m + 1) // 2 if tied else m, dtype, 2.0)
    perm = rng.permutation(m)
    via_nn = bool(rng.integers(2))

    def x_of(env):
        v = z(env)
        if tied:
            v = np.concatenate([v, v])[:m][perm]
        return np.reshape(v, shape)

    def fn(env):
        x = x_of(env)
        if via_nn:
            y = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil)
        else:
            y = pooling.max_pool2d(x, k, s, p, d, ceil)
        return np.reshape(y, (-1,))
    return fn, (lambda env: np.reshape(_ref_max_pool(x_of(env), k, s, p, d, out), (-1,)))


def _pool_constants(rng, dtype):
    """A constant input (ties half the time), its geometry and the weights ``W`` the max
    pooling rules pass to ``pool_gather`` / ``pool_scatter``."""
    shape = _POOL_INPUTS[int(rng.integers(len(_POOL_INPUTS)))]
    geo = _pool_geometry(rng, shape[-2:])
    if geo is None:
        return None
    k, s, p, d, ceil, out = geo
    x0 = rng.integers(-2, 3, shape) if rng.integers(2) else rng.standard_normal(shape)
    x0 = x0.astype(dtype)
    kw = dict(ksize=k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
    ans = pooling._max_pool(x0, **kw)
    W = pooling._weights(x0, ans, **kw)          # what max pooling's rules pass on
    # one-hot at each window's first maximum in row-major tap order (PyTorch's choice),
    # from the reference geometry (a W laid out otherwise than the taps below shows as a
    # wrong primal); _ref_taps gives each window's taps in that order
    ref_W = np.zeros(W.shape)
    mx = _ref_max_pool(x0, k, s, p, d, out)
    for o, t, i in _ref_taps(shape[-2:], out, k, s, p, d):
        taken = ref_W[(slice(None), Ellipsis) + o].any(axis=0)
        ref_W[(t, Ellipsis) + o] = (x0[(Ellipsis,) + i] == mx[(Ellipsis,) + o]) & ~taken
    return shape, kw, out, W, ref_W


@fused("fused_pool_gather")
def _pool_gather(rng, shapes, dtype):
    made = _pool_constants(rng, dtype)
    if made is None:
        return None
    shape, kw, out, W, ref_W = made
    t = _lin(rng, shapes, -1, _size(shape), dtype, 2.0)

    def ref(env):
        tv = np.reshape(t(env), shape)
        y = np.zeros(shape[:-2] + out)
        for o, k, i in _ref_taps(shape[-2:], out, kw["ksize"], kw["stride"], kw["padding"],
                                 kw["dilation"]):
            y[(Ellipsis,) + o] += ref_W[(k, Ellipsis) + o] * tv[(Ellipsis,) + i]
        return np.reshape(y, (-1,)).astype(np.result_type(tv, W))
    return (lambda env: np.reshape(pooling.pool_gather_p(
        np.reshape(t(env), shape), W, size=shape[-2:], **kw), (-1,))), ref


@fused("fused_pool_scatter")
def _pool_scatter(rng, shapes, dtype):
    made = _pool_constants(rng, dtype)
    if made is None:
        return None
    shape, kw, out, W, ref_W = made
    g = _lin(rng, shapes, -1, _size(shape[:-2] + out), dtype, 2.0)

    def ref(env):
        gv = np.reshape(g(env), shape[:-2] + out)
        y = np.zeros(shape)
        for o, k, i in _ref_taps(shape[-2:], out, kw["ksize"], kw["stride"], kw["padding"],
                                 kw["dilation"]):
            y[(Ellipsis,) + i] += ref_W[(k, Ellipsis) + o] * gv[(Ellipsis,) + o]
        return np.reshape(y, (-1,)).astype(np.result_type(gv, W))
    return (lambda env: np.reshape(pooling.pool_scatter_p(
        np.reshape(g(env), shape[:-2] + out), W, size=shape[-2:], **kw), (-1,))), ref


# ----- standardisation -----
@fused("fused_standardize")
def _standardize(rng, shapes, dtype):
    s = shapes[-1]
    if len(s) == 0:
        return None
    nd = len(s)
    axes = tuple(int(a) for a in np.flatnonzero(rng.random(nd) < 0.6)) or (nd - 1,)
    axes_given = tuple(a - nd if rng.integers(2) else a for a in axes)
    eps = float(rng.choice([1e-2, 0.1, 1.0]))
    layer = rng.random() < 0.3 and axes == tuple(range(nd - len(axes), nd))
    wb = _const(rng, s[nd - len(axes):], dtype, 0.5, 1.5), _const(rng, s[nd - len(axes):],
                                                                 dtype)

    def fn(env):
        if layer:
            return F.layer_norm(env[-1], s[nd - len(axes):], wb[0], wb[1], eps=eps)
        return standardize(env[-1], axes_given, eps)

    def ref(env):
        x = env[-1]
        mu = np.mean(x, axis=axes, keepdims=True)
        var = np.mean((x - mu) ** 2, axis=axes, keepdims=True)
        y = (x - mu) / np.sqrt(var + x.dtype.type(eps))
        return y * wb[0] + wb[1] if layer else y
    return fn, ref


# ----- convolutions with groups -----
def _ref_conv(x, w, s, p, d, groups):
    n, c, h, wd = x.shape
    o, ci, kh, kw = w.shape
    ho = (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    wo = (wd + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    y = np.zeros((n, o, ho, wo), dtype=np.result_type(x, w))
    og = o // groups
    for oo in range(o):
        g = oo // og
        for a in range(ho):
            for b in range(wo):
                for cc in range(ci):
                    for i in range(kh):
                        for j in range(kw):
                            r, q = a * s[0] - p[0] + i * d[0], b * s[1] - p[1] + j * d[1]
                            if 0 <= r < h and 0 <= q < wd:
                                y[:, oo, a, b] += x[:, g * ci + cc, r, q] * w[oo, cc, i, j]
    return y


def _ref_conv_t(x, w, s, p, op, d, groups):
    n, cin, h, wd = x.shape
    _, co, kh, kw = w.shape
    size = [(m - 1) * ss - 2 * pp + dd * (k - 1) + oo + 1
            for m, ss, pp, dd, k, oo in zip((h, wd), s, p, d, (kh, kw), op)]
    y = np.zeros((n, co * groups) + tuple(size), dtype=np.result_type(x, w))
    cg = cin // groups
    for c in range(cin):
        g = c // cg
        for a in range(h):
            for b in range(wd):
                for oo in range(co):
                    for i in range(kh):
                        for j in range(kw):
                            r, q = a * s[0] - p[0] + i * d[0], b * s[1] - p[1] + j * d[1]
                            if 0 <= r < size[0] and 0 <= q < size[1]:
                                y[:, g * co + oo, r, q] += x[:, c, a, b] * w[c, oo, i, j]
    return y


def _conv_weight(rng, shapes, wshape, dtype):
    """A constant weight, or one tracked through an earlier or the current value."""
    W0 = _const(rng, wshape, dtype)
    if rng.random() < 0.4:
        return lambda env: W0
    t = _lin(rng, shapes, _other(rng, shapes), _size(wshape), dtype, 0.5)
    return lambda env: W0 + np.reshape(t(env), wshape)


@fused("fused_conv2d_groups")
def _conv2d(rng, shapes, dtype):
    groups, ci, co = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
    n, h, wd = int(rng.integers(1, 3)), int(rng.integers(2, 4)), int(rng.integers(2, 4))
    k = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
    d = (int(rng.integers(1, 3)) if rng.random() < 0.3 else 1, 1)
    single = rng.random() < 0.25
    xshape = (groups * ci, h, wd) if single else (n, groups * ci, h, wd)
    z = _lin(rng, shapes, -1, _size(xshape), dtype, 2.0)
    w = _conv_weight(rng, shapes, (groups * co, ci) + k, dtype)
    bias = _const(rng, (groups * co,), dtype) if rng.integers(2) else None

    def fn(env):
        y = F.conv2d(np.reshape(z(env), xshape), w(env), bias, s, p, d, groups)
        return np.reshape(y, (groups * co, -1)) if single else np.reshape(y, (-1,))

    def ref(env):
        x = np.reshape(z(env), xshape)
        y = _ref_conv(x[None] if single else x, w(env), s, p, d, groups)
        if min(y.shape) == 0:
            raise ValueError("kernel larger than the input")
        if bias is not None:
            y = y + bias[:, None, None]
        return np.reshape(y, (groups * co, -1)) if single else np.reshape(y, (-1,))
    return fn, ref


@fused("fused_conv_transpose2d_groups")
def _conv_t(rng, shapes, dtype):
    groups, ci, co = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 3))
    h, wd = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    k = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    s = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    p = (int(rng.integers(0, 2)), 0)
    op = tuple(int(rng.integers(0, ss)) for ss in s)
    d = (1, int(rng.integers(1, 3)) if rng.random() < 0.3 else 1)
    xshape = (1, groups * ci, h, wd)
    z = _lin(rng, shapes, -1, _size(xshape), dtype, 2.0)
    w = _conv_weight(rng, shapes, (groups * ci, co) + k, dtype)

    def fn(env):
        y = F.conv_transpose2d(np.reshape(z(env), xshape), w(env), None, s, p, op, groups, d)
        return np.reshape(y, (-1,))

    def ref(env):
        y = _ref_conv_t(np.reshape(z(env), xshape), w(env), s, p, op, d, groups)
        if min(y.shape) == 0:
            raise ValueError("empty output")
        return np.reshape(y, (-1,))
    return fn, ref


# ----- attention -----
@fused("fused_attention")
def _attention(rng, shapes, dtype):
    L, S = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    E, Ev = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    lead = (int(rng.integers(1, 3)),) if rng.integers(2) else ()
    q = _lin(rng, shapes, -1, _size(lead) * L * E, dtype, 2.0)
    j = _other(rng, shapes)             # keys and values from another value: cross attention
    kk = _lin(rng, shapes, j, _size(lead) * S * E, dtype, 2.0)
    vv = _lin(rng, shapes, j, _size(lead) * S * Ev, dtype, 2.0)
    kind = int(rng.integers(4))         # no mask, boolean, float, causal
    mask = None
    if kind == 1:
        mask = rng.random((L, S)) < 0.6
        mask[np.arange(L), rng.integers(0, S, L)] = True      # every query attends somewhere
    elif kind == 2:
        mask = _const(rng, (L, S), dtype)
    scale = None if rng.integers(2) else float(rng.uniform(0.3, 1.5))

    def args(env):
        return (np.reshape(q(env), lead + (L, E)), np.reshape(kk(env), lead + (S, E)),
                np.reshape(vv(env), lead + (S, Ev)))

    def fn(env):
        return F.scaled_dot_product_attention(*args(env), attn_mask=mask, is_causal=kind == 3,
                                              scale=scale)

    def ref(env):
        Q, K, V = args(env)
        sc = (1.0 / np.sqrt(E) if scale is None else scale)
        scores = np.einsum("...le,...se->...ls", Q, K) * Q.dtype.type(sc)
        allowed = np.ones((L, S), bool)
        if kind == 1:
            allowed = mask
        elif kind == 2:
            scores = scores + mask
        elif kind == 3:
            allowed = np.tril(np.ones((L, S), bool))
        if not np.all(allowed.any(axis=1)):
            raise ValueError("a query that attends nowhere: NaN (PyTorch's too)")
        scores = np.where(allowed, scores, -np.inf)
        e = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
        return (e / np.sum(e, axis=-1, keepdims=True)) @ V
    return fn, ref


# ----- a constant scipy.sparse matrix times a tracked value -----
@fused("fused_sparse_matmul")
def _sparse(rng, shapes, dtype):
    from scipy import sparse
    s = shapes[-1]
    kind = int(rng.integers(4))      # A @ v, A @ X, X @ A, v @ A
    if kind in (1, 2) and len(s) != 2:
        kind = 0
    n = {0: _size(s), 1: s[0] if len(s) == 2 else 0, 2: s[-1] if s else 0, 3: _size(s)}[kind]
    m = int(rng.integers(1, 4))
    shape = (m, n) if kind < 2 else (n, m)
    dense = rng.uniform(-1, 1, shape) * (rng.random(shape) < 0.5)
    fmt = ["csr", "csc", "coo"][int(rng.integers(3))]
    A = (sparse.csr_array(dense) if rng.integers(2) else sparse.csr_matrix(dense))
    A = A.asformat(fmt).astype(dtype)
    how = int(rng.integers(3))       # the @ operator, np.matmul, np.dot

    def prod(a, b):
        # NumPy's own np.matmul / np.dot do not take a sparse operand: for tracked values
        # the engine routes them to the sparse product
        if how == 0 or not any(isinstance(t, Box) for t in (a, b)):
            return a @ b
        return np.matmul(a, b) if how == 1 else np.dot(a, b)

    def fn(env):
        x = env[-1] if kind in (1, 2) else np.reshape(env[-1], -1)
        y = prod(A, x) if kind < 2 else prod(x, A)
        if not isinstance(y, Box):     # SciPy's own coo_array @ v drops a 1-row axis
            y = np.reshape(y, np.shape(ref(env)))
        return y

    def ref(env):
        x = env[-1] if kind in (1, 2) else np.reshape(env[-1], -1)
        D = dense.astype(dtype)
        return D @ x if kind < 2 else x @ D
    return fn, ref


# ----- implicit functions -----
def _newton(x, a, M, c, iters=40):
    """The root of ``x + c·tanh(M x) - a`` (plain NumPy)."""
    for _ in range(iters):
        t = np.tanh(M @ x)
        J = np.eye(x.size, dtype=x.dtype) + c * (1 - t * t)[:, None] * M
        x = x - np.linalg.solve(J, x + c * t - a) if x.size else x
    return x


def _contraction(x, a, M, c, iters=120):
    """The fixed point of ``x = c·cos(M x) + a`` (a contraction: |c|·‖M‖ < 1)."""
    for _ in range(iters):
        x = c * np.cos(M @ x) + a
    return x


@fused("fused_custom_root")
def _custom_root(rng, shapes, dtype):
    n = _size(shapes[-1])
    M = _const(rng, (n, n), dtype) / max(1.0, float(n))
    c = dtype(rng.uniform(0.2, 0.5))
    solve = ["auto", "dense", "krylov", "sparse"][int(rng.integers(4))]
    fixed = bool(rng.integers(2))
    style = int(rng.integers(3))     # params positional; a dict; a keyword
    aux = rng.random() < 0.3
    j = _other(rng, shapes)
    if _size(shapes[j]) == 0 and n:
        j = -1
    bmap = _lin(rng, shapes, j, n, dtype, 0.5)
    tol = 1e-12 if dtype == np.float64 else 1e-6

    def residual(x, a, b):
        if fixed:                        # T(x) for custom_fixed_point
            return c * np.cos(M @ x) + a * b
        return x + c * np.tanh(M @ x) - a * b

    def plain_solve(x0, a, b):
        return (_contraction if fixed else _newton)(np.zeros_like(x0), a * b, M, c)

    if style == 0:
        def Fx(x, a, b):
            return residual(x, a, b)

        def solver(x0, a, b):
            x = plain_solve(x0, a, b)
            return (x, "aux") if aux else x
        call = lambda x0, a, b: ad_solver(x0, a, b)              # noqa: E731
    elif style == 1:
        def Fx(x, p):
            return residual(x, p["a"], p["b"])

        def solver(x0, p):
            x = plain_solve(x0, p["a"], p["b"])
            return (x, "aux") if aux else x
        call = lambda x0, a, b: ad_solver(x0, {"a": a, "b": b})   # noqa: E731
    else:
        def Fx(x, a, *, b):
            return residual(x, a, b)

        def solver(x0, a, *, b):
            x = plain_solve(x0, a, b)
            return (x, "aux") if aux else x
        call = lambda x0, a, b: ad_solver(x0, a, b=b)             # noqa: E731
    deco = ad.custom_fixed_point if fixed else ad.custom_root
    ad_solver = deco(Fx, solve=solve, tol=tol, has_aux=aux)(solver)

    def fn(env):
        a = np.reshape(env[-1], -1)
        b = 1.0 + 0.5 * np.tanh(bmap(env))
        x0 = a * 0.5          # tracked, but the initial guess gets no derivative (JAX)
        r = call(x0, a, b)
        if aux:
            r, tag = r
            assert tag == "aux"
        return r

    def ref(env):
        a = np.reshape(env[-1], -1)
        b = 1.0 + 0.5 * np.tanh(bmap(env))
        return plain_solve(a, a, b)
    return fn, ref


# ----- ad.jit bodies -----
def _jit_bodies(rng, shapes, dtype):
    """(the jitted call, the same mathematics in NumPy) for one of the body kinds."""
    kind = int(rng.integers(7))
    d = np.dtype(dtype).type
    if kind == 0:                                # elementwise and a reduction
        g = ad.jit(lambda u: np.sin(u) * u + np.sum(u * u))
        return (lambda env: g(env[-1])), (lambda env: np.sin(env[-1]) * env[-1]
                                          + np.sum(env[-1] ** 2))
    if kind == 1:                                # a pytree and a keyword argument
        g = ad.jit(lambda p, scale=d(1.0): (p["a"] * np.cos(p["b"][0]) + p["b"][1]) * scale)

        def fn(env):
            y = env[-1]
            return g({"a": y, "b": (y * y, np.tanh(y))}, scale=d(0.5))
        return fn, (lambda env: (env[-1] * np.cos(env[-1] ** 2) + np.tanh(env[-1])) * 0.5)
    if kind == 2:                                # a static argument steering Python
        g = ad.jit(lambda u, k: u ** k if k > 1 else np.exp(u), static_argnums=1)
        k = int(rng.integers(1, 4))
        return (lambda env: g(env[-1], k)), \
            (lambda env: env[-1] ** k if k > 1 else np.exp(env[-1]))
    if kind == 3:                                # a guarded branch on the values
        g = ad.jit(lambda u: np.sin(u) * 2.0 if np.sum(u) > 0.0 else u * u - u)
        return (lambda env: g(env[-1])), \
            (lambda env: np.sin(env[-1]) * 2.0 if np.sum(env[-1]) > 0.0
             else env[-1] ** 2 - env[-1])
    if kind == 4:                                # an inner transform, jitted
        g = ad.jit(ad.grad(lambda u: np.sum(np.sin(u) ** 2)))
        return (lambda env: g(env[-1])), (lambda env: np.sin(2.0 * env[-1]))
    if kind == 5:                                # a fused primitive recorded and replayed
        if len(shapes[-1]) == 0:
            return None
        g = ad.jit(lambda u: standardize(u, (-1,), 0.1) * u)
        return (lambda env: g(env[-1])), (lambda env: (
            (env[-1] - np.mean(env[-1], -1, keepdims=True))
            / np.sqrt(np.var(env[-1], -1, keepdims=True) + d(0.1))) * env[-1])
    if kind == 6:                                # two arguments, one from an earlier value
        j = _earlier(rng, shapes)
        if j is None:
            return None
        g = ad.jit(lambda u, w: u * np.tanh(np.sum(w)))
        return (lambda env: g(env[-1], env[j])), \
            (lambda env: env[-1] * np.tanh(np.sum(env[j])))
    return None


@fused("fused_jit")
def _jit(rng, shapes, dtype):
    """A jitted body: called with plain values, Duals, Variables and batches of each by the
    checks, so one function records per signature and replays under every transform."""
    return _jit_bodies(rng, shapes, dtype)


@fused("fused_jit_closure", refusable=True)
def _jit_closure(rng, shapes, dtype):
    """A jitted function closing over a tracked value: refused with a clear error."""
    j = _earlier(rng, shapes)
    if j is None:
        return None

    def fn(env):
        c = env[j]
        return ad.jit(lambda u: u * np.cos(np.sum(c)))(env[-1])
    return fn, (lambda env: env[-1] * np.cos(np.sum(env[j])))


# ----- nn's grad mode inside a transform -----
@fused("grad_mode_in_transform")
def _grad_mode(rng, shapes, dtype):
    """``nn.no_grad()`` (or ``inference_mode``, ``set_grad_enabled(False)``, the decorator)
    around a computation inside a transform: transforms are not affected (torch.func's
    rule), so it is differentiated as ever; while it is open the eager record path checks
    the mode. On the eager tape itself (the checks' Variables) it would record nothing,
    which is PyTorch's meaning, so there the block computes with recording on."""
    from autodiff.core import EAGER_REVERSE
    k = int(rng.integers(4))
    body = _SMOOTH_BODIES[int(rng.integers(len(_SMOOTH_BODIES)))]

    def fn(env):
        y = env[-1]
        if type(y) is ad.Variable and y.level == EAGER_REVERSE:
            return body(y)
        if k == 0:
            with nn.no_grad():
                return body(y)
        if k == 1:
            with nn.inference_mode():
                with nn.enable_grad():          # nested: back on, then off again
                    pass
                return body(y)
        if k == 2:
            with nn.set_grad_enabled(False):
                return body(y)
        return nn.no_grad()(body)(y)
    return fn, (lambda env: body(env[-1]))


_SMOOTH_BODIES = [lambda y: np.sin(y) * y, lambda y: np.exp(-y * y) + np.sum(y),
                  lambda y: np.tanh(y) * np.cos(y)]
