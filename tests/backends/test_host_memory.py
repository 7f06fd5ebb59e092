"""Tests of pygrad/backends/host_memory.py: the allocator settings made at import."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pygrad.backends import host_memory

ROOT = Path(__file__).parents[2]
IS_GLIBC = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None
TUNED = IS_GLIBC and os.environ.get("PYGRAD_TUNE_MALLOC", "1") != "0"
WHY_NOT = "the allocator is tuned on glibc only, unless PYGRAD_TUNE_MALLOC=0"


def _tuned_in_fresh_process(env_value):
    env = dict(os.environ)
    env.pop("PYGRAD_TUNE_MALLOC", None)
    if env_value is not None:
        env["PYGRAD_TUNE_MALLOC"] = env_value
    code = "import pygrad.backends.host_memory as h; print(h.tune())"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@pytest.mark.skipif(not TUNED, reason=WHY_NOT)
def test_import_tunes_glibc_malloc():
    assert host_memory.tune() is True
    assert _tuned_in_fresh_process(None) == "True"


def test_tuning_can_be_turned_off_with_the_environment():
    assert _tuned_in_fresh_process("0") == "False"


@pytest.mark.skipif(not TUNED, reason=WHY_NOT)
def test_large_arrays_freed_in_a_loop_are_not_faulted_in_again():
    import resource

    import numpy as np

    def step():
        # Large enough for glibc's default settings to use mmap for it.
        a = np.ones(2**20, dtype=np.float32)
        return float(a.sum())

    step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # Without the tuning each step faults its 4 MiB in again: about 1,000 pages a step.
    assert faults < 200
