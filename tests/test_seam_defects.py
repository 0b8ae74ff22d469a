"""Defects at the seams between boxes, sweeps and transforms: writes through views, sweeps
that raise, copying and pickling, formatting, leaked values, hazards a NumPy user types,
and tapes left open by abandoned generators. Each test failed before its fix."""
import copy
import gc
import math
import pickle
import re

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


# Views NumPy's functions return (not NumPy's indexing): each names the x[k] it writes to.
FUNCTION_VIEWS = {
    "flip": (lambda x: np.flip(x), 2), "flipud": (lambda x: np.flipud(x), 2),
    "fliplr": (lambda x: np.fliplr(x.reshape(1, 3))[0], 2),
    "rot90 twice": (lambda x: np.rot90(x.reshape(1, 3), 2)[0], 2),
    "split": (lambda x: np.split(x, 3)[1], 1), "array_split": (lambda x: np.array_split(x, 2)[1], 2),
    "hsplit": (lambda x: np.hsplit(x, 3)[2], 2),
    "vsplit": (lambda x: np.vsplit(x.reshape(3, 1), 3)[1][0], 1),
    "unstack": (lambda x: np.unstack(x.reshape(1, 3))[0], 0),
}


@pytest.mark.parametrize("name", FUNCTION_VIEWS)
@pytest.mark.parametrize("transform", [ad.grad, lambda f: ad.jacfwd(f)])
def test_write_through_a_functions_view_is_refused(name, transform):
    """np.flip, np.split, np.unstack, … return views in NumPy: a write into one reaches x
    there, so here it is refused (it used to be silently lost, value and derivative)."""
    view, k = FUNCTION_VIEWS[name]
    xv = X3.copy()
    view(xv)[0] = 10.0
    assert xv[k] == 10.0                 # NumPy carries the write into x

    def f(x):
        y = view(x * 1.0)
        y[0] = 10.0 * x[0]
        return np.sum(y ** 2)
    with pytest.raises(TypeError, match=r"into the result of (np\.|basic indexing)"):
        transform(f)(X3)


def test_write_into_a_diagonal_is_refused():
    """NumPy's diagonal is a read-only view (a write raises); a tracked one refuses too."""
    with pytest.raises(ValueError):
        np.diagonal(np.eye(2))[0] = 1.0

    def f(x):
        d = np.diagonal(np.outer(x, x))
        d[0] = 1.0
        return np.sum(d)
    with pytest.raises(TypeError, match="into the result of np.diagonal"):
        ad.grad(f)(X3)


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


# ----- 3. copy, deepcopy and pickle of tracked values -----
@pytest.mark.parametrize("cp", [copy.copy, copy.deepcopy])
def test_copy_inside_transform_is_differentiable(cp):
    assert ad.grad(lambda x: x * cp(x))(0.7) == pytest.approx(1.4)
    assert ad.derivative(lambda x: x * cp(x))(0.7) == pytest.approx(1.4)
    f = lambda x: np.sum(x * cp(x) ** 2)
    np.testing.assert_allclose(ad.grad(f)(X3), 3 * X3 ** 2)
    np.testing.assert_allclose(ad.jacfwd(f)(X3), 3 * X3 ** 2)
    np.testing.assert_allclose(ad.hessian(f)(X3), np.diag(6 * X3))
    ad.check_grads(f, (X3,), order=2)


def test_deepcopy_of_containers_of_tracked_values():
    def f(x):
        d = copy.deepcopy({"a": x, "b": [x ** 2, (np.sin(x),)]})
        return np.sum(d["a"] * d["b"][0] + d["b"][1][0])
    want = 3 * X3 ** 2 + np.cos(X3)
    np.testing.assert_allclose(ad.grad(f)(X3), want)
    np.testing.assert_allclose(ad.jacfwd(f)(X3), want)
    ad.check_grads(f, (X3,), order=2)


