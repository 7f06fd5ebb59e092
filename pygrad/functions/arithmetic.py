"""Arithmetic operators: add, sub, mul, div, neg and pow, with NumPy broadcasting.

These are what ``+ - * / ** -x`` on Variables call.  A Python number on either side never
changes the dtype of the array (``float32 * 1.0001`` stays float32): it is kept as a number
inside the function instead of being wrapped in a Variable of its own.  A NumPy scalar
promotes as it does in NumPy (``float32 * np.float64(2)`` is float64), but gradients always
take the dtype of their variable.
"""

from __future__ import annotations

import numpy as np

from pygrad.backends import DeviceError
from pygrad.core import Function, Variable, as_array, as_variable
from pygrad.functions.shape import Cast, keeps_grad_dtype, reduce_to

__all__ = ["add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow", "rpow"]

_number_types = (int, float, complex, np.number, np.bool_)


class _ConstantOp(Function):
    """An op between an array and a number ``c`` that is kept as a number.

    A NumPy scalar can promote the result (``float32 * np.float64(2)`` is float64): forward
    then records the input's dtype in ``grad_dtype`` and backward casts the gradient back to
    it.  Checking once in forward is cheaper than comparing dtypes in every backward.
    """

    needs_inputs = False
    needs_outputs = False
    grad_dtype = None

    def __init__(self, c):
        self.c = c

    def _note_promotion(self, x, y) -> None:
        # Forward calls this only when the dtypes are not the very same object; equal ones
        # (a dtype built anew) need no cast.
        if y.dtype != x.dtype and keeps_grad_dtype(x.dtype):
            self.grad_dtype = x.dtype

    def _cast_back(self, gx: Variable) -> Variable:
        return gx if self.grad_dtype is None else Cast(self.grad_dtype)(gx)


class Add(Function):
    needs_inputs = False
    needs_outputs = False

    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return reduce_to(gy, x0), reduce_to(gy, x1)


class AddConstant(_ConstantOp):
    def forward(self, x):
        y = x + self.c
        if y.dtype is not x.dtype:
            self._note_promotion(x, y)
        return y

    def backward(self, gy):
        return gy if self.grad_dtype is None else self._cast_back(gy)


class Sub(Function):
    needs_inputs = False
    needs_outputs = False

    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return reduce_to(gy, x0), reduce_to(-gy, x1)


class SubConstant(_ConstantOp):
    """``x - c`` for a number ``c`` (not ``x + (-c)``: ``-c`` may not fit an unsigned dtype)."""

    def forward(self, x):
        y = x - self.c
        if y.dtype is not x.dtype:
            self._note_promotion(x, y)
        return y

    def backward(self, gy):
        return gy if self.grad_dtype is None else self._cast_back(gy)


class RSubConstant(_ConstantOp):
    """``c - x`` for a number ``c``."""

    def forward(self, x):
        y = self.c - x
        if y.dtype is not x.dtype:
            self._note_promotion(x, y)
        return y

    def backward(self, gy):
        return self._cast_back(-gy)


class Mul(Function):
    needs_inputs = True
    needs_outputs = False

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return reduce_to(gy * x1, x0), reduce_to(gy * x0, x1)


class MulConstant(_ConstantOp):
    def forward(self, x):
        y = x * self.c
        if y.dtype is not x.dtype:
            self._note_promotion(x, y)
        return y

    def backward(self, gy):
        # Straight to the function: ``gy * self.c`` would dispatch through the operator.
        gx = MulConstant(self.c)(gy)
        return gx if self.grad_dtype is None else self._cast_back(gx)


class Div(Function):
    needs_inputs = True
    needs_outputs = False

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        gx1 = -gx0 * x0 / x1
        return reduce_to(gx0, x0), reduce_to(gx1, x1)


class DivConstant(_ConstantOp):
    """``x / c`` for a number ``c``."""

    def forward(self, x):
        y = x / self.c
        if y.dtype is not x.dtype:
            self._note_promotion(x, y)
        return y

    def backward(self, gy):
        return self._cast_back(gy / self.c)


class RDivConstant(_ConstantOp):
    """``c / x`` for a number ``c``."""

    needs_inputs = True

    def forward(self, x):
        y = self.c / x
        if y.dtype is not x.dtype:
            self._note_promotion(x, y)
        return y

    def backward(self, gy):
        x = self.inputs[0]
        return self._cast_back(gy * (-self.c) / (x * x))


class Neg(Function):
    needs_inputs = False
    needs_outputs = False

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class PowConstant(_ConstantOp):
    """``x ** c`` for a number ``c``."""

    needs_inputs = True

    def forward(self, x):
        y = x**self.c
        if y.dtype is not x.dtype:
            self._note_promotion(x, y)
        return y

    def backward(self, gy):
        x = self.inputs[0]
        c = self.c
        if c == 0:
            return self._cast_back(gy * 0)
        return self._cast_back(gy * (c * x ** (c - 1)))


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
        return reduce_to(gx0, x0), reduce_to(gx1, x1)


