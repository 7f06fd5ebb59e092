"""Bandwidth of sums: NumPy against pygrad's OpenCL backend, side by side in one run.

Four reductions of float32 data, each reading every element once:

* row sums, column sums and the total of a 4096 x 4096 matrix (``axis=1``, ``axis=0``,
  ``axis=None``);
* per-channel sums of a (64, 32, 28, 28) batch over axes (0, 2, 3), as batch normalisation
  and bias gradients compute them.

Figures are GB/s of input read (bytes of the input divided by the median time of
``--repeats`` runs after ``--warmup`` untimed ones), so the higher the better.  OpenCL timings
include waiting for the device (:func:`pygrad.backends.opencl.synchronize`).  The runs of the
two are interleaved so that a busy machine slows both alike, and each result is checked
against a float64 reference.

Run ``python benchmarks/reductions.py`` (``--help`` lists the options).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from pygrad.backends import opencl  # noqa: E402

CASES = [
    ("row sums 4096x4096", (4096, 4096), 1),
    ("column sums 4096x4096", (4096, 4096), 0),
    ("total 4096x4096", (4096, 4096), None),
    ("per-channel (64,32,28,28)", (64, 32, 28, 28), (0, 2, 3)),
]


def numpy_sum(host, axis):
    return lambda: host.sum(axis=axis)


def opencl_sum(device_array, axis):
    def run():
        opencl.sum(device_array, axis=axis)
        opencl.synchronize()

    return run


def median_seconds(runs: dict, warmup: int, repeats: int) -> dict:
    """Median time of each callable of ``runs``, interleaving them run by run."""
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs of each (3)")
    parser.add_argument("--repeats", type=int, default=15, help="timed runs of each (15)")
    args = parser.parse_args(argv)

    device = opencl.get_device()
    print(f"OpenCL device: {device.description}")
    print(f"{'float32 sum':28s} {'NumPy GB/s':>11s} {'OpenCL GB/s':>12s} {'ratio':>6s}")
    rng = np.random.default_rng(0)
    for label, shape, axis in CASES:
        host = rng.standard_normal(shape).astype(np.float32)
        device_array = opencl.asarray(host)
        exact = host.astype(np.float64).sum(axis=axis)
        got = opencl.sum(device_array, axis=axis).get()
        np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-3, err_msg=label)
        seconds = median_seconds(
            {"numpy": numpy_sum(host, axis), "opencl": opencl_sum(device_array, axis)},
            args.warmup,
            args.repeats,
        )
        numpy_rate = host.nbytes / seconds["numpy"] / 1e9
        opencl_rate = host.nbytes / seconds["opencl"] / 1e9
        print(f"{label:28s} {numpy_rate:11.1f} {opencl_rate:12.1f} {opencl_rate / numpy_rate:6.2f}")


if __name__ == "__main__":
    main()
