"""Helpers shared by test modules (fixtures live in the conftest.py files).

Tests import them as ``from tests._helpers import ...``: every test folder is a package, so
that test files of the same name in different folders do not collide.
"""

import numpy as np

from pygrad import Variable, using_config

ATOL = 1e-5
RTOL = 1e-5


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
