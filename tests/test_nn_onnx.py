"""nn.export_onnx: the exported graph, run in onnxruntime (and in onnx's reference evaluator
where onnxruntime has no float64 kernel), gives our outputs: float64 within 1e-6, float32
within 1e-5; the batch axis is dynamic; unsupported layers are a NotImplementedError.

onnxruntime's CPU kernels for Conv, AveragePool and Erf (GELU) are float32 only, so float64
models using them are checked with ``onnx.reference.ReferenceEvaluator`` (its Erf computes
in float32, hence GELU's ~5e-8 there) and in onnxruntime after a float32 export."""
import sys

import numpy as np
import pytest

from autodiff import nn
from autodiff.nn.fit import predict

onnx = pytest.importorskip("onnx")

rng = np.random.default_rng(0)
HAS_CONV = all(hasattr(nn, n) for n in ("Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d"))
needs_conv = pytest.mark.skipif(not HAS_CONV, reason="nn.Conv2d/pools/BatchNorm2d not there")


def ort_run(proto, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def ref_run(proto, x):
    from onnx.reference import ReferenceEvaluator
    return ReferenceEvaluator(proto).run(None, {"input": x})[0]


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def activations(ort_float64_only=False):
    acts = [nn.ReLU(), nn.LeakyReLU(0.2), nn.ELU(alpha=0.7), nn.GELU(approximate="tanh"),
            nn.Tanh(), nn.Sigmoid(), nn.Softplus(), nn.Softplus(beta=2.0)]
    if not ort_float64_only:
        acts.insert(3, nn.GELU())               # Erf: no float64 kernel in onnxruntime
    return acts


def mlp(dtype=np.float64, ort_float64_only=False, width=6):
    """Linear layers joined by every supported activation, a nested Sequential, Dropout,
    Identity, LayerNorm and BatchNorm1d, ending in Softmax then LogSoftmax."""
    nn.init.manual_seed(0)
    layers = [nn.Linear(5, width, dtype=dtype)]
    for a in activations(ort_float64_only):
        layers += [a, nn.Linear(width, width, dtype=dtype)]
    bn = nn.BatchNorm1d(width, dtype=dtype)
    layers += [nn.Dropout(0.3), nn.Identity(), nn.LayerNorm(width, dtype=dtype), bn,
               nn.Sequential(nn.Linear(width, 4, dtype=dtype), nn.Sequential(nn.Softmax(dim=1))),
               nn.LogSoftmax(dim=-1)]
    model = nn.Sequential(*layers)
    model.train()
    model(rng.standard_normal((32, 5)).astype(dtype))          # running stats away from 0, 1
    with_stats(model)
    model.eval()
    return model


def with_stats(model):
    """Non-trivial affine parameters and running statistics for every BatchNorm/LayerNorm."""
    r = np.random.default_rng(1)
    for m in model.modules():
        if type(m).__name__.startswith("BatchNorm") or type(m).__name__ == "LayerNorm":
            for p in (m.weight, m.bias):
                p.value[...] = r.uniform(0.5, 1.5, p.value.shape)
            if hasattr(m, "running_var") and m.running_var is not None:
                m.running_mean[...] += r.standard_normal(m.running_mean.shape) * 0.1
                m.running_var[...] *= r.uniform(0.5, 2.0, m.running_var.shape)


# ----- MLPs with every activation ---------------------------------------------------------

def test_float64_mlp_every_activation_in_onnxruntime(tmp_path):
    model = mlp(ort_float64_only=True)
    x = rng.standard_normal((9, 5)) * 2
    path = tmp_path / "mlp64.onnx"
    proto = nn.export_onnx(model, x[:1], path)
    assert path.exists()
    got = ort_run(onnx.load(str(path)), x)
    assert got.dtype == np.float64
    assert maxdiff(got, predict(model, x)) < 1e-6
    assert not model.training                                   # its mode is kept
    assert proto.opset_import[0].version == 17


def test_float64_mlp_every_activation_reference_evaluator(tmp_path):
    model = mlp()
    x = rng.standard_normal((9, 5)) * 2
    proto = nn.export_onnx(model, x[:2], tmp_path / "m.onnx")
    assert maxdiff(ref_run(proto, x), predict(model, x)) < 1e-6


def test_float32_mlp_every_activation_in_onnxruntime(tmp_path):
    model = mlp(dtype=np.float32)
    assert all(p.value.dtype == np.float32 for p in model.parameters())
    assert all(b.dtype == np.float32 for n, b in model.named_buffers() if "running" in n)
    x = (rng.standard_normal((9, 5)) * 2).astype(np.float32)
    proto = nn.export_onnx(model, x[:1], tmp_path / "m32.onnx")
    got = ort_run(proto, x)
    assert got.dtype == np.float32
    assert maxdiff(got, predict(model, x)) < 1e-5


def test_float64_model_exported_as_float32(tmp_path):
    model = mlp()
    x = rng.standard_normal((9, 5))
    proto = nn.export_onnx(model, x[:1], tmp_path / "m.onnx", dtype=np.float32)
    assert maxdiff(ort_run(proto, x.astype(np.float32)), predict(model, x)) < 1e-5


def test_graph_interface_and_dynamic_batch(tmp_path):
    model = mlp(ort_float64_only=True)
    proto = nn.export_onnx(model, rng.standard_normal((3, 5)), tmp_path / "m.onnx")
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("input", "output")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 5]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 4]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    onnx.checker.check_model(proto, full_check=True)
    for n in (1, 4, 33):
        x = rng.standard_normal((n, 5))
        assert maxdiff(ort_run(proto, x), predict(model, x)) < 1e-6
    ops = {node.op_type for node in proto.graph.node}
    assert {"Gemm", "Relu", "PRelu", "Tanh", "Sigmoid", "ReduceMean", "Sqrt", "Softmax",
            "LogSoftmax"} <= ops
    # float64 norms as elementary operators: the fused ones store epsilon as float32
    assert not {"LayerNormalization", "BatchNormalization", "Dropout"} & ops


