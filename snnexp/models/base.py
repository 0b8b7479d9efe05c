"""The Learner contract that every few-shot model implements.

``snnexp.train`` never branches on the model type: it only calls the methods below. This module
imports no torch, so the NumPy R-STDP learner can implement it without pulling torch in.

Array arguments are ``torch.Tensor`` on the run's device, or anything ``numpy.asarray`` accepts
(a NumPy learner converts them with ``np.asarray``). Logits may be a tensor or an ``np.ndarray``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from snnexp.errors import UserError

if TYPE_CHECKING:
    from snnexp.data.episodes import Episode


class Learner(ABC):
    """A few-shot learner.

    Class attributes:
        name: the model's config name (``"protonet"``, ``"rstdp"``); stored in checkpoints.
        uses_optimizer: whether the learner trains through a torch optimizer (``cfg.optimizer``).
    """

    name: str = "learner"
    uses_optimizer: bool = False

    @abstractmethod
    def meta_train_step(self, episode: Episode) -> dict[str, float]:
        """Learn from one training episode; return scalars such as ``loss`` and ``acc``."""

    @abstractmethod
    def predict(self, support_x: Any, support_y: Any, query_x: Any) -> Any:
        """Score queries against the support set.

        Args:
            support_x: ``[way*shot, C, H, W]`` images. support_y: ``[way*shot]`` labels 0..way-1.
            query_x: ``[n_query, C, H, W]`` images.

        Returns:
            ``[n_query, way]`` logits; the predicted class is the argmax.
        """

    def predict_episodes(self, episodes: list[Episode]) -> list[Any]:
        """``predict`` of each episode, in order: one ``[n_query, way]`` logits per episode.

        A learner may override it to process several episodes at once; its results must
        equal one ``predict`` call per episode in this order. The default loops over
        ``predict``.
        """
        return [self.predict(ep.support_x, ep.support_y, ep.query_x) for ep in episodes]

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore the learner (weights, optimizer state, own RNG)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state_dict()`` output (tensors may come back for NumPy arrays)."""

    @abstractmethod
    def spike_stats(self) -> dict[str, float]:
        """Per-sample activity since the last ``reset_spike_stats()``.

        Flat keys ``"<layer>/spikes"`` (spikes per sample) and ``"<layer>/synops"`` (synaptic
        operations per sample: spikes x fan-out), plus ``"total/spikes"`` and ``"total/synops"``.
        """

    @abstractmethod
    def reset_spike_stats(self) -> None:
        """Zero the activity counters read by ``spike_stats()``."""

    def load_network_weights(self, learner_state: dict[str, Any]) -> None:
        """Start from the network weights of another run's checkpoint (its ``learner`` entry,
        ``init_from``), keeping this run's own settings. Learners that cannot raise
        ``UserError`` (the default); weights that do not fit raise torch's ``RuntimeError``."""
        raise UserError(f"model={self.name} cannot start from another run's weights "
                        "(model=protonet can)")

    def reset_to_untrained(self) -> None:
        """Go back to the weights before any training: ``snnexp.evaluation.run_test`` calls it
        on a freshly built learner to make the untrained control. A fresh learner has them
        already (the default does nothing); one whose constructor loads trained weights
        (``model=hybrid``'s embedding) restores its random initial ones."""
        return None

    @property
    def encoding(self) -> str:
        """The input code this learner's spikes come from (``metrics.json``'s ``encoder``)."""
        return type(getattr(self, "encoder", None)).__name__

    def summaries(self, support_x: Any, support_y: Any) -> dict[str, dict[str, Any]]:
        """Pictures of the learner's state for TensorBoard (optional).

        Returns ``{"figures": {tag: matplotlib Figure},
        "images": {tag: float array [H, W] or [3, H, W] in [0, 1]},
        "histograms": {tag: array}, "embeddings": {tag: (vectors [N, D], labels [N])}}``
        (any key may be missing; figures as drawn by ``snnexp.plots``). The default has none.
        """
        return {"images": {}, "histograms": {}}
