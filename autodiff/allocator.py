"""The C allocator's thresholds for tapes of large arrays (glibc on Linux only).

A reverse sweep keeps every intermediate array of its recording alive until the sweep
frees them all at once. glibc's defaults then hand that memory back to the system after
every sweep: arrays above the mmap threshold (128 KiB, raised only as large blocks are
freed) are mapped and unmapped per allocation, and a free top of the heap above the trim
threshold is returned. The next sweep takes it again through page faults, and each page
is zeroed. With 20,000 numbers per array (160 KiB) the eager gradient through a Fermi
level went from 2.5 to 1.45 times its solve when the thresholds were raised
(``benchmarks/analysis_solvers.md``).

So ``import autodiff`` sets arrays of up to ``MMAP_MAX`` bytes to come from the heap and
keeps up to ``TRIM_KEEP`` bytes of freed heap for the next sweep, as PyTorch's caching
allocator keeps its blocks. Left alone: where glibc is not the C library, where the
process has set either threshold itself (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` in the environment), and with
``AUTODIFF_MALLOC=0``. :func:`tuned` says what was done.
"""
import ctypes
import ctypes.util
import os
import sys

__all__ = ["tuned"]

MMAP_MAX = 16 << 20         # arrays up to 16 MiB from the heap (2 million float64s)
TRIM_KEEP = 64 << 20        # up to 64 MiB of freed heap kept for the next sweep

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3        # glibc's mallopt parameters
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
_state = ["not tried"]


def tuned():
    """Why the thresholds were (or were not) set: ``"set"``, ``"off"``
    (``AUTODIFF_MALLOC=0``), ``"environment"`` (the process set its own), ``"not glibc"``
    or ``"failed"``."""
    return _state[0]


def _tune():
    if os.environ.get("AUTODIFF_MALLOC", "1") == "0":
        _state[0] = "off"
        return
    if any(k in os.environ for k in _ENV):
        _state[0] = "environment"
        return
    if not sys.platform.startswith("linux"):
        _state[0] = "not glibc"
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        _state[0] = "not glibc"
        return
    if not hasattr(libc, "gnu_get_libc_version"):      # musl: mallopt ignores these knobs
        _state[0] = "not glibc"
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_MAX) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_KEEP) == 1
    _state[0] = "set" if ok else "failed"


_tune()
