"""Evaluating checkpoints (``snnexp.eval``), input noise, and the Python API (``load_learner``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

import snnexp
from snnexp.errors import UserError

CONF = str(Path(snnexp.__file__).resolve().parent / "conf")
README = Path(__file__).resolve().parent.parent / "README.md"
TINY = ["dataset=digits", "model.num_steps=3", "train_episodes=3", "val_every=3",
        "val_episodes=2", "test_episodes=3", "logger=none", "threads=1", "device=cpu"]


def train_tiny(run_dir: Path, *overrides: str) -> dict:
    """Train a tiny protonet in-process into ``run_dir``; return its metrics."""
    from snnexp.train import train

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=[*TINY, f"paths.output_dir={run_dir}", *overrides])
    metrics, _ = train(cfg)
    return metrics


def evaluate(out_dir: Path, *overrides: str) -> dict:
    from snnexp.eval import evaluate_checkpoint

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("eval", overrides=["threads=1", f"paths.output_dir={out_dir}", *overrides])
    return evaluate_checkpoint(cfg)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained tiny run, shared read-only by the tests below."""
    path = tmp_path_factory.mktemp("run")
    train_tiny(path)
    return path


def test_eval_without_overrides_reproduces_the_runs_own_test(run_dir: Path,
                                                             tmp_path: Path) -> None:
    trained = json.loads((run_dir / "metrics.json").read_text())
    metrics = evaluate(tmp_path, f"ckpt_path={run_dir}")
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["ckpt_path"] == str(run_dir / "checkpoints" / "best.pt")
    assert written["noise"] is None and written["way"] == trained["way"]
    for key in ("acc", "ci95", "acc_pixel", "acc_untrained", "episodes"):
        assert written["test"][key] == pytest.approx(trained["test"][key])
    # the same episodes, each predictor's correct queries per episode kept exactly
    record = written["test"]["per_episode"]
    assert record == trained["test"]["per_episode"] and record["episodes_sha1"]
    assert record["queries"] == trained["way"] * trained["query"]
    for name in ("acc", "acc_pixel", "acc_untrained"):
        assert len(record["correct"][name]) == written["test"]["episodes"]
        assert sum(record["correct"][name]) / (record["queries"] * written["test"]["episodes"]) \
            == pytest.approx(written["test"][name])
    assert metrics["test"] == written["test"]


def test_eval_applies_noise_and_another_way_to_the_same_episodes(run_dir: Path,
                                                                 tmp_path: Path) -> None:
    clean = evaluate(tmp_path / "clean", f"ckpt_path={run_dir}", "way=3", "shot=1")
    noisy = evaluate(tmp_path / "noisy", f"ckpt_path={run_dir}", "way=3", "shot=1",
                     "noise=gaussian", "noise.std=0.5")
    salted = evaluate(tmp_path / "salt", f"ckpt_path={run_dir}", "way=3", "shot=1",
                      "noise=salt_pepper", "noise.amount=0.3")
    assert clean["way"] == noisy["way"] == 3 and clean["shot"] == 1
    assert noisy["noise"] == {"type": "gaussian", "std": 0.5}
    assert salted["noise"] == {"type": "salt_pepper", "amount": 0.3}
    # the pixel control sees the images: noise must change it on the same episodes
    assert noisy["test"]["acc_pixel"] != clean["test"]["acc_pixel"]
    assert salted["test"]["acc_pixel"] != clean["test"]["acc_pixel"]
    again = evaluate(tmp_path / "again", f"ckpt_path={run_dir}", "way=3", "shot=1",
                     "noise=gaussian", "noise.std=0.5")
    assert again["test"]["acc"] == noisy["test"]["acc"]  # seeded
    # noise is the treatment: the clean episodes underneath are the same
    assert noisy["test"]["per_episode"]["episodes_sha1"] == \
        clean["test"]["per_episode"]["episodes_sha1"]
    assert again["test"]["acc_pixel"] == noisy["test"]["acc_pixel"]


