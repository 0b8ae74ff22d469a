"""Keras habits of ``fit``: verbose and the progress bar, sample and class weights,
initial_epoch, validation_freq, several inputs, per-batch callbacks, Keras's callbacks and
defaults, and ``model.evaluate`` / ``model.predict`` / ``model.summary()``. Small problems:
the file runs in seconds."""
import csv
import io

import numpy as np
import pytest

from autodiff import nn
from autodiff.nn import functional as F


def blobs(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 2)) + 2.0 * (2 * y[:, None] - 1)
    return x, y


def mlp(seed=0):
    nn.init.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 2))


def same_state(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class Recorder(nn.Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", sorted(logs)))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, dict(logs)))

    def on_test_begin(self, logs=None):
        self.calls.append(("test_begin",))

    def on_test_end(self, logs=None):
        self.calls.append(("test_end",))


# ----- verbose -------------------------------------------------------------------------

class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def test_verbose_0_is_silent_and_bad_values_refused(capsys):
    x, y = blobs()
    nn.fit(mlp(), x, y, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")
    with pytest.raises(ValueError, match="verbose"):
        nn.fit(mlp(), x, y, verbose=3)


def test_progress_bar_redraws_in_place_on_a_terminal(monkeypatch):
    term = FakeTerminal()
    monkeypatch.setattr("sys.stdout", term)
    x, y = blobs()
    nn.fit(mlp(), x, y, epochs=2, batch_size=8, validation_data=(x, y), verbose=1)
    out = term.getvalue()
    lines = out.split("\n")
    assert len(lines) == 3 and lines[-1] == ""            # one finished line per epoch
    assert all(line.startswith("\r") for line in lines[:2])
    final = lines[0].split("\r")[-1]
    assert final.startswith("Epoch 1/2 6/6 [==============================] - ")
    assert "ms/step" in final or "us/step" in final
    assert "val_loss: " in final and "loss: " in final


def test_verbose_1_in_a_log_file_writes_one_line_per_epoch(capsys):
    x, y = blobs()
    nn.fit(mlp(), x, y, epochs=3, batch_size=4, verbose="auto")
    out = capsys.readouterr().out
    assert "\r" not in out and len(out.splitlines()) == 3
    assert out.splitlines()[2].startswith("Epoch 3/3 12/12 [")


# ----- sample and class weights ---------------------------------------------------------

def manual_weighted_run(x, y, w, epochs, lr=0.1):
    model = mlp()
    opt = nn.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for i in range(0, len(x), 16):
            xb, yb, wb = x[i:i + 16], y[i:i + 16], w[i:i + 16]
            opt.zero_grad()
            loss = np.sum(F.cross_entropy(model(xb), yb, reduction="none") * wb) / len(xb)
            loss.backward()
            opt.step()
            total += float(loss.value) * len(xb)
        losses.append(total / len(x))
    return model, losses


def test_sample_weight_is_keras_weighted_mean():
    x, y = blobs()
    w = np.random.default_rng(1).uniform(0.1, 3.0, len(x))
    ref, losses = manual_weighted_run(x, y, w, 3)
    model = mlp()
    h = model.fit(x, y, optimizer="sgd", lr=0.1, epochs=3, batch_size=16, shuffle=False,
                  sample_weight=w, verbose=0)
    assert h.history["loss"] == pytest.approx(losses, rel=1e-13)
    assert same_state(model.state_dict(), ref.state_dict())
    with pytest.raises(ValueError, match="one weight per sample"):
        nn.fit(mlp(), x, y, sample_weight=w[:-1], verbose=0)


def test_class_weight_equals_per_sample_weights_and_one_hot_targets():
    x, y = blobs()
    cw = {0: 1.0, 1: 3.5}
    w = np.where(y == 1, 3.5, 1.0)
    h1 = nn.fit(mlp(), x, y, lr=0.05, epochs=2, class_weight=cw, verbose=0)
    h2 = nn.fit(mlp(), x, y, lr=0.05, epochs=2, sample_weight=w, verbose=0)
    assert h1.history == h2.history
    onehot = np.eye(2)[y]
    h3 = nn.fit(mlp(), x, onehot, lr=0.05, epochs=2, class_weight=cw, verbose=0)
    assert h3.history["loss"] == pytest.approx(h1.history["loss"], rel=1e-12)
    # both together multiply; a weight of 1 for classes the dict leaves out
    h4 = nn.fit(mlp(), x, y, lr=0.05, epochs=2, class_weight={1: 3.5}, sample_weight=w / w,
                verbose=0)
    assert h4.history == h1.history
    with pytest.raises(ValueError, match="class labels"):
        nn.fit(mlp(), x, y + 0.5, loss="mse", class_weight=cw, verbose=0)
    with pytest.raises(TypeError, match="reduction='none'"):
        nn.fit(mlp(), x, y, loss=lambda out, t: F.cross_entropy(out, t), sample_weight=w,
               verbose=0)


def test_weighted_validation_data_and_split():
    x, y = blobs()
    w = np.linspace(0.5, 2.0, len(x))
    model = mlp()
    h = nn.fit(model, x, y, epochs=1, validation_data=(x, y, w), verbose=0)
    expected = nn.evaluate(model, x, y, sample_weight=w)["loss"]
    assert h.history["val_loss"][-1] == pytest.approx(expected, rel=1e-12)
    manual = np.sum(F.cross_entropy(nn.predict(model, x), y, reduction="none") * w) / len(x)
    assert expected == pytest.approx(manual, rel=1e-12)
    h = nn.fit(mlp(), x, y, epochs=1, validation_split=0.25, sample_weight=w, verbose=0)
    assert h.params["samples"] == 36 and "val_loss" in h.history


# ----- initial_epoch, validation_freq ------------------------------------------------------

def test_initial_epoch_resumes_the_uninterrupted_run(tmp_path):
    x, y = blobs()
    straight = mlp()
    opt = nn.optim.Adam(straight.parameters(), lr=0.05)
    h = nn.fit(straight, x, y, optimizer=opt, epochs=4, batch_size=8, verbose=0)
    model = mlp()
    opt = nn.optim.Adam(model.parameters(), lr=0.05)
    nn.fit(model, x, y, optimizer=opt, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "ck.npz"
    nn.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, path)
    model = mlp(seed=5)
    opt = nn.optim.Adam(model.parameters(), lr=0.5)
    ck = nn.load(path)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    h2 = nn.fit(model, x, y, optimizer=opt, epochs=4, initial_epoch=ck["epoch"], batch_size=8,
                verbose=0)
    assert h2.epoch == [2, 3]
    assert h2.history["loss"] == h.history["loss"][2:]
    assert same_state(model.state_dict(), straight.state_dict())


@pytest.mark.parametrize("freq,validated", [(2, [1, 3]), ([1, 4], [0, 3]), (5, [])])
def test_validation_freq(freq, validated):
    x, y = blobs()
    rec = Recorder()
    h = nn.fit(mlp(), x, y, epochs=4, validation_data=(x, y), validation_freq=freq,
               callbacks=[rec], verbose=0)
    ends = [c for c in rec.calls if c[0] == "epoch_end"]
    assert [c[1] for c in ends if "val_loss" in c[2]] == validated
    assert len(h.history.get("val_loss", [])) == len(validated)
    # EarlyStopping on val_loss skips the epochs without validation (Keras's rule)
    es = nn.EarlyStopping(patience=10)
    nn.fit(mlp(), x, y, epochs=4, validation_data=(x, y), validation_freq=freq,
           callbacks=[es], verbose=0)
    with pytest.raises(ValueError, match="validation_freq"):
        nn.fit(mlp(), x, y, validation_data=(x, y), validation_freq=0, verbose=0)


# ----- several inputs ----------------------------------------------------------------------

class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 4)
        self.b = nn.Linear(3, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, xa, xb):
        return self.head(np.tanh(self.a(xa) + self.b(xb)))


def test_multi_input_fit_predict_evaluate_and_summary(capsys):
    x, y = blobs()
    xb = np.random.default_rng(2).standard_normal((len(x), 3))
    nn.init.manual_seed(0)
    model = TwoInputs()
    h = model.fit((x, xb), y, lr=0.05, epochs=3, validation_split=0.25, verbose=0)
    assert h.params["samples"] == 36 and len(h.history["val_loss"]) == 3
    out = model.predict((x, xb))
    assert type(out) is np.ndarray and out.shape == (48, 2)
    np.testing.assert_allclose(out, model(x, xb).value, rtol=1e-13)
    loss, acc = model.evaluate([x, xb], y)
    assert loss == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-12)
    assert acc == np.mean(out.argmax(1) == y)
    model.summary()
    text = capsys.readouterr().out
    assert "a (Linear)" in text and "(None, 4)" in text and "head (Linear)" in text
    with pytest.raises(ValueError, match="different numbers of samples"):
        model.fit((x, xb[:-1]), y, verbose=0)


# ----- callbacks ---------------------------------------------------------------------------

def test_callback_hooks_order_and_batch_logs():
    x, y = blobs(n=16)
    rec = Recorder()
    h = nn.fit(mlp(), x, y, epochs=2, batch_size=8, validation_data=(x, y), callbacks=[rec],
               verbose=0)
    names = [c[0] if c[0] in ("train_begin", "test_begin", "test_end") else c[:2]
             for c in rec.calls]
    epoch = lambda e: [("epoch_begin", e), ("batch_begin", 0), ("batch_end", 0),  # noqa: E731
                       ("batch_begin", 1), ("batch_end", 1), "test_begin", "test_end",
                       ("epoch_end", e)]
    assert names == ["train_begin"] + epoch(0) + epoch(1) + [("train_end", rec.calls[-1][1])]
    # batch logs: running means of the epoch so far; the last one is the epoch's value
    batch_logs = [c[2] for c in rec.calls if c[0] == "batch_end"]
    assert set(batch_logs[0]) == {"loss", "accuracy"}
    assert batch_logs[1]["loss"] == pytest.approx(h.history["loss"][0], rel=1e-14)
    assert rec.calls[-1][1] == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert rec.params["epochs"] == 2 and rec.params["steps"] == 2


def test_keras_reduce_lr_on_plateau():
    x, y = blobs(n=16)
    seq = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    feed = nn.LambdaCallback(on_epoch_end=lambda e, logs: logs.__setitem__("fake", seq[e]))
    used = []
    opt = nn.optim.SGD(mlp().parameters(), lr=0.1)
    watch = nn.LambdaCallback(on_epoch_begin=lambda e, logs: used.append(
        opt.param_groups[0]["lr"]))
    cb = nn.ReduceLROnPlateau(monitor="fake", factor=0.5, patience=2, cooldown=1, min_lr=0.01)
    model = mlp()
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    h = nn.fit(model, x, y, optimizer=opt, epochs=len(seq), callbacks=[watch, feed, cb],
               verbose=0)
    expected = [.1] * 4 + [.05] * 2 + [.025] * 4 + [.0125] * 2 + [.01] * 2
    assert used == pytest.approx(expected, rel=1e-15)
    assert h.history["learning_rate"] == pytest.approx(expected, rel=1e-15)
    defaults = nn.ReduceLROnPlateau()
    assert (defaults.monitor, defaults.factor, defaults.patience, defaults.min_delta,
            defaults.cooldown, defaults.min_lr) == ("val_loss", 0.1, 10, 1e-4, 0, 0.0)
    with pytest.raises(KeyError, match="validation_data"):
        nn.fit(mlp(), x, y, callbacks=[nn.ReduceLROnPlateau()], verbose=0)


def test_csv_logger(tmp_path):
    x, y = blobs(n=16)
    path = tmp_path / "log.csv"
    nn.fit(mlp(), x, y, epochs=3, validation_data=(x, y), validation_freq=2,
           callbacks=[nn.CSVLogger(path)], verbose=0)
    rows = list(csv.reader(open(path)))
    assert rows[0] == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert rows[1][3:] == ["NA", "NA"] and "NA" not in rows[2]
    path2 = tmp_path / "log2.csv"
    nn.fit(mlp(), x, y, epochs=2, validation_data=(x, y),
           callbacks=[nn.CSVLogger(path2, separator=";")], verbose=0)
    nn.fit(mlp(), x, y, epochs=4, initial_epoch=2, validation_data=(x, y), validation_freq=2,
           callbacks=[nn.CSVLogger(path2, separator=";", append=True)], verbose=0)
    lines = open(path2).read().splitlines()
    assert lines[0] == "epoch;accuracy;loss;val_accuracy;val_loss" and len(lines) == 5
    assert lines[3].startswith("2;") and lines[3].endswith(";NA;NA")
    assert lines[4].startswith("3;") and "NA" not in lines[4]


def test_terminate_on_nan_stops_after_the_batch(capsys):
    x, y = blobs(n=32)
    calls = []

    def loss(out, target):
        calls.append(1)
        return F.cross_entropy(out, target) * (np.nan if len(calls) == 3 else 1.0)

    seen = []
    with pytest.warns(RuntimeWarning, match="training loss is nan"):
        h = nn.fit(mlp(), x, y, loss=loss, epochs=5, batch_size=4, verbose=0,
                   callbacks=[nn.TerminateOnNaN(), nn.LambdaCallback(
                       on_train_batch_end=lambda b, logs: seen.append(b))])
    assert seen == [0, 1, 2] and len(h.epoch) == 1
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out


def test_lambda_callback_and_unknown_hook():
    x, y = blobs(n=16)
    log = []
    cb = nn.LambdaCallback(on_train_begin=lambda logs: log.append("begin"),
                           on_epoch_end=lambda e, logs: log.append(e),
                           on_train_end=lambda logs: log.append("end"))
    nn.fit(mlp(), x, y, epochs=2, callbacks=[cb], verbose=0)
    assert log == ["begin", 0, 1, "end"]
    with pytest.raises(TypeError, match="unknown hook"):
        nn.LambdaCallback(on_epoch_finish=print)


def test_keras_defaults_of_early_stopping_and_checkpoint(tmp_path):
    es = nn.EarlyStopping()
    assert (es.monitor, es.patience, es.min_delta, es.restore_best_weights,
            es.stopped_epoch) == ("val_loss", 0, 0.0, False, 0)
    x, y = blobs(n=16)
    ck = nn.ModelCheckpoint(filepath=str(tmp_path / "m-{epoch}.npz"))
    assert ck.save_best_only is False and ck.monitor == "val_loss"
    model = mlp()
    nn.fit(model, x, y, epochs=2, callbacks=[ck], verbose=0)   # no validation needed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m-1.npz", "m-2.npz"]
    state, meta = nn.load(tmp_path / "m-2.npz", with_metadata=True)
    assert same_state(state, model.state_dict())
    assert meta["epoch"] == 2 and meta["class"] == "Sequential" and "loss" in meta["logs"]


def test_model_stop_training_set_by_a_callback():
    x, y = blobs(n=16)

    def stop(epoch, logs):
        if epoch == 1:
            model.stop_training = True

    model = mlp()
    h = nn.fit(model, x, y, epochs=10, callbacks=[nn.LambdaCallback(on_epoch_end=stop)],
               verbose=0)
    assert h.epoch == [0, 1]


# ----- evaluate, predict, summary ------------------------------------------------------------

def test_model_evaluate_and_predict_like_keras():
    x, y = blobs()
    model = mlp()
    with pytest.raises(ValueError, match="no loss"):
        model.evaluate(x, y)
    assert isinstance(model.evaluate(x, y, loss="cross_entropy"), float)
    model.fit(x, y, epochs=2, lr=0.05, verbose=0)
    out = model.predict(x)
    assert type(out) is np.ndarray and out.dtype == np.float64
    np.testing.assert_allclose(out, model(x).value, rtol=1e-13)
    np.testing.assert_array_equal(model.predict(x, batch_size=5), out)
    loss, acc = model.evaluate(x, y)                           # fit's loss and metrics
    assert loss == pytest.approx(float(F.cross_entropy(out, y)), rel=1e-12)
    assert model.evaluate(x, y, return_dict=True) == {"loss": loss, "accuracy": acc}
    assert model.evaluate(x, y, metrics=[]) == loss
    assert model.evaluate(x, y, loss=F.nll_loss, metrics=["accuracy"])[1] == acc


def test_summary_table(capsys):
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10),
                          nn.BatchNorm1d(10))
    lines = []
    model.summary(input_size=(1, 784), print_fn=lines.append)
    text = "\n".join(lines)
    assert lines[0] == 'Model: "Sequential"'
    assert "0 (Linear)" in text and "(None, 512)" in text and "401,920" in text
    assert "3 (BatchNorm1d)" in text and "(None, 10)" in text
    assert "Total params: 407,090" in text and "Trainable params: 407,070" in text
    assert "Non-trainable params: 20" in text
    model.summary()                                            # shapes unknown: "?"
    out = capsys.readouterr().out
    assert "?" in out and "Total params: 407,090" in out


def test_a_layer_named_predict_stays_the_layer():
    """PyTorch tutorials name the output layer ``self.predict``: the Keras methods yield."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(1, 10)
            self.predict = nn.Linear(10, 1)

        def forward(self, x):
            return self.predict(np.tanh(self.hidden(x)))

    nn.init.manual_seed(0)
    net = Net()
    assert isinstance(net.predict, nn.Linear)
    x = np.linspace(-1, 1, 20)[:, None]
    h = net.fit(x, x ** 2, loss="mse", metrics=None, optimizer="sgd", lr=0.2, epochs=30,
                verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert nn.Linear(2, 2).predict(np.ones((3, 2))).shape == (3, 2)


def test_history_plot_places_sparse_validation_at_its_epochs():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x, y = blobs(n=16)
    h = nn.fit(mlp(), x, y, epochs=4, validation_data=(x, y), validation_freq=2, verbose=0)
    ax = h.plot(keys="loss")[0]
    train, val = ax.get_lines()
    assert list(train.get_xdata()) == [1, 2, 3, 4] and list(val.get_xdata()) == [2, 4]
    plt.close("all")
