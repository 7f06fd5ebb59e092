"""Recurrent layers on batch-first sequences: RNN, LSTM and GRU."""

import math

import numpy as np
import pytest

import pygrad
from pygrad import Variable, nn
from pygrad import functions as F

N, T, D, H = 3, 4, 5, 6
TOL = dict(rtol=1e-4, atol=1e-5)


def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _final_hidden(state):
    return state[0] if isinstance(state, tuple) else state


def _loss(outputs, state, rng):
    """A weighted sum of the outputs and of every part of the final state, with its weights."""
    parts = [outputs] + (list(state) if isinstance(state, tuple) else [state])
    weights = [_randn(rng, *part.shape) for part in parts]
    total = F.sum(parts[0] * weights[0])
    for part, weight in zip(parts[1:], weights[1:]):
        total = total + F.sum(part * weight)
    return total, weights


LAYERS = [nn.RNN, nn.LSTM, nn.GRU]
GATES = {nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_recurrent_output_and_final_state_shapes(layer_cls, rng):
    layer = layer_cls(D, H)
    outputs, state = layer(_randn(rng, N, T, D))
    assert outputs.shape == (N, T, H) and outputs.dtype == np.float32
    if layer_cls is nn.LSTM:
        h, c = state
        assert h.shape == (N, H) and c.shape == (N, H)
    else:
        h = state
        assert h.shape == (N, H)
    assert h.dtype == np.float32
    np.testing.assert_array_equal(outputs.data[:, -1], h.data)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_recurrent_parameters_are_float32_with_fan_in_uniform_init(layer_cls):
    np.random.seed(0)
    layer = layer_cls(D, H)
    width = GATES[layer_cls] * H
    shapes = {"W_x": (D, width), "W_h": (H, width), "b": (width,)}
    if layer_cls is nn.GRU:
        shapes["b_h"] = (width,)
    assert {name: p.shape for name, p in layer.named_params()} == shapes
    bound = 1 / math.sqrt(H)
    for name, param in layer.named_params():
        assert param.dtype == np.float32, name
        assert np.abs(param.data).max() <= bound, name
    big = layer_cls(64, 256)
    assert abs(big.W_h.data.std() / (1 / math.sqrt(3 * 256)) - 1) < 0.03


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_recurrent_without_bias_has_weights_only(layer_cls, rng):
    layer = layer_cls(D, H, bias=False)
    assert [name for name, _ in layer.named_params()] == ["W_x", "W_h"]
    outputs, _ = layer(_randn(rng, N, T, D))
    assert outputs.shape == (N, T, H)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_recurrent_grads_reach_every_parameter_and_the_input(layer_cls, rng):
    layer = layer_cls(D, H)
    x = Variable(_randn(rng, N, T, D))
    loss, _ = _loss(*layer(x), rng)
    loss.backward()
    for name, param in layer.named_params():
        assert param.grad is not None and param.grad.shape == param.shape, name
        assert param.grad.dtype == np.float32, name
        assert np.any(param.grad.data != 0), name
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32
    # Every time step receives a gradient, the first one through the whole recurrence too.
    assert np.all(np.abs(x.grad.data).sum(axis=(0, 2)) > 0)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_recurrent_initial_state_is_used_and_continues_a_sequence(layer_cls, rng):
    layer = layer_cls(D, H)
    x = _randn(rng, N, T, D)
    whole, whole_state = layer(x)
    first, state = layer(x[:, :2])
    second, second_state = layer(x[:, 2:], state)
    np.testing.assert_allclose(second.data, whole.data[:, 2:], **TOL)
    np.testing.assert_allclose(
        _final_hidden(second_state).data, _final_hidden(whole_state).data, **TOL
    )
    zeros = (
        (np.zeros((N, H), np.float32),) * 2
        if layer_cls is nn.LSTM
        else np.zeros((N, H), np.float32)
    )
    np.testing.assert_allclose(layer(x, zeros)[0].data, whole.data, **TOL)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_recurrent_rejects_wrong_input_and_state_shapes(layer_cls, rng):
    layer = layer_cls(D, H)
    name = layer_cls.__name__
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(N, T, {D}\)"):
        layer(_randn(rng, N, D))
    with pytest.raises(ValueError, match=r"got shape \(3, 4, 2\)"):
        layer(_randn(rng, N, T, 2))
    with pytest.raises(ValueError, match="with T >= 1"):
        layer(_randn(rng, N, 0, D))
    bad = np.zeros((N, H + 1), np.float32)
    state = (bad, np.zeros((N, H), np.float32)) if layer_cls is nn.LSTM else bad
    with pytest.raises(ValueError, match=rf"{name}: expected an initial state h of shape \(3, 6\)"):
        layer(_randn(rng, N, T, D), state)


def test_lstm_state_must_be_a_pair(rng):
    with pytest.raises(ValueError, match=r"LSTM: the initial state must be a pair \(h, c\)"):
        nn.LSTM(D, H)(_randn(rng, N, T, D), np.zeros((N, H), np.float32))
    with pytest.raises(ValueError, match=r"LSTM: expected an initial cell c of shape \(3, 6\)"):
        nn.LSTM(D, H)(_randn(rng, N, T, D), (np.zeros((N, H)), np.zeros((N, 1))))


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_recurrent_repr(layer_cls):
    assert repr(layer_cls(5, 7)) == f"{layer_cls.__name__}(5, 7, bias=True)"


def test_rnn_follows_its_formula(rng):
    layer = nn.RNN(D, H)
    x, h0 = _randn(rng, N, T, D), _randn(rng, N, H)
    h = h0
    expected = []
    for t in range(T):
        h = np.tanh(x[:, t] @ layer.W_x.data + h @ layer.W_h.data + layer.b.data)
        expected.append(h)
    outputs, h_final = layer(x, h0)
    np.testing.assert_allclose(outputs.data, np.stack(expected, axis=1), **TOL)
    np.testing.assert_allclose(h_final.data, h, **TOL)


# --- against PyTorch ----------------------------------------------------------------------------
def _torch_layer(torch, layer):
    """The torch layer with our weights: W_x/W_h transposed, our single b as bias_ih (bias_hh
    zero) for RNN/LSTM, and b/b_h as bias_ih/bias_hh for GRU."""
    reference = getattr(torch.nn, type(layer).__name__)(D, H, batch_first=True)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(torch.from_numpy(layer.W_x.data.T.copy()))
        reference.weight_hh_l0.copy_(torch.from_numpy(layer.W_h.data.T.copy()))
        reference.bias_ih_l0.copy_(torch.from_numpy(layer.b.data))
        if isinstance(layer, nn.GRU):
            reference.bias_hh_l0.copy_(torch.from_numpy(layer.b_h.data))
        else:
            reference.bias_hh_l0.zero_()
    return reference


@pytest.mark.parametrize("layer_cls", LAYERS)
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrent_matches_torch(torch, rng, layer_cls, with_state):
    layer = layer_cls(D, H)
    reference = _torch_layer(torch, layer)
    x_np = _randn(rng, N, T, D)
    x = Variable(x_np)
    x_ref = torch.tensor(x_np, requires_grad=True)
    if with_state:
        parts = [_randn(rng, N, H) for _ in range(2 if layer_cls is nn.LSTM else 1)]
        ours = [Variable(p) for p in parts]
        theirs = [torch.tensor(p[None], requires_grad=True) for p in parts]
        outputs, state = layer(x, tuple(ours) if layer_cls is nn.LSTM else ours[0])
        outputs_ref, state_ref = reference(
            x_ref, tuple(theirs) if layer_cls is nn.LSTM else theirs[0]
        )
    else:
        outputs, state = layer(x)
        outputs_ref, state_ref = reference(x_ref)
    loss, weights = _loss(outputs, state, rng)
    loss.backward()
    state_parts = list(state) if isinstance(state, tuple) else [state]
    ref_parts = [part[0] for part in (state_ref if isinstance(state_ref, tuple) else [state_ref])]
    loss_ref = (outputs_ref * torch.from_numpy(weights[0])).sum()
    for part, weight in zip(ref_parts, weights[1:]):
        loss_ref = loss_ref + (part * torch.from_numpy(weight)).sum()
    loss_ref.backward()

    np.testing.assert_allclose(outputs.data, outputs_ref.detach().numpy(), **TOL)
    for part, part_ref in zip(state_parts, ref_parts):
        np.testing.assert_allclose(part.data, part_ref.detach().numpy(), **TOL)
    np.testing.assert_allclose(x.grad.data, x_ref.grad.numpy(), **TOL)
    np.testing.assert_allclose(layer.W_x.grad.data, reference.weight_ih_l0.grad.numpy().T, **TOL)
    np.testing.assert_allclose(layer.W_h.grad.data, reference.weight_hh_l0.grad.numpy().T, **TOL)
    np.testing.assert_allclose(layer.b.grad.data, reference.bias_ih_l0.grad.numpy(), **TOL)
    if layer_cls is nn.GRU:
        np.testing.assert_allclose(layer.b_h.grad.data, reference.bias_hh_l0.grad.numpy(), **TOL)
    if with_state:
        for ours_part, theirs_part in zip(ours, theirs):
            np.testing.assert_allclose(ours_part.grad.data, theirs_part.grad.numpy()[0], **TOL)


@pytest.mark.parametrize("layer_cls", LAYERS)
def test_recurrent_layers_on_a_device_match_the_cpu(device, layer_cls, rng):
    layer = layer_cls(D, H)
    x = _randn(rng, N, T, D)

    def forward_backward(x):
        outputs, state = layer(x)
        F.sum(outputs * outputs).backward()
        return outputs, {name: param.grad for name, param in layer.named_params()}

    y_cpu, grads_cpu = forward_backward(Variable(x))
    layer.zero_grad()
    layer.to(device)
    y, grads = forward_backward(Variable(x, device=device))
    expected_device = pygrad.backends.parse_device(device)
    assert y.device == expected_device and y.dtype == np.float32
    np.testing.assert_allclose(y.numpy(), y_cpu.data, **TOL)
    for name, grad in grads.items():
        assert grad.device == expected_device and grad.dtype == np.float32, name
        np.testing.assert_allclose(grad.numpy(), grads_cpu[name].data, **TOL)
