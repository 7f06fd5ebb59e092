"""Tests for pygrad/functions/reduction.py: sum, mean, max, min, logsumexp and var."""

import warnings

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from pygrad._config import using_config
from pygrad.utils import gradient_check


def first_derivative(f):
    """A function returning the gradient of ``sum(f(x))``, itself differentiable."""

    def gradient(x):
        # gradient_check reads x.grad after calling this again for finite differences.
        saved, x.grad = x.grad, None
        with using_config("enable_backprop", True):
            f(x).backward(create_graph=True)
        grad = x.grad if x.grad is not None else x * 0
        x.grad = saved
        return grad

    return gradient


def _logsumexp_reference(x, axis=None, keepdims=False):
    # Plain formula in float64; only used on inputs where exp() cannot overflow.
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


# name, pygrad function, NumPy reference
REDUCTIONS = [
    ("sum", F.sum, np.sum),
    ("mean", F.mean, np.mean),
    ("max", F.max, np.max),
    ("min", F.min, np.min),
    ("logsumexp", F.logsumexp, _logsumexp_reference),
    ("var", F.var, np.var),
]
REDUCTION_IDS = [case[0] for case in REDUCTIONS]
SMOOTH = [case for case in REDUCTIONS if case[0] not in ("max", "min")]
AXES = [None, 0, -1, (0, 2), (2, 0, 1), 1]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("name, f, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_reduction_forward_matches_numpy(name, f, reference, axis, keepdims, rng):
    x = rng.standard_normal((2, 3, 4))
    y = f(Variable(x), axis=axis, keepdims=keepdims)
    expected = reference(x, axis=axis, keepdims=keepdims)
    assert isinstance(y, Variable)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 1, (0, 2)])
