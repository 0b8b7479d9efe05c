"""Dataset loaders: each returns a ``ClassPool`` of float32 images in ``[0, 1]``.

``load_digits`` needs no download (scikit-learn's bundled 8x8 digits). ``load_idx`` reads the
MNIST-family IDX files found under ``<root>/<name>/raw/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.data.pool import ClassPool
from snnexp.data.preprocess import ImageFormat, to_unit_range
from snnexp.errors import UserError

IDX_NAMES = ("MNIST", "FashionMNIST", "KMNIST")
IDX_PARTS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def load_digits(**pool_args: Any) -> ClassPool:
    """scikit-learn's 1,797 handwritten digits: ``[N, 1, 8, 8]``, pixel values 0..16 scaled."""
    from sklearn.datasets import load_digits as sklearn_digits

    data = sklearn_digits()
    image_format = ImageFormat(pixel_max=16.0)
    images = to_unit_range(data.images.astype(np.float32), image_format)
    return ClassPool(images, torch.from_numpy(data.target.astype(np.int64)), name="digits",
                     image_format=image_format, **pool_args)


def load_idx(name: str, root: str, download: bool = False, **pool_args: Any) -> ClassPool:
    """MNIST, FashionMNIST or KMNIST from ``<root>/<name>/raw/`` (train files, test, or both).

    With ``download=True`` torchvision fetches the files first (needs a network).
    """
    if name not in IDX_NAMES:
        raise UserError(f"dataset.name={name}: must be one of {', '.join(IDX_NAMES)}")
    raw = Path(root).expanduser() / name / "raw"
    if download:
        _download(name, Path(root).expanduser())
    parts = [p for p, (img, lbl) in IDX_PARTS.items()
             if (raw / img).is_file() and (raw / lbl).is_file()]
    if not parts:
        raise UserError(f"dataset={name.lower()}: no IDX files in {raw} (expected "
                        f"{IDX_PARTS['test'][0]} and {IDX_PARTS['test'][1]}, or the train pair); "
                        f"set paths.data_dir=<folder holding {name}/raw> or dataset.download=true")
    images, labels = zip(*(_read_idx_pair(raw, *IDX_PARTS[p]) for p in parts), strict=False)
    image_format = ImageFormat(pixel_max=255.0)
    x = to_unit_range(torch.cat(images), image_format)
    return ClassPool(x, torch.cat(labels).long(), name=name, image_format=image_format,
                     **pool_args)


def _read_idx_pair(raw: Path, images_file: str, labels_file: str) -> tuple[torch.Tensor, ...]:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    images = _read_checked(raw / images_file, read_image_file, ndim=3)
    labels = _read_checked(raw / labels_file, read_label_file, ndim=1)
    if len(images) != len(labels):
        raise UserError(f"{raw / images_file} has {len(images)} images but "
                        f"{raw / labels_file} has {len(labels)} labels")
    return images, labels


def _read_checked(path: Path, reader: Any, ndim: int) -> torch.Tensor:
    """Check the IDX header against the file size, then read with torchvision's reader."""
    data = path.read_bytes()
    if len(data) < 4 + 4 * ndim or data[:2] != b"\x00\x00" or data[3] != ndim:
        raise UserError(f"{path} is not an IDX file with {ndim} dimensions; "
                        "replace it with the original file")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(dims))
    if len(data) != expected:
        raise UserError(f"{path} is truncated or corrupt: {len(data)} bytes, the header "
                        f"promises {expected}; replace it with the original file")
    return reader(str(path))


def _download(name: str, root: Path) -> None:
    import torchvision.datasets as tvd

    try:
        for train in (True, False):
            getattr(tvd, name)(root=str(root), train=train, download=True)
    except (OSError, RuntimeError) as err:
        raise UserError(f"dataset.download=true: could not download {name} into {root} "
                        f"({err.__class__.__name__}: {err}); copy the IDX files there "
                        "by hand") from err
