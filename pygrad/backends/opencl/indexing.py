"""Indexing of OpenCL arrays with NumPy's rules: basic indices (ints, slices, None, ``...``)
give views; integer and boolean arrays gather, scatter or scatter-add through one kernel.

Boolean masks are turned into integer indices on the host (their count decides the result's
shape); out-of-bounds integer indices raise IndexError after the kernel has run.
"""

from __future__ import annotations

import numpy as np

from pygrad.backends import DeviceError
from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.array import empty_array, from_host, make_view, ndarray
from pygrad.backends.opencl.ufuncs import broadcast_view, copyto

__all__ = ["getitem", "setitem", "scatter_add", "take", "take_along_axis", "nonzero"]

_VALID = (
    "only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or "
    "boolean arrays are valid indices"
)


_GAP = object()  # marks an empty Ellipsis in a key


def _is_array(k) -> bool:
    return isinstance(k, (ndarray, np.ndarray))


def _prepare(a: ndarray, key):
    """Split ``key`` into one entry per axis (``None`` entries add axes), with Ellipsis
    expanded, boolean masks turned into integer arrays and lists into NumPy arrays."""
    if not isinstance(key, tuple):
        key = (key,)
    parts = []
    for k in key:
        if isinstance(k, list):
            k = np.asarray(k)
            if k.dtype == np.float64 and k.size == 0:
                k = k.astype(np.int64)
        if _is_array(k) and k.dtype.kind not in "biu":
            raise IndexError(
                f"arrays used as indices must be of integer (or boolean) type, got {k.dtype}"
            )
        if _is_array(k) and k.ndim == 0 and k.dtype.kind in "iu":
            k = int(k.item() if isinstance(k, ndarray) else k)
        if isinstance(k, np.integer):
            k = int(k)
        if not (isinstance(k, (int, slice)) or k is None or k is Ellipsis or _is_array(k)):
            raise IndexError(f"{_VALID}; got {type(k).__name__}")
        if isinstance(k, bool):
            raise IndexError("opencl indexing: a Python bool is not supported as an index")
        parts.append(k)
    if sum(k is Ellipsis for k in parts) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(
        (k.ndim if _is_array(k) and k.dtype == np.bool_ else 1)
        for k in parts
        if k is not None and k is not Ellipsis
    )
    if consumed > a.ndim:
        raise IndexError(
            f"too many indices for array: array is {a.ndim}-dimensional, but {consumed} were indexed"
        )
    fill = [slice(None)] * (a.ndim - consumed)
    if Ellipsis in [k for k in parts if not _is_array(k)]:
        at = next(i for i, k in enumerate(parts) if k is Ellipsis and not _is_array(k))
        # An Ellipsis standing for no axis still separates array indices, as in NumPy.
        parts = parts[:at] + (fill or [_GAP]) + parts[at + 1 :]
    else:
        parts = parts + fill
    expanded, axis = [], 0
    for k in parts:
        if _is_array(k) and k.dtype == np.bool_:
            mask = k.get() if isinstance(k, ndarray) else k
            if mask.ndim == 0:
                raise IndexError("opencl indexing: a 0-d boolean index is not supported")
            for i, n in enumerate(mask.shape):
                if a.shape[axis + i] != n:
                    raise IndexError(
                        f"boolean index did not match indexed array along axis {axis + i}; size "
                        f"of axis is {a.shape[axis + i]} but size of corresponding boolean axis "
                        f"is {n}"
                    )
            expanded.extend(np.nonzero(mask))
            axis += mask.ndim
        else:
            expanded.append(k)
            axis += k is not None and k is not _GAP
    if any(_is_array(k) for k in expanded):
        # Next to arrays NumPy counts integers as (0-d) array indices: they decide with the
        # arrays where the broadcast axes go.
        expanded = [np.asarray(k) if isinstance(k, int) else k for k in expanded]
    return expanded


def _basic_view(a: ndarray, parts) -> tuple:
    """The view selected by ints, slices and None; array entries keep their whole axis.

    Returns the view and, for each array entry, (its array, its axis in the view, its axis
    in ``a``, its position in the key).
    """
    shape, strides, offset = [], [], a.offset
    advanced = []
    axis = 0
    for slot, k in enumerate(parts):
        if k is _GAP:
            continue
        if k is None:
            shape.append(1)
            strides.append(0)
            continue
        n, s = a.shape[axis], a._strides[axis]
        if isinstance(k, slice):
            start, stop, step = k.indices(n)
            length = len(range(start, stop, step))
            if length:
                offset += start * s
            shape.append(length)
            strides.append(s * step)
        elif _is_array(k):
            advanced.append((k, len(shape), axis, slot))
            shape.append(n)
            strides.append(s)
        else:
            if not -n <= k < n:
                raise IndexError(f"index {k} is out of bounds for axis {axis} with size {n}")
            offset += (k % n) * s
        axis += 1
    return make_view(a, shape, strides, offset), advanced


