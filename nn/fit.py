"""``nn.fit``: Keras-style training loops for ``autodiff.nn`` models.

>>> import numpy as np
>>> from autodiff import nn
>>> rng = np.random.default_rng(0)
>>> x = rng.standard_normal((64, 2)); y = (x[:, 0] > 0).astype(int)
>>> model = nn.Sequential(nn.Linear(2, 2))
>>> h = nn.fit(model, x, y, loss="cross_entropy", optimizer="adam", lr=0.1, epochs=20,
...            progress=False)
>>> h.history["accuracy"][-1] >= 0.95
True

``model.fit(x, y, ...)`` is the same call. Training runs the model in ``train()`` mode on
tracked values (one tape per batch, ``loss.backward()``, ``optimizer.step()``); validation
runs it in ``eval()`` mode on plain arrays, with the parameters' values standing in for the
parameters (``functional_call``), so no tape is built. The mode the model was in is
restored at the end.

A callback is any object with some of the methods of ``Callback``; it asks the loop to stop
by setting its own ``stop_training`` attribute to true (``EarlyStopping`` does).
"""
import math
import sys
import time
import warnings

import numpy as np

from . import functional as F
from . import optim as _optim
from .data import DataLoader
from .io import save
from .module import Module, functional_call

__all__ = ["fit", "evaluate", "predict", "History", "Callback", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler"]


# ----- losses, optimizers and metrics by name ------------------------------------------

_LOSSES = {
    "cross_entropy": F.cross_entropy, "crossentropy": F.cross_entropy, "ce": F.cross_entropy,
    "categorical_crossentropy": F.cross_entropy,
    "sparse_categorical_crossentropy": F.cross_entropy,
    "nll": F.nll_loss, "nll_loss": F.nll_loss,
    "mse": F.mse_loss, "mse_loss": F.mse_loss, "mean_squared_error": F.mse_loss,
    "mae": F.l1_loss, "l1": F.l1_loss, "l1_loss": F.l1_loss, "mean_absolute_error": F.l1_loss,
    "huber": F.huber_loss, "huber_loss": F.huber_loss,
    "bce": F.binary_cross_entropy, "binary_cross_entropy": F.binary_cross_entropy,
    "binary_crossentropy": F.binary_cross_entropy,
    "bce_with_logits": F.binary_cross_entropy_with_logits,
    "binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
}

# name → (class, default learning rate); SGD takes Keras's 0.01 when no lr is given.
_OPTIMIZERS = {"adam": (_optim.Adam, 1e-3), "adamw": (_optim.AdamW, 1e-3),
               "sgd": (_optim.SGD, 1e-2), "rmsprop": (_optim.RMSprop, 1e-3),
               "adagrad": (_optim.Adagrad, 1e-2)}


def _get_loss(loss):
    if callable(loss):
        return loss
    if isinstance(loss, str):
        key = loss.lower()
        if key in _LOSSES:
            return _LOSSES[key]
    raise ValueError(f"fit: unknown loss {loss!r}; give a callable loss(output, target) or one "
                     f"of {sorted(_LOSSES)}")


def _get_optimizer(optimizer, model, lr):
    if isinstance(optimizer, _optim.Optimizer):
        if lr is not None:
            raise ValueError("fit: lr= applies to an optimizer given by name or class; set the "
                             "learning rate of an optimizer instance when you make it")
        return optimizer
    params = [p for p in model.parameters()]
    if isinstance(optimizer, type) and issubclass(optimizer, _optim.Optimizer):
        return optimizer(params) if lr is None else optimizer(params, lr=lr)
    if isinstance(optimizer, str) and optimizer.lower() in _OPTIMIZERS:
        cls, default_lr = _OPTIMIZERS[optimizer.lower()]
        return cls(params, lr=default_lr if lr is None else lr)
    raise ValueError(f"fit: unknown optimizer {optimizer!r}; give an nn.optim optimizer "
                     f"(instance or class) or one of {sorted(_OPTIMIZERS)}")


def _accuracy(pred, target, threshold=0.5):
    """Share of correct predictions. Class scores (N, C, …) with C > 1: argmax over axis 1
    against integer labels (or against the argmax of one-hot/probability targets of the same
    shape). One score per sample: ``pred > threshold`` against 0/1 labels (the threshold
    is 0 when the loss takes logits, 0.5 otherwise)."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.ndim >= 2 and pred.shape[1] > 1:
        guess = pred.argmax(axis=1)
        if target.shape == pred.shape:
            target = target.argmax(axis=1)
    else:
        guess = (pred > threshold).astype(np.int64)
        if guess.size == target.size:
            guess = guess.reshape(target.shape)
        target = np.rint(target)
    return float(np.mean(guess == target))


def _mae(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape and pred.size == target.size:
        pred = pred.reshape(target.shape)
    return float(np.mean(np.abs(pred - target)))


def _mse(pred, target):
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape and pred.size == target.size:
        pred = pred.reshape(target.shape)
    return float(np.mean((pred - target) ** 2))


def _get_metrics(metrics, loss_fn):
    """[(name, fn(pred, target) -> float)] from names or callables."""
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    logits = "logits" in getattr(loss_fn, "__name__", "")
    out = []
    for m in metrics:
        if callable(m):
            out.append((getattr(m, "__name__", "metric"), m))
        elif isinstance(m, str) and m.lower() in ("accuracy", "acc"):
            thr = 0.0 if logits else 0.5
            out.append(("accuracy", lambda p, t, thr=thr: _accuracy(p, t, thr)))
        elif isinstance(m, str) and m.lower() in ("mae", "mean_absolute_error"):
            out.append(("mae", _mae))
        elif isinstance(m, str) and m.lower() in ("mse", "mean_squared_error"):
            out.append(("mse", _mse))
        else:
            raise ValueError(f"fit: unknown metric {m!r}; give a callable metric(output, "
                             "target) -> float or one of 'accuracy', 'mae', 'mse'")
    names = [n for n, _ in out]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(f"fit: metric names must be distinct and not 'loss', got {names}")
    return out


# ----- data ---------------------------------------------------------------------------

def _model_dtype(model):
    for p in model.parameters():
        dt = np.result_type(p.value)
        if dt.kind == "f":
            return dt
    return None


def _as_input(x, dtype):
    x = np.asarray(getattr(x, "value", x))
    if dtype is not None and x.dtype.kind == "f" and x.dtype != dtype:
        x = x.astype(dtype)
    return x


def _as_target(y, out):
    """Float targets take the output's dtype, and its shape when they have its size but
    another shape ((N,) against (N, 1)): a regression loss never broadcasts (N, 1) against
    (N,) into (N, N)."""
    y = np.asarray(getattr(y, "value", y))
    if y.dtype.kind == "f":
        out = np.asarray(out)
        if out.dtype.kind == "f" and y.dtype != out.dtype:
            y = y.astype(out.dtype)
        if y.shape != out.shape and y.size == out.size:
            y = y.reshape(out.shape)
    return y


def _loader(x, y, batch_size, shuffle, seed, what):
    if isinstance(x, DataLoader):
        if y is not None:
            raise ValueError(f"{what}: give y=None when x is a DataLoader")
        return x
    if y is None:
        raise ValueError(f"{what}: targets y are missing")
    x, y = np.asarray(getattr(x, "value", x)), np.asarray(getattr(y, "value", y))
    if len(x) != len(y):
        raise ValueError(f"{what}: x has {len(x)} samples, y has {len(y)}")
    if len(x) == 0:
        raise ValueError(f"{what}: no samples")
    return DataLoader((x, y), batch_size=batch_size, shuffle=shuffle, seed=seed)


def _plain_params(model):
    return {n: p.value for n, p in model.named_parameters(remove_duplicate=False)}


def predict(model, x, batch_size=1024):
    """The model's outputs on ``x`` in eval mode, as a plain array, with no tape (the
    parameters' values stand in for the parameters). The model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        params, dtype = _plain_params(model), _model_dtype(model)
        x = _as_input(x, dtype)
        to_dev = _batch_mover(_params_device(params))
        outs = [_value(functional_call(model, params, to_dev(x[i:i + batch_size])))
                for i in range(0, len(x), batch_size)]
        return np.concatenate(outs) if outs else np.empty((0,))
    finally:
        model.train(was_training)


def evaluate(model, x, y=None, loss="cross_entropy", metrics=("accuracy",), batch_size=1024):
    """``{"loss": …, metric: …}`` of the model on ``(x, y)`` (or a DataLoader ``x``) in eval
    mode, without a tape; averages over batches are weighted by batch size."""
    loss_fn = _get_loss(loss)
    return _evaluate(model, _loader(x, y, batch_size, False, None, "evaluate"), loss_fn,
                     _get_metrics(metrics, loss_fn))


def _evaluate(model, loader, loss_fn, metric_fns):
    was_training = model.training
    model.eval()
    try:
        params, dtype = _plain_params(model), _model_dtype(model)
        sums, n = {}, 0
        to_dev = _batch_mover(_params_device(params))
        for xb, yb in loader:
            xb = _as_input(xb, dtype)
            out = functional_call(model, params, to_dev(xb))
            out = _value(out)
            yb = _as_target(yb, out)
            k = len(xb)
            vals = {"loss": float(_value(loss_fn(out, yb)))}
            vals.update((name, float(fn(out, yb))) for name, fn in metric_fns)
            for key, v in vals.items():
                sums[key] = sums.get(key, 0.0) + v * k
            n += k
        return {key: s / n for key, s in sums.items()}
    finally:
        model.train(was_training)


def _value(v):
    v = getattr(v, "value", v)
    return v.to_host() if hasattr(v, "to_host") else np.asarray(v)   # a device array: a copy


def _params_device(params):
    """"gpu" when the model's parameters are device arrays, else None."""
    return "gpu" if any(hasattr(v, "to_host") for v in params.values()) else None


def _batch_mover(device):
    """``fit(device=...)``: each batch moves to the device once (identity without one)."""
    if device is None or str(device).split(":")[0].lower() == "cpu":
        return lambda v: v
    from autodiff import gpu
    return lambda v: gpu.to_device(v) if hasattr(v, "dtype") else v


# ----- history and callbacks ------------------------------------------------------------

class History:
    """What ``fit`` returns: ``history`` maps each logged quantity (``loss``, ``val_loss``,
    ``accuracy``, ``val_accuracy``, …) to its list of per-epoch values; ``epoch`` lists the
    epoch numbers (from 0); ``params`` holds the settings of the run."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.params = {}
        self.model = None

    def _append(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"

    def plot(self, ax=None, keys=None):
        """Draw the learning curves with matplotlib: one panel per quantity (loss, then each
        metric), training and validation curves together, x axis "epoch".

        ``ax``: None makes a new figure; one Axes draws every curve on it; a sequence of
        Axes gets one quantity each. ``keys`` chooses the quantities (default: all).
        Returns the list of Axes drawn on. matplotlib is an optional dependency
        (``pip install matplotlib``)."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise ImportError("History.plot needs matplotlib, an optional dependency: "
                              "pip install matplotlib (or autodiff[plot])") from e
        bases = [k for k in self.history if not k.startswith("val_")]
        bases += [k[4:] for k in self.history if k.startswith("val_") and k[4:] not in bases]
        if keys is not None:
            keys = [keys] if isinstance(keys, str) else list(keys)
            unknown = [k for k in keys if k not in bases]
            if unknown:
                raise KeyError(f"History.plot: no quantities {unknown}; have {bases}")
            bases = keys
        if not bases:
            raise ValueError("History.plot: the history is empty (no epoch has run)")
        if ax is None:
            fig, axes = plt.subplots(1, len(bases), figsize=(4.5 * len(bases), 3.5),
                                     squeeze=False)
            axes = list(axes[0])
        elif isinstance(ax, (list, tuple, np.ndarray)):
            axes = list(np.ravel(ax))
            if len(axes) < len(bases):
                raise ValueError(f"History.plot: {len(bases)} quantities {bases} need as many "
                                 f"Axes, got {len(axes)}")
        else:
            axes = [ax] * len(bases)
        single = len(set(map(id, axes))) == 1 and len(bases) > 1
        epochs = np.asarray(self.epoch) + 1
        for a, base in zip(axes, bases):
            for key, label in ((base, "train"), ("val_" + base, "validation")):
                if key in self.history:
                    vals = self.history[key]
                    a.plot(epochs[:len(vals)], vals, marker="o" if len(vals) < 30 else None,
                           markersize=3, label=f"{base} ({label})" if single else label)
            a.set_xlabel("epoch")
            a.set_ylabel("value" if single else base)
            if not single:
                a.set_title(base)
            a.legend()
            a.grid(True, alpha=0.3)
        return axes[:len(bases)] if not single else [axes[0]]


