"""The OpenCL array type: a buffer on one device seen through a shape, strides and an offset.

Views (transpose, reshape of contiguous data, broadcasting, basic slicing) share the buffer;
arithmetic, reductions and indexing are delegated to the NumPy-style functions of
:mod:`pygrad.backends.opencl`, so an array behaves like a NumPy array whose data stays on the
device until :meth:`ndarray.get` copies it to the host.
"""

from __future__ import annotations

import numpy as np

from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.runtime import cl, get_device, missing_call

__all__ = [
    "ndarray",
    "empty_array",
    "new_contiguous",
    "from_host",
    "make_view",
    "reshape_view",
]

_python_scalars = (bool, int, float)
# The package module (``pygrad.backends.opencl``), bound when it is imported: operators and
# methods call its NumPy-style functions, which are defined on top of this module.
_ops = None


def _prod(shape) -> int:
    size = 1
    for n in shape:
        size *= n
    return size


class _Flags:
    """The ``flags`` of an array: only the two layout questions are answered."""

    __slots__ = ("c_contiguous", "f_contiguous")

    def __init__(self, c_contiguous: bool, f_contiguous: bool):
        self.c_contiguous = c_contiguous
        self.f_contiguous = f_contiguous

    def __repr__(self) -> str:
        return f"  C_CONTIGUOUS : {self.c_contiguous}\n  F_CONTIGUOUS : {self.f_contiguous}"


