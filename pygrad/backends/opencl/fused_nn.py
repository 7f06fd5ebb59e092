"""Fused kernels for the hot composites of a training step: activations, softmax, softmax
cross entropy, batch and layer normalisation, dropout and range checks of labels and targets.

Each replaces a chain of elementwise kernels and reductions (and, for the checks, a blocking
read of a minimum and a maximum) with one to three launches.  The kernels of one float dtype
live in one program (see :mod:`.fused_nn_source`), built the first time any of them runs.
Inputs the kernels do not expect (other dtypes, mismatched shapes) are handled with the array
module's ordinary calls, so every registered function is exact for any input.  A bad label or
target sets the device's error flag (see ``Device.defer_error``): the error is raised at the
next host read instead of making the host wait here.
"""

from __future__ import annotations

import functools

import numpy as np

from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.array import empty_array
from pygrad.backends.opencl.fused import register
from pygrad.backends.opencl.fused_nn_source import (
    LABEL_TYPES,
    floats,
    group_launch,
    nn_kernel,
    rows_launch,
)
from pygrad.backends.opencl.kernels import _launch, _Meta, ctype, launch_chunks

__all__ = [
    "relu_backward",
    "leaky_relu_backward",
    "sigmoid_backward",
    "tanh_backward",
    "elu_backward",
    "activation_forward",
    "gelu_forward",
    "gelu_backward",
    "softmax_rows",
    "softmax_cross_entropy",
    "softmax_cross_entropy_backward",
    "mean_squared_error",
    "mean_squared_error_backward",
    "sigmoid_cross_entropy",
    "sigmoid_cross_entropy_backward",
    "check_int_range",
    "check_unit_interval",
    "batch_norm_forward",
    "batch_norm_backward",
    "layer_norm_forward",
    "layer_norm_backward",
    "dropout",
]


def _contiguous(a):
    return a if a.is_c_contiguous else a.copy()


# --- activations ------------------------------------------------------------------------------
def _activation_backward(name: str, gy, b, c=None, parameter: float = 0.0):
    gy, b = _contiguous(gy), _contiguous(b)
    c = b if c is None else _contiguous(c)
    device = b._device
    gx = empty_array(b.shape, b.dtype, device)
    if gx.size:
        values = _Meta.pack([gx.size, gy.offset, b.offset, c.offset])
        args = [gx.buffer, gy.buffer, b.buffer, c.buffer, floats(b.dtype, parameter), values]
        launch_chunks(nn_kernel(device, b.dtype, name), device, gx.size, args)
    return gx


def _same_layout(gy, *arrays) -> bool:
    return all(gy.dtype == a.dtype and gy.shape == a.shape for a in arrays)


def activation_forward(name: str, x, parameter: float = 0.0):
    """``name`` (``"sigmoid"``, ``"leaky_relu"`` or ``"elu"``) of ``x`` in one kernel;
    ``parameter`` is the slope of leaky_relu or the alpha of elu."""
    device = x._device
    x = _contiguous(x)
    y = empty_array(x.shape, x.dtype, device)
    if x.size:
        values = _Meta.pack([x.size, x.offset, 0, 0])
        args = [y.buffer, x.buffer, floats(x.dtype, parameter), values]
        launch_chunks(nn_kernel(device, x.dtype, f"{name}_forward"), device, x.size, args)
    return y


for _name in ("sigmoid", "leaky_relu", "elu"):
    register(f"{_name}_forward")(functools.partial(activation_forward, _name))


@register("relu_backward")
def relu_backward(gy, y):
    """``gy * (y > 0)``, the gradient of ``relu`` given its output, in one kernel."""
    if not _same_layout(gy, y):
        return gy * (y > 0)
    return _activation_backward("relu_backward", gy, y)


@register("leaky_relu_backward")
def leaky_relu_backward(gy, x, slope: float):
    """``gy * where(x > 0, 1, slope)``, the gradient of ``leaky_relu``, in one kernel."""
    if not _same_layout(gy, x):
        return gy * x.xp.where(x > 0, 1, slope).astype(x.dtype, copy=False)
    return _activation_backward("leaky_relu_backward", gy, x, parameter=slope)


