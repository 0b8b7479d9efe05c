"""NumPy SNN learner: STDP-learned convolutional LIF features and an R-STDP output layer.

Pipeline of one sample (``num_steps`` steps of ``dt``): encoded input spikes [T, C, H, W] ->
hidden LIF layer (``hidden``: ``filters`` convolutional feature maps with a local
winner-take-all, learned during meta-training by competitive STDP with homeostasis, or fixed
random with ``hidden.mode=random``) -> sum-pooled spike counts -> ``way`` output LIF neurons
with winner-take-all (``readout``), re-initialised every episode and trained on the support set
by reward-modulated STDP (MSTDPET, Florian 2007) for ``readout.epochs`` passes. Queries are
classified by output spike counts. Imports NumPy only (no torch).

``predict_episodes`` runs the hidden layer episode by episode and trains the readouts of all
the episodes together (``readout.train_readouts``), with results equal to one ``predict`` call
per episode.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from snnexp import neurobench
from snnexp.errors import UserError
from snnexp.models.base import Learner
from snnexp.models.rstdp.config import check_relations, make_params
from snnexp.models.rstdp.hidden import (
    HiddenRun,
    competitive_update,
    grid_shape,
    init_filters,
    simulate_hidden,
)
from snnexp.models.rstdp.readout import (
    draw_readout,
    logits,
    run_output,
    support_scale,
    train_readouts,
)
from snnexp.models.rstdp.views import activity_counts, receptive_field_grid
from snnexp.plots import raster_figure

log = logging.getLogger(__name__)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array of ``x`` (a torch tensor on any device, without importing torch)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def same_shape_runs(episodes: list[Any]) -> list[list[Any]]:
    """Consecutive runs of episodes with the same support and query shapes (kept in order)."""
    runs: list[list[Any]] = []
    keys: list[tuple] = []
    for ep in episodes:
        key = (tuple(ep.support_x.shape), tuple(ep.query_x.shape), int(ep.support_y.max()))
        if keys and keys[-1] == key:
            runs[-1].append(ep)
        else:
            runs.append([ep])
            keys.append(key)
    return runs


class RSTDPLearner(Learner):
    """Few-shot learner of spiking neurons trained by STDP and R-STDP (see module docstring).

    Args (the keys of ``conf/model/rstdp.yaml``, see ``snnexp.models.rstdp.config``):
        encoder: images [B, C, H, W] and a step count -> spikes [T, B, C, H, W].
        input_shape: ``(C, H, W)`` of the images.
        num_steps: simulation steps per sample.
        neuron, hidden, readout, stdp: the config sections, mappings with the fields of
            ``LIFParams``, ``HiddenParams``, ``ReadoutParams``, ``STDPParams``.
        seed: seeds the learner's own RNG (filters, readout noise and order, rate code).
        device: ignored (NumPy runs on the CPU); the trainer passes it to every learner.
    """

    name = "rstdp"
    uses_optimizer = False

    def __init__(self, encoder: Any, input_shape: Any, *, num_steps: int,
                 neuron: Mapping[str, Any], hidden: Mapping[str, Any],
                 readout: Mapping[str, Any], stdp: Mapping[str, Any], seed: int,
                 device: str = "cpu") -> None:
        self.encoder, self.input_shape = encoder, tuple(int(s) for s in input_shape)
        self.params = make_params(num_steps, neuron, hidden, readout, stdp)
        check_relations(self.params, self.input_shape)
        self.num_steps = self.params.num_steps
        self.lif, self.hp = self.params.neuron, self.params.hidden
        self.rp, self.stdp = self.params.readout, self.params.stdp
        self.rng = np.random.default_rng(int(seed))
        if not getattr(encoder, "spiking", True):
            log.info("encoder %s gives analog input: model=rstdp rate-codes it into spikes "
                     "(encoder=rate or latency choose the code)", type(encoder).__name__)
        n_in = self.input_shape[0] * self.hp.kernel ** 2
        self.w_hidden = init_filters(self.rng, n_in, self.hp.filters)
        self.theta = np.zeros(self.hp.filters, np.float32)
        self.steps = 0
        self.last_readout: np.ndarray | None = None
        self.last_theta: np.ndarray | None = None
        self.reset_spike_stats()

    # ----------------------------------------------------------------------------- simulation
    @property
    def encoding(self) -> str:
        name = type(self.encoder).__name__
        return name if getattr(self.encoder, "spiking", True) else f"rate (analog {name} input)"

    def _encode(self, images: Any) -> np.ndarray:
        """Images [B, C, H, W] -> float32 spikes [T, B, C, H, W] through the encoder; an analog
        (non-spiking, e.g. ``encoder=direct``) input ``x`` becomes Bernoulli spikes
        ``s ~ B(clip(x, 0, 1))`` drawn from the learner's own RNG (a rate code)."""
        spikes = to_numpy(self.encoder(images, self.num_steps)).astype(np.float32)
        if not getattr(self.encoder, "spiking", True):
            spikes = (self.rng.random(spikes.shape, dtype=np.float32) < spikes).astype(np.float32)
        if spikes.ndim != 5 or spikes.shape[2:] != self.input_shape:
            raise UserError(f"encoder output shape {spikes.shape}: expected [T, B, "
                            f"{', '.join(map(str, self.input_shape))}]")
        return spikes

    def _hidden(self, images: Any, learn: bool = False) -> HiddenRun:
        spikes = self._encode(images)
        run = simulate_hidden(spikes, self.w_hidden, self.theta, self.lif, self.hp, learn=learn)
        self._count("input", spikes.sum(axis=(0, 2, 3, 4)), len(run.counts))
        self._count("hidden", run.counts, len(run.counts))
        self._count("pooled", run.pooled, len(run.counts))
        return run

    def _episodes(self, tasks: list[tuple[Any, Any, Any]],
                  learn: bool = False) -> tuple[list[np.ndarray], np.ndarray]:
        """Query logits [n_query, way] of each ``(support_x, support_y, query_x)`` and the reward
        rates [E] of the readouts' R-STDP training.

        The hidden layer runs episode by episode (support, then query: the encoder's draws are
        those of one-by-one calls); then the ``E`` readouts -- independent networks -- are
        trained together on arrays with a leading episode axis, each with its own draws from
        ``self.rng`` taken in episode order, so the result equals ``E`` single-episode calls.
        All tasks must share one shape (``way``, support and query sizes).
        """
        sup_u, qry_u, labels, draws = [], [], [], []
        for support_x, support_y, query_x in tasks:
            y = to_numpy(support_y).astype(np.int64)
            sup, qry = self._hidden(support_x, learn), self._hidden(query_x, learn)
            scale = support_scale(sup.pooled)
            sup_u.append(sup.pooled / scale)
            qry_u.append(qry.pooled / scale)
            labels.append(y)
            draws.append(draw_readout(self.rng, len(y), sup.pooled.shape[2], int(y.max()) + 1,
                                      self.rp))
            if learn and self.hp.mode == "stdp":
                merged = HiddenRun(None, None, sup.num + qry.num, sup.cnt + qry.cnt, None)
                self.w_hidden, self.theta = competitive_update(self.w_hidden, self.theta,
                                                               merged, self.hp)
        way = max(int(y.max()) + 1 for y in labels)
        w, theta, reward_rate = train_readouts(np.stack(sup_u, axis=1), np.stack(labels), way,
                                               draws, self.lif, self.stdp, self.rp)
        out = run_output(np.stack(qry_u, axis=1), w, theta, self.rp.gain, self.lif, self.stdp)
        self._count("output", out.counts, out.counts.shape[0] * out.counts.shape[1])
        self.last_readout, self.last_theta = w[-1], theta[-1]
        return list(logits(out)), reward_rate

    def _episode(self, support_x: Any, support_y: Any, query_x: Any,
                 learn: bool = False) -> tuple[np.ndarray, float]:
        """Hidden runs, R-STDP on the support set, query logits [n_query, way], reward rate."""
        scores, reward_rate = self._episodes([(support_x, support_y, query_x)], learn)
        return scores[0], float(reward_rate[0])

    # --------------------------------------------------------------------------- the contract
    def meta_train_step(self, episode: Any) -> dict[str, float]:
        """Unsupervised STDP of the hidden layer on the episode's images, then the R-STDP
        episode protocol on it for the training curves (``acc``, ``reward_rate``)."""
        learn = self.hp.mode == "stdp"
        scores, reward_rate = self._episode(episode.support_x, episode.support_y,
                                            episode.query_x, learn=learn)
        self.steps += 1
        query_y = to_numpy(episode.query_y).astype(np.int64)
        acc = float((scores.argmax(axis=1) == query_y).mean())
        return {"acc": acc, "reward_rate": float(reward_rate),
                "theta_mean": float(self.theta.mean()), "theta_std": float(self.theta.std())}

    def predict(self, support_x: Any, support_y: Any, query_x: Any) -> np.ndarray:
        """``[n_query, way]`` logits: output spike counts plus a tie-break below 0.01."""
        return self._episode(support_x, support_y, query_x)[0]

    def predict_episodes(self, episodes: list[Any]) -> list[np.ndarray]:
        """``predict`` of each episode, the readouts of same-shaped episodes trained together;
        equal to one ``predict`` call per episode in this order."""
        scores: list[np.ndarray] = []
        for group in same_shape_runs(episodes):
            scores += self._episodes([(ep.support_x, ep.support_y, ep.query_x)
                                      for ep in group])[0]
        return scores

    def state_dict(self) -> dict[str, Any]:
        return {"w_hidden": self.w_hidden.copy(), "theta": self.theta.copy(),
                "steps": self.steps, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        w = np.asarray(state["w_hidden"], dtype=np.float32)
        if w.shape != self.w_hidden.shape:
            raise UserError(f"checkpoint w_hidden shape {w.shape}: this model has "
                            f"{self.w_hidden.shape} (check model.hidden.kernel/filters)")
        self.w_hidden = w.copy()
        self.theta = np.asarray(state["theta"], dtype=np.float32).copy()
        self.steps = int(state["steps"])
        self.rng.bit_generator.state = state["rng"]

    def reset_spike_stats(self) -> None:
        self._spikes = {k: [0.0, 0] for k in ("input", "hidden", "output")}
        self._pooled = [0.0, 0]  # hidden spikes that reach the readout (inside the pooling)

    def _count(self, layer: str, per_sample: np.ndarray, n: int) -> None:
        counter = self._pooled if layer == "pooled" else self._spikes[layer]
        counter[0] += float(np.sum(per_sample))
        counter[1] += int(n)

    def spike_stats(self) -> dict[str, float]:
        h, w, g = grid_shape(self.input_shape, self.hp)
        # a hidden spike inside the pooled grid reaches all `way` outputs, one outside none
        connected = self._pooled[0] / max(self._spikes["hidden"][0], 1e-12)
        fan_out = {"input": h * w * self.hp.kernel ** 2 * self.hp.filters
                   / float(np.prod(self.input_shape)),
                   "hidden": connected * self._way(),
                   "output": 0.0}
        stats: dict[str, float] = {}
        for layer, (total, n) in self._spikes.items():
            spikes = total / n if n else 0.0
            stats[f"{layer}/spikes"] = spikes
            stats[f"{layer}/synops"] = spikes * fan_out[layer]
        stats["total/spikes"] = sum(stats[f"{k}/spikes"] for k in self._spikes)
        stats["total/synops"] = sum(stats[f"{k}/synops"] for k in self._spikes)
        return stats

    def neurobench(self) -> dict[str, float]:
        """NeuroBench's metrics per test sample (``snnexp.neurobench``): ``hidden`` (input
        spikes -> the hidden filters at the ``(g pool)^2`` positions that reach the readout,
        the ones a test simulates) and ``output`` (pooled hidden spikes -> ``way`` outputs,
        the readout of the last episode). Every input is a spike, so every effective
        operation is an AC (the ``synops`` of ``spike_stats``)."""
        n_hidden, n_out = self._spikes["hidden"][1], self._spikes["output"][1]
        if not n_hidden or not n_out:
            return {}
        stats = self.spike_stats()
        h, w, g = grid_shape(self.input_shape, self.hp)
        positions = (g * self.hp.pool) ** 2
        n_in = int(np.prod(self.w_hidden.shape[:-1]))
        filters, way, steps = self.hp.filters, self._way(), self.num_steps
        readout = self.last_readout if self.last_readout is not None else np.zeros((0, 0))
        nbytes = lambda *arrays: float(sum(np.asarray(a).nbytes for a in arrays  # noqa: E731
                                           if a is not None))
        layers = [
            neurobench.LayerCount(
                "hidden", activations=steps * positions * filters,
                spikes=stats["hidden/spikes"], dense=steps * positions * n_in * filters,
                acs=stats["input/synops"], footprint=nbytes(self.w_hidden, self.theta),
                weights=float(self.w_hidden.size),
                zero_weights=float(np.sum(self.w_hidden == 0))),
            neurobench.LayerCount(
                "output", activations=steps * way, spikes=stats["output/spikes"],
                dense=steps * g * g * filters * way, acs=stats["hidden/synops"],
                footprint=nbytes(readout, self.last_theta), weights=float(readout.size),
                zero_weights=float(np.sum(readout == 0)))]
        return neurobench.figures(layers)

    def _way(self) -> int:
        return 0 if self.last_readout is None else int(self.last_readout.shape[1])

    def summaries(self, support_x: Any, support_y: Any) -> dict[str, dict[str, Any]]:
        """Spike raster of one support sample (input, hidden, output panels), weight histograms
        and hidden receptive fields."""
        self.predict(support_x, support_y, support_x[:1])
        spikes = self._encode(support_x[:1])
        run = simulate_hidden(spikes, self.w_hidden, self.theta, self.lif, self.hp, record=True)
        scale = support_scale(run.pooled)
        out = activity_counts(run.pooled / scale, self.last_readout, self.last_theta,
                              self.rp.gain, self.lif)
        figures = {"raster/layers": raster_figure({"input": spikes[:, 0], "hidden": run.raw[:, 0],
                                                   "output": out})}
        images = {"receptive_fields": receptive_field_grid(self.w_hidden, self.input_shape[0],
                                                           self.hp.kernel)}
        hist = {"w_hidden": self.w_hidden.ravel(), "theta": self.theta.copy(),
                "w_readout": self.last_readout.ravel()}
        return {"figures": figures, "images": images, "histograms": hist}
