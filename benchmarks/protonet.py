"""Throughput of the spiking ProtoNet: snnexp vs the notebook's computation, FLOP rate, memory.

Every figure is a ratio of two timings taken in the same process, alternating between the two
sides in rounds so that a change of load on a shared machine hits both.

"Process settings" of a side: the notebook ran with PyTorch's defaults; snnexp flushes
denormals and keeps freed memory in the heap (``snnexp.tuning``, ``cpu_tuning=true``).
``process_settings(tuned)`` switches between the two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import torch
from snntorch import surrogate

from benchmarks.notebook import NotebookNet, load_into, notebook_logits, notebook_train_step
from snnexp.data.episodes import Episode, EpisodeSampler
from snnexp.encoding import DirectEncoder
from snnexp.models.protonet import ProtoNetLearner
from snnexp.models.protonet.backbones import notebook
from snnexp.models.protonet.surrogate import fast_sigmoid
from snnexp.precision import cpu_has_bf16
from snnexp.tuning import apply_cpu_tuning


@dataclass(frozen=True)
class Setting:
    """An episode shape and model size; the default is the notebook's."""

    way: int = 5
    shot: int = 5
    query: int = 15
    num_steps: int = 50
    lr: float = 1e-3
    image: int = 28
    distance: str = "euclidean"  # the notebook's square-rooted distances
    precision: str = "fp32"  # snnexp's side: fp32 | bf16 (the notebook computes in fp32)


def process_settings(tuned: bool) -> None:
    """snnexp's process settings (``True``) or PyTorch's defaults, as the notebook ran."""
    apply_cpu_tuning(tuned)


def mnist_images(data_dir: str | Path = "../shared/data") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST test images ``[N, 1, 28, 28]`` and labels; random images if the files are absent."""
    from snnexp.data.datasets import load_idx
    from snnexp.errors import UserError

    try:
        pool = load_idx("MNIST", str(data_dir))
        return pool.images, pool.labels
    except UserError:
        gen = torch.Generator().manual_seed(0)
        return torch.rand(1000, 1, 28, 28, generator=gen), torch.arange(10).repeat(100)


def make_sampler(images: torch.Tensor, labels: torch.Tensor, s: Setting,
                 seed: int = 0) -> EpisodeSampler:
    if images.shape[-1] != s.image:
        images = torch.nn.functional.interpolate(images, size=(s.image, s.image))
    return EpisodeSampler(images, labels, s.way, s.shot, s.query, seed=seed)


def snnexp_learner(s: Setting, seed: int = 0) -> ProtoNetLearner:
    """The notebook's architecture in snnexp (``backbone=notebook padding=valid``)."""
    torch.manual_seed(seed)
    net = partial(notebook, embedding_dim=64, neuron="lif", padding="valid", beta=0.95,
                  learn_beta=False, threshold=1.0, readout="membrane",
                  spike_grad=fast_sigmoid(slope=5))
    return ProtoNetLearner(net, DirectEncoder(), (1, s.image, s.image),
                           partial(torch.optim.Adam, lr=s.lr), num_steps=s.num_steps,
                           distance=s.distance, precision=s.precision)


def notebook_twin(learner: ProtoNetLearner, s: Setting) -> tuple[NotebookNet, torch.optim.Adam]:
    """The reference network with the learner's weights, and its Adam."""
    net = load_into(NotebookNet(beta=0.95, spike_grad=surrogate.fast_sigmoid(slope=5),
                                num_steps=s.num_steps), learner.net)
    return net, torch.optim.Adam(net.parameters(), lr=s.lr)


