"""The ``way`` output LIF neurons with winner-take-all, trained in-episode by R-STDP.

Input is the pooled hidden activity ``u`` [T, B, D], divided by the support set's mean total
activity per step so that the readout gain does not depend on the dataset. Output current
``I_t = gain * u_t @ W`` with ``W`` [D, way] in ``[w_min, w_max]``; a hard winner-take-all
(``lif_wta_step``) lets at most one output neuron spike per step. The decision is the neuron
with most spikes (no spike counts as wrong); reward ``r = 1`` if it equals the label, else
``punishment``; after each batch of ``batch`` samples ``W <- clip(W + eta * sum_b (r_b - r_bar)
* e_b)`` with the MSTDPET eligibility ``e_b`` of each sample (``rstdp_dynamics``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from snnexp.models.rstdp_dynamics import (
    LIFParams,
    STDPParams,
    lif_init,
    lif_wta_step,
    reward_update,
    trace_step,
)


class ReadoutParams(NamedTuple):
    """Output gain (mV per step), episode protocol and reward settings."""

    gain: float = 4.0
    epochs: int = 30
    batch: int = 0
    punishment: float = -0.5
    baseline_rate: float = 0.0
    w_init: float = 0.5
    w_noise: float = 0.05
    normalize: str = "l2"
    theta_lr: float = 0.5


class OutputRun(NamedTuple):
    """Spike counts [B, way], free membrane drive [B, way] and eligibility [B, D, way] (or None)."""

    counts: np.ndarray
    drive: np.ndarray
    elig: np.ndarray | None


def run_output(u: np.ndarray, w: np.ndarray, theta: np.ndarray, gain: float, lif: LIFParams,
               stdp: STDPParams, learn: bool = False) -> OutputRun:
    """Simulate the output layer over normalised inputs ``u`` [T, B, D] with weights ``w``
    [D, way] and threshold offsets ``theta`` [way] (mV).

    With ``learn`` the eligibility at the end of the run is returned. Its recursion
    (``eligibility_step``) is linear, so it is summed in closed form after the LIF loop:
    ``e_T = sum_t exp(-(T-1-t) dt/tau_e) (a_plus x_t (x) s_t - a_minus u_t (x) y_t)`` with the
    traces ``x_t``, ``y_t`` of ``trace_step`` -- identical to stepping it, far cheaper.
    """
    t_steps, b, _ = u.shape
    way = w.shape[1]
    currents = u @ (np.float32(gain) * w).astype(np.float32)
    state = lif_init((b, way), lif, theta)
    spikes = np.zeros((t_steps, b, way), np.float32)
    for t in range(t_steps):
        spikes[t], state = lif_wta_step(currents[t], state, lif)
    counts, drive = spikes.sum(axis=0), currents.sum(axis=0)
    if not learn:
        return OutputRun(counts, drive, None)
    x, y = np.zeros_like(u), np.zeros_like(spikes)
    x_t, y_t = np.zeros(u.shape[1:], np.float32), np.zeros((b, way), np.float32)
    for t in range(t_steps):
        x[t] = x_t = trace_step(x_t, u[t], stdp.tau_plus, stdp.dt)
        y[t] = y_t = trace_step(y_t, spikes[t], stdp.tau_minus, stdp.dt)
    age = np.arange(t_steps - 1, -1, -1, dtype=np.float32)
    keep = np.exp(-age * np.float32(stdp.dt / stdp.tau_e)).astype(np.float32)[:, None, None]
    post = spikes.transpose(1, 0, 2)  # [B, T, way]; batched matmuls sum over t
    e = (np.float32(stdp.a_plus) * ((x * keep).transpose(1, 2, 0) @ post)
         - np.float32(stdp.a_minus) * ((u * keep).transpose(1, 2, 0) @ y.transpose(1, 0, 2)))
    return OutputRun(counts, drive, e.astype(np.float32))


def decide(run: OutputRun) -> np.ndarray:
    """Output with most spikes per sample (ties broken by the drive), ``-1`` when none spiked."""
    return np.where(run.counts.max(axis=1) > 0, logits(run).argmax(axis=1), -1)


def logits(run: OutputRun) -> np.ndarray:
    """Spike counts plus a tie-break (< 0.5) from the free membrane drive: [B, way]."""
    drive = run.drive / np.maximum(np.abs(run.drive).max(axis=1, keepdims=True), 1e-12)
    return (run.counts + np.float32(0.01) * drive).astype(np.float32)


def scale_columns(w: np.ndarray, w_mean: float, norm: str, stdp: STDPParams) -> np.ndarray:
    """Synaptic scaling of each output neuron's weight column ``W[:, k]`` to the norm (``l1`` or
    ``l2``) of a column of constant ``w_mean``, then clipping to ``[w_min, w_max]``; the neurons
    then compete on the pattern of their weights, not on their total strength."""
    d = w.shape[0]
    if norm == "l1":
        size, target = w.sum(axis=0, keepdims=True), w_mean * d
    else:
        size, target = np.sqrt((w * w).sum(axis=0, keepdims=True)), w_mean * np.sqrt(d)
    w = w * (np.float32(target) / np.maximum(size, np.float32(1e-12)))
    return np.clip(w, stdp.w_min, stdp.w_max).astype(np.float32)


def train_readout(u: np.ndarray, labels: np.ndarray, way: int, rng: np.random.Generator,
                  lif: LIFParams, stdp: STDPParams,
                  rp: ReadoutParams) -> tuple[np.ndarray, np.ndarray, float]:
    """R-STDP on the support set: ``epochs`` shuffled passes in batches of ``batch`` samples.

    After each batch: the reward update, synaptic scaling of the weight columns, and output
    homeostasis ``theta_k <- theta_k + theta_lr * (way * wins_k / n_batch - 1)``, which makes a
    neuron that wins more than its share of the (class-balanced) support set harder to fire
    and revives neurons that never win.

    Args:
        u: [T, n_support, D] normalised hidden input. labels: [n_support] in ``0..way-1``.

    Returns:
        ``(W [D, way], theta [way], reward rate)``, the reward rate being the rewarded fraction.
    """
    n, d = u.shape[1], u.shape[2]
    noise = rng.uniform(-1.0, 1.0, (d, way)).astype(np.float32) * np.float32(rp.w_noise)
    w = np.clip(np.float32(rp.w_init) + noise, stdp.w_min, stdp.w_max).astype(np.float32)
    theta = np.zeros(way, np.float32)
    batch = n if rp.batch <= 0 else rp.batch
    r_bar, hits, trials = 0.0, 0, 0
    for _ in range(rp.epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch):
            idx = order[start:start + batch]
            run = run_output(u[:, idx], w, theta, rp.gain, lif, stdp, learn=True)
            choice = decide(run)
            correct = choice == labels[idx]
            reward = np.where(correct, 1.0, rp.punishment).astype(np.float32)
            w = reward_update(w, run.elig, reward, r_bar, stdp)
            if rp.normalize != "none":
                w = scale_columns(w, rp.w_init, rp.normalize, stdp)
            share = np.bincount(choice[choice >= 0], minlength=way) * (way / len(idx))
            theta = (theta + np.float32(rp.theta_lr) * (share - 1.0)).astype(np.float32)
            r_bar += rp.baseline_rate * (float(reward.mean()) - r_bar)
            hits, trials = hits + int(correct.sum()), trials + len(idx)
    return w, theta, hits / max(trials, 1)
