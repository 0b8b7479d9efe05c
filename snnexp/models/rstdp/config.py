"""The R-STDP learner's config (``conf/model/rstdp.yaml``): schema, parameter tuples, relations.

The config has one section per parameter tuple of the network, key for key::

    model.num_steps     simulation steps per sample
    model.neuron.*   -> LIFParams     (dynamics.py)  LIF constants of both layers
    model.hidden.*   -> HiddenParams  (hidden.py)    convolutional STDP layer
    model.readout.*  -> ReadoutParams (readout.py)   output layer and episode protocol
    model.stdp.*     -> STDPParams    (dynamics.py)  the readout's R-STDP rule

The YAML file holds every default; the dataclasses below hold the types and allowed values
(``snnexp.schema``: checked by ``snnexp.config.check_config``). What one key cannot say alone
(``v_th > v_rest``, weight bounds, the kernel against the image size) is ``check_relations``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from omegaconf import MISSING, OmegaConf

from snnexp.errors import UserError
from snnexp.models.rstdp.dynamics import LIFParams, STDPParams
from snnexp.models.rstdp.hidden import HiddenParams
from snnexp.models.rstdp.readout import ReadoutParams
from snnexp.schema import bounded, choice

# the option file that holds the defaults (conf/ is packaged beside snnexp/)
YAML = Path(__file__).resolve().parents[2] / "conf" / "model" / "rstdp.yaml"


@dataclass
class NeuronConfig:
    """``model.neuron``: ``LIFParams``."""

    v_rest: float = MISSING
    v_reset: float = MISSING
    v_th: float = MISSING
    tau_m: float = bounded(0, open_low=True)
    t_ref: float = bounded(0)
    dt: float = bounded(0, open_low=True)


@dataclass
class HiddenConfig:
    """``model.hidden``: ``HiddenParams``."""

    mode: str = choice("stdp", "random")
    kernel: int = bounded(1)
    stride: int = bounded(1)
    filters: int = bounded(1)
    pool: int = bounded(1)
    gain: float = bounded(0, open_low=True)
    lr: float = bounded(0)
    theta_lr: float = bounded(0)
    tau_pre: float = bounded(0, open_low=True)


@dataclass
class ReadoutConfig:
    """``model.readout``: ``ReadoutParams``."""

    gain: float = bounded(0, open_low=True)
    epochs: int = bounded(0)
    batch: int = bounded(0)
    punishment: float = MISSING
    baseline_rate: float = bounded(0)
    w_init: float = MISSING
    w_noise: float = bounded(0)
    normalize: str = choice("l2", "l1", "none")
    theta_lr: float = bounded(0)


@dataclass
class STDPConfig:
    """``model.stdp``: ``STDPParams``."""

    tau_plus: float = bounded(0, open_low=True)
    tau_minus: float = bounded(0, open_low=True)
    tau_e: float = bounded(0, open_low=True)
    a_plus: float = bounded(0)
    a_minus: float = bounded(0)
    eta: float = bounded(0)
    w_min: float = MISSING
    w_max: float = MISSING


@dataclass
class RSTDPConfig:
    """``model=rstdp`` (see ``snnexp.models.rstdp.RSTDPLearner``)."""

    _target_: str = MISSING
    num_steps: int = bounded(1)
    neuron: NeuronConfig = field(default_factory=NeuronConfig)
    hidden: HiddenConfig = field(default_factory=HiddenConfig)
    readout: ReadoutConfig = field(default_factory=ReadoutConfig)
    stdp: STDPConfig = field(default_factory=STDPConfig)


class RSTDPParams(NamedTuple):
    """The learner's parameters, one tuple per config section."""

    num_steps: int
    neuron: LIFParams
    hidden: HiddenParams
    readout: ReadoutParams
    stdp: STDPParams


# each section and the tuple it becomes (their fields are the same names, in the same order)
SECTIONS: dict[str, tuple[type, type]] = {
    "neuron": (NeuronConfig, LIFParams),
    "hidden": (HiddenConfig, HiddenParams),
    "readout": (ReadoutConfig, ReadoutParams),
    "stdp": (STDPConfig, STDPParams),
}


def make_params(num_steps: int, neuron: Mapping[str, Any], hidden: Mapping[str, Any],
                readout: Mapping[str, Any], stdp: Mapping[str, Any]) -> RSTDPParams:
    """The parameter tuples of the config sections, each built by keyword (a missing or
    unknown key raises ``TypeError`` naming it)."""
    return RSTDPParams(int(num_steps), LIFParams(**neuron), HiddenParams(**hidden),
                       ReadoutParams(**readout), STDPParams(**stdp))


def default_config() -> dict[str, Any]:
    """The defaults of ``conf/model/rstdp.yaml`` as keyword arguments of ``make_params``
    (typed by ``RSTDPConfig``): for code that builds the network without Hydra."""
    raw = OmegaConf.load(YAML)
    keys = {k: raw[k] for k in raw if k not in ("defaults", "_target_")}
    typed = OmegaConf.merge(OmegaConf.structured(RSTDPConfig), keys)
    return {k: v for k, v in OmegaConf.to_container(typed).items() if k != "_target_"}


def _fail(key: str, value: Any, allowed: str) -> UserError:
    return UserError(f"model.{key}={value}: must be {allowed}")


def check_relations(p: RSTDPParams, input_shape: tuple[int, ...]) -> None:
    """Raise ``UserError`` for values that are allowed one by one (``RSTDPConfig``) but not
    together, or not for images of ``input_shape`` ``(C, H, W)``."""
    if not p.neuron.v_th > p.neuron.v_rest:
        raise _fail("neuron.v_th", p.neuron.v_th, f"> model.neuron.v_rest={p.neuron.v_rest}")
    if not p.stdp.w_max > p.stdp.w_min:
        raise _fail("stdp.w_max", p.stdp.w_max, f"> model.stdp.w_min={p.stdp.w_min}")
    if not p.stdp.w_min <= p.readout.w_init <= p.stdp.w_max:
        raise _fail("readout.w_init", p.readout.w_init,
                    f"in [model.stdp.w_min, model.stdp.w_max] = [{p.stdp.w_min}, {p.stdp.w_max}]")
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise UserError(f"input_shape={input_shape}: must be (C, H, W) with positive sizes")
    side = min(input_shape[1:])
    if p.hidden.kernel > side:
        raise _fail("hidden.kernel", p.hidden.kernel, f"<= the image side {side}")
    positions = (side - p.hidden.kernel) // p.hidden.stride + 1
    if p.hidden.pool > positions:
        raise _fail("hidden.pool", p.hidden.pool, f"<= {positions} hidden positions per side")

