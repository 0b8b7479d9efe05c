"""The fused LIF scan against ``snntorch.Leaky`` stepped in a Python loop."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from helpers.protonet import make_network
from snntorch import surrogate

from snnexp.models.protonet.lif import fusable, leaky_scan, step_leaky
from snnexp.models.protonet.surrogate import fast_sigmoid

TIGHT = {"rtol": 1e-5, "atol": 1e-5}  # float32; float64 runs use TOL[torch.float64]
TOL = {torch.float32: TIGHT, torch.float64: {"rtol": 1e-10, "atol": 1e-10}}


def _pair(reset: str, learn_beta: bool, **kw) -> tuple[snn.Leaky, snn.Leaky]:
    make = lambda: snn.Leaky(beta=0.9, threshold=1.0, reset_mechanism=reset,
                             learn_beta=learn_beta,
                             spike_grad=kw.get("spike_grad", fast_sigmoid(slope=5)),
                             graded_spikes_factor=kw.get("graded", 1.0))
    return make(), make()


def _run(fn, lif, cur, steps, static, weights):
    """Forward, a loss mixing spikes and membranes, backward; returns outputs and grads."""
    cur = cur.clone().requires_grad_()
    spikes, mems = fn(lif, cur, steps, static, keep_mem=True)
    loss = (spikes * weights[0]).sum() + (mems * weights[1]).sum()
    loss.backward()
    beta_grad = lif.beta.grad.clone() if lif.beta.grad is not None else None
    return spikes.detach(), mems.detach(), cur.grad, beta_grad


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("learn_beta", [False, True])
@pytest.mark.parametrize("static", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [7, 1 << 15])  # 7: several chunks, the last one ragged
def test_fused_scan_matches_stepped_leaky_outputs_and_gradients(reset, learn_beta, static, dtype,
                                                               chunk, monkeypatch):
    monkeypatch.setattr("snnexp.models.protonet.lif.CHUNK", chunk)
    gen = torch.Generator().manual_seed(1)
    steps, shape, tol = 12, (3, 4, 5), TOL[dtype]
    cur = torch.rand((shape if static else (steps, *shape)), generator=gen, dtype=dtype) * 0.8
    weights = torch.randn(2, steps, *shape, generator=gen, dtype=dtype)
    fused_lif, ref_lif = _pair(reset, learn_beta)
    assert fusable(fused_lif)
    fused = _run(leaky_scan, fused_lif, cur, steps, static, weights)
    ref = _run(step_leaky, ref_lif, cur, steps, static, weights)
    assert torch.equal(fused[0].to(dtype), ref[0].to(dtype))
    assert fused[0].sum() > 0 and (fused[0] == 0).any()  # spikes and resets happened
    assert torch.allclose(fused[1], ref[1], **tol)
    assert torch.allclose(fused[2], ref[2], **tol)
    if learn_beta:
        assert torch.allclose(fused[3], ref[3], **TIGHT)  # beta is a float32 parameter
    else:
        assert fused[3] is None and ref[3] is None


def test_fused_scan_golden_trajectory_with_spike_and_subtractive_reset():
    lif = snn.Leaky(beta=0.5, threshold=1.0)
    spikes, mems = leaky_scan(lif, torch.tensor([0.6]), 4, static=True)
    # v = 0.6, 0.9, 1.05 (spike), 0.5*1.05 + 0.6 - 1 = 0.125
    assert torch.allclose(mems.flatten(), torch.tensor([0.6, 0.9, 1.05, 0.125]))
    assert spikes.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("kw", [{"graded": 2.0}, {"spike_grad": surrogate.fast_sigmoid(slope=5)},
                                {"spike_grad": surrogate.atan()}],
                         ids=["graded_spikes", "snntorch_fast_sigmoid", "snntorch_atan"])
def test_unsupported_leaky_falls_back_to_stepping_it(kw):
    """Graded spikes, or a spike function that is not snnexp's ``Surrogate`` (no derivative
    snnexp knows), step ``snntorch.Leaky`` itself: the same spikes and gradients."""
    lif, ref = _pair("subtract", False, **kw)
    assert not fusable(lif)
    cur = torch.rand(6, 10)
    ours, theirs = cur.clone().requires_grad_(), cur.clone().requires_grad_()
    spikes = leaky_scan(lif, ours, 6, False)[0]
    expected = step_leaky(ref, theirs, 6, False)[0]
    assert torch.equal(spikes, expected)
    spikes.sum().backward(), expected.sum().backward()
    assert torch.equal(ours.grad, theirs.grad)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_scan_without_grad_keeps_no_membranes(reset, monkeypatch):
    monkeypatch.setattr("snnexp.models.protonet.lif.CHUNK", 5)
    fused_lif, ref_lif = _pair(reset, False)
    cur = torch.rand(9, 12) * 0.8
    with torch.no_grad():
        spikes, mems = leaky_scan(fused_lif, cur, 9, static=False, keep_mem=False)
    assert spikes.shape == (9, 12) and mems is None
    assert torch.equal(spikes, step_leaky(ref_lif, cur, 9, False)[0])


def test_backward_without_membrane_output_uses_spikes_only():
    fused_lif, ref_lif = _pair("subtract", True)
    cur = torch.rand(8, 20)
    grads = []
    for fn, lif in ((leaky_scan, fused_lif), (step_leaky, ref_lif)):
        c = cur.clone().requires_grad_()
        fn(lif, c, 8, False, keep_mem=False)[0].sum().backward()
        grads.append((c.grad, lif.beta.grad))
    assert torch.allclose(grads[0][0], grads[1][0], **TIGHT)
    assert torch.allclose(grads[0][1], grads[1][1], **TIGHT)


@pytest.mark.parametrize("readout", ["membrane", "spikes"])
def test_network_with_fused_scan_matches_stepped_leaky(readout, monkeypatch):
    net = make_network((1, 12, 12), embedding_dim=16, readout=readout, learn_beta=True)
    x = torch.rand(6, 1, 12, 12) * 3
    results = []
    for scan in (leaky_scan, step_leaky):
        monkeypatch.setattr("snnexp.models.protonet.lif.leaky_scan", scan)
        net.zero_grad()
        out = net(x, 10)  # static: [B, C, H, W]
        out.pow(2).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    assert torch.allclose(results[0][0], results[1][0], **TIGHT)
    for fused_grad, ref_grad in zip(results[0][1], results[1][1], strict=True):
        assert torch.allclose(fused_grad, ref_grad, rtol=1e-4, atol=1e-5)

