"""snnexp's benchmark: every figure measured side by side in one run, printed as one table.

    python scripts/bench.py                 # all sections (< 15 min on 2 cores)
    python scripts/bench.py rstdp memory    # only these sections
    python scripts/bench.py --json          # the same figures as one JSON object
    python scripts/bench.py --peers --sizes 512 --rounds 2   # only the peer benchmark

Sections: ``protonet`` (meta-training episodes/s vs the notebook's computation), ``flops``
(achieved GFLOP/s of that step vs a matmul's), ``t98`` (training time to 98% validation accuracy on
``experiment=seed_mnist``), ``test`` (test episodes/s), ``rstdp`` (R-STDP synapse updates/s vs a
per-synapse loop), ``memory`` (peak memory of 20-way 5-shot training), ``profile`` (where the time
of the ``protonet`` step goes, by part: ``benchmarks/step_profile.py``), ``peers`` (one Linear +
LIF layer, T=500, batch 16, forward + backward, in snnexp, snnTorch, Norse and SpikingJelly, and
the layer's matmul floor: ``benchmarks/peers.py``; peers missing are skipped, ``pip install -e
".[bench]"`` installs them). ``peers`` runs at 512 and 4,096 neurons when asked for (``--peers`` or
``peers``), at 512 only in a run of all sections.
The measurement code is ``benchmarks/`` (next to ``scripts/``, not installed); the reference is
``benchmarks/notebook.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root: benchmarks/
from benchmarks import accuracy, memory, peers, protonet, rstdp, step_profile  # noqa: E402
from benchmarks.protonet import Setting  # noqa: E402

SECTIONS = ("protonet", "flops", "profile", "t98", "test", "rstdp", "memory", "peers")
TARGETS = {"protonet_speedup": 3.0, "protonet_speedup_bf16": 3.0, "flop_fraction": 0.40,
           "flop_fraction_bf16": 0.40, "time_to_98_speedup": 10.0,
           "rstdp_speedup": 1000.0, "peers_speedup": 1.5}
PEER_SIZES, PEER_SIZES_ALL = [512, 4096], [512]  # asked for | in a run of all sections
PEER_LABELS = {"snntorch": "snnTorch Leaky, stepped in Python", "norse": "Norse LIF",
               "spikingjelly": "SpikingJelly LIFNode multi-step (torch)"}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    protonet.process_settings(True)
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = list(args.sections) + (["peers"] if args.peers else [])
    everything = not sections
    sections = sections or list(SECTIONS)
    start = time.perf_counter()
    res: dict = {"machine": machine(), "threads": torch.get_num_threads(),
                 "load_before": os.getloadavg()[0]}
    if "peers" in sections:
        sizes = args.sizes or (PEER_SIZES_ALL if everything else PEER_SIZES)
        res.update(peers.peer_table(sizes, rounds=args.rounds))
    if sections == ["peers"]:
        return _print(res, start, args.json)
    images, labels = protonet.mnist_images(args.data_dir)
    if "protonet" in sections or "flops" in sections:
        res.update(protonet.training_speed(seconds=args.seconds * 60, images=images,
                                           labels=labels))
    if "flops" in sections:
        res.update(protonet.flop_fraction(res["snnexp_train_s_per_episode"],
                                          bf16_s_per_episode=res.get(
                                              "snnexp_bf16_train_s_per_episode")))
    if "profile" in sections:
        res.update(step_profile.profile_table(images, labels))
    if "test" in sections:
        res.update(protonet.test_speed(seconds=args.seconds * 20, images=images, labels=labels))
    if "rstdp" in sections:
        res.update(rstdp.measure_rstdp_speedup(seconds=args.seconds * 8))
    if "memory" in sections:
        res.update(memory.memory_table())
    if "t98" in sections:
        fast = Setting(num_steps=args.fast_steps, lr=args.fast_lr, way=args.fast_way,
                       distance=args.fast_distance)
        t98 = accuracy.time_to_98(args.data_dir, fast, fast_cap_s=args.fast_cap,
                                  notebook_cap_s=args.notebook_cap)
        res["time_to_98_speedup"] = t98.pop("time_to_98_speedup")
        res["time_to_98"] = t98
    return _print(res, start, args.json)


def _print(res: dict, start: float, as_json: bool) -> int:
    res["bench_wall_s"] = time.perf_counter() - start
    res["load_after"] = os.getloadavg()[0]
    if as_json:
        print(json.dumps(res, default=float))
    else:
        print(table(res))
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("sections", nargs="*", choices=[*SECTIONS, []], metavar="SECTION",
                   help=f"any of {', '.join(SECTIONS)} (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads of both sides (default 1: on a shared machine OpenMP "
                        "threads wait for each other; 0 = torch's default)")
    p.add_argument("--peers", action="store_true",
                   help="run the peer benchmark (alone, unless sections are named)")
    p.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N",
                   help=f"peers: neurons per layer (default {' '.join(map(str, PEER_SIZES))}; "
                        f"{' '.join(map(str, PEER_SIZES_ALL))} in a run of all sections)")
    p.add_argument("--rounds", type=int, default=2,
                   help="peers: rounds of one call per library (the fastest counts)")
    p.add_argument("--seconds", type=float, default=1.0,
                   help="scale of the timing windows (1.0: about 1 min for protonet)")
    p.add_argument("--data-dir", default="../shared/data", help="folder holding MNIST/raw")
    p.add_argument("--fast-steps", type=int, default=10, help="t98: snnexp's num_steps")
    p.add_argument("--fast-lr", type=float, default=2e-3, help="t98: snnexp's learning rate")
    p.add_argument("--fast-way", type=int, default=10, help="t98: snnexp's train_way")
    p.add_argument("--fast-distance", default="euclidean", choices=("euclidean", "squared"),
                   help="t98: snnexp's model.distance")
    p.add_argument("--fast-cap", type=float, default=200.0, help="t98: snnexp's cap (s)")
    p.add_argument("--notebook-cap", type=float, default=None,
                   help="t98: cap of the notebook-settings run (s; default: 10x the training "
                        "time of snnexp's run, enough to decide the 10x target); if it is hit "
                        "first, the speedup printed is a lower bound")
    return p.parse_args(argv)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) >= 1e5:
        return f"{x:.3g}{unit}"
    return f"{x:,.3g}{unit}" if abs(x) < 100 else f"{x:,.0f}{unit}"


def rows(r: dict) -> list[tuple[str, str, str, str, str, str]]:
    """``(figure, snnexp, reference, ratio, target, met)`` for each measured figure."""
    out = []

    def add(name: str, ours: str, ref: str, key: str | None, ratio: float | None,
            prefix: str = "") -> None:
        target = TARGETS.get(key or "")
        met = "-" if target is None or ratio is None or math.isnan(ratio) else \
            ("yes" if ratio >= target else "NO")
        tgt = "-" if target is None else (f">= {target:.0%}" if target < 1 else
                                          f">= {target:g}x")
        shown = "-" if ratio is None else (f"{ratio:.0%}" if key and key.startswith("flop")
                                           else f"{prefix}{ratio:,.3g}x")
        out.append((name, ours, ref, shown, tgt, met))

    if "protonet_speedup" in r:
        add("1 train episodes/s (28x28 5w5s15q T=50)",
            _fmt(1 / r["snnexp_train_s_per_episode"]),
            _fmt(1 / r["ref_train_s_per_episode"]), "protonet_speedup", r["protonet_speedup"])
        add("  vs notebook with snnexp's process settings", "",
            _fmt(1 / r["ref_tuned_train_s_per_episode"]), None,
            r["protonet_speedup_same_process_settings"])
    if "protonet_speedup_bf16" in r:
        add("  snnexp precision=bf16 vs notebook (fp32)",
            _fmt(1 / r["snnexp_bf16_train_s_per_episode"]),
            _fmt(1 / r["ref_train_s_per_episode"]), "protonet_speedup_bf16",
            r["protonet_speedup_bf16"])
    if "flop_fraction" in r:
        add(f"2 GFLOP/s of the train step ({r['train_gflop_per_episode']:.1f} GFLOP) / matmul",
            _fmt(r["train_gflop_per_s"]), _fmt(r["matmul_gflop_per_s"]) + " (mm)",
            "flop_fraction", r["flop_fraction"])
    if "flop_fraction_bf16" in r:
        add("  precision=bf16: GFLOP/s / bf16 matmul", _fmt(r["train_gflop_per_s_bf16"]),
            _fmt(r["matmul_gflop_per_s_bf16"]) + " (mm bf16)", "flop_fraction_bf16",
            r["flop_fraction_bf16"])
    if "time_to_98" in r:
        t = r["time_to_98"]
        fast, nb = t["fast"], t["notebook"]
        lower = t["time_to_98_speedup_is_lower_bound"]
        add(f"3 train s to {t['target']:.0%} val acc (T={fast['num_steps']} lr={fast['lr']:g} "
            f"way={fast['train_way']} vs notebook)",
            _sec(fast), _sec(nb), "time_to_98_speedup", r["time_to_98_speedup"],
            prefix=">= " if lower else "")
    if "test_speedup" in r:
        add("4 test episodes/s", _fmt(r["snnexp_test_episodes_per_s"]),
            _fmt(r["ref_test_episodes_per_s"]), None, r["test_speedup"])
    if "rstdp_speedup" in r:
        add(f"5 R-STDP synapse updates/s ({r['rstdp_episodes_together']:.0f} episodes together)",
            _fmt(r["vectorised_updates_per_s"]), _fmt(r["loop_updates_per_s"]) + " (loop)",
            "rstdp_speedup", r["rstdp_speedup"])
        add("  one episode at a time", _fmt(r["vectorised_one_episode_updates_per_s"]),
            _fmt(r["loop_updates_per_s"]), None, r["rstdp_speedup_one_episode"])
    if "peak_mb_20w5s_T50" in r:
        add("6 peak MiB of a 20w5s15q T=50 train step", _fmt(r["peak_mb_20w5s_T50"]),
            _fmt(r["peak_mb_20w5s_T50_notebook"]), None,
            r["peak_mb_20w5s_T50_notebook"] / r["peak_mb_20w5s_T50"])
        add("  MiB per train_way (T=50) | per time step (20w)",
            f"{r['mb_per_train_way_T50']:.0f} | {r['mb_per_step_20w']:.1f}", "", None, None)
    for p in r.get("peers", []):
        sec, ratio, fastest = p["s"], p["ratio_to_fastest_peer"], p["fastest_peer"]
        add(f"7 peers N={p['n']:,} T={p['steps']} B={p['batch']}: s per fwd+bwd "
            "(ratio: fastest peer s / s)", _fmt(sec.get("snnexp"), " s"),
            "-" if fastest is None else f"{_fmt(sec[fastest], ' s')} ({fastest})",
            "peers_speedup", ratio.get("snnexp"))
        if "snnexp_bf16" in sec:
            add("  snnexp with the Linear in bf16 (precision=bf16)",
                _fmt(sec["snnexp_bf16"], " s"), "", "peers_speedup", ratio.get("snnexp_bf16"))
        for name, label in PEER_LABELS.items():
            if name in sec:
                add(f"  {label}", "", _fmt(sec[name], " s"), None, ratio.get(name))
        add("  matmul floor: the Linear's fwd+bwd on [T*B, N] alone", "",
            _fmt(p["floor_s"], " s"), None, None)
        if p.get("floor_bf16_s") is not None:
            add("  matmul floor in bf16", "", _fmt(p["floor_bf16_s"], " s"), None, None)
    return out


def _sec(run: dict) -> str:
    mark = "" if run["reached"] else f" (cap; best {run['best_acc']:.1%})"
    return f"{run['seconds']:.0f} s / {run['episodes']} ep{mark}"


def profile_lines(profile: dict[str, dict[str, float]]) -> list[str]:
    """The ``profile`` section: each part's share of the training step's CPU time."""
    if not profile:
        return []
    parts = [k for k in next(iter(profile.values())) if k != "ms_per_step"]
    head = ["part of the train step (self CPU time)",
            *(f"{name} ({v['ms_per_step']:,.0f} ms/step)" for name, v in profile.items())]
    body = [[part, *(f"{v[part]:.0%}" for v in profile.values())] for part in parts]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    line = lambda row: "| " + " | ".join(  # noqa: E731
        c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
    return ["", line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
            *map(line, body)]


def table(r: dict) -> str:
    head = ("figure", "snnexp", "reference", "ratio", "target", "met")
    body = rows(r)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body),
           ""] if body else []
    out.append(f"{r['machine']}; torch threads {r['threads']}; load average "
               f"{r['load_before']:.2f} -> {r['load_after']:.2f}; bench {r['bench_wall_s']:.0f} s")
    if "time_to_98" in r:
        t = r["time_to_98"]
        out.append(f"t98: training seconds only (validation on {t['val_queries']} fixed queries "
                   "excluded); a run that hits its cap makes the ratio a lower bound.")
    out += profile_lines(r.get("profile", {}))
    if r.get("peers_skipped"):
        out.append("peers skipped: " + ", ".join(f"{k} ({v})"
                                                 for k, v in r["peers_skipped"].items()))
    if "protonet_speedup" in r:
        out.append("reference = the notebook's computation (benchmarks.notebook) with "
                   "PyTorch's default process settings, as the notebook ran.")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
