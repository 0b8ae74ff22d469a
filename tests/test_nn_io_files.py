"""Model files: ``nn.save`` of a Module, nested checkpoints and a JSON metadata block
without pickle, and the refusals of what a weights file cannot hold (issue 14, item 7;
the dtype and damaged-file refusals are in test_nn_defects.py)."""
import json
import zipfile

import numpy as np
import pytest

import autodiff as ad
from autodiff import nn


def test_save_a_module_with_metadata(tmp_path):
    nn.init.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    path = tmp_path / "m.npz"
    meta = {"class": "Sequential", "config": {"sizes": [3, 4], "eps": 1e-5}, "epoch": 7,
            "note": None, "tags": ("a", "b")}
    nn.save(model, path, metadata=meta)
    state, got = nn.load(path, with_metadata=True)
    assert list(state) == list(model.state_dict())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(state[k], v)
    assert got == dict(meta, tags=["a", "b"])               # JSON: tuples come back as lists
    assert nn.load_metadata(path) == got
    with np.load(path, allow_pickle=False) as z:            # a plain .npz for NumPy too
        assert set(z.files) == set(state) | {"__autodiff__.json"}
        np.testing.assert_array_equal(z["0.weight"], state["0.weight"])
    # without metadata, a flat state dict is exactly np.savez's layout
    nn.save(model, tmp_path / "plain.npz")
    with zipfile.ZipFile(tmp_path / "plain.npz") as zf:
        assert sorted(zf.namelist()) == sorted(k + ".npy" for k in state)
    assert nn.load_metadata(tmp_path / "plain.npz") == {}


def test_nested_round_trip_keeps_types(tmp_path):
    obj = {"a": {0: np.arange(3), 1: {"x": np.float64(2.5)}}, "b": [np.ones(2), 3, "s"],
           "c": (True, None, 1.5), "d": {}}
    nn.save(obj, tmp_path / "n.npz")
    back = nn.load(tmp_path / "n.npz")
    assert list(back["a"]) == [0, 1] and type(back["a"][1]["x"]) is np.float64
    np.testing.assert_array_equal(back["a"][0], np.arange(3))
    assert back["b"][1:] == [3, "s"] and back["c"] == (True, None, 1.5) and back["d"] == {}


@pytest.mark.parametrize("obj,err,match", [
    ({1: np.zeros(1)}, TypeError, "keys must be strings"),
    ({"a": {True: np.zeros(1)}}, TypeError, "keys must be strings"),
    ({"a": {(1, 2): np.zeros(1)}}, TypeError, "keys must be strings"),
    ({"a/b": np.zeros(1)}, ValueError, "path separator"),
    ({"a": {"b\\c": np.zeros(1)}}, ValueError, "path separator"),
    ({"a": {0: np.zeros(1), "0": np.ones(1)}}, ValueError, "both named"),
    ({"a": {"f": print}}, TypeError, "'a/f' holds a builtin_function_or_method"),
    ({"a": {1, 2}}, TypeError, "holds a set"),
    ({"obj": np.array([None], dtype=object)}, TypeError, "object arrays"),
    ({"c": {"z": np.ones(2, complex)}}, TypeError, "complex"),
    ([np.zeros(1)], TypeError, "expected a state dict"),
])
def test_save_refuses_what_a_weights_file_cannot_hold(tmp_path, obj, err, match):
    with pytest.raises(err, match=match):
        nn.save(obj, tmp_path / "bad.npz")
    assert not (tmp_path / "bad.npz").exists()


def test_save_refuses_tracked_values_but_takes_parameters(tmp_path):
    p = nn.Parameter(np.ones(3))
    nn.save({"p": p, "plain": ad.Variable(np.zeros(2), requires_grad=False)},
            tmp_path / "ok.npz")
    np.testing.assert_array_equal(nn.load(tmp_path / "ok.npz")["p"], np.ones(3))
    with pytest.raises(TypeError, match="tracked value.*save its .value"):
        nn.save({"y": p * 2.0}, tmp_path / "bad.npz")           # computed on the tape

    def f(w):
        nn.save({"w": w}, tmp_path / "bad.npz")                 # a value inside ad.grad
        return np.sum(w)
    with pytest.raises(TypeError, match="tracked value"):
        ad.grad(f)(np.ones(2))
    with pytest.raises(TypeError, match="tracked value"):
        nn.save({"d": ad.Dual(np.ones(2), np.ones(2))}, tmp_path / "bad.npz")


@pytest.mark.parametrize("meta,match", [({1: "a"}, "keys must be strings"),
                                        ({"a": np.zeros(2)}, "holds a ndarray"),
                                        ("epoch 3", "must be a dict")])
def test_save_refuses_metadata_that_is_not_json(tmp_path, meta, match):
    with pytest.raises(TypeError, match=match):
        nn.save({"w": np.zeros(1)}, tmp_path / "m.npz", metadata=meta)


def _rewrite_structure(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "__autodiff__.json":
                data = edit(data)
                if data is None:
                    continue
            zout.writestr(info, data)


@pytest.mark.parametrize("edit,match", [
    (lambda b: b"{not json", "not a readable JSON block"),
    (lambda b: json.dumps({"format": "other"}).encode(), "not a structure block"),
    (lambda b: b.replace(b'"a": "w"', b'"a": "missing"'), "does not hold"),
    (lambda b: b.replace(b'"a": "w"', b'"v": 1'), "not in it"),
    (lambda b: b.replace(b'"d"', b'"q"'), "malformed"),
    (lambda b: json.dumps({"format": "autodiff.nn.save", "version": 1, "tree": None,
                           "metadata": [1]}).encode(), "metadata is not a dict"),
])
def test_load_refuses_a_structure_that_does_not_match(tmp_path, edit, match):
    good = tmp_path / "good.npz"
    nn.save({"w": np.zeros(2), "epoch": 1}, good)
    bad = tmp_path / "bad.npz"
    _rewrite_structure(good, bad, edit)
    with pytest.raises(ValueError, match=match):
        nn.load(bad)
