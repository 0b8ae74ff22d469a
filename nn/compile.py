"""``nn.compile_step``: one training step (zero_grad, forward, backward, update) whose
forward and backward are one recorded program, replayed by ``ad.jit`` on every batch.

The model is called as a pure function of its parameters (``functional_call``), so the
recording sees the parameters as inputs, not as constants: the program replays with each
step's new weights. The gradient of the loss, the reverse sweep included, is recorded once
per batch shape; the optimizer's update then runs as in the eager loop, in place on the
parameters' arrays (its formulas are the optimizer's own, so the numbers are the eager
loop's).
"""
import numpy as np

import autodiff as ad
from autodiff.boxes import meta

from .module import Module, functional_call

__all__ = ["compile_step"]

# Layers whose forward in training mode draws random numbers or writes running statistics:
# a recording would bake the draws in, and a replay would skip the writes.
_STATEFUL = ("Dropout", "BatchNorm1d", "BatchNorm2d")


def compile_step(model, loss_fn, optimizer):
    """``step(X, y)``: ``optimizer.zero_grad()``, ``loss_fn(model(X), y)``, its backward
    pass and ``optimizer.step()``, returning the loss as a float, with the eager loop's
    numbers. The forward and backward pass are recorded once per input signature
    (``ad.jit``) and replayed afterwards.

    >>> import numpy as np
    >>> from autodiff import nn
    >>> model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    >>> opt = nn.optim.SGD(model.parameters(), lr=0.1)
    >>> step = nn.compile_step(model, nn.functional.mse_loss, opt)
    >>> X, y = np.ones((8, 3)), np.zeros((8, 1))
    >>> losses = [step(X, y) for _ in range(3)]
    >>> losses[2] < losses[0]
    True
    """
    return _compile_step(model, loss_fn, optimizer)


def _compile_step(model, loss_fn, optimizer, prepare_target=None):
    """``compile_step``; ``step.last_output`` keeps the batch's model output (for
    ``fit``'s metrics), and ``prepare_target(y, out)`` adapts a target to the output."""
    if not isinstance(model, Module):
        raise TypeError(f"compile_step: model must be an nn.Module, got {type(model).__name__}")
    names = [name for name, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]

    def loss_of(values, buffers, X, y, modes):
        # Buffers (running statistics) are inputs too, so a replay reads their current
        # values; ``modes`` (each module's training flag) is static: another mode records.
        owners = [(m, k) for m in modules for k in m._buffers if m._buffers[k] is not None]
        saved = [m._buffers[k] for m, k in owners]
        try:
            for (m, k), b in zip(owners, buffers):
                m._buffers[k] = b
            out = functional_call(model, dict(zip(names, values)), X)
        finally:
            for (m, k), b in zip(owners, saved):
                m._buffers[k] = b
        if prepare_target is not None:
            y = prepare_target(y, out)
        return loss_fn(out, y), out

    run = ad.jit(ad.value_and_grad(loss_of, has_aux=True), static_argnums=(4,))

    modules = list(model.modules())     # the structure is fixed once the step is compiled

    def inputs(X, y):
        buffers = [b for m in modules for b in m._buffers.values() if b is not None]
        modes = tuple(m.training for m in modules)
        return ([p.value for p in params], [np.asarray(meta(b)) for b in buffers],
                np.asarray(meta(X)), np.asarray(meta(y)), modes)

    def step(X, y):
        if model.training:
            for m in modules:
                if type(m).__name__ in _STATEFUL:
                    raise NotImplementedError(
                        f"compile_step: {type(m).__name__} in training mode draws random "
                        "numbers or updates running statistics on every call, which a "
                        "recorded program would replay unchanged. Train this model with the "
                        "eager loop (fit(..., compile=False)), or call model.eval() first.")
        optimizer.zero_grad()
        (loss, out), grads = run(*inputs(X, y))
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        step.last_output = out
        return float(loss)

    step.last_output = None
    step.program = lambda X, y: run.program(*inputs(X, y))
    return step
