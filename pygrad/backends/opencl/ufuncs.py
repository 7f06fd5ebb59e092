"""Elementwise functions ("ufuncs") of the OpenCL array module, with NumPy's broadcasting and
dtype rules.

Each ufunc is one C expression per kind of loop dtype, fed to the single elementwise kernel
template.  Dtypes are resolved the way NumPy does it, including NumPy 2's rule that a Python
number takes the dtype of the array it meets (``float32 array * 1.5`` stays float32).
"""

from __future__ import annotations

import numpy as np

from pygrad.backends import DeviceError
from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.array import empty_array, make_view, ndarray, new_contiguous
from pygrad.backends.opencl.runtime import current_device, missing_call

__all__ = [
    "ufunc",
    "add",
    "subtract",
    "multiply",
    "true_divide",
    "divide",
    "floor_divide",
    "remainder",
    "mod",
    "power",
    "maximum",
    "minimum",
    "fmax",
    "fmin",
    "arctan2",
    "hypot",
    "logaddexp",
    "copysign",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "invert",
    "bitwise_not",
    "negative",
    "positive",
    "absolute",
    "abs",
    "fabs",
    "sign",
    "square",
    "reciprocal",
    "sqrt",
    "cbrt",
    "exp",
    "exp2",
    "expm1",
    "log",
    "log2",
    "log10",
    "log1p",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "arcsinh",
    "arccosh",
    "arctanh",
    "floor",
    "ceil",
    "trunc",
    "rint",
    "isnan",
    "isinf",
    "isfinite",
    "signbit",
    "erf",
    "where",
    "clip",
    "copyto",
]

_python_types = {bool: np.dtype(np.bool_), int: int, float: float}


def _kind(dtype) -> str:
    """``b`` bool, ``i`` signed, ``u`` unsigned, ``f`` float."""
    return np.dtype(dtype).kind


def broadcast_view(a: ndarray, shape: tuple) -> ndarray:
    """``a`` seen with ``shape`` (stride 0 along broadcast axes); ``a.shape`` must fit."""
    if a.shape == shape:
        return a
    lead = len(shape) - a.ndim
    strides = [0] * lead
    for n, s, target in zip(a.shape, a._strides, shape[lead:]):
        strides.append(s if n == target else 0)
    return make_view(a, shape, strides)


class _Operands:
    """The arguments of one elementwise call, sorted into arrays and scalars."""

    def __init__(self, name: str, args):
        self.arrays = []
        self.values = []  # per argument: an ndarray, or a Python/NumPy scalar
        self.specs = []  # per argument: a dtype, or the Python type of a weak scalar
        for arg in args:
            if isinstance(arg, ndarray):
                self.arrays.append(arg)
                self.values.append(arg)
                self.specs.append(arg.dtype)
            elif type(arg) in _python_types:
                self.values.append(arg)
                self.specs.append(_python_types[type(arg)])
            elif isinstance(arg, np.generic) or (isinstance(arg, np.ndarray) and arg.ndim == 0):
                value = arg[()] if isinstance(arg, np.ndarray) else arg
                self.values.append(value)
                self.specs.append(value.dtype)
            elif isinstance(arg, np.ndarray):
                raise DeviceError(
                    f"opencl {name}: an operand is a NumPy array of shape {arg.shape} on the cpu "
                    "while the others live on an OpenCL device; move it with xp.asarray first"
                )
            elif isinstance(arg, (int, float)) and not isinstance(arg, complex):
                self.values.append(arg)
                self.specs.append(_python_types[bool if isinstance(arg, bool) else type(arg)])
            else:
                raise TypeError(
                    f"opencl {name}: unsupported operand of type {type(arg).__name__} "
                    "(expected an OpenCL array, a NumPy scalar or a Python number)"
                )
        devices = {a._device for a in self.arrays}
        if len(devices) > 1:
            names = ", ".join(sorted(d.name for d in devices))
            raise DeviceError(f"opencl {name}: operands live on different devices ({names})")
        self.device = self.arrays[0]._device if self.arrays else None

    def shape(self, name: str) -> tuple:
        shapes = [a.shape for a in self.arrays]
        if len(set(shapes)) == 1:
            return shapes[0]
        try:
            return np.broadcast_shapes(*shapes)
        except ValueError:
            text = " ".join(str(s) for s in shapes)
            raise ValueError(
                f"opencl {name}: operands could not be broadcast together with shapes {text}"
            ) from None


