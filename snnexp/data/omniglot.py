"""Omniglot (Lake et al. 2015), split by alphabet: torchvision's layout or the bundled copy.

The package ships the 8 background alphabets of Omniglot's small background sets (4,840
drawings of 242 characters, MIT licence, Lake, Salakhutdinov and Tenenbaum) as one 28x28
array (``omniglot28.npz``, written by ``scripts/build_omniglot_array.py`` with this loader's
decoding), so ``dataset=omniglot`` works offline. When ``<root>/omniglot-py/`` exists, its
image folders are read instead: ``<root>/omniglot-py/images_background/<alphabet>/<character>/
<image>.png`` and, when present, ``<root>/omniglot-py/images_evaluation/...`` (torchvision's
``Omniglot``). Every character is one class (20 drawings each). Images are resized to
``image_size`` (28x28 as in Snell et al. 2017) and inverted (``x = 1 - pixel``: strokes are 1,
background 0), so strokes drive the spiking input. ``rotations=True`` adds the
90/180/270-degree rotations of the training characters as new classes (training split only,
see ``ClassPool``).

Splits are alphabet-disjoint:

- both folders: background alphabets train (and validate), evaluation alphabets test;
- background folder alone (the bundled subset too): ``test_alphabets`` test (default
  ``SUBSET_TEST_ALPHABETS`` when they are present), the rest train;
- ``val_alphabets``: validation alphabets, removed from training; when ``None``, validation uses
  ``val_fraction`` of the training characters (drawn with ``split_seed``, class-disjoint).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.data.folder import image_size_pair, read_class_images
from snnexp.data.pool import ClassPool
from snnexp.data.preprocess import ImageFormat, to_unit_range
from snnexp.errors import UserError

log = logging.getLogger(__name__)

FOLDERS = ("images_background", "images_evaluation")


BUNDLED = Path(__file__).resolve().parent / "omniglot28.npz"
BUNDLED_SIZE = 28
# held-out alphabets when there is no images_evaluation folder (the bundled subset)
SUBSET_TEST_ALPHABETS = ["Korean", "Early_Aramaic"]


def find_alphabets(root: str) -> dict[str, list[Path]]:
    """``{folder: [alphabet dirs]}`` for the Omniglot folders present under ``<root>/omniglot-py``.

    Raises:
        UserError: no ``images_background`` folder (the message names the folder searched).
    """
    base = Path(root).expanduser() / "omniglot-py"
    found = {f: sorted(p for p in (base / f).iterdir() if p.is_dir())
             for f in FOLDERS if (base / f).is_dir()}
    if FOLDERS[0] not in found or not found[FOLDERS[0]]:
        raise UserError(f"dataset=omniglot: no alphabets in {base / FOLDERS[0]}; set "
                        "paths.data_dir=<folder holding omniglot-py/images_background> "
                        "(torchvision.datasets.Omniglot's layout)")
    return found


def alphabet_split(alphabets: dict[str, str], test_alphabets: list[str] | None,
                   val_alphabets: list[str] | None) -> dict[str, list[str]]:
    """Assign alphabets to ``train``/``val``/``test``.

    Args:
        alphabets: ``{alphabet: folder}`` of every alphabet found.
        test_alphabets, val_alphabets: names, or ``None`` (test: the evaluation folder).
    """
    names = list(alphabets)
    for key, chosen in (("test_alphabets", test_alphabets), ("val_alphabets", val_alphabets)):
        unknown = [a for a in chosen or [] if a not in alphabets]
        if unknown:
            raise UserError(f"dataset.{key}={list(chosen)}: {unknown} not found "
                            f"(available: {', '.join(names)})")
    if test_alphabets is None:
        test_alphabets = [a for a, f in alphabets.items() if f == FOLDERS[1]]
        if not test_alphabets and set(SUBSET_TEST_ALPHABETS) <= set(names):
            test_alphabets = list(SUBSET_TEST_ALPHABETS)
        if not test_alphabets:
            raise UserError("dataset.test_alphabets=null: only images_background is present, "
                            "so name the test alphabets, e.g. dataset.test_alphabets="
                            f"[{names[-1]}] (available: {', '.join(names)})")
    val = list(val_alphabets or [])
    overlap = sorted(set(val) & set(test_alphabets))
    if overlap:
        raise UserError(f"dataset.val_alphabets={val}: {overlap} also in dataset.test_alphabets")
    train = [a for a in names if a not in set(test_alphabets) | set(val)]
    if not train:
        raise UserError(f"dataset.test_alphabets={list(test_alphabets)}, dataset.val_alphabets="
                        f"{val}: no alphabet left for training")
    return {"train": train, "val": val, "test": list(test_alphabets)}


def character_dirs(alphabet_dirs: list[Path]) -> list[Path]:
    """The character folders of each alphabet folder, in the loader's order (sorted)."""
    return [c for a in alphabet_dirs for c in sorted(p for p in a.iterdir() if p.is_dir())]


def read_folders(root: str, image_size: int | list[int], cache_dir: str | None
                 ) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, str]]:
    """Decode ``<root>/omniglot-py``: uint8 images ``[N, 1, H, W]``, labels ``[N]`` (character
    index), the characters as ``<alphabet>/<character>`` and ``{alphabet: folder}``."""
    found = find_alphabets(root)
    char_dirs = character_dirs([d for dirs in found.values() for d in dirs])
    images, labels = read_class_images(char_dirs, image_size_pair(image_size), 1, cache_dir)
    folders = {d.name: folder for folder, dirs in found.items() for d in dirs}
    return images, labels, [f"{c.parent.name}/{c.name}" for c in char_dirs], folders


