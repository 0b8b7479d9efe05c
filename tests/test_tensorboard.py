"""TensorBoard: HParams names and columns, no scalar at step 0, raster and membrane figures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.configs import CONF_DIR, TINY
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from snnexp.cli import overridden
from snnexp.config import register_configs
from snnexp.hparams import METRICS, run_hparams, swept_keys
from snnexp.plots import evenly_spaced, figure_to_rgb, membrane_figure, raster_figure


@pytest.fixture
def hydra_job(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """``hydra_job(*overrides)`` -> the job config as ``python -m snnexp.train <overrides>``
    would see it, with Hydra's runtime (choices, command-line overrides) set as in a job."""
    register_configs()
    GlobalHydra.instance().clear()

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[f"paths.output_dir={tmp_path / 'run'}",
                                              f"paths.log_dir={tmp_path / 'outputs'}",
                                              *overrides], return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        return cfg

    yield _compose
    HydraConfig.instance().cfg = None
    GlobalHydra.instance().clear()


def test_hparams_name_options_by_config_name_and_keep_every_given_key(hydra_job):
    cfg = hydra_job("dataset=digits", "encoder=rate", "dataset.rotations=false", "train_way=7",
                    "dataset.train_classes=[0,1,2,3]", "optimizer=sgd", "query=4",
                    "scheduler=constant")
    hparams = run_hparams(cfg, overridden(), names={"encoder": "RateEncoder"})
    assert (hparams["encoder"], hparams["dataset"], hparams["model"]) == \
        ("rate", "digits", "protonet")  # the config names, not the classes
    assert (hparams["optimizer"], hparams["scheduler"]) == ("sgd", "constant")
    assert hparams["dataset.rotations"] == "false" and hparams["train_way"] == 7
    assert hparams["dataset.train_classes"] == "[0, 1, 2, 3]" and hparams["query"] == 4
    assert hparams["encoder.gain"] == 1.0 and hparams["model.spike_grad.slope"] == 5
    assert hparams["optimizer.lr"] == cfg.optimizer.lr
    for key in ("way", "shot", "train_shot", "seed", "train_episodes", "dataset.flips"):
        assert key in hparams
    assert not [key for key in hparams if "_target_" in key or "_partial_" in key]
    assert all(isinstance(value, (int, float, str)) and not isinstance(value, bool)
               for value in hparams.values())


def test_hparams_without_hydra_take_the_given_names(compose_cfg):
    hparams = run_hparams(compose_cfg("dataset=digits"), names={"model": "protonet",
                                                                "dataset": "digits"})
    assert (hparams["model"], hparams["dataset"]) == ("protonet", "digits")
    assert "optimizer" not in hparams and "optimizer.lr" in hparams


def test_swept_keys_are_the_sweep_overrides_of_a_multirun(hydra_job, tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    OmegaConf.save({"hydra": {"overrides": {"task": ["dataset=digits", "encoder=direct,rate",
                                                     "train_way=5,10", "seed=0"]}}},
                   sweep / "multirun.yaml")
    hydra_job("dataset=digits", "encoder=rate", "train_way=10", "seed=0", "hydra.mode=MULTIRUN",
              f"hydra.sweep.dir={sweep}")
    assert swept_keys(overridden()) == {"encoder", "train_way"}


def test_swept_keys_of_a_single_run_are_the_given_keys(hydra_job):
    hydra_job("dataset=digits", "shot=1")
    assert swept_keys(overridden()) == {"dataset", "shot", "paths.output_dir", "paths.log_dir"}


def test_tiny_run_logs_test_metrics_once_at_the_last_episode_with_hparams_and_rasters(
        hydra_job, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    from snnexp.train import train

    cfg = hydra_job(*TINY, "dataset=digits", "logger=tensorboard", "encoder=rate", "way=3",
                    "shot=1")
    train(cfg)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"),
                              size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert [event.step for event in events.Scalars("test/acc")] == [2]  # train_episodes=2
    at_zero = [tag for tag in tags["scalars"] if any(e.step == 0 for e in events.Scalars(tag))]
    assert at_zero == []
    images = {tag: events.Images(tag)[-1] for tag in ("raster/layers", "membrane/last_layer")}
    assert all((image.width, image.height, image.step) == (600, 400, 2)
               for image in images.values())
    plugin = {tag: HParamsPluginData.FromString(content)
              for tag, content in events.PluginTagToContent("hparams").items()}
    experiment = plugin["_hparams_/experiment"].experiment
    assert [info.name.tag for info in experiment.metric_infos] == list(METRICS)
    assert set(METRICS) <= set(tags["scalars"])  # the tab reads each metric's values there
    names = {info.name for info in experiment.hparam_infos}
    assert {"encoder", "dataset", "way", "shot", "train_way", "train_shot"} <= names
    differs = {info.name for info in experiment.hparam_infos if info.differs}
    assert {"encoder", "way", "shot"} <= differs  # given on the command line: listed first
    start = plugin["_hparams_/session_start_info"].session_start_info.hparams
    assert start["encoder"].string_value == "rate" and start["way"].number_value == 3


def test_raster_figure_has_a_labelled_panel_per_layer_and_draws_each_spike():
    spikes = np.zeros((6, 10), np.float32)
    spikes[3, 5] = spikes[0, 9] = 1.0
    big = np.random.default_rng(0).random((6, 4, 16, 16)) < 0.1  # 1024 neurons
    fires = int((big.reshape(6, -1).sum(0) > 0).sum())
    fig = raster_figure({"in": spikes, "conv": big, "out": np.ones((6, 2))}, max_neurons=128)
    assert len(fig.axes) == 3
    first, second, third = fig.axes
    assert sorted(map(tuple, first.collections[0].get_offsets().tolist())) == [(0, 9), (3, 5)]
    assert first.get_title() == "in, N=10\n2 fire\n0.033 spikes/neuron/step"
    assert second.get_title().startswith(f"conv, N=1024\n{fires} fire, 128 shown\n")
    assert len(np.unique(second.collections[0].get_offsets()[:, 1])) == 128
    assert third.get_title() == "out, N=2\n2 fire\n1.000 spikes/neuron/step"
    assert first.get_ylabel() == "neuron index"
    assert all(ax.get_xlabel() == "time step" for ax in fig.axes)
    image = figure_to_rgb(fig)
    assert image.shape == (3, 400, 600) and image.dtype == np.float32
    assert 0.0 <= image.min() < image.max() <= 1.0


def test_membrane_figure_draws_the_threshold_dashed_and_none_for_an_integrator():
    membrane = np.linspace(0, 2, 5)[:, None] * np.ones((5, 20))
    traces = membrane_figure(membrane, threshold=1.0).axes[0].get_lines()
    assert len(traces) == 8 + 1  # 8 of the 20 neurons, and the threshold
    dashed = [line for line in traces if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and list(dashed[0].get_ydata()) == [1.0, 1.0]
    ax = membrane_figure(membrane, threshold=None).axes[0]
    assert all(line.get_linestyle() == "-" for line in ax.get_lines())
    assert ax.get_xlabel() == "time step" and ax.get_ylabel() == "membrane potential"


def test_evenly_spaced_keeps_all_few_neurons_and_spreads_many():
    assert evenly_spaced(5, 8).tolist() == [0, 1, 2, 3, 4]
    assert evenly_spaced(100, 5).tolist() == [0, 25, 50, 74, 99]
