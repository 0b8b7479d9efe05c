"""Input corruptions: robustness curves (``python -m snnexp.eval noise=gaussian noise.std=0.3``)
and noise-aware training (``python -m snnexp.train train_noise=gaussian train_noise.vary=true``).

Each corruption maps images ``[N, C, H, W]`` in the data range ``[low, high]`` (``[0, 1]`` for
every ``ClassPool``) to corrupted images clipped to the same range, drawing from its own seeded
``torch.Generator``; with ``vary=True`` each image's level is drawn uniformly from ``[0, level]``
(training over a range of noise levels). ``snnexp.data.episodes.TransformedSampler`` corrupts
the support and the query images of every episode a sampler draws, so all predictors of a test
(model and controls) see the same noisy episodes.
"""

from __future__ import annotations

from typing import Any

import torch

from snnexp.errors import UserError


class GaussianNoise:
    """Additive white noise: ``x' = clip(x + std * n, low, high)``, ``n ~ N(0, 1)`` per pixel."""

    def __init__(self, std: float, seed: int = 0, low: float = 0.0, high: float = 1.0,
                 vary: bool = False) -> None:
        if not std >= 0:
            raise UserError(f"noise.std={std}: must be a number >= 0")
        self.std, self.low, self.high, self.vary = float(std), float(low), float(high), vary
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(images.shape, generator=self.generator, dtype=torch.float32)
        std = _levels(self, images, self.std)
        return (images + std * noise.to(images.device, images.dtype)).clamp(self.low, self.high)

    def describe(self) -> dict[str, Any]:
        return {"type": "gaussian", "std": self.std, **({"vary": True} if self.vary else {})}


class SaltPepperNoise:
    """Impulse noise: each pixel becomes ``low`` (pepper) or ``high`` (salt) with probability
    ``amount / 2`` each, and keeps its value otherwise."""

    def __init__(self, amount: float, seed: int = 0, low: float = 0.0,
                 high: float = 1.0, vary: bool = False) -> None:
        if not 0 <= amount <= 1:
            raise UserError(f"noise.amount={amount}: must be a number in [0, 1]")
        self.amount, self.low, self.high, self.vary = float(amount), float(low), float(high), vary
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        u = torch.rand(images.shape, generator=self.generator).to(images.device)
        amount = _levels(self, images, self.amount)
        out = images.clone()
        out[u < amount / 2] = self.low
        out[(u >= amount / 2) & (u < amount)] = self.high
        return out.clamp(self.low, self.high)

    def describe(self) -> dict[str, Any]:
        return {"type": "salt_pepper", "amount": self.amount,
                **({"vary": True} if self.vary else {})}


def _levels(noise: GaussianNoise | SaltPepperNoise, images: torch.Tensor,
            level: float) -> torch.Tensor | float:
    """``level``, or with ``noise.vary`` one level per image ``~ U(0, level)``, shaped
    ``[N, 1, ..., 1]`` to broadcast over the image."""
    if not noise.vary:
        return level
    draw = torch.rand(images.shape[0], generator=noise.generator) * level
    return draw.view(-1, *[1] * (images.dim() - 1)).to(images.device, images.dtype)
