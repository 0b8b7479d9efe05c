"""Structured-config schemas and value checks.

The schemas (dataclasses in Hydra's ConfigStore) make a wrong type or an unknown key fail at
compose time with Hydra's own message. ``check_config`` then checks values that types cannot
express (``way >= 1``, ``0 <= beta <= 1``, ...) and raises a one-line ``UserError``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from snnexp.errors import UserError
from snnexp.models.protonet.config import ProtoNetConfig
from snnexp.models.rstdp_config import DEFAULTS as RSTDP_DEFAULTS
from snnexp.schema import check_section

# the packaged configs (a link to the top-level conf/ in a source checkout, a copy in a wheel)
CONF_DIR = str(Path(__file__).resolve().parent / "conf")


@dataclass
class PoolConfig:
    """Fields shared by every ``dataset`` option (see ``snnexp.data.pool.ClassPool``)."""

    _target_: str = MISSING
    train_classes: list[int] | None = None
    test_classes: list[int] | None = None
    val_classes: list[int] | None = None
    val_fraction: float = 0.2
    split: str = "classes"
    test_fraction: float = 0.5
    rotations: bool = False
    flips: bool = False
    split_seed: int = 0


@dataclass
class IdxConfig(PoolConfig):
    """MNIST-like datasets read from IDX files."""

    name: str = MISSING
    root: str = MISSING
    download: bool = False


@dataclass
class OmniglotConfig(PoolConfig):
    """``dataset=omniglot`` (see ``snnexp.data.omniglot.load_omniglot``): split by alphabet."""

    root: str = MISSING
    image_size: int = 28
    test_alphabets: list[str] | None = None
    val_alphabets: list[str] | None = None
    invert: bool = True
    cache_dir: str | None = None


@dataclass
class FolderConfig(PoolConfig):
    """``dataset=folder`` (see ``snnexp.data.folder.load_folder``): one subfolder per class."""

    root: str = MISSING
    image_size: int = 28
    channels: int = 1
    invert: bool = False
    cache_dir: str | None = None


# ``model=rstdp``: the learner's own defaults (``snnexp.models.rstdp_config.DEFAULTS``) as a
# typed schema; values are checked by ``rstdp_config.validate`` when the learner is built
RSTDPConfig = make_dataclass(
    "RSTDPConfig",
    [("_target_", str, MISSING)] + [(k, type(v), v) for k, v in RSTDP_DEFAULTS.items()])


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str | None = MISSING  # null only where Hydra makes no run dir (--cfg job)


@dataclass
class TrainConfig:
    """The top-level keys every training run shares."""

    task_name: str = "train"
    way: int = 5
    shot: int = 5
    query: int = 15
    train_way: int = MISSING
    train_shot: int = MISSING
    train_query: int = MISSING
    seed: int = 0
    train_episodes: int = 300
    val_every: int = 50
    val_episodes: int = 100
    test_episodes: int = 600
    test_from: str = "best"
    device: str = "auto"
    threads: int | None = None
    resume: str | None = None
    init_from: str | None = None
    overwrite: bool = False
    optimized_metric: str = "val/acc_best"
    paths: PathsConfig = field(default_factory=PathsConfig)
    # group nodes: each option carries its own schema (model, dataset) or is a plain
    # `_target_` node (optimizer, scheduler, encoder, logger)
    model: Any = MISSING
    dataset: Any = MISSING
    optimizer: Any = None
    scheduler: Any = None
    encoder: Any = MISSING
    logger: Any = None


@dataclass
class EvalConfig:
    """``python -m snnexp.eval``: ``null`` keeps the checkpoint's training value."""

    task_name: str = "eval"
    ckpt_path: str = MISSING
    way: int | None = None
    shot: int | None = None
    query: int | None = None
    test_episodes: int | None = None
    seed: int | None = None
    device: str | None = None
    threads: int | None = None
    overwrite: bool = False
    paths: PathsConfig = field(default_factory=PathsConfig)
    dataset: Any = None  # a `dataset` option (another dataset than the training one), or null
    noise: Any = None  # a `noise` option (gaussian, salt_pepper), or null


