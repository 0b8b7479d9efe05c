"""Structured-config schemas and value checks.

The schemas (dataclasses in Hydra's ConfigStore) make a wrong type or an unknown key fail at
compose time with Hydra's own message; the YAML option files hold the defaults. The allowed
values a type cannot express (``way >= 1``, a choice list) are declared on the schema's fields
(``snnexp.schema.choice``/``bounded``); ``check_config`` checks them, and the few rules that
relate keys, and raises a one-line ``UserError``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from snnexp.errors import UserError
from snnexp.models.hybrid.config import HybridConfig
from snnexp.models.protonet.config import ProtoNetConfig
from snnexp.models.rstdp.config import RSTDPConfig
from snnexp.schema import bounded, check_section, choice, documented

# the packaged configs (a link to the top-level conf/ in a source checkout, a copy in a wheel)
CONF_DIR = str(Path(__file__).resolve().parent / "conf")


@dataclass
class PoolConfig:
    """Fields shared by every ``dataset`` option (see ``snnexp.data.pool.ClassPool``); their
    defaults are here, where every option finds them."""

    _target_: str = MISSING
    train_classes: list[int] | None = documented(
        None, "class ids of meta-training (null: every class not in the other lists)")
    test_classes: list[int] | None = documented(
        None, "class ids of meta-testing (null: every class not in the other lists)")
    val_classes: list[int] | None = documented(
        None, "class ids of validation (null: val_fraction of the training images)")
    val_fraction: float = bounded(0, 1, open_low=True, open_high=True, default=0.2,
                                  doc="images of each training class held out to validate")
    split: str = choice("classes", "images", default="classes",
                        doc="classes: class-disjoint phases; images: every class in every "
                            "phase, disjoint images (the original notebook)")
    test_fraction: float = bounded(0, 1, open_low=True, open_high=True, default=0.5,
                                   doc="with split=images: images of each class that test")
    rotations: bool = documented(False, "90/180/270-degree rotations of the training classes "
                                        "as new classes")
    flips: bool = documented(False, "mirror images of the training classes as new classes")
    split_seed: int = documented(0, "seed of the image shuffles of the splits")


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



@dataclass
class EventPoolConfig(PoolConfig):
    """Event datasets (``snnexp.data.events.EventPool``): tonic's transforms of the events."""

    denoise_us: float | None = bounded(0, open_low=True)
    downsample: float = bounded(0, 1, open_low=True)


@dataclass
class OmniglotStrokesConfig(EventPoolConfig):
    """``dataset=omniglot_strokes`` (``snnexp.data.strokes``): pen events, split by alphabet."""

    root: str = MISSING
    sensor_size: int = bounded(4)
    timing: str = choice("recorded", "uniform")
    test_alphabets: list[str] | None = MISSING
    val_alphabets: list[str] | None = MISSING
    cache_dir: str | None = MISSING


@dataclass
class TonicDatasetConfig(EventPoolConfig):
    """``dataset=nmnist|pokerdvs`` (``snnexp.data.neuromorphic``): tonic's files."""

    root: str = MISSING
    download: bool = MISSING
    max_per_class: int | None = bounded(1)


@dataclass
class NMNISTConfig(TonicDatasetConfig):
    first_saccade_only: bool = MISSING


@dataclass
class EventFolderConfig(EventPoolConfig):
    """``dataset=event_folder`` (``snnexp.data.events.load_event_folder``)."""

    root: str = MISSING
    sensor_size: list[int] | None = MISSING


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    data_dir: str = MISSING
    log_dir: str = MISSING
    output_dir: str | None = MISSING  # null only where Hydra makes no run dir (--cfg job)


@dataclass
class TrainConfig:
    """The top-level keys every training run shares (defaults: ``conf/train.yaml``)."""

    task_name: str = MISSING
    way: int = bounded(1)
    shot: int = bounded(1)
    query: int = bounded(1)
    train_way: int = bounded(1)
    train_shot: int = bounded(1)
    train_query: int = bounded(1)
    seed: int = MISSING
    train_episodes: int = bounded(0)
    val_every: int = bounded(1)
    val_episodes: int = bounded(1)
    test_episodes: int = bounded(1)
    test_from: str = choice("best", "last")
    device: str = MISSING  # auto, cpu, cuda, cuda:N, mps (check_config)
    threads: int | None = bounded(1)
    precision: str = choice("fp32", "bf16")
    cpu_tuning: bool = MISSING
    resume: str | None = MISSING
    init_from: str | None = MISSING
    overwrite: bool = MISSING
    optimized_metric: str = MISSING
    paths: PathsConfig = field(default_factory=PathsConfig)
    # group nodes: each option carries its own schema (model, dataset) or is a plain
    # `_target_` node (optimizer, scheduler, encoder, logger)
    model: Any = MISSING
    dataset: Any = MISSING
    optimizer: Any = None
    scheduler: Any = None
    encoder: Any = MISSING
    logger: Any = None
    train_noise: Any = None  # a `noise` option corrupting the training episodes, or null
    train_augment: Any = None  # an augmentation of the training episodes, or null


