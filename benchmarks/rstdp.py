"""Synapse updates per second of the vectorised R-STDP rule vs a per-synapse Python loop.

Both run the same rule (MSTDPET eligibility of every synapse every step, then the reward
update of every synapse) on the same sizes: the MNIST readout of ``conf/experiment/
rstdp_mnist_5w5s.yaml`` (D = 288 pooled hidden inputs, 5 outputs, 25 support samples, 30 steps).
The loop is the notebook's style (NumPy arrays indexed element by element, a double loop over
the synapses), timed on a few samples and extrapolated per update; a nested-list loop (the
fastest pure Python) is reported beside it. The vectorised side is timed as the learner runs
it: the readouts of ``episodes`` test episodes trained together (``RSTDPLearner.
predict_episodes``; ``snnexp.metrics.evaluate`` passes 10 at a time), and one at a time.
"""

from __future__ import annotations

import math
import time

import numpy as np

from snnexp.models.rstdp.config import default_config, make_params
from snnexp.models.rstdp.dynamics import LIFParams, STDPParams, reward_update
from snnexp.models.rstdp.readout import decide, run_output

SIZES = {"n_pre": 288, "way": 5, "batch": 25, "steps": 30}


def loop_sample(u: list, w: list, lif: LIFParams, p: STDPParams, gain: float) -> tuple:
    """One sample's eligibility [n_pre][way] and spike counts with per-synapse Python loops.

    ``u`` and ``w`` may be nested lists (the fastest pure-Python loop) or NumPy arrays indexed
    element by element (the original notebook's style)."""
    n_pre, way = len(w), len(w[0])
    dm, dp, dn, de = (math.exp(-lif.dt / tau) for tau in (lif.tau_m, p.tau_plus, p.tau_minus,
                                                         p.tau_e))
    v, ref, counts = [lif.v_rest] * way, [0] * way, [0.0] * way
    x, y = [0.0] * n_pre, [0.0] * way
    e = np.zeros((n_pre, way)) if isinstance(w, np.ndarray) else [[0.0] * way
                                                                  for _ in range(n_pre)]
    for u_t in u:
        current = [gain * sum(u_t[i] * w[i][j] for i in range(n_pre)) for j in range(way)]
        v = [lif.v_rest + (v[j] - lif.v_rest) * dm + (current[j] if ref[j] == 0 else 0.0)
             for j in range(way)]
        margins = [v[j] - lif.v_th if ref[j] == 0 and v[j] >= lif.v_th else -1.0
                   for j in range(way)]
        winner = max(range(way), key=lambda j: margins[j])
        s_post = [0.0] * way
        if margins[winner] >= 0:
            s_post[winner], counts[winner] = 1.0, counts[winner] + 1
            v, ref = [lif.v_reset] * way, [lif.ref_steps] * way
        else:
            ref = [max(r - 1, 0) for r in ref]
        x = [x[i] * dp + u_t[i] for i in range(n_pre)]
        y = [y[j] * dn + s_post[j] for j in range(way)]
        for i in range(n_pre):
            for j in range(way):
                e[i][j] = e[i][j] * de + p.a_plus * x[i] * s_post[j] - p.a_minus * u_t[i] * y[j]
    return e, counts


def loop_reward(w: list, e: list, reward: float, p: STDPParams) -> None:
    """In-place ``W <- clip(W + eta * r * e)`` synapse by synapse."""
    for i in range(len(w)):
        for j in range(len(w[0])):
            w[i][j] = min(max(w[i][j] + p.eta * reward * e[i][j], p.w_min), p.w_max)


def _inputs(seed: int = 0, episodes: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs ``u [T, E, B, D]``, weights ``w [E, D, way]``, labels ``[E, B]``."""
    rng = np.random.default_rng(seed)
    s = SIZES
    shape = (s["steps"], episodes, s["batch"], s["n_pre"])
    u = (rng.random(shape) < 0.05).astype(np.float32) * 4.0
    u /= u.sum(axis=3).mean()
    w = rng.uniform(0.45, 0.55, (episodes, s["n_pre"], s["way"])).astype(np.float32)
    return u, w, rng.integers(0, s["way"], (episodes, s["batch"]))


def updates_per_batch() -> int:
    """Synapse updates of one reward batch: eligibility every step plus the reward update."""
    s = SIZES
    return s["batch"] * s["n_pre"] * s["way"] * (s["steps"] + 1)


def measure_rstdp_speedup(seconds: float = 5.0, episodes: int = 10) -> dict[str, float]:
    """Time both implementations on the same sizes; return updates/s and their ratios.

    ``rstdp_speedup``: ``episodes`` readouts trained together (as the learner evaluates)
    vs the notebook-style loop; ``rstdp_speedup_one_episode``: one readout at a time."""
    params = make_params(**default_config())  # conf/model/rstdp.yaml
    lif, p = params.neuron, params.stdp
    vec_s = {e: _time_vectorised(e, 0.4 * seconds, lif, p) for e in (1, episodes)}
    u, w, _ = _inputs()
    loop_s = {name: _time_loop(u[:, 0], weights, 0.1 * seconds, lif, p)
              for name, weights in (("list", w[0].tolist()), ("numpy", w[0].copy()))}
    n = updates_per_batch()
    return {"vectorised_updates_per_s": n / vec_s[episodes],
            "vectorised_one_episode_updates_per_s": n / vec_s[1],
            "loop_updates_per_s": n / loop_s["numpy"],
            "rstdp_speedup": loop_s["numpy"] / vec_s[episodes],
            "rstdp_speedup_one_episode": loop_s["numpy"] / vec_s[1],
            "loop_list_updates_per_s": n / loop_s["list"],
            "rstdp_speedup_vs_list_loop": loop_s["list"] / vec_s[episodes],
            "rstdp_episodes_together": float(episodes)}


def _time_vectorised(episodes: int, seconds: float, lif: LIFParams, p: STDPParams) -> float:
    """Seconds per reward batch of one episode, ``episodes`` readouts run together."""
    u, w, labels = _inputs(episodes=episodes)
    theta = np.zeros((episodes, SIZES["way"]), np.float32)
    batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or batches < 3:
        run = run_output(u, w, theta, 4.0, lif, p, learn=True)
        reward = np.where(decide(run) == labels, 1.0, -0.5).astype(np.float32)
        w = reward_update(w, run.elig, reward, 0.0, p)
        batches += 1
    return (time.perf_counter() - start) / (batches * episodes)


def _time_loop(u: np.ndarray, w: list | np.ndarray, seconds: float, lif: LIFParams,
               p: STDPParams) -> float:
    """Seconds per reward batch of the loop version, timed on whole samples, extrapolated."""
    samples, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or samples < 1:
        u_b = u[:, samples % SIZES["batch"]]
        e, counts = loop_sample(u_b.tolist() if isinstance(w, list) else u_b, w, lif, p, 4.0)
        loop_reward(w, e, 1.0 if list(counts).index(max(counts)) == 0 else -0.5, p)
        samples += 1
    return (time.perf_counter() - start) / samples * SIZES["batch"]
