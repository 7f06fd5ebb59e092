"""Shape functions: reshape, transpose, broadcasting, indexing, joining and splitting.

None of these do arithmetic; their backward passes move gradients back into the input's
shape (a reshape, a transpose, a sum over broadcast axes, a scatter-add for indexing).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np

from pygrad.backends import get_array_module
from pygrad.core import Function, Variable, as_variable

__all__ = [
    "reshape",
    "transpose",
    "broadcast_to",
    "sum_to",
    "get_item",
    "expand_dims",
    "squeeze",
    "flatten",
    "concat",
    "stack",
    "split",
]

_int_types = (int, np.integer)


def _as_int(value, what: str, op: str) -> int:
    """Return ``value`` as an int; Python and NumPy integers count, a float is a TypeError
    naming ``op`` (``int()`` would silently truncate it)."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{op}: {what} must be an integer, got {value!r} ({type(value).__name__})"
        ) from None


def _axis_tuple(axis, op: str, what: str = "axis") -> tuple:
    """``axis`` (an int or a sequence of ints) as a tuple of ints, or a TypeError naming
    ``op`` and ``what`` the argument is."""
    if isinstance(axis, _int_types):
        return (int(axis),)
    if not isinstance(axis, (Sequence, np.ndarray)) or isinstance(axis, str):
        raise TypeError(
            f"{op}: {what} must be an int or a sequence of ints, got {axis!r} "
            f"({type(axis).__name__})"
        )
    return tuple(_as_int(a, what, op) for a in axis)


def normalize_axis(axis: int, ndim: int, op: str) -> int:
    """Return ``axis`` as a non-negative int, or raise a ValueError naming ``op``.

    An axis that is not an integer is a TypeError naming ``op``.
    """
    axis = _as_int(axis, "axis", op)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for an array of {ndim} dimension(s)")
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim: int, op: str) -> tuple:
    """Return ``axis`` (None, an int or a sequence) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axis = _axis_tuple(axis, op)
    axes = tuple(sorted(normalize_axis(a, max(ndim, 1), op) for a in axis))
    if ndim == 0:
        # A 0-d array accepts axis 0 or -1 (as a 1-element view would), reducing nothing.
        return ()
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


def _as_shape(shape, op: str) -> tuple:
    """``shape`` (an int or a sequence of ints) as a tuple of ints, or a TypeError naming
    ``op`` and the shape: ``int()`` would silently truncate a size of 3.7 to 3."""
    if isinstance(shape, _int_types):
        return (int(shape),)
    try:
        return tuple(operator.index(size) for size in shape)
    except TypeError:
        raise TypeError(
            f"{op}: shape must be an int or a sequence of ints, got {shape!r}"
        ) from None


# =============================================================================================
# reshape, transpose, broadcasting
# =============================================================================================
class Reshape(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.inputs[0].shape)


def reshape(x, shape) -> Variable:
    """Return ``x`` with a new shape holding the same elements.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.
    shape : int or tuple of int
        The new shape (Python or NumPy integers); one entry may be ``-1`` and is then
        inferred.

    Returns
    -------
    Variable
        ``x`` itself when the shape does not change, otherwise a reshaped Variable.

    Raises
    ------
    ValueError
        If ``shape`` does not hold exactly ``x.size`` elements.
    TypeError
        If a size is not an integer (a float such as 3.7 is never truncated).
    """
    x = as_variable(x)
    shape = _as_shape(shape, "reshape")
    if shape == x.shape:
        return x
    known = math.prod(size for size in shape if size != -1)
    inferred = shape.count(-1)
    if (
        inferred > 1
        or any(size < -1 for size in shape)
        or (not inferred and known != x.size)
        or (inferred and (known == 0 or x.size % known))
    ):
        raise ValueError(
            f"reshape: cannot reshape an array of shape {x.shape} ({x.size} elements) "
            f"into shape {shape}"
        )
    return Reshape(shape)(x)


class Transpose(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, axes):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        inverse = [0] * len(self.axes)
        for position, axis in enumerate(self.axes):
            inverse[axis] = position
        return transpose(gy, inverse)


def transpose(x, axes=None) -> Variable:
    """Permute the axes of ``x``.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.
    axes : sequence of int, optional
        A permutation of ``range(x.ndim)`` (negative axes allowed); reversed axes when None.

    Returns
    -------
    Variable
        ``y`` with ``y.shape[i] == x.shape[axes[i]]``.
    """
    x = as_variable(x)
    if axes is not None:
        axes = tuple(normalize_axis(a, x.ndim, "transpose") for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of {x.shape}"
            )
    return Transpose(axes)(x)


class BroadcastTo(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


def broadcast_to(x, shape) -> Variable:
    """Broadcast ``x`` to ``shape`` the NumPy way (a read-only view; backward sums).

    Raises
    ------
    ValueError
        If ``x.shape`` cannot be broadcast to ``shape``.
    TypeError
        If a size is not an integer.
    """
    x = as_variable(x)
    shape = _as_shape(shape, "broadcast_to")
    if x.shape == shape:
        return x
    if not _broadcasts_to(x.shape, shape):
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    return BroadcastTo(shape)(x)


def _broadcasts_to(small: tuple, large: tuple) -> bool:
    """Whether ``small`` broadcasts to exactly ``large``."""
    lead = len(large) - len(small)
    if lead < 0 or any(size < 0 for size in large):
        return False
    return all(s == 1 or s == t for s, t in zip(small, large[lead:]))


class SumTo(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, shape):
        self.shape = shape

    def forward(self, x):
        return sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].shape)


def sum_to(x, shape) -> Variable:
    """Sum ``x`` down to ``shape``: the inverse of broadcasting ``shape`` up to ``x.shape``.

    Raises
    ------
    ValueError
        If ``shape`` does not broadcast to ``x.shape``.
    """
    x = as_variable(x)
    shape = _as_shape(shape, "sum_to")
    if x.shape == shape:
        return x
    if not _broadcasts_to(shape, x.shape):
        raise ValueError(
            f"sum_to: cannot sum shape {x.shape} to {shape}: {shape} does not broadcast to it"
        )
    return SumTo(shape)(x)


class Cast(Function):
    """Change the dtype; the gradient is cast back to the input's dtype."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, gy):
        return Cast(self.inputs[0].dtype)(gy)


