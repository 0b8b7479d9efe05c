"""Input noise (``snnexp.noise``): seeded, clipped, checked."""

from __future__ import annotations

import pytest
import torch

from snnexp.errors import UserError


def test_gaussian_noise_is_seeded_clipped_and_zero_at_std_0() -> None:
    from snnexp.noise import GaussianNoise, SaltPepperNoise

    images = torch.rand(4, 1, 8, 8)
    first, second = GaussianNoise(0.5, seed=3)(images), GaussianNoise(0.5, seed=3)(images)
    assert torch.equal(first, second) and not torch.equal(first, images)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(GaussianNoise(0.0, seed=3)(images), images)
    salted = SaltPepperNoise(0.5, seed=0)(torch.full((1, 1, 100, 100), 0.5))
    changed = (salted != 0.5).float().mean().item()
    assert 0.45 < changed < 0.55 and set(salted.unique().tolist()) == {0.0, 0.5, 1.0}
    with pytest.raises(UserError, match="noise.std=-1"):
        GaussianNoise(-1)
    with pytest.raises(UserError, match="noise.amount=2"):
        SaltPepperNoise(2)
