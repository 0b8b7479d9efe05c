"""The command line of ``snnexp.train`` and ``snnexp.eval``: one-line answers to user errors.

Two stages, shared by both entry points:

- ``prepare_argv`` runs on ``sys.argv`` before Hydra composes anything or writes a run dir:
  it refuses group options that do not exist, a renamed key (naming its new name), a run dir
  that holds a finished run and an Optuna storage the installed SQLAlchemy cannot open, and
  quotes paths that Hydra's override grammar would split (sweep job dirs such as
  ``3_model=protonet,seed=1,shot=5``).
- ``run_task`` wraps the task function inside ``@hydra.main``: keys added with ``+`` that no
  schema knows, required keys left unset (``???``), and any ``UserError`` raised by the task
  become one line ``[snnexp][ERROR] - <key>=<value>: <what is allowed>`` and exit code 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.metadata
import inspect
import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from snnexp.config import CONF_DIR, RENAMED_KEYS
from snnexp.errors import UserError
from snnexp.layout import CHECKPOINT_DIR, METRICS_FILE

log = logging.getLogger(__name__)
T = TypeVar("T")

# keys whose value is a file or directory; an existing path is quoted for Hydra's grammar
PATH_KEYS = ("ckpt_path", "resume", "init_from")

# what to give for a required key (``???`` in conf/) that was left unset
REQUIRED = {
    "ckpt_path": "give a run directory or a .pt file",
    "dataset.root": "give a folder with one subfolder of images per class",
}

TRUE_WORDS = ("true", "yes", "on", "1", "y")


def hydra_quote(value: str) -> str:
    """``value`` as a double-quoted string of Hydra's override grammar, read back unchanged.

    Inside double quotes Hydra reads ``\\"`` as ``"`` and halves a run of backslashes before a
    quote (or at the end); OmegaConf then reads ``\\${`` as a literal ``${`` and halves the
    backslashes before it. Other characters (``=``, ``,``, spaces, brackets) need no escape.
    """
    escaped = re.sub(r"(\\*)\$\{", r"\1\1\\${", value)  # a literal ${, not an interpolation
    escaped = re.sub(r'(\\+)(?="|$)', r"\1\1", escaped)  # backslashes before a quote or the end
    return '"' + escaped.replace('"', '\\"') + '"'


def override_for_shell(key: str, value: str) -> str:
    """A command-line token that sets ``key`` to the string ``value`` through a POSIX shell and
    Hydra's grammar, e.g. ``'ckpt_path="outputs/multirun/x/3_model=protonet,seed=1"'``."""
    plain = f"{key}={value}"
    return shlex.quote(plain if "${" not in value and _parses_as_plain_string(plain, value) else
                       f"{key}={hydra_quote(value)}")


def _parses_as_plain_string(override: str, value: str) -> bool:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_override(override)
    except Exception:  # noqa: BLE001 - any grammar error means the value needs quoting
        return False
    return parsed.value() == value


def quote_path_values(overrides: list[str]) -> list[str]:
    """Quote the value of ``ckpt_path=``, ``resume=``, ``init_from=`` when it is an existing
    path that Hydra would not read back as one string (``=``, ``,``, spaces, ...).

    A value already quoted, or one that is not an existing path (a sweep ``a,b``, a typo that
    the task reports), is left as given."""
    out = []
    for override in overrides:
        prefix, key, value = _split(override)
        if key in PATH_KEYS and value and value[0] not in "\"'" and os.path.exists(value) \
                and not _parses_as_plain_string(override, value):
            override = f"{prefix}{key}={hydra_quote(value)}"
        out.append(override)
    return out


def _split(override: str) -> tuple[str, str, str]:
    """``"++key=value"`` -> ``("++", "key", "value")``."""
    prefix = override[:len(override) - len(override.lstrip("+~"))]
    key, _, value = override[len(prefix):].partition("=")
    return prefix, key, value


def given_values(overrides: list[str]) -> dict[str, str]:
    """``{key: value}`` of ``overrides`` (``+``/``~`` prefixes dropped; ``""`` for ``~key``)."""
    return dict(_split(o)[1:] for o in overrides)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def config_dirs(argv: list[str]) -> list[Path]:
    """The packaged ``conf/`` and the folders given with ``--config-dir`` / ``-cd`` (a user's
    own groups and options, searched by Hydra too)."""
    dirs = [Path(CONF_DIR)]
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(Path(argv[i + 1]).expanduser())
        elif arg.startswith("--config-dir="):
            dirs.append(Path(arg.partition("=")[2]).expanduser())
    return dirs


def exit_on_bad_group_choice(overrides: list[str]) -> None:
    """Exit 2 with one line for a group override Hydra would answer with a traceback
    (``<group>=null``) or with a listing of its search path (an option that is not there).

    A group's option is chosen by name (``logger=none``); ``~group`` drops the group. Sweeps
    (``encoder=direct,rate``) are checked option by option; Hydra's own groups (``hydra/...``)
    and sweep functions (``choice(...)``) are left to Hydra. Options in a ``--config-dir``
    count as well.
    """
    dirs = config_dirs(overrides)
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        folders = [d / key.replace(".", "/") for d in dirs if (d / key.replace(".", "/")).is_dir()]
        if key.startswith("hydra") or not folders:
            continue
        options = sorted({p.stem for folder in folders for p in folder.glob("*.yaml")})
        allowed = ", ".join(options)
        if value == "null":
            exit_with(f"{key}=null: must be one of {allowed} (or drop the group with ~{key})")
        if re.fullmatch(r"[\w.-]+(,[\w.-]+)*", value):
            for option in value.split(","):
                if option not in options:
                    exit_with(f"{key}={option}: must be one of {allowed}")


def exit_on_renamed_key(overrides: list[str]) -> None:
    """Exit 2 with one line naming the new name of a renamed key (``snnexp.config.
    RENAMED_KEYS``), given as ``key=``, ``+key=``, ``++key=`` or ``~key``."""
    for override in overrides:
        _, key, value = _split(override)
        if key in RENAMED_KEYS:
            new = RENAMED_KEYS[key]
            given = f"{key}={value}" if value else key
            exit_with(f"{given}: renamed to {new}" + (f" ({new}={value})" if value else ""))


def finished_run(folder: Path) -> str | None:
    """What in ``folder`` shows a finished run (``metrics.json`` of a completed run, or saved
    checkpoints), or ``None``."""
    try:
        status = json.loads((folder / METRICS_FILE).read_text()).get("status")
    except (OSError, ValueError, AttributeError):
        status = None
    if status == "completed":
        return "metrics.json of a completed run"
    if any((folder / CHECKPOINT_DIR).glob("*.pt")):
        return f"{CHECKPOINT_DIR}/"
    return None


def exit_on_finished_run_dir(overrides: list[str]) -> None:
    """Exit 2 when ``hydra.run.dir`` (or a job dir under ``hydra.sweep.dir``) given on the
    command line holds a finished run, unless ``overwrite=true``.

    Hydra writes ``.hydra/`` and the log into the run dir before the task starts, so this runs
    before Hydra. A dir given by an interpolation (``${...}``) is not checked."""
    given = given_values(overrides)
    if given.get("overwrite", "false").lower() in TRUE_WORDS:
        return
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        value = _unquote(given.get(key, ""))
        if not value or "${" in value:
            continue
        folder = Path(value)
        found = finished_run(folder) if key == "hydra.run.dir" else next(
            (f"{job.name}/ ({what})" for job in sorted(folder.glob("*"))
             if job.is_dir() and (what := finished_run(job))), None)
        if found:
            exit_with(f"{key}={value}: holds a finished run ({found}); give a new directory, "
                      "or overwrite=true to write over it")


def exit_on_unusable_optuna_storage(overrides: list[str]) -> None:
    """Exit 2 for an Optuna RDB storage (``sqlite:///...``) that the installed packages cannot
    open: optuna 2.x (the one ``hydra-optuna-sweeper`` 1.2 accepts) needs SQLAlchemy < 2."""
    given = given_values(overrides)
    storage = _unquote(given.get("hydra.sweeper.storage", ""))
    if not storage or storage == "null":
        return
    try:
        optuna = importlib.metadata.version("optuna")
        sqlalchemy = importlib.metadata.version("sqlalchemy")
    except importlib.metadata.PackageNotFoundError:
        return
    if int(optuna.split(".")[0]) < 3 and int(sqlalchemy.split(".")[0]) >= 2:
        exit_with(f"hydra.sweeper.storage={storage}: optuna {optuna} cannot create its tables "
                  f"with SQLAlchemy {sqlalchemy}; pip install 'sqlalchemy>=1.4,<2' "
                  "(as pyproject.toml pins it)")


def nested_groups_as_groups(overrides: list[str]) -> list[str]:
    """``model.backbone=snell4`` -> ``model/backbone=snell4``: a config group nested in a node
    (``conf/model/backbone/``), chosen with the dotted key users type; sweeps
    (``model.backbone=notebook,snell4``) too. Keys inside the node
    (``model.backbone._target_=...``) and ``+``/``~`` overrides are left as given."""
    dirs = config_dirs(overrides)
    out = []
    for override in overrides:
        prefix, key, value = _split(override)
        group = key.replace(".", "/")
        if not prefix and "." in key and re.fullmatch(r"[\w-]+(,[\w-]+)*", value) \
                and any((d / group).is_dir() for d in dirs):
            override = f"{group}={value}"
        out.append(override)
    return out


def prepare_argv(argv: list[str]) -> list[str]:
    """The checks before Hydra (each exits 2 with one line) and ``argv`` with path values
    quoted for Hydra's grammar and nested groups in the group form."""
    exit_on_bad_group_choice(argv)
    exit_on_renamed_key(argv)
    exit_on_finished_run_dir(argv)
    exit_on_unusable_optuna_storage(argv)
    return quote_path_values(nested_groups_as_groups(argv))


def run(main: Callable[[], Any]) -> None:
    """``snnexp-train`` / ``snnexp-eval``: ``prepare_argv``, then Hydra's ``main``."""
    sys.argv[1:] = prepare_argv(sys.argv[1:])
    main()


def run_task(task: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """Call ``task(cfg)`` inside ``@hydra.main``; a ``UserError`` (also from the checks of keys
    added with ``+`` and of required keys) becomes one ERROR line and exit code 2."""
    try:
        check_added_keys(cfg, _task_overrides())
        check_required(cfg)
        return task(cfg)
    except UserError as err:
        log.error("%s", err)
        sys.exit(2)


def exit_with(message: str) -> None:
    print(f"[snnexp][ERROR] - {message}", file=sys.stderr)
    sys.exit(2)


def _task_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def overridden() -> dict[str, str]:
    """``{key: value}`` given on the command line (empty outside a Hydra app)."""
    return given_values(_task_overrides())


def is_multirun() -> bool:
    """Whether this process runs a job of a Hydra sweep (``-m``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def known_keys(node: Any) -> list[str] | None:
    """The keys ``node`` accepts: the fields of its schema, or the parameters of its
    ``_target_``; ``None`` when any key goes (no schema, a target taking ``**kwargs``)."""
    if not OmegaConf.is_dict(node):
        return None
    schema = OmegaConf.get_type(node)
    if dataclasses.is_dataclass(schema):
        return [f.name for f in dataclasses.fields(schema)]
    target = node.get("_target_") if "_target_" in node else None
    if not isinstance(target, str):
        return None
    try:
        from hydra.utils import get_object

        params = inspect.signature(get_object(target)).parameters.values()
    except Exception:  # noqa: BLE001 - an unimportable target is reported when instantiated
        return None
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params] + [k for k in node if str(k).startswith("_")]


def check_added_keys(cfg: DictConfig, overrides: list[str]) -> None:
    """``UserError`` for a key added with ``+`` (``+wya=5``, ``+model.bta=0.9``) that the
    schema of its node does not know, suggesting the closest known key.

    Each part of a dotted key is checked against its parent node down to the first node that
    takes any key (no schema, or a target with ``**kwargs``). Group choices
    (``+noise=gaussian``) and Hydra's own keys are Hydra's to judge."""
    for override in overrides:
        prefix, key, value = _split(override)
        if "+" not in prefix or key.startswith("hydra") or (Path(CONF_DIR) / key).is_dir():
            continue
        parts = key.split(".")
        for depth, name in enumerate(parts):
            parent_key = ".".join(parts[:depth])
            known = known_keys(OmegaConf.select(cfg, parent_key) if parent_key else cfg)
            if known is None:
                break
            if name in known:
                continue
            close = difflib.get_close_matches(name, [k for k in known if k[0] != "_"], n=1)
            where = f"{parent_key}." if parent_key else ""
            hint = f"did you mean {where}{close[0]}={value}?" if close else \
                "--cfg job lists every key"
            raise UserError(f"{prefix}{key}={value}: no such key in the config ({hint})")


def check_required(cfg: DictConfig) -> None:
    """``UserError`` for the first required key (``???``) left unset."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        key = missing[0]
        raise UserError(f"{key}: required, {REQUIRED.get(key, f'set it with {key}=...')}")
