"""Packed, register-blocked matrix multiply for CPU OpenCL drivers (PoCL).

``run_gemm`` computes ``out[batch] = a[batch] @ b[batch]`` for float32 and float64 results
the way BLAS libraries do on CPUs:

* **Micro-kernel.**  One work item keeps an ``MR`` x ``NR`` block of ``out`` in registers
  (6 x 32 floats on AVX-512: two 64-byte vectors per row, which PoCL's LLVM emits as 24
  of the 32 256-bit registers) and adds one outer product per step along k: six broadcast
  elements of ``a`` times the two vectors of a row of ``b``.
* **Packing.**  ``b`` is copied into column panels of ``NR`` columns, k-major (a panel's row
  is two aligned vectors), zero-padded past the last column; ``a`` into row panels of
  ``MR`` rows, k-major, zero-padded past the last row.  Transposed, strided and broadcast
  operands are absorbed here, with loops specialised for unit strides along either axis
  (operands stored along k are transposed in ``VW`` x ``VW`` blocks).  An operand that fits
  in L2 (and, for ``a``, is not stored transposed) is read in place instead, which spares
  the copy and the launch; see :func:`run_gemm` for the rules.
* **Cache blocking.**  k is walked in blocks of ``KC``; within a block the work item runs
  through up to ``RP_MAX`` row panels with the same column panel, whose ``KC`` x ``NR``
  block stays in L1 while the row panels stream from L2.  The ``out`` block is read back
  and added to between k blocks.  Products with too few blocks for the cores and a long k
  (weight gradients of convolutions) split k into slices summed by a last kernel.

The kernels (pack a, pack b, four micro-kernel variants for packed or in-place operands,
and the split-k sum) live in one program built once per device and dtype set.  The packing
and micro-kernels run in work groups of a single work item: PoCL then compiles the
explicit vector code as written instead of vectorising across work items, and compiles
each kernel once, for its only group size.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from pygrad.backends.opencl.kernels import _Meta, collapse, ctype, launch

__all__ = ["MAX_BATCH_DIMS", "Blocking", "blocking", "supports", "run_gemm"]

MAX_BATCH_DIMS = 4  # collapsed batch axes the kernels decode; more go to the generic kernel
PACK_K = 64  # steps along k that one work item of a packing kernel copies
RP_MAX = 16  # row panels one work item of the micro-kernel runs through
MIN_ITEMS = 16  # work items the micro-kernel should have for two cores to share evenly
PACK_B_PANELS = 16  # a narrow b cut by its last column is packed for more row panels
PACK_BYTES = 1 << 21  # operands up to this size (L2) are read in place unless transposed
SMALL = 1 << 18  # products with at most this many multiply-adds are not packed
SUM_GROUP = 64  # work items per group of the kernel summing split-k partial products
KC_BYTES = 32768  # one k block of a column panel: KC * NR values fill 32 KiB of L1

# The micro-kernel's variants: whether a and b are read in place (True) or packed.
MICRO_KERNELS = {
    "gemm_pp": (False, False),
    "gemm_dp": (True, False),
    "gemm_pd": (False, True),
    "gemm_dd": (True, True),
}

_FIELDS = ["M", "N", "K", "KC", "RP", "npa", "npb", "S", "KS", "total"]
_FIELDS += ["a_off", "a_rs", "a_cs", "b_off", "b_rs", "b_cs", "b_len", "ap_bst", "bp_bst"]
_FIELDS += [f"bshape{d}" for d in range(MAX_BATCH_DIMS)]
_FIELDS += [f"a_bst{d}" for d in range(MAX_BATCH_DIMS)]
_FIELDS += [f"b_bst{d}" for d in range(MAX_BATCH_DIMS)]
_FIELDS += ["has_bias", "bias_off"]
_META = _Meta(_FIELDS)


class Blocking(NamedTuple):
    """Register and cache blocking of the micro-kernel for one dtype on one device."""

    mr: int  # rows of a block of out (accumulator rows)
    vw: int  # lanes of one vector (16 floats or 8 doubles: 64 bytes)
    nv: int  # vectors per row of a block: NR = nv * vw columns
    kc: int  # steps along k per cache block

    @property
    def nr(self) -> int:
        return self.nv * self.vw


def blocking(device, dtype) -> Blocking:
    """The :class:`Blocking` for ``dtype`` on ``device``.

    Vectors are 64 bytes.  Where the device's native vectors are that wide (AVX-512, 32
    registers) a block row takes two of them, 6 x 32 floats: per step two vector loads of b
    and six broadcasts of a feed the block, against thirteen loads for the same work with
    12 x 16 blocks (the micro-kernel measured about 20% faster on PoCL; its LLVM splits each
    64-byte vector into two 256-bit registers, and forcing 512-bit code gained nothing
    here).  Narrower native vectors (AVX2, 16 registers) take one 64-byte vector (two
    registers) per row.  A k block of a column panel fills 32 KiB of L1.
    """
    itemsize = np.dtype(dtype).itemsize
    vw = 64 // itemsize
    cl_device = device.cl_device
    native = (
        cl_device.native_vector_width_double
        if itemsize == 8
        else cl_device.native_vector_width_float
    )
    nv = 2 if native >= vw else 1
    return Blocking(6, vw, nv, KC_BYTES // (nv * vw * itemsize))


def supports(device, a, b, out) -> bool:
    """Whether :func:`run_gemm` handles this product: a CPU device, a float32 or float64
    result, float operands and few enough batch axes."""
    return (
        device.is_cpu
        and out.dtype in (np.float32, np.float64)
        and a.dtype.kind == "f"
        and b.dtype.kind == "f"
        and out.ndim - 2 <= MAX_BATCH_DIMS
    )


def _batch_code(name: str) -> str:
    """C statements adding to ``{name}_base`` the offset of batch item ``batch`` (decoded
    along the padded batch shape, the last axis fastest)."""
    lines = ["    { long rem = batch;"]
    for d in range(MAX_BATCH_DIMS - 1, 0, -1):
        size = _META[f"bshape{d}"]
        lines.append(
            f"      {{ const long c = rem % {size}; rem /= {size}; "
            f"{name}_base += c * {_META[f'{name}_bst{d}']}; }}"
        )
    lines.append(f"      {name}_base += rem * {_META[f'{name}_bst0']}; }}")
    return "\n".join(lines)


def _source(t: str, a_t: str, b_t: str, blk: Blocking) -> str:
    """The program: ``pack_a``, ``pack_b``, ``sum_splits`` and the micro-kernel variants of
    :data:`MICRO_KERNELS`."""
    m = _META
    mr, vw, nv, nr = blk.mr, blk.vw, blk.nv, blk.nr
    v = f"{t}{vw}"
    lane = [f"s{i:x}" for i in range(vw)]
    # PoCL calls its min() and vload/vstore builtins instead of inlining them; a macro and
    # vector types of element alignment (plain loads and stores at any address) avoid that.
    head = (
        f"#define T {t}\n#define MR {mr}\n#define NR {nr}\n#define VW {vw}\n#define PK {PACK_K}\n"
        "#define MIN(x, y) ((x) < (y) ? (x) : (y))\n"
        + "".join(
            f"typedef {u} {u}u{vw} __attribute__((ext_vector_type({vw}), aligned(sizeof({u}))));\n"
            for u in dict.fromkeys((t, a_t, b_t))
        )
    )
    # Each packing work item copies PK steps along k of one panel.  The loops are written
    # once per layout so that the compiler sees unit strides as constants.  Operands stored
    # along k (a row-major, b transposed) are transposed in blocks of VW steps: vector loads
    # along k, then the panel's rows built from their lanes (shuffles).
    a_block = "\n".join(
        f"            const {a_t}{vw} v{r} = *(__global const {a_t}u{vw}*)(src + {r} * rs + k);"
        for r in range(mr)
    )
    a_block += "\n" + "\n".join(
        f"            dst[(k + {i}) * MR + {r}] = ({t})v{r}.{lane[i]};"
        for i in range(vw)
        for r in range(mr)
    )
    # One vector of the panel's row at a time: VW columns loaded, VW rows built, which keeps
    # half as many values live as loading all NR columns first.
    b_block = "\n".join(
        "            {\n"
        + "\n".join(
            f"            const {b_t}{vw} v{c} = "
            f"*(__global const {b_t}u{vw}*)(src + {j * vw + c} * cs + k);"
            for c in range(vw)
        )
        + "\n"
        + "\n".join(
            f"            *(__global {v}*)(dst + (k + {i}) * NR + {j * vw}) = ({v})("
            + ", ".join(f"({t})v{c}.{lane[i]}" for c in range(vw))
            + ");"
            for i in range(vw)
        )
        + "\n            }"
        for j in range(nv)
    )
    convert_b = "" if b_t == t else f"convert_{v}"
    b_rows = "\n".join(
        f"            *(__global {v}*)(dst + k * NR + {j * vw}) = "
        f"{convert_b}(*(__global const {b_t}u{vw}*)(src + k * rs + {j * vw}));"
        for j in range(nv)
    )
    pack_a = f"""
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void pack_a(__global {t}* restrict ap, __global const {a_t}* restrict a, {m.param()}) {{
    const long M = {m["M"]}, K = {m["K"]}, ip = get_global_id(0), batch = get_global_id(2);
    const long k0 = get_global_id(1) * PK, k1 = MIN(k0 + PK, K);
    const long row0 = ip * MR, rows = MIN((long)MR, M - row0);
    const long rs = {m["a_rs"]}, cs = {m["a_cs"]};
    long a_base = {m["a_off"]};
{_batch_code("a")}
    __global const {a_t}* restrict src = a + a_base + row0 * rs;
    __global {t}* restrict dst = ap + batch * {m["ap_bst"]} + ip * MR * K;
    if (rows == MR && rs == 1) {{
        for (long k = k0; k < k1; ++k)
            for (int r = 0; r < MR; ++r) dst[k * MR + r] = ({t})src[k * cs + r];
    }} else if (rows == MR && cs == 1) {{
        long k = k0;
        for (; k + VW <= k1; k += VW) {{
{a_block}
        }}
        for (; k < k1; ++k)
            for (int r = 0; r < MR; ++r) dst[k * MR + r] = ({t})src[r * rs + k];
    }} else {{
        for (long k = k0; k < k1; ++k)
            for (int r = 0; r < MR; ++r)
                dst[k * MR + r] = r < rows ? ({t})src[r * rs + k * cs] : 0;
    }}
}}
"""
    pack_b = f"""
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void pack_b(__global {t}* restrict bp, __global const {b_t}* restrict b, {m.param()}) {{
    const long N = {m["N"]}, K = {m["K"]}, jp = get_global_id(0), batch = get_global_id(2);
    const long k0 = get_global_id(1) * PK, k1 = MIN(k0 + PK, K);
    const long col0 = jp * NR, cols = MIN((long)NR, N - col0);
    const long rs = {m["b_rs"]}, cs = {m["b_cs"]};
    long b_base = {m["b_off"]};
{_batch_code("b")}
    __global const {b_t}* restrict src = b + b_base + col0 * cs;
    __global {t}* restrict dst = bp + batch * {m["bp_bst"]} + jp * NR * K;
    if (cols == NR && cs == 1) {{
        for (long k = k0; k < k1; ++k) {{
{b_rows}
        }}
    }} else if (cols == NR && rs == 1) {{
        long k = k0;
        for (; k + VW <= k1; k += VW) {{
{b_block}
        }}
        for (; k < k1; ++k)
            for (int c = 0; c < NR; ++c) dst[k * NR + c] = ({t})src[c * cs + k];
    }} else {{
        for (long k = k0; k < k1; ++k)
            for (int c = 0; c < NR; ++c)
                dst[k * NR + c] = c < cols ? ({t})src[k * rs + c * cs] : 0;
    }}
}}
"""
    rows = range(mr)
    vecs = range(nv)
    zero = " ".join(f"{v} c{r}_{j} = 0;" for r in rows for j in vecs)

    def kernel(name: str, a_direct: bool, b_direct: bool) -> str:
        setup = []
        if a_direct:
            # Rows past the edge read the last row again; their results are not stored.
            setup += [
                f"    long a_base = {m['a_off']};",
                _batch_code("a"),
                f"    const long a_rs = {m['a_rs']}, a_cs = {m['a_cs']};",
            ]
            panel = [f"            __global const {a_t}* ak = a + a_base + kb * a_cs;"]
            panel += [f"            const long o{r} = MIN(row0 + {r}, M - 1) * a_rs;" for r in rows]
            element, a_step, a_type = "({t})ak[o{r}]", "ak += a_cs;", a_t
        else:
            setup.append(f"    __global const {t}* a_batch = a + batch * {m['ap_bst']};")
            panel = [f"            __global const {t}* ak = a_batch + ip * MR * K + kb * MR;"]
            element, a_step, a_type = "ak[{r}]", "ak += MR;", t
        if b_direct:
            # Rows of b read in place (unit column stride): unaligned vector loads, or, in a
            # panel cut by the last column, the columns that exist.
            setup += [
                f"    long b_base = {m['b_off']};",
                _batch_code("b"),
                f"    const long b_rs = {m['b_rs']}, b_len = {m['b_len']};",
                "    __global const T* b_panel = b + b_base + col0;",
            ]
            panel.append("            __global const T* bk = b_panel + kb * b_rs;")
            b_full = " ".join(
                f"const {v} bv{j} = *(__global const {t}u{vw}*)(bk + {j * vw});" for j in vecs
            )
            b_edge = "for (int l = 0; l < cols; ++l) row[l] = bk[l]; " + " ".join(
                f"const {v} bv{j} = *(__private {v}*)(row + {j * vw});" for j in vecs
            )
            b_step = "bk += b_rs;"
        else:
            setup.append(
                f"    __global const {t}* b_panel = b + batch * {m['bp_bst']} + jp * NR * K;"
            )
            panel.append("            __global const T* bk = b_panel + kb * NR;")
            b_full = b_edge = " ".join(
                f"const {v} bv{j} = *(__global const {v}*)(bk + {j * vw});" for j in vecs
            )
            b_step = "bk += NR;"
        fma = "\n".join(
            f"                {{ const {t} x = {element.format(t=t, r=r)}; "
            + " ".join(f"c{r}_{j} += x * bv{j};" for j in vecs)
            + " }"
            for r in rows
        )

        def loop(load: str, count: str = "kn") -> str:
            return (
                f"for (long k = 0; k < {count}; ++k) {{\n                {load}\n{fma}\n"
                f"                {a_step} {b_step}\n            }}"
            )

        if b_direct:
            # In a panel cut by the last column, full-width rows are still loaded while
            # they lie inside b's buffer (the extra lanes are computed, never stored); only
            # the last rows go column by column.
            loops = (
                f"            if (cols == NR) {loop(b_full)}\n"
                "            else {\n"
                "                const long end = b_len - (b_panel - b) - kb * b_rs - NR;\n"
                "                const long safe = b_rs > 0 && end >= 0 ? MIN(end / b_rs + 1, kn) : 0;\n"
                "                for (int l = cols; l < NR; ++l) row[l] = 0;\n"
                f"            {loop(b_full, 'safe')}\n"
                f"            {loop(b_edge, 'kn - safe')} }}"
            )
        else:
            loops = f"            {loop(b_full)}"
        # A bias (one value per column) joins the first store of the first slice of k.
        bias_load = "\n".join(
            f"                    const {v} bias{j} = add_bias ? "
            f"*(__global const {t}u{vw}*)(bias_tile + {j * vw}) : ({v})(0);"
            for j in vecs
        )
        full_store = (
            bias_load
            + "\n"
            + "\n".join(
                f"                    {{ __global {t}u{vw}* p = "
                f"(__global {t}u{vw}*)(c_tile + {r} * N + {j * vw});"
                f" *p = first ? c{r}_{j} + bias{j} : *p + c{r}_{j}; }}"
                for r in rows
                for j in vecs
            )
        )
        # Blocks cut by the edge go through a private row (vector stores, scalar reads):
        # picking lanes by a run-time index would spill each lane separately.
        edge_store = "\n".join(
            f"                    if ({r} < rows) {{ __global {t}* p = c_tile + {r} * N; "
            + " ".join(f"*(__private {v}*)(row + {j * vw}) = c{r}_{j};" for j in vecs)
            + " for (int l = 0; l < cols; ++l)"
            + " p[l] = (first ? (add_bias ? bias_tile[l] : 0) : p[l]) + row[l]; }"
            for r in rows
        )
        return f"""
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void {name}(__global T* out, __global const {a_type}* a, __global const T* b,
        __global const T* bias, {m.param()}) {{
    const long M = {m["M"]}, N = {m["N"]}, K = {m["K"]}, KC = {m["KC"]}, S = {m["S"]};
    const long jp = get_global_id(0), batch = get_global_id(2) / S;
    const long split = get_global_id(2) - batch * S;
    const long ip0 = get_global_id(1) * {m["RP"]};
    const long ip1 = MIN(ip0 + {m["RP"]}, {m["npa"]});
    const long col0 = jp * NR, cols = MIN((long)NR, N - col0);
    const long k_start = split * {m["KS"]}, k_end = MIN(k_start + {m["KS"]}, K);
{chr(10).join(setup)}
    __global T* out_batch = out + (split * {m["total"]} + batch * M * N);
    {v} row_vectors[{nv}];  /* one block row, for the edges; vector-aligned */
    __private T* row = (__private T*)row_vectors;
    for (long kb = k_start; kb < k_end; kb += KC) {{
        const long kn = MIN(KC, k_end - kb);
        const int first = kb == k_start;
        for (long ip = ip0; ip < ip1; ++ip) {{
            const long row0 = ip * MR, rows = MIN((long)MR, M - row0);
{chr(10).join(panel)}
            {zero}
{loops}
            {{
                __global T* c_tile = out_batch + row0 * N + col0;
                __global const T* bias_tile = bias + {m["bias_off"]} + col0;
                const int add_bias = {m["has_bias"]} && split == 0;
                if (rows == MR && cols == NR) {{
{full_store}
                }} else {{
{edge_store}
                }}
            }}
        }}
    }}
}}
"""

    # The partial products of the S slices of k, summed into the result.
    sum_splits = f"""
