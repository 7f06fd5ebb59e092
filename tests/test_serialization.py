"""Tests for pygrad/serialization.py: pickle-free checkpoints, legacy files, safety, atomicity."""

import os
import pickle
import stat

import numpy as np
import pytest

from pygrad import Variable
from pygrad.serialization import (
    flatten_dict,
    load_state,
    load_weights,
    save_state,
    save_weights,
    unflatten_dict,
)


def sample_weights():
    rng = np.random.default_rng(0)
    return {
        "fc1": {
            "W": rng.standard_normal((4, 3)).astype(np.float32),
            "b": rng.standard_normal(3),
        },
        "embed": {"W": rng.integers(-5, 5, size=(2, 2, 2)).astype(np.int32)},
        "bn": {"num_batches": np.array(7, dtype=np.int64), "mask": np.array([True, False])},
        "empty": np.zeros((0, 3), np.float32),
    }


def assert_same_tree(actual, expected):
    assert list(actual) == list(expected)
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_same_tree(actual[key], value)
        else:
            assert actual[key].dtype == value.dtype and actual[key].shape == value.shape
            np.testing.assert_array_equal(actual[key], value)


# --- the pickle-free format --------------------------------------------------------------------
def test_save_and_load_weights_round_trip_exactly(tmp_path):
    weights = sample_weights()
    path = save_weights(tmp_path / "model.npy", weights)
    assert_same_tree(load_weights(path), weights)


def test_saved_checkpoint_loads_with_numpy_without_pickle(tmp_path):
    weights = sample_weights()
    path = save_weights(tmp_path / "model", weights)
    record = np.load(path, allow_pickle=False)
    assert record.dtype.names == ("fc1.W", "fc1.b", "embed.W", "bn.num_batches", "bn.mask", "empty")
    np.testing.assert_array_equal(record["fc1.W"], weights["fc1"]["W"])
    assert record["fc1.W"].dtype == np.float32


def test_save_weights_appends_npy_and_creates_parent_folders(tmp_path):
    path = save_weights(tmp_path / "runs" / "ckpt" / "model", {"W": np.ones(2)})
    assert path == tmp_path / "runs" / "ckpt" / "model.npy"
    assert path.is_file()
    assert save_weights(str(path), {"W": np.ones(2)}) == path
    assert sorted(os.listdir(path.parent)) == ["model.npy"]


def test_load_weights_finds_the_npy_file_from_the_name_given_to_save(tmp_path):
    save_weights(tmp_path / "model", {"W": np.ones(2)})
    np.testing.assert_array_equal(load_weights(tmp_path / "model")["W"], np.ones(2))


def test_save_weights_file_is_readable_like_any_new_file(tmp_path):
    path = save_weights(tmp_path / "model", {"W": np.ones(2)})
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(probe.stat().st_mode)


def test_save_weights_takes_variables_and_device_arrays(tmp_path):
    class DeviceArray:
        """Stands in for an accelerator array: what the backend protocol asks of one."""

        xp = object()
        device_name = "other:0"

        def get(self):
            return np.arange(3, dtype=np.float32)

    path = save_weights(tmp_path / "m", {"a": Variable(np.eye(2)), "b": DeviceArray()})
    loaded = load_weights(path)
    np.testing.assert_array_equal(loaded["a"], np.eye(2))
    assert loaded["b"].dtype == np.float32


def test_save_weights_accepts_dotted_keys(tmp_path):
    path = save_weights(tmp_path / "m", {"fc1.W": np.ones(2), "fc1.b": np.zeros(1)})
    assert list(load_weights(path)["fc1"]) == ["W", "b"]


@pytest.mark.parametrize("leaf", [np.array(["a", "b"]), np.array([object()]), "text"])
def test_save_weights_refuses_what_is_not_numbers(tmp_path, leaf):
    with pytest.raises(TypeError, match="'fc.W'"):
        save_weights(tmp_path / "m", {"fc": {"W": leaf}})
    assert not (tmp_path / "m.npy").exists()


def test_large_models_save_and_load(tmp_path):
    weights = {f"layer{i}": {"W": np.full((2, 2), i, np.float32)} for i in range(1500)}
    loaded = load_weights(save_weights(tmp_path / "big", weights))
    assert len(loaded) == 1500
    np.testing.assert_array_equal(loaded["layer1499"]["W"], weights["layer1499"]["W"])


