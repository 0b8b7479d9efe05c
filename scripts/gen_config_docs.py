"""Write ``docs/configuration.md``: every config group, option and key of ``conf/``.

    python scripts/gen_config_docs.py            # rewrite docs/configuration.md
    python scripts/gen_config_docs.py --check    # exit 1 if the committed file is out of date

The YAML files are the one source: a key's default is its value there, its meaning the comment
on its line (or the comment lines right above it), its type the field of the schema the file
pulls in (``/<name>_schema@_here_``, the dataclasses of ``snnexp.config``). A group's
description is the comment at the top of each option's file.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONF = REPO / "conf"
OUT = REPO / "docs" / "configuration.md"
sys.path.insert(0, str(REPO))

from omegaconf import MISSING  # noqa: E402

from snnexp.config import SCHEMAS  # noqa: E402
from snnexp.schema import allowed_values  # noqa: E402

# groups documented key by key; the others (presets, launchers) are listed with their purpose
KEYED_GROUPS = ["model", "dataset", "encoder", "optimizer", "scheduler", "logger", "noise",
                "train_augment", "paths"]
LISTED_GROUPS = ["model/backbone", "experiment", "dataset_model", "train_noise", "debug",
                 "hparams_search", "hydra/launcher"]
SKIPPED_KEYS = {"defaults", "_target_", "_partial_"}
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[\w.]+):(?P<value>[^#]*?)\s*(#\s?(?P<note>.*))?$")


@dataclasses.dataclass
class Key:
    """One documented key: dotted name, default as written, type, meaning."""

    name: str
    default: str
    type: str
    allowed: str
    meaning: str


def header_comment(lines: list[str]) -> str:
    """The comment block at the top of a file, as one paragraph (``@package`` lines dropped)."""
    text = []
    for line in lines:
        if not line.startswith("#"):
            break
        body = line.lstrip("#").strip()
        if not body.startswith("@package"):
            text.append(body)
    return " ".join(t for t in text if t)


def schema_fields(lines: list[str], default: str | None = None) -> dict[str, dataclasses.Field]:
    """``{dotted field: field}`` of the schema a file pulls in (or of ``default``), nested
    sections as dotted names."""
    name = default
    for line in lines:
        match = re.search(r"/(\w+_schema)@_here_", line)
        if match:
            name = match.group(1)
    schema = SCHEMAS.get(name) if name else None
    return flat_fields(schema) if schema is not None else {}


def flat_fields(schema: type, prefix: str = "") -> dict[str, dataclasses.Field]:
    out = {}
    for f in dataclasses.fields(schema):
        nested = f.default_factory
        if isinstance(nested, type) and dataclasses.is_dataclass(nested):
            out.update(flat_fields(nested, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = f
    return out


def parse_keys(path: Path, prefix: str, schema: str | None = None) -> list[Key]:
    """The keys of a YAML file with their defaults and comments (nested maps as dotted keys)."""
    lines = path.read_text().splitlines()
    fields = schema_fields(lines, schema)
    keys: list[Key] = []
    pending: list[str] = []
    parents: list[tuple[int, str]] = []
    in_defaults, continues = False, False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if continues and line.startswith(" "):  # an inline comment running on
                keys[-1].meaning = f"{keys[-1].meaning} {body}"
            else:
                pending.append(body)
                continues = False
            continue
        continues = False
        match = KEY_LINE.match(line)
        if not match:
            if stripped.startswith("- ") or not stripped:
                pending = [] if not stripped else pending
            continue
        indent, key = len(match["indent"]), match["key"]
        value, note = match["value"].strip(), match["note"]
        if indent == 0:
            in_defaults = key == "defaults"
        if in_defaults or key in SKIPPED_KEYS:
            pending = []
            continue
        parents = [(i, k) for i, k in parents if i < indent]
        dotted = ".".join([k for _, k in parents] + [key])
        if not value:  # a nested map: its keys follow, indented
            parents.append((indent, key))
            pending = []
            continue
        meaning = note or " ".join(p for p in pending if p and not p.startswith("@package"))
        found = fields.get(dotted)
        keys.append(Key(f"{prefix}{dotted}", value, str(found.type) if found else "",
                        (allowed_values(found) or "") if found else "", meaning.strip()))
        pending, continues = [], bool(note)
    listed = {k.name for k in keys}
    for dotted, found in fields.items():  # a schema's own defaults, set in no YAML file
        default = found.default_factory() if callable(found.default_factory) else found.default
        if f"{prefix}{dotted}" not in listed and default is not MISSING and found.metadata.get(
                "doc"):
            keys.append(Key(f"{prefix}{dotted}", yaml_value(default), str(found.type),
                            allowed_values(found) or "", found.metadata["doc"]))
    return keys


def yaml_value(value: object) -> str:
    """A Python default as YAML writes it (``None`` -> ``null``, ``False`` -> ``false``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def table(keys: list[Key]) -> list[str]:
    rows = ["| key | default | type | allowed | meaning |", "|---|---|---|---|---|"]
    for k in keys:
        cells = [c.replace("|", "\\|") for c in (k.type, k.allowed, k.meaning)]
        rows.append(f"| `{k.name}` | `{k.default}` | " + " | ".join(cells) + " |")
    return rows


def group_defaults() -> dict[str, str]:
    """``{group: default option}`` from ``conf/train.yaml``'s defaults list."""
    found = {}
    for line in (CONF / "train.yaml").read_text().splitlines():
        match = re.match(r"^\s+-\s+(?:optional\s+)?([\w/]+):\s*([\w${}]+)", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def render() -> str:
    defaults = group_defaults()
    out = ["# Configuration reference", "",
           "Generated by `python scripts/gen_config_docs.py` from `conf/` (defaults and comments)",
           "and the schemas in `snnexp/config.py` (types); `tests/test_config_docs.py` checks",
           "that it is up to date. Set any key on the command line: `python -m snnexp.train",
           "way=5 shot=1 model.num_steps=10`; choose a group's option by name: `model=rstdp`.",
           "", "## Top-level keys (`conf/train.yaml`)", ""]
    out += table(parse_keys(CONF / "train.yaml", "", "train_schema"))
    out += ["", "## `python -m snnexp.eval` (`conf/eval.yaml`)", ""]
    out += table(parse_keys(CONF / "eval.yaml", "", "eval_schema"))
    out += ["", "## `python -m snnexp.export` (`conf/export.yaml`)", ""]
    out += table(parse_keys(CONF / "export.yaml", "", "export_schema"))
    for group in KEYED_GROUPS:
        out += ["", f"## `{group}`", ""]
        for path in sorted((CONF / group).glob("*.yaml")):
            mark = " (default)" if defaults.get(group) == path.stem else ""
            out += [f"### `{group}={path.stem}`{mark}", ""]
            about = header_comment(path.read_text().splitlines())
            if about:
                out += [about, ""]
            keys = parse_keys(path, f"{group}.")
            out += table(keys) if keys else ["(no keys)"]
            out.append("")
        while out[-1] == "":
            out.pop()
    for group in LISTED_GROUPS:
        files = sorted((CONF / group).glob("*.yaml"))
        if not files:
            continue
        # a group nested in a config node is chosen with the dotted key (model.backbone=...)
        typed = group if group.startswith("hydra/") else group.replace("/", ".")
        out += ["", f"## `{typed}`", "", "| option | what it sets |", "|---|---|"]
        for path in files:
            about = header_comment(path.read_text().splitlines()).replace("|", "\\|")
            out.append(f"| `{typed}={path.stem}` | {about} |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if out of date")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is out of date: run python scripts/gen_config_docs.py")
            sys.exit(1)
        return
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