@register("sigmoid_backward")
def sigmoid_backward(gy, y):
    """``gy * y * (1 - y)``, the gradient of ``sigmoid`` given its output, in one kernel."""
    if not _same_layout(gy, y):
        return gy * y * (1 - y)
    return _activation_backward("sigmoid_backward", gy, y)


@register("tanh_backward")
def tanh_backward(gy, y):
    """``gy * (1 - y * y)``, the gradient of ``tanh`` given its output, in one kernel."""
    if not _same_layout(gy, y):
        return gy * (1 - y * y)
    return _activation_backward("tanh_backward", gy, y)


@register("elu_backward")
def elu_backward(gy, x, y, alpha: float):
    """``where(x > 0, gy, gy * (y + alpha))``, the gradient of ``elu``, in one kernel."""
    if not _same_layout(gy, x, y):
        return x.xp.where(x > 0, gy, gy * (y + alpha))
    return _activation_backward("elu_backward", gy, x, y, alpha)


_INV_SQRT_2 = 0.70710678118654752440
_INV_SQRT_2PI = 0.39894228040143267794


@register("gelu_forward")
def gelu_forward(x):
    """``x * Phi(x)`` and ``Phi(x)`` (the standard normal distribution function) in one
    kernel, with Phi from the device's ``erfc``."""
    device = x._device
    x = _contiguous(x)
    y = empty_array(x.shape, x.dtype, device)
    cdf = empty_array(x.shape, x.dtype, device)
    if x.size:
        values = _Meta.pack([x.size, x.offset, 0, 0])
        args = [y.buffer, cdf.buffer, x.buffer, floats(x.dtype, _INV_SQRT_2), values]
        launch_chunks(nn_kernel(device, x.dtype, "gelu_forward"), device, x.size, args)
    return y, cdf


@register("gelu_backward")
def gelu_backward(gy, x, cdf):
    """``gy * (Phi(x) + x * phi(x))``, the gradient of ``gelu`` given ``Phi(x)``, in one
    kernel."""
    if not _same_layout(gy, x, cdf):
        density = x.xp.exp(x * x * -0.5) * _INV_SQRT_2PI
        return gy * (cdf + x * density)
    return _activation_backward("gelu_backward", gy, x, cdf, _INV_SQRT_2PI)


# --- softmax and log-softmax -----------------------------------------------------------------
def softmax_rows(name: str, a, b=None):
    """Kernel ``name`` of the softmax family over the last axis: one work item per row.

    ``softmax``/``log_softmax`` take the input ``a``; ``softmax_backward`` and
    ``log_softmax_backward`` take the output's gradient ``a`` and the output ``b``.
    """
    device = a._device
    if b is not None and not _same_layout(a, b):
        if name == "softmax_backward":
            gx = b * a
            return gx - b * gx.sum(axis=-1, keepdims=True)
        return a - a.xp.exp(b) * a.sum(axis=-1, keepdims=True)
    a = _contiguous(a)
    b = a if b is None else _contiguous(b)
    out = empty_array(a.shape, a.dtype, device)
    classes = a.shape[-1] if a.ndim else 1
    if a.size:
        rows = a.size // classes
        values = _Meta.pack([rows, classes, a.offset, b.offset])
        args = [out.buffer, a.buffer, b.buffer, values]
        _launch(nn_kernel(device, a.dtype, f"{name}_rows"), device, rows, args)
    return out


for _name in ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward"):
    register(f"{_name}_rows")(functools.partial(softmax_rows, _name))


# --- softmax cross entropy --------------------------------------------------------------------
def _labels(labels):
    if ctype(labels.dtype) not in LABEL_TYPES:
        labels = labels.astype(np.int64)
    return _contiguous(labels)


