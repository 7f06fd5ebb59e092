"""The release of intermediate arrays no backward pass reads (pygrad/_release.py), one test per
rule: what may be released, what never is, and how a released array fails when read."""

import weakref

import numpy as np
import pytest

from pygrad import Variable
from pygrad import functions as F
from pygrad._release import (
    RELEASE_MIN_BYTES,
    OutputRef,
    ReleasedArray,
    ReleasedDataError,
    _references_while_iterating,
)

SHAPE = (64, 256)  # float32: 64 KiB, just enough to be released


def _is_released(variable) -> bool:
    return type(variable.data) is ReleasedArray


def _layers(device, rng):
    x = Variable(rng.standard_normal(SHAPE).astype(np.float32), device=device)
    W1 = Variable((rng.standard_normal((256, 256)) * 0.1).astype(np.float32), device=device)
    W2 = Variable(rng.standard_normal((256, 4)).astype(np.float32), device=device)
    return x, W1, W2


def _pre_activation(x, W1) -> np.ndarray:
    return x.numpy() @ W1.numpy()


def test_an_intermediate_only_the_graph_holds_is_released_and_keeps_its_metadata(device, rng):
    x, W1, W2 = _layers(device, rng)
    hidden = F.relu(F.linear(x, W1))
    F.linear(hidden, W2)
    released = hidden.creator.inputs[0]
    assert _is_released(released)
    assert released.shape == SHAPE and released.dtype == np.float32
    assert released.device == hidden.device and released.size == 64 * 256
    assert "released array" in repr(released)


def test_a_released_array_fails_loudly_when_read(device, rng):
    x, W1, W2 = _layers(device, rng)
    hidden = F.relu(F.linear(x, W1))
    F.linear(hidden, W2)
    released = hidden.creator.inputs[0]
    reads = [
        released.numpy,
        lambda: np.asarray(released),
        lambda: np.asarray(released.data),
        lambda: released.data + 1,
        lambda: np.exp(released.data),
        lambda: released.data[0],
        lambda: released.data.sum(),
        lambda: F.exp(released),
        lambda: released.data.copy(),
        lambda: released.to("cpu" if device != "cpu" else "opencl"),
    ]
    for read in reads:
        with pytest.raises(ReleasedDataError, match=r"released by the graph.*keep a"):
            read()


def test_an_intermediate_the_caller_references_is_never_released(device, rng):
    x, W1, W2 = _layers(device, rng)
    kept = [F.linear(x, W1)]  # a reference from a container counts as one from a name
    hidden = F.relu(kept[0])
    F.linear(hidden, W2)
    assert not _is_released(kept[0])
    np.testing.assert_allclose(kept[0].numpy(), _pre_activation(x, W1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "hold",
    [
        lambda v: weakref.ref(v),
        lambda v: weakref.ref(v, lambda ref: None),
        lambda v: weakref.proxy(v),
        lambda v: weakref.WeakValueDictionary({"v": v}),
        lambda v: weakref.WeakSet([v]),
    ],
    ids=["ref", "ref-with-callback", "proxy", "WeakValueDictionary", "WeakSet"],
)
def test_an_intermediate_with_a_weak_reference_is_never_released(device, rng, hold):
    x, W1, W2 = _layers(device, rng)
    pre_activation = F.linear(x, W1)
    holder = hold(pre_activation)
    ref = weakref.ref(pre_activation)
    hidden = F.relu(pre_activation)
    del pre_activation
    loss = F.sum(F.linear(hidden, W2))
    assert ref() is not None and not _is_released(ref())
    loss.backward()  # the backward pass releases nothing a weak reference reaches either
    np.testing.assert_allclose(ref().numpy(), _pre_activation(x, W1), rtol=1e-5, atol=1e-5)
    assert holder is not None


def test_the_graphs_own_references_are_of_their_own_type(rng):
    x, W1, _ = _layers("cpu", rng)
    y = F.linear(x, W1)
    (graph_ref,) = y.creator.outputs
    assert type(graph_ref) is OutputRef and graph_ref() is y
    # CPython shares one plain reference between all callers of weakref.ref(y); the graph's
    # must not be it, or a user's weak reference could not be seen.
    user_ref = weakref.ref(y)
    assert user_ref is not graph_ref
    assert weakref.getweakrefcount(y) == 2


def test_the_output_of_a_function_whose_backward_reads_it_is_never_released(device, rng):
    x, W1, W2 = _layers(device, rng)
    exponential = F.exp(F.linear(x, W1) * 0.01)  # exp's backward reads its output
    expected = exponential.numpy()
    hidden = F.relu(exponential)
    del exponential
    F.linear(hidden, W2)
    kept = hidden.creator.inputs[0]
    assert not _is_released(kept)
    np.testing.assert_array_equal(kept.numpy(), expected)


def test_small_intermediates_are_never_released(rng):
    x = Variable(rng.standard_normal((8, 8)).astype(np.float32))
    hidden = F.relu(x * 2.0)
    F.sum(hidden)
    assert hidden.creator.inputs[0].data.nbytes < RELEASE_MIN_BYTES
    assert not _is_released(hidden.creator.inputs[0])


def test_the_reference_count_is_calibrated_for_tuples_and_lists_alike(rng):
    # Function.inputs is the tuple of a call's arguments, or a list when some were converted.
    assert _references_while_iterating((object(),)) == _references_while_iterating([object()])
    x, W1, _ = _layers("cpu", rng)
    converted = F.add(F.linear(x, W1), np.ones(SHAPE, np.float32))  # inputs held in a list
    assert isinstance(converted.creator.inputs, list)
    F.relu(converted)
    assert _is_released(converted.creator.inputs[0])


def test_backward_gives_the_same_gradients_with_weakly_held_intermediates(device, rng):
    def grads(keep_weak_refs):
        x, W1, W2 = _layers(device, np.random.default_rng(3))
        refs = []
        h = F.linear(x, W1)
        if keep_weak_refs:
            refs.append(weakref.ref(h))
        h = F.relu(h)
        loss = F.sum(F.linear(h, W2) ** 2)
        loss.backward()
        return W1.grad.numpy(), W2.grad.numpy()

    for a, b in zip(grads(True), grads(False)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
