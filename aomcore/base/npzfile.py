"""The ``.npz`` files of projections (``embed.npz``, ``trails.npz``) and the library versions every result file records.

The ``embed.npz`` file (``python -m aomcore embed``; :func:`save_embedding_npz`) holds one
2-D projection:

==============================  ========  =======  ==========================================
key                             shape     dtype    meaning
==============================  ========  =======  ==========================================
``points``                      (N, 2)    float64  2-D positions
``labels``                      (N,)      int64    class (images, samples) / colour class (neurons)
``index``                       (N,)      int64    dataset index (images, samples) / kernel (neurons)
``classes``                     (C,)      str      class names
``meta``                        ()        str      JSON: view, layer, tap, model digest, dataset
                                                   identity, embedding options, versions, key
``neighborhood_hit``            ()        float64  per-image views (activations, input-map)
``neighborhood_hit_per_class``  (C,)      float64  per-image views
``predicted``                   (N,)      int64    activations: the model's prediction
``position``                    (N,)      int64    input-map: row · W + col in the layer's map
``perplexity``                  (N,)      float64  input-map: DeepEyes perplexity of the sample
``max_activation``              (N,)      float32  input-map: largest kernel activation
``class_means``                 (K, C)    float64  neurons: mean activation per class
``distances``                   (K, K)    float64  neurons: 1 − |Pearson r|
==============================  ========  =======  ==========================================

A ``trails.npz`` (:meth:`aomcore.rauber.trails.Trails.arrays` + ``meta``, written with
:func:`save_embedding_npz`) holds ``points`` (S, N, 2) float64, ``labels``, ``index`` (N,)
int64, ``iterations`` (S,) int64, ``predicted`` (S, N) int64 and ``neighborhood_hit`` (S,)
float64; the ``trails`` job and CLI (:mod:`aomcore.jobs.trails`) add ``snapshots`` (S,) int64 (the
iterations again, under the name the page and CLI use), ``class_neighborhood_hit`` and
``class_accuracy`` (C,) float64 (final snapshot; accuracy over the whole split).
"""

from __future__ import annotations

import io
import json
import platform
import zipfile
from pathlib import Path

import numpy as np

from .atomic import write_bytes
from .errors import InputError
from .files import read_regular_file
from .policy import current_policy

#: The library's version, recorded in every result file (``aomcore.__version__``).
AOMCORE_VERSION = "0.1.0"

__all__ = ["AOMCORE_VERSION", "embedding_npz_bytes", "library_versions", "load_embedding_npz", "read_result_npz",
           "save_embedding_npz"]


def library_versions() -> dict[str, str]:
    """Versions of the packages the maps depend on (read from the installed metadata: importing
    scikit-learn only for its version took 1.3 s of a 10 s maps command)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        sklearn = version("scikit-learn")
    except PackageNotFoundError:
        sklearn = "not installed"
    return {"aomcore": AOMCORE_VERSION, "torch": torch.__version__, "numpy": np.__version__,
            "scikit-learn": sklearn, "python": platform.python_version()}


def embedding_npz_bytes(arrays: dict[str, np.ndarray], meta: dict) -> bytes:
    """The bytes of an ``embed.npz`` / ``trails.npz`` (layout in the module docstring).

    The one writer of these files: :func:`save_embedding_npz` and the dashboard's download
    buttons both use it. Adds the library versions (openTSNE, umap-learn, ...) to ``meta``.
    """
    from importlib.metadata import PackageNotFoundError, version

    libs = {}
    for name in ("openTSNE", "umap-learn"):
        try:
            libs[name] = version(name)
        except PackageNotFoundError:
            libs[name] = "absent"
    full_meta = {"versions": library_versions() | libs} | meta
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays, meta=np.array(json.dumps(full_meta, default=str)))
    return buffer.getvalue()


def save_embedding_npz(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write an ``embed.npz`` / ``trails.npz`` atomically (:func:`embedding_npz_bytes`).

    Written with :func:`aomcore.base.atomic.write_bytes` (temporary file in the same folder,
    fsync, rename), so a reader sees the old file or the whole new one.
    """
    write_bytes(path, embedding_npz_bytes(arrays, meta))
    return Path(path)


def read_result_npz(path: str | Path, what: str, writer: str, required: tuple[str, ...] = ()
                    ) -> tuple[dict[str, np.ndarray], dict]:
    """Every array of a result ``.npz`` this library wrote (``maps.npz``, ``deepeyes.npz``,
    ``embed.npz``, ``trails.npz``) and its JSON ``meta``, read as untrusted input.

    The file must be a regular file (:func:`~aomcore.base.files.read_regular_file`: a folder,
    FIFO or device is refused without blocking); the arrays' declared sizes must fit in
    memory before any is decompressed; pickled objects are refused (``allow_pickle=False``).

    Parameters
    ----------
    what : str
        What the file is, for messages (``"maps file"``).
    writer : str
        What writes it (``"python -m aomcore maps --out"``), for messages.
    required : tuple of str
        Arrays that must be present besides ``meta``.

    Returns
    -------
    (arrays without ``meta``, meta dict)

    Raises
    ------
    InputError
        Naming the file and what was wrong: not an npz, damaged, pickled objects, no or bad
        ``meta``, a missing array, too large for memory.
    """
    path = Path(path)
    expected = f"a {what} written by {writer}"
    data = read_regular_file(path, what, expected)

    def bad(found: str) -> InputError:
        return InputError(f"cannot read the {what} {path.name}", expected=expected, found=found)

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            declared = sum(info.file_size for info in archive.infolist())
        current_policy().check_allocation(declared, f"the {what} {path.name} ({declared:,} bytes unpacked)",
                                          f"a {what} that fits in memory")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if "meta" not in npz.files:
                raise bad(f"no 'meta' (arrays: {', '.join(npz.files[:8]) or 'none'})")
            missing = [k for k in required if k not in npz.files]
            if missing:
                raise bad(f"missing arrays {missing}")
            arrays = {k: npz[k] for k in npz.files if k != "meta"}
            meta = json.loads(str(npz["meta"]))
    except InputError:
        raise
    except zipfile.BadZipFile as exc:
        raise bad(f"not an npz archive ({exc})") from None
    except (ValueError, OSError, EOFError, zipfile.LargeZipFile, NotImplementedError, RecursionError) as exc:
        text = "pickled objects (refused)" if "pickle" in str(exc) else f"{type(exc).__name__}: {exc}"
        raise bad(text[:300]) from None
    if not isinstance(meta, dict):
        raise bad(f"meta is a JSON {type(meta).__name__}, not an object")
    return arrays, meta


def load_embedding_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read an ``embed.npz`` / ``trails.npz`` back: (arrays without ``meta``, meta dict).

    Raises
    ------
    InputError
        Naming the file, as :func:`read_result_npz`.
    """
    return read_result_npz(path, "projection file", "python -m aomcore embed or trails", required=("points",))
