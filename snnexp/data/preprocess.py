"""Raw pixels -> the images every learner sees: float32 ``[N, C, H, W]`` in ``[0, 1]``.

One function for the two places that meet raw pixels: the dataset loaders (``load_digits``,
``load_idx``, ...) and ``snnexp.api.PretrainedLearner.predict`` for a user's own images, so a
trained model is always fed exactly what it was trained on:

    x = clip(raw / pixel_max, 0, 1)          then  x = 1 - x  when ``invert``
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from snnexp.errors import UserError


@dataclass(frozen=True)
class ImageFormat:
    """How one dataset's raw pixels map to ``[0, 1]``.

    Attributes:
        pixel_max: the raw value of a white pixel (255 for 8-bit files, 16 for sklearn digits).
        invert: whether the dataset inverts the scaled image (dark strokes on white paper).
    """

    pixel_max: float = 255.0
    invert: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_unit_range(raw: Any, image_format: ImageFormat) -> torch.Tensor:
    """Raw pixels ``[N, H, W]`` or ``[N, C, H, W]`` -> float32 ``[N, C, H, W]`` in ``[0, 1]``."""
    x = raw if torch.is_tensor(raw) else torch.from_numpy(np.asarray(raw))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise UserError(f"images of shape {list(x.shape)}: must be [N, H, W] or [N, C, H, W]")
    x = (x.to(torch.float32) / float(image_format.pixel_max)).clamp_(0.0, 1.0)
    return 1.0 - x if image_format.invert else x


def prepare_images(images: Any, image_shape: Sequence[int],
                   image_format: ImageFormat) -> torch.Tensor:
    """A user's images -> float32 ``[N, C, H, W]`` in ``[0, 1]``, as the training pool had them.

    Accepted forms:
        * a PIL image or a list of them: converted to ``L`` (C=1) or ``RGB`` (C=3), resized to
          ``(H, W)`` (bilinear; ``pil_to_array``) and read as 8-bit (``pixel_max = 255``);
        * a NumPy array or tensor ``[H, W]`` (one image), ``[N, H, W]`` or ``[N, C, H, W]``, or a
          list of single images: integer dtypes and floats above 1 are raw pixels in
          ``0..pixel_max`` of the dataset (uint8 MNIST, sklearn digits 0..16); floats within
          ``[0, 1]`` are taken as already in the pool's form (e.g. ``Episode.support_x``).

    Raises:
        UserError: when the images' ``(C, H, W)`` differs from ``image_shape``.
    """
    channels, height, width = (int(s) for s in image_shape)
    if _is_pil(images) or (isinstance(images, (list, tuple)) and images
                           and _is_pil(images[0])):
        pil = [images] if _is_pil(images) else list(images)
        raw = np.stack([pil_to_array(im, channels, (height, width)) for im in pil])
        x = to_unit_range(raw, ImageFormat(255.0, image_format.invert))
    else:
        if isinstance(images, (list, tuple)):
            images = np.stack([np.asarray(im) for im in images])
        array = images if torch.is_tensor(images) else torch.from_numpy(np.asarray(images))
        array = array.detach().cpu()
        if array.ndim == 2:
            array = array.unsqueeze(0)
        scaled = array.is_floating_point() and bool(array.numel() == 0 or array.max() <= 1.0)
        # floats in [0, 1] are already in the pool's form (scaled and, if so, inverted)
        x = to_unit_range(array, ImageFormat(1.0) if scaled else image_format)
    if tuple(x.shape[1:]) != (channels, height, width):
        raise UserError(f"images of shape {list(x.shape[1:])} (C, H, W): the model was trained "
                        f"on {[channels, height, width]}")
    return x


def _is_pil(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        return False
    return isinstance(obj, Image.Image)


def pil_to_array(image: Any, channels: int, size: tuple[int, int]) -> np.ndarray:
    """One PIL image -> uint8 ``[C, H, W]``: converted to ``L`` (``C = 1``) or ``RGB``
    (``C = 3``) and resized (bilinear) to ``size = (H, W)``.

    The one decoder of PIL images: the folder and Omniglot loaders (``read_image``) and a
    user's images (``prepare_images``) go through it, so both see the same pixels.
    """
    from PIL import Image

    image = image.convert("L" if channels == 1 else "RGB")
    if image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