# the schemas by the name the YAML files pull them in with (``/<name>@_here_``)
SCHEMAS: dict[str, type] = {
    "train_schema": TrainConfig, "eval_schema": EvalConfig,
    "protonet_schema": ProtoNetConfig, "rstdp_schema": RSTDPConfig,
    "pool_schema": PoolConfig, "idx_schema": IdxConfig,
    "omniglot_schema": OmniglotConfig, "folder_schema": FolderConfig,
}


def register_configs() -> None:
    """Put the schemas and resolvers where Hydra finds them (idempotent)."""
    cs = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        cs.store(name=name, node=schema)
    resolvers = {"project_root": project_root, "unique_dir": unique_dir,
                 "sanitize": sanitize_dirname}
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=True)


def project_root() -> str:
    """The checkout snnexp is installed from (it has ``outputs/``), else the current dir."""
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "outputs").is_dir() and (checkout / "pyproject.toml").is_file():
        return str(checkout)
    return os.getcwd()


def unique_dir(path: str) -> str:
    """``path``, or ``path_1``, ``path_2``, ... : the first that this call creates itself.

    ``os.makedirs(exist_ok=False)`` is atomic, so two runs started in the same second get
    different directories.
    """
    candidate, n = path, 0
    while True:
        try:
            os.makedirs(candidate, exist_ok=False)
            return candidate
        except FileExistsError:
            n += 1
            candidate = f"{path}_{n}"


def sanitize_dirname(name: str) -> str:
    """A readable directory name from Hydra's ``override_dirname`` (``model=rstdp,shot=1``).

    Long decimals (Optuna's samples) are shortened to 4 significant digits
    (``optimizer.lr=0.0022881136684755237`` -> ``optimizer.lr=0.002288``).
    """
    name = re.sub(r"(?<![\w.])\d+\.\d{5,}(e-?\d+)?", lambda m: f"{float(m.group()):.4g}", name)
    return re.sub(r"[^A-Za-z0-9=.,_+-]", "_", name)[:200] or "default"


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise UserError(f"{key}={value}: must be {allowed}")


def _check_model(model: DictConfig) -> None:
    """Values shared by the models, checked before any data is loaded or learner built."""
    for key in ("num_steps", "embedding_dim"):
        if key in model:
            _require(model[key] >= 1, f"model.{key}", model[key], "an integer >= 1")
    if "beta" in model:
        _require(0 <= model.beta <= 1, "model.beta", model.beta, "a number in [0, 1]")
    if "threshold" in model:
        _require(model.threshold > 0, "model.threshold", model.threshold, "a number > 0")


def check_config(cfg: DictConfig) -> None:
    """Check the values of a composed training config; raise ``UserError`` on the first bad one."""
    for key in ("way", "shot", "query", "train_way", "train_shot", "train_query",
                "test_episodes", "val_episodes", "val_every"):
        _require(cfg[key] >= 1, key, cfg[key], "an integer >= 1")
    _require(cfg.train_episodes >= 0, "train_episodes", cfg.train_episodes, "an integer >= 0")
    _require(cfg.test_from in ("best", "last"), "test_from", cfg.test_from, "one of best, last")
    _require(cfg.threads is None or cfg.threads >= 1, "threads", cfg.threads,
             "null or an integer >= 1")
    _require(bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", cfg.device)), "device", cfg.device,
             "one of auto, cpu, cuda, cuda:N, mps")
    if cfg.get("optimizer") is not None:
        for key in ("lr", "weight_decay", "momentum"):
            value = cfg.optimizer.get(key)
            _require(value is None or value >= 0, f"optimizer.{key}", value, "a number >= 0")
    _check_model(cfg.model)
    schema = OmegaConf.get_type(cfg.model)
    if dataclasses.is_dataclass(schema):
        check_section(cfg.model, schema, "model")
    ds = cfg.dataset
    _require(ds.split in ("classes", "images"), "dataset.split", ds.split,
             "one of classes, images")
    _require(0 < ds.val_fraction < 1, "dataset.val_fraction", ds.val_fraction,
             "a number in (0, 1)")
    _require(0 < ds.test_fraction < 1, "dataset.test_fraction", ds.test_fraction,
             "a number in (0, 1)")
    for node in ("model", "encoder", "dataset", "logger", "scheduler"):
        if cfg.get(node) is not None:
            OmegaConf.to_container(cfg[node], resolve=True)  # fail early on bad interpolations
