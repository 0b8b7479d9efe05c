"""Meta-train a few-shot learner, validate it, and test it on held-out classes.

    python -m snnexp.train way=5 shot=1
    python -m snnexp.train -m model=protonet,rstdp shot=1,5 seed=0,1,2

``train(cfg)`` does the work and returns ``(metrics, objects)``; ``main()`` is the thin Hydra
wrapper that returns ``metrics[cfg.optimized_metric]`` to sweepers.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from snnexp import builders, hparams
from snnexp import cli as cli_
from snnexp.api import resolve_checkpoint
from snnexp.checkpoint import load_checkpoint, load_learner_state, weights_do_not_fit, write_json
from snnexp.config import CONF_DIR, check_config, register_configs
from snnexp.errors import UserError
from snnexp.loop import Interrupted, MetaTrainer
from snnexp.metrics import (
    episodes_fingerprint,
    evaluate,
    mean_ci95,
    per_episode,
    per_episode_correct,
    pixel_prototype_logits,
)
from snnexp.progress import Progress, bar_wanted
from snnexp.report import eval_command, summary_lines

log = logging.getLogger(__name__)
register_configs()


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one experiment; return ``(metrics, objects)`` (metrics as in ``metrics.json``)."""
    resume_state = load_resume(cfg) if cfg.get("resume") else None
    if resume_state is not None:
        cfg = config_for_resume(cfg, resume_state)
    check_config(cfg)
    run_dir = Path(cfg.paths.output_dir)
    builders.configure_torch(cfg.threads)
    device = builders.resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    pool = builders.build_pool(cfg.dataset)
    splits = pool.splits()
    train_sampler = builders.build_sampler(splits["train"], cfg.train_way, cfg.train_shot,
                                           cfg.train_query, cfg.seed, "train")
    make_val = lambda: builders.build_sampler(splits["val"], cfg.way, cfg.shot, cfg.query,  # noqa: E731
                                              cfg.seed, "val")
    make_test = lambda: builders.build_sampler(splits["test"], cfg.way, cfg.shot, cfg.query,  # noqa: E731
                                               cfg.seed, "test")
    make_val(), make_test()  # validate episode shapes against the splits before training
    learner = builders.build_learner(cfg, pool.image_shape, device)
    if cfg.get("init_from") and resume_state is None:
        load_initial_weights(learner, cfg.init_from)
    for node in ("optimizer", "scheduler"):
        if not learner.uses_optimizer and cfg.get(node) is not None:
            log.info("%s ignored: model=%s learns by its own plasticity rule", node, learner.name)
    logger = builders.instantiate(cfg.logger) if cfg.get("logger") else None
    trainer = MetaTrainer(learner, train_sampler, make_val, episodes=cfg.train_episodes,
                          val_every=cfg.val_every, val_episodes=cfg.val_episodes, device=device,
                          run_dir=run_dir, logger=logger,
                          progress=bar_wanted(is_multirun()),
                          snapshot={"config": builders.config_to_dict(cfg),
                                    "data": {"image_shape": list(pool.image_shape),
                                             "image_format": pool.image_format.to_dict()}})
    if resume_state is not None:
        load_learner_state(learner, resume_state, f"resume={cfg.resume}")
        trainer.restore(resume_state)
        log.info("resumed from %s at episode %d", cfg.resume, trainer.done)
    if logger is not None:
        logger.log_text("config", f"```yaml\n{OmegaConf.to_yaml(cfg, resolve=True)}```")
    log.info("run dir %s | model=%s dataset=%s %d-way %d-shot | %s", run_dir, learner.name,
             pool.name, cfg.way, cfg.shot, device)
    try:
        trainer.run()
    except Interrupted as stop:
        write_json(run_dir / "metrics.json", {**summary(cfg, trainer, pool.name),
                                              "status": "interrupted"})
        raise SystemExit(stop.exit_code) from None
    if cfg.test_from == "best" and (run_dir / "checkpoints" / "best.pt").exists():
        learner.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "best.pt")["learner"])
    test = run_test(cfg, learner, make_test(), pool.image_shape, device)
    metrics = {**summary(cfg, trainer, pool.name), "status": "completed", **test}
    write_json(run_dir / "metrics.json", metrics)
    for line in summary_lines(metrics, run_dir, eval_command(run_dir, cli_.override_for_shell)):
        log.info("%s", line)
    if logger is not None:
        log_final(logger, cfg, metrics, trainer.done)
        logger.close()
    return metrics, {"learner": learner, "trainer": trainer, "pool": pool, "cfg": cfg}


def run_test(cfg: DictConfig, learner: Any, sampler: Any, input_shape: tuple,
             device: torch.device) -> dict[str, Any]:
    """Test on ``cfg.test_episodes`` episodes with the pixel and untrained controls; return
    ``metrics.json``'s ``test`` and ``spikes`` entries."""
    with torch.random.fork_rng():  # the same initial weights as this run started from
        torch.manual_seed(cfg.seed)
        untrained = builders.build_learner(cfg, input_shape, device)
    learner.reset_spike_stats()
    predictors = {"acc": learner.predict_episodes,
                  "acc_pixel": per_episode(pixel_prototype_logits),
                  "acc_untrained": untrained.predict_episodes}
    fingerprint = episodes_fingerprint(sampler)  # before drawing: identifies these episodes
    start = time.perf_counter()
    with Progress(cfg.test_episodes, "test", bar=bar_wanted(is_multirun())) as bar:
        accs = evaluate(predictors, (sampler.sample() for _ in range(cfg.test_episodes)),
                        device, on_episode=lambda _: bar.update())
    wall = time.perf_counter() - start
    test: dict[str, Any] = {"episodes": cfg.test_episodes, "wall_s": wall}
    for name, values in accs.items():
        mean, ci95 = mean_ci95(values)
        test[name], test[name.replace("acc", "ci95")] = mean, ci95
    queries = cfg.way * cfg.query
    test["per_episode"] = {"queries": queries, "episodes_sha1": fingerprint,
                           "correct": per_episode_correct(accs, queries)}
    return {"test": test, "spikes": learner.spike_stats()}


