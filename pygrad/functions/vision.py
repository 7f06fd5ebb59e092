"""Vision functions on ``(N, C, H, W)`` batches: convolution, transposed convolution, pooling,
and the im2col/col2im rearrangements they are built on.

Windows are read through one strided view of the (padded) input, so a convolution is one copy
and one matrix product; col2im adds the kernel offsets back one at a time (``kh * kw`` slice
additions, never a loop over pixels or samples).  A backend with fused kernels for these
(``fused_op(xp, "im2col")`` ...) runs each such composite as one kernel instead.
"""

from __future__ import annotations

import numpy as np

from pygrad.backends import fused_op, get_array_module
from pygrad.core import Function, Variable, as_variable
from pygrad.functions.reduction import sum as reduce_sum
from pygrad.functions.shape import broadcast_to, grads_like, reshape

__all__ = [
    "conv2d",
    "deconv2d",
    "max_pooling",
    "average_pooling",
    "im2col",
    "col2im",
]

_int_types = (int, np.integer)


# =============================================================================================
# sizes and validation
# =============================================================================================
def conv_outsize(size: int, kernel: int, stride: int, pad: int) -> int:
    """Output length of a convolution along one axis: ``(size + 2*pad - kernel) // stride + 1``."""
    return (size + 2 * pad - kernel) // stride + 1


def deconv_outsize(size: int, kernel: int, stride: int, pad: int) -> int:
    """Default output length of a transposed convolution: ``(size - 1)*stride + kernel - 2*pad``."""
    return (size - 1) * stride + kernel - 2 * pad


def _pair(value, name: str, op: str, minimum: int) -> tuple:
    """``value`` (an int or a pair of ints) as a pair, each at least ``minimum``."""
    pair = (value, value) if isinstance(value, _int_types) else value
    if not isinstance(pair, (tuple, list)) or not all(
        isinstance(v, _int_types) and not isinstance(v, bool) for v in pair
    ):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if len(pair) != 2 or any(v < minimum for v in pair):
        raise ValueError(
            f"{op}: {name} must be an int or a pair of ints, each at least {minimum}, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def _check_image(x: Variable, op: str, name: str = "x") -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected {name} of shape (N, C, H, W), got shape {x.shape}")


