"""Basic layers: Linear, Sequential, Flatten, Dropout, ReLU, Sigmoid and Tanh."""

import math
import re

import numpy as np
import pytest

import pygrad
from pygrad import Variable, nn
from pygrad import functions as F


def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _backward_weighted_sum(y, rng):
    """Backpropagate ``sum(y * r)`` for a fixed random ``r``; return ``r``."""
    weights = _randn(rng, *y.shape)
    F.sum(y * weights).backward()
    return weights


def _assert_grads_reach_every_parameter(layer):
    for name, param in layer.named_params():
        assert param.grad is not None, name
        assert param.grad.shape == param.shape, name
        assert param.grad.dtype == np.float32, name
        assert np.any(param.grad.data != 0), name


# --- Linear -------------------------------------------------------------------------------------
def test_linear_maps_the_last_axis_with_float32_parameters(rng):
    fc = nn.Linear(4, 3)
    assert fc.W.shape == (4, 3) and fc.b.shape == (3,)
    assert fc.W.dtype == np.float32 and fc.b.dtype == np.float32
    x = _randn(rng, 5, 4)
    y = fc(x)
    assert y.shape == (5, 3) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, x @ fc.W.data + fc.b.data, rtol=1e-6)
    assert fc(_randn(rng, 2, 7, 4)).shape == (2, 7, 3)


def test_linear_grads_reach_every_parameter(rng):
    fc = nn.Linear(4, 3)
    fc.b.data[...] = 0.5
    x = Variable(_randn(rng, 5, 4))
    _backward_weighted_sum(fc(x), rng)
    _assert_grads_reach_every_parameter(fc)
    assert x.grad.dtype == np.float32


def test_linear_without_bias_has_only_W(rng):
    fc = nn.Linear(4, 3, bias=False)
    assert fc.b is None
    assert [name for name, _ in fc.named_params()] == ["W"]
    x = _randn(rng, 2, 4)
    np.testing.assert_allclose(fc(x).data, x @ fc.W.data, rtol=1e-6)


def test_linear_init_has_he_std_and_zero_bias():
    np.random.seed(0)
    fc = nn.Linear(1000, 500)
    assert abs(fc.W.data.std() / math.sqrt(2 / 1000) - 1) < 0.02
    assert abs(fc.W.data.mean()) < 1e-3
    assert not fc.b.data.any()


def test_linear_rejects_a_wrong_input_size(rng):
    with pytest.raises(ValueError, match=r"Linear: expected input of shape \(\.\.\., 4\)"):
        nn.Linear(4, 3)(_randn(rng, 2, 5))
    with pytest.raises(ValueError, match="Linear: sizes must be positive"):
        nn.Linear(0, 3)


def test_linear_repr():
    assert repr(nn.Linear(4, 3)) == "Linear(in_size=4, out_size=3, bias=True)"
    assert repr(nn.Linear(4, 3, bias=False)) == "Linear(in_size=4, out_size=3, bias=False)"


def test_linear_matches_torch(torch, rng):
    fc = nn.Linear(6, 4)
    fc.b.data[...] = _randn(rng, 4)
    ref = torch.nn.Linear(6, 4)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(fc.W.data.T.copy()))
        ref.bias.copy_(torch.from_numpy(fc.b.data))
    x_np = _randn(rng, 3, 6)
    x = Variable(x_np)
    x_ref = torch.tensor(x_np, requires_grad=True)
    y = fc(x)
    weights = _backward_weighted_sum(y, rng)
    y_ref = ref(x_ref)
    (y_ref * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(y.data, y_ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.data, x_ref.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fc.W.grad.data, ref.weight.grad.numpy().T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fc.b.grad.data, ref.bias.grad.numpy(), rtol=1e-5, atol=1e-6)


# --- Sequential ---------------------------------------------------------------------------------
def test_sequential_applies_layers_in_order_and_names_them_by_position(rng):
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    assert [name for name, _ in model.named_params()] == ["0.W", "0.b", "2.W", "2.b"]
    x = _randn(rng, 3, 4)
    expected = model[2](model[1](model[0](x)))
    np.testing.assert_allclose(model(x).data, expected.data, rtol=1e-6)
    _backward_weighted_sum(model(x), rng)
    for name, param in model.named_params():
        assert param.grad is not None and param.grad.dtype == np.float32, name


def test_sequential_indexing_slicing_length_and_iteration():
    layers = [nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)]
    model = nn.Sequential(*layers)
    assert len(model) == 3
    assert list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2]
    tail = model[1:]
    assert isinstance(tail, nn.Sequential) and list(tail) == layers[1:]


