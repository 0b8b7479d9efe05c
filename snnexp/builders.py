"""Build a run's components from its config: device, data splits, samplers, learner.

Shared by ``snnexp.train``, ``snnexp.eval`` and ``snnexp.api`` so that all three construct
things identically.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from snnexp.data.episodes import EpisodeSampler
from snnexp.data.pool import ClassPool, Split
from snnexp.errors import UserError
from snnexp.malloc import retain_freed_memory
from snnexp.models.base import Learner

log = logging.getLogger(__name__)

# independent seed streams: episodes of one phase never depend on another phase or the model
STREAMS = {"train": 0, "val": 1, "test": 2, "noise": 3}


def phase_seed(seed: int, phase: str) -> int:
    """Seed of one phase's episode generator, derived from the run seed only."""
    return int(np.random.SeedSequence([seed, STREAMS[phase]]).generate_state(1)[0])


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; refuse an absent GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={name}: no CUDA GPU is visible here (allowed: auto, cpu)")
    return torch.device(name)


def configure_torch(threads: int | None) -> int:
    """Set torch's CPU threads, and flush denormal floats to zero; return the thread count.

    ``threads=null`` chooses for the machine as it is when the run starts:

    - in a parallel sweep, each job's share, so that jobs do not oversubscribe the cores:
      ``hydra/launcher=joblib`` -> ``cores // n_jobs`` (at least 1); ``submitit_*`` ->
      ``hydra.launcher.cpus_per_task``, else 1 (jobs run side by side);
    - otherwise the cores that are idle (``idle_cores``): all of them on an idle machine, fewer
      beside other busy processes. A torch thread that shares a core with another process
      stalls the others at every parallel step, so a run beside other work is faster with
      fewer threads than cores.

    ``cores`` counts the CPUs this process may run on (``os.sched_getaffinity``, which respects
    SLURM's allocation).

    LIF membranes decay geometrically towards 0 on blank pixels and reach denormal floats,
    which are about 10x slower on x86 CPUs; flushing them changes no spike. Freed memory stays
    in the heap (``snnexp.malloc``), which spares the allocator's work on every step
    (``scripts/bench.py`` measures it).
    """
    torch.set_flush_denormal(True)
    retain_freed_memory()
    how = "threads"
    if not threads:
        threads = launcher_threads()
        how = "the sweep's share of the cores"
    if not threads:
        threads = idle_cores()
        how = f"{threads} of {available_cores()} cores idle at start"
    torch.set_num_threads(int(threads))
    log.info("torch threads: %d (%s; set threads=N to choose)", torch.get_num_threads(), how)
    return torch.get_num_threads()


def idle_cores(window_s: float = 0.3) -> int:
    """Cores of this process's CPU set left idle by other processes, at least 1.

    From ``/proc/stat`` over ``window_s`` seconds (this process sleeps meanwhile): each CPU
    this process may run on counts ``1 - busy``, ``busy = (total - idle - iowait) / total`` of
    its jiffies in the window; the sum is rounded. Where ``/proc/stat`` cannot be read, every
    available core counts as idle.
    """
    cores = available_cores()
    try:
        first = _cpu_jiffies()
        time.sleep(window_s)
        second = _cpu_jiffies()
    except (OSError, ValueError, AttributeError):  # no /proc/stat or no affinity (not Linux)
        return cores
    idle = 0.0
    for cpu, (total, idle_jiffies) in second.items():
        before = first.get(cpu)
        if before is not None and total > before[0]:
            idle += (idle_jiffies - before[1]) / (total - before[0])
    return max(1, min(cores, round(idle))) if idle > 0 else cores


def _cpu_jiffies() -> dict[int, tuple[int, int]]:
    """``{cpu: (total, idle + iowait)}`` jiffies since boot of the CPUs this process may run
    on (the ``cpuN`` lines of ``/proc/stat``)."""
    allowed = os.sched_getaffinity(0)
    counts = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *values = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in allowed:
                fields = [int(v) for v in values[:8]]
                counts[int(name[3:])] = (sum(fields), fields[3] + fields[4])
    return counts


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def launcher_threads() -> int | None:
    """Threads per job of the running Hydra sweep's launcher; ``None`` outside parallel sweeps."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target:
        from joblib import effective_n_jobs

        n_jobs = effective_n_jobs(launcher.get("n_jobs") or -1)
        return max(1, available_cores() // max(1, n_jobs))
    if "submitit" in target:
        return int(launcher.get("cpus_per_task") or 1)
    return None


def instantiate(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets a ``UserError`` of the built object through.

    Hydra wraps exceptions raised by a ``_target_`` in ``InstantiationException``; a user error
    (missing data, bad value) must reach ``main()`` as its own one-line message.
    """
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def build_pool(dataset_cfg: DictConfig) -> ClassPool:
    return instantiate(dataset_cfg)


def build_sampler(split: Split, way: int, shot: int, query: int, seed: int,
                  phase: str) -> EpisodeSampler:
    return EpisodeSampler(split.images, split.labels, way, shot, query,
                          seed=phase_seed(seed, phase), name=phase)


def build_learner(cfg: DictConfig, input_shape: tuple[int, int, int],
                  device: torch.device) -> Learner:
    """Instantiate ``cfg.model`` with its encoder and, if it uses them, its optimizer and
    learning-rate scheduler (both partials the learner finishes with its parameters)."""
    learner_cls = get_class(cfg.model._target_)
    encoder = instantiate(cfg.encoder)
    extra: dict[str, Any] = {}
    if getattr(learner_cls, "uses_optimizer", False):
        if cfg.get("optimizer") is None:
            raise UserError(f"optimizer=null: model={learner_cls.name} needs one of "
                            "adam, adamw, sgd")
        extra["optimizer"] = instantiate(cfg.optimizer)
        if cfg.get("scheduler") is not None:
            extra["scheduler"] = instantiate(cfg.scheduler)
    return instantiate(constructor_node(cfg.model, learner_cls), encoder=encoder,
                       input_shape=list(input_shape), device=str(device), seed=int(cfg.seed),
                       **extra)


def constructor_node(node: DictConfig, target: Any) -> DictConfig:
    """``node`` (resolved) without the keys that name no parameter of ``target``.

    Such keys are settings that nested nodes read by interpolation: ``model.beta`` is read by
    ``model.backbone`` (``beta: ${..beta}``), not by the learner. A ``target`` taking
    ``**kwargs`` gets every key."""
    params = inspect.signature(target).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return node
    resolved = OmegaConf.to_container(node, resolve=True)
    return OmegaConf.create({k: v for k, v in resolved.items()
                             if k in params or k.startswith("_")})


def config_to_dict(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