@pytest.mark.parametrize("name, f, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_reduction_grad_matches_finite_differences(name, f, reference, axis, keepdims, rng):
    x = rng.standard_normal((2, 3, 2))
    assert gradient_check(lambda v: f(v, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("axis", [None, 0, (1, 2)])
@pytest.mark.parametrize("name, f, reference", SMOOTH, ids=[case[0] for case in SMOOTH])
def test_reduction_second_order_grad_matches_finite_differences(name, f, reference, axis, rng):
    x = rng.standard_normal((2, 2, 3))

    def reduce_a_smooth_function(v):
        # sum and mean are linear; reducing sin(v) gives them a non-zero second derivative.
        return f(F.sin(v), axis=axis)

    assert gradient_check(first_derivative(reduce_a_smooth_function), x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("f", [F.max, F.min], ids=["max", "min"])
def test_max_min_of_a_smooth_function_has_second_order_grads(f, rng):
    x = rng.uniform(-1.5, 1.5, (3, 4))

    def extremum_of_cubes(v):
        return f(v * v * v + v, axis=1)

    assert gradient_check(first_derivative(extremum_of_cubes), x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, f, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_reduction_keeps_float32_in_output_and_grad(name, f, reference, rng):
    x = Variable(rng.standard_normal((3, 4)).astype(np.float32))
    y = f(x, axis=1)
    y.backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape
    np.testing.assert_allclose(y.data, reference(x.data.astype(np.float64), axis=1), rtol=1e-5)


@pytest.mark.parametrize("name, f, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_reduction_of_a_0d_input_accepts_axis_0_and_none(name, f, reference):
    x = Variable(np.float64(1.5))
    for axis in (None, 0, -1, ()):
        y = f(x, axis=axis)
        assert y.shape == ()
        np.testing.assert_allclose(y.data, reference(np.float64(1.5)), atol=1e-15)


@pytest.mark.parametrize("name, f, reference", REDUCTIONS, ids=REDUCTION_IDS)
def test_reduction_rejects_out_of_range_and_repeated_axes(name, f, reference):
    x = Variable(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=rf"{name}: axis 2 is out of range.*shape \(2, 3\)"):
        f(x, axis=2)
    with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range.*shape \(2, 3\)"):
        f(x, axis=(0, -3))
    with pytest.raises(ValueError, match=rf"{name}: repeated axis.*shape \(2, 3\)"):
        f(x, axis=(1, -1))
    with pytest.raises(TypeError, match=rf"{name}: axis must be None, an int or a tuple of ints"):
        f(x, axis=1.0)


def test_variable_methods_call_the_reductions(rng):
    data = rng.standard_normal((2, 3))
    x = Variable(data)
    np.testing.assert_array_equal(x.sum(axis=1).data, data.sum(axis=1))
    np.testing.assert_allclose(x.mean(0, True).data, data.mean(0, keepdims=True))
    np.testing.assert_array_equal(x.max(axis=1, keepdims=True).data, data.max(1, keepdims=True))
    np.testing.assert_array_equal(x.min().data, data.min())


def test_sum_and_mean_grads_are_uniform():
    x = Variable(np.arange(6.0).reshape(2, 3))
    F.sum(x, axis=0).backward()
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))
    x.clear_grad()
    F.mean(x, axis=1, keepdims=True).backward()
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 1 / 3))


def test_mean_and_var_of_integers_are_float64_like_numpy():
    data = np.array([[1, 2, 4], [3, 5, 9]])
    x = Variable(data)
    assert F.mean(x).dtype == np.float64
    np.testing.assert_allclose(F.mean(x, axis=1).data, data.mean(axis=1))
    np.testing.assert_allclose(F.var(x, axis=0).data, data.var(axis=0))
    assert F.sum(x).dtype == data.sum().dtype


def test_var_is_biased():
    x = Variable(np.array([1.0, 2.0, 3.0, 4.0]))
    assert F.var(x).item() == pytest.approx(1.25)


# =============================================================================================
# max and min
# =============================================================================================
@pytest.mark.parametrize("f", [F.max, F.min], ids=["max", "min"])
def test_max_min_grad_goes_to_the_extreme_position(f):
    x = Variable(np.array([[1.0, 5.0, -2.0], [7.0, 0.0, 3.0]]))
    y = f(x, axis=1)
    y.backward()
    expected = [[0, 1, 0], [1, 0, 0]] if f is F.max else [[0, 0, 1], [0, 1, 0]]
    np.testing.assert_array_equal(x.grad.data, expected)


@pytest.mark.parametrize("f", [F.max, F.min], ids=["max", "min"])
def test_max_min_share_the_grad_equally_among_ties(f):
    x = Variable(np.array([[3.0, 3.0, 1.0, 3.0], [1.0, 1.0, 3.0, 2.0]]))
    f(x, axis=1).backward()
    if f is F.max:
        expected = [[1 / 3, 1 / 3, 0, 1 / 3], [0, 0, 1, 0]]
    else:
        expected = [[0, 0, 1, 0], [0.5, 0.5, 0, 0]]
    np.testing.assert_allclose(x.grad.data, expected)
    x.clear_grad()
    f(x).backward()
    assert x.grad.data.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("f, torch_name", [(F.max, "amax"), (F.min, "amin")])
def test_max_min_match_torch_including_ties(f, torch_name, torch, rng):
    data = rng.integers(0, 3, (3, 4, 5)).astype(np.float64)
    weights = rng.standard_normal((3, 5))
    x = Variable(data)
    (f(x, axis=1) * weights).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    (getattr(torch, torch_name)(tx, dim=1) * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("f, name", [(F.max, "max"), (F.min, "min"), (F.logsumexp, "logsumexp")])
def test_reductions_without_identity_reject_empty_axes(f, name):
    x = Variable(np.zeros((0, 3)))
    with pytest.raises(ValueError, match=rf"{name}: cannot reduce over an empty axis.*\(0, 3\)"):
        f(x, axis=0)
    assert f(x, axis=1).shape == (0,)


def test_max_of_integers_keeps_dtype():
    x = Variable(np.array([[1, 4], [3, 2]]))
    y = F.max(x, axis=0)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y.data, [3, 4])


# =============================================================================================
# logsumexp
# =============================================================================================
def test_logsumexp_is_stable_for_large_inputs():
    x = Variable(np.array([[1000.0, 1000.0, 1000.0], [-1000.0, -1000.0, -1001.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.logsumexp(x, axis=1)
        y.backward()
    expected = [1000.0 + np.log(3.0), -1000.0 + np.log(1.0 + 1.0 + np.exp(-1.0))]
    np.testing.assert_allclose(y.data, expected, rtol=1e-14)
    np.testing.assert_allclose(x.grad.data.sum(axis=1), [1.0, 1.0])
    np.testing.assert_allclose(x.grad.data[0], [1 / 3] * 3)


def test_logsumexp_float32_large_inputs_stay_finite():
    x = Variable(np.array([100.0, 90.0, 80.0], dtype=np.float32))
    y = F.logsumexp(x)
    y.backward()
    assert y.dtype == np.float32 and np.isfinite(y.data)
    assert np.all(np.isfinite(x.grad.data))


def test_logsumexp_handles_infinite_entries():
    x = Variable(np.array([[-np.inf, 0.0], [np.inf, 1.0]]))
    y = F.logsumexp(x, axis=1)
    np.testing.assert_array_equal(y.data, [0.0, np.inf])


def test_logsumexp_grad_is_softmax(rng):
    data = rng.standard_normal((3, 5))
    x = Variable(data)
    F.logsumexp(x, axis=1).backward()
    softmax = np.exp(data) / np.exp(data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad.data, softmax, rtol=1e-12)


# =============================================================================================
# against PyTorch, and on every device
# =============================================================================================
@pytest.mark.parametrize(
    "f, torch_f",
    [
        (F.sum, lambda t, x, axis, keepdims: t.sum(x, dim=axis, keepdim=keepdims)),
        (F.mean, lambda t, x, axis, keepdims: t.mean(x, dim=axis, keepdim=keepdims)),
        (F.logsumexp, lambda t, x, axis, keepdims: t.logsumexp(x, dim=axis, keepdim=keepdims)),
        (
            F.var,
            lambda t, x, axis, keepdims: t.var(x, dim=axis, keepdim=keepdims, correction=0),
        ),
    ],
    ids=["sum", "mean", "logsumexp", "var"],
)
@pytest.mark.parametrize("axis, keepdims", [((0, 2), False), (1, True)])
def test_reduction_matches_torch_forward_and_grad(f, torch_f, axis, keepdims, torch, rng):
    data = rng.standard_normal((2, 3, 4))
    x = Variable(data)
    y = f(x, axis=axis, keepdims=keepdims)
    weights = rng.standard_normal(y.shape)
    (y * weights).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    ty = torch_f(torch, tx, axis, keepdims)
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), ((0, 2), True)])
def test_sum_on_each_device_matches_cpu(axis, keepdims, device, rng):
    data = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x = Variable(data, device=device)
    y = F.sum(x, axis=axis, keepdims=keepdims)
    weights = rng.standard_normal(y.shape).astype(np.float32)
    (y * Variable(weights, device=device)).sum().backward()
    assert y.device == x.device and x.grad.device == x.device
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    x_cpu = Variable(data)
    (F.sum(x_cpu, axis=axis, keepdims=keepdims) * weights).sum().backward()
    np.testing.assert_allclose(y.numpy(), data.sum(axis=axis, keepdims=keepdims), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), x_cpu.grad.data, rtol=1e-6)


# =============================================================================================
# float16 accumulates in float32
# =============================================================================================
@pytest.mark.parametrize("axis", [None, 0])
def test_float16_reductions_accumulate_in_float32_as_numpy_mean_does(axis):
    hundreds = np.full((1000, 3), 100, np.float16)
    tenths = np.full((1000, 3), 0.1, np.float16)
    # NumPy's mean accumulates float16 in float32: 100, where a float16 sum overflows.
    np.testing.assert_array_equal(F.mean(hundreds, axis=axis).data, np.mean(hundreds, axis=axis))
    assert F.mean(hundreds, axis=axis).dtype == np.float16
    np.testing.assert_array_equal(F.var(hundreds, axis=axis).data, 0)
    assert F.var(hundreds, axis=axis).dtype == np.float16
    expected = np.sum(tenths, axis=axis, dtype=np.float32).astype(np.float16)
    np.testing.assert_array_equal(F.sum(tenths, axis=axis).data, expected)
    exact = np.sum(tenths.astype(np.float64), axis=axis)
    np.testing.assert_allclose(F.sum(tenths, axis=axis).data.astype(np.float64), exact, rtol=1e-3)
    lse = F.logsumexp(hundreds, axis=axis).data
    count = hundreds.size if axis is None else len(hundreds)
    np.testing.assert_allclose(lse.astype(np.float64), 100 + np.log(count), rtol=1e-3)


def test_a_float16_sum_beyond_its_range_is_inf_as_in_numpy():
    hundreds = np.full(1000, 100, np.float16)
    with np.errstate(over="ignore"):
        assert np.isposinf(F.sum(hundreds).data) and np.isposinf(np.sum(hundreds))


def test_float16_reductions_keep_float16_gradients():
    x = Variable(np.full((1000, 3), 100, np.float16))
    F.mean(x).backward()
    assert x.grad.dtype == np.float16
    np.testing.assert_allclose(x.grad.data.astype(np.float64), 1 / 3000, rtol=1e-3)


def test_float16_on_opencl_is_refused_with_a_message_naming_it(opencl):
    with pytest.raises(TypeError, match="float16"):
        F.mean(Variable(np.full(1000, 100, np.float16), device=opencl))
