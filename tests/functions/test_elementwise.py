"""Tests for pygrad/functions/elementwise.py: exp, log, sin, cos, tan, tanh, sqrt, square, abs,
clip, maximum, minimum and where."""

import math

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from pygrad._config import using_config
from pygrad.utils import gradient_check


def first_derivative(f):
    """A function returning the gradients of ``sum(f(*xs))``, itself differentiable."""

    def gradients(*xs):
        # gradient_check reads the inputs' grads after calling this again for finite
        # differences, so leave them as they were.
        saved = [x.grad for x in xs]
        for x in xs:
            x.clear_grad()
        with using_config("enable_backprop", True):
            f(*xs).backward(create_graph=True)
        grads = tuple(x.grad if x.grad is not None else x * 0 for x in xs)
        for x, grad in zip(xs, saved):
            x.grad = grad
        return grads

    return gradients


def nth_derivative_at(f, point: float, order: int) -> float:
    """The ``order``-th derivative of a scalar function at ``point``, by repeated backward."""
    x = Variable(np.float64(point))
    y = f(x)
    y.backward(create_graph=True)
    for _ in range(order - 1):
        gx = x.grad
        if gx is None:
            return 0.0
        x.clear_grad()
        gx.backward(create_graph=True)
    # A derivative that no longer depends on x leaves no grad: the next one is zero.
    return 0.0 if x.grad is None else x.grad.item()


def _uniform(low, high):
    return lambda rng, shape: rng.uniform(low, high, shape)


def _away_from_zero(rng, shape):
    return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def _away_from_clip_bounds(rng, shape):
    # Values near -0.5 or 0.5 would put a kink inside the finite-difference step.
    return rng.choice([-1.0, -0.2, 0.1, 0.3, 0.9, 1.2], shape) + rng.uniform(-0.05, 0.05, shape)


# name, pygrad function, NumPy reference, PyTorch reference, input sampler
UNARY = [
    ("exp", F.exp, np.exp, lambda t, x: t.exp(x), _uniform(-2, 2)),
    ("log", F.log, np.log, lambda t, x: t.log(x), _uniform(0.2, 3)),
    ("sin", F.sin, np.sin, lambda t, x: t.sin(x), _uniform(-3, 3)),
    ("cos", F.cos, np.cos, lambda t, x: t.cos(x), _uniform(-3, 3)),
    ("tan", F.tan, np.tan, lambda t, x: t.tan(x), _uniform(-1.2, 1.2)),
    ("tanh", F.tanh, np.tanh, lambda t, x: t.tanh(x), _uniform(-2, 2)),
    ("sqrt", F.sqrt, np.sqrt, lambda t, x: t.sqrt(x), _uniform(0.2, 3)),
    ("square", F.square, np.square, lambda t, x: t.square(x), _uniform(-2, 2)),
    ("abs", F.abs, np.abs, lambda t, x: t.abs(x), _away_from_zero),
    (
        "clip",
        lambda x: F.clip(x, -0.5, 0.5),
        lambda x: np.clip(x, -0.5, 0.5),
        lambda t, x: t.clamp(x, -0.5, 0.5),
        _away_from_clip_bounds,
    ),
]
UNARY_IDS = [case[0] for case in UNARY]


@pytest.mark.parametrize("name, f, reference, _, sample", UNARY, ids=UNARY_IDS)
def test_unary_forward_matches_numpy(name, f, reference, _, sample, rng):
    x = sample(rng, (3, 4))
    y = f(Variable(x))
    assert isinstance(y, Variable)
    assert y.shape == (3, 4)
    np.testing.assert_allclose(y.data, reference(x), rtol=1e-12)


@pytest.mark.parametrize("name, f, reference, _, sample", UNARY, ids=UNARY_IDS)
def test_unary_accepts_arrays_numbers_and_0d_inputs(name, f, reference, _, sample, rng):
    x = sample(rng, ())
    for given in (np.asarray(x), float(x)):
        y = f(given)
        assert isinstance(y, Variable) and y.shape == ()
        np.testing.assert_allclose(y.data, reference(x), rtol=1e-12)


