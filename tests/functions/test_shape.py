"""Tests of pygrad.functions.shape: reshaping, broadcasting, indexing, joining and splitting."""

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from pygrad.utils import gradient_check
from tests._helpers import grads_with_graph


def host(x):
    return x.numpy() if isinstance(x, Variable) else np.asarray(x)


def backward_with_weights(y, rng):
    weights = rng.standard_normal(y.shape).astype(y.dtype)
    (y * Variable(weights, device=y.device)).sum().backward()
    return weights


# --- reshape ------------------------------------------------------------------------------
def test_reshape_forward_and_grad_on_every_device(device, rng):
    data = rng.standard_normal((2, 3, 4)).astype(np.float32)
    x = Variable(data, device=device)
    y = F.reshape(x, (4, -1))
    assert y.shape == (4, 6) and y.dtype == np.float32 and y.device == x.device
    np.testing.assert_array_equal(host(y), data.reshape(4, 6))
    weights = backward_with_weights(y, rng)
    assert x.grad.dtype == np.float32 and x.grad.device == x.device
    np.testing.assert_allclose(host(x.grad), weights.reshape(2, 3, 4))


def test_reshape_grad_matches_finite_differences(rng):
    x = rng.standard_normal((2, 6))
    assert gradient_check(lambda v: F.reshape(v, (3, 2, 2)) * F.reshape(v, (3, 4)).sum(), x)


def test_reshape_accepts_int_and_method_forms(rng):
    x = Variable(rng.standard_normal((2, 3)))
    assert F.reshape(x, 6).shape == (6,)
    assert x.reshape(3, 2).shape == (3, 2)
    assert x.reshape((1, 6)).shape == (1, 6)
    assert F.reshape(x, (2, 3)) is x


@pytest.mark.parametrize("shape", [(4, 2), (-1, 4), (-1, -1), (0, -1), (-2, -3)])
def test_reshape_to_a_wrong_size_names_op_and_shapes(shape):
    x = Variable(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"reshape: .*\(2, 3\).*into shape"):
        F.reshape(x, shape)


# --- transpose ----------------------------------------------------------------------------
@pytest.mark.parametrize("axes", [None, (1, 0, 2), (2, 0, 1), (-1, 0, 1)])
def test_transpose_forward_and_grad_on_every_device(device, rng, axes):
    data = rng.standard_normal((2, 3, 4)).astype(np.float32)
    x = Variable(data, device=device)
    y = F.transpose(x, axes)
    np.testing.assert_array_equal(host(y), np.transpose(data, axes))
    weights = backward_with_weights(y, rng)
    assert x.grad.dtype == np.float32
    inverse = None if axes is None else np.argsort(np.asarray(axes) % 3)
    expected = np.transpose(weights, inverse)
    np.testing.assert_allclose(host(x.grad), expected)


def test_transpose_grad_matches_finite_differences(rng):
    x = rng.standard_normal((2, 3, 4))
    assert gradient_check(lambda v: F.transpose(v, (2, 0, 1)), x)
    assert gradient_check(lambda v: v.T, x)


def test_transpose_method_and_T_property(rng):
    data = rng.standard_normal((2, 3, 4))
    x = Variable(data)
    np.testing.assert_array_equal(x.T.data, data.T)
    np.testing.assert_array_equal(x.transpose().data, data.T)
    np.testing.assert_array_equal(x.transpose(1, 2, 0).data, data.transpose(1, 2, 0))
    np.testing.assert_array_equal(x.transpose((1, 2, 0)).data, data.transpose(1, 2, 0))


def test_transpose_rejects_bad_axes():
    x = Variable(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"transpose: .*not a permutation"):
        F.transpose(x, (0, 0))
    with pytest.raises(ValueError, match=r"transpose: axis 2 is out of range"):
        F.transpose(x, (0, 2))


# --- broadcast_to and sum_to --------------------------------------------------------------
def test_broadcast_to_forward_and_grad_on_every_device(device, rng):
    data = rng.standard_normal((3, 1)).astype(np.float32)
    x = Variable(data, device=device)
    y = F.broadcast_to(x, (2, 3, 4))
    np.testing.assert_array_equal(host(y), np.broadcast_to(data, (2, 3, 4)))
    weights = backward_with_weights(y, rng)
    assert x.grad.shape == (3, 1) and x.grad.dtype == np.float32
    np.testing.assert_allclose(host(x.grad), weights.sum(axis=(0, 2))[:, None], rtol=1e-5)


