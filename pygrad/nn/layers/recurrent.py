"""Recurrent layers on batch-first sequences: RNN, LSTM and GRU.

Each takes ``x`` of shape ``(N, T, input_size)`` and an optional initial state, and returns
``(outputs, final_state)`` with outputs of shape ``(N, T, hidden_size)``.  The input
projection of all time steps is one matrix product; only the recurrent part loops over time.
"""

from __future__ import annotations

from pygrad import functions as F
from pygrad.backends import get_array_module
from pygrad.core import Parameter, Variable, as_variable
from pygrad.nn import init
from pygrad.nn.layers._checks import positive_sizes, real_input
from pygrad.nn.module import Module

__all__ = ["RNN", "LSTM", "GRU"]


class _Recurrent(Module):
    """Shared parameters and helpers; ``gates`` blocks of ``hidden_size`` columns each."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        input_size, hidden_size = positive_sizes(
            type(self).__name__, input_size=input_size, hidden_size=hidden_size
        )
        self.input_size, self.hidden_size = input_size, hidden_size
        width = self.gates * hidden_size
        # PyTorch's choice for recurrent layers: every weight uniform in ±1/sqrt(hidden_size).
        self.W_x = Parameter(init.uniform_fan_in((input_size, width), hidden_size), name="W_x")
        self.W_h = Parameter(init.uniform_fan_in((hidden_size, width), hidden_size), name="W_h")
        self.b = Parameter(init.uniform_fan_in(width, hidden_size), name="b") if bias else None

    def _project_inputs(self, x: Variable) -> list:
        """``x_t @ W_x + b`` of every step ``t``, as one matrix product: a list of ``T``
        Variables of shape ``(N, gates * hidden_size)``."""
        real_input(self, x, self.W_x)
        if x.ndim != 3 or x.shape[2] != self.input_size or x.shape[1] == 0:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (N, T, {self.input_size}) "
                f"with T >= 1, got shape {x.shape}"
            )
        n, steps, _ = x.shape
        width = self.gates * self.hidden_size
        projected = F.linear(x, self.W_x, self.b)
        # One split for all steps keeps backward linear in T (indexing each step would build
        # a full-size gradient per step).
        return [F.reshape(step, (n, width)) for step in F.split(projected, steps, axis=1)]

    def _initial(self, x: Variable, state, name: str) -> Variable:
        """The given initial ``state`` (checked), or zeros on the device of ``x``."""
        shape = (x.shape[0], self.hidden_size)
        if state is None:
            xp = get_array_module(x.data)
            return Variable(xp.zeros(shape, dtype=x.dtype))
        state = as_variable(state)
        if state.shape != shape:
            raise ValueError(
                f"{type(self).__name__}: expected an initial {name} of shape {shape}, "
                f"got {state.shape}"
            )
        return state

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.b is not None}"


class RNN(_Recurrent):
    """Elman RNN: ``h_t = tanh(x_t @ W_x + h_{t-1} @ W_h + b)``.

    Parameters
    ----------
    input_size : int
        Size ``I`` of the last axis of the input.
    hidden_size : int
        Size ``H`` of the hidden state.
    bias : bool
        Whether to learn the bias ``b``.

    Attributes
    ----------
    W_x : Parameter
        Shape ``(I, H)``, PyTorch's ``weight_ih_l0`` transposed.
    W_h : Parameter
        Shape ``(H, H)``, PyTorch's ``weight_hh_l0`` transposed.
    b : Parameter or None
        Shape ``(H,)``, PyTorch's ``bias_ih_l0 + bias_hh_l0``.

    Every weight starts uniform in ``±1/sqrt(H)``, as in PyTorch.

    Notes
    -----
    ``forward(x, h=None)`` takes ``x`` of shape ``(N, T, I)`` and an initial state ``h`` of
    shape ``(N, H)`` (zeros when None), and returns ``(outputs, h_T)``: outputs of shape
    ``(N, T, H)`` (the state after every step) and the final state of shape ``(N, H)``.
    """

    def forward(self, x, h=None):
        x = as_variable(x)
        steps = self._project_inputs(x)
        h = self._initial(x, h, "state h")
        outputs = []
        for step in steps:
            h = F.tanh(step + F.matmul(h, self.W_h))
            outputs.append(h)
        return F.stack(outputs, axis=1), h


class LSTM(_Recurrent):
    """Long short-term memory, with gates in PyTorch's order (input, forget, cell, output).

    ``z = x_t @ W_x + h_{t-1} @ W_h + b`` is split into four blocks ``i, f, g, o``;
    ``c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)`` and ``h_t = sigmoid(o) * tanh(c_t)``.

    Parameters
    ----------
    input_size : int
        Size ``I`` of the last axis of the input.
    hidden_size : int
        Size ``H`` of the hidden and cell states.
    bias : bool
        Whether to learn the bias ``b``.

    Attributes
    ----------
    W_x : Parameter
        Shape ``(I, 4H)``, PyTorch's ``weight_ih_l0`` transposed.
    W_h : Parameter
        Shape ``(H, 4H)``, PyTorch's ``weight_hh_l0`` transposed.
    b : Parameter or None
        Shape ``(4H,)``, PyTorch's ``bias_ih_l0 + bias_hh_l0``.

    Every weight starts uniform in ``±1/sqrt(H)``, as in PyTorch.

    Notes
    -----
    ``forward(x, state=None)`` takes ``x`` of shape ``(N, T, I)`` and an initial state
    ``(h, c)``, each of shape ``(N, H)`` (zeros when None), and returns
    ``(outputs, (h_T, c_T))`` with outputs of shape ``(N, T, H)``.
    """

    gates = 4

    def forward(self, x, state=None):
        x = as_variable(x)
        steps = self._project_inputs(x)
        if state is None:
            state = (None, None)
        elif not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError(
                f"LSTM: the initial state must be a pair (h, c), got {type(state).__name__}"
            )
        h, c = self._initial(x, state[0], "state h"), self._initial(x, state[1], "cell c")
        outputs = []
        for step in steps:
            i, f, g, o = F.split(step + F.matmul(h, self.W_h), 4, axis=1)
            c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
            h = F.sigmoid(o) * F.tanh(c)
            outputs.append(h)
        return F.stack(outputs, axis=1), (h, c)


class GRU(_Recurrent):
    """Gated recurrent unit in PyTorch's formulation (the reset gate scales ``h @ W_hn + b_hn``).

    With ``x_t @ W_x + b`` split into ``(a_r, a_z, a_n)`` and ``h_{t-1} @ W_h + b_h`` into
    ``(u_r, u_z, u_n)``: ``r = sigmoid(a_r + u_r)``, ``z = sigmoid(a_z + u_z)``,
    ``n = tanh(a_n + r * u_n)`` and ``h_t = (1 - z) * n + z * h_{t-1}``.

    Parameters
    ----------
    input_size : int
        Size ``I`` of the last axis of the input.
    hidden_size : int
        Size ``H`` of the hidden state.
    bias : bool
        Whether to learn the biases ``b`` and ``b_h``.

    Attributes
    ----------
    W_x : Parameter
        Shape ``(I, 3H)``, PyTorch's ``weight_ih_l0`` transposed (gates r, z, n).
    W_h : Parameter
        Shape ``(H, 3H)``, PyTorch's ``weight_hh_l0`` transposed.
    b, b_h : Parameter or None
        Shape ``(3H,)`` each, PyTorch's ``bias_ih_l0`` and ``bias_hh_l0`` (kept apart because
        the reset gate multiplies the recurrent part only).

    Every weight starts uniform in ``±1/sqrt(H)``, as in PyTorch.

    Notes
    -----
    ``forward(x, h=None)`` takes ``x`` of shape ``(N, T, I)`` and an initial state ``h`` of
    shape ``(N, H)`` (zeros when None), and returns ``(outputs, h_T)`` with outputs of shape
    ``(N, T, H)`` and ``h_T`` of shape ``(N, H)``.
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
        steps = self._project_inputs(x)
        h = self._initial(x, h, "state h")
        outputs = []
        for step in steps:
            a_r, a_z, a_n = F.split(step, 3, axis=1)
            u_r, u_z, u_n = F.split(F.linear(h, self.W_h, self.b_h), 3, axis=1)
            r = F.sigmoid(a_r + u_r)
            z = F.sigmoid(a_z + u_z)
            n = F.tanh(a_n + r * u_n)
            h = (1 - z) * n + z * h
            outputs.append(h)
        return F.stack(outputs, axis=1), h
