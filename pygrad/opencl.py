"""OpenCL devices at a glance: whether pygrad can use one, and which ones there are.

>>> import pygrad.opencl
>>> pygrad.opencl.is_available()
True
>>> x = pygrad.Variable([1.0, 2.0], device="opencl")

Nothing here imports PyOpenCL until one of these functions is called.
"""

from __future__ import annotations

__all__ = ["is_available", "device_count", "devices", "synchronize"]


def _runtime():
    from pygrad.backends.opencl import runtime

    return runtime


def is_available() -> bool:
    """Whether at least one OpenCL device can be used (never raises).

    False when PyOpenCL is not installed or no OpenCL platform is found; install both with
    ``pip install pygrad[opencl]``.
    """
    try:
        return _runtime().device_count() > 0
    except Exception:
        return False


def device_count() -> int:
    """Number of OpenCL devices (0 when OpenCL is unavailable)."""
    try:
        return _runtime().device_count()
    except Exception:
        return 0


def devices() -> list:
    """One record per device, in ``"opencl:N"`` order.

    Returns
    -------
    list of DeviceInfo
        Named tuples with ``name`` (``"opencl:0"``), ``description`` (the driver's device
        name), ``platform``, ``type`` (``"CPU"``, ``"GPU"``, ...) and ``float64`` (whether the
        device computes in double precision).  Empty when OpenCL is unavailable.
    """
    try:
        return _runtime().device_infos()
    except Exception:
        return []


def synchronize(device: str | None = None) -> None:
    """Wait until the work queued on ``device`` (default: every device in use) has finished.

    Kernels run asynchronously; call this before timing code.
    """
    _runtime().synchronize(device)
