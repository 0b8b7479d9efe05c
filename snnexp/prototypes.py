"""Nearest-prototype classification (Snell et al. 2017), shared by the spiking ProtoNet and the
pixel-space control of every test report.

Class prototypes are the mean support embeddings ``c_k = mean_{i: y_i = k} f(x_i)`` (a
scatter-add); logits are negative distances from ``torch.cdist``: squared Euclidean
``logit[q, k] = -||f(x_q) - c_k||^2`` (``distance="squared"``) or Euclidean
``-||f(x_q) - c_k||`` (``distance="euclidean"``).
"""

from __future__ import annotations

import torch


def prototypes(embeddings: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Mean embedding per class: ``[N, D]``, labels ``[N]`` in ``0..way-1`` -> ``[way, D]``."""
    sums = embeddings.new_zeros(way, embeddings.shape[1]).index_add_(0, labels, embeddings)
    counts = torch.bincount(labels, minlength=way).clamp_min(1).unsqueeze(1)
    return sums / counts.to(embeddings.dtype)


def prototype_logits(support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor,
                     way: int, distance: str) -> torch.Tensor:
    """``-||query - c_k||^2`` (``squared``) or ``-||query - c_k||`` (``euclidean``).

    Support ``[S, D]`` with labels ``[S]``, query ``[Q, D]`` -> logits ``[Q, way]``.
    """
    distances = torch.cdist(query, prototypes(support, support_y, way))
    return -distances.pow(2) if distance == "squared" else -distances