def _check_window(in_shape: tuple, kernel: tuple, pad: tuple, op: str, name: str = "x") -> None:
    """Raise unless a ``kernel`` window fits in the spatial axes of ``in_shape`` after padding."""
    padded = (in_shape[2] + 2 * pad[0], in_shape[3] + 2 * pad[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{op}: kernel {kernel} is larger than the padded input {padded} "
            f"({name} of shape {in_shape} with pad {pad})"
        )


def _check_bias(b: Variable, channels: int, op: str, W: Variable) -> None:
    if b.shape != (channels,):
        raise ValueError(
            f"{op}: expected b of shape ({channels},) for W of shape {W.shape}, got {b.shape}"
        )


def _lowest(dtype):
    """The value that loses every max: -inf for floats, the minimum for integers."""
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind in "iu":
        return np.iinfo(dtype).min
    return 0


# =============================================================================================
# array-level im2col / col2im (shared by every backend: they take xp from their input)
# =============================================================================================
def _pad_image(x, ph: int, pw: int, value=0):
    """``x`` with ``ph`` rows and ``pw`` columns of ``value`` on each side (``x`` if none)."""
    if not (ph or pw):
        return x
    n, c, h, w = x.shape
    padded = get_array_module(x).full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    padded[:, :, ph : ph + h, pw : pw + w] = x
    return padded


def im2col_array(
    x, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int, to_matrix: bool, pad_value=0
):
    """Gather the ``kh x kw`` windows of an image batch.

    Parameters
    ----------
    x : array
        Shape ``(N, C, H, W)``.
    kh, kw, sh, sw, ph, pw : int
        Kernel size, stride and padding along the height and the width.
    to_matrix : bool
        Return the ``(N * OH * OW, C * kh * kw)`` matrix (a copy) instead of the view.
    pad_value : scalar
        Value of the padding (``-inf`` lets max pooling ignore it).

    Returns
    -------
    array
        A read-only strided view of shape ``(N, C, kh, kw, OH, OW)`` into ``x`` (or into its
        padded copy), or the matrix when ``to_matrix`` is set.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    out_h, out_w = conv_outsize(h, kh, sh, ph), conv_outsize(w, kw, sw, pw)
    padded = _pad_image(x, ph, pw, pad_value)
    s_n, s_c, s_h, s_w = padded.strides
    col = xp.lib.stride_tricks.as_strided(
        padded,
        shape=(n, c, kh, kw, out_h, out_w),
        strides=(s_n, s_c, s_h, s_w, s_h * sh, s_w * sw),
        writeable=False,
    )
    if to_matrix:
        col = col.transpose(0, 4, 5, 1, 2, 3).reshape(n * out_h * out_w, c * kh * kw)
    return col


def col2im_array(
    col, input_shape: tuple, kh: int, kw: int, sh: int, sw: int, ph: int, pw: int, to_matrix: bool
):
    """Add windows back into an image batch: the adjoint of :func:`im2col_array`.

    Parameters
    ----------
    col : array
        Shape ``(N, C, kh, kw, OH, OW)``, or ``(N * OH * OW, C * kh * kw)`` when ``to_matrix``.
    input_shape : tuple of int
        ``(N, C, H, W)``, the shape of the image the windows were taken from.
    kh, kw, sh, sw, ph, pw : int
        Kernel size, stride and padding along the height and the width.

    Returns
    -------
    array
        Shape ``(N, C, H, W)``; where windows overlap their values are summed, and what falls
        on the padding is dropped.
    """
    xp = get_array_module(col)
    n, c, h, w = input_shape
    out_h, out_w = conv_outsize(h, kh, sh, ph), conv_outsize(w, kw, sw, pw)
    if to_matrix:
        col = _matrix_windows(col, input_shape, (kh, kw), (sh, sw), (ph, pw))
    img = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    for i, j, window in kernel_offsets(kh, kw, sh, sw, out_h, out_w):
        img[window] += col[:, :, i, j]
    return unpad(img, ph, pw)


def _matrix_windows(col, input_shape: tuple, kernel: tuple, stride: tuple, pad: tuple):
    """The ``(N, C, kh, kw, OH, OW)`` view of an ``(N * OH * OW, C * kh * kw)`` window matrix."""
    (n, c, h, w), (kh, kw) = input_shape, kernel
    out_h = conv_outsize(h, kh, stride[0], pad[0])
    out_w = conv_outsize(w, kw, stride[1], pad[1])
    return col.reshape(n, out_h, out_w, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)


def kernel_offsets(kh: int, kw: int, sh: int, sw: int, out_h: int, out_w: int) -> list:
    """Every kernel offset ``(i, j)`` with the index of the padded image it reads in each window.

    ``padded[window]`` has shape ``(N, C, OH, OW)`` and equals ``im2col(...)[:, :, i, j]``, so
    loops over these ``kh * kw`` offsets replace loops over pixels.
    """
    span_h, span_w = sh * (out_h - 1) + 1, sw * (out_w - 1) + 1
    return [
        (i, j, (slice(None), slice(None), slice(i, i + span_h, sh), slice(j, j + span_w, sw)))
        for i in range(kh)
        for j in range(kw)
    ]


def unpad(img, ph: int, pw: int):
    """The view of a padded ``(N, C, H + 2 * ph, W + 2 * pw)`` image without its padding."""
    if not (ph or pw):
        return img
    return img[:, :, ph : img.shape[2] - ph, pw : img.shape[3] - pw]


# =============================================================================================
# im2col / col2im as Functions
# =============================================================================================
class Im2col(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, kernel_size: tuple, stride: tuple, pad: tuple, to_matrix: bool):
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.to_matrix = to_matrix

    def forward(self, x):
        self.input_shape = x.shape
        fused = fused_op(get_array_module(x), "im2col")
        # Without padding the windows are a view of x, which costs nothing to make.
        if fused is None or not (self.to_matrix or any(self.pad)):
            return im2col_array(x, *self.kernel_size, *self.stride, *self.pad, self.to_matrix)
        if not self.to_matrix:
            return fused(x, self.kernel_size, self.stride, self.pad, (0, 1, 2, 3, 4, 5))
        col = fused(x, self.kernel_size, self.stride, self.pad, (0, 4, 5, 1, 2, 3))
        return col.reshape(-1, x.shape[1] * self.kernel_size[0] * self.kernel_size[1])

    def backward(self, gy):
        return Col2im(self.input_shape, self.kernel_size, self.stride, self.pad, self.to_matrix)(gy)


class Col2im(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(
        self, input_shape: tuple, kernel_size: tuple, stride: tuple, pad: tuple, to_matrix: bool
    ):
        self.input_shape = input_shape
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.to_matrix = to_matrix

    def forward(self, col):
        fused = fused_op(get_array_module(col), "col2im")
        if fused is None:
            return col2im_array(
                col, self.input_shape, *self.kernel_size, *self.stride, *self.pad, self.to_matrix
            )
        if self.to_matrix:
            col = _matrix_windows(col, self.input_shape, self.kernel_size, self.stride, self.pad)
        return fused(col, self.input_shape, self.kernel_size, self.stride, self.pad)

    def backward(self, gx):
        return Im2col(self.kernel_size, self.stride, self.pad, self.to_matrix)(gx)


def im2col(x, kernel_size, stride=1, pad=0, to_matrix: bool = True) -> Variable:
    """Extract the sliding windows of an image batch, differentiably.

    Parameters
    ----------
    x : Variable or array
        Shape ``(N, C, H, W)``.
    kernel_size, stride, pad : int or (int, int)
        Window size, step and zero padding along the height and the width.
    to_matrix : bool
        Return one row per output position instead of the 6-D layout.

    Returns
    -------
    Variable
        Shape ``(N * OH * OW, C * kh * kw)`` when ``to_matrix``, else ``(N, C, kh, kw, OH, OW)``
        (a read-only view of ``x`` when there is no padding), where
        ``OH = (H + 2 * ph - kh) // sh + 1`` and likewise for ``OW``.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D or the kernel does not fit in the padded input.
    """
    x = as_variable(x)
    kernel_size = _pair(kernel_size, "kernel_size", "im2col", 1)
    stride, pad = _pair(stride, "stride", "im2col", 1), _pair(pad, "pad", "im2col", 0)
    _check_image(x, "im2col")
    _check_window(x.shape, kernel_size, pad, "im2col")
    return Im2col(kernel_size, stride, pad, bool(to_matrix))(x)


def col2im(col, input_shape, kernel_size, stride=1, pad=0, to_matrix: bool = True) -> Variable:
    """Sum windows back into an image batch (the adjoint of :func:`im2col`), differentiably.

    Parameters
    ----------
    col : Variable or array
        Shape ``(N * OH * OW, C * kh * kw)`` when ``to_matrix``, else ``(N, C, kh, kw, OH, OW)``.
    input_shape : tuple of int
        ``(N, C, H, W)``, the shape of the image.
    kernel_size, stride, pad : int or (int, int)
        Window size, step and zero padding along the height and the width.
    to_matrix : bool
        Whether ``col`` is in the matrix layout.

    Returns
    -------
    Variable
        Shape ``(N, C, H, W)``: every window entry added to the pixel it came from (entries
        that fall on the padding are dropped).

    Raises
    ------
    ValueError
        If ``input_shape`` is not 4 positive ints, the kernel does not fit in the padded image,
        or ``col`` does not have the shape those sizes imply.
    """
    col = as_variable(col)
    kernel_size = _pair(kernel_size, "kernel_size", "col2im", 1)
    stride, pad = _pair(stride, "stride", "col2im", 1), _pair(pad, "pad", "col2im", 0)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 4 or not all(isinstance(s, _int_types) for s in shape):
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {input_shape!r}")
    shape = tuple(int(s) for s in shape)
    _check_window(shape, kernel_size, pad, "col2im", "input_shape")
    (n, c, h, w), (kh, kw) = shape, kernel_size
    out_h = conv_outsize(h, kh, stride[0], pad[0])
    out_w = conv_outsize(w, kw, stride[1], pad[1])
    expected = (n * out_h * out_w, c * kh * kw) if to_matrix else (n, c, kh, kw, out_h, out_w)
    if col.shape != expected:
        raise ValueError(
            f"col2im: expected col of shape {expected} for input_shape {shape}, kernel "
            f"{kernel_size}, stride {stride}, pad {pad} and to_matrix={bool(to_matrix)}, "
            f"got {col.shape}"
        )
    return Col2im(shape, kernel_size, stride, pad, bool(to_matrix))(col)


# =============================================================================================
# convolution and transposed convolution
# =============================================================================================
# A convolution works on matrices whose rows are channels (times kernel offsets) and whose
# columns are the output positions of every sample, ``(rows, N * L)``: one matrix product then
# serves the whole batch.  With stride 1 the positions of a sample are laid out on the grid of
# its padded input (position ``(i, j)`` at ``i * pitch + j``, ``pitch`` the padded width, so
# ``L = (OH - 1) * pitch + OW``): the windows of one kernel offset are then a single run of each
# padded image, and gathering them or adding them back moves long runs instead of ``OH`` rows
# of ``OW`` values.  The ``pitch - OW`` columns between output rows are dropped in the output
# and zero in a gradient.  Other strides use the dense grid (``pitch = OW``, ``L = OH * OW``),
# and so do fused kernels, which gather any layout in one pass: for them the gap columns
# would only make the matrix products longer.
def _output_grid(padded_w: int, out_h: int, out_w: int, stride: tuple, fused=None) -> tuple:
    """``(pitch, L)`` of the output positions of one sample (see above); ``fused`` is the
    backend's fused im2col or col2im, if any."""
    if stride == (1, 1) and fused is None:
        return padded_w, (out_h - 1) * padded_w + out_w
    return out_w, out_h * out_w


# The axes of a fused im2col that give _conv_columns' matrix on the dense grid.
_COLUMN_AXES = (1, 2, 3, 0, 4, 5)


def _column_windows(col, n: int, out_h: int, out_w: int, kernel: tuple):
    """The ``(N, C, kh, kw, OH, OW)`` view of a ``(C * kh * kw, N * OH * OW)`` dense-grid
    window matrix (what a fused col2im reads)."""
    kh, kw = kernel
    return col.reshape(-1, kh, kw, n, out_h, out_w).transpose(3, 0, 1, 2, 4, 5)


def _conv_columns(x, kernel: tuple, stride: tuple, pad: tuple):
    """The windows of ``x`` as a ``(C * kh * kw, N * L)`` matrix (im2col on the output grid)."""
    xp = get_array_module(x)
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    out_h, out_w = conv_outsize(h, kh, sh, pad[0]), conv_outsize(w, kw, sw, pad[1])
    padded = _pad_image(x, *pad)
    pitch, length = _output_grid(padded.shape[3], out_h, out_w, stride)
    s_n, s_c, s_h, s_w = padded.strides
    if stride == (1, 1):
        if s_h != pitch * s_w:  # a run crosses rows, which must follow one another in memory
            padded = xp.ascontiguousarray(padded)
            s_n, s_c, s_h, s_w = padded.strides
        shape, strides = (c, kh, kw, n, length), (s_c, s_h, s_w, s_n, s_w)
    else:
        shape = (c, kh, kw, n, out_h, out_w)
        strides = (s_c, s_h, s_w, s_n, s_h * sh, s_w * sw)
    windows = xp.lib.stride_tricks.as_strided(padded, shape=shape, strides=strides)
    # The one copy: merging the channel and kernel axes of the view needs it.
    return windows.reshape(c * kh * kw, n * length)


def _grid_view(matrix, n: int, out_h: int, out_w: int, pitch: int):
    """The ``(N, C, OH, OW)`` view of the output positions of a ``(C, N * L)`` grid matrix."""
    s_c, s_q = matrix.strides
    length = matrix.shape[1] // n
    return get_array_module(matrix).lib.stride_tricks.as_strided(
        matrix,
        shape=(n, matrix.shape[0], out_h, out_w),
        strides=(length * s_q, s_c, pitch * s_q, s_q),
    )


def _grid_matrix(y, pitch: int, swap=None):
    """``y`` of shape ``(N, C, OH, OW)`` as a ``(C, N * L)`` grid matrix, zero off the grid;
    ``swap`` is the backend's fused ``swap_leading_axes``, if any."""
    xp = get_array_module(y)
    n, c, out_h, out_w = y.shape
    if pitch == out_w:
        return (y.transpose(1, 0, 2, 3) if swap is None else swap(y)).reshape(c, -1)
    matrix = xp.zeros((c, n * ((out_h - 1) * pitch + out_w)), dtype=y.dtype)
    _grid_view(matrix, n, out_h, out_w, pitch)[...] = y
    return matrix


def _add_columns(col, image_shape: tuple, kernel: tuple, stride: tuple, pad: tuple):
    """Sum a ``(C * kh * kw, N * L)`` window matrix into an ``(N, C, H, W)`` image (col2im).

    The image is the view of a ``(C, N, H, W)`` array, whose runs follow the matrix's rows,
    so that each of the ``kh * kw`` slice additions reads and writes long matching runs.
    """
    xp = get_array_module(col)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    n, c, h, w = image_shape
    out_h, out_w = conv_outsize(h, kh, sh, ph), conv_outsize(w, kw, sw, pw)
    pitch, length = _output_grid(w + 2 * pw, out_h, out_w, stride)
    img = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=col.dtype)
    if stride == (1, 1):
        runs = img.reshape(c, n, -1)
        col = col.reshape(c, kh, kw, n, length)
        for i in range(kh):
            for j in range(kw):
                start = i * pitch + j
                runs[:, :, start : start + length] += col[:, i, j]
    else:
        col = col.reshape(c, kh, kw, n, out_h, out_w)
        for i, j, window in kernel_offsets(kh, kw, sh, sw, out_h, out_w):
            img[window] += col[:, i, j]
    return unpad(img, ph, pw).transpose(1, 0, 2, 3)


