"""``DataLoader``: batches of (data, label) arrays drawn from a dataset, epoch after epoch."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator
from typing import Optional

import numpy as np

from pygrad.backends import parse_device, to_device
from pygrad.data.dataset import Dataset, Subset, check_seed

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over a dataset in batches, reshuffling at every epoch.

    Each ``for`` loop over the loader is one epoch: it yields ``(data, label)`` pairs whose
    arrays stack the samples along a new first axis (``label`` is None when the dataset has
    no labels).  With ``shuffle``, every epoch draws a new order from its own random generator
    seeded by ``seed`` and the epoch number, so a seeded loader repeats the same sequence of
    epochs.

    Parameters
    ----------
    dataset : Dataset
        Any object with ``__getitem__`` returning ``(data, label)`` and ``__len__``.
    batch_size : int
        Samples per batch.
    shuffle : bool
        Visit the samples in a new random order each epoch (otherwise in dataset order).
    drop_last : bool
        Skip the last batch when it holds fewer than ``batch_size`` samples.
    seed : int, optional
        Makes the shuffling reproducible.
    device : str, optional
        ``"opencl"`` etc. to move every batch there; ``None`` or ``"cpu"`` yields NumPy arrays.

    Notes
    -----
    A dataset without transforms that keeps its samples in ``data``/``label`` arrays (such as
    :class:`ArrayDataset` and the built-in datasets, and subsets of them) is read one batch at
    a time by indexing those arrays, not one sample at a time.

    Examples
    --------
    >>> loader = DataLoader(ArrayDataset(np.zeros((10, 3)), np.arange(10)), 4, seed=0)
    >>> len(loader)
    3
    >>> [data.shape for data, label in loader]
    [(4, 3), (4, 3), (2, 3)]
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: Optional[int] = None,
        device: Optional[str] = None,
    ):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"DataLoader: batch_size must be an int, got {batch_size!r}")
        if batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size must be positive, got {batch_size}")
        check_seed(seed, "DataLoader")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.device = parse_device(device)
        self.epoch = 0  # epochs started so far
        # Without a seed, fresh entropy still gives each epoch its own generator.
        self._entropy = int(seed) if seed is not None else np.random.SeedSequence().entropy

    def __len__(self) -> int:
        num_samples = len(self.dataset)
        if self.drop_last:
            return num_samples // self.batch_size
        return math.ceil(num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple]:
        num_samples = len(self.dataset)
        if self.shuffle:
            order = np.random.default_rng([self._entropy, self.epoch]).permutation(num_samples)
        else:
            order = np.arange(num_samples)
        self.epoch += 1
        return self._batches(order)

    def _batches(self, order: np.ndarray) -> Iterator[tuple]:
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            if self.drop_last and len(indices) < self.batch_size:
                return
            data, label = _fetch(self.dataset, indices)
            if self.device != "cpu":
                data = to_device(data, self.device)
                label = None if label is None else to_device(label, self.device)
            yield data, label

    def __repr__(self) -> str:
        return (
            f"DataLoader(num_samples={len(self.dataset)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
            f"device={self.device!r})"
        )


def _reads_arrays_directly(dataset) -> bool:
    """Whether ``dataset[i]`` is exactly ``(data[i], label[i])`` for its ``data``/``label`` arrays."""
    return (
        isinstance(dataset, Dataset)
        and type(dataset).__getitem__ is Dataset.__getitem__
        and dataset.transform is None
        and dataset.target_transform is None
        and isinstance(dataset.data, np.ndarray)
        and (dataset.label is None or isinstance(dataset.label, np.ndarray))
    )


def _fetch(dataset, indices: np.ndarray) -> tuple:
    """Return the batch ``(data, label)`` of the samples of ``dataset`` at ``indices``."""
    while isinstance(dataset, Subset) and type(dataset).__getitem__ is Subset.__getitem__:
        indices = dataset.indices[indices]
        dataset = dataset.dataset
    if _reads_arrays_directly(dataset):
        label = None if dataset.label is None else dataset.label[indices]
        return dataset.data[indices], label
    return _collate([dataset[int(i)] for i in indices], dataset)


def _collate(samples: list, dataset) -> tuple:
    for sample in samples:
        if not (isinstance(sample, tuple) and len(sample) == 2):
            raise TypeError(
                f"DataLoader: {type(dataset).__name__}[i] must return a (data, label) pair, "
                f"got {type(sample).__name__}"
            )
    data = np.stack([np.asarray(x) for x, _ in samples])
    labels = [t for _, t in samples]
    missing = sum(t is None for t in labels)
    if missing == len(labels):
        return data, None
    if missing:
        raise ValueError(
            f"DataLoader: {type(dataset).__name__} gave labels for some samples of a batch "
            "and None for others"
        )
    return data, np.stack([np.asarray(t) for t in labels])
