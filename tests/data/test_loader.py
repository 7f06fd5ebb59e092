"""Tests for pygrad/data/loader.py: DataLoader batching, shuffling, determinism and fast path."""

import numpy as np
import pytest

from pygrad.backends import device_of
from pygrad.data import ArrayDataset, DataLoader, Dataset, Subset


def labelled(size=10):
    return ArrayDataset(np.arange(size * 2, dtype=np.float32).reshape(size, 2), np.arange(size))


def epoch_labels(loader):
    return np.concatenate([label for _, label in loader])


@pytest.mark.parametrize("shuffle", [True, False])
def test_dataloader_visits_every_sample_exactly_once_per_epoch(shuffle):
    loader = DataLoader(labelled(23), 5, shuffle=shuffle, seed=0)
    for _ in range(3):
        np.testing.assert_array_equal(np.sort(epoch_labels(loader)), np.arange(23))


def test_dataloader_without_shuffle_keeps_dataset_order():
    loader = DataLoader(labelled(7), 3, shuffle=False)
    np.testing.assert_array_equal(epoch_labels(loader), np.arange(7))


def test_dataloader_keeps_the_partial_last_batch_by_default():
    loader = DataLoader(labelled(10), 4, shuffle=False)
    assert len(loader) == 3
    assert [data.shape for data, _ in loader] == [(4, 2), (4, 2), (2, 2)]


def test_dataloader_drop_last_skips_the_partial_batch():
    loader = DataLoader(labelled(10), 4, drop_last=True, seed=0)
    assert len(loader) == 2
    batches = list(loader)
    assert len(batches) == 2
    assert all(label.shape == (4,) for _, label in batches)


def test_dataloader_len_when_batches_divide_evenly():
    assert len(DataLoader(labelled(12), 4)) == len(DataLoader(labelled(12), 4, drop_last=True)) == 3


def test_dataloader_batches_keep_samples_paired_with_their_labels():
    for data, label in DataLoader(labelled(10), 3, seed=1):
        np.testing.assert_array_equal(data[:, 0], label * 2)


def test_dataloader_is_deterministic_with_a_seed():
    first = [epoch_labels(DataLoader(labelled(30), 4, seed=7)) for _ in range(2)]
    np.testing.assert_array_equal(first[0], first[1])


def test_dataloader_reshuffles_at_every_epoch():
    loader = DataLoader(labelled(30), 4, seed=7)
    epochs = [epoch_labels(loader) for _ in range(3)]
    assert not np.array_equal(epochs[0], epochs[1])
    assert not np.array_equal(epochs[1], epochs[2])
    again = DataLoader(labelled(30), 4, seed=7)
    for expected in epochs:
        np.testing.assert_array_equal(epoch_labels(again), expected)


def test_dataloader_yields_none_labels_for_an_unlabelled_dataset():
    batches = list(DataLoader(ArrayDataset(np.ones((5, 3))), 2))
    assert all(label is None for _, label in batches)
    assert sum(len(data) for data, _ in batches) == 5


def test_dataloader_applies_transforms_per_sample():
    calls = []

    def transform(x):
        calls.append(x.shape)
        return x + 100

    dataset = ArrayDataset(np.zeros((6, 2)), np.arange(6), transform=transform)
    data, label = next(iter(DataLoader(dataset, 6, shuffle=False)))
    assert calls == [(2,)] * 6
    np.testing.assert_array_equal(data, np.full((6, 2), 100.0))


class CountingArrays(np.ndarray):
    """An ndarray that counts how often it is indexed."""

    reads = 0

    def __getitem__(self, key):
        CountingArrays.reads += 1
        return np.asarray(self).__getitem__(key)


def test_dataloader_indexes_plain_arrays_once_per_batch():
    dataset = ArrayDataset(np.arange(20.0).reshape(10, 2), np.arange(10))
    dataset.data = dataset.data.view(CountingArrays)
    CountingArrays.reads = 0
    batches = list(DataLoader(Subset(dataset, np.arange(9)), 3))
    assert CountingArrays.reads == 3
    assert sorted(np.concatenate([label for _, label in batches])) == list(range(9))


def test_dataloader_reads_a_dataset_that_overrides_getitem_per_sample():
    class Doubled(Dataset):
        def __init__(self):
            super().__init__()
            self.data = np.arange(4.0)
            self.label = np.arange(4)

        def __getitem__(self, index):
            return self.data[index] * 2, self.label[index]

    data, label = next(iter(DataLoader(Doubled(), 4, shuffle=False)))
    np.testing.assert_array_equal(data, [0.0, 2.0, 4.0, 6.0])


def test_dataloader_accepts_any_object_with_getitem_and_len():
    class Pairs:
        def __getitem__(self, index):
            return np.full(2, index), index

        def __len__(self):
            return 5

    data, label = next(iter(DataLoader(Pairs(), 5, shuffle=False)))
    assert data.shape == (5, 2)
    np.testing.assert_array_equal(label, np.arange(5))


def test_dataloader_on_an_empty_dataset_yields_nothing():
    loader = DataLoader(labelled(0), 4)
    assert len(loader) == 0
    assert list(loader) == []


@pytest.mark.parametrize("batch_size, error", [(0, ValueError), (-2, ValueError), (2.5, TypeError)])
def test_dataloader_rejects_bad_batch_size(batch_size, error):
    with pytest.raises(error, match="batch_size"):
        DataLoader(labelled(), batch_size)


def test_dataloader_rejects_unknown_device():
    with pytest.raises(ValueError, match="unknown device"):
        DataLoader(labelled(), 2, device="tpu")


def test_dataloader_moves_batches_to_the_device(device):
    data, label = next(iter(DataLoader(labelled(4), 4, shuffle=False, device=device)))
    assert device_of(data).startswith(device)
    np.testing.assert_array_equal(data if device == "cpu" else data.get(), labelled(4).data)


def test_a_seed_of_the_wrong_kind_is_a_type_error_and_a_negative_one_a_value_error():
    dataset = ArrayDataset(np.zeros((4, 2)), np.arange(4))
    with pytest.raises(TypeError, match=r"DataLoader: seed must be a non-negative int"):
        DataLoader(dataset, 2, seed="x")
    with pytest.raises(ValueError, match=r"DataLoader: seed must be a non-negative int"):
        DataLoader(dataset, 2, seed=-1)
