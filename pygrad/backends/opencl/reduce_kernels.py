"""Parallel reductions for the OpenCL array module: one program per operation and dtypes, three
first-stage strategies chosen per call, and a second stage that merges partial results.

A reduction maps each output element to the elements of the reduced axes.  After dropping
size-1 axes and merging contiguous ones, the layout decides the kernel:

* **rows** -- the innermost reduced axis is contiguous (row sums, totals, per-channel sums of
  NCHW data): a work item walks a contiguous run with ``LANES`` independent accumulators,
  which the compiler turns into vector code.  Long reductions with few outputs are split into
  pieces, one work item each, whose partial results a second kernel merges.
* **columns** -- the innermost *kept* axis is contiguous (column sums): a work item keeps
  ``LANES`` neighbouring outputs in registers and reads ``LANES`` contiguous elements per
  reduced position, for one or several neighbouring tiles of ``LANES`` outputs.  When there
  are too few outputs to occupy the device, or consecutive reduced positions lie on
  different pages (then in chunks of ``COLUMN_CHUNK``, so that work items running one after
  another read neighbouring memory), the reduced range is cut into chunks merged by a
  second kernel.
* **strided rows** -- anything else: the rows kernel with a run-time stride.

Every size and stride is a run-time field of one argument buffer (:class:`kernels._Meta`),
so one compiled program per operation and dtypes holds the four kernels and serves every
shape.  On a CPU each work item runs alone in its group: PoCL compiles a kernel again for
every work-group size, and runs the items of a group one after another anyway.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from pygrad.backends.opencl.kernels import (
    C_TYPES,
    MAX_DIMS,
    MetaArgs,
    _Meta,
    _padded,
    _preamble,
    collapse,
    launch,
)
from pygrad.backends.opencl.kernels import ctype as _ctype

__all__ = ["LANES", "ReduceOp", "run_reduction"]

LANES = 16  # accumulators per work item: four AVX-512 registers of doubles
WORK_ITEMS = 256  # work items a large reduction is spread over (both cores, load balance)
ITEM_ELEMENTS = 16384  # fewer elements per work item than this do not pay for one
# This many work items keep both cores busy well enough that a second pass, which costs a
# launch, would not pay: per-channel sums of 32 channels run in one pass.
ENOUGH_ITEMS = 16
COLUMN_CHUNK = 64  # reduced positions per column work item on data larger than the caches
MAX_ITEMS = 16384  # beyond this many work items, launching their groups costs too much
_LARGE = 1 << 21  # elements: beyond the caches, where the order of reads matters

_SIZES = {name: np.dtype(dtype).itemsize for dtype, name in C_TYPES.items()}


class ReduceOp(NamedTuple):
    """C snippets of one reduction.

    Attributes
    ----------
    value_type : str
        C type each element is converted to before ``step`` sees it as ``v``.
    states : tuple of (name, ctype, init)
        The accumulator variables; ``init`` may read ``first`` (the first element a work
        item reduces, as ``value_type``) and ``first_r`` (its position).  The first state is
        the value partial results keep; an ``argmax`` keeps its index as a second state.
    step : str
        Statement folding element ``v`` at position ``r`` (C order in the reduced axes) into
        the states.
    combine : str
        Statement merging another work item's states, named ``p_<name>``, into the states;
        the result must not depend on the order partial results are merged in, beyond
        rounding.
    final : str
        Expression of the states stored in the output; may read ``count``, the number of
        reduced elements.
    ordered : bool
        Whether positions matter (arg reductions): the reduced axes then keep their order.
    """

    value_type: str
    states: tuple
    step: str
    combine: str
    final: str
    ordered: bool = False


# --- source -------------------------------------------------------------------------------------
_HELPERS = r"""
inline long _red_offset(long index, const int ndim, __global const long* shape, __global const long* strides) {
    long offset = 0;
    for (int d = ndim - 1; d >= 0; --d) {
        const long c = index % shape[d];
        index /= shape[d];
        offset += c * strides[d];
    }
    return offset;
}
inline long _red_start(long index, const int ndim, __global const long* shape, __global const long* strides,
                       long* position) {
    long offset = 0;
    for (int d = ndim - 1; d >= 0; --d) {
        position[d] = index % shape[d];
        index /= shape[d];
        offset += position[d] * strides[d];
    }
    return offset;
}
inline long _red_advance(long offset, const int ndim, __global const long* shape, __global const long* strides,
                         long* position) {
    for (int d = ndim - 1; d >= 0; --d) {
        offset += strides[d];
        if (++position[d] < shape[d]) return offset;
        offset -= strides[d] * shape[d];
        position[d] = 0;
    }
    return offset;
}
"""


def _dims_fields(prefix: str, max_dims: int) -> list:
    return (
        [f"{prefix}dim"]
        + [f"{prefix}shape{d}" for d in range(max_dims)]
        + [f"{prefix}st{d}" for d in range(max_dims)]
    )


def _dims_values(shape: tuple, strides: tuple, max_dims: int) -> list:
    return [len(shape)] + _padded(shape, max_dims) + _padded(strides, max_dims)


def _dims_args(meta: _Meta, prefix: str) -> str:
    """The ``ndim, shape, strides`` arguments of the helpers for the axes under ``prefix``."""
    return (
        f"(int){meta[prefix + 'dim']}, &meta[{meta.index[prefix + 'shape0']}], "
        f"&meta[{meta.index[prefix + 'st0']}]"
    )


def _row_meta(max_dims: int) -> _Meta:
    fields = ["n_items", "n_out", "count", "final", "x_off", "G", "P", "span", "L", "ist"]
    return _Meta(fields + _dims_fields("k", max_dims) + _dims_fields("r", max_dims))


def _column_meta(max_dims: int) -> _Meta:
    fields = ["n_items", "n_out", "count", "final", "x_off", "kin", "ntile", "nko", "rchunk"]
    fields += ["L", "ist", "tiles"]
    return _Meta(fields + _dims_fields("k", max_dims) + _dims_fields("r", max_dims))


def _partials_meta() -> _Meta:
    return _Meta(["n_out", "count", "np", "so", "sp", "ow"])


class _Code:
    """C fragments of one operation: declarations, loads and stores of the lane states."""

    def __init__(self, op: ReduceOp, in_ctype: str, out_ctype: str):
        self.op, self.in_ctype, self.out_ctype = op, in_ctype, out_ctype
        self.names = [name for name, _, _ in op.states]

    def params(self) -> str:
        states = ", ".join(f"__global {t}* part_{name}" for name, t, _ in self.op.states)
        return f"__global {self.out_ctype}* out, {states}"

    def declare(self, lanes: str) -> str:
        return " ".join(f"{t} st_{name}[{lanes}];" for name, t, _ in self.op.states)

    def init(self, lane: str) -> str:
        return " ".join(f"st_{name}[{lane}] = {init};" for name, _, init in self.op.states)

    def load(self, lane: str) -> str:
        return " ".join(f"{t} {name} = st_{name}[{lane}];" for name, t, _ in self.op.states)

    def save(self, lane: str) -> str:
        return " ".join(f"st_{name}[{lane}] = {name};" for name in self.names)

    def step(self, lane: str, value: str, position: str) -> str:
        """Fold ``value`` at ``position`` into lane ``lane``."""
        vt = self.op.value_type
        return (
            f"{{ {self.load(lane)} const {vt} v = ({vt})({value}); const long at = {position};"
            f" {{ const long r = at; {self.op.step} }} {self.save(lane)} }}"
        )

    def merge(self, lane: str, other: str) -> str:
        """Merge lane ``other`` into lane ``lane``."""
        others = " ".join(
            f"const {t} p_{name} = st_{name}[{other}];" for name, t, _ in self.op.states
        )
        return f"{{ {self.load(lane)} {others} {self.op.combine} {self.save(lane)} }}"

    def merge_lanes(self) -> str:
        """Merge every lane into lane 0, pairwise (better rounding than in a row)."""
        return (
            f"for (int w = {LANES} / 2; w > 0; w /= 2)\n"
            f"                for (int k = 0; k < w; ++k) {self.merge('k', 'k + w')}"
        )

    def store(self, lane: str, o: str, partial_index: str, final: str) -> str:
        """Store lane ``lane`` as output ``o`` when ``final`` holds, else as a partial result."""
        parts = " ".join(f"part_{name}[{partial_index}] = {name};" for name in self.names)
        return (
            f"{{ {self.load(lane)} if ({final}) out[{o}] = ({self.out_ctype})({self.op.final});"
            f" else {{ {parts} }} }}"
        )


def _rows_kernel(code: _Code, name: str, contiguous: bool, max_dims: int) -> str:
    meta = _row_meta(max_dims)
    stride = "" if contiguous else f" * {meta['ist']}"
    lanes = code.step("k", f"px[(i + k){stride}]", "r + k")
    return f"""
