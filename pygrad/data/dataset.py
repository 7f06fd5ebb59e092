"""Datasets: indexable collections of (data, label) samples, their subsets and random splits."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Optional

import numpy as np

__all__ = ["Dataset", "ArrayDataset", "Subset", "ratio_split"]


class Dataset:
    """Base class of datasets: ``dataset[i]`` is a ``(data, label)`` pair, ``len(dataset)`` its size.

    A subclass calls ``super().__init__(transform, target_transform)`` and then sets
    ``self.data`` (an array whose first axis runs over samples) and ``self.label`` (an array of
    the same length, or None), as in pygrad 0.1.0.  A subclass may instead override
    ``__getitem__`` and ``__len__``.

    Parameters
    ----------
    transform : callable, optional
        Applied to each sample's data as it is read.
    target_transform : callable, optional
        Applied to each sample's label as it is read.

    Examples
    --------
    >>> class Squares(Dataset):
    ...     def __init__(self, transform=None):
    ...         super().__init__(transform)
    ...         self.data = np.arange(10, dtype=np.float32).reshape(10, 1)
    ...         self.label = self.data[:, 0] ** 2
    >>> Squares()[3]
    (array([3.], dtype=float32), np.float32(9.0))
    """

    # Class-level defaults serve subclasses whose __init__ does not call super().__init__().
    transform: Optional[Callable] = None
    target_transform: Optional[Callable] = None
    data = None
    label = None

    def __init__(
        self, transform: Optional[Callable] = None, target_transform: Optional[Callable] = None
    ):
        self.transform = transform
        self.target_transform = target_transform
        self.data = None
        self.label = None

    def __getitem__(self, index: int) -> tuple:
        if not isinstance(index, numbers.Integral):
            raise TypeError(
                f"{type(self).__name__} indices must be integers, got {type(index).__name__}; "
                "use Subset or DataLoader to read several samples"
            )
        if self.data is None:
            raise NotImplementedError(
                f"{type(self).__name__} must set self.data in __init__ or override __getitem__"
            )
        data = self.data[index]
        if self.transform is not None:
            data = self.transform(data)
        if self.label is None:
            return data, None
        label = self.label[index]
        if self.target_transform is not None:
            label = self.target_transform(label)
        return data, label

    def __len__(self) -> int:
        if self.data is None:
            raise NotImplementedError(
                f"{type(self).__name__} must set self.data in __init__ or override __len__"
            )
        return len(self.data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_samples={len(self)})"


class ArrayDataset(Dataset):
    """A dataset over arrays already in memory.

    Parameters
    ----------
    data : array_like, shape (N, ...)
        The samples, along the first axis.
    label : array_like, shape (N, ...), optional
        One label per sample.
    transform, target_transform : callable, optional
        Applied per sample, as in :class:`Dataset`.

    Raises
    ------
    ValueError
        When ``data`` has no sample axis or ``label`` has a different length.
    """

    def __init__(
        self,
        data,
        label=None,
        transform: Optional[Callable] = None,
        target_transform: Optional[Callable] = None,
    ):
        super().__init__(transform, target_transform)
        data = np.asarray(data)
        if data.ndim == 0:
            raise ValueError("ArrayDataset: data must have a sample axis, got a 0-d array")
        if label is not None:
            label = np.asarray(label)
            if label.ndim == 0 or len(label) != len(data):
                raise ValueError(
                    f"ArrayDataset: data has {len(data)} samples (shape {data.shape}) but label "
                    f"has shape {label.shape}"
                )
        self.data = data
        self.label = label


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Parameters
    ----------
    dataset : Dataset
        Any object with ``__getitem__`` and ``__len__``.
    indices : sequence of int
        Positions in ``dataset``; negative positions count from the end.

    Raises
    ------
    IndexError
        When an index is out of range.
    """

    def __init__(self, dataset, indices: Sequence[int]):
        super().__init__()
        indices = np.asarray(indices)
        if indices.size == 0:
            indices = indices.astype(np.int64)
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise TypeError(
                f"Subset: indices must be a 1-d sequence of integers, got shape {indices.shape} "
                f"and dtype {indices.dtype}"
            )
        size = len(dataset)
        if indices.size and (indices.min() < -size or indices.max() >= size):
            raise IndexError(f"Subset: indices out of range for a dataset of {size} samples")
        self.dataset = dataset
        self.indices = np.where(indices < 0, indices + size, indices).astype(np.int64)

    def __getitem__(self, index: int) -> tuple:
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)


def check_seed(seed, who: str) -> None:
    """Raise unless ``seed`` is None or a non-negative int (what NumPy's generators take),
    naming ``who`` rather than failing inside NumPy."""
    if seed is None:
        return
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{who}: seed must be a non-negative int or None, got {seed!r} of type "
            f"{type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"{who}: seed must be a non-negative int or None, got {seed}")


def ratio_split(dataset, *ratios: float, seed: Optional[int] = None) -> list:
    """Split ``dataset`` at random into subsets whose sizes follow ``ratios``.

    Every sample lands in exactly one subset.  Sizes are ``ratio * len(dataset)`` rounded
    down, and the samples left over go, one each, to the subsets with the largest
    rounded-off fractions, so the sizes add up to ``len(dataset)``.

    Parameters
    ----------
    dataset : Dataset
        Any object with ``__getitem__`` and ``__len__``.
    *ratios : float
        Positive fractions that sum to 1 (within 1e-6); a single tuple or list also works.
    seed : int, optional
        Seeds the shuffle; the same seed gives the same split.

    Returns
    -------
    list of Subset
        One subset per ratio, in order.

    Raises
    ------
    ValueError
        When no ratio is given, a ratio is not positive, the ratios do not sum to 1, or the
        seed is negative.
    TypeError
        When the seed is not an int.

    Examples
    --------
    >>> train, test = ratio_split(ArrayDataset(np.arange(10)), 0.8, 0.2, seed=0)
    >>> len(train), len(test)
    (8, 2)
    """
    check_seed(seed, "ratio_split")
    if len(ratios) == 1 and isinstance(ratios[0], (tuple, list)):
        ratios = tuple(ratios[0])
    if not ratios:
        raise ValueError(
            "ratio_split: give at least one ratio, e.g. ratio_split(dataset, 0.8, 0.2)"
        )
    for ratio in ratios:
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, numbers.Real)
            or not math.isfinite(ratio)
            or ratio <= 0
        ):
            raise ValueError(f"ratio_split: every ratio must be a positive number, got {ratios}")
    total = math.fsum(ratios)
    if abs(total - 1.0) > 1e-6:
        shown = " + ".join(str(ratio) for ratio in ratios)
        raise ValueError(
            f"ratio_split: the ratios must sum to 1, but {shown} = {total:g}; "
            "samples would be lost or counted twice"
        )
    num_samples = len(dataset)
    exact = [ratio / total * num_samples for ratio in ratios]
    sizes = [math.floor(size) for size in exact]
    leftover = num_samples - sum(sizes)
    by_fraction = sorted(range(len(ratios)), key=lambda i: exact[i] - sizes[i], reverse=True)
    for i in by_fraction[:leftover]:
        sizes[i] += 1
    order = np.random.default_rng(seed).permutation(num_samples)
    bounds = np.cumsum([0] + sizes)
    return [Subset(dataset, order[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]
