"""A run's hyperparameters as TensorBoard's HParams tab shows them: flat, named, comparable.

``run_hparams(cfg, ...)`` gives ``{dotted key: int | float | str}``:

- the config option of each group by its name (``encoder=rate``, ``dataset=digits``, not the
  class behind it), from Hydra's runtime choices: ``model``, ``dataset``, ``encoder``,
  ``optimizer``, ``scheduler`` and any other group chosen on the command line;
- ``way``, ``shot``, ``train_way``, ``train_shot``, ``seed``, ``train_episodes``;
- every leaf of the ``model``, ``dataset``, ``encoder``, ``optimizer`` and ``scheduler``
  nodes as ``node.key`` (nested nodes as ``node.sub.key``), without Hydra's own keys
  (``_target_``, ``_partial_``, ...);
- every key given on the command line (``dataset.rotations``, ``train_way``, ``query``),
  so each key a sweep varies has a column.

Booleans become ``true``/``false``, ``None`` becomes ``null`` and lists their text, as typed on
the command line (TensorBoard takes numbers and strings only).

``swept_keys`` names the keys the run's sweep varies; the HParams tab lists them first.
``METRICS`` are the scalars the tab shows beside them (their last value in the run).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

GROUPS = ("model", "dataset", "encoder", "optimizer", "scheduler")
KEYS = ("way", "shot", "train_way", "train_shot", "seed", "train_episodes")
METRICS = ("test/acc", "test/acc_pixel", "test/acc_untrained", "val/acc_best")

HParam = int | float | str


def run_hparams(cfg: DictConfig, given: Iterable[str] = (), names: dict[str, str] | None = None,
                choices: dict[str, str | None] | None = None) -> dict[str, HParam]:
    """The hyperparameters of the run configured by ``cfg`` (see the module docstring).

    Args:
        cfg: the run's config.
        given: the keys given on the command line (``dataset.rotations``, ``encoder``).
        names: option names to use where Hydra's runtime choices are unknown (a config
            composed without a Hydra app), e.g. ``{"model": "protonet"}``.
        choices: ``{group: option}``; by default Hydra's ``runtime.choices`` of this run.
    """
    if choices is None:
        choices = dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}
    chosen = {**(names or {}), **{k: v for k, v in choices.items() if v is not None}}
    given = [key for key in given if not key.startswith("hydra.")]
    out: dict[str, HParam] = {}
    for group in (*GROUPS, *given):
        if group in chosen:
            out[_flat(group)] = _value(chosen[group])
    for key in KEYS:
        out[key] = _value(cfg.get(key))
    for node in GROUPS:
        if isinstance(cfg.get(node), DictConfig):
            out.update(_leaves(node, OmegaConf.to_container(cfg[node], resolve=True)))
    for key in given:
        if key not in chosen:
            value = OmegaConf.select(cfg, key, default=None)
            if isinstance(value, DictConfig):
                out.update(_leaves(key, OmegaConf.to_container(value, resolve=True)))
            else:
                out[key] = _value(OmegaConf.to_container(value, resolve=True)
                                  if OmegaConf.is_config(value) else value)
    return out


def swept_keys(given: Iterable[str]) -> set[str]:
    """The keys this run's sweep varies, as named by ``run_hparams``.

    In a sweep: the keys of its sweep overrides (``encoder=direct,rate``, from the
    ``multirun.yaml`` Hydra writes into the sweep dir) and of the sweeper's ``params`` (an
    Optuna search space); the keys given on the command line if neither names one. Outside a
    sweep: the keys given on the command line.
    """
    given = {_flat(key) for key in given}
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return given
    hydra = HydraConfig.get()
    keys = {_flat(str(key)) for key in (hydra.sweeper.get("params") or {})}
    saved = Path(hydra.sweep.dir) / "multirun.yaml"
    if saved.is_file():
        task = list(OmegaConf.load(saved).hydra.overrides.task)
        keys |= {_flat(o.key_or_group) for o in OverridesParser.create().parse_overrides(task)
                 if o.is_sweep_override()}
    return keys or given


def _flat(key: str) -> str:
    """A command-line key as an HParams name (``+experiment`` -> ``experiment``, ``a/b`` ->
    ``a.b``)."""
    return key.lstrip("+~").replace("/", ".")


def _leaves(prefix: str, node: Any) -> dict[str, HParam]:
    """``{"a": {"b": 1}, "_target_": ...}`` under ``prefix`` -> ``{"prefix.a.b": 1}``."""
    if not isinstance(node, dict):
        return {prefix: _value(node)}
    out: dict[str, HParam] = {}
    for key, value in node.items():
        if not str(key).startswith("_"):  # Hydra's _target_, _partial_, _convert_, ...
            out.update(_leaves(f"{prefix}.{key}", value))
    return out


def _value(value: Any) -> HParam:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float, str)):
        return value
    return str(value)