def _zeros_of(xp, shape: tuple, *arrays):
    """Zeros of ``shape`` in the dtype NumPy gives ``arrays`` together: the result of a
    convolution over an empty batch, whose matrices would have no columns to reshape."""
    dtype = np.result_type(*[a.dtype for a in arrays if a is not None])
    return xp.zeros(shape, dtype=dtype)


def _add_channel_bias(y, b):
    """``y + b`` with ``b`` along the channel axis of ``y`` (axis 0 of a 2-D ``y``, else 1);
    in place when that keeps NumPy's dtype."""
    b = b.reshape(-1, 1) if y.ndim == 2 else b.reshape(-1, 1, 1)
    if y.dtype == b.dtype:
        y += b
        return y
    return y + b


class Conv2d(Function):
    needs_inputs = True
    needs_outputs = False

    def __init__(self, stride: tuple, pad: tuple):
        self.stride, self.pad = stride, pad

    def forward(self, x, W, b=None):
        xp = get_array_module(x)
        out_channels, _, kh, kw = W.shape
        n, _, h, w = x.shape
        out_h = conv_outsize(h, kh, self.stride[0], self.pad[0])
        out_w = conv_outsize(w, kw, self.stride[1], self.pad[1])
        if n == 0:
            return _zeros_of(xp, (0, out_channels, out_h, out_w), x, W, b)
        fused = fused_op(xp, "im2col")
        pitch, _ = _output_grid(w + 2 * self.pad[1], out_h, out_w, self.stride, fused)
        if fused is None:
            col = _conv_columns(x, (kh, kw), self.stride, self.pad)
        else:
            col = fused(x, (kh, kw), self.stride, self.pad, _COLUMN_AXES)
            col = col.reshape(x.shape[1] * kh * kw, n * out_h * out_w)
        y = xp.matmul(W.reshape(out_channels, -1), col)
        del col  # the largest temporary: free it before the output is copied
        swap = fused_op(xp, "swap_leading_axes")
        if swap is not None and pitch == out_w and (b is None or b.dtype == y.dtype):
            return swap(y.reshape(out_channels, n, out_h, out_w), b)
        # A contiguous (N, OC, OH, OW) result keeps the elementwise ops and pooling that
        # usually read it next on NumPy's fast paths; the bias is added in the same pass.
        y = _grid_view(y, n, out_h, out_w, pitch)
        if b is None or b.dtype != y.dtype:
            y = xp.ascontiguousarray(y)
            return y if b is None else _add_channel_bias(y, b)
        return xp.add(y, b.reshape(-1, 1, 1), out=xp.empty(y.shape, dtype=y.dtype))

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        b = self.inputs[2] if len(self.inputs) == 3 else None
        # Data (a constant) needs no gradient, which saves a transposed convolution.
        gx = Deconv2d(self.stride, self.pad, x.shape[2:])(gy, W) if x.requires_grad else None
        gW = gb = None
        if W.requires_grad:
            with_bias = b is not None and b.requires_grad
            grad = Conv2dGradW(W.shape[2:], self.stride, self.pad, with_bias)(x, gy)
            gW, gb = grad if with_bias else (grad, None)
        if b is None:
            return grads_like((gx, gW), self.inputs)
        if gb is None and b.requires_grad:
            gb = reduce_sum(gy, axis=(0, 2, 3))
        return grads_like((gx, gW, gb), self.inputs)


