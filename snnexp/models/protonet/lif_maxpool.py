"""A LIF layer and the 2x2 max-pool of its spikes in one CPU kernel (forward and backward).

``leaky_maxpool(lif, cur, num_steps, static)`` returns what ``lif`` (a ``LeakyLayer``, run by
``lif.leaky_scan``) followed by ``max_pool2d(spikes, 2)`` returns, pooled spikes
``[T, B, C, H // 2, W // 2]``, without writing the full-size spikes and membranes
(``[T, B, C, H, W]`` each) to memory: the kernels (``lif_maxpool_kernels``, numba) keep the
state of two input rows in the cache over all ``T`` steps. Equations, with reset by
subtraction and the fast-sigmoid surrogate::

    v[t] = beta * v[t-1] + I[t] - theta * s[t-1],    s[t] = H(v[t] - theta)
    p[t] = max over the 2x2 window of s[t]
    a[t] = dL/dv[t] = g[t] * sg'(v[t] - theta) + beta * a[t+1],   sg'(x) = 1 / (slope |x| + 1)^2
    dL/dI[t] = a[t]                (static input: dL/dI = sum_t a[t])

where ``g[t]`` is ``dL/dp[t]`` on the window's first spiking neuron (row-major; the first
neuron when none spikes, as ``max_pool2d``'s backward sends it) and 0 on the others. The
backward pass recomputes the membranes of a row pair instead of storing them.

Pooled spikes and input gradients are bit-identical to the reference path (tested), the sum
over time of a static input's gradient included: the kernels add in PyTorch's order. The one
exception is a value below float32's normal range, which ``cpu_tuning`` flushes to zero in
PyTorch's threads but not in numba's. ``applies`` says when the kernel reproduces the module:
CPU, float32 membranes, a ``FastSigmoid`` surrogate, reset by subtraction, a fixed scalar beta,
no hooks on the module (``SpikeRecorder`` reads full spike trains through one). numba compiles
the kernels at their first call and caches them next to this module.
"""

from __future__ import annotations

import numpy as np
import torch

from snnexp.models.protonet.lif import LeakyLayer, fusable
from snnexp.models.protonet.surrogate import FastSigmoid

SUBTRACT = 0  # snnTorch's reset_mechanism_val of "subtract"


def applies(lif: torch.nn.Module, cur: torch.Tensor) -> bool:
    """Whether ``leaky_maxpool`` computes ``lif`` + 2x2 max-pool for the conv current ``cur``
    (``[B, C, H, W]`` static or ``[T, B, C, H, W]``)."""
    return (type(lif) is LeakyLayer and fusable(lif) and isinstance(lif.spike_grad, FastSigmoid)
            and int(lif.reset_mechanism_val) == SUBTRACT and not lif.beta.requires_grad
            and float(lif.threshold) > 0 and not lif._forward_hooks
            and not lif._forward_pre_hooks and cur.device.type == "cpu"
            and cur.dtype in (torch.float32, torch.bfloat16, torch.float16)
            and cur.dim() in (4, 5))


def leaky_maxpool(lif: LeakyLayer, cur: torch.Tensor, num_steps: int,
                  static: bool) -> torch.Tensor:
    """Pooled spikes ``[T, B, C, H // 2, W // 2]`` (channels-last per step) of ``lif`` fed
    ``cur`` (``[B, C, H, W]`` when ``static``, else ``[T, B, C, H, W]``); see the module
    docstring. Call only where ``applies(lif, cur)``."""
    params = (float(lif.beta.clamp(0, 1)), float(lif.threshold), lif.spike_grad.slope)
    return _LeakyMaxPool.apply(cur.float(), num_steps, static, *params)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """``[..., C, H, W]`` -> contiguous channels-last rows ``[L, B*H, W*C]`` (``L`` the leading
    dimension, 1 for ``[B, C, H, W]``; a view when ``x`` is channels-last, as conv currents
    are)."""
    x = x.movedim(-3, -1).contiguous()
    return x.view(-1, x.shape[-4] * x.shape[-3], x.shape[-2] * x.shape[-1])


def _from_rows(rows: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The view of ``rows`` as a channels-last tensor of ``shape`` (``[..., C, H, W]``)."""
    *lead, channels, height, width = shape
    return rows.view(*lead, height, width, channels).movedim(-1, -3)


class _LeakyMaxPool(torch.autograd.Function):
    """Autograd function of ``leaky_maxpool``: saves only the input current."""

    @staticmethod
    def forward(ctx, cur, num_steps, static, beta, theta, slope):
        from snnexp.models.protonet import lif_maxpool_kernels as kernels

        *_, batch, channels, height, width = cur.shape
        rows = _rows(cur.detach())
        pooled = (num_steps, batch, channels, height // 2, width // 2)
        out = rows.new_empty((num_steps, batch * (height // 2), (width // 2) * channels))
        _threads()
        kernels.forward(rows.numpy(), out.numpy(), static, height, channels,
                        *map(np.float32, (beta, theta)))
        ctx.save_for_backward(rows)
        ctx.static, ctx.shape = static, cur.shape
        ctx.params = tuple(map(np.float32, (beta, theta, slope)))
        return _from_rows(out, pooled)

    @staticmethod
    def backward(ctx, grad):
        from snnexp.models.protonet import lif_maxpool_kernels as kernels

        (rows,) = ctx.saved_tensors
        channels, height, width = ctx.shape[-3:]
        # rows and columns a 2x2 pool drops (odd H or W) get no gradient
        fill = torch.zeros if height % 2 or width % 2 else torch.empty
        grad_cur = fill(rows.shape, dtype=rows.dtype)
        _threads()
        kernels.backward(rows.numpy(), _rows(grad).numpy(), grad_cur.numpy(), ctx.static,
                         height, channels, *ctx.params)
        return _from_rows(grad_cur, ctx.shape), None, None, None, None, None


def _threads() -> None:
    """Run the kernels on torch's intra-op thread count."""
    import numba

    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
