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

``model.evaluate``, ``model.predict`` and ``model.summary()`` are Module methods as in
Keras. A callback (``nn.callbacks``: ``EarlyStopping``, ``ModelCheckpoint``,
``ReduceLROnPlateau``, ``CSVLogger``, ``TerminateOnNaN``, ``LambdaCallback``, …) is any
object with some of the methods of ``Callback``; it stops the run by setting
``model.stop_training = True`` (or its own ``stop_training``).
"""
import copy
import math
import warnings

import numpy as np

from autodiff.boxes import box_types

from . import functional as F
from . import optim as _optim
from .callbacks import (Callback, CSVLogger, EarlyStopping, LambdaCallback,
                        LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau,
                        TerminateOnNaN)
from .data import DataLoader
from .module import Module, functional_call
from .progress import EpochProgress
from .summary import summary

__all__ = ["fit", "evaluate", "predict", "History", "Callback", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger",
           "TerminateOnNaN", "LambdaCallback"]


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


def _target_like(y, out):
    """``_as_target`` inside a recorded step (``compile=True``): shapes and dtypes only."""
    if y.dtype.kind == "f":
        if out.dtype.kind == "f" and y.dtype != out.dtype:
            y = y.astype(out.dtype)
        if y.shape != out.shape and y.size == out.size:
            y = y.reshape(out.shape)
    return y


def _inputs(x, what):
    """``x`` as a tuple of arrays: several model inputs when ``x`` is a tuple (or a list of
    arrays), passed as ``model(*x)``; one input otherwise."""
    if isinstance(x, tuple) or (isinstance(x, list) and x and all(
            isinstance(a, np.ndarray) or type(a) in box_types for a in x)):
        arrays = tuple(_value(a) for a in x)
        if not arrays:
            raise ValueError(f"{what}: x is an empty tuple; give the model's input arrays")
        sizes = [len(a) if a.ndim else None for a in arrays]
        if None in sizes or len(set(sizes)) != 1:
            raise ValueError(f"{what}: the inputs of x have different numbers of samples "
                             f"(axis 0 lengths {sizes})")
        return arrays
    a = _value(x)
    if a.ndim == 0:
        raise ValueError(f"{what}: x must have samples along axis 0, got a scalar")
    return (a,)


class _Batches:
    """Batches ``(inputs, y, w)`` (``inputs`` a tuple; ``y``, ``w`` None when absent) of
    arrays, or of a DataLoader yielding ``(x, y)`` or ``(x, y, sample_weight)``."""

    def __init__(self, x, y=None, w=None, batch_size=32, shuffle=False, seed=None,
                 what="fit", need_y=True):
        self.loader = None
        if isinstance(x, DataLoader):
            if y is not None:
                raise ValueError(f"{what}: give y=None when x is a DataLoader")
            if w is not None:
                raise ValueError(f"{what}: give sample weights as the third array of the "
                                 "DataLoader's batches when x is a DataLoader")
            self.loader, self.k = x, None
            self.samples = len(x.dataset)
            return
        xs = _inputs(x, what)
        n = len(xs[0])
        if n == 0:
            raise ValueError(f"{what}: no samples")
        arrays = list(xs)
        if y is not None:
            y = _value(y)
            if len(y) != n:
                raise ValueError(f"{what}: x has {n} samples, y has {len(y)}")
            arrays.append(y)
        elif need_y:
            raise ValueError(f"{what}: targets y are missing")
        if w is not None:
            w = np.asarray(w, dtype=np.float64)
            if w.shape != (n,):
                raise ValueError(f"{what}: sample_weight must have shape ({n},) (one weight "
                                 f"per sample), got {w.shape}")
            arrays.append(w)
        self.k, self.has_y, self.has_w = len(xs), y is not None, w is not None
        self.loader = DataLoader(tuple(arrays), batch_size=batch_size, shuffle=shuffle,
                                 seed=seed)
        self.samples = n

    @property
    def given_loader(self):
        return self.k is None

    def skip_epochs(self, n):
        """Draw ``n`` epochs' orders, so that a run resumed at ``initial_epoch`` shuffles
        as the uninterrupted run did."""
        if not self.given_loader and self.loader.shuffle:
            for _ in range(n):
                self.loader.rng.permutation(len(self.loader.dataset))

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for b in self.loader:
            if self.given_loader:
                if not isinstance(b, (tuple, list)) or len(b) not in (2, 3):
                    raise ValueError("a DataLoader given to fit/evaluate must yield (x, y) or "
                                     "(x, y, sample_weight)")
                yield (b[0],), b[1], (b[2] if len(b) == 3 else None)
            else:
                k = self.k
                yield (tuple(b[:k]), b[k] if self.has_y else None,
                       b[k + self.has_y] if self.has_w else None)


def _plain_params(model):
    return {n: p.value for n, p in model.named_parameters(remove_duplicate=False)}


def _remember_inputs(model, inputs):
    """The per-sample shapes and dtypes of the last inputs, for ``model.summary()``."""
    spec = tuple((tuple(np.shape(a)[1:]), np.result_type(a)) for a in inputs)
    object.__setattr__(model, "_input_spec", spec)


def _concat(outs, what):
    first = outs[0]
    if isinstance(first, (tuple, list)):
        return type(first)(_concat([o[i] for o in outs], what) for i in range(len(first)))
    arrays = [_value(o) for o in outs]
    if len(arrays) == 1:
        return arrays[0]
    try:
        return np.concatenate(arrays)
    except ValueError as e:
        raise ValueError(f"{what}: the model's outputs of successive batches do not join "
                         f"along axis 0 ({e}); call it on the whole input instead") from e


def _predict(model, x, batch_size, what):
    was_training = model.training
    model.eval()
    try:
        params, dtype = _plain_params(model), _model_dtype(model)
        xs = tuple(_as_input(a, dtype) for a in _inputs(x, what))
        n = len(xs[0])
        if n == 0:
            return np.empty((0,))
        _remember_inputs(model, xs)
        to_dev = _batch_mover(_params_device(params))
        outs = [functional_call(model, params, *(to_dev(a[i:i + batch_size]) for a in xs))
                for i in range(0, n, batch_size)]
        return _concat(outs, what)
    finally:
        model.train(was_training)


def predict(model, x, batch_size=1024):
    """The model's outputs on ``x`` (an array, or a tuple of arrays for ``model(*x)``) in
    eval mode, as a plain array, with no tape (the parameters' values stand in for the
    parameters). The model's mode is restored."""
    return _predict(model, x, int(batch_size), "predict")


