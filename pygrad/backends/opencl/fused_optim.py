"""Fused optimizer updates: one kernel per parameter and step reads the parameter, its gradient
and its state and writes the parameter and the state in place.

The NumPy path of :mod:`pygrad.nn.optim` runs an update as a dozen ufuncs writing into
``out=`` arrays; on OpenCL each ufunc is a launch, so Adam would launch 13 kernels per
parameter.  The kernels here do the same arithmetic in the same order, one rounding per ufunc
(contraction into fused multiply-adds is switched off), so a device follows the CPU to the last
bit wherever its ``sqrt`` and division are correctly rounded.

Every kernel of one dtype lives in one program, built the first time any of them is asked for.
Sizes, offsets and flags travel in one struct with the hyper-parameters (``lr``, Adam's bias
corrections ...), which are run-time values: a scheduler changing ``lr`` compiles nothing.
"""

from __future__ import annotations

import functools
import struct

import numpy as np

from pygrad.backends.opencl import kernels
from pygrad.backends.opencl.array import ndarray
from pygrad.backends.opencl.fused import register

__all__ = ["RULES", "update"]

# Each rule: its state arrays (kernel arguments after param and grad), the meaning of its
# scalars s[0], s[1] ... (in the order optimizers pass them) and the body, which reads the
# gradient as ``g`` and indexes param, grad and state k with ``ip``, ``ig`` and ``i<k>``.
# One statement per ufunc of the NumPy path keeps its roundings.
RULES = {
    "sgd_update": (
        (),
        ("lr",),
        """
    const T step = a.s[0] * g;
    param[ip] = param[ip] - step;""",
    ),
    # flag bit 0: first step (the buffer becomes g); bit 1: Nesterov momentum.
    "sgd_momentum_update": (
        ("momentum_buffer",),
        ("lr", "momentum"),
        """
    T buf;
    if (a.i[FLAG] & 1) {
        buf = g;
    } else {
        buf = momentum_buffer[i0] * a.s[1];
        buf = buf + g;
    }
    momentum_buffer[i0] = buf;
    T step;
    if (a.i[FLAG] & 2) {
        step = buf * a.s[1];
        step = step + g;
        step = step * a.s[0];
    } else {
        step = a.s[0] * buf;
    }
    param[ip] = param[ip] - step;""",
    ),
    "adagrad_update": (
        ("sum",),
        ("lr", "eps"),
        """
    T t = g * g;
    const T total = sum[i0] + t;
    sum[i0] = total;
    t = sqrt(total);
    t = t + a.s[1];
    t = g / t;
    t = t * a.s[0];
    param[ip] = param[ip] - t;""",
    ),
    "adadelta_update": (
        ("square_avg", "acc_delta"),
        ("lr", "rho", "1 - rho", "eps"),
        """
    T t = g * g;
    t = t * a.s[2];
    T square = square_avg[i0] * a.s[1];
    square = square + t;
    square_avg[i0] = square;
    t = square + a.s[3];
    const T acc = acc_delta[i1];
    T delta = acc + a.s[3];
    delta = delta / t;
    delta = sqrt(delta);
    delta = delta * g;
    t = delta * a.s[0];
    param[ip] = param[ip] - t;
    delta = delta * delta;
    delta = delta * a.s[2];
    const T decayed = acc * a.s[1];
    acc_delta[i1] = decayed + delta;""",
    ),
    # s[0] is AdamW's decoupled decay factor 1 - lr * weight_decay; Adam passes 1, and
    # multiplying by one changes no value.
    "adam_update": (
        ("exp_avg", "exp_avg_sq"),
        (
            "decay",
            "beta_1",
            "1 - beta_1",
            "beta_2",
            "1 - beta_2",
            "sqrt(1 - beta_2**t)",
            "eps",
            "lr / (1 - beta_1**t)",
        ),
        """
    const T p = param[ip] * a.s[0];
    T t = g * a.s[2];
    T m = exp_avg[i0] * a.s[1];
    m = m + t;
    exp_avg[i0] = m;
    t = g * g;
    t = t * a.s[4];
    T v = exp_avg_sq[i1] * a.s[3];
    v = v + t;
    exp_avg_sq[i1] = v;
    t = sqrt(v);
    t = t / a.s[5];
    t = t + a.s[6];
    t = m / t;
    t = t * a.s[7];
    param[ip] = p - t;""",
    ),
    "rmsprop_update": (
        ("square_avg",),
        ("lr", "alpha", "1 - alpha", "eps"),
        """
    T t = g * g;
    t = t * a.s[2];
    T square = square_avg[i0] * a.s[1];
    square = square + t;
    square_avg[i0] = square;
    t = sqrt(square);
    t = t + a.s[3];
    t = g / t;
    t = t * a.s[0];
    param[ip] = param[ip] - t;""",
    ),
}

