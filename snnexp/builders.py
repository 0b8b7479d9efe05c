"""Build a run's components from its config: device, data splits, samplers, learner.

Shared by ``snnexp.train``, ``snnexp.eval`` and ``snnexp.api`` so that all three construct
things identically.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np
import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class
from hydra.utils import instantiate as hydra_instantiate
from omegaconf import DictConfig, OmegaConf

from snnexp.data.episodes import EpisodeSampler, TransformedSampler
from snnexp.data.pool import ClassPool, Split
from snnexp.errors import UserError
from snnexp.models.base import Learner

log = logging.getLogger(__name__)

# independent seed streams: episodes of one phase never depend on another phase or the model
STREAMS = {"train": 0, "val": 1, "test": 2, "noise": 3, "train_noise": 4, "train_augment": 5}


def phase_seed(seed: int, phase: str) -> int:
    """Seed of one phase's episode generator, derived from the run seed only."""
    return int(np.random.SeedSequence([seed, STREAMS[phase]]).generate_state(1)[0])


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; refuse an absent GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={name}: no CUDA GPU is visible here (allowed: auto, cpu)")
    return torch.device(name)


def instantiate(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that lets a ``UserError`` of the built object through.

    Hydra wraps exceptions raised by a ``_target_`` in ``InstantiationException``; a user error
    (missing data, bad value) must reach ``main()`` as its own one-line message.
    """
    try:
        return hydra_instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__
        if cause is None:
            raise
        raise cause from None


def build_pool(dataset_cfg: DictConfig) -> ClassPool:
    return instantiate(dataset_cfg)


def build_splits(pool: ClassPool, cfg: DictConfig) -> dict[str, Split]:
    """``pool.splits()``; an event pool's splits binned into frames once by the encoder
    (``snnexp.encoding.FramesEncoder.bin``, ``T = model.num_steps``): ``Split.images`` is then
    ``uint8 [N, T, P, H, W]``."""
    splits = pool.splits()
    if not is_event_pool(pool):
        return splits
    encoder = instantiate(cfg.encoder)
    if not getattr(encoder, "events", False):
        raise UserError(f"dataset={pool.name} gives event streams: use encoder=frames (not "
                        f"{type(encoder).__name__})")
    steps = int(cfg.model.num_steps)
    return {name: Split(encoder.bin(split.events, split.sensor_size, steps), split.labels)
            for name, split in splits.items()}


def is_event_pool(pool: ClassPool) -> bool:
    """Whether ``pool`` holds event streams (``snnexp.data.events.EventPool``), not images."""
    return hasattr(pool, "sensor_size")


def build_transformed(sampler: EpisodeSampler | TransformedSampler, node: DictConfig,
                      pool: ClassPool, key: str, seed: int) -> TransformedSampler:
    """``sampler`` with the images of its episodes transformed by the option ``node`` of config
    key ``key`` (also the name of its random stream, ``STREAMS``): a corruption
    (``snnexp.noise``; ``noise``, ``train_noise``) or an augmentation (``snnexp.augment``;
    ``train_augment``); refused for event data."""
    if is_event_pool(pool):
        raise UserError(f"{key}: defined for images; dataset={pool.name} gives event streams "
                        f"(allowed with it: {key}=null)")
    return TransformedSampler(sampler, instantiate(node, seed=phase_seed(seed, key)), key)


def build_sampler(split: Split, way: int, shot: int, query: int, seed: int,
                  phase: str) -> EpisodeSampler:
    return EpisodeSampler(split.images, split.labels, way, shot, query,
                          seed=phase_seed(seed, phase), name=phase)


def build_learner(cfg: DictConfig, input_shape: tuple[int, int, int],
                  device: torch.device) -> Learner:
    """Instantiate ``cfg.model`` with its encoder and, if it uses them, its optimizer and
    learning-rate scheduler (both partials the learner finishes with its parameters)."""
    learner_cls = get_class(cfg.model._target_)
    encoder = instantiate(cfg.encoder)
    extra: dict[str, Any] = {}
    precision = cfg.get("precision") or "fp32"  # a checkpoint from before the key: fp32
    if "precision" in inspect.signature(learner_cls).parameters:
        extra["precision"] = precision
    elif precision != "fp32":
        raise UserError(f"precision={precision}: model={learner_cls.name} computes in NumPy "
                        "(allowed with it: fp32)")
    if getattr(learner_cls, "uses_optimizer", False):
        if cfg.get("optimizer") is None:
            raise UserError(f"optimizer=null: model={learner_cls.name} needs one of "
                            "adam, adamw, sgd")
        extra["optimizer"] = instantiate(cfg.optimizer)
        if cfg.get("scheduler") is not None:
            extra["scheduler"] = instantiate(cfg.scheduler)
    return instantiate(constructor_node(cfg.model, learner_cls), encoder=encoder,
                       input_shape=list(input_shape), device=str(device), seed=int(cfg.seed),
                       **extra)


def constructor_node(node: DictConfig, target: Any) -> DictConfig:
    """``node`` (resolved) without the keys that name no parameter of ``target``.

    Such keys are settings that nested nodes read by interpolation: ``model.beta`` is read by
    ``model.backbone`` (``beta: ${..beta}``), not by the learner. A ``target`` taking
    ``**kwargs`` gets every key."""
    params = inspect.signature(target).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return node
    resolved = OmegaConf.to_container(node, resolve=True)
    return OmegaConf.create({k: v for k, v in resolved.items()
                             if k in params or k.startswith("_")})


def config_to_dict(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
