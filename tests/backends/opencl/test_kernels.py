"""Tests of the kernel templates and their cache (pygrad/backends/opencl/kernels.py):
one compiled kernel serves every shape and layout, and distinct dtypes never share one."""

import numpy as np

from tests._helpers import assert_matches


def test_kernels_compile_once_for_any_shape_or_layout(xp, data):
    device = xp.get_device()
    x = xp.asarray(data(4, 6))
    x * 1.5 + x[::-1]
    (x.T * 2.5).sum(axis=0)
    compiled = len(device.kernels)
    y = xp.asarray(data(2, 3, 5))
    y * 0.5 + y.transpose(0, 2, 1).transpose(0, 2, 1)[:, ::-1]
    (y[:, ::-1] * 3.0).sum(axis=(0, 2), keepdims=True)
    assert len(device.kernels) == compiled


def test_bool_and_uint8_outputs_never_share_a_kernel(xp):
    # Both are stored as uchar; only a bool output turns nonzero values into 1.
    halves = xp.asarray(np.array([0.5, 2.0, 0.0], np.float32))
    assert_matches(halves.astype(np.uint8), np.array([0, 2, 0], np.uint8))
    assert_matches(halves.astype(bool), np.array([True, True, False]))
    flags = xp.asarray(np.array([True, False]))
    assert_matches(flags + flags, np.array([True, False]))
    small = xp.asarray(np.array([1, 200], np.uint8))
    assert_matches(small + small, np.array([2, 144], np.uint8))