def test_copy_of_eager_values():
    v = ad.Variable(np.array([1.0, 2.0]))
    (v * v).sum().backward()
    w = copy.deepcopy(v)
    assert w is not v and w.is_leaf and w.requires_grad
    assert hash(w) != hash(v) and {v: 1}[v] == 1          # identity hash, kept
    np.testing.assert_array_equal(w.value, v.value)
    np.testing.assert_array_equal(w.grad, v.grad)
    assert w.value is not v.value
    d = ad.Dual(np.array([1.0, 2.0]), np.array([1.0, 0.0]))
    e = copy.deepcopy(d)
    np.testing.assert_array_equal(e.tangent, d.tangent)
    # a recorded copy: the derivative flows through it
    y = ad.Variable(0.5)
    z = copy.copy(y * 2.0) * 3.0
    z.backward()
    assert y.grad == pytest.approx(6.0)


def test_pickle_inside_transform_is_refused():
    with pytest.raises(TypeError, match=r"pickl.*x\.value"):
        ad.grad(lambda x: (pickle.dumps(x), x)[1])(1.0)
    with pytest.raises(TypeError, match=r"pickl.*x\.value"):
        ad.jacfwd(lambda x: (pickle.dumps(x), x)[1])(X3)


def test_pickle_of_eager_leaves_round_trips():
    v = pickle.loads(pickle.dumps(ad.Variable(np.array([1.0, 2.0]))))
    assert type(v) is ad.Variable and v.requires_grad and v.is_leaf
    np.testing.assert_array_equal(v.value, [1.0, 2.0])
    d = pickle.loads(pickle.dumps(ad.Dual(1.0, 2.0)))
    assert (d.value, d.tangent) == (1.0, 2.0)
    with pytest.raises(TypeError, match="pickl"):
        pickle.dumps(ad.Variable(1.0) * 2.0)          # a record of the eager tape


# ----- 4. Formatting and rounding show the primal -----
@pytest.mark.parametrize("transform", [ad.grad, ad.derivative])
def test_format_and_round_give_the_primal(transform):
    seen = {}

    def f(x):
        seen.update(fmt=f"{x:.3f}", e=format(x, ".2e"), r=round(x), r2=round(x, 2),
                    fl=math.floor(x), ce=math.ceil(x), tr=math.trunc(-x), s=str(x))
        return x * x
    assert transform(f)(2.567) == pytest.approx(5.134)
    assert seen["fmt"] == "2.567" and seen["e"] == "2.57e+00"
    assert seen["r"] == 3 and type(seen["r"]) is int
    assert seen["r2"] == pytest.approx(2.57)
    assert (seen["fl"], seen["ce"], seen["tr"]) == (2, 3, -2)
    assert "2.567" in seen["s"]


def test_round_of_0d_array_and_refusal_for_vectors():
    assert ad.grad(lambda x: (round(x.sum(), 1), x.sum())[1])(X3) is not None
    with pytest.raises(TypeError, match=r"round\(x\) needs a scalar.*shape \(3,\)"):
        ad.grad(lambda x: (round(x), x.sum())[1])(X3)
    with pytest.raises(TypeError, match="needs a scalar"):
        ad.grad(lambda x: (f"{x:.2f}", x.sum())[1])(X3)


# ----- 5. A value that leaked out of its transform is a clear error -----
def _leak(transform, x):
    box = []
    def f(y):
        box.append(y * 1.0)
        return np.sum(y * y)
    transform(f)(x)
    return box[0]


