"""Energy estimate of one inference, spiking network vs its ANN twin (per sample).

Costs per operation at 45 nm, 32-bit float (Horowitz 2014, "Computing's energy problem",
ISSCC): an add is 0.9 pJ, a multiply 3.7 pJ, so a multiply-accumulate (MAC) is 4.6 pJ. A spike
arriving at a synapse costs one add (a synaptic operation, SynOp); an analog input costs a MAC
per weight::

    SynOps = sum_l spikes_sent_l * fan_out_l          (fan_out: synapses leaving one neuron)
    E_snn  = SynOps * 0.9 pJ + MACs_analog * 4.6 pJ    (MACs_analog: first layer on an analog
                                                        input, encoder=direct, computed once)
    E_ann  = MACs * 4.6 pJ                             (MACs: every layer of the ANN twin)

A second figure adds the memory traffic of the weights: every synaptic event (a SynOp or a
MAC) reads its weight from on-chip SRAM, 10 pJ per 64-bit read of an 8 KB SRAM at 45 nm
(Horowitz 2014, same table), charged once per 32-bit weight::

    E_snn_fetch = E_snn + (SynOps + MACs_analog) * 10 pJ
    E_ann_fetch = E_ann + MACs * 10 pJ

What the arithmetic-only estimate ignores: memory traffic (reading weights and membrane
states, usually the largest cost on real hardware, and larger for the SNN that keeps a
membrane per neuron and time step; the second figure adds the weight reads only), the
membrane updates themselves (a multiply by ``beta`` and an add per neuron and step),
thresholds, resets, batch normalisation, pooling, the spike encoder, and the
distance computation of the prototypes. Border effects of ``same`` convolutions are ignored
(fan-out counts a full kernel). It compares arithmetic only, as in Rueckauer et al. 2017 and
most SNN papers; read it as an upper bound on the advantage of spikes.
"""

from __future__ import annotations

E_ADD_PJ = 0.9  # 32-bit float add, 45 nm (Horowitz 2014)
E_MULT_PJ = 3.7  # 32-bit float multiply, 45 nm (Horowitz 2014)
E_SYNOP_PJ = E_ADD_PJ  # a spike at a synapse: one accumulate
E_MAC_PJ = E_MULT_PJ + E_ADD_PJ  # 4.6 pJ
E_WEIGHT_READ_PJ = 10.0  # 64-bit read of an 8 KB SRAM, 45 nm (Horowitz 2014): one per event


def snn_energy_pj(synops: float, analog_macs: float = 0.0) -> float:
    """``E_snn = SynOps * 0.9 pJ + MACs_analog * 4.6 pJ`` (per sample)."""
    return synops * E_SYNOP_PJ + analog_macs * E_MAC_PJ


def ann_energy_pj(macs: float) -> float:
    """``E_ann = MACs * 4.6 pJ`` (per sample)."""
    return macs * E_MAC_PJ


def energy_figures(stats: dict[str, float], ann_macs: float) -> dict[str, float]:
    """Energy keys for a ``spike_stats`` dict (per sample).

    Args:
        stats: per-sample ``<layer>/spikes``, ``<layer>/synops``, ``<layer>/macs`` and the
            ``total/*`` sums (``ProtoNetLearner.spike_stats``). A spiking run has ``synops``
            (and ``input/macs`` with an analog input); an ANN run has only ``macs``.
        ann_macs: MACs per sample of the ANN twin (all layers).

    Returns:
        ``energy/snn_pj`` (only for a spiking run), ``energy/ann_pj`` (arithmetic only),
        ``energy/snn_pj_weight_fetch`` and ``energy/ann_pj_weight_fetch`` (with one weight
        read per synaptic event), ``energy/ann_macs`` and
        ``energy/ann_over_snn`` (how many times less energy the SNN needs; only for a spiking
        run with a non-zero estimate).
    """
    out = {"energy/ann_macs": float(ann_macs), "energy/ann_pj": ann_energy_pj(ann_macs),
           "energy/ann_pj_weight_fetch": ann_energy_pj(ann_macs)
           + ann_macs * E_WEIGHT_READ_PJ}
    if "total/synops" in stats:
        analog = stats.get("input/macs", 0.0)
        e_snn = snn_energy_pj(stats["total/synops"], analog)
        out["energy/snn_pj"] = e_snn
        out["energy/snn_pj_weight_fetch"] = e_snn + (stats["total/synops"] + analog) \
            * E_WEIGHT_READ_PJ
        if e_snn > 0:
            out["energy/ann_over_snn"] = out["energy/ann_pj"] / e_snn
    return out
