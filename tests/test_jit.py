"""``ad.jit``: every jitted transform equals its eager twin, replayed on fresh inputs of the
recorded signature and of another one; guards on value-dependent control flow; static
arguments; side effects at recording only; memory and threads."""
import functools
import gc
import threading
import tracemalloc

import numpy as np
import pytest

import autodiff as ad
import cases
import seams

RTOL, ATOL = 1e-10, 1e-12


def _close(a, b, rtol=RTOL, atol=ATOL):
    la, ta = ad.tree.flatten(a)
    lb, tb = ad.tree.flatten(b)
    assert ta == tb, (ta, tb)
    for x, y in zip(la, lb):
        assert np.shape(x) == np.shape(y)
        assert np.result_type(x) == np.result_type(y), (np.result_type(x), np.result_type(y))
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def _scalarize(fn):
    """A real scalar of a case's output(s), smooth in them."""
    def g(*a):
        out = fn(*a)
        leaves, _ = ad.tree.flatten(out)
        total = 0.0
        for k, o in enumerate(leaves):
            total = total + np.sum(np.sin(np.real(o) * (0.7 + 0.1 * k)))
        return total
    return g


def _real(case):
    return all(np.result_type(a).kind == "f" for a in case.make_args(0))


# A modest, spread sample of the case table (every primitive family), run in both orders.
SAMPLE = [c for i, c in enumerate(cases.CASES) if i % 9 == 0 and _real(c)]


@pytest.mark.parametrize("case", SAMPLE, ids=lambda c: c.id)
def test_case_table_jitted_transforms_equal_eager(case):
    args0, args1 = case.make_args(0), case.make_args(1)
    g = _scalarize(case.fn)
    argnums = tuple(range(len(args0)))
    for transform in (lambda f: f, lambda f: ad.grad(f, argnums=argnums),
                      lambda f: ad.value_and_grad(f, argnums=argnums)):
        eager = transform(g)
        jitted = ad.jit(transform(g))
        for args in (args0, args1, args0):
            _close(jitted(*args), eager(*args))
    # ad.grad of the jitted function: the replay is differentiated.
    jg = ad.jit(g)
    jg(*args0)
    _close(ad.grad(jg, argnums=argnums)(*args1), ad.grad(g, argnums=argnums)(*args1))


@pytest.mark.parametrize("case", SAMPLE[::5], ids=lambda c: c.id)
def test_case_table_jitted_jacobians_and_hessians(case):
    args0, args1 = case.make_args(0), case.make_args(1)
    g = _scalarize(case.fn)
    for transform in (ad.jacfwd, ad.jacrev, ad.hessian):
        eager, jitted = transform(g), ad.jit(transform(g))
        for args in (args0, args1):
            _close(jitted(*args), eager(*args), rtol=1e-9, atol=1e-11)
    # in the other order
    jg = ad.jit(g)
    _close(ad.hessian(jg)(*args1), ad.hessian(g)(*args1), rtol=1e-9, atol=1e-11)
    _close(ad.jacfwd(jg)(*args1), ad.jacfwd(g)(*args1), rtol=1e-9, atol=1e-11)


@functools.lru_cache(maxsize=None)
def _seam_programs(n=30):
    rng = np.random.default_rng(11)
    progs = []
    while len(progs) < n:
        p = seams.Program(seams.random_spec(rng, max_steps=4))
        if p.plain and not p.refusable and p.steps:
            progs.append(p)
    return progs


@pytest.mark.parametrize("k", range(30))
def test_seam_programs_jitted(k):
    prog = _seam_programs()[k]
    f = prog.function()
    args = seams._pack(prog.structure, prog.leaves)
    other = seams._pack(prog.structure, [x * 0.9 + 0.05 for x in prog.leaves])
    G = lambda *a: np.sum(np.sin(f(*a)))
    argnums = tuple(range(len(args)))
    for transform in (lambda h: h, lambda h: ad.grad(h, argnums=argnums)):
        eager = transform(G)
        jitted = ad.jit(transform(G))
        try:
            want = eager(*args)
        except (TypeError, NotImplementedError, ValueError):
            continue
        tol = 1e-5 if prog.dtype == np.float32 else 1e-9
        _close(jitted(*args), want, rtol=tol, atol=tol)
        _close(jitted(*other), eager(*other), rtol=tol, atol=tol)
    jG = ad.jit(G)
    jG(*args)
    _close(ad.grad(jG, argnums=argnums)(*other), ad.grad(G, argnums=argnums)(*other),
           rtol=1e-5 if prog.dtype == np.float32 else 1e-9, atol=1e-6)


