"""``model=hybrid``: the keys of ``conf/model/hybrid.yaml``, typed, with their allowed values.

The readout's sections are those of ``model=rstdp`` (``neuron``, ``readout``, ``stdp``: the
``LIFParams``, ``ReadoutParams`` and ``STDPParams`` of ``snnexp.models.rstdp``), with their own
defaults in the YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf

from snnexp.models.rstdp.config import NeuronConfig, ReadoutConfig, STDPConfig
from snnexp.schema import bounded, choice

# the option file that holds the defaults (conf/ is packaged beside snnexp/)
YAML = Path(__file__).resolve().parents[2] / "conf" / "model" / "hybrid.yaml"
READOUT_SECTIONS = ("neuron", "readout", "stdp")


@dataclass
class HybridConfig:
    """``model=hybrid`` (``snnexp.models.hybrid.HybridLearner``)."""

    _target_: str = MISSING
    embedding_ckpt: str | None = MISSING
    layer: str = choice("last", "penultimate")
    rule: str = choice("rstdp", "hebbian")
    num_steps: int | None = bounded(1)
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    stdp: STDPConfig = field(default_factory=STDPConfig)


def readout_defaults() -> dict[str, dict[str, Any]]:
    """The readout sections of ``conf/model/hybrid.yaml`` (``neuron``, ``readout``, ``stdp``),
    typed by ``HybridConfig``: keyword arguments of ``LIFParams``, ``ReadoutParams`` and
    ``STDPParams`` for code that builds the readout without Hydra."""
    raw = OmegaConf.load(YAML)
    typed = OmegaConf.merge(OmegaConf.structured(HybridConfig),
                            {k: raw[k] for k in READOUT_SECTIONS})
    return {k: OmegaConf.to_container(typed[k]) for k in READOUT_SECTIONS}
