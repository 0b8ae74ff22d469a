"""Contract tests: transforms are thread-safe, tapes are per thread, nothing leaks."""
import gc
import sys
import threading
import tracemalloc
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import autodiff as ad

RTOL = 1e-7
ATOL = 1e-10


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64),
                               np.asarray(b, dtype=np.float64),
                               rtol=rtol, atol=atol)


@pytest.fixture
def fast_switching():
    """Make the interpreter switch threads often, so interleavings really happen."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


# ----- concurrent transforms ---------------------------------------------------------

def _f(x):
    y = x
    for _ in range(10):
        y = np.sin(y) * 0.5 + x
    return np.sum(y * x)


def _f_grad_fd(x, eps=1e-6):
    g = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (_f(x + e) - _f(x - e)) / (2 * eps)
    return g


def _task(i):
    x = np.array([0.1, -0.2, 0.3]) + 0.05 * i
    g = ad.grad(_f)(x)
    J = ad.jacfwd(lambda z: np.sin(z) * z)(x)
    d2 = ad.derivative(lambda t: t ** 3 * np.sin(t), order=2)(float(x[0]))
    return i, x, np.asarray(g), np.asarray(J), float(d2)


def test_concurrent_gradients_are_independent(fast_switching):
    n_tasks = 320
    with ThreadPoolExecutor(max_workers=8) as ex:
        results = list(ex.map(_task, range(n_tasks)))
    assert len(results) == n_tasks
    expect_g = {}
    for i, x, g, J, d2 in results:
        key = round(float(x[0]), 12)
        if key not in expect_g:
            expect_g[key] = _f_grad_fd(x)
        np.testing.assert_allclose(g, expect_g[key], rtol=1e-5, atol=1e-7)
        close(J, np.diag(np.cos(x) * x + np.sin(x)))
        t = x[0]
        close(d2, -t ** 3 * np.sin(t) + 6 * t ** 2 * np.cos(t) + 6 * t * np.sin(t))


def test_concurrent_gradients_match_serial(fast_switching):
    xs = [np.array([0.1, -0.2, 0.3]) * (1 + 0.1 * i) for i in range(64)]
    serial = [np.asarray(ad.grad(_f)(x)) for x in xs]
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=8) as ex:
            par = list(ex.map(lambda x: np.asarray(ad.grad(_f)(x)), xs))
        for s, p in zip(serial, par):
            np.testing.assert_array_equal(s, p)


def test_tape_is_per_thread(fast_switching):
    started = threading.Event()
    other_done = threading.Event()
    errors = []
    box = {}

    def recorder():
        try:
            with ad.Tape() as tape:
                started.set()
                assert other_done.wait(30)
                x = ad.Variable(1.0)
                y = np.sin(x)
            box["tape"] = tape
            box["y"] = y
        except BaseException as e:   # surface in the main thread
            errors.append(e)
            started.set()

    def other():
        try:
            assert started.wait(30)
            for _ in range(50):
                v = ad.Variable(0.5)
                w = np.tanh(v) * v
                w.backward()
                ad.grad(lambda t: np.tanh(t) * t)(0.7)
        except BaseException as e:
            errors.append(e)
        finally:
            other_done.set()

    ta = threading.Thread(target=recorder)
    tb = threading.Thread(target=other)
    ta.start()
    tb.start()
    ta.join(60)
    tb.join(60)
    assert not errors, errors
    tape = box["tape"]
    text = str(tape)
    assert "sin" in text
    assert "tanh" not in text, text
    assert 0 < len(tape) < 10, len(tape)


def test_tape_in_main_thread_ignores_worker_threads():
    with ad.Tape() as tape:
        with ThreadPoolExecutor(max_workers=4) as ex:
            list(ex.map(lambda x: ad.grad(lambda t: np.tanh(t) * t)(x), [0.1, 0.2, 0.3, 0.4]))
        x = ad.Variable(2.0)
        y = np.exp(x)
    text = str(tape)
    assert "exp" in text
    assert "tanh" not in text, text
    y.backward()
    close(x.grad, np.exp(2.0))


# ----- memory ------------------------------------------------------------------------

def test_memory_flat_over_many_grad_calls():
    g = ad.grad(lambda x: np.sum(np.sin(x) * x + x ** 2))
    x = np.linspace(-1.0, 1.0, 8)
    expect = np.cos(x) * x + np.sin(x) + 2 * x
    tracemalloc.start()
    try:
        for _ in range(1000):
            g(x)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            r = g(x)
        del r
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    close(g(x), expect)
    assert after - before < 1_000_000, f"memory grew by {after - before} bytes over 10,000 grad calls"


def _engine_object_count():
    """Live gc-tracked instances of classes defined in autodiff modules."""
    n = 0
    for o in gc.get_objects():
        t = type(o)
        if issubclass(t, type):
            continue
        mod = getattr(t, "__module__", "") or ""
        if mod == "autodiff" or mod.startswith("autodiff."):
            n += 1
    return n


@pytest.mark.parametrize("transform", ["grad", "jacfwd", "hessian"])
def test_no_engine_objects_alive_after_transform(transform):
    captured = []

    def f(x):
        captured.append(x)
        y = np.sin(x) * x
        captured.append(y)
        return np.sum(y)

    x0 = np.array([0.3, 0.6])
    tr = getattr(ad, transform)
    tr(f)(x0)            # warm-up: lazily built caches, registries, ...
    captured.clear()
    gc.collect()
    baseline = _engine_object_count()

    res = tr(f)(x0)
    assert captured and type(captured[0]).__module__.startswith("autodiff")
    refs = []
    for i in range(len(captured)):
        try:
            refs.append(weakref.ref(captured[i]))
        except TypeError:    # __slots__ without __weakref__: rely on the count below
            pass
    captured.clear()
    gc.collect()
    for r in refs:
        assert r() is None, f"engine object still alive after {transform} returned: {r()!r}"
    assert _engine_object_count() <= baseline
    assert not type(res).__module__.startswith("autodiff")


def test_no_variables_alive_after_backward():
    def run():
        x = ad.Variable(np.array([1.0, 2.0]))
        mid = np.exp(x)
        y = np.sum(mid * x)
        y.backward()
        try:
            r = weakref.ref(mid)
        except TypeError:    # __slots__ without __weakref__: rely on the count below
            r = None
        del mid, y
        return x.grad, r

    g, r = run()
    gc.collect()
    if r is not None:
        assert r() is None, "intermediate Variable kept alive after backward"
    close(g, np.exp([1.0, 2.0]) * np.array([1.0, 2.0]) + np.exp([1.0, 2.0]))
    baseline = _engine_object_count()
    for _ in range(5):
        run()
    gc.collect()
    assert _engine_object_count() <= baseline