def evaluate(model, x, y=None, loss="cross_entropy", metrics=("accuracy",), batch_size=1024,
             sample_weight=None):
    """``{"loss": …, metric: …}`` of the model on ``(x, y)`` (or a DataLoader ``x``) in eval
    mode, without a tape; averages over batches are weighted by batch size. With
    ``sample_weight`` the loss is Keras's ``sum(w·loss) / n``."""
    loss_fn = _get_loss(loss)
    return _evaluate(model, _Batches(x, y, sample_weight, batch_size, what="evaluate"),
                     loss_fn, _get_metrics(metrics, loss_fn))


def _per_sample_loss(loss_fn, out, yb, n):
    """The loss of each sample (shape (n,)): the loss with ``reduction='none'``, averaged
    over any further axes (Keras's reduction of a sample's elements)."""
    if isinstance(loss_fn, Module) and hasattr(loss_fn, "reduction"):
        fn = copy.copy(loss_fn)
        object.__setattr__(fn, "reduction", "none")
        per = fn(out, yb)
    else:
        try:
            per = loss_fn(out, yb, reduction="none")
        except TypeError as e:
            raise TypeError("fit: sample_weight and class_weight weight each sample's loss, "
                            f"so the loss must accept reduction='none' ({e}); use an "
                            "nn.functional loss or a loss module") from e
    if np.ndim(per) == 0 or np.shape(per)[0] != n:
        raise ValueError(f"fit: the loss with reduction='none' has shape {np.shape(per)}, not "
                         f"one value per sample ({n},)")
    if np.ndim(per) > 1:
        per = np.mean(per, axis=tuple(range(1, np.ndim(per))))
    return per


def _batch_loss(loss_fn, out, yb, wb):
    if wb is None:
        return loss_fn(out, yb)
    n = len(wb)
    per = _per_sample_loss(loss_fn, out, yb, n)
    return np.sum(per * wb.astype(np.result_type(_value(per)), copy=False)) / n


