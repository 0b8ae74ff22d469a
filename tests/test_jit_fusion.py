"""The fused backend of ``ad.jit`` (autodiff/fusion.py): elementwise chains in Numba loops.

Every program is replayed past the tier threshold (``program.NUMBA_AFTER``), then compared
with the eager transform and with the plain backend, on fresh inputs of the recorded
signature and of another one; the number of fused loops is counted on the lowered program,
so a program that silently stays on the plain backend fails.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import autodiff as ad
from autodiff import fusion, program as _program
from autodiff.tree import flatten

numba = pytest.importorskip("numba")
pytestmark = [pytest.mark.skipif(not fusion.available(), reason="fusion switched off"),
              # a loop Numba refused or that disagreed with NumPy is left out with a
              # warning: here that is a failure
              pytest.mark.filterwarnings("error:ad.jit. a fused loop")]

HOT = _program.NUMBA_AFTER + 1


def hot(jf, *args):
    """Replay ``jf`` past the tier; return its program (lowered by then)."""
    for _ in range(HOT):
        jf(*args)
    return jf.program(*args)


def plain(prog, *args):
    """The plain backend's replay of ``prog`` on ``args``."""
    return _program._lower(prog, bound=False)(*args)


def check(jf, f, args, rtol=1e-14, kernels=1, atol=0.0):
    """``jf`` fused and equal to ``f`` (eager) and to the plain backend on ``args``."""
    prog = hot(jf, *args)
    assert prog.backend == "fused"
    assert len(fusion.kernels(prog)) >= kernels
    got = jf(*args)
    want = f(*args)
    flat_got, flat_want = flatten(got)[0], flatten(want)[0]
    ref = plain(prog, *args)
    for g, w, p in zip(flat_got, flat_want, ref):
        assert type(g) is type(p), (type(g), type(p))
        assert np.result_type(g) == np.result_type(w)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
        np.testing.assert_allclose(g, p, rtol=rtol, atol=atol)
    return prog


# ----- the programs -----
def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def chain(x):
    return np.sum(np.exp(-x * x) * np.sin(x) + np.tanh(x) / (1.0 + x * x) - np.sqrt(x * x + 1))


def lj(pos):
    d = pos[:, None, :] - pos[None, :, :]
    r2 = np.sum(d * d, axis=-1) + np.eye(pos.shape[0])
    inv6 = (1.0 / r2) ** 3
    e = 4.0 * (inv6 * inv6 - inv6)
    return 0.5 * np.sum(e)


def ext_rosen(x):
    a, b = x[0::2], x[1::2]
    return np.sum(100.0 * (b - a ** 2) ** 2 + (1.0 - a) ** 2)


RNG = np.random.default_rng(0)


def test_rosenbrock_grad_is_fused_and_bitwise_equal_to_the_plain_backend():
    jg = ad.jit(ad.grad(rosen))
    x = RNG.uniform(-1, 1, 1000)
    prog = check(jg, ad.grad(rosen), (x,), kernels=2)
    # Only +, -, * and squares: the loop computes what NumPy computes, bit for bit.
    np.testing.assert_array_equal(jg(x), plain(prog, x)[0])
    x2 = RNG.uniform(-2, 2, 1000)       # fresh numbers, the same signature
    np.testing.assert_array_equal(jg(x2), plain(prog, x2)[0])
    np.testing.assert_allclose(jg(x2), ad.grad(rosen)(x2), rtol=1e-14)
    x3 = RNG.uniform(-1, 1, 37)         # another signature: recorded and tiered again
    check(jg, ad.grad(rosen), (x3,), kernels=2)
    assert jg.recordings == 2


def test_chain_with_a_sum_closing_it():
    jf = ad.jit(ad.value_and_grad(chain))
    x = RNG.uniform(-2, 2, 3000)       # three blocks of the sum
    prog = check(jf, ad.value_and_grad(chain), (x,), rtol=1e-13)
    sums = [k for k in fusion.kernels(prog) if k.sums]
    assert sums, "the forward sum is not an accumulator of a loop"
    v, g = jf(x)
    assert type(v) is np.float64
    # The loop never materialises what only the sum reads.
    total = sum(len(k.members) for k in fusion.kernels(prog))
    assert total >= 10
    x2 = RNG.uniform(-2, 2, (7, 5))     # another signature, 2-D
    check(jf, ad.value_and_grad(chain), (x2,), rtol=1e-13)


