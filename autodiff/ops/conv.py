"""Convolution: ``conv2d`` and the two primitives its reverse rule needs — primitives for speed.

``conv2d(x, w)`` is PyTorch's cross-correlation of ``x`` (N, C, H, W) with ``w`` (O, C, kh, kw),
``y[n,o,p,q] = Σ_{c,i,j} xpad[n, c, p·s + i·d, q·s + j·d] · w[o,c,i,j]``: im2col (one copy of
a strided window view), then BLAS matrix products, no loop over pixels. As a composition of
indexing and ``matmul`` it would record one node per kernel tap and scatter back through
each; as a primitive its rules are two other convolutions:

* ``conv2d_transpose_x(g, w)`` — ``Aᵀg`` where ``conv2d(x, w) = A x`` (the cotangent of x,
  PyTorch's ``conv_transpose2d`` with weight (in=O, out=C, kh, kw));
* ``conv2d_grad_w(x, g)`` — ``∂⟨conv2d(x, w), g⟩/∂w``, the correlation of x with g.

All three are bilinear, so every JVP is the primitive itself with one argument swapped for
its tangent, and every VJP is one of the three: with ``⟨conv(x,w), g⟩ = ⟨x, T(g,w)⟩ =
⟨w, G(x,g)⟩`` the set is closed, and derivatives of any order are convolutions again.

A batch of directions (one extra leading axis on a tangent or cotangent) is folded into a
convolution axis that the operation treats independently — images (N), output channels (O)
or input channels (C) — and unfolded after: ``_conv``, ``_conv_t``, ``_conv_w`` below.

>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> conv2d(x, np.ones((1, 1, 2, 2)), stride=2)[0, 0]
array([[10., 18.],
       [42., 50.]])
"""
import sys
import weakref

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..core import ndim_of, shape_of
from . import dependency
from .define import defprim

__all__ = ["conv2d", "conv1d", "conv_transpose2d", "conv2d_p", "conv2d_transpose_x_p",
           "conv2d_grad_w_p", "conv_output_size"]


