"""``model=protonet``: the keys of ``conf/model/protonet.yaml``, typed, with their allowed values.

The YAML file holds the defaults; ``snnexp.schema.check_section`` checks a composed ``model``
node against this schema once, before any data is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import MISSING

from snnexp.schema import bounded, choice


@dataclass
class ProtoNetConfig:
    """``model=protonet`` (``snnexp.models.protonet.ProtoNetLearner``).

    ``backbone`` is a ``_target_`` node (``conf/model/backbone/``) that reads the network keys
    below by interpolation (``${..beta}``); the learner itself takes ``num_steps`` and
    ``distance``.
    """

    _target_: str = MISSING
    backbone: Any = MISSING
    neuron: str = choice("lif", "relu")
    padding: str = choice("same", "valid")
    embedding_dim: int = bounded(1)
    num_steps: int = bounded(1)
    beta: float = bounded(0, 1)
    learn_beta: bool = MISSING
    threshold: float = bounded(0, open_low=True)
    readout: str = choice("membrane", "integrator", "spikes")
    spike_pool: str = choice("max", "avg")
    readout_pool: str = choice("max", "avg")
    spike_grad: Any = MISSING  # a `_target_` node: snnexp's surrogates, or any spike function
    distance: str = choice("squared", "euclidean")
