"""Input encodings: images ``[B, C, H, W]`` in ``[0, 1]`` to time-first inputs ``[T, B, C, H, W]``.

``static`` encoders give the same input at every step, so a network may compute its first
(linear) layer once per forward instead of once per step.
"""

from __future__ import annotations

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
