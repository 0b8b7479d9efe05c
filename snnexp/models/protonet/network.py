"""Convolutional embedding networks of LIF neurons (snnTorch), with an ANN twin.

The network is processed layer by layer over all time steps at once: a block's synaptic
operation (conv or linear) runs on the ``[T*B, ...]`` batch in one call, then its LIF neurons
scan over time (``snnexp.models.protonet.lif.LeakyLayer``: snnTorch's ``Leaky`` fused over all
steps). This is exact for feed-forward SNNs (no layer feeds back) and turns ``T`` small
convolutions into one large one. On a static input (``encoder=direct``) the first operation is
computed once, not once per step. On the CPU, a hidden block whose spikes are max-pooled runs its
neurons and the pool as one kernel (``snnexp.models.protonet.lif_maxpool``: the same spikes and
gradients, without the full-size spike and membrane tensors).

LIF (``snntorch.Leaky``, reset by subtraction, reset from the previous step)::

    r[t] = H(v[t-1] - theta)            (detached)
    v[t] = beta * v[t-1] + I[t] - r[t] * theta
    s[t] = H(v[t] - theta)              (surrogate gradient in the backward pass)

``neuron="relu"`` builds the ANN twin: the same layers with ReLU and no time steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from snnexp.models.protonet import lif_maxpool
from snnexp.models.protonet.lif import LeakyIntegrator, LeakyLayer


@dataclass(frozen=True)
class BlockSpec:
    """One layer: ``kind`` ``conv`` (``out`` channels, ``kernel``) or ``linear`` (``out`` units)."""

    kind: str
    out: int
    kernel: int = 0
    pool: bool = False
    batchnorm: bool = False


class SpikingConvNet(nn.Module):
    """Embedding network: ``forward(x, num_steps)`` maps inputs to embeddings ``[B, D]``.

    Args:
        input_shape: ``(C, H, W)`` of one image.
        specs: the layers (``snnexp.models.protonet.backbones``).
        neuron: ``"lif"`` or ``"relu"`` (ANN twin).
        padding: ``"same"`` (any input size) or ``"valid"``.
        beta, learn_beta, threshold, spike_grad: the ``snntorch.Leaky`` neurons of every layer.
        readout: ``"membrane"`` (time-mean membrane of the last LIF layer, which spikes and
            resets as the others do: the notebook's readout), ``"integrator"`` (the last layer
            is a non-spiking leaky integrator ``v[t] = beta * v[t-1] + I[t]``, no threshold and
            no reset; the embedding is its time-mean membrane, linear in the spikes it
            receives) or ``"spikes"`` (time-mean spikes of the last layer).
        spike_pool: the 2x2 pooling of the spikes of every pooling block but the last:
            ``"max"`` (the OR of the four spikes at each step) or ``"avg"`` (their mean, graded
            in quarters: the next layer's input is linear in the spikes, and one spurious spike
            moves it by a quarter instead of setting the pooled output).
        readout_pool: the 2x2 pooling of the last layer when its block pools (``snell4``):
            ``"max"`` or ``"avg"``. An average of membranes is linear, so the integrator
            readout with ``avg`` maps exactly to NIR (``snnexp.nir_export``); a max-pool over
            membranes does not. Both ``"max"`` when not given: configs saved before the keys,
            backbones without them.

    Attributes:
        time_steps: ``False`` for the ANN twin (it takes the images, unencoded).
        macs: multiply-accumulates per sample of each synaptic op (the energy estimate).
    """

    def __init__(self, input_shape: tuple[int, int, int], specs: list[BlockSpec], *,
                 neuron: str, padding: str, beta: float, learn_beta: bool, threshold: float,
                 readout: str, spike_grad: Callable, spike_pool: str = "max",
                 readout_pool: str = "max") -> None:
        super().__init__()
        self.readout, self.specs = readout, specs
        self.spike_pool, self.readout_pool = spike_pool, readout_pool
        self.time_steps = neuron != "relu"
        self.ops, self.norms, self.lifs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.macs: list[int] = []  # multiply-accumulates per sample of each op
        shape = tuple(input_shape)
        self.input_dims = len(shape)
        for i, spec in enumerate(specs):
            op, shape_out = _make_op(spec, shape, padding)
            layer = LeakyIntegrator if readout == "integrator" and i == len(specs) - 1 else \
                LeakyLayer
            self.ops.append(op)
            self.norms.append(nn.BatchNorm2d(spec.out) if spec.batchnorm else nn.Identity())
            self.lifs.append(layer(beta=beta, threshold=threshold, spike_grad=spike_grad,
                                   learn_beta=learn_beta,
                                   reset_mechanism="subtract" if layer is LeakyLayer else "none"))
            self.macs.append(_macs(op, shape, shape_out))
            shape = shape_out if not spec.pool else (shape_out[0], shape_out[1] // 2,
                                                     shape_out[2] // 2)
            if min(shape[1:] if len(shape) == 3 else shape) < 1:
                raise ValueError(f"input {tuple(input_shape)} is too small for this backbone")
        self.embedding_dim = int(torch.tensor(shape).prod())

    def forward(self, x: torch.Tensor, num_steps: int) -> torch.Tensor:
        """Embed a batch.

        Args:
            x: ``[T, B, C, H, W]`` (``T = num_steps``), or static ``[B, C, H, W]``: the same
                input at each of ``num_steps`` steps (always for the ANN twin).

        Returns:
            ``[B, D]`` embeddings.
        """
        static = x.dim() == self.input_dims + 1
        if not self.time_steps:
            return self._forward_ann(x if static else x.mean(0))
        h = x
        for i, (op, norm, lif) in enumerate(zip(self.ops, self.norms, self.lifs, strict=False)):
            last = i == len(self.ops) - 1
            first_static = static and i == 0
            cur = self._current(op, norm, h, first_static)
            if not last and self._pools_max(i) and lif_maxpool.applies(lif, cur):
                h = lif_maxpool.leaky_maxpool(lif, cur, num_steps, first_static)
                continue
            spikes, mems = lif(cur, num_steps, first_static, keep_mem=last)
            out = self.pool(spikes, i)
            h = self.pool(mems, i) if last and self.readout != "spikes" else out
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

    def pool(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """Block ``i``'s pooling of ``[T, B, C, H, W]`` over all steps (the identity for a
        block without pooling)."""
        if not self.specs[i].pool:
            return h
        return self._pool2d(h.flatten(0, 1), i).unflatten(0, h.shape[:2])

    def _pool2d(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """2x2 pooling of ``[N, C, H, W]``: ``readout_pool`` on the last layer, ``spike_pool``
        on the others."""
        if self.pool_kinds()[i] == "avg":
            return nn.functional.avg_pool2d(h, 2)
        out = nn.functional.max_pool2d(h, 2)
        if out.requires_grad and h.is_contiguous(memory_format=torch.channels_last):
            out.register_hook(channels_last_grad)
        return out

    def _pools_max(self, i: int) -> bool:
        """Whether block ``i`` max-pools its output."""
        return self.specs[i].pool and self.pool_kinds()[i] == "max"

    def pool_kinds(self) -> list[str]:
        """Each block's 2x2 pooling, ``"max"`` or ``"avg"`` (used only where the block pools)."""
        return [self.spike_pool] * (len(self.specs) - 1) + [self.readout_pool]

    def events_per_unit(self, k: int) -> float:
        """Spike events per unit of synaptic op ``k``'s input: 4 after a 2x2 average pool of
        spikes (each spike arrives as a quarter; on hardware a sum pool with the 1/4 folded
        into the weights, every spike an event), else 1 (0/1 spikes, max-pooled or not)."""
        before = k - 1
        avg = k > 0 and self.specs[before].pool and self.pool_kinds()[before] == "avg"
        return 4.0 if avg and self.time_steps else 1.0

    def _forward_ann(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (op, norm) in enumerate(zip(self.ops, self.norms, strict=False)):
            pre = norm(op(h))
            last = i == len(self.ops) - 1
            h = pre if last and self.readout != "spikes" else torch.relu(pre)
            if self.specs[i].pool:
                h = self._pool2d(h, i)
        return h.flatten(1)


def channels_last_grad(grad: torch.Tensor) -> torch.Tensor:
    """A max-pool output's gradient hook: the gradient in channels-last memory, as the pool's
    input lies.

    Max-pool's CPU backward is several times slower when the incoming gradient's layout differs
    from that of its channels-last input, as it does after a flatten into a linear layer (whose
    gradient comes back contiguous). The values are the same either way."""
    return grad.contiguous(memory_format=torch.channels_last)


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
