"""Tests of the OpenCL array module (pygrad/backends/opencl) and pygrad.opencl against NumPy,
and of Variables on an OpenCL device against the CPU.  Device tests are skipped where no
OpenCL platform is installed; the "how to install" error is tested everywhere."""

import math
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import pygrad
import pygrad.opencl
from pygrad import Variable
from pygrad import functions as F

ATOL = 1e-5
RTOL = 1e-5


@pytest.fixture(scope="module")
def xp(opencl):
    from pygrad.backends import opencl as backend

    return backend


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return lambda *shape: rng.standard_normal(shape).astype(np.float32)


def assert_matches(actual, expected, rtol=RTOL, atol=ATOL):
    """``actual`` (an OpenCL array) equals the NumPy ``expected`` in shape, dtype and values."""
    host = actual.get()
    expected = np.asarray(expected)
    assert host.shape == expected.shape
    assert host.dtype == expected.dtype, (host.dtype, expected.dtype)
    np.testing.assert_allclose(host, expected, rtol=rtol, atol=atol)


# --- availability and errors -------------------------------------------------------------------
def test_import_pygrad_does_not_import_pyopencl():
    code = "import sys, pygrad, pygrad.opencl; assert 'pyopencl' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def _forget_devices(monkeypatch, runtime):
    monkeypatch.setattr(runtime, "_cl_devices", None)
    monkeypatch.setattr(runtime, "_discovery_error", None)
    monkeypatch.setattr(runtime, "_devices", {})


def test_missing_platform_error_says_how_to_install(monkeypatch):
    from pygrad.backends.opencl import runtime

    def no_platform():
        raise RuntimeError("clGetPlatformIDs failed: PLATFORM_NOT_FOUND_KHR")

    fake_cl = types.SimpleNamespace(get_platforms=no_platform, Error=Exception)
    _forget_devices(monkeypatch, runtime)
    monkeypatch.setattr(runtime, "cl", fake_cl)
    assert pygrad.opencl.is_available() is False
    assert pygrad.opencl.device_count() == 0
    assert pygrad.opencl.devices() == []
    with pytest.raises(RuntimeError, match=r"pip install pygrad\[opencl\]"):
        Variable([1.0, 2.0], device="opencl")
    with pytest.raises(runtime.OpenCLUnavailableError, match="PLATFORM_NOT_FOUND"):
        runtime.get_device("opencl:0")


def test_missing_pyopencl_error_says_how_to_install(monkeypatch):
    from pygrad.backends.opencl import runtime

    _forget_devices(monkeypatch, runtime)
    monkeypatch.setattr(runtime, "cl", None)
    monkeypatch.setattr(runtime, "_import_error", ImportError("No module named 'pyopencl'"))
    assert pygrad.opencl.is_available() is False
    with pytest.raises(
        RuntimeError, match=r"PyOpenCL is not installed.*pip install pygrad\[opencl\]"
    ):
        Variable(np.ones(3, np.float32)).to("opencl")


def test_devices_lists_opencl_names(xp):
    infos = pygrad.opencl.devices()
    assert pygrad.opencl.device_count() == len(infos) >= 1
    assert infos[0].name == "opencl:0"
    assert isinstance(infos[0].float64, bool)


def test_unknown_device_index_is_a_value_error(xp):
    with pytest.raises(ValueError, match="opencl:99 does not exist"):
        xp.zeros(3, device="opencl:99")


def test_missing_call_fails_loudly_naming_it(xp):
    with pytest.raises(AttributeError, match="opencl backend has no 'fft'"):
        _ = xp.fft
    with pytest.raises(AttributeError, match="opencl backend has no 'multiply.at'"):
        _ = xp.multiply.at


@pytest.mark.parametrize(
    "path", ["linalg.norm", "random.shuffle", "add.accumulate", "ndarray.cumsum"]
)
def test_missing_calls_below_the_module_name_themselves(xp, path):
    owner, name = path.split(".")
    target = xp.zeros(2) if owner == "ndarray" else getattr(xp, owner)
    with pytest.raises(AttributeError, match=f"opencl backend has no '{path}'"):
        getattr(target, name)


