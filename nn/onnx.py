"""``nn.export_onnx``: write any model to an ONNX file (opset 17) by tracing its forward pass.

>>> import numpy as np
>>> from autodiff import nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
>>> nn.export_onnx(model, np.zeros((1, 4)), "model.onnx")          # doctest: +SKIP

The model's call ``model(example_input)`` is recorded once by ``ad.jit``'s recorder into a
program (the input a slot, parameters and buffers constants, which become the graph's
initializers), and every instruction is written as ONNX nodes: custom ``forward`` methods,
residual connections, Embedding (Gather), RNN/LSTM/GRU (the fused ``lstm_sequence``,
``gru_sequence``, ``lstm_cell`` and ``gru_cell`` primitives, unrolled), attention written
with matmul/softmax/masks, convolutions, pooling, normalisation, the activations, the losses'
forward parts, reshapes, transposes, indexing, concatenation, reductions, comparisons and
``where``. The nn layers with one ONNX operator (Linear, Conv1d/2d, the pools, BatchNorm,
LayerNorm, Flatten, Dropout, the activations: ``SUPPORTED``) are written as that operator
when the module is the nn class itself. A primitive with no ONNX mapping is a
``NotImplementedError`` naming it and the layer it ran in.

The graph is the one path the example took. Python loops are unrolled: a recurrent layer's
graph has the example's sequence length fixed (only the batch axis is dynamic). Python
branching on values (``if x.sum() > 0``) would hard-code one branch, so it is refused
(``ValueError``); branching on shapes is fine.

Dynamic batch: axis 0 of the input is a dynamic ``"batch"`` axis. The model is recorded at
the example's batch size N and at N + 1 and N + 2; the recordings must agree but for
numbers affine in the batch size (reshape targets, broadcast shapes, divisors), which are
computed at run time from ``Shape(input)[0]``, and constants made in ``forward`` whose
shape grows with the batch and whose values repeat along it (``zeros((N, hidden))``), which
become ``Expand`` of one row. Anything else that differs is refused (export with
``dynamic_batch=False`` then).

Inputs and outputs: one input ``input_name`` (float inputs in the export dtype; integer
inputs, as Embedding's indices, int64); the outputs are the leaves of what ``forward``
returns, the first named ``output_name``, the others ``output_name_1``, ``output_name_2``, ….

Dtypes: tensors are float32 or float64 as ``dtype=``, by default the model's parameters'
dtype, except that a model whose forward runs a convolution exports as float32 (onnxruntime
has no float64 ``Conv``). onnxruntime's CPU kernels for ``Conv``, ``AveragePool``, ``Elu``,
``Softplus`` and ``Erf`` (in GELU) exist for float32 only: a float64 model using them (with
``dtype=np.float64`` given) is valid ONNX that onnxruntime cannot run. (In float64 exports
LeakyReLU, ELU, Softplus, BatchNorm and LayerNorm are written with elementary operators
instead of ``LeakyRelu``/``Elu``/``Softplus``/``BatchNormalization``/``LayerNormalization``,
whose coefficients and epsilons are float32 attributes.)
"""
import math

import numpy as np

import autodiff as ad
from autodiff.core import Primitive, bind
from autodiff.program import CALL, CONST, FUNC, GUARD, ITEM, Slot
from autodiff.program import fill as _sub
from autodiff.tracing import Tracer

from .module import Module, functional_call
from .onnx_ops import EMITTERS

__all__ = ["export_onnx"]

OPSET = 17
IR_VERSION = 8          # the IR version of opset 17; newer IRs are refused by older runtimes


# Layers written as their one ONNX operator (Gemm, Conv, BatchNormalization, …) when the
# module is the nn class itself (its own forward): the rest is traced primitive by primitive.
SUPPORTED = frozenset((
    "Linear", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
    "Flatten", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "Dropout", "Identity", "ReLU",
    "LeakyReLU", "ELU", "GELU", "Tanh", "Sigmoid", "Softplus", "Softmax", "LogSoftmax"))


def _import_onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as e:
        raise ImportError("nn.export_onnx needs the 'onnx' package, an optional dependency: "
                          "pip install onnx (or autodiff[onnx], which adds onnxruntime)") from e
    return onnx, helper, numpy_helper


def _arr(v):
    return None if v is None else np.asarray(getattr(v, "value", v))


def _pair(v, n):
    if isinstance(v, (tuple, list)):
        if len(v) != n:
            raise ValueError(f"expected {n} values, got {v!r}")
        return [int(a) for a in v]
    return [int(v)] * n


