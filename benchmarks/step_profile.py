"""Where the time of snnexp's training step goes: ``torch.profiler`` self CPU time by part.

Every operator the profiler records is charged to the first of ``PARTS`` that names it or one
of its callers (so the zero-filled gradient and the contiguous copy inside max-pool's backward
count as max-pool, the ``gt``/``mul``/``add_`` calls inside the fused scan as the LIF scan);
what no part names is "other" (the encoder, distances, loss, views, autograd bookkeeping). The
shares add up to 1 over the profiled steps.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.protonet import Setting, make_sampler, process_settings, snnexp_learner
from snnexp.precision import cpu_has_bf16

# (part, substrings of the operator or caller names charged to it), in the order they are tried
PARTS = (
    ("LIF + max-pool of spikes, one kernel (forward, backward)", ("_LeakyMaxPool",)),
    ("LIF scan (forward, adjoint, surrogate)", ("_LeakyScan",)),
    ("max-pool of spikes (forward, backward)", ("max_pool2d",)),
    ("convolutions and matmuls (forward, backward)",
     ("convolution", "aten::mm", "aten::addmm", "aten::bmm", "aten::linear")),
    ("batch norm", ("batch_norm",)),
    ("optimizer", ("Optimizer.",)),
)
OTHER = "other"


def part_of(event: object) -> str:
    """The part of ``PARTS`` charged with ``event`` (a profiler ``FunctionEvent``): the first
    that names it or one of its callers."""
    chain = []
    while event is not None:
        chain.append(event.name)
        event = event.cpu_parent
    for part, names in PARTS:
        if any(name in caller for caller in chain for name in names):
            return part
    return OTHER


def step_profile(s: Setting, images: torch.Tensor, labels: torch.Tensor,
                 steps: int = 2) -> dict[str, float]:
    """Self CPU time shares of ``steps`` training steps of ``s`` (after two warm-up steps) by
    part, and ``ms_per_step`` (under the profiler, which adds a little to each operator)."""
    process_settings(True)
    sampler = make_sampler(images, labels, s)
    episodes = [sampler.sample() for _ in range(steps)]
    learner = snnexp_learner(s)
    for ep in episodes[:2]:
        learner.meta_train_step(ep)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for ep in episodes:
            learner.meta_train_step(ep)
    spent = dict.fromkeys([part for part, _ in PARTS] + [OTHER], 0.0)
    for event in prof.events():
        spent[part_of(event)] += event.self_cpu_time_total
    total = sum(spent.values())
    return {**{part: us / total for part, us in spent.items()},
            "ms_per_step": total / 1e3 / steps}


def profile_table(images: torch.Tensor, labels: torch.Tensor) -> dict[str, dict[str, float]]:
    """``{"profile": {"fp32": shares, "bf16": shares}}`` of the bench's training step (the
    ``protonet`` section's ``Setting()``; bf16 only where the CPU has it)."""
    s = Setting()
    out = {"fp32": step_profile(s, images, labels)}
    if cpu_has_bf16():
        out["bf16"] = step_profile(replace(s, precision="bf16"), images, labels)
    return {"profile": out}
