"""Every ``python -m snnexp.train|eval`` command of the README and docs/ composes.

Commands are taken from fenced ``bash`` blocks and from inline code spans. A sweep (``-m``) is
checked with the first value of each swept key; placeholders (``<run dir>``) stand for a
path; commands that name files of a user's own (``--config-dir``) are run by
tests/test_extending.py instead.
"""

from __future__ import annotations

import re
import shlex

import pytest
from helpers.configs import REPO, compose

from snnexp.cli import nested_groups_as_groups, quote_path_values
from snnexp.config import check_config

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SKIPPED = ("--config-dir", "--help", "my_net.", "hydra.launcher.")  # see the docstring


def commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
        lines = [ln for b in blocks for ln in b.replace("\\\n", " ").splitlines()]
        lines += re.findall(r"`(python -m snnexp\.(?:train|eval)[^`]*)`", text)
        for line in lines:
            line = line.split("  #")[0].strip()
            if line.startswith("python -m snnexp.") and "..." not in line and \
                    not any(s in line for s in SKIPPED):
                found.append((page.name, line))
    return sorted(set(found))


def first_of_sweeps(args: list[str]) -> list[str]:
    """``key=a,b`` -> ``key=a`` (outside brackets); ``-m`` and ``--cfg``-style flags dropped."""
    out, flag_value = [], False
    for arg in args:
        if arg.startswith("-") or flag_value:
            flag_value = arg in ("--cfg", "-c")  # its value (job, hydra, all) follows
            continue
        key, _, value = arg.partition("=")
        if "," in value and not value.startswith(("[", "'", '"')):
            value = value.split(",")[0]
        out.append(f"{key}={value}" if "=" in arg else arg)
    return out


@pytest.mark.parametrize(("page", "command"), commands())
def test_a_documented_command_composes(page, command):
    words = shlex.split(re.sub(r"<[^>]*>", "outputs/run", command))
    entry, args = words[2].split(".")[1], first_of_sweeps(words[3:])
    args = nested_groups_as_groups(quote_path_values(args))
    cfg = compose(entry, *args, "paths.output_dir=/tmp/x", "hydra.run.dir=/tmp/x")
    if entry == "train":
        check_config(cfg)


def test_the_pages_hold_commands():
    assert len(commands()) > 40
