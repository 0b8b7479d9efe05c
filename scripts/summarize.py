"""Summarize runs: every ``metrics.json`` under a folder -> CSV, Markdown table and PNG plots.

    python scripts/summarize.py outputs/multirun/2026-01-01/12-00-00
    python scripts/summarize.py outputs/ --group-by model,shot --out results/

Each run is one row: its command-line overrides (``.hydra/overrides.yaml`` next to
``metrics.json``) and its metrics. Runs are grouped by ``--group-by`` (default: the overrides
that vary across runs, except ``seed``); each group gets the mean and the 95% CI across its runs
(``snnexp.metrics.mean_ci95``: ``1.96 * std / sqrt(n)``) of test, control and validation
accuracy. Written to ``--out`` (default ``<folder>/summary``): ``runs.csv``, ``groups.csv``,
``summary.md``, ``acc_vs_<x>.png`` (test accuracy vs ``--x`` per model, with CIs) and
``learning_curves.png`` (validation accuracy vs episode, mean per group).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from snnexp.metrics import mean_ci95

# (column, path in metrics.json) of every run's row
METRICS = [("test_acc", ("test", "acc")), ("test_ci95", ("test", "ci95")),
           ("test_acc_pixel", ("test", "acc_pixel")),
           ("test_acc_untrained", ("test", "acc_untrained")),
           ("val_acc_best", ("val", "acc_best")), ("train_episodes", ("train", "episodes")),
           ("train_wall_s", ("train", "wall_s")), ("test_episodes", ("test", "episodes"))]
FIELDS = ["model", "dataset", "encoder", "way", "shot", "query", "seed", "status", "noise"]
# columns averaged per group
AGGREGATED = ["test_acc", "test_acc_pixel", "test_acc_untrained", "val_acc_best"]


def _get(data: dict[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def read_overrides(run_dir: Path) -> dict[str, str]:
    """``key=value`` overrides of a run (``+key`` / ``~key`` prefixes dropped); ``{}`` if none."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    items = yaml.safe_load(path.read_text()) or []
    return dict(o.lstrip("+~").split("=", 1) for o in items if "=" in o)


def collect(root: Path) -> tuple[list[dict[str, Any]], list[str], dict[str, list]]:
    """Rows of every run under ``root``, the override keys, and each run's val history."""
    rows, override_keys, histories = [], [], {}
    for path in sorted(root.rglob("metrics.json")):
        metrics = json.loads(path.read_text())
        overrides = read_overrides(path.parent)
        row: dict[str, Any] = {"run": str(path.parent.relative_to(root)) or "."}
        for key, value in overrides.items():
            row[key] = value
            if key not in override_keys:
                override_keys.append(key)
        for key in FIELDS:
            if key in metrics:
                value = metrics[key]
                row[key] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
        for column, where in METRICS:
            row[column] = _get(metrics, where)
        histories[row["run"]] = _get(metrics, ("val", "history")) or []
        rows.append(row)
    return rows, override_keys, histories


def default_group_keys(rows: list[dict[str, Any]], override_keys: list[str]) -> list[str]:
    """The override keys whose value differs between runs, except ``seed``."""
    return [k for k in override_keys
            if k != "seed" and len({str(r.get(k)) for r in rows}) > 1]


