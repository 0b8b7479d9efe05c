"""Few-shot evaluation: accuracy over test episodes with a 95% confidence interval, and controls.

Every test report carries two controls computed on the identical episodes: nearest prototype in
input space (``pixel``) and the same model with its initial weights (``untrained``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from snnexp.data.episodes import Episode


def mean_ci95(values: Iterable[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% confidence interval, ``1.96 * std / sqrt(n)``."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(1.96 * array.std() / math.sqrt(array.size))


def accuracy(logits: Any, labels: torch.Tensor) -> float:
    """Fraction of rows of ``logits [Q, way]`` whose argmax equals ``labels [Q]``."""
    predicted = torch.as_tensor(np.asarray(logits) if not torch.is_tensor(logits) else logits)
    return (predicted.argmax(1).cpu() == labels.cpu()).float().mean().item()


def pixel_prototype_logits(support_x: torch.Tensor, support_y: torch.Tensor,
                           query_x: torch.Tensor) -> torch.Tensor:
    """Nearest-prototype control in input space: ``-||x_q - mean_k x||^2`` over flat pixels."""
    from snnexp.models.protonet import prototype_logits

    way = int(support_y.max()) + 1
    return prototype_logits(support_x.flatten(1), support_y, query_x.flatten(1), way)


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