@dataclass
class EvalConfig:
    """``python -m snnexp.eval``: ``null`` keeps the checkpoint's training value."""

    task_name: str = "eval"
    ckpt_path: str = MISSING
    way: int | None = None
    shot: int | None = None
    query: int | None = None
    test_episodes: int | None = None
    split: str = choice("test", "val")
    seed: int | None = None
    device: str | None = None
    threads: int | None = None
    precision: str | None = None
    cpu_tuning: bool = MISSING
    overwrite: bool = False
    paths: PathsConfig = field(default_factory=PathsConfig)
    dataset: Any = None  # a `dataset` option (another dataset than the training one), or null
    noise: Any = None  # a `noise` option (gaussian, salt_pepper), or null


@dataclass
class ExportConfig:
    """``python -m snnexp.export``: a trained ProtoNet embedding as a NIR graph."""

    task_name: str = "export"
    ckpt_path: str = MISSING
    out: str | None = None
    name: str = MISSING
    overwrite: bool = False
    paths: PathsConfig = field(default_factory=PathsConfig)


# the schemas by the name the YAML files pull them in with (``/<name>@_here_``)
SCHEMAS: dict[str, type] = {
    "train_schema": TrainConfig, "eval_schema": EvalConfig, "export_schema": ExportConfig,
    "protonet_schema": ProtoNetConfig, "rstdp_schema": RSTDPConfig,
    "hybrid_schema": HybridConfig,
    "pool_schema": PoolConfig, "idx_schema": IdxConfig,
    "omniglot_schema": OmniglotConfig, "folder_schema": FolderConfig,
    "omniglot_strokes_schema": OmniglotStrokesConfig, "tonic_dataset_schema": TonicDatasetConfig,
    "nmnist_schema": NMNISTConfig, "event_folder_schema": EventFolderConfig,
}


# keys that were renamed: a user who still types the old one is told the new one
# (``snnexp.cli.exit_on_renamed_key``, before Hydra would refuse the old key)
RENAMED_KEYS: dict[str, str] = {
    **{f"model.{key}": f"model.neuron.{key}"
       for key in ("v_rest", "v_reset", "v_th", "tau_m", "t_ref", "dt")},
    "model.hidden_mode": "model.hidden.mode",
    **{f"model.{key}": f"model.hidden.{key}" for key in ("kernel", "stride", "filters", "pool")},
    "model.hidden_gain": "model.hidden.gain",
    "model.hidden_lr": "model.hidden.lr",
    "model.hidden_theta_lr": "model.hidden.theta_lr",
    "model.readout_gain": "model.readout.gain",
    **{f"model.{key}": f"model.readout.{key}"
       for key in ("epochs", "batch", "punishment", "baseline_rate", "w_init", "w_noise",
                   "normalize")},
    "model.readout_theta_lr": "model.readout.theta_lr",
    **{f"model.{key}": f"model.stdp.{key}"
       for key in ("tau_plus", "tau_minus", "tau_e", "a_plus", "a_minus", "eta", "w_min",
                   "w_max")},
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


def model_schema(model: DictConfig) -> type | None:
    """The schema of a ``model`` node, ``SCHEMAS["<name>_schema"]`` of the learner class its
    ``_target_`` names (a config read back from a checkpoint carries no type), or ``None``."""
    from hydra.utils import get_class

    try:
        learner = get_class(model._target_)
    except Exception:  # noqa: BLE001 - a bad _target_ is reported when it is instantiated
        return None
    return SCHEMAS.get(f"{getattr(learner, 'name', None)}_schema")


def check_config(cfg: DictConfig) -> None:
    """Check the values of a composed training config (or one read back from a checkpoint):
    each section against its schema (the top level, the model's own, the dataset's shared
    fields), then what no schema declares (the device's form, the optimizer's rates) and the
    interpolations; raise ``UserError`` on the first bad value."""
    for old, new in RENAMED_KEYS.items():  # a config saved before the rename
        if OmegaConf.select(cfg, old, default=None) is not None:
            raise UserError(f"{old}={OmegaConf.select(cfg, old)}: renamed to {new}; this config "
                            "was saved with the old name")
    check_section(cfg, TrainConfig, "")
    _require(bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", cfg.device)), "device", cfg.device,
             "one of auto, cpu, cuda, cuda:N, mps")
    if cfg.get("optimizer") is not None:
        for key in ("lr", "weight_decay", "momentum"):
            value = cfg.optimizer.get(key)
            _require(value is None or value >= 0, f"optimizer.{key}", value, "a number >= 0")
    schema = model_schema(cfg.model)
    if schema is not None:
        check_section(cfg.model, schema, "model")
    check_section(cfg.dataset, PoolConfig, "dataset")
    for node in ("model", "encoder", "dataset", "logger", "scheduler"):
        if cfg.get(node) is not None:
            OmegaConf.to_container(cfg[node], resolve=True)  # fail early on bad interpolations
