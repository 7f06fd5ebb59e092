"""nn.Module: registration, walking, modes, weight dicts, checkpoints and repr."""

import gc
import os
import subprocess
import sys
import threading
import weakref

import numpy as np
import pytest

import pygrad
from pygrad import Parameter, Variable, backends, nn
from pygrad import functions as F


class NeuralNet(nn.Module):
    def __init__(self, num_input=6, num_hidden=5, num_class=3, dropout=0.5):
        super().__init__()
        self.fc1 = nn.Linear(num_input, num_hidden)
        self.fc2 = nn.Linear(num_hidden, num_class)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        return self.dropout(x)


def test_parameters_and_modules_register_in_definition_order():
    model = NeuralNet()
    assert [name for name, _ in model.named_params()] == ["fc1.W", "fc1.b", "fc2.W", "fc2.b"]
    assert list(model.params()) == list(model.parameters())
    assert all(isinstance(p, Parameter) and p.dtype == np.float32 for p in model.params())
    assert [type(m).__name__ for m in model.children()] == ["Linear", "Linear", "Dropout"]


def test_a_shared_parameter_is_listed_once():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].W = model[0].W
    assert len(list(model.params())) == 3


def test_reassigning_an_attribute_unregisters_it():
    model = NeuralNet()
    model.fc2 = None
    assert [name for name, _ in model.named_params()] == ["fc1.W", "fc1.b"]


def test_assigning_a_layer_again_keeps_its_place_in_the_order():
    model = NeuralNet()
    model.fc1 = nn.Linear(6, 5)
    assert [name for name, _ in model.named_params()] == ["fc1.W", "fc1.b", "fc2.W", "fc2.b"]
    assert repr(model).index("(fc1)") < repr(model).index("(fc2)")


def test_train_and_eval_reach_every_sub_module():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(0.5)))
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_dropout_is_identity_in_eval_mode(rng):
    model = NeuralNet(dropout=0.9).eval()
    x = rng.standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(model(x).data, model(x).data)


def test_grads_reach_every_parameter_and_zero_grad_clears_them(rng):
    model = NeuralNet(dropout=0.0)
    loss = F.sum(model(rng.standard_normal((4, 6)).astype(np.float32)) ** 2)
    loss.backward()
    for name, param in model.named_params():
        assert param.grad is not None, name
        assert param.grad.dtype == np.float32
        assert param.grad.shape == param.shape
    model.zero_grad()
    assert all(p.grad is None for p in model.params())


def test_weight_dict_is_nested_by_layer():
    model = NeuralNet()
    weights = model.weight_dict()
    assert list(weights) == ["fc1", "fc2"]
    assert set(weights["fc1"]) == {"W", "b"}
    assert weights["fc1"]["W"].shape == (6, 5)


