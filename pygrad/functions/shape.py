"""Shape functions: reshape, transpose, broadcasting, indexing, joining and splitting.

None of these do arithmetic; their backward passes move gradients back into the input's
shape (a reshape, a transpose, a sum over broadcast axes, a scatter-add for indexing).
"""

from __future__ import annotations

import numpy as np

from pygrad.backends import get_array_module
from pygrad.core import Function, Variable, as_variable

__all__ = [
    "reshape",
    "transpose",
    "broadcast_to",
    "sum_to",
    "get_item",
]


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    """Return ``axis`` as a non-negative int, or raise a ValueError naming ``op``."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for an array of {ndim} dimension(s)")
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim: int, op: str) -> tuple:
    """Return ``axis`` (None, an int or a sequence) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    axes = tuple(sorted(normalize_axis(int(a), max(ndim, 1), op) for a in axis))
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return axes


def sum_to_array(x, shape: tuple):
    """Sum array ``x`` over the axes that broadcasting added to reach it from ``shape``."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, size in enumerate(shape) if size == 1 and x.shape[i + lead] != 1
    )
    if not axes:
        return x
    y = x.sum(axis=axes, keepdims=True)
    return y.reshape(shape) if lead else y


class Reshape(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.inputs[0].shape)


def reshape(x, shape) -> Variable:
    """Return ``x`` with a new shape holding the same elements (one ``-1`` may be inferred).

    Raises
    ------
    ValueError
        If ``shape`` does not hold exactly ``x.size`` elements.
    """
    x = as_variable(x)
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    if shape == x.shape:
        return x
    known = 1
    for size in shape:
        if size != -1:
            known *= size
    if (
        shape.count(-1) > 1
        or (-1 not in shape and known != x.size)
        or (-1 in shape and (known == 0 or x.size % known))
    ):
        raise ValueError(
            f"reshape: cannot reshape an array of shape {x.shape} ({x.size} elements) into shape {shape}"
        )
    return Reshape(shape)(x)


class Transpose(Function):
    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        inverse = tuple(np.argsort(self.axes))
        return transpose(gy, inverse)


def transpose(x, axes=None) -> Variable:
    """Permute the axes of ``x`` (reverse them when ``axes`` is None)."""
    x = as_variable(x)
    if axes is not None:
        axes = tuple(normalize_axis(int(a), x.ndim, "transpose") for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of {x.shape}"
            )
    return Transpose(axes)(x)


class BroadcastTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


def broadcast_to(x, shape) -> Variable:
    """Return ``x`` broadcast to ``shape`` the NumPy way (a view; backward sums)."""
    x = as_variable(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    try:
        np.broadcast_shapes(x.shape, shape)
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}") from None
    return BroadcastTo(shape)(x)


class SumTo(Function):
    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].shape)


def sum_to(x, shape) -> Variable:
    """Sum ``x`` down to ``shape``: the inverse of broadcasting ``shape`` up to ``x.shape``."""
    x = as_variable(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return SumTo(shape)(x)


def _device_key(key, xp):
    """Move integer-array parts of an index to the device of the indexed array."""
    if xp is np:
        return key
    parts = key if isinstance(key, tuple) else (key,)
    moved = tuple(
        xp.asarray(np.asarray(k)) if isinstance(k, (list, np.ndarray)) else k for k in parts
    )
    return moved if isinstance(key, tuple) else moved[0]


def _host_key(key):
    """Replace Variables in an index by their arrays."""
    if isinstance(key, Variable):
        return key.data
    if isinstance(key, tuple):
        return tuple(k.data if isinstance(k, Variable) else k for k in key)
    return key


class GetItem(Function):
    def __init__(self, key):
        self.key = key

    def forward(self, x):
        return x[self.key]

    def backward(self, gy):
        x = self.inputs[0]
        return GetItemGrad(self.key, x.shape)(gy)


class GetItemGrad(Function):
    """Scatter-add a gradient back into the indexed positions (repeated indices accumulate)."""

    def __init__(self, key, in_shape):
        self.key = key
        self.in_shape = in_shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        xp.add.at(gx, self.key, gy)
        return gx

    def backward(self, ggx):
        return get_item(ggx, self.key)


def get_item(x, key) -> Variable:
    """Index ``x`` like a NumPy array: ints, slices, ``None``, ``...``, boolean and integer arrays.

    With integer arrays the gradient accumulates at repeated indices.
    """
    x = as_variable(x)
    key = _device_key(_host_key(key), get_array_module(x.data))
    return GetItem(key)(x)
