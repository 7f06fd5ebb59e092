"""Tests of pygrad/backends/opencl/reductions.py (and reduce_kernels.py, which runs them)
against NumPy: every reduction over every kind of axis choice, layout, size and dtype, with
the work split the default way and split into many pieces, so that both the one-pass and the
two-pass paths of each kernel run on small arrays."""

import numpy as np
import pytest

from tests._helpers import assert_matches

REDUCTIONS = ["sum", "prod", "mean", "var", "std", "max", "min", "any", "all", "count_nonzero"]
ARG_REDUCTIONS = ["argmax", "argmin"]
DTYPES = [np.float32, np.float64, np.int32, np.bool_]


@pytest.fixture(params=["default", "split"])
def split(request, monkeypatch):
    """Run once with the default work split and once with every reduction cut into many
    pieces (rows) and chunks (columns), which exercises the merging kernel."""
    if request.param == "split":
        from pygrad.backends.opencl import reduce_kernels

        monkeypatch.setattr(reduce_kernels, "ITEM_ELEMENTS", 3)
        monkeypatch.setattr(reduce_kernels, "ENOUGH_ITEMS", 1 << 30)
        monkeypatch.setattr(reduce_kernels, "COLUMN_CHUNK", 3)
        monkeypatch.setattr(reduce_kernels, "_LARGE", 0)
    return request.param


def make(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.bool_:
        return rng.random(shape) < 0.7
    if np.dtype(dtype).kind == "i":
        # Small values keep products of many of them inside int32.
        return rng.integers(-3, 4, shape).astype(dtype)
    return (rng.standard_normal(shape) + 0.5).astype(dtype)


def call(module, name, a, **kwargs):
    return getattr(module, name)(a, **kwargs)


def expected_of(name, a, **kwargs):
    """NumPy's answer; float32 sums in float64 and rounded, since ours accumulate in float64
    and NumPy's float32 error would dominate the comparison."""
    if a.dtype == np.float32 and name in ("sum", "mean", "var", "std"):
        return call(np, name, a.astype(np.float64), **kwargs).astype(np.float32)
    return call(np, name, a, **kwargs)


def assert_reduces_like_numpy(xp, name, a, x=None, **kwargs):
    x = xp.asarray(a) if x is None else x
    actual = call(xp, name, x, **kwargs).get()
    expected = np.asarray(expected_of(name, a, **kwargs))
    assert actual.shape == expected.shape, (name, kwargs, actual.shape, expected.shape)
    assert actual.dtype == expected.dtype, (name, kwargs, actual.dtype, expected.dtype)
    if name == "prod":  # products of many numbers amplify rounding
        tol = 1e-4 if a.dtype == np.float32 else 1e-10
    else:
        tol = 2e-5 if a.dtype == np.float32 or name in ("mean", "var", "std") else 1e-12
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol, err_msg=f"{name} {kwargs}")


# --- every reduction, axis choice and dtype ------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_over_axes_match_numpy(xp, split, name, dtype):
    a = make((4, 3, 6, 5), dtype)
    if name == "prod" and dtype != np.int32:
        a = a if dtype == np.bool_ else (a * 0 + 1 + make(a.shape, dtype, 1) / 8).astype(dtype)
    for axis in (None, 0, 1, -1, (0, 2, 3), (1, 2), (0, 3)):
        for keepdims in (False, True):
            assert_reduces_like_numpy(xp, name, a, axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ARG_REDUCTIONS)
def test_arg_reductions_match_numpy(xp, split, name, dtype):
    a = make((6, 5, 7), dtype)
    for axis in (None, 0, 1, 2, -1):
        for keepdims in (False, True):
            assert_reduces_like_numpy(xp, name, a, axis=axis, keepdims=keepdims)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "argmax", "argmin", "any"])
@pytest.mark.parametrize("size", [1, 7, 1000003])
def test_odd_sizes(xp, split, name, size):
    a = make((size,), np.float32)
    assert_reduces_like_numpy(xp, name, a)
    assert_reduces_like_numpy(xp, name, a, axis=0)
    b = make((size, 3), np.float32)
    assert_reduces_like_numpy(xp, name, b, axis=0)
    assert_reduces_like_numpy(xp, name, b, axis=1)


# --- layouts ----------------------------------------------------------------------------------
def _views(xp, a):
    """Pairs (NumPy view, the same view of the OpenCL copy of ``a``)."""
    x = xp.asarray(a)
    yield a.T, x.T
    yield a[1::2, ::3], x[1::2, ::3]
    yield a[::-1, 2:], x[::-1, 2:]
    yield a[:, ::-2], x[:, ::-2]
    row = a[0]
    yield np.broadcast_to(row, (5,) + row.shape), xp.broadcast_to(x[0], (5,) + row.shape)
    column = a[:, :1]
    yield np.broadcast_to(column, a.shape), xp.broadcast_to(x[:, :1], a.shape)


@pytest.mark.parametrize("name", REDUCTIONS + ARG_REDUCTIONS)
def test_non_contiguous_inputs(xp, split, name):
    a = make((9, 40), np.float64)
    for view, x in _views(xp, a):
        axes = (None, 0, 1, -1) if name in ARG_REDUCTIONS else (None, 0, 1, (0, 1))
        for axis in axes:
            assert_reduces_like_numpy(xp, name, view, x=x, axis=axis)


def test_per_channel_sums_of_nchw_and_of_a_transposed_view(xp, split):
    a = make((16, 3, 40, 50), np.float32)
    x = xp.asarray(a)
    assert_reduces_like_numpy(xp, "sum", a, x=x, axis=(0, 2, 3))
    assert_reduces_like_numpy(xp, "mean", a, x=x, axis=(0, 2, 3), keepdims=True)
    assert_reduces_like_numpy(xp, "var", a, x=x, axis=(0, 2, 3), keepdims=True)
    nhwc = a.transpose(0, 2, 3, 1)
    assert_reduces_like_numpy(xp, "sum", nhwc, x=x.transpose(0, 2, 3, 1), axis=(0, 1, 2))


