"""A trained spiking ProtoNet embedding as a NIR graph (Pedersen et al. 2024), built from nir's
own node classes, plus the sidecar that NIR does not carry.

The network (``snnexp.models.protonet.network``) steps snnTorch ``Leaky`` neurons with reset by
subtraction, the reset applied one step after the spike (``reset_delay``)::

    v[t] = beta * v[t-1] + I[t] - theta * s[t-1]        s[t] = H(v[t] - theta)  (v > theta)

NIR 1.0.8's ``LIF`` resets *to* ``v_reset``, so it cannot carry that neuron. Each LIF layer is
written as three nodes with a recurrent edge, which is the same neuron::

    I --> LI --> Threshold(theta) --> s         (s: the layer's spikes)
          ^                     |
          +------ Scale(-theta) <+              (the recurrent edge: s[t-1] at step t)

with NIR's leaky integrator ``tau dv/dt = (v_leak - v) + r * x``. Forward Euler at the step
``dt`` gives ``v[t] = (1 - dt/tau) v[t-1] + (r dt/tau) x[t]``, so ``tau = dt / (1 - beta)``,
``r = tau / dt = 1 / (1 - beta)``, ``v_leak = 0`` reproduce ``v[t] = beta v[t-1] + x[t]`` (the
convention of snnTorch's own ``export_to_nir``); an exact-exponential integrator would decay by
``exp(-dt/tau)`` instead, so a reader must step with forward Euler at ``dt`` (the sidecar's
``dt``). A simulator that reads a recurrent edge with a one-step delay (nirtorch) gives
``x[t] = I[t] - theta s[t-1]``, the equation above. The integrator readout's last layer
(``v[t] = beta v[t-1] + I[t]``, no threshold) is the LI node alone.

Other layers: ``Conv2d`` (batch norm folded in: ``w' = w g / sqrt(var + eps)``,
``b' = (b - mean) g / sqrt(var + eps) + b_bn``), ``Flatten`` + ``Affine`` for a linear layer,
and a 2x2 max-pool over binary spikes as ``SumPool2d(2x2)`` then ``Threshold(0.5)`` (the max of
0/1 values is 1 exactly when their sum exceeds 0.5). A 2x2 average pool (of spikes,
``model.spike_pool=avg``; of the last layer's membranes, ``model.readout_pool=avg``) is
``AvgPool2d``. A max-pool over membranes has no NIR node: ``export_graph`` refuses it in one
line naming the settings that export.

The graph's input is one image ``[C, H, W]`` per step (``encoder=direct``: the same image at
each of ``T`` steps; other encoders: their output at step ``t``); its output at step ``t`` is
the last layer's membrane (``readout=membrane|integrator``) or spikes (``readout=spikes``); the
embedding is the mean over the ``T`` steps, flattened. The sidecar (``export_sidecar``) holds
``T``, ``dt``, the encoder, the readout, the distance, the image shape and the training config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from snnexp.errors import UserError
from snnexp.models.protonet.lif import LeakyIntegrator
from snnexp.models.protonet.network import SpikingConvNet

DT = 1e-3  # seconds per time step in the NIR file (any value works: tau and r scale with it)
SIDECAR_FORMAT = "snnexp-nir-sidecar/1"


def sidecar_path(nir_path: str | Path) -> Path:
    """``model.nir`` -> ``model.json``: the sidecar written beside the graph."""
    return Path(nir_path).with_suffix(".json")


def check_exportable(net: nn.Module) -> None:
    """``UserError`` (one line) for a network NIR cannot represent exactly."""
    if not isinstance(net, SpikingConvNet):
        raise UserError(f"model: a {type(net).__name__} embedding has no NIR export; export "
                        "model=protonet with its own backbones (model.backbone=notebook|snell4)")
    if not net.time_steps:
        raise UserError("model.neuron=relu: the ANN twin has no spiking neurons to export; "
                        "export a model trained with model.neuron=lif")
    last = net.specs[-1]
    if last.pool and net.readout != "spikes" and net.readout_pool == "max":
        raise UserError(f"model.readout={net.readout} with model.readout_pool=max: a max-pool "
                        "over the last layer's membranes has no exact NIR node; export a model "
                        "trained with model.readout_pool=avg (with model.readout=integrator or "
                        "membrane) or model.readout=spikes")
    for lif in net.lifs:
        beta = float(lif.beta.clamp(0, 1))
        if beta >= 1.0:
            raise UserError("model.beta=1: a neuron without leak has no finite NIR time "
                            "constant; export a model trained with model.beta < 1")


def fold_batchnorm(conv: nn.Conv2d, norm: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """Weight ``[O, I, k, k]`` and bias ``[O]`` of ``norm(conv(x))`` as one convolution
    (``norm`` an ``nn.BatchNorm2d`` in eval mode, or ``nn.Identity``)."""
    weight = conv.weight.detach().double()
    bias = conv.bias.detach().double() if conv.bias is not None else \
        torch.zeros(weight.shape[0], dtype=torch.float64)
    if isinstance(norm, nn.BatchNorm2d):
        scale = norm.weight.detach().double() / torch.sqrt(norm.running_var.double() + norm.eps)
        weight = weight * scale[:, None, None, None]
        bias = (bias - norm.running_mean.double()) * scale + norm.bias.detach().double()
    return weight.float().numpy(), bias.float().numpy()


def _neuron_nodes(name: str, lif: nn.Module, shape: tuple[int, ...],
                  nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]],
                  source: str) -> tuple[str, str | None]:
    """Add the LI node (and, for a spiking layer, its Threshold and reset Scale) fed by
    ``source``; return the names of the membrane node and the spike node (``None``: none)."""
    beta = float(lif.beta.detach().clamp(0, 1))
    tau = DT / (1.0 - beta)
    full = lambda value: np.full(shape, value, dtype=np.float64)  # noqa: E731
    nodes[f"{name}.li"] = nir.LI(tau=full(tau), r=full(tau / DT), v_leak=full(0.0))
    edges.append((source, f"{name}.li"))
    if isinstance(lif, LeakyIntegrator):
        return f"{name}.li", None
    theta = float(lif.threshold)
    nodes[f"{name}.spike"] = nir.Threshold(threshold=full(theta))
    nodes[f"{name}.reset"] = nir.Scale(scale=full(-theta))
    edges += [(f"{name}.li", f"{name}.spike"), (f"{name}.spike", f"{name}.reset"),
              (f"{name}.reset", f"{name}.li")]
    return f"{name}.li", f"{name}.spike"


def _pool2d(kind: str) -> nir.NIRNode:
    two = np.array([2, 2])
    cls = nir.AvgPool2d if kind == "avg" else nir.SumPool2d
    return cls(kernel_size=two, stride=two, padding=np.array([0, 0]))


def export_graph(net: SpikingConvNet, input_shape: tuple[int, int, int]) -> nir.NIRGraph:
    """The NIR graph of ``net`` (in eval mode) for one ``input_shape = (C, H, W)`` image per
    step; ``UserError`` where NIR cannot represent it exactly (``check_exportable``)."""
    check_exportable(net)
    net = net.eval()
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type=np.array(input_shape))}
    edges: list[tuple[str, str]] = []
    source, shape = "input", tuple(input_shape)
    with torch.no_grad():
        for i, (spec, op, norm, lif) in enumerate(
                zip(net.specs, net.ops, net.norms, net.lifs, strict=True)):
            block, last = f"block{i}", i == len(net.specs) - 1
            if isinstance(op, nn.Conv2d):
                weight, bias = fold_batchnorm(op, norm)
                nodes[f"{block}.conv"] = nir.Conv2d(
                    input_shape=shape[1:], weight=weight, stride=1, padding=op.padding,
                    dilation=1, groups=1, bias=bias)
                edges.append((source, f"{block}.conv"))
                source = f"{block}.conv"
                shape = tuple(int(d) for d in nodes[source].output_type["output"])
            else:
                linear = op[-1]
                nodes[f"{block}.flatten"] = nir.Flatten(input_type={"input": np.array(shape)},
                                                        start_dim=0, end_dim=-1)
                nodes[f"{block}.affine"] = nir.Affine(
                    weight=linear.weight.detach().float().numpy(),
                    bias=linear.bias.detach().float().numpy())
                edges += [(source, f"{block}.flatten"), (f"{block}.flatten", f"{block}.affine")]
                source, shape = f"{block}.affine", (linear.out_features,)
            membrane, spikes = _neuron_nodes(f"{block}.lif", lif, shape, nodes, edges, source)
            analog = last and net.readout != "spikes"  # the block's output is membranes
            out = membrane if analog else spikes
            if spec.pool:
                kind = net.pool_kinds()[i]
                # a max of membranes is refused above; a max of binary spikes is sum > 0.5
                spike_max = kind == "max" and not analog
                nodes[f"{block}.pool"] = _pool2d("sum" if spike_max else kind)
                edges.append((out, f"{block}.pool"))
                out = f"{block}.pool"
                if spike_max:
                    nodes[f"{block}.pool_spike"] = nir.Threshold(
                        threshold=np.full((shape[0], shape[1] // 2, shape[2] // 2), 0.5))
                    edges.append((out, f"{block}.pool_spike"))
                    out = f"{block}.pool_spike"
                shape = (shape[0], shape[1] // 2, shape[2] // 2)
            source = out
    nodes["output"] = nir.Output(output_type=np.array(shape))
    edges.append((source, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def export_sidecar(cfg: DictConfig, input_shape: tuple[int, ...], embedding_dim: int,
                   source: str) -> dict[str, Any]:
    """What a reader needs beside the graph: time steps, ``dt``, encoder, readout, distance,
    input shape, and the training config (``snnexp.eval`` rebuilds the episodes from it)."""
    model = cfg.model
    return {
        "format": SIDECAR_FORMAT,
        "source": source,
        "num_steps": int(model.num_steps),
        "dt": DT,
        "integration": "forward Euler at dt; recurrent edges read with a one-step delay",
        "input_shape": [int(d) for d in input_shape],
        "encoder": OmegaConf.to_container(cfg.encoder, resolve=True),
        "readout": str(model.readout),
        "spike_pool": str(model.get("spike_pool", "max")),
        "readout_pool": str(model.get("readout_pool", "max")),
        "embedding": "mean over the num_steps outputs of the graph, flattened",
        "embedding_dim": int(embedding_dim),
        "distance": str(model.distance),
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


def write_export(graph: nir.NIRGraph, sidecar: dict[str, Any], path: str | Path) -> Path:
    """Write ``graph`` to ``path`` (``nir.write``) and the sidecar JSON beside it."""
    from snnexp.checkpoint import write_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), graph)
    write_json(sidecar_path(path), sidecar)
    return path


def read_sidecar(nir_path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """The sidecar of ``nir_path``; ``UserError`` naming ``key`` when it is missing."""
    side = sidecar_path(nir_path)
    try:
        data = json.loads(side.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{key}={nir_path}: needs its sidecar {side} (written by python -m "
                        f"snnexp.export) beside it: {err}") from err
    if data.get("format") != SIDECAR_FORMAT:
        raise UserError(f"{key}={nir_path}: {side} is not an snnexp export sidecar")
    return data
