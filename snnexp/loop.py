"""The meta-training loop: episodes, validation, checkpoints, interrupts, non-finite guards.

``MetaTrainer.run()`` trains for ``train_episodes`` episodes, validates every ``val_every``,
keeps ``checkpoints/best.pt`` (best validation accuracy) and ``checkpoints/last.pt``. SIGINT or
SIGTERM stops it after the current episode with ``last.pt`` written (``Interrupted``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
from pathlib import Path
from typing import Any

import torch

from snnexp.checkpoint import atomic_write, checkpoint_file, load_checkpoint, save_checkpoint
from snnexp.data.episodes import EpisodeSampler
from snnexp.errors import UserError
from snnexp.loggers import NullLogger
from snnexp.metrics import evaluate, mean_ci95
from snnexp.models.base import Learner
from snnexp.progress import Progress

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Training stopped by a signal; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


class StopSignals:
    """Context manager: SIGINT/SIGTERM set ``self.signum`` instead of killing the process."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            # ValueError: not the main thread (e.g. a launcher's worker thread)
            with contextlib.suppress(ValueError):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class MetaTrainer:
    """Runs the episode loop for one learner and owns its checkpoints.

    Args:
        learner: the model. train_sampler: training episodes. make_val_sampler: returns a
            fresh validation sampler with a fixed seed (the same episodes every validation).
        run_dir: the run directory. snapshot: extra entries of every checkpoint (config, ...).
    """

    def __init__(self, learner: Learner, train_sampler: EpisodeSampler, make_val_sampler: Any,
                 *, episodes: int, val_every: int, val_episodes: int, device: torch.device,
                 run_dir: Path, snapshot: dict[str, Any], logger: Any = None,
                 progress: bool = True) -> None:
        self.learner, self.train_sampler, self.make_val_sampler = learner, train_sampler, \
            make_val_sampler
        self.episodes, self.val_every, self.val_episodes = episodes, val_every, val_episodes
        self.device, self.snapshot, self.progress = device, snapshot, progress
        self.logger = logger or NullLogger()
        self.run_dir = Path(run_dir)
        self.done = 0
        self.wall_s = 0.0
        self.val_history: list[list[float]] = []  # [episode, val acc, val ci95]
        self.best = {"acc": -math.inf, "episode": 0}
        self.last_train: dict[str, float] = {}

    # ---- state --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {**self.snapshot, "model": self.learner.name,
                "learner": self.learner.state_dict(),
                "loop": {"done": self.done, "wall_s": self.wall_s, "best": dict(self.best),
                         "val_history": self.val_history, "last_train": self.last_train,
                         "best_checkpoint": str(checkpoint_file(self.run_dir, "best").resolve())},
                "train_sampler": self.train_sampler.state_dict(),
                "torch_rng": torch.get_rng_state()}

    def restore(self, state: dict[str, Any]) -> None:
        loop = state["loop"]
        self.done, self.wall_s = int(loop["done"]), float(loop["wall_s"])
        self.best = dict(loop["best"])
        self.val_history = [list(row) for row in loop["val_history"]]
        self.last_train = dict(loop["last_train"])
        self.train_sampler.load_state_dict(state["train_sampler"])
        torch.set_rng_state(state["torch_rng"])
        self._adopt_best(loop.get("best_checkpoint"))

    def _adopt_best(self, source: str | None) -> None:
        """Copy the interrupted run's ``best.pt`` into this run dir (read-only on the source).

        A run resumed into a new directory then tests the same best weights as an
        uninterrupted run, even when no later validation improves on them.
        """
        target = checkpoint_file(self.run_dir, "best")
        if source and Path(source).is_file() and not target.exists():
            data = Path(source).read_bytes()
            atomic_write(target, lambda f: f.write(data))

    def save(self, name: str) -> Path:
        path = checkpoint_file(self.run_dir, name)
        save_checkpoint(path, self.state())
        return path

    def load_best(self) -> bool:
        """Give the learner the weights of ``best.pt`` (the best validation) when it was
        written; return whether it was."""
        path = checkpoint_file(self.run_dir, "best")
        if not path.exists():
            return False
        self.learner.load_state_dict(load_checkpoint(path)["learner"])
        return True

    # ---- loop ---------------------------------------------------------------------------
    def run(self) -> None:
        """Train until ``episodes`` are done; validate and checkpoint along the way."""
        bar = Progress(self.episodes, "meta-train", bar=self.progress, initial=self.done)
        with StopSignals() as stop, bar:
            while self.done < self.episodes:
                start = time.perf_counter()
                stats = self.learner.meta_train_step(self.train_sampler.sample().to(self.device))
                self.wall_s += time.perf_counter() - start
                self._check_finite(stats)
                self.done += 1
                self.last_train = stats
                self.logger.log_scalars({f"train/{k}": v for k, v in stats.items()}, self.done)
                bar.update(1, stats)
                if self.done % self.val_every == 0 or self.done == self.episodes:
                    self.validate()
                if stop.signum is not None:
                    path = self.save("last")
                    log.warning("stopped by %s after episode %d; saved %s",
                                signal.Signals(stop.signum).name, self.done, path)
                    raise Interrupted(stop.signum)
        if self.episodes == 0 or not self.val_history:
            self.validate()

    def validate(self) -> None:
        """Accuracy on the fixed validation episodes; checkpoint best and last."""
        sampler = self.make_val_sampler()
        episodes = (sampler.sample() for _ in range(self.val_episodes))
        with Progress(self.val_episodes, "validation", bar=self.progress) as bar:
            accs = evaluate({"acc": self.learner.predict_episodes}, episodes, self.device,
                            on_episode=lambda _: bar.update())
        acc, ci95 = mean_ci95(accs["acc"])
        self.val_history.append([self.done, acc, ci95])
        improved = acc > self.best["acc"]
        if improved:
            self.best = {"acc": acc, "episode": self.done}
        self.logger.log_scalars({"val/acc": acc, "val/acc_best": self.best["acc"]}, self.done)
        self._log_summaries(sampler)
        log.info("episode %d: validation accuracy %.1f ± %.1f %% (best %.1f %% at episode %d)",
                 self.done, 100 * acc, 100 * ci95, 100 * self.best["acc"], self.best["episode"])
        if improved:
            self.save("best")
        self.save("last")

    def _log_summaries(self, sampler: EpisodeSampler) -> None:
        episode = sampler.sample().to(self.device)
        summaries = self.learner.summaries(episode.support_x, episode.support_y)
        self.logger.log_figures(summaries.get("figures", {}), self.done)
        self.logger.log_images(summaries.get("images", {}), self.done)
        self.logger.log_histograms(summaries.get("histograms", {}), self.done)
        self.logger.log_embeddings(summaries.get("embeddings", {}), self.done)

    def _check_finite(self, stats: dict[str, float]) -> None:
        bad = {k: v for k, v in stats.items() if not math.isfinite(v)}
        if bad:
            last = checkpoint_file(self.run_dir, "last")
            kept = f"the last good checkpoint {last} is intact" if last.exists() else \
                "no checkpoint was written yet"
            raise UserError(f"non-finite train/{', '.join(bad)} ({list(bad.values())[0]}) at "
                            f"episode {self.done + 1}: stopped; {kept}; try a lower "
                            "optimizer.lr")

