"""Elementwise math: exp, log, trigonometric and hyperbolic functions, roots, abs, clip,
maximum/minimum and where.  Each backward is written with these same functions, so every
derivative can be differentiated again."""

from __future__ import annotations

import numpy as np

from pygrad.backends import fused_op, get_array_module
from pygrad.core import Function, Variable, as_array, as_variable
from pygrad.functions.shape import reduce_to

__all__ = [
    "exp",
    "log",
    "sin",
    "cos",
    "tan",
    "tanh",
    "sqrt",
    "square",
    "abs",
    "clip",
    "maximum",
    "minimum",
    "where",
]

_number_types = (int, float, np.integer, np.floating, np.bool_)


def _output_of(function: Function) -> Variable:
    """The output of a one-output function, recomputed if nothing holds it any more."""
    y = function.outputs[0]()
    if y is None:
        y = type(function)()(*function.inputs)
    return y


def _constant(array) -> Variable:
    """Wrap an array that backward multiplies by but never differentiates (a mask, a sign)."""
    return Variable(array)


def _broadcast_shape(op: str, *shapes) -> tuple:
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = ", ".join(str(shape) for shape in shapes)
        raise ValueError(f"{op}: shapes {listed} cannot be broadcast together") from None


# =============================================================================================
# exponential and logarithm
# =============================================================================================
class Exp(Function):
    needs_inputs = False
    needs_outputs = True

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy):
        return gy * _output_of(self)


def exp(x) -> Variable:
    """Elementwise exponential, ``e ** x``.

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape and (for floating inputs) dtype as ``x``.
    """
    return Exp()(x)


class Log(Function):
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


def log(x) -> Variable:
    """Elementwise natural logarithm (``-inf`` at 0, NaN below 0, as in NumPy).

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape as ``x``.
    """
    return Log()(x)


# =============================================================================================
# trigonometric and hyperbolic functions
# =============================================================================================
class Sin(Function):
    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        return gy * cos(self.inputs[0])


def sin(x) -> Variable:
    """Elementwise sine (radians).

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape as ``x``.
    """
    return Sin()(x)


class Cos(Function):
    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        return -gy * sin(self.inputs[0])


def cos(x) -> Variable:
    """Elementwise cosine (radians).

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape as ``x``.
    """
    return Cos()(x)


class Tan(Function):
    def forward(self, x):
        return get_array_module(x).tan(x)

    def backward(self, gy):
        y = _output_of(self)
        return gy * (1 + y * y)


def tan(x) -> Variable:
    """Elementwise tangent (radians).

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape as ``x``.
    """
    return Tan()(x)


class Tanh(Function):
    needs_inputs = False
    needs_outputs = True

    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        # _output_of inlined: this backward runs once per tanh of every training step.
        y = self.outputs[0]()
        if y is None:
            y = Tanh()(*self.inputs)
        return TanhGrad()(y, gy)


class TanhGrad(Function):
    """``gy * (1 - y**2)`` in one op: the backward of tanh, itself differentiable."""

    def forward(self, y, gy):
        fused = fused_op(get_array_module(y), "tanh_backward")
        if fused is not None:
            return fused(gy, y)
        return gy * (1 - y * y)

    def backward(self, ggx):
        y, gy = self.inputs
        return ggx * gy * -2 * y, ggx * (1 - y * y)


def tanh(x) -> Variable:
    """Elementwise hyperbolic tangent.

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape as ``x``, values in ``[-1, 1]``.
    """
    return Tanh()(x)


# =============================================================================================
# powers and magnitudes
# =============================================================================================
class Sqrt(Function):
    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2 * _output_of(self))


def sqrt(x) -> Variable:
    """Elementwise non-negative square root (NaN below 0; the gradient at 0 is infinite).

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape as ``x``.
    """
    return Sqrt()(x)


class Square(Function):
    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * (2 * self.inputs[0])


def square(x) -> Variable:
    """Elementwise ``x * x`` (integers stay integers).

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.
    """
    return Square()(x)


class Abs(Function):
    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        x = self.inputs[0].data
        # sign(0) == 0: the gradient at the kink is the zero subgradient, as in PyTorch.
        return gy * _constant(get_array_module(x).sign(x))


def abs(x) -> Variable:
    """Elementwise absolute value.

    The gradient is ``sign(x)``, taken as 0 at ``x == 0``.

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.
    """
    return Abs()(x)


# =============================================================================================
# clip, maximum, minimum
# =============================================================================================
class Clip(Function):
    def __init__(self, x_min, x_max):
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        return get_array_module(x).clip(x, self.x_min, self.x_max)

    def backward(self, gy):
        x = self.inputs[0].data
        inside = None
        if self.x_min is not None:
            inside = x >= self.x_min
        if self.x_max is not None:
            below_max = x <= self.x_max
            inside = below_max if inside is None else inside & below_max
        return where(inside, gy, 0)


