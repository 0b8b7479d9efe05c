"""``snnexp.train`` end to end: ``train(cfg)`` through Hydra's compose API, and the CLI once,
into ``tmp_path``; a seed decides every metric."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from helpers.cli import run_cli
from helpers.configs import TINY
from helpers.runs import RUN, read_metrics, without_timing
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from snnexp.checkpoint import load_checkpoint
from snnexp.train import train


def scalar_tags(run_dir: Path) -> set[str]:
    tags: set[str] = set()
    for events in (run_dir / "tensorboard").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


def check_metrics(metrics: dict, test_episodes: int, way: int, shot: int,
                  spread: bool = True) -> None:
    test = metrics["test"]
    assert 0 <= test["acc"] <= 1 and test["episodes"] == test_episodes
    assert test["ci95"] > 0 or not spread
    for control in ("acc_pixel", "acc_untrained"):
        assert 0 <= test[control] <= 1
    assert (metrics["way"], metrics["shot"]) == (way, shot)
    assert metrics["status"] == "completed" and metrics["train"]["episodes"] >= 0
    assert {"model", "dataset", "seed", "query", "val", "spikes"} <= set(metrics)


def check_run_dir(run_dir: Path, tensorboard: bool) -> dict:
    for name in ("best.pt", "last.pt"):
        state = load_checkpoint(run_dir / "checkpoints" / name)
        assert state["model"] == "protonet" and "learner" in state
    if tensorboard:
        assert {"train/loss", "train/acc", "val/acc", "test/acc", "test/acc_ci95"} <= \
            scalar_tags(run_dir)
    return json.loads((run_dir / "metrics.json").read_text())


def test_train_writes_checkpoints_tensorboard_and_metrics(compose_cfg, tmp_path):
    run_dir = tmp_path / "run"
    cfg = compose_cfg(*TINY, "logger=tensorboard", "way=3", "shot=1", "test_episodes=4",
                      "model.num_steps=5", output_dir=run_dir)
    metrics, objects = train(cfg)
    on_disk = check_run_dir(run_dir, tensorboard=True)
    check_metrics(on_disk, test_episodes=4, way=3, shot=1)
    assert on_disk["test"]["acc"] == pytest.approx(metrics["test"]["acc"])
    assert on_disk["train"]["episodes"] == 2 and objects["learner"].name == "protonet"


def test_train_on_rotated_many_way_episodes_and_spike_readout(compose_cfg, tmp_path):
    cfg = compose_cfg(*TINY, "train_way=8", "way=2", "shot=2", "dataset.rotations=true",
                      "model.readout=spikes", "encoder=rate", "test_from=last")
    metrics, _ = train(cfg)
    check_metrics(metrics, test_episodes=3, way=2, shot=2, spread=False)
    assert metrics["train_way"] == 8 and math.isfinite(metrics["train"]["loss"])


def test_zero_training_episodes_tests_the_untrained_model(compose_cfg):
    metrics, _ = train(compose_cfg(*TINY, "train_episodes=0"))
    assert metrics["train"]["episodes"] == 0
    assert metrics["test"]["acc"] == pytest.approx(metrics["test"]["acc_untrained"])


def test_cli_run_dir_holds_config_checkpoints_events_and_metrics(tmp_path):
    run_dir = tmp_path / "cli"
    result = run_cli("train_episodes=3", "test_episodes=5", "val_every=2", "val_episodes=2",
                     "model.num_steps=5", "threads=1", "way=3", "shot=1",
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    saved = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    assert (saved["way"], saved["shot"], saved["train_episodes"]) == (3, 1, 3)
    log = (run_dir / "train.log").read_text()
    assert log.count("test accuracy") == 1 and "pixel control" in log
    assert f"metrics            {run_dir / 'metrics.json'}" in log
    check_metrics(check_run_dir(run_dir, tensorboard=True), test_episodes=5, way=3, shot=1)


def test_init_from_starts_the_snn_from_its_ann_twins_weights(compose_cfg, tmp_path):
    """``init_from``: the twin's trained network weights, a fresh optimizer and episode count."""
    twin_dir, snn_dir = tmp_path / "twin", tmp_path / "snn"
    train(compose_cfg(*TINY, "model.neuron=relu", "model.threshold=0.25", output_dir=twin_dir))
    twin = load_checkpoint(twin_dir / "checkpoints" / "best.pt")["learner"]["net"]
    metrics, objects = train(compose_cfg(*TINY, f"init_from={twin_dir}", "optimizer.lr=0",
                                         "train_episodes=1", output_dir=snn_dir))
    net = objects["learner"].net.state_dict()
    for key in ("ops.0.weight", "ops.1.bias", "ops.2.1.weight"):
        assert torch.equal(net[key], twin[key]), key  # lr 0: still the twin's weights
    assert float(net["lifs.0.threshold"]) == 0.5  # the neurons keep this run's settings
    assert metrics["train"]["episodes"] == 1
    fresh = train(compose_cfg(*TINY, "optimizer.lr=0", "train_episodes=1",
                              output_dir=tmp_path / "fresh"))[1]["learner"].net.state_dict()
    assert not torch.equal(fresh["ops.0.weight"], twin["ops.0.weight"])


@pytest.mark.slow
def test_the_main_job_beats_the_pixel_control_and_its_eval_command_pastes(tmp_path):
    """``python -m snnexp.train`` as it is (bundled Omniglot, 5-way 1-shot): at least 30
    points above nearest-pixel prototypes; the summary block's eval command, pasted into a
    shell, reproduces the run's test."""
    import subprocess
    import sys

    run_dir = tmp_path / "main_job=default,seed=0"  # a name Hydra's grammar would split
    result = run_cli("logger=none", f"hydra.run.dir='{run_dir}'", timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["dataset"], metrics["way"], metrics["shot"]) == ("omniglot", 5, 1)
    assert metrics["test"]["acc"] >= metrics["test"]["acc_pixel"] + 0.30
    log = (run_dir / "train.log").read_text()
    command = log.split("evaluate again", 1)[1].strip().splitlines()[0]
    assert command.startswith("python -m snnexp.eval ")
    command = (command.replace("python", sys.executable, 1)
               + f" test_episodes=50 hydra.run.dir={tmp_path / 'eval'}")
    pasted = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300)
    assert pasted.returncode == 0, pasted.stderr[-2000:]
    assert "test accuracy" in pasted.stderr + pasted.stdout


def test_same_seed_gives_identical_metrics_and_another_seed_differs(compose_cfg, tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train(compose_cfg(*RUN, f"seed={seed}", output_dir=tmp_path / name))
        runs[name] = read_metrics(tmp_path / name)
    assert runs["a"]["train"]["wall_s"] > 0
    assert without_timing(runs["a"]) == without_timing(runs["b"])
    assert without_timing(runs["a"]) != without_timing(runs["c"])
    assert runs["a"]["test"] != runs["c"]["test"]
