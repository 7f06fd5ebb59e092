"""Shape manipulation of the OpenCL array module: views (transpose, expand_dims, squeeze,
broadcast_to, flip, split, as_strided, sliding windows, diagonal) and the few functions that
must copy (concatenate, stack, pad, repeat, tile)."""

from __future__ import annotations

import numpy as np

from pygrad.backends import DeviceError
from pygrad.backends.opencl.array import empty_array, make_view, ndarray, reshape_view
from pygrad.backends.opencl.reductions import normalize_axes
from pygrad.backends.opencl.ufuncs import broadcast_view, copyto

__all__ = [
    "reshape",
    "transpose",
    "swapaxes",
    "moveaxis",
    "expand_dims",
    "squeeze",
    "ravel",
    "broadcast_to",
    "broadcast_arrays",
    "atleast_1d",
    "atleast_2d",
    "concatenate",
    "stack",
    "vstack",
    "hstack",
    "split",
    "array_split",
    "pad",
    "flip",
    "repeat",
    "tile",
    "diagonal",
    "as_strided",
    "sliding_window_view",
]


def _check(a, name: str) -> ndarray:
    if not isinstance(a, ndarray):
        raise TypeError(f"opencl {name}: expected an OpenCL array, got {type(a).__name__}")
    return a


def reshape(a, newshape) -> ndarray:
    """``a`` with a new shape (a view when the layout allows)."""
    return _check(a, "reshape").reshape(newshape)


def transpose(a, axes=None) -> ndarray:
    """A view of ``a`` with its axes permuted (reversed by default)."""
    return _check(a, "transpose").transpose(axes)


def swapaxes(a, axis1: int, axis2: int) -> ndarray:
    """A view of ``a`` with two axes exchanged."""
    a = _check(a, "swapaxes")
    axes = list(range(a.ndim))
    i, j = normalize_axes(axis1, a.ndim)[0], normalize_axes(axis2, a.ndim)[0]
    axes[i], axes[j] = axes[j], axes[i]
    return a.transpose(axes)


def moveaxis(a, source, destination) -> ndarray:
    """A view of ``a`` with axes moved to new positions."""
    a = _check(a, "moveaxis")
    source = [source] if isinstance(source, (int, np.integer)) else list(source)
    destination = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    source = [normalize_axes(s, a.ndim)[0] for s in source]
    destination = [normalize_axes(d, a.ndim)[0] for d in destination]
    order = [i for i in range(a.ndim) if i not in source]
    for d, s in sorted(zip(destination, source)):
        order.insert(d, s)
    return a.transpose(order)


def expand_dims(a, axis) -> ndarray:
    """A view of ``a`` with new axes of size 1 at ``axis`` (an int or a tuple)."""
    a = _check(a, "expand_dims")
    axes = normalize_axes(axis, a.ndim + (1 if isinstance(axis, (int, np.integer)) else len(axis)))
    shape, strides = list(a.shape), list(a._strides)
    for i in axes:
        shape.insert(i, 1)
        strides.insert(i, 0)
    return make_view(a, shape, strides)


def squeeze(a, axis=None) -> ndarray:
    """A view of ``a`` without the axes of size 1 (all of them, or those in ``axis``)."""
    a = _check(a, "squeeze")
    if axis is None:
        axes = tuple(i for i, n in enumerate(a.shape) if n == 1)
    else:
        axes = normalize_axes(axis, a.ndim)
        for i in axes:
            if a.shape[i] != 1:
                raise ValueError(
                    f"cannot select an axis to squeeze out which has size not equal to one "
                    f"(axis {i} of shape {a.shape})"
                )
    keep = [i for i in range(a.ndim) if i not in axes]
    return make_view(a, [a.shape[i] for i in keep], [a._strides[i] for i in keep])


def ravel(a) -> ndarray:
    """``a`` flattened (a view when contiguous)."""
    return reshape_view(_check(a, "ravel"), (-1,))


