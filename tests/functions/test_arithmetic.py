"""Tests for pygrad/functions/arithmetic.py: the operators + - * / ** and unary -, their
reflected forms, broadcasting, and the rule that a Python number never changes the dtype."""

import math
import operator

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


# name, operator, NumPy reference, PyTorch reference.  Inputs are drawn from [0.5, 2) so that
# division and fractional powers are defined and well conditioned.
BINARY = [
    ("add", operator.add, np.add, lambda t, a, b: a + b),
    ("sub", operator.sub, np.subtract, lambda t, a, b: a - b),
    ("mul", operator.mul, np.multiply, lambda t, a, b: a * b),
    ("div", operator.truediv, np.divide, lambda t, a, b: a / b),
    ("pow", operator.pow, np.power, lambda t, a, b: a**b),
]
BINARY_IDS = [case[0] for case in BINARY]
SHAPES = [((2, 3), (2, 3)), ((3, 1), (1, 4)), ((2, 3), (3,)), ((), (2, 3)), ((2, 1, 3), (2, 1))]


def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


# =============================================================================================
# forward: Variables, arrays and numbers on either side
# =============================================================================================
@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
@pytest.mark.parametrize("left, right", [("var", "var"), ("var", "array"), ("array", "var")])
def test_operator_with_arrays_on_either_side_returns_a_variable(
    name, op, reference, _, left, right, rng
):
    a, b = _positive(rng, (2, 3)), _positive(rng, (3,))
    y = op(Variable(a) if left == "var" else a, Variable(b) if right == "var" else b)
    assert isinstance(y, Variable)
    np.testing.assert_allclose(y.data, reference(a, b), rtol=1e-15)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
@pytest.mark.parametrize("number", [3, 1.5, np.float64(0.75)])
def test_operator_with_numbers_on_either_side_returns_a_variable(
    name, op, reference, _, number, rng
):
    a = _positive(rng, (2, 3))
    right, left = op(Variable(a), number), op(number, Variable(a))
    assert isinstance(right, Variable) and isinstance(left, Variable)
    np.testing.assert_allclose(right.data, reference(a, number), rtol=1e-15)
    np.testing.assert_allclose(left.data, reference(number, a), rtol=1e-15)


def test_operator_functions_accept_lists_and_numbers():
    x = Variable(np.array([1.0, 2.0]))
    np.testing.assert_array_equal((x + [1.0, 1.0]).data, [2.0, 3.0])
    np.testing.assert_array_equal(F.mul([2.0, 3.0], x).data, [2.0, 6.0])
    np.testing.assert_array_equal(F.sub(1.0, x).data, [0.0, -1.0])
    np.testing.assert_array_equal(F.rsub(x, 1.0).data, [0.0, -1.0])
    np.testing.assert_array_equal(F.rdiv(x, 2.0).data, [2.0, 1.0])
    np.testing.assert_array_equal(F.rpow(x, 3.0).data, [3.0, 9.0])


def test_readme_integer_arithmetic():
    a, b = Variable(5), Variable(3)
    assert repr(a + b) == "Variable(8)"
    assert repr(a - b) == "Variable(2)"
    assert repr(a * b) == "Variable(15)"
    assert repr(a**b) == "Variable(125)"
    assert repr(-a) == "Variable(-5)"
    m1, m2 = Variable([[1, 2], [3, 4]]), Variable([[1, 1], [1, 1]])
    assert repr(m1 + m2) == "Variable([[2 3]\n          [4 5]])"


def test_unary_minus_and_plus():
    x = Variable(np.array([1.0, -2.0]))
    y = -x
    y.backward()
    np.testing.assert_array_equal(y.data, [-1.0, 2.0])
    np.testing.assert_array_equal(x.grad.data, [-1.0, -1.0])
    assert +x is x
    assert gradient_check(lambda v: -v, np.array([0.5, 2.0]))


# =============================================================================================
# gradients
# =============================================================================================
@pytest.mark.parametrize("shapes", SHAPES, ids=[f"{a}-{b}" for a, b in SHAPES])
@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_operator_broadcast_grads_match_finite_differences(name, op, reference, _, shapes, rng):
    a, b = _positive(rng, shapes[0]), _positive(rng, shapes[1])
    assert gradient_check(op, a, b)
    assert gradient_check(op, b, a)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_broadcast_grads_have_the_input_shapes(name, op, reference, _, rng):
    a, b = Variable(_positive(rng, (3, 1))), Variable(_positive(rng, (4,)))
    op(a, b).backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
