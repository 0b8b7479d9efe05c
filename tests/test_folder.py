"""dataset=folder: one subfolder of images per class, resize, invert, cache, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from snnexp.data.folder import image_size_pair, load_folder, read_image
from snnexp.data.preprocess import ImageFormat, prepare_images
from snnexp.errors import UserError


def write_classes(root: Path, n_classes: int = 3, per_class: int = 4, mode: str = "L") -> None:
    """Class ``k`` images are uniform gray ``40 * (k + 1)`` (so labels are checkable)."""
    for k in range(n_classes):
        (root / f"class_{k}").mkdir(parents=True)
        for i in range(per_class):
            value = 40 * (k + 1)
            array = np.full((10, 12) if mode == "L" else (10, 12, 3), value, np.uint8)
            Image.fromarray(array, mode=mode).save(root / f"class_{k}" / f"{i}.png")


def test_each_subfolder_is_a_class_in_sorted_order(tmp_path: Path):
    write_classes(tmp_path)
    (tmp_path / "notes.txt").write_text("not a class")
    pool = load_folder(str(tmp_path), image_size=8)
    assert pool.images.shape == (12, 1, 8, 8) and pool.classes == [0, 1, 2]
    for k in range(3):
        members = pool.images[pool.labels == k]
        assert len(members) == 4
        assert torch.allclose(members, torch.full_like(members, 40 * (k + 1) / 255), atol=1e-6)


def test_invert_and_rgb_channels(tmp_path: Path):
    write_classes(tmp_path, mode="RGB")
    pool = load_folder(str(tmp_path), image_size=[6, 9], channels=3, invert=True)
    assert pool.image_shape == (3, 6, 9)
    assert torch.allclose(pool.images[pool.labels == 0], torch.tensor(1 - 40 / 255), atol=1e-6)


def test_class_splits_apply_to_folder_ids(tmp_path: Path):
    write_classes(tmp_path, n_classes=4)
    splits = load_folder(str(tmp_path), test_classes=[3], val_classes=[2]).splits()
    assert set(splits["test"].labels.tolist()) == {3}
    assert set(splits["val"].labels.tolist()) == {2}
    assert set(splits["train"].labels.tolist()) == {0, 1}


def test_unreadable_image_raises_one_line_user_error_naming_the_file(tmp_path: Path):
    write_classes(tmp_path)
    bad = tmp_path / "class_1" / "broken.png"
    bad.write_bytes(b"\x89PNG truncated")
    with pytest.raises(UserError) as err:
        load_folder(str(tmp_path))
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_cache_is_reused_and_invalidated_by_a_new_file(tmp_path: Path):
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_classes(data)
    first = load_folder(str(data), cache_dir=str(cache))
    again = load_folder(str(data), cache_dir=str(cache))
    assert torch.equal(first.images, again.images)
    assert len(list(cache.glob("*.pt"))) == 1
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(data / "class_0" / "new.png")
    grown = load_folder(str(data), cache_dir=str(cache))
    assert len(grown.labels) == len(first.labels) + 1
    assert len(list(cache.glob("*.pt"))) == 2


@pytest.mark.parametrize("make, words", [
    (lambda root: None, "no such folder"),
    (lambda root: (root / "only").mkdir(parents=True), "1 class subfolders"),
    (lambda root: [(root / n).mkdir(parents=True) for n in ("a", "b")], "has no images"),
])
def test_bad_folders_raise_user_error(tmp_path: Path, make, words):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(UserError, match=words):
        load_folder(str(root))


@pytest.mark.parametrize("size, expected", [(28, (28, 28)), ([20, 30], (20, 30)), ([7], (7, 7))])
def test_image_size_accepts_int_or_pair(size, expected):
    assert image_size_pair(size) == expected


@pytest.mark.parametrize("size", [0, [1, 2, 3], [-4, 4]])
def test_bad_image_size_raises_user_error(size):
    with pytest.raises(UserError, match="dataset.image_size"):
        image_size_pair(size)


@pytest.mark.parametrize("mode, channels", [("L", 1), ("RGB", 3), ("RGB", 1), ("L", 3)])
def test_a_file_and_a_users_pil_image_decode_alike(tmp_path: Path, mode: str, channels: int):
    """One decoder: the loaders' ``read_image`` and ``prepare_images`` of the same picture."""
    rng = np.random.default_rng(0)
    shape = (10, 12) if mode == "L" else (10, 12, 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(tmp_path / "x.png")
    from_file = read_image(tmp_path / "x.png", (7, 9), channels)
    with Image.open(tmp_path / "x.png") as img:
        from_user = prepare_images(img, (channels, 7, 9), ImageFormat())
    assert from_file.shape == (channels, 7, 9) and from_file.dtype == np.uint8
    assert torch.equal(from_user[0], torch.tensor(from_file).float() / 255)
