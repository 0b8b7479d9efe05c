"""snnexp.models.rstdp.learner: learning, the Learner contract, checkpoints, no torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers.rstdp import BlobEpisode, make_learner, rate_encoder, side_blobs, threshold_encoder


def test_rstdp_learns_a_two_class_task_far_above_its_untrained_accuracy():
    images, labels = side_blobs(20, seed=1)
    support, support_y = images[::2], labels[::2]
    query, query_y = images[1::2], labels[1::2]
    accs = {}
    for epochs in (0, 20):
        learner = make_learner(rate_encoder(3), seed=5, num_steps=15, readout={"epochs": epochs},
                               hidden={"kernel": 3, "filters": 8, "pool": 3, "mode": "random"})
        accs[epochs] = float((learner.predict(support, support_y, query).argmax(1)
                              == query_y).mean())
    assert accs[0] <= 0.7
    assert accs[20] >= 0.9


def test_meta_train_step_reports_curves_and_learns_hidden_filters():
    images, labels = side_blobs(10, seed=2)

    class Episode:
        support_x, support_y = images[::2], labels[::2]
        query_x, query_y = images[1::2], labels[1::2]

    learner = make_learner(rate_encoder(0), num_steps=10, readout={"epochs": 5},
                           hidden={"mode": "stdp"})
    before = learner.w_hidden.copy()
    metrics = learner.meta_train_step(Episode)
    assert {"acc", "reward_rate"} <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())
    assert 0.0 <= metrics["acc"] <= 1.0 and 0.0 <= metrics["reward_rate"] <= 1.0
    assert np.abs(learner.w_hidden - before).max() > 1e-3
    np.testing.assert_allclose(learner.w_hidden.sum(axis=0), 1.0, rtol=1e-5)
    stats = learner.spike_stats()
    assert stats["hidden/spikes"] > 0 and stats["total/synops"] > stats["input/synops"] > 0
    learner.reset_spike_stats()
    assert learner.spike_stats()["total/spikes"] == 0.0


def test_random_hidden_mode_keeps_the_initial_filters():
    learner = make_learner(rate_encoder(0), num_steps=10, readout={"epochs": 2},
                           hidden={"mode": "random"})
    before = learner.w_hidden.copy()
    learner.meta_train_step(BlobEpisode(0))
    np.testing.assert_array_equal(learner.w_hidden, before)


def test_the_sections_become_the_parameter_tuples_key_for_key():
    learner = make_learner(rate_encoder(0), num_steps=7, neuron={"v_th": -50.0},
                           hidden={"tau_pre": 3.0}, readout={"gain": 4.5},
                           stdp={"tau_plus": 11.0})
    assert learner.num_steps == 7 and learner.lif.v_th == -50.0
    assert learner.hp.tau_pre == 3.0 and learner.stdp.tau_plus == 11.0  # not bound together
    assert learner.rp.gain == 4.5


def test_state_dict_round_trip_reproduces_predictions_exactly():
    images, labels = side_blobs(6, seed=3)
    a = make_learner(threshold_encoder, seed=4, num_steps=10, readout={"epochs": 3})
    state = a.state_dict()
    first = a.predict(images[::2], labels[::2], images[1::2])
    b = make_learner(threshold_encoder, seed=99, num_steps=10, readout={"epochs": 3})
    b.load_state_dict({**state, "w_hidden": state["w_hidden"].tolist()})
    np.testing.assert_array_equal(b.predict(images[::2], labels[::2], images[1::2]), first)
    assert first.shape == (6, 2)


def test_summaries_give_a_raster_figure_images_in_unit_range_and_histograms():
    images, labels = side_blobs(4, seed=4)
    learner = make_learner(rate_encoder(1), num_steps=12, readout={"epochs": 2})
    out = learner.summaries(images, labels)
    raster, fields = out["figures"]["raster/layers"], out["images"]["receptive_fields"]
    assert [ax.get_title().split(",")[0] for ax in raster.axes] == ["input", "hidden", "output"]
    assert "input, N=64\n" in raster.axes[0].get_title()  # 1x8x8 pixels
    assert "output, N=2\n" in raster.axes[2].get_title()  # 2-way
    assert raster.axes[0].get_xlim() == (-0.5, 11.5)  # 12 time steps
    assert fields.ndim == 2 and fields.dtype == np.float32
    assert fields.min() >= 0.0 and fields.max() <= 1.0
    assert set(out["histograms"]) == {"w_hidden", "theta", "w_readout"}


def test_module_imports_no_torch():
    code = "import sys, snnexp.models.rstdp; assert 'torch' not in sys.modules, 'torch'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_predict_episodes_equals_one_predict_call_per_episode():
    episodes = [BlobEpisode(seed) for seed in range(5)]
    common = dict(seed=3, num_steps=12, readout={"epochs": 4}, hidden={"filters": 6})
    one = make_learner(rate_encoder(1), **common)
    batched = make_learner(rate_encoder(1), **common)
    expected = [one.predict(ep.support_x, ep.support_y, ep.query_x) for ep in episodes]
    got = batched.predict_episodes(episodes)
    assert len(got) == 5 and got[0].shape == (8, 2)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
    assert one.spike_stats() == pytest.approx(batched.spike_stats())
    assert one.rng.bit_generator.state == batched.rng.bit_generator.state


def test_evaluate_in_groups_gives_the_per_episode_accuracies():
    import torch

    from snnexp.data.episodes import Episode
    from snnexp.metrics import evaluate

    def episodes():
        for seed in range(5):
            ep = BlobEpisode(seed)
            yield Episode(*(torch.as_tensor(a) for a in (ep.support_x, ep.support_y, ep.query_x,
                                                          ep.query_y, np.arange(2))))

    accs = {}
    for group in (1, 3):
        learner = make_learner(rate_encoder(2), num_steps=10, readout={"epochs": 3})
        seen: list[int] = []
        accs[group] = evaluate({"acc": learner.predict_episodes}, episodes(), group=group,
                               on_episode=seen.append)["acc"]
        assert seen == [0, 1, 2, 3, 4]
    assert accs[1] == accs[3] and len(accs[3]) == 5


def test_resume_from_a_saved_checkpoint_continues_exactly(tmp_path):
    from snnexp.checkpoint import load_checkpoint, save_checkpoint

    episodes = [BlobEpisode(seed) for seed in range(4)]
    common = dict(num_steps=10, readout={"epochs": 3}, hidden={"filters": 6})
    a = make_learner(threshold_encoder, seed=1, **common)
    for ep in episodes[:2]:
        a.meta_train_step(ep)
    save_checkpoint(tmp_path / "last.pt", {"learner": a.state_dict()})
    for ep in episodes[2:]:
        a.meta_train_step(ep)
    b, c = (make_learner(threshold_encoder, seed=99, **common) for _ in range(2))
    state = load_checkpoint(tmp_path / "last.pt")["learner"]
    b.load_state_dict(state)
    c.load_state_dict({**state, "rng": np.random.default_rng(7).bit_generator.state})
    for ep in episodes[2:]:
        b.meta_train_step(ep)
        c.meta_train_step(ep)
    np.testing.assert_array_equal(b.w_hidden, a.w_hidden)
    np.testing.assert_array_equal(b.theta, a.theta)
    ep = episodes[0]
    np.testing.assert_array_equal(b.predict(ep.support_x, ep.support_y, ep.query_x),
                                  a.predict(ep.support_x, ep.support_y, ep.query_x))
    assert b.steps == a.steps == 4
    assert not np.array_equal(c.last_readout, a.last_readout)  # the learner's RNG matters


def test_train_on_digits_writes_metrics_and_tensorboard_pictures(compose_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from snnexp.train import train

    cfg = compose_cfg("model=rstdp", "encoder=rate", "train_episodes=2", "val_every=2",
                      "val_episodes=2", "test_episodes=3", "model.num_steps=8",
                      "model.readout.epochs=2", "threads=1")
    metrics, _ = train(cfg)
    assert metrics["model"] == "rstdp" and metrics["test"]["episodes"] == 3
    for key in ("acc", "acc_pixel", "acc_untrained"):
        assert 0.0 <= metrics["test"][key] <= 1.0
    assert metrics["spikes"]["hidden/spikes"] > 0
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"),
                              size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/acc", "train/reward_rate", "val/acc", "test/acc"} <= set(tags["scalars"])
    assert {"raster/layers", "receptive_fields"} <= set(tags["images"])
    assert {"w_hidden", "w_readout", "theta"} <= set(tags["histograms"])


def test_analog_encoder_input_is_rate_coded_into_binary_spikes():
    class Analog:  # like encoding.DirectEncoder: the image at every step
        spiking = False

        def __call__(self, x, steps):
            return np.repeat(np.asarray(x)[None], steps, 0)

    learner = make_learner(Analog(), num_steps=400)
    images = np.full((1, 1, 8, 8), 0.25, np.float32)
    spikes = learner._encode(images)
    assert set(np.unique(spikes)) == {0.0, 1.0}
    assert spikes.mean() == pytest.approx(0.25, abs=0.01)
