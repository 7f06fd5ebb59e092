"""The fused vision kernels of the OpenCL backend (pygrad/backends/opencl/fused_vision.py)
against the NumPy path: the same pygrad functions on the CPU and on OpenCL give the same
values and gradients, first and second order, for every layout the kernels take."""

import numpy as np
import pytest

import pygrad
from pygrad import Variable
from pygrad import functions as F
from pygrad.backends import fused_op, to_device, to_host
from pygrad.functions import vision

VISION_KERNELS = [
    "im2col",
    "col2im",
    "max_pooling",
    "max_pooling_grad",
    "max_pooling_gather",
    "average_pooling",
    "swap_leading_axes",
]


def tolerance(dtype) -> dict:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def on_device(a, device, transposed=False):
    """``a`` on ``device``; with ``transposed``, as a non-contiguous view with the last two
    axes swapped in memory."""
    if not transposed:
        return to_device(a, device)
    return to_device(np.ascontiguousarray(np.swapaxes(a, -1, -2)), device).swapaxes(-1, -2)


def evaluate(f, arrays, device, order=1, transposed=False):
    """``f(*arrays)`` on ``device`` with the gradients of ``sum(w * f)`` for every input, and
    with ``order=2`` the gradients of ``sum(v * grad)`` over those gradients too (host
    copies)."""
    xs = [Variable(on_device(a, device, transposed)) for a in arrays]
    y = f(*xs)
    rng = np.random.default_rng(7)
    w = Variable(to_device(rng.standard_normal(y.shape).astype(y.dtype), device))
    with pygrad.using_config("enable_backprop", True):
        (y * w).sum().backward(create_graph=order > 1)
    results = [y.data] + [x.grad.data for x in xs]
    if order > 1:
        grads = [x.grad for x in xs]
        for x in xs:
            x.grad = None
        total = 0
        for g in grads:
            v = to_device(rng.standard_normal(g.shape).astype(g.dtype), device)
            total = total + (g * Variable(v)).sum()
        total.backward()
        results += [x.grad.data for x in xs]
    return [to_host(r) for r in results]


def assert_devices_agree(opencl, f, arrays, order=1, transposed=False, exact=False):
    expected = evaluate(f, arrays, "cpu", order)
    actual = evaluate(f, arrays, opencl, order, transposed)
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape and a.dtype == e.dtype
        if exact:
            np.testing.assert_array_equal(a, e)
        else:
            np.testing.assert_allclose(a, e, **tolerance(e.dtype))