__kernel void {name}({code.params()}, __global const {code.in_ctype}* x, {meta.param()}) {{
    const long item = get_global_id(0);
    if (item >= {meta['n_items']}) return;
    const long count = {meta['count']}, G = {meta['G']}, P = {meta['P']}, L = {meta['L']};
    const long p = item % P, o_begin = item / P * G;
    const long o_end = min(o_begin + G, {meta['n_out']});
    const long r_begin = p * {meta['span']}, r_end = min(r_begin + {meta['span']}, count);
    for (long o = o_begin; o < o_end; ++o) {{
        const long base = {meta['x_off']} + _red_offset(o, {_dims_args(meta, 'k')});
        long position[{max_dims}];
        long q = r_begin / L, i = r_begin - q * L;
        long run = base + _red_start(q, {_dims_args(meta, 'r')}, position);
        const {code.op.value_type} first = ({code.op.value_type})x[run + i{stride}];
        const long first_r = r_begin;
        {code.declare(str(LANES))}
        for (int k = 0; k < {LANES}; ++k) {{ {code.init('k')} }}
        long r = r_begin;
        while (r < r_end) {{
            __global const {code.in_ctype}* px = x + run;
            const long e = min(L, i + (r_end - r));
            for (; i + {LANES} <= e; i += {LANES}, r += {LANES}) {{
                for (int k = 0; k < {LANES}; ++k) {lanes}
            }}
            for (; i < e; ++i, ++r) {code.step('0', f'px[i{stride}]', 'r')}
            i = 0;
            run = _red_advance(run, {_dims_args(meta, 'r')}, position);
        }}
        if (L >= {LANES} && r_end - r_begin >= {LANES}) {{  // else lanes 1.. hold their start
            {code.merge_lanes()}
        }}
        {code.store('0', 'o', 'o * P + p', meta['final'])}
    }}
}}
"""


def _columns_kernel(code: _Code, name: str, max_dims: int) -> str:
    meta = _column_meta(max_dims)
    store = code.store("k", "o0 + k", f"chunk * {meta['n_out']} + o0 + k", meta["final"])

    def loop(width: str) -> str:
        # The innermost reduced axis is a plain strided loop; the outer ones step between runs.
        return f"""
            for (int k = 0; k < {width}; ++k) {{
                const {code.op.value_type} first = ({code.op.value_type})x[run + i * ist + k];
                {code.init('k')}
            }}
            while (r < r_end) {{
                const long e = min(L, i + (r_end - r));
                __global const {code.in_ctype}* px = x + run + i * ist;
                for (; i < e; ++i, ++r, px += ist) {{
                    for (int k = 0; k < {width}; ++k) {code.step('k', 'px[k]', 'r')}
                }}
                i = 0;
                run = _red_advance(run, {_dims_args(meta, 'r')}, position);
            }}"""

    return f"""
