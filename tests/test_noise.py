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


@pytest.mark.parametrize("kind", ["gaussian", "salt_pepper"])
def test_vary_draws_one_level_per_image_up_to_the_given_level(kind) -> None:
    from snnexp.noise import GaussianNoise, SaltPepperNoise

    images = torch.full((200, 1, 30, 30), 0.5)
    noise = GaussianNoise(0.2, seed=1, vary=True) if kind == "gaussian" else \
        SaltPepperNoise(0.4, seed=1, vary=True)
    changed = noise(images) - images
    per_image = changed.std(dim=(1, 2, 3)) if kind == "gaussian" else \
        (changed != 0).float().mean(dim=(1, 2, 3))
    top = 0.2 if kind == "gaussian" else 0.4
    # levels spread uniformly over [0, top]: some images nearly clean, some near the top
    assert per_image.min() < 0.1 * top and per_image.max() > 0.8 * top
    assert per_image.max() < 1.1 * top
    assert noise.describe()["vary"] is True


def test_transformed_sampler_state_continues_episodes_and_noise() -> None:
    from snnexp.data.episodes import EpisodeSampler, TransformedSampler
    from snnexp.noise import GaussianNoise

    images, labels = torch.rand(60, 1, 6, 6), torch.arange(6).repeat(10)
    make = lambda: TransformedSampler(EpisodeSampler(images, labels, 3, 1, 2, seed=5),
                                      GaussianNoise(0.3, seed=7, vary=True), "train_noise")
    sampler = make()
    sampler.sample()
    state = sampler.state_dict()
    expected = sampler.sample()
    resumed = make()
    resumed.load_state_dict(state)
    again = resumed.sample()
    assert torch.equal(again.support_x, expected.support_x)
    assert torch.equal(again.query_y, expected.query_y)


def test_train_noise_corrupts_training_episodes_only(tmp_path) -> None:
    from helpers.runs import train_tiny

    clean = train_tiny(tmp_path / "clean")
    noisy = train_tiny(tmp_path / "noisy", "train_noise=gaussian", "train_noise.std=0.5")
    assert clean["train_noise"] is None
    assert noisy["train_noise"] == {"type": "gaussian", "std": 0.5}
    assert noisy["test"]["per_episode"]["episodes_sha1"] == \
        clean["test"]["per_episode"]["episodes_sha1"]  # the same test episodes
    assert noisy["test"]["acc_pixel"] == clean["test"]["acc_pixel"]  # clean test images
    assert noisy["train"]["loss"] != clean["train"]["loss"]  # trained on other (noisy) images


@pytest.mark.parametrize("key", ["noise", "train_noise"])
def test_noise_on_event_data_is_refused_in_one_line(key) -> None:
    from types import SimpleNamespace

    from omegaconf import OmegaConf

    from snnexp.builders import build_transformed

    events = SimpleNamespace(name="omniglot_strokes", sensor_size=(28, 28, 1))
    node = OmegaConf.create({"_target_": "snnexp.noise.GaussianNoise", "std": 0.2})
    with pytest.raises(UserError, match=rf"^{key}: defined for images; "
                                        rf"dataset=omniglot_strokes .*: {key}=null\)$"):
        build_transformed(None, node, events, key, 0)
