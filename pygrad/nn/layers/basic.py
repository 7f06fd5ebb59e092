"""Basic layers: Linear, Sequential, Flatten, Dropout and the activation modules."""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Real

from pygrad import functions as F
from pygrad._config import Config, using_config
from pygrad.core import Parameter, Variable, as_variable
from pygrad.nn import init
from pygrad.nn.layers._checks import positive_sizes, real_input
from pygrad.nn.module import Module

__all__ = ["Linear", "Sequential", "Flatten", "Dropout", "ReLU", "Sigmoid", "Tanh"]


class Linear(Module):
    """Fully connected layer ``y = x @ W + b`` with ``W`` of shape ``(in_size, out_size)``.

    Parameters
    ----------
    in_size, out_size : int
        Sizes of the last axis of the input and of the output.
    bias : bool
        Whether to learn an additive bias ``b`` of shape ``(out_size,)``.

    Attributes
    ----------
    W : Parameter
        Shape ``(in_size, out_size)`` (the transpose of PyTorch's ``weight``), float32, drawn
        with He scaling: normal with ``std = sqrt(2 / in_size)``.
    b : Parameter or None
        Shape ``(out_size,)``, float32, starting at zero.

    Notes
    -----
    Input shape ``(..., in_size)``, output shape ``(..., out_size)``.

    Examples
    --------
    >>> fc = Linear(4, 3)
    >>> fc(np.ones((2, 4), np.float32)).shape
    (2, 3)
    """

    def __init__(self, in_size: int, out_size: int, bias: bool = True):
        super().__init__()
        in_size, out_size = positive_sizes("Linear", in_size=in_size, out_size=out_size)
        self.in_size, self.out_size = in_size, out_size
        self.W = Parameter(init.he_normal((in_size, out_size), in_size), name="W")
        self.b = Parameter(init.zeros(out_size), name="b") if bias else None

    def forward(self, x) -> Variable:
        x = as_variable(x)
        real_input(self, x, self.W)
        if x.ndim == 0 or x.shape[-1] != self.in_size:
            raise ValueError(
                f"Linear: expected input of shape (..., {self.in_size}), got shape {x.shape}"
            )
        return F.linear(x, self.W, self.b)

    def extra_repr(self) -> str:
        return f"in_size={self.in_size}, out_size={self.out_size}, bias={self.b is not None}"


class Sequential(Module):
    """Chain of layers applied in order; sub-modules are named ``"0"``, ``"1"``, ...

    Parameters
    ----------
    *layers : Module
        The layers, each called on the output of the previous one.

    Examples
    --------
    >>> model = Sequential(Linear(4, 8), ReLU(), Linear(8, 2))
    >>> model[0]
    Linear(in_size=4, out_size=8, bias=True)
    >>> len(model[1:])
    2
    """

    def __init__(self, *layers: Module):
        super().__init__()
        for index, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential: item {index} is a {type(layer).__name__}, not a Module"
                )
            setattr(self, str(index), layer)

    def forward(self, x):
        for layer in self._children.values():
            x = layer(x)
        return x

    def __getitem__(self, index):
        layers = list(self._children.values())
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._children.values())


class Flatten(Module):
    """Flatten every axis but the batch axis: ``(N, ...) -> (N, prod(...))``."""

    def forward(self, x) -> Variable:
        return F.flatten(x)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability ``dropout`` and scale
    the rest by ``1 / (1 - dropout)``; in evaluation (or under ``test_mode()``), the identity.

    Parameters
    ----------
    dropout : float
        The rate, in ``[0, 1)``.  It is a setting, not a parameter: neither trained nor saved.

    Notes
    -----
    Output shape equals input shape.
    """

    def __init__(self, dropout: float = 0.5):
        super().__init__()
        if isinstance(dropout, bool) or not isinstance(dropout, Real):
            raise TypeError(f"Dropout: the rate must be a number, got {dropout!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"Dropout: the rate must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)

    def forward(self, x) -> Variable:
        x = as_variable(x)
        if not (self.training and Config.train) or self.dropout == 0.0:
            return x
        # The module's own mode decides, so force the function's train switch on.
        with using_config("train", True):
            return F.dropout(x, self.dropout)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}"


class ReLU(Module):
    """``max(x, 0)`` elementwise; output shape equals input shape."""

    def forward(self, x) -> Variable:
        return F.relu(x)


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` elementwise; output shape equals input shape."""

    def forward(self, x) -> Variable:
        return F.sigmoid(x)


class Tanh(Module):
    """Hyperbolic tangent elementwise; output shape equals input shape."""

    def forward(self, x) -> Variable:
        return F.tanh(x)
