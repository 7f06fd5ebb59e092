"""Training-step speed and backward-pass memory of pygrad, beside PyTorch where installed.

Measures, float32 end to end on the CPU:

* milliseconds per SGD training step of an MLP 784-512-512-10 with ReLU (batch 128,
  softmax cross entropy);
* milliseconds per SGD training step of a small CNN (conv 1->16 3x3 pad 1, ReLU, 2x2 max
  pool, conv 16->32 3x3 pad 1, ReLU, 2x2 max pool, linear 1568->10; batch 64 of 1x28x28);
* the peak extra memory (resident set size above the state after building the model) of one
  forward and backward pass of a 16-layer 2048-wide ReLU MLP on a batch of 256, after one
  forward pass without gradients has set up the libraries' workspaces.  Each framework is
  measured in a fresh subprocess so that earlier allocations do not hide it.

Run ``python benchmarks/train_step.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from models import pygrad_step, torch_step  # noqa: E402  (after the path is set)


def _interleaved_ms(steps: dict, repeats: int, rounds: int = 5, warmup: int = 3) -> dict:
    """Milliseconds per step of each of ``steps`` ({framework: step}): the median of a block
    of steps, in the least disturbed of ``rounds`` blocks.

    The frameworks take turns in ``rounds`` blocks of ``repeats / rounds`` steps, so that a
    busy machine slows them alike.  Blocks rather than single steps, with a pause before
    each: a framework's worker threads (OpenBLAS's, OpenMP's) keep spinning for a while after
    its work, and would steal the cores of the other's next steps.
    """
    block = max(1, repeats // rounds)
    medians = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            time.sleep(0.5)
            for _ in range(warmup):
                step()
            times = []
            for _ in range(block):
                start = time.perf_counter()
                step()
                times.append(time.perf_counter() - start)
            medians[name].append(float(np.median(times)))
    return {name: 1000 * min(values) for name, values in medians.items()}


# --- the steps (models.py holds the models, shared with the other benchmarks) ------------------
def pygrad_steps():
    return pygrad_step("mlp", "cpu"), pygrad_step("cnn", "cpu")


def torch_steps(torch):
    return torch_step(torch, "mlp"), torch_step(torch, "cnn")


# --- memory (run in a subprocess) ---------------------------------------------------------------
def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(framework: str, layers: int, width: int, batch: int) -> None:
    """Print the peak extra MiB of one forward+backward (called in a fresh process)."""
    if framework == "torch":
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        modules = []
        for i in range(layers):
            modules.append(torch.nn.Linear(width, width))
            if i < layers - 1:
                modules.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*modules)
        x = torch.randn(batch, width)
        with torch.no_grad():  # library workspaces are set up before the baseline is read
            model(x)
        base = _rss_mib()
        model(x).sum().backward()
    else:
        from pygrad import Variable, nn, no_grad

        modules = []
        for i in range(layers):
            modules.append(nn.Linear(width, width))
            if i < layers - 1:
                modules.append(nn.ReLU())
        model = nn.Sequential(*modules)
        x = Variable(np.random.default_rng(0).standard_normal((batch, width)).astype(np.float32))
        with no_grad():  # library workspaces are set up before the baseline is read
            model(x)
        base = _rss_mib()
        model(x).sum().backward()
    print(f"{_peak_mib() - base:.1f}")


def measure_memory(framework: str, layers: int, width: int, batch: int) -> str:
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        framework,
        str(layers),
        str(width),
        str(batch),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        return "failed: " + result.stderr.strip().splitlines()[-1]
    return result.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=50,
        help="timed steps per model, in 5 blocks (see _interleaved_ms)",
    )
    parser.add_argument("--layers", type=int, default=16, help="layers of the memory MLP")
    parser.add_argument("--width", type=int, default=2048, help="width of the memory MLP")
    parser.add_argument("--batch", type=int, default=256, help="batch of the memory MLP")
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        framework, layers, width, batch = args.memory_child
        memory_child(framework, int(layers), int(width), int(batch))
        return

    try:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None

    from pygrad.backends import host_memory

    steps = {"pygrad": pygrad_steps()}
    if torch is not None:
        steps["torch"] = torch_steps(torch)
    rows = []
    for index, name in enumerate(["MLP 784-512-512-10 step (ms)", "CNN step (ms)"]):
        ms = _interleaved_ms({key: pair[index] for key, pair in steps.items()}, args.repeats)
        rows.append((name, [f"{ms[key]:.2f}" for key in steps]))
    label = f"peak extra MiB, {args.layers}x{args.width} MLP fwd+bwd, batch {args.batch}"
    rows.append(
        (label, [measure_memory(key, args.layers, args.width, args.batch) for key in steps])
    )
    heads = ["pygrad"] + ([f"torch {torch.__version__}"] if torch is not None else [])
    width = max(len(name) for name, _ in rows)
    print("  ".join([f"{'measure':<{width}}"] + [f"{head:>16}" for head in heads]))
    for name, figures in rows:
        print("  ".join([f"{name:<{width}}"] + [f"{figure:>16}" for figure in figures]))
    if torch is None:
        print("PyTorch is not installed: no figures to compare with")
    tuned = "tuned by pygrad" if host_memory.tune() else "left as it is (PYGRAD_TUNE_MALLOC=0)"
    print(f"host allocator: {tuned}; the step times of both frameworks ran with it")


if __name__ == "__main__":
    main()
