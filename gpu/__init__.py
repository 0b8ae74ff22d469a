"""autodiff.gpu: a device array NumPy code runs on unchanged, on Numba CUDA kernels.

``gpu.to_device(x)`` puts an array on the GPU; NumPy calls on it run kernels; the engine's
transforms differentiate functions of it with their existing rules (this package adds
implementations, never derivative math), and the derivatives are device arrays too.
Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) everything runs on the CPU.

>>> import numpy as np
>>> import autodiff as ad
>>> from autodiff import gpu
>>> x = gpu.to_device(np.array([0.5, 1.0]))
>>> g = ad.grad(lambda x: np.sum(np.sin(x) * x ** 2))(x)
>>> type(g).__name__, g.to_host().round(4).tolist()
('DeviceArray', [0.6988, 2.2232])
"""
from . import kernels as _kernels
from .array import DeviceArray, asarray, to_device
from . import register as _register  # noqa: F401  (device implementations of primitives)

__all__ = ["DeviceArray", "to_device", "asarray", "is_available", "synchronize"]


def is_available():
    """Whether kernels can run: a CUDA GPU, or Numba's simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return _kernels.is_available()


def synchronize():
    """Wait for every kernel launched so far (timings need it; results never do)."""
    _kernels.synchronize()
