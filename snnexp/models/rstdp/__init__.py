"""NumPy SNN learner: STDP-learned convolutional LIF features and an R-STDP output layer.

- ``learner``: ``RSTDPLearner``, the few-shot contract (``snnexp.models.base.Learner``).
- ``config``: the config sections (``conf/model/rstdp.yaml``), their schema and parameter tuples.
- ``dynamics``: LIF, trace, eligibility and reward step functions.
- ``hidden``: the convolutional hidden layer and its competitive STDP.
- ``readout``: the output layer trained in-episode by R-STDP.
- ``views``: pictures for TensorBoard.

Imports NumPy (and OmegaConf for the schema), never torch.
"""

from snnexp.models.rstdp.learner import RSTDPLearner

__all__ = ["RSTDPLearner"]
