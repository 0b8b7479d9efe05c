"""Training-image augmentation (``snnexp.augment``): the shift equation, seeding, wiring."""

from __future__ import annotations

import pytest
import torch

from snnexp.augment import RandomShift
from snnexp.errors import UserError


def test_random_shift_moves_each_image_by_its_drawn_offset_with_border_repeated() -> None:
    images = torch.rand(16, 2, 7, 9)
    shift = RandomShift(2, seed=4)
    out = shift(images)
    dy, dx = torch.randint(-2, 3, (2, 16, 1), generator=torch.Generator().manual_seed(4))
    assert out.shape == images.shape and out.dtype == images.dtype
    for n in range(16):
        rows = (dy[n] + torch.arange(7)).clamp(0, 6)
        cols = (dx[n] + torch.arange(9)).clamp(0, 8)
        assert torch.equal(out[n], images[n][:, rows][:, :, cols])
    assert (dy != 0).any() and (dx != 0).any()  # the draw moved some images


def test_random_shift_of_0_is_the_identity_and_the_draws_are_seeded() -> None:
    images = torch.rand(5, 1, 6, 6)
    assert torch.equal(RandomShift(0, seed=1)(images), images)
    assert torch.equal(RandomShift(3, seed=9)(images), RandomShift(3, seed=9)(images))
    assert not torch.equal(RandomShift(3, seed=9)(images), RandomShift(3, seed=8)(images))
    assert RandomShift(3).describe() == {"type": "shift", "max_shift": 3}


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_random_shift_refuses_a_bad_max_shift_in_one_line(bad) -> None:
    with pytest.raises(UserError, match=rf"^train_augment.max_shift={bad}: must be an integer"):
        RandomShift(bad)


def test_train_augment_shifts_training_episodes_only(tmp_path) -> None:
    from helpers.runs import train_tiny

    clean = train_tiny(tmp_path / "clean")
    both = train_tiny(tmp_path / "both", "train_augment=shift", "train_augment.max_shift=3",
                      "train_noise=gaussian")
    assert clean["train_augment"] is None
    assert both["train_augment"] == {"type": "shift", "max_shift": 3}
    assert both["train_noise"] == {"type": "gaussian", "std": 0.1}
    assert both["test"]["per_episode"]["episodes_sha1"] == \
        clean["test"]["per_episode"]["episodes_sha1"]  # the same test episodes
    assert both["test"]["acc_pixel"] == clean["test"]["acc_pixel"]  # unaugmented test images
    assert both["train"]["loss"] != clean["train"]["loss"]  # trained on other images

