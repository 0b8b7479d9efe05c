"""``snnexp.cli``: quoting for Hydra's grammar and the shell, the checks before Hydra, keys added
with ``+``; files written with the user's umask; the ``dataset_model`` and ``debug`` groups."""

from __future__ import annotations

import importlib.metadata
import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers.cli import run_cli
from helpers.configs import CONF_DIR, TINY
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from snnexp.checkpoint import save_checkpoint, write_json
from snnexp.cli import (
    check_added_keys,
    exit_on_bad_group_choice,
    exit_on_finished_run_dir,
    exit_on_renamed_key,
    hydra_quote,
    override_for_shell,
    quote_path_values,
)
from snnexp.data.folder import _save_cache
from snnexp.data.pool import ClassPool
from snnexp.errors import UserError

NASTY = [
    "outputs/multirun/2026-01-01/12-00-00/3_model=protonet,seed=1,shot=5",
    "/tmp/a b/[x]/{y}/c:d",
    'it\'s "quoted"',
    "ends with a backslash\\",
    "back\\slash\\\\double",
    "a ${not.an.interpolation} here",
    "back\\${x} and \\\\${y}",
    "$HOME and `ticks` and ~ and *",
]


def hydra_reads(override: str) -> str:
    """The string ``key=...`` gives the config: Hydra's parser, then OmegaConf's access."""
    value = OverridesParser.create().parse_override(override).value()
    return OmegaConf.create({"k": value}).k


@pytest.mark.parametrize("value", NASTY)
def test_hydra_quote_reads_back_unchanged(value):
    assert hydra_reads(f"ckpt_path={hydra_quote(value)}") == value


@pytest.mark.parametrize("value", NASTY)
def test_override_for_shell_survives_a_posix_shell_then_hydra(value):
    token = override_for_shell("ckpt_path", value)
    shell = subprocess.run(["sh", "-c", f"printf '%s' {token}"], capture_output=True, text=True,
                           check=True)
    assert hydra_reads(shell.stdout) == value


def test_an_unquoted_sweep_job_dir_is_a_hydra_grammar_error():
    """Why ``quote_path_values`` exists: Hydra cannot read such a path as one value."""
    with pytest.raises(Exception):  # noqa: B017 - Hydra's parser raises its own error types
        hydra_reads("ckpt_path=/x/3_model=protonet,seed=1,shot=5")


def test_existing_paths_hydra_would_split_are_quoted_and_others_kept(tmp_path):
    job = tmp_path / "3_model=protonet,seed=1,shot=5"
    plain = tmp_path / "run"
    job.mkdir(), plain.mkdir()
    argv = [f"ckpt_path={job}", f"resume={plain}", f"init_from={tmp_path}/gone=1,2",
            f'ckpt_path="{job}"', "way=3", f"paths.data_dir={job}"]
    out = quote_path_values(argv)
    assert out[0] == f"ckpt_path={hydra_quote(str(job))}"
    assert out[1:] == argv[1:]  # readable as given, not a path, already quoted, not a path key
    assert hydra_reads(out[0]) == str(job)


def test_a_finished_run_dir_is_refused_before_hydra(tmp_path, capsys):
    done, interrupted, empty = tmp_path / "done", tmp_path / "interrupted", tmp_path / "empty"
    write_json(done / "metrics.json", {"status": "completed"})
    save_checkpoint(interrupted / "checkpoints" / "last.pt", {"config": {}})
    write_json(interrupted / "metrics.json", {"status": "interrupted"})
    empty.mkdir()
    for folder in (done, interrupted):
        with pytest.raises(SystemExit) as stop:
            exit_on_finished_run_dir([f"hydra.run.dir={folder}"])
        assert stop.value.code == 2
        assert capsys.readouterr().err.startswith(f"[snnexp][ERROR] - hydra.run.dir={folder}: ")
    exit_on_finished_run_dir([f"hydra.run.dir={empty}"])
    exit_on_finished_run_dir([f"hydra.run.dir={tmp_path / 'new'}"])
    exit_on_finished_run_dir([f"hydra.run.dir={done}", "overwrite=true"])
    exit_on_finished_run_dir([f"hydra.run.dir={done}", "overwrite=True"])
    with pytest.raises(SystemExit):
        exit_on_finished_run_dir([f"hydra.run.dir={done}", "overwrite=false"])
    with pytest.raises(SystemExit):
        exit_on_finished_run_dir([f"hydra.sweep.dir={tmp_path}"])  # a job dir holds a run


