"""DeepEyes statistics (Pezzotti et al., TVCG 2018): exact values on hand-set activations, the
streaming object against a slow literal implementation, the training monitor against an
offline pass, deepeyes.npz and the ``deepeyes`` command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from aomcore import (
    DeepEyesSeries,
    DeepEyesStats,
    InputError,
    TrainConfig,
    TrainingMonitor,
    build_model,
    compute_deepeyes,
    evaluate,
    load_deepeyes_npz,
    perplexity,
    perplexity_bin_edges,
    save_deepeyes_npz,
    save_state_dict,
    stack_deepeyes,
    train,
)
from tests.conftest import DEVICES, REPO

from ..helpers import pixel_model, tiny_dataset

# --------------------------------------------------------------------------------------
# A slow, literal implementation of the definitions (loops over samples and kernels)
# --------------------------------------------------------------------------------------


def literal_perplexity(v) -> float:
    v = [max(float(x), 0.0) for x in v]
    total = sum(v)
    if total == 0:
        return float(len(v))
    h = -sum((x / total) * math.log2(x / total) for x in v if x > 0)
    return min(max(2.0**h, 1.0), float(len(v)))


def literal_deepeyes(acts: np.ndarray, labels: np.ndarray, n_classes: int, bins: int = 30) -> dict:
    """acts (N, K, H, W), every position a sample."""
    n, k, h, w = acts.shape
    samples, owners = [], []
    for img in range(n):
        for i in range(h):
            for j in range(w):
                samples.append([max(float(acts[img, kk, i, j]), 0.0) for kk in range(k)])
                owners.append(img)
    perps = [literal_perplexity(s) for s in samples]
    edges = np.linspace(1.0, k, bins + 1)
    hist = np.zeros(bins, dtype=np.int64)
    for p in perps:
        b = bins - 1 if p >= edges[-1] else max(i for i in range(bins) if edges[i] <= p)
        hist[b] += 1
    mu = [max(s[kk] for s in samples) for kk in range(k)]
    freq = [sum(1 for s in samples if s[kk] > 0.5 * mu[kk]) / len(samples) for kk in range(k)]
    sim = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            num = sum(min(s[a], s[b]) for s in samples)
            den = sum(max(s[a], s[b]) for s in samples)
            sim[a, b] = 1.0 if a == b else (num / den if den > 0 else 0.0)
    q = np.zeros((k, n_classes))
    for kk in range(k):
        for c in range(n_classes):
            members = [img for img in range(n) if labels[img] == c]
            per_image = [sum(s[kk] for s, o in zip(samples, owners, strict=True) if o == img) for img in members]
            q[kk, c] = sum(per_image) / len(per_image) if per_image else 0.0
        total = q[kk].sum()
        q[kk] = q[kk] / total if total > 0 else 1.0 / n_classes
    label = [int(np.argmax(q[kk])) for kk in range(k)]
    confidence = [1 - literal_perplexity(q[kk]) / n_classes for kk in range(k)]
    return {"max_activation": np.array(mu), "activation_frequency": np.array(freq), "perplexity_histogram": hist,
            "perplexity_bin_edges": edges, "filter_similarity": sim, "filter_label": np.array(label),
            "filter_confidence": np.array(confidence)}


def assert_results_equal(got: dict, want: dict, rtol: float = 1e-12) -> None:
    assert set(got) == set(want)
    for name in ("max_activation", "activation_frequency", "perplexity_histogram", "perplexity_bin_edges",
                 "filter_label"):
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    for name in ("filter_similarity", "filter_confidence"):
        if name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=1e-15, err_msg=name)


# --------------------------------------------------------------------------------------
# Exact values on hand-set activations
# --------------------------------------------------------------------------------------


def test_perplexity_exact():
    v = [[3, 0, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [2, 2, 0, 0], [-1, 5, 0, -2], [0.5, 0.5, 0.5, 0.5]]
    np.testing.assert_array_equal(perplexity(v), [1, 4, 4, 2, 1, 4])
    assert perplexity(np.zeros((2, 3, 7))).shape == (2, 3)
    np.testing.assert_array_equal(perplexity(np.zeros((2, 3, 7))), 7)


@pytest.mark.parametrize("device", DEVICES)
def test_histogram_bins_last_bin_closed(device):
    # K = 4, 3 bins: [1, 2), [2, 3), [3, 4]
    stats = DeepEyesStats(num_classes=1, bins=3)
    acts = torch.tensor([[1.0, 0, 0, 0],   # perplexity 1 -> bin 0
                         [1, 1, 0, 0],     # 2, on an inner edge -> bin 1
                         [1, 1, 1, 1],     # 4 = K, the closed right edge -> bin 2
                         [0, 0, 0, 0],     # all zero -> K -> bin 2
                         [-3, 0, 0, 0]],   # clamped to all zero -> bin 2
                        device=device)
    stats.update(acts, torch.zeros(5, dtype=torch.int64, device=device))
    np.testing.assert_array_equal(stats.bin_edges_, [1, 2, 3, 4])
    np.testing.assert_array_equal(stats.perplexity_histogram_, [1, 1, 3])
    assert stats.perplexity_histogram_.dtype == np.int64 and stats.n_samples_ == 5
    np.testing.assert_array_equal(perplexity_bin_edges(4, 3), [1, 2, 3, 4])


@pytest.mark.parametrize("device", DEVICES)
def test_max_and_frequency_exact_after_the_second_pass(device):
    batches = [torch.tensor([[1.0, 0, 4], [2, 0, 1]], device=device),
               torch.tensor([[4.0, -1, 2], [3, 0, 1]], device=device)]
    labels = torch.zeros(2, dtype=torch.int64, device=device)
    stats = DeepEyesStats(num_classes=1)
    stats.update(batches[0], labels)
    first = stats.max_activation_
    stats.update(batches[1], labels)
    np.testing.assert_array_equal(first, [2, 0, 4])  # a result is a copy, not a view of the running state
    np.testing.assert_array_equal(stats.max_activation_, [4, 0, 4])
    # Running maximum: batch 1 against (2, 0, 4), batch 2 against (4, 0, 4).
    assert not stats.frequency_exact_
    np.testing.assert_array_equal(stats.activation_frequency_, [3 / 4, 0, 1 / 4])
    stats.start_frequency_pass()
    for a in batches:
        stats.update_frequency(a)
    # Final maximum: k0 > 2: {4, 3}; k1 never active; k2 > 2: {4}.
    assert stats.frequency_exact_
    np.testing.assert_array_equal(stats.activation_frequency_, [2 / 4, 0, 1 / 4])
    with pytest.raises(InputError, match="after the frequency pass"):
        stats.update(batches[0], labels)


def test_frequency_pass_must_see_the_same_samples():
    stats = DeepEyesStats(num_classes=1).update(torch.ones(3, 2), torch.zeros(3, dtype=torch.int64))
    stats.update_frequency(torch.ones(2, 2))
    with pytest.raises(InputError, match="other samples"):
        _ = stats.activation_frequency_


@pytest.mark.parametrize("device", DEVICES)
def test_weighted_jaccard_exact(device):
    # Columns are kernels over three samples: k3 copies k0; k2 and k4 are never active.
    acts = torch.tensor([[1.0, 2, 0, 1, 0], [2, 1, 0, 2, 0], [0, 0, 0, 0, -1]], device=device)
    stats = DeepEyesStats(num_classes=1, similarity=True)
    stats.update(acts, torch.zeros(3, dtype=torch.int64, device=device))
    sim = stats.filter_similarity_
    assert sim.shape == (5, 5) and sim.dtype == np.float64
    np.testing.assert_array_equal(np.diag(sim), 1.0)
    assert sim[0, 1] == sim[1, 0] == 2 / 4  # Σmin (1, 1, 0) / Σmax (2, 2, 0)
    assert sim[0, 3] == 1.0 and sim[0, 2] == 0.0 and sim[2, 4] == 0.0
    assert DeepEyesStats(num_classes=1).update(acts, torch.zeros(3, dtype=torch.int64,
                                                                  device=device)).filter_similarity_ is None


@pytest.mark.parametrize("device", DEVICES)
def test_filter_label_and_confidence_exact(device):
    # Conv output (B=4, K=4, 1, 2), every position sampled; classes 0 (two images), 1, 2.
    # k0 fires for class 1 only; k1 for classes 0 and 2 equally (a tie -> class 0);
    # k2 never; k3 sums to 1 per image of classes 0 (two images) and 2 (one image): q is a
    # per-class mean, so (.5, 0, .5) and confidence 1/3 (a per-class sum would give (2, 0, 1)).
    a = torch.zeros(4, 4, 1, 2, device=device)
    labels = torch.tensor([0, 0, 1, 2], device=device)
    a[2, 0] = torch.tensor([1.0, 2.0])
    a[0, 1, 0, 0] = a[1, 1, 0, 1] = a[3, 1, 0, 0] = 3.0
    a[0, 3] = a[1, 3] = a[3, 3] = torch.tensor([0.5, 0.5])
    stats = DeepEyesStats(num_classes=3, positions="all").update(a, labels)
    np.testing.assert_array_equal(stats.filter_label_, [1, 0, 0, 0])
    assert stats.filter_label_.dtype == np.int64
    # q: k0 (0, 1, 0) -> perplexity 1; k1, k3 (.5, 0, .5) -> 2; k2 uniform -> 3.
    np.testing.assert_allclose(stats.filter_confidence_, [2 / 3, 1 / 3, 0, 1 / 3], atol=1e-15)


def test_fc_layer_has_one_position_and_positions_beyond_the_map_take_all():
    stats = DeepEyesStats(num_classes=1, positions=10)
    stats.update(torch.rand(6, 3), torch.zeros(6, dtype=torch.int64))
    assert stats.n_samples_ == 6
    stats = DeepEyesStats(num_classes=1, positions=10)
    stats.update(torch.rand(2, 3, 3, 3), torch.zeros(2, dtype=torch.int64))
    assert stats.n_samples_ == 2 * 9


@pytest.mark.parametrize("bad", [0, -1, 2.5, "some", True, 10**7])
def test_bad_options_name_the_valid_ones(bad):
    with pytest.raises(InputError, match=r"bad positions per image|unknown positions option"):
        DeepEyesStats(num_classes=2, positions=bad)
    with pytest.raises(InputError, match=r"in \[1, 1000000\]"):
        DeepEyesStats(num_classes=2, positions=bad)


@pytest.mark.parametrize("bad", [0, -3, 10**9, 2.0, True])
def test_bins_are_refused_outside_the_limits_before_allocating(bad):
    with pytest.raises(InputError, match=r"bad number of perplexity bins.*an integer in \[1, 1000\]"):
        DeepEyesStats(num_classes=2, bins=bad)


def test_bad_shapes():
    stats = DeepEyesStats(num_classes=2)
    with pytest.raises(InputError, match="cannot sample"):
        stats.update(torch.zeros(2), torch.zeros(2, dtype=torch.int64))
    stats.update(torch.zeros(2, 3), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(InputError, match="changed its number of kernels"):
        stats.update(torch.zeros(2, 4), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(InputError, match="one label per image"):
        stats.update(torch.zeros(2, 3), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(InputError, match="no activations"):
        _ = DeepEyesStats(num_classes=2).max_activation_


# --------------------------------------------------------------------------------------
# Streaming against the literal definitions; sampling
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_all_positions_streaming_equals_literal(device):
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(16, 4, 3, 2)).astype(np.float32)
    acts[:, 2] = -1.0  # a dead kernel
    acts[3] = 0.0  # an image with all-zero samples
    labels = rng.integers(0, 3, size=16)
    labels[:3] = [0, 1, 2]
    want = literal_deepeyes(acts, labels, 3, bins=7)
    stats = DeepEyesStats(num_classes=3, positions="all", bins=7, similarity=True)
    bounds = [0, 5, 8, 15, 16]  # uneven batches
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        stats.update(torch.as_tensor(acts[start:stop], device=device),
                     torch.as_tensor(labels[start:stop], device=device))
    stats.start_frequency_pass()
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        stats.update_frequency(torch.as_tensor(acts[start:stop], device=device))
    assert stats.n_samples_ == 16 * 6
    assert_results_equal(stats.result(), want)


def test_sampled_positions_are_distinct_and_seeded():
    # Each position holds its own index, so a sample's value tells which position it is.
    a = torch.arange(1.0, 26.0).view(1, 1, 5, 5).repeat(8, 1, 1, 1)  # (B=8, K=1, 5, 5)
    stats = DeepEyesStats(num_classes=1, positions=7, seed=3)
    samples, n = stats._samples(a)
    assert n == 7 and samples.shape == (56, 1)
    per_image = samples.view(8, 7)
    assert all(len(set(row.tolist())) == 7 for row in per_image)  # without replacement
    again, _ = DeepEyesStats(num_classes=1, positions=7, seed=3)._samples(a)
    other, _ = DeepEyesStats(num_classes=1, positions=7, seed=4)._samples(a)
    assert torch.equal(samples, again) and not torch.equal(samples, other)


@pytest.mark.parametrize("device", DEVICES)
def test_sampled_results_do_not_depend_on_batching(device):
    acts = torch.randn(23, 6, 4, 5, generator=torch.Generator().manual_seed(0)).to(device)
    labels = torch.tensor([0, 1, 2] * 7 + [0, 1], device=device)
    results = []
    for bs in (23, 4, 9):
        stats = DeepEyesStats(3, positions=5, seed=7, similarity=True)
        for start in range(0, 23, bs):
            stats.update(acts[start : start + bs], labels[start : start + bs])
        if bs < 23:  # one batch needs no second pass
            for start in range(0, 23, bs):
                stats.update_frequency(acts[start : start + bs])
        assert stats.frequency_exact_ and stats.n_samples_ == 23 * 5
        results.append(stats.result())
    for result in results[1:]:
        assert_results_equal(result, results[0], rtol=1e-12)


def test_compute_deepeyes_repeats_with_its_seed():
    torch.manual_seed(0)
    model = build_model("zoo:digits_net", 3, (1, 8, 8))
    ds = tiny_dataset(np.random.default_rng(1).random((23, 8, 8)), [0, 1, 2] * 7 + [0, 1])
    first, again, other = (compute_deepeyes(model, ds, ["conv1", "fc1"], positions=5, seed=seed, batch_size=9)
                           for seed in (7, 7, 8))
    for name in ("conv1", "fc1"):
        assert_results_equal(again[name].arrays, first[name].arrays, rtol=0)
        assert first[name].frequency_exact
    assert first["conv1"].n_samples == 23 * 5 and first["fc1"].n_samples == 23
    assert not np.array_equal(other["conv1"].perplexity_histogram, first["conv1"].perplexity_histogram)
    assert_results_equal(other["fc1"].arrays, first["fc1"].arrays, rtol=0)  # one position: nothing drawn


def test_compute_deepeyes_on_hand_set_model_equals_literal():
    # pixel_model: k0 = relu(pixel), k1 = relu(0.5 - pixel), k2 = 0, read at "relu".
    images = np.array([[[1, 0], [0, 0]], [[1, 1], [0, 0]], [[0, 0], [0, 1]]], dtype=np.float32)
    ds = tiny_dataset(images, [0, 0, 1])
    got = compute_deepeyes(pixel_model(), ds, ["conv"], positions="all", bins=5, batch_size=2)["conv"]
    acts = np.stack([np.maximum(images, 0), np.maximum(0.5 - images, 0), np.zeros_like(images)], axis=1)
    assert got.tap == "relu" and got.n_samples == 12
    assert_results_equal(got.arrays, literal_deepeyes(acts, np.array([0, 0, 1]), 2, bins=5))
    np.testing.assert_array_equal(got.max_activation, [1, 0.5, 0])
    np.testing.assert_array_equal(got.activation_frequency, [4 / 12, 8 / 12, 0])


def test_default_layers_are_every_conv_and_fc_layer():
    model = build_model("zoo:digits_net", 10, (1, 8, 8))
    ds = tiny_dataset(np.random.default_rng(0).random((10, 8, 8)), list(range(10)))
    got = compute_deepeyes(model, ds, similarity=False)
    assert list(got) == ["conv1", "conv2", "fc1", "fc2"]
    assert {n: r.tap for n, r in got.items()} == {"conv1": "relu1", "conv2": "relu2", "fc1": "relu3", "fc2": "fc2"}
    assert "filter_similarity" not in got["conv1"].arrays
    with pytest.raises(InputError, match="no analysable layer named 'conv9'"):
        compute_deepeyes(model, ds, ["conv9"])


# --------------------------------------------------------------------------------------
# During training
# --------------------------------------------------------------------------------------


def _hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def _training_setup(n=40):
    torch.manual_seed(0)
    model = build_model("zoo:digits_net", 3, (1, 8, 8))
    ds = tiny_dataset(np.random.default_rng(2).random((n, 8, 8)), [i % 3 for i in range(n)])
    return model, ds


def test_monitor_during_training_equals_offline_pass():
    model, ds = _training_setup()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layers = ["conv1", "conv2", "fc1"]
    monitor = TrainingMonitor(model, layers, 3, ds.input_shape, positions="all", similarity=True)
    evaluated = []
    # SGD with lr 1e-30: full autograd through every layer, yet no float32 weight moves,
    # so every mini-batch sees the same weights as the offline pass.
    config = TrainConfig(epochs=1, lr=1e-30, batch_size=8, optimizer="sgd", seed=5)
    train(model, ds, config, device="cpu", monitor=monitor,
          progress=lambda m: evaluated.append(evaluate(model, ds, device="cpu")))  # ignored by the monitor
    assert len(evaluated) == 5 and _hook_count(model) == 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    online = monitor.snapshot()
    offline = compute_deepeyes(model, ds, layers, positions="all", batch_size=8, similarity=True)
    for name in layers:
        want = dict(offline[name].arrays)
        # The monitor's frequency is progressive: replay the training order through one pass.
        replay = DeepEyesStats(3, positions="all", similarity=True)
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(config.seed))
        with torch.inference_mode():
            acts = {}
            tap = offline[name].tap
            handle = dict(model.named_modules())[tap].register_forward_hook(
                lambda _m, _i, out, acts=acts: acts.__setitem__("a", out))
            try:
                for x, y in ds.batches(8, "cpu", order):
                    model(x)
                    replay.update(acts["a"], y)
            finally:
                handle.remove()
        want["activation_frequency"] = replay.activation_frequency_
        assert_results_equal(online[name], want, rtol=1e-10)
    with pytest.raises(InputError, match="no training batch since the last snapshot"):
        monitor.snapshot()


def test_monitor_one_batch_frequency_is_exact():
    model, ds = _training_setup(12)
    monitor = TrainingMonitor(model, None, 3, ds.input_shape, positions=4, seed=1)
    train(model, ds, TrainConfig(epochs=1, lr=1e-30, batch_size=12, optimizer="sgd"), device="cpu",
          monitor=monitor)
    online = monitor.snapshot()
    assert list(online) == ["conv1", "conv2", "fc1", "fc2"]
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0))
    shuffled = tiny_dataset(ds.images[order, 0].numpy(), ds.labels[order].tolist())
    offline = compute_deepeyes(model, shuffled, positions=4, seed=1, similarity=False)
    for name in online:
        assert_results_equal(online[name], offline[name].arrays, rtol=1e-10)


def test_monitor_leaves_training_unchanged_and_snapshots_reset():
    model_a, ds = _training_setup()
    model_b, _ = _training_setup()
    config = TrainConfig(epochs=2, lr=1e-2, batch_size=8, seed=1)
    plain = train(model_a, ds, config, device="cpu")
    monitor = TrainingMonitor(model_b, ["conv2"], 3, ds.input_shape, positions=3)
    snaps, steps = [], []

    def progress(m):
        if m["step"] % 5 == 0:
            snaps.append(monitor.snapshot())
            steps.append(m["step"])

    watched = train(model_b, ds, config, device="cpu", monitor=monitor, progress=progress)
    assert [m["loss"] for m in plain] == [m["loss"] for m in watched]
    assert all(torch.equal(a, b) for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(),
                                                 strict=True))
    # Each snapshot holds its own 5 batches of 8 images × 3 positions.
    assert steps == [5, 10] and all(s["conv2"]["perplexity_histogram"].sum() == 5 * 8 * 3 for s in snaps)
    stacked = stack_deepeyes(snaps)
    assert stacked["conv2"]["max_activation"].shape == (2, 16)
    assert stacked["conv2"]["perplexity_histogram"].dtype == np.int64


def test_monitor_hooks_removed_on_exception_and_wrong_model_refused():
    model, ds = _training_setup()
    monitor = TrainingMonitor(model, ["conv1"], 3, ds.input_shape)
    with pytest.raises(RuntimeError, match="boom"):
        with monitor:
            assert _hook_count(model) == 1
            with monitor:  # re-entrant: one hook
                assert _hook_count(model) == 1
            assert _hook_count(model) == 1
            raise RuntimeError("boom")
    assert _hook_count(model) == 0
    other, _ = _training_setup()
    with pytest.raises(InputError, match="another model"):
        train(other, ds, TrainConfig(), device="cpu", monitor=monitor)


# --------------------------------------------------------------------------------------
# deepeyes.npz
# --------------------------------------------------------------------------------------


def test_npz_round_trip_single_and_series(tmp_path):
    model, ds = _training_setup(12)
    results = compute_deepeyes(model, ds, ["conv1", "fc1"], positions=3)
    path = save_deepeyes_npz(tmp_path / "de.npz", results, {"seed": 0})
    layers, meta, snapshots = load_deepeyes_npz(path)
    assert snapshots is None and meta["layers"] == ["conv1", "fc1"] and meta["seed"] == 0
    assert meta["taps"] == {"conv1": "relu1", "fc1": "relu3"}
    for name in ("conv1", "fc1"):
        assert_results_equal(layers[name], results[name].arrays, rtol=0)
    series = DeepEyesSeries(iterations=np.array([0, 100]), layers=stack_deepeyes([results, results]),
                            taps={"conv1": "relu1", "fc1": "relu3"})
    save_deepeyes_npz(tmp_path / "de.npz", series, {})  # overwrites atomically
    layers, meta, snapshots = load_deepeyes_npz(tmp_path / "de.npz")
    assert snapshots.tolist() == [0, 100] and snapshots.dtype == np.int64
    assert layers["conv1"]["filter_similarity"].shape == (2, 8, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["de.npz"]  # no temporary file left


def test_deepeyes_over_snapshots(tmp_path):
    from aomcore import deepeyes_over_snapshots

    model, ds = _training_setup(12)
    paths = []
    for i in range(2):
        paths.append((i * 10, save_state_dict(model, tmp_path / f"s{i}.safetensors")))
        with torch.no_grad():  # the next snapshot's conv1 activations are exactly twice as large
            model.conv1.weight.mul_(2.0)
            model.conv1.bias.mul_(2.0)
    series = deepeyes_over_snapshots(lambda: build_model("zoo:digits_net", 3, (1, 8, 8)), paths, ds,
                                     ["conv1"], positions="all")
    assert series.iterations.tolist() == [0, 10] and series.taps == {"conv1": "relu1"}
    mu = series.layers["conv1"]["max_activation"]
    assert mu.shape == (2, 8)
    np.testing.assert_array_equal(mu[1], 2 * mu[0])


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def _run(*args):
    return subprocess.run([sys.executable, "-m", "aomcore", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def _check_file(path, shapes: dict[str, tuple[int, int]], bins=30):
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        assert meta["layers"] == list(shapes)
        for name, (k, _) in shapes.items():
            want = {"max_activation": ((k,), np.float64), "activation_frequency": ((k,), np.float64),
                    "perplexity_histogram": ((bins,), np.int64), "perplexity_bin_edges": ((bins + 1,), np.float64),
                    "filter_similarity": ((k, k), np.float64), "filter_label": ((k,), np.int64),
                    "filter_confidence": ((k,), np.float64)}
            for key, (shape, dtype) in want.items():
                arr = npz[f"{name}/{key}"]
                assert arr.shape == shape and arr.dtype == dtype, (name, key, arr.shape, arr.dtype)
            assert npz[f"{name}/perplexity_histogram"].sum() == meta["n_samples"][name]
            assert np.all(npz[f"{name}/activation_frequency"] <= 1) and meta["frequency_exact"][name]
    return meta


def test_cli_digits(tmp_path):
    torch.manual_seed(0)
    weights = save_state_dict(build_model("zoo:digits_net", 10, (1, 8, 8)), tmp_path / "d.safetensors")
    out = _run("deepeyes", "--arch", "zoo:digits_net", "--weights", str(weights), "--dataset", "digits",
               "--out", str(tmp_path / "de.npz"), "--batch-size", "128")
    assert out.returncode == 0, out.stderr
    meta = _check_file(tmp_path / "de.npz", {"conv1": (8, 64), "conv2": (16, 64), "fc1": (64, 1), "fc2": (10, 1)})
    assert meta["split"] == "test" and meta["dataset"]["n_images"] == 450 and meta["positions"] == 10
    assert meta["n_samples"]["conv1"] == 4500 and meta["n_samples"]["fc1"] == 450
    assert meta["taps"] == {"conv1": "relu1", "conv2": "relu2", "fc1": "relu3", "fc2": "fc2"}
    assert "conv1 (read at relu1): 8 kernels" in out.stdout


def test_cli_filter_map_is_the_embed_commands_filter_map(tmp_path):
    """``deepeyes --filter-map`` writes L/filter_map (K, 2), the same points ``embed --view filter-map``
    (the dashboard's job) gives for the same split, seed and perplexity; refused with --no-similarity."""
    torch.manual_seed(0)
    weights = save_state_dict(build_model("zoo:digits_net", 10, (1, 8, 8)), tmp_path / "d.safetensors")
    model = ["--arch", "zoo:digits_net", "--weights", str(weights), "--dataset", "digits"]
    out = _run("deepeyes", *model, "--filter-map", "--seed", "3", "--perplexity", "5",
               "--out", str(tmp_path / "de.npz"))
    assert out.returncode == 0, out.stderr
    alone = _run("embed", *model, "--view", "filter-map", "--layer", "conv2", "--split", "test", "--seed", "3",
                 "--perplexity", "5", "--out", str(tmp_path / "e.npz"))
    assert alone.returncode == 0, alone.stderr
    with np.load(tmp_path / "de.npz", allow_pickle=False) as de, np.load(tmp_path / "e.npz", allow_pickle=False) as e:
        assert {name: de[f"{name}/filter_map"].shape for name in ("conv1", "conv2", "fc1", "fc2")} == {
            "conv1": (8, 2), "conv2": (16, 2), "fc1": (64, 2), "fc2": (10, 2)}
        np.testing.assert_array_equal(de["conv2/filter_map"], e["points"])
        assert np.ptp(de["conv2/filter_map"], axis=0).min() > 0  # the kernels are spread, not stacked
        assert json.loads(str(de["meta"]))["filter_map"]["perplexity"] == 5
    refused = _run("deepeyes", *model, "--filter-map", "--no-similarity", "--out", str(tmp_path / "x.npz"))
    assert refused.returncode == 2 and "--filter-map" in refused.stderr and not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("args,message", [
    (["--layers", "conv9"], "no analysable layer named 'conv9'"),
    (["--weights", "/nonexistent.pt"], "error:"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    weights = save_state_dict(build_model("zoo:digits_net", 10, (1, 8, 8)), tmp_path / "d.safetensors")
    out = _run("deepeyes", "--arch", "zoo:digits_net", "--weights", str(weights), "--out", str(tmp_path / "x.npz"),
               *args)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and message in out.stderr
    assert not (tmp_path / "x.npz").exists()


def test_cli_positions_must_be_positive_or_all():
    out = _run("deepeyes", "--arch", "zoo:digits_net", "--weights", "x.pt", "--positions", "0", "--out", "x.npz")
    assert out.returncode == 2 and "expected an integer in [1, 1000000] or 'all', found '0'" in out.stderr


@pytest.mark.mnist
def test_cli_paper_model_on_real_mnist_all_positions(tmp_path, data_root):
    torch.manual_seed(0)
    weights = save_state_dict(build_model("zoo:paper_mnist", 10, (1, 28, 28)), tmp_path / "m.safetensors")
    start = time.perf_counter()
    out = _run("deepeyes", "--arch", "zoo:paper_mnist", "--weights", str(weights), "--dataset", "mnist",
               "--data-root", str(data_root), "--positions", "all", "--out", str(tmp_path / "de.npz"))
    seconds = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    meta = _check_file(tmp_path / "de.npz", {"conv1": (16, 676), "conv2": (16, 576), "fc1": (128, 1),
                                             "fc2": (10, 1)})
    assert meta["dataset"]["n_images"] == 10000 and meta["positions"] == "all"
    assert meta["n_samples"] == {"conv1": 6_760_000, "conv2": 5_760_000, "fc1": 10_000, "fc2": 10_000}
    print(f"deepeyes on the MNIST test split, every position of 4 layers: {seconds:.1f}s")