@register("softmax_cross_entropy")
def softmax_cross_entropy(x, labels, error: str):
    """Mean cross entropy of the rows of ``x`` (N, C) against integer ``labels`` (N,).

    Returns the 0-d loss and the softmax of ``x`` (kept for backward), from two launches: one
    work item per row (maximum, log-sum-exp, the label's term and the label's range check),
    then the batch mean.  A label outside ``[0, C)`` raises ``ValueError(error)`` at the next
    host read of the device.
    """
    device = x._device
    n, classes = x.shape
    if x._strides[1] != 1:
        x = x.copy()
    labels = _labels(labels)
    probs = empty_array((n, classes), x.dtype, device)
    losses = empty_array((n,), x.dtype, device)
    loss = empty_array((), x.dtype, device)
    code = device.defer_error(ValueError, error)
    values = [n, classes, x.offset, x._strides[0], labels.offset, code]
    rows = nn_kernel(device, x.dtype, f"sce_rows_{ctype(labels.dtype)}")
    args = [probs.buffer, losses.buffer, x.buffer, labels.buffer, device.error_flag()]
    _launch(rows, device, n, args + [_Meta.pack(values)])
    total = nn_kernel(device, x.dtype, "scaled_total")
    args = [loss.buffer, losses.buffer, floats(x.dtype, 1.0 / n), _Meta.pack([n])]
    group_launch(total, device, 1, args)
    return loss, probs


@register("softmax_cross_entropy_backward")
def softmax_cross_entropy_backward(probs, labels, gy):
    """``(probs - one_hot(labels)) * (gy / N)`` in one kernel (``gy`` a 0-d device array)."""
    n, classes = probs.shape
    if getattr(gy, "xp", None) is None or gy.dtype != probs.dtype:
        xp = probs.xp
        one_hot = (labels[:, None] == xp.arange(classes)[None, :]).astype(probs.dtype)
        return (probs - one_hot) * (xp.asarray(gy, device=probs.device) * (1.0 / n))
    device = probs._device
    labels = _labels(labels)
    gx = empty_array(probs.shape, probs.dtype, device)
    kernel = nn_kernel(device, probs.dtype, f"sce_backward_{ctype(labels.dtype)}")
    values = _Meta.pack([gx.size, classes, labels.offset, gy.offset])
    args = [gx.buffer, probs.buffer, labels.buffer, gy.buffer, floats(probs.dtype, 1.0 / n)]
    _launch(kernel, device, gx.size, args + [values])
    return gx


# --- mean squared error and sigmoid cross entropy --------------------------------------------
_PARTIAL_SIZE = 1 << 14  # elements per work group of the partial sums, up to GROUP groups