def normal(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


# --- the kernels are there, and used ---------------------------------------------------------
def test_opencl_has_every_fused_vision_kernel_and_numpy_none(opencl):
    xp = pygrad.backends.get_array_module(to_device(np.zeros(1), opencl))
    for name in VISION_KERNELS:
        assert fused_op(xp, name) is not None, name
        assert fused_op(np, name) is None, name


def test_vision_functions_run_the_fused_kernels_on_opencl(opencl, rng, monkeypatch):
    xp = pygrad.backends.get_array_module(to_device(np.zeros(1), opencl))
    called = []
    for name in VISION_KERNELS:
        kernel = xp.fused_ops[name]

        def spy(*args, _name=name, _kernel=kernel, **kwargs):
            called.append(_name)
            return _kernel(*args, **kwargs)

        monkeypatch.setitem(xp.fused_ops, name, spy)
    x = normal(rng, (2, 3, 6, 6))
    W = normal(rng, (4, 3, 3, 3))
    evaluate(lambda v, w: F.conv2d(F.max_pooling(v, 2) ** 2, w, pad=1), [x, W], opencl, 2)
    evaluate(lambda v: F.average_pooling(v, 2), [x], opencl)
    assert set(called) == set(VISION_KERNELS)


def test_each_vision_composite_is_one_launch(opencl, rng, launches):
    x = to_device(normal(rng, (2, 3, 7, 6)), opencl)
    gy = to_device(normal(rng, (2, 3, 3, 3)), opencl)
    steps = []
    pool = vision.MaxPooling((3, 2), (2, 2), (1, 0))
    steps.append(lambda: pool.forward(x))
    steps.append(lambda: vision.MaxPoolingGrad(pool).forward(gy))
    steps.append(lambda: vision.MaxPoolingGather(pool).forward(x))
    average = vision.AveragePooling((3, 2), (2, 2), (1, 0))
    steps.append(lambda: average.forward(x))
    steps.append(lambda: vision.AveragePoolingGrad(average).forward(gy))
    steps.append(lambda: vision.Im2col((3, 3), (1, 1), (1, 1), True).forward(x))
    col = to_device(normal(rng, (2 * 7 * 6, 3 * 9)), opencl)
    steps.append(lambda: vision.Col2im(x.shape, (3, 3), (1, 1), (1, 1), True).forward(col))
    for step in steps:
        step()  # compiles on first use
        launches[0] = 0
        step()
        assert launches[0] == 1


# --- convolutions -----------------------------------------------------------------------------
CONV_CASES = [
    # x shape, W shape, stride, pad
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1),
    ((2, 3, 7, 9), (4, 3, 3, 2), 2, 1),
    ((1, 2, 8, 5), (3, 2, 2, 3), (2, 1), (0, 1)),
    ((3, 1, 6, 6), (2, 1, 1, 1), 1, 0),
    ((2, 4, 5, 5), (2, 4, 5, 5), 1, 2),
]


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_and_its_grads_match_the_cpu(opencl, rng, x_shape, W_shape, stride, pad, with_bias):
    arrays = [normal(rng, x_shape), normal(rng, W_shape)]
    if with_bias:
        arrays.append(normal(rng, W_shape[:1]))
    assert_devices_agree(opencl, lambda *v: F.conv2d(*v, stride=stride, pad=pad), arrays)


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES[:3])
def test_conv2d_second_order_grads_match_the_cpu(opencl, rng, x_shape, W_shape, stride, pad):
    arrays = [normal(rng, x_shape), normal(rng, W_shape), normal(rng, W_shape[:1])]
    f = lambda *v: F.conv2d(*v, stride=stride, pad=pad) ** 2  # noqa: E731
    assert_devices_agree(opencl, f, arrays, order=2)


def test_conv2d_with_a_bias_of_another_dtype_matches_the_cpu(opencl, rng):
    arrays = [normal(rng, (2, 3, 6, 5)), normal(rng, (4, 3, 3, 3)), normal(rng, 4, np.float64)]
    assert_devices_agree(opencl, lambda *v: F.conv2d(*v, pad=1), arrays)


def test_conv2d_with_a_bias_that_views_a_larger_array_matches_the_cpu(opencl, rng):
    x, W, storage = normal(rng, (2, 3, 6, 5)), normal(rng, (4, 3, 3, 3)), normal(rng, 9)
    results = []
    for device in ("cpu", opencl):
        b = to_device(storage, device)[3:7]
        results.append(to_host(F.conv2d(to_device(x, device), to_device(W, device), b, 1, 1).data))
    np.testing.assert_allclose(results[1], results[0], **tolerance(np.float32))


def test_conv2d_of_a_transposed_view_matches_the_cpu(opencl, rng):
    arrays = [normal(rng, (2, 3, 6, 9)), normal(rng, (4, 3, 3, 2))]
    f = lambda x, W: F.conv2d(x, W, stride=(1, 2), pad=1)  # noqa: E731
    assert_devices_agree(opencl, f, arrays, transposed=True)


@pytest.mark.parametrize(
    "x_shape, W_shape, stride, pad, outsize",
    [
        ((2, 4, 5, 6), (4, 3, 3, 3), 1, 1, None),
        ((2, 4, 5, 6), (4, 3, 3, 2), 2, 1, None),
        ((1, 2, 4, 3), (2, 3, 3, 2), (2, 3), (1, 0), (8, 10)),
    ],
)
def test_deconv2d_and_its_grads_match_the_cpu(opencl, rng, x_shape, W_shape, stride, pad, outsize):
    arrays = [normal(rng, x_shape), normal(rng, W_shape), normal(rng, W_shape[1:2])]
    f = lambda *v: F.deconv2d(*v, stride=stride, pad=pad, outsize=outsize)  # noqa: E731
    assert_devices_agree(opencl, f, arrays)
    assert_devices_agree(opencl, lambda *v: f(*v) ** 2, arrays, order=2)