def test_every_fusible_ufunc_and_its_partials():
    def f(x):
        a = np.log1p(x) + np.expm1(x) * np.arctan(x) - np.arcsin(x) / np.arccos(x)
        b = np.cos(x) * np.tan(x) + np.sinh(x) - np.cosh(x) + np.hypot(x, 2 * x)
        c = np.arctan2(x, 1 + x) + 1 / x + np.reciprocal(x) + np.square(x) + np.abs(x - 0.5)
        d = x ** 3 + x ** 0.5 - x ** -1.5 + np.log(x) + np.exp(-x) + np.sqrt(x) + (-x)
        return np.sum(a * b + c * d + np.tanh(a - d))
    g = ad.value_and_grad(f)
    jg = ad.jit(g)
    check(jg, g, (RNG.uniform(0.1, 0.9, 200),), rtol=1e-13, kernels=1)
    check(jg, g, (RNG.uniform(0.1, 0.9, 200),), rtol=1e-13)
    x32 = RNG.uniform(0.1, 0.9, 200).astype(np.float32)
    check(jg, g, (x32,), rtol=1e-4, atol=1e-4)


def test_equal_chains_share_one_kernel():
    def f(x):
        return np.sum(np.sin(x) * 3.0 + x * x)
    jf1, jf2 = ad.jit(ad.grad(f)), ad.jit(ad.grad(lambda y: f(y)))
    k1 = fusion.kernels(hot(jf1, np.ones(5)))
    n = len(fusion._kernels)
    k2 = fusion.kernels(hot(jf2, np.ones(7)))
    assert len(k1) == len(k2) >= 1 and len(fusion._kernels) == n
    assert [fusion._emit_cpu(k) for k in k1] == [fusion._emit_cpu(k) for k in k2]


def test_lennard_jones_gradient_and_the_last_axis_sum():
    jg = ad.jit(ad.grad(lj))
    pos = RNG.uniform(0, 4, (20, 3))
    prog = check(jg, ad.grad(lj), (pos,), rtol=1e-12, kernels=2)
    assert any(k.sums and k.row == 3 for k in fusion.kernels(prog))
    check(jg, ad.grad(lj), (RNG.uniform(0, 4, (20, 3)),), rtol=1e-12)
    check(jg, ad.grad(lj), (RNG.uniform(0, 4, (9, 3)),), rtol=1e-12)


def test_hvp():
    jh = ad.jit(lambda x, v: ad.hvp(ext_rosen, x, v))
    x, v = RNG.uniform(-1, 1, 40), RNG.uniform(-1, 1, 40)
    check(jh, lambda x, v: ad.hvp(ext_rosen, x, v), (x, v))
    x, v = RNG.uniform(-1, 1, 40), RNG.uniform(-1, 1, 40)
    check(jh, lambda x, v: ad.hvp(ext_rosen, x, v), (x, v))


def test_float32_stays_float32():
    jf = ad.jit(ad.value_and_grad(chain))
    x = RNG.uniform(-2, 2, 500).astype(np.float32)
    # float32 round-off (NumPy's and the loop's sin/exp/tanh differ in the last bit).
    prog = check(jf, ad.value_and_grad(chain), (x,), rtol=1e-5, atol=1e-6)
    v, g = jf(x)
    assert g.dtype == np.float32 and type(v) is np.float32
    assert all(b[3] in (np.float32, np.bool_) for k in fusion.kernels(prog) for b in k.body)


def test_zero_d_inputs_and_python_scalars_broadcast():
    def f(x, s, t):
        return np.sum(np.sin(x * s + t) * s - 2 * x / (t + 3.0))
    jf = ad.jit(ad.grad(f, argnums=(0, 1, 2)))
    args = (RNG.uniform(-1, 1, 50), np.array(0.7), 1.3)
    prog = check(jf, ad.grad(f, argnums=(0, 1, 2)), args)
    assert any("s" in k.kinds for k in fusion.kernels(prog))
    args = (RNG.uniform(-1, 1, 50), np.array(-0.2), 0.4)
    got, want = jf(*args), ad.grad(f, argnums=(0, 1, 2))(*args)
    for g, w, p in zip(got, want, plain(prog, *args)):
        np.testing.assert_allclose(g, w, rtol=1e-14)
        assert type(g) is type(p)


