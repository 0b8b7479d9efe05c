"""NeuroBench's complexity metrics (Yik et al. 2025, "The neurobench framework for benchmarking
neuromorphic computing algorithms and systems", Nature Communications 16, 1545), per layer and
in total, per test sample.

- activation sparsity: ``1 - (non-zero activations) / (all activations)``, over the neurons of
  the spiking layers and the time steps (a neuron at a step is one activation);
- synaptic operations: ``dense``, every weight's operation as a dense execution performs it
  (zero inputs included); ``effective MACs``, operations with a non-zero *non-binary* input
  (a multiply-accumulate); ``effective ACs``, operations with a non-zero *binary* input (a
  spike: an accumulate);
- footprint: bytes of the parameters and buffers the model keeps;
- connection sparsity: the fraction of synaptic weights that are zero.

A layer here is one synaptic operation with the neurons it drives: its operations are those of
its inputs (the previous layer's spikes, or the encoded image for the first), its activations
those of its neurons. ``figures`` turns ``LayerCount`` records into ``metrics.json``'s keys,
``neurobench/<layer>/<metric>`` and ``neurobench/total/<metric>``.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "neurobench"
METRICS = ("activation_sparsity", "synops_dense", "synops_effective_macs",
           "synops_effective_acs", "footprint_bytes", "connection_sparsity")


@dataclass
class LayerCount:
    """One layer's counts per sample (activation and operation counts summed over time).

    activations: neuron-steps of its spiking neurons (``0``: no spiking neurons);
    spikes: the non-zero ones; dense: operations of a dense execution; macs / acs: operations
    with a non-zero analog / binary input; footprint: bytes of its parameters and buffers;
    weights / zero_weights: its synaptic weights and how many are zero.
    """

    name: str
    activations: float = 0.0
    spikes: float = 0.0
    dense: float = 0.0
    macs: float = 0.0
    acs: float = 0.0
    footprint: float = 0.0
    weights: float = 0.0
    zero_weights: float = 0.0


def _row(activations: float, spikes: float, dense: float, macs: float, acs: float,
         footprint: float, weights: float, zeros: float) -> dict[str, float]:
    values = (1.0 - spikes / activations if activations else float("nan"), dense, macs, acs,
              footprint, zeros / weights if weights else float("nan"))
    return dict(zip(METRICS, (float(v) for v in values), strict=True))


def figures(layers: list[LayerCount]) -> dict[str, float]:
    """``{"neurobench/<layer>/<metric>": value}`` for each layer and ``total`` (sums of the
    counts; sparsities as ratios of the summed counts). A sparsity with nothing to count
    (a layer without spiking neurons, without weights) is left out."""
    out: dict[str, float] = {}
    total = LayerCount("total")
    for layer in [*layers, total]:
        if layer is not total:
            for field in ("activations", "spikes", "dense", "macs", "acs", "footprint",
                          "weights", "zero_weights"):
                setattr(total, field, getattr(total, field) + getattr(layer, field))
        row = _row(layer.activations, layer.spikes, layer.dense, layer.macs, layer.acs,
                   layer.footprint, layer.weights, layer.zero_weights)
        out.update({f"{PREFIX}/{layer.name}/{k}": v for k, v in row.items() if v == v})
    return out