@pytest.mark.parametrize("name, f, reference, _, sample", UNARY, ids=UNARY_IDS)
def test_unary_grad_matches_finite_differences(name, f, reference, _, sample, rng):
    assert gradient_check(f, sample(rng, (2, 3)))


@pytest.mark.parametrize("name, f, reference, _, sample", UNARY, ids=UNARY_IDS)
def test_unary_second_order_grad_matches_finite_differences(name, f, reference, _, sample, rng):
    # abs and clip are piecewise linear: their second derivative is zero away from the kinks.
    assert gradient_check(first_derivative(f), sample(rng, (2, 3)), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, f, reference, _, sample", UNARY, ids=UNARY_IDS)
def test_unary_keeps_float32_in_output_and_grad(name, f, reference, _, sample, rng):
    x = Variable(sample(rng, (3, 2)).astype(np.float32))
    y = f(x)
    y.backward()
    assert y.dtype == np.float32
    assert x.grad.dtype == np.float32


@pytest.mark.parametrize("name, f, reference, torch_f, sample", UNARY, ids=UNARY_IDS)
def test_unary_matches_torch_forward_and_grad(name, f, reference, torch_f, sample, rng, torch):
    x_data = sample(rng, (4, 3))
    weights = rng.standard_normal((4, 3))
    x = Variable(x_data)
    (f(x) * weights).sum().backward()
    tx = torch.tensor(x_data, requires_grad=True)
    ty = torch_f(torch, tx)
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(f(x_data).data, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("f, reference", [(F.exp, np.exp), (F.tanh, np.tanh)], ids=["exp", "tanh"])
def test_exp_and_tanh_on_each_device_match_cpu(f, reference, device, rng):
    x_data = rng.uniform(-2, 2, (5, 7)).astype(np.float32)
    x = Variable(x_data, device=device)
    y = f(x)
    (y * y).sum().backward()
    assert y.device == x.device and x.grad.device == x.device
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    x_cpu = Variable(x_data)
    y_cpu = f(x_cpu)
    (y_cpu * y_cpu).sum().backward()
    np.testing.assert_allclose(y.numpy(), reference(x_data), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), x_cpu.grad.data, rtol=1e-4, atol=1e-5)


# =============================================================================================
# higher-order derivatives
# =============================================================================================
def test_fourth_derivative_of_tanh_matches_analytic_value():
    point = 0.4
    t = math.tanh(point)
    # d4/dx4 tanh = 8 t (1 - t^2) (2 - 3 t^2)
    expected = 8 * t * (1 - t * t) * (2 - 3 * t * t)
    assert nth_derivative_at(F.tanh, point, 4) == pytest.approx(expected, rel=1e-10)


def test_fourth_derivative_of_sin_matches_analytic_value():
    point = 0.7
    assert nth_derivative_at(F.sin, point, 4) == pytest.approx(math.sin(point), rel=1e-10)


@pytest.mark.parametrize(
    "f, derivatives",
    [
        (F.exp, [math.exp] * 3),
        (F.cos, [lambda x: -math.sin(x), lambda x: -math.cos(x), math.sin]),
        (F.log, [lambda x: 1 / x, lambda x: -1 / x**2, lambda x: 2 / x**3]),
        (F.sqrt, [lambda x: 0.5 * x**-0.5, lambda x: -0.25 * x**-1.5, lambda x: 0.375 * x**-2.5]),
        (
            F.tan,
            [
                lambda x: 1 / math.cos(x) ** 2,
                lambda x: 2 * math.tan(x) / math.cos(x) ** 2,
                lambda x: (2 + 4 * math.sin(x) ** 2) / math.cos(x) ** 4,
            ],
        ),
        (F.square, [lambda x: 2 * x, lambda x: 2.0, lambda x: 0.0]),
    ],
    ids=["exp", "cos", "log", "sqrt", "tan", "square"],
)
def test_first_three_derivatives_match_analytic_values(f, derivatives):
    point = 0.6
    for order, derivative in enumerate(derivatives, start=1):
        assert nth_derivative_at(f, point, order) == pytest.approx(derivative(point), abs=1e-12)


# =============================================================================================
# abs and clip
# =============================================================================================
def test_abs_grad_is_sign_and_zero_at_zero():
    x = Variable(np.array([-2.0, 0.0, 3.0]))
    F.abs(x).backward()
    np.testing.assert_array_equal(x.grad.data, [-1.0, 0.0, 1.0])


def test_abs_and_square_keep_integers():
    x = Variable(np.array([-2, 0, 3]))
    assert F.abs(x).dtype == x.dtype
    assert F.square(x).dtype == x.dtype
    np.testing.assert_array_equal(F.square(x).data, [4, 0, 9])


def test_clip_grad_passes_inside_bounds_included_and_stops_outside():
    x = Variable(np.array([-1.0, -0.5, 0.0, 0.5, 1.0]))
    y = F.clip(x, -0.5, 0.5)
    y.backward()
    np.testing.assert_array_equal(y.data, [-0.5, -0.5, 0.0, 0.5, 0.5])
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0, 1.0, 0.0])