def test_load_weight_dict_round_trip(rng):
    source, target = NeuralNet(), NeuralNet()
    report = target.load_weight_dict(source.weight_dict())
    assert report.missing_keys == report.unexpected_keys == report.mismatched == []
    for (name, a), (_, b) in zip(source.named_params(), target.named_params()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_load_weight_dict_strict_errors_name_the_parameter_and_both_shapes():
    model = NeuralNet()
    weights = model.weight_dict()
    weights["fc1"]["W"] = np.zeros((7, 5), np.float32)
    with pytest.raises(ValueError, match=r"fc1\.W.*\(6, 5\).*\(7, 5\)"):
        model.load_weight_dict(weights)
    weights = model.weight_dict()
    del weights["fc2"]["b"]
    with pytest.raises(KeyError, match=r"fc2\.b"):
        model.load_weight_dict(weights)
    weights = model.weight_dict()
    weights["fc3"] = {"W": np.zeros(2, np.float32)}
    with pytest.raises(KeyError, match=r"fc3\.W"):
        model.load_weight_dict(weights)


def test_load_weight_dict_non_strict_loads_what_matches_and_reports_the_rest():
    model = NeuralNet()
    weights = model.weight_dict()
    new_w = np.full((6, 5), 0.25, np.float32)
    weights = {"fc1": {"W": new_w, "b": np.zeros(9, np.float32)}, "extra": {"x": np.ones(1)}}
    report = model.load_weight_dict(weights, strict=False)
    np.testing.assert_array_equal(model.fc1.W.data, new_w)
    assert report.missing_keys == ["fc2.W", "fc2.b"]
    assert report.unexpected_keys == ["extra.x"]
    assert [m[0] for m in report.mismatched] == ["fc1.b"]


def test_save_and_load_round_trip_exactly(tmp_path):
    model, other = NeuralNet(), NeuralNet()
    model.save(tmp_path / "ckpt" / "model")
    path = tmp_path / "ckpt" / "model.npy"
    assert path.exists()
    np.load(path, allow_pickle=False)
    other.load(path)
    for (name, a), (_, b) in zip(model.named_params(), other.named_params()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_map_parameters_replaces_data():
    model = NeuralNet()
    model.map_parameters(lambda data: data * 0)
    assert all(not p.data.any() for p in model.params())


def test_repr_is_a_tree_of_layers_with_sizes():
    text = repr(NeuralNet())
    assert text.splitlines()[0] == "NeuralNet("
    assert "(fc1): Linear(in_size=6, out_size=5, bias=True)" in text
    assert "(dropout): Dropout(dropout=0.5)" in text


def test_plot_traces_the_layer_calls_of_the_last_call_again(rng):
    model = NeuralNet()
    x = Variable(rng.standard_normal((2, 6)).astype(np.float32))
    y = model(x)
    trace = model._forward_trace()
    assert [(call.name, call.kind) for call in trace.calls] == [
        ("fc1", "Linear"),
        ("fc2", "Linear"),
        ("dropout", "Dropout"),
    ]
    assert trace.calls[0].input_shapes == ((2, 6),)
    assert trace.calls[1].output_shapes == ((2, 3),)
    assert trace.output_shapes == (y.shape,)
    assert [(tail, head) for tail, head, _ in trace.edges] == [
        ("in0", "layer0"),
        ("layer0", "layer1"),
        ("layer1", "layer2"),
        ("layer2", "out0"),
    ]
    assert trace.edges[1][2] == ("ReLU",)


def test_a_call_keeps_shapes_and_dtypes_but_no_variable(rng):
    model = NeuralNet()
    x = Variable(rng.standard_normal((4, 6)).astype(np.float32))
    y = model(x)
    inputs, outputs = weakref.ref(x), weakref.ref(y)
    (spec,), kwargs = model._last_call
    assert spec[1:] == ((4, 6), np.dtype(np.float32), "cpu") and kwargs == {}
    del x, y
    assert inputs() is None and outputs() is None


def test_a_layer_called_directly_is_freed_without_the_garbage_collector(rng):
    x = rng.standard_normal((3, 50)).astype(np.float32)
    gc.disable()
    try:
        layer = nn.Linear(50, 40)
        weights = weakref.ref(layer.W)
        layer(x)
        layer(Variable(x)).sum().backward()
        del layer
        assert weights() is None
    finally:
        gc.enable()


class Normalized(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 6)
        self.bn = nn.BatchNorm1d(6)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(6, 2)

    def forward(self, x):
        return self.out(self.dropout(F.relu(self.bn(self.fc(x)))))


@pytest.mark.parametrize("with_example", [False, True])
def test_plotting_changes_no_parameter_buffer_mode_or_random_state(rng, with_example):
    model = Normalized()
    x = rng.standard_normal((8, 4)).astype(np.float32) * 3 + 1
    model(x)  # trains: the running statistics move away from their start
    model.out.eval()  # modes of its own must survive, too
    before = {name: array.copy() for name, array in model._state_items()}
    modes = [module.training for module in model.modules()]
    random_state = np.random.get_state()[1].copy()
    trace = model._forward_trace(*([x] if with_example else []))
    assert [call.name for call in trace.calls] == ["fc", "bn", "dropout", "out"]
    for name, array in model._state_items():
        np.testing.assert_array_equal(array, before[name], err_msg=name)
    assert [module.training for module in model.modules()] == modes
    np.testing.assert_array_equal(np.random.get_state()[1], random_state)
    assert pygrad.Config.train is True and pygrad.Config.enable_backprop is True


def test_plot_before_any_call_asks_for_a_call_or_an_example_input():
    with pytest.raises(RuntimeError, match=r"call the model on an input first.*model\.plot\(x\)"):
        NeuralNet()._forward_trace()


def test_a_trace_in_one_thread_does_not_record_calls_of_another(rng):
    started, release = threading.Event(), threading.Event()

    class Waiting(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 5)

        def forward(self, x):
            started.set()
            assert release.wait(30)
            return self.fc(x)

    waiting, other = Waiting(), NeuralNet()
    traces = []
    thread = threading.Thread(target=lambda: traces.append(waiting._forward_trace(np.ones((2, 6)))))
    thread.start()
    try:
        assert started.wait(30)
        other(np.ones((3, 6), np.float32))  # while the trace is in progress in the thread
        assert other._last_call[0][0][1] == (3, 6)
    finally:
        release.set()
        thread.join(30)
    assert [call.name for call in traces[0].calls] == ["fc"]


def test_importing_nn_imports_neither_viz_nor_serialization():
    code = "import sys, pygrad.nn; print(sorted({'pygrad.viz', 'pygrad.serialization'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_load_reads_a_pygrad_0_1_0_checkpoint_and_ignores_its_dropout_rates(tmp_path):
    source = NeuralNet()
    legacy = source.weight_dict()
    legacy["dropout"] = {"dropout": np.array(0.5)}  # 0.1.0 stored the rate like a parameter
    np.save(tmp_path / "old.npy", legacy, allow_pickle=True)
    model = NeuralNet()
    model.load(tmp_path / "old.npy")
    for (name, a), (_, b) in zip(source.named_params(), model.named_params()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_load_casts_the_float64_weights_of_a_pygrad_0_1_0_checkpoint(tmp_path, rng):
    # 0.1.0 initialised weights with NumPy's default dtype, so its files hold float64.
    legacy = {
        "fc1": {"W": rng.standard_normal((6, 5)), "b": np.zeros(5)},
        "fc2": {"W": rng.standard_normal((5, 3)), "b": np.zeros(3)},
        "dropout": {"dropout": np.array(0.5)},
    }
    np.save(tmp_path / "old.npy", legacy, allow_pickle=True)
    model = NeuralNet()
    model.load(tmp_path / "old.npy")
    assert model.fc1.W.dtype == np.float32
    np.testing.assert_array_equal(model.fc1.W.data, legacy["fc1"]["W"].astype(np.float32))
    np.testing.assert_array_equal(model.fc2.W.data, legacy["fc2"]["W"].astype(np.float32))


def test_load_refuses_a_dtype_mismatch_in_a_checkpoint_of_its_own_format(tmp_path, rng):
    from pygrad.serialization import save_weights

    weights = NeuralNet().weight_dict()
    weights["fc1"]["W"] = weights["fc1"]["W"].astype(np.float64)
    save_weights(tmp_path / "model", weights)
    with pytest.raises(ValueError, match=r"fc1\.W.*float32.*float64"):
        NeuralNet().load(tmp_path / "model.npy")


def test_load_still_refuses_a_shape_mismatch_in_a_pygrad_0_1_0_checkpoint(tmp_path, rng):
    legacy = NeuralNet().weight_dict()
    legacy["fc1"]["W"] = rng.standard_normal((7, 5))
    np.save(tmp_path / "old.npy", legacy, allow_pickle=True)
    with pytest.raises(ValueError, match=r"fc1\.W.*\(6, 5\).*\(7, 5\)"):
        NeuralNet().load(tmp_path / "old.npy")


def test_optimizer_state_survives_a_checkpoint_round_trip(tmp_path, rng):
    from pygrad.serialization import load_state, save_state

    model = NeuralNet(dropout=0.0)
    optimizer = nn.optim.Adam(model.params(), lr=0.01)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    F.sum(model(x) ** 2).backward()
    optimizer.step()
    save_state(tmp_path / "optim", optimizer.state_dict())
    restored = nn.optim.Adam(NeuralNet().params(), lr=0.5)
    restored.load_state_dict(load_state(tmp_path / "optim.npy"))
    assert restored.lr == 0.01 and restored.steps == 1
    np.testing.assert_array_equal(restored.state[0]["exp_avg"], optimizer.state[0]["exp_avg"])


# --- checkpoints: bad entries, shards, memory-mapped loading, links -----------------------------
def params_equal(a, b):
    for (name, x), (_, y) in zip(a.named_params(), b.named_params()):
        np.testing.assert_array_equal(x.to("cpu").data, y.to("cpu").data, err_msg=name)


@pytest.mark.parametrize("bad", ["oops", None])
def test_load_of_a_0_1_0_checkpoint_with_a_non_array_weight_names_it(tmp_path, bad):
    legacy = NeuralNet().weight_dict()
    legacy["fc1"]["W"] = bad
    np.save(tmp_path / "old.npy", legacy, allow_pickle=True)
    with pytest.raises(ValueError, match=r"'fc1\.W' holds .*\(6, 5\)"):
        NeuralNet().load(tmp_path / "old.npy")


def test_load_reports_an_extra_0_d_field_as_an_unexpected_key(tmp_path):
    from pygrad.serialization import save_weights

    weights = NeuralNet().weight_dict()
    weights["extra"] = np.array(1.5)
    save_weights(tmp_path / "model", weights)
    with pytest.raises(KeyError, match="unexpected keys: extra"):
        NeuralNet().load(tmp_path / "model.npy")


def test_sharded_checkpoint_round_trips_through_save_and_load(tmp_path, monkeypatch, device):
    from pygrad import serialization

    monkeypatch.setattr(serialization, "RECORD_BYTES", 64)  # fc1.W alone is 120 bytes
    model, other = NeuralNet().to(device), NeuralNet().to(device)
    model.save(tmp_path / "model")
    assert len([name for name in os.listdir(tmp_path) if ".shard-" in name]) > 1
    other.load(tmp_path / "model.npy")
    params_equal(model, other)


@pytest.mark.parametrize("record_bytes", [2**31 - 2**20, 64])
def test_load_with_mmap_copies_the_file_into_the_parameters(
    tmp_path, monkeypatch, device, record_bytes
):
    from pygrad import serialization

    monkeypatch.setattr(serialization, "RECORD_BYTES", record_bytes)
    model, other = NeuralNet().to(device), NeuralNet().to(device)
    model.save(tmp_path / "model")
    other.load(tmp_path / "model.npy", mmap=True)
    params_equal(model, other)
    model.save(tmp_path / "model")  # the file can be replaced while the model lives on
    other.fc1.W.data += 1  # and the parameters are the model's own


def test_save_over_a_symlink_keeps_the_link(tmp_path):
    model = NeuralNet()
    model.save(tmp_path / "v1")
    (tmp_path / "latest.npy").symlink_to(tmp_path / "v1.npy")
    model.fc1.W.data[...] = 7
    model.save(tmp_path / "latest.npy")
    assert (tmp_path / "latest.npy").is_symlink()
    other = NeuralNet()
    other.load(tmp_path / "v1.npy")
    params_equal(model, other)


class Paired(nn.Module):
    """Takes a pair of inputs and a keyword argument, as recurrent and attention layers do."""

    def __init__(self):
        super().__init__()
        self.left = nn.Linear(3, 2)
        self.right = nn.Linear(4, 2)

    def forward(self, pair, *, scale=1.0):
        return F.log(F.exp(self.left(pair[0]) + self.right(pair[1])) * scale)


def test_plot_rebuilds_tuple_arguments_and_keyword_arguments_of_the_last_call(rng):
    model = Paired()
    pair = (Variable(rng.standard_normal((5, 3)).astype(np.float32)), np.ones((5, 4), np.float32))
    with np.errstate(divide="ignore"):
        model(pair, scale=0.0)  # log(0): the stand-in pass must not warn about it either
    with np.errstate(all="raise"):
        trace = model._forward_trace()
    assert [(call.name, call.input_shapes) for call in trace.calls] == [
        ("left", ((5, 3),)),
        ("right", ((5, 4),)),
    ]
    assert trace.input_shapes == ((5, 3), (5, 4)) and trace.output_shapes == ((5, 2),)
    assert sorted(edge[:2] for edge in trace.edges) == [
        ("in0", "layer0"),
        ("in1", "layer1"),
        ("layer0", "out0"),
        ("layer1", "out0"),
    ]


def test_plot_of_a_model_on_opencl_traces_there_and_changes_no_buffer(opencl, rng):
    model = Normalized().to(opencl)
    x = Variable(rng.standard_normal((8, 4)).astype(np.float32), device=opencl)
    model(x)
    before = {name: backends.to_host(array).copy() for name, array in model._state_items()}
    trace = model._forward_trace()
    assert trace.calls[1].name == "bn" and trace.input_shapes == ((8, 4),)
    for name, array in model._state_items():
        np.testing.assert_array_equal(backends.to_host(array), before[name], err_msg=name)
