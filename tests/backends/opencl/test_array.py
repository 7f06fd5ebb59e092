"""Tests of the OpenCL array type (pygrad/backends/opencl/array.py) and the creation
functions of the array module against NumPy: attributes, copies, casts and views."""

import numpy as np
import pytest

from tests._helpers import assert_matches


def test_no_implicit_conversion_to_numpy(xp):
    with pytest.raises(TypeError, match=r"\.get\(\)"):
        np.asarray(xp.ones(2))


def test_round_trip_attributes_and_repr(xp, data):
    a = data(2, 3)
    x = xp.asarray(a)
    assert x.xp is xp and x.device == x.device_name == "opencl:0"
    assert (x.shape, x.ndim, x.size, x.dtype, x.itemsize) == ((2, 3), 2, 6, np.float32, 4)
    assert x.strides == a.strides and x.element_strides == (3, 1) and x.offset == 0
    np.testing.assert_array_equal(x.get(), a)
    assert "device='opencl:0'" in repr(x) and "dtype=float32" in repr(x)
    assert float(xp.asarray(np.float32(2.5))) == 2.5 and xp.asarray([7]).item() == 7
    assert len(x) == 2 and [row.shape for row in x] == [(3,), (3,)]


def test_creation_functions_match_numpy(xp):
    assert_matches(xp.zeros((2, 3), dtype=np.float32), np.zeros((2, 3), np.float32))
    assert_matches(xp.ones(4), np.ones(4))
    assert_matches(xp.full((2,), 7, dtype=np.int32), np.full((2,), 7, np.int32))
    assert_matches(xp.arange(5), np.arange(5))
    assert_matches(xp.arange(1.0, 2.0, 0.25), np.arange(1.0, 2.0, 0.25))
    assert_matches(xp.linspace(0, 1, 5), np.linspace(0, 1, 5))
    assert_matches(xp.eye(3, 4, k=1), np.eye(3, 4, k=1))
    like = xp.zeros((2, 2), dtype=np.float32)
    assert_matches(xp.ones_like(like), np.ones((2, 2), np.float32))
    assert_matches(xp.zeros_like(like, dtype=np.int64), np.zeros((2, 2), np.int64))
    assert xp.empty_like(like).shape == (2, 2)
    assert_matches(xp.tril(xp.ones((3, 3))), np.tril(np.ones((3, 3))))


def test_astype_copy_fill_and_set(xp, data):
    a = data(3, 4) * 3
    x = xp.asarray(a)
    assert_matches(x.astype(np.int32), a.astype(np.int32))
    assert_matches(x.astype(np.float64), a.astype(np.float64))
    assert_matches((x > 0).astype(np.float32), (a > 0).astype(np.float32))
    y = x.copy()
    y.fill(2.0)
    assert_matches(y, np.full((3, 4), 2.0, np.float32))
    assert_matches(x, a)  # the copy did not share memory
    y.set(a)
    assert_matches(y, a)


def test_views_share_memory(xp, data):
    a = data(2, 3, 4)
    x = xp.asarray(a)
    for view, expected in [
        (x.T, a.T),
        (x.transpose(1, 0, 2), a.transpose(1, 0, 2)),
        (x.reshape(6, 4), a.reshape(6, 4)),
        (x.reshape(-1), a.reshape(-1)),
        (x[1, ::2, 1:], a[1, ::2, 1:]),
        (x[..., ::-1], a[..., ::-1]),
        (x[:, None, 0], a[:, None, 0]),
        (xp.broadcast_to(x[:, :1], (2, 3, 4)), np.broadcast_to(a[:, :1], (2, 3, 4))),
        (xp.expand_dims(x, 1), np.expand_dims(a, 1)),
        (xp.squeeze(x[:, :1]), np.squeeze(a[:, :1])),
    ]:
        assert view.buffer is x.buffer
        assert_matches(view, expected)


def test_reshape_of_a_non_contiguous_view(xp, data):
    a = data(3, 4)
    x = xp.asarray(a)
    assert_matches(x.T.reshape(2, 6), a.T.reshape(2, 6))
    assert x[:, :2].reshape(3, 2, 1).buffer is x.buffer  # splitting needs no copy
    with pytest.raises(ValueError, match="cannot reshape array of size 12 into shape"):
        x.reshape(5, -1)
