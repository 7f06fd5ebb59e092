"""Activation functions: sigmoid, relu, leaky_relu, elu, gelu, softplus, softmax and log_softmax.

Each is one fused function whose backward is written with pygrad functions, so every derivative
can be differentiated again; the smooth ones are numerically stable for inputs of any size.
"""

from __future__ import annotations

from pygrad._config import Config
from pygrad.backends import fused_op, get_array_module
from pygrad.core import Function, Variable, as_variable
from pygrad.functions.elementwise import exp, where
from pygrad.functions.reduction import sum as _sum
from pygrad.functions.shape import normalize_axes

__all__ = [
    "sigmoid",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "softplus",
    "softmax",
    "log_softmax",
]


def float_input(x, op: str, name: str = "input") -> Variable:
    """``x`` as a Variable of floating-point data, or a TypeError naming ``op`` and ``name``."""
    x = as_variable(x)
    if x.dtype.kind != "f":
        raise TypeError(
            f"{op}: expected floating-point {name}, got dtype {x.dtype} of shape {x.shape}"
        )
    return x


class ScaleBy(Function):
    """Multiply by a constant array (a mask, slopes or a dropout mask) that gets no gradient.

    Backward is the same multiplication, so the derivative of any order is exact.
    """

    needs_inputs = False
    needs_outputs = False

    def __init__(self, factor):
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def backward(self, gy):
        return ScaleBy(self.factor)(gy)


# =============================================================================================
# sigmoid, softplus
# =============================================================================================
class Sigmoid(Function):
    needs_inputs = False
    needs_outputs = True

    def forward(self, x):
        # With e = exp(-|x|) <= 1: 1 / (1 + e) for x >= 0 and e / (1 + e) below, which never
        # overflows and keeps full relative precision for large negative x.
        xp = get_array_module(x)
        fused = fused_op(xp, "sigmoid_forward")
        if fused is not None:
            return fused(x)
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, r, e * r)

    def backward(self, gy):
        return SigmoidGrad()(self.outputs[0](), gy)


class SigmoidGrad(Function):
    """``gy * y * (1 - y)`` in one op: the backward of sigmoid, itself differentiable."""

    def forward(self, y, gy):
        fused = fused_op(get_array_module(y), "sigmoid_backward")
        if fused is not None:
            return fused(gy, y)
        return gy * y * (1 - y)

    def backward(self, ggx):
        y, gy = self.inputs
        # The products of the chain rule through (gy * y) * (1 - y), in the order the unfused
        # graph of that expression would take them.
        g_product = ggx * (1 - y)
        return g_product * gy - ggx * (gy * y), g_product * y


def sigmoid(x) -> Variable:
    """Logistic sigmoid ``1 / (1 + exp(-x))``, elementwise and stable for any ``x``.

    Parameters
    ----------
    x : Variable or array
        Floating-point input of any shape.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``, with values in ``[0, 1]``.
    """
    return Sigmoid()(float_input(x, "sigmoid"))


class Softplus(Function):
    def forward(self, x):
        # log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)); the exponent is never positive.
        xp = get_array_module(x)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy):
        return gy * sigmoid(self.inputs[0])


def softplus(x) -> Variable:
    """Softplus ``log(1 + exp(x))``, elementwise, computed without overflow.

    Parameters
    ----------
    x : Variable or array
        Floating-point input of any shape.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``; its derivative is ``sigmoid(x)``.
    """
    return Softplus()(float_input(x, "softplus"))


# =============================================================================================
# piecewise-linear units
# =============================================================================================
class ReLU(Function):
    needs_inputs = False
    needs_outputs = True

    def forward(self, x):
        return get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        # The output's sign gives the mask, so the input need not be kept for backward.
        return ReLUGrad(self.outputs[0]().data)(gy)


class ReLUGrad(Function):
    """``gy * (y > 0)`` for the output ``y`` of relu, in one op.

    Linear in ``gy``, so its backward is the same op: derivatives of any order are exact.
    """

    needs_inputs = False
    needs_outputs = False

    def __init__(self, y):
        self.y = y

    def forward(self, gy):
        fused = fused_op(get_array_module(gy), "relu_backward")
        if fused is not None:
            return fused(gy, self.y)
        return gy * (self.y > 0)

    def backward(self, ggx):
        return ReLUGrad(self.y)(ggx)


def relu(x) -> Variable:
    """Rectified linear unit ``max(x, 0)``, elementwise.

    Parameters
    ----------
    x : Variable or array
        Floating-point input of any shape.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.  The gradient at ``x == 0`` is taken as 0.
    """
    return ReLU()(float_input(x, "relu"))


class LeakyReLU(Function):
    def __init__(self, slope: float):
        self.slope = slope

    def forward(self, x):
        xp = get_array_module(x)
        fused = fused_op(xp, "leaky_relu_forward")
        if fused is not None:
            return fused(x, self.slope)
        return xp.where(x > 0, x, x * self.slope)

    def backward(self, gy):
        return LeakyReLUGrad(self.inputs[0].data, self.slope)(gy)