def test_clip_accepts_one_sided_bounds():
    x = Variable(np.array([-1.0, 0.0, 2.0]))
    lower = F.clip(x, 0.0, None)
    lower.backward()
    np.testing.assert_array_equal(lower.data, [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0])
    x.clear_grad()
    upper = F.clip(x, None, 1.0)
    upper.backward()
    np.testing.assert_array_equal(upper.data, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0, 0.0])


def test_clip_with_numpy_scalar_bounds_keeps_float32():
    x = Variable(np.array([-1.0, 0.0, 2.0], dtype=np.float32))
    y = F.clip(x, np.float64(-0.5), np.float64(0.5))
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_clip_rejects_bad_bounds():
    x = Variable(np.zeros(3))
    with pytest.raises(ValueError, match="clip: at least one of x_min and x_max"):
        F.clip(x, None, None)
    with pytest.raises(ValueError, match=r"clip: x_min \(1.0\) must not be greater than x_max"):
        F.clip(x, 1.0, -1.0)
    with pytest.raises(TypeError, match="clip: x_min must be a real number or None, got str"):
        F.clip(x, "0", 1.0)


# =============================================================================================
# maximum and minimum
# =============================================================================================
@pytest.mark.parametrize(
    "f, reference", [(F.maximum, np.maximum), (F.minimum, np.minimum)], ids=["max", "min"]
)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3), (3,)), ((), (2,))])
def test_maximum_minimum_forward_and_broadcast_grads(f, reference, shapes, rng):
    x0, x1 = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    y = f(Variable(x0), Variable(x1))
    np.testing.assert_array_equal(y.data, reference(x0, x1))
    assert gradient_check(f, x0, x1)


@pytest.mark.parametrize("f", [F.maximum, F.minimum], ids=["max", "min"])
def test_maximum_minimum_second_order_grad_matches_finite_differences(f, rng):
    def smooth_branches(x0, x1):
        return f(F.sin(x0) * x1, F.exp(x1) * x0)

    x0, x1 = rng.uniform(-1, 1, (2, 3)), rng.uniform(-1, 1, (2, 3))
    assert gradient_check(smooth_branches, x0, x1)
    assert gradient_check(first_derivative(smooth_branches), x0, x1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("f", [F.maximum, F.minimum], ids=["max", "min"])
def test_maximum_minimum_split_the_grad_evenly_at_ties(f):
    x0 = Variable(np.array([1.0, 2.0, 3.0]))
    x1 = Variable(np.array([2.0, 2.0, 2.0]))
    f(x0, x1).backward()
    wins = [0.0, 0.5, 1.0] if f is F.maximum else [1.0, 0.5, 0.0]
    np.testing.assert_array_equal(x0.grad.data, wins)
    np.testing.assert_array_equal(x1.grad.data, 1 - np.array(wins))


def test_maximum_of_a_variable_with_itself_passes_the_whole_grad():
    x = Variable(np.array([-1.0, 2.0]))
    F.maximum(x, x).backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


@pytest.mark.parametrize("f, torch_name", [(F.maximum, "maximum"), (F.minimum, "minimum")])
def test_maximum_minimum_match_torch_including_ties(f, torch_name, torch, rng):
    x0_data = rng.integers(-2, 3, (4, 5)).astype(np.float64)
    x1_data = rng.integers(-2, 3, (1, 5)).astype(np.float64)
    weights = rng.standard_normal((4, 5))
    x0, x1 = Variable(x0_data), Variable(x1_data)
    (f(x0, x1) * weights).sum().backward()
    t0 = torch.tensor(x0_data, requires_grad=True)
    t1 = torch.tensor(x1_data, requires_grad=True)
    (getattr(torch, torch_name)(t0, t1) * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x0.grad.data, t0.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x1.grad.data, t1.grad.numpy(), rtol=1e-12)


def test_maximum_with_a_python_number_keeps_float32_and_returns_variable():
    x = Variable(np.array([-1.0, 0.5, 2.0], dtype=np.float32))
    y = F.maximum(x, 0.0)
    z = F.minimum(1.0, x)
    (y + z).backward()
    assert isinstance(z, Variable)
    assert y.dtype == z.dtype == x.grad.dtype == np.float32
    np.testing.assert_array_equal(y.data, [0.0, 0.5, 2.0])
    np.testing.assert_array_equal(z.data, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.grad.data, [1.0, 2.0, 1.0])


@pytest.mark.parametrize("f, name", [(F.maximum, "maximum"), (F.minimum, "minimum")])
def test_maximum_minimum_reject_shapes_that_do_not_broadcast(f, name):
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\), \(4,\) cannot be broadcast"):
        f(Variable(np.zeros((2, 3))), Variable(np.zeros(4)))


