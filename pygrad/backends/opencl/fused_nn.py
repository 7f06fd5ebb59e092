"""Fused kernels for the hot composites of a training step: activation backward passes, softmax
cross entropy, batch normalisation, dropout and range checks of labels and targets.

Each replaces a chain of elementwise kernels and reductions (and, for the checks, a blocking
read of a minimum and a maximum) with one or two launches.  The kernels of one float dtype live
in one program, generated from the templates below and built the first time any of them runs.
Integer arguments travel in one :class:`~.kernels._Meta` struct, float ones in a small struct
of the float type.  Inputs the kernels do not expect (other dtypes, broadcast gradients) are
handled with the array module's ordinary calls, so every registered function is exact for any
input.  A bad label or target sets the device's error flag (see ``Device.defer_error``): the
error is raised at the next host read instead of making the host wait here.
"""

from __future__ import annotations

import functools

import numpy as np

from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.array import empty_array
from pygrad.backends.opencl.fused import register
from pygrad.backends.opencl.kernels import _launch, _Meta, ctype

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
    "check_int_range",
    "check_unit_interval",
    "batch_norm_forward",
    "batch_norm_backward",
    "layer_norm_forward",
    "layer_norm_backward",
    "dropout",
]

_LABEL_TYPES = ("long", "int")  # other integer labels are converted to int64 first

# --- integer arguments of each kernel ---------------------------------------------------------
_ELEMENTWISE = _Meta(["n", "a_off", "b_off", "c_off"])
_ROWS = _Meta(["n", "classes", "a_off", "b_off"])
_SCE_ROWS = _Meta(["n", "classes", "x_off", "x_rs", "t_off", "err"])
_SCE_TOTAL = _Meta(["n"])
_SCE_BACKWARD = _Meta(["n", "classes", "t_off", "gy_off"])
_CHECK = _Meta(["n", "off", "high", "err"])
_BN_STATS = _Meta(["channels", "spatial", "count", "x_off", "update"])
_BN_APPLY = _Meta(["n", "channels", "spatial", "x_off"])
_BN_SUMS = _Meta(["channels", "spatial", "count", "gy_off"])
_DROPOUT = _Meta(["n", "x_off", "seed", "counter"])
# Float arguments (eps, decay, a slope, a dropout rate ...) in a struct of the float type.
_FLOATS = 4


def _float_struct(t: str) -> str:
    return (
        f"#ifndef PYGRAD_FLOATS_{t}\n#define PYGRAD_FLOATS_{t}\n"
        f"typedef struct {{ {t} v[{_FLOATS}]; }} floats_{t};\n#endif\n"
    )


def _floats(dtype, *values) -> np.ndarray:
    return np.array(list(values) + [0] * (_FLOATS - len(values)), dtype=dtype)


