"""Small hand-written models with the structures that break naive edits (3×16×16 inputs)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SHAPE = (3, 16, 16)


class CatNet(nn.Module):
    """Two branches concatenated ([a, b]), then a conv and an FC: widening ``a`` must put the
    next conv's new input columns at the concat offset (8), not at the end."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.a = nn.Conv2d(6, 8, 1)
        self.b = nn.Conv2d(6, 4, 3, padding=1)
        self.merge = nn.Conv2d(12, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], dim=1)  # (N, 12, H, W)
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.merge(x)), 1).flatten(1))


class ConcatSkip(nn.Module):
    """A DenseNet-like skip: the block's output is concatenated after its input, then BatchNorm."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(12)
        self.head = nn.Conv2d(12, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4, num_classes)

    def forward(self, x):
        s = F.relu(self.stem(x))
        x = F.relu(self.bn(torch.cat([s, self.conv(s)], 1)))  # stem's channels first
        return self.fc(F.adaptive_avg_pool2d(self.head(x), 4).flatten(1))


class SE(nn.Module):
    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class GroupedSE(nn.Module):
    """A grouped (not depthwise) conv and a squeeze-and-excitation block."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.relu2 = nn.ReLU()
        self.se = SE(8)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.relu2(self.grouped(self.relu1(self.bn1(self.conv1(x)))))
        return self.fc(F.adaptive_avg_pool2d(self.se(x), 1).flatten(1))


class DepthwiseSeparable(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = nn.ReLU6()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn2 = nn.BatchNorm2d(8)
        self.act2 = nn.ReLU6()
        self.pw = nn.Conv2d(8, 16, 1)
        self.act3 = nn.ReLU()
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.act2(self.bn2(self.dw(self.act1(self.bn1(self.conv1(x))))))
        return self.fc(F.adaptive_avg_pool2d(self.act3(self.pw(x)), 1).flatten(1))


class TransposeNet(nn.Module):
    """A conv feeding a ConvTranspose2d (weight axes (in, out, kh, kw): the other way round)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.relu1 = nn.ReLU()
        self.up = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.relu3(self.conv2(self.relu2(self.up(self.relu1(self.conv1(x))))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Activations(nn.Module):
    """GELU, SiLU and LeakyReLU modules, then a functional activation the hooks cannot see."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.gelu = nn.GELU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.silu = nn.SiLU()
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.leaky = nn.LeakyReLU(0.1)
        self.conv4 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.leaky(self.conv3(self.silu(self.conv2(self.gelu(self.conv1(x))))))
        x = F.relu(self.conv4(x))
        return self.fc2(torch.tanh(self.fc1(F.adaptive_avg_pool2d(x, 1).flatten(1))))


class ChannelsLastMLP(nn.Module):
    """A ConvNeXt-like block: Linear layers on (N, H, W, C), then back to (N, C, H, W)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.up = nn.Linear(4, 6)  # applied to (N, H, W, 4): 6 kernels on the last axis
        self.act = nn.GELU()
        self.down = nn.Linear(6, 4)
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        x = self.conv(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        x = self.down(self.act(self.up(x))).permute(0, 3, 1, 2)  # (N, C, H, W)
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Residual(nn.Module):
    """A residual add: widening conv2 must widen the skip's producer (conv1) too."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        s = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(s + self.bn2(self.conv2(s)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class Shuffle(nn.Module):
    """ShuffleNet's channel shuffle (a view that splits the channel axis)."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        n, c, h, w = x.shape
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.conv2(x)), 1).flatten(1))


HANDMADE = {cls.__name__: cls for cls in (CatNet, ConcatSkip, GroupedSE, DepthwiseSeparable, TransposeNet,
                                          Activations, ChannelsLastMLP, Residual, Shuffle)}


def calibrated(model: nn.Module, shape=SHAPE, seed: int = 0, passes: int = 3) -> nn.Module:
    """Random BatchNorm statistics from a few train-mode passes, then eval mode."""
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(torch.randn((4, *shape), generator=gen))
    return model.eval()