# ----- composition with every transform -----
def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


X = np.array([0.3, -0.7, 1.2, 0.4])
V = np.array([1.0, 0.5, -0.2, 0.3])


@pytest.mark.parametrize("name,make", [
    ("grad", lambda: ad.grad(rosen)),
    ("value_and_grad", lambda: ad.value_and_grad(rosen)),
    ("jacfwd", lambda: ad.jacfwd(ad.grad(rosen))),
    ("jacrev", lambda: ad.jacrev(ad.grad(rosen))),
    ("hessian", lambda: ad.hessian(rosen)),
])
def test_jit_of_each_transform(name, make):
    eager, jitted = make(), ad.jit(make())
    for x in (X, X + 0.25, np.linspace(-1, 1, 6)):
        _close(jitted(x), eager(x))


def test_jit_of_hvp_jvp_vjp_closures():
    hvp = ad.jit(lambda x, v: ad.hvp(rosen, x, v))
    _close(hvp(X, V), ad.hvp(rosen, X, V))
    _close(hvp(X + 1, V), ad.hvp(rosen, X + 1, V))
    jvp = ad.jit(lambda x, v: ad.jvp(rosen, (x,), (v,)))
    _close(jvp(X, V), ad.jvp(rosen, (X,), (V,)))
    vjp = ad.jit(lambda x, u: ad.vjp(lambda y: np.sin(y) * y, x)[1](u))
    _close(vjp(X, V), ad.vjp(lambda y: np.sin(y) * y, X)[1](V))
    _close(vjp(V, X), ad.vjp(lambda y: np.sin(y) * y, V)[1](X))


def test_transforms_of_jit():
    jr = ad.jit(rosen)
    for x in (X, X - 0.5):
        _close(ad.grad(jr)(x), ad.grad(rosen)(x))
        _close(ad.jacfwd(jr)(x), ad.jacfwd(rosen)(x))
        _close(ad.hessian(jr)(x), ad.hessian(rosen)(x))
        _close(ad.hvp(jr, x, V), ad.hvp(rosen, x, V))
    v = ad.Variable(X.copy())
    jr(v).backward()            # eager reverse mode (PyTorch habit) through a replay
    _close(v.grad, ad.grad(rosen)(X))
    assert jr.recordings == 1


def test_nested_jit_and_pytrees_and_kwargs():
    inner = ad.jit(lambda y: np.tanh(y) * 2.0)

    def f(p, scale=1.0):
        return {"s": np.sum(inner(p["a"]) * p["b"][0]) * scale, "n": p["b"][1] + 1.0}

    jf = ad.jit(f)
    p = {"a": X, "b": (V, 2.5)}
    _close(jf(p, scale=3.0), f(p, scale=3.0))
    _close(jf(p, scale=0.5), f(p, scale=0.5))     # a traced keyword, same program
    assert jf.recordings == 1
    g = ad.jit(ad.grad(lambda p: f(p)["s"]))
    _close(g(p), ad.grad(lambda p: f(p)["s"])(p))


def test_scalars_float32_zero_d_and_empty():
    f = lambda x: np.exp(x) * x
    jf = ad.jit(ad.grad(lambda x: np.sum(f(x))))
    for x in (0.5, np.float32(0.5), np.array(0.5), np.array([0.5, 1.0], np.float32),
              np.zeros(0)):
        _close(jf(x), ad.grad(lambda x: np.sum(f(x)))(x))
    assert type(ad.jit(f)(0.5)) is float


