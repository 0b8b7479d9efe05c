"""The end-of-run summary block and the progress lines written without a terminal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from scipy import stats

from snnexp.progress import Progress, duration
from snnexp.report import difference, summary_lines


def metrics_with(acc: list[int], pixel: list[int], untrained: list[int], queries: int = 10):
    def mean(counts: list[int]) -> float:
        return sum(counts) / len(counts) / queries

    return {"model": "protonet", "dataset": "omniglot", "way": 5, "shot": 1,
            "train": {"episodes": 300, "wall_s": 95.0},
            "test": {"episodes": len(acc), "wall_s": 12.0, "acc": mean(acc), "ci95": 0.01,
                     "acc_pixel": mean(pixel), "ci95_pixel": 0.02,
                     "acc_untrained": mean(untrained), "ci95_untrained": 0.03,
                     "per_episode": {"queries": queries, "episodes_sha1": None,
                                     "correct": {"acc": acc, "acc_pixel": pixel,
                                                 "acc_untrained": untrained}}}}


def test_summary_names_accuracy_controls_paths_and_the_eval_command(tmp_path: Path):
    metrics = metrics_with([9, 8, 9, 10], [5, 4, 6, 5], [3, 4, 3, 2])
    lines = summary_lines(metrics, tmp_path / "run", "python -m snnexp.eval ckpt_path=X")
    text = "\n".join(lines)
    assert lines[0] == "== protonet on omniglot: 5-way 1-shot, 4 test episodes =="
    assert "test accuracy      90.0 ± 1.0 %" in text
    gains = [100 * (a - b) / 10 for a, b in zip([9, 8, 9, 10], [5, 4, 6, 5], strict=True)]
    half = stats.t.ppf(0.975, 3) * stats.tstd(gains) / 2
    assert f"pixel control      50.0 ± 2.0 %   model - control: +40.0 ± {half:.1f} points" in text
    assert "untrained control  30.0 ± 3.0 %" in text
    assert "train 300 episodes in 1 min 35 s | test 12 s" in text
    assert f"metrics            {tmp_path / 'run' / 'metrics.json'}" in text
    assert lines[-1] == "evaluate again     python -m snnexp.eval ckpt_path=X"


def test_a_model_below_a_control_is_said_so():
    assert "BELOW" in difference([0.5, 0.6, 0.5], [0.9, 0.9, 0.8])
    assert "no difference shown" in difference([0.5, 0.6, 0.5], [0.6, 0.5, 0.5])
    assert "BELOW" not in difference([0.9, 0.9, 0.8], [0.5, 0.6, 0.5])


@pytest.mark.parametrize("seconds, text", [(9.54, "9.5 s"), (42.4, "42 s"), (95, "1 min 35 s"),
                                           (3720, "1 h 2 min")])
def test_durations_read_as_a_person_writes_them(seconds, text):
    assert duration(seconds) == text


def test_without_a_terminal_progress_logs_count_rate_and_time_left(caplog):
    with (caplog.at_level(logging.INFO, logger="snnexp.progress"),
          Progress(10, "test", bar=False, interval=0.0) as bar):
        for _ in range(10):
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 9  # every step but the last, at interval 0
    assert lines[3].startswith("test: 4/10 episodes (40%), ")
    assert lines[3].endswith(" left") and "episodes/s" in lines[3]


def test_summary_gives_both_energy_figures_labelled(tmp_path: Path):
    metrics = metrics_with([9], [5], [3])
    metrics["spikes"] = {"energy/snn_pj": 1.5e6, "energy/ann_pj": 6.0e6,
                         "energy/snn_pj_weight_fetch": 4.25e6,
                         "energy/ann_pj_weight_fetch": 1.9e7}
    line = [ln for ln in summary_lines(metrics, tmp_path, None) if ln.startswith("energy")]
    assert line == ["energy / sample    SNN 1.50 vs ANN twin 6.00 uJ arithmetic only | "
                    "with a weight fetch per event 4.25 vs 19.00 uJ"]
