"""Embedding engine, projections (Rauber et al., DeepEyes) and training trails: exact where possible."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

from aomcore.base.activations import activation_vectors, stratified_sample
from aomcore.base.embedding import embed, neighborhood_hit, neighborhood_hit_per_class, point_neighborhood_hits
from aomcore.base.errors import Cancelled, InputError
from aomcore.base.hooks import forward_input_hooks
from aomcore.deepeyes.input_map import filter_map, input_map_vectors, sample_perplexity
from aomcore.rauber.projections import neuron_distances, neuron_projection
from aomcore.rauber.trails import (
    aligned_projections,
    bundle_trails,
    render_trails,
    trail_lengths,
    trail_segments,
    trails_from_run,
)
from tests.conftest import DEVICES, REPO
from tests.core.helpers import pixel_model, tiny_dataset

FAST = {"n_iter": 150, "early_exaggeration_iter": 60}


def _clusters(n_per: int = 60, dims: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(4.0 * c, 1.0, (n_per, dims)) for c in range(3)]).astype(np.float32)
    return x, np.repeat(np.arange(3), n_per)


# --------------------------------------------------------------------------------------
# Neighbourhood hit
# --------------------------------------------------------------------------------------


def test_neighborhood_hit_hand_placed():
    # Square A holds three 0s and one 1; square B, far away, four 1s. With k=3 every point's
    # neighbours are the other three corners of its square.
    square = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    points = np.concatenate([square, square + 100])
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    np.testing.assert_allclose(point_neighborhood_hits(points, labels, k=3), [2 / 3] * 3 + [0] + [1] * 4)
    assert neighborhood_hit(points, labels, k=3) == pytest.approx((3 * 2 / 3 + 0 + 4) / 8)
    np.testing.assert_allclose(neighborhood_hit_per_class(points, labels, k=3, num_classes=3),
                               [2 / 3, (0 + 4) / 5, np.nan])


def test_neighborhood_hit_excludes_the_point_itself_even_when_duplicated():
    points = np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    labels = np.array([0, 1, 1, 0])
    assert neighborhood_hit(points, labels, k=1) == 0.0  # the only neighbour is the twin of the other class
    assert neighborhood_hit(points, labels, k=10) == pytest.approx(1 / 3)  # k clamped to N - 1
    assert np.isnan(neighborhood_hit(points[:1], labels[:1]))


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


def test_embed_is_deterministic_under_a_seed():
    x, _ = _clusters()
    a = embed(x, seed=3, **FAST)
    assert a.shape == (180, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, embed(x, seed=3, **FAST))
    assert not np.array_equal(a, embed(x, seed=4, **FAST))
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    p = embed(d, metric="precomputed", seed=3, **FAST)
    np.testing.assert_array_equal(p, embed(d, metric="precomputed", seed=3, **FAST))


def test_embed_separates_clusters_and_reports_progress():
    x, y = _clusters()
    calls = []
    points = embed(x, progress=lambda done, total: calls.append((done, total)), callback_every=30, **FAST)
    assert neighborhood_hit(points, y) > 0.95
    assert calls[-1] == (210, 210) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_embed_stops_the_plain_phase_when_the_kl_divergence_stops_falling():
    x, y = _clusters(n_per=150)
    runs = {}
    for converge in (True, False):
        calls: list[int] = []
        report: dict = {}
        points = embed(x, converge=converge, progress=lambda done, total, seen=calls: seen.append(done),
                       callback_every=25, report=report)
        runs[converge] = (points, max(calls[:-1]), report["iterations"])  # iterations before the final (total, total)
    (early, stopped, phases), (full, ran, _) = runs[True], runs[False]
    assert ran == 750  # 250 + 500 iterations in full
    assert phases[0] == 250 and phases[1] < 500  # below 3,000 points only the plain phase stops
    assert stopped == sum(phases)
    assert neighborhood_hit(early, y) == pytest.approx(neighborhood_hit(full, y), abs=0.01)


def _exact_kl(x: np.ndarray, points: np.ndarray, perplexity: float = 30.0) -> float:
    """KL(P‖Q) with openTSNE's P (exact neighbours) and the exact Student-t Q of ``points``."""
    from openTSNE.affinity import PerplexityBasedNN

    p = PerplexityBasedNN(x, perplexity, method="exact", random_state=0).P.tocoo()
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    q = 1.0 / (1.0 + d2)
    np.fill_diagonal(q, 0.0)
    return float((p.data * np.log(p.data / (q[p.row, p.col] / q.sum()))).sum())