def alternate(sides: dict[str, Callable[[], None]], seconds: float, rounds: int = 2,
              min_calls: int = 1) -> dict[str, float]:
    """Seconds per call of each side: one warm-up call, then ``rounds`` rounds in turn, each
    side running for ``seconds / rounds`` (at least ``min_calls`` calls)."""
    for fn in sides.values():
        fn()
    spent = {name: 0.0 for name in sides}
    calls = {name: 0 for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = time.perf_counter()
            n = 0
            while n < min_calls or time.perf_counter() - start < seconds / rounds:
                fn()
                n += 1
            spent[name] += time.perf_counter() - start
            calls[name] += n
    return {name: spent[name] / calls[name] for name in sides}


def _tuned(fn: Callable[[], object], tuned: bool) -> Callable[[], None]:
    def run() -> None:
        process_settings(tuned)
        fn()
    return run


def training_speed(s: Setting = Setting(), seconds: float = 30.0,
                   images: torch.Tensor | None = None,
                   labels: torch.Tensor | None = None) -> dict[str, float]:
    """Meta-training episodes/s: snnexp (fp32, and bf16 where the CPU has it) vs the notebook's
    computation (as it ran, and with snnexp's process settings), on the same episodes."""
    if images is None or labels is None:
        images, labels = mnist_images()
    sampler = make_sampler(images, labels, s)
    episodes = [sampler.sample() for _ in range(4)]
    learners = {"snnexp": snnexp_learner(s)}
    if cpu_has_bf16():
        learners["snnexp_bf16"] = snnexp_learner(replace(s, precision="bf16"))
    ref, ref_opt = notebook_twin(learners["snnexp"], s)
    turn = dict.fromkeys([*learners, "ref", "ref_tuned"], 0)

    def step(name: str) -> None:
        ep = episodes[turn[name] % len(episodes)]
        turn[name] += 1
        if name in learners:
            learners[name].meta_train_step(ep)
        else:
            notebook_train_step(ref, ref_opt, ep)

    sides = {name: _tuned(partial(step, name), name != "ref") for name in turn}
    sec = alternate(sides, seconds / len(sides))
    process_settings(True)
    out = {"snnexp_train_s_per_episode": sec["snnexp"], "ref_train_s_per_episode": sec["ref"],
           "ref_tuned_train_s_per_episode": sec["ref_tuned"],
           "protonet_speedup": sec["ref"] / sec["snnexp"],
           "protonet_speedup_same_process_settings": sec["ref_tuned"] / sec["snnexp"]}
    if "snnexp_bf16" in sec:
        out.update(snnexp_bf16_train_s_per_episode=sec["snnexp_bf16"],
                   protonet_speedup_bf16=sec["ref"] / sec["snnexp_bf16"])
    return out


def train_flops(learner: ProtoNetLearner, batch: int) -> float:
    """FLOPs one training step executes (1 MAC = 2 FLOPs).

    First layer on a static input: forward once per sample plus its weight gradient (the
    image needs no gradient): ``4 B macs0``. Other layers, every step: forward, input gradient
    and weight gradient: ``6 T B macs``. Elementwise LIF work is not counted."""
    macs = learner.net.macs
    steps = learner.num_steps
    return 4.0 * batch * macs[0] + 6.0 * steps * batch * sum(macs[1:])


def notebook_flops(learner: ProtoNetLearner, batch: int) -> float:
    """FLOPs of the notebook's step: every layer every step, ``6 T B macs`` (first conv: 4)."""
    macs = learner.net.macs
    return learner.num_steps * batch * (4.0 * macs[0] + 6.0 * sum(macs[1:]))


def matmul_flops_per_s(seconds: float = 3.0, n: int = 1024,
                       dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of an ``n x n`` matmul in ``dtype`` with the current thread count."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    out = torch.empty(n, n, dtype=dtype)
    sec = alternate({"mm": lambda: torch.mm(a, b, out=out)}, seconds, rounds=1, min_calls=3)
    return 2.0 * n**3 / sec["mm"]


def flop_fraction(s_per_episode: float, s: Setting = Setting(), matmul_seconds: float = 3.0,
                  bf16_s_per_episode: float | None = None) -> dict[str, float]:
    """Achieved FLOP/s of a training step (``s_per_episode``) vs a matmul's, same process;
    with ``bf16_s_per_episode``, also the bf16 step's against a bf16 matmul."""
    process_settings(True)
    learner = snnexp_learner(s)
    batch = s.way * (s.shot + s.query)
    flops = train_flops(learner, batch)
    mm = matmul_flops_per_s(matmul_seconds)
    out = {"train_gflop_per_episode": flops / 1e9,
           "notebook_gflop_per_episode": notebook_flops(learner, batch) / 1e9,
           "train_gflop_per_s": flops / s_per_episode / 1e9, "matmul_gflop_per_s": mm / 1e9,
           "flop_fraction": flops / s_per_episode / mm}
    if bf16_s_per_episode is not None:
        mm16 = matmul_flops_per_s(matmul_seconds, dtype=torch.bfloat16)
        out.update(train_gflop_per_s_bf16=flops / bf16_s_per_episode / 1e9,
                   matmul_gflop_per_s_bf16=mm16 / 1e9,
                   flop_fraction_bf16=flops / bf16_s_per_episode / mm16)
    return out


def test_speed(s: Setting = Setting(), seconds: float = 20.0,
               images: torch.Tensor | None = None,
               labels: torch.Tensor | None = None) -> dict[str, float]:
    """Test (inference) episodes/s: ``learner.predict`` vs the notebook's no-grad forward."""
    if images is None or labels is None:
        images, labels = mnist_images()
    sampler = make_sampler(images, labels, s, seed=1)
    episodes: list[Episode] = [sampler.sample() for _ in range(4)]
    learner = snnexp_learner(s)
    ref, _ = notebook_twin(learner, s)
    ref.eval()
    turn = {"snnexp": 0, "ref": 0}

    def run(name: str) -> None:
        ep = episodes[turn[name] % len(episodes)]
        turn[name] += 1
        if name == "snnexp":
            learner.predict(ep.support_x, ep.support_y, ep.query_x)
        else:
            with torch.no_grad():
                notebook_logits(ref, ep.support_x, ep.support_y, ep.query_x, ep.way)

    sec = alternate({"snnexp": _tuned(partial(run, "snnexp"), True),
                     "ref": _tuned(partial(run, "ref"), False)}, seconds)
    process_settings(True)
    return {"snnexp_test_episodes_per_s": 1.0 / sec["snnexp"],
            "ref_test_episodes_per_s": 1.0 / sec["ref"],
            "test_speedup": sec["ref"] / sec["snnexp"]}
