"""Shared fixtures: Hydra-composed configs, tiny run settings, the optional shared data.

``compose_cfg(*overrides)`` composes ``conf/train.yaml`` with Hydra's compose API (the same
config ``python -m snnexp.train`` would see), writes nothing outside ``tmp_path`` and clears
``GlobalHydra`` afterwards. ``TINY`` are the overrides that make a run take a second.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from snnexp.config import register_configs

REPO = Path(__file__).resolve().parent.parent
CONF_DIR = REPO / "conf"
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

# a run of about a second on one core: 2 training episodes, 2 validation, 3 test episodes
TINY = ["train_episodes=2", "val_every=2", "val_episodes=2", "test_episodes=3",
        "model.num_steps=2", "logger=none", "threads=1"]


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """``compose_cfg(*overrides, output_dir=None)`` -> the composed training config.

    ``paths.output_dir`` (the run directory) defaults to ``tmp_path / "run"`` and
    ``paths.log_dir`` to ``tmp_path / "outputs"``, so nothing lands in the repo's ``outputs/``.
    """
    register_configs()
    GlobalHydra.instance().clear()

    def _compose(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        run_dir = output_dir or tmp_path / "run"
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("train", overrides=[f"paths.output_dir={run_dir}",
                                               f"paths.log_dir={tmp_path / 'outputs'}",
                                               *overrides])

    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real MNIST test IDX files, Omniglot); skip when it is absent."""
    if not (SHARED_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def run_cli(*args: str, timeout: float = 120, module: str = "snnexp.train",
            cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m snnexp.train <args>`` as a user types it; stdout and stderr captured."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
