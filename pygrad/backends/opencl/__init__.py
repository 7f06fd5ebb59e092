"""The OpenCL array module: NumPy's calling conventions on arrays in OpenCL device memory.

``get_array_module`` hands this module to functions whose inputs live on an OpenCL device, so
``xp.exp(x)``, ``x.sum(axis=1)``, ``xp.matmul(a, b)`` or ``xp.add.at(g, idx, v)`` run as
OpenCL kernels.  Kernels are generated from a few templates (see :mod:`.kernels`) and
compiled once per expression, dtypes and layout.  Arrays are created on the current device
(``opencl:0`` unless :func:`use_device` says otherwise) or on the one named by ``device=``.
A NumPy call this module lacks raises ``AttributeError("opencl backend has no 'name'")``.

Importing this module imports PyOpenCL when it is installed; without it (or without an
OpenCL platform) the module still imports, and asking for a device raises
:class:`OpenCLUnavailableError`, which says how to install one.
"""

import builtins as _builtins
import sys as _sys
import types as _types

import numpy as _np

from pygrad.backends.opencl import array as _array_module
from pygrad.backends.opencl import fused_nn, fused_vision, kernels, random  # noqa: F401
from pygrad.backends.opencl.array import empty_array as _empty_array
from pygrad.backends.opencl.array import from_host as _from_host
from pygrad.backends.opencl.array import ndarray
from pygrad.backends.opencl.fused import fused_ops  # noqa: F401
from pygrad.backends.opencl.fused_optim import update as _fused_optim_update  # noqa: F401
from pygrad.backends.opencl.indexing import getitem as _getitem  # noqa: F401
from pygrad.backends.opencl.indexing import nonzero, take, take_along_axis  # noqa: F401
from pygrad.backends.opencl.indexing import setitem as _setitem  # noqa: F401
from pygrad.backends.opencl.linalg import *  # noqa: F401,F403
from pygrad.backends.opencl.manipulation import *  # noqa: F401,F403
from pygrad.backends.opencl.manipulation import as_strided, sliding_window_view
from pygrad.backends.opencl.reductions import *  # noqa: F401,F403
from pygrad.backends.opencl.reductions import all as _all
from pygrad.backends.opencl.runtime import (  # noqa: F401
    Device,
    OpenCLUnavailableError,
    current_device,
    get_device,
    synchronize,
    use_device,
)
from pygrad.backends.opencl.runtime import missing_call as _missing_call
from pygrad.backends.opencl.ufuncs import *  # noqa: F401,F403
from pygrad.backends.opencl.ufuncs import absolute as _absolute
from pygrad.backends.opencl.ufuncs import greater_equal, less_equal, subtract
from pygrad.backends.opencl.ufuncs import multiply as _multiply
from pygrad.backends.opencl.ufuncs import where as _where

# --- NumPy names that need no device: dtypes, constants and dtype arithmetic ----------------
bool_ = _np.bool_
int8, int16, int32, int64 = _np.int8, _np.int16, _np.int32, _np.int64
uint8, uint16, uint32, uint64 = _np.uint8, _np.uint16, _np.uint32, _np.uint64
float16, float32, float64 = _np.float16, _np.float32, _np.float64
intp = _np.intp
integer, floating, number, signedinteger, unsignedinteger = (
    _np.integer,
    _np.floating,
    _np.number,
    _np.signedinteger,
    _np.unsignedinteger,
)
generic = _np.generic
dtype = _np.dtype
finfo, iinfo = _np.finfo, _np.iinfo
result_type, promote_types, can_cast, issubdtype = (
    _np.result_type,
    _np.promote_types,
    _np.can_cast,
    _np.issubdtype,
)
broadcast_shapes = _np.broadcast_shapes
isscalar = _np.isscalar
newaxis = None
pi, e, inf, nan, euler_gamma = _np.pi, _np.e, _np.inf, _np.nan, _np.euler_gamma

lib = _types.SimpleNamespace(
    stride_tricks=_types.SimpleNamespace(
        as_strided=as_strided, sliding_window_view=sliding_window_view
    )
)


# --- creation ---------------------------------------------------------------------------------
def _shape_of(shape) -> tuple:
    if isinstance(shape, (int, _np.integer)):
        return (int(shape),)
    return tuple(int(n) for n in shape)


def asarray(a, dtype=None, device=None) -> ndarray:
    """``a`` as an OpenCL array: the same array when nothing changes, else a copy.

    Parameters
    ----------
    a : ndarray, numpy.ndarray, number or nested list
        Host data are copied to ``device`` with NumPy's dtype for them.
    dtype : dtype, optional
    device : str, optional
        ``"opencl:N"``; default: ``a``'s device for OpenCL arrays, else the current device.
    """
    if isinstance(a, ndarray):
        if device is not None and get_device(device) is not a._device:
            a = _from_host(a.get(), get_device(device))
        return a if dtype is None else a.astype(dtype, copy=False)
    host = _np.asarray(a, dtype=dtype)
    if host.dtype.kind not in "biuf":
        raise TypeError(f"opencl asarray: data of dtype {host.dtype} cannot live on the device")
    return _from_host(host, get_device(device))


def array(obj, dtype=None, copy: bool = True, device=None) -> ndarray:
    """Like :func:`asarray`, but copies an OpenCL array unless ``copy=False``."""
    result = asarray(obj, dtype=dtype, device=device)
    return result.copy() if copy and result is obj else result


def ascontiguousarray(a, dtype=None) -> ndarray:
    a = asarray(a, dtype=dtype)
    return a if a.is_c_contiguous else a.copy()


