"""Convolution and pooling layers on ``(N, C, H, W)`` batches."""

from __future__ import annotations

import numbers

from pygrad import functions as F
from pygrad.core import Parameter, Variable, as_variable
from pygrad.nn import init
from pygrad.nn.layers._checks import positive_sizes, real_input
from pygrad.nn.module import Module

__all__ = ["Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d"]


def _pair(value, name: str, layer: str, minimum: int) -> tuple:
    """``value`` as a pair of ints, each at least ``minimum``."""
    if isinstance(value, numbers.Integral):
        pair = (value, value)
    else:
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if (
        len(pair) != 2
        or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair)
        or min(pair) < minimum
    ):
        raise ValueError(
            f"{layer}: {name} must be an int or a pair of ints, each at least {minimum}, "
            f"got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def _check_images(layer: Module, x: Variable, channels: int | None) -> None:
    real_input(layer, x, getattr(layer, "W", None))
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        expected = "C" if channels is None else str(channels)
        raise ValueError(
            f"{type(layer).__name__}: expected input of shape (N, {expected}, H, W), "
            f"got shape {x.shape}"
        )


class _Conv(Module):
    """Shared set-up of :class:`Conv2d` and :class:`ConvTranspose2d`."""

    # Whether W is laid out (in_channels, out_channels, kh, kw) rather than (out, in, kh, kw).
    transposed = False

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size, stride=1, pad=0, bias: bool = True
    ):
        super().__init__()
        layer = type(self).__name__
        in_channels, out_channels = positive_sizes(
            layer, in_channels=in_channels, out_channels=out_channels
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", layer, 1)
        self.stride = _pair(stride, "stride", layer, 1)
        self.pad = _pair(pad, "pad", layer, 0)
        # He scaling over what one output pixel sums: in_channels * kh * kw terms (stride 1).
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        channels = (in_channels, out_channels) if self.transposed else (out_channels, in_channels)
        self.W = Parameter(init.he_normal((*channels, *self.kernel_size), fan_in), name="W")
        self.b = Parameter(init.zeros(out_channels), name="b") if bias else None

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, pad={self.pad}, bias={self.b is not None}"
        )


class Conv2d(_Conv):
    """2-D convolution (cross-correlation, as in PyTorch and Chainer).

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    kernel_size : int or (int, int)
        Window size ``(kh, kw)``.
    stride : int or (int, int)
        Step between windows.
    pad : int or (int, int)
        Zero padding added on both sides of each spatial axis.
    bias : bool
        Whether to learn a bias of shape ``(out_channels,)``.

    Attributes
    ----------
    W : Parameter
        Shape ``(out_channels, in_channels, kh, kw)``, float32, He-normal over the fan-in
        ``in_channels * kh * kw``.
    b : Parameter or None
        Shape ``(out_channels,)``, starting at zero.

    Notes
    -----
    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, OH, OW)`` with
    ``OH = (H + 2 * pad_h - kh) // stride_h + 1`` (likewise ``OW``).
    """

    def forward(self, x) -> Variable:
        x = as_variable(x)
        _check_images(self, x, self.in_channels)
        return F.conv2d(x, self.W, self.b, self.stride, self.pad)


class ConvTranspose2d(_Conv):
    """2-D transposed convolution (deconvolution), the gradient of :class:`Conv2d` w.r.t. its input.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    kernel_size, stride, pad : int or (int, int)
        As for the :class:`Conv2d` this layer is the transpose of.
    bias : bool
        Whether to learn a bias of shape ``(out_channels,)``.

    Attributes
    ----------
    W : Parameter
        Shape ``(in_channels, out_channels, kh, kw)`` (PyTorch's layout), float32, He-normal over
        the fan-in ``in_channels * kh * kw``.
    b : Parameter or None
        Shape ``(out_channels,)``, starting at zero.

    Notes
    -----
    Input ``(N, in_channels, H, W)``, output ``(N, out_channels, OH, OW)`` with
    ``OH = (H - 1) * stride_h + kh - 2 * pad_h`` (likewise ``OW``) unless ``outsize=(OH, OW)``
    is given to :meth:`forward`.
    """

    transposed = True

    def forward(self, x, outsize=None) -> Variable:
        x = as_variable(x)
        _check_images(self, x, self.in_channels)
        return F.deconv2d(x, self.W, self.b, self.stride, self.pad, outsize)


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, pad=0):
        super().__init__()
        layer = type(self).__name__
        self.kernel_size = _pair(kernel_size, "kernel_size", layer, 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", layer, 1)
        self.pad = _pair(pad, "pad", layer, 0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad}"


class MaxPool2d(_Pool2d):
    """Max pooling over ``kernel_size`` windows of each channel; padding never wins a max.

    Parameters
    ----------
    kernel_size : int or (int, int)
        Window size ``(kh, kw)``.
    stride : int or (int, int), optional
        Step between windows; defaults to ``kernel_size``.
    pad : int or (int, int)
        Padding on both sides of each spatial axis.

    Notes
    -----
    Input ``(N, C, H, W)``, output ``(N, C, OH, OW)`` with
    ``OH = (H + 2 * pad_h - kh) // stride_h + 1`` (likewise ``OW``).
    """

    def forward(self, x) -> Variable:
        x = as_variable(x)
        _check_images(self, x, None)
        return F.max_pooling(x, self.kernel_size, self.stride, self.pad)


class AvgPool2d(_Pool2d):
    """Average pooling over ``kernel_size`` windows of each channel; padding counts as zeros.

    Parameters and shapes as for :class:`MaxPool2d`.
    """

    def forward(self, x) -> Variable:
        x = as_variable(x)
        _check_images(self, x, None)
        return F.average_pooling(x, self.kernel_size, self.stride, self.pad)
