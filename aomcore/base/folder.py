"""Image folders streamed from disk: a file index scanned once, images decoded per batch in DataLoader workers.

``imagefolder:PATH`` holds one sub-folder per class (torchvision's ImageFolder layout); if
``PATH/train`` and ``PATH/test`` exist they are the two splits (with the same class
folders), otherwise ``PATH`` serves both. Nothing is held in memory but the index (one
path, label, size and modification time per file) and a batch per worker, so memory does
not grow with the number of images.

Loading a folder

1. scans it (:func:`scan_folder`): hidden entries (``.git``, ``._x.png``) and ``__MACOSX``
   are skipped, every folder and file passes :func:`~aomcore.base.splits.confined`, and a
   folder or image reached twice through symlinks is refused;
2. surveys every file's header (size and mode, no pixels; 16-bit files are decoded once for
   their range), so an unreadable header, an image over the size limits, a crop larger
   than an image or sizes the preprocessing leaves unequal stop the load before any pass,
   naming the file. The survey is kept per index key for the life of the process.

With ``Preprocessing(skip_unreadable=True)`` (``--skip-unreadable``) every image is decoded
once before the survey and the files that do not decode (zero-byte, truncated, not an
image) are left out of the index, named in the notes; the index key, and so the dataset's
identity, covers what was left out. A file too large to decode is still refused.

Images are read as a person sees them: if any image has colour (RGB, palette, CMYK,
RGBA) all are read as RGB and grayscale ones repeated; transparency is composited on
white; 16-bit images are divided by 65535 (or, when no 16-bit value exceeds 255, read as
8-bit values); each of these is a note. An image whose body is broken (truncated JPEG) or
that changed since the scan stops the pass with its path.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import limits, threads
from . import transforms as _transforms
from .errors import InputError
from .policy import current_policy
from .splits import LabelledImages, Preprocessing, check_size, confined, stratified_subset

__all__ = ["WORKERS_ENV", "FolderDataset", "FolderIndex", "default_workers", "load_folder", "scan_folder"]

WORKERS_ENV = "AOMSCOPE_WORKERS"

_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "La", "RGBa")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_SURVEYS: dict[tuple, _Survey] = {}


def default_workers() -> int:
    """DataLoader workers that decode images: ``$AOMSCOPE_WORKERS`` (CLI ``--workers``), else ``min(4, threads)``
    with ``threads`` this process's share of the cores (:func:`aomcore.base.threads.current`)."""
    value = os.environ.get(WORKERS_ENV)
    if value:
        number = int(value) if value.strip().isdigit() else value
        return limits.check_int(WORKERS_ENV, number, limits.WORKERS_MIN, limits.WORKERS_MAX)
    return min(4, threads.current())


@dataclass(frozen=True, eq=False)
class FolderIndex:
    """The files of one split, in class then path order.

    Attributes
    ----------
    root : Path
        The split's folder.
    classes : list of str
        Class folder names, sorted; label i is ``classes[i]``.
    files : tuple of str
        Each image's resolved path.
    names : tuple of str
        Each image's path relative to ``root`` (symlinks not followed), for messages and the key.
    labels, sizes, mtimes : ndarray, (N,) int64
        Class index, size in bytes and modification time in ns of each file.
    key : str
        sha256 (hex) of the classes and every file's relative path, label, size and mtime.
        It trusts the file system's size and mtime: a file rewritten with the same size
        within the mtime's resolution, or with its mtime set back, keeps the key.
    """

    root: Path
    classes: list[str]
    files: tuple[str, ...]
    names: tuple[str, ...]
    labels: np.ndarray
    sizes: np.ndarray
    mtimes: np.ndarray
    key: str


def _hidden(name: str) -> bool:
    """Hidden entries (``.git``, ``.ipynb_checkpoints``, AppleDouble ``._x.png``) and ``__MACOSX``."""
    return name.startswith(".") or name == "__MACOSX"


def _class_folders(path: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(path) if not _hidden(e.name) and e.is_dir())


