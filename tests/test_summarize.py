"""Statistics and plots of ``scripts/summarize.py``, and the per-episode record they rest on.

Intervals are checked against ``scipy.stats`` (Student's t), sweeps are fake run folders
(``.hydra/overrides.yaml`` + ``metrics.json``) written here.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers.configs import REPO
from helpers.scripts import load_script
from scipy import stats

from snnexp.checkpoint import json_text
from snnexp.data.episodes import EpisodeSampler, TransformedSampler
from snnexp.evaluation import flat_metrics
from snnexp.metrics import episodes_fingerprint, mean_ci95, per_episode_correct
from snnexp.noise import GaussianNoise

ROOT = REPO
QUERIES, EPISODES = 10, 20


def load_summarize():
    return load_script("summarize")


# ---- intervals -----------------------------------------------------------------------------
@pytest.mark.parametrize("values", [[0.61, 0.74], [0.52, 0.58, 0.71],
                                    [0.80, 0.82, 0.79, 0.85, 0.77]])
def test_mean_ci95_is_scipys_student_t_interval(values: list[float]) -> None:
    mean, half = mean_ci95(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                                 scale=stats.sem(values))
    assert mean == pytest.approx((low + high) / 2)
    assert (mean - half, mean + half) == pytest.approx((low, high), rel=1e-12)


def test_mean_ci95_of_one_value_has_no_interval_and_of_none_no_mean() -> None:
    mean, half = mean_ci95([0.7])
    assert mean == 0.7 and math.isnan(half)
    assert all(math.isnan(v) for v in mean_ci95([]))


# ---- the per-episode record of a test ------------------------------------------------------
def sampler(seed: int, shot: int = 1) -> EpisodeSampler:
    images = torch.arange(6 * 4 * 16, dtype=torch.float32).reshape(24, 1, 4, 4) / 384
    return EpisodeSampler(images, torch.arange(6).repeat_interleave(4), way=3, shot=shot,
                          query=2, seed=seed, name="test")


def test_episodes_fingerprint_names_the_episodes_a_sampler_will_draw() -> None:
    assert episodes_fingerprint(sampler(0)) == episodes_fingerprint(sampler(0))
    assert episodes_fingerprint(sampler(0)) != episodes_fingerprint(sampler(1))
    assert episodes_fingerprint(sampler(0)) != episodes_fingerprint(sampler(0, shot=2))
    # noise is the treatment: a noisy sampler draws the same clean episodes
    noisy = TransformedSampler(sampler(0), GaussianNoise(std=0.3, seed=0), "noise")
    assert episodes_fingerprint(noisy) == episodes_fingerprint(sampler(0))
    drawn = sampler(0)
    drawn.sample()
    assert episodes_fingerprint(drawn) != episodes_fingerprint(sampler(0))
    assert episodes_fingerprint(object()) is None


def test_per_episode_correct_counts_are_exact() -> None:
    counts = [0, 1, 37, 74, 75]
    accs = [float(torch.tensor([1.0] * k + [0.0] * (75 - k)).mean()) for k in counts]
    assert per_episode_correct({"acc": accs}, 75) == {"acc": counts}


def test_metrics_json_puts_lists_of_numbers_on_one_line_and_reads_back() -> None:
    data = {"test": {"acc": 0.5, "per_episode": {"queries": 75, "correct": {"acc": [3, 4, 5]}}},
            "val": {"history": [[0, 0.5, float("nan")], [10, 0.6, 0.1]]}}
    text = json_text(data)
    assert '"acc": [3, 4, 5]' in text and "[10, 0.6, 0.1]" in text
    assert json.dumps(json.loads(text), sort_keys=True) == json.dumps(data, sort_keys=True)


def test_flat_metrics_leaves_out_the_per_episode_record() -> None:
    metrics = {"test": {"acc": 0.5, "ci95": 0.1, "episodes": 2,
                        "per_episode": {"queries": 4, "episodes_sha1": "ab",
                                        "correct": {"acc": [2, 2]}}}}
    assert flat_metrics(metrics) == {"test/acc": 0.5, "test/acc_ci95": 0.1,
                                     "test/episodes": 2.0}


# ---- fake sweeps ---------------------------------------------------------------------------
def counts(seed: int, shift: float, name: str) -> list[int]:
    """Correct queries of ``EPISODES`` episodes, seeded by the run and the predictor."""
    rng = np.random.default_rng([seed, int(shift * 100), len(name)])
    p = min(max(0.85 - shift + 0.05 * seed - 0.2 * (name != "acc"), 0.05), 0.95)
    return rng.binomial(QUERIES, p, size=EPISODES).tolist()


def write_run(job: Path, overrides: dict, seed: int, shift: float,
              fingerprint: str | None = None) -> dict:
    """A run dir: overrides, ``metrics.json`` with per-episode counts and a val history."""
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"{k}={v}" for k, v in overrides.items()]))
    correct = {name: counts(seed, shift, name) for name in ("acc", "acc_pixel",
                                                            "acc_untrained")}
    test: dict = {"episodes": EPISODES, "per_episode": {
        "queries": QUERIES, "episodes_sha1": fingerprint or f"seed{seed}", "correct": correct}}
    for name, values in correct.items():
        test[name], test[name.replace("acc", "ci95")] = mean_ci95(np.array(values) / QUERIES)
    metrics = {"model": "protonet", "dataset": "digits", "way": 5, "shot": 1, "query": 2,
               "seed": seed, "status": "completed", "test": test,
               "val": {"acc_best": test["acc"],
                       "history": [[0, 0.2, 0.0], [10, test["acc"] - 0.1, 0.01],
                                   [20, test["acc"], 0.01]]}}
    (job / "metrics.json").write_text(json_text(metrics))
    return metrics


NOISE = ("0", "0.2", "0.4")


@pytest.fixture
def noise_sweep(tmp_path: Path) -> tuple[Path, dict]:
    """``noise.std=0,0.2,0.4 x seed=0,1`` with a constant ``dataset=digits``."""
    runs = {}
    for i, (std, seed) in enumerate((s, k) for s in NOISE for k in (0, 1)):
        runs[std, seed] = write_run(tmp_path / f"{i}_noise.std={std},seed={seed}",
                                    {"dataset": "digits", "noise.std": std, "seed": seed},
                                    seed, float(std))
    return tmp_path, runs


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_a_noise_sweep_keeps_its_levels_apart_with_the_controls_and_writes_plots(
        noise_sweep: tuple[Path, dict], capsys: pytest.CaptureFixture) -> None:
    root, runs = noise_sweep
    load_summarize().main([str(root)])
    printed = capsys.readouterr().out
    groups = read_csv(root / "summary" / "groups.csv")
    assert [g["noise.std"] for g in groups] == list(NOISE)  # three levels, not one pooled
    for g in groups:
        members = [runs[g["noise.std"], seed]["test"] for seed in (0, 1)]
        assert g["n"] == "2"
        for column in ("acc", "acc_pixel", "acc_untrained"):
            mean, half = mean_ci95([m[column] for m in members])
            assert float(g[f"test_{column}"]) == pytest.approx(mean)
            assert float(g[f"test_{column}_ci95"]) == pytest.approx(half)
    assert "pixel control" in printed and "untrained control" in printed
    assert "Student-t" in printed
    for name in ("acc_vs_noise.std.png", "learning_curves.png"):
        assert (root / "summary" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_key_left_out_of_group_by_is_named_as_pooled_and_constants_in_the_title(
        noise_sweep: tuple[Path, dict]) -> None:
    root, _ = noise_sweep
    summarize = load_summarize()
    rows, override_keys, _, _ = summarize.collect(root)
    text = summarize.title(rows, override_keys, [])
    assert "pooled over noise.std" in text and "dataset=digits" in text
    assert "seed=0,1" in text
    assert "pooled" not in summarize.title(rows, override_keys, ["noise.std"])


def test_baseline_pairs_runs_by_seed_with_a_t_interval_across_pairs(
        noise_sweep: tuple[Path, dict], capsys: pytest.CaptureFixture) -> None:
    root, runs = noise_sweep
    load_summarize().main([str(root), "--baseline", "noise.std=0.0"])
    printed = capsys.readouterr().out
    groups = {g["noise.std"]: g for g in read_csv(root / "summary" / "groups.csv")}
    assert groups["0"]["pairing"] == "baseline"
    for std in ("0.2", "0.4"):
        d = [runs[std, s]["test"]["acc"] - runs["0", s]["test"]["acc"] for s in (0, 1)]
        low, high = stats.t.interval(0.95, 1, loc=np.mean(d), scale=stats.sem(d))
        assert float(groups[std]["diff"]) == pytest.approx(np.mean(d))
        assert float(groups[std]["diff_ci95"]) == pytest.approx((high - low) / 2)
        assert groups[std]["pairing"] == \
            "by seed, 2 pairs (identical test episodes within each pair)"
    assert "minus the baseline noise.std=0.0" in printed and "by seed, 2 pairs" in printed
    assert "minus the baseline" in (root / "summary" / "summary.md").read_text()


def test_baseline_of_one_pair_on_identical_episodes_pairs_by_episode(tmp_path: Path) -> None:
    runs = {std: write_run(tmp_path / f"{i}_noise.std={std}", {"noise.std": std}, 0,
                           float(std), fingerprint="same")
            for i, std in enumerate(NOISE)}
    write_run(tmp_path / "9_noise.std=0.9", {"noise.std": "0.9"}, 0, 0.9, fingerprint="other")
    result = load_summarize().summarize(tmp_path, baseline=["noise.std=0"])
    diffs = {d["noise.std"]: d for d in result["differences"]}
    base = np.array(runs["0"]["test"]["per_episode"]["correct"]["acc"]) / QUERIES
    for std in ("0.2", "0.4"):
        acc = np.array(runs[std]["test"]["per_episode"]["correct"]["acc"]) / QUERIES
        ci = stats.ttest_rel(acc, base).confidence_interval(0.95)
        assert diffs[std]["diff"] == pytest.approx(np.mean(acc - base))
        assert diffs[std]["diff_ci95"] == pytest.approx((ci.high - ci.low) / 2)
        assert diffs[std]["pairing"].startswith(f"by episode, {EPISODES} identical")
    assert math.isnan(diffs["0.9"]["diff_ci95"]) and "no interval" in diffs["0.9"]["pairing"]
    assert "by episode" in result["table"]


@pytest.mark.parametrize(("given", "message"), [
    ("noise.sd=0", "KEY one of the group keys (noise.std)"),
    ("noise.std=0.3", "no run has noise.std=0.3 (values: 0, 0.2, 0.4)"),
    ("noise.std", "give KEY=VALUE")])
def test_a_bad_baseline_is_refused_naming_what_is_allowed(
        noise_sweep: tuple[Path, dict], given: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_summarize().summarize(noise_sweep[0], baseline=[given])


def test_x_axis_defaults_to_shot_and_follows_x(tmp_path: Path) -> None:
    for i, (shot, std, seed) in enumerate((k, s, d) for k in (1, 5) for s in NOISE[:2]
                                          for d in (0, 1)):
        write_run(tmp_path / f"{i}", {"shot": shot, "noise.std": std, "seed": seed}, seed,
                  float(std) + 0.1 * shot)
    summarize = load_summarize()
    assert [p.name for p in summarize.summarize(tmp_path)["plots"]] == \
        ["acc_vs_shot.png", "learning_curves.png"]
    result = summarize.summarize(tmp_path, x="noise.std", out=tmp_path / "by_noise")
    assert result["plots"][0].name == "acc_vs_noise.std.png"
    assert len(result["groups"]) == 4  # shot x noise.std, seeds averaged
    with pytest.raises(SystemExit, match="--x noise: not a key"):
        summarize.summarize(tmp_path, x="noise")


def test_integer_axes_get_integer_tick_labels() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    load_summarize()._set_x_ticks(ax, ["1", "5", "10"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "5", "10"]
    assert list(ax.get_xticks()) == [1.0, 5.0, 10.0]
    plt.close(fig)


def test_the_accuracy_column_names_the_classes_the_episodes_came_from():
    label = load_script("summarize").accuracy_label
    assert label([{"split": None}, {}]) == "test acc"  # training runs, plain evals
    assert label([{"split": "val"}, {"split": "val"}]) == "val acc"  # eval split=val
    assert label([{"split": "val"}, {"split": "test"}]) == "acc"