def test_broadcast_to_and_sum_to_grads_match_finite_differences(rng):
    assert gradient_check(lambda v: F.broadcast_to(v, (2, 3, 4)), rng.standard_normal((3, 1)))
    assert gradient_check(lambda v: F.sum_to(v, (3, 1)), rng.standard_normal((2, 3, 4)))
    assert gradient_check(lambda v: F.sum_to(v, (1, 4)), rng.standard_normal((2, 3, 4)))


def test_sum_to_forward_and_grad_on_every_device(device, rng):
    data = rng.standard_normal((2, 3, 4)).astype(np.float32)
    x = Variable(data, device=device)
    y = F.sum_to(x, (3, 1))
    assert y.shape == (3, 1) and y.dtype == np.float32
    np.testing.assert_allclose(host(y), data.sum(axis=(0, 2))[:, None], rtol=1e-5)
    weights = backward_with_weights(y, rng)
    np.testing.assert_allclose(host(x.grad), np.broadcast_to(weights, (2, 3, 4)))


def test_broadcast_to_and_sum_to_reject_incompatible_shapes():
    x = Variable(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"broadcast_to: .*\(2, 3\) to \(3, 3\)"):
        F.broadcast_to(x, (3, 3))
    with pytest.raises(ValueError, match=r"sum_to: .*\(2, 3\) to \(2,\)"):
        F.sum_to(x, (2,))


# --- expand_dims, squeeze, flatten -------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1, (0, 3), (-1, 1)])
def test_expand_dims_matches_numpy(rng, axis):
    data = rng.standard_normal((2, 3))
    y = F.expand_dims(data, axis)
    np.testing.assert_array_equal(y.data, np.expand_dims(data, axis))
    assert gradient_check(lambda v: F.expand_dims(v, axis), data)


@pytest.mark.parametrize("axis", [None, 0, 2, (0, -1), -2])
def test_squeeze_matches_numpy(rng, axis):
    data = rng.standard_normal((1, 3, 1, 1))
    y = F.squeeze(data, axis)
    np.testing.assert_array_equal(y.data, np.squeeze(data, axis))
    assert gradient_check(lambda v: F.squeeze(v, axis), data)


def test_expand_dims_and_squeeze_reject_bad_axes():
    x = Variable(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"expand_dims: axis 3 is out of range"):
        F.expand_dims(x, 3)
    with pytest.raises(ValueError, match=r"squeeze: cannot remove axis 1 of length 3"):
        F.squeeze(x, 1)
    with pytest.raises(ValueError, match=r"squeeze: axis -3 is out of range"):
        F.squeeze(x, -3)
    with pytest.raises(ValueError, match=r"squeeze: axis 0 is out of range .* 0 dimension"):
        F.squeeze(Variable(1.0), 0)


def test_flatten_keeps_the_batch_axis(rng):
    data = rng.standard_normal((2, 3, 4))
    y = F.flatten(data)
    np.testing.assert_array_equal(y.data, data.reshape(2, 12))
    assert F.flatten(np.zeros(5)).shape == (5, 1)
    assert F.flatten(np.zeros((0, 3, 2))).shape == (0, 6)
    assert gradient_check(F.flatten, data)
    x32 = Variable(data.astype(np.float32))
    F.flatten(x32).sum().backward()
    assert x32.grad.dtype == np.float32 and x32.grad.shape == (2, 3, 4)


def test_flatten_rejects_a_scalar():
    with pytest.raises(ValueError, match="flatten: .*0-d"):
        F.flatten(Variable(1.0))


# --- concat, stack, split ---------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_matches_numpy_and_grads_match_finite_differences(rng, axis):
    shapes = {0: [(1, 3), (2, 3), (3, 3)], 1: [(2, 1), (2, 4), (2, 2)], -1: [(2, 2), (2, 1)]}
    datas = [rng.standard_normal(s) for s in shapes[axis]]
    y = F.concat(datas, axis=axis)
    np.testing.assert_array_equal(y.data, np.concatenate(datas, axis=axis))
    assert gradient_check(lambda *vs: F.concat(vs, axis=axis), *datas)


def test_concat_with_axis_none_flattens_like_numpy(rng):
    a, b = rng.standard_normal((2, 2)), rng.standard_normal(3)
    y = F.concat([a, b], axis=None)
    np.testing.assert_array_equal(y.data, np.concatenate([a, b], axis=None))
    assert gradient_check(lambda u, v: F.concat([u, v], axis=None), a, b)


