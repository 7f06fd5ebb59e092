"""Tests of pygrad/backends/opencl/runtime.py and pygrad.opencl: device discovery, the
"how to install" errors (tested everywhere, OpenCL or not) and calls the backend lacks."""

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import pygrad
import pygrad.opencl
from pygrad import Variable


def test_import_pygrad_does_not_import_pyopencl():
    code = "import sys, pygrad, pygrad.opencl; assert 'pyopencl' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


def _forget_devices(monkeypatch, runtime):
    monkeypatch.setattr(runtime, "_cl_devices", None)
    monkeypatch.setattr(runtime, "_discovery_error", None)
    monkeypatch.setattr(runtime, "_devices", {})


def test_missing_platform_error_says_how_to_install(monkeypatch):
    from pygrad.backends.opencl import runtime

    def no_platform():
        raise RuntimeError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    fake_cl = types.SimpleNamespace(get_platforms=no_platform, Error=Exception)
    _forget_devices(monkeypatch, runtime)
    monkeypatch.setattr(runtime, "cl", fake_cl)
    assert pygrad.opencl.is_available() is False
    assert pygrad.opencl.device_count() == 0
    assert pygrad.opencl.devices() == []
    with pytest.raises(RuntimeError, match=r"pip install pygrad\[opencl\]"):
        Variable([1.0, 2.0], device="opencl")
    with pytest.raises(runtime.OpenCLUnavailableError, match="PLATFORM_NOT_FOUND"):
        runtime.get_device("opencl:0")


def test_missing_pyopencl_error_says_how_to_install(monkeypatch):
    from pygrad.backends.opencl import runtime

    _forget_devices(monkeypatch, runtime)
    monkeypatch.setattr(runtime, "cl", None)
    monkeypatch.setattr(runtime, "_import_error", ImportError("No module named 'pyopencl'"))
    assert pygrad.opencl.is_available() is False
    with pytest.raises(
        RuntimeError, match=r"PyOpenCL is not installed.*pip install pygrad\[opencl\]"
    ):
        Variable(np.ones(3, np.float32)).to("opencl")


def test_devices_lists_opencl_names(xp):
    infos = pygrad.opencl.devices()
    assert pygrad.opencl.device_count() == len(infos) >= 1
    assert infos[0].name == "opencl:0"
    assert isinstance(infos[0].float64, bool)


def test_unknown_device_index_is_a_value_error(xp):
    with pytest.raises(ValueError, match="opencl:99 does not exist"):
        xp.zeros(3, device="opencl:99")


def test_missing_call_fails_loudly_naming_it(xp):
    with pytest.raises(AttributeError, match="opencl backend has no 'fft'"):
        _ = xp.fft
    with pytest.raises(AttributeError, match="opencl backend has no 'multiply.at'"):
        _ = xp.multiply.at


@pytest.mark.parametrize(
    "path", ["linalg.norm", "random.shuffle", "add.accumulate", "ndarray.cumsum"]
)
def test_missing_calls_below_the_module_name_themselves(xp, path):
    owner, name = path.split(".")
    target = xp.zeros(2) if owner == "ndarray" else getattr(xp, owner)
    with pytest.raises(AttributeError, match=f"opencl backend has no '{path}'"):
        getattr(target, name)
