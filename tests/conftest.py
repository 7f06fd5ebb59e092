"""Shared fixtures: every available device, and PyTorch as an oracle where it is installed."""

import os

import numpy as np
import pytest

DEVICES = ["cpu", "opencl"]
NO_OPENCL = "no OpenCL platform (pip install pygrad[opencl])"


def _opencl_available() -> bool:
    try:
        from pygrad import opencl
    except ImportError:
        return False
    return opencl.is_available()


def require_opencl() -> None:
    """Skip the calling test where OpenCL is absent; fail it in CI, whose set-up installs it.

    The development extras bring PyOpenCL and PoCL, so in CI a missing platform is a broken
    install step, not a machine without OpenCL, and must not pass as a skip.
    """
    if _opencl_available():
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{NO_OPENCL}: the CI set-up should have installed it")
    pytest.skip(NO_OPENCL)


@pytest.fixture(params=DEVICES)
def device(request):
    """Run a test once per device; OpenCL is skipped, with the reason, where it is absent."""
    if request.param == "opencl":
        require_opencl()
    return request.param


@pytest.fixture
def float64_device(device):
    """``device``, for a test in float64: skipped, with the reason, on a device without it."""
    if device != "cpu":
        from pygrad.backends.opencl.runtime import get_device

        if not get_device(device).supports_float64:
            pytest.skip(f"{device} has no float64")
    return device


@pytest.fixture(scope="session")
def opencl():
    """The name of the first OpenCL device, for tests that need one (see require_opencl)."""
    require_opencl()
    return "opencl:0"


@pytest.fixture
def torch():
    """PyTorch, used as an independent oracle; the test is skipped where it is not installed."""
    return pytest.importorskip("torch")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
