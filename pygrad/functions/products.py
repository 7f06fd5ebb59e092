"""Products: matmul, linear (``x @ W + b``) and einsum, each differentiable to any order.

einsum contracts operands pairwise with one batched matrix product per pair (the way
``numpy.tensordot`` does), so the common patterns run at BLAS speed on every backend.
"""

from __future__ import annotations

import math
from functools import lru_cache
from string import ascii_letters

import numpy as np

from pygrad.backends import fused_op, get_array_module
from pygrad.core import Function, Variable, as_variable
from pygrad.functions.shape import (
    _broadcasts_to,
    broadcast_to,
    reduce_to,
    reshape,
    sum_to,
    transpose,
)

__all__ = ["matmul", "linear", "einsum"]


# =============================================================================================
# matmul
# =============================================================================================
def _swap_last(x: Variable) -> Variable:
    if x.ndim < 2:
        return x
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


def _as_matrix(x: Variable, row: bool) -> Variable:
    """A vector takes part in a matrix product as a row (left operand) or a column (right)."""
    if x.ndim != 1:
        return x
    return reshape(x, (1, x.shape[0]) if row else (x.shape[0], 1))


def _dtypes(x0: Variable, x1: Variable) -> str:
    return f"dtypes {x0.dtype} and {x1.dtype}"


class MatMul(Function):
    needs_inputs = True
    needs_outputs = False

    def forward(self, x0, x1):
        return get_array_module(x0).matmul(x0, x1)

    def backward(self, gy):
        x0, x1 = self.inputs
        a = _as_matrix(x0, row=True)
        b = _as_matrix(x1, row=False)
        # Put back the axes NumPy's matmul removed for vector operands.
        if x0.ndim == 1 and x1.ndim == 1:
            gy = reshape(gy, (1, 1))
        elif x0.ndim == 1:
            gy = reshape(gy, gy.shape[:-1] + (1, gy.shape[-1]))
        elif x1.ndim == 1:
            gy = reshape(gy, gy.shape + (1,))
        gx0 = matmul(gy, _swap_last(b))
        gx1 = matmul(_swap_last(a), gy)
        # Batch axes that were broadcast are summed back to each operand's own shape.
        gx0 = reduce_to(reshape(sum_to(gx0, a.shape), x0.shape), x0)
        gx1 = reduce_to(reshape(sum_to(gx1, b.shape), x1.shape), x1)
        return gx0, gx1


def matmul(x0, x1) -> Variable:
    """Matrix product with NumPy's rules: batched over leading axes, vectors promoted.

    Parameters
    ----------
    x0 : Variable or array
        Shape ``(..., m, k)``, or ``(k,)`` (treated as a row and the axis then removed).
    x1 : Variable or array
        Shape ``(..., k, n)``, or ``(k,)`` (treated as a column and the axis then removed).

    Returns
    -------
    Variable
        Shape ``(..., m, n)``; the batch axes ``...`` of both operands are broadcast.

    Raises
    ------
    ValueError
        If an operand is 0-d, the inner sizes differ or the batch axes do not broadcast,
        naming both shapes.
    """
    x0, x1 = as_variable(x0), as_variable(x1)
    if x0.ndim == 0 or x1.ndim == 0:
        raise ValueError(
            "matmul: operands must have at least one dimension, "
            f"got shapes {x0.shape} and {x1.shape} ({_dtypes(x0, x1)})"
        )
    inner0 = x0.shape[-1]
    inner1 = x1.shape[0] if x1.ndim == 1 else x1.shape[-2]
    if inner0 != inner1:
        raise ValueError(
            f"matmul: shapes {x0.shape} and {x1.shape} ({_dtypes(x0, x1)}) are not aligned: "
            f"{inner0} (last axis of the first) != {inner1} (second-to-last axis of the second)"
        )
    if x0.ndim > 2 or x1.ndim > 2:
        try:
            np.broadcast_shapes(x0.shape[:-2], x1.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: the batch axes of shapes {x0.shape} and {x1.shape} "
                f"({_dtypes(x0, x1)}) do not broadcast"
            ) from None
    return MatMul()(x0, x1)