def test_a_chain_value_also_read_by_a_matmul():
    W1, W2 = RNG.standard_normal((8, 16)), RNG.standard_normal((16, 4))

    def f(x):
        h = np.tanh(x @ W1) * 2.0 + 1.0
        y = h * h - h
        return np.sum((y @ W2) ** 2) + np.sum(h * y)
    jg = ad.jit(ad.value_and_grad(f))
    x = RNG.standard_normal((5, 8))
    check(jg, ad.value_and_grad(f), (x,), rtol=1e-13, kernels=2)
    check(jg, ad.value_and_grad(f), (RNG.standard_normal((5, 8)),), rtol=1e-13)


def test_selections_comparisons_and_numpys_nan_semantics():
    def f(x):
        y = np.where(x > 0, x, 0.1 * x) + np.maximum(x, 0.5) - np.minimum(x * 2, -0.5)
        return np.sum(np.log(np.abs(y) + 1.0) * (x != 0.25))
    jg = ad.jit(ad.value_and_grad(f))
    x = RNG.uniform(-1, 1, 64)
    prog = check(jg, ad.value_and_grad(f), (x,), rtol=1e-13)
    x[3], x[9], x[11] = np.nan, np.inf, 0.5         # NaN and ties: NumPy's answers
    with np.errstate(invalid="ignore"):
        got, ref = jg(x), plain(prog, x)
        np.testing.assert_array_equal(np.isnan(got[1]), np.isnan(ref[1]))
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-13)
        assert np.isnan(got[0]) and np.isnan(ref[0])


def test_guards_still_steer_a_fused_program():
    def f(x):
        y = np.sin(x) * x + 1.0
        if np.sum(x) > 0:
            return np.sum(y * y)
        return np.sum(np.exp(y) - y)
    jg = ad.jit(ad.grad(f))
    x = RNG.uniform(0, 1, 30)
    prog = check(jg, ad.grad(f), (x,))
    for sign in (-1, 1, -1):             # the other branch records; both stay right
        np.testing.assert_allclose(jg(sign * x), ad.grad(f)(sign * x), rtol=1e-14)
    assert prog.backend == "fused"


def test_kernels_are_cached_on_disk_by_their_source():
    prog = hot(ad.jit(ad.grad(rosen)), RNG.uniform(-1, 1, 16))
    k = fusion.kernels(prog)[0]
    src = fusion._emit_cpu(k)
    files = os.listdir(fusion._cache_dir())
    assert any(open(os.path.join(fusion._cache_dir(), f)).read() == src
               for f in files if f.endswith(".py"))
    assert "for i in range(n):" in src and "o0[i] = " in src


def test_a_second_process_does_not_compile_again(tmp_path):
    code = textwrap.dedent("""
        import numpy as np, autodiff as ad
        from autodiff import fusion
        f = ad.jit(ad.grad(lambda x: np.sum(np.cos(x) * x - x * x)))
        for _ in range(30):
            f(np.linspace(0, 1, 9))
        ks = list(fusion._kernels.values())
        assert ks, "nothing fused"
        print(sum(sum(k.stats.cache_hits.values()) for k in ks),
              sum(sum(k.stats.cache_misses.values()) for k in ks))
    """)
    env = dict(os.environ, AUTODIFF_CACHE=str(tmp_path), PYTHONPATH=os.getcwd())
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, timeout=120) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr
    hits1, misses1 = map(int, runs[0].stdout.split())
    hits2, misses2 = map(int, runs[1].stdout.split())
    assert misses1 >= 1 and hits2 >= 1 and misses2 == 0
    assert os.listdir(tmp_path / "fused")


def test_switched_off_falls_back_to_the_plain_backend(monkeypatch):
    monkeypatch.setenv("AUTODIFF_JIT_NUMBA", "0")
    jg = ad.jit(ad.grad(rosen))
    x = RNG.uniform(-1, 1, 100)
    prog = hot(jg, x)
    assert prog.backend == "python" and fusion.kernels(prog) == []
    np.testing.assert_allclose(jg(x), ad.grad(rosen)(x), rtol=1e-14)


def test_a_single_elementwise_call_stays_a_numpy_call():
    jf = ad.jit(lambda x, y: np.sin(x) @ y)
    prog = hot(jf, np.ones(4), np.ones(4))
    assert prog.backend == "python"