def _class_weights(class_weight, yb):
    y = _value(yb)
    if y.ndim == 2 and y.shape[1] > 1:
        labels = y.argmax(axis=1)                          # one-hot or probabilities
    else:
        labels = y.reshape(len(y), -1)[:, 0] if y.ndim > 1 else y
        if labels.dtype.kind == "f":
            if not np.all(labels == np.round(labels)):
                raise ValueError("fit: class_weight needs class labels as targets (integers, "
                                 "0/1 or one-hot), got non-integer values")
            labels = labels.astype(np.int64)
        elif labels.dtype.kind not in "iub":
            raise ValueError(f"fit: class_weight needs class labels, got {labels.dtype}")
    return np.array([class_weight.get(int(c), 1.0) for c in labels], dtype=np.float64)


def _evaluate(model, batches, loss_fn, metric_fns, callbacks=None):
    was_training = model.training
    model.eval()
    try:
        params, dtype = _plain_params(model), _model_dtype(model)
        sums, n = {}, 0
        to_dev = _batch_mover(_params_device(params))
        for xs, yb, wb in batches:
            xs = tuple(_as_input(a, dtype) for a in xs)
            out = functional_call(model, params, *(to_dev(a) for a in xs))
            out = _value(out)
            yb = _as_target(yb, out)
            k = len(xs[0])
            vals = {"loss": float(_value(_batch_loss(loss_fn, out, yb, wb)))}
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
    return lambda v: gpu.to_device(v) if hasattr(v, "dtype") and not hasattr(v, "to_host") \
        else v


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
        self._epochs_of = {}            # key -> the epochs it was logged at

    def _append(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)
            # validation_freq leaves val_* lists shorter: remember their epochs for plot
            self._epochs_of.setdefault(k, []).append(epoch)

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
        epochs_of = self._epochs_of
        for a, base in zip(axes, bases):
            for key, label in ((base, "train"), ("val_" + base, "validation")):
                if key in self.history:
                    vals = self.history[key]
                    xs = np.asarray(epochs_of.get(key, self.epoch[:len(vals)])) + 1
                    a.plot(xs, vals, marker="o" if len(vals) < 30 else None,
                           markersize=3, label=f"{base} ({label})" if single else label)
            a.set_xlabel("epoch")
            a.set_ylabel("value" if single else base)
            if not single:
                a.set_title(base)
            a.legend()
            a.grid(True, alpha=0.3)
        return axes[:len(bases)] if not single else [axes[0]]


# ----- the loop -----------------------------------------------------------------------

def _verbosity(verbose, progress):
    if progress is not None:                     # the older name: True is the bar
        verbose = 1 if progress else 0
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise ValueError(f"fit: verbose must be 0 (silent), 1 (a progress bar), 2 (one line "
                         f"per epoch) or 'auto', got {verbose!r}")
    return int(verbose)


def _should_validate(epoch, validation_freq):
    if isinstance(validation_freq, int):
        return (epoch + 1) % validation_freq == 0
    return epoch + 1 in validation_freq


def _check_freq(validation_freq):
    if isinstance(validation_freq, bool) or not isinstance(
            validation_freq, (int, list, tuple, set, frozenset, range)):
        raise TypeError("fit: validation_freq must be an int (validate every that many epochs) "
                        f"or a collection of epochs (from 1), got {validation_freq!r}")
    if isinstance(validation_freq, int) and validation_freq < 1:
        raise ValueError(f"fit: validation_freq must be >= 1, got {validation_freq}")