__kernel void {name}({code.params()}, __global const {code.in_ctype}* x, {meta.param()}) {{
    const long item = get_global_id(0);
    if (item >= {meta['n_items']}) return;
    const long count = {meta['count']}, kin = {meta['kin']}, ntile = {meta['ntile']};
    const long L = {meta['L']}, ist = {meta['ist']}, tiles = {meta['tiles']};
    const long n_groups = (ntile + tiles - 1) / tiles;
    const long group = item % n_groups, rest = item / n_groups;
    const long ko = rest % {meta['nko']}, chunk = rest / {meta['nko']};
    const long r_begin = chunk * {meta['rchunk']};
    const long r_end = min(r_begin + {meta['rchunk']}, count);
    const long first_r = r_begin;
    const long row = {meta['x_off']} + _red_offset(ko, {_dims_args(meta, 'k')});
    const long tile_end = min(ntile, (group + 1) * tiles);
    {code.declare(str(LANES))}
    long position[{max_dims}];
    for (long tile = group * tiles; tile < tile_end; ++tile) {{
        const long col0 = tile * {LANES}, width = min((long){LANES}, kin - col0);
        long q = r_begin / L, i = r_begin - q * L, r = r_begin;
        long run = row + col0 + _red_start(q, {_dims_args(meta, 'r')}, position);
        if (width == {LANES}) {{{loop(str(LANES))}
        }} else {{{loop('width')}
        }}
        const long o0 = ko * kin + col0;
        for (int k = 0; k < width; ++k) {store}
    }}
}}
"""


def _partials_kernel(code: _Code, name: str) -> str:
    """Merge the partial results of ``width`` neighbouring outputs: ``LANES`` of them when
    their partial results lie side by side (columns), one otherwise."""
    meta = _partials_meta()
    firsts = " ".join(f"st_{n}[k] = part_{n}[at];" for n, _, _ in code.op.states)
    others = " ".join(f"const {t} p_{n} = part_{n}[at];" for n, t, _ in code.op.states)
    merge = f"{{ {code.load('k')} {others} {code.op.combine} {code.save('k')} }}"
    states = ", ".join(f"__global const {t}* part_{n}" for n, t, _ in code.op.states)
    return f"""