@pytest.mark.parametrize("overrides, message", [
    (["+wya=5"], r"^\+wya=5: no such key in the config \(did you mean way=5\?\)$"),
    (["+model.bta=0.9"], r"^\+model.bta=0.9: .*did you mean model.beta=0.9\?"),
    (["++model.spike_grad.slop=3"], r"did you mean model.spike_grad.slope=3\?"),
    (["+dataset.rotatons=false"], r"did you mean dataset.rotations=false\?"),
    (["optimizer=sgd", "+optimizer.nestrov=true"], r"did you mean optimizer.nesterov=true\?"),
    (["+foo.bar=1"], r"^\+foo.bar=1: no such key"),
])
def test_a_key_added_with_plus_that_no_schema_knows_is_refused(compose_cfg, overrides, message):
    cfg = compose_cfg(*overrides)
    with pytest.raises(UserError, match=message):
        check_added_keys(cfg, overrides)


@pytest.mark.parametrize("overrides", [
    ["optimizer=sgd", "+optimizer.dampening=0.1"],  # an argument of torch.optim.SGD
    ["++way=3"],  # an existing key
    ["+hydra.job.env_set.FOO=1"],  # Hydra's own
])
def test_keys_added_with_plus_that_exist_pass(compose_cfg, overrides):
    check_added_keys(compose_cfg(*overrides), overrides)