def keeps_grad_dtype(dtype) -> bool:
    """Whether a gradient is cast to the dtype of a variable of ``dtype``.

    Floating and complex variables always get gradients of their own dtype.  An integer
    variable has no meaningful gradient in its dtype: casting would truncate the floating
    one (the halves :func:`maximum` gives at ties), so it keeps it.
    """
    return dtype.kind in "fc"


def reduce_to(gx: Variable, x: Variable) -> Variable:
    """Sum a broadcast gradient back to the shape of input ``x`` and give it ``x``'s dtype,
    so that mixing dtypes never changes the dtype of a gradient (see keeps_grad_dtype)."""
    if gx.shape != x.shape:
        gx = sum_to(gx, x.shape)
    if gx.dtype != x.dtype and keeps_grad_dtype(x.dtype):
        gx = Cast(x.dtype)(gx)
    return gx


def grads_like(grads, inputs) -> tuple:
    """:func:`reduce_to` applied to each gradient that is not None, for its input."""
    return tuple(None if g is None else reduce_to(g, x) for g, x in zip(grads, inputs))


# =============================================================================================
# adding and removing axes
# =============================================================================================
def expand_dims(x, axis) -> Variable:
    """Insert axes of length one at the positions ``axis`` of the result.

    Parameters
    ----------
    x : Variable or array
        Input of shape ``S``.
    axis : int or tuple of int
        Positions in the output (of ``x.ndim + len(axis)`` dimensions); negative counts from
        the end.

    Returns
    -------
    Variable
        A view of ``x`` with the new axes.

    Raises
    ------
    TypeError
        If ``axis`` is not an int or a sequence of ints.
    ValueError
        If an axis is out of range or repeated.
    """
    x = as_variable(x)
    axis = _axis_tuple(axis, "expand_dims")
    ndim = x.ndim + len(axis)
    axes = normalize_axes(axis, ndim, "expand_dims")
    sizes = iter(x.shape)
    shape = tuple(1 if i in axes else next(sizes) for i in range(ndim))
    return reshape(x, shape)