class _Graph:
    def __init__(self, helper, numpy_helper, dtype):
        self.h, self.nh, self.dtype = helper, numpy_helper, np.dtype(dtype)
        self.nodes, self.inits, self.names = [], [], set()

    def name(self, base):
        base = base.replace(".", "_") or "t"
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def const(self, base, value, dtype=None):
        a = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        name = self.name(base)
        self.inits.append(self.nh.from_array(a.copy(order="C"), name))   # 0-d stays 0-d
        return name

    def node(self, op, inputs, base, **attrs):
        out = self.name(base)
        self.nodes.append(self.h.make_node(op, list(inputs), [out], name=self.name(f"{base}_{op}"),
                                           **attrs))
        return out


def _unsupported(path, m, why=""):
    return NotImplementedError(
        f"export_onnx: layer {path!r} of type {type(m).__name__} is not supported"
        f"{': ' + why if why else ''}.")


def _conv_pads(m, path, kernel, dilation, nd):
    padding = getattr(m, "padding", 0)
    if isinstance(padding, str):
        if padding == "valid":
            return [0] * (2 * nd)
        if padding == "same":
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return [t // 2 for t in total] + [t - t // 2 for t in total]
        raise _unsupported(path, m, f"padding={padding!r}")
    p = _pair(padding, nd)
    return p + p


def _emit(g, path, m, x, in_shape, out_shape):
    """Append the nodes of leaf module ``m`` to ``g`` reading tensor ``x``; return the name of
    its output. ``in_shape``/``out_shape`` come from running ``m`` on the example."""
    kind = type(m).__name__
    base = path
    if kind in ("Identity", "Dropout"):
        return x
    if kind == "Linear":
        w, b = _arr(m.weight), _arr(getattr(m, "bias", None))
        if len(in_shape) == 2:
            inputs = [x, g.const(f"{path}.weight", w)]
            if b is not None:
                inputs.append(g.const(f"{path}.bias", b))
            return g.node("Gemm", inputs, base, transB=1)
        y = g.node("MatMul", [x, g.const(f"{path}.weight_T", w.T)], base)
        return y if b is None else g.node("Add", [y, g.const(f"{path}.bias", b)], base)
    if kind in ("Conv1d", "Conv2d"):
        nd = 1 if kind == "Conv1d" else 2
        if getattr(m, "padding_mode", "zeros") != "zeros":
            raise _unsupported(path, m, f"padding_mode={m.padding_mode!r}")
        w, b = _arr(m.weight), _arr(getattr(m, "bias", None))
        kernel = list(w.shape[2:])
        dilation = _pair(getattr(m, "dilation", 1), nd)
        inputs = [x, g.const(f"{path}.weight", w)]
        if b is not None:
            inputs.append(g.const(f"{path}.bias", b))
        return g.node("Conv", inputs, base, kernel_shape=kernel,
                      strides=_pair(getattr(m, "stride", 1), nd),
                      pads=_conv_pads(m, path, kernel, dilation, nd), dilations=dilation,
                      group=int(getattr(m, "groups", 1)))
    if kind in ("MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"):
        nd = int(kind[-2])
        k = _pair(m.kernel_size, nd)
        stride = getattr(m, "stride", None)
        s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
            else _pair(stride, nd)
        p = _pair(getattr(m, "padding", 0), nd)
        attrs = dict(kernel_shape=k, strides=s, pads=p + p,
                     ceil_mode=int(bool(getattr(m, "ceil_mode", False))))
        if kind.startswith("MaxPool"):
            if getattr(m, "return_indices", False):
                raise _unsupported(path, m, "return_indices=True")
            d = _pair(getattr(m, "dilation", 1), nd)
            if d != [1] * nd:
                attrs["dilations"] = d
            return g.node("MaxPool", [x], base, **attrs)
        if getattr(m, "divisor_override", None) is not None:
            raise _unsupported(path, m, "divisor_override")
        attrs["count_include_pad"] = int(bool(getattr(m, "count_include_pad", True)))
        return g.node("AveragePool", [x], base, **attrs)
    if kind == "Flatten":
        r = len(in_shape)
        a, e = m.start_dim % r, m.end_dim % r
        if a == 1 and e == r - 1:
            return g.node("Flatten", [x], base, axis=1)
        # The traced shape, with the batch axis copied (0) so that it stays dynamic, or
        # inferred (-1) when the flattened block takes it in.
        shape = [0 if a > 0 else -1] + list(out_shape[1:])
        return g.node("Reshape", [x, g.const(f"{path}.shape", shape, np.int64)], base)
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        mean, var = _arr(getattr(m, "running_mean", None)), _arr(getattr(m, "running_var", None))
        if mean is None or var is None:
            raise _unsupported(path, m, "it has no running statistics "
                               "(track_running_stats=False)")
        c = mean.shape[0]
        if len(in_shape) < 2 or in_shape[1] != c:
            raise _unsupported(path, m, f"input of shape {in_shape} (channels on axis 1 "
                               f"expected, {c} of them)")
        w, b = _arr(getattr(m, "weight", None)), _arr(getattr(m, "bias", None))
        if g.dtype == np.float64:
            # (x - μ)/√(σ² + ε)·γ + β with float64 constants: BatchNormalization's epsilon
            # is a float32 attribute (off by ~1e-9 when σ² is small).
            bshape = (c,) + (1,) * (len(in_shape) - 2)
            y = g.node("Sub", [x, g.const(f"{path}.running_mean", mean.reshape(bshape))], base)
            y = g.node("Div", [y, g.const(f"{path}.running_std",
                                           np.sqrt(var + m.eps).reshape(bshape))], base)
            if w is not None:
                y = g.node("Mul", [y, g.const(f"{path}.weight", w.reshape(bshape))], base)
            if b is not None:
                y = g.node("Add", [y, g.const(f"{path}.bias", b.reshape(bshape))], base)
            return y
        inputs = [x, g.const(f"{path}.weight", np.ones(c) if w is None else w),
                  g.const(f"{path}.bias", np.zeros(c) if b is None else b),
                  g.const(f"{path}.running_mean", mean), g.const(f"{path}.running_var", var)]
        return g.node("BatchNormalization", inputs, base, epsilon=float(m.eps))
    if kind == "LayerNorm":
        shape = tuple(m.normalized_shape)
        w, b = _arr(getattr(m, "weight", None)), _arr(getattr(m, "bias", None))
        if g.dtype == np.float64:
            # As the layer computes it, with a float64 ε (LayerNormalization's epsilon is a
            # float32 attribute, off by ~1e-9 when the variance is small).
            axes = list(range(-len(shape), 0))
            d = g.node("Sub", [x, g.node("ReduceMean", [x], base, axes=axes, keepdims=1)], base)
            var = g.node("ReduceMean", [g.node("Mul", [d, d], base)], base, axes=axes,
                         keepdims=1)
            std = g.node("Sqrt", [g.node("Add", [var, g.const(f"{path}.eps", m.eps)], base)],
                         base)
            y = g.node("Div", [d, std], base)
            if w is not None:
                y = g.node("Mul", [y, g.const(f"{path}.weight", w)], base)
            if b is not None:
                y = g.node("Add", [y, g.const(f"{path}.bias", b)], base)
            return y
        inputs = [x, g.const(f"{path}.weight", np.ones(shape) if w is None else w),
                  g.const(f"{path}.bias", np.zeros(shape) if b is None else b)]
        return g.node("LayerNormalization", inputs, base, axis=-len(shape),
                      epsilon=float(m.eps))
    if kind == "ReLU":
        return g.node("Relu", [x], base)
    exact = g.dtype == np.float64
    if kind == "LeakyReLU":
        if exact:   # PRelu takes the slope as a float64 tensor, LeakyRelu as a float32 attribute
            return g.node("PRelu", [x, g.const(f"{path}.negative_slope",
                                                [m.negative_slope])], base)
        return g.node("LeakyRelu", [x], base, alpha=float(m.negative_slope))
    if kind == "ELU":
        if exact:   # max(x, 0) + α(exp(min(x, 0)) - 1): a float64 α, kernels in float64
            zero, one = g.const(f"{path}.zero", 0.0), g.const(f"{path}.one", 1.0)
            em1 = g.node("Sub", [g.node("Exp", [g.node("Min", [x, zero], base)], base), one], base)
            neg = g.node("Mul", [em1, g.const(f"{path}.alpha", m.alpha)], base)
            return g.node("Add", [g.node("Max", [x, zero], base), neg], base)
        return g.node("Elu", [x], base, alpha=float(m.alpha))
    if kind == "Tanh":
        return g.node("Tanh", [x], base)
    if kind == "Sigmoid":
        return g.node("Sigmoid", [x], base)
    if kind == "Softplus":
        beta = float(getattr(m, "beta", 1.0))
        b = g.const(f"{path}.beta", beta) if beta != 1.0 else None
        bx = x if b is None else g.node("Mul", [x, b], base)
        if exact:   # max(bx, 0) + log(1 + exp(-|bx|)): stable, with kernels in float64
            zero, one = g.const(f"{path}.zero", 0.0), g.const(f"{path}.one", 1.0)
            e = g.node("Exp", [g.node("Neg", [g.node("Abs", [bx], base)], base)], base)
            sp = g.node("Add", [g.node("Max", [bx, zero], base),
                                g.node("Log", [g.node("Add", [e, one], base)], base)], base)
        else:
            sp = g.node("Softplus", [bx], base)
        return sp if b is None else g.node("Div", [sp, b], base)
    if kind in ("Softmax", "LogSoftmax"):
        dim = getattr(m, "dim", -1)
        dim = -1 if dim is None else int(dim)
        return g.node(kind if kind == "Softmax" else "LogSoftmax", [x], base, axis=dim)
    if kind == "GELU":
        approx = getattr(m, "approximate", "none")
        half = g.const(f"{path}.half", 0.5)
        one = g.const(f"{path}.one", 1.0)
        if approx == "tanh":
            # 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
            x3 = g.node("Mul", [g.node("Mul", [x, x], base), x], base)
            inner = g.node("Add", [x, g.node("Mul", [x3, g.const(f"{path}.c", 0.044715)], base)],
                           base)
            t = g.node("Tanh", [g.node("Mul", [inner, g.const(f"{path}.k",
                                                                math.sqrt(2.0 / math.pi))],
                                       base)], base)
        elif approx == "none":
            # 0.5 x (1 + erf(x / √2)); opset 17 has no Gelu operator.
            t = g.node("Erf", [g.node("Mul", [x, g.const(f"{path}.rsqrt2",
                                                         1.0 / math.sqrt(2.0))], base)], base)
        else:
            raise _unsupported(path, m, f"approximate={approx!r}")
        return g.node("Mul", [g.node("Mul", [x, half], base), g.node("Add", [t, one], base)],
                      base)
    raise _unsupported(path, m)


class Affine:
    """An integer of the recorded program equal to ``a·batch + b`` (found by recording at
    three batch sizes)."""
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __repr__(self):
        return f"{self.a}·batch{self.b:+d}"


class Tiled:
    """A constant whose shape grows with the batch and whose values repeat along the
    growing axes: ``Expand(base, shape)``."""
    __slots__ = ("base", "shape")

    def __init__(self, base, shape):
        self.base, self.shape = base, shape


def _layer_impl(x, layer):
    path, m = layer
    dt = np.asarray(x).dtype
    params = {n: _cast(p, dt) if dt.kind == "f" else _cast(p, None)
              for n, p in m.named_parameters(remove_duplicate=False)}
    forward = m.__dict__.pop("forward", None)      # the class's own, not the hook
    try:
        return functional_call(m, params, x)
    finally:
        if forward is not None:
            object.__setattr__(m, "forward", forward)


# One instruction per nn layer written as its own ONNX operator (see SUPPORTED).
_layer_p = Primitive("onnx_layer", _layer_impl)


def _own_nn_class(m):
    """``m`` is an instance of the nn class of its name, with that class's forward."""
    from autodiff import nn
    cls = getattr(nn, type(m).__name__, None)
    return cls is type(m) and "forward" not in m.__dict__


class _Hooks:
    """While recording: the layer path of each instruction (innermost module first), and
    the SUPPORTED layers recorded as one ``onnx_layer`` instruction."""

    def __init__(self, model):
        self.model = model
        self.paths = {}         # id(instruction) -> layer path
        self.keep = []          # the recorders' instruction lists (ids stay valid)

    def __enter__(self):
        self.wrapped = []
        for path, m in self.model.named_modules():
            if "forward" in m.__dict__:
                continue
            fused = type(m).__name__ in SUPPORTED and _own_nn_class(m)
            object.__setattr__(m, "forward", self._wrap(m, path or type(m).__name__, fused))
            self.wrapped.append(m)
        return self

    def __exit__(self, *exc):
        for m in self.wrapped:
            object.__delattr__(m, "forward")

    def _wrap(self, m, path, fused):
        forward = type(m).forward.__get__(m)

        def run(*args, **kwargs):
            tracers = [a for a in args if type(a) is Tracer]
            if not tracers:
                return forward(*args, **kwargs)
            rec = tracers[0].rec
            start = len(rec.instructions)
            if fused and len(args) == 1 and not kwargs:
                out = bind(_layer_p, args[0], layer=(path, m))
            else:
                out = forward(*args, **kwargs)
            if not any(k is rec.instructions for k in self.keep):
                self.keep.append(rec.instructions)
            for ins in rec.instructions[start:]:
                self.paths.setdefault(id(ins), path)
            return out
        return run


def _record(model, x, dtype, hooks):
    """The program of ``model(x)`` with float parameters and buffers in ``dtype``."""
    params = {n: _cast(p.value, dtype) for n, p in model.named_parameters(remove_duplicate=False)}
    saved = []
    for m in model.modules():
        for k, b in m._buffers.items():
            if isinstance(b, np.ndarray) and b.dtype.kind == "f" and b.dtype != dtype:
                saved.append((m, k, b))
                m._buffers[k] = b.astype(dtype)
    try:
        with hooks:
            return ad.jit(lambda v: functional_call(model, params, v)).program(x)
    finally:
        for m, k, b in saved:
            m._buffers[k] = b


def _cast(v, dtype):
    v = np.asarray(getattr(v, "value", v))
    return v.astype(dtype) if dtype is not None and v.dtype.kind == "f" else v


def _grow(x, n):
    """``x`` with ``n`` rows along axis 0 (its rows repeated)."""
    return np.take(x, np.arange(n) % x.shape[0], axis=0)


# ----- Comparing the recordings at batch sizes N, N+1, N+2 -----
class _Mismatch(Exception):
    pass


def _unify(ts, n):
    """One template from the templates ``ts`` recorded at batch sizes n, n+1, n+2."""
    t0 = ts[0]
    tt = type(t0)
    if any(type(t) is not tt for t in ts):
        raise _Mismatch(f"{ts[0]!r} and {ts[1]!r}")
    if tt is Slot:
        if len({t.index for t in ts}) != 1:
            raise _Mismatch("the programs differ")
        return t0
    if tt is tuple or tt is list:
        if len({len(t) for t in ts}) != 1:
            raise _Mismatch(f"{t0!r} has another length at another batch size")
        return tt(_unify([t[i] for t in ts], n) for i in range(len(t0)))
    if tt is dict:
        if len({tuple(t) for t in ts}) != 1:
            raise _Mismatch("keyword arguments differ")
        return {k: _unify([t[k] for t in ts], n) for k in t0}
    if tt is slice:
        parts = [_unify([getattr(t, p) for t in ts], n) for p in ("start", "stop", "step")]
        return slice(*parts)
    if tt is np.ndarray:
        if all(t.shape == t0.shape for t in ts) and all(
                np.array_equal(t, t0, equal_nan=t0.dtype.kind in "fc") for t in ts[1:]):
            return t0
        if len({t.ndim for t in ts}) != 1:
            raise _Mismatch(f"a constant of shape {t0.shape} changes rank with the batch")
        shape = tuple(_unify([t.shape[i] for t in ts], n) for i in range(t0.ndim))
        grow = tuple(i for i, s in enumerate(shape) if type(s) is Affine)
        if not grow:
            raise _Mismatch(f"a constant of shape {t0.shape} has values that depend on the "
                            "batch size")
        base = t0[tuple(slice(0, 1) if i in grow else slice(None) for i in range(t0.ndim))]
        if 0 in t0.shape or not all(np.array_equal(np.broadcast_to(base, t.shape), t)
                                    for t in ts):
            raise _Mismatch(f"a constant of shape {t0.shape} made inside forward grows with "
                            "the batch but its rows differ")
        return Tiled(base, shape)
    if (tt is int or isinstance(t0, np.integer)) and tt is not bool:
        if len({int(t) for t in ts}) == 1:
            return t0
        a = int(ts[1]) - int(ts[0])
        if int(ts[2]) - int(ts[1]) != a:
            raise _Mismatch(f"the number {t0} is not affine in the batch size")
        return Affine(a, int(ts[0]) - a * n)
    if tt is float or isinstance(t0, np.floating):
        if all(t == t0 or (t != t and t0 != t0) for t in ts):
            return t0
        raise _Mismatch(f"the number {t0!r} depends on the batch size")
    if all(t is t0 for t in ts) or all(t == t0 for t in ts):
        return t0
    raise _Mismatch(f"{t0!r} depends on the batch size")


def _unified(progs, n, paths):
    """The instructions of ``progs[0]`` with the batch-dependent numbers as Affine/Tiled."""
    first = progs[0]
    lens = {len(p.instructions) for p in progs}
    if len(lens) != 1:
        raise ValueError(
            f"export_onnx: the model records {len(first.instructions)} primitive calls at batch "
            f"size {n} but {len(progs[1].instructions)} at {n + 1}: its forward depends on the "
            "batch size beyond shapes ONNX can compute (a loop over axis 0?). Export with "
            "dynamic_batch=False, or put the batch axis first and loop over another one.")
    out = []
    for k, group in enumerate(zip(*(p.instructions for p in progs))):
        kind, slot, fn, args, kw = group[0]
        if any(g[0] != kind or g[1] != slot or g[2] is not fn and g[2] != fn for g in group):
            raise ValueError(f"export_onnx: the recordings at batch sizes {n} and {n + 1} "
                             f"differ at instruction {k}{_where(paths, group[0])}; export "
                             "with dynamic_batch=False.")
        if kind == GUARD:
            out.append((group[0], group[0]))
            continue
        try:
            uargs = _unify([g[3] for g in group], n)
            ukw = _unify([g[4] for g in group], n)
        except _Mismatch as e:
            raise ValueError(
                f"export_onnx: {_name(kind, fn)}{_where(paths, group[0])} cannot have a dynamic "
                f"batch axis: {e}. Export with dynamic_batch=False.") from None
        out.append(((kind, slot, fn, uargs, ukw), group[0]))
    try:
        outs = [_unify(list(o), n) for o in zip(*(p.outputs for p in progs))]
    except _Mismatch as e:
        raise ValueError(f"export_onnx: an output cannot have a dynamic batch axis: {e}. "
                         "Export with dynamic_batch=False.") from None
    return out, outs


def _name(kind, fn):
    if kind == CALL:
        return f"primitive {fn.name!r}"
    if kind == FUNC:
        return f"function {getattr(fn, '__name__', fn)!r}"
    return f"instruction {kind!r}"


def _where(paths, ins):
    p = paths.get(id(ins))
    return f" in layer {p!r}" if p else ""


# ----- Emitting -----


def _dynamic(t):
    tt = type(t)
    if tt is Affine or tt is Tiled or tt is Slot:
        return True
    if tt is tuple or tt is list:
        return any(_dynamic(a) for a in t)
    if tt is dict:
        return any(_dynamic(a) for a in t.values())
    if tt is slice:
        return any(_dynamic(a) for a in (t.start, t.stop, t.step))
    return False


class _Context:
    """The graph being written and the ONNX name of each slot; helpers for emitters."""

    def __init__(self, g, input_name):
        self.g = g
        self.names = {0: input_name}
        self.dtypes = {}
        self.input = input_name
        self._batch = None
        self.where = ""
        self.prim = ""

    def elem(self, dtype):
        return self.g.h.np_dtype_to_tensor_dtype(np.dtype(dtype))

    def node(self, op, inputs, **attrs):
        return self.g.node(op, inputs, f"{self.prim}", **attrs)

    def const(self, value, dtype):
        return self.g.const("c", value, dtype)

    def unsupported(self, prim, why):
        return NotImplementedError(f"export_onnx: primitive {prim!r}{self.where} {why} has no "
                                   "ONNX mapping.")

    def static(self, t, what):
        if _dynamic(t):
            raise ValueError(f"export_onnx: {what}{self.where} depends on the batch size or on "
                             "values; export with dynamic_batch=False.")
        return t

    def batch(self):
        if self._batch is None:
            shape = self.g.node("Shape", [self.input], "batch_size")
            self._batch = self.g.node("Slice", [shape, self.const([0], np.int64),
                                                self.const([1], np.int64)], "batch_size")
        return self._batch

    def int_tensor(self, v):
        """An int or Affine as an int64 tensor of shape (1,)."""
        if type(v) is not Affine:
            return self.const([int(v)], np.int64)
        y = self.batch()
        if v.a != 1:
            y = self.node("Mul", [y, self.const([v.a], np.int64)])
        if v.b:
            y = self.node("Add", [y, self.const([v.b], np.int64)])
        return y

    def shape_tensor(self, seq):
        """A sequence of ints (some Affine) as a 1-D int64 tensor."""
        seq = list(seq)
        if not any(type(s) is Affine for s in seq):
            return self.const([int(s) for s in seq], np.int64)
        return self.node("Concat", [self.int_tensor(s) for s in seq], axis=0)

    def scalar_index(self, t):
        """An integer index (0-d int64): Gather with it drops the axis."""
        if type(t) is Slot:
            return self.node("Reshape", [self.tensor(t, np.int64), self.const([], np.int64)])
        if type(t) is Affine:
            return self.node("Reshape", [self.int_tensor(t), self.const([], np.int64)])
        return self.const(int(t), np.int64)

    def tensor(self, t, dtype=None):
        """The ONNX name of an argument (a slot, a constant, an Affine, a Tiled), cast to
        ``dtype`` when given."""
        tt = type(t)
        if tt is Slot:
            name = self.names[t.index]
            have = self.dtypes.get(t.index)
            if dtype is not None and have is not None and have != np.dtype(dtype):
                return self.node("Cast", [name], to=self.elem(dtype))
            return name
        if tt is Affine:
            y = self.node("Reshape", [self.int_tensor(t), self.const([], np.int64)])
            if dtype is not None and np.dtype(dtype) != np.int64:
                y = self.node("Cast", [y], to=self.elem(dtype))
            return y
        if tt is Tiled:
            base = self.tensor(t.base, dtype)
            return self.node("Expand", [base, self.shape_tensor(t.shape)])
        if t is None:
            raise ValueError(f"export_onnx: a missing (None) tensor argument{self.where}")
        a = np.asarray(t)
        if dtype is not None:
            a = a.astype(dtype)
        elif a.dtype == np.int32 or a.dtype == np.intp:
            a = a.astype(np.int64)
        return self.g.const("const", a, a.dtype)

    def transposed(self, t, dtype):
        if type(t) is np.ndarray:
            return self.tensor(np.ascontiguousarray(t.T), dtype)
        return self.node("Transpose", [self.tensor(t, dtype)], perm=[1, 0])


def _emit_program(cx, pairs, vals, paths):
    """Write each instruction: ``pairs`` of (unified instruction, the example's own)."""
    for ins, orig in pairs:
        kind, slot, fn, args, kw = ins
        cx.where = _where(paths, orig)
        if kind == GUARD:
            if fn != "shape":
                raise ValueError(
                    f"export_onnx: the forward pass depends on values{cx.where}: "
                    f"{_GUARDS.get(fn, f'a {fn!r} guard')}. The ONNX graph would hard-code the "
                    "branch this example took. Write it with np.where / masks, or move the "
                    "decision out of forward.")
            continue
        # The recorded values at the example's batch size, for shapes and dtypes.
        vargs, vkw = _sub(orig[3], vals), _sub(orig[4], vals)
        if kind == FUNC:
            raise NotImplementedError(
                f"export_onnx: the NumPy function {getattr(fn, '__name__', fn)!r}{cx.where} "
                "(recorded without derivative) has no ONNX mapping.")
        if kind == CALL and fn is not _layer_p and fn.name not in EMITTERS:
            raise NotImplementedError(
                f"export_onnx: primitive {fn.name!r}{cx.where} has no ONNX mapping "
                f"(mapped: {', '.join(sorted(EMITTERS))}).")
        if kind == CALL:
            value = fn.impl(*vargs, **vkw)
            if fn is _layer_p and np.result_type(value).kind == "f" and \
                    np.result_type(vargs[0]).kind == "f":
                value = np.asarray(value, np.result_type(vargs[0]))    # float32 buffers
        elif kind == ITEM:
            value = vals[args[0].index][fn]
        else:
            value = vargs[0]
        vals[slot] = value
        out = np.asarray(value)
        if kind == ITEM:
            src = cx.names[args[0].index]
            if not isinstance(src, list):
                raise NotImplementedError(f"export_onnx: an element of a tuple result"
                                          f"{cx.where} has no ONNX mapping.")
            cx.names[slot] = src[fn]
        elif kind == CONST:
            cx.names[slot] = cx.tensor(args[0])
        elif fn is _layer_p:
            path, m = vkw["layer"]
            x = np.asarray(vargs[0])
            cx.prim = path
            cx.names[slot] = _emit(cx.g, path, m, cx.tensor(args[0]), x.shape, out.shape)
        else:
            cx.prim = (paths.get(id(orig)) or fn.name)
            cx.names[slot] = EMITTERS[fn.name](cx, args, kw, vargs, vkw, out)
        cx.dtypes[slot] = out.dtype


_GUARDS = {"bool": "Python branched on a value (bool(x): an `if` or `while` on a traced value)",
           "index": "a traced value was used as an index or a count (operator.index)",
           "int": "int() of a traced value",
           "value": "the numbers of a traced value were read (np.asarray, .item(), a library "
                    "call)"}


def _conv_in(program):
    return any(i[0] == CALL and (i[2].name == "conv2d" or i[2] is _layer_p and "Conv" in
                                 type(i[4]["layer"][1]).__name__)
               for i in program.instructions)


def _model_dtype(model, example):
    for p in model.parameters():
        dt = np.result_type(getattr(p, "value", p))
        if dt.kind == "f":
            return dt
    dt = np.asarray(example).dtype
    return dt if dt.kind == "f" else np.dtype(np.float64)


def _dims(shapes, n, dynamic):
    """An output's ONNX dims from its shapes at batch sizes n, n+1, n+2."""
    if not dynamic:
        return list(shapes[0])
    dims = []
    for ds in zip(*shapes):
        if len(set(ds)) == 1:
            dims.append(int(ds[0]))
        elif list(ds) == [n, n + 1, n + 2]:
            dims.append("batch")
        else:
            dims.append(None)
    return dims


def export_onnx(model, example_input, path, dtype=None, input_name="input",
                output_name="output", dynamic_batch=True, check=True):
    """Write ``model`` to ``path`` as an ONNX model (opset 17) and return the ``ModelProto``.

    ``model(example_input)`` is traced (in eval mode) into a program whose primitives are
    written as ONNX nodes; see this module's docstring for what exports. ``example_input``:
    an array with a batch axis first; axis 0 is a dynamic ``"batch"`` axis unless
    ``dynamic_batch=False``, the other axes are fixed (recurrent layers: the sequence length
    too, the recorded loop is unrolled). ``dtype`` (float32 or float64) defaults to the
    model's, float32 when a convolution is present. The graph is the inference form (as
    PyTorch's default export): BatchNorm uses its running statistics, Dropout is dropped.
    ``check`` runs ``onnx.checker`` on the result. Needs the ``onnx`` package.
    Refusals: ``NotImplementedError`` for a primitive without ONNX mapping (named, with its
    layer), ``ValueError`` for a forward that branches on values or whose recording at
    another batch size differs beyond what ONNX computes from the batch size.
    """
    onnx, helper, numpy_helper = _import_onnx()
    if not isinstance(model, Module):
        raise TypeError(f"export_onnx: model must be an nn.Module, got {type(model).__name__}")
    if dtype is not None and np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"export_onnx: dtype must be float32 or float64, got {np.dtype(dtype)}")
    x = np.asarray(getattr(example_input, "value", example_input))
    if x.ndim == 0:
        raise ValueError("export_onnx: example_input needs a batch axis")
    if x.shape[0] == 0:
        raise ValueError("export_onnx: example_input has an empty batch axis")
    dt = np.dtype(_model_dtype(model, x) if dtype is None else dtype)

    def inputs(dt):
        return x.astype(dt) if x.dtype.kind == "f" else (
            x.astype(np.int64) if x.dtype.kind in "iu" else x)

    modes = {m: m.training for m in model.modules()}
    model.eval()
    hooks = _Hooks(model)
    try:
        try:
            progs = [_record(model, inputs(dt), dt, hooks)]
            if dtype is None and dt != np.float32 and _conv_in(progs[0]):
                dt = np.dtype(np.float32)           # onnxruntime has no float64 Conv
                progs = [_record(model, inputs(dt), dt, hooks)]
            n = x.shape[0]
            if dynamic_batch:
                progs += [_record(model, _grow(inputs(dt), n + k), dt, hooks) for k in (1, 2)]
        except NotImplementedError as e:
            raise NotImplementedError(f"export_onnx: the model's forward failed while being "
                                      f"traced: {e}") from e
        if dynamic_batch:
            pairs, outs = _unified(progs, n, hooks.paths)
        else:
            pairs = [(i, i) for i in progs[0].instructions]
            outs = list(progs[0].outputs)
        g = _Graph(helper, numpy_helper, dt)
        g.names.add(input_name)
        cx = _Context(g, input_name)
        vals = {0: inputs(dt)}
        cx.dtypes[0] = vals[0].dtype
        _emit_program(cx, pairs, vals, hooks.paths)
        # Each output's shape at each batch size gives its dims (replays in eval mode).
        shapes = [[np.shape(o) for o in p(_grow(inputs(dt), n + j))]
                  for j, p in enumerate(progs)]
    finally:
        for m, t in modes.items():
            m.training = t
    # The outputs: their shapes at the three batch sizes give the dims.
    names = [output_name] + [f"{output_name}_{i}" for i in range(1, len(outs))]
    g.names.update(names)
    out_infos = []
    for k, (o, oname) in enumerate(zip(outs, names)):
        cx.where = ""
        src = cx.tensor(o)
        g.nodes.append(helper.make_node("Identity", [src], [oname],
                                        name=g.name(f"{oname}_Identity")))
        elem = helper.np_dtype_to_tensor_dtype(np.result_type(_sub(progs[0].outputs[k], vals)))
        out_infos.append(helper.make_tensor_value_info(
            oname, elem, _dims([s[k] for s in shapes], n, dynamic_batch)))
    x0 = inputs(dt)
    in_dims = (["batch"] if dynamic_batch else [x.shape[0]]) + list(x.shape[1:])
    graph = helper.make_graph(
        g.nodes, type(model).__name__,
        [helper.make_tensor_value_info(input_name, helper.np_dtype_to_tensor_dtype(x0.dtype),
                                       in_dims)],
        out_infos, initializer=g.inits)
    proto = helper.make_model(graph, producer_name="autodiff.nn",
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    if check:
        onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto
