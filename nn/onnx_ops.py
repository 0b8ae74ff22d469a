"""The ONNX nodes (opset 17) of each recorded primitive, for ``nn.export_onnx``.

Each entry of ``EMITTERS`` turns one instruction of a recorded program into nodes:
``emit(cx, args, kw, vals, vkw, out)`` gets the argument templates (slots, constants and the
batch-affine values of :mod:`nn.onnx`), the same arguments as recorded values (for shapes
and dtypes) and the recorded result, and returns the ONNX name of its result. A primitive
missing here is a ``NotImplementedError`` naming it (and the layer it ran in).
"""
import numpy as np

__all__ = ["EMITTERS"]

EMITTERS = {}


def _unary(name, op):
    def emit(cx, args, kw, vals, vkw, out):
        return cx.node(op, [cx.tensor(args[0], out.dtype)])
    EMITTERS[name] = emit


def _binary(name, op):
    def emit(cx, args, kw, vals, vkw, out):
        dt = out.dtype
        return cx.node(op, [cx.tensor(args[0], dt), cx.tensor(args[1], dt)])
    EMITTERS[name] = emit


for _name, _op in [("negative", "Neg"), ("absolute", "Abs"), ("exp", "Exp"), ("log", "Log"),
                   ("sqrt", "Sqrt"), ("reciprocal", "Reciprocal"), ("sin", "Sin"),
                   ("cos", "Cos"), ("tan", "Tan"), ("arcsin", "Asin"), ("arccos", "Acos"),
                   ("arctan", "Atan"), ("sinh", "Sinh"), ("cosh", "Cosh"), ("tanh", "Tanh"),
                   ("arcsinh", "Asinh"), ("arccosh", "Acosh"), ("arctanh", "Atanh"),
                   ("erf", "Erf"), ("expit", "Sigmoid"), ("floor", "Floor"), ("ceil", "Ceil"),
                   ("sign", "Sign"), ("rint", "Round"), ("positive", "Identity"),
                   ("stop_gradient", "Identity"), ("logical_not", "Not"), ("relu", "Relu")]:
    _unary(_name, _op)
for _name, _op in [("add", "Add"), ("subtract", "Sub"), ("multiply", "Mul"),
                   ("divide", "Div"), ("power", "Pow"), ("maximum", "Max"),
                   ("minimum", "Min"), ("logical_and", "And"), ("logical_or", "Or"),
                   ("logical_xor", "Xor")]:
    _binary(_name, _op)


def _bool_binary(name, op):
    def emit(cx, args, kw, vals, vkw, out):
        if out.dtype != bool:
            raise cx.unsupported(name, "on integers (only masks of booleans export)")
        return cx.node(op, [cx.tensor(args[0], bool), cx.tensor(args[1], bool)])
    EMITTERS[name] = emit


for _name, _op in [("bitwise_and", "And"), ("bitwise_or", "Or"), ("bitwise_xor", "Xor")]:
    _bool_binary(_name, _op)


def _invert(cx, args, kw, vals, vkw, out):
    if out.dtype != bool:
        raise cx.unsupported("invert", "on integers (only masks of booleans export)")
    return cx.node("Not", [cx.tensor(args[0], bool)])


EMITTERS["invert"] = _invert


def _compare(name, op, negate=False):
    def emit(cx, args, kw, vals, vkw, out):
        dt = np.result_type(*vals)              # NumPy's promotion (Python numbers weak)
        y = cx.node(op, [cx.tensor(args[0], dt), cx.tensor(args[1], dt)])
        return cx.node("Not", [y]) if negate else y
    EMITTERS[name] = emit


for _name, _op in [("greater", "Greater"), ("greater_equal", "GreaterOrEqual"),
                   ("less", "Less"), ("less_equal", "LessOrEqual"), ("equal", "Equal")]:
    _compare(_name, _op)
_compare("not_equal", "Equal", negate=True)


def _isnan(cx, args, kw, vals, vkw, out):
    return cx.node("IsNaN", [cx.tensor(args[0])])


EMITTERS["isnan"] = _isnan


def _square(cx, args, kw, vals, vkw, out):
    x = cx.tensor(args[0], out.dtype)
    return cx.node("Mul", [x, x])


def _log1p(cx, args, kw, vals, vkw, out):
    return cx.node("Log", [cx.node("Add", [cx.tensor(args[0], out.dtype),
                                           cx.const(1, out.dtype)])])


def _expm1(cx, args, kw, vals, vkw, out):
    return cx.node("Sub", [cx.node("Exp", [cx.tensor(args[0], out.dtype)]),
                           cx.const(1, out.dtype)])


def _softplus_neg_abs(cx, x, dt):
    """log(1 + e^{-|x|}): the stable tail of softplus and logaddexp."""
    e = cx.node("Exp", [cx.node("Neg", [cx.node("Abs", [x])])])
    return cx.node("Log", [cx.node("Add", [e, cx.const(1, dt)])])


def _logaddexp(cx, args, kw, vals, vkw, out):
    dt = out.dtype
    a, b = cx.tensor(args[0], dt), cx.tensor(args[1], dt)
    return cx.node("Add", [cx.node("Max", [a, b]),
                           _softplus_neg_abs(cx, cx.node("Sub", [a, b]), dt)])


def _log_expit(cx, args, kw, vals, vkw, out):
    # log σ(x) = min(x, 0) - log(1 + e^{-|x|})
    dt = out.dtype
    x = cx.tensor(args[0], dt)
    return cx.node("Sub", [cx.node("Min", [x, cx.const(0, dt)]), _softplus_neg_abs(cx, x, dt)])


def _binary_cross_entropy(cx, args, kw, vals, vkw, out):
    # -(y max(log p, -100) + (1 - y) max(log(1 - p), -100))
    dt = out.dtype
    p, y = cx.tensor(args[0], dt), cx.tensor(args[1], dt)
    one, floor = cx.const(1, dt), cx.const(-100, dt)
    logp = cx.node("Max", [cx.node("Log", [p]), floor])
    log1mp = cx.node("Max", [cx.node("Log", [cx.node("Sub", [one, p])]), floor])
    t = cx.node("Add", [cx.node("Mul", [y, logp]),
                        cx.node("Mul", [cx.node("Sub", [one, y]), log1mp])])
    return cx.node("Neg", [t])


EMITTERS.update(square=_square, log1p=_log1p, expm1=_expm1, logaddexp=_logaddexp,
                log_expit=_log_expit, binary_cross_entropy=_binary_cross_entropy)


def _where(cx, args, kw, vals, vkw, out):
    dt = out.dtype
    return cx.node("Where", [cx.tensor(args[0], bool), cx.tensor(args[1], dt),
                             cx.tensor(args[2], dt)])


EMITTERS["where"] = _where


# ----- products -----
def _matmul(cx, args, kw, vals, vkw, out):
    dt = out.dtype
    return cx.node("MatMul", [cx.tensor(args[0], dt), cx.tensor(args[1], dt)])


def _linear(cx, args, kw, vals, vkw, out):
    x, w, b = args
    dt = out.dtype
    xv = vals[0]
    if np.ndim(xv) == 2 and np.ndim(vals[1]) == 2 and np.ndim(vals[2]) <= 1:
        return cx.node("Gemm", [cx.tensor(x, dt), cx.tensor(w, dt), cx.tensor(b, dt)],
                       transB=1)
    wt = cx.transposed(w, dt)
    return cx.node("Add", [cx.node("MatMul", [cx.tensor(x, dt), wt]), cx.tensor(b, dt)])


def _einsum(cx, args, kw, vals, vkw, out):
    eq = cx.static(kw["subscripts"], "einsum's subscripts").replace(" ", "")
    if "->" not in eq:
        raise cx.unsupported("einsum", "with implicit output subscripts (write '...->...')")
    return cx.node("Einsum", [cx.tensor(a, out.dtype) for a in args], equation=eq)


EMITTERS.update(matmul=_matmul, linear=_linear, einsum=_einsum)


# ----- reductions -----
def _axes(cx, axis, ndim):
    axis = cx.static(axis, "a reduction's axis")
    if axis is None:
        return list(range(ndim))
    axis = (axis,) if isinstance(axis, (int, np.integer)) else axis
    return [int(a) % max(ndim, 1) for a in axis]


def _sum(cx, args, kw, vals, vkw, out):
    x = cx.tensor(args[0], out.dtype)
    axes = _axes(cx, vkw["axis"], np.ndim(vals[0]))
    keep = int(bool(vkw["keepdims"]))
    if not axes:
        return cx.node("Identity", [x])
    return cx.node("ReduceSum", [x, cx.const(axes, np.int64)], keepdims=keep)


def _reduce_attr(op):
    def emit(cx, args, kw, vals, vkw, out):
        x = cx.tensor(args[0], out.dtype)
        axes = _axes(cx, vkw["axis"], np.ndim(vals[0]))
        if not axes:
            return cx.node("Identity", [x])
        return cx.node(op, [x], axes=axes, keepdims=int(bool(vkw["keepdims"])))
    return emit


def _lse(cx, x, axes, keepdims, dt):
    """log Σ e^x over ``axes``, shifted by the maximum (finite maxima only: as ours)."""
    m = cx.node("ReduceMax", [x], axes=axes, keepdims=1)
    m = cx.node("Where", [cx.node("IsInf", [m]), cx.const(0, dt), m])
    s = cx.node("ReduceSum", [cx.node("Exp", [cx.node("Sub", [x, m])]),
                              cx.const(axes, np.int64)], keepdims=1)
    y = cx.node("Add", [cx.node("Log", [s]), m])
    return y if keepdims else cx.node("Squeeze", [y, cx.const(axes, np.int64)])


def _logsumexp(cx, args, kw, vals, vkw, out):
    x = cx.tensor(args[0], out.dtype)
    return _lse(cx, x, _axes(cx, vkw["axis"], np.ndim(vals[0])), vkw["keepdims"], out.dtype)


def _log_softmax(cx, args, kw, vals, vkw, out):
    x = cx.tensor(args[0], out.dtype)
    axes = _axes(cx, vkw["axis"], np.ndim(vals[0]))
    if len(axes) == 1:
        return cx.node("LogSoftmax", [x], axis=axes[0])
    return cx.node("Sub", [x, _lse(cx, x, axes, True, out.dtype)])


def _softmax_cross_entropy(cx, args, kw, vals, vkw, out):
    dt = out.dtype
    x, y = cx.tensor(args[0], dt), cx.tensor(args[1], dt)
    axes = _axes(cx, vkw["axis"], np.ndim(vals[0]))
    t = cx.node("Mul", [y, cx.node("Sub", [_lse(cx, x, axes, True, dt), x])])
    return cx.node("ReduceSum", [t, cx.const(axes, np.int64)], keepdims=0)


def _standardize(cx, args, kw, vals, vkw, out):
    dt = out.dtype
    x = cx.tensor(args[0], dt)
    axes = _axes(cx, vkw["axes"], np.ndim(vals[0]))
    d = cx.node("Sub", [x, cx.node("ReduceMean", [x], axes=axes, keepdims=1)])
    var = cx.node("ReduceMean", [cx.node("Mul", [d, d])], axes=axes, keepdims=1)
    return cx.node("Div", [d, cx.node("Sqrt", [cx.node("Add", [var, cx.tensor(kw["eps"], dt)])])])


EMITTERS.update(sum=_sum, max=_reduce_attr("ReduceMax"), min=_reduce_attr("ReduceMin"),
                prod=_reduce_attr("ReduceProd"), logsumexp=_logsumexp,
                log_softmax=_log_softmax, softmax_cross_entropy=_softmax_cross_entropy,
                standardize=_standardize)


# ----- shapes -----
def _reshape(cx, args, kw, vals, vkw, out):
    shape = kw["shape"]
    shape = (shape,) if not isinstance(shape, (tuple, list)) else shape
    return cx.node("Reshape", [cx.tensor(args[0]), cx.shape_tensor(shape)])


def _transpose(cx, args, kw, vals, vkw, out):
    axes = cx.static(kw["axes"], "transpose's axes")
    nd = np.ndim(vals[0])
    perm = list(range(nd))[::-1] if axes is None else [int(a) % nd for a in axes]
    return cx.node("Transpose", [cx.tensor(args[0])], perm=perm)


def _broadcast_to(cx, args, kw, vals, vkw, out):
    shape = kw["shape"]
    shape = (shape,) if not isinstance(shape, (tuple, list)) else shape
    return cx.node("Expand", [cx.tensor(args[0]), cx.shape_tensor(shape)])


def _concatenate(cx, args, kw, vals, vkw, out):
    axis = int(cx.static(kw["axis"], "concatenate's axis"))
    return cx.node("Concat", [cx.tensor(a, out.dtype) for a in args], axis=axis)


def _astype(cx, args, kw, vals, vkw, out):
    return cx.node("Cast", [cx.tensor(args[0])], to=cx.elem(out.dtype))


EMITTERS.update(reshape=_reshape, transpose=_transpose, broadcast_to=_broadcast_to,
                concatenate=_concatenate, astype=_astype)

_INT64_MAX, _INT64_MIN = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _getitem(cx, args, kw, vals, vkw, out):
    """Basic indexing as Slice, integers as Gather of a scalar, ``None`` as Unsqueeze, and
    one integer array (or recorded integer tensor) as Gather on its axis."""
    x = cx.tensor(args[0])
    nd = np.ndim(vals[0])
    idx, vidx = kw["idx"], vkw["idx"]
    if not isinstance(vidx, tuple):
        idx, vidx = (idx,), (vidx,)
    n_real = sum(1 for v in vidx if v is not None and v is not Ellipsis)
    entries = []
    for t, v in zip(idx, vidx):
        if v is Ellipsis:
            entries += [(slice(None), slice(None))] * (nd - n_real)
        else:
            entries.append((t, v))
    entries += [(slice(None), slice(None))] * (nd - sum(1 for _, v in entries if v is not None))
    arrays = [(t, v) for t, v in entries if isinstance(v, np.ndarray) and v.ndim > 0]
    if arrays:
        others = [v for t, v in entries if v is not None and not isinstance(v, slice)
                  and not (isinstance(v, np.ndarray) and v.ndim > 0)]
        if len(arrays) > 1 or others or any(v is None for _, v in entries):
            raise cx.unsupported("getitem", "with several array indices, or an array index "
                                 "beside integer or None indices (advanced indexing)")
        if arrays[0][1].dtype == bool:
            raise cx.unsupported("getitem", "with a boolean mask (its shape depends on values)")
    starts, ends, axes, steps, ints, news = [], [], [], [], [], []
    ax = oax = 0
    gather = None
    for t, v in entries:
        if v is None:
            news.append(oax)
            oax += 1
        elif isinstance(v, slice):
            if v != slice(None):
                step = 1 if t.step is None else t.step
                if step == 0:
                    raise ValueError("export_onnx: a slice step of 0")
                neg = cx.static(step, "a slice step") < 0
                starts.append(t.start if t.start is not None else (_INT64_MAX if neg else 0))
                ends.append(t.stop if t.stop is not None else
                            (_INT64_MIN if neg else _INT64_MAX))
                axes.append(ax)
                steps.append(step)
            ax += 1
            oax += 1
        elif isinstance(v, np.ndarray) and v.ndim > 0:
            gather = (t, ax)
            ax += 1
            oax += 1
        else:
            ints.append((t, ax))
            ax += 1
    if axes:
        x = cx.node("Slice", [x, cx.shape_tensor(starts), cx.shape_tensor(ends),
                              cx.const(axes, np.int64), cx.shape_tensor(steps)])
    if gather is not None:
        x = cx.node("Gather", [x, cx.tensor(gather[0], np.int64)], axis=gather[1])
    for t, a in sorted(ints, key=lambda p: -p[1]):
        x = cx.node("Gather", [x, cx.scalar_index(t)], axis=a)
    if news:
        x = cx.node("Unsqueeze", [x, cx.const(news, np.int64)])
    return x


EMITTERS["getitem"] = _getitem


# ----- layers as primitives -----
def _conv2d(cx, args, kw, vals, vkw, out):
    dt = out.dtype
    (pt, pb), (pl, pr) = cx.static(kw["padding"], "conv2d's padding")
    w = vals[1]
    return cx.node("Conv", [cx.tensor(args[0], dt), cx.tensor(args[1], dt)],
                   kernel_shape=list(np.shape(w)[2:]),
                   strides=list(cx.static(kw["stride"], "conv2d's stride")),
                   pads=[pt, pl, pb, pr],
                   dilations=list(cx.static(kw["dilation"], "conv2d's dilation")))


def _max_pool2d(cx, args, kw, vals, vkw, out):
    if np.ndim(vals[0]) != 4:
        raise cx.unsupported("max_pool2d", f"on an input of {np.ndim(vals[0])} axes (N, C, H, "
                             "W expected)")
    st = cx.static
    ph, pw = st(kw["padding"], "max_pool2d's padding")
    attrs = dict(kernel_shape=list(st(kw["ksize"], "max_pool2d's kernel")),
                 strides=list(st(kw["stride"], "max_pool2d's stride")), pads=[ph, pw, ph, pw],
                 ceil_mode=int(bool(st(kw["ceil_mode"], "ceil_mode"))))
    d = list(st(kw["dilation"], "max_pool2d's dilation"))
    if d != [1, 1]:
        attrs["dilations"] = d
    return cx.node("MaxPool", [cx.tensor(args[0], out.dtype)], **attrs)


def _split(cx, x, k, width):
    names = [cx.g.name("split") for _ in range(k)]
    cx.g.nodes.append(cx.g.h.make_node("Split", [x, cx.const([width] * k, np.int64)], names,
                                       axis=-1, name=cx.g.name("Split")))
    return names


def _lstm_step(cx, a, c, width):
    """The nodes of one LSTM cell on pre-activations ``a`` and state ``c``:
    ``(h', c', (i, f, g, o))``."""
    i, f, g, o = _split(cx, a, 4, width)
    i, f, o = (cx.node("Sigmoid", [t]) for t in (i, f, o))
    g = cx.node("Tanh", [g])
    c2 = cx.node("Add", [cx.node("Mul", [f, c]), cx.node("Mul", [i, g])])
    return cx.node("Mul", [o, cx.node("Tanh", [c2])]), c2, (i, f, g, o)


def _lstm_cell(cx, args, kw, vals, vkw, out):
    """(h', c') stacked: i, f, g, o = σ, σ, tanh, σ of the four blocks; c' = f c + i g,
    h' = o tanh c'."""
    dt = out.dtype
    c_val = vals[1]
    h2, c2, _ = _lstm_step(cx, cx.tensor(args[0], dt), cx.tensor(args[1], dt),
                           np.shape(c_val)[-1])
    axis = -(np.ndim(c_val) + 1)
    ax = cx.const([axis], np.int64)
    return cx.node("Concat", [cx.node("Unsqueeze", [h2, ax]), cx.node("Unsqueeze", [c2, ax])],
                   axis=axis)


