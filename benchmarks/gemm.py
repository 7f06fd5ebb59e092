"""Matrix-multiply throughput: NumPy (its BLAS) against pygrad's OpenCL backend, in GFLOP/s.

The cases are the square 1024^3 product in the three layouts (NN: ``a @ b``; TN: ``a.T @ b``
with ``a`` stored transposed; NT: ``a @ b.T``), the products of an MLP's training step
(784-512-512-10, batch 128: forward ``x @ W``, weight gradient ``x.T @ gy``, input gradient
``gy @ W.T``) and those of a 3x3 convolution lowered to a matrix product (batch 64 of 28x28
images, 1 -> 16 and 16 -> 32 channels: im2col columns times the filter matrix, and the two
gradient products).  Both sides multiply the same float32 data in the same layout; the
OpenCL time includes packing and ends with ``synchronize()``.  Each library runs in blocks
of ``--repeats`` timed calls after ``--warmup`` untimed ones, preceded by a pause so that the
other library's spinning worker threads have gone to sleep; the blocks of the two libraries
alternate ``--rounds`` times and each figure is the median of the fastest block.

Run ``python benchmarks/gemm.py`` (``--help`` lists the options).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

from pygrad.backends import opencl as xp  # noqa: E402

PAUSE = 0.3  # seconds before each block of runs

# (name, layout, M, K, N): layout says which operand is stored transposed.
CASES = [
    ("square", "NN", 1024, 1024, 1024),
    ("square", "TN", 1024, 1024, 1024),
    ("square", "NT", 1024, 1024, 1024),
    ("mlp fc1 x@W", "NN", 128, 784, 512),
    ("mlp fc1 x.T@gy", "TN", 784, 128, 512),
    ("mlp fc1 gy@W.T", "NT", 128, 512, 784),
    ("mlp fc2 x@W", "NN", 128, 512, 512),
    ("mlp fc2 x.T@gy", "TN", 512, 128, 512),
    ("mlp fc2 gy@W.T", "NT", 128, 512, 512),
    ("mlp fc3 x@W", "NN", 128, 512, 10),
    ("mlp fc3 x.T@gy", "TN", 512, 128, 10),
    ("mlp fc3 gy@W.T", "NT", 128, 10, 512),
    ("conv1 cols@W", "NN", 50176, 9, 16),
    ("conv1 cols.T@gy", "TN", 9, 50176, 16),
    ("conv1 gy@W.T", "NT", 50176, 16, 9),
    ("conv2 cols@W", "NN", 50176, 144, 32),
    ("conv2 cols.T@gy", "TN", 144, 50176, 32),
    ("conv2 gy@W.T", "NT", 50176, 32, 144),
]


def operands(layout: str, m: int, k: int, n: int, rng):
    """Host operands ``a`` (m, k) and ``b`` (k, n), the one named by ``layout`` a transposed
    view of contiguous data."""
    if layout == "TN":
        a = rng.standard_normal((k, m), dtype=np.float32).T
    else:
        a = rng.standard_normal((m, k), dtype=np.float32)
    if layout == "NT":
        b = rng.standard_normal((n, k), dtype=np.float32).T
    else:
        b = rng.standard_normal((k, n), dtype=np.float32)
    return a, b


def device_view(host):
    """The same view of device data: transposed operands stay transposed on the device."""
    if host.flags.c_contiguous:
        return xp.asarray(host)
    return xp.asarray(np.ascontiguousarray(host.T)).T


def _block(run, repeats: int, warmup: int, finish=None) -> float:
    """Median seconds of ``run`` over ``repeats`` calls after ``warmup`` untimed ones, after
    a pause that lets the other library's spinning worker threads go to sleep."""
    time.sleep(PAUSE)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        run()
        if finish is not None:
            finish()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure(m, k, n, layout: str, repeats: int, warmup: int, rounds: int, rng) -> tuple:
    """GFLOP/s of NumPy and of OpenCL for one case: the median of a block of runs, the best
    (least disturbed) of ``rounds`` blocks each."""
    a, b = operands(layout, m, k, n, rng)
    da, db = device_view(a), device_view(b)
    expected = a @ b
    got = (da @ db).get()
    scale = np.sqrt(k)
    if not np.allclose(got, expected, rtol=1e-3, atol=1e-3 * scale):
        raise AssertionError(f"opencl result differs from NumPy for {layout} {m}x{k}x{n}")
    best_np = best_cl = float("inf")
    for _ in range(rounds):
        best_np = min(best_np, _block(lambda: a @ b, repeats, warmup))
        best_cl = min(best_cl, _block(lambda: da @ db, repeats, warmup, xp.synchronize))
    flops = 2.0 * m * k * n
    return flops / best_np / 1e9, flops / best_cl / 1e9


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per case first")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per library and case")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'case':<18} {'layout':<6} {'M x K x N':>18} {'NumPy':>8} {'OpenCL':>8} {'ratio':>6}")
    for name, layout, m, k, n in CASES:
        if args.only not in name:
            continue
        gf_np, gf_cl = measure(m, k, n, layout, args.repeats, args.warmup, args.rounds, rng)
        size = f"{m}x{k}x{n}"
        print(
            f"{name:<18} {layout:<6} {size:>18} {gf_np:8.1f} {gf_cl:8.1f} {gf_cl / gf_np:6.2f}",
            flush=True,
        )
    print("GFLOP/s: median of the least disturbed block; OpenCL includes packing.")


if __name__ == "__main__":
    main()
