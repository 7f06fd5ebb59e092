"""The graph core: :class:`Variable`, :class:`Parameter`, :class:`Function` and backward.

A Variable holds an array of some device and, once a :class:`Function` has produced it, a link
to that function (its ``creator``).  Calling a function records the graph unless
``Config.enable_backprop`` is off; :meth:`Variable.backward` walks it in reverse generation
order.  The concrete operations live in :mod:`pygrad.functions`; the operators defined here
dispatch to them.
"""

from __future__ import annotations

import heapq
from itertools import count

import numpy as np

from pygrad import _release, backends
from pygrad._config import Config, using_config
from pygrad._release import OutputRef, release_unneeded_inputs
from pygrad.backends import DeviceError, device_of, get_array_module

__all__ = [
    "Variable",
    "Parameter",
    "Function",
    "DeviceError",
    "as_variable",
    "as_array",
    "zeros",
    "ones",
    "randn",
    "uniform",
]

# The function library, bound by ``pygrad.functions`` when it is imported; operators and
# methods of Variable dispatch through it so that each op lives in one place.
_F = None

_ndarray = np.ndarray
_new_variable = object.__new__
_generic = np.generic
_scalar_types = (int, float, bool, np.number, np.bool_)
_data_kinds = "biufc"


def _to_array(data, device, who="Variable"):
    """Turn user data into an array of ``device`` with NumPy's dtype for it."""
    if isinstance(data, Variable):
        data = data.data
    if device is not None:
        device = backends.parse_device(device)
    if type(data) is _ndarray or getattr(data, "xp", None) is not None:
        array = data
    elif isinstance(data, _ndarray):
        if isinstance(data, np.ma.MaskedArray):
            raise TypeError(
                f"{who}: a masked array would lose its mask; fill the masked values first "
                "(data.filled(value))"
            )
        array = np.asarray(data)  # memmap, np.matrix and other subclasses: their plain data
    elif isinstance(data, (_scalar_types, list, tuple, _generic)):
        array = np.asarray(data)
    else:
        raise TypeError(
            f"{who}: data must be a number, a (nested) list, a NumPy array or a Variable, "
            f"got {type(data).__name__}"
        )
    if array.dtype.kind not in _data_kinds:
        raise TypeError(
            f"{who}: data must be numeric (bool, int, float or complex), got dtype {array.dtype}"
        )
    if device is not None and device_of(array) != device:
        array = backends.to_device(array, device)
    return array


