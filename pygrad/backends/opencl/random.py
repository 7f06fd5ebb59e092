"""Random numbers generated on the device (``xp.random``), with NumPy's legacy function names.

Each element is a hash (splitmix64) of the device's seed and a counter that advances with
every draw, so draws are independent, reproducible, and need no state on the device.  The seed
is set by :func:`seed`, or else read from NumPy's global random state when the device is first
used: ``numpy.random.seed``, which fixes the CPU's initial weights and dropout masks, fixes the
device's draws too.  Results are float64 like NumPy's unless ``dtype`` says otherwise (float32 on
devices without double precision).
"""

from __future__ import annotations

import numpy as np

from pygrad.backends.opencl import kernels, runtime
from pygrad.backends.opencl.array import empty_array, from_host

__all__ = [
    "seed",
    "rand",
    "randn",
    "random",
    "random_sample",
    "uniform",
    "normal",
    "standard_normal",
    "randint",
    "permutation",
]


def seed(seed: int | None = None) -> None:
    """Restart the random stream of every device from ``seed`` (fresh entropy when None)."""
    value = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0] >> np.uint64(1))
    runtime._initial_seed = value
    for device in runtime._devices.values():
        device.random_seed = value
        device.random_counter = 0


def _shape(size) -> tuple:
    if size is None:
        return ()
    if isinstance(size, (int, np.integer)):
        return (int(size),)
    return tuple(int(n) for n in size)


def _draw(kind: str, shape: tuple, dtype, offset, scale, device=None):
    """``offset + scale * sample`` for a uniform [0, 1) or standard normal sample."""
    device = runtime.get_device(device)
    dtype = np.dtype(dtype)
    if dtype == np.float64 and not device.supports_float64:
        dtype = np.dtype(np.float32)
    if dtype.kind != "f":
        raise TypeError(f"opencl random: dtype must be a float type, got {dtype}")
    out = empty_array(shape, dtype, device)
    c_type = kernels.ctype(dtype)
    name = "float" if c_type == "float" else "double"
    per_element = 2 if kind == "normal" else 1
    expr = f"a2 + a3 * _{kind}_{name}(a0, a1 + {per_element} * (ulong)gid)"
    seed, counter = device.draw(per_element * max(out.size, 1))
    inputs = [np.uint64(seed), np.uint64(counter), dtype.type(offset), dtype.type(scale)]
    kernels.run_elementwise(device, expr, out, inputs, ["ulong", "ulong", c_type, c_type])
    return out


def rand(*shape, dtype=np.float64):
    """Uniform samples in [0, 1) of ``shape``."""
    return _draw("uniform", _shape(shape), dtype, 0.0, 1.0)


def randn(*shape, dtype=np.float64):
    """Standard normal samples of ``shape``."""
    return _draw("normal", _shape(shape), dtype, 0.0, 1.0)


def random_sample(size=None, dtype=np.float64):
    """Uniform samples in [0, 1)."""
    return _draw("uniform", _shape(size), dtype, 0.0, 1.0)


random = random_sample


def uniform(low=0.0, high=1.0, size=None, dtype=np.float64):
    """Uniform samples in [low, high)."""
    return _draw("uniform", _shape(size), dtype, low, high - low)


def normal(loc=0.0, scale=1.0, size=None, dtype=np.float64):
    """Normal samples with mean ``loc`` and standard deviation ``scale``."""
    return _draw("normal", _shape(size), dtype, loc, scale)


def standard_normal(size=None, dtype=np.float64):
    """Standard normal samples."""
    return _draw("normal", _shape(size), dtype, 0.0, 1.0)


def randint(low, high=None, size=None, dtype=np.int64):
    """Integers drawn uniformly from [low, high) (from [0, low) when ``high`` is None)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: low >= high ({low} >= {high})")
    samples = _draw("uniform", _shape(size), np.float64, float(low), float(high - low))
    from pygrad.backends.opencl.ufuncs import floor, minimum

    # Rounding can push low + (high - low) * u up to high; keep the bound exclusive.
    return minimum(floor(samples), high - 1).astype(dtype)


def permutation(x):
    """A random permutation of ``range(x)`` (an int) drawn on the host, then uploaded."""
    device = runtime.get_device(None)
    rng = np.random.default_rng(list(device.draw(1)))
    if not isinstance(x, (int, np.integer)):
        raise NotImplementedError("opencl random.permutation: only an int is supported")
    return from_host(rng.permutation(int(x)), device)


def __getattr__(name: str):
    raise runtime.missing_call(name, "random.")