def test_broadcast_and_strided_operands_are_read_through_their_strides():
    def f(a, b, c):
        # (4, 3) against (3,) and (4, 1); a transposed (strided) view; a full and a
        # last-axis sum.
        e = np.exp(a * b) * a + c - a.T.T[:, ::-1] * 0.5
        return np.sum(e * e) + np.sum(np.sum(np.cos(e), axis=-1) ** 2)
    g = ad.grad(f, argnums=(0, 1, 2))
    jg = ad.jit(g)
    args = (RNG.uniform(-1, 1, (4, 3)), RNG.uniform(-1, 1, 3), RNG.uniform(-1, 1, (4, 1)))
    prog = check(jg, g, args, rtol=1e-13, kernels=2)
    ks = fusion.kernels(prog)
    assert any(not flat for k in ks for flat, kind in zip(k.flat, k.kinds) if kind == "a")
    check(jg, g, tuple(RNG.uniform(-1, 1, np.shape(a)) for a in args), rtol=1e-13)
    args = (RNG.uniform(-1, 1, (2, 5, 3)), RNG.uniform(-1, 1, 3), RNG.uniform(-1, 1, (5, 1)))
    check(jg, g, args, rtol=1e-13, kernels=2)


def test_an_exception_inside_a_fused_replay_leaves_the_program_usable():
    def f(x, A):
        y = np.sin(x) * x + 2.0
        return np.sum(np.linalg.solve(A, y * y - y) * y)
    g = ad.grad(f)
    jg = ad.jit(g)
    x, A = RNG.uniform(-1, 1, 4), np.eye(4) + 0.1 * RNG.uniform(-1, 1, (4, 4))
    prog = check(jg, g, (x, A), rtol=1e-13, kernels=1)
    with pytest.raises(np.linalg.LinAlgError):
        jg(x, np.zeros((4, 4)))             # raised between two fused loops
    np.testing.assert_allclose(jg(x, A), g(x, A), rtol=1e-13)
    assert jg.program(x, A) is prog and prog.backend == "fused"


@pytest.mark.parametrize("x", [np.zeros(0), np.ones(6, dtype=np.float16),
                               np.ones(6) * (1 + 0.5j)], ids=["empty", "float16", "complex"])
def test_what_no_loop_takes_stays_numpy_and_right(x):
    f = lambda x: np.sum(np.abs(np.sin(x) * x + 1.0) ** 2)     # noqa: E731
    jg = ad.jit(ad.grad(f))
    prog = hot(jg, x)
    if x.dtype.kind == "c":     # |z| and what follows are real: those loops fuse
        assert all(b[3].kind in "fb" for k in fusion.kernels(prog) for b in k.body)
    else:
        assert fusion.kernels(prog) == []
    got, want = jg(x), ad.grad(f)(x)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-3 if x.dtype == np.float16 else 1e-14)


def test_a_loss_scaled_after_its_sum_keeps_one_loop():
    # 0.5 * np.sum(e) reads the sum: it runs after the loop instead of ending it, so the
    # forward chain and its cotangents are one loop.
    def f(x):
        e = np.sin(-x * x) * x          # (sin: a float64 loop of ours; exp is NumPy's)
        return 0.5 * np.sum(e * e) + 1.0
    g = ad.value_and_grad(f)
    jg = ad.jit(g)
    prog = check(jg, g, (RNG.uniform(-1, 1, 300),), rtol=1e-13)
    assert len(fusion.kernels(prog)) == 1 and fusion.kernels(prog)[0].deferred
    check(jg, g, (RNG.uniform(-1, 1, 300),), rtol=1e-13)


def test_loops_read_by_other_loops_keep_growing():
    # Rosenbrock's value and gradient: the scatter-adds of the slices' cotangents are a
    # loop of their own, reading (shifted) the values of the loop of the forward chain and
    # its cotangents; that does not end the first loop (strict grouping would: 3 loops).
    g = ad.value_and_grad(rosen)
    jg = ad.jit(g)
    x = RNG.uniform(-1, 1, 50)
    prog = check(jg, g, (x,), rtol=1e-13)
    assert len(fusion.kernels(prog)) == 2
    env = fusion._probe(prog, (x,))
    strict = fusion.groups(prog, env, strict=True)
    assert len(strict) == 3 and fusion._schedule(prog, strict) is not None