def _as_data(x):
    """The array behind an operand, or None when it is not numeric data of one shape."""
    if isinstance(x, Variable):
        return x.data
    if isinstance(x, (list, tuple, _number_types)):
        try:
            return np.asarray(x)
        except ValueError:
            return None
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else None


def _describe(x) -> str:
    """``Variable (shape (2, 3), dtype float32)``, or the type of what is no array."""
    data = _as_data(x)
    kind = type(x).__name__
    return kind if data is None else f"{kind} (shape {data.shape}, dtype {data.dtype})"


def _raise_operand_error(op: str, x0, x1, error: Exception) -> None:
    """Raise an error naming ``op`` and both operands for ``error`` raised by ``op``.

    The check runs only once ``op`` has failed, so it costs nothing on success.  Returns (and
    the caller re-raises ``error``) when the operands are not to blame, as for a DeviceError.
    """
    if isinstance(error, DeviceError):
        return
    data0, data1 = _as_data(x0), _as_data(x1)
    operands = f"{_describe(x0)} and {_describe(x1)}"
    if isinstance(error, TypeError):
        if data0 is None or data1 is None:
            raise TypeError(
                f"{op}: operands must be Variables, arrays, (nested) lists or numbers, "
                f"got {operands}"
            ) from None
        raise TypeError(f"{op}: {error} (operands: {operands})") from None
    if data0 is None or data1 is None:
        return
    try:
        np.broadcast_shapes(data0.shape, data1.shape)
    except ValueError:
        raise ValueError(
            f"{op}: operands of shapes {data0.shape} and {data1.shape} cannot be broadcast "
            f"together (dtypes {data0.dtype} and {data1.dtype}); each axis, counted from the "
            "last, must be equal or 1"
        ) from None


def add(x0, x1) -> Variable:
    """Elementwise ``x0 + x1`` with NumPy broadcasting.

    Parameters
    ----------
    x0, x1 : Variable, array, list or number
        Operands whose shapes broadcast together.  A Python number keeps the other's dtype.

    Returns
    -------
    Variable
        The broadcast shape; each gradient has the shape and dtype of its operand.

    Raises
    ------
    ValueError
        If the shapes do not broadcast, naming the op, both shapes and dtypes.
    TypeError
        If an operand is not numeric data.
    """
    if isinstance(x1, _number_types):
        return AddConstant(x1)(x0)
    if isinstance(x0, _number_types):
        return AddConstant(x0)(x1)
    try:
        return Add()(x0, x1)
    except (TypeError, ValueError) as error:
        _raise_operand_error("add", x0, x1, error)
        raise


def sub(x0, x1) -> Variable:
    """Elementwise ``x0 - x1`` with NumPy broadcasting; see :func:`add` for the rules."""
    if isinstance(x1, _number_types):
        return SubConstant(x1)(x0)
    if isinstance(x0, _number_types):
        return RSubConstant(x0)(x1)
    try:
        return Sub()(x0, x1)
    except (TypeError, ValueError) as error:
        _raise_operand_error("sub", x0, x1, error)
        raise


def rsub(x0, x1) -> Variable:
    """Elementwise ``x1 - x0`` (the reflected ``-``)."""
    return sub(x1, x0)


def mul(x0, x1) -> Variable:
    """Elementwise ``x0 * x1`` with NumPy broadcasting; see :func:`add` for the rules."""
    if isinstance(x1, _number_types):
        return MulConstant(x1)(x0)
    if isinstance(x0, _number_types):
        return MulConstant(x0)(x1)
    try:
        return Mul()(x0, x1)
    except (TypeError, ValueError) as error:
        _raise_operand_error("mul", x0, x1, error)
        raise


def div(x0, x1) -> Variable:
    """Elementwise ``x0 / x1`` with NumPy broadcasting; see :func:`add` for the rules.

    Integer operands give float64, as in NumPy.
    """
    if isinstance(x1, _number_types):
        return DivConstant(x1)(x0)
    if isinstance(x0, _number_types):
        return RDivConstant(x0)(x1)
    try:
        return Div()(x0, x1)
    except (TypeError, ValueError) as error:
        _raise_operand_error("div", x0, x1, error)
        raise


def rdiv(x0, x1) -> Variable:
    """Elementwise ``x1 / x0`` (the reflected ``/``)."""
    return div(x1, x0)


def neg(x) -> Variable:
    """Elementwise ``-x``."""
    return Neg()(x)


def pow(x, c) -> Variable:
    """Elementwise ``x ** c`` with NumPy broadcasting; see :func:`add` for the rules.

    ``c`` is a number or an array broadcast against ``x``.
    """
    if isinstance(c, _number_types):
        return PowConstant(c)(x)
    try:
        if isinstance(x, _number_types):
            x = as_variable(x, like=as_variable(c))
        return Pow()(x, c)
    except (TypeError, ValueError) as error:
        _raise_operand_error("pow", x, c, error)
        raise


def rpow(x, c) -> Variable:
    """Elementwise ``c ** x`` (the reflected ``**``)."""
    if isinstance(c, _number_types):
        c = Variable(as_array(c, as_variable(x).data))
    return pow(c, x)
