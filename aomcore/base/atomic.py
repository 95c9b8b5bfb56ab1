"""Atomic file writes: a temporary name in the same folder, fsync, rename.

A reader, a crash or a SIGKILL at any point sees either the old file or the new one,
never a truncated one. Used for every output AOMscope writes (workspaces, maps, weights,
edit logs, caches).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError

__all__ = ["atomic_path", "write_bytes", "write_json"]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was.

    Raises
    ------
    InputError
        When the disk is full or the folder is not writable (what was there stays).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise InputError(f"cannot write {path.name}", expected="a writable folder with free space",
                         found=f"{path.parent}: {exc.strerror}") from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise InputError(f"cannot write {path.name}", expected="a writable folder with free space",
                         found=f"{path.parent}: {exc.strerror or exc}") from None
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return write_bytes(path, (json.dumps(obj, indent=1, default=str) + "\n").encode())
