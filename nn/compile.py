"""``nn.compile_step``: one training step (zero_grad, forward, backward, update) as one
recorded program, replayed by ``ad.jit`` on every batch.

The model is called as a pure function of its parameters (``functional_call``), so the
recording sees the parameters as inputs, not as constants: the program replays with each
step's new weights. The gradient of the loss, the reverse sweep included, and the
optimizer's update are recorded once per batch shape. The update is the optimizer's own
functional form (``Optimizer._fused_plan``/``_fused_hyper``/``_fused_update``: SGD with
momentum, dampening, Nesterov and weight decay; Adam and AdamW with amsgrad; RMSprop,
centered or with momentum; Adagrad), whose operations are those of the eager update in the
same order, so the numbers are the eager loop's. The program takes the
parameters, the optimizer's state buffers and the update's numbers (learning rate, bias
corrections: inputs, never constants, so a scheduler's new learning rate takes effect with
no new recording) and returns the new values, written back in place into the parameters'
and the state's arrays. An optimizer without a functional form (one's own ``Optimizer``
subclass, or a subclass with its own ``_update``) runs its eager update after the replay.

Cost: on the Python backend each operation of the update makes a new array and the
write-back copies the results (the eager update works in place in scratch arrays), so the
fused step is about as fast as an eager update after the replay (SGD), or some 10–20 %
slower (Adam: three arrays copied back per parameter); a backend that fuses elementwise
chains makes each parameter's update one pass. The call itself is cheap: the arguments are one
flat tuple of arrays and numbers, ``ad.jit``'s fast signature path.
"""
import numpy as np

import autodiff as ad
from autodiff.boxes import meta

from .module import Module, functional_call

__all__ = ["compile_step"]

#: Record the optimizer's update into the step's program (False: run the eager update
#: after the replay, the faster choice on the Python backend for Adam-like updates until
#: elementwise chains are fused; the numbers are the same either way).
FUSED_UPDATE = True

# Layers whose forward in training mode draws random numbers or writes running statistics:
# a recording would bake the draws in, and a replay would skip the writes.
_STATEFUL = ("Dropout", "BatchNorm1d", "BatchNorm2d")


