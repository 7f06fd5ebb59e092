"""Global switches of the graph core: whether to record graphs and whether we are training."""

from __future__ import annotations

import contextlib


class Config:
    """Process-wide settings read by the graph core and by train-only functions.

    Attributes
    ----------
    enable_backprop : bool
        When False, functions compute their outputs but record no graph (see :func:`no_grad`).
    train : bool
        When False, train-only behaviour (dropout, batch statistics) is switched off
        (see :func:`test_mode`).
    """

    enable_backprop = True
    train = True


@contextlib.contextmanager
def using_config(name: str, value):
    """Set ``Config.<name>`` to ``value`` inside a ``with`` block and restore it afterwards."""
    if not hasattr(Config, name):
        raise ValueError(f"using_config: unknown setting {name!r}; known: enable_backprop, train")
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad():
    """Context manager in which no computational graph is recorded.

    Example
    -------
    >>> with no_grad():
    ...     y = x * 2      # y.creator is None
    """
    return using_config("enable_backprop", False)


def test_mode():
    """Context manager that switches train-only behaviour off (``Config.train = False``)."""
    return using_config("train", False)
