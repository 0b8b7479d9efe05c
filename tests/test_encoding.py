"""Input encoders: images ``[B, C, H, W]`` in ``[0, 1]`` -> time-first ``[T, B, C, H, W]``."""

from __future__ import annotations

import pytest
import torch
from helpers.configs import CONF_DIR
from hydra.utils import instantiate
from omegaconf import OmegaConf

from snnexp.encoding import DirectEncoder, LatencyEncoder, RateEncoder
from snnexp.errors import UserError


def from_yaml(name: str):
    """The encoder ``conf/encoder/<name>.yaml`` builds, with its defaults."""
    return instantiate(OmegaConf.load(CONF_DIR / "encoder" / f"{name}.yaml"))

SHAPE = (3, 1, 5, 4)  # B, C, H, W (non-square to catch transposes)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(*SHAPE, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("encoder", [DirectEncoder(), from_yaml("rate"), from_yaml("latency")],
                         ids=["direct", "rate", "latency"])
@pytest.mark.parametrize("steps", [1, 7])
def test_encoders_are_time_first(encoder, images, steps):
    out = encoder(images, steps)
    assert out.shape == (steps, *SHAPE)
    assert out.dtype == torch.float32


def test_direct_repeats_the_analog_image_at_every_step(images):
    encoder = DirectEncoder()
    out = encoder(images, 4)
    assert encoder.static and not encoder.spiking
    for t in range(4):
        assert torch.equal(out[t], images)


def test_rate_spikes_are_binary_with_the_pixel_as_probability():
    torch.manual_seed(0)
    images = torch.tensor([0.0, 0.25, 0.75, 1.0]).view(4, 1, 1, 1).expand(4, 1, 8, 8)
    out = from_yaml("rate")(images, 400)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    rates = out.mean(dim=(0, 2, 3, 4))
    assert rates[0] == 0 and rates[3] == 1
    assert torch.allclose(rates, torch.tensor([0.0, 0.25, 0.75, 1.0]), atol=0.02)
    assert not RateEncoder.static and RateEncoder.spiking


def test_rate_gain_scales_the_probability_and_must_be_positive():
    torch.manual_seed(0)
    images = torch.full((1, 1, 16, 16), 0.2)
    assert RateEncoder(gain=2.0)(images, 300).mean().item() == pytest.approx(0.4, abs=0.02)
    with pytest.raises(UserError, match=r"^encoder\.gain=0"):
        RateEncoder(gain=0)


def test_latency_fires_once_per_bright_pixel_brighter_first():
    images = torch.tensor([0.0, 0.3, 0.6, 1.0]).view(1, 1, 1, 4)
    out = LatencyEncoder(tau=5.0, threshold=0.01, linear=True, normalize=True,
                         clip=True)(images, 10)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    counts = out.sum(0).flatten().tolist()
    assert counts == [0.0, 1.0, 1.0, 1.0]  # below threshold: silent; others spike once
    first = out[:, 0, 0, 0].argmax(0).tolist()  # spike time per pixel
    assert first[3] < first[2] < first[1]


def test_encoders_clamp_inputs_outside_the_unit_range():
    images = torch.tensor([-0.5, 1.5]).view(1, 1, 1, 2)
    for encoder in (from_yaml("rate"), from_yaml("latency")):
        out = encoder(images, 6)
        assert out.min() >= 0 and out.max() <= 1
