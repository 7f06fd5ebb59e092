"""Reductions of the OpenCL array module: sum, prod, mean, var, std, max, min, argmax, argmin,
any, all and count_nonzero over any axes, with ``keepdims``.

Each is a :class:`~pygrad.backends.opencl.reduce_kernels.ReduceOp` (C snippets: the
accumulators, how an element and another work item's partial result fold in, the stored
value) run by :func:`~pygrad.backends.opencl.reduce_kernels.run_reduction`, which spreads
the work over the device.  float32 sums accumulate in float64 where the device has it, in
several independent partial sums, which keeps them at least as close to the exact sum as
NumPy's pairwise summation.
"""

from __future__ import annotations

import builtins

import numpy as np

from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.array import empty_array, ndarray, reshape_view
from pygrad.backends.opencl.reduce_kernels import ReduceOp, run_reduction

__all__ = [
    "sum",
    "prod",
    "mean",
    "var",
    "std",
    "max",
    "amax",
    "min",
    "amin",
    "argmax",
    "argmin",
    "any",
    "all",
    "count_nonzero",
]

try:
    _AxisError = np.exceptions.AxisError
except AttributeError:  # NumPy < 1.25
    _AxisError = np.AxisError


def normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, an int or a sequence) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    axes = []
    for a in axis:
        a = int(a)
        if not -ndim <= a < ndim:
            raise _AxisError(a, ndim)
        axes.append(a % ndim)
    if len(set(axes)) != len(axes):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(sorted(axes))


def _check(a, name: str) -> ndarray:
    if not isinstance(a, ndarray):
        raise TypeError(f"opencl {name}: expected an OpenCL array, got {type(a).__name__}")
    return a


def _reduce(a: ndarray, axis, keepdims: bool, op: ReduceOp, out_dtype, name: str, **empty):
    """Reduce ``a`` with ``op``; ``empty`` holds ``fill`` (the result of an empty reduction)
    or ``needs_identity`` (an empty reduction is an error)."""
    axes = normalize_axes(axis, a.ndim)
    kept = tuple(i for i in range(a.ndim) if i not in axes)
    count = 1
    for i in axes:
        count *= a.shape[i]
    out_shape = tuple(a.shape[i] for i in kept)
    if count == 0 and empty.get("needs_identity") and 0 not in out_shape:
        raise ValueError(
            f"zero-size array to reduction operation {name} which has no identity "
            f"(shape {a.shape}, axis {axis})"
        )
    out = empty_array(out_shape, out_dtype, a._device)
    if count == 0:
        out.fill(empty.get("fill", 0))
    else:
        run_reduction(a._device, op, a, out, kept, axes)
    if keepdims:
        return reshape_view(out, tuple(1 if i in axes else n for i, n in enumerate(a.shape)))
    return out


def _fold(acc: str, init: str, step: str, combine: str, final: str = "acc") -> ReduceOp:
    """A reduction with one accumulator ``acc`` of C type ``acc``."""
    return ReduceOp(acc, (("acc", acc, init),), step, combine, final)


def _sum_dtype(dtype):
    return np.zeros(0, dtype).sum().dtype


def _accumulator(a: ndarray, dtype) -> str:
    """C type in which sums run: float64 for float32 data when the device has it."""
    if dtype == np.float32 and a._device.supports_float64:
        return "double"
    if dtype.kind in "biu":
        return "ulong" if dtype.kind == "u" else "long"
    return kernels.ctype(dtype)


def _stored(dtype) -> str:
    """The stored value of a sum or product: NumPy's bool sums are ``or``, its products ``and``."""
    return "(acc != 0)" if dtype == np.bool_ else "acc"


def sum(a, axis=None, dtype=None, keepdims: bool = False) -> ndarray:  # noqa: A001
    """Sum over ``axis`` (None: all axes; an int or a tuple)."""
    a = _check(a, "sum")
    out_dtype = np.dtype(dtype) if dtype is not None else _sum_dtype(a.dtype)
    op = _fold(_accumulator(a, out_dtype), "0", "acc += v;", "acc += p_acc;", _stored(out_dtype))
    return _reduce(a, axis, keepdims, op, out_dtype, "sum")


def prod(a, axis=None, dtype=None, keepdims: bool = False) -> ndarray:
    """Product over ``axis``."""
    a = _check(a, "prod")
    out_dtype = np.dtype(dtype) if dtype is not None else _sum_dtype(a.dtype)
    op = _fold(_accumulator(a, out_dtype), "1", "acc *= v;", "acc *= p_acc;", _stored(out_dtype))
    return _reduce(a, axis, keepdims, op, out_dtype, "prod", fill=1)


def mean(a, axis=None, dtype=None, keepdims: bool = False) -> ndarray:
    """Arithmetic mean over ``axis`` (float64 for integer data, as NumPy)."""
    a = _check(a, "mean")
    if dtype is not None:
        out_dtype = np.dtype(dtype)
    else:
        out_dtype = a.dtype if a.dtype.kind == "f" else np.dtype(np.float64)
    op = _fold(_accumulator(a, out_dtype), "0", "acc += v;", "acc += p_acc;", "acc / count")
    return _reduce(a, axis, keepdims, op, out_dtype, "mean", fill=np.nan)


