"""Augmentations of the meta-training images (``python -m snnexp.train train_augment=shift``).

An augmentation maps images ``[N, C, H, W]`` to images of the same shape, dtype and range,
drawing from its own seeded ``torch.Generator``; ``snnexp.data.episodes.TransformedSampler``
applies it to the support and the query images of every training episode. Validation and test
episodes are never augmented.
"""

from __future__ import annotations

from typing import Any

import torch

from snnexp.errors import UserError


class RandomShift:
    """Random translation by whole pixels: image ``n`` becomes

        ``x'[n, c, i, j] = x[n, c, clip(i + dy_n, 0, H-1), clip(j + dx_n, 0, W-1)]``

    with ``dy_n, dx_n`` drawn uniformly from ``{-max_shift, ..., max_shift}``: the content moves
    by ``(-dy_n, -dx_n)`` and the pixels moved in repeat the image's border (replicate padding),
    so the background stays the background whatever its value."""

    def __init__(self, max_shift: int, seed: int = 0) -> None:
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise UserError(f"train_augment.max_shift={max_shift}: must be an integer >= 0")
        self.max_shift = max_shift
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, c, h, w = images.shape
        s = self.max_shift
        dy, dx = (torch.randint(-s, s + 1, (2, n, 1), generator=self.generator)
                  .to(images.device).unbind(0))
        rows = (dy + torch.arange(h, device=images.device)).clamp(0, h - 1)  # [N, H]
        cols = (dx + torch.arange(w, device=images.device)).clamp(0, w - 1)  # [N, W]
        picked = images.gather(2, rows[:, None, :, None].expand(n, c, h, w))
        return picked.gather(3, cols[:, None, None, :].expand(n, c, h, w))

    def describe(self) -> dict[str, Any]:
        return {"type": "shift", "max_shift": self.max_shift}
