"""The digits examples (scikit-learn's bundled ``load_digits``, no download) reach the
accuracies they promise on the fixed 25 % test split: the MLP ≥ 97 %, the CNN ≥ 98 %.

Both runs are the examples' full training (seed 0), fast enough for the suite: the MLP
takes about 1-2 s (40 epochs, test accuracy 0.9822), the CNN about 3-5 s on 2 cores
(30 epochs, 0.9911); under heavy CPU contention it has taken up to ~15 s. The thresholds are
the issue's; the measured accuracies leave 1-1.2 points of margin."""
import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest

from autodiff import nn

pytest.importorskip("sklearn")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_split_is_fixed_and_scaled():
    mlp = load_example("digits_mlp")
    x_train, x_test, y_train, y_test = mlp.load()
    assert x_train.shape == (1347, 64) and x_test.shape == (450, 64)
    assert x_train.min() == 0.0 and x_train.max() == 1.0
    assert np.bincount(y_test).min() >= 43                       # stratified: 43-46 per class
    x2 = mlp.load()[1]
    np.testing.assert_array_equal(x_test, x2)


def test_digits_mlp_reaches_97_percent():
    mlp = load_example("digits_mlp")
    t0 = time.perf_counter()
    acc, model, history = mlp.train(seed=0, progress=False, return_model=True)
    elapsed = time.perf_counter() - t0
    assert acc >= 0.97, f"MLP test accuracy {acc:.4f} < 0.97 ({elapsed:.1f} s)"
    assert history.history["val_accuracy"][-1] == pytest.approx(acc)
    assert len(history.history["loss"]) == mlp.EPOCHS
    assert history.history["lr"][0] == pytest.approx(3e-3)       # the schedule ran
    assert model.training                                        # fit restores the mode


@pytest.mark.skipif(not all(hasattr(nn, n) for n in ("Conv2d", "MaxPool2d", "BatchNorm2d")),
                    reason="nn.Conv2d/MaxPool2d/BatchNorm2d not there yet")
def test_digits_cnn_reaches_98_percent():
    cnn = load_example("digits_cnn")
    t0 = time.perf_counter()
    acc, model, history = cnn.train(seed=0, progress=False, return_model=True)
    elapsed = time.perf_counter() - t0
    assert acc >= 0.98, f"CNN test accuracy {acc:.4f} < 0.98 ({elapsed:.1f} s)"
    assert sum(p.value.size for p in model.parameters()) < 2500  # small, as promised
    assert history.history["val_accuracy"][-1] == pytest.approx(acc)
