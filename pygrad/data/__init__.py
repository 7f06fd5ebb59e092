"""Datasets and batching: ``Dataset``, ``ArrayDataset``, ``Subset``, ``ratio_split``, ``DataLoader``
and the built-in datasets ``Spiral``, ``Digits`` and ``MNIST``."""

from pygrad.data.dataset import ArrayDataset, Dataset, Subset, ratio_split
from pygrad.data.datasets import MNIST, Digits, Spiral, read_idx
from pygrad.data.loader import DataLoader

__all__ = [
    "Dataset",
    "ArrayDataset",
    "Subset",
    "ratio_split",
    "DataLoader",
    "Spiral",
    "Digits",
    "MNIST",
    "read_idx",
]
