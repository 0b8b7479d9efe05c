"""The episode sampler contract: shapes, labels, disjointness, validation, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snnexp.data.episodes import Episode, EpisodeSampler
from snnexp.errors import UserError


def make_split(counts: list[int], shape: tuple[int, ...] = (1, 4, 4),
               class_ids: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose every pixel holds its own index (to trace picks), labels by ``counts``."""
    class_ids = class_ids if class_ids is not None else list(range(len(counts)))
    labels = torch.tensor(np.repeat(class_ids, counts), dtype=torch.int64)
    n = len(labels)
    images = torch.arange(n, dtype=torch.float32).view(n, *[1] * len(shape)).expand(n, *shape)
    return images.contiguous(), labels


def image_ids(x: torch.Tensor) -> list[int]:
    return x.flatten(1)[:, 0].long().tolist()


def check_contract(ep: Episode, images: torch.Tensor, labels: torch.Tensor, way: int,
                   shot: int, query: int) -> None:
    """Every clause of the Episode contract (DESIGN.md)."""
    shape = tuple(images.shape[1:])
    assert ep.support_x.shape == (way * shot, *shape)
    assert ep.query_x.shape == (way * query, *shape)
    assert ep.support_y.dtype == ep.query_y.dtype == ep.classes.dtype == torch.int64
    assert ep.support_y.tolist() == [k for k in range(way) for _ in range(shot)]
    assert ep.query_y.tolist() == [k for k in range(way) for _ in range(query)]
    assert ep.classes.shape == (way,) and len(set(ep.classes.tolist())) == way
    support_ids, query_ids = image_ids(ep.support_x), image_ids(ep.query_x)
    assert not set(support_ids) & set(query_ids), "support and query share an image"
    assert len(set(support_ids)) == len(support_ids) and len(set(query_ids)) == len(query_ids)
    # episode label k is original class classes[k], for support and query alike
    for ids, ys in ((support_ids, ep.support_y), (query_ids, ep.query_y)):
        assert [int(labels[i]) for i in ids] == [int(ep.classes[y]) for y in ys.tolist()]


def test_sampler_returns_the_contract_shapes_labels_and_class_ids():
    images, labels = make_split([10] * 6, class_ids=[3, 5, 7, 11, 13, 17])
    sampler = EpisodeSampler(images, labels, way=4, shot=2, query=3, seed=0)
    for _ in range(20):
        ep = sampler.sample()
        check_contract(ep, images, labels, 4, 2, 3)
        assert ep.way == 4
        assert set(ep.classes.tolist()) <= {3, 5, 7, 11, 13, 17}


def test_sampler_draws_every_class_over_many_episodes():
    images, labels = make_split([6] * 8)
    sampler = EpisodeSampler(images, labels, way=2, shot=1, query=1, seed=1)
    seen = {c for _ in range(100) for c in sampler.sample().classes.tolist()}
    assert seen == set(range(8))


def test_episode_to_moves_every_tensor():
    images, labels = make_split([4] * 3)
    ep = EpisodeSampler(images, labels, way=3, shot=1, query=1, seed=0).sample()
    moved = ep.to("cpu")
    assert isinstance(moved, Episode) and torch.equal(moved.classes, ep.classes)


@pytest.mark.parametrize("way, shot, query, message", [
    (0, 1, 1, r"^train_way=0: must be an integer >= 1"),  # a training sampler names train_*
    (-1, 1, 1, r"^train_way=-1: must be an integer >= 1"),
    (2, 0, 1, r"^train_shot=0: must be an integer >= 1"),
    (2, 1, 0, r"^train_query=0: must be an integer >= 1"),
])
def test_sampler_raises_on_non_positive_shape(way, shot, query, message):
    images, labels = make_split([5] * 3)
    with pytest.raises(UserError, match=message):
        EpisodeSampler(images, labels, way, shot, query, seed=0)


def test_sampler_raises_when_way_exceeds_classes():
    images, labels = make_split([5] * 5)
    with pytest.raises(UserError, match=r"^way=6 but the test split has 5 classes"):
        EpisodeSampler(images, labels, way=6, shot=1, query=1, seed=0, name="test")


