"""A physics-informed network: fit u so that u'' = f on [0, 1] with u(0) = u(1) = 0.

With f(x) = -π² sin(πx) the solution is u(x) = sin(πx). The loss holds the residual
u''(xᵢ) - f(xᵢ) at collocation points and the two boundary values. u'' comes from nested
forward mode with respect to the *input* (``ad.derivative(order=2)``); the parameters are
eager ``Variable``s, so ``loss.backward()`` differentiates through that second derivative
with respect to the weights (forward-over-forward-over-reverse, no special code).

    python examples/pinn_poisson.py
"""
import time

import numpy as np

import autodiff as ad
from autodiff import nn


def train(steps=1500, n_points=32, seed=0, verbose=False):
    """Train; return the largest error against sin(πx) on a fine grid."""
    nn.init.manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                        nn.Linear(16, 1))

    def u(x):                                   # x: (n,) -> u: (n,)
        return net(np.reshape(x, (-1, 1)))[:, 0]

    u_xx = ad.derivative(u, order=2)            # elementwise in x: each point its own
    xs = (np.arange(n_points) + 0.5) / n_points
    f = -np.pi ** 2 * np.sin(np.pi * xs)
    ends = np.array([0.0, 1.0])
    opt = nn.optim.Adam(net.parameters(), lr=1e-2)
    sched = nn.optim.lr_scheduler.StepLR(opt, step_size=500, gamma=0.3)
    for step in range(steps):
        opt.zero_grad()
        r = u_xx(xs) - f
        loss = np.mean(r * r) + 10.0 * np.mean(u(ends) ** 2)
        loss.backward()
        opt.step()
        sched.step()
        if verbose and step % 250 == 0:
            print(f"step {step:5d}  loss {loss.value:.3e}")
    grid = np.linspace(0, 1, 201)
    return float(np.max(np.abs(u(grid).value - np.sin(np.pi * grid))))


if __name__ == "__main__":
    t0 = time.perf_counter()
    err = train(verbose=True)
    print(f"max |u - sin(πx)| on [0, 1]: {err:.2e}  ({time.perf_counter() - t0:.1f} s)")
