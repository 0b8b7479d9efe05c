"""Peer benchmark: one Linear + LIF layer in snnexp and in other SNN libraries (issue 19).

The shape of the open-neuromorphic SNN library benchmark: ``N`` inputs, ``N`` LIF neurons,
batch 16, ``T = 500`` time steps, forward + backward of ``loss = spikes.sum()``, timed per
call. Each side is alternated with the others in rounds (a change of load hits all of them);
the figure of a side is its fastest round. The Linear layer runs on the whole sequence
``[T, B, N]`` at once for every library (the same matmul everywhere; the libraries differ in
the LIF neurons); the input needs no gradient. ``floor`` is that Linear layer's forward +
backward on ``[T * B, N]`` alone, the time no LIF implementation can beat.

Sides (each peer library imported only when measured; a missing one prints one line and is
skipped; ``pip install -e ".[bench]"`` installs them):

- ``snnexp``: ``snnexp.models.protonet.lif.LeakyLayer`` (the fused scan ``leaky_scan``),
  ``beta = 0.95``, ``threshold = 1``, subtract reset, surrogate ``fast_sigmoid(slope=5)``:
  ``sg'(x) = 1 / (5 |x| + 1)^2``.
- ``snnexp_bf16``: the same with the Linear layer in bfloat16 (``precision=bf16``: autocast,
  float32 membranes), where the CPU has native bfloat16 (AVX-512 BF16 or AMX); its floor is
  ``floor_bf16``. The peers have no bfloat16 path on the CPU.
- ``snntorch``: ``snntorch.Leaky`` with the same settings (``surrogate.fast_sigmoid(5)``),
  stepped in a Python loop over ``T``. Same spikes and gradients as ``snnexp``.
- ``norse``: ``norse.torch.LIF`` (it loops over ``T`` itself). Its neuron is current-based,
  ``v <- v + dt tau_mem_inv (i - v)``; with ``dt tau_mem_inv = 1 - beta`` and
  ``dt tau_syn_inv = 1`` (the synaptic current is the input of the step) this is
  ``v <- beta v + (1 - beta) I``, the same dynamics as ``v <- beta v + I`` for a threshold of
  ``(1 - beta) * 1``, and its SuperSpike surrogate ``1 / (alpha |x| + 1)^2`` with
  ``alpha = 5 / (1 - beta)`` is then fast_sigmoid(5) in those units. Differences: the reset
  is to zero (Norse has no subtract reset in ``LIF``), not detached from the graph.
- ``spikingjelly``: ``spikingjelly.activation_based.neuron.LIFNode(step_mode="m",
  backend="torch")`` with ``tau = 1 / (1 - beta) = 20``, ``decay_input=False``
  (``v <- beta v + I``), ``v_threshold = 1``, ``v_reset=None`` (subtract reset),
  ``detach_reset=True``. Differences: its surrogate is ``SoftSign(alpha=5)`` (SpikingJelly
  has no fast sigmoid; ``sg'(x) = 2.5 / (5 |x| + 1)^2``: the same shape, 2.5x the scale), and
  the subtracted threshold also decays (``v <- beta (v - s) + I``, snnTorch: ``beta v + I - s``).

The spike rate does not change the work of any side (all of them run dense ops).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType

import torch
from torch import nn

from snnexp.precision import autocast, cpu_has_bf16

BETA, THRESHOLD, SLOPE = 0.95, 1.0, 5.0
BATCH, STEPS = 16, 500
# snnexp's sides first (names starting with "snnexp"); the rest: peers
LIBRARIES = ("snnexp", "snnexp_bf16", "snntorch", "norse", "spikingjelly")
MODULES = {"snnexp": "snnexp", "snnexp_bf16": "snnexp", "snntorch": "snntorch",
           "norse": "norse.torch", "spikingjelly": "spikingjelly.activation_based.neuron"}
INSTALL = 'pip install -e ".[bench]"'


class NotInstalled(Exception):
    """A peer library that cannot be imported."""


def load(name: str) -> ModuleType:
    """Import the module of library ``name``, or raise ``NotInstalled``."""
    try:
        return import_module(MODULES[name])
    except ImportError as err:
        raise NotInstalled(name) from err


@dataclass
class Layer:
    """A Linear layer followed by one library's LIF neurons: ``spikes(x)`` maps input
    ``[T, B, N]`` to output spikes ``[T, B, N]``; ``step(x)`` is one forward + backward."""

    name: str
    linear: nn.Linear
    lif: Callable[[torch.Tensor], torch.Tensor]  # currents [T, B, N] -> spikes [T, B, N]
    precision: str = "fp32"  # of the Linear layer (snnexp.precision)

    def spikes(self, x: torch.Tensor) -> torch.Tensor:
        with autocast(self.precision, x.device):
            cur = self.linear(x)
        return self.lif(cur)

    def step(self, x: torch.Tensor) -> None:
        self.linear.zero_grad(set_to_none=True)
        self.spikes(x).sum().backward()


def _linear(n: int, seed: int) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(n, n)


def _snnexp_lif() -> Callable[[torch.Tensor], torch.Tensor]:
    from snnexp.models.protonet.lif import LeakyLayer
    from snnexp.models.protonet.surrogate import fast_sigmoid

    lif = LeakyLayer(beta=BETA, threshold=THRESHOLD, spike_grad=fast_sigmoid(SLOPE),
                     reset_mechanism="subtract")
    return lambda cur: lif(cur, cur.shape[0], False, keep_mem=False)[0]


def _snntorch_lif() -> Callable[[torch.Tensor], torch.Tensor]:
    snn = load("snntorch")
    from snntorch import surrogate

    lif = snn.Leaky(beta=BETA, threshold=THRESHOLD,
                    spike_grad=surrogate.fast_sigmoid(slope=SLOPE), reset_mechanism="subtract")

    def run(cur: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(cur[0])
        spikes = []
        for cur_t in cur.unbind(0):
            spk, mem = lif(cur_t, mem)
            spikes.append(spk)
        return torch.stack(spikes)
    return run


def _norse_lif() -> Callable[[torch.Tensor], torch.Tensor]:
    norse = load("norse")
    dt = 1e-3
    p = norse.LIFParameters(tau_syn_inv=torch.tensor(1.0 / dt),
                            tau_mem_inv=torch.tensor((1 - BETA) / dt),
                            v_th=torch.tensor((1 - BETA) * THRESHOLD),
                            v_reset=torch.tensor(0.0), method="super",
                            alpha=torch.tensor(SLOPE / (1 - BETA)))
    lif = norse.LIF(p, dt=dt)
    return lambda cur: lif(cur)[0]


def _spikingjelly_lif() -> Callable[[torch.Tensor], torch.Tensor]:
    neuron = load("spikingjelly")
    from spikingjelly.activation_based import surrogate

    node = neuron.LIFNode(tau=1 / (1 - BETA), decay_input=False, v_threshold=THRESHOLD,
                          v_reset=None, surrogate_function=surrogate.SoftSign(alpha=SLOPE),
                          detach_reset=True, step_mode="m", backend="torch")

    def run(cur: torch.Tensor) -> torch.Tensor:
        node.reset()  # a fresh membrane each call
        return node(cur)
    return run


BUILDERS = {"snnexp": _snnexp_lif, "snnexp_bf16": _snnexp_lif, "snntorch": _snntorch_lif,
            "norse": _norse_lif, "spikingjelly": _spikingjelly_lif}


def build(name: str, n: int, seed: int = 0) -> Layer:
    """Library ``name``'s layer of ``n`` neurons (``NotInstalled`` if it is missing); the
    same ``seed`` gives every library the same Linear weights."""
    linear = _linear(n, seed)
    if name == "snnexp_bf16":
        if not cpu_has_bf16():
            raise NotInstalled(name)
        return Layer(name, linear, BUILDERS[name](), precision="bf16")
    return Layer(name, linear, BUILDERS[name]())


def floor_step(n: int, seed: int = 0, precision: str = "fp32") -> Callable[[torch.Tensor], None]:
    """The Linear layer's forward + backward on ``[T * B, N]`` alone."""
    linear = _linear(n, seed)

    def step(x: torch.Tensor) -> None:
        linear.zero_grad(set_to_none=True)
        with autocast(precision, x.device):
            out = linear(x.view(-1, n))
        out.float().sum().backward()
    return step


