"""tuning: the thread count chosen for the machine as it is at the start of a run."""

from __future__ import annotations

import pytest

from snnexp import tuning


@pytest.mark.parametrize("busy, cores, expected", [
    ((0.0, 0.0), 2, 2),   # an idle machine: every core
    ((1.0, 0.0), 2, 1),   # one core taken by another process
    ((0.9, 1.0), 2, 1),   # both nearly busy: still one thread
    ((0.4, 0.0), 2, 2),   # a light load rounds to idle
])
def test_idle_cores_counts_the_cores_other_processes_leave_idle(monkeypatch, busy, cores,
                                                                expected):
    samples = iter([{0: (0, 0), 1: (0, 0)},
                    {cpu: (100, round(100 * (1 - b))) for cpu, b in enumerate(busy)}])
    monkeypatch.setattr(tuning, "_cpu_jiffies", lambda: next(samples))
    monkeypatch.setattr(tuning, "available_cores", lambda: cores)
    assert tuning.idle_cores(window_s=0.0) == expected


def test_idle_cores_falls_back_to_every_core_without_proc_stat(monkeypatch):
    def unreadable():
        raise OSError("no /proc/stat")

    monkeypatch.setattr(tuning, "_cpu_jiffies", unreadable)
    assert tuning.idle_cores(window_s=0.0) == tuning.available_cores()


def test_configure_takes_an_explicit_thread_count():
    import torch

    before = torch.get_num_threads()
    try:
        assert tuning.configure(1) == 1
    finally:
        torch.set_num_threads(before)


def test_cpu_tuning_switches_denormal_flushing_and_freed_memory_retention():
    import torch

    # the smallest float32 denormal, from its bits (a conversion from 1e-39 would be flushed)
    denormal = torch.tensor([1], dtype=torch.int32).view(torch.float32)
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush denormals")
    try:
        tuning.configure(1, cpu_tuning=True)
        assert (denormal * 1.0).item() == 0.0
        assert tuning._retaining == tuning.retain_freed_memory(True)  # False without glibc
        tuning.configure(1, cpu_tuning=False)
        assert (denormal * 1.0).item() > 0.0
        assert not tuning._retaining
    finally:
        tuning.apply_cpu_tuning(True)  # as every run in this process leaves it by default
