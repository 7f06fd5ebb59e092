"""Normalisation and lookup layers: BatchNorm1d, BatchNorm2d, LayerNorm and Embedding."""

from __future__ import annotations

import numpy as np

from pygrad import functions as F
from pygrad._config import Config, using_config
from pygrad.core import Parameter, Variable, as_variable
from pygrad.nn import init
from pygrad.nn.layers._checks import positive_sizes, real_input
from pygrad.nn.module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "Embedding"]


class _BatchNorm(Module):
    """Shared batch normalisation over axis 1 (the channels) of ``expected_ndim``-D inputs."""

    expected_ndim: tuple = ()
    layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        layer = type(self).__name__
        (num_features,) = positive_sizes(layer, num_features=num_features)
        if not 0 < momentum <= 1:
            raise ValueError(f"{layer}: momentum must be in (0, 1], got {momentum}")
        if not eps > 0:
            raise ValueError(f"{layer}: eps must be positive, got {eps}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.gamma = Parameter(init.ones(num_features), name="gamma")
        self.beta = Parameter(init.zeros(num_features), name="beta")
        self.register_buffer("running_mean", np.zeros(num_features, np.float32))
        self.register_buffer("running_var", np.ones(num_features, np.float32))

    def _check(self, x: Variable, training: bool) -> None:
        layer = type(self).__name__
        real_input(self, x, self.gamma)
        if x.ndim not in self.expected_ndim or x.shape[1] != self.num_features:
            raise ValueError(
                f"{layer}: expected input of shape {self.layout.format(C=self.num_features)}, "
                f"got shape {x.shape}"
            )
        if training and x.size // self.num_features < 2:
            raise ValueError(
                f"{layer}: training needs more than one value per channel to estimate a "
                f"variance, got input of shape {x.shape}"
            )

    def forward(self, x) -> Variable:
        x = as_variable(x)
        training = self.training and Config.train
        self._check(x, training)
        with using_config("train", training):
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
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` inputs, per channel ``C``.

    In training the statistics of the batch (over every axis but ``C``) normalise the input and
    update the running ones, ``running = (1 - momentum) * running + momentum * batch`` (the
    variance unbiased, as in PyTorch); in evaluation the running statistics are used.

    Parameters
    ----------
    num_features : int
        Number of channels ``C``.
    eps : float
        Added to the variance for stability.
    momentum : float
        Weight of the batch statistics in the running averages, in ``(0, 1]``.

    Attributes
    ----------
    gamma, beta : Parameter
        Scale (starting at one) and shift (starting at zero), shape ``(C,)``.
    running_mean, running_var : array
        Buffers of shape ``(C,)``, saved with the weights but not trained.

    Notes
    -----
    Output shape equals input shape.
    """

    expected_ndim = (2, 3)
    layout = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` inputs per channel ``C``.

    Statistics are taken over ``N``, ``H`` and ``W``; everything else is as for
    :class:`BatchNorm1d` (parameters, running statistics, train/eval behaviour).
    Output shape equals input shape.
    """

    expected_ndim = (4,)
    layout = "(N, {C}, H, W)"


class LayerNorm(Module):
    """Layer normalisation over the last axis, with learned ``gamma`` and ``beta``.

    Parameters
    ----------
    normalized_shape : int or (int,)
        Size of the last axis.
    eps : float
        Added to the variance for stability.

    Attributes
    ----------
    gamma, beta : Parameter
        Scale (starting at one) and shift (starting at zero), shape ``(normalized_shape,)``.

    Notes
    -----
    Input shape ``(..., normalized_shape)``; output shape equals input shape.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-5):
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) != 1:
                raise ValueError(
                    "LayerNorm: only normalisation over the last axis is supported, "
                    f"got normalized_shape={tuple(normalized_shape)}"
                )
            normalized_shape = normalized_shape[0]
        (normalized_shape,) = positive_sizes("LayerNorm", normalized_shape=normalized_shape)
        self.normalized_shape, self.eps = int(normalized_shape), eps
        self.gamma = Parameter(init.ones(normalized_shape), name="gamma")
        self.beta = Parameter(init.zeros(normalized_shape), name="beta")

    def forward(self, x) -> Variable:
        x = as_variable(x)
        real_input(self, x, self.gamma)
        if x.ndim == 0 or x.shape[-1] != self.normalized_shape:
            raise ValueError(
                f"LayerNorm: expected input of shape (..., {self.normalized_shape}), "
                f"got shape {x.shape}"
            )
        return F.layer_norm(x, self.gamma, self.beta, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class Embedding(Module):
    """Lookup table from integer ids to learned vectors.

    Parameters
    ----------
    num_embeddings : int
        Number of ids; valid ids are ``0 .. num_embeddings - 1``.
    embedding_dim : int
        Length of each vector.

    Attributes
    ----------
    W : Parameter
        Shape ``(num_embeddings, embedding_dim)``, float32, standard normal as in PyTorch (each
        row is one vector, so there is no fan-in to scale by).

    Notes
    -----
    Input: integer ids of any shape ``S``; output shape ``S + (embedding_dim,)``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int):
        super().__init__()
        num_embeddings, embedding_dim = positive_sizes(
            "Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim
        )
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.W = Parameter(
            np.random.standard_normal((num_embeddings, embedding_dim)).astype(np.float32), name="W"
        )

    def forward(self, x) -> Variable:
        return F.embed_id(x, self.W)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