def test_sequential_rejects_something_that_is_not_a_module():
    with pytest.raises(TypeError, match="Sequential: item 1 is a function, not a Module"):
        nn.Sequential(nn.ReLU(), F.relu)


def test_sequential_repr_is_a_tree():
    text = repr(nn.Sequential(nn.Linear(4, 8), nn.ReLU()))
    assert text == (
        "Sequential(\n" "  (0): Linear(in_size=4, out_size=8, bias=True)\n" "  (1): ReLU()\n" ")"
    )


# --- Flatten ------------------------------------------------------------------------------------
def test_flatten_keeps_the_batch_axis_and_passes_grads_back(rng):
    x = Variable(_randn(rng, 2, 3, 4, 5))
    y = nn.Flatten()(x)
    assert y.shape == (2, 60)
    np.testing.assert_array_equal(y.data, x.data.reshape(2, 60))
    y.backward()
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32
    assert repr(nn.Flatten()) == "Flatten()"


# --- Dropout ------------------------------------------------------------------------------------
def test_dropout_zeroes_about_rate_and_scales_the_rest_in_training():
    np.random.seed(0)
    x = np.ones(100_000, np.float32)
    y = nn.Dropout(0.3)(x)
    assert y.dtype == np.float32
    dropped = y.data == 0
    assert abs(dropped.mean() - 0.3) < 0.01
    np.testing.assert_allclose(y.data[~dropped], 1 / 0.7, rtol=1e-6)


def test_dropout_grad_flows_through_the_kept_elements_only():
    np.random.seed(1)
    x = Variable(np.ones((50, 40), np.float32))
    y = nn.Dropout(0.5)(x)
    y.backward()
    np.testing.assert_allclose(x.grad.data, y.data, rtol=1e-6)


def test_dropout_is_the_identity_in_eval_mode_and_in_test_mode(rng):
    x = _randn(rng, 20, 30)
    layer = nn.Dropout(0.9)
    with pygrad.test_mode():
        np.testing.assert_array_equal(layer(x).data, x)
    layer.eval()
    np.testing.assert_array_equal(layer(x).data, x)
    layer.train()
    assert (layer(x).data == 0).any()
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).data, x)


def test_dropout_rate_is_neither_a_parameter_nor_saved():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5))
    assert [name for name, _ in model.named_params()] == ["0.W", "0.b"]
    assert list(model.weight_dict()) == ["0"]


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rejects_a_rate_outside_zero_to_one(rate):
    with pytest.raises(ValueError, match=r"Dropout: the rate must be in \[0, 1\)"):
        nn.Dropout(rate)


@pytest.mark.parametrize("rate", ["0.5", True, None])
def test_dropout_rejects_a_rate_that_is_not_a_number(rate):
    with pytest.raises(TypeError, match="Dropout: the rate must be a number"):
        nn.Dropout(rate)


def test_dropout_repr():
    assert repr(nn.Dropout(0.25)) == "Dropout(dropout=0.25)"


# --- activations --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "layer, reference",
    [
        (nn.ReLU, lambda x: np.maximum(x, 0)),
        (nn.Sigmoid, lambda x: 1 / (1 + np.exp(-x))),
        (nn.Tanh, np.tanh),
    ],
)
def test_activation_layers_apply_their_function_elementwise(layer, reference, rng):
    x = Variable(_randn(rng, 3, 4))
    y = layer()(x)
    assert y.shape == (3, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, reference(x.data), rtol=1e-6, atol=1e-7)
    y.backward()
    assert x.grad.shape == (3, 4) and x.grad.dtype == np.float32
    assert repr(layer()) == f"{layer.__name__}()"


# --- devices ------------------------------------------------------------------------------------
def _forward_backward(layer, x):
    y = layer(x)
    F.sum(y * y).backward()
    return y, {name: param.grad for name, param in layer.named_params()}


