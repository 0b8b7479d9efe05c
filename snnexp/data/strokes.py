"""Omniglot drawn by a pen in front of an event camera: ``dataset=omniglot_strokes``.

``<root>/omniglot-strokes/strokes_background/<alphabet>/<character>/<drawing>.txt`` holds the
pen trajectory of each Omniglot drawing (Lake, Salakhutdinov and Tenenbaum; the same drawings
as ``omniglot-py/images_background``): lines ``x,y,t`` in motor space (the 105x105 image's
pixels, ``y`` up; ``t`` in ms since the drawing began), ``START`` first, ``BREAK`` after each
stroke.

Each drawing becomes the ON events a DVS of ``S x S`` pixels reports while a one-pixel pen
draws it on a blank page (``pen_events``): the trajectory is mapped to the sensor
(``u = x S / 105``, ``v = -y S / 105``), each segment between recorded points is sampled at
least twice per sensor pixel it crosses, each sample's time is interpolated linearly between
its points, and a pixel sends one ON event when the pen first inks it (ink stays, so a pixel
never changes again). ``timing="uniform"`` replaces the recorded times by equal time per
recorded point (the same total duration): the same order of points without the pen's speed.

Splits are alphabet-disjoint as in ``dataset=omniglot`` (``snnexp.data.omniglot``); every
character is one class. The parsed trajectories are kept in ``cache_dir`` as one ``.npz``.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.checkpoint import atomic_write
from snnexp.data.events import EVENT_DTYPE, EventPool
from snnexp.data.omniglot import alphabet_split, character_ids, refuse_class_splits
from snnexp.errors import UserError

log = logging.getLogger(__name__)

FOLDER = Path("omniglot-strokes") / "strokes_background"
MOTOR_SIZE = 105.0  # the motor space spans the 105x105 Omniglot image
CACHE_VERSION = 1
TIMINGS = ("recorded", "uniform")


def parse_drawing(path: Path) -> np.ndarray:
    """One ``.txt`` trajectory -> float64 ``[n, 4]`` rows ``(x, y, t_ms, stroke)``.

    Raises:
        UserError: a line is neither ``START``, ``BREAK`` nor three numbers, or no point.
    """
    rows, stroke = [], 0
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read stroke file {path} ({err.__class__.__name__})") from err
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if line in ("START", ""):
            continue
        if line == "BREAK":
            stroke += 1
            continue
        try:
            x, y, t = (float(v) for v in line.split(","))
        except ValueError:
            raise UserError(f"{path}:{number}: {line!r} is not 'x,y,t', START or BREAK; "
                            "replace the file") from None
        rows.append((x, y, t, stroke))
    if not rows:
        raise UserError(f"{path}: no pen points; replace the file")
    return np.asarray(rows, dtype=np.float64)


def pen_events(points: np.ndarray, size: int, timing: str = "recorded") -> np.ndarray:
    """The ON events of one drawing on an ``size x size`` sensor (see the module docstring).

    Args:
        points: ``[n, 4]`` rows ``(x, y, t_ms, stroke)`` of ``parse_drawing``.
        size: ``S``, the sensor's width and height in pixels.
        timing: ``recorded`` (the pen's own times) or ``uniform`` (equal time per point).

    Returns:
        ``EVENT_DTYPE`` events, one per inked pixel, in the order the pen inks them
        (``t`` in µs, ``p = True``).
    """
    x, y, t, stroke = (points[:, i] for i in range(4))
    if timing == "uniform":
        duration = t.max() - t.min()
        t = t.min() + np.arange(len(t)) * (duration / max(len(t) - 1, 1))
    u, v = x * size / MOTOR_SIZE, -y * size / MOTOR_SIZE
    # segments between consecutive points: within a stroke sampled every <= 0.5 pixel; from
    # one stroke to the next (pen up) only the next stroke's first point
    same = stroke[1:] == stroke[:-1]
    steps = np.where(same, np.ceil(2 * np.hypot(np.diff(u), np.diff(v))), 1).astype(np.int64)
    steps = np.maximum(steps, 1)
    start = np.repeat(np.arange(len(steps)), steps)
    frac = np.arange(steps.sum()) - np.repeat(np.cumsum(steps) - steps, steps)
    frac = (frac + 1) / np.repeat(np.maximum(steps, 1), steps)  # (0, 1]: the far end last
    lerp = lambda a: np.concatenate([a[:1], a[start] + frac * (a[start + 1] - a[start])])
    su, sv, st = lerp(u), lerp(v), lerp(t)
    col = np.clip(np.floor(su), 0, size - 1).astype(np.int64)
    row = np.clip(np.floor(sv), 0, size - 1).astype(np.int64)
    _, first = np.unique(row * size + col, return_index=True)
    first = np.sort(first)  # each pixel at the first time the pen reaches it
    events = np.empty(len(first), dtype=EVENT_DTYPE)
    events["x"], events["y"] = col[first], row[first]
    events["t"] = np.round((st[first] - st[0]) * 1000).astype(np.int64)  # ms -> µs
    events["p"] = True
    return events


def read_strokes(root: str, cache_dir: str | None) -> tuple[list[np.ndarray], list[str]]:
    """Every drawing's ``parse_drawing`` array and its character ``<alphabet>/<character>``,
    in sorted path order; the parse is kept in ``cache_dir`` (keyed by the file list)."""
    base = Path(root).expanduser() / FOLDER
    if not base.is_dir():
        raise UserError(f"dataset=omniglot_strokes: no folder {base}; set paths.data_dir="
                        "<folder holding omniglot-strokes/strokes_background>")
    files = sorted(base.glob("*/*/*.txt"))
    if not files:
        raise UserError(f"dataset=omniglot_strokes: no <alphabet>/<character>/<drawing>.txt "
                        f"files under {base}")
    characters = [f"{p.parent.parent.name}/{p.parent.name}" for p in files]
    digest = hashlib.sha1(f"v{CACHE_VERSION}".encode())
    for p in files:
        digest.update(f"{p.relative_to(base)}\0{p.stat().st_size}\n".encode())
    cache = Path(cache_dir).expanduser() / f"strokes-{digest.hexdigest()[:16]}.npz" \
        if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            return np.split(data["points"], data["offsets"][1:-1]), characters
    drawings = [parse_drawing(p) for p in files]
    if cache is not None:
        offsets = np.cumsum([0] + [len(d) for d in drawings])
        try:
            atomic_write(cache, lambda f: np.savez(f, points=np.concatenate(drawings),
                                                   offsets=offsets))
        except OSError as err:
            log.warning("stroke cache not written to %s: %s", cache, err)
    return drawings, characters


def load_omniglot_strokes(root: str, sensor_size: int = 28, timing: str = "recorded",
                          test_alphabets: list[str] | None = None,
                          val_alphabets: list[str] | None = None,
                          cache_dir: str | None = None, val_fraction: float = 0.2,
                          split_seed: int = 0, train_classes: list[int] | None = None,
                          test_classes: list[int] | None = None,
                          val_classes: list[int] | None = None, **pool_args: Any) -> EventPool:
    """Omniglot pen trajectories as an ``EventPool`` of ``sensor_size x sensor_size x 1``
    ON events with alphabet-disjoint splits (the options of ``load_omniglot``).

    Args:
        root: the folder holding ``omniglot-strokes/`` (``paths.data_dir``).
        sensor_size: ``S``. timing: ``recorded`` or ``uniform`` (``pen_events``).
        test_alphabets: ``None``: Korean and Early_Aramaic (the default of ``dataset=omniglot``
            on the background alphabets). val_alphabets: ``None``: ``val_fraction`` of the
            training characters (drawn with ``split_seed``).
        pool_args: the other ``EventPool`` options (``rotations``, ``denoise_us``, ...).
    """
    refuse_class_splits("omniglot_strokes", pool_args, train_classes=train_classes,
                        test_classes=test_classes, val_classes=val_classes)
    if timing not in TIMINGS:
        raise UserError(f"dataset.timing={timing}: must be one of {', '.join(TIMINGS)}")
    if not (isinstance(sensor_size, int) and sensor_size >= 4):
        raise UserError(f"dataset.sensor_size={sensor_size}: must be an integer >= 4")
    drawings, characters = read_strokes(root, cache_dir)
    names = sorted(set(characters))
    class_of = {c: i for i, c in enumerate(names)}
    labels = torch.tensor([class_of[c] for c in characters], dtype=torch.int64)
    events = [pen_events(d, sensor_size, timing) for d in drawings]
    alphabet_of = np.array([c.split("/")[0] for c in names])
    split = alphabet_split({a: "images_background" for a in dict.fromkeys(alphabet_of)},
                           test_alphabets, val_alphabets)
    ids = character_ids(alphabet_of, split, val_fraction, split_seed)
    log.info("omniglot_strokes from %s: %d characters, %d drawings, %s timing, sensor %dx%d | "
             "train %d chars (%s) | val %d | test %d (%s)", Path(root).expanduser() / FOLDER,
             len(names), len(events), timing, sensor_size, sensor_size, len(ids["train"]),
             ", ".join(split["train"]), len(ids["val"]), len(ids["test"]),
             ", ".join(split["test"]))
    return EventPool(events, labels, (sensor_size, sensor_size, 1), train_classes=ids["train"],
                     test_classes=ids["test"], val_classes=ids["val"], val_fraction=val_fraction,
                     split_seed=split_seed, name="omniglot_strokes",
                     class_groups={i: str(a) for i, a in enumerate(alphabet_of)}, **pool_args)