@pytest.mark.parametrize("n_per", [400, 1000], ids=["1200-openTSNE-schedule-stopped", "3000-shortened-schedule"])
def test_embed_reaches_the_kl_divergence_of_opentsne_full_schedule_within_one_percent(n_per):
    """Below 3,000 points openTSNE's schedule with the plain phase stopped; from 3,000 the exaggerated
    phase stopped too and the plain phase with FAST_PLAIN (Barnes-Hut)."""
    from openTSNE import TSNE

    x, y = _clusters(n_per=n_per, dims=20)
    report: dict = {}
    ours = embed(x, report=report)
    full = np.asarray(TSNE(n_jobs=1, random_state=0, neighbors="exact").fit(x))  # 250 + 500, momentum 0.8, lr N
    early, plain = report["iterations"]
    assert (early < 250) == (len(x) >= 3000) and early + plain < 750
    assert _exact_kl(x, ours) <= 1.01 * _exact_kl(x, full)
    assert neighborhood_hit(ours, y) == pytest.approx(neighborhood_hit(full, y), abs=0.01)


@pytest.mark.parametrize("n_per, expected", [(400, [(12, 0.5), (1, 0.5)]), (1000, [(12, 1.0), (1, 0.8)])])  # BH_THETA
def test_embed_loosens_barnes_hut_only_in_the_shortened_schedule(monkeypatch, n_per, expected):
    from openTSNE import TSNEEmbedding

    seen = []
    optimize = TSNEEmbedding.optimize

    def spy(self, n_iter, inplace=False, **kwargs):
        seen.append((kwargs["exaggeration"] or 1, kwargs["theta"]))
        return optimize(self, n_iter, inplace=inplace, **kwargs)

    monkeypatch.setattr(TSNEEmbedding, "optimize", spy)
    x, _ = _clusters(n_per=n_per)
    embed(x, n_iter=25, early_exaggeration_iter=25)
    assert seen == expected


def test_embed_reports_the_iterations_run_when_a_phase_is_not_stopped():
    x, _ = _clusters()
    report: dict = {}
    embed(x, early_exaggeration_iter=130, n_iter=40, callback_every=25, report=report)
    assert report["iterations"] == [130, 40]  # run in full: not the last callback's 125 and 25


