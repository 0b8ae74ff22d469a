"""PyTorch tutorial programs, ported by changing only their imports.

Each program's body is one source text, run twice: under PyTorch's imports and under
autodiff's. Both start from the same initial weights (copied from the PyTorch model by
the one ``model.load_state_dict(INIT)`` line both bodies share) and their printed training
logs must agree, float64 against float64.
"""
import contextlib
import io
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# pytorch.org, "Learning PyTorch with Examples", "PyTorch: Custom nn Modules"
# (``torch.nn.Module``/``torch.optim`` written as ``nn.Module``/``optim`` after the usual
# ``from torch import nn, optim``).
POLYNOMIAL = '''
class Polynomial3(nn.Module):
    def __init__(self):
        """
        In the constructor we instantiate four parameters and assign them as
        member parameters.
        """
        super().__init__()
        self.a = nn.Parameter(randn(()))
        self.b = nn.Parameter(randn(()))
        self.c = nn.Parameter(randn(()))
        self.d = nn.Parameter(randn(()))

    def forward(self, x):
        return self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3

    def string(self):
        return f'y = {self.a.item()} + {self.b.item()} x + {self.c.item()} x^2 + {self.d.item()} x^3'


# Create Tensors to hold input and outputs.
x = linspace(-math.pi, math.pi, 2000)
y = sin(x)

# Construct our model by instantiating the class defined above
model = Polynomial3()
model.load_state_dict(INIT)

criterion = nn.MSELoss(reduction='sum')
optimizer = optim.SGD(model.parameters(), lr=1e-6)
for t in range(STEPS):
    # Forward pass: Compute predicted y by passing x to the model
    y_pred = model(x)

    # Compute and print loss
    loss = criterion(y_pred, y)
    if t % 100 == 99:
        print(t, loss.item())

    # Zero gradients, perform a backward pass, and update the weights.
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()

print(f'Result: {model.string()}')
'''

POLYNOMIAL_TORCH = '''
import math
import torch
from torch import nn, optim
from torch import linspace, randn, sin
'''

POLYNOMIAL_OURS = '''
import math
from autodiff import nn
from autodiff.nn import optim
from numpy import linspace, sin
from numpy.random import standard_normal as randn
'''

# A tiny attention classifier in the style of PyTorch's text-classification tutorials:
# Embedding with a padding index, a learned position table, a TransformerEncoderLayer with a
# key padding mask, mean pooling and a linear head, trained with Adam.
TRANSFORMER = '''
class TinyTransformer(nn.Module):
    def __init__(self, vocab_size, d_model=16, nhead=2, num_classes=3, max_len=8):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.pos = nn.Parameter(randn(max_len, d_model) * 0.1)
        self.encoder = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=32,
                                                  dropout=0.0, batch_first=True)
        self.attn = nn.MultiheadAttention(d_model, nhead, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, tokens):
        pad = tokens == 0
        batch, length = tokens.shape
        h = self.embed(tokens) + self.pos[:length]
        h = self.encoder(h, src_key_padding_mask=pad)
        a, weights = self.attn(h, h, h, key_padding_mask=pad)
        h = self.norm(h + a)
        pooled = h.sum(dim=1) / (length - pad.sum(1, keepdims=True))
        return self.head(F.gelu(pooled.view(batch, -1)))


model = TinyTransformer(VOCAB)
model.load_state_dict(INIT)
criterion = nn.CrossEntropyLoss(label_smoothing=0.05)
optimizer = optim.Adam(model.parameters(), lr=1e-2)
X, Y = tensor(TOKENS), tensor(LABELS)
for epoch in range(EPOCHS):
    model.train()
    optimizer.zero_grad()
    logits = model(X)
    loss = criterion(logits, Y)
    loss.backward()
    optimizer.step()
    print(epoch, loss.item())

model.eval()
with no_grad():
    correct = (model(X).argmax(dim=1) == Y).sum().item()
print("accuracy", correct / len(Y))
'''

TRANSFORMER_TORCH = '''
import torch
from torch import nn, no_grad, optim, randn, tensor
import torch.nn.functional as F
'''

TRANSFORMER_OURS = '''
from autodiff import nn
from autodiff.nn import no_grad, optim
import autodiff.nn.functional as F
from numpy import asarray as tensor
from numpy.random import randn
'''


def _run(header, body, env):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(header + body, "<tutorial>", "exec"), env)
    return out.getvalue()


def _numbers(text):
    return [float(v) for v in re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", text)]


@contextlib.contextmanager
def _float64_torch():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _torch_init(header, body_head):
    """The initial state of the PyTorch model (its constructor run under a fixed seed)."""
    env = {}
    exec(compile(header + body_head, "<tutorial>", "exec"), env)
    return env


def test_polynomial_fit_tutorial_trains_to_torchs_numbers():
    steps = 300
    with _float64_torch():
        torch.manual_seed(0)
        env = _torch_init(POLYNOMIAL_TORCH, POLYNOMIAL.split("# Create Tensors")[0])
        init = env["Polynomial3"]().state_dict()
        theirs = _run(POLYNOMIAL_TORCH, POLYNOMIAL, {"INIT": init, "STEPS": steps})
    mine = _run(POLYNOMIAL_OURS, POLYNOMIAL,
                {"INIT": {k: v.numpy() for k, v in init.items()}, "STEPS": steps})
    a, b = _numbers(mine), _numbers(theirs)
    assert len(a) == len(b) == steps // 100 + 4
    np.testing.assert_allclose(a, b, rtol=1e-10)
    assert a[steps // 100 - 1] < a[0]            # it trains
    assert mine.splitlines()[0].startswith("99 ")


def test_attention_classifier_tutorial_trains_to_torchs_numbers():
    rng = np.random.default_rng(0)
    n, length, vocab = 24, 6, 10
    tokens = rng.integers(1, vocab, size=(n, length))
    for i in range(0, n, 3):
        tokens[i, length - 1 - i % 4:] = 0                  # padded ends
    labels = (tokens % 3 == 0).sum(1) % 3                  # a counting task: needs attention
    common = {"VOCAB": vocab, "TOKENS": tokens, "LABELS": labels, "EPOCHS": 12}
    with _float64_torch():
        torch.manual_seed(0)
        env = _torch_init(TRANSFORMER_TORCH, TRANSFORMER.split("model = Tiny")[0])
        init = env["TinyTransformer"](vocab).state_dict()
        theirs = _run(TRANSFORMER_TORCH, TRANSFORMER, dict(common, INIT=init))
    mine = _run(TRANSFORMER_OURS, TRANSFORMER,
                dict(common, INIT={k: v.numpy() for k, v in init.items()}))
    a, b = _numbers(mine), _numbers(theirs)
    assert len(a) == len(b) == 13
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert a[11] < a[0]
