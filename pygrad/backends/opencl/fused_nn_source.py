"""The programs of the fused nn kernels (see :mod:`.fused_nn`): OpenCL C generated from the
templates below, one program per family of kernels and float dtype, built the first time one
of its kernels runs.

Integer arguments travel in one :class:`~.kernels._Meta` struct per kernel, float ones (eps, a
slope, a dropout rate ...) in a small struct of the float type.  Reductions run in work groups
of a fixed size with a tree sum in local memory, in a fixed order, so results repeat exactly.
"""

from __future__ import annotations

import re

from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.kernels import _Meta, ctype

__all__ = ["LABEL_TYPES", "floats", "nn_kernel", "group_launch", "rows_launch"]

LABEL_TYPES = ("long", "int")  # other integer labels are converted to int64 first

# --- integer arguments of each kernel (fused_nn packs their values in this order) -------------
_ELEMENTWISE = _Meta(["n", "a_off", "b_off", "c_off"])
_ROWS = _Meta(["n", "classes", "a_off", "b_off"])
_SCE_ROWS = _Meta(["n", "classes", "x_off", "x_rs", "t_off", "err"])
_TOTAL = _Meta(["n"])
_SCE_BACKWARD = _Meta(["n", "classes", "t_off", "gy_off"])
_LOSS_PARTS = _Meta(["n", "a_off", "b_off", "chunk"])
_LOSS_BACKWARD = _Meta(["n", "a_off", "b_off", "gy_off"])
_CHECK = _Meta(["n", "off", "high", "err"])
_BN_STATS = _Meta(["channels", "spatial", "count", "x_off", "update"])
_BN_APPLY = _Meta(["n", "channels", "spatial", "x_off"])
_BN_SUMS = _Meta(["channels", "spatial", "count", "gy_off"])
_DROPOUT = _Meta(["n", "x_off", "seed", "counter"])
# Float arguments (eps, decay, a slope, a dropout rate ...) in an argument buffer of the float
# type, read as ``f[i]``.
_FLOATS = 4


def floats(dtype, *values) -> tuple:
    return kernels.real_args(dtype, list(values) + [0.0] * (_FLOATS - len(values)))


# --- templates --------------------------------------------------------------------------------
def _activation_source(t: str) -> str:
    m = _ELEMENTWISE
    head = (
        f"__global {t}* gx, __global const {t}* a, __global const {t}* b, "
        f"__global const {t}* c, __global const {t}* restrict f, {m.param()}"
    )
    prologue = f"    const {t} ga = a[{m['a_off']} + i], vb = b[{m['b_off']} + i];\n"
    third = f"    const {t} vc = c[{m['c_off']} + i];\n"
    # The products mirror the NumPy formulas of the functions term by term (``gy * mask``
    # rather than a select), so that NaNs and signed zeros come out alike.  ``a`` is the
    # output's gradient; ``b`` and ``c`` are what the function keeps.
    bodies = {
        "relu_backward": f"gx[i] = ga * ({t})(vb > 0);",
        "leaky_relu_backward": f"gx[i] = ga * (vb > 0 ? ({t})1 : f[0]);",
        "sigmoid_backward": f"gx[i] = ga * vb * (({t})1 - vb);",
        "tanh_backward": f"gx[i] = ga * (({t})1 - vb * vb);",
        # b: the input, c: the output; below 0 the slope alpha * exp(x) is y + alpha.
        "elu_backward": f"{third}    gx[i] = vb > 0 ? ga : ga * (vc + f[0]);",
        # b: the input, c: Phi(input) kept by forward.
        "gelu_backward": f"{third}"
        f"    gx[i] = ga * (vc + vb * (exp(vb * vb * ({t})-0.5) * f[0]));",
    }
    # Each kernel runs CHUNK neighbouring elements per work item (kernels.chunk_loop).
    source = "".join(
        f"__kernel void {name}({head}) {{\n"
        + kernels.chunk_loop("i", m["n"], f"{prologue}    {body}")
        + "}\n"
        for name, body in bodies.items()
    )
    # Forward passes: y from x, the formulas of the NumPy paths (NaNs propagate alike).
    forwards = {
        # With e = exp(-|x|) <= 1 nothing overflows (see Sigmoid.forward).
        "sigmoid_forward": f"const {t} e = exp(-fabs(v)), r = 1 / (1 + e);"
        " y[i] = v >= 0 ? r : e * r;",
        "leaky_relu_forward": "y[i] = v > 0 ? v : v * f[0];",
        "elu_forward": f"y[i] = v > 0 ? v : expm1(v < 0 || isnan(v) ? v : ({t})0) * f[0];",
    }
    head = f"__global {t}* y, __global const {t}* x, __global const {t}* restrict f, {m.param()}"
    source += "".join(
        f"__kernel void {name}({head}) {{\n"
        + kernels.chunk_loop("i", m["n"], f"    const {t} v = x[{m['a_off']} + i];\n    {body}")
        + "}\n"
        for name, body in forwards.items()
    )
    # Phi(x) = erfc(-x / sqrt(2)) / 2 keeps its relative precision in the lower tail.
    gelu = (
        f"    const {t} v = x[{m['a_off']} + i];\n"
        f"    const {t} p = ({t})0.5 * erfc(-v * f[0]);\n"
        "    cdf[i] = p;\n    y[i] = v * p;"
    )
    return source + f"""
__kernel void gelu_forward(__global {t}* y, __global {t}* cdf, __global const {t}* x,
        __global const {t}* restrict f, {m.param()}) {{
{kernels.chunk_loop("i", m["n"], gelu)}}}
"""


