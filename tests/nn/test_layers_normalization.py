"""Normalisation and lookup layers: BatchNorm1d, BatchNorm2d, LayerNorm and Embedding."""

import numpy as np
import pytest

import pygrad
from pygrad import Variable, nn
from pygrad import functions as F


def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _backward_weighted_sum(y, weights):
    F.sum(y * weights).backward()


def _torch_backward_weighted_sum(torch, y, weights):
    (y * torch.from_numpy(weights)).sum().backward()


TOL = dict(rtol=1e-4, atol=1e-5)


# --- BatchNorm ----------------------------------------------------------------------------------
BATCH_NORM_CASES = [
    (nn.BatchNorm1d, (16, 3)),
    (nn.BatchNorm1d, (4, 3, 5)),
    (nn.BatchNorm2d, (4, 3, 5, 6)),
]


def _channel_axes(shape):
    return (0,) + tuple(range(2, len(shape)))


def _as_channel_shape(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


@pytest.mark.parametrize("layer_cls, shape", BATCH_NORM_CASES)
def test_batch_norm_in_training_normalises_with_batch_statistics(layer_cls, shape, rng):
    layer = layer_cls(3)
    x = 3 * _randn(rng, *shape) + 2
    y = layer(x)
    assert y.shape == shape and y.dtype == np.float32
    axes = _channel_axes(shape)
    np.testing.assert_allclose(y.data.mean(axis=axes), 0, atol=1e-5)
    np.testing.assert_allclose(y.data.var(axis=axes), 1, rtol=1e-3)


@pytest.mark.parametrize("layer_cls, shape", BATCH_NORM_CASES)
def test_batch_norm_updates_running_statistics_in_training(layer_cls, shape, rng):
    layer = layer_cls(3, momentum=0.1)
    assert layer.running_mean.dtype == np.float32 and layer.running_var.dtype == np.float32
    x = 3 * _randn(rng, *shape) + 2
    layer(x)
    axes = _channel_axes(shape)
    np.testing.assert_allclose(layer.running_mean, 0.1 * x.mean(axis=axes), **TOL)
    # The running variance takes the unbiased batch variance, as in PyTorch.
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * x.var(axis=axes, ddof=1), **TOL)


@pytest.mark.parametrize("layer_cls, shape", BATCH_NORM_CASES)
def test_batch_norm_in_eval_uses_and_keeps_the_running_statistics(layer_cls, shape, rng):
    layer = layer_cls(3)
    layer.running_mean[...] = [1.0, -2.0, 0.5]
    layer.running_var[...] = [4.0, 0.25, 1.0]
    layer.gamma.data[...] = [1.0, 2.0, -1.0]
    layer.beta.data[...] = [0.0, 1.0, 3.0]
    x = _randn(rng, *shape)
    ndim = len(shape)
    mean, var = _as_channel_shape(layer.running_mean, ndim), _as_channel_shape(
        layer.running_var, ndim
    )
    gamma = _as_channel_shape(layer.gamma.data, ndim)
    beta = _as_channel_shape(layer.beta.data, ndim)
    expected = (x - mean) / np.sqrt(var + layer.eps) * gamma + beta
    layer.eval()
    np.testing.assert_allclose(layer(x).data, expected, **TOL)
    layer.train()
    with pygrad.test_mode():
        np.testing.assert_allclose(layer(x).data, expected, **TOL)
    np.testing.assert_array_equal(layer.running_mean, [1.0, -2.0, 0.5])
    np.testing.assert_array_equal(layer.running_var, [4.0, 0.25, 1.0])


@pytest.mark.parametrize("layer_cls, shape", BATCH_NORM_CASES)
def test_batch_norm_grads_reach_every_parameter(layer_cls, shape, rng):
    layer = layer_cls(3)
    x = Variable(_randn(rng, *shape))
    _backward_weighted_sum(layer(x), _randn(rng, *shape))
    for name, param in layer.named_params():
        assert param.grad is not None and param.grad.shape == (3,), name
        assert param.grad.dtype == np.float32, name
    assert x.grad.shape == shape and x.grad.dtype == np.float32


def test_batch_norm_weight_dict_holds_the_running_statistics_and_loads_them(rng):
    layer = nn.BatchNorm2d(3)
    layer(_randn(rng, 4, 3, 2, 2) + 1)
    weights = layer.weight_dict()
    assert list(weights) == ["gamma", "beta", "running_mean", "running_var"]
    assert [name for name, _ in layer.named_params()] == ["gamma", "beta"]
    fresh = nn.BatchNorm2d(3)
    fresh.load_weight_dict(weights)
    np.testing.assert_array_equal(fresh.running_mean, layer.running_mean)
    np.testing.assert_array_equal(fresh.running_var, layer.running_var)


def test_batch_norm_rejects_wrong_input_shapes(rng):
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input of shape \(N, 3\) or"):
        nn.BatchNorm1d(3)(_randn(rng, 4, 5))
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input of shape \(N, 3, H, W\)"):
        nn.BatchNorm2d(3)(_randn(rng, 4, 3, 5))
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(3)(_randn(rng, 1, 3))
    nn.BatchNorm1d(3).eval()(_randn(rng, 1, 3))  # one sample is fine with running statistics
    with pytest.raises(ValueError, match=r"BatchNorm2d: momentum must be in \(0, 1\]"):
        nn.BatchNorm2d(3, momentum=0)