@pytest.mark.parametrize(
    "make_layer, shape",
    [
        (lambda: nn.Linear(4, 3), (2, 4)),
        (lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), (3, 4)),
        (nn.Flatten, (2, 3, 2)),
        (nn.ReLU, (2, 3)),
        (nn.Sigmoid, (2, 3)),
        (nn.Tanh, (2, 3)),
    ],
    ids=["Linear", "Sequential", "Flatten", "ReLU", "Sigmoid", "Tanh"],
)
def test_basic_layers_on_a_device_match_the_cpu(device, make_layer, shape, rng):
    layer = make_layer()
    x = _randn(rng, *shape)
    y_cpu, grads_cpu = _forward_backward(layer, Variable(x))
    layer.zero_grad()
    layer.to(device)
    y, grads = _forward_backward(layer, Variable(x, device=device))
    expected_device = pygrad.backends.parse_device(device)
    assert y.device == expected_device and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), y_cpu.data, rtol=1e-5, atol=1e-6)
    for name, grad in grads.items():
        assert grad.device == expected_device and grad.dtype == np.float32, name
        np.testing.assert_allclose(grad.numpy(), grads_cpu[name].data, rtol=1e-5, atol=1e-6)


def test_dropout_on_a_device_zeroes_about_rate_there(device):
    x = Variable(np.ones(20_000, np.float32), device=device)
    y = nn.Dropout(0.3)(x)
    assert y.device == pygrad.backends.parse_device(device) and y.dtype == np.float32
    values = y.numpy()
    assert abs((values == 0).mean() - 0.3) < 0.02
    np.testing.assert_allclose(values[values != 0], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(nn.Dropout(0.3).eval()(x).numpy(), x.numpy())


# =============================================================================================
# sizes given to layer constructors
# =============================================================================================
_SIZED_LAYERS = {
    "Linear": lambda n: nn.Linear(n, 3),
    "Conv2d": lambda n: nn.Conv2d(3, n, 3),
    "ConvTranspose2d": lambda n: nn.ConvTranspose2d(n, 2, 3),
    "BatchNorm1d": lambda n: nn.BatchNorm1d(n),
    "BatchNorm2d": lambda n: nn.BatchNorm2d(n),
    "LayerNorm": lambda n: nn.LayerNorm(n),
    "Embedding": lambda n: nn.Embedding(10, n),
    "RNN": lambda n: nn.RNN(n, 4),
    "LSTM": lambda n: nn.LSTM(4, n),
    "GRU": lambda n: nn.GRU(n, 4),
}


@pytest.mark.parametrize("layer", list(_SIZED_LAYERS))
@pytest.mark.parametrize("size", [2.5, 4.0, "4", True, None], ids=repr)
def test_layer_sizes_of_the_wrong_type_are_refused_with_the_layer_and_value(layer, size):
    with pytest.raises(
        TypeError, match=rf"{layer}: \w+ must be an int, got {re.escape(repr(size))}"
    ):
        _SIZED_LAYERS[layer](size)


@pytest.mark.parametrize("layer", list(_SIZED_LAYERS))
def test_layer_sizes_that_are_not_positive_are_refused(layer):
    with pytest.raises(ValueError, match=rf"{layer}: sizes must be positive, got .*=0"):
        _SIZED_LAYERS[layer](0)


@pytest.mark.parametrize("layer", list(_SIZED_LAYERS))
def test_layer_sizes_accept_numpy_integers_as_python_ints(layer):
    module = _SIZED_LAYERS[layer](np.int64(4))
    assert all(type(p.data) is np.ndarray for p in module.params())


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: nn.Linear(4, 3), (2, 4)),
        (lambda: nn.Conv2d(3, 2, 3), (1, 3, 5, 5)),
        (lambda: nn.ConvTranspose2d(3, 2, 3), (1, 3, 5, 5)),
        (lambda: nn.MaxPool2d(2), (1, 3, 4, 4)),
        (lambda: nn.BatchNorm1d(4), (2, 4)),
        (lambda: nn.LayerNorm(4), (2, 4)),
        (lambda: nn.LSTM(4, 3), (2, 5, 4)),
        (lambda: nn.GRU(4, 3), (2, 5, 4)),
    ],
    ids=[
        "Linear",
        "Conv2d",
        "ConvTranspose2d",
        "MaxPool2d",
        "BatchNorm1d",
        "LayerNorm",
        "LSTM",
        "GRU",
    ],
)
def test_float_layers_refuse_complex_input_instead_of_dropping_its_imaginary_part(make, shape):
    layer = make()
    x = np.ones(shape, np.float32) + 1j * np.ones(shape, np.float32)
    with pytest.raises(TypeError, match=rf"{type(layer).__name__}: got complex input"):
        layer(x)
    layer(x.real.astype(np.float32))  # the real part alone is fine
