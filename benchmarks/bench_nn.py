#!/usr/bin/env python
"""Training benchmark: one epoch of ``autodiff.nn`` beside PyTorch, HIPS autograd and NumPy.

Run from the repository root:

    python benchmarks/bench_nn.py                  # full run, about a minute
    python benchmarks/bench_nn.py --quick          # under half a minute, noisier
    python benchmarks/bench_nn.py --out benchmarks/results_nn.md

Workload: one training epoch over scikit-learn's digits (1,797 samples, 64 features, 10
classes, inputs / 16), in batches of 32 (one fixed permutation from seed 0, the last
partial batch of 5 kept: 57 steps), softmax cross-entropy, plain SGD (lr 0.1):

- MLP 64-128-128-10 with tanh, in float64 and in float32;
- CNN Conv2d(1, 8, 3, padding=1) - ReLU - MaxPool2d(2) - Flatten - Linear(128, 10) on the
  8×8 images, float64 (ours only when ``autodiff.nn`` has Conv2d and MaxPool2d).

Contenders: ours (``autodiff.nn`` model, ``loss.backward()``, ``optimizer.step()``,
``zero_grad()``), PyTorch CPU eager (the same, ``torch.nn`` / ``torch.optim.SGD``), HIPS
autograd (``autograd.grad`` of the loss over a parameter list, with ``autograd.numpy``,
SGD in place) and hand-written NumPy (forward, manual backprop, SGD).

Every epoch time is a RATIO to the plain NumPy forward pass of the same epoch (the same
batches through the same network and loss, no gradient), timed interleaved in the same
round; the figure is the median over rounds of (epoch time / forward time). Peak memory
per training step: tracemalloc peak above the live set before the step for the NumPy-based
contenders, torch's CPU allocator events (profiler, ``profile_memory=True``) for torch.

Everything runs on one thread, pinned to one core (environment variables set by harness.py
before NumPy and PyTorch are imported). Before timing, every contender starts from the same weights:
the loss of the first batch and the weights after one epoch are compared with NumPy's.
"""
import harness  # first: one thread everywhere, before numpy / torch are imported

import cProfile
import gc
import inspect
import io
import math
import pstats
import statistics
import time
import tracemalloc
import traceback
import warnings

from harness import PROBLEMS, fmt_time, note, run_n, short_exc

MLP_TARGET = 3.0        # ours, MLP epoch / NumPy forward epoch
PEERS_EARLIER = "PyTorch ≈ 4.4×, autograd ≈ 7.6×, hand-written NumPy ≈ 2.1×"

ARGS, CFG = harness.parse_args(
    __doc__, "results_nn.md",
    quick="fewer rounds and shorter timings (under half a minute)",
    repeats=("interleaved rounds per workload", 15, 5),
    min_time=("minimum seconds per timing; sets the number of epochs per timing", 0.1, 0.03),
    budget=("seconds one contender may spend timing one workload; slower ones "
            "get fewer rounds", 20.0, 4.0),
    only="comma-separated workloads: mlp64,mlp32,cnn (default: all)",
    extra=[("--profile", dict(action="store_true",
                              help="profile ours even when it meets the target"))])
PINNED_CPU = harness.pin_to_one_core(ARGS.cpu)   # before the libraries start their pools

import numpy as np  # noqa: E402


# --- the libraries, each optional -------------------------------------------------------
try:
    from autodiff import nn
except Exception as exc:  # noqa: BLE001
    nn = None
    note(f"autodiff.nn not importable, our columns are empty: {short_exc(exc)}")
try:
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp as ag_logsumexp
except Exception as exc:  # noqa: BLE001
    autograd = anp = ag_logsumexp = None
    note(f"autograd skipped (not importable: {exc}); pip install autograd")
try:
    import torch
    harness.torch_one_thread(torch)
except Exception as exc:  # noqa: BLE001
    torch = None
    note(f"PyTorch skipped (not importable: {exc}); pip install torch==2.13.0")

HAVE_CONV = nn is not None and hasattr(nn, "Conv2d") and hasattr(nn, "MaxPool2d")


# =====================================================================================
# Data and initial weights
# =====================================================================================
BATCH = 32
LR = 0.1
SEED = 0
MLP_SIZES = (64, 128, 128, 10)


def load_batches():
    """The digits, inputs / 16, in one fixed shuffled order, cut into batches of 32 (the
    last partial batch kept). Returns [(x float64 (n, 64), y int64 (n,)), ...]."""
    from sklearn.datasets import load_digits
    d = load_digits()
    X = np.asarray(d.data, dtype=np.float64) / 16.0
    y = np.asarray(d.target, dtype=np.int64)
    order = np.random.default_rng(SEED).permutation(len(X))
    return [(np.ascontiguousarray(X[order[s:s + BATCH]]),
             np.ascontiguousarray(y[order[s:s + BATCH]]))
            for s in range(0, len(X), BATCH)], X.shape


def _uniform(rng, shape, fan_in):
    bound = 1.0 / math.sqrt(fan_in)          # PyTorch's default for Linear and Conv2d
    return rng.uniform(-bound, bound, shape)


def init_mlp(dtype):
    """[W1, b1, W2, b2, W3, b3], W of shape (out, in) as in torch.nn.Linear."""
    rng = np.random.default_rng(SEED + 1)
    out = []
    for fi, fo in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        out += [_uniform(rng, (fo, fi), fi).astype(dtype), _uniform(rng, (fo,), fi).astype(dtype)]
    return out


CNN_C = 8