def var(a, axis=None, dtype=None, ddof: int = 0, keepdims: bool = False) -> ndarray:
    """Variance over ``axis`` (``ddof`` as NumPy: divide by ``count - ddof``)."""
    a = _check(a, "var")
    axes = normalize_axes(axis, a.ndim)
    count = 1
    for i in axes:
        count *= a.shape[i]
    centred = a - mean(a, axis=axes, dtype=dtype, keepdims=True)
    total = sum(centred * centred, axis=axes, keepdims=keepdims)
    return total / builtins.max(count - ddof, 0)


def std(a, axis=None, dtype=None, ddof: int = 0, keepdims: bool = False) -> ndarray:
    """Standard deviation over ``axis``."""
    from pygrad.backends.opencl.ufuncs import sqrt

    return sqrt(var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def _extreme(a, axis, keepdims, larger: bool, name: str) -> ndarray:
    a = _check(a, name)
    t = kernels.ctype(a.dtype)
    better = ">" if larger else "<"
    # NaN wins: once acc is NaN it stays, and a NaN v fails the comparison.  NaN tests are
    # written x != x: PoCL calls a library function for isnan, which stops vectorisation
    # and made max four times slower.
    keep = "acc {0}= {1} || acc != acc" if a.dtype.kind == "f" else "acc {0}= {1}"
    step = f"acc = ({keep.format(better, 'v')}) ? acc : v;"
    combine = f"acc = ({keep.format(better, 'p_acc')}) ? acc : p_acc;"
    op = _fold(t, "first", step, combine)
    name = "maximum" if larger else "minimum"
    return _reduce(a, axis, keepdims, op, a.dtype, name, needs_identity=True)


def max(a, axis=None, keepdims: bool = False) -> ndarray:  # noqa: A001
    """Largest element over ``axis`` (NaN wins, as in NumPy)."""
    return _extreme(a, axis, keepdims, True, "max")


def min(a, axis=None, keepdims: bool = False) -> ndarray:  # noqa: A001
    """Smallest element over ``axis`` (NaN wins, as in NumPy)."""
    return _extreme(a, axis, keepdims, False, "min")


amax, amin = max, min


def _arg_extreme(a, axis, keepdims, larger: bool, name: str) -> ndarray:
    a = _check(a, name)
    if axis is None:
        flat = reshape_view(a, (-1,))
        result = _arg_extreme(flat, 0, False, larger, name)
        return reshape_view(result, (1,) * a.ndim) if keepdims else result
    t = kernels.ctype(a.dtype)
    better = ">" if larger else "<"
    # The first occurrence wins, and the first NaN beats any number.  Partial results of
    # different work items are merged whatever their order, so ties compare positions.
    earlier = "p_best_r < best_r"
    if a.dtype.kind == "f":
        # x != x is isnan(x), without a library call (see _extreme).
        condition = f"best == best && (v {better} best || v != v)"
        take = (
            f"p_best != p_best ? (best == best || {earlier}) : "
            f"(best == best && (p_best {better} best || (p_best == best && {earlier})))"
        )
    else:
        condition = f"v {better} best"
        take = f"p_best {better} best || (p_best == best && {earlier})"
    op = ReduceOp(
        t,
        (("best", t, "first"), ("best_r", "long", "first_r")),
        f"if ({condition}) {{ best = v; best_r = r; }}",
        f"if ({take}) {{ best = p_best; best_r = p_best_r; }}",
        "best_r",
        ordered=True,
    )
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"opencl {name}: axis must be None or an int, got {axis!r}")
    return _reduce(a, int(axis), keepdims, op, np.int64, name, needs_identity=True)


def argmax(a, axis=None, keepdims: bool = False) -> ndarray:
    """Index of the largest element along ``axis`` (of the flattened array when None)."""
    return _arg_extreme(a, axis, keepdims, True, "argmax")


def argmin(a, axis=None, keepdims: bool = False) -> ndarray:
    """Index of the smallest element along ``axis`` (of the flattened array when None)."""
    return _arg_extreme(a, axis, keepdims, False, "argmin")


def _logical(a, axis, keepdims, is_any: bool, name: str) -> ndarray:
    a = _check(a, name)
    t = kernels.ctype(a.dtype)
    join = "||" if is_any else "&&"
    op = ReduceOp(
        t,
        (("acc", "uchar", "0" if is_any else "1"),),
        f"acc = acc {join} (v != 0);",
        f"acc = acc {join} p_acc;",
        "acc",
    )
    return _reduce(a, axis, keepdims, op, np.bool_, name, fill=not is_any)


def any(a, axis=None, keepdims: bool = False) -> ndarray:  # noqa: A001
    """Whether any element along ``axis`` is nonzero."""
    return _logical(a, axis, keepdims, True, "any")


def all(a, axis=None, keepdims: bool = False) -> ndarray:  # noqa: A001
    """Whether every element along ``axis`` is nonzero."""
    return _logical(a, axis, keepdims, False, "all")


def count_nonzero(a, axis=None, keepdims: bool = False) -> ndarray:
    """Number of nonzero elements along ``axis``."""
    a = _check(a, "count_nonzero")
    t = kernels.ctype(a.dtype)
    op = ReduceOp(t, (("acc", "long", "0"),), "acc += (v != 0);", "acc += p_acc;", "acc")
    return _reduce(a, axis, keepdims, op, np.int64, "count_nonzero")