def test_batch_norm_repr():
    assert repr(nn.BatchNorm2d(16)) == "BatchNorm2d(16, eps=1e-05, momentum=0.1)"


@pytest.mark.parametrize(
    "layer_cls, torch_name, shape",
    [
        (nn.BatchNorm1d, "BatchNorm1d", (8, 3)),
        (nn.BatchNorm1d, "BatchNorm1d", (4, 3, 5)),
        (nn.BatchNorm2d, "BatchNorm2d", (4, 3, 5, 6)),
    ],
)
def test_batch_norm_matches_torch_in_training_and_eval(torch, rng, layer_cls, torch_name, shape):
    layer = layer_cls(3, momentum=0.2)
    reference = getattr(torch.nn, torch_name)(3, momentum=0.2)
    gamma, beta = _randn(rng, 3), _randn(rng, 3)
    layer.gamma.data[...], layer.beta.data[...] = gamma, beta
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(gamma))
        reference.bias.copy_(torch.from_numpy(beta))
    for _ in range(2):  # two steps, so the running statistics accumulate
        x_np = 2 * _randn(rng, *shape) + 1
        weights = _randn(rng, *shape)
        layer.zero_grad()
        reference.zero_grad()
        x = Variable(x_np)
        y = layer(x)
        _backward_weighted_sum(y, weights)
        x_ref = torch.tensor(x_np, requires_grad=True)
        y_ref = reference(x_ref)
        _torch_backward_weighted_sum(torch, y_ref, weights)
        np.testing.assert_allclose(y.data, y_ref.detach().numpy(), **TOL)
        np.testing.assert_allclose(x.grad.data, x_ref.grad.numpy(), **TOL)
        np.testing.assert_allclose(layer.gamma.grad.data, reference.weight.grad.numpy(), **TOL)
        np.testing.assert_allclose(layer.beta.grad.data, reference.bias.grad.numpy(), **TOL)
        np.testing.assert_allclose(layer.running_mean, reference.running_mean.numpy(), **TOL)
        np.testing.assert_allclose(layer.running_var, reference.running_var.numpy(), **TOL)
    layer.eval()
    reference.eval()
    x_np = _randn(rng, *shape)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x_np)).numpy()
    np.testing.assert_allclose(layer(x_np).data, expected, **TOL)


# --- LayerNorm ----------------------------------------------------------------------------------
def test_layer_norm_normalises_the_last_axis(rng):
    layer = nn.LayerNorm(6)
    x = 3 * _randn(rng, 2, 4, 6) + 1
    y = layer(x)
    assert y.shape == (2, 4, 6) and y.dtype == np.float32
    np.testing.assert_allclose(y.data.mean(axis=-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.data.var(axis=-1), 1, rtol=1e-3)
    assert nn.LayerNorm((6,)).normalized_shape == 6


def test_layer_norm_grads_reach_every_parameter(rng):
    layer = nn.LayerNorm(5)
    _backward_weighted_sum(layer(_randn(rng, 3, 5)), _randn(rng, 3, 5))
    for name, param in layer.named_params():
        assert param.grad is not None and param.grad.shape == (5,), name
        assert param.grad.dtype == np.float32, name


def test_layer_norm_rejects_wrong_shapes(rng):
    with pytest.raises(ValueError, match=r"LayerNorm: expected input of shape \(\.\.\., 6\)"):
        nn.LayerNorm(6)(_randn(rng, 2, 5))
    with pytest.raises(ValueError, match="LayerNorm: only normalisation over the last axis"):
        nn.LayerNorm((4, 6))


def test_layer_norm_repr():
    assert repr(nn.LayerNorm(8)) == "LayerNorm(8, eps=1e-05)"


def test_layer_norm_matches_torch(torch, rng):
    layer = nn.LayerNorm(6)
    reference = torch.nn.LayerNorm(6)
    gamma, beta = _randn(rng, 6), _randn(rng, 6)
    layer.gamma.data[...], layer.beta.data[...] = gamma, beta
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(gamma))
        reference.bias.copy_(torch.from_numpy(beta))
    x_np, weights = _randn(rng, 2, 3, 6), _randn(rng, 2, 3, 6)
    x = Variable(x_np)
    y = layer(x)
    _backward_weighted_sum(y, weights)
    x_ref = torch.tensor(x_np, requires_grad=True)
    y_ref = reference(x_ref)
    _torch_backward_weighted_sum(torch, y_ref, weights)
    np.testing.assert_allclose(y.data, y_ref.detach().numpy(), **TOL)
    np.testing.assert_allclose(x.grad.data, x_ref.grad.numpy(), **TOL)
    np.testing.assert_allclose(layer.gamma.grad.data, reference.weight.grad.numpy(), **TOL)
    np.testing.assert_allclose(layer.beta.grad.data, reference.bias.grad.numpy(), **TOL)