def broadcast_to(a, shape) -> ndarray:
    """A read-only view of ``a`` broadcast to ``shape`` (stride 0 along repeated axes)."""
    a = _check(a, "broadcast_to")
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
    try:
        fits = np.broadcast_shapes(a.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits or len(shape) < a.ndim:
        raise ValueError(f"broadcast_to: cannot broadcast an array of shape {a.shape} to {shape}")
    return broadcast_view(a, shape)


def broadcast_arrays(*arrays) -> list:
    """Views of ``arrays`` broadcast against each other."""
    shape = np.broadcast_shapes(*[_check(a, "broadcast_arrays").shape for a in arrays])
    return [broadcast_view(a, shape) for a in arrays]


def atleast_1d(a) -> ndarray:
    a = _check(a, "atleast_1d")
    return a if a.ndim >= 1 else reshape_view(a, (1,))


def atleast_2d(a) -> ndarray:
    a = _check(a, "atleast_2d")
    return a if a.ndim >= 2 else reshape_view(a, (1,) * (2 - a.ndim) + a.shape)


def _slice_along(a: ndarray, axis: int, start: int, stop: int) -> ndarray:
    shape = list(a.shape)
    shape[axis] = stop - start
    return make_view(a, shape, a._strides, a.offset + start * a._strides[axis])


def concatenate(arrays, axis=0, dtype=None) -> ndarray:
    """Join arrays along an existing axis (``axis=None`` flattens them first)."""
    arrays = [_check(a, "concatenate") for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to concatenate")
    if axis is None:
        arrays = [reshape_view(a, (-1,)) for a in arrays]
        axis = 0
    first = arrays[0]
    if first.ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    axis = normalize_axes(axis, first.ndim)[0]
    for a in arrays:
        if a.ndim != first.ndim or any(
            n != m for i, (n, m) in enumerate(zip(a.shape, first.shape)) if i != axis
        ):
            shapes = ", ".join(str(x.shape) for x in arrays)
            raise ValueError(
                f"concatenate: all the input array dimensions except for the concatenation axis "
                f"must match exactly; got shapes {shapes} along axis {axis}"
            )
        if a._device is not first._device:
            raise DeviceError(f"concatenate: arrays live on {first.device} and {a.device}")
    dtype = np.dtype(dtype) if dtype is not None else np.result_type(*[a.dtype for a in arrays])
    shape = list(first.shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = empty_array(shape, dtype, first._device)
    start = 0
    for a in arrays:
        stop = start + a.shape[axis]
        copyto(_slice_along(out, axis, start, stop), a, casting="unsafe")
        start = stop
    return out


def stack(arrays, axis=0) -> ndarray:
    """Join arrays of one shape along a new axis."""
    arrays = [_check(a, "stack") for a in arrays]
    if not arrays:
        raise ValueError("need at least one array to stack")
    if len({a.shape for a in arrays}) > 1:
        raise ValueError(
            f"stack: all input arrays must have the same shape, got {[a.shape for a in arrays]}"
        )
    axis = normalize_axes(axis, arrays[0].ndim + 1)[0]
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis)


def vstack(arrays) -> ndarray:
    return concatenate([atleast_2d(a) for a in arrays], axis=0)


def hstack(arrays) -> ndarray:
    arrays = [atleast_1d(a) for a in arrays]
    return concatenate(arrays, axis=0 if arrays[0].ndim == 1 else 1)


def array_split(a, indices_or_sections, axis=0) -> list:
    """Views of ``a`` split along ``axis`` (sections may differ in size by one)."""
    a = _check(a, "array_split")
    axis = normalize_axes(axis, a.ndim)[0]
    length = a.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0")
        each, extra = divmod(length, sections)
        bounds = [0]
        for k in range(sections):
            bounds.append(bounds[-1] + each + (1 if k < extra else 0))
    else:
        bounds = (
            [0]
            + [
                min(max(int(i) if i >= 0 else int(i) + length, 0), length)
                for i in indices_or_sections
            ]
            + [length]
        )
    return [
        _slice_along(a, axis, start, max(start, stop)) for start, stop in zip(bounds, bounds[1:])
    ]


def split(a, indices_or_sections, axis=0) -> list:
    """Views of ``a`` split along ``axis`` into equal sections or at the given indices."""
    a = _check(a, "split")
    if isinstance(indices_or_sections, (int, np.integer)):
        length = a.shape[normalize_axes(axis, a.ndim)[0]]
        if int(indices_or_sections) <= 0 or length % int(indices_or_sections):
            raise ValueError(
                f"split: array of size {length} along axis {axis} does not split into "
                f"{indices_or_sections} equal sections"
            )
    return array_split(a, indices_or_sections, axis)


def _pairs(pad_width, ndim: int, name: str) -> list:
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (ndim, 2)).tolist()
    if any(w < 0 for pair in widths for w in pair):
        raise ValueError(f"{name}: negative pad width in {pad_width}")
    return widths


def pad(a, pad_width, mode: str = "constant", constant_values=0) -> ndarray:
    """``a`` padded with a constant (only ``mode="constant"``; one value for every side)."""
    a = _check(a, "pad")
    if mode != "constant":
        raise NotImplementedError(f"opencl pad: mode {mode!r} is not supported (only 'constant')")
    if not isinstance(constant_values, (int, float, np.number)):
        raise NotImplementedError("opencl pad: constant_values must be one number")
    widths = _pairs(pad_width, a.ndim, "pad")
    shape = [n + before + after for n, (before, after) in zip(a.shape, widths)]
    out = empty_array(shape, a.dtype, a._device)
    out.fill(constant_values)
    offset = sum(before * s for (before, _), s in zip(widths, out._strides))
    copyto(make_view(out, a.shape, out._strides, offset), a)
    return out


def flip(a, axis=None) -> ndarray:
    """A view of ``a`` with the order of elements reversed along ``axis`` (all by default)."""
    a = _check(a, "flip")
    axes = normalize_axes(axis, a.ndim)
    strides, offset = list(a._strides), a.offset
    for i in axes:
        if a.shape[i]:
            offset += (a.shape[i] - 1) * strides[i]
        strides[i] = -strides[i]
    return make_view(a, a.shape, strides, offset)


def repeat(a, repeats, axis=None) -> ndarray:
    """Repeat each element ``repeats`` times (an int) along ``axis`` (flattened if None)."""
    a = _check(a, "repeat")
    if not isinstance(repeats, (int, np.integer)):
        raise NotImplementedError("opencl repeat: repeats must be one int")
    if axis is None:
        a, axis = reshape_view(a, (-1,)), 0
    axis = normalize_axes(axis, a.ndim)[0]
    expanded = expand_dims(a, axis + 1)
    shape = list(expanded.shape)
    shape[axis + 1] = int(repeats)
    tiled = broadcast_view(expanded, tuple(shape))
    out_shape = list(a.shape)
    out_shape[axis] *= int(repeats)
    return reshape_view(tiled, out_shape)


def tile(a, reps) -> ndarray:
    """``a`` repeated ``reps`` times along each axis."""
    a = _check(a, "tile")
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    ndim = max(a.ndim, len(reps))
    reps = (1,) * (ndim - len(reps)) + reps
    a = reshape_view(a, (1,) * (ndim - a.ndim) + a.shape)
    expanded = reshape_view(a, tuple(x for n in a.shape for x in (1, n)))
    tiled = broadcast_view(expanded, tuple(x for r, n in zip(reps, a.shape) for x in (r, n)))
    return reshape_view(tiled, tuple(r * n for r, n in zip(reps, a.shape)))


def diagonal(a, offset: int = 0, axis1: int = 0, axis2: int = 1) -> ndarray:
    """A view of the diagonal over ``axis1`` and ``axis2`` (moved to the last axis)."""
    a = _check(a, "diagonal")
    i, j = normalize_axes(axis1, a.ndim)[0], normalize_axes(axis2, a.ndim)[0]
    if i == j:
        raise ValueError("diagonal: axis1 and axis2 cannot be the same")
    start = a.offset
    n_i, n_j = a.shape[i], a.shape[j]
    if offset >= 0:
        length = max(0, min(n_i, n_j - offset))
        start += offset * a._strides[j] if length else 0
    else:
        length = max(0, min(n_i + offset, n_j))
        start += -offset * a._strides[i] if length else 0
    keep = [k for k in range(a.ndim) if k not in (i, j)]
    shape = [a.shape[k] for k in keep] + [length]
    strides = [a._strides[k] for k in keep] + [a._strides[i] + a._strides[j]]
    return make_view(a, shape, strides, start)


def as_strided(x, shape=None, strides=None, subok: bool = False, writeable: bool = True):
    """A view of ``x`` with the given shape and **byte** strides, as NumPy's ``as_strided``.

    As in NumPy, nothing checks that the view stays inside the buffer.
    """
    x = _check(x, "as_strided")
    shape = x.shape if shape is None else tuple(int(n) for n in shape)
    if strides is None:
        element_strides = x._strides
    else:
        itemsize = x.dtype.itemsize
        if any(int(s) % itemsize for s in strides):
            raise ValueError(f"as_strided: strides {strides} are not multiples of {itemsize}")
        element_strides = tuple(int(s) // itemsize for s in strides)
    if len(element_strides) != len(shape):
        raise ValueError(f"as_strided: {len(shape)} dimensions but {len(element_strides)} strides")
    return make_view(x, shape, element_strides)


def sliding_window_view(x, window_shape, axis=None, subok: bool = False, writeable: bool = False):
    """A view of every window of ``window_shape`` sliding over ``x`` (window axes appended)."""
    x = _check(x, "sliding_window_view")
    window_shape = (
        (int(window_shape),)
        if isinstance(window_shape, (int, np.integer))
        else tuple(int(w) for w in window_shape)
    )
    if axis is None:
        axis = tuple(range(x.ndim))
        if len(window_shape) != x.ndim:
            raise ValueError(
                f"sliding_window_view: window_shape {window_shape} needs one entry per axis of "
                f"{x.shape}"
            )
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    axes = [normalize_axes(a, x.ndim)[0] for a in axes]
    shape = list(x.shape)
    for ax, w in zip(axes, window_shape):
        if shape[ax] < w:
            raise ValueError("sliding_window_view: window shape cannot be larger than input")
        shape[ax] -= w - 1
    return make_view(
        x, shape + list(window_shape), list(x._strides) + [x._strides[ax] for ax in axes]
    )