__kernel void {name}(__global {code.out_ctype}* out, {states}, {meta.param()}) {{
    const long o0 = get_global_id(0) * {meta['ow']};
    if (o0 >= {meta['n_out']}) return;
    const long count = {meta['count']}, np = {meta['np']}, so = {meta['so']}, sp = {meta['sp']};
    const long width = min({meta['ow']}, {meta['n_out']} - o0);
    {code.declare(str(LANES))}
    for (int k = 0; k < width; ++k) {{ const long at = (o0 + k) * so; {firsts} }}
    for (long p = 1; p < np; ++p)
        for (int k = 0; k < width; ++k) {{ const long at = (o0 + k) * so + p * sp; {merge} }}
    for (int k = 0; k < width; ++k) {{ {code.load('k')} out[o0 + k] = ({code.out_ctype})({code.op.final}); }}
}}
"""


_NAMES = ("reduce_rows", "reduce_rows_strided", "reduce_columns", "reduce_partials")


def _program(device, op: ReduceOp, in_ctype: str, out_ctype: str, max_dims: int, name: str):
    """Kernel ``name`` of the program of ``op`` for these types, built on first use."""
    key = ("reduction", op, in_ctype, out_ctype, max_dims)
    kernel = device.kernels.get(key + (name,))
    if kernel is not None and type(kernel) is not tuple:
        return kernel

    def source():
        code = _Code(op, in_ctype, out_ctype)
        return (
            _preamble(device)
            + _HELPERS
            + _rows_kernel(code, "reduce_rows", True, max_dims)
            + _rows_kernel(code, "reduce_rows_strided", False, max_dims)
            + _columns_kernel(code, "reduce_columns", max_dims)
            + _partials_kernel(code, "reduce_partials")
        )

    extra = [(key + (other,), other) for other in _NAMES]
    return device.build(key + (name,), source, name, extra)


# --- launch -------------------------------------------------------------------------------------
def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _launch(kernel, device, n_items: int, args) -> None:
    """Run ``n_items`` work items: alone in their group on a CPU, where a group is a loop
    over its items anyway, and in groups of 64 elsewhere (a fixed size either way, since
    PoCL compiles a kernel again for every work-group size)."""
    group = 1 if device.is_cpu else min(64, device.max_work_group_size)
    launch(kernel, device, (_ceil_div(n_items, group) * group,), (group,), args)


class _Plan(NamedTuple):
    """How one layout is reduced: the first kernel, its work items and packed arguments (the
    input's offset left out), and the number of partial results per output (1: none)."""

    kernel: str
    n_items: int
    meta: MetaArgs
    offset_shift: int  # added to the input's offset (negative strides walked forwards)
    partials: int
    partial_strides: tuple  # partial result p of output o lies at o * so + p * sp: (so, sp)
    count: int
    max_dims: int


def run_reduction(device, op: ReduceOp, x, out, kept_axes: tuple, reduced_axes: tuple):
    """Reduce ``x`` over ``reduced_axes`` into the C-contiguous ``out`` (shape: kept axes).

    The reduced axes must hold at least one element.  Picks the rows, columns or strided-rows
    kernel from the layout (see the module docstring) and splits long reductions into pieces
    merged by a second kernel.  The plan of a layout is remembered, so that a repeated call
    costs little more than the launch.
    """
    n_out = out.size
    if n_out == 0:
        return out
    tuning = (WORK_ITEMS, ITEM_ELEMENTS, ENOUGH_ITEMS, COLUMN_CHUNK, MAX_ITEMS, _LARGE)
    plan = _plan(x.shape, x._strides, kept_axes, reduced_axes, op.ordered, x.itemsize, tuning)
    in_ctype, out_ctype = _ctype(x.dtype), _ctype(out.dtype)
    # x_off, the fifth field of both layouts
    meta = MetaArgs(plan.meta[:4] + (x.offset + plan.offset_shift,) + plan.meta[5:])
    split = plan.partials > 1
    if split:
        parts = [device.allocate(plan.partials * n_out * _SIZES[t]) for _, t, _ in op.states]
    else:  # the kernel stores the outputs itself and never touches these
        parts = [out.buffer] * len(op.states)
    kernel = _program(device, op, in_ctype, out_ctype, plan.max_dims, plan.kernel)
    _launch(kernel, device, plan.n_items, [out.buffer] + parts + [x.buffer, meta])
    if split:
        so, sp = plan.partial_strides
        width = LANES if so == 1 else 1  # side by side: LANES outputs per work item
        values = _Meta.pack([n_out, plan.count, plan.partials, so, sp, width])
        merge = _program(device, op, in_ctype, out_ctype, plan.max_dims, "reduce_partials")
        _launch(merge, device, _ceil_div(n_out, width), [out.buffer] + parts + [values])
    return out


@functools.lru_cache(maxsize=1024)
def _plan(shape, strides, kept_axes, reduced_axes, ordered, itemsize, tuning) -> _Plan:
    kept_shape, (kept_strides,) = collapse(
        tuple(shape[a] for a in kept_axes), [tuple(strides[a] for a in kept_axes)]
    )
    shift = 0
    reduced = [(shape[a], strides[a]) for a in reduced_axes]
    if not ordered:
        # Sums do not care about order: walk memory forwards and in its own order.
        for d, (size, stride) in enumerate(reduced):
            if stride < 0:
                shift += (size - 1) * stride
                reduced[d] = (size, -stride)
        reduced.sort(key=lambda dim: -dim[1])
    red_shape, (red_strides,) = collapse(
        tuple(n for n, _ in reduced), [tuple(s for _, s in reduced)]
    )
    red_shape, red_strides = red_shape or (1,), red_strides or (0,)
    max_dims = max(MAX_DIMS, len(kept_shape), len(red_shape))
    layout = (kept_shape, kept_strides, red_shape, red_strides, max_dims)
    if red_strides[-1] != 1 and kept_strides and kept_strides[-1] == 1:
        plan = _plan_columns(layout, itemsize, *tuning)
    else:
        plan = _plan_rows(layout, *tuning[:3])
    return plan._replace(offset_shift=shift)


def _count(shape: tuple) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def _plan_rows(layout, work_items: int, item_elements: int, enough_items: int) -> _Plan:
    """Whole outputs per work item when there are enough of them, else pieces of each."""
    kept_shape, kept_strides, red_shape, red_strides, max_dims = layout
    n_out, count = _count(kept_shape), _count(red_shape)
    wanted = max(1, min(work_items, n_out * count // item_elements))
    if n_out >= min(wanted, enough_items):  # enough outputs: whole ones per work item
        group, pieces, span = _ceil_div(n_out, wanted), 1, count
    else:  # few long reductions: pieces of each, merged afterwards
        group = 1
        span = _ceil_div(_ceil_div(count, _ceil_div(wanted, n_out)), LANES) * LANES
        pieces = _ceil_div(count, span)
    n_items = _ceil_div(n_out, group) * pieces
    values = [n_items, n_out, count, int(pieces == 1), 0, group, pieces, span]
    values += [red_shape[-1], red_strides[-1]]
    values += _dims_values(kept_shape, kept_strides, max_dims)
    values += _dims_values(red_shape[:-1], red_strides[:-1], max_dims)
    name = "reduce_rows" if red_strides[-1] == 1 else "reduce_rows_strided"
    return _Plan(name, n_items, _Meta.pack(values), 0, pieces, (pieces, 1), count, max_dims)


def _plan_columns(
    layout, itemsize, work_items, item_elements, enough_items, column_chunk, max_items, large
):
    """Tiles of ``LANES`` neighbouring outputs per work item, over chunks of the reduction."""
    kept_shape, kept_strides, red_shape, red_strides, max_dims = layout
    n_out, count = _count(kept_shape), _count(red_shape)
    kin = kept_shape[-1]
    ntile = _ceil_div(kin, LANES)
    all_tiles = ntile * (n_out // kin)
    wanted = max(1, min(work_items, n_out * count // item_elements))
    chunks = 1 if all_tiles >= min(wanted, enough_items) else _ceil_div(wanted, all_tiles)
    if n_out * count > large and red_strides[-1] * itemsize >= 4096:
        # Consecutive reduced positions lie on different pages: short chunks, so that the
        # work items running one after another read neighbouring memory.
        chunks = max(chunks, _ceil_div(count, column_chunk))
    chunks = max(1, min(chunks, max_items // all_tiles, count))
    rchunk = _ceil_div(count, chunks)
    chunks = _ceil_div(count, rchunk)
    # Many short columns: several tiles per work item, which each cost a launch of a group.
    tiles = _ceil_div(item_elements // 4, rchunk * min(kin, LANES))
    tiles = max(1, min(tiles, all_tiles * chunks // wanted, ntile))
    n_items = _ceil_div(ntile, tiles) * (n_out // kin) * chunks
    values = [n_items, n_out, count, int(chunks == 1), 0, kin, ntile, n_out // kin, rchunk]
    values += [red_shape[-1], red_strides[-1], tiles]
    values += _dims_values(kept_shape[:-1], kept_strides[:-1], max_dims)
    values += _dims_values(red_shape[:-1], red_strides[:-1], max_dims)
    meta = _Meta.pack(values)
    return _Plan("reduce_columns", n_items, meta, 0, chunks, (1, n_out), count, max_dims)
