"""Energy estimate: the formulas on hand examples, and the figures of a ProtoNet run."""

from __future__ import annotations

import pytest
import torch
from helpers.protonet import make_learner

from snnexp.encoding import DirectEncoder, RateEncoder
from snnexp.energy import (
    E_MAC_PJ,
    E_SYNOP_PJ,
    ann_energy_pj,
    energy_figures,
    snn_energy_pj,
)
from snnexp.models.protonet import ProtoNetLearner


def test_constants_are_horowitz_45nm_float32():
    assert [round(E_SYNOP_PJ, 9), round(E_MAC_PJ, 9)] == [0.9, 4.6]


def test_formulas_on_a_hand_example():
    # 1,000 SynOps and 10 analog MACs: 900 pJ + 46 pJ; the ANN's 500 MACs: 2,300 pJ
    assert snn_energy_pj(1000, 10) == pytest.approx(946.0)
    assert ann_energy_pj(500) == pytest.approx(2300.0)
    figures = energy_figures({"total/synops": 1000.0, "input/macs": 10.0}, ann_macs=500)
    assert figures["energy/snn_pj"] == pytest.approx(946.0)
    assert figures["energy/ann_pj"] == pytest.approx(2300.0)
    assert figures["energy/ann_over_snn"] == pytest.approx(2300 / 946)
    # one 10 pJ weight read per event: 946 + (1000 + 10) * 10 and 2300 + 500 * 10
    assert figures["energy/snn_pj_weight_fetch"] == pytest.approx(11046.0)
    assert figures["energy/ann_pj_weight_fetch"] == pytest.approx(7300.0)


def test_ann_run_has_no_snn_energy():
    figures = energy_figures({"total/macs": 500.0}, ann_macs=500)
    assert "energy/snn_pj" not in figures and figures["energy/ann_pj"] == pytest.approx(2300.0)


def saturated_learner(neuron: str = "lif", encoder=None, num_steps: int = 3,
                      **overrides) -> ProtoNetLearner:
    """Notebook backbone on 8x8 images with zero weights and bias 2 > threshold 1: every LIF
    neuron spikes at every step, so the counts are known by hand."""
    learner = make_learner((1, 8, 8), encoder or DirectEncoder(), neuron=neuron,
                           num_steps=num_steps, **overrides)
    with torch.no_grad():
        for name, param in learner.net.named_parameters():
            if name.startswith("ops."):
                param.fill_(2.0 if name.endswith("bias") else 0.0)
    learner.net.eval()
    return learner


def test_spiking_protonet_counts_spikes_synops_and_energy_by_hand():
    steps, batch = 3, 4
    learner = saturated_learner(num_steps=steps)
    with torch.no_grad():
        learner.embed(torch.rand(batch, 1, 8, 8))
    stats = learner.spike_stats()
    # layer1 conv16@5x5 on 8x8: 1,024 neurons; pooled to 16x4x4 = 256 senders, fan-out 32*3*3
    # layer2 conv32@3x3 on 4x4: 512 neurons; pooled to 128 senders, fan-out 64 (the linear)
    # layer3 linear 64: 64 neurons, no synapses out
    assert stats["layer1/spikes"] == pytest.approx(1024 * steps)
    assert stats["layer2/spikes"] == pytest.approx(512 * steps)
    assert stats["layer3/spikes"] == pytest.approx(64 * steps)
    synops = (256 * 288 + 128 * 64) * steps
    assert stats["total/synops"] == pytest.approx(synops)
    analog_macs = 8 * 8 * 16 * 25  # the first conv on the analog image, once per forward
    assert stats["input/macs"] == pytest.approx(analog_macs)
    ann_macs = analog_macs + 4 * 4 * 32 * 16 * 9 + 32 * 2 * 2 * 64
    assert stats["energy/ann_macs"] == pytest.approx(ann_macs)
    assert stats["energy/snn_pj"] == pytest.approx(synops * 0.9 + analog_macs * 4.6)
    assert stats["energy/ann_pj"] == pytest.approx(ann_macs * 4.6)


def test_an_average_pool_of_spikes_sends_every_spike_on():
    """``model.spike_pool=avg``: each spike reaches the next layer (a sum pool on hardware), so
    the SynOps are every spike of layers 1 and 2 times the fan-out, 4x the max-pool's."""
    steps = 3
    learner = saturated_learner(num_steps=steps, spike_pool="avg")
    with torch.no_grad():
        learner.embed(torch.rand(4, 1, 8, 8))
    stats = learner.spike_stats()
    assert stats["layer1/spikes"] == pytest.approx(1024 * steps)
    assert stats["total/synops"] == pytest.approx((1024 * 288 + 512 * 64) * steps)


def test_spike_encoded_input_costs_synops_not_macs():
    steps = 2
    learner = saturated_learner(encoder=RateEncoder(gain=1.0), num_steps=steps)
    with torch.no_grad():
        learner.embed(torch.ones(2, 1, 8, 8))  # gain 1 on white pixels: a spike every step
    stats = learner.spike_stats()
    assert "input/macs" not in stats
    assert stats["input/spikes"] == pytest.approx(64 * steps)
    assert stats["input/synops"] == pytest.approx(64 * steps * 16 * 25)
    assert stats["energy/snn_pj"] == pytest.approx(stats["total/synops"] * 0.9)


def test_ann_twin_reports_its_macs_and_energy():
    learner = saturated_learner(neuron="relu")
    with torch.no_grad():
        learner.embed(torch.rand(5, 1, 8, 8))
    stats = learner.spike_stats()
    assert stats["total/macs"] == pytest.approx(sum(learner.net.macs))
    assert stats["energy/ann_pj"] == pytest.approx(stats["total/macs"] * 4.6)
    assert "energy/snn_pj" not in stats
