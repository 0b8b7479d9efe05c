"""Shared fixtures: Hydra-composed configs, a trained tiny run, the optional shared data.

``compose_cfg(*overrides)`` composes ``conf/train.yaml`` with Hydra's compose API (the same
config ``python -m snnexp.train`` would see) and writes nothing outside ``tmp_path``. Helpers
that are not fixtures live in ``tests/helpers/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.configs import SHARED_DATA, compose
from helpers.runs import train_tiny
from omegaconf import DictConfig


@pytest.fixture
def compose_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``compose_cfg(*overrides, output_dir=None)`` -> the composed training config.

    ``paths.output_dir`` (the run directory) defaults to ``tmp_path / "run"`` and
    ``paths.log_dir`` to ``tmp_path / "outputs"``, so nothing lands in the repo's ``outputs/``.
    """

    def _compose(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        run_dir = output_dir or tmp_path / "run"
        return compose("train", f"paths.output_dir={run_dir}",
                       f"paths.log_dir={tmp_path / 'outputs'}", *overrides)

    return _compose


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny protonet run on digits (``helpers.runs.train_tiny``), shared read-only."""
    path = tmp_path_factory.mktemp("run")
    train_tiny(path)
    return path


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real MNIST test IDX files, Omniglot); skip when it is absent."""
    if not (SHARED_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
