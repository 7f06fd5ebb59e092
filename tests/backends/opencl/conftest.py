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


@pytest.fixture
def launches(opencl, monkeypatch):
    """Count the kernels enqueued: ``launches[0]``, reset it to count from a point on."""
    import pyopencl as cl

    count = [0]
    enqueue = cl.enqueue_nd_range_kernel

    def counted_enqueue(*args, **kwargs):
        count[0] += 1
        return enqueue(*args, **kwargs)

    # Every launch of the backend goes through kernels.launch, which calls this function.
    monkeypatch.setattr(cl, "enqueue_nd_range_kernel", counted_enqueue)
    return count