def min_of_rounds(sides: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Seconds of one call of each side: a warm-up call each, then ``rounds`` rounds of one
    call per side in turn; the fastest round of each side."""
    for fn in sides.values():
        fn()
    best = {name: float("inf") for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def measure(n: int, rounds: int = 2, steps: int = STEPS, batch: int = BATCH,
            libraries: tuple[str, ...] = LIBRARIES, skipped: dict[str, str] | None = None,
            ) -> dict:
    """Seconds per forward + backward of each installed library at ``n`` neurons, the
    matmul floor, and each library's speed relative to the fastest peer (the fastest library
    other than snnexp: ``fastest peer s / library s``, above 1 = faster than it)."""
    skipped = {} if skipped is None else skipped
    x = torch.rand(steps, batch, n, generator=torch.Generator().manual_seed(0))
    sides: dict[str, Callable[[], None]] = {}
    for name in libraries:
        if name in skipped:
            continue
        try:
            layer = build(name, n)
        except NotInstalled:
            why = "no bfloat16 on this CPU" if name == "snnexp_bf16" else "not installed"
            skipped[name] = why
            print(f"peer {name}: {why}" + ("" if name == "snnexp_bf16" else f" ({INSTALL})"),
                  file=sys.stderr)
            continue
        sides[name] = lambda layer=layer: layer.step(x)
    floors = {"floor": floor_step(n)}
    if "snnexp_bf16" in sides:
        floors["floor_bf16"] = floor_step(n, precision="bf16")
    for key, floor in floors.items():
        sides[key] = lambda floor=floor: floor(x)
    sec = min_of_rounds(sides, rounds)
    floor_s = sec.pop("floor")
    floor_bf16_s = sec.pop("floor_bf16", None)
    peers = {k: v for k, v in sec.items() if not k.startswith("snnexp")}
    fastest = min(peers, key=peers.get) if peers else None
    ratio = {k: peers[fastest] / v for k, v in sec.items()} if fastest else {}
    return {"n": n, "steps": steps, "batch": batch, "s": sec, "floor_s": floor_s,
            "floor_bf16_s": floor_bf16_s, "fastest_peer": fastest, "ratio_to_fastest_peer": ratio,
            "skipped": dict(skipped)}


def peer_table(sizes: list[int], rounds: int = 2, steps: int = STEPS,
               batch: int = BATCH) -> dict:
    """``measure`` at each size (a missing library is reported once and skipped after)."""
    skipped: dict[str, str] = {}
    runs = [measure(n, rounds, steps, batch, skipped=skipped) for n in sizes]
    out: dict = {"peers": runs, "peers_skipped": skipped}
    for r in runs:
        for side in ("snnexp", "snnexp_bf16"):
            if side in r["ratio_to_fastest_peer"]:
                out[f"peers_speedup_{r['n']}" + side[6:]] = r["ratio_to_fastest_peer"][side]
    return out
