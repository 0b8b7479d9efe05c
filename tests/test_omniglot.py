"""Omniglot loader: torchvision layout, alphabet-disjoint splits, rotations, cache, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.configs import SHARED_DATA, compose
from PIL import Image

from snnexp.data import folder as folder_module
from snnexp.data.omniglot import load_omniglot
from snnexp.errors import UserError

SHARED = SHARED_DATA
BACKGROUND = {"Alpha": 3, "Beta": 2, "Gamma": 2}
EVALUATION = {"Delta": 2}


def write_tree(root: Path, alphabets: dict[str, int], folder: str = "images_background",
               drawings: int = 4, size: int = 20) -> None:
    """``<root>/omniglot-py/<folder>/<alphabet>/characterNN/*.png``: black strokes on white;
    each character is an L-shaped stroke (not rotation-symmetric) at its own position."""
    for a, (alphabet, n_chars) in enumerate(alphabets.items()):
        for c in range(n_chars):
            char_dir = root / "omniglot-py" / folder / alphabet / f"character{c + 1:02d}"
            char_dir.mkdir(parents=True)
            for d in range(drawings):
                img = np.full((size, size), 255, np.uint8)
                row = 2 + (a * 3 + c) % 8
                img[row: row + 8, 3] = 0
                img[row + 7, 3: 3 + 6 + d % 2] = 0
                Image.fromarray(img).convert("1").save(char_dir / f"{a}{c}_{d:02d}.png")


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    write_tree(tmp_path, BACKGROUND)
    return tmp_path


def alphabets_of(pool, labels: torch.Tensor) -> set[str]:
    offset = max(pool.classes) + 1
    return {pool.class_groups[int(c) % offset] for c in torch.unique(labels)}


def test_loader_reads_the_tree_resized_and_inverted(fake_root: Path):
    pool = load_omniglot(str(fake_root), image_size=28, test_alphabets=["Gamma"])
    assert pool.images.shape == (7 * 4, 1, 28, 28)
    assert pool.images.dtype == torch.float32
    assert len(pool.classes) == 7
    # white paper -> 0, black strokes -> 1
    corner = pool.images[:, 0, 0, 0]
    assert torch.all(corner == 0)
    assert pool.images.amax(dim=(1, 2, 3)).min() > 0.5  # 1-pixel strokes, upsampled


def test_image_size_sets_the_resolution(fake_root: Path):
    pool = load_omniglot(str(fake_root), image_size=14, test_alphabets=["Gamma"])
    assert pool.image_shape == (1, 14, 14)


def test_splits_are_alphabet_disjoint(fake_root: Path):
    pool = load_omniglot(str(fake_root), test_alphabets=["Gamma"], val_alphabets=["Beta"])
    splits = pool.splits()
    assert alphabets_of(pool, splits["train"].labels) == {"Alpha"}
    assert alphabets_of(pool, splits["val"].labels) == {"Beta"}
    assert alphabets_of(pool, splits["test"].labels) == {"Gamma"}


def test_without_val_alphabets_validation_holds_out_training_characters(fake_root: Path):
    pool = load_omniglot(str(fake_root), test_alphabets=["Gamma"], val_fraction=0.4)
    splits = pool.splits()
    train, val = set(splits["train"].labels.tolist()), set(splits["val"].labels.tolist())
    assert len(val) == 2 and len(train) == 3 and not train & val
    assert alphabets_of(pool, splits["test"].labels) == {"Gamma"}
    assert "Gamma" not in alphabets_of(pool, splits["val"].labels)


def test_evaluation_folder_is_the_test_set_when_present(fake_root: Path):
    write_tree(fake_root, EVALUATION, folder="images_evaluation")
    pool = load_omniglot(str(fake_root), val_alphabets=["Beta"])
    splits = pool.splits()
    assert alphabets_of(pool, splits["test"].labels) == {"Delta"}
    assert alphabets_of(pool, splits["train"].labels) == {"Alpha", "Gamma"}


def test_rotations_are_new_classes_in_training_only(fake_root: Path):
    pool = load_omniglot(str(fake_root), test_alphabets=["Gamma"], val_alphabets=["Beta"],
                         rotations=True)
    splits = pool.splits()
    train_classes = torch.unique(splits["train"].labels)
    assert len(train_classes) == 4 * 3  # Alpha's 3 characters x 4 orientations
    offset = max(pool.classes) + 1
    assert int(splits["val"].labels.max()) < offset and int(splits["test"].labels.max()) < offset
    first = int(train_classes[0])
    original = splits["train"].images[splits["train"].labels == first]
    turned = splits["train"].images[splits["train"].labels == first + offset]
    assert torch.equal(turned, torch.rot90(original, 1, dims=(2, 3)))
    assert not torch.equal(turned, original)


def test_second_load_comes_from_the_cache(fake_root: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    first = load_omniglot(str(fake_root), test_alphabets=["Gamma"], cache_dir=str(cache))
    assert len(list(cache.glob("*.pt"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image although the cache holds it")

    monkeypatch.setattr(folder_module, "read_image", no_decoding)
    second = load_omniglot(str(fake_root), test_alphabets=["Gamma"], cache_dir=str(cache))
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)


def test_missing_folder_raises_one_line_user_error_naming_it(tmp_path: Path):
    (tmp_path / "omniglot-py").mkdir()  # a layout without images_background
    with pytest.raises(UserError) as err:
        load_omniglot(str(tmp_path), test_alphabets=["Korean"])
    message = str(err.value)
    assert "\n" not in message
    assert str(tmp_path / "omniglot-py" / "images_background") in message
    assert "paths.data_dir" in message


@pytest.mark.parametrize("kwargs, words", [
    ({}, "dataset.test_alphabets=null"),
    ({"test_alphabets": ["Klingon"]}, "Klingon"),
    ({"test_alphabets": ["Gamma"], "val_alphabets": ["Gamma"]}, "also in dataset.test_alphabets"),
    ({"test_alphabets": ["Alpha", "Beta", "Gamma"]}, "no alphabet left for training"),
    ({"test_alphabets": ["Gamma"], "test_classes": [1]}, "dataset.test_classes"),
])
def test_bad_alphabet_choices_raise_user_error(fake_root: Path, kwargs, words):
    with pytest.raises(UserError, match="dataset") as err:
        load_omniglot(str(fake_root), **kwargs)
    assert words in str(err.value)


def test_unreadable_image_raises_user_error_naming_the_file(fake_root: Path):
    bad = fake_root / "omniglot-py" / "images_background" / "Alpha" / "character01" / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(UserError, match="bad.png"):
        load_omniglot(str(fake_root), test_alphabets=["Gamma"])


def test_preset_composes_and_trains_end_to_end(tmp_path: Path):
    """experiment=omniglot_5w1s on a fake tree with the preset's alphabet names."""
    write_tree(tmp_path, {"Korean": 3, "Early_Aramaic": 3, "Greek": 5, "Latin": 6}, drawings=6)
    from snnexp.train import train

    cfg = compose("train", "experiment=omniglot_5w1s", f"paths.data_dir={tmp_path}",
                  f"paths.output_dir={tmp_path / 'run'}", f"paths.log_dir={tmp_path / 'logs'}",
                  "logger=none", "train_way=5", "train_episodes=2", "val_every=2",
                  "val_episodes=2", "test_episodes=3", "dataset.image_size=16",
                  "model.num_steps=2")
    metrics, _ = train(cfg)
    assert metrics["dataset"] == "omniglot" and metrics["test"]["episodes"] == 3
    assert 0.0 <= metrics["test"]["acc"] <= 1.0
    spikes = metrics["spikes"]
    assert spikes["total/spikes"] > 0 and spikes["energy/snn_pj"] > 0
    assert spikes["energy/ann_pj"] > 0


@pytest.mark.skipif(not (SHARED / "omniglot-py" / "images_background").is_dir(),
                    reason="shared Omniglot data not present")
def test_shared_background_set_splits_korean_and_early_aramaic_off(tmp_path: Path):
    pool = load_omniglot(str(SHARED), test_alphabets=["Korean", "Early_Aramaic"],
                         val_alphabets=["Greek"], rotations=True, cache_dir=str(tmp_path))
    assert len(pool.classes) == 242 and pool.images.shape == (4840, 1, 28, 28)
    splits = pool.splits()
    assert alphabets_of(pool, splits["test"].labels) == {"Korean", "Early_Aramaic"}
    assert len(torch.unique(splits["test"].labels)) == 40 + 22
    assert alphabets_of(pool, splits["val"].labels) == {"Greek"}
    assert len(torch.unique(splits["train"].labels)) == 4 * (242 - 62 - 24)
    assert 0.02 < float(pool.images.mean()) < 0.3  # strokes bright on a dark background


def test_without_omniglot_py_the_bundled_subset_is_read(tmp_path: Path):
    pool = load_omniglot(str(tmp_path / "nothing_here"), val_alphabets=["Greek"])
    assert pool.images.shape == (4840, 1, 28, 28)
    assert len(pool.classes) == 242
    assert alphabets_of(pool, pool.splits()["test"].labels) == {"Korean", "Early_Aramaic"}
    assert alphabets_of(pool, pool.splits()["val"].labels) == {"Greek"}
    assert float(pool.images[:, 0, 0, 0].max()) == 0.0  # inverted: blank paper is 0


def test_the_bundled_subset_refuses_other_sizes(tmp_path: Path):
    with pytest.raises(UserError, match=r"dataset.image_size=32: the bundled Omniglot is 28x28"):
        load_omniglot(str(tmp_path), image_size=32)


def test_bundled_array_equals_the_decoded_pngs():
    """The shipped array is the loader's own decoding of the shared PNGs, pixel for pixel."""
    if not (SHARED / "omniglot-py" / "images_background").is_dir():
        pytest.skip(f"shared Omniglot PNGs not found at {SHARED}")
    from_pngs = load_omniglot(str(SHARED), test_alphabets=["Korean"], cache_dir=None)
    bundled = load_omniglot(str(SHARED / "absent"), test_alphabets=["Korean"])
    assert torch.equal(from_pngs.images, bundled.images)
    assert torch.equal(from_pngs.labels, bundled.labels)
    assert from_pngs.class_groups == bundled.class_groups