LEAK_USES = {
    "np.sum": lambda l: np.sum(l),
    "dot": lambda l: np.dot(l, l),
    "in a later grad": lambda l: ad.grad(lambda y: np.sum(y * l))(np.ones(3)),
    "in a later jacfwd": lambda l: ad.jacfwd(lambda y: np.sum(l * y))(np.ones(3)),
    "assignment": lambda l: l.__setitem__(0, 1.0),
    "copy": lambda l: copy.deepcopy(l),
    "reshape": lambda l: l.reshape(3, 1),
    # the operator and ufunc lanes (they made a stale box of the closed level)
    "operator": lambda l: l * 2.0,
    "reflected operator": lambda l: 2.0 - l,
    "negation": lambda l: -l,
    "power": lambda l: l ** 2,
    "ufunc": lambda l: np.sin(l),
    "binary ufunc": lambda l: np.maximum(l, 0.5),
    "with a live value": lambda l: l + ad.Variable(np.ones(3)),
}


@pytest.mark.parametrize("use", LEAK_USES)
@pytest.mark.parametrize("transform", ["grad", "jacfwd", "jacrev", "hessian"])
def test_leaked_value_is_a_clear_error(transform, use):
    l = _leak(getattr(ad, transform), X3)
    with pytest.raises(TypeError, match=r"after that transform returned: it leaked"):
        LEAK_USES[use](l)


@pytest.mark.parametrize("use", ["operator", "ufunc", "negation"])
def test_a_leaked_value_of_jvp_is_a_clear_error(use):
    box = []
    ad.jvp(lambda y: (box.append(y * 1.0), np.sin(y))[1], (X3,), (X3,))
    with pytest.raises(TypeError, match=r"forward-mode.*after that transform returned"):
        LEAK_USES[use](box[0])


def test_leaked_batched_dual_in_an_operator():
    l = _leak(ad.jacfwd, X3)                 # its tangent carries jacfwd's batch axis
    with pytest.raises(TypeError, match="forward-mode.*leaked"):
        l * 2.0


def test_leaked_variable_backward_is_a_clear_error():
    l = _leak(ad.grad, X3)
    with pytest.raises(TypeError, match="reverse-mode.*swept by backward.*leaked"):
        l.backward(np.ones(3))
    with pytest.raises(TypeError, match="leaked"):
        np.sum(l * 2.0).backward()               # built from it by the operator lane


def test_values_returned_by_vjp_stay_usable():
    out, vjp_fn = ad.vjp(lambda x: np.sin(x) * x, X3)
    np.testing.assert_allclose(vjp_fn(np.ones(3))[0], np.cos(X3) * X3 + np.sin(X3))
    np.testing.assert_allclose(vjp_fn(np.ones(3))[0], np.cos(X3) * X3 + np.sin(X3))


# ----- 7. A tape opened in an abandoned generator records nothing of its caller -----
def test_tape_in_abandoned_generator():
    def gen(x):
        with ad.Tape() as t:
            y = x * 2.0
            yield t
            yield y + 1.0

    x = ad.Variable(1.5)
    base = _open[0]
    g = gen(x)
    tape = next(g)
    assert len(tape) == 1
    w = np.sin(x * 3.0) + x                  # the caller's work, while g is suspended
    assert len(tape) == 1 and not w.keep
    next(g)                                   # resumed: records again
    assert len(tape) == 2
    del g
    gc.collect()
    assert _open[0] == base                  # the hot path pays for no tape again
    (x * 4.0).backward()
    assert len(tape) == 2


def test_tape_closed_by_a_different_generator_order():
    # Tapes entered in one order and closed in another leave the others open.
    def gen():
        with ad.Tape() as t:
            yield t
    g = gen()
    inner = next(g)
    with ad.Tape() as outer:
        del g
        gc.collect()
        y = ad.Variable(2.0) * 3.0
    assert len(outer) == 2 and len(inner) == 0
    assert y.keep


# ----- 6. The hazards a NumPy user types: each works or names itself and the fix -----
import operator  # noqa: E402

import scipy.integrate  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.sparse  # noqa: E402
import scipy.signal  # noqa: E402
import scipy.special  # noqa: E402
import scipy.stats  # noqa: E402

from autodiff.boxes import unbox  # noqa: E402

