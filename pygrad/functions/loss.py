"""Losses and metrics: mean squared error, softmax / sigmoid / binary cross entropy, accuracy.

Each loss is a scalar Variable averaged as documented; the cross entropies work on logits or
probabilities of any size without overflow, and their backward passes are differentiable again.
"""

from __future__ import annotations

import math

import numpy as np

from pygrad import backends
from pygrad._config import Config
from pygrad.backends import fused_op, get_array_module
from pygrad.core import Function, Variable, as_variable
from pygrad.functions.activation import ScaleBy, Softmax, float_input, sigmoid
from pygrad.functions.elementwise import maximum, where
from pygrad.functions.shape import broadcast_to, reduce_to

__all__ = [
    "mean_squared_error",
    "softmax_cross_entropy",
    "sigmoid_cross_entropy",
    "binary_cross_entropy",
    "accuracy",
]


def _target_like(t, x: Variable, op: str) -> Variable:
    """The target ``t`` as a Variable on the device of ``x``, of the same shape.

    A target that is not a floating-point Variable takes the dtype of ``x``, so that an integer
    or float64 label array does not change the dtype of the loss.
    """
    if isinstance(t, Variable) and t.dtype.kind == "f":
        if t.device != x.device:
            t = t.to(x.device)
    else:
        data = _as_array_on(t, x, op)
        if data.dtype.kind not in "biuf":
            raise TypeError(f"{op}: expected a numeric target, got dtype {data.dtype}")
        t = Variable(data.astype(x.dtype, copy=False))
    if t.shape != x.shape:
        raise ValueError(
            f"{op}: the target must have the shape of the input, got input {x.shape} and "
            f"target {t.shape}"
        )
    return t


def _as_array_on(t, x: Variable, op: str):
    """``t`` (a Variable, array, list or number) as an array on the device of ``x``."""
    if isinstance(t, Variable):
        t = t.data
    elif not (isinstance(t, np.ndarray) or getattr(t, "xp", None) is not None):
        try:
            t = np.asarray(t)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{op}: cannot read the target {type(t).__name__}: {error}") from None
    if backends.device_of(t) != x.device:
        t = backends.to_device(t, x.device)
    return t


def _host_float(value) -> float:
    """A 0-d array of any device as a Python float."""
    return float(backends.to_host(value))


# =============================================================================================
# mean squared error
# =============================================================================================
class MeanSquaredError(Function):
    def forward(self, x0, x1):
        fused = fused_op(get_array_module(x0), "mean_squared_error")
        if fused is not None:
            return fused(x0, x1)
        diff = x0 - x1
        return (diff * diff).sum() / diff.size

    def backward(self, gy):
        x0, x1 = self.inputs
        if not Config.enable_backprop:
            # No graph of the gradient is wanted: one fused kernel where the backend has one.
            fused = fused_op(get_array_module(x0.data), "mean_squared_error_backward")
            if fused is not None:
                gx0, gx1 = fused(x0.data, x1.data, gy.data)
                return reduce_to(Variable(gx0), x0), reduce_to(Variable(gx1), x1)
        gx0 = (x0 - x1) * (gy * (2.0 / x0.size))
        return reduce_to(gx0, x0), reduce_to(-gx0, x1)


def mean_squared_error(x0, x1) -> Variable:
    """Mean over every element of the squared difference ``(x0 - x1) ** 2``.

    Parameters
    ----------
    x0 : Variable or array
        Floating-point prediction of any shape.
    x1 : Variable, array or list
        Target of the same shape (no broadcasting, so that ``(N, 1)`` against ``(N,)`` is
        caught instead of silently giving an ``(N, N)`` difference).  A target that is not a
        Variable takes the dtype of ``x0``.

    Returns
    -------
    Variable
        A 0-d Variable of the inputs' dtype.

    Raises
    ------
    ValueError
        If the shapes differ or the inputs are empty.
    """
    op = "mean_squared_error"
    x0 = float_input(x0, op, "x0")
    if isinstance(x1, Variable):
        x1 = float_input(x1, op, "x1")
    else:
        # Plain targets (often float64 or integer arrays) take the dtype of x0.
        x1 = Variable(_as_array_on(x1, x0, op).astype(x0.dtype, copy=False))
    if x0.shape != x1.shape:
        raise ValueError(
            f"mean_squared_error: expected x0 and x1 of the same shape, got {x0.shape} and "
            f"{x1.shape}"
        )
    if x0.size == 0:
        raise ValueError(f"mean_squared_error: the mean of empty inputs {x0.shape} is undefined")
    return MeanSquaredError()(x0, x1)