# --- templates --------------------------------------------------------------------------------
def _activation_source(t: str) -> str:
    m = _ELEMENTWISE
    head = (
        f"__global {t}* gx, __global const {t}* a, __global const {t}* b, "
        f"__global const {t}* c, const floats_{t} f, {m.param()}"
    )
    prologue = (
        f"    const long i = get_global_id(0);\n    if (i >= {m['n']}) return;\n"
        f"    const {t} ga = a[{m['a_off']} + i], vb = b[{m['b_off']} + i];\n"
    )
    third = f"    const {t} vc = c[{m['c_off']} + i];\n"
    # The products mirror the NumPy formulas of the functions term by term (``gy * mask``
    # rather than a select), so that NaNs and signed zeros come out alike.  ``a`` is the
    # output's gradient; ``b`` and ``c`` are what the function keeps.
    bodies = {
        "relu_backward": f"gx[i] = ga * ({t})(vb > 0);",
        "leaky_relu_backward": f"gx[i] = ga * (vb > 0 ? ({t})1 : f.v[0]);",
        "sigmoid_backward": f"gx[i] = ga * vb * (({t})1 - vb);",
        "tanh_backward": f"gx[i] = ga * (({t})1 - vb * vb);",
        # b: the input, c: the output; below 0 the slope alpha * exp(x) is y + alpha.
        "elu_backward": f"{third}    gx[i] = vb > 0 ? ga : ga * (vc + f.v[0]);",
        # b: the input, c: Phi(input) kept by forward.
        "gelu_backward": f"{third}    gx[i] = ga * (vc + vb * (exp(vb * vb * ({t})-0.5) * f.v[0]));",
    }
    source = "".join(
        f"__kernel void {name}({head}) {{\n{prologue}    {body}\n}}\n"
        for name, body in bodies.items()
    )
    # Forward passes: y from x, the formulas of the NumPy paths (NaNs propagate alike).
    forwards = {
        # With e = exp(-|x|) <= 1 nothing overflows (see Sigmoid.forward).
        "sigmoid_forward": f"const {t} e = exp(-fabs(v)), r = 1 / (1 + e);"
        " y[i] = v >= 0 ? r : e * r;",
        "leaky_relu_forward": "y[i] = v > 0 ? v : v * f.v[0];",
        "elu_forward": f"y[i] = v > 0 ? v : expm1(v < 0 || isnan(v) ? v : ({t})0) * f.v[0];",
    }
    head = f"__global {t}* y, __global const {t}* x, const floats_{t} f, {m.param()}"
    source += "".join(
        f"__kernel void {name}({head}) {{\n"
        f"    const long i = get_global_id(0);\n    if (i >= {m['n']}) return;\n"
        f"    const {t} v = x[{m['a_off']} + i];\n    {body}\n}}\n"
        for name, body in forwards.items()
    )
    # Phi(x) = erfc(-x / sqrt(2)) / 2 keeps its relative precision in the lower tail.
    return source + f"""
__kernel void gelu_forward(__global {t}* y, __global {t}* cdf, __global const {t}* x,
        const floats_{t} f, {m.param()}) {{
    const long i = get_global_id(0);
    if (i >= {m['n']}) return;
    const {t} v = x[{m['a_off']} + i];
    const {t} p = ({t})0.5 * erfc(-v * f.v[0]);
    cdf[i] = p;
    y[i] = v * p;
}}
"""


def _softmax_cross_entropy_source(t: str, group: int) -> str:
    rows, total, back = _SCE_ROWS, _SCE_TOTAL, _SCE_BACKWARD
    source = ""
    for lt in _LABEL_TYPES:
        source += f"""
__kernel void sce_rows_{lt}(__global {t}* probs, __global {t}* losses,
        __global const {t}* x, __global const {lt}* labels, volatile __global int* error,
        {rows.param()}) {{
    const long row = get_global_id(0);
    if (row >= {rows['n']}) return;
    const long classes = {rows['classes']};
    __global const {t}* xr = x + {rows['x_off']} + row * {rows['x_rs']};
    __global {t}* pr = probs + row * classes;
    {t} top = xr[0];
    for (long c = 1; c < classes; ++c) top = fmax(top, xr[c]);
    {t} sum = 0;
    for (long c = 0; c < classes; ++c) {{ const {t} e = exp(xr[c] - top); pr[c] = e; sum += e; }}
    for (long c = 0; c < classes; ++c) pr[c] /= sum;
    const long label = (long)labels[{rows['t_off']} + row];
    if (label < 0 || label >= classes) {{
        atomic_cmpxchg(error, 0, (int){rows['err']});
        losses[row] = NAN;
        return;
    }}
    losses[row] = log(sum) - (xr[label] - top);
}}
__kernel void sce_backward_{lt}(__global {t}* gx, __global const {t}* probs,
        __global const {lt}* labels, __global const {t}* gy, const floats_{t} f,
        {back.param()}) {{
    const long i = get_global_id(0);
    if (i >= {back['n']}) return;
    const long classes = {back['classes']};
    const long label = (long)labels[{back['t_off']} + i / classes];
    const {t} scale = gy[{back['gy_off']}] * f.v[0];
    gx[i] = (probs[i] - ({t})(i % classes == label)) * scale;
}}
"""
    # The batch mean in one work group: a fixed order of additions, so the loss is the same
    # from run to run (atomic additions would not be).
    source += f"""
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void sce_total(__global {t}* out, __global const {t}* losses, const floats_{t} f,
        {total.param()}) {{
    __local {t} partial[{group}];
    const int lid = get_local_id(0);
    {t} acc = 0;
    for (long i = lid; i < {total['n']}; i += {group}) acc += losses[i];
    partial[lid] = acc;
{_group_sum("partial", group)}
    if (lid == 0) out[0] = partial[0] * f.v[0];
}}
"""
    return source