def init_cnn(dtype):
    """[Wc (8, 1, 3, 3), bc (8,), W (10, 128), b (10,)]."""
    rng = np.random.default_rng(SEED + 2)
    return [_uniform(rng, (CNN_C, 1, 3, 3), 9).astype(dtype),
            _uniform(rng, (CNN_C,), 9).astype(dtype),
            _uniform(rng, (10, CNN_C * 16), CNN_C * 16).astype(dtype),
            _uniform(rng, (10,), CNN_C * 16).astype(dtype)]


# =====================================================================================
# Hand-written NumPy: forward (the baseline) and forward + backprop + SGD
# =====================================================================================
def np_mlp_forward(p, x, y):
    """The baseline: the same network and loss, no gradient. Returns the loss."""
    W1, b1, W2, b2, W3, b3 = p
    h1 = np.tanh(x @ W1.T + b1)
    h2 = np.tanh(h1 @ W2.T + b2)
    z = h2 @ W3.T + b3
    z = z - z.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -lp[np.arange(len(y)), y].mean()


def np_mlp_step(p, x, y):
    """Forward, manual backprop, SGD in place. Returns the loss."""
    W1, b1, W2, b2, W3, b3 = p
    n = len(y)
    h1 = np.tanh(x @ W1.T + b1)
    h2 = np.tanh(h1 @ W2.T + b2)
    z = h2 @ W3.T + b3
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    ar = np.arange(n)
    loss = np.log(s[:, 0]).mean() - z[ar, y].mean()
    dz = e / s
    dz[ar, y] -= 1.0
    dz /= n
    dh2 = (dz @ W3) * (1.0 - h2 * h2)
    dh1 = (dh2 @ W2) * (1.0 - h1 * h1)
    W3 -= LR * (dz.T @ h2)
    b3 -= LR * dz.sum(axis=0)
    W2 -= LR * (dh2.T @ h1)
    b2 -= LR * dh2.sum(axis=0)
    W1 -= LR * (dh1.T @ x)
    b1 -= LR * dh1.sum(axis=0)
    return loss


def im2col(x):
    """(n, 1, 8, 8) images → (n·64, 9) patches of the zero-padded 3×3 neighbourhoods, in
    (kh, kw) order (the layout of a Conv2d(1, C, 3) weight)."""
    n = x.shape[0]
    xp = np.zeros((n, 10, 10), dtype=x.dtype)
    xp[:, 1:9, 1:9] = x[:, 0]
    cols = np.stack([xp[:, i:i + 8, j:j + 8] for i in range(3) for j in range(3)], axis=-1)
    return cols.reshape(n * 64, 9)


TAPS = ((0, 0), (0, 1), (1, 0), (1, 1))       # the 2×2 pooling window, row-major


def _conv_relu(Wc, bc, x):
    """Conv2d(1, C, 3, padding=1) + ReLU, channels last: (n·64, 9) patches and (n·64, C)."""
    cols = im2col(x)
    conv = cols @ Wc.reshape(CNN_C, 9).T + bc
    return cols, conv, np.maximum(conv, 0.0)


def np_cnn_forward(p, x, y):
    Wc, bc, W, b = p
    n = len(y)
    a = _conv_relu(Wc, bc, x)[2].reshape(n, 8, 8, CNN_C)               # NHWC
    # 2×2 max pooling as the maximum of four strided slices (NumPy's reduce over the
    # size-2 window axes of a reshape is many times slower)
    pooled = np.maximum(np.maximum(a[:, 0::2, 0::2], a[:, 0::2, 1::2]),
                        np.maximum(a[:, 1::2, 0::2], a[:, 1::2, 1::2]))  # (n, 4, 4, C)
    flat = pooled.transpose(0, 3, 1, 2).reshape(n, CNN_C * 16)          # (c, h, w) order
    z = flat @ W.T + b
    z = z - z.max(axis=1, keepdims=True)
    lp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -lp[np.arange(n), y].mean()


def np_cnn_step(p, x, y):
    Wc, bc, W, b = p
    n = len(y)
    cols, conv, a = _conv_relu(Wc, bc, x)
    a = a.reshape(n, 8, 8, CNN_C)
    taps = np.stack([a[:, i::2, j::2] for i, j in TAPS], axis=-1)       # (n, 4, 4, C, 4)
    idx = taps.argmax(axis=-1)[..., None]                               # first max, as torch
    pooled = np.take_along_axis(taps, idx, axis=-1)[..., 0]
    flat = pooled.transpose(0, 3, 1, 2).reshape(n, CNN_C * 16)
    z = flat @ W.T + b
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    ar = np.arange(n)
    loss = np.log(s[:, 0]).mean() - z[ar, y].mean()
    dz = e / s
    dz[ar, y] -= 1.0
    dz /= n
    dpool = (dz @ W).reshape(n, CNN_C, 4, 4).transpose(0, 2, 3, 1)     # (n, 4, 4, C)
    dtaps = np.zeros_like(taps)
    np.put_along_axis(dtaps, idx, dpool[..., None], axis=-1)
    da = np.empty_like(a)
    for k, (i, j) in enumerate(TAPS):
        da[:, i::2, j::2] = dtaps[..., k]
    dconv = da.reshape(n * 64, CNN_C) * (conv > 0)
    W -= LR * (dz.T @ flat)
    b -= LR * dz.sum(axis=0)
    Wc -= LR * (dconv.T @ cols).reshape(Wc.shape)
    bc -= LR * dconv.sum(axis=0)
    return loss


