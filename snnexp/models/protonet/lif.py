"""A fused LIF scan over all time steps with snnTorch ``Leaky`` semantics, and the layer
modules that run it.

``leaky_scan(lif, cur, num_steps, static)`` runs the neurons of an ``snntorch.Leaky`` module
``lif`` over ``T`` steps and returns the same spikes and membranes as stepping ``lif`` in a
Python loop, with the same gradients, but without autograd recording ~10 tensors per step:

- forward: a loop of in-place ops on preallocated ``[T, ...]`` outputs (no graph);
- backward: the surrogate derivative of all steps at once (``Surrogate.grad_into`` on the
  saved membranes), then one linear adjoint recurrence back in time.

Semantics (``snntorch.Leaky`` 1.0 with its defaults ``reset_delay=True``,
``graded_spikes_factor=1``, scalar ``beta`` clamped to ``[0, 1]``)::

    r[t] = H(v[t-1] - theta)                        (detached; v[-1] = 0)
    subtract: v[t] = beta * v[t-1] + I[t] - r[t] * theta
    zero:     v[t] = beta * (1 - r[t]) * v[t-1] + I[t]
    none:     v[t] = beta * v[t-1] + I[t]
    s[t] = H(v[t] - theta)   forward; backward ds/dv = the surrogate's sg'(v[t] - theta)

so ``r[t] = s[t-1]``. With ``a[t] = dL/dv[t]`` (total), the backward pass is::

    a[t] = dL/dv_out[t] + dL/ds[t] * sg'(v[t] - theta) + beta * k[t+1] * a[t+1]
    dL/dI[t] = a[t]                  (static input: dL/dI = sum_t a[t])
    dL/dbeta = sum_t a[t] * k[t] * v[t-1]

with ``k[t] = 1 - r[t]`` for ``zero`` and ``1`` otherwise. The scan is fused only when the
spike function is a ``snnexp.models.protonet.surrogate.Surrogate`` (forward ``H``, a known
derivative); other modules (another spike function, per-neuron beta, graded spikes, learnable
threshold, inhibition, state quantisation, no reset delay) run through ``step_leaky``.
"""

from __future__ import annotations

import torch
from snntorch import Leaky

from snnexp.models.protonet.surrogate import Surrogate

RESET_MODES = {0: "subtract", 1: "zero", 2: "none"}


def fusable(lif: Leaky) -> bool:
    """Whether ``leaky_scan`` reproduces ``lif`` exactly (else it steps ``lif`` itself)."""
    return (isinstance(lif, Leaky) and isinstance(lif.spike_grad, Surrogate)
            and lif.beta.numel() == 1 and lif.threshold.numel() == 1
            and not lif.threshold.requires_grad and lif.reset_delay and not lif.inhibition
            and not lif.state_quant and not lif.init_hidden
            and not lif.graded_spikes_factor.requires_grad
            and float(lif.graded_spikes_factor) == 1.0
            and int(lif.reset_mechanism_val) in RESET_MODES)