def fit(model, x, y=None, loss="cross_entropy", optimizer="adam", epochs=1, batch_size=32,
        validation_data=None, metrics=("accuracy",), callbacks=(), shuffle=True, seed=0,
        progress=None, lr=None, validation_split=0.0, verbose="auto", class_weight=None,
        sample_weight=None, initial_epoch=0, validation_freq=1, compile=False, device=None):
    """Train ``model`` on ``(x, y)`` for ``epochs`` passes; return a ``History``.

    - ``x, y``: arrays with samples along axis 0; ``x`` a tuple of arrays for a model with
      several inputs (``model(*x)``), or a ``DataLoader`` yielding ``(x, y)`` or
      ``(x, y, sample_weight)`` with ``y=None``. Float inputs take the model's dtype.
    - ``loss``: a callable ``loss(output, target)`` (``nn.functional.cross_entropy``, a loss
      module, …) or a name: 'cross_entropy', 'mse', 'mae'/'l1', 'huber', 'nll', 'bce',
      'bce_with_logits'.
    - ``optimizer``: an ``nn.optim`` optimizer, an optimizer class, or a name ('adam',
      'adamw', 'sgd', 'rmsprop', 'adagrad') built on ``model.parameters()`` with ``lr`` (default:
      the class's, 0.01 for SGD).
    - ``metrics``: names ('accuracy' — argmax of class scores against integer labels —,
      'mae', 'mse') or callables ``metric(output, target) -> float``.
    - ``validation_data``: ``(xv, yv)`` or ``(xv, yv, sample_weight)`` (or a DataLoader),
      evaluated in eval mode without a tape after every ``validation_freq``-th epoch (an
      int, or a collection of epoch numbers from 1), logged as ``val_loss``,
      ``val_accuracy``, …; ``validation_split`` instead holds out that fraction of the
      samples (the last ones, before shuffling, as Keras).
    - ``sample_weight`` (one weight per sample) and ``class_weight`` (``{class: weight}``,
      1 for classes it omits) weight each sample's loss: a batch's loss is
      ``sum(w·loss) / batch size`` (Keras's); metrics stay unweighted, as Keras's
      ``metrics``.
    - ``epochs``/``initial_epoch``: train epochs ``initial_epoch … epochs-1`` (Keras's
      meaning: ``epochs`` is the last epoch, not a count), so a run resumed from a
      checkpoint continues its numbering and, with the same ``seed``, its shuffles.
    - ``callbacks``: ``nn.callbacks`` (``EarlyStopping``, ``ModelCheckpoint``,
      ``ReduceLROnPlateau``, ``CSVLogger``, ``TerminateOnNaN``, ``LambdaCallback``,
      ``LearningRateScheduler``) or any ``Callback``; see ``autodiff.nn.callbacks``.
    - ``shuffle``/``seed``: a new order each epoch from a generator seeded with ``seed``
      (the run is repeatable; initialisation and dropout draw from ``nn.init``'s generator).
    - ``compile``: run each step as one recorded program (``nn.compile_step``: forward and
      backward recorded once per batch shape, replayed afterwards); same numbers. One model
      input, no sample or class weights.
    - ``verbose``: 0 silent; 1 (``'auto'``) a progress bar per epoch on stdout, redrawn in
      place on a terminal and written once per epoch otherwise (a log file gets one line
      per epoch); 2 one line per epoch. ``progress=False``/``True`` is the older spelling
      of 0/1.

    - ``device``: ``"gpu"`` moves the model there first (``model.to("gpu")``, before the
      optimizer is built) and each batch once; the model stays on the device afterwards.

    Training values (``loss``, metrics) are averages over the epoch's batches, weighted by
    batch size, computed while the weights change (as Keras reports them).
    """
    if not isinstance(model, Module):
        raise TypeError(f"fit: model must be an nn.Module, got {type(model).__name__}")
    epochs, initial_epoch = int(epochs), int(initial_epoch)
    if epochs < 0:
        raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
    if initial_epoch < 0:
        raise ValueError(f"fit: initial_epoch must be >= 0, got {initial_epoch}")
    verbose = _verbosity(verbose, progress)
    _check_freq(validation_freq)
    if class_weight is not None and not isinstance(class_weight, dict):
        raise TypeError("fit: class_weight must be a dict {class index: weight}, got "
                        f"{type(class_weight).__name__}")
    loss_fn = _get_loss(loss)
    metric_fns = _get_metrics(metrics, loss_fn)
    if device is not None:
        model.to(device)
    # batches follow the model: to fit(device=...)'s device, or to where it already is
    to_dev = _batch_mover(device if device is not None else
                          _params_device(_plain_params(model)))
    opt = _get_optimizer(optimizer, model, lr)
    compiled = None
    if compile:     # nn.compile_step: forward and backward replayed as one recorded program
        if sample_weight is not None or class_weight is not None:
            raise NotImplementedError("fit(compile=True) does not weight samples yet; use "
                                      "compile=False with sample_weight/class_weight")
        from .compile import _compile_step
        compiled = _compile_step(model, loss_fn, opt, _target_like)
    dtype = _model_dtype(model)

    if validation_split:
        if validation_data is not None:
            raise ValueError("fit: give validation_data or validation_split, not both")
        if isinstance(x, DataLoader):
            raise ValueError("fit: validation_split needs arrays, not a DataLoader")
        if not 0.0 < validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in (0, 1), got {validation_split}")
        if y is None:
            raise ValueError("fit: targets y are missing")
        xs, y = _inputs(x, "fit"), _value(y)
        if len(y) != len(xs[0]):
            raise ValueError(f"fit: x has {len(xs[0])} samples, y has {len(y)}")
        cut = len(xs[0]) - int(round(len(xs[0]) * validation_split))
        if cut <= 0 or cut >= len(xs[0]):
            raise ValueError("fit: validation_split leaves no training or no validation samples")
        sw = None if sample_weight is None else np.asarray(sample_weight)
        validation_data = (tuple(a[cut:] for a in xs), y[cut:]) + \
            ((sw[cut:],) if sw is not None else ())
        x, y = tuple(a[:cut] for a in xs), y[:cut]
        sample_weight = None if sw is None else sw[:cut]
        if len(validation_data[0]) == 1:
            validation_data = (validation_data[0][0],) + validation_data[1:]
            x = x[0]
    batches = _Batches(x, y, sample_weight, batch_size, shuffle, seed, "fit")
    val_batches = None
    if validation_data is not None:
        if isinstance(validation_data, DataLoader):
            val_batches = _Batches(validation_data, what="fit (validation_data)")
        else:
            if not isinstance(validation_data, (tuple, list)) or \
                    len(validation_data) not in (2, 3):
                raise ValueError("fit: validation_data must be (x_val, y_val) or (x_val, "
                                 "y_val, val_sample_weight)")
            val_batches = _Batches(validation_data[0], validation_data[1],
                                   validation_data[2] if len(validation_data) == 3 else None,
                                   max(batch_size, 1024), what="fit (validation_data)")
    batches.skip_epochs(initial_epoch)

    callbacks = list(callbacks or ())
    history = History()
    history.model = model
    history.params = {"epochs": epochs, "initial_epoch": initial_epoch, "verbose": verbose,
                      "batch_size": batch_size, "steps": len(batches),
                      "samples": batches.samples, "optimizer": type(opt).__name__,
                      "loss": getattr(loss_fn, "__name__", type(loss_fn).__name__),
                      "do_validation": val_batches is not None,
                      "metrics": [n for n, _ in metric_fns]}
    for cb in callbacks:
        if hasattr(cb, "set_model"):
            cb.set_model(model)
        else:
            cb.model = model
        if hasattr(cb, "set_params"):
            cb.set_params(history.params)
        else:
            cb.params = history.params
        cb.history = history
        cb.optimizer = opt
    object.__setattr__(model, "stop_training", False)
    object.__setattr__(model, "_fit_loss", (loss_fn, metrics))

    def call(hook, *args):
        for cb in callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    def stopping():
        return model.stop_training or any(getattr(cb, "stop_training", False)
                                          for cb in callbacks)

    was_training = model.training
    logs = {}
    call("on_train_begin", {})
    try:
        for epoch in range(initial_epoch, epochs):
            call("on_epoch_begin", epoch, {})
            model.train()
            bar = EpochProgress(epoch, epochs, len(batches), verbose) if verbose else None
            if bar is not None:
                bar.start()
            sums, n, done = {}, 0, 0
            for step, (xs, yb, wb) in enumerate(batches):
                call("on_train_batch_begin", step, {"batch": step, "size": len(xs[0])})
                xs = tuple(_as_input(a, dtype) for a in xs)
                if step == 0:
                    _remember_inputs(model, xs)
                if compiled is not None:        # compile=True: one recorded program
                    if len(xs) != 1 or wb is not None:
                        raise NotImplementedError(
                            "fit(compile=True) takes one model input and no sample weights; "
                            "use compile=False")
                    loss_value = compiled(xs[0], np.asarray(_value(yb)))
                    out_v = compiled.last_output
                    yb = _as_target(yb, out_v)
                else:
                    opt.zero_grad()
                    out = model(*(to_dev(a) for a in xs))
                    out_v = _value(out)
                    yb = _as_target(yb, out_v)
                    if class_weight is not None:
                        cw = _class_weights(class_weight, yb)
                        wb = cw if wb is None else _value(wb) * cw
                    batch_loss = _batch_loss(loss_fn, out, to_dev(yb),
                                             None if wb is None else _value(wb))
                    if not hasattr(batch_loss, "backward"):
                        raise TypeError("fit: the loss does not depend on the model's "
                                        "parameters (got a plain value); is the model "
                                        "without trainable parameters?")
                    batch_loss.backward()
                    opt.step()
                    loss_value = float(_value(batch_loss))
                k = len(xs[0])
                vals = {"loss": loss_value}
                vals.update((name, float(fn(out_v, yb))) for name, fn in metric_fns)
                for key, v in vals.items():
                    sums[key] = sums.get(key, 0.0) + v * k
                n += k
                done = step + 1
                running = {key: s / n for key, s in sums.items()}
                call("on_train_batch_end", step, dict(running))
                if bar is not None:
                    bar.update(done, running)
                if stopping():
                    break
            logs = {key: s / max(n, 1) for key, s in sums.items()}
            if not math.isfinite(logs.get("loss", 0.0)):
                warnings.warn(f"fit: the training loss is {logs['loss']} at epoch "
                              f"{epoch + 1}; try a smaller learning rate", RuntimeWarning,
                              stacklevel=2)
            if val_batches is not None and _should_validate(epoch, validation_freq):
                call("on_test_begin", {})
                val = _evaluate(model, val_batches, loss_fn, metric_fns)
                call("on_test_end", dict(val))
                logs.update((f"val_{k}", v) for k, v in val.items())
            call("on_epoch_end", epoch, logs)
            if bar is not None:
                bar.end(done, logs)
            history._append(epoch, logs)
            if stopping():
                break
    finally:
        model.train(was_training)
    call("on_train_end", dict(logs))
    return history