def test_convolutions_in_float64_match_the_cpu(opencl, rng):
    arrays = [normal(rng, (2, 3, 7, 6), np.float64), normal(rng, (4, 3, 3, 2), np.float64)]
    assert_devices_agree(opencl, lambda x, W: F.conv2d(x, W, stride=2, pad=1) ** 2, arrays, 2)
    arrays = [normal(rng, (2, 4, 5, 6), np.float64), normal(rng, (4, 3, 2, 3), np.float64)]
    assert_devices_agree(opencl, lambda x, W: F.deconv2d(x, W, stride=(2, 1), pad=1), arrays)


# --- im2col and col2im ------------------------------------------------------------------------
IM2COL_CASES = [
    # x shape, kernel, stride, pad
    ((2, 3, 7, 9), 3, 1, 1),
    ((2, 3, 7, 9), (3, 2), 2, 1),
    ((1, 2, 8, 5), (2, 3), (2, 1), (0, 2)),
    ((3, 1, 5, 5), 2, 3, 0),
    ((2, 2, 4, 4), 1, 1, 0),
]


@pytest.mark.parametrize("x_shape, kernel, stride, pad", IM2COL_CASES)
@pytest.mark.parametrize("to_matrix", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_and_col2im_match_the_cpu(
    opencl, rng, x_shape, kernel, stride, pad, to_matrix, dtype
):
    x = normal(rng, x_shape, dtype)
    f = lambda v: F.im2col(v, kernel, stride, pad, to_matrix) ** 2  # noqa: E731
    assert_devices_agree(opencl, f, [x], order=2)
    col = to_host(F.im2col(x, kernel, stride, pad, to_matrix).data)
    col = normal(rng, col.shape, dtype)
    g = lambda c: F.col2im(c, x_shape, kernel, stride, pad, to_matrix) ** 2  # noqa: E731
    assert_devices_agree(opencl, g, [col], order=2)


@pytest.mark.parametrize("to_matrix", [True, False])
def test_im2col_of_a_transposed_view_matches_the_cpu(opencl, rng, to_matrix):
    x = normal(rng, (2, 3, 5, 8))
    f = lambda v: F.im2col(v, (2, 3), (1, 2), 1, to_matrix)  # noqa: E731
    assert_devices_agree(opencl, f, [x], transposed=True)


def test_col2im_of_a_transposed_view_matches_the_cpu(opencl, rng):
    # The window matrix of a 2x3 kernel over (2, 3, 5, 5) with pad 1: 2 * 6 * 5 rows.
    col = normal(rng, (3 * 2 * 3, 2 * 6 * 5)).T
    f = lambda c: F.col2im(c, (2, 3, 5, 5), (2, 3), 1, 1)  # noqa: E731
    assert_devices_agree(opencl, f, [np.ascontiguousarray(col)], transposed=True)


# --- pooling ----------------------------------------------------------------------------------
POOL_CASES = [
    # x shape, kernel, stride, pad
    ((2, 3, 8, 8), 2, None, 0),
    ((2, 3, 9, 7), 3, 2, 1),  # overlapping windows, odd sizes, padding
    ((1, 2, 7, 10), (3, 2), (1, 2), (1, 0)),
    ((2, 2, 7, 7), 2, 2, 0),  # the last row and column belong to no window
    ((1, 1, 5, 5), 1, 1, 0),
    ((2, 1, 20, 37), (2, 3), (2, 3), (1, 1)),  # rows longer than a kernel's chunk
]


@pytest.mark.parametrize("x_shape, kernel, stride, pad", POOL_CASES)
@pytest.mark.parametrize("pooling", [F.max_pooling, F.average_pooling])
def test_pooling_and_its_grads_match_the_cpu(opencl, rng, pooling, x_shape, kernel, stride, pad):
    f = lambda v: pooling(v, kernel, stride, pad) ** 2  # noqa: E731
    assert_devices_agree(opencl, f, [normal(rng, x_shape)], order=2)


@pytest.mark.parametrize("pooling", [F.max_pooling, F.average_pooling])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooling_of_a_transposed_view_matches_the_cpu(opencl, rng, pooling, dtype):
    f = lambda v: pooling(v, 3, 2, 1) ** 2  # noqa: E731
    x = normal(rng, (2, 3, 9, 6), dtype)
    assert_devices_agree(opencl, f, [x], order=2, transposed=True)


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2), (3, 1)])
def test_max_pooling_ties_go_to_the_first_maximum_on_both_devices(opencl, rng, kernel, stride):
    x = rng.integers(0, 3, (2, 3, 9, 9)).astype(np.float32)  # mostly ties
    f = lambda v: F.max_pooling(v, kernel, stride, 1)  # noqa: E731
    assert_devices_agree(opencl, f, [x], exact=True)


