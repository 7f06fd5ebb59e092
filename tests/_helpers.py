"""Helpers shared by test modules (fixtures live in the conftest.py files).

Tests import them as ``from tests._helpers import ...``: every test folder is a package, so
that test files of the same name in different folders do not collide.
"""

import numpy as np

from pygrad import Variable, no_grad, using_config
from pygrad.backends import to_host
from pygrad.utils import gradient_check

ATOL = 1e-5
RTOL = 1e-5
# Backprop in float32 against central differences in float64, where a device lacks float64.
FLOAT32_RTOL = 1e-3
FLOAT32_ATOL = 1e-3


def assert_matches(actual, expected, rtol=RTOL, atol=ATOL):
    """``actual`` (an OpenCL array) equals the NumPy ``expected`` in shape, dtype and values."""
    host = actual.get()
    expected = np.asarray(expected)
    assert host.shape == expected.shape
    assert host.dtype == expected.dtype, (host.dtype, expected.dtype)
    np.testing.assert_allclose(host, expected, rtol=rtol, atol=atol)


def grads_with_graph(f, seed=1):
    """A function of the same inputs as ``f`` returning the gradients of ``sum(w * f(...))``
    built with ``create_graph=True``, so that gradient_check can test second derivatives.

    The weights ``w`` go to the output's device and dtype, so the same function serves the
    finite-difference check on the CPU and the analytic gradients on any device.
    """

    def grads(*xs):
        saved = [x.grad for x in xs]
        for x in xs:
            x.grad = None
        with using_config("enable_backprop", True):
            y = f(*xs)
            weights = np.random.default_rng(seed).standard_normal(y.shape).astype(y.dtype)
            (y * Variable(weights, device=y.device)).sum().backward(create_graph=True)
        result = tuple(x.grad for x in xs)
        for x, grad in zip(xs, saved):
            x.grad = grad
        return result

    return grads


def host(x) -> np.ndarray:
    """The data of a Variable, or a device or NumPy array, as a NumPy array on the host."""
    return np.asarray(to_host(x.data if isinstance(x, Variable) else x))


def device_array(a, device: str):
    """``a`` as a raw array on ``device`` (running statistics, say): NumPy on the CPU."""
    return Variable(np.asarray(a), device=device).data


def float_dtype(device: str):
    """The widest float dtype of ``device``: float64, or float32 where it lacks float64."""
    if device == "cpu":
        return np.dtype(np.float64)
    from pygrad.backends.opencl.runtime import get_device

    return np.dtype(np.float64 if get_device(device).supports_float64 else np.float32)


def _outputs(f, inputs) -> tuple:
    ys = f(*inputs)
    return tuple(ys) if isinstance(ys, (tuple, list)) else (ys,)


def _weighted_sum(f, inputs, weights) -> float:
    with no_grad():
        return float(sum(np.sum(host(y) * w) for y, w in zip(_outputs(f, inputs), weights)))


def gradient_check_on(device, f, *inputs, rtol=1e-4, atol=1e-5, eps=1e-6, seed=0) -> bool:
    """``pygrad.utils.gradient_check`` with backprop run on ``device``.

    The central differences are taken on the CPU in float64, as gradient_check takes them; the
    gradients they are compared with come from backprop on ``device`` in its widest float dtype
    (see float_dtype), with ``rtol`` and ``atol`` in float64 and FLOAT32_RTOL / FLOAT32_ATOL
    in float32.  On the CPU this is gradient_check itself.  Asserts on a mismatch, naming the
    input, and returns True, so that tests read ``assert gradient_check_on(device, f, x)``.
    """
    if device == "cpu":
        return gradient_check(f, *inputs, rtol=rtol, atol=atol, eps=eps, seed=seed)
    points = [np.array(host(x), dtype=np.float64) for x in inputs]
    cpu_inputs = [Variable(point) for point in points]
    rng = np.random.default_rng(seed)
    with no_grad():
        weights = [rng.standard_normal(y.shape) for y in _outputs(f, cpu_inputs)]
    numeric = []
    for cpu_input in cpu_inputs:
        flat, grad = cpu_input.data.reshape(-1), np.zeros(cpu_input.size)
        for i, original in enumerate(flat.copy()):
            flat[i] = original + eps
            up = _weighted_sum(f, cpu_inputs, weights)
            flat[i] = original - eps
            down = _weighted_sum(f, cpu_inputs, weights)
            flat[i] = original
            grad[i] = (up - down) / (2 * eps)
        numeric.append(grad.reshape(cpu_input.shape))

    dtype = float_dtype(device)
    if dtype == np.float32:
        rtol, atol = FLOAT32_RTOL, FLOAT32_ATOL
    variables = [Variable(point.astype(dtype), device=device) for point in points]
    ys = _outputs(f, variables)
    loss = sum(
        (y * Variable(w.astype(y.dtype), device=y.device)).sum() for y, w in zip(ys, weights)
    )
    loss.backward()
    for index, (v, expected) in enumerate(zip(variables, numeric)):
        assert v.grad is None or (v.grad.device, v.grad.dtype) == (v.device, dtype), index
        analytic = np.zeros_like(expected) if v.grad is None else host(v.grad)
        np.testing.assert_allclose(
            analytic, expected, rtol=rtol, atol=atol, err_msg=f"input {index} on {device}"
        )
    return True
