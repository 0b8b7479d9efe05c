"""The test of a learner and what a run records: ``metrics.json``, its metric names, the summary.

``run_test`` tests a learner on fixed episodes beside two controls on the identical episodes:
a pixel-space prototype classifier (``acc_pixel``) and the same learner with its initial
weights (``acc_untrained``). ``metrics_record`` is the one layout of ``metrics.json`` for a
training run (``snnexp.train``) and an evaluation (``snnexp.eval``)::

    model, dataset, encoder, seed, threads, way, shot, query, status
    train_way, train_shot, train_query, train{...}, val{...}     # a training run
    ckpt_path, noise, trained{dataset, way, shot, episodes}      # an evaluation
    test{episodes, wall_s, acc, ci95, acc_pixel, ci95_pixel, ..., per_episode}, spikes{...}

``flat_metrics`` names its scalars ``split/name`` (``test/acc``, ``val/acc_best``), the names
``optimized_metric`` and the loggers use.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from snnexp import builders, hparams
from snnexp.checkpoint import write_json
from snnexp.cli import is_multirun, overridden
from snnexp.data.episodes import TransformedSampler
from snnexp.errors import UserError
from snnexp.layout import METRICS_FILE
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

SPLITS = ("train", "val", "test", "spikes")  # the sections whose scalars flat_metrics names


def run_test(cfg: DictConfig, learner: Any, sampler: Any, input_shape: tuple,
             device: torch.device) -> dict[str, Any]:
    """Test on ``cfg.test_episodes`` episodes with the pixel and untrained controls; return
    ``metrics.json``'s ``test`` and ``spikes`` entries."""
    with torch.random.fork_rng():  # the same initial weights as this run started from
        torch.manual_seed(cfg.seed)
        untrained = builders.build_learner(cfg, input_shape, device)
        untrained.reset_to_untrained()
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
    test.update(learner.neurobench() if hasattr(learner, "neurobench") else {})
    return {"test": test, "spikes": learner.spike_stats()}


def metrics_record(cfg: DictConfig, learner: Any, dataset: str, status: str,
                   **sections: Any) -> dict[str, Any]:
    """``metrics.json`` of a run: the keys every run has, ``status`` (``completed``,
    ``interrupted``), and ``sections`` (``training_sections``, ``evaluation_sections``, the
    ``run_test`` result)."""
    return {"model": learner.name, "dataset": dataset, "encoder": learner.encoding,
            "seed": cfg.seed,
            "threads": torch.get_num_threads(),  # float sums, so the metrics, depend on it
            "way": cfg.way, "shot": cfg.shot, "query": cfg.query, "status": status, **sections}


def training_sections(cfg: DictConfig, trainer: Any) -> dict[str, Any]:
    """The entries of a training run's ``metrics.json`` known after training
    (``trainer``: ``snnexp.loop.MetaTrainer``)."""
    val_last = trainer.val_history[-1] if trainer.val_history else [0, float("nan"), 0.0]
    sampler = trainer.train_sampler
    transforms = sampler.transforms() if isinstance(sampler, TransformedSampler) else {}
    return {
        "train_way": cfg.train_way, "train_shot": cfg.train_shot, "train_query": cfg.train_query,
        "train_noise": transforms.get("train_noise"),
        "train_augment": transforms.get("train_augment"),
        "train": {"episodes": trainer.done, "wall_s": trainer.wall_s,
                  "episodes_per_s": trainer.done / trainer.wall_s if trainer.wall_s else 0.0,
                  **trainer.last_train},
        "val": {"acc": val_last[1], "ci95": val_last[2], "acc_best": trainer.best["acc"],
                "episode_best": trainer.best["episode"], "episodes": cfg.val_episodes,
                "history": trainer.val_history},
    }


def evaluation_sections(ckpt: str | Path, trained: DictConfig, trained_episodes: int | None,
                        noise: Any, split: str) -> dict[str, Any]:
    """The entries of an evaluation's ``metrics.json``: the checkpoint, how it was trained
    (``trained``: its stored config), the input noise (``None`` or ``snnexp.noise``) and the
    classes the episodes came from (``split``: ``test`` or ``val``)."""
    return {"ckpt_path": str(ckpt), "split": split, "noise": noise.describe() if noise else None,
            "trained": {"dataset": trained.dataset.get("name", trained.dataset._target_),
                        "way": trained.train_way, "shot": trained.train_shot,
                        "episodes": trained_episodes}}


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``{"test": {"acc": x, "ci95": y}}`` -> ``{"test/acc": x, "test/acc_ci95": y}`` for the
    scalar leaves (``split/name``; ``ci95_pixel`` -> ``acc_pixel_ci95``)."""
    flat = {}
    for split in SPLITS:
        for key, value in metrics.get(split, {}).items():
            if isinstance(value, (int, float)):
                name = key.replace("ci95", "acc") + "_ci95" if key.startswith("ci95") else key
                flat[f"{split}/{name}"] = float(value)
    return flat


def select_metric(metrics: dict[str, Any], name: str) -> float:
    """The scalar ``name`` of ``flat_metrics`` (``optimized_metric``); ``UserError`` listing
    the names when there is none."""
    flat = flat_metrics(metrics)
    if name not in flat:
        raise UserError(f"optimized_metric={name}: not a metric of this run "
                        f"(allowed: {', '.join(sorted(flat))})")
    return flat[name]


def write_metrics(run_dir: str | Path, metrics: dict[str, Any]) -> Path:
    """Write ``<run_dir>/metrics.json`` atomically; return its path."""
    path = Path(run_dir) / METRICS_FILE
    write_json(path, metrics)
    return path


def log_summary(metrics: dict[str, Any], run_dir: str | Path, evaluate_again: bool) -> None:
    """Log the end-of-run block (``snnexp.report``); ``evaluate_again`` adds the command that
    evaluates the run dir again."""
    command = eval_command(run_dir) if evaluate_again else None
    for line in summary_lines(metrics, run_dir, command):
        log.info("%s", line)


def log_final(logger: Any, cfg: DictConfig, metrics: dict[str, Any], step: int) -> None:
    """The test and spike metrics at the last training ``step``, and the run's HParams."""
    logger.log_scalars({k: v for k, v in flat_metrics(metrics).items()
                        if k.startswith(("test/", "spikes/"))}, step)
    given, names = overridden(), {key: metrics[key] for key in ("model", "dataset", "encoder")}
    logger.log_hparams(hparams.run_hparams(cfg, given, names), hparams.METRICS,
                       hparams.swept_keys(given))
