"""Build the Omniglot array shipped inside the package (``snnexp/data/omniglot28.npz``).

    python scripts/build_omniglot_array.py ../shared/data

Reads torchvision's layout ``<data_dir>/omniglot-py/images_background/<alphabet>/<character>/``
with the loader's own decoding (``snnexp.data.folder.read_class_images``: grayscale, bilinear
resize to 28x28, uint8) and writes one compressed NumPy archive with

- ``images``: uint8 ``[N, 1, 28, 28]``, the files' own black-on-white pixels (the loader
  inverts them, as it does for the PNGs);
- ``labels``: int64 ``[N]``, the index of the character in ``characters``;
- ``characters``: ``[K]`` strings ``<alphabet>/<character>`` in the loader's order;

so ``dataset=omniglot`` without an image folder gives the same tensors as the PNGs.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from snnexp.data.folder import read_class_images
from snnexp.data.omniglot import BUNDLED, BUNDLED_SIZE, character_dirs, find_alphabets


def build(data_dir: str, out: Path) -> Path:
    """Decode the PNGs under ``data_dir`` and write the archive to ``out``; return ``out``."""
    alphabet_dirs = [d for dirs in find_alphabets(data_dir).values() for d in dirs]
    char_dirs = character_dirs(alphabet_dirs)
    images, labels = read_class_images(char_dirs, (BUNDLED_SIZE, BUNDLED_SIZE), 1, None)
    characters = np.array([f"{c.parent.name}/{c.name}" for c in char_dirs])
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images.numpy(), labels=labels.numpy(),
                        characters=characters)
    out.write_bytes(buffer.getvalue())
    print(f"{out}: {len(labels)} images of {len(characters)} characters, "
          f"{out.stat().st_size / 1e6:.2f} MB")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", help="folder holding omniglot-py/images_background")
    parser.add_argument("--out", type=Path, default=BUNDLED, help="archive to write")
    args = parser.parse_args()
    build(args.data_dir, args.out)


if __name__ == "__main__":
    main()
