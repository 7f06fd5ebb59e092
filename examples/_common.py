"""Helpers shared by the examples: common command-line options, the per-epoch progress line, a
terminal progress bar, training and evaluation loops, checkpoint checks, and a small PNG writer.

Everything here uses pygrad's public API only, so each example reads like user code.
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, Optional, TextIO

import numpy as np

try:
    import pygrad
except ImportError:
    # Running from a clone without installing pygrad: use the package next to this folder.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import pygrad

import pygrad.opencl
from pygrad import nn
from pygrad.data import DataLoader

# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def example_parser(
    name: str, description: str, *, epochs: int, batch_size: int, lr: float, seed: int = 0
) -> argparse.ArgumentParser:
    """An argument parser with the options every example takes, showing their defaults.

    Parameters
    ----------
    name : str
        The example's name; the output folder defaults to ``out/<name>``.
    description : str
        Shown by ``--help``.
    epochs, batch_size, lr, seed : int, int, float, int
        Defaults of ``--epochs``, ``--batch-size``, ``--lr`` and ``--seed``.

    Returns
    -------
    argparse.ArgumentParser
        Examples add their own options, then call :func:`parse_args`.
    """
    parser = argparse.ArgumentParser(
        prog=f"{name}.py",
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=epochs, help="passes over the training set")
    parser.add_argument("--batch-size", type=int, default=batch_size, help="samples per step")
    parser.add_argument("--lr", type=float, default=lr, help="learning rate")
    parser.add_argument(
        "--seed", type=int, default=seed, help="seed of everything random in the run"
    )
    add_device_option(parser)
    parser.add_argument(
        "--out", type=Path, default=Path("out") / name, help="folder for checkpoints and pictures"
    )
    return parser


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--device``: where the model and the batches live (checked by :func:`check_device`)."""
    parser.add_argument(
        "--device",
        default="cpu",
        help='"cpu" (NumPy) or "opencl" ("opencl:N" for the N-th OpenCL device)',
    )


def check_device(parser: argparse.ArgumentParser, device: str) -> None:
    """End the program with a usage message when ``device`` is not a device pygrad can use here."""
    if device == "cpu":
        return
    match = re.fullmatch(r"opencl(?::(\d+))?", device)
    if match is None:
        parser.error(f'--device must be "cpu", "opencl" or "opencl:N", got {device!r}')
    count = pygrad.opencl.device_count()
    if count == 0:
        parser.error(
            f"--device {device}: no OpenCL device found; install PyOpenCL and a driver "
            "(pip install pygrad[opencl]) or use --device cpu"
        )
    if int(match.group(1) or 0) >= count:
        parser.error(f"--device {device}: there are only {count} OpenCL device(s)")


def parse_args(
    parser: argparse.ArgumentParser,
    argv: Optional[Sequence[str]] = None,
    positive: Sequence[str] = (),
) -> argparse.Namespace:
    """Parse ``argv`` and check that the common options (and those named in ``positive``) are > 0
    and that a ``--dropout`` option, when the example has one, lies in [0, 1).

    A bad value ends the program with argparse's usage message, like any other bad option.
    """
    args = parser.parse_args(argv)
    for option in ("epochs", "batch_size", "lr", *positive):
        value = getattr(args, option)
        if not all(item > 0 for item in (value if isinstance(value, (list, tuple)) else [value])):
            flag = "--" + option.replace("_", "-")
            parser.error(f"{flag} must be positive, got {value}")
    if not 0 <= getattr(args, "dropout", 0) < 1:
        parser.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, got {args.seed}")
    check_device(parser, args.device)
    return args


def seed_everything(seed: int) -> None:
    """Seed NumPy's global generator, which pygrad's initialisers and dropout draw from.

    An OpenCL device takes the seed of its own random stream (its dropout masks) from NumPy's
    state when it is first used, so this also makes a run on ``--device opencl`` repeat
    exactly, as long as it is called before anything touches the device.
    """
    np.random.seed(seed)


