"""Switches of the graph core, per thread: whether to record graphs and whether we are training."""

from __future__ import annotations

import contextlib
import threading


class _ThreadConfig(threading.local):
    """Settings read by the graph core and by train-only functions, one set per thread.

    ``Config`` is the one instance; reading or assigning ``Config.enable_backprop`` or
    ``Config.train`` affects the calling thread only (as PyTorch's grad mode does), and every
    thread starts from the defaults below.  A ``threading.local`` keeps the read that every op
    makes as cheap as a plain attribute.

    Attributes
    ----------
    enable_backprop : bool
        When False, functions compute their outputs but record no graph (see :func:`no_grad`).
        Default True.
    train : bool
        When False, train-only behaviour (dropout, batch statistics) is switched off
        (see :func:`test_mode`).  Default True.
    """

    # Class attributes are the defaults a thread sees until it assigns its own value.
    enable_backprop = True
    train = True

    def __repr__(self) -> str:
        return f"Config(enable_backprop={self.enable_backprop}, train={self.train})"


Config = _ThreadConfig()
_SETTINGS = ("enable_backprop", "train")


@contextlib.contextmanager
def using_config(name: str, value):
    """Set ``Config.<name>`` to ``value`` for this thread inside a ``with`` block, then restore it.

    Other threads keep their own settings throughout.
    """
    if name not in _SETTINGS:
        raise ValueError(f"using_config: unknown setting {name!r}; known: enable_backprop, train")
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad():
    """Context manager in which no computational graph is recorded (in this thread).

    Example
    -------
    >>> with no_grad():
    ...     y = x * 2      # y.creator is None
    """
    return using_config("enable_backprop", False)


def test_mode():
    """Context manager that switches train-only behaviour off in this thread (``Config.train``)."""
    return using_config("train", False)