class Deconv2d(Function):
    needs_inputs = True
    needs_outputs = False

    def __init__(self, stride: tuple, pad: tuple, outsize: tuple):
        self.stride, self.pad, self.outsize = stride, pad, outsize

    def forward(self, x, W, b=None):
        xp = get_array_module(x)
        in_channels, out_channels, kh, kw = W.shape
        n, _, h, w = x.shape
        if n == 0:
            return _zeros_of(xp, (0, out_channels, *self.outsize), x, W, b)
        fused = fused_op(xp, "col2im")
        # x sits where the convolution this one transposes puts its output: on its grid.
        pitch, _ = _output_grid(self.outsize[1] + 2 * self.pad[1], h, w, self.stride, fused)
        swap = fused_op(xp, "swap_leading_axes")
        col = xp.matmul(W.reshape(in_channels, -1).T, _grid_matrix(x, pitch, swap))
        shape = (n, out_channels, *self.outsize)
        if fused is None:
            y = _add_columns(col, shape, (kh, kw), self.stride, self.pad)
        else:
            y = fused(
                _column_windows(col, n, h, w, (kh, kw)), shape, (kh, kw), self.stride, self.pad
            )
        del col  # the largest temporary: free it before the output is copied
        # Contiguous for the same reason as a convolution's result.
        y = xp.ascontiguousarray(y)
        return y if b is None else _add_channel_bias(y, b)

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        gx = Conv2d(self.stride, self.pad)(gy, W) if x.requires_grad else None
        gW = Conv2dGradW(W.shape[2:], self.stride, self.pad)(gy, x) if W.requires_grad else None
        if len(self.inputs) == 2:
            return grads_like((gx, gW), self.inputs)
        return grads_like((gx, gW, reduce_sum(gy, axis=(0, 2, 3))), self.inputs)


