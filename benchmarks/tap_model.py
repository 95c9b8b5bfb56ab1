"""A small MNIST network with four full taps, for the maps benchmark (issue: maps at the cost of one forward pass).

BatchNorm, a residual add and a functional ReLU; the four taps, read with
``--layers conv1,block,conv3,fc1``, are

=========  ===========  =====================================================
layer      tap          activation
=========  ===========  =====================================================
conv1      bn1          12×28×28 (full input resolution; ``F.relu`` follows)
block      block        12×28×28 (``relu(x + bn(conv(x)))``, a residual block)
conv3      relu3        24×10×10
fc1        relu4        64 neurons
=========  ===========  =====================================================

Used as ``--arch benchmarks/tap_model.py:TapNet`` (1×28×28 inputs, 10 classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Residual(nn.Module):
    """``relu(x + bn(conv(x)))``: a 3×3 conv block that keeps the channels and the size."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.bn(self.conv(x)))


class TapNet(nn.Module):
    """(N, 1, 28, 28) → (N, num_classes) logits."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 12, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(12)
        self.block = Residual(12)
        self.conv3 = nn.Conv2d(12, 24, 5)
        self.bn3 = nn.BatchNorm2d(24)
        self.relu3 = nn.ReLU()
        self.fc1 = nn.Linear(24 * 5 * 5, 64)
        self.relu4 = nn.ReLU()
        self.fc2 = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block(F.relu(self.bn1(self.conv1(x))))  # 12×28×28, twice
        x = self.relu3(self.bn3(self.conv3(F.max_pool2d(x, 2))))  # 24×10×10
        x = F.max_pool2d(x, 2).flatten(1)
        return self.fc2(self.relu4(self.fc1(x)))
