"""Loss modules wrapping the loss functions, for models written in PyTorch's style.

Each is called as ``loss_fn(prediction, target)`` and returns a scalar Variable.
"""

from __future__ import annotations

from pygrad import functions as F
from pygrad.core import Variable
from pygrad.nn.module import Module

__all__ = ["CrossEntropyLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss"]


class CrossEntropyLoss(Module):
    """Softmax cross entropy of logits against integer class labels, averaged over the batch.

    Notes
    -----
    ``forward(x, t)``: logits ``x`` of shape ``(N, C)``, labels ``t`` of shape ``(N,)`` with
    values in ``0 .. C - 1``; returns a scalar (see :func:`pygrad.functions.softmax_cross_entropy`).
    """

    def forward(self, x, t) -> Variable:
        return F.softmax_cross_entropy(x, t)


class MSELoss(Module):
    """Mean squared error ``mean((x - t) ** 2)`` over all elements.

    Notes
    -----
    ``forward(x, t)``: ``x`` and ``t`` of the same shape; returns a scalar.
    """

    def forward(self, x, t) -> Variable:
        return F.mean_squared_error(x, t)


class BCELoss(Module):
    """Binary cross entropy of probabilities against targets in ``[0, 1]``, mean over all elements.

    Notes
    -----
    ``forward(p, t)``: probabilities ``p`` (e.g. the output of :class:`Sigmoid`) and targets
    ``t`` of the same shape; returns a scalar.  For logits prefer :class:`BCEWithLogitsLoss`,
    which is stable for large values.
    """

    def forward(self, p, t) -> Variable:
        return F.binary_cross_entropy(p, t)


class BCEWithLogitsLoss(Module):
    """Binary cross entropy of logits (a stable sigmoid inside), mean over all elements.

    Notes
    -----
    ``forward(x, t)``: logits ``x`` and targets ``t`` in ``[0, 1]`` of the same shape; returns
    a scalar (see :func:`pygrad.functions.sigmoid_cross_entropy`).
    """

    def forward(self, x, t) -> Variable:
        return F.sigmoid_cross_entropy(x, t)