MAX_STATES = 2
MAX_SCALARS = 8
# The struct argument: n, the offsets of param, grad and the states, the flags; the scalars.
_INTS = 3 + MAX_STATES + 1
_FLAG = _INTS - 1
_TYPES = {np.dtype(np.float32): ("float", "f"), np.dtype(np.float64): ("double", "d")}
# struct.pack rounds a Python float to float32 as NumPy does when it meets a float32 array.
_PACKERS = {
    dtype: struct.Struct(f"<{_INTS}q{MAX_SCALARS}{code}").pack
    for dtype, (_, code) in _TYPES.items()
}
_ARG_DTYPES = {
    dtype: np.dtype([("i", "<i8", _INTS), ("s", dtype, MAX_SCALARS)]) for dtype in _TYPES
}
_PADDING = [(0.0,) * (MAX_SCALARS - k) for k in range(MAX_SCALARS + 1)]
_NO_OFFSETS = [(0,) * (MAX_STATES - k) for k in range(MAX_STATES + 1)]


def _source(ctype: str) -> str:
    """Every rule's kernel for one element type, in one program."""
    parts = [
        "#pragma OPENCL FP_CONTRACT OFF\n",
        f"#define FLAG {_FLAG}\n",
        f"typedef struct {{ long i[{_INTS}]; {ctype} s[{MAX_SCALARS}]; }} optim_args;\n",
        f"#define T {ctype}\n",
    ]
    for name, (states, _, body) in RULES.items():
        params = ["__global T* param", "__global const T* grad"]
        params += [f"__global T* {state}" for state in states]
        params.append("const optim_args a")
        index = "".join(f", i{k} = a.i[{3 + k}] + gid" for k in range(len(states)))
        parts.append(
            f"__kernel void {name}({', '.join(params)}) {{\n"
            "    const long gid = get_global_id(0);\n"
            "    if (gid >= a.i[0]) return;\n"
            f"    const long ip = a.i[1] + gid, ig = a.i[2] + gid{index};\n"
            "    const T g = grad[ig];"
            f"{body}\n}}\n"
        )
    return "".join(parts)


def _kernel(device, dtype, rule: str):
    """The kernel of ``rule`` for ``dtype`` with its struct argument declared, so that a launch
    sets it from bytes instead of probing the Python object (several microseconds on PoCL)."""
    ctype = _TYPES[dtype][0]
    key = ("optim", ctype, rule)
    typed_key = key + ("typed",)
    kernel = device.kernels.get(typed_key)
    if kernel is None:
        extra = [(("optim", ctype, name), name) for name in RULES]
        kernel = device.build(key, functools.partial(_source, ctype), rule, extra)
        states = RULES[rule][0]
        kernel.set_scalar_arg_dtypes([None] * (2 + len(states)) + [_ARG_DTYPES[dtype]])
        device.kernels[typed_key] = kernel
    return kernel


def update(rule: str, param, grad, states, scalars, flags: int = 0) -> bool:
    """Run optimizer update ``rule`` on ``param`` and its ``states`` in place, in one launch.

    Parameters
    ----------
    rule : str
        A key of :data:`RULES` (``"adam_update"`` ...).
    param : ndarray
        The parameter's data, changed in place.
    grad : ndarray
        Its gradient, shaped like ``param``; only read.
    states : sequence of ndarray
        The rule's state arrays, in the order of ``RULES[rule][0]``, changed in place.
    scalars : tuple of float
        The rule's hyper-parameters, in the order of ``RULES[rule][1]``, as Python floats
        (rounded to the parameter's dtype here, as NumPy rounds a Python scalar).
    flags : int
        Bits the rule reads (see :data:`RULES`).

    Returns
    -------
    bool
        False, with nothing done, when the arrays do not suit the kernel: not every one an
        OpenCL array of the parameter's float32 or float64 dtype, shape and device, laid out
        contiguously, or the gradient sharing the parameter's buffer; the caller then runs
        its NumPy-style path, which handles every case.
    """
    dtype = param.dtype
    pack = _PACKERS.get(dtype)
    if pack is None or type(grad) is not ndarray or type(param) is not ndarray:
        return False
    device, shape = param._device, param.shape
    for array in (grad, *states):
        if (
            type(array) is not ndarray
            or array.dtype != dtype
            or array.shape != shape
            or array._device is not device
            or not array.is_c_contiguous
        ):
            return False
    if not param.is_c_contiguous or grad.buffer is param.buffer:
        return False
    n = param.size
    if n == 0:
        return True
    offsets = tuple(state.offset for state in states) + _NO_OFFSETS[len(states)]
    try:
        args = pack(
            n, param.offset, grad.offset, *offsets, flags, *scalars, *_PADDING[len(scalars)]
        )
    except OverflowError:  # a hyper-parameter past the dtype's range: NumPy's path gives inf
        return False
    kernel = _kernel(device, dtype, rule)
    buffers = [param.buffer, grad.buffer] + [state.buffer for state in states]
    kernels._launch(kernel, device, n, buffers + [args])
    return True


def _register(rule: str) -> None:
    register(rule)(functools.partial(update, rule))


for _rule in RULES:
    _register(_rule)
