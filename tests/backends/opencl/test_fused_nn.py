"""Tests of pygrad.backends.opencl.fused_nn: the fused kernels of activations, softmax cross
entropy, batch norm and dropout against the NumPy path, the range checks reported at the next
host read, and a training step that never waits for the device."""

import numpy as np
import pytest

from pygrad import Variable, nn, using_config
from pygrad import functions as F
from pygrad.backends import fused_op, to_device, to_host

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.fixture(autouse=True)
def _opencl(opencl):
    """Every test here needs an OpenCL device (skipped, with the reason, where there is none)."""


def _on(device, array):
    return Variable(to_device(array, device))


def _forward_and_grads(f, arrays, device, second_order=False):
    """``f(*variables)`` on ``device``, the gradients of ``sum(w * f)``, and with
    ``second_order`` the gradients of ``sum(v * grads[0])`` built with ``create_graph``."""
    xs = [_on(device, a) for a in arrays]
    with using_config("enable_backprop", True):
        y = f(*xs)
        w = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
        (y * _on(device, w)).sum().backward(create_graph=second_order)
    results = [to_host(y.data)] + [to_host(x.grad.data) for x in xs]
    if second_order:
        gx = xs[0].grad
        for x in xs:
            x.grad = None
        v = np.random.default_rng(2).standard_normal(gx.shape).astype(gx.dtype)
        (gx * _on(device, v)).sum().backward()
        results += [None if x.grad is None else to_host(x.grad.data) for x in xs]
    return results


def _assert_same_on_both(f, arrays, dtype, second_order=False):
    """Forward and gradients agree; with ``second_order`` also the gradients of a gradient
    built with ``create_graph`` (which takes the unfused, differentiable backward)."""
    for graph in (False, True) if second_order else (False,):
        cpu = _forward_and_grads(f, arrays, "cpu", graph)
        device = _forward_and_grads(f, arrays, "opencl", graph)
        for expected, actual in zip(cpu, device):
            if expected is None:
                assert actual is None
                continue
            assert actual.dtype == expected.dtype
            np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


def _logits(shape, dtype, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 3).astype(dtype)


# =============================================================================================
# activation backward
# =============================================================================================
ACTIVATIONS = {
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "elu": lambda x: F.elu(x, 1.5),
    "gelu": F.gelu,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_and_grads_match_cpu(name, dtype):
    x = _logits((7, 13), dtype)
    x[0, :3] = 0  # the kink of relu: its gradient there is 0 on both devices
    _assert_same_on_both(ACTIVATIONS[name], [x], dtype, second_order=True)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_grads_of_non_contiguous_inputs_match_cpu(name):
    x = _logits((9, 10), np.float32)

    def f(v):
        # A transposed view in, a broadcast gradient back (the gradient of a sum).
        return F.sum(ACTIVATIONS[name](v.T), axis=0)

    _assert_same_on_both(f, [x], np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_of_extreme_and_nan_inputs_matches_cpu(name, dtype):
    x = np.array([-np.inf, -1e4, -50, -1e-3, -0.0, 0.0, 1e-3, 50, 1e4, np.inf, np.nan], dtype)
    with np.errstate(invalid="ignore"):  # gelu(-inf) is -inf * 0 = nan, as in PyTorch
        cpu = ACTIVATIONS[name](x).data
    device = ACTIVATIONS[name](to_device(x, "opencl")).data.get()
    np.testing.assert_allclose(device, cpu, **TOLERANCE[dtype])


def test_gelu_of_extreme_inputs_matches_cpu():
    x = np.array([-1e4, -40.0, -8.0, -1e-3, 0.0, 1e-3, 8.0, 40.0, 1e4], np.float64)
    _assert_same_on_both(F.gelu, [x], np.float64)


def test_relu_backward_is_one_fused_launch():
    gy = to_device(np.ones((3, 5), np.float32), "opencl")
    y = to_device(np.array([[-1, 0, 1, 2, -3]] * 3, np.float32), "opencl")
    fused = fused_op(gy.xp, "relu_backward")
    assert fused is not None
    np.testing.assert_array_equal(fused(gy, y).get(), (y.get() > 0).astype(np.float32))


# =============================================================================================
# softmax, log_softmax
# =============================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((7,), -1), ((5, 1), -1), ((3, 4, 19), -1), ((6, 5), 0)])
def test_softmax_family_matches_cpu(name, shape, axis, dtype):
    x = _logits(shape, dtype)
    f = getattr(F, name)
    _assert_same_on_both(lambda v: f(v, axis=axis), [x], dtype, second_order=True)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_family_of_non_contiguous_and_huge_logits_matches_cpu(name):
    x = _logits((8, 6), np.float32) * 300
    f = getattr(F, name)
    _assert_same_on_both(lambda v: F.sum(f(v.T), axis=0), [x], np.float32)


# =============================================================================================
# softmax cross entropy
# =============================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (67, 11), (130, 1000)])
def test_softmax_cross_entropy_matches_cpu(shape, label_dtype, dtype):
    x = _logits(shape, dtype)
    t = np.random.default_rng(1).integers(0, shape[1], shape[0]).astype(label_dtype)
    _assert_same_on_both(lambda v: F.softmax_cross_entropy(v, to_device(t, v.device)), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_of_non_contiguous_logits_and_labels_matches_cpu(dtype):
    x = _logits((12, 9), dtype)  # used transposed and sliced: (9, 6) logits with strides
    t = np.arange(18) % 6

    def f(v):
        return F.softmax_cross_entropy(v.T[:, ::2], to_device(t, v.device)[::2])

    _assert_same_on_both(f, [x], dtype)


def test_softmax_cross_entropy_of_huge_logits_is_finite_on_opencl():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]], np.float32)
    t = np.array([1, 2])
    loss, gx = _forward_and_grads(lambda v: F.softmax_cross_entropy(v, t), [x], "opencl")
    assert np.isfinite(loss) and np.isfinite(gx).all()
    np.testing.assert_allclose(loss, 1000.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_second_order_grads_match_cpu(dtype):
    x = _logits((6, 4), dtype)
    t = np.array([0, 3, 1, 2, 3, 0])
    _assert_same_on_both(lambda v: F.softmax_cross_entropy(v, t), [x], dtype, second_order=True)


@pytest.mark.parametrize("bad", [3, -1])
def test_softmax_cross_entropy_label_out_of_range_is_reported_at_the_next_read(bad):
    x = _on("opencl", np.zeros((2, 3), np.float32))
    t = to_device(np.array([0, bad]), "opencl")
    loss = F.softmax_cross_entropy(x, t)  # does not wait for the device
    with pytest.raises(ValueError, match=r"softmax_cross_entropy: labels must lie in \[0, 3\)"):
        loss.data.get()
    # Reported once: the device is usable afterwards.
    good = F.softmax_cross_entropy(x, to_device(np.array([0, 2]), "opencl"))
    np.testing.assert_allclose(good.data.get(), np.log(3), rtol=1e-6)


def test_softmax_cross_entropy_label_out_of_range_still_raises_at_once_on_cpu():
    with pytest.raises(ValueError, match=r"\[0, 3\) for 3 classes, found 3"):
        F.softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))