__kernel __attribute__((reqd_work_group_size({SUM_GROUP}, 1, 1)))
void sum_splits(__global T* out, __global const T* parts, {m.param()}) {{
    const long i = get_global_id(0), total = {m["total"]}, S = {m["S"]};
    if (i >= total) return;
    T sum = parts[i];
    for (long s = 1; s < S; ++s) sum += parts[s * total + i];
    out[i] = sum;
}}
"""
    micro = "".join(kernel(name, *how) for name, how in MICRO_KERNELS.items())
    return head + pack_a + pack_b + micro + sum_splits


class _Plan(NamedTuple):
    """What one dtype combination needs on one device: its blocking and kernels."""

    blocking: Blocking
    pack_a: object
    pack_b: object
    sum_splits: object
    micro: dict  # MICRO_KERNELS name -> kernel


def _plan(device, out_dtype, a_dtype, b_dtype) -> _Plan:
    """The :class:`_Plan` for these dtypes, its program built on first use and remembered
    in the device's kernel cache (one lookup per call afterwards)."""
    key = ("gemm", out_dtype, a_dtype, b_dtype)
    plan = device.kernels.get(key)
    if plan is None:
        t, a_t, b_t = ctype(out_dtype), ctype(a_dtype), ctype(b_dtype)
        blk = blocking(device, out_dtype)
        names = ("pack_a", "pack_b", "sum_splits") + tuple(MICRO_KERNELS)
        extra = [(key + (name,), name) for name in names[1:]]
        source = lambda: _source(t, a_t, b_t, blk)  # noqa: E731
        first = device.build(key + (names[0],), source, names[0], extra)
        rest = [device.build(key + (name,), None, name) for name in names[1:]]
        plan = _Plan(blk, first, rest[0], rest[1], dict(zip(MICRO_KERNELS, rest[2:])))
        device.kernels[key] = plan
    return plan


