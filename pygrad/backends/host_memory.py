"""Host memory: keep the C allocator from handing the arrays of every step back to the system.

A training step allocates and frees the same large arrays (convolution windows, activations,
gradients of a few MiB each) again and again.  glibc's ``malloc`` serves blocks that large
with ``mmap`` and returns freed memory at the top of its heap to the system, so each step
faults its arrays in afresh, page by page: in a small CNN that is thousands of page faults
and close to half of the step's time.  :func:`tune` raises both limits so that such blocks
come from the heap and stay there for the next step.  Memory the process has freed is then
kept for reuse rather than returned (up to ``TRIM_THRESHOLD`` bytes of it); the peak a
program reaches does not change.

``import pygrad`` calls :func:`tune` once.  Set the environment variable
``PYGRAD_TUNE_MALLOC=0`` before importing pygrad to leave the allocator as it is.  On
systems whose C library is not glibc nothing is changed.
"""

from __future__ import annotations

import os

__all__ = ["tune", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

# glibc's largest accepted mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 256 * 2**20

# mallopt's parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_tuned = None


def tune() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (once; later calls do nothing).

    Returns
    -------
    bool
        Whether the allocator now runs with pygrad's settings: False where the C library is
        not glibc, where ``mallopt`` refused them, or where ``PYGRAD_TUNE_MALLOC=0`` is set.
    """
    global _tuned
    if _tuned is None:
        _tuned = os.environ.get("PYGRAD_TUNE_MALLOC", "1") != "0" and _set_thresholds()
    return _tuned


def _set_thresholds() -> bool:
    # Other C libraries' mallopt, where there is one, takes other parameters.
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (AttributeError, ValueError, OSError):  # no confstr, or no such name here
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success and 0 when it refuses a value.
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
