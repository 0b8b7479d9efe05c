"""model=hybrid: a frozen protonet embedding whose spikes feed an in-episode R-STDP readout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import run_main
from helpers.configs import TINY_DIGITS, compose
from helpers.runs import evaluate, read_metrics, train_tiny

from snnexp import builders
from snnexp.checkpoint import save_checkpoint
from snnexp.data.episodes import EpisodeSampler
from snnexp.data.pool import ClassPool
from snnexp.models.hybrid.config import readout_defaults
from snnexp.models.hybrid.learner import learn_readouts
from snnexp.models.rstdp.dynamics import LIFParams, STDPParams
from snnexp.models.rstdp.readout import ReadoutParams, logits
from snnexp.train import train

pytestmark = pytest.mark.filterwarnings(
    "ignore:'snnexp.train' found in sys.modules:RuntimeWarning")  # runpy re-runs the module

HYBRID = [*TINY_DIGITS, "threads=1", "model=hybrid", "train_episodes=0", "test_episodes=3"]


def synthetic_spikes(rng: np.random.Generator, labels: np.ndarray, t_steps: int = 8,
                     d: int = 60) -> np.ndarray:
    """Spikes [T, n, D]: class ``k`` fires its own 10 inputs at rate 0.3, the others at 0.03."""
    rates = np.full((len(labels), d), 0.03, np.float32)
    for i, k in enumerate(labels):
        rates[i, 10 * k:10 * k + 10] = 0.3
    return (rng.random((t_steps, len(labels), d)) < rates).astype(np.float32)


def test_readout_learns_separable_spike_patterns() -> None:
    """With the defaults of conf/model/hybrid.yaml the R-STDP readout learns 5 classes of
    spike patterns (8 steps) from 1 and 5 examples each: accuracy far above chance (20%)."""
    p = readout_defaults()
    lif, rp, stdp = LIFParams(**p["neuron"]), ReadoutParams(**p["readout"]), \
        STDPParams(**p["stdp"])
    rng = np.random.default_rng(0)
    for shot in (1, 5):
        sup_y = [np.repeat(np.arange(5), shot) for _ in range(20)]
        qry_y = np.repeat(np.arange(5), 10)
        supports = [synthetic_spikes(rng, y) for y in sup_y]
        queries = [synthetic_spikes(rng, qry_y) for _ in sup_y]
        out, w, theta, rate = learn_readouts(supports, sup_y, queries, rng, lif, stdp, rp)
        acc = (logits(out).argmax(axis=-1) == qry_y).mean()
        assert w.shape == (20, 60, 5) and theta.shape == (20, 5) and rate.shape == (20,)
        assert acc > 0.6, f"{shot}-shot accuracy {acc:.2f}"
        # the readout learned: each neuron's weights favour its class's inputs
        own = np.stack([w[:, 10 * k:10 * k + 10, k].mean(axis=1) for k in range(5)], axis=1)
        assert (own > w[:, :50].mean(axis=1)).mean() > 0.8


def test_hebbian_readout_imprints_the_scaled_class_sums_in_one_pass() -> None:
    """``rule=hebbian``: W[:, k] = the support input of class k summed over samples and steps,
    scaled to the l2 norm of a column of ``w_init`` and clipped; it draws no random numbers
    and classifies separable patterns."""
    p = readout_defaults()
    lif, rp, stdp = LIFParams(**p["neuron"]), ReadoutParams(**p["readout"]), \
        STDPParams(**{**p["stdp"], "w_max": 100.0})
    rng = np.random.default_rng(1)
    sup_y = [np.repeat(np.arange(5), 5) for _ in range(4)]
    qry_y = np.repeat(np.arange(5), 10)
    supports = [synthetic_spikes(rng, y) for y in sup_y]
    queries = [synthetic_spikes(rng, qry_y) for _ in sup_y]
    state = rng.bit_generator.state
    out, w, theta, rate = learn_readouts(supports, sup_y, queries, rng, lif, stdp, rp,
                                         rule="hebbian")
    assert rng.bit_generator.state == state and not theta.any()
    for e, (sup, y) in enumerate(zip(supports, sup_y, strict=True)):
        u = sup / sup.sum(axis=2).mean()  # support_scale
        sums = np.stack([u[:, y == k].sum(axis=(0, 1)) for k in range(5)], axis=1)
        expected = sums * (rp.w_init * np.sqrt(60) / np.linalg.norm(sums, axis=0))
        np.testing.assert_allclose(w[e], expected, rtol=1e-5)
    assert ((logits(out).argmax(axis=-1) == qry_y).mean() > 0.9) and (rate > 0.9).all()


@pytest.fixture(scope="module")
def protonet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny protonet on digits with enough time steps for its last layer to spike."""
    path = tmp_path_factory.mktemp("protonet")
    train_tiny(path, "model.num_steps=8", "model.threshold=0.5")
    return path


