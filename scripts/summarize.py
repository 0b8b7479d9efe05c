"""Summarize runs: every ``metrics.json`` under a folder -> CSV, Markdown table and PNG plots.

    python scripts/summarize.py outputs/multirun/2026-01-01/12-00-00
    python scripts/summarize.py outputs/ --group-by model,shot --out results/
    python scripts/summarize.py <eval noise sweep> --x noise.std --baseline noise.std=0

Each run is one row: its command-line overrides (``.hydra/overrides.yaml`` next to
``metrics.json``) and its metrics. Runs are grouped by ``--group-by`` (default: every override
that varies across runs, except ``seed``, so no swept key is averaged over unless asked); each
group gets the mean and the 95% Student-t interval across its runs (``snnexp.metrics.mean_ci95``:
``t_{0.975, n-1} * std(ddof=1) / sqrt(n)``) of the test accuracy, both controls and the best
validation accuracy. A group of one run has no spread across seeds; it shows the run's own
interval over its test episodes, marked ``*``.

``--baseline KEY=VALUE`` adds, for every other group, its test accuracy minus that of the group
which differs from it only in KEY (``KEY=VALUE``), with a paired interval (see ``compare``).

Written to ``--out`` (default ``<folder>/summary``): ``runs.csv``, ``groups.csv``,
``summary.md``, ``acc_vs_<x>.png`` (test accuracy and both controls vs ``--x``, one line per
combination of the other group keys, one panel per value of a second one) and
``learning_curves.png`` (validation accuracy vs episode, mean and t-interval across seeds).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from snnexp.layout import METRICS_FILE
from snnexp.metrics import mean_ci95

# (column, path in metrics.json) of every run's row
METRICS = [("test_acc", ("test", "acc")), ("test_ci95", ("test", "ci95")),
           ("test_acc_pixel", ("test", "acc_pixel")),
           ("test_acc_pixel_ci95", ("test", "ci95_pixel")),
           ("test_acc_untrained", ("test", "acc_untrained")),
           ("test_acc_untrained_ci95", ("test", "ci95_untrained")),
           ("val_acc_best", ("val", "acc_best")), ("train_episodes", ("train", "episodes")),
           ("train_wall_s", ("train", "wall_s")), ("test_episodes", ("test", "episodes"))]
FIELDS = ["model", "dataset", "encoder", "way", "shot", "query", "seed", "status", "noise",
          "split"]
# columns averaged per group, and the column of a single run's interval over its test episodes
AGGREGATED = {"test_acc": "test_ci95", "test_acc_pixel": "test_acc_pixel_ci95",
              "test_acc_untrained": "test_acc_untrained_ci95", "val_acc_best": None}
# (column, label, line style, marker) of the model and its controls in the accuracy plot
SERIES = [("test_acc", "model", "-", "o"), ("test_acc_pixel", "pixel control", "--", "s"),
          ("test_acc_untrained", "untrained control", ":", "^")]
# the key of the replicates a group averages over
REPLICATE = "seed"
# more groups than this in the learning curves: one panel per value of the first group key
FACET_AFTER = 6
# fields of metrics.json named in plot titles when constant and not an override
TITLE_FIELDS = ["model", "dataset", "way", "shot", "query"]
# overrides that do not change a result: left out of plot titles
NOT_IN_TITLE = ("threads", "logger", "device", "paths.", "hydra.")


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
    pairs = (o.lstrip("+~").split("=", 1) for o in items if "=" in o)
    return {key: _unquote(value) for key, value in pairs}


def _unquote(value: str) -> str:
    """A value quoted for Hydra's grammar (``ckpt_path='a=b,c'``) without its quotes."""
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    return value[1:-1] if quoted else value


