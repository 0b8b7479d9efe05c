"""Convolutional hidden LIF layer with local winner-take-all, competitive STDP and homeostasis.

Every input patch position holds ``filters`` LIF neurons that share one weight vector per filter
(``w`` [C*k*k, filters], each column L1-normalised to 1). Lateral inhibition is a hard
winner-take-all over the filters of a position (``lif_wta_step``). The input current of a neuron
at position ``p`` is ``I = gain * P_t[p] . w_f`` where ``P_t[p]`` is the patch of input spikes.

Plasticity (meta-training only; in the spirit of Diehl & Cook 2015, the competitive rule of
Nessler et al. 2013): on each post-synaptic spike the filter moves towards the presynaptic trace
patch that made it fire, ``w_f <- normalise(w_f + lr * (x_hat_f - w_f))`` with ``x_hat_f`` the
L1-normalised mean pre-trace patch over the filter's spikes of a batch. Homeostasis raises the
threshold offset ``theta_f`` of filters that fire more than the mean filter and lowers it for the
others: ``theta_f <- theta_f + theta_lr * (rate_f / mean_rate - 1)``.

Hidden spikes are sum-pooled over ``pool x pool`` blocks of positions (the readout synapses are
shared within a block), giving the readout input [T, B, D] with ``D = g*g*filters``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from snnexp.models.rstdp.dynamics import LIFParams


class HiddenParams(NamedTuple):
    """Plasticity mode, geometry, input gain (mV per step), plasticity rates and presynaptic
    trace time constant (ms) of the hidden layer (``model.hidden``). ``mode``: ``stdp``
    (``competitive_update`` during meta-training) or ``random`` (the initial filters kept)."""

    mode: str
    kernel: int
    stride: int
    filters: int
    pool: int
    gain: float
    lr: float
    theta_lr: float
    tau_pre: float


class HiddenRun(NamedTuple):
    """Result of one simulation: pooled spikes [T, B, D], hidden spike counts per sample [B],
    plasticity sums (``num`` [C*k*k, F] and ``cnt`` [F], zero when not learning) and, when
    recorded, the raw hidden spikes [T, B, h, w, F]."""

    pooled: np.ndarray
    counts: np.ndarray
    num: np.ndarray
    cnt: np.ndarray
    raw: np.ndarray | None


def patches(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """[B, C, H, W] -> [B, h, w, C*k*k] patches (row-major within a patch, channel first)."""
    view = sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
    b, c, h, w = view.shape[:4]
    return view.transpose(0, 2, 3, 1, 4, 5).reshape(b, h, w, c * kernel * kernel)


def grid_shape(input_shape: tuple[int, int, int], hp: HiddenParams) -> tuple[int, int, int]:
    """``(h, w, g)``: positions per side and pooled cells per side (``g = min(h, w) // pool``)."""
    _, height, width = input_shape
    h = (height - hp.kernel) // hp.stride + 1
    w = (width - hp.kernel) // hp.stride + 1
    return h, w, min(h, w) // hp.pool


def init_filters(rng: np.random.Generator, n_in: int, filters: int) -> np.ndarray:
    """Random non-negative filters [n_in, filters], each column summing to 1."""
    w = rng.random((n_in, filters), dtype=np.float32) + np.float32(0.1)
    return (w / w.sum(axis=0, keepdims=True)).astype(np.float32)


def pool_spikes(spikes: np.ndarray, pool: int, g: int) -> np.ndarray:
    """Sum-pool [B, h, w, F] spikes over ``pool x pool`` blocks -> [B, g*g*F]."""
    b, f = spikes.shape[0], spikes.shape[-1]
    crop = spikes[:, : g * pool, : g * pool]
    return crop.reshape(b, g, pool, g, pool, f).sum(axis=(2, 4)).reshape(b, g * g * f)


def _shifted_patches(x: np.ndarray, kernel: int, stride: int, h: int, w: int,
                     out: np.ndarray) -> np.ndarray:
    """[B, C, H, W] -> patches in filter-major layout ``out`` [C*k*k, B*h*w] (same row order as
    ``patches``): one strided slice copy per kernel offset, no 6-D gather."""
    c = x.shape[1]
    view = out.reshape(c, kernel, kernel, x.shape[0], h, w)
    for dy in range(kernel):
        for dx in range(kernel):
            rows = x[:, :, dy:dy + (h - 1) * stride + 1:stride, dx:dx + (w - 1) * stride + 1:stride]
            view[:, dy, dx] = rows.transpose(1, 0, 2, 3)
    return out


def _pool_index(b: int, h: int, w: int, hp: HiddenParams, g: int) -> np.ndarray:
    """Pooled cell of every position [B*h*w] (``-1`` for positions cropped by the pooling)."""
    rows, cols = np.arange(h) // hp.pool, np.arange(w) // hp.pool
    cell = rows[:, None] * g + cols[None, :]
    cell = np.where((rows[:, None] < g) & (cols[None, :] < g), cell, -1)
    return np.tile(cell.ravel(), b)


def simulate_hidden(spikes_in: np.ndarray, w: np.ndarray, theta: np.ndarray, lif: LIFParams,
                    hp: HiddenParams, learn: bool = False, record: bool = False) -> HiddenRun:
    """Run the hidden layer over input spikes [T, B, C, H, W] (weights fixed during the run).

    Exactly ``lif_wta_step`` per position (a group of ``filters`` neurons sharing one refractory
    counter), computed in membrane offsets ``u = v - v_rest`` in a filter-major layout
    ``[F, B*h*w]``: ``u <- u * exp(-dt/tau_m) + I`` (no input while refractory); the group's
    neuron furthest above ``v_th - v_rest + theta_f`` spikes, the group resets. Spikes are kept
    as indices (a position fires at most once per step). Without ``learn`` or ``record`` only the
    ``g*pool`` positions per side that feed the pooled readout are simulated (the others reach
    no synapse), so ``counts`` then counts the connected hidden neurons.
    """
    t_steps, b = spikes_in.shape[:2]
    h, wd, g = grid_shape(spikes_in.shape[2:], hp)
    if not (learn or record):
        h = wd = g * hp.pool
        side = (h - 1) * hp.stride + hp.kernel
        spikes_in = spikes_in[..., :side, :side]
    n_in, f = w.shape
    n = b * h * wd
    u, m = np.zeros((f, n), np.float32), np.empty((f, n), np.float32)
    refrac = np.zeros(n, np.int16)
    th = (np.float32(lif.v_th - lif.v_rest) + np.asarray(theta, np.float32))[:, None]
    decay, reset = lif.decay, np.float32(lif.v_reset - lif.v_rest)
    gain_wt = np.ascontiguousarray((np.float32(hp.gain) * w).T.astype(np.float32))
    buf = np.empty((n_in, n), np.float32)
    cell = _pool_index(b, h, wd, hp, g)
    per_sample = h * wd
    hits: list[np.ndarray] = []
    counts = np.zeros(b, np.float32)
    num, cnt = np.zeros((n_in, f), np.float32), np.zeros(f, np.float32)
    trace = np.zeros(spikes_in.shape[1:], np.float32)
    pre_decay = np.float32(np.exp(-lif.dt / hp.tau_pre))
    raw = np.zeros((t_steps, f, n), np.float32) if record else None
    for t in range(t_steps):
        current = gain_wt @ _shifted_patches(spikes_in[t], hp.kernel, hp.stride, h, wd, buf)
        u *= decay
        active = refrac == 0
        if not active.all():
            current *= active
        u += current
        np.subtract(u, th, out=m)
        pos = np.flatnonzero((m.max(axis=0) >= 0) & active)
        np.subtract(refrac, 1, out=refrac, where=refrac > 0)
        if learn:
            trace = (trace * pre_decay + spikes_in[t]).astype(np.float32)
        if pos.size == 0:
            continue
        filt = m[:, pos].argmax(axis=0)
        u[:, pos] = reset
        refrac[pos] = lif.ref_steps
        sample = pos // per_sample
        counts += np.bincount(sample, minlength=b)
        keep = cell[pos] >= 0
        hits.append(((t * b + sample[keep]) * (g * g) + cell[pos[keep]]) * f + filt[keep])
        if record:
            raw[t, filt, pos] = 1.0
        if learn:
            view = sliding_window_view(trace, (hp.kernel, hp.kernel), axis=(2, 3))
            rest = pos % per_sample
            pre = view[:, :, ::hp.stride, ::hp.stride][sample, :, rest // wd, rest % wd]
            num += pre.reshape(len(pos), n_in).T @ (filt[:, None] == np.arange(f))
            cnt += np.bincount(filt, minlength=f)
    size = t_steps * b * g * g * f
    flat = np.concatenate(hits) if hits else np.zeros(0, np.int64)
    pooled = np.bincount(flat, minlength=size).astype(np.float32).reshape(t_steps, b, g * g * f)
    if record:
        raw = raw.reshape(t_steps, f, b, h, wd).transpose(0, 2, 3, 4, 1)
    return HiddenRun(pooled, counts, num, cnt, raw)


def competitive_update(w: np.ndarray, theta: np.ndarray, run: HiddenRun,
                       hp: HiddenParams) -> tuple[np.ndarray, np.ndarray]:
    """Apply the competitive STDP step and the homeostatic threshold step of one batch."""
    fired = run.cnt > 0
    target = run.num[:, fired] / np.maximum(run.num[:, fired].sum(axis=0, keepdims=True), 1e-12)
    w = w.copy()
    w[:, fired] += np.float32(hp.lr) * (target - w[:, fired])
    w = np.maximum(w, 0.0)
    w = (w / np.maximum(w.sum(axis=0, keepdims=True), 1e-12)).astype(np.float32)
    rate = run.cnt / max(float(run.cnt.mean()), 1e-12)
    theta = (theta + np.float32(hp.theta_lr) * (rate - 1.0)).astype(np.float32)
    return w, theta