def test_max_pooling_padding_never_wins_on_opencl(opencl):
    x = np.full((1, 1, 3, 3), -np.inf, dtype=np.float32)
    x[0, 0, 1, 1] = -1e30
    y = F.max_pooling(Variable(to_device(x, opencl)), 3, 1, 1)
    np.testing.assert_array_equal(to_host(y.data), np.full((1, 1, 3, 3), -1e30, np.float32))


def test_max_pooling_of_integers_matches_the_cpu(opencl, rng):
    x = rng.integers(-100, 100, (2, 3, 7, 7)).astype(np.int32)
    for device in ("cpu", opencl):
        y = F.max_pooling(Variable(to_device(x, device)), 3, 2, 1)
        if device == "cpu":
            expected = y.data
        else:
            np.testing.assert_array_equal(to_host(y.data), expected)


def test_a_pooling_of_many_offsets_uses_int32_indexes(opencl, rng):
    x = normal(rng, (1, 2, 13, 12))  # 12 x 11 = 132 offsets, past int8
    assert_devices_agree(opencl, lambda v: F.max_pooling(v, (12, 11), 1, 0) ** 2, [x], order=2)


def test_max_pooling_of_nan_matches_the_cpu(opencl, rng):
    x = normal(rng, (2, 2, 6, 6))
    x[0, 0, 1, 1] = x[1, 1, 4, 2] = np.nan
    x[0, 1, 2, 3] = np.inf
    f = lambda v: F.max_pooling(v, 3, 2, 1)  # noqa: E731
    assert_devices_agree(opencl, f, [x], exact=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [2, (2, 3), 12], ids=str)
def test_max_pooling_grad_of_windows_tiling_the_image_matches_the_cpu_exactly(
    opencl, rng, dtype, kernel
):
    # Windows that tile the image (stride = kernel, no padding) take a kernel of their own;
    # ties, NaN and a negative-zero gradient must come out as on the CPU.
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.integers(0, 3, (2, 3, 2 * kh, 3 * kw)).astype(dtype)  # mostly ties
    x[0, 0, 0, 0] = np.nan
    weights = rng.standard_normal((2, 3, 2, 3)).astype(dtype)
    weights[1, 2, 1, 1] = -0.0
    f = lambda v: F.max_pooling(v, kernel, kernel, 0) * weights  # noqa: E731
    assert_devices_agree(opencl, f, [x], exact=True)
    assert_devices_agree(opencl, f, [x], transposed=True, exact=True)


def test_max_pooling_grad_takes_the_tiles_kernel_only_where_windows_tile(opencl, rng, monkeypatch):
    from pygrad.backends.opencl import fused_vision

    names = []
    run = fused_vision._run
    monkeypatch.setattr(
        fused_vision, "_run", lambda name, *args: names.append(name) or run(name, *args)
    )
    for shape, stride, pad in [((1, 2, 8, 8), 2, 0), ((1, 2, 9, 8), 2, 0), ((1, 2, 8, 8), 1, 0)]:
        x = Variable(to_device(normal(rng, shape), opencl))
        F.max_pooling(x, 2, stride, pad).sum().backward()
    grads = [name for name in names if name.startswith("max_pooling_grad")]
    assert grads == [
        "max_pooling_grad_tiles_char",
        "max_pooling_grad_char",
        "max_pooling_grad_char",
    ]
