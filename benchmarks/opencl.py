"""The OpenCL fast path beside the NumPy path and PyTorch on the CPU: the table of issue 7.

One run prints, side by side, pygrad on the CPU (the NumPy path), pygrad on the first OpenCL
device, PyTorch on the CPU with 2 threads where it is installed, and the issue's target:

* chain: 1000 small ops (``y * 1.0001``, ``y + 0.001``, ``tanh``, then ``sum``; the chain of
  ``benchmarks/op_overhead.py``) on a float32 Variable of 10 elements, forward with graph,
  microseconds per op;
* rawop: one backend array op, ``xp.add(a, b)`` on 16 float32 elements (NumPy, the OpenCL
  array module, ``torch.add``), microseconds per call, 200 calls per timed run;
* gemm: float32 matrix products 1024x1024x1024 with both operands as stored (NN), the left
  one transposed (TN) and the right one transposed (NT), GFLOP/s (2 M N K per product);
* mlpgemm: the products of an MLP layer 784->512 on a batch of 128: forward ``x @ W``
  (128x784 @ 784x512, NN) and backward ``x.T @ gy`` (TN) and ``gy @ W.T`` (NT), GFLOP/s;
* fma: ``a * b + c`` on 16M float32 elements, effective GB/s counting 4 arrays of 4 bytes
  per element; NumPy also with ``out=`` (a preallocated result, in brackets);
* sums: row, column and total sums of a 4096x4096 float32 matrix, GB/s of input read;
* launches: kernels launched during one training step of the digits CNN (the model of
  ``examples/digits_cnn.py``, batch 32, Adam), after two warm-up steps.  Counted by wrapping
  PyOpenCL's one entry point for launches, ``pyopencl._cl.enqueue_nd_range_kernel``, which
  ``Kernel.__call__`` (through its generated invoker) and ``pyopencl.enqueue_nd_range_kernel``
  both reach; names bound to it in pygrad's modules are wrapped too;
* reads: blocking device-to-host copies in the same step: ``pyopencl.enqueue_copy`` calls
  with a host destination and ``is_blocking`` (PyOpenCL's default), which covers pygrad's
  ``ndarray.get()``, plus ``pyopencl.array.Array.get`` calls; non-blocking reads are noted;
* cold: the first training step of the bench CNN in a fresh process whose PoCL kernel cache
  (``POCL_CACHE_DIR``, ``POCL_KERNEL_CACHE=1``) is a new empty folder, seconds (the programs
  built in it are noted); then the same for the digits CNN;
* warm: a second fresh process on the same, now filled, cache: ``import pygrad`` (or
  ``torch``), building the bench CNN, moving it to the device and its first training step,
  seconds (NumPy is imported before the clock starts);
* mlp: one SGD training step of an MLP 784-512-512-10 with ReLU, batch 128, ms;
* digits: one Adam training step of the digits CNN, batch 32 of 1x8x8, ms;
* cnn: one SGD training step of the bench CNN of ``benchmarks/train_step.py`` (conv 1->16
  3x3, ReLU, 2x2 max pool, conv 16->32 3x3, ReLU, 2x2 max pool, linear 1568->10; batch 64 of
  1x28x28, float32), ms: the headline, OpenCL within 1.3x of PyTorch.

Every timing warms up first, then runs the frameworks in turn in blocks of repeats, with a
pause before each block (their worker threads keep spinning for a while after their work); a
figure is the median of a block, taken from the least disturbed of the rounds of blocks.
OpenCL work is waited for (``pygrad.opencl.synchronize()``) before the clock is read.  Nothing
is asserted: the table reports.

Run ``python benchmarks/opencl.py`` (``--quick`` for fewer repeats, ``--only gemm,sums`` for
some rows; ``--help`` lists them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import NamedTuple, Optional

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))  # op_overhead's chain, the models

from models import pygrad_step, torch_step  # noqa: E402  (after the path is set)

COLUMNS = ("numpy", "opencl", "torch")
HEADS = ("NumPy path", "OpenCL path", "PyTorch CPU")
TORCH_THREADS = 2


# =============================================================================================
# timing
# =============================================================================================
class Settings(NamedTuple):
    rounds: int  # blocks per framework
    scale: float  # multiplies each row's timed runs per block
    pause: float  # seconds of rest before each block


def interleaved(cases: dict, settings: Settings, repeats: int, warmup: int = 2) -> dict:
    """Seconds per call of each ``cases[column] = (run, sync)``, frameworks taking turns.

    Each framework runs ``warmup`` untimed calls, then a block of ``repeats`` timed calls (each
    followed by ``sync``, which waits for queued device work), in each of ``settings.rounds``
    rounds; the figure is the median of a block, the least of the rounds'.
    """
    repeats = max(1, round(repeats * settings.scale))
    medians: dict = {column: [] for column in cases}
    for _ in range(settings.rounds):
        for column, (run, sync) in cases.items():
            time.sleep(settings.pause)
            for _ in range(warmup):
                run()
            sync()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                sync()
                times.append(time.perf_counter() - start)
            medians[column].append(float(np.median(times)))
    return {column: min(values) for column, values in medians.items()}


def _no_sync() -> None:
    pass


class Bench:
    """What every row needs: the frameworks, their array modules and how to wait for them."""

    def __init__(self, torch, settings: Settings):
        import pygrad
        import pygrad.opencl
        from pygrad.backends import opencl as ocl
        from pygrad.backends import to_device

        self.pygrad = pygrad
        self.ocl = ocl
        self.torch = torch
        self.settings = settings
        self.sync = {"numpy": _no_sync, "opencl": pygrad.opencl.synchronize, "torch": _no_sync}
        self.to_opencl = lambda array: to_device(array, "opencl")
        self.notes: list[str] = []
        self.counts: Optional[Counter] = None  # launches and reads of one digits-CNN step
        self.start_runs: dict = {}  # fresh-process runs, by model (see start_runs)

    def columns(self) -> tuple:
        return COLUMNS if self.torch is not None else COLUMNS[:2]

    def time(self, runs: dict, repeats: int, warmup: int = 2) -> dict:
        cases = {column: (run, self.sync[column]) for column, run in runs.items()}
        return interleaved(cases, self.settings, repeats, warmup)


# =============================================================================================
# counting what the OpenCL backend asks of PyOpenCL
# =============================================================================================
@contextlib.contextmanager
def count_device_calls():
    """Count kernel launches and device-to-host reads while the block runs.

    Wraps ``pyopencl._cl.enqueue_nd_range_kernel`` (reached by ``Kernel.__call__`` and by
    ``pyopencl.enqueue_nd_range_kernel``), ``pyopencl.enqueue_copy`` and
    ``pyopencl.array.Array.get``, and every name in pygrad's loaded modules bound to one of
    them; yields a Counter with ``launches``, ``blocking reads`` and ``non-blocking reads``.
    """
    import pyopencl as cl
    import pyopencl._cl as _cl
    import pyopencl.array as cl_array

    counts: Counter = Counter()
    inside_get = [0]  # an Array.get counts once, not again for the copy it makes
    original_launch = _cl.enqueue_nd_range_kernel
    original_copy = cl.enqueue_copy
    original_get = cl_array.Array.get

    def launch(*args, **kwargs):
        counts["launches"] += 1
        return original_launch(*args, **kwargs)

    def copy(queue, dest, src, **kwargs):
        to_host = not isinstance(dest, cl.MemoryObjectHolder)
        if to_host and isinstance(src, cl.MemoryObjectHolder) and not inside_get[0]:
            blocking = kwargs.get("is_blocking", True)
            counts["blocking reads" if blocking else "non-blocking reads"] += 1
        return original_copy(queue, dest, src, **kwargs)

    def get(self, *args, **kwargs):
        counts["blocking reads"] += 1
        inside_get[0] += 1
        try:
            return original_get(self, *args, **kwargs)
        finally:
            inside_get[0] -= 1

    wrappers = [(original_launch, launch), (original_copy, copy)]
    namespaces = [_cl, cl] + [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("pygrad.") and module is not None
    ]
    patched = []
    for namespace in namespaces:
        for name, value in list(vars(namespace).items()):
            for original, wrapper in wrappers:
                if value is original:
                    setattr(namespace, name, wrapper)
                    patched.append((namespace, name, original))
    cl_array.Array.get = get
    try:
        yield counts
    finally:
        cl_array.Array.get = original_get
        for namespace, name, original in patched:
            setattr(namespace, name, original)


# =============================================================================================
# rows
# =============================================================================================
def row_chain(bench: Bench) -> dict:
    from op_overhead import pygrad_chain, torch_chain

    length = 1000
    data = np.random.default_rng(0).uniform(-1, 1, 10).astype(np.float32)
    runs = {}
    for column, device in (("numpy", "cpu"), ("opencl", "opencl")):
        x = bench.pygrad.Variable(data.copy(), device=device)
        runs[column] = lambda x=x: pygrad_chain(x, length)
    if bench.torch is not None:
        x = bench.torch.tensor(data, requires_grad=True)
        runs["torch"] = lambda: torch_chain(bench.torch, x, length)
    seconds = bench.time(runs, repeats=5, warmup=1)
    return {column: (1e6 * value / length,) for column, value in seconds.items()}


def row_rawop(bench: Bench) -> dict:
    calls = 200
    a = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    b = a[::-1].copy()

    def loop(add, x, y):
        def run():
            for _ in range(calls):
                add(x, y)

        return run

    runs = {
        "numpy": loop(np.add, a, b),
        "opencl": loop(bench.ocl.add, bench.to_opencl(a), bench.to_opencl(b)),
    }
    if bench.torch is not None:
        runs["torch"] = loop(bench.torch.add, bench.torch.from_numpy(a), bench.torch.from_numpy(b))
    seconds = bench.time(runs, repeats=10)
    return {column: (1e6 * value / calls,) for column, value in seconds.items()}


def _matmul_runs(bench: Bench, m: int, n: int, k: int, layout: str) -> dict:
    """Runs of one product (M x K) @ (K x N) whose operands are stored as ``layout`` says."""
    rng = np.random.default_rng(0)
    a_shape = (k, m) if layout[0] == "T" else (m, k)
    b_shape = (n, k) if layout[1] == "T" else (k, n)
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)

    def operands(x, y, transpose):
        return (transpose(x) if layout[0] == "T" else x), (transpose(y) if layout[1] == "T" else y)

    x, y = operands(a, b, np.transpose)
    runs = {"numpy": lambda: np.matmul(x, y)}
    ox, oy = operands(bench.to_opencl(a), bench.to_opencl(b), lambda v: v.T)
    runs["opencl"] = lambda: bench.ocl.matmul(ox, oy)
    if bench.torch is not None:
        tx, ty = operands(bench.torch.from_numpy(a), bench.torch.from_numpy(b), lambda v: v.t())
        runs["torch"] = lambda: bench.torch.matmul(tx, ty)
    return runs


def _gflops(bench: Bench, shapes: list, repeats: int) -> dict:
    figures: dict = {column: [] for column in bench.columns()}
    for m, n, k, layout in shapes:
        seconds = bench.time(_matmul_runs(bench, m, n, k, layout), repeats=repeats)
        for column, value in seconds.items():
            figures[column].append(2 * m * n * k / value / 1e9)
    return {column: tuple(values) for column, values in figures.items()}


def row_gemm(bench: Bench) -> dict:
    size = 1024
    return _gflops(bench, [(size, size, size, layout) for layout in ("NN", "TN", "NT")], 4)


def row_mlpgemm(bench: Bench) -> dict:
    # forward x @ W, then the backward products x.T @ gy (for W) and gy @ W.T (for x)
    shapes = [(128, 512, 784, "NN"), (784, 512, 128, "TN"), (128, 784, 512, "NT")]
    return _gflops(bench, shapes, 20)


def row_fma(bench: Bench) -> dict:
    n = 16 * 2**20
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    result = np.empty_like(a)

    def numpy_out():
        np.multiply(a, b, out=result)
        np.add(result, c, out=result)

    runs = {"numpy": lambda: a * b + c}
    oa, ob, oc = (bench.to_opencl(v) for v in (a, b, c))
    runs["opencl"] = lambda: oa * ob + oc
    if bench.torch is not None:
        ta, tb, tc = (bench.torch.from_numpy(v) for v in (a, b, c))
        runs["torch"] = lambda: ta * tb + tc
    seconds = bench.time(runs, repeats=6)
    with_out = bench.time({"numpy": numpy_out}, repeats=6)["numpy"]
    gb = 4 * 4 * n / 1e9
    figures = {column: (gb / value,) for column, value in seconds.items()}
    figures["numpy"] += (gb / with_out,)
    return figures


def row_sums(bench: Bench) -> dict:
    size = 4096
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    oa = bench.to_opencl(a)
    ta = bench.torch.from_numpy(a) if bench.torch is not None else None
    figures: dict = {column: [] for column in bench.columns()}
    for axis in (1, 0, None):  # row sums, column sums, the total
        runs = {"numpy": lambda axis=axis: a.sum(axis=axis)}
        runs["opencl"] = lambda axis=axis: bench.ocl.sum(oa, axis=axis)
        if ta is not None:
            runs["torch"] = lambda axis=axis: ta.sum() if axis is None else ta.sum(dim=axis)
        for column, value in bench.time(runs, repeats=8).items():
            figures[column].append(a.nbytes / value / 1e9)
    return {column: tuple(values) for column, values in figures.items()}


def _counted_digits_step(bench: Bench) -> Counter:
    step = pygrad_step("digits", "opencl")
    for _ in range(2):
        step()
    bench.pygrad.opencl.synchronize()
    # The counting must see launches at all: an add whose result is read launches a kernel.
    probe = bench.to_opencl(np.ones(4, np.float32))
    with count_device_calls() as counts:
        bench.ocl.add(probe, probe).get()
    if counts["launches"] < 1:
        raise RuntimeError("the launch counter saw no kernel launch for xp.add")
    # The step alone: synchronize() is a wait the user asks for (where the device's deferred
    # range checks are read), not part of the step.
    with count_device_calls() as counts:
        step()
    bench.pygrad.opencl.synchronize()
    return counts


def row_launches(bench: Bench) -> dict:
    counts = _counted_digits_step(bench)
    bench.counts = counts
    bench.notes.append(
        "launches: calls of pyopencl._cl.enqueue_nd_range_kernel (where Kernel.__call__ and "
        "pyopencl.enqueue_nd_range_kernel lead) in one step, after two warm-up steps"
    )
    return {"opencl": (counts["launches"],)}


def row_reads(bench: Bench) -> dict:
    counts = bench.counts or _counted_digits_step(bench)
    if counts["non-blocking reads"]:
        bench.notes.append(
            f"reads: {counts['non-blocking reads']} non-blocking device-to-host reads "
            "in the step besides the blocking ones"
        )
    return {"opencl": (counts["blocking reads"],)}


# --- fresh processes --------------------------------------------------------------------------
def start_child(framework: str, kind: str) -> None:
    """In a fresh process: import, build model ``kind``, run its first step; print JSON."""
    started = time.perf_counter()
    programs = Counter()
    if framework == "torch":
        import torch

        torch.set_num_threads(TORCH_THREADS)
        imported = time.perf_counter()
        step = torch_step(torch, kind)
        built = time.perf_counter()
        step()
    else:
        import pygrad

        device = "opencl" if framework == "opencl" else "cpu"
        if device == "opencl":
            import pyopencl as cl

            import pygrad.opencl

            original_build = cl.Program.build

            def build(self, *args, **kwargs):
                programs["built"] += 1
                return original_build(self, *args, **kwargs)

            cl.Program.build = build
            pygrad.opencl.synchronize()  # creates the device: part of starting up
        imported = time.perf_counter()
        step = pygrad_step(kind, device)
        if device == "opencl":
            pygrad.opencl.synchronize()
        built = time.perf_counter()
        step()
        if device == "opencl":
            pygrad.opencl.synchronize()
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "import": imported - started,
                "build": built - imported,
                "first_step": done - built,
                "total": done - started,
                "programs": programs["built"],
            }
        )
    )


def run_child(framework: str, kind: str, cache: str) -> dict:
    path = os.pathsep.join([ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])
    env = dict(os.environ, POCL_CACHE_DIR=cache, POCL_KERNEL_CACHE="1", PYTHONPATH=path)
    command = [sys.executable, os.path.abspath(__file__), "--start-child", framework, kind]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["no output"]
        raise RuntimeError(f"{framework} {kind} child failed: {lines[-1]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def start_runs(bench: Bench, kind: str) -> dict:
    """Fresh-process runs of model ``kind``, made once: OpenCL on a new empty PoCL cache
    (``"cold"``), again on the cache it filled (``"warm"``), and the NumPy path and PyTorch."""
    cached = bench.start_runs.get(kind)
    if cached is None:
        cached = {}
        with tempfile.TemporaryDirectory(prefix="pocl-cache-") as cache:
            cached["cold"] = run_child("opencl", kind, cache)
            cached["warm"] = run_child("opencl", kind, cache)
            cached["numpy"] = run_child("numpy", kind, cache)
            if bench.torch is not None:
                cached["torch"] = run_child("torch", kind, cache)
        bench.start_runs[kind] = cached
    return cached


def _cold(bench: Bench, kind: str) -> dict:
    runs = start_runs(bench, kind)
    cold = runs["cold"]
    bench.notes.append(
        f"cold ({kind}): {cold['programs']} programs built; {cold['import']:.2f} s to import "
        f"and set up the device, {cold['build']:.2f} s to build and move the model, "
        f"first step {cold['first_step']:.2f} s"
    )
    figures = {"opencl": (cold["first_step"],), "numpy": (runs["numpy"]["first_step"],)}
    if "torch" in runs:
        figures["torch"] = (runs["torch"]["first_step"],)
    return figures


def row_cold(bench: Bench) -> dict:
    return _cold(bench, "cnn")


def row_cold_digits(bench: Bench) -> dict:
    return _cold(bench, "digits")


def row_warm(bench: Bench) -> dict:
    runs = start_runs(bench, "cnn")
    warm = runs["warm"]
    bench.notes.append(
        f"warm: {warm['import']:.2f} s import and device set-up, {warm['build']:.2f} s model, "
        f"{warm['first_step']:.2f} s first step, {warm['programs']} programs loaded"
    )
    figures = {"opencl": (warm["total"],), "numpy": (runs["numpy"]["total"],)}
    if "torch" in runs:
        figures["torch"] = (runs["torch"]["total"],)
    return figures


# --- training steps ---------------------------------------------------------------------------
def _step_ms(bench: Bench, kind: str, repeats: int) -> dict:
    runs = {"numpy": pygrad_step(kind, "cpu"), "opencl": pygrad_step(kind, "opencl")}
    if bench.torch is not None:
        runs["torch"] = torch_step(bench.torch, kind)
    seconds = bench.time(runs, repeats=repeats, warmup=3)
    return {column: (1000 * value,) for column, value in seconds.items()}


def row_mlp(bench: Bench) -> dict:
    return _step_ms(bench, "mlp", 12)


def row_digits(bench: Bench) -> dict:
    return _step_ms(bench, "digits", 12)


def row_cnn(bench: Bench) -> dict:
    figures = _step_ms(bench, "cnn", 10)
    if "torch" in figures:
        ratio = figures["opencl"][0] / figures["torch"][0]
        bench.notes.append(f"cnn: OpenCL step / PyTorch step = {ratio:.2f} (target <= 1.3)")
    return figures


# =============================================================================================
# the table
# =============================================================================================
class Row(NamedTuple):
    key: str
    label: str
    target: str
    measure: Callable[[Bench], dict]
    formats: tuple  # one format per figure; a column's figures are joined with " / "
    met: Optional[Callable[[dict], bool]] = None  # does the OpenCL figure meet the target?


def _each_at_least(share: float) -> Callable[[dict], bool]:
    return lambda f: all(o >= share * n for o, n in zip(f["opencl"], f["numpy"]))


# fmt: off
ROWS = [
    Row("chain", "1000-op chain, forward with graph, µs/op", "≤ 15",
        row_chain, ("{:.1f}",), lambda f: f["opencl"][0] <= 15),
    Row("rawop", "raw backend array op (add, 16 floats), µs", "≤ 10",
        row_rawop, ("{:.1f}",), lambda f: f["opencl"][0] <= 10),
    Row("gemm", "GEMM 1024³ NN / TN / NT, GFLOP/s", "≥ 80% of NumPy in each",
        row_gemm, ("{:.0f}",) * 3, _each_at_least(0.8)),
    Row("mlpgemm", "MLP GEMMs 128x784x512 NN / TN / NT, GFLOP/s", "≥ NumPy",
        row_mlpgemm, ("{:.0f}",) * 3, _each_at_least(1.0)),
    Row("fma", "16M `a*b+c`, effective GB/s", "≥ 17.8",
        row_fma, ("{:.1f}", "({:.1f} out=)"), lambda f: f["opencl"][0] >= 17.8),
    Row("sums", "row / column / total sums 4096², GB/s", "≥ NumPy each",
        row_sums, ("{:.1f}",) * 3, _each_at_least(1.0)),
    Row("launches", "kernel launches per digits-CNN training step", "≤ 80",
        row_launches, ("{:d}",), lambda f: f["opencl"][0] <= 80),
    Row("reads", "blocking device→host reads per training step", "0",
        row_reads, ("{:d}",), lambda f: f["opencl"][0] == 0),
    Row("cold", "first bench-CNN step on a cold PoCL cache, s", "≤ 3 s",
        row_cold, ("{:.2f}",), lambda f: f["opencl"][0] <= 3),
    Row("colddigits", "first digits-CNN step on a cold PoCL cache, s", "≤ 3 s",
        row_cold_digits, ("{:.2f}",), lambda f: f["opencl"][0] <= 3),
    Row("warm", "process start, warm cache: import + bench CNN + first step, s", "≤ 0.3 s",
        row_warm, ("{:.2f}",), lambda f: f["opencl"][0] <= 0.3),
    Row("mlp", "MLP 784-512-512-10 b128 SGD step, ms", "≤ NumPy path",
        row_mlp, ("{:.2f}",), lambda f: f["opencl"][0] <= f["numpy"][0]),
    Row("digits", "digits CNN b32 Adam step, ms", "≤ NumPy path",
        row_digits, ("{:.2f}",), lambda f: f["opencl"][0] <= f["numpy"][0]),
    Row("cnn", "bench CNN b64 SGD step, ms (headline)", "≤ 1.3x PyTorch",
        row_cnn, ("{:.2f}",), lambda f: "torch" in f and f["opencl"][0] <= 1.3 * f["torch"][0]),
]
# fmt: on


def format_cell(row: Row, figures: Optional[tuple]) -> str:
    """``figures`` in ``row.formats``, joined by " / " (or a space before a bracketed one)."""
    if figures is None:
        return "-"
    text = row.formats[0].format(figures[0])
    for fmt, value in zip(row.formats[1:], figures[1:]):
        text += (" " if fmt.startswith("(") else " / ") + fmt.format(value)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one round of short blocks")
    parser.add_argument(
        "--only",
        metavar="ROWS",
        help="comma-separated rows to run, of: " + ", ".join(row.key for row in ROWS),
    )
    parser.add_argument("--start-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.start_child:
        start_child(*args.start_child)
        return 0

    rows = ROWS
    if args.only:
        wanted = [key.strip() for key in args.only.split(",") if key.strip()]
        unknown = [key for key in wanted if key not in {row.key for row in ROWS}]
        if unknown:
            parser.error(f"--only: unknown rows {', '.join(unknown)}")
        rows = [row for row in ROWS if row.key in wanted]

    import pygrad.opencl

    if not pygrad.opencl.is_available():
        print(
            "benchmarks/opencl.py needs an OpenCL device, and none was found: install PyOpenCL "
            "and a driver (pip install pygrad[opencl] brings PoCL, a CPU one)",
            file=sys.stderr,
        )
        return 1
    try:
        import torch

        torch.set_num_threads(TORCH_THREADS)
    except ImportError:
        torch = None

    settings = Settings(rounds=1, scale=0.4, pause=0.05) if args.quick else Settings(3, 1.0, 0.2)
    bench = Bench(torch, settings)
    started = time.perf_counter()
    lines = []
    for row in rows:
        try:
            figures = row.measure(bench)
        except Exception as error:  # a report: one failing row must not hide the others
            cells = ["failed"] * len(COLUMNS)
            bench.notes.append(f"{row.key}: {type(error).__name__}: {error}")
            met = "-"
        else:
            cells = [format_cell(row, figures.get(column)) for column in COLUMNS]
            met = "-" if row.met is None else ("yes" if row.met(figures) else "no")
        lines.append((row, cells, met))

    device = pygrad.opencl.devices()[0]
    torch_name = f"PyTorch {torch.__version__} ({TORCH_THREADS} threads)" if torch else "no PyTorch"
    print(
        f"pygrad {pygrad.__version__}, NumPy {np.__version__}, {torch_name}; OpenCL: "
        f"{device.description} ({device.platform}); {os.cpu_count()} cores"
    )
    print()
    print("| measure | " + " | ".join(HEADS) + " | target | OpenCL meets it |")
    print("| --- | " + " | ".join("---:" for _ in HEADS) + " | --- | --- |")
    for row, cells, met in lines:
        print(f"| {row.label} | " + " | ".join(cells) + f" | {row.target} | {met} |")
    print()
    for note in bench.notes:
        print(f"- {note}")
    print(f"- the rows took {time.perf_counter() - started:.0f} s")
    quick = " --quick" if args.quick else ""
    only = f" --only {args.only}" if args.only else ""
    print(f"command: python benchmarks/opencl.py{quick}{only}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
