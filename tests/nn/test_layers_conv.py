"""Convolution and pooling layers: Conv2d, ConvTranspose2d, MaxPool2d and AvgPool2d."""

import math

import numpy as np
import pytest

import pygrad
from pygrad import Variable, nn
from pygrad import functions as F


def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _compare_with_torch(torch, layer, reference, x_np, rng, weight_map=(), **forward_kwargs):
    """Run ``layer`` and the torch module on ``x_np``; compare outputs and the grads of the input
    and of each ``(our parameter name, torch parameter name)`` in ``weight_map``."""
    x = Variable(x_np)
    y = layer(x, **forward_kwargs)
    weights = _randn(rng, *y.shape)
    F.sum(y * weights).backward()
    x_ref = torch.tensor(x_np, requires_grad=True)
    y_ref = reference(x_ref)
    (y_ref * torch.from_numpy(weights)).sum().backward()
    tol = dict(rtol=1e-4, atol=1e-5)
    assert y.shape == tuple(y_ref.shape)
    np.testing.assert_allclose(y.data, y_ref.detach().numpy(), **tol)
    np.testing.assert_allclose(x.grad.data, x_ref.grad.numpy(), **tol)
    params = dict(reference.named_parameters())
    for ours, theirs in weight_map:
        np.testing.assert_allclose(
            getattr(layer, ours).grad.data, params[theirs].grad.numpy(), **tol
        )


def _copy_conv_weights(torch, layer, reference):
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(layer.W.data))
        reference.bias.copy_(torch.from_numpy(layer.b.data))


# --- Conv2d -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kernel_size, stride, pad, out_hw",
    [(3, 1, 0, (5, 6)), (3, 1, 1, (7, 8)), (3, 2, 1, (4, 4)), ((3, 2), (2, 1), (0, 1), (3, 9))],
)
def test_conv2d_output_shape(kernel_size, stride, pad, out_hw, rng):
    layer = nn.Conv2d(3, 5, kernel_size, stride=stride, pad=pad)
    y = layer(_randn(rng, 2, 3, 7, 8))
    assert y.shape == (2, 5, *out_hw)
    assert y.dtype == np.float32


def test_conv2d_parameters_are_float32_with_he_init():
    np.random.seed(0)
    layer = nn.Conv2d(64, 128, 3)
    assert layer.W.shape == (128, 64, 3, 3) and layer.b.shape == (128,)
    assert layer.W.dtype == np.float32 and layer.b.dtype == np.float32
    assert abs(layer.W.data.std() / math.sqrt(2 / (64 * 9)) - 1) < 0.03
    assert not layer.b.data.any()
    assert nn.Conv2d(3, 4, 3, bias=False).b is None


def test_conv2d_grads_reach_every_parameter(rng):
    layer = nn.Conv2d(2, 3, 3, pad=1)
    x = Variable(_randn(rng, 2, 2, 5, 5))
    F.sum(layer(x) * _randn(rng, 2, 3, 5, 5)).backward()
    for name, param in layer.named_params():
        assert param.grad is not None and param.grad.shape == param.shape, name
        assert param.grad.dtype == np.float32, name
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32


def test_conv2d_rejects_wrong_input_shapes(rng):
    layer = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"Conv2d: expected input of shape \(N, 3, H, W\)"):
        layer(_randn(rng, 3, 8, 8))
    with pytest.raises(ValueError, match=r"got shape \(1, 2, 8, 8\)"):
        layer(_randn(rng, 1, 2, 8, 8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(kernel_size=0), "kernel_size must be an int or a pair of ints, each at least 1"),
        (dict(kernel_size=(3, 3, 3)), "kernel_size must be"),
        (dict(kernel_size=3, stride=0), "stride must be"),
        (dict(kernel_size=3, pad=-1), "pad must be an int or a pair of ints, each at least 0"),
        (dict(kernel_size=3.0), "kernel_size must be"),
    ],
)
def test_conv2d_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=f"Conv2d: {message}"):
        nn.Conv2d(3, 4, **kwargs)


def test_conv2d_repr():
    assert repr(nn.Conv2d(1, 16, 3, pad=1)) == (
        "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1), pad=(1, 1), bias=True)"
    )