def digits_episode(seed: int = 0):
    pool: ClassPool = builders.build_pool(compose("train", "dataset=digits").dataset)
    split = pool.splits()["test"]
    return EpisodeSampler(split.images, split.labels, 5, 2, 3, seed=seed, name="test").sample()


def test_nothing_in_the_embedding_changes_during_an_episode(protonet_run: Path) -> None:
    cfg = compose("train", *HYBRID, f"init_from={protonet_run}", "model.layer=penultimate")
    learner = builders.build_learner(cfg, (1, 8, 8), torch.device("cpu"))
    trained = torch.load(protonet_run / "checkpoints" / "best.pt", weights_only=True)
    before = {k: v.clone() for k, v in learner.net.state_dict().items()}
    for k, v in trained["learner"]["net"].items():
        assert torch.equal(before[k], v), f"{k}: not the checkpoint's weights"
    assert not any(p.requires_grad for p in learner.net.parameters())
    episode = digits_episode()
    stats = learner.meta_train_step(episode)
    scores = learner.predict(episode.support_x, episode.support_y, episode.query_x)
    assert scores.shape == (15, 5) and np.isfinite(scores).all()
    assert 0.0 <= stats["acc"] <= 1.0 and 0.0 <= stats["reward_rate"] <= 1.0
    for k, v in learner.net.state_dict().items():
        assert torch.equal(before[k], v), f"{k} changed during an episode"
    assert learner.spike_stats()["readout/synops"] > 0  # the penultimate layer fed it spikes


@pytest.mark.parametrize("rule", ["rstdp", "hebbian"])
def test_hybrid_run_end_to_end(rule: str, protonet_run: Path, tmp_path: Path) -> None:
    """Train (no episodes), test on the protonet's own test episodes, evaluate again."""
    run = tmp_path / "hybrid"
    metrics, _ = train(compose("train", *HYBRID, f"init_from={protonet_run}",
                               "model.num_steps=12", f"model.rule={rule}",
                               f"paths.output_dir={run}"))
    assert metrics["model"] == "hybrid" and metrics["status"] == "completed"
    test = metrics["test"]
    for key in ("acc", "acc_pixel", "acc_untrained"):
        assert 0.0 <= test[key] <= 1.0
    proto = read_metrics(protonet_run)
    assert test["per_episode"]["episodes_sha1"] == proto["test"]["per_episode"]["episodes_sha1"]
    assert metrics["spikes"]["readout/spikes"] > 0
    again = evaluate(tmp_path / "eval", f"ckpt_path={run}")
    assert again["test"]["acc"] == test["acc"]  # the stored embedding and readout RNG


@pytest.mark.parametrize("case", ["none", "rstdp", "ann_twin"])
def test_refuses_without_a_spiking_protonet_checkpoint(case: str, protonet_run: Path,
                                                       tmp_path: Path, capfd,
                                                       monkeypatch) -> None:
    state = torch.load(protonet_run / "checkpoints" / "best.pt", weights_only=True)
    ckpt = tmp_path / f"{case}.pt"
    if case == "rstdp":
        save_checkpoint(ckpt, {**state, "model": "rstdp", "learner": {"w_hidden": np.zeros(3)}})
    if case == "ann_twin":
        config = {**state["config"], "model": {**state["config"]["model"], "neuron": "relu"}}
        save_checkpoint(ckpt, {**state, "config": config})
    args = [*HYBRID, f"hydra.run.dir={tmp_path / 'run'}"]
    args += [] if case == "none" else [f"init_from={ckpt}"]
    code, output = run_main(args, capfd, monkeypatch)
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert code == 2 and len(errors) == 1 and "Traceback" not in output, output[-2000:]
    expected = {"none": "model=hybrid needs a model=protonet checkpoint",
                "rstdp": "a model=rstdp checkpoint", "ann_twin": "model.neuron=relu"}[case]
    assert expected in errors[0]
    assert not (tmp_path / "run" / "checkpoints").exists()