def squeeze(x, axis=None) -> Variable:
    """Remove axes of length one.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.
    axis : int or tuple of int, optional
        The axes to remove, each of length one; every axis of length one when None.

    Raises
    ------
    ValueError
        If a chosen axis is out of range or longer than one.
    """
    x = as_variable(x)
    if axis is None:
        axes = tuple(i for i, size in enumerate(x.shape) if size == 1)
    else:
        axes = tuple(normalize_axis(a, x.ndim, "squeeze") for a in _axis_tuple(axis, "squeeze"))
        for i in axes:
            if x.shape[i] != 1:
                raise ValueError(
                    f"squeeze: cannot remove axis {i} of length {x.shape[i]} from shape {x.shape}"
                )
    return reshape(x, tuple(size for i, size in enumerate(x.shape) if i not in axes))


def flatten(x) -> Variable:
    """Flatten every axis but the first (batch) one: ``(N, ...) -> (N, -1)``.

    A 1-D input of shape ``(N,)`` becomes ``(N, 1)``.

    Raises
    ------
    ValueError
        If ``x`` is 0-dimensional.
    """
    x = as_variable(x)
    if x.ndim == 0:
        raise ValueError("flatten: expected an input with a batch axis, got a 0-d array")
    return reshape(x, (x.shape[0], math.prod(x.shape[1:])))


# =============================================================================================
# joining and splitting
# =============================================================================================
def _along(axis: int, index) -> tuple:
    """The index that applies ``index`` to axis ``axis`` and takes everything elsewhere."""
    return (slice(None),) * axis + (index,)


def _zeros_for(shape: tuple, like) -> Variable:
    """A Variable of zeros standing in for the gradient of an output nobody used."""
    return Variable(get_array_module(like.data).zeros(shape, dtype=like.dtype))


def _fill_missing(gys, shapes, like) -> list:
    reference = next((gy for gy in gys if gy is not None), like)
    return [_zeros_for(shape, reference) if gy is None else gy for gy, shape in zip(gys, shapes)]


class Concat(Function):
    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *xs):
        return get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        axis = self.axis
        bounds, start = [], 0
        for x in self.inputs:
            bounds.append((start, start + x.shape[axis]))
            start += x.shape[axis]
        pieces = Split(bounds, axis, partition=True)(gy)
        if not isinstance(pieces, list):
            pieces = [pieces]
        return tuple(reduce_to(piece, x) for piece, x in zip(pieces, self.inputs))


class Split(Function):
    """Slices ``[start, stop)`` of one axis, as views; backward puts the gradients back."""

    def __init__(self, bounds, axis: int, partition: bool):
        self.bounds = bounds
        self.axis = axis
        # Whether the pieces tile the axis in order, so that backward is one concatenation.
        self.partition = partition

    def forward(self, x):
        return tuple(x[_along(self.axis, slice(start, stop))] for start, stop in self.bounds)

    def backward(self, *gys):
        x = self.inputs[0]
        axis = self.axis
        shapes = [
            x.shape[:axis] + (stop - start,) + x.shape[axis + 1 :] for start, stop in self.bounds
        ]
        if self.partition:
            return concat(_fill_missing(gys, shapes, x), axis)
        gx = None
        for gy, (start, stop) in zip(gys, self.bounds):
            if gy is None or start == stop:
                continue
            part = GetItemGrad(_along(axis, slice(start, stop)), x.shape, False)(gy)
            gx = part if gx is None else gx + part
        return gx if gx is not None else _zeros_for(x.shape, x)


