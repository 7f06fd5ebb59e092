"""Tests of the elementwise functions of the OpenCL array module
(pygrad/backends/opencl/ufuncs.py) against NumPy: operators, broadcasting, dtype rules,
in-place operators and operands the module refuses."""

import math

import numpy as np
import pytest

import pygrad
from tests._helpers import assert_matches


def test_numpy_array_operand_is_a_device_error(xp):
    a = xp.ones(3, dtype=np.float32)
    with pytest.raises(pygrad.DeviceError, match="NumPy array of shape"):
        a + np.ones(3, np.float32)


BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: abs(a) ** b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}
SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (3, 1)), ((), (4,))]


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_binary_operators_broadcast_like_numpy(xp, data, op, shapes):
    a, b = data(*shapes[0]), data(*shapes[1])
    b[..., :1] = a.reshape(-1)[0] if a.size else b[..., :1]  # an equal pair for == and !=
    fn = BINARY[op]
    expected = fn(a, b)
    assert_matches(fn(xp.asarray(a), xp.asarray(b)), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "name", ["maximum", "minimum", "arctan2", "logaddexp", "hypot", "greater_equal", "less"]
)
def test_binary_functions_match_numpy(xp, data, name):
    a, b = data(3, 4), data(4)
    expected = getattr(np, name)(a, b)
    assert_matches(getattr(xp, name)(xp.asarray(a), xp.asarray(b)), expected)


UNARY = {
    "exp": (np.exp, lambda x: x),
    "log": (np.log, lambda x: abs(x) + 0.1),
    "tanh": (np.tanh, lambda x: x),
    "sqrt": (np.sqrt, lambda x: abs(x)),
    "sin": (np.sin, lambda x: x),
    "cos": (np.cos, lambda x: x),
    "abs": (np.abs, lambda x: x),
    "negative": (np.negative, lambda x: x),
    "square": (np.square, lambda x: x),
    "sign": (np.sign, lambda x: x),
    "log1p": (np.log1p, lambda x: abs(x)),
    "floor": (np.floor, lambda x: x * 3),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_functions_match_numpy(xp, data, name):
    reference, domain = UNARY[name]
    a = domain(data(3, 5))
    assert_matches(getattr(xp, name)(xp.asarray(a)), reference(a), rtol=2e-6, atol=2e-6)


def test_erf_matches_math_erf(xp, data):
    a = data(7)
    expected = np.array([math.erf(v) for v in a], dtype=np.float32)
    assert_matches(xp.erf(xp.asarray(a)), expected, atol=1e-6)


def test_python_scalars_keep_the_array_dtype(xp, data):
    a = data(3)
    x = xp.asarray(a)
    for result, expected in [
        (x * 1.0001, a * 1.0001),
        (2.0 - x, 2.0 - a),
        (1.5 / x, 1.5 / a),
        (x**2, a**2),
        (2**x, 2**a),
        (-x, -a),
        (x + True, a + True),
    ]:
        assert_matches(result, expected)
    ints = xp.arange(4)
    assert_matches(ints + 1.5, np.arange(4) + 1.5)  # float64, as NumPy
    assert_matches(ints // 3, np.arange(4) // 3)
    assert_matches(-ints % 3, -np.arange(4) % 3)
    assert_matches(x * np.float64(2), a * np.float64(2))  # NumPy scalars are strong


def test_float64_arrays_stay_float64(xp):
    a = np.linspace(-1, 1, 5)
    assert_matches(xp.tanh(xp.asarray(a)) * 2, np.tanh(a) * 2, rtol=1e-12, atol=1e-12)


def test_non_contiguous_operands(xp, data):
    a, b = data(4, 3), data(3, 4)
    x, y = xp.asarray(a), xp.asarray(b)
    assert_matches(x.T + y, a.T + b)
    assert_matches(x[::2] * y.T[1::2], a[::2] * b.T[1::2])
    assert_matches(xp.exp(x.T[:, ::-1]), np.exp(a.T[:, ::-1]), rtol=2e-6)


def test_where_clip_and_bool_logic(xp, data):
    a, b = data(3, 4), data(4)
    x, y = xp.asarray(a), xp.asarray(b)
    assert_matches(xp.where(x > 0, x, y), np.where(a > 0, a, b))
    assert_matches(xp.where(x > 0, x, 0.0), np.where(a > 0, a, 0.0))
    assert_matches(xp.clip(x, -0.5, 0.5), np.clip(a, -0.5, 0.5))
    assert_matches((x > 0) & (y < 0), (a > 0) & (b < 0))
    assert_matches(~(x > 0) | (y < 0), ~(a > 0) | (b < 0))
    assert_matches(xp.maximum(x, 0), np.maximum(a, 0))


def test_in_place_operators_write_into_the_buffer(xp, data):
    a, b = data(3, 3), data(3)
    x = xp.asarray(a)
    buffer = x.buffer
    x += xp.asarray(b)
    x *= 2
    x[::2] -= 1.0
    x += x.T  # overlapping operands are computed out of place first
    expected = (a + b) * 2
    expected[::2] -= 1.0
    expected += expected.T.copy()
    assert x.buffer is buffer
    assert_matches(x, expected)
    with pytest.raises(TypeError, match="same_kind"):
        counts = xp.arange(3)
        counts += 1.5


def test_augmented_assignment_through_a_view(xp, data):
    a, b = data(4, 5), data(2, 5)
    x = xp.asarray(a)
    x[1::2] += xp.asarray(b)
    a[1::2] += b
    assert_matches(x, a)


def test_logical_functions_treat_every_nonzero_value_as_true(xp):
    # NumPy runs these in a bool loop; a C cast to uchar would make 0.5 and 256 false.
    a = np.array([0.5, -0.25, 0.0, np.inf, np.nan], np.float32)
    b = np.array([256, 3, 1, -(2**31), 0], np.int32)
    x, y = xp.asarray(a), xp.asarray(b)
    for name in ["logical_and", "logical_or", "logical_xor"]:
        assert_matches(getattr(xp, name)(x, y), getattr(np, name)(a, b))
        assert_matches(getattr(xp, name)(x, 0.5), getattr(np, name)(a, 0.5))
    assert_matches(xp.logical_not(x), np.logical_not(a))


def test_comparisons_with_python_ints_beyond_the_dtype_are_exact(xp):
    # NumPy 2 compares these exactly (arithmetic with them is an OverflowError).
    small = np.array([0, 5, 255], np.uint8)
    x = xp.asarray(small)
    for value in [-1, 1000, 2**64]:
        for name in ["equal", "not_equal", "less", "less_equal", "greater", "greater_equal"]:
            assert_matches(getattr(xp, name)(x, value), getattr(np, name)(small, value))
    big = np.array([1, 2**63 - 1], np.int64)
    assert_matches(xp.asarray(big) < 2**63, big < 2**63)
    with pytest.raises(OverflowError):
        x + 1000
