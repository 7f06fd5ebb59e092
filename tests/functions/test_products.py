"""Tests of pygrad.functions.products: matmul, linear and einsum."""

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from pygrad.utils import gradient_check
from tests._helpers import grads_with_graph


def host(x):
    return x.numpy() if isinstance(x, Variable) else np.asarray(x)


def torch_grads(torch, f, datas, weights):
    """Forward value and input gradients of ``sum(weights * f(*inputs))`` in PyTorch."""
    tensors = [torch.tensor(d, requires_grad=True) for d in datas]
    y = f(*tensors)
    (y * torch.tensor(weights)).sum().backward()
    return y.detach().numpy(), [t.grad.numpy() for t in tensors]


def pygrad_grads(f, datas, weights):
    xs = [Variable(d) for d in datas]
    y = f(*xs)
    (y * Variable(weights)).sum().backward()
    return y.data, [x.grad.data for x in xs]


def float64_reference(f, datas):
    """Value and gradients of ``f(...).sum()`` on the CPU in float64 (checked elsewhere)."""
    xs = [Variable(np.asarray(d, dtype=np.float64)) for d in datas]
    y = f(*xs)
    y.sum().backward()
    return y.data, [x.grad.data for x in xs]


# --- matmul -------------------------------------------------------------------------------
MATMUL_SHAPES = [
    ((3, 4), (4, 2)),
    ((4,), (4, 2)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
]


@pytest.mark.parametrize("shape0, shape1", MATMUL_SHAPES)
def test_matmul_matches_numpy_and_grads_match_finite_differences(rng, shape0, shape1):
    a, b = rng.standard_normal(shape0), rng.standard_normal(shape1)
    np.testing.assert_allclose(F.matmul(a, b).data, np.matmul(a, b))
    assert gradient_check(F.matmul, a, b)


@pytest.mark.parametrize("shape0, shape1", MATMUL_SHAPES)
def test_matmul_second_derivative_matches_finite_differences(rng, shape0, shape1):
    a, b = rng.standard_normal(shape0), rng.standard_normal(shape1)
    assert gradient_check(grads_with_graph(lambda u, v: F.matmul(u * u, v)), a, b)


@pytest.mark.parametrize("shape0, shape1", MATMUL_SHAPES)
def test_matmul_matches_torch(torch, rng, shape0, shape1):
    a, b = rng.standard_normal(shape0), rng.standard_normal(shape1)
    weights = rng.standard_normal(np.matmul(a, b).shape)
    expected, expected_grads = torch_grads(torch, torch.matmul, [a, b], weights)
    actual, actual_grads = pygrad_grads(F.matmul, [a, b], weights)
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)
    for grad, reference in zip(actual_grads, expected_grads):
        np.testing.assert_allclose(grad, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape0, shape1", [((3, 4), (4, 2)), ((2, 3, 4), (4,))])
def test_matmul_on_every_device_keeps_float32(device, rng, shape0, shape1):
    datas = [rng.standard_normal(s).astype(np.float32) for s in (shape0, shape1)]
    a, b = (Variable(d, device=device) for d in datas)
    y = a @ b
    assert y.dtype == np.float32 and y.device == a.device
    y.sum().backward()
    assert a.grad.dtype == np.float32 and a.grad.device == a.device
    assert b.grad.dtype == np.float32 and b.grad.device == b.device
    expected, expected_grads = float64_reference(F.matmul, datas)
    np.testing.assert_allclose(host(y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(host(a.grad), expected_grads[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(host(b.grad), expected_grads[1], rtol=1e-5, atol=1e-5)


def test_matmul_operators_accept_arrays_on_either_side(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    x = Variable(a)
    assert isinstance(x @ b, Variable) and isinstance(b @ x, Variable)
    np.testing.assert_allclose((b @ x).data, b @ a)


@pytest.mark.parametrize(
    "shape0, shape1, pattern",
    [
        ((2, 3), (4, 2), r"matmul: shapes \(2, 3\) and \(4, 2\) .* are not aligned"),
        ((3,), (4,), r"matmul: shapes \(3,\) and \(4,\) .* are not aligned"),
        ((2, 2, 3), (3, 3, 1), r"matmul: the batch axes of shapes \(2, 2, 3\) and \(3, 3, 1\)"),
        ((), (3,), r"matmul: .*at least one dimension.*\(\) and \(3,\)"),
    ],
)
def test_matmul_of_incompatible_shapes_names_both_shapes_and_dtypes(shape0, shape1, pattern):
    with pytest.raises(ValueError, match=pattern) as caught:
        F.matmul(np.zeros(shape0, dtype=np.float32), np.zeros(shape1))
    assert "dtypes float32 and float64" in str(caught.value)


# --- linear -------------------------------------------------------------------------------
LINEAR_SHAPES = [((4, 3), (3, 2), (2,)), ((2, 4, 3), (3, 2), (2,)), ((3,), (3, 2), (2,))]


@pytest.mark.parametrize("x_shape, W_shape, b_shape", LINEAR_SHAPES)
def test_linear_matches_numpy_and_grads_match_finite_differences(rng, x_shape, W_shape, b_shape):
    x, W, b = (rng.standard_normal(s) for s in (x_shape, W_shape, b_shape))
    np.testing.assert_allclose(F.linear(x, W, b).data, x @ W + b)
    np.testing.assert_allclose(F.linear(x, W).data, x @ W)
    assert gradient_check(F.linear, x, W, b)
    assert gradient_check(F.linear, x, W)


def test_linear_with_a_broadcast_bias(rng):
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((1, 2))
    np.testing.assert_allclose(F.linear(x, W, b).data, x @ W + b)
    assert gradient_check(F.linear, x, W, b)


@pytest.mark.parametrize("x_shape, W_shape, b_shape", LINEAR_SHAPES[:2])
def test_linear_second_derivative_matches_finite_differences(rng, x_shape, W_shape, b_shape):
    x, W, b = (rng.standard_normal(s) for s in (x_shape, W_shape, b_shape))
    second = grads_with_graph(lambda u, v, c: F.tanh(F.linear(u, v, c)))
    assert gradient_check(second, x, W, b)


def test_linear_matches_torch(torch, rng):
    x, W, b = rng.standard_normal((2, 4, 3)), rng.standard_normal((3, 5)), rng.standard_normal(5)
    weights = rng.standard_normal((2, 4, 5))
    # torch.nn.functional.linear takes W as (out, in); pygrad's is (in, out), as in DeZero.
    expected, expected_grads = torch_grads(
        torch, lambda u, v, c: torch.nn.functional.linear(u, v.T, c), [x, W, b], weights
    )
    actual, actual_grads = pygrad_grads(F.linear, [x, W, b], weights)
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)
    for grad, reference in zip(actual_grads, expected_grads):
        np.testing.assert_allclose(grad, reference, rtol=1e-10, atol=1e-12)


def test_linear_keeps_float32(rng):
    x = Variable(rng.standard_normal((4, 3)).astype(np.float32))
    W = Variable(rng.standard_normal((3, 2)).astype(np.float32))
    b = Variable(np.zeros(2, dtype=np.float32))
    y = F.linear(x, W, b)
    assert y.dtype == np.float32
    y.sum().backward()
    assert {x.grad.dtype, W.grad.dtype, b.grad.dtype} == {np.dtype(np.float32)}


def test_linear_promotes_dtypes_like_numpy(rng):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    W = rng.standard_normal((3, 2)).astype(np.float32)
    b = rng.standard_normal(2)
    y = F.linear(x, W, b)
    assert y.dtype == (x @ W + b).dtype
    np.testing.assert_allclose(y.data, x @ W + b, rtol=1e-6)


def test_linear_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"linear: .*got x \(4, 3\) and W \(2, 5\)"):
        F.linear(np.zeros((4, 3)), np.zeros((2, 5)))
    with pytest.raises(ValueError, match=r"linear: .*got x \(4, 3\) and W \(3,\)"):
        F.linear(np.zeros((4, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"linear: bias of shape \(3,\) .*\(4, 5\)"):
        F.linear(np.zeros((4, 3)), np.zeros((3, 5)), np.zeros(3))


# --- einsum -------------------------------------------------------------------------------
EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,i->", [(3,), (3,)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("ii->", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("iij->ij", [(3, 3, 2)]),
    ("iii->i", [(2, 2, 2)]),
    ("ij->", [(3, 4)]),
    ("ij->j", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ji", [(3, 4)]),
    ("ijk->kji", [(2, 3, 4)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("bi,bj->bij", [(2, 3), (2, 4)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ij,jk,k->i", [(3, 4), (4, 2), (2,)]),
    ("i,i,i->", [(4,), (4,), (4,)]),
    ("ii,ij->j", [(3, 3), (3, 2)]),
    ("ij,j->i", [(3, 4), (1,)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...ij,...jk", [(2, 3, 4), (4, 2)]),
    ("...ij->...ji", [(2, 3, 4)]),
    ("i...->...", [(3, 2, 2)]),
    ("Ab,bC->AC", [(2, 3), (3, 2)]),
    (" ij , jk -> ik ", [(3, 4), (4, 2)]),
]


@pytest.mark.parametrize("subscripts, shapes", EINSUM_CASES)
def test_einsum_matches_numpy_and_grads_match_finite_differences(rng, subscripts, shapes):
    datas = [rng.standard_normal(s) for s in shapes]
    y = F.einsum(subscripts, *datas)
    np.testing.assert_allclose(y.data, np.einsum(subscripts, *datas), rtol=1e-12, atol=1e-12)
    assert gradient_check(lambda *xs: F.einsum(subscripts, *xs), *datas)


SECOND_ORDER_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("bij,bjk->bik", [(2, 3, 2), (2, 2, 2)]),
    ("ii->i", [(3, 3)]),
    ("ii->", [(3, 3)]),
    ("i,j->ij", [(3,), (2,)]),
    ("ij,j->i", [(3, 4), (1,)]),
    ("...ij,...jk", [(2, 1, 2, 3), (2, 3, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
]


@pytest.mark.parametrize("subscripts, shapes", SECOND_ORDER_CASES)
def test_einsum_second_derivative_matches_finite_differences(rng, subscripts, shapes):
    datas = [rng.standard_normal(s) for s in shapes]
    if len(datas) == 1:
        second = grads_with_graph(lambda x: F.einsum(subscripts, x * x))
    else:
        second = grads_with_graph(lambda x, *rest: F.einsum(subscripts, x * x, *rest))
    assert gradient_check(second, *datas)


def test_einsum_with_a_repeated_operand(rng):
    data = rng.standard_normal((3, 4))
    x = Variable(data)
    y = F.einsum("ij,ij->", x, x)
    np.testing.assert_allclose(y.data, (data * data).sum())
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * data)
    assert gradient_check(lambda v: F.einsum("ij,kj->ik", v, v), data)


def test_einsum_accepts_a_list_of_operands_like_torch(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    np.testing.assert_allclose(F.einsum("ij,jk", [a, b]).data, a @ b)


@pytest.mark.parametrize("subscripts, shapes", EINSUM_CASES[:-1])
def test_einsum_matches_torch(torch, rng, subscripts, shapes):
    datas = [rng.standard_normal(s) for s in shapes]
    weights = rng.standard_normal(np.einsum(subscripts, *datas).shape)
    expected, expected_grads = torch_grads(
        torch, lambda *ts: torch.einsum(subscripts, *ts), datas, weights
    )
    actual, actual_grads = pygrad_grads(lambda *xs: F.einsum(subscripts, *xs), datas, weights)
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)
    for grad, reference in zip(actual_grads, expected_grads):
        np.testing.assert_allclose(grad, reference, rtol=1e-10, atol=1e-12)


def test_einsum_sums_ellipsis_axes_missing_from_the_output_like_torch(torch, rng):
    data = rng.standard_normal((2, 3))
    expected = torch.einsum("...i->i", torch.tensor(data)).numpy()
    np.testing.assert_allclose(F.einsum("...i->i", data).data, expected)


@pytest.mark.parametrize(
    "subscripts, shapes", [("ij,jk->ik", [(3, 4), (4, 2)]), ("ii->i", [(3, 3)])]
)
def test_einsum_keeps_float32(rng, subscripts, shapes):
    xs = [Variable(rng.standard_normal(s).astype(np.float32)) for s in shapes]
    y = F.einsum(subscripts, *xs)
    assert y.dtype == np.float32
    y.sum().backward()
    assert all(x.grad.dtype == np.float32 for x in xs)


@pytest.mark.parametrize(
    "subscripts, shapes, pattern",
    [
        ("ij,jk->ik", [(2, 3), (4, 5)], r"einsum: sizes 3 and 4 of label 'j' .*\(2, 3\), \(4, 5\)"),
        ("ij->ik", [(2, 3)], r"einsum: output label 'k' .*names no input axis"),
        ("ij->ii", [(2, 2)], r"einsum: output label 'i' repeated"),
        ("ijk->i", [(2, 3)], r"einsum: operand 0 has shape \(2, 3\) .*'ijk' name 3"),
        ("ij,jk", [(2, 3)], r"einsum: .*name 2 operand\(s\) but 1 were given"),
        ("ii", [(2, 3)], r"einsum: sizes 2 and 3 of label 'i'"),
        ("i1->i", [(2, 3)], r"einsum: invalid subscripts"),
        ("...i,...i", [(2, 3), (4, 3)], r"einsum: sizes 2 and 4 of the '...' axes"),
    ],
)
def test_einsum_rejects_bad_subscripts_naming_op_and_shapes(subscripts, shapes, pattern):
    with pytest.raises(ValueError, match=pattern):
        F.einsum(subscripts, *[np.zeros(s) for s in shapes])


def test_einsum_rejects_subscripts_that_are_not_a_string():
    with pytest.raises(TypeError, match="einsum: subscripts must be a string, got list"):
        F.einsum(["ij"], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="einsum: need at least one operand"):
        F.einsum("ij")


def test_einsum_on_every_device_keeps_float32(device, rng):
    datas = [rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (2, 4, 5))]
    a, b = (Variable(d, device=device) for d in datas)
    y = F.einsum("ij,bjk->bik", a, b)
    assert y.dtype == np.float32 and y.device == a.device
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32
    expected, expected_grads = float64_reference(lambda u, v: F.einsum("ij,bjk->bik", u, v), datas)
    np.testing.assert_allclose(host(y), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(host(a.grad), expected_grads[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(host(b.grad), expected_grads[1], rtol=1e-5, atol=1e-5)


# --- mixed dtypes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "f",
    [
        lambda x, w: x @ w,
        lambda x, w: F.matmul(x, w),
        lambda x, w: F.linear(x, w),
        lambda x, w: F.linear(x, w, np.zeros(2)),
        lambda x, w: F.einsum("ij,jk->ik", x, w),
    ],
    ids=["operator", "matmul", "linear", "linear-bias", "einsum"],
)
def test_product_with_a_float64_operand_gives_each_variable_a_grad_of_its_dtype(f, rng):
    x = Variable(rng.standard_normal((4, 3)).astype(np.float32))
    w = Variable(rng.standard_normal((3, 2)))
    y = f(x, w)
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float64


def test_matmul_of_float32_with_a_float64_array_gives_a_float32_grad(rng):
    x = Variable(rng.standard_normal((2, 3)).astype(np.float32))
    for y in (x @ np.ones((3, 2)), np.ones((4, 2)) @ x, F.matmul(x[0], np.ones(3))):
        x.clear_grad()
        y.sum().backward()
        assert x.grad.dtype == np.float32


def test_linear_with_float64_weights_gives_float32_input_and_bias_float32_grads(rng):
    x = Variable(rng.standard_normal((4, 3)).astype(np.float32))
    b = Variable(np.zeros(2, dtype=np.float32))
    F.linear(x, rng.standard_normal((3, 2)), b).sum().backward()
    assert x.grad.dtype == np.float32 and b.grad.dtype == np.float32


def test_einsum_of_three_mixed_operands_keeps_each_grads_dtype(rng):
    a = Variable(rng.standard_normal((2, 3)).astype(np.float32))
    b = Variable(rng.standard_normal((3, 4)))
    c = Variable(rng.standard_normal(4).astype(np.float32))
    F.einsum("ij,jk,k->i", a, b, c).sum().backward()
    assert a.grad.dtype == c.grad.dtype == np.float32 and b.grad.dtype == np.float64
