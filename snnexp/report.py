"""The block of plain lines that ends a run: what was measured, against what, and where it is.

    == protonet on omniglot: 5-way 1-shot, 600 test episodes ==
    test accuracy      <acc> ± <ci95> %
    pixel control      <acc> ± <ci95> %   model - control: <+diff> ± <ci95> points
    untrained control  <acc> ± <ci95> %   model - control: <+diff> ± <ci95> points
    time               train 1000 episodes in <t> | test <t> | 2 torch threads
    run dir            outputs/2026-11-30/12-00-00
    metrics            outputs/2026-11-30/12-00-00/metrics.json
    evaluate again     python -m snnexp.eval ckpt_path=outputs/2026-11-30/12-00-00

Accuracies are means over the test episodes with their 95% interval; a difference to a control
is the mean of the per-episode differences on the identical episodes (a paired interval).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from snnexp.cli import override_for_shell
from snnexp.layout import METRICS_FILE
from snnexp.metrics import mean_ci95
from snnexp.progress import duration

CONTROLS = {"acc_pixel": "pixel control", "acc_untrained": "untrained control"}


def display_path(path: str | Path) -> str:
    """``path`` relative to the current directory when it lies below it, else absolute."""
    absolute = Path(path).resolve()
    try:
        return str(absolute.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(absolute)


def difference(model: Sequence[float], control: Sequence[float]) -> str:
    """``"+47.9 ± 0.9 points"`` for the paired per-episode difference, with its reading when
    the interval does not exclude zero or the model is below the control."""
    gain, ci95 = mean_ci95([100 * (a - b) for a, b in zip(model, control, strict=True)])
    text = f"model - control: {gain:+.1f} ± {ci95:.1f} points"
    if abs(gain) <= ci95:
        return f"{text} (no difference shown)"
    return f"{text} (the model is BELOW this control)" if gain < 0 else text


def summary_lines(metrics: dict[str, Any], run_dir: str | Path,
                  eval_command: str | None) -> list[str]:
    """The end-of-run block for ``metrics`` (``metrics.json``'s layout, with the per-episode
    counts of the model and its controls on the identical test episodes)."""
    test = metrics["test"]
    record = test.get("per_episode", {})
    per_episode = {k: [c / record["queries"] for c in counts]
                   for k, counts in record.get("correct", {}).items()}
    width = 19
    row = lambda label, text: f"{label:<{width}}{text}"  # noqa: E731
    val = metrics.get("split") == "val"  # eval split=val: episodes of the validation classes
    lines = [f"== {metrics['model']} on {metrics['dataset']}: {metrics['way']}-way "
             f"{metrics['shot']}-shot, {test['episodes']} {'validation' if val else 'test'} "
             "episodes ==",
             row("val accuracy" if val else "test accuracy",
                 f"{100 * test['acc']:.1f} ± {100 * test['ci95']:.1f} %")]
    for key, label in CONTROLS.items():
        if key in test and key in per_episode:
            ci_key = key.replace("acc", "ci95")
            lines.append(row(label, f"{100 * test[key]:.1f} ± {100 * test[ci_key]:.1f} %   "
                         + difference(per_episode["acc"], per_episode[key])))
    train = metrics.get("train", {})
    timing = f"test {duration(test['wall_s'])}"
    if train.get("episodes"):
        timing = (f"train {train['episodes']} episodes in {duration(train['wall_s'])} | "
                  + timing)
    if metrics.get("threads"):
        threads = metrics["threads"]
        timing += f" | {threads} torch thread{'s' if threads > 1 else ''}"
    energy = metrics.get("spikes", {})
    if "energy/snn_pj" in energy:
        uj = lambda key: f"{energy[key] / 1e6:.2f}"  # noqa: E731
        lines.append(row("energy / sample", (
            f"SNN {uj('energy/snn_pj')} vs ANN twin {uj('energy/ann_pj')} uJ arithmetic only | "
            f"with a weight fetch per event {uj('energy/snn_pj_weight_fetch')} vs "
            f"{uj('energy/ann_pj_weight_fetch')} uJ")))
    lines += [row("time", timing), row("run dir", display_path(run_dir)),
              row("metrics", display_path(Path(run_dir) / METRICS_FILE))]
    if eval_command:
        lines.append(row("evaluate again", eval_command))
    return lines


def eval_command(run_dir: str | Path) -> str:
    """``python -m snnexp.eval ckpt_path=<run dir>`` as a line to paste into a shell, quoted
    for the shell and Hydra's override grammar where needed (sweep job dirs hold ``=`` and
    ``,``)."""
    return f"python -m snnexp.eval {override_for_shell('ckpt_path', display_path(run_dir))}"
