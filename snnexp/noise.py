"""Input corruptions for robustness curves (``python -m snnexp.eval noise=gaussian noise.std=0.3``).

Each corruption maps images ``[N, C, H, W]`` in the data range ``[low, high]`` (``[0, 1]`` for
every ``ClassPool``) to corrupted images clipped to the same range, drawing from its own seeded
``torch.Generator``. ``NoisySampler`` corrupts the support and the query images of every episode
a sampler draws, so all predictors of a test (model and controls) see the same noisy episodes.
"""

from __future__ import annotations

from typing import Any

import torch

from snnexp.data.episodes import Episode
from snnexp.errors import UserError


class GaussianNoise:
    """Additive white noise: ``x' = clip(x + std * n, low, high)``, ``n ~ N(0, 1)`` per pixel."""

    def __init__(self, std: float, seed: int = 0, low: float = 0.0, high: float = 1.0) -> None:
        if not std >= 0:
            raise UserError(f"noise.std={std}: must be a number >= 0")
        self.std, self.low, self.high = float(std), float(low), float(high)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=self.generator, dtype=torch.float32)
        return (images + self.std * noise.to(images.device, images.dtype)).clamp(self.low,
                                                                                  self.high)

    def describe(self) -> dict[str, Any]:
        return {"type": "gaussian", "std": self.std}


class SaltPepperNoise:
    """Impulse noise: each pixel becomes ``low`` (pepper) or ``high`` (salt) with probability
    ``amount / 2`` each, and keeps its value otherwise."""

    def __init__(self, amount: float, seed: int = 0, low: float = 0.0,
                 high: float = 1.0) -> None:
        if not 0 <= amount <= 1:
            raise UserError(f"noise.amount={amount}: must be a number in [0, 1]")
        self.amount, self.low, self.high = float(amount), float(low), float(high)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        u = torch.rand(images.shape, generator=self.generator).to(images.device)
        out = images.clone()
        out[u < self.amount / 2] = self.low
        out[(u >= self.amount / 2) & (u < self.amount)] = self.high
        return out.clamp(self.low, self.high)

    def describe(self) -> dict[str, Any]:
        return {"type": "salt_pepper", "amount": self.amount}


class NoisySampler:
    """Wraps an ``EpisodeSampler``: the same episodes, with support and query images corrupted."""

    def __init__(self, sampler: Any, noise: Any) -> None:
        self.sampler, self.noise = sampler, noise

    def sample(self) -> Episode:
        ep = self.sampler.sample()
        return Episode(self.noise(ep.support_x), ep.support_y, self.noise(ep.query_x),
                       ep.query_y, ep.classes)