def test_loaded_arrays_are_writable_and_independent(tmp_path):
    loaded = load_weights(save_weights(tmp_path / "m", sample_weights()))
    loaded["fc1"]["W"][...] = 0
    assert loaded["fc1"]["W"].flags.writeable and loaded["fc1"]["W"].flags.c_contiguous
    assert loaded["fc1"]["b"].any()


# --- pygrad 0.1.0 checkpoints ------------------------------------------------------------------
def legacy_checkpoint(path):
    """Write a checkpoint the way pygrad 0.1.0's Module.save did: np.save of a nested dict."""
    weights = {
        "fc1": {"W": np.arange(6.0).reshape(2, 3), "b": np.zeros(3)},
        "fc2": {"W": np.ones((3, 2), np.float32), "b": np.zeros(2, np.float32)},
        "dropout": {"dropout": np.array(0.5)},
        "rate": 0.25,
        "scalar": np.float64(1.5),
    }
    np.save(path, weights, allow_pickle=True)
    return weights


def test_pygrad_0_1_0_checkpoint_loads_with_its_dropout_rates(tmp_path):
    weights = legacy_checkpoint(tmp_path / "old.npy")
    loaded = load_weights(tmp_path / "old.npy")
    np.testing.assert_array_equal(loaded["fc1"]["W"], weights["fc1"]["W"])
    assert loaded["fc2"]["W"].dtype == np.float32
    assert float(loaded["dropout"]["dropout"]) == 0.5
    assert loaded["rate"] == 0.25 and loaded["scalar"] == 1.5


def test_checkpoint_pickled_by_numpy_1_loads(tmp_path):
    # NumPy 1.x wrote protocol-3 pickles that name numpy.core.multiarray.
    content = pickle.dumps(np.array({"W": np.arange(4.0)}, dtype=object), protocol=3)
    content = content.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in content
    with open(tmp_path / "np1.npy", "wb") as file:
        np.lib.format.write_array_header_1_0(
            file, {"descr": "|O", "fortran_order": False, "shape": ()}
        )
        file.write(content)
    np.testing.assert_array_equal(load_weights(tmp_path / "np1.npy")["W"], np.arange(4.0))


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class WritesAFile:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class CallsEval:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (eval, (f"open({str(self.marker)!r}, 'w')",))


@pytest.mark.parametrize(
    "payload, refused",
    [(RunsAShellCommand, "system"), (WritesAFile, "open"), (CallsEval, "builtins.eval")],
)
def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, payload, refused):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.npy"
    np.save(path, {"fc1": {"W": np.ones(2), "b": payload(marker)}}, allow_pickle=True)
    with pytest.raises(pickle.UnpicklingError, match=refused) as error:
        load_weights(path)
    assert "evil.npy" in str(error.value)
    assert not marker.exists()


