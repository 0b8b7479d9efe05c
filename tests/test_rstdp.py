"""Unit tests of the NumPy R-STDP network: equations, bounds, learning, contract, no torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from snnexp.errors import UserError
from snnexp.models.rstdp import RSTDPLearner
from snnexp.models.rstdp_dynamics import (
    LIFParams,
    STDPParams,
    eligibility_step,
    lif_init,
    lif_step,
    lif_wta_step,
    reward_update,
    trace_step,
)
from snnexp.models.rstdp_hidden import HiddenParams, HiddenRun, competitive_update
from snnexp.models.rstdp_readout import ReadoutParams, train_readout


def rate_encoder(seed: int = 0):
    """Seeded NumPy Bernoulli rate encoder ``images [B,C,H,W] -> spikes [T,B,C,H,W]``."""
    rng = np.random.default_rng(seed)
    return lambda x, steps: (rng.random((steps, *np.shape(x))) < np.asarray(x)).astype(np.float32)


def side_blobs(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8x8 two-class task: a bright 3x3 blob in the left (class 0) or right (class 1) half."""
    rng = np.random.default_rng(seed)
    images = rng.random((2 * n_per_class, 1, 8, 8)).astype(np.float32) * 0.1
    labels = np.repeat(np.arange(2), n_per_class)
    for i, label in enumerate(labels):
        row, col = rng.integers(0, 6), rng.integers(0, 2) + 4 * label
        images[i, 0, row:row + 3, col:col + 3] = 0.9
    return images, labels


def test_lif_golden_trajectory_spike_reset_and_refractory_steps():
    p = LIFParams()  # v_rest -65, v_th -58, tau 10, t_ref 5, dt 1
    state = lif_init((1,), p)
    trace_v, spikes = [], []
    for _ in range(10):
        s, state = lif_step(np.array([3.0], np.float32), state, p)
        trace_v.append(float(state.v[0]))
        spikes.append(float(s[0]))
    decay = np.exp(-0.1)
    v2 = -65.0 + 3.0 * decay + 3.0
    v3 = -65.0 + (v2 + 65.0) * decay + 3.0  # -56.83 >= -58: spike, reset
    assert trace_v[:2] == pytest.approx([-62.0, v2], abs=1e-4)
    assert v3 > -58.0 and trace_v[2] == -65.0
    assert spikes == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert trace_v[3:8] == [-65.0] * 5  # five refractory steps ignore the input
    assert trace_v[8] == pytest.approx(-62.0, abs=1e-4)  # integrates again on step 9


def test_lif_adaptive_threshold_rises_with_each_spike_and_blocks_the_next():
    p = LIFParams(t_ref=0.0, theta_plus=5.0)
    state = lif_init((1,), p)
    s, state = lif_step(np.array([8.0], np.float32), state, p)
    assert s[0] == 1.0 and float(state.theta[0]) == pytest.approx(5.0)
    s, state = lif_step(np.array([8.0], np.float32), state, p)
    assert s[0] == 0.0  # -57 is above v_th but below v_th + theta = -53


def test_wta_lets_only_the_strongest_spike_and_silences_its_group():
    p = LIFParams()
    state = lif_init((2, 3), p)
    current = np.array([[8.0, 9.0, 7.5], [1.0, 1.0, 1.0]], np.float32)
    s, state = lif_wta_step(current, state, p)
    assert s.tolist() == [[0, 1, 0], [0, 0, 0]]
    assert state.v[0].tolist() == [-65.0] * 3 and state.refrac[0].tolist() == [5, 5, 5]
    assert state.v[1].tolist() == pytest.approx([-64.0] * 3)
    s, _ = lif_wta_step(current, state, p)
    assert s[0].sum() == 0.0  # the whole group is inhibited for the refractory period


def test_trace_decays_exponentially_after_a_spike():
    x = trace_step(np.zeros(1, np.float32), np.ones(1, np.float32), tau=20.0)
    for _ in range(10):
        x = trace_step(x, np.zeros(1, np.float32), tau=20.0)
    assert float(x[0]) == pytest.approx(np.exp(-10 / 20.0), rel=1e-5)


def _eligibility_after(pre_time: int, post_time: int, steps: int = 10) -> float:
    p = STDPParams()
    x, y = np.zeros((1, 1), np.float32), np.zeros((1, 1), np.float32)
    e = np.zeros((1, 1, 1), np.float32)
    for t in range(steps):
        s_pre = np.full((1, 1), float(t == pre_time), np.float32)
        s_post = np.full((1, 1), float(t == post_time), np.float32)
        x, y = trace_step(x, s_pre, p.tau_plus), trace_step(y, s_post, p.tau_minus)
        e = eligibility_step(e, x, y, s_pre, s_post, p)
    return float(e[0, 0, 0])