@pytest.mark.parametrize("number", [2, 0.5])
def test_operator_with_a_number_grads_match_finite_differences(name, op, reference, _, number, rng):
    a = _positive(rng, (2, 3))
    assert gradient_check(lambda v: op(v, number), a)
    assert gradient_check(lambda v: op(number, v), a)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_operator_second_order_grads_match_finite_differences(name, op, reference, _, rng):
    def cubed(a, b):
        # add and sub are linear; cubing the result gives them a second derivative.
        y = op(a, b)
        return y * y * y

    a, b = _positive(rng, (2, 3)), _positive(rng, (3,))
    assert gradient_check(first_derivative(cubed), a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_operator_with_a_number_second_order_grads_match_finite_differences(
    name, op, reference, _, rng
):
    a = _positive(rng, (2, 3))
    for f in (lambda v: op(v, 1.5) * v, lambda v: op(1.5, v) * v):
        assert gradient_check(first_derivative(f), a, rtol=1e-4, atol=1e-4)


def test_third_derivative_of_a_power_matches_analytic_value():
    x = Variable(np.float64(1.3))
    y = x**4
    y.backward(create_graph=True)
    for _ in range(2):
        gx, x.grad = x.grad, None
        gx.backward(create_graph=True)
    assert x.grad.item() == pytest.approx(24 * 1.3)


@pytest.mark.parametrize(
    "f, expected",
    [
        (lambda x: x + x, 2.0),
        (lambda x: x - x, 0.0),
        (lambda x: x * x, 2 * 1.5),
        (lambda x: x / x, 0.0),
        (lambda x: x**x, 1.5**1.5 * (math.log(1.5) + 1)),
    ],
    ids=["add", "sub", "mul", "div", "pow"],
)
def test_same_variable_on_both_sides_accumulates_both_grads(f, expected):
    x = Variable(np.float64(1.5))
    f(x).backward()
    assert x.grad.item() == pytest.approx(expected, abs=1e-15)


# =============================================================================================
# dtypes: a Python number never changes the dtype
# =============================================================================================
@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
@pytest.mark.parametrize("number", [1.0001, 2, 0.5])
def test_float32_with_a_python_number_stays_float32_with_float32_grad(
    name, op, reference, _, number, rng
):
    for side in ("left", "right"):
        x = Variable(_positive(rng, (2, 3)).astype(np.float32))
        y = op(x, number) if side == "left" else op(number, x)
        y.backward()
        assert y.dtype == np.float32, side
        assert x.grad.dtype == np.float32, side


def test_float32_times_1_0001_stays_float32():
    x = Variable(np.ones(3, dtype=np.float32))
    y = x * 1.0001
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_array_equal(y.data, np.float32(1.0001))


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_float32_variables_broadcast_with_float32_grads(name, op, reference, _, rng):
    a = Variable(_positive(rng, (3, 1)).astype(np.float32))
    b = Variable(_positive(rng, (4,)).astype(np.float32))
    y = op(a, b)
    y.backward()
    assert y.dtype == np.float32
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32


@pytest.mark.parametrize(
    "op",
    [operator.add, operator.sub, operator.mul, operator.pow],
    ids=["add", "sub", "mul", "pow"],
)
def test_int_variables_with_ints_stay_int(op):
    x = Variable(np.array([1, 2, 3]))
    for y in (op(x, 2), op(2, x), op(x, Variable(np.array([2, 1, 0])))):
        assert y.dtype == x.dtype
    y = op(x, 2)
    y.backward()
    assert x.grad.dtype == x.dtype
    assert (-x).dtype == x.dtype


def test_int_division_gives_float64_like_numpy():
    x = Variable(np.array([1, 2, 4]))
    assert (x / 2).dtype == np.float64
    assert (2 / x).dtype == np.float64
    np.testing.assert_array_equal((x / 2).data, [0.5, 1.0, 2.0])


# =============================================================================================
# powers with array exponents and the reflected power
# =============================================================================================
def test_pow_with_both_arrays_forward_and_grads(rng):
    base, exponent = _positive(rng, (2, 3)), rng.uniform(-2, 2, (3,))
    x0, x1 = Variable(base), Variable(exponent)
    y = x0**x1
    y.backward()
    np.testing.assert_allclose(y.data, base**exponent, rtol=1e-15)
    np.testing.assert_allclose(x0.grad.data, exponent * base ** (exponent - 1), rtol=1e-12)
    expected_x1 = (base**exponent * np.log(base)).sum(axis=0)
    np.testing.assert_allclose(x1.grad.data, expected_x1, rtol=1e-12)


def test_pow_with_a_zero_base_gives_the_exponent_a_zero_grad_not_nan():
    x0 = Variable(np.array([0.0, 2.0]))
    x1 = Variable(np.array([2.0, 3.0]))
    (x0**x1).backward()
    np.testing.assert_allclose(x1.grad.data, [0.0, 8.0 * np.log(2.0)])
    np.testing.assert_allclose(x0.grad.data, [0.0, 12.0])


def test_pow_zero_to_the_zero_gives_the_base_a_zero_grad():
    x0 = Variable(np.array([0.0]))
    x1 = Variable(np.array([0.0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        (x0**x1).backward()
    np.testing.assert_array_equal(x0.grad.data, [0.0])


def test_rpow_with_a_number_forward_and_grads(rng):
    data = rng.uniform(-2, 2, (2, 3))
    x = Variable(data)
    y = 2**x
    y.backward()
    np.testing.assert_allclose(y.data, 2.0**data, rtol=1e-15)
    np.testing.assert_allclose(x.grad.data, 2.0**data * np.log(2.0), rtol=1e-12)
    assert gradient_check(lambda v: 2.5**v, data)
    assert gradient_check(first_derivative(lambda v: 2.5**v), data, rtol=1e-4, atol=1e-4)


def test_rpow_with_an_array_base(rng):
    base, exponent = _positive(rng, (3,)), rng.uniform(-1, 1, (2, 3))
    x = Variable(exponent)
    y = base**x
    y.backward()
    assert isinstance(y, Variable)
    np.testing.assert_allclose(y.data, base**exponent, rtol=1e-15)
    np.testing.assert_allclose(x.grad.data, base**exponent * np.log(base), rtol=1e-12)


def test_rpow_of_float32_stays_float32():
    x = Variable(np.array([0.5, 1.0], dtype=np.float32))
    y = 3**x
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


# =============================================================================================
# against PyTorch, and on every device
# =============================================================================================
@pytest.mark.parametrize("name, op, reference, torch_op", BINARY, ids=BINARY_IDS)
def test_operator_matches_torch_with_broadcasting(name, op, reference, torch_op, torch, rng):
    a_data, b_data = _positive(rng, (3, 1, 4)), _positive(rng, (2, 1))
    a, b = Variable(a_data), Variable(b_data)
    y = op(a, b)
    weights = rng.standard_normal(y.shape)
    (y * weights).sum().backward()
    ta = torch.tensor(a_data, requires_grad=True)
    tb = torch.tensor(b_data, requires_grad=True)
    (torch_op(torch, ta, tb) * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-12)


def test_expression_with_reflected_operators_matches_torch(torch, rng):
    a_data, b_data = _positive(rng, (2, 3)), _positive(rng, (3,))

    def expression(a, b):
        return (1 - a) * (2 / b) + 3**a - a**b / (b + 0.5) - (-b) ** 2

    a, b = Variable(a_data), Variable(b_data)
    expression(a, b).sum().backward()
    ta = torch.tensor(a_data, requires_grad=True)
    tb = torch.tensor(b_data, requires_grad=True)
    expression(ta, tb).sum().backward()
    np.testing.assert_allclose(expression(a, b).data, expression(ta, tb).detach().numpy())
    np.testing.assert_allclose(a.grad.data, ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, tb.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name, op, reference, _", BINARY[:4], ids=BINARY_IDS[:4])
def test_operator_on_each_device_matches_cpu(name, op, reference, _, device, rng):
    a_data = _positive(rng, (3, 1, 5)).astype(np.float32)
    b_data = _positive(rng, (4, 1)).astype(np.float32)
    a, b = Variable(a_data, device=device), Variable(b_data, device=device)
    y = op(op(a, b), 1.5)
    weights = rng.standard_normal(y.shape).astype(np.float32)
    (y * Variable(weights, device=device)).sum().backward()
    assert y.device == a.device and a.grad.device == a.device and b.grad.device == b.device
    assert y.dtype == np.float32 and a.grad.dtype == b.grad.dtype == np.float32
    a_cpu, b_cpu = Variable(a_data), Variable(b_data)
    (op(op(a_cpu, b_cpu), 1.5) * weights).sum().backward()
    np.testing.assert_allclose(y.numpy(), reference(reference(a_data, b_data), 1.5), rtol=1e-5)
    np.testing.assert_allclose(a.grad.numpy(), a_cpu.grad.data, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), b_cpu.grad.data, rtol=1e-4, atol=1e-5)


def test_unsigned_variable_minus_a_python_int_matches_numpy():
    x = Variable(np.array([5, 7], dtype=np.uint8))
    y = x - 1
    assert y.dtype == np.uint8
    np.testing.assert_array_equal(y.data, [4, 6])


# =============================================================================================
# dtypes: a NumPy scalar promotes like NumPy, but the gradient keeps the variable's dtype
# =============================================================================================
@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_float32_with_a_numpy_float64_scalar_promotes_but_its_grad_stays_float32(
    name, op, reference, _, rng
):
    data = _positive(rng, (2, 3)).astype(np.float32)
    for side in ("left", "right"):
        x = Variable(data)
        number = np.float64(1.5)
        y = op(x, number) if side == "left" else op(number, x)
        # The forward follows NumPy 2, where a NumPy float64 scalar promotes float32.
        expected = reference(data, number) if side == "left" else reference(number, data)
        assert y.dtype == expected.dtype == np.float64, side
        y.backward()
        assert x.grad.dtype == np.float32, side


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_grad_through_a_numpy_float64_scalar_matches_the_float64_grad(name, op, reference, _, rng):
    data = _positive(rng, (2, 3))
    x32, x64 = Variable(data.astype(np.float32)), Variable(data)
    op(x32, np.float64(1.5)).backward()
    op(x64, np.float64(1.5)).backward()
    np.testing.assert_allclose(x32.grad.data, x64.grad.data, rtol=1e-6)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_float32_and_float64_variables_get_grads_of_their_own_dtypes(name, op, reference, _, rng):
    a = Variable(_positive(rng, (2, 3)).astype(np.float32))
    b = Variable(_positive(rng, (3,)))
    op(a, b).backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_second_order_grad_through_a_numpy_float64_scalar_stays_float32():
    x = Variable(np.array([0.5, 2.0], dtype=np.float32))
    y = (x ** np.float64(3)) * np.float64(2)
    y.backward(create_graph=True)
    gx, x.grad = x.grad, None
    assert gx.dtype == np.float32
    gx.backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, 12 * np.array([0.5, 2.0]), rtol=1e-6)


def test_int_variable_times_a_float_keeps_its_fractional_grad():
    # Casting the gradient to the integer dtype would truncate it to zero.
    x = Variable(np.array([1, 2, 3]))
    (x * 0.5).backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.5, 0.5])


# =============================================================================================
# errors name the op, the shapes and the dtypes
# =============================================================================================
@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_operator_on_shapes_that_do_not_broadcast_names_op_shapes_and_dtypes(
    name, op, reference, _, device
):
    a = Variable(np.ones((2, 3), dtype=np.float32), device=device)
    b = Variable(np.ones(4, dtype=np.float32), device=device)
    pattern = rf"^{name}: operands of shapes \(2, 3\) and \(4,\) cannot be broadcast"
    with pytest.raises(ValueError, match=pattern) as caught:
        op(a, b)
    assert "dtypes float32 and float32" in str(caught.value)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_operator_with_an_array_or_list_that_does_not_broadcast_names_op(name, op, reference, _):
    a = Variable(np.ones((2, 3)))
    for other in (np.ones(4, dtype=np.int64), [1, 2, 3, 4]):
        with pytest.raises(ValueError, match=rf"^{name}: .*\(2, 3\) and \(4,\).*int64"):
            op(a, other)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_reflected_operator_error_lists_the_operands_in_written_order(name, op, reference, _):
    a = Variable(np.ones((2, 3)))
    with pytest.raises(ValueError, match=rf"^{name}: .*\(4,\) and \(2, 3\)"):
        op(np.ones(4), a)


@pytest.mark.parametrize("name, op, reference, _", BINARY, ids=BINARY_IDS)
def test_operator_with_a_string_is_a_type_error_naming_op(name, op, reference, _):
    a = Variable(np.ones((2, 3)))
    for left, right in ((a, "x"), ("x", a)):
        with pytest.raises(TypeError, match=rf"^{name}: operands must be .* str"):
            op(left, right)


def test_operator_error_from_numpy_names_op_and_dtypes():
    a = Variable(np.array([True, False]))
    with pytest.raises(TypeError, match=r"^sub: .*boolean subtract.*dtype bool"):
        a - a


def test_operator_on_a_ragged_list_keeps_numpys_error():
    with pytest.raises(ValueError, match="inhomogeneous"):
        Variable(np.ones(2)) + [[1.0], [2.0, 3.0]]
