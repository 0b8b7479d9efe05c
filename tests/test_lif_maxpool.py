"""The LIF + max-pool kernel against the reference path: the fused LIF scan, then
``max_pool2d`` of its spikes (bit-identical outputs and gradients)."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from helpers.protonet import make_network

from snnexp.models.protonet.lif import LeakyIntegrator, LeakyLayer
from snnexp.models.protonet.lif_maxpool import applies, leaky_maxpool
from snnexp.models.protonet.network import channels_last_grad
from snnexp.models.protonet.surrogate import fast_sigmoid


def _lif(**kw) -> LeakyLayer:
    return LeakyLayer(beta=kw.pop("beta", 0.9), threshold=1.0, learn_beta=False,
                      spike_grad=kw.pop("spike_grad", fast_sigmoid(slope=5)), **kw)


def _reference(lif: LeakyLayer, cur: torch.Tensor, steps: int, static: bool) -> torch.Tensor:
    """The network's unfused path: the LIF scan, then a 2x2 max-pool of every step's spikes."""
    spikes, _ = lif(cur, steps, static, keep_mem=False)
    pooled = torch.nn.functional.max_pool2d(spikes.flatten(0, 1), 2)
    if pooled.requires_grad:
        pooled.register_hook(channels_last_grad)
    return pooled.unflatten(0, spikes.shape[:2])


def _both(cur: torch.Tensor, steps: int, static: bool, lif: LeakyLayer | None = None):
    """(kernel, reference) pooled spikes and input gradients under the same random loss."""
    lif = lif or _lif()
    out = []
    for fn in (leaky_maxpool, _reference):
        x = cur.detach().clone().requires_grad_()
        assert fn is _reference or applies(lif, x)
        pooled = fn(lif, x, steps, static)
        gen = torch.Generator().manual_seed(3)
        (pooled * torch.randn(pooled.shape, generator=gen)).sum().backward()
        out.append((pooled.detach(), x.grad))
    return out


def _current(shape: tuple[int, ...], static: bool, seed: int = 0) -> torch.Tensor:
    """A channels-last current (as conv currents are) firing some neurons and not others."""
    gen = torch.Generator().manual_seed(seed)
    cur = torch.randn(shape, generator=gen) * 0.6 + 0.25
    if static:
        return cur.contiguous(memory_format=torch.channels_last)
    return cur.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)


@pytest.mark.parametrize("static", [True, False], ids=["static", "per_step"])
@pytest.mark.parametrize("steps,shape", [(20, (3, 16, 8, 8)), (7, (2, 5, 7, 9)),
                                         (1, (2, 3, 4, 4)), (50, (2, 32, 6, 6))])
def test_kernel_matches_scan_then_max_pool_bit_for_bit(static, steps, shape):
    cur = _current(shape if static else (steps, *shape), static)
    (pooled, grad), (ref_pooled, ref_grad) = _both(cur, steps, static)
    batch, channels, height, width = shape
    assert pooled.shape == (steps, batch, channels, height // 2, width // 2)
    assert torch.equal(pooled, ref_pooled)
    assert torch.equal(grad, ref_grad)
    if steps > 1:  # windows with no spike, one spike and several: every routing case ran
        counts = _spikes_per_window(_lif(), cur, steps, static)
        assert {0, 1} <= set(counts.unique().tolist()) and counts.max() >= 2
    if height % 2:  # the row a 2x2 pool drops gets no gradient
        assert not grad[..., -1, :].any()


def _spikes_per_window(lif, cur, steps, static) -> torch.Tensor:
    with torch.no_grad():
        spikes, _ = lif(cur, steps, static, keep_mem=False)
    return torch.nn.functional.avg_pool2d(spikes.flatten(0, 1), 2) * 4


def test_static_gradient_sums_long_sequences_in_torch_order():
    """300 steps: the sum over time of a static input's gradient carries block sums up more
    than one level of PyTorch's cascade, and must still match it bit for bit."""
    cur = _current((2, 16, 4, 4), static=True, seed=1)
    (pooled, grad), (ref_pooled, ref_grad) = _both(cur, 300, static=True)
    assert torch.equal(pooled, ref_pooled) and torch.equal(grad, ref_grad)


def test_bf16_current_is_integrated_in_float32_like_the_scan():
    cur = _current((10, 2, 16, 6, 6), static=False).bfloat16()
    (pooled, grad), (ref_pooled, ref_grad) = _both(cur, 10, static=False)
    assert pooled.dtype == torch.float32 and grad.dtype == torch.bfloat16
    assert torch.equal(pooled, ref_pooled) and torch.equal(grad, ref_grad)


def test_kernel_without_grad_and_on_two_threads_gives_the_same_spikes():
    cur = _current((4, 16, 8, 8), static=True)
    threads = torch.get_num_threads()
    try:
        with torch.no_grad():
            torch.set_num_threads(1)
            one = leaky_maxpool(_lif(), cur, 12, True)
            torch.set_num_threads(2)
            two = leaky_maxpool(_lif(), cur, 12, True)
            # numba's threads must not change torch's (an OpenMP layer shared with torch did)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two) and torch.equal(one, _reference(_lif(), cur, 12, True))


@pytest.mark.parametrize("case", ["hook", "learn_beta", "snntorch_surrogate", "zero_reset",
                                  "integrator", "float64", "linear"])
def test_kernel_declines_what_it_does_not_reproduce(case):
    lif, cur = _lif(), _current((2, 4, 4, 4), static=True)
    if case == "hook":  # SpikeRecorder reads the full spike trains through a hook
        lif.register_forward_hook(lambda *args: None)
    elif case == "learn_beta":
        lif = LeakyLayer(beta=0.9, learn_beta=True, spike_grad=fast_sigmoid(slope=5))
    elif case == "snntorch_surrogate":
        lif = _lif(spike_grad=snn.surrogate.fast_sigmoid(slope=5))
    elif case == "zero_reset":
        lif = _lif(reset_mechanism="zero")
    elif case == "integrator":
        lif = LeakyIntegrator(beta=0.9, spike_grad=fast_sigmoid(slope=5), reset_mechanism="none")
    elif case == "float64":
        cur = cur.double()
    else:
        cur = cur.flatten(1)
    assert applies(_lif(), _current((2, 4, 4, 4), static=True))
    assert not applies(lif, cur)


@pytest.mark.parametrize("backbone", ["notebook", "snell4"])
def test_network_through_the_kernel_matches_the_unfused_network(backbone):
    """A whole network (channels-last currents, batch norm for snell4, a linear readout after
    the last pool for notebook): embeddings and every parameter's gradient bit-identical to the
    same network with the kernel declined (a hook on each LIF layer, as SpikeRecorder adds)."""
    net = make_network((1, 16, 16), backbone=backbone, embedding_dim=8)
    x = torch.rand(5, 1, 16, 16) * 2
    results = []
    for hooked in (False, True):
        handles = [lif.register_forward_hook(lambda *args: None) for lif in net.lifs] \
            if hooked else []
        net.zero_grad()
        out = net(x, 6)
        out.pow(2).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
        for handle in handles:
            handle.remove()
    assert torch.equal(results[0][0], results[1][0])
    for fused, ref in zip(results[0][1], results[1][1], strict=True):
        assert torch.equal(fused, ref)
    assert any(g.abs().sum() > 0 for g in results[0][1][:1])  # the first conv learns
