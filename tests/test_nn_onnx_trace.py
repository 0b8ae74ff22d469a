"""nn.export_onnx by tracing: every example model (custom forwards, residuals, Embedding,
LSTM/GRU/RNN, attention written with matmul/softmax/masks, a CNN) exports and matches
onnxruntime at a batch size other than the example's; unmapped primitives and
value-dependent branches are refused."""
import numpy as np
import pytest

from autodiff import nn
from autodiff.nn import functional as F

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
rng = np.random.default_rng(0)


def ort_run(proto, x):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})


def ours(model, x):
    model.eval()
    out = model(x)
    out = out if isinstance(out, tuple) else (out,)
    flat = []
    for o in out:
        flat += list(o) if isinstance(o, tuple) else [o]
    return [np.asarray(getattr(o, "value", o)) for o in flat]


def check(model, example, x, tmp_path, tol):
    proto = nn.export_onnx(model, example, tmp_path / "m.onnx")
    got = ort_run(proto, x)
    want = ours(model, x)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        assert float(np.max(np.abs(g - w))) < tol
    return proto


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.out = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 3)

    def forward(self, x):
        h = x + np.tanh(self.a(x))                       # residual, custom forward
        h = h + F.relu(self.b(h)) * 0.5
        z = np.concatenate([h, np.maximum(h, 0.1)], axis=1)[:, ::2]
        return F.log_softmax(self.out(z - np.mean(z, axis=1, keepdims=True)), dim=1)


class TinyAttention(nn.Module):
    """One self-attention block with a causal mask, a residual and LayerNorm."""
    def __init__(self, d=8):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 2)

    def forward(self, x):                               # (N, T, d)
        n, t, d = x.shape
        q, k, v = self.q(x), self.k(x), self.v(x)
        s = np.einsum("ntd,nsd->nts", q, k) / np.sqrt(d)
        mask = np.triu(np.ones((t, t), dtype=bool), 1)
        s = np.where(mask, -1e9, s)
        a = F.softmax(s, dim=-1)
        h = self.norm(x + self.o(a @ v))
        return self.head(np.sum(h, axis=1) / t)


class Classifier(nn.Module):
    def __init__(self, cell):
        super().__init__()
        self.emb = nn.Embedding(20, 5)
        self.rnn = cell(5, 6, batch_first=True)
        self.fc = nn.Linear(6, 3)

    def forward(self, idx):
        out, _ = self.rnn(self.emb(idx))
        return self.fc(out[:, -1])


def test_residual_custom_forward_float64(tmp_path):
    nn.init.manual_seed(0)
    check(Residual(), rng.standard_normal((3, 4)), rng.standard_normal((7, 4)), tmp_path, 1e-9)


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "RNN"])
def test_embedding_recurrent_classifiers(tmp_path, cell):
    nn.init.manual_seed(0)
    model = Classifier(getattr(nn, cell))
    proto = check(model, rng.integers(0, 20, (2, 6)), rng.integers(0, 20, (5, 6)), tmp_path,
                  1e-9)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64


def test_recurrent_layer_outputs_and_states(tmp_path):
    nn.init.manual_seed(0)
    model = nn.LSTM(3, 4, num_layers=2, batch_first=True)
    proto = check(model, rng.standard_normal((2, 5, 3)), rng.standard_normal((4, 5, 3)),
                  tmp_path, 1e-9)
    assert [o.name for o in proto.graph.output] == ["output", "output_1", "output_2"]


def test_tiny_attention_encoder(tmp_path):
    nn.init.manual_seed(0)
    check(TinyAttention(), rng.standard_normal((2, 5, 8)), rng.standard_normal((6, 5, 8)),
          tmp_path, 1e-9)