def test_eval_refuses_a_dataset_of_another_image_size(run_dir: Path, tmp_path: Path) -> None:
    from snnexp.api import load_learner
    from snnexp.checkpoint import restore_learner

    learner = load_learner(run_dir)
    state = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    with pytest.raises(UserError, match=r"images \[1, 28, 28\]"):
        restore_learner(learner.config, state, (1, 28, 28), torch.device("cpu"))


def test_gaussian_noise_is_seeded_clipped_and_zero_at_std_0() -> None:
    from snnexp.noise import GaussianNoise, SaltPepperNoise

    images = torch.rand(4, 1, 8, 8)
    first, second = GaussianNoise(0.5, seed=3)(images), GaussianNoise(0.5, seed=3)(images)
    assert torch.equal(first, second) and not torch.equal(first, images)
    assert first.min() >= 0 and first.max() <= 1
    assert torch.equal(GaussianNoise(0.0, seed=3)(images), images)
    salted = SaltPepperNoise(0.5, seed=0)(torch.full((1, 1, 100, 100), 0.5))
    changed = (salted != 0.5).float().mean().item()
    assert 0.45 < changed < 0.55 and set(salted.unique().tolist()) == {0.0, 0.5, 1.0}
    with pytest.raises(UserError, match="noise.std=-1"):
        GaussianNoise(-1)
    with pytest.raises(UserError, match="noise.amount=2"):
        SaltPepperNoise(2)


def test_eval_of_a_bad_checkpoint_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "snnexp.eval", f"ckpt_path={bad}",
                           f"hydra.run.dir={tmp_path / 'eval'}"], capture_output=True, text=True,
                          timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and f"checkpoint {bad}" in errors[0]


def test_load_learner_predicts_from_pil_and_raw_uint8_like_the_pool(run_dir: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    from snnexp import load_learner
    from snnexp.builders import build_pool

    learner = load_learner(run_dir)
    pool = build_pool(learner.config.dataset)
    raw = load_digits().images.astype(np.uint8)  # the dataset's own form: 8x8, values 0..16
    support_idx = [np.flatnonzero(load_digits().target == c)[:2] for c in (5, 6, 7)]
    support_idx = np.concatenate(support_idx)
    query_idx = np.flatnonzero(np.isin(load_digits().target, (5, 6, 7)))[10:16]
    labels = ["five", "five", "six", "six", "seven", "seven"]
    logits = learner.predict(raw[support_idx], labels, raw[query_idx])
    assert logits.shape == (6, 3) and logits.dtype == torch.float32
    assert learner.classes(labels) == ["five", "seven", "six"]
    expected = learner.learner.predict(pool.images[support_idx],
                                       torch.tensor([0, 0, 2, 2, 1, 1]), pool.images[query_idx])
    assert torch.allclose(logits, torch.as_tensor(expected))  # uint8 -> exactly the pool's x
    pil = [Image.fromarray((pool.images[i, 0].numpy() * 255).round().astype(np.uint8))
           .resize((32, 32)) for i in np.concatenate([support_idx, query_idx])]
    x = learner.preprocess(pil)
    assert x.shape == (12, 1, 8, 8) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(learner.predict(pil[:6], labels, pil[6:]),
                       learner.learner.predict(x[:6], torch.tensor([0, 0, 2, 2, 1, 1]), x[6:]))
    with pytest.raises(UserError, match=r"trained on \[1, 8, 8\]"):
        learner.predict(np.zeros((2, 3, 8, 8), np.uint8), [0, 1], np.zeros((1, 3, 8, 8)))


def test_readme_python_api_example_runs(run_dir: Path) -> None:
    text = README.read_text()
    if "## Python API" not in text:
        pytest.skip("README has no Python API section yet")
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code, n = re.subn(r'run_dir = "[^"]*"', f'run_dir = "{run_dir}"', code, count=1)
    assert n == 1, "the README example starts with run_dir = \"...\""
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["logits"].shape[1] == len(set(namespace["support_labels"]))
