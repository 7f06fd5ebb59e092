"""Tests for pygrad/serialization.py: pickle-free checkpoints, legacy files, safety, atomicity."""

import os
import pickle
import signal
import stat
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from pygrad import Variable, serialization
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


# --- checkpoints of any size: shards --------------------------------------------------------------
@pytest.fixture
def small_records(monkeypatch):
    """Records of at most 64 bytes, so that small arrays exercise what 2 GiB ones need."""
    monkeypatch.setattr(serialization, "RECORD_BYTES", 64)


def shard_files(folder):
    return sorted(name for name in os.listdir(folder) if ".shard-" in name)


def test_weights_beyond_one_record_go_to_shards_and_round_trip(tmp_path, small_records):
    weights = {
        "a": np.arange(8, dtype=np.float32),  # 32 bytes
        "b": np.arange(4, dtype=np.float64),  # 32 bytes: a and b fill one record
        "big": np.arange(20, dtype=np.int64),  # 160 bytes: a plain-array shard of its own
        "c": {"d": np.array([True, False]), "e": np.array(3, np.int16)},
    }
    path = save_weights(tmp_path / "model", weights)
    shards = shard_files(tmp_path)
    assert len(shards) == 3 and all(name.startswith("model.shard-") for name in shards)
    assert_same_tree(load_weights(path), weights)
    index = np.load(path, allow_pickle=False)
    assert index.dtype.names == ("shard", "weight")
    assert list(index["shard"]) == shards and list(index["weight"]) == ["", "big", ""]
    # Every shard is a .npy that NumPy reads without pickle.
    np.testing.assert_array_equal(np.load(tmp_path / shards[1], allow_pickle=False), np.arange(20))
    assert np.load(tmp_path / shards[0], allow_pickle=False).dtype.names == ("a", "b")


def test_sharded_checkpoint_loads_after_the_limit_is_back(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "RECORD_BYTES", 16)
    path = save_weights(tmp_path / "m", sample_weights())
    monkeypatch.undo()
    assert_same_tree(load_weights(path), sample_weights())


def test_saving_again_replaces_the_old_shards(tmp_path, small_records):
    path = save_weights(tmp_path / "m", {"a": np.zeros(10), "b": np.zeros(10)})
    first = shard_files(tmp_path)
    save_weights(path, {"a": np.ones(10), "b": np.ones(10)})
    second = shard_files(tmp_path)
    assert len(second) == 2 and not set(first) & set(second)
    np.testing.assert_array_equal(load_weights(path)["b"], np.ones(10))
    save_weights(path, {"a": np.ones(2)})  # fits one record again: no shards
    assert shard_files(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["m.npy"]


def test_failed_sharded_save_keeps_the_old_checkpoint_whole(tmp_path, small_records, monkeypatch):
    path = save_weights(tmp_path / "m", {"a": np.zeros(10), "b": np.zeros(10)})
    before = {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)}
    real_replace = os.replace

    def fail_on_the_index(source, target):
        if os.path.basename(target) == "m.npy":
            raise OSError("disk full")
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", fail_on_the_index)
    with pytest.raises(OSError, match="disk full"):
        save_weights(path, {"a": np.ones(10), "b": np.ones(10)})
    assert {name: (tmp_path / name).read_bytes() for name in os.listdir(tmp_path)} == before
    np.testing.assert_array_equal(load_weights(path)["a"], np.zeros(10))


def test_state_files_shard_too(tmp_path, small_records):
    state = {"steps": 3, "m": np.arange(30.0), "v": np.arange(30.0)}
    loaded = load_state(save_state(tmp_path / "opt", state))
    assert loaded["steps"] == 3
    np.testing.assert_array_equal(loaded["v"], state["v"])


def test_records_keep_their_header_under_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "MAX_HEADER_BYTES", 4096)
    weights = {f"layer{i}": {"W": np.full(2, i, np.float32)} for i in range(300)}
    path = save_weights(tmp_path / "many", weights)
    assert len(shard_files(tmp_path)) > 1
    loaded = load_weights(path)
    assert len(loaded) == 300 and loaded["layer299"]["W"][0] == 299