def scan_folder(path: str | os.PathLike) -> FolderIndex:
    """Index a class-per-folder tree (no split folders): every file checked by ``confined``.

    Raises
    ------
    InputError
        No class folders, a class folder without images, a folder or image reached twice
        (a symlink loop, two links to one folder), a path outside the allowed data folders.
    """
    from torchvision.datasets.folder import IMG_EXTENSIONS

    path = Path(path)
    classes = _class_folders(path)
    if not classes:
        raise InputError("no images found", expected="one sub-folder of images per class",
                         found=f"no class folders in {path}")
    files, names, labels, sizes, mtimes = [], [], [], [], []
    seen: dict[Path, object] = {}
    policy = current_policy()
    h = hashlib.sha256("\x00".join(classes).encode())
    for label, name in enumerate(classes):
        count = len(files)
        for folder, subfolders, _ in os.walk(path / name, followlinks=True):
            real_folder = confined(folder, policy).resolve()
            if real_folder in seen:
                raise InputError("a folder is reached twice (symlink loop?)", expected="each folder reached once",
                                 found=f"{folder} and {seen[real_folder]} are both {real_folder}")
            seen[real_folder] = folder
            subfolders[:] = sorted(d for d in subfolders if not _hidden(d))
            with os.scandir(folder) as it:
                entries = sorted((e for e in it if not _hidden(e.name) and e.name.lower().endswith(IMG_EXTENSIONS)
                                  and not e.is_dir()), key=lambda e: e.name)
            for entry in entries:
                shown = Path(folder) / entry.name
                if entry.is_symlink():  # only a link can lead outside the folders already checked
                    real = confined(shown, policy).resolve()
                    st = os.stat(real)
                else:
                    real, st = real_folder / entry.name, entry.stat()
                if real in seen:
                    raise InputError("an image is reached twice (a symlink)", expected="each image once",
                                     found=f"{shown} and {seen[real]} are both {real}")
                seen[real] = shown
                relative = os.path.relpath(shown, path)
                files.append(str(real))
                names.append(relative)
                labels.append(label)
                sizes.append(st.st_size)
                mtimes.append(st.st_mtime_ns)
                h.update(f"{relative}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        if len(files) == count:
            raise InputError("no images found", expected="one sub-folder of images per class",
                             found=f"class folder {name!r} holds no {'/'.join(IMG_EXTENSIONS)} files")
    return FolderIndex(root=path, classes=classes, files=tuple(files), names=tuple(names),
                       labels=np.asarray(labels, np.int64), sizes=np.asarray(sizes, np.int64),
                       mtimes=np.asarray(mtimes, np.int64), key=h.hexdigest())


@dataclass(frozen=True)
class _Survey:
    """What the headers say: stored sizes (with a file of each), modes, depth, notes."""

    shapes: dict[tuple[int, int], int]  # (H, W) -> index of the first file of that size
    channels: int  # 1 or 3: how every image is read
    sixteen_bit: str | None  # None, "8-bit values" or "16-bit"
    notes: tuple[str, ...]


def _survey(index: FolderIndex) -> _Survey:
    """Read every header once (size, mode), and the range of 16-bit files; cached by the index key."""
    from PIL import Image

    key = (index.key, os.fspath(index.root), current_policy().max_data_gb, Image.MAX_IMAGE_PIXELS)  # what it checked
    if key in _SURVEYS:
        return _SURVEYS[key]

    shapes: dict[tuple[int, int], int] = {}
    modes: Counter = Counter()
    first_mode: dict[str, int] = {}
    transparent = 0
    for part in _map_chunks(_survey_chunk, index):  # in index order: the first bad file is the one named
        if part["error"] is not None:
            raise InputError(*part["error"])
        for shape, i in part["shapes"].items():
            shapes.setdefault(shape, i)
        for mode, i in part["first_mode"].items():
            first_mode.setdefault(mode, i)
        modes.update(part["modes"])
        transparent += part["transparent"]
    notes = []
    colour = sum(n for m, n in modes.items() if m in _COLOUR_MODES)
    sixteen = sum(n for m, n in modes.items() if m in _SIXTEEN_BIT)
    if sixteen and sixteen < len(index.files):
        eight = next(i for m, i in first_mode.items() if m not in _SIXTEEN_BIT)
        wide = next(i for m, i in first_mode.items() if m in _SIXTEEN_BIT)
        raise InputError("8-bit and 16-bit images mixed", expected="one bit depth for all images",
                         found=f"{index.names[eight]} is 8-bit, {index.names[wide]} is 16-bit")
    if colour and colour < len(index.files):
        notes.append(f"grayscale and RGB images mixed: {len(index.files) - colour} grayscale images repeated to "
                     "3 channels")
    if modes.get("CMYK"):
        notes.append(f"{modes['CMYK']} CMYK images converted to RGB")
    if transparent:
        notes.append(f"{transparent} images with transparency composited on white")
    sixteen_bit = None
    if sixteen:
        lo, hi = _sixteen_bit_range(index)
        if hi <= 255:
            sixteen_bit = "8-bit values"
            notes.append(f"16-bit images with values in [{lo}, {hi}]: read as 8-bit pixels (divided by 255, not 65535)")
        else:
            sixteen_bit = "16-bit"
            notes.append("16-bit images: pixels divided by 65535")
    survey = _Survey(shapes=shapes, channels=3 if colour else 1, sixteen_bit=sixteen_bit, notes=tuple(notes))
    if len(_SURVEYS) >= 8:
        _SURVEYS.pop(next(iter(_SURVEYS)))
    _SURVEYS[key] = survey
    return survey


_CHUNK = 2000  # files per survey or decode task


def _map_chunks(fn, index: FolderIndex) -> list:
    """``fn((files, names, root, start))`` over the index in chunks of :data:`_CHUNK` files, in
    :func:`default_workers` forked processes when there are several chunks; results in index order."""
    chunks = [(index.files[i:i + _CHUNK], index.names[i:i + _CHUNK], os.fspath(index.root), i)
              for i in range(0, len(index.files), _CHUNK)]
    workers = min(default_workers(), len(chunks))
    if workers <= 1:
        return [fn(chunk) for chunk in chunks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(fn, chunks))
_READABLE = "an image PIL can read (or skip unreadable images: --skip-unreadable, or the dashboard's box)"


def _survey_chunk(chunk) -> dict:
    """Headers of ``files[start:start + len(files)]``: sizes, modes, transparency, or the first error's parts."""
    from PIL import Image, UnidentifiedImageError

    files, names, root, start = chunk
    shapes: dict[tuple[int, int], int] = {}
    modes: Counter = Counter()
    first_mode: dict[str, int] = {}
    transparent = 0
    result = {"shapes": shapes, "modes": modes, "first_mode": first_mode, "error": None}
    for j, file in enumerate(files):
        i = start + j
        try:
            with Image.open(file) as im:
                (w, h), mode = im.size, im.mode
                depth = 4 if mode in ("I", "F") else 2 if mode.startswith("I;16") else 1
                check_size(names[j], w * h * len(im.getbands()) * depth, f"{w}×{h} {mode}")
                transparent += mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info)
        except InputError as exc:
            result["error"] = (exc.message, exc.expected, exc.found)
        except Image.DecompressionBombError as exc:
            result["error"] = ("image too large to decode", "an image under PIL's decompression-bomb limit",
                               f"{names[j]}: {exc}")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            result["error"] = ("unreadable image file", _READABLE, f"{Path(root) / names[j]}: {exc}")
        else:
            if mode == "F":
                result["error"] = ("floating-point image", "8-bit or 16-bit pixels (PNG, JPEG, integer TIFF)",
                                   f"{names[j]}: mode F (32-bit float)")
        if result["error"] is not None:
            break
        shapes.setdefault((h, w), i)
        modes[mode] += 1
        first_mode.setdefault(mode, i)
    result["transparent"] = transparent
    return result


