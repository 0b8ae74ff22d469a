"""Pooling windows: the output size and the per-tap strided slices of PyTorch's geometry
(kernel, stride, padding, dilation, ceil mode), shared by the pooling primitives and their
sparsity rule. Plain integer arithmetic on shapes; it imports nothing from the engine."""

__all__ = ["pool_output_size", "geometry", "tap_slices"]


def pool_output_size(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling output size along one axis; in ceil mode the last window must
    start inside the input or its left padding."""
    if p > k // 2:
        raise ValueError(f"pad should be at most half of kernel size, got pad={p}, "
                         f"kernel_size={k}")
    num = n + 2 * p - d * (k - 1) - 1
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    if out < 1:
        raise ValueError(f"pooling: kernel {k} (dilation {d}, padding {p}) does not fit an "
                         f"input of size {n}")
    return out


def geometry(size, ksize, stride, padding, dilation, ceil_mode):
    """Output size and the padding (before, after) of each of the two pooled axes."""
    out, pads = [], []
    for n, k, s, p, d in zip(size, ksize, stride, padding, dilation):
        o = pool_output_size(n, k, s, p, d, ceil_mode)
        out.append(o)
        pads.append((p, max((o - 1) * s + d * (k - 1) + 1 - n - p, 0)))
    return tuple(out), tuple(pads)


def tap_slices(out, ksize, stride, dilation):
    (ho, wo), (kh, kw), (sh, sw), (dh, dw) = out, ksize, stride, dilation
    return [(Ellipsis, slice(i * dh, i * dh + sh * (ho - 1) + 1, sh),
             slice(j * dw, j * dw + sw * (wo - 1) + 1, sw))
            for i in range(kh) for j in range(kw)]
