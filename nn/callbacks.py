"""Callbacks of ``fit``, with Keras's names, arguments and defaults.

A callback is any object with some of ``Callback``'s methods. ``fit`` calls
``set_model(model)`` and ``set_params(params)`` first, then ``on_train_begin(logs)``,
for every epoch ``on_epoch_begin(epoch, logs)``, ``on_train_batch_begin(batch, logs)`` /
``on_train_batch_end(batch, logs)`` per batch (``logs`` holds the running means of the
epoch so far: ``loss``, metrics), ``on_test_begin``/``on_test_end`` around validation,
``on_epoch_end(epoch, logs)`` with the epoch's values (``loss``, ``val_loss``, …), and
``on_train_end(logs)``. Epochs and batches count from 0. Setting ``model.stop_training =
True`` (or the callback's own ``stop_training``) stops after the current batch.
"""
import csv
import math
import os

import numpy as np

from .io import save

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "LearningRateScheduler",
           "ReduceLROnPlateau", "CSVLogger", "TerminateOnNaN", "LambdaCallback"]


class Callback:
    """Base of ``fit`` callbacks; override the hooks you need. ``fit`` sets ``model``,
    ``params`` (``epochs``, ``steps``, ``verbose``, …), ``history`` and ``optimizer``
    before ``on_train_begin``."""
    stop_training = False
    model = None
    history = None
    optimizer = None
    params = None

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None):      # Keras's older names
        pass

    def on_batch_end(self, batch, logs=None):
        pass

    def on_test_begin(self, logs=None):
        pass

    def on_test_end(self, logs=None):
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
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = 0

    def _current(self, logs):
        """The monitored value, or None on an epoch ``fit`` did not validate
        (``validation_freq``); a quantity that is never logged is a ``KeyError``."""
        if self.monitor in logs:
            return float(logs[self.monitor])
        if self.monitor.startswith("val_") and (self.params or {}).get("do_validation"):
            return None
        hint = (" (val_* quantities need validation_data or validation_split)"
                if self.monitor.startswith("val_") else "")
        raise KeyError(f"{type(self).__name__}: monitor {self.monitor!r} is not logged; "
                       f"logged quantities are {sorted(logs)}{hint}")

    def _improved(self, value, reference=None):
        reference = self.best if reference is None else reference
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta


