"""Reductions: sum, mean, max, min, logsumexp and var over axes, with ``keepdims``."""

from __future__ import annotations

from pygrad.core import Function, Variable, as_variable
from pygrad.functions.shape import broadcast_to, normalize_axes, reshape

__all__ = ["sum"]


def keepdims_shape(in_shape: tuple, axes: tuple) -> tuple:
    """The shape a reduction over ``axes`` has with ``keepdims=True``."""
    return tuple(1 if i in axes else size for i, size in enumerate(in_shape))


def expand_reduced(gy: Variable, in_shape: tuple, axes: tuple, keepdims: bool) -> Variable:
    """Broadcast the gradient of a reduction back over the reduced axes."""
    if not keepdims and axes:
        gy = reshape(gy, keepdims_shape(in_shape, axes))
    return broadcast_to(gy, in_shape)


class Sum(Function):
    def __init__(self, axes, keepdims):
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x):
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        return expand_reduced(gy, self.inputs[0].shape, self.axes, self.keepdims)


def sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum of ``x`` over ``axis`` (an int, a tuple of ints, or None for all axes)."""
    x = as_variable(x)
    return Sum(normalize_axes(axis, x.ndim, "sum"), keepdims)(x)
