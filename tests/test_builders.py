"""builders: the thread count chosen for the machine as it is at the start of a run."""

from __future__ import annotations

import pytest

from snnexp import builders


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
    monkeypatch.setattr(builders, "_cpu_jiffies", lambda: next(samples))
    monkeypatch.setattr(builders, "available_cores", lambda: cores)
    assert builders.idle_cores(window_s=0.0) == expected


def test_idle_cores_falls_back_to_every_core_without_proc_stat(monkeypatch):
    def unreadable():
        raise OSError("no /proc/stat")

    monkeypatch.setattr(builders, "_cpu_jiffies", unreadable)
    assert builders.idle_cores(window_s=0.0) == builders.available_cores()


def test_configure_torch_takes_an_explicit_thread_count():
    import torch

    before = torch.get_num_threads()
    try:
        assert builders.configure_torch(1) == 1
    finally:
        torch.set_num_threads(before)
