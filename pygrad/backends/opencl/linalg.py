"""Products of the OpenCL array module: matmul (batched, broadcast; float results on CPU
devices go through the packed kernels of :mod:`.gemm`, the rest through the generic kernel of
:mod:`.kernels`), and dot, tensordot, inner, outer and einsum expressed through it with views
and reshapes."""

from __future__ import annotations

import numpy as np

from pygrad.backends.opencl import gemm, kernels
from pygrad.backends.opencl.array import empty_array, ndarray, reshape_view
from pygrad.backends.opencl.fused import register
from pygrad.backends.opencl.reductions import sum as _sum
from pygrad.backends.opencl.runtime import missing_call as _missing_call
from pygrad.backends.opencl.ufuncs import _upgrade, multiply

__all__ = ["matmul", "dot", "vdot", "inner", "outer", "tensordot", "einsum"]


def _prod(shape) -> int:
    size = 1
    for n in shape:
        size *= n
    return size


def _check(a, b, name: str):
    for x in (a, b):
        if not isinstance(x, ndarray):
            raise TypeError(f"opencl {name}: expected OpenCL arrays, got {type(x).__name__}")
    if a._device is not b._device:
        from pygrad.backends import DeviceError

        raise DeviceError(f"opencl {name}: operands live on {a.device} and {b.device}")


def _batch_strides(x: ndarray, batch_shape: tuple) -> tuple:
    """Strides of ``x``'s leading axes along ``batch_shape`` (0 where broadcast)."""
    lead = len(batch_shape) - (x.ndim - 2)
    strides = [0] * lead
    for n, s in zip(x.shape[:-2], x._strides[:-2]):
        strides.append(s if n != 1 else 0)
    return tuple(strides)


def matmul(a, b) -> ndarray:
    """Matrix product with NumPy's rules: batched over leading axes (broadcast), 1-D operands
    promoted to a row (first) or a column (second) and the added axis removed again."""
    _check(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least one dimension, got shapes {a.shape} and {b.shape}"
        )
    a2 = a if a.ndim > 1 else reshape_view(a, (1, a.shape[0]))
    b2 = b if b.ndim > 1 else reshape_view(b, (b.shape[0], 1))
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: {a2.shape[-1]} (last axis "
            f"of the first) != {b2.shape[-2]} (second-to-last axis of the second)"
        )
    try:
        batch_shape = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch axes of shapes {a.shape} and {b.shape} do not broadcast"
        ) from None
    loops = np.matmul.resolve_dtypes((a.dtype, b.dtype, None))
    out_dtype = _upgrade(loops[-1])
    if out_dtype.kind == "f":
        acc = kernels.ctype(out_dtype)
    else:
        acc = "ulong" if out_dtype.kind == "u" else "long"
    m, n = a2.shape[-2], b2.shape[-1]
    out = empty_array(batch_shape + (m, n), out_dtype, a._device)
    if a2.shape[-1] == 0:
        out.fill(0)
    elif gemm.supports(a._device, a2, b2, out):
        gemm.run_gemm(
            a._device,
            a2,
            b2,
            out,
            batch_shape,
            _batch_strides(a2, batch_shape),
            _batch_strides(b2, batch_shape),
        )
    else:
        kernels.run_matmul(
            a._device,
            a2,
            b2,
            out,
            batch_shape,
            _batch_strides(a2, batch_shape),
            _batch_strides(b2, batch_shape),
            acc,
        )
    if a.ndim == 1 and b.ndim == 1:
        return reshape_view(out, ())
    if a.ndim == 1:
        return reshape_view(out, batch_shape + (n,))
    if b.ndim == 1:
        return reshape_view(out, batch_shape + (m,))
    return out


@register("matmul_bias")
def matmul_bias(x, W, b):
    """``x @ W + b`` for a 2-D ``x`` and ``W`` and a vector ``b`` in one launch, the bias
    joining the product's store; None where the packed kernels do not take it (the caller then
    adds ``b`` itself)."""
    _check(x, W, "matmul")
    if x.ndim != 2 or W.ndim != 2 or x.shape[1] != W.shape[0] or not isinstance(b, ndarray):
        return None
    out_dtype = _upgrade(np.matmul.resolve_dtypes((x.dtype, W.dtype, None))[-1])
    if b.shape != (W.shape[1],) or b.dtype != out_dtype or not b.is_c_contiguous:
        return None
    if b._device is not x._device or x.shape[1] == 0:
        return None
    out = empty_array((x.shape[0], W.shape[1]), out_dtype, x._device)
    if not gemm.supports(x._device, x, W, out):
        return None
    return gemm.run_gemm(x._device, x, W, out, (), (), (), bias=b)


