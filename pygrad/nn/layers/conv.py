"""Convolution and pooling layers on ``(N, C, H, W)`` batches."""

from __future__ import annotations

from pygrad import functions as F
from pygrad.core import Parameter, Variable
from pygrad.nn import init
from pygrad.nn.module import Module

__all__ = ["Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d"]


def _pair(value, name: str, layer: str) -> tuple:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{layer}: {name} must be an int or a pair of ints, got {value!r}")
    return pair


class Conv2d(Module):
    """2-D convolution: ``(N, in_channels, H, W) -> (N, out_channels, OH, OW)``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input and of the output.
    kernel_size, stride, pad : int or (int, int)
        Window size, step and zero padding of each spatial axis.
    bias : bool
        Whether to learn a bias of shape ``(out_channels,)``.

    Notes
    -----
    ``W`` has shape ``(out_channels, in_channels, kh, kw)`` and is drawn with He scaling over
    the fan-in ``in_channels * kh * kw``; the bias starts at zero.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size, stride=1, pad=0, bias: bool = True
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2d")
        self.stride, self.pad = _pair(stride, "stride", "Conv2d"), _pair(pad, "pad", "Conv2d")
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.W = Parameter(
            init.he_normal((out_channels, in_channels, *self.kernel_size), fan_in), name="W"
        )
        self.b = Parameter(init.zeros(out_channels), name="b") if bias else None

    def forward(self, x) -> Variable:
        return F.conv2d(x, self.W, self.b, self.stride, self.pad)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, pad={self.pad}, bias={self.b is not None}"
        )


class ConvTranspose2d(Module):
    """2-D transposed convolution (a.k.a. deconvolution), the gradient of :class:`Conv2d`.

    ``W`` has shape ``(in_channels, out_channels, kh, kw)``; the output size is
    ``(in - 1) * stride + kernel - 2 * pad`` unless ``outsize`` is given to ``forward``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size, stride=1, pad=0, bias: bool = True
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size", "ConvTranspose2d")
        self.stride = _pair(stride, "stride", "ConvTranspose2d")
        self.pad = _pair(pad, "pad", "ConvTranspose2d")
        fan_in = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.W = Parameter(
            init.he_normal((in_channels, out_channels, *self.kernel_size), fan_in), name="W"
        )
        self.b = Parameter(init.zeros(out_channels), name="b") if bias else None

    def forward(self, x, outsize=None) -> Variable:
        return F.deconv2d(x, self.W, self.b, self.stride, self.pad, outsize)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, pad={self.pad}, bias={self.b is not None}"
        )


class MaxPool2d(Module):
    """Max pooling over ``kernel_size`` windows; ``stride`` defaults to ``kernel_size``."""

    def __init__(self, kernel_size, stride=None, pad=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", "MaxPool2d")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", "MaxPool2d")
        self.pad = _pair(pad, "pad", "MaxPool2d")

    def forward(self, x) -> Variable:
        return F.max_pooling(x, self.kernel_size, self.stride, self.pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad}"


class AvgPool2d(MaxPool2d):
    """Average pooling over ``kernel_size`` windows (padding counts as zeros)."""

    def forward(self, x) -> Variable:
        return F.average_pooling(x, self.kernel_size, self.stride, self.pad)
