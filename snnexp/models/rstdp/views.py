"""Pictures of the R-STDP network for TensorBoard: output spike trains (for the raster of
``snnexp.plots``) and the receptive-field grid.

The grid is a float32 array in ``[0, 1]``, ``[H, W]`` (or ``[3, H, W]`` for RGB filters).
"""

from __future__ import annotations

import numpy as np

from snnexp.models.rstdp.dynamics import LIFParams, lif_init, lif_wta_step


def activity_counts(u: np.ndarray, w: np.ndarray, theta: np.ndarray, gain: float,
                    lif: LIFParams) -> np.ndarray:
    """Output spike trains [T, way] of the first sample of normalised input ``u`` [T, B, D]."""
    state = lif_init((1, w.shape[1]), lif, theta)
    out = np.zeros((u.shape[0], w.shape[1]), np.float32)
    for t in range(u.shape[0]):
        out[t], state = lif_wta_step(u[t, :1] @ (np.float32(gain) * w), state, lif)
    return out


def receptive_field_grid(w: np.ndarray, channels: int, kernel: int) -> np.ndarray:
    """Filters [C*k*k, F] tiled in a square grid with 1-pixel borders, each scaled to [0, 1]."""
    f = w.shape[1]
    cols = int(np.ceil(np.sqrt(f)))
    rows = int(np.ceil(f / cols))
    fields = w.T.reshape(f, channels, kernel, kernel)
    low = fields.min(axis=(1, 2, 3), keepdims=True)
    fields = (fields - low) / np.maximum(fields.max(axis=(1, 2, 3), keepdims=True) - low, 1e-12)
    side = kernel + 1
    grid = np.zeros((channels, rows * side + 1, cols * side + 1), np.float32)
    for i in range(f):
        r, c = divmod(i, cols)
        grid[:, 1 + r * side:1 + r * side + kernel, 1 + c * side:1 + c * side + kernel] = fields[i]
    return grid[0] if channels == 1 else grid