class LeakyLayer(Leaky):
    """``snntorch.Leaky`` neurons run over all time steps in one call (``leaky_scan``).

    ``forward(cur, num_steps, static, keep_mem)`` -> spikes ``[T, ...]`` and membranes
    ``[T, ...]`` (``None`` unless ``keep_mem``); ``cur`` is ``[T, ...]``, or ``[...]`` when
    ``static`` (the same current each step). A forward hook on the module sees a whole
    sequence (``snnexp.models.protonet.recorder``). Parameters and state-dict keys are those
    of ``snntorch.Leaky``.
    """

    fires = True  # its spikes are the layer's output (counted, drawn in rasters)

    def forward(self, cur: torch.Tensor, num_steps: int, static: bool = False,  # type: ignore[override]
                keep_mem: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        # membranes integrate in at least float32 whatever the precision of the synaptic op
        # (bf16 autocast): a bf16 membrane would lose small currents against a large potential
        if cur.dtype in (torch.bfloat16, torch.float16):
            cur = cur.float()
        return leaky_scan(self, cur, num_steps, static, keep_mem)


class LeakyIntegrator(LeakyLayer):
    """A non-spiking readout layer: ``v[t] = beta * v[t-1] + I[t]`` (``reset_mechanism="none"``);
    its membranes are the output, its threshold crossings are neither counted nor drawn."""

    fires = False


def leaky_scan(lif: Leaky, cur: torch.Tensor, num_steps: int, static: bool,
               keep_mem: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run ``lif`` over time from a zero membrane.

    Args:
        lif: the ``snntorch.Leaky`` module (its beta, threshold, surrogate and reset).
        cur: input current ``[T, ...]``, or ``[...]`` when ``static`` (the same each step).
        num_steps: ``T``. keep_mem: also return the membranes.

    Returns:
        spikes ``[T, ...]`` (float 0/1) and membranes ``[T, ...]`` (``None`` unless
        ``keep_mem``), as ``lif`` stepped in a loop would give them.
    """
    if not fusable(lif):
        return step_leaky(lif, cur, num_steps, static, keep_mem)
    beta = lif.beta.clamp(0, 1)
    grad = torch.is_grad_enabled() and (cur.requires_grad or beta.requires_grad)
    perm = _dense_order(cur)  # e.g. channels-last: scan the memory as it lies, no copy
    spikes, mems = _LeakyScan.apply(cur.permute(perm), beta, lif.threshold, lif.spike_grad,
                                    num_steps, static, int(lif.reset_mechanism_val),
                                    keep_mem, keep_mem or grad)
    back = [0] + [1 + perm.index(d) for d in range(cur.dim())] if static else \
        [perm.index(d) for d in range(cur.dim())]
    return spikes.permute(back), (mems.permute(back) if keep_mem else None)


def _dense_order(t: torch.Tensor) -> list[int]:
    """Dimension order in which ``t`` is contiguous (identity if none; the scan then copies).

    The time dimension (dim 0 of a non-static input) must stay outermost."""
    order = sorted(range(t.dim()), key=lambda d: (-t.stride(d), d))
    if order and order[0] != 0 or not t.permute(order).is_contiguous():
        return list(range(t.dim()))
    return order


def step_leaky(lif: Leaky, cur: torch.Tensor, num_steps: int, static: bool,
               keep_mem: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The reference: ``lif`` stepped in a Python loop (same signature as ``leaky_scan``)."""
    mem = torch.zeros(cur.shape if static else cur.shape[1:], dtype=cur.dtype,
                      device=cur.device)
    spikes, mems = [], []
    for cur_t in ([cur] * num_steps if static else cur.unbind(0)):
        spk, mem = Leaky.forward(lif, cur_t, mem)
        spikes.append(spk)
        if keep_mem:
            mems.append(mem)
    return torch.stack(spikes), (torch.stack(mems) if keep_mem else None)


class _LeakyScan(torch.autograd.Function):
    """Autograd function of ``leaky_scan`` (see the module docstring for the equations).

    Works on ``[T, M]`` (``[M]`` if static) views, ``CHUNK`` neurons at a time, so that one
    chunk's state stays in the CPU cache over all time steps and no temporary exceeds a few MB
    (larger ones are fresh ``mmap`` pages, zero-filled by the kernel at every allocation).
    """

    @staticmethod
    def forward(ctx, cur, beta, threshold, spike_grad, num_steps, static, mode, keep_mem,
                save_mem):
        cur = cur.contiguous()
        cur2 = cur.view(-1) if static else cur.view(num_steps, -1)
        size = cur2.shape[-1]
        spikes = cur.new_empty((num_steps, size))
        mems = cur.new_empty((num_steps, size)) if save_mem else None
        theta = float(threshold)
        for lo in range(0, size, CHUNK):
            hi = min(lo + CHUNK, size)
            _forward_chunk(cur2[lo:hi] if static else cur2[:, lo:hi], spikes[:, lo:hi],
                           None if mems is None else mems[:, lo:hi], beta, theta, static, mode)
        ctx.save_for_backward(spikes, mems, beta, threshold)
        ctx.set_materialize_grads(False)  # an unused output costs no zero-filled gradient
        ctx.spike_grad, ctx.static, ctx.mode, ctx.shape = spike_grad, static, mode, cur.shape
        out_shape = (num_steps, *(cur.shape if static else cur.shape[1:]))
        return spikes.view(out_shape), (mems.view(out_shape) if keep_mem else cur.new_empty(0))

    @staticmethod
    def backward(ctx, grad_spikes, grad_mems):
        spikes, mems, beta, threshold = ctx.saved_tensors
        steps, size = spikes.shape
        grad_spikes = None if grad_spikes is None else grad_spikes.reshape(steps, size)
        grad_mems = None if grad_mems is None or not grad_mems.numel() else \
            grad_mems.reshape(steps, size)
        grad_cur = spikes.new_empty(size if ctx.static else (steps, size))
        grad_beta = beta.new_zeros((), dtype=mems.dtype) if ctx.needs_input_grad[1] else None
        scratch = mems.new_empty((2 if ctx.static else 1, steps, min(CHUNK, size)))
        for lo in range(0, size, CHUNK):
            hi = min(lo + CHUNK, size)
            adj = scratch[1, :, :hi - lo] if ctx.static else grad_cur[:, lo:hi]
            if grad_spikes is None:
                adj.copy_(grad_mems[:, lo:hi])
            else:
                _surrogate_into(ctx.spike_grad, mems[:, lo:hi], threshold,
                                grad_spikes[:, lo:hi], adj, scratch[0, :, :hi - lo])
                if grad_mems is not None:
                    adj.add_(grad_mems[:, lo:hi])
            keep = (1.0 - spikes[:, lo:hi]) if ctx.mode == 1 else None  # keep[t] = 1 - r[t+1]
            _adjoint_chunk(adj, keep, float(beta))
            if grad_beta is not None:  # sum_t a[t] k[t] v[t-1]
                prev = mems[:-1, lo:hi] if keep is None else mems[:-1, lo:hi] * keep[:-1]
                grad_beta += torch.tensordot(adj[1:], prev, dims=2)
            if ctx.static:
                torch.sum(adj, 0, out=grad_cur[lo:hi])
        grad_beta = None if grad_beta is None else grad_beta.to(beta.dtype).reshape(beta.shape)
        return grad_cur.view(ctx.shape), grad_beta, None, None, None, None, None, None, None


CHUNK = 1 << 15  # neurons per chunk: ~128 KB per time slice, a few MB over 50 steps


def _forward_chunk(cur: torch.Tensor, spikes: torch.Tensor, mems: torch.Tensor | None,
                   beta: torch.Tensor, theta: float, static: bool, mode: int) -> None:
    """Fill ``spikes [T, n]`` (and ``mems``) of one chunk of neurons; ``cur`` ``[T, n]``/``[n]``."""
    steps, n = spikes.shape
    prev = cur.new_zeros(n)
    state = None if mems is not None else cur.new_empty(n)
    reset0 = theta < 0  # r[0] = H(v[-1] - theta) with v[-1] = 0
    spike_rows = spikes.unbind(0)
    mem_rows = mems.unbind(0) if mems is not None else None
    cur_rows = [cur] * steps if static else cur.unbind(0)
    for t in range(steps):
        mem = mem_rows[t] if mem_rows is not None else state
        if mode == 1 and t > 0:  # zero: v <- (1 - r) v before the leak
            prev = prev * (1.0 - spike_rows[t - 1])
        torch.mul(prev, beta, out=mem)
        mem.add_(cur_rows[t])
        if mode == 0 and t > 0:  # subtract: v <- v - r theta
            mem.sub_(spike_rows[t - 1], alpha=theta)
        elif mode == 0 and reset0:
            mem.sub_(theta)
        torch.gt(mem, theta, out=spike_rows[t])
        if mems is None:  # keep the state in its own buffer
            prev, state = mem, prev if t > 0 else cur.new_empty(n)
        else:
            prev = mem


def _adjoint_chunk(adj: torch.Tensor, keep: torch.Tensor | None, beta: float) -> None:
    """In place ``a[t] += beta * k[t+1] * a[t+1]`` from the last step back; ``adj [T, n]``."""
    rows = adj.unbind(0)
    for t in range(len(rows) - 2, -1, -1):
        rows[t].add_(rows[t + 1] if keep is None else rows[t + 1] * keep[t], alpha=beta)


def _surrogate_into(spike_grad: Surrogate, mems: torch.Tensor, threshold: torch.Tensor,
                    grad_spikes: torch.Tensor, out: torch.Tensor, scratch: torch.Tensor) -> None:
    """``out = grad_spikes * sg'(mems - threshold)``, all steps of a chunk at once."""
    spike_grad.grad_into(torch.sub(mems, threshold, out=scratch), grad_spikes, out)
