"""Seeded runs keep their metrics: the default main job, model=rstdp, a snell4 Omniglot run, an
eval and a resume, each short, on one thread, compared exactly with ``data/regression.json``.

A refactoring that changes no behaviour leaves every number as it was on the machine that
recorded them (float sums depend on the CPU and the thread count, hence one thread). Record
anew, after a change that is meant to move them, with

    SNNEXP_RECORD_REGRESSION=1 pytest tests/test_regression.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers.configs import compose

RECORD = Path(__file__).resolve().parent / "data" / "regression.json"
SHORT = ["threads=1", "logger=none", "device=cpu"]
MAIN = [*SHORT, "train_episodes=20", "val_every=10", "val_episodes=5", "test_episodes=20"]
RUNS = {
    "main_job": MAIN,
    "rstdp_digits": [*SHORT, "experiment=digits_5w5s", "model=rstdp", "train_episodes=4",
                     "val_every=2", "val_episodes=3", "test_episodes=10"],
    "omniglot_snell4": [*SHORT, "experiment=omniglot_5w1s", "train_episodes=6", "val_every=3",
                        "val_episodes=3", "test_episodes=10"],
}
KEPT = ("acc", "ci95", "acc_pixel", "acc_untrained", "acc_best", "loss", "total/spikes",
        "total/synops", "history", "correct", "episodes_sha1")


def kept(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers that must not move: accuracies, the per-episode record, loss, spikes."""
    out = {}
    for split in ("train", "val", "test", "spikes"):
        for key, value in metrics.get(split, {}).items():
            if key in KEPT:
                out[f"{split}/{key}"] = value
    record = metrics.get("test", {}).get("per_episode", {})
    for key in ("correct", "episodes_sha1"):
        if key in record:
            out[f"test/per_episode/{key}"] = record[key]
    return out


def compose_train(*overrides: str):
    return compose("train", *overrides)


def compose_eval(*overrides: str):
    return compose("eval", *overrides)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    from snnexp.eval import evaluate_checkpoint
    from snnexp.train import train

    root = tmp_path_factory.mktemp("regression")
    out = {}
    for name, overrides in RUNS.items():
        metrics, _ = train(compose_train(*overrides, f"paths.output_dir={root / name}",
                                         f"paths.log_dir={root}"))
        out[name] = kept(metrics)
    out["eval_main_job_3way"] = kept(evaluate_checkpoint(compose_eval(
        f"ckpt_path={root / 'main_job'}", "way=3", "test_episodes=15", "threads=1",
        f"paths.output_dir={root / 'eval'}", f"paths.log_dir={root}")))
    half = [o for o in MAIN if not o.startswith("train_episodes")] + ["train_episodes=10"]
    train(compose_train(*half, f"paths.output_dir={root / 'half'}", f"paths.log_dir={root}"))
    metrics, _ = train(compose_train(*MAIN, f"resume={root / 'half'}",
                                     f"paths.output_dir={root / 'resumed'}",
                                     f"paths.log_dir={root}"))
    out["resume_main_job"] = kept(metrics)
    if os.environ.get("SNNEXP_RECORD_REGRESSION"):
        RECORD.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return out


@pytest.mark.parametrize("name", [*RUNS, "eval_main_job_3way", "resume_main_job"])
def test_seeded_runs_reproduce_the_recorded_metrics(measured, name):
    recorded = json.loads(RECORD.read_text())
    assert measured[name] == recorded[name]
