"""Input encodings: images ``[B, C, H, W]`` in ``[0, 1]`` to time-first inputs ``[T, B, C, H, W]``.

``static`` encoders give the same input at every step, so a network may compute its first
(linear) layer once per forward instead of once per step. ``FramesEncoder`` takes event data:
each sample's events are binned into frames once (``bin``), the frames are the time steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from snntorch import spikegen

from snnexp.errors import UserError


class DirectEncoder:
    """The analog image as input current at every step: ``x[t] = image`` for all ``t``."""

    static = True
    spiking = False

    def __call__(self, images: torch.Tensor, num_steps: int) -> torch.Tensor:
        return images.unsqueeze(0).expand(num_steps, *images.shape)


class RateEncoder:
    """Rate code: ``s[t] ~ Bernoulli(clip(gain * image, 0, 1))`` (``snntorch.spikegen.rate``)."""

    static = False
    spiking = True

    def __init__(self, *, gain: float) -> None:
        if not gain > 0:
            raise UserError(f"encoder.gain={gain}: must be a number > 0")
        self.gain = gain

    def __call__(self, images: torch.Tensor, num_steps: int) -> torch.Tensor:
        return spikegen.rate(images.clamp(0, 1), num_steps=num_steps, gain=self.gain)


class LatencyEncoder:
    """Latency code: one spike per pixel, brighter pixels earlier (``snntorch.spikegen.latency``).

    With ``linear=True`` the spike time is ``t = tau * (1 - image)`` (scaled to the window when
    ``normalize=True``); pixels below ``threshold`` do not spike when ``clip=True``.
    """

    static = False
    spiking = True

    def __init__(self, *, tau: float, threshold: float, linear: bool, normalize: bool,
                 clip: bool) -> None:
        self.tau, self.threshold = tau, threshold
        self.linear, self.normalize, self.clip = linear, normalize, clip

    def __call__(self, images: torch.Tensor, num_steps: int) -> torch.Tensor:
        return spikegen.latency(images.clamp(0, 1), num_steps=num_steps, tau=self.tau,
                                threshold=self.threshold, linear=self.linear,
                                normalize=self.normalize, clip=self.clip)


class FramesEncoder:
    """Event streams as frames: the events of time bin ``t`` summed per pixel and polarity.

    ``bin`` runs tonic's ``ToFrame`` on each sample once (``snnexp.builders.build_splits``)::

        frame[t, p, y, x] = #{events e : e.p = p, e.x = x, e.y = y, e.t in bin t}

    with ``n_time_bins`` equal bins between the sample's first and last event (default
    ``T = model.num_steps``), or bins of ``time_window`` µs from its first event (cut or padded
    with empty frames to ``T``). The frames are stored as ``uint8 [N, T, P, H, W]`` (counts
    clipped at 255); ``__call__`` hands a batch to the network time first, a time-varying
    input (``static = False``). ``summed`` gives the ANN twin and the pixel control the
    time-summed frames ``sum_t frame[t]``, which keep where the events are but not when.
    """

    static = False
    spiking = True
    events = True  # takes event data: the splits are binned by ``bin``

    def __init__(self, *, n_time_bins: int | None, time_window: float | None) -> None:
        if n_time_bins is not None and time_window is not None:
            raise UserError(f"encoder.n_time_bins={n_time_bins}, encoder.time_window="
                            f"{time_window}: set only one of them (the other null)")
        if n_time_bins is not None and int(n_time_bins) < 1:
            raise UserError(f"encoder.n_time_bins={n_time_bins}: must be an integer >= 1")
        if time_window is not None and not time_window > 0:
            raise UserError(f"encoder.time_window={time_window}: must be a number > 0 (µs)")
        self.n_time_bins, self.time_window = n_time_bins, time_window

    def bin(self, events: list[np.ndarray], sensor_size: tuple[int, int, int],
            num_steps: int) -> torch.Tensor:
        """Events of ``N`` samples -> ``uint8 [N, T, P, H, W]`` frames (``T = num_steps``;
        with ``n_time_bins`` set, ``num_steps`` must equal it)."""
        from snnexp.data.events import require_tonic

        tonic = require_tonic()
        bins = self.n_time_bins or num_steps
        if bins != num_steps:
            raise UserError(f"encoder.n_time_bins={bins}, model.num_steps={num_steps}: the "
                            "frames are the time steps; make them equal (or n_time_bins=null)")
        width, height, polarities = sensor_size
        out = np.zeros((len(events), bins, polarities, height, width), dtype=np.uint8)
        for i, sample in enumerate(events):
            if len(sample) == 0:
                continue
            # n_time_bins as equal windows that hold every event, the last one included
            # (ToFrame(n_time_bins=T) floors the window and drops the events after T of them)
            window = self.time_window or max(
                1, -(-(int(sample["t"][-1]) - int(sample["t"][0]) + 1) // bins))
            frames = tonic.transforms.ToFrame(sensor_size=tuple(sensor_size), time_window=window,
                                              include_incomplete=True)(
                _tonic_ready(sample, polarities))[:bins]
            out[i, : len(frames)] = np.minimum(frames, 255)
        return torch.from_numpy(out)

    def __call__(self, frames: torch.Tensor, num_steps: int) -> torch.Tensor:
        """``[B, T, P, H, W]`` frames -> float32 ``[T, B, P, H, W]`` inputs."""
        if frames.dim() != 5 or frames.shape[1] != num_steps:
            raise UserError(f"encoder=frames: input of shape {list(frames.shape)}, expected "
                            f"[B, {num_steps}, P, H, W] frames of event data (a dataset of "
                            "events: omniglot_strokes, nmnist, pokerdvs, event_folder)")
        return frames.transpose(0, 1).float()

    @staticmethod
    def summed(frames: torch.Tensor) -> torch.Tensor:
        """``[B, T, P, H, W]`` -> float32 ``[B, P, H, W]``: the events of all bins."""
        return frames.float().sum(1)


def _tonic_ready(events: Any, polarities: int) -> np.ndarray:
    """A copy tonic's ``ToFrame`` may modify (it sets ``p = 0`` for a one-polarity sensor)."""
    out = events.copy()
    if polarities == 1:
        out["p"] = False
    return out
