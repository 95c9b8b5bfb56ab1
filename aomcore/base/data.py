"""Labelled image datasets held in memory, with explicit, recorded preprocessing.

A dataset is named by a *spec* string:

``digits``
    scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes), with a
    fixed stratified 75/25 train/test split. Works offline on any machine; the default.
``mnist``, ``fashion-mnist``
    torchvision's MNIST / FashionMNIST from a data root in torchvision's layout
    (``ROOT/MNIST/raw/…``). Downloaded only when ``download=True``.
``cifar10``
    CIFAR-10 in its python pickle format (``ROOT/cifar-10-batches-py/…``), read with a
    restricted unpickler that only builds NumPy arrays and plain containers.
``imagefolder:PATH``
    one sub-folder per class (torchvision's ImageFolder layout); if ``PATH/train`` and
    ``PATH/test`` exist they are the two splits (with the same class folders), otherwise
    ``PATH`` serves both. Hidden entries (``.git``, ``._x.png``) and ``__MACOSX`` are
    skipped; a folder or image reached twice through symlinks is refused. 16-bit
    grayscale images stay 16-bit; a grayscale/RGB mix is read as RGB.
``npz:PATH``
    a NumPy archive with ``x`` (N,H,W), (N,C,H,W) or channels-last (N,H,W,C) with C in
    {1, 3, 4}, ``y`` (N,) integer labels and optional ``classes`` (C,) str; or
    ``x_train``/``y_train``/``x_test``/``y_test``. Loaded with ``allow_pickle=False``.
    Pixels: uint8 (/255), uint16 (/65535), floats in [0, 1], or values in [0, 255] of any
    dtype (/255, with a note: uint16 pixels that never exceed 255 are 8-bit values);
    anything else is refused rather than used unscaled.

Every file a loader opens is confined to ``AOMSCOPE_DATA_DIRS`` in shared mode (see
:mod:`aomcore.base.policy`), and declared sizes (``.npz`` headers, image sizes) are checked
against ``AOMSCOPE_MAX_DATA_GB`` before anything is decoded. How the stored data was read,
when not obvious, is kept in :attr:`ImageDataset.notes`.

Images are kept as stored (uint8 where the source is uint8) and converted per batch:
scale to [0, 1], optionally repeat a grayscale channel, resize, and normalise with a
per-channel mean/std. :class:`Preprocessing` records every step.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import transforms as _transforms
from .errors import InputError
from .folder import load_folder
from .splits import LabelledImages, Preprocessing, check_size, confined, stratified_subset

__all__ = [
    "DATASET_NAMES",
    "ImageDataset",
    "LabelledImages",
    "Preprocessing",
    "default_data_root",
    "load_dataset",
]

DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "cifar10", "imagefolder:PATH", "npz:PATH")
SPLITS = ("train", "test")
DATA_ROOT_ENV = "AOMSCOPE_DATA_ROOT"


def default_data_root() -> Path | None:
    """The data root from the ``AOMSCOPE_DATA_ROOT`` environment variable, or None."""
    root = os.environ.get(DATA_ROOT_ENV)
    return Path(root) if root else None


@dataclass(eq=False)
class ImageDataset(LabelledImages):
    """An in-memory labelled image split (the fast path for MNIST, CIFAR-10, npz, digits).

    Attributes
    ----------
    images : torch.Tensor
        Raw images, (N, C, H, W), uint8 or float32, on the CPU.
    labels : torch.Tensor
        Class indices, (N,), int64, in ``[0, len(classes))``.
    classes : list of str
        Class names, in label order.
    name : str
        The spec the dataset was loaded from (e.g. ``"mnist"``).
    split : str
        ``"train"`` or ``"test"``.
    scale : float
        Factor that maps raw values to [0, 1] (1/255 for 8-bit images); applied as a
        division by ``1/scale`` when that is an integer, as torchvision does.
    preprocessing : Preprocessing
        Applied per batch by :meth:`transform`.
    notes : tuple of str
        How the stored data was read when that is not obvious (channels-last transposed,
        float pixels in [0, 255] scaled, grayscale repeated to RGB); shown with the dataset.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    name: str
    split: str
    scale: float = 1.0 / 255.0
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.images.ndim != 4:
            raise InputError("images must be 4-D", expected="(N, C, H, W)",
                             found=f"shape {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise InputError("one label per image", expected=f"labels of shape ({self.images.shape[0]},)",
                             found=f"shape {tuple(self.labels.shape)}")
        self._digest: str | None = None
        self._steps = _transforms.build(self.preprocessing.steps) if self.preprocessing.steps else None
        self._check_preprocessing(int(self.images.shape[1]))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.transform(self.images[index : index + 1])[0]
        return x, int(self.labels[index])

    # --- batches ----------------------------------------------------------------------
    def _unit(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw values → float32 in [0, 1], by the same float32 operation as torchvision.

        ``ToTensor`` computes ``img.float().div(255)``; multiplying by ``1/255`` instead
        differs in the last bit for about 13% of MNIST's pixel values, so a scale that is
        the reciprocal of an integer divides by that integer.
        """
        x = raw.to(torch.float32)
        if self.scale == 1.0:
            return x
        divisor = 1.0 / self.scale
        if divisor == round(divisor):
            return x.div(round(divisor))
        return x * self.scale

    def transform(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw images (B, C, H, W) → float32 model input (B, C', H', W') on raw's device.

        Bit-identical to torchvision's ``Compose([ToTensor(), Resize((n, n)),
        Normalize(mean, std)])`` applied image by image: ``div(255)`` in float32, the
        tensor path of ``Resize`` (bilinear, antialiased, on the float image), and
        ``sub(mean).div(std)`` with float32 mean/std. Not identical to a ``Resize`` placed
        *before* ``ToTensor``: that one resizes the PIL image with PIL's filter and rounds
        it to uint8. A ``transform`` spec runs first, on the stored (uint8) pixels.
        """
        if self._steps is not None:
            raw = self._steps(raw)
        return self._after_unit(self._unit(raw))

    def batches(self, batch_size: int = 256, device: str | torch.device = "cpu",
                indices: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(x, y)``: x float32 (B, C', H', W') and y int64 (B,), on ``device``.

        Raw uint8 slices travel to the device and are converted there, so host→device
        traffic is 1 byte per pixel. ``indices`` (int64, (M,)) restricts and orders the
        images (e.g. one shard of a distributed run, or one class).
        """
        device = torch.device(device)
        pin = device.type == "cuda"
        n = len(self) if indices is None else int(indices.numel())
        self._check_batch(batch_size, n)
        for start in range(0, n, batch_size):
            if indices is None:
                raw = self.images[start : start + batch_size]
                y = self.labels[start : start + batch_size]
            else:
                idx = indices[start : start + batch_size]
                raw, y = self.images[idx], self.labels[idx]
            if pin:
                raw, y = raw.pin_memory(), y.pin_memory()
            raw = raw.to(device, non_blocking=pin)
            y = y.to(device, non_blocking=pin)
            yield self.transform(raw), y

    # --- facts ------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape (C, H, W) of one preprocessed image."""
        c, h, w = self.images.shape[1:]
        return self.preprocessing.output_shape((int(c), int(h), int(w)))

    @property
    def digest(self) -> str:
        """sha256 of the raw images, labels and class names (hex); computed once."""
        if self._digest is None:
            h = hashlib.sha256()
            h.update(str((tuple(self.images.shape), str(self.images.dtype))).encode())
            h.update(self.images.contiguous().numpy().tobytes())
            h.update(self.labels.numpy().astype(np.int64).tobytes())
            h.update("\x00".join(self.classes).encode())
            self._digest = h.hexdigest()
        return self._digest

    def display(self, indices) -> np.ndarray:
        """Images at ``indices`` as stored, scaled to [0, 1]: float32 (N, H, W, C)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64)).reshape(-1)
        return self._unit(self.images[idx]).clamp(0, 1).permute(0, 2, 3, 1).numpy()


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------


def load_dataset(spec: str, split: str = "train", data_root: str | os.PathLike | None = None,
                 preprocessing: Preprocessing | None = None, download: bool = False,
                 workers: int | None = None) -> LabelledImages:
    """Load one split of a dataset named by ``spec`` (see the module docstring).

    Parameters
    ----------
    spec : str
        ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``imagefolder:PATH`` or
        ``npz:PATH``.
    split : {"train", "test"}
    data_root : path, optional
        Folder holding torchvision-layout data; defaults to ``$AOMSCOPE_DATA_ROOT``.
    preprocessing : Preprocessing, optional
        Defaults to scaling only.
    download : bool, default False
        Let torchvision download MNIST/FashionMNIST/CIFAR-10 into ``data_root``.
    workers : int, optional
        DataLoader worker processes that decode a streamed image folder (0 = in this
        process; default ``min(4, threads)``, :func:`aomcore.base.folder.default_workers`).
        Ignored by the in-memory datasets.

    Returns
    -------
    ImageDataset (in memory) or FolderDataset (``imagefolder:``, streamed from disk).

    Raises
    ------
    InputError
        Unknown spec or split, missing files, malformed arrays or labels.
    """
    if split not in SPLITS:
        raise InputError("unknown split", expected=" or ".join(SPLITS), found=repr(split))
    preprocessing = preprocessing or Preprocessing()
    kind, _, arg = spec.partition(":")
    if kind == "digits" and not arg:
        images, labels, classes, scale, notes = _load_digits(split)
    elif kind in ("mnist", "fashion-mnist") and not arg:
        images, labels, classes, scale, notes = _load_mnist(kind, split, _require_root(data_root, kind), download)
    elif kind == "cifar10" and not arg:
        images, labels, classes, scale, notes = _load_cifar10(split, _require_root(data_root, kind), download)
    elif kind == "imagefolder" and arg:
        return load_folder(Path(arg), split, spec, preprocessing, workers)
    elif kind == "npz" and arg:
        images, labels, classes, scale, notes = _load_npz(Path(arg), split)
    else:
        raise InputError("unknown dataset", expected=", ".join(DATASET_NAMES), found=repr(spec))
    if images.shape[0] == 0:
        raise InputError("the dataset has no images", expected="at least one image", found="0")
    if len(classes) < 2:
        raise InputError("the dataset has a single class", expected="at least two classes (maps compare classes)",
                         found=f"classes {classes}")
    if preprocessing.per_class:
        keep = torch.from_numpy(stratified_subset(labels.numpy(), preprocessing.per_class, len(classes)))
        notes.append(f"a stratified sample of {len(keep):,} of {len(labels):,} images (at most "
                     f"{preprocessing.per_class} per class)")
        images, labels = images[keep], labels[keep]
    return ImageDataset(images=images, labels=labels, classes=classes, name=spec, split=split,
                        scale=scale, preprocessing=preprocessing, notes=tuple(notes))


def _require_root(data_root, name: str) -> Path:
    root = data_root if data_root is not None else default_data_root()
    if root is None:
        raise InputError(f"{name} needs a data root", expected=f"--data-root DIR or ${DATA_ROOT_ENV}",
                         found="neither was given")
    root = confined(root)
    if not root.is_dir():
        raise InputError("data root does not exist", expected="an existing folder", found=str(root))
    return root


def _load_digits(split: str):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)  # (1797, 8, 8), values 0..16
    y = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=0)
    idx = idx_train if split == "train" else idx_test
    images = torch.from_numpy(x[idx][:, None].copy())
    return images, torch.from_numpy(y[idx].copy()), [str(c) for c in bunch.target_names], 1.0 / 16.0, []


#: Class names as torchvision's ``MNIST.classes`` / ``FashionMNIST.classes`` name them (part of
#: a dataset's identity, so of every cache key; a test checks they still match).
_MNIST_CLASSES = {
    "mnist": ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
              "8 - eight", "9 - nine"],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"],
}


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An unsigned-byte IDX file (LeCun's MNIST format: magic 0x0000080N, N big-endian int32 sizes).

    Raises
    ------
    InputError
        A file that is not a ubyte IDX file of ``ndim`` dimensions, or whose length does
        not match its header.
    """
    path = confined(path)
    check_size(path.name, path.stat().st_size, "a file of")
    data = path.read_bytes()
    header = 4 * (ndim + 1)
    if len(data) < header:
        raise InputError(f"not an MNIST-style IDX file: {path.name}",
                         expected=f"a header of {header} bytes, then the data", found=f"{len(data)} bytes")
    magic = int.from_bytes(data[:4], "big")
    if magic != 0x800 + ndim:
        raise InputError(f"not an MNIST-style IDX file: {path.name}",
                         expected=f"unsigned-byte IDX with {ndim} dimension(s) (magic {0x800 + ndim:#010x})",
                         found=f"magic {magic:#010x}")
    shape = tuple(int.from_bytes(data[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(ndim))
    if len(data) - header != math.prod(shape):
        raise InputError(f"truncated or padded IDX file: {path.name}",
                         expected=f"{header + math.prod(shape)} bytes for shape {shape}", found=f"{len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _load_mnist(kind: str, split: str, root: Path, download: bool):
    """MNIST or FashionMNIST in torchvision's layout, as torchvision's dataset classes read it.

    The extracted raw IDX files are read here (torchvision's import alone takes about 2 s,
    as long as reading the files); torchvision is used only to download, or when the
    raw files are missing (it then also accepts its legacy ``processed/*.pt`` files).
    """
    folder = "MNIST" if kind == "mnist" else "FashionMNIST"
    prefix = "train" if split == "train" else "t10k"
    raw = confined(root / folder / "raw")
    images_file, labels_file = raw / f"{prefix}-images-idx3-ubyte", raw / f"{prefix}-labels-idx1-ubyte"
    if not download and images_file.is_file() and labels_file.is_file():
        images, labels = _read_idx(images_file, 3), _read_idx(labels_file, 1)
        if images.shape[0] != labels.shape[0]:
            raise InputError(f"{kind} images and labels differ in number", expected="one label per image",
                             found=f"{images.shape[0]} images, {labels.shape[0]} labels")
        _check_labels(labels, len(_MNIST_CLASSES[kind]))
        return (torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)),
                list(_MNIST_CLASSES[kind]), 1.0 / 255.0, [])
    from torchvision import datasets

    cls = datasets.MNIST if kind == "mnist" else datasets.FashionMNIST
    files = [raw / url.rpartition("/")[2] for url, _ in cls.resources]  # what torchvision may open: the raw
    files += [file.with_suffix("") for file in files]  # files, their .gz downloads and its legacy
    files += [root / cls.__name__ / "processed" / name for name in ("training.pt", "test.pt")]  # processed files
    for file in files:
        if os.path.lexists(file):
            confined(file)
    try:
        ds = cls(str(root), train=split == "train", download=download)
    except RuntimeError as exc:
        raise InputError(f"{kind} not found under the data root",
                         expected=f"{root}/{cls.__name__}/raw/*-ubyte (torchvision's layout)",
                         found=str(exc).splitlines()[0]) from None
    return ds.data[:, None].contiguous(), ds.targets.to(torch.int64), list(ds.classes), 1.0 / 255.0, []


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds NumPy arrays and plain containers (CIFAR batches)."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"), ("builtins", "bytearray"),
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise InputError("refusing to unpickle", expected="NumPy arrays and plain containers",
                             found=f"{module}.{name}")
        return super().find_class(module, name)


def _read_cifar_pickle(path: Path) -> dict:
    try:
        with open(confined(path), "rb") as f:
            return _ArrayUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise InputError("CIFAR-10 file missing", expected=f"{path.name} in {path.parent}",
                         found="no such file") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise InputError("CIFAR-10 file unreadable", expected="a CIFAR-10 python batch",
                         found=f"{path.name}: {exc}") from None


def _load_cifar10(split: str, root: Path, download: bool):
    folder = confined(root / "cifar-10-batches-py")
    if download and not folder.is_dir():
        from torchvision import datasets

        datasets.CIFAR10(str(root), train=True, download=True)
    if not folder.is_dir():
        raise InputError("CIFAR-10 not found under the data root",
                         expected=f"{folder} (the python version of CIFAR-10)", found="no such folder")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    xs, ys = [], []
    try:
        for name in names:
            entry = _read_cifar_pickle(folder / name)
            xs.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(entry.get("labels", entry.get("fine_labels")), dtype=np.int64).reshape(-1))
            if len(xs[-1]) != len(ys[-1]):
                raise ValueError(f"{len(xs[-1])} images, {len(ys[-1])} labels")
        name = "batches.meta"
        meta = _read_cifar_pickle(folder / name)
        classes = [str(c) for c in meta["label_names"]]
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError("CIFAR-10 file malformed", expected="a dict with 'data' (N, 3072) uint8 and 'labels' "
                         "(batches.meta: 'label_names')", found=f"{name}: {type(exc).__name__}: {exc}") from None
    labels = torch.from_numpy(np.concatenate(ys))
    _check_labels(labels.numpy(), len(classes))
    return torch.from_numpy(np.concatenate(xs)), labels, classes, 1.0 / 255.0, []


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of every array in an ``.npz``, read from the headers without decoding."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        raise InputError("a .npy file, not an .npz archive", expected="an .npz archive of named arrays "
                         "(np.savez(path, x=..., y=...))", found=f"{path.name}: a single array saved with np.save")
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
            headers[info.filename.removesuffix(".npy")] = (tuple(shape), dtype)
    return headers


def _load_npz(path: Path, split: str):
    path = confined(path)
    try:
        headers = _npz_headers(path)
    except FileNotFoundError:
        raise InputError("npz file does not exist", expected="an existing .npz file", found=str(path)) from None
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise InputError("not a readable npz archive", expected="a NumPy .npz file (no pickled objects)",
                         found=f"{path.name}: {exc}") from None
    xk, yk = (f"x_{split}", f"y_{split}") if f"x_{split}" in headers else ("x", "y")
    missing = [k for k in (xk, yk) if k not in headers]
    if missing:
        raise InputError("npz archive lacks arrays", expected="arrays 'x' and 'y' (or x_train/y_train/x_test/y_test)",
                         found=f"arrays {sorted(headers)}; missing {missing}")
    wanted = [k for k in (xk, yk, "classes") if k in headers]
    total = 0
    for key in wanted:
        shape, dtype = headers[key]
        total = check_size(repr(key), math.prod(shape) * dtype.itemsize,
                            f"{'×'.join(map(str, shape)) or 'a scalar'} {dtype}", total)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in wanted}
    except (ValueError, OSError, EOFError) as exc:
        raise InputError("not a readable npz archive", expected="a NumPy .npz file (no pickled objects)",
                         found=f"{path.name}: {exc}") from None
    x, y = arrays[xk], arrays[yk]
    notes = []
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            first = np.argwhere(bad)[0].tolist()
            raise InputError("images contain NaN or Inf", expected="finite pixel values",
                             found=f"{int(bad.sum())} non-finite values in {xk!r}, first at index {first}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise InputError("x has the wrong rank", expected="(N, H, W) or (N, C, H, W)", found=f"shape {x.shape}")
    if x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        notes.append(f"{xk} stored channels-last {x.shape} (N, H, W, C); transposed to (N, C, H, W)")
        x = x.transpose(0, 3, 1, 2)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise InputError("y must hold one label per image", expected=f"shape ({x.shape[0]},)",
                         found=f"shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer) and not (
            np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y))):
        raise InputError("labels must be integers", expected="integer class indices", found=f"dtype {y.dtype}")
    classes = _npz_classes(arrays["classes"]) if "classes" in arrays else None
    if classes is None:  # one class per label value; more values than images means empty classes
        top = int(y.max()) if y.size else -1
        _check_labels(y, top + 1 if top < max(len(y), 2) else max(len(y), 2))
        classes = [str(c) for c in range(top + 1)]
    _check_labels(y, len(classes))  # on the stored values: a uint64 near 2**63 is not cast first
    images, scale = _npz_pixels(x, xk, notes)
    return images, torch.from_numpy(y.astype(np.int64)), classes, scale, notes


