"""Seam blocks for derivatives through solvers (imported by seams.py): a root of SciPy's
``brentq`` (the scalar lane of ``custom_root``), a ``fixed_point`` and a ``custom_root``
with a dense tangent system. In random programs every transform, nesting, batching, dtype
and exception seam the fuzzer checks runs through them. The references solve the same
equations on plain values with SciPy or a plain Newton loop (their central differences
are the true derivatives)."""
import numpy as np
import scipy.optimize as so

import autodiff as ad
from autodiff.scipy import optimize as aso
from seams import _const, _size, register_block


def _brentq_block(rng, shapes, dtype):
    """x with x³ + 2x = Σ c·sin(v) (one real root): brentq on the scalar lane."""
    shape = shapes[-1]
    if _size(shape) > 12:
        return None
    c = _const(rng, shape, dtype, 0.5, 1.5)

    def F(x, v):
        return x ** 3 + 2.0 * x - np.sum(c * np.sin(v))

    # SciPy's root is a Python float (weakly typed); a float32 program makes it its dtype
    def fn(env):
        x = aso.brentq(F, -20.0, 20.0, args=(env[-1],), xtol=1e-15, rtol=8.9e-16)
        return (x * np.ones(())).astype(dtype)

    def ref(env):
        s = float(np.sum(c * np.sin(np.asarray(env[-1], dtype=np.float64))))
        return np.asarray(so.brentq(lambda x: x ** 3 + 2.0 * x - s, -20.0, 20.0, xtol=1e-15,
                                    rtol=8.9e-16), dtype)
    return fn, ref


def _fixed_point_block(rng, shapes, dtype):
    """m = 2 + tanh(J m / 2 + v) (a contraction) by SciPy's fixed_point, m of v's shape
    (2 + …: SciPy's test is relative, which entries near 0 could not meet)."""
    shape = shapes[-1]
    n = _size(shape)
    if n == 0 or n > 8:
        return None
    A = rng.uniform(-1, 1, (n, n))
    J = (A + A.T) / (2 * n)

    def T(m, v):
        return 2.0 + np.tanh(np.reshape(J @ np.reshape(m, -1), shape) / 2 + v)

    def fn(env):
        return aso.fixed_point(T, np.zeros(shape), args=(env[-1],), xtol=1e-14,
                               method="iteration", maxiter=10000)

    def ref(env):
        v = np.asarray(env[-1], dtype=np.float64)
        return so.fixed_point(lambda m: 2.0 + np.tanh(np.reshape(J @ np.reshape(m, -1), shape)
                                                      / 2 + v), np.zeros(shape), xtol=1e-14,
                              method="iteration", maxiter=10000)
    return fn, ref


def _custom_root_block(rng, shapes, dtype):
    """x with x + x³/3 = v elementwise, solved by Newton's method under ad.custom_root
    (the dense tangent system of n unknowns)."""
    shape = shapes[-1]
    if _size(shape) > 12:
        return None
    solve = ad.custom_root(lambda x, v: x + x ** 3 / 3 - v)(_newton)

    def fn(env):
        return solve(np.zeros(shape), env[-1])

    def ref(env):
        return _newton(np.zeros(shape), np.asarray(env[-1], dtype=np.float64))
    return fn, ref


def _newton(x0, v):
    x = np.array(x0, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    for _ in range(60):
        x = x - (x + x ** 3 / 3 - v) / (1 + x ** 2)
    return x


BLOCKS = [register_block("brentq_root", _brentq_block),
          register_block("fixed_point", _fixed_point_block),
          register_block("custom_root_newton", _custom_root_block)]
