"""Arithmetic operators: add, sub, mul, div, neg and pow, with NumPy broadcasting.

These are what ``+ - * / ** -x`` on Variables call.  A Python number on either side never
changes the dtype of the array (``float32 * 1.0001`` stays float32): it is kept as a number
inside the function instead of being wrapped in a Variable of its own.
"""

from __future__ import annotations

import numpy as np

from pygrad.core import Function, Variable, as_array, as_variable
from pygrad.functions.shape import sum_to

__all__ = ["add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow", "rpow"]

_number_types = (int, float, complex, np.number, np.bool_)


def _is_number(x) -> bool:
    return isinstance(x, _number_types)


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


def _reduce_to(gx: Variable, x: Variable) -> Variable:
    """Sum a broadcast gradient back to the shape of input ``x`` and give it ``x``'s dtype,
    so that mixing dtypes never changes the dtype of a gradient."""
    if gx.shape != x.shape:
        gx = sum_to(gx, x.shape)
    if gx.dtype != x.dtype:
        gx = Cast(x.dtype)(gx)
    return gx


class Add(Function):
    needs_inputs = False
    needs_outputs = False

    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return _reduce_to(gy, x0), _reduce_to(gy, x1)


class AddConstant(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x + self.c

    def backward(self, gy):
        return gy


class Sub(Function):
    needs_inputs = False
    needs_outputs = False

    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return _reduce_to(gy, x0), _reduce_to(-gy, x1)


class SubConstant(Function):
    """``x - c`` for a number ``c`` (not ``x + (-c)``: ``-c`` may not fit an unsigned dtype)."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x - self.c

    def backward(self, gy):
        return gy


class RSubConstant(Function):
    """``c - x`` for a number ``c``."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return self.c - x

    def backward(self, gy):
        return -gy


class Mul(Function):
    needs_inputs = True
    needs_outputs = False

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return _reduce_to(gy * x1, x0), _reduce_to(gy * x0, x1)


class MulConstant(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x * self.c

    def backward(self, gy):
        return gy * self.c


class Div(Function):
    needs_inputs = True
    needs_outputs = False

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        gx1 = -gx0 * x0 / x1
        return _reduce_to(gx0, x0), _reduce_to(gx1, x1)


class DivConstant(Function):
    """``x / c`` for a number ``c``."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x / self.c

    def backward(self, gy):
        return gy / self.c


class RDivConstant(Function):
    """``c / x`` for a number ``c``."""

    needs_inputs = True
    needs_outputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return self.c / x

    def backward(self, gy):
        x = self.inputs[0]
        return gy * (-self.c) / (x * x)


class Neg(Function):
    needs_inputs = False
    needs_outputs = False

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class PowConstant(Function):
    """``x ** c`` for a number ``c``."""

    needs_inputs = True
    needs_outputs = False

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x**self.c

    def backward(self, gy):
        x = self.inputs[0]
        c = self.c
        if c == 0:
            return gy * 0
        return gy * (c * x ** (c - 1))


class Pow(Function):
    """``x0 ** x1`` for two arrays."""

    def forward(self, x0, x1):
        y = x0**x1
        return y

    def backward(self, gy):
        from pygrad.functions.elementwise import log, where

        x0, x1 = self.inputs
        y = self.outputs[0]()
        if y is None:
            y = x0**x1
        # 0 ** -1 would turn the zero gradient at x0 == x1 == 0 into NaN.
        gx0 = gy * x1 * x0 ** where(x1.data == 0, 1, x1 - 1)
        # d(x0**x1)/dx1 = y * log(x0); define it as 0 where x0 == 0 (the limit from x0 > 0
        # times the zero factor y) so a zero base does not poison the gradient with NaN.
        positive = x0.data > 0
        safe_x0 = where(positive, x0, 1)
        gx1 = gy * y * log(safe_x0)
        return _reduce_to(gx0, x0), _reduce_to(gx1, x1)


def add(x0, x1) -> Variable:
    """Elementwise ``x0 + x1`` with broadcasting."""
    if _is_number(x1):
        return AddConstant(x1)(x0)
    if _is_number(x0):
        return AddConstant(x0)(x1)
    return Add()(x0, x1)


def sub(x0, x1) -> Variable:
    """Elementwise ``x0 - x1`` with broadcasting."""
    if _is_number(x1):
        return SubConstant(x1)(x0)
    if _is_number(x0):
        return RSubConstant(x0)(x1)
    return Sub()(x0, x1)


def rsub(x0, x1) -> Variable:
    """Elementwise ``x1 - x0`` (the reflected ``-``)."""
    return sub(x1, x0)


def mul(x0, x1) -> Variable:
    """Elementwise ``x0 * x1`` with broadcasting."""
    if _is_number(x1):
        return MulConstant(x1)(x0)
    if _is_number(x0):
        return MulConstant(x0)(x1)
    return Mul()(x0, x1)


def div(x0, x1) -> Variable:
    """Elementwise ``x0 / x1`` with broadcasting."""
    if _is_number(x1):
        return DivConstant(x1)(x0)
    if _is_number(x0):
        return RDivConstant(x0)(x1)
    return Div()(x0, x1)


def rdiv(x0, x1) -> Variable:
    """Elementwise ``x1 / x0`` (the reflected ``/``)."""
    return div(x1, x0)


def neg(x) -> Variable:
    """Elementwise ``-x``."""
    return Neg()(x)


def pow(x, c) -> Variable:
    """Elementwise ``x ** c``; ``c`` is a number or an array broadcast against ``x``."""
    if _is_number(c):
        return PowConstant(c)(x)
    if _is_number(x):
        x = as_variable(x, like=as_variable(c))
        return Pow()(x, c)
    return Pow()(x, c)


def rpow(x, c) -> Variable:
    """Elementwise ``c ** x`` (the reflected ``**``)."""
    if _is_number(c):
        c = Variable(as_array(c, as_variable(x).data))
    return pow(c, x)