def test_concat_keeps_float32_and_is_differentiable_twice(rng):
    a = Variable(rng.standard_normal((2, 3)).astype(np.float32))
    b = Variable(rng.standard_normal((1, 3)).astype(np.float32))
    y = F.concat((a, b))
    assert y.dtype == np.float32
    (y * y).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float32
    second = grads_with_graph(lambda u, v: F.concat([u * u, v], axis=0))
    assert gradient_check(second, rng.standard_normal((2, 3)), rng.standard_normal((1, 3)))


def test_concat_of_mismatched_shapes_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"concat: .*axis 0, got \(2, 3\), \(2, 4\)"):
        F.concat([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match=r"concat: .*\(2, 3\), \(3,\)"):
        F.concat([np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(ValueError, match=r"concat: axis 2 is out of range"):
        F.concat([np.zeros((2, 3)), np.zeros((2, 3))], axis=2)
    with pytest.raises(ValueError, match=r"concat: need at least one array"):
        F.concat([])
    with pytest.raises(ValueError, match=r"concat: 0-d arrays"):
        F.concat([np.float64(1), np.float64(2)])
    with pytest.raises(TypeError, match=r"concat: expected a sequence"):
        F.concat(np.zeros((2, 3)))


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_stack_matches_numpy_and_grads_match_finite_differences(rng, axis):
    datas = [rng.standard_normal((2, 3)) for _ in range(3)]
    y = F.stack(datas, axis=axis)
    np.testing.assert_array_equal(y.data, np.stack(datas, axis=axis))
    assert gradient_check(lambda *vs: F.stack(vs, axis=axis), *datas)


def test_stack_of_one_array_and_its_second_derivative(rng):
    data = rng.standard_normal((2, 3))
    assert F.stack([data]).shape == (1, 2, 3)
    assert gradient_check(lambda v: F.stack([v], axis=1), data)
    second = grads_with_graph(lambda u, v: F.stack([u * v, v], axis=1))
    assert gradient_check(second, data, rng.standard_normal((2, 3)))


def test_stack_rejects_mismatched_shapes_and_bad_axis():
    with pytest.raises(ValueError, match=r"stack: .*same shape, got \(2, 3\), \(3, 2\)"):
        F.stack([np.zeros((2, 3)), np.zeros((3, 2))])
    with pytest.raises(ValueError, match=r"stack: axis 3 is out of range"):
        F.stack([np.zeros((2, 3))], axis=3)


@pytest.mark.parametrize(
    "indices_or_sections, axis",
    [(3, 0), (2, 1), ([1, 4], 0), ([2], -1), ([0, 2, 2, 7], 0), ([-2], 0), ([4, 1], 0)],
)
def test_split_matches_numpy_and_grads_match_finite_differences(rng, indices_or_sections, axis):
    data = rng.standard_normal((6, 4))
    pieces = F.split(data, indices_or_sections, axis=axis)
    expected = np.split(data, indices_or_sections, axis=axis)
    assert isinstance(pieces, list) and len(pieces) == len(expected)
    for piece, reference in zip(pieces, expected):
        np.testing.assert_array_equal(piece.data, reference)
    assert gradient_check(lambda v: tuple(F.split(v, indices_or_sections, axis=axis)), data)


def test_split_gives_zero_gradient_to_unused_pieces(rng):
    x = Variable(rng.standard_normal((6, 2)).astype(np.float32))
    first, _, third = F.split(x, 3)
    (first * 2 + third).sum().backward()
    expected = np.array([2, 2, 0, 0, 1, 1], dtype=np.float32)[:, None] * np.ones((1, 2))
    np.testing.assert_array_equal(x.grad.data, expected)
    assert x.grad.dtype == np.float32


def test_split_of_one_section_is_a_list_and_second_derivative_works(rng):
    data = rng.standard_normal((4, 2))
    pieces = F.split(data, 1)
    assert isinstance(pieces, list) and len(pieces) == 1
    second = grads_with_graph(lambda v: F.split(v, [1, 3])[0] * F.split(v, [1, 3])[2])
    assert gradient_check(second, data)


def test_split_rejects_unequal_division_and_bad_axis():
    x = Variable(np.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"split: axis 0 of shape \(5, 2\) .*2 equal sections"):
        F.split(x, 2)
    with pytest.raises(ValueError, match=r"split: axis 2 is out of range"):
        F.split(x, 1, axis=2)
    with pytest.raises(ValueError, match=r"split: cannot split a 0-d array"):
        F.split(Variable(1.0), 1)


# --- get_item ----------------------------------------------------------------------------
BASIC_KEYS = [
    1,
    -1,
    slice(1, 3),
    (slice(None), 2),
    (Ellipsis, 1),
    (None, 0, slice(None, None, -1)),
    (slice(None, None, 2), slice(1, None), 0),
]


@pytest.mark.parametrize("key", BASIC_KEYS)
def test_get_item_basic_indexing_matches_numpy(rng, key):
    data = rng.standard_normal((3, 4, 2))
    np.testing.assert_array_equal(F.get_item(data, key).data, data[key])
    np.testing.assert_array_equal(Variable(data)[key].data, data[key])
    assert gradient_check(lambda v: v[key], data)


ADVANCED_KEYS = [
    np.array([0, 2, 0, 0]),
    [1, 1],
    (np.array([0, 2, 2]), np.array([1, 1, 1])),
    (slice(None), np.array([[3, 0], [3, 3]])),
    (np.array([1, 1]), slice(None), np.array([0, 0])),
    np.array([], dtype=np.intp),
    [],
]


@pytest.mark.parametrize("key", ADVANCED_KEYS)
def test_get_item_integer_arrays_match_numpy_and_accumulate_repeats(rng, key):
    data = rng.standard_normal((3, 4, 2))
    y = F.get_item(data, key)
    reference = data[tuple(key) if isinstance(key, tuple) else np.asarray(key, dtype=np.intp)]
    np.testing.assert_array_equal(y.data, reference)
    assert gradient_check(lambda v: v[key], data)


def test_get_item_repeated_indices_accumulate_in_backward():
    x = Variable(np.arange(4, dtype=np.float32))
    x[np.array([0, 0, 3, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3, 0, 0, 1])
    assert x.grad.dtype == np.float32


def test_get_item_boolean_mask_matches_numpy(rng):
    data = rng.standard_normal((3, 4))
    mask = data > 0
    np.testing.assert_array_equal(F.get_item(data, mask).data, data[mask])
    assert gradient_check(lambda v: v[mask], data)
    row_mask = np.array([True, False, True])
    assert gradient_check(lambda v: v[row_mask, 1:], data)


def test_get_item_accepts_variable_indices(rng):
    data = rng.standard_normal((4, 3))
    index = Variable(np.array([3, 1, 3]))
    np.testing.assert_array_equal(F.get_item(data, index).data, data[[3, 1, 3]])
    np.testing.assert_array_equal(F.get_item(data, (index, 0)).data, data[[3, 1, 3], 0])


def test_get_item_is_differentiable_twice(rng):
    data = rng.standard_normal((4, 3))
    key = (np.array([0, 3, 0]), slice(1, None))
    second = grads_with_graph(lambda v: v[key] * v[key] * v[key])
    assert gradient_check(second, data)
    mask = data > 0
    assert gradient_check(grads_with_graph(lambda v: v[mask] * v[mask]), data)


def test_get_item_keeps_float32(rng):
    x = Variable(rng.standard_normal((4, 3)).astype(np.float32))
    y = x[[0, 0], 1:]
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


# --- mixed dtypes -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "f",
    [
        lambda a, b: F.concat([a, b]),
        lambda a, b: F.concat([a, b], axis=None),
        lambda a, b: F.stack([a, b], axis=1),
    ],
    ids=["concat", "concat-flat", "stack"],
)
def test_joining_float32_and_float64_gives_each_input_a_grad_of_its_dtype(f, rng):
    a = Variable(rng.standard_normal((2, 3)).astype(np.float32))
    b = Variable(rng.standard_normal((2, 3)))
    y = f(a, b)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.data, 2 * a.data, rtol=1e-6)


# --- indexing errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, shown",
    [(5, "5"), (np.array([0, 7]), r"array\(\[0, 7\]\)"), ((0, 9), r"\(0, 9\)"), ([1, -3], None)],
    ids=["int", "array", "tuple", "list"],
)
def test_get_item_out_of_range_names_get_item_the_index_and_the_shape(key, shown, device):
    x = Variable(np.arange(6.0, dtype=np.float32).reshape(2, 3), device=device)
    with pytest.raises(IndexError, match=r"^get_item: .*shape \(2, 3\)") as caught:
        x[key]
    if shown is not None:
        assert caught.match(shown)
    with pytest.raises(IndexError, match="^get_item: "):
        F.get_item(x, key)


def test_get_item_with_too_many_indices_names_get_item():
    with pytest.raises(IndexError, match=r"^get_item: .*shape \(2,\).*too many indices"):
        Variable(np.ones(2))[0, 0]


# --- sizes and axes must be integers ------------------------------------------------------
@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda x: x.reshape(3.7, 2), r"^reshape: shape .* got \(3\.7, 2\)"),
        (lambda x: F.reshape(x, (np.float64(3.0), -1)), r"^reshape: shape "),
        (lambda x: F.reshape(x, 6.0), r"^reshape: shape "),
        (lambda x: F.broadcast_to(x, (2.5, 2, 3)), r"^broadcast_to: shape .* got \(2\.5, 2, 3\)"),
        (lambda x: F.sum_to(x, (1.0, 3)), r"^sum_to: shape "),
    ],
    ids=["reshape-method", "reshape-numpy-float", "reshape-float", "broadcast_to", "sum_to"],
)
def test_non_integer_sizes_are_a_type_error_naming_op_and_shape(call, pattern):
    x = Variable(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match=pattern):
        call(x)