class Conv2dGradW(Function):
    """The gradient of a convolution's weight, ``(OC, C, kh, kw)``, from its input and ``gy``;
    with ``with_bias``, also the gradient of its bias, ``(OC,)``, read off the same matrix."""

    needs_inputs = True
    needs_outputs = False

    def __init__(self, kernel_size: tuple, stride: tuple, pad: tuple, with_bias: bool = False):
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.with_bias = with_bias

    def forward(self, x, gy):
        xp = get_array_module(x)
        channels, w = x.shape[1], x.shape[3]
        out_channels, out_h, out_w = gy.shape[1:]
        if x.shape[0] == 0:  # a sum over no samples
            gW = _zeros_of(xp, (out_channels, channels, *self.kernel_size), x, gy)
            return (gW, _zeros_of(xp, (out_channels,), gy)) if self.with_bias else gW
        fused = fused_op(xp, "im2col")
        pitch, _ = _output_grid(w + 2 * self.pad[1], out_h, out_w, self.stride, fused)
        gy = _grid_matrix(gy, pitch, fused_op(xp, "swap_leading_axes"))
        if fused is None:
            col = _conv_columns(x, self.kernel_size, self.stride, self.pad)
        else:
            col = fused(x, self.kernel_size, self.stride, self.pad, _COLUMN_AXES)
            col = col.reshape(channels * self.kernel_size[0] * self.kernel_size[1], -1)
        # Both factors are long and flat; OpenBLAS runs such a product fastest with the one of
        # more rows on the left (measured: 1.1 ms instead of 1.6 ms for 144 and 32 rows).
        product = xp.matmul(col, gy.T).T if col.shape[0] > gy.shape[0] else xp.matmul(gy, col.T)
        gW = product.reshape(out_channels, channels, *self.kernel_size)
        if not self.with_bias:
            return gW
        # Off the grid gy is zero, so its row sums are the bias gradient.
        return gW, gy.sum(axis=1)

    def backward(self, ggW, ggb=None):
        x, gy = self.inputs
        gx = ggy = None
        if x.requires_grad and ggW is not None:
            gx = Deconv2d(self.stride, self.pad, x.shape[2:])(gy, ggW)
        if gy.requires_grad:
            if ggW is not None:
                conv = Conv2d(self.stride, self.pad)
                ggy = conv(x, ggW) if ggb is None else conv(x, ggW, ggb)
            elif ggb is not None:
                ggy = broadcast_to(reshape(ggb, (1, -1, 1, 1)), gy.shape)
        return gx, ggy