def _gru_step(cx, x, hp, h, width):
    """The nodes of one GRU cell: r, z = σ(x_r + h_r), σ(x_z + h_z); n = tanh(x_n + r h_n);
    h' = n + z (h - n)."""
    xr, xz, xn = _split(cx, x, 3, width)
    hr, hz, hn = _split(cx, hp, 3, width)
    r = cx.node("Sigmoid", [cx.node("Add", [xr, hr])])
    z = cx.node("Sigmoid", [cx.node("Add", [xz, hz])])
    n = cx.node("Tanh", [cx.node("Add", [xn, cx.node("Mul", [r, hn])])])
    return cx.node("Add", [n, cx.node("Mul", [z, cx.node("Sub", [h, n])])])


def _steps(cx, kw, xp, steps, state, step):
    """A recurrent layer unrolled (the example's sequence length is fixed in the graph, as
    for the Python loop of the cells): ``step(x_t, state) -> (output, state)`` per step in
    the layer's direction, the outputs stacked on axis 0 in time order."""
    reverse = bool(cx.static(kw["reverse"], "a recurrent layer's direction"))
    if kw.get("steps") is not None:         # the length the recordings agree on, or refused
        steps = int(cx.static(kw["steps"], "a recurrent layer's sequence length"))
    ys = [None] * steps
    ax0 = cx.const([0], np.int64)
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        x_t = cx.node("Gather", [xp, cx.const(t, np.int64)], axis=0)
        y, state = step(x_t, state)
        ys[t] = [cx.node("Unsqueeze", [v, ax0]) for v in y]
    return [cx.node("Concat", list(col), axis=0) for col in zip(*ys)]


def _lstm_sequence(cx, args, kw, vals, vkw, out):
    """(T, 6, …, H), every step's h, c, i, f, g, o: ``a = xp[t] + h W_hhᵀ``, then the
    cell's nodes."""
    dt = out.dtype
    width = np.shape(vals[3])[-1]
    w_t = cx.node("Transpose", [cx.tensor(args[1], dt)], perm=[1, 0])

    def step(x_t, state):
        h, c, gates = _lstm_step(cx, cx.node("Add", [x_t, cx.node("MatMul", [state[0], w_t])]),
                                 state[1], width)
        ax0 = cx.const([0], np.int64)
        rows = [cx.node("Unsqueeze", [v, ax0]) for v in (h, c) + gates]
        return (cx.node("Concat", rows, axis=0),), (h, c)

    return _steps(cx, kw, cx.tensor(args[0], dt), np.shape(vals[0])[0],
                  (cx.tensor(args[2], dt), cx.tensor(args[3], dt)), step)[0]


def _gru_sequence(cx, args, kw, vals, vkw, out):
    """(T, …, H): every step's ``hp = h W_hhᵀ + b_hh``, then the cell's nodes."""
    dt = out.dtype
    width = np.shape(vals[3])[-1]
    w_t = cx.node("Transpose", [cx.tensor(args[1], dt)], perm=[1, 0])
    b = cx.tensor(args[2], dt)

    def step(x_t, h):
        h = _gru_step(cx, x_t, cx.node("Add", [cx.node("MatMul", [h, w_t]), b]), h, width)
        return (h,), h

    return _steps(cx, kw, cx.tensor(args[0], dt), np.shape(vals[0])[0],
                  cx.tensor(args[3], dt), step)[0]


def _gru_cell(cx, args, kw, vals, vkw, out):
    """r, z = σ(x_r + h_r), σ(x_z + h_z); n = tanh(x_n + r h_n); h' = n + z (h - n)."""
    dt = out.dtype
    return _gru_step(cx, cx.tensor(args[0], dt), cx.tensor(args[1], dt),
                     cx.tensor(args[2], dt), np.shape(vals[2])[-1])


EMITTERS.update(conv2d=_conv2d, max_pool2d=_max_pool2d, lstm_cell=_lstm_cell,
                gru_cell=_gru_cell, lstm_sequence=_lstm_sequence, gru_sequence=_gru_sequence)
