"""pygrad.utils: finite-difference checks and graph walks."""

import numpy as np
import pytest

from pygrad import Function, Parameter, Variable
from pygrad import functions as F
from pygrad.utils import gradient_check, leaves, numerical_grad, topological_order


class WrongSquare(Function):
    """x**2 with a deliberately wrong backward (3x instead of 2x)."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * 3 * self.inputs[0]


class SwappedGradsMul(Function):
    """x0 * x1 whose backward hands each input the other's gradient."""

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return gy * x0, gy * x1


# =============================================================================================
# gradient_check
# =============================================================================================
@pytest.mark.parametrize(
    "f, inputs",
    [
        (lambda x: F.tanh(x) * x, [np.linspace(-1.0, 1.0, 6).reshape(2, 3)]),
        (lambda x, y: x * y + F.exp(x / 4), [np.ones((2, 3)), np.arange(3.0)]),
        (lambda x, W: F.matmul(x, W), [np.arange(6.0).reshape(2, 3) / 6, np.eye(3)[:, :2]]),
        (lambda x: (x**3).sum(axis=0), [np.array([[0.5, -1.0], [2.0, 1.5]])]),
        (lambda x: F.log(x) / x, [np.array([0.5, 1.0, 3.0])]),
    ],
    ids=["tanh-times-x", "broadcast-mul-exp", "matmul", "cube-sum", "log-over-x"],
)
def test_gradient_check_passes_on_correct_functions(f, inputs):
    assert gradient_check(f, *inputs) is True


def test_gradient_check_returns_false_on_a_wrong_backward(capsys):
    assert gradient_check(lambda x: WrongSquare()(x), np.array([1.0, 2.0])) is False
    assert "max abs error" in capsys.readouterr().out


def test_gradient_check_finds_the_wrong_input_of_two():
    x0, x1 = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    assert gradient_check(lambda a, b: SwappedGradsMul()(a, b), x0, x1) is False


def test_gradient_check_accepts_variables_numbers_and_float32_inputs():
    x = Variable(np.array([0.3, 0.7], np.float32))
    assert gradient_check(F.tanh, x)
    assert gradient_check(lambda v: v * v, 2.0)


def test_gradient_check_handles_functions_with_two_outputs():
    def halves(x):
        return x[:2] * 2.0, F.exp(x[2:])

    assert gradient_check(halves, np.array([0.1, 0.2, 0.3, 0.4]))


def test_gradient_check_does_not_touch_the_callers_data():
    data = np.array([1.0, 2.0])
    x = Variable(data)
    gradient_check(F.exp, x)
    np.testing.assert_array_equal(data, [1.0, 2.0])
    assert x.grad is None


# =============================================================================================
# numerical_grad
# =============================================================================================
def test_numerical_grad_matches_analytic_grads():
    data = np.array([[0.2, -0.4, 1.1], [0.0, 0.9, -1.3]])
    numeric = numerical_grad(lambda x: F.tanh(x) * x, data)
    t = np.tanh(data)
    np.testing.assert_allclose(numeric, t + data * (1 - t * t), rtol=1e-7, atol=1e-9)

    x = Variable(data)
    (F.tanh(x) * x).backward()
    np.testing.assert_allclose(numeric, x.grad.data, rtol=1e-7, atol=1e-9)


def test_numerical_grad_sums_over_outputs_and_holds_other_inputs_fixed():
    x = np.array([1.0, 2.0, 3.0])
    W = np.arange(6.0).reshape(3, 2)
    numeric = numerical_grad(lambda a, b: F.matmul(a, b), x, W)
    assert numeric.shape == (3,)
    np.testing.assert_allclose(numeric, W.sum(axis=1), rtol=1e-7)


def test_numerical_grad_is_float64_even_for_float32_input():
    x = np.array([0.5, 1.5], np.float32)
    numeric = numerical_grad(F.exp, x)
    assert numeric.dtype == np.float64
    np.testing.assert_allclose(numeric, np.exp(x.astype(np.float64)), rtol=1e-8)


# =============================================================================================
# topological_order and leaves
# =============================================================================================
def test_topological_order_lists_inputs_first_and_each_function_once():
    x = Variable(np.array(1.0))
    a = F.tanh(x)
    b = a * 2.0
    c = F.exp(a)
    y = b + c
    order = topological_order(y)
    assert len(order) == len(set(order)) == 4
    assert order[0] is a.creator and order[-1] is y.creator
    position = {f: i for i, f in enumerate(order)}
    for f in order:
        for x_ in f.inputs:
            if x_.creator is not None:
                assert position[x_.creator] < position[f]


def test_topological_order_of_a_leaf_is_empty():
    assert topological_order(Variable(1.0)) == []


def test_topological_order_of_a_deep_chain_needs_no_recursion():
    x = Variable(1.0)
    y = x
    for _ in range(20_000):
        y = y + 1.0
    order = topological_order(y)
    assert len(order) == 20_000 and order[0].inputs[0] is x


def test_leaves_lists_each_leaf_and_parameter_once_in_order():
    x = Variable(np.ones((2, 3)), name="x")
    W = Parameter(np.ones((3, 2)), name="W")
    b = Parameter(np.zeros(2), name="b")
    h = F.matmul(x, W) + b
    y = F.sum(h * h + F.matmul(x, W))
    found = leaves(y)
    assert [v.name for v in found] == ["x", "W", "b"]
    assert all(v.creator is None for v in found)


def test_leaves_of_a_leaf_is_itself():
    x = Variable(1.0)
    assert leaves(x) == [x]
