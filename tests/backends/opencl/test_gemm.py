"""The packed matrix multiply of the OpenCL backend (pygrad/backends/opencl/gemm.py) against
NumPy: every layout (transposed, strided, sliced, broadcast batches), edge sizes that cut the
register blocks, both packing choices, split k, float32, float64, mixed and integer dtypes."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def xp(opencl):
    from pygrad.backends import opencl as backend

    return backend


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def normal(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def check(actual, expected, dtype=np.float32):
    host = actual.get()
    expected = np.asarray(expected)
    assert host.shape == expected.shape
    assert host.dtype == expected.dtype
    if np.dtype(dtype).kind == "f":
        tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
        scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
        np.testing.assert_allclose(host, expected, rtol=tol, atol=tol * scale)
    else:
        np.testing.assert_array_equal(host, expected)


def device_copy(xp, host):
    """``host`` on the device with the same strides: transposed views stay transposed."""
    if host.flags.c_contiguous:
        return xp.asarray(host)
    if host.ndim == 2 and host.T.flags.c_contiguous:
        return xp.asarray(np.ascontiguousarray(host.T)).T
    return xp.asarray(host)


SIZES = [
    (1, 1, 1),
    (1, 7, 1),
    (1, 40, 33),
    (13, 40, 1),
    (12, 16, 16),
    (17, 33, 65),
    (25, 300, 47),
    (36, 17, 31),
    (130, 70, 100),
]


@pytest.mark.parametrize("layout", ["NN", "TN", "NT", "TT"])
@pytest.mark.parametrize("m,k,n", SIZES, ids=str)
def test_layouts_and_edge_sizes(xp, rng, layout, m, k, n):
    a = normal(rng, (k, m)).T if layout[0] == "T" else normal(rng, (m, k))
    b = normal(rng, (n, k)).T if layout[1] == "T" else normal(rng, (k, n))
    check(device_copy(xp, a) @ device_copy(xp, b), a @ b)


@pytest.mark.parametrize("pack_a", [True, False])
@pytest.mark.parametrize("pack_b", [True, False])
@pytest.mark.parametrize("layout", ["NN", "TN", "NT"])
def test_every_packing_choice(xp, rng, pack_a, pack_b, layout):
    from pygrad.backends.opencl import gemm

    m, k, n = 29, 300, 37  # two k blocks of 256, edge panels on both sides
    a_host = normal(rng, (k, m)).T if layout[0] == "T" else normal(rng, (m, k))
    b_host = normal(rng, (n, k)).T if layout[1] == "T" else normal(rng, (k, n))
    a, b = device_copy(xp, a_host), device_copy(xp, b_host)
    out = xp.empty((m, n), np.float32)
    gemm.run_gemm(xp.get_device(), a, b, out, (), (), (), pack_a=pack_a, pack_b=pack_b)
    check(out, a_host @ b_host)


def test_strided_and_sliced_operands(xp, rng):
    a_full, b_full = normal(rng, (40, 90)), normal(rng, (70, 60))
    a, b = xp.asarray(a_full), xp.asarray(b_full)
    check(a[3:30:2, 5:75] @ b[::-1][:70, 1:50:3], a_full[3:30:2, 5:75] @ b_full[::-1][:70, 1:50:3])
    check(a[:, 10:80].T[::2] @ a[::-1, 1:20], a_full[:, 10:80].T[::2] @ a_full[::-1, 1:20])


@pytest.mark.parametrize(
    "shapes",
    [
        ((3, 17, 33), (3, 33, 20)),
        ((3, 17, 33), (33, 20)),
        ((17, 33), (4, 33, 20)),
        ((2, 1, 13, 40), (3, 40, 18)),
        ((2, 3, 1, 5, 13, 21), (3, 4, 1, 21, 19)),
        ((2, 1, 3, 1, 2, 13, 21), (2, 1, 3, 1, 21, 19)),  # five batch axes: generic kernel
    ],
    ids=str,
)
def test_broadcast_batches(xp, rng, shapes):
    a, b = normal(rng, shapes[0]), normal(rng, shapes[1])
    check(xp.asarray(a) @ xp.asarray(b), a @ b)


def test_batches_of_transposed_operands(xp, rng):
    a, b = normal(rng, (4, 30, 20)), normal(rng, (4, 25, 30))
    a_dev, b_dev = xp.asarray(a), xp.asarray(b)
    expected = np.swapaxes(a, 1, 2) @ np.swapaxes(b, 1, 2)
    check(a_dev.transpose(0, 2, 1) @ b_dev.transpose(0, 2, 1), expected)


@pytest.mark.parametrize("m,k,n", [(9, 5000, 16), (40, 2100, 3), (1, 3000, 1)], ids=str)
def test_long_k_is_split_and_summed(xp, rng, m, k, n):
    a, b = normal(rng, (k, m)).T, normal(rng, (k, n))
    check(device_copy(xp, a) @ device_copy(xp, b), a @ b)


def test_conv_shaped_products(xp, rng):
    cols, w, gy = normal(rng, (3000, 9)), normal(rng, (9, 16)), normal(rng, (3000, 16))
    cols_dev, w_dev, gy_dev = xp.asarray(cols), xp.asarray(w), xp.asarray(gy)
    check(cols_dev @ w_dev, cols @ w)
    check(cols_dev.T @ gy_dev, cols.T @ gy)
    check(gy_dev @ w_dev.T, gy @ w.T)


@pytest.mark.parametrize("layout", ["NN", "TN", "NT"])
def test_float64(xp, rng, layout):
    if not xp.get_device().supports_float64:
        pytest.skip("device has no float64")
    m, k, n = 27, 300, 21
    a = normal(rng, (k, m), np.float64).T if layout[0] == "T" else normal(rng, (m, k), np.float64)
    b = normal(rng, (n, k), np.float64).T if layout[1] == "T" else normal(rng, (k, n), np.float64)
    check(device_copy(xp, a) @ device_copy(xp, b), a @ b, np.float64)


def test_mixed_float_dtypes(xp, rng):
    if not xp.get_device().supports_float64:
        pytest.skip("device has no float64")
    a, b = normal(rng, (19, 40)), normal(rng, (40, 23), np.float64)
    check(xp.asarray(a) @ xp.asarray(b), a @ b, np.float64)
    check(xp.asarray(b.T) @ xp.asarray(a.T), b.T @ a.T, np.float64)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
def test_integer_dtypes(xp, rng, dtype):
    a = rng.integers(0, 5, (17, 33)).astype(dtype)
    b = rng.integers(0, 5, (2, 33, 20)).astype(dtype)
    check(xp.asarray(a) @ xp.asarray(b), a @ b, dtype)


def test_boolean_product(xp, rng):
    a, b = rng.random((7, 9)) < 0.3, rng.random((9, 5)) < 0.3
    check(xp.asarray(a) @ xp.asarray(b), a @ b, np.bool_)


@pytest.mark.parametrize(
    "shapes", [((0, 5), (5, 3)), ((4, 0), (0, 3)), ((4, 5), (5, 0)), ((0, 4, 5), (5, 3))], ids=str
)
def test_zero_sizes(xp, rng, shapes):
    a, b = normal(rng, shapes[0]), normal(rng, shapes[1])
    check(xp.asarray(a) @ xp.asarray(b), a @ b)


def test_vector_operands(xp, rng):
    a, b, v = normal(rng, (20, 30)), normal(rng, (30, 18)), normal(rng, (30,))
    check(xp.asarray(v) @ xp.asarray(b), v @ b)
    check(xp.asarray(a) @ xp.asarray(v), a @ v)
    check(xp.asarray(v) @ xp.asarray(v), v @ v)


def test_result_is_overwritten_not_accumulated(xp, rng):
    a, b = normal(rng, (30, 600)), normal(rng, (600, 40))
    a_dev, b_dev = xp.asarray(a), xp.asarray(b)
    for _ in range(3):  # reused pool buffers hold the previous result
        check(a_dev @ b_dev, a @ b)


@pytest.mark.parametrize("pack_b", [True, False])
def test_views_of_b_read_in_place_or_packed(xp, rng, pack_b):
    """Reversed rows, broadcast rows and a last column panel that ends at the buffer's end
    (read full width only where that stays inside the buffer)."""
    from pygrad.backends.opencl import gemm

    device = xp.get_device()
    a_host = normal(rng, (20, 45))
    b_full = normal(rng, (45, 37))
    row = normal(rng, (37,))
    cases = [
        (b_full, b_full),
        (xp.asarray(b_full)[::-1], b_full[::-1]),
        (xp.broadcast_to(xp.asarray(row), (45, 37)), np.broadcast_to(row, (45, 37))),
    ]
    for i, (b, b_host) in enumerate(cases):
        b = xp.asarray(b) if i == 0 else b
        out = xp.empty((20, 37), np.float32)
        gemm.run_gemm(device, xp.asarray(a_host), b, out, (), (), (), pack_a=False, pack_b=pack_b)
        check(out, a_host @ b_host)


@pytest.mark.parametrize("pack_a", [True, False])
@pytest.mark.parametrize("pack_b", [True, False])
@pytest.mark.parametrize("m,k,n", [(29, 300, 37), (12, 16, 32), (9, 5000, 16), (1, 1, 1)], ids=str)
def test_a_bias_joins_the_store_of_every_packing_choice_and_of_split_k(
    xp, rng, pack_a, pack_b, m, k, n
):
    from pygrad.backends.opencl import gemm

    a_host, b_host, bias_host = normal(rng, (m, k)), normal(rng, (k, n)), normal(rng, (n,))
    out = xp.empty((m, n), np.float32)
    a, b, bias = xp.asarray(a_host), xp.asarray(b_host), xp.asarray(bias_host)
    gemm.run_gemm(xp.get_device(), a, b, out, (), (), (), pack_a, pack_b, bias=bias)
    check(out, a_host @ b_host + bias_host)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_bias_is_one_launch_and_declines_what_it_cannot_take(xp, rng, dtype, launches):
    from pygrad.backends.opencl.linalg import matmul_bias

    x, W, b = normal(rng, (33, 70), dtype), normal(rng, (70, 45), dtype), normal(rng, (45,), dtype)
    xd, Wd, bd = xp.asarray(x), xp.asarray(W), xp.asarray(b)
    launches[0] = 0
    y = matmul_bias(xd, Wd, bd)
    assert launches[0] == 1
    check(y, x @ W + b, dtype)
    assert matmul_bias(xd, Wd, xp.asarray(b[:-1])) is None  # wrong length
    assert matmul_bias(xd, Wd, xp.asarray(np.stack([b, b], axis=1))[:, 0]) is None  # strided
    assert matmul_bias(xd, Wd, xp.asarray(b.astype(np.float16).astype(np.int32))) is None
