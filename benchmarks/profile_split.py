"""Where a derivative's time goes: f, recording the tape, the reverse sweep, the API.

    python benchmarks/profile_split.py

For each gradient workload of bench_core.py, on one pinned core: the plain NumPy time of f;
f on a leaf ``Variable`` (recording); recording plus ``backward_pass`` (the sweep); and
``ad.grad`` end to end. Differences give the cost of each stage in units of f. For the
forward-mode Jacobian and the Hessian, the tangent batch makes every operation act on
B times more data; the script prints that volume beside the measured ratio.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import timeit  # noqa: E402

import numpy as np  # noqa: E402

import autodiff as ad  # noqa: E402
from autodiff.reverse import Variable, backward_pass  # noqa: E402

if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def best(fn, min_time=0.2):
    n = 1
    while timeit.timeit(fn, number=n) < min_time / 5:
        n *= 2
    return min(timeit.repeat(fn, number=n, repeat=5)) / n


def lj(x, eye):
    diff = x[:, None, :] - x[None, :, :]
    r2 = (diff * diff).sum(-1) + eye
    inv6 = (1.0 / r2) ** 3
    return 2.0 * (inv6 * inv6 - inv6).sum()


def rosen(x):
    a = x[:-1]
    return (100.0 * (x[1:] - a ** 2) ** 2 + (1.0 - a) ** 2).sum()


def split(name, f, x, *rest):
    tf = best(lambda: f(x, *rest))
    trec = best(lambda: f(Variable(x), *rest))

    def both():
        y = f(Variable(x), *rest)
        backward_pass([(y, 1.0)])
    tboth = best(both)
    g = ad.grad(f)
    tgrad = best(lambda: g(x, *rest))
    print(f"{name:<26} f {tf * 1e6:9.1f} µs | recording {trec / tf:5.2f} f | sweep "
          f"{(tboth - trec) / tf:5.2f} f | API {(tgrad - tboth) / tf:5.2f} f | "
          f"grad {tgrad / tf:5.2f} f")


def batched(name, jac, f, x, n_dir):
    tf = best(lambda: f(x))
    tj = best(lambda: jac(x))
    print(f"{name:<26} f {tf * 1e6:9.1f} µs | {n_dir} directions: each operation moves "
          f"{n_dir}× the data of f | measured {tj / tf:6.1f} f ({tj / tf / n_dir:.2f} f "
          f"per direction)")


def main():
    rng = np.random.default_rng(0)
    for n in (64, 1024):
        k = int(np.ceil(n ** (1 / 3)))
        grid = np.stack(np.meshgrid(*(np.arange(k, dtype=float),) * 3, indexing="ij"), -1)
        x = grid.reshape(-1, 3)[:n] * 1.12 + 0.05 * rng.standard_normal((n, 3))
        split(f"Lennard-Jones N={n}", lj, x, np.eye(n))
    for n in (10, 100_000):
        split(f"Rosenbrock n={n}", rosen, np.linspace(-1.2, 1.1, n))
    n = 200
    h, z = 1.0 / (n + 1), np.zeros(1)

    def bratu(u):
        up, um = np.concatenate([u[1:], z]), np.concatenate([z, u[:-1]])
        return (um - 2.0 * u + up) / (h * h) + np.exp(u)
    batched("Bratu Jacobian n=200 fwd", ad.jacobian(bratu, mode="forward"), bratu,
            np.linspace(0, 1, n), n)

    def hess_fun(x):
        return np.log(1.0 + x ** 2).sum() + rosen(x)
    batched("Hessian n=100", ad.hessian(hess_fun), hess_fun, np.linspace(-1, 1, 100), 100)


if __name__ == "__main__":
    main()
