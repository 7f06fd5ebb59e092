"""Tests of the joining and copying functions of the OpenCL array module
(pygrad/backends/opencl/manipulation.py) against NumPy."""

import numpy as np

from tests._helpers import assert_matches


def test_concatenate_stack_split_pad(xp, data):
    a, b = data(2, 3), data(2, 3)
    x, y = xp.asarray(a), xp.asarray(b)
    assert_matches(xp.concatenate([x, y], axis=1), np.concatenate([a, b], axis=1))
    assert_matches(xp.stack([x, y], axis=-1), np.stack([a, b], axis=-1))
    for got, expected in zip(xp.split(x, 3, axis=1), np.split(a, 3, axis=1)):
        assert_matches(got, expected)
    assert_matches(xp.pad(x, ((1, 0), (2, 1))), np.pad(a, ((1, 0), (2, 1))))
    assert_matches(xp.repeat(x, 2, axis=0), np.repeat(a, 2, axis=0))
    assert_matches(xp.tile(x, (2, 1)), np.tile(a, (2, 1)))
    windows = xp.lib.stride_tricks.sliding_window_view(x, (2, 2))
    assert_matches(windows, np.lib.stride_tricks.sliding_window_view(a, (2, 2)))
