"""The meta-training loop (``snnexp.loop``): the guard against non-finite losses."""

from __future__ import annotations

import pytest
from helpers.runs import RUN, patch_train_step

from snnexp.checkpoint import load_checkpoint
from snnexp.errors import UserError
from snnexp.train import train


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