def test_reshape_and_broadcast_to_accept_numpy_integers_and_minus_one():
    x = Variable(np.arange(6.0).reshape(2, 3))
    assert x.reshape(np.int64(3), -1).shape == (3, 2)
    assert F.reshape(x, (np.int32(6),)).shape == (6,)
    assert F.broadcast_to(x, (np.int64(4), 2, np.int8(3))).shape == (4, 2, 3)


@pytest.mark.parametrize(
    "call, pattern",
    [
        (lambda x: F.expand_dims(x, 0.9), r"^expand_dims: axis must be an int .* 0\.9"),
        (lambda x: F.expand_dims(x, (0, 1.5)), r"^expand_dims: axis must be an integer, got 1\.5"),
        (lambda x: F.expand_dims(x, "0"), r"^expand_dims: axis must be an int"),
        (lambda x: F.squeeze(x, 0.0), r"^squeeze: axis must be an int"),
        (lambda x: F.transpose(x, (1.0, 0)), r"^transpose: axis must be an integer"),
        (lambda x: F.concat([x, x], axis=0.5), r"^concat: axis must be an integer"),
        (lambda x: F.stack([x, x], axis=0.5), r"^stack: axis must be an integer"),
        (lambda x: F.split(x, [1.5], axis=1), r"^split: indices_or_sections must be an integer"),
    ],
    ids=[
        "expand_dims",
        "expand_dims-tuple",
        "expand_dims-str",
        "squeeze",
        "transpose",
        "concat",
        "stack",
        "split",
    ],
)
def test_non_integer_axes_are_a_type_error_naming_op(call, pattern):
    x = Variable(np.arange(6.0).reshape(2, 3))
    with pytest.raises(TypeError, match=pattern):
        call(x)


