"""The named backbones of ``model=protonet``: layer lists built into a ``SpikingConvNet``.

Each builder is the ``_target_`` of a ``conf/model/backbone/<name>.yaml`` node
(``_partial_: true``): Hydra fills the neuron settings from the ``model`` keys, the learner
finishes it with the dataset's ``input_shape``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from snnexp.errors import UserError
from snnexp.models.protonet.network import BlockSpec, SpikingConvNet


def notebook_layers(embedding_dim: int) -> list[BlockSpec]:
    """conv16@5x5-LIF-pool2, conv32@3x3-LIF-pool2, fc(embedding_dim)-LIF (the notebook)."""
    return [BlockSpec("conv", 16, 5, pool=True), BlockSpec("conv", 32, 3, pool=True),
            BlockSpec("linear", embedding_dim)]


def snell4_layers() -> list[BlockSpec]:
    """4 x (conv64@3x3-BN-LIF-pool2) (Snell et al. 2017)."""
    return [BlockSpec("conv", 64, 3, pool=True, batchnorm=True) for _ in range(4)]


# the layer lists by backbone name (for the message of an input too small for one of them)
LAYERS: dict[str, Callable[[], list[BlockSpec]]] = {
    "notebook": lambda: notebook_layers(1), "snell4": snell4_layers}


def notebook(input_shape: tuple[int, int, int], *, embedding_dim: int,
             **neurons: Any) -> SpikingConvNet:
    """``model.backbone=notebook``; ``neurons``: the ``SpikingConvNet`` keyword arguments."""
    return _build("notebook", input_shape, notebook_layers(embedding_dim), neurons)


def snell4(input_shape: tuple[int, int, int], **neurons: Any) -> SpikingConvNet:
    """``model.backbone=snell4``; ``neurons``: the ``SpikingConvNet`` keyword arguments."""
    return _build("snell4", input_shape, snell4_layers(), neurons)


def _build(name: str, input_shape: tuple[int, int, int], layers: list[BlockSpec],
           neurons: dict[str, Any]) -> SpikingConvNet:
    try:
        return SpikingConvNet(tuple(input_shape), layers, **neurons)
    except ValueError as err:
        padding = neurons["padding"]
        pools = ", ".join(f"{other} {sum(s.pool for s in specs())}"
                          for other, specs in LAYERS.items())
        fix = "model.padding=same, " if padding != "same" else ""
        raise UserError(f"model.backbone={name}, model.padding={padding}: {err}; use "
                        f"{fix}a backbone with fewer 2x2 poolings ({pools}) or a larger "
                        "dataset image") from err
