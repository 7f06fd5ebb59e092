"""Fused OpenCL kernels of the vision functions: im2col, col2im and pooling, one launch each.

The NumPy path of :mod:`pygrad.functions.vision` reads windows through strided views and
loops over the ``kh * kw`` kernel offsets in Python; here each of those composites is one
kernel.  All of them come from one program per dtype (building a program costs more than the
kernels in it), take their sizes in one argument (see ``kernels._Meta``), and read their inputs
through any strides.  Gradients are gathered per input pixel over the windows that cover it, in the
order of the kernel offsets (the order the NumPy path adds them in), so no atomics are needed
even when windows overlap.

Each work item makes a run of consecutive outputs (an output row, or the innermost window of
an im2col layout): per-element integer divisions, which the compiler cannot vectorise, cost
more than the copy itself.
"""

from __future__ import annotations

import numpy as np

from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.array import empty_array
from pygrad.backends.opencl.fused import register

__all__ = [
    "im2col",
    "col2im",
    "max_pooling",
    "max_pooling_grad",
    "max_pooling_gather",
    "average_pooling",
    "swap_leading_axes",
]

_INDEX_TYPES = ("char", "int")  # the dtypes of max pooling's argmax (see vision._index_dtype)

_META = kernels._Meta(
    ["n", "N", "C", "H", "W", "OH", "OW", "kh", "kw", "sh", "sw", "ph", "pw", "divisor"]
    + ["bias", "bias_off", "in_off"]  # swap_leading_axes adds a bias when ``bias`` is 1
    + [f"in_st{d}" for d in range(6)]
    # im2col: the four outer axes of the output (size, and per unit step the change of the
    # window row, the window column and the input position), then the two inner ones.
    + [f"outer{d}_{field}" for d in range(4) for field in ("size", "row", "col", "at")]
    + ["inner_h", "inner_w", "inner_row", "inner_col"]
)


def _lowest(dtype) -> str:
    """C literal of the value that loses every max (the padding of max pooling)."""
    if dtype.kind == "f":
        return "-INFINITY"
    if dtype.kind in "iu":
        low = int(np.iinfo(dtype).min)
        return f"({low + 1}L - 1)" if low else "0"
    return "0"


CHUNK = 16  # consecutive outputs a work item computes together (see the module docstring)

# Sizes of the window geometry, read once per work item.
_GEOMETRY = "\n".join(
    f"    const long {name} = {_META[name]};"
    for name in ("N", "C", "H", "W", "OH", "OW", "kh", "kw", "sh", "sw", "ph", "pw")
)

# im2col: ``out`` is the contiguous transpose of the (N, C, kh, kw, OH, OW) windows; a work
# item fills one run of its two inner axes, (oh, ow) or (i, j).
_IM2COL = """
__kernel void NAME(__global T* out, __global const T* x, PARAM) {GEOMETRY
    const long item = get_global_id(0);
    if (item >= ITEMS) return;
    long rem = item, row = -ph, col = -pw, at = IN_OFF;
OUTER
    const long inner_h = INNER_H, inner_w = INNER_W, step_r = INNER_ROW, step_c = INNER_COL;
    const long s_h = IN_ST2, s_w = IN_ST3;
    __global T* o = out + item * inner_h * inner_w;
    for (long a = 0; a < inner_h; ++a, o += inner_w) {
        const long r = row + a * step_r;
        const int row_in = r >= 0 && r < H;
        __global const T* line = x + at + r * s_h;
        for (long b0 = 0; b0 < inner_w; b0 += CHUNK) {
            for (int t = 0; t < CHUNK; ++t) {
                const long q = col + (b0 + t) * step_c;
                const T v = row_in && q >= 0 && q < W ? LOAD : 0;
                if (b0 + t < inner_w) o[b0 + t] = v;
            }
        }
    }
}
"""

