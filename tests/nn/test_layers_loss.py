"""Loss modules: CrossEntropyLoss, MSELoss, BCELoss and BCEWithLogitsLoss."""

import numpy as np
import pytest

import pygrad
from pygrad import Variable, nn

TOL = dict(rtol=1e-5, atol=1e-6)


def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _cases(rng):
    """(our module, torch module name, prediction, target) for each loss."""
    logits = _randn(rng, 5, 4)
    labels = rng.integers(0, 4, size=5)
    probabilities = (1 / (1 + np.exp(-_randn(rng, 3, 4)))).astype(np.float32)
    targets = rng.integers(0, 2, size=(3, 4)).astype(np.float32)
    return [
        (nn.CrossEntropyLoss(), "CrossEntropyLoss", logits, labels),
        (nn.MSELoss(), "MSELoss", _randn(rng, 3, 4), _randn(rng, 3, 4)),
        (nn.BCELoss(), "BCELoss", probabilities, targets),
        (nn.BCEWithLogitsLoss(), "BCEWithLogitsLoss", 3 * _randn(rng, 3, 4), targets),
    ]


NAMES = ["CrossEntropyLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss"]


@pytest.mark.parametrize("index", range(4), ids=NAMES)
def test_loss_is_a_float32_scalar_whose_grad_reaches_the_prediction(index, rng):
    loss_fn, _, prediction, target = _cases(rng)[index]
    x = Variable(prediction)
    loss = loss_fn(x, target)
    assert loss.shape == () and loss.dtype == np.float32
    loss.backward()
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32
    assert list(loss_fn.params()) == []


def test_loss_values_follow_their_formulas(rng):
    cross_entropy, mse, bce, bce_logits = _cases(rng)
    x, t = cross_entropy[2], cross_entropy[3]
    shifted = x - x.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(len(t)), t].mean()
    np.testing.assert_allclose(nn.CrossEntropyLoss()(x, t).data, expected, **TOL)
    x, t = mse[2], mse[3]
    np.testing.assert_allclose(nn.MSELoss()(x, t).data, ((x - t) ** 2).mean(), **TOL)
    p, t = bce[2], bce[3]
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    np.testing.assert_allclose(nn.BCELoss()(p, t).data, expected, **TOL)
    x, t = bce_logits[2], bce_logits[3]
    p = 1 / (1 + np.exp(-x.astype(np.float64)))
    expected = -(t * np.log(p) + (1 - t) * np.log(1 - p)).mean()
    np.testing.assert_allclose(nn.BCEWithLogitsLoss()(x, t).data, expected, rtol=1e-5)


@pytest.mark.parametrize("loss_cls", [nn.CrossEntropyLoss, nn.MSELoss, nn.BCELoss])
def test_loss_repr(loss_cls):
    assert repr(loss_cls()) == f"{loss_cls.__name__}()"


@pytest.mark.parametrize("index", range(4), ids=NAMES)
def test_loss_matches_torch(torch, rng, index):
    loss_fn, torch_name, prediction, target = _cases(rng)[index]
    x = Variable(prediction)
    loss = loss_fn(x, target)
    loss.backward()
    x_ref = torch.tensor(prediction, requires_grad=True)
    loss_ref = getattr(torch.nn, torch_name)()(x_ref, torch.from_numpy(target))
    loss_ref.backward()
    np.testing.assert_allclose(loss.data, loss_ref.detach().numpy(), **TOL)
    np.testing.assert_allclose(x.grad.data, x_ref.grad.numpy(), **TOL)


@pytest.mark.parametrize("index", range(4), ids=NAMES)
def test_loss_on_a_device_matches_the_cpu(device, rng, index):
    loss_fn, _, prediction, target = _cases(rng)[index]
    x_cpu = Variable(prediction)
    loss_cpu = loss_fn(x_cpu, target)
    loss_cpu.backward()
    x = Variable(prediction, device=device)
    loss = loss_fn(x, Variable(target, device=device))
    loss.backward()
    assert loss.device == x.grad.device == pygrad.backends.parse_device(device)
    assert loss.dtype == x.grad.dtype == np.float32
    np.testing.assert_allclose(loss.numpy(), loss_cpu.data, **TOL)
    np.testing.assert_allclose(x.grad.numpy(), x_cpu.grad.data, **TOL)