def model_device(model: nn.Module) -> str:
    """The device of ``model``'s parameters (``"cpu"`` for a model without any)."""
    for param in model.params():
        return param.device
    return "cpu"


# --------------------------------------------------------------------------------------------
# progress output
# --------------------------------------------------------------------------------------------


def epoch_line(epoch: int, epochs: int, seconds: float, **metrics: Optional[float]) -> str:
    """The progress line printed after each epoch.

    Keyword names become labels (``train_loss`` -> ``train loss``); names ending in ``acc`` are
    shown as percentages, the others with five decimals; None values are left out.

    Examples
    --------
    >>> epoch_line(3, 30, 0.42, train_loss=0.1234, train_acc=0.9652, test_acc=0.975)
    'epoch  3/30  train loss 0.12340  train acc 96.52%  test acc 97.50%  time 0.42 s'
    """
    width = len(str(epochs))
    parts = [f"epoch {epoch:{width}d}/{epochs}"]
    for name, value in metrics.items():
        if value is None:
            continue
        label = name.replace("_", " ")
        parts.append(
            f"{label} {100 * value:.2f}%" if name.endswith("acc") else f"{label} {value:.5f}"
        )
    parts.append(f"time {seconds:.2f} s")
    return "  ".join(parts)


class ProgressBar:
    """A one-line progress bar for long loops, drawn on stderr only when stderr is a terminal.

    When the stream is not a TTY (a log file, a pipe, a test), nothing is written at all, so
    logs hold only the per-epoch lines.  Redraws are throttled to ``min_interval`` seconds.

    Parameters
    ----------
    total : int
        Number of steps the loop will take.
    description : str
        Text before the bar, e.g. ``"epoch 3/30"``.
    stream : file, optional
        Where to draw; ``sys.stderr`` by default.
    width : int
        Characters of the bar itself.
    min_interval : float
        Least time between two redraws, in seconds.

    Examples
    --------
    >>> with ProgressBar(len(loader), "epoch 1/10") as bar:
    ...     for batch in loader:
    ...         bar.update()
    """

    def __init__(
        self,
        total: int,
        description: str = "",
        stream: Optional[TextIO] = None,
        width: int = 30,
        min_interval: float = 0.1,
    ):
        self.total = max(int(total), 1)
        self.description = description
        self.stream = sys.stderr if stream is None else stream
        self.width = width
        self.min_interval = min_interval
        self.count = 0
        self.start = time.perf_counter()
        self.last_draw = -float("inf")
        self.drawn = 0  # length of the line on screen
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(isatty and isatty())

    def update(self, steps: int = 1) -> None:
        """Advance by ``steps`` and redraw if enough time has passed (or the loop is done)."""
        self.count = min(self.count + steps, self.total)
        now = time.perf_counter()
        if self.enabled and (now - self.last_draw >= self.min_interval or self.count == self.total):
            self.last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        filled = self.width * self.count // self.total
        bar = "#" * filled + "." * (self.width - filled)
        text = f"{self.description} [{bar}] {self.count}/{self.total} {now - self.start:.1f} s"
        # Pad with spaces to cover a longer previous line.
        self.stream.write("\r" + text.ljust(self.drawn))
        self.stream.flush()
        self.drawn = len(text)

    def close(self) -> None:
        """Erase the bar so that the next line starts on a clean row."""
        if self.enabled and self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
        self.enabled = False

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def progress(iterable: Iterable, description: str = "", total: Optional[int] = None) -> Iterator:
    """Yield the items of ``iterable`` while drawing a :class:`ProgressBar` over them."""
    bar = ProgressBar(len(iterable) if total is None else total, description)
    try:
        for item in iterable:
            yield item
            bar.update()
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# training and evaluation
# --------------------------------------------------------------------------------------------