def collect(root: Path) -> tuple[list[dict[str, Any]], list[str], dict[str, list],
                                 dict[str, dict]]:
    """Rows of every run under ``root``, the override keys, and each run's val history and
    per-episode test results (``metrics.json`` ``test.per_episode``, ``{}`` if absent)."""
    rows, override_keys, histories, episodes = [], [], {}, {}
    for path in sorted(root.rglob(METRICS_FILE)):
        metrics = json.loads(path.read_text())
        overrides = read_overrides(path.parent)
        row: dict[str, Any] = {"run": str(path.parent.relative_to(root)) or "."}
        for key, value in overrides.items():
            row[key] = value
            if key not in override_keys:
                override_keys.append(key)
        for key in FIELDS:  # an override of the same name wins (``noise=gaussian``)
            if key in metrics and key not in row:
                value = metrics[key]
                row[key] = json.dumps(value, sort_keys=True) if isinstance(value, dict) else value
        for column, where in METRICS:
            row[column] = _get(metrics, where)
        histories[row["run"]] = _get(metrics, ("val", "history")) or []
        episodes[row["run"]] = _get(metrics, ("test", "per_episode")) or {}
        rows.append(row)
    return rows, override_keys, histories, episodes


def varying_keys(rows: list[dict[str, Any]], keys: list[str]) -> list[str]:
    """The keys whose value differs between runs."""
    return [k for k in keys if len({str(r.get(k)) for r in rows}) > 1]


def default_group_keys(rows: list[dict[str, Any]], override_keys: list[str]) -> list[str]:
    """The override keys whose value differs between runs, except ``seed``."""
    return [k for k in varying_keys(rows, override_keys) if k != REPLICATE]


def _sort_key(value: Any) -> tuple:
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def _same(a: Any, b: Any) -> bool:
    """Equal as given, or as numbers (``0`` and ``0.0``)."""
    return str(a) == str(b) or (_sort_key(a)[0] == 0 and _sort_key(a) == _sort_key(b))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(float(value))


def split(rows: list[dict[str, Any]], keys: list[str]) -> list[tuple[dict[str, str], list]]:
    """``(values of keys, runs)`` per distinct value of ``keys``, in numeric-then-text order."""
    parts: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        parts.setdefault(tuple(str(row.get(k)) for k in keys), []).append(row)
    return [(dict(zip(keys, values, strict=True)), parts[values])
            for values in sorted(parts, key=lambda v: tuple(_sort_key(x) for x in v))]


