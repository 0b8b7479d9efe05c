"""Dataset loaders: the IDX reader on files written here, its errors, the shared MNIST."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from snnexp.data.datasets import load_digits, load_idx
from snnexp.data.pool import ClassPool
from snnexp.errors import UserError

TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def idx_bytes(array: np.ndarray) -> bytes:
    """An uncompressed IDX file of unsigned bytes: magic 0x0000 08 ndim, big-endian dims."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_pair(root: Path, name: str, files: tuple[str, str], images: np.ndarray,
                   labels: np.ndarray) -> Path:
    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / files[0]).write_bytes(idx_bytes(images))
    (raw / files[1]).write_bytes(idx_bytes(labels))
    return raw


def tiny_digits(n_classes: int = 4, per_class: int = 3, side: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), per_class).astype(np.uint8)
    images = rng.integers(0, 256, size=(len(labels), side, side)).astype(np.uint8)
    images[:, 0, 0] = labels * 50  # a pixel that identifies the class
    return images, labels


POOL_ARGS = {"train_classes": [0, 1], "test_classes": [2, 3]}


def test_idx_reader_returns_the_written_images_scaled_to_unit_range(tmp_path):
    images, labels = tiny_digits()
    write_idx_pair(tmp_path, "MNIST", TEST_FILES, images, labels)
    pool = load_idx("MNIST", str(tmp_path), **POOL_ARGS)
    assert isinstance(pool, ClassPool)
    assert pool.images.shape == (12, 1, 6, 6) and pool.images.dtype == torch.float32
    assert torch.allclose(pool.images[:, 0], torch.from_numpy(images).float() / 255)
    assert pool.labels.tolist() == labels.tolist() and pool.labels.dtype == torch.int64
    splits = pool.splits()
    assert set(splits["test"].labels.tolist()) == {2, 3}
    assert set(splits["train"].labels.tolist()) == {0, 1}


def test_idx_reader_concatenates_train_and_test_files(tmp_path):
    train_images, train_labels = tiny_digits(per_class=2, seed=1)
    test_images, test_labels = tiny_digits(per_class=3, seed=2)
    write_idx_pair(tmp_path, "KMNIST", TRAIN_FILES, train_images, train_labels)
    write_idx_pair(tmp_path, "KMNIST", TEST_FILES, test_images, test_labels)
    pool = load_idx("KMNIST", str(tmp_path), **POOL_ARGS)
    assert len(pool.labels) == 8 + 12
    assert torch.bincount(pool.labels).tolist() == [5, 5, 5, 5]


def test_truncated_idx_file_is_a_user_error_naming_the_file(tmp_path):
    images, labels = tiny_digits()
    raw = write_idx_pair(tmp_path, "MNIST", TEST_FILES, images, labels)
    path = raw / TEST_FILES[0]
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(UserError, match="truncated") as err:
        load_idx("MNIST", str(tmp_path), **POOL_ARGS)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content", [b"", b"\x00\x00", b"PK\x03\x04 not an idx file at all"],
                         ids=["empty", "short", "zip"])
def test_a_file_that_is_not_idx_is_a_user_error_naming_the_file(tmp_path, content):
    images, labels = tiny_digits()
    raw = write_idx_pair(tmp_path, "FashionMNIST", TEST_FILES, images, labels)
    (raw / TEST_FILES[1]).write_bytes(content)
    with pytest.raises(UserError) as err:
        load_idx("FashionMNIST", str(tmp_path), **POOL_ARGS)
    assert str(raw / TEST_FILES[1]) in str(err.value)


def test_images_and_labels_of_different_lengths_are_a_user_error(tmp_path):
    images, labels = tiny_digits()
    write_idx_pair(tmp_path, "MNIST", TEST_FILES, images, labels[:-1])
    with pytest.raises(UserError, match="11 labels"):
        load_idx("MNIST", str(tmp_path), **POOL_ARGS)


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_missing_data_names_the_folder_searched_and_the_fix(tmp_path, make):
    root = tmp_path / "data"
    if make == "empty":
        (root / "MNIST" / "raw").mkdir(parents=True)
    with pytest.raises(UserError) as err:
        load_idx("MNIST", str(root), **POOL_ARGS)
    message = str(err.value)
    assert str(root / "MNIST" / "raw") in message
    assert "paths.data_dir=" in message and "dataset.download=true" in message
    assert "\n" not in message


