"""Fixtures of the OpenCL backend tests: the array module itself, and float32 test data."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def xp(opencl):
    from pygrad.backends import opencl as backend

    return backend


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return lambda *shape: rng.standard_normal(shape).astype(np.float32)
