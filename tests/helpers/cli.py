"""The command line as a user types it, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.configs import REPO


def run_cli(*args: str, timeout: float = 120, module: str = "snnexp.train",
            cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m snnexp.train <args>`` as a user types it; stdout and stderr captured."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
