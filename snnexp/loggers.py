"""Experiment loggers: TensorBoard (``logger=tensorboard``) and a no-op (``logger=none``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np


class NullLogger:
    """Logs nothing."""

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        """Write ``{tag: value}`` at ``step``."""

    def log_text(self, tag: str, text: str) -> None:
        """Write a text (shown as Markdown)."""

    def log_images(self, images: dict[str, Any], step: int) -> None:
        """Write ``{tag: float array [H, W] or [3, H, W] in [0, 1]}``."""

    def log_figures(self, figures: dict[str, Any], step: int) -> None:
        """Write ``{tag: matplotlib Figure}`` as images (``snnexp.plots``)."""

    def log_histograms(self, values: dict[str, Any], step: int) -> None:
        """Write ``{tag: array}`` as histograms."""

    def log_embeddings(self, embeddings: dict[str, tuple[Any, Any]], step: int) -> None:
        """Write ``{tag: (vectors [N, D], labels [N])}`` for TensorBoard's projector."""

    def log_hparams(self, hparams: dict[str, int | float | str], metrics: Iterable[str] = (),
                    varied: Iterable[str] = ()) -> None:
        """Write the run's hyperparameters (``snnexp.hparams.run_hparams``) for the HParams
        tab, beside the last value of each scalar in ``metrics``; ``varied``: the keys a sweep
        varies (``snnexp.hparams.swept_keys``), listed first."""

    def close(self) -> None:
        """Flush and close."""


class TensorBoardLogger(NullLogger):
    """Writes TensorBoard event files into ``log_dir`` (``<run_dir>/tensorboard``)."""

    def __init__(self, log_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir)

    def log_scalars(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)

    def log_text(self, tag: str, text: str) -> None:
        self.writer.add_text(tag, text)

    def log_images(self, images: dict[str, Any], step: int) -> None:
        for tag, image in images.items():
            array = np.asarray(image, dtype=np.float32)
            self.writer.add_image(tag, array, step, dataformats="HW" if array.ndim == 2 else "CHW")

    def log_figures(self, figures: dict[str, Any], step: int) -> None:
        from snnexp.plots import figure_to_rgb

        for tag, figure in figures.items():
            self.writer.add_image(tag, figure_to_rgb(figure), step, dataformats="CHW")
            figure.clear()  # drop the artists now; the figure is not registered with pyplot

    def log_histograms(self, values: dict[str, Any], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_histogram(tag, np.asarray(value, dtype=np.float32), step)

    def log_embeddings(self, embeddings: dict[str, tuple[Any, Any]], step: int) -> None:
        for tag, (vectors, labels) in embeddings.items():
            self.writer.add_embedding(np.asarray(vectors, dtype=np.float32),
                                      metadata=[int(label) for label in labels], tag=tag,
                                      global_step=step)

    def log_hparams(self, hparams: dict[str, int | float | str], metrics: Iterable[str] = (),
                    varied: Iterable[str] = ()) -> None:
        """The HParams plugin's summaries in this run's own event file.

        The tab takes its columns from one run's experiment summary: these ``hparams`` (those
        named in ``varied`` first) and the ``metrics`` tags, whose values it reads from each
        run's own scalars (nothing is logged twice)."""
        from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        experiment, start, end = hparams_summary(hparams, dict.fromkeys(metrics, 0.0))
        varied = set(varied)
        plugin = experiment.value[0].metadata.plugin_data
        data = HParamsPluginData.FromString(plugin.content)
        for info in data.experiment.hparam_infos:  # the tab lists differing hparams first
            info.differs = info.name in varied
        plugin.content = data.SerializeToString()
        for summary in (experiment, start, end):
            self.writer.file_writer.add_summary(summary)

    def close(self) -> None:
        self.writer.close()