class EpochResult(NamedTuple):
    """Mean training loss of one epoch and, for classifiers, the training accuracy."""

    loss: float
    accuracy: Optional[float]


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: nn.optim.Optimizer,
    loss_fn: Callable,
    description: str = "",
    classify: bool = True,
) -> EpochResult:
    """Run one pass over ``loader``: forward, loss, backward and an optimizer step per batch.

    The accuracy counts the predictions made during the pass (with dropout active, as in the
    running figures of most frameworks); ``classify=False`` skips it for regression.
    """
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for data, labels in progress(loader, description):
        output = model(data)
        loss = loss_fn(output, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(data)
        seen += len(data)
        if classify:
            correct += int((output.data.argmax(axis=1) == labels).sum())
    return EpochResult(total_loss / seen, correct / seen if classify else None)


def predict(model: nn.Module, loader: DataLoader) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of ``model`` on every batch of ``loader`` in evaluation mode and without a graph.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        The outputs and the labels, concatenated in the loader's order.
    """
    was_training = model.training
    model.eval()
    outputs, labels = [], []
    try:
        with pygrad.no_grad():
            for data, label in loader:
                outputs.append(model(data).numpy())
                labels.append(pygrad.Variable(label).numpy())  # from any device
    finally:
        model.train(was_training)
    return np.concatenate(outputs), np.concatenate(labels)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of rows of ``outputs`` (class scores) whose largest entry is the label."""
    return float(np.mean(outputs.argmax(axis=1) == labels))


def check_checkpoint(
    model: nn.Module, fresh_model: nn.Module, path: os.PathLike, loader: DataLoader
) -> bool:
    """Save ``model`` to ``path``, load it into ``fresh_model`` and compare test accuracies.

    ``fresh_model`` is moved to ``model``'s device first.  Prints both accuracies and returns
    whether they agree (they must: the same weights on the same data in evaluation mode give
    the same predictions).
    """
    model.save(path)
    fresh_model.to(model_device(model))
    fresh_model.load(path)
    before = accuracy(*predict(model, loader))
    after = accuracy(*predict(fresh_model, loader))
    print(
        f"checkpoint {path}: test accuracy {100 * before:.2f}% before saving, "
        f"{100 * after:.2f}% after loading it into a fresh model"
    )
    return before == after


def draw_model(model: nn.Module, sample: np.ndarray, path: os.PathLike) -> bool:
    """Draw the layers of ``model`` on ``sample`` with ``model.plot``; say why when it cannot.

    ``plot`` traces a forward pass of its own on ``sample`` (moved to the model's device), in
    evaluation mode, so the picture shows the functions between layers too.  Returns whether
    the picture was written.
    """
    try:
        sample = pygrad.Variable(sample, device=model_device(model))
        model.plot(sample, to_file=path)
    except (RuntimeError, ImportError) as error:
        print(f"model picture skipped: {error}")
        return False
    print(f"model picture written to {path}")
    return True


# --------------------------------------------------------------------------------------------
# pictures without matplotlib
# --------------------------------------------------------------------------------------------


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    checksum = zlib.crc32(tag + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", checksum)


def write_png(path: os.PathLike, image: np.ndarray) -> Path:
    """Write an 8-bit RGB ``(H, W, 3)`` or grey ``(H, W)`` image as a PNG file.

    A minimal encoder: one IDAT chunk, no filtering, zlib compression. Parent folders are
    created.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write.
    image : numpy.ndarray of uint8, shape (H, W, 3) or (H, W)
        Rows from top to bottom.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    image = np.asarray(image)
    if (
        image.dtype != np.uint8
        or image.ndim not in (2, 3)
        or image.ndim == 3
        and image.shape[2] != 3
    ):
        raise ValueError(
            f"write_png: expected a uint8 image of shape (H, W, 3) or (H, W), "
            f"got {image.dtype} of shape {image.shape}"
        )
    height, width = image.shape[:2]
    colour_type = 2 if image.ndim == 3 else 0
    rows = np.ascontiguousarray(image).reshape(height, -1)
    # Each row starts with its filter type; 0 means the bytes are stored as they are.
    scanlines = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    content = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines, 9))
        + _png_chunk(b"IEND", b"")
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def draw_dots(
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    colours: np.ndarray,
    radius: float = 2.5,
) -> None:
    """Paint filled discs of ``radius`` pixels centred at (``rows``, ``cols``) in place.

    ``colours`` is one RGB triple for all dots or one per dot, shape ``(len(rows), 3)``.
    """
    height, width = image.shape[:2]
    colours = np.broadcast_to(np.asarray(colours, np.uint8), (len(rows), 3))
    reach = int(np.ceil(radius))
    offsets = np.arange(-reach, reach + 1)
    dr, dc = np.meshgrid(offsets, offsets, indexing="ij")
    inside = dr**2 + dc**2 <= radius**2
    dr, dc = dr[inside], dc[inside]
    centre_rows = np.rint(np.asarray(rows)).astype(int)
    centre_cols = np.rint(np.asarray(cols)).astype(int)
    pixel_rows = (centre_rows[:, None] + dr[None, :]).ravel()
    pixel_cols = (centre_cols[:, None] + dc[None, :]).ravel()
    pixel_colours = np.repeat(colours, len(dr), axis=0)
    visible = (pixel_rows >= 0) & (pixel_rows < height) & (pixel_cols >= 0) & (pixel_cols < width)
    image[pixel_rows[visible], pixel_cols[visible]] = pixel_colours[visible]


def draw_polyline(
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    colour: Sequence[int],
    thickness: float = 1.0,
) -> None:
    """Paint the line through the points (``rows``, ``cols``) in place, ``thickness`` wide."""
    rows, cols = np.asarray(rows, float), np.asarray(cols, float)
    travelled = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(rows), np.diff(cols)))])
    # Half-pixel steps along the path leave no gaps between consecutive points.
    steps = np.linspace(0.0, travelled[-1], int(2 * travelled[-1]) + 2)
    draw_dots(
        image,
        np.interp(steps, travelled, rows),
        np.interp(steps, travelled, cols),
        colour,
        radius=max(thickness / 2, 0.5),
    )


def line_chart(
    series: Sequence[tuple[np.ndarray, Sequence[int]]],
    width: int = 900,
    height: int = 300,
    margin: int = 12,
) -> np.ndarray:
    """Render curves sharing one x axis (sample index) and one y range into an RGB image.

    Parameters
    ----------
    series : sequence of (values, colour)
        Each curve's values (one per x position) and RGB colour; later curves draw on top.
    width, height, margin : int
        Image size and blank border, in pixels.

    Returns
    -------
    numpy.ndarray of uint8, shape (height, width, 3)
        White background, a grey frame and a grey line at y = 0 when it is in range.
    """
    image = np.full((height, width, 3), 255, np.uint8)
    low = min(float(np.min(values)) for values, _ in series)
    high = max(float(np.max(values)) for values, _ in series)
    span = high - low or 1.0
    grey = (200, 200, 200)
    image[margin, margin:-margin] = image[-margin - 1, margin:-margin] = grey
    image[margin:-margin, margin] = image[margin:-margin, -margin - 1] = grey

    def to_row(values):
        return margin + (high - np.asarray(values, float)) / span * (height - 1 - 2 * margin)

    if low < 0 < high:
        image[int(round(float(to_row(0.0)))), margin:-margin] = grey
    for values, colour in series:
        values = np.asarray(values, float)
        cols = margin + np.arange(len(values)) / max(len(values) - 1, 1) * (width - 1 - 2 * margin)
        draw_polyline(image, to_row(values), cols, colour, thickness=2)
    return image


# Colours of up to ten classes: saturated for points and lines, pale for decision regions.
CLASS_COLOURS = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ],
    np.uint8,
)


def pale(colours: np.ndarray, amount: float = 0.7) -> np.ndarray:
    """Blend ``colours`` (uint8 RGB) toward white by ``amount`` in [0, 1]."""
    colours = np.asarray(colours, float)
    return np.rint(colours + (255 - colours) * amount).astype(np.uint8)
