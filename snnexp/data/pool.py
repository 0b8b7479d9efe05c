"""A labelled image pool and its few-shot splits.

Few-shot splits are class-disjoint by default: meta-training classes, validation on held-out
images of the training classes (or on ``val_classes``), meta-test on ``test_classes``.
``split="images"`` is the notebook's protocol: every class in both phases, disjoint images.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from snnexp.data.preprocess import ImageFormat
from snnexp.errors import UserError


class Split(NamedTuple):
    images: torch.Tensor  # [N, C, H, W] float32 in [0, 1]
    labels: torch.Tensor  # [N] int64 class ids


class ClassPool:
    """Images with class labels, split for few-shot learning.

    Args:
        images: ``[N, C, H, W]`` float32 in ``[0, 1]``. labels: ``[N]`` int64 class ids.
        train_classes, test_classes: class ids of meta-training and meta-test
            (``split="classes"``); ``None`` = all classes not in the other list.
        val_classes: class ids of validation; ``None`` = ``val_fraction`` of the images of
            each training class, held out from training.
        split: ``"classes"`` (class-disjoint) or ``"images"`` (every class in every phase;
            ``test_fraction`` of each class's images go to the test split).
        rotations: add 90/180/270-degree rotations of the training classes as new classes
            (training split only; Snell et al. 2017).
        flips: add the left-right mirror images of the training classes (and, with
            ``rotations``, of their rotations: the 8 symmetries of the square) as new classes.
        split_seed: seed of the image shuffles, independent of the run's seed; every
            ``splits()`` call shuffles alike, so it returns the same splits each time.
        image_format: how the loader scaled the raw pixels (``snnexp.data.preprocess``);
            ``snnexp.api`` applies the same to a user's images. Default: 8-bit, not inverted.
        class_groups: the group each class id belongs to (Omniglot: its alphabet), for
            reports and tests; ``None`` when the dataset has no such grouping. Classes added
            by ``rotations``/``flips`` belong to the group of ``id % (max(classes) + 1)``.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *,
                 train_classes: list[int] | None = None, test_classes: list[int] | None = None,
                 val_classes: list[int] | None = None, val_fraction: float = 0.2,
                 split: str = "classes", test_fraction: float = 0.5, rotations: bool = False,
                 flips: bool = False, split_seed: int = 0, name: str = "dataset",
                 image_format: ImageFormat | None = None,
                 class_groups: dict[int, str] | None = None) -> None:
        self.images, self.labels, self.name = images, labels, name
        self.image_format = image_format or ImageFormat()
        self.classes = sorted(int(c) for c in torch.unique(labels))
        self.split_mode, self.rotations, self.flips = split, rotations, flips
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split_seed = split_seed
        self.class_groups = dict(class_groups) if class_groups is not None else None
        known = set(self.classes)
        for key, ids in (("train_classes", train_classes), ("test_classes", test_classes),
                         ("val_classes", val_classes)):
            unknown = sorted(set(ids or []) - known)
            if unknown:
                raise UserError(f"dataset.{key}={list(ids)}: classes {unknown} are not in "
                                f"{name} (its classes: {_span(self.classes)})")
        if split == "classes":
            _refuse_overlap({"train_classes": train_classes, "val_classes": val_classes,
                             "test_classes": test_classes})
        listed_test = set(test_classes or []) | set(val_classes or [])
        self.train_classes = list(train_classes) if train_classes is not None else \
            [c for c in self.classes if c not in listed_test]
        self.test_classes = list(test_classes) if test_classes is not None else \
            [c for c in self.classes if c not in set(self.train_classes) | set(val_classes or [])]
        self.val_classes = list(val_classes) if val_classes is not None else None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def _subset(self, classes: list[int]) -> np.ndarray:
        return np.flatnonzero(np.isin(self.labels.numpy(), classes))

    def _split_images(self, index: np.ndarray, fraction: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Per class, move ``fraction`` of the images of ``index`` (shuffled by ``rng``) to a
        second set."""
        keep, held = [], []
        labels = self.labels.numpy()
        for c in np.unique(labels[index]):
            members = rng.permutation(index[labels[index] == c])
            n_held = int(round(len(members) * fraction))
            held.append(members[:n_held])
            keep.append(members[n_held:])
        return np.concatenate(keep), np.concatenate(held)

    def splits(self) -> dict[str, Split]:
        """The ``train``, ``val`` and ``test`` splits; the same ones at every call (the image
        shuffles draw from a generator seeded with ``split_seed`` here)."""
        rng = np.random.default_rng(self.split_seed)
        if self.split_mode == "images":
            train_idx, test_idx = self._split_images(np.arange(len(self.labels)),
                                                     self.test_fraction, rng)
        else:
            train_idx, test_idx = self._subset(self.train_classes), self._subset(self.test_classes)
        if self.val_classes is not None and self.split_mode == "classes":
            val_idx = self._subset(self.val_classes)
        else:
            train_idx, val_idx = self._split_images(train_idx, self.val_fraction, rng)
        train = self._take(train_idx)
        return {"train": self._symmetries(train),
                "val": self._take(val_idx), "test": self._take(test_idx)}

    def _take(self, index: np.ndarray) -> Split:
        index_t = torch.from_numpy(np.sort(index))
        return Split(self.images[index_t], self.labels[index_t])

    def _symmetries(self, split: Split) -> Split:
        """Add the rotated (k*90 degrees) and mirrored images as classes ``id + j * offset``.

        ``j`` numbers the symmetries in the order: rotations k = 0..3 of the images, then the
        same rotations of their mirror images.
        """
        if not (self.flips or self.rotations):
            return split  # no copy of the training images
        images = [split.images]
        if self.flips:
            images.append(torch.flip(split.images, dims=(3,)))
        if self.rotations:
            images = [torch.rot90(x, k, dims=(2, 3)) for x in images for k in range(4)]
        offset = max(self.classes) + 1
        labels = [split.labels + j * offset for j in range(len(images))]
        return Split(torch.cat(images), torch.cat(labels))


def _refuse_overlap(lists: dict[str, list[int] | None]) -> None:
    """``UserError`` naming both keys and the shared classes when two given class lists of a
    class-disjoint split share a class (the test would score classes seen in training or
    chosen on)."""
    given = [(key, ids) for key, ids in lists.items() if ids is not None]
    for i, (key_a, ids_a) in enumerate(given):
        for key_b, ids_b in given[i + 1:]:
            shared = sorted(set(ids_a) & set(ids_b))
            if shared:
                raise UserError(f"dataset.{key_a}={list(ids_a)}, dataset.{key_b}={list(ids_b)}: "
                                f"classes {shared} are in both; with dataset.split=classes the "
                                "lists must not share a class (dataset.split=images shares "
                                "classes on purpose)")


def _span(classes: list[int]) -> str:
    if classes == list(range(classes[0], classes[-1] + 1)) and len(classes) > 3:
        return f"{classes[0]}..{classes[-1]}"
    return str(classes)
