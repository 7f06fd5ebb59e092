"""Tests for pygrad/data/dataset.py: Dataset, ArrayDataset, Subset and ratio_split."""

import numpy as np
import pytest

from pygrad.data import ArrayDataset, DataLoader, Dataset, Subset, ratio_split


class Squares(Dataset):
    """A dataset written the pygrad 0.1.0 way: data and label set in __init__."""

    def __init__(self, size=10, transform=None, target_transform=None):
        super().__init__(transform, target_transform)
        self.data = np.arange(size, dtype=np.float32).reshape(size, 1)
        self.label = np.arange(size) ** 2


def test_dataset_subclass_reads_data_and_label_set_in_init():
    dataset = Squares()
    assert len(dataset) == 10
    data, label = dataset[3]
    np.testing.assert_array_equal(data, [3.0])
    assert label == 9


def test_dataset_subclass_that_skips_super_init_still_reads_its_samples():
    class NoSuper(Dataset):
        def __init__(self):
            self.data = np.arange(6.0).reshape(3, 2)
            self.label = np.array([0, 1, 2])

    data, label = NoSuper()[1]
    np.testing.assert_array_equal(data, [2.0, 3.0])
    assert label == 1
    assert len(DataLoader(NoSuper(), 2)) == 2


def test_dataset_transforms_are_applied_per_sample():
    seen = []

    def transform(x):
        seen.append(x.shape)
        return x * 2

    dataset = Squares(transform=transform, target_transform=lambda t: -t)
    data, label = dataset[4]
    np.testing.assert_array_equal(data, [8.0])
    assert label == -16
    assert seen == [(1,)]


def test_dataset_without_label_gives_none():
    dataset = ArrayDataset(np.ones((3, 2)))
    data, label = dataset[1]
    assert label is None
    assert data.shape == (2,)


def test_dataset_rejects_non_integer_index():
    with pytest.raises(TypeError, match="indices must be integers"):
        Squares()[np.array([0, 1])]


def test_dataset_that_sets_no_data_says_what_to_do():
    with pytest.raises(NotImplementedError, match="self.data"):
        len(Dataset())


def test_array_dataset_rejects_label_of_other_length():
    with pytest.raises(ValueError, match="3 samples"):
        ArrayDataset(np.ones((3, 2)), np.arange(4))


def test_subset_maps_indices_and_accepts_negative_ones():
    subset = Subset(Squares(), [5, -1, 0])
    assert len(subset) == 3
    assert [int(subset[i][1]) for i in range(3)] == [25, 81, 0]


def test_subset_rejects_out_of_range_indices():
    with pytest.raises(IndexError, match="10 samples"):
        Subset(Squares(), [10])


def test_ratio_split_puts_every_sample_in_exactly_one_split():
    dataset = ArrayDataset(np.arange(103), np.arange(103))
    splits = ratio_split(dataset, 0.5, 0.3, 0.2, seed=0)
    labels = np.concatenate([[int(s[i][1]) for i in range(len(s))] for s in splits])
    np.testing.assert_array_equal(np.sort(labels), np.arange(103))


@pytest.mark.parametrize(
    "size, ratios, expected",
    [(10, (0.8, 0.2), [8, 2]), (1797, (0.8, 0.2), [1438, 359]), (10, (1 / 3,) * 3, [4, 3, 3])],
)
def test_ratio_split_sizes_add_up(size, ratios, expected):
    splits = ratio_split(ArrayDataset(np.arange(size)), *ratios, seed=0)
    assert [len(s) for s in splits] == expected


def test_ratio_split_accepts_a_tuple_of_ratios_as_in_pygrad_0_1_0():
    train, test = ratio_split(ArrayDataset(np.arange(10)), (0.6, 0.4), seed=0)
    assert (len(train), len(test)) == (6, 4)


def test_ratio_split_is_deterministic_with_a_seed():
    dataset = ArrayDataset(np.arange(50))
    first = ratio_split(dataset, 0.7, 0.3, seed=3)
    second = ratio_split(dataset, 0.7, 0.3, seed=3)
    other = ratio_split(dataset, 0.7, 0.3, seed=4)
    np.testing.assert_array_equal(first[0].indices, second[0].indices)
    assert not np.array_equal(first[0].indices, other[0].indices)


def test_ratio_split_refuses_ratios_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match=r"must sum to 1, but 0.8 \+ 0.3 = 1.1"):
        ratio_split(ArrayDataset(np.arange(10)), 0.8, 0.3)


@pytest.mark.parametrize("ratios", [(), (1.2, -0.2), (0.0, 1.0), (float("nan"),)])
def test_ratio_split_refuses_missing_or_non_positive_ratios(ratios):
    with pytest.raises(ValueError, match="ratio"):
        ratio_split(ArrayDataset(np.arange(10)), *ratios)


@pytest.mark.parametrize("seed", ["x", 1.5, True, [1]], ids=repr)
def test_ratio_split_refuses_a_seed_that_is_not_an_int_naming_it(seed):
    dataset = ArrayDataset(np.arange(10))
    with pytest.raises(TypeError, match=r"ratio_split: seed must be a non-negative int or None"):
        ratio_split(dataset, 0.5, 0.5, seed=seed)


def test_ratio_split_refuses_a_negative_seed():
    with pytest.raises(ValueError, match=r"ratio_split: seed must be a non-negative int"):
        ratio_split(ArrayDataset(np.arange(10)), 0.5, 0.5, seed=-1)


def test_ratio_split_takes_numpy_integer_seeds():
    a = ratio_split(ArrayDataset(np.arange(10)), 0.5, 0.5, seed=np.int64(3))
    b = ratio_split(ArrayDataset(np.arange(10)), 0.5, 0.5, seed=3)
    np.testing.assert_array_equal(a[0].indices, b[0].indices)
