"""Tests of pygrad.functions.loss: mean squared error, softmax / sigmoid / binary cross entropy
and accuracy."""

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from tests._helpers import float_dtype, gradient_check_on, grads_with_graph, host


def np_log_softmax(x):
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def np_softmax_cross_entropy(x, t):
    return -np_log_softmax(x)[np.arange(len(t)), t].mean()


# --- mean_squared_error -------------------------------------------------------------------
def test_mean_squared_error_forward_matches_numpy(float64_device, rng):
    x0, x1 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    y = F.mean_squared_error(
        Variable(x0, device=float64_device), Variable(x1, device=float64_device)
    )
    assert y.shape == ()
    np.testing.assert_allclose(host(y), np.mean((x0 - x1) ** 2), rtol=1e-13)


def test_mean_squared_error_grad_matches_finite_differences(device, rng):
    x0, x1 = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    assert gradient_check_on(device, F.mean_squared_error, x0, x1)
    assert gradient_check_on(device, grads_with_graph(F.mean_squared_error), x0, x1)


def test_mean_squared_error_keeps_float32_with_a_float64_array_target(device, rng):
    x = Variable(rng.standard_normal((5, 2)).astype(np.float32), device=device)
    target = rng.standard_normal((5, 2))
    y = F.mean_squared_error(x, target)
    assert y.dtype == np.float32 and y.device == x.device
    y.backward()
    assert x.grad.dtype == np.float32 and x.grad.device == x.device
    np.testing.assert_allclose(host(x.grad), 2 * (host(x) - target) / 10, rtol=1e-5)


def test_mean_squared_error_of_different_shapes_names_both():
    with pytest.raises(ValueError, match=r"mean_squared_error: .*\(4, 1\) and \(4,\)"):
        F.mean_squared_error(np.zeros((4, 1)), np.zeros(4))


# --- softmax_cross_entropy ----------------------------------------------------------------
def test_softmax_cross_entropy_forward_matches_numpy(float64_device, rng):
    x = rng.standard_normal((5, 4)) * 3
    t = rng.integers(0, 4, 5)
    y = F.softmax_cross_entropy(Variable(x, device=float64_device), t)
    assert y.shape == () and y.dtype == np.float64
    np.testing.assert_allclose(host(y), np_softmax_cross_entropy(x, t), rtol=1e-13)


def test_softmax_cross_entropy_grad_is_softmax_minus_one_hot_over_n(float64_device, rng):
    x = Variable(rng.standard_normal((4, 3)), device=float64_device)
    t = np.array([0, 2, 2, 1])
    F.softmax_cross_entropy(x, t).backward()
    expected = np.exp(np_log_softmax(host(x)))
    expected[np.arange(4), t] -= 1
    np.testing.assert_allclose(host(x.grad), expected / 4, rtol=1e-12, atol=1e-15)


def test_softmax_cross_entropy_grad_matches_finite_differences(device, rng):
    x = rng.standard_normal((4, 3))
    t = np.array([1, 0, 2, 1])
    assert gradient_check_on(device, lambda v: F.softmax_cross_entropy(v, t), x)


def test_softmax_cross_entropy_second_order_grad_matches_finite_differences(device, rng):
    x = rng.standard_normal((3, 4))
    t = np.array([3, 0, 1])
    assert gradient_check_on(device, grads_with_graph(lambda v: F.softmax_cross_entropy(v, t)), x)


def test_softmax_cross_entropy_accepts_labels_as_list_or_variable(float64_device, rng):
    x = rng.standard_normal((3, 4))
    v = Variable(x, device=float64_device)
    expected = np_softmax_cross_entropy(x, np.array([1, 3, 0]))
    labels = Variable(np.array([1, 3, 0]), device=float64_device)
    for t in ([1, 3, 0], labels, np.array([1, 3, 0], np.uint8)):
        np.testing.assert_allclose(host(F.softmax_cross_entropy(v, t)), expected, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_finite_for_logits_of_1000(dtype, device):
    data = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]], dtype=dtype)
    if dtype == np.float64 and float_dtype(device) != np.float64:
        pytest.skip(f"{device} has no float64")
    x = Variable(data, device=device)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.softmax_cross_entropy(x, np.array([1, 0]))
        loss.backward()
    assert loss.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_allclose(host(loss), (2000 + 2000 + np.log(2)) / 2, rtol=1e-6)
    expected = np.array([[1, -1, 0], [-1, 0.5, 0.5]]) / 2
    np.testing.assert_allclose(host(x.grad), expected, atol=1e-7)


