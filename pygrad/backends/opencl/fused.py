"""Fused kernels of the OpenCL backend for hot composites, looked up by name.

Functions ask :func:`pygrad.backends.fused_op` for a fused kernel (``fused_op(xp, "im2col")``)
and compute the same result from NumPy-style calls when a backend has none.  A module of
this backend registers its kernels here with :func:`register`; the package imports every such
module, so the table is complete once ``pygrad.backends.opencl`` is imported.
"""

from __future__ import annotations

__all__ = ["fused_ops", "register"]

fused_ops: dict = {}


def register(name: str):
    """Decorator: make the function the fused kernel ``name`` of this backend."""

    def decorate(function):
        if name in fused_ops:
            raise ValueError(f"opencl: fused kernel {name!r} is registered twice")
        fused_ops[name] = function
        return function

    return decorate