def conv2d(x, W, b=None, stride=1, pad=0) -> Variable:
    """2-D convolution (cross-correlation, as in every deep-learning framework).

    Parameters
    ----------
    x : Variable or array
        Input of shape ``(N, C, H, W)``.
    W : Variable or array
        Filters of shape ``(OC, C, kh, kw)``.
    b : Variable or array, optional
        Bias of shape ``(OC,)``; none when None.
    stride, pad : int or (int, int)
        Step of the window and zero padding along the height and the width.

    Returns
    -------
    Variable
        Shape ``(N, OC, OH, OW)`` with ``OH = (H + 2 * ph - kh) // sh + 1`` and likewise
        ``OW``:
        ``y[n, o, i, j] = b[o] + sum(W[o] * x_padded[n, :, i*sh : i*sh+kh, j*sw : j*sw+kw])``.

    Raises
    ------
    ValueError
        If ``x`` or ``W`` is not 4-D, their channels differ, ``b`` is not ``(OC,)``, or the
        kernel is larger than the padded input.
    """
    x, W = as_variable(x), as_variable(W)
    stride, pad = _pair(stride, "stride", "conv2d", 1), _pair(pad, "pad", "conv2d", 0)
    _check_image(x, "conv2d")
    if W.ndim != 4:
        raise ValueError(
            f"conv2d: expected W of shape (out_channels, in_channels, kh, kw), got {W.shape}"
        )
    if x.shape[1] != W.shape[1]:
        raise ValueError(
            f"conv2d: x of shape {x.shape} has {x.shape[1]} channels but W of shape {W.shape} "
            f"expects {W.shape[1]} (W is (out_channels, in_channels, kh, kw))"
        )
    _check_window(x.shape, W.shape[2:], pad, "conv2d")
    if b is None:
        return Conv2d(stride, pad)(x, W)
    b = as_variable(b, like=x)
    _check_bias(b, W.shape[0], "conv2d", W)
    return Conv2d(stride, pad)(x, W, b)


def deconv2d(x, W, b=None, stride=1, pad=0, outsize=None) -> Variable:
    """2-D transposed convolution (deconvolution): the gradient of :func:`conv2d` for its input.

    Parameters
    ----------
    x : Variable or array
        Input of shape ``(N, C, H, W)``.
    W : Variable or array
        Filters of shape ``(C, OC, kh, kw)`` (input channels first, as in Chainer and PyTorch).
    b : Variable or array, optional
        Bias of shape ``(OC,)``; none when None.
    stride, pad : int or (int, int)
        Stride and padding of the convolution this one transposes.
    outsize : int or (int, int), optional
        Output height and width; by default ``(H - 1) * sh + kh - 2 * ph`` and likewise.  Any
        size a convolution with the same kernel, stride and pad maps back to ``(H, W)`` is
        allowed (up to ``stride - 1`` more than the default).

    Returns
    -------
    Variable
        Shape ``(N, OC, OH, OW)``.

    Raises
    ------
    ValueError
        If ``x`` or ``W`` is not 4-D, their channels differ, ``b`` is not ``(OC,)``, or the
        output size is not positive or inconsistent with ``(H, W)``.
    """
    x, W = as_variable(x), as_variable(W)
    stride, pad = _pair(stride, "stride", "deconv2d", 1), _pair(pad, "pad", "deconv2d", 0)
    _check_image(x, "deconv2d")
    if W.ndim != 4:
        raise ValueError(
            f"deconv2d: expected W of shape (in_channels, out_channels, kh, kw), got {W.shape}"
        )
    if x.shape[1] != W.shape[0]:
        raise ValueError(
            f"deconv2d: x of shape {x.shape} has {x.shape[1]} channels but W of shape {W.shape} "
            f"expects {W.shape[0]} (W is (in_channels, out_channels, kh, kw))"
        )
    kernel = W.shape[2:]
    if outsize is None:
        outsize = tuple(
            deconv_outsize(size, k, s, p) for size, k, s, p in zip(x.shape[2:], kernel, stride, pad)
        )
        if min(outsize) < 1:
            raise ValueError(
                f"deconv2d: the output size {outsize} of x of shape {x.shape} with kernel "
                f"{kernel}, stride {stride} and pad {pad} is not positive"
            )
    else:
        outsize = _pair(outsize, "outsize", "deconv2d", 1)
        back = tuple(conv_outsize(o, k, s, p) for o, k, s, p in zip(outsize, kernel, stride, pad))
        if back != x.shape[2:]:
            raise ValueError(
                f"deconv2d: outsize {outsize} does not fit x of shape {x.shape} with kernel "
                f"{kernel}, stride {stride} and pad {pad}: a convolution maps it to {back}, "
                f"not {x.shape[2:]}"
            )
    if b is None:
        return Deconv2d(stride, pad, outsize)(x, W)
    b = as_variable(b, like=x)
    _check_bias(b, W.shape[1], "deconv2d", W)
    return Deconv2d(stride, pad, outsize)(x, W, b)


