"""Spiking ProtoNets built the way a run builds them: ``conf/model/protonet.yaml`` and a
``conf/model/backbone/`` option, with keyword overrides, instantiated through
``snnexp.builders``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from snnexp.builders import constructor_node, instantiate
from snnexp.encoding import DirectEncoder
from snnexp.models.protonet import ProtoNetLearner

CONF = Path(__file__).resolve().parents[2] / "conf" / "model"


def model_node(backbone: str = "notebook", **overrides: Any):
    """The composed ``model`` node of ``model=protonet model.backbone=<backbone>``."""
    node = OmegaConf.load(CONF / "protonet.yaml")
    del node["defaults"]
    node.backbone = OmegaConf.load(CONF / "backbone" / f"{backbone}.yaml")
    return OmegaConf.merge(node, overrides)


def make_network(input_shape=(1, 8, 8), backbone: str = "notebook",
                 **overrides: Any) -> torch.nn.Module:
    """The embedding network alone (torch seeded with 0)."""
    torch.manual_seed(0)
    node = OmegaConf.to_container(model_node(backbone, **overrides), resolve=True)
    return instantiate(node["backbone"])(input_shape=tuple(input_shape))


def make_learner(input_shape=(1, 8, 8), encoder=None, backbone: str = "notebook",
                 optimizer=None, scheduler=None, precision: str = "fp32",
                 **overrides: Any) -> ProtoNetLearner:
    """A learner with the YAML defaults but ``overrides`` (torch seeded with 0); Adam
    (lr 1e-3) unless another ``optimizer`` partial is given."""
    optimizer = optimizer or functools.partial(torch.optim.Adam, lr=1e-3)
    torch.manual_seed(0)
    node = model_node(backbone, **overrides)
    return instantiate(constructor_node(node, ProtoNetLearner), encoder=encoder or DirectEncoder(),
                       input_shape=list(input_shape), optimizer=optimizer, scheduler=scheduler,
                       precision=precision)
