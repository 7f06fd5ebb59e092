"""Classify the 8x8 handwritten digits shipped with pygrad with a small convolutional network.

The same job as ``digits_mlp.py`` on images of shape (1, 8, 8): train on a seeded 80% split,
report the test accuracy after every epoch, save a checkpoint, load it into a fresh model to
check the accuracy, and draw the model::

    python examples/digits_cnn.py                  # writes out/digits_cnn/model.npy and model.png
    python examples/digits_cnn.py --epochs 1 --out /tmp/digits
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


class CNN(nn.Module):
    """Two 3x3 convolutions with batch norm, a 2x2 max pool and two linear layers.

    Shapes: (N, 1, 8, 8) -> (N, 16, 8, 8) -> (N, 32, 8, 8) -> (N, 32, 4, 4) -> (N, 512)
    -> (N, hidden) -> (N, 10).
    """

    def __init__(self, hidden: int = 128, dropout: float = 0.3):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, pad=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, pad=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(32 * 4 * 4, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x) -> Variable:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.pool(F.relu(self.bn2(self.conv2(x))))
        x = self.dropout(F.relu(self.fc1(F.flatten(x))))
        return self.fc2(x)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = example_parser(
        "digits_cnn", __doc__.splitlines()[0], epochs=15, batch_size=32, lr=2e-3
    )
    parser.add_argument("--hidden", type=int, default=128, help="width of the hidden layer")
    parser.add_argument("--dropout", type=float, default=0.3, help="dropout rate")
    args = parse_args(parser, argv, positive=("hidden",))
    started = time.perf_counter()
    seed_everything(args.seed)

    digits = Digits(flatten=False, normalize=True)
    train_set, test_set = ratio_split(digits, 0.8, 0.2, seed=args.seed)
    train_loader = DataLoader(
        train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device
    )
    test_loader = DataLoader(test_set, 256, shuffle=False, device=args.device)
    model = CNN(args.hidden, args.dropout).to(args.device)
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
        model, CNN(args.hidden, args.dropout), args.out / "model.npy", test_loader
    )
    draw_model(model, digits.data[:1], args.out / "model.png")
    print(f"done in {time.perf_counter() - started:.1f} s")
    if not same:
        print("error: the reloaded model does not reproduce the test accuracy", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
