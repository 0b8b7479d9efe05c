"""model.backbone: the named options, their short command-line form, and a user's own network
plugged in with a ``_target_`` override."""

from __future__ import annotations

import pytest
import torch
from helpers.cli import run_cli
from helpers.configs import TINY
from helpers.protonet import make_learner
from helpers.tiny_backbone import TinyNet
from omegaconf import OmegaConf

from snnexp.cli import exit_on_bad_group_choice, nested_groups_as_groups
from snnexp.train import train


def test_the_dotted_backbone_key_becomes_the_group_form_and_other_keys_stay():
    given = ["model.backbone=snell4", "model.backbone=notebook,snell4",
             "model.backbone._target_=my.Net", "model.beta=0.9", "+model.backbone=snell4",
             "dataset.root=a,b"]
    assert nested_groups_as_groups(given) == [
        "model/backbone=snell4", "model/backbone=notebook,snell4",
        "model.backbone._target_=my.Net", "model.beta=0.9", "+model.backbone=snell4",
        "dataset.root=a,b"]


def test_an_unknown_backbone_is_refused_as_the_user_typed_it(capsys):
    with pytest.raises(SystemExit) as err:
        exit_on_bad_group_choice(["model.backbone=resnet"])
    assert err.value.code == 2
    assert "model.backbone=resnet: must be one of notebook, snell4" in capsys.readouterr().err


def test_the_command_line_selects_a_backbone_by_its_short_name():
    result = run_cli("model.backbone=snell4", "--cfg", "job")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "_target_: snnexp.models.protonet.backbones.snell4" in result.stdout


def test_a_backbone_sweep_runs_one_job_per_backbone(tmp_path, shared_data):
    result = run_cli("-m", "model.backbone=notebook,snell4", "dataset=mnist",
                     f"paths.data_dir={shared_data}", "way=2", "shot=1", "query=2",
                     "train_way=2", "train_shot=1", "train_query=2", *TINY,
                     f"hydra.sweep.dir={tmp_path}", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = [job for job in tmp_path.iterdir() if (job / "metrics.json").is_file()]
    targets = sorted(OmegaConf.load(job / ".hydra" / "config.yaml").model.backbone._target_
                     for job in jobs)
    assert targets == ["snnexp.models.protonet.backbones.notebook",
                       "snnexp.models.protonet.backbones.snell4"]


def test_a_network_defined_outside_snnexp_trains_via_a_target_override(compose_cfg):
    cfg = compose_cfg(*TINY, "dataset=digits", "model.num_steps=3",
                      "model.backbone._target_=helpers.tiny_backbone.TinyNet",
                      "model.embedding_dim=12")
    metrics, objects = train(cfg)
    net = objects["learner"].net
    assert isinstance(net, TinyNet) and net.fc.out_features == 12
    assert 0.0 <= metrics["test"]["acc"] <= 1.0
    spikes = metrics["spikes"]
    assert spikes["total/spikes"] > 0 and {"layer1/spikes", "layer2/spikes"} <= set(spikes)
    # layer 1's events (after pooling: at most its spikes) reach the fc layer's 12 units each
    assert 0 < spikes["layer1/synops"] <= 12 * spikes["layer1/spikes"]
    assert spikes["layer2/synops"] == 0.0  # the last layer sends nothing on
    assert "energy/snn_pj" not in spikes  # no `macs`: no energy estimate


def test_recorder_rasters_of_a_stepped_network_are_time_first():
    learner = make_learner((1, 8, 8), num_steps=5, threshold=0.2)
    learner.net = TinyNet((1, 8, 8), embedding_dim=6, beta=0.9, threshold=0.2,
                          spike_grad=None)
    out = learner.summaries(torch.rand(6, 1, 8, 8), torch.arange(3).repeat(2))
    raster = out["figures"]["raster/layers"]
    assert [ax.get_title().split(",")[0] for ax in raster.axes] == ["layer1", "layer2"]
    assert raster.axes[0].get_xlim() == (-0.5, 4.5)  # 5 time steps
    assert set(out["histograms"]) == {"weights/conv.weight", "weights/fc.weight"}
