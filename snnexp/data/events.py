"""Event streams as samples: tonic's structured arrays, a pool of them, and their splits.

An event sample is a NumPy structured array with tonic's fields (``tonic.io.events_struct``)::

    x, y : int16  pixel column and row on the sensor (0..W-1, 0..H-1)
    t    : int64  time stamp in microseconds
    p    : bool   polarity (ON = True)

and every sample of a pool shares one ``sensor_size = (W, H, P)`` (tonic's order; ``P``
polarities). ``EventPool`` splits them as ``ClassPool`` splits images (the same class lists,
``val_fraction``, ``split_seed``), and adds the 90-degree rotations and mirror images of the
training classes as coordinate transforms of the events (training split only); the frames
encoder (``snnexp.encoding.FramesEncoder``) bins each split once
(``snnexp.builders.build_splits``). ``tonic`` is imported only here and in the encoder, only
when event data is used: ``pip install "snnexp[events]"``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from snnexp.data.pool import ClassPool
from snnexp.errors import UserError

log = logging.getLogger(__name__)

# tonic.io.events_struct (tested equal), so that a pool's arrays are tonic's own
EVENT_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])


def require_tonic() -> Any:
    """``import tonic``, or a one-line ``UserError`` naming the extra that installs it."""
    try:
        import tonic
    except ImportError as err:
        raise UserError("event data needs tonic: pip install \"snnexp[events]\" "
                        f"(tonic is not installed: {err})") from err
    return tonic


class EventSplit(NamedTuple):
    """One split of an event pool: ``events[i]`` (``EVENT_DTYPE``) has class ``labels[i]``."""

    events: list[np.ndarray]
    labels: torch.Tensor  # [N] int64 class ids
    sensor_size: tuple[int, int, int]  # (W, H, P)


def as_events(array: Any, source: str) -> np.ndarray:
    """Any structured array with fields ``x, y, t, p`` -> ``EVENT_DTYPE``, sorted by time.

    Raises:
        UserError: the array has no such fields (the message names ``source``).
    """
    names = getattr(getattr(array, "dtype", None), "names", None) or ()
    missing = [f for f in EVENT_DTYPE.names if f not in names]
    if missing:
        raise UserError(f"{source}: not an event array (a structured array with fields x, y, t, "
                        f"p, tonic's dtype; missing {', '.join(missing)})")
    events = np.empty(len(array), dtype=EVENT_DTYPE)
    for field in EVENT_DTYPE.names:
        events[field] = array[field]
    return events[np.argsort(events["t"], kind="stable")]


def rotate_events(events: np.ndarray, k: int, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """The events of the frame ``torch.rot90(frame, k, dims=(H, W))``: for ``k = 1``,
    ``(x, y) -> (y, W - 1 - x)`` on a square ``W x W`` sensor; ``k`` is taken mod 4."""
    width = sensor_size[0]
    out = events.copy()
    for _ in range(k % 4):
        x, y = out["x"].copy(), out["y"].copy()
        out["x"], out["y"] = y, width - 1 - x
    return out


def flip_events(events: np.ndarray, sensor_size: tuple[int, int, int]) -> np.ndarray:
    """The left-right mirror image: ``x -> W - 1 - x``."""
    out = events.copy()
    out["x"] = sensor_size[0] - 1 - out["x"]
    return out


def event_transforms(events: list[np.ndarray], sensor_size: tuple[int, int, int], *,
                     denoise_us: float | None, downsample: float
                     ) -> tuple[list[np.ndarray], tuple[int, int, int]]:
    """tonic's ``Denoise(filter_time=denoise_us)`` (drop events with no neighbour event within
    ``denoise_us``; ``None``: none) and ``Downsample(spatial_factor=downsample)`` (``x, y``
    scaled by the factor) on every sample; returns the events and the new sensor size
    ``(ceil(W f), ceil(H f), P)``."""
    if not denoise_us and downsample == 1:
        return events, sensor_size
    tonic = require_tonic()
    steps = []
    if denoise_us:
        steps.append(tonic.transforms.Denoise(filter_time=float(denoise_us)))
    if downsample != 1:
        steps.append(tonic.transforms.Downsample(spatial_factor=float(downsample)))
        sensor_size = (int(np.ceil(sensor_size[0] * downsample)),
                       int(np.ceil(sensor_size[1] * downsample)), sensor_size[2])
    transform = tonic.transforms.Compose(steps)
    return [transform(e) for e in events], sensor_size


class EventPool(ClassPool):
    """Event samples with class labels, split for few-shot learning like ``ClassPool``.

    Args:
        events: one ``EVENT_DTYPE`` array per sample. labels: ``[N]`` int64 class ids.
        sensor_size: ``(W, H, P)`` of every sample; events outside it are refused.
        denoise_us, downsample: tonic's ``Denoise`` and ``Downsample``
            (``event_transforms``), applied once here.
        pool_args: the ``ClassPool`` split options; ``rotations``/``flips`` transform the
            training events' coordinates (rotations need a square sensor).

    ``splits()`` returns ``EventSplit``s; ``image_shape`` is ``(P, H, W)``, the shape of one
    frame.
    """

    def __init__(self, events: list[np.ndarray], labels: torch.Tensor,
                 sensor_size: tuple[int, int, int], *, denoise_us: float | None = None,
                 downsample: float = 1.0, **pool_args: Any) -> None:
        if not downsample > 0:
            raise UserError(f"dataset.downsample={downsample}: must be a number > 0")
        sensor_size = tuple(int(s) for s in sensor_size)  # type: ignore[assignment]
        width, height, _ = sensor_size  # p: bool, ON on a one-polarity sensor
        for i, e in enumerate(events):
            if len(e) and (e["x"].min() < 0 or e["x"].max() >= width or e["y"].min() < 0
                           or e["y"].max() >= height):
                raise UserError(f"event sample {i} of {pool_args.get('name', 'the dataset')} "
                                f"lies outside the sensor {sensor_size} (W, H, P)")
        events, sensor_size = event_transforms(events, sensor_size, denoise_us=denoise_us,
                                               downsample=downsample)
        super().__init__(None, labels, **pool_args)  # type: ignore[arg-type]
        self.events, self.sensor_size = events, sensor_size
        if (self.rotations) and sensor_size[0] != sensor_size[1]:
            raise UserError(f"dataset.rotations=true: the sensor {sensor_size[:2]} (W, H) is "
                            "not square; set dataset.rotations=false")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        width, height, polarities = self.sensor_size
        return polarities, height, width

    def _take(self, index: np.ndarray) -> EventSplit:  # type: ignore[override]
        index = np.sort(index)
        return EventSplit([self.events[i] for i in index],
                          self.labels[torch.from_numpy(index)], self.sensor_size)

    def _symmetries(self, split: EventSplit) -> EventSplit:  # type: ignore[override]
        """``ClassPool._symmetries`` on events: rotations k = 0..3 of the events (then of
        their mirror images) as classes ``id + j * offset``."""
        if not (self.flips or self.rotations):
            return split
        sets = [split.events]
        if self.flips:
            sets.append([flip_events(e, self.sensor_size) for e in split.events])
        if self.rotations:
            sets = [[rotate_events(e, k, self.sensor_size) for e in s] for s in sets
                    for k in range(4)]
        offset = max(self.classes) + 1
        labels = torch.cat([split.labels + j * offset for j in range(len(sets))])
        return EventSplit([e for s in sets for e in s], labels, self.sensor_size)


def load_event_folder(root: str, sensor_size: list[int] | None = None,
                      denoise_us: float | None = None, downsample: float = 1.0,
                      **pool_args: Any) -> EventPool:
    """``<root>/<class>/<sample>.npy``: one structured event array (fields ``x, y, t`` in µs,
    ``p``; tonic's dtype) per file; class ids follow the sorted subfolder names.

    Args:
        sensor_size: ``[W, H, P]``; ``None``: the largest ``x``, ``y`` and ``p`` + 1 found.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise UserError(f"dataset.root={root}: no such folder; set dataset.root=<folder with "
                        "one subfolder of .npy event arrays per class>")
    class_dirs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise UserError(f"dataset.root={root}: {len(class_dirs)} class subfolders found; need "
                        "one subfolder of .npy event arrays per class (at least 2)")
    events, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(class_dir.glob("*.npy"))
        if not files:
            raise UserError(f"class folder {class_dir} has no .npy event arrays")
        for path in files:
            events.append(as_events(read_npy(path), str(path)))
            labels.append(label)
    size = tuple(sensor_size) if sensor_size is not None else inferred_sensor_size(events)
    log.info("event folder %s: %d classes, %d samples, sensor %s (class ids: %s)", folder,
             len(class_dirs), len(events), size,
             ", ".join(f"{i}={d.name}" for i, d in enumerate(class_dirs[:10]))
             + (", ..." if len(class_dirs) > 10 else ""))
    return EventPool(events, torch.tensor(labels, dtype=torch.int64), size,  # type: ignore[arg-type]
                     denoise_us=denoise_us, downsample=downsample,
                     **{"name": folder.name, **pool_args})


def read_npy(path: Path) -> np.ndarray:
    """``np.load`` of one file, or a one-line ``UserError`` naming it."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise UserError(f"cannot read event array {path} ({err.__class__.__name__}: {err}); "
                        "delete or replace the file") from err


def inferred_sensor_size(events: list[np.ndarray]) -> tuple[int, int, int]:
    """``(max x + 1, max y + 1, max p + 1)`` over all samples (at least 1 each)."""
    def top(field: str) -> int:
        return max((int(e[field].astype(np.int64).max()) for e in events if len(e)), default=0)
    return top("x") + 1, top("y") + 1, top("p") + 1