class LeakyReLUGrad(Function):
    """``gy * where(x > 0, 1, slope)`` in one op; linear in ``gy``, so its backward is itself."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, x, slope: float):
        self.x = x
        self.slope = slope

    def forward(self, gy):
        x = self.x
        xp = get_array_module(x)
        fused = fused_op(xp, "leaky_relu_backward")
        if fused is not None:
            return fused(gy, x, self.slope)
        return gy * xp.where(x > 0, 1, self.slope).astype(x.dtype, copy=False)

    def backward(self, ggx):
        return LeakyReLUGrad(self.x, self.slope)(ggx)


def leaky_relu(x, slope: float = 0.2) -> Variable:
    """Leaky rectified linear unit: ``x`` where ``x > 0`` and ``slope * x`` elsewhere.

    Parameters
    ----------
    x : Variable or array
        Floating-point input of any shape.
    slope : float
        Slope of the negative part.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.
    """
    return LeakyReLU(float(slope))(float_input(x, "leaky_relu"))


class ELU(Function):
    def __init__(self, alpha: float):
        self.alpha = alpha

    def forward(self, x):
        xp = get_array_module(x)
        fused = fused_op(xp, "elu_forward")
        if fused is not None:
            return fused(x, self.alpha)
        # expm1 keeps precision near 0; the minimum keeps exp from overflowing where unused.
        return xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0)) * self.alpha)

    def backward(self, gy):
        x = self.inputs[0]
        y = self.outputs[0]()
        if not Config.enable_backprop:
            # No graph of the gradient is wanted: one fused kernel where the backend has one.
            fused = fused_op(get_array_module(gy.data), "elu_backward")
            if fused is not None:
                return Variable(fused(gy.data, x.data, y.data, self.alpha))
        # For x <= 0 the derivative alpha * exp(x) equals y + alpha.
        return where(x.data > 0, gy, gy * (y + self.alpha))


def elu(x, alpha: float = 1.0) -> Variable:
    """Exponential linear unit: ``x`` where ``x > 0`` and ``alpha * (exp(x) - 1)`` elsewhere.

    Parameters
    ----------
    x : Variable or array
        Floating-point input of any shape.
    alpha : float
        Value the negative part saturates to (as ``-alpha``).

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.
    """
    return ELU(float(alpha))(float_input(x, "elu"))


# =============================================================================================
# gelu and the normal distribution function
# =============================================================================================
# W. J. Cody's rational Chebyshev approximations of erf and erfc (Math. Comp. 23, 1969), as in
# the netlib routine CALERF: relative error below 1e-15 in float64 on every range.
_ERF_A = (
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
)
_ERF_B = (
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
)
_ERFC_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_ERFC_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
_ERFC_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_ERFC_Q = (
    2.56852019228982242e00,
    1.87295284992346725e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_INV_SQRT_PI = 0.56418958354775628695
_INV_SQRT_2 = 0.70710678118654752440
_INV_SQRT_2PI = 0.39894228040143267794


def _rational(t, num_coeffs, den_coeffs, scale):
    """Cody's nested evaluation: ``num(t) / den(t)``, the numerator starting from ``scale``."""
    num = scale * num_coeffs[-1]
    den = scale
    for a, b in zip(num_coeffs[:-2], den_coeffs[:-1]):
        num = (num + a) * t
        den = (den + b) * t
    return (num + num_coeffs[-2]) / (den + den_coeffs[-1])


def _erf_small(z):
    """erf(z) for |z| <= 0.5."""
    zz = z * z
    return z * _rational(zz, _ERF_A, _ERF_B, zz)


def _exp_minus_square(y, xp):
    """exp(-y * y), split so that the rounding of y * y does not grow with y."""
    head = xp.floor(y * 16) * 0.0625
    return xp.exp(-head * head) * xp.exp(-(y - head) * (y + head))


def _erfc_positive(y, xp):
    """erfc(y) for y >= 0.5, to full relative precision far into the tail."""
    # Each range is evaluated on its own clipped copy of y so that no branch divides by
    # zero or overflows where the other one is chosen.
    mid = xp.minimum(y, 4.0)
    ratio_mid = _rational(mid, _ERFC_C, _ERFC_D, mid)
    large = xp.maximum(y, 4.0)
    inv = 1 / (large * large)
    ratio_large = (_INV_SQRT_PI - inv * _rational(inv, _ERFC_P, _ERFC_Q, inv)) / large
    return xp.where(y <= 4.0, ratio_mid, ratio_large) * _exp_minus_square(y, xp)


def normal_cdf_array(x):
    """The standard normal distribution function on an array, accurate to float64 precision.

    Built only from NumPy-style calls (NumPy has no ``erf``), so it runs on every backend;
    the tails keep their relative precision (no ``1 - erf`` cancellation).
    """
    xp = get_array_module(x)
    z = x * _INV_SQRT_2
    magnitude = xp.abs(z)
    center = 0.5 + 0.5 * _erf_small(xp.clip(z, -0.5, 0.5))
    # erfc(30) underflows to 0 even in float64; clipping there keeps inf and huge inputs clean.
    half_tail = 0.5 * _erfc_positive(xp.clip(magnitude, 0.5, 30.0), xp)
    tail = xp.where(z > 0, 1 - half_tail, half_tail)
    return xp.where(magnitude < 0.5, center, tail).astype(x.dtype, copy=False)


