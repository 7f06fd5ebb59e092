"""``nn.Module``: the base class of layers and models.

A Module registers every Parameter and sub-Module assigned to it as an attribute, in
definition order, and offers what training needs on top: walking parameters, switching
train/eval, moving to a device, weight dicts and ``.npy`` checkpoints (written by
:mod:`pygrad.serialization`), and a picture of its layers (drawn by :mod:`pygrad.viz`).
Calling a module runs ``forward`` and keeps only the shapes of its arguments, for the picture.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from pygrad import backends
from pygrad._config import using_config
from pygrad.backends import device_of, is_array, to_host
from pygrad.core import Parameter, Variable

__all__ = ["Module", "LoadReport"]


class _Tracing(threading.local):
    """The layer calls being recorded while :meth:`Module.plot` traces a forward pass in this
    thread (``None`` otherwise).  Per thread, so that models called in other threads meanwhile
    are neither recorded nor slowed down."""

    calls = None


_tracing = _Tracing()


class _Kind:
    """The first item of a spec ``(kind, shape, dtype, device)``: what the argument was."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


_VARIABLE, _ARRAY = _Kind("Variable"), _Kind("array")


class LayerCall(NamedTuple):
    """One call of a leaf layer during a traced forward pass, as drawn by :meth:`Module.plot`."""

    name: str  # dotted attribute name in the traced model ("" for the model or an unnamed layer)
    kind: str  # class name
    input_shapes: tuple
    output_shapes: tuple


class ForwardTrace(NamedTuple):
    """The leaf-layer calls of one traced forward pass and the data flow between them.

    ``edges`` are ``(tail, head, ops)`` triples between the nodes ``"in{i}"`` (the model's
    inputs), ``"layer{k}"`` (the k-th layer call) and ``"out{j}"`` (its outputs), ``ops``
    naming the functions applied on the way.  It holds names and shapes only: no Variable,
    no graph, no module.
    """

    calls: list
    input_shapes: tuple
    output_shapes: tuple
    edges: list


def _spec(value):
    """What a call keeps of one argument: ``(kind, shape, dtype, device)`` for a Variable or an
    array, containers item by item, anything else as it is.

    Plain tuples, because every call of every module makes them.
    """
    if isinstance(value, Variable):
        data = value.data
        device = "cpu" if type(data) is np.ndarray else device_of(data)
        return (_VARIABLE, data.shape, data.dtype, device)
    if isinstance(value, (tuple, list)):
        specs = [_spec(item) for item in value]
        return specs if isinstance(value, list) else tuple(specs)
    if isinstance(value, dict):
        return {key: _spec(item) for key, item in value.items()}
    if is_array(value):
        return (_ARRAY, value.shape, value.dtype, device_of(value))
    return value


