"""Separate the arms of a spiral with a small MLP and draw its decision regions.

The classic toy problem of DeZero: three interleaved spiral arms, one class each.  The example
trains on ``Spiral()``, tests on ``Spiral(train=False)`` (same arms, other noise), saves a
checkpoint and paints the class the model predicts at every point of the plane, with the
training points on top, into a PNG file::

    python examples/spiral.py                  # writes out/spiral/model.npy and decision_boundary.png
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np
from _common import (
    CLASS_COLOURS,
    accuracy,
    draw_dots,
    epoch_line,
    example_parser,
    model_device,
    pale,
    parse_args,
    predict,
    seed_everything,
    train_epoch,
    write_png,
)

import pygrad
from pygrad import functions as F
from pygrad import nn
from pygrad.data import DataLoader, Spiral


def make_model(num_class: int, hidden: int) -> nn.Sequential:
    """2 coordinates -> two tanh hidden layers -> one score per class."""
    return nn.Sequential(
        nn.Linear(2, hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.Tanh(),
        nn.Linear(hidden, num_class),
    )


def draw_decision_regions(
    model: nn.Module, points: np.ndarray, labels: np.ndarray, path: Path, size: int = 400
) -> Path:
    """Colour a ``size`` x ``size`` grid over the data by predicted class and dot the points."""
    extent = 1.1 * float(np.abs(points).max())
    # Row 0 is the top of the picture, so y runs from +extent down to -extent.
    ys, xs = np.meshgrid(
        np.linspace(extent, -extent, size), np.linspace(-extent, extent, size), indexing="ij"
    )
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    model.eval()
    with pygrad.no_grad():
        predicted = model(pygrad.Variable(grid, device=model_device(model))).numpy().argmax(axis=1)
    model.train()
    image = pale(CLASS_COLOURS[predicted % len(CLASS_COLOURS)]).reshape(size, size, 3)
    rows = (extent - points[:, 1]) / (2 * extent) * (size - 1)
    cols = (points[:, 0] + extent) / (2 * extent) * (size - 1)
    draw_dots(image, rows, cols, (40, 40, 40), radius=3.5)  # dark rims
    draw_dots(image, rows, cols, CLASS_COLOURS[labels % len(CLASS_COLOURS)], radius=2.5)
    return write_png(path, image)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = example_parser("spiral", __doc__.splitlines()[0], epochs=50, batch_size=30, lr=0.01)
    parser.add_argument("--hidden", type=int, default=32, help="width of both hidden layers")
    parser.add_argument("--num-class", type=int, default=3, help="spiral arms (classes)")
    parser.add_argument("--num-data", type=int, default=100, help="points per arm")
    args = parse_args(parser, argv, positive=("hidden", "num_class", "num_data"))
    started = time.perf_counter()
    seed_everything(args.seed)

    train_set = Spiral(args.num_class, args.num_data, train=True)
    test_set = Spiral(args.num_class, args.num_data, train=False)
    train_loader = DataLoader(
        train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device
    )
    test_loader = DataLoader(test_set, 1024, shuffle=False, device=args.device)
    model = make_model(args.num_class, args.hidden).to(args.device)
    optimizer = nn.optim.Adam(model.params(), lr=args.lr)
    print(
        f"{len(train_set)} training and {len(test_set)} test points on {args.device}; "
        f"model:\n{model}"
    )

    for epoch in range(1, args.epochs + 1):
        epoch_started = time.perf_counter()
        result = train_epoch(
            model, train_loader, optimizer, F.softmax_cross_entropy, f"epoch {epoch}/{args.epochs}"
        )
        test_accuracy = accuracy(*predict(model, test_loader))
        seconds = time.perf_counter() - epoch_started
        print(
            epoch_line(
                epoch,
                args.epochs,
                seconds,
                train_loss=result.loss,
                train_acc=result.accuracy,
                test_acc=test_accuracy,
            )
        )
    print(f"test accuracy {100 * test_accuracy:.2f}%")

    checkpoint = args.out / "model.npy"
    model.save(checkpoint)
    print(f"checkpoint written to {checkpoint}")
    picture = draw_decision_regions(
        model, train_set.data, train_set.label, args.out / "decision_boundary.png"
    )
    print(f"decision regions written to {picture}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
