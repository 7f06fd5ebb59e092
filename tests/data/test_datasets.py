"""Tests for pygrad/data/datasets.py: Spiral, the shipped Digits and MNIST from local IDX files."""

import gzip
import struct

import numpy as np
import pytest

from pygrad.data import MNIST, DataLoader, Digits, Spiral, read_idx


def test_spiral_shapes_dtypes_and_balanced_classes():
    spiral = Spiral()
    assert spiral.data.shape == (300, 2) and spiral.data.dtype == np.float32
    assert spiral.label.shape == (300,) and spiral.label.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(spiral.label), [100, 100, 100])
    assert np.all(np.linalg.norm(spiral.data, axis=1) < 1.0)


def test_spiral_is_the_same_on_every_run_and_differs_between_train_and_test():
    np.testing.assert_array_equal(Spiral().data, Spiral().data)
    assert not np.array_equal(Spiral(train=True).data, Spiral(train=False).data)
    assert Spiral(num_class=4, num_data=10).data.shape == (40, 2)


def test_digits_ships_1797_images_of_64_pixels_valued_0_to_16():
    digits = Digits()
    assert len(digits) == 1797
    assert digits.data.shape == (1797, 64) and digits.data.dtype == np.float32
    assert digits.data.min() == 0 and digits.data.max() == 16
    np.testing.assert_array_equal(digits.data, np.round(digits.data))
    assert digits.label.dtype == np.int64
    counts = np.bincount(digits.label)
    assert len(counts) == 10 and counts.sum() == 1797 and counts.min() >= 174


def test_digits_as_normalized_images():
    digits = Digits(flatten=False, normalize=True)
    assert digits.data.shape == (1797, 1, 8, 8)
    assert digits.data.max() == 1.0
    np.testing.assert_allclose(digits.data.reshape(1797, 64) * 16, Digits().data)


def test_digits_first_image_is_a_zero():
    data, label = Digits()[0]
    assert label == 0
    assert data[:8].tolist() == [0, 0, 5, 13, 9, 1, 0, 0]


def write_idx(path, array, compress=False):
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    opener = gzip.open if compress else open
    with opener(path, "wb") as file:
        file.write(header + array.tobytes())


def write_mnist(folder, prefix, count, compress=False, rng=None):
    rng = rng or np.random.default_rng(0)
    images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=count, dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("train, prefix, count", [(True, "train", 6), (False, "t10k", 4)])
def test_mnist_reads_idx_files_scaled_to_unit_range(tmp_path, compress, train, prefix, count):
    images, labels = write_mnist(tmp_path, prefix, count, compress)
    mnist = MNIST(tmp_path, train=train)
    assert mnist.data.shape == (count, 1, 28, 28) and mnist.data.dtype == np.float32
    np.testing.assert_allclose(mnist.data[:, 0], images / 255.0, rtol=1e-6)
    assert mnist.label.dtype == np.int64
    np.testing.assert_array_equal(mnist.label, labels)
    assert MNIST(tmp_path, train=train, flatten=True).data.shape == (count, 784)


def test_mnist_batches_through_a_dataloader(tmp_path):
    write_mnist(tmp_path, "train", 5)
    data, label = next(iter(DataLoader(MNIST(tmp_path), 5)))
    assert data.shape == (5, 1, 28, 28) and label.shape == (5,)


def test_mnist_missing_files_error_lists_the_expected_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as error:
        MNIST(tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(error.value)
    assert str(tmp_path) in str(error.value)


def test_mnist_rejects_images_and_labels_of_different_lengths(tmp_path):
    write_mnist(tmp_path, "t10k", 3)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match="labels of shape"):
        MNIST(tmp_path, train=False)


def test_read_idx_rejects_a_file_that_is_not_idx(tmp_path):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(path)


def test_read_idx_rejects_a_truncated_file(tmp_path):
    path = tmp_path / "short-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x01\x02")
    with pytest.raises(ValueError, match="10 bytes"):
        read_idx(path)