def test_softmax_cross_entropy_keeps_float32(device, rng):
    x = Variable(rng.standard_normal((6, 5)).astype(np.float32), device=device)
    t = rng.integers(0, 5, 6)
    loss = F.softmax_cross_entropy(x, t)
    assert loss.dtype == np.float32 and loss.device == x.device
    loss.backward()
    assert x.grad.dtype == np.float32 and x.grad.device == x.device
    np.testing.assert_allclose(
        host(loss), np_softmax_cross_entropy(host(x).astype(np.float64), t), rtol=1e-6
    )


@pytest.mark.parametrize(
    "logits, labels, error, message",
    [
        (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError, "integer labels t, got dtype float64"),
        (np.zeros((2, 3)), np.array([0, 1, 2]), ValueError, r"shape \(N,\) = \(2,\).*\(3,\)"),
        (np.zeros((2, 3)), np.array([[0], [1]]), ValueError, r"got shape \(2, 1\)"),
        (np.zeros((2, 3)), np.array([0, 3]), ValueError, r"\[0, 3\) for 3 classes, found 3"),
        (np.zeros((2, 3)), np.array([-1, 0]), ValueError, "found -1"),
        (np.zeros(3), np.array([0]), ValueError, r"logits x of shape \(N, C\), got shape \(3,\)"),
        (np.zeros((2, 3), int), np.array([0, 1]), TypeError, "floating-point logits"),
        (np.zeros((0, 3)), np.zeros(0, int), ValueError, "non-empty"),
    ],
)
def test_softmax_cross_entropy_bad_input_names_op_and_problem(
    logits, labels, error, message, float64_device
):
    x = Variable(logits, device=float64_device)
    # A device may check the labels as it runs and report a bad one at the next read.
    with pytest.raises(error, match="softmax_cross_entropy: .*" + message):
        host(F.softmax_cross_entropy(x, labels))


def test_softmax_cross_entropy_matches_torch(torch, float64_device, rng):
    data = rng.standard_normal((8, 5)) * 4
    data[0] = [1000, -1000, 0, 3, 1000]
    t = rng.integers(0, 5, 8)
    x = Variable(data, device=float64_device)
    loss = F.softmax_cross_entropy(x, t)
    loss.backward()
    tx = torch.tensor(data, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(t))
    tloss.backward()
    np.testing.assert_allclose(host(loss), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


# --- sigmoid_cross_entropy ----------------------------------------------------------------
def np_sigmoid_cross_entropy(x, t):
    p = 1 / (1 + np.exp(-x))
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))


def test_sigmoid_cross_entropy_forward_matches_numpy(float64_device, rng):
    x = rng.standard_normal((4, 3)) * 2
    labels = rng.integers(0, 2, (4, 3))
    probabilities = rng.uniform(size=(4, 3))
    for t in (labels, probabilities):
        y = F.sigmoid_cross_entropy(Variable(x, device=float64_device), t)
        assert y.shape == ()
        np.testing.assert_allclose(host(y), np_sigmoid_cross_entropy(x, t), rtol=1e-12)


def test_sigmoid_cross_entropy_grad_matches_finite_differences(device, rng):
    x, t = rng.standard_normal((3, 4)), rng.uniform(size=(3, 4))
    assert gradient_check_on(device, F.sigmoid_cross_entropy, x, t)
    assert gradient_check_on(device, grads_with_graph(F.sigmoid_cross_entropy), x, t)
    labels = rng.integers(0, 2, (3, 4))
    assert gradient_check_on(device, lambda v: F.sigmoid_cross_entropy(v, labels), x)


def test_sigmoid_cross_entropy_is_finite_for_logits_of_1000_and_keeps_float32(device):
    x = Variable(np.array([[1000.0, -1000.0], [-1000.0, 1000.0]], np.float32), device=device)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.sigmoid_cross_entropy(x, np.array([[1, 0], [1, 0]]))
        loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(host(loss), 500.0)
    np.testing.assert_allclose(host(x.grad), [[0, 0], [-0.25, 0.25]])