def test_eligibility_is_positive_for_pre_before_post_and_negative_for_post_before_pre():
    p = STDPParams()
    causal, acausal = _eligibility_after(2, 5), _eligibility_after(5, 2)
    expected = np.exp(-3 / p.tau_plus) * np.exp(-4 / p.tau_e)  # pair 3 ms apart, read at t=9
    assert causal == pytest.approx(p.a_plus * expected, rel=1e-5)
    assert acausal == pytest.approx(-p.a_minus * expected, rel=1e-5)


def test_reward_sign_flips_the_weight_change():
    p = STDPParams(eta=0.1)
    w = np.full((3, 2), 0.5, np.float32)
    e = np.array([[[1.0, 0.0], [0.0, -1.0], [0.5, 0.0]]], np.float32)
    up = reward_update(w, e, np.array([1.0]), 0.0, p) - w
    down = reward_update(w, e, np.array([-1.0]), 0.0, p) - w
    assert up[0, 0] == pytest.approx(0.1) and up[1, 1] == pytest.approx(-0.1)
    np.testing.assert_allclose(down, -up, atol=1e-7)
    baseline = reward_update(w, e, np.array([1.0]), 0.75, p) - w
    np.testing.assert_allclose(baseline, 0.25 * up, atol=1e-7)


def test_weights_stay_within_bounds_under_large_updates():
    p = STDPParams(eta=100.0, w_min=0.1, w_max=0.9)
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 0.9, (20, 5)).astype(np.float32)
    e = rng.normal(size=(4, 20, 5)).astype(np.float32)
    w = reward_update(w, e, np.array([1.0, -1.0, 1.0, -0.5]), 0.0, p)
    assert w.min() == pytest.approx(0.1) and w.max() == pytest.approx(0.9)
    u = rng.random((15, 6, 20)).astype(np.float32)
    w, _, _ = train_readout(u, np.arange(6) % 3, 3, rng, LIFParams(), p, ReadoutParams(epochs=3))
    assert w.min() >= 0.1 and w.max() <= 0.9


def test_competitive_stdp_moves_the_winning_filter_towards_its_input():
    w = np.full((4, 2), 0.25, np.float32)
    num = np.zeros((4, 2), np.float32)
    num[:, 0] = [3.0, 1.0, 0.0, 0.0]
    run = HiddenRun(None, None, num, np.array([4.0, 0.0], np.float32), None)
    w_new, theta = competitive_update(w, np.zeros(2, np.float32), run, HiddenParams(lr=0.5))
    np.testing.assert_allclose(w_new[:, 0], [0.5, 0.25, 0.125, 0.125], atol=1e-6)
    np.testing.assert_allclose(w_new[:, 1], 0.25)  # a filter that never fired keeps its weights
    assert theta[0] > 0 > theta[1]  # homeostasis: the busy filter is made harder to fire


def test_rstdp_learns_a_two_class_task_far_above_its_untrained_accuracy():
    images, labels = side_blobs(20, seed=1)
    support, support_y = images[::2], labels[::2]
    query, query_y = images[1::2], labels[1::2]
    common = dict(kernel=3, filters=8, pool=3, num_steps=15, hidden_mode="random")
    accs = {}
    for epochs in (0, 20):
        learner = RSTDPLearner(rate_encoder(3), (1, 8, 8), seed=5, epochs=epochs, **common)
        accs[epochs] = float((learner.predict(support, support_y, query).argmax(1)
                              == query_y).mean())
    assert accs[0] <= 0.7
    assert accs[20] >= 0.9


def test_meta_train_step_reports_curves_and_learns_hidden_filters():
    images, labels = side_blobs(10, seed=2)

    class Episode:
        support_x, support_y = images[::2], labels[::2]
        query_x, query_y = images[1::2], labels[1::2]

    learner = RSTDPLearner(rate_encoder(0), (1, 8, 8), seed=0, num_steps=10, epochs=5)
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


