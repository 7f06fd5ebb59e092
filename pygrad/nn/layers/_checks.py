"""Checks shared by the layers: the sizes a constructor is given (``in_size``,
``out_channels``, ``num_features`` ...) and the kind of data a forward pass is given, so that
a float size or complex data is refused with the same clear message everywhere instead of
failing deep inside NumPy or, worse, being half used."""

from __future__ import annotations

import numpy as np


def positive_sizes(layer: str, **sizes) -> tuple:
    """Return ``sizes`` (given by name, in order) as Python ints, or raise naming ``layer``.

    Raises
    ------
    TypeError
        If a size is not an int (a bool, a float such as ``2.5`` or ``4.0``, a string ...).
    ValueError
        If a size is zero or negative.
    """
    for name, value in sizes.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(
                f"{layer}: {name} must be an int, got {value!r} of type {type(value).__name__}"
            )
    if any(value <= 0 for value in sizes.values()):
        given = ", ".join(f"{name}={value}" for name, value in sizes.items())
        raise ValueError(f"{layer}: sizes must be positive, got {given}")
    return tuple(int(value) for value in sizes.values())


def real_input(layer, x, weight=None) -> None:
    """Raise a TypeError when ``x`` is complex and ``weight`` (a layer's parameter) is not.

    NumPy would compute the forward pass in complex numbers and then drop the imaginary part
    of the weight's gradient when it is stored into the real parameter, with no more than a
    ``ComplexWarning``: training would silently follow the wrong gradient.
    """
    if x.dtype.kind == "c" and (weight is None or weight.dtype.kind != "c"):
        raise TypeError(
            f"{type(layer).__name__}: got complex input (dtype {x.dtype}) for real parameters; "
            "give it real data (x.real, or the real and imaginary parts as separate features)"
        )