# =============================================================================================
# linear
# =============================================================================================
class Linear(Function):
    needs_inputs = True
    needs_outputs = False

    def forward(self, x, W, b=None):
        xp = get_array_module(x)
        if b is not None:
            fused = fused_op(xp, "matmul_bias")
            y = None if fused is None else fused(x, W, b)
            if y is not None:
                return y
        y = xp.matmul(x, W)
        if b is None:
            return y
        if b.dtype == y.dtype:
            # ``y`` is a fresh array, so the bias can be added in place.
            y += b
            return y
        return y + b

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        # The input of a first layer is usually data: skip the product nobody would read.
        gx = reduce_to(matmul(gy, W.T), x) if x.requires_grad else None
        if x.ndim == 2:
            gW = matmul(x.T, gy)
        else:
            in_size, out_size = W.shape
            gW = matmul(reshape(x, (-1, in_size)).T, reshape(gy, (-1, out_size)))
        gW = reduce_to(gW, W)
        if len(self.inputs) == 2:
            return gx, gW
        return gx, gW, reduce_to(gy, self.inputs[2])


def linear(x, W, b=None) -> Variable:
    """Affine map ``x @ W + b``, fused into one function.

    Parameters
    ----------
    x : Variable or array
        Shape ``(N, in_size)`` or, more generally, ``(..., in_size)``.
    W : Variable or array
        Shape ``(in_size, out_size)``.
    b : Variable or array, optional
        Shape ``(out_size,)`` (or any shape broadcasting to the output's); no bias when None.

    Returns
    -------
    Variable
        Shape ``(..., out_size)``.

    Raises
    ------
    ValueError
        If ``W`` is not 2-D, its first axis differs from the last axis of ``x``, or ``b``
        does not broadcast to the output's shape.
    """
    x, W = as_variable(x), as_variable(W)
    if W.ndim != 2 or x.ndim == 0 or x.shape[-1] != W.shape[0]:
        raise ValueError(
            "linear: expected x of shape (..., in_size) and W of shape (in_size, out_size), "
            f"got x {x.shape} and W {W.shape}"
        )
    if b is None:
        return Linear()(x, W)
    b = as_variable(b, like=x)
    out_shape = x.shape[:-1] + (W.shape[1],)
    if b.shape != (W.shape[1],) and not _broadcasts_to(b.shape, out_shape):
        raise ValueError(
            f"linear: bias of shape {b.shape} does not broadcast to the output shape {out_shape} "
            f"(x {x.shape}, W {W.shape})"
        )
    return Linear()(x, W, b)


# =============================================================================================
# einsum
# =============================================================================================
def _label_sizes(operands) -> dict:
    """Size of every label over ``(shape, labels)`` pairs; a size of one broadcasts."""
    sizes = {}
    for shape, labels in operands:
        for label, size in zip(labels, shape):
            if sizes.get(label, 1) == 1:
                sizes[label] = size
    return sizes


def _lone_axes(labels: str, needed) -> tuple:
    return tuple(i for i, label in enumerate(labels) if label not in needed)


def _drop(shape: tuple, labels: str, axes: tuple) -> tuple:
    return (
        tuple(size for i, size in enumerate(shape) if i not in axes),
        "".join(label for i, label in enumerate(labels) if i not in axes),
    )


def _permutation(labels: str, order) -> tuple | None:
    axes = tuple(labels.index(label) for label in order)
    return None if axes == tuple(range(len(axes))) else axes


