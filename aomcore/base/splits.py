"""What every dataset split shares, in memory or streamed: preprocessing, labels, identity, and the file rules.

:class:`Preprocessing` records every step between stored pixels and model input;
:class:`LabelledImages` is the interface the library reads a split through
(``batches``, ``labels``, ``input_shape``, ``identity``), served by the in-memory
:class:`~aomcore.base.data.ImageDataset` and the streamed
:class:`~aomcore.base.folder.FolderDataset`. :func:`confined` and :func:`check_size` are the
rules every loader opens a file under.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import transforms as _transforms
from .errors import InputError
from .policy import current_policy

__all__ = ["LabelledImages", "Preprocessing", "check_size", "confined", "stratified_subset"]


def stratified_subset(labels: np.ndarray, per_class: int, num_classes: int) -> np.ndarray:
    """Indices of at most ``per_class`` images of each class, seeded (always the same), in ascending order.

    Parameters
    ----------
    labels : ndarray, (N,) int64
    per_class : int
    num_classes : int

    Returns
    -------
    ndarray, (M,) int64, M <= per_class * num_classes.
    """
    rng = np.random.default_rng(0)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(num_classes)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


@dataclass(frozen=True)
class Preprocessing:
    """Preprocessing from stored pixels to model input, in this order.

    1. ``transform`` on each decoded image (uint8, or float32 in [0, 1] for 16-bit sources);
    2. scaling to [0, 1] (``div(255)`` for 8-bit pixels, as ``ToTensor`` does);
    3. ``channels``: a grayscale channel repeated; 4. ``resize``; 5. ``(x - mean) / std``.

    Parameters
    ----------
    mean, std : tuple of float, optional
        Per-channel normalisation ``(x - mean) / std`` (one value broadcasts to every
        channel). Both or neither.
    channels : int, optional
        Repeat a 1-channel image to this many channels (e.g. 3 for ImageNet-style
        architectures on MNIST).
    resize : int, optional
        Bilinear (antialiased) resize of the [0, 1] image to ``resize × resize`` pixels.
    per_class : int, optional
        Read a stratified sample of at most this many images per class (seeded, the same
        every time) instead of the whole split: a quick first look at a large folder.
    skip_unreadable : bool, default False
        Image folders only: decode every image (of the sample, with ``per_class``) once when
        the split is loaded and leave out those that do not decode (zero-byte, truncated,
        not an image), named in the dataset's notes and left out of every count. Without it
        such a file stops the load or the pass with its path. Other datasets ignore it.
    transform : str, optional
        torchvision v2 steps, ``"Resize(40), CenterCrop(32)"``, or a weights preset,
        ``"torchvision:ResNet50_Weights.IMAGENET1K_V2"`` (see :mod:`aomcore.base.transforms`).
        Stored in one canonical spelling; a preset is stored as its steps and sets
        ``mean``/``std`` (given ones must agree).

    Raises
    ------
    InputError
        Half a normalisation, non-finite or non-positive values, a transform off the
        allow-list or with non-literal arguments, a preset that disagrees with ``mean``/``std``.
    """

    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: int | None = None
    resize: int | None = None
    transform: str | None = None
    per_class: int | None = None
    skip_unreadable: bool = False

    def __post_init__(self):
        steps: tuple[_transforms.Step, ...] = ()
        if self.transform and self.transform.strip().startswith("torchvision:"):
            steps, mean, std = _transforms.preset(self.transform.strip())
            for label, given, theirs in (("mean", self.mean, mean), ("std", self.std, std)):
                if given is not None and tuple(float(v) for v in given) != theirs:
                    raise InputError(f"the preset sets its own {label}", expected=f"{label} {theirs} or none",
                                     found=f"{label} {tuple(given)}")
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "std", std)
        elif self.transform:
            steps = _transforms.parse_transform(self.transform)
        object.__setattr__(self, "transform", _transforms.canonical(steps) or None)
        object.__setattr__(self, "_steps", steps)
        if (self.mean is None) != (self.std is None):
            raise InputError("normalisation needs both mean and std", expected="both or neither",
                             found=f"mean={self.mean}, std={self.std}")
        for label, values in (("mean", self.mean), ("std", self.std)):
            if values is not None and (not len(values) or not all(math.isfinite(float(v)) for v in values)):
                raise InputError(f"{label} must be finite numbers", expected="finite per-channel values",
                                 found=str(tuple(values)))
        if self.std is not None and any(s <= 0 for s in self.std):
            raise InputError("std must be positive", expected="std > 0", found=str(self.std))
        if self.channels is not None and self.channels < 1:
            raise InputError("channels must be >= 1", expected=">= 1", found=str(self.channels))
        if self.per_class is not None and self.per_class < 1:
            raise InputError("per_class must be >= 1", expected=">= 1 image per class", found=str(self.per_class))
        if self.resize is not None and self.resize < 1:
            raise InputError("resize must be >= 1 pixel", expected=">= 1", found=str(self.resize))

    @property
    def steps(self) -> tuple[_transforms.Step, ...]:
        """The parsed ``transform`` (empty without one)."""
        return self._steps

    def to_dict(self) -> dict:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        for key in ("transform", "per_class", "skip_unreadable"):  # absent, so older cache keys stay as they were
            if d[key] in (None, False):
                del d[key]
        return d

    def key(self) -> tuple:
        """A hashable tuple of every field, in order (for caches keyed by preprocessing; :meth:`from_key`)."""
        return (self.mean, self.std, self.channels, self.resize, self.transform, self.per_class, self.skip_unreadable)

    @classmethod
    def from_key(cls, key: tuple) -> Preprocessing:
        """The preprocessing whose :meth:`key` is ``key``."""
        mean, std, channels, resize, transform, per_class, skip_unreadable = key
        return cls(mean=tuple(mean) if mean else None, std=tuple(std) if std else None, channels=channels,
                   resize=resize, transform=transform, per_class=per_class, skip_unreadable=bool(skip_unreadable))

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """(C, H, W) of the model input made from a stored image of ``shape`` (C, H, W)."""
        c, h, w = _transforms.output_shape(self.steps, shape)
        c = self.channels or c
        if self.resize:
            h = w = self.resize
        return int(c), int(h), int(w)


class LabelledImages(torch.utils.data.Dataset):
    """A labelled image split as the library reads it; subclasses hold or stream the pixels.

    Attributes (set by subclasses)
    ------------------------------
    labels : torch.Tensor
        Class indices, (N,), int64, on the CPU.
    classes : list of str
        Class names, in label order.
    name : str
        The spec the split was loaded from (``"mnist"``, ``"imagefolder:/data/pets"``).
    split : str
        ``"train"`` or ``"test"``.
    preprocessing : Preprocessing
    notes : tuple of str
        How the stored data was read when that is not obvious; shown with the dataset.
    scale : float
        Factor from stored values to [0, 1] (1/255 for 8-bit pixels).
    """

    scale: float = 1.0 / 255.0
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str
    preprocessing: Preprocessing
    notes: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_sizes(self) -> np.ndarray:
        """Images per class, (C,) int64."""
        return np.bincount(self.labels.numpy(), minlength=self.num_classes).astype(np.int64)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one preprocessed image."""
        raise NotImplementedError

    @property
    def digest(self) -> str:
        raise NotImplementedError

    def batches(self, batch_size: int = 256, device: str | torch.device = "cpu",
                indices: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    def display(self, indices) -> np.ndarray:
        """Images at ``indices`` as displayed: float32 (N, H, W, C) in [0, 1] (not normalised)."""
        raise NotImplementedError

    def identity(self) -> dict:
        """What identifies this split for caching and provenance (JSON-serialisable)."""
        identity = {"dataset": self.name, "split": self.split, "digest": self.digest,
                    "scale": self.scale, "preprocessing": self.preprocessing.to_dict(),
                    "n_images": len(self), "classes": list(self.classes)}
        if self.notes:  # only when there are any, so the cache keys of plain datasets stay as they were
            identity["notes"] = list(self.notes)
        return identity

    def examples(self, per_class: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """The first ``per_class`` images of each class, as displayed.

        Returns ``(images, labels)``: float32 (M, H, W, C) in [0, 1] and int64 (M,).
        """
        labels = self.labels.numpy()
        idx = [i for c in range(self.num_classes) for i in np.flatnonzero(labels == c)[:per_class].tolist()]
        return self.display(idx), labels[idx]

    def _check_batch(self, batch_size: int, n: int) -> None:
        if batch_size < 1:
            raise InputError("batch size must be >= 1", expected=">= 1", found=str(batch_size))
        c, h, w = self.input_shape
        current_policy().check_allocation(4 * c * h * w * min(batch_size, n), f"a batch of {min(batch_size, n)} "
                                          f"{c}×{h}×{w} float32 images", "a smaller --batch-size or --resize")

    def _after_unit(self, x: torch.Tensor, resize: bool = True) -> torch.Tensor:
        """[0, 1] images (B, C, H, W) float32 → model input: channels, resize, normalise."""
        p = self.preprocessing
        if p.channels and x.shape[1] != p.channels:
            x = x.expand(-1, p.channels, -1, -1)
        if resize and p.resize and x.shape[-2:] != (p.resize, p.resize):
            x = F.interpolate(x, size=(p.resize, p.resize), mode="bilinear", antialias=True, align_corners=False)
        if p.mean is not None:  # transforms.Normalize: tensor.sub_(mean).div_(std), mean/std in x's dtype
            mean = torch.tensor(p.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            std = torch.tensor(p.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
            x = x.sub(mean).div(std)
        return x

    def _check_preprocessing(self, stored_channels: int) -> None:
        p = self.preprocessing
        channels = p.channels or stored_channels
        if p.channels and stored_channels not in (1, p.channels):
            raise InputError(f"cannot repeat {stored_channels} channels to {p.channels}",
                             expected="1-channel images", found=f"{stored_channels} channels")
        if p.mean is not None and len(p.mean) not in (1, channels):
            raise InputError("mean/std need one value or one per channel",
                             expected=f"1 or {channels} values", found=f"{len(p.mean)} values")
        c, h, w = self.input_shape
        current_policy().check_allocation(4 * c * h * w, f"one {c}×{h}×{w} float32 input image",
                                          "a smaller --resize")


def _data_limit() -> int:
    """Bytes a dataset may declare before it is decoded (``AOMSCOPE_MAX_DATA_GB``)."""
    return int(current_policy().max_data_gb * 2**30)


def _size(nbytes: int) -> str:
    for unit, factor in (("GB", 2**30), ("MB", 2**20)):
        if nbytes >= factor / 10:
            return f"{nbytes / factor:.2f} {unit}"
    return f"{nbytes / 2**10:.1f} KB"


def check_size(what: str, nbytes: int, declared: str, total: int = 0) -> int:
    """Refuse ``nbytes`` (plus ``total`` already read) over the data limit; returns the new total."""
    limit = _data_limit()
    if total + nbytes > limit:
        raise InputError("the dataset is too large to load", expected=f"at most {_size(limit)} of decoded data "
                         "(AOMSCOPE_MAX_DATA_GB)", found=f"{what} declares {declared} = {_size(nbytes)}"
                         + (f" after {_size(total)} of other files" if total else ""))
    return total + nbytes


def confined(path: str | os.PathLike, policy=None) -> Path:
    """The path a loader opens, symlinks followed; in shared mode it must lie inside ``AOMSCOPE_DATA_DIRS``.

    Every file and folder a loader opens goes through here, so a link *inside* an allowed
    folder that points outside it (an image, a ``train/`` folder, ``MNIST/``, a CIFAR
    batch) is refused like a path that starts outside.

    Raises
    ------
    InputError
        "path outside the allowed data folders" (shared mode only).
    """
    policy = policy or current_policy()
    resolved = policy.check_data_path(path)  # refuses a NUL in the path in either mode
    return resolved if policy.shared else Path(path)


