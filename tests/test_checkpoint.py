"""Checkpoints and JSON files (``snnexp.checkpoint``): atomic writes, safe loads, the run-dir
resolver, and ``init_from`` through the learner."""

from __future__ import annotations

import json

import pytest
import torch

from snnexp import checkpoint
from snnexp.checkpoint import load_checkpoint, save_checkpoint, write_json
from snnexp.errors import UserError


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


def _run_dir(root, test_from="best", best=True):
    """A run dir with ``last.pt`` (its config's ``test_from``) and, if ``best``, ``best.pt``."""
    ckpt = root / "checkpoints"
    save_checkpoint(ckpt / "last.pt", {"config": {"test_from": test_from}, "loop": {"done": 2}})
    if best:
        save_checkpoint(ckpt / "best.pt", {"config": {"test_from": test_from}, "loop": {"done": 1}})
    return root


@pytest.mark.parametrize("test_from, best, tested", [("best", True, "best.pt"),
                                                     ("last", True, "last.pt"),
                                                     ("best", False, "last.pt")])
def test_one_resolver_turns_a_run_dir_into_its_best_last_or_tested_checkpoint(
        tmp_path, test_from, best, tested):
    run = _run_dir(tmp_path / "run", test_from, best)
    resolve = checkpoint.resolve_checkpoint
    assert resolve(run, "last") == run / "checkpoints" / "last.pt"
    assert resolve(run, "best") == run / "checkpoints" / "best.pt"
    assert resolve(run, "tested") == run / "checkpoints" / tested
    assert resolve(run / "checkpoints", "tested") == run / "checkpoints" / tested
    assert resolve(run / "checkpoints" / "last.pt", "best") == run / "checkpoints" / "last.pt"
    with pytest.raises(ValueError, match="which=first"):
        resolve(run, "first")


def test_load_checkpoint_of_a_run_dir_names_the_given_key_and_the_file(tmp_path):
    run = _run_dir(tmp_path / "run", best=False)
    assert load_checkpoint(run, which="tested")["loop"]["done"] == 2
    with pytest.raises(UserError, match=r"^ckpt_path=.*run \(.*best\.pt\): no such file"):
        load_checkpoint(run, key="ckpt_path", which="best")


class _NoNetwork:
    """A learner that keeps the base ``Learner.load_network_weights``."""

    name = "rstdp"

    def load_network_weights(self, state):
        from snnexp.models.base import Learner

        return Learner.load_network_weights(self, state)


def test_init_from_a_learner_without_network_weights_is_one_user_error(tmp_path):
    run = _run_dir(tmp_path / "run")
    with pytest.raises(UserError, match=r"^init_from=.*run: model=rstdp cannot start from another "
                       r"run.s weights \(model=protonet can\)"):
        checkpoint.load_initial_weights(_NoNetwork(), run)