def clip(x, x_min, x_max) -> Variable:
    """Limit the values of ``x`` to ``[x_min, x_max]``, elementwise.

    The gradient is 1 where ``x_min <= x <= x_max`` (bounds included, as in PyTorch) and 0
    where the value was clipped.

    Parameters
    ----------
    x : Variable, array or number
        Input of any shape.
    x_min, x_max : number or None
        The bounds; one of them may be None for no bound on that side.  A Python number never
        changes the dtype of ``x`` (float32 stays float32).

    Returns
    -------
    Variable
        Same shape as ``x``.

    Raises
    ------
    TypeError
        If a bound is not a real number or None.
    ValueError
        If both bounds are None, or ``x_min > x_max``.
    """
    bounds = []
    for name, bound in (("x_min", x_min), ("x_max", x_max)):
        if bound is not None and not isinstance(bound, _number_types):
            raise TypeError(
                f"clip: {name} must be a real number or None, got {type(bound).__name__}"
            )
        # A NumPy scalar would promote float32 data to its own dtype; a Python number does not.
        bounds.append(None if bound is None else bound.item() if hasattr(bound, "item") else bound)
    x_min, x_max = bounds
    if x_min is None and x_max is None:
        raise ValueError("clip: at least one of x_min and x_max must be given")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise ValueError(f"clip: x_min ({x_min}) must not be greater than x_max ({x_max})")
    return Clip(x_min, x_max)(x)


class _Extremum(Function):
    """Shared backward of :class:`Maximum` and :class:`Minimum`: the gradient goes to the
    winning input, and is split in half between the two inputs where they are equal."""

    def _x0_wins(self, x0, x1):
        raise NotImplementedError

    def backward(self, gy):
        x0, x1 = self.inputs
        # A share of one half needs a floating gradient; integers get float64 shares.
        dtype = gy.dtype if gy.dtype.kind in "fc" else np.dtype(np.float64)
        wins = self._x0_wins(x0.data, x1.data).astype(dtype)
        share0 = wins + (x0.data == x1.data).astype(dtype) * 0.5
        gx0 = gy * _constant(share0)
        gx1 = gy * _constant(1 - share0)
        return reduce_to(gx0, x0), reduce_to(gx1, x1)


class Maximum(_Extremum):
    def forward(self, x0, x1):
        return get_array_module(x0, x1).maximum(x0, x1)

    def _x0_wins(self, x0, x1):
        return x0 > x1


class Minimum(_Extremum):
    def forward(self, x0, x1):
        return get_array_module(x0, x1).minimum(x0, x1)

    def _x0_wins(self, x0, x1):
        return x0 < x1


def _pair(op: str, x0, x1) -> tuple:
    """Both operands as Variables (numbers take the other's dtype), with broadcastable shapes."""
    like = x0 if isinstance(x0, Variable) else x1 if isinstance(x1, Variable) else None
    x0 = as_variable(x0, like=like)
    x1 = as_variable(x1, like=x0)
    _broadcast_shape(op, x0.shape, x1.shape)
    return x0, x1


def maximum(x0, x1) -> Variable:
    """Elementwise larger of ``x0`` and ``x1``, with NumPy broadcasting.

    The gradient goes to the larger input; where both are equal it is split in half between
    them (as in PyTorch), so the two shares always add up to the incoming gradient.

    Parameters
    ----------
    x0, x1 : Variable, array or number
        Inputs whose shapes broadcast together.  A Python number takes the other's dtype.

    Returns
    -------
    Variable
        The broadcast shape of ``x0`` and ``x1``.

    Raises
    ------
    ValueError
        If the shapes do not broadcast.
    """
    return Maximum()(*_pair("maximum", x0, x1))


def minimum(x0, x1) -> Variable:
    """Elementwise smaller of ``x0`` and ``x1``, with NumPy broadcasting.

    The gradient goes to the smaller input; where both are equal it is split in half between
    them (as in PyTorch).

    Parameters
    ----------
    x0, x1 : Variable, array or number
        Inputs whose shapes broadcast together.  A Python number takes the other's dtype.

    Returns
    -------
    Variable
        The broadcast shape of ``x0`` and ``x1``.

    Raises
    ------
    ValueError
        If the shapes do not broadcast.
    """
    return Minimum()(*_pair("minimum", x0, x1))


# =============================================================================================
# where
# =============================================================================================
class Where(Function):
    def __init__(self, condition):
        self.condition = condition

    def forward(self, x0, x1):
        return get_array_module(x0, x1).where(self.condition, x0, x1)

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = where(self.condition, gy, 0)
        gx1 = where(self.condition, 0, gy)
        return reduce_to(gx0, x0), reduce_to(gx1, x1)


def where(condition, x0, x1) -> Variable:
    """Choose ``x0`` where ``condition`` holds and ``x1`` elsewhere, with NumPy broadcasting.

    Parameters
    ----------
    condition : bool array, Variable or list
        Not differentiated.
    x0, x1 : Variable, array or number
        The values; a Python number takes the dtype of the other operand.

    Returns
    -------
    Variable
        The broadcast shape of ``condition``, ``x0`` and ``x1``.  The gradient of ``x0`` is the
        incoming gradient where ``condition`` holds and 0 elsewhere (the reverse for ``x1``).

    Raises
    ------
    ValueError
        If the three shapes do not broadcast together.
    """
    if isinstance(condition, Variable):
        condition = condition.data
    ref = x0 if isinstance(x0, Variable) else x1 if isinstance(x1, Variable) else None
    like = None if ref is None else ref.data
    x0 = x0 if isinstance(x0, Variable) else Variable(as_array(x0, like))
    x1 = x1 if isinstance(x1, Variable) else Variable(as_array(x1, x0.data))
    xp = get_array_module(x0.data)
    if xp is not get_array_module(condition) or not hasattr(condition, "shape"):
        condition = xp.asarray(condition)
    _broadcast_shape("where", condition.shape, x0.shape, x1.shape)
    return Where(condition)(x0, x1)