A = np.array([[2.0, 0.5], [0.5, 1.0]])
S = "x[0, 0]"          # a tracked scalar
WORKS = None
HAZARDS = [
    # (what the user types, the call, a pattern the error names; WORKS: same as NumPy)
    ("x.data", lambda x: x.data, r"x\.data.*x\.value"),
    ("x.flat[i]", lambda x: x.flat[1], WORKS),
    ("x.flat[i] = v", lambda x: x.flat.__setitem__(1, 1.0), r"x\.flat.*Assign into the original"),
    ("x.view()", lambda x: x.view(), WORKS),
    ("x.view()[i] = v", lambda x: x.view().__setitem__(0, 1.0), r"x\.view\(\)"),
    ("x.view(dtype)", lambda x: x.view(np.int64), r"x\.view\(.*int64"),
    ("np.zeros(x)", lambda x: np.zeros(x[0, 0]), r"integer|Variable|Dual"),
    ("x.reshape(x)", lambda x: x.reshape(x[0, 0]), r"shape"),
    ("range(x)", lambda x: range(x[0, 0]), r"operator\.index.*range"),
    ("np.float64(x)", lambda x: np.float64(x[0, 0]), r"np\.float64\(x\)"),
    ("float(x)", lambda x: float(x[0, 0]), r"float\(x\)"),
    ("int(x)", lambda x: int(x[0, 0]), r"int\(x\)"),
    ("complex(x)", lambda x: complex(x[0, 0]), r"complex\(x\)"),
    ("x.item()", lambda x: x.item(), r"x\.item\(\)"),
    ("x.tolist()", lambda x: x.tolist(), r"x\.tolist\(\)"),
    ("np.asarray(x)", lambda x: np.asarray(x), r"np\.asarray\(x\)"),
    ("np.ascontiguousarray(x)", lambda x: np.ascontiguousarray(x), r"np\.asarray\(x\)"),
    ("math.sin(x)", lambda x: math.sin(x[0, 0]), r"math"),
    ("scipy.linalg.expm", lambda x: scipy.linalg.expm(x),
     r"scipy\.linalg\.expm.*autodiff\.scipy\.linalg\.expm"),
    ("scipy.linalg.solve", lambda x: scipy.linalg.solve(x, np.ones(2)),
     r"scipy\.linalg\.solve.*autodiff\.scipy\.linalg\.solve"),
    ("scipy.linalg.lstsq", lambda x: scipy.linalg.lstsq(x, np.ones(2)), r"scipy\.linalg\.lstsq"),
    ("scipy.linalg.det", lambda x: scipy.linalg.det(x), r"scipy\.linalg\.det"),
    ("scipy.stats.norm.pdf", lambda x: scipy.stats.norm.pdf(x),
     r"scipy\.stats\.norm\.pdf.*autodiff\.scipy\.stats\.norm\.pdf"),
    ("scipy.stats.gamma.logpdf", lambda x: scipy.stats.gamma.logpdf(x + 2.0, 2.0),
     r"scipy\.stats\.gamma\.logpdf"),
    ("scipy.special.logsumexp", lambda x: scipy.special.logsumexp(x),
     r"scipy\.special\.logsumexp.*autodiff\.scipy\.special\.logsumexp"),
    ("scipy.integrate.quad", lambda x: scipy.integrate.quad(lambda t: t * x[0, 0], 0, 1),
     r"scipy\.integrate\.quad"),
    ("scipy.signal.convolve", lambda x: scipy.signal.convolve(x, x), r"scipy\.signal\.convolve"),
    # a constructor is named by its class (it was named scipy.sparse.__init__)
    ("scipy.sparse.csr_array", lambda x: scipy.sparse.csr_array(
        (x[0], np.array([0, 1]), np.array([0, 1, 2])), shape=(2, 2)),
     r"^scipy\.sparse\.csr_array converts.*`autodiff\.scipy\.sparse\.csr_array`"),
    ("scipy.sparse.coo_matrix", lambda x: scipy.sparse.coo_matrix(
        (x[0], (np.array([0, 1]), np.array([0, 1]))), shape=(2, 2)),
     r"^scipy\.sparse\.coo_matrix converts.*`autodiff\.scipy\.sparse\.csr_array`"),
    ("x.astype(int)", lambda x: x.astype(int), r"astype\(int64\)"),
    ("x.astype(bool)", lambda x: x.astype(bool), r"astype\(bool\)"),
    ("x.astype(float32)", lambda x: x.astype(np.float32), WORKS),
    ("bytes(x)", lambda x: bytes(x), r"bytes\(x\)"),
    ("x.tobytes()", lambda x: x.tobytes(), r"x\.tobytes\(\)"),
    ("x.tofile(f)", lambda x: x.tofile("never-written"), r"x\.tofile\(\)"),
    ("np.save", lambda x: np.save("never-written.npy", x), r"np\.save"),
    ("memoryview(x)", lambda x: memoryview(x), r"memoryview"),
    ("x.nbytes", lambda x: x.nbytes, WORKS),
    ("x.itemsize", lambda x: x.itemsize, WORKS),
    ("x.strides", lambda x: x.strides, r"x\.strides.*x\.value\.strides"),
    ("x.flags", lambda x: x.flags, r"x\.flags"),
    ("x.ctypes", lambda x: x.ctypes, r"x\.ctypes"),
    ("x.base", lambda x: x.base, r"x\.base"),
    ("x.resize(s)", lambda x: x.resize((4,)), r"x\.resize"),
    ("x.put(i, v)", lambda x: x.put(0, 1.0), r"x\.put"),
    ("x.partition(k)", lambda x: x.partition(1), r"x\.partition"),
    ("x.shape = s", lambda x: setattr(x, "shape", (4,)), r"x\.shape = s.*x\.reshape"),
    ("x.any()", lambda x: x.any(), WORKS),
    ("x.all()", lambda x: x.all(), WORKS),
    ("x.nonzero()", lambda x: x.nonzero(), WORKS),
    ("x.argsort()", lambda x: x.argsort(), WORKS),
    ("np.isfinite(x)", lambda x: np.isfinite(x), WORKS),
    ("len(x)", lambda x: len(x), WORKS),
    ("np.shape(x)", lambda x: np.shape(x), WORKS),
    ("x.T.flat[i]", lambda x: x.T.flat[1], WORKS),
    ("y = x.T; y += 1", lambda x: operator.iadd(x.T, 1.0), r"y \+= v.*transpose"),
    ("y = x[0]; y @= A", lambda x: operator.imatmul(x[0], A), r"y @= v.*basic indexing"),
    ("y = x[0]; y //= 2", lambda x: operator.ifloordiv(x[0], 2.0), r"y //= v"),
]


@pytest.mark.parametrize("what,call,pattern", HAZARDS, ids=[h[0] for h in HAZARDS])
@pytest.mark.parametrize("mode", ["Variable", "Dual"])
def test_hazard_works_or_names_itself(mode, what, call, pattern):
    seen = {}

    def f(x):
        if pattern is WORKS:
            seen["out"] = call(x)
        else:
            with pytest.raises((TypeError, AttributeError, ValueError)) as info:
                call(x)
            err = info.value
            text = " ".join(str(e) for e in (err, err.__cause__, err.__context__) if e)
            seen["text"] = text
        return np.sum(x * x)
    g = (ad.grad if mode == "Variable" else ad.jacfwd)(f)(A.copy())
    np.testing.assert_allclose(g, 2 * A)
    if pattern is WORKS:
        want = call(A.copy())
        got = seen["out"]
        got = unbox(got) if not isinstance(got, tuple) else tuple(unbox(a) for a in got)
        np.testing.assert_equal(got, want)
    else:
        assert re.search(pattern, seen["text"], re.S), seen["text"]
