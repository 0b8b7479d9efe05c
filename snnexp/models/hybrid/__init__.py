"""On-chip-style few-shot learning: a frozen, meta-trained spiking embedding (a ``model=protonet``
checkpoint) whose output spikes drive ``way`` LIF neurons trained in each episode by R-STDP.

- ``learner``: ``HybridLearner``, the few-shot contract (``snnexp.models.base.Learner``);
- ``config``: ``HybridConfig``, the schema of ``conf/model/hybrid.yaml``.

The readout is the R-STDP output layer of ``snnexp.models.rstdp.readout``, called as it is.
"""

from snnexp.models.hybrid.learner import HybridLearner

__all__ = ["HybridLearner"]