def _round_up(n: int, step: int) -> int:
    return (n + step - 1) // step * step


def run_gemm(
    device,
    a,
    b,
    out,
    batch_shape: tuple,
    a_batch: tuple,
    b_batch: tuple,
    pack_a=None,
    pack_b=None,
    bias=None,
):
    """``out[batch] = a[batch] @ b[batch]`` with packed operands (see the module docstring).

    Parameters
    ----------
    device : Device
        A CPU device (see :func:`supports`).
    a, b : ndarray
        Operands whose last two axes are the ``(M, K)`` and ``(K, N)`` matrices, with any
        strides; float32 or float64.
    out : ndarray
        C-contiguous, of shape ``batch_shape + (M, N)``, float32 or float64.
    batch_shape : tuple of int
        The broadcast batch shape (at most :data:`MAX_BATCH_DIMS` axes after merging).
    a_batch, b_batch : tuple of int
        Strides (elements) of ``a`` and ``b`` along ``batch_shape``; 0 where broadcast.
    bias : ndarray, optional
        A C-contiguous vector of ``N`` values of ``out``'s dtype added to every row of the
        result as it is stored (a layer's bias, at no extra launch).
    pack_a, pack_b : bool, optional
        Whether ``a`` and ``b`` are packed (True) or read in place (False; ``b`` is packed
        anyway unless its columns are adjacent and of the result's dtype).  By default an
        operand is packed when its panels are read often enough to repay the copy and it is
        larger than :data:`PACK_BYTES` (or, for ``a``, stored transposed): ``a`` when
        there are at least three column panels and ``K >= NR``, ``b`` when more than two
        row blocks of work items read it (or when a panel cut by the last column is much of
        a narrow ``b`` used by more than :data:`PACK_B_PANELS` row panels); neither when the
        product has at most :data:`SMALL` multiply-adds.

    Returns
    -------
    ndarray
        ``out``.
    """
    m, k = a.shape[-2:]
    n = b.shape[-1]
    if out.size == 0:
        return out
    if k == 0:
        out.fill(0)
        if bias is not None:
            out += bias
        return out
    plan = _plan(device, out.dtype, a.dtype, b.dtype)
    mr, nr, kc = plan.blocking.mr, plan.blocking.nr, plan.blocking.kc
    shape, (a_st, b_st) = collapse(batch_shape, [a_batch, b_batch])
    if len(shape) > MAX_BATCH_DIMS:
        raise ValueError(f"gemm: {len(shape)} batch axes after merging, at most {MAX_BATCH_DIMS}")
    batch = 1
    for size in batch_shape:
        batch *= size
    pad = MAX_BATCH_DIMS - len(shape)
    shape = (1,) * pad + tuple(shape)
    a_st = (0,) * pad + tuple(a_st)
    b_st = (0,) * pad + tuple(b_st)
    npa, npb = (m + mr - 1) // mr, (n + nr - 1) // nr
    # Work items: column panels x row blocks (RP_MAX row panels each) x slices of k.  When
    # that leaves fewer than MIN_ITEMS and k is long, k is split first into slices whose
    # partial products are summed afterwards (cheap: the result is small next to the
    # operands); smaller row blocks come second, since each row block reads all of b.
    items = npb * -(-npa // RP_MAX) * batch
    splits = 1
    if items < MIN_ITEMS and k >= 8 * kc:
        splits = min(-(-MIN_ITEMS // items), k // (4 * kc))
        k_split = -(-k // splits)
        k_split = -(-k_split // kc) * kc
        splits = -(-k // k_split)
    k_split = -(-k // splits)
    rp = min(RP_MAX, npa)
    while rp > 1 and npb * -(-npa // rp) * batch * splits < MIN_ITEMS:
        rp = (rp + 1) // 2
    rp = -(-npa // -(-npa // rp))  # the same number of work items, evenly filled
    # Packing pays when the panels are read many times (a row panel once per column panel,
    # a column panel once per row block) from an operand too large to stay in L2, or when a
    # is stored transposed (read in place, each step along k would touch a new cache line).
    # Otherwise operands are read in place, which also saves the packing launches that
    # dominate small products.  b is read in place only with unit column stride and the
    # result's dtype (its rows are loaded as vectors).
    itemsize = out.dtype.itemsize
    b_in_place = b._strides[-1] == 1 and b.dtype == out.dtype
    small = m * n * k <= SMALL
    if pack_a is None:
        a_transposed = a._strides[-2] == 1 and a._strides[-1] != 1 and m > 1
        a_large = m * k * itemsize > PACK_BYTES
        pack_a = k >= nr and npb >= 3 and not small and (a_transposed or a_large)
    if pack_b is None:
        # A column panel's k block is read from memory once per row block.
        reused = -(-npa // rp) > 2 and k * n * itemsize > PACK_BYTES
        # Read in place, a panel cut by the last column loads its columns one by one at
        # every step; zero-padded packing spares that where such a panel is much of b.
        narrow = n % nr != 0 and npb <= 2 and npa > PACK_B_PANELS
        pack_b = (reused or narrow) and not small
    pack_b = pack_b or not b_in_place
    # A broadcast operand is packed once and every batch item reads the same panels.
    a_items = batch if any(a_st) else 1
    b_items = batch if any(b_st) else 1
    ap_size = npa * mr * k
    bp_size = npb * nr * k
    total = batch * m * n
    values = [m, n, k, kc, rp, npa, npb, splits, k_split, total]
    values += [a.offset, a._strides[-2], a._strides[-1], b.offset, b._strides[-2], b._strides[-1]]
    values.append(b.buffer.size // b.dtype.itemsize)
    values += [ap_size if a_items > 1 else 0, bp_size if b_items > 1 else 0]
    values += list(shape) + list(a_st) + list(b_st)
    values += [0, 0] if bias is None else [1, bias.offset]
    meta = _Meta.pack(values)
    k_chunks = -(-k // PACK_K)
    if pack_b:
        b_arg = device.allocate(bp_size * b_items * itemsize)
        launch(plan.pack_b, device, (npb, k_chunks, b_items), (1, 1, 1), [b_arg, b.buffer, meta])
    else:
        b_arg = b.buffer
    if pack_a:
        a_arg = device.allocate(ap_size * a_items * itemsize)
        launch(plan.pack_a, device, (npa, k_chunks, a_items), (1, 1, 1), [a_arg, a.buffer, meta])
    else:
        a_arg = a.buffer
    micro = plan.micro["gemm_" + "dp"[pack_a] + "dp"[pack_b]]
    target = out.buffer if splits == 1 else device.allocate(splits * total * itemsize)
    grid = (npb, -(-npa // rp), batch * splits)
    bias_arg = out.buffer if bias is None else bias.buffer  # never read without a bias
    launch(micro, device, grid, (1, 1, 1), [target, a_arg, b_arg, bias_arg, meta])
    if splits > 1:
        global_size = (_round_up(total, SUM_GROUP),)
        launch(plan.sum_splits, device, global_size, (SUM_GROUP,), [out.buffer, target, meta])
    return out
