"""Spiking Prototypical Network: the learner, its embedding networks and their LIF neurons.

- ``learner``: ``ProtoNetLearner`` (episodes, optimizer, spike statistics, checkpoints);
- ``network``: ``SpikingConvNet`` (conv/linear layers of fused LIF neurons) and its ANN twin;
- ``backbones``: the named layer lists (``model.backbone=notebook|snell4``);
- ``lif``: the fused LIF scan; ``surrogate``: spike functions with a known derivative;
- ``recorder``: ``SpikeRecorder``, spike counts and rasters through forward hooks;
- ``config``: ``ProtoNetConfig``, the schema of ``conf/model/protonet.yaml``.
"""

from snnexp.models.protonet.learner import ProtoNetLearner
from snnexp.models.protonet.network import BlockSpec, SpikingConvNet
from snnexp.models.protonet.recorder import SpikeRecorder

__all__ = ["BlockSpec", "ProtoNetLearner", "SpikeRecorder", "SpikingConvNet"]
