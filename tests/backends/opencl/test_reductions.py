"""Tests of the reductions of the OpenCL array module
(pygrad/backends/opencl/reductions.py) against NumPy."""

import numpy as np
import pytest

from tests._helpers import assert_matches


@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, (0, 2), (1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_over_axes(xp, data, axis, keepdims):
    a = data(3, 4, 5)
    x = xp.asarray(a)
    assert_matches(x.sum(axis=axis, keepdims=keepdims), a.sum(axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("name", ["max", "min", "mean", "prod", "var"])
def test_other_reductions(xp, data, name):
    a = data(3, 4, 5)
    x = xp.asarray(a)
    for axis in (None, 1, (0, 2)):
        expected = getattr(a, name)(axis=axis, keepdims=True)
        assert_matches(getattr(x, name)(axis=axis, keepdims=True), expected, rtol=1e-5)


def test_reductions_of_views_and_integers(xp, data):
    a = data(4, 6)
    x = xp.asarray(a)
    assert_matches(x.T.sum(axis=0), a.T.sum(axis=0))
    assert_matches(x[:, ::2].max(axis=1), a[:, ::2].max(axis=1))
    assert_matches((x > 0).sum(), (a > 0).sum())
    assert_matches(x.argmax(axis=1), a.argmax(axis=1))
    assert_matches(x.argmin(), np.int64(a.argmin()))
    assert_matches((x > 0).any(axis=0), (a > 0).any(axis=0))
    assert_matches((x > -10).all(), np.bool_(True))
    assert_matches(xp.sum(xp.arange(5, dtype=np.int32)), np.arange(5, dtype=np.int32).sum())
    with pytest.raises(ValueError, match="zero-size array"):
        xp.zeros((0, 3)).max(axis=0)