class NormalCDF(Function):
    """Standard normal distribution function; ``known`` reuses a value computed already."""

    def __init__(self, known=None):
        self.known = known

    def forward(self, x):
        return normal_cdf_array(x) if self.known is None else self.known

    def backward(self, gy):
        x = self.inputs[0]
        return gy * (exp(x * x * -0.5) * _INV_SQRT_2PI)


class GELU(Function):
    def forward(self, x):
        fused = fused_op(get_array_module(x), "gelu_forward")
        if fused is not None:
            y, self.cdf = fused(x)
            return y
        self.cdf = normal_cdf_array(x)
        return x * self.cdf

    def backward(self, gy):
        x = self.inputs[0]
        if not Config.enable_backprop:
            fused = fused_op(get_array_module(gy.data), "gelu_backward")
            if fused is not None:
                return Variable(fused(gy.data, x.data, self.cdf))
        cdf = NormalCDF(self.cdf)(x)
        density = exp(x * x * -0.5) * _INV_SQRT_2PI
        return gy * (cdf + x * density)


def gelu(x) -> Variable:
    """Gaussian error linear unit, exact form ``x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2)))``.

    ``Phi`` is the standard normal distribution function, evaluated to float64 precision
    (``torch.nn.functional.gelu`` with its default ``approximate="none"``).

    Parameters
    ----------
    x : Variable or array
        Floating-point input of any shape.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.
    """
    return GELU()(float_input(x, "gelu"))


# =============================================================================================
# softmax, log_softmax
# =============================================================================================
def _last_axis_op(xp, axes: tuple, ndim: int, name: str):
    """The fused row kernel ``name`` of ``xp`` when ``axes`` is the last axis alone, or None."""
    return fused_op(xp, f"{name}_rows") if axes == (ndim - 1,) else None


class Softmax(Function):
    """Softmax over ``axes``; ``known`` reuses probabilities computed already (by a loss)."""

    def __init__(self, axes: tuple, known=None):
        self.axes = axes
        self.known = known

    def forward(self, x):
        if self.known is not None:
            return self.known
        xp = get_array_module(x)
        fused = _last_axis_op(xp, self.axes, x.ndim, "softmax")
        if fused is not None:
            return fused(x)
        y = xp.exp(x - x.max(axis=self.axes, keepdims=True))
        y /= y.sum(axis=self.axes, keepdims=True)
        return y

    def backward(self, gy):
        y = self.outputs[0]()
        if not Config.enable_backprop:
            fused = _last_axis_op(get_array_module(y.data), self.axes, y.ndim, "softmax_backward")
            if fused is not None:
                return Variable(fused(gy.data, y.data))
        gx = y * gy
        return gx - y * _sum(gx, self.axes, keepdims=True)


class LogSoftmax(Function):
    def __init__(self, axes: tuple):
        self.axes = axes

    def forward(self, x):
        xp = get_array_module(x)
        fused = _last_axis_op(xp, self.axes, x.ndim, "log_softmax")
        if fused is not None:
            return fused(x)
        shifted = x - x.max(axis=self.axes, keepdims=True)
        return shifted - xp.log(xp.exp(shifted).sum(axis=self.axes, keepdims=True))

    def backward(self, gy):
        y = self.outputs[0]()
        if not Config.enable_backprop:
            xp = get_array_module(y.data)
            fused = _last_axis_op(xp, self.axes, y.ndim, "log_softmax_backward")
            if fused is not None:
                return Variable(fused(gy.data, y.data))
        return gy - exp(y) * _sum(gy, self.axes, keepdims=True)


def _softmax_axes(x: Variable, axis, op: str) -> tuple:
    if x.ndim == 0:
        raise ValueError(f"{op}: expected an input with at least one axis, got a 0-d array")
    return normalize_axes(axis, x.ndim, op)


def softmax(x, axis=-1) -> Variable:
    """Softmax ``exp(x) / sum(exp(x))`` along ``axis``, stable for logits of any size.

    Parameters
    ----------
    x : Variable or array
        Floating-point logits, e.g. of shape ``(N, C)``.
    axis : int or tuple of int
        The axis (or axes) that sum to one.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.
    """
    x = float_input(x, "softmax")
    return Softmax(_softmax_axes(x, axis, "softmax"))(x)


def log_softmax(x, axis=-1) -> Variable:
    """Logarithm of :func:`softmax` along ``axis``: ``x - logsumexp(x)``, stable for any ``x``.

    Parameters
    ----------
    x : Variable or array
        Floating-point logits, e.g. of shape ``(N, C)``.
    axis : int or tuple of int
        The axis (or axes) over which the probabilities sum to one.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``; finite even for logits of +-1000.
    """
    x = float_input(x, "log_softmax")
    return LogSoftmax(_softmax_axes(x, axis, "log_softmax"))(x)
