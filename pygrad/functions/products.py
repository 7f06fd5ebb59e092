"""Products: matmul, linear and einsum."""

from __future__ import annotations

from pygrad.backends import get_array_module
from pygrad.core import Function, Variable, as_variable
from pygrad.functions.shape import sum_to, transpose

__all__ = ["matmul"]


def _swap_last(x: Variable) -> Variable:
    if x.ndim < 2:
        return x
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


class MatMul(Function):
    def forward(self, x0, x1):
        return get_array_module(x0).matmul(x0, x1)

    def backward(self, gy):
        x0, x1 = self.inputs
        # Vectors take part as a row (x0) or a column (x1), as in NumPy's matmul.
        a = reshape_for(x0, row=True)
        b = reshape_for(x1, row=False)
        g = gy
        if x0.ndim == 1 and x1.ndim == 1:
            g = gy.reshape(1, 1)
        elif x0.ndim == 1:
            g = gy.reshape(*gy.shape[:-1], 1, gy.shape[-1])
        elif x1.ndim == 1:
            g = gy.reshape(*gy.shape, 1)
        gx0 = matmul(g, _swap_last(b))
        gx1 = matmul(_swap_last(a), g)
        gx0 = sum_to(gx0, a.shape).reshape(x0.shape)
        gx1 = sum_to(gx1, b.shape).reshape(x1.shape)
        return gx0, gx1


def reshape_for(x: Variable, row: bool) -> Variable:
    if x.ndim != 1:
        return x
    return x.reshape(1, x.shape[0]) if row else x.reshape(x.shape[0], 1)


def matmul(x0, x1) -> Variable:
    """Matrix product with NumPy's rules: batched over leading axes, vectors promoted.

    Raises
    ------
    ValueError
        If the inner dimensions do not agree, naming both shapes.
    """
    x0, x1 = as_variable(x0), as_variable(x1, like=None)
    if x0.ndim == 0 or x1.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least one dimension, got shapes {x0.shape} and {x1.shape}"
        )
    inner0 = x0.shape[-1]
    inner1 = x1.shape[0] if x1.ndim == 1 else x1.shape[-2]
    if inner0 != inner1:
        raise ValueError(
            f"matmul: shapes {x0.shape} and {x1.shape} are not aligned: "
            f"{inner0} (last axis of the first) != {inner1} (second-to-last axis of the second)"
        )
    return MatMul()(x0, x1)