# ----- NumPy implementations (plain arrays only) -----
# Layout: the window matrix ("im2col") is ``cols`` (C·kh·kw, N·Ho·Wo), C-contiguous, built by
# one copy of a strided view whose innermost axis runs along the image rows. Each of the
# three convolutions is then BLAS GEMMs on contiguous (or plainly transposed) operands:
# ``y = W cols`` (one per image), ``∂w = g colsᵀ`` (one, or one per image for few taps),
# ``cols_g = Wᵀ g`` (W the weight as (O, C·kh·kw), g the cotangent as (O, N·Ho·Wo)). The
# forward's ``cols`` is kept for the weight gradient of the same call (``_saved``), so a
# training step builds each window matrix once.
def _windows(x, ksize, stride, padding, dilation):
    """im2col as a view: (N, C, Ho, Wo, kh, kw) with ``[..., p, q, i, j] =
    xpad[..., p·s + i·d, q·s + j·d]``."""
    (pt, pb), (pl, pr) = padding
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    (kh, kw), (sh, sw), (dh, dw) = ksize, stride, dilation
    v = sliding_window_view(x, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return v[:, :, ::sh, ::sw, ::dh, ::dw]


def _cols(x, ksize, stride, padding, dilation):
    """The window matrix (C·kh·kw, N·Ho·Wo): ``[(c,i,j), (n,p,q)] = xpad[n, c, p·s + i·d,
    q·s + j·d]``, one contiguous copy; and (Ho, Wo)."""
    v = _windows(x, ksize, stride, padding, dilation)
    n, c, ho, wo, kh, kw = v.shape
    cols = _take((c * kh * kw, n * ho * wo), v.dtype)
    np.copyto(cols.reshape(c, kh, kw, n, ho, wo), v.transpose(1, 4, 5, 0, 2, 3))
    return cols, (ho, wo)


def _flat_g(g):
    """The cotangent (N, O, Ho, Wo) as the matrix (O, N·Ho·Wo)."""
    n, o, ho, wo = g.shape
    return np.ascontiguousarray(np.swapaxes(g.reshape(n, o, ho * wo), 0, 1)).reshape(
        o, n * ho * wo)


# Window matrices of recent forward calls, for their weight gradients: id(ans) → (ans, x,
# key, cols) with weak references to the call's output and input. The reverse rule of w
# finds its call's entry by the identity of both (the output is new per call, so an entry
# never answers for another call); an entry goes when the output is freed. The total is
# capped (past it the gradient rebuilds its windows, as a nested derivative always does).
# A dropped matrix that nothing else holds is kept as a spare (one per shape; the oldest go
# past a cap) for the next call of the same shape: a training loop then reuses its buffers
# instead of asking the system for fresh pages every step.
_SAVED = {}
_SAVED_CAP = 256 * 2 ** 20
_saved_bytes = [0]
_SPARE = {}
_SPARE_CAP = 64 * 2 ** 20
_spare_bytes = [0]


def _take(shape, dtype):
    """A spare buffer of this shape and dtype, or a new one (uninitialised either way)."""
    a = _SPARE.pop(tuple(shape) + (np.dtype(dtype),), None)
    if a is None:
        return np.empty(shape, dtype=dtype)
    _spare_bytes[0] -= a.nbytes
    return a


def _give(a, owners):
    """Keep ``a`` as a spare if the caller's ``owners`` references are all there are
    (``sys.getrefcount`` also counts its own argument and this frame's)."""
    k = a.shape + (a.dtype,)
    if sys.getrefcount(a) != owners + 2 or k in _SPARE or a.nbytes > _SPARE_CAP:
        return
    while _spare_bytes[0] + a.nbytes > _SPARE_CAP:        # the oldest spares make room
        _spare_bytes[0] -= _SPARE.pop(next(iter(_SPARE))).nbytes
    _SPARE[k] = a
    _spare_bytes[0] += a.nbytes


def _forget(key, nbytes):
    e = _SAVED.pop(key, None)
    if e is None:
        return
    _saved_bytes[0] -= nbytes
    cols = e[3]
    del e
    _give(cols, 1)


def _release(ans):
    """Hand the saved window matrix of the call that gave ``ans`` back as a spare (its
    weight gradient is done; a second sweep would rebuild it)."""
    e = _SAVED.get(id(ans))
    if e is not None and e[0]() is ans:
        nbytes = e[3].nbytes
        del e
        _forget(id(ans), nbytes)


def _save(ans, x, geo, cols):
    if _saved_bytes[0] + cols.nbytes > _SAVED_CAP:
        return
    try:
        key, nb = id(ans), cols.nbytes
        ref = weakref.ref(ans, lambda _r, key=key, nb=nb: _forget(key, nb))
        _SAVED[key] = (ref, weakref.ref(x), geo, cols)
        _saved_bytes[0] += nb
    except TypeError:                   # an array type without weak references
        pass


def _saved(ans, x, geo):
    """The window matrix the forward call that returned ``ans`` from ``x`` built, or None."""
    e = _SAVED.get(id(ans))
    if e is None or e[0]() is not ans or e[1]() is not x or e[2] != geo:
        return None
    return e[3]


def _conv2d(x, w, stride, padding, dilation, save=True):
    ksize = w.shape[2:]
    cols, (ho, wo) = _cols(x, ksize, stride, padding, dilation)
    o, n = w.shape[0], x.shape[0]
    # One GEMM per image straight into (N, O, Ho·Wo): each image's columns are a plain
    # strided block of cols, and no output transpose is needed.
    # (sizes written out, never -1: any of them may be 0, an empty batch of directions)
    taps = cols.shape[0]
    y = np.matmul(w.reshape(o, taps), cols.reshape(taps, n, ho * wo).transpose(1, 0, 2))
    y = y.reshape(n, o, ho, wo)
    if save:
        _save(y, x, (ksize, stride, padding, dilation), cols)
    else:
        _give(cols, 1)
    return y


def _check_out(g, size, ksize, stride, padding, dilation, name):
    want = conv_output_size(size, ksize, stride, padding, dilation)
    if tuple(g.shape[2:]) != want:
        raise ValueError(f"{name}: g has spatial shape {tuple(g.shape[2:])}, but conv2d of "
                         f"an input of size {tuple(size)} gives {want}")


def _conv2d_transpose_x(g, w, size, stride, padding, dilation):
    """col2im: ``cols_g = Wᵀ g`` (one GEMM), scattered back onto the padded image by one
    strided slice-add per kernel tap (kh·kw of them, never a loop over pixels), then the
    padding is cropped."""
    n, _, ho, wo = g.shape
    o, c, kh, kw = w.shape
    (pt, pb), (pl, pr) = padding
    (sh, sw), (dh, dw) = stride, dilation
    h, wd = size
    _check_out(g, (h, wd), (kh, kw), stride, padding, dilation, "conv2d_transpose_x")
    gf = _flat_g(g)
    dtype = np.result_type(w, gf)
    buf = _take((c * kh * kw, n * ho * wo), dtype) if dtype.kind == "f" else None
    buf = np.matmul(w.reshape(o, c * kh * kw).T, gf, out=buf)
    cols = buf.reshape(c, kh, kw, n, ho, wo)
    out = np.zeros((n, c, h + pt + pb, wd + pl + pr), dtype=dtype)
    dst = out.transpose(1, 0, 2, 3)                                  # (C, N, H, W) view
    for i in range(kh):
        for j in range(kw):
            dst[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                j * dw:j * dw + sw * (wo - 1) + 1:sw] += cols[:, i, j]
    del cols
    _give(buf, 1)
    if pt or pb or pl or pr:
        out = np.ascontiguousarray(out[:, :, pt:pt + h, pl:pl + wd])
    return out


def _conv2d_grad_w(x, g, ksize, stride, padding, dilation, cols=None):
    """``∂w = g colsᵀ``: one GEMM against the window matrix (the forward's, if given)."""
    _check_out(g, x.shape[2:], ksize, stride, padding, dilation, "conv2d_grad_w")
    if cols is None:
        cols = _cols(x, ksize, stride, padding, dilation)[0]
    n, o, ho, wo = g.shape
    if cols.shape[0] <= ho * wo:
        # Few taps: one GEMM per image on g as it lies, summed over the images (the
        # (N, O, C·kh·kw) partials are no larger than g), instead of transposing g.
        gw = np.matmul(g.reshape(n, o, ho * wo),
                       cols.reshape(cols.shape[0], n, ho * wo).transpose(1, 2, 0)).sum(axis=0)
    else:
        gw = np.matmul(_flat_g(g), cols.T)                            # (O, C·kh·kw)
    return gw.reshape((o, x.shape[1]) + tuple(ksize))


def _grad_w_rule(g, ans, x, w, **kw):
    """The reverse rule of ``w``: on plain arrays (a first-order sweep) it reuses the window
    matrix of the forward call that gave ``ans``; otherwise it is the primitive again."""
    if type(g) is np.ndarray and type(x) is np.ndarray and g.ndim == 4:
        cols = _saved(ans, x, (_hw(w), kw["stride"], kw["padding"], kw["dilation"]))
        if cols is not None:
            gw = _conv2d_grad_w(x, g, _hw(w), cols=cols, **kw)
            del cols
            _release(ans)
            return gw
    return _conv_w(x, g, _hw(w), kw)


# ----- Batched operands: fold the batch of directions into an independent axis -----
# The operands of the three primitives are exactly 4-D, so a 5-D one carries the batch of
# directions on its leading axis (the engine's convention; at most one operand has it).
_SWAP01 = (1, 0, 2, 3, 4)


def _batched(a):
    return ndim_of(a) == 5


def _merge0(a):
    """(B, N, …) → (B·N, …): the directions become more images (or output channels)."""
    s = shape_of(a)
    return np.reshape(a, (s[0] * s[1],) + s[2:])


def _split0(y, b, n):
    """(B·N, …) → (B, N, …) (sizes given: B may be 0)."""
    return np.reshape(y, (b, n) + shape_of(y)[1:])


def _merge1(a):
    """(B, N, C, …) → (N, B·C, …): the directions become more channels."""
    s = shape_of(a)
    return np.reshape(np.transpose(a, _SWAP01), (s[1], s[0] * s[2]) + s[3:])


def _split1(y, b, c):
    """(M, B·C, …) → (B, M, C, …) (sizes given: B may be 0)."""
    s = shape_of(y)
    return np.transpose(np.reshape(y, (s[0], b, c) + s[2:]), _SWAP01)


def _conv(x, w, kw):
    """``conv2d`` where ``x`` (B, N, C, H, W) or ``w`` (B, O, C, kh, kw) may be batched."""
    if _batched(x):                                   # B joins the images
        return _split0(conv2d_p(_merge0(x), w, **kw), *shape_of(x)[:2])
    if _batched(w):                                   # B joins the output channels
        return _split1(conv2d_p(x, _merge0(w), **kw), *shape_of(w)[:2])
    return conv2d_p(x, w, **kw)


def _conv_t(g, w, size, kw):
    """``conv2d_transpose_x`` where ``g`` (B, N, O, Ho, Wo) or ``w`` may be batched."""
    if _batched(g):                                   # B joins the images
        return _split0(conv2d_transpose_x_p(_merge0(g), w, size=size, **kw),
                       *shape_of(g)[:2])
    if _batched(w):                                   # B joins the input channels
        return _split1(conv2d_transpose_x_p(g, _merge1(w), size=size, **kw),
                       shape_of(w)[0], shape_of(w)[2])
    return conv2d_transpose_x_p(g, w, size=size, **kw)


def _conv_w(x, g, ksize, kw):
    """``conv2d_grad_w`` where ``x`` (B, N, C, H, W) or ``g`` (B, N, O, Ho, Wo) may be batched."""
    if _batched(x):                                   # B joins the input channels
        return _split1(conv2d_grad_w_p(_merge1(x), g, ksize=ksize, **kw),
                       shape_of(x)[0], shape_of(x)[2])
    if _batched(g):                                   # B joins the output channels
        return _split0(conv2d_grad_w_p(x, _merge1(g), ksize=ksize, **kw),
                       shape_of(g)[0], shape_of(g)[2])
    return conv2d_grad_w_p(x, g, ksize=ksize, **kw)


def _hw(a):
    return tuple(shape_of(a)[2:])


# ----- The three primitives -----
# ``kw`` is (stride, padding, dilation): stride=(sh, sw), padding=((top, bottom), (left,
# right)), dilation=(dh, dw), all ints, normalised by the entry points below.
conv2d_p = defprim(
    "conv2d", _conv2d,
    jvp=(lambda t, ans, x, w, **kw: _conv(t, w, kw),
         lambda t, ans, x, w, **kw: _conv(x, t, kw)),
    vjp=(lambda g, ans, x, w, **kw: _conv_t(g, w, _hw(x), kw),
         _grad_w_rule))

# ``conv2d_transpose_x(g, w, size)``: (N, O, Ho, Wo) → (N, C, *size); linear in g and in w.
conv2d_transpose_x_p = defprim(
    "conv2d_transpose_x", _conv2d_transpose_x,
    jvp=(lambda t, ans, g, w, size, **kw: _conv_t(t, w, size, kw),
         lambda t, ans, g, w, size, **kw: _conv_t(g, t, size, kw)),
    vjp=(lambda c, ans, g, w, size, **kw: _conv(c, w, kw),
         lambda c, ans, g, w, size, **kw: _conv_w(c, g, _hw(w), kw)))

# ``conv2d_grad_w(x, g, ksize)``: → (O, C, *ksize); linear in x and in g.
conv2d_grad_w_p = defprim(
    "conv2d_grad_w", _conv2d_grad_w,
    jvp=(lambda t, ans, x, g, ksize, **kw: _conv_w(t, g, ksize, kw),
         lambda t, ans, x, g, ksize, **kw: _conv_w(x, t, ksize, kw)),
    vjp=(lambda c, ans, x, g, ksize, **kw: _conv_t(g, c, _hw(x), kw),
         lambda c, ans, x, g, ksize, **kw: _conv(x, c, kw)))


# Floating-point work (for tape cost accounting): a multiply-add per output element and
# weight tap, 2·|out|·C·kh·kw, for the convolution and both of its transposes.
conv2d_p.flops = lambda ans, x, w: 2 * np.size(ans) * np.size(w) // np.shape(w)[0]
conv2d_transpose_x_p.flops = lambda ans, g, w: 2 * np.size(g) * np.size(w) // np.shape(w)[0]
conv2d_grad_w_p.flops = lambda ans, x, g: 2 * np.size(g) * np.size(ans) // np.shape(ans)[0]

# ----- Entry points (PyTorch's argument conventions) -----
def _pair(v, name):
    v = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(v) != 2 or not all(isinstance(i, (int, np.integer)) for i in v):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return tuple(int(i) for i in v)


def _single(v):
    """A 1-d size: an int or a 1-tuple (PyTorch's Conv1d stores ``(k,)``)."""
    return int(v) if isinstance(v, (int, np.integer)) else int(tuple(v)[0])


def _padding(padding, ksize, stride, dilation):
    """``padding`` as ((top, bottom), (left, right)); 'valid' is 0, 'same' pads
    d·(k-1) in all, the odd one on the bottom/right (PyTorch's choice), stride 1 only."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
            tot = [d * (k - 1) for k, d in zip(ksize, dilation)]
            return tuple((p // 2, p - p // 2) for p in tot)
        raise ValueError(f"padding must be 'valid', 'same', an int or a pair, got {padding!r}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"negative padding {padding!r}")
    return ((ph, ph), (pw, pw))


def conv_output_size(size, ksize, stride=1, padding=0, dilation=1):
    """``⌊(size + pads - d·(k-1) - 1)/s⌋ + 1`` per spatial axis (padding as the pair of
    pairs ``((top, bottom), (left, right))`` or PyTorch's int/pair)."""
    ksize, stride, dilation = _pair(ksize, "kernel_size"), _pair(stride, "stride"), \
        _pair(dilation, "dilation")
    if not (isinstance(padding, tuple) and isinstance(padding[0], tuple)):
        padding = _padding(padding, ksize, stride, dilation)
    return tuple((n + a + b - d * (k - 1) - 1) // s + 1
                 for n, (a, b), k, s, d in zip(size, padding, ksize, stride, dilation))


def conv2d(x, w, stride=1, padding=0, dilation=1):
    """Cross-correlation of ``x`` (N, C, H, W) — or one image (C, H, W) — with ``w``
    (O, C, kh, kw), as ``torch.nn.functional.conv2d`` without bias and groups:
    ``y[n,o,p,q] = Σ_{c,i,j} xpad[n, c, p·s + i·d, q·s + j·d] w[o,c,i,j]``.

    >>> conv2d(np.ones((1, 2, 3, 3)), np.ones((4, 2, 3, 3)), padding=1).shape
    (1, 4, 3, 3)
    """
    single = ndim_of(x) == 3
    if single:
        x = np.reshape(x, (1,) + shape_of(x))
    if ndim_of(x) != 4 or ndim_of(w) != 4:
        raise ValueError(f"conv2d needs x (N, C, H, W) and w (O, C, kh, kw), got shapes "
                         f"{shape_of(x)} and {shape_of(w)}")
    if shape_of(x)[1] != shape_of(w)[1]:
        raise ValueError(f"conv2d: x has {shape_of(x)[1]} channels, w expects "
                         f"{shape_of(w)[1]} (groups other than 1 are not supported)")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if min(stride) < 1 or min(dilation) < 1:
        raise ValueError("conv2d: stride and dilation must be positive")
    padding = _padding(padding, shape_of(w)[2:], stride, dilation)
    out = conv_output_size(shape_of(x)[2:], shape_of(w)[2:], stride, padding, dilation)
    if min(out) < 1:
        raise ValueError(f"conv2d: kernel {shape_of(w)[2:]} (dilation {dilation}) is larger "
                         f"than the padded input {shape_of(x)[2:]}")
    if type(x) is np.ndarray and type(w) is np.ndarray:
        # Plain arrays: nothing is recorded, so no window matrix is kept for a gradient.
        y = _conv2d(x, w, stride=stride, padding=padding, dilation=dilation, save=False)
    else:
        y = conv2d_p(x, w, stride=stride, padding=padding, dilation=dilation)
    return np.reshape(y, shape_of(y)[1:]) if single else y


def conv1d(x, w, stride=1, padding=0, dilation=1):
    """``x`` (N, C, L) or (C, L) with ``w`` (O, C, k): ``conv2d`` on a height-1 image.

    >>> conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)))
    array([[[3., 3., 3.]]])
    """
    single = ndim_of(x) == 2
    if single:
        x = np.reshape(x, (1,) + shape_of(x))
    if ndim_of(x) != 3 or ndim_of(w) != 3:
        raise ValueError(f"conv1d needs x (N, C, L) and w (O, C, k), got shapes "
                         f"{shape_of(x)} and {shape_of(w)}")
    sx, sw = shape_of(x), shape_of(w)
    y = conv2d(np.reshape(x, sx[:2] + (1, sx[2])), np.reshape(w, sw[:2] + (1, sw[2])),
               (1, _single(stride)), padding if isinstance(padding, str) else
               (0, _single(padding)), (1, _single(dilation)))
    sy = shape_of(y)
    return np.reshape(y, (sy[1], sy[3]) if single else (sy[0], sy[1], sy[3]))


def conv_transpose2d(x, w, stride=1, padding=0, output_padding=0, dilation=1):
    """The transpose of ``conv2d`` (``torch.nn.functional.conv_transpose2d`` without bias
    and groups): ``x`` (N, Cin, H, W) with ``w`` (Cin, Cout, kh, kw) gives
    (N, Cout, (H-1)·s - 2p + d·(k-1) + output_padding + 1, …).

    >>> conv_transpose2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), stride=2)[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    """
    single = ndim_of(x) == 3
    if single:
        x = np.reshape(x, (1,) + shape_of(x))
    if ndim_of(x) != 4 or ndim_of(w) != 4 or shape_of(x)[1] != shape_of(w)[0]:
        raise ValueError(f"conv_transpose2d needs x (N, Cin, H, W) and w (Cin, Cout, kh, kw), "
                         f"got shapes {shape_of(x)} and {shape_of(w)}")
    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    (ph, _), (pw, _) = _padding(padding, shape_of(w)[2:], stride, dilation)
    op = _pair(output_padding, "output_padding")
    if any(o >= max(s, d) for o, s, d in zip(op, stride, dilation)):
        raise ValueError(
            "output padding must be smaller than either stride or dilation, but got "
            f"output_padding_height: {op[0]} output_padding_width: {op[1]} stride_height: "
            f"{stride[0]} stride_width: {stride[1]} dilation_height: {dilation[0]} "
            f"dilation_width: {dilation[1]}")
    # The primitive is the transpose of conv2d with padding (top, bottom) onto an output of
    # a given size; its reverse rule needs that conv2d to give back x's size, which a
    # bottom padding in [p - op, p - op + s - 1] does (the top padding p alone places the
    # taps, so the values are PyTorch's). Where output_padding ≥ stride (PyTorch allows it
    # below the dilation) and no such padding is ≥ 0, the last op - p - s + 1 rows lie
    # past every tap: zeros, appended after.
    size, pads, extra = [], [], []
    for n, k, s, p, d, o in zip(shape_of(x)[2:], shape_of(w)[2:], stride, (ph, pw), dilation,
                                op):
        e = max(o - p - s + 1, 0) if o >= s else 0
        size.append((n - 1) * s - 2 * p + d * (k - 1) + o + 1 - e)
        pads.append((p, p if o < s else max(p - o, 0)))
        extra.append(e)
    if min(size) < 1:
        raise ValueError(f"conv_transpose2d: the output size {tuple(size)} is not positive")
    y = conv2d_transpose_x_p(x, w, size=tuple(size), stride=stride, padding=tuple(pads),
                             dilation=dilation)
    if any(extra):
        y = np.pad(y, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
    return np.reshape(y, shape_of(y)[1:]) if single else y


# Dependency structure (the sparsity mode): each output pixel, the input pixels and kernel
# taps that meet there (a constant kernel's zeros narrow it).
conv2d_p.sparsity = dependency.conv2d
conv2d_transpose_x_p.sparsity = dependency.conv2d_transpose_x
conv2d_grad_w_p.sparsity = dependency.conv2d_grad_w
