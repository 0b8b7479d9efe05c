"""Process-wide CPU settings of a run: torch's thread count, denormal floats, glibc's heap.

``configure(threads, cpu_tuning)`` is called once at the start of every run (``snnexp.train``,
``snnexp.eval``). It changes settings of the whole process, so it lives here, in one place:

- **threads** (config ``threads``): torch's intra-op threads. ``null`` chooses for the machine
  as it is when the run starts (``choose_threads``).
- **denormals** (config ``cpu_tuning``): LIF membranes decay geometrically towards 0 on blank
  pixels and reach denormal floats, which are about 10x slower on x86 CPUs;
  ``torch.set_flush_denormal(True)`` flushes them to zero, which changes no spike.
- **freed memory** (config ``cpu_tuning``): glibc serves allocations above
  ``M_MMAP_THRESHOLD`` (at most 32 MB) with fresh ``mmap`` pages and unmaps them on free, so
  every large CPU tensor (a ``[T*B, 16, 24, 24]`` layer is 184 MB) is zero-filled page by page
  by the kernel at each allocation. With mmap disabled and a high trim threshold
  (``retain_freed_memory``), freed blocks stay in the heap and are reused. Peak resident memory
  is unchanged; it is just not handed back to the OS between steps (``scripts/bench.py``
  measures the difference).

``cpu_tuning=false`` leaves denormals and glibc's allocator as PyTorch and glibc set them (and
undoes the two where an earlier run in the same process applied them).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import time

import torch

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # <malloc.h>
DEFAULT_MMAP_MAX, DEFAULT_TRIM_THRESHOLD = 65536, 128 * 1024  # glibc's defaults
_retaining = False  # whether retain_freed_memory(True) applied in this process


def configure(threads: int | None, cpu_tuning: bool = True) -> int:
    """Apply a run's process settings; return torch's thread count.

    ``threads``: a count, or ``None``/0 for ``choose_threads()``. ``cpu_tuning``: flush
    denormals and keep freed memory in the heap (``apply_cpu_tuning``).
    """
    apply_cpu_tuning(cpu_tuning)
    log.info("cpu tuning: %s", "denormals flushed to zero, freed memory kept in the heap "
             "(cpu_tuning=false: the defaults)" if cpu_tuning else "off (cpu_tuning=false)")
    if threads:
        how = f"threads={threads}"
    else:
        threads, how = choose_threads()
        how += "; threads=N sets it"
    torch.set_num_threads(int(threads))
    log.info("torch threads: %d (%s)", torch.get_num_threads(), how)
    return torch.get_num_threads()


def apply_cpu_tuning(enable: bool) -> None:
    """Flush denormals and keep freed memory in the heap (``True``), or PyTorch's and glibc's
    defaults (``False``)."""
    torch.set_flush_denormal(enable)
    if enable or _retaining:
        retain_freed_memory(enable)


def choose_threads() -> tuple[int, str]:
    """``(threads, why)`` for ``threads=null``, chosen for the machine as it is now:

    - in a parallel sweep, each job's share, so that jobs do not oversubscribe the cores:
      ``hydra/launcher=joblib`` -> ``cores // n_jobs`` (at least 1); ``submitit_*`` ->
      ``hydra.launcher.cpus_per_task``, else 1 (jobs run side by side);
    - otherwise the cores that are idle (``idle_cores``): all of them on an idle machine, fewer
      beside other busy processes. A torch thread that shares a core with another process
      stalls the others at every parallel step, so a run beside other work is faster with
      fewer threads than cores.

    ``cores`` counts the CPUs this process may run on (``os.sched_getaffinity``, which respects
    SLURM's allocation).
    """
    threads = launcher_threads()
    if threads:
        return threads, "the sweep's share of the cores"
    threads = idle_cores()
    return threads, f"{threads} of {available_cores()} cores idle at start"


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
    """The CPUs this process may run on (all of them where affinity is unknown)."""
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


def retain_freed_memory(enable: bool = True, trim_threshold: int = 1 << 30) -> bool:
    """Keep freed memory in glibc's heap (``enable``), or hand large blocks back again (mmap
    on, the default trim threshold); a no-op without glibc. Returns whether it applied."""
    global _retaining
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt, Windows)
        return False
    ok = mallopt(M_MMAP_MAX, 0 if enable else DEFAULT_MMAP_MAX) == 1
    threshold = int(trim_threshold) if enable else DEFAULT_TRIM_THRESHOLD
    ok = ok and mallopt(M_TRIM_THRESHOLD, threshold) == 1
    _retaining = enable and ok
    log.debug("malloc: mmap %s (applied: %s)", "off" if enable else "on", ok)
    return ok
