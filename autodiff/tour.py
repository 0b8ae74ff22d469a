"""The tour of the engine on built-in examples: ``python -m autodiff``.

1. A dual number gives d/dx sin x at π/16.
2. The adjoint tape of f(x, y) = xy + exp(xy), record by record, with its adjoints.
3. Forces of a 13-atom Lennard-Jones cluster by reverse mode, checked against finite
   differences.
4. A Jacobian in both modes, timed, and the mode ``mode="auto"`` picks.
"""
import time

import numpy as np

import autodiff as ad

RULE = "─" * 72


def lennard_jones(x):
    """E = Σ_{i<j} 4 (r⁻¹² − r⁻⁶) for positions ``x`` of shape (N, 3), all pairs at once."""
    n = x.shape[0]
    d = x[:, None, :] - x[None, :, :]
    r2 = np.sum(d * d, axis=-1) + np.eye(n)          # 1 on the diagonal: no self-pairs
    inv6 = (1.0 / r2) ** 3
    return 2.0 * np.sum((inv6 * inv6 - inv6) * (1.0 - np.eye(n)))


def icosahedral_cluster(seed=0):
    """13 atoms: one at the centre, 12 on an icosahedron near the LJ optimum, jiggled."""
    phi = (1 + 5 ** 0.5) / 2
    v = np.array([[0, s1, s2 * phi] for s1 in (-1, 1) for s2 in (-1, 1)], dtype=float)
    verts = np.concatenate([v, np.roll(v, 1, axis=1), np.roll(v, 2, axis=1)])
    verts *= 1.09 / np.linalg.norm(verts[0])
    x = np.concatenate([np.zeros((1, 3)), verts])
    return x + 0.02 * np.random.default_rng(seed).standard_normal(x.shape)


def section(title):
    print(f"\n{RULE}\n {title}\n{RULE}")


def dual_numbers():
    section("1. A dual number carries the derivative: sin(a + bε) = sin a + b cos a · ε")
    a = np.pi / 16
    y = np.sin(ad.Dual(a, 1.0))
    print(f"  x = π/16 = {a:.6f}, seeded with tangent 1:  x = {a:.6f} + 1ε")
    print(f"  sin(x)   = {y.value:.15f} + {y.tangent:.15f} ε")
    print(f"  cos(π/16)  = {np.cos(a):.15f}    (the tangent is d/dx sin x, exactly)")


def adjoint_tape():
    section("2. The adjoint tape of f(x, y) = x·y + exp(x·y) at (1, 2)")
    with ad.Tape() as tape:
        x, y = ad.Variable(1.0), ad.Variable(2.0)
        xy = x * y
        f = xy + np.exp(xy)
        f.backward()
    print("  Each record is one primitive; after the reverse sweep, its adjoint ∂f/∂record.")
    print("  xy (v2) feeds two records, so its adjoint is the sum 1 + e² of both uses:")
    for line in str(tape).splitlines():
        print("  " + line)
    e2 = np.exp(2.0)
    print(f"  ∂f/∂x = y(1 + e^xy) = {x.grad:.6f}   (by hand: {2 * (1 + e2):.6f})")
    print(f"  ∂f/∂y = x(1 + e^xy) = {y.grad:.6f}   (by hand: {1 + e2:.6f})")


def lj_forces():
    section("3. Forces of a 13-atom Lennard-Jones cluster: F = −∇E by reverse mode")
    x = icosahedral_cluster()
    energy, g = ad.value_and_grad(lennard_jones)(x)
    forces = -g
    h = 1e-6
    fd = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        e = np.zeros_like(x)
        e[idx] = h
        fd[idx] = -(lennard_jones(x + e) - lennard_jones(x - e)) / (2 * h)
    err = np.max(np.abs(forces - fd))
    print(f"  energy E = {energy:.10f} ε   (the relaxed cluster, the global minimum: −44.3268 ε)")
    print(f"  |F| largest = {np.max(np.linalg.norm(forces, axis=1)):.6f},  "
          f"Σ F = {np.abs(forces.sum(axis=0)).max():.1e} (Newton's third law)")
    print("  atom   Fx            Fy            Fz")
    for i in (0, 1, 2):
        print(f"  {i:>4}  " + "  ".join(f"{v:+.8f}" for v in forces[i]))
    print(f"   ...  ({len(x)} atoms)")
    print(f"  largest difference from central finite differences: {err:.1e}")


def _best_time(fn, *args, repeats=5):
    fn(*args)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best


def jacobian_modes():
    section("4. One Jacobian, two modes: n forward sweeps vs m reverse sweeps")
    rng = np.random.default_rng(0)
    print("  f(x) = tanh(W x) · sum(x²) with W of shape (m, n)")
    print(f"  {'n':>6} {'m':>6}   {'forward':>10}   {'reverse':>10}   auto picks   agree")
    for n, m in [(10, 1000), (1000, 10), (300, 300)]:
        W = rng.standard_normal((m, n)) / np.sqrt(n)
        f = lambda x, W=W: np.tanh(W @ x) * np.sum(x * x)   # noqa: E731
        x = rng.standard_normal(n)
        jf, jr = ad.jacobian(f, mode="forward"), ad.jacobian(f, mode="reverse")
        auto = ad.jacobian(f)
        auto(x)
        tf, tr = _best_time(jf, x), _best_time(jr, x)
        agree = np.allclose(jf(x), jr(x), rtol=1e-10, atol=1e-12)
        print(f"  {n:>6} {m:>6}   {tf * 1e3:>8.2f}ms   {tr * 1e3:>8.2f}ms   "
              f"{auto.last_mode:>10}   {'yes' if agree else 'NO'}")
    print("  Forward mode costs grow with the inputs n, reverse with the outputs m;")
    print('  mode="auto" takes forward when n < m. Each is one batched sweep.')


def main():
    print("autodiff: forward mode on dual numbers, reverse mode on an adjoint tape.")
    dual_numbers()
    adjoint_tape()
    lj_forces()
    jacobian_modes()
    print(f"\n{RULE}\n More: README.md, and `pytest` for the tests.\n")
