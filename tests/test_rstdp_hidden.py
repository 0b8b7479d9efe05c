"""snnexp.models.rstdp.hidden: the fast hidden layer equals stepping the LIF rule; competitive
STDP and homeostasis."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.rstdp import YAML_PARAMS

from snnexp.models.rstdp.dynamics import lif_init, lif_wta_step, trace_step
from snnexp.models.rstdp.hidden import (
    HiddenRun,
    competitive_update,
    grid_shape,
    init_filters,
    patches,
    pool_spikes,
    simulate_hidden,
)


def test_competitive_stdp_moves_the_winning_filter_towards_its_input():
    w = np.full((4, 2), 0.25, np.float32)
    num = np.zeros((4, 2), np.float32)
    num[:, 0] = [3.0, 1.0, 0.0, 0.0]
    run = HiddenRun(None, None, num, np.array([4.0, 0.0], np.float32), None)
    hp = YAML_PARAMS.hidden._replace(lr=0.5)
    w_new, theta = competitive_update(w, np.zeros(2, np.float32), run, hp)
    np.testing.assert_allclose(w_new[:, 0], [0.5, 0.25, 0.125, 0.125], atol=1e-6)
    np.testing.assert_allclose(w_new[:, 1], 0.25)  # a filter that never fired keeps its weights
    assert theta[0] > 0 > theta[1]  # homeostasis: the busy filter is made harder to fire


def _reference_hidden(spikes_in, w, theta, lif, hp):
    """The hidden layer stepped with ``lif_wta_step`` on every neuron (the unoptimised rule)."""
    t_steps, b = spikes_in.shape[:2]
    h, wd, g = grid_shape(spikes_in.shape[2:], hp)
    state = lif_init((b, h, wd, w.shape[1]), lif, theta)
    pooled, num = [], np.zeros(w.shape, np.float32)
    trace = np.zeros(spikes_in.shape[1:], np.float32)
    for t in range(t_steps):
        spikes, state = lif_wta_step(patches(spikes_in[t], hp.kernel, hp.stride)
                                     @ (hp.gain * w), state, lif)
        trace = trace_step(trace, spikes_in[t], hp.tau_pre, lif.dt)
        num += patches(trace, hp.kernel, hp.stride).reshape(-1, w.shape[0]).T \
            @ spikes.reshape(-1, w.shape[1])
        pooled.append(pool_spikes(spikes, hp.pool, g))
    return np.stack(pooled), num


@pytest.mark.parametrize(("stride", "tau_pre"), [(1, 20.0), (2, 7.0)])
def test_fast_hidden_layer_spikes_exactly_as_stepping_lif_wta_step(stride, tau_pre):
    rng = np.random.default_rng(stride)
    images = rng.random((3, 2, 11, 11)).astype(np.float32)
    spikes_in = (rng.random((12, *images.shape)) < images).astype(np.float32)
    hp = YAML_PARAMS.hidden._replace(kernel=3, stride=stride, filters=5, pool=2, gain=2.0,
                                  tau_pre=tau_pre)
    lif = YAML_PARAMS.neuron
    w, theta = init_filters(rng, 2 * 9, 5), rng.normal(0, 0.5, 5).astype(np.float32)
    pooled, num = _reference_hidden(spikes_in, w, theta, lif, hp)
    learn = simulate_hidden(spikes_in, w, theta, lif, hp, learn=True)
    infer = simulate_hidden(spikes_in, w, theta, lif, hp)
    assert pooled.sum() > 20
    np.testing.assert_array_equal(learn.pooled, pooled)
    np.testing.assert_array_equal(infer.pooled, pooled)  # the cropped positions change nothing
    np.testing.assert_allclose(learn.num, num, rtol=1e-5)


def test_the_presynaptic_trace_follows_hidden_tau_pre_not_the_readouts_tau_plus():
    rng = np.random.default_rng(0)
    spikes_in = (rng.random((10, 2, 1, 6, 6)) < 0.5).astype(np.float32)
    w, theta = init_filters(rng, 9, 4), np.zeros(4, np.float32)
    runs = [simulate_hidden(spikes_in, w, theta, YAML_PARAMS.neuron,
                            YAML_PARAMS.hidden._replace(tau_pre=tau), learn=True).num
            for tau in (2.0, 50.0)]
    assert not np.allclose(runs[0], runs[1])