def test_save_streams_the_arrays_without_a_second_copy_in_memory(tmp_path):
    weights = {f"w{i}": np.full(250_000, i, np.float32) for i in range(8)}  # 8 MB in all
    tracemalloc.start()
    try:
        save_weights(tmp_path / "m", weights)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    assert load_weights(tmp_path / "m")["w7"][0] == 7


def test_saved_file_is_byte_identical_to_numpy_s_own(tmp_path):
    weights = {"a": np.arange(6.0).reshape(2, 3), "b": np.array([1, 2], np.int8)}
    path = save_weights(tmp_path / "m", weights)
    record = np.zeros((), [("a", np.float64, (2, 3)), ("b", np.int8, (2,))])
    record["a"], record["b"] = weights["a"], weights["b"]
    np.save(tmp_path / "numpy.npy", record)
    assert path.read_bytes() == (tmp_path / "numpy.npy").read_bytes()


# --- memory-mapped loading ------------------------------------------------------------------------
@pytest.mark.parametrize("record_bytes", [serialization.RECORD_BYTES, 64])
def test_mmap_load_gives_read_only_views_of_the_file(tmp_path, monkeypatch, record_bytes):
    monkeypatch.setattr(serialization, "RECORD_BYTES", record_bytes)
    weights = {"W": np.arange(40, dtype=np.float32).reshape(8, 5), "e": np.zeros((0, 2))}
    path = save_weights(tmp_path / "m", weights)
    loaded = load_weights(path, mmap=True)
    np.testing.assert_array_equal(loaded["W"], weights["W"])
    assert loaded["e"].shape == (0, 2)
    assert not loaded["W"].flags.writeable
    assert isinstance(loaded["W"].base, np.memmap) or isinstance(loaded["W"].base.base, np.memmap)


# --- hostile files are refused fast -----------------------------------------------------------
def refused_fast(path, match, load=load_weights):
    started = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        load(path)
    assert time.perf_counter() - started < 2


def test_legacy_file_with_shared_nesting_is_refused_fast(tmp_path):
    nested = {"W": np.ones(2)}
    for _ in range(60):  # 2**60 paths through 61 dicts
        nested = {"a": nested, "b": nested}
    np.save(tmp_path / "shared.npy", nested, allow_pickle=True)
    assert (tmp_path / "shared.npy").stat().st_size < 2000
    refused_fast(tmp_path / "shared.npy", "shared or cyclic nesting")


def test_legacy_file_with_a_dict_that_contains_itself_is_refused(tmp_path):
    nested = {"W": np.ones(2)}
    nested["self"] = nested
    np.save(tmp_path / "cycle.npy", nested, allow_pickle=True)
    refused_fast(tmp_path / "cycle.npy", "shared or cyclic nesting")


def test_legacy_file_nested_too_deeply_is_refused(tmp_path):
    nested = {"W": np.ones(2)}
    for _ in range(100):
        nested = {"a": nested}
    np.save(tmp_path / "deep.npy", nested, allow_pickle=True)
    refused_fast(tmp_path / "deep.npy", "nested")


def write_header(path, descr, shape=(), data=b""):
    with open(path, "wb") as file:
        serialization._write_array_header(
            file, {"descr": descr, "fortran_order": False, "shape": shape}
        )
        file.write(data)


def test_huge_header_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "fields.npy"
    fields = ", ".join(f"('f{i}', '<f4')" for i in range(10**6))
    header = f"{{'descr': [{fields}], 'fortran_order': False, 'shape': (), }}\n".encode()
    with open(path, "wb") as file:  # a version 2.0 header, as np.save would write
        file.write(b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header)
        file.write(bytes(4 * 10**6))
    assert path.stat().st_size > 18 * 10**6
    refused_fast(path, "header has .* bytes, more than")
    refused_fast(path, "header has .* bytes, more than", load=load_state)


@pytest.mark.parametrize(
    "descr",
    [
        "[" * 200_000 + "]" * 200_000,  # NumPy's reader retries this with a slow tokenizer
        "[('W', '<f4', (" + "9" * 100_000 + ",))]",
        "'<f4', 'shape': " + "(1," * 3000 + ")" * 3000,
        "[('W', '<f4', (-1,))]",
    ],
)
def test_header_that_does_not_parse_is_refused_fast(tmp_path, descr):
    header = f"{{'descr': {descr}, 'fortran_order': False, 'shape': ()}}\n".encode()
    with open(tmp_path / "odd.npy", "wb") as file:
        file.write(b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header)
    refused_fast(tmp_path / "odd.npy", r"unreadable \.npy header \(.+\)")


