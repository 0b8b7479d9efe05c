"""``precision=bf16``: bfloat16 synaptic operations, float32 state; refused where the hardware
has no bfloat16 arithmetic."""

from __future__ import annotations

import pytest
import torch
from helpers.protonet import make_learner

from snnexp import precision
from snnexp.data.episodes import EpisodeSampler
from snnexp.errors import UserError
from snnexp.models.protonet.lif import LeakyLayer

needs_bf16 = pytest.mark.skipif(not precision.cpu_has_bf16(),
                                reason="this CPU has no AVX-512 BF16 or AMX")


def episode(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    images = torch.rand(40, 1, 16, 16, generator=gen)
    labels = torch.arange(4).repeat_interleave(10)
    return EpisodeSampler(images, labels, 4, 2, 3, seed=seed).sample()


@needs_bf16
@pytest.mark.parametrize("backbone", ["notebook", "snell4"])
def test_bf16_convolutions_float32_membranes_and_weights(backbone):
    learner = make_learner((1, 16, 16), backbone=backbone, precision="bf16", num_steps=3)
    seen: list[tuple[torch.dtype, torch.dtype]] = []
    ops = [m for m in learner.net.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    hooks = [op.register_forward_hook(lambda m, i, o: seen.append(("op", o.dtype)))
             for op in ops]
    hooks += [m.register_forward_hook(lambda m, i, o: seen.append(("lif", o[0].dtype)))
              for m in learner.net.modules() if isinstance(m, LeakyLayer)]
    stats = learner.meta_train_step(episode())
    for h in hooks:
        h.remove()
    assert {d for kind, d in seen if kind == "op"} == {torch.bfloat16}
    assert {d for kind, d in seen if kind == "lif"} == {torch.float32}  # spikes and membranes
    assert torch.isfinite(torch.tensor(stats["loss"]))
    assert all(p.dtype == torch.float32 for p in learner.net.parameters())
    moments = [s["exp_avg"] for s in learner.optimizer.state.values()]
    assert moments and all(m.dtype == torch.float32 for m in moments)


@needs_bf16
def test_bf16_embeddings_are_float32_and_close_to_fp32():
    ep = episode(1)
    fp32 = make_learner((1, 16, 16), backbone="snell4", num_steps=4)
    bf16 = make_learner((1, 16, 16), backbone="snell4", num_steps=4, precision="bf16")
    fp32.net.eval(), bf16.net.eval()
    with torch.no_grad():
        a, b = fp32.embed(ep.query_x), bf16.embed(ep.query_x)
    assert b.dtype == torch.float32
    assert not torch.equal(a, b)  # bf16 did round something
    # bf16 keeps 8 bits of mantissa (relative rounding 2^-9); a neuron whose membrane lies
    # that close to threshold may flip a spike, so the embeddings differ by more, but little
    assert (a - b).norm() / a.norm() < 0.1


def test_bf16_refused_without_hardware_support(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    with pytest.raises(UserError, match=r"^precision=bf16: .*\(allowed here: fp32\)$"):
        make_learner(precision="bf16")
    make_learner(precision="fp32")  # fp32 needs nothing
