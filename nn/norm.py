"""Batch, instance, group and RMS normalisation (and ``layer_norm`` as a function), with
PyTorch's semantics.

Training mode normalises with the batch's statistics over every axis but the channel axis 1
(the biased variance), and updates the running statistics off the tape from the primal
values (``unbox`` strips every level of tracking): ``running ← (1 - m)·running + m·batch``,
with the unbiased variance, or a cumulative average when ``momentum=None``. Eval mode
normalises with the running statistics. ``y = (x - μ)/√(σ² + ε)·γ + β``.

>>> import numpy as np
>>> from autodiff import nn
>>> bn = nn.BatchNorm1d(2)
>>> y = bn(np.array([[1.0, 2.0], [3.0, 6.0]]))
>>> bn.running_mean
array([0.2, 0.4])
"""
import numpy as np

from autodiff.boxes import unbox
from autodiff.core import ndim_of, shape_of
from autodiff.ops.normalization import standardize

from .module import Module, Parameter

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm", "BatchNorm1d",
           "BatchNorm2d", "BatchNorm3d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "RMSNorm"]


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """``torch.nn.functional.batch_norm`` on (N, C, …): batch statistics when ``training``
    (then ``running_mean``/``running_var``, plain arrays or None, are updated in place),
    else the running ones."""
    nd = ndim_of(input)
    if nd < 2:
        raise ValueError(f"batch_norm needs an input (N, C, ...), got shape {shape_of(input)}")
    c = shape_of(input)[1]
    axes = (0,) + tuple(range(2, nd))
    bshape = (1, c) + (1,) * (nd - 2)
    if training:
        n = int(np.prod([shape_of(input)[a] for a in axes]))
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got "
                             f"input size {shape_of(input)}")
        if running_mean is not None or running_var is not None:
            # The running statistics are plain arrays, off the tape.
            plain = unbox(input)
            mean = np.mean(plain, axis=axes, keepdims=True)
            d = plain - mean
            var = np.mean(d * d, axis=axes, keepdims=True)
        if running_mean is not None:
            running_mean[...] = (1.0 - momentum) * running_mean + \
                momentum * np.reshape(mean, (c,))
        if running_var is not None:
            running_var[...] = (1.0 - momentum) * running_var + \
                momentum * np.reshape(var, (c,)) * (n / (n - 1))
        y = standardize(input, axes, eps)                 # one primitive, one record
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        d = input - np.reshape(running_mean, bshape)
        var = np.reshape(running_var, bshape)
        y = d / np.sqrt(var + eps)
    if weight is not None:
        y = y * np.reshape(weight, bshape)
    if bias is not None:
        y = y + np.reshape(bias, bshape)
    return y


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """``torch.nn.functional.layer_norm``: normalise over the last ``len(normalized_shape)``
    axes (biased variance), then scale by ``weight`` and shift by ``bias``."""
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (int(normalized_shape),)
    k = len(normalized_shape)
    if tuple(shape_of(input)[ndim_of(input) - k:]) != tuple(normalized_shape):
        raise ValueError(f"layer_norm: input of shape {shape_of(input)} does not end with "
                         f"normalized_shape {tuple(normalized_shape)}")
    y = standardize(input, tuple(range(-k, 0)), eps)     # one primitive, one record
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """``torch.nn.functional.group_norm`` on (N, C, …): the channels split into
    ``num_groups`` groups, each normalised over its channels and spatial axes (biased
    variance), then a per-channel scale and shift."""
    s = shape_of(input)
    if len(s) < 2:
        raise ValueError(f"group_norm needs an input (N, C, ...), got shape {s}")
    n, c = s[0], s[1]
    if c % num_groups:
        raise ValueError(f"group_norm: num_channels ({c}) must be divisible by num_groups "
                         f"({num_groups})")
    g = np.reshape(input, (n, num_groups, -1))
    mu = np.mean(g, axis=-1, keepdims=True)
    d = g - mu
    y = np.reshape(d / np.sqrt(np.mean(d * d, axis=-1, keepdims=True) + eps), s)
    bshape = (1, c) + (1,) * (len(s) - 2)
    if weight is not None:
        y = y * np.reshape(weight, bshape)
    return y if bias is None else y + np.reshape(bias, bshape)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """``torch.nn.functional.instance_norm`` on (N, C, …): each sample's channel normalised
    over its spatial axes (biased variance); the running statistics (when given) move as
    PyTorch's batch norm of the (1, N·C, …) reshape moves them: by the samples' mean of the
    per-sample means and unbiased variances."""
    s = shape_of(input)
    if len(s) < 3:
        raise ValueError(f"instance_norm needs an input (N, C, L, ...), got shape {s}")
    c = s[1]
    axes = tuple(range(2, len(s)))
    bshape = (1, c) + (1,) * (len(s) - 2)
    if use_input_stats:
        m = int(np.prod(s[2:]))
        if m <= 1:
            raise ValueError(f"Expected more than 1 spatial element when training, got input "
                             f"size {s}")
        # Statistics over the spatial axes only: no reshape of the batch axis, so the
        # recording is the same at every batch size (ONNX export's check).
        y = standardize(input, axes, eps)
        if running_mean is not None or running_var is not None:
            plain = unbox(input)            # (off the tape, as batch_norm's)
            mean = np.mean(plain, axis=axes)
            var = np.var(plain, axis=axes) * (m / (m - 1))
            if running_mean is not None:    # the samples' mean of the batch-norm update
                running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean.mean(0)
            if running_var is not None:
                running_var[...] = (1.0 - momentum) * running_var + momentum * var.mean(0)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm without input statistics needs running_mean and "
                             "running_var")
        y = (input - np.reshape(running_mean, bshape)) / np.sqrt(
            np.reshape(running_var, bshape) + eps)
    if weight is not None:
        y = y * np.reshape(weight, bshape)
    return y if bias is None else y + np.reshape(bias, bshape)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``torch.nn.functional.rms_norm``: ``x / √(mean(x²) + ε)`` over the last
    ``len(normalized_shape)`` axes, times ``weight``; ``ε`` defaults to the machine epsilon
    of the input's dtype (PyTorch's)."""
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (int(normalized_shape),)
    k = len(normalized_shape)
    if tuple(shape_of(input)[ndim_of(input) - k:]) != tuple(normalized_shape):
        raise ValueError(f"rms_norm: input of shape {shape_of(input)} does not end with "
                         f"normalized_shape {tuple(normalized_shape)}")
    if eps is None:
        dt = np.result_type(unbox(input))
        eps = float(np.finfo(dt if dt.kind == "f" else np.float64).eps)
    y = input / np.sqrt(np.mean(input * input, axis=tuple(range(-k, 0)), keepdims=True) + eps)
    return y if weight is None else y * weight


class RMSNorm(Module):
    """``RMSNorm(normalized_shape, eps=None, elementwise_affine=True)``: ``rms_norm`` with a
    ``weight`` of ones over ``normalized_shape``."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=np.float64):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape, self.eps = tuple(normalized_shape), eps
        self.elementwise_affine = elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype)) \
            if elementwise_affine else None

    def forward(self, x):
        return rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """``GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)``: ``group_norm`` with
    per-channel ``weight`` (ones) and ``bias`` (zeros)."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=np.float64):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups, self.num_channels, self.eps, self.affine = \
            num_groups, num_channels, eps, affine
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dtype))
            self.bias = Parameter(np.zeros(num_channels, dtype=dtype))
        else:
            self.weight = self.bias = None

    def forward(self, x):
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class _BatchNorm(Module):
    _dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float64, *, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self._bias = bool(affine and bias)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype)) if bias else None
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean[...] = 0.0
            self.running_var[...] = 1.0
            self.num_batches_tracked[...] = 0

    def forward(self, x):
        if ndim_of(x) not in self._dims:
            raise ValueError(f"{type(self).__name__}: expected "
                             f"{' or '.join(f'{d}D' for d in self._dims)} input (got "
                             f"{ndim_of(x)}D input)")
        if shape_of(x)[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): input has "
                             f"{shape_of(x)[1]} channels")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked[...] += 1
            if self.momentum is None:           # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if keep else None,
                          self.running_var if keep else None, self.weight, self.bias,
                          use_batch, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self._bias}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs, per channel C."""
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs, per channel C."""
    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of (N, C, D, H, W) inputs, per channel C."""
    _dims = (5,)


class _InstanceNorm(_BatchNorm):
    """PyTorch's defaults differ from batch norm's: no affine parameters and no running
    statistics unless asked; with them, eval mode uses the running ones."""
    _dims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, dtype=np.float64, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         bias=bias)

    def forward(self, x):
        if ndim_of(x) not in self._dims:
            raise ValueError(f"{type(self).__name__}: expected "
                             f"{' or '.join(f'{d}D' for d in self._dims)} input (got "
                             f"{ndim_of(x)}D input)")
        if ndim_of(x) == self._dims[0]:         # unbatched (C, ...): one sample
            return self.forward(x[None])[0]
        if shape_of(x)[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}({self.num_features}): input has "
                             f"{shape_of(x)[1]} channels")
        use_input = self.training or not self.track_running_stats
        return instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             use_input, 0.0 if self.momentum is None else self.momentum,
                             self.eps)


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or unbatched (C, L) inputs."""
    _dims = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or unbatched (C, H, W) inputs."""
    _dims = (3, 4)


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or unbatched (C, D, H, W) inputs."""
    _dims = (4, 5)
