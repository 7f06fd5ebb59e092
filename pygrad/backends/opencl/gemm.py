"""Packed, register-blocked matrix multiply for CPU OpenCL drivers (PoCL).

``run_gemm`` computes ``out[batch] = a[batch] @ b[batch]`` for float32 and float64 the way
BLAS libraries do on CPUs:

* **Packing.**  ``b`` is copied into column panels of ``NR`` columns, k-major (the ``NR``
  values of one row of a panel are adjacent and aligned, so the micro-kernel reads them with
  one vector load), zero-padded past the last column.  ``a`` is copied into row panels of
  ``MR`` rows, k-major, zero-padded past the last row, unless it is read in place (see
  :func:`run_gemm`).  Transposed, strided and broadcast operands are absorbed here: the
  micro-kernel only ever sees the packed layout.
* **Micro-kernel.**  One work item keeps an ``MR`` x ``NR`` block of ``out`` in ``MR`` vector
  registers (``float16`` rows on AVX-512, so 12 rows use 12 of the 32 registers) and adds one
  outer product per step along k: a broadcast element of ``a`` times the vector row of ``b``.
* **Cache blocking.**  k is walked in blocks of ``KC``; within a block the work item runs
  through ``RP`` row panels with the same column panel, whose ``KC`` x ``NR`` block stays in
  L1 while the row panels stream from L2.  The ``out`` block is read back and added to
  between k blocks.

The three kernels (pack a, pack b, micro-kernel; the last also in a variant reading ``a`` in
place) live in one program built once per device and dtype set.  Work groups hold a single
work item: PoCL then compiles the explicit vector code as written instead of trying to
vectorise across work items, and it compiles a kernel once for its only group size.
"""

from __future__ import annotations

import numpy as np

from pygrad.backends.opencl.kernels import _Meta, collapse, ctype

__all__ = ["MAX_BATCH_DIMS", "blocking", "supports", "run_gemm"]

MAX_BATCH_DIMS = 4  # collapsed batch axes the kernels decode; more go to the generic kernel
PACK_GROUP = 64  # work items per group of the packing kernels
KC_BYTES = 16384  # one k block of a column panel: KC * NR values fill 16 KiB of L1

_FIELDS = [
    "M",
    "N",
    "K",
    "KC",
    "RP",
    "npa",
    "npb",
    "a_off",
    "a_rs",
    "a_cs",
    "b_off",
    "b_rs",
    "b_cs",
    "ap_bst",
    "bp_bst",
]
_FIELDS += [f"bshape{d}" for d in range(MAX_BATCH_DIMS)]
_FIELDS += [f"a_bst{d}" for d in range(MAX_BATCH_DIMS)]
_FIELDS += [f"b_bst{d}" for d in range(MAX_BATCH_DIMS)]
_META = _Meta(_FIELDS)


def blocking(device, dtype) -> tuple:
    """``(MR, NR, KC)`` for ``dtype`` on ``device``.

    ``NR`` is one 64-byte vector (16 floats or 8 doubles).  ``MR`` takes 12 accumulator rows
    where the device's native vectors are that wide (AVX-512: 32 registers) and 6 where they
    are half as wide (AVX2: each row takes two of the 16 registers).
    """
    itemsize = np.dtype(dtype).itemsize
    nr = 64 // itemsize
    cl_device = device.cl_device
    native = (
        cl_device.native_vector_width_double
        if itemsize == 8
        else cl_device.native_vector_width_float
    )
    mr = 12 if native >= nr else 6
    return mr, nr, KC_BYTES // (nr * itemsize)


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