# =============================================================================================
# pooling
# =============================================================================================
def _index_dtype(count: int):
    """The smallest integer type that numbers ``count`` kernel offsets."""
    return np.int8 if count <= np.iinfo(np.int8).max else np.int32


class MaxPooling(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, kernel_size: tuple, stride: tuple, pad: tuple):
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad

    def forward(self, x):
        xp = get_array_module(x)
        self.input_shape = x.shape
        kh, kw = self.kernel_size
        count, index_type = kh * kw, _index_dtype(kh * kw)
        fused = fused_op(xp, "max_pooling")
        if fused is not None:
            y, self.indexes = fused(x, self.kernel_size, self.stride, self.pad, index_type)
            return y
        col = im2col_array(x, kh, kw, *self.stride, *self.pad, False, pad_value=_lowest(x.dtype))
        windows = [col[:, :, offset // kw, offset % kw] for offset in range(count)]
        if count == 1:  # the window itself would be a read-only view of the input
            self.indexes = xp.zeros(windows[0].shape, dtype=index_type)
            return windows[0].copy()
        # A running max over the kernel offsets reads the strided view without copying it.
        # ``indexes`` records which offset won each window (the first one on ties, as in
        # PyTorch) for backward; offsets only grow, so ``maximum`` updates it where ``better``
        # holds: plain ufuncs writing into their operands run several times faster than
        # ``where`` or a masked assignment.
        y = xp.maximum(windows[0], windows[1])
        indexes = (windows[1] > windows[0]).astype(index_type)
        better = xp.empty(y.shape, dtype=bool)
        for offset in range(2, count):
            xp.greater(windows[offset], y, out=better)
            xp.maximum(y, windows[offset], out=y)
            xp.maximum(indexes, better * index_type(offset), out=indexes)
        self.indexes = indexes
        return y

    def backward(self, gy):
        return MaxPoolingGrad(self)(gy)


class MaxPoolingGrad(Function):
    """Send each output gradient to the input pixel that won its window (summed on overlaps)."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, pool: MaxPooling):
        self.pool = pool

    def forward(self, gy):
        xp = get_array_module(gy)
        pool = self.pool
        fused = fused_op(xp, "max_pooling_grad")
        if fused is not None:
            return fused(
                gy, pool.indexes, pool.input_shape, pool.kernel_size, pool.stride, pool.pad
            )
        n, c, h, w = pool.input_shape
        (kh, kw), (sh, sw), (ph, pw) = pool.kernel_size, pool.stride, pool.pad
        out_h, out_w = gy.shape[2], gy.shape[3]
        shape = (n, c, h + 2 * ph, w + 2 * pw)
        # Windows that do not overlap are written once each, and when they tile the image
        # there is nothing left to clear beforehand.
        overlap = sh < kh or sw < kw
        tiled = (sh, sw) == (kh, kw) and (out_h * kh, out_w * kw) == shape[2:]
        img = xp.empty(shape, dtype=gy.dtype) if tiled else xp.zeros(shape, dtype=gy.dtype)
        # A product with the mask is much faster than ``where`` (a non-finite gradient then
        # spreads over its window, which only happens once training has diverged anyway).
        for offset, (_, _, window) in enumerate(kernel_offsets(kh, kw, sh, sw, out_h, out_w)):
            if overlap:
                img[window] += (pool.indexes == offset) * gy
            else:
                xp.multiply(pool.indexes == offset, gy, out=img[window])
        return unpad(img, ph, pw)

    def backward(self, ggx):
        return MaxPoolingGather(self.pool)(ggx)


class MaxPoolingGather(Function):
    """Read, for every window, the value at the position that won the max pooling."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, pool: MaxPooling):
        self.pool = pool

    def forward(self, x):
        pool = self.pool
        fused = fused_op(get_array_module(x), "max_pooling_gather")
        if fused is not None:
            return fused(x, pool.indexes, pool.kernel_size, pool.stride, pool.pad)
        kh, kw = pool.kernel_size
        col = im2col_array(x, kh, kw, *pool.stride, *pool.pad, False)
        y = (pool.indexes == 0) * col[:, :, 0, 0]
        for offset in range(1, kh * kw):
            y += (pool.indexes == offset) * col[:, :, offset // kw, offset % kw]
        return y

    def backward(self, gy):
        return MaxPoolingGrad(self.pool)(gy)


class AveragePooling(Function):
    needs_inputs = False
    needs_outputs = False

    def __init__(self, kernel_size: tuple, stride: tuple, pad: tuple):
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad

    def forward(self, x):
        self.input_shape = x.shape
        fused = fused_op(get_array_module(x), "average_pooling")
        if fused is not None:
            return fused(x, self.kernel_size, self.stride, self.pad)
        kh, kw = self.kernel_size
        col = im2col_array(x, kh, kw, *self.stride, *self.pad, False)
        # Adding the kernel offsets one by one is many times faster than reducing the strided
        # view over its kernel axes; integer inputs average to floats, as in NumPy's mean.
        y = col[:, :, 0, 0].astype(np.result_type(x.dtype, 1.0))
        for offset in range(1, kh * kw):
            y += col[:, :, offset // kw, offset % kw]
        y /= kh * kw
        return y

    def backward(self, gy):
        return AveragePoolingGrad(self)(gy)


class AveragePoolingGrad(Function):
    """Spread each output gradient evenly over its window (summed on overlaps)."""

    needs_inputs = False
    needs_outputs = False

    def __init__(self, pool: AveragePooling):
        self.pool = pool

    def forward(self, gy):
        xp = get_array_module(gy)
        pool = self.pool
        (kh, kw), (n, c, out_h, out_w) = pool.kernel_size, gy.shape
        windows = (n, c, kh, kw, out_h, out_w)
        fused = fused_op(xp, "col2im")
        if fused is not None:
            # The division happens in the kernel: a broadcast view of gy is all it reads.
            gcol = xp.broadcast_to(gy.reshape(n, c, 1, 1, out_h, out_w), windows)
            return fused(gcol, pool.input_shape, pool.kernel_size, pool.stride, pool.pad, kh * kw)
        gcol = xp.broadcast_to((gy / (kh * kw)).reshape(n, c, 1, 1, out_h, out_w), windows)
        return col2im_array(gcol, pool.input_shape, kh, kw, *pool.stride, *pool.pad, False)

    def backward(self, ggx):
        # Average pooling is linear, and this is its adjoint: the adjoint of that is itself.
        pool = self.pool
        return AveragePooling(pool.kernel_size, pool.stride, pool.pad)(ggx)


def _pooling_args(x, kernel_size, stride, pad, op: str):
    x = as_variable(x)
    kernel_size = _pair(kernel_size, "kernel_size", op, 1)
    stride = kernel_size if stride is None else _pair(stride, "stride", op, 1)
    pad = _pair(pad, "pad", op, 0)
    _check_image(x, op)
    _check_window(x.shape, kernel_size, pad, op)
    if pad[0] >= kernel_size[0] or pad[1] >= kernel_size[1]:
        raise ValueError(
            f"{op}: pad {pad} must be smaller than kernel_size {kernel_size}, or a window could "
            "hold nothing but padding"
        )
    return x, kernel_size, stride, pad


def max_pooling(x, kernel_size, stride=None, pad=0) -> Variable:
    """2-D max pooling: the largest value of every window.

    Parameters
    ----------
    x : Variable or array
        Input of shape ``(N, C, H, W)``.
    kernel_size : int or (int, int)
        Window height and width.
    stride : int or (int, int), optional
        Step of the window; ``kernel_size`` when None.
    pad : int or (int, int)
        Padding along the height and the width; it never wins a max.

    Returns
    -------
    Variable
        Shape ``(N, C, OH, OW)`` with ``OH = (H + 2 * ph - kh) // sh + 1`` and likewise ``OW``.
        The gradient goes to the first maximal entry of each window.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D, the kernel does not fit in the padded input, or ``pad`` is not
        smaller than ``kernel_size``.
    """
    x, kernel_size, stride, pad = _pooling_args(x, kernel_size, stride, pad, "max_pooling")
    return MaxPooling(kernel_size, stride, pad)(x)


def average_pooling(x, kernel_size, stride=None, pad=0) -> Variable:
    """2-D average pooling: the mean of every window, padding counted as zeros.

    Parameters
    ----------
    x : Variable or array
        Input of shape ``(N, C, H, W)``.
    kernel_size : int or (int, int)
        Window height and width.
    stride : int or (int, int), optional
        Step of the window; ``kernel_size`` when None.
    pad : int or (int, int)
        Zero padding along the height and the width; every window divides by ``kh * kw``
        (PyTorch's ``count_include_pad=True``).

    Returns
    -------
    Variable
        Shape ``(N, C, OH, OW)`` with ``OH = (H + 2 * ph - kh) // sh + 1`` and likewise ``OW``.

    Raises
    ------
    ValueError
        If ``x`` is not 4-D, the kernel does not fit in the padded input, or ``pad`` is not
        smaller than ``kernel_size``.
    """
    x, kernel_size, stride, pad = _pooling_args(x, kernel_size, stride, pad, "average_pooling")
    return AveragePooling(kernel_size, stride, pad)(x)