# A pooling: a work item makes the row (n, c, oh) of the output, CHUNK windows at a time;
# every lane reads its window's entry ``v`` at kernel offset ``k`` (PAD outside the input).
_POOL = """
__kernel void NAME(PARAMS, PARAM) {GEOMETRY
    const long item = get_global_id(0);
    if (item >= ITEMS) return;
    const long oh = item % OH, c = item / OH % C, n = item / OH / C;
    const long base = IN_OFF + n * IN_ST0 + c * IN_ST1, s_h = IN_ST2, s_w = IN_ST3;
    for (long ow0 = 0; ow0 < OW; ow0 += CHUNK) {
        const long o = item * OW + ow0;
        DECLARE
        for (long i = 0; i < kh; ++i) {
            const long r = oh * sh + i - ph;
            const int row_in = r >= 0 && r < H;
            for (long j = 0; j < kw; ++j) {
                const int k = (int)(i * kw + j);
                for (int t = 0; t < CHUNK; ++t) {
                    const long q = (ow0 + t) * sw + j - pw;
                    const T v = row_in && q >= 0 && q < W ? x[base + r * s_h + q * s_w] : PAD;
                    STEP
                }
            }
        }
        for (int t = 0; t < CHUNK; ++t) {
            if (ow0 + t < OW) { STORE }
        }
    }
}
"""

# A gradient: a work item makes the row (n, c, y) of the image, CHUNK pixels at a time; each
# pixel adds TERM(i, j, oh, ow) over the windows that cover it, in increasing kernel offset
# (i, j), the order the NumPy path adds them in, which is decreasing window (oh, ow).  Each
# lane finds the last window column that can cover its pixel with a floating-point product
# (a vector integer division does not exist), then steps back over the ``reach`` windows that
# may cover it, the same number in every lane.
_GATHER = """
__kernel void NAME(__global T* out, PARAMS, PARAM) {GEOMETRY
    const long item = get_global_id(0);
    if (item >= ITEMS) return;
    const long y = item % H, c = item / H % C, n = item / H / C;
    const long at = IN_OFF + n * IN_ST0 + c * IN_ST1;
    PREPARE
    const long py = y + ph;
    const long oh_last = min(py / sh, OH - 1);
    const long oh_first = py >= kh ? (py - kh + sh) / sh : 0;
    const long step_w = STEP_W, reach = (kw + step_w - 1) / step_w;
    // (px + 0.5) / sw stays at least 0.5 / sw away from an integer, far beyond rounding.
    const REAL inv_sw = (REAL)1 / (REAL)step_w;
    for (long x0 = 0; x0 < W; x0 += CHUNK) {
        T acc[CHUNK];
        long last[CHUNK];
        for (int t = 0; t < CHUNK; ++t) {
            acc[t] = 0;
            const long px = x0 + t + pw;
            last[t] = step_w == 1 ? px : (long)(((REAL)px + (REAL)0.5) * inv_sw);
        }
        for (long oh = oh_last; oh >= oh_first; --oh) {
            const long i = py - oh * sh;
            WINDOW_ROW
            for (long m = 0; m < reach; ++m) {
                for (int t = 0; t < CHUNK; ++t) {
                    const long ow = last[t] - m, j = x0 + t + pw - ow * step_w;
                    if (ow >= 0 && ow < OW && j < kw) acc[t] += TERM;
                }
            }
        }
        for (int t = 0; t < CHUNK; ++t) {
            if (x0 + t < W) out[item * W + x0 + t] = acc[t];
        }
    }
}
"""


# The gradient of max pooling whose windows tile the image (stride = kernel, no padding, every
# pixel in one window): a work item scatters one window's gradient to the pixel that won it
# and zeros to the others, with no search over the windows that might cover a pixel.  ``0 +``
# keeps the sign of zero the NumPy path's sum gives.
_TILES = """
__kernel void NAME(__global T* out, PARAMS, PARAM) {GEOMETRY
    const long item = get_global_id(0);
    if (item >= ITEMS) return;
    const long ow = item % OW, rest = item / OW, oh = rest % OH, c = rest / OH % C;
    const long n = rest / OH / C;
    const T g = gy[IN_OFF + n * IN_ST0 + c * IN_ST1 + oh * IN_ST2 + ow * IN_ST3];
    const int won = (int)index[item];
    __global T* o = out + ((n * C + c) * H + oh * kh) * W + ow * kw;
    for (long i = 0; i < kh; ++i)
        for (long j = 0; j < kw; ++j)
            o[i * W + j] = (T)0 + (T)(won == (int)(i * kw + j)) * g;
}
"""


