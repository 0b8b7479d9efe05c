"""A user's own backbone, outside ``snnexp``: conv8@3x3 -> LIF -> pool2 -> fc -> LIF, written
the way snnTorch's tutorials write networks (``snn.Leaky`` stepped in a Python loop)."""

from __future__ import annotations

from typing import Any

import snntorch as snn
import torch
from torch import nn


class TinyNet(nn.Module):
    """``forward(x, num_steps)``: ``x`` ``[T, B, C, H, W]`` or static ``[B, C, H, W]`` ->
    ``[B, embedding_dim]``, the time-mean membrane of the last layer."""

    def __init__(self, input_shape: tuple[int, int, int], *, embedding_dim: int, beta: float,
                 threshold: float, spike_grad: Any, **unused: Any) -> None:
        super().__init__()
        channels, height, width = input_shape
        self.conv = nn.Conv2d(channels, 8, 3, padding=1)
        self.lif1 = snn.Leaky(beta=beta, threshold=threshold, spike_grad=spike_grad)
        self.fc = nn.Linear(8 * (height // 2) * (width // 2), embedding_dim)
        self.lif2 = snn.Leaky(beta=beta, threshold=threshold, spike_grad=spike_grad)

    def forward(self, x: torch.Tensor, num_steps: int) -> torch.Tensor:
        if x.dim() == 4:  # static input: the same at every step
            x = x.expand(num_steps, *x.shape)
        mem1 = mem2 = None
        out = []
        for t in range(num_steps):
            cur1 = self.conv(x[t])
            spk1, mem1 = self.lif1(cur1, torch.zeros_like(cur1) if mem1 is None else mem1)
            cur2 = self.fc(nn.functional.max_pool2d(spk1, 2).flatten(1))
            _, mem2 = self.lif2(cur2, torch.zeros_like(cur2) if mem2 is None else mem2)
            out.append(mem2)
        return torch.stack(out).mean(0)
