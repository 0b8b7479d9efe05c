"""The compiled LIF kernels against the torch ops of the fused scan: identical results."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from helpers.protonet import make_learner

import snnexp.models.protonet.lif as lif_module
from snnexp.data.episodes import EpisodeSampler
from snnexp.models.protonet.lif import leaky_scan, use_kernels
from snnexp.models.protonet.surrogate import fast_sigmoid


def _scan(kernels: bool, lif, cur, steps, static, keep_mem, weights, monkeypatch):
    monkeypatch.setattr(lif_module, "KERNELS", kernels)
    cur = cur.clone().requires_grad_()
    spikes, mems = leaky_scan(lif, cur, steps, static, keep_mem=keep_mem)
    loss = (spikes * weights[0]).sum() + ((mems * weights[1]).sum() if keep_mem else 0)
    loss.backward()
    return spikes.detach(), None if mems is None else mems.detach(), cur.grad


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("keep_mem", [False, True])
@pytest.mark.parametrize("theta", [0.7, -0.2])
def test_kernels_equal_torch_ops_bit_for_bit(reset, static, keep_mem, theta, monkeypatch):
    gen = torch.Generator().manual_seed(3)
    steps, n = 11, 1300  # 1,300 neurons: blocks of 512 and a ragged last one
    cur = torch.rand((n,) if static else (steps, n), generator=gen) * 0.9 - 0.1
    weights = torch.randn(2, steps, n, generator=gen)
    lif = snn.Leaky(beta=0.9, threshold=theta, reset_mechanism=reset,
                    spike_grad=fast_sigmoid(slope=5))  # 5: products that round
    assert use_kernels(cur, lif.beta, lif.spike_grad)
    fast = _scan(True, lif, cur, steps, static, keep_mem, weights, monkeypatch)
    ref = _scan(False, lif, cur, steps, static, keep_mem, weights, monkeypatch)
    assert fast[0].sum() > 0 and (theta < 0 or (fast[0] == 0).any())  # spikes and silence
    for ours, theirs in zip(fast, ref, strict=True):
        assert (ours is None and theirs is None) or torch.equal(ours, theirs)


def test_kernels_only_where_they_are_exact():
    lif = snn.Leaky(beta=0.9, spike_grad=fast_sigmoid(slope=2))
    cur = torch.rand(4, 10)
    assert use_kernels(cur, lif.beta, lif.spike_grad)
    assert not use_kernels(cur.double(), lif.beta, lif.spike_grad)  # float32 only
    trained = snn.Leaky(beta=0.9, learn_beta=True, spike_grad=fast_sigmoid(slope=2))
    assert not use_kernels(cur, trained.beta, trained.spike_grad)  # dL/dbeta: the torch path


@pytest.mark.parametrize("backbone", ["notebook", "snell4"])
def test_training_step_identical_with_and_without_kernels(backbone, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    images, labels = torch.rand(40, 1, 16, 16, generator=gen), torch.arange(4).repeat(10)
    episode = EpisodeSampler(images, labels, 4, 2, 3, seed=0).sample()
    states = []
    for kernels in (True, False):
        monkeypatch.setattr(lif_module, "KERNELS", kernels)
        learner = make_learner((1, 16, 16), backbone=backbone, num_steps=5, threshold=0.5)
        stats = [learner.meta_train_step(episode) for _ in range(2)]
        states.append((stats, learner.net.state_dict()))
    assert states[0][0] == states[1][0]
    for key, value in states[0][1].items():
        assert torch.equal(value, states[1][1][key]), key


def test_kernels_leave_torch_thread_count_alone():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lif = snn.Leaky(beta=0.9, spike_grad=fast_sigmoid(slope=2))
        cur = torch.rand(5, 3000).requires_grad_()
        leaky_scan(lif, cur, 5, False)[0].sum().backward()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
