"""NIR export (``snnexp.nir_export``, ``python -m snnexp.export``) verified by re-import.

Trained tiny runs of both backbones are exported and read back with ``snnexp.nir_reader``
(nirtorch's graph interpreter; forward Euler at the sidecar's ``dt``). On the same images the
spikes of every layer are identical and the embeddings equal within 1e-5, and the 5-way
predictions agree on 20 test episodes. Spike identity is checked in float64: the reader sums a
node's inputs before it leaks (``beta v + (I - theta s)``), the network after
(``(beta v + I) - theta s``), so in float32 a membrane within a rounding error (~1e-7) of the
threshold may fall on either side; in float64 that window is ~1e-16.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from helpers.cli import run_cli
from helpers.configs import REPO, TINY, compose
from helpers.protonet import make_network

from snnexp import builders, checkpoint
from snnexp.errors import UserError
from snnexp.export import export_checkpoint
from snnexp.nir_export import DT, export_graph, fold_batchnorm
from snnexp.nir_reader import NIRLearner, NIRStepper, load_learner
from snnexp.train import train

# notebook: max-pools of spikes; snell4: average pools of spikes and of the readout's membranes
BACKBONES = {"notebook": [], "snell4": ["model/backbone=snell4", "model.readout=integrator",
                                       "model.spike_pool=avg", "model.readout_pool=avg"]}


def _train(run_dir: Path, *overrides: str) -> dict:
    metrics, _ = train(compose("train", *TINY, "model.num_steps=4", "test_episodes=4",
                               f"paths.output_dir={run_dir}", *overrides))
    return metrics


@pytest.fixture(scope="module", params=list(BACKBONES))
def exported(request, tmp_path_factory) -> dict:
    """A trained tiny run of one backbone, exported to ``<run>/export/model.nir``."""
    run = tmp_path_factory.mktemp(request.param)
    metrics = _train(run, *BACKBONES[request.param])
    path = export_checkpoint(compose("export", f"ckpt_path={run}",
                                     f"paths.output_dir={run / 'export_log'}"))
    ckpt = checkpoint.resolve_checkpoint(run, "tested")
    state = checkpoint.load_checkpoint(ckpt)
    cfg = checkpoint.checkpoint_config(state, ckpt)
    pool = builders.build_pool(cfg.dataset)
    learner = checkpoint.restore_learner(cfg, state, pool.image_shape, torch.device("cpu"))
    return {"run": run, "path": path, "metrics": metrics, "cfg": cfg, "pool": pool,
            "learner": learner, "backbone": request.param}


def _reference_spikes(net, images: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """Spikes ``[T, B, ...]`` of every LIF layer of ``net``, from its own forward."""
    out: list[torch.Tensor] = []
    hooks = [lif.register_forward_hook(lambda m, a, o: out.append(o[0])) for lif in net.lifs]
    try:
        embedding = net(images, steps)
    finally:
        for hook in hooks:
            hook.remove()
    return out, embedding


def test_export_writes_a_graph_and_its_sidecar(exported):
    path = exported["path"]
    assert path == exported["run"] / "export" / "model.nir" and path.is_file()
    side = json.loads(path.with_suffix(".json").read_text())
    cfg = exported["cfg"]
    assert side["num_steps"] == 4 and side["dt"] == DT
    assert side["readout"] == cfg.model.readout and side["distance"] == cfg.model.distance
    assert side["input_shape"] == [1, 28, 28]
    assert side["encoder"]["_target_"].endswith("DirectEncoder")
    graph = nir.read(str(path))
    kinds = {type(node).__name__ for node in graph.nodes.values()}
    assert {"Conv2d", "LI", "Threshold", "Scale"} <= kinds
    assert "LIF" not in kinds and "MaxPool2d" not in kinds
    pool = {"notebook": "SumPool2d", "snell4": "AvgPool2d"}[exported["backbone"]]
    assert {type(n).__name__ for k, n in graph.nodes.items() if k.endswith(".pool")} == {pool}


def test_reimported_graph_fires_the_same_spikes_in_every_layer(exported):
    net = exported["learner"].net.double().eval()
    images = torch.as_tensor(exported["pool"].splits()["test"].images[:12]).double()
    steps = int(exported["cfg"].model.num_steps)
    stepper = NIRStepper(exported["path"], DT)
    stepper.module = stepper.module.double()
    with torch.no_grad():
        ref, ref_embedding = _reference_spikes(net, images, steps)
        outs, rec = stepper.run(images, steps, static=True, record=True)
    compared = 0
    for i, (spec, lif) in enumerate(zip(net.specs, net.lifs, strict=True)):
        if not lif.fires:
            continue
        assert torch.equal(rec[f"block{i}_lif_spike"], ref[i]), f"block {i} spikes differ"
        compared += 1
        if spec.pool and i < len(net.specs) - 1:
            kind = net.pool_kinds()[i]
            pooled = getattr(torch.nn.functional, f"{kind}_pool2d")(ref[i].flatten(0, 1), 2)
            node = f"block{i}_pool_spike" if kind == "max" else f"block{i}_pool"
            assert torch.equal(rec[node].flatten(0, 1), pooled)
    assert compared >= 3 and sum(float(s.sum()) for s in ref) > 0  # spikes to compare
    embedding = outs.mean(0).flatten(1)
    # the file holds float32 weights (batch norm folded in float64, then rounded)
    assert torch.allclose(embedding, ref_embedding, atol=1e-6, rtol=0)
    exported["learner"].net.float()


def test_reimported_graph_embeds_and_predicts_as_the_network(exported):
    learner, cfg = exported["learner"], exported["cfg"]
    side = json.loads(exported["path"].with_suffix(".json").read_text())
    nir_learner = load_learner(exported["path"], side, cfg, exported["pool"].image_shape,
                               torch.device("cpu"))
    assert isinstance(nir_learner, NIRLearner)
    sampler = builders.build_sampler(exported["pool"].splits()["test"], 5, 1, 5, 3, "test")
    for n in range(20):
        ep = sampler.sample()
        images = torch.cat([torch.as_tensor(ep.support_x), torch.as_tensor(ep.query_x)])
        if n < 2:
            learner.net.eval()
            with torch.no_grad():
                ref = learner.net(images, learner.num_steps)
            assert torch.allclose(nir_learner.embed(images), ref, atol=1e-5, rtol=0)
        mine = learner.predict(ep.support_x, ep.support_y, ep.query_x).argmax(1)
        theirs = nir_learner.predict(ep.support_x, ep.support_y, ep.query_x).argmax(1)
        assert torch.equal(mine, theirs), f"episode {n}"


def test_eval_of_the_nir_file_reproduces_the_runs_test(exported, tmp_path):
    from snnexp.eval import evaluate_checkpoint

    metrics = evaluate_checkpoint(compose("eval", "threads=1", f"ckpt_path={exported['path']}",
                                          f"paths.output_dir={tmp_path}"))
    run_test = exported["metrics"]["test"]
    assert metrics["test"]["episodes"] == run_test["episodes"] == 4
    assert metrics["test"]["acc"] == pytest.approx(run_test["acc"], abs=1e-12)
    assert metrics["test"]["acc_pixel"] == run_test["acc_pixel"]
    assert (tmp_path / "metrics.json").is_file() and metrics["ckpt_path"].endswith(".nir")


def test_the_deploy_page_snippet_loads_the_file(exported):
    page = (REPO / "docs" / "deploy.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    assert len(snippet.strip().splitlines()) <= 6
    scope: dict = {}
    exec(snippet.replace("outputs/main/export", str(exported["path"].parent)), scope)
    assert scope["embedding"].shape == (8, exported["learner"].net.embedding_dim)
    assert torch.isfinite(scope["embedding"]).all()


def test_lif_layer_maps_to_li_threshold_and_a_delayed_reset_edge():
    # beta = 0.75 and theta = 0.5 by hand: tau = dt / (1 - beta) = 4 dt, r = tau / dt = 4
    net = make_network(backbone="notebook", beta=0.75, threshold=0.5)
    graph = export_graph(net.eval(), (1, 8, 8))
    li, spike, reset = (graph.nodes[f"block0.lif.{k}"] for k in ("li", "spike", "reset"))
    assert np.allclose(li.tau, 4 * DT) and np.allclose(li.r, 4.0) and np.allclose(li.v_leak, 0)
    assert np.allclose(spike.threshold, 0.5) and np.allclose(reset.scale, -0.5)
    edges = set(graph.edges)
    assert {("block0.lif.li", "block0.lif.spike"), ("block0.lif.spike", "block0.lif.reset"),
            ("block0.lif.reset", "block0.lif.li"), ("block0.conv", "block0.lif.li")} <= edges
    # max-pool over binary spikes: SumPool2d then Threshold(0.5)
    assert ("block0.lif.spike", "block0.pool") in edges
    assert isinstance(graph.nodes["block0.pool"], nir.SumPool2d)
    assert np.allclose(graph.nodes["block0.pool_spike"].threshold, 0.5)


def test_fold_batchnorm_by_hand():
    conv = torch.nn.Conv2d(1, 1, 1)
    conv.weight.data.fill_(2.0)
    conv.bias.data.fill_(1.0)
    norm = torch.nn.BatchNorm2d(1, eps=0.0).eval()
    norm.running_mean.fill_(3.0)
    norm.running_var.fill_(4.0)
    norm.weight.data.fill_(0.5)
    norm.bias.data.fill_(0.25)
    weight, bias = fold_batchnorm(conv, norm)
    # scale = 0.5 / sqrt(4) = 0.25: w' = 2 * 0.25 = 0.5, b' = (1 - 3) * 0.25 + 0.25 = -0.25
    assert weight.reshape(-1).tolist() == [0.5] and bias.tolist() == [-0.25]


@pytest.mark.parametrize(("settings", "named"), [
    ({"backbone": "snell4", "readout": "integrator", "readout_pool": "max"},
     "model.readout=integrator with model.readout_pool=max"),
    ({"neuron": "relu"}, "model.neuron=relu")])
def test_unexportable_settings_are_refused_naming_what_exports(settings, named):
    net = make_network(input_shape=(1, 16, 16), **settings)
    with pytest.raises(UserError, match="^" + named) as err:
        export_graph(net.eval(), (1, 16, 16))
    assert "export" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_export_cli_refuses_a_max_pool_over_membranes_in_one_line(tmp_path):
    run = tmp_path / "run"
    _train(run, "model/backbone=snell4", "model.readout=integrator", "test_episodes=2")
    proc = run_cli(f"ckpt_path={run}", f"hydra.run.dir={tmp_path / 'log'}",
                   module="snnexp.export")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in output, output
    lines = [ln for ln in output.splitlines() if "ERROR" in ln]
    assert len(lines) == 1 and "model.readout_pool=avg" in lines[0]
    assert not (run / "export").exists()