def _unreadable(index: FolderIndex) -> list[tuple[int, str]]:
    """``(position, reason)`` of every file of ``index`` that does not decode, in index order.

    Every image is decoded once (in :func:`default_workers` processes); kept per index key in
    this process. A file too large to decode is not "unreadable": the survey refuses it.
    """
    key = (index.key, os.fspath(index.root), current_policy().max_data_gb)
    if key in _UNREADABLE:
        return _UNREADABLE[key]
    bad = [b for part in _map_chunks(_decode_chunk, index) for b in part]
    if len(_UNREADABLE) >= 8:
        _UNREADABLE.pop(next(iter(_UNREADABLE)))
    _UNREADABLE[key] = bad
    return bad


_UNREADABLE: dict[tuple, list[tuple[int, str]]] = {}


def _decode_chunk(chunk) -> list[tuple[int, str]]:
    """The files of a chunk that PIL cannot open or fully decode, as ``(position, reason)``."""
    from PIL import Image, UnidentifiedImageError

    files, names, _, start = chunk
    bad = []
    for j, file in enumerate(files):
        try:
            with Image.open(file) as im:
                w, h = im.size
                check_size(names[j], w * h * len(im.getbands()), f"{w}×{h} {im.mode}")
                im.load()
        except (InputError, Image.DecompressionBombError):
            continue  # too large, not unreadable: the survey names it
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            bad.append((start + j, str(exc) or type(exc).__name__))
    return bad


