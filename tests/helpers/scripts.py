"""The files under ``scripts/`` (not a package) loaded as modules."""

from __future__ import annotations

import importlib.util
from types import ModuleType

from helpers.configs import REPO


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a fresh module."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
