"""On-disk cache of computed maps and trained weights, keyed by content.

Keys are ``joblib.hash`` of a dict naming everything a result depends on: the weights'
sha256 digest, the dataset's identity (name, split, content digest, preprocessing), the
layers and the threshold. Two different models therefore never share an entry.

Entries are written as ``.npz`` (maps, read back with ``allow_pickle=False``) or
``.safetensors`` (weights) — never pickles, so a file planted in the cache directory
cannot run code — to a temporary name and renamed into place, with a sidecar holding the
payload's sha256. An entry whose payload does not match its sidecar (half-written,
truncated, corrupted) is deleted and treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import joblib
import numpy as np

__all__ = ["DiskCache", "default_cache_dir", "file_sha256"]

CACHE_ENV = "AOMSCOPE_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$AOMSCOPE_CACHE_DIR``, else ``~/.cache/aomscope``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "aomscope")


def file_sha256(path: Path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class DiskCache:
    """A directory of content-keyed entries.

    Parameters
    ----------
    root : path, optional
        Default :func:`default_cache_dir`. Created with mode 0o700.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    @staticmethod
    def key(**parts) -> str:
        """A stable hex key for keyword parts (anything joblib can hash)."""
        return joblib.hash(parts)

    def path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / f"{key}{suffix}"

    # --- raw files with integrity sidecars --------------------------------------------
    def lookup(self, kind: str, key: str, suffix: str) -> Path | None:
        """The entry's path if present and intact; a damaged entry is removed."""
        path = self.path(kind, key, suffix)
        side = path.with_name(path.name + ".sha256")
        if not path.is_file() or not side.is_file():
            return None
        try:
            ok = side.read_text().strip() == file_sha256(path)
        except OSError:
            ok = False
        if not ok:
            for p in (path, side):
                p.unlink(missing_ok=True)
            return None
        return path

    def commit(self, kind: str, key: str, suffix: str, write) -> Path:
        """Call ``write(tmp_path)`` then atomically move the file into place with its sidecar."""
        path = self.path(kind, key, suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=suffix + ".tmp")
        os.close(fd)
        try:
            write(Path(tmp))
            digest = file_sha256(Path(tmp))
            side_tmp = Path(tmp + ".sha256")
            side_tmp.write_text(digest)
            os.replace(tmp, path)
            os.replace(side_tmp, path.with_name(path.name + ".sha256"))
        finally:
            for p in (Path(tmp), Path(tmp + ".sha256")):
                p.unlink(missing_ok=True)
        return path

    # --- arrays ---------------------------------------------------------------------
    def load_arrays(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        path = self.lookup(kind, key, ".npz")
        if path is None:
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError):
            path.unlink(missing_ok=True)
            return None

    def save_arrays(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> Path:
        def write(tmp: Path):
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        return self.commit(kind, key, ".npz", write)

    @staticmethod
    def dumps(obj) -> np.ndarray:
        """JSON-encode ``obj`` into a 0-d unicode array (for metadata inside an npz)."""
        return np.array(json.dumps(obj))
