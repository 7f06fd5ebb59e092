"""Array backends: which array module serves an array, and how arrays move between devices.

A backend is an *array module*: NumPy for the CPU, :mod:`pygrad.backends.opencl` for OpenCL
devices.  Functions never name a backend; they ask :func:`get_array_module` for the module of
their inputs and use the NumPy-style calls every backend provides.  Optional backends are
imported the first time a device of theirs is asked for, so ``import pygrad`` needs NumPy alone.
"""

from __future__ import annotations

import numpy as np

from pygrad.backends import host_memory

__all__ = [
    "DeviceError",
    "get_array_module",
    "device_of",
    "parse_device",
    "to_device",
    "asarray",
]


# Large host arrays are reused from step to step instead of faulted in afresh (see there).
host_memory.tune()


class DeviceError(ValueError):
    """Raised when one operation is given arrays that live on different devices."""


def parse_device(device) -> str:
    """Return the canonical name of ``device``.

    Parameters
    ----------
    device : str or None
        ``None`` or ``"cpu"`` for NumPy; ``"opencl"`` or ``"opencl:N"`` for the N-th OpenCL
        device (``"opencl"`` means ``"opencl:0"``).

    Returns
    -------
    str
        ``"cpu"`` or ``"opencl:N"``.
    """
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'opencl:0', got {device!r}")
    name = device.strip().lower()
    if name == "cpu":
        return "cpu"
    if name == "opencl":
        return "opencl:0"
    if name.startswith("opencl:"):
        index = name[len("opencl:") :]
        if index.isdigit():
            return f"opencl:{int(index)}"
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'opencl' or 'opencl:N'")


def get_array_module(*arrays):
    """Return the array module (NumPy or an accelerator backend) that serves ``arrays``.

    Python numbers and NumPy arrays belong to NumPy; an accelerator array names its module in
    its ``xp`` attribute.  The first array that is not NumPy's decides.
    """
    for x in arrays:
        xp = getattr(x, "xp", None)
        if xp is not None:
            return xp
    return np


def device_of(array) -> str:
    """Return the canonical name of the device that holds ``array``."""
    device = getattr(array, "device_name", None)
    return "cpu" if device is None else device


def _opencl():
    from pygrad.backends import opencl

    return opencl


def to_device(array, device: str):
    """Return ``array`` on ``device`` (the same object when it is already there)."""
    device = parse_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    host = np.asarray(array.get() if hasattr(array, "get") else array)
    return _opencl().asarray(host, device=device)


def asarray(data, device: str = "cpu", dtype=None):
    """Return ``data`` as an array of ``device``, converting Python data the NumPy way."""
    device = parse_device(device)
    if device == "cpu":
        if device_of(data) != "cpu":
            data = data.get()
        return np.asarray(data, dtype=dtype)
    if device_of(data) == device:
        return data if dtype is None else data.astype(dtype)
    host = data.get() if device_of(data) != "cpu" else data
    return _opencl().asarray(np.asarray(host, dtype=dtype), device=device)
