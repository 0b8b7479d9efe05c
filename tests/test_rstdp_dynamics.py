"""snnexp.models.rstdp.dynamics: LIF neurons, winner-take-all, traces, eligibility, reward."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.rstdp import YAML_PARAMS

from snnexp.models.rstdp.dynamics import (
    LIFParams,
    eligibility_step,
    lif_init,
    lif_step,
    lif_wta_step,
    reward_update,
    trace_step,
)

# the constants the golden values below are worked out with (the original notebook's)
NOTEBOOK_LIF = LIFParams(v_rest=-65.0, v_reset=-65.0, v_th=-58.0, tau_m=10.0, t_ref=5.0, dt=1.0)


def test_lif_golden_trajectory_spike_reset_and_refractory_steps():
    p = NOTEBOOK_LIF
    state = lif_init((1,), p)
    trace_v, spikes = [], []
    for _ in range(10):
        s, state = lif_step(np.array([3.0], np.float32), state, p)
        trace_v.append(float(state.v[0]))
        spikes.append(float(s[0]))
    decay = np.exp(-0.1)
    v2 = -65.0 + 3.0 * decay + 3.0
    v3 = -65.0 + (v2 + 65.0) * decay + 3.0  # -56.83 >= -58: spike, reset
    assert trace_v[:2] == pytest.approx([-62.0, v2], abs=1e-4)
    assert v3 > -58.0 and trace_v[2] == -65.0
    assert spikes == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert trace_v[3:8] == [-65.0] * 5  # five refractory steps ignore the input
    assert trace_v[8] == pytest.approx(-62.0, abs=1e-4)  # integrates again on step 9


def test_a_threshold_offset_blocks_a_spike_and_is_kept():
    p = NOTEBOOK_LIF
    state = lif_init((2,), p, theta=np.array([0.0, 5.0], np.float32))
    s, state = lif_step(np.array([8.0, 8.0], np.float32), state, p)
    assert s.tolist() == [1.0, 0.0]  # -57 is above v_th but below v_th + theta = -53
    assert state.theta.tolist() == [0.0, 5.0]


def test_wta_lets_only_the_strongest_spike_and_silences_its_group():
    p = NOTEBOOK_LIF
    state = lif_init((2, 3), p)
    current = np.array([[8.0, 9.0, 7.5], [1.0, 1.0, 1.0]], np.float32)
    s, state = lif_wta_step(current, state, p)
    assert s.tolist() == [[0, 1, 0], [0, 0, 0]]
    assert state.v[0].tolist() == [-65.0] * 3 and state.refrac[0].tolist() == [5, 5, 5]
    assert state.v[1].tolist() == pytest.approx([-64.0] * 3)
    s, _ = lif_wta_step(current, state, p)
    assert s[0].sum() == 0.0  # the whole group is inhibited for the refractory period


def test_trace_decays_exponentially_after_a_spike():
    x = trace_step(np.zeros(1, np.float32), np.ones(1, np.float32), tau=20.0, dt=1.0)
    for _ in range(10):
        x = trace_step(x, np.zeros(1, np.float32), tau=20.0, dt=1.0)
    assert float(x[0]) == pytest.approx(np.exp(-10 / 20.0), rel=1e-5)


def _eligibility_after(pre_time: int, post_time: int, steps: int = 10) -> float:
    p, dt = YAML_PARAMS.stdp, YAML_PARAMS.neuron.dt
    x, y = np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32)
    e = np.zeros((1, 1, 1), np.float32)
    for t in range(steps):
        s_pre = np.full((1, 1), float(t == pre_time), np.float32)
        s_post = np.full((1, 1), float(t == post_time), np.float32)
        x, y = trace_step(x, s_pre, p.tau_plus, dt), trace_step(y, s_post, p.tau_minus, dt)
        e = eligibility_step(e, x, y, s_pre, s_post, p, dt)
    return float(e[0, 0, 0])


def test_eligibility_is_positive_for_pre_before_post_and_negative_for_post_before_pre():
    p, dt = YAML_PARAMS.stdp, YAML_PARAMS.neuron.dt
    causal, acausal = _eligibility_after(2, 5), _eligibility_after(5, 2)
    expected = np.exp(-3 * dt / p.tau_plus) * np.exp(-4 * dt / p.tau_e)  # 3 steps apart, at t=9
    assert causal == pytest.approx(p.a_plus * expected, rel=1e-5)
    assert acausal == pytest.approx(-p.a_minus * expected, rel=1e-5)


def test_reward_sign_flips_the_weight_change():
    p = YAML_PARAMS.stdp._replace(eta=0.1, w_min=0.0, w_max=1.0)
    w = np.full((3, 2), 0.5, np.float32)
    e = np.array([[[1.0, 0.0], [0.0, -1.0], [0.5, 0.0]]], np.float32)
    up = reward_update(w, e, np.array([1.0]), 0.0, p) - w
    down = reward_update(w, e, np.array([-1.0]), 0.0, p) - w
    assert up[0, 0] == pytest.approx(0.1) and up[1, 1] == pytest.approx(-0.1)
    np.testing.assert_allclose(down, -up, atol=1e-7)
    baseline = reward_update(w, e, np.array([1.0]), 0.75, p) - w
    np.testing.assert_allclose(baseline, 0.25 * up, atol=1e-7)


def test_reward_update_keeps_weights_within_bounds_under_large_updates():
    p = YAML_PARAMS.stdp._replace(eta=100.0, w_min=0.1, w_max=0.9)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 0.9, (20, 5)).astype(np.float32)
    e = rng.normal(size=(4, 20, 5)).astype(np.float32)
    w = reward_update(w, e, np.array([1.0, -1.0, 1.0, -0.5]), 0.0, p)
    assert w.min() == pytest.approx(0.1) and w.max() == pytest.approx(0.9)
