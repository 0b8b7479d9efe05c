"""The command line as a user types it: in a subprocess, or in this process."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

from hydra.core.global_hydra import GlobalHydra

from helpers.configs import REPO


def run_cli(*args: str, timeout: float = 120, module: str = "snnexp.train",
            cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m snnexp.train <args>`` as a user types it; stdout and stderr captured."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_main(args: list[str], capfd, monkeypatch, module: str = "train") -> tuple[int, str]:
    """``python -m snnexp.<module> <args>`` in this process -> (exit code, stdout + stderr)."""
    monkeypatch.setattr(sys, "argv", [str(REPO / "snnexp" / f"{module}.py"), *args])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    GlobalHydra.instance().clear()
    try:
        runpy.run_module(f"snnexp.{module}", run_name="__main__")  # = python -m snnexp.<module>
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
    out = capfd.readouterr()
    return code, out.out + out.err
