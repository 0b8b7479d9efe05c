"""Run an exported NIR graph (``snnexp.nir_export``) in PyTorch, independently of the network
code that trained it: nirtorch's graph interpreter (``nirtorch.nir_to_torch``) with a node map.

nirtorch 2.6 wires the nodes in topological order, sums the inputs of a node, keeps each
stateful module's state between calls and feeds a recurrent edge its source's output of the
previous call (one step of delay: the reset edge of a LIF layer). Its own maps serve
``Conv2d``, ``SumPool2d`` (``LPPool2d`` with ``p = 1``) and ``AvgPool2d``; ``NODE_MAP`` adds:

- ``LI`` -> ``EulerLI``: NIR's ``tau dv/dt = (v_leak - v) + r x`` stepped with forward Euler at
  the sidecar's ``dt``: ``v[t] = v[t-1] + dt/tau (v_leak - v[t-1] + r x[t])``, computed as
  ``a v[t-1] + b x[t] + c`` with ``a = 1 - dt/tau``, ``b = r dt/tau``, ``c = dt/tau v_leak``
  (coefficients in float64, then the tensor's dtype).
- ``Threshold`` -> ``x > threshold`` (NIR: ``z = 1`` where ``v > v_thr``).
- ``Scale`` -> ``x * scale``.
- ``Affine`` -> ``nn.Linear`` with the node's bias (nirtorch 2.6's default map assigns the bias
  to ``weight.bias``, so the layer would keep a random one).
- ``Flatten`` -> ``nn.Flatten(start_dim + 1, ...)``: NIR's dimensions exclude the batch.

snnTorch 1.0's ``import_from_nir`` and Norse 1.1's ``from_nir`` read ``LIF`` nodes only, as
neurons that reset to a value, and have no map for ``LI``, ``Threshold`` or ``Scale``; neither
reads these graphs as they are.

``NIRStepper`` runs a graph over ``T`` steps and records every node's output (the spikes of
every layer); ``NIRLearner`` is a ``Learner`` over it (``python -m snnexp.eval
ckpt_path=<file.nir>``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nir
import nirtorch
import numpy as np
import torch
from torch import nn

from snnexp.models.base import Learner
from snnexp.prototypes import prototype_logits


class EulerLI(nn.Module):
    """NIR ``LI`` stepped with forward Euler at ``dt`` (see the module docstring)."""

    def __init__(self, node: nir.LI, dt: float) -> None:
        super().__init__()
        rate = dt / np.asarray(node.tau, dtype=np.float64)
        for name, value in (("a", 1.0 - rate), ("b", np.asarray(node.r) * rate),
                            ("c", rate * np.asarray(node.v_leak))):
            self.register_buffer(name, torch.from_numpy(np.asarray(value, dtype=np.float64)))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        a, b, c = (t.to(x.dtype) for t in (self.a, self.b, self.c))
        v = b * x + c if state is None else a * state + b * x + c
        return v, v


class Threshold(nn.Module):
    """NIR ``Threshold``: ``1.0`` where ``x > threshold``, else ``0.0``."""

    def __init__(self, node: nir.Threshold) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.from_numpy(np.asarray(node.threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > self.threshold.to(x.dtype)).to(x.dtype)


class Scale(nn.Module):
    """NIR ``Scale``: ``x * scale``."""

    def __init__(self, node: nir.Scale) -> None:
        super().__init__()
        self.register_buffer("scale", torch.from_numpy(np.asarray(node.scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale.to(x.dtype)


def _affine(node: nir.Affine) -> nn.Linear:
    linear = nn.Linear(node.weight.shape[1], node.weight.shape[0])
    linear.weight.data = torch.as_tensor(np.asarray(node.weight), dtype=torch.float32)
    linear.bias.data = torch.as_tensor(np.asarray(node.bias), dtype=torch.float32)
    return linear


def node_map(dt: float) -> dict[type, Any]:
    """The nirtorch node map for graphs written by ``snnexp.nir_export`` at step ``dt``."""
    return {
        nir.LI: lambda node: EulerLI(node, dt),
        nir.Threshold: Threshold,
        nir.Scale: Scale,
        nir.Affine: _affine,
        nir.Flatten: lambda node: nn.Flatten(node.start_dim + 1, node.end_dim),
    }


def load_module(graph: nir.NIRGraph | str | Path, dt: float) -> torch.fx.GraphModule:
    """The graph as a nirtorch module: ``out, state = module(x, state)`` per time step."""
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.read(str(graph))
    return nirtorch.nir_to_torch(graph, node_map(dt))


class NIRStepper:
    """Run a NIR graph over time steps; optionally record the output of every node.

    Args:
        graph: the graph, or a ``.nir`` file. dt: the sidecar's step.
    """

    def __init__(self, graph: nir.NIRGraph | str | Path, dt: float) -> None:
        self.module = load_module(graph, dt)

    def to(self, *args: Any) -> NIRStepper:
        self.module = self.module.to(*args)
        return self

    def run(self, inputs: torch.Tensor, num_steps: int, static: bool,
            record: bool = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Step the graph ``num_steps`` times from a zero state.

        Args:
            inputs: ``[B, ...]`` when ``static`` (the same input every step), else
                ``[T, B, ...]``.
            record: also return every node's output per step.

        Returns:
            outputs ``[T, B, ...]`` and ``{node name: [T, B, ...]}`` (empty unless ``record``;
            names as nirtorch sanitises them: ``block0_lif_spike``).
        """
        recorded: dict[str, list[torch.Tensor]] = {}
        hooks = [module.register_forward_hook(_recorder(recorded, name))
                 for name, module in self.module.named_children()] if record else []
        state, outs = None, []
        try:
            for t in range(num_steps):
                out, state = self.module(inputs if static else inputs[t], state)
                outs.append(out)
        finally:
            for hook in hooks:
                hook.remove()
        return torch.stack(outs), {k: torch.stack(v) for k, v in recorded.items()}


