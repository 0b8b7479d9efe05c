"""The benchmark's measurement functions at tiny sizes, and its reference implementation."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
import torch
from helpers.scripts import load_script

from benchmarks import memory, peers, protonet, rstdp, step_profile
from benchmarks.accuracy import time_to_accuracy
from benchmarks.notebook import load_from, load_into, notebook_logits, notebook_train_step
from benchmarks.protonet import Setting
from snnexp.data.episodes import Episode
from snnexp.precision import cpu_has_bf16

TINY = Setting(way=3, shot=2, query=2, num_steps=4)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: OpenMP threads spin badly on a shared, oversubscribed machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    protonet.process_settings(True)


def _episode(s: Setting, seed: int = 0, scale: float = 3.0) -> Episode:
    gen = torch.Generator().manual_seed(seed)
    labels = lambda n: torch.arange(s.way).repeat_interleave(n)  # noqa: E731
    return Episode(torch.rand(s.way * s.shot, 1, 28, 28, generator=gen) * scale, labels(s.shot),
                   torch.rand(s.way * s.query, 1, 28, 28, generator=gen) * scale,
                   labels(s.query), torch.arange(s.way))


def _images(n_per_class: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(10 * n_per_class, 1, 28, 28, generator=gen), \
        torch.arange(10).repeat_interleave(n_per_class)


@pytest.mark.parametrize("distance", ["euclidean", "squared"])
def test_reference_logits_equal_snnexp_logits_for_the_same_weights(distance):
    s = dataclasses.replace(TINY, distance=distance)
    learner = protonet.snnexp_learner(s)
    ref, _ = protonet.notebook_twin(learner, s)
    ep = _episode(s)
    ours = learner.predict(ep.support_x, ep.support_y, ep.query_x)
    with torch.no_grad():
        theirs = notebook_logits(ref, ep.support_x, ep.support_y, ep.query_x, s.way)
    assert ours.abs().max() > 0
    expected = theirs if distance == "euclidean" else -(theirs**2)
    assert torch.allclose(ours, expected, rtol=1e-4, atol=1e-5)


def test_reference_and_snnexp_embeddings_and_gradients_agree():
    learner = protonet.snnexp_learner(TINY)
    ref, _ = protonet.notebook_twin(learner, TINY)
    x = _episode(TINY).support_x
    learner.net.train()
    ours = learner.net(x, TINY.num_steps)  # static: [B, C, H, W]
    theirs = ref(x)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    ours.pow(2).sum().backward()
    theirs.pow(2).sum().backward()
    pairs = [(ref.conv1, learner.net.ops[0]), (ref.conv2, learner.net.ops[1]),
             (ref.fc1, learner.net.ops[2][1])]
    for a, b in pairs:
        assert torch.allclose(a.weight.grad, b.weight.grad, rtol=1e-4, atol=1e-5)


def test_weights_round_trip_between_reference_and_snnexp():
    learner, other = protonet.snnexp_learner(TINY), protonet.snnexp_learner(TINY, seed=1)
    ref, opt = protonet.notebook_twin(learner, TINY)
    notebook_train_step(ref, opt, _episode(TINY))  # the reference's weights move away
    load_from(other.net, ref)
    back = load_into(protonet.notebook_twin(learner, TINY)[0], other.net)
    for a, b in zip(ref.parameters(), back.parameters(), strict=True):
        assert torch.equal(a, b)


def test_training_and_test_speed_report_positive_ratios():
    images, labels = _images()
    train = protonet.training_speed(TINY, seconds=0.03, images=images, labels=labels)
    assert train["protonet_speedup"] > 0
    assert train["ref_train_s_per_episode"] > 0 and train["snnexp_train_s_per_episode"] > 0
    test = protonet.test_speed(TINY, seconds=0.02, images=images, labels=labels)
    assert test["test_speedup"] > 0 and test["snnexp_test_episodes_per_s"] > 0


def test_flop_count_of_the_notebook_architecture():
    learner = protonet.snnexp_learner(TINY)
    macs = [24 * 24 * 16 * 25, 10 * 10 * 32 * 16 * 9, 800 * 64]
    assert learner.net.macs == macs
    batch, steps = 12, TINY.num_steps
    assert protonet.train_flops(learner, batch) == 4 * batch * macs[0] + \
        6 * steps * batch * (macs[1] + macs[2])
    assert protonet.notebook_flops(learner, batch) > protonet.train_flops(learner, batch)
    out = protonet.flop_fraction(1.0, TINY, matmul_seconds=0.01)
    assert 0 < out["flop_fraction"] < 1 and out["matmul_gflop_per_s"] > 0


def test_time_to_accuracy_stops_at_the_target_or_the_cap():
    accs = iter([0.5, 0.9, 0.99, 1.0])
    out = time_to_accuracy(lambda: None, lambda: next(accs), 0.95, cap_s=60, val_every=3)
    assert out["reached"] and out["episodes"] == 9 and len(out["curve"]) == 3
    capped = time_to_accuracy(lambda: None, lambda: 0.5, 0.95, cap_s=60, val_every=4,
                              max_episodes=6)
    assert not capped["reached"] and capped["episodes"] == 6 and capped["best_acc"] == 0.5
    slow = time_to_accuracy(lambda: time.sleep(0.02), lambda: 0.5, 0.95, cap_s=0.05,
                            val_every=1000)
    assert slow["episodes"] < 10 and len(slow["curve"]) == 1  # capped inside the block


def test_rstdp_measurement_and_loop_agree_on_sizes():
    out = rstdp.measure_rstdp_speedup(seconds=0.05, episodes=2)
    assert out["rstdp_speedup"] > 1 and out["loop_updates_per_s"] > 0
    assert out["rstdp_episodes_together"] == 2
    assert rstdp.updates_per_batch() == 25 * 288 * 5 * 31


@pytest.mark.parametrize("impl", ["snnexp", "notebook"])
def test_memory_of_a_tiny_step(impl):
    out = memory.step_peak(2, 1, 1, 2, impl)
    assert out["baseline_mb"] > 0 and out["peak_mb"] > 0


@pytest.mark.slow
def test_memory_of_a_tiny_step_in_a_fresh_process_is_not_the_parents():
    """The probe's peak is its own: a parent holding 2 GB more than the probe ever needs (the
    bench after its other sections) must not show in it, as it does in a child's ru_maxrss."""
    ballast = torch.ones(2**29)  # 2 GiB, touched
    out = memory.measure(2, 1, 1, 2, "snnexp", timeout=120)
    assert out["peak_mb"] >= out["baseline_mb"] > 0
    assert out["peak_mb"] < memory._rss_mb() - 1024
    del ballast