def test_a_compiled_training_step_past_the_tier_matches_the_eager_loop(monkeypatch):
    monkeypatch.setattr(_program, "array_backend", [None])
    from autodiff import nn
    lowered = []

    def spy(program, leaves):
        run = fusion.lower_fused(program, leaves)
        lowered.append(run)
        return run
    _program.array_backend[0] = spy
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((16, 8)), rng.integers(0, 3, 16)

    def make():
        r = np.random.default_rng(2)
        m = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(),
                          nn.Linear(16, 3))
        for p in m.parameters():
            p.value[...] = r.standard_normal(p.value.shape) * 0.3
        return m, nn.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    m1, o1 = make()
    m2, o2 = make()
    step = nn.compile_step(m1, nn.functional.cross_entropy, o1)
    for _ in range(HOT + 5):
        l1 = step(X, y)
        o2.zero_grad()
        loss = nn.functional.cross_entropy(m2(X), y)
        loss.backward()
        o2.step()
        np.testing.assert_allclose(l1, float(loss.value), rtol=1e-12)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_allclose(p1.value, p2.value, rtol=1e-11, atol=1e-14)
    assert any(run is not None and run.fused for run in lowered)


def test_a_program_reaching_the_tier_on_a_guard_miss_is_lowered_on_a_later_call():
    def f(x):
        y = np.sin(x) * x + 1.0
        return np.sum(y * y) if np.sum(x) > 0 else np.sum(np.exp(y) - y)
    jg = ad.jit(ad.grad(f))
    x = RNG.uniform(0, 1, 30)
    for _ in range(3 * HOT):                # both branches in turn: every other call
        for s in (1.0, -1.0):               # the first program misses its guard
            np.testing.assert_allclose(jg(s * x), ad.grad(f)(s * x), rtol=1e-14)
    progs = jg._cache[next(iter(jg._cache))]
    assert len(progs) == 2 and all(p.backend == "fused" for p in progs)
    assert any(getattr(p, "_fuse_tries", 0) for p in progs)      # the miss path ran


def _random_program(seed):
    """A random value of elementwise chains, broadcasts, sums (full and last-axis), masks,
    strided views, slices and matmuls (the schedule's and the grouping's corner cases)."""
    r = np.random.default_rng(seed)
    steps = [(r.integers(0, 12), r.integers(0, 1000, 3)) for _ in range(r.integers(6, 14))]

    def f(x, W):
        pool, scal, vecs = [x, np.tanh(x @ W)], [np.sum(x) * 0.01], [x[0], x[:, 1]]
        for op, (a, b, c) in steps:
            A, B = pool[a % len(pool)], pool[b % len(pool)]
            v, s = vecs[c % len(vecs)], scal[c % len(scal)]
            if op == 0:
                pool.append(np.sin(A) * B)
            elif op == 1:
                pool.append(A / (1.0 + B * B))
            elif op == 2:
                pool.append(np.exp(-A * A) + v)
            elif op == 3:
                scal.append(np.sum(A * B) * 0.1)
            elif op == 4:
                vecs.append(np.sum(A * A, axis=-1) * 0.1)
            elif op == 5:
                pool.append(np.where(A > 0, A, 0.1 * A) - s * B)
            elif op == 6:
                pool.append(np.maximum(A, B) + np.minimum(A, 0.3))
            elif op == 7:
                pool.append((A @ W) * 0.5 + B)
            elif op == 8:
                pool.append(A.T.T[::-1] * 2.0 - B)
            elif op == 9:
                vecs.append(np.concatenate([v[1:] * 2.0 - v[:-1] ** 2, v[:1]]))
            elif op == 10:
                pool.append(np.tanh(A) * s + np.sqrt(B * B + 1.0))
            else:
                scal.append(0.5 * np.sum(np.abs(A)) + scal[-1] * 0.5)
        return np.sum(pool[-1] * pool[-2]) + sum(scal) + sum(np.sum(np.sin(u)) for u in vecs)
    return f


@pytest.mark.parametrize("seed", [0, 20, 50])
def test_random_programs(seed):
    g = ad.value_and_grad(_random_program(seed), argnums=(0, 1))
    jg = ad.jit(g)
    rng = np.random.default_rng(seed)
    args = (rng.uniform(-1, 1, (6, 6)), rng.uniform(-1, 1, (6, 6)))
    prog = check(jg, g, args, rtol=1e-11, atol=1e-13, kernels=3)
    assert prog.backend == "fused"
    check(jg, g, (rng.uniform(-1, 1, (6, 6)), rng.uniform(-1, 1, (6, 6))), rtol=1e-11,
          atol=1e-13)


