"""Peak memory of one meta-training step, each measured in a fresh process.

``python -m benchmarks.memory WAY SHOT QUERY T IMPL`` (``IMPL``: ``snnexp`` or ``notebook``)
prints ``{"baseline_mb", "peak_mb", "step_mb"}``: resident memory before the step (after a
1-way warm-up step that loads the kernels and creates the optimizer state), the
process's peak resident memory during the step, and their difference. The peak is ``VmHWM`` of
``/proc/self/status``, the high-water mark of the process's own address space, reset after the
warm-up (``/proc/self/clear_refs``), so that neither the warm-up nor a first-call compilation
of the numba kernels counts. Not ``ru_maxrss``: Linux carries the parent's high-water mark into
a child it spawns (the memory map the child replaces at ``exec`` is the parent's), so a child
of a large process, such as the bench after its other sections, would report the parent's size.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent  # ``benchmarks`` is importable from here


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _reset_peak() -> None:
    """Set ``VmHWM`` to the current resident memory (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_mb() -> float:
    """``VmHWM``: this process's peak resident memory since ``exec`` or ``_reset_peak`` (MiB)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def step_peak(way: int, shot: int, query: int, num_steps: int, impl: str) -> dict[str, float]:
    """Run one training step in this process; memory figures in MiB."""
    from benchmarks.notebook import notebook_train_step
    from benchmarks.protonet import Setting, notebook_twin, process_settings, snnexp_learner
    from snnexp.data.episodes import Episode

    torch.set_num_threads(1)
    s = Setting(way=way, shot=shot, query=query, num_steps=num_steps)
    process_settings(impl == "snnexp")
    learner = snnexp_learner(s)
    gen = torch.Generator().manual_seed(0)

    def episode(n_way: int) -> Episode:
        labels = lambda n: torch.arange(n_way).repeat_interleave(n)  # noqa: E731
        return Episode(torch.rand(n_way * shot, 1, 28, 28, generator=gen), labels(shot),
                       torch.rand(n_way * query, 1, 28, 28, generator=gen), labels(query),
                       torch.arange(n_way))

    if impl == "snnexp":
        step = learner.meta_train_step
    else:
        ref, opt = notebook_twin(learner, s)
        step = lambda ep: notebook_train_step(ref, opt, ep)  # noqa: E731
    step(episode(1))  # load kernels and create the optimizer state first
    _reset_peak()
    baseline = _rss_mb()
    step(episode(way))
    peak = _peak_mb()
    return {"baseline_mb": baseline, "peak_mb": peak, "step_mb": peak - baseline}


def measure(way: int, shot: int, query: int, num_steps: int, impl: str = "snnexp",
            timeout: float = 300.0) -> dict[str, float]:
    """``step_peak`` in a fresh Python process (peak memory cannot be reset in-process)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.memory", str(way), str(shot),
                           str(query), str(num_steps), impl], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": path})
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        raise RuntimeError(f"memory probe {way}-way T={num_steps} {impl} failed "
                           f"(exit {proc.returncode}): {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def memory_table(shot: int = 5, query: int = 15) -> dict[str, float]:
    """Peak step memory (MiB) of 20-way 5-shot at T=50, and what ``train_way`` and T cost."""
    runs = {"20w_T50": (20, 50, "snnexp"), "5w_T50": (5, 50, "snnexp"),
            "20w_T25": (20, 25, "snnexp"), "20w_T50_notebook": (20, 50, "notebook")}
    res = {name: measure(way, shot, query, steps, impl)["step_mb"]
           for name, (way, steps, impl) in runs.items()}
    queries = shot + query
    return {"peak_mb_20w5s_T50": res["20w_T50"], "peak_mb_5w5s_T50": res["5w_T50"],
            "peak_mb_20w5s_T25": res["20w_T25"],
            "peak_mb_20w5s_T50_notebook": res["20w_T50_notebook"],
            "mb_per_train_way_T50": (res["20w_T50"] - res["5w_T50"]) / 15,
            "mb_per_sample_per_step": res["20w_T50"] / (20 * queries * 50),
            "mb_per_step_20w": (res["20w_T50"] - res["20w_T25"]) / 25}


if __name__ == "__main__":
    way, shot, query, steps = (int(a) for a in sys.argv[1:5])
    print(json.dumps(step_peak(way, shot, query, steps, sys.argv[5])))
