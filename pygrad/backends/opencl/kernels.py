"""OpenCL C kernels generated from templates and compiled once per device, and how they launch.

The templates here cover the general calls: *elementwise* (any C expression over broadcast,
strided operands), *matmul* (batched, any strides, any dtype; float matrices on CPUs go to
:mod:`.gemm`) and *index* (gather, scatter and scatter-add through integer index arrays).
Reductions live in :mod:`.reduce_kernels`, fused kernels for hot composites in the
``fused_*`` modules.  A kernel is keyed by what shapes its source (the expression and the
dtypes), never by sizes, strides or the number of axes: those travel in one read-only buffer
of longs (:class:`_Meta`, :class:`MetaArgs`), because on PoCL setting a by-value argument
costs about 30 us, a buffer argument well under one.
"""

from __future__ import annotations

import functools
import struct

import numpy as np

from pygrad.backends.opencl.runtime import cl

__all__ = [
    "C_TYPES",
    "MetaArgs",
    "Float32Args",
    "Float64Args",
    "real_args",
    "ctype",
    "launch",
    "chunk_loop",
    "launch_chunks",
    "real_bits",
    "register_elementwise_family",
    "collapse",
    "run_elementwise",
    "run_matmul",
    "run_index",
]

C_TYPES = {
    np.dtype(np.bool_): "uchar",
    np.dtype(np.int8): "char",
    np.dtype(np.uint8): "uchar",
    np.dtype(np.int16): "short",
    np.dtype(np.uint16): "ushort",
    np.dtype(np.int32): "int",
    np.dtype(np.uint32): "uint",
    np.dtype(np.int64): "long",
    np.dtype(np.uint64): "ulong",
    np.dtype(np.float32): "float",
    np.dtype(np.float64): "double",
}

# Helpers every kernel may call: integer powers and a counter-based random generator
# (splitmix64 of seed and element number, so every element draws independently).
PREAMBLE = r"""
inline long _ipow(long base, long exponent) {
    if (exponent < 0) return base == 1 ? 1 : (base == -1 ? (exponent & 1 ? -1 : 1) : 0);
    long result = 1;
    while (exponent) { if (exponent & 1) result *= base; base *= base; exponent >>= 1; }
    return result;
}
inline ulong _mix64(ulong z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
    return z ^ (z >> 31);
}
inline ulong _random_bits(ulong seed, ulong counter) {
    return _mix64(seed * 0x9E3779B97F4A7C15UL + _mix64(counter + 0x632BE59BD9B4E019UL));
}
inline float _uniform_float(ulong seed, ulong counter) {
    return (float)(_random_bits(seed, counter) >> 40) * (1.0f / 16777216.0f);
}
inline float _normal_float(ulong seed, ulong counter) {
    float u1 = 1.0f - _uniform_float(seed, counter);
    float u2 = _uniform_float(seed, counter + 1);
    return sqrt(-2.0f * log(u1)) * cospi(2.0f * u2);
}
"""

PREAMBLE_FLOAT64 = r"""
inline double _uniform_double(ulong seed, ulong counter) {
    return (double)(_random_bits(seed, counter) >> 11) * (1.0 / 9007199254740992.0);
}
inline double _normal_double(ulong seed, ulong counter) {
    double u1 = 1.0 - _uniform_double(seed, counter);
    double u2 = _uniform_double(seed, counter + 1);
    return sqrt(-2.0 * log(u1)) * cospi(2.0 * u2);
}
"""


def ctype(dtype) -> str:
    """The OpenCL C type that stores ``dtype`` (bool is one byte, as in NumPy)."""
    try:
        return C_TYPES[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"opencl backend does not support dtype {np.dtype(dtype)}") from None


REAL_FROM_BITS_FLOAT64 = "#define META_REAL(bits) as_double(bits)\n"
# Devices without float64 rebuild a float from the bits of a float64 (rounded to nearest).
REAL_FROM_BITS_FLOAT32 = r"""
inline float _real_from_bits(long bits) {
    const ulong u = (ulong)bits;
    const uint sign = (uint)(u >> 63) << 31;
    const int exponent = (int)((u >> 52) & 0x7FF);
    const ulong mantissa = u & 0xFFFFFFFFFFFFFUL;
    if (exponent == 0x7FF) return as_float(sign | 0x7F800000u | (mantissa ? 0x400000u : 0u));
    const int e = exponent - 1023 + 127;
    if (e >= 255) return as_float(sign | 0x7F800000u);
    if (e <= 0) return as_float(sign);
    uint value = ((uint)e << 23) + (uint)(mantissa >> 29) + (uint)((mantissa >> 28) & 1);
    return as_float(sign | min(value, 0x7F800000u));
}
#define META_REAL(bits) _real_from_bits(bits)
"""


