"""``nn.Module``: the base class of layers and models.

A Module registers every Parameter and sub-Module assigned to it as an attribute, in
definition order, and offers what training needs on top: walking parameters, switching
train/eval, moving to a device, weight dicts and ``.npy`` checkpoints, and a picture of the
layers of the last forward pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from pygrad import backends
from pygrad._config import Config
from pygrad._release import OutputRef
from pygrad.backends import is_array, to_host
from pygrad.core import Parameter, Variable

__all__ = ["Module", "LoadReport"]

# Records the leaf-layer calls of the outermost Module call in progress (None when idle).
_active_trace: list | None = None


class LayerCall(NamedTuple):
    """One call of a leaf layer during a forward pass, as kept for :meth:`Module.plot`."""

    module: Module
    inputs: tuple  # weak references to the input Variables
    outputs: tuple  # weak references to the output Variables
    input_shapes: tuple
    output_shapes: tuple


class ForwardTrace(NamedTuple):
    """The layer calls of one forward pass of a model and the data flow between them.

    ``edges`` are ``(tail, head, ops)`` triples between the nodes ``"in{i}"`` (the model's
    inputs), ``"layer{k}"`` (the k-th layer call) and ``"out{j}"`` (its outputs), ``ops``
    naming the functions applied on the way.  They are found when the call returns, while
    the graph is alive, so that a picture needs neither the outputs nor the graph later.
    ``recorded`` tells whether the graph was recorded at all (it is not under ``no_grad``).
    """

    calls: list
    input_shapes: tuple
    output_shapes: tuple
    edges: list
    recorded: bool


def _sources_of(variable: Variable, producers: dict) -> dict:
    """Walk back from ``variable`` to the nearest variables in ``producers``.

    Returns ``{producer node id: names of the functions crossed on the way}``: the functional
    ops (such as ``ReLU``) applied between two layers, in the order they ran.
    """
    sources = {}
    stack, seen = [(variable, ())], set()
    while stack:
        current, crossed = stack.pop()
        node = producers.get(id(current))
        if node is not None:
            sources.setdefault(node, tuple(reversed(crossed)))
            continue
        creator = getattr(current, "creator", None)  # arrays given to a model have none
        if creator is None or creator in seen:
            continue
        seen.add(creator)
        crossed += (type(creator).__name__,)
        stack.extend((x, crossed) for x in reversed(creator.inputs))
    return sources


def _data_flow(calls: list, inputs: tuple, outputs: tuple) -> list:
    """The ``edges`` of a :class:`ForwardTrace` (see there), in call order."""
    producers, edges = {}, []
    alive = list(inputs)  # holds what is registered, so that no id is reused meanwhile

    def connect(head: str, variables) -> None:
        for variable in variables:
            for tail, ops in _sources_of(variable, producers).items():
                edges.append((tail, head, ops))

    for index, variable in enumerate(inputs):
        producers[id(variable)] = f"in{index}"
    for index, call in enumerate(calls):
        node = f"layer{index}"
        # Edges come before the outputs are registered: a layer that returns its input
        # (dropout in eval mode) must not be drawn feeding itself.
        connect(node, [v for v in (ref() for ref in call.inputs) if v is not None])
        for variable in (ref() for ref in call.outputs):
            if variable is not None:
                producers[id(variable)] = node
                alive.append(variable)
    for index, variable in enumerate(outputs):
        connect(f"out{index}", [variable])
    return edges


class LoadReport(NamedTuple):
    """What :meth:`Module.load_weight_dict` could not load (empty lists when all matched)."""

    missing_keys: list
    unexpected_keys: list
    mismatched: list  # (name, expected shape/dtype, given shape/dtype) triples


def _variables(values) -> tuple:
    """The Variables and arrays among a call's inputs or outputs, in order."""
    if isinstance(values, Variable) or is_array(values):
        return (values,)
    if isinstance(values, (tuple, list)):
        found = ()
        for value in values:
            found += _variables(value)
        return found
    return ()


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()``, assign Parameters, sub-Modules (and arrays they
    want saved through :meth:`register_buffer`) as attributes, and define ``forward``.

    Examples
    --------
    >>> class MLP(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(4, 8)
    ...         self.fc2 = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.fc2(F.relu(self.fc1(x)))
    >>> [name for name, _ in MLP().named_params()]
    ['fc1.W', 'fc1.b', 'fc2.W', 'fc2.b']
    """

    def __init__(self):
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_trace", None)

    def _registry(self, name: str) -> dict:
        if "_params" not in self.__dict__:
            Module.__init__(self)
        return self.__dict__[name]

    def __setattr__(self, name: str, value) -> None:
        params, children, buffers = (
            self._registry("_params"),
            self._registry("_children"),
            self._registry("_buffers"),
        )
        # A name keeps its place when it is assigned again in its own registry (as in
        # PyTorch); it leaves the registries whose kind its new value no longer has.
        if not isinstance(value, Parameter):
            params.pop(name, None)
        if not isinstance(value, Module):
            children.pop(name, None)
        if name in buffers and not isinstance(value, Variable):
            buffers[name] = value
        else:
            buffers.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            children[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        for registry in ("_params", "_children", "_buffers"):
            self._registry(registry).pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` as state that is saved and moved with the module but not trained."""
        self._registry("_buffers")[name] = array
        object.__setattr__(self, name, array)

    # --- calling ---------------------------------------------------------------------------
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *inputs, **kwargs):
        global _active_trace
        if _active_trace is not None:
            outputs = self.forward(*inputs, **kwargs)
            if not self._children:
                _active_trace.append(self._record(inputs, outputs))
            return outputs
        trace = _active_trace = []
        try:
            outputs = self.forward(*inputs, **kwargs)
        finally:
            _active_trace = None
        if not self._children:
            trace.append(self._record(inputs, outputs))
        ins, outs = _variables(inputs), _variables(outputs)
        recorded = Config.enable_backprop
        self._trace = ForwardTrace(
            trace,
            tuple(v.shape for v in ins),
            tuple(v.shape for v in outs),
            _data_flow(trace, ins, outs) if recorded else [],
            recorded,
        )
        return outputs

    def _record(self, inputs, outputs) -> LayerCall:
        ins, outs = _variables(inputs), _variables(outputs)
        return LayerCall(
            self,
            # The graph's own reference type: a trace, which reads no data, must not keep
            # intermediate arrays from being released.
            tuple(OutputRef(v) for v in ins),
            tuple(OutputRef(v) for v in outs),
            tuple(v.shape for v in ins),
            tuple(v.shape for v in outs),
        )

    # --- walking ---------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted name, module)`` for this module and every sub-module, in order."""
        yield prefix, self
        for name, child in self._registry("_children").items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        """Yield this module and every sub-module, in definition order."""
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        """Yield the direct sub-modules, in definition order."""
        yield from self._registry("_children").values()

    def named_params(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted name, parameter)`` pairs such as ``("fc1.W", W)``, in definition order.

        A parameter shared by several modules is yielded once, under its first name.
        """
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._registry("_params").items():
                if id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def params(self) -> Iterator[Parameter]:
        """Yield every parameter once, in definition order."""
        for _, param in self.named_params():
            yield param

    parameters = params

    def named_buffers(self) -> Iterator[tuple[str, object]]:
        """Yield ``(dotted name, array)`` for every registered buffer."""
        for module_name, module in self.named_modules():
            for name, array in module._registry("_buffers").items():
                yield (f"{module_name}.{name}" if module_name else name), array

    # --- modes and devices -------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Switch this module and every sub-module to training (or, with False, evaluation)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Switch to evaluation mode: dropout off, batch norm uses running statistics."""
        return self.train(False)

    def to(self, device: str) -> Module:
        """Move every parameter, gradient and buffer to ``device`` in place; return ``self``."""
        device = backends.parse_device(device)
        for param in self.params():
            param.data = backends.to_device(param.data, device)
            if param.grad is not None:
                param.grad.data = backends.to_device(param.grad.data, device)
        for module in self.modules():
            buffers = module._registry("_buffers")
            for name, array in buffers.items():
                if array is not None:
                    moved = backends.to_device(array, device)
                    buffers[name] = moved
                    object.__setattr__(module, name, moved)
        return self

    @property
    def device(self) -> str:
        """The device of the first parameter ("cpu" for a module without parameters)."""
        for param in self.params():
            return param.device
        return "cpu"

    def zero_grad(self) -> None:
        """Set the gradient of every parameter to None."""
        for param in self.params():
            param.grad = None

    cleargrads = zero_grad

    def map_parameters(self, fn) -> Module:
        """Replace each parameter's data with ``fn(data)``; return ``self``."""
        for param in self.params():
            param.data = fn(param.data)
        return self

    # --- weights and checkpoints -------------------------------------------------------------
    def _state_items(self) -> Iterator[tuple[str, object]]:
        for name, param in self.named_params():
            yield name, param.data
        yield from ((name, array) for name, array in self.named_buffers() if array is not None)

    def weight_dict(self) -> dict:
        """Return the weights as a nested dict of NumPy arrays, e.g. ``{'fc1': {'W': ..., 'b': ...}}``.

        Registered buffers (such as batch norm's running statistics) are included.
        """
        from pygrad.serialization import unflatten_dict

        return unflatten_dict({name: to_host(array) for name, array in self._state_items()})

    def load_weight_dict(self, weights: dict, strict: bool = True) -> LoadReport:
        """Copy ``weights`` (a nested or dotted dict of arrays) into the parameters, in place.

        Parameters
        ----------
        weights : dict
            As returned by :meth:`weight_dict` (nested) or with dotted keys (``"fc1.W"``).
        strict : bool
            When True, a missing key, an unexpected key, or a shape or dtype mismatch raises
            a KeyError/ValueError naming the parameter and both shapes, and nothing is loaded.
            When False, what matches is loaded and the rest is returned.

        Returns
        -------
        LoadReport
            ``missing_keys``, ``unexpected_keys`` and ``mismatched`` entries.
        """
        from pygrad.serialization import flatten_dict

        given = flatten_dict(weights)
        targets = dict(self._state_items())
        missing = [name for name in targets if name not in given]
        unexpected = [name for name in given if name not in targets]
        mismatched, matched = [], []
        for name, current in targets.items():
            if name not in given:
                continue
            value = np.asarray(given[name])
            if value.shape != current.shape or value.dtype != current.dtype:
                mismatched.append(
                    (name, f"{current.shape} {current.dtype}", f"{value.shape} {value.dtype}")
                )
            else:
                matched.append((name, value))
        if strict and (missing or unexpected or mismatched):
            problems = []
            if missing:
                problems.append(f"missing keys: {', '.join(missing)}")
            if unexpected:
                problems.append(f"unexpected keys: {', '.join(unexpected)}")
            for name, expected, got in mismatched:
                problems.append(
                    f"{name}: the model has shape/dtype {expected}, the weights have {got}"
                )
            error = ValueError if mismatched else KeyError
            raise error(f"load_weight_dict: {type(self).__name__}: " + "; ".join(problems))
        self._assign(dict(matched))
        return LoadReport(missing, unexpected, mismatched)

    def _assign(self, values: dict) -> None:
        params = dict(self.named_params())
        owners = {}
        for module_name, module in self.named_modules():
            for name in module._registry("_buffers"):
                owners[f"{module_name}.{name}" if module_name else name] = (module, name)
        for name, value in values.items():
            if name in params:
                param = params[name]
                if type(param.data) is np.ndarray:
                    param.data[...] = value
                else:
                    param.data = backends.to_device(value.copy(), param.device)
            else:
                module, attr = owners[name]
                current = module._registry("_buffers")[attr]
                if type(current) is np.ndarray:
                    current[...] = value
                else:
                    moved = backends.to_device(value.copy(), backends.device_of(current))
                    module._registry("_buffers")[attr] = moved
                    object.__setattr__(module, attr, moved)

    def save(self, path) -> None:
        """Write every weight to one ``.npy`` file (``".npy"`` appended when missing).

        The file holds no pickle: ``numpy.load(path, allow_pickle=False)`` reads it.  The write
        is atomic and missing parent folders are created.
        """
        from pygrad.serialization import save_weights

        return save_weights(path, self.weight_dict())

    def load(self, path) -> None:
        """Load weights saved by :meth:`save` (or by pygrad 0.1.0) with strict checks.

        pygrad 0.1.0's checkpoints stored dropout rates next to the weights; such plain numbers
        are ignored.  Their weights were float64 (0.1.0 initialised them with NumPy's default
        dtype), so floating-point weights of such a file are cast to the dtype of the
        parameter they load into; in files written by :meth:`save` a dtype mismatch is an
        error, like a shape mismatch.
        """
        from pygrad.serialization import flatten_dict, read_weights

        kind, saved = read_weights(path)
        targets = dict(self._state_items())
        weights = {
            name: value
            for name, value in flatten_dict(saved).items()
            if isinstance(value, np.ndarray) and value.ndim > 0 or name in targets
        }
        if kind == "legacy":
            for name, value in weights.items():
                target = targets.get(name)
                if target is not None and value.dtype.kind == target.dtype.kind == "f":
                    weights[name] = np.asarray(value, dtype=target.dtype)
        self.load_weight_dict(weights, strict=True)

    # --- display -----------------------------------------------------------------------------
    def plot(self, to_file: str = "model.png", verbose: bool = True):
        """Draw the layers of the last forward pass, in call order, with input and output shapes.

        Raises
        ------
        RuntimeError
            Before any forward pass, or when Graphviz's ``dot`` is not installed.
        """
        from pygrad import viz

        return viz.plot_model(self, to_file=to_file, verbose=verbose)

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's ``repr`` (override in layers)."""
        return ""

    def __repr__(self) -> str:
        children = self._registry("_children")
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)
