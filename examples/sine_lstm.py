"""Predict the next value of a noisy sine wave with an LSTM and plot prediction against truth.

The series is cut into windows of ``--window`` consecutive values; the model reads a window
(batch-first, shape (N, T, 1)) and predicts the value that follows it.  The first 80% of the
series trains the model, the last 20% tests it: the test MSE is printed after every epoch (the
noise variance is the best any model can reach), a checkpoint is saved, and the test predictions
are drawn over the truth into a PNG file::

    python examples/sine_lstm.py               # writes out/sine_lstm/model.npy and prediction.png
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Optional

import numpy as np
from _common import (
    epoch_line,
    example_parser,
    line_chart,
    parse_args,
    predict,
    seed_everything,
    train_epoch,
    write_png,
)

from pygrad import Variable, nn
from pygrad import functions as F
from pygrad.data import ArrayDataset, DataLoader


class SineLSTM(nn.Module):
    """An LSTM over the window, then a linear layer on its last hidden state."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.lstm = nn.LSTM(1, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x) -> Variable:
        _, (h, _) = self.lstm(x)
        return self.head(h)


def make_series(length: int, period: float, noise: float, rng: np.random.Generator):
    """A clean sine wave with ``period`` samples per cycle and a copy with Gaussian noise."""
    clean = np.sin(2 * np.pi * np.arange(length) / period)
    noisy = clean + noise * rng.standard_normal(length)
    return clean.astype(np.float32), noisy.astype(np.float32)


def make_windows(series: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs of shape (N, window, 1) and the value after each window, of shape (N, 1)."""
    starts = np.arange(len(series) - window)
    inputs = series[starts[:, None] + np.arange(window)]
    return inputs[:, :, None], series[starts + window][:, None]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = example_parser("sine_lstm", __doc__.splitlines()[0], epochs=20, batch_size=32, lr=5e-3)
    parser.add_argument("--hidden", type=int, default=32, help="LSTM hidden size")
    parser.add_argument("--length", type=int, default=1000, help="samples in the series")
    parser.add_argument("--window", type=int, default=20, help="values the model reads")
    parser.add_argument("--period", type=float, default=50.0, help="samples per sine cycle")
    parser.add_argument("--noise", type=float, default=0.1, help="standard deviation of the noise")
    args = parse_args(parser, argv, positive=("hidden", "length", "window", "period"))
    if args.length < 5 * (args.window + 1):
        parser.error(f"--length must be at least 5 * (--window + 1) = {5 * (args.window + 1)}")
    started = time.perf_counter()
    seed_everything(args.seed)

    rng = np.random.default_rng(args.seed)
    clean, noisy = make_series(args.length, args.period, args.noise, rng)
    inputs, targets = make_windows(noisy, args.window)
    # A split in time, not at random: the test windows come after every training window.
    split = int(0.8 * len(inputs))
    train_set = ArrayDataset(inputs[:split], targets[:split])
    test_set = ArrayDataset(inputs[split:], targets[split:])
    train_loader = DataLoader(
        train_set, args.batch_size, shuffle=True, seed=args.seed, device=args.device
    )
    test_loader = DataLoader(test_set, 256, shuffle=False, device=args.device)
    model = SineLSTM(args.hidden).to(args.device)
    optimizer = nn.optim.Adam(model.params(), lr=args.lr)
    print(
        f"{len(train_set)} training and {len(test_set)} test windows of {args.window} values "
        f"on {args.device}; "
        f"noise variance {args.noise**2:.5f}; model:\n{model}"
    )

    for epoch in range(1, args.epochs + 1):
        epoch_started = time.perf_counter()
        result = train_epoch(
            model,
            train_loader,
            optimizer,
            F.mean_squared_error,
            f"epoch {epoch}/{args.epochs}",
            classify=False,
        )
        predicted, truth = predict(model, test_loader)
        test_mse = float(np.mean((predicted - truth) ** 2))
        seconds = time.perf_counter() - epoch_started
        print(epoch_line(epoch, args.epochs, seconds, train_loss=result.loss, test_mse=test_mse))
    clean_mse = float(np.mean((predicted[:, 0] - clean[split + args.window :]) ** 2))
    print(
        f"test MSE {test_mse:.5f} against the noisy values (noise variance {args.noise**2:.5f}), "
        f"{clean_mse:.5f} against the clean sine"
    )

    checkpoint = args.out / "model.npy"
    model.save(checkpoint)
    print(f"checkpoint written to {checkpoint}")
    grey, green, red = (170, 170, 170), (60, 160, 60), (214, 39, 40)
    chart = line_chart(
        [(truth[:, 0], grey), (clean[split + args.window :], green), (predicted[:, 0], red)]
    )
    picture = write_png(args.out / "prediction.png", chart)
    print(
        f"test predictions written to {picture} "
        "(grey: noisy truth, green: clean sine, red: prediction)"
    )
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