def _group_sum(names: str, group: int) -> str:
    """Tree reduction of the local arrays ``names`` (comma-separated) into element 0."""
    adds = " ".join(f"{a}[lid] += {a}[lid + s];" for a in names.split(", "))
    return (
        "    barrier(CLK_LOCAL_MEM_FENCE);\n"
        f"    for (int s = {group} / 2; s > 0; s >>= 1) {{\n"
        f"        if (lid < s) {{ {adds} }}\n"
        "        barrier(CLK_LOCAL_MEM_FENCE);\n    }\n"
    )


def _check_source(t: str) -> str:
    m = _CHECK
    source = ""
    for lt in _LABEL_TYPES:
        source += f"""
__kernel void check_range_{lt}(__global const {lt}* v, volatile __global int* error,
        {m.param()}) {{
    const long i = get_global_id(0);
    if (i >= {m['n']}) return;
    const long value = (long)v[{m['off']} + i];
    if (value < 0 || value >= {m['high']}) atomic_cmpxchg(error, 0, (int){m['err']});
}}
"""
    source += f"""
__kernel void check_unit_interval(__global const {t}* v, volatile __global int* error,
        {m.param()}) {{
    const long i = get_global_id(0);
    if (i >= {m['n']}) return;
    const {t} value = v[{m['off']} + i];
    if (value < 0 || value > 1) atomic_cmpxchg(error, 0, (int){m['err']});
}}
"""
    return source


def _channel_loop(group: int, body: str) -> str:
    """A loop of work item ``lid`` over its share of channel ``c`` of an (N, C, spatial)
    array; ``body`` reads element ``j``.

    Each work item takes one contiguous run of the channel's ``count`` values: on CPU drivers,
    which run a group's items one after another, that reads memory in order (items striding
    by the group size would fetch every cache line once per item).
    """
    return f"""    {{
        const long chunk = (count + {group} - 1) / {group};
        const long k0 = min(lid * chunk, count), k1 = min(k0 + chunk, count);
        long s = k0 % spatial, j = ((k0 / spatial) * channels + c) * spatial + s;
        for (long k = k0; k < k1; ++k) {{
            {body}
            ++j;
            if (++s == spatial) {{ s = 0; j += (channels - 1) * spatial; }}
        }}
    }}"""