def test_numpy_array_operand_is_a_device_error(xp):
    a = xp.ones(3, dtype=np.float32)
    with pytest.raises(pygrad.DeviceError, match="NumPy array of shape"):
        a + np.ones(3, np.float32)


def test_no_implicit_conversion_to_numpy(xp):
    with pytest.raises(TypeError, match=r"\.get\(\)"):
        np.asarray(xp.ones(2))


# --- array type --------------------------------------------------------------------------------
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


# --- elementwise -------------------------------------------------------------------------------
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


def test_augmented_assignment_through_a_view(xp, data):
    a, b = data(4, 5), data(2, 5)
    x = xp.asarray(a)
    x[1::2] += xp.asarray(b)
    a[1::2] += b
    assert_matches(x, a)


# --- reductions --------------------------------------------------------------------------------
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


# --- matmul and friends ------------------------------------------------------------------------
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


# --- indexing and joining ----------------------------------------------------------------------
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


def test_random_numbers_are_reproducible_and_well_spread(xp):
    xp.random.seed(3)
    first = xp.random.rand(1000, dtype=np.float32)
    xp.random.seed(3)
    again = xp.random.rand(1000, dtype=np.float32)
    np.testing.assert_array_equal(first.get(), again.get())
    assert first.dtype == np.float32 and 0.45 < float(first.mean()) < 0.55
    normal = xp.random.randn(20000).get()
    assert normal.dtype == np.float64 and abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05
    ints = xp.random.randint(0, 3, size=100).get()
    assert set(ints.tolist()) == {0, 1, 2}


# --- Variables on the device -------------------------------------------------------------------
def _run_on(device, a, b, w):
    x, y, W = (Variable(v, device=device) for v in (a, b, w))
    h = F.tanh(F.matmul(F.add(F.mul(x, y), F.sub(x, y)), W))
    z = F.sum(F.div(F.exp(h * 0.5), (y * y + 1).sum()) - 2.0 * h, axis=1, keepdims=True)
    column = z.reshape(-1, 1)
    loss = F.sum(column.T @ column)
    loss.backward()
    return [loss, x.grad, y.grad, W.grad]


@pytest.mark.parametrize("shapes", [((3, 4), (4,), (4, 2)), ((2, 3, 4), (3, 1), (4, 5))], ids=str)
def test_variable_forward_and_backward_match_cpu(xp, data, shapes):
    a, b, w = (data(*s) for s in shapes)
    cpu = _run_on("cpu", a, b, w)
    gpu = _run_on("opencl", a, b, w)
    for c, g in zip(cpu, gpu):
        assert g.device == "opencl:0" and g.dtype == np.float32
        np.testing.assert_allclose(g.numpy(), c.numpy(), rtol=1e-4, atol=1e-4)


def test_variable_moves_between_devices_and_keeps_grads_on_device(xp, data):
    a = data(2, 3)
    x = Variable(a)
    y = x.to("opencl")
    assert y.device == "opencl:0" and y.to("cpu").device == "cpu"
    assert repr(y).endswith("device='opencl:0')")
    loss = F.sum(y * y)
    loss.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), 2 * a, rtol=1e-6)
    z = Variable(a, device="opencl")
    F.sum(F.exp(z)).backward()
    assert z.grad.device == "opencl:0"


def test_zero_dimensional_data_keeps_its_shape_on_device_and_back(xp):
    assert xp.asarray(np.float32(2.0)).shape == ()
    x = Variable(np.float32(2.0))
    y = x.to("opencl")
    assert y.shape == () and y.to("cpu").shape == ()
    (F.exp(y) * 3.0).backward()
    assert x.grad.shape == () and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, 3.0 * np.exp(2.0), rtol=1e-6)
    assert Variable(0.5, device="opencl").shape == ()


