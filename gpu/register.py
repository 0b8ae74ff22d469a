"""Device implementations of the primitives whose NumPy implementation does not dispatch
(it builds host arrays, or calls ndarray-only helpers): one ``def_impl`` each.

Everything else runs on the device through NumPy's own dispatch from the primitive's NumPy
implementation; no rule (JVP/VJP) is touched here.
"""
import numpy as np

from autodiff.core import def_impl, registry

from . import functions as F
from . import kernels as K
from .array import DeviceArray

P = registry


def _index_add(g, idx, shape):
    """Zeros of ``shape`` with ``g`` added at ``idx`` (repeated positions accumulate)."""
    z = F._filled(shape, 0, g.dtype)
    F._add_at(z, idx, g)
    return z


def_impl(P["index_add"], DeviceArray, _index_add)
def_impl(P["astype"], DeviceArray, lambda x, dtype: F.astype(x, dtype))