def _weak_value(spec):
    """A stand-in NumPy's ``result_type`` treats as a weak Python scalar."""
    return {int: 0, float: 0.0}.get(spec, spec)


def _bool_scalar(value) -> np.uint8:
    """A scalar for a bool loop: 1 for any nonzero value (``np.uint8(0.5)`` would be 0)."""
    return np.uint8(bool(value))


def _upgrade(dtype):
    """OpenCL kernels compute float16 results in float32."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


class ufunc:  # noqa: N801  (named after numpy.ufunc)
    """An elementwise function of the OpenCL backend, called like its NumPy namesake.

    Parameters
    ----------
    name : str
        NumPy's name for it.
    nin : int
        Number of inputs.
    exprs : dict
        C expression per loop kind (``"f"``, ``"i"``, ``"u"``, ``"b"``; ``"*"`` for the rest)
        over inputs ``a0, a1, ...``; ``{T}`` stands for the C type of the first loop dtype.
    numpy_ufunc : numpy.ufunc or None
        The NumPy ufunc whose dtype rules apply.
    resolve : callable, optional
        ``resolve(specs) -> (loop_dtypes, out_dtype)`` for functions NumPy has no ufunc for.
    """

    def __init__(self, name, nin, exprs, numpy_ufunc=None, resolve=None):
        self.__name__ = name
        self.nin = nin
        self.exprs = exprs
        self.numpy_ufunc = numpy_ufunc
        self._resolve = resolve
        self._resolved = {}  # specs -> loop dtypes, output dtype, expression, C and scalar types
        self._plans = {}  # (specs, device) -> what _fast_apply needs, or None: not that way

    def __repr__(self) -> str:
        return f"<opencl ufunc '{self.__name__}'>"

    def __getattr__(self, name: str):
        # Reached only for attributes ufunc lacks (accumulate, outer, ...): name the call.
        raise missing_call(name, f"{self.__dict__['__name__']}.")

    def resolve(self, specs) -> tuple:
        """Return the loop dtypes of the inputs and the output dtype for ``specs``."""
        key = tuple(specs)
        found = self._resolved.get(key)
        if found is None:
            loops, out = self._resolve_uncached(specs)
            ctypes = ["bool" if d == np.bool_ else kernels.ctype(d) for d in loops]
            scalar_types = [_bool_scalar if d == np.bool_ else d.type for d in loops]
            found = self._resolved[key] = (loops, out, self.expression(loops), ctypes, scalar_types)
        return found

    def _resolve_uncached(self, specs) -> tuple:
        if self._resolve is not None:
            loops, out = self._resolve(specs)
        else:
            try:
                dtypes = self.numpy_ufunc.resolve_dtypes(tuple(specs) + (None,))
            except (TypeError, ValueError) as error:
                names = ", ".join(getattr(s, "__name__", str(s)) for s in specs)
                raise TypeError(
                    f"opencl {self.__name__}: unsupported dtypes ({names}): {error}"
                ) from None
            loops, out = dtypes[:-1], dtypes[-1]
        return [_upgrade(d) for d in loops], _upgrade(out)

    def expression(self, loop_dtypes) -> str:
        kind = _kind(loop_dtypes[0])
        expr = self.exprs.get(kind)
        if expr is None and kind in "ub":
            expr = self.exprs.get("i")
        if expr is None:
            expr = self.exprs.get("*")
        if expr is None:
            raise TypeError(
                f"opencl {self.__name__}: not supported for dtype {np.dtype(loop_dtypes[0])}"
            )
        return expr.replace("{T}", kernels.ctype(loop_dtypes[0]))

    def __call__(self, *args, out=None):
        if out is None:
            result = _fast_apply(self, args)
            if result is not None:
                return result
        if len(args) != self.nin:
            raise TypeError(f"opencl {self.__name__}: takes {self.nin} inputs, got {len(args)}")
        return _apply(self, args, out)

    @property
    def at(self):
        """``add.at(a, indices, b)``: unbuffered in-place add at (repeated) indices."""
        if self.__name__ not in ("add", "subtract"):
            raise AttributeError(f"opencl backend has no '{self.__name__}.at'")
        from pygrad.backends.opencl.indexing import scatter_add

        negate = self.__name__ == "subtract"
        return lambda a, indices, b: scatter_add(a, indices, -b if negate else b)

    @property
    def reduce(self):
        """``add.reduce`` and friends, as the matching reduction (``sum``, ``prod``, ...)."""
        from pygrad.backends.opencl import reductions

        names = {
            "add": "sum",
            "multiply": "prod",
            "maximum": "max",
            "minimum": "min",
            "logical_and": "all",
            "logical_or": "any",
        }
        if self.__name__ not in names:
            raise AttributeError(f"opencl backend has no '{self.__name__}.reduce'")
        reduction = getattr(reductions, names[self.__name__])
        return lambda a, axis=0, **kwargs: reduction(a, axis=axis, **kwargs)


def _fast_apply(func: ufunc, args):
    """The common call, with less work per call than :func:`_apply`: C-contiguous arrays of one
    shape on one device, with Python floats (or ints where the loop is real); None for any
    other call, which ``_apply`` then handles in full."""
    first = None
    specs = []
    for arg in args:
        kind = type(arg)
        if kind is ndarray:
            if first is None:
                first = arg
            elif arg.shape != first.shape or arg._device is not first._device:
                return None
            if not arg.is_c_contiguous:
                return None
            specs.append(arg.dtype)
        elif kind is float or kind is int:
            specs.append(kind)
        else:
            return None
    if first is None or len(args) != func.nin or not first.size:
        return None
    device = first._device
    key = (tuple(specs), device)
    plan = func._plans.get(key, False)
    if plan is False:
        plan = func._plans[key] = _plan(func, specs, device)
    if plan is None:
        return None
    kernel, out_dtype = plan
    out = new_contiguous(first.shape, out_dtype, device, first.size)
    values = [first.size, 0, 0]  # size, period (unused), output offset
    buffers = [out.buffer]
    scalars = []
    for arg in args:
        if type(arg) is ndarray:
            buffers.append(arg.buffer)
            values.append(arg.offset)
        else:
            scalars.append(arg)
    for value in scalars:
        values.append(kernels.real_bits(value))
    buffers.append(kernels.MetaArgs(values))
    kernels.launch_chunks(kernel, device, first.size, buffers)
    return out


def _plan(func: ufunc, specs: list, device):
    """What :func:`_fast_apply` needs for ``specs`` on ``device``, or None where it would not
    give what ``_apply`` gives (integer scalars in integer loops are range-checked there)."""
    try:
        loops, out_dtype, expr, loop_ctypes, _ = func.resolve(specs)
    except TypeError:
        return None
    scalar_ctypes = [lt for spec, lt in zip(specs, loop_ctypes) if not isinstance(spec, np.dtype)]
    if any(lt not in ("float", "double") for lt in scalar_ctypes):
        return None
    if "double" in loop_ctypes and not device.supports_float64:
        return None
    kinds = tuple(
        (kernels.C_TYPES[spec], lt) if isinstance(spec, np.dtype) else ("scalar", lt)
        for spec, lt in zip(specs, loop_ctypes)
    )
    kernel = kernels.elementwise_kernel(device, expr, out_dtype, kinds, flat=True)
    return kernel, out_dtype


def _shares_memory(a: ndarray, out: ndarray) -> bool:
    """Whether ``a`` reads ``out``'s buffer through another layout (a race in place)."""
    if a.buffer is not out.buffer:
        return False
    b = broadcast_view(a, out.shape)
    return b.offset != out.offset or b._strides != out._strides


_COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}


def _exact_int_dtype(value: int):
    """The dtype a comparison uses for a Python int its array's dtype cannot hold."""
    if -(2**63) <= value < 2**63:
        return np.dtype(np.int64)
    return np.dtype(np.uint64) if 0 <= value < 2**64 else np.dtype(np.float64)


def _fit_big_ints(operands: _Operands, loops) -> bool:
    """NumPy 2 compares ``int8_array < 1000`` exactly instead of raising OverflowError: give
    each Python int that does not fit its integer loop dtype a wider dtype of its own."""
    changed = False
    for k, (value, loop) in enumerate(zip(operands.values, loops)):
        if type(value) is int and loop.kind in "iu":
            info = np.iinfo(loop)
            if not info.min <= value <= info.max:
                operands.specs[k] = _exact_int_dtype(value)
                changed = True
    return changed


def _apply(func: ufunc, args, out=None):
    name = func.__name__
    operands = _Operands(name, args)
    loops, out_dtype, expr, loop_ctypes, scalar_types = func.resolve(operands.specs)
    if name in _COMPARISONS and _fit_big_ints(operands, loops):
        loops, out_dtype, expr, loop_ctypes, scalar_types = func.resolve(operands.specs)
    shape = operands.shape(name)
    device = operands.device
    if out is not None:
        if not isinstance(out, ndarray):
            raise TypeError(f"opencl {name}: out must be an OpenCL array, got {type(out).__name__}")
        if device is not None and out._device is not device:
            raise DeviceError(
                f"opencl {name}: out lives on {out.device}, the inputs on {device.name}"
            )
        device = out._device
        try:
            target = np.broadcast_shapes(shape, out.shape)
        except ValueError:
            target = None
        if target != out.shape:
            raise ValueError(
                f"opencl {name}: output of shape {out.shape} does not fit the broadcast "
                f"shape {shape} of the inputs"
            )
        if not np.can_cast(out_dtype, out.dtype, "same_kind"):
            raise TypeError(
                f"opencl {name}: cannot cast the result from {out_dtype} to the output dtype "
                f"{out.dtype} with casting rule 'same_kind'"
            )
        shape = out.shape
        if any(_shares_memory(a, out) for a in operands.arrays):
            result = _apply(func, args)
            copyto(out, result, casting="unsafe")
            return out
    device = device or current_device()
    if not device.supports_float64 and "double" in loop_ctypes:
        raise TypeError(f"opencl {name}: device {device.name} has no float64")
    if out is None:
        out = empty_array(shape, out_dtype, device)
    inputs = [
        broadcast_view(value, shape) if type(value) is ndarray else scalar_type(value)
        for value, scalar_type in zip(operands.values, scalar_types)
    ]
    kernels.run_elementwise(device, expr, out, inputs, loop_ctypes)
    return out


