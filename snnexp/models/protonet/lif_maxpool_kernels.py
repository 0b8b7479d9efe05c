"""Numba kernels of a LIF layer fused with the 2x2 max-pool of its spikes (CPU, float32).

Called by ``snnexp.models.protonet.lif_maxpool``, which documents the equations. The arrays
are channels-last rows: ``cur [Tc, B*H, W*C]`` (``Tc = 1`` for a static input, the same current
every step), pooled spikes and their gradient ``[T, B*Ho, Wo*C]`` (``Ho = H // 2``,
``Wo = W // 2``). One work item is one pair of input rows (``2 * Wo * C`` neurons, whose
state stays in the cache over all ``T`` steps) and one row of pooled outputs; the items run in
parallel (``numba.prange``).

Every elementwise operation is the float32 operation the reference (``lif.leaky_scan`` and
``torch.nn.functional.max_pool2d``) performs, in its order, so pooled spikes and gradients are
bit-identical: ``fma32`` is the fused multiply-add PyTorch's vectorised ``add_(x, alpha=beta)``
runs, and a static input's gradient is summed over time in the order of PyTorch's ``sum``.
Indices are unsigned so that no negative-index wrap-around check keeps LLVM from vectorising
the loops.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

# numba's own worker threads: its OpenMP layer would share torch's OpenMP runtime and reset
# torch's thread count to numba's at its first parallel call
numba.config.THREADING_LAYER = "workqueue"
JIT = dict(cache=True, boundscheck=False, error_model="numpy")
u64 = numba.uint64
ZERO, ONE, TWO = u64(0), u64(1), u64(2)


@intrinsic
def fma32(typingctx, a, b, c):
    """``a * b + c`` with one rounding (``llvm.fma.f32``)."""
    def codegen(context, builder, signature, args):
        return builder.fma(*args)
    return types.float32(types.float32, types.float32, types.float32), codegen


@numba.njit(inline="always", **JIT)
def _lif_step(v, s, cur, n, beta, theta):
    """In place over ``n`` neurons: ``v = beta v + I - theta s``, then ``s = H(v - theta)``."""
    for j in range(n):
        x = v[j] * beta + cur[j]
        x = x - theta * s[j]
        v[j] = x
        s[j] = np.float32(1.0) if x > theta else np.float32(0.0)


@numba.njit(inline="always", **JIT)
def _pool(s0, s1, out, wo_n, c_n):
    """``out[wo, c]`` = the max of the 2x2 window of spikes of rows ``s0``, ``s1``."""
    for wo in range(wo_n):
        b0 = wo * (c_n + c_n)
        b1 = b0 + c_n
        o = wo * c_n
        for c in range(c_n):
            out[o + c] = max(max(s0[b0 + c], s0[b1 + c]), max(s1[b0 + c], s1[b1 + c]))


@numba.njit(inline="always", **JIT)
def _adjoint_q(m0, m1, g, a, q, wo_n, c_n, beta, theta, slope):
    """Window position ``q`` (0..3, row-major) of every window: ``a = beta a + d sg'(v - theta)``
    where ``d`` is the window's gradient if max-pool's backward routes it to this neuron."""
    zero = np.float32(0.0)
    one = np.float32(1.0)
    mine = m0 if q < 2 else m1
    dw = c_n if q % 2 == 1 else u64(0)
    # a neuron is routed to if it spikes and no earlier one of its window does
    before1, before2, before3, first = q < 1, q < 2, q < 3, q == 0
    for wo in range(wo_n):
        b0 = wo * (c_n + c_n)
        b1 = b0 + c_n
        bq = b0 + dw
        o = wo * c_n
        for c in range(c_n):
            n0 = m0[b0 + c] <= theta
            n1 = m0[b1 + c] <= theta
            n2 = m1[b0 + c] <= theta
            n3 = m1[b1 + c] <= theta
            x = mine[bq + c]
            earlier_silent = (n0 | before1) & (n1 | before2) & (n2 | before3)
            routed = ((x > theta) & earlier_silent) | (first & n0 & n1 & n2 & n3)
            gk = g[o + c]
            d = gk if routed else zero
            y = abs(x - theta) * slope + one
            a[bq + c] = fma32(a[bq + c], beta, d / (y * y))


@numba.njit(inline="always", **JIT)
def _sizes(pooled_shape, channels):
    """``T``, work items ``B*Ho``, ``Wo``, ``C`` and the neurons of a row pair ``2*Wo*C`` of
    pooled outputs shaped ``[T, B*Ho, Wo*C]``."""
    c_n = u64(channels)
    wo_n = u64(pooled_shape[2]) // c_n
    return u64(pooled_shape[0]), u64(pooled_shape[1]), wo_n, c_n, wo_n * (c_n + c_n)


@numba.njit(inline="always", **JIT)
def _rows_of(item, height):
    """Work item ``b * Ho + ho`` and its first input row ``b * H + 2 ho``."""
    i, h_n = u64(item), u64(height)
    ho_n = h_n // TWO
    return i, (i // ho_n) * h_n + (i % ho_n) * TWO


@numba.njit(parallel=True, **JIT)
def forward(cur, out, static, height, channels, beta, theta):
    """Fill ``out [T, B*Ho, Wo*C]`` with the pooled spikes of the LIF neurons fed ``cur``."""
    steps, items, wo_n, c_n, n = _sizes(out.shape, channels)
    for item in numba.prange(items):
        i, row = _rows_of(item, height)
        v = np.zeros((2, n), np.float32)
        s = np.zeros((2, n), np.float32)
        for t in range(steps):
            tc = ZERO if static else u64(t)
            _lif_step(v[0], s[0], cur[tc, row], n, beta, theta)
            _lif_step(v[1], s[1], cur[tc, row + ONE], n, beta, theta)
            _pool(s[0], s[1], out[t, i], wo_n, c_n)


@numba.njit(parallel=True, **JIT)
def backward(cur, grad_out, grad_cur, static, height, channels, beta, theta, slope):
    """Fill ``grad_cur`` (shaped as ``cur``; entries outside the pooled rows and columns are
    left as they are) from ``grad_out [T, B*Ho, Wo*C]``: recompute the membranes of a row pair,
    then run the adjoint back in time."""
    steps, items, wo_n, c_n, n = _sizes(grad_out.shape, channels)
    for item in numba.prange(items):
        i, row = _rows_of(item, height)
        v = np.zeros((2, n), np.float32)
        s = np.zeros((2, n), np.float32)
        mems = np.empty((steps, 2, n), np.float32)
        for t in range(steps):
            tc = ZERO if static else u64(t)
            for r in range(TWO):
                _lif_step(v[r], s[r], cur[tc, row + r], n, beta, theta)
                mems[t, r] = v[r]
        a = np.zeros((2, n), np.float32)
        for back in range(steps):
            t = steps - ONE - u64(back)
            for q in range(u64(4)):
                _adjoint_q(mems[t, 0], mems[t, 1], grad_out[t, i], a[q // TWO], q, wo_n, c_n,
                           beta, theta, slope)
            for r in range(TWO):
                if static:  # step t's membranes are no longer needed: keep a[t] in their place
                    mems[t, r] = a[r]
                else:
                    grad_cur[t, row + r, :n] = a[r]
        if static:
            total = _sum_over_time(mems.reshape((steps, TWO * n)))
            for r in range(TWO):
                grad_cur[0, row + r, :n] = total[r * n:(r + 1) * n]


@numba.njit(inline="always", **JIT)
def _sum_over_time(x):
    """``x.sum(0)`` of ``x [T, m]`` in the order of PyTorch's CPU ``sum`` over an outer
    dimension (its cascade: blocks of ``2**p`` rows summed in turn, ``p = max(4,
    ceil(log2 T) // 4)``, block sums carried up 4 levels), so that a static input's gradient is
    bit-identical to the reference's ``torch.sum(a, 0)``."""
    steps, m = u64(x.shape[0]), u64(x.shape[1])
    power = u64(max(4, _ceil_log2(steps) // 4))
    block = ONE << power
    acc = np.zeros((4, m), np.float32)
    i = ZERO
    while i + block <= steps:
        for _ in range(block):
            acc[0] += x[i]
            i += ONE
        for level in range(ONE, u64(4)):
            acc[level] += acc[level - ONE]
            acc[level - ONE] = 0
            if i & ((block - ONE) << (level * power)) != 0:
                break
    while i < steps:
        acc[0] += x[i]
        i += ONE
    for level in range(ONE, u64(4)):
        acc[0] += acc[level]
    return acc[0]


@numba.njit(inline="always", **JIT)
def _ceil_log2(x):
    """c10's ``CeilLog2``: 1 for ``x <= 2``, else the bit length of ``x - 1``."""
    if x <= TWO:
        return 1
    bits, y = 0, x - ONE
    while y:
        y >>= ONE
        bits += 1
    return bits
