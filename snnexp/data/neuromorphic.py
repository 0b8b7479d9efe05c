"""tonic's labelled neuromorphic datasets as event pools: ``dataset=nmnist``, ``dataset=pokerdvs``.

The files are read through tonic's own dataset classes from tonic's on-disk layout under
``root`` (``paths.data_dir``):

- N-MNIST (Orchard et al. 2015): ``<root>/NMNIST/Train/<digit>/*.bin`` and/or
  ``<root>/NMNIST/Test/<digit>/*.bin`` (the extracted ``train.zip``/``test.zip``; 5 bytes per
  event: x, y, polarity and a 23-bit time stamp in µs), sensor 34x34x2, classes 0-9.
- POKER-DVS (Serrano-Gotarredona and Linares-Barranco 2015): ``<root>/POKERDVS/pips_train/<cl|
  he|di|sp>/*.npy`` and/or ``pips_test/`` (``[n, 4]`` arrays of ``t, x, y, p``), sensor
  35x35x2, classes 0-3 = clubs, hearts, diamonds, spades.

tonic itself accepts a folder only with the complete dataset and its archive beside it and
otherwise downloads; here an extracted folder (or a part of it) is read as it is, and
``download=True`` lets tonic fetch what is missing where it can (N-MNIST; tonic 1.7 has no
download for POKER-DVS). Both parts (train and test files) are pooled; the few-shot splits are
class-disjoint (``train_classes``/``test_classes``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.data.events import EventPool, as_events, require_tonic
from snnexp.errors import UserError

log = logging.getLogger(__name__)

# tonic's class name -> (its folder for each part, the suffix of its sample files)
LAYOUTS = {"NMNIST": ({True: "Train", False: "Test"}, ".bin"),
           "POKERDVS": ({True: "pips_train", False: "pips_test"}, ".npy")}


def read_tonic_dataset(name: str, root: str, download: bool, max_per_class: int | None,
                       **options: Any) -> tuple[list[np.ndarray], list[int], tuple, list[str]]:
    """Every sample of tonic's ``name`` under ``root`` (both parts present, train first):
    events (``EVENT_DTYPE``), labels, tonic's ``sensor_size`` and class names; at most
    ``max_per_class`` samples of each class per part (the first in tonic's file order)."""
    tonic = require_tonic()
    cls = getattr(tonic.datasets, name)
    folders, suffix = LAYOUTS[name]
    base = Path(root).expanduser() / name
    present = [train for train, folder in folders.items()
               if any((base / folder).rglob(f"*{suffix}"))] if base.is_dir() else []
    if download and not present:
        present = [True, False]
    elif not present:
        raise UserError(f"dataset={name.lower()}: no {suffix} files under "
                        f"{base / folders[True]} or {base / folders[False]} (tonic's layout); "
                        f"set paths.data_dir=<folder holding {name}/> or dataset.download=true")
    events, labels = [], []
    for train in present:
        dataset = _open(cls, root, train, download, options)
        per_class: dict[int, int] = {}
        for index, target in enumerate(dataset.targets):
            target = int(target)
            if max_per_class is not None and per_class.get(target, 0) >= max_per_class:
                continue
            per_class[target] = per_class.get(target, 0) + 1
            source = dataset.data[index] if isinstance(dataset.data[index], str) else \
                f"{base / folders[train]} sample {index}"
            try:
                sample, _ = dataset[index]
            except (OSError, ValueError, IndexError, TypeError) as err:
                raise UserError(f"cannot read {source} ({err.__class__.__name__}: {err}); "
                                "delete or replace the file") from err
            events.append(as_events(sample, source))
            labels.append(target)
    return events, labels, tuple(cls.sensor_size), list(cls.classes)


def _open(cls: type, root: str, train: bool, download: bool, options: dict[str, Any]) -> Any:
    """tonic's dataset object for one part; without ``download`` a present folder is taken as
    it is (tonic's own check wants the full dataset and its archive)."""
    if download:
        try:
            return cls(save_to=str(Path(root).expanduser()), train=train, **options)
        except Exception as err:  # noqa: BLE001 - tonic raises URLError, HTTPError, OSError...
            raise UserError(f"dataset.download=true: tonic could not get {cls.__name__} into "
                            f"{root} ({err.__class__.__name__}: {err}); copy the extracted "
                            "files there by hand") from err
    as_found = type(cls.__name__, (cls,), {"_check_exists": lambda self: True})
    try:
        return as_found(save_to=str(Path(root).expanduser()), train=train, **options)
    except (OSError, ValueError, KeyError, IndexError) as err:
        folder = Path(root).expanduser() / cls.__name__ / LAYOUTS[cls.__name__][0][train]
        raise UserError(f"cannot read {folder} as tonic's {cls.__name__} "
                        f"({err.__class__.__name__}: {err}); it needs tonic's layout "
                        "(see snnexp.data.neuromorphic)") from err


def _pool(name: str, root: str, download: bool, max_per_class: int | None,
          denoise_us: float | None, downsample: float, options: dict[str, Any],
          pool_args: dict[str, Any]) -> EventPool:
    events, labels, sensor_size, classes = read_tonic_dataset(name, root, download,
                                                              max_per_class, **options)
    counts = np.bincount(labels, minlength=len(classes))
    log.info("%s from %s: %d samples, sensor %s, per class %s", name,
             Path(root).expanduser() / name, len(events), sensor_size,
             ", ".join(f"{i}={c} ({n})" for i, (c, n) in enumerate(zip(classes, counts,
                                                                        strict=True))))
    return EventPool(events, torch.tensor(labels, dtype=torch.int64), sensor_size,
                     denoise_us=denoise_us, downsample=downsample,
                     **{"name": name.lower(), **pool_args})


def load_nmnist(root: str, download: bool = False, max_per_class: int | None = None,
                first_saccade_only: bool = False, denoise_us: float | None = None,
                downsample: float = 1.0, **pool_args: Any) -> EventPool:
    """N-MNIST through ``tonic.datasets.NMNIST`` (``first_saccade_only``: the events of the
    first of the three saccades, tonic's option)."""
    return _pool("NMNIST", root, download, max_per_class, denoise_us, downsample,
                 {"first_saccade_only": first_saccade_only}, pool_args)


def load_pokerdvs(root: str, download: bool = False, max_per_class: int | None = None,
                  denoise_us: float | None = None, downsample: float = 1.0,
                  **pool_args: Any) -> EventPool:
    """POKER-DVS through ``tonic.datasets.POKERDVS``."""
    return _pool("POKERDVS", root, download, max_per_class, denoise_us, downsample, {},
                 pool_args)
