"""Tests of pygrad.functions.normalization: batch_norm, layer_norm, dropout and embed_id."""

import numpy as np
import pytest

import pygrad
from pygrad import Variable
from pygrad import functions as F
from pygrad.utils import gradient_check
from tests._helpers import device_array, gradient_check_on, grads_with_graph, host


def np_batch_norm(x, gamma, beta, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return gamma.reshape(shape) * (x - mean) / np.sqrt(var + eps) + beta.reshape(shape)


def np_layer_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(var + eps) + beta


def bn_inputs(rng, shape, dtype=np.float64):
    channels = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    return x, gamma, beta


# --- batch_norm ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 2), (3, 2, 4, 5)])
def test_batch_norm_train_forward_matches_numpy_and_updates_running_stats_in_place(
    shape, float64_device, rng
):
    x, gamma, beta = bn_inputs(rng, shape)
    running_mean = device_array(np.full(shape[1], 0.5), float64_device)
    running_var = device_array(np.full(shape[1], 2.0), float64_device)
    mean_before, var_before = running_mean, running_var
    xs = [Variable(a, device=float64_device) for a in (x, gamma, beta)]
    y = F.batch_norm(*xs, running_mean, running_var)
    np.testing.assert_allclose(host(y), np_batch_norm(x, gamma, beta), rtol=1e-12, atol=1e-12)
    axes = (0,) + tuple(range(2, x.ndim))
    assert running_mean is mean_before and running_var is var_before
    expected_mean = 0.9 * 0.5 + 0.1 * x.mean(axis=axes)
    np.testing.assert_allclose(host(running_mean), expected_mean, rtol=1e-12)
    # The running variance takes the unbiased batch variance.
    expected_var = 0.9 * 2 + 0.1 * x.var(axis=axes, ddof=1)
    np.testing.assert_allclose(host(running_var), expected_var, rtol=1e-12)


def test_batch_norm_inference_uses_running_stats_and_leaves_them_alone(float64_device, rng):
    x, gamma, beta = bn_inputs(rng, (4, 3, 2, 2))
    saved_mean, saved_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    running_mean = device_array(saved_mean.copy(), float64_device)
    running_var = device_array(saved_var.copy(), float64_device)
    xs = [Variable(a, device=float64_device) for a in (x, gamma, beta)]
    with pygrad.test_mode():
        y = F.batch_norm(*xs, running_mean, running_var, eps=1e-3)
    shape = (1, 3, 1, 1)
    expected = (x - saved_mean.reshape(shape)) / np.sqrt(saved_var.reshape(shape) + 1e-3)
    expected = expected * gamma.reshape(shape) + beta.reshape(shape)
    np.testing.assert_allclose(host(y), expected, rtol=1e-12)
    np.testing.assert_array_equal(host(running_mean), saved_mean)
    np.testing.assert_array_equal(host(running_var), saved_var)


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 2, 2)])
def test_batch_norm_train_grad_matches_finite_differences(shape, device, rng):
    x, gamma, beta = bn_inputs(rng, shape)

    def train(v, g, b):
        return F.batch_norm(v, g, b, None, None)

    assert gradient_check_on(device, train, x, gamma, beta)


def test_batch_norm_train_second_order_grad_matches_finite_differences(device, rng):
    x, gamma, beta = bn_inputs(rng, (4, 2, 1, 2))
    f = grads_with_graph(lambda v, g, b: F.batch_norm(v, g, b, None, None))
    assert gradient_check_on(device, f, x, gamma, beta)


def test_batch_norm_inference_grad_matches_finite_differences(device, rng):
    x, gamma, beta = bn_inputs(rng, (3, 2, 2, 2))
    mean, var = rng.standard_normal(2), rng.uniform(0.5, 2, 2)

    def inference(v, g, b):
        # The running statistics live on the device of x, as the layer keeps them.
        stats = (device_array(s.astype(v.dtype), v.device) for s in (mean, var))
        return F.batch_norm(v, g, b, *stats)

    with pygrad.test_mode():
        assert gradient_check_on(device, inference, x, gamma, beta)


def test_batch_norm_fast_backward_equals_recorded_backward(float64_device, rng):
    x, gamma, beta = bn_inputs(rng, (4, 3, 2, 2))
    weights = rng.standard_normal(x.shape)
    results = []
    for create_graph in (False, True):
        xs = [Variable(a, device=float64_device) for a in (x, gamma, beta)]
        (F.batch_norm(*xs, None, None) * Variable(weights, device=float64_device)).sum().backward(
            create_graph=create_graph
        )
        results.append([host(v.grad) for v in xs])
    for fast, recorded in zip(*results):
        np.testing.assert_allclose(fast, recorded, rtol=1e-10, atol=1e-12)