def test_views_with_more_axes_than_the_kernels_usually_take(xp):
    a = make((3,) * 11, np.float32)
    steps = (slice(None), slice(None, None, 2)) * 5 + (slice(None),)
    view, x = a[steps], xp.asarray(a)[steps]
    for axis in (None, (1, 3, 5, 7, 9), (0, 2, 4, 6, 8, 10), -1):
        assert_reduces_like_numpy(xp, "sum", view, x=x, axis=axis)
    assert_reduces_like_numpy(xp, "argmax", view, x=x, axis=3)


@pytest.mark.parametrize("shape", [(3000, 40), (5000, 7), (7, 5000), (2, 20000)])
def test_row_and_column_sums_of_long_matrices(xp, split, shape):
    a = make(shape, np.float32)
    for name in ("sum", "max", "argmin", "count_nonzero"):
        for axis in (0, 1, None):
            assert_reduces_like_numpy(xp, name, a, axis=axis)


# --- special values ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin"])
def test_nan_wins_and_the_first_nan_is_the_position(xp, split, name):
    a = make((40, 300), np.float32)
    a[3, 7] = a[3, 250] = a[30, 7] = np.nan
    for axis in (None, 0, 1):
        assert_reduces_like_numpy(xp, name, a, axis=axis)
    a[:] = np.nan
    assert_reduces_like_numpy(xp, name, a, axis=1)


@pytest.mark.parametrize("name", ARG_REDUCTIONS)
def test_ties_give_the_first_occurrence(xp, split, name):
    a = np.zeros(100003, np.float32)
    assert_reduces_like_numpy(xp, name, a)
    a[[5000, 40000, 90000]] = 3.0 if name == "argmax" else -3.0
    assert_reduces_like_numpy(xp, name, a)
    b = np.ones((64, 300), np.int32)
    b[:, [17, 200, 299]] = 2 if name == "argmax" else 0
    assert_reduces_like_numpy(xp, name, b, axis=1)
    assert_reduces_like_numpy(xp, name, b.T.copy(), axis=0)


def test_float32_totals_are_as_accurate_as_numpy(xp):
    a = (np.random.default_rng(3).random(1 << 22) * 1000).astype(np.float32)
    exact = a.astype(np.float64).sum()
    ours = float(xp.asarray(a).sum().get())
    assert abs(ours - exact) <= max(abs(float(a.sum()) - exact), abs(exact) * 1e-7)


# --- empty and 0-d arrays ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "prod", "any", "all", "count_nonzero"])
def test_empty_reductions_give_the_identity(xp, name):
    for shape, axis in (((0,), None), ((0, 3), 0), ((3, 0), 1), ((0, 3), 1)):
        assert_reduces_like_numpy(xp, name, np.zeros(shape, np.float32), axis=axis)


def test_empty_reductions_without_identity_raise(xp):
    x = xp.zeros((0, 3), dtype=np.float32)
    for name in ("max", "min", "argmax", "argmin"):
        with pytest.raises(ValueError, match="zero-size array"):
            call(xp, name, x, axis=0)
    assert call(xp, "max", x, axis=1).shape == (0,)
    with pytest.warns(RuntimeWarning):
        expected = np.zeros((0, 3), np.float32).mean(axis=0)
    np.testing.assert_array_equal(xp.mean(x, axis=0).get(), expected)


@pytest.mark.parametrize("name", REDUCTIONS + ARG_REDUCTIONS)
def test_zero_dimensional_arrays(xp, name):
    a = np.array(2.5, np.float32)
    assert_reduces_like_numpy(xp, name, a)
    if name not in ARG_REDUCTIONS:
        assert_reduces_like_numpy(xp, name, a, axis=(), keepdims=True)


def test_dtype_argument_and_bad_axes(xp):
    a = make((5, 6), np.int32)
    x = xp.asarray(a)
    assert xp.sum(x, dtype=np.float64).get() == a.sum(dtype=np.float64)
    np.testing.assert_allclose(xp.mean(x, axis=1).get(), a.mean(axis=1))
    flags = np.array([[True, True], [False, False], [True, False]])
    np.testing.assert_array_equal(
        xp.sum(xp.asarray(flags), axis=1, dtype=np.bool_).get(), flags.sum(axis=1, dtype=np.bool_)
    )
    np.testing.assert_array_equal(
        xp.prod(xp.asarray(flags), axis=0, dtype=np.bool_).get(), flags.prod(axis=0, dtype=np.bool_)
    )
    with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions") else np.AxisError):
        xp.sum(x, axis=2)
    with pytest.raises(ValueError, match="duplicate"):
        xp.sum(x, axis=(0, 0))


# --- compilation ------------------------------------------------------------------------------
def test_one_program_per_operation_serves_every_shape_and_strategy(xp):
    device = xp.get_device()
    a = make((64, 32, 28, 28), np.float32)
    x = xp.asarray(a)
    x.sum(axis=1)  # rows, split into pieces on the way
    before = len(device.kernels)
    for axis in (None, 0, 1, -1, (0, 2, 3), (1, 2)):
        x.sum(axis=axis)  # rows, columns, strided rows, with and without a second pass
        x[:, ::2].sum(axis=axis)
    xp.asarray(make((1000003,), np.float32)).sum()
    xp.asarray(make((5, 7), np.float32)).T.sum(axis=1)
    assert len(device.kernels) == before


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
