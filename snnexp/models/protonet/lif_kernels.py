"""Compiled (numba) CPU kernels of the fused LIF scan: one pass over memory per direction.

``lif._LeakyScan`` runs each time step as a few whole-tensor torch ops (multiply, add,
subtract, compare: each a pass over the layer's neurons); these kernels do a step's work for a
block of neurons in registers and cache, and the blocks run in parallel. They compute the same
float32 operations in the same order as the torch path (``lif._forward_chunk``,
``lif._adjoint_chunk``, ``surrogate.FastSigmoid.grad_into``), so their results are identical,
which ``tests/test_lif_kernels.py`` checks::

    forward, per neuron (mode 0 subtract, 1 zero, 2 none; s[-1] = 0):
        p    = v[t-1] * (1 - s[t-1])       (mode 1, t > 0; else p = v[t-1], v[-1] = 0)
        v[t] = p * beta + I[t]  [- s[t-1] * theta  (mode 0)]
        s[t] = v[t] > theta
    backward (fast sigmoid surrogate with slope c; k[t] = 1 - s[t-1] for mode 1, else 1):
        g[t] = dL/ds[t] / (c |v[t] - theta| + 1)^2  [+ dL/dv_out[t]]
        a[t] = g[t] + beta * (k[t+1] * a[t+1])     (one fused multiply-add, as torch's add_)

They run on contiguous float32 CPU arrays (``lif.use_kernels`` decides); anything else (CUDA,
float64, another surrogate, a trained beta) keeps the torch path.
"""

from __future__ import annotations

import os

import numba
import numpy as np
import torch
from numba import prange

# numba's own thread pool: its OpenMP layer shares libgomp with torch and resets torch's thread
# count (torch.get_num_threads) to numba's at the first parallel call
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

BLOCK = 512  # neurons per block: their state stays in L1 over all time steps
ONE, ZERO = np.float32(1.0), np.float32(0.0)


@numba.njit(parallel=True, cache=True, nogil=True)
def _forward(cur, static, beta, theta, mode, spikes, mems, save_mem):  # pragma: no cover
    steps, n = spikes.shape
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        width = min(BLOCK, n - lo)
        v = np.zeros(width, np.float32)
        # s: the previous step's spikes; r[0] = H(v[-1] - theta) = 1 when theta < 0
        s = np.full(width, ONE if theta < ZERO and mode == 0 else ZERO, np.float32)
        m = np.empty(width, np.float32)
        for t in range(steps):
            c = cur[0 if static else t, lo:lo + width]
            if mode == 0:
                for k in range(width):
                    m[k] = (v[k] * beta + c[k]) - s[k] * theta
            elif mode == 1:
                for k in range(width):
                    m[k] = (v[k] * (ONE - s[k])) * beta + c[k]
            else:
                for k in range(width):
                    m[k] = v[k] * beta + c[k]
            out = spikes[t, lo:lo + width]
            for k in range(width):
                sp = ONE if m[k] > theta else ZERO
                out[k] = sp
                s[k] = sp
                v[k] = m[k]
            if save_mem:
                mems[t, lo:lo + width] = m


@numba.njit(parallel=True, cache=True, nogil=True)
def _terms(mems, grad_spikes, grad_mems, theta, slope, adj):  # pragma: no cover
    """``adj[t] = dL/ds[t] / (slope |v[t] - theta| + 1)^2 + dL/dv_out[t]``, each operation
    rounded on its own as torch's ops round it (this function is compiled without contraction
    into fused multiply-adds)."""
    steps, n = adj.shape
    has_spikes, has_mems = grad_spikes.shape[0] > 0, grad_mems.shape[0] > 0
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n)
        for t in range(steps):
            for j in range(lo, hi):
                if has_spikes:
                    d = abs(mems[t, j] - theta) * slope + ONE
                    g = grad_spikes[t, j] / (d * d)
                    adj[t, j] = g + grad_mems[t, j] if has_mems else g
                else:
                    adj[t, j] = grad_mems[t, j]


@numba.njit(parallel=True, cache=True, nogil=True, fastmath={"contract"})
def _recurrence(spikes, beta, zero_reset, adj):  # pragma: no cover
    """In place, from the last step back: ``a[t] += beta * (k[t+1] a[t+1])`` as one fused
    multiply-add (torch's ``add_(..., alpha=beta)`` is one on this CPU)."""
    steps, n = adj.shape
    for b in prange((n + BLOCK - 1) // BLOCK):
        lo = b * BLOCK
        hi = min(lo + BLOCK, n)
        for t in range(steps - 2, -1, -1):
            for j in range(lo, hi):
                nxt = adj[t + 1, j] * (ONE - spikes[t, j]) if zero_reset else adj[t + 1, j]
                adj[t, j] = adj[t, j] + beta * nxt


def _threads() -> None:
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def forward(cur: torch.Tensor, static: bool, beta: float, theta: float, mode: int,
            spikes: torch.Tensor, mems: torch.Tensor | None) -> None:
    """Fill ``spikes [T, n]`` (and ``mems [T, n]``) from ``cur [T, n]`` or static ``[n]``."""
    _threads()
    c = cur.numpy().reshape(1, -1) if static else cur.numpy()
    m = mems.numpy() if mems is not None else np.empty((0, 0), np.float32)
    _forward(c, static, np.float32(beta), np.float32(theta), mode, spikes.numpy(), m,
             mems is not None)


def adjoint(mems: torch.Tensor, spikes: torch.Tensor, grad_spikes: torch.Tensor | None,
            grad_mems: torch.Tensor | None, beta: float, theta: float, slope: float,
            zero_reset: bool, adj: torch.Tensor) -> None:
    """``adj [T, n]`` = dL/dv[t] of every step (the module docstring's backward)."""
    _threads()
    empty = np.empty((0, 0), np.float32)
    _terms(mems.numpy(), empty if grad_spikes is None else grad_spikes.numpy(),
           empty if grad_mems is None else grad_mems.numpy(), np.float32(theta),
           np.float32(slope), adj.numpy())
    _recurrence(spikes.numpy(), np.float32(beta), zero_reset, adj.numpy())
