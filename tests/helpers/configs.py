"""The repository's paths, tiny run settings, and configs composed as the CLI composes them."""

from __future__ import annotations

from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from snnexp.config import register_configs

REPO = Path(__file__).resolve().parents[2]
CONF_DIR = REPO / "conf"
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()

# a run of about a second on one core: 2 training episodes, 2 validation, 3 test episodes
TINY = ["train_episodes=2", "val_every=2", "val_episodes=2", "test_episodes=3",
        "model.num_steps=2", "logger=none", "threads=1"]
# a tiny run on the bundled sklearn digits (8x8 images), on the CPU
TINY_DIGITS = ["dataset=digits", "model.num_steps=3", "train_episodes=3", "val_every=3",
               "val_episodes=2", "test_episodes=3", "logger=none", "device=cpu"]


def compose(config_name: str, *overrides: str) -> DictConfig:
    """``conf/<config_name>.yaml`` with ``overrides``, as ``python -m snnexp.<entry>`` sees it
    (Hydra's global state cleared before and after)."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name, overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()
