"""The ``way`` output LIF neurons with winner-take-all, trained in-episode by R-STDP.

Input is the pooled hidden activity ``u`` [T, B, D], divided by the support set's mean total
activity per step so that the readout gain does not depend on the dataset. Output current
``I_t = gain * u_t @ W`` with ``W`` [D, way] in ``[w_min, w_max]``; a hard winner-take-all
(``lif_wta_step``) lets at most one output neuron spike per step. The decision is the neuron
with most spikes (no spike counts as wrong); reward ``r = 1`` if it equals the label, else
``punishment``; after each batch of ``batch`` samples ``W <- clip(W + eta * sum_b (r_b - r_bar)
* e_b)`` with the MSTDPET eligibility ``e_b`` of each sample (``dynamics``).

The readouts of ``E`` episodes are independent networks, so they are simulated and trained
together on arrays with a leading episode axis (``train_readouts``): one Python step loop for
all of them. Every matrix product is one per episode with the same shapes whatever ``E`` is,
so the result is bit-identical to training them one by one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from snnexp.models.rstdp.dynamics import (
    LIFParams,
    STDPParams,
    lif_init,
    lif_wta_step,
    reward_update,
)


class ReadoutParams(NamedTuple):
    """Output gain (mV per step), episode protocol, reward settings, initial weights, synaptic
    scaling (``normalize``, see ``scale_columns``) and output homeostasis rate
    (``model.readout``)."""

    gain: float
    epochs: int
    batch: int
    punishment: float
    baseline_rate: float
    w_init: float
    w_noise: float
    normalize: str
    theta_lr: float


class OutputRun(NamedTuple):
    """Spike counts [B, way], free membrane drive [B, way] and eligibility [B, D, way] (or None)."""

    counts: np.ndarray
    drive: np.ndarray
    elig: np.ndarray | None


def support_scale(u_support: np.ndarray) -> np.float32:
    """The support set's mean total input per step, ``mean_{t,b} sum_d u[t, b, d]`` of
    ``u_support`` [T, n, D] (floored at ``1e-6``): the readout's inputs are divided by it."""
    return np.float32(max(float(u_support.sum(axis=2).mean()), 1e-6))


def eligibility_kernel(t_steps: int, stdp: STDPParams, dt: float) -> np.ndarray:
    """``M`` [T, T] with ``e_T = sum_s u_s (x) (M @ s_post)_s`` (closed form of the MSTDPET sum).

    With ``k_t = exp(-(T-1-t) dt/tau_e)`` (decay of the eligibility from step ``t`` to the
    end), ``d+ = exp(-dt/tau_plus)``, ``d- = exp(-dt/tau_minus)``:
    ``M[s, t] = a_plus k_t d+^(t-s) [t >= s] - a_minus k_s d-^(s-t) [t <= s]``.
    """
    s, t = np.meshgrid(np.arange(t_steps), np.arange(t_steps), indexing="ij")
    keep = np.exp(-(t_steps - 1 - np.arange(t_steps)) * dt / stdp.tau_e)
    ltp = stdp.a_plus * keep[t] * np.exp(-(t - s) * dt / stdp.tau_plus) * (t >= s)
    ltd = stdp.a_minus * keep[s] * np.exp(-(s - t) * dt / stdp.tau_minus) * (t <= s)
    return (ltp - ltd).astype(np.float32)


def run_output(u: np.ndarray, w: np.ndarray, theta: np.ndarray, gain: float, lif: LIFParams,
               stdp: STDPParams, learn: bool = False) -> OutputRun:
    """Simulate the output layer over normalised inputs ``u`` [T, B, D] with weights ``w``
    [D, way] and threshold offsets ``theta`` [way] (mV) -- or ``E`` independent episodes at
    once: ``u`` [T, E, B, D], ``w`` [E, D, way], ``theta`` [E, way] (results get the ``E`` axis).

    With ``learn`` the eligibility at the end of the run is returned. Its recursion
    (``eligibility_step``) is linear, so it is summed in closed form after the LIF loop:
    ``e_T = sum_t exp(-(T-1-t) dt/tau_e) (a_plus x_t (x) s_t - a_minus u_t (x) y_t)`` with the
    traces ``x_t``, ``y_t`` of ``trace_step``, i.e. ``e_T = u^T (M s)`` with
    ``eligibility_kernel`` ``M`` -- identical to stepping it, far cheaper.
    """
    if w.ndim == 2:
        run = run_output(u[:, None], w[None], np.asarray(theta)[None], gain, lif, stdp, learn)
        return OutputRun(*(None if a is None else a[0] for a in run))
    t_steps, e, b, d = u.shape
    way = w.shape[-1]
    currents = np.ascontiguousarray(u) @ (np.float32(gain) * w).astype(np.float32)
    state = lif_init((e, b, way), lif, np.asarray(theta, np.float32)[:, None, :])
    spikes = np.zeros((t_steps, e, b, way), np.float32)
    for t in range(t_steps):
        spikes[t], state = lif_wta_step(currents[t], state, lif)
    counts, drive = spikes.sum(axis=0), currents.sum(axis=0)
    if not learn:
        return OutputRun(counts, drive, None)
    # one matrix product per episode (same shapes whatever E is, so the same rounding)
    post = np.ascontiguousarray(spikes.transpose(1, 0, 2, 3)).reshape(e, t_steps, b * way)
    q = (eligibility_kernel(t_steps, stdp, lif.dt) @ post).reshape(e, t_steps, b, way)
    elig = (np.ascontiguousarray(u.transpose(1, 2, 3, 0))
            @ np.ascontiguousarray(q.transpose(0, 2, 1, 3)))
    return OutputRun(counts, drive, elig.astype(np.float32))