# The first two axes of an (N, C, H, W) input swapped: a work item copies the row (c, n, y)
# of the output, adding ``bias[n]`` when asked to (a convolution's output and its bias).
_SWAP = """
__kernel void NAME(__global T* out, __global const T* x, __global const T* bias, PARAM) {
    const long N = META_N, C = META_C, H = META_H, W = META_W;
    const long item = get_global_id(0);
    if (item >= ITEMS) return;
    const long y = item % H, n = item / H % N, c = item / H / N;
    __global const T* line = x + IN_OFF + n * IN_ST0 + c * IN_ST1 + y * IN_ST2;
    const long s_w = STEP_W;
    __global T* o = out + item * W;
    if (META_BIAS) {
        const T add = bias[META_BIAS_OFF + n];
        for (long x0 = 0; x0 < W; x0 += CHUNK) {
            for (int t = 0; t < CHUNK; ++t) {
                if (x0 + t < W) o[x0 + t] = line[(x0 + t) * s_w] + add;
            }
        }
    } else {
        for (long x0 = 0; x0 < W; x0 += CHUNK) {
            for (int t = 0; t < CHUNK; ++t) {
                if (x0 + t < W) o[x0 + t] = line[(x0 + t) * s_w];
            }
        }
    }
}
"""


def _fill(template: str, **snippets) -> str:
    """``template`` with its upper-case placeholders replaced: first the ``snippets`` (which
    may use the others), then the meta fields."""
    m = _META
    fields = dict(GEOMETRY=_GEOMETRY, PARAM=m.param(), ITEMS=m["n"], DIVISOR=m["divisor"])
    fields.update(IN_OFF=m["in_off"], META_BIAS=m["bias"], META_BIAS_OFF=m["bias_off"])
    fields.update({f"META_{name}": m[name] for name in ("N", "C", "H", "W")})
    fields.update(
        {f"INNER_{name.upper()}": m[f"inner_{name}"] for name in ("h", "w", "row", "col")}
    )
    fields.update({f"IN_ST{d}": m[f"in_st{d}"] for d in range(6)})
    for names in (snippets, fields):
        # Longest names first, so that no placeholder is replaced inside a longer one.
        for name in sorted(names, key=len, reverse=True):
            template = template.replace(name, names[name])
    return template


