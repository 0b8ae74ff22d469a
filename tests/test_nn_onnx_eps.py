"""nn.export_onnx in float64 keeps the normalisation layers' epsilon in float64: ONNX's
LayerNormalization / BatchNormalization store epsilon as a float32 attribute (1e-5 becomes
1.0000000000000001e-05 + 2.5e-13), which on small-variance activations is ~1e-9 off, so
float64 exports write them with elementary operators and match the model to ~1e-12.
float32 exports keep the fused operators."""
import numpy as np
import pytest

from autodiff import nn
from autodiff.nn.fit import predict

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

rng = np.random.default_rng(0)


def ort_run(proto, x):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def ops(proto):
    return {node.op_type for node in proto.graph.node}


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def with_small_running_stats(m, x):
    """Running statistics of the small-variance ``x`` (momentum 1: the batch's own)."""
    m.train()
    m.momentum = 1.0
    m(x)
    return m.eval()


def small(shape):
    return rng.standard_normal(shape) * 0.01 + 0.3


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.LayerNorm(8), (4, 8)),
    (lambda: nn.LayerNorm(8, elementwise_affine=False), (4, 8)),
    (lambda: nn.LayerNorm(8, bias=False), (4, 8)),
    (lambda: nn.LayerNorm((3, 8), eps=1e-6), (4, 3, 8)),
    (lambda: nn.LayerNorm(8), (4, 5, 8)),
])
def test_float64_layernorm_matches_on_small_variance(tmp_path, make, shape):
    nn.init.manual_seed(0)
    m = make()
    for p in m.parameters():                   # not the trivial ones/zeros
        p.value[...] = rng.standard_normal(p.value.shape)
    x = small(shape)
    proto = nn.export_onnx(m, x[:1], tmp_path / "ln.onnx", dtype=np.float64)
    assert "LayerNormalization" not in ops(proto)
    for n in (1, 4, 7):                         # the batch axis stays dynamic
        xb = small((n,) + shape[1:])
        assert maxdiff(ort_run(proto, xb), predict(m, xb)) < 1e-12


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.BatchNorm1d(8), (6, 8)),
    (lambda: nn.BatchNorm1d(3), (6, 3, 5)),
    (lambda: nn.BatchNorm1d(8, affine=False), (6, 8)),
    (lambda: nn.BatchNorm1d(8, bias=False), (6, 8)),
    (lambda: nn.BatchNorm2d(3, eps=1e-3), (6, 3, 4, 5)),
])
def test_float64_batchnorm_matches_on_small_variance(tmp_path, make, shape):
    m = make()
    for p in m.parameters():
        p.value[...] = rng.standard_normal(p.value.shape)
    x = small(shape)
    with_small_running_stats(m, x)
    assert np.max(m.running_var) < 1e-3
    proto = nn.export_onnx(m, x[:1], tmp_path / "bn.onnx", dtype=np.float64)
    assert "BatchNormalization" not in ops(proto)
    for n in (1, 6, 9):
        xb = small((n,) + shape[1:])
        assert maxdiff(ort_run(proto, xb), predict(m, xb)) < 1e-12


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.GroupNorm(2, 4), (3, 4, 6)),
    (lambda: nn.InstanceNorm1d(4), (3, 4, 6)),
    (lambda: nn.InstanceNorm2d(2, affine=True), (3, 2, 4, 4)),
])
def test_float64_group_and_instance_norm_match(tmp_path, make, shape):
    m = make().eval()
    x = small(shape)
    proto = nn.export_onnx(m, x, tmp_path / "gn.onnx", dtype=np.float64)
    for n in (1, 3, 5):
        xb = small((n,) + shape[1:])
        assert maxdiff(ort_run(proto, xb), predict(m, xb)) < 1e-12


def test_float64_mlp_with_norms_matches_to_1e12(tmp_path):
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.LayerNorm(8),
                          nn.BatchNorm1d(8), nn.Linear(8, 3))
    model[2].weight.value[...] *= 1e-3         # small-variance activations into the norms
    x = rng.standard_normal((16, 5))
    model.train()
    model[4].momentum = 1.0
    model(x)
    model.eval()
    proto = nn.export_onnx(model, x[:1], tmp_path / "m.onnx")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert maxdiff(ort_run(proto, x), predict(model, x)) < 1e-12


def test_float32_export_keeps_the_fused_operators(tmp_path):
    model = nn.Sequential(nn.Linear(5, 8, dtype=np.float32), nn.LayerNorm(8, dtype=np.float32),
                          nn.BatchNorm1d(8, dtype=np.float32))
    x = rng.standard_normal((16, 5)).astype(np.float32)
    model.train()
    model(x)
    model.eval()
    proto = nn.export_onnx(model, x[:1], tmp_path / "m32.onnx")
    assert {"LayerNormalization", "BatchNormalization"} <= ops(proto)
    assert maxdiff(ort_run(proto, x), predict(model, x)) < 1e-5
    # a float64 model exported as float32 too
    model64 = nn.Sequential(nn.Linear(5, 8), nn.LayerNorm(8), nn.BatchNorm1d(8)).eval()
    proto = nn.export_onnx(model64, x[:1], tmp_path / "m64as32.onnx", dtype=np.float32)
    assert {"LayerNormalization", "BatchNormalization"} <= ops(proto)


@pytest.mark.parametrize("track", [False, True])
def test_instance_norm_exports_from_a_batch_of_one(tmp_path, track):
    # its statistics once came from a (1, N·C, …) reshape, recorded differently at batch 1
    nn.init.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 8, dtype=np.float32), nn.Unflatten(1, (2, 4)),
                      nn.InstanceNorm1d(2, affine=True, track_running_stats=track,
                                        dtype=np.float32))
    if track:
        m(np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32))
    m.eval()
    nn.export_onnx(m, np.zeros((1, 8), np.float32), tmp_path / "m.onnx")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    y = m(x)
    np.testing.assert_allclose(session.run(None, {"input": x})[0], getattr(y, "value", y),
                               atol=1e-5)