class _Advanced:
    """Everything one kernel needs to address ``view[index arrays]``."""

    def __init__(self, view: ndarray, advanced: list):
        device = view._device
        arrays = []
        for k, position, original_axis, _ in advanced:
            if isinstance(k, np.ndarray) or not isinstance(k, ndarray):
                k = np.asarray(k)
                n = view.shape[position]
                # Host indices are checked here, where it costs no wait for the device.
                if k.size and (k.min() < -n or k.max() >= n):
                    bad = k[(k < -n) | (k >= n)].flat[0]
                    raise IndexError(
                        f"index {bad} is out of bounds for axis {original_axis} with size {n}"
                    )
                k = from_host(k.astype(np.int64, copy=False), device)
            elif k._device is not device:
                raise DeviceError(
                    f"indexing: an index lives on {k.device}, the array on {device.name}"
                )
            arrays.append(k)
        try:
            index_shape = np.broadcast_shapes(*[k.shape for k in arrays])
        except ValueError:
            shapes = " ".join(str(k.shape) for k in arrays)
            raise IndexError(
                f"shape mismatch: indexing arrays could not be broadcast together with shapes {shapes}"
            ) from None
        positions = [position for _, position, _, _ in advanced]
        slots = [slot for *_, slot in advanced]
        rest = [i for i in range(view.ndim) if i not in positions]
        # Array indices next to each other in the key put their axes in place; separated
        # ones put them first.
        adjacent = slots == list(range(slots[0], slots[0] + len(slots)))
        before = [i for i in rest if i < positions[0]] if adjacent else []
        after = [i for i in rest if i not in before]
        nb = len(index_shape)
        self.shape = (
            tuple(view.shape[i] for i in before) + index_shape + tuple(view.shape[i] for i in after)
        )
        target_strides = (
            [view._strides[i] for i in before] + [0] * nb + [view._strides[i] for i in after]
        )
        self.target = make_view(view, self.shape, target_strides)
        self.indices = []
        for k in arrays:
            b = broadcast_view(k, index_shape)
            strides = [0] * len(before) + list(b._strides) + [0] * len(after)
            self.indices.append(make_view(b, self.shape, strides))
        self.dims = [view.shape[p] for p in positions]
        self.strides = [view._strides[p] for p in positions]
        self.axes = [original_axis for _, _, original_axis, _ in advanced]

    def run(self, mode: str, other: ndarray) -> None:
        errors = [
            f"opencl indexing: index out of bounds for axis {axis} with size {dim}"
            for axis, dim in zip(self.axes, self.dims)
        ]
        kernels.run_index(
            other._device, mode, self.target, other, self.indices, self.dims, self.strides, errors
        )


def getitem(a: ndarray, key) -> ndarray:
    """``a[key]``: a view for basic indices, a gathered copy for integer/boolean arrays."""
    view, advanced = _basic_view(a, _prepare(a, key))
    if not advanced:
        return view
    plan = _Advanced(view, advanced)
    out = empty_array(plan.shape, a.dtype, a._device)
    plan.run("gather", out)
    return out


def _values(a: ndarray, value, shape: tuple, name: str) -> ndarray:
    if not isinstance(value, ndarray):
        value = from_host(np.asarray(value).astype(a.dtype, copy=False), a._device)
    elif value.dtype != a.dtype:
        # Cast like NumPy (0.5 into a bool array is True); the kernel's C cast truncates.
        value = value.astype(a.dtype)
    try:
        fits = np.broadcast_shapes(value.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name}: shape mismatch: value array of shape {value.shape} could not be broadcast "
            f"to indexing result of shape {shape}"
        )
    return broadcast_view(value, shape)


def setitem(a: ndarray, key, value) -> None:
    """``a[key] = value`` (with repeated integer indices, one of the writes wins)."""
    view, advanced = _basic_view(a, _prepare(a, key))
    if not advanced:
        copyto(view, value, casting="unsafe")
        return
    plan = _Advanced(view, advanced)
    plan.run("set", _values(a, value, plan.shape, "setitem"))


def scatter_add(a: ndarray, key, value) -> None:
    """``add.at(a, key, value)``: add ``value`` at ``a[key]``, accumulating repeated indices."""
    if not isinstance(a, ndarray):
        raise TypeError(f"opencl add.at: expected an OpenCL array, got {type(a).__name__}")
    view, advanced = _basic_view(a, _prepare(a, key))
    if not advanced:
        from pygrad.backends.opencl.ufuncs import add

        add(view, value, out=view)
        return
    plan = _Advanced(view, advanced)
    plan.run("add", _values(a, value, plan.shape, "add.at"))


def take(a, indices, axis=None) -> ndarray:
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened array when None)."""
    if axis is None:
        return getitem(a.reshape(-1), indices)
    axis = int(axis) % a.ndim
    return getitem(a, (slice(None),) * axis + (indices,))


def take_along_axis(arr, indices, axis: int) -> ndarray:
    """``out[..., j, ...] = arr[..., indices[..., j, ...], ...]`` along ``axis``."""
    if not isinstance(indices, ndarray):
        indices = from_host(np.asarray(indices), arr._device)
    if indices.ndim != arr.ndim:
        raise ValueError(
            f"take_along_axis: indices of shape {indices.shape} need as many dimensions as the "
            f"array of shape {arr.shape}"
        )
    axis = int(axis) % arr.ndim
    others = [n for i, n in enumerate(arr.shape) if i != axis]
    index_others = [n for i, n in enumerate(indices.shape) if i != axis]
    shape = list(np.broadcast_shapes(tuple(others), tuple(index_others)))
    shape.insert(axis, indices.shape[axis])
    shape = tuple(shape)
    target_strides = [
        0 if i == axis or arr.shape[i] == 1 else arr._strides[i] for i in range(arr.ndim)
    ]
    target = make_view(arr, shape, target_strides)
    index_view = broadcast_view(indices, shape)
    out = empty_array(shape, arr.dtype, arr._device)
    error = (
        f"opencl take_along_axis: index out of bounds for axis {axis} with size {arr.shape[axis]}"
    )
    kernels.run_index(
        arr._device,
        "gather",
        target,
        out,
        [index_view],
        [arr.shape[axis]],
        [arr._strides[axis]],
        [error],
    )
    return out


def nonzero(a) -> tuple:
    """Indices of the nonzero elements, one int64 array per axis (computed on the host, so the
    host waits for the device: the number of indices depends on the data)."""
    return tuple(from_host(i.astype(np.int64), a._device) for i in np.nonzero(a.get()))