def test_pickled_object_that_is_not_a_dict_is_refused(tmp_path):
    np.save(tmp_path / "list.npy", np.array([[1, 2], "x"], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="list.npy is not a pygrad checkpoint"):
        load_weights(tmp_path / "list.npy")


def test_legacy_leaf_that_is_not_an_array_or_plain_value_is_refused(tmp_path):
    np.save(tmp_path / "odd.npy", {"fc": {"W": [1, 2]}}, allow_pickle=True)
    with pytest.raises(ValueError, match="'fc.W' is a list"):
        load_weights(tmp_path / "odd.npy")


def test_truncated_legacy_pickle_is_a_value_error(tmp_path):
    legacy_checkpoint(tmp_path / "old.npy")
    content = (tmp_path / "old.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(content[: len(content) - 40])
    with pytest.raises(ValueError, match="cut.npy is not a pygrad checkpoint"):
        load_weights(tmp_path / "cut.npy")


# --- files that are neither format ------------------------------------------------------------
def write_plain_array(path):
    np.save(path, np.ones(3))


def write_text(path):
    path.write_bytes(b"not numpy at all")


def write_npz(path):
    with open(path, "wb") as file:
        np.savez(file, a=np.ones(2))


@pytest.mark.parametrize(
    "write, reason",
    [
        (write_plain_array, "one record of named arrays"),
        (write_text, "not a .npy file"),
        (write_npz, "not a .npy file"),
    ],
)
def test_a_file_that_is_neither_format_is_a_value_error_naming_it(tmp_path, write, reason):
    path = tmp_path / "other.npy"
    write(path)
    with pytest.raises(ValueError, match=f"other.npy is not a pygrad checkpoint.*{reason}"):
        load_weights(path)
    with pytest.raises(ValueError, match="other.npy is not a pygrad checkpoint"):
        load_state(path)


def test_truncated_record_is_a_value_error(tmp_path):
    path = save_weights(tmp_path / "m", sample_weights())
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="m.npy is not a pygrad checkpoint"):
        load_weights(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_weights(tmp_path / "nothing.npy")


# --- atomic writes ------------------------------------------------------------------------------
def test_failed_save_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = save_weights(tmp_path / "model", {"W": np.ones(3)})
    good = path.read_bytes()

    def crash_before_the_data_is_on_disk(descriptor):
        os.ftruncate(descriptor, 20)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash_before_the_data_is_on_disk)
    with pytest.raises(KeyboardInterrupt):
        save_weights(path, {"W": np.zeros(3)})
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["model.npy"]


def test_failed_rename_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = save_weights(tmp_path / "model", {"W": np.ones(3)})
    good = path.read_bytes()

    def refuse(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        save_weights(path, {"W": np.zeros(3)})
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["model.npy"]


def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", lambda source, target: (_ for _ in ()).throw(OSError()))
    with pytest.raises(OSError):
        save_state(tmp_path / "opt", {"steps": 1})
    assert os.listdir(tmp_path) == []


# --- optimizer state ----------------------------------------------------------------------------
def test_save_and_load_state_round_trip_arrays_and_plain_numbers(tmp_path):
    state = {
        "hyper": {"lr": 0.001, "nesterov": True, "beta_1": 0.9},
        "steps": 12,
        "state": {
            "0": {"m": np.arange(6.0, dtype=np.float32).reshape(2, 3)},
            "3": {"m": np.ones(2)},
        },
    }
    path = save_state(tmp_path / "opt", state)
    assert path.name == "opt.npy"
    loaded = load_state(path)
    assert loaded["hyper"] == {"lr": 0.001, "nesterov": True, "beta_1": 0.9}
    assert type(loaded["steps"]) is int and loaded["steps"] == 12
    assert type(loaded["hyper"]["nesterov"]) is bool
    assert_same_tree(loaded["state"], state["state"])
    assert np.load(path, allow_pickle=False)["steps"] == 12


def test_load_state_refuses_a_pickle(tmp_path):
    np.save(tmp_path / "opt.npy", {"steps": 3}, allow_pickle=True)
    with pytest.raises(ValueError, match="holds a pickle"):
        load_state(tmp_path / "opt.npy")


def test_save_state_refuses_values_that_are_not_numbers(tmp_path):
    with pytest.raises(TypeError, match="'hyper.name' is a str"):
        save_state(tmp_path / "opt", {"hyper": {"name": "adam"}})


# --- dict helpers ------------------------------------------------------------------------------
def test_flatten_and_unflatten_are_inverse():
    nested = {"fc1": {"W": 1, "b": 2}, "block": {"conv": {"W": 3}}, "scale": 4}
    flat = flatten_dict(nested)
    assert flat == {"fc1.W": 1, "fc1.b": 2, "block.conv.W": 3, "scale": 4}
    assert unflatten_dict(flat) == nested
    assert flatten_dict(flat) == flat


def test_flatten_dict_refuses_duplicate_names_and_non_string_keys():
    with pytest.raises(ValueError, match="'a.b' occurs twice"):
        flatten_dict({"a": {"b": 1}, "a.b": 2})
    with pytest.raises(TypeError, match="keys must be strings"):
        flatten_dict({0: np.ones(1)})


def test_unflatten_dict_refuses_a_name_that_is_also_a_prefix():
    with pytest.raises(ValueError, match="both a value and a prefix"):
        unflatten_dict({"a": 1, "a.b": 2})
    with pytest.raises(ValueError, match="both a value and a prefix"):
        unflatten_dict({"a.b": 2, "a": 1})
