"""A frozen spiking embedding with a readout learned inside each episode by a local rule.

Pipeline of one episode (support and query images in one forward; nothing trained by backprop):

1. The embedding network of a ``model=protonet`` checkpoint (``model.embedding_ckpt``, by
   default ``init_from``), frozen (``requires_grad=False``, eval mode, no optimizer), runs
   ``T = model.num_steps`` steps (null: the checkpoint's own ``T``) with the checkpoint's
   encoder.
2. The spikes of one of its spiking layers (``model.layer``: ``last``, the layer that makes the
   embedding, or ``penultimate``, the layer feeding it), after the network's own max-pooling of
   that layer, flattened: ``s`` [T, B, D] with ``D`` that layer's units.
3. ``u = s / c`` with ``c`` the support set's mean total spikes per step
   (``snnexp.models.rstdp.readout.support_scale``), so the readout gain does not depend on the
   layer's firing rate.
4. ``way`` output LIF neurons with winner-take-all, weights ``W`` [D, way] drawn afresh every
   episode, learn from the support set by reward-modulated STDP (MSTDPET, Florian 2007):
   ``W <- clip(W + eta * sum_b (r_b - r_bar) e_b)`` with reward ``r = 1`` for the right
   winner, ``punishment`` otherwise, ``e_b`` the eligibility of sample ``b`` -- the output layer
   of ``model=rstdp`` (``snnexp.models.rstdp.readout.train_readouts``, called, not copied). The
   rule is local: each synapse changes by its own pre/post spike timing times one global
   reward, as a neuromorphic chip's on-chip plasticity can (Stewart et al. 2020 learn the last
   layer of a meta-trained SNN on Loihi). ``model.rule=hebbian`` learns ``W`` instead in one
   teacher-forced Hebbian pass (``imprint_readouts``): each output neuron clamped to fire on
   its class's support samples, ``W[:, k]`` = the class's summed input, scaled.
5. A query is classified by the output spike counts (ties: the free membrane drive).

The untrained control of ``snnexp.evaluation.run_test`` (``reset_to_untrained``) is the same
readout on the same architecture at its random initial weights.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import get_class

from snnexp.builders import build_learner
from snnexp.checkpoint import checkpoint_config, load_checkpoint, resolve_checkpoint
from snnexp.errors import UserError
from snnexp.models.base import Learner
from snnexp.models.protonet.recorder import SpikeRecorder, spiking_layers
from snnexp.models.rstdp.dynamics import LIFParams, STDPParams
from snnexp.models.rstdp.learner import same_shape_runs, to_numpy
from snnexp.models.rstdp.readout import (
    OutputRun,
    ReadoutParams,
    draw_readout,
    logits,
    run_output,
    scale_columns,
    support_scale,
    train_readouts,
)
from snnexp.models.rstdp.views import activity_counts
from snnexp.plots import raster_figure

log = logging.getLogger(__name__)

KEY = "model.embedding_ckpt"
NEEDED = (f"model=hybrid needs a model=protonet checkpoint for its embedding: "
          f"init_from=<run dir or .pt> (or {KEY}=<run dir or .pt>)")


def checkpoint_model(state: dict[str, Any]) -> str:
    """The ``model`` name a checkpoint was written by (``"protonet"``, ``"rstdp"``, ...)."""
    if isinstance(state.get("model"), str):
        return state["model"]
    try:
        return getattr(get_class(state["config"]["model"]["_target_"]), "name", "unknown")
    except Exception:  # noqa: BLE001 - any unreadable entry: not a checkpoint we can use
        return "unknown"


def imprint_readouts(u: np.ndarray, labels: np.ndarray, way: int, rp: ReadoutParams,
                     stdp: STDPParams) -> np.ndarray:
    """Teacher-forced Hebbian learning of ``E`` readouts in one pass over their support sets.

    Each output neuron is clamped to fire at every step of its own class's support samples
    (the label as teacher), and each synapse grows by its presynaptic activity times that
    postsynaptic spike: ``W[d, k] = sum_{b: y_b = k} sum_t u[t, b, d]``; then the synaptic
    scaling of the R-STDP readout (``scale_columns``; with ``normalize=none`` every column is
    divided by the largest weight). A query's output currents ``u_t @ W`` are then its
    activity's dot products with the class sums: weight imprinting (Qi et al. 2018) done by a
    local pre x post rule.

    Args:
        u: [T, E, n, D] normalised support input. labels: [E, n] in ``0..way-1``.

    Returns:
        ``W`` [E, D, way] in ``[stdp.w_min, stdp.w_max]``.
    """
    teacher = (labels[..., None] == np.arange(way)).astype(np.float32)  # [E, n, way]
    w = np.einsum("tend,enk->edk", u, teacher).astype(np.float32)
    if rp.normalize == "none":
        top = np.maximum(w.max(axis=(-2, -1), keepdims=True), np.float32(1e-12))
        return np.clip(w * (np.float32(stdp.w_max) / top), stdp.w_min, stdp.w_max)
    return scale_columns(w, rp.w_init, rp.normalize, stdp)


def learn_readouts(supports: list[np.ndarray], labels: list[np.ndarray],
                   queries: list[np.ndarray], rng: np.random.Generator, lif: LIFParams,
                   stdp: STDPParams, rp: ReadoutParams, rule: str = "rstdp"
                   ) -> tuple[OutputRun, np.ndarray, np.ndarray, np.ndarray]:
    """Readouts of ``E`` episodes learned from their spikes by ``rule``, and their answers to
    the queries.

    Args:
        supports: per episode, support spikes [T, n, D]; labels: [n] in ``0..way-1``;
            queries: query spikes [T, m, D] (one shape for all episodes).
        rng: draws each episode's initial weight noise and support orders, in episode order
            (``rstdp``; ``hebbian`` draws nothing).
        rule: ``rstdp`` (``train_readouts``: reward-modulated STDP, ``epochs`` passes) or
            ``hebbian`` (``imprint_readouts``: one teacher-forced pass).

    Returns:
        ``(the queries' OutputRun with counts [E, m, way], W [E, D, way], theta [E, way],
        rate [E])``: ``rate`` is R-STDP's reward rate over its training passes, or for
        ``hebbian`` the fraction of support samples the learned readout classifies right;
        ``logits(run)`` are the scores.
    """
    scales = [support_scale(sup) for sup in supports]
    way = max(int(y.max()) + 1 for y in labels)
    u = np.stack([sup / c for sup, c in zip(supports, scales, strict=True)], axis=1)
    y = np.stack(labels)
    if rule == "rstdp":
        draws = [draw_readout(rng, len(ys), sup.shape[2], int(ys.max()) + 1, rp)
                 for sup, ys in zip(supports, labels, strict=True)]
        w, theta, rate = train_readouts(u, y, way, draws, lif, stdp, rp)
    else:
        w, theta = imprint_readouts(u, y, way, rp, stdp), np.zeros((len(y), way), np.float32)
        rate = (logits(run_output(u, w, theta, rp.gain, lif, stdp)).argmax(-1) == y).mean(-1)
    qry_u = np.stack([qry / c for qry, c in zip(queries, scales, strict=True)], axis=1)
    out = run_output(qry_u, w, theta, rp.gain, lif, stdp)
    return out, w, theta, rate


class HybridLearner(Learner):
    """Frozen meta-trained spiking embedding + in-episode R-STDP readout (module docstring).

    Args (the keys of ``conf/model/hybrid.yaml``, see ``snnexp.models.hybrid.config``):
        encoder: ignored; the embedding is fed with the encoder it was trained with.
        input_shape: ``(C, H, W)`` of the images; must be the checkpoint's.
        embedding_ckpt: run dir or ``.pt`` of a ``model=protonet`` run (spiking, not the twin).
        layer: ``last`` | ``penultimate``: the spiking layer whose spikes feed the readout.
        rule: ``rstdp`` | ``hebbian``: the local rule that learns the readout (``learn_readouts``).
        num_steps: time steps per sample at readout time (``None``: the checkpoint's).
        neuron, readout, stdp: the readout's ``LIFParams``, ``ReadoutParams``, ``STDPParams``.
        seed: the readout's own RNG (initial weight noise, support order).
        device: torch device of the embedding.
    """

    name = "hybrid"
    uses_optimizer = False

    def __init__(self, encoder: Any, input_shape: Any, *, embedding_ckpt: str | None,
                 layer: str, rule: str, num_steps: int | None, neuron: Mapping[str, Any],
                 readout: Mapping[str, Any], stdp: Mapping[str, Any], seed: int,
                 device: str = "cpu") -> None:
        if not embedding_ckpt:
            raise UserError(NEEDED)
        self.source = str(embedding_ckpt)
        where = f"{KEY}={self.source}"
        state = load_checkpoint(self.source, key=KEY, which="tested")
        kind = checkpoint_model(state)
        if kind != "protonet":
            raise UserError(f"{where}: a model={kind} checkpoint; model=hybrid takes its "
                            "embedding from a model=protonet one")
        cfg = checkpoint_config(state, resolve_checkpoint(self.source))
        if cfg.model.get("neuron") == "relu":
            raise UserError(f"{where}: the ANN twin (model.neuron=relu) has no spikes to feed "
                            "the readout; give a spiking model=protonet checkpoint")
        shape = tuple(int(s) for s in input_shape)
        trained = tuple(state.get("data", {}).get("image_shape", shape))
        if tuple(int(s) for s in trained) != shape:
            raise UserError(f"{where}: trained on images {list(trained)} (C, H, W), this "
                            f"dataset has {list(shape)}")
        self.layer, self.rule = layer, rule
        self.lif, self.rp = LIFParams(**neuron), ReadoutParams(**readout)
        self.stdp = STDPParams(**stdp)
        self.rng = np.random.default_rng(int(seed))
        # the protonet learner holds the network, its encoder and its spike counting
        self.embedding = build_learner(cfg, shape, torch.device(device))
        self.embedding.optimizer = self.embedding.scheduler = None
        self.net = self.embedding.net
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.net.eval()
        self._initial = copy.deepcopy(self.net.state_dict())  # random init: untrained control
        self.net.load_state_dict(state["learner"]["net"])
        self.encoder = self.embedding.encoder
        if getattr(encoder, "events", False) != getattr(self.encoder, "events", False):
            raise UserError(f"encoder={type(encoder).__name__}: model=hybrid encodes with its "
                            f"checkpoint's encoder ({type(self.encoder).__name__}); event "
                            "frames need a checkpoint trained on them, and images one trained "
                            "on images")
        self.num_steps = int(num_steps or cfg.model.num_steps)
        self.embedding.num_steps = self.num_steps
        self.device = torch.device(device)
        self.last_readout: np.ndarray | None = None
        self.last_theta: np.ndarray | None = None
        self.reset_spike_stats()

    # ----------------------------------------------------------------------------- features
    def _pool(self, spikes: torch.Tensor, k: int) -> torch.Tensor:
        """The network's own pooling after the ``k``-th spiking layer (``SpikingConvNet.pool``;
        a backbone without block specs: none)."""
        specs = getattr(self.net, "specs", None)
        if specs is None or len(specs) != len(spiking_layers(self.net)):
            return spikes
        firing = [i for i, m in enumerate(spiking_layers(self.net))
                  if getattr(m, "fires", True)]
        return self.net.pool(spikes, firing[k])

    @torch.no_grad()
    def features(self, images: Any) -> np.ndarray:
        """Images [B, C, H, W] -> the chosen layer's spikes [T, B, D] (float32: 0/1, or
        quarters after a ``model.spike_pool=avg`` pool)."""
        x = torch.as_tensor(images, dtype=torch.float32, device=self.device)
        with SpikeRecorder(self.net, rasters=True) as record:
            self.embedding.embed(x)
        rasters = record.rasters
        k = len(rasters) - (1 if self.layer == "last" else 2)
        if k < 0:
            raise UserError(f"model.layer={self.layer}: the embedding has {len(rasters)} "
                            "spiking layer(s)")
        spikes = self._pool(rasters[k], k).flatten(2).float()
        self._feed[0] += float(spikes.sum())
        self._feed[1] += spikes.shape[1]
        return spikes.cpu().numpy()

    # --------------------------------------------------------------------------- readout
    def _episodes(self, tasks: list[tuple[Any, Any, Any]]) -> tuple[list[np.ndarray],
                                                                    np.ndarray]:
        """Query logits [n_query, way] of each ``(support_x, support_y, query_x)`` and the
        reward rates [E] of the readouts' R-STDP training (the ``E`` readouts are independent
        networks trained together, as ``model=rstdp`` does; all tasks of one shape)."""
        supports, labels, queries = [], [], []
        for support_x, support_y, query_x in tasks:
            y = to_numpy(support_y).astype(np.int64)
            spikes = self.features(torch.cat([torch.as_tensor(support_x),
                                              torch.as_tensor(query_x)]))
            supports.append(spikes[:, :len(y)])
            queries.append(spikes[:, len(y):])
            labels.append(y)
        out, w, theta, reward_rate = learn_readouts(supports, labels, queries, self.rng,
                                                    self.lif, self.stdp, self.rp, self.rule)
        self._out[0] += float(out.counts.sum())
        self._out[1] += out.counts.shape[0] * out.counts.shape[1]
        self._way = w.shape[-1]
        self.last_readout, self.last_theta = w[-1], theta[-1]
        return list(logits(out)), reward_rate

    # --------------------------------------------------------------------------- the contract
    def meta_train_step(self, episode: Any) -> dict[str, float]:
        """Nothing is meta-trained (the embedding is frozen, the readout starts afresh every
        episode): the episode protocol runs for the training curves (``acc``,
        ``reward_rate``)."""
        (scores,), reward_rate = self._episodes([(episode.support_x, episode.support_y,
                                                  episode.query_x)])
        acc = float((scores.argmax(axis=1) == to_numpy(episode.query_y)).mean())
        return {"acc": acc, "reward_rate": float(reward_rate[0])}

    def predict(self, support_x: Any, support_y: Any, query_x: Any) -> np.ndarray:
        """``[n_query, way]`` logits: output spike counts plus a tie-break below 0.01."""
        return self._episodes([(support_x, support_y, query_x)])[0][0]

    def predict_episodes(self, episodes: list[Any]) -> list[np.ndarray]:
        """``predict`` of each episode, the readouts of same-shaped episodes trained together;
        equal to one ``predict`` call per episode in this order."""
        scores: list[np.ndarray] = []
        for group in same_shape_runs(episodes):
            scores += self._episodes([(ep.support_x, ep.support_y, ep.query_x)
                                      for ep in group])[0]
        return scores

    def reset_to_untrained(self) -> None:
        """The embedding's random initial weights (drawn when it was built)."""
        self.net.load_state_dict(self._initial)

    def load_network_weights(self, learner_state: dict[str, Any]) -> None:
        """The embedding's weights from a ``model=protonet`` checkpoint's ``learner`` entry
        (``init_from``)."""
        if "net" not in learner_state:
            raise UserError("model=hybrid takes its embedding only from a model=protonet run")
        self.net.load_state_dict(learner_state["net"])

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "rng": self.rng.bit_generator.state,
                "embedding_ckpt": self.source}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.rng.bit_generator.state = state["rng"]

    def reset_spike_stats(self) -> None:
        self.embedding.reset_spike_stats()
        self._feed = [0.0, 0]  # spikes of the layer feeding the readout, samples
        self._out = [0.0, 0]  # readout spikes of the queries, queries
        self._way = 0

    def spike_stats(self) -> dict[str, float]:
        """The embedding's per-sample spikes, SynOps (and energy estimate) of
        ``ProtoNetLearner.spike_stats``, plus ``readout/spikes`` (output spikes per query) and
        ``readout/synops`` (spikes into the readout x ``way``) in the totals."""
        stats = self.embedding.spike_stats()
        feed = self._feed[0] / self._feed[1] if self._feed[1] else 0.0
        stats["readout/spikes"] = self._out[0] / self._out[1] if self._out[1] else 0.0
        stats["readout/synops"] = feed * self._way
        for kind in ("spikes", "synops"):
            stats[f"total/{kind}"] = stats.get(f"total/{kind}", 0.0) + stats[f"readout/{kind}"]
        return stats

    def summaries(self, support_x: Any, support_y: Any) -> dict[str, dict[str, Any]]:
        """The embedding's pictures (``ProtoNetLearner.summaries``), the raster of one support
        sample's readout input and output spikes, and the readout weights' histogram."""
        self.predict(support_x, support_y, support_x[:1])
        out = self.embedding.summaries(support_x, support_y)
        spikes = self.features(support_x)
        u = spikes / support_scale(spikes)
        out["figures"]["raster/readout"] = raster_figure({
            f"{self.layer} layer": spikes[:, 0],
            "readout": activity_counts(u, self.last_readout, self.last_theta, self.rp.gain,
                                       self.lif)})
        out["histograms"]["w_readout"] = self.last_readout.ravel()
        return out

    def __repr__(self) -> str:
        return (f"HybridLearner(embedding={Path(self.source)}, layer={self.layer}, "
                f"rule={self.rule}, num_steps={self.num_steps})")
