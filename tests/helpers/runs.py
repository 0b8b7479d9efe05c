"""Tiny training and evaluation runs in this process, and reading what they wrote."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers.configs import TINY, TINY_DIGITS, compose

# a few validations and checkpoints: 6 episodes, validated every 2
RUN = [*TINY, "model.num_steps=4", "train_episodes=6", "val_every=2", "test_episodes=5"]
TIMING = ("wall_s", "episodes_per_s")


def without_timing(obj: Any) -> Any:
    """``metrics.json`` minus the timing fields, which differ between identical runs."""
    if isinstance(obj, dict):
        return {k: without_timing(v) for k, v in obj.items() if not k.endswith(TIMING)}
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def patch_train_step(monkeypatch: Any, at_episode: int, action: Any) -> None:
    """Run ``action(stats)`` inside the ``at_episode``-th ``meta_train_step`` call."""
    from snnexp.models.protonet import ProtoNetLearner

    original, calls = ProtoNetLearner.meta_train_step, [0]

    def step(self, episode):
        stats = original(self, episode)
        calls[0] += 1
        return action(stats) if calls[0] == at_episode else stats

    monkeypatch.setattr(ProtoNetLearner, "meta_train_step", step)


def train_tiny(run_dir: Path, *overrides: str) -> dict:
    """Train a tiny protonet on digits in-process into ``run_dir``; return its metrics."""
    from snnexp.train import train

    metrics, _ = train(compose("train", *TINY_DIGITS, "threads=1", f"paths.output_dir={run_dir}",
                               *overrides))
    return metrics


def evaluate(out_dir: Path, *overrides: str) -> dict:
    """``python -m snnexp.eval`` in-process into ``out_dir``; return its metrics."""
    from snnexp.eval import evaluate_checkpoint

    return evaluate_checkpoint(compose("eval", "threads=1", f"paths.output_dir={out_dir}",
                                       *overrides))