def test_float32_uses_the_plain_onnx_activation_operators(tmp_path):
    proto = nn.export_onnx(mlp(dtype=np.float32), np.zeros((1, 5), np.float32),
                           tmp_path / "m.onnx")
    ops = {node.op_type for node in proto.graph.node}
    assert {"LeakyRelu", "Elu", "Softplus", "Erf", "LayerNormalization",
            "BatchNormalization"} <= ops


def test_linear_on_3d_input_and_flatten_variants(tmp_path):
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Flatten(),         # (N, 5, 3) → (N, 15)
                          nn.Linear(15, 6), nn.Flatten(start_dim=0))        # → (N·6,)
    x = rng.standard_normal((2, 5, 4))
    proto = nn.export_onnx(model, x, tmp_path / "m.onnx", dynamic_batch=False)
    assert maxdiff(ort_run(proto, x), predict(model, x)) < 1e-12
    model = nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(12, 2),         # (N, 2, 3, 4)
                          nn.Flatten(1, 1), nn.Flatten(0, 0), nn.Flatten(2, 1))
    x = rng.standard_normal((3, 2, 3, 4))
    proto = nn.export_onnx(model, x[:1], tmp_path / "m2.onnx")
    assert predict(model, x).shape == (3, 2, 1, 2)
    assert maxdiff(ort_run(proto, x), predict(model, x)) < 1e-12


def test_batchnorm_in_training_mode_exports_the_inference_form(tmp_path):
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    model(rng.standard_normal((16, 3)))                          # train mode: stats move
    x = rng.standard_normal((5, 3))
    proto = nn.export_onnx(model, x, tmp_path / "m.onnx")
    assert model.training
    assert maxdiff(ort_run(proto, x), predict(model, x)) < 1e-6  # predict runs eval mode


# ----- CNNs ---------------------------------------------------------------------------------

