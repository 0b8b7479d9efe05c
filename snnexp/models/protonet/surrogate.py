"""Surrogate spike functions whose derivative snnexp knows: the fused LIF scan's contract.

A ``Surrogate`` is what ``model.spike_grad`` builds and ``snntorch.Leaky(spike_grad=...)``
calls: in the forward pass the Heaviside step ``H(x) = [x > 0]`` (``x = v - theta``), in the
backward pass a smooth derivative ``sg'(x)``. The fused scan (``lif.leaky_scan``) runs all
time steps at once only for a ``Surrogate`` and computes ``dL/dv = dL/ds * sg'(x)`` with
``grad_into``; any other spike function (e.g. an ``snntorch.surrogate`` factory) makes the
scan step snnTorch's ``Leaky`` itself, which gives the same results more slowly.

    python -m snnexp.train model.spike_grad.slope=2     # a wider surrogate than the default
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from snntorch import surrogate as snn_surrogate


class Surrogate:
    """A spike function ``H`` with surrogate derivative ``sg'``.

    Args:
        function: snnTorch's autograd function (``x -> H(x)``, backward ``sg'``), the one
            ``snntorch.Leaky`` calls at each step.
    """

    def __init__(self, function: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.function = function

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.function(x)

    def grad_into(self, x: torch.Tensor, grad_spikes: torch.Tensor, out: torch.Tensor) -> None:
        """``out = grad_spikes * sg'(x)`` for ``x = v - theta`` (all ``[T, n]``; ``x`` is a
        scratch buffer that may be overwritten), through the function's autograd backward."""
        with torch.enable_grad():
            x = x.detach().requires_grad_()
            (grad,) = torch.autograd.grad(self.function(x), x, grad_outputs=grad_spikes)
        out.copy_(grad)


class FastSigmoid(Surrogate):
    """``sg'(x) = 1 / (slope * |x| + 1)^2`` (Zenke & Ganguli 2018; snnTorch's ``fast_sigmoid``)."""

    def __init__(self, slope: float) -> None:
        super().__init__(snn_surrogate.fast_sigmoid(slope=slope))
        self.slope = slope

    def grad_into(self, x: torch.Tensor, grad_spikes: torch.Tensor, out: torch.Tensor) -> None:
        """In place on float32, with snnTorch's ops in its order (bit-identical results)."""
        if x.dtype != torch.float32:
            super().grad_into(x, grad_spikes, out)
            return
        x.abs_().mul_(self.slope).add_(1.0)  # grad / (slope * |x| + 1) ** 2
        x.mul_(x)
        torch.div(grad_spikes, x, out=out)

    def __repr__(self) -> str:
        return f"fast_sigmoid(slope={self.slope})"


def fast_sigmoid(slope: float) -> FastSigmoid:
    """The ``model.spike_grad`` factory: ``H`` forward, ``1 / (slope |x| + 1)^2`` backward."""
    return FastSigmoid(slope)