def copyto(dst: ndarray, src, casting: str = "same_kind") -> None:
    """Copy ``src`` (an array or a number, broadcast to ``dst.shape``) into ``dst``."""
    if not isinstance(src, ndarray) and np.ndim(src):  # host data: NumPy arrays, lists
        from pygrad.backends.opencl.array import from_host

        src = from_host(np.asarray(src).astype(dst.dtype, copy=False), dst._device)
    if not isinstance(src, ndarray):
        value = np.asarray(src).astype(dst.dtype)
        value = (value.astype(np.uint8) if dst.dtype == np.bool_ else value)[()]
        kernels.run_elementwise(dst._device, "a0", dst, [value], [kernels.ctype(dst.dtype)])
        return
    if not np.can_cast(src.dtype, dst.dtype, casting):
        raise TypeError(
            f"opencl copyto: cannot cast from {src.dtype} to {dst.dtype} with casting rule "
            f"{casting!r}"
        )
    try:
        shape = np.broadcast_shapes(src.shape, dst.shape)
    except ValueError:
        shape = None
    if shape != dst.shape:
        raise ValueError(
            f"opencl copyto: could not broadcast an array of shape {src.shape} into shape "
            f"{dst.shape}"
        )
    if src._device is not dst._device:
        raise DeviceError(f"opencl copyto: source on {src.device}, destination on {dst.device}")
    same_layout = (src.offset, src._strides, src.shape) == (dst.offset, dst._strides, dst.shape)
    if src.buffer is dst.buffer and same_layout and src.dtype == dst.dtype:
        return  # ``a[key] += b`` stores a view into itself
    if _shares_memory(src, dst):
        src = src.copy()
    source = broadcast_view(src, dst.shape)
    kernels.run_elementwise(dst._device, "a0", dst, [source], [kernels.ctype(src.dtype)])