def _batch_norm_source(t: str, group: int) -> str:
    stats, apply, sums = _BN_STATS, _BN_APPLY, _BN_SUMS
    return f"""
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void bn_stats(__global {t}* mean_out, __global {t}* var_out, __global {t}* inv_std_out,
        __global {t}* running_mean,
        __global {t}* running_var, __global const {t}* x, const floats_{t} f,
        {stats.param()}) {{
    __local {t} partial[{group}];
    const long c = get_group_id(0);
    const int lid = get_local_id(0);
    const long channels = {stats['channels']}, spatial = {stats['spatial']};
    const long count = {stats['count']};
    __global const {t}* xs = x + {stats['x_off']};
    {t} acc = 0;
{_channel_loop(group, "acc += xs[j];")}
    partial[lid] = acc;
{_group_sum("partial", group)}
    const {t} mean = partial[0] / count;
    barrier(CLK_LOCAL_MEM_FENCE);
    acc = 0;
{_channel_loop(group, f"const {t} d = xs[j] - mean; acc += d * d;")}
    partial[lid] = acc;
{_group_sum("partial", group)}
    if (lid != 0) return;
    const {t} var = partial[0] / count;
    mean_out[c] = mean;
    var_out[c] = var;
    inv_std_out[c] = 1 / sqrt(var + f.v[0]);
    if ({stats['update']}) {{
        const {t} decay = f.v[1];
        running_mean[c] = running_mean[c] * decay + (1 - decay) * mean;
        // The running variance is the unbiased estimate, as in Chainer and PyTorch.
        running_var[c] = running_var[c] * decay + (1 - decay) * count / (count - 1) * var;
    }}
}}
__kernel void bn_apply(__global {t}* y, __global {t}* x_hat, __global const {t}* x,
        __global const {t}* mean, __global const {t}* inv_std, __global const {t}* gamma,
        __global const {t}* beta, {apply.param()}) {{
    const long i = get_global_id(0);
    if (i >= {apply['n']}) return;
    const long c = (i / {apply['spatial']}) % {apply['channels']};
    const {t} h = (x[{apply['x_off']} + i] - mean[c]) * inv_std[c];
    x_hat[i] = h;
    y[i] = h * gamma[c] + beta[c];
}}
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void bn_grad_sums(__global {t}* g_gamma, __global {t}* g_beta, __global const {t}* gy,
        __global const {t}* x_hat, {sums.param()}) {{
    __local {t} partial_g[{group}], partial_gh[{group}];
    const long c = get_group_id(0);
    const int lid = get_local_id(0);
    const long channels = {sums['channels']}, spatial = {sums['spatial']};
    const long count = {sums['count']};
    __global const {t}* g = gy + {sums['gy_off']};
    {t} acc_g = 0, acc_gh = 0;
{_channel_loop(group, "acc_g += g[j]; acc_gh += g[j] * x_hat[j];")}
    partial_g[lid] = acc_g;
    partial_gh[lid] = acc_gh;
{_group_sum("partial_g, partial_gh", group)}
    if (lid == 0) {{ g_beta[c] = partial_g[0]; g_gamma[c] = partial_gh[0]; }}
}}
__kernel void bn_backward(__global {t}* gx, __global const {t}* gy, __global const {t}* x_hat,
        __global const {t}* inv_std, __global const {t}* gamma, __global const {t}* g_gamma,
        __global const {t}* g_beta, {apply.param()}) {{
    const long i = get_global_id(0);
    if (i >= {apply['n']}) return;
    const long c = (i / {apply['spatial']}) % {apply['channels']};
    const long count = {apply['n']} / {apply['channels']};
    const {t} mean_g = g_beta[c] / count, mean_g_x_hat = g_gamma[c] / count;
    gx[i] = (gamma[c] * inv_std[c])
        * (gy[{apply['x_off']} + i] - mean_g - x_hat[i] * mean_g_x_hat);
}}
"""


