"""Convolutional embedding networks of LIF neurons (snnTorch), with an ANN twin.

The network is processed layer by layer over all time steps at once: a block's synaptic
operation (conv or linear) runs on the ``[T*B, ...]`` batch in one call, then its LIF neurons
scan over time (``snnexp.models.fused_lif.leaky_scan``: snnTorch's ``Leaky`` fused over all
steps). This is exact for feed-forward SNNs (no layer feeds back) and turns ``T`` small
convolutions into one large one. On a static input (``encoder=direct``) the first operation is
computed once, not once per step.

LIF (``snntorch.Leaky``, reset by subtraction, reset from the previous step)::

    r[t] = H(v[t-1] - theta)            (detached)
    v[t] = beta * v[t-1] + I[t] - r[t] * theta
    s[t] = H(v[t] - theta)              (surrogate gradient in the backward pass)

``neuron="relu"`` builds the ANN twin: the same layers with ReLU and no time steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import snntorch as snn
import torch
from torch import nn

from snnexp.models.fused_lif import leaky_scan


@dataclass(frozen=True)
class BlockSpec:
    """One layer: ``kind`` ``conv`` (``out`` channels, ``kernel``) or ``linear`` (``out`` units)."""

    kind: str
    out: int
    kernel: int = 0
    pool: bool = False
    batchnorm: bool = False


def backbone_specs(backbone: str, embedding_dim: int) -> list[BlockSpec]:
    """Layer lists of the named backbones."""
    if backbone == "notebook":  # conv16@5x5-LIF-pool2-conv32@3x3-LIF-pool2-fc64-LIF
        return [BlockSpec("conv", 16, 5, pool=True), BlockSpec("conv", 32, 3, pool=True),
                BlockSpec("linear", embedding_dim)]
    if backbone == "snell4":  # Snell et al. 2017: 4 x (conv64@3x3-BN-LIF-pool2)
        return [BlockSpec("conv", 64, 3, pool=True, batchnorm=True) for _ in range(4)]
    raise ValueError(f"unknown backbone {backbone}")


class SpikingConvNet(nn.Module):
    """Embedding network. ``forward`` maps time-first inputs to embeddings ``[B, D]``.

    Args:
        input_shape: ``(C, H, W)`` of one image.
        specs: the layers (``backbone_specs``).
        neuron: ``"lif"`` or ``"relu"`` (ANN twin).
        padding: ``"same"`` (any input size) or ``"valid"``.
        readout: ``"membrane"`` (time-mean membrane of the last LIF layer, which spikes and
            resets as the others do: the notebook's readout), ``"integrator"`` (the last layer
            is a non-spiking leaky integrator ``v[t] = beta * v[t-1] + I[t]``, no threshold and
            no reset; the embedding is its time-mean membrane, linear in the spikes it
            receives) or ``"spikes"`` (time-mean spikes of the last layer).
    """

    def __init__(self, input_shape: tuple[int, int, int], specs: list[BlockSpec], *,
                 neuron: str = "lif", padding: str = "same", beta: float = 0.95,
                 learn_beta: bool = False, threshold: float = 1.0, readout: str = "membrane",
                 spike_grad: Callable | None = None) -> None:
        super().__init__()
        self.neuron, self.readout, self.specs = neuron, readout, specs
        self.ops, self.norms, self.lifs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.macs: list[int] = []  # multiply-accumulates per sample of each op
        self.fan_out: list[int] = []  # synapses leaving each input unit of each op
        shape = tuple(input_shape)
        for i, spec in enumerate(specs):
            op, shape_out = _make_op(spec, shape, padding)
            reset = "none" if readout == "integrator" and i == len(specs) - 1 else "subtract"
            self.ops.append(op)
            self.norms.append(nn.BatchNorm2d(spec.out) if spec.batchnorm else nn.Identity())
            self.lifs.append(snn.Leaky(beta=beta, threshold=threshold, spike_grad=spike_grad,
                                       learn_beta=learn_beta, reset_mechanism=reset))
            self.macs.append(_macs(op, shape, shape_out))
            self.fan_out.append(spec.out * spec.kernel**2 if spec.kind == "conv" else spec.out)
            shape = shape_out if not spec.pool else (shape_out[0], shape_out[1] // 2,
                                                     shape_out[2] // 2)
            if min(shape[1:] if len(shape) == 3 else shape) < 1:
                raise ValueError(f"input {tuple(input_shape)} is too small for this backbone")
        self.embedding_dim = int(torch.tensor(shape).prod())
        self.activity: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.record = False  # when set, forward keeps every layer's spikes (and last membranes)
        self.recorded: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, num_steps: int, static: bool) -> torch.Tensor:
        """Embed a batch.

        Args:
            x: ``[B, C, H, W]`` when ``static`` (the same input at each of ``num_steps`` steps,
                and always for the ANN twin), else ``[T, B, C, H, W]``.

        Returns:
            ``[B, D]`` embeddings. In eval mode ``self.activity`` then holds, per layer, the
            spikes of its neurons and the spikes it sends on (after pooling), summed over the
            batch (the ``integrator`` readout's last layer emits none and is left out).
        """
        if self.neuron == "relu":
            return self._forward_ann(x if static else x.mean(0))
        h, self.activity, self.recorded = x, [], []
        for i, (op, norm, lif) in enumerate(zip(self.ops, self.norms, self.lifs, strict=False)):
            last = i == len(self.ops) - 1
            first_static = static and i == 0
            cur = self._current(op, norm, h, first_static)
            spikes, mems = leaky_scan(lif, cur, num_steps, first_static, keep_mem=last)
            out = self._pool(spikes, i)
            spiking = not (last and self.readout == "integrator")  # the integrator never fires
            if not self.training and spiking:  # spike counts for spike_stats(); not in training
                self.activity.append((spikes.detach().sum(), out.detach().sum()))
            if self.record:  # [T, B, ...] per spiking layer, then the last layer's membranes
                self.recorded += ([spikes.detach()] if spiking else []) + \
                    ([mems.detach()] if last else [])
            h = self._pool(mems, i) if last and self.readout != "spikes" else out
        return h.mean(0).flatten(1)

    @staticmethod
    def _current(op: nn.Module, norm: nn.Module, h: torch.Tensor, static: bool) -> torch.Tensor:
        """``[T, B, ...]`` input current; ``[B, ...]`` when the input is static.

        Conv currents are channels-last in memory (oneDNN's fast layout for conv and max-pool
        on CPU); the shapes stay ``[..., C, H, W]``.
        """
        flat = h if static else h.flatten(0, 1)
        cur = norm(op(flat))
        if cur.dim() == 4:
            cur = cur.contiguous(memory_format=torch.channels_last)
        return cur if static else cur.unflatten(0, h.shape[:2])

    def _pool(self, h: torch.Tensor, i: int) -> torch.Tensor:
        if not self.specs[i].pool:
            return h
        return nn.functional.max_pool2d(h.flatten(0, 1), 2).unflatten(0, h.shape[:2])

    def _forward_ann(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (op, norm) in enumerate(zip(self.ops, self.norms, strict=False)):
            pre = norm(op(h))
            last = i == len(self.ops) - 1
            h = pre if last and self.readout != "spikes" else torch.relu(pre)
            if self.specs[i].pool:
                h = nn.functional.max_pool2d(h, 2)
        return h.flatten(1)


def _make_op(spec: BlockSpec, shape: tuple[int, ...], padding: str) -> tuple[nn.Module, tuple]:
    if spec.kind == "linear":
        features = int(torch.tensor(shape).prod())
        op = nn.Sequential(nn.Flatten(), nn.Linear(features, spec.out))
        return op, (spec.out,)
    pad = spec.kernel // 2 if padding == "same" else 0
    op = nn.Conv2d(shape[0], spec.out, spec.kernel, padding=pad)
    height, width = (s + 2 * pad - spec.kernel + 1 for s in shape[1:])
    return op, (spec.out, height, width)


def _macs(op: nn.Module, shape_in: tuple, shape_out: tuple) -> int:
    if isinstance(op, nn.Conv2d):
        k = op.kernel_size[0] * op.kernel_size[1]
        return int(shape_out[0] * shape_out[1] * shape_out[2] * shape_in[0] * k)
    return int(torch.tensor(shape_in).prod()) * int(shape_out[0])
