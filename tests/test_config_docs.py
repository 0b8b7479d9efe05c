"""docs/configuration.md is generated from conf/ and the schemas, and kept up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_configuration_reference_is_up_to_date():
    result = subprocess.run([sys.executable, "scripts/gen_config_docs.py", "--check"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_group_option_and_top_level_key_is_documented():
    text = (REPO / "docs" / "configuration.md").read_text()
    for path in sorted((REPO / "conf").glob("*/*.yaml")):
        if path.parent.name not in ("hydra", "local"):
            assert f"`{path.parent.name}={path.stem}`" in text, path
    for key in ("way", "shot", "train_way", "threads", "model.num_steps", "dataset.rotations",
                "optimizer.lr", "noise.std"):
        assert f"| `{key}` |" in text, key