def test_record_with_too_many_fields_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "MAX_FIELDS", 10)
    write_header(tmp_path / "f.npy", [(f"f{i}", "<f4") for i in range(11)], data=bytes(44))
    refused_fast(tmp_path / "f.npy", "more than 10 fields")


def test_record_that_claims_more_data_than_the_file_has_is_refused_without_allocating(tmp_path):
    write_header(tmp_path / "claim.npy", [("W", "<f4", (2**28,))])
    refused_fast(tmp_path / "claim.npy", "truncated")
    refused_fast(tmp_path / "claim.npy", "truncated", load=lambda p: load_weights(p, mmap=True))


def test_deeply_dotted_names_are_refused(tmp_path):
    write_header(tmp_path / "dots.npy", [(".".join("a" * 100), "<f4")], data=bytes(4))
    refused_fast(tmp_path / "dots.npy", "nested more than")


def test_legacy_pickle_that_allocates_a_huge_array_is_refused(tmp_path):
    class Allocates:
        def __reduce__(self):
            return (np.ndarray, ((2**40,), np.dtype(np.float64)))

    np.save(tmp_path / "alloc.npy", {"W": Allocates()}, allow_pickle=True)
    refused_fast(tmp_path / "alloc.npy", "alloc.npy is not a pygrad checkpoint")


def test_index_naming_files_outside_its_folder_is_refused(tmp_path):
    for shard in ["../m.npy", "/etc/passwd.npy", ".hidden.npy"]:
        index = np.array([(shard, "")], dtype=[("shard", "U32"), ("weight", "U8")])
        np.save(tmp_path / "index.npy", index)
        refused_fast(tmp_path / "index.npy", "not a file beside it")


def test_index_naming_one_shard_twice_is_refused(tmp_path, small_records):
    save_weights(tmp_path / "m", {"a": np.zeros(10), "b": np.zeros(10)})
    index = np.load(tmp_path / "m.npy")
    index["shard"][1] = index["shard"][0]
    np.save(tmp_path / "m.npy", index)
    refused_fast(tmp_path / "m.npy", "names a shard twice")


def test_too_many_leaves_in_a_legacy_file_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "MAX_LEAVES", 5)
    np.save(tmp_path / "many.npy", {f"w{i}": np.ones(1) for i in range(6)}, allow_pickle=True)
    refused_fast(tmp_path / "many.npy", "more than 5 values")


# --- leftovers of killed saves ------------------------------------------------------------------
def test_a_later_save_removes_the_temporary_files_of_interrupted_ones(tmp_path):
    path = save_weights(tmp_path / "model", {"W": np.ones(3)})
    leftovers = [
        ".model.npy.abcd1234.tmp",
        ".model.npy.z_9y8x7w.tmp",
        "model.shard-0123456789ab-00001-of-00002.npy",
        ".model.shard-0123456789ab-00002-of-00002.npy.k2k2k2k2.tmp",
    ]
    others = [".other.npy.abcd1234.tmp", "model.npy.bak", ".model.npy.notmine", "notes.txt"]
    old = time.time() - 60
    for name in leftovers + others:
        (tmp_path / name).write_bytes(b"x" * 10)
        os.utime(tmp_path / name, (old, old))
    (tmp_path / ".model.npy.newer000.tmp").write_bytes(b"a save still running")
    future = time.time() + 60
    os.utime(tmp_path / ".model.npy.newer000.tmp", (future, future))
    save_weights(path, {"W": np.zeros(3)})
    assert sorted(os.listdir(tmp_path)) == sorted(["model.npy", ".model.npy.newer000.tmp"] + others)


KILLED_SAVE = """
import sys, numpy as np
from pygrad.serialization import save_weights
weights = {f"w{i}": np.full(2_000_000, i, np.float32) for i in range(8)}
print("saving", flush=True)
while True:
    save_weights(sys.argv[1], weights)
"""


