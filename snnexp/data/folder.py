"""Image folders: one subfolder of images per class (the user's own data), with a tensor cache.

``load_folder(root)`` reads ``<root>/<class>/<image>`` into a ``ClassPool``: class ids follow
the sorted subfolder names, images become ``[N, C, H, W]`` float32 in ``[0, 1]`` (grayscale
``C = 1`` or RGB ``C = 3``, resized to ``image_size``). The decoded images are kept as a
``uint8`` tensor file in ``cache_dir`` (keyed by the file list and the resize settings), so the
second run skips the PIL decoding. ``read_class_images`` is shared with ``snnexp.data.omniglot``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.checkpoint import atomic_write
from snnexp.data.pool import ClassPool
from snnexp.data.preprocess import ImageFormat, pil_to_array, to_unit_range
from snnexp.errors import UserError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm",
                  ".ppm")
CACHE_VERSION = 1


def list_images(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path, image_size: tuple[int, int], channels: int) -> np.ndarray:
    """One image file as ``uint8 [C, H, W]``: converted to ``L`` (C=1) or ``RGB`` (C=3) and
    resized to ``image_size = (H, W)`` (``preprocess.pil_to_array``).

    Raises:
        UserError: the file cannot be decoded (the message names it).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return pil_to_array(img, channels, image_size)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise UserError(f"cannot read image {path} ({err.__class__.__name__}); "
                        "delete or replace the file") from err


def read_class_images(class_dirs: list[Path], image_size: tuple[int, int], channels: int,
                      cache_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of each class folder: ``uint8 [N, C, H, W]`` and labels ``int64 [N]`` (the index
    of the folder in ``class_dirs``). Loaded from / saved to ``cache_dir`` when it is set."""
    files = [list_images(d) for d in class_dirs]
    for folder, names in zip(class_dirs, files, strict=True):
        if not names:
            raise UserError(f"class folder {folder} has no images "
                            f"(allowed suffixes: {' '.join(IMAGE_SUFFIXES)})")
    key = _cache_key(files, image_size, channels)
    cache = Path(cache_dir).expanduser() / f"images-{key}.pt" if cache_dir else None
    if cache is not None and cache.is_file():
        data = torch.load(cache, weights_only=True)
        return data["images"], data["labels"]
    images = np.stack([read_image(p, image_size, channels) for names in files for p in names])
    labels = np.repeat(np.arange(len(files)), [len(names) for names in files])
    out = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))
    if cache is not None:
        _save_cache(cache, {"images": out[0], "labels": out[1]})
    return out


def _cache_key(files: list[list[Path]], image_size: tuple[int, int], channels: int) -> str:
    digest = hashlib.sha1(f"v{CACHE_VERSION} {image_size} {channels}".encode())
    for names in files:
        for p in names:
            digest.update(f"{p.resolve()}\0{p.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def _save_cache(path: Path, data: dict[str, torch.Tensor]) -> None:
    """Write atomically (``atomic_write``); a cache that cannot be written is only logged."""
    try:
        atomic_write(path, lambda f: torch.save(data, f))
    except OSError as err:
        log.warning("image cache not written to %s: %s", path, err)


def image_size_pair(image_size: int | list[int]) -> tuple[int, int]:
    """``28`` or ``[H, W]`` -> ``(H, W)``; raises ``UserError`` for anything else."""
    size = [image_size] if isinstance(image_size, int) else list(image_size)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
        raise UserError(f"dataset.image_size={image_size}: must be an integer >= 1 or [H, W]")
    return size[0], size[1]


def load_folder(root: str, image_size: int | list[int] = 28, channels: int = 1,
                invert: bool = False, cache_dir: str | None = None,
                **pool_args: Any) -> ClassPool:
    """A ``ClassPool`` from ``<root>/<class>/<image>``; class ids follow sorted folder names.

    Args:
        root: folder holding one subfolder of images per class.
        image_size: ``H = W`` or ``[H, W]`` after resizing. channels: 1 (grayscale) or 3 (RGB).
        invert: use ``1 - pixel`` (dark strokes on a light background become bright).
        cache_dir: where the decoded tensor is kept (``None``: no cache).
        pool_args: the ``ClassPool`` split options (class ids index the sorted folder names).
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise UserError(f"dataset.root={root}: no such folder; set dataset.root=<folder with "
                        "one subfolder of images per class>")
    if channels not in (1, 3):
        raise UserError(f"dataset.channels={channels}: must be one of 1, 3")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise UserError(f"dataset.root={root}: {len(class_dirs)} class subfolders found; "
                        "need one subfolder of images per class (at least 2)")
    images, labels = read_class_images(class_dirs, image_size_pair(image_size), channels,
                                       cache_dir)
    image_format = ImageFormat(pixel_max=255.0, invert=invert)
    x = to_unit_range(images, image_format)
    log.info("dataset folder %s: %d classes, %d images (class ids: %s)", folder,
             len(class_dirs), len(labels),
             ", ".join(f"{i}={d.name}" for i, d in enumerate(class_dirs[:10]))
             + (", ..." if len(class_dirs) > 10 else ""))
    return ClassPool(x, labels, name=folder.name, image_format=image_format, **pool_args)