def concat(xs: Sequence, axis: int | None = 0) -> Variable:
    """Join a sequence of arrays along an existing axis, like :func:`numpy.concatenate`.

    Parameters
    ----------
    xs : sequence of Variable or array
        Inputs with the same number of dimensions and the same shape except along ``axis``.
    axis : int or None
        The axis to join along; with None every input is flattened first.

    Returns
    -------
    Variable
        ``y.shape[axis] == sum(x.shape[axis] for x in xs)``.

    Raises
    ------
    ValueError
        If ``xs`` is empty, an input is 0-dimensional, ``axis`` is out of range, or the shapes
        differ off the joining axis.
    """
    xs = _as_variables(xs, "concat")
    if axis is None:
        xs = [reshape(x, (-1,)) for x in xs]
        axis = 0
    first = xs[0]
    if first.ndim == 0:
        raise ValueError("concat: 0-d arrays cannot be concatenated; use stack")
    axis = normalize_axis(axis, first.ndim, "concat")
    for x in xs[1:]:
        if x.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis
        ):
            shapes = ", ".join(str(v.shape) for v in xs)
            raise ValueError(
                f"concat: all input shapes must match except along axis {axis}, got {shapes}"
            )
    return Concat(axis)(*xs)


class Stack(Function):
    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *xs):
        return get_array_module(*xs).stack(xs, axis=self.axis)

    def backward(self, gy):
        pieces = Unstack(self.axis)(gy)
        if not isinstance(pieces, list):
            pieces = [pieces]
        return tuple(reduce_to(piece, x) for piece, x in zip(pieces, self.inputs))


class Unstack(Function):
    """The inverse of :class:`Stack`: every index of one axis as a separate output."""

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x):
        axis = self.axis
        return tuple(x[_along(axis, i)] for i in range(x.shape[axis]))

    def backward(self, *gys):
        x = self.inputs[0]
        shape = x.shape[: self.axis] + x.shape[self.axis + 1 :]
        gys = _fill_missing(gys, [shape] * len(gys), x)
        return Stack(self.axis)(*gys)


def stack(xs: Sequence, axis: int = 0) -> Variable:
    """Join a sequence of same-shaped arrays along a new axis, like :func:`numpy.stack`.

    Parameters
    ----------
    xs : sequence of Variable or array
        ``n`` inputs of the same shape ``S``.
    axis : int
        Position of the new axis in the result (of ``len(S) + 1`` dimensions).

    Returns
    -------
    Variable
        Shape ``S`` with ``n`` inserted at ``axis``.

    Raises
    ------
    ValueError
        If ``xs`` is empty, the shapes differ, or ``axis`` is out of range.
    """
    xs = _as_variables(xs, "stack")
    shape = xs[0].shape
    if any(x.shape != shape for x in xs[1:]):
        shapes = ", ".join(str(x.shape) for x in xs)
        raise ValueError(f"stack: all inputs must have the same shape, got {shapes}")
    axis = normalize_axis(axis, len(shape) + 1, "stack")
    return Stack(axis)(*xs)


def split(x, indices_or_sections, axis: int = 0) -> list:
    """Split ``x`` into pieces along ``axis``, like :func:`numpy.split`.

    Parameters
    ----------
    x : Variable or array
        Input with at least one dimension.
    indices_or_sections : int or sequence of int
        An int ``n`` gives ``n`` equal pieces; a sorted sequence of indices gives the pieces
        ``x[:i0], x[i0:i1], ..., x[ik:]`` along ``axis`` (indices past the end give empty
        pieces, as in NumPy).
    axis : int
        The axis to split.

    Returns
    -------
    list of Variable
        The pieces, as views.  Pieces that are never used get a zero gradient.

    Raises
    ------
    ValueError
        If ``x`` is 0-dimensional, ``axis`` is out of range, or an int ``n`` does not divide
        the length of the axis.
    """
    x = as_variable(x)
    if x.ndim == 0:
        raise ValueError("split: cannot split a 0-d array")
    axis = normalize_axis(axis, x.ndim, "split")
    length = x.shape[axis]
    if isinstance(indices_or_sections, _int_types):
        sections = int(indices_or_sections)
        if sections <= 0 or length % sections:
            raise ValueError(
                f"split: axis {axis} of shape {x.shape} (length {length}) cannot be split "
                f"into {sections} equal sections"
            )
        step = length // sections
        bounds = [(i * step, (i + 1) * step) for i in range(sections)]
    else:
        indices = _axis_tuple(indices_or_sections, "split", "indices_or_sections")
        points = [0, *indices, length]
        bounds = []
        for start, stop, _ in (slice(a, b).indices(length) for a, b in zip(points, points[1:])):
            bounds.append((start, max(start, stop)))
    partition = all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    partition = partition and bounds[0][0] == 0 and bounds[-1][1] == length
    pieces = Split(bounds, axis, partition)(x)
    return pieces if isinstance(pieces, list) else [pieces]


