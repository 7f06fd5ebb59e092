"""Recurrent layers on batch-first sequences: RNN, LSTM and GRU.

Each takes ``x`` of shape ``(N, T, input_size)`` and an optional initial state, and returns
``(outputs, final_state)`` with outputs of shape ``(N, T, hidden_size)``.  The input
projection of all time steps is one matrix product; only the recurrent part loops over time.
"""

from __future__ import annotations

from pygrad import functions as F
from pygrad.core import Parameter, Variable, as_variable
from pygrad.nn import init
from pygrad.nn.module import Module

__all__ = ["RNN", "LSTM", "GRU"]


class _Recurrent(Module):
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(
                f"{type(self).__name__}: sizes must be positive, got input_size={input_size}, "
                f"hidden_size={hidden_size}"
            )
        self.input_size, self.hidden_size = input_size, hidden_size
        width = self.gates * hidden_size
        # PyTorch's choice for recurrent layers: every weight uniform in ±1/sqrt(hidden_size).
        self.W_x = Parameter(init.uniform_fan_in((input_size, width), hidden_size), name="W_x")
        self.W_h = Parameter(init.uniform_fan_in((hidden_size, width), hidden_size), name="W_h")
        self.b = Parameter(init.uniform_fan_in(width, hidden_size), name="b") if bias else None

    def _project_inputs(self, x: Variable) -> Variable:
        """``x @ W_x + b`` for every time step at once: ``(N, T, I) -> (N, T, gates * H)``."""
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (N, T, {self.input_size}), got {x.shape}"
            )
        n, steps, _ = x.shape
        projected = F.linear(F.reshape(x, (n * steps, self.input_size)), self.W_x, self.b)
        return F.reshape(projected, (n, steps, self.gates * self.hidden_size))

    def _initial(self, x: Variable, state):
        if state is None:
            xp_zeros = x.data[:, 0, :1] * 0
            return as_variable(
                F.broadcast_to(Variable(xp_zeros), (x.shape[0], self.hidden_size)).data.copy()
            )
        state = as_variable(state)
        if state.shape != (x.shape[0], self.hidden_size):
            raise ValueError(
                f"{type(self).__name__}: expected a state of shape ({x.shape[0]}, {self.hidden_size}), "
                f"got {state.shape}"
            )
        return state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.b is not None}"


class RNN(_Recurrent):
    """Elman RNN: ``h_t = tanh(x_t @ W_x + h_{t-1} @ W_h + b)``.

    Returns ``(outputs, h)`` with outputs ``(N, T, hidden_size)`` and ``h`` ``(N, hidden_size)``.
    """

    def forward(self, x, h=None):
        x = as_variable(x)
        projected = self._project_inputs(x)
        h = self._initial(x, h)
        outputs = []
        for t in range(x.shape[1]):
            h = F.tanh(projected[:, t] + F.matmul(h, self.W_h))
            outputs.append(h)
        return F.stack(outputs, axis=1), h


class LSTM(_Recurrent):
    """Long short-term memory with gates in PyTorch's order (input, forget, cell, output).

    Returns ``(outputs, (h, c))``; the state given to ``forward`` is an ``(h, c)`` pair.
    """

    gates = 4

    def forward(self, x, state=None):
        x = as_variable(x)
        projected = self._project_inputs(x)
        h0, c0 = (None, None) if state is None else state
        h, c = self._initial(x, h0), self._initial(x, c0)
        size = self.hidden_size
        outputs = []
        for t in range(x.shape[1]):
            z = projected[:, t] + F.matmul(h, self.W_h)
            i = F.sigmoid(z[:, :size])
            f = F.sigmoid(z[:, size : 2 * size])
            g = F.tanh(z[:, 2 * size : 3 * size])
            o = F.sigmoid(z[:, 3 * size :])
            c = f * c + i * g
            h = o * F.tanh(c)
            outputs.append(h)
        return F.stack(outputs, axis=1), (h, c)


class GRU(_Recurrent):
    """Gated recurrent unit in PyTorch's formulation (reset gate applied after ``h @ W_hn``).

    Has separate recurrent biases ``b_h`` as PyTorch does.  Returns ``(outputs, h)``.
    """

    gates = 3

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__(input_size, hidden_size, bias)
        self.b_h = (
            Parameter(init.uniform_fan_in(3 * hidden_size, hidden_size), name="b_h")
            if bias
            else None
        )

    def forward(self, x, h=None):
        x = as_variable(x)
        projected = self._project_inputs(x)
        h = self._initial(x, h)
        size = self.hidden_size
        outputs = []
        for t in range(x.shape[1]):
            zx = projected[:, t]
            zh = F.linear(h, self.W_h, self.b_h)
            r = F.sigmoid(zx[:, :size] + zh[:, :size])
            z = F.sigmoid(zx[:, size : 2 * size] + zh[:, size : 2 * size])
            n = F.tanh(zx[:, 2 * size :] + r * zh[:, 2 * size :])
            h = (1 - z) * n + z * h
            outputs.append(h)
        return F.stack(outputs, axis=1), h