def _resolve_where(specs):
    condition = specs[0] if isinstance(specs[0], np.dtype) else np.dtype(specs[0])
    result = np.result_type(*[_weak_value(s) for s in specs[1:]])
    return [condition, result, result], result


def _resolve_clip(specs):
    result = np.result_type(*[_weak_value(s) for s in specs])
    return [result] * 3, result


def _resolve_float(specs):
    """erf and the like follow NumPy's rule for exp (integers compute in float64)."""
    dtypes = np.exp.resolve_dtypes(tuple(specs) + (None,))
    return dtypes[:-1], dtypes[-1]


# ``a0 != a0`` tests for NaN as isnan does, but PoCL vectorises it (five times faster here).
_NAN_MAX = "((a0 > a1 || a0 != a0) ? a0 : a1)"
_NAN_MIN = "((a0 < a1 || a0 != a0) ? a0 : a1)"
_INT_FLOOR_DIV = "(a1 == 0 ? 0 : (a0 / a1 - ((a0 % a1 != 0) && ((a0 < 0) != (a1 < 0)))))"
_FLOAT_MOD = "(fmod(a0, a1) + ((fmod(a0, a1) != 0 && ((fmod(a0, a1) < 0) != (a1 < 0))) ? a1 : 0))"
_INT_MOD = "(a1 == 0 ? 0 : (a0 % a1 + ((a0 % a1 != 0 && ((a0 % a1 < 0) != (a1 < 0))) ? a1 : 0)))"

add = ufunc("add", 2, {"*": "a0 + a1"}, np.add)
subtract = ufunc("subtract", 2, {"*": "a0 - a1"}, np.subtract)
multiply = ufunc("multiply", 2, {"*": "a0 * a1"}, np.multiply)
true_divide = ufunc("true_divide", 2, {"f": "a0 / a1"}, np.true_divide)
divide = true_divide
floor_divide = ufunc(
    "floor_divide",
    2,
    {"f": "floor(a0 / a1)", "u": "(a1 == 0 ? 0 : a0 / a1)", "i": _INT_FLOOR_DIV},
    np.floor_divide,
)
remainder = ufunc(
    "remainder", 2, {"f": _FLOAT_MOD, "u": "(a1 == 0 ? 0 : a0 % a1)", "i": _INT_MOD}, np.remainder
)
mod = remainder
power = ufunc("power", 2, {"f": "pow(a0, a1)", "i": "_ipow(a0, a1)"}, np.power)
maximum = ufunc("maximum", 2, {"f": _NAN_MAX, "*": "max(a0, a1)", "b": "(a0 | a1)"}, np.maximum)
minimum = ufunc("minimum", 2, {"f": _NAN_MIN, "*": "min(a0, a1)", "b": "(a0 & a1)"}, np.minimum)
fmax = ufunc("fmax", 2, {"f": "fmax(a0, a1)", "*": "max(a0, a1)", "b": "(a0 | a1)"}, np.fmax)
fmin = ufunc("fmin", 2, {"f": "fmin(a0, a1)", "*": "min(a0, a1)", "b": "(a0 & a1)"}, np.fmin)
arctan2 = ufunc("arctan2", 2, {"f": "atan2(a0, a1)"}, np.arctan2)
hypot = ufunc("hypot", 2, {"f": "hypot(a0, a1)"}, np.hypot)
copysign = ufunc("copysign", 2, {"f": "copysign(a0, a1)"}, np.copysign)
logaddexp = ufunc(
    "logaddexp",
    2,
    {"f": "(a0 == a1 ? a0 + ({T})0.6931471805599453 : fmax(a0, a1) + log1p(exp(-fabs(a0 - a1))))"},
    np.logaddexp,
)