class ndarray:  # noqa: N801  (named after numpy.ndarray on purpose)
    """An n-dimensional array held in the memory of one OpenCL device.

    Create arrays with the functions of :mod:`pygrad.backends.opencl` (``asarray``, ``zeros``,
    ...), not with this constructor.  The layout is NumPy's: element ``(i0, i1, ...)`` lives at
    element ``offset + i0 * element_strides[0] + i1 * element_strides[1] + ...`` of
    ``buffer``.

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype
    strides : tuple of int
        In bytes, as in NumPy (``element_strides`` gives them in elements).  Broadcast axes
        have stride 0; reversed slices have negative strides.
    offset : int
        Position of the first element in the buffer, **in elements**.
    buffer : pyopencl buffer
        Shared by every view of the same data.
    device : str
        ``"opencl:N"`` (also ``device_name``).
    """

    __slots__ = (
        "shape",
        "dtype",
        "_strides",
        "offset",
        "buffer",
        "_device",
        "size",
        "_c_contiguous",
        "__weakref__",
    )
    # NumPy leaves every operator with such an array to the array's reflected methods.
    __array_ufunc__ = None
    __array_priority__ = 1000
    xp = None  # the module pygrad.backends.opencl, set when the package is imported

    def __init__(self, shape, dtype, buffer, device, strides=None, offset: int = 0):
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.size = _prod(self.shape)
        self._strides = (
            kernels.contiguous_strides(self.shape) if strides is None else tuple(strides)
        )
        self.offset = int(offset)
        self.buffer = buffer
        self._device = device
        self._c_contiguous = True if strides is None else None  # None: not yet known

    # --- attributes ----------------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def strides(self) -> tuple:
        """Strides in bytes, as in NumPy."""
        return tuple(s * self.dtype.itemsize for s in self._strides)

    @property
    def element_strides(self) -> tuple:
        """Strides in elements."""
        return self._strides

    @property
    def device(self) -> str:
        return self._device.name

    @property
    def device_name(self) -> str:
        return self._device.name

    @property
    def is_c_contiguous(self) -> bool:
        known = self._c_contiguous
        if known is None:
            known = self._c_contiguous = _is_c_contiguous(self.shape, self._strides)
        return known

    @property
    def flags(self) -> _Flags:
        reversed_view = make_view(self, self.shape[::-1], self._strides[::-1])
        return _Flags(self.is_c_contiguous, reversed_view.is_c_contiguous)

    @property
    def T(self) -> ndarray:
        return self.transpose()

    # --- host transfer -------------------------------------------------------------------
    def get(self) -> np.ndarray:
        """Return a NumPy copy of the data (waits for the device)."""
        host = np.empty(self.shape, self.dtype)
        if self.size == 0:
            return host
        source = self if self.is_c_contiguous else self.copy()
        cl.enqueue_copy(
            self._device.queue,
            host,
            source.buffer,
            src_offset=source.offset * self.dtype.itemsize,
            is_blocking=True,
        )
        self._device.raise_deferred_error()
        return host

    def set(self, host) -> None:
        """Overwrite the data with the NumPy array ``host`` (broadcast and cast like NumPy)."""
        self[...] = np.asarray(host)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(
            "an OpenCL array is not converted to a NumPy array implicitly; "
            "call .get() to copy it to the host"
        )

    def item(self):
        """Return the single element as a Python number."""
        if self.size != 1:
            raise ValueError(
                f"can only convert an array of size 1 to a Python scalar, got shape {self.shape}"
            )
        return self.get().item()

    def tolist(self):
        return self.get().tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                "the truth value of an array with more than one element is ambiguous; "
                "use a.any() or a.all()"
            )
        return bool(self.item())

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        for i in range(self.shape[0]):
            yield self[i]

    def __repr__(self) -> str:
        text = repr(self.get())
        return f"{text[:-1]}, device='{self.device}')"

    def __str__(self) -> str:
        return str(self.get())

    # --- copies and conversions ----------------------------------------------------------
    def copy(self) -> ndarray:
        """Return a C-contiguous copy on the same device."""
        out = empty_array(self.shape, self.dtype, self._device)
        _ops.copyto(out, self, casting="unsafe")
        return out

    def astype(self, dtype, copy: bool = True) -> ndarray:
        """Return the data converted to ``dtype`` (C casts: floats truncate towards zero)."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype and not copy:
            return self
        out = empty_array(self.shape, dtype, self._device)
        _ops.copyto(out, self, casting="unsafe")
        return out

    def fill(self, value) -> None:
        """Set every element to ``value``."""
        _ops.copyto(self, value, casting="unsafe")

    # --- views ---------------------------------------------------------------------------
    def reshape(self, *shape, order: str = "C") -> ndarray:
        """Return the data with a new shape: a view when the layout allows, else a copy."""
        if order != "C":
            raise ValueError("opencl reshape: only order='C' is supported")
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return reshape_view(self, shape)

    def transpose(self, *axes) -> ndarray:
        """Return a view with the axes permuted (reversed when none are given)."""
        if not axes or (len(axes) == 1 and axes[0] is None):
            axes = tuple(range(self.ndim))[::-1]
        elif len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = tuple(int(a) + self.ndim if int(a) < 0 else int(a) for a in axes)
        if sorted(axes) != list(range(self.ndim)):
            raise ValueError(f"axes {axes} don't match an array of shape {self.shape}")
        return make_view(
            self, [self.shape[a] for a in axes], [self._strides[a] for a in axes], self.offset
        )

    def swapaxes(self, axis1: int, axis2: int) -> ndarray:
        return _ops.swapaxes(self, axis1, axis2)

    def squeeze(self, axis=None) -> ndarray:
        return _ops.squeeze(self, axis)

    def ravel(self) -> ndarray:
        return reshape_view(self, (-1,))

    def flatten(self) -> ndarray:
        return reshape_view(self.copy(), (-1,))

    def __getitem__(self, key) -> ndarray:
        return _ops._getitem(self, key)

    def __setitem__(self, key, value) -> None:
        _ops._setitem(self, key, value)

    # --- reductions ----------------------------------------------------------------------
    def sum(self, axis=None, dtype=None, keepdims: bool = False) -> ndarray:
        return _ops.sum(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def prod(self, axis=None, dtype=None, keepdims: bool = False) -> ndarray:
        return _ops.prod(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, keepdims: bool = False) -> ndarray:
        return _ops.mean(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def var(self, axis=None, dtype=None, ddof: int = 0, keepdims: bool = False) -> ndarray:
        return _ops.var(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, dtype=None, ddof: int = 0, keepdims: bool = False) -> ndarray:
        return _ops.std(self, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False) -> ndarray:
        return _ops.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False) -> ndarray:
        return _ops.min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims: bool = False) -> ndarray:
        return _ops.argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims: bool = False) -> ndarray:
        return _ops.argmin(self, axis=axis, keepdims=keepdims)

    def any(self, axis=None, keepdims: bool = False) -> ndarray:
        return _ops.any(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims: bool = False) -> ndarray:
        return _ops.all(self, axis=axis, keepdims=keepdims)

    def clip(self, min=None, max=None) -> ndarray:  # noqa: A002  (NumPy's argument names)
        return _ops.clip(self, min, max)

    def dot(self, other) -> ndarray:
        return _ops.dot(self, other)

    # --- operators -----------------------------------------------------------------------
    def __add__(self, other):
        return _ops.add(self, other) if _is_operand(other) else NotImplemented

    def __radd__(self, other):
        return _ops.add(other, self) if _is_operand(other) else NotImplemented

    def __iadd__(self, other):
        return _ops.add(self, other, out=self) if _is_operand(other) else NotImplemented

    def __sub__(self, other):
        return _ops.subtract(self, other) if _is_operand(other) else NotImplemented

    def __rsub__(self, other):
        return _ops.subtract(other, self) if _is_operand(other) else NotImplemented

    def __isub__(self, other):
        return _ops.subtract(self, other, out=self) if _is_operand(other) else NotImplemented

    def __mul__(self, other):
        return _ops.multiply(self, other) if _is_operand(other) else NotImplemented

    def __rmul__(self, other):
        return _ops.multiply(other, self) if _is_operand(other) else NotImplemented

    def __imul__(self, other):
        return _ops.multiply(self, other, out=self) if _is_operand(other) else NotImplemented

    def __truediv__(self, other):
        return _ops.true_divide(self, other) if _is_operand(other) else NotImplemented

    def __rtruediv__(self, other):
        return _ops.true_divide(other, self) if _is_operand(other) else NotImplemented

    def __itruediv__(self, other):
        return _ops.true_divide(self, other, out=self) if _is_operand(other) else NotImplemented

    def __floordiv__(self, other):
        return _ops.floor_divide(self, other) if _is_operand(other) else NotImplemented

    def __rfloordiv__(self, other):
        return _ops.floor_divide(other, self) if _is_operand(other) else NotImplemented

    def __ifloordiv__(self, other):
        return _ops.floor_divide(self, other, out=self) if _is_operand(other) else NotImplemented

    def __mod__(self, other):
        return _ops.remainder(self, other) if _is_operand(other) else NotImplemented

    def __rmod__(self, other):
        return _ops.remainder(other, self) if _is_operand(other) else NotImplemented

    def __pow__(self, other):
        return _ops.power(self, other) if _is_operand(other) else NotImplemented

    def __rpow__(self, other):
        return _ops.power(other, self) if _is_operand(other) else NotImplemented

    def __ipow__(self, other):
        return _ops.power(self, other, out=self) if _is_operand(other) else NotImplemented

    def __matmul__(self, other):
        return _ops.matmul(self, other) if _is_operand(other) else NotImplemented

    def __rmatmul__(self, other):
        return _ops.matmul(other, self) if _is_operand(other) else NotImplemented

    def __and__(self, other):
        return _ops.bitwise_and(self, other) if _is_operand(other) else NotImplemented

    def __rand__(self, other):
        return _ops.bitwise_and(other, self) if _is_operand(other) else NotImplemented

    def __iand__(self, other):
        return _ops.bitwise_and(self, other, out=self) if _is_operand(other) else NotImplemented

    def __or__(self, other):
        return _ops.bitwise_or(self, other) if _is_operand(other) else NotImplemented

    def __ror__(self, other):
        return _ops.bitwise_or(other, self) if _is_operand(other) else NotImplemented

    def __ior__(self, other):
        return _ops.bitwise_or(self, other, out=self) if _is_operand(other) else NotImplemented

    def __xor__(self, other):
        return _ops.bitwise_xor(self, other) if _is_operand(other) else NotImplemented

    def __rxor__(self, other):
        return _ops.bitwise_xor(other, self) if _is_operand(other) else NotImplemented

    def __neg__(self):
        return _ops.negative(self)

    def __pos__(self):
        return self.copy()

    def __abs__(self):
        return _ops.absolute(self)

    def __invert__(self):
        return _ops.invert(self)

    def __eq__(self, other):
        return _ops.equal(self, other) if _is_operand(other) else NotImplemented

    def __ne__(self, other):
        return _ops.not_equal(self, other) if _is_operand(other) else NotImplemented

    def __lt__(self, other):
        return _ops.less(self, other) if _is_operand(other) else NotImplemented

    def __le__(self, other):
        return _ops.less_equal(self, other) if _is_operand(other) else NotImplemented

    def __gt__(self, other):
        return _ops.greater(self, other) if _is_operand(other) else NotImplemented

    def __ge__(self, other):
        return _ops.greater_equal(self, other) if _is_operand(other) else NotImplemented

    __hash__ = None

    def __getattr__(self, name: str):
        # Reached only for methods NumPy has and this type lacks (cumsum, ...): name the call.
        raise missing_call(name, "ndarray.")


def _is_c_contiguous(shape: tuple, strides: tuple) -> bool:
    step = 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 0:
            return True
        if n != 1 and s != step:
            return False
        step *= n
    return True


def _is_operand(x) -> bool:
    return isinstance(x, (ndarray, np.ndarray, np.generic) + _python_scalars)


def _check_dtype(dtype: np.dtype, device) -> None:
    """Refuse a dtype the kernels cannot store, or float64 on a device without it."""
    kernels.ctype(dtype)
    if dtype == np.float64 and not device.supports_float64:
        raise TypeError(f"opencl: device {device.name} ({device.description}) has no float64")


def empty_array(shape, dtype, device) -> ndarray:
    """A new C-contiguous, uninitialised array of ``shape`` and ``dtype`` on ``device``."""
    dtype = np.dtype(dtype)
    _check_dtype(dtype, device)
    shape = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimensions are not allowed: {shape}")
    return new_contiguous(shape, dtype, device, _prod(shape))


def new_contiguous(shape: tuple, dtype: np.dtype, device, size: int) -> ndarray:
    """A new C-contiguous array, for callers that already checked ``shape`` (a tuple of
    ints of product ``size``) and ``dtype`` (a supported ``numpy.dtype``): the constructor's
    conversions are what a small elementwise op would spend most of its time on."""
    a = ndarray.__new__(ndarray)
    a.shape, a.dtype, a.size, a.offset, a._device = shape, dtype, size, 0, device
    a._strides = kernels.contiguous_strides(shape)
    a.buffer = device.allocate(size * dtype.itemsize)
    a._c_contiguous = True
    return a


def from_host(host: np.ndarray, device=None) -> ndarray:
    """Copy the NumPy array ``host`` to ``device`` (default: the current device)."""
    device = get_device(device) if not hasattr(device, "queue") else device
    host = np.asarray(host, order="C")  # ascontiguousarray would make a 0-d array 1-d
    if not host.size:
        return empty_array(host.shape, host.dtype, device)
    dtype = host.dtype
    _check_dtype(dtype, device)
    # The buffer takes a copy of the data when it is made: no command waits in the queue and
    # the host never waits for the device, as an enqueued blocking copy would make it.
    buffer = cl.Buffer(
        device.context, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR, hostbuf=host
    )
    return ndarray(host.shape, dtype, buffer, device)


def make_view(a: ndarray, shape, strides, offset=None) -> ndarray:
    """A view of ``a``'s buffer with another shape, strides (elements) and offset."""
    return ndarray(
        shape, a.dtype, a.buffer, a._device, strides, a.offset if offset is None else offset
    )