def test_killed_saves_keep_the_old_file_and_a_later_save_cleans_up(tmp_path):
    path = save_weights(tmp_path / "model", {"W": np.arange(3.0)})
    script = tmp_path / "save_forever.py"
    script.write_text(KILLED_SAVE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for delay in (0.05, 0.2, 0.4):
        process = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "other" / "model.npy")],
            stdout=subprocess.PIPE,
            env=env,
        )
        process.stdout.readline()
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
    # The other target folder may hold temp files now; a save there removes them.
    other = tmp_path / "other" / "model.npy"
    if other.exists():
        assert sorted(load_weights(other)) == [f"w{i}" for i in range(8)]
    time.sleep(0.01)
    save_weights(other, {"W": np.ones(1)})
    assert os.listdir(tmp_path / "other") == ["model.npy"]
    np.testing.assert_array_equal(load_weights(path)["W"], np.arange(3.0))


# --- symbolic links -----------------------------------------------------------------------------
def test_saving_over_a_symlink_writes_through_it_atomically(tmp_path):
    (tmp_path / "store").mkdir()
    real = save_weights(tmp_path / "store" / "model-v1", {"W": np.zeros(2)})
    link = tmp_path / "latest.npy"
    link.symlink_to(real)
    assert save_weights(link, {"W": np.ones(2)}) == link
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(load_weights(real)["W"], np.ones(2))
    assert sorted(os.listdir(tmp_path)) == ["latest.npy", "store"]
    assert os.listdir(tmp_path / "store") == ["model-v1.npy"]


def test_sharded_save_over_a_symlink_puts_the_shards_beside_the_target(tmp_path, small_records):
    (tmp_path / "store").mkdir()
    link = tmp_path / "latest.npy"
    link.symlink_to(tmp_path / "store" / "model.npy")  # dangling until the first save
    save_weights(link, {"a": np.zeros(10), "b": np.arange(10.0)})
    assert link.is_symlink() and len(shard_files(tmp_path / "store")) == 2
    np.testing.assert_array_equal(load_weights(link)["b"], np.arange(10.0))
    np.testing.assert_array_equal(load_weights(link, mmap=True)["b"], np.arange(10.0))


# --- multi-GiB checkpoints (pytest -m large) ------------------------------------------------------
@pytest.mark.large
def test_weights_beyond_2_gib_save_and_load(tmp_path):
    # 2 x 300M float32 (2.4 GB): one record's item size would overflow a C int.
    weights = {name: np.empty(300_000_000, np.float32) for name in ("W1", "W2")}
    for index, array in enumerate(weights.values()):
        array[::1_000_000] = index + 1
        array[-1] = -(index + 1)
    tracemalloc.start()
    try:
        path = save_weights(tmp_path / "huge", weights)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000_000  # no second copy of the weights
    assert len(shard_files(tmp_path)) == 2
    for mmap in (True, False):
        loaded = load_weights(path, mmap=mmap)
        for name, array in weights.items():
            assert loaded[name].shape == array.shape
            np.testing.assert_array_equal(loaded[name][::1_000_000], array[::1_000_000])
            assert loaded[name][-1] == array[-1]
        del loaded


@pytest.mark.large
def test_three_weights_of_1_5_gb_save_and_load(tmp_path):
    # 3 x 375M float32 used to crash the save; two never fit one record, so each gets a shard.
    weights = {f"W{i}": np.full(375_000_000, i, np.float32) for i in range(3)}
    path = save_weights(tmp_path / "huge", weights)
    assert len(shard_files(tmp_path)) == 3
    del weights
    loaded = load_weights(path, mmap=True)
    assert [loaded[f"W{i}"][-1] for i in range(3)] == [0, 1, 2]


@pytest.mark.large
def test_one_weight_beyond_2_gib_saves_as_a_plain_array_shard(tmp_path):
    weights = {"b": np.ones(3, np.float32), "W": np.empty(600_000_000, np.float32)}  # 2.4 GB
    weights["W"][::1_000_000] = 5
    path = save_weights(tmp_path / "huge", weights)
    index = np.load(path, allow_pickle=False)
    assert list(index["weight"]) == ["", "W"]
    shard = np.load(tmp_path / index["shard"][1], mmap_mode="r", allow_pickle=False)
    assert shard.shape == (600_000_000,) and shard[1_000_000] == 5
    del shard
    loaded = load_weights(path)
    assert loaded["W"].flags.writeable and loaded["W"][-1_000_000] == 5
    np.testing.assert_array_equal(loaded["b"], np.ones(3))