def _mean_loss(name: str, a, b):
    """The mean over every element of loss term ``name`` of ``a`` and ``b`` (same shape and
    dtype): partial sums in up to GROUP work groups, then their scaled total."""
    device = a._device
    a, b = _contiguous(a), _contiguous(b)
    n = a.size
    groups = max(1, min(kernels.GROUP, -(-n // _PARTIAL_SIZE)))
    chunk = -(-n // groups)
    partials = empty_array((groups,), a.dtype, device)
    values = _Meta.pack([n, a.offset, b.offset, chunk])
    args = [partials.buffer, a.buffer, b.buffer, values]
    group_launch(nn_kernel(device, a.dtype, f"{name}_partials"), device, groups, args)
    loss = empty_array((), a.dtype, device)
    args = [loss.buffer, partials.buffer, floats(a.dtype, 1.0 / n), _Meta.pack([groups])]
    group_launch(nn_kernel(device, a.dtype, "scaled_total"), device, 1, args)
    return loss


def _mean_loss_backward(name: str, a, b, gy, scale: float):
    device = a._device
    a, b = _contiguous(a), _contiguous(b)
    ga = empty_array(a.shape, a.dtype, device)
    gb = empty_array(a.shape, a.dtype, device)
    values = _Meta.pack([a.size, a.offset, b.offset, gy.offset])
    args = [ga.buffer, gb.buffer, a.buffer, b.buffer, gy.buffer, floats(a.dtype, scale), values]
    _launch(nn_kernel(device, a.dtype, f"{name}_backward"), device, a.size, args)
    return ga, gb


def _fits(gy, a, b) -> bool:
    """Whether ``a``, ``b`` and the 0-d device gradient ``gy`` suit the loss kernels."""
    return (
        a.size > 0
        and a.dtype == b.dtype
        and a.shape == b.shape
        and (gy is None or (getattr(gy, "xp", None) is not None and gy.dtype == a.dtype))
    )


@register("mean_squared_error")
def mean_squared_error(x0, x1):
    """``sum((x0 - x1) ** 2) / size`` in two launches."""
    if not _fits(None, x0, x1):
        diff = x0 - x1
        return (diff * diff).sum() / diff.size
    return _mean_loss("squared_error", x0, x1)


@register("mean_squared_error_backward")
def mean_squared_error_backward(x0, x1, gy):
    """``(x0 - x1) * (gy * 2 / size)`` and its negation, from one kernel."""
    if not _fits(gy, x0, x1):
        gx0 = (x0 - x1) * (gy * (2.0 / x0.size))
        return gx0, -gx0
    return _mean_loss_backward("squared_error", x0, x1, gy, 2.0 / x0.size)


@register("sigmoid_cross_entropy")
def sigmoid_cross_entropy(x, t):
    """``mean(softplus(x) - t * x)`` in two launches."""
    if not _fits(None, x, t):
        xp = x.xp
        losses = xp.maximum(x, 0) - x * t + xp.log1p(xp.exp(-xp.abs(x)))
        return losses.sum() / x.size
    return _mean_loss("sigmoid_cross_entropy", x, t)


@register("sigmoid_cross_entropy_backward")
def sigmoid_cross_entropy_backward(x, t, gy):
    """``(sigmoid(x) - t) * (gy / size)`` and ``x * -(gy / size)``, from one kernel."""
    if not _fits(gy, x, t):
        scale = gy * (1.0 / x.size)
        e = x.xp.exp(-x.xp.abs(x))
        r = 1 / (1 + e)
        return (x.xp.where(x >= 0, r, e * r) - t) * scale, x * -scale
    return _mean_loss_backward("sigmoid_cross_entropy", x, t, gy, 1.0 / x.size)


# --- range checks that report at the next host read -------------------------------------------
def _check(name: str, values, high: int, error: str) -> None:
    values = _contiguous(values)
    if values.size == 0:
        return
    device = values._device
    code = device.defer_error(ValueError, error)
    float_dtype = values.dtype if values.dtype.kind == "f" else np.float32
    kernel = nn_kernel(device, float_dtype, name)
    meta = _Meta.pack([values.size, values.offset, high, code])
    _launch(kernel, device, values.size, [values.buffer, device.error_flag(), meta])


@register("check_int_range")
def check_int_range(values, high: int, error: str) -> None:
    """Report ``ValueError(error)`` at the next host read if an integer (a label, an id) lies
    outside ``[0, high)``: one launch, and the host does not wait for it."""
    values = _labels(values)
    _check(f"check_range_{ctype(values.dtype)}", values, high, error)


@register("check_unit_interval")
def check_unit_interval(values, error: str) -> None:
    """Report ``ValueError(error)`` at the next host read if a value lies outside ``[0, 1]``."""
    _check("check_unit_interval", values, 0, error)


# --- batch normalisation ----------------------------------------------------------------------
def _channels_layout(x) -> tuple:
    channels = x.shape[1]
    spatial = x.size // (x.shape[0] * channels) if x.size else 0
    return channels, spatial, x.size // channels if channels else 0


def _bn_grid(x) -> tuple:
    """(inner, rows) of the elementwise batch-norm kernels (see ``_channel_index``)."""
    channels, spatial, _ = _channels_layout(x)
    inner = spatial if spatial > 1 else channels
    return inner, x.size // inner


def _vector(v, dtype):
    return _contiguous(v.astype(dtype, copy=False))


@register("batch_norm_forward")
def batch_norm_forward(x, gamma, beta, eps: float, running=None):
    """Batch normalisation of ``x`` (N, C, ...) over every axis but 1, in two launches.

    The first computes each channel's mean and variance (in one work group per channel) and
    updates the running statistics ``running = (mean, var, decay)`` in place; the second
    normalises, scales and shifts.  Returns ``y``, the normalised ``x_hat`` and ``inv_std``
    of shape (C,), which :func:`batch_norm_backward` takes.
    """
    device = x._device
    x = _contiguous(x)
    dtype = x.dtype
    channels, spatial, count = _channels_layout(x)
    mean = empty_array((channels,), dtype, device)
    var = empty_array((channels,), dtype, device)
    inv_std = empty_array((channels,), dtype, device)
    decay = 0.0
    in_kernel = False
    if running is not None:
        running_mean, running_var, decay = running
        # The kernel updates float arrays of x's dtype in place; others are updated below.
        in_kernel = all(
            r.dtype == dtype and r.is_c_contiguous and r.offset == 0
            for r in (running_mean, running_var)
        )
    targets = (running_mean, running_var) if in_kernel else (mean, inv_std)
    values = _Meta.pack([channels, spatial, count, x.offset, int(in_kernel)])
    args = [mean.buffer, var.buffer, inv_std.buffer, targets[0].buffer, targets[1].buffer]
    args.append(x.buffer)
    args += [floats(dtype, eps, decay), values]
    group_launch(nn_kernel(device, dtype, "bn_stats"), device, channels, args)
    if running is not None and not in_kernel:
        running_mean *= decay
        running_mean += (1 - decay) * mean
        running_var *= decay
        running_var += (1 - decay) * count / (count - 1) * var
    y = empty_array(x.shape, dtype, device)
    x_hat = empty_array(x.shape, dtype, device)
    values = _Meta.pack([x.size, channels, spatial, x.offset])
    args = [y.buffer, x_hat.buffer, x.buffer, mean.buffer, inv_std.buffer]
    args += [_vector(gamma, dtype).buffer, _vector(beta, dtype).buffer, values]
    rows_launch(nn_kernel(device, dtype, "bn_apply"), device, *_bn_grid(x), args)
    return y, x_hat, inv_std


@register("batch_norm_backward")
def batch_norm_backward(gy, x_hat, inv_std, gamma):
    """Gradients of :func:`batch_norm_forward` for ``x``, ``gamma`` and ``beta``: the two sums
    per channel in one launch, the input's gradient in a second."""
    device = x_hat._device
    dtype = x_hat.dtype
    gy = _contiguous(gy.astype(dtype, copy=False))
    channels, spatial, count = _channels_layout(x_hat)
    g_gamma = empty_array((channels,), dtype, device)
    g_beta = empty_array((channels,), dtype, device)
    values = _Meta.pack([channels, spatial, count, gy.offset])
    args = [g_gamma.buffer, g_beta.buffer, gy.buffer, x_hat.buffer, values]
    group_launch(nn_kernel(device, dtype, "bn_grad_sums"), device, channels, args)
    gx = empty_array(x_hat.shape, dtype, device)
    values = _Meta.pack([gx.size, channels, spatial, gy.offset])
    args = [gx.buffer, gy.buffer, x_hat.buffer, inv_std.buffer, _vector(gamma, dtype).buffer]
    args += [g_gamma.buffer, g_beta.buffer, values]
    rows_launch(nn_kernel(device, dtype, "bn_backward"), device, *_bn_grid(gx), args)
    return gx, g_gamma, g_beta


@register("layer_norm_forward")
def layer_norm_forward(x, gamma, beta, eps: float):
    """Layer normalisation of ``x`` (..., D) over its last axis, in two launches (statistics
    of each row, then the normalisation).  Returns ``y``, ``x_hat`` and ``inv_std`` of shape
    ``x.shape[:-1]``, which :func:`layer_norm_backward` takes."""
    device = x._device
    x = _contiguous(x)
    dtype = x.dtype
    size = x.shape[-1]
    rows = x.size // size if size else 0
    mean = empty_array(x.shape[:-1], dtype, device)
    var = empty_array(x.shape[:-1], dtype, device)
    inv_std = empty_array(x.shape[:-1], dtype, device)
    y = empty_array(x.shape, dtype, device)
    x_hat = empty_array(x.shape, dtype, device)
    if x.size == 0:
        return y, x_hat, inv_std
    values = _Meta.pack([rows, size, size, x.offset, 0])
    args = [mean.buffer, var.buffer, inv_std.buffer, mean.buffer, var.buffer, x.buffer]
    args += [floats(dtype, eps), values]
    group_launch(nn_kernel(device, dtype, "bn_stats"), device, rows, args)
    values = _Meta.pack([x.size, rows, size, x.offset])
    args = [y.buffer, x_hat.buffer, x.buffer, mean.buffer, inv_std.buffer]
    args += [_vector(gamma, dtype).buffer, _vector(beta, dtype).buffer, values]
    rows_launch(nn_kernel(device, dtype, "ln_apply"), device, size, rows, args)
    return y, x_hat, inv_std


@register("layer_norm_backward")
def layer_norm_backward(gy, x_hat, inv_std, gamma):
    """Gradients of :func:`layer_norm_forward` for ``x``, ``gamma`` and ``beta``: the column
    sums (parameter gradients) and row sums in one launch each, the input's gradient in a
    third."""
    device = x_hat._device
    dtype = x_hat.dtype
    gy = _contiguous(gy.astype(dtype, copy=False))
    size = x_hat.shape[-1]
    rows = x_hat.size // size if size else 0
    gamma = _vector(gamma, dtype)
    g_gamma = empty_array((size,), dtype, device)
    g_beta = empty_array((size,), dtype, device)
    gx = empty_array(x_hat.shape, dtype, device)
    if x_hat.size == 0:
        g_gamma.fill(0)
        g_beta.fill(0)
        return gx, g_gamma, g_beta
    values = _Meta.pack([size, 1, rows, gy.offset])
    args = [g_gamma.buffer, g_beta.buffer, gy.buffer, x_hat.buffer, values]
    group_launch(nn_kernel(device, dtype, "bn_grad_sums"), device, size, args)
    sum_g = empty_array((rows,), dtype, device)
    sum_gh = empty_array((rows,), dtype, device)
    values = _Meta.pack([rows, size, size, gy.offset])
    args = [sum_g.buffer, sum_gh.buffer, gy.buffer, x_hat.buffer, gamma.buffer, values]
    group_launch(nn_kernel(device, dtype, "ln_row_sums"), device, rows, args)
    values = _Meta.pack([gx.size, rows, size, gy.offset])
    args = [gx.buffer, gy.buffer, x_hat.buffer, inv_std.buffer, gamma.buffer]
    args += [sum_g.buffer, sum_gh.buffer, values]
    rows_launch(nn_kernel(device, dtype, "ln_backward"), device, size, rows, args)
    return gx, g_gamma, g_beta


# --- dropout ----------------------------------------------------------------------------------
@register("dropout")
def dropout(x, dropout_ratio: float):
    """Inverted dropout in one launch: returns ``x * mask`` and the scaled mask.

    The mask draws from the device's counter-based random stream (``xp.random.seed`` makes
    it reproducible) and advances its counter by ``x.size``.
    """
    device = x._device
    x = _contiguous(x)
    y = empty_array(x.shape, x.dtype, device)
    mask = empty_array(x.shape, x.dtype, device)
    if x.size:
        seed, counter = device.draw(x.size)
        values = _Meta.pack([x.size, x.offset, seed, counter])
        scale = x.dtype.type(1 / (1 - dropout_ratio))  # as NumPy's ``mask *= 1 / (1 - p)``
        args = [y.buffer, mask.buffer, x.buffer, floats(x.dtype, dropout_ratio, scale), values]
        _launch(nn_kernel(device, x.dtype, "dropout"), device, x.size, args)
    return y, mask
