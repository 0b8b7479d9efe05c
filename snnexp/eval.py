"""Evaluate a trained checkpoint in new settings, into its own run directory.

    python -m snnexp.eval ckpt_path=outputs/2026-01-01/12-00-00 way=3 shot=1
    python -m snnexp.eval ckpt_path=P dataset=mnist paths.data_dir=../shared/data
    python -m snnexp.eval -m ckpt_path=P noise=gaussian noise.std=0,0.1,0.2,0.4   # a noise curve

Keys left ``null`` in ``conf/eval.yaml`` keep the checkpoint's training values, so a plain
``ckpt_path=<run dir>`` reproduces the run's own test. The test is ``snnexp.evaluation.run_test``
(the same episodes, the same pixel and untrained controls); ``split=val`` draws the episodes from
the validation classes instead (the training run's validation episodes, first
``val_episodes`` of them), to choose options without the test; ``noise`` corrupts the support and
query images of every test episode (``snnexp.noise``). ``ckpt_path=<file>.nir`` tests a graph
written by ``snnexp.export`` through ``snnexp.nir_reader`` (its sidecar JSON beside it gives the
training config, the encoder, ``T``, the readout and the distance).
"""

from __future__ import annotations

import logging
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from snnexp import builders, checkpoint, evaluation, nir_export, nir_reader, tuning
from snnexp import cli as cli_
from snnexp.config import CONF_DIR, EvalConfig, check_config, register_configs
from snnexp.schema import check_section

log = logging.getLogger(__name__)
register_configs()

# eval keys that replace the checkpoint's training values when set
OVERRIDABLE = ("way", "shot", "query", "test_episodes", "seed", "device", "threads",
               "precision")


def eval_run_config(cfg: DictConfig, trained: DictConfig) -> DictConfig:
    """The training config with this evaluation's settings (dataset, shape, seed, paths)."""
    run_cfg = trained.copy()
    with open_dict(run_cfg):
        for key in OVERRIDABLE:
            if cfg.get(key) is not None:
                run_cfg[key] = cfg[key]
        if cfg.get("dataset") is not None:
            run_cfg.dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
        run_cfg.paths = OmegaConf.to_container(cfg.paths, resolve=True)
    return run_cfg


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Test ``cfg.ckpt_path`` on ``test_episodes`` episodes; write and return ``metrics.json``."""
    check_section(cfg, EvalConfig, "")
    ckpt = checkpoint.resolve_checkpoint(cfg.ckpt_path, "tested")
    exported = ckpt.suffix == ".nir"  # an exported graph (snnexp.export) with its sidecar
    if exported:
        sidecar = nir_export.read_sidecar(ckpt)
        state, trained = {}, OmegaConf.create(sidecar["config"])
    else:
        state = checkpoint.load_checkpoint(ckpt)
        trained = checkpoint.checkpoint_config(state, ckpt)
    run_cfg = eval_run_config(cfg, trained)
    check_config(run_cfg)
    tuning.configure(run_cfg.threads, cfg.cpu_tuning)
    device = builders.resolve_device(run_cfg.device)
    pool = builders.build_pool(run_cfg.dataset)
    if exported:
        learner = nir_reader.load_learner(ckpt, sidecar, run_cfg, pool.image_shape, device)
    else:
        learner = checkpoint.restore_learner(run_cfg, state, pool.image_shape, device,
                                             f"ckpt_path={ckpt}")
    split = builders.build_splits(pool, run_cfg)[cfg.split]
    sampler: Any = builders.build_sampler(split, run_cfg.way, run_cfg.shot, run_cfg.query,
                                          run_cfg.seed, cfg.split)
    if cfg.get("noise") is not None:
        sampler = builders.build_transformed(sampler, cfg.noise, pool, "noise", run_cfg.seed)
    noise = getattr(sampler, "transform", None)
    log.info("eval %s | model=%s dataset=%s %s classes %d-way %d-shot | noise %s | %s", ckpt,
             learner.name, pool.name, cfg.split, run_cfg.way, run_cfg.shot,
             noise.describe() if noise else None, device)
    result = evaluation.run_test(run_cfg, learner, sampler, pool.image_shape, device)
    metrics = evaluation.metrics_record(
        run_cfg, learner, pool.name, "completed",
        **evaluation.evaluation_sections(ckpt, trained, checkpoint.trained_episodes(state)
                                         if state else None, noise, cfg.split),
        **result)
    evaluation.write_metrics(run_cfg.paths.output_dir, metrics)
    evaluation.log_summary(metrics, run_cfg.paths.output_dir, evaluate_again=False)
    return metrics


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point (``snnexp-eval``): evaluate and return ``test/acc``."""
    return cli_.run_task(lambda c: float(evaluate_checkpoint(c)["test"]["acc"]), cfg)


def cli() -> None:
    """``snnexp-eval`` and ``python -m snnexp.eval`` (``snnexp.cli.run``)."""
    cli_.run(main)


if __name__ == "__main__":
    cli()