def _sort_key(value: Any) -> tuple:
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def group(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """One row per distinct value of ``keys``: ``n``, and mean and CI95 of ``AGGREGATED``."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(str(row.get(k)) for k in keys), []).append(row)
    out = []
    for values in sorted(groups, key=lambda v: tuple(_sort_key(x) for x in v)):
        members = groups[values]
        summary: dict[str, Any] = dict(zip(keys, values, strict=True))
        summary["n"] = len(members)
        for column in AGGREGATED:
            numbers = [float(m[column]) for m in members if _is_number(m.get(column))]
            summary[column], summary[f"{column}_ci95"] = mean_ci95(numbers)
        out.append(summary)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(float(value))


def markdown(groups: list[dict[str, Any]], keys: list[str]) -> str:
    """The groups as a Markdown table, accuracies as ``mean ± ci95`` across runs (a group of
    one run has no spread across seeds: its mean alone)."""
    header = [*keys, "n", "test acc", "pixel control", "untrained control", "val acc best"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for g in groups:
        cells = [str(g[k]) for k in keys] + [str(g["n"])]
        cells += [("-" if not _is_number(g[c]) else f"{g[c]:.4f}" if g["n"] < 2
                   else f"{g[c]:.4f} ± {g[c + '_ci95']:.4f}") for c in AGGREGATED]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def plot_accuracy(rows: list[dict[str, Any]], x: str, out: Path) -> Path | None:
    """Test accuracy (mean ± CI95 over runs) vs ``x``, one line per model."""
    import matplotlib.pyplot as plt

    usable = [r for r in rows if r.get(x) is not None and _is_number(r.get("test_acc"))]
    if not usable:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for model in sorted({str(r.get("model")) for r in usable}):
        groups = group([r for r in usable if str(r.get("model")) == model], [x])
        xs = [g[x] for g in groups]
        numeric = all(_sort_key(v)[0] == 0 for v in xs)
        positions = [float(v) for v in xs] if numeric else list(range(len(xs)))
        ax.errorbar(positions, [g["test_acc"] for g in groups],
                    yerr=[g["test_acc_ci95"] for g in groups], marker="o", capsize=3,
                    label=model)
        if not numeric:
            ax.set_xticks(positions, xs)
    ax.set_xlabel(x)
    ax.set_ylabel("test accuracy (mean ± 95% CI)")
    ax.legend()
    fig.tight_layout()
    path = out / f"acc_vs_{x.replace('/', '_')}.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_learning_curves(rows: list[dict[str, Any]], keys: list[str],
                         histories: dict[str, list], out: Path) -> Path | None:
    """Validation accuracy vs meta-training episode, averaged over the runs of each group."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn = 0
    for g in group(rows, keys):
        members = [r for r in rows if all(str(r.get(k)) == g[k] for k in keys)]
        curves: dict[float, list[float]] = {}
        for r in members:
            for episode, acc, *_ in histories.get(r["run"], []):
                if _is_number(acc):
                    curves.setdefault(float(episode), []).append(float(acc))
        if not curves:
            continue
        episodes = sorted(curves)
        label = ",".join(f"{k}={g[k]}" for k in keys) or "all runs"
        label = label if len(label) <= 48 else label[:45] + "..."
        ax.plot(episodes, [sum(curves[e]) / len(curves[e]) for e in episodes], marker=".",
                label=label)
        drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("meta-training episode")
    ax.set_ylabel("validation accuracy")
    ax.legend(fontsize="x-small")
    fig.tight_layout()
    path = out / "learning_curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def summarize(root: Path, group_by: list[str] | None = None, out: Path | None = None,
              x: str = "shot") -> dict[str, Any]:
    """Write the CSVs, the Markdown table and the plots; return what was written."""
    import matplotlib

    matplotlib.use("Agg")
    rows, override_keys, histories = collect(root)
    if not rows:
        raise SystemExit(f"summarize: no metrics.json under {root}")
    keys = group_by if group_by is not None else default_group_keys(rows, override_keys)
    missing = [k for k in keys if all(k not in r for r in rows)]
    if missing:
        raise SystemExit(f"summarize: --group-by {','.join(missing)}: not a key of any run "
                         f"(keys: {', '.join(sorted({k for r in rows for k in r}))})")
    out = out or root / "summary"
    out.mkdir(parents=True, exist_ok=True)
    groups = group(rows, keys)
    table = markdown(groups, keys)
    write_csv(out / "runs.csv", rows)
    write_csv(out / "groups.csv", groups)
    (out / "summary.md").write_text(f"# {root}\n\n{len(rows)} runs\n\n{table}")
    plots = [p for p in (plot_accuracy(rows, x, out),
                         plot_learning_curves(rows, keys, histories, out)) if p]
    return {"rows": rows, "groups": groups, "table": table, "out": out, "plots": plots}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a multirun dir, or outputs/")
    parser.add_argument("--group-by", default=None,
                        help="comma-separated keys (default: the overrides that vary, but seed)")
    parser.add_argument("--out", type=Path, default=None, help="default: <root>/summary")
    parser.add_argument("--x", default="shot", help="x axis of the accuracy plot (shot)")
    args = parser.parse_args(argv)
    keys = [k for k in args.group_by.split(",") if k] if args.group_by is not None else None
    result = summarize(args.root, keys, args.out, args.x)
    print(result["table"], end="")
    print(f"{len(result['rows'])} runs, {len(result['groups'])} groups -> {result['out']} "
          f"({', '.join(p.name for p in result['plots']) or 'no plots'})")


if __name__ == "__main__":
    main(sys.argv[1:])