def test_sigmoid_cross_entropy_matches_torch(torch, float64_device, rng):
    x_data, t_data = rng.standard_normal((5, 3)) * 3, rng.uniform(size=(5, 3))
    x = Variable(x_data, device=float64_device)
    F.sigmoid_cross_entropy(x, t_data).backward()
    tx = torch.tensor(x_data, requires_grad=True)
    torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.tensor(t_data)).backward()
    np.testing.assert_allclose(host(x.grad), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_sigmoid_cross_entropy_bad_targets_name_op(float64_device):
    with pytest.raises(ValueError, match=r"sigmoid_cross_entropy: .*\(2, 2\).*\(2,\)"):
        F.sigmoid_cross_entropy(np.zeros((2, 2)), np.zeros(2))
    x = Variable(np.zeros(2), device=float64_device)
    with pytest.raises(ValueError, match=r"sigmoid_cross_entropy: targets t must lie in \[0, 1\]"):
        host(F.sigmoid_cross_entropy(x, np.array([0.0, 2.0])))


# --- binary_cross_entropy -----------------------------------------------------------------
def test_binary_cross_entropy_forward_matches_numpy(float64_device, rng):
    p, t = rng.uniform(0.05, 0.95, (4, 3)), rng.uniform(size=(4, 3))
    y = F.binary_cross_entropy(Variable(p, device=float64_device), t)
    expected = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    np.testing.assert_allclose(host(y), expected, rtol=1e-13)


def test_binary_cross_entropy_grad_matches_finite_differences(device, rng):
    p, t = rng.uniform(0.1, 0.9, (3, 3)), rng.uniform(size=(3, 3))
    assert gradient_check_on(device, F.binary_cross_entropy, p, t)
    assert gradient_check_on(device, grads_with_graph(F.binary_cross_entropy), p, t)


def test_binary_cross_entropy_is_finite_at_probabilities_0_and_1(device):
    p = Variable(np.array([0.0, 1.0, 0.0, 1.0], np.float32), device=device)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy(p, np.array([0, 1, 1, 0]))
        loss.backward()
    assert loss.dtype == np.float32 and p.grad.dtype == np.float32
    np.testing.assert_allclose(host(loss), 50.0, rtol=1e-5)
    assert np.all(np.isfinite(host(p.grad)))


def test_binary_cross_entropy_matches_torch(torch, float64_device, rng):
    p_data, t_data = rng.uniform(0.01, 0.99, (6, 2)), rng.uniform(size=(6, 2))
    p_data[0] = [0.0, 1.0]
    p = Variable(p_data, device=float64_device)
    loss = F.binary_cross_entropy(p, t_data)
    tp = torch.tensor(p_data, requires_grad=True)
    tloss = torch.nn.functional.binary_cross_entropy(tp, torch.tensor(t_data))
    np.testing.assert_allclose(host(loss), tloss.item(), rtol=1e-12)
    loss.backward()
    tloss.backward()
    # At p = 0 and 1 too: PyTorch's denominator p * (1 - p) is clamped at 1e-12, and so is ours.
    np.testing.assert_allclose(host(p.grad), tp.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("p_value, t_value", [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)])
def test_binary_cross_entropy_at_saturated_probabilities_follows_torch(
    torch, device, p_value, t_value
):
    p_data = np.array([p_value, 0.3, 1 - 1e-7], np.float32)
    t_data = np.array([t_value, 0.6, 0.2], np.float32)
    p = Variable(p_data, device=device)
    t = Variable(t_data, device=device)
    loss = F.binary_cross_entropy(p, t)
    loss.backward()
    tp = torch.tensor(p_data, requires_grad=True)
    tloss = torch.nn.functional.binary_cross_entropy(tp, torch.tensor(t_data))
    tloss.backward()
    np.testing.assert_allclose(host(loss), tloss.item(), rtol=1e-6)
    np.testing.assert_allclose(host(p.grad), tp.grad.numpy(), rtol=1e-5)
    if p_value != t_value:  # a wrong saturated prediction is pushed back hard, not left alone
        assert abs(host(p.grad)[0]) > 1e10
    # The target's gradient is the clamped logs' (PyTorch's is infinite at p = 0 or 1).
    with np.errstate(divide="ignore"):  # log(0) = -inf, then clamped
        expected_t = (
            np.maximum(np.log(1 - p_data.astype(np.float64)), -100)
            - np.maximum(np.log(p_data.astype(np.float64)), -100)
        ) / 3
    np.testing.assert_allclose(host(t.grad), expected_t, rtol=1e-4)


def test_binary_cross_entropy_bad_probabilities_name_op(float64_device):
    p = Variable(np.array([0.5, 1.5]), device=float64_device)
    with pytest.raises(ValueError, match=r"binary_cross_entropy: probabilities p must lie in"):
        host(F.binary_cross_entropy(p, np.array([0.0, 1.0])))
    with pytest.raises(TypeError, match="binary_cross_entropy: expected floating-point"):
        F.binary_cross_entropy(np.array([0, 1]), np.array([0.0, 1.0]))


# --- accuracy -----------------------------------------------------------------------------
def test_accuracy_is_a_python_float_of_correct_argmax(device, rng):
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], np.float32)
    y = Variable(scores, device=device)
    result = F.accuracy(y, np.array([1, 0, 0, 0]))
    assert type(result) is float and result == 0.75
    assert F.accuracy(y.data, [1, 0, 1, 0]) == 1.0


