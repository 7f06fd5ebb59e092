"""The graph core: Variable, Parameter, Function, backward, configuration and factories."""

import gc
import math
import operator
import sys
import weakref

import numpy as np
import pytest

import pygrad
from pygrad import (
    Config,
    Function,
    Parameter,
    Variable,
    no_grad,
    using_config,
)
from pygrad import functions as F
from pygrad._release import ReleasedArray
from pygrad.utils import gradient_check


def require(name: str):
    """Return ``F.<name>``, skipping the test (with the reason) while it is not written yet."""
    function = getattr(F, name, None)
    if function is None:
        pytest.skip(f"pygrad.functions.{name} does not exist yet")
    return function


class Square(Function):
    """A user-defined function, written as the docs tell users to."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return 2 * x * gy


class CountingSquare(Square):
    backward_calls = 0

    def backward(self, gy):
        CountingSquare.backward_calls += 1
        return super().backward(gy)


class SplitHalves(Function):
    """A function with two outputs."""

    def forward(self, x):
        half = x.shape[0] // 2
        return x[:half], x[half:]

    def backward(self, g_low, g_high):
        return F.concat([g_low, g_high])


# =============================================================================================
# the README story (API.md section 1)
# =============================================================================================
def test_readme_story_reprs_are_verbatim():
    a = Variable(5)
    b = Variable(3)
    assert repr(a + b) == "Variable(8)"
    m1 = Variable([[1, 2], [3, 4]])
    m2 = Variable([[1, 1], [1, 1]])
    assert repr(m1 + m2) == "Variable([[2 3]\n          [4 5]])"
    assert repr(m1.T) == "Variable([[1 3]\n          [2 4]])"
    assert repr(m1.reshape(1, 4)) == "Variable([[1 2 3 4]])"


def test_readme_story_square_grad():
    x = Variable(3)
    y = x * x
    y.backward()
    assert repr(x.grad) == "Variable(6)"


def test_readme_story_retain_grad_keeps_every_grad():
    x = Variable(3)
    y = x * x
    z = y + y
    z.backward(retain_grad=True)
    assert repr((z.grad, y.grad, x.grad)) == "(Variable(1), Variable(2), Variable(12))"


def test_readme_story_trains_saves_loads_and_plots_a_model(tmp_path, monkeypatch):
    for name in ("relu", "softmax_cross_entropy", "dropout"):
        require(name)
    import shutil

    from pygrad import nn
    from pygrad.data import DataLoader, Dataset, ratio_split

    class Blobs(Dataset):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(0)
            self.label = rng.integers(0, 10, size=40)
            self.data = (rng.standard_normal((40, 64)) + self.label[:, None]).astype(np.float32)

    class NeuralNet(nn.Module):
        def __init__(self, num_input, num_hidden, num_class, dropout):
            super(NeuralNet, self).__init__()  # noqa: UP008  (verbatim from the README)
            self.fc1 = nn.Linear(num_input, num_hidden)
            self.fc2 = nn.Linear(num_hidden, num_class)
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            x = self.fc1(x)
            x = F.relu(x)
            x = self.fc2(x)
            x = self.dropout(x)
            return x

    monkeypatch.chdir(tmp_path)
    dataset = Blobs()
    model = NeuralNet(64, 32, 10, 0.5)
    train_ds, test_ds = ratio_split(dataset, 0.8, 0.2)
    train_loader = DataLoader(train_ds, 8)
    optimizer = nn.optim.Adam(model.params())
    for data, labels in train_loader:
        pred = model(data)
        loss = F.softmax_cross_entropy(pred, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert np.isfinite(loss.item())

    model.save("ckpt/model")
    assert (tmp_path / "ckpt" / "model.npy").is_file()
    model.load("ckpt/model.npy")
    weights = model.weight_dict()
    assert set(weights["fc1"]) == {"W", "b"} and weights["fc1"]["W"].shape == (64, 32)
    if shutil.which("dot") is not None:
        model.plot()
        assert (tmp_path / "model.png").read_bytes().startswith(b"\x89PNG")


# =============================================================================================
# Variable: construction, attributes, conversions
# =============================================================================================
def test_variable_keeps_numpys_dtype_for_its_data():
    assert Variable(5).dtype == np.array(5).dtype
    assert Variable(2.5).dtype == np.float64
    assert Variable(np.float64(2.5)).dtype == np.float64
    assert Variable(np.float32(2.5)).dtype == np.float32
    assert Variable([1, 2]).dtype.kind == "i"
    assert Variable(True).dtype == np.bool_
    array = np.arange(3, dtype=np.float32)
    assert Variable(array).data is array
    assert Variable(Variable(array)).data is array


def test_variable_attributes_mirror_the_array():
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    x = Variable(data, name="x")
    assert x.name == "x"
    assert x.shape == (2, 3, 4)
    assert x.ndim == 3
    assert x.size == 24
    assert x.dtype == np.float32
    assert x.device == "cpu"
    assert len(x) == 2
    assert x.grad is None and x.creator is None and x.generation == 0
    assert isinstance(x.T, Variable)
    np.testing.assert_array_equal(x.T.data, data.T)


def test_len_of_a_0d_variable_is_a_type_error():
    with pytest.raises(TypeError, match="0-d"):
        len(Variable(1.0))


def test_numpy_returns_a_host_copy():
    x = Variable(np.array([1.0, 2.0]))
    copy = x.numpy()
    copy[0] = 100.0
    assert isinstance(copy, np.ndarray)
    assert x.data[0] == 1.0


def test_item_returns_a_python_number_and_refuses_several_elements():
    assert Variable(np.array([[2.5]], np.float32)).item() == 2.5
    assert isinstance(Variable(np.float32(2.5)).item(), float)
    with pytest.raises(ValueError, match=r"item.*\(2,\)"):
        Variable([1.0, 2.0]).item()


def test_unchain_cuts_the_link_to_the_creator():
    x = Variable(2.0)
    y = F.tanh(x)
    assert y.creator is not None
    y.unchain()
    assert y.creator is None
    y.backward()
    assert x.grad is None


def test_to_cpu_returns_the_same_variable():
    x = Variable([1.0, 2.0])
    assert x.to("cpu") is x
    assert x.to("CPU") is x


def test_np_asarray_of_a_cpu_variable_gives_its_data():
    data = np.arange(6.0).reshape(2, 3)
    x = Variable(data)
    array = np.asarray(x)
    assert isinstance(array, np.ndarray)
    assert np.shares_memory(array, data)
    np.testing.assert_array_equal(array, data)
    assert np.asarray(x, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize(
    "data",
    [
        "abc",
        ["a", "b"],
        np.array(["a", "b"]),
        np.array([object(), object()], dtype=object),
        None,
        {"a": 1},
    ],
    ids=["str", "list-of-str", "str-array", "object-array", "None", "dict"],
)
def test_non_numeric_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="Variable"):
        Variable(data)


def test_parameter_is_a_variable_with_its_own_repr():
    W = Parameter(np.ones((2, 2), np.float32), name="W")
    assert isinstance(W, Variable)
    assert W.name == "W"
    assert repr(W).startswith("Parameter([[1. 1.]")
    assert repr(Parameter(3)) == "Parameter(3)"


def test_parameter_repr_aligns_the_rows_of_a_matrix():
    assert repr(Parameter([[1, 2], [3, 4]])) == "Parameter([[1 2]\n           [3 4]])"


def test_variable_accepts_numpy_array_subclasses_as_plain_arrays(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(3.0))
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    x = Variable(mapped)
    assert type(x.data) is np.ndarray
    np.testing.assert_array_equal((x + mapped).data, [0.0, 2.0, 4.0])


def test_variable_refuses_a_masked_array_rather_than_dropping_its_mask():
    with pytest.raises(TypeError, match="masked array.*filled"):
        Variable(np.ma.array([1.0, 2.0], mask=[False, True]))


def test_backward_seeds_with_a_grad_set_beforehand_as_in_chainer():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 3.0
    y.grad = Variable(np.array([1.0, -1.0]))
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, -3.0])


# =============================================================================================
# factories
# =============================================================================================
@pytest.mark.parametrize("factory", [pygrad.zeros, pygrad.ones], ids=["zeros", "ones"])
def test_zeros_and_ones_are_float32_of_the_shape(factory):
    x = factory((2, 3), name="w")
    assert x.shape == (2, 3) and x.dtype == np.float32 and x.name == "w" and x.device == "cpu"
    assert factory(4).shape == (4,)
    assert factory((2,), dtype=np.float64).dtype == np.float64
    expected = 0.0 if factory is pygrad.zeros else 1.0
    assert np.all(x.data == expected)


def test_randn_takes_ints_or_a_tuple_and_is_float32():
    np.random.seed(0)
    x = pygrad.randn(200, 50, name="noise")
    assert x.shape == (200, 50) and x.dtype == np.float32 and x.name == "noise"
    assert pygrad.randn((3, 2)).shape == (3, 2)
    assert abs(float(x.data.mean())) < 0.05 and abs(float(x.data.std()) - 1) < 0.05


def test_uniform_samples_lie_in_the_half_open_range():
    x = pygrad.uniform(-2.0, 3.0, (100, 10), name="u")
    assert x.shape == (100, 10) and x.dtype == np.float32 and x.name == "u"
    assert x.data.min() >= -2.0 and x.data.max() < 3.0
    assert pygrad.uniform(0, 1, 5, dtype=np.float64).dtype == np.float64


# =============================================================================================
# operators with arrays and numbers on either side
# =============================================================================================
BINARY_OPERATORS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}


@pytest.mark.parametrize("symbol", list(BINARY_OPERATORS))
@pytest.mark.parametrize(
    "other",
    [np.array([0.5, 2.0, 3.0]), 1.5, 2, np.float64(1.5)],
    ids=["ndarray", "float", "int", "numpy-scalar"],
)
def test_operators_accept_arrays_and_numbers_on_either_side(symbol, other):
    op = BINARY_OPERATORS[symbol]
    data = np.array([1.0, 2.0, 4.0])
    x = Variable(data)
    for result, expected in ((op(x, other), op(data, other)), (op(other, x), op(other, data))):
        assert type(result) is Variable
        np.testing.assert_allclose(result.data, expected)


@pytest.mark.parametrize("symbol", list(BINARY_OPERATORS))
def test_reflected_operators_are_differentiable(symbol):
    op = BINARY_OPERATORS[symbol]
    constant = np.array([0.5, 2.0, 3.0])
    point = np.array([1.0, 2.0, 1.5])
    assert gradient_check(lambda x: op(x, constant), point)
    assert gradient_check(lambda x: op(constant, x), point)
    assert gradient_check(lambda x: op(x, 1.5), point)
    assert gradient_check(lambda x: op(1.5, x), point)


def test_matmul_operator_accepts_arrays_on_either_side():
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    left = Variable(a) @ b
    right = a @ Variable(b)
    assert type(left) is Variable and type(right) is Variable
    np.testing.assert_allclose(left.data, a @ b)
    np.testing.assert_allclose(right.data, a @ b)


def test_unary_minus_and_plus():
    x = Variable(np.array([1.0, -2.0]))
    np.testing.assert_array_equal((-x).data, [-1.0, 2.0])
    assert +x is x


def test_variable_wins_over_ndarray_in_every_operator():
    array = np.ones(3)
    x = Variable(np.ones(3))
    for op in BINARY_OPERATORS.values():
        assert type(op(array, x)) is Variable
    assert type(np.ones((3, 3)) @ x) is Variable


# =============================================================================================
# dtype preservation
# =============================================================================================
FLOAT32_EXPRESSIONS = {
    "x*1.0001": lambda x: x * 1.0001,
    "1.0001*x": lambda x: 1.0001 * x,
    "x+0.001": lambda x: x + 0.001,
    "0.001+x": lambda x: 0.001 + x,
    "x-0.5": lambda x: x - 0.5,
    "0.5-x": lambda x: 0.5 - x,
    "x/3.0": lambda x: x / 3.0,
    "3.0/x": lambda x: 3.0 / x,
    "x**2.0": lambda x: x**2.0,
    "x**2": lambda x: x**2,
    "2.0**x": lambda x: 2.0**x,
    "-x": lambda x: -x,
    "x*x": lambda x: x * x,
    "x@x.T": lambda x: x @ x.T,
    "tanh": F.tanh,
    "exp": F.exp,
    "sum": lambda x: x.sum(),
    "reshape": lambda x: x.reshape(-1),
}


@pytest.mark.parametrize("expression", list(FLOAT32_EXPRESSIONS))
def test_float32_stays_float32_in_outputs_and_grads(expression):
    x = Variable(np.array([[0.5, 1.5], [2.0, 0.25]], np.float32))
    y = FLOAT32_EXPRESSIONS[expression](x)
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32


def test_float32_times_1_0001_is_float32():
    x = Variable(np.float32(3.0))
    assert (x * 1.0001).dtype == np.float32
    assert (x * 1.0001).data == np.float32(3.0) * np.float32(1.0001)


# =============================================================================================
# backward
# =============================================================================================
def test_diamond_graph_gets_summed_grads_and_visits_each_function_once():
    CountingSquare.backward_calls = 0
    x = Variable(np.array(2.0))
    a = CountingSquare()(x)  # x**2
    b = a * 3.0
    c = F.exp(F.exp(a * 0.1))  # a longer branch: a must wait for both before its creator runs
    y = b + c
    y.backward()
    assert CountingSquare.backward_calls == 1
    inner = math.exp(0.1 * 4.0)
    expected = (3.0 + math.exp(inner) * inner * 0.1) * 2 * 2.0
    assert x.grad.data == pytest.approx(expected)


def test_backward_runs_functions_in_reverse_generation_order():
    order = []

    class Recording(Function):
        def __init__(self, tag):
            self.tag = tag

        def forward(self, x):
            return x

        def backward(self, gy):
            order.append(self.tag)
            return gy

    x = Variable(1.0)
    a = Recording("a")(x)
    b = Recording("b")(a)
    c = Recording("c")(Recording("c0")(Recording("c1")(a)))
    y = Recording("y")(b + c)
    y.backward()
    assert order[0] == "y"
    assert order[-1] == "a"
    assert order.index("c1") > order.index("c0") > order.index("c")
    assert x.grad.data == 2.0


def test_intermediate_grads_are_freed_by_default():
    x = Variable(3.0)
    y = x * x
    z = y + y
    z.backward()
    assert y.grad is None and z.grad is None
    assert x.grad.data == 12.0


def test_retain_grad_keeps_intermediate_grads():
    x = Variable(3.0)
    y = x * x
    z = F.tanh(y + y)
    z.backward(retain_grad=True)
    assert z.grad.data == 1.0
    assert y.grad is not None and x.grad is not None


def test_leaf_grads_accumulate_across_backward_calls_until_cleared():
    x = Variable(3.0)
    (x * x).backward()
    (x * x).backward()
    assert x.grad.data == 12.0
    x.clear_grad()
    assert x.grad is None
    (x * x).backward()
    assert x.grad.data == 6.0
    x.cleargrad()
    assert x.grad is None


def test_parameter_grads_accumulate_across_backward_calls():
    W = Parameter(np.array([1.0, 2.0], np.float32))
    x = np.array([3.0, 4.0], np.float32)
    for _ in range(3):
        (W * x).sum().backward()
    np.testing.assert_allclose(W.grad.data, 3 * x)
    assert W.grad.dtype == np.float32


def test_same_output_backpropagated_twice_accumulates_on_leaves():
    x = Variable(2.0)
    y = x * x
    y.backward()
    y.backward()
    assert x.grad.data == 8.0


def test_backward_on_a_leaf_sets_its_grad_to_ones():
    x = Variable(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    x.backward()
    assert x.grad.shape == (2, 2) and x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 2)))


def test_non_scalar_output_is_seeded_with_ones():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = x * np.array([2.0, 3.0, 4.0])
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 3.0, 4.0])


def test_grad_is_a_variable_of_the_variables_shape():
    x = Variable(np.ones((2, 3)))
    (x + np.ones(3)).sum().backward()
    assert isinstance(x.grad, Variable) and x.grad.shape == (2, 3)


def test_an_input_unused_by_the_output_gets_no_grad():
    x = Variable(1.0)
    unused = Variable(2.0)
    _ = unused * 2
    (x * 3).backward()
    assert unused.grad is None


def test_a_variable_used_twice_by_one_function_gets_both_grads():
    x = Variable(np.array(3.0))
    y = Square()(x) + x * x
    y.backward()
    assert x.grad.data == 12.0


def test_a_100000_op_chain_backpropagates_without_recursion_error():
    limit = sys.getrecursionlimit()
    x = Variable(np.array(0.5, np.float32))
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.data == 1.0
    assert sys.getrecursionlimit() == limit
    reference = weakref.ref(y.creator)
    del y
    gc.collect()
    assert reference() is None


# =============================================================================================
# releasing arrays no backward needs
# =============================================================================================
def _is_released(variable) -> bool:
    return isinstance(variable.data, ReleasedArray)


def _mlp(rng):
    """Linear, ReLU, Linear on data large enough to be released (float64, 64 x 256)."""
    x = Variable(rng.standard_normal((64, 256)))
    W1, W2 = Variable(rng.standard_normal((256, 256)) * 0.1), Variable(
        rng.standard_normal((256, 4))
    )
    return x, W1, W2


def test_forward_releases_an_output_that_only_a_relu_read(rng):
    x, W1, W2 = _mlp(rng)
    hidden = F.relu(F.linear(x, W1))
    y = F.linear(hidden, W2)
    linear_output = hidden.creator.inputs[0]
    # Linear needs its input, not its output, and ReLU its output, not its input.
    assert _is_released(linear_output) and linear_output.shape == (64, 256)
    assert not _is_released(hidden)
    assert y.shape == (64, 4)


def test_forward_keeps_an_intermediate_the_caller_still_holds(rng):
    x, W1, _ = _mlp(rng)
    pre_activation = F.linear(x, W1)
    hidden = F.relu(pre_activation)
    F.sum(hidden)
    assert not _is_released(pre_activation)
    np.testing.assert_array_equal(pre_activation.data, x.data @ W1.data)


def _grads_with_and_without_release(monkeypatch, compute):
    released = compute()
    monkeypatch.setattr(pygrad._release, "RELEASE_MIN_BYTES", 1 << 62)
    kept = compute()
    return released, kept


def test_released_arrays_change_no_gradient_even_over_two_backward_passes(monkeypatch):
    def compute():
        x, W1, W2 = _mlp(np.random.default_rng(0))
        loss = F.sum(F.linear(F.relu(F.linear(x, W1)), W2) ** 2)
        loss.backward()
        loss.backward()  # leaves accumulate across passes over the same graph
        return W1.grad.data, W2.grad.data

    released, kept = _grads_with_and_without_release(monkeypatch, compute)
    for a, b in zip(released, kept):
        np.testing.assert_array_equal(a, b)


def test_released_arrays_change_no_higher_order_gradient(monkeypatch):
    def compute():
        x, W1, W2 = _mlp(np.random.default_rng(1))
        loss = F.sum(F.tanh(F.linear(F.relu(F.linear(x, W1)), W2)))
        loss.backward(create_graph=True)
        g = W1.grad
        W1.clear_grad()
        F.sum(g * g).backward()
        return W1.grad.data

    released, kept = _grads_with_and_without_release(monkeypatch, compute)
    np.testing.assert_allclose(released, kept, rtol=1e-12)


# =============================================================================================
# higher-order derivatives
# =============================================================================================
def nth_derivative(f, point: float, order: int) -> list:
    """Return the first ``order`` derivatives of ``f`` at ``point`` by repeated backward."""
    x = Variable(np.array(point))
    y = f(x)
    derivatives = []
    for _ in range(order):
        x.clear_grad()
        y.backward(create_graph=True)
        y = x.grad
        derivatives.append(float(y.data))
    return derivatives


def test_fourth_derivative_of_tanh_matches_the_closed_form():
    point = 0.5
    t = math.tanh(point)
    s = 1 - t * t
    expected = [s, -2 * t * s, (6 * t * t - 2) * s, (16 * t - 24 * t**3) * s]
    np.testing.assert_allclose(nth_derivative(F.tanh, point, 4), expected, rtol=1e-12)


def test_fourth_derivative_of_sin_matches_the_closed_form():
    sin = require("sin")
    point = 0.7
    expected = [math.cos(point), -math.sin(point), -math.cos(point), math.sin(point)]
    np.testing.assert_allclose(nth_derivative(sin, point, 4), expected, rtol=1e-12)


def test_second_derivative_of_a_product_and_quotient():
    # f(x) = x**3 / (1 + x): f'' = 2 (x**3 + 3 x**2 + 3 x) / (1 + x)**3
    point = 1.3
    derivatives = nth_derivative(lambda x: x**3 / (1 + x), point, 2)
    expected = 2 * (point**3 + 3 * point**2 + 3 * point) / (1 + point) ** 3
    assert derivatives[1] == pytest.approx(expected, rel=1e-12)


def test_grad_without_create_graph_has_no_history():
    x = Variable(np.array(0.5))
    F.tanh(x).backward()
    assert x.grad.creator is None


def test_grad_with_create_graph_has_history():
    x = Variable(np.array(0.5))
    F.tanh(x).backward(create_graph=True)
    assert x.grad.creator is not None


def mlp_loss(x, t, W1, b1, W2):
    hidden = F.tanh(F.matmul(x, W1) + b1)
    residual = F.matmul(hidden, W2) - t
    return F.sum(residual * residual)


def test_hessian_vector_product_of_an_mlp_loss_matches_finite_differences(rng):
    x = rng.standard_normal((5, 3))
    t = rng.standard_normal((5, 2))
    point = [rng.standard_normal((3, 4)), rng.standard_normal(4), rng.standard_normal((4, 2))]
    direction = [rng.standard_normal(p.shape) for p in point]

    def gradient(values, create_graph=False):
        params = [Parameter(v) for v in values]
        mlp_loss(x, t, *params).backward(create_graph=create_graph)
        return params, [p.grad for p in params]

    params, grads = gradient(point, create_graph=True)
    for p in params:
        p.clear_grad()
    directional = sum(F.sum(g * v) for g, v in zip(grads, direction))
    directional.backward()
    hvp = [p.grad.data for p in params]

    eps = 1e-5
    _, up = gradient([p + eps * v for p, v in zip(point, direction)])
    _, down = gradient([p - eps * v for p, v in zip(point, direction)])
    for analytic, g_up, g_down in zip(hvp, up, down):
        numeric = (g_up.data - g_down.data) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


# =============================================================================================
# configuration
# =============================================================================================
def test_no_grad_builds_no_graph_and_restores_backprop():
    x = Variable(np.array([1.0, 2.0]))
    with no_grad():
        assert Config.enable_backprop is False
        y = F.tanh(x * 2)
    assert y.creator is None and y.generation == 0
    assert Config.enable_backprop is True
    assert (x * 2).creator is not None


def test_function_called_under_no_grad_keeps_no_inputs():
    f = Square()
    with no_grad():
        f(Variable(2.0))
    assert not hasattr(f, "inputs")


def test_test_mode_switches_train_off_and_back():
    assert Config.train is True
    with pygrad.test_mode():
        assert Config.train is False
    assert Config.train is True


def test_using_config_restores_the_value_even_after_an_error():
    with pytest.raises(RuntimeError):
        with using_config("train", False):
            assert Config.train is False
            raise RuntimeError("boom")
    assert Config.train is True
    with using_config("enable_backprop", False):
        with using_config("enable_backprop", True):
            assert Config.enable_backprop is True
        assert Config.enable_backprop is False
    assert Config.enable_backprop is True


def test_using_config_rejects_unknown_settings():
    with pytest.raises(ValueError, match="trian"):
        with using_config("trian", False):
            pass


# =============================================================================================
# Function subclasses
# =============================================================================================
def test_function_subclass_records_inputs_and_weak_outputs():
    x = Variable(np.array(3.0))
    f = Square()
    y = f(x)
    assert y.creator is f
    assert len(f.inputs) == 1 and f.inputs[0] is x
    assert isinstance(f.outputs[0], weakref.ref) and f.outputs[0]() is y
    assert y.generation == x.generation + 1
    y.backward()
    assert x.grad.data == 6.0
    del y
    gc.collect()
    assert f.outputs[0]() is None


def test_function_converts_arrays_and_numbers_to_variables():
    y = Square()(np.array([1.0, 2.0]))
    assert isinstance(y, Variable)
    np.testing.assert_array_equal(y.data, [1.0, 4.0])
    assert Square()(3).data == 9


def test_function_with_two_outputs_returns_a_list_and_backpropagates():
    x = Variable(np.arange(4.0))
    low, high = SplitHalves()(x)
    (low * 2.0 + high * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0, 3.0, 3.0])


def test_backward_of_a_user_function_is_differentiable_again():
    x = Variable(np.array(3.0))
    Square()(x).backward(create_graph=True)
    gx = x.grad
    x.clear_grad()
    gx.backward()
    assert x.grad.data == 2.0


def test_function_without_forward_says_so():
    with pytest.raises(NotImplementedError, match="Nameless"):
        type("Nameless", (Function,), {})()(Variable(1.0))


# =============================================================================================
# shape methods and indexing
# =============================================================================================
def test_reshape_takes_ints_or_a_tuple():
    x = Variable(np.arange(6.0))
    assert x.reshape(2, 3).shape == (2, 3)
    assert x.reshape((3, 2)).shape == (3, 2)
    assert x.reshape([-1, 1]).shape == (6, 1)


def test_reshape_to_a_wrong_size_names_both_shapes():
    x = Variable(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"reshape.*\(2, 3\).*\(4, 2\)"):
        x.reshape(4, 2)


def test_transpose_takes_nothing_ints_or_a_tuple():
    data = np.arange(24.0).reshape(2, 3, 4)
    x = Variable(data)
    assert x.transpose().shape == (4, 3, 2)
    assert x.transpose(1, 0, 2).shape == (3, 2, 4)
    assert x.transpose((2, 0, 1)).shape == (4, 2, 3)
    assert gradient_check(lambda v: v.transpose(1, 2, 0), data)


def test_sum_method_with_axis_and_keepdims():
    data = np.arange(6.0).reshape(2, 3)
    x = Variable(data)
    np.testing.assert_array_equal(x.sum().data, data.sum())
    np.testing.assert_array_equal(x.sum(axis=0).data, data.sum(axis=0))
    assert x.sum(axis=1, keepdims=True).shape == (2, 1)
    assert gradient_check(lambda v: v.sum(axis=1, keepdims=True), data)


@pytest.mark.parametrize("method", ["mean", "max", "min"])
def test_mean_max_min_methods_match_numpy(method):
    require(method)
    data = np.array([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    x = Variable(data)
    np.testing.assert_allclose(getattr(x, method)().data, getattr(data, method)())
    np.testing.assert_allclose(
        getattr(x, method)(axis=1, keepdims=True).data, getattr(data, method)(1, keepdims=True)
    )
    assert gradient_check(lambda v: getattr(v, method)(axis=0), data)


def test_basic_indexing_is_differentiable():
    data = np.arange(12.0).reshape(3, 4)
    x = Variable(data)
    np.testing.assert_array_equal(x[1].data, data[1])
    np.testing.assert_array_equal(x[:, 1:3].data, data[:, 1:3])
    assert gradient_check(lambda v: v[1:, ::2], data)


def test_integer_array_indexing_accumulates_repeated_indices():
    x = Variable(np.array([10.0, 20.0, 30.0]))
    y = x[np.array([0, 0, 2, 0])]
    np.testing.assert_array_equal(y.data, [10.0, 10.0, 30.0, 10.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])


# =============================================================================================
# devices
# =============================================================================================
def test_device_error_is_a_value_error():
    assert issubclass(pygrad.DeviceError, ValueError)


def test_mixing_devices_raises_device_error_naming_both(opencl):
    x = Variable(np.ones(3, np.float32))
    y = Variable(np.ones(3, np.float32), device="opencl")
    assert y.device == "opencl:0"
    with pytest.raises(pygrad.DeviceError, match=r"cpu.*opencl:0|opencl:0.*cpu"):
        x + y


def test_numpy_array_beside_a_device_variable_is_taken_to_be_on_its_device(opencl):
    y = Variable(np.array([1.0, 2.0, 3.0], np.float32), device="opencl")
    host = np.array([10.0, 20.0, 30.0], np.float32)
    for z in (y + host, host + y, y * host, F.maximum(y, host)):
        assert z.device == "opencl:0"
    z = (y * host).sum()
    z.backward()
    assert y.grad.device == "opencl:0"
    np.testing.assert_allclose(y.grad.numpy(), host)


def test_backend_protocol_names_arrays_and_copies_them_home(opencl):
    from pygrad import backends

    host = np.arange(3.0)
    device = backends.to_device(host, "opencl")
    assert backends.is_array(host) and backends.is_array(device)
    assert not backends.is_array([1, 2]) and not backends.is_array(3.0)
    assert backends.to_host(host) is host
    np.testing.assert_array_equal(backends.to_host(device), host)
    assert backends.device_of(device) == "opencl:0" and backends.device_of(host) == "cpu"
    assert "opencl" in backends.backend_names()
    assert backends.fused_op(np, "anything") is None


def test_parse_device_names_every_registered_kind():
    from pygrad import backends

    assert backends.parse_device("OpenCL") == "opencl:0"
    assert backends.parse_device("opencl:2") == "opencl:2"
    with pytest.raises(ValueError, match="'cpu', 'opencl' or 'opencl:N'"):
        backends.parse_device("cuda")
    with pytest.raises(ValueError, match="cannot name a device kind"):
        backends.register_backend("cpu", lambda: None)