def tensordot(a, b, axes=2) -> ndarray:
    """Sum products over ``axes`` (an int: the last axes of ``a`` with the first of ``b``; or
    a pair of axis lists), as one matrix product of reshaped views."""
    _check(a, b, "tensordot")
    if isinstance(axes, (int, np.integer)):
        a_axes = list(range(a.ndim - int(axes), a.ndim))
        b_axes = list(range(int(axes)))
    else:
        a_axes, b_axes = axes
        a_axes = [a_axes] if isinstance(a_axes, (int, np.integer)) else list(a_axes)
        b_axes = [b_axes] if isinstance(b_axes, (int, np.integer)) else list(b_axes)
    a_axes = [int(i) % a.ndim for i in a_axes]
    b_axes = [int(i) % b.ndim for i in b_axes]
    if len(a_axes) != len(b_axes) or any(a.shape[i] != b.shape[j] for i, j in zip(a_axes, b_axes)):
        raise ValueError(
            f"tensordot: shape mismatch for sum: axes {a_axes} of {a.shape} and {b_axes} of "
            f"{b.shape}"
        )
    free_a = [i for i in range(a.ndim) if i not in a_axes]
    free_b = [i for i in range(b.ndim) if i not in b_axes]
    inner_size = _prod(a.shape[i] for i in a_axes)
    a_mat = reshape_view(
        a.transpose(free_a + a_axes), (_prod(a.shape[i] for i in free_a), inner_size)
    )
    b_mat = reshape_view(
        b.transpose(b_axes + free_b), (inner_size, _prod(b.shape[i] for i in free_b))
    )
    result = matmul(a_mat, b_mat)
    return reshape_view(
        result, tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b)
    )


def dot(a, b) -> ndarray:
    """NumPy's ``dot``: matmul for 1-D and 2-D operands, a product with a 0-d one, and for
    N-D a sum over the last axis of ``a`` and the second-to-last of ``b``."""
    if not isinstance(a, ndarray) or not isinstance(b, ndarray) or a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([a.ndim - 1], [max(b.ndim - 2, 0)]))


def vdot(a, b) -> ndarray:
    """Dot product of the flattened arrays."""
    return matmul(reshape_view(a, (-1,)), reshape_view(b, (-1,)))


def inner(a, b) -> ndarray:
    """Sum of products over the last axes."""
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 1]))


def outer(a, b) -> ndarray:
    """``outer[i, j] = a.ravel()[i] * b.ravel()[j]``."""
    return multiply(reshape_view(a, (-1, 1)), reshape_view(b, (1, -1)))


def _parse_einsum(subscripts: str, count: int):
    subscripts = subscripts.replace(" ", "")
    if "." in subscripts:
        raise NotImplementedError("opencl einsum: ellipsis ('...') subscripts are not supported")
    if "->" in subscripts:
        inputs, output = subscripts.split("->")
    else:
        inputs = subscripts
        letters = inputs.replace(",", "")
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    inputs = inputs.split(",")
    if len(inputs) != count:
        raise ValueError(f"einsum: {len(inputs)} subscripts for {count} operands")
    return inputs, output


def _diagonal(x: ndarray, letters: str):
    """Merge axes sharing a letter into their diagonal (a view with summed strides)."""
    unique = "".join(dict.fromkeys(letters))
    if unique == letters:
        return x, letters
    shape, strides = [], []
    for c in unique:
        axes = [i for i, d in enumerate(letters) if d == c]
        if len({x.shape[i] for i in axes}) > 1:
            raise ValueError(f"einsum: repeated index {c!r} with different sizes in {x.shape}")
        shape.append(x.shape[axes[0]])
        strides.append(sum(x._strides[i] for i in axes))
    from pygrad.backends.opencl.array import make_view

    return make_view(x, shape, strides), unique


def _sum_unneeded(x: ndarray, letters: str, needed: set):
    axes = tuple(i for i, c in enumerate(letters) if c not in needed)
    if not axes:
        return x, letters
    return _sum(x, axis=axes), "".join(c for c in letters if c in needed)


def einsum(subscripts: str, *operands) -> ndarray:
    """Einstein summation over explicit subscripts (``"bij,bjk->bik"``), as a chain of
    matrix products of views; ellipses are not supported."""
    inputs, output = _parse_einsum(subscripts, len(operands))
    sizes = {}
    terms = []
    for x, letters in zip(operands, inputs):
        if not isinstance(x, ndarray):
            raise TypeError(f"opencl einsum: expected OpenCL arrays, got {type(x).__name__}")
        if len(letters) != x.ndim:
            raise ValueError(f"einsum: subscripts {letters!r} for an operand of shape {x.shape}")
        for c, n in zip(letters, x.shape):
            if sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum: index {c!r} has sizes {sizes[c]} and {n}")
        terms.append(_diagonal(x, letters))
    for c in output:
        if c not in sizes:
            raise ValueError(f"einsum: output index {c!r} does not appear in the inputs")
    x, lx = terms[0]
    for k in range(1, len(terms) + 1):
        later = set(output).union(*[set(t[1]) for t in terms[k:]])
        if k == len(terms):
            x, lx = _sum_unneeded(x, lx, later)
            break
        y, ly = terms[k]
        x, lx = _sum_unneeded(x, lx, later | set(ly))
        y, ly = _sum_unneeded(y, ly, later | set(lx))
        batch = [c for c in lx if c in ly and c in later]
        contract = [c for c in lx if c in ly and c not in later]
        left = [c for c in lx if c not in ly]
        right = [c for c in ly if c not in lx]
        size = lambda letters: _prod(sizes[c] for c in letters)  # noqa: E731
        xa = reshape_view(
            x.transpose([lx.index(c) for c in batch + left + contract]),
            (size(batch), size(left), size(contract)),
        )
        ya = reshape_view(
            y.transpose([ly.index(c) for c in batch + contract + right]),
            (size(batch), size(contract), size(right)),
        )
        lx = "".join(batch + left + right)
        x = reshape_view(matmul(xa, ya), tuple(sizes[c] for c in lx))
    return x.transpose([lx.index(c) for c in output]) if output != lx else x


def __getattr__(name: str):
    raise _missing_call(name, "linalg.")
