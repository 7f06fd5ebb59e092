"""Tests of indexing OpenCL arrays (pygrad/backends/opencl/indexing.py) against NumPy:
gathers, scatters, scatter-adds and the bounds errors of device indices."""

import numpy as np
import pytest

from tests._helpers import assert_matches


def test_integer_and_boolean_array_indexing(xp, data):
    a = data(4, 5)
    x = xp.asarray(a)
    rows = np.array([3, 0, -1, 3])
    for key in [
        rows,
        (rows, slice(1, 3)),
        (slice(None), [4, 0]),
        (rows, [0, 1, 2, 3]),
        a > 0,
        (xp.asarray(rows[:2]), 1),
    ]:
        expected_key = (
            tuple(k.get() if hasattr(k, "get") else k for k in key)
            if isinstance(key, tuple)
            else key
        )
        assert_matches(x[key], a[expected_key])
    cube = data(2, 3, 4)
    # An int next to arrays counts as an array index, so the broadcast axes go first here.
    for key in [(0, slice(None), [1, 2]), (slice(None, None, -1), None, [2, 0], Ellipsis, 1)]:
        assert_matches(xp.asarray(cube)[key], cube[key])
    with pytest.raises(IndexError, match="out of bounds for axis 0 with size 4"):
        x[np.array([0, 4])]
    with pytest.raises(IndexError, match="index 5 is out of bounds"):
        x[5]


def test_device_index_out_of_bounds_is_raised_at_the_next_read_without_a_wait(xp, data):
    a = data(4, 3)
    x = xp.asarray(a)
    gathered = x[xp.asarray(np.array([0, 4]))]  # the launch does not wait for the device
    with pytest.raises(IndexError, match=r"opencl indexing: .*axis 0 with size 4.*next read"):
        gathered.get()
    np.testing.assert_array_equal(x[xp.asarray(np.array([1]))].get(), a[[1]])
    x[xp.asarray(np.array([9]))] = 1.0
    with pytest.raises(IndexError, match="axis 0 with size 4"):
        xp.synchronize()
    xp.synchronize()  # reported once


def test_setitem_and_add_at(xp, data):
    a = data(4, 3)
    x = xp.asarray(a)
    x[1:3] = 0.5
    x[[0, 3], 2] = xp.asarray(np.array([7.0, 8.0], np.float32))
    expected = a.copy()
    expected[1:3] = 0.5
    expected[[0, 3], 2] = [7.0, 8.0]
    assert_matches(x, expected)
    g = xp.zeros((4, 3), dtype=np.float32)
    rows = np.array([0, 2, 0, 0])
    values = data(4, 3)
    xp.add.at(g, rows, xp.asarray(values))
    reference = np.zeros((4, 3), np.float32)
    np.add.at(reference, rows, values)
    assert_matches(g, reference)


def test_take_along_axis_gathers_labels(xp, data):
    a = data(5, 4)
    labels = np.array([[0], [3], [1], [1], [2]])
    got = xp.take_along_axis(xp.asarray(a), xp.asarray(labels), axis=1)
    assert_matches(got, np.take_along_axis(a, labels, axis=1))


def test_setitem_takes_nested_lists_like_numpy(xp):
    a = np.zeros((2, 3), np.float32)
    x = xp.asarray(a)
    x[0, 1:] = [5, 6]
    x[1] = [7, 8, 9]
    x[:, 0] = [True, False]
    a[0, 1:] = [5, 6]
    a[1] = [7, 8, 9]
    a[:, 0] = [True, False]
    assert_matches(x, a)


def test_setitem_with_index_arrays_casts_device_values_like_numpy(xp):
    a = np.zeros(4, bool)
    x = xp.asarray(a)
    values = np.array([0.5, 0.0, -2.0])
    a[[0, 1, 3]] = values
    x[[0, 1, 3]] = xp.asarray(values)
    assert_matches(x, a)