equal = ufunc("equal", 2, {"*": "a0 == a1"}, np.equal)
not_equal = ufunc("not_equal", 2, {"*": "a0 != a1"}, np.not_equal)
less = ufunc("less", 2, {"*": "a0 < a1"}, np.less)
less_equal = ufunc("less_equal", 2, {"*": "a0 <= a1"}, np.less_equal)
greater = ufunc("greater", 2, {"*": "a0 > a1"}, np.greater)
greater_equal = ufunc("greater_equal", 2, {"*": "a0 >= a1"}, np.greater_equal)
logical_and = ufunc("logical_and", 2, {"*": "(a0 != 0) && (a1 != 0)"}, np.logical_and)
logical_or = ufunc("logical_or", 2, {"*": "(a0 != 0) || (a1 != 0)"}, np.logical_or)
logical_xor = ufunc("logical_xor", 2, {"*": "(a0 != 0) != (a1 != 0)"}, np.logical_xor)
logical_not = ufunc("logical_not", 1, {"*": "a0 == 0"}, np.logical_not)
bitwise_and = ufunc("bitwise_and", 2, {"i": "a0 & a1"}, np.bitwise_and)
bitwise_or = ufunc("bitwise_or", 2, {"i": "a0 | a1"}, np.bitwise_or)
bitwise_xor = ufunc("bitwise_xor", 2, {"i": "a0 ^ a1"}, np.bitwise_xor)
invert = ufunc("invert", 1, {"b": "!a0", "i": "~a0"}, np.invert)
bitwise_not = invert

negative = ufunc("negative", 1, {"*": "-a0"}, np.negative)
positive = ufunc("positive", 1, {"*": "a0"}, np.positive)
absolute = ufunc(
    "absolute", 1, {"f": "fabs(a0)", "i": "(a0 < 0 ? -a0 : a0)", "u": "a0", "b": "a0"}, np.absolute
)
abs = absolute  # noqa: A001  (NumPy's name)
fabs = ufunc("fabs", 1, {"f": "fabs(a0)"}, np.fabs)
sign = ufunc(
    "sign",
    1,
    {"f": "(isnan(a0) ? a0 : ({T})((a0 > 0) - (a0 < 0)))", "*": "(a0 > 0) - (a0 < 0)"},
    np.sign,
)
square = ufunc("square", 1, {"*": "a0 * a0"}, np.square)
reciprocal = ufunc("reciprocal", 1, {"f": "1 / a0", "*": "(a0 == 0 ? 0 : 1 / a0)"}, np.reciprocal)
sqrt = ufunc("sqrt", 1, {"f": "sqrt(a0)"}, np.sqrt)
cbrt = ufunc("cbrt", 1, {"f": "cbrt(a0)"}, np.cbrt)
exp = ufunc("exp", 1, {"f": "exp(a0)"}, np.exp)
exp2 = ufunc("exp2", 1, {"f": "exp2(a0)"}, np.exp2)
expm1 = ufunc("expm1", 1, {"f": "expm1(a0)"}, np.expm1)
log = ufunc("log", 1, {"f": "log(a0)"}, np.log)
log2 = ufunc("log2", 1, {"f": "log2(a0)"}, np.log2)
log10 = ufunc("log10", 1, {"f": "log10(a0)"}, np.log10)
log1p = ufunc("log1p", 1, {"f": "log1p(a0)"}, np.log1p)
sin = ufunc("sin", 1, {"f": "sin(a0)"}, np.sin)
cos = ufunc("cos", 1, {"f": "cos(a0)"}, np.cos)
tan = ufunc("tan", 1, {"f": "tan(a0)"}, np.tan)
arcsin = ufunc("arcsin", 1, {"f": "asin(a0)"}, np.arcsin)
arccos = ufunc("arccos", 1, {"f": "acos(a0)"}, np.arccos)
arctan = ufunc("arctan", 1, {"f": "atan(a0)"}, np.arctan)
sinh = ufunc("sinh", 1, {"f": "sinh(a0)"}, np.sinh)
cosh = ufunc("cosh", 1, {"f": "cosh(a0)"}, np.cosh)
tanh = ufunc("tanh", 1, {"f": "tanh(a0)"}, np.tanh)
arcsinh = ufunc("arcsinh", 1, {"f": "asinh(a0)"}, np.arcsinh)
arccosh = ufunc("arccosh", 1, {"f": "acosh(a0)"}, np.arccosh)
arctanh = ufunc("arctanh", 1, {"f": "atanh(a0)"}, np.arctanh)
floor = ufunc("floor", 1, {"f": "floor(a0)", "*": "a0"}, np.floor)
ceil = ufunc("ceil", 1, {"f": "ceil(a0)", "*": "a0"}, np.ceil)
trunc = ufunc("trunc", 1, {"f": "trunc(a0)", "*": "a0"}, np.trunc)
rint = ufunc("rint", 1, {"f": "rint(a0)", "*": "a0"}, np.rint)
isnan = ufunc("isnan", 1, {"f": "isnan(a0)", "*": "0"}, np.isnan)
isinf = ufunc("isinf", 1, {"f": "isinf(a0)", "*": "0"}, np.isinf)
isfinite = ufunc("isfinite", 1, {"f": "isfinite(a0)", "*": "1"}, np.isfinite)
signbit = ufunc("signbit", 1, {"f": "signbit(a0)", "*": "a0 < 0"}, np.signbit)
erf = ufunc("erf", 1, {"f": "erf(a0)"}, resolve=_resolve_float)