@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 1)])
def test_conv2d_matches_torch(torch, rng, stride, pad):
    layer = nn.Conv2d(3, 4, (3, 2), stride=stride, pad=pad)
    layer.b.data[...] = _randn(rng, 4)
    reference = torch.nn.Conv2d(3, 4, (3, 2), stride=stride, padding=pad)
    _copy_conv_weights(torch, layer, reference)
    _compare_with_torch(
        torch, layer, reference, _randn(rng, 2, 3, 7, 6), rng, [("W", "weight"), ("b", "bias")]
    )


# --- ConvTranspose2d ----------------------------------------------------------------------------
def test_conv_transpose2d_output_shape_and_parameters(rng):
    layer = nn.ConvTranspose2d(4, 2, 3, stride=2, pad=1)
    assert layer.W.shape == (4, 2, 3, 3) and layer.W.dtype == np.float32
    assert layer.b.shape == (2,)
    y = layer(_randn(rng, 3, 4, 5, 6))
    # (in - 1) * stride + kernel - 2 * pad
    assert y.shape == (3, 2, 9, 11) and y.dtype == np.float32
    assert layer(_randn(rng, 3, 4, 5, 6), outsize=(10, 12)).shape == (3, 2, 10, 12)


def test_conv_transpose2d_grads_reach_every_parameter(rng):
    layer = nn.ConvTranspose2d(2, 3, 2, stride=2)
    y = layer(_randn(rng, 2, 2, 3, 3))
    F.sum(y * _randn(rng, *y.shape)).backward()
    for name, param in layer.named_params():
        assert param.grad is not None and param.grad.shape == param.shape, name
        assert param.grad.dtype == np.float32, name


def test_conv_transpose2d_rejects_wrong_input_shapes(rng):
    with pytest.raises(
        ValueError, match=r"ConvTranspose2d: expected input of shape \(N, 4, H, W\)"
    ):
        nn.ConvTranspose2d(4, 2, 3)(_randn(rng, 1, 3, 5, 5))


def test_conv_transpose2d_repr():
    assert repr(nn.ConvTranspose2d(8, 4, 2, stride=2, bias=False)) == (
        "ConvTranspose2d(8, 4, kernel_size=(2, 2), stride=(2, 2), pad=(0, 0), bias=False)"
    )


@pytest.mark.parametrize(
    "stride, pad, outsize, output_padding", [(1, 0, None, 0), (2, 1, None, 0), (2, 1, (10, 12), 1)]
)
def test_conv_transpose2d_matches_torch(torch, rng, stride, pad, outsize, output_padding):
    layer = nn.ConvTranspose2d(3, 2, 3, stride=stride, pad=pad)
    layer.b.data[...] = _randn(rng, 2)
    reference = torch.nn.ConvTranspose2d(
        3, 2, 3, stride=stride, padding=pad, output_padding=output_padding
    )
    _copy_conv_weights(torch, layer, reference)
    _compare_with_torch(
        torch,
        layer,
        reference,
        _randn(rng, 2, 3, 5, 6),
        rng,
        [("W", "weight"), ("b", "bias")],
        outsize=outsize,
    )


# --- pooling ------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer_cls", [nn.MaxPool2d, nn.AvgPool2d])
def test_pooling_output_shape_and_default_stride(layer_cls, rng):
    x = Variable(_randn(rng, 2, 3, 8, 7))
    assert layer_cls(2)(x).shape == (2, 3, 4, 3)
    assert layer_cls(3, stride=1, pad=1)(x).shape == (2, 3, 8, 7)
    y = layer_cls((2, 3), stride=(2, 1))(x)
    assert y.shape == (2, 3, 4, 5) and y.dtype == np.float32
    y.backward()
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32
    assert list(layer_cls(2).params()) == []


def test_max_pool2d_takes_the_window_maximum(rng):
    x = _randn(rng, 2, 3, 4, 6)
    expected = x.reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).data, expected)


