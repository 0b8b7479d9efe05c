"""Placeholder: replaced by the traps branch."""

from __future__ import annotations

import shlex


def override_for_shell(key: str, value: str) -> str:
    return shlex.quote(f'{key}="{value}"') if any(c in value for c in "=,") else \
        shlex.quote(f"{key}={value}")