def _plan_pair(a: tuple, b: tuple, keep: set) -> tuple:
    """Plan one matrix product contracting operands ``a`` and ``b`` (``(shape, labels)``).

    Shared labels that ``keep`` holds become the batch axis, the other shared labels the
    inner axis, and the labels of one operand only its rows (``a``) or columns (``b``).
    """
    sum_a = _lone_axes(a[1], keep | set(b[1]))
    sum_b = _lone_axes(b[1], keep | set(a[1]))
    (shape_a, labels_a), (shape_b, labels_b) = _drop(*a, sum_a), _drop(*b, sum_b)
    sizes = _label_sizes(((shape_a, labels_a), (shape_b, labels_b)))
    # A shared label of length one in one operand broadcasts against the other.
    full_a = tuple(sizes[label] for label in labels_a)
    full_b = tuple(sizes[label] for label in labels_b)
    batch = [label for label in labels_a if label in labels_b and label in keep]
    inner = [label for label in labels_a if label in labels_b and label not in keep]
    rows = [label for label in labels_a if label not in labels_b]
    cols = [label for label in labels_b if label not in labels_a]
    batch_size, inner_size, rows_size, cols_size = (
        math.prod(sizes[label] for label in group) for group in (batch, inner, rows, cols)
    )
    lead = (batch_size,) if batch else ()
    labels = "".join(batch + rows + cols)
    shape = tuple(sizes[label] for label in labels)
    step = (
        sum_a,
        sum_b,
        None if full_a == shape_a else full_a,
        None if full_b == shape_b else full_b,
        _permutation(labels_a, batch + rows + inner),
        _permutation(labels_b, batch + inner + cols),
        lead + (rows_size, inner_size),
        lead + (inner_size, cols_size),
        shape,
    )
    return step, (shape, labels)


def _pick_pair(operands: list, output: str, sizes: dict) -> tuple:
    """The pair of operands whose contraction gives the smallest result (then fewest flops)."""
    if len(operands) == 2:
        return 0, 1
    best, best_cost = None, None
    for i in range(len(operands)):
        for j in range(i + 1, len(operands)):
            rest = (labels for k, (_, labels) in enumerate(operands) if k not in (i, j))
            needed = set(output).union(*rest)
            union = set(operands[i][1]) | set(operands[j][1])
            result = math.prod(sizes[label] for label in union if label in needed)
            cost = (result, math.prod(sizes[label] for label in union))
            if best_cost is None or cost < best_cost:
                best, best_cost = (i, j), cost
    return best


@lru_cache(maxsize=1024)
def _plan(in_labels: tuple, output: str, shapes: tuple) -> tuple:
    """The steps that evaluate an explicit einsum (no ``...``) on operands of ``shapes``.

    Planning costs more than running a small product, so plans are cached per signature.
    """
    steps = []
    operands = list(zip(shapes, in_labels))
    for i, (shape, labels) in enumerate(operands):
        unique = "".join(dict.fromkeys(labels))
        if len(unique) != len(labels):
            steps.append(("diagonal", i, f"{labels}->{unique}"))
            size_of = dict(zip(labels, shape))
            operands[i] = (tuple(size_of[label] for label in unique), unique)
    sizes = _label_sizes(operands)
    if len(operands) > 1:
        for i, (shape, labels) in enumerate(operands):
            rest = (s for k, (_, s) in enumerate(operands) if k != i)
            axes = _lone_axes(labels, set(output).union(*rest))
            if axes:
                steps.append(("sum", i, axes))
                operands[i] = _drop(shape, labels, axes)
    while len(operands) > 1:
        i, j = _pick_pair(operands, output, sizes)
        rest = [op for k, op in enumerate(operands) if k not in (i, j)]
        keep = set(output).union(*(labels for _, labels in rest))
        step, result = _plan_pair(operands[i], operands[j], keep)
        steps.append(("pair", i, j) + step)
        operands = rest + [result]
    shape, labels = operands[0]
    axes = _lone_axes(labels, set(output))
    if axes:
        steps.append(("sum", 0, axes))
        shape, labels = _drop(shape, labels, axes)
    permutation = _permutation(labels, output)
    if permutation is not None:
        steps.append(("transpose", 0, permutation))
    return tuple(steps)