def test_avg_pool2d_takes_the_window_mean(rng):
    x = _randn(rng, 2, 3, 4, 6)
    expected = x.reshape(2, 3, 2, 2, 3, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(nn.AvgPool2d(2)(x).data, expected, rtol=1e-6)


@pytest.mark.parametrize("layer_cls", [nn.MaxPool2d, nn.AvgPool2d])
def test_pooling_rejects_wrong_input_shapes_and_settings(layer_cls, rng):
    name = layer_cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(N, C, H, W\)"):
        layer_cls(2)(_randn(rng, 3, 8, 8))
    with pytest.raises(ValueError, match=f"{name}: kernel_size must be"):
        layer_cls(0)


def test_pooling_repr():
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2), pad=(0, 0))"
    assert repr(nn.AvgPool2d(3, 1, 1)) == "AvgPool2d(kernel_size=(3, 3), stride=(1, 1), pad=(1, 1))"


@pytest.mark.parametrize("kernel_size, stride, pad", [(2, None, 0), (3, 2, 1)])
def test_max_pool2d_matches_torch(torch, rng, kernel_size, stride, pad):
    reference = torch.nn.MaxPool2d(kernel_size, stride=stride, padding=pad)
    layer = nn.MaxPool2d(kernel_size, stride=stride, pad=pad)
    _compare_with_torch(torch, layer, reference, _randn(rng, 2, 3, 7, 8), rng)


@pytest.mark.parametrize("kernel_size, stride, pad", [(2, None, 0), (3, 2, 1)])
def test_avg_pool2d_matches_torch(torch, rng, kernel_size, stride, pad):
    reference = torch.nn.AvgPool2d(kernel_size, stride=stride, padding=pad, count_include_pad=True)
    layer = nn.AvgPool2d(kernel_size, stride=stride, pad=pad)
    _compare_with_torch(torch, layer, reference, _randn(rng, 2, 3, 7, 8), rng)


# --- devices ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make_layer",
    [
        lambda: nn.Conv2d(2, 3, 3, stride=2, pad=1),
        lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, pad=1),
        lambda: nn.MaxPool2d(2),
        lambda: nn.AvgPool2d(3, stride=2, pad=1),
    ],
    ids=["Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d"],
)
def test_conv_layers_on_a_device_match_the_cpu(device, make_layer, rng):
    layer = make_layer()
    x = _randn(rng, 2, 2, 6, 5)

    def forward_backward(x):
        y = layer(x)
        F.sum(y * y).backward()
        return y, {name: param.grad for name, param in layer.named_params()}

    y_cpu, grads_cpu = forward_backward(Variable(x))
    layer.zero_grad()
    layer.to(device)
    y, grads = forward_backward(Variable(x, device=device))
    expected_device = pygrad.backends.parse_device(device)
    assert y.device == expected_device and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), y_cpu.data, rtol=1e-4, atol=1e-5)
    for name, grad in grads.items():
        assert grad.device == expected_device and grad.dtype == np.float32, name
        np.testing.assert_allclose(grad.numpy(), grads_cpu[name].data, rtol=1e-4, atol=1e-5)


# =============================================================================================
# an empty batch
# =============================================================================================
@pytest.mark.parametrize(
    "make, out_shape",
    [
        (lambda: nn.Conv2d(3, 2, 3), (0, 2, 6, 6)),
        (lambda: nn.Conv2d(3, 2, 3, stride=2, pad=1), (0, 2, 4, 4)),
        (lambda: nn.ConvTranspose2d(3, 2, 3), (0, 2, 10, 10)),
        (lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, pad=1), (0, 2, 15, 15)),
    ],
    ids=["conv", "conv-strided", "transposed", "transposed-strided"],
)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_convolutions_of_an_empty_batch_give_an_empty_output_and_zero_grads(
    device, make, out_shape, train
):
    layer = make().to(device)
    layer.train(train)
    x = Variable(np.zeros((0, 3, 8, 8), np.float32), device=device)
    y = layer(x)
    assert y.shape == out_shape and y.dtype == np.float32 and y.device == x.device
    F.sum(y).backward()
    assert x.grad.shape == x.shape
    for param in layer.params():
        assert param.grad.shape == param.shape
        np.testing.assert_array_equal(param.grad.numpy(), 0)
