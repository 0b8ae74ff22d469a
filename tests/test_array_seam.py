"""The engine's array-type seam (DESIGN.md, "Devices"): implementations per array type, and
zeros and seeds built like the value they stand beside, never as host arrays from shapes."""
import numpy as np

from autodiff.arrays import as_like, is_host, sum_to, zeros
from autodiff.core import Primitive, bind, def_impl


class Tagged:
    """A minimal foreign array type: NumPy calls with ``like=`` reach it."""
    def __init__(self, a):
        self.a = np.asarray(a)
        self.shape, self.dtype = self.a.shape, self.a.dtype

    def __array_function__(self, func, types, args, kwargs):
        if func is np.zeros:
            return Tagged(np.zeros(*args, **kwargs))
        if func is np.asarray:
            return Tagged(args[0])
        return NotImplemented


def test_numpy_impl_is_untouched_until_another_type_registers():
    host = lambda x: ("numpy", x)                       # noqa: E731
    p = Primitive("seam_probe", host)
    assert p.impl is host and p.impls is None           # the CPU path: no wrapper at all
    def_impl(p, Tagged, lambda x: ("tagged", x))
    t = Tagged([1.0])
    assert bind(p, t)[0] == "tagged"
    assert bind(p, np.ones(2))[0] == "numpy"
    assert bind(p, [t, t])[0] == "tagged"              # a list argument: its first element
    assert bind(p, 2.0)[0] == "numpy"


def test_zeros_and_seeds_follow_the_value_type():
    assert type(zeros((2, 3), np.float32, like=np.ones(1))) is np.ndarray
    assert zeros((2,), np.float32, like=1.0).dtype == np.float32
    z = zeros((2, 3), np.float64, like=Tagged([1.0]))
    assert type(z) is Tagged and z.shape == (2, 3)
    s = as_like(np.eye(2), Tagged([1.0]))
    assert type(s) is Tagged and np.array_equal(s.a, np.eye(2))
    assert as_like(np.eye(2), np.ones(1)) is not None and is_host(np.float32(1))
    assert not is_host(Tagged([1.0]))


def test_sum_to_keeps_batch_axes():
    g = np.ones((4, 2, 3))
    assert sum_to(g, np.ones((1, 3)), nb=1).shape == (4, 1, 3)
    assert np.all(sum_to(g, np.ones(3), nb=1) == 2.0)