def _stand_in(spec):
    """A zero-filled argument shaped as :func:`_spec` describes it."""
    if type(spec) is tuple and spec and (spec[0] is _VARIABLE or spec[0] is _ARRAY):
        kind, shape, dtype, device = spec
        zeros = backends.to_device(np.zeros(shape, dtype), device)
        return Variable(zeros) if kind is _VARIABLE else zeros
    if isinstance(spec, (tuple, list)):
        items = [_stand_in(item) for item in spec]
        return items if isinstance(spec, list) else tuple(items)
    if isinstance(spec, dict):
        return {key: _stand_in(item) for key, item in spec.items()}
    return spec


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
    """The ``edges`` of a :class:`ForwardTrace` from ``(module, inputs, outputs)`` calls.

    Every Variable involved is still held by ``calls``, so no id is reused meanwhile.
    """
    producers, edges = {}, []

    def connect(head: str, variables) -> None:
        for variable in variables:
            for tail, ops in _sources_of(variable, producers).items():
                edges.append((tail, head, ops))

    for index, variable in enumerate(inputs):
        producers[id(variable)] = f"in{index}"
    for index, (_, ins, outs) in enumerate(calls):
        node = f"layer{index}"
        # Edges come before the outputs are registered: a layer that returns its input
        # (dropout in eval mode) must not be drawn feeding itself.
        connect(node, ins)
        for variable in outs:
            producers[id(variable)] = node
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
    if isinstance(values, dict):
        values = tuple(values.values())
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
        object.__setattr__(self, "_last_call", None)

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
        calls = _tracing.calls
        if calls is None:
            # Shapes and dtypes only (no Variable, no graph): enough for plot() to re-trace.
            self.__dict__["_last_call"] = (
                tuple(map(_spec, inputs)),
                {name: _spec(value) for name, value in kwargs.items()} if kwargs else {},
            )
            return self.forward(*inputs, **kwargs)
        outputs = self.forward(*inputs, **kwargs)
        if not self._registry("_children"):
            calls.append((self, _variables(inputs), _variables(outputs)))
        return outputs

    def _forward_trace(self, *example_inputs) -> ForwardTrace:
        """Run a forward pass of its own, recording the leaf-layer calls and the data flow.

        With no ``example_inputs``, zero-filled stand-ins shaped like the arguments of the last
        call are used.  The pass runs under ``test_mode()`` (dropout off, batch norm on its
        running statistics, none updated) with the graph recorded, in this thread only: the
        module's parameters, buffers and train/eval flags are left as they were.
        """
        if example_inputs:
            args, kwargs = example_inputs, {}
        else:
            last_call = self.__dict__.get("_last_call")
            if last_call is None:
                raise RuntimeError(
                    f"{type(self).__name__}.plot: the picture shows the layers of the last "
                    "forward pass; call the model on an input first (model(x)), then plot, or "
                    "give an example input (model.plot(x))"
                )
            args, kwargs = _stand_in(last_call)
        calls, outer = [], _tracing.calls
        _tracing.calls = calls
        try:
            # Zeros may meet a log or a division on the way; only the shapes matter here.
            with np.errstate(all="ignore"), using_config("enable_backprop", True):
                with using_config("train", False):
                    outputs = self(*args, **kwargs)
        finally:
            _tracing.calls = outer
        ins, outs = _variables(args) + _variables(kwargs), _variables(outputs)
        names = {id(module): name for name, module in self.named_modules()}
        return ForwardTrace(
            [
                LayerCall(
                    names.get(id(module), ""),
                    type(module).__name__,
                    tuple(v.shape for v in call_ins),
                    tuple(v.shape for v in call_outs),
                )
                for module, call_ins, call_outs in calls
            ],
            tuple(v.shape for v in ins),
            tuple(v.shape for v in outs),
            _data_flow(calls, ins, outs),
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
        """Write every weight to a ``.npy`` file (``".npy"`` appended when missing).

        The file holds no pickle: ``numpy.load(path, allow_pickle=False)`` reads it.  The write
        is atomic, streams the weights (no second copy in memory), puts weights beyond 2 GiB in
        shards beside the file, and creates missing parent folders; see
        :func:`pygrad.serialization.save_weights`.
        """
        from pygrad.serialization import save_weights

        return save_weights(path, dict(self._state_items()))

    def load(self, path, mmap: bool = False) -> None:
        """Load weights saved by :meth:`save` (or by pygrad 0.1.0) with strict checks.

        pygrad 0.1.0's checkpoints stored dropout rates next to the weights; such plain numbers
        are ignored.  Their weights were float64 (0.1.0 initialised them with NumPy's default
        dtype), so floating-point weights of such a file are cast to the dtype of the
        parameter they load into; in files written by :meth:`save` a dtype mismatch is an
        error, like a shape mismatch, and so is any field the model does not have.  With
        ``mmap=True`` the file is memory-mapped and read straight into the parameters.
        """
        from pygrad.serialization import module_weights

        targets = dict(self._state_items())
        self.load_weight_dict(module_weights(path, targets, mmap=mmap), strict=True)

    # --- display -----------------------------------------------------------------------------
    def plot(self, *example_inputs, to_file="model.png", verbose: bool = True):
        """Draw the leaf layers of a forward pass, in call order, with input and output shapes.

        The picture comes from a forward pass that ``plot`` runs itself, on ``example_inputs``
        when given, else on zero-filled inputs shaped like those of the model's last call.  It
        runs under :func:`pygrad.test_mode` with the graph recorded, so dropout is off, batch
        norm uses (and does not update) its running statistics, and no parameter or buffer
        changes.  Edges follow the data and name the functional ops between layers.

        Parameters
        ----------
        *example_inputs
            Arguments to trace the model with (Variables or arrays); optional after a call.
        to_file : str or os.PathLike
            The picture to write: ``.png``, ``.svg`` or ``.pdf``; parent folders are created.
            Also accepted as the only positional argument, as in pygrad 0.1.0.
        verbose : bool
            Add input and output shapes to the labels.

        Returns
        -------
        pygrad.viz.RenderedGraph
            The written file, path-like and displayed inline by Jupyter.

        Raises
        ------
        RuntimeError
            Before any call when no example input is given, or when Graphviz's ``dot`` is not
            installed.
        """
        from pygrad import viz

        if len(example_inputs) == 1 and isinstance(example_inputs[0], (str, os.PathLike)):
            (to_file,), example_inputs = example_inputs, ()
        return viz.plot_model(self, to_file=to_file, verbose=verbose, example_inputs=example_inputs)

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