def _layer_norm_source(t: str, group: int) -> str:
    """Layer norm of (R, D) rows; the statistics of row r come from ``bn_stats`` on the (1, R, D)
    view and the parameter gradients from ``bn_grad_sums`` on the (R, D, 1) view."""
    apply, sums = _BN_APPLY, _BN_SUMS
    return f"""
__kernel void ln_apply(__global {t}* y, __global {t}* x_hat, __global const {t}* x,
        __global const {t}* mean, __global const {t}* inv_std, __global const {t}* gamma,
        __global const {t}* beta, {apply.param()}) {{
    const long i = get_global_id(0);
    if (i >= {apply['n']}) return;
    const long r = i / {apply['spatial']}, d = i % {apply['spatial']};
    const {t} h = (x[{apply['x_off']} + i] - mean[r]) * inv_std[r];
    x_hat[i] = h;
    y[i] = h * gamma[d] + beta[d];
}}
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void ln_row_sums(__global {t}* sum_g, __global {t}* sum_gh, __global const {t}* gy,
        __global const {t}* x_hat, __global const {t}* gamma, {sums.param()}) {{
    __local {t} partial_g[{group}], partial_gh[{group}];
    const long c = get_group_id(0);
    const int lid = get_local_id(0);
    const long channels = {sums['channels']}, spatial = {sums['spatial']};
    const long count = {sums['count']};
    __global const {t}* g = gy + {sums['gy_off']};
    {t} acc_g = 0, acc_gh = 0;
{_channel_loop(group, f"const {t} gg = g[j] * gamma[s]; acc_g += gg; acc_gh += gg * x_hat[j];")}
    partial_g[lid] = acc_g;
    partial_gh[lid] = acc_gh;
{_group_sum("partial_g, partial_gh", group)}
    if (lid == 0) {{ sum_g[c] = partial_g[0]; sum_gh[c] = partial_gh[0]; }}
}}
__kernel void ln_backward(__global {t}* gx, __global const {t}* gy, __global const {t}* x_hat,
        __global const {t}* inv_std, __global const {t}* gamma, __global const {t}* sum_g,
        __global const {t}* sum_gh, {apply.param()}) {{
    const long i = get_global_id(0);
    if (i >= {apply['n']}) return;
    const long size = {apply['spatial']}, r = i / size, d = i % size;
    // A statement of its own: contracted into a fused multiply-add with the subtraction,
    // g * gamma - mean(g * gamma) would not cancel exactly where the row is constant.
    const {t} g_x_hat = gy[{apply['x_off']} + i] * gamma[d];
    gx[i] = inv_std[r] * (g_x_hat - sum_g[r] / size - x_hat[i] * (sum_gh[r] / size));
}}
"""


def _softmax_source(t: str) -> str:
    """Softmax and log-softmax over the last axis of contiguous (R, C) rows, one work item per
    row, forward and backward."""
    m = _ROWS
    head = f"__global {t}* out, __global const {t}* a, __global const {t}* b, {m.param()}"
    prologue = f"""    const long row = get_global_id(0);
    if (row >= {m['n']}) return;
    const long classes = {m['classes']};
    __global const {t}* ar = a + {m['a_off']} + row * classes;
    __global const {t}* br = b + {m['b_off']} + row * classes;
    __global {t}* o = out + row * classes;
"""
    top = f"""    {t} top = ar[0];
    for (long c = 1; c < classes; ++c) top = fmax(top, ar[c]);
    {t} sum = 0;
"""
    bodies = {
        # a: the input (b unused)
        "softmax_rows": top
        + f"""    for (long c = 0; c < classes; ++c) {{ const {t} e = exp(ar[c] - top); o[c] = e; sum += e; }}
    for (long c = 0; c < classes; ++c) o[c] /= sum;""",
        "log_softmax_rows": top
        + f"""    for (long c = 0; c < classes; ++c) sum += exp(ar[c] - top);
    const {t} log_sum = log(sum);
    for (long c = 0; c < classes; ++c) o[c] = (ar[c] - top) - log_sum;""",
        # a: the output's gradient, b: the softmax
        "softmax_backward_rows": f"""    {t} sum = 0;
    for (long c = 0; c < classes; ++c) {{ const {t} g = br[c] * ar[c]; o[c] = g; sum += g; }}
    for (long c = 0; c < classes; ++c) o[c] -= br[c] * sum;""",
        # a: the output's gradient, b: the log-softmax
        "log_softmax_backward_rows": f"""    {t} sum = 0;
    for (long c = 0; c < classes; ++c) sum += ar[c];
    for (long c = 0; c < classes; ++c) o[c] = ar[c] - exp(br[c]) * sum;""",
    }
    return "".join(
        f"__kernel void {name}({head}) {{\n{prologue}{body}\n}}\n" for name, body in bodies.items()
    )


