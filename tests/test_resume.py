"""Interrupts and resume (``snnexp.resume``): a signal saves ``last.pt`` and ``metrics.json``;
the resumed run ends as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers.configs import REPO
from helpers.runs import RUN, patch_train_step, read_metrics

from snnexp.checkpoint import load_checkpoint, save_checkpoint
from snnexp.errors import UserError
from snnexp.train import train


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
