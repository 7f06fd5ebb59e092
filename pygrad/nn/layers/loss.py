"""Loss modules wrapping the loss functions, for models written in PyTorch's style."""

from __future__ import annotations

from pygrad import functions as F
from pygrad.core import Variable
from pygrad.nn.module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss"]


class CrossEntropyLoss(Module):
    """Softmax cross entropy of logits ``(N, C)`` against integer labels ``(N,)``, batch mean."""

    def forward(self, x, t) -> Variable:
        return F.softmax_cross_entropy(x, t)


class MSELoss(Module):
    """Mean squared error over all elements."""

    def forward(self, x, t) -> Variable:
        return F.mean_squared_error(x, t)


class BCELoss(Module):
    """Binary cross entropy of probabilities against targets in [0, 1], mean over all elements."""

    def forward(self, p, t) -> Variable:
        return F.binary_cross_entropy(p, t)


class BCEWithLogitsLoss(Module):
    """Binary cross entropy of logits (a stable sigmoid inside), mean over all elements."""

    def forward(self, x, t) -> Variable:
        return F.sigmoid_cross_entropy(x, t)
