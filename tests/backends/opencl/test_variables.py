"""Tests of Variables on an OpenCL device against the same computation on the CPU:
forward, backward, second-order grads and moves between devices."""

import numpy as np
import pytest

import pygrad
from pygrad import Variable
from pygrad import functions as F


def _run_on(device, a, b, w):
    x, y, W = (Variable(v, device=device) for v in (a, b, w))
    h = F.tanh(F.matmul(F.add(F.mul(x, y), F.sub(x, y)), W))
    z = F.sum(F.div(F.exp(h * 0.5), (y * y + 1).sum()) - 2.0 * h, axis=1, keepdims=True)
    column = z.reshape(-1, 1)
    loss = F.sum(column.T @ column)
    loss.backward()
    return [loss, x.grad, y.grad, W.grad]


@pytest.mark.parametrize("shapes", [((3, 4), (4,), (4, 2)), ((2, 3, 4), (3, 1), (4, 5))], ids=str)
def test_variable_forward_and_backward_match_cpu(xp, data, shapes):
    a, b, w = (data(*s) for s in shapes)
    cpu = _run_on("cpu", a, b, w)
    gpu = _run_on("opencl", a, b, w)
    for c, g in zip(cpu, gpu):
        assert g.device == "opencl:0" and g.dtype == np.float32
        np.testing.assert_allclose(g.numpy(), c.numpy(), rtol=1e-4, atol=1e-4)


def test_variable_moves_between_devices_and_keeps_grads_on_device(xp, data):
    a = data(2, 3)
    x = Variable(a)
    y = x.to("opencl")
    assert y.device == "opencl:0" and y.to("cpu").device == "cpu"
    assert repr(y).endswith("device='opencl:0')")
    loss = F.sum(y * y)
    loss.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), 2 * a, rtol=1e-6)
    z = Variable(a, device="opencl")
    F.sum(F.exp(z)).backward()
    assert z.grad.device == "opencl:0"


def test_zero_dimensional_data_keeps_its_shape_on_device_and_back(xp):
    assert xp.asarray(np.float32(2.0)).shape == ()
    x = Variable(np.float32(2.0))
    y = x.to("opencl")
    assert y.shape == () and y.to("cpu").shape == ()
    (F.exp(y) * 3.0).backward()
    assert x.grad.shape == () and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, 3.0 * np.exp(2.0), rtol=1e-6)
    assert Variable(0.5, device="opencl").shape == ()


def test_mixing_devices_raises_device_error_naming_both(xp):
    cpu = Variable(np.ones(3, np.float32))
    gpu = Variable(np.ones(3, np.float32), device="opencl")
    with pytest.raises(pygrad.DeviceError, match=r"cpu.*opencl:0|opencl:0.*cpu"):
        cpu + gpu
    with pytest.raises(pygrad.DeviceError, match=r"cpu.*opencl:0|opencl:0.*cpu"):
        F.matmul(gpu.reshape(1, 3), cpu.reshape(3, 1))


def test_second_order_grad_of_tanh_on_device(xp, data):
    a = data(5)
    grads = []
    for device in ("cpu", "opencl"):
        x = Variable(a, device=device)
        y = F.tanh(x)
        y.backward(create_graph=True)
        gx = x.grad
        x.clear_grad()
        gx.backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


FUNCTIONS = {
    "relu": lambda v, d: F.relu(v(d(3, 4))),
    "softmax_cross_entropy": lambda v, d: F.softmax_cross_entropy(
        v(d(5, 4)), v(np.array([0, 3, 1, 1, 2]))
    ),
    "conv2d": lambda v, d: F.conv2d(v(d(2, 3, 6, 6)), v(d(4, 3, 3, 3)), v(d(4)), stride=2, pad=1),
    "max_pooling": lambda v, d: F.max_pooling(v(d(2, 3, 6, 6)), 2),
    "layer_norm": lambda v, d: F.layer_norm(v(d(3, 4)), v(d(4)), v(d(4))),
    "logsumexp": lambda v, d: F.logsumexp(v(d(3, 4)), axis=1),
}


def _run_function(name: str, device: str) -> list:
    """The output of ``FUNCTIONS[name]`` and the grads of its inputs, as NumPy arrays."""
    rng = np.random.default_rng(1)
    leaves = []

    def variable(a):
        leaves.append(Variable(a, device=device))
        return leaves[-1]

    y = FUNCTIONS[name](variable, lambda *s: rng.standard_normal(s).astype(np.float32))
    F.sum(y * y).backward()
    assert y.device == ("cpu" if device == "cpu" else "opencl:0")
    return [y.numpy()] + [x.grad.numpy() for x in leaves if x.grad is not None]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_more_functions_run_on_device_like_on_cpu(xp, name):
    for cpu, gpu in zip(_run_function(name, "cpu"), _run_function(name, "opencl")):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_get_item_grad_accumulates_repeated_indices_on_device(xp, data):
    a = data(4, 3)
    x = Variable(a, device="opencl")
    y = x[[0, 2, 0]]
    F.sum(y * y).backward()
    expected = np.zeros_like(a)
    np.add.at(expected, [0, 2, 0], 2 * a[[0, 2, 0]])
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
