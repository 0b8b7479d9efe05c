"""Prototypical Network (Snell et al. 2017) with a spiking embedding network passed in.

For an episode, support and query images go through the embedding network in one batched
forward; the logits are negative distances to the class prototypes (``snnexp.prototypes``),
and training minimises their cross-entropy.

The embedding network (``model.backbone``) is any ``nn.Module`` with

    forward(x, num_steps) -> [B, D]

where ``x`` is ``[T, B, C, H, W]`` (``T = num_steps``, the encoder's output) or, for a static
encoder (``encoder=direct``), ``[B, C, H, W]``: the same input at each step. Its snnTorch
neurons (``snntorch.SpikingNeuron`` modules) are found by ``SpikeRecorder``'s forward hooks;
an attribute ``time_steps = False`` marks a network without time steps (it is given the images
unencoded), ``macs`` (per-sample multiply-accumulates of each synaptic op) enables the energy
estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import snntorch as snn
import torch
from torch import nn

from snnexp import neurobench
from snnexp.energy import energy_figures
from snnexp.errors import UserError
from snnexp.models.base import Learner
from snnexp.models.protonet.recorder import SYNAPTIC, SpikeRecorder, fan_out
from snnexp.precision import autocast, check_precision
from snnexp.prototypes import prototype_logits


class ProtoNetLearner(Learner):
    """Spiking Prototypical Network meta-trained with a torch optimizer.

    Args:
        backbone: the embedding network, or a callable ``backbone(input_shape=...)`` that
            builds it (a ``_partial_`` node of ``conf/model/backbone/``).
        encoder: maps ``[B, C, H, W]`` images to ``[T, B, C, H, W]`` inputs (``snnexp.encoding``).
        input_shape: ``(C, H, W)``.
        optimizer: a partial ``torch.optim`` constructor, finished here with the parameters.
        device: torch device. seed: unused (torch is seeded by the run).
        scheduler: a partial ``torch.optim.lr_scheduler`` constructor (or ``None``: constant lr),
            finished here with the optimizer and stepped once per meta-training episode.
        num_steps: ``T``, time steps per sample. distance: ``squared`` or ``euclidean``
            (``snnexp.prototypes.prototype_logits``).
        precision: ``fp32`` or ``bf16`` (the network's synaptic operations under autocast;
            membranes, embeddings and the optimizer stay float32: ``snnexp.precision``).
    """

    name = "protonet"
    uses_optimizer = True

    def __init__(self, backbone: nn.Module | Callable[..., nn.Module], encoder: Any,
                 input_shape: tuple[int, int, int], optimizer: Callable | None = None,
                 device: str | torch.device = "cpu", seed: int = 0,
                 scheduler: Callable | None = None, *, num_steps: int, distance: str,
                 precision: str) -> None:
        self.encoder, self.num_steps, self.device = encoder, num_steps, torch.device(device)
        self.distance, self.precision = distance, precision
        check_precision(precision, self.device)
        if isinstance(backbone, str):  # a group option set as a key (Hydra's compose API)
            raise UserError(f"model.backbone={backbone}: choose it as a config group, "
                            f"model/backbone={backbone}")
        net = backbone if isinstance(backbone, nn.Module) else \
            backbone(input_shape=tuple(input_shape))
        self.net = net.to(self.device)
        self.optimizer = optimizer(self.net.parameters()) if optimizer is not None else None
        self.scheduler = scheduler(self.optimizer) if scheduler and self.optimizer else None
        self.reset_spike_stats()

    @property
    def analog(self) -> bool:
        """Whether the network has no time steps (the ANN twin): it takes the images."""
        return not getattr(self.net, "time_steps", True)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` images -> ``[B, D]`` embeddings (encodes them first).

        In eval mode the forward's spikes, SynOps and MACs are added to ``spike_stats()``."""
        static = getattr(self.encoder, "static", False) or self.analog
        x = images if static else self.encoder(images, self.num_steps)
        if self.analog and hasattr(self.encoder, "summed"):  # the ANN twin on event frames
            x = self.encoder.summed(images)
        if self.net.training:
            return self._forward(x)
        with SpikeRecorder(self.net) as record:
            embeddings = self._forward(x)
        self._count(images.shape[0], x if not static else None, record, images)
        return embeddings

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's ``[B, D]`` float32 embeddings at this learner's precision."""
        with autocast(self.precision, self.device):
            return self.net(x, self.num_steps).float()

    def _episode_logits(self, support_x: torch.Tensor, support_y: torch.Tensor,
                        query_x: torch.Tensor) -> torch.Tensor:
        way = int(support_y.max()) + 1
        embeddings = self.embed(torch.cat([support_x, query_x]))
        n_support = support_x.shape[0]
        return prototype_logits(embeddings[:n_support], support_y, embeddings[n_support:], way,
                                self.distance)

    def meta_train_step(self, episode: Any) -> dict[str, float]:
        """One optimizer step on the episode's query cross-entropy (and one scheduler step);
        returns the episode's ``loss``, ``acc`` and the ``lr`` it was trained with."""
        if self.optimizer is None:
            raise RuntimeError("ProtoNetLearner needs an optimizer to meta-train")
        self.net.train()
        logits = self._episode_logits(episode.support_x, episode.support_y, episode.query_x)
        loss = nn.functional.cross_entropy(logits, episode.query_y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        acc = (logits.argmax(1) == episode.query_y).float().mean()
        return {"loss": loss.item(), "acc": acc.item(), "lr": lr}

    @torch.no_grad()
    def predict(self, support_x: Any, support_y: Any, query_x: Any) -> torch.Tensor:
        self.net.eval()
        as_tensor = lambda a, dtype: torch.as_tensor(a, dtype=dtype, device=self.device)
        return self._episode_logits(as_tensor(support_x, torch.float32),
                                    as_tensor(support_y, torch.int64),
                                    as_tensor(query_x, torch.float32))

    @torch.no_grad()
    def summaries(self, support_x: Any, support_y: Any) -> dict[str, dict[str, Any]]:
        """TensorBoard pictures of one support sample's forward, the weights and embeddings.

        ``raster/layers``: the spike raster of sample 0, one panel per spiking layer (and
        its input first, when the encoder's input changes over time); ``frames/input``: that
        input frame by frame (``encoder=frames``: the events of each time bin);
        ``membrane/last_layer``: the last layer's membrane traces with its threshold (figures
        of ``snnexp.plots``); ``weights/<name>`` histograms; the support embeddings with their
        labels for the projector.
        """
        from snnexp.plots import input_frames_figure, membrane_figure, raster_figure

        self.net.eval()
        figures: dict[str, Any] = {}
        with SpikeRecorder(self.net, rasters=True) as record:
            embeddings = self.embed(support_x)
        first = lambda trace: trace[:, 0].float().cpu().numpy()  # sample 0: [T, ...]
        inputs = {}
        if getattr(self.encoder, "events", False) and not self.analog:
            inputs["input"] = first(self.encoder(support_x[:1], self.num_steps))
            figures["frames/input"] = input_frames_figure(inputs["input"])
        if record.rasters:
            figures["raster/layers"] = raster_figure(
                {**inputs, **{f"layer{i + 1}": first(layer)
                              for i, layer in enumerate(record.rasters)}})
        if record.membrane is not None:
            membrane, threshold = record.membrane
            figures["membrane/last_layer"] = membrane_figure(
                first(membrane), threshold, name=f"layer{len(record.neurons)}")
        weights = {f"weights/{name}.weight": op.weight.detach().cpu()
                   for name, op in self.net.named_modules() if isinstance(op, SYNAPTIC)}
        return {"figures": figures, "histograms": weights,
                "embeddings": {"embeddings/support": (embeddings.cpu(), support_y.cpu())}}

    def state_dict(self) -> dict[str, Any]:
        state = {"net": self.net.state_dict()}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        if self.optimizer is not None and "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            # the schedule's progress comes from the checkpoint, its settings from this config
            # (a resume may change train_episodes, cosine's T_max)
            progress = {k: v for k, v in state["scheduler"].items() if k in SCHEDULE_PROGRESS}
            self.scheduler.load_state_dict({**self.scheduler.state_dict(), **progress})

    def load_network_weights(self, learner_state: dict[str, Any]) -> None:
        """Start from another protonet run's network (``init_from``; its checkpoint's
        ``learner`` entry): its synaptic weights and batch norms, with this run's neuron
        parameters (the state of the ``snntorch.SpikingNeuron`` modules: beta, threshold,
        reset); the optimizer and the lr schedule stay fresh. The ANN twin's weights fit its
        SNN (the same parameters). ``RuntimeError`` when the weights do not fit."""
        weights = learner_state.get("net")
        if weights is None:
            raise UserError("model=protonet starts only from another model=protonet run's "
                            "weights")
        own = self.net.state_dict()
        neurons = {f"{name}.{key}" for name, module in self.net.named_modules()
                   if isinstance(module, snn.SpikingNeuron) for key in module.state_dict()}
        self.net.load_state_dict({k: own[k] if k in neurons else v for k, v in weights.items()})

    def _count(self, batch: int, encoded: torch.Tensor | None, record: SpikeRecorder,
               images: torch.Tensor | None = None) -> None:
        """Accumulate spikes, SynOps (spikes x fan-out), analog MACs and the counts of the
        NeuroBench metrics (neuron-steps, non-zero analog inputs) of an eval forward."""
        self._samples += batch
        stats, macs = self._totals, getattr(self.net, "macs", None)
        add = lambda key, value: stats.__setitem__(key, stats.get(key, 0.0) + value)  # noqa: E731
        if self.analog:
            for i, op_macs in enumerate(macs or []):
                add(f"layer{i + 1}/macs", op_macs * batch)
            return
        if encoded is None:  # analog input: the first layer does MACs once per forward
            if macs:
                add("input/macs", macs[0] * batch)
            if images is not None:
                add("input/nonzero", float((images != 0).sum()))
        else:
            spikes = float(encoded.sum())
            first = fan_out(record.ops[0]) if record.ops else 0
            add("input/spikes", spikes)
            add("input/synops", spikes * first)
        for i, (spikes, (sent, reach)) in enumerate(zip(record.spikes, record.sent, strict=True)):
            add(f"layer{i + 1}/spikes", spikes)
            add(f"layer{i + 1}/synops", sent * reach)
        for i, slots in enumerate(record.activations):
            add(f"layer{i + 1}/activations", slots)

    def spike_stats(self) -> dict[str, float]:
        """Per-sample spikes, SynOps and MACs of the eval forwards since the last reset, with
        the energy estimate of ``snnexp.energy`` (``energy/snn_pj`` vs ``energy/ann_pj``)."""
        n = max(self._samples, 1)
        stats = {key: value / n for key, value in self._totals.items()
                 if not key.endswith(("/activations", "/nonzero"))}
        for kind in ("spikes", "synops", "macs"):
            parts = [v for k, v in stats.items() if k.endswith(f"/{kind}")]
            if parts:
                stats[f"total/{kind}"] = sum(parts)
        macs = getattr(self.net, "macs", None)
        if self._samples and macs:
            stats.update(energy_figures(stats, ann_macs=sum(macs)))
        return stats

    def neurobench(self) -> dict[str, float]:
        """NeuroBench's metrics per layer and total, per sample, of the eval forwards since
        the last reset (``snnexp.neurobench``). Layer ``l`` is synaptic op ``l`` with its
        neurons: its dense operations are ``macs_l`` per step (once for the first layer on a
        static analog input, as computed), its effective ACs the spikes it receives times
        their fan-out (the SynOps of ``spike_stats``), its effective MACs the non-zero analog
        inputs times their fan-out."""
        net, n = self.net, max(self._samples, 1)
        stats = {key: value / n for key, value in self._totals.items()}
        static = getattr(self.encoder, "static", False)  # analog input, computed once
        steps = 1 if self.analog else self.num_steps
        blocks = list(zip(getattr(net, "ops", []), getattr(net, "norms", []),
                          getattr(net, "lifs", []), strict=False))
        layers = []
        for i, (op, norm, lif) in enumerate(blocks):
            synaptic = [m for m in op.modules() if isinstance(m, SYNAPTIC)][0]
            modules = (op, norm, lif)
            first = i == 0
            inputs = stats.get("input/synops", 0.0) if first else \
                stats.get(f"layer{i}/synops", 0.0)
            layers.append(neurobench.LayerCount(
                name=f"layer{i + 1}",
                activations=stats.get(f"layer{i + 1}/activations", 0.0),
                spikes=stats.get(f"layer{i + 1}/spikes", 0.0),
                dense=float(net.macs[i]) * (1 if (first and static) or self.analog else steps),
                # the ANN twin: its MACs counted as effective (zero activations not counted)
                macs=float(net.macs[i]) if self.analog else
                stats.get("input/nonzero", 0.0) * fan_out(synaptic) if first else 0.0,
                acs=0.0 if self.analog else inputs,
                footprint=float(sum(t.numel() * t.element_size() for m in modules
                                    for t in (*m.parameters(), *m.buffers()))),
                weights=float(synaptic.weight.numel()),
                zero_weights=float((synaptic.weight == 0).sum())))
        return neurobench.figures(layers) if self._samples else {}

    def reset_spike_stats(self) -> None:
        self._totals: dict[str, float] = {}
        self._samples = 0


# entries of an lr scheduler's state_dict that record how far it has run (not its settings)
SCHEDULE_PROGRESS = ("last_epoch", "_step_count", "_last_lr", "base_lrs", "_is_initial",
                     "_get_lr_called_within_step")