def test_class_lists_that_share_classes_are_refused_naming_both_keys():
    images, labels = torch.zeros(40, 1, 2, 2), torch.arange(40) % 4
    with pytest.raises(UserError, match=r"dataset.train_classes=\[0, 1\], "
                                        r"dataset.test_classes=\[1, 2\]: classes \[1\]"):
        ClassPool(images, labels, train_classes=[0, 1], test_classes=[1, 2])
    with pytest.raises(UserError, match=r"dataset.val_classes=\[2\], dataset.test_classes"):
        ClassPool(images, labels, train_classes=[0, 1], val_classes=[2], test_classes=[2, 3])
    ClassPool(images, labels, train_classes=[0, 1], test_classes=[1, 2], split="images")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_files_are_written_with_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "metrics.json", {"a": 1})
        save_checkpoint(tmp_path / "checkpoints" / "last.pt", {"config": {}})
        _save_cache(tmp_path / "cache" / "x.pt", {"images": torch.zeros(2)})
    finally:
        os.umask(old)
    for name in ("metrics.json", "checkpoints/last.pt", "cache/x.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"a": 1}


def dotted(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted key: value}`` of the leaves of a config node."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if OmegaConf.is_dict(value):
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_dataset_chooses_the_models_dataset_specific_defaults(compose_cfg):
    specialized = OmegaConf.load(CONF_DIR / "dataset_model" / "mnist_rstdp.yaml")
    tuned = dotted(specialized.model)
    plain = OmegaConf.load(CONF_DIR / "model" / "rstdp.yaml")
    default_episodes = OmegaConf.load(CONF_DIR / "train.yaml").train_episodes
    assert compose_cfg("model=rstdp", "dataset=mnist").train_episodes == \
        specialized.train_episodes != default_episodes
    assert compose_cfg("model=rstdp", "dataset=digits").train_episodes == default_episodes
    assert any(OmegaConf.select(plain, k) != v for k, v in tuned.items())  # it changes something
    for overrides in (["model=rstdp", "dataset=mnist"], ["experiment=rstdp_mnist_5w5s"]):
        model = compose_cfg(*overrides).model
        assert {k: OmegaConf.select(model, k) for k in tuned} == tuned, overrides
    digits = compose_cfg("model=rstdp", "dataset=digits").model
    assert {k: OmegaConf.select(digits, k) for k in tuned} == \
        {k: OmegaConf.select(plain, k) for k in tuned}
    assert compose_cfg("model=rstdp", "dataset=mnist",
                       "model.readout.epochs=3").model.readout.epochs == 3
    assert compose_cfg("model=protonet", "dataset=mnist").model.num_steps == 20


def test_debug_preset_is_tiny_and_leaves_the_rest_alone(compose_cfg):
    cfg = compose_cfg("debug=default", "model=rstdp", "dataset=mnist", "way=3")
    assert cfg.train_episodes <= 10 and cfg.test_episodes <= 10 and cfg.val_episodes <= 10
    assert cfg.threads == 1 and cfg.logger._target_ == "snnexp.loggers.NullLogger"
    assert cfg.way == 3 and cfg.model.hidden.kernel == 7  # other choices, dataset_model apply
    exit_on_bad_group_choice(["debug=default", "dataset_model=mnist_rstdp"])


def test_help_lists_the_new_groups():
    result = run_cli("--help", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "debug: default" in result.stdout
    assert "dataset_model: mnist_rstdp" in result.stdout


@pytest.mark.slow
def test_optuna_preset_with_sqlite_storage(tmp_path):
    """The preset's own suggestion, ``sqlite:///optuna.db``, for 2 trials of a tiny run: it
    runs and stores both trials, or (SQLAlchemy 2 installed, which optuna 2.x cannot use) it is
    refused in one line."""
    args = ["hparams_search=protonet_optuna", "hydra.sweeper.storage=sqlite:///optuna.db",
            "hydra.sweeper.n_trials=2", "dataset=digits", *TINY,
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = run_cli(*args, timeout=300, cwd=tmp_path)
    output = result.stdout + result.stderr
    if int(importlib.metadata.version("sqlalchemy").split(".")[0]) >= 2:
        assert result.returncode == 2, output[-3000:]
        assert output.count("ERROR") == 1 and "sqlalchemy>=1.4,<2" in output
        return
    assert result.returncode == 0, output[-3000:]
    count = subprocess.run(
        [sys.executable, "-c", "import optuna; print(len(optuna.load_study(study_name="
         "'protonet', storage='sqlite:///optuna.db').trials))"],
        cwd=tmp_path, capture_output=True, text=True, check=True)
    assert count.stdout.split()[-1] == "2"
    assert Path(tmp_path / "sweep" / "optimization_results.yaml").is_file()


@pytest.mark.parametrize(("check", "override", "line"), [
    (exit_on_bad_group_choice, "model=nope", "model=nope: must be one of hybrid, protonet, rstdp"),
    (exit_on_bad_group_choice, "+encoder=direct,nope",
     "encoder=nope: must be one of direct, frames, latency, rate"),
    (exit_on_bad_group_choice, "logger=null",
     "logger=null: must be one of none, tensorboard (or drop the group with ~logger)"),
    (exit_on_renamed_key, "model.epochs=30",
     "model.epochs=30: renamed to model.readout.epochs (model.readout.epochs=30)"),
    (exit_on_renamed_key, "+model.v_th=-55",
     "model.v_th=-55: renamed to model.neuron.v_th (model.neuron.v_th=-55)"),
    (exit_on_renamed_key, "~model.filters", "model.filters: renamed to model.hidden.filters"),
    (exit_on_renamed_key, "model.hidden_mode=random",
     "model.hidden_mode=random: renamed to model.hidden.mode (model.hidden.mode=random)"),
])
def test_an_unknown_option_or_a_renamed_key_exits_2_with_one_line(check, override, line,
                                                                  capsys):
    with pytest.raises(SystemExit) as stop:
        check(["model=rstdp", override])
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"[snnexp][ERROR] - {line}\n"


def test_current_keys_pass_the_renamed_key_check():
    exit_on_renamed_key(["model=rstdp", "model.readout.epochs=3", "model.num_steps=4",
                         "model=protonet", "model.neuron=relu", "model.readout=spikes"])
