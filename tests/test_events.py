"""Event data: tonic's dtype, pen events of Omniglot strokes, rotations as coordinate transforms,
frames, tonic's on-disk formats read back through the real loaders, and tiny runs on them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.configs import SHARED_DATA, compose

from snnexp.data.events import (
    EVENT_DTYPE,
    EventPool,
    flip_events,
    load_event_folder,
    require_tonic,
    rotate_events,
)
from snnexp.data.neuromorphic import load_nmnist, load_pokerdvs
from snnexp.data.strokes import load_omniglot_strokes, pen_events
from snnexp.encoding import FramesEncoder
from snnexp.errors import UserError
from snnexp.metrics import pixel_prototype_logits

tonic = pytest.importorskip("tonic")

TINY_EVENTS = ["encoder=frames", "train_episodes=2", "val_every=2", "val_episodes=2",
               "test_episodes=3", "model.num_steps=3", "logger=none", "threads=1", "device=cpu",
               "way=2", "shot=1", "query=2", "train_way=2", "train_query=2",
               "dataset.val_fraction=0.5"]


def events_of(xs, ys, ts, ps=None) -> np.ndarray:
    out = np.zeros(len(xs), dtype=EVENT_DTYPE)
    out["x"], out["y"], out["t"] = xs, ys, ts
    out["p"] = ps if ps is not None else True
    return out


def random_events(rng: np.random.Generator, n: int, size: int, polarities: int = 2) -> np.ndarray:
    return events_of(rng.integers(0, size, n), rng.integers(0, size, n),
                     np.sort(rng.integers(0, 100_000, n)), rng.integers(0, polarities, n) > 0)


def test_event_dtype_is_tonics():
    assert tonic.io.events_struct == EVENT_DTYPE


def test_missing_tonic_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tonic", None)
    with pytest.raises(UserError, match=r'pip install "snnexp\[events\]"'):
        require_tonic()


# -- Omniglot pen strokes --------------------------------------------------------------------

def drawing(*strokes: list[tuple[float, float, float]]) -> np.ndarray:
    return np.array([(x, y, t, s) for s, stroke in enumerate(strokes) for x, y, t in stroke])


def test_a_pen_line_inks_each_pixel_once_at_its_interpolated_time():
    # one stroke across the page at image row 52.5 (motor y = -52.5), 0..105 in 1,000 ms
    events = pen_events(drawing([(0.0, -52.5, 0.0), (105.0, -52.5, 1000.0)]), 28)
    assert events.dtype == EVENT_DTYPE
    assert events["x"].tolist() == list(range(28))  # every column, once, left to right
    assert set(events["y"].tolist()) == {14}  # 52.5 * 28 / 105 = 14
    assert events["p"].all()
    # the pen reaches column c (its left edge at c * 105 / 28) at about c / 28 of the second
    np.testing.assert_allclose(events["t"], np.arange(28) / 28 * 1e6, atol=0.5 / 28 * 1e6 + 1)


def test_a_second_stroke_over_inked_pixels_sends_no_events_and_its_first_point_counts():
    line = [(0.0, -10.0, 0.0), (105.0, -10.0, 100.0)]
    again = [(105.0, -10.0, 500.0), (0.0, -10.0, 600.0)]
    dot = [(50.0, -80.0, 900.0)]  # a one-point stroke
    events = pen_events(drawing(line, again, dot), 28)
    assert len(events) == 28 + 1
    assert (events["x"][-1], events["y"][-1]) == (13, 21)
    assert events["t"][-1] == 900_000


def test_uniform_timing_gives_each_recorded_point_equal_time():
    points = drawing([(0.0, -5.0, 0.0), (52.5, -5.0, 10.0), (105.0, -5.0, 1000.0)])
    recorded, uniform = pen_events(points, 28, "recorded"), pen_events(points, 28, "uniform")
    assert recorded["x"].tolist() == uniform["x"].tolist()  # the same pixels, the same order
    half = np.flatnonzero(uniform["x"] == 14)[0]
    assert uniform["t"][half] == pytest.approx(500_000, abs=20_000)  # the middle point at 1/2
    assert recorded["t"][half] == pytest.approx(10_000, abs=20_000)  # ...but recorded at 1%


def write_strokes(root: Path, alphabets: dict[str, int], drawings: int = 4) -> None:
    rng = np.random.default_rng(0)
    for alphabet, characters in alphabets.items():
        for c in range(characters):
            folder = (root / "omniglot-strokes" / "strokes_background" / alphabet
                      / f"character{c:02d}")
            folder.mkdir(parents=True)
            for d in range(drawings):
                lines = ["START"]
                for s in range(2):
                    t0 = 400 * s
                    for k in range(5):
                        x, y = rng.uniform(5, 100), -rng.uniform(5, 100)
                        lines.append(f"{x:.4f},{y:.4f},{t0 + 30 * k}")
                    lines.append("BREAK")
                (folder / f"{c:04d}_{d:02d}.txt").write_text("\n".join(lines) + "\n")


def test_strokes_split_by_alphabet_rotate_training_characters_and_cache_the_parse(tmp_path):
    write_strokes(tmp_path, {"Greek": 3, "Korean": 3, "Latin": 3, "Early_Aramaic": 2})
    cache = tmp_path / "cache"
    pool = load_omniglot_strokes(str(tmp_path), sensor_size=16, cache_dir=str(cache),
                                 val_alphabets=["Greek"], rotations=True)
    assert len(list(cache.glob("strokes-*.npz"))) == 1
    assert pool.image_shape == (1, 16, 16)
    splits = pool.splits()
    groups = pool.class_groups
    assert {groups[c] for c in pool.test_classes} == {"Korean", "Early_Aramaic"}  # the default
    assert {groups[c] for c in pool.val_classes} == {"Greek"}
    assert {groups[c] for c in pool.train_classes} == {"Latin"}
    train = splits["train"]
    assert len(train.events) == 4 * 3 * 4 and len(torch.unique(train.labels)) == 12
    assert len(splits["test"].events) == 5 * 4 and len(torch.unique(splits["test"].labels)) == 5
    again = load_omniglot_strokes(str(tmp_path), sensor_size=16, cache_dir=str(cache),
                                  val_alphabets=["Greek"], rotations=True)
    for a, b in zip(pool.events, again.events, strict=True):
        np.testing.assert_array_equal(a, b)


def test_strokes_refuse_a_missing_folder_and_a_bad_line_naming_them(tmp_path):
    with pytest.raises(UserError, match="no folder .*omniglot-strokes.*paths.data_dir"):
        load_omniglot_strokes(str(tmp_path / "nowhere"))
    write_strokes(tmp_path, {"Korean": 1, "Early_Aramaic": 1, "Latin": 1}, drawings=1)
    bad = next((tmp_path / "omniglot-strokes").rglob("*.txt"))
    bad.write_text("START\n1,2\n")
    with pytest.raises(UserError, match=f"{bad.name}:2: '1,2' is not 'x,y,t'"):
        load_omniglot_strokes(str(tmp_path), cache_dir=None)


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "omniglot-strokes").is_dir(),
                    reason="shared omniglot-strokes data not present")
def test_shared_strokes_give_the_omniglot_alphabet_split(tmp_path):
    pool = load_omniglot_strokes(str(SHARED_DATA), cache_dir=str(tmp_path),
                                 val_alphabets=["Greek"])
    assert len(pool.events) == 4840 and len(pool.classes) == 242
    assert {pool.class_groups[c] for c in pool.test_classes} == {"Korean", "Early_Aramaic"}
    assert len(pool.test_classes) == 62 and len(pool.val_classes) == 24


# -- symmetries and frames -------------------------------------------------------------------

def test_rotated_and_flipped_events_bin_to_the_rotated_and_flipped_frames():
    rng = np.random.default_rng(1)
    events, size = random_events(rng, 200, 9), (9, 9, 2)
    encoder = FramesEncoder(n_time_bins=None, time_window=None)
    frames = encoder.bin([events], size, 3)[0]  # [T, P, H, W]
    for k in range(4):
        rotated = encoder.bin([rotate_events(events, k, size)], size, 3)[0]
        assert torch.equal(rotated, torch.rot90(frames, k, dims=(2, 3)))
    flipped = encoder.bin([flip_events(events, size)], size, 3)[0]
    assert torch.equal(flipped, torch.flip(frames, dims=(3,)))


def test_frames_count_every_event_in_its_time_bin_and_polarity():
    events = events_of([0, 1, 1, 2, 2], [0, 0, 0, 1, 1], [0, 10, 30, 50, 89],
                       [True, False, False, True, True])
    frames = FramesEncoder(n_time_bins=None, time_window=None).bin([events], (3, 2, 2), 3)
    assert frames.shape == (1, 3, 2, 2, 3) and frames.dtype == torch.uint8
    expected = np.zeros((3, 2, 2, 3), dtype=np.uint8)  # 30 µs bins from t = 0
    expected[0, 1, 0, 0] = expected[0, 0, 0, 1] = 1
    expected[1, 0, 0, 1] = expected[1, 1, 1, 2] = 1
    expected[2, 1, 1, 2] = 1
    np.testing.assert_array_equal(frames[0].numpy(), expected)
    windowed = FramesEncoder(n_time_bins=None, time_window=20.0).bin([events], (3, 2, 2), 3)
    assert int(windowed.sum()) == 4  # 20 µs windows: the events before 60 µs (not 89)


def test_frames_feed_the_network_time_first_and_the_controls_time_summed():
    encoder = FramesEncoder(n_time_bins=None, time_window=None)
    frames = torch.randint(0, 3, (4, 5, 2, 6, 6), dtype=torch.uint8)
    x = encoder(frames, 5)
    assert x.shape == (5, 4, 2, 6, 6) and x.dtype == torch.float32
    assert torch.equal(x[2, 1], frames[1, 2].float())
    assert torch.equal(encoder.summed(frames), frames.float().sum(1))
    with pytest.raises(UserError, match=r"expected \[B, 3, P, H, W\] frames"):
        encoder(frames, 3)
    labels = torch.tensor([0, 1])
    logits = pixel_prototype_logits(frames[:2], labels, frames[2:])
    summed = pixel_prototype_logits(encoder.summed(frames[:2]), labels, encoder.summed(frames[2:]))
    assert torch.allclose(logits, summed)
    with pytest.raises(UserError, match="n_time_bins=4, model.num_steps=5"):
        FramesEncoder(n_time_bins=4, time_window=None).bin([], (2, 2, 1), 5)


def test_event_pool_rotates_only_the_training_classes():
    rng = np.random.default_rng(2)
    events = [random_events(rng, 20, 8) for _ in range(12)]
    labels = torch.arange(4).repeat_interleave(3)
    pool = EventPool(events, labels, (8, 8, 2), train_classes=[0, 1], test_classes=[2, 3],
                     val_fraction=0.34, rotations=True)
    splits = pool.splits()
    assert sorted(torch.unique(splits["train"].labels).tolist()) == [0, 1, 4, 5, 8, 9, 12, 13]
    assert sorted(torch.unique(splits["test"].labels).tolist()) == [2, 3]
    assert len(splits["test"].events) == 6
    with pytest.raises(UserError, match="not square"):
        EventPool(events, labels, (8, 9, 2), rotations=True)
    with pytest.raises(UserError, match=r"outside the sensor \(4, 4, 2\)"):
        EventPool(events, labels, (4, 4, 2))


def test_downsample_and_denoise_are_tonics():
    rng = np.random.default_rng(3)
    events = [random_events(rng, 50, 10) for _ in range(4)]
    pool = EventPool(events, torch.tensor([0, 0, 1, 1]), (10, 10, 2), downsample=0.5,
                     denoise_us=1000.0)
    assert pool.sensor_size == (5, 5, 2) and pool.image_shape == (2, 5, 5)
    expected = tonic.transforms.Compose([tonic.transforms.Denoise(filter_time=1000.0),
                                         tonic.transforms.Downsample(spatial_factor=0.5)])
    for got, sample in zip(pool.events, events, strict=True):
        np.testing.assert_array_equal(got, expected(sample))


# -- tonic's on-disk formats, read back through the real loaders -----------------------------

def write_nmnist_bin(path: Path, events: np.ndarray) -> None:
    """N-MNIST's 40-bit events (``tonic.io.read_mnist_file`` reads them): x, y, then polarity
    in bit 7 and the 23-bit time stamp (µs) big-endian over the next three bytes."""
    t = events["t"].astype(np.uint32)
    raw = np.stack([events["x"].astype(np.uint8), events["y"].astype(np.uint8),
                    ((events["p"].astype(np.uint32) << 7) | (t >> 16)).astype(np.uint8),
                    ((t >> 8) & 255).astype(np.uint8), (t & 255).astype(np.uint8)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.tofile(path)


def write_nmnist(root: Path, per_class: int = 4) -> dict[Path, np.ndarray]:
    rng, written = np.random.default_rng(4), {}
    for digit in range(10):
        for i in range(per_class):
            events = random_events(rng, 30, 34)
            events["t"] = np.sort(rng.integers(0, 2**13 - 1, 30))  # below the overflow marker
            path = root / "NMNIST" / "Train" / str(digit) / f"{i:05d}.bin"
            write_nmnist_bin(path, events)
            written[path] = events
    return written


def test_nmnist_files_read_back_through_tonic(tmp_path):
    written = write_nmnist(tmp_path)
    events = tonic.io.read_mnist_file(str(next(iter(written))), dtype=tonic.datasets.NMNIST.dtype)
    np.testing.assert_array_equal(events["t"], next(iter(written.values()))["t"])
    pool = load_nmnist(str(tmp_path), train_classes=[0, 1, 2, 3, 4], test_classes=[5, 6, 7, 8, 9])
    assert pool.sensor_size == (34, 34, 2) and len(pool.events) == 40
    for got, expected in zip(pool.events, written.values(), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert pool.labels.tolist() == [d for d in range(10) for _ in range(4)]
    assert len(load_nmnist(str(tmp_path), max_per_class=2).events) == 20


def test_nmnist_refuses_a_missing_folder_and_a_truncated_file_naming_them(tmp_path):
    with pytest.raises(UserError, match=r"dataset=nmnist: no \.bin files under .*NMNIST/Train"):
        load_nmnist(str(tmp_path))
    written = write_nmnist(tmp_path, per_class=1)
    bad = list(written)[3]
    bad.write_bytes(bad.read_bytes()[:7])
    with pytest.raises(UserError, match=f"cannot read {bad}"):
        load_nmnist(str(tmp_path))


def write_pokerdvs(root: Path, per_class: int = 3) -> list[np.ndarray]:
    rng, written = np.random.default_rng(5), []
    for symbol in ("cl", "he", "di", "sp"):
        for i in range(per_class):
            events = random_events(rng, 25, 35)
            txyp = np.stack([events["t"], events["x"], events["y"], events["p"]], axis=1)
            folder = root / "POKERDVS" / "pips_train" / symbol
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{symbol}{i}.npy", txyp.astype(np.int64))
            written.append(events)
    return written


def test_pokerdvs_files_read_back_through_tonic(tmp_path):
    written = write_pokerdvs(tmp_path)
    pool = load_pokerdvs(str(tmp_path), train_classes=[0, 1], test_classes=[2, 3])
    assert pool.sensor_size == (35, 35, 2)
    assert np.bincount(pool.labels.numpy()).tolist() == [3, 3, 3, 3]
    for c in range(4):  # tonic walks the class folders in the file system's order
        got = [e for e, label in zip(pool.events, pool.labels.tolist(), strict=True) if label == c]
        for a, b in zip(got, written[3 * c: 3 * c + 3], strict=True):
            np.testing.assert_array_equal(a, b)
    bad = tmp_path / "POKERDVS" / "pips_train" / "cl" / "cl0.npy"
    bad.write_bytes(b"not an array")
    with pytest.raises(UserError, match="cannot read .*POKERDVS/pips_train"):
        load_pokerdvs(str(tmp_path))


def write_event_folder(root: Path, classes: int = 3, per_class: int = 3) -> list[np.ndarray]:
    rng, written = np.random.default_rng(6), []
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            events = random_events(rng, 20, 12)
            np.save(root / f"class{c}" / f"{i}.npy", events)
            written.append(events)
    return written


def test_event_folder_reads_tonic_arrays_and_refuses_bad_ones_naming_them(tmp_path):
    written = write_event_folder(tmp_path / "rec")
    pool = load_event_folder(str(tmp_path / "rec"), sensor_size=[12, 12, 2])
    for got, expected in zip(pool.events, written, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert load_event_folder(str(tmp_path / "rec")).sensor_size == tuple(
        int(max(e[f].max() for e in written)) + 1 for f in ("x", "y", "p"))
    with pytest.raises(UserError, match="no such folder"):
        load_event_folder(str(tmp_path / "missing"))
    plain = tmp_path / "rec" / "class1" / "1.npy"
    np.save(plain, np.zeros((4, 4)))
    with pytest.raises(UserError, match=f"{plain}: not an event array"):
        load_event_folder(str(tmp_path / "rec"))
    plain.write_bytes(b"garbage")
    with pytest.raises(UserError, match=f"cannot read event array {plain}"):
        load_event_folder(str(tmp_path / "rec"))


# -- tiny runs on each format ----------------------------------------------------------------

@pytest.mark.parametrize("dataset", ["nmnist", "pokerdvs", "event_folder"])
def test_tiny_run_trains_and_tests_on_each_event_format(tmp_path, dataset):
    from snnexp.train import train

    extra = []
    if dataset == "nmnist":
        write_nmnist(tmp_path, per_class=6)
    elif dataset == "pokerdvs":
        write_pokerdvs(tmp_path, per_class=6)
    else:
        write_event_folder(tmp_path / "rec", classes=4, per_class=6)
        extra = [f"dataset.root={tmp_path / 'rec'}", "dataset.train_classes=[0,1]",
                 "dataset.test_classes=[2,3]"]
    metrics, objects = train(compose("train", f"dataset={dataset}", *TINY_EVENTS,
                                     f"paths.data_dir={tmp_path}",
                                     f"paths.output_dir={tmp_path / 'run'}", *extra))
    test = metrics["test"]
    for key in ("acc", "acc_pixel", "acc_untrained"):
        assert 0.0 <= test[key] <= 1.0
    assert metrics["spikes"]["input/spikes"] > 0  # the events reached the network
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_ann_twin_gets_the_time_summed_frames(tmp_path):
    from snnexp.train import train

    write_pokerdvs(tmp_path, per_class=6)
    _, objects = train(compose("train", "dataset=pokerdvs", *TINY_EVENTS, "model.neuron=relu",
                               f"paths.data_dir={tmp_path}", f"paths.output_dir={tmp_path / 'r'}"))
    learner = objects["learner"]
    frames = torch.randint(0, 3, (2, 3, 2, 35, 35), dtype=torch.uint8)
    learner.net.eval()
    with torch.no_grad():
        assert torch.allclose(learner.embed(frames), learner.net(frames.float().sum(1), 3))


def test_event_data_without_the_frames_encoder_is_one_line(tmp_path):
    from snnexp.train import train

    write_pokerdvs(tmp_path, per_class=6)
    with pytest.raises(UserError, match="gives event streams: use encoder=frames"):
        train(compose("train", "dataset=pokerdvs", *TINY_EVENTS[1:], f"paths.data_dir={tmp_path}",
                      f"paths.output_dir={tmp_path / 'r'}"))