# =============================================================================================
# softmax cross entropy
# =============================================================================================
class SoftmaxCrossEntropy(Function):
    """``labels`` must lie in ``[0, C)``; a fused kernel checks that itself and reports
    ``ValueError(label_error)`` at its device's next host read."""

    def __init__(self, labels, label_error: str):
        self.labels = labels
        self.label_error = label_error

    def forward(self, x):
        xp = get_array_module(x)
        fused = fused_op(xp, "softmax_cross_entropy")
        if fused is not None:
            loss, self.probs = fused(x, self.labels, self.label_error)
            return loss
        n = x.shape[0]
        shifted = x - x.max(axis=1, keepdims=True)
        exps = xp.exp(shifted)
        sums = exps.sum(axis=1, keepdims=True)
        # Kept for backward: the softmax costs one division more here.
        self.probs = exps / sums
        log_z = xp.log(sums).reshape(n)
        picked = shifted[xp.arange(n), self.labels]
        return (log_z - picked).sum() / n

    def backward(self, gy):
        x = self.inputs[0]
        n, classes = x.shape
        xp = get_array_module(x.data)
        if not Config.enable_backprop:
            # No graph of the gradient is wanted: one fused kernel where the backend has one.
            fused = fused_op(xp, "softmax_cross_entropy_backward")
            if fused is not None:
                return Variable(fused(self.probs, self.labels, gy.data))
        one_hot = (self.labels[:, None] == xp.arange(classes)[None, :]).astype(x.dtype)
        probs = Softmax((1,), self.probs)(x)
        return (probs - Variable(one_hot)) * (gy * (1.0 / n))


def softmax_cross_entropy(x, t) -> Variable:
    """Cross entropy between ``softmax(x)`` and integer class labels, averaged over the batch.

    ``-mean(log_softmax(x)[i, t[i]])``, computed with the log-sum-exp trick so that logits of
    +-1000 give a finite loss and finite gradients.  The gradient with respect to ``x`` is
    ``(softmax(x) - one_hot(t)) / N``, itself differentiable.

    Parameters
    ----------
    x : Variable or array
        Floating-point logits of shape ``(N, C)``.
    t : Variable, array or list of int
        Class labels of shape ``(N,)`` with values in ``[0, C)``.

    Returns
    -------
    Variable
        A 0-d Variable of the dtype of ``x``.

    Raises
    ------
    TypeError
        If ``x`` is not floating-point or ``t`` is not integer.
    ValueError
        If the shapes do not match, the batch is empty, or a label is out of range.
        On an OpenCL device the loss kernel checks the labels itself and the error is raised
        at the device's next host read (``.get()``, ``item()``, ``synchronize()``), so that
        the step never waits for the device.
    """
    op = "softmax_cross_entropy"
    x = float_input(x, op, "logits x")
    given = t.data if isinstance(t, Variable) else t
    t = _as_array_on(t, x, op)
    if x.ndim != 2:
        raise ValueError(f"{op}: expected logits x of shape (N, C), got shape {x.shape}")
    n, classes = x.shape
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer labels t, got dtype {t.dtype}")
    if t.shape != (n,):
        raise ValueError(
            f"{op}: expected labels t of shape (N,) = ({n},) for logits {x.shape}, "
            f"got shape {t.shape}"
        )
    if n == 0 or classes == 0:
        raise ValueError(f"{op}: expected a non-empty batch and classes, got logits {x.shape}")
    label_range = f"{op}: labels must lie in [0, {classes}) for {classes} classes"
    # Labels given on the host are checked there, at no wait for a device; device labels are
    # checked by the fused kernel as it runs, where a backend has one.
    given_on_host = backends.device_of(given) == "cpu"
    if given_on_host or fused_op(get_array_module(t), "softmax_cross_entropy") is None:
        labels = np.asarray(given) if given_on_host else t
        low, high = _host_float(labels.min()), _host_float(labels.max())
        if low < 0 or high >= classes:
            raise ValueError(f"{label_range}, found {int(low if low < 0 else high)}")
    return SoftmaxCrossEntropy(t, f"{label_range}, found one outside")(x)