# =====================================================================================
# Contenders. Each: build(weights) from NumPy arrays in torch's layout; step(x, y) one
# training step; loss(x, y) without update; weights() back as NumPy arrays.
# =====================================================================================
class Contender:
    col = None
    label = None
    ours = False

    def __init__(self, arch, dtype, weights, batches):
        self.arch, self.dtype = arch, dtype
        self.error = None
        self.times, self.ratios = [], []
        self.n = self.rounds = None
        self.agrees = None
        self.loss_err = self.w_err = None
        self.first_loss = None
        self.mem = None
        self.mem_how = None
        self.setup_time = None
        self.batches = self.convert(batches)
        self.build([np.array(w) for w in weights])

    def convert(self, batches):
        if self.arch == "cnn":
            return [(x.reshape(-1, 1, 8, 8), y) for x, y in batches]
        return batches

    def epoch(self):
        step = self.step
        for x, y in self.batches:
            step(x, y)

    def peak_memory(self):
        """tracemalloc peak above the live set before one training step (first batch)."""
        x, y = self.batches[0]
        self.step(x, y)                      # warm: caches, lazily made state
        gc.collect()
        tracemalloc.start()
        try:
            self.step(x, y)
            gc.collect()
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            self.step(x, y)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return peak - base, "tracemalloc"


class NumpyHand(Contender):
    col = "numpy"
    label = "hand-written NumPy (forward + manual backprop + SGD)"

    def build(self, w):
        self.p = w
        self._step = np_mlp_step if self.arch == "mlp" else np_cnn_step
        self._fwd = np_mlp_forward if self.arch == "mlp" else np_cnn_forward

    def step(self, x, y):
        self._step(self.p, x, y)

    def loss(self, x, y):
        return float(self._fwd(self.p, x, y))

    def weights(self):
        return [np.array(w) for w in self.p]


class _ModuleLoop(Contender):
    """The PyTorch-style training loop, which ours and torch spell the same way: a model,
    a loss ``ce``, an optimizer ``opt``; ``loss.backward()``, ``opt.step()``, ``zero_grad()``."""

    def step(self, x, y):
        loss = self.ce(self.model(x), y)
        loss.backward()
        self.opt.step()
        self.opt.zero_grad()

    def epoch(self):
        model, ce, opt = self.model, self.ce, self.opt
        for x, y in self.batches:
            loss = ce(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()


class Ours(_ModuleLoop):
    col = "ours"
    ours = True
    label = "ours: autodiff.nn model, loss.backward(), SGD.step(), zero_grad()"

    def build(self, w):
        dt = self.dtype
        if self.arch == "mlp":
            self.model = nn.Sequential(nn.Linear(64, 128, dtype=dt), nn.Tanh(),
                                       nn.Linear(128, 128, dtype=dt), nn.Tanh(),
                                       nn.Linear(128, 10, dtype=dt))
        else:
            kw = {"dtype": dt} if "dtype" in inspect.signature(nn.Conv2d).parameters else {}
            self.model = nn.Sequential(nn.Conv2d(1, CNN_C, 3, padding=1, **kw), nn.ReLU(),
                                       nn.MaxPool2d(2), nn.Flatten(),
                                       nn.Linear(CNN_C * 16, 10, dtype=dt))
        params = list(self.model.parameters())
        if [np.shape(p.value) for p in params] != [a.shape for a in w]:
            raise ValueError(f"parameter shapes {[np.shape(p.value) for p in params]} differ "
                             f"from {[a.shape for a in w]}")
        for p, a in zip(params, w):
            p.value[...] = a
        self.params = params
        self.opt = nn.optim.SGD(params, lr=LR)
        self.ce = nn.functional.cross_entropy

    def loss(self, x, y):
        out = self.ce(self.model(x), y)
        return float(np.asarray(getattr(out, "value", out)))

    def dtypes(self, x, y):
        """dtype of the loss and of the gradients after one backward (no update)."""
        out = self.ce(self.model(x), y)
        out.backward()
        grads = sorted({str(np.asarray(p.grad).dtype) for p in self.params})
        self.opt.zero_grad()
        return str(np.asarray(getattr(out, "value", out)).dtype), grads

    def weights(self):
        return [np.array(p.value) for p in self.params]


class Torch(_ModuleLoop):
    col = "torch"
    label = "PyTorch eager: torch.nn model, loss.backward(), torch.optim.SGD"

    def build(self, w):
        tn = torch.nn
        tdt = {np.float64: torch.float64, np.float32: torch.float32}[self.dtype]
        if self.arch == "mlp":
            self.model = tn.Sequential(tn.Linear(64, 128), tn.Tanh(), tn.Linear(128, 128),
                                       tn.Tanh(), tn.Linear(128, 10))
        else:
            self.model = tn.Sequential(tn.Conv2d(1, CNN_C, 3, padding=1), tn.ReLU(),
                                       tn.MaxPool2d(2), tn.Flatten(), tn.Linear(CNN_C * 16, 10))
        self.model.to(tdt)
        params = list(self.model.parameters())
        with torch.no_grad():
            for p, a in zip(params, w):
                p.copy_(torch.from_numpy(a))
        self.params = params
        self.opt = torch.optim.SGD(params, lr=LR)
        self.ce = torch.nn.functional.cross_entropy

    def convert(self, batches):
        out = []
        for x, y in batches:
            if self.arch == "cnn":
                x = x.reshape(-1, 1, 8, 8)
            out.append((torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)))
        return out

    def loss(self, x, y):
        with torch.no_grad():
            return float(self.ce(self.model(x), y))

    def weights(self):
        return [p.detach().numpy().copy() for p in self.params]

    def peak_memory(self):
        """Peak of torch's CPU allocations during one training step: the profiler's memory
        events (profile_memory=True) summed in time order. Falls back to the growth of the
        process's peak RSS (VmHWM after resetting it) when the profiler gives nothing."""
        x, y = self.batches[0]
        self.step(x, y)
        try:
            from torch.profiler import ProfilerActivity, profile
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
                    self.step(x, y)
            evs = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                         if e.name() == "[memory]")
            if evs:
                cur = peak = 0
                for _, b in evs:
                    cur += b
                    peak = max(peak, cur)
                return peak, "torch profiler (CPU allocator events)"
        except Exception as exc:  # noqa: BLE001
            note(f"torch profiler memory failed ({short_exc(exc)}); using the RSS delta")
        return _rss_delta(lambda: self.step(x, y)), "process peak-RSS delta"