# ----- Keras's Module methods -------------------------------------------------------------

def _module_fit(self, x, y=None, **kwargs):
    """``model.fit(x, y, ...)``: ``nn.fit(model, x, y, ...)`` (see ``autodiff.nn.fit``)."""
    return fit(self, x, y, **kwargs)


_module_fit.__name__ = "fit"
_module_fit.__qualname__ = "Module.fit"
_module_fit.__doc__ = fit.__doc__ and ("``model.fit(x, y, ...)`` is ``nn.fit(model, x, y, "
                                       "...)``.\n\n    " + fit.__doc__)


def _module_evaluate(self, x, y=None, batch_size=32, verbose="auto", sample_weight=None,
                     return_dict=False, loss=None, metrics=None):
    """Keras's ``model.evaluate(x, y)``: the loss, or ``[loss, metric, ...]`` when there
    are metrics (a dict with ``return_dict=True``), in eval mode without a tape.

    ``loss`` and ``metrics`` default to those of the model's last ``fit`` (Keras takes
    them from ``compile``); a model never fitted needs ``loss=``. ``x`` may be a tuple of
    inputs or a DataLoader; ``sample_weight`` weights each sample's loss. ``verbose`` is
    accepted for Keras's signature (nothing is printed)."""
    last = getattr(self, "_fit_loss", None)
    if loss is None:
        if last is None:
            raise ValueError("model.evaluate: no loss; pass loss=... (a name or a callable) or "
                             "train with model.fit first (Keras takes it from compile)")
        loss_fn = last[0]
        if metrics is None:
            metrics = last[1]
    else:
        loss_fn = _get_loss(loss)
    metric_fns = _get_metrics(metrics, loss_fn)
    res = _evaluate(self, _Batches(x, y, sample_weight, int(batch_size), what="evaluate"),
                    loss_fn, metric_fns)
    if return_dict:
        return res
    return res["loss"] if not metric_fns else [res["loss"]] + [res[n] for n, _ in metric_fns]


def _module_predict(self, x, batch_size=32, verbose="auto"):
    """Keras's ``model.predict(x, batch_size=32)``: the outputs as a NumPy array (a tuple
    of them for a model with several outputs), in eval mode without a tape; ``x`` may be
    a tuple of inputs."""
    return _predict(self, x, int(batch_size), "model.predict")


class _KerasMethod:
    """A Module method that yields to a parameter, buffer or sub-module of the same name:
    PyTorch programs name layers ``self.predict = nn.Linear(...)``, and that layer must
    stay what ``self.predict`` means inside ``forward``."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, cls=None):
        if obj is not None:
            d = obj.__dict__
            for store in ("_parameters", "_buffers", "_modules"):
                if self.name in d.get(store, ()):
                    return d[store][self.name]
        return self.fn.__get__(obj, cls)


for _name, _fn in (("fit", _module_fit), ("evaluate", _module_evaluate),
                   ("predict", _module_predict), ("summary", summary)):
    _method = _KerasMethod(_fn)
    _method.__set_name__(Module, _name)
    setattr(Module, _name, _method)
