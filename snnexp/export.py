"""Export a trained spiking ProtoNet embedding as a NIR graph plus a JSON sidecar.

    python -m snnexp.export ckpt_path=outputs/2026-01-01/12-00-00       # -> <run>/export/model.nir
    python -m snnexp.eval ckpt_path=outputs/2026-01-01/12-00-00/export/model.nir

The graph and what maps to what: ``snnexp.nir_export``; reading it back: ``snnexp.nir_reader``.
A setting NIR cannot represent exactly is refused in one line (exit 2) naming the setting that
exports.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from snnexp import builders, checkpoint, nir_export
from snnexp import cli as cli_
from snnexp.config import CONF_DIR, check_config, register_configs
from snnexp.errors import UserError
from snnexp.layout import CHECKPOINT_DIR

log = logging.getLogger(__name__)
register_configs()


def default_out(ckpt: Path) -> Path:
    """``<run>/export/`` for ``<run>/checkpoints/<name>.pt``, else ``export/`` beside the .pt."""
    run = ckpt.parent.parent if ckpt.parent.name == CHECKPOINT_DIR else ckpt.parent
    return run / "export"


def export_checkpoint(cfg: DictConfig) -> Path:
    """Write ``<out>/<name>.nir`` and its sidecar for ``cfg.ckpt_path``; return the .nir path."""
    ckpt = checkpoint.resolve_checkpoint(cfg.ckpt_path, "tested")
    state = checkpoint.load_checkpoint(ckpt, "ckpt_path")
    trained = checkpoint.checkpoint_config(state, ckpt)
    with open_dict(trained):
        trained.paths = OmegaConf.to_container(cfg.paths, resolve=True)
    check_config(trained)
    target = str(trained.model.get("_target_", ""))
    if not target.endswith("ProtoNetLearner"):
        raise UserError(f"ckpt_path={ckpt}: model {target} has no NIR export; export a "
                        "model=protonet run")
    pool = builders.build_pool(trained.dataset)
    learner = checkpoint.restore_learner(trained, state, pool.image_shape, builders.
                                         resolve_device("cpu"), f"ckpt_path={ckpt}")
    net = learner.net.cpu().eval()
    graph = nir_export.export_graph(net, tuple(pool.image_shape))
    out = Path(cfg.out).expanduser() if cfg.out else default_out(ckpt)
    path = out / f"{cfg.name}.nir"
    if path.exists() and not cfg.overwrite:
        raise UserError(f"out={out}: holds {path.name} of an earlier export; give another out= "
                        "or name=, or overwrite=true")
    sidecar = nir_export.export_sidecar(trained, tuple(pool.image_shape), net.embedding_dim,
                                        str(ckpt))
    nir_export.write_export(graph, sidecar, path)
    log.info("exported %s -> %s (%d nodes) and %s", ckpt, path, len(graph.nodes),
             nir_export.sidecar_path(path).name)
    log.info("evaluate it      python -m snnexp.eval %s",
             cli_.override_for_shell("ckpt_path", str(path)))
    return path


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (``snnexp-export``)."""
    cli_.run_task(export_checkpoint, cfg)


def cli() -> None:
    """``snnexp-export`` and ``python -m snnexp.export`` (``snnexp.cli.run``)."""
    cli_.run(main)


if __name__ == "__main__":
    cli()