def compile_step(model, loss_fn, optimizer):
    """``step(X, y)``: ``optimizer.zero_grad()``, ``loss_fn(model(X), y)``, its backward
    pass and ``optimizer.step()``, returning the loss as a float, with the eager loop's
    numbers. The forward pass, the backward pass and the update (SGD, Adam, AdamW,
    RMSprop, Adagrad; an optimizer of one's own updates eagerly after the replay) are
    recorded once per input signature
    (``ad.jit``) and replayed afterwards; the parameters' ``.grad`` and the optimizer's
    state are those the eager loop leaves, so training may go on either way.

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
    n_params = len(params)
    modules = list(model.modules())     # the structure is fixed once the step is compiled

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

    value_and_grad = ad.value_and_grad(loss_of, has_aux=True)

    def program(layout, *leaves):
        # The leaves, flat (the cheapest signature for ad.jit): parameters, buffers, X, y,
        # each updated parameter's state buffers, then the updates' numbers (one block per
        # group and step count, shared by the parameters it updates).
        modes, n_buffers, n_reads_all, plans = layout
        values = list(leaves[:n_params])
        k = n_params + n_buffers
        (loss, out), grads = value_and_grad(values, list(leaves[n_params:k]), leaves[k],
                                            leaves[k + 1], modes)
        outs = [loss, out, *grads]
        k += 2
        h0 = k + n_reads_all
        for i, plan in enumerate(plans):
            if plan is None:
                continue
            static, n_reads, h, n_hyper = plan
            bufs, hyper = leaves[k:k + n_reads], leaves[h0 + h:h0 + h + n_hyper]
            k += n_reads
            new_p, new_bufs = optimizer._fused_update(static, values[i], grads[i], bufs,
                                                      hyper)
            outs.append(new_p)
            outs.extend(new_bufs)
        return tuple(outs)

    run = ad.jit(program, static_argnums=(0,))

    # Which optimizer group updates each parameter (absent: the optimizer does not hold
    # it), rebuilt when the groups change (add_param_group, load_state_dict's new dicts).
    groups_seen, group_of = [None], {}

    def groups():
        seen = tuple((id(g), *map(id, g["params"])) for g in optimizer.param_groups)
        if seen != groups_seen[0]:
            group_of.clear()
            group_of.update((id(p), g) for g in optimizer.param_groups for p in g["params"])
            groups_seen[0] = seen
        return group_of

    def fusable():
        return FUSED_UPDATE and all(optimizer._fused_ok(g) for g in optimizer.param_groups) and all(
            type(p.value) is np.ndarray for p in params)

    # Which parameters the loss reaches, per mode and batch signature: the eager loop
    # leaves ``.grad`` None on the others and the optimizer skips them (no weight decay, no
    # momentum step), so the compiled step must too. The recorded gradient cannot tell
    # (an unreached parameter's zeros and a constant gradient both record as constants), so
    # one eager backward pass per signature finds them, as the eager loop would.
    reach_of = {}

    def reached(X, y, modes):
        key = (modes, np.shape(meta(X)), np.result_type(meta(X)).str, np.shape(meta(y)))
        r = reach_of.get(key)
        if r is None:
            saved = [p.grad for p in params]
            for p in params:
                p.grad = None
            try:
                out = model(X)
                target = y if prepare_target is None else prepare_target(y, out)
                loss_fn(out, target).backward()
                r = reach_of[key] = tuple(p.grad is not None for p in params)
            finally:
                for p, g in zip(params, saved):
                    p.grad = g
        return r

    def inputs(X, y, fused):
        """(layout, leaves, plans, reached) of this step; ``plans`` change nothing yet."""
        buffers = [np.asarray(meta(b)) for m in modules for b in m._buffers.values()
                   if b is not None]
        modes = tuple(m.training for m in modules)
        reach = reached(X, y, modes)
        values = [p.value for p in params]
        leaves = values + buffers
        leaves.append(np.asarray(meta(X)))
        leaves.append(np.asarray(meta(y)))
        plans, layout, hypers, blocks, n_reads = [], [], [], {}, 0
        group_of = groups()
        for p, v, hit in zip(params, values, reach):
            group = group_of.get(id(p)) if fused and hit else None
            if group is None:
                plans.append(None)
                layout.append(None)
                continue
            state = optimizer.state.get(p)
            if state is None:           # (the eager step makes it too, empty)
                state = optimizer.state[id(p)] = {}
            plan = optimizer._fused_plan(v, state, group)
            reads, n_hyper = plan["reads"], plan["n_hyper"]
            plans.append((v, state, plan))
            # One block of numbers per group and step count, shared by its parameters.
            block = (id(group), plan["static"], plan["set"].get("step"))
            h = blocks.get(block)
            if h is None:
                h = blocks[block] = len(hypers)
                hypers.extend(optimizer._fused_hyper(group, plan))
            layout.append((plan["static"], len(reads), h, n_hyper))
            leaves.extend(reads)
            n_reads += len(reads)
        leaves.extend(hypers)
        return (modes, len(buffers), n_reads, tuple(layout)), leaves, plans, reach

    def write_back(flat, plans):
        """The replay's new values into the parameters' and the state's arrays: the i-th
        buffer written goes into the i-th buffer read, where there is one."""
        k = 2 + n_params
        for entry in plans:
            if entry is None:
                continue
            v, state, plan = entry
            np.copyto(v, flat[k])
            k += 1
            if plan["set"]:
                state.update(plan["set"])
            reads = plan["reads"]
            for i, name in enumerate(plan["writes"]):
                if i < len(reads):
                    a = reads[i]
                    np.copyto(a, flat[k])
                    if state.get(name) is not a:        # zeros the plan made: kept now
                        state[name] = a
                else:           # a new buffer: a copy (the replay's array may be a .grad)
                    state[name] = np.array(flat[k], dtype=v.dtype)
                k += 1

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
        fused = fusable()
        layout, leaves, plans, reach = inputs(X, y, fused)
        flat = run(layout, *leaves)
        for p, g, hit in zip(params, flat[2:2 + n_params], reach):
            p.grad = g if hit else None
        if fused:
            write_back(flat, plans)
        else:
            optimizer.step()
        step.last_output = flat[1]
        return float(flat[0])

    def program_of(X, y):
        layout, leaves, _, _ = inputs(X, y, fusable())
        return run.program(layout, *leaves)

    step.last_output = None
    step.program = program_of
    step.fused = fusable
    step.jitted = run
    return step
