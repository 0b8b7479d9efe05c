"""Time to a validation accuracy on the data of ``experiment=seed_mnist`` (the notebook's split).

Both runs train on the same episodes of the composed ``seed_mnist`` config (all ten MNIST
digits, images split in half, 5-way 5-shot 15 queries) and are validated every ``val_every``
episodes on the same fixed validation episodes. The clock counts training steps only
(validation excluded, for both). The notebook run is the notebook's own computation
(``benchmarks.notebook``) at its settings; its validation loads its weights into an snnexp
twin (``distance=euclidean``: the same logits).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from benchmarks.notebook import load_from, notebook_train_step
from benchmarks.protonet import Setting, notebook_twin, process_settings, snnexp_learner
from snnexp import builders
from snnexp.config import CONF_DIR, register_configs
from snnexp.data.episodes import Episode


def seed_mnist_config(data_dir: str, *overrides: str) -> DictConfig:
    """``experiment=seed_mnist`` composed as ``python -m snnexp.train`` would see it."""
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("train", overrides=["experiment=seed_mnist",
                                               f"paths.data_dir={data_dir}", *overrides])
    finally:
        GlobalHydra.instance().clear()


def seed_mnist_episodes(data_dir: str, val_episodes: int, train_way: int = 5):
    """The train sampler (``train_way``-way) and fixed validation episodes of ``seed_mnist``."""
    cfg = seed_mnist_config(data_dir, f"train_way={train_way}")
    splits = builders.build_pool(cfg.dataset).splits()
    train = builders.build_sampler(splits["train"], cfg.train_way, cfg.train_shot,
                                   cfg.train_query, cfg.seed, "train")
    val = builders.build_sampler(splits["val"], cfg.way, cfg.shot, cfg.query, cfg.seed, "val")
    return train, [val.sample() for _ in range(val_episodes)]


def accuracy(predict: Callable[[Episode], torch.Tensor], episodes: list[Episode]) -> float:
    hits = [(predict(ep).argmax(1) == ep.query_y).float().mean().item() for ep in episodes]
    return sum(hits) / len(hits)


def time_to_accuracy(step: Callable[[], None], validate: Callable[[], float], target: float,
                     cap_s: float, val_every: int, max_episodes: int = 100_000) -> dict:
    """Train until ``validate() >= target`` or ``cap_s`` seconds of training.

    Returns ``seconds`` (training only), ``episodes``, ``reached``, ``best_acc``, ``curve``
    (``[episodes, seconds, acc]`` at each validation)."""
    seconds, episodes, curve = 0.0, 0, []
    while seconds < cap_s and episodes < max_episodes:
        start = time.perf_counter()
        for _ in range(val_every):  # the cap is checked after every episode
            step()
            episodes += 1
            if seconds + time.perf_counter() - start >= cap_s or episodes >= max_episodes:
                break
        seconds += time.perf_counter() - start
        acc = validate()
        curve.append([episodes, round(seconds, 2), round(acc, 4)])
        if acc >= target:
            break
    best = max(c[2] for c in curve)
    return {"seconds": seconds, "episodes": episodes, "reached": best >= target,
            "best_acc": best, "curve": curve}


def snnexp_run(setting: Setting, train, val: list[Episode], target: float, cap_s: float,
               val_every: int) -> dict:
    """snnexp with ``setting`` (its process settings) until ``target``."""
    process_settings(True)
    learner = snnexp_learner(setting)

    def predict(ep: Episode) -> torch.Tensor:
        return learner.predict(ep.support_x, ep.support_y, ep.query_x)

    out = time_to_accuracy(lambda: learner.meta_train_step(train.sample()),
                           lambda: accuracy(predict, val), target, cap_s, val_every)
    return {**out, "num_steps": setting.num_steps, "lr": setting.lr, "train_way": setting.way,
            "distance": setting.distance}


def notebook_run(setting: Setting, train, val: list[Episode], target: float, cap_s: float,
                 val_every: int) -> dict:
    """The notebook's computation at the notebook's settings (its process settings)."""
    learner = snnexp_learner(setting)
    ref, opt = notebook_twin(learner, setting)

    def step() -> None:
        process_settings(False)
        notebook_train_step(ref, opt, train.sample())

    def validate() -> float:
        process_settings(True)
        twin = snnexp_learner(setting)
        load_from(twin.net, ref)
        return accuracy(lambda ep: twin.predict(ep.support_x, ep.support_y, ep.query_x), val)

    out = time_to_accuracy(step, validate, target, cap_s, val_every)
    process_settings(True)
    return {**out, "num_steps": setting.num_steps, "lr": setting.lr}


def time_to_98(data_dir: str, fast: Setting, notebook: Setting | None = None,
               target: float = 0.98, fast_cap_s: float = 240.0,
               notebook_cap_s: float | None = None, notebook_cap_ratio: float = 10.0,
               val_every: int = 25, notebook_val_every: int = 50,
               val_episodes: int = 30) -> dict:
    """Training seconds to ``target`` validation accuracy: snnexp's fast settings vs the
    notebook's.

    The notebook run stops at ``notebook_cap_s`` seconds, by default ``notebook_cap_ratio``
    times the fast run's training time: long enough to tell whether the speedup reaches that
    ratio (the fast run's own time if it missed the target). If the notebook run hits its cap
    first, the speedup is a lower bound (``time_to_98_speedup_is_lower_bound``)."""
    notebook = notebook or Setting()
    train, val = seed_mnist_episodes(data_dir, val_episodes, fast.way)
    fast_out = snnexp_run(fast, train, val, target, fast_cap_s, val_every)
    if notebook_cap_s is None:  # no ratio exists if snnexp missed: the same budget then
        notebook_cap_s = fast_out["seconds"] * (notebook_cap_ratio if fast_out["reached"] else 1)
    train, _ = seed_mnist_episodes(data_dir, 0)  # the same training episodes again
    nb_out = notebook_run(notebook, train, val, target, notebook_cap_s, notebook_val_every)
    ratio = nb_out["seconds"] / fast_out["seconds"] if fast_out["reached"] else float("nan")
    return {"time_to_98_speedup": ratio,
            "time_to_98_speedup_is_lower_bound": fast_out["reached"] and not nb_out["reached"],
            "fast": fast_out, "notebook": nb_out, "target": target,
            "val_queries": val_episodes * 5 * 15}