def _sixteen_bit_range(index: FolderIndex) -> tuple[int, int]:
    from PIL import Image

    lo, hi = 65535, 0
    for i, file in enumerate(index.files):
        with Image.open(file) as im:
            a = np.asarray(im)
        if a.size and (int(a.min()) < 0 or int(a.max()) > 65535):
            raise InputError("32-bit integer image", expected="8-bit or 16-bit pixels",
                             found=f"{index.names[i]}: values {int(a.min())}..{int(a.max())}")
        if a.size:
            lo, hi = min(lo, int(a.min())), max(hi, int(a.max()))
    return lo, hi


def _subset(index: FolderIndex, keep: np.ndarray) -> FolderIndex:
    """The index restricted to ``keep`` (ascending positions); its key covers the choice."""
    key = hashlib.sha256(f"{index.key}\n".encode() + keep.astype(np.int64).tobytes()).hexdigest()
    return FolderIndex(root=index.root, classes=index.classes, files=tuple(index.files[i] for i in keep),
                       names=tuple(index.names[i] for i in keep), labels=index.labels[keep],
                       sizes=index.sizes[keep], mtimes=index.mtimes[keep], key=key)


class _Decoder:
    """One file → its image after the transform: (C, H, W) uint8, or float32 in [0, 1] (16-bit, --resize).

    Picklable, so DataLoader workers get their own copy; it checks that the file is the one
    indexed (size and mtime) before decoding it.
    """

    def __init__(self, index: FolderIndex, survey: _Survey, preprocessing: Preprocessing):
        self.files, self.names, self.root = index.files, index.names, index.root
        self.sizes, self.mtimes = index.sizes, index.mtimes
        self.channels, self.sixteen_bit = survey.channels, survey.sixteen_bit
        self.steps, self.resize = preprocessing.steps, preprocessing.resize
        self._apply = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_apply"] = None  # rebuilt in each worker
        return state

    def __call__(self, i: int) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        file = self.files[i]
        try:
            st = os.stat(file)
            if st.st_size != self.sizes[i] or st.st_mtime_ns != self.mtimes[i]:
                raise InputError("an image changed since the folder was indexed", expected="the files as they were "
                                 "when the dataset was loaded (reload the dataset)",
                                 found=f"{self.root / self.names[i]}: {self.sizes[i]} → {st.st_size} bytes")
            with Image.open(file) as im:
                im.load()
                a = self._pixels(im)
        except FileNotFoundError:
            raise InputError("an image was removed since the folder was indexed", expected="the files as they were "
                             "when the dataset was loaded (reload the dataset)",
                             found=f"{self.root / self.names[i]}: no such file") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise InputError("unreadable image file", expected=_READABLE,
                             found=f"{self.root / self.names[i]}: {exc}") from None
        x = torch.from_numpy(a)
        x = x.unsqueeze(0) if x.ndim == 2 else x.permute(2, 0, 1)  # (C, H, W)
        if self.steps:
            if self._apply is None:
                self._apply = _transforms.build(self.steps)
            x = self._apply(x)
        if self.resize and x.shape[-2:] != (self.resize, self.resize):
            x = x.float().div(255) if x.dtype == torch.uint8 else x
            x = F.interpolate(x[None], size=(self.resize, self.resize), mode="bilinear", antialias=True,
                              align_corners=False)[0]
        return x.contiguous()

    def _pixels(self, im) -> np.ndarray:
        """(H, W) or (H, W, 3): uint8, or float32 in [0, 1] for true 16-bit images."""
        from PIL import Image

        if im.mode in _SIXTEEN_BIT:
            a = np.array(im)
            if self.sixteen_bit == "8-bit values":
                return a.clip(0, 255).astype(np.uint8)
            return (a.astype(np.float32) / np.float32(65535)).astype(np.float32)
        if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
            white = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(white, im.convert("RGBA"))
        return np.array(im.convert("RGB" if self.channels == 3 else "L"))  # a writable copy, as pil_to_tensor makes


