"""The streaming implementation against a slow, literal one on random data."""

import numpy as np
import pytest
import torch
from torch import nn

from aomcore import OccurrenceCounter, aom, compute_maps, csm, odm, selectivity
from tests.conftest import DEVICES

from ..helpers import literal_aom, literal_csm, literal_odm, literal_selectivity, tiny_dataset


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counter_and_equations_match_literal(seed):
    rng = np.random.default_rng(seed)
    n, k, c, h, w = 37, 4, 3, 3, 2
    acts = rng.normal(size=(n, k, h, w)).round(1)  # rounding makes exact zeros appear
    labels = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])
    counter = OccurrenceCounter(num_classes=c)
    for start in range(0, n, 8):  # several uneven batches
        counter.update(torch.tensor(acts[start:start + 8]), torch.tensor(labels[start:start + 8]))
    counts, sizes = counter.result()
    expected = literal_aom(acts, labels, c)
    m = aom(counts, sizes)
    np.testing.assert_allclose(m, expected, atol=1e-15)
    np.testing.assert_allclose(odm(m), literal_odm(expected), atol=1e-12)
    np.testing.assert_allclose(csm(m), literal_csm(expected), atol=1e-12)
    np.testing.assert_allclose(selectivity(csm(m)), literal_selectivity(literal_csm(expected)), atol=1e-12)


def test_odm_chunked_equals_unchunked():
    m = np.random.default_rng(3).random((37, 4, 3, 3))
    np.testing.assert_allclose(odm(m, chunk=5), literal_odm(m), atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_compute_maps_matches_literal_on_a_random_cnn(device):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.Flatten(), nn.Linear(5 * 4 * 4, 3))
    rng = np.random.default_rng(0)
    images = rng.random((41, 8, 8)).astype(np.float32)
    labels = np.concatenate([[0, 1, 2], rng.integers(0, 3, 38)])
    ds = tiny_dataset(images, labels)
    maps = compute_maps(model, ds, ["0", "2", "4"], batch_size=16, device=device)
    assert [m.tap for m in maps.values()] == ["1", "2", "4"]
    with torch.no_grad():
        x = torch.as_tensor(images)[:, None]
        a1 = model[1](model[0](x))
        a2 = model[2](a1)
        a3 = model[4](model[3](a2))
    for name, acts in (("0", a1), ("2", a2), ("4", a3[:, :, None, None])):
        np.testing.assert_allclose(maps[name].aom, literal_aom(acts.numpy(), labels, 3), atol=1e-15)


def test_odm_large_path_matches_float64():
    rng = np.random.default_rng(4)
    m = rng.random((300, 10, 12, 12))  # 300² · 1440 > 2e8: the tiled float32 kernel
    fast = odm(m)
    exact = np.abs(m.reshape(300, 1, -1) - m.reshape(1, 300, -1)).mean(-1)
    np.testing.assert_allclose(fast, exact, atol=1e-6)
    assert np.array_equal(fast, fast.T) and np.all(np.diag(fast) == 0)


@pytest.mark.parametrize("device", DEVICES)
def test_pooling_while_counting_sums_cells_exactly(device):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3, padding=1))
    rng = np.random.default_rng(1)
    ds = tiny_dataset(rng.random((30, 10, 7)).astype(np.float32), np.arange(30) % 3)
    full = compute_maps(model, ds, ["0", "2"], device=device)
    pooled = compute_maps(model, ds, ["0", "2"], device=device, max_resolution=4)
    rows, cols = np.arange(10) * 4 // 10, np.arange(7) * 4 // 7
    for layer in ("0", "2"):
        p, f = pooled[layer], full[layer]
        assert p.counts.shape == (f.counts.shape[0], 3, 4, 4)
        expected = np.zeros_like(p.counts)
        np.add.at(expected, (slice(None), slice(None), rows[:, None], cols[None, :]), f.counts)
        np.testing.assert_array_equal(p.counts, expected)
        np.testing.assert_array_equal(p.cell_area, np.outer(np.bincount(rows), np.bincount(cols)))
        # a cell's AOM is the mean occurrence over its positions
        cell = f.aom[:, :, rows == 0][:, :, :, cols == 0].mean(axis=(2, 3))
        np.testing.assert_allclose(p.aom[:, :, 0, 0], cell, atol=1e-12)
    assert compute_maps(model, ds, ["0"], max_resolution=16)["0"].cell_area is None  # already small enough


def test_pooled_maps_roundtrip_through_npz(tmp_path):
    from aomcore import load_maps_npz, save_maps_npz

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
    ds = tiny_dataset(np.random.default_rng(0).random((12, 9, 9)).astype(np.float32), np.arange(12) % 2)
    maps = compute_maps(model, ds, ["0"], max_resolution=3)
    save_maps_npz(tmp_path / "m.npz", maps, {})
    again, _ = load_maps_npz(tmp_path / "m.npz")
    np.testing.assert_array_equal(again["0"].aom, maps["0"].aom)
    assert again["0"].aom.max() <= 1.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("threshold", [0.0, 0.3, -0.5])
