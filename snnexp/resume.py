"""Resuming an interrupted run: its checkpoint, and its config with what may change.

``resume=<run dir or last.pt>`` continues the run from ``checkpoints/last.pt`` with the stored
config; only ``train_episodes``, ``device``, ``threads`` and ``cpu_tuning`` may be given anew
(and the paths of the new run dir). The learner's weights and the loop's position are restored
by the caller (``checkpoint.load_learner_state``, ``MetaTrainer.restore``).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from snnexp.checkpoint import load_checkpoint
from snnexp.cli import overridden
from snnexp.errors import UserError

# keys a resumed run may set anew (each taken from this run); any other override given on the
# command line must match the stored config
CHANGEABLE = ("train_episodes", "device", "threads", "cpu_tuning")
RESUMABLE = (*CHANGEABLE, "resume", "overwrite", "paths.", "hydra.")


def load_resume(cfg: DictConfig) -> tuple[DictConfig, dict[str, Any] | None]:
    """``(config, checkpoint)`` of the run ``cfg.resume`` names, or ``(cfg, None)`` when
    ``resume`` is unset."""
    if not cfg.get("resume"):
        return cfg, None
    state = load_checkpoint(cfg.resume, key="resume", which="last")
    return config_for_resume(cfg, state), state


def config_for_resume(cfg: DictConfig, state: dict[str, Any]) -> DictConfig:
    """The interrupted run's config, with this run's paths and ``CHANGEABLE`` keys.

    Any other key given on the command line must equal the stored value (``UserError``)."""
    stored = OmegaConf.create(state["config"])
    given = overridden()
    for key in sorted(given):
        if key.startswith(RESUMABLE):
            continue
        old = OmegaConf.select(stored, key)
        if old != OmegaConf.select(cfg, key):
            was = f"{key}={old}" if not OmegaConf.is_config(old) else f"another {key}"
            raise UserError(f"{key}={given[key]}: resume={cfg.resume} was trained with {was}; "
                            "on resume only train_episodes, device, threads, cpu_tuning may change")
    with open_dict(stored):
        stored.paths = cfg.paths
        stored.logger = cfg.logger  # this run's own TensorBoard folder
        stored.resume = cfg.resume
        for key in CHANGEABLE:
            if key in given:
                stored[key] = cfg[key]
    return stored