# ----- guards -----
def test_branch_on_value_both_sides():
    calls = []

    def f(x):
        calls.append(1)
        if np.sum(x) > 0:
            return np.sum(x ** 2)
        return np.sum(-x)

    jf, jg = ad.jit(f), ad.jit(ad.grad(f))
    for x in (X, -X, X * 2, -X * 3, X):
        _close(jf(x), f(x))
        _close(jg(x), ad.grad(f)(x))
    assert jf.recordings == 2 and len(jf.program(X).guards) == 1


def test_newton_loop_trip_count_depends_on_value():
    def newton_sqrt(a):
        x = a
        dx = 1.0
        while abs(dx) > 1e-12:
            dx = (x * x - a) / (2.0 * x)
            x = x - dx
        return x

    jn = ad.jit(newton_sqrt)
    jd = ad.jit(ad.grad(newton_sqrt))
    for a in (2.0, 9.0, 1e6, 2.0, 0.01, 9.0):
        assert jn(a) == newton_sqrt(a)
        _close(jd(a), ad.grad(newton_sqrt)(a))
    assert jn.recordings >= 3      # different trip counts recorded again, never replayed


def test_where_and_masks_replayed_on_both_sides():
    f = lambda x: np.sum(np.where(x > 0, x ** 2, np.sin(x))) + np.sum(x[x < 0.5])
    jf, jg = ad.jit(f), ad.jit(ad.grad(f))
    rng = np.random.default_rng(0)
    for _ in range(6):
        x = rng.uniform(-1, 1, 5)
        _close(jf(x), f(x))
        _close(jg(x), ad.grad(f)(x))
    # np.where alone needs no guard: the mask is part of the program
    h = ad.jit(lambda x: np.where(x > 0, x, 0.0) * 2.0)
    h(X)
    _close(h(-X), np.where(-X > 0, -X, 0.0) * 2.0)
    assert h.recordings == 1


def test_argmax_index_and_int_guard():
    def f(x):
        i = np.argmax(x)
        n = int(np.sum(x > 0))
        return x[i] * 2.0 + np.sum(x[:n] ** 2)

    jf, jg = ad.jit(f), ad.jit(ad.grad(f))
    for x in (np.array([1.0, 3.0, -2.0]), np.array([5.0, 1.0, 2.0]),
              np.array([-1.0, -3.0, 0.5])):
        _close(jf(x), f(x))
        _close(jg(x), ad.grad(f)(x))


def test_sort_and_take_along_axis_recorded():
    f = lambda x: np.sum(np.sort(x) * np.arange(1.0, x.size + 1))
    jf, jg = ad.jit(f), ad.jit(ad.grad(f))
    for x in (np.array([3.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 1.0])):
        _close(jf(x), f(x))
        _close(jg(x), ad.grad(f)(x))
    assert jf.recordings == 1


def test_float_of_traced_value_refused():
    import math
    with pytest.raises(TypeError, match="float"):
        ad.jit(lambda x: math.sin(x))(1.0)


# ----- statics, signatures, side effects -----
def test_static_arguments():
    def f(x, n, mode="sum"):
        out = x
        for _ in range(n):
            out = np.sin(out)
        return np.sum(out) if mode == "sum" else np.max(out)

    jf = ad.jit(f, static_argnums=(1,), static_argnames=("mode",))
    for n, mode in ((1, "sum"), (3, "sum"), (3, "max"), (1, "sum")):
        _close(jf(X, n, mode=mode), f(X, n, mode=mode))
    assert jf.recordings == 3
    by_name = ad.jit(f, static_argnames=("n",))
    _close(by_name(X, n=2), f(X, 2))
    _close(by_name(X, 2), f(X, 2))
    with pytest.raises(TypeError, match="unhashable"):
        ad.jit(lambda x, s: x * len(s), static_argnums=1)(X, [1, 2])
    with pytest.raises(ValueError):          # what JAX raises here
        ad.jit(lambda x, s: x * len(s), static_argnums=1)(X, [1, 2])
    with pytest.raises(TypeError, match="static"):
        ad.jit(lambda x, s: x)(X, "text")


