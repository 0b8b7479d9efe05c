"""docs/extending.md's own-dataset example runs as written: a loader module and a dataset
option in a user's --config-dir."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers.cli import run_cli
from helpers.configs import REPO

from snnexp.cli import exit_on_bad_group_choice

DOC = (REPO / "docs" / "extending.md").read_text()


def code_block(language: str, holding: str) -> str:
    """The fenced ``language`` code block of the page that contains ``holding``."""
    return next(block for block in re.findall(rf"```{language}\n(.*?)```", DOC, re.S)
                if holding in block)


def test_a_user_dataset_in_a_config_dir_trains(tmp_path: Path):
    (tmp_path / "my_data.py").write_text(code_block("python", "def load("))
    (tmp_path / "my_conf" / "dataset").mkdir(parents=True)
    (tmp_path / "my_conf" / "dataset" / "blobs.yaml").write_text(
        code_block("yaml", "_target_: my_data.load"))
    command = code_block("bash", "--config-dir my_conf")
    args = command.split("python -m snnexp.train ", 1)[1].split()
    result = run_cli(*args, "train_episodes=3", "val_every=3", "val_episodes=2",
                     "test_episodes=3", "threads=1", "logger=none",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["dataset"], metrics["way"], metrics["shot"]) == ("blobs", 3, 1)


def test_options_of_a_config_dir_pass_the_group_check(tmp_path: Path):
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "blobs.yaml").write_text("_target_: my_data.load\n")
    exit_on_bad_group_choice(["--config-dir", str(tmp_path), "dataset=blobs"])
    exit_on_bad_group_choice([f"--config-dir={tmp_path}", "dataset=omniglot,blobs"])
    with pytest.raises(SystemExit):
        exit_on_bad_group_choice(["dataset=blobs"])


def test_a_user_backbone_from_the_doc_trains_via_a_target_override(tmp_path: Path):
    (tmp_path / "my_net.py").write_text(code_block("python", "class MyNet"))
    command = code_block("bash", "model.backbone._target_=my_net.MyNet")
    args = command.split("python -m snnexp.train ", 1)[1].split()
    result = run_cli(*args, "dataset=digits", "model.num_steps=2", "train_episodes=2",
                     "val_every=2", "val_episodes=2", "test_episodes=2", "threads=1",
                     "logger=none", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["spikes"]["layer1/spikes"] > 0


def test_a_user_backbone_option_in_a_config_dir_composes(tmp_path: Path):
    (tmp_path / "my_net.py").write_text(code_block("python", "class MyNet"))
    (tmp_path / "my_conf" / "model" / "backbone").mkdir(parents=True)
    (tmp_path / "my_conf" / "model" / "backbone" / "mine.yaml").write_text(
        code_block("yaml", "_target_: my_net.MyNet"))
    result = run_cli("--config-dir", "my_conf", "model.backbone=mine", "dataset=digits",
                     "model.num_steps=2", "train_episodes=2", "val_every=2", "val_episodes=2",
                     "test_episodes=2", "threads=1", "logger=none",
                     f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
