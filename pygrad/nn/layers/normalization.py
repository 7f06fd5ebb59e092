"""Normalisation and lookup layers: BatchNorm1d, BatchNorm2d, LayerNorm and Embedding."""

from __future__ import annotations

import numpy as np

from pygrad import functions as F
from pygrad._config import Config, using_config
from pygrad.core import Parameter, Variable
from pygrad.nn import init
from pygrad.nn.module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "Embedding"]


class _BatchNorm(Module):
    expected_ndim: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if not 0 < momentum <= 1:
            raise ValueError(f"{type(self).__name__}: momentum must be in (0, 1], got {momentum}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.gamma = Parameter(init.ones(num_features), name="gamma")
        self.beta = Parameter(init.zeros(num_features), name="beta")
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def forward(self, x) -> Variable:
        if x.ndim not in self.expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: expected input of {' or '.join(map(str, self.expected_ndim))} "
                f"dimensions with {self.num_features} channels on axis 1, got shape {x.shape}"
            )
        with using_config("train", self.training and Config.train):
            return F.batch_norm(
                x,
                self.gamma,
                self.beta,
                self.running_mean,
                self.running_var,
                decay=1 - self.momentum,
                eps=self.eps,
            )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs over every axis but ``C``.

    In training the batch statistics are used and the running ones updated
    (``running = (1 - momentum) * running + momentum * batch``); in eval the running ones.
    """

    expected_ndim = (2, 3)

    def forward(self, x) -> Variable:
        if x.ndim == 3:
            n, c, length = x.shape
            y = super().forward(F.reshape(F.transpose(x, (0, 2, 1)), (n * length, c)))
            return F.transpose(F.reshape(y, (n, length, c)), (0, 2, 1))
        return super().forward(x)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` inputs per channel, as :class:`BatchNorm1d`."""

    expected_ndim = (4,)


class LayerNorm(Module):
    """Layer normalisation over the last axis, with learned ``gamma`` and ``beta``.

    Parameters
    ----------
    normalized_shape : int
        Size of the last axis.
    eps : float
        Added to the variance for stability.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5):
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError("LayerNorm: only normalisation over the last axis is supported")
            normalized_shape = normalized_shape[0]
        self.normalized_shape, self.eps = normalized_shape, eps
        self.gamma = Parameter(init.ones(normalized_shape), name="gamma")
        self.beta = Parameter(init.zeros(normalized_shape), name="beta")

    def forward(self, x) -> Variable:
        if x.shape[-1] != self.normalized_shape:
            raise ValueError(
                f"LayerNorm: expected last axis {self.normalized_shape}, got shape {x.shape}"
            )
        return F.layer_norm(x, self.gamma, self.beta, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class Embedding(Module):
    """Lookup table: integer ids of any shape ``S`` -> vectors of shape ``S + (embedding_dim,)``.

    ``W`` has shape ``(num_embeddings, embedding_dim)`` and starts standard normal, as in PyTorch.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.W = Parameter(
            np.random.standard_normal((num_embeddings, embedding_dim)).astype(np.float32), name="W"
        )

    def forward(self, x) -> Variable:
        return F.embed_id(x, self.W)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
