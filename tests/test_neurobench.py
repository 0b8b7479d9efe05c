"""NeuroBench's metrics (``snnexp.neurobench``) on networks small enough to count by hand."""

from __future__ import annotations

import pytest
import torch
from helpers.rstdp import make_learner as make_rstdp
from helpers.rstdp import rate_encoder

from snnexp.encoding import DirectEncoder
from snnexp.models.protonet import ProtoNetLearner
from snnexp.models.protonet.network import BlockSpec, SpikingConvNet
from snnexp.models.protonet.surrogate import fast_sigmoid
from snnexp.neurobench import LayerCount, figures


def tiny_learner() -> ProtoNetLearner:
    """1x1x2 image -> linear(2) LIF -> linear(1) integrator, beta 0.5, theta 1, T = 2."""
    net = SpikingConvNet((1, 1, 2), [BlockSpec("linear", 2), BlockSpec("linear", 1)],
                         neuron="lif", padding="same", beta=0.5, learn_beta=False,
                         threshold=1.0, readout="integrator", spike_grad=fast_sigmoid(slope=2))
    with torch.no_grad():
        net.ops[0][1].weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.0]]))
        net.ops[0][1].bias.zero_()
        net.ops[1][1].weight.copy_(torch.tensor([[3.0, 0.0]]))
        net.ops[1][1].bias.zero_()
    return ProtoNetLearner(net, DirectEncoder(), [1, 1, 2], num_steps=2, distance="squared",
                           precision="fp32")


def test_protonet_figures_by_hand():
    learner = tiny_learner()
    learner.net.eval()
    with torch.no_grad():
        learner.embed(torch.tensor([[[[1.0, 0.0]]]]))
    nb = learner.neurobench()
    # layer 1: I = (2, 0) each step. Neuron a: v = 2 > 1 fires; v = 0.5*2 + 2 - 1 = 2 fires
    # again; neuron b never fires: 2 spikes of 2 neurons x 2 steps -> sparsity 0.5.
    assert nb["neurobench/layer1/activation_sparsity"] == pytest.approx(0.5)
    # static analog input: the first op runs once, 2 x 2 = 4 MACs dense; 1 non-zero pixel
    # reaching 2 outputs = 2 effective MACs; no binary input
    assert nb["neurobench/layer1/synops_dense"] == 4
    assert nb["neurobench/layer1/synops_effective_macs"] == 2
    assert nb["neurobench/layer1/synops_effective_acs"] == 0
    # layer 2 (integrator, no spiking neurons): 2 inputs x 1 output x 2 steps dense; the 2
    # spikes of layer 1 each reach 1 synapse: 2 ACs
    assert "neurobench/layer2/activation_sparsity" not in nb
    assert nb["neurobench/layer2/synops_dense"] == 4
    assert nb["neurobench/layer2/synops_effective_acs"] == 2
    # zero weights: 3 of 4, then 1 of 2; in total 4 of 6
    assert nb["neurobench/layer1/connection_sparsity"] == pytest.approx(0.75)
    assert nb["neurobench/layer2/connection_sparsity"] == pytest.approx(0.5)
    assert nb["neurobench/total/connection_sparsity"] == pytest.approx(4 / 6)
    # bytes: weights + biases in float32, and each snnTorch Leaky's buffers (threshold, beta,
    # graded_spikes_factor: float32; reset_mechanism_val: int64) = 20 bytes
    assert nb["neurobench/layer1/footprint_bytes"] == (4 + 2) * 4 + 20
    assert nb["neurobench/layer2/footprint_bytes"] == (2 + 1) * 4 + 20
    assert nb["neurobench/total/footprint_bytes"] == 44 + 32
    assert nb["neurobench/total/synops_dense"] == 8
    assert nb["neurobench/total/activation_sparsity"] == pytest.approx(0.5)


def test_figures_sum_counts_before_taking_ratios():
    out = figures([LayerCount("a", activations=10, spikes=1, weights=4, zero_weights=4),
                   LayerCount("b", activations=30, spikes=19, weights=6, zero_weights=0)])
    assert out["neurobench/a/activation_sparsity"] == pytest.approx(0.9)
    assert out["neurobench/total/activation_sparsity"] == pytest.approx(1 - 20 / 40)
    assert out["neurobench/total/connection_sparsity"] == pytest.approx(0.4)


def test_rstdp_figures_are_counts_of_its_layers():
    learner = make_rstdp(rate_encoder())
    support_x = torch.rand(4, 1, 8, 8)
    learner.predict(support_x, torch.tensor([0, 0, 1, 1]), torch.rand(3, 1, 8, 8))
    nb = learner.neurobench()
    stats = learner.spike_stats()
    hidden = learner.w_hidden
    assert nb["neurobench/hidden/footprint_bytes"] == hidden.nbytes + learner.theta.nbytes
    assert nb["neurobench/hidden/synops_effective_acs"] == stats["input/synops"]
    assert nb["neurobench/output/synops_effective_acs"] == stats["hidden/synops"]
    for layer in ("hidden", "output", "total"):
        assert 0 <= nb[f"neurobench/{layer}/activation_sparsity"] <= 1
        assert nb[f"neurobench/{layer}/synops_effective_macs"] == 0  # spikes only
        assert nb[f"neurobench/{layer}/synops_effective_acs"] <= \
            nb[f"neurobench/{layer}/synops_dense"]
