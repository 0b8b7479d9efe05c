"""Spiking activity of a network's forward passes, read through forward hooks.

``with SpikeRecorder(net) as record: net(x, num_steps)`` registers hooks on the network's
modules while the block runs and removes them after it; the network needs no recording code
of its own, so any ``nn.Module`` built from snnTorch neurons can be measured:

- spiking layers: the ``snntorch.SpikingNeuron`` modules, in module order. A
  ``LeakyLayer`` call returns a whole sequence (spikes ``[T, B, ...]``, membranes); any other
  neuron returns one step (``spk`` or a tuple ``(spk, ..., mem)``) per call, and the steps are
  stacked in call order. Layers whose spikes are not an output (``fires = False``, the
  ``integrator`` readout) are left out of the counts and rasters.
- synaptic layers: the ``Conv``/``Linear`` modules, in module order. The events into the
  ``k``-th of them (``k >= 1``; the sum of its input, times ``net.events_per_unit(k)`` where
  the network defines it: 4 after an average pool of spikes) are the events the ``k``-th
  spiking layer sends on (after pooling); times its fan-out (synapses leaving one input unit:
  ``out_channels / groups * kernel`` or ``out_features``) they are that layer's SynOps.
"""

from __future__ import annotations

import math
from typing import Any

import snntorch as snn
import torch
from torch import nn

from snnexp.models.protonet.lif import LeakyLayer

SYNAPTIC = (nn.modules.conv._ConvNd, nn.Linear)


def fan_out(op: nn.Module) -> int:
    """Synapses leaving one input unit of a ``Conv`` or ``Linear`` module."""
    if isinstance(op, nn.Linear):
        return op.out_features
    return op.out_channels // op.groups * math.prod(op.kernel_size)


def spiking_layers(net: nn.Module) -> list[nn.Module]:
    """The snnTorch neuron modules of ``net``, in module order."""
    return [m for m in net.modules() if isinstance(m, snn.SpikingNeuron)]


def synaptic_layers(net: nn.Module) -> list[nn.Module]:
    """The ``Conv`` / ``Linear`` modules of ``net``, in module order."""
    return [m for m in net.modules() if isinstance(m, SYNAPTIC)]


class SpikeRecorder:
    """Collects spike counts (and, with ``rasters=True``, spike and membrane traces) of the
    forward passes run while the context is open.

    Attributes (filled by the forwards):
        spikes: per firing layer, its spikes summed over the batch, steps and calls.
        sent: per firing layer, the events it sends on (the input of the next synaptic
            layer; ``0.0`` for the last), and ``fan_out`` the fan-out they reach.
        rasters: per firing layer, spikes ``[T, B, ...]`` (``rasters=True``).
        membrane: the last spiking layer's membranes ``[T, B, ...]`` and ``threshold``
            (``None`` for a layer that never fires) (``rasters=True``).
    """

    def __init__(self, net: nn.Module, rasters: bool = False) -> None:
        self.neurons = spiking_layers(net)
        self.ops = synaptic_layers(net)
        per_unit = getattr(net, "events_per_unit", lambda k: 1.0)
        self._per_unit = [per_unit(k) for k in range(len(self.ops))]
        self.keep = rasters
        self._handles: list[Any] = []
        self._spikes: dict[int, float] = {}
        self._slots: dict[int, float] = {}  # neuron-steps: the activations of NeuroBench
        self._events: dict[int, float] = {}
        self._traces: dict[int, list[torch.Tensor]] = {}
        self._mems: dict[int, list[torch.Tensor]] = {}

    def __enter__(self) -> SpikeRecorder:
        for i, neuron in enumerate(self.neurons):
            self._handles.append(neuron.register_forward_hook(self._neuron_hook(i)))
        for k, op in enumerate(self.ops[1:], start=1):
            self._handles.append(op.register_forward_pre_hook(self._op_hook(k)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _neuron_hook(self, i: int):
        last = i == len(self.neurons) - 1

        def hook(module: nn.Module, args: Any, out: Any) -> None:
            spikes = out[0] if isinstance(out, tuple) else out
            mems = out[-1] if isinstance(out, tuple) else None
            if getattr(module, "fires", True):
                self._spikes[i] = self._spikes.get(i, 0.0) + float(spikes.detach().sum())
                self._slots[i] = self._slots.get(i, 0.0) + float(spikes.numel())
                if self.keep:
                    self._traces.setdefault(i, []).append(spikes.detach())
            if self.keep and last and mems is not None:
                self._mems.setdefault(i, []).append(mems.detach())
        return hook

    def _op_hook(self, k: int):
        def hook(module: nn.Module, args: Any) -> None:
            events = float(args[0].detach().sum()) * self._per_unit[k]
            self._events[k] = self._events.get(k, 0.0) + events
        return hook

    def _firing(self) -> list[int]:
        return [i for i in range(len(self.neurons)) if i in self._spikes]

    @property
    def spikes(self) -> list[float]:
        return [self._spikes[i] for i in self._firing()]

    @property
    def activations(self) -> list[float]:
        """Neuron-steps (spike tensor elements) per firing layer, summed over the calls."""
        return [self._slots[i] for i in self._firing()]

    @property
    def sent(self) -> list[tuple[float, int]]:
        """``(events, fan_out)`` per firing layer: into the synaptic layer after it."""
        out = []
        for n in range(1, len(self._firing()) + 1):
            known = n < len(self.ops) and n in self._events
            out.append((self._events[n], fan_out(self.ops[n])) if known else (0.0, 0))
        return out

    @property
    def rasters(self) -> list[torch.Tensor]:
        return [self._sequence(self._traces[i], self.neurons[i]) for i in self._firing()
                if i in self._traces]

    @property
    def membrane(self) -> tuple[torch.Tensor, float | None] | None:
        i = len(self.neurons) - 1
        if i not in self._mems:
            return None
        neuron = self.neurons[i]
        threshold = float(neuron.threshold) if getattr(neuron, "fires", True) else None
        return self._sequence(self._mems[i], neuron), threshold

    @staticmethod
    def _sequence(calls: list[torch.Tensor], neuron: nn.Module) -> torch.Tensor:
        """``[T, B, ...]``: a ``LeakyLayer``'s one call, or the stacked steps of a neuron."""
        return calls[0] if isinstance(neuron, LeakyLayer) else torch.stack(calls)
