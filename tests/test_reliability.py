"""Issue 6, reliability: NaN guard, interrupts and resume, determinism, atomic writes, safe loads,
separate run dirs for parallel jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO, TINY

from snnexp import checkpoint
from snnexp.checkpoint import load_checkpoint, save_checkpoint, write_json
from snnexp.config import unique_dir
from snnexp.errors import UserError
from snnexp.models.protonet import ProtoNetLearner
from snnexp.train import train

RUN = [*TINY, "model.num_steps=4", "train_episodes=6", "val_every=2", "test_episodes=5"]
TIMING = ("wall_s", "episodes_per_s")


def without_timing(obj):
    """``metrics.json`` minus the timing fields, which differ between identical runs."""
    if isinstance(obj, dict):
        return {k: without_timing(v) for k, v in obj.items() if not k.endswith(TIMING)}
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def patch_train_step(monkeypatch, at_episode: int, action) -> None:
    """Run ``action(stats)`` inside the ``at_episode``-th ``meta_train_step`` call."""
    original, calls = ProtoNetLearner.meta_train_step, [0]

    def step(self, episode):
        stats = original(self, episode)
        calls[0] += 1
        return action(stats) if calls[0] == at_episode else stats

    monkeypatch.setattr(ProtoNetLearner, "meta_train_step", step)


# ---- NaN / Inf --------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_loss_stops_naming_the_episode_and_keeps_the_last_checkpoint(
        compose_cfg, tmp_path, monkeypatch, bad):
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.pt"
    seen = {}

    def poison(stats):
        seen["last_bytes"] = last.read_bytes()  # written after episode 2's validation
        return {**stats, "loss": bad}

    patch_train_step(monkeypatch, 3, poison)
    with pytest.raises(UserError, match=r"train/loss .* at episode 3") as err:
        train(compose_cfg(*RUN, output_dir=run_dir))
    assert "\n" not in str(err.value) and str(last) in str(err.value)
    assert last.read_bytes() == seen["last_bytes"], "the last good checkpoint changed"
    assert load_checkpoint(last)["loop"]["done"] == 2
    assert not list(last.parent.glob("*.tmp"))


def test_huge_learning_rate_ends_in_one_clear_error_or_finite_metrics(compose_cfg):
    try:
        metrics, _ = train(compose_cfg(*RUN, "optimizer=sgd", "optimizer.lr=1e30"))
    except UserError as err:
        assert "episode" in str(err) and "optimizer.lr" in str(err)
    else:  # a diverged model may still give finite (chance) accuracy: then no NaN may leak
        assert all(v == v for v in (metrics["test"]["acc"], metrics["train"]["loss"]))


# ---- interrupts and resume ---------------------------------------------------------------
@pytest.mark.parametrize("signum, code, schedule", [(signal.SIGINT, 130, ()),
                                                    (signal.SIGTERM, 143, ("scheduler=cosine",))])
def test_a_signal_saves_last_and_metrics_then_resume_matches_an_uninterrupted_run(
        compose_cfg, tmp_path, monkeypatch, signum, code, schedule):
    run = (*RUN, *schedule)  # a learning-rate schedule resumes where it stopped
    reference, _ = train(compose_cfg(*run, output_dir=tmp_path / "reference"))

    def interrupt(stats):
        os.kill(os.getpid(), signum)  # as Ctrl-C (or a scheduler's SIGTERM) during episode 3
        return stats

    run_dir = tmp_path / "interrupted"
    with monkeypatch.context() as patch:
        patch_train_step(patch, 3, interrupt)
        with pytest.raises(SystemExit) as stop:
            train(compose_cfg(*run, output_dir=run_dir))
    assert stop.value.code == code
    assert read_metrics(run_dir)["status"] == "interrupted"
    assert read_metrics(run_dir)["train"]["episodes"] == 3
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["loop"]["done"] == 3

    resumed, _ = train(compose_cfg(*run, f"resume={run_dir}", output_dir=tmp_path / "resumed"))
    assert resumed["status"] == "completed" and resumed["train"]["episodes"] == 6
    # the new run dir holds the interrupted run's best weights, which the test phase uses
    assert (tmp_path / "resumed" / "checkpoints" / "best.pt").is_file()
    assert resumed["test"]["acc"] == reference["test"]["acc"]
    assert resumed["val"]["history"] == reference["val"]["history"]
    assert resumed["train"]["lr"] == reference["train"]["lr"]


@pytest.mark.slow
def test_sigint_to_a_cli_run_exits_130_and_the_cli_resumes_it(compose_cfg, tmp_path):
    run_dir = tmp_path / "interrupted"
    # a constant lr: the reference trains for train_episodes=target from the start, while a
    # cosine schedule would have decayed over the interrupted run's 100000 episodes
    args = [*RUN, "train_episodes=100000", "val_every=3", "scheduler=constant"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "snnexp.train", *args,
                             f"hydra.run.dir={run_dir}"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoints" / "last.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint written"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, output[-2000:]
    assert "Traceback" not in output
    interrupted = read_metrics(run_dir)
    done = interrupted["train"]["episodes"]
    assert interrupted["status"] == "interrupted" and 3 <= done < 100000
    target = done + 2
    resumed = subprocess.run([sys.executable, "-m", "snnexp.train", f"resume={run_dir}",
                              f"train_episodes={target}", f"hydra.run.dir={tmp_path / 'res'}"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    reference, _ = train(compose_cfg(*args, f"train_episodes={target}",
                                     output_dir=tmp_path / "reference"))
    assert read_metrics(tmp_path / "res")["test"]["acc"] == reference["test"]["acc"]


def test_resume_accepts_a_run_dir_or_its_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", {"loop": {"done": 4}})
    assert load_checkpoint(tmp_path / "run")["loop"]["done"] == 4
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["loop"]["done"] == 4
    with pytest.raises(UserError, match=r"^resume=.*no such file"):
        load_checkpoint(tmp_path / "elsewhere", key="resume")


# ---- determinism -------------------------------------------------------------------------
def test_same_seed_gives_identical_metrics_and_another_seed_differs(compose_cfg, tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train(compose_cfg(*RUN, f"seed={seed}", output_dir=tmp_path / name))
        runs[name] = read_metrics(tmp_path / name)
    assert runs["a"]["train"]["wall_s"] > 0
    assert without_timing(runs["a"]) == without_timing(runs["b"])
    assert without_timing(runs["a"]) != without_timing(runs["c"])
    assert runs["a"]["test"] != runs["c"]["test"]


# ---- atomic writes and safe loads ---------------------------------------------------------
def test_a_crash_mid_write_leaves_the_previous_json_whole(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_json(path, {"test": {"acc": 0.5}})

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_json(path, {"test": {"acc": 0.9}, "big": list(range(10000))})
    assert json.loads(path.read_text()) == {"test": {"acc": 0.5}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temp file left


def test_a_crash_mid_checkpoint_write_leaves_the_previous_checkpoint_loadable(tmp_path,
                                                                              monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, {"learner": {"w": torch.ones(3)}, "loop": {"done": 1}})
    real_save = torch.save

    def half_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # some bytes reach the disk, then the crash
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"learner": {"w": torch.zeros(3)}, "loop": {"done": 2}})
    monkeypatch.setattr(checkpoint.torch, "save", real_save)
    state = load_checkpoint(path)
    assert state["loop"]["done"] == 1 and torch.equal(state["learner"]["w"], torch.ones(3))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


EXECUTED: list[str] = []


def _side_effect() -> dict:
    EXECUTED.append("code ran")
    return {}


class Payload:
    """Unpickling this runs ``_side_effect``: what a malicious checkpoint would do."""

    def __reduce__(self):
        return (_side_effect, ())


def test_checkpoints_load_with_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "learner": Payload()}, path)
    with pytest.raises(UserError, match="cannot be read"):
        load_checkpoint(path)
    assert EXECUTED == [], "unpickling ran code"
    calls = []
    real_load = torch.load
    monkeypatch.setattr(checkpoint.torch, "load",
                        lambda *a, **k: calls.append(k) or real_load(*a, **k))
    save_checkpoint(tmp_path / "ok.pt", {"learner": {"w": torch.ones(1)}})
    load_checkpoint(tmp_path / "ok.pt")
    assert calls and all(k.get("weights_only") is True for k in calls)


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"garbage" * 10, "cannot be read")])
def test_empty_or_corrupt_checkpoints_are_user_errors(tmp_path, content, match):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(UserError, match=match):
        load_checkpoint(tmp_path / "bad.pt", key="resume")


def test_a_foreign_torch_file_is_not_taken_for_a_checkpoint(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "weights.pt")
    with pytest.raises(UserError, match="not an snnexp checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")


# ---- parallel jobs -----------------------------------------------------------------------
def test_parallel_jobs_started_in_the_same_second_get_their_own_run_dirs(tmp_path):
    base = str(tmp_path / "2026-01-01" / "12-00-00")
    made: list[str] = []
    threads = [threading.Thread(target=lambda: made.append(unique_dir(base))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8 and all(Path(p).is_dir() for p in made)
    assert base in made