def _softmax_cross_entropy_source(t: str, group: int) -> str:
    rows, back = _SCE_ROWS, _SCE_BACKWARD
    source = ""
    for lt in LABEL_TYPES:
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
        __global const {lt}* labels, __global const {t}* gy, __global const {t}* restrict f,
        {back.param()}) {{
    const long i = get_global_id(0);
    if (i >= {back['n']}) return;
    const long classes = {back['classes']};
    const long label = (long)labels[{back['t_off']} + i / classes];
    const {t} scale = gy[{back['gy_off']}] * f[0];
    gx[i] = (probs[i] - ({t})(i % classes == label)) * scale;
}}
"""
    return source


# Elementwise losses, summed over every element: a, b -> the term of one element.
_LOSS_TERMS = {
    "squared_error": "const {t} d = a[j_a] - b[j_b]; acc += d * d;",
    # softplus(x) - t * x, as in SigmoidCrossEntropy.forward
    "sigmoid_cross_entropy": "const {t} v = a[j_a];"
    " acc += fmax(v, ({t})0) - v * b[j_b] + log1p(exp(-fabs(v)));",
}


def _mean_loss_source(t: str, group: int) -> str:
    """Partial sums of a loss in up to ``group`` work groups, their scaled total in one, and
    the backward passes of the two losses (both gradients from one kernel)."""
    total, parts, back = _TOTAL, _LOSS_PARTS, _LOSS_BACKWARD
    # A fixed order of additions, so that a loss is the same from run to run (atomic
    # additions would not be).
    source = f"""
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void scaled_total(__global {t}* out, __global const {t}* values, __global const {t}* restrict f,
        {total.param()}) {{
    __local {t} partial[{group}];
    const int lid = get_local_id(0);
    {t} acc = 0;
    for (long i = lid; i < {total['n']}; i += {group}) acc += values[i];
    partial[lid] = acc;
{_group_sum("partial", group)}
    if (lid == 0) out[0] = partial[0] * f[0];
}}
"""
    for name, term in _LOSS_TERMS.items():
        source += f"""
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void {name}_partials(__global {t}* partials, __global const {t}* a, __global const {t}* b,
        {parts.param()}) {{
    __local {t} partial[{group}];
    const int lid = get_local_id(0);
    const long n = {parts['n']}, chunk = {parts['chunk']};
    const long start = min((long)get_group_id(0) * chunk, n), end = min(start + chunk, n);
    const long share = (end - start + {group} - 1) / {group};
    const long k0 = min(start + lid * share, end), k1 = min(k0 + share, end);
    {t} acc = 0;
    for (long k = k0; k < k1; ++k) {{
        const long j_a = {parts['a_off']} + k, j_b = {parts['b_off']} + k;
        {term.format(t=t)}
    }}
    partial[lid] = acc;
{_group_sum("partial", group)}
    if (lid == 0) partials[get_group_id(0)] = partial[0];
}}
"""
    head = (
        f"__global {t}* ga, __global {t}* gb, __global const {t}* a, __global const {t}* b, "
        f"__global const {t}* gy, __global const {t}* restrict f, {back.param()}"
    )
    prologue = f"""    const long i = get_global_id(0);
    if (i >= {back['n']}) return;
    const {t} va = a[{back['a_off']} + i], vb = b[{back['b_off']} + i];
    const {t} scale = gy[{back['gy_off']}] * f[0];
