"""PyTorch's padding modules (``nn.ZeroPad2d``, ``nn.ReflectionPad1d``, …): each is
``F.pad`` of its mode with a fixed padding, so their derivatives are those of ``F.pad`` (a
gather whose adjoint adds the padded copies back into their sources)."""
from . import functional as F
from .module import Module


def _padding(padding, n):
    """An int pads all ``2n`` sides alike; else a ``2n``-tuple ``(left, right, top, …)``."""
    if isinstance(padding, int):
        return (padding,) * (2 * n)
    padding = tuple(int(p) for p in padding)
    if len(padding) != 2 * n:
        raise ValueError(f"padding must be an int or a {2 * n}-tuple, got {padding}")
    return padding


class _PadNd(Module):
    mode = "constant"
    n = 1           # the number of trailing (spatial) axes padded

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding(padding, self.n)

    def forward(self, input):
        if self.mode != "constant" and not self.n + 1 <= input.ndim <= self.n + 2:
            raise ValueError(f"{type(self).__name__}: expected a {self.n + 1}-d or "
                             f"{self.n + 2}-d (batched) input, got {input.ndim}-d")
        return F.pad(input, self.padding, self.mode, getattr(self, "value", None))

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last axis with ``value``: ``padding = (left, right)`` (or an int)."""
    n = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two axes with ``value``: ``(left, right, top, bottom)``."""
    n = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three axes with ``value``: ``(left, right, top, bottom, front, back)``."""
    n = 3


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad1d(_ZeroPadNd):
    """Pad the last axis with zeros."""
    n = 1


class ZeroPad2d(_ZeroPadNd):
    """Pad the last two axes with zeros."""
    n = 2


class ZeroPad3d(_ZeroPadNd):
    """Pad the last three axes with zeros."""
    n = 3


class ReflectionPad1d(_PadNd):
    """Mirror the last axis about its edge entries (not repeating them)."""
    mode, n = "reflect", 1


class ReflectionPad2d(_PadNd):
    """Mirror the last two axes about their edges."""
    mode, n = "reflect", 2


class ReflectionPad3d(_PadNd):
    """Mirror the last three axes about their edges."""
    mode, n = "reflect", 3


class ReplicationPad1d(_PadNd):
    """Repeat the edge entries of the last axis."""
    mode, n = "replicate", 1


class ReplicationPad2d(_PadNd):
    """Repeat the edges of the last two axes."""
    mode, n = "replicate", 2


class ReplicationPad3d(_PadNd):
    """Repeat the edges of the last three axes."""
    mode, n = "replicate", 3


class CircularPad1d(_PadNd):
    """Wrap the last axis around (periodic padding)."""
    mode, n = "circular", 1


class CircularPad2d(_PadNd):
    """Wrap the last two axes around."""
    mode, n = "circular", 2


class CircularPad3d(_PadNd):
    """Wrap the last three axes around."""
    mode, n = "circular", 3