def test_state_dict_round_trip_reproduces_predictions_exactly():
    images, labels = side_blobs(6, seed=3)
    threshold = lambda x, steps: np.repeat((np.asarray(x) > 0.5)[None], steps, 0).astype(float)
    a = RSTDPLearner(threshold, (1, 8, 8), seed=4, num_steps=10, epochs=3)
    state = a.state_dict()
    first = a.predict(images[::2], labels[::2], images[1::2])
    b = RSTDPLearner(threshold, (1, 8, 8), seed=99, num_steps=10, epochs=3)
    b.load_state_dict({**state, "w_hidden": state["w_hidden"].tolist()})
    np.testing.assert_array_equal(b.predict(images[::2], labels[::2], images[1::2]), first)
    assert first.shape == (6, 2)


def test_summaries_give_a_raster_figure_images_in_unit_range_and_histograms():
    images, labels = side_blobs(4, seed=4)
    learner = RSTDPLearner(rate_encoder(1), (1, 8, 8), seed=0, num_steps=12, epochs=2)
    out = learner.summaries(images, labels)
    raster, fields = out["figures"]["raster/layers"], out["images"]["receptive_fields"]
    assert [ax.get_title().split(",")[0] for ax in raster.axes] == ["input", "hidden", "output"]
    assert "input, N=64\n" in raster.axes[0].get_title()  # 1x8x8 pixels
    assert "output, N=2\n" in raster.axes[2].get_title()  # 2-way
    assert raster.axes[0].get_xlim() == (-0.5, 11.5)  # 12 time steps
    assert fields.ndim == 2 and fields.dtype == np.float32
    assert fields.min() >= 0.0 and fields.max() <= 1.0
    assert set(out["histograms"]) == {"w_hidden", "theta", "w_readout"}