def _resolve_shape(shape, size: int) -> tuple:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    shape = tuple(int(n) for n in shape)
    unknown = [i for i, n in enumerate(shape) if n == -1]
    known = _prod(n for n in shape if n != -1)
    if len(unknown) > 1 or any(n < -1 for n in shape):
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    if unknown:
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
        shape = shape[: unknown[0]] + (size // known,) + shape[unknown[0] + 1 :]
    if _prod(shape) != size:
        raise ValueError(f"cannot reshape array of size {size} into shape {shape}")
    return shape


def _nocopy_strides(old_shape, old_strides, new_shape):
    """Strides that show the same elements in ``new_shape`` without copying, or None.

    NumPy's algorithm: split or merge runs of axes, which is possible when each merged run
    of the old axes is contiguous in itself.
    """
    old = [(n, s) for n, s in zip(old_shape, old_strides) if n != 1]
    new_strides = [0] * len(new_shape)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(new_shape) and oi < len(old):
        new_size, old_size = new_shape[ni], old[oi][0]
        while new_size != old_size:
            if new_size < old_size:
                new_size *= new_shape[nj]
                nj += 1
            else:
                old_size *= old[oj][0]
                oj += 1
        for k in range(oi, oj - 1):
            if old[k][1] != old[k + 1][0] * old[k + 1][1]:
                return None
        new_strides[nj - 1] = old[oj - 1][1]
        for k in range(nj - 1, ni, -1):
            new_strides[k - 1] = new_strides[k] * new_shape[k]
        ni, nj, oi, oj = nj, nj + 1, oj, oj + 1
    last = new_strides[ni - 1] if ni >= 1 else 1
    for k in range(ni, len(new_shape)):
        new_strides[k] = last
    return new_strides


def reshape_view(a: ndarray, shape) -> ndarray:
    """``a`` reshaped (C order): a view when possible, otherwise a copy."""
    shape = _resolve_shape(shape, a.size)
    if shape == a.shape:
        return make_view(a, shape, a._strides)
    if a.size == 0 or a.is_c_contiguous:
        return make_view(a, shape, kernels.contiguous_strides(shape))
    strides = _nocopy_strides(a.shape, a._strides, shape)
    if strides is None:
        a = a.copy()
        strides = kernels.contiguous_strides(shape)
    return make_view(a, shape, strides)