def test_embed_finds_exact_neighbours_with_no_pynndescent_import():
    code = ("import sys, numpy as np\n"
            "from aomcore.base.embedding import _knn_index, embed\n"
            "x = np.random.default_rng(0).normal(size=(1500, 10)).astype(np.float32)\n"
            "embed(x, n_iter=10, early_exaggeration_iter=10)\n"
            "print(type(_knn_index(x, 'euclidean', 90, 1, 0)).__name__, 'pynndescent' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["Sklearn", "False"]


def test_knn_index_switches_to_annoy_above_the_exact_budget(monkeypatch):
    from aomcore.base import embedding

    x, _ = _clusters()
    assert type(embedding._knn_index(x, "euclidean", 9, 1, 0)).__name__ == "Sklearn"
    monkeypatch.setattr(embedding, "_EXACT_KNN_BUDGET", x.shape[0] ** 2 * x.shape[1] - 1)
    assert type(embedding._knn_index(x, "euclidean", 9, 1, 0)).__name__ == "Annoy"
    d = np.abs(x[:, None, 0] - x[None, :, 0])
    assert type(embedding._knn_index(d, "precomputed", 9, 1, 0)).__name__ == "PrecomputedDistanceMatrix"


def test_embed_uses_this_process_thread_share_and_is_reproducible_for_a_thread_count(monkeypatch):
    from aomcore.base import threads

    x, _ = _clusters()
    two = embed(x, n_jobs=2, **FAST)
    np.testing.assert_array_equal(two, embed(x, n_jobs=2, **FAST))
    monkeypatch.setattr(threads, "current", lambda: 2)
    np.testing.assert_array_equal(embed(x, **FAST), two)


def test_embed_cancel_raises_cancelled():
    x, _ = _clusters()
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        embed(x, cancel=event, **FAST)
    event = threading.Event()

    def progress(done, total):
        if done >= 30:
            event.set()

    with pytest.raises(Cancelled):
        embed(x, progress=progress, cancel=event, callback_every=10, **FAST)


def test_embed_tiny_inputs():
    assert embed(np.zeros((0, 3))).shape == (0, 2)
    np.testing.assert_array_equal(embed(np.ones((1, 3))), [[0.0, 0.0]])
    # Three points: laid out exactly from their distances (a 3-4-5 triangle).
    d = np.array([[0, 3, 4], [3, 0, 5], [4, 5, 0]], dtype=float)
    y = embed(d, metric="precomputed")
    np.testing.assert_allclose(np.sqrt(((y[:, None] - y[None]) ** 2).sum(-1)), d, atol=1e-9)
    # Five kernels: perplexity clamped below (N - 1) / 3 instead of failing.
    assert embed(np.random.default_rng(0).normal(size=(5, 4)), perplexity=30, **FAST).shape == (5, 2)


def test_embed_identical_vectors_stay_finite():
    points = embed(np.zeros((40, 3), dtype=np.float32), **FAST)  # e.g. a dead layer
    assert np.isfinite(points).all()
    collapsed = embed(np.random.default_rng(0).random((40, 3)), init=np.zeros((40, 2)), **FAST)
    assert np.isfinite(collapsed).all() and collapsed.std(0).min() > 0


def test_forward_input_hooks_come_off_after_an_exception():
    model = _conv_net()
    seen = []
    with pytest.raises(RuntimeError), forward_input_hooks(model, {"conv": seen.append}):
        model(torch.zeros(1, 2, 5, 5))
        raise RuntimeError("boom")
    assert len(seen) == 1 and seen[0].shape == (1, 2, 5, 5)
    assert not model.conv._forward_pre_hooks
    with pytest.raises(InputError), forward_input_hooks(model, {"conv": seen.append, "nope": seen.append}):
        pass
    assert not model.conv._forward_pre_hooks


def test_filter_map_small_layers():
    sim = np.array([[1.0, 0.6, 0.5], [0.6, 1.0, 0.4], [0.5, 0.4, 1.0]])  # distances 0.16, 0.25, 0.36
    y = filter_map(sim)
    dist = np.sqrt(((y[:, None] - y[None]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, (1 - sim) ** 2 * (1 - np.eye(3)), atol=1e-9)  # exact for 3 kernels
    rng = np.random.default_rng(0)
    a = rng.random((40, 7))
    jaccard = np.minimum(a.T[:, None], a.T[None]).sum(-1) / np.maximum(a.T[:, None], a.T[None]).sum(-1)
    assert filter_map(jaccard, n_iter=100).shape == (7, 2)


# --------------------------------------------------------------------------------------
# Projections
# --------------------------------------------------------------------------------------


def test_stratified_sample_keeps_class_proportions_and_nests():
    labels = np.repeat(np.arange(3), [500, 300, 200])
    s = stratified_sample(labels, 100, seed=1)
    assert s.dtype == np.int64 and np.all(np.diff(s) > 0)
    np.testing.assert_array_equal(np.bincount(labels[s]), [50, 30, 20])
    np.testing.assert_array_equal(s, stratified_sample(labels, 100, seed=1))
    assert set(s) <= set(stratified_sample(labels, 400, seed=1))
    np.testing.assert_array_equal(np.bincount(labels[stratified_sample(labels, 7, 0)]), [4, 2, 1])
    np.testing.assert_array_equal(stratified_sample(labels, 5000, 0), np.arange(1000))


def test_neuron_distances_match_numpy_corrcoef():
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(50, 5))
    acts[:, 1] = -2 * acts[:, 0] + 1  # perfectly anti-correlated with neuron 0: distance 0
    acts[:, 3] = 0.7  # constant (a dead ReLU): r := 0, distance 1
    d = neuron_distances(acts)
    live = [0, 1, 2, 4]
    np.testing.assert_allclose(d[np.ix_(live, live)], 1 - np.abs(np.corrcoef(acts[:, live].T)), atol=1e-12)
    assert d[0, 1] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(d[3, live], 1.0)
    np.testing.assert_array_equal(np.diag(d), 0.0)


def test_neuron_projection_colour_is_the_class_with_highest_mean():
    acts = np.array([[1.0, 0.0, 3.0], [2.0, 1.0, 0.0], [0.0, 5.0, 1.0], [0.0, 3.0, 2.0]])
    labels = np.array([0, 0, 1, 1])
    proj = neuron_projection(acts, labels, num_classes=3)
    np.testing.assert_allclose(proj.class_means[:, :2], [[1.5, 0.0], [0.5, 4.0], [1.5, 1.5]])
    assert np.isnan(proj.class_means[:, 2]).all()
    np.testing.assert_array_equal(proj.labels, [0, 1, 0])
    assert proj.points.shape == (3, 2)


def test_sample_perplexity():
    v = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [-1.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(sample_perplexity(v), [2.0, 4.0, 1.0, 4.0])


@pytest.mark.parametrize("device", DEVICES)
def test_activation_vectors_exact(device):
    images = np.array([[[0.0, 1.0], [0.25, 0.5]], [[1.0, 1.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    ds = tiny_dataset(images, [0, 1, 1])
    acts, predicted = activation_vectors(pixel_model(), ds, "conv", [2, 0], mode="mean", device=device)
    # Read at the ReLU: k0 = pixel, k1 = max(0.5 - pixel, 0), k2 = 0.
    np.testing.assert_allclose(acts, [[0.0, 0.5, 0.0], [0.4375, (0.5 + 0.25) / 4, 0.0]])
    np.testing.assert_array_equal(predicted, [-1, -1])  # a (B, K, H, W) output has no prediction
    flat, _ = activation_vectors(pixel_model(), ds, "conv", [0], mode="flatten", device=device)
    np.testing.assert_allclose(flat[0], [0.0, 1.0, 0.25, 0.5, 0.5, 0.0, 0.25, 0.0, 0, 0, 0, 0])


def _conv_net(**conv_kwargs) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(OrderedDict([("conv", nn.Conv2d(2, 3, 3, **conv_kwargs)), ("relu", nn.ReLU()),
                                      ("flatten", nn.Flatten(1))]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("conv_kwargs", [{"stride": 2, "padding": 1}, {"stride": 1, "padding": 0},
                                         {"stride": (1, 2), "padding": (2, 1), "dilation": 2}])
def test_input_map_patch_is_the_literal_crop(device, conv_kwargs):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(5, 2, 7, 8)).astype(np.float32)
    ds = tiny_dataset(images, [0, 1, 0, 1, 0])
    model = _conv_net(**conv_kwargs)
    samples = input_map_vectors(model, ds, "conv", [4, 1, 3], positions=4, seed=7, device=device, batch_size=2)
    conv = model.conv
    (sh, sw), (ph, pw), (dh, dw) = conv.stride, conv.padding, conv.dilation
    out = torch.relu(conv(torch.from_numpy(images))).detach().numpy()  # (N, K, H, W)
    h, w = out.shape[2:]
    assert samples.map_shape == (h, w) and samples.vectors.shape == (12, 2 * 3 * 3)
    np.testing.assert_array_equal(samples.index, np.repeat([4, 1, 3], 4))
    np.testing.assert_array_equal(samples.labels, np.repeat([0, 1, 1], 4))
    for m in range(12):
        i, r, c = samples.index[m], samples.position[m] // w, samples.position[m] % w
        padded = np.pad(images[i], ((0, 0), (ph, ph), (pw, pw)))
        crop = padded[:, r * sh : r * sh + dh * 2 + 1 : dh, c * sw : c * sw + dw * 2 + 1 : dw]
        np.testing.assert_array_equal(samples.vectors[m], crop.ravel())
        np.testing.assert_allclose(samples.activations[m], out[i, :, r, c], atol=1e-6)
    assert len(set(samples.position[:4])) == 4  # distinct positions per image
    np.testing.assert_allclose(samples.max_activation, samples.activations.max(1))
    np.testing.assert_allclose(samples.perplexity, sample_perplexity(samples.activations))
    again = input_map_vectors(model, ds, "conv", [3], positions=4, seed=7, device=device)
    np.testing.assert_array_equal(again.position, samples.position[8:])  # independent of batch and companions


def test_input_map_fc_patch_is_the_whole_input():
    torch.manual_seed(0)
    model = nn.Sequential(OrderedDict([("flatten", nn.Flatten(1)), ("fc", nn.Linear(4, 3)), ("relu", nn.ReLU())]))
    images = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    samples = input_map_vectors(model, tiny_dataset(images, [0, 1, 0]), "fc", [0, 2], positions=10)
    np.testing.assert_array_equal(samples.vectors, images[[0, 2]].reshape(2, 4))
    np.testing.assert_array_equal(samples.position, [0, 0])
    for bad in (0, -1, 10**7, 2.5, True):  # the CLI's range, checked in the library too
        with pytest.raises(InputError, match=r"bad positions per image.*\[1, 1000000\]"):
            input_map_vectors(model, tiny_dataset(images, [0, 1, 0]), "fc", [0, 2], positions=bad)


# --------------------------------------------------------------------------------------
# Trails
# --------------------------------------------------------------------------------------


def test_unchanged_snapshots_give_near_zero_trails():
    x, _ = _clusters()
    points = aligned_projections([x, x, x], **FAST)
    assert points.shape == (3, 180, 2)
    assert trail_lengths(points).mean() < 0.05
    # Control: the same data embedded afresh with other seeds moves points a lot.
    fresh = np.stack([embed(x, seed=s, **FAST) for s in range(3)])
    assert trail_lengths(fresh).mean() > 4 * trail_lengths(points).mean()


def test_rotated_snapshots_give_short_trails():
    x, _ = _clusters()
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
    points = aligned_projections([x, x @ q, x @ q @ q], **FAST)
    assert trail_lengths(points).mean() < 0.05


def test_aligned_projections_stream_and_cancel():
    x, _ = _clusters(n_per=30)
    calls = []
    gen = (x + 0.01 * s for s in range(3))
    points = aligned_projections(gen, n_snapshots=3, progress=lambda d, t: calls.append((d, t)), **FAST)
    assert points.shape == (3, 90, 2) and calls[-1][0] == calls[-1][1]
    event = threading.Event()
    event.set()
    with pytest.raises(Cancelled):
        aligned_projections([x, x], cancel=event, **FAST)
    rescaled = aligned_projections([x, x + 0.01], coupling="rescale", stability=0.2, **FAST)
    assert rescaled.shape == (2, 90, 2) and np.isfinite(rescaled).all()
    with pytest.raises(InputError, match="continue or rescale"):
        aligned_projections([x], coupling="joint")
    with pytest.raises(InputError, match="perplexity"):
        embed(x, perplexity=0)


def _trail_points(s=4, n=30, seed=0):
    rng = np.random.default_rng(seed)
    points = np.cumsum(rng.normal(size=(s, n, 2)), axis=0)
    points[:, 5] = points[0, 5]  # one observation never moves
    return points, np.arange(n) % 3


def _path_ends(paths):
    """(trail, step) → (first point, last point) of each path."""
    out = {}
    for (trail, step), g in paths.dropna().groupby(["trail", "step"]):
        out[(trail, step)] = (g[["x", "y"]].to_numpy()[0], g[["x", "y"]].to_numpy()[-1])
    return out


def test_bundling_keeps_every_trail_end_point():
    points, labels = _trail_points()
    paths = bundle_trails(points, labels)
    ends = _path_ends(paths)
    s, n = points.shape[:2]
    assert set(ends) == {(t, k) for t in range(n) for k in range(s - 1)}
    for (t, k), (first, last) in ends.items():
        np.testing.assert_array_equal(first, points[k, t])
        np.testing.assert_array_equal(last, points[k + 1, t])
    assert len(paths) > len(trail_segments(points, labels))  # the bundled paths are curves
    sub = bundle_trails(points, labels, subset=[2, 7])
    assert set(sub["trail"].unique()) == {2, 7}
    np.testing.assert_array_equal(sub["label"].to_numpy(), labels[sub["trail"].to_numpy()])


def test_render_trails_colours_by_class_and_snapshot():
    points = np.zeros((3, 2, 2))
    points[:, 0] = [[0, 0], [1, 0], [2, 0]]  # class 0 moves right along y = 0
    points[:, 1] = [[0, 2], [1, 2], [2, 2]]  # class 1 along y = 2
    palette = np.array([[200, 0, 0], [0, 0, 200]], dtype=np.uint8)
    img = render_trails(points, [0, 1], bundled=False, width=41, height=41, palette=palette, min_luminance=0.5)
    assert img.shape == (41, 41, 3) and img.dtype == np.uint8
    bottom, top = img[-1], img[0]  # y = 0 is the bottom row
    assert bottom[1].tolist() == [100, 0, 0] and bottom[-2].tolist() == [200, 0, 0]  # dark early, bright late
    assert top[-2].tolist() == [0, 0, 200]
    grey = render_trails(points, [0, 1], bundled=False, width=41, height=41, palette=palette, highlight=1)
    assert grey[-1, -2, 0] == grey[-1, -2, 1] == grey[-1, -2, 2] and grey[0, -2].tolist() == [0, 0, 200]
    only = render_trails(points, [0, 1], bundled=False, width=41, height=41, subset=[1])
    assert not only[-1].any() and only[0].any()


def test_trails_from_run_one_pass_per_snapshot():
    def build():
        return nn.Sequential(OrderedDict([("flatten", nn.Flatten(1)), ("fc1", nn.Linear(4, 6)),
                                          ("relu1", nn.ReLU()), ("fc2", nn.Linear(6, 2))]))

    rng = np.random.default_rng(0)
    images = rng.random((40, 2, 2)).astype(np.float32)
    ds = tiny_dataset(images, np.arange(40) % 2)
    snaps = []
    for it in (0, 10, 20):
        torch.manual_seed(it)
        snaps.append((it, build().state_dict()))
    trails = trails_from_run(build, snaps, ds, "fc1", n=30, **{"n_iter": 100})
    assert trails.points.shape == (3, 30, 2) and trails.tap == "relu1"
    np.testing.assert_array_equal(trails.iterations, [0, 10, 20])
    assert trails.predicted.shape == (3, 30) and set(np.unique(trails.predicted)) <= {0, 1}
    np.testing.assert_array_equal(trails.labels, ds.labels.numpy()[trails.index])
    assert {k: v.shape for k, v in trails.arrays().items()} == {
        "points": (3, 30, 2), "labels": (30,), "index": (30,), "iterations": (3,), "predicted": (3, 30),
        "neighborhood_hit": (3,)}


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "aomcore", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def test_embed_cli_on_digits_writes_the_keys(tmp_path):
    weights = tmp_path / "d.pt"
    assert _cli("train", "--dataset", "digits", "--epochs", "3", "--out", str(weights)).returncode == 0
    common = ["--arch", "zoo:digits_net", "--weights", str(weights), "--dataset", "digits", "--n-iter", "100"]
    expected = {"activations": {"points", "labels", "index", "neighborhood_hit", "predicted", "meta", "classes"},
                "input-map": {"points", "labels", "index", "neighborhood_hit", "position", "perplexity",
                              "max_activation", "meta"},
                "neurons": {"points", "labels", "index", "class_means", "distances", "meta"}}
    for view, keys in expected.items():
        out = tmp_path / f"{view}.npz"
        run = _cli("embed", *common, "--layer", "conv2", "--view", view, "--n", "200", "--out", str(out))
        assert run.returncode == 0, run.stderr
        with np.load(out, allow_pickle=False) as npz:
            assert keys <= set(npz.files)
            n = npz["points"].shape[0]
            assert npz["points"].shape == (n, 2) and npz["points"].dtype == np.float64
            assert npz["labels"].shape == npz["index"].shape == (n,)
            meta = json.loads(str(npz["meta"]))
        assert meta["view"] == view and meta["tap"] == "relu2" and len(meta["key"]) == 32
        assert n == (16 if view == "neurons" else 200)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file
    bad = _cli("embed", *common, "--layer", "conv9", "--view", "neurons", "--out", str(tmp_path / "x.npz"))
    assert bad.returncode == 2 and "conv9" in bad.stderr


def test_embed_cli_filter_map_is_the_library_computation(tmp_path, monkeypatch):
    """``embed --view filter-map`` (#25): DeepEyes statistics of the train split, then filter_map, as the page's job."""
    from aomcore import build_model, load_dataset
    from aomcore.base import threads
    from aomcore.deepeyes import compute_deepeyes

    weights = tmp_path / "d.pt"
    assert _cli("train", "--dataset", "digits", "--epochs", "2", "--out", str(weights)).returncode == 0
    monkeypatch.setenv(threads.THREADS_ENV, "1")  # the same thread count in the CLI and here: the same points
    monkeypatch.setattr(threads, "current", lambda: 1)
    out = tmp_path / "fm.npz"
    run = _cli("embed", "--arch", "zoo:digits_net", "--weights", str(weights), "--dataset", "digits", "--layer",
               "conv2", "--view", "filter-map", "--n-iter", "100", "--out", str(out))
    assert run.returncode == 0, run.stderr
    data = load_dataset("digits", "train")
    model = build_model("zoo:digits_net", data.num_classes, data.input_shape)
    model.load_state_dict(torch.load(weights, weights_only=True))
    stats = compute_deepeyes(model, data, ["conv2"], positions=10, seed=0, similarity=True, device="cpu")["conv2"]
    with np.load(out, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        assert meta["view"] == "filter-map" and meta["split"] == "train" and meta["positions"] == 10
        np.testing.assert_array_equal(npz["deepeyes_filter_similarity"], stats.filter_similarity)
        np.testing.assert_array_equal(npz["points"], filter_map(stats.filter_similarity, n_iter=100))
        assert npz["points"].shape == (stats.num_kernels, 2)


def test_trails_key_names_the_t_sne_schedule(tmp_path, monkeypatch):
    """A new schedule moves the points, so cached trails of the old one must not be reused."""
    from aomcore.base import embedding
    from aomcore.rauber.run_trails import trails_key

    class Data:
        def identity(self):
            return {"spec": "digits"}

    snapshots = []
    for i in (0, 10):
        (tmp_path / f"s{i}").write_bytes(bytes([i]))
        snapshots.append((i, tmp_path / f"s{i}"))
    record = {"id": "r1", "arch": "zoo:digits_net"}
    params = {"layer": "fc1", "n": 100}
    today = trails_key(record, snapshots, Data(), params)
    assert trails_key(record, snapshots, Data(), params) == today
    monkeypatch.setattr(embedding, "SCHEDULE", "another")
    assert trails_key(record, snapshots, Data(), params) != today