def test_new_signature_records_again():
    jf = ad.jit(lambda x: np.sum(x * x))
    jf(X)
    jf(X + 1)
    assert jf.recordings == 1
    jf(np.ones(7))
    jf(X.astype(np.float32))
    jf(np.ones((2, 2)))
    assert jf.recordings == 4
    assert jf(X.astype(np.float32)).dtype == np.float32


def test_side_effects_run_at_recording_only():
    seen = []

    def f(x):
        seen.append(np.shape(x))
        print("tracing")
        return np.sum(x)

    jf = ad.jit(f)
    for _ in range(5):
        jf(X)
    assert seen == [(4,)]


def test_captured_array_is_a_constant_of_the_program():
    c = np.array([1.0, 2.0, 3.0, 4.0])
    jf = ad.jit(lambda x: np.sum(x * c))
    first = jf(X)
    c[:] = 0.0          # JAX's rule: constants are captured when the function is recorded
    assert jf(X) == first


def test_closure_over_tracked_value_refused():
    def outer(w):
        return ad.jit(lambda x: np.sum(x * w))(X)
    with pytest.raises(TypeError, match="argument"):
        ad.grad(outer)(V)


def test_leaked_tracer_refused():
    box = []
    jf = ad.jit(lambda x: box.append(x) or np.sum(x))
    jf(X)
    with pytest.raises(TypeError, match="leaked"):
        box[0] + 1.0


def test_program_is_listed_and_pruned():
    def f(x):
        unused = np.exp(x)          # dead: not an output, no guard reads it
        return np.sum(np.sin(x))
    prog = ad.jit(f).program(X)
    text = str(prog)
    assert "exp" not in text and "sin" in text and len(prog) == 2


def test_assignment_inside_jit():
    def f(x):
        y = np.zeros_like(x)
        y[0] = x[1] * 2.0
        y[1:] = np.cos(x[:-1])
        return np.sum(y ** 2)
    jf, jg = ad.jit(f), ad.jit(ad.grad(f))
    for x in (X, X * 3):
        _close(jf(x), f(x))
        _close(jg(x), ad.grad(f)(x))


# ----- memory and threads -----
def test_no_memory_growth_over_many_replays():
    jg = ad.jit(ad.grad(rosen))
    x = np.linspace(-1, 1, 8)
    for _ in range(200):
        jg(x)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(10_000):
        jg(x)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after - before < 50_000, after - before


def test_threads_replay_one_cache():
    def f(x):
        return np.sum(x ** 2) if np.sum(x) > 0 else np.sum(np.sin(x))
    jg = ad.jit(ad.grad(f))
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(200):
                x = rng.uniform(-1, 1, 4)
                np.testing.assert_allclose(jg(x), ad.grad(f)(x), rtol=1e-12)
        except Exception as e:          # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert jg.recordings <= 8


# ----- the Numba backend (scalar programs) -----
def _scalar_chain(x):
    for _ in range(20):
        x = x * 1.0001 + np.sin(x) * 0.001 - 0.0005
        x = x / (1.0 + np.exp(x * 0.01) * 1e-4)
        if x > 1.2:                 # a guard in every iteration
            x = x - 0.05
    return x


def test_scalar_program_on_the_numba_interpreter():
    from autodiff import compiled
    jg = ad.jit(ad.value_and_grad(_scalar_chain))
    for x0 in (0.3, 1.19, -0.7, 0.3, 1.5):
        got, want = jg(x0), ad.value_and_grad(_scalar_chain)(x0)
        assert type(got[0]) is float and type(got[1]) is float
        np.testing.assert_allclose(got, want, rtol=1e-13)
    prog = jg.program(0.3)
    for _ in range(25):                 # tiered: frequent replays move to the interpreter
        jg(0.3)
    assert prog.backend == ("numba" if compiled.available() else "python")
    np.testing.assert_allclose(jg(0.3), ad.value_and_grad(_scalar_chain)(0.3), rtol=1e-13)
    assert len(prog.guards) > 0


def test_recording_every_call_warns():
    jf = ad.jit(lambda x: x * int(np.sum(x)))       # an int() guard that fails every call
    with pytest.warns(RuntimeWarning, match="recorded 32 times"):
        for k in range(40):
            assert np.array_equal(jf(np.full(2, float(k))), np.full(2, k) * (2 * k))


