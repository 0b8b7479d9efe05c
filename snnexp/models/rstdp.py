"""NumPy SNN learner: STDP-learned convolutional LIF features and an R-STDP output layer.

Pipeline of one sample (``num_steps`` steps of ``dt``): encoded input spikes [T, C, H, W] ->
hidden LIF layer (``rstdp_hidden``: ``filters`` convolutional feature maps with a local
winner-take-all, learned during meta-training by competitive STDP with homeostasis, or fixed
random with ``hidden_mode=random``) -> sum-pooled spike counts -> ``way`` output LIF neurons with
winner-take-all (``rstdp_readout``), re-initialised every episode and trained on the support set
by reward-modulated STDP (MSTDPET, Florian 2007) for ``epochs`` passes. Queries are classified
by output spike counts. Imports NumPy only (no torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnexp.errors import UserError
from snnexp.models.base import Learner
from snnexp.models.rstdp_config import validate
from snnexp.models.rstdp_dynamics import LIFParams, STDPParams
from snnexp.models.rstdp_hidden import (
    HiddenParams,
    HiddenRun,
    competitive_update,
    grid_shape,
    init_filters,
    simulate_hidden,
)
from snnexp.models.rstdp_readout import ReadoutParams, logits, run_output, train_readout
from snnexp.models.rstdp_views import activity_counts, raster_image, receptive_field_grid


class RSTDPLearner(Learner):
    """Few-shot learner of spiking neurons trained by STDP and R-STDP (see module docstring).

    Constructor keys (``conf/model/rstdp.yaml``): ``num_steps``; LIF ``v_rest, v_reset, v_th,
    tau_m, t_ref, dt``; hidden layer ``hidden_mode`` (``stdp`` | ``random``), ``kernel, stride,
    filters, pool, hidden_gain, hidden_lr, hidden_theta_lr``; readout ``readout_gain, epochs,
    batch, punishment, baseline_rate, w_init, w_noise, normalize, readout_theta_lr``; R-STDP
    rule ``tau_plus, tau_minus, tau_e, a_plus, a_minus, eta, w_min, w_max``.
    """

    name = "rstdp"
    uses_optimizer = False

    def __init__(self, encoder: Any, input_shape: Any, seed: int = 0, optimizer: Any = None,
                 device: str = "cpu", **params: Any) -> None:
        cfg = validate(params, tuple(int(s) for s in input_shape))
        self.encoder, self.input_shape, self.cfg = encoder, tuple(int(s) for s in input_shape), cfg
        self.lif = LIFParams(*(float(cfg[k]) for k in LIFParams._fields[:6]))
        self.hp = HiddenParams(cfg["kernel"], cfg["stride"], cfg["filters"], cfg["pool"],
                               cfg["hidden_gain"], cfg["hidden_lr"], cfg["hidden_theta_lr"],
                               cfg["tau_plus"])
        self.stdp = STDPParams(*(float(cfg[k]) for k in STDPParams._fields[:-1]), self.lif.dt)
        self.rp = ReadoutParams(cfg["readout_gain"], cfg["epochs"], cfg["batch"],
                                cfg["punishment"], cfg["baseline_rate"], cfg["w_init"],
                                cfg["w_noise"], cfg["normalize"], cfg["readout_theta_lr"])
        self.rng = np.random.default_rng(int(seed))
        n_in = self.input_shape[0] * self.hp.kernel ** 2
        self.w_hidden = init_filters(self.rng, n_in, self.hp.filters)
        self.theta = np.zeros(self.hp.filters, np.float32)
        self.steps = 0
        self.last_readout: np.ndarray | None = None
        self.last_theta: np.ndarray | None = None
        self.reset_spike_stats()

    # ----------------------------------------------------------------------------- simulation
    def _encode(self, images: Any) -> np.ndarray:
        """Images [B, C, H, W] -> float32 spikes [T, B, C, H, W] through the encoder."""
        spikes = np.asarray(self.encoder(images, self.cfg["num_steps"]), dtype=np.float32)
        if spikes.ndim != 5 or spikes.shape[2:] != self.input_shape:
            raise UserError(f"encoder output shape {spikes.shape}: expected [T, B, "
                            f"{', '.join(map(str, self.input_shape))}]")
        return spikes

    def _hidden(self, images: Any, learn: bool = False) -> HiddenRun:
        spikes = self._encode(images)
        run = simulate_hidden(spikes, self.w_hidden, self.theta, self.lif, self.hp, learn=learn)
        self._count("input", spikes.sum(axis=(0, 2, 3, 4)), len(run.counts))
        self._count("hidden", run.counts, len(run.counts))
        return run

    def _episode(self, support_x: Any, support_y: Any, query_x: Any,
                 learn: bool = False) -> tuple[np.ndarray, float]:
        """Hidden runs, R-STDP on the support set, query logits [n_query, way], reward rate."""
        labels = np.asarray(support_y).astype(np.int64)
        way = int(labels.max()) + 1
        sup, qry = self._hidden(support_x, learn), self._hidden(query_x, learn)
        scale = np.float32(max(float(sup.pooled.sum(axis=2).mean()), 1e-6))
        w, theta, reward_rate = train_readout(sup.pooled / scale, labels, way, self.rng,
                                              self.lif, self.stdp, self.rp)
        out = run_output(qry.pooled / scale, w, theta, self.rp.gain, self.lif, self.stdp)
        self._count("output", out.counts.sum(axis=1), len(out.counts))
        if learn and self.cfg["hidden_mode"] == "stdp":
            merged = HiddenRun(None, None, sup.num + qry.num, sup.cnt + qry.cnt, None)
            self.w_hidden, self.theta = competitive_update(self.w_hidden, self.theta, merged,
                                                           self.hp)
        self.last_readout, self.last_theta = w, theta
        return logits(out), reward_rate

    # --------------------------------------------------------------------------- the contract
    def meta_train_step(self, episode: Any) -> dict[str, float]:
        """Unsupervised STDP of the hidden layer on the episode's images, then the R-STDP
        episode protocol on it for the training curves (``acc``, ``reward_rate``)."""
        learn = self.cfg["hidden_mode"] == "stdp"
        scores, reward_rate = self._episode(episode.support_x, episode.support_y,
                                            episode.query_x, learn=learn)
        self.steps += 1
        query_y = np.asarray(episode.query_y).astype(np.int64)
        acc = float((scores.argmax(axis=1) == query_y).mean())
        return {"acc": acc, "reward_rate": float(reward_rate),
                "theta_mean": float(self.theta.mean()), "theta_std": float(self.theta.std())}

    def predict(self, support_x: Any, support_y: Any, query_x: Any) -> np.ndarray:
        """``[n_query, way]`` logits: output spike counts plus a tie-break below 0.01."""
        return self._episode(support_x, support_y, query_x)[0]

    def state_dict(self) -> dict[str, Any]:
        return {"w_hidden": self.w_hidden.copy(), "theta": self.theta.copy(),
                "steps": self.steps, "rng": self.rng.bit_generator.state, "config": dict(self.cfg)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        w = np.asarray(state["w_hidden"], dtype=np.float32)
        if w.shape != self.w_hidden.shape:
            raise UserError(f"checkpoint w_hidden shape {w.shape}: this model has "
                            f"{self.w_hidden.shape} (check model.kernel/filters)")
        self.w_hidden = w.copy()
        self.theta = np.asarray(state["theta"], dtype=np.float32).copy()
        self.steps = int(state["steps"])
        self.rng.bit_generator.state = state["rng"]

    def reset_spike_stats(self) -> None:
        self._spikes = {k: [0.0, 0] for k in ("input", "hidden", "output")}

    def _count(self, layer: str, per_sample: np.ndarray, n: int) -> None:
        self._spikes[layer][0] += float(np.sum(per_sample))
        self._spikes[layer][1] += int(n)

    def spike_stats(self) -> dict[str, float]:
        h, w, g = grid_shape(self.input_shape, self.hp)
        fan_out = {"input": h * w * self.hp.kernel ** 2 * self.hp.filters
                   / float(np.prod(self.input_shape)),
                   "hidden": float(g * g * self.hp.pool ** 2) / (h * w) * self._way(),
                   "output": 0.0}
        stats: dict[str, float] = {}
        for layer, (total, n) in self._spikes.items():
            spikes = total / n if n else 0.0
            stats[f"{layer}/spikes"] = spikes
            stats[f"{layer}/synops"] = spikes * fan_out[layer]
        stats["total/spikes"] = sum(stats[f"{k}/spikes"] for k in self._spikes)
        stats["total/synops"] = sum(stats[f"{k}/synops"] for k in self._spikes)
        return stats

    def _way(self) -> int:
        return 0 if self.last_readout is None else int(self.last_readout.shape[1])

    def summaries(self, support_x: Any, support_y: Any) -> dict[str, dict[str, Any]]:
        """Raster of one support sample, weight histograms and hidden receptive fields."""
        self.predict(support_x, support_y, support_x[:1])
        spikes = self._encode(support_x[:1])
        run = simulate_hidden(spikes, self.w_hidden, self.theta, self.lif, self.hp, record=True)
        scale = np.float32(max(float(run.pooled.sum(axis=2).mean()), 1e-6))
        out = activity_counts(run.pooled / scale, self.last_readout, self.last_theta,
                              self.rp.gain, self.lif)
        images = {"raster": raster_image(spikes[:, 0], run.raw[:, 0], out),
                  "receptive_fields": receptive_field_grid(self.w_hidden, self.input_shape[0],
                                                           self.hp.kernel)}
        hist = {"w_hidden": self.w_hidden.ravel(), "theta": self.theta.copy(),
                "w_readout": self.last_readout.ravel()}
        return {"images": images, "histograms": hist}
