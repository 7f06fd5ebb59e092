"""Fit y = sin(2 pi x) with a small tanh network by plain gradient descent, then draw its graph.

Everything is written with Variables, Parameters and a handful of functions (matmul, tanh,
arithmetic, sum), so the example shows the core of pygrad without the ``nn`` package::

    python examples/curve_fit.py --steps 3000 --out out/curve_fit
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import add_device_option, check_device

import pygrad
from pygrad import Parameter, Variable
from pygrad import functions as F
from pygrad.utils import get_dot_graph, plot_dot_graph


def make_data(num_points: int, noise: float, rng: np.random.Generator):
    """Noisy samples of one period of a sine wave, as float32 column vectors of shape (N, 1)."""
    x = np.linspace(0.0, 1.0, num_points, dtype=np.float32).reshape(-1, 1)
    y = np.sin(2 * np.pi * x) + noise * rng.standard_normal(x.shape)
    return x, y.astype(np.float32)


def init_params(sizes: list[int], rng: np.random.Generator, device: str = "cpu") -> list[Parameter]:
    """Weights scaled by 1/sqrt(fan_in) (Glorot-like, suits tanh) and zero biases, on ``device``."""
    params = []
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        weight = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        params.append(Parameter(weight, name=f"W{layer}", device=device))
        bias = np.zeros(fan_out, dtype=np.float32)
        params.append(Parameter(bias, name=f"b{layer}", device=device))
    return params


def predict(x: Variable, params: list[Parameter]) -> Variable:
    """A tanh MLP: tanh after every layer but the last, which stays linear."""
    h = x
    layers = list(zip(params[0::2], params[1::2]))
    for index, (weight, bias) in enumerate(layers):
        h = F.matmul(h, weight) + bias
        if index < len(layers) - 1:
            h = F.tanh(h)
    return h


def mean_squared_error(prediction: Variable, target: Variable) -> Variable:
    diff = prediction - target
    return (diff * diff).sum() / diff.size


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=3000, help="gradient-descent steps")
    parser.add_argument("--lr", type=float, default=0.2, help="learning rate")
    parser.add_argument("--hidden", type=int, default=16, help="width of both hidden layers")
    parser.add_argument("--points", type=int, default=100, help="number of training points")
    parser.add_argument("--log-every", type=int, default=500, help="print the loss every N steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and initial weights")
    add_device_option(parser)
    parser.add_argument("--out", default="out/curve_fit", help="folder for the graph picture")
    args = parser.parse_args(argv)
    if min(args.steps, args.hidden, args.log_every) < 1 or args.lr <= 0 or args.points < 2:
        parser.error("--steps, --lr, --hidden and --log-every must be positive, --points >= 2")
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, got {args.seed}")
    check_device(parser, args.device)

    rng = np.random.default_rng(args.seed)
    x_data, y_data = make_data(args.points, noise=0.05, rng=rng)
    x = Variable(x_data, name="x", device=args.device)
    y = Variable(y_data, name="y", device=args.device)
    params = init_params([1, args.hidden, args.hidden, 1], rng, args.device)

    print(
        f"pygrad {pygrad.__version__}: fitting sin(2 pi x) with a 1-{args.hidden}-"
        f"{args.hidden}-1 tanh MLP on {args.points} points on {args.device}"
    )
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss = mean_squared_error(predict(x, params), y)
        for p in params:
            p.clear_grad()
        loss.backward()
        for p in params:
            # In place on the raw array: the update itself must not become part of any graph.
            p.data -= args.lr * p.grad.data
        if step == 1 or step % args.log_every == 0 or step == args.steps:
            print(f"step {step:5d}  loss {float(loss.data):.5f}")
    seconds = time.perf_counter() - start

    loss = mean_squared_error(predict(x, params), y)
    loss.name = "loss"
    final_mse = float(loss.data)
    print(
        f"final MSE {final_mse:.5f} (noise variance 0.0025) after {args.steps} steps "
        f"in {seconds:.2f} s; dtype of the weights: {params[0].dtype}"
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    picture = out / "curve_fit_graph.png"
    try:
        plot_dot_graph(loss, verbose=True, to_file=picture)
        print(f"computational graph written to {picture}")
    except RuntimeError as error:
        # Without Graphviz's `dot` the DOT source is still useful: any Graphviz viewer opens it.
        source = out / "curve_fit_graph.dot"
        source.write_text(get_dot_graph(loss, verbose=True), encoding="utf-8")
        print(f"could not draw the graph: {error}")
        print(f"the DOT source of the graph is in {source} instead")
    return final_mse


if __name__ == "__main__":
    main()