def asnumpy(a) -> _np.ndarray:
    """A NumPy copy of ``a`` (NumPy data are returned as they are)."""
    return a.get() if isinstance(a, ndarray) else _np.asarray(a)


def copy(a) -> ndarray:
    return asarray(a).copy()


def empty(shape, dtype=float, device=None) -> ndarray:
    """An uninitialised array (float64 by default, as in NumPy)."""
    return _empty_array(_shape_of(shape), dtype, get_device(device))


def full(shape, fill_value, dtype=None, device=None) -> ndarray:
    """An array of ``shape`` filled with ``fill_value`` (its NumPy dtype by default)."""
    if isinstance(fill_value, ndarray):
        fill_value = fill_value.item()
    dtype = _np.asarray(fill_value).dtype if dtype is None else dtype
    out = _empty_array(_shape_of(shape), dtype, get_device(device))
    out.fill(fill_value)
    return out


def zeros(shape, dtype=float, device=None) -> ndarray:
    return full(shape, 0, dtype, device)


def ones(shape, dtype=float, device=None) -> ndarray:
    return full(shape, 1, dtype, device)


def _like(a, dtype, shape):
    return (
        a.shape if shape is None else _shape_of(shape),
        a.dtype if dtype is None else dtype,
        a._device,
    )


def empty_like(a, dtype=None, shape=None) -> ndarray:
    shape, dtype, device = _like(a, dtype, shape)
    return _empty_array(shape, dtype, device)


def full_like(a, fill_value, dtype=None, shape=None) -> ndarray:
    shape, dtype, device = _like(a, dtype, shape)
    return full(shape, fill_value, dtype, device)


def zeros_like(a, dtype=None, shape=None) -> ndarray:
    return full_like(a, 0, dtype, shape)


def ones_like(a, dtype=None, shape=None) -> ndarray:
    return full_like(a, 1, dtype, shape)


def arange(start, stop=None, step=1, dtype=None, device=None) -> ndarray:
    """Evenly spaced values in ``[start, stop)`` (NumPy's dtype rule: ints stay int64)."""
    if stop is None:
        start, stop = 0, start
    length = _builtins.max(0, int(_np.ceil((stop - start) / step)))
    dtype = (
        _np.result_type(_np.asarray(start), _np.asarray(stop), _np.asarray(step))
        if dtype is None
        else _np.dtype(dtype)
    )
    out = _empty_array((length,), dtype, get_device(device))
    t = kernels.ctype(dtype)
    inputs = [dtype.type(start), dtype.type(step)]
    kernels.run_elementwise(out._device, f"a0 + ({t})gid * a1", out, inputs, [t, t])
    return out


def linspace(start, stop, num: int = 50, endpoint: bool = True, dtype=None, device=None):
    """``num`` evenly spaced values from ``start`` to ``stop`` (float64 unless ``dtype``)."""
    steps = num - 1 if endpoint else num
    step = (stop - start) / steps if steps > 0 else 0.0
    dtype = _np.dtype(_np.float64 if dtype is None else dtype)
    out = _empty_array((num,), dtype, get_device(device))
    t = kernels.ctype(dtype)
    inputs = [dtype.type(start), dtype.type(step)]
    kernels.run_elementwise(out._device, f"a0 + ({t})gid * a1", out, inputs, [t, t])
    if endpoint and num > 1:
        out[num - 1] = stop
    return out


def eye(N: int, M=None, k: int = 0, dtype=float, device=None) -> ndarray:
    """A 2-D array with ones on the ``k``-th diagonal."""
    out = zeros((N, N if M is None else M), dtype, device)
    diagonal(out, k).fill(1)  # noqa: F405
    return out


def identity(n: int, dtype=float, device=None) -> ndarray:
    return eye(n, dtype=dtype, device=device)


def _triangle_mask(a: ndarray, k: int, lower: bool) -> ndarray:
    rows, cols = a.shape[-2], a.shape[-1]
    row = arange(rows, device=a._device).reshape(rows, 1)
    col = arange(cols, device=a._device).reshape(1, cols)
    return less_equal(col - row, k) if lower else greater_equal(col - row, k)


def tril(a, k: int = 0) -> ndarray:
    """``a`` with the elements above the ``k``-th diagonal zeroed (over the last two axes)."""
    return _where(_triangle_mask(a, k, True), a, 0)


def triu(a, k: int = 0) -> ndarray:
    """``a`` with the elements below the ``k``-th diagonal zeroed (over the last two axes)."""
    return _where(_triangle_mask(a, k, False), a, 0)


# --- small helpers NumPy has at module level --------------------------------------------------
def shape(a) -> tuple:
    return a.shape


def ndim(a) -> int:
    return a.ndim


def size(a) -> int:
    return a.size


def isclose(a, b, rtol: float = 1e-5, atol: float = 1e-8) -> ndarray:
    """Elementwise ``|a - b| <= atol + rtol * |b|``."""
    return less_equal(_absolute(subtract(a, b)), atol + _multiply(rtol, _absolute(b)))


def allclose(a, b, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    return bool(_all(isclose(a, b, rtol, atol)))


def array_equal(a, b) -> bool:
    if a.shape != b.shape:
        return False
    return bool(_all(equal(a, b)))  # noqa: F405


def __getattr__(name: str):
    raise _missing_call(name)


# Operators and methods of the array type call the functions of this module.
ndarray.xp = _sys.modules[__name__]
_array_module._ops = _sys.modules[__name__]