def _run_plan(steps: tuple, arrays: list, xp):
    arrays = list(arrays)
    for step in steps:
        kind, i = step[0], step[1]
        if kind == "pair":
            j, sum_a, sum_b, full_a, full_b, perm_a, perm_b, mat_a, mat_b, shape = step[2:]
            a, b = arrays[i], arrays[j]
            if sum_a:
                a = a.sum(axis=sum_a)
            if sum_b:
                b = b.sum(axis=sum_b)
            if full_a is not None:
                a = xp.broadcast_to(a, full_a)
            if full_b is not None:
                b = xp.broadcast_to(b, full_b)
            if perm_a is not None:
                a = a.transpose(perm_a)
            if perm_b is not None:
                b = b.transpose(perm_b)
            y = xp.matmul(a.reshape(mat_a), b.reshape(mat_b)).reshape(shape)
            arrays = [x for k, x in enumerate(arrays) if k not in (i, j)] + [y]
        elif kind == "sum":
            arrays[i] = arrays[i].sum(axis=step[2])
        elif kind == "diagonal":
            arrays[i] = xp.einsum(step[2], arrays[i])
        else:
            arrays[i] = arrays[i].transpose(step[2])
    return arrays[0]


class Einsum(Function):
    """Explicit einsum over the inputs (``in_labels``) and constant arrays (``constants``).

    Constants are ``(array, labels)`` pairs that take part in the product but get no
    gradient: backward uses identity matrices to put gradients on repeated labels.
    """

    def __init__(self, in_labels: tuple, out_labels: str, constants: tuple = ()):
        self.in_labels = in_labels
        self.out_labels = out_labels
        self.constants = constants

    def forward(self, *xs):
        constants = self.constants
        shapes = tuple(x.shape for x in xs)
        labels = self.in_labels
        if constants:
            xs = xs + tuple(c for c, _ in constants)
            shapes = shapes + tuple(c.shape for c, _ in constants)
            labels = labels + tuple(s for _, s in constants)
        steps = _plan(labels, self.out_labels, shapes)
        return _run_plan(steps, xs, get_array_module(*xs))

    def backward(self, gy):
        inputs, in_labels = self.inputs, self.in_labels
        sizes = _label_sizes(
            [(x.shape, labels) for x, labels in zip(inputs, in_labels)]
            + [(c.shape, labels) for c, labels in self.constants]
        )
        used = set(self.out_labels).union(*in_labels, *(s for _, s in self.constants))
        xp = get_array_module(gy.data)
        gxs = []
        for k, (x, labels) in enumerate(zip(inputs, in_labels)):
            others = [gy] + [v for i, v in enumerate(inputs) if i != k]
            others_labels = (self.out_labels,) + tuple(s for i, s in enumerate(in_labels) if i != k)
            constants = list(self.constants)
            fresh = (c for c in ascii_letters if c not in used)
            # The gradient of a diagonal ("ii") lives on the diagonal: give the repeat a
            # fresh label tied to the first by an identity matrix.
            target = []
            for label in labels:
                if label in target:
                    twin = next(fresh)
                    constants.append((xp.eye(sizes[label], dtype=gy.dtype), label + twin))
                    label = twin
                target.append(label)
            available = set().union(*others_labels, *(s for _, s in constants))
            # A label nothing else carries was summed, so its gradient is broadcast back;
            # an axis of length one that was broadcast gets the sum over its label.
            kept = [
                label
                for label, size, original in zip(target, x.shape, labels)
                if label in available and not (size == 1 and sizes[original] != 1)
            ]
            gx = Einsum(others_labels, "".join(kept), tuple(constants))(*others)
            if gx.shape != x.shape:
                # Also where the other operands broadcast a length-one axis against ``x``.
                kept_sizes = iter(gx.shape)
                shape = tuple(next(kept_sizes) if label in kept else 1 for label in target)
                gx = broadcast_to(reshape(gx, shape), x.shape)
            gxs.append(reduce_to(gx, x))
        return tuple(gxs)


