"""Fused optimizer updates: one kernel per parameter and step reads the parameter, its gradient
and its state and writes the parameter and the state in place (and one kernel makes the
weight-decayed gradient of the WeightDecay hook).

The NumPy path of :mod:`pygrad.nn.optim` runs an update as a dozen ufuncs writing into
``out=`` arrays; on OpenCL each ufunc is a launch, so Adam would launch 13 kernels per
parameter.  The kernels here do the same arithmetic in the same order, one rounding per ufunc
(contraction into fused multiply-adds is switched off), so a device follows the CPU to the last
bit wherever its ``sqrt`` and division are correctly rounded.

Every kernel of one dtype lives in one program, built the first time any of them is asked for.
The hyper-parameters (``lr``, Adam's bias corrections ...) are run-time values read from a
small buffer, like sizes and offsets: a scheduler changing ``lr`` compiles nothing.
"""

from __future__ import annotations

import functools

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
    const T step = s[0] * g;
    param[ip] = param[ip] - step;""",
    ),
    # flag bit 0: first step (the buffer becomes g); bit 1: Nesterov momentum.
    "sgd_momentum_update": (
        ("momentum_buffer",),
        ("lr", "momentum"),
        """
    T buf;
    if (meta[FLAG] & 1) {
        buf = g;
    } else {
        buf = momentum_buffer[i0] * s[1];
        buf = buf + g;
    }
    momentum_buffer[i0] = buf;
    T step;
    if (meta[FLAG] & 2) {
        step = buf * s[1];
        step = step + g;
        step = step * s[0];
    } else {
        step = s[0] * buf;
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
    t = t + s[1];
    t = g / t;
    t = t * s[0];
    param[ip] = param[ip] - t;""",
    ),
    "adadelta_update": (
        ("square_avg", "acc_delta"),
        ("lr", "rho", "1 - rho", "eps"),
        """
    T t = g * g;
    t = t * s[2];
    T square = square_avg[i0] * s[1];
    square = square + t;
    square_avg[i0] = square;
    t = square + s[3];
    const T acc = acc_delta[i1];
    T delta = acc + s[3];
    delta = delta / t;
    delta = sqrt(delta);
    delta = delta * g;
    t = delta * s[0];
    param[ip] = param[ip] - t;
    delta = delta * delta;
    delta = delta * s[2];
    const T decayed = acc * s[1];
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
    const T p = param[ip] * s[0];
    T t = g * s[2];
    T m = exp_avg[i0] * s[1];
    m = m + t;
    exp_avg[i0] = m;
    t = g * g;
    t = t * s[4];
    T v = exp_avg_sq[i1] * s[3];
    v = v + t;
    exp_avg_sq[i1] = v;
    t = sqrt(v);
    t = t / s[5];
    t = t + s[6];
    t = m / t;
    t = t * s[7];
    param[ip] = p - t;""",
    ),
    "rmsprop_update": (
        ("square_avg",),
        ("lr", "alpha", "1 - alpha", "eps"),
        """
    T t = g * g;
    t = t * s[2];
    T square = square_avg[i0] * s[1];
    square = square + t;
    square_avg[i0] = square;
    t = sqrt(square);
    t = t + s[3];
    t = g / t;
    t = t * s[0];
    param[ip] = param[ip] - t;""",
    ),
    # The WeightDecay hook's new gradient, grad + rate * param, written to the state array
    # "decayed"; param and grad are left as they are.
    "weight_decay_grad": (
        ("decayed",),
        ("rate",),
        """
    const T t = s[0] * param[ip];
    decayed[i0] = g + t;""",
    ),
}

MAX_STATES = 2
# The kernels read their integers (n, the offsets of param, grad and the states, the flags)
# from one small read-only buffer and the hyper-parameters from another: a buffer argument is
# set in about a microsecond on PoCL, a by-value struct in several times that.  Both buffers
# are made once per distinct values and device; an optimizer repeats the integers of each
# parameter at every step, and its parameters share one set of hyper-parameters per step.
_FLAG = 3 + MAX_STATES
_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_NO_OFFSETS = [(0,) * (MAX_STATES - k) for k in range(MAX_STATES + 1)]


def _source(ctype: str) -> str:
    """Every rule's kernel for one element type, in one program."""
    parts = ["#pragma OPENCL FP_CONTRACT OFF\n", f"#define FLAG {_FLAG}\n#define T {ctype}\n"]
    for name, (states, _, body) in RULES.items():
        params = ["__global T* param", "__global const T* grad"]
        params += [f"__global T* {state}" for state in states]
        params += ["__global const long* restrict meta", "__global const T* restrict s"]
        index = "".join(f", i{k} = meta[{3 + k}] + gid" for k in range(len(states)))
        element = (
            f"    const long ip = meta[1] + gid, ig = meta[2] + gid{index};\n"
            f"    const T g = grad[ig];{body}"
        )
        parts.append(
            f"__kernel void {name}({', '.join(params)}) {{\n"
            + kernels.chunk_loop("gid", "meta[0]", element)
            + "}\n"
        )
    return "".join(parts)


def _kernel(device, dtype, rule: str):
    """The kernel of ``rule`` for ``dtype``; the first one asked for builds them all."""
    ctype = _TYPES[dtype]
    key = ("optim", ctype, rule)
    kernel = device.kernels.get(key)
    if kernel is None or type(kernel) is tuple:
        extra = [(("optim", ctype, name), name) for name in RULES]
        kernel = device.build(key, functools.partial(_source, ctype), rule, extra)
    return kernel


def update(rule: str, param, grad, states, scalars, flags: int = 0) -> bool:
    """Run optimizer update ``rule`` on ``param`` and its ``states`` in place, in one launch.

    Parameters
    ----------
    rule : str
        A key of :data:`RULES` (``"adam_update"`` ...).
    param : ndarray
        The parameter's data, changed in place (only read by ``"weight_decay_grad"``).
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
        contiguously (a gradient laid out otherwise is copied first), or the gradient sharing
        the parameter's buffer; the caller then runs its NumPy-style path, which handles
        every case.
    """
    dtype = param.dtype
    if dtype not in _TYPES or type(grad) is not ndarray or type(param) is not ndarray:
        return False
    device, shape = param._device, param.shape
    if type(grad) is ndarray and not grad.is_c_contiguous and grad.shape == shape:
        # A transposed gradient (a convolution's weights): one copy beats the unfused update.
        grad = grad.copy()
    for array in (grad, *states):
        if (
            type(array) is not ndarray
            or (array.dtype is not dtype and array.dtype != dtype)
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
    meta = (n, param.offset, grad.offset) + offsets + (flags,)
    args = [param.buffer, grad.buffer] + [state.buffer for state in states]
    args.append(kernels.MetaArgs(meta))
    args.append(kernels.real_args(dtype, scalars))
    kernels.launch_chunks(_kernel(device, dtype, rule), device, n, args)
    return True


def _register(rule: str) -> None:
    register(rule)(functools.partial(update, rule))


for _rule in RULES:
    _register(_rule)
