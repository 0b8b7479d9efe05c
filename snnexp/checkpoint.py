"""Checkpoints and JSON files written atomically, and read back safely.

A write goes to a temporary file in the same directory, is flushed to disk, then renamed over
the target (``os.replace`` is atomic), so a crash mid-write leaves the previous file whole.
Files get the mode ``open()`` would give them (``0o666 & ~umask``), so a lab-mate reads them
where the user's umask allows it.
Checkpoints load with ``torch.load(weights_only=True)``: no arbitrary code runs on load.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnexp.errors import UserError

FORMAT = "snnexp-checkpoint/1"


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


def load_checkpoint(path: str | Path, key: str | None = None) -> dict[str, Any]:
    """Load a checkpoint saved by ``save_checkpoint``; ``UserError`` if missing or corrupt.

    ``path`` is a ``.pt`` file or a run directory (its ``checkpoints/last.pt``). ``key`` is the
    config key the path came from (``resume``, ``ckpt_path``); error messages name it.
    """
    where = f"{key}={path}" if key else f"checkpoint {path}"
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt" if (path / "checkpoints").is_dir() else \
            path / "last.pt"
        where = f"{where} ({path})"
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


def load_learner_state(learner: Any, state: dict[str, Any], source: str) -> None:
    """Load a checkpoint's ``learner`` entry; ``UserError`` naming ``source`` (``key=path``)
    when its weights do not fit the learner built from the config."""
    try:
        learner.load_state_dict(state["learner"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise weights_do_not_fit(err, source) from err


def weights_do_not_fit(err: Exception, source: str) -> UserError:
    """The one-line ``UserError`` for a load error ``err`` of weights from ``source``."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()] or [type(err).__name__]
    first = next((ln for ln in lines if "mismatch" in ln or "Missing" in ln), lines[0])
    return UserError(f"{source}: the checkpoint's weights do not fit this model ({first})")
