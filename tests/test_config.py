"""Every option of every config group composes and instantiates; typos fail at compose time;
parallel jobs get their own run dirs (``config.unique_dir``)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from helpers.configs import CONF_DIR
from hydra.errors import ConfigCompositionException, HydraException
from hydra.utils import get_method, instantiate
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from snnexp import builders
from snnexp.cli import exit_on_bad_group_choice
from snnexp.config import check_config, unique_dir
from snnexp.data.pool import ClassPool
from snnexp.errors import UserError


def options(group: str) -> list[str]:
    """The option names of a config group (its YAML files)."""
    names = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    assert names, f"conf/{group} has no options"
    return names


def test_default_config_composes_with_the_documented_defaults(compose_cfg):
    cfg = compose_cfg()
    assert (cfg.way, cfg.shot, cfg.query, cfg.seed, cfg.test_episodes) == (5, 1, 15, 0, 600)
    assert (cfg.train_way, cfg.train_shot, cfg.train_query) == (20, 1, 5)
    assert cfg.device == "auto" and cfg.optimized_metric == "val/acc_best"
    assert cfg.model._target_.endswith("ProtoNetLearner")
    assert cfg.dataset._target_.endswith("load_omniglot")
    # conf/dataset_model/omniglot_protonet.yaml, chosen by the dataset and the model
    assert (cfg.model.num_steps, cfg.model.threshold, cfg.optimizer.lr) == (4, 0.5, 2e-3)
    assert cfg.scheduler._target_.endswith("CosineAnnealingLR")
    check_config(cfg)


def test_train_shape_follows_the_test_shape_unless_set(compose_cfg):
    cfg = compose_cfg("way=3", "shot=4")
    assert (cfg.train_way, cfg.train_shot) == (20, 4)  # many-way training, the test's shot
    cfg = compose_cfg("way=3", "train_way=7")
    assert (cfg.way, cfg.train_way) == (3, 7)


@pytest.mark.parametrize("model", options("model"))
@pytest.mark.parametrize("encoder", options("encoder"))
def test_every_model_and_encoder_instantiates_and_predicts(compose_cfg, model, encoder, request):
    # model=hybrid needs a protonet checkpoint (a tiny one on the 8x8 digits)
    extra = [f"init_from={request.getfixturevalue('trained_run')}"] if model == "hybrid" else []
    cfg = compose_cfg(f"model={model}", f"encoder={encoder}", "model.num_steps=2", "way=2",
                      "shot=1", *extra)
    check_config(cfg)
    if model == "hybrid" and encoder == "frames":  # the checkpoint was trained on images
        with pytest.raises(UserError, match="^encoder=FramesEncoder: model=hybrid encodes"):
            builders.build_learner(cfg, (1, 8, 8), torch.device("cpu"))
        return
    learner = builders.build_learner(cfg, (1, 8, 8), torch.device("cpu"))
    assert learner.name == model
    support_x, query_x = torch.rand(2, 1, 8, 8), torch.rand(3, 1, 8, 8)
    if encoder == "frames":  # event frames [B, T, C, H, W] (snnexp.builders.build_splits)
        support_x, query_x = (torch.randint(0, 3, (n, 2, 1, 8, 8), dtype=torch.uint8)
                              for n in (2, 3))
    logits = torch.as_tensor(learner.predict(support_x, torch.tensor([0, 1]), query_x))
    assert logits.shape == (3, 2)


@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_every_optimizer_is_a_partial_the_learner_finishes(compose_cfg, optimizer):
    cfg = compose_cfg(f"optimizer={optimizer}")
    check_config(cfg)
    learner = builders.build_learner(cfg, (1, 8, 8), torch.device("cpu"))
    assert type(learner.optimizer).__name__.lower() == optimizer
    assert learner.optimizer.defaults["lr"] == cfg.optimizer.lr


@pytest.mark.parametrize("scheduler", options("scheduler"))
def test_every_scheduler_is_a_partial_the_learner_finishes_with_its_optimizer(compose_cfg,
                                                                             scheduler):
    cfg = compose_cfg(f"scheduler={scheduler}", "train_episodes=40")
    check_config(cfg)
    learner = builders.build_learner(cfg, (1, 8, 8), torch.device("cpu"))
    assert type(learner.scheduler).__name__ == cfg.scheduler._target_.rsplit(".", 1)[1]
    assert learner.scheduler.optimizer is learner.optimizer
    if scheduler == "cosine":  # the decay spans the run's episodes
        assert learner.scheduler.T_max == 40


def test_the_constant_schedule_keeps_the_learning_rate(compose_cfg):
    learner = builders.build_learner(compose_cfg("scheduler=constant"), (1, 8, 8),
                                     torch.device("cpu"))
    lr = learner.optimizer.param_groups[0]["lr"]
    for _ in range(3):
        learner.optimizer.step()
        learner.scheduler.step()
    assert learner.optimizer.param_groups[0]["lr"] == lr


@pytest.mark.parametrize("logger", options("logger"))
def test_every_logger_instantiates_and_writes_into_the_run_dir(compose_cfg, tmp_path, logger):
    cfg = compose_cfg(f"logger={logger}", output_dir=tmp_path / "run")
    log = instantiate(cfg.logger)
    log.log_scalars({"train/loss": 1.0}, 1)
    log.close()
    written = list((tmp_path / "run").rglob("events.out.tfevents.*"))
    assert bool(written) == (logger == "tensorboard")


@pytest.mark.parametrize("dataset", options("dataset"))
def test_every_dataset_composes_with_a_callable_target(compose_cfg, tmp_path, dataset):
    cfg = compose_cfg(f"dataset={dataset}", f"++dataset.root={tmp_path}")
    check_config(cfg)
    assert callable(get_method(cfg.dataset._target_))
    OmegaConf.to_container(cfg.dataset, resolve=True)


def test_digits_dataset_instantiates_a_class_disjoint_pool(compose_cfg):
    pool = builders.build_pool(compose_cfg("dataset=digits").dataset)
    assert isinstance(pool, ClassPool) and pool.image_shape == (1, 8, 8)
    splits = pool.splits()
    train, test = set(splits["train"].labels.tolist()), set(splits["test"].labels.tolist())
    # digits 0-4 and their 7 other symmetries (rotations, mirror images) as classes c + 10 j
    assert train == {c + 10 * j for c in range(5) for j in range(8)}
    assert test == {5, 6, 7, 8, 9} and set(splits["val"].labels.tolist()) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("dataset", ["mnist"])
def test_idx_dataset_instantiates_from_the_shared_data(compose_cfg, shared_data, dataset):
    pool = builders.build_pool(compose_cfg(f"dataset={dataset}",
                                           f"paths.data_dir={shared_data}").dataset)
    assert pool.image_shape == (1, 28, 28) and len(pool.labels) == 10_000


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_preset_composes(compose_cfg, shared_data, experiment):
    cfg = compose_cfg(f"experiment={experiment}", f"paths.data_dir={shared_data}")
    check_config(cfg)


@pytest.mark.parametrize("override", [
    "way=abc",            # wrong type
    "seed=1.5",           # wrong type
    "train_episodes=many",
    "wya=5",              # unknown key (typo)
    "model.num_step=5",   # unknown key inside a schema'd group
    "dataset.train_class=[0]",
    "model=nope",         # unknown option
    "dataset=nope",
    "optimizer=nope",
    "encoder=nope",
    "logger=nope",
])
def test_typos_and_wrong_types_fail_at_compose_time(compose_cfg, override):
    with pytest.raises((ConfigCompositionException, HydraException, OmegaConfBaseException)):
        compose_cfg(override)


@pytest.mark.parametrize("override, key", [
    ("way=0", "way"), ("shot=-1", "shot"), ("query=0", "query"), ("test_episodes=0",
                                                                   "test_episodes"),
    ("train_episodes=-5", "train_episodes"), ("val_every=0", "val_every"),
    ("optimizer.lr=-0.1", "optimizer.lr"), ("device=gpu", "device"), ("test_from=mid",
                                                                        "test_from"),
    ("model.num_steps=0", "model.num_steps"), ("model.beta=1.5", "model.beta"),
    ("model.beta=-0.1", "model.beta"), ("dataset.split=random", "dataset.split"),
    ("dataset.val_fraction=1.0", "dataset.val_fraction"), ("threads=0", "threads"),
])
def test_check_config_names_the_bad_key(compose_cfg, override, key):
    cfg = compose_cfg(override)
    with pytest.raises(UserError, match=rf"^{key}="):
        check_config(cfg)


@pytest.mark.parametrize("overrides", [
    ["model=rstdp", "+experiment=seed_mnist", "encoder=direct,rate,latency", "logger=none"],
    ["hydra/launcher=joblib", "hydra/sweeper=optuna"],  # plugin options live outside conf/
    ["encoder=choice(direct,rate)", "way=3", "model.readout=nope", "~logger"],  # Hydra's to judge
])
def test_group_choices_that_exist_or_are_hydras_pass_the_command_line_check(overrides):
    exit_on_bad_group_choice(overrides)  # returns: nothing to report


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
