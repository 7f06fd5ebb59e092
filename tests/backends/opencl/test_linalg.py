"""Tests of the products of the OpenCL array module (pygrad/backends/opencl/linalg.py)
against NumPy: matmul on every kernel path, tensordot, dot, einsum and outer."""

import numpy as np
import pytest

from tests._helpers import assert_matches


@pytest.mark.parametrize(
    "shapes",
    [
        ((5, 7), (7, 3)),
        ((17, 33), (33, 18)),
        ((2, 3, 4), (4, 5)),
        ((2, 1, 3, 4), (3, 4, 2)),
        ((4,), (4, 3)),
        ((3, 4), (4,)),
        ((4,), (4,)),
    ],
    ids=str,
)
def test_matmul_matches_numpy(xp, data, shapes):
    a, b = data(*shapes[0]), data(*shapes[1])
    assert_matches(xp.matmul(xp.asarray(a), xp.asarray(b)), a @ b, rtol=1e-4, atol=1e-5)


def test_local_memory_matmul_for_gpus_matches_numpy(xp, data, monkeypatch):
    monkeypatch.setattr(xp.get_device(), "is_cpu", False)  # GPUs get the tiled kernel
    a, b = data(2, 17, 33), data(33, 18)
    assert_matches(xp.asarray(a) @ xp.asarray(b), a @ b, rtol=1e-4, atol=1e-5)
    assert_matches(xp.asarray(b).T @ xp.asarray(a[0]).T, b.T @ a[0].T, rtol=1e-4, atol=1e-5)


def test_matmul_of_transposed_and_integer_operands(xp, data):
    a, b = data(6, 5), data(6, 3)
    assert_matches(xp.asarray(a).T @ xp.asarray(b), a.T @ b, rtol=1e-4, atol=1e-5)
    i = np.arange(12).reshape(3, 4)
    assert_matches(xp.asarray(i) @ xp.asarray(i.T), i @ i.T)
    with pytest.raises(ValueError, match=r"matmul: shapes \(3, 4\) and \(3, 4\) are not aligned"):
        xp.asarray(i) @ xp.asarray(i)


def test_tensordot_dot_and_einsum(xp, data):
    a, b = data(2, 3, 4), data(4, 3, 5)
    x, y = xp.asarray(a), xp.asarray(b)
    tol = {"rtol": 1e-4, "atol": 1e-5}
    assert_matches(
        xp.tensordot(x, y, axes=([1, 2], [1, 0])), np.tensordot(a, b, ([1, 2], [1, 0])), **tol
    )
    c = data(5, 4, 2)
    assert_matches(xp.dot(x, xp.asarray(c)), np.dot(a, c), **tol)
    assert_matches(xp.einsum("bij,jkl->bikl", x, y), np.einsum("bij,jkl->bikl", a, b), **tol)
    assert_matches(xp.einsum("ijk->kj", x), np.einsum("ijk->kj", a), **tol)
    square = data(3, 3)
    assert_matches(xp.einsum("ii->i", xp.asarray(square)), np.einsum("ii->i", square))
    assert_matches(xp.outer(x[0, 0], y[0, 0]), np.outer(a[0, 0], b[0, 0]))
