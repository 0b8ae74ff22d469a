"""Sparse test problems and the time their sparsity detection takes.

``brusselator_2d(N)`` is the 2-D Brusselator reaction–diffusion right-hand side on an N×N
periodic grid (two species, n = 2N²; five-point Laplacian with ``np.roll``, or with slices
of a wrapped pad), the standard stiff sparse problem; ``stencil_energy(N, 5 | 9)`` a scalar
energy on an N×N grid whose Hessian has the 5- or 9-point stencil's pattern.
``detection_seconds`` times ``ad.sparsity`` (or ``hessian_sparsity``) on them.
``bench_sparse.py`` may import these; run alone this prints the medians, with asdex's
detection of the same Brusselator (JAX) in the same run when asdex is installed::

    python benchmarks/sparsity_problems.py [N] [rounds]
"""
import harness  # noqa: F401  (first: one thread everywhere)

import sys
import time

import numpy as np

import autodiff as ad
from autodiff.sparsity import hessian_sparsity


def brusselator_2d(N=128, A=3.4, B=1.0, alpha=10.0, laplacian="roll"):
    """``(f, y0)``: ``f(y)`` the Brusselator right-hand side on an N×N periodic grid,
    ``y = [u.ravel(), v.ravel()]``; ``laplacian`` "roll" or "slices"."""
    h2 = (N - 1.0) ** 2

    def lap_roll(w):
        return np.roll(w, 1, 0) + np.roll(w, -1, 0) + np.roll(w, 1, 1) + np.roll(w, -1, 1) \
            - 4.0 * w

    def lap_slices(w):
        p = np.pad(w, 1, mode="wrap")
        return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4.0 * w

    lap = lap_roll if laplacian == "roll" else lap_slices

    def f(y):
        u = y[:N * N].reshape(N, N)
        v = y[N * N:].reshape(N, N)
        uuv = u * u * v
        du = B + uuv - (A + 1.0) * u + alpha * h2 * lap(u)
        dv = A * u - uuv + alpha * h2 * lap(v)
        return np.concatenate([du.ravel(), dv.ravel()])

    x = np.linspace(0.0, 1.0, N)
    u0 = 22.0 * (x[:, None] * (1 - x[:, None])) ** 1.5 * np.ones((1, N))
    v0 = 27.0 * (x[None, :] * (1 - x[None, :])) ** 1.5 * np.ones((N, 1))
    return f, np.concatenate([u0.ravel(), v0.ravel()])


def stencil_energy(N=128, points=5):
    """``(E, u0)``: a scalar energy of an N×N field with a 5-point (nearest neighbours) or
    9-point (and diagonal neighbours) Hessian: squared differences plus an on-site term."""
    def energy(u):
        w = u.reshape(N, N)
        e = 0.5 * np.sum((w[1:] - w[:-1]) ** 2) + 0.5 * np.sum((w[:, 1:] - w[:, :-1]) ** 2)
        if points == 9:
            e = e + 0.25 * np.sum((w[1:, 1:] - w[:-1, :-1]) ** 2) \
                + 0.25 * np.sum((w[1:, :-1] - w[:-1, 1:]) ** 2)
        return e + np.sum(np.cos(w))
    return energy, np.random.default_rng(0).uniform(-1.0, 1.0, N * N)


def detection_seconds(f, y, rounds=7, hessian=False):
    """Median and minimum wall time of ``ad.sparsity(f)(y)`` (``hessian_sparsity`` when
    ``hessian``), and the pattern."""
    detect = hessian_sparsity(f) if hessian else ad.sparsity(f)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        P = detect(y)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(min(times)), P


def asdex_detection_seconds(N=128, rounds=5, A=3.4, B=1.0, alpha=10.0):
    """asdex's ``jacobian_sparsity`` of the same Brusselator written in ``jax.numpy``
    (median, min, nnz), or None without asdex."""
    try:
        import asdex
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    h2 = (N - 1.0) ** 2

    def lap(w):
        return jnp.roll(w, 1, 0) + jnp.roll(w, -1, 0) + jnp.roll(w, 1, 1) \
            + jnp.roll(w, -1, 1) - 4.0 * w

    def f(y):
        u, v = y[:N * N].reshape(N, N), y[N * N:].reshape(N, N)
        uuv = u * u * v
        return jnp.concatenate([(B + uuv - (A + 1.0) * u + alpha * h2 * lap(u)).ravel(),
                                (A * u - uuv + alpha * h2 * lap(v)).ravel()])
    y = jnp.asarray(brusselator_2d(N)[1])
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        P = asdex.jacobian_sparsity(f, y)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(min(times)), int(P.nnz)


if __name__ == "__main__":
    N = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    for lap in ("roll", "slices"):
        f, y = brusselator_2d(N, laplacian=lap)
        med, best, P = detection_seconds(f, y, rounds)
        print(f"Brusselator N={N} (n={y.size}, {lap}): nnz={P.nnz} "
              f"({P.nnz / y.size:.0f} per row), detection median {med * 1e3:.0f} ms, "
              f"min {best * 1e3:.0f} ms over {rounds} rounds")
    for points in (5, 9):
        E, u = stencil_energy(N, points)
        med, best, H = detection_seconds(E, u, rounds, hessian=True)
        print(f"{points}-point energy N={N} (n={u.size}): Hessian nnz={H.nnz}, "
              f"detection median {med * 1e3:.0f} ms, min {best * 1e3:.0f} ms")
    peer = asdex_detection_seconds(N, min(rounds, 5))
    if peer is not None:
        med, best, nnz = peer
        print(f"asdex.jacobian_sparsity, same Brusselator (roll): nnz={nnz}, "
              f"median {med * 1e3:.0f} ms, min {best * 1e3:.0f} ms")