_where = ufunc("where", 3, {"*": "(a0 != 0) ? a1 : a2"}, resolve=_resolve_where)
_clip = ufunc(
    "clip",
    3,
    {"f": "(a0 < a1 ? a1 : (a0 > a2 ? a2 : a0))", "*": "min(max(a0, a1), a2)"},
    resolve=_resolve_clip,
)


# The ufuncs of a training step: their kernels for a float dtype compile as one program per
# layout (strided kernels, larger, only for the first few, which broadcast most).
_STRIDED_FAMILY = 6
_FAMILY = (
    add,
    subtract,
    multiply,
    true_divide,
    maximum,
    minimum,
    negative,
    exp,
    log,
    sqrt,
    tanh,
    square,
    greater,
    less,
    equal,
)
_family_members: dict = {}


def _family(kinds, flat: bool) -> list:
    """The common ufuncs over arrays of the float loop type of ``kinds``, when all of
    ``kinds`` share it (see ``kernels.register_elementwise_family``)."""
    loop = kinds[0][1]
    if loop not in ("float", "double"):
        return []
    if any(k[1] != loop or k[0] not in (loop, "scalar") for k in kinds):
        return []
    members = _family_members.get((loop, flat))
    if members is None:
        dtype = np.dtype(np.float32 if loop == "float" else np.float64)
        members = [("a0", dtype, ((loop, loop),))]  # copies
        for func in _FAMILY if flat else _FAMILY[:_STRIDED_FAMILY]:
            _, out_dtype, expr, _, _ = func.resolve([dtype] * func.nin)
            members.append((expr, out_dtype, ((loop, loop),) * func.nin))
        _family_members[loop, flat] = members
    return members


kernels.register_elementwise_family(_family)


def where(condition, x=None, y=None):
    """Elements of ``x`` where ``condition`` holds, of ``y`` elsewhere (all broadcast).

    With only ``condition``, the indices of its nonzero elements (see ``nonzero``).
    """
    if x is None and y is None:
        from pygrad.backends.opencl.indexing import nonzero

        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("opencl where: give both x and y, or neither")
    return _where(condition, x, y)


def clip(a, a_min=None, a_max=None, out=None):
    """``a`` limited to ``[a_min, a_max]`` (either bound may be None); NaN stays NaN."""
    if a_min is None and a_max is None:
        raise ValueError("opencl clip: one of a_min or a_max must be given")
    if a_min is None:
        return minimum(a, a_max, out=out)
    if a_max is None:
        return maximum(a, a_min, out=out)
    return _clip(a, a_min, a_max, out=out)
