"""Inputs and parameters for the R-STDP tests: seeded encoders, a two-class image task,
episode records and the network's parameters as ``conf/model/rstdp.yaml`` sets them."""

from __future__ import annotations

from typing import Any

import numpy as np

from snnexp.models.rstdp import RSTDPLearner
from snnexp.models.rstdp.config import RSTDPParams, default_config, make_params

YAML_PARAMS: RSTDPParams = make_params(**default_config())  # the YAML's defaults, as tuples


def rate_encoder(seed: int = 0):
    """Seeded NumPy Bernoulli rate encoder ``images [B,C,H,W] -> spikes [T,B,C,H,W]``."""
    rng = np.random.default_rng(seed)
    return lambda x, steps: (rng.random((steps, *np.shape(x))) < np.asarray(x)).astype(np.float32)


def threshold_encoder(x: Any, steps: int) -> np.ndarray:
    """Deterministic code: a pixel above 0.5 spikes at every step."""
    return np.repeat((np.asarray(x) > 0.5)[None], steps, 0).astype(float)


def side_blobs(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 two-class task: a bright 3x3 blob in the left (class 0) or right (class 1) half."""
    rng = np.random.default_rng(seed)
    images = rng.random((2 * n_per_class, 1, 8, 8)).astype(np.float32) * 0.1
    labels = np.repeat(np.arange(2), n_per_class)
    for i, label in enumerate(labels):
        row, col = rng.integers(0, 6), rng.integers(0, 2) + 4 * label
        images[i, 0, row:row + 3, col:col + 3] = 0.9
    return images, labels


class BlobEpisode:
    """Episode-like record of NumPy arrays (what ``predict_episodes`` reads)."""

    def __init__(self, seed: int, shot: int = 3, query: int = 4) -> None:
        images, labels = side_blobs(shot + query, seed)
        order = np.r_[0:shot, shot + query:2 * shot + query]
        rest = np.setdiff1d(np.arange(len(labels)), order)
        self.support_x, self.support_y = images[order], labels[order]
        self.query_x, self.query_y = images[rest], labels[rest]


def make_learner(encoder: Any, input_shape: tuple[int, int, int] = (1, 8, 8), seed: int = 0,
                 num_steps: int | None = None, **sections: dict[str, Any]) -> RSTDPLearner:
    """An ``RSTDPLearner`` with the YAML's defaults and the given changes: ``num_steps`` and
    per section, e.g. ``readout={"epochs": 3}, hidden={"filters": 6}``."""
    config = default_config()
    if num_steps is not None:
        config["num_steps"] = num_steps
    for name, changes in sections.items():
        config[name].update(changes)
    return RSTDPLearner(encoder, input_shape, seed=seed, **config)