def test_expand_dims_accepts_numpy_integer_axes():
    x = Variable(np.ones((2, 3)))
    assert F.expand_dims(x, np.int64(0)).shape == (1, 2, 3)
    assert F.expand_dims(x, (0, np.int32(-1))).shape == (1, 2, 3, 1)


# --- against PyTorch ----------------------------------------------------------------------
def matches_torch(torch, pygrad_f, torch_f, *datas, seed=2):
    """Compare the outputs and the gradients of ``sum(w * f(*xs))`` with PyTorch's.

    ``pygrad_f`` and ``torch_f`` may return one array or a list of them (split).
    """
    rng = np.random.default_rng(seed)
    xs = [Variable(d) for d in datas]
    ts = [torch.tensor(d, requires_grad=True) for d in datas]
    ys, tys = pygrad_f(*xs), torch_f(*ts)
    if not isinstance(ys, (list, tuple)):
        ys, tys = [ys], [tys]
    assert len(ys) == len(tys)
    loss, tloss = 0, 0
    for y, ty in zip(ys, tys):
        assert y.shape == tuple(ty.shape)
        # Sums may add in another order than PyTorch's, so not bit for bit.
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        weights = rng.standard_normal(y.shape)
        loss = loss + (y * Variable(weights)).sum()
        tloss = tloss + (ty * torch.tensor(weights)).sum()
    loss.backward()
    tloss.backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-12)