def _as_variables(xs, op: str) -> list:
    if isinstance(xs, (Variable, np.ndarray)) or getattr(xs, "xp", None) is not None:
        raise TypeError(f"{op}: expected a sequence of arrays, got a single {type(xs).__name__}")
    xs = list(xs)
    if not xs:
        raise ValueError(f"{op}: need at least one array")
    like = next((x for x in xs if isinstance(x, Variable)), None)
    return [as_variable(x, like=like) for x in xs]


# =============================================================================================
# indexing
# =============================================================================================
def _normalize_key(key, xp):
    """Replace Variables in an index by their arrays and lists by arrays of ``xp``'s device."""
    parts = key if isinstance(key, tuple) else (key,)
    moved = []
    for k in parts:
        if isinstance(k, Variable):
            k = k.data
        if isinstance(k, list):
            k = np.asarray(k)
            if k.size == 0:
                k = k.astype(np.intp)
        if isinstance(k, np.ndarray) and xp is not np:
            k = xp.asarray(k)
        moved.append(k)
    return tuple(moved) if isinstance(key, tuple) else moved[0]


def _host_key(key):
    """The index with Variables replaced by their arrays and lists by NumPy arrays."""
    return _normalize_key(key, np)


def _gathers_repeatable(key) -> bool:
    """Whether the index holds an integer array that may name one element several times."""
    parts = key if isinstance(key, tuple) else (key,)
    for k in parts:
        dtype = getattr(k, "dtype", None)
        if dtype is not None and dtype.kind in "iu" and k.size > 1:
            return True
    return False


class GetItem(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, key):
        self.key = key
        self.device_key = key

    def forward(self, x):
        # Host index arrays go to the backend as they are: it checks their bounds on the host,
        # where that costs no wait for the device, and then uploads them, once for backward too.
        y = x[self.key]
        xp = get_array_module(x)
        if xp is not np:
            self.device_key = _normalize_key(self.key, xp)
        return y

    def backward(self, gy):
        x = self.inputs[0]
        return GetItemGrad(self.device_key, x.shape, _gathers_repeatable(self.key))(gy)


class GetItemGrad(Function):
    """Scatter a gradient back into the indexed positions of zeros of the input's shape.

    With integer-array indices one position may be named several times; ``xp.add.at`` then
    accumulates instead of overwriting.  Other indices name each position at most once, so
    a plain assignment (much faster) does.
    """

    needs_inputs = False
    needs_outputs = False

    def __init__(self, key, in_shape, accumulate: bool = True):
        self.key = key
        self.in_shape = in_shape
        self.accumulate = accumulate

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        if self.accumulate:
            xp.add.at(gx, self.key, gy)
        else:
            gx[self.key] = gy
        return gx

    def backward(self, ggx):
        return get_item(ggx, self.key)


def get_item(x, key) -> Variable:
    """Index ``x`` like a NumPy array, differentiably.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.
    key : index
        Ints, slices, ``None``, ``...``, boolean masks and integer arrays (NumPy arrays,
        lists or Variables), alone or in a tuple.

    Returns
    -------
    Variable
        ``x[key]``.  In backward, the gradient accumulates at indices named several times.

    Raises
    ------
    IndexError
        If the index is out of range or not a valid index, naming the index and the shape.
    """
    x = as_variable(x)
    try:
        return GetItem(_host_key(key))(x)
    except IndexError as error:
        raise IndexError(
            f"get_item: cannot index an array of shape {x.shape} (dtype {x.dtype}) with "
            f"{key!r}: {error}"
        ) from None