def cnn(dtype=np.float64):
    nn.init.manual_seed(0)
    kw = dict(dtype=dtype)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, **kw), nn.BatchNorm2d(4, **kw), nn.ReLU(),
        nn.MaxPool2d(2),                                                  # 4 × 5 × 5
        nn.Sequential(nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(1, 0), dilation=(2, 1),
                                bias=False, **kw), nn.ELU()),             # 6 × 3 × 2
        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),    # 6 × 4 × 3
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),             # 6 × 3 × 2
        nn.Conv2d(6, 5, 3, padding="same", **kw), nn.AvgPool2d(2, ceil_mode=True),
        nn.Flatten(), nn.BatchNorm1d(10, **kw), nn.Linear(10, 3, **kw), nn.LogSoftmax(dim=1))
    model(rng.standard_normal((8, 2, 10, 10)).astype(dtype))     # running stats
    with_stats(model)
    return model.eval()


@needs_conv
def test_float32_cnn_with_batchnorm_in_onnxruntime(tmp_path):
    model = cnn(np.float32)
    x = rng.standard_normal((7, 2, 10, 10)).astype(np.float32)
    proto = nn.export_onnx(model, x[:1], tmp_path / "cnn32.onnx")
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("Conv") == 3 and ops.count("BatchNormalization") == 2
    assert {"MaxPool", "AveragePool", "Flatten"} <= set(ops)
    assert maxdiff(ort_run(proto, x), predict(model, x)) < 1e-5


@needs_conv
def test_float64_cnn_with_batchnorm(tmp_path):
    model = cnn()
    x = rng.standard_normal((7, 2, 10, 10))
    proto = nn.export_onnx(model, x[:1], tmp_path / "cnn.onnx")
    assert maxdiff(ref_run(proto, x), predict(model, x)) < 1e-6
    proto32 = nn.export_onnx(model, x[:1], tmp_path / "cnn32.onnx", dtype=np.float32)
    assert maxdiff(ort_run(proto32, x.astype(np.float32)), predict(model, x)) < 1e-5


@needs_conv
def test_conv1d_pool1d_batchnorm1d(tmp_path):
    if not all(hasattr(nn, n) for n in ("Conv1d", "MaxPool1d", "AvgPool1d")):
        pytest.skip("nn.Conv1d/MaxPool1d/AvgPool1d not there")
    nn.init.manual_seed(0)
    f32 = dict(dtype=np.float32)
    model = nn.Sequential(nn.Conv1d(3, 4, 3, padding=1, **f32), nn.BatchNorm1d(4, **f32),
                          nn.Tanh(), nn.MaxPool1d(2), nn.AvgPool1d(2, stride=1),   # 4 × 4
                          nn.Flatten(), nn.Linear(16, 2, **f32))
    model(rng.standard_normal((6, 3, 10)).astype(np.float32))
    model.eval()
    x = rng.standard_normal((5, 3, 10)).astype(np.float32)
    proto = nn.export_onnx(model, x[:1], tmp_path / "c1.onnx")
    assert maxdiff(ort_run(proto, x), predict(model, x)) < 1e-5


@needs_conv
def test_digits_sized_cnn_round_trip(tmp_path):
    """The model of examples/digits_cnn.py (untrained) exports and agrees in onnxruntime."""
    nn.init.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 10))
    model(rng.uniform(0, 1, (32, 1, 8, 8)))
    model.eval()
    x = rng.uniform(0, 1, (50, 1, 8, 8))
    proto = nn.export_onnx(model, x[:1], tmp_path / "digits.onnx", dtype=np.float32)
    got = ort_run(proto, x.astype(np.float32))
    assert maxdiff(got, predict(model, x)) < 1e-5
    assert (got.argmax(1) == predict(model, x).argmax(1)).all()


# ----- errors --------------------------------------------------------------------------------

def test_missing_onnx_is_a_clear_import_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match="pip install onnx"):
        nn.export_onnx(nn.Sequential(nn.Linear(2, 2)), np.zeros((1, 2)), tmp_path / "x.onnx")
