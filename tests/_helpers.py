"""Helpers shared by test modules (fixtures live in the conftest.py files).

Tests import them as ``from tests._helpers import ...``: every test folder is a package, so
that test files of the same name in different folders do not collide.
"""

import numpy as np

ATOL = 1e-5
RTOL = 1e-5


def assert_matches(actual, expected, rtol=RTOL, atol=ATOL):
    """``actual`` (an OpenCL array) equals the NumPy ``expected`` in shape, dtype and values."""
    host = actual.get()
    expected = np.asarray(expected)
    assert host.shape == expected.shape
    assert host.dtype == expected.dtype, (host.dtype, expected.dtype)
    np.testing.assert_allclose(host, expected, rtol=rtol, atol=atol)
