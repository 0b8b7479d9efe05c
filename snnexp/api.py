"""Use a trained learner from Python (a notebook, a script).

    from snnexp import load_learner
    learner = load_learner("outputs/2026-01-01/12-00-00")      # a run dir or a .pt checkpoint
    logits = learner.predict(support_images, support_labels, query_images)   # [n_query, way]

``predict`` takes PIL images or arrays in the dataset's own form and applies the training
preprocessing (``snnexp.data.preprocess.prepare_images``, the function the loaders use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from snnexp import builders
from snnexp.checkpoint import (
    checkpoint_config,
    load_checkpoint,
    resolve_checkpoint,
    restore_learner,
)
from snnexp.data.preprocess import ImageFormat, prepare_images
from snnexp.errors import UserError


def data_format(state: dict[str, Any], cfg: DictConfig) -> tuple[tuple[int, ...], ImageFormat]:
    """``(C, H, W)`` and the ``ImageFormat`` of the training data.

    Read from the checkpoint's ``data`` entry when the run stored it; else the dataset is
    loaded again from the stored config (needs its files).
    """
    data = state.get("data")
    if isinstance(data, dict) and "image_shape" in data and "image_format" in data:
        return tuple(int(s) for s in data["image_shape"]), ImageFormat(**data["image_format"])
    pool = builders.build_pool(cfg.dataset)
    return tuple(pool.image_shape), pool.image_format


class PretrainedLearner:
    """A trained learner together with the preprocessing of its training data.

    Attributes:
        learner: the ``snnexp.models`` learner. config: its training config.
        image_shape: ``(C, H, W)`` it was trained on. image_format: its pixel scaling.
    """

    def __init__(self, learner: Any, config: DictConfig, image_shape: tuple[int, ...],
                 image_format: ImageFormat, device: torch.device) -> None:
        self.learner, self.config = learner, config
        self.image_shape, self.image_format, self.device = image_shape, image_format, device

    def preprocess(self, images: Any) -> torch.Tensor:
        """Images in any accepted form -> float32 ``[N, C, H, W]`` in ``[0, 1]``."""
        return prepare_images(images, self.image_shape, self.image_format)

    def predict(self, support_images: Any, support_labels: Any,
                query_images: Any) -> torch.Tensor:
        """Logits ``[n_query, way]`` of the queries against the support set.

        ``support_labels`` may be any labels (ints, strings); column ``k`` of the logits is the
        ``k``-th of the sorted distinct labels (``self.classes(support_labels)``).
        """
        support_x, query_x = self.preprocess(support_images), self.preprocess(query_images)
        classes, support_y = np.unique(np.asarray(support_labels), return_inverse=True)
        if len(support_y) != len(support_x):
            raise UserError(f"support_labels: {len(support_y)} labels for "
                            f"{len(support_x)} support images")
        with torch.no_grad():
            logits = self.learner.predict(support_x.to(self.device),
                                          torch.as_tensor(support_y.reshape(-1)).to(self.device),
                                          query_x.to(self.device))
        return torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits,
                               dtype=torch.float32).detach().cpu()

    @staticmethod
    def classes(support_labels: Any) -> list[Any]:
        """The label of each logit column."""
        return np.unique(np.asarray(support_labels)).tolist()


def load_learner(path: str | Path, device: str = "cpu") -> PretrainedLearner:
    """Load a trained learner from a run directory or a checkpoint file."""
    ckpt = resolve_checkpoint(path, "tested")
    state = load_checkpoint(ckpt)
    cfg = checkpoint_config(state, ckpt)
    torch_device = builders.resolve_device(device)
    image_shape, image_format = data_format(state, cfg)
    learner = restore_learner(cfg, state, image_shape, torch_device, f"load_learner({ckpt})")
    return PretrainedLearner(learner, cfg, image_shape, image_format, torch_device)
