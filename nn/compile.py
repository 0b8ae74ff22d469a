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

Which parameters get a gradient is the eager backward's answer: the trainable ones
(``requires_grad``, part of the signature, so freezing or unfreezing records anew) that the
recorded reverse sweep reaches. That set is a constant output of each recording, so a
forward that branches on values (one program per branch, ``ad.jit``'s guards) updates
exactly the sub-networks the replayed branch reaches, as the eager loop does. What a replay
cannot repeat is refused while recording (``NotImplementedError`` naming the layer): random
draws (``nn.init``'s generator behind dropout and RReLU, NumPy's global one, a generator a
module holds), which would be one frozen mask, and buffer writes (running statistics),
which a replay would skip. Models on the GPU are refused too: ``ad.jit`` records host
arrays.

Cost: on the Python backend each operation of the update makes a new array and the
write-back copies the results (the eager update works in place in scratch arrays), so the
fused step is about as fast as an eager update after the replay (SGD), or some 10–20 %
slower (Adam: three arrays copied back per parameter); a backend that fuses elementwise
chains makes each parameter's update one pass. The call itself is cheap: the arguments are one
flat tuple of arrays and numbers, ``ad.jit``'s fast signature path.
"""
import sys

import numpy as np

import autodiff as ad
from autodiff.api import _level, _like_input, _one, _plain_aux, _scalar, _zeros
from autodiff.boxes import meta
from autodiff.reverse import Variable, backward_pass, origin

from . import init as _init
from .module import Module, functional_call

__all__ = ["compile_step"]

#: Record the optimizer's update into the step's program (False: run the eager update
#: after the replay, the faster choice on the Python backend for Adam-like updates until
#: elementwise chains are fused; the numbers are the same either way).
FUSED_UPDATE = True

_EAGER_FIX = ("Train this model with the eager loop (fit(..., compile=False), or "
              "zero_grad/backward/step by hand)")


def _on_device(v):
    """Whether ``v`` is a device (GPU) array, which ``ad.jit`` does not record."""
    return type(v) is not np.ndarray and hasattr(v, "to_host")


def _refuse_device(what):
    raise NotImplementedError(
        f"compile_step runs on CPU models: {what} on the GPU, and ad.jit records host "
        "(NumPy) arrays only. " + _EAGER_FIX.replace("Train this model", "Train on the "
        "GPU") + ", or move the model and the batches to the CPU (model.to('cpu')) to "
        "compile the step.")


class _WatchedGenerator:
    """Stands in for ``nn.init``'s generator while a step is recorded: every draw goes to
    the real generator, and the first caller is noted so the refusal can name it."""

    def __init__(self, gen, where):
        self._gen = gen
        self._where = where
        self.caller = None

    def __getattr__(self, name):
        attr = getattr(self._gen, name)
        if self.caller is None and callable(attr) and not name.startswith("_"):
            self.caller = self._where(sys._getframe(1), name)
        return attr


def _legacy_state_equal(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


class _SideEffects:
    """What a recording must not do, checked while ``compile_step`` records: draw random
    numbers (``nn.init``'s generator, behind dropout and RReLU; NumPy's global one; a
    generator a module holds) or write a buffer (running statistics). A replay would repeat
    the recorded draws and skip the writes, so the compiled step would silently differ from
    the eager loop: refused, with the layer named, and the generators put back as they
    were (an eager loop started afterwards draws what it would have drawn)."""

    def __init__(self, model, modules):
        self.names = {id(m): name for name, m in model.named_modules()}
        self.modules = modules

    def describe(self, m):
        name = self.names.get(id(m))
        if name is None:
            return f"a {type(m).__name__}"
        if name == "":
            return f"the model ({type(m).__name__})"
        return f"'{name}' ({type(m).__name__})"

    def where(self, frame, method):
        """``"F.dropout() in the forward of '1' (Dropout)"``: the function that drew and the
        innermost module of this model whose code called it."""
        fn = frame.f_code.co_name
        mod = frame.f_globals.get("__name__", "")
        what = f"{mod}.{fn}()" if mod and mod != "__main__" else f"{fn}()"
        what = what.replace("autodiff.nn.functional.", "F.")
        f = frame           # (up to this module's frames: the model's calls end there)
        while f is not None and f.f_globals.get("__name__") != __name__:
            s = f.f_locals.get("self")
            if isinstance(s, Module) and id(s) in self.names:
                return f"{what} (generator.{method}) in the forward of {self.describe(s)}"
            f = f.f_back
        return f"{what} (generator.{method})"

    def __enter__(self):
        self.gen = _init._state["rng"]
        self.gen_state = self.gen.bit_generator.state
        self.watch = _init._state["rng"] = _WatchedGenerator(self.gen, self.where)
        self.legacy = np.random.get_state()
        self.held = []          # generators the modules hold: (module, attribute, gen, state)
        for m in self.modules:
            for k, g in vars(m).items():
                if isinstance(g, np.random.Generator) and g is not self.gen:
                    self.held.append((m, k, g, g.bit_generator.state))
                elif isinstance(g, np.random.RandomState):
                    self.held.append((m, k, g, g.get_state()))
        return self

    def __exit__(self, *exc):
        if _init._state["rng"] is self.watch:
            _init._state["rng"] = self.gen

    def draws(self):
        """What drew random numbers during the recording, and the generators put back."""
        found = []
        if self.gen.bit_generator.state != self.gen_state:
            found.append(self.watch.caller or "code using nn.init's generator")
            self.gen.bit_generator.state = self.gen_state
        if not _legacy_state_equal(np.random.get_state(), self.legacy):
            found.append("code using np.random.* (NumPy's global generator)")
            np.random.set_state(self.legacy)
        for m, k, g, state in self.held:
            if isinstance(g, np.random.RandomState):
                if not _legacy_state_equal(g.get_state(), state):
                    found.append(f"code using the generator {k!r} of {self.describe(m)}")
                    g.set_state(state)
            elif g.bit_generator.state != state:
                found.append(f"code using the generator {k!r} of {self.describe(m)}")
                g.bit_generator.state = state
        return found

    def check(self, written, cause=None):
        """Refuse when the recording drew random numbers or wrote buffers (``written``:
        [(module, buffer name)])."""
        found = self.draws()
        if found:
            raise NotImplementedError(
                f"compile_step: {found[0]} draws random numbers while the step is recorded "
                "(dropout, RReLU, or other layers in training mode): a recorded program would "
                "replay the same draws, one frozen dropout mask, on every step, so the "
                f"compiled step would not be the eager loop's. {_EAGER_FIX}, or call "
                "model.eval() first if the layer's eval behaviour is what you want "
                "(no dropout).") from cause
        if written:
            m, k = written[0]
            more = ", ".join(f"{self.describe(m2)}.{k2}" for m2, k2 in written[1:4])
            raise NotImplementedError(
                f"compile_step: the forward of {self.describe(m)} writes its buffer {k!r} "
                "(running statistics: BatchNorm, InstanceNorm with track_running_stats, "
                "... in training mode)" + (f", as do {more}" if more else "") +
                ": a recorded program would skip the writes when it replays, leaving stale "
                f"statistics. {_EAGER_FIX}, or call model.eval() first if training with "
                "the running statistics frozen is what you want.") from cause


def compile_step(model, loss_fn, optimizer):
    """``step(X, y)``: ``optimizer.zero_grad()``, ``loss_fn(model(X), y)``, its backward
    pass and ``optimizer.step()``, returning the loss as a float, with the eager loop's
    numbers. The forward pass, the backward pass and the update (SGD, Adam, AdamW,
    RMSprop, Adagrad; an optimizer of one's own updates eagerly after the replay) are
    recorded once per input signature
    (``ad.jit``) and replayed afterwards; the parameters' ``.grad`` and the optimizer's
    state are those the eager loop leaves, so training may go on either way.

    Each module's training flag and each parameter's ``requires_grad`` are part of the
    signature: ``model.eval()`` or ``p.requires_grad_(False)`` between steps records anew.
    A forward that branches on values records one program per branch (``ad.jit``'s
    guards), each knowing which parameters its loss reaches. A step whose recording draws
    random numbers (dropout, RReLU in training mode) or writes buffers (BatchNorm's
    running statistics in training mode) is refused with a ``NotImplementedError`` naming
    the layer: a replay would repeat the draws and skip the writes. So is a model on the
    GPU (``model.to("gpu")``): train those with the eager loop.

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
    effects = _SideEffects(model, modules)

    def check_host(X=None, y=None):
        if any(_on_device(p.value) for p in params):
            _refuse_device("the model's parameters are")
        if any(_on_device(b) for m in modules for b in m._buffers.values()):
            _refuse_device("the model's buffers are")
        if _on_device(X) or _on_device(y):
            _refuse_device("the batch is")

    check_host()

    def forward(values, buffers, X, y):
        """The loss and the output with ``values`` and ``buffers`` in place of the
        parameters and buffers (run while recording only). Buffers (running statistics)
        are inputs too, so a replay reads their current values."""
        owners = [(m, k) for m in modules for k in m._buffers if m._buffers[k] is not None]
        saved = [m._buffers[k] for m, k in owners]
        slots = [getattr(b, "slot", None) for b in buffers]
        written = []
        try:
            for (m, k), b in zip(owners, buffers):
                m._buffers[k] = b
            with effects:
                try:
                    out = functional_call(model, dict(zip(names, values)), X)
                    if prepare_target is not None:
                        y = prepare_target(y, out)
                    loss = loss_fn(out, y)
                except Exception as e:
                    # (a layer may fail on a traced value after a draw or a write: the
                    # refusal says why, the original error is its cause)
                    written = [(m, k) for (m, k), b, s in zip(owners, buffers, slots)
                               if m._buffers[k] is not b or getattr(b, "slot", None) != s]
                    effects.check(written, e)
                    raise
            # A buffer assigned anew (self.b = ...) or written in place (b[...] = ...:
            # the traced value then stands for a new instruction).
            written = [(m, k) for (m, k), b, s in zip(owners, buffers, slots)
                       if m._buffers[k] is not b or getattr(b, "slot", None) != s]
        finally:
            for (m, k), b in zip(owners, saved):
                m._buffers[k] = b
        effects.check(written)
        return loss, out

    def program(layout, *leaves):
        # The leaves, flat (the cheapest signature for ad.jit): parameters, buffers, X, y,
        # each updated parameter's state buffers, then the updates' numbers (one block per
        # group and step count, shared by the parameters it updates).
        _, trainable, n_buffers, n_reads_all, plans = layout     # (modes: the signature)
        values = leaves[:n_params]
        k = n_params + n_buffers
        # The reverse sweep as the eager loop's backward(): the trainable parameters are
        # the leaves (a frozen one is a constant), and those the sweep reaches get a
        # gradient. Which ones it reaches is a constant of this recording, so each branch
        # of a forward that branches on values carries its own (an output of the program).
        with _level() as level:
            vs = [Variable(v, level=level) if t else v for v, t in zip(values, trainable)]
            loss, out = forward(vs, leaves[n_params:k], leaves[k], leaves[k + 1])
            out = _plain_aux(out, level)
        if type(loss) is not Variable or loss.level != level or loss.parents is None:
            raise RuntimeError(
                "compile_step: the loss depends on no parameter requiring grad (all frozen "
                "by requires_grad_(False), or unused), so backward() would fail in the "
                "eager loop too (element 0 of tensors does not require grad).")
        if not _scalar(meta(loss.value)):
            raise TypeError(f"compile_step: the loss must be a real scalar, got shape "
                            f"{np.shape(meta(loss.value))} (backward() of a non-scalar "
                            "needs a cotangent)")
        got = {id(v): g for v, g in backward_pass([(loss, _one(loss.value))])}
        grads, reach = [], []
        for v, x, t in zip(vs, values, trainable):
            g = got.get(id(origin(v))) if t else None
            reach.append(g is not None)
            grads.append(_zeros(x) if g is None else _like_input(g, x))
        outs = [loss.value, out, np.array(reach, dtype=bool), *grads]
        k += 2
        h0 = k + n_reads_all
        for i, plan in enumerate(plans):
            if plan is None:
                continue
            static, n_reads, h, n_hyper, n_writes = plan
            bufs, hyper = leaves[k:k + n_reads], leaves[h0 + h:h0 + h + n_hyper]
            k += n_reads
            if not reach[i]:            # not reached on this branch: no update (written
                outs.extend([0.0] * (1 + n_writes))         # back nowhere)
                continue
            new_p, new_bufs = optimizer._fused_update(static, values[i], grads[i], bufs,
                                                      hyper)
            if len(new_bufs) != n_writes:
                raise RuntimeError(f"compile_step: {type(optimizer).__name__}'s fused update "
                                   f"returned {len(new_bufs)} buffers for {n_writes} writes")
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

    def inputs(X, y, fused):
        """(layout, leaves, plans) of this step; ``plans`` change nothing yet (a parameter
        without optimizer state gets it when its update is written back, as eagerly)."""
        if _on_device(X) or _on_device(y):
            _refuse_device("the batch is")
        buffers = [meta(b) for m in modules for b in m._buffers.values() if b is not None]
        for i, b in enumerate(buffers):
            if type(b) is not np.ndarray:
                if _on_device(b):
                    _refuse_device("the model's buffers are")
                buffers[i] = np.asarray(b)
        modes = tuple(m.training for m in modules)
        trainable = tuple(p.requires_grad for p in params)
        values = [p.value for p in params]
        if not fused and any(_on_device(v) for v in values):
            _refuse_device("the model's parameters are")
        leaves = values + buffers
        leaves.append(np.asarray(meta(X)))
        leaves.append(np.asarray(meta(y)))
        plans, layout, hypers, blocks, n_reads = [], [], [], {}, 0
        group_of = groups()
        for p, v, t in zip(params, values, trainable):
            group = group_of.get(id(p)) if fused and t else None
            if group is None:
                plans.append(None)
                layout.append(None)
                continue
            state = optimizer.state.get(p)
            fresh = state is None
            if fresh:                   # (made, empty, when the update is written back)
                state = {}
            plan = optimizer._fused_plan(v, state, group)
            reads, n_hyper = plan["reads"], plan["n_hyper"]
            plans.append((p, v, state, plan, fresh))
            # One block of numbers per group and step count, shared by its parameters.
            block = (id(group), plan["static"], plan["set"].get("step"))
            h = blocks.get(block)
            if h is None:
                h = blocks[block] = len(hypers)
                hypers.extend(optimizer._fused_hyper(group, plan))
            layout.append((plan["static"], len(reads), h, n_hyper, len(plan["writes"])))
            leaves.extend(reads)
            n_reads += len(reads)
        leaves.extend(hypers)
        return (modes, trainable, len(buffers), n_reads, tuple(layout)), leaves, plans

    def write_back(flat, plans, reach):
        """The replay's new values into the parameters' and the state's arrays: the i-th
        buffer written goes into the i-th buffer read, where there is one. A parameter
        the loss did not reach on this step's branch is left as the eager step leaves it."""
        k = 3 + n_params
        for i, entry in enumerate(plans):
            if entry is None:
                continue
            p, v, state, plan, fresh = entry
            if not reach[i]:
                k += 1 + len(plan["writes"])
                continue
            if fresh:
                got = optimizer.state.get(p)
                if got is None:
                    optimizer.state[id(p)] = state
                else:
                    state = got
            np.copyto(v, flat[k])
            k += 1
            if plan["set"]:
                state.update(plan["set"])
            reads = plan["reads"]
            for j, name in enumerate(plan["writes"]):
                if j < len(reads):
                    a = reads[j]
                    np.copyto(a, flat[k])
                    if state.get(name) is not a:        # zeros the plan made: kept now
                        state[name] = a
                else:           # a new buffer: a copy (the replay's array may be a .grad)
                    state[name] = np.array(flat[k], dtype=v.dtype)
                k += 1

    def step(X, y):
        optimizer.zero_grad()
        fused = fusable()
        layout, leaves, plans = inputs(X, y, fused)
        flat = run(layout, *leaves)
        reach = flat[2]
        for p, g, hit in zip(params, flat[3:3 + n_params], reach):
            p.grad = g if hit else None
        if fused:
            write_back(flat, plans, reach)
        else:
            optimizer.step()
        step.last_output = flat[1]
        return float(flat[0])

    def program_of(X, y):
        layout, leaves, _ = inputs(X, y, fusable())
        return run.program(layout, *leaves)

    step.last_output = None
    step.program = program_of
    step.fused = fusable
    step.jitted = run
    return step
