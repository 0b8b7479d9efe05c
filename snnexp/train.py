"""Meta-train a few-shot learner, validate it, and test it on held-out classes.

    python -m snnexp.train way=5 shot=1
    python -m snnexp.train -m model=protonet,rstdp shot=1,5 seed=0,1,2

``train(cfg)`` does the work and returns ``(metrics, objects)``; ``main()`` is the thin Hydra
wrapper that returns ``metrics[cfg.optimized_metric]`` to sweepers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from snnexp import builders, checkpoint, evaluation, tuning
from snnexp import cli as cli_
from snnexp.config import CONF_DIR, check_config, register_configs
from snnexp.loop import Interrupted, MetaTrainer
from snnexp.progress import bar_wanted
from snnexp.resume import load_resume

log = logging.getLogger(__name__)
register_configs()


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one experiment; return ``(metrics, objects)`` (metrics as in ``metrics.json``)."""
    cfg, resume_state = load_resume(cfg)
    check_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    tuning.configure(cfg.threads, cfg.cpu_tuning)
    device = builders.resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    pool = builders.build_pool(cfg.dataset)
    splits = builders.build_splits(pool, cfg)
    train_sampler: Any = builders.build_sampler(splits["train"], cfg.train_way, cfg.train_shot,
                                                cfg.train_query, cfg.seed, "train")
    for key in ("train_augment", "train_noise"):  # the noise corrupts the augmented images
        if cfg.get(key) is not None:
            train_sampler = builders.build_transformed(train_sampler, cfg[key], pool, key,
                                                       cfg.seed)
    make_val = lambda: builders.build_sampler(splits["val"], cfg.way, cfg.shot, cfg.query,  # noqa: E731
                                              cfg.seed, "val")
    make_test = lambda: builders.build_sampler(splits["test"], cfg.way, cfg.shot, cfg.query,  # noqa: E731
                                               cfg.seed, "test")
    make_val(), make_test()  # validate episode shapes against the splits before training
    learner = builders.build_learner(cfg, pool.image_shape, device)
    if cfg.get("init_from") and resume_state is None:
        checkpoint.load_initial_weights(learner, cfg.init_from)
    for node in ("optimizer", "scheduler"):
        if not learner.uses_optimizer and cfg.get(node) is not None:
            log.info("%s ignored: model=%s learns by its own plasticity rule", node, learner.name)
    logger = builders.instantiate(cfg.logger) if cfg.get("logger") else None
    trainer = MetaTrainer(learner, train_sampler, make_val, episodes=cfg.train_episodes,
                          val_every=cfg.val_every, val_episodes=cfg.val_episodes, device=device,
                          run_dir=run_dir, logger=logger,
                          progress=bar_wanted(cli_.is_multirun()),
                          snapshot={"config": builders.config_to_dict(cfg),
                                    "data": {"image_shape": list(pool.image_shape),
                                             "image_format": pool.image_format.to_dict()}})
    if resume_state is not None:
        checkpoint.load_learner_state(learner, resume_state, f"resume={cfg.resume}")
        trainer.restore(resume_state)
        log.info("resumed from %s at episode %d", cfg.resume, trainer.done)
    if logger is not None:
        logger.log_text("config", f"```yaml\n{OmegaConf.to_yaml(cfg, resolve=True)}```")
    log.info("run dir %s | model=%s dataset=%s %d-way %d-shot | %s", run_dir, learner.name,
             pool.name, cfg.way, cfg.shot, device)
    try:
        trainer.run()
    except Interrupted as stop:
        evaluation.write_metrics(run_dir, evaluation.metrics_record(
            cfg, learner, pool.name, "interrupted", **evaluation.training_sections(cfg, trainer)))
        raise SystemExit(stop.exit_code) from None
    if cfg.test_from == "best":
        trainer.load_best()
    test = evaluation.run_test(cfg, learner, make_test(), pool.image_shape, device)
    metrics = evaluation.metrics_record(cfg, learner, pool.name, "completed",
                                        **evaluation.training_sections(cfg, trainer), **test)
    evaluation.write_metrics(run_dir, metrics)
    evaluation.log_summary(metrics, run_dir, evaluate_again=True)
    if logger is not None:
        evaluation.log_final(logger, cfg, metrics, trainer.done)
        logger.close()
    return metrics, {"learner": learner, "trainer": trainer, "pool": pool, "cfg": cfg}


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: run ``train`` and return the optimized metric."""
    return cli_.run_task(optimized_metric, cfg)


def optimized_metric(cfg: DictConfig) -> float:
    """Run ``train`` and return ``cfg.optimized_metric`` (the value a sweeper optimizes)."""
    metrics, _ = train(cfg)
    return evaluation.select_metric(metrics, cfg.optimized_metric)


def cli() -> None:
    """``snnexp-train`` and ``python -m snnexp.train`` (``snnexp.cli.run``)."""
    cli_.run(main)


if __name__ == "__main__":
    cli()
