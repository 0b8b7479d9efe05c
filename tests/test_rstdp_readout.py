"""snnexp.models.rstdp.readout: the closed-form eligibility equals stepping the rule; the
trained weights stay within their bounds."""

from __future__ import annotations

import numpy as np
from helpers.rstdp import YAML_PARAMS

from snnexp.models.rstdp.dynamics import eligibility_step, lif_init, lif_wta_step, trace_step
from snnexp.models.rstdp.readout import run_output, train_readout


def test_closed_form_readout_eligibility_equals_stepping_the_rule():
    rng = np.random.default_rng(7)
    u = (rng.random((25, 3, 6)) < 0.4).astype(np.float32)
    w = rng.uniform(0.3, 0.9, (6, 4)).astype(np.float32)
    lif, p = YAML_PARAMS.neuron, YAML_PARAMS.stdp
    run = run_output(u, w, np.zeros(4, np.float32), 4.0, lif, p, learn=True)
    state, x, y = lif_init((3, 4), lif), np.zeros((3, 6), np.float32), np.zeros((3, 4), np.float32)
    e = np.zeros((3, 6, 4), np.float32)
    for t in range(25):
        s, state = lif_wta_step(u[t] @ (4.0 * w), state, lif)
        x, y = trace_step(x, u[t], p.tau_plus, lif.dt), trace_step(y, s, p.tau_minus, lif.dt)
        e = eligibility_step(e, x, y, u[t], s, p, lif.dt)
    assert run.counts.sum() > 3 and np.abs(e).max() > 0.1
    np.testing.assert_allclose(run.elig, e, rtol=1e-4, atol=1e-5)


def test_trained_readout_weights_stay_within_bounds():
    rng = np.random.default_rng(0)
    p = YAML_PARAMS.stdp._replace(eta=100.0, w_min=0.1, w_max=0.9)
    u = rng.random((15, 6, 20)).astype(np.float32)
    w, _, _ = train_readout(u, np.arange(6) % 3, 3, rng, YAML_PARAMS.neuron, p,
                            YAML_PARAMS.readout._replace(epochs=3))
    assert w.min() >= 0.1 and w.max() <= 0.9