def test_unknown_idx_name_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"^dataset\.name=EMNIST"):
        load_idx("EMNIST", str(tmp_path))


def test_digits_are_8x8_in_unit_range_with_ten_classes():
    pool = load_digits()
    assert pool.image_shape == (1, 8, 8) and len(pool.labels) == 1797
    assert pool.images.min() >= 0 and pool.images.max() == 1
    assert sorted(torch.unique(pool.labels).tolist()) == list(range(10))


def test_unknown_class_ids_are_a_user_error():
    with pytest.raises(UserError, match=r"^dataset\.test_classes=\[5, 12\]"):
        load_digits(test_classes=[5, 12])


def test_image_split_puts_every_class_in_both_phases_with_disjoint_images():
    n = 60  # image i holds the value i everywhere, so splits can be traced back to indices
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2)
    pool = ClassPool(images, torch.arange(n) % 4, split="images", test_fraction=0.5)
    splits = pool.splits()
    ids = {k: set(v.images[:, 0, 0, 0].long().tolist()) for k, v in splits.items()}
    assert not ids["train"] & ids["test"] and not ids["train"] & ids["val"]
    assert not ids["val"] & ids["test"] and len(set.union(*ids.values())) == n
    for split in splits.values():
        assert set(split.labels.tolist()) == {0, 1, 2, 3}


@pytest.mark.parametrize("args", [
    {"split": "images", "test_fraction": 0.5},                  # two shuffles per call
    {"train_classes": [0, 1], "test_classes": [2, 3]},          # val held out of training
])
def test_splits_are_the_same_at_every_call(args):
    images = torch.rand(40, 1, 2, 2)
    pool = ClassPool(images, torch.arange(40) % 4, split_seed=3, **args)
    first, second = pool.splits(), pool.splits()
    for name in ("train", "val", "test"):
        assert torch.equal(first[name].images, second[name].images)
        assert torch.equal(first[name].labels, second[name].labels)
    other = ClassPool(images, torch.arange(40) % 4, split_seed=4, **args).splits()
    assert not torch.equal(other["val"].images, first["val"].images)  # the seed decides


def test_class_groups_are_a_constructor_argument():
    pool = ClassPool(torch.rand(8, 1, 2, 2), torch.arange(8) % 4,
                     class_groups={0: "a", 1: "a", 2: "b", 3: "b"})
    assert pool.class_groups == {0: "a", 1: "a", 2: "b", 3: "b"}
    assert ClassPool(torch.rand(8, 1, 2, 2), torch.arange(8) % 4).class_groups is None


def test_flips_and_rotations_add_the_eight_symmetries_as_training_classes():
    images = torch.rand(40, 1, 3, 3)  # asymmetric 3x3 images, 10 per class
    pool = ClassPool(images, torch.arange(40) % 4, train_classes=[0, 1], test_classes=[2, 3],
                     rotations=True, flips=True)
    splits = pool.splits()
    train = splits["train"]
    assert sorted(torch.unique(train.labels).tolist()) == [c + 4 * j for j in range(8)
                                                           for c in (0, 1)]
    assert set(splits["test"].labels.tolist()) == {2, 3}  # test and val stay unchanged
    assert set(splits["val"].labels.tolist()) == {0, 1}
    original = train.images[train.labels == 1]
    mirrored = torch.flip(original, dims=(3,))
    expected = [torch.rot90(x, k, dims=(2, 3)) for x in (original, mirrored) for k in range(4)]
    for j, want in enumerate(expected):
        assert torch.equal(train.images[train.labels == 1 + 4 * j], want)


def test_flips_without_rotations_add_one_mirrored_class_per_training_class():
    images = torch.rand(40, 1, 3, 3)
    pool = ClassPool(images, torch.arange(40) % 4, train_classes=[0, 1], test_classes=[2, 3],
                     flips=True)
    train = pool.splits()["train"]
    assert sorted(torch.unique(train.labels).tolist()) == [0, 1, 4, 5]
    assert torch.equal(train.images[train.labels == 5],
                       torch.flip(train.images[train.labels == 1], dims=(3,)))


def test_shared_mnist_test_split_loads(shared_data):
    pool = load_idx("MNIST", str(shared_data), **POOL_ARGS)
    assert pool.images.shape == (10_000, 1, 28, 28)
    assert float(pool.images.min()) >= 0 and float(pool.images.max()) == 1.0
    assert torch.bincount(pool.labels).min() > 800
