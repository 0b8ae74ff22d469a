"""PyTorch's grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``.

Inside ``with nn.no_grad():`` operations on the eager tape record nothing: their results
are Variables that require no grad, and a parameter is updated in place
(``p -= lr * p.grad``, ``p.copy_(v)``, ``p[i] = v``). Transforms (``ad.grad`` and friends)
are not affected, as ``torch.func`` is not. The mode belongs to the thread (a context
variable), as in PyTorch.

>>> import numpy as np
>>> from autodiff import nn
>>> w = nn.Parameter(np.ones(3))
>>> with nn.no_grad():
...     y = 2.0 * w
...     w -= 0.5
>>> y.requires_grad, w.value.tolist()
(False, [0.5, 0.5, 0.5])
"""
import functools
import threading

from autodiff.core import eager_grad_enabled, grad_enabled, grad_off
from autodiff.reverse import grad_mode_changed

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled"]


def is_grad_enabled():
    """Whether eager operations record for ``backward()`` (PyTorch's ``is_grad_enabled``)."""
    return eager_grad_enabled()


_lock = threading.Lock()


def _set(mode):
    """Set this thread's mode; ``grad_off[0]`` counts the threads where it is off, and the
    eager record path checks the mode only while that count is not zero (the lock keeps
    the count and that choice consistent across threads)."""
    was = grad_enabled.get()
    if bool(was) != bool(mode):
        with _lock:
            grad_off[0] += 1 if was else -1
            grad_mode_changed()
    grad_enabled.set(mode)
    return was


class _Mode:
    """A block (``with``) or decorator that runs with recording on or off."""
    _mode = False

    def __new__(cls, *args, **kw):
        self = super().__new__(cls)
        if cls is not set_grad_enabled and len(args) == 1 and callable(args[0]) and not kw:
            self.__init__()                 # bare ``@nn.no_grad`` (PyTorch accepts it)
            return self(args[0])
        return self

    def __init__(self):
        self.mode = self._mode
        self._saved = []

    def __enter__(self):
        self._saved.append(_set(self.mode))
        return self

    def __exit__(self, *exc):
        _set(self._saved.pop())
        return False

    def __call__(self, func):
        mode = self.mode

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            prev = _set(mode)
            try:
                return func(*args, **kwargs)
            finally:
                _set(prev)
        return wrapper

    def clone(self):
        new = object.__new__(type(self))
        new.mode, new._saved = self.mode, []
        return new


class no_grad(_Mode):  # noqa: N801 - PyTorch's name
    """``with nn.no_grad():`` (or ``@nn.no_grad()``): eager operations record nothing; their
    results require no grad and leaves may be updated in place."""
    _mode = False


class enable_grad(_Mode):  # noqa: N801 - PyTorch's name
    """Recording back on, inside a ``no_grad`` block."""
    _mode = True


class inference_mode(_Mode):  # noqa: N801 - PyTorch's name
    """PyTorch's ``inference_mode(mode=True)``: here the same as ``no_grad`` (nothing is
    recorded; results are Variables that require no grad)."""

    def __init__(self, mode=True):
        super().__init__()
        self.mode = not mode


class set_grad_enabled(_Mode):  # noqa: N801 - PyTorch's name
    """``set_grad_enabled(mode)``: called, sets the mode of this thread from now on; as a
    ``with`` block, restores the previous mode at its end (PyTorch's semantics)."""

    def __init__(self, mode):
        super().__init__()
        self.mode = bool(mode)
        self._prev = _set(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        return False
