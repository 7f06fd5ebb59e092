"""Tests of pygrad.functions.activation: sigmoid, relu, leaky_relu, elu, gelu, softplus,
softmax and log_softmax."""

import math

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from pygrad.functions.activation import normal_cdf_array
from pygrad.utils import gradient_check
from tests._helpers import grads_with_graph


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
def test_activation_forward_matches_numpy_reference(name, rng):
    function, reference = REFERENCES[name]
    x = rng.standard_normal((3, 5)) * 3
    y = function(Variable(x))
    assert y.shape == x.shape and y.dtype == np.float64
    np.testing.assert_allclose(y.data, reference(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_keeps_float32_in_output_and_grad(name, rng):
    function, reference = REFERENCES[name]
    data = rng.standard_normal((4, 3)).astype(np.float32)
    x = Variable(data)
    y = function(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, reference(data.astype(np.float64)), rtol=1e-5, atol=1e-6)
    (y * Variable(rng.standard_normal(y.shape).astype(np.float32))).sum().backward()
    assert x.grad.dtype == np.float32


def test_activation_accepts_arrays_and_keeps_shape_of_higher_rank_input(rng):
    x = rng.standard_normal((2, 3, 4))
    for function, reference in REFERENCES.values():
        y = function(x)
        assert isinstance(y, Variable) and y.shape == x.shape
        np.testing.assert_allclose(y.data, reference(x), rtol=1e-12, atol=1e-14)


def test_leaky_relu_and_elu_take_their_parameters(rng):
    x = rng.standard_normal(10)
    np.testing.assert_allclose(F.leaky_relu(x, slope=0.01).data, np.where(x > 0, x, 0.01 * x))
    np.testing.assert_allclose(
        F.elu(x, alpha=2.5).data, np.where(x > 0, x, 2.5 * np.expm1(x)), rtol=1e-12
    )


def test_softmax_and_log_softmax_take_an_axis(rng):
    x = rng.standard_normal((3, 4, 2))
    for axis in (0, 1, -1, (1, 2)):
        np.testing.assert_allclose(F.softmax(x, axis=axis).data, _np_softmax(x, axis), rtol=1e-12)
        np.testing.assert_allclose(
            F.log_softmax(x, axis=axis).data, np.log(_np_softmax(x, axis)), rtol=1e-12
        )
    assert gradient_check(lambda v: F.softmax(v, axis=0), x)
    assert gradient_check(lambda v: F.log_softmax(v, axis=(0, 2)), x)


def test_normal_cdf_matches_math_erfc_to_float64_precision():
    x = np.concatenate([np.linspace(-30, 30, 6001), [0.0, 0.5, -0.7071, 5.6568, -5.6569]])
    expected = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    got = normal_cdf_array(x)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)
    assert np.all(np.diff(normal_cdf_array(np.linspace(-8, 8, 1001))) >= 0)


def test_normal_cdf_is_clean_at_infinity_and_huge_inputs():
    x = np.array([np.inf, -np.inf, 1e300, -1e300, 0.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(normal_cdf_array(x), [1.0, 0.0, 1.0, 0.0, 0.5])


# --- gradients ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_activation_grad_matches_finite_differences(name, rng):
    function = REFERENCES[name][0]
    x = away_from_zero(rng.standard_normal((3, 4)) * 2)
    assert gradient_check(function, x)


@pytest.mark.parametrize("name", SMOOTH)
def test_smooth_activation_second_order_grad_matches_finite_differences(name, rng):
    function = REFERENCES[name][0]
    x = away_from_zero(rng.standard_normal((2, 3)) * 2)
    assert gradient_check(grads_with_graph(function), x)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_piecewise_linear_activation_has_zero_second_derivative(name, rng):
    function = REFERENCES[name][0]
    x = Variable(away_from_zero(rng.standard_normal(6)))
    y = function(x)
    y.backward(create_graph=True)
    gx = x.grad
    x.clear_grad()
    gx.backward()
    # The first derivative is a constant mask: nothing flows back to x (or only zeros).
    assert x.grad is None or not np.any(x.grad.data)


def test_sigmoid_third_derivative_matches_closed_form():
    data = np.linspace(-3, 3, 7)
    x = Variable(data)
    y = F.sigmoid(x)
    for _ in range(3):
        y.backward(create_graph=True)
        y = x.grad
        x.clear_grad()
    s = 1 / (1 + np.exp(-data))
    np.testing.assert_allclose(y.data, s * (1 - s) * (1 - 6 * s + 6 * s * s), rtol=1e-10)


def test_gelu_grad_matches_closed_form(rng):
    data = rng.standard_normal(8) * 3
    x = Variable(data)
    F.gelu(x).backward()
    cdf = 0.5 * (1 + _erf(data / np.sqrt(2)))
    density = np.exp(-data * data / 2) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(x.grad.data, cdf + data * density, rtol=1e-12)


def test_relu_grad_at_zero_is_zero():
    x = Variable(np.array([-1.0, 0.0, 2.0]))
    F.relu(x).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0, 1.0])


# --- stability ----------------------------------------------------------------------------
def test_sigmoid_and_softplus_are_stable_for_huge_inputs():
    data = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    x = Variable(data)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = F.sigmoid(x)
        p = F.softplus(x)
        (s + p).sum().backward()
    np.testing.assert_allclose(s.data, [0.0, 1 / (1 + np.exp(50)), 0.5, 1 / (1 + np.exp(-50)), 1])
    np.testing.assert_allclose(p.data, [0.0, np.log1p(np.exp(-50.0)), np.log(2), 50.0, 1000.0])
    assert np.all(np.isfinite(x.grad.data))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_and_log_softmax_are_stable_for_logits_of_1000(dtype):
    data = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -1000.0]], dtype=dtype)
    x = Variable(data)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = F.softmax(x)
        log_p = F.log_softmax(x)
        (p * Variable(np.ones_like(data)) + log_p).sum().backward()
    np.testing.assert_allclose(p.data, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    np.testing.assert_allclose(
        log_p.data, [[0, -2000, -1000], [-np.log(2), -np.log(2), -2000 - np.log(2)]]
    )
    assert np.all(np.isfinite(x.grad.data)) and x.grad.dtype == dtype


def test_gelu_and_elu_are_finite_for_huge_inputs():
    x = Variable(np.array([-1000.0, -40.0, 40.0, 1000.0]))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = F.gelu(x) + F.elu(x)
        y.sum().backward()
    np.testing.assert_allclose(y.data, [-1.0, -1.0, 80.0, 2000.0])
    np.testing.assert_allclose(x.grad.data, [0.0, 0.0, 2.0, 2.0], atol=1e-15)


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
def test_activation_forward_and_grad_match_torch(torch, name, dtype, rng):
    data = (rng.standard_normal((4, 6)) * 4).astype(dtype)
    weights = rng.standard_normal(data.shape).astype(dtype)
    x = Variable(data)
    y = REFERENCES[name][0](x)
    (y * Variable(weights)).sum().backward()

    tx = torch.tensor(data, requires_grad=True)
    ty = _torch_functions(torch)[name](tx)
    (ty * torch.tensor(weights)).sum().backward()
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=tolerance, atol=tolerance)


def test_gelu_second_derivative_matches_torch(torch, rng):
    data = rng.standard_normal(10) * 2
    x = Variable(data)
    F.gelu(x).backward(create_graph=True)
    gx = x.grad
    x.clear_grad()
    gx.backward()

    tx = torch.tensor(data, requires_grad=True)
    (g,) = torch.autograd.grad(torch.nn.functional.gelu(tx).sum(), tx, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), tx)
    np.testing.assert_allclose(x.grad.data, gg.numpy(), rtol=1e-10, atol=1e-12)
