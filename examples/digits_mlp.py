"""Classify the 8x8 handwritten digits shipped with pygrad with a multi-layer perceptron.

Trains on a seeded 80% of the 1,797 images, reports the accuracy on the other 20% after every
epoch, saves a checkpoint, loads it into a fresh model to check that it gives the same accuracy,
and draws the model (with Graphviz, when it is installed)::

    python examples/digits_mlp.py                  # writes out/digits_mlp/model.npy and model.png
    python examples/digits_mlp.py --epochs 1 --out /tmp/digits
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Optional

from _common import (
    accuracy,
    check_checkpoint,
    draw_model,
    epoch_line,
    example_parser,
    parse_args,
    predict,
    seed_everything,
    train_epoch,
)

from pygrad import Variable, nn
from pygrad import functions as F
from pygrad.data import DataLoader, Digits, ratio_split


class MLP(nn.Module):
    """64 pixels -> two ReLU hidden layers with dropout -> 10 class scores."""

    def __init__(self, hidden1: int = 256, hidden2: int = 128, dropout: float = 0.2):
        super().__init__()
        self.fc1 = nn.Linear(64, hidden1)
        self.fc2 = nn.Linear(hidden1, hidden2)
        self.fc3 = nn.Linear(hidden2, 10)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x) -> Variable:
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = example_parser(
        "digits_mlp", __doc__.splitlines()[0], epochs=20, batch_size=32, lr=1e-3
    )
    parser.add_argument("--hidden", type=int, nargs=2, default=(256, 128), help="layer widths")
    parser.add_argument("--dropout", type=float, default=0.2, help="dropout rate")
    args = parse_args(parser, argv, positive=("hidden",))
    started = time.perf_counter()
    seed_everything(args.seed)

    digits = Digits(normalize=True)
    train_set, test_set = ratio_split(digits, 0.8, 0.2, seed=args.seed)
    train_loader = DataLoader(
        train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device
    )
    test_loader = DataLoader(test_set, 256, shuffle=False, device=args.device)
    model = MLP(*args.hidden, dropout=args.dropout).to(args.device)
    optimizer = nn.optim.Adam(model.params(), lr=args.lr)
    scheduler = nn.optim.CosineAnnealingLR(optimizer, T_max=args.epochs)
    print(
        f"{len(train_set)} training and {len(test_set)} test images on {args.device}; "
        f"model:\n{model}"
    )

    train_started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_started = time.perf_counter()
        result = train_epoch(
            model, train_loader, optimizer, F.softmax_cross_entropy, f"epoch {epoch}/{args.epochs}"
        )
        scheduler.step()
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
    train_seconds = time.perf_counter() - train_started
    print(f"test accuracy {100 * test_accuracy:.2f}% after {train_seconds:.1f} s of training")

    same = check_checkpoint(
        model, MLP(*args.hidden, dropout=args.dropout), args.out / "model.npy", test_loader
    )
    draw_model(model, digits.data[:1], args.out / "model.png")
    print(f"done in {time.perf_counter() - started:.1f} s")
    if not same:
        print("error: the reloaded model does not reproduce the test accuracy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