def _source(t: str, a_t: str, b_t: str, mr: int, nr: int) -> str:
    """The program: ``pack_a``, ``pack_b``, ``gemm_packed`` and ``gemm_direct``."""
    m = _META
    v = f"{t}{nr}"
    head = f"#define MR {mr}\n#define NR {nr}\n" + m.typedef()
    pack_a = f"""
__kernel __attribute__((reqd_work_group_size({PACK_GROUP}, 1, 1)))
void pack_a(__global {t}* ap, __global const {a_t}* a, {m.param()}) {{
    const long K = {m["K"]}, M = {m["M"]}, gid = get_global_id(0), batch = get_global_id(1);
    if (gid >= {m["npa"]} * K) return;
    const long ip = gid / K, k = gid - ip * K, row0 = ip * MR;
    long a_base = {m["a_off"]};
{_batch_code("a")}
    __global const {a_t}* src = a + a_base + k * {m["a_cs"]};
    const long rs = {m["a_rs"]};
    __global {t}* dst = ap + batch * {m["ap_bst"]} + gid * MR;
    if (row0 + MR <= M) {{
        for (int r = 0; r < MR; ++r) dst[r] = ({t})src[(row0 + r) * rs];
    }} else {{
        for (int r = 0; r < MR; ++r) dst[r] = row0 + r < M ? ({t})src[(row0 + r) * rs] : 0;
    }}
}}
"""
    pack_b = f"""
__kernel __attribute__((reqd_work_group_size({PACK_GROUP}, 1, 1)))
void pack_b(__global {t}* bp, __global const {b_t}* b, {m.param()}) {{
    const long K = {m["K"]}, N = {m["N"]}, gid = get_global_id(0), batch = get_global_id(1);
    if (gid >= {m["npb"]} * K) return;
    const long jp = gid / K, k = gid - jp * K, col0 = jp * NR;
    long b_base = {m["b_off"]};
{_batch_code("b")}
    __global const {b_t}* src = b + b_base + k * {m["b_rs"]};
    const long cs = {m["b_cs"]};
    __global {t}* dst = bp + batch * {m["bp_bst"]} + gid * NR;
    if (col0 + NR <= N) {{
        for (int c = 0; c < NR; ++c) dst[c] = ({t})src[(col0 + c) * cs];
    }} else {{
        for (int c = 0; c < NR; ++c) dst[c] = col0 + c < N ? ({t})src[(col0 + c) * cs] : 0;
    }}
}}
"""
    rows = range(mr)
    zero = " ".join(f"{v} c{r} = 0;" for r in rows)

    def kernel(name: str, direct: bool) -> str:
        if direct:
            # Rows past the edge read the last row again; their results are not stored.
            setup = [
                f"    long a_base = {m['a_off']};",
                _batch_code("a"),
                f"    const long a_rs = {m['a_rs']}, a_cs = {m['a_cs']};",
            ]
            panel = f"            __global const {a_t}* ak = a + a_base + kb * a_cs;\n" + "\n".join(
                f"            const long o{r} = min(row0 + {r}, M - 1) * a_rs;" for r in rows
            )
            element = "({t})ak[o{r}]"
            advance = "ak += a_cs;"
            a_type = a_t
        else:
            setup = [f"    __global const {t}* a_batch = a + batch * {m['ap_bst']};"]
            panel = f"            __global const {t}* ak = a_batch + ip * MR * K + kb * MR;"
            element = "ak[{r}]"
            advance = "ak += MR;"
            a_type = t
        step = [f"                const {v} bv = *(__global const {v}*)bk;"]
        step += [f"                c{r} += {element.format(t=t, r=r)} * bv;" for r in rows]
        full_store = "\n".join(
            f"                    {{ __global {t}* p = c_tile + {r} * N; "
            f"vstore{nr}(kb ? vload{nr}(0, p) + c{r} : c{r}, 0, p); }}"
            for r in rows
        )
        edge_store = "\n".join(
            f"                    if ({r} < rows) {{ __global {t}* p = c_tile + {r} * N; "
            f"for (int j = 0; j < cols; ++j) p[j] = (kb ? p[j] : 0) + c{r}[j]; }}"
            for r in rows
        )
        return f"""
__kernel __attribute__((reqd_work_group_size(1, 1, 1)))
void {name}(__global {t}* out, __global const {a_type}* a, __global const {t}* bp,
            {m.param()}) {{
    const long M = {m["M"]}, N = {m["N"]}, K = {m["K"]}, KC = {m["KC"]};
    const long jp = get_global_id(0), batch = get_global_id(2);
    const long ip0 = get_global_id(1) * {m["RP"]};
    const long ip1 = min(ip0 + {m["RP"]}, {m["npa"]});
    const long col0 = jp * NR, cols = min((long)NR, N - col0);
{chr(10).join(setup)}
    __global const {t}* b_panel = bp + batch * {m["bp_bst"]} + jp * NR * K;
    __global {t}* out_batch = out + batch * M * N;
    for (long kb = 0; kb < K; kb += KC) {{
        const long kn = min(KC, K - kb);
        for (long ip = ip0; ip < ip1; ++ip) {{
            const long row0 = ip * MR, rows = min((long)MR, M - row0);
{panel}
            __global const {t}* bk = b_panel + kb * NR;
            {zero}
            for (long k = 0; k < kn; ++k) {{
{chr(10).join(step)}
                {advance} bk += NR;
            }}
            {{
                __global {t}* c_tile = out_batch + row0 * N + col0;
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

    return head + pack_a + pack_b + kernel("gemm_packed", False) + kernel("gemm_direct", True)


def _program(device, t: str, a_t: str, b_t: str, mr: int, nr: int):
    """The four kernels for these types, from one program built once per device."""
    key = ("gemm", t, a_t, b_t, mr, nr)
    names = ("pack_a", "pack_b", "gemm_packed", "gemm_direct")
    extra = [(key + (name,), name) for name in names[1:]]
    first = device.build(key + (names[0],), lambda: _source(t, a_t, b_t, mr, nr), names[0], extra)
    return (first,) + tuple(device.build(key + (name,), None, name) for name in names[1:])


def _round_up(n: int, step: int) -> int:
    return (n + step - 1) // step * step


def run_gemm(device, a, b, out, batch_shape: tuple, a_batch: tuple, b_batch: tuple, pack_a=None):
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
    pack_a : bool, optional
        Whether ``a`` is packed too.  By default it is, except when it is so short along k
        that its rows are used once per column panel anyway (``K`` below ``NR``) and packing
        would only add a pass over it.

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
        return out
    t = ctype(out.dtype)
    mr, nr, kc = blocking(device, out.dtype)
    shape, (a_st, b_st) = collapse(batch_shape, [a_batch, b_batch])
    if len(shape) > MAX_BATCH_DIMS:
        raise ValueError(f"gemm: {len(shape)} batch axes after merging, at most {MAX_BATCH_DIMS}")
    batch = int(np.prod(batch_shape, dtype=np.int64))
    pad = MAX_BATCH_DIMS - len(shape)
    shape = (1,) * pad + tuple(shape)
    a_st = (0,) * pad + tuple(a_st)
    b_st = (0,) * pad + tuple(b_st)
    npa, npb = (m + mr - 1) // mr, (n + nr - 1) // nr
    if pack_a is None:
        pack_a = k >= nr
    kernels = _program(device, t, ctype(a.dtype), ctype(b.dtype), mr, nr)
    pack_a_kernel, pack_b_kernel, gemm_packed, gemm_direct = kernels
    # A broadcast operand is packed once and every batch item reads the same panels.
    a_items = batch if any(a_st) else 1
    b_items = batch if any(b_st) else 1
    ap_size = npa * mr * k
    bp_size = npb * nr * k
    # Row panels per work item: as many as keep at least 16 work items for the cores.
    rp = 8
    while rp > 1 and npb * ((npa + rp - 1) // rp) * batch < 16:
        rp //= 2
    values = [m, n, k, kc, rp, npa, npb, a.offset, a._strides[-2], a._strides[-1]]
    values += [b.offset, b._strides[-2], b._strides[-1]]
    values += [ap_size if a_items > 1 else 0, bp_size if b_items > 1 else 0]
    values += list(shape) + list(a_st) + list(b_st)
    meta = _Meta.pack(values)
    itemsize = out.dtype.itemsize
    queue = device.queue
    b_packed = device.allocate(bp_size * b_items * itemsize)
    pack_b_kernel(
        queue,
        (_round_up(npb * k, PACK_GROUP), b_items),
        (PACK_GROUP, 1),
        b_packed,
        b.buffer,
        meta,
    )
    if pack_a:
        a_packed = device.allocate(ap_size * a_items * itemsize)
        pack_a_kernel(
            queue,
            (_round_up(npa * k, PACK_GROUP), a_items),
            (PACK_GROUP, 1),
            a_packed,
            a.buffer,
            meta,
        )
        micro, a_arg = gemm_packed, a_packed
    else:
        micro, a_arg = gemm_direct, a.buffer
    micro(
        queue,
        (npb, (npa + rp - 1) // rp, batch),
        (1, 1, 1),
        out.buffer,
        a_arg,
        b_packed,
        meta,
    )
    return out