def test_sampler_raises_when_the_smallest_class_is_too_small():
    images, labels = make_split([9, 9, 4])
    with pytest.raises(UserError, match=r"^train_shot\+train_query=2\+3=5 .* smallest class .* "
                       r"has 4 images"):
        EpisodeSampler(images, labels, way=2, shot=2, query=3, seed=0)
    with pytest.raises(UserError, match=r"^shot\+query=2\+3=5 .* the smallest class of the val"):
        EpisodeSampler(images, labels, way=2, shot=2, query=3, seed=0, name="val")
    EpisodeSampler(images, labels, way=2, shot=2, query=2, seed=0)  # 4 images suffice


def test_user_error_is_a_value_error():
    images, labels = make_split([2, 2])
    with pytest.raises(ValueError):
        EpisodeSampler(images, labels, way=3, shot=1, query=1, seed=0)


def episodes_equal(a: Episode, b: Episode) -> bool:
    return all(torch.equal(x, y) for x, y in zip(
        (a.support_x, a.support_y, a.query_x, a.query_y, a.classes),
        (b.support_x, b.support_y, b.query_x, b.query_y, b.classes), strict=True))


def test_same_seed_same_episodes_and_different_seed_different_episodes():
    images, labels = make_split([20] * 10)
    a = EpisodeSampler(images, labels, 5, 2, 3, seed=7)
    b = EpisodeSampler(images, labels, 5, 2, 3, seed=7)
    c = EpisodeSampler(images, labels, 5, 2, 3, seed=8)
    eps_a, eps_b, eps_c = ([s.sample() for _ in range(5)] for s in (a, b, c))
    assert all(episodes_equal(x, y) for x, y in zip(eps_a, eps_b, strict=True))
    assert not all(episodes_equal(x, y) for x, y in zip(eps_a, eps_c, strict=True))


def test_sampler_ignores_the_global_random_state():
    images, labels = make_split([20] * 10)
    torch.manual_seed(0), np.random.seed(0)
    a = EpisodeSampler(images, labels, 5, 2, 3, seed=3).sample()
    torch.manual_seed(1), np.random.seed(1)
    b = EpisodeSampler(images, labels, 5, 2, 3, seed=3).sample()
    assert episodes_equal(a, b)


def test_state_dict_resumes_the_episode_stream():
    images, labels = make_split([20] * 10)
    uninterrupted = EpisodeSampler(images, labels, 5, 2, 3, seed=4)
    expected = [uninterrupted.sample() for _ in range(6)]
    first = EpisodeSampler(images, labels, 5, 2, 3, seed=4)
    [first.sample() for _ in range(3)]
    resumed = EpisodeSampler(images, labels, 5, 2, 3, seed=99)
    resumed.load_state_dict(first.state_dict())
    assert all(episodes_equal(resumed.sample(), ep) for ep in expected[3:])


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n_classes=st.integers(1, 8), channels=st.integers(1, 3),
       side=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_property_every_valid_shape_gives_a_contract_episode(data, n_classes, channels, side,
                                                              seed):
    counts = data.draw(st.lists(st.integers(1, 12), min_size=n_classes, max_size=n_classes))
    images, labels = make_split(counts, (channels, side, side))
    way = data.draw(st.integers(1, n_classes))
    shot = data.draw(st.integers(1, max(1, min(counts) - 1)))
    query = data.draw(st.integers(1, 12))
    if shot + query > min(counts):
        with pytest.raises(UserError, match=r"^train_shot\+train_query"):
            EpisodeSampler(images, labels, way, shot, query, seed=seed)
        return
    sampler = EpisodeSampler(images, labels, way, shot, query, seed=seed)
    for _ in range(3):
        check_contract(sampler.sample(), images, labels, way, shot, query)


@settings(max_examples=40, deadline=None)
@given(n_classes=st.integers(1, 6), extra=st.integers(1, 5), seed=st.integers(0, 1000))
def test_property_way_above_the_class_count_is_refused(n_classes, extra, seed):
    images, labels = make_split([4] * n_classes)
    with pytest.raises(UserError, match=rf"way={n_classes + extra} but .* {n_classes} classes"):
        EpisodeSampler(images, labels, n_classes + extra, 1, 1, seed=seed)