def decide(run: OutputRun) -> np.ndarray:
    """Output with most spikes per sample (ties broken by the drive), ``-1`` when none spiked."""
    return np.where(run.counts.max(axis=-1) > 0, logits(run).argmax(axis=-1), -1)


def logits(run: OutputRun) -> np.ndarray:
    """Spike counts plus a tie-break (< 0.5) from the free membrane drive: [..., B, way]."""
    drive = run.drive / np.maximum(np.abs(run.drive).max(axis=-1, keepdims=True), 1e-12)
    return (run.counts + np.float32(0.01) * drive).astype(np.float32)


def scale_columns(w: np.ndarray, w_mean: float, norm: str, stdp: STDPParams) -> np.ndarray:
    """Synaptic scaling of each output neuron's weight column ``W[..., :, k]`` to the norm
    (``l1`` or ``l2``) of a column of constant ``w_mean``, then clipping to ``[w_min, w_max]``;
    the neurons then compete on the pattern of their weights, not on their total strength."""
    d = w.shape[-2]
    if norm == "l1":
        size, target = w.sum(axis=-2, keepdims=True), w_mean * d
    else:
        size, target = np.sqrt((w * w).sum(axis=-2, keepdims=True)), w_mean * np.sqrt(d)
    w = w * (np.float32(target) / np.maximum(size, np.float32(1e-12)))
    return np.clip(w, stdp.w_min, stdp.w_max).astype(np.float32)


class ReadoutDraws(NamedTuple):
    """The random numbers of one episode's readout training: initial weight noise [D, way] and
    the support order of every epoch [epochs, n] (drawn up front, so that episodes trained
    together draw exactly what they would draw one by one)."""

    noise: np.ndarray
    orders: np.ndarray


def draw_readout(rng: np.random.Generator, n: int, d: int, way: int,
                 rp: ReadoutParams) -> ReadoutDraws:
    """Draw in the order: noise, then one permutation of ``range(n)`` per epoch."""
    noise = rng.uniform(-1.0, 1.0, (d, way)).astype(np.float32) * np.float32(rp.w_noise)
    orders = np.array([rng.permutation(n) for _ in range(rp.epochs)], np.int64).reshape(-1, n)
    return ReadoutDraws(noise, orders)


def train_readouts(u: np.ndarray, labels: np.ndarray, way: int, draws: list[ReadoutDraws],
                   lif: LIFParams, stdp: STDPParams,
                   rp: ReadoutParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R-STDP on the support sets of ``E`` independent episodes at once (see ``train_readout``).

    Args:
        u: [T, E, n, D] normalised hidden input. labels: [E, n] in ``0..way-1``.
        draws: per episode, from ``draw_readout``.

    Returns:
        ``(W [E, D, way], theta [E, way], reward rate [E])``.
    """
    e, n = labels.shape
    noise = np.stack([dr.noise for dr in draws])
    w = np.clip(np.float32(rp.w_init) + noise, stdp.w_min, stdp.w_max).astype(np.float32)
    theta = np.zeros((e, way), np.float32)
    batch = n if rp.batch <= 0 else rp.batch
    r_bar, hits = np.zeros(e, np.float32), np.zeros(e, np.int64)
    rows = np.arange(e)[:, None]
    for epoch in range(rp.epochs):
        order = np.stack([dr.orders[epoch] for dr in draws])
        for start in range(0, n, batch):
            idx = order[:, start:start + batch]
            run = run_output(u[:, rows, idx], w, theta, rp.gain, lif, stdp, learn=True)
            choice = decide(run)
            correct = choice == labels[rows, idx]
            reward = np.where(correct, 1.0, rp.punishment).astype(np.float32)
            w = reward_update(w, run.elig, reward, r_bar, stdp)
            if rp.normalize != "none":
                w = scale_columns(w, rp.w_init, rp.normalize, stdp)
            share = (choice[..., None] == np.arange(way)).sum(axis=1) * (way / idx.shape[1])
            theta = (theta + np.float32(rp.theta_lr) * (share - 1.0)).astype(np.float32)
            r_bar = (r_bar + np.float32(rp.baseline_rate) * (reward.mean(axis=1) - r_bar)
                     ).astype(np.float32)
            hits += correct.sum(axis=1)
    return w, theta, hits / max(rp.epochs * n, 1)


def train_readout(u: np.ndarray, labels: np.ndarray, way: int, rng: np.random.Generator,
                  lif: LIFParams, stdp: STDPParams,
                  rp: ReadoutParams) -> tuple[np.ndarray, np.ndarray, float]:
    """R-STDP on one support set: ``epochs`` shuffled passes in batches of ``batch`` samples.

    After each batch: the reward update, synaptic scaling of the weight columns, and output
    homeostasis ``theta_k <- theta_k + theta_lr * (way * wins_k / n_batch - 1)``, which makes a
    neuron that wins more than its share of the (class-balanced) support set harder to fire
    and revives neurons that never win.

    Args:
        u: [T, n_support, D] normalised hidden input. labels: [n_support] in ``0..way-1``.

    Returns:
        ``(W [D, way], theta [way], reward rate)``, the reward rate being the rewarded fraction.
    """
    draws = draw_readout(rng, u.shape[1], u.shape[2], way, rp)
    w, theta, rate = train_readouts(u[:, None], np.asarray(labels)[None], way, [draws], lif,
                                    stdp, rp)
    return w[0], theta[0], float(rate[0])