def test_mixing_devices_raises_device_error_naming_both(xp):
    cpu = Variable(np.ones(3, np.float32))
    gpu = Variable(np.ones(3, np.float32), device="opencl")
    with pytest.raises(pygrad.DeviceError, match=r"cpu.*opencl:0|opencl:0.*cpu"):
        cpu + gpu
    with pytest.raises(pygrad.DeviceError, match=r"cpu.*opencl:0|opencl:0.*cpu"):
        F.matmul(gpu.reshape(1, 3), cpu.reshape(3, 1))


def test_second_order_grad_of_tanh_on_device(xp, data):
    a = data(5)
    grads = []
    for device in ("cpu", "opencl"):
        x = Variable(a, device=device)
        y = F.tanh(x)
        y.backward(create_graph=True)
        gx = x.grad
        x.clear_grad()
        gx.backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


FUNCTIONS = {
    "relu": lambda v, d: F.relu(v(d(3, 4))),
    "softmax_cross_entropy": lambda v, d: F.softmax_cross_entropy(
        v(d(5, 4)), v(np.array([0, 3, 1, 1, 2]))
    ),
    "conv2d": lambda v, d: F.conv2d(v(d(2, 3, 6, 6)), v(d(4, 3, 3, 3)), v(d(4)), stride=2, pad=1),
    "max_pooling": lambda v, d: F.max_pooling(v(d(2, 3, 6, 6)), 2),
    "layer_norm": lambda v, d: F.layer_norm(v(d(3, 4)), v(d(4)), v(d(4))),
    "logsumexp": lambda v, d: F.logsumexp(v(d(3, 4)), axis=1),
}


def _run_function(name: str, device: str) -> list:
    """The output of ``FUNCTIONS[name]`` and the grads of its inputs, as NumPy arrays."""
    rng = np.random.default_rng(1)
    leaves = []

    def variable(a):
        leaves.append(Variable(a, device=device))
        return leaves[-1]

    y = FUNCTIONS[name](variable, lambda *s: rng.standard_normal(s).astype(np.float32))
    F.sum(y * y).backward()
    assert y.device == ("cpu" if device == "cpu" else "opencl:0")
    return [y.numpy()] + [x.grad.numpy() for x in leaves if x.grad is not None]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_more_functions_run_on_device_like_on_cpu(xp, name):
    for cpu, gpu in zip(_run_function(name, "cpu"), _run_function(name, "opencl")):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)


def test_get_item_grad_accumulates_repeated_indices_on_device(xp, data):
    a = data(4, 3)
    x = Variable(a, device="opencl")
    y = x[[0, 2, 0]]
    F.sum(y * y).backward()
    expected = np.zeros_like(a)
    np.add.at(expected, [0, 2, 0], 2 * a[[0, 2, 0]])
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_bool_and_uint8_outputs_never_share_a_kernel(xp):
    # Both are stored as uchar; only a bool output turns nonzero values into 1.
    halves = xp.asarray(np.array([0.5, 2.0, 0.0], np.float32))
    assert_matches(halves.astype(np.uint8), np.array([0, 2, 0], np.uint8))
    assert_matches(halves.astype(bool), np.array([True, True, False]))
    flags = xp.asarray(np.array([True, False]))
    assert_matches(flags + flags, np.array([True, False]))
    small = xp.asarray(np.array([1, 200], np.uint8))
    assert_matches(small + small, np.array([2, 144], np.uint8))


def test_logical_functions_treat_every_nonzero_value_as_true(xp):
    # NumPy runs these in a bool loop; a C cast to uchar would make 0.5 and 256 false.
    a = np.array([0.5, -0.25, 0.0, np.inf, np.nan], np.float32)
    b = np.array([256, 3, 1, -(2**31), 0], np.int32)
    x, y = xp.asarray(a), xp.asarray(b)
    for name in ["logical_and", "logical_or", "logical_xor"]:
        assert_matches(getattr(xp, name)(x, y), getattr(np, name)(a, b))
        assert_matches(getattr(xp, name)(x, 0.5), getattr(np, name)(a, 0.5))
    assert_matches(xp.logical_not(x), np.logical_not(a))


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