def _bench_module():
    return load_script("bench")


def test_bench_table_prints_each_ratio_with_its_target():
    bench = _bench_module()
    res = {"machine": "cpu", "threads": 1, "load_before": 1.0, "load_after": 1.0,
           "bench_wall_s": 1.0, "snnexp_train_s_per_episode": 0.5,
           "ref_train_s_per_episode": 2.0, "ref_tuned_train_s_per_episode": 1.0,
           "protonet_speedup": 4.0, "protonet_speedup_same_process_settings": 2.0,
           "train_gflop_per_episode": 15.0, "train_gflop_per_s": 30.0,
           "matmul_gflop_per_s": 100.0, "flop_fraction": 0.3}
    text = bench.table(res)
    assert ">= 3x" in text and "| yes" in text
    assert ">= 40%" in text and "30%" in text and "| NO" in text
    assert bench.parse(["rstdp", "--json"]).sections == ["rstdp"]
    with pytest.raises(SystemExit):
        bench.parse(["nonsense"])
    assert math.isclose(bench.TARGETS["rstdp_speedup"], 1000)


def test_peer_layers_of_snnexp_and_snntorch_give_identical_spikes_and_gradients():
    x = torch.rand(20, 2, 8, generator=torch.Generator().manual_seed(1))
    out = {}
    for name in ("snnexp", "snntorch"):
        layer = peers.build(name, 8)
        spikes = layer.spikes(x)
        spikes.sum().backward()
        out[name] = spikes.detach(), layer.linear.weight.grad
    assert out["snnexp"][0].shape == (20, 2, 8) and 0 < out["snnexp"][0].mean() < 1
    assert torch.equal(out["snnexp"][0], out["snntorch"][0])
    assert torch.allclose(out["snnexp"][1], out["snntorch"][1], rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not cpu_has_bf16(), reason="no bfloat16 on this CPU")