def group(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """One row per distinct value of ``keys``: ``n`` and, of each ``AGGREGATED`` column, the
    mean and 95% t-interval half-width across runs (``<column>_ci95``; for one run, the run's
    own interval over its test episodes where it has one, flagged by ``ci_over="episodes"``)."""
    out = []
    for values, members in split(rows, keys):
        summary: dict[str, Any] = {**values, "n": len(members),
                                   "ci_over": "runs" if len(members) > 1 else "episodes"}
        for column, own_ci in AGGREGATED.items():
            numbers = [float(m[column]) for m in members if _is_number(m.get(column))]
            mean, ci95 = mean_ci95(numbers)
            if len(members) == 1 and own_ci is not None and _is_number(members[0].get(own_ci)):
                ci95 = float(members[0][own_ci])
            summary[column], summary[f"{column}_ci95"] = mean, ci95
        out.append(summary)
    return out


def markdown(groups: list[dict[str, Any]], keys: list[str], acc_label: str = "test acc") -> str:
    """The groups as a Markdown table, accuracies as ``mean ± ci95`` (a t-interval across the
    runs of the group; ``*``: a group of one run, its interval over its test episodes);
    ``acc_label`` heads the model's accuracy (``accuracy_label``)."""
    header = [*keys, "n", acc_label, "pixel control", "untrained control", "val acc best"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for g in groups:
        cells = [str(g[k]) for k in keys] + [str(g["n"])]
        for column in AGGREGATED:
            mean, ci95 = g[column], g[column + "_ci95"]
            mark = "*" if g["n"] == 1 else ""
            cells.append("-" if not _is_number(mean) else f"{mean:.4f}" if not _is_number(ci95)
                         else f"{mean:.4f} ± {ci95:.4f}{mark}")
        lines.append("| " + " | ".join(cells) + " |")
    note = "\n± : 95% Student-t interval across the runs (seeds) of a group"
    note += f"; * : a group of one run, its interval over its {EPISODES[acc_label]}.\n" \
        if any(g["n"] == 1 for g in groups) else ".\n"
    return "\n".join(lines) + "\n" + note


# the episodes a single run's interval is over, by ``accuracy_label``
EPISODES = {"test acc": "test episodes", "val acc": "validation episodes", "acc": "episodes"}


def accuracy_label(rows: list[dict[str, Any]]) -> str:
    """``test acc``, or ``val acc`` when every run is an evaluation on the validation classes
    (``snnexp.eval split=val``), else ``acc`` (the ``split`` column then tells them apart)."""
    splits = {row.get("split") or "test" for row in rows}
    return "test acc" if splits == {"test"} else "val acc" if splits == {"val"} else "acc"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


# ---- paired differences to a baseline ------------------------------------------------------
def parse_baseline(items: Sequence[str], rows: list[dict[str, Any]],
                   keys: list[str]) -> dict[str, str]:
    """``["noise.std=0"]`` -> ``{"noise.std": "0"}``; each key a group key, each value taken by
    a run (``SystemExit`` naming the allowed ones otherwise)."""
    baseline: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in keys:
            raise SystemExit(f"summarize: --baseline {item}: give KEY=VALUE with KEY one of the "
                             f"group keys ({', '.join(keys) or 'none: nothing varies'})")
        taken = sorted({str(r.get(key)) for r in rows}, key=_sort_key)
        if not any(_same(value, t) for t in taken):
            raise SystemExit(f"summarize: --baseline {item}: no run has {key}={value} "
                             f"(values: {', '.join(taken)})")
        baseline[key] = value
    return baseline


def same_episodes(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two runs' ``test.per_episode`` records come from identical test episodes."""
    return bool(a.get("episodes_sha1")) and a.get("episodes_sha1") == b.get("episodes_sha1") \
        and a.get("queries") == b.get("queries") \
        and len(_correct(a)) == len(_correct(b)) > 0


def _correct(record: dict[str, Any], name: str = "acc") -> list[int]:
    return (record.get("correct") or {}).get(name) or []


def compare(pairs: list[tuple[dict[str, Any], dict[str, Any]]], episodes: dict[str, dict],
            paired_on: list[str]) -> dict[str, Any]:
    """Test accuracy of ``run`` minus ``baseline`` over ``pairs`` of runs that share every
    override but the baseline key(s) (so the seed too): ``diff``, ``diff_ci95``, ``pairs``,
    ``pairing`` (how, naming the keys of ``paired_on`` that differ between the pairs).

    * two or more pairs: the mean of the per-pair differences with its t-interval across
      pairs. Training varies with the seed, so only an interval across seeds speaks for the
      configuration; pooling the episodes of several seeds would hide that variation.
    * one pair whose runs were tested on identical episodes (``episodes_sha1``): the mean of
      the per-episode differences with its t-interval across episodes; it holds for these two
      trained networks (e.g. one checkpoint under two noise levels), not across seeds.
    * one pair without identical per-episode results: the difference, no interval.
    """
    pairs = [(r, b) for r, b in pairs
             if _is_number(r.get("test_acc")) and _is_number(b.get("test_acc"))]
    diffs = [float(r["test_acc"]) - float(b["test_acc"]) for r, b in pairs]
    if len(diffs) >= 2:
        identical = all(same_episodes(episodes.get(r["run"], {}), episodes.get(b["run"], {}))
                        for r, b in pairs)
        mean, ci95 = mean_ci95(diffs)
        between = varying_keys([r for r, _ in pairs], paired_on) or ["all other overrides"]
        how = f"by {', '.join(between)}, {len(diffs)} pairs" + (
            " (identical test episodes within each pair)" if identical else "")
        return {"diff": mean, "diff_ci95": ci95, "pairs": len(diffs), "pairing": how}
    if len(diffs) == 1:
        (run, base), = pairs
        a, b = episodes.get(run["run"], {}), episodes.get(base["run"], {})
        if same_episodes(a, b):
            q = a["queries"]
            mean, ci95 = mean_ci95((x - y) / q for x, y in zip(_correct(a), _correct(b),
                                                                strict=True))
            return {"diff": mean, "diff_ci95": ci95, "pairs": 1,
                    "pairing": f"by episode, {len(_correct(a))} identical test episodes of "
                               "one pair of runs"}
        return {"diff": diffs[0], "diff_ci95": float("nan"), "pairs": 1,
                "pairing": "one pair of runs, no identical per-episode results: no interval"}
    return {"diff": float("nan"), "diff_ci95": float("nan"), "pairs": 0,
            "pairing": "no baseline run shares this group's other overrides"}


def baseline_differences(rows: list[dict[str, Any]], groups: list[dict[str, Any]],
                         keys: list[str], baseline: dict[str, str], override_keys: list[str],
                         episodes: dict[str, dict]) -> list[dict[str, Any]]:
    """For each group not in the baseline: ``compare`` of its runs with the baseline runs that
    share every other override (group keys, pooled keys and the seed)."""
    others = [k for k in dict.fromkeys([*override_keys, *keys]) if k not in baseline]
    match = lambda r: tuple(str(r.get(k)) for k in others)  # noqa: E731
    base_runs = {match(r): r for r in rows
                 if all(_same(r.get(k), v) for k, v in baseline.items())}
    out = []
    for g in groups:
        if all(_same(g[k], v) for k, v in baseline.items()):
            continue
        members = [r for r in rows if all(str(r.get(k)) == g[k] for k in keys)]
        pairs = [(r, base_runs[match(r)]) for r in members if match(r) in base_runs]
        out.append({**{k: g[k] for k in keys}, **compare(pairs, episodes, others)})
    return out


def markdown_differences(diffs: list[dict[str, Any]], keys: list[str],
                         baseline: dict[str, str]) -> str:
    name = ", ".join(f"{k}={v}" for k, v in baseline.items())
    lines = [f"Test accuracy minus the baseline {name} (paired, 95% t-interval)", "",
             "| " + " | ".join([*keys, "difference", "pairing"]) + " |",
             "|" + "---|" * (len(keys) + 2)]
    for d in diffs:
        diff = "-" if not _is_number(d["diff"]) else f"{d['diff']:+.4f}" + (
            f" ± {d['diff_ci95']:.4f}" if _is_number(d["diff_ci95"]) else "")
        lines.append("| " + " | ".join([*(str(d[k]) for k in keys), diff, d["pairing"]]) + " |")
    return "\n".join(lines) + "\n"


# ---- plots ---------------------------------------------------------------------------------
def choose_x(rows: list[dict[str, Any]], keys: list[str], x: str | None) -> str | None:
    """``--x``, else ``shot`` if it is a group key, else the first numeric group key, else the
    first group key (``None`` when nothing varies)."""
    if x is not None:
        return x
    if "shot" in keys:
        return "shot"
    numeric = [k for k in keys if all(_sort_key(r.get(k))[0] == 0 for r in rows)]
    return (numeric or keys or [None])[0]


def _short(value: Any, width: int = 80) -> str:
    """``value`` as text, a path as its last component, cut to ``width`` characters."""
    text = str(value)
    if "/" in text.rstrip("/"):
        text = "…/" + Path(text).name
    return text if len(text) <= width else text[:width - 1] + "…"


def _label(values: dict[str, str], width: int = 40) -> str:
    """``key=value, ...`` with each value cut for a legend."""
    return ", ".join(f"{k}={_short(v, width)}" for k, v in values.items())


def title(rows: list[dict[str, Any]], override_keys: list[str], shown: list[str],
          extra: str = "") -> str:
    """The constant overrides, the replicates behind each point, and the keys pooled."""
    named = [k for k in TITLE_FIELDS if k not in override_keys] + override_keys
    constant = [k for k in named if k not in shown and k != REPLICATE and rows[0].get(k) is not None
                and not k.startswith(NOT_IN_TITLE) and len({str(r.get(k)) for r in rows}) == 1]
    parts = [", ".join(f"{k}={_short(rows[0].get(k))}" for k in constant)]
    seeds = sorted({str(r.get(REPLICATE)) for r in rows if r.get(REPLICATE) is not None},
                   key=_sort_key)
    if seeds:
        parts.append(f"{REPLICATE}={','.join(seeds)}")
    pooled = [k for k in varying_keys(rows, override_keys) if k not in shown and k != REPLICATE]
    if pooled:
        parts.append(f"pooled over {', '.join(pooled)}")
    text = " | ".join(p for p in [extra, *parts] if p)
    return "\n".join(textwrap.wrap(text, 100))


def _positions(values: list[str]) -> tuple[list[float], bool]:
    numeric = all(_sort_key(v)[0] == 0 for v in values)
    return ([float(v) for v in values] if numeric else list(range(len(values)))), numeric


def _set_x_ticks(ax: Any, values: list[str]) -> None:
    """A tick at each value (numbers at their place, integers without decimals), or integer
    ticks when there are too many values to label."""
    from matplotlib.ticker import MaxNLocator

    positions, numeric = _positions(values)
    if numeric and len(values) > 12:
        integer = all(float(v).is_integer() for v in values)
        ax.xaxis.set_major_locator(MaxNLocator(integer=integer))
        return
    labels = [(f"{float(v):g}" if numeric else str(v)) for v in values]
    ax.set_xticks(positions, labels)


def _accuracy_limits(ax: Any, lows: list[float], highs: list[float]) -> None:
    """y from the lowest to the highest interval end, within the possible ``[0, 1]``: an
    interval wider than that runs off the axes rather than squeezing the means together."""
    low = max(0.0, min(lows, default=0.0))
    high = min(1.0, max(highs, default=1.0))
    pad = 0.03 * ((high - low) or 1.0)
    ax.set_ylim(max(0.0, low - pad) if low > 0 else -pad, high + pad)


def plot_accuracy(rows: list[dict[str, Any]], x: str | None, keys: list[str],
                  override_keys: list[str], out: Path) -> Path | None:
    """Test accuracy and both controls (mean ± 95% t-interval across seeds) vs ``x``.

    The group keys other than ``x`` are shown: the first of two or more as one panel per value,
    the rest as one colour per combination; the model is a solid line, the pixel and untrained
    controls dashed and dotted in the same colour. Constant overrides are named in the title."""
    import matplotlib.pyplot as plt

    usable = [r for r in rows if _is_number(r.get("test_acc"))]
    if not usable:
        return None
    rest = [k for k in keys if k != x]
    facet_keys, line_keys = (rest[:1], rest[1:]) if len(rest) >= 2 else ([], rest)
    facets = split(usable, facet_keys)
    x_values = sorted({str(r.get(x)) for r in usable}, key=_sort_key) if x else ["all runs"]
    positions, numeric = _positions(x_values)
    where = dict(zip(x_values, positions, strict=True))
    span = (max(positions) - min(positions)) or 1.0
    lines = [values for values, _ in split(usable, line_keys)]
    colours = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20")
    dodge = span * (0.012 if numeric else 0.06)
    fig, axes = plt.subplots(1, len(facets), figsize=(1.0 + 4.6 * len(facets), 4.2),
                             sharey=True, squeeze=False)
    one_run_groups, all_one_run, lows, highs = False, True, [], []
    for ax, (facet_values, facet_rows) in zip(axes[0], facets, strict=True):
        for line_values, line_rows in split(facet_rows, line_keys):
            i = lines.index(line_values)
            colour = colours(i % colours.N)
            groups = group(line_rows, [x]) if x else group(line_rows, [])
            one_run_groups |= any(g["n"] == 1 for g in groups)
            all_one_run &= all(g["n"] == 1 for g in groups)
            xs = [where[g[x]] if x else positions[0] for g in groups]
            for j, (column, _, style, marker) in enumerate(SERIES):
                shift = dodge * (3 * i + j - (3 * len(lines) - 1) / 2)
                # categories are not joined by lines; the interval bars keep the line style
                bars = ax.errorbar([p + shift for p in xs], [g[column] for g in groups],
                                   yerr=[g[column + "_ci95"] if _is_number(g[column + "_ci95"])
                                         else 0 for g in groups],
                                   color=colour, linestyle=style if numeric else "none",
                                   marker=marker, capsize=3, alpha=1.0 if j == 0 else 0.6,
                                   markersize=6 if j == 0 else 5)
                bars.lines[2][0].set_linestyle(style)
                for g in groups:
                    if _is_number(g[column]):
                        half = g[column + "_ci95"] if _is_number(g[column + "_ci95"]) else 0.0
                        lows.append(g[column] - half)
                        highs.append(g[column] + half)
        _set_x_ticks(ax, x_values)
        ax.set_xlabel(x or "")
        ax.grid(alpha=0.3)
        if facet_keys:
            ax.set_title(_label(facet_values), fontsize=10)
        if not numeric:
            ax.set_xlim(-0.5, len(x_values) - 0.5)
    _accuracy_limits(axes[0][0], lows, highs)
    label = accuracy_label(rows)
    episodes = EPISODES[label]
    spread = ("95% t-interval across seeds" if not one_run_groups else
              f"95% t-interval over {episodes}" if all_one_run else
              f"95% t-interval across seeds;\nfor one run: over its {episodes}")
    label = label.replace("acc", "accuracy")
    axes[0][0].set_ylabel(f"{label}\n(mean ± {spread})", fontsize=9)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colours(i % colours.N), linestyle=style, marker=marker,
                      alpha=1.0 if j == 0 else 0.6,
                      label=", ".join(p for p in (_label(values), series) if p))
               for i, values in enumerate(lines)
               for j, (_, series, style, marker) in enumerate(SERIES)]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8,
               frameon=False)
    fig.suptitle(title(usable, override_keys, keys + ([x] if x else [])), fontsize=9)
    fig.tight_layout()
    path = out / f"acc_vs_{(x or 'runs').replace('/', '_')}.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_learning_curves(rows: list[dict[str, Any]], keys: list[str],
                         histories: dict[str, list], override_keys: list[str],
                         out: Path) -> Path | None:
    """Validation accuracy vs meta-training episode per group: the mean across its runs with a
    shaded 95% t-interval across them (where two or more runs reach that episode). More than
    ``FACET_AFTER`` groups over two or more keys: one panel per value of the first key."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in rows if histories.get(r["run"])]
    if not rows:
        return None
    many = len(split(rows, keys)) > FACET_AFTER and len(keys) >= 2
    facet_keys, line_keys = (keys[:1], keys[1:]) if many else ([], keys)
    facets = split(rows, facet_keys)
    lines = [values for values, _ in split(rows, line_keys)]
    colours = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(facets), figsize=(1.5 + 4.6 * len(facets), 4.5),
                             sharey=True, squeeze=False)
    lows: list[float] = []
    highs: list[float] = []
    steps = sorted({float(e) for r in rows for e, *_ in histories[r["run"]]})
    for ax, (facet_values, facet_rows) in zip(axes[0], facets, strict=True):
        for values, members in split(facet_rows, line_keys):
            curves: dict[float, list[float]] = {}
            for r in members:
                for episode, acc, *_ in histories[r["run"]]:
                    if _is_number(acc):
                        curves.setdefault(float(episode), []).append(float(acc))
            episodes = sorted(curves)
            means, half = [], []
            for e in episodes:
                mean, h = mean_ci95(curves[e])
                means.append(mean)
                half.append(h if _is_number(h) else 0.0)
            low = [m - h for m, h in zip(means, half, strict=True)]
            high = [m + h for m, h in zip(means, half, strict=True)]
            lows, highs = lows + low, highs + high
            colour = colours(lines.index(values) % colours.N)
            ax.plot(episodes, means, marker=".", color=colour,
                    label=f"{_label(values) or 'all runs'} (n={len(members)})")
            ax.fill_between(episodes, low, high, color=colour, alpha=0.15, linewidth=0)
        if len(steps) <= 12:
            ax.set_xticks(steps, [f"{e:g}" for e in steps])
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 2.5, 5, 10]))
        ax.set_xlabel("meta-training episode")
        ax.grid(alpha=0.3)
        if facet_keys:
            ax.set_title(_label(facet_values), fontsize=10)
    _accuracy_limits(axes[0][0], lows, highs)
    axes[0][0].set_ylabel("validation accuracy\n(mean, shaded: 95% t-interval across seeds)",
                          fontsize=9)
    handles, labels = {}, []
    for ax in axes[0]:  # one legend entry per line, whichever panel drew it
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            key = label.rsplit(" (n=", 1)[0]
            if key not in handles:
                handles[key] = handle
                labels.append(label)
    fig.legend(list(handles.values()), labels, fontsize="x-small", loc="center left",
               bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(title(rows, override_keys, keys), fontsize=9)
    fig.tight_layout()
    path = out / "learning_curves.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def _check_keys(rows: list[dict[str, Any]], keys: list[str], option: str) -> None:
    missing = [k for k in keys if all(k not in r for r in rows)]
    if missing:
        raise SystemExit(f"summarize: {option} {','.join(missing)}: not a key of any run "
                         f"(keys: {', '.join(sorted({k for r in rows for k in r}))})")


def summarize(root: Path, group_by: list[str] | None = None, out: Path | None = None,
              x: str | None = None, baseline: Sequence[str] = ()) -> dict[str, Any]:
    """Write the CSVs, the Markdown table and the plots; return what was written."""
    import matplotlib

    matplotlib.use("Agg")
    rows, override_keys, histories, episodes = collect(root)
    if not rows:
        raise SystemExit(f"summarize: no {METRICS_FILE} under {root}")
    keys = group_by if group_by is not None else default_group_keys(rows, override_keys)
    _check_keys(rows, keys, "--group-by")
    if x is not None:
        _check_keys(rows, [x], "--x")
    x = choose_x(rows, keys, x)
    if x is not None and x not in keys:
        keys = [*keys, x]  # the x axis splits the runs as a group key does
    out = out or root / "summary"
    out.mkdir(parents=True, exist_ok=True)
    groups = group(rows, keys)
    table = markdown(groups, keys, accuracy_label(rows))
    diffs: list[dict[str, Any]] = []
    if baseline:
        chosen = parse_baseline(baseline, rows, keys)
        diffs = baseline_differences(rows, groups, keys, chosen, override_keys, episodes)
        table += "\n" + markdown_differences(diffs, keys, chosen)
        by_values = {tuple(d[k] for k in keys): d for d in diffs}
        for g in groups:
            d = by_values.get(tuple(g[k] for k in keys), {})
            g["baseline"] = ",".join(f"{k}={v}" for k, v in chosen.items())
            for column in ("diff", "diff_ci95", "pairs", "pairing"):
                g[f"{column}"] = d.get(column, "baseline" if column == "pairing" else "")
    write_csv(out / "runs.csv", rows)
    write_csv(out / "groups.csv", groups)
    (out / "summary.md").write_text(f"# {root}\n\n{len(rows)} runs\n\n{table}")
    plots = [p for p in (plot_accuracy(rows, x, keys, override_keys, out),
                         plot_learning_curves(rows, keys, histories, override_keys, out)) if p]
    return {"rows": rows, "groups": groups, "table": table, "out": out, "plots": plots,
            "differences": diffs}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="a multirun dir, or outputs/")
    parser.add_argument("--group-by", default=None,
                        help="comma-separated keys (default: the overrides that vary, but seed)")
    parser.add_argument("--out", type=Path, default=None, help="default: <root>/summary")
    parser.add_argument("--x", default=None,
                        help="x axis of the accuracy plot (default: shot if it varies, else the "
                             "first numeric group key)")
    parser.add_argument("--baseline", action="append", default=[], metavar="KEY=VALUE",
                        help="print each group's test accuracy minus that of the group with "
                             "KEY=VALUE, paired by seed or by episode (repeatable)")
    args = parser.parse_args(argv)
    keys = [k for k in args.group_by.split(",") if k] if args.group_by is not None else None
    result = summarize(args.root, keys, args.out, args.x, args.baseline)
    print(result["table"], end="")
    print(f"{len(result['rows'])} runs, {len(result['groups'])} groups -> {result['out']} "
          f"({', '.join(p.name for p in result['plots']) or 'no plots'})")


if __name__ == "__main__":
    main(sys.argv[1:])
