"""Tests of pygrad.functions.activation: sigmoid, relu, leaky_relu, elu, gelu, softplus,
softmax and log_softmax."""

import math

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from pygrad.functions.activation import normal_cdf_array
from tests._helpers import device_array, float_dtype, gradient_check_on, grads_with_graph, host


def away_from_zero(x, margin=0.05):
    """Move values off the kinks at 0 so finite differences do not straddle them."""
    return np.where(np.abs(x) < margin, np.sign(x) * margin + x, x) + (x == 0) * margin


def _np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_erf = np.vectorize(math.erf)

REFERENCES = {
    "sigmoid": (F.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    "relu": (F.relu, lambda x: np.maximum(x, 0)),
    "leaky_relu": (F.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x)),
    "elu": (F.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    "gelu": (F.gelu, lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "softplus": (F.softplus, lambda x: np.log1p(np.exp(x))),
    "softmax": (F.softmax, _np_softmax),
    "log_softmax": (F.log_softmax, lambda x: np.log(_np_softmax(x))),
}
SMOOTH = ["sigmoid", "elu", "gelu", "softplus", "softmax", "log_softmax"]


# --- forward, dtype -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_forward_matches_numpy_reference(name, float64_device, rng):
    function, reference = REFERENCES[name]
    x = rng.standard_normal((3, 5)) * 3
    y = function(Variable(x, device=float64_device))
    assert y.shape == x.shape and y.dtype == np.float64
    np.testing.assert_allclose(host(y), reference(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_keeps_float32_in_output_and_grad(name, device, rng):
    function, reference = REFERENCES[name]
    data = rng.standard_normal((4, 3)).astype(np.float32)
    x = Variable(data, device=device)
    y = function(x)
    assert y.dtype == np.float32 and y.device == x.device
    np.testing.assert_allclose(host(y), reference(data.astype(np.float64)), rtol=1e-5, atol=1e-6)
    weights = rng.standard_normal(y.shape).astype(np.float32)
    (y * Variable(weights, device=device)).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.device == x.device


def test_activation_accepts_arrays_and_keeps_shape_of_higher_rank_input(float64_device, rng):
    x = rng.standard_normal((2, 3, 4))
    for function, reference in REFERENCES.values():
        y = function(device_array(x, float64_device))
        assert isinstance(y, Variable) and y.shape == x.shape
        np.testing.assert_allclose(host(y), reference(x), rtol=1e-12, atol=1e-14)


def test_leaky_relu_and_elu_take_their_parameters(float64_device, rng):
    data = rng.standard_normal(10)
    x = Variable(data, device=float64_device)
    expected = np.where(data > 0, data, 0.01 * data)
    np.testing.assert_allclose(host(F.leaky_relu(x, slope=0.01)), expected)
    np.testing.assert_allclose(
        host(F.elu(x, alpha=2.5)), np.where(data > 0, data, 2.5 * np.expm1(data)), rtol=1e-12
    )


def test_softmax_and_log_softmax_take_an_axis(float64_device, rng):
    x = rng.standard_normal((3, 4, 2))
    v = Variable(x, device=float64_device)
    for axis in (0, 1, -1, (1, 2)):
        np.testing.assert_allclose(host(F.softmax(v, axis=axis)), _np_softmax(x, axis), rtol=1e-12)
        np.testing.assert_allclose(
            host(F.log_softmax(v, axis=axis)), np.log(_np_softmax(x, axis)), rtol=1e-12
        )
    assert gradient_check_on(float64_device, lambda v: F.softmax(v, axis=0), x)
    assert gradient_check_on(float64_device, lambda v: F.log_softmax(v, axis=(0, 2)), x)


def test_normal_cdf_matches_math_erfc_to_float64_precision(float64_device):
    x = np.concatenate([np.linspace(-30, 30, 6001), [0.0, 0.5, -0.7071, 5.6568, -5.6569]])
    expected = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    got = host(normal_cdf_array(device_array(x, float64_device)))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    grid = device_array(np.linspace(-8, 8, 1001), float64_device)
    assert np.all(np.diff(host(normal_cdf_array(grid))) >= 0)


def test_normal_cdf_is_clean_at_infinity_and_huge_inputs(float64_device):
    x = device_array(np.array([np.inf, -np.inf, 1e300, -1e300, 0.0]), float64_device)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(host(normal_cdf_array(x)), [1.0, 0.0, 1.0, 0.0, 0.5])


# --- gradients ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_grad_matches_finite_differences(name, device, rng):
    function = REFERENCES[name][0]
    x = away_from_zero(rng.standard_normal((3, 4)) * 2)
    assert gradient_check_on(device, function, x)


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_activation_second_order_grad_matches_finite_differences(name, device, rng):
    function = REFERENCES[name][0]
    x = away_from_zero(rng.standard_normal((2, 3)) * 2)
    assert gradient_check_on(device, grads_with_graph(function), x)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_piecewise_linear_activation_has_zero_second_derivative(name, device, rng):
    function = REFERENCES[name][0]
    x = Variable(away_from_zero(rng.standard_normal(6)).astype(np.float32), device=device)
    y = function(x)
    y.backward(create_graph=True)
    gx = x.grad
    x.clear_grad()
    gx.backward()
    # The first derivative is a constant mask: nothing flows back to x (or only zeros).
    assert x.grad is None or not np.any(host(x.grad))


def test_sigmoid_third_derivative_matches_closed_form(float64_device):
    data = np.linspace(-3, 3, 7)
    x = Variable(data, device=float64_device)
    y = F.sigmoid(x)
    for _ in range(3):
        y.backward(create_graph=True)
        y = x.grad
        x.clear_grad()
    s = 1 / (1 + np.exp(-data))
    np.testing.assert_allclose(host(y), s * (1 - s) * (1 - 6 * s + 6 * s * s), rtol=1e-10)


def test_gelu_grad_matches_closed_form(float64_device, rng):
    data = rng.standard_normal(8) * 3
    x = Variable(data, device=float64_device)
    F.gelu(x).backward()
    cdf = 0.5 * (1 + _erf(data / np.sqrt(2)))
    density = np.exp(-data * data / 2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(host(x.grad), cdf + data * density, rtol=1e-12)


def test_relu_grad_at_zero_is_zero(device):
    x = Variable(np.array([-1.0, 0.0, 2.0], np.float32), device=device)
    F.relu(x).backward()
    np.testing.assert_array_equal(host(x.grad), [0.0, 0.0, 1.0])


# --- stability ----------------------------------------------------------------------------
def test_sigmoid_and_softplus_are_stable_for_huge_inputs(float64_device):
    data = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    x = Variable(data, device=float64_device)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = F.sigmoid(x)
        p = F.softplus(x)
        (s + p).sum().backward()
    expected = [0.0, 1 / (1 + np.exp(50)), 0.5, 1 / (1 + np.exp(-50)), 1]
    np.testing.assert_allclose(host(s), expected)
    np.testing.assert_allclose(host(p), [0.0, np.log1p(np.exp(-50.0)), np.log(2), 50.0, 1000.0])
    assert np.all(np.isfinite(host(x.grad)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_are_stable_for_logits_of_1000(dtype, device):
    data = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -1000.0]], dtype=dtype)
    if dtype == np.float64 and float_dtype(device) != np.float64:
        pytest.skip(f"{device} has no float64")
    x = Variable(data, device=device)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = F.softmax(x)
        log_p = F.log_softmax(x)
        (p * Variable(np.ones_like(data), device=device) + log_p).sum().backward()
    np.testing.assert_allclose(host(p), [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    np.testing.assert_allclose(
        host(log_p), [[0, -2000, -1000], [-np.log(2), -np.log(2), -2000 - np.log(2)]]
    )
    assert np.all(np.isfinite(host(x.grad))) and x.grad.dtype == dtype


def test_gelu_and_elu_are_finite_for_huge_inputs(float64_device):
    x = Variable(np.array([-1000.0, -40.0, 40.0, 1000.0]), device=float64_device)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = F.gelu(x) + F.elu(x)
        y.sum().backward()
    np.testing.assert_allclose(host(y), [-1.0, -1.0, 80.0, 2000.0])
    np.testing.assert_allclose(host(x.grad), [0.0, 0.0, 2.0, 2.0], atol=1e-15)


# --- errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_of_integer_input_names_op_and_dtype(name):
    with pytest.raises(TypeError, match=rf"{name}: expected floating-point input, got dtype int"):
        REFERENCES[name][0](Variable(np.array([1, -2, 3])))


def test_softmax_axis_out_of_range_names_op():
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range"):
        F.softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(ValueError, match="log_softmax: .*0-d"):
        F.log_softmax(np.float64(1.0))


# --- PyTorch ------------------------------------------------------------------------------
def _torch_functions(torch):
    tf = torch.nn.functional
    return {
        "sigmoid": torch.sigmoid,
        "relu": tf.relu,
        "leaky_relu": lambda x: tf.leaky_relu(x, 0.2),
        "elu": tf.elu,
        "gelu": tf.gelu,
        "softplus": tf.softplus,
        "softmax": lambda x: tf.softmax(x, dim=-1),
        "log_softmax": lambda x: tf.log_softmax(x, dim=-1),
    }


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_forward_and_grad_match_torch(torch, name, dtype, device, rng):
    data = (rng.standard_normal((4, 6)) * 4).astype(dtype)
    weights = rng.standard_normal(data.shape).astype(dtype)
    if dtype == np.float64 and float_dtype(device) != np.float64:
        pytest.skip(f"{device} has no float64")
    x = Variable(data, device=device)
    y = REFERENCES[name][0](x)
    (y * Variable(weights, device=device)).sum().backward()

    tx = torch.tensor(data, requires_grad=True)
    ty = _torch_functions(torch)[name](tx)
    (ty * torch.tensor(weights)).sum().backward()
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=tolerance, atol=tolerance)


def test_gelu_second_derivative_matches_torch(torch, float64_device, rng):
    data = rng.standard_normal(10) * 2
    x = Variable(data, device=float64_device)
    F.gelu(x).backward(create_graph=True)
    gx = x.grad
    x.clear_grad()
    gx.backward()

    tx = torch.tensor(data, requires_grad=True)
    (g,) = torch.autograd.grad(torch.nn.functional.gelu(tx).sum(), tx, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), tx)
    np.testing.assert_allclose(host(x.grad), gg.numpy(), rtol=1e-10, atol=1e-12)
