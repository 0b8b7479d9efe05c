"""Prototypical Network (Snell et al. 2017) with a spiking embedding.

For an episode, support and query images go through the embedding network in one batched
forward. Class prototypes are the mean support embeddings ``c_k = mean_{i: y_i = k} f(x_i)``
(a scatter-add), and the logits are negative distances from ``torch.cdist``: squared Euclidean
``logit[q, k] = -||f(x_q) - c_k||^2`` (Snell et al., ``distance=squared``) or Euclidean
``-||f(x_q) - c_k||`` (the original notebook, ``distance=euclidean``); training minimises their
cross-entropy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from snnexp.energy import energy_figures
from snnexp.errors import UserError
from snnexp.models.base import Learner
from snnexp.models.spiking_convnet import SpikingConvNet, backbone_specs

CHOICES = {"backbone": ("notebook", "snell4"), "neuron": ("lif", "relu"),
           "padding": ("same", "valid"), "readout": ("membrane", "integrator", "spikes"),
           "distance": ("squared", "euclidean")}


def prototypes(embeddings: torch.Tensor, labels: torch.Tensor, way: int) -> torch.Tensor:
    """Mean embedding per class: ``[N, D]``, labels ``[N]`` in ``0..way-1`` -> ``[way, D]``."""
    sums = embeddings.new_zeros(way, embeddings.shape[1]).index_add_(0, labels, embeddings)
    counts = torch.bincount(labels, minlength=way).clamp_min(1).unsqueeze(1)
    return sums / counts.to(embeddings.dtype)


def prototype_logits(support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor,
                     way: int, distance: str = "squared") -> torch.Tensor:
    """``-||query - c_k||^2`` (``squared``) or ``-||query - c_k||`` (``euclidean``).

    Support ``[S, D]`` with labels ``[S]``, query ``[Q, D]`` -> logits ``[Q, way]``.
    """
    distances = torch.cdist(query, prototypes(support, support_y, way))
    return -distances.pow(2) if distance == "squared" else -distances


class ProtoNetLearner(Learner):
    """Spiking Prototypical Network meta-trained with a torch optimizer.

    Args:
        encoder: maps ``[B, C, H, W]`` images to ``[T, B, C, H, W]`` inputs (``snnexp.encoding``).
        input_shape: ``(C, H, W)``.
        optimizer: a partial ``torch.optim`` constructor, finished here with the parameters.
        scheduler: a partial ``torch.optim.lr_scheduler`` constructor (or ``None``: constant lr),
            finished here with the optimizer and stepped once per meta-training episode.
        device: torch device. seed: unused (torch is seeded by the run).
        backbone, neuron, padding, embedding_dim, num_steps, beta, learn_beta, threshold,
        readout, spike_grad, distance: see ``conf/model/protonet.yaml``.
    """

    name = "protonet"
    uses_optimizer = True

    def __init__(self, encoder: Any, input_shape: tuple[int, int, int],
                 optimizer: Callable | None = None, device: str | torch.device = "cpu",
                 seed: int = 0, scheduler: Callable | None = None, *,
                 backbone: str = "notebook", neuron: str = "lif", padding: str = "same",
                 embedding_dim: int = 64, num_steps: int = 50,
                 beta: float = 0.95, learn_beta: bool = False, threshold: float = 1.0,
                 readout: str = "membrane", spike_grad: Callable | None = None,
                 distance: str = "squared") -> None:
        _check_args(backbone=backbone, neuron=neuron, padding=padding, readout=readout,
                    distance=distance, num_steps=num_steps, beta=beta, threshold=threshold,
                    embedding_dim=embedding_dim)
        self.encoder, self.num_steps, self.device = encoder, num_steps, torch.device(device)
        self.distance = distance
        try:
            self.net = SpikingConvNet(tuple(input_shape), backbone_specs(backbone, embedding_dim),
                                      neuron=neuron, padding=padding, beta=beta,
                                      learn_beta=learn_beta, threshold=threshold,
                                      readout=readout, spike_grad=spike_grad).to(self.device)
        except ValueError as err:
            pools = ", ".join(f"{name} {sum(s.pool for s in backbone_specs(name, 1))}"
                              for name in CHOICES["backbone"])
            fix = "model.padding=same, " if padding != "same" else ""
            raise UserError(f"model.backbone={backbone}, model.padding={padding}: {err}; use "
                            f"{fix}a backbone with fewer 2x2 poolings ({pools}) or a larger "
                            "dataset image") from err
        self.optimizer = optimizer(self.net.parameters()) if optimizer is not None else None
        self.scheduler = scheduler(self.optimizer) if scheduler and self.optimizer else None
        self.reset_spike_stats()

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` images -> ``[B, D]`` embeddings (encodes them first)."""
        static = getattr(self.encoder, "static", False) or self.net.neuron == "relu"
        x = images if static else self.encoder(images, self.num_steps)
        embeddings = self.net(x, self.num_steps, static)
        if not self.net.training:
            self._count(images.shape[0], x if not static else None)
        return embeddings

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

        ``raster/layers``: the spike raster of sample 0, one panel per spiking layer;
        ``membrane/last_layer``: the last layer's membrane traces with its threshold (figures
        of ``snnexp.plots``); ``weights/<name>`` histograms; the support embeddings with their
        labels for the projector.
        """
        from snnexp.plots import membrane_figure, raster_figure

        self.net.eval()
        figures: dict[str, Any] = {}
        self.net.record = self.net.neuron == "lif"
        try:
            embeddings = self.embed(support_x)
        finally:
            self.net.record = False
        if self.net.recorded:
            *spikes, membrane = (layer[:, 0].float().cpu().numpy() for layer in self.net.recorded)
            self.net.recorded = []
            figures["raster/layers"] = raster_figure(
                {f"layer{i + 1}": layer for i, layer in enumerate(spikes)})
            fires = self.net.readout != "integrator"
            threshold = float(self.net.lifs[-1].threshold) if fires else None
            figures["membrane/last_layer"] = membrane_figure(
                membrane, threshold, name=f"layer{len(self.net.lifs)}")
        weights = {f"weights/{name}": param.detach().cpu()
                   for name, param in self.net.ops.named_parameters() if name.endswith("weight")}
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

    def _count(self, batch: int, encoded: torch.Tensor | None) -> None:
        """Accumulate spikes, SynOps (spikes x fan-out) and analog MACs of an eval forward."""
        self._samples += batch
        net, stats = self.net, self._totals
        if net.neuron == "relu":
            for i, macs in enumerate(net.macs):
                stats[f"layer{i + 1}/macs"] = stats.get(f"layer{i + 1}/macs", 0.0) + macs * batch
            return
        if encoded is None:  # analog input: the first layer does MACs once per forward
            stats["input/macs"] = stats.get("input/macs", 0.0) + net.macs[0] * batch
        else:
            spikes = float(encoded.sum())
            stats["input/spikes"] = stats.get("input/spikes", 0.0) + spikes
            stats["input/synops"] = stats.get("input/synops", 0.0) + spikes * net.fan_out[0]
        for i, (spikes, sent) in enumerate(net.activity):
            fan_out = net.fan_out[i + 1] if i + 1 < len(net.fan_out) else 0
            for key, value in (("spikes", float(spikes)), ("synops", float(sent) * fan_out)):
                name = f"layer{i + 1}/{key}"
                stats[name] = stats.get(name, 0.0) + value

    def spike_stats(self) -> dict[str, float]:
        """Per-sample spikes, SynOps and MACs of the eval forwards since the last reset, with
        the energy estimate of ``snnexp.energy`` (``energy/snn_pj`` vs ``energy/ann_pj``)."""
        n = max(self._samples, 1)
        stats = {key: value / n for key, value in self._totals.items()}
        for kind in ("spikes", "synops", "macs"):
            parts = [v for k, v in stats.items() if k.endswith(f"/{kind}")]
            if parts:
                stats[f"total/{kind}"] = sum(parts)
        if self._samples:
            stats.update(energy_figures(stats, ann_macs=sum(self.net.macs)))
        return stats

    def reset_spike_stats(self) -> None:
        self._totals: dict[str, float] = {}
        self._samples = 0


def _check_args(**args: Any) -> None:
    for key, allowed in CHOICES.items():
        if args[key] not in allowed:
            raise UserError(f"model.{key}={args[key]}: must be one of {', '.join(allowed)}")
    for key in ("num_steps", "embedding_dim"):
        if not (isinstance(args[key], int) and args[key] >= 1):
            raise UserError(f"model.{key}={args[key]}: must be an integer >= 1")
    if not 0.0 <= args["beta"] <= 1.0:
        raise UserError(f"model.beta={args['beta']}: must be a number in [0, 1]")
    if not args["threshold"] > 0:
        raise UserError(f"model.threshold={args['threshold']}: must be a number > 0")


# entries of an lr scheduler's state_dict that record how far it has run (not its settings)
SCHEDULE_PROGRESS = ("last_epoch", "_step_count", "_last_lr", "base_lrs", "_is_initial",
                     "_get_lr_called_within_step")