def _fusable_patterns(x, y):
    """Every fused opcode of the interpreter: a·b + c, c + a·b, a·b − c, c − a·b, a·sin,
    cos(b)·a, a·exp, a·(b/c), (b/c)·a; a product that is also an output is not fused."""
    for _ in range(6):
        p = x * y
        x = p * 0.2 + 0.3 * y - np.sin(x) * 0.2 + 0.1 * np.cos(y)
        y = 0.5 - x * 0.25 + np.exp(x * 0.01) * 1e-3 + y * (x / 3.0) * 0.1 \
            + (1.0 / (2.0 + y * y)) * 0.01
        if x > 0.2:
            x = x - 0.1
    return x * y + p, p


def test_fused_opcodes_give_the_eager_numbers():
    from autodiff import compiled
    f = lambda x, y: _fusable_patterns(x, y)[0]     # noqa: E731
    jg = ad.jit(ad.value_and_grad(f, argnums=(0, 1)))
    jf = ad.jit(_fusable_patterns)
    for x0, y0 in [(0.3, 0.7), (1.1, -0.4), (0.3, 0.7), (2.5, 1.5)] + [(0.2, 0.9)] * 25:
        got, want = jg(x0, y0), ad.value_and_grad(f, argnums=(0, 1))(x0, y0)
        assert got[0] == want[0] and got[1] == want[1]      # the same roundings
        assert jf(x0, y0) == tuple(float(v) for v in _fusable_patterns(x0, y0))
    prog = jg.program(0.2, 0.9)
    if compiled.available():
        assert prog.backend == "numba"
        rows = compiled._fuse(*_rows_of(prog))
        fused = {row[0] for row, _ in rows}
        assert fused & {compiled._MULADD, compiled._MULCOS, compiled._MULDIV}
        assert len(rows) < len(prog)


def _rows_of(prog):
    """The interpreter's rows of a lowered scalar program, and its output registers."""
    run = prog._plain
    cells = dict(zip(run.__code__.co_freevars, (c.cell_contents for c in run.__closure__)))
    code = [tuple(int(v) for v in r) for r in cells["code"]]
    return code, set(cells["out_regs"])


def test_long_scalar_program_skips_the_python_backend():
    from autodiff import compiled
    if not compiled.available():
        pytest.skip("Numba not installed")

    def chain(x):
        for _ in range(60):
            x = x * 1.0001 + np.sin(x) * 0.001 - 0.0005
        return x
    jg = ad.jit(ad.grad(chain))
    jg(0.3)                             # recorded
    prog = jg.program(0.3)
    assert len(prog) >= compiled.EARLY_LENGTH // 4
    jg(0.3)                             # the first replay: already on the interpreter
    assert prog.backend == "numba"      # (loaded by now, or the program is long)
    assert jg(0.4) == ad.grad(chain)(0.4)


def test_fast_call_path_keys_like_the_general_one():
    calls = []

    def f(a, s, b):
        calls.append(1)
        return a * s + b, (b,)
    jf = ad.jit(f, static_argnums=1)
    a, b = np.arange(3.0), np.ones(3)
    for _ in range(3):
        out = jf(a, 2.0, b)             # positional arrays: the fast path
        np.testing.assert_array_equal(out[0], a * 2.0 + b)
        assert type(out) is tuple and type(out[1]) is tuple
    prog = jf.program(a, 2.0, b)        # the general path's key finds the same program
    assert len(calls) == 1 and jf.recordings == 1 and len(prog) >= 1
    jf(a, 3.0, b)                       # another static value: recorded again
    jf(a.astype(np.float32), 2.0, b)    # another dtype too
    assert len(calls) == 3
    with pytest.raises(TypeError, match="unhashable"):
        jf(a, [2.0], b)
    # A guard still fires on the fast path.
    g = ad.jit(lambda x: x * 2.0 if np.sum(x) > 0 else -x)
    for v in (1.0, -1.0, 1.0, -1.0):
        np.testing.assert_array_equal(g(np.full(2, v)), np.full(2, abs(v) * (2 if v > 0 else 1)))