def test_counting_in_row_blocks_matches_literal(device, dtype, threshold):
    """More rows than one uint8 block (255), exact zeros, ±inf and NaN (never occurs)."""
    rng = np.random.default_rng(5)
    n, k, h, w, c = 700, 3, 4, 5, 3
    acts = rng.normal(size=(n, k, h, w)).round(1)
    acts.flat[rng.choice(acts.size, 40, replace=False)] = np.nan
    acts.flat[rng.choice(acts.size, 20, replace=False)] = np.inf
    acts.flat[rng.choice(acts.size, 20, replace=False)] = -np.inf
    labels = np.sort(rng.integers(0, c, n))  # class-sorted, as compute_maps feeds it: one segment per class
    x = torch.tensor(acts, dtype=dtype, device=device)
    stored = x.double().cpu().numpy()  # exactly the values the counter sees (bf16 rounds them)
    t = torch.tensor(threshold, dtype=dtype).item()  # the comparison runs in the activations' dtype
    expected = np.stack([(stored[labels == cl] > t).sum(0) for cl in range(c)], axis=1)  # (K, C, H, W)
    bounds = np.searchsorted(labels, np.arange(c + 1))
    segmented, plain = OccurrenceCounter(c, threshold), OccurrenceCounter(c, threshold)
    segmented.update(x, torch.tensor(labels, device=device),
                     [(cl, int(bounds[cl]), int(bounds[cl + 1])) for cl in range(c)])
    for start in range(0, n, 300):
        plain.update(x[start:start + 300], torch.tensor(labels[start:start + 300], device=device))
    for counter in (segmented, plain):
        counts, sizes = counter.result()
        assert counts.dtype == np.int64 and sizes.tolist() == np.bincount(labels, minlength=c).tolist()
        np.testing.assert_array_equal(counts, expected)


def test_the_four_tap_benchmark_model_matches_literal():
    """BatchNorm, a residual add and a functional ReLU (benchmarks/tap_model.py), batches that span
    block and class boundaries: each tap's counts equal a literal count of its collected activations."""
    from pathlib import Path

    from aomcore import build_model, forward_hooks

    arch = str(Path(__file__).resolve().parents[3] / "benchmarks" / "tap_model.py") + ":TapNet"
    torch.manual_seed(0)
    model = build_model(arch, 3, (1, 28, 28)).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.3, 0.3)
    rng = np.random.default_rng(0)
    images, labels = rng.random((620, 28, 28)).astype(np.float32), rng.integers(0, 3, 620)
    maps = compute_maps(model, tiny_dataset(images, labels), ["conv1", "block", "conv3", "fc1"], batch_size=300,
                        device="cpu")
    assert [m.tap for m in maps.values()] == ["bn1", "block", "relu3", "relu4"]
    seen = {tap: [] for tap in ("bn1", "block", "relu3", "relu4")}
    order = np.argsort(labels, kind="stable")  # the batches compute_maps runs: class-sorted, 300 at a time
    x = torch.as_tensor(images[order])[:, None]
    with forward_hooks(model, {tap: (lambda out, tap=tap: seen[tap].append(out.clone())) for tap in seen}), \
            torch.inference_mode():
        for start in range(0, len(x), 300):
            model(x[start:start + 300])
    for m in maps.values():
        acts = torch.cat(seen[m.tap]).numpy()
        acts = acts.reshape(*acts.shape[:2], 1, 1) if acts.ndim == 2 else acts
        expected = np.stack([(acts[labels[order] == cl] > 0).sum(0) for cl in range(3)], axis=1)
        np.testing.assert_array_equal(m.counts, expected)


def test_the_pass_stops_at_the_last_tap_and_a_model_cannot_swallow_the_stop():
    calls = []

    class Head(nn.Module):
        def forward(self, x):
            calls.append(x.shape[0])
            return x

    class Guarded(nn.Module):
        """Catches every Exception around its body, as some models' forward does."""

        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3), Head())

        def forward(self, x):
            try:
                return self.body(x)
            except Exception:  # noqa: BLE001 - the point of the test
                return torch.zeros(x.shape[0], 3)

    torch.manual_seed(0)
    model = Guarded()
    rng = np.random.default_rng(0)
    images, labels = rng.random((50, 8, 8)).astype(np.float32), np.arange(50) % 3
    ds = tiny_dataset(images, labels)
    maps = compute_maps(model, ds, ["body.0"], batch_size=16)
    assert calls == [1]  # only the dry pass that lists the layers reached the head
    with torch.no_grad():
        acts = model.body[1](model.body[0](torch.as_tensor(images)[:, None])).numpy()
    np.testing.assert_array_equal(maps["body.0"].counts,
                                  np.stack([(acts[labels == c] > 0).sum(0) for c in range(3)], axis=1))
    compute_maps(model, ds, ["body.0", "body.3"], batch_size=16)  # a tap in the head's input: still stops there
    assert calls == [1, 1]


def test_scratch_never_exceeds_the_rows_counted():
    counter = OccurrenceCounter(2)
    counter.update(torch.ones(3, 1000, 4), torch.tensor([0, 1, 1]), [(0, 0, 1), (1, 1, 3)])
    assert counter._scratch.shape == (2, 4000)  # a small batch of a wide layer: 2 rows, not 255
    counter.update(torch.ones(300, 1000, 4), torch.zeros(300, dtype=torch.int64), [(0, 0, 300)])
    assert counter._scratch.shape == (255, 4000)
    counts, sizes = counter.result()
    assert sizes.tolist() == [301, 2] and counts[:, 0].min() == 301 and counts[:, 1].min() == 2