def test_cnn_exports_float32_by_default(tmp_path):
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 3))
    model(rng.standard_normal((8, 1, 4, 4)))
    proto = nn.export_onnx(model.eval(), rng.standard_normal((2, 1, 4, 4)), tmp_path / "c.onnx")
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = rng.standard_normal((5, 1, 4, 4))
    got = ort_run(proto, x.astype(np.float32))[0]
    assert float(np.max(np.abs(got - ours(model, x)[0]))) < 1e-5


class ConvPrimitives(nn.Module):
    """conv2d and max_pool2d called as functions (the primitives, not the layers)."""
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(rng.standard_normal((3, 2, 3, 3)))

    def forward(self, x):
        y = F.max_pool2d(F.conv2d(x, self.w, padding=1), 2)
        return np.reshape(y, (y.shape[0], -1))


def test_conv_and_pool_primitives_float32(tmp_path):
    model = ConvPrimitives()
    x = rng.standard_normal((5, 2, 6, 6))
    proto = check(model, x[:2], x.astype(np.float32), tmp_path, 1e-4)
    assert {"Conv", "MaxPool"} <= {n.op_type for n in proto.graph.node}


class Unmapped(nn.Module):
    def forward(self, x):
        return np.cumsum(x, axis=1)


class Branchy(nn.Module):
    def forward(self, x):
        return x * 2.0 if np.sum(x) > 0 else -x


def test_unmapped_primitive_is_named(tmp_path):
    with pytest.raises(NotImplementedError, match="cumsum"):
        nn.export_onnx(Unmapped(), np.ones((2, 3)), tmp_path / "u.onnx")
    assert not (tmp_path / "u.onnx").exists()


def test_value_dependent_branch_is_refused(tmp_path):
    with pytest.raises(ValueError, match="depends on values"):
        nn.export_onnx(Branchy(), np.ones((2, 3)), tmp_path / "b.onnx")


class KitchenSink(nn.Module):
    """Indexing, stacking, reductions, comparisons, where, layer_norm (standardize) and the
    forward parts of losses against targets made inside forward (batch-sized constants)."""
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)
        self.g = nn.Parameter(rng.uniform(0.5, 1.5, 6))

    def forward(self, x):                                   # (N, 6)
        h = F.layer_norm(self.lin(x), (6,), weight=self.g)
        s = np.stack([h[:, 0], h[:, -1], h[..., 2]], axis=1)              # (N, 3)
        r = h[:, None, ::-2] + np.transpose(h[:, :3, None], (0, 2, 1))    # (N, 1, 3)
        m = np.where((s > 0.1) & (s < 2.0), s, np.exp(s) - 1.0)
        parts = [np.max(h, axis=1), np.min(h, axis=1), np.sum(np.abs(r), axis=(1, 2)),
                 F.logsumexp(h, axis=1), np.mean(m, axis=1),
                 F.binary_cross_entropy_with_logits(s, np.full(s.shape, 0.3),
                                                    reduction="none").sum(1),
                 F.mse_loss(s, np.zeros(s.shape), reduction="none").mean(1),
                 F.sigmoid(h[:, 1]) * F.gelu(h[:, 2], approximate="tanh"),
                 np.sqrt(np.square(h[:, 3]) + 1.0) ** 1.5]
        return np.stack(parts, axis=-1).astype(np.float64)


def test_kitchen_sink_custom_forward(tmp_path):
    nn.init.manual_seed(0)
    proto = check(KitchenSink(), rng.standard_normal((2, 6)), rng.standard_normal((9, 6)),
                  tmp_path, 1e-9)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Slice", "Gather", "Unsqueeze", "Where", "ReduceMax", "ReduceSum"} <= ops


def test_static_batch_export(tmp_path):
    nn.init.manual_seed(0)
    model = Residual()
    x = rng.standard_normal((3, 4))
    proto = nn.export_onnx(model, x, tmp_path / "s.onnx", dynamic_batch=False)
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [3, 4]
    assert float(np.max(np.abs(ort_run(proto, x)[0] - ours(model, x)[0]))) < 1e-9


