"""Few-shot evaluation: accuracy over test episodes with a 95% confidence interval, and controls.

Every test report carries two controls computed on the identical episodes: nearest prototype in
input space (``pixel``) and the same model with its initial weights (``untrained``), and the
number of correct queries of each per episode (``per_episode_correct``) with a fingerprint of the
episodes (``episodes_fingerprint``), so that runs tested on identical episodes can be compared
episode by episode.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from scipy import stats

from snnexp.data.episodes import Episode, EpisodeSampler, base_sampler
from snnexp.prototypes import prototype_logits


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t confidence interval.

    ``half = t_{0.975, n-1} * s / sqrt(n)`` with ``s`` the sample standard deviation
    (``ddof=1``), so ``mean ± half`` equals ``scipy.stats.t.interval(0.95, n-1, mean, s/sqrt(n))``.
    One value has no spread to estimate: its half-width is ``nan``; no values give ``(nan, nan)``.
    """
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return float("nan"), float("nan")
    if array.size == 1:
        return float(array[0]), float("nan")
    sem = array.std(ddof=1) / math.sqrt(array.size)
    return float(array.mean()), float(stats.t.ppf(0.975, array.size - 1) * sem)


def per_episode_correct(accs: dict[str, list[float]], queries: int) -> dict[str, list[int]]:
    """Accuracies per episode (``k / queries``) -> the exact counts ``k`` of correct queries."""
    return {name: [round(a * queries) for a in values] for name, values in accs.items()}


def episodes_fingerprint(sampler: Any) -> str | None:
    """Short hash of the episodes ``sampler`` will draw from now on: its split (images, labels),
    episode shape and generator state. Equal fingerprints mean identical clean episodes; a
    ``TransformedSampler`` is fingerprinted by the sampler it wraps (the noise is the
    treatment). ``None`` for a sampler of another kind."""
    base = base_sampler(sampler)
    if not isinstance(base, EpisodeSampler):
        return None
    digest = hashlib.sha1(json.dumps([base.way, base.shot, base.query,
                                      base.rng.bit_generator.state], sort_keys=True).encode())
    digest.update(base.labels.cpu().contiguous().numpy().tobytes())
    digest.update(base.images.cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def accuracy(logits: Any, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits [Q, way]`` whose argmax equals ``labels [Q]``."""
    predicted = torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits)
    return (predicted.argmax(1).cpu() == labels.cpu()).float().mean().item()


def pixel_prototype_logits(support_x: torch.Tensor, support_y: torch.Tensor,
                           query_x: torch.Tensor) -> torch.Tensor:
    """Nearest-prototype control in input space: ``-||x_q - mean_k x||^2`` over flat pixels.

    Event frames ``[B, T, P, H, W]`` are summed over time first (the pixels of all events)."""
    way = int(support_y.max()) + 1
    if support_x.dim() == 5:
        support_x, query_x = support_x.float().sum(1), query_x.float().sum(1)
    return prototype_logits(support_x.flatten(1), support_y, query_x.flatten(1), way, "squared")


Predictor = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Any]
EpisodesPredictor = Callable[[list[Episode]], list[Any]]


def per_episode(predict: Predictor) -> EpisodesPredictor:
    """Wrap a one-episode ``predict(support_x, support_y, query_x)`` as a list predictor."""
    return lambda episodes: [predict(ep.support_x, ep.support_y, ep.query_x) for ep in episodes]


def evaluate(predictors: dict[str, EpisodesPredictor], episodes: Iterable[Episode],
             device: torch.device | str = "cpu",
             on_episode: Callable[[int], None] | None = None,
             group: int = 10) -> dict[str, list[float]]:
    """Accuracy of each predictor on every episode (the same episodes for all).

    Episodes are fed ``group`` at a time to each ``predictor(episodes) -> [logits]`` (e.g.
    ``Learner.predict_episodes``, or ``per_episode(pixel_prototype_logits)``), so a learner may
    process a group at once; ``on_episode(i)`` is called once per episode after its group.
    """
    accs: dict[str, list[float]] = {name: [] for name in predictors}
    episodes, done = iter(episodes), 0
    while batch := [episode.to(device) for episode in itertools.islice(episodes, group)]:
        for name, predict in predictors.items():
            accs[name] += [accuracy(logits, ep.query_y)
                           for logits, ep in zip(predict(batch), batch, strict=True)]
        for i in range(done, done + len(batch)):
            if on_episode is not None:
                on_episode(i)
        done += len(batch)
    return accs