class _Reader(torch.utils.data.Dataset):
    """What a DataLoader worker runs: ``(index, image or None, error or None)`` per file."""

    def __init__(self, decoder: _Decoder):
        self.decoder = decoder

    def __len__(self) -> int:
        return len(self.decoder.files)

    def __getitem__(self, i: int):
        try:
            return i, self.decoder(i), None
        except InputError as exc:  # as parts: an exception pickled back from a worker loses its fields
            return i, None, (exc.message, exc.expected, exc.found)


def _collate(items):
    """Stack a batch in the worker; errors travel back as values, to be raised by the reader."""
    errors = [exc for _, _, exc in items if exc is not None]
    if errors:
        return None, errors[0]
    images = [x for _, x, _ in items]
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        return None, ("images differ in size after preprocessing", "one size per batch",
                      ", ".join(str(s) for s in shapes))
    return torch.stack(images), None


class FolderDataset(LabelledImages):
    """A labelled image split streamed from a folder (see the module docstring).

    Attributes
    ----------
    index : FolderIndex
    labels : torch.Tensor
        (N,) int64 class indices, in index order.
    workers : int
        DataLoader workers per pass (0 = decode in this process).
    scale : float
        1/255: the stored 8-bit range (16-bit images arrive already in [0, 1]).
    """

    def __init__(self, index: FolderIndex, name: str, split: str, preprocessing: Preprocessing | None = None,
                 workers: int | None = None):
        self.preprocessing = preprocessing or Preprocessing()
        notes = []
        if self.preprocessing.per_class:  # only the sample is surveyed and read
            full = len(index.files)
            index = _subset(index, stratified_subset(index.labels, self.preprocessing.per_class, len(index.classes)))
            notes.append(f"a stratified sample of {len(index.files):,} of {full:,} images (at most "
                         f"{self.preprocessing.per_class} per class)")
        if self.preprocessing.skip_unreadable and (bad := _unreadable(index)):
            if len(bad) == len(index.files):
                raise InputError("no readable image", expected="images PIL can decode",
                                 found=f"all {len(bad):,} files unreadable, e.g. {index.names[bad[0][0]]}: {bad[0][1]}")
            named = ", ".join(index.names[i] for i, _ in bad[:5]) + (f" and {len(bad) - 5:,} more" if len(bad) > 5
                                                                     else "")
            notes.append(f"{len(bad):,} unreadable image(s) left out (skip unreadable): {named}")
            index = _subset(index, np.setdiff1d(np.arange(len(index.files)), [i for i, _ in bad]))
        self.index = index
        self.labels = torch.from_numpy(index.labels)
        self.classes = list(index.classes)
        self.name, self.split = name, split
        self.workers = default_workers() if workers is None else limits.check_int(
            "workers", workers, limits.WORKERS_MIN, limits.WORKERS_MAX)
        survey = _survey(index)
        self._shape = self._common_shape(survey)
        notes = list(survey.notes) + notes
        if len(survey.shapes) > 1:
            (h0, w0), (h1, w1) = min(survey.shapes), max(survey.shapes)
            made = f"{self.preprocessing.transform or f'--resize {self.preprocessing.resize}'}"
            notes.append(f"images of {len(survey.shapes)} sizes ({h0}×{w0} to {h1}×{w1}): {made} makes them "
                         f"{'×'.join(map(str, self._shape))}")
        self.notes = tuple(notes)
        self._decoder = _Decoder(index, survey, self.preprocessing)
        self._check_preprocessing(survey.channels)

    def _common_shape(self, survey: _Survey) -> tuple[int, int, int]:
        """The model input shape every stored size is brought to; refuses sizes left unequal."""
        outputs: dict[tuple[int, int, int], int] = {}
        for (h, w), i in survey.shapes.items():
            try:
                outputs.setdefault(self.preprocessing.output_shape((survey.channels, h, w)), i)
            except InputError as exc:
                raise InputError(exc.message, expected=exc.expected,
                                 found=f"{exc.found} for {self.index.names[i]} ({h}×{w})") from None
        if len(outputs) > 1:
            examples = ", ".join(f"{self.index.names[i]} → {'×'.join(map(str, s))}"
                                 for s, i in list(outputs.items())[:3])
            raise InputError("images differ in size", expected="one size after preprocessing: add a transform such as "
                             "--transform \"Resize(40), CenterCrop(32)\", or --resize N",
                             found=f"{len(outputs)} sizes: {examples}")
        return next(iter(outputs))

    # --- facts ------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def digest(self) -> str:
        """The index key: classes, relative paths, labels, sizes and mtimes (see :class:`FolderIndex`)."""
        return self.index.key

    # --- images -----------------------------------------------------------------------
    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded batch (B, C, H, W), uint8 or float32 in [0, 1] → model input on x's device."""
        x = x.float().div(255) if x.dtype == torch.uint8 else x
        return self._after_unit(x, resize=False)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self._finish(self._decoder(int(index))[None])[0], int(self.labels[index])

    def batches(self, batch_size: int = 256, device: str | torch.device = "cpu",
                indices: torch.Tensor | None = None):
        """Yield ``(x, y)``: x float32 (B, C, H, W) and y int64 (B,), on ``device``.

        Images are decoded and transformed in :attr:`workers` DataLoader processes, batches
        pinned and moved when ``device`` is CUDA; ``indices`` (int64, (M,)) restricts and
        orders the images.

        Raises
        ------
        InputError
            An image that cannot be decoded, or changed or vanished since the index was
            made, with its path; the pass stops there.
        """
        device = torch.device(device)
        order = torch.arange(len(self)) if indices is None else torch.as_tensor(indices, dtype=torch.int64)
        self._check_batch(batch_size, int(order.numel()))
        pin = device.type == "cuda"
        loader = torch.utils.data.DataLoader(
            _Reader(self._decoder), batch_size=batch_size, sampler=order.tolist(), num_workers=self.workers,
            collate_fn=_collate, pin_memory=pin, prefetch_factor=4 if self.workers else None)
        for start, (x, error) in zip(range(0, int(order.numel()), batch_size), loader, strict=True):
            if error is not None:
                raise InputError(*error)
            y = self.labels[order[start : start + batch_size]]
            yield self._finish(x.to(device, non_blocking=pin)), y.to(device, non_blocking=pin)

    def display(self, indices) -> np.ndarray:
        """Images at ``indices`` after the transform (and resize), before normalisation: float32 (N, H, W, C)."""
        images = [self._decoder(int(i)) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        if not images:
            c, h, w = self._shape
            return np.zeros((0, h, w, self._decoder.channels), np.float32)
        x = torch.stack(images)
        x = x.float().div(255) if x.dtype == torch.uint8 else x
        return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def load_folder(path: Path, split: str, spec: str, preprocessing: Preprocessing,
                workers: int | None = None) -> FolderDataset:
    """One split of ``imagefolder:PATH`` (see the module docstring), indexed and surveyed, nothing decoded.

    Raises
    ------
    InputError
        A missing folder, train/ and test/ with different classes, and everything
        :func:`scan_folder` and the survey refuse.
    """
    path = confined(path)
    if not path.is_dir():
        raise InputError("image folder does not exist", expected="an existing folder", found=str(path))
    if (path / "train").is_dir() and (path / "test").is_dir():
        train, test = _class_folders(confined(path / "train")), _class_folders(confined(path / "test"))
        if train != test:
            raise InputError("train/ and test/ have different classes", expected="the same class folders in both",
                             found=f"train {train}, test {test}")
        path = confined(path / split)
    index = scan_folder(path)
    if len(index.classes) < 2:
        raise InputError("the dataset has a single class", expected="at least two classes (maps compare classes)",
                         found=f"classes {index.classes}")
    return FolderDataset(index, spec, split, preprocessing, workers)
