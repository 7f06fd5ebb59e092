"""Reductions: sum, mean, max, min, logsumexp and var over axes, with ``keepdims``.

Every reduction takes ``axis`` as an int, a tuple of ints or None (all axes), and keeps the
reduced axes with length one when ``keepdims`` is true, as in NumPy.
"""

from __future__ import annotations

import math

import numpy as np

from pygrad.backends import get_array_module
from pygrad.core import Function, Variable, as_variable
from pygrad.functions.elementwise import exp
from pygrad.functions.shape import broadcast_to, normalize_axes, reshape

__all__ = ["sum", "mean", "max", "min", "logsumexp", "var"]

_int_types = (int, np.integer)


def keepdims_shape(in_shape: tuple, axes: tuple) -> tuple:
    """The shape a reduction over ``axes`` has with ``keepdims=True``."""
    return tuple(1 if i in axes else size for i, size in enumerate(in_shape))


def expand_reduced(gy: Variable, in_shape: tuple, axes: tuple, keepdims: bool) -> Variable:
    """Broadcast the gradient of a reduction back over the reduced axes."""
    if not keepdims and axes:
        gy = reshape(gy, keepdims_shape(in_shape, axes))
    return broadcast_to(gy, in_shape)


def reduction_axes(x: Variable, axis, op: str) -> tuple:
    """Return ``axis`` as a sorted tuple of non-negative axes of ``x``, or raise naming ``op``.

    Parameters
    ----------
    x : Variable
        The input being reduced.
    axis : int, tuple of int or None
        None means every axis.  A 0-d input accepts axis 0 or -1 (as PyTorch does) and then
        reduces over nothing.
    op : str
        The name used in error messages.

    Raises
    ------
    TypeError
        If ``axis`` is not None, an int or a sequence of ints.
    ValueError
        If an axis is out of range or repeated; the message names ``op`` and ``x.shape``.
    """
    parts = () if axis is None else (axis,) if isinstance(axis, _int_types) else axis
    if not isinstance(parts, (tuple, list)) or not all(
        isinstance(a, _int_types) and not isinstance(a, bool) for a in parts
    ):
        raise TypeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
    try:
        axes = normalize_axes(axis, x.ndim, op)
    except ValueError as error:
        raise ValueError(f"{error} (input shape {x.shape})") from None
    return axes if x.ndim else ()


def _reduced_size(shape: tuple, axes: tuple) -> int:
    """How many elements each output element of a reduction over ``axes`` combines."""
    return math.prod(shape[i] for i in axes)


def _reduced_shape(shape: tuple, axes: tuple) -> tuple:
    """``shape`` without ``axes``: the result shape of a reduction without ``keepdims``."""
    return tuple(size for i, size in enumerate(shape) if i not in axes)


def _check_not_empty(x: Variable, axes: tuple, op: str) -> None:
    """Reject reductions without an identity (max, min, logsumexp) over an empty axis."""
    if any(x.shape[i] == 0 for i in axes):
        raise ValueError(
            f"{op}: cannot reduce over an empty axis (input shape {x.shape}, axes {axes}); "
            "the result has no value"
        )


class _Reduction(Function):
    """A reduction over ``axes`` (a sorted tuple of non-negative ints)."""

    def __init__(self, axes: tuple, keepdims: bool):
        self.axes = axes
        self.keepdims = keepdims


def _float16_in_float32(forward):
    """Run a reduction's ``forward`` on float16 data in float32 and round once at the end.

    A float16 running sum overflows at 65504 and loses every addend below its last bit, so
    the mean of a thousand 100s came out inf; NumPy's mean accumulates float16 in float32
    too (and PyTorch's every reduction).  The result stays float16.
    """

    def reduce(self, x):
        if x.dtype.char != "e":  # float16, either byte order
            return forward(self, x)
        return forward(self, x.astype(np.float32)).astype(np.float16)

    reduce.__doc__ = forward.__doc__
    return reduce


# =============================================================================================
# sum and mean
# =============================================================================================
class Sum(_Reduction):
    needs_inputs = False
    needs_outputs = False

    @_float16_in_float32
    def forward(self, x):
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        return expand_reduced(gy, self.inputs[0].shape, self.axes, self.keepdims)


def sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum of the elements of ``x`` over ``axis``.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.
    axis : int, tuple of int or None
        The axes to sum over (negative counts from the end); None sums everything.
    keepdims : bool
        Keep the summed axes with length one.

    Returns
    -------
    Variable
        ``x.shape`` without the summed axes (or with them as 1 when ``keepdims``).

    Raises
    ------
    ValueError
        If an axis is out of range or repeated.
    """
    x = as_variable(x)
    return Sum(reduction_axes(x, axis, "sum"), keepdims)(x)


class Mean(_Reduction):
    @_float16_in_float32
    def forward(self, x):
        # sum / count keeps float32 in float32 and turns integers into float64, like NumPy.
        count = _reduced_size(x.shape, self.axes)
        return x.sum(axis=self.axes, keepdims=self.keepdims) / count

    def backward(self, gy):
        shape = self.inputs[0].shape
        gx = expand_reduced(gy, shape, self.axes, self.keepdims)
        return gx / _reduced_size(shape, self.axes)


def mean(x, axis=None, keepdims: bool = False) -> Variable:
    """Arithmetic mean of ``x`` over ``axis``.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.  Integer inputs give a float64 mean, as in NumPy.
    axis : int, tuple of int or None
        The axes to average over; None averages everything.
    keepdims : bool
        Keep the averaged axes with length one.

    Returns
    -------
    Variable
        ``x.shape`` without the averaged axes (or with them as 1 when ``keepdims``).

    Raises
    ------
    ValueError
        If an axis is out of range or repeated.
    """
    x = as_variable(x)
    return Mean(reduction_axes(x, axis, "mean"), keepdims)(x)


# =============================================================================================
# max and min
# =============================================================================================
class _ReduceExtremum(_Reduction):
    """Backward of max and min: ``gy`` goes to the positions that hold the result, shared
    equally among ties.  The shares are constants, so the gradient stays differentiable in
    ``gy`` and every higher derivative with respect to ``x`` is zero (as it is almost
    everywhere)."""

    def backward(self, gy):
        x = self.inputs[0]
        y = self.outputs[0]()
        shape, axes = x.shape, self.axes
        y_data = y.data if y is not None else self.forward(x.data)
        if not self.keepdims:
            y_data = y_data.reshape(keepdims_shape(shape, axes))
        xp = get_array_module(x.data)
        # Shares of a tie need a floating gradient; integer inputs get float64 shares.
        dtype = gy.dtype if gy.dtype.kind in "fc" else np.dtype(np.float64)
        hits = (x.data == y_data).astype(dtype)
        # NaN never equals itself, so a NaN result has no hits; keep the count positive.
        count = xp.maximum(hits.sum(axis=axes, keepdims=True), 1)
        return expand_reduced(gy, shape, axes, self.keepdims) * Variable(hits / count)


class Max(_ReduceExtremum):
    def forward(self, x):
        return x.max(axis=self.axes, keepdims=self.keepdims)


class Min(_ReduceExtremum):
    def forward(self, x):
        return x.min(axis=self.axes, keepdims=self.keepdims)


def max(x, axis=None, keepdims: bool = False) -> Variable:
    """Largest element of ``x`` over ``axis``.

    The gradient goes to the position of the maximum; when several positions tie for it,
    they share the gradient equally (as ``torch.amax`` does).  NaN propagates as in NumPy.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.
    axis : int, tuple of int or None
        The axes to reduce; None reduces everything.
    keepdims : bool
        Keep the reduced axes with length one.

    Returns
    -------
    Variable
        ``x.shape`` without the reduced axes (or with them as 1 when ``keepdims``).

    Raises
    ------
    ValueError
        If an axis is out of range or repeated, or a reduced axis is empty.
    """
    x = as_variable(x)
    axes = reduction_axes(x, axis, "max")
    _check_not_empty(x, axes, "max")
    return Max(axes, keepdims)(x)


def min(x, axis=None, keepdims: bool = False) -> Variable:
    """Smallest element of ``x`` over ``axis``.

    The gradient goes to the position of the minimum; when several positions tie for it,
    they share the gradient equally (as ``torch.amin`` does).

    Parameters
    ----------
    x : Variable or array
        Input of any shape.
    axis : int, tuple of int or None
        The axes to reduce; None reduces everything.
    keepdims : bool
        Keep the reduced axes with length one.

    Returns
    -------
    Variable
        ``x.shape`` without the reduced axes (or with them as 1 when ``keepdims``).

    Raises
    ------
    ValueError
        If an axis is out of range or repeated, or a reduced axis is empty.
    """
    x = as_variable(x)
    axes = reduction_axes(x, axis, "min")
    _check_not_empty(x, axes, "min")
    return Min(axes, keepdims)(x)


# =============================================================================================
# logsumexp and var
# =============================================================================================
class LogSumExp(_Reduction):
    @_float16_in_float32
    def forward(self, x):
        xp = get_array_module(x)
        # Shifting by the max keeps exp() from overflowing; an infinite max (all -inf, or a
        # +inf somewhere) is not subtracted, so the result is -inf or +inf instead of NaN.
        shift = x.max(axis=self.axes, keepdims=True)
        shift = xp.where(xp.isfinite(shift), shift, 0)
        y = xp.log(xp.exp(x - shift).sum(axis=self.axes, keepdims=True)) + shift
        return y if self.keepdims else y.reshape(_reduced_shape(y.shape, self.axes))

    def backward(self, gy):
        x = self.inputs[0]
        y = self.outputs[0]()
        if y is None:
            y = LogSumExp(self.axes, self.keepdims)(x)
        # d/dx log(sum(exp(x))) = softmax(x) = exp(x - y), written with pygrad functions so
        # that it can be differentiated again.
        softmax = exp(x - expand_reduced(y, x.shape, self.axes, self.keepdims))
        return expand_reduced(gy, x.shape, self.axes, self.keepdims) * softmax


def logsumexp(x, axis=None, keepdims: bool = False) -> Variable:
    """``log(sum(exp(x)))`` over ``axis``, computed without overflow for large inputs.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.
    axis : int, tuple of int or None
        The axes to reduce; None reduces everything.
    keepdims : bool
        Keep the reduced axes with length one.

    Returns
    -------
    Variable
        ``x.shape`` without the reduced axes (or with them as 1 when ``keepdims``).  Its
        gradient is the softmax of ``x`` over ``axis``.

    Raises
    ------
    ValueError
        If an axis is out of range or repeated, or a reduced axis is empty.
    """
    x = as_variable(x)
    axes = reduction_axes(x, axis, "logsumexp")
    _check_not_empty(x, axes, "logsumexp")
    return LogSumExp(axes, keepdims)(x)


class Var(_Reduction):
    @_float16_in_float32
    def forward(self, x):
        count = _reduced_size(x.shape, self.axes)
        deviation = x - x.sum(axis=self.axes, keepdims=True) / count
        return (deviation * deviation).sum(axis=self.axes, keepdims=self.keepdims) / count

    def backward(self, gy):
        x = self.inputs[0]
        count = _reduced_size(x.shape, self.axes)
        deviation = x - mean(x, self.axes, keepdims=True)
        gx = expand_reduced(gy, x.shape, self.axes, self.keepdims)
        return gx * deviation * (2 / count)


def var(x, axis=None, keepdims: bool = False) -> Variable:
    """Biased variance (``ddof=0``, the mean of squared deviations) of ``x`` over ``axis``.

    Parameters
    ----------
    x : Variable or array
        Input of any shape.  Integer inputs give a float64 variance, as in NumPy.
    axis : int, tuple of int or None
        The axes to reduce; None reduces everything.
    keepdims : bool
        Keep the reduced axes with length one.

    Returns
    -------
    Variable
        ``x.shape`` without the reduced axes (or with them as 1 when ``keepdims``).

    Raises
    ------
    ValueError
        If an axis is out of range or repeated.
    """
    x = as_variable(x)
    return Var(reduction_axes(x, axis, "var"), keepdims)(x)
