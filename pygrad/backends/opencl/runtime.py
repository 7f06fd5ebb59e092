"""OpenCL devices for the array module: discovery, one context, queue, memory pool and kernel
cache per device (all created on first use), and the error raised when OpenCL is missing."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import NamedTuple

import numpy as np

try:
    import pyopencl as cl
    import pyopencl.tools as cl_tools

    _import_error = None
except ImportError as error:  # keep the module importable; asking for a device explains
    cl = None
    cl_tools = None
    _import_error = error

__all__ = [
    "OpenCLUnavailableError",
    "DeviceInfo",
    "Device",
    "device_infos",
    "device_count",
    "get_device",
    "current_device",
    "use_device",
    "synchronize",
    "missing_call",
]

INSTALL_HINT = "pip install pygrad[opencl]"
_ARG_CACHE_SIZE = 4096  # distinct kernel argument sets kept on each device


def missing_call(name: str, owner: str = "") -> AttributeError:
    """The error for a NumPy name this backend lacks: ``opencl backend has no 'owner.name'``.

    For the ``__getattr__`` of the backend's modules and types, which only names they lack
    reach.  Dunder names get Python's plain error: protocols (copy, pickle) probe for them.
    """
    if name.startswith("__") and name.endswith("__"):
        return AttributeError(name)
    return AttributeError(f"opencl backend has no '{owner}{name}'")


class OpenCLUnavailableError(RuntimeError):
    """Raised when an OpenCL device is asked for but PyOpenCL or an OpenCL platform is missing."""


class DeviceInfo(NamedTuple):
    """What :func:`pygrad.opencl.devices` reports about one OpenCL device."""

    name: str
    description: str
    platform: str
    type: str
    float64: bool


class Device:
    """One OpenCL device with its lazily created context, in-order queue, memory pool and the
    kernels compiled for it (keyed by what generated their source)."""

    def __init__(self, index: int, cl_device):
        self.index = index
        self.name = f"opencl:{index}"
        self.cl_device = cl_device
        self.description = cl_device.name.strip()
        self.supports_float64 = bool(cl_device.double_fp_config) or (
            "cl_khr_fp64" in cl_device.extensions
        )
        self.max_work_group_size = cl_device.max_work_group_size
        self.is_cpu = bool(cl_device.type & cl.device_type.CPU)
        self.context = cl.Context([cl_device])
        self.queue = cl.CommandQueue(self.context)
        self.pool = cl_tools.MemoryPool(cl_tools.ImmediateAllocator(self.queue))
        self.kernels: dict = {}
        # A kernel object keeps the arguments last set on it until the launch: threads that
        # launch the same kernel take turns from their first set_arg to the enqueue.
        self.launch_lock = threading.Lock()
        # Each device draws from its own counter-based stream; xp.random.seed resets it.
        self.random_seed = _initial_seed if _initial_seed is not None else _seed_from_numpy()
        self.random_counter = 0
        self._error_flag = None
        self._arg_buffers: dict = {}
        # Errors kernels may report through the flag, by code, until the next host read.
        self._error_codes: dict = {}  # (type, message) -> code
        self._errors: dict = {}  # code -> (type, message)

    def draw(self, count: int) -> tuple:
        """Reserve ``count`` numbers of this device's random stream: returns its seed and the
        counter of the first, and advances the counter past the last (atomically, so that
        threads drawing at once never share numbers)."""
        with self.launch_lock:
            counter = self.random_counter
            self.random_counter = counter + count
            return self.random_seed, counter

    def arg_buffer(self, values):
        """The read-only buffer holding ``values`` (a ``kernels.MetaArgs`` or another of
        ``kernels.ARG_TYPES``, which give the dtype), made once per distinct values and type:
        kernels read their sizes, strides and scalars from it."""
        key = (type(values), values)
        buffer = self._arg_buffers.get(key)
        if buffer is None:
            if len(self._arg_buffers) >= _ARG_CACHE_SIZE:
                # Launches of a training step repeat their values; keep the newer half.
                items = list(self._arg_buffers.items())
                self._arg_buffers = dict(items[len(items) // 2 :])
            host = np.array(values or (0,), dtype=values.dtype)
            buffer = cl.Buffer(
                self.context, cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR, hostbuf=host
            )
            self._arg_buffers[key] = buffer
        return buffer

    def allocate(self, nbytes: int):
        """Return a buffer of at least ``nbytes`` bytes (OpenCL refuses empty buffers)."""
        return self.pool.allocate(max(int(nbytes), 1))

    def build(self, key, make_source, name: str, extra=()):
        """Return kernel ``name`` for ``key``, generating and compiling its source only once.

        ``extra`` lists ``(key, name)`` pairs of further kernels the same source defines;
        they are remembered too and created when first asked for, which saves compiling
        them again later.
        """
        kernel = self.kernels.get(key)
        if kernel is None:
            source = make_source()
            if self.supports_float64:
                source = "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n" + source
            program = cl.Program(self.context, source).build()
            for other_key, other_name in extra:
                self.kernels.setdefault(other_key, (program, other_name))
            kernel = self.kernels[key] = cl.Kernel(program, name)
        elif type(kernel) is tuple:
            kernel = self.kernels[key] = cl.Kernel(*kernel)
        return kernel

    def error_flag(self):
        """A one-int device buffer where kernels report an error by its code (first wins)."""
        if self._error_flag is None:
            self._error_flag = cl.Buffer(
                self.context,
                cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                hostbuf=np.zeros(1, np.int32),
            )
        return self._error_flag

    def defer_error(self, error_type: type, message: str) -> int:
        """Return the code a kernel writes to :meth:`error_flag` to raise ``error_type(message)``.

        Checking a flag right after a launch would make the host wait for the device at every
        such op; instead the flag is read at the next host read of any array of this device
        (``get``, ``item``, printing) or at :func:`synchronize`, which raise the error then.
        """
        key = (error_type, message)
        code = self._error_codes.get(key)
        if code is None:
            code = self._error_codes[key] = len(self._errors) + 1
            self._errors[code] = key
        return code

    def raise_deferred_error(self) -> None:
        """Raise the first error a kernel reported since the last check, if any (waits for the
        queue: call it where the host waits anyway)."""
        if not self._errors or self._error_flag is None:
            return
        flag = np.zeros(1, np.int32)
        cl.enqueue_copy(self.queue, flag, self._error_flag, is_blocking=True)
        errors = self._errors
        self._errors, self._error_codes = {}, {}
        if flag[0]:
            cl.enqueue_copy(self.queue, self._error_flag, np.zeros(1, np.int32))
            error_type, message = errors[int(flag[0])]
            raise error_type(f"{message} (reported by the device when its data was next read)")

    def synchronize(self) -> None:
        """Wait until every command queued on this device has finished, and raise an error a
        kernel reported meanwhile (see :meth:`defer_error`)."""
        self.queue.finish()
        self.raise_deferred_error()

    def __repr__(self) -> str:
        return f"<OpenCL device {self.name}: {self.description}>"


_cl_devices = None
_discovery_error = None
_initial_seed = None  # set by xp.random.seed for devices created afterwards


def _seed_from_numpy() -> int:
    """A 63-bit stream seed read from NumPy's global random state, which is left undrawn.

    So ``numpy.random.seed``, which fixes the CPU's initial weights and dropout masks, fixes a
    device's stream too, while NumPy draws the same numbers whether a device exists or not.
    Unseeded, NumPy's state comes from the OS, and so does the stream.
    """
    _, key, position, *_ = np.random.get_state()
    words = np.random.SeedSequence([*key.tolist(), position]).generate_state(1, np.uint64)
    return int(words[0] >> np.uint64(1))


_devices: dict = {}
_current = contextvars.ContextVar("pygrad_opencl_device", default=0)


def _discover():
    """List the OpenCL devices of every platform once; remember why when there are none."""
    global _cl_devices, _discovery_error
    if _cl_devices is not None:
        return _cl_devices
    if cl is None:
        _cl_devices = []
        _discovery_error = f"PyOpenCL is not installed ({_import_error})"
        return _cl_devices
    found = []
    try:
        for platform in cl.get_platforms():
            try:
                found.extend((platform, device) for device in platform.get_devices())
            except cl.Error:  # a platform without devices of any type
                continue
    except Exception as error:  # pyopencl raises LogicError/RuntimeError without an ICD
        _discovery_error = f"no OpenCL platform was found ({error})"
    if not found and _discovery_error is None:
        _discovery_error = "no OpenCL device was found on any platform"
    _cl_devices = found
    return found


def device_count() -> int:
    """Number of OpenCL devices (0 when PyOpenCL or a platform is missing)."""
    return len(_discover())


def _type_name(device_type: int) -> str:
    for flag, name in (
        (cl.device_type.GPU, "GPU"),
        (cl.device_type.CPU, "CPU"),
        (cl.device_type.ACCELERATOR, "ACCELERATOR"),
    ):
        if device_type & flag:
            return name
    return "OTHER"


def device_infos() -> list:
    """A :class:`DeviceInfo` for each OpenCL device, in ``opencl:N`` order."""
    infos = []
    for index, (platform, device) in enumerate(_discover()):
        infos.append(
            DeviceInfo(
                name=f"opencl:{index}",
                description=device.name.strip(),
                platform=platform.name.strip(),
                type=_type_name(device.type),
                float64=bool(device.double_fp_config) or "cl_khr_fp64" in device.extensions,
            )
        )
    return infos


def _unavailable(reason: str) -> OpenCLUnavailableError:
    return OpenCLUnavailableError(
        f"OpenCL is not available: {reason}. Install PyOpenCL with a CPU driver with "
        f"`{INSTALL_HINT}` (or install your GPU vendor's OpenCL driver)."
    )


def _index_of(device) -> int:
    if device is None:
        return _current.get()
    if isinstance(device, Device):
        return device.index
    if isinstance(device, int):
        return device
    name = str(device).strip().lower()
    if name == "opencl":
        return 0
    if name.startswith("opencl:") and name[len("opencl:") :].isdigit():
        return int(name[len("opencl:") :])
    raise ValueError(f"opencl: unknown device {device!r}: expected 'opencl' or 'opencl:N'")


def get_device(device=None) -> Device:
    """Return the :class:`Device` for ``device`` (None: the current one, see :func:`use_device`).

    Raises
    ------
    OpenCLUnavailableError
        If PyOpenCL or an OpenCL platform is missing (the message says how to install one).
    ValueError
        If the index is past the last device.
    """
    index = _index_of(device)
    found = _devices.get(index)
    if found is not None:
        return found
    cl_devices = _discover()
    if not cl_devices:
        raise _unavailable(_discovery_error)
    if not 0 <= index < len(cl_devices):
        raise ValueError(
            f"opencl: device opencl:{index} does not exist; "
            f"{len(cl_devices)} OpenCL device(s) found (opencl:0 .. opencl:{len(cl_devices) - 1})"
        )
    found = _devices[index] = Device(index, cl_devices[index][1])
    return found


def current_device() -> Device:
    """The device that array creation uses when no ``device`` is given."""
    return get_device(None)


@contextlib.contextmanager
def use_device(device):
    """Make ``device`` (``"opencl:N"``) the default for array creation inside a ``with`` block."""
    token = _current.set(_index_of(device))
    try:
        yield get_device(None)
    finally:
        _current.reset(token)


def synchronize(device=None) -> None:
    """Wait for the queued work of ``device`` (default: every device used so far)."""
    targets = [get_device(device)] if device is not None else list(_devices.values())
    for target in targets:
        target.synchronize()
