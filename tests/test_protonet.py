"""Spiking Prototypical Network: prototype math, gradients, input sizes, ANN twin, readouts."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from helpers.protonet import make_learner as _make_learner
from helpers.protonet import make_network, model_node

from snnexp.data.episodes import Episode
from snnexp.encoding import DirectEncoder, RateEncoder
from snnexp.errors import UserError
from snnexp.models.protonet import ProtoNetLearner, SpikeRecorder
from snnexp.models.protonet.config import ProtoNetConfig
from snnexp.prototypes import prototype_logits, prototypes
from snnexp.schema import check_section


def make_learner(input_shape=(1, 8, 8), encoder=None, **kwargs) -> ProtoNetLearner:
    kwargs.setdefault("num_steps", 4)
    return _make_learner(input_shape, encoder, **kwargs)


def episode_batch(way=3, shot=2, query=2, shape=(1, 8, 8), seed=0):
    g = torch.Generator().manual_seed(seed)
    support_x = torch.rand(way * shot, *shape, generator=g)
    query_x = torch.rand(way * query, *shape, generator=g)
    support_y = torch.arange(way).repeat_interleave(shot)
    query_y = torch.arange(way).repeat_interleave(query)
    return support_x, support_y, query_x, query_y


def test_prototypes_are_class_means_by_hand():
    emb = torch.tensor([[0.0, 0.0], [2.0, 4.0], [1.0, 1.0], [3.0, -1.0], [5.0, 5.0]])
    labels = torch.tensor([0, 0, 1, 1, 2])
    expected = torch.tensor([[1.0, 2.0], [2.0, 0.0], [5.0, 5.0]])
    assert torch.allclose(prototypes(emb, labels, 3), expected)


def test_logits_are_negative_squared_euclidean_distances_by_hand():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 5.0]])
    support_y = torch.tensor([0, 0, 1, 1])  # prototypes (1, 0) and (0, 4)
    query = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    expected = torch.tensor([[-0.0, -17.0], [-1.0, -16.0], [-20.0, -9.0]])
    logits = prototype_logits(support, support_y, query, way=2, distance="squared")
    assert logits.shape == (3, 2)
    assert torch.allclose(logits, expected, atol=1e-4)


def test_euclidean_logits_are_negative_distances_by_hand():
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 5.0]])
    support_y = torch.tensor([0, 0, 1, 1])  # prototypes (1, 0) and (0, 4)
    query = torch.tensor([[1.0, 0.0], [4.0, 4.0]])
    expected = torch.tensor([[-0.0, -17.0 ** 0.5], [-5.0, -4.0]])
    logits = prototype_logits(support, support_y, query, way=2, distance="euclidean")
    assert torch.allclose(logits, expected, atol=1e-4)


def test_learner_distance_option_sets_the_logits():
    support_x, support_y, query_x, _ = episode_batch()
    squared = make_learner().predict(support_x, support_y, query_x)
    euclidean = make_learner(distance="euclidean").predict(support_x, support_y, query_x)
    assert torch.allclose(euclidean, -(-squared).clamp_min(0).sqrt(), atol=1e-3)


def test_predict_scores_queries_against_prototypes_of_one_batched_forward():
    learner = make_learner()
    support_x, support_y, query_x, _ = episode_batch()
    calls = []
    learner.net.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    logits = learner.predict(support_x, support_y, query_x)
    assert calls == [len(support_x) + len(query_x)], "support and query in one forward"
    with torch.no_grad():
        emb = learner.embed(torch.cat([support_x, query_x]))
    protos = torch.stack([emb[:6][support_y == k].mean(0) for k in range(3)])
    by_hand = -((emb[6:, None, :] - protos[None]) ** 2).sum(-1)
    assert logits.shape == (6, 3)
    assert torch.allclose(logits, by_hand, rtol=1e-4, atol=1e-4)


def test_direct_encoding_computes_the_first_convolution_once_per_forward():
    learner = make_learner(num_steps=6)
    shapes = []
    learner.net.ops[0].register_forward_hook(lambda mod, args, out: shapes.append(args[0].shape))
    learner.predict(*episode_batch()[:3])
    assert shapes == [torch.Size([12, 1, 8, 8])]  # B images, not T*B


@pytest.mark.parametrize("encoder", [DirectEncoder(), RateEncoder(gain=1.0)],
                         ids=["direct", "rate"])
@pytest.mark.parametrize("readout", ["membrane", "integrator", "spikes"])
@pytest.mark.parametrize("neuron", ["lif", "relu"])
def test_gradients_reach_every_layer(encoder, readout, neuron):
    learner = make_learner(encoder=encoder, readout=readout, neuron=neuron, threshold=0.5)
    support_x, support_y, query_x, query_y = episode_batch()
    learner.net.train()
    logits = learner._episode_logits(support_x, support_y, query_x)
    torch.nn.functional.cross_entropy(logits, query_y).backward()
    for name, param in learner.net.named_parameters():
        if param.requires_grad:
            assert param.grad is not None, f"{name}: no gradient"
            assert param.grad.abs().sum() > 0, f"{name}: zero gradient"


def test_meta_train_step_updates_every_layer_and_reports_loss_and_acc():
    learner = make_learner()
    support_x, support_y, query_x, query_y = episode_batch()
    before = {k: v.clone() for k, v in learner.net.state_dict().items()}
    stats = learner.meta_train_step(Episode(support_x, support_y, query_x, query_y,
                                            torch.arange(3)))
    assert set(stats) == {"loss", "acc", "lr"} and stats["loss"] > 0 and 0 <= stats["acc"] <= 1
    for key, value in learner.net.state_dict().items():
        if value.is_floating_point() and key.endswith(("weight", "bias")):
            assert not torch.equal(value, before[key]), f"{key} did not change"


@pytest.mark.parametrize("side", [8, 28])
@pytest.mark.parametrize("neuron", ["lif", "relu"])
def test_any_input_size_gives_embedding_dim_features(side, neuron):
    learner = make_learner((1, side, side), neuron=neuron, embedding_dim=16, num_steps=2)
    with torch.no_grad():
        emb = learner.embed(torch.rand(5, 1, side, side))
    assert emb.shape == (5, 16)
    logits = learner.predict(*episode_batch(shape=(1, side, side))[:3])
    assert logits.shape == (6, 3) and torch.isfinite(logits).all()


def test_valid_padding_on_too_small_images_is_a_user_error():
    make_learner((1, 28, 28), padding="valid")  # the notebook's layers on MNIST
    with pytest.raises(UserError, match=r"model\.padding=valid: .* use model\.padding=same, "):
        make_learner((1, 8, 8), padding="valid")


def test_a_backbone_that_pools_images_away_is_a_user_error_naming_the_poolings():
    make_learner((1, 16, 16), backbone="snell4")  # four 2x2 poolings: 16 -> 1
    with pytest.raises(UserError, match=r"model\.backbone=snell4, model\.padding=same: .* "
                       r"use a backbone with fewer 2x2 poolings \(notebook 2, snell4 4\)"):
        make_learner((1, 8, 8), backbone="snell4")


def test_relu_twin_has_no_time_steps():
    images = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        a = make_learner(neuron="relu", num_steps=2).embed(images)
        b = make_learner(neuron="relu", num_steps=7).embed(images)
    assert torch.allclose(a, b)
    lif2 = make_learner(neuron="lif", num_steps=2)
    lif7 = make_learner(neuron="lif", num_steps=7)
    with torch.no_grad():
        assert not torch.allclose(lif2.embed(images), lif7.embed(images))


def test_spike_readout_is_a_firing_rate_and_membrane_readout_is_analog():
    images = torch.rand(6, 1, 8, 8)
    steps = 5
    spikes = make_learner(readout="spikes", num_steps=steps, threshold=0.05)
    membrane = make_learner(readout="membrane", num_steps=steps, threshold=0.05)
    spikes.net.eval(), membrane.net.eval()
    with torch.no_grad():
        rate, mem = spikes.embed(images), membrane.embed(images)
    assert rate.min() >= 0 and rate.max() <= 1
    assert torch.allclose(rate * steps, (rate * steps).round(), atol=1e-5)  # k / T
    assert rate.sum() > 0
    assert not torch.allclose(mem * steps, (mem * steps).round(), atol=1e-3)


def test_integrator_readout_is_the_leaky_integral_of_the_last_layer_current():
    """``v[t] = beta * v[t-1] + I[t]`` with no threshold and no reset; embedding = mean_t v[t]."""
    images, steps, beta = torch.rand(6, 1, 8, 8), 6, 0.9
    learner = make_learner(readout="integrator", num_steps=steps, beta=beta, threshold=0.05)
    currents = []
    learner.net.ops[-1].register_forward_hook(lambda mod, args, out: currents.append(out))
    learner.net.eval()
    with torch.no_grad():
        emb = learner.embed(images)
    cur = currents[0].unflatten(0, (steps, 6))  # [T, B, D] current into the last layer
    assert cur.max() > 0.05  # above threshold: a spiking layer would have reset
    v, mean = torch.zeros_like(cur[0]), torch.zeros_like(cur[0])
    for t in range(steps):
        v = beta * v + cur[t]
        mean += v / steps
    assert torch.allclose(emb, mean, atol=1e-5)
    stats = learner.spike_stats()  # the integrator never fires: no spikes of its own
    assert "layer2/spikes" in stats and "layer3/spikes" not in stats


def test_state_dict_round_trip_restores_predictions():
    a, b = make_learner(), make_learner()
    torch.manual_seed(1)
    b.net.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    batch = episode_batch()[:3]
    assert not torch.allclose(a.predict(*batch), b.predict(*batch))
    b.load_state_dict(a.state_dict())
    assert torch.allclose(a.predict(*batch), b.predict(*batch))


@pytest.mark.parametrize("kwargs, key", [
    ({"num_steps": 0}, "num_steps"), ({"beta": 1.5}, "beta"), ({"threshold": 0.0}, "threshold"),
    ({"readout": "voltage"}, "readout"), ({"neuron": "tanh"}, "neuron"),
    ({"distance": "cosine"}, "distance"), ({"embedding_dim": 0}, "embedding_dim"),
])
def test_bad_model_values_are_user_errors_of_the_schema(kwargs, key):
    check_section(model_node(), ProtoNetConfig, "model")  # the defaults pass
    with pytest.raises(UserError, match=rf"^model\.{key}=.*: must be "):
        check_section(model_node(**kwargs), ProtoNetConfig, "model")


def test_a_backbone_given_as_a_plain_name_is_a_user_error_naming_the_group_form():
    with pytest.raises(UserError, match=r"^model\.backbone=snell4: .* model/backbone=snell4"):
        ProtoNetLearner("snell4", DirectEncoder(), (1, 8, 8), num_steps=2, distance="squared",
                        precision="fp32")


def test_summaries_give_raster_and_membrane_figures_weight_histograms_and_embeddings():
    learner = make_learner(num_steps=6)
    support_x, support_y, _, _ = episode_batch(way=3, shot=2)
    out = learner.summaries(support_x, support_y)
    raster, membrane = out["figures"]["raster/layers"], out["figures"]["membrane/last_layer"]
    assert [ax.get_title().split(",")[0] for ax in raster.axes] == ["layer1", "layer2", "layer3"]
    assert "layer3, N=64\n" in raster.axes[2].get_title()  # the embedding layer
    assert all(ax.get_xlabel() == "time step" for ax in raster.axes)
    assert raster.axes[2].get_xlim() == (-0.5, 5.5)  # 6 time steps
    traces = membrane.axes[0].get_lines()
    assert [line.get_linestyle() for line in traces].count("--") == 1  # the threshold
    assert traces[-1].get_ydata()[0] == 1.0 and len(traces[0].get_xdata()) == 6
    assert len(out["histograms"]) == len(list(learner.net.ops)) == 3
    vectors, labels = out["embeddings"]["embeddings/support"]
    assert vectors.shape == (6, 64) and labels.tolist() == support_y.tolist()
    assert not learner.net._forward_hooks and not any(  # the recorder's hooks are gone
        m._forward_hooks or m._forward_pre_hooks for m in learner.net.modules())


def test_recorder_counts_what_a_by_hand_forward_gives_and_leaves_no_hooks():
    learner = make_learner(num_steps=5, threshold=0.3)
    learner.net.eval()
    x = torch.rand(4, 1, 8, 8)
    spikes, pooled = [], []
    for lif in learner.net.lifs:
        lif.register_forward_hook(lambda m, a, out: spikes.append(out[0].sum().item()))
    learner.net.ops[2][1].register_forward_pre_hook(lambda m, a: pooled.append(a[0].sum().item()))
    with torch.no_grad(), SpikeRecorder(learner.net) as record:
        learner.net(x, 5)
    assert record.spikes == spikes and sum(spikes) > 0
    assert record.sent[1] == (pooled[0], 64) and record.sent[2] == (0.0, 0)
    with torch.no_grad():
        learner.net(x, 5)  # outside the context: nothing more is counted
    assert record.spikes == spikes[:3]


def cosine_learner(t_max: int) -> ProtoNetLearner:
    return make_learner(scheduler=functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR,
                                                    T_max=t_max))


def test_cosine_schedule_sets_each_episodes_lr_by_the_formula():
    """lr_k = lr_0 (1 + cos(pi k / T)) / 2 for episode k = 0..T-1, and 0 after T episodes."""
    learner = cosine_learner(4)
    episode = Episode(*episode_batch(), torch.arange(3))
    used = [learner.meta_train_step(episode)["lr"] for _ in range(4)]
    expected = [1e-3 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)]
    assert used == pytest.approx(expected, rel=1e-6)
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_a_restored_schedule_keeps_its_progress_and_takes_the_new_length():
    learner = cosine_learner(4)
    for _ in range(2):
        learner.meta_train_step(Episode(*episode_batch(), torch.arange(3)))
    resumed = cosine_learner(8)  # resumed with more train_episodes
    resumed.load_state_dict(learner.state_dict())
    assert resumed.scheduler.last_epoch == 2 and resumed.scheduler.T_max == 8
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3)


def test_max_pool_gets_its_gradient_channels_last_with_the_same_values() -> None:
    from snnexp.models.protonet.network import channels_last_grad

    spikes = (torch.rand(6, 3, 8, 8) > 0.7).float().contiguous(memory_format=torch.channels_last)
    grad_out = torch.randn(6, 3, 4, 4)  # contiguous, as from a flatten into a linear layer
    reached, grads = [], []
    for hook in (False, True):
        x = spikes.clone().requires_grad_()
        pooled = torch.nn.functional.max_pool2d(x, 2)
        if hook:
            pooled.register_hook(channels_last_grad)
        pooled.register_hook(reached.append)  # the gradient max-pool's backward receives
        pooled.backward(grad_out)
        grads.append(x.grad)
    assert reached[0].is_contiguous() and not reached[0].is_contiguous(
        memory_format=torch.channels_last)
    assert reached[1].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(reached[0], reached[1])
    assert torch.equal(grads[0], grads[1])  # the tie-break (first max) and values unchanged


def test_a_training_step_hands_each_max_pool_its_gradient_through_the_hook(monkeypatch) -> None:
    """Where the LIF + max-pool kernel declines (here: a learned beta), every max-pool runs
    with the layout hook."""
    import snnexp.models.protonet.network as network

    hooked = []
    real = network.channels_last_grad
    monkeypatch.setattr(network, "channels_last_grad", lambda g: hooked.append(g) or real(g))
    learner = make_learner(learn_beta=True)
    support_x, support_y, query_x, query_y = episode_batch()
    learner.meta_train_step(Episode(support_x, support_y, query_x, query_y, torch.arange(3)))
    pools = sum(spec.pool for spec in learner.net.specs)
    assert pools > 0 and len(hooked) == pools


@pytest.mark.parametrize("neuron", ["lif", "relu"])
def test_spike_pool_avg_averages_every_hidden_pool_and_leaves_the_readout_pool(neuron) -> None:
    """``model.spike_pool=avg``: the pooled output of block 0 is the 2x2 mean of its
    activations (quarters of spikes for the SNN), as for the ANN twin; ``max`` is the OR."""
    x = torch.rand(3, 1, 16, 16)
    outs = {}
    for kind in ("max", "avg"):
        net = make_network((1, 16, 16), backbone="snell4", neuron=neuron, spike_pool=kind,
                           num_steps=4).eval()
        assert net.pool_kinds() == [kind] * 3 + ["max"]
        seen: list[torch.Tensor] = []
        hook = net.norms[1].register_forward_hook(lambda m, a, o, seen=seen: seen.append(a[0]))
        with torch.no_grad():
            net(x, 4)
            first = net.norms[0](net.ops[0](x))
            act = torch.relu(first) if neuron == "relu" else net.lifs[0](
                first.contiguous(memory_format=torch.channels_last), 4, True)[0].flatten(0, 1)
        hook.remove()
        pooled = (torch.nn.functional.avg_pool2d if kind == "avg" else
                  torch.nn.functional.max_pool2d)(act, 2)
        block1_in = net.ops[1](pooled)  # block 1's conv of the pooled block-0 output
        assert torch.allclose(seen[0], block1_in, atol=1e-5)
        outs[kind] = pooled
    if neuron == "lif":
        assert set(outs["avg"].unique().tolist()) <= {0, 0.25, 0.5, 0.75, 1}
        assert set(outs["max"].unique().tolist()) <= {0, 1}
    assert not torch.equal(outs["avg"], outs["max"])