def _source(dtype, float64: bool) -> str:
    """Every vision kernel for inputs of ``dtype`` (one program); ``float64`` says whether the
    device has doubles."""
    m = _META
    t = kernels.ctype(dtype)
    f = kernels.ctype(np.result_type(dtype, 1.0))  # average pooling's output, as in NumPy
    if f == "double" and not float64:
        f = "float"  # unused: such a device cannot hold the float64 average of integers
    sources = [
        f"typedef {t} T;\ntypedef {f} F;\ntypedef {'double' if float64 else 'float'} REAL;\n",
        f"#define CHUNK {CHUNK}\n#define LOWEST (({t}){_lowest(dtype)})\n",
        f"#define IS_NAN(v) {'((v) != (v))' if dtype.kind == 'f' else '0'}\n",
    ]
    outer = "\n".join(
        f"    {{ const long size = {m[f'outer{d}_size']}, k = rem % size; rem /= size;\n"
        f"      row += k * {m[f'outer{d}_row']}; col += k * {m[f'outer{d}_col']};"
        f" at += k * {m[f'outer{d}_at']}; }}"
        for d in range(3, -1, -1)
    )
    # With unit steps along the window rows (the usual case) the loads are contiguous, which
    # the compiler knows only from a kernel of its own: twice as fast.
    sources.append(_fill(_IM2COL, NAME="im2col", OUTER=outer, LOAD="line[q * s_w]"))
    sources.append(_fill(_IM2COL, NAME="im2col_unit", OUTER=outer, LOAD="line[q]"))
    sources.append(_fill(_SWAP, NAME="swap_leading_axes", STEP_W="IN_ST3"))
    sources.append(_fill(_SWAP, NAME="swap_leading_axes_unit", STEP_W="1"))
    # col2im: the sum of the (N, C, kh, kw, OH, OW) windows (any strides), each divided by
    # ``divisor`` first (average pooling's gradient; 1 otherwise, which changes nothing).
    # A stride-1 convolution's gradient reads runs of its window matrix: a kernel that knows
    # both unit steps at compile time loads them as vectors instead of gathering them.
    for name, step_w, s_ow in (("col2im", "sw", "IN_ST5"), ("col2im_unit", "1", "1")):
        sources.append(
            _fill(
                _GATHER,
                NAME=name,
                PARAMS="__global const T* win",
                PREPARE=f"const long s_i = IN_ST2, s_j = IN_ST3, s_oh = IN_ST4, s_ow = {s_ow};\n"
                "    const T divisor = (T)DIVISOR;",
                WINDOW_ROW="const long at_row = at + i * s_i + oh * s_oh;",
                TERM="win[at_row + j * s_j + ow * s_ow] / divisor",
                STEP_W=step_w,
            )
        )
    for index in _INDEX_TYPES:
        # Forward: the first maximal entry wins, and a NaN wins where it is met, as NumPy's
        # running ``maximum`` and ``greater`` do.
        sources.append(
            _fill(
                _POOL,
                NAME=f"max_pooling_{index}",
                PARAMS=f"__global T* out, __global {index}* index, __global const T* x",
                DECLARE="T best[CHUNK]; int arg[CHUNK];",
                PAD="LOWEST",
                STEP="const int wins = k == 0 || v > best[t];\n"
                "                    best[t] = wins || IS_NAN(v) ? v : best[t];\n"
                "                    arg[t] = wins ? k : arg[t];",
                STORE=f"out[o + t] = best[t]; index[o + t] = ({index})arg[t];",
            )
        )
        # Double backward: each window's value at its argmax, as the NumPy path's sum of
        # mask products (so that a non-finite value spreads over its window alike).
        sources.append(
            _fill(
                _POOL,
                NAME=f"max_pooling_gather_{index}",
                PARAMS=f"__global T* out, __global const T* x, __global const {index}* index",
                DECLARE="T acc[CHUNK]; int arg[CHUNK];\n"
                "        for (int t = 0; t < CHUNK; ++t) {\n"
                "            acc[t] = 0; arg[t] = ow0 + t < OW ? index[o + t] : -1;\n"
                "        }",
                PAD="0",
                STEP="acc[t] += (T)(arg[t] == k) * v;",
                STORE="out[o + t] = acc[t];",
            )
        )
        sources.append(
            _fill(
                _TILES,
                NAME=f"max_pooling_grad_tiles_{index}",
                PARAMS=f"__global const T* gy, __global const {index}* index",
            )
        )
        # Backward: each pixel sums the output gradients of the windows it won.
        sources.append(
            _fill(
                _GATHER,
                NAME=f"max_pooling_grad_{index}",
                PARAMS=f"__global const T* gy, __global const {index}* index",
                PREPARE=f"const long s_oh = IN_ST2, s_ow = IN_ST3;\n"
                f"    __global const {index}* won = index + (n * C + c) * OH * OW;",
                WINDOW_ROW=f"__global const {index}* won_row = won + oh * OW;\n"
                "            const long at_row = at + oh * s_oh;",
                TERM="(T)(won_row[ow] == i * kw + j) * gy[at_row + ow * s_ow]",
                STEP_W="sw",
            )
        )
    sources.append(
        _fill(
            _POOL,
            NAME="average_pooling",
            PARAMS="__global F* out, __global const T* x",
            DECLARE="F acc[CHUNK];",
            PAD="0",
            STEP="acc[t] = k == 0 ? (F)v : acc[t] + (F)v;",
            STORE="out[o + t] = acc[t] / (F)(kh * kw);",
        )
    )
    return "".join(sources)


_KERNELS = [
    f"{name}{variant}"
    for name in ("im2col", "col2im", "swap_leading_axes")
    for variant in ("", "_unit")
]
_KERNELS += ["average_pooling"] + [
    f"{name}_{index_type}"
    for name in ("max_pooling", "max_pooling_grad", "max_pooling_grad_tiles", "max_pooling_gather")
    for index_type in _INDEX_TYPES
]


def _kernel(device, dtype, name: str):
    """Kernel ``name`` of the vision program for ``dtype`` (built with all the others)."""
    key = ("fused_vision", kernels.ctype(dtype))
    extra = [(key + (other,), other) for other in _KERNELS]
    return device.build(
        key + (name,), lambda: _source(np.dtype(dtype), device.supports_float64), name, extra
    )