class Variable:
    """An array that remembers how it was computed, so that gradients can flow back to it.

    Parameters
    ----------
    data : number, nested list, numpy.ndarray or Variable
        The value.  Its dtype is NumPy's for that data: ints stay ints, float64 stays float64.
    name : str, optional
        A label shown in graph pictures.
    device : str, optional
        ``"cpu"`` (default) or ``"opencl"`` / ``"opencl:N"``.
    requires_grad : bool
        Whether backward gives this Variable a gradient.  Arrays and numbers handed to a
        function directly become Variables with ``requires_grad=False``: nothing can read
        their gradient, so it is not computed.

    Examples
    --------
    >>> x = Variable(3)
    >>> y = x * x
    >>> y.backward()
    >>> x.grad
    Variable(6)
    """

    __slots__ = ("data", "name", "grad", "creator", "generation", "requires_grad", "__weakref__")
    # NumPy defers every operator with a Variable to the Variable's reflected method.
    __array_ufunc__ = None
    __array_priority__ = 200

    def __init__(
        self,
        data,
        name: str | None = None,
        device: str | None = None,
        requires_grad: bool = True,
    ):
        if type(data) is not _ndarray or device is not None or data.dtype.kind not in _data_kinds:
            data = _to_array(data, device)
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0
        self.requires_grad = requires_grad

    # --- array-like attributes -----------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> str:
        """Canonical name of the device holding the data (``"cpu"`` or ``"opencl:N"``)."""
        return device_of(self.data)

    @property
    def T(self) -> Variable:
        return _F.transpose(self)

    def __len__(self) -> int:
        if not self.data.shape:
            raise TypeError("len() of a 0-d Variable")
        return self.data.shape[0]

    def __repr__(self) -> str:
        data = self.data
        if type(data) is _release.ReleasedArray:
            return f"{type(self).__name__}({data!r})"
        device = device_of(data)
        data = backends.to_host(data)
        kind = type(self).__name__
        body = str(data).replace("\n", "\n" + " " * (len(kind) + 1))
        if device != "cpu":
            return f"{kind}({body}, device='{device}')"
        return f"{kind}({body})"

    def __array__(self, dtype=None, copy=None):
        data = backends.to_host(self.data)
        if dtype is not None and data.dtype != dtype:
            return data.astype(dtype)
        return data.copy() if copy else data

    def numpy(self) -> np.ndarray:
        """Return a NumPy copy of the data on the host."""
        data = self.data
        return data.copy() if type(data) is _ndarray else backends.to_host(data)

    def item(self):
        """Return the single element of the data as a Python number."""
        if self.data.size != 1:
            raise ValueError(
                f"item: only a Variable of one element has an item, got shape {self.shape}"
            )
        return self.numpy().item()

    def to(self, device: str) -> Variable:
        """Return this Variable on ``device``; differentiable, and ``self`` when already there."""
        device = backends.parse_device(device)
        if device_of(self.data) == device:
            return self
        return _ToDevice(device)(self)

    # --- graph ---------------------------------------------------------------------------
    def set_creator(self, func: Function) -> None:
        self.creator = func
        self.generation = func.generation + 1

    def unchain(self) -> None:
        """Cut the link to the function that created this Variable."""
        self.creator = None

    def unchain_backward(self) -> None:
        """Cut every link of the graph behind this Variable."""
        funcs = [self.creator] if self.creator is not None else []
        self.creator = None
        while funcs:
            f = funcs.pop()
            for x in f.inputs:
                if x.creator is not None:
                    funcs.append(x.creator)
                    x.unchain()

    def clear_grad(self) -> None:
        """Forget the gradient (set ``grad`` to None)."""
        self.grad = None

    cleargrad = clear_grad

    def backward(self, retain_grad: bool = False, create_graph: bool = False) -> None:
        """Compute the gradient of this Variable with respect to everything it depends on.

        Functions are visited once each, in reverse generation order, so a variable used by
        several functions receives the sum of their gradients before its own creator runs.
        The seed is this Variable's ``grad`` when one is set (so ``y.grad = ...`` before
        ``y.backward()`` gives the gradient of the output, as in Chainer and DeZero), and
        ones of its shape otherwise.  A gradient kept by an earlier ``retain_grad=True`` pass
        counts as set: clear it first (``y.clear_grad()``) to seed with ones.

        Parameters
        ----------
        retain_grad : bool
            Keep the gradients of intermediate variables.  By default they are freed as soon as
            they have been used; leaves and Parameters always keep (and accumulate) theirs.
            The large arrays of intermediate variables that no backward pass reads and that
            nothing outside the graph references (such as the input of a ReLU, which keeps
            its output) are released during the forward pass where possible, and otherwise,
            unless this flag is set, once backward has used them.  Their shape and dtype
            remain, so this changes no gradient, also over repeated or higher-order passes.
        create_graph : bool
            Record the graph of the backward pass itself, so that ``x.grad.backward()`` gives
            higher-order derivatives.
        """
        if self.grad is None:
            self.grad = Variable(get_array_module(self.data).ones_like(self.data))
        creator = self.creator
        if creator is None:
            return
        order = count()
        heap = [(-creator.generation, next(order), creator)]
        seen = {creator}
        push, pop = heapq.heappush, heapq.heappop
        with using_config("enable_backprop", create_graph):
            while heap:
                f = pop(heap)[2]
                outputs = f.outputs
                if len(outputs) == 1:
                    gys = (outputs[0]().grad,)
                else:
                    gys = tuple(None if y() is None else y().grad for y in outputs)
                gxs = f.backward(*gys)
                if type(gxs) is not tuple:
                    gxs = (gxs,)
                for x, gx in zip(f.inputs, gxs):
                    if gx is None or not x.requires_grad:
                        continue
                    if x.grad is None:
                        x.grad = gx
                    else:
                        x.grad = x.grad + gx
                    x_creator = x.creator
                    if x_creator is not None and x_creator not in seen:
                        seen.add(x_creator)
                        push(heap, (-x_creator.generation, next(order), x_creator))
                x = None  # the loop variable would count as a reference to an input
                if not retain_grad:
                    for y in outputs:
                        y = y()
                        if y is not None:
                            y.grad = None
                    if not create_graph and not f.needs_inputs:
                        release_unneeded_inputs(f)

    # --- shape and reduction methods (see pygrad.functions) -------------------------------
    def reshape(self, *shape) -> Variable:
        """Return the data reshaped to ``shape`` (given as ints or one tuple)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        return _F.reshape(self, shape)

    def transpose(self, *axes) -> Variable:
        """Return the data with axes permuted (reversed when none are given)."""
        if not axes:
            axes = None
        elif len(axes) == 1 and isinstance(axes[0], (tuple, list)) or axes[0] is None:
            axes = axes[0]
        return _F.transpose(self, axes)

    def sum(self, axis=None, keepdims: bool = False) -> Variable:
        return _F.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims: bool = False) -> Variable:
        return _F.mean(self, axis, keepdims)

    def max(self, axis=None, keepdims: bool = False) -> Variable:
        return _F.max(self, axis, keepdims)

    def min(self, axis=None, keepdims: bool = False) -> Variable:
        return _F.min(self, axis, keepdims)

    def __getitem__(self, key) -> Variable:
        return _F.get_item(self, key)

    # --- operators -----------------------------------------------------------------------
    def __neg__(self):
        return _F.neg(self)

    def __pos__(self):
        return self

    def __add__(self, other):
        return _F.add(self, other)

    def __radd__(self, other):
        return _F.add(other, self)

    def __sub__(self, other):
        return _F.sub(self, other)

    def __rsub__(self, other):
        return _F.rsub(self, other)

    def __mul__(self, other):
        return _F.mul(self, other)

    def __rmul__(self, other):
        return _F.mul(other, self)

    def __truediv__(self, other):
        return _F.div(self, other)

    def __rtruediv__(self, other):
        return _F.rdiv(self, other)

    def __pow__(self, other):
        return _F.pow(self, other)

    def __rpow__(self, other):
        return _F.rpow(self, other)

    def __matmul__(self, other):
        return _F.matmul(self, other)

    def __rmatmul__(self, other):
        return _F.matmul(other, self)

    # Identity-based hashing keeps Variables usable as dict keys and in sets.
    __hash__ = object.__hash__


class Parameter(Variable):
    """A Variable that :class:`pygrad.nn.Module` collects as a trainable weight."""

    __slots__ = ()


def as_array(x, like=None):
    """Return ``x`` as an array; a Python scalar takes the dtype NumPy would give it next to
    ``like`` (so ``float32`` data and ``1.5`` stay ``float32``)."""
    if getattr(x, "xp", None) is not None:
        return x
    if type(x) is _ndarray:
        # Host data beside a device array is taken to be on that device, as numbers are.
        if like is None or getattr(like, "xp", None) is None:
            return x
        return backends.to_device(x, device_of(like))
    if like is not None and isinstance(x, _scalar_types) and not isinstance(x, np.ndarray):
        dtype = np.result_type(like.dtype, x) if type(x) in (int, float, bool, complex) else None
        array = np.asarray(x, dtype=dtype)
        device = device_of(like)
        return array if device == "cpu" else backends.to_device(array, device)
    return _to_array(x, None)


def as_variable(x, like=None) -> Variable:
    """Return ``x`` as a Variable (itself if it already is one); see :func:`as_array`.

    An array or number becomes a constant: a Variable with ``requires_grad=False``.
    """
    if isinstance(x, Variable):
        return x
    return Variable(as_array(x, None if like is None else like.data), requires_grad=False)


def _devices_error(func, arrays) -> DeviceError:
    names = ", ".join(f"{device_of(a)}" for a in arrays)
    return DeviceError(
        f"{type(func).__name__}: inputs live on different devices ({names}); "
        "move them to one device with .to(device) first"
    )


class Function:
    """A differentiable operation: ``forward`` on arrays, ``backward`` on Variables.

    Subclasses implement ``forward(self, *arrays)`` returning an array or a tuple of arrays,
    and ``backward(self, *grads)`` returning the gradient of each input (a Variable or None),
    written with pygrad functions so that it is itself differentiable.  Call an instance on
    Variables, arrays or numbers: ``y = MyFunction()(x)``.

    Attributes
    ----------
    inputs : sequence of Variable
        The inputs of the last call (kept only while the graph is recorded).
    outputs : list of weakref.ref
        Weak references to the outputs, so the graph does not keep them alive.
    generation : int
        The largest generation among the inputs; backward visits higher generations first.
    """

    generation = 0
    # Whether backward reads the data of the inputs / outputs.  A function that declares it
    # does not lets backward release intermediate arrays nobody else can reach (see
    # Variable.backward); the safe default is that it does.
    needs_inputs = True
    needs_outputs = True
    # Whether the inputs have yet to be offered for release (see __call__).
    holds_inputs = True

    def __call__(self, *inputs):
        for x in inputs:
            if not isinstance(x, Variable):
                inputs = _coerce_inputs(inputs)
                break
        if len(inputs) == 1:
            ys = self.forward(inputs[0].data)
        else:
            xs = [x.data for x in inputs]
            kind = type(xs[0])
            for a in xs:
                if type(a) is not kind:
                    raise _devices_error(self, xs)
            if kind is not _ndarray and len({device_of(a) for a in xs}) > 1:
                raise _devices_error(self, xs)
            ys = self.forward(*xs)
        record = Config.enable_backprop
        if record:
            generation = (
                inputs[0].generation if len(inputs) == 1 else max([x.generation for x in inputs])
            )
            self.generation = generation
            self.inputs = inputs
            # The first call that consumes an intermediate result is the earliest moment at
            # which the inputs of its creator can be held by the graph alone (the caller has
            # usually rebound its name by then): those no backward reads are released now
            # rather than at the end of backward (Linear's output under a ReLU, say).
            for x in inputs:
                creator = x.creator
                if (
                    creator is not None
                    and x.data.nbytes >= _release.RELEASE_MIN_BYTES
                    and creator.holds_inputs
                ):
                    creator.holds_inputs = False
                    if not creator.needs_inputs:
                        release_unneeded_inputs(creator)
        # The output Variables are built here rather than through Variable.__init__: this is
        # the hot path of every op, and forward results need no validation.
        if type(ys) is not tuple:
            y = _new_variable(Variable)
            y.data = ys if type(ys) is _ndarray else as_array_output(ys)
            y.name = y.grad = None
            y.requires_grad = True
            if record:
                y.creator = self
                y.generation = generation + 1
                self.outputs = [OutputRef(y)]
            else:
                y.creator = None
                y.generation = 0
            return y
        outputs = []
        for data in ys:
            y = _new_variable(Variable)
            y.data = data if type(data) is _ndarray else as_array_output(data)
            y.name = y.grad = None
            y.requires_grad = True
            y.creator = self if record else None
            y.generation = generation + 1 if record else 0
            outputs.append(y)
        if record:
            self.outputs = [OutputRef(y) for y in outputs]
        return outputs

    def forward(self, *xs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, *gys):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")


def as_array_output(y):
    """Return a forward result as an array (NumPy reductions hand back scalars)."""
    if isinstance(y, _generic):
        return np.asarray(y)
    return y


def _coerce_inputs(inputs):
    like = next((x.data for x in inputs if isinstance(x, Variable)), None)
    return [
        x if isinstance(x, Variable) else Variable(as_array(x, like), requires_grad=False)
        for x in inputs
    ]


class _ToDevice(Function):
    def __init__(self, device: str):
        self.device = device

    def forward(self, x):
        self.source = device_of(x)
        return backends.to_device(x, self.device)

    def backward(self, gy):
        return gy.to(self.source)


# --- factories ------------------------------------------------------------------------------
def _factory(make, shape, dtype, device, name):
    array = make(shape).astype(dtype, copy=False)
    return Variable(array, name=name, device=None if device in (None, "cpu") else device)


def _as_shape(shape) -> tuple:
    return (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)


def zeros(shape, dtype=np.float32, device: str = "cpu", name: str | None = None) -> Variable:
    """Return a Variable of zeros of ``shape`` (float32 on the CPU by default)."""
    return _factory(np.zeros, _as_shape(shape), dtype, device, name)


def ones(shape, dtype=np.float32, device: str = "cpu", name: str | None = None) -> Variable:
    """Return a Variable of ones of ``shape`` (float32 on the CPU by default)."""
    return _factory(np.ones, _as_shape(shape), dtype, device, name)


def randn(*shape, dtype=np.float32, device: str = "cpu", name: str | None = None) -> Variable:
    """Return a Variable of standard normal samples; ``shape`` as ints or one tuple."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return _factory(lambda s: np.random.standard_normal(s), tuple(shape), dtype, device, name)


def uniform(low, high, shape, dtype=np.float32, device: str = "cpu", name: str | None = None):
    """Return a Variable of samples drawn uniformly from ``[low, high)``."""
    return _factory(
        lambda s: np.random.uniform(low, high, s), _as_shape(shape), dtype, device, name
    )
