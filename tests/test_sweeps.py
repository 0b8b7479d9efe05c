"""Sweeps: launchers, Optuna searches, job directory names, threads per job, summaries.

The ``slow`` tests run real multiruns in subprocesses (``python -m snnexp.train -m ...``) on
tiny settings; the others check the pieces in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers.configs import REPO, TINY_DIGITS
from helpers.scripts import load_script
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import snnexp
from snnexp.metrics import mean_ci95

ROOT = REPO
CONF = str(Path(snnexp.__file__).resolve().parent / "conf")
TINY = TINY_DIGITS
MODELS = ["protonet", "rstdp"]  # every learner a sweep must handle


def load_summarize():
    return load_script("summarize")


def multirun(sweep_dir: Path, *overrides: str, tiny: list[str] = TINY,
             timeout: int = 600) -> list[Path]:
    """Run ``python -m snnexp.train -m`` into ``sweep_dir``; return the job dirs in job order."""
    proc = subprocess.run([sys.executable, "-m", "snnexp.train", "-m", *tiny, *overrides,
                           f"hydra.sweep.dir={sweep_dir}"], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name[0].isdigit()]
    return sorted(jobs, key=lambda p: int(p.name.split("_", 1)[0]))


def read_job(job: Path) -> tuple[dict, list[str]]:
    return (json.loads((job / "metrics.json").read_text()),
            yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))


# ---- in-process ----------------------------------------------------------------------------
def write_fake_run(job: Path, overrides: dict, acc: float, history: list) -> None:
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([f"{k}={v}" for k, v in overrides.items()]))
    metrics = {"model": overrides["model"], "shot": int(overrides["shot"]),
               "seed": int(overrides["seed"]), "way": 5, "status": "completed",
               "test": {"acc": acc, "ci95": 0.01, "acc_pixel": 0.5, "acc_untrained": 0.3},
               "val": {"acc_best": acc, "history": history}}
    (job / "metrics.json").write_text(json.dumps(metrics))


def test_summarize_groups_seeds_with_mean_and_ci95_and_writes_plots(tmp_path: Path,
                                                                     capsys) -> None:
    summarize = load_summarize()
    accs = {}
    for i, (model, shot, seed) in enumerate((m, k, s) for m in MODELS for k in (1, 5)
                                            for s in (0, 1)):
        acc = 0.3 + 0.1 * shot / 5 + 0.05 * seed + (0.2 if model == "protonet" else 0)
        accs.setdefault((model, str(shot)), []).append(acc)
        write_fake_run(tmp_path / f"{i}_model={model},seed={seed},shot={shot}",
                       {"model": model, "shot": shot, "seed": seed}, acc,
                       [[0, 0.2, 0.0], [3, acc, 0.01]])
    summarize.main([str(tmp_path), "--group-by", "model,shot"])
    printed = capsys.readouterr().out
    table_rows = [ln for ln in printed.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(table_rows) == 1 + 4  # header + one row per (model, shot)
    out = tmp_path / "summary"
    groups = list(__import__("csv").DictReader((out / "groups.csv").open()))
    assert len(groups) == 4
    for g in groups:
        mean, ci95 = mean_ci95(accs[(g["model"], g["shot"])])
        assert float(g["test_acc"]) == pytest.approx(mean)
        assert float(g["test_acc_ci95"]) == pytest.approx(ci95) and ci95 > 0
        assert g["n"] == "2"
    assert len((out / "runs.csv").read_text().splitlines()) == 1 + 8
    assert (out / "acc_vs_shot.png").stat().st_size > 0
    assert (out / "learning_curves.png").stat().st_size > 0
    # default grouping: the overrides that vary, except seed
    result = summarize.summarize(tmp_path, out=tmp_path / "s2")
    assert len(result["groups"]) == 4 and set(result["groups"][0]) >= {"model", "shot"}


def test_summarize_refuses_an_unknown_group_key(tmp_path: Path) -> None:
    summarize = load_summarize()
    write_fake_run(tmp_path / "0_x", {"model": "protonet", "shot": 1, "seed": 0}, 0.5, [])
    with pytest.raises(SystemExit, match="--group-by modle"):
        summarize.summarize(tmp_path, ["modle"])


@pytest.mark.parametrize(("launcher", "expected"), [
    ("parallel", lambda cores: max(1, cores // 2)),      # joblib, n_jobs=2
    ("joblib", lambda cores: 1),                          # the plugin: n_jobs=-1 (every core)
    ("submitit_jobs", lambda cores: 1),                   # cpus_per_task=1
    ("slurm", lambda cores: 4),                           # cpus_per_task=4
    ("basic", lambda cores: None),                        # sequential: torch's default
])
def test_parallel_sweep_jobs_share_the_cores(launcher: str, expected) -> None:
    from hydra.types import RunMode

    from snnexp.config import register_configs
    from snnexp.tuning import available_cores, launcher_threads

    register_configs()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=[f"hydra/launcher={launcher}"],
                      return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.runtime.output_dir = "/tmp"
        cfg.hydra.job.num = 0
    assert launcher_threads() is None  # outside a Hydra app
    HydraConfig.instance().set_config(cfg)
    try:
        assert launcher_threads() == expected(available_cores())
    finally:
        HydraConfig.instance().cfg = None


def test_slurm_preset_documents_partition_time_cpus_gpus() -> None:
    text = (Path(CONF) / "hydra" / "launcher" / "slurm.yaml").read_text()
    for key in ("partition:", "timeout_min:", "cpus_per_task:", "gpus_per_node:"):
        assert key in text and "#" in text.split(key, 1)[1].splitlines()[0]


def test_job_dir_names_are_readable() -> None:
    from snnexp.config import sanitize_dirname

    assert sanitize_dirname("model=rstdp,seed=0,shot=1") == "model=rstdp,seed=0,shot=1"
    assert sanitize_dirname("optimizer.lr=0.0022881136684755237,model.num_steps=50") == \
        "optimizer.lr=0.002288,model.num_steps=50"
    assert sanitize_dirname("dataset.root=/a b/c") == "dataset.root=_a_b_c"


# ---- subprocess sweeps ---------------------------------------------------------------------
@pytest.mark.slow
def test_grid_sweep_of_two_models_gives_one_dir_per_job_and_a_4_row_summary(
        tmp_path: Path) -> None:
    jobs = multirun(tmp_path, f"model={','.join(MODELS)}", "shot=1,2", "seed=0,1", "threads=1")
    assert len(jobs) == 8
    for i, job in enumerate(jobs):
        metrics, overrides = read_job(job)
        assert job.name.startswith(f"{i}_") and "threads" not in job.name
        assert f"model={metrics['model']}" in job.name and f"shot={metrics['shot']}" in job.name
        assert metrics["status"] == "completed" and f"seed={metrics['seed']}" in overrides
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "summarize.py"),
                           str(tmp_path), "--group-by", "model,shot"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert len(rows) == 1 + 4
    assert list((tmp_path / "summary").glob("*.png"))


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_parallel_launchers_run_every_job(tmp_path: Path, launcher: str) -> None:
    extra = ["hydra.launcher.n_jobs=2"] if launcher == "joblib" else []
    jobs = multirun(tmp_path, f"hydra/launcher={launcher}", *extra,
                    f"model={','.join(MODELS)}")
    from snnexp.tuning import available_cores

    assert [read_job(j)[0]["model"] for j in jobs] == MODELS
    threads = max(1, available_cores() // 2) if launcher == "joblib" else 1  # cpus_per_task
    for job in jobs:
        log = (job / "train.log").read_text()
        assert f"torch threads: {threads} (the sweep's share" in log
        assert "test accuracy" in log
    if launcher == "submitit_local":
        assert (tmp_path / ".submitit").is_dir()
    assert len(load_summarize().summarize(tmp_path)["rows"]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_optuna_search_reports_the_best_trial(tmp_path: Path, model: str) -> None:
    searched = [o for o in TINY if not o.startswith("model.num_steps")]  # a searched key
    jobs = multirun(tmp_path, f"hparams_search={model}_optuna", "hydra.sweeper.n_trials=2",
                    "threads=1", tiny=searched)
    assert len(jobs) == 2
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    values = [read_job(j)[0]["val"]["acc_best"] for j in jobs]
    assert best["best_value"] == pytest.approx(max(values))
    assert set(best["best_params"]) == set(
        yaml.safe_load((ROOT / "conf" / "hparams_search" / f"{model}_optuna.yaml").read_text())
        ["hydra"]["sweeper"]["params"])
    assert all(read_job(j)[0]["model"] == model for j in jobs)