def _recorder(recorded: dict[str, list[torch.Tensor]], name: str) -> Any:
    """A forward hook appending the module's output (the first of a ``(value, state)`` pair)."""
    def hook(module: nn.Module, args: Any, out: Any) -> None:
        recorded.setdefault(name, []).append(out[0] if isinstance(out, tuple) else out)
    return hook


class NIRLearner(Learner):
    """A ProtoNet whose embedding is an exported NIR graph (no training).

    ``embed``: encode the images as the sidecar says (``encoder``, ``num_steps``), step the
    graph, take the time-mean of its outputs, flatten; ``predict``: negative distances to the
    class prototypes (``snnexp.prototypes``, the sidecar's ``distance``).
    """

    name = "protonet"

    def __init__(self, nir_path: str | Path, sidecar: dict[str, Any], encoder: Any,
                 device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.stepper = NIRStepper(nir_path, float(sidecar["dt"])).to(self.device)
        self.encoder, self.sidecar = encoder, sidecar
        self.num_steps, self.distance = int(sidecar["num_steps"]), str(sidecar["distance"])

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` images -> ``[B, D]`` embeddings."""
        images = images.to(self.device)
        static = getattr(self.encoder, "static", False)
        x = images if static else self.encoder(images, self.num_steps)
        outs, _ = self.stepper.run(x, self.num_steps, static)
        return outs.mean(0).flatten(1)

    def predict(self, support_x: Any, support_y: Any, query_x: Any) -> torch.Tensor:
        support_x = torch.as_tensor(support_x, dtype=torch.float32, device=self.device)
        query_x = torch.as_tensor(query_x, dtype=torch.float32, device=self.device)
        support_y = torch.as_tensor(support_y, dtype=torch.int64, device=self.device)
        embeddings = self.embed(torch.cat([support_x, query_x]))
        n_support = support_x.shape[0]
        return prototype_logits(embeddings[:n_support], support_y, embeddings[n_support:],
                                int(support_y.max()) + 1, self.distance)

    def meta_train_step(self, episode: Any) -> dict[str, float]:
        raise NotImplementedError("an exported NIR graph is not trained")

    def spike_stats(self) -> dict[str, float]:
        """Nothing counted: the activity figures of a run come from its own test."""
        return {}

    def reset_spike_stats(self) -> None:
        """Nothing to reset."""

    @property
    def encoding(self) -> str:
        return type(self.encoder).__name__

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to load: the weights are the graph's."""


def load_learner(nir_path: str | Path, sidecar: dict[str, Any], cfg: Any,
                 image_shape: tuple[int, ...], device: torch.device) -> NIRLearner:
    """The ``NIRLearner`` of an exported graph, its encoder built from ``cfg.encoder``;
    ``UserError`` when the test images do not have the exported input shape."""
    from snnexp.builders import instantiate
    from snnexp.errors import UserError

    if list(image_shape) != list(sidecar["input_shape"]):
        raise UserError(f"ckpt_path={nir_path}: exported for images {sidecar['input_shape']} "
                        f"(C, H, W), the dataset gives {list(image_shape)}")
    return NIRLearner(nir_path, sidecar, instantiate(cfg.encoder), device)
