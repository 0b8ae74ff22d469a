"""Defects at the seams between boxes, sweeps and transforms: writes through views, sweeps
that raise, copying and pickling, formatting, leaked values, hazards a NumPy user types,
and tapes left open by abandoned generators. Each test failed before its fix."""
import copy
import gc
import math
import pickle

import numpy as np
import pytest

import autodiff as ad
from autodiff.core import Primitive
from autodiff.reverse import _open

X3 = np.array([0.3, -1.2, 2.0])


# ----- 1. Writes through views are refused, never lost -----
VIEWS = {
    "reshape": lambda x: x.reshape(3, 1),
    "np.reshape": lambda x: np.reshape(x, (1, 3)),
    "ravel": lambda x: x.reshape(3, 1).ravel(),
    "T": lambda x: x.reshape(3, 1).T,
    "transpose": lambda x: np.transpose(x.reshape(3, 1)),
    "swapaxes": lambda x: x.reshape(3, 1).swapaxes(0, 1),
    "moveaxis": lambda x: np.moveaxis(x.reshape(3, 1), 0, 1),
    "atleast_2d": lambda x: np.atleast_2d(x),
    "expand_dims": lambda x: np.expand_dims(x, 0),
    "squeeze": lambda x: np.squeeze(x.reshape(1, 3)),
    "basic index": lambda x: x.reshape(3, 1)[:, 0],
}


@pytest.mark.parametrize("name", VIEWS)
@pytest.mark.parametrize("transform", [ad.grad, lambda f: ad.jacfwd(f)])
def test_write_through_view_is_refused(name, transform):
    def f(x):
        y = VIEWS[name](x)
        y[(0,) * y.ndim] = 10.0
        return np.sum(x ** 2)
    xv = X3.copy()
    VIEWS[name](xv)[(0,) * 2 if name not in ("ravel", "squeeze", "basic index") else (0,)] = 10.0
    assert np.sum(xv ** 2) == pytest.approx(105.44)   # NumPy carries the write into x
    with pytest.raises(TypeError, match=r"into the result of .*assign into the original"
                                         r"|into the result of .*Assign into the original"):
        transform(f)(X3)


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/=", "**="])
def test_inplace_operator_on_view_is_refused(op):
    def f(x):
        y = x.reshape(3, 1)
        exec(f"y {op} 2.0")
        return np.sum(x ** 2)

    def g(x):              # written out: exec would hide the store from the check
        y = x.T.reshape(3, 1)
        y *= 2.0
        return np.sum(x ** 2)
    with pytest.raises(TypeError, match=r"y \*= v into the result of reshape"):
        ad.grad(g)(X3)
    with pytest.raises(TypeError, match="into the result of reshape"):
        ad.grad(f)(X3)


def test_inplace_operator_stored_back_into_container_still_works():
    def f(x):
        m = np.zeros((2, 3), like=x)
        m[0] += x                   # x[i] += v: stored back by x[i] = ...
        m[1] -= x ** 2
        return np.sum(m ** 2)
    g = ad.grad(f)(X3)
    np.testing.assert_allclose(g, 2 * X3 + 4 * X3 ** 3)
    np.testing.assert_allclose(ad.jacfwd(f)(X3), g)
    ad.check_grads(f, (X3,), order=2)


def test_loop_row_inplace_is_refused():
    def f(x):
        m = np.zeros((2, 3), like=x) + 1.0
        for row in m:
            row *= x                # NumPy scales m's rows; ours would be lost
        return np.sum(m)
    with pytest.raises(TypeError, match="basic indexing"):
        ad.grad(f)(X3)


def fd(f, x, eps=1e-6):
    return np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in np.eye(x.size)])


def test_same_shape_reshape_and_flatten():
    # x.reshape(x.shape) is x itself (writes reach x, as through NumPy's view);
    # flatten is a copy in NumPy: writes into it stay in it.
    def f(x):
        y = x.reshape(x.shape)
        y[0] = 2.0 * x[1]
        z = x.flatten()
        z[1] = 100.0
        return np.sum(x ** 2) + np.sum(z)
    numpy_f = lambda x: f(x.copy())                     # NumPy's semantics, plain arrays
    assert ad.grad(f)(X3.copy()) is not None
    assert ad.value_and_grad(f)(X3)[0] == pytest.approx(numpy_f(X3))
    np.testing.assert_allclose(ad.grad(f)(X3), fd(numpy_f, X3), rtol=1e-6)
    np.testing.assert_allclose(ad.jacfwd(f)(X3), fd(numpy_f, X3), rtol=1e-6)


# ----- 2. A sweep that raises leaves no state behind -----
class Flaky:
    """A primitive (unregistered) whose reverse rule raises the first ``n`` times."""
    def __init__(self, exc, n=1):
        self.left = n
        self.exc = exc

        def vjp(g, ans, x):
            if self.left:
                self.left -= 1
                raise exc("planted failure")
            return 3.0 * g
        self.prim = Primitive("flaky", lambda x: 3.0 * x, jvp=(lambda t, ans, x: 3.0 * t,),
                              vjp=(vjp,))

    def __call__(self, x):
        return self.prim(x)


@pytest.mark.parametrize("exc", [ValueError, KeyboardInterrupt])
def test_failed_sweep_leaves_no_stale_cotangent(exc):
    flaky = Flaky(exc)
    x = ad.Variable(np.array([0.5, 2.0]))
    w = ad.Variable(1.5)
    y = np.sum(flaky(x * w) + x * x)
    with pytest.raises(exc, match="planted"):
        y.backward()
    assert x.grad is None and w.grad is None
    assert x.g is None and w.g is None
    y2 = np.sum(flaky(x * w) + x * x)           # a fresh computation through the same leaves
    y2.backward()
    np.testing.assert_allclose(x.grad, 3.0 * 1.5 + 2 * x.value)
    np.testing.assert_allclose(w.grad, 3.0 * np.sum(x.value))


@pytest.mark.parametrize("exc", [ValueError, KeyboardInterrupt])
def test_failed_sweep_retained_graph_sweeps_again(exc):
    flaky = Flaky(exc)
    x = ad.Variable(np.array([0.5, 2.0]))
    with ad.Tape() as tape:
        y = np.sum(np.sin(flaky(x)) * x)
    with pytest.raises(exc):
        y.backward(retain_graph=True)
    assert x.grad is None
    assert all(r.adjoint is None for r in tape)      # no adjoint from the failed sweep
    y.backward(retain_graph=True)
    xv = x.value
    np.testing.assert_allclose(x.grad, 3 * np.cos(3 * xv) * xv + np.sin(3 * xv))


def test_failed_sweep_inside_grad_then_clean_grad():
    flaky = Flaky(ValueError)
    f = lambda x: np.sum(flaky(x) * x)
    with pytest.raises(ValueError):
        ad.grad(f)(X3)
    np.testing.assert_allclose(ad.grad(f)(X3), 6 * X3)


def test_optimizer_updates_after_failed_sweep():
    from autodiff import nn
    flaky = Flaky(KeyboardInterrupt)
    p = nn.Parameter(np.array([1.0, -2.0]))
    opt = nn.optim.SGD([p], lr=0.1)
    loss = lambda: np.sum(flaky(p) ** 2) + np.sum(p * p)    # p * p is swept first
    with pytest.raises(KeyboardInterrupt):
        loss().backward()
    opt.zero_grad()
    loss().backward()
    assert p.grad is not None
    before = p.value.copy()
    opt.step()
    np.testing.assert_allclose(p.value, before - 0.1 * 20 * before)