TORCH_SHAPE_CASES = [
    ("reshape", lambda x: F.reshape(x, (4, -1)), lambda x: x.reshape(4, -1)),
    ("transpose", lambda x: F.transpose(x, (2, 0, 1)), lambda x: x.permute(2, 0, 1)),
    ("transpose-reversed", lambda x: x.T, lambda x: x.permute(2, 1, 0)),
    ("broadcast_to", lambda x: F.broadcast_to(x[:, :1], (5, 2, 3, 4)), None),
    ("sum_to", lambda x: F.sum_to(x, (1, 3, 1)), lambda x: x.sum(dim=(0, 2), keepdim=True)),
    ("sum_to-lead", lambda x: F.sum_to(x, (4,)), lambda x: x.sum(dim=(0, 1))),
    ("get_item-basic", lambda x: x[1, ::2, None, 1:], lambda x: x[1, ::2, None, 1:]),
    ("get_item-ellipsis", lambda x: x[..., -1], lambda x: x[..., -1]),
    ("get_item-repeats", lambda x: x[np.array([1, 0, 1, 1])], None),
    ("get_item-pairs", lambda x: x[np.array([0, 1, 0]), :, np.array([3, 3, 0])], None),
    ("expand_dims", lambda x: F.expand_dims(x, (0, -1)), lambda x: x[None, ..., None]),
    ("squeeze", lambda x: F.squeeze(x[:, :1], 1), lambda x: x[:, :1].squeeze(1)),
    ("flatten", F.flatten, lambda x: x.flatten(1)),
    ("split-sections", lambda x: F.split(x, 2, axis=2), lambda x: list(x.split(2, dim=2))),
    ("split-indices", lambda x: F.split(x, [1, 3], axis=1), lambda x: x.tensor_split([1, 3], 1)),
]
# PyTorch spellings that need the torch module or that differ from NumPy's index semantics.
TORCH_SHAPE_OVERRIDES = {
    "broadcast_to": lambda torch: lambda x: x[:, :1].broadcast_to(5, 2, 3, 4),
    "get_item-repeats": lambda torch: lambda x: x[torch.tensor([1, 0, 1, 1])],
    "get_item-pairs": lambda torch: lambda x: x[
        torch.tensor([0, 1, 0]), :, torch.tensor([3, 3, 0])
    ],
}


@pytest.mark.parametrize(
    "name, pygrad_f, torch_f", TORCH_SHAPE_CASES, ids=[case[0] for case in TORCH_SHAPE_CASES]
)
def test_shape_function_matches_torch_forward_and_grad(name, pygrad_f, torch_f, torch, rng):
    if torch_f is None:
        torch_f = TORCH_SHAPE_OVERRIDES[name](torch)
    matches_torch(torch, pygrad_f, torch_f, rng.standard_normal((2, 3, 4)))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_and_stack_match_torch_forward_and_grads(axis, torch, rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    matches_torch(
        torch, lambda x, y: F.concat([x, y], axis), lambda x, y: torch.cat([x, y], axis), a, b
    )
    matches_torch(
        torch, lambda x, y: F.stack([x, y], axis), lambda x, y: torch.stack([x, y], axis), a, b
    )


def test_concat_of_different_lengths_matches_torch(torch, rng):
    a, b, c = (rng.standard_normal((2, n)) for n in (1, 4, 2))
    matches_torch(
        torch,
        lambda *xs: F.concat(xs, axis=1),
        lambda *ts: torch.cat(ts, dim=1),
        a,
        b,
        c,
    )


def test_get_item_with_repeated_indices_accumulates_like_torch(torch, rng):
    data = rng.standard_normal((3, 4))
    index = np.array([[2, 2], [0, 2]])
    matches_torch(torch, lambda x: x[index], lambda t: t[torch.tensor(index)], data)
    matches_torch(torch, lambda x: x[:, [3, 3, 3]], lambda t: t[:, [3, 3, 3]], data)


# --- float32 stays float32 ----------------------------------------------------------------
@pytest.mark.parametrize(
    "f",
    [
        lambda x: F.expand_dims(x, (0, 2)),
        lambda x: F.squeeze(F.reshape(x, (1, 2, 1, 3)), (0, 2)),
        lambda x: F.squeeze(F.reshape(x, (2, 1, 3))),
        lambda x: F.stack([x, x * 2], axis=1),
    ],
    ids=["expand_dims", "squeeze-axes", "squeeze-all", "stack"],
)
def test_adding_and_removing_axes_keeps_float32(f, device, rng):
    x = Variable(rng.standard_normal((2, 3)).astype(np.float32), device=device)
    y = f(x)
    assert y.dtype == np.float32 and y.device == x.device
    backward_with_weights(y, rng)
    assert x.grad.dtype == np.float32 and x.grad.device == x.device