def summary(cfg: DictConfig, trainer: MetaTrainer, dataset: str) -> dict[str, Any]:
    """The parts of ``metrics.json`` known after training."""
    val_last = trainer.val_history[-1] if trainer.val_history else [0, float("nan"), 0.0]
    return {
        "model": trainer.learner.name, "dataset": dataset,
        "encoder": trainer.learner.encoding, "seed": cfg.seed,
        "threads": torch.get_num_threads(),  # float sums, so the metrics, depend on it
        "way": cfg.way, "shot": cfg.shot, "query": cfg.query, "train_way": cfg.train_way,
        "train_shot": cfg.train_shot, "train_query": cfg.train_query,
        "train": {"episodes": trainer.done, "wall_s": trainer.wall_s,
                  "episodes_per_s": trainer.done / trainer.wall_s if trainer.wall_s else 0.0,
                  **{k: v for k, v in trainer.last_train.items()}},
        "val": {"acc": val_last[1], "ci95": val_last[2], "acc_best": trainer.best["acc"],
                "episode_best": trainer.best["episode"], "episodes": cfg.val_episodes,
                "history": trainer.val_history},
    }


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``{"test": {"acc": x, "ci95": y}}`` -> ``{"test/acc": x, "test/acc_ci95": y}`` for the
    scalar leaves (``split/name``; ``ci95_pixel`` -> ``acc_pixel_ci95``)."""
    flat = {}
    for split in ("train", "val", "test", "spikes"):
        for key, value in metrics.get(split, {}).items():
            if isinstance(value, (int, float)):
                name = key.replace("ci95", "acc") + "_ci95" if key.startswith("ci95") else key
                flat[f"{split}/{name}"] = float(value)
    return flat


def log_final(logger: Any, cfg: DictConfig, metrics: dict[str, Any], step: int) -> None:
    """The test and spike metrics at the last training ``step``, and the run's HParams."""
    logger.log_scalars({k: v for k, v in flat_metrics(metrics).items()
                        if k.startswith(("test/", "spikes/"))}, step)
    given, names = overridden(), {key: metrics[key] for key in ("model", "dataset", "encoder")}
    logger.log_hparams(hparams.run_hparams(cfg, given, names), hparams.METRICS,
                       hparams.swept_keys(given))


def load_initial_weights(learner: Any, path: str) -> None:
    """Start ``learner`` from the network weights of the run or ``.pt`` at ``path``
    (``init_from``; a run dir gives the weights its test used). What is taken is the
    learner's own business (``Learner.load_network_weights``); the optimizer, lr schedule and
    episode count start fresh."""
    state = load_checkpoint(resolve_checkpoint(path), key="init_from")
    try:
        learner.load_network_weights(state.get("learner", {}))
    except UserError as err:
        raise UserError(f"init_from={path}: {err} (model=protonet can)") from err
    except (RuntimeError, ValueError, KeyError) as err:
        raise weights_do_not_fit(err, f"init_from={path}") from err
    log.info("initial weights from %s", path)


def load_resume(cfg: DictConfig) -> dict[str, Any]:
    return load_checkpoint(Path(cfg.resume).expanduser(), key="resume")


# keys that may change when a run is resumed; any other override must match the stored config
RESUMABLE = ("train_episodes", "device", "threads", "resume", "overwrite", "paths.", "hydra.")


def config_for_resume(cfg: DictConfig, state: dict[str, Any]) -> DictConfig:
    """The interrupted run's config, with this run's paths, device, threads, ``train_episodes``.

    Any other key given on the command line must equal the stored value (``UserError``)."""
    stored = OmegaConf.create(state["config"])
    given = overridden()
    for key in sorted(given):
        if key.startswith(RESUMABLE):
            continue
        old = OmegaConf.select(stored, key)
        if old != OmegaConf.select(cfg, key):
            was = f"{key}={old}" if not OmegaConf.is_config(old) else f"another {key}"
            raise UserError(f"{key}={given[key]}: resume={cfg.resume} was trained with {was}; "
                            "on resume only train_episodes, device, threads may change")
    with open_dict(stored):
        stored.paths = cfg.paths
        stored.logger = cfg.logger  # this run's own TensorBoard folder
        stored.resume = cfg.resume
        for key in ("train_episodes", "device", "threads"):
            if key in given:
                stored[key] = cfg[key]
    return stored


def overridden() -> dict[str, str]:
    """``{key: value}`` given on the command line (empty outside a Hydra app)."""
    if not HydraConfig.initialized():
        return {}
    pairs = (o.lstrip("+~").split("=", 1) for o in HydraConfig.get().overrides.task)
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


def is_multirun() -> bool:
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point: run ``train`` and return the optimized metric."""
    return cli_.run_task(optimized_metric, cfg)


def optimized_metric(cfg: DictConfig) -> float:
    """Run ``train`` and return ``cfg.optimized_metric`` (the value a sweeper optimizes)."""
    metrics, _ = train(cfg)
    flat = flat_metrics(metrics)
    if cfg.optimized_metric not in flat:
        raise UserError(f"optimized_metric={cfg.optimized_metric}: not a metric of this run "
                        f"(allowed: {', '.join(sorted(flat))})")
    return flat[cfg.optimized_metric]


def cli() -> None:
    """``snnexp-train`` and ``python -m snnexp.train`` (``snnexp.cli.run``)."""
    cli_.run(main)


if __name__ == "__main__":
    cli()