# --- Embedding ----------------------------------------------------------------------------------
def test_embedding_looks_up_rows_for_ids_of_any_shape():
    layer = nn.Embedding(10, 4)
    assert layer.W.shape == (10, 4) and layer.W.dtype == np.float32
    ids = np.array([[1, 2, 3], [3, 0, 9]])
    y = layer(ids)
    assert y.shape == (2, 3, 4) and y.dtype == np.float32
    np.testing.assert_array_equal(y.data, layer.W.data[ids])
    assert layer(np.array(7)).shape == (4,)


def test_embedding_grad_accumulates_over_repeated_ids(rng):
    layer = nn.Embedding(5, 3)
    ids = np.array([1, 3, 1, 1])
    weights = _randn(rng, 4, 3)
    _backward_weighted_sum(layer(ids), weights)
    expected = np.zeros((5, 3), np.float32)
    np.add.at(expected, ids, weights)
    assert layer.W.grad.dtype == np.float32
    np.testing.assert_allclose(layer.W.grad.data, expected, rtol=1e-6)


def test_embedding_starts_standard_normal_like_torch():
    np.random.seed(0)
    layer = nn.Embedding(1000, 100)
    assert abs(layer.W.data.std() - 1) < 0.02


def test_embedding_rejects_bad_sizes_and_bad_ids():
    with pytest.raises(ValueError, match="Embedding: sizes must be positive"):
        nn.Embedding(0, 4)
    layer = nn.Embedding(5, 3)
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 5\)"):
        layer(np.array([0, 5]))
    with pytest.raises(TypeError, match="expected integer ids"):
        layer(np.array([0.5]))


def test_embedding_repr():
    assert repr(nn.Embedding(10, 4)) == "Embedding(10, 4)"


def test_embedding_matches_torch(torch, rng):
    layer = nn.Embedding(7, 3)
    reference = torch.nn.Embedding(7, 3)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(layer.W.data))
    ids = np.array([[0, 6, 2], [2, 2, 5]])
    weights = _randn(rng, 2, 3, 3)
    y = layer(ids)
    _backward_weighted_sum(y, weights)
    y_ref = reference(torch.from_numpy(ids))
    _torch_backward_weighted_sum(torch, y_ref, weights)
    np.testing.assert_allclose(y.data, y_ref.detach().numpy(), **TOL)
    np.testing.assert_allclose(layer.W.grad.data, reference.weight.grad.numpy(), **TOL)


# --- devices ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make_layer, shape",
    [
        (lambda: nn.BatchNorm1d(3), (4, 3, 5)),
        (lambda: nn.BatchNorm2d(3), (4, 3, 2, 3)),
        (lambda: nn.LayerNorm(5), (2, 3, 5)),
    ],
    ids=["BatchNorm1d", "BatchNorm2d", "LayerNorm"],
)
def test_normalization_layers_on_a_device_match_the_cpu(device, make_layer, shape, rng):
    cpu_layer, layer = make_layer(), make_layer().to(device)
    x, weights = 2 * _randn(rng, *shape) + 1, _randn(rng, *shape)
    y_cpu = cpu_layer(Variable(x))
    _backward_weighted_sum(y_cpu, weights)
    y = layer(Variable(x, device=device))
    _backward_weighted_sum(y, Variable(weights, device=device))
    expected_device = pygrad.backends.parse_device(device)
    assert y.device == expected_device and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), y_cpu.data, **TOL)
    for (name, param), param_cpu in zip(layer.named_params(), cpu_layer.params()):
        assert param.grad.device == expected_device and param.grad.dtype == np.float32, name
        np.testing.assert_allclose(param.grad.numpy(), param_cpu.grad.data, **TOL)
    # The running statistics live on the device, are updated there, and are used in eval.
    for name, value in cpu_layer.weight_dict().items():
        np.testing.assert_allclose(layer.weight_dict()[name], value, **TOL, err_msg=name)
    x_eval = _randn(rng, *shape)
    np.testing.assert_allclose(
        layer.eval()(Variable(x_eval, device=device)).numpy(),
        cpu_layer.eval()(x_eval).data,
        **TOL,
    )


def test_embedding_on_a_device_matches_the_cpu(device, rng):
    cpu_layer = nn.Embedding(6, 3)
    layer = nn.Embedding(6, 3)
    layer.load_weight_dict(cpu_layer.weight_dict())
    layer.to(device)
    ids, weights = np.array([[1, 5], [1, 0]]), _randn(rng, 2, 2, 3)
    y_cpu = cpu_layer(ids)
    _backward_weighted_sum(y_cpu, weights)
    y = layer(Variable(ids, device=device))
    _backward_weighted_sum(y, Variable(weights, device=device))
    assert y.device == layer.W.grad.device == pygrad.backends.parse_device(device)
    np.testing.assert_allclose(y.numpy(), y_cpu.data, **TOL)
    np.testing.assert_allclose(layer.W.grad.numpy(), cpu_layer.W.grad.data, **TOL)
