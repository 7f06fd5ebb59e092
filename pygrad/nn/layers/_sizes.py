"""The check every layer constructor makes of the sizes it is given (``in_size``,
``out_channels``, ``num_features`` ...), so that a float, a string or a bool is refused with
the same clear message everywhere instead of failing deep inside NumPy."""

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