def test_peer_layer_in_bf16_keeps_float32_spikes_and_weight_gradients():
    layer = peers.build("snnexp_bf16", 8)
    spikes = layer.spikes(torch.rand(20, 2, 8, generator=torch.Generator().manual_seed(1)))
    spikes.sum().backward()
    assert spikes.dtype == torch.float32 and 0 < spikes.mean() < 1
    assert layer.linear.weight.grad.dtype == torch.float32
    assert torch.isfinite(layer.linear.weight.grad).all()


def _without(missing: set[str], monkeypatch) -> None:
    real = peers.import_module

    def fake(module: str):
        if module.split(".")[0] in missing:
            raise ImportError(f"No module named {module!r}")
        return real(module)
    monkeypatch.setattr(peers, "import_module", fake)


def test_a_missing_peer_is_skipped_with_one_line(monkeypatch, capsys):
    _without({"norse", "spikingjelly"}, monkeypatch)
    out = peers.peer_table([8, 16], rounds=1, steps=5, batch=2)
    err = capsys.readouterr().err.splitlines()
    assert err == ['peer norse: not installed (pip install -e ".[bench]")',
                   'peer spikingjelly: not installed (pip install -e ".[bench]")']
    assert out["peers_skipped"] == {"norse": "not installed", "spikingjelly": "not installed"}
    ours = {"snnexp", "snnexp_bf16"} if cpu_has_bf16() else {"snnexp"}
    for run, n in zip(out["peers"], [8, 16], strict=True):
        assert run["n"] == n and set(run["s"]) == ours | {"snntorch"}
        assert (run["floor_bf16_s"] is not None) == ("snnexp_bf16" in ours)
        assert run["fastest_peer"] == "snntorch" and run["floor_s"] > 0
        assert run["ratio_to_fastest_peer"]["snntorch"] == 1.0
    assert out["peers_speedup_8"] == out["peers"][0]["ratio_to_fastest_peer"]["snnexp"]


def test_bench_prints_the_peer_table_and_its_json(monkeypatch, capsys):
    import json

    from benchmarks import peers as bench_peers
    _without({"norse", "spikingjelly"}, monkeypatch)
    real = bench_peers.peer_table
    monkeypatch.setattr(bench_peers, "peer_table",
                        lambda sizes, rounds: real(sizes, rounds, steps=4, batch=2))
    bench = _bench_module()
    assert bench.parse(["--peers"]).peers and bench.parse(["--sizes", "8", "16"]).sizes == [8, 16]
    assert bench.main(["--peers", "--sizes", "8", "--rounds", "1", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert [p["n"] for p in res["peers"]] == [8]
    assert set(res["peers_skipped"]) == {"norse", "spikingjelly"}
    assert "protonet_speedup" not in res and res["peers_speedup_8"] > 0
    text = bench.table(res)
    assert "7 peers N=8 T=4 B=2" in text and "snnTorch Leaky" in text and "Norse" not in text
    assert ">= 1.5x" in text and "matmul floor" in text and "peers skipped: norse (" in text


def test_step_profile_charges_every_operator_to_one_part():
    images, labels = _images()
    shares = step_profile.step_profile(TINY, images, labels)
    parts = [part for part, _ in step_profile.PARTS] + [step_profile.OTHER]
    assert set(shares) == {*parts, "ms_per_step"} and shares["ms_per_step"] > 0
    assert sum(shares[p] for p in parts) == pytest.approx(1.0)
    # a spiking conv net's step spends time in its LIF + max-pool kernel (the conv blocks), the
    # scan of its last layer and its convolutions; no max-pool runs outside the kernel
    kernel, scan, pool, convs = parts[:4]
    for part in (kernel, scan, convs):
        assert 0 < shares[part] < 1, part
    assert shares[pool] == 0
    lines = _bench_module().profile_lines({"fp32": shares})
    assert lines[1].startswith("| part of the train step") and len(lines) == 3 + len(parts)
