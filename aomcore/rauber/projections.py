"""Projections of a layer's activity: Rauber, Fadel, Falcão, Telea, TVCG 23(1), 2017.

* :func:`activation_projection` — images placed by t-SNE (or UMAP) of their activations in
  one layer, coloured by class, with the neighbourhood hit.
* :func:`neuron_distances`, :func:`neuron_projection` — neurons (kernels) placed by how their
  activations co-vary over the images (1 − |Pearson r|).

The images are a fixed, seeded, class-stratified sample and their activation vectors come
from :mod:`aomcore.base.activations` (the layer's tap, on a private copy of the model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..base.activations import _layer_info, _Stages, activation_vectors, stratified_sample
from ..base.data import ImageDataset
from ..base.embedding import _Event, embed, neighborhood_hit, neighborhood_hit_per_class
from ..base.errors import InputError

__all__ = ["NeuronProjection", "Projection", "activation_projection", "neuron_distances", "neuron_projection"]


@dataclass
class Projection:
    """Images placed by their activations in one layer (Rauber et al. 2017, observation projection).

    Attributes
    ----------
    points : ndarray, (N, 2) float64
    labels : ndarray, (N,) int64
        True class of each image.
    index : ndarray, (N,) int64
        Dataset index of each image.
    predicted : ndarray, (N,) int64
        The model's prediction (-1 if unknown); ``predicted != labels`` marks misclassified.
    neighborhood_hit : float
        :func:`aomcore.base.embedding.neighborhood_hit` of the points with the true labels (k=6).
    neighborhood_hit_per_class : ndarray, (C,) float64
    layer, tap, mode : str
    """

    points: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    predicted: np.ndarray
    neighborhood_hit: float
    neighborhood_hit_per_class: np.ndarray
    layer: str
    tap: str
    mode: str

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of an ``embed.npz`` for this view (see :mod:`aomcore.aom.maps_npz`)."""
        return {"points": self.points, "labels": self.labels, "index": self.index, "predicted": self.predicted,
                "neighborhood_hit": np.float64(self.neighborhood_hit),
                "neighborhood_hit_per_class": self.neighborhood_hit_per_class}


def activation_projection(model: nn.Module, dataset: ImageDataset, layer: str, n: int = 5000, seed: int = 0,
                          indices=None, mode: str = "flatten", method: str = "tsne", perplexity: float = 30.0,
                          n_iter: int = 500, pca_dims: int | None = 50, k: int = 6, batch_size: int = 256,
                          device: str | torch.device = "auto",
                          progress: Callable[[int, int], None] | None = None,
                          cancel: _Event | None = None) -> Projection:
    """Rauber et al. 2017's observation projection of one layer.

    Parameters
    ----------
    n, seed : int
        The images: :func:`stratified_sample` of ``n`` (also seeds the embedding), unless
        ``indices`` are given.
    indices : array (N,) int, optional
    mode : {"flatten", "mean"}, default "flatten"
        See :func:`activation_vectors`.
    method, perplexity, n_iter : see :func:`aomcore.base.embedding.embed`
    pca_dims : int or None, default 50
        Vectors with more values are reduced to 50 principal components first (standard
        t-SNE practice; turns a 9,216-value conv map into something t-SNE handles fast).
    k : int, default 6
        Neighbours for the neighbourhood hit.
    progress : callable(done, total), optional
        Images of the forward pass, then embedding iterations, on one counter.

    Returns
    -------
    Projection
    """
    labels_all = dataset.labels.numpy()
    idx = stratified_sample(labels_all, n, seed) if indices is None else np.asarray(indices, dtype=np.int64)
    stages = _Stages(progress, [len(idx), 250 + n_iter if method == "tsne" else 1])
    acts, predicted = activation_vectors(model, dataset, layer, idx, mode, batch_size, device,
                                         stages.stage(0), cancel)
    info = _layer_info(model, dataset, layer)
    points = embed(acts, method=method, perplexity=perplexity, seed=seed, n_iter=n_iter, pca_dims=pca_dims,
                   progress=stages.stage(1), cancel=cancel)
    labels = labels_all[idx]
    return Projection(points=points, labels=labels, index=idx, predicted=predicted,
                      neighborhood_hit=neighborhood_hit(points, labels, k),
                      neighborhood_hit_per_class=neighborhood_hit_per_class(points, labels, k, dataset.num_classes),
                      layer=layer, tap=info.tap, mode=mode)


