"""Evaluating checkpoints (``snnexp.eval``): the run's own test again, noise, another way, and
checkpoints that do not fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.runs import evaluate

from snnexp.errors import UserError
from snnexp.report import summary_lines


def test_eval_without_overrides_reproduces_the_runs_own_test(trained_run: Path,
                                                                 tmp_path: Path) -> None:
    trained = json.loads((trained_run / "metrics.json").read_text())
    metrics = evaluate(tmp_path, f"ckpt_path={trained_run}")
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["ckpt_path"] == str(trained_run / "checkpoints" / "best.pt")
    assert written["noise"] is None and written["way"] == trained["way"]
    for key in ("acc", "ci95", "acc_pixel", "acc_untrained", "episodes"):
        assert written["test"][key] == pytest.approx(trained["test"][key])
    # the same episodes, each predictor's correct queries per episode kept exactly
    record = written["test"]["per_episode"]
    assert record == trained["test"]["per_episode"] and record["episodes_sha1"]
    assert record["queries"] == trained["way"] * trained["query"]
    for name in ("acc", "acc_pixel", "acc_untrained"):
        assert len(record["correct"][name]) == written["test"]["episodes"]
        assert sum(record["correct"][name]) / (record["queries"] * written["test"]["episodes"]) \
            == pytest.approx(written["test"][name])
    assert metrics["test"] == written["test"]


def test_eval_applies_noise_and_another_way_to_the_same_episodes(trained_run: Path,
                                                                     tmp_path: Path) -> None:
    clean = evaluate(tmp_path / "clean", f"ckpt_path={trained_run}", "way=3", "shot=1")
    noisy = evaluate(tmp_path / "noisy", f"ckpt_path={trained_run}", "way=3", "shot=1",
                     "noise=gaussian", "noise.std=0.5")
    salted = evaluate(tmp_path / "salt", f"ckpt_path={trained_run}", "way=3", "shot=1",
                      "noise=salt_pepper", "noise.amount=0.3")
    assert clean["way"] == noisy["way"] == 3 and clean["shot"] == 1
    assert noisy["noise"] == {"type": "gaussian", "std": 0.5}
    assert salted["noise"] == {"type": "salt_pepper", "amount": 0.3}
    # the pixel control sees the images: noise must change it on the same episodes
    assert noisy["test"]["acc_pixel"] != clean["test"]["acc_pixel"]
    assert salted["test"]["acc_pixel"] != clean["test"]["acc_pixel"]
    again = evaluate(tmp_path / "again", f"ckpt_path={trained_run}", "way=3", "shot=1",
                     "noise=gaussian", "noise.std=0.5")
    assert again["test"]["acc"] == noisy["test"]["acc"]  # seeded
    # noise is the treatment: the clean episodes underneath are the same
    assert noisy["test"]["per_episode"]["episodes_sha1"] == \
        clean["test"]["per_episode"]["episodes_sha1"]
    assert again["test"]["acc_pixel"] == noisy["test"]["acc_pixel"]


def test_eval_on_the_validation_classes_repeats_the_runs_best_validation(
        trained_run: Path, tmp_path: Path) -> None:
    trained = json.loads((trained_run / "metrics.json").read_text())
    episodes = trained["val"]["episodes"]
    metrics = evaluate(tmp_path, f"ckpt_path={trained_run}", "split=val",
                       f"test_episodes={episodes}")
    assert metrics["split"] == "val" and metrics["test"]["episodes"] == episodes
    lines = summary_lines(metrics, tmp_path, None)
    assert f"{episodes} validation episodes" in lines[0] and lines[1].startswith("val accuracy")
    # best.pt on the validation episodes it was chosen on: the same accuracy
    assert metrics["test"]["acc"] == pytest.approx(trained["val"]["acc_best"])
    assert metrics["test"]["per_episode"]["episodes_sha1"] != \
        trained["test"]["per_episode"]["episodes_sha1"]


def test_eval_refuses_an_unknown_split(trained_run: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"^split=train: must be one of test, val$"):
        evaluate(tmp_path, f"ckpt_path={trained_run}", "split=train")


def test_eval_refuses_a_dataset_of_another_image_size(trained_run: Path, tmp_path: Path) -> None:
    from snnexp.api import load_learner
    from snnexp.checkpoint import restore_learner

    learner = load_learner(trained_run)
    state = torch.load(trained_run / "checkpoints" / "best.pt", weights_only=True)
    with pytest.raises(UserError, match=r"images \[1, 28, 28\]"):
        restore_learner(learner.config, state, (1, 28, 28), torch.device("cpu"))


def test_eval_of_a_bad_checkpoint_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "snnexp.eval", f"ckpt_path={bad}",
                           f"hydra.run.dir={tmp_path / 'eval'}"], capture_output=True, text=True,
                          timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"checkpoint {bad}" in errors[0]