def _preamble(device) -> str:
    if device.supports_float64:
        return PREAMBLE + PREAMBLE_FLOAT64 + REAL_FROM_BITS_FLOAT64
    return PREAMBLE + REAL_FROM_BITS_FLOAT32


GROUP = 64
MAX_DIMS = 8  # kernels take up to this many (merged) axes at run time; more compile anew


def launch(kernel, device, global_size: tuple, local_size: tuple, args) -> None:
    """Enqueue ``kernel`` on ``device``'s queue with ``args`` (buffers and :class:`MetaArgs`).

    Arguments are set one by one and the launch enqueued without PyOpenCL's generic call,
    which inspects every argument's type on each call.
    """
    # Every argument buffer is found before any is set: finding one may evict another from the
    # device's cache, and a buffer set but released before the enqueue would dangle.
    args = [device.arg_buffer(arg) if type(arg) in ARG_TYPES else arg for arg in args]
    set_arg = kernel.set_arg
    with device.launch_lock:
        for i, arg in enumerate(args):
            set_arg(i, arg)
        cl.enqueue_nd_range_kernel(device.queue, kernel, global_size, local_size)


def _launch(kernel, device, n: int, args) -> None:
    """Run a one-dimensional kernel over ``n`` items in groups of a fixed size.

    A fixed work-group size matters on PoCL, which compiles a kernel again for every
    work-group size it is launched with (leaving the size to the driver means one compile
    per distinct array size).
    """
    group = min(GROUP, device.max_work_group_size)
    launch(kernel, device, ((n + group - 1) // group * group,), (group,), args)


def collapse(shape: tuple, strides_list: list) -> tuple:
    """Drop size-1 axes and merge neighbouring axes that every operand walks contiguously.

    Returns the merged shape and each operand's merged strides (in elements).
    """
    dims = [(n, [s[d] for s in strides_list]) for d, n in enumerate(shape) if n != 1]
    if not dims:
        return (), [() for _ in strides_list]
    merged = [dims[0]]
    for n, st in dims[1:]:
        last_n, last_st = merged[-1]
        if all(p == s * n for p, s in zip(last_st, st)):
            merged[-1] = (last_n * n, st)
        else:
            merged.append((n, st))
    new_shape = tuple(n for n, _ in merged)
    new_strides = [tuple(st[k] for _, st in merged) for k in range(len(strides_list))]
    return new_shape, new_strides


@functools.lru_cache(maxsize=1024)
def contiguous_strides(shape: tuple) -> tuple:
    """C-order strides, in elements, of an array of ``shape``."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class MetaArgs(tuple):
    """The values of a kernel's :class:`_Meta` fields: 64-bit integers (reals as the bits of a
    float64).  A launch passes them as one read-only buffer, made once per distinct values and
    device (see ``Device.arg_buffer``): a training step repeats its shapes, and on PoCL a
    buffer argument costs well under a microsecond where a by-value argument costs about 30."""

    dtype = np.dtype(np.int64)


class Float32Args(tuple):
    """Like :class:`MetaArgs`, for values a kernel reads as ``__global const float*``."""

    dtype = np.dtype(np.float32)


class Float64Args(tuple):
    """Like :class:`MetaArgs`, for values a kernel reads as ``__global const double*``."""

    dtype = np.dtype(np.float64)


ARG_TYPES = (MetaArgs, Float32Args, Float64Args)
_REAL_ARGS = {np.dtype(np.float32): Float32Args, np.dtype(np.float64): Float64Args}


def real_args(dtype, values) -> tuple:
    """``values`` (Python floats) as the argument buffer of a kernel reading them as ``dtype``
    (rounded to it as NumPy rounds a Python scalar meeting an array of it)."""
    return _REAL_ARGS[np.dtype(dtype)](float(v) for v in values)


_double_bits = struct.Struct("<d")
_long_bits = struct.Struct("<q")


def real_bits(value) -> int:
    """A real number as the int64 holding its float64 bits (read back with ``META_REAL``)."""
    return _long_bits.unpack(_double_bits.pack(value))[0]


class _Meta:
    """The integer (and real) arguments of one kernel, packed in one buffer of longs.

    Code generation asks for fields by name (``meta["n"]`` gives ``meta[0]``; a field named in
    ``reals`` reads as a float64 on devices that have it, else a float); the launcher packs the
    values in the same order with :meth:`pack`, giving reals as :func:`real_bits`.
    """

    def __init__(self, names: list, reals=()):
        self.index = {name: i for i, name in enumerate(names)}
        self.size = len(names)
        self.reals = set(reals)

    def __getitem__(self, name: str) -> str:
        i = self.index[name]
        return f"META_REAL(meta[{i}])" if name in self.reals else f"meta[{i}]"

    def param(self) -> str:
        return "__global const long* restrict meta"

    @staticmethod
    def pack(values) -> MetaArgs:
        if set(map(type, values)) != {int}:  # NumPy integers and bools become Python ints
            values = [int(v) for v in values]
        return MetaArgs(values)


def _padded(values, count: int) -> list:
    return list(values) + [0] * (count - len(values))


def _strided_fields(names: list, max_dims: int) -> list:
    """Field names of the strided layout: sizes of axes 1.., then each operand's offset and
    strides."""
    fields = ["n", "ndim"] + [f"shape{d}" for d in range(1, max_dims)]
    for name in names:
        fields += [f"{name}_off"] + [f"{name}_st{d}" for d in range(max_dims)]
    return fields


def _strided_values(n: int, shape: tuple, offsets: list, strides: list, max_dims: int) -> list:
    values = [n, len(shape)] + _padded(shape[1:], max_dims - 1)
    for offset, st in zip(offsets, strides):
        values += [offset] + _padded(st, max_dims)
    return values


def _strided_index_code(meta: _Meta, names: list, max_dims: int) -> str:
    """C statements giving each operand's element index ``j_<name>`` for element ``gid``."""
    lines = ["    long rem = gid;"] + [f"    long j_{n} = {meta[n + '_off']};" for n in names]
    for d in range(max_dims - 1, 0, -1):
        size = meta[f"shape{d}"]
        lines.append(
            f"    if ({d} < {meta['ndim']}) {{ const long c = rem % {size}; rem /= {size};"
        )
        lines += [f"      j_{n} += c * {meta[f'{n}_st{d}']};" for n in names]
        lines.append("    }")
    lines += [f"    j_{n} += rem * {meta[f'{n}_st0']};" for n in names]
    return "\n".join(lines)


def _strided_index_loop(meta: _Meta, names: list) -> str:
    """Like :func:`_strided_index_code`, as a loop over the axes: slower to run for many axes
    but much faster to compile, which matters for kernels compiled by the dozen."""
    shape1 = meta.index["shape1"]
    lines = ["    long rem = gid;"] + [f"    long j_{n} = {meta[n + '_off']};" for n in names]
    lines.append(f"    for (long d = {meta['ndim']} - 1; d > 0; --d) {{")
    lines.append(f"      const long size = meta[{shape1 - 1} + d], c = rem % size; rem /= size;")
    lines += [f"      j_{n} += c * meta[{meta.index[n + '_st0']} + d];" for n in names]
    lines.append("    }")
    lines += [f"    j_{n} += rem * {meta[f'{n}_st0']};" for n in names]
    return "\n".join(lines)


# --- elementwise --------------------------------------------------------------------------------
def _elementwise_source(name, expr, out_ctype, kinds, is_bool, max_dims) -> str:
    """Source of one elementwise kernel: flat (``max_dims == 0``) or strided (any strides, up
    to ``max_dims`` axes).  Scalar inputs are read from the argument buffer (``meta``).

    In the flat layout the output is contiguous and an array input is read contiguously, as
    one element (kind ``"T@0"``) or as one row repeated down the rows of a 2-D output (kind
    ``"T@r"``, a bias): addressing known when compiling lets PoCL vectorise the kernel.
    """
    flat = max_dims == 0
    names = ["out"] + [f"in{k}" for k, (kind, _) in enumerate(kinds) if kind != "scalar"]
    scalars = [f"s{k}" for k, (kind, _) in enumerate(kinds) if kind == "scalar"]
    reals = [f"s{k}" for k, (kind, lt) in enumerate(kinds) if kind == "scalar" and lt in _REALS]
    if flat:
        meta = _Meta(["n", "period"] + [f"{n}_off" for n in names] + scalars, reals)
        modes = ["c"] + [kind.partition("@")[2] or "c" for kind, _ in kinds if kind != "scalar"]
        position = {"c": " + gid", "0": "", "r": f" + gid % {meta['period']}"}
        index = [
            f"    const long j_{n} = {meta[n + '_off']}{position[mode]};"
            for n, mode in zip(names, modes)
        ]
    else:
        meta = _Meta(_strided_fields(names, max_dims) + scalars, reals)
        index = [_strided_index_loop(meta, names)]
    params = [f"__global {out_ctype}* out"]
    loads = []
    for k, (kind, lt) in enumerate(kinds):
        ct = "uchar" if lt == "bool" else lt
        if kind == "scalar":
            loads.append(f"    const {ct} a{k} = ({ct}){meta[f's{k}']};")
        else:
            params.append(f"__global const {kind.partition('@')[0]}* in{k}")
            value = f"(in{k}[j_in{k}] != 0)" if lt == "bool" else f"in{k}[j_in{k}]"
            loads.append(f"    const {ct} a{k} = ({ct}){value};")
    params.append(meta.param())
    value = f"(({expr}) != 0)" if is_bool else f"({expr})"
    body = "\n".join(index + loads) + f"\n    out[j_out] = ({out_ctype}){value};"
    head = f"__kernel void {name}({', '.join(params)}) {{\n"
    if not flat:
        return (
            head
            + f"    const long gid = get_global_id(0);\n    if (gid >= {meta['n']}) return;\n"
            + body
            + "\n}\n"
        )
    return head + chunk_loop("gid", meta["n"], body) + "}\n"


CHUNK = 16  # elements per work item of a flat elementwise kernel


def chunk_loop(index: str, count: str, body: str) -> str:
    """C statements running ``body`` for ``CHUNK`` neighbouring elements per work item,
    element number ``index`` (a ``long``), below ``count`` (see :func:`launch_chunks`).

    The whole chunks run a loop of fixed length, which PoCL vectorises where it would not
    vectorise one element per work item (about four times the bandwidth here).
    """
    inner = f"{{ const long {index} = _first + _k;\n{body}\n    }}"
    return (
        f"    const long _first = get_global_id(0) * {CHUNK}, _count = {count};\n"
        "    if (_first >= _count) return;\n"
        f"    if (_first + {CHUNK} <= _count) {{ for (int _k = 0; _k < {CHUNK}; ++_k) {inner} }}\n"
        f"    else {{ for (long _k = 0; _k < _count - _first; ++_k) {inner} }}\n"
    )


def launch_chunks(kernel, device, n: int, args) -> None:
    """Launch a kernel written with :func:`chunk_loop` over ``n`` elements."""
    _launch(kernel, device, (n + CHUNK - 1) // CHUNK, args)


_REALS = ("float", "double", "half")


def _scalar_value(x, loop_ctype: str) -> int:
    """A scalar input as the int64 a kernel reads it from (reals as their float64 bits,
    unsigned values past the int64 range wrapped, as the C cast back undoes)."""
    if loop_ctype in _REALS:
        return real_bits(float(x))
    value = int(x)
    return value - 2**64 if value >= 2**63 else value


def _variants(kinds: tuple) -> list:
    """``kinds`` first, then the kinds with each input switched between an array (of its loop
    type when it was a scalar) and a scalar; no all-scalar variant unless asked for (then
    only that one: generators such as ``arange`` and ``random`` have no array inputs)."""
    if all(kind[0] == "scalar" for kind in kinds):
        return [kinds]
    options = [
        [kind, ("scalar", kind[1]) if kind[0] != "scalar" else (kind[1], kind[1])] for kind in kinds
    ]
    variants = [()]
    for choices in options:
        variants = [v + (c,) for v in variants for c in choices]
    keep = [v for v in variants if v != kinds and any(k[0] != "scalar" for k in v)]
    return [kinds] + keep


def run_elementwise(device, expr: str, out, inputs: list, loop_ctypes: list):
    """Compute ``out[...] = expr`` elementwise.

    ``out`` is an ndarray (any strides); ``inputs`` hold ndarrays already broadcast to
    ``out.shape`` or NumPy scalars of their loop type.  The expression names input ``k`` as
    ``a{k}`` (converted to ``loop_ctypes[k]``) and may use ``gid``, the C-order position of
    the output element.  A bool output stores ``expr != 0``; the loop type ``"bool"`` (a
    uchar) likewise converts each input with ``!= 0``, where a C cast would truncate.

    When every operand is contiguous (or a single element) a flat kernel runs; otherwise one
    strided kernel serves every number of axes up to :data:`MAX_DIMS`.
    """
    n = out.size
    if n == 0:
        return out
    arrays = [out] + [x for x in inputs if hasattr(x, "buffer")]
    out_strides = out._strides
    period = 0
    if all(a._strides == out_strides for a in arrays) and out.is_c_contiguous:
        shape, strides, modes = (n,), None, [""] * len(arrays)  # the common case, cheaply
    else:
        shape, strides = collapse(out.shape, [a._strides for a in arrays])
        modes = [_flat_mode(shape, st) for st in strides]
        if modes[0] != "":
            modes[0] = None  # a flat kernel writes its output contiguously
        if "r" in modes:
            period = shape[-1]
    flat = None not in modes
    modes = iter(modes[1:] if flat else [""] * len(inputs))
    kinds = tuple(
        (
            (C_TYPES[x.dtype] + _MODE_SUFFIX[next(modes)], lt)
            if hasattr(x, "buffer")
            else ("scalar", lt)
        )
        for x, lt in zip(inputs, loop_ctypes)
    )
    max_dims = max(MAX_DIMS, len(shape))
    kernel = elementwise_kernel(device, expr, out.dtype, kinds, flat, max_dims)
    args = [a.buffer for a in arrays]
    if flat:
        values = [n, period] + [array.offset for array in arrays]
    else:
        values = _strided_values(n, shape, [a.offset for a in arrays], strides, max_dims)
    if len(arrays) <= len(inputs):
        values += [
            _scalar_value(x, lt) for x, lt in zip(inputs, loop_ctypes) if not hasattr(x, "buffer")
        ]
    args.append(MetaArgs(values))
    (launch_chunks if flat else _launch)(kernel, device, n, args)
    return out


_MODE_SUFFIX = {"": "", "0": "@0", "r": "@r"}


def _flat_mode(shape: tuple, strides: tuple):
    """How a flat kernel reads an operand of ``strides`` over the collapsed ``shape``:
    ``""`` contiguously, ``"0"`` one element, ``"r"`` one row down the rows of a 2-D shape;
    None when it cannot."""
    if strides == contiguous_strides(shape):
        return ""
    if not any(strides):
        return "0"
    if len(shape) == 2 and strides == (0, 1):
        return "r"
    return None


def elementwise_kernel(device, expr: str, out_dtype, kinds: tuple, flat: bool, max_dims=MAX_DIMS):
    """The compiled elementwise kernel for ``expr`` (see :func:`run_elementwise`)."""
    # bool and uint8 are both stored as uchar, but only a bool output stores ``expr != 0``.
    key = ("elementwise", expr, C_TYPES[out_dtype], out_dtype == np.bool_, max_dims)
    full_key = key + (kinds, "flat" if flat else "strided")
    kernel = device.kernels.get(full_key)
    if kernel is None or type(kernel) is tuple:
        kernel = _build_elementwise(device, key, kinds, full_key[-1])
    return kernel


_family = None  # see register_elementwise_family


def register_elementwise_family(family) -> None:
    """Give the kernels worth compiling together with a flat elementwise kernel.

    ``family(kinds, flat)`` returns ``(expr, out_dtype, kinds)`` triples for the given operand
    ``kinds`` and layout (an empty list for none).  The ufunc module registers the common ufuncs of a
    float dtype, so that a training step's first elementwise op compiles them all at once.
    """
    global _family
    _family = family


def _build_elementwise(device, key, kinds, layout):
    """Compile the kernel of ``key`` for ``kinds`` and ``layout``, with its array/scalar
    variants and, in the flat layout, the family of its kinds (see
    :func:`register_elementwise_family`).

    On PoCL a program costs mostly a fixed 0.1-0.3 s however many small kernels it holds, so
    kernels that are likely to be needed together are compiled together.
    """
    max_dims = key[-1]
    members = {(key, variant): None for variant in _variants(kinds)}
    if _family is not None:
        for expr, out_dtype, family_kinds in _family(kinds, layout == "flat"):
            out_dtype = np.dtype(out_dtype)
            family_key = ("elementwise", expr, C_TYPES[out_dtype], out_dtype == np.bool_, max_dims)
            for variant in _variants(family_kinds):
                if family_key + (variant, layout) not in device.kernels:
                    members.setdefault((family_key, variant), None)
    names = {member: f"elementwise_{layout}_{i}" for i, member in enumerate(members)}
    dims = 0 if layout == "flat" else max_dims

    def source():
        return _preamble(device) + "".join(
            _elementwise_source(name, k[1], k[2], variant, k[3], dims)
            for (k, variant), name in names.items()
        )

    extra = [(k + (variant, layout), name) for (k, variant), name in names.items()]
    return device.build(key + (kinds, layout), source, names[key, kinds], extra)


# --- matmul -------------------------------------------------------------------------------------
TILE = 16  # local-memory tiles of the "tiled" matmul: TILE x TILE work items
BLOCK = 4  # each work item of the "blocked" matmul computes BLOCK x BLOCK outputs
BLOCK_GROUP = 8


def _tiled_matmul_body(acc: str) -> str:
    """Work item (row, col) of a TILE x TILE group; tiles of a and b go through local memory,
    which suits GPUs."""
    return f"""
    const int lc = get_local_id(0), lr = get_local_id(1);
    const long col = get_group_id(0) * TILE + lc;
    const long row = get_group_id(1) * TILE + lr;
    __local {acc} a_tile[TILE][TILE];
    __local {acc} b_tile[TILE][TILE + 1];
    {acc} acc = 0;
    for (long t = 0; t < K; t += TILE) {{
        const long ak = t + lc, bk = t + lr;
        a_tile[lr][lc] = (row < M && ak < K) ? ({acc})a[a_base + row * a_rs + ak * a_cs] : 0;
        b_tile[lr][lc] = (col < N && bk < K) ? ({acc})b[b_base + bk * b_rs + col * b_cs] : 0;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < TILE; ++i) acc += a_tile[lr][i] * b_tile[i][lc];
        barrier(CLK_LOCAL_MEM_FENCE);
    }}
    if (row < M && col < N) STORE(row, col, acc);"""


def _blocked_matmul_body(acc: str) -> str:
    """Each work item keeps a BLOCK x BLOCK block of outputs in registers and streams a and b
    from global memory: on CPU drivers (PoCL) this runs about ten times faster than local
    tiles.  Blocks inside the matrix take a loop the compiler can vectorise; blocks on the
    edge read the last valid row or column instead of going past it, and store what fits."""
    rows = range(BLOCK)

    def loop(clamp: bool) -> list:
        if clamp:
            a_rows = [f"a_base + min(row0 + {r}, M - 1) * a_rs" for r in rows]
            b_cols = [f"b_base + min(col0 + {c}, N - 1) * b_cs" for c in rows]
        else:
            a_rows = [f"a_base + (row0 + {r}) * a_rs" for r in rows]
            b_cols = [f"b_base + (col0 + {c}) * b_cs" for c in rows]
        lines = [f"        const long a_row{r} = {a_rows[r]};" for r in rows]
        lines += [f"        const long b_col{c} = {b_cols[c]};" for c in rows]
        lines.append("        for (long k = 0; k < K; ++k) {")
        lines += [f"            const {acc} y{c} = ({acc})b[b_col{c} + k * b_rs];" for c in rows]
        # One row of a at a time keeps few values live (this alone halves the time on PoCL).
        for r in rows:
            lines.append(f"            {{ const {acc} x = ({acc})a[a_row{r} + k * a_cs];")
            lines.append(
                "              " + " ".join(f"acc{r}_{c} += x * y{c};" for c in rows) + " }"
            )
        lines.append("        }")
        return lines

    lines = [
        "    const long col0 = get_global_id(0) * BLOCK, row0 = get_global_id(1) * BLOCK;",
        "    if (row0 >= M || col0 >= N) return;",
    ]
    lines += [f"    {acc} " + ", ".join(f"acc{r}_{c} = 0" for c in rows) + ";" for r in rows]
    # Conditional stores stop PoCL from vectorising (2.5 times slower), so only edge blocks
    # check each element.
    lines.append("    if (row0 + BLOCK <= M && col0 + BLOCK <= N) {")
    lines += loop(clamp=False)
    lines += [f"        STORE(row0 + {r}, col0 + {c}, acc{r}_{c});" for r in rows for c in rows]
    lines.append("    } else {")
    lines += loop(clamp=True)
    lines += [
        f"        if (row0 + {r} < M && col0 + {c} < N) STORE(row0 + {r}, col0 + {c}, acc{r}_{c});"
        for r in rows
        for c in rows
    ]
    lines.append("    }")
    return "\n" + "\n".join(lines)


def run_matmul(
    device, a, b, out, batch_shape: tuple, a_batch: tuple, b_batch: tuple, acc_ctype, kind=None
):
    """``out[batch] = a[batch] @ b[batch]`` for 2-D slices.

    ``a`` (M, K) and ``b`` (K, N) slices are addressed with any strides; ``a_batch`` and
    ``b_batch`` give their strides along ``batch_shape`` (0 where broadcast); ``out`` is
    contiguous of shape ``batch_shape + (M, N)``.  ``kind`` picks the kernel: ``"blocked"``
    (register blocks, the default on CPUs) or ``"tiled"`` (local-memory tiles, elsewhere).
    """
    m, k = a.shape[-2:]
    n = b.shape[-1]
    batch = 1
    for size in batch_shape:
        batch *= size
    if out.size == 0:
        return out
    kind = kind or ("blocked" if device.is_cpu else "tiled")
    shape, (a_st, b_st) = collapse(batch_shape, [a_batch, b_batch])
    nb = len(shape)
    a_ct, b_ct, out_ct = ctype(a.dtype), ctype(b.dtype), ctype(out.dtype)
    is_bool = out.dtype == np.bool_
    # Unit strides along k (a) and along columns (b) are compiled in as constants, which lets
    # the compiler vectorise the common contiguous case.
    a_unit, b_unit = a._strides[-1] == 1, b._strides[-1] == 1
    key = ("matmul", kind, a_ct, b_ct, out_ct, acc_ctype, nb, a_unit, b_unit)
    fields = ["M", "N", "K", "a_off", "a_rs", "a_cs", "b_off", "b_rs", "b_cs"]
    fields += [f"bshape{d}" for d in range(1, nb)]
    fields += [f"a_bst{d}" for d in range(nb)] + [f"b_bst{d}" for d in range(nb)]
    meta = _Meta(fields)

    def source():
        batch_code = [f"    long a_base = {meta['a_off']}, b_base = {meta['b_off']};"]
        if nb:
            batch_code.append("    long rem = batch;")
            for d in range(nb - 1, 0, -1):
                size = meta[f"bshape{d}"]
                batch_code.append(
                    f"    {{ const long c = rem % {size}; rem /= {size}; "
                    f"a_base += c * {meta[f'a_bst{d}']}; b_base += c * {meta[f'b_bst{d}']}; }}"
                )
            batch_code.append(
                f"    a_base += rem * {meta['a_bst0']}; b_base += rem * {meta['b_bst0']};"
            )
        value = "((v) != 0)" if is_bool else "(v)"
        store = f"#define STORE(r, c, v) out[batch * M * N + (r) * N + (c)] = ({out_ct}){value}\n"
        if kind == "tiled":
            attribute = "__attribute__((reqd_work_group_size(TILE, TILE, 1)))"
            body = _tiled_matmul_body(acc_ctype)
        else:
            attribute = "__attribute__((reqd_work_group_size(BLOCK_GROUP, BLOCK_GROUP, 1)))"
            body = _blocked_matmul_body(acc_ctype)
        params = f"__global {out_ct}* out, __global const {a_ct}* a, __global const {b_ct}* b"
        return (
            _preamble(device)
            + f"#define TILE {TILE}\n#define BLOCK {BLOCK}\n#define BLOCK_GROUP {BLOCK_GROUP}\n"
            + store
            + f"__kernel {attribute}\nvoid matmul({params}, {meta.param()}) {{\n"
            + f"    const long M = {meta['M']}, N = {meta['N']}, K = {meta['K']};\n"
            + f"    const long a_rs = {meta['a_rs']}, a_cs = {1 if a_unit else meta['a_cs']};\n"
            + f"    const long b_rs = {meta['b_rs']}, b_cs = {1 if b_unit else meta['b_cs']};\n"
            + "    const long batch = get_global_id(2);\n"
            + "\n".join(batch_code)
            + body
            + "\n}\n"
        )

    kernel = device.build(key, source, "matmul")
    values = [m, n, k, a.offset, a._strides[-2], a._strides[-1]]
    values += [b.offset, b._strides[-2], b._strides[-1]]
    values += list(shape[1:]) + list(a_st) + list(b_st)
    if kind == "tiled":
        group = TILE
        global_size = ((n + TILE - 1) // TILE * TILE, (m + TILE - 1) // TILE * TILE, batch)
    else:
        group, span = BLOCK_GROUP, BLOCK_GROUP * BLOCK
        global_size = (
            (n + span - 1) // span * BLOCK_GROUP,
            (m + span - 1) // span * BLOCK_GROUP,
            batch,
        )
    args = [out.buffer, a.buffer, b.buffer, _Meta.pack(values)]
    launch(kernel, device, global_size, (group, group, 1), args)
    return out


# --- gather, scatter and scatter-add ------------------------------------------------------------
_ATOMIC_ADD = {
    "float": r"""
inline void _atomic_add(volatile __global float* p, float value) {
    union { uint u; float f; } old, new_;
    do { old.f = *p; new_.f = old.f + value; }
    while (atomic_cmpxchg((volatile __global uint*)p, old.u, new_.u) != old.u);
}
""",
    "double": r"""
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
inline void _atomic_add(volatile __global double* p, double value) {
    union { ulong u; double f; } old, new_;
    do { old.f = *p; new_.f = old.f + value; }
    while (atom_cmpxchg((volatile __global ulong*)p, old.u, new_.u) != old.u);
}
""",
    "int": r"""
inline void _atomic_add(volatile __global int* p, int value) { atomic_add(p, value); }
""",
    "uint": r"""
inline void _atomic_add(volatile __global uint* p, uint value) { atomic_add(p, value); }
""",
    "long": r"""
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
inline void _atomic_add(volatile __global long* p, long value) { atom_add(p, value); }
""",
    "ulong": r"""
#pragma OPENCL EXTENSION cl_khr_int64_base_atomics : enable
inline void _atomic_add(volatile __global ulong* p, ulong value) { atom_add(p, value); }
""",
}


def run_index(
    device, mode: str, target, other, indices: list, dims: list, adv_strides: list, errors: list
) -> None:
    """Gather, scatter or scatter-add through integer index arrays.

    Every operand is given with strides over the *result* shape ``other.shape``: ``target``
    (the indexed array, zero strides along the indexed axes), ``other`` (the gathered result,
    or the values to scatter) and each index array (zero strides along the other axes).
    Index ``k`` selects along an axis of size ``dims[k]`` whose stride is ``adv_strides[k]``;
    negative indices count from the end.  ``mode`` is ``"gather"``, ``"set"`` or ``"add"``.

    An out-of-bounds value in index ``k`` raises ``IndexError(errors[k])`` at the next host read
    (see ``Device.defer_error``); the launch itself never waits for the device.
    """
    n = other.size
    if n == 0:
        return
    arrays = [target, other] + list(indices)
    shape, strides = collapse(other.shape, [a._strides for a in arrays])
    max_dims = max(MAX_DIMS, len(shape))
    t_ct, o_ct = ctype(target.dtype), ctype(other.dtype)
    idx_cts = tuple(ctype(i.dtype) for i in indices)
    if mode == "add" and t_ct not in _ATOMIC_ADD:
        raise TypeError(f"opencl add.at: dtype {target.dtype} is not supported (no atomic add)")
    key = ("index", mode, t_ct, o_ct, idx_cts, max_dims)
    names = ["target", "other"] + [f"idx{k}" for k in range(len(indices))]
    fields = _strided_fields(names, max_dims)
    fields += [f"dim{k}" for k in range(len(indices))]
    fields += [f"adv_st{k}" for k in range(len(indices))]
    fields += [f"err{k}" for k in range(len(indices))]
    meta = _Meta(fields)

    def source():
        const_t = "const " if mode == "gather" else ""
        const_o = "" if mode == "gather" else "const "
        params = [f"__global {const_t}{t_ct}* target", f"__global {const_o}{o_ct}* other"]
        checks = []
        for k, ict in enumerate(idx_cts):
            params.append(f"__global const {ict}* idx{k}")
            dim = meta[f"dim{k}"]
            checks.append(
                f"    {{ long v = (long)idx{k}[j_idx{k}];\n"
                f"      if (v < -{dim} || v >= {dim}) {{\n"
                f"          atomic_cmpxchg(error, 0, (int){meta[f'err{k}']}); return; }}\n"
                f"      if (v < 0) v += {dim};\n"
                f"      t += v * {meta[f'adv_st{k}']}; }}"
            )
        params += ["volatile __global int* error", meta.param()]
        if mode == "gather":
            action = f"other[j_other] = ({o_ct})target[t];"
        elif mode == "set":
            action = f"target[t] = ({t_ct})other[j_other];"
        else:
            action = f"_atomic_add(&target[t], ({t_ct})other[j_other]);"
        return (
            _preamble(device)
            + (_ATOMIC_ADD[t_ct] if mode == "add" else "")
            + f"__kernel void index_kernel({', '.join(params)}) {{\n"
            + f"    const long gid = get_global_id(0);\n    if (gid >= {meta['n']}) return;\n"
            + _strided_index_code(meta, names, max_dims)
            + "\n    long t = j_target;\n"
            + "\n".join(checks)
            + f"\n    {action}\n}}\n"
        )

    kernel = device.build(key, source, "index_kernel")
    values = _strided_values(n, shape, [a.offset for a in arrays], strides, max_dims)
    values += list(dims) + list(adv_strides)
    values += [device.defer_error(IndexError, message) for message in errors]
    flag = device.error_flag()
    args = [target.buffer, other.buffer] + [i.buffer for i in indices] + [flag, _Meta.pack(values)]
    _launch(kernel, device, n, args)
