"""Sparse test problems and the time their sparsity detection takes.

``brusselator_2d(N)`` is the 2-D Brusselator reaction–diffusion right-hand side on an N×N
periodic grid (two species, n = 2N²; five-point Laplacian with ``np.roll``, or with slices
of a wrapped pad), the standard stiff sparse problem; ``detection_seconds`` times
``ad.sparsity`` on it. ``bench_sparse.py`` imports both; run alone this prints the medians::

    python benchmarks/sparsity_problems.py [N] [rounds]
"""
import harness  # noqa: F401  (first: one thread everywhere)

import sys
import time

import numpy as np

import autodiff as ad


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


def detection_seconds(f, y, rounds=7):
    """Median and minimum wall time of ``ad.sparsity(f)(y)``, and the pattern."""
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        P = ad.sparsity(f)(y)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), float(min(times)), P


if __name__ == "__main__":
    N = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    for lap in ("roll", "slices"):
        f, y = brusselator_2d(N, laplacian=lap)
        med, best, P = detection_seconds(f, y, rounds)
        print(f"Brusselator N={N} (n={y.size}, {lap}): nnz={P.nnz} "
              f"({P.nnz / y.size:.0f} per row), detection median {med * 1e3:.0f} ms, "
              f"min {best * 1e3:.0f} ms over {rounds} rounds")