def _status_kb(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def _rss_delta(fn):
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")                   # reset VmHWM to the current RSS
        before = _status_kb("VmRSS")
        fn()
        return max(0, _status_kb("VmHWM") - before) * 1024
    except OSError:
        return None


class Autograd(Contender):
    col = "autograd"
    label = "HIPS autograd: autograd.grad over the parameter list, in-place SGD"

    def build(self, w):
        self.p = w
        self.grad = autograd.grad(self._loss_fn)

    def _loss_fn(self, p, x, y):
        n = len(y)
        if self.arch == "mlp":
            W1, b1, W2, b2, W3, b3 = p
            h1 = anp.tanh(anp.dot(x, W1.T) + b1)
            h2 = anp.tanh(anp.dot(h1, W2.T) + b2)
            z = anp.dot(h2, W3.T) + b3
        else:
            Wc, bc, W, b = p
            cols = im2col(x)                          # data only: conv is the first layer
            a = anp.maximum(anp.dot(cols, anp.reshape(Wc, (CNN_C, 9)).T) + bc, 0.0)
            a = anp.reshape(a, (n, 8, 8, CNN_C))
            pooled = anp.maximum(anp.maximum(a[:, 0::2, 0::2], a[:, 0::2, 1::2]),
                                 anp.maximum(a[:, 1::2, 0::2], a[:, 1::2, 1::2]))
            flat = anp.reshape(anp.transpose(pooled, (0, 3, 1, 2)), (n, CNN_C * 16))
            z = anp.dot(flat, W.T) + b
        lp = z - ag_logsumexp(z, axis=1, keepdims=True)
        return -anp.mean(lp[np.arange(n), y])

    def step(self, x, y):
        for p, g in zip(self.p, self.grad(self.p, x, y)):
            p -= LR * g

    def loss(self, x, y):
        return float(self._loss_fn(self.p, x, y))

    def weights(self):
        return [np.array(w) for w in self.p]


CONTENDERS = [("ours", Ours, nn), ("torch", Torch, torch), ("autograd", Autograd, autograd),
              ("numpy", NumpyHand, True)]
COLS = ["ours", "torch", "autograd", "numpy"]
COL_TITLES = {"ours": "ours (autodiff.nn)", "torch": "PyTorch eager", "autograd": "autograd",
              "numpy": "hand-written NumPy"}


# =====================================================================================
# Checks against NumPy, and timing (the timing itself, shared with bench_core.py:
# harness.py)
# =====================================================================================
def _tolerances(dtype):
    return (1e-9, 1e-12, 1e-7, 1e-9) if dtype == np.float64 else (1e-5, 1e-6, 1e-3, 1e-4)


def _maxdiff(a, b):
    return max(float(np.max(np.abs(np.asarray(u, dtype=np.float64) - v))) for u, v in zip(a, b))


def _repro(arch, dtype):
    dt = "np.float64" if dtype == np.float64 else "np.float32"
    if arch == "mlp":
        model = (f"model = nn.Sequential(nn.Linear(64, 128, dtype={dt}), nn.Tanh(),\n"
                 f"                      nn.Linear(128, 128, dtype={dt}), nn.Tanh(),\n"
                 f"                      nn.Linear(128, 10, dtype={dt}))\n"
                 f"x = np.random.default_rng(0).random((32, 64)).astype({dt})\n")
    else:
        model = ("model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), "
                 "nn.MaxPool2d(2),\n                      nn.Flatten(), nn.Linear(128, 10))\n"
                 "x = np.random.default_rng(0).random((32, 1, 8, 8))\n")
    return ("import numpy as np\nfrom autodiff import nn\n" + model +
            "y = np.arange(32) % 10\nopt = nn.optim.SGD(model.parameters(), lr=0.1)\n"
            "loss = nn.functional.cross_entropy(model(x), y)\n"
            "loss.backward(); opt.step(); opt.zero_grad()\nprint(loss)")


def _repro_dtype():
    return ("import numpy as np\nfrom autodiff import nn\n"
            "lin = nn.Linear(4, 3, dtype=np.float32)\n"
            "loss = nn.functional.cross_entropy(lin(np.ones((2, 4), np.float32)), "
            "np.array([0, 2]))\n"
            "loss.backward()\n"
            "print(loss.value.dtype, lin.weight.grad.dtype)   # float32 float32 expected")


def run_workload(wid, title, arch, dtype, batches, cfg):
    print(f"\n== {title}")
    init = init_mlp(dtype) if arch == "mlp" else init_cnn(dtype)
    fb = [(x.astype(dtype), y) for x, y in batches]
    if arch == "cnn":
        fb = [(x.reshape(-1, 1, 8, 8), y) for x, y in fb]
    fwd = np_mlp_forward if arch == "mlp" else np_cnn_forward
    base_w = [np.array(w) for w in init]

    def baseline():
        for x, y in fb:
            fwd(base_w, x, y)

    res = {"id": wid, "title": title, "arch": arch, "dtype": dtype, "contenders": {},
           "pending": None}
    cs = []
    for cid, cls, lib in CONTENDERS:
        if not lib:
            continue
        if cid == "ours" and arch == "cnn" and not HAVE_CONV:
            res["pending"] = ("autodiff.nn has no Conv2d / MaxPool2d yet (nn/conv.py is being "
                              "written); the CNN row of ours is pending")
            note(res["pending"])
            continue
        t_s = time.perf_counter()
        try:
            c = cls(arch, dtype, init, [(x.astype(dtype), y) for x, y in batches])
        except Exception as exc:  # noqa: BLE001
            c = cls.__new__(cls)          # a placeholder that carries the error
            c.error, c.times, c.ratios, c.agrees, c.mem = short_exc(exc), [], [], None, None
            c.setup_time = None
            print(f"   {cls.label}: ERROR {c.error}")
            if cls.ours:
                PROBLEMS.append((title, "building the model", c.error,
                                 traceback.format_exc(limit=-6), _repro(arch, dtype)))
            res["contenders"][cid] = c
            continue
        c.setup_time = time.perf_counter() - t_s
        res["contenders"][cid] = c
        cs.append(c)

    # --- correctness: same initial weights → same first-batch loss, same weights after
    # one epoch of training (the epoch doubles as the warm-up).
    x0, y0 = fb[0]
    ref_loss = float(fwd(init, x0, y0))
    ref_w = None
    lrt, lat, wrt, wat = _tolerances(dtype)
    ordered = sorted(cs, key=lambda c: c.col != "numpy")      # NumPy first: the reference
    for c in ordered:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                c.first_loss = c.loss(*c.batches[0])
                if c.ours:
                    ldt, gdts = c.dtypes(*c.batches[0])
                    want = np.dtype(dtype).name
                    if ldt != want or gdts != [want]:
                        msg = (f"{want} model: the loss is {ldt} and the gradients are "
                               f"{', '.join(gdts)} (PyTorch keeps {want} throughout)")
                        print("   ours: DTYPE " + msg)
                        note(f"{title}: ours computes in the wrong precision: {msg}")
                        PROBLEMS.append((title, "dtype", msg, "", _repro_dtype()))
                c.epoch()
                w = c.weights()
            if not all(np.all(np.isfinite(a)) for a in w):
                raise FloatingPointError("weights contain nan/inf after one epoch")
        except Exception as exc:  # noqa: BLE001
            c.error = short_exc(exc)
            print(f"   {c.label}: ERROR {c.error}")
            if c.ours:
                PROBLEMS.append((title, "one training epoch", c.error,
                                 traceback.format_exc(limit=-6), _repro(arch, dtype)))
            continue
        if ref_w is None:
            ref_w = w
        c.loss_err = abs(c.first_loss - ref_loss)
        c.w_err = _maxdiff(w, ref_w)
        ok_loss = c.loss_err <= lat + lrt * abs(ref_loss)
        ok_w = all(np.allclose(u, v, rtol=wrt, atol=wat) for u, v in zip(w, ref_w))
        c.agrees = bool(ok_loss and ok_w)
        dts = {str(np.asarray(a).dtype) for a in w}
        print(f"   {c.col:<9s} first-batch loss {c.first_loss:.12g} (NumPy {ref_loss:.12g}, "
              f"|diff| {c.loss_err:.1e}); weights after one epoch: max |diff| {c.w_err:.1e} "
              f"{'ok' if c.agrees else 'MISMATCH'}; dtype {','.join(sorted(dts))}")
        if not c.agrees and c.ours:
            PROBLEMS.append((title, "loss / weights disagree with NumPy",
                             f"first-batch loss |diff| {c.loss_err:.2e}, weights after one "
                             f"epoch max |diff| {c.w_err:.2e}", "", _repro(arch, dtype)))
    res["ref_loss"] = ref_loss
    cs = [c for c in cs if c.error is None]

    # --- peak memory of one training step (and of one forward batch, for scale)
    gc.collect()
    tracemalloc.start()
    try:
        fwd(base_w, x0, y0)
        gc.collect()
        b0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fwd(base_w, x0, y0)
        res["base_mem"] = tracemalloc.get_traced_memory()[1] - b0
    finally:
        tracemalloc.stop()
    for c in cs:
        try:
            c.mem, c.mem_how = c.peak_memory()
        except Exception as exc:  # noqa: BLE001
            note(f"{title}: peak memory of {c.col} not measured ({short_exc(exc)})")

    # --- timing: interleaved rounds, ratios to the NumPy forward epoch
    n_f, base_times, cs = harness.time_interleaved(baseline, [(c, c.epoch) for c in cs], cfg)
    res["baseline"] = baseline
    res["base_time"] = statistics.median(base_times)
    res["base_times"] = base_times
    res["n_f"] = n_f
    print(f"   {'NumPy forward epoch (baseline)':<34s} {'1.00 x':>9s}  "
          f"{res['base_time'] * 1e3:8.3f} ms/epoch  n={n_f}  peak {_fmt_mem(res['base_mem'])}")
    for c in cs:
        r = statistics.median(c.ratios)
        extra = "" if c.rounds == cfg.repeats else f"  ({c.rounds} rounds)"
        verdict = ""
        if c.ours and arch == "mlp":
            verdict = "  PASS" if r <= MLP_TARGET else "  MISS"
            verdict += f" (target ≤ {MLP_TARGET:g}x)"
        print(f"   {c.col:<34s} {r:7.2f} x  {statistics.median(c.times) * 1e3:8.3f} ms/epoch  "
              f"n={c.n}  peak {_fmt_mem(c.mem)}{extra}{verdict}")
    return res


# =====================================================================================
# Where the time goes: phases of ours, and a cProfile of its training steps
# =====================================================================================
def _fresh_ours(batches, arch, dtype):
    init = init_mlp(dtype) if arch == "mlp" else init_cnn(dtype)
    return Ours(arch, dtype, init, [(x.astype(dtype), y) for x, y in batches])


def split_ours(batches, res, reps=7):
    """The time ours spends in each phase of a step over an epoch, each rep beside one
    NumPy forward epoch (the baseline, timed just before): median time and median ratio."""
    c = _fresh_ours(batches, res["arch"], res["dtype"])
    c.epoch()
    model, ce, opt = c.model, c.ce, c.opt
    baseline = res["baseline"]
    pc = time.perf_counter
    keys = ["forward + loss (records the tape)", "loss.backward()", "optimizer.step()",
            "optimizer.zero_grad()"]
    times = {k: [] for k in keys}
    ratios = {k: [] for k in keys}
    gc.collect()
    for _ in range(reps):
        tb = run_n(baseline, 1)
        acc = [0.0] * 4
        for x, y in c.batches:
            t0 = pc()
            loss = ce(model(x), y)
            t1 = pc()
            loss.backward()
            t2 = pc()
            opt.step()
            t3 = pc()
            opt.zero_grad()
            t4 = pc()
            acc[0] += t1 - t0
            acc[1] += t2 - t1
            acc[2] += t3 - t2
            acc[3] += t4 - t3
        for k, a in zip(keys, acc):
            times[k].append(a)
            ratios[k].append(a / tb)
    return [(k, statistics.median(times[k]), statistics.median(ratios[k])) for k in keys]


def _best(fn, number=20, repeat=5):
    fn()
    return min(run_n(fn, number) for _ in range(repeat))


def layers_ours(batches, arch, dtype):
    """Forward time of each layer of ours on the first batch (tape recorded), with the
    plain NumPy value of the same layer for scale; for the CNN also 2×2 max pooling of the
    same activation written as NumPy's reduce over a reshape and as four strided slices."""
    c = _fresh_ours(batches, arch, dtype)
    x, y = c.batches[0]
    rows = []
    h = x
    for i, m in enumerate(c.model):
        hv = np.asarray(getattr(h, "value", h))
        t_ours = _best(lambda m=m, h=h: m(h))
        try:
            t_np = _best(lambda m=m, hv=hv: m(hv))      # the layer on a plain array
        except Exception:  # noqa: BLE001
            t_np = None
        rows.append((f"{i}: {type(m).__name__}", t_ours, t_np))
        h = m(h)
    rows.append(("loss: cross_entropy", _best(lambda: c.ce(h, y)), None))
    extra = []
    if arch == "cnn":
        a = np.asarray(c.model[1](c.model[0](x)).value)          # (n, C, 8, 8) after ReLU
        n, ch = a.shape[:2]
        extra = [
            ("NumPy a.reshape(n, C, 4, 2, 4, 2).max(axis=(3, 5))",
             _best(lambda: a.reshape(n, ch, 4, 2, 4, 2).max(axis=(3, 5)))),
            ("NumPy maximum of the four strided slices a[..., i::2, j::2]",
             _best(lambda: np.maximum(np.maximum(a[..., 0::2, 0::2], a[..., 0::2, 1::2]),
                                      np.maximum(a[..., 1::2, 0::2], a[..., 1::2, 1::2])))),
        ]
    return rows, extra


PROFILE_EPOCHS = 10


def profile_ours(batches, arch, dtype):
    """cProfile of ours' training steps over PROFILE_EPOCHS epochs (57 steps each; several
    epochs so that microsecond entries are not one preemption's noise), top 15 by
    tottime."""
    c = _fresh_ours(batches, arch, dtype)
    c.epoch()
    gc.collect()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(PROFILE_EPOCHS):
        c.epoch()
    pr.disable()
    buf = io.StringIO()
    st = pstats.Stats(pr, stream=buf)
    st.strip_dirs().sort_stats("tottime").print_stats(15)
    text = buf.getvalue()
    lines = text.splitlines()
    # keep the header line with the totals and the table
    start = next((i for i, ln in enumerate(lines) if "function calls" in ln), 0)
    return "\n".join(ln.rstrip() for ln in lines[start:]).strip()


# =====================================================================================
# Report
# =====================================================================================
def _fmt_mem(b):
    if b is None:
        return "—"
    if b < 1024:
        return f"{b} B"
    if b < 1024 ** 2:
        return f"{b / 1024:.0f} KiB"
    return f"{b / 1024 ** 2:.1f} MiB"


def _ratio_cell(res, col):
    c = res["contenders"].get(col)
    if c is None:
        return "pending" if col == "ours" and res.get("pending") else "—", None
    if c.error:
        return "ERROR", None
    if not c.ratios:
        return "—", None
    v = statistics.median(c.ratios)
    s = f"{v:.2f}×"
    if c.agrees is False:
        s += " (WRONG)"
    return s, v


def build_tables(results):
    head = "| workload | " + " | ".join(COL_TITLES[c] for c in COLS)
    t1 = [head + " | target (ours) | met? |", "|---|" + "---:|" * len(COLS) + "---:|:---:|"]
    t2 = [head + " | NumPy forward (one batch) |", "|---|" + "---:|" * (len(COLS) + 1)]
    verdicts = []
    for res in results:
        cells, ours_v, ours_s = [], None, None
        for col in COLS:
            s, v = _ratio_cell(res, col)
            cells.append(s)
            if col == "ours":
                ours_v, ours_s = v, s
        if res["arch"] == "mlp":
            tgt = f"≤ {MLP_TARGET:g}×"
            if ours_s in ("ERROR", "pending", "—"):
                met = ours_s
            elif "WRONG" in ours_s:
                met = "WRONG"
            else:
                met = "PASS" if ours_v <= MLP_TARGET else "MISS"
            verdicts.append((res["title"], ours_s, tgt, met))
        else:
            tgt, met = "—", "—"
        t1.append(f"| {res['title']} | " + " | ".join(cells) + f" | {tgt} | {met} |")
        mcells = []
        for col in COLS:
            c = res["contenders"].get(col)
            if c is None:
                mcells.append("pending" if col == "ours" and res.get("pending") else "—")
            elif c.error:
                mcells.append("ERROR")
            else:
                mcells.append(_fmt_mem(c.mem) + ("" if c.mem_how in (None, "tracemalloc")
                                                 else " †"))
        t2.append(f"| {res['title']} | " + " | ".join(mcells) +
                  f" | {_fmt_mem(res.get('base_mem'))} |")
    return "\n".join(t1), "\n".join(t2), verdicts


def build_detail(results):
    lines = ["| workload | contender | epoch / NumPy forward | time per epoch | epochs × rounds "
             "| peak memory per step (how) | first-batch loss, \\|diff\\| to NumPy "
             "| weights after 1 epoch, max \\|diff\\| | agrees |",
             "|---|---|---:|---:|---:|---:|---:|---:|:---:|"]
    for res in results:
        lines.append(f"| {res['title']} | NumPy forward pass (baseline) | 1.00× | "
                     f"{fmt_time(res['base_time'])} | {res['n_f']} × {len(res['base_times'])} | "
                     f"{_fmt_mem(res.get('base_mem'))} (tracemalloc, forward of one batch) | "
                     f"{res['ref_loss']:.10g} | — | — |")
        for col in COLS:
            c = res["contenders"].get(col)
            if c is None:
                if col == "ours" and res.get("pending"):
                    lines.append(f"| | {COL_TITLES[col]} | pending |" + " — |" * 6)
                continue
            if c.error:
                lines.append(f"| | {c.label} | ERROR | — | — | — | — | — | `{c.error}` |")
                continue
            r = statistics.median(c.ratios) if c.ratios else None
            lines.append(
                f"| | {c.label} | {f'{r:.2f}×' if r is not None else '—'} | "
                f"{fmt_time(statistics.median(c.times) if c.times else None)} | "
                f"{c.n} × {c.rounds} | {_fmt_mem(c.mem)} ({c.mem_how}) | "
                f"{c.first_loss:.10g}, {c.loss_err:.1e} | {c.w_err:.1e} | "
                f"{'yes' if c.agrees else 'NO'} |")
    return "\n".join(lines)


def versions():
    import importlib.metadata as md
    others = []
    for name in ("scipy", "scikit-learn"):
        try:
            others.append((name, md.version(name)))
        except Exception:  # noqa: BLE001
            others.append((name, "not installed"))
    ad_v = "not usable"
    try:
        ad_v = md.version("autodiff")
    except Exception:  # noqa: BLE001
        pass
    return harness.versions(others, ad_v, ["autodiff", "nn"], "autodiff/ or nn/",
                            (("autograd", autograd), ("torch", torch)))


LOAD_START = harness.loadavg()


def main():
    cfg = CFG
    t_start = time.perf_counter()
    machine = harness.announce(cfg, PINNED_CPU)
    batches, xshape = load_batches()
    print(f"data: digits {xshape}, {len(batches)} batches of ≤ {BATCH} "
          f"(last {len(batches[-1][1])})")
    work = [("mlp64", "MLP 64-128-128-10 tanh, float64", "mlp", np.float64),
            ("mlp32", "MLP 64-128-128-10 tanh, float32", "mlp", np.float32),
            ("cnn", "CNN conv3×3(8)-ReLU-maxpool2-linear, float64", "cnn", np.float64)]
    results = []
    for wid, title, arch, dt in work:
        if cfg.wants(wid):
            results.append(run_workload(wid, title, arch, dt, batches, cfg))
    t_timed = time.perf_counter() - t_start

    table, mem_table, verdicts = build_tables(results)
    missed = any(met in ("MISS",) for _, _, _, met in verdicts)
    where = []
    if nn is not None and (missed or ARGS.profile):
        # the first MLP row (float64 unless --only says otherwise) and the CNN row
        picks = [next((r for r in results if r["arch"] == "mlp"), None),
                 next((r for r in results if r["arch"] == "cnn"), None)]
        for res in picks:
            c = res["contenders"].get("ours") if res is not None else None
            if c is None or c.error is not None:
                continue
            print("\n== where the time goes (ours, " + res["title"] + ")")
            try:
                split = split_ours(batches, res)
                layers = layers_ours(batches, res["arch"], res["dtype"])
                prof = profile_ours(batches, res["arch"], res["dtype"])
            except Exception as exc:  # noqa: BLE001
                note(f"profiling ours on {res['title']} failed: {short_exc(exc)}")
                continue
            where.append((res, split, layers, prof))
            for k, t, r in split:
                print(f"   {k:<36s} {t * 1e3:8.3f} ms/epoch  {r:5.2f}× NumPy forward")
            for k, t, t_np in layers[0]:
                print(f"   {k:<36s} {t * 1e6:8.1f} µs (plain array {fmt_time(t_np)})")
            for k, t in layers[1]:
                print(f"   {k:<60s} {t * 1e6:8.1f} µs")
            print(prof)
    elapsed = time.perf_counter() - t_start

    detail = build_detail(results)
    md = harness.header_md(
        "Training benchmark results (`autodiff.nn`)",
        f"{elapsed:.0f} s ({t_timed:.0f} s of it the timed workloads)", machine, PINNED_CPU,
        "OMP/MKL/OPENBLAS_NUM_THREADS=1 set before NumPy and torch are imported, "
        "torch.set_num_threads(1)", versions())
    md.append(f"- **Workload:** one training epoch over scikit-learn's digits ({xshape[0]} "
              f"samples, {xshape[1]} features, 10 classes, inputs / 16), batches of {BATCH} in "
              f"one fixed order (permutation from seed {SEED}; the last partial batch of "
              f"{len(batches[-1][1])} kept: {len(batches)} steps per epoch), softmax "
              f"cross-entropy (mean over the batch), plain SGD lr {LR}. MLP 64-128-128-10 "
              f"with tanh; CNN Conv2d(1, 8, 3, padding=1)-ReLU-MaxPool2d(2)-Flatten-"
              f"Linear(128, 10) on the 8×8 images. Batches are made once, before timing, as "
              f"each library's arrays (NumPy arrays, or `torch.from_numpy` tensors).")
    md.append(f"- **Method:** {cfg.repeats} interleaved rounds per workload; each round times "
              f"the plain NumPy FORWARD pass of the epoch (the same batches through the same "
              f"network and loss, no gradient, same dtype), then every contender's training "
              f"epoch; timings last ≥ {cfg.min_time * 1e3:.0f} ms (several epochs when "
              f"short). Figure = median over rounds of (epoch time / forward time in the same "
              f"round). Objects alive before timing are moved to the permanent GC generation "
              f"(`gc.freeze()`), `gc.collect()` runs before each timing; automatic collections "
              f"of the objects made during timing still run and count.")
    md.append("- **Peak memory per step:** one training step on the first batch (32 samples) "
              "after a warm-up step. NumPy-based contenders (ours, autograd, NumPy): "
              "`tracemalloc` peak minus the traced memory just before the step (NumPy reports "
              "its array buffers to tracemalloc; Python objects such as tape records count "
              "too). PyTorch (marked †): its CPU allocator's allocation and free events from "
              "`torch.profiler.profile(profile_memory=True)`, summed in time order, peak of "
              "the running sum (tensor storage only, no Python objects); the process's "
              "peak-RSS delta is the fallback when the profiler gives nothing.")
    md.append("- **Correctness, once before timing:** every contender is loaded with the same "
              "initial weights (drawn once, PyTorch's default uniform ±1/√fan_in, copied "
              "into each library); the first-batch loss and the weights after one training "
              "epoch are compared with the hand-written NumPy ones (see *agrees* below).")
    md.append(f"- **Load average** (1 min) at start / end: {LOAD_START} / {harness.loadavg()}.")
    md.append("")
    md.append("## Epoch time / NumPy forward pass of the same epoch")
    md.append("")
    md.append(f"Lower is better. The target for ours is the MLP epoch ≤ {MLP_TARGET:g}× the "
              f"NumPy forward pass (peers measured earlier: {PEERS_EARLIER}).")
    md.append("")
    md.append(table)
    md.append("")
    md.append("## Peak memory per training step (batch of 32)")
    md.append("")
    md.append(mem_table)
    md.append("")
    md.append("† torch: its CPU allocator's events (profiler), tensor storage only; the other "
              "columns are tracemalloc peaks (NumPy buffers and Python objects).")
    md.append("")
    md.extend(harness.notes_md())
    # The hand-written reading of the results: why the target is missed, what would help.
    md.extend(harness.include_md("analysis_nn.md"))
    # The training steps beside torch (bench_nn_steps.py, its own run): its latest report.
    steps = harness.include_md("results_nn_steps.md")
    if steps:
        md += ["## Training steps beside PyTorch (`python benchmarks/bench_nn_steps.py`)", ""]
        md += [("#" + ln if ln.startswith("#") else ln)
               for ln in steps[0].splitlines()[1:]] + [""]
    if where:
        md.append("## Where the time goes")
        md.append("")
    for res, split, layers, prof in where:
        md.append(f"### Ours, {res['title']}")
        md.append("")
        md.append("Phase by phase: `perf_counter` around each phase of each step of an "
                  "epoch, each of 7 epochs right after one NumPy forward epoch; medians of the "
                  "times and of the ratios (timed apart from the rounds above, and the timer "
                  "calls cost a little, so the total differs somewhat from the table's ratio):")
        md.append("")
        md.append("| phase | time per epoch | × NumPy forward epoch |")
        md.append("|---|---:|---:|")
        for k, t, r in split:
            md.append(f"| {k} | {fmt_time(t)} | {r:.2f}× |")
        md.append(f"| total (sum of the medians) | {fmt_time(sum(t for _, t, _ in split))} | "
                  f"{sum(r for _, _, r in split):.2f}× |")
        md.append("")
        md.append("Forward pass layer by layer, first batch (32 samples), best of 5×20 calls: "
                  "on the tracked value (records the tape) and on a plain array:")
        md.append("")
        md.append("| layer | tracked | plain array |")
        md.append("|---|---:|---:|")
        for k, t, t_np in layers[0]:
            md.append(f"| {k} | {fmt_time(t)} | {fmt_time(t_np)} |")
        md.append("")
        if layers[1]:
            md.append("2×2 max pooling of the same (32, 8, 8, 8) activation in plain NumPy, "
                      "for comparison with the MaxPool2d row above:")
            md.append("")
            md.append("| how | time |")
            md.append("|---|---:|")
            for k, t in layers[1]:
                md.append(f"| {k} | {fmt_time(t)} |")
            md.append("")
        nsteps = PROFILE_EPOCHS * len(batches)
        md.append(f"cProfile of the training steps of {PROFILE_EPOCHS} epochs ({nsteps} steps; "
                  f"divide ncalls and times by {nsteps} for one step), top 15 by tottime "
                  f"(cProfile's own overhead inflates the Python-level entries):")
        md.append("")
        md.append("```")
        md.append(prof)
        md.append("```")
        md.append("")
    md.extend(harness.problems_md())
    md.extend(["## Every contender", "", detail, ""])

    print("\n" + table)
    print("\npeak memory per step:\n" + mem_table)
    harness.finish(md, verdicts, elapsed, ARGS)


if __name__ == "__main__":
    main()