def test_unmapped_primitive_names_the_layer(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.Tanh(), Unmapped()))
    with pytest.raises(NotImplementedError, match=r"cumsum.*'1\.1'"):
        nn.export_onnx(model, np.ones((2, 3)), tmp_path / "u.onnx")


def test_loop_over_the_batch_axis_is_refused(tmp_path):
    nn.init.manual_seed(0)
    gru = nn.GRU(3, 4)                      # sequence first: axis 0 is not a batch axis
    with pytest.raises(ValueError, match="dynamic_batch=False"):
        nn.export_onnx(gru, rng.standard_normal((5, 2, 3)), tmp_path / "g.onnx")
    x = rng.standard_normal((5, 2, 3))
    proto = nn.export_onnx(gru, x, tmp_path / "g.onnx", dynamic_batch=False)
    for g, w in zip(ort_run(proto, x), ours(gru, x)):
        assert float(np.max(np.abs(g - w))) < 1e-9


class FunctionalConv(nn.Module):
    """conv1d, max_pool1d, avg_pool1d and dropout as functions, then per-sample
    cross-entropy against labels made inside forward."""
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(rng.standard_normal((3, 2, 3)))

    def forward(self, x):
        y = F.max_pool1d(F.conv1d(x, self.w, padding=1), 2)
        y = F.avg_pool1d(F.dropout(y, 0.5, training=self.training), 2, ceil_mode=True)
        y = np.reshape(y, (y.shape[0], -1))
        return F.cross_entropy(y, np.zeros(y.shape[0], dtype=int), reduction="none")


class Losses(nn.Module):
    """The forward parts of the losses and the activations, per sample."""
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        y = self.lin(x)
        ones = np.ones(y.shape[0], dtype=int)
        return (F.nll_loss(F.log_softmax(y, dim=1), ones, reduction="none")
                + F.huber_loss(y, np.zeros(y.shape), reduction="none").sum(1)
                + F.binary_cross_entropy(F.sigmoid(y), np.full(y.shape, 0.2),
                                         reduction="none").sum(1)
                + (F.elu(y) + F.softplus(y) + F.leaky_relu(y)).sum(1))


def test_functional_conv_pools_and_cross_entropy_float32(tmp_path):
    x = rng.standard_normal((5, 2, 8))
    check(FunctionalConv(), x[:2], x.astype(np.float32), tmp_path, 1e-5)


def test_loss_forward_parts_float64(tmp_path):
    nn.init.manual_seed(0)
    check(Losses(), rng.standard_normal((2, 4)), rng.standard_normal((6, 4)), tmp_path, 1e-9)


needs_transformer = pytest.mark.skipif(
    not all(hasattr(nn, n) for n in ("TransformerEncoderLayer", "MultiheadAttention")),
    reason="nn.TransformerEncoderLayer/MultiheadAttention not there")


@needs_transformer
def test_tiny_transformer_encoder_with_padded_embedding(tmp_path):
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8, padding_idx=0)
            self.enc = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1,
                                                  batch_first=True)
            self.fc = nn.Linear(8, 3)

        def forward(self, idx):
            return self.fc(self.enc(self.emb(idx)).mean(1))

    nn.init.manual_seed(0)
    check(Encoder(), rng.integers(0, 20, (2, 5)), rng.integers(0, 20, (4, 5)), tmp_path, 1e-9)


@needs_transformer
def test_multihead_attention_and_sdpa_with_causal_masks(tmp_path):
    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

        def forward(self, x):
            t = x.shape[1]
            y, _ = self.attn(x, x, x, attn_mask=np.triu(np.ones((t, t), dtype=bool), 1))
            return y + F.scaled_dot_product_attention(x, x, x, is_causal=True)

    nn.init.manual_seed(0)
    check(Attend(), rng.standard_normal((2, 5, 8)), rng.standard_normal((3, 5, 8)), tmp_path,
          1e-9)