def test_embed_id_out_of_range_is_reported_at_the_next_read():
    W = _on("opencl", np.ones((5, 2), np.float32))
    y = F.embed_id(to_device(np.array([1, -1]), "opencl"), W)
    with pytest.raises(ValueError, match=r"embed_id: ids must lie in \[0, 5\)"):
        y.data.get()
    np.testing.assert_array_equal(F.embed_id(np.array([4, 0]), W).data.get(), np.ones((2, 2)))


# =============================================================================================
# mean squared error, sigmoid cross entropy
# =============================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7, 13), (301, 400)])
@pytest.mark.parametrize("name", ["mean_squared_error", "sigmoid_cross_entropy"])
def test_elementwise_losses_and_both_grads_match_cpu(name, shape, dtype):
    x = _logits(shape, dtype)
    t = np.random.default_rng(5).random(shape).astype(dtype)
    _assert_same_on_both(getattr(F, name), [x, t], dtype, second_order=True)


@pytest.mark.parametrize("name", ["mean_squared_error", "sigmoid_cross_entropy"])
def test_elementwise_losses_of_non_contiguous_inputs_and_mixed_dtypes_match_cpu(name):
    x = _logits((9, 8), np.float32)
    t = np.random.default_rng(5).random((8, 9))
    f = getattr(F, name)
    _assert_same_on_both(lambda v, w: f(v.T[::2], w[::2]), [x, t.astype(np.float32)], np.float32)
    if name == "mean_squared_error":  # a float64 target Variable keeps its own dtype
        _assert_same_on_both(lambda v, w: f(v.T, w), [x.astype(np.float64), t], np.float64)


@pytest.mark.parametrize(
    "loss, match",
    [
        (F.sigmoid_cross_entropy, "sigmoid_cross_entropy: targets t must lie in"),
        (F.binary_cross_entropy, "binary_cross_entropy: targets t must lie in"),
    ],
)
def test_target_outside_unit_interval_is_reported_at_the_next_read(loss, match):
    p = _on("opencl", np.full((2, 3), 0.5, np.float32))
    result = loss(p, np.array([[0, 1, 2], [0, 0, 1]], np.float32))
    with pytest.raises(ValueError, match=match):
        result.data.get()


# =============================================================================================
# batch norm
# =============================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 7), (3, 5, 9, 11), (130, 2)])
def test_batch_norm_forward_grads_and_running_statistics_match_cpu(shape, dtype):
    channels = shape[1]
    x = _logits(shape, dtype) + 2
    rng = np.random.default_rng(3)
    gamma = rng.standard_normal(channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    running = {}

    def run(device):
        mean = to_device(np.full(channels, 0.5, dtype), device)
        var = to_device(np.full(channels, 2.0, dtype), device)

        def f(v, g, b):
            return F.batch_norm(v, g, b, mean, var, decay=0.8)

        results = _forward_and_grads(f, [x, gamma, beta], device)
        running[device] = (to_host(mean), to_host(var))
        return results

    for expected, actual in zip(run("cpu"), run("opencl")):
        np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])
    for expected, actual in zip(running["cpu"], running["opencl"]):
        np.testing.assert_allclose(actual, expected, **TOLERANCE[dtype])