def _run(name: str, dtype, arrays: list, items: int, values: dict) -> None:
    """Launch kernel ``name`` over ``items`` work items with the meta fields ``values``."""
    if items == 0:
        return
    device = arrays[0]._device
    meta = [0] * _META.size
    values = dict(values, n=items)
    for field, value in values.items():
        meta[_META.index[field]] = value
    args = [a.buffer for a in arrays] + [_META.pack(meta)]
    kernels._launch(_kernel(device, dtype, name), device, items, args)


def _geometry(image_shape, out_hw, kernel_size, stride, pad) -> dict:
    n, c, h, w = image_shape
    return dict(
        N=n, C=c, H=h, W=w, OH=out_hw[0], OW=out_hw[1], kh=kernel_size[0], kw=kernel_size[1],
        sh=stride[0], sw=stride[1], ph=pad[0], pw=pad[1],
    )  # fmt: skip


def _outsize(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def _input(a, values: dict) -> dict:
    """``values`` with the offset and element strides of input ``a``."""
    values = dict(values, in_off=a.offset)
    values.update({f"in_st{d}": s for d, s in enumerate(a.element_strides)})
    return values


def _index_ctype(indexes) -> str:
    ct = kernels.ctype(indexes.dtype)
    if ct not in _INDEX_TYPES:
        raise TypeError(f"opencl max pooling: argmax of dtype {indexes.dtype} is not supported")
    return ct


@register("im2col")
def im2col(x, kernel_size: tuple, stride: tuple, pad: tuple, axes: tuple):
    """The windows of ``x``, ``(N, C, kh, kw, OH, OW)``, transposed by ``axes`` into a new
    contiguous array (zero padding).

    ``axes`` must end with ``(4, 5)`` (the window positions) or ``(2, 3)`` (the kernel
    offsets): a work item writes one run of those two axes.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, pad
    n, c, h, w = x.shape
    out_h, out_w = _outsize(h, kh, sh, ph), _outsize(w, kw, sw, pw)
    s_n, s_c, s_h, s_w = x.element_strides
    # Per window axis: size, and the change of window row, window column and input position.
    steps = [(n, 0, 0, s_n), (c, 0, 0, s_c), (kh, 1, 0, 0), (kw, 0, 1, 0)]
    steps += [(out_h, sh, 0, 0), (out_w, 0, sw, 0)]
    axes = tuple(axes)
    if sorted(axes) != list(range(6)) or axes[4:] not in ((4, 5), (2, 3)):
        raise ValueError(f"opencl im2col: axes must end with (4, 5) or (2, 3), got {axes}")
    shape = tuple(steps[a][0] for a in axes)
    out = empty_array(shape, x.dtype, x._device)
    values = _input(x, _geometry(x.shape, (out_h, out_w), kernel_size, stride, pad))
    for d, axis in enumerate(axes[:4]):
        for field, value in zip(("size", "row", "col", "at"), steps[axis]):
            values[f"outer{d}_{field}"] = value
    inner_h, inner_w = steps[axes[4]], steps[axes[5]]
    values.update(inner_h=inner_h[0], inner_w=inner_w[0], inner_row=inner_h[1])
    values["inner_col"] = inner_w[2]
    name = "im2col_unit" if inner_w[2] * s_w == 1 else "im2col"
    _run(name, x.dtype, [out, x], out.size // max(inner_h[0] * inner_w[0], 1), values)
    return out


@register("col2im")
def col2im(windows, image_shape: tuple, kernel_size: tuple, stride: tuple, pad: tuple, divisor=1):
    """Sum the ``(N, C, kh, kw, OH, OW)`` ``windows`` (any strides, broadcast too) into a new
    contiguous ``image_shape`` image, each entry divided by the integer ``divisor`` first;
    entries on the padding are dropped."""
    out = empty_array(image_shape, windows.dtype, windows._device)
    values = _geometry(image_shape, windows.shape[4:], kernel_size, stride, pad)
    values = _input(windows, dict(values, divisor=int(divisor)))
    n, c, h, _ = image_shape
    name = "col2im_unit" if stride[1] == 1 and windows.element_strides[5] == 1 else "col2im"
    _run(name, windows.dtype, [out, windows], n * c * h, values)
    return out


@register("max_pooling")
def max_pooling(x, kernel_size: tuple, stride: tuple, pad: tuple, index_dtype):
    """Max pooling of ``x`` (padding never wins): ``(y, indexes)``, where ``indexes`` (of
    ``index_dtype``, int8 or int32) holds the kernel offset ``i * kw + j`` of the first maximum
    of each window."""
    n, c, h, w = x.shape
    out_hw = tuple(_outsize(s, k, st, p) for s, k, st, p in zip((h, w), kernel_size, stride, pad))
    y = empty_array((n, c) + out_hw, x.dtype, x._device)
    indexes = empty_array(y.shape, index_dtype, x._device)
    values = _input(x, _geometry(x.shape, out_hw, kernel_size, stride, pad))
    name = f"max_pooling_{_index_ctype(indexes)}"
    _run(name, x.dtype, [y, indexes, x], n * c * out_hw[0], values)
    return y, indexes


@register("max_pooling_grad")
def max_pooling_grad(gy, indexes, image_shape: tuple, kernel_size: tuple, stride, pad):
    """The gradient of max pooling for its input, ``image_shape``: each pixel sums the entries
    of ``gy`` (any strides) whose windows it won, as recorded in ``indexes``."""
    indexes = indexes.xp.ascontiguousarray(indexes)
    gx = empty_array(image_shape, gy.dtype, gy._device)
    values = _input(gy, _geometry(image_shape, gy.shape[2:], kernel_size, stride, pad))
    n, c, h, w = image_shape
    out_h, out_w = gy.shape[2:]
    index = _index_ctype(indexes)
    tiles = tuple(stride) == tuple(kernel_size) and not any(pad)
    if tiles and (h, w) == (out_h * kernel_size[0], out_w * kernel_size[1]):
        _run(f"max_pooling_grad_tiles_{index}", gy.dtype, [gx, gy, indexes], gy.size, values)
    else:
        _run(f"max_pooling_grad_{index}", gy.dtype, [gx, gy, indexes], n * c * h, values)
    return gx


@register("max_pooling_gather")
def max_pooling_gather(x, indexes, kernel_size: tuple, stride: tuple, pad: tuple):
    """For every window of ``x`` (zero padding), its value at the offset in ``indexes``."""
    indexes = indexes.xp.ascontiguousarray(indexes)
    y = empty_array(indexes.shape, x.dtype, x._device)
    values = _input(x, _geometry(x.shape, indexes.shape[2:], kernel_size, stride, pad))
    n, c, out_h, _ = indexes.shape
    name = f"max_pooling_gather_{_index_ctype(indexes)}"
    _run(name, x.dtype, [y, x, indexes], n * c * out_h, values)
    return y


@register("average_pooling")
def average_pooling(x, kernel_size: tuple, stride: tuple, pad: tuple):
    """The mean of every window of ``x``, zero padding included (float, as NumPy's mean)."""
    n, c, h, w = x.shape
    out_hw = tuple(_outsize(s, k, st, p) for s, k, st, p in zip((h, w), kernel_size, stride, pad))
    y = empty_array((n, c) + out_hw, np.result_type(x.dtype, 1.0), x._device)
    values = _input(x, _geometry(x.shape, out_hw, kernel_size, stride, pad))
    _run("average_pooling", x.dtype, [y, x], n * c * out_hw[0], values)
    return y


@register("swap_leading_axes")
def swap_leading_axes(x, bias=None):
    """``x`` of shape ``(N, C, H, W)`` (any strides) as a new contiguous ``(C, N, H, W)`` array,
    plus ``bias[n]`` along its axis 1 when ``bias`` (of shape ``(N,)`` and ``x``'s dtype) is
    given: a convolution's ``(OC, N * L)`` product made its ``(N, OC, OH, OW)`` output, or an
    output made the product's layout."""
    n, c, h, w = x.shape
    out = empty_array((c, n, h, w), x.dtype, x._device)
    values = _input(x, dict(N=n, C=c, H=h, W=w, bias=int(bias is not None)))
    name = "swap_leading_axes_unit" if x.element_strides[3] == 1 else "swap_leading_axes"
    if bias is None:
        bias = x  # not read
    else:
        bias = bias.xp.ascontiguousarray(bias)
        values["bias_off"] = bias.offset
    _run(name, x.dtype, [out, x, bias], c * n * h, values)
    return out
