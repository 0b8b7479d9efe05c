"""The original notebook's spiking ProtoNet, as it computed: the reference of the benchmark.

Same architecture and neurons as ``backbone=notebook padding=valid`` of ``snnexp`` (conv16@5x5 ->
Leaky -> maxpool2 -> conv32@3x3 -> Leaky -> maxpool2 -> fc64 -> Leaky, embedding = the last
layer's membrane averaged over ``T`` steps), computed the notebook's way:

- every time step runs the whole network on ``[B, ...]`` (the first convolution recomputed
  at each step for the same static image), ``snn.Leaky`` stepped in Python;
- support and query sets go through the network in two separate forwards;
- prototypes by a Python loop over the classes; logits ``-||q - c_k||`` (square-rooted).

``load_into(ref, net)`` copies the weights of a ``SpikingConvNet`` so that both compute the same
function (``snnexp``'s logits with ``distance=euclidean``; with ``squared``, their squares).
"""

from __future__ import annotations

from collections.abc import Callable

import snntorch as snn
import torch
from torch import nn


class NotebookNet(nn.Module):
    """The notebook's network for ``[B, 1, 28, 28]`` images; ``forward`` -> ``[B, 64]``."""

    def __init__(self, beta: float = 0.95, spike_grad: Callable | None = None,
                 num_steps: int = 50, embedding_dim: int = 64) -> None:
        super().__init__()
        self.num_steps = num_steps
        self.conv1, self.conv2 = nn.Conv2d(1, 16, 5), nn.Conv2d(16, 32, 3)
        self.fc1 = nn.Linear(32 * 5 * 5, embedding_dim)
        self.lif1, self.lif2, self.lif3 = (snn.Leaky(beta=beta, spike_grad=spike_grad)
                                           for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem1, mem2, mem3 = self.lif1.init_leaky(), self.lif2.init_leaky(), self.lif3.init_leaky()
        mem3_rec = []
        for _ in range(self.num_steps):
            cur1 = self.conv1(x)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.conv2(nn.functional.max_pool2d(spk1, 2))
            spk2, mem2 = self.lif2(cur2, mem2)
            cur3 = self.fc1(nn.functional.max_pool2d(spk2, 2).flatten(1))
            spk3, mem3 = self.lif3(cur3, mem3)
            mem3_rec.append(mem3)
        return torch.stack(mem3_rec).mean(0)


def notebook_logits(net: NotebookNet, support_x: torch.Tensor, support_y: torch.Tensor,
                    query_x: torch.Tensor, way: int) -> torch.Tensor:
    """``-||f(q) - c_k||``: two forwards, per-class prototype loop -> ``[Q, way]``."""
    support, query = net(support_x), net(query_x)
    prototypes = torch.stack([support[support_y == k].mean(0) for k in range(way)])
    return -torch.sqrt(((query.unsqueeze(1) - prototypes.unsqueeze(0)) ** 2).sum(-1))


def notebook_train_step(net: NotebookNet, optimizer: torch.optim.Optimizer, episode) -> float:
    """One Adam step on the episode's query cross-entropy (the notebook's loop body)."""
    net.train()
    logits = notebook_logits(net, episode.support_x, episode.support_y, episode.query_x,
                             episode.way)
    loss = nn.functional.cross_entropy(logits, episode.query_y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _pairs(ref: NotebookNet, net: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """Corresponding modules: ``(ref's, net's)``."""
    ops = net.ops
    return [(ref.conv1, ops[0]), (ref.conv2, ops[1]), (ref.fc1, ops[2][1]),
            *zip((ref.lif1, ref.lif2, ref.lif3), net.lifs, strict=True)]


def load_into(ref: NotebookNet, net: nn.Module) -> NotebookNet:
    """Copy a ``SpikingConvNet(backbone=notebook, padding=valid)``'s weights into ``ref``."""
    _copy([(src, dst) for dst, src in _pairs(ref, net)])
    return ref


def load_from(net: nn.Module, ref: NotebookNet) -> nn.Module:
    """Copy ``ref``'s weights into a ``SpikingConvNet(backbone=notebook, padding=valid)``."""
    _copy(_pairs(ref, net))
    return net


def _copy(pairs: list[tuple[nn.Module, nn.Module]]) -> None:
    with torch.no_grad():
        for src, dst in pairs:
            for name in ("weight", "bias", "beta", "threshold"):
                if hasattr(src, name) and isinstance(getattr(src, name), torch.Tensor):
                    getattr(dst, name).copy_(getattr(src, name))