def test_batch_norm_keeps_float32_with_float32_running_stats(device, rng):
    inputs = bn_inputs(rng, (8, 4, 3, 3), np.float32)
    x, gamma, beta = (Variable(a, device=device) for a in inputs)
    running_mean = device_array(np.zeros(4, np.float32), device)
    running_var = device_array(np.ones(4, np.float32), device)
    y = F.batch_norm(x, gamma, beta, running_mean, running_var)
    assert y.dtype == np.float32 and running_mean.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == gamma.grad.dtype == beta.grad.dtype == np.float32
    with pygrad.test_mode():
        assert F.batch_norm(x, gamma, beta, running_mean, running_var).dtype == np.float32


def test_batch_norm_matches_torch_outputs_grads_and_running_stats(torch, float64_device, rng):
    x_data, gamma_data, beta_data = bn_inputs(rng, (6, 3, 4, 4))
    weights = rng.standard_normal(x_data.shape)
    running_mean = device_array(np.zeros(3), float64_device)
    running_var = device_array(np.ones(3), float64_device)
    xs = [Variable(a, device=float64_device) for a in (x_data, gamma_data, beta_data)]
    y = F.batch_norm(*xs, running_mean, running_var, decay=0.8, eps=1e-4)
    (y * Variable(weights, device=float64_device)).sum().backward()

    txs = [torch.tensor(a, requires_grad=True) for a in (x_data, gamma_data, beta_data)]
    t_mean, t_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    ty = torch.nn.functional.batch_norm(
        txs[0], t_mean, t_var, txs[1], txs[2], training=True, momentum=0.2, eps=1e-4
    )
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for v, t in zip(xs, txs):
        np.testing.assert_allclose(host(v.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(host(running_mean), t_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(host(running_var), t_var.numpy(), rtol=1e-12)

    with pygrad.test_mode():
        y = F.batch_norm(*(x.data for x in xs), running_mean, running_var, eps=1e-4)
    ty = torch.nn.functional.batch_norm(
        torch.tensor(x_data), t_mean, t_var, txs[1].detach(), txs[2].detach(), eps=1e-4
    )
    np.testing.assert_allclose(host(y), ty.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x": np.zeros(3)}, r"expected x of shape \(N, C\) or \(N, C, H, W\), got shape \(3,\)"),
        ({"gamma": np.ones(2)}, r"gamma of shape \(3,\) to match axis 1 .*got \(2,\)"),
        ({"beta": np.zeros((3, 1))}, r"beta of shape \(3,\)"),
        ({"mean": np.zeros(4)}, r"running mean as a floating-point array of shape \(3,\)"),
        ({"var": np.ones(3, int)}, r"running var .*dtype int"),
        ({"x": np.zeros((1, 3))}, "more than one value per channel"),
        ({"decay": 1.5}, r"decay must lie in \[0, 1\]"),
        ({"eps": 0.0}, "eps must be positive"),
    ],
)
def test_batch_norm_bad_input_names_op_and_shapes(kwargs, message):
    args = {
        "x": np.zeros((4, 3)),
        "gamma": np.ones(3),
        "beta": np.zeros(3),
        "mean": np.zeros(3),
        "var": np.ones(3),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match="batch_norm: .*" + message):
        F.batch_norm(**args)


def test_batch_norm_inference_without_running_stats_is_an_error():
    with (
        pygrad.test_mode(),
        pytest.raises(ValueError, match="batch_norm: inference .*running mean"),
    ):
        F.batch_norm(np.zeros((2, 3)), np.ones(3), np.zeros(3), None, None)


def test_batch_norm_running_stats_must_be_arrays():
    with pytest.raises(TypeError, match="batch_norm: expected the running mean as an array"):
        F.batch_norm(np.zeros((2, 3)), np.ones(3), np.zeros(3), [0.0, 0.0, 0.0], np.ones(3))


# --- layer_norm ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4,), (3, 5), (2, 3, 4)])
def test_layer_norm_forward_matches_numpy(shape, float64_device, rng):
    x = rng.standard_normal(shape) * 3 + 1
    gamma, beta = rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1])
    y = F.layer_norm(*(Variable(a, device=float64_device) for a in (x, gamma, beta)))
    np.testing.assert_allclose(host(y), np_layer_norm(x, gamma, beta), rtol=1e-12, atol=1e-12)