def _dropout_source(t: str) -> str:
    m = _DROPOUT
    uniform = "_uniform_float" if t == "float" else "_uniform_double"
    return f"""
__kernel void dropout(__global {t}* y, __global {t}* mask, __global const {t}* x,
        const floats_{t} f, {m.param()}) {{
    const long i = get_global_id(0);
    if (i >= {m['n']}) return;
    const {t} u = {uniform}((ulong){m['seed']}, (ulong){m['counter']} + (ulong)i);
    const {t} keep = (u >= f.v[0]) ? f.v[1] : ({t})0;
    mask[i] = keep;
    y[i] = x[{m['x_off']} + i] * keep;
}}
"""


_NAMES = (
    ["relu_backward", "leaky_relu_backward", "sigmoid_backward", "tanh_backward", "sce_total"]
    + ["elu_backward", "gelu_backward", "gelu_forward"]
    + ["sigmoid_forward", "leaky_relu_forward", "elu_forward"]
    + ["ln_apply", "ln_row_sums", "ln_backward"]
    + ["softmax_rows", "log_softmax_rows", "softmax_backward_rows", "log_softmax_backward_rows"]
    + [
        f"{kind}_{lt}"
        for kind in ("sce_rows", "sce_backward", "check_range")
        for lt in _LABEL_TYPES
    ]
    + ["check_unit_interval", "bn_stats", "bn_apply", "bn_grad_sums", "bn_backward", "dropout"]
)


def _kernel(device, dtype, name: str):
    """Kernel ``name`` of the program for float ``dtype``; the first call builds all of them."""
    t = ctype(dtype)
    group = min(kernels.GROUP, device.max_work_group_size)

    def source():
        metas = (_ELEMENTWISE, _ROWS, _SCE_ROWS, _SCE_TOTAL, _SCE_BACKWARD, _CHECK, _BN_STATS)
        metas += (_BN_APPLY, _BN_SUMS, _DROPOUT)
        typedefs = "".join({m.size: m.typedef() for m in metas}.values())
        return (
            kernels._preamble(device)
            + typedefs
            + _float_struct(t)
            + _activation_source(t)
            + _softmax_cross_entropy_source(t, group)
            + _check_source(t)
            + _batch_norm_source(t, group)
            + _layer_norm_source(t, group)
            + _softmax_source(t)
            + _dropout_source(t)
        )

    extra = [(("fused_nn", t, other), other) for other in _NAMES]
    return device.build(("fused_nn", t, name), source, name, extra)


def _group_launch(kernel, device, groups: int, args) -> None:
    """``groups`` work groups of the fixed size the reduction kernels are compiled for."""
    group = min(kernels.GROUP, device.max_work_group_size)
    kernel(device.queue, (groups * group,), (group,), *args)


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
        args = [gx.buffer, gy.buffer, b.buffer, c.buffer, _floats(b.dtype, parameter), values]
        _launch(_kernel(device, b.dtype, name), device, gx.size, args)
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
        args = [y.buffer, x.buffer, _floats(x.dtype, parameter), values]
        _launch(_kernel(device, x.dtype, f"{name}_forward"), device, x.size, args)
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
        args = [y.buffer, cdf.buffer, x.buffer, _floats(x.dtype, _INV_SQRT_2), values]
        _launch(_kernel(device, x.dtype, "gelu_forward"), device, x.size, args)
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
        _launch(_kernel(device, a.dtype, f"{name}_rows"), device, rows, args)
    return out


for _name in ("softmax", "log_softmax", "softmax_backward", "log_softmax_backward"):
    register(f"{_name}_rows")(functools.partial(softmax_rows, _name))


