"""Per-op overhead of the graph engine: microseconds per op on a long chain of tiny ops.

The chain applies ``y * 1.0001``, ``y + 0.001`` and ``tanh(y)`` in turn, ``--length`` ops in
all, to a small float32 array (``--size`` elements), then reduces it with ``sum``.  The arrays
are so small that the arithmetic costs next to nothing: what is measured is the framework's own
work per op (creating the output Variable, recording the graph, and during backward walking
it and building the gradients).  Two figures are printed, each divided by the chain length:

* forward: the chain and the sum, with the graph recorded as in training;
* forward + backward: the same followed by ``backward()``.

Each figure is the best of ``--repeats`` runs after ``--warmup`` untimed runs; the runs of
the frameworks are interleaved so that a busy machine slows them alike.  Where PyTorch is
installed the same chain runs with ``torch`` tensors (``requires_grad=True``) and its figures
appear in the same table, together with a check that both frameworks computed the same gradient.

Run ``python benchmarks/op_overhead.py`` (``--help`` lists the options).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import pygrad  # noqa: E402
from pygrad import functions as F  # noqa: E402


def pygrad_chain(x, length: int):
    y = x
    for i in range(length):
        step = i % 3
        if step == 0:
            y = y * 1.0001
        elif step == 1:
            y = y + 0.001
        else:
            y = F.tanh(y)
    return F.sum(y)


def torch_chain(torch, x, length: int):
    y = x
    for i in range(length):
        step = i % 3
        if step == 0:
            y = y * 1.0001
        elif step == 1:
            y = y + 0.001
        else:
            y = torch.tanh(y)
    return y.sum()


def best_times(cases: dict, repeats: int, warmup: int) -> dict:
    """Best wall-clock time of each ``cases[name]()`` over ``repeats`` rounds.

    Every case runs ``warmup`` untimed times first.  The timed runs are interleaved (one run of
    each case per round), so that a busy machine slows every case alike.
    """
    for run in cases.values():
        for _ in range(warmup):
            run()
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeats):
        for name, run in cases.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def pygrad_cases(data: np.ndarray, length: int):
    """The forward and forward+backward runs of pygrad, and a reader of the last gradient."""
    x = pygrad.Variable(data.copy())

    def forward():
        pygrad_chain(x, length)

    def forward_backward():
        x.clear_grad()
        pygrad_chain(x, length).backward()

    return forward, forward_backward, lambda: x.grad.numpy()


def torch_cases(torch, data: np.ndarray, length: int):
    """The forward and forward+backward runs of PyTorch, and a reader of the last gradient."""
    x = torch.tensor(data, requires_grad=True)

    def forward():
        torch_chain(torch, x, length)

    def forward_backward():
        x.grad = None
        torch_chain(torch, x, length).backward()

    return forward, forward_backward, lambda: x.grad.numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=(
            "Print microseconds per op for a chain of small float32 ops (y*1.0001, y+0.001, "
            "tanh, repeated, then sum), forward alone and forward plus backward, for pygrad "
            "and, where it is installed, PyTorch."
        )
    )
    parser.add_argument("--length", type=int, default=1000, help="ops in the chain (1000)")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs; the best counts (20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (3)")
    parser.add_argument("--size", type=int, default=16, help="elements of the array (16)")
    args = parser.parse_args(argv)
    for name in ("length", "repeats", "size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be at least 0")

    data = np.random.default_rng(0).uniform(-1, 1, args.size).astype(np.float32)
    frameworks = {f"pygrad {pygrad.__version__}": pygrad_cases(data, args.length)}
    try:
        import torch
    except ImportError:
        torch = None
    else:
        frameworks[f"PyTorch {torch.__version__}"] = torch_cases(torch, data, args.length)

    cases = {}
    for name, (forward, forward_backward, _) in frameworks.items():
        cases[name, "forward"] = forward
        cases[name, "forward+backward"] = forward_backward
    best = best_times(cases, args.repeats, args.warmup)
    rows = [(name, best[name, "forward"], best[name, "forward+backward"]) for name in frameworks]

    grads = [read_grad() for _, _, read_grad in frameworks.values()]
    assert grads[0].dtype == np.float32, "the gradient of float32 data must stay float32"
    check = ""
    if torch is None:
        rows.append(("PyTorch", None, None))
    elif np.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6):
        check = "gradients agree with PyTorch"
    else:
        check = "GRADIENTS DIFFER FROM PYTORCH"

    print(
        f"Chain of {args.length} ops (y*1.0001, y+0.001, tanh) on float32 data of "
        f"{args.size} elements, then sum; best of {args.repeats} after {args.warmup} warm-up runs"
    )
    print(f"Python {sys.version.split()[0]}, NumPy {np.__version__}")
    print()
    header = ("framework", "forward (µs/op)", "forward+backward (µs/op)")
    print(f"{header[0]:<22}{header[1]:>18}{header[2]:>27}")
    for name, forward_time, both_time in rows:
        if forward_time is None:
            print(f"{name:<22}{'not installed':>18}{'not installed':>27}")
        else:
            forward_us = forward_time / args.length * 1e6
            both_us = both_time / args.length * 1e6
            print(f"{name:<22}{forward_us:>18.2f}{both_us:>27.2f}")
    if check:
        print()
        print(check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
