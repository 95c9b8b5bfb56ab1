"""Tiny models with hand-set weights and a slow, literal implementation of eqs. 1-4."""

from __future__ import annotations

from collections import OrderedDict
from itertools import permutations

import numpy as np
import torch
from torch import nn

from aomcore import ImageDataset


def tiny_dataset(images, labels, classes=None) -> ImageDataset:
    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    y = torch.as_tensor(labels, dtype=torch.int64)
    classes = classes or [str(c) for c in range(int(y.max()) + 1)]
    return ImageDataset(images=x, labels=y, classes=classes, name="tiny", split="train", scale=1.0)


def pixel_model() -> nn.Sequential:
    """1x1 conv, 3 kernels: k0 = pixel, k1 = 0.5 - pixel, k2 = exactly 0; then ReLU."""
    conv = nn.Conv2d(1, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 0.0]).view(3, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 0.5, 0.0]))
    return nn.Sequential(OrderedDict([("conv", conv), ("relu", nn.ReLU())]))


def literal_aom(acts: np.ndarray, labels: np.ndarray, n_classes: int, threshold: float = 0.0) -> np.ndarray:
    """Eq. 1 with loops: acts (N, K, H, W)."""
    n, k, h, w = acts.shape
    m = np.zeros((k, n_classes, h, w))
    for c in range(n_classes):
        members = [x for x, y in zip(acts, labels, strict=True) if y == c]
        for kk in range(k):
            for i in range(h):
                for j in range(w):
                    m[kk, c, i, j] = sum(1.0 if x[kk, i, j] > threshold else 0.0 for x in members) / len(members)
    return m


def literal_odm(m: np.ndarray) -> np.ndarray:
    k, c, h, w = m.shape
    d = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            d[a, b] = sum(abs(m[a, cc, i, j] - m[b, cc, i, j]) for cc in range(c) for i in range(h)
                          for j in range(w)) / (c * h * w)
    return d


def literal_csm(m: np.ndarray) -> np.ndarray:
    k, c, h, w = m.shape
    s = np.zeros_like(m)
    for kk in range(k):
        for cc in range(c):
            for i in range(h):
                for j in range(w):
                    s[kk, cc, i, j] = sum(m[kk, cc, i, j] - m[kk, d, i, j] for d in range(c) if d != cc) / (c - 1)
    return s


def literal_selectivity(s: np.ndarray) -> np.ndarray:
    k, c = s.shape[:2]
    avg = s.mean(axis=(2, 3))
    return np.array([sum(abs(avg[kk, c0] - avg[kk, c1]) for c0, c1 in permutations(range(c), 2))
                     for kk in range(k)])