def _npz_classes(array: np.ndarray) -> list[str]:
    if array.ndim != 1:
        found = f"a single string {array.item()!r}" if array.ndim == 0 else f"shape {array.shape}"
        raise InputError("classes must be a 1-D array of names", expected="np.array(['cat', 'dog', ...]), "
                         "one name per class", found=found)
    classes = [str(c) for c in array.tolist()]
    if len(set(classes)) != len(classes):
        twice = sorted({c for c in classes if classes.count(c) > 1})
        raise InputError("class names repeat", expected="one distinct name per class", found=f"{twice} more than once")
    return classes


def _npz_pixels(x: np.ndarray, key: str, notes: list[str]) -> tuple[torch.Tensor, float]:
    """Stored pixels → (images, scale): uint8 /255, uint16 /65535, floats in [0, 1] as they are.

    Values that fit another range are scaled (and the note says so) or refused, never used
    unscaled: floats in [0, 255] are 8-bit values (/255); signed or wide integers in
    0..255 are 8-bit; anything else (negative values, already normalised data) is refused.

    uint16 pixels that all lie in 0..255 are 8-bit values stored in a wider type (a common
    result of ``astype`` or of a 16-bit PNG written from 8-bit data), so they are divided by
    255 and a note says so. The alternative, refusing, would reject data whose reading is
    all but certain: genuine 16-bit images using under 0.4% of their range would be
    black to the eye, and divided by 65535 they give near-black inputs and chance accuracy.
    The note leaves the choice visible.
    """
    if x.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(x)), 1.0 / 255.0
    if x.dtype == np.bool_:
        notes.append(f"{key} is boolean; used as 0/1 pixels")
        return torch.from_numpy(np.ascontiguousarray(x.astype(np.uint8))), 1.0
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise InputError("x must be numeric", expected="uint8, uint16 or float pixels", found=f"dtype {x.dtype}")
    lo, hi = (x.min().item(), x.max().item()) if x.size else (0, 0)
    if x.dtype == np.uint16 and hi > 255:
        return torch.from_numpy(np.ascontiguousarray(x.astype(np.float32))), 1.0 / 65535.0
    if np.issubdtype(x.dtype, np.floating) and 0 <= lo and hi <= 1:
        return torch.from_numpy(np.ascontiguousarray(x.astype(np.float32))), 1.0
    if 0 <= lo and hi <= 255:
        notes.append(f"{key} holds {x.dtype} values in [{lo:g}, {hi:g}]: read as 8-bit pixels (divided by 255)")
        if np.issubdtype(x.dtype, np.integer):
            return torch.from_numpy(np.ascontiguousarray(x.astype(np.uint8))), 1.0 / 255.0
        return torch.from_numpy(np.ascontiguousarray(x.astype(np.float32))), 1.0 / 255.0
    raise InputError("pixel values out of range", expected="uint8 (0..255), uint16 (0..65535) or floats in [0, 1] "
                     "or [0, 255] (raw pixels; normalise with --mean/--std)",
                     found=f"{key} {x.dtype} with min {lo:g}, max {hi:g}")


def _check_labels(y: np.ndarray, n_classes: int) -> None:
    """Labels in ``[0, n_classes)``, compared as exact Python integers in the stored dtype."""
    if y.size and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise InputError("labels out of range", expected=f"integers in [0, {n_classes - 1}]",
                         found=f"min {int(y.min())}, max {int(y.max())} (dtype {y.dtype})")


def display_images(dataset, indices) -> np.ndarray:
    """Images of ``dataset`` at ``indices`` as displayed: float32 (N, H, W, C) in [0, 1]."""
    return dataset.display(indices)
