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
    "register_backend",
    "backend_names",
    "get_array_module",
    "is_array",
    "to_host",
    "device_of",
    "parse_device",
    "to_device",
    "asarray",
    "fused_op",
]


# Large host arrays are reused from step to step instead of faulted in afresh (see there).
host_memory.tune()


class DeviceError(ValueError):
    """Raised when one operation is given arrays that live on different devices."""


# --- the protocol -----------------------------------------------------------------------------
# An accelerator array offers ``xp`` (its array module), ``device_name`` (``"name:N"``) and
# ``get()`` (a NumPy copy).  Its array module offers NumPy's calls, ``asarray(host,
# device=...)``, and may offer ``fused_ops``: a dict of fused kernels for hot composites that
# functions look up with :func:`fused_op` and otherwise compute from NumPy-style calls.

_loaders: dict = {}  # device kind ("opencl") -> callable returning its array module


def register_backend(kind: str, load) -> None:
    """Make devices ``kind`` and ``kind:N`` known; ``load()`` returns the array module.

    The module is loaded the first time one of its devices is asked for, so that an optional
    backend costs nothing at ``import pygrad``.
    """
    if kind == "cpu" or not kind.isidentifier():
        raise ValueError(f"register_backend: {kind!r} cannot name a device kind")
    _loaders[kind] = load


def backend_names() -> tuple:
    """The device kinds known besides ``"cpu"``, in the order they were registered."""
    return tuple(_loaders)


def _backend(device: str):
    return _loaders[device.partition(":")[0]]()


def parse_device(device) -> str:
    """Return the canonical name of ``device``.

    Parameters
    ----------
    device : str or None
        ``None`` or ``"cpu"`` for NumPy; ``"opencl"`` or ``"opencl:N"`` for the N-th OpenCL
        device (``"opencl"`` means ``"opencl:0"``), and likewise for other registered kinds.

    Returns
    -------
    str
        ``"cpu"`` or ``"kind:N"``.
    """
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'opencl:0', got {device!r}")
    name = device.strip().lower()
    if name == "cpu":
        return "cpu"
    kind, colon, index = name.partition(":")
    if kind in _loaders:
        if not colon:
            return f"{kind}:0"
        if index.isdigit():
            return f"{kind}:{int(index)}"
    known = ", ".join(["'cpu'"] + [f"'{k}' or '{k}:N'" for k in _loaders])
    raise ValueError(f"unknown device {device!r}: expected {known}")


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


def is_array(x) -> bool:
    """Whether ``x`` is an array of some device (a NumPy array or an accelerator array)."""
    return isinstance(x, np.ndarray) or getattr(x, "xp", None) is not None


def to_host(x):
    """``x`` as NumPy data: accelerator arrays are copied to the host (waiting for their
    device), anything else is returned as it is."""
    if type(x) is np.ndarray or getattr(x, "xp", None) is None:
        return x
    return x.get()


def device_of(array) -> str:
    """Return the canonical name of the device that holds ``array``."""
    device = getattr(array, "device_name", None)
    return "cpu" if device is None else device


def fused_op(xp, name: str):
    """The fused kernel ``name`` of array module ``xp``, or None when it has none.

    Functions call it for hot composites (an optimizer update, im2col, softmax cross
    entropy ...) and otherwise compute the same result from NumPy-style calls.
    """
    if xp is np:  # NumPy has none; asking it would cost a failed attribute lookup on every op
        return None
    ops = getattr(xp, "fused_ops", None)
    return None if ops is None else ops.get(name)


def to_device(array, device: str):
    """Return ``array`` on ``device`` (the same object when it is already there)."""
    device = parse_device(device)
    if device_of(array) == device:
        return array
    host = np.asarray(to_host(array))
    if device == "cpu":
        return host
    return _backend(device).asarray(host, device=device)


def asarray(data, device: str = "cpu", dtype=None):
    """Return ``data`` as an array of ``device``, converting Python data the NumPy way."""
    device = parse_device(device)
    if device == "cpu":
        return np.asarray(to_host(data), dtype=dtype)
    if device_of(data) == device:
        return data if dtype is None else data.astype(dtype)
    return _backend(device).asarray(np.asarray(to_host(data), dtype=dtype), device=device)


def _load_opencl():
    from pygrad.backends import opencl

    return opencl


register_backend("opencl", _load_opencl)