def test_batch_norm_of_non_contiguous_float64_input_with_float32_running_stats_matches_cpu():
    x = _logits((6, 4, 5), np.float64).transpose(2, 1, 0)  # (5, 4, 6), not contiguous
    gamma, beta = np.ones(4, np.float32), np.zeros(4, np.float32)
    running = {}

    def run(device):
        mean = to_device(np.zeros(4, np.float32), device)
        var = to_device(np.ones(4, np.float32), device)
        results = _forward_and_grads(
            lambda v, g, b: F.batch_norm(v, g, b, mean, var), [x, gamma, beta], device
        )
        running[device] = (to_host(mean), to_host(var))
        return results

    for expected, actual in zip(run("cpu"), run("opencl")):
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
    for expected, actual in zip(running["cpu"], running["opencl"]):
        np.testing.assert_allclose(actual, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_second_order_grads_match_cpu(dtype):
    x = _logits((4, 3, 2, 2), dtype)
    gamma = np.array([1.0, 2.0, -0.5], dtype)
    beta = np.zeros(3, dtype)
    _assert_same_on_both(
        lambda v, g, b: F.batch_norm(v, g, b, None, None), [x, gamma, beta], dtype, True
    )


# =============================================================================================
# layer norm
# =============================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (5, 1), (5, 7), (3, 4, 33), (130, 3)])
def test_layer_norm_forward_and_grads_match_cpu(shape, dtype):
    x = _logits(shape, dtype) + 1
    rng = np.random.default_rng(4)
    gamma = rng.standard_normal(shape[-1]).astype(dtype)
    beta = rng.standard_normal(shape[-1]).astype(dtype)
    _assert_same_on_both(F.layer_norm, [x, gamma, beta], dtype)


def test_layer_norm_of_non_contiguous_input_and_second_order_grads_match_cpu():
    x = _logits((6, 5), np.float64)
    gamma = np.linspace(0.5, 2, 6)
    beta = np.zeros(6)

    def f(v, g, b):
        return F.layer_norm(v.T, g, b)

    _assert_same_on_both(f, [x, gamma, beta], np.float64, second_order=True)


# =============================================================================================
# dropout
# =============================================================================================
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9])
def test_dropout_keeps_elements_at_the_expected_rate_and_scales_them(ratio, dtype):
    x = _on("opencl", np.ones((301, 333), dtype))
    y = F.dropout(x, ratio)
    y.backward()
    out, grad = y.data.get(), x.grad.data.get()
    kept = out != 0
    # Over 100k elements the kept fraction is within 1% of its expectation (> 6 sigma).
    assert abs(kept.mean() - (1 - ratio)) < 0.01
    np.testing.assert_allclose(out[kept], 1 / (1 - ratio), rtol=1e-6)
    np.testing.assert_array_equal(grad, out)  # backward scales by the same mask


def test_dropout_masks_differ_between_calls_and_repeat_after_seeding():
    xp = to_device(np.zeros(1), "opencl").xp
    x = _on("opencl", np.ones(1000, np.float32))
    xp.random.seed(7)
    first, second = F.dropout(x).data.get(), F.dropout(x).data.get()
    xp.random.seed(7)
    np.testing.assert_array_equal(F.dropout(x).data.get(), first)
    assert (first != second).any()


def test_dropout_of_non_contiguous_input_uses_its_values():
    base = np.arange(1, 61, dtype=np.float32).reshape(6, 10)
    x = _on("opencl", base)
    y = F.dropout(x[:, ::3], 0.5).data.get()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 2 * base[:, ::3][kept])


# =============================================================================================
# no blocking reads inside a training step
# =============================================================================================
def test_mlp_training_step_never_waits_for_the_device(monkeypatch):
    import pyopencl as cl

    from pygrad import opencl

    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4)).to("opencl")
    x = to_device(rng.standard_normal((8, 20)).astype(np.float32), "opencl")
    t = to_device(rng.integers(0, 4, 8), "opencl")
    optimizer = nn.optim.SGD(model.params(), lr=0.1)

    def step():
        loss = F.softmax_cross_entropy(model(x), t)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss

    first = step().data.get()  # warm-up: kernels compiled, buffers allocated
    opencl.synchronize()
    reads = []
    copy = cl.enqueue_copy

    def counting_copy(queue, dest, src, **kwargs):
        if isinstance(dest, np.ndarray) and kwargs.get("is_blocking", True):
            reads.append(dest.shape)
        return copy(queue, dest, src, **kwargs)

    monkeypatch.setattr(cl, "enqueue_copy", counting_copy)
    loss = step()
    assert reads == []
    monkeypatch.undo()
    assert loss.data.get() < first  # the step did train
