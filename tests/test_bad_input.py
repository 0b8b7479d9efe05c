"""Issue 6, bad input: each row -> exit code != 0, no traceback, a message naming the key, no
training started, and the run directories already in ``outputs/`` untouched.

Every row runs the real command-line entry point, ``snnexp.train.cli`` (its own checks, then the
``@hydra.main`` function), run as ``python -m snnexp.train`` does (``runpy``, with the row as
``sys.argv``) in this process: the same Hydra composition, run dir, logging and exit codes as a
shell, without a 3-second torch import per row. ``test_bad_input_from_a_shell`` runs a few rows
as real subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.cli import run_cli, run_main
from helpers.configs import CONF_DIR, REPO, TINY
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from snnexp.cli import override_for_shell
from snnexp.config import register_configs
from snnexp.train import train

# id, arguments ({prev}: a finished run in outputs/, {tmp}: files made for the row),
# strings the output must contain (the key, and the value where it is printed)
ROWS = [
    ("way=0", ["way=0"], ["way=0"]),
    ("way=-1", ["way=-1"], ["way=-1"]),
    ("way_above_test_classes", ["dataset=digits", "way=6"], ["way=6"]),
    ("shot=0", ["shot=0"], ["shot=0"]),
    ("query=0", ["query=0"], ["query=0"]),
    ("shot+query_too_large", ["shot=30", "query=15"], ["train_shot+train_query", "30"]),
    ("unknown_model", ["model=nope"], ["model=nope: must be one of hybrid, protonet, rstdp"]),
    ("unknown_dataset", ["dataset=nope"],
     ["dataset=nope", "digits, event_folder, fashion_mnist, folder, kmnist, mnist, nmnist, "
      "omniglot, omniglot_strokes, pokerdvs"]),
    ("unknown_optimizer", ["optimizer=nope"], ["optimizer=nope", "adam, adamw, sgd"]),
    ("unknown_encoder", ["encoder=nope"], ["encoder=nope", "direct, frames, latency, rate"]),
    ("unknown_option_in_a_sweep", ["-m", "encoder=direct,nope"],
     ["encoder=nope", "direct, frames, latency, rate"]),
    ("unknown_scheduler", ["scheduler=nope"], ["scheduler=nope", "constant, cosine, step"]),
    ("group=null", ["logger=null"], ["logger=null", "none, tensorboard", "~logger"]),
    ("scheduler=null", ["scheduler=null"], ["scheduler=null", "constant, cosine, step"]),
    ("unknown_key", ["wya=5"], ["wya"]),
    ("test_episodes=0", ["test_episodes=0"], ["test_episodes=0"]),
    ("train_episodes=-5", ["train_episodes=-5"], ["train_episodes=-5"]),
    ("num_steps=0", ["model.num_steps=0"], ["model.num_steps=0"]),
    ("beta=1.5", ["model.beta=1.5"], ["model.beta=1.5"]),
    ("unknown_distance", ["model.distance=cosine"],
     ["model.distance=cosine", "squared, euclidean"]),
    ("negative_lr", ["optimizer.lr=-0.001"], ["optimizer.lr=-0.001"]),
    ("non_numeric_seed", ["seed=abc"], ["seed", "abc"]),
    ("mnist_missing_data_dir", ["dataset=mnist", "paths.data_dir={tmp}/nowhere"],
     ["paths.data_dir", "{tmp}/nowhere/MNIST/raw"]),
    ("mnist_empty_data_dir", ["dataset=mnist", "paths.data_dir={tmp}/empty"],
     ["paths.data_dir", "{tmp}/empty/MNIST/raw"]),
    ("truncated_idx", ["dataset=mnist", "paths.data_dir={tmp}/truncated"],
     ["truncated", "{tmp}/truncated/MNIST/raw/t10k-images-idx3-ubyte"]),
    ("device=cuda_without_gpu", ["device=cuda"], ["device=cuda"]),
    ("resume_missing", ["resume={tmp}/nothing.pt"], ["{tmp}/nothing.pt"]),
    ("resume_empty_checkpoint", ["resume={tmp}/empty.pt"], ["{tmp}/empty.pt", "empty"]),
    ("resume_corrupt_checkpoint", ["resume={tmp}/corrupt.pt"], ["{tmp}/corrupt.pt", "corrupt"]),
    ("resume_other_model_type", ["resume={prev}", "model=rstdp"], ["model", "rstdp"]),
    ("resume_incompatible_override", ["resume={prev}", "way=3"], ["way"]),
    ("resume_weights_do_not_fit_config", ["resume={tmp}/misfit.pt"], ["resume", "misfit.pt"]),
    ("init_from_missing", ["init_from={tmp}/nothing.pt"], ["init_from={tmp}/nothing.pt"]),
    ("init_from_weights_do_not_fit", ["init_from={prev}", "model.embedding_dim=32"],
     ["init_from={prev}", "do not fit"]),
    ("init_from_for_rstdp", ["model=rstdp", "init_from={prev}"], ["init_from={prev}", "protonet"]),
    ("train_augment_negative_shift", ["train_augment=shift", "train_augment.max_shift=-2"],
     ["train_augment.max_shift=-2: must be an integer >= 0"]),
    ("unknown_train_augment", ["train_augment=nope"], ["train_augment=nope", "shift"]),
    ("bf16_for_rstdp", ["model=rstdp", "dataset=digits", "precision=bf16"],
     ["precision=bf16", "fp32"]),
    ("unknown_precision", ["precision=fp16"], ["precision=fp16", "fp32, bf16"]),
    ("added_key_typo", ["+wya=5"], ["+wya=5: no such key", "did you mean way=5?"]),
    ("added_model_key_typo", ["+model.bta=0.9"],
     ["+model.bta=0.9: no such key", "did you mean model.beta=0.9?"]),
    ("added_key_far_from_any", ["+zzqx=1"], ["+zzqx=1: no such key", "--cfg job"]),
    ("train_test_classes_overlap", ["dataset=digits", "dataset.train_classes=[0,1,2,3,4]",
                                    "dataset.test_classes=[4,5,6,7,8]"],
     ["dataset.train_classes=[0, 1, 2, 3, 4]", "dataset.test_classes=[4, 5, 6, 7, 8]",
      "classes [4] are in both"]),
    ("val_test_classes_overlap", ["dataset=digits", "dataset.train_classes=[0,1,2,3]",
                                  "dataset.val_classes=[4,5]", "dataset.test_classes=[5,6,7,8,9]"],
     ["dataset.val_classes=[4, 5]", "dataset.test_classes=[5, 6, 7, 8, 9]",
      "classes [5] are in both"]),
    ("folder_without_root", ["dataset=folder"],
     ["dataset.root: required, give a folder with one subfolder of images per class"]),
    ("run_dir_holds_a_finished_run", ["hydra.run.dir={prev}"],
     ["hydra.run.dir={prev}: holds a finished run", "overwrite=true"]),
    ("sweep_dir_holds_a_finished_run", ["-m", "seed=0,1", "hydra.sweep.dir={prev}/.."],
     ["hydra.sweep.dir={prev}/..: holds a finished run", "prev/", "overwrite=true"]),
    ("debug_preset_into_a_finished_run", ["debug=default", "hydra.run.dir={prev}"],
     ["hydra.run.dir={prev}: holds a finished run"]),
    ("rstdp_unknown_hidden_mode", ["model=rstdp", "dataset=digits", "model.hidden.mode=magic"],
     ["model.hidden.mode=magic: must be one of stdp, random"]),
    ("rstdp_negative_tau_m", ["model=rstdp", "dataset=digits", "model.neuron.tau_m=-1"],
     ["model.neuron.tau_m=-1.0: must be a number > 0"]),
    ("rstdp_threshold_below_rest", ["model=rstdp", "dataset=digits", "model.neuron.v_th=-70"],
     ["model.neuron.v_th=-70.0: must be > model.neuron.v_rest=-65.0"]),
    ("rstdp_kernel_above_the_image", ["model=rstdp", "dataset=digits", "model.hidden.kernel=9"],
     ["model.hidden.kernel=9: must be <= the image side 8"]),
    ("renamed_key", ["model=rstdp", "model.epochs=30"],
     ["model.epochs=30: renamed to model.readout.epochs (model.readout.epochs=30)"]),
    ("renamed_key_in_a_sweep", ["-m", "model=rstdp", "model.v_th=-55,-52"],
     ["model.v_th=-55,-52: renamed to model.neuron.v_th"]),
    ("renamed_key_added", ["model=rstdp", "+model.filters=32"],
     ["model.filters=32: renamed to model.hidden.filters"]),
]
# `python -m snnexp.eval ckpt_path=...` (its own keys, so not the TINY training overrides)
EVAL_ROWS = [
    ("eval_ckpt_missing", ["ckpt_path={tmp}/nothing.pt"], ["{tmp}/nothing.pt"]),
    ("eval_noise=null", ["ckpt_path={tmp}/nothing.pt", "noise=null"],
     ["noise=null", "gaussian, salt_pepper"]),
    ("eval_unknown_noise", ["ckpt_path={tmp}/nothing.pt", "noise=nope"],
     ["noise=nope", "gaussian, salt_pepper"]),
    ("eval_ckpt_empty", ["ckpt_path={tmp}/empty.pt"], ["{tmp}/empty.pt", "empty"]),
    ("eval_ckpt_corrupt", ["ckpt_path={tmp}/corrupt.pt"], ["{tmp}/corrupt.pt", "corrupt"]),
    ("eval_ckpt_does_not_fit_its_config", ["ckpt_path={tmp}/misfit.pt"],
     ["ckpt_path", "misfit.pt"]),
    ("eval_without_ckpt_path", [], ["ckpt_path: required, give a run directory or a .pt file"]),
    ("eval_added_key_typo", ["ckpt_path={prev}", "+wya=3"], ["+wya=3", "did you mean way=3?"]),
    ("eval_into_a_finished_run", ["ckpt_path={prev}", "hydra.run.dir={prev}"],
     ["hydra.run.dir={prev}: holds a finished run"]),
]
ROWS.append(("folder_unreadable_image", ["dataset=folder", "dataset.root={tmp}/images",
                                         "dataset.cache_dir=null", "way=2", "shot=1",
                                         "query=1"],
             ["{tmp}/images/b/broken.png"]))


pytestmark = pytest.mark.filterwarnings(
    "ignore:'snnexp.train' found in sys.modules:RuntimeWarning")  # runpy re-runs the module

# rows Hydra rejects while composing (its own message, exit 1); every other row is a UserError:
# exit code 2 and exactly one ERROR log line
COMPOSE_ERRORS = {"unknown_key", "non_numeric_seed"}


def run_dir_name(row_id: str) -> str:
    return "new_" + "".join(c if c.isalnum() else "_" for c in row_id)  # no '=' in overrides


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    """A finished tiny run in ``outputs/prev`` and the bad files the rows point at."""
    tmp = tmp_path_factory.mktemp("bad_input")
    outputs, files = tmp / "outputs", tmp / "files"
    prev = outputs / "prev"
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, f"paths.output_dir={prev}",
                                          f"paths.log_dir={outputs}"])
    GlobalHydra.instance().clear()
    train(cfg)
    make_bad_files(files, prev / "checkpoints" / "last.pt")
    return {"outputs": outputs, "prev": prev, "files": files}


def row_args(workspace: dict, row_id: str) -> list[str]:
    args = next(args for rid, args, _ in ROWS + EVAL_ROWS if rid == row_id)
    common = ["test_episodes=3", "threads=1"] if row_id.startswith("eval_") else TINY
    return [*common, f"hydra.run.dir={workspace['outputs'] / run_dir_name(row_id)}",
            *(a.format(prev=workspace["prev"], tmp=workspace["files"]) for a in args)]


def check_row(workspace: dict, row_id: str, code: int, output: str, expected: list[str],
              before: dict[str, str]) -> None:
    assert code != 0, f"exit code 0:\n{output[-1500:]}"
    assert "Traceback" not in output, output[-3000:]
    for text in expected:
        assert text.format(tmp=workspace["files"], prev=workspace["prev"]) in output, \
            f"{text!r} not in:\n{output[-1500:]}"
    if row_id in COMPOSE_ERRORS:
        assert code == 1, output
    else:
        errors = [line for line in output.splitlines() if "ERROR" in line]
        assert code == 2 and len(errors) == 1, f"not one UserError line (exit {code}):\n{output}"
    new_run = workspace["outputs"] / run_dir_name(row_id)
    assert not (new_run / "checkpoints").exists(), "training started before the error"
    assert not (new_run / "metrics.json").exists()
    assert tree_digest(workspace["prev"]) == before, "an existing run dir was modified"


def make_bad_files(files: Path, good_ckpt: Path) -> None:
    files.mkdir()
    (files / "empty").mkdir()
    (files / "empty.pt").write_bytes(b"")
    (files / "corrupt.pt").write_bytes(good_ckpt.read_bytes()[:2000])
    state = torch.load(good_ckpt, weights_only=True)
    state["config"]["model"]["embedding_dim"] = 32  # the weights are for 64
    state["config"]["model"]["backbone"]["embedding_dim"] = 32  # stored resolved
    torch.save(state, files / "misfit.pt")
    raw = files / "truncated" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    header = bytes([0, 0, 8, 3]) + (100).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (raw / "t10k-images-idx3-ubyte").write_bytes(header + bytes(28 * 28 * 40))  # 40 of 100
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big")
                                                 + bytes(range(10)) * 10)
    from PIL import Image

    for label in ("a", "b"):
        (files / "images" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), color=40 * i).save(files / "images" / label / f"{i}.png")
    (files / "images" / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))


def row_params(rows: list) -> list:
    return list(_row_params(rows))


def _row_params(rows: list):
    for row_id, _, expected in rows:
        marks = [pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")] \
            if row_id.startswith("device=cuda") else []
        yield pytest.param(row_id, expected, id=row_id, marks=marks)


@pytest.mark.parametrize("row_id, expected", row_params(ROWS))
def test_bad_input_fails_cleanly_before_training(workspace, row_id, expected, capfd,
                                                 monkeypatch):
    before = tree_digest(workspace["prev"])
    code, output = run_main(row_args(workspace, row_id), capfd, monkeypatch)
    check_row(workspace, row_id, code, output, expected, before)


@pytest.mark.parametrize("row_id, expected", row_params(EVAL_ROWS))
def test_bad_checkpoint_for_eval_fails_cleanly(workspace, row_id, expected, capfd,
                                               monkeypatch):
    before = tree_digest(workspace["prev"])
    code, output = run_main(row_args(workspace, row_id), capfd, monkeypatch, module="eval")
    check_row(workspace, row_id, code, output, expected, before)


SHELL_ROWS = ["way=0", "unknown_model", "group=null"]


@pytest.mark.parametrize("row_id", SHELL_ROWS)
def test_bad_input_from_a_shell(workspace, row_id):
    before = tree_digest(workspace["prev"])
    result = run_cli(*row_args(workspace, row_id))
    expected = next(exp for rid, _, exp in ROWS if rid == row_id)
    check_row(workspace, row_id, result.returncode, result.stdout + result.stderr,
              expected, before)


def test_rows_cover_every_config_group_with_an_unknown_option():
    covered = {args[0].split("=")[0] for _, args, _ in ROWS if args[0].endswith("=nope")}
    assert covered == {"model", "dataset", "optimizer", "encoder", "scheduler", "train_augment"}
    assert all((CONF_DIR / group).is_dir() for group in covered)


# traps that work: each of these once ended in a Hydra grammar error or a traceback

def test_eval_of_a_sweep_job_dir_whose_name_holds_equals_and_commas(workspace, capfd,
                                                                    monkeypatch):
    job = workspace["files"] / "multirun" / "3_model=protonet,seed=1,shot=5"
    shutil.copytree(workspace["prev"], job)
    run_dir = workspace["outputs"] / "eval_of_a_sweep_job"
    code, output = run_main(["test_episodes=3", "threads=1", f"hydra.run.dir={run_dir}",
                             f"ckpt_path={job}"], capfd, monkeypatch, module="eval")
    assert code == 0, output[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert Path(metrics["ckpt_path"]).parent.parent == job
    assert metrics["test"]["episodes"] == 3


@pytest.mark.slow
def test_an_eval_command_built_by_override_for_shell_runs_when_pasted(workspace, tmp_path):
    job = tmp_path / "multirun" / "0_model=protonet,seed=1,note='a b'"
    shutil.copytree(workspace["prev"], job)
    run_dir = tmp_path / "eval run"
    command = " ".join([shlex.quote(sys.executable), "-m", "snnexp.eval",
                        override_for_shell("ckpt_path", str(job)), "test_episodes=3",
                        "threads=1", override_for_shell("hydra.run.dir", str(run_dir))])
    result = subprocess.run(["bash", "-c", command], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "HYDRA_FULL_ERROR": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert Path(metrics["ckpt_path"]).parent.parent == job


def test_overwrite_true_writes_into_a_finished_run_dir(workspace, capfd, monkeypatch):
    old = workspace["files"] / "finished_then_overwritten"
    shutil.copytree(workspace["prev"], old)
    assert json.loads((old / "metrics.json").read_text())["seed"] == 0
    code, output = run_main([*TINY, f"hydra.run.dir={old}", "overwrite=true", "seed=1"], capfd,
                            monkeypatch)
    assert code == 0, output[-3000:]
    assert json.loads((old / "metrics.json").read_text())["seed"] == 1


def test_cfg_job_resolve_prints_the_resolved_config(capfd, monkeypatch):
    code, output = run_main(["--cfg", "job", "--resolve", "dataset=digits", "shot=3"], capfd,
                            monkeypatch)
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
    assert "train_shot: 3" in output  # ${shot}, resolved
    assert "output_dir: null" in output  # no run dir without a run
