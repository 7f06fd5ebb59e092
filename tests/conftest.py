"""Shared fixtures: every available device, and PyTorch as an oracle where it is installed."""

import numpy as np
import pytest


def _opencl_available() -> bool:
    try:
        from pygrad import opencl
    except ImportError:
        return False
    return opencl.is_available()


DEVICES = ["cpu", "opencl"]


@pytest.fixture(params=DEVICES)
def device(request):
    """Run a test once per device; OpenCL is skipped, with the reason, where it is absent."""
    if request.param == "opencl" and not _opencl_available():
        pytest.skip("no OpenCL platform (pip install pygrad[opencl])")
    return request.param


@pytest.fixture
def torch():
    """PyTorch, used as an independent oracle; the test is skipped where it is not installed."""
    return pytest.importorskip("torch")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
