"""``nn.export_onnx``: write a model to an ONNX file (opset 17) for inference elsewhere.

>>> import numpy as np
>>> from autodiff import nn
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1))
>>> nn.export_onnx(model, np.zeros((1, 4)), "model.onnx")          # doctest: +SKIP

Supported: ``Sequential`` (nested) of ``Linear``, ``Conv1d``/``Conv2d``,
``MaxPool1d``/``MaxPool2d``, ``AvgPool1d``/``AvgPool2d``, ``Flatten``,
``BatchNorm1d``/``BatchNorm2d`` (inference form: running statistics), ``LayerNorm``,
``Dropout``/``Identity`` (no-ops at inference) and the activations ``ReLU``, ``LeakyReLU``,
``ELU``, ``GELU`` (both forms), ``Tanh``, ``Sigmoid``, ``Softplus``, ``Softmax``,
``LogSoftmax``. Anything else is a ``NotImplementedError`` naming the layer.

The graph has one input ``"input"`` and one output ``"output"``; axis 0 is a dynamic
``"batch"`` axis, the others are fixed by ``example_input``. Tensors are float32 or float64
as the model's parameters (or ``dtype=``). onnxruntime's CPU kernels for ``Conv``,
``AveragePool``, ``Elu``, ``Softplus`` and ``Erf`` (in GELU) exist for float32 only: a
float64 model using them is valid ONNX, but export it with ``dtype=np.float32`` to run it
in onnxruntime. (In float64 exports LeakyReLU, ELU and Softplus are written with elementary
operators instead of ``LeakyRelu``/``Elu``/``Softplus``, whose coefficients are float32
attributes and which onnxruntime lacks in float64.)

The layers are read by class name and PyTorch's attribute names (``weight``, ``bias``,
``stride``, ``padding``, ``dilation``, ``groups``, ``kernel_size``, ``running_mean``,
``running_var``, ``eps``, …), so any layer with PyTorch's layout exports.
"""
import math

import numpy as np

from .module import Module, Sequential, functional_call

__all__ = ["export_onnx"]

OPSET = 17
IR_VERSION = 8          # the IR version of opset 17; newer IRs are refused by older runtimes


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


def _leaves(module, path):
    """The modules applied in order, flattening nested Sequentials: [(path, module)]."""
    if type(module) is Sequential or (isinstance(module, Sequential)
                                      and type(module).forward is Sequential.forward):
        for name, m in module.named_children():
            yield from _leaves(m, f"{path}.{name}" if path else name)
    else:
        yield path or type(module).__name__, module


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
        self.inits.append(self.nh.from_array(np.ascontiguousarray(a), name))
        return name

    def node(self, op, inputs, base, **attrs):
        out = self.name(base)
        self.nodes.append(self.h.make_node(op, list(inputs), [out], name=self.name(f"{base}_{op}"),
                                           **attrs))
        return out


def _unsupported(path, m, why=""):
    return NotImplementedError(
        f"export_onnx: layer {path!r} of type {type(m).__name__} is not supported"
        f"{': ' + why if why else ''}. Supported: (nested) Sequential of "
        f"{', '.join(sorted(SUPPORTED))}.")


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
        inputs = [x, g.const(f"{path}.weight", np.ones(c) if w is None else w),
                  g.const(f"{path}.bias", np.zeros(c) if b is None else b),
                  g.const(f"{path}.running_mean", mean), g.const(f"{path}.running_var", var)]
        return g.node("BatchNormalization", inputs, base, epsilon=float(m.eps))
    if kind == "LayerNorm":
        shape = tuple(m.normalized_shape)
        w, b = _arr(getattr(m, "weight", None)), _arr(getattr(m, "bias", None))
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


def _model_dtype(model, example):
    for p in model.parameters():
        dt = np.result_type(getattr(p, "value", p))
        if dt.kind == "f":
            return dt
    dt = np.asarray(example).dtype
    return dt if dt.kind == "f" else np.dtype(np.float64)


def export_onnx(model, example_input, path, dtype=None, input_name="input",
                output_name="output", dynamic_batch=True, check=True):
    """Write ``model`` to ``path`` as an ONNX model (opset 17) and return the ``ModelProto``.

    ``example_input``: an array with a batch axis first; it fixes the other axes and is run
    through the model layer by layer (in eval mode, no tape) to infer the shapes. Axis 0 is
    a dynamic ``"batch"`` axis unless ``dynamic_batch=False``. ``dtype`` (float32 or
    float64) defaults to the model's. The exported graph is the inference form of the model
    (as PyTorch's default export): BatchNorm uses its running statistics, Dropout is
    dropped. ``check`` runs ``onnx.checker`` on the result. Needs the ``onnx`` package.
    """
    onnx, helper, numpy_helper = _import_onnx()
    if not isinstance(model, Module):
        raise TypeError(f"export_onnx: model must be an nn.Module, got {type(model).__name__}")
    dtype = np.dtype(_model_dtype(model, example_input) if dtype is None else dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"export_onnx: dtype must be float32 or float64, got {dtype}")
    x = np.asarray(getattr(example_input, "value", example_input))
    if x.ndim == 0:
        raise ValueError("export_onnx: example_input needs a batch axis")
    x = x.astype(dtype)
    leaves = list(_leaves(model, ""))   # a custom module (own forward) fails in _emit
    g = _Graph(helper, numpy_helper, dtype)
    g.names.update((input_name, output_name))
    tensor = input_name
    was_training = model.training
    batch_kept = True
    model.eval()
    try:
        for where, m in leaves:
            if type(m).__name__ not in SUPPORTED:
                raise _unsupported(where, m)
            params = {n: np.asarray(p.value, dtype=dtype)
                      for n, p in m.named_parameters(remove_duplicate=False)}
            in_shape = x.shape
            try:
                y = functional_call(m, params, x)
            except Exception as e:
                raise ValueError(f"export_onnx: layer {where!r} ({type(m).__name__}) failed on "
                                 f"the example input of shape {in_shape}: {e}") from e
            y = np.asarray(getattr(y, "value", y))
            tensor = _emit(g, where, m, tensor, in_shape, y.shape)
            if type(m).__name__ == "Flatten" and m.start_dim % len(in_shape) == 0:
                batch_kept = False              # the batch axis is folded into axis 0
            x = y
    finally:
        model.train(was_training)
    # The last node writes the graph's output (an Identity if the model adds no node).
    if g.nodes and g.nodes[-1].output[0] == tensor:
        g.nodes[-1].output[0] = output_name
    else:
        g.nodes.append(helper.make_node("Identity", [tensor], [output_name],
                                        name=g.name("output_Identity")))
    elem = helper.np_dtype_to_tensor_dtype(dtype)
    batch = "batch" if dynamic_batch else int(np.shape(example_input)[0])
    in_shape = [batch] + list(np.shape(example_input)[1:])
    if not dynamic_batch:
        out_shape = list(x.shape)
    elif x.ndim == 0:
        out_shape = []
    else:
        out_shape = [batch if batch_kept else None] + list(x.shape[1:])
    graph = helper.make_graph(
        g.nodes, type(model).__name__,
        [helper.make_tensor_value_info(input_name, elem, in_shape)],
        [helper.make_tensor_value_info(output_name, elem, out_shape)],
        initializer=g.inits)
    proto = helper.make_model(graph, producer_name="autodiff.nn",
                              opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION)
    if check:
        onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, str(path))
    return proto