def _stop(cb):
    cb.stop_training = True
    if cb.model is not None:
        cb.model.stop_training = True


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs (Keras's rule and defaults: ``patience=0`` stops at the first epoch without
    improvement; ``baseline``: stop unless the value beats it; ``start_from_epoch``:
    epochs to wait before watching). With ``restore_best_weights=True`` the model ends
    with the weights of its best epoch (default ``False``, as Keras). ``mode`` 'auto'
    maximises quantities named like accuracy and minimises the rest.

    After the run: ``stopped_epoch`` (the epoch it stopped at, from 0; 0 when it did not
    stop), ``best`` and ``best_epoch``."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self._reset()
        self.wait, self.stopped_epoch, self.best_weights = 0, 0, None
        self.stop_training = False

    def on_epoch_end(self, epoch, logs=None):
        value = self._current(logs or {})
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.state_dict()
        self.wait += 1
        if self._improved(value):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            if self.baseline is None or self._improved(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            _stop(self)

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model's ``state_dict`` with ``nn.save`` to ``filepath`` after every epoch
    (Keras's default), or only when ``monitor`` improves (``save_best_only=True``).
    ``filepath`` may hold ``{epoch}`` and logged names as format fields:
    ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"`` (epochs counted from 1). The file's metadata
    holds ``epoch`` (from 1), the model's class name and the logs
    (``nn.load_metadata``). Load the weights back with
    ``model.load_state_dict(nn.load(filepath))``. ``last_saved`` is the newest file."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None, min_delta=0.0):
        super().__init__(monitor, mode, min_delta)
        if save_freq != "epoch":
            raise NotImplementedError("ModelCheckpoint: only save_freq='epoch' is supported")
        self.filepath = os.fspath(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only      # a file always holds the weights
        self.verbose = verbose
        self.initial_value_threshold = initial_value_threshold
        self.last_saved = None

    def on_train_begin(self, logs=None):
        self._reset()
        if self.initial_value_threshold is not None:
            self.best = float(self.initial_value_threshold)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self._current(logs)
            if value is None or not self._improved(value):
                return
            previous, self.best, self.best_epoch = self.best, value, epoch
        path = self.filepath.format(epoch=epoch + 1, **logs)
        meta = {"epoch": epoch + 1, "class": type(self.model).__name__,
                "logs": {k: float(v) for k, v in logs.items()}}
        save(self.model.state_dict(), path, metadata=meta)
        self.last_saved = path
        if self.verbose:
            if self.save_best_only:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous:.5f} to "
                      f"{self.best:.5f}, saving model to {path}")
            else:
                print(f"\nEpoch {epoch + 1}: saving model to {path}")


def _set_lr(optimizer, lr):
    for group in optimizer.param_groups:
        group["lr"] = lr


class LearningRateScheduler(Callback):
    """Set the learning rate each epoch: ``schedule`` is a function ``schedule(epoch,
    lr) -> lr`` (Keras's form, applied to every parameter group of fit's optimizer before
    each epoch, epochs from 0) or an ``nn.optim.lr_scheduler`` (its ``step()`` is called
    after each epoch). The rate of each epoch is logged as ``lr`` and ``learning_rate``."""

    def __init__(self, schedule, verbose=0):
        self.schedule = schedule
        self.verbose = verbose

    def _opt(self):
        opt = getattr(self.schedule, "optimizer", None) or self.optimizer
        if opt is None:
            raise RuntimeError("LearningRateScheduler: no optimizer (use it inside fit)")
        return opt

    def on_epoch_begin(self, epoch, logs=None):
        if callable(self.schedule) and not hasattr(self.schedule, "step"):
            for group in self._opt().param_groups:
                group["lr"] = float(self.schedule(epoch, group["lr"]))
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                      f"{self._opt().param_groups[0]['lr']}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["lr"] = logs["learning_rate"] = float(self._opt().param_groups[0]["lr"])
        if hasattr(self.schedule, "step"):
            self.schedule.step()


class ReduceLROnPlateau(_Monitor):
    """Keras's ``ReduceLROnPlateau``: multiply the learning rate of every parameter group
    by ``factor`` when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs, then wait ``cooldown`` epochs; never below ``min_lr``. The rate
    is logged as ``learning_rate``. (``nn.optim.lr_scheduler.ReduceLROnPlateau`` is
    PyTorch's, stepped by hand.)"""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        if factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0, got "
                             f"{factor}")
        super().__init__(monitor, mode, min_delta)
        self.factor = factor
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = min_lr
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        self._reset()
        self.wait = self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.optimizer
        if opt is None:
            raise RuntimeError("ReduceLROnPlateau: no optimizer (use it inside fit)")
        logs["learning_rate"] = float(opt.param_groups[0]["lr"])
        value = self._current(logs)
        if value is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value):
            self.best = value
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                reduced = False
                for group in opt.param_groups:
                    old = float(group["lr"])
                    if old > np.float32(self.min_lr):
                        group["lr"] = max(old * self.factor, self.min_lr)
                        reduced = True
                if reduced:
                    if self.verbose:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {opt.param_groups[0]['lr']}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


class CSVLogger(Callback):
    """Write each epoch's logs as a CSV row to ``filename``: the column ``epoch`` (from 0)
    then the logged names in sorted order (Keras's layout); ``NA`` where an epoch has no
    value (validation skipped by ``validation_freq``). ``append=True`` continues a file
    (a resumed run) in its columns, without a second header."""

    def __init__(self, filename, separator=",", append=False):
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = append
        self.keys = None
        self.writer = None
        self._file = None
        self._header = True

    def on_train_begin(self, logs=None):
        self.keys, self.writer = None, None
        self._header = not (self.append and os.path.exists(self.filename)
                            and os.path.getsize(self.filename) > 0)
        if not self._header:
            # Continue the columns of the file (a resumed run).
            with open(self.filename, newline="") as fh:
                head = next(csv.reader(fh, delimiter=self.sep), [])
            if head[:1] == ["epoch"]:
                self.keys = head[1:]
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        if self.keys is not None:
            self.writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.sep, extrasaction="ignore")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            keys = set(logs)
            if (self.params or {}).get("do_validation"):
                # Epochs that validation_freq skips still get val_* columns (as NA).
                keys |= {"val_" + k for k in logs if not k.startswith("val_")}
            self.keys = sorted(keys)
            self.writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                         delimiter=self.sep)
            if self._header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, logs[k] if k in logs else "NA") for k in self.keys)
        self.writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite (Keras's)."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            _stop(self)


class LambdaCallback(Callback):
    """A callback from functions: ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch,
    logs)``, ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``,
    ``on_train_begin(logs)``, ``on_train_end(logs)`` (Keras's); other hooks by keyword."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end,
                     on_train_begin=on_train_begin, on_train_end=on_train_end,
                     on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if fn is None:
                continue
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise TypeError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)