# =============================================================================================
# sigmoid and binary cross entropy
# =============================================================================================
class SigmoidCrossEntropy(Function):
    def forward(self, x, t):
        xp = get_array_module(x)
        fused = fused_op(xp, "sigmoid_cross_entropy")
        if fused is not None:
            return fused(x, t)
        # softplus(x) - t * x, with softplus written so that exp never overflows.
        losses = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        return losses.sum() / x.size

    def backward(self, gy):
        x, t = self.inputs
        if not Config.enable_backprop:
            fused = fused_op(get_array_module(x.data), "sigmoid_cross_entropy_backward")
            if fused is not None:
                gx, gt = fused(x.data, t.data, gy.data)
                return Variable(gx), Variable(gt)
        scale = gy * (1.0 / x.size)
        return (sigmoid(x) - t) * scale, x * -scale


def sigmoid_cross_entropy(x, t) -> Variable:
    """Binary cross entropy between ``sigmoid(x)`` and targets, averaged over every element.

    ``mean(softplus(x) - t * x)``, which equals
    ``-mean(t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x)))`` but stays finite and exact
    for logits of any size.

    Parameters
    ----------
    x : Variable or array
        Floating-point logits of any shape.
    t : Variable, array or list
        Targets of the shape of ``x``: labels in ``{0, 1}`` or probabilities in ``[0, 1]``.
        A floating-point Variable target also receives a gradient (``-x / size``).

    Returns
    -------
    Variable
        A 0-d Variable of the dtype of ``x``.

    Raises
    ------
    ValueError
        If the shapes differ, the input is empty or a target lies outside ``[0, 1]``.
        On an OpenCL device the values are checked by a kernel and the error is raised
        at the device's next host read (``.get()``, ``item()``, ``synchronize()``), so
        that the step never waits for the device.
    """
    op = "sigmoid_cross_entropy"
    x = float_input(x, op, "logits x")
    t = _target_like(t, x, op)
    _check_unit_interval(t, op, "targets t")
    if x.size == 0:
        raise ValueError(f"{op}: the mean over an empty input {x.shape} is undefined")
    return SigmoidCrossEntropy()(x, t)


def _check_unit_interval(v: Variable, op: str, name: str) -> None:
    check = fused_op(get_array_module(v.data), "check_unit_interval")
    if check is not None:
        # Reported at the device's next host read instead of waiting for the device here.
        check(v.data, f"{op}: {name} must lie in [0, 1], found a value outside")
        return
    if v.size and (_host_float(v.data.min()) < 0 or _host_float(v.data.max()) > 1):
        raise ValueError(
            f"{op}: {name} must lie in [0, 1], found values in "
            f"[{_host_float(v.data.min())}, {_host_float(v.data.max())}]"
        )


# Each log is clamped at -100, as PyTorch does: exact for ordinary probabilities, finite at 0
# and 1.  exp(-100) is subnormal in float32, so the clamp is applied to the result.
_LOG_MIN = -100.0
_LOG_MIN_ARGUMENT = math.exp(_LOG_MIN)


class ClampedLog(Function):
    def forward(self, x):
        xp = get_array_module(x)
        self.kept = x > _LOG_MIN_ARGUMENT
        return xp.where(self.kept, xp.log(xp.where(self.kept, x, 1)), _LOG_MIN)

    def backward(self, gy):
        x = self.inputs[0]
        # Where the log was clamped it is constant; elsewhere its slope is 1 / x.
        return ScaleBy(self.kept)(gy / where(self.kept, x, 1))


# PyTorch's floor under p * (1 - p) in the gradient of binary cross entropy: a C float
# holding 1e-12, so float64 gradients at p = 0 or 1 agree to the last bit too.
_BCE_EPSILON = float(np.float32(1e-12))