def _constants(prog):
    return [a for k in fusion.kernels(prog) for a in k.inputs if type(a) is np.ndarray]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_seed_like_constants_are_read_as_bytes_and_scaled_copies_once(dtype):
    # The constants a compressed sweep folds from its seeds: small integers (read as
    # int8), their multiples by the function's coefficients (read once), fractions, and a
    # constant with -0.0 (kept: int8 has no negative zero, and 1 / (x * -0.0) is -inf).
    n = 2 * fusion.SMALL_MIN
    S = (np.arange(n) % 3 == 0).astype(dtype) * dtype(2) - (np.arange(n) % 7 == 0)
    S4 = dtype(-4.4) * S
    F = RNG.uniform(-1, 1, n).astype(dtype)
    Z = np.where(np.arange(n) % 2 == 0, dtype(-0.0), dtype(1.0)).astype(dtype)

    def f(x):
        return x * S + S4 * (x * x) + F * x + 1.0 / (x * Z + x * x * Z)

    jf = ad.jit(f)
    x = RNG.uniform(0.5, 1.5, n).astype(dtype)
    with np.errstate(divide="ignore"):
        prog = check(jf, f, (x,), rtol=2e-6 if dtype == np.float32 else 1e-14)
    consts = _constants(prog)
    assert sorted(str(a.dtype) for a in consts) == sorted(["int8", np.dtype(dtype).name,
                                                           np.dtype(dtype).name])
    with np.errstate(divide="ignore"):
        got = jf(x)
        assert got.dtype == dtype
        assert np.isneginf(got[0]) and np.array_equal(got, f(x), equal_nan=True)
        x2 = RNG.uniform(0.5, 1.5, n).astype(dtype)
        np.testing.assert_array_equal(jf(x2), plain(prog, x2)[0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis,shape", [(0, (1, 6, 5)), (1, (6, 1, 5)), (-1, (6, 5, 1)),
                                        (1, (6, 1, 5, 1))])
def test_a_concatenation_of_a_loops_outputs_is_written_by_the_loop(dtype, axis, shape):
    # np.stack of a function's outputs (and their tangents): no copy after the loop.
    def f(a, b):
        parts = [a * b + 1.0, np.sqrt(a * a + 1.0) - b * b, a / (1.0 + b * b)]
        return np.concatenate([p.reshape(shape) for p in parts], axis=axis) * 1.0

    def g(a, b):        # parts of two loops (each reshaped as it is made): NumPy's
        return np.concatenate([(a * b + 1.0).reshape(shape),
                               (np.sqrt(a * a + 1.0) - b * b).reshape(shape)], axis=axis)

    def h(a, b):        # the same loop closed by a sum (its other loop form)
        parts = [a * b + 1.0, np.sqrt(a * a + 1.0) - b * b, a / (1.0 + b * b)]
        s = np.sum(np.abs(a) * b)
        return np.concatenate([p.reshape(shape) for p in parts], axis=axis), s

    def k(a, b):        # a broadcast operand: the loop over the multi-index
        c = b[0]
        parts = [a * c + 1.0, np.sqrt(a * a + 1.0) - c * c]
        return np.concatenate([p.reshape(shape) for p in parts], axis=axis)

    for fn in (f, g, h, k):
        # (h's sum adds in another order than NumPy's pairwise sum: round-off apart)
        tol = 1e-6 if dtype == np.float32 else 1e-12 if fn is h else 1e-14
        jf = ad.jit(fn)
        args = tuple(RNG.uniform(-1, 1, (6, 5)).astype(dtype) for _ in range(2))
        prog = check(jf, fn, args, rtol=tol, atol=1e-13 if fn is h else 0.0)
        placed = [k for k in fusion.kernels(prog) if k.place]
        assert bool(placed) == (fn is not g), "the concatenation stayed a NumPy call"
        assert flatten(jf(*args))[0][0].dtype == dtype
        args2 = tuple(RNG.uniform(-1, 1, (6, 5)).astype(dtype) for _ in range(2))
        for got, ref in zip(flatten(jf(*args2))[0], plain(prog, *args2)):
            np.testing.assert_allclose(got, ref, rtol=tol, atol=1e-13 if fn is h else 0.0)


