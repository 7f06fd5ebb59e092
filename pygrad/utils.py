"""Checks and graph walks: finite-difference gradient checks and the order of a graph."""

from __future__ import annotations

import numpy as np

from pygrad._config import no_grad
from pygrad.backends import to_host
from pygrad.core import Function, Variable

__all__ = [
    "numerical_grad",
    "gradient_check",
    "topological_order",
    "leaves",
    "get_dot_graph",
    "plot_dot_graph",
]


def _host(x) -> np.ndarray:
    data = x.data if isinstance(x, Variable) else x
    return np.array(to_host(data), dtype=np.float64)


def _scalar_of(f, inputs, weights):
    """Evaluate ``sum(f(*inputs) * weights)`` as a Python float, without recording a graph."""
    with no_grad():
        ys = f(*inputs)
    ys = ys if isinstance(ys, (tuple, list)) else (ys,)
    return float(sum(np.sum(_host(y) * w) for y, w in zip(ys, weights)))


def numerical_grad(f, x, *others, eps: float = 1e-6):
    """Central-difference gradient of ``sum(f(x, *others))`` with respect to ``x``, per element.

    Parameters
    ----------
    f : callable
        Takes Variables and returns a Variable (or a tuple of them).
    x : Variable or numpy.ndarray
        The point; computed in float64 on the host.
    eps : float
        Step of the central difference.

    Returns
    -------
    numpy.ndarray
        Same shape as ``x``.
    """
    point = _host(x)
    rest = [Variable(_host(o)) for o in others]
    with no_grad():
        ys = f(Variable(point), *rest)
    ys = ys if isinstance(ys, (tuple, list)) else (ys,)
    weights = [np.ones(y.shape) for y in ys]
    return _numerical_grad_weighted(f, [Variable(point)] + rest, 0, weights, eps)


def _numerical_grad_weighted(f, inputs, index, weights, eps):
    point = inputs[index].data
    grad = np.zeros_like(point)
    flat_point, flat_grad = point.reshape(-1), grad.reshape(-1)
    for i in range(flat_point.size):
        original = flat_point[i]
        flat_point[i] = original + eps
        up = _scalar_of(f, inputs, weights)
        flat_point[i] = original - eps
        down = _scalar_of(f, inputs, weights)
        flat_point[i] = original
        flat_grad[i] = (up - down) / (2 * eps)
    return grad


def gradient_check(
    f, *inputs, rtol: float = 1e-4, atol: float = 1e-5, eps: float = 1e-6, seed: int = 0
) -> bool:
    """Compare backprop's gradients of ``f`` with central differences, element by element.

    Every input is copied to float64 on the host.  The output is reduced to a scalar with
    fixed random weights, so every element of the Jacobian takes part.

    Parameters
    ----------
    f : callable
        Takes one Variable per input and returns a Variable (or a tuple of them).
    *inputs : Variable, numpy.ndarray or number
        The point at which to check.
    rtol, atol : float
        Tolerances of ``numpy.allclose``.

    Returns
    -------
    bool
        True when every gradient agrees; False otherwise (the first mismatch is printed).
    """
    rng = np.random.default_rng(seed)
    variables = [Variable(_host(x)) for x in inputs]
    ys = f(*variables)
    ys = ys if isinstance(ys, (tuple, list)) else (ys,)
    weights = [rng.standard_normal(y.shape) for y in ys]
    loss = None
    for y, w in zip(ys, weights):
        term = (y * Variable(w)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    for index, v in enumerate(variables):
        numeric = _numerical_grad_weighted(f, variables, index, weights, eps)
        analytic = np.zeros_like(numeric) if v.grad is None else _host(v.grad)
        if analytic.shape != numeric.shape or not np.allclose(
            analytic, numeric, rtol=rtol, atol=atol
        ):
            error = (
                np.max(np.abs(analytic - numeric)) if analytic.shape == numeric.shape else "shape"
            )
            print(f"gradient_check: input {index} of shape {v.shape}: max abs error {error}")
            print(f"  backprop:\n{analytic}\n  numerical:\n{numeric}")
            return False
    return True


def topological_order(output: Variable) -> list[Function]:
    """The functions behind ``output``, each once, inputs first (the order of the forward pass)."""
    order, seen = [], set()
    stack = [(output.creator, False)] if output.creator is not None else []
    while stack:
        f, expanded = stack.pop()
        if expanded:
            order.append(f)
            continue
        if f in seen:
            continue
        seen.add(f)
        stack.append((f, True))
        for x in reversed(f.inputs):
            if x.creator is not None and x.creator not in seen:
                stack.append((x.creator, False))
    return order


def leaves(output: Variable) -> list[Variable]:
    """The leaf Variables and Parameters (no creator) that ``output`` depends on, in order."""
    if output.creator is None:
        return [output]
    found, seen = [], set()
    for f in topological_order(output):
        for x in f.inputs:
            if x.creator is None and id(x) not in seen:
                seen.add(id(x))
                found.append(x)
    return found


def get_dot_graph(output: Variable, verbose: bool = True) -> str:
    """DOT source of the computational graph behind ``output`` (see :mod:`pygrad.viz`)."""
    from pygrad import viz

    return viz.get_dot_graph(output, verbose=verbose)


def plot_dot_graph(output: Variable, verbose: bool = True, to_file: str = "graph.png"):
    """Render the computational graph behind ``output`` with Graphviz (see :mod:`pygrad.viz`)."""
    from pygrad import viz

    return viz.plot_dot_graph(output, verbose=verbose, to_file=to_file)