# =============================================================================================
# where
# =============================================================================================
def test_where_forward_and_broadcast_grads(rng):
    condition = np.array([[True], [False], [True]])
    x0, x1 = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    y = F.where(condition, Variable(x0), Variable(x1))
    np.testing.assert_array_equal(y.data, np.where(condition, x0, x1))
    assert gradient_check(lambda a, b: F.where(condition, a, b), x0, x1)


def test_where_grad_goes_to_the_chosen_side():
    x0 = Variable(np.array([1.0, 2.0, 3.0]))
    x1 = Variable(np.array([10.0, 20.0, 30.0]))
    F.where([True, False, True], x0, x1).backward()
    np.testing.assert_array_equal(x0.grad.data, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(x1.grad.data, [0.0, 1.0, 0.0])


def test_where_second_order_grad_matches_finite_differences(rng):
    condition = rng.random((2, 3)) > 0.5

    def branches(x):
        return F.where(condition, x * x * x, F.sin(x))

    assert gradient_check(first_derivative(branches), rng.standard_normal((2, 3)))


def test_where_with_a_python_number_keeps_float32():
    x = Variable(np.array([1.0, -2.0], dtype=np.float32))
    y = F.where(x.data > 0, x, 0.0)
    y.backward()
    assert y.dtype == x.grad.dtype == np.float32
    np.testing.assert_array_equal(y.data, [1.0, 0.0])


def test_where_rejects_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match=r"where: shapes \(2,\), \(3,\), \(3,\) cannot be"):
        F.where(np.array([True, False]), np.zeros(3), np.ones(3))


@pytest.mark.parametrize(
    "f",
    [F.maximum, F.minimum, lambda a, b: F.where(np.array([True, False, True]), a, b)],
    ids=["maximum", "minimum", "where"],
)
def test_mixed_dtypes_give_each_variable_a_grad_of_its_dtype(f, rng):
    a = Variable(rng.standard_normal((2, 3)).astype(np.float32))
    b = Variable(rng.standard_normal(3))
    y = f(a, b)
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    assert a.grad.shape == (2, 3) and b.grad.shape == (3,)


def test_maximum_of_a_float32_and_a_float64_array_gives_a_float32_grad(rng):
    x = Variable(rng.standard_normal(3).astype(np.float32))
    F.maximum(x, np.zeros(3)).sum().backward()
    assert x.grad.dtype == np.float32


def test_where_matches_torch_forward_and_grads_with_broadcasting(torch, rng):
    condition = rng.uniform(size=(3, 4)) > 0.5
    a_data, b_data = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    a, b = Variable(a_data), Variable(b_data)
    y = F.where(condition, a, b)
    ta = torch.tensor(a_data, requires_grad=True)
    tb = torch.tensor(b_data, requires_grad=True)
    ty = torch.where(torch.tensor(condition), ta, tb)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    weights = rng.standard_normal(y.shape)
    (y * Variable(weights)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-12)