def neuron_distances(acts: np.ndarray) -> np.ndarray:
    """Distance 1 − |r| between neurons, r = Pearson correlation over the images.

    Rauber et al. 2017 project neurons by the similarity (Pearson correlation) of their
    activations; the exact distance is not stated in the material at hand, and 1 − |r| is
    the usual reading: strongly anti-correlated neurons are close (one is nearly redundant
    given the other). A constant neuron (e.g. a dead ReLU) has no correlation: r is
    defined as 0, so it is at distance 1 from every other neuron (and 0 from itself).

    Parameters
    ----------
    acts : ndarray, (N, K) float
        Per-image activation of each neuron (for a conv layer, the spatial mean of each
        kernel's map: :func:`activation_vectors` with ``mode="mean"``).

    Returns
    -------
    ndarray, (K, K) float64, symmetric, zero diagonal, values in [0, 1].
    """
    a = np.asarray(acts, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise InputError("neuron distances need per-image activations", expected="(N >= 2, K)",
                         found=f"shape {a.shape}")
    centred = a - a.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))  # (K,)
    scale = np.abs(a).max(axis=0) * np.sqrt(a.shape[0])
    constant = norms <= 1e-12 * np.maximum(scale, 1e-300)
    z = np.where(constant, 0.0, centred / np.where(constant, 1.0, norms))  # (N, K) unit columns
    r = np.clip(z.T @ z, -1.0, 1.0)  # (K, K)
    d = 1.0 - np.abs(r)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    return d


@dataclass
class NeuronProjection:
    """Neurons (kernels) placed by :func:`neuron_distances` (Rauber et al. 2017, neuron projection).

    Attributes
    ----------
    points : ndarray, (K, 2) float64
    labels : ndarray, (K,) int64
        Colour: the class with the highest mean activation of each neuron.
    index : ndarray, (K,) int64
        Neuron / kernel index.
    class_means : ndarray, (K, C) float64
        Mean activation of each neuron over the images of each class (NaN for a class
        with no images).
    distances : ndarray, (K, K) float64
    """

    points: np.ndarray
    labels: np.ndarray
    index: np.ndarray
    class_means: np.ndarray
    distances: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of an ``embed.npz`` for this view (see :mod:`aomcore.aom.maps_npz`)."""
        return {"points": self.points, "labels": self.labels, "index": self.index,
                "class_means": self.class_means, "distances": self.distances}


def neuron_projection(acts: np.ndarray, labels, num_classes: int | None = None, method: str = "tsne",
                      perplexity: float = 30.0, seed: int = 0, n_iter: int = 500,
                      progress: Callable[[int, int], None] | None = None,
                      cancel: _Event | None = None) -> NeuronProjection:
    """Embed neurons with precomputed distances 1 − |r| (t-SNE by default).

    Parameters
    ----------
    acts : ndarray, (N, K) float
        Per-image activations (spatial means for a conv layer).
    labels : array, (N,) int
        Class of each image (for the colour).
    num_classes : int, optional
        Default max(label) + 1.
    method, perplexity, seed, n_iter, progress, cancel : see :func:`aomcore.base.embedding.embed`
        The perplexity is clamped to (K − 1)/3 for small layers.
    """
    a = np.asarray(acts, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    if y.shape != (a.shape[0],):
        raise InputError("one label per image", expected=f"labels of shape ({a.shape[0]},)", found=f"{y.shape}")
    c = int(num_classes) if num_classes is not None else int(y.max()) + 1
    d = neuron_distances(a)
    points = embed(d, method=method, metric="precomputed", perplexity=perplexity, seed=seed, n_iter=n_iter,
                   progress=progress, cancel=cancel)
    onehot = np.zeros((c, a.shape[0]))
    onehot[y, np.arange(a.shape[0])] = 1.0
    counts = onehot.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (onehot @ a / counts[:, None]).T  # (K, C)
    means[:, counts == 0] = np.nan
    colour = np.argmax(np.where(np.isnan(means), -np.inf, means), axis=1).astype(np.int64)
    return NeuronProjection(points=points, labels=colour, index=np.arange(a.shape[1], dtype=np.int64),
                            class_means=means, distances=d)