@pytest.mark.parametrize(("key", "value", "words"), [
    ("num_steps", 0, "model.num_steps=0: must be an integer >= 1"),
    ("hidden_mode", "magic", "model.hidden_mode='magic': must be one of stdp, random"),
    ("kernel", 9, "model.kernel=9: must be <= the image side 8"),
    ("tau_m", -1.0, "model.tau_m=-1.0: must be > 0"),
    ("colour", 1, "model.colour=1: unknown key"),
])
def test_bad_config_values_raise_user_error_naming_the_key(key, value, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
        RSTDPLearner(rate_encoder(), (1, 8, 8), seed=0, **{key: value})


def test_module_imports_no_torch():
    code = "import sys, snnexp.models.rstdp; assert 'torch' not in sys.modules, 'torch'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_closed_form_readout_eligibility_equals_stepping_the_rule():
    from snnexp.models.rstdp_readout import run_output

    rng = np.random.default_rng(7)
    u = (rng.random((25, 3, 6)) < 0.4).astype(np.float32)
    w = rng.uniform(0.3, 0.9, (6, 4)).astype(np.float32)
    lif, p = LIFParams(), STDPParams()
    run = run_output(u, w, np.zeros(4, np.float32), 4.0, lif, p, learn=True)
    state, x, y = lif_init((3, 4), lif), np.zeros((3, 6), np.float32), np.zeros((3, 4), np.float32)
    e = np.zeros((3, 6, 4), np.float32)
    for t in range(25):
        s, state = lif_wta_step(u[t] @ (4.0 * w), state, lif)
        x, y = trace_step(x, u[t], p.tau_plus), trace_step(y, s, p.tau_minus)
        e = eligibility_step(e, x, y, u[t], s, p)
    assert run.counts.sum() > 3 and np.abs(e).max() > 0.1
    np.testing.assert_allclose(run.elig, e, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- fast paths equal the rule
def _reference_hidden(spikes_in, w, theta, lif, hp):
    """The hidden layer stepped with ``lif_wta_step`` on every neuron (the unoptimised rule)."""
    from snnexp.models.rstdp_hidden import grid_shape, patches, pool_spikes

    t_steps, b = spikes_in.shape[:2]
    h, wd, g = grid_shape(spikes_in.shape[2:], hp)
    state = lif_init((b, h, wd, w.shape[1]), lif, theta)
    pooled, num = [], np.zeros(w.shape, np.float32)
    trace = np.zeros(spikes_in.shape[1:], np.float32)
    for t in range(t_steps):
        spikes, state = lif_wta_step(patches(spikes_in[t], hp.kernel, hp.stride)
                                     @ (hp.gain * w), state, lif)
        trace = trace_step(trace, spikes_in[t], hp.tau_pre)
        num += patches(trace, hp.kernel, hp.stride).reshape(-1, w.shape[0]).T \
            @ spikes.reshape(-1, w.shape[1])
        pooled.append(pool_spikes(spikes, hp.pool, g))
    return np.stack(pooled), num


@pytest.mark.parametrize("stride", [1, 2])
def test_fast_hidden_layer_spikes_exactly_as_stepping_lif_wta_step(stride):
    from snnexp.models.rstdp_hidden import init_filters, simulate_hidden

    rng = np.random.default_rng(stride)
    images = rng.random((3, 2, 11, 11)).astype(np.float32)
    spikes_in = (rng.random((12, *images.shape)) < images).astype(np.float32)
    hp, lif = HiddenParams(kernel=3, stride=stride, filters=5, pool=2, gain=2.0), LIFParams()
    w, theta = init_filters(rng, 2 * 9, 5), rng.normal(0, 0.5, 5).astype(np.float32)
    pooled, num = _reference_hidden(spikes_in, w, theta, lif, hp)
    learn = simulate_hidden(spikes_in, w, theta, lif, hp, learn=True)
    infer = simulate_hidden(spikes_in, w, theta, lif, hp)
    assert pooled.sum() > 20
    np.testing.assert_array_equal(learn.pooled, pooled)
    np.testing.assert_array_equal(infer.pooled, pooled)  # the cropped positions change nothing
    np.testing.assert_allclose(learn.num, num, rtol=1e-5)


class _Episode:
    """Episode-like record of NumPy arrays (what ``predict_episodes`` reads)."""

    def __init__(self, seed: int, shot: int = 3, query: int = 4) -> None:
        images, labels = side_blobs(shot + query, seed)
        order = np.r_[0:shot, shot + query:2 * shot + query]
        rest = np.setdiff1d(np.arange(len(labels)), order)
        self.support_x, self.support_y = images[order], labels[order]
        self.query_x, self.query_y = images[rest], labels[rest]


def test_predict_episodes_equals_one_predict_call_per_episode():
    episodes = [_Episode(seed) for seed in range(5)]
    common = dict(input_shape=(1, 8, 8), seed=3, num_steps=12, epochs=4, filters=6)
    one = RSTDPLearner(rate_encoder(1), **common)
    batched = RSTDPLearner(rate_encoder(1), **common)
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
            ep = _Episode(seed)
            yield Episode(*(torch.as_tensor(a) for a in (ep.support_x, ep.support_y, ep.query_x,
                                                          ep.query_y, np.arange(2))))

    accs = {}
    for group in (1, 3):
        learner = RSTDPLearner(rate_encoder(2), (1, 8, 8), seed=0, num_steps=10, epochs=3)
        seen: list[int] = []
        accs[group] = evaluate({"acc": learner.predict_episodes}, episodes(), group=group,
                               on_episode=seen.append)["acc"]
        assert seen == [0, 1, 2, 3, 4]
    assert accs[1] == accs[3] and len(accs[3]) == 5


def test_resume_from_a_saved_checkpoint_continues_exactly(tmp_path):
    from snnexp.checkpoint import load_checkpoint, save_checkpoint

    episodes = [_Episode(seed) for seed in range(4)]
    threshold = lambda x, steps: np.repeat((np.asarray(x) > 0.5)[None], steps, 0).astype(float)
    common = dict(input_shape=(1, 8, 8), num_steps=10, epochs=3, filters=6)
    a = RSTDPLearner(threshold, seed=1, **common)
    for ep in episodes[:2]:
        a.meta_train_step(ep)
    save_checkpoint(tmp_path / "last.pt", {"learner": a.state_dict()})
    for ep in episodes[2:]:
        a.meta_train_step(ep)
    b, c = (RSTDPLearner(threshold, seed=99, **common) for _ in range(2))
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


# ------------------------------------------------------------------------- through train()
def test_typo_under_model_fails_at_compose_time(compose_cfg):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_cfg("model=rstdp", "model.readout_gian=2")


def test_train_on_digits_writes_metrics_and_tensorboard_pictures(compose_cfg, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from snnexp.train import train

    cfg = compose_cfg("model=rstdp", "encoder=rate", "train_episodes=2", "val_every=2",
                      "val_episodes=2", "test_episodes=3", "model.num_steps=8",
                      "model.epochs=2", "threads=1")
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

    learner = RSTDPLearner(Analog(), (1, 8, 8), seed=0, num_steps=400)
    images = np.full((1, 1, 8, 8), 0.25, np.float32)
    spikes = learner._encode(images)
    assert set(np.unique(spikes)) == {0.0, 1.0}
    assert spikes.mean() == pytest.approx(0.25, abs=0.01)