def test_a_concatenation_read_elsewhere_or_of_other_values_stays_numpy():
    def f(a, b):
        u = a * b + 1.0
        v = np.sin(a) - b
        w = u.reshape(1, 6, 5)
        c = np.concatenate([w, v.reshape(1, 6, 5), b.reshape(1, 6, 5)], axis=0)
        return c, np.sum(w)         # w and b read elsewhere: no placement

    jf = ad.jit(f)
    args = tuple(RNG.uniform(-1, 1, (6, 5)) for _ in range(2))
    prog = check(jf, f, args)
    assert not any(k.place for k in fusion.kernels(prog))


def test_the_brusselator_sparse_jacobian_is_one_fused_loop_writing_its_stack():
    N = 16

    def bruss(y):
        Y = y.reshape(2, N, N)
        u, v = Y[0], Y[1]

        def lap(a):
            return (np.roll(a, 1, 0) + np.roll(a, -1, 0) + np.roll(a, 1, 1)
                    + np.roll(a, -1, 1) - 4.0 * a)
        du = 1.0 + u * u * v - 4.4 * u + 10.0 * lap(u)
        dv = 3.4 * u - u * u * v + 10.0 * lap(v)
        return np.stack([du, dv]).reshape(-1)

    jac = ad.sparse_jacobian(bruss)
    y = RNG.uniform(0, 1, 2 * N * N)
    for _ in range(HOT + 1):
        J = jac(y)
    ((_, progs),) = jac._fast.values()
    (prog,) = progs
    assert prog.backend == "fused"
    ks = fusion.kernels(prog)
    assert len(ks) == 1 and ks[0].place
    y2 = RNG.uniform(0, 1, 2 * N * N)
    np.testing.assert_allclose(jac(y2).toarray(), ad.jacfwd(bruss)(y2), rtol=1e-14, atol=0)
    np.testing.assert_allclose(J.toarray(), ad.jacfwd(bruss)(y), rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_nested_loop_reads_and_writes_through_row_views(dtype):
    # Broadcast operands make the loop nested: each row's runs are 1-d views indexed by the
    # innermost variable alone (what lets LLVM vectorise it), including a run along which
    # an operand broadcasts (c: one element per row), a strided view and a last-axis sum.
    def f(a, b, c):
        e = a * b + c - a[:, ::-1] * a
        return e * e - b, np.sum(e * c, axis=-1)
    jf = ad.jit(f)
    args = (RNG.uniform(-1, 1, (5, 7)), RNG.uniform(-1, 1, 7), RNG.uniform(-1, 1, (5, 1)))
    args = tuple(a.astype(dtype) for a in args)
    prog = check(jf, f, args, rtol=1e-6 if dtype == np.float32 else 1e-14)
    srcs = [fusion._emit_cpu(k) for k in fusion.kernels(prog) if fusion._nested(k)]
    assert srcs and all("w = r * d1" in s and "A0[j1]" in s and "O0[j1]" in s
                        for s in srcs if "o0" in s.split("\n")[3])
    for _ in range(2):
        args = tuple(RNG.uniform(-1, 1, np.shape(a)).astype(dtype) for a in args)
        got, ref = jf(*args), plain(prog, *args)
        np.testing.assert_array_equal(got[0], ref[0])      # +, -, *: bit for bit
        assert got[0].dtype == dtype
        np.testing.assert_allclose(got[1], ref[1], rtol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_whole_powers_are_multiplied_out_within_round_off(dtype):
    # x**3 and x**4 (and their derivatives, 3 x**2 ...) as products in the loop, not pow
    def f(x):
        return np.sum(x ** 3 - 0.5 * x ** 4 + x ** 2.5)
    jg = ad.jit(ad.grad(f))
    x = RNG.uniform(0.5, 2.0, 50).astype(dtype)
    rtol = 1e-13 if dtype == np.float64 else 1e-5
    prog = check(jg, ad.grad(f), (x,), rtol=rtol)
    body = "\n".join(fusion._emit_cpu(k) for k in fusion.kernels(prog))
    assert "x0 * x0 * x0" in body and "**" not in body   # x ** 1.5 (d x**2.5): NumPy's pow