"""
    bodies = {
        # (x0 - x1) * (gy * 2 / size) and its negation, as in MeanSquaredError.backward
        "squared_error_backward": f"const {t} g = (va - vb) * scale; ga[i] = g; gb[i] = -g;",
        # (sigmoid(x) - t) * scale and x * -scale, as in SigmoidCrossEntropy.backward
        "sigmoid_cross_entropy_backward": f"const {t} e = exp(-fabs(va)), r = 1 / (1 + e);"
        " ga[i] = ((va >= 0 ? r : e * r) - vb) * scale; gb[i] = va * -scale;",
    }
    source += "".join(
        f"__kernel void {name}({head}) {{\n{prologue}    {body}\n}}\n"
        for name, body in bodies.items()
    )
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
    for lt in LABEL_TYPES:
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


def _channel_index(m: _Meta) -> str:
    """Element ``i`` and its channel ``c`` of an (N, C, spatial) array in a kernel launched over
    (spatial, N * C) by rows_launch, or over (C, N) when spatial is 1: the channel comes from
    the row or the column, with no division per element."""
    return f"""    const long spatial = {m['spatial']}, channels = {m['channels']};
    const long inner = spatial > 1 ? spatial : channels;
    const long col = get_global_id(0), row = get_global_id(1);
    if (col >= inner) return;
    const long i = row * inner + col, c = spatial > 1 ? row % channels : col;"""


def _sums_of_g_and_g_x_hat(t: str, group: int, load: str, sum_g: str, sum_gh: str) -> str:
    """Body of a kernel that stores, per channel ``c`` (one work group), the sums of ``gg`` and
    of ``gg * x_hat`` over the channel into ``sum_g[c]`` and ``sum_gh[c]``; ``load`` declares
    ``gg`` from ``g[j]`` (the channel's gradient), as batch and layer norm's backward need."""
    sums = _BN_SUMS
    return f"""    __local {t} partial_g[{group}], partial_gh[{group}];
    const long c = get_group_id(0);
    const int lid = get_local_id(0);
    const long channels = {sums['channels']}, spatial = {sums['spatial']};
    const long count = {sums['count']};
    __global const {t}* g = gy + {sums['gy_off']};
    {t} acc_g = 0, acc_gh = 0;
{_channel_loop(group, f"{load} acc_g += gg; acc_gh += gg * x_hat[j];")}
    partial_g[lid] = acc_g;
    partial_gh[lid] = acc_gh;
{_group_sum("partial_g, partial_gh", group)}
    if (lid == 0) {{ {sum_g}[c] = partial_g[0]; {sum_gh}[c] = partial_gh[0]; }}"""


def _batch_norm_source(t: str, group: int) -> str:
    stats, apply, sums = _BN_STATS, _BN_APPLY, _BN_SUMS
    return f"""
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void bn_stats(__global {t}* mean_out, __global {t}* var_out, __global {t}* inv_std_out,
        __global {t}* running_mean,
        __global {t}* running_var, __global const {t}* x, __global const {t}* restrict f,
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
    inv_std_out[c] = 1 / sqrt(var + f[0]);
    if ({stats['update']}) {{
        const {t} decay = f[1];
        running_mean[c] = running_mean[c] * decay + (1 - decay) * mean;
        // The running variance is the unbiased estimate, as in Chainer and PyTorch.
        running_var[c] = running_var[c] * decay + (1 - decay) * count / (count - 1) * var;
    }}
}}
__kernel void bn_apply(__global {t}* y, __global {t}* x_hat, __global const {t}* x,
        __global const {t}* mean, __global const {t}* inv_std, __global const {t}* gamma,
        __global const {t}* beta, {apply.param()}) {{
{_channel_index(apply)}
    const {t} h = (x[{apply['x_off']} + i] - mean[c]) * inv_std[c];
    x_hat[i] = h;
    y[i] = h * gamma[c] + beta[c];
}}
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void bn_grad_sums(__global {t}* g_gamma, __global {t}* g_beta, __global const {t}* gy,
        __global const {t}* x_hat, {sums.param()}) {{
{_sums_of_g_and_g_x_hat(t, group, "const " + t + " gg = g[j];", "g_beta", "g_gamma")}
}}
__kernel void bn_backward(__global {t}* gx, __global const {t}* gy, __global const {t}* x_hat,
        __global const {t}* inv_std, __global const {t}* gamma, __global const {t}* g_gamma,
        __global const {t}* g_beta, {apply.param()}) {{
{_channel_index(apply)}
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
    // Launched over (D, R) by rows_launch: no division per element.
    const long d = get_global_id(0), r = get_global_id(1), size = {apply['spatial']};
    if (d >= size) return;
    const long i = r * size + d;
    const {t} h = (x[{apply['x_off']} + i] - mean[r]) * inv_std[r];
    x_hat[i] = h;
    y[i] = h * gamma[d] + beta[d];
}}
__kernel __attribute__((reqd_work_group_size({group}, 1, 1)))
void ln_row_sums(__global {t}* sum_g, __global {t}* sum_gh, __global const {t}* gy,
        __global const {t}* x_hat, __global const {t}* gamma, {sums.param()}) {{
{_sums_of_g_and_g_x_hat(t, group, f"const {t} gg = g[j] * gamma[s];", "sum_g", "sum_gh")}
}}
__kernel void ln_backward(__global {t}* gx, __global const {t}* gy, __global const {t}* x_hat,
        __global const {t}* inv_std, __global const {t}* gamma, __global const {t}* sum_g,
        __global const {t}* sum_gh, {apply.param()}) {{
    const long d = get_global_id(0), r = get_global_id(1), size = {apply['spatial']};
    if (d >= size) return;
    const long i = r * size + d;
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
        + f"""    for (long c = 0; c < classes; ++c) {{
        const {t} e = exp(ar[c] - top); o[c] = e; sum += e; }}
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
        __global const {t}* restrict f, {m.param()}) {{
    const long i = get_global_id(0);
    if (i >= {m['n']}) return;
    const {t} u = {uniform}((ulong){m['seed']}, (ulong){m['counter']} + (ulong)i);
    const {t} keep = (u >= f[0]) ? f[1] : ({t})0;
    mask[i] = keep;
    y[i] = x[{m['x_off']} + i] * keep;
}}
"""


# Kernels are grouped in one program per family and float type: a program is built the first
# time one of its kernels runs, so a model without normalisation layers never compiles them.
_FAMILIES = {
    "activation": lambda t, group: _activation_source(t),
    "softmax": lambda t, group: _softmax_source(t),
    "loss": lambda t, group: (
        _softmax_cross_entropy_source(t, group) + _mean_loss_source(t, group) + _check_source(t)
    ),
    "normalization": lambda t, group: (_batch_norm_source(t, group) + _layer_norm_source(t, group)),
    "dropout": lambda t, group: _dropout_source(t),
}
_KERNEL_NAME = re.compile(r"__kernel\s+(?:__attribute__\(\(.*?\)\)\s*)?void\s+(\w+)\(")
# kernel name -> (family, the names of every kernel of that family)
_FAMILY_OF = {}
for _family, _source in _FAMILIES.items():
    _names = tuple(_KERNEL_NAME.findall(_source("float", kernels.GROUP)))
    _FAMILY_OF.update((_name, (_family, _names)) for _name in _names)


def nn_kernel(device, dtype, name: str):
    """Kernel ``name`` for float ``dtype``; the first call builds every kernel of its family."""
    t = ctype(dtype)
    family, names = _FAMILY_OF[name]

    def source():
        group = min(kernels.GROUP, device.max_work_group_size)
        return kernels._preamble(device) + _FAMILIES[family](t, group)

    extra = [(("fused_nn", t, other), other) for other in names]
    return device.build(("fused_nn", t, name), source, name, extra)


def rows_launch(kernel, device, inner: int, rows: int, args) -> None:
    """A two-dimensional launch over ``rows`` rows of ``inner`` elements, in groups of a fixed
    size along the rows."""
    group = min(kernels.GROUP, device.max_work_group_size)
    kernels.launch(kernel, device, ((inner + group - 1) // group * group, rows), (group, 1), args)


def group_launch(kernel, device, groups: int, args) -> None:
    """``groups`` work groups of the fixed size the reduction kernels are compiled for."""
    group = min(kernels.GROUP, device.max_work_group_size)
    kernels.launch(kernel, device, (groups * group,), (group,), args)
