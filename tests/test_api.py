"""The Python API (``snnexp.load_learner``): predictions from a user's images; the docs
example."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.configs import REPO

from snnexp.errors import UserError

USAGE = REPO / "docs" / "usage.md"


def test_load_learner_predicts_from_pil_and_raw_uint8_like_the_pool(trained_run: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    from snnexp import load_learner
    from snnexp.builders import build_pool

    learner = load_learner(trained_run)
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


def test_the_usage_python_api_example_runs(trained_run: Path) -> None:
    text = USAGE.read_text()
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    code, n = re.subn(r'run_dir = "[^"]*"', f'run_dir = "{trained_run}"', code, count=1)
    assert n == 1, "the usage.md example starts with run_dir = \"...\""
    namespace: dict = {}
    exec(compile(code, "usage.md", "exec"), namespace)  # noqa: S102 - our own docs
    assert namespace["logits"].shape[1] == len(set(namespace["support_labels"]))
