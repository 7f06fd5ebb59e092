"""Built-in datasets that need no network: a synthetic spiral, the 8x8 digits shipped with
pygrad, and MNIST read from IDX files in a local folder."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Optional, Union

import numpy as np

from pygrad.data.dataset import Dataset, check_seed

__all__ = ["Spiral", "Digits", "MNIST", "read_idx"]


class Spiral(Dataset):
    """Points on interleaved spiral arms, one arm per class (the toy problem of DeZero).

    Arm ``j`` holds ``num_data`` points at radius ``r = i / num_data`` and angle
    ``4 j + 4 r`` plus Gaussian noise of standard deviation ``noise``, placed at
    ``(r sin(angle), r cos(angle))``; the samples are then shuffled.

    Parameters
    ----------
    num_class : int
        Number of arms (classes).
    num_data : int
        Points per arm.
    noise : float
        Standard deviation of the angle noise.
    seed : int, optional
        Random seed; by default 1984 for the training set and 2020 for the test set, so
        the data are the same on every run.
    train : bool
        Chooses the default seed.
    transform, target_transform : callable, optional
        Applied per sample.

    Attributes
    ----------
    data : numpy.ndarray of float32, shape (num_class * num_data, 2)
    label : numpy.ndarray of int64, shape (num_class * num_data,)
    """

    def __init__(
        self,
        num_class: int = 3,
        num_data: int = 100,
        noise: float = 0.2,
        seed: Optional[int] = None,
        train: bool = True,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ):
        super().__init__(transform, target_transform)
        check_seed(seed, "Spiral")
        if num_class < 1 or num_data < 1:
            raise ValueError(
                f"Spiral: num_class and num_data must be positive, got {num_class} and {num_data}"
            )
        rng = np.random.default_rng((1984 if train else 2020) if seed is None else seed)
        rate = np.arange(num_data) / num_data
        arm = np.arange(num_class)[:, None]
        theta = arm * 4.0 + rate * 4.0 + rng.standard_normal((num_class, num_data)) * noise
        points = np.stack([rate * np.sin(theta), rate * np.cos(theta)], axis=-1)
        order = rng.permutation(num_class * num_data)
        self.data = points.reshape(-1, 2).astype(np.float32)[order]
        self.label = np.repeat(np.arange(num_class, dtype=np.int64), num_data)[order]


def _read_digits() -> np.ndarray:
    source = resources.files("pygrad.data").joinpath("_data").joinpath("digits.csv.gz")
    with source.open("rb") as raw, gzip.open(raw, "rt") as text:
        return np.loadtxt(text, delimiter=",", dtype=np.float32)


class Digits(Dataset):
    """The 1,797 8x8 images of handwritten digits shipped with pygrad (no download).

    This is the test set of the UCI "Optical Recognition of Handwritten Digits" data
    (E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), in the copy scikit-learn distributes: each
    pixel counts the "on" pixels of a 4x4 block of a 32x32 bitmap, an integer from 0 to 16.
    See ``pygrad/data/_data/README.md`` for sources and licences.

    Parameters
    ----------
    flatten : bool
        True for data of shape (1797, 64); False for images of shape (1797, 1, 8, 8).
    normalize : bool
        Divide the pixels by 16 so they lie in [0, 1] (otherwise they are 0..16).
    transform, target_transform : callable, optional
        Applied per sample.

    Attributes
    ----------
    data : numpy.ndarray of float32, shape (1797, 64) or (1797, 1, 8, 8)
    label : numpy.ndarray of int64, shape (1797,)
        The digit, 0 to 9 (about 180 of each).
    """

    num_samples = 1797
    image_shape = (1, 8, 8)

    def __init__(
        self,
        flatten: bool = True,
        normalize: bool = False,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ):
        super().__init__(transform, target_transform)
        table = _read_digits()
        data = table[:, :-1]
        if normalize:
            data /= 16.0
        self.data = np.ascontiguousarray(data if flatten else data.reshape(-1, *self.image_shape))
        self.label = table[:, -1].astype(np.int64)


_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read an array from an IDX file (the format of MNIST), plain or gzip-compressed.

    Parameters
    ----------
    path : str or os.PathLike
        The file; a name ending in ``.gz`` is decompressed.

    Returns
    -------
    numpy.ndarray
        The array, with the file's dtype and shape.

    Raises
    ------
    ValueError
        When the file is not a well-formed IDX file.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as file:
        content = file.read()
    if len(content) < 4 or content[:2] != b"\x00\x00" or content[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file: bad magic number {content[:4]!r}")
    dtype, ndim = _IDX_DTYPES[content[2]], content[3]
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise ValueError(f"{path} is not an IDX file: its header is cut short")
    shape = tuple(int(n) for n in np.frombuffer(content, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(content) - header_size != expected:
        raise ValueError(
            f"{path}: the header announces shape {shape} ({expected} bytes of {dtype}) but the "
            f"file holds {len(content) - header_size} bytes of data"
        )
    array = np.frombuffer(content, dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


class MNIST(Dataset):
    """MNIST handwritten digits read from the standard IDX files in a local folder.

    pygrad never downloads; put the four standard MNIST files (or their ``.gz`` versions, or
    torchvision's ``MNIST/raw`` folder) in ``root``.

    Parameters
    ----------
    root : str or os.PathLike
        The folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
        ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``);
        ``root/MNIST/raw`` is searched too.
    train : bool
        The 60,000 training images (True) or the 10,000 test images (False).
    flatten : bool
        Give data of shape (N, 784) instead of (N, 1, 28, 28).
    transform, target_transform : callable, optional
        Applied per sample.

    Attributes
    ----------
    data : numpy.ndarray of float32, shape (N, 1, 28, 28)
        Pixels scaled from 0..255 to [0, 1].
    label : numpy.ndarray of int64, shape (N,)

    Raises
    ------
    FileNotFoundError
        When a file is missing; the message lists the names looked for.
    ValueError
        When a file is not a valid IDX file or images and labels disagree.
    """

    def __init__(
        self,
        root: Union[str, os.PathLike],
        train: bool = True,
        flatten: bool = False,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ):
        super().__init__(transform, target_transform)
        prefix = "train" if train else "t10k"
        root = Path(root)
        images = read_idx(self._find(root, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(self._find(root, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"MNIST: expected images of shape (N, H, W) and N labels in {root}, got images "
                f"of shape {images.shape} and labels of shape {labels.shape}"
            )
        data = images.astype(np.float32) / np.float32(255)
        self.data = data.reshape(len(data), -1) if flatten else data[:, None]
        self.label = labels.astype(np.int64)

    @staticmethod
    def _find(root: Path, name: str) -> Path:
        folders = (root, root / "MNIST" / "raw")
        candidates = [folder / file for folder in folders for file in (name, name + ".gz")]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            f"MNIST: {name} not found in {root}; expected one of "
            + ", ".join(str(candidate) for candidate in candidates)
            + ". pygrad does not download MNIST: place the IDX files train-images-idx3-ubyte, "
            "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
            "(optionally .gz) there"
        )