# --- softmax cross entropy --------------------------------------------------------------------
def _labels(labels):
    if ctype(labels.dtype) not in _LABEL_TYPES:
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
    rows = _kernel(device, x.dtype, f"sce_rows_{ctype(labels.dtype)}")
    args = [probs.buffer, losses.buffer, x.buffer, labels.buffer, device.error_flag()]
    _launch(rows, device, n, args + [_Meta.pack(values)])
    total = _kernel(device, x.dtype, "sce_total")
    args = [loss.buffer, losses.buffer, _floats(x.dtype, 1.0 / n), _Meta.pack([n])]
    _group_launch(total, device, 1, args)
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
    kernel = _kernel(device, probs.dtype, f"sce_backward_{ctype(labels.dtype)}")
    values = _Meta.pack([gx.size, classes, labels.offset, gy.offset])
    args = [gx.buffer, probs.buffer, labels.buffer, gy.buffer, _floats(probs.dtype, 1.0 / n)]
    _launch(kernel, device, gx.size, args + [values])
    return gx


# --- range checks that report at the next host read -------------------------------------------
def _check(name: str, values, high: int, error: str) -> None:
    values = _contiguous(values)
    if values.size == 0:
        return
    device = values._device
    code = device.defer_error(ValueError, error)
    float_dtype = values.dtype if values.dtype.kind == "f" else np.float32
    kernel = _kernel(device, float_dtype, name)
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
    args += [_floats(dtype, eps, decay), values]
    _group_launch(_kernel(device, dtype, "bn_stats"), device, channels, args)
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
    _launch(_kernel(device, dtype, "bn_apply"), device, x.size, args)
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
    _group_launch(_kernel(device, dtype, "bn_grad_sums"), device, channels, args)
    gx = empty_array(x_hat.shape, dtype, device)
    values = _Meta.pack([gx.size, channels, spatial, gy.offset])
    args = [gx.buffer, gy.buffer, x_hat.buffer, inv_std.buffer, _vector(gamma, dtype).buffer]
    args += [g_gamma.buffer, g_beta.buffer, values]
    _launch(_kernel(device, dtype, "bn_backward"), device, gx.size, args)
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
    args += [_floats(dtype, eps), values]
    _group_launch(_kernel(device, dtype, "bn_stats"), device, rows, args)
    values = _Meta.pack([x.size, rows, size, x.offset])
    args = [y.buffer, x_hat.buffer, x.buffer, mean.buffer, inv_std.buffer]
    args += [_vector(gamma, dtype).buffer, _vector(beta, dtype).buffer, values]
    _launch(_kernel(device, dtype, "ln_apply"), device, x.size, args)
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
    _group_launch(_kernel(device, dtype, "bn_grad_sums"), device, size, args)
    sum_g = empty_array((rows,), dtype, device)
    sum_gh = empty_array((rows,), dtype, device)
    values = _Meta.pack([rows, size, size, gy.offset])
    args = [sum_g.buffer, sum_gh.buffer, gy.buffer, x_hat.buffer, gamma.buffer, values]
    _group_launch(_kernel(device, dtype, "ln_row_sums"), device, rows, args)
    values = _Meta.pack([gx.size, rows, size, gy.offset])
    args = [gx.buffer, gy.buffer, x_hat.buffer, inv_std.buffer, gamma.buffer]
    args += [sum_g.buffer, sum_gh.buffer, values]
    _launch(_kernel(device, dtype, "ln_backward"), device, gx.size, args)
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
        seed, counter = device.random_seed, device.random_counter
        device.random_counter += x.size
        values = _Meta.pack([x.size, x.offset, seed, counter])
        scale = x.dtype.type(1 / (1 - dropout_ratio))  # as NumPy's ``mask *= 1 / (1 - p)``
        args = [y.buffer, mask.buffer, x.buffer, _floats(x.dtype, dropout_ratio, scale), values]
        _launch(_kernel(device, x.dtype, "dropout"), device, x.size, args)
    return y, mask
