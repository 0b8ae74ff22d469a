"""nn.fit / model.fit: convergence, history, modes, callbacks, progress output, plots and the
loss/optimizer/metric options. Small problems only: the whole file runs in a few seconds."""
import sys

import numpy as np
import pytest

from autodiff import nn
from autodiff.nn import functional as F
from autodiff.nn.fit import Callback, LearningRateScheduler, evaluate, predict


def blobs(n=120, seed=0, shift=3.0):
    """Two separable Gaussian blobs in 2-D with integer labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 2)) + shift * (2 * y[:, None] - 1)
    return x, y


def mlp(seed=0, out=2, dtype=np.float64):
    nn.init.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 8, dtype=dtype), nn.Tanh(), nn.Linear(8, out, dtype=dtype))


def snapshots():
    """A callback that keeps the weights after every epoch."""
    class Snap(Callback):
        def __init__(self):
            self.states = []

        def on_epoch_end(self, epoch, logs=None):
            self.states.append(self.model.state_dict())
    return Snap()


def same_state(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ----- convergence and history -----------------------------------------------------------

def test_fit_converges_on_separable_problem():
    x, y = blobs()
    model = mlp()
    h = nn.fit(model, x, y, loss=F.cross_entropy, optimizer=nn.optim.Adam(model.parameters(),
                                                                         lr=0.05),
               epochs=15, batch_size=16, progress=False)
    loss = h.history["loss"]
    assert len(loss) == 15 and h.epoch == list(range(15))
    assert loss[-1] < 0.1 * loss[0]
    assert h.history["accuracy"][-1] == 1.0
    assert np.mean(predict(model, x).argmax(1) == y) == 1.0


def test_model_fit_method_is_nn_fit():
    x, y = blobs()
    m1, m2 = mlp(), mlp()
    h1 = nn.fit(m1, x, y, epochs=3, lr=0.05, progress=False)
    h2 = m2.fit(x, y, epochs=3, lr=0.05, progress=False)
    assert h1.history == h2.history
    assert same_state(m1.state_dict(), m2.state_dict())


def test_repeatable_with_seed_and_order_depends_on_it():
    x, y = blobs()
    runs = [nn.fit(mlp(), x, y, epochs=2, lr=0.05, seed=s, progress=False).history["loss"]
            for s in (0, 0, 1)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_validation_history_keys_and_values():
    x, y = blobs(seed=0)
    xv, yv = blobs(n=50, seed=1)
    model = mlp()
    h = nn.fit(model, x, y, epochs=4, lr=0.05, validation_data=(xv, yv), progress=False)
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in h.history.values())
    # The last validation values are the model's, evaluated in eval mode without a tape.
    out = predict(model, xv)
    assert type(out) is np.ndarray
    np.testing.assert_allclose(h.history["val_loss"][-1], F.cross_entropy(out, yv), rtol=1e-12)
    assert h.history["val_accuracy"][-1] == np.mean(out.argmax(1) == yv)
    assert evaluate(model, xv, yv) == pytest.approx({"loss": h.history["val_loss"][-1],
                                                     "accuracy": h.history["val_accuracy"][-1]})
    assert h.params["epochs"] == 4 and h.params["samples"] == len(x)
    assert "val_loss" in repr(h)


def test_evaluation_records_nothing_on_a_tape():
    import autodiff as ad
    x, y = blobs(n=30)
    model = mlp()
    with ad.Tape() as tape:
        evaluate(model, x, y)
        predict(model, x)
    assert len(tape) == 0
    with ad.Tape() as tape:
        model(x)                                   # a plain call does record (the contrast)
    assert len(tape) > 0


def test_validation_split_and_dataloader_input():
    x, y = blobs(n=100)
    h = nn.fit(mlp(), x, y, epochs=2, validation_split=0.2, progress=False)
    assert h.params["samples"] == 80 and "val_loss" in h.history
    loader = nn.DataLoader((x, y), batch_size=25, shuffle=True, seed=3)
    h = nn.fit(mlp(), loader, epochs=2, validation_data=nn.DataLoader((x, y), batch_size=50),
               progress=False)
    assert h.params["steps"] == 4 and len(h.history["val_accuracy"]) == 2
    with pytest.raises(ValueError, match="y=None"):
        nn.fit(mlp(), loader, y, progress=False)


def test_train_and_eval_modes():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x

    x, y = blobs(n=40)
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.1), Probe())
    nn.fit(model, x, y, epochs=2, batch_size=20, validation_data=(x, y), progress=False)
    # per epoch: two training batches in train mode, then one validation pass in eval mode
    assert seen == [True, True, False, True, True, False]
    assert model.training                       # the mode it had before
    model.eval()
    seen.clear()
    nn.fit(model, x, y, epochs=1, batch_size=40, progress=False)
    assert seen == [True] and not model.training


def test_float32_model_stays_float32():
    x, y = blobs()
    model = mlp(dtype=np.float32)
    h = nn.fit(model, x, y, epochs=3, lr=0.05, validation_data=(x, y), progress=False)
    assert all(p.value.dtype == np.float32 for p in model.parameters())
    assert h.history["val_accuracy"][-1] > 0.9


# ----- losses, optimizers, metrics by name --------------------------------------------------

def test_string_loss_and_optimizer_regression():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.3                     # shape (N,): the model's (N, 1)
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1))
    h = nn.fit(model, x, y, loss="mse", optimizer="sgd", lr=0.1, epochs=40, metrics=["mae"],
               validation_data=(x, y), progress=False)
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert h.history["val_loss"][-1] < 1e-4 and h.history["val_mae"][-1] < 1e-2
    np.testing.assert_allclose(model[0].weight.value, [[1.0, -2.0, 0.5]], atol=2e-2)
    assert h.params["optimizer"] == "SGD" and h.params["loss"] == "mse_loss"


@pytest.mark.parametrize("opt", ["adam", "adamw", "rmsprop", "adagrad", "SGD",
                                 nn.optim.Adam])
def test_optimizer_names_and_classes(opt):
    x, y = blobs()
    h = nn.fit(mlp(), x, y, optimizer=opt, lr=0.05, epochs=8, progress=False)
    assert h.history["loss"][-1] < h.history["loss"][0]


@pytest.mark.parametrize("loss,target", [("cross_entropy", "int"), ("nll", "int"),
                                         ("bce_with_logits", "float"), ("mae", "float"),
                                         ("huber", "float")])
def test_loss_names(loss, target):
    x, y = blobs()
    if target == "int":
        model = nn.Sequential(nn.Linear(2, 2), nn.LogSoftmax(dim=1)) if loss == "nll" \
            else nn.Sequential(nn.Linear(2, 2))
        yy = y
    else:
        model = nn.Sequential(nn.Linear(2, 1))
        yy = y.astype(np.float64)
    h = nn.fit(model, x, yy, loss=loss, lr=0.05, epochs=15, progress=False)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.9       # argmax, or the sign of a single logit


def test_bad_options_are_clear_errors():
    x, y = blobs(n=20)
    model = mlp()
    with pytest.raises(ValueError, match="unknown loss"):
        nn.fit(model, x, y, loss="hinge", progress=False)
    with pytest.raises(ValueError, match="unknown optimizer"):
        nn.fit(model, x, y, optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match="lr="):
        nn.fit(model, x, y, optimizer=nn.optim.SGD(model.parameters()), lr=0.1, progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        nn.fit(model, x, y, metrics=["f2"], progress=False)
    with pytest.raises(ValueError, match="samples"):
        nn.fit(model, x, y[:10], progress=False)
    with pytest.raises(TypeError, match="nn.Module"):
        nn.fit(lambda v: v, x, y, progress=False)


def test_callable_metric_and_no_metrics():
    x, y = blobs()

    def error_rate(out, target):
        return float(np.mean(out.argmax(1) != target))

    h = nn.fit(mlp(), x, y, lr=0.05, epochs=3, metrics=[error_rate], validation_data=(x, y),
               progress=False)
    assert set(h.history) == {"loss", "error_rate", "val_loss", "val_error_rate"}
    h = nn.fit(mlp(), x, y, epochs=1, metrics=None, progress=False)
    assert set(h.history) == {"loss"}


# ----- callbacks ---------------------------------------------------------------------------

def overfit_setup():
    """Validation labels are the opposite of the training ones: fitting the training set
    makes the validation loss grow, so it is best early and EarlyStopping must fire."""
    x, y = blobs(n=60, shift=1.0)
    return x, y, (x, 1 - y)


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_stops_and_restores_best_weights(restore):
    x, y, val = overfit_setup()
    model = mlp()
    snap = snapshots()
    es = nn.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=restore)
    h = nn.fit(model, x, y, lr=0.05, epochs=50, validation_data=val, callbacks=[snap, es],
               progress=False)
    n = len(h.history["loss"])
    assert n < 50 and es.stopped_epoch == n - 1
    best = int(np.argmin(h.history["val_loss"]))
    assert es.best_epoch == best and es.best == h.history["val_loss"][best]
    assert es.stopped_epoch == best + 2                         # patience epochs without gain
    final = model.state_dict()
    assert same_state(final, snap.states[best if restore else -1])
    assert restore == (not same_state(final, snap.states[-1]))


def test_early_stopping_max_mode_min_delta_and_missing_monitor():
    x, y = blobs()
    es = nn.EarlyStopping(monitor="accuracy", patience=1, min_delta=0.5)
    h = nn.fit(mlp(), x, y, lr=0.05, epochs=10, callbacks=[es], progress=False)
    acc = h.history["accuracy"]
    assert es.mode == "max" and len(acc) < 10 and es.stopped_epoch == es.best_epoch + 1
    assert es.best == acc[es.best_epoch] and acc[-1] <= es.best + 0.5
    with pytest.raises(KeyError, match="validation_data"):
        nn.fit(mlp(), x, y, epochs=2, callbacks=[nn.EarlyStopping()], progress=False)


def test_model_checkpoint_writes_loadable_best_weights(tmp_path):
    x, y, val = overfit_setup()
    path = tmp_path / "best.npz"
    model = mlp()
    snap = snapshots()
    ck = nn.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    h = nn.fit(model, x, y, lr=0.05, epochs=6, validation_data=val, callbacks=[snap, ck],
               progress=False)
    assert path.exists() and ck.last_saved == str(path)
    best = int(np.argmin(h.history["val_loss"]))
    state = nn.load(path)
    assert same_state(state, snap.states[best])
    fresh = mlp(seed=1)
    fresh.load_state_dict(state)
    np.testing.assert_allclose(F.cross_entropy(predict(fresh, val[0]), val[1]),
                               h.history["val_loss"][best], rtol=1e-12)


def test_model_checkpoint_every_epoch_with_formatted_name(tmp_path):
    x, y = blobs(n=40)
    ck = nn.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{loss:.2f}.npz"),
                            save_best_only=False)
    nn.fit(mlp(), x, y, epochs=3, callbacks=[ck], progress=False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert [f[:4] for f in files] == ["m-01", "m-02", "m-03"]
    assert set(nn.load(tmp_path / files[-1])) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_learning_rate_scheduler_callback():
    x, y = blobs(n=40)
    model = mlp()
    opt = nn.optim.SGD(model.parameters(), lr=0.1)
    sched = nn.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    h = nn.fit(model, x, y, optimizer=opt, epochs=3, callbacks=[LearningRateScheduler(sched)],
               progress=False)
    assert h.history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    h = nn.fit(mlp(), x, y, optimizer="sgd", lr=1.0, epochs=3, progress=False,
               callbacks=[LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))])
    assert h.history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3])


# ----- progress output ---------------------------------------------------------------------

def test_progress_false_prints_nothing(capsys):
    x, y = blobs(n=40)
    nn.fit(mlp(), x, y, epochs=2, validation_data=(x, y), progress=False)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_progress_bar_off_a_terminal_writes_one_line_per_epoch(capsys):
    x, y = blobs(n=40)
    nn.fit(mlp(), x, y, epochs=2, batch_size=10, validation_data=(x, y), progress=True)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 2 and "\r" not in out and err == ""
    assert lines[0].startswith("Epoch 1/2 4/4 [==============================] - ")
    assert "val_loss: " in lines[1]


def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, y = blobs(n=40)
    nn.fit(mlp(), x, y, epochs=3, validation_data=(x, y), verbose=2)
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 3 and err == ""
    assert lines[0].startswith("Epoch 1/3 - loss: ") and "val_accuracy: " in lines[0]


# ----- History.plot ------------------------------------------------------------------------

def test_history_plot_with_agg():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x, y = blobs(n=40)
    h = nn.fit(mlp(), x, y, epochs=3, validation_data=(x, y), progress=False)
    axes = h.plot()
    assert len(axes) == 2
    assert [a.get_xlabel() for a in axes] == ["epoch", "epoch"]
    assert [a.get_ylabel() for a in axes] == ["loss", "accuracy"]
    assert [len(a.get_lines()) for a in axes] == [2, 2]
    np.testing.assert_allclose(axes[0].get_lines()[1].get_ydata(), h.history["val_loss"])
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["train", "validation"]
    fig, ax = plt.subplots()
    assert h.plot(ax=ax, keys="loss") == [ax] and len(ax.get_lines()) == 2
    fig2, ax2 = plt.subplots()
    h.plot(ax=ax2)                                            # everything on one Axes
    assert len(ax2.get_lines()) == 4 and ax2.get_xlabel() == "epoch"
    plt.close("all")


def test_history_plot_without_matplotlib_is_a_clear_error(monkeypatch):
    x, y = blobs(n=20)
    h = nn.fit(mlp(), x, y, epochs=1, progress=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        h.plot()
