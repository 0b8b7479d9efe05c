"""TensorBoard figures of spiking activity: spike rasters and membrane traces.

Figures are ``matplotlib.figure.Figure`` objects drawn with the Agg canvas, never registered
with ``pyplot``: nothing global keeps them alive, and ``figure_to_rgb`` renders one into the
``[3, H, W]`` image TensorBoard's Images tab shows. Each figure is ``FIG_WIDTH`` inches wide at
``DPI`` dots per inch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FIG_WIDTH, FIG_HEIGHT, DPI = 6.0, 4.0, 100
PANEL_WIDTH = 1.6  # inches per raster panel, at least (titles of 3 lines at 8 pt)
MAX_NEURONS = 128  # neurons drawn in a raster panel; more firing ones are subsampled evenly
MAX_TRACES = 8  # membrane traces drawn


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """Indices of ``min(n, k)`` neurons spread evenly over ``0..n-1`` (all of them if n <= k)."""
    if n <= k:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, k).round().astype(int))


def raster_figure(layers: dict[str, Any], max_neurons: int = MAX_NEURONS) -> Any:
    """Spike raster of one sample: one panel per layer, time step on x, neuron index on y.

    Args:
        layers: ``{name: spikes [T, ...]}`` in order (input to output); the trailing axes are
            flattened to ``N`` neurons. A tick marks a spike of neuron ``n`` at step ``t``.
        max_neurons: at most this many neurons per panel: of the neurons that fire at least
            once, all of them or that many evenly spaced, each drawn at its own index.

    Each title gives the layer's ``N``, how many of its neurons fire and how many of those are
    drawn, and its firing rate over all ``N`` neurons and ``T`` steps, ``sum(s) / (N * T)``
    spikes per neuron per step.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # wider than FIG_WIDTH beyond 3 panels, so that each panel's title fits above it
    width = max(FIG_WIDTH, PANEL_WIDTH * len(layers))
    fig = Figure(figsize=(width, FIG_HEIGHT), dpi=DPI, layout="constrained")
    axes = fig.subplots(1, len(layers), squeeze=False)[0]
    for ax, (name, spikes) in zip(axes, layers.items(), strict=True):
        flat = np.asarray(spikes, dtype=np.float32).reshape(len(spikes), -1)  # [T, N]
        steps, n = flat.shape
        firing = np.flatnonzero(flat.sum(axis=0) > 0)
        shown = firing[evenly_spaced(len(firing), max_neurons)]
        t, row = np.nonzero(flat[:, shown] > 0)
        ax.scatter(t, shown[row], s=30 if len(shown) <= 32 else 10, marker="|",
                   linewidths=1.2, color="black")
        ax.set_xlim(-0.5, steps - 0.5)
        ax.set_ylim(-0.5, n - 0.5)
        ax.set_xlabel("time step", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        rate = float(flat.mean()) if flat.size else 0.0
        drawn = f", {len(shown)} shown" if len(shown) < len(firing) else ""
        ax.set_title(f"{name}, N={n}\n{len(firing)} fire{drawn}\n"
                     f"{rate:.3f} spikes/neuron/step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("neuron index", fontsize=8)
    return fig


def membrane_figure(membrane: Any, threshold: float | None, name: str = "last layer",
                    max_traces: int = MAX_TRACES) -> Any:
    """Membrane potential over time of a few neurons, the firing threshold dashed.

    Args:
        membrane: ``[T, ...]`` membrane potentials of one sample (trailing axes flattened to
            ``N`` neurons); ``max_traces`` neurons evenly spaced over ``0..N-1`` are drawn.
        threshold: the firing threshold, drawn as a dashed line; ``None`` for a layer that
            never fires (a non-spiking integrator readout).
        name: the layer, for the title.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    flat = np.asarray(membrane, dtype=np.float32).reshape(len(membrane), -1)  # [T, N]
    steps, n = flat.shape
    shown = evenly_spaced(n, max_traces)
    fig = Figure(figsize=(FIG_WIDTH, FIG_HEIGHT), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    for i in shown:
        ax.plot(np.arange(steps), flat[:, i], linewidth=1.0, label=f"neuron {i}")
    if threshold is not None:
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1.2,
                   label=f"threshold {threshold:g}")
    ax.set_xlim(0, max(steps - 1, 1))
    ax.set_xlabel("time step", fontsize=8)
    ax.set_ylabel("membrane potential", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fires = "" if threshold is not None else " (non-spiking readout)"
    ax.set_title(f"{name}: membrane of {len(shown)} of {n} neurons{fires}", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.tick_params(labelsize=7)
    return fig


def input_frames_figure(frames: Any, name: str = "input") -> Any:
    """The input of one sample over time: one panel per time step (its frame, events of all
    polarities summed per pixel, white on black) and a last panel of all steps together, each
    pixel coloured by the step of its first event.

    Args:
        frames: ``[T, C, H, W]`` event counts (``encoder=frames``) or spikes of one sample.
    """
    from matplotlib.figure import Figure

    counts = np.asarray(frames, dtype=np.float32).sum(axis=1)  # [T, H, W]
    steps = len(counts)
    fig = Figure(figsize=(FIG_WIDTH, FIG_WIDTH / (steps + 1) + 0.9), dpi=DPI,
                 layout="constrained")
    axes = fig.subplots(1, steps + 1, squeeze=False)[0]
    top = max(float(counts.max()), 1.0)
    for t, ax in enumerate(axes[:steps]):
        ax.imshow(counts[t], cmap="gray", vmin=0, vmax=top, interpolation="nearest")
        ax.set_title(f"t={t}: {int(counts[t].sum())}", fontsize=7)
    first = np.where(counts.any(axis=0), counts.astype(bool).argmax(axis=0), np.nan)
    axes[-1].imshow(first, cmap="viridis", vmin=0, vmax=max(steps - 1, 1),
                    interpolation="nearest")
    axes[-1].set_title("first step", fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{name}: {int(counts.sum())} events over {steps} steps (per step: count)",
                 fontsize=8)
    return fig


def figure_to_rgb(fig: Any) -> np.ndarray:
    """Render ``fig`` with Agg into a float32 ``[3, H, W]`` image in ``[0, 1]``
    (``H, W = height, width in inches x dpi``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return rgba[..., :3].transpose(2, 0, 1).astype(np.float32) / 255.0