@lru_cache(maxsize=1024)
def _parse_einsum(subscripts: str, shapes: tuple) -> tuple:
    """Turn NumPy-style subscripts into explicit labels per operand and for the output.

    ``...`` becomes fresh letters, right-aligned across operands as in broadcasting; an
    implicit output is the ``...`` axes then the labels used once, in alphabetical order.
    """
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1:
        raise ValueError(f"einsum: subscripts {subscripts!r} contain '->' more than once")
    lhs, arrow, rhs = spec.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s) "
            f"but {len(shapes)} were given"
        )
    for term in terms + ([rhs] if arrow else []):
        bare = term.replace("...", "", 1)
        if not all(c in ascii_letters for c in bare):
            raise ValueError(
                f"einsum: invalid subscripts {subscripts!r}: use letters, ',', '->' and one "
                "'...' per operand"
            )
    ellipsis_dims = []
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        named = len(term) - 3 if "..." in term else len(term)
        if len(shape) < named or ("..." not in term and len(shape) != named):
            raise ValueError(
                f"einsum: operand {i} has shape {shape} ({len(shape)} axes) but its "
                f"subscripts {term!r} name {named}"
            )
        ellipsis_dims.append(len(shape) - named)
    letters = [c for c in ascii_letters if c not in spec]
    ellipsis = "".join(letters[: max(ellipsis_dims)])
    if len(ellipsis) < max(ellipsis_dims):
        raise ValueError(f"einsum: too many axes in {subscripts!r} for 52 letters")
    in_labels = [
        term.replace("...", ellipsis[len(ellipsis) - dims :])
        for term, dims in zip(terms, ellipsis_dims)
    ]
    if arrow:
        out_labels = rhs.replace("...", ellipsis)
        for label in out_labels:
            if out_labels.count(label) > 1:
                raise ValueError(f"einsum: output label {label!r} repeated in {subscripts!r}")
            if not any(label in labels for labels in in_labels):
                raise ValueError(
                    f"einsum: output label {label!r} of {subscripts!r} names no input axis"
                )
    else:
        named = "".join(terms).replace("...", "")
        once = sorted(label for label in set(named) if named.count(label) == 1)
        out_labels = ellipsis + "".join(once)
    _check_sizes(subscripts, in_labels, shapes, ellipsis)
    return tuple(in_labels), out_labels


def _check_sizes(subscripts: str, in_labels: list, shapes: list, ellipsis: str) -> None:
    seen = {}
    for i, (labels, shape) in enumerate(zip(in_labels, shapes)):
        for label, size in zip(labels, shape):
            if label not in seen:
                seen[label] = (size, i)
                continue
            first_size, first = seen[label]
            same_operand = first == i
            if size == first_size or (not same_operand and 1 in (size, first_size)):
                if first_size == 1:
                    seen[label] = (size, i)
                continue
            name = "the '...' axes" if label in ellipsis else f"label {label!r}"
            raise ValueError(
                f"einsum: sizes {first_size} and {size} of {name} in {subscripts!r} do not "
                f"match (operand shapes {', '.join(str(s) for s in shapes)})"
            )


def einsum(subscripts: str, *operands) -> Variable:
    """Einstein summation, as :func:`numpy.einsum` and :func:`torch.einsum`.

    Parameters
    ----------
    subscripts : str
        Labels of each operand's axes separated by commas, optionally ``->`` and the labels of
        the output.  Without ``->`` the output holds the labels used once, in alphabetical
        order.  ``...`` stands for broadcast axes; a label repeated within one operand takes
        a diagonal; labels missing from the output are summed.
    *operands : Variable or array
        One per comma-separated term (a single list or tuple of them is accepted too).

    Returns
    -------
    Variable
        The product; differentiable to any order with respect to every operand.

    Raises
    ------
    ValueError
        If the subscripts do not fit the operands' shapes or a label has two sizes.

    Examples
    --------
    >>> einsum("ij,jk->ik", a, b)       # matrix product
    >>> einsum("bij,bjk->bik", a, b)    # batched matrix product
    >>> einsum("i,j->ij", u, v)         # outer product
    >>> einsum("ii->", a)               # trace
    >>> einsum("...ij->...ji", a)       # transpose of the last two axes
    """
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a string, got {type(subscripts).__name__}")
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        if all(isinstance(x, Variable) or hasattr(x, "shape") for x in operands[0]):
            operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum: need at least one operand")
    like = next((x for x in operands if isinstance(x, Variable)), None)
    xs = [as_variable(x, like=like) for x in operands]
    in_labels, out_labels = _parse_einsum(subscripts, tuple(x.shape for x in xs))
    return Einsum(in_labels, out_labels)(*xs)