class Callback:
    """Base of ``fit`` callbacks; override the hooks you need. ``fit`` sets ``model`` and
    ``history`` before ``on_train_begin``; set ``stop_training = True`` to stop after the
    current epoch. ``logs`` holds this epoch's values (``loss``, ``val_loss``, …)."""
    stop_training = False
    model = None
    history = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


def _monitor_mode(monitor, mode):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        mode = "max" if any(s in monitor for s in ("acc", "auc", "precision", "recall", "f1")) \
            else "min"
    return mode


class _Monitor(Callback):
    def __init__(self, monitor, mode, min_delta):
        self.monitor = monitor
        self.mode = _monitor_mode(monitor, mode)
        self.min_delta = abs(min_delta)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None

    def _current(self, logs):
        if self.monitor not in logs:
            hint = (" (val_* quantities need validation_data)"
                    if self.monitor.startswith("val_") else "")
            raise KeyError(f"{type(self).__name__}: monitor {self.monitor!r} is not logged; "
                           f"logged quantities are {sorted(logs)}{hint}")
        return logs[self.monitor]

    def _improved(self, value):
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row (Keras's rule: ``patience=0`` stops at the first epoch without
    improvement); with ``restore_best_weights`` the model ends with the weights of its best epoch.
    ``mode`` 'auto' maximises quantities named like accuracy and minimises the rest.

    After the run: ``stopped_epoch`` (the epoch it stopped at, from 0, or None),
    ``best`` and ``best_epoch``."""

    def __init__(self, monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
                 restore_best_weights=True, verbose=False):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose
        self.wait = 0
        self.stopped_epoch = None
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self._reset()
        self.wait, self.stopped_epoch, self.best_weights = 0, None, None
        self.stop_training = False

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs or {})
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        if self.verbose and self.stopped_epoch is not None:
            print(f"EarlyStopping: stopped at epoch {self.stopped_epoch + 1}; best "
                  f"{self.monitor} = {self.best:.6g} at epoch {self.best_epoch + 1}"
                  + (" (weights restored)" if self.restore_best_weights else ""))


class ModelCheckpoint(_Monitor):
    """Save the model's ``state_dict`` with ``nn.save`` to ``path`` whenever ``monitor``
    improves (``save_best_only=True``, the default), or after every epoch. ``path`` may hold
    ``{epoch}`` and logged names as format fields: ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``
    (epochs counted from 1). Load the weights back with
    ``model.load_state_dict(nn.load(path))``. ``last_saved`` is the newest file written."""

    def __init__(self, path, monitor="val_loss", mode="auto", save_best_only=True,
                 min_delta=0.0, verbose=False):
        super().__init__(monitor, mode, min_delta)
        self.path = str(path)
        self.save_best_only = save_best_only
        self.verbose = verbose
        self.last_saved = None

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._current(logs)
            if not self._improved(value):
                return
            self.best, self.best_epoch = value, epoch
        path = self.path.format(epoch=epoch + 1, **logs)
        save(self.model.state_dict(), path)
        self.last_saved = path
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")


class LearningRateScheduler(Callback):
    """Set the learning rate after each epoch: ``schedule`` is an ``nn.optim.lr_scheduler``
    (its ``step()`` is called) or a function ``schedule(epoch, lr) -> lr`` (Keras's form,
    applied to every parameter group of fit's optimizer before each epoch, epochs from 0).
    The rate of each epoch is logged as ``lr``."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.optimizer = None

    def _opt(self):
        opt = getattr(self.schedule, "optimizer", None) or self.optimizer
        if opt is None:
            raise RuntimeError("LearningRateScheduler: no optimizer (use it inside fit)")
        return opt

    def on_epoch_begin(self, epoch, logs=None):
        if callable(self.schedule) and not hasattr(self.schedule, "step"):
            for group in self._opt().param_groups:
                group["lr"] = float(self.schedule(epoch, group["lr"]))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = float(self._opt().param_groups[0]["lr"])
        if hasattr(self.schedule, "step"):
            self.schedule.step()


# ----- the loop -----------------------------------------------------------------------

def _format_logs(logs):
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def fit(model, x, y=None, loss="cross_entropy", optimizer="adam", epochs=1, batch_size=32,
        validation_data=None, metrics=("accuracy",), callbacks=(), shuffle=True, seed=0,
        progress=True, lr=None, validation_split=0.0, device=None):
    """Train ``model`` on ``(x, y)`` for ``epochs`` passes; return a ``History``.

    - ``x, y``: arrays with samples along axis 0 (or ``x`` a ``DataLoader`` and ``y=None``).
      Float inputs take the model's dtype.
    - ``loss``: a callable ``loss(output, target)`` (``nn.functional.cross_entropy``, …) or a
      name: 'cross_entropy', 'mse', 'mae'/'l1', 'huber', 'nll', 'bce', 'bce_with_logits'.
    - ``optimizer``: an ``nn.optim`` optimizer, an optimizer class, or a name ('adam',
      'adamw', 'sgd', 'rmsprop', 'adagrad') built on ``model.parameters()`` with ``lr`` (default:
      the class's, 0.01 for SGD).
    - ``metrics``: names ('accuracy' — argmax of class scores against integer labels —,
      'mae', 'mse') or callables ``metric(output, target) -> float``.
    - ``validation_data``: ``(xv, yv)`` (or a DataLoader), evaluated after each epoch in eval
      mode without a tape, logged as ``val_loss``, ``val_accuracy``, …;
      ``validation_split`` instead holds out that fraction of the samples (the last ones,
      before shuffling, as Keras).
    - ``callbacks``: ``EarlyStopping``, ``ModelCheckpoint``, ``LearningRateScheduler`` or any
      ``Callback`` (``fit`` sets its ``model``, ``history`` and ``optimizer``).
    - ``shuffle``/``seed``: a new order each epoch from a generator seeded with ``seed``
      (the run is repeatable; initialisation and dropout draw from ``nn.init``'s generator).
    - ``progress``: a tqdm bar per epoch (tqdm is optional: without it one line per epoch is
      printed); ``False`` prints nothing.

    - ``device``: ``"gpu"`` moves the model there first (``model.to("gpu")``, before the
      optimizer is built) and each batch once; the model stays on the device afterwards.

    Training values (``loss``, metrics) are averages over the epoch's batches, weighted by
    batch size, computed while the weights change (as Keras reports them).
    """
    if not isinstance(model, Module):
        raise TypeError(f"fit: model must be an nn.Module, got {type(model).__name__}")
    epochs = int(epochs)
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    loss_fn = _get_loss(loss)
    metric_fns = _get_metrics(metrics, loss_fn)
    if device is not None:
        model.to(device)
    to_dev = _batch_mover(device)
    opt = _get_optimizer(optimizer, model, lr)
    dtype = _model_dtype(model)

    if validation_split:
        if validation_data is not None:
            raise ValueError("fit: give validation_data or validation_split, not both")
        if isinstance(x, DataLoader):
            raise ValueError("fit: validation_split needs arrays, not a DataLoader")
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
        x, y = np.asarray(x), np.asarray(y)
        cut = len(x) - int(round(len(x) * validation_split))
        if cut <= 0 or cut >= len(x):
            raise ValueError("fit: validation_split leaves no training or no validation samples")
        x, y, validation_data = x[:cut], y[:cut], (x[cut:], y[cut:])
    loader = _loader(x, y, batch_size, shuffle, seed, "fit")
    val_loader = None
    if validation_data is not None:
        if isinstance(validation_data, DataLoader):
            val_loader = validation_data
        else:
            if len(validation_data) != 2:
                raise ValueError("fit: validation_data must be (x_val, y_val)")
            val_loader = _loader(validation_data[0], validation_data[1], max(batch_size, 1024),
                                 False, None, "fit (validation_data)")

    callbacks = list(callbacks or ())
    history = History()
    history.model = model
    history.params = {"epochs": epochs, "batch_size": batch_size, "steps": len(loader),
                      "samples": len(loader.dataset), "optimizer": type(opt).__name__,
                      "loss": getattr(loss_fn, "__name__", str(loss_fn))}
    for cb in callbacks:
        if hasattr(cb, "set_model"):
            cb.set_model(model)
        else:
            cb.model = model
        cb.history = history
        cb.optimizer = opt
    tqdm = _tqdm() if progress else None

    def call(hook, *args):
        for cb in callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    was_training = model.training
    call("on_train_begin", {})
    try:
        for epoch in range(epochs):
            call("on_epoch_begin", epoch, {})
            model.train()
            t0 = time.perf_counter()
            sums, n = {}, 0
            bar = (tqdm(total=len(loader), desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                        leave=True, file=sys.stderr) if tqdm is not None else None)
            try:
                for xb, yb in loader:
                    xb = _as_input(xb, dtype)
                    opt.zero_grad()
                    out = model(to_dev(xb))
                    out_v = _value(out)
                    yb = _as_target(yb, out_v)
                    batch_loss = loss_fn(out, to_dev(yb))
                    if not hasattr(batch_loss, "backward"):
                        raise TypeError("fit: the loss does not depend on the model's "
                                        "parameters (got a plain value); is the model "
                                        "without trainable parameters?")
                    batch_loss.backward()
                    opt.step()
                    k = len(xb)
                    vals = {"loss": float(_value(batch_loss))}
                    vals.update((name, float(fn(out_v, yb))) for name, fn in metric_fns)
                    for key, v in vals.items():
                        sums[key] = sums.get(key, 0.0) + v * k
                    n += k
                    if bar is not None:
                        bar.set_postfix({key: f"{s / n:.4f}" for key, s in sums.items()},
                                        refresh=False)
                        bar.update(1)
                logs = {key: s / max(n, 1) for key, s in sums.items()}
                if not math.isfinite(logs.get("loss", 0.0)):
                    warnings.warn(f"fit: the training loss is {logs['loss']} at epoch "
                                  f"{epoch + 1}; try a smaller learning rate", RuntimeWarning,
                                  stacklevel=2)
                if val_loader is not None:
                    val = _evaluate(model, val_loader, loss_fn, metric_fns)
                    logs.update((f"val_{k}", v) for k, v in val.items())
                if bar is not None:
                    bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()}, refresh=True)
            finally:
                if bar is not None:
                    bar.close()
            if progress and bar is None:
                print(f"Epoch {epoch + 1}/{epochs} - {_format_logs(logs)} - "
                      f"{time.perf_counter() - t0:.2f}s", flush=True)
            call("on_epoch_end", epoch, logs)
            history._append(epoch, logs)
            if any(getattr(cb, "stop_training", False) for cb in callbacks):
                break
    finally:
        model.train(was_training)
    call("on_train_end", {})
    return history


def _module_fit(self, x, y=None, **kwargs):
    """``model.fit(x, y, ...)``: ``nn.fit(model, x, y, ...)`` (see ``autodiff.nn.fit``)."""
    return fit(self, x, y, **kwargs)


_module_fit.__name__ = "fit"
_module_fit.__qualname__ = "Module.fit"
_module_fit.__doc__ = fit.__doc__ and ("``model.fit(x, y, ...)`` is ``nn.fit(model, x, y, "
                                       "...)``.\n\n    " + fit.__doc__)
Module.fit = _module_fit
