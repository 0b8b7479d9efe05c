"""N-way K-shot episodes and the sampler that draws them from a class pool.

An episode holds ``way`` classes drawn from a split, ``shot`` support and ``query`` query images
per class. Labels are remapped to ``0..way-1`` in the order the classes were drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from snnexp.errors import UserError


@dataclass(frozen=True)
class Episode:
    """One few-shot task.

    Attributes:
        support_x: ``[way*shot, C, H, W]`` float32 images in ``[0, 1]``, grouped by class.
        support_y: ``[way*shot]`` int64 labels in ``0..way-1``.
        query_x: ``[way*query, C, H, W]`` float32 images.
        query_y: ``[way*query]`` int64 labels in ``0..way-1``.
        classes: ``[way]`` int64 original class ids; ``classes[k]`` has episode label ``k``.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    classes: torch.Tensor

    @property
    def way(self) -> int:
        return int(self.classes.numel())

    def to(self, device: torch.device | str) -> Episode:
        """Return the episode with every tensor moved to ``device``."""
        return Episode(*(t.to(device) for t in (self.support_x, self.support_y, self.query_x,
                                                 self.query_y, self.classes)))


class EpisodeSampler:
    """Draws N-way K-shot episodes from one split of a class pool.

    Args:
        images: ``[N, C, H, W]`` float32 images of the split.
        labels: ``[N]`` int64 class ids of the split.
        way, shot, query: episode shape; every class needs ``shot + query`` images.
        seed: seed of the sampler's own ``numpy.random.Generator``.
        name: split name used in error messages (``"train"``, ``"val"``, ``"test"``).

    Raises:
        UserError: at construction, when the split has fewer than ``way`` classes, or fewer than
            ``shot + query`` images in a class (the message names the numbers).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, way: int, shot: int,
                 query: int, seed: int, name: str = "train") -> None:
        # the config keys of this phase's shape: train_way, ... for meta-training, else way, ...
        keys = {k: f"train_{k}" if name == "train" else k for k in ("way", "shot", "query")}
        for key, value in ((keys["way"], way), (keys["shot"], shot), (keys["query"], query)):
            if int(value) < 1:
                raise UserError(f"{key}={value}: must be an integer >= 1")
        self.images, self.labels = images, labels
        self.way, self.shot, self.query, self.name = int(way), int(shot), int(query), name
        label_array = labels.cpu().numpy()
        self.class_ids = np.unique(label_array)
        self.indices_by_class = [np.flatnonzero(label_array == c) for c in self.class_ids]
        if self.way > len(self.class_ids):
            raise UserError(f"{keys['way']}={self.way} but the {name} split has "
                            f"{len(self.class_ids)} "
                            f"classes (allowed: 1..{len(self.class_ids)})")
        smallest = min(len(idx) for idx in self.indices_by_class)
        if self.shot + self.query > smallest:
            raise UserError(f"{keys['shot']}+{keys['query']}={self.shot}+{self.query}="
                            f"{self.shot + self.query} but "
                            f"the smallest class of the {name} split has {smallest} images")
        self.rng = np.random.default_rng(seed)

    def sample(self) -> Episode:
        """Draw one episode: ``way`` distinct classes, ``shot + query`` distinct images each."""
        chosen = self.rng.choice(len(self.class_ids), size=self.way, replace=False)
        support, query = [], []
        for k in chosen:
            picks = self.rng.choice(self.indices_by_class[k], size=self.shot + self.query,
                                    replace=False)
            support.append(picks[: self.shot])
            query.append(picks[self.shot:])
        support_idx = torch.from_numpy(np.concatenate(support))
        query_idx = torch.from_numpy(np.concatenate(query))
        episode_labels = torch.arange(self.way)
        return Episode(
            support_x=self.images[support_idx],
            support_y=episode_labels.repeat_interleave(self.shot),
            query_x=self.images[query_idx],
            query_y=episode_labels.repeat_interleave(self.query),
            classes=torch.as_tensor(self.class_ids[chosen], dtype=torch.int64),
        )

    def state_dict(self) -> dict:
        """The generator state, so a resumed run draws the same episodes."""
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["bit_generator"]


class TransformedSampler:
    """Wraps an episode sampler: the same episodes, with the support and the query images
    transformed by ``transform`` (a corruption of ``snnexp.noise`` or an augmentation of
    ``snnexp.augment``: a callable on ``[N, C, H, W]`` images drawing from its own seeded
    ``transform.generator``), set by the config key ``key`` (``noise``, ``train_noise``,
    ``train_augment``). Wrappers nest: ``train_noise`` over ``train_augment``."""

    def __init__(self, sampler: EpisodeSampler | TransformedSampler, transform: Any,
                 key: str) -> None:
        self.sampler, self.transform, self.key = sampler, transform, key

    def sample(self) -> Episode:
        ep = self.sampler.sample()
        return Episode(self.transform(ep.support_x), ep.support_y, self.transform(ep.query_x),
                       ep.query_y, ep.classes)

    def transforms(self) -> dict[str, dict[str, Any]]:
        """``{config key: transform.describe()}`` of this wrapper and those it wraps."""
        inner = self.sampler.transforms() if isinstance(self.sampler, TransformedSampler) else {}
        return {**inner, self.key: self.transform.describe()}

    def state_dict(self) -> dict[str, Any]:
        """The episode stream's and the transforms' positions (a resumed run continues all)."""
        return {**self.sampler.state_dict(),
                f"{self.key}_rng": self.transform.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        rng = state.pop(f"{self.key}_rng", None)
        self.sampler.load_state_dict(state)
        if rng is not None:
            self.transform.generator.set_state(rng)


def base_sampler(sampler: Any) -> Any:
    """The sampler under any ``TransformedSampler`` wrappers."""
    while isinstance(sampler, TransformedSampler):
        sampler = sampler.sampler
    return sampler
