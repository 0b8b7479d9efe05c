"""Checkpoints and JSON files written atomically, and read back safely; what a run dir holds.

A run dir keeps ``checkpoints/best.pt`` and ``checkpoints/last.pt`` (``checkpoint_file``);
``resolve_checkpoint`` is the one rule that turns a run dir into one of them, for ``resume``
(last), ``ckpt_path`` and ``init_from`` (the weights the run tested). A learner owns what its
weights are (``Learner.load_state_dict``, ``Learner.load_network_weights``).

A write goes to a temporary file in the same directory, is flushed to disk, then renamed over
the target (``os.replace`` is atomic), so a crash mid-write leaves the previous file whole.
Files get the mode ``open()`` would give them (``0o666 & ~umask``), so a lab-mate reads them
where the user's umask allows it.
Checkpoints load with ``torch.load(weights_only=True)``: no arbitrary code runs on load.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from snnexp.builders import build_learner
from snnexp.errors import UserError
from snnexp.layout import CHECKPOINT_DIR
from snnexp.models.base import Learner

log = logging.getLogger(__name__)

FORMAT = "snnexp-checkpoint/1"
WHICH = ("best", "last", "tested")


def current_umask() -> int:
    """The process's umask, read without changing it where Linux exposes it (``os.umask`` can
    only be read by setting it, which races with other threads creating files)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Any) -> None:
    """Call ``write(file_object)`` on a temp file next to ``path``, then rename it to ``path``.

    The file ends with mode ``0o666 & ~umask`` (``mkstemp`` creates it ``0o600``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def json_text(data: Any, indent: int = 0) -> str:
    """``data`` as JSON, keys sorted, two-space indents, but a list of scalars on one line (a
    history row, the per-episode counts of a test) rather than one number per line."""
    pad = " " * indent
    if isinstance(data, dict) and data:
        items = [f"{pad}  {json.dumps(str(k))}: {json_text(v, indent + 2)}"
                 for k, v in sorted(data.items(), key=lambda kv: str(kv[0]))]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(data, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in data):
        items = [f"{pad}  {json_text(v, indent + 2)}" for v in data]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(data, allow_nan=True)


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    text = json_text(data) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))


def _to_torch(obj: Any) -> Any:
    """NumPy arrays to tensors and tuples to lists, recursively (weights_only-loadable)."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _to_torch(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_torch(v) for v in obj]
    return obj


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically save ``state`` (learner state, config, loop position, RNG states)."""
    payload = {"format": FORMAT, **_to_torch(state)}
    atomic_write(path, lambda f: torch.save(payload, f))


def checkpoint_file(run_dir: str | Path, name: str) -> Path:
    """``<run_dir>/checkpoints/<name>.pt``: where a run keeps its ``best`` and ``last`` weights."""
    return Path(run_dir) / CHECKPOINT_DIR / f"{name}.pt"


def resolve_checkpoint(path: str | Path, which: str = "tested") -> Path:
    """The checkpoint file that ``path`` names.

    A file (or a path that does not exist) is itself. A run directory, or its ``checkpoints/``
    folder, gives ``best.pt`` (``which="best"``), ``last.pt`` (``which="last"``), or the one
    its test used (``which="tested"``): ``best.pt`` when the run tested its best weights
    (``test_from=best``, the default) and the file exists, else ``last.pt``.
    """
    if which not in WHICH:
        raise ValueError(f"which={which}: must be one of {', '.join(WHICH)}")
    path = Path(path).expanduser()
    if not path.is_dir():
        return path
    folder = path / CHECKPOINT_DIR if (path / CHECKPOINT_DIR).is_dir() else path
    best, last = folder / "best.pt", folder / "last.pt"
    if which != "tested":
        return best if which == "best" else last
    if best.is_file() and last.is_file():
        test_from = _read(last, f"checkpoint {last}").get("config", {}).get("test_from", "best")
        return best if test_from == "best" else last
    return best if best.is_file() else last


def load_checkpoint(path: str | Path, key: str | None = None,
                    which: str = "last") -> dict[str, Any]:
    """Load a checkpoint saved by ``save_checkpoint``; ``UserError`` if missing or corrupt.

    ``path`` is a ``.pt`` file or a run directory, resolved by ``resolve_checkpoint(path,
    which)``. ``key`` is the config key the path came from (``resume``, ``ckpt_path``); error
    messages name it.
    """
    where = f"{key}={path}" if key else f"checkpoint {path}"
    file = resolve_checkpoint(path, which)
    if Path(path).expanduser().is_dir():
        where = f"{where} ({file})"
    return _read(file, where)


def _read(path: Path, where: str) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{where}: no such file (give a run directory or a .pt file)")
    if path.stat().st_size == 0:
        raise UserError(f"{where}: the file is empty")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise UserError(f"{where}: cannot be read ({err.__class__.__name__}); "
                        "the file is corrupt or not an snnexp checkpoint") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{where}: not an snnexp checkpoint (format {FORMAT})")
    return state


def checkpoint_config(state: dict[str, Any], path: str | Path) -> DictConfig:
    """The training config stored in a checkpoint."""
    if not isinstance(state.get("config"), dict) or "learner" not in state:
        raise UserError(f"checkpoint {path}: has no training config or learner state "
                        "(written by an older snnexp?)")
    return OmegaConf.create(state["config"])


def trained_episodes(state: dict[str, Any]) -> int | None:
    """The training episodes done when the checkpoint was written (``None``: not recorded)."""
    return state.get("loop", {}).get("done")


def load_learner_state(learner: Any, state: dict[str, Any], source: str) -> None:
    """Load a checkpoint's ``learner`` entry; ``UserError`` naming ``source`` (``key=path``)
    when its weights do not fit the learner built from the config."""
    try:
        learner.load_state_dict(state["learner"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise _misfit(source, err) from err


def restore_learner(cfg: DictConfig, state: dict[str, Any], image_shape: tuple[int, ...],
                    device: torch.device, source: str = "ckpt_path") -> Learner:
    """Build the learner of ``cfg`` for ``image_shape`` and load the checkpoint's weights."""
    learner = build_learner(cfg, image_shape, device)
    load_learner_state(learner, state, f"{source} (images {list(image_shape)} as C, H, W)")
    return learner


def load_initial_weights(learner: Learner, path: str | Path) -> None:
    """Start ``learner`` from the network weights of the run or ``.pt`` at ``path``
    (``init_from``; a run dir gives the weights its test used).

    The learner decides what it takes (``Learner.load_network_weights``); the optimizer, lr
    schedule and episode count start fresh."""
    source = f"init_from={path}"
    state = load_checkpoint(path, key="init_from", which="tested")
    try:
        learner.load_network_weights(state.get("learner", {}))
    except UserError as err:
        raise UserError(f"{source}: {err}") from None
    except (RuntimeError, ValueError, KeyError) as err:
        raise _misfit(source, err) from err
    log.info("initial weights from %s", path)


def _misfit(source: str, err: Exception) -> UserError:
    """The one-line ``UserError`` for weights that do not fit the model (``err``: torch's)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [type(err).__name__]
    first = next((ln for ln in lines if "mismatch" in ln or "Missing" in ln), lines[0])
    return UserError(f"{source}: the checkpoint's weights do not fit this model ({first})")
