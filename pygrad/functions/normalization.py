"""Normalisation, regularisation and lookup: batch_norm, layer_norm, dropout and embed_id.

batch_norm and layer_norm share one fused function (standardise over some axes, then scale and
shift per feature); dropout is active only while ``Config.train``; embed_id gathers rows.
"""

from __future__ import annotations

import math

import numpy as np

from pygrad import backends
from pygrad._config import Config
from pygrad.backends import fused_op, get_array_module
from pygrad.core import Function, Variable, as_variable
from pygrad.functions.activation import ScaleBy, float_input
from pygrad.functions.reduction import sum as _sum
from pygrad.functions.shape import GetItem, grads_like, reshape

__all__ = ["batch_norm", "layer_norm", "dropout", "embed_id"]


# =============================================================================================
# batch_norm, layer_norm
# =============================================================================================
class Normalize(Function):
    """``gamma * (x - mean) / sqrt(var + eps) + beta``.

    ``mean`` and ``var`` (biased) are taken over ``axes`` of ``x``; ``gamma`` and ``beta`` are
    vectors along ``param_axis``.  With ``running = (mean, var, decay)`` the running statistics
    arrays are updated in place (only meaningful when ``param_axis`` is the one axis kept).
    """

    def __init__(self, axes: tuple, param_axis: int, eps: float, running=None):
        self.axes = axes
        self.param_axis = param_axis
        self.eps = eps
        self.running = running

    def _param_shape(self, ndim: int, size: int) -> tuple:
        return tuple(size if i == self.param_axis else 1 for i in range(ndim))

    def _fused_kind(self, ndim: int):
        """The fused kernels that fit these axes: ``"batch_norm"``, ``"layer_norm"`` or None."""
        if self.param_axis == 1 and self.axes == (0,) + tuple(range(2, ndim)):
            return "batch_norm"
        if self.param_axis == ndim - 1 and self.axes == (ndim - 1,):
            return "layer_norm"
        return None

    def forward(self, x, gamma, beta):
        xp = get_array_module(x)
        axes = self.axes
        kind = self._fused_kind(x.ndim)
        fused = None if kind is None else fused_op(xp, f"{kind}_forward")
        if fused is not None:
            running = () if kind == "layer_norm" else (self.running,)
            y, self.x_hat, inv_std = fused(x, gamma, beta, self.eps, *running)
            self.inv_std = inv_std.reshape(_mean_shape(x.shape, axes))
            return y
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = (centered * centered).mean(axis=axes, keepdims=True)
        inv_std = 1 / xp.sqrt(var + self.eps)
        centered *= inv_std
        # Kept for the fast (first-order) backward.
        self.x_hat, self.inv_std = centered, inv_std
        shape = self._param_shape(x.ndim, gamma.size)
        y = centered * gamma.reshape(shape) + beta.reshape(shape)
        if self.running is not None:
            running_mean, running_var, decay = self.running
            count = x.size // gamma.size
            running_mean *= decay
            running_mean += (1 - decay) * mean.reshape(gamma.size)
            running_var *= decay
            # The running variance is the unbiased estimate, as in Chainer and PyTorch.
            running_var += (1 - decay) * count / (count - 1) * var.reshape(gamma.size)
        return y

    def backward(self, gy):
        # Each gradient takes its input's dtype, whatever the dtypes of the others.
        if Config.enable_backprop:
            return grads_like(self._backward_with_graph(gy), self.inputs)
        # create_graph is off: the same formulas on the arrays kept by forward.
        x, gamma = self.inputs[0].data, self.inputs[1].data
        g, x_hat, inv_std = gy.data, self.x_hat, self.inv_std
        xp = get_array_module(x)
        kind = self._fused_kind(x.ndim)
        fused = None if kind is None else fused_op(xp, f"{kind}_backward")
        if fused is not None:
            stats_shape = (gamma.size,) if kind == "batch_norm" else x.shape[:-1]
            grads = fused(g, x_hat, inv_std.reshape(stats_shape), gamma)
            return grads_like(tuple(Variable(a) for a in grads), self.inputs)
        shape = self._param_shape(x.ndim, gamma.size)
        param_axes = tuple(i for i in range(x.ndim) if i != self.param_axis)
        g_beta = g.sum(axis=param_axes)
        g_gamma = (g * x_hat).sum(axis=param_axes)
        count = x.size // inv_std.size
        if param_axes == self.axes:
            # Batch norm: the sums over the normalised axes are the parameter gradients.
            mean_g = (g_beta / count).reshape(shape)
            mean_g_x_hat = (g_gamma / count).reshape(shape)
            gx = (gamma.reshape(shape) * inv_std) * (g - mean_g - x_hat * mean_g_x_hat)
        else:
            g_x_hat = g * gamma.reshape(shape)
            mean_g = g_x_hat.mean(axis=self.axes, keepdims=True)
            mean_g_x_hat = (g_x_hat * x_hat).mean(axis=self.axes, keepdims=True)
            gx = inv_std * (g_x_hat - mean_g - x_hat * mean_g_x_hat)
        return grads_like((Variable(gx), Variable(g_gamma), Variable(g_beta)), self.inputs)

    def _backward_with_graph(self, gy):
        """The backward pass recomputed from the inputs with pygrad functions, so that it can be
        differentiated again."""
        x, gamma = self.inputs[0], self.inputs[1]
        axes = self.axes
        scale = 1.0 / (x.size // math.prod(1 if i in axes else n for i, n in enumerate(x.shape)))
        centered = x - _sum(x, axes, keepdims=True) * scale
        var = _sum(centered * centered, axes, keepdims=True) * scale
        inv_std = (var + self.eps) ** -0.5
        x_hat = centered * inv_std
        param_axes = tuple(i for i in range(x.ndim) if i != self.param_axis)
        g_x_hat = gy * reshape(gamma, self._param_shape(x.ndim, gamma.size))
        mean_g = _sum(g_x_hat, axes, keepdims=True) * scale
        mean_g_x_hat = _sum(g_x_hat * x_hat, axes, keepdims=True) * scale
        gx = inv_std * (g_x_hat - mean_g - x_hat * mean_g_x_hat)
        return gx, _sum(gy * x_hat, param_axes), _sum(gy, param_axes)


def _mean_shape(shape: tuple, axes: tuple) -> tuple:
    """The shape of a mean over ``axes`` with ``keepdims=True``."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _check_params(op: str, x: Variable, gamma, beta, size: int, axis_name: str):
    gamma = float_input(as_variable(gamma, like=x), op, "gamma")
    beta = float_input(as_variable(beta, like=x), op, "beta")
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p.shape != (size,):
            raise ValueError(
                f"{op}: expected {name} of shape ({size},) to match {axis_name} of x {x.shape}, "
                f"got {p.shape}"
            )
    return gamma, beta


def _running_array(stat, op: str, name: str, x: Variable, channels: int):
    """The running statistic as an array that can be updated in place (or None)."""
    if stat is None:
        return None
    array = stat.data if isinstance(stat, Variable) else stat
    if not (isinstance(array, np.ndarray) or getattr(array, "xp", None) is not None):
        raise TypeError(
            f"{op}: expected the running {name} as an array of shape ({channels},), "
            f"got {type(stat).__name__}"
        )
    if array.shape != (channels,) or array.dtype.kind != "f":
        raise ValueError(
            f"{op}: expected the running {name} as a floating-point array of shape "
            f"({channels},) for x {x.shape}, got dtype {array.dtype} and shape {array.shape}"
        )
    if backends.device_of(array) != x.device:
        raise backends.DeviceError(
            f"{op}: the running {name} lives on {backends.device_of(array)} but x on {x.device}; "
            "move them to one device first"
        )
    return array


def batch_norm(x, gamma, beta, mean, var, decay: float = 0.9, eps: float = 1e-5) -> Variable:
    """Batch normalisation per channel (axis 1), over the batch and every spatial position.

    While ``Config.train`` the batch statistics are used and the running ones updated in place:
    ``running = decay * running + (1 - decay) * batch``, where the batch variance used for the
    running ``var`` is the unbiased one (divided by ``m - 1`` for ``m`` values per channel) as
    in Chainer and PyTorch, while the normalisation itself divides by ``m``.  Otherwise (see
    :func:`pygrad.test_mode`) the running statistics normalise and nothing is updated.

    Parameters
    ----------
    x : Variable or array
        Floating-point input of shape ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.
    gamma, beta : Variable or array
        Scale and shift of shape ``(C,)``.
    mean, var : array or None
        Running mean and variance, arrays of shape ``(C,)`` on the device of ``x``, updated in
        place while training (a Variable's data is used).  None skips the update in training;
        inference needs both.
    decay : float
        Weight of the old running value, in ``[0, 1]`` (PyTorch's ``momentum`` is ``1 - decay``).
    eps : float
        Added to the variance for stability; positive.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.

    Raises
    ------
    ValueError
        On shape mismatches, a channel with a single value in training, a missing running
        statistic in inference, or ``decay``/``eps`` out of range.
    """
    op = "batch_norm"
    x = float_input(x, op, "x")
    if x.ndim < 2:
        raise ValueError(f"{op}: expected x of shape (N, C) or (N, C, H, W), got shape {x.shape}")
    channels = x.shape[1]
    gamma, beta = _check_params(op, x, gamma, beta, channels, "axis 1 (channels)")
    mean = _running_array(mean, op, "mean", x, channels)
    var = _running_array(var, op, "var", x, channels)
    if not 0 <= decay <= 1:
        raise ValueError(f"{op}: decay must lie in [0, 1], got {decay}")
    if not eps > 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")
    axes = (0,) + tuple(range(2, x.ndim))
    if Config.train:
        if x.size // max(channels, 1) < 2:
            raise ValueError(
                f"{op}: training needs more than one value per channel, got x of shape {x.shape}"
            )
        running = None if mean is None or var is None else (mean, var, float(decay))
        return Normalize(axes, 1, float(eps), running)(x, gamma, beta)
    if mean is None or var is None:
        raise ValueError(f"{op}: inference (Config.train off) needs the running mean and var")
    # Inference is an affine map per channel; the running statistics are constants.
    xp = get_array_module(x.data)
    inv_std = 1 / xp.sqrt(var.astype(x.dtype, copy=False) + eps)
    scale = gamma * inv_std
    shift = beta - scale * mean.astype(x.dtype, copy=False)
    shape = (1, channels) + (1,) * (x.ndim - 2)
    return x * reshape(scale, shape) + reshape(shift, shape)


def layer_norm(x, gamma, beta, eps: float = 1e-5) -> Variable:
    """Layer normalisation over the last axis, then a learned scale and shift per feature.

    ``gamma * (x - mean) / sqrt(var + eps) + beta`` with the (biased) mean and variance of
    each row along the last axis; the same in training and inference.

    Parameters
    ----------
    x : Variable or array
        Floating-point input of shape ``(..., D)``.
    gamma, beta : Variable or array
        Scale and shift of shape ``(D,)``.
    eps : float
        Added to the variance for stability; positive.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.

    Raises
    ------
    ValueError
        If ``x`` is 0-d or ``gamma``/``beta`` do not match its last axis.
    """
    op = "layer_norm"
    x = float_input(x, op, "x")
    if x.ndim == 0:
        raise ValueError(f"{op}: expected x of shape (..., D), got a 0-d array")
    gamma, beta = _check_params(op, x, gamma, beta, x.shape[-1], "the last axis")
    if not eps > 0:
        raise ValueError(f"{op}: eps must be positive, got {eps}")
    last = x.ndim - 1
    return Normalize((last,), last, float(eps))(x, gamma, beta)


# =============================================================================================
# dropout
# =============================================================================================
class Dropout(Function):
    """``x * mask`` with a fresh scaled mask of kept elements; backward scales by the same mask."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, dropout_ratio: float):
        self.dropout_ratio = dropout_ratio

    def forward(self, x):
        xp = get_array_module(x)
        fused = fused_op(xp, "dropout")
        if fused is not None:
            y, self.mask = fused(x, self.dropout_ratio)
            return y
        mask = (xp.random.random(x.shape) >= self.dropout_ratio).astype(x.dtype)
        mask *= 1 / (1 - self.dropout_ratio)
        self.mask = mask
        return x * mask

    def backward(self, gy):
        return ScaleBy(self.mask)(gy)


def dropout(x, dropout_ratio: float = 0.5) -> Variable:
    """Inverted dropout: zero each element with probability ``dropout_ratio`` while training.

    Kept elements are scaled by ``1 / (1 - dropout_ratio)`` so that the expected value is
    unchanged and inference needs no rescaling.  Outside training (``Config.train`` off, see
    :func:`pygrad.test_mode`) ``x`` is returned unchanged.  The mask comes from the array
    module's random generator: ``numpy.random`` on the CPU, so ``numpy.random.seed`` fixes it;
    on OpenCL the device's counter-based stream (``xp.random.seed``), drawn by the kernel that
    applies the mask.

    Parameters
    ----------
    x : Variable or array
        Floating-point input of any shape.
    dropout_ratio : float
        Probability of dropping an element, in ``[0, 1)``.

    Returns
    -------
    Variable
        Same shape and dtype as ``x``.
    """
    if not 0 <= dropout_ratio < 1:
        raise ValueError(f"dropout: dropout_ratio must lie in [0, 1), got {dropout_ratio}")
    x = float_input(x, "dropout", "x")
    if not Config.train or dropout_ratio == 0:
        return x
    return Dropout(float(dropout_ratio))(x)


# =============================================================================================
# embed_id
# =============================================================================================
def embed_id(x, W) -> Variable:
    """Look up rows of the embedding matrix ``W`` by integer id: ``W[x]``.

    Parameters
    ----------
    x : Variable, array, list or int
        Integer ids of any shape, each in ``[0, V)``; not differentiated.
    W : Variable or array
        Floating-point embedding matrix of shape ``(V, D)``.

    Returns
    -------
    Variable
        Shape ``x.shape + (D,)``.  In backward the gradient of ``W`` adds up over repeated ids.

    Raises
    ------
    TypeError
        If the ids are not integers.
    ValueError
        If ``W`` is not 2-D or an id is out of range.  On an OpenCL device the ids are checked by
        a kernel and the error is raised at the device's next host read (``.get()``,
        ``item()``, ``synchronize()``), so that the lookup never waits for the device.
    """
    op = "embed_id"
    W = float_input(W, op, "W")
    if W.ndim != 2:
        raise ValueError(f"{op}: expected W of shape (V, D), got shape {W.shape}")
    ids = x.data if isinstance(x, Variable) else x
    if not (isinstance(ids, np.ndarray) or getattr(ids, "xp", None) is not None):
        ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{op}: expected integer ids x, got dtype {ids.dtype}")
    id_range = f"{op}: ids must lie in [0, {W.shape[0]}) for W of shape {W.shape}"
    # Ids given on the host are checked there, at no wait for a device; device ids are checked
    # by a kernel, reported at the device's next host read, where a backend has one.
    check = None if type(ids) is np.ndarray else fused_op(get_array_module(ids), "check_int_range")
    if check is not None:
        check(ids, W.shape[0], f"{id_range}, found one outside")
    elif ids.size:
        low, high = _host_int(ids.min()), _host_int(ids.max())
        if low < 0 or high >= W.shape[0]:
            raise ValueError(f"{id_range}, found {low if low < 0 else high}")
    if backends.device_of(ids) != W.device:
        ids = backends.to_device(ids, W.device)
    return GetItem(ids)(W)


def _host_int(value) -> int:
    return int(backends.to_host(value))