def test_accuracy_handles_classes_on_axis_1_of_higher_rank_scores(device, rng):
    y = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = y.argmax(axis=1)
    t[0, 0] = (t[0, 0] + 1) % 3
    assert F.accuracy(Variable(y, device=device), t) == 7 / 8


def test_accuracy_bad_shapes_name_op():
    with pytest.raises(ValueError, match=r"accuracy: .*got y \(3, 2\) and t \(2,\)"):
        F.accuracy(np.zeros((3, 2)), np.zeros(2, int))
    with pytest.raises(TypeError, match="accuracy: expected integer labels"):
        F.accuracy(np.zeros((3, 2)), np.zeros(3))


def test_mean_squared_error_of_float32_and_float64_variables_keeps_each_grads_dtype(
    float64_device, rng
):
    x0 = Variable(rng.standard_normal((2, 3)).astype(np.float32), device=float64_device)
    x1 = Variable(rng.standard_normal((2, 3)), device=float64_device)
    F.mean_squared_error(x0, x1).backward()
    assert x0.grad.dtype == np.float32 and x1.grad.dtype == np.float64


# --- against PyTorch, and second derivatives ---------------------------------------------
def test_mean_squared_error_matches_torch_forward_and_grads(torch, float64_device, rng):
    x0_data, x1_data = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    x0, x1 = Variable(x0_data, device=float64_device), Variable(x1_data, device=float64_device)
    loss = F.mean_squared_error(x0, x1)
    t0 = torch.tensor(x0_data, requires_grad=True)
    t1 = torch.tensor(x1_data, requires_grad=True)
    tloss = torch.nn.functional.mse_loss(t0, t1)
    np.testing.assert_allclose(host(loss), tloss.item(), rtol=1e-12)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(host(x0.grad), t0.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(host(x1.grad), t1.grad.numpy(), rtol=1e-12)


def test_mean_squared_error_second_order_grad_matches_finite_differences(device, rng):
    x0, x1 = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    # The loss squared has a second derivative that depends on the inputs.
    f = grads_with_graph(lambda a, b: F.mean_squared_error(a, b) ** 2)
    assert gradient_check_on(device, f, x0, x1)


def test_sigmoid_cross_entropy_second_order_grad_matches_finite_differences(device, rng):
    x, t = rng.standard_normal((2, 3)) * 2, rng.uniform(size=(2, 3))
    assert gradient_check_on(device, grads_with_graph(lambda v: F.sigmoid_cross_entropy(v, t)), x)
    labels = rng.integers(0, 2, (2, 3))
    f = grads_with_graph(lambda v: F.sigmoid_cross_entropy(v, labels))
    assert gradient_check_on(device, f, x)


def test_binary_cross_entropy_second_order_grad_matches_finite_differences(device, rng):
    p, t = rng.uniform(0.1, 0.9, (2, 3)), rng.uniform(size=(2, 3))
    assert gradient_check_on(device, grads_with_graph(lambda v: F.binary_cross_entropy(v, t)), p)
    # Through a sigmoid, as a network computes the probabilities.
    x = rng.standard_normal((2, 3))
    f = grads_with_graph(lambda v: F.binary_cross_entropy(F.sigmoid(v), t))
    assert gradient_check_on(device, f, x)
