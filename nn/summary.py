"""``model.summary()``: Keras's table of a model's layers, output shapes and parameter
counts.

Output shapes come from one forward pass in eval mode on zeros, with the parameters'
values standing in for the parameters (no tape), on ``input_size`` or on the shapes the
model last saw in ``fit``/``predict``/``evaluate``; without either the column says "?".
"""
import numpy as np

__all__ = ["summary"]


def _shape_text(out, batch):
    if isinstance(out, (tuple, list)):
        return "[" + ", ".join(_shape_text(o, batch) for o in out) + "]"
    shape = np.shape(getattr(out, "value", out))
    if not shape:
        return "()"
    dims = ["None" if i == 0 and d == batch else str(d) for i, d in enumerate(shape)]
    return "(" + ", ".join(dims) + (",)" if len(dims) == 1 else ")")


def _count(arrays):
    return int(sum(np.size(getattr(a, "value", a)) for a in arrays))


def _trace_shapes(model, inputs):
    """{module id: output shape text} of every sub-module, from one forward pass."""
    from .module import functional_call
    shapes = {}
    batch = len(inputs[0]) if inputs and np.ndim(inputs[0]) else None
    wrapped = []
    for _, m in model.named_modules():
        if m is model:
            continue

        def hook(*args, _m=m, _fwd=type(m).forward, **kwargs):
            out = _fwd(_m, *args, **kwargs)
            shapes.setdefault(id(_m), _shape_text(out, batch))
            return out
        object.__setattr__(m, "forward", hook)
        wrapped.append(m)
    was_training = model.training
    model.eval()
    try:
        params = {n: p.value for n, p in model.named_parameters(remove_duplicate=False)}
        out = functional_call(model, params, *inputs)
        shapes[id(model)] = _shape_text(out, batch)
    finally:
        for m in wrapped:
            m.__dict__.pop("forward", None)
        model.train(was_training)
    return shapes


def summary(model, input_size=None, dtypes=None, print_fn=None, line_length=None):
    """Print a Keras-like table: each direct sub-module ("Layer (type)"), its output shape
    (the batch axis shown as ``None``) and its parameter count; then the totals (trainable:
    the parameters, counted once when shared; non-trainable: the buffers, such as
    BatchNorm's running statistics).

    ``input_size``: the shape of one input including a batch axis, e.g. ``(1, 784)``, or a
    list of them for a model with several inputs (torchinfo's convention); ``dtypes`` their
    dtypes (default: the model's float dtype). Without it the shapes the model last saw in
    ``fit``/``predict``/``evaluate`` are used. ``print_fn`` receives each line (default
    ``print``). Returns None, as Keras.

    >>> from autodiff import nn
    >>> nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)).summary(input_size=(1, 4))
    ... # doctest: +ELLIPSIS
    Model: "Sequential"
    ...
    Total params: 58
    ...
    """
    print_fn = print if print_fn is None else print_fn
    inputs = None
    if input_size is not None:
        sizes = [input_size] if all(isinstance(d, (int, np.integer)) for d in input_size) \
            else list(input_size)
        if dtypes is None:
            dt = next((p.value.dtype for p in model.parameters()
                       if np.result_type(p.value).kind == "f"), np.float64)
            dtypes = [dt] * len(sizes)
        elif not isinstance(dtypes, (list, tuple)):
            dtypes = [dtypes] * len(sizes)
        inputs = tuple(np.zeros(tuple(s), dtype=d) for s, d in zip(sizes, dtypes))
    elif getattr(model, "_input_spec", None):
        inputs = tuple(np.zeros((1,) + shape, dtype=dt) for shape, dt in model._input_spec)
    shapes = {}
    if inputs is not None:
        try:
            shapes = _trace_shapes(model, inputs)
        except Exception as e:   # noqa: BLE001 - a summary still lists the layers
            if input_size is not None:
                raise ValueError(f"summary: the forward pass on input_size={input_size} "
                                 f"failed ({type(e).__name__}: {e})") from e
            shapes = {}
    rows = [(name, m) for name, m in model.named_children()] or [("", model)]
    table = []
    for name, m in rows:
        label = f"{name} ({type(m).__name__})" if name else type(m).__name__
        n = _count(p for _, p in m.named_parameters()) + _count(
            b for _, b in m.named_buffers() if np.result_type(b).kind == "f")
        table.append((label, shapes.get(id(m), "?"), f"{n:,}"))
    widths = [max([len("Layer (type)")] + [len(r[0]) for r in table]) + 2,
              max([len("Output Shape")] + [len(r[1]) for r in table]) + 2,
              max([len("Param #")] + [len(r[2]) for r in table])]
    if line_length:
        widths[0] = max(widths[0], line_length - widths[1] - widths[2])
    total_width = sum(widths)
    trainable = _count(model.parameters())
    buffers = _count(b for _, b in model.named_buffers()
                     if np.result_type(b).kind == "f")

    def row(cells):
        return cells[0].ljust(widths[0]) + cells[1].ljust(widths[1]) + cells[2].rjust(widths[2])

    print_fn(f'Model: "{type(model).__name__}"')
    print_fn("_" * total_width)
    print_fn(row(("Layer (type)", "Output Shape", "Param #")))
    print_fn("=" * total_width)
    for i, r in enumerate(table):
        print_fn(row(r))
        if i < len(table) - 1:
            print_fn("")
    print_fn("=" * total_width)
    print_fn(f"Total params: {trainable + buffers:,}")
    print_fn(f"Trainable params: {trainable:,}")
    print_fn(f"Non-trainable params: {buffers:,}")
    print_fn("_" * total_width)
