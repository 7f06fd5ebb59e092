"""Tests of pygrad.functions.vision: im2col, col2im, conv2d, deconv2d and pooling."""

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from pygrad.functions import vision
from pygrad.functions.vision import col2im_array, im2col_array
from tests._helpers import device_array, gradient_check_on, grads_with_graph, host


def pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def distinct(rng, shape):
    """Values at least 0.1 apart, so that no finite-difference step changes which one is a max."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + rng.uniform(-0.02, 0.02, shape)


# --- naive references: direct loops over output positions, on tiny inputs ---------------------
def pad_image(x, pad, value=0.0):
    ph, pw = pair(pad)
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def out_size(size, k, s, p):
    return (size + 2 * p - k) // s + 1


def windows_reference(x, kernel, stride, pad, value=0.0):
    """``(N, C, kh, kw, OH, OW)`` windows, gathered one output position at a time."""
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(pad)
    n, c, h, w = x.shape
    oh, ow = out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)
    padded = pad_image(x, pad, value)
    col = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            col[:, :, :, :, i, j] = padded[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
    return col


def conv2d_reference(x, W, b, stride, pad):
    col = windows_reference(x, W.shape[2:], stride, pad)
    y = np.einsum("nckluv,ockl->nouv", col, W)
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def deconv2d_reference(x, W, b, stride, pad, outsize):
    (sh, sw), (ph, pw) = pair(stride), pair(pad)
    n, _, h, w = x.shape
    _, oc, kh, kw = W.shape
    oh, ow = outsize
    padded = np.zeros(
        (n, oc, max(oh + 2 * ph, (h - 1) * sh + kh), max(ow + 2 * pw, (w - 1) * sw + kw))
    )
    for i in range(h):
        for j in range(w):
            patch = np.einsum("nc,cokl->nokl", x[:, :, i, j], W)
            padded[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw] += patch
    y = padded[:, :, ph : ph + oh, pw : pw + ow]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def max_pooling_reference(x, kernel, stride, pad):
    return windows_reference(x, kernel, stride, pad, -np.inf).max(axis=(2, 3))


def average_pooling_reference(x, kernel, stride, pad):
    return windows_reference(x, kernel, stride, pad).mean(axis=(2, 3))


# --- cases --------------------------------------------------------------------------------
# (x shape, W shape (OC, C, kh, kw), stride, pad)
CONV_CASES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 1),
    ((1, 2, 7, 6), (3, 2, 3, 2), 2, 1),
    ((2, 2, 7, 8), (3, 2, 2, 3), (2, 3), (1, 0)),
    ((1, 1, 5, 5), (2, 1, 1, 1), 2, 0),
    ((2, 3, 4, 4), (2, 3, 4, 4), 1, 0),
    ((1, 2, 6, 6), (2, 2, 2, 2), 3, (0, 2)),
    ((2, 2, 5, 6), (3, 2, 3, 2), 1, (2, 1)),
    ((1, 2, 4, 7), (2, 2, 1, 3), 1, (1, 0)),
]
SMALL_CONV_CASES = [
    ((1, 2, 5, 4), (3, 2, 3, 3), 1, 1),
    ((2, 1, 5, 5), (2, 1, 2, 3), (2, 1), (1, 0)),
    ((1, 2, 4, 5), (2, 2, 3, 2), 2, (0, 1)),
]
# (x shape, kernel, stride, pad)
POOL_CASES = [
    ((2, 3, 4, 4), 2, None, 0),
    ((1, 2, 5, 5), 3, 2, 1),
    ((2, 1, 6, 5), (3, 2), (2, 1), (1, 0)),
    ((1, 2, 7, 6), 2, 1, 1),
    ((1, 1, 5, 7), (2, 3), 3, (1, 1)),
    ((1, 2, 6, 6), 2, 2, 1),
    ((2, 2, 5, 7), 2, None, 0),
]
SMALL_POOL_CASES = [
    ((1, 2, 4, 4), 2, None, 0),
    ((1, 2, 5, 5), 3, 2, 1),
    ((2, 1, 5, 4), (3, 2), (1, 2), (1, 0)),
]


# =============================================================================================
# im2col / col2im
# =============================================================================================
@pytest.mark.parametrize("x_shape, kernel, stride, pad", POOL_CASES + [((1, 2, 5, 6), 3, 1, 2)])
def test_im2col_matches_windows_gathered_by_loops(
    float64_device, rng, x_shape, kernel, stride, pad
):
    stride = 1 if stride is None else stride
    x = rng.standard_normal(x_shape)
    v = Variable(x, device=float64_device)
    expected = windows_reference(x, kernel, stride, pad)
    col = F.im2col(v, kernel, stride, pad, to_matrix=False)
    np.testing.assert_array_equal(host(col), expected)
    n, c, kh, kw, oh, ow = expected.shape
    matrix = F.im2col(v, kernel, stride, pad)
    np.testing.assert_array_equal(
        host(matrix), expected.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, c * kh * kw)
    )


@pytest.mark.parametrize("to_matrix", [True, False])
@pytest.mark.parametrize("x_shape, kernel, stride, pad", POOL_CASES)
def test_col2im_is_the_adjoint_of_im2col(
    float64_device, rng, x_shape, kernel, stride, pad, to_matrix
):
    stride = 1 if stride is None else stride
    x = rng.standard_normal(x_shape)
    col = F.im2col(Variable(x, device=float64_device), kernel, stride, pad, to_matrix)
    c = rng.standard_normal(col.shape)
    back = F.col2im(Variable(c, device=float64_device), x_shape, kernel, stride, pad, to_matrix)
    assert back.shape == x_shape
    np.testing.assert_allclose(np.sum(host(col) * c), np.sum(x * host(back)))


def test_col2im_counts_how_many_windows_cover_each_pixel(device):
    ones = Variable(np.ones((1, 1, 3, 3, 2, 2), np.float32), device=device)
    counts = F.col2im(ones, (1, 1, 4, 4), 3, 1, 0, to_matrix=False)
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    np.testing.assert_array_equal(host(counts)[0, 0], expected)


def test_array_helpers_round_trip_without_padding_or_overlap(device, rng):
    x = rng.standard_normal((2, 3, 6, 4)).astype(np.float32)
    col = im2col_array(device_array(x, device), 2, 2, 2, 2, 0, 0, True)
    assert col.dtype == np.float32
    np.testing.assert_array_equal(host(col2im_array(col, x.shape, 2, 2, 2, 2, 0, 0, True)), x)


@pytest.mark.parametrize("to_matrix", [True, False])
def test_im2col_and_col2im_grads_match_finite_differences(device, rng, to_matrix):
    x = rng.standard_normal((1, 2, 4, 5))
    assert gradient_check_on(device, lambda v: F.im2col(v, (3, 2), (1, 2), 1, to_matrix), x)
    col = F.im2col(x, (3, 2), (1, 2), 1, to_matrix)
    c = rng.standard_normal(col.shape)

    def col2im(v):
        return F.col2im(v, x.shape, (3, 2), (1, 2), 1, to_matrix)

    assert gradient_check_on(device, col2im, c)


def test_im2col_second_derivative_matches_finite_differences(device, rng):
    x = rng.standard_normal((1, 1, 4, 4))
    f = grads_with_graph(lambda v: F.im2col(v, 2, 1, 1) ** 2)
    assert gradient_check_on(device, f, x)


def test_im2col_and_col2im_keep_float32(device, rng):
    x = Variable(rng.standard_normal((2, 2, 5, 5)).astype(np.float32), device=device)
    col = F.im2col(x, 3, 2, 1)
    back = F.col2im(col, x.shape, 3, 2, 1)
    back.sum().backward()
    assert col.dtype == back.dtype == x.grad.dtype == np.float32
    assert col.device == back.device == x.grad.device == x.device


# =============================================================================================
# conv2d
# =============================================================================================
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES)
def test_conv2d_matches_naive_reference(
    float64_device, rng, x_shape, W_shape, stride, pad, with_bias
):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    b = rng.standard_normal(W_shape[0]) if with_bias else None
    on_device = [None if a is None else Variable(a, device=float64_device) for a in (x, W, b)]
    y = F.conv2d(*on_device, stride, pad)
    np.testing.assert_allclose(host(y), conv2d_reference(x, W, b, stride, pad), rtol=1e-10)


def test_conv2d_accepts_ints_and_pairs_alike(float64_device, rng):
    x, W = rng.standard_normal((1, 2, 7, 7)), rng.standard_normal((3, 2, 3, 3))
    x, W = Variable(x, device=float64_device), Variable(W, device=float64_device)
    np.testing.assert_array_equal(
        host(F.conv2d(x, W, stride=2, pad=1)), host(F.conv2d(x, W, stride=(2, 2), pad=[1, 1]))
    )


def test_conv2d_of_a_non_contiguous_input(float64_device, rng):
    base = rng.standard_normal((5, 2, 6, 1))
    x = device_array(base, float64_device).transpose(3, 1, 0, 2)[:, :, ::-1]
    W = rng.standard_normal((2, 2, 3, 2))
    y = F.conv2d(x, Variable(W, device=float64_device), None, 1, 1)
    expected = conv2d_reference(np.ascontiguousarray(host(x)), W, None, 1, 1)
    np.testing.assert_allclose(host(y), expected)


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", SMALL_CONV_CASES)
def test_conv2d_grads_match_finite_differences(device, rng, x_shape, W_shape, stride, pad):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    b = rng.standard_normal(W_shape[0])
    assert gradient_check_on(device, lambda x, W, b: F.conv2d(x, W, b, stride, pad), x, W, b)
    assert gradient_check_on(device, lambda x, W: F.conv2d(x, W, None, stride, pad), x, W)


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", SMALL_CONV_CASES[:2])
def test_conv2d_second_derivative_matches_finite_differences(
    device, rng, x_shape, W_shape, stride, pad
):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    b = rng.standard_normal(W_shape[0])
    f = grads_with_graph(lambda x, W, b: F.conv2d(x, W, b, stride, pad) ** 2)
    assert gradient_check_on(device, f, x, W, b)


def test_conv2d_third_derivative_matches_finite_differences(device, rng):
    x, W = rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((1, 1, 2, 2))
    second = grads_with_graph(lambda x, W: F.conv2d(x, W, None, 1, 1) ** 3)
    third = grads_with_graph(lambda x, W: second(x, W)[0], seed=2)
    assert gradient_check_on(device, third, x, W)


@pytest.mark.parametrize("wanted", [1, 2])
def test_conv2d_second_derivative_of_one_parameter_grad(device, rng, wanted):
    # Only W.grad (or only b.grad) feeds the next derivative, so the other one gets none.
    x, W = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 3, 3))
    b = rng.standard_normal(2)
    grads = grads_with_graph(lambda x, W, b: F.conv2d(x, W, b, 1, 1) ** 2)
    assert gradient_check_on(device, lambda x, W, b: grads(x, W, b)[wanted] ** 2, x, W, b)


def test_conv2d_computes_no_gradient_for_a_constant_input(device, rng, monkeypatch):
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    W = Variable(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), device=device)
    b = Variable(rng.standard_normal(3).astype(np.float32), device=device)
    weights = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    (F.conv2d(Variable(x, device=device), W, b, 1, 1) * weights).sum().backward()
    expected = host(W.grad), host(b.grad)
    W.grad = b.grad = None

    def fail(*args):
        raise AssertionError("the input gradient of a constant was computed")

    monkeypatch.setattr(vision.Deconv2d, "forward", fail)
    (F.conv2d(device_array(x, device), W, b, 1, 1) * weights).sum().backward()
    np.testing.assert_allclose(host(W.grad), expected[0], rtol=1e-5)
    np.testing.assert_allclose(host(b.grad), expected[1], rtol=1e-5)


def test_conv2d_returns_a_contiguous_result(float64_device, rng):
    x, W = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    x, W = device_array(x, float64_device), device_array(W, float64_device)
    for stride, pad in [(1, 1), (2, 0)]:
        assert F.conv2d(x, W, None, stride, pad).data.flags.c_contiguous
        assert F.deconv2d(x, W.transpose(1, 0, 2, 3), None, stride, pad).data.flags.c_contiguous


@pytest.mark.parametrize("op", ["conv2d", "deconv2d"])
def test_convolution_grads_take_their_variables_dtypes(float64_device, rng, op):
    x = Variable(rng.standard_normal((1, 2, 5, 5)).astype(np.float32), device=float64_device)
    W = Variable(rng.standard_normal((2, 2, 3, 3)), device=float64_device)
    b = Variable(rng.standard_normal(2), device=float64_device)
    F.sum(getattr(F, op)(x, W, b, 1, 1)).backward()
    assert x.grad.dtype == np.float32
    assert W.grad.dtype == b.grad.dtype == np.float64


def test_conv2d_keeps_float32(device, rng):
    x = Variable(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), device=device)
    W = Variable(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), device=device)
    b = Variable(np.zeros(4, dtype=np.float32), device=device)
    y = F.conv2d(x, W, b, 2, 1)
    y.backward(create_graph=True)
    assert y.dtype == x.grad.dtype == W.grad.dtype == b.grad.dtype == np.float32
    x.grad.sum().backward()
    assert W.grad.dtype == np.float32


# =============================================================================================
# deconv2d
# =============================================================================================
# (x shape, W shape (C, OC, kh, kw), stride, pad, outsize)
DECONV_CASES = [
    ((2, 3, 3, 3), (3, 2, 3, 3), 1, 0, None),
    ((1, 2, 3, 4), (2, 3, 3, 2), 2, 1, None),
    ((2, 2, 3, 2), (2, 1, 2, 3), (2, 3), (1, 0), None),
    ((1, 2, 3, 3), (2, 2, 3, 3), 2, 1, (6, 5)),
    ((1, 1, 2, 2), (1, 2, 2, 2), 3, 0, (7, 6)),
]


@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("x_shape, W_shape, stride, pad, outsize", DECONV_CASES)
def test_deconv2d_matches_naive_reference(
    float64_device, rng, x_shape, W_shape, stride, pad, outsize, with_bias
):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    b = rng.standard_normal(W_shape[1]) if with_bias else None
    on_device = [None if a is None else Variable(a, device=float64_device) for a in (x, W, b)]
    y = F.deconv2d(*on_device, stride, pad, outsize)
    if outsize is None:
        (sh, sw), (ph, pw) = pair(stride), pair(pad)
        outsize = (
            (x_shape[2] - 1) * sh + W_shape[2] - 2 * ph,
            (x_shape[3] - 1) * sw + W_shape[3] - 2 * pw,
        )
    assert y.shape == (x_shape[0], W_shape[1], *outsize)
    np.testing.assert_allclose(
        host(y), deconv2d_reference(x, W, b, stride, pad, outsize), rtol=1e-10
    )


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES)
def test_deconv2d_is_the_adjoint_of_conv2d(float64_device, rng, x_shape, W_shape, stride, pad):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    W_on_device = Variable(W, device=float64_device)
    y = F.conv2d(Variable(x, device=float64_device), W_on_device, None, stride, pad)
    g = rng.standard_normal(y.shape)
    g_on_device = Variable(g, device=float64_device)
    back = F.deconv2d(g_on_device, W_on_device, None, stride, pad, outsize=x_shape[2:])
    np.testing.assert_allclose(np.sum(host(y) * g), np.sum(x * host(back)))


@pytest.mark.parametrize("x_shape, W_shape, stride, pad, outsize", DECONV_CASES[1:4])
def test_deconv2d_grads_match_finite_differences(
    device, rng, x_shape, W_shape, stride, pad, outsize
):
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    b = rng.standard_normal(W_shape[1])

    def deconv2d(x, W, b):
        return F.deconv2d(x, W, b, stride, pad, outsize)

    assert gradient_check_on(device, deconv2d, x, W, b)


def test_deconv2d_second_derivative_matches_finite_differences(device, rng):
    x, W = rng.standard_normal((1, 2, 3, 2)), rng.standard_normal((2, 1, 3, 2))
    b = rng.standard_normal(1)
    f = grads_with_graph(lambda x, W, b: F.deconv2d(x, W, b, (2, 1), (1, 0)) ** 2)
    assert gradient_check_on(device, f, x, W, b)


def test_deconv2d_computes_no_gradient_for_a_constant_input(float64_device, rng, monkeypatch):
    x = device_array(rng.standard_normal((2, 3, 4, 4)), float64_device)
    W = Variable(rng.standard_normal((3, 2, 3, 3)), device=float64_device)

    def fail(*args):
        raise AssertionError("the input gradient of a constant was computed")

    monkeypatch.setattr(vision.Conv2d, "forward", fail)
    F.deconv2d(x, W, None, 1, 1).sum().backward()
    assert W.grad.shape == W.shape and W.grad.device == W.device


def test_deconv2d_keeps_float32(device, rng):
    x = Variable(rng.standard_normal((2, 3, 4, 4)).astype(np.float32), device=device)
    W = Variable(rng.standard_normal((3, 2, 3, 3)).astype(np.float32), device=device)
    b = Variable(np.zeros(2, dtype=np.float32), device=device)
    y = F.deconv2d(x, W, b, 2, 1)
    y.backward()
    assert y.dtype == x.grad.dtype == W.grad.dtype == b.grad.dtype == np.float32


# =============================================================================================
# pooling
# =============================================================================================
@pytest.mark.parametrize("x_shape, kernel, stride, pad", POOL_CASES)
def test_max_pooling_matches_naive_reference(float64_device, rng, x_shape, kernel, stride, pad):
    x = rng.standard_normal(x_shape)
    y = F.max_pooling(Variable(x, device=float64_device), kernel, stride, pad)
    expected = max_pooling_reference(x, kernel, kernel if stride is None else stride, pad)
    np.testing.assert_array_equal(host(y), expected)


@pytest.mark.parametrize("x_shape, kernel, stride, pad", POOL_CASES)
def test_average_pooling_matches_naive_reference(float64_device, rng, x_shape, kernel, stride, pad):
    x = rng.standard_normal(x_shape)
    y = F.average_pooling(Variable(x, device=float64_device), kernel, stride, pad)
    expected = average_pooling_reference(x, kernel, kernel if stride is None else stride, pad)
    np.testing.assert_allclose(host(y), expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_max_pooling_padding_never_wins(device, rng, dtype):
    x = -(rng.permutation(2 * 4 * 4) + 1).reshape(1, 2, 4, 4).astype(dtype)
    y = F.max_pooling(Variable(x, device=device), 3, 2, 1)
    assert y.dtype == dtype
    np.testing.assert_array_equal(host(y), max_pooling_reference(x.astype(np.float64), 3, 2, 1))
    assert (host(y) < 0).all()


def test_max_pooling_sends_the_gradient_to_the_first_maximum_only(float64_device):
    x = Variable(np.array([[[[1.0, 3.0], [3.0, 0.0]]]]), device=float64_device)
    F.max_pooling(x, 2).backward()
    np.testing.assert_array_equal(host(x.grad), [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_max_pooling_sends_the_gradient_of_a_tie_to_one_position_like_torch(torch, device):
    # A window of equal values (zeros after a ReLU, say) gives its whole gradient to the first.
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    x[0, 0, 2:, 2:] = [[1.0, 2.0], [2.0, 1.0]]
    v = Variable(x, device=device)
    F.max_pooling(v, 2).backward()
    t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(host(v.grad), t.grad.numpy())
    assert host(v.grad).sum() == 4.0


def test_max_pooling_grad_sums_where_windows_overlap(float64_device):
    data = np.array([[[[0.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]])
    x = Variable(data, device=float64_device)
    F.max_pooling(x, 2, 1).backward()
    assert host(x.grad)[0, 0, 1, 1] == 4.0
    assert host(x.grad).sum() == 4.0


@pytest.mark.parametrize("x_shape, kernel, stride, pad", SMALL_POOL_CASES)
def test_pooling_grads_match_finite_differences(device, rng, x_shape, kernel, stride, pad):
    x = distinct(rng, x_shape)
    assert gradient_check_on(device, lambda v: F.max_pooling(v, kernel, stride, pad), x)
    assert gradient_check_on(device, lambda v: F.average_pooling(v, kernel, stride, pad), x)


@pytest.mark.parametrize("x_shape, kernel, stride, pad", SMALL_POOL_CASES)
def test_pooling_second_derivative_matches_finite_differences(
    device, rng, x_shape, kernel, stride, pad
):
    x = distinct(rng, x_shape)
    max_grads = grads_with_graph(lambda v: F.max_pooling(v, kernel, stride, pad) ** 2)
    assert gradient_check_on(device, max_grads, x)
    average_grads = grads_with_graph(lambda v: F.average_pooling(v, kernel, stride, pad) ** 2)
    assert gradient_check_on(device, average_grads, x)


def test_max_pooling_third_derivative_matches_finite_differences(device, rng):
    x = distinct(rng, (1, 1, 4, 4))
    second = grads_with_graph(lambda v: F.max_pooling(v, 2, 1, 0) ** 3)
    third = grads_with_graph(lambda v: second(v)[0] ** 2, seed=2)
    assert gradient_check_on(device, third, x)


@pytest.mark.parametrize("pooling", [F.max_pooling, F.average_pooling])
def test_pooling_keeps_float32(device, rng, pooling):
    x = Variable(rng.standard_normal((2, 3, 6, 6)).astype(np.float32), device=device)
    y = pooling(x, 3, 2, 1)
    y.backward(create_graph=True)
    assert y.dtype == x.grad.dtype == np.float32 and y.device == x.grad.device == x.device


# =============================================================================================
# PyTorch as an independent oracle
# =============================================================================================
def torch_and_pygrad(torch, device, torch_f, pygrad_f, datas):
    """Outputs and input grads of ``sum(w * f(...))`` in both frameworks, in float32, pygrad's
    on ``device``."""
    datas = [d.astype(np.float32) for d in datas]
    tensors = [torch.tensor(d, requires_grad=True) for d in datas]
    t = torch_f(*tensors)
    weights = np.random.default_rng(3).standard_normal(t.shape).astype(np.float32)
    (t * torch.tensor(weights)).sum().backward()
    xs = [Variable(d, device=device) for d in datas]
    y = pygrad_f(*xs)
    (y * Variable(weights, device=device)).sum().backward()
    assert y.dtype == np.float32
    np.testing.assert_allclose(host(y), t.detach().numpy(), rtol=1e-4, atol=1e-4)
    for x, tensor in zip(xs, tensors):
        assert x.grad.dtype == np.float32 and x.grad.device == x.device
        np.testing.assert_allclose(host(x.grad), tensor.grad.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("x_shape, W_shape, stride, pad", CONV_CASES)
def test_conv2d_matches_torch(torch, device, rng, x_shape, W_shape, stride, pad):
    datas = [rng.standard_normal(x_shape), rng.standard_normal(W_shape)]
    datas.append(rng.standard_normal(W_shape[0]))
    torch_and_pygrad(
        torch,
        device,
        lambda x, W, b: torch.nn.functional.conv2d(x, W, b, pair(stride), pair(pad)),
        lambda x, W, b: F.conv2d(x, W, b, stride, pad),
        datas,
    )


@pytest.mark.parametrize("x_shape, W_shape, stride, pad, outsize", DECONV_CASES)
def test_deconv2d_matches_torch(torch, device, rng, x_shape, W_shape, stride, pad, outsize):
    (sh, sw), (ph, pw), (kh, kw) = pair(stride), pair(pad), W_shape[2:]
    default = ((x_shape[2] - 1) * sh + kh - 2 * ph, (x_shape[3] - 1) * sw + kw - 2 * pw)
    extra = (0, 0) if outsize is None else (outsize[0] - default[0], outsize[1] - default[1])
    datas = [rng.standard_normal(x_shape), rng.standard_normal(W_shape)]
    datas.append(rng.standard_normal(W_shape[1]))
    torch_and_pygrad(
        torch,
        device,
        lambda x, W, b: torch.nn.functional.conv_transpose2d(
            x, W, b, (sh, sw), (ph, pw), output_padding=extra
        ),
        lambda x, W, b: F.deconv2d(x, W, b, stride, pad, outsize),
        datas,
    )


@pytest.mark.parametrize("x_shape, kernel, stride, pad", POOL_CASES)
def test_pooling_matches_torch(torch, device, rng, x_shape, kernel, stride, pad):
    x = [rng.standard_normal(x_shape)]
    stride_ = kernel if stride is None else stride
    functional = torch.nn.functional
    torch_and_pygrad(
        torch,
        device,
        lambda v: functional.max_pool2d(v, pair(kernel), pair(stride_), pair(pad)),
        lambda v: F.max_pooling(v, kernel, stride, pad),
        x,
    )
    torch_and_pygrad(
        torch,
        device,
        lambda v: functional.avg_pool2d(
            v, pair(kernel), pair(stride_), pair(pad), count_include_pad=True
        ),
        lambda v: F.average_pooling(v, kernel, stride, pad),
        x,
    )


def test_conv2d_second_derivative_matches_torch(torch, float64_device, rng):
    x, W = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, Wt, None, 2, 1)
    (gxt,) = torch.autograd.grad((yt**2).sum(), xt, create_graph=True)
    (gxt**2).sum().backward()

    xv, Wv = Variable(x, device=float64_device), Variable(W, device=float64_device)
    y = F.conv2d(xv, Wv, None, 2, 1)
    (y**2).sum().backward(create_graph=True)
    gx = xv.grad
    xv.grad = Wv.grad = None
    (gx**2).sum().backward()
    np.testing.assert_allclose(host(gx), gxt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(host(xv.grad), xt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(host(Wv.grad), Wt.grad.numpy(), rtol=1e-10)


# =============================================================================================
# errors
# =============================================================================================
def test_conv2d_rejects_an_input_that_is_not_4d():
    with pytest.raises(
        ValueError, match=r"conv2d: expected x of shape \(N, C, H, W\).*\(3, 5, 5\)"
    ):
        F.conv2d(np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3)))


def test_conv2d_rejects_a_channel_mismatch_naming_both_shapes():
    with pytest.raises(
        ValueError, match=r"conv2d: x of shape \(1, 3, 5, 5\) has 3 channels.*\(2, 4, 3, 3\)"
    ):
        F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 4, 3, 3)))


def test_conv2d_rejects_a_kernel_larger_than_the_padded_input():
    with pytest.raises(
        ValueError, match=r"conv2d: kernel \(5, 3\) is larger than the padded input \(4, 6\)"
    ):
        F.conv2d(np.zeros((1, 1, 2, 4)), np.zeros((1, 1, 5, 3)), pad=1)


def test_conv2d_rejects_bad_weights_bias_and_sizes():
    x = np.zeros((1, 2, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: expected W of shape .* got \(2, 3, 3\)"):
        F.conv2d(x, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: expected b of shape \(4,\).*got \(3,\)"):
        F.conv2d(x, np.zeros((4, 2, 3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="conv2d: stride must be .* at least 1, got 0"):
        F.conv2d(x, np.zeros((4, 2, 3, 3)), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: pad must be .*got \(1, 1, 1\)"):
        F.conv2d(x, np.zeros((4, 2, 3, 3)), pad=(1, 1, 1))
    with pytest.raises(TypeError, match="conv2d: stride must be an int or a pair of ints, got 1.5"):
        F.conv2d(x, np.zeros((4, 2, 3, 3)), stride=1.5)


def test_deconv2d_rejects_bad_shapes_and_outsize():
    with pytest.raises(ValueError, match=r"deconv2d: expected x of shape \(N, C, H, W\)"):
        F.deconv2d(np.zeros((2, 3)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"deconv2d: x of shape \(1, 3, 4, 4\) has 3 channels"):
        F.deconv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"deconv2d: outsize \(12, 9\) does not fit"):
        F.deconv2d(np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3)), stride=2, pad=1, outsize=(12, 9))
    with pytest.raises(ValueError, match="deconv2d: the output size .* is not positive"):
        F.deconv2d(np.zeros((1, 2, 1, 1)), np.zeros((2, 3, 1, 1)), pad=1)
    with pytest.raises(ValueError, match=r"deconv2d: expected b of shape \(3,\)"):
        F.deconv2d(np.zeros((1, 2, 4, 4)), np.zeros((2, 3, 3, 3)), np.zeros(2))


@pytest.mark.parametrize("pooling", [F.max_pooling, F.average_pooling])
def test_pooling_rejects_bad_input(pooling):
    name = pooling.__name__
    with pytest.raises(
        ValueError, match=rf"{name}: expected x of shape \(N, C, H, W\), got shape \(4, 4\)"
    ):
        pooling(np.zeros((4, 4)), 2)
    with pytest.raises(
        ValueError, match=rf"{name}: kernel \(3, 3\) is larger than the padded input \(2, 2\)"
    ):
        pooling(np.zeros((1, 1, 2, 2)), 3)
    with pytest.raises(
        ValueError, match=rf"{name}: pad \(2, 2\) must be smaller than kernel_size \(2, 2\)"
    ):
        pooling(np.zeros((1, 1, 4, 4)), 2, pad=2)


def test_im2col_and_col2im_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"im2col: expected x of shape \(N, C, H, W\)"):
        F.im2col(np.zeros((2, 4, 4)), 2)
    with pytest.raises(ValueError, match=r"im2col: kernel \(5, 5\) is larger"):
        F.im2col(np.zeros((1, 1, 4, 4)), 5)
    with pytest.raises(ValueError, match=r"col2im: expected col of shape \(9, 4\).*got \(9, 5\)"):
        F.col2im(np.zeros((9, 5)), (1, 1, 4, 4), 2)
    with pytest.raises(ValueError, match=r"col2im: input_shape must be \(N, C, H, W\)"):
        F.col2im(np.zeros((9, 4)), (4, 4), 2)


# =============================================================================================
# im2col / col2im against PyTorch's unfold / fold
# =============================================================================================
UNFOLD_CASES = [
    ((2, 3, 5, 6), (3, 2), (1, 2), (1, 0)),
    ((1, 2, 6, 6), 2, 2, 0),
    ((2, 1, 4, 5), 3, 1, 2),
]


def _pair(v):
    return v if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("x_shape, kernel, stride, pad", UNFOLD_CASES)
def test_im2col_matches_torch_unfold_forward_and_grad(
    torch, float64_device, rng, x_shape, kernel, stride, pad
):
    data = rng.standard_normal(x_shape)
    n, c = x_shape[:2]
    x = Variable(data, device=float64_device)
    col = F.im2col(x, kernel, stride, pad)
    windows = F.im2col(device_array(data, float64_device), kernel, stride, pad, to_matrix=False)
    t = torch.tensor(data, requires_grad=True)
    unfolded = torch.nn.functional.unfold(
        t, _pair(kernel), stride=_pair(stride), padding=_pair(pad)
    )
    # unfold gives (N, C*kh*kw, L); im2col's matrix has a row per window: (N*L, C*kh*kw).
    expected = unfolded.transpose(1, 2).reshape(-1, unfolded.shape[1])
    np.testing.assert_array_equal(host(col), expected.detach().numpy())
    np.testing.assert_array_equal(
        host(windows).reshape(n, -1, unfolded.shape[2]), unfolded.detach().numpy()
    )
    weights = rng.standard_normal(col.shape)
    (col * Variable(weights, device=float64_device)).sum().backward()
    (expected * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(host(x.grad), t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("x_shape, kernel, stride, pad", UNFOLD_CASES)
def test_col2im_matches_torch_fold_forward_and_grad(
    torch, float64_device, rng, x_shape, kernel, stride, pad
):
    n = x_shape[0]
    rows, width = F.im2col(np.zeros(x_shape), kernel, stride, pad).shape
    data = rng.standard_normal((rows, width))
    col = Variable(data, device=float64_device)
    y = F.col2im(col, x_shape, kernel, stride, pad)
    t = torch.tensor(data, requires_grad=True)
    # fold takes (N, C*kh*kw, L), the transpose of col2im's per-window rows.
    ty = torch.nn.functional.fold(
        t.reshape(n, rows // n, width).transpose(1, 2),
        x_shape[2:],
        _pair(kernel),
        stride=_pair(stride),
        padding=_pair(pad),
    )
    np.testing.assert_allclose(host(y), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    weights = rng.standard_normal(x_shape)
    (y * Variable(weights, device=float64_device)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(host(col.grad), t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_conv2d_and_deconv2d_of_an_empty_batch_match_an_empty_numpy_result(device):
    x = Variable(np.zeros((0, 2, 5, 5), np.float32), device=device)
    W = Variable(np.ones((4, 2, 3, 3), np.float32), device=device)
    y = F.conv2d(x, W, stride=2, pad=1)
    assert y.shape == (0, 4, 3, 3)
    F.sum(F.conv2d(x, W) ** 2).backward(create_graph=True)
    assert x.grad.shape == (0, 2, 5, 5) and W.grad.shape == W.shape
    np.testing.assert_array_equal(host(W.grad), 0)
    F.sum(W.grad).backward()  # the second derivative goes through the empty batch as well
    deconv = F.deconv2d(Variable(np.zeros((0, 4, 3, 3), np.float32), device=device), W)
    assert deconv.shape == (0, 2, 5, 5)
