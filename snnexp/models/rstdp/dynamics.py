"""Pure NumPy step functions of the R-STDP network: LIF neurons, STDP traces, eligibility, reward.

Every function takes explicit state and returns the new state; nothing is kept at module level.
Arrays are float32 and vectorised over synapses and over a leading batch of samples. The
parameter tuples have no defaults: their values come from ``conf/model/rstdp.yaml`` (sections
``model.neuron`` and ``model.stdp``, see ``snnexp.models.rstdp.config``).

Equations (one step of length ``dt``):

- LIF: ``v <- v_rest + (v - v_rest) * exp(-dt/tau_m) + I`` (input ``I`` ignored while
  refractory); spike when ``v >= v_th + theta`` (``theta``: a threshold offset the layers'
  homeostasis sets); then ``v <- v_reset`` and ``t_ref/dt`` refractory steps.
- Traces: ``x <- x * exp(-dt/tau_plus) + s_pre``, ``y <- y * exp(-dt/tau_minus) + s_post``.
- Eligibility (MSTDPET, Florian 2007): ``e <- e * exp(-dt/tau_e) + a_plus * x (x) s_post
  - a_minus * s_pre (x) y``.
- Reward: ``W <- clip(W + eta * sum_b (r_b - r_bar) * e_b, w_min, w_max)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class LIFParams(NamedTuple):
    """LIF constants in mV and ms (``model.neuron``)."""

    v_rest: float
    v_reset: float
    v_th: float
    tau_m: float
    t_ref: float
    dt: float

    @property
    def decay(self) -> np.float32:
        return np.float32(np.exp(-self.dt / self.tau_m))

    @property
    def ref_steps(self) -> int:
        return int(round(self.t_ref / self.dt))


class LIFState(NamedTuple):
    """Membrane ``v`` [..., N] (mV), refractory steps left ``refrac`` [..., N] (int16) and
    adaptive threshold offset ``theta`` (broadcastable to ``v``, mV)."""

    v: np.ndarray
    refrac: np.ndarray
    theta: np.ndarray


class STDPParams(NamedTuple):
    """Trace time constants (ms), STDP amplitudes, eligibility decay, reward-learning rate and
    weight bounds of the readout's R-STDP rule (``model.stdp``); the step ``dt`` is the
    neurons' (``LIFParams.dt``)."""

    tau_plus: float
    tau_minus: float
    tau_e: float
    a_plus: float
    a_minus: float
    eta: float
    w_min: float
    w_max: float


def lif_init(shape: tuple[int, ...], p: LIFParams, theta: np.ndarray | float = 0.0) -> LIFState:
    """Resting state of ``shape`` neurons."""
    return LIFState(np.full(shape, p.v_rest, np.float32), np.zeros(shape, np.int16),
                    np.asarray(theta, np.float32))


def _integrate(current: np.ndarray, s: LIFState, p: LIFParams) -> tuple[np.ndarray, np.ndarray]:
    """Leak and integrate; returns the new membrane and the mask of non-refractory neurons."""
    active = s.refrac == 0
    v = np.float32(p.v_rest) + (s.v - np.float32(p.v_rest)) * p.decay
    v = v + np.where(active, current, np.float32(0.0)).astype(np.float32)
    return v, active


def _fire(v: np.ndarray, s: LIFState, p: LIFParams, reset_mask: np.ndarray) -> LIFState:
    """Reset and refractory counters of ``reset_mask`` (the threshold offset is kept)."""
    v = np.where(reset_mask, np.float32(p.v_reset), v).astype(np.float32)
    refrac = np.where(reset_mask, np.int16(p.ref_steps), np.maximum(s.refrac - 1, 0))
    return LIFState(v, refrac.astype(np.int16), s.theta)


def lif_step(current: np.ndarray, s: LIFState, p: LIFParams) -> tuple[np.ndarray, LIFState]:
    """One LIF step. ``current`` [..., N] in mV per step; returns float32 spikes [..., N]."""
    v, active = _integrate(current, s, p)
    fired = active & (v >= np.float32(p.v_th) + s.theta)
    spikes = fired.astype(np.float32)
    return spikes, _fire(v, s, p, fired)


def lif_wta_step(current: np.ndarray, s: LIFState, p: LIFParams) -> tuple[np.ndarray, LIFState]:
    """One LIF step with hard winner-take-all over the last axis.

    Of the neurons of a group (last axis) above threshold only the one furthest above it spikes;
    its spike inhibits the whole group for the refractory period: every membrane of the group is
    reset to ``v_reset`` and ignores input for ``t_ref``, so one neuron of a group spikes at a time.
    """
    v, active = _integrate(current, s, p)
    margin = v - (np.float32(p.v_th) + s.theta)
    margin = np.where(active & (margin >= 0), margin, -np.inf)
    best = margin.max(axis=-1, keepdims=True)
    any_fired = np.isfinite(best)
    first = margin.argmax(axis=-1)[..., None] == np.arange(v.shape[-1])
    spikes = (first & any_fired).astype(np.float32)
    return spikes, _fire(v, s, p, np.broadcast_to(any_fired, v.shape))


def trace_step(trace: np.ndarray, spikes: np.ndarray, tau: float, dt: float) -> np.ndarray:
    """``x <- x * exp(-dt/tau) + s``."""
    return (trace * np.float32(np.exp(-dt / tau)) + spikes).astype(np.float32)


def eligibility_step(e: np.ndarray, x_pre: np.ndarray, y_post: np.ndarray, s_pre: np.ndarray,
                     s_post: np.ndarray, p: STDPParams, dt: float) -> np.ndarray:
    """MSTDPET eligibility ``e`` [B, n_pre, n_post] from traces and spikes [B, n_pre], [B, n_post].

    ``e <- e * exp(-dt/tau_e) + a_plus * x_pre (x) s_post - a_minus * s_pre (x) y_post``:
    pre-before-post makes it positive, post-before-pre negative. Traces must already include
    this step's spikes.
    """
    decay = np.float32(np.exp(-dt / p.tau_e))
    ltp = np.float32(p.a_plus) * x_pre[:, :, None] * s_post[:, None, :]
    ltd = np.float32(p.a_minus) * s_pre[:, :, None] * y_post[:, None, :]
    return (e * decay + ltp - ltd).astype(np.float32)


def reward_update(w: np.ndarray, e: np.ndarray, reward: np.ndarray, baseline: float | np.ndarray,
                  p: STDPParams) -> np.ndarray:
    """``W <- clip(W + eta * sum_b (r_b - r_bar) * e_b, w_min, w_max)``.

    Args:
        w: [n_pre, n_post] weights. e: [B, n_pre, n_post] eligibility at reward time.
        reward: [B] rewards. baseline: running mean reward ``r_bar`` (0 disables it).
        Or ``E`` independent networks at once: w [E, n_pre, n_post], e [E, B, n_pre, n_post],
        reward [E, B], baseline scalar or [E].
    """
    if w.ndim == 2:
        return reward_update(w[None], e[None], np.asarray(reward)[None], baseline, p)[0]
    n_net, b = e.shape[:2]
    base = np.asarray(baseline, np.float32).reshape(-1, 1)
    mod = (np.asarray(reward, np.float32) - base) * np.float32(p.eta)
    dw = (mod[:, None, :] @ np.ascontiguousarray(e).reshape(n_net, b, -1)).reshape(w.shape)
    return np.clip(w + dw, p.w_min, p.w_max).astype(np.float32)