class BinaryCrossEntropy(Function):
    """``-mean(t * log(p) + (1 - t) * log(1 - p))`` with PyTorch's clamps (see
    :func:`binary_cross_entropy`)."""

    def forward(self, p, t):
        xp = get_array_module(p)
        log_p = ClampedLog().forward(p)
        log_q = ClampedLog().forward(1 - p)
        total = (t * log_p + (1 - t) * log_q).sum()
        return xp.asarray(total * (-1.0 / p.size), dtype=p.dtype)

    def backward(self, gy):
        p, t = self.inputs
        scale = broadcast_to(gy * (1.0 / p.size), p.shape)
        # PyTorch's formula rather than the derivative of the clamped logs: where p reaches 0
        # or 1 the loss is a flat 100 per element, but the gradient still pushes p away
        # (up to 1e12 times the residual), so a saturated prediction keeps learning.
        gp = scale * (p - t) / maximum(p * (1 - p), _BCE_EPSILON)
        gt = None
        if t.requires_grad:
            gt = scale * (ClampedLog()(1 - p) - ClampedLog()(p))
        return gp, gt


def binary_cross_entropy(p, t) -> Variable:
    """Binary cross entropy between probabilities ``p`` and targets, averaged over every element.

    ``-mean(t * log(p) + (1 - t) * log(1 - p))``, where each log is clamped at -100, and the
    gradient is ``(p - t) / max(p * (1 - p), 1e-12) / size``, both exactly as in PyTorch:
    ``p`` of exactly 0 or 1 gives a finite loss (100 per element) and a large gradient toward
    the target rather than none.  A target's gradient is that of the clamped logs (finite;
    PyTorch's is infinite where ``p`` is 0 or 1).  Prefer :func:`sigmoid_cross_entropy` on
    logits.

    Parameters
    ----------
    p : Variable or array
        Floating-point probabilities in ``[0, 1]``, of any shape.
    t : Variable, array or list
        Targets of the shape of ``p``, in ``[0, 1]``.  A floating-point Variable target also
        receives a gradient.

    Returns
    -------
    Variable
        A 0-d Variable of the dtype of ``p``.

    Raises
    ------
    ValueError
        If the shapes differ, the input is empty, or ``p`` or ``t`` leave ``[0, 1]``.
        On an OpenCL device the values are checked by a kernel and the error is raised
        at the device's next host read (``.get()``, ``item()``, ``synchronize()``), so
        that the step never waits for the device.
    """
    op = "binary_cross_entropy"
    p = float_input(p, op, "probabilities p")
    t = _target_like(t, p, op)
    _check_unit_interval(p, op, "probabilities p")
    _check_unit_interval(t, op, "targets t")
    if p.size == 0:
        raise ValueError(f"{op}: the mean over an empty input {p.shape} is undefined")
    return BinaryCrossEntropy()(p, t)


# =============================================================================================
# accuracy
# =============================================================================================
def accuracy(y, t) -> float:
    """Fraction of samples whose highest score is at the true label (no gradient).

    Parameters
    ----------
    y : Variable or array
        Scores (logits or probabilities) of shape ``(N, C)``, or ``(N, C, ...)`` with the
        classes on axis 1.
    t : Variable, array or list of int
        Labels of shape ``(N,)`` (or ``(N, ...)``).

    Returns
    -------
    float
        The accuracy, in ``[0, 1]``.

    Raises
    ------
    ValueError
        If the shapes do not match or the batch is empty.
    """
    y = as_variable(y)
    t = _as_array_on(t, y, "accuracy")
    if y.ndim < 2 or t.shape != y.shape[:1] + y.shape[2:]:
        raise ValueError(
            f"accuracy: expected scores y of shape (N, C, ...) and labels t of shape (N, ...), "
            f"got y {y.shape} and t {t.shape}"
        )
    if t.dtype.kind not in "iu":
        raise TypeError(f"accuracy: expected integer labels t, got dtype {t.dtype}")
    if t.size == 0:
        raise ValueError(f"accuracy: the accuracy of an empty batch {y.shape} is undefined")
    predicted = y.data.argmax(axis=1)
    return _host_float((predicted == t).mean())