def read_bundled(image_size: int | list[int], root: str
                 ) -> tuple[torch.Tensor, torch.Tensor, list[str], dict[str, str]]:
    """The bundled array (``BUNDLED``), in ``read_folders``' form; only at 28x28."""
    if image_size_pair(image_size) != (BUNDLED_SIZE, BUNDLED_SIZE):
        raise UserError(f"dataset.image_size={image_size}: the bundled Omniglot is "
                        f"{BUNDLED_SIZE}x{BUNDLED_SIZE}; for other sizes set paths.data_dir to "
                        f"a folder holding omniglot-py/ (none under {root})")
    with np.load(BUNDLED) as data:
        images, labels = torch.from_numpy(data["images"]), torch.from_numpy(data["labels"])
        characters = [str(c) for c in data["characters"]]
    folders = {c.split("/")[0]: FOLDERS[0] for c in characters}
    return images, labels, characters, folders


def character_ids(alphabet_of: np.ndarray, split: dict[str, list[str]], val_fraction: float,
                  split_seed: int) -> dict[str, list[int]]:
    """Class ids of each part of an ``alphabet_split`` (``alphabet_of[i]``: class ``i``'s
    alphabet); with no validation alphabets, ``val_fraction`` of the training characters,
    drawn with ``split_seed``, validate."""
    ids = {part: np.flatnonzero(np.isin(alphabet_of, names)).tolist()
           for part, names in split.items()}
    if not split["val"]:
        rng = np.random.default_rng(split_seed)
        held = set(rng.choice(ids["train"], int(round(len(ids["train"]) * val_fraction)),
                              replace=False).tolist())
        ids["val"] = sorted(held)
        ids["train"] = [c for c in ids["train"] if c not in held]
    return ids


def refuse_class_splits(dataset: str, pool_args: dict[str, Any], **class_lists: Any) -> None:
    """One line for a class list or a non-class split given to an alphabet-split dataset."""
    for key, value in class_lists.items():
        if value is not None:
            raise UserError(f"dataset.{key}={list(value)}: {dataset} splits by alphabet; use "
                            "dataset.test_alphabets / dataset.val_alphabets instead")
    if pool_args.get("split", "classes") != "classes":
        raise UserError(f"dataset.split={pool_args['split']}: {dataset} supports only classes "
                        "(alphabet-disjoint splits)")


def load_omniglot(root: str, image_size: int | list[int] = 28,
                  test_alphabets: list[str] | None = None,
                  val_alphabets: list[str] | None = None, invert: bool = True,
                  cache_dir: str | None = None, val_fraction: float = 0.2, split_seed: int = 0,
                  train_classes: list[int] | None = None, test_classes: list[int] | None = None,
                  val_classes: list[int] | None = None, **pool_args: Any) -> ClassPool:
    """Omniglot as a ``ClassPool`` with alphabet-disjoint train/val/test classes.

    Args:
        root: the folder holding ``omniglot-py/`` (``paths.data_dir``); without one, the
            bundled 28x28 subset is used.
        image_size: ``H = W`` or ``[H, W]`` (28 in Snell et al.).
        test_alphabets, val_alphabets: see the module docstring.
        invert: strokes 1, background 0 (``True``) or the files' black on white.
        cache_dir: where the decoded ``uint8`` tensor is kept (``None``: decode every run).
        val_fraction: with ``val_alphabets=None``, the fraction of training characters that
            validate. split_seed: seed of that draw.
        train_classes, test_classes, val_classes: not used (the alphabets decide); must be unset.
        pool_args: the other ``ClassPool`` options (``rotations``, ...).
    """
    refuse_class_splits("omniglot", pool_args, train_classes=train_classes,
                        test_classes=test_classes, val_classes=val_classes)
    if (Path(root).expanduser() / "omniglot-py").is_dir():
        images, labels, characters, folders = read_folders(root, image_size, cache_dir)
        source = f"{Path(root).expanduser() / 'omniglot-py'}"
    else:
        images, labels, characters, folders = read_bundled(image_size, root)
        source = f"the bundled 28x28 subset (no omniglot-py/ under {root})"
    alphabet_of = np.array([c.split("/")[0] for c in characters])
    split = alphabet_split(folders, test_alphabets, val_alphabets)
    image_format = ImageFormat(pixel_max=255.0, invert=invert)
    x = to_unit_range(images, image_format)
    ids = character_ids(alphabet_of, split, val_fraction, split_seed)
    log.info("omniglot from %s: %d characters, %d images | train %d chars (%s) | val %d | "
             "test %d (%s)", source, len(characters), len(labels), len(ids["train"]),
             ", ".join(split["train"]), len(ids["val"]), len(ids["test"]), ", ".join(split["test"]))
    return ClassPool(x, labels, train_classes=ids["train"], test_classes=ids["test"],
                     val_classes=ids["val"], val_fraction=val_fraction, split_seed=split_seed,
                     name="omniglot", image_format=image_format,
                     class_groups={i: str(a) for i, a in enumerate(alphabet_of)}, **pool_args)