def test_layer_norm_grad_matches_finite_differences(device, rng):
    x = rng.standard_normal((2, 3, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    assert gradient_check_on(device, F.layer_norm, x, gamma, beta)


def test_layer_norm_second_order_grad_matches_finite_differences(device, rng):
    x = rng.standard_normal((3, 4))
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    assert gradient_check_on(device, grads_with_graph(F.layer_norm), x, gamma, beta)


def test_layer_norm_is_the_same_in_training_and_inference(device, rng):
    inputs = rng.standard_normal((3, 4)), np.ones(4), np.zeros(4)
    x, gamma, beta = (Variable(a.astype(np.float32), device=device) for a in inputs)
    with pygrad.test_mode():
        y_test = host(F.layer_norm(x, gamma, beta))
    np.testing.assert_array_equal(host(F.layer_norm(x, gamma, beta)), y_test)


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("op", ["batch_norm", "layer_norm"])
def test_normalization_grads_take_their_variables_dtypes(float64_device, rng, op, create_graph):
    device = float64_device
    x = Variable(rng.standard_normal((4, 3)).astype(np.float32), device=device)
    gamma, beta = Variable(np.ones(3), device=device), Variable(np.zeros(3), device=device)
    if op == "batch_norm":
        stats = device_array(np.zeros(3), device), device_array(np.ones(3), device)
        y = F.batch_norm(x, gamma, beta, *stats)
    else:
        y = F.layer_norm(x, gamma, beta)
    F.sum(y * rng.standard_normal((4, 3))).backward(create_graph=create_graph)
    assert x.grad.dtype == np.float32
    assert gamma.grad.dtype == beta.grad.dtype == np.float64


def test_layer_norm_keeps_float32(device, rng):
    x = Variable(rng.standard_normal((5, 6)).astype(np.float32), device=device)
    gamma = Variable(np.ones(6, np.float32), device=device)
    beta = Variable(np.zeros(6, np.float32), device=device)
    y = F.layer_norm(x, gamma, beta)
    assert y.dtype == np.float32 and y.device == x.device
    (y * y).sum().backward()
    assert x.grad.dtype == gamma.grad.dtype == beta.grad.dtype == np.float32


def test_layer_norm_matches_torch(torch, float64_device, rng):
    x_data = rng.standard_normal((2, 3, 5)) * 2
    gamma_data, beta_data = rng.standard_normal(5), rng.standard_normal(5)
    weights = rng.standard_normal(x_data.shape)
    xs = [Variable(a, device=float64_device) for a in (x_data, gamma_data, beta_data)]
    y = F.layer_norm(*xs, eps=1e-6)
    (y * Variable(weights, device=float64_device)).sum().backward()
    txs = [torch.tensor(a, requires_grad=True) for a in (x_data, gamma_data, beta_data)]
    ty = torch.nn.functional.layer_norm(txs[0], (5,), txs[1], txs[2], eps=1e-6)
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    for v, t in zip(xs, txs):
        np.testing.assert_allclose(host(v.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_layer_norm_bad_parameters_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"layer_norm: expected gamma of shape \(4,\)"):
        F.layer_norm(np.zeros((2, 4)), np.ones(3), np.zeros(4))
    with pytest.raises(ValueError, match="layer_norm: .*0-d"):
        F.layer_norm(np.float64(1.0), np.ones(1), np.zeros(1))
    with pytest.raises(TypeError, match="layer_norm: expected floating-point x"):
        F.layer_norm(np.zeros((2, 4), int), np.ones(4), np.zeros(4))


# --- dropout ------------------------------------------------------------------------------
def test_dropout_in_training_zeroes_about_ratio_and_scales_the_rest(device, rng):
    x = Variable(np.ones((200, 50), np.float32), device=device)
    y = F.dropout(x, dropout_ratio=0.3)
    assert y.dtype == np.float32 and y.device == x.device
    kept = host(y) != 0
    assert abs(1 - kept.mean() - 0.3) < 0.02
    np.testing.assert_allclose(host(y)[kept], 1 / 0.7, rtol=1e-6)
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(host(x.grad), host(y))


def test_dropout_is_identity_outside_training_and_at_ratio_zero(device, rng):
    x = Variable(rng.standard_normal((3, 4)).astype(np.float32), device=device)
    with pygrad.test_mode():
        assert F.dropout(x, 0.5) is x
    assert F.dropout(x, 0.0) is x


def test_dropout_mask_follows_numpy_random_seed(rng):
    x = rng.standard_normal((4, 5))
    np.random.seed(3)
    first = F.dropout(x).data
    np.random.seed(3)
    np.testing.assert_array_equal(F.dropout(x).data, first)


def test_dropout_grad_matches_finite_differences_for_a_fixed_mask(rng):
    def seeded_dropout(v):
        np.random.seed(7)
        return F.dropout(v, 0.4)

    assert gradient_check(seeded_dropout, rng.standard_normal((3, 4)))
    assert gradient_check(grads_with_graph(seeded_dropout), rng.standard_normal((3, 4)))


@pytest.mark.parametrize("ratio", [-0.1, 1.0, 1.5])
def test_dropout_ratio_out_of_range_names_op(ratio):
    with pytest.raises(ValueError, match=r"dropout: dropout_ratio must lie in \[0, 1\)"):
        F.dropout(np.ones(3), ratio)


# --- embed_id -----------------------------------------------------------------------------
def test_embed_id_gathers_rows_for_ids_of_any_shape(float64_device, rng):
    W = rng.standard_normal((6, 3))
    ids = np.array([[0, 5, 2], [2, 2, 1]])
    W_on_device = Variable(W, device=float64_device)
    y = F.embed_id(ids, W_on_device)
    assert y.shape == (2, 3, 3) and y.device == W_on_device.device
    np.testing.assert_array_equal(host(y), W[ids])
    assert F.embed_id(4, W_on_device).shape == (3,)
    np.testing.assert_array_equal(host(F.embed_id([1, 1], W_on_device)), W[[1, 1]])


def test_embed_id_grad_accumulates_repeated_ids(device, rng):
    W = Variable(rng.standard_normal((4, 2)).astype(np.float32), device=device)
    ids = np.array([1, 3, 1, 1])
    y = F.embed_id(Variable(ids, device=device), W)
    assert y.dtype == np.float32
    weights = rng.standard_normal(y.shape).astype(np.float32)
    (y * Variable(weights, device=device)).sum().backward()
    expected = np.zeros((4, 2), np.float32)
    np.add.at(expected, ids, weights)
    assert W.grad.dtype == np.float32 and W.grad.device == W.device
    np.testing.assert_allclose(host(W.grad), expected, rtol=1e-6)


def test_embed_id_grad_matches_finite_differences(device, rng):
    ids = np.array([[0, 2], [2, 2]])

    def embed_squared(w):
        return F.embed_id(ids, w) ** 2

    assert gradient_check_on(device, embed_squared, rng.standard_normal((3, 2)))
    assert gradient_check_on(device, grads_with_graph(embed_squared), rng.standard_normal((3, 2)))


def test_embed_id_bad_ids_name_op(float64_device):
    W = Variable(np.zeros((5, 2)), device=float64_device)
    with pytest.raises(TypeError, match="embed_id: expected integer ids x, got dtype float64"):
        F.embed_id(np.array([1.0, 2.0]), W)
    # A device may check the ids as it gathers and report a bad one at the next read.
    with pytest.raises(ValueError, match=r"embed_id: ids must lie in \[0, 5\) .* found 5"):
        host(F.embed_id(np.array([0, 5]), W))
    with pytest.raises(ValueError, match="embed_id: .* found -1"):
        host(F.embed_id(np.array([-1, 2]), W))
    with pytest.raises(ValueError, match=r"embed_id: expected W of shape \(V, D\)"):
        F.embed_id(np.array([0]), np.zeros(5))


def test_embed_id_matches_torch_embedding_forward_and_grad(torch, float64_device, rng):
    W_data = rng.standard_normal((5, 3))
    ids = np.array([[4, 0, 4], [1, 4, 2]])
    W = Variable(W_data, device=float64_device)
    y = F.embed_id(ids, W)
    tW = torch.tensor(W_data, requires_grad=True)
    ty = torch.nn.functional.embedding(torch.tensor(ids), tW)
    np.testing.assert_array_equal(host(y), ty.detach().numpy())
    weights = rng.standard_normal(y.shape)
    (y * Variable(weights, device=float64_device)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(host(W.grad), tW.grad.numpy(), rtol=1e-12, atol=1e-15)
