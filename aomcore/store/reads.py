"""Workspace files read once per change, not once per page rerun.

Every rerun of a dashboard page reads ``workspace.json``, each ``version.json``, ``run.json``
and job record, and a run's ``metrics.jsonl``, and checks each against its schema. Most of
them have not changed since the last rerun. Here a file's parsed, checked content is kept for
as long as the file is the same file, and handed out again without a read:

* **Records** (:func:`read_record`): keyed by the file's identity — device, inode, size,
  ``mtime_ns`` and ``ctime_ns``. Every record AOMscope writes is written atomically (a new file
  renamed over the old one: :mod:`aomcore.base.atomic`), so each write gives a new inode and a
  new ``ctime``; a write in place by another tool changes ``ctime`` too (which no tool can set).
* **Appended lines** (:func:`read_appended_lines`): ``metrics.jsonl`` grows by appends while a
  run trains; only the bytes after the last complete line read before are parsed.
* **Freshly written files are read every time** (git's "racy clean" rule): a file whose
  ``ctime`` is less than :data:`SETTLE_SECONDS` old is not kept, because a file system's clock
  ticks more coarsely than nanoseconds and a second write in the same tick could keep every
  field of the key.

What is kept is a private copy: callers get a fresh copy of a record (kept serialised with
:mod:`marshal`, in memory only: 30 µs to copy an 18 kB ``workspace.json`` where reading, parsing
and checking it takes 200 µs, and ``copy.deepcopy`` 370 µs), and the parsed rows of a
lines file as a new list of the kept (read-only) dicts. Failed reads are never kept: a bad file
is read, and reported, again on the next call. The memory is bounded
(:data:`MAX_RECORDS`, :data:`MAX_RECORD_BYTES`, :data:`MAX_LINE_FILES`); one lock guards it for the
server's threads.
"""

from __future__ import annotations

import marshal
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["MAX_LINE_FILES", "MAX_RECORDS", "MAX_RECORD_BYTES", "SETTLE_SECONDS", "clear", "read_appended_lines",
           "read_record"]

T = TypeVar("T")

#: A file changed less than this many seconds ago is read afresh on every call (see the module docstring).
SETTLE_SECONDS = 2.0
#: Records kept, least recently used dropped first (a record is a few kB; ``workspace.json`` grows
#: with its results index, 18 kB for a workspace walked through the whole loop) ...
MAX_RECORDS = 4096
#: ... and at most this many bytes of them.
MAX_RECORD_BYTES = 64 * 2**20
#: Lines files (``metrics.jsonl``) kept, least recently used dropped first.
MAX_LINE_FILES = 64

_lock = threading.Lock()
_records: OrderedDict[str, tuple[tuple, bytes]] = OrderedDict()
_record_bytes = 0
_lines: OrderedDict[str, dict] = OrderedDict()


def _identity(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _settled(st: os.stat_result) -> bool:
    return time.time() - st.st_ctime_ns / 1e9 >= SETTLE_SECONDS


def read_record(path: str | os.PathLike, load: Callable[[Path], T]) -> T:
    """``load(path)``, or a copy of what it returned for this very file before.

    Parameters
    ----------
    path : path
        The file.
    load : callable(Path) -> object
        Reads, parses and checks the file, raising on a bad one (nothing is kept then). Its
        result must be JSON data (dicts, lists, strings, numbers, booleans, None).

    Returns
    -------
    A copy of ``load``'s result of its own: the caller may change it.

    Raises
    ------
    Whatever ``load`` raises; ``FileNotFoundError`` (an ``OSError``) for a missing file.
    """
    path = Path(path)
    key = str(path)
    before = os.stat(path)
    with _lock:
        kept = _records.get(key)
        if kept is not None and kept[0] == _identity(before):
            _records.move_to_end(key)
            return marshal.loads(kept[1])
    value = load(path)
    after = os.stat(path)
    if _identity(after) == _identity(before) and _settled(after):  # not replaced while it was read
        _keep(key, _identity(after), marshal.dumps(value))
    return value


def _keep(key: str, identity: tuple, data: bytes) -> None:
    global _record_bytes
    with _lock:
        old = _records.pop(key, None)
        _record_bytes += len(data) - (len(old[1]) if old else 0)
        _records[key] = (identity, data)
        while _records and (len(_records) > MAX_RECORDS or _record_bytes > MAX_RECORD_BYTES):
            _record_bytes -= len(_records.popitem(last=False)[1][1])


def read_appended_lines(path: str | os.PathLike, parse: Callable[[bytes], object | None]) -> list:
    """The parsed complete lines of a file that only grows by appends (e.g. ``metrics.jsonl``).

    Lines read before are not parsed again: while the file is the same file (device and
    inode) and still holds the last line read at the same place, only the bytes after it are
    read. A file replaced, truncated or rewritten is read whole. A last line without its
    newline (a write in progress, or torn by a kill) is left for the next call.

    Parameters
    ----------
    path : path
    parse : callable(bytes) -> object or None
        One line without its newline; None leaves the line out (e.g. undecodable).

    Returns
    -------
    list : a new list of the parsed lines, oldest first. Its items are shared with later
    calls: read them, do not change them.

    Raises
    ------
    OSError
        The file cannot be opened or read (``FileNotFoundError`` when missing).
    """
    path = Path(path)
    key = str(path)
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        with _lock:
            kept = _lines.get(key)
            kept = dict(kept) if kept is not None else None
        start, rows = 0, []
        if kept is not None and kept["file"] == (st.st_dev, st.st_ino) and st.st_size >= kept["offset"]:
            tail = kept["tail"]
            f.seek(kept["offset"] - len(tail))
            if f.read(len(tail)) == tail:
                start, rows = kept["offset"], list(kept["rows"])
        f.seek(start)
        data = f.read(max(0, st.st_size - start))
    end = data.rfind(b"\n") + 1  # complete lines only
    for line in data[:end].splitlines():
        if line.strip() and (row := parse(line)) is not None:
            rows.append(row)
    offset = start + end
    if offset:
        last_start = data.rfind(b"\n", 0, end - 1) + 1 if end else None
        tail = data[last_start:end] if end else kept["tail"]
        with _lock:
            _lines[key] = {"file": (st.st_dev, st.st_ino), "offset": offset, "tail": tail, "rows": tuple(rows)}
            _lines.move_to_end(key)
            while len(_lines) > MAX_LINE_FILES:
                _lines.popitem(last=False)
    return rows


def clear() -> None:
    """Forget everything kept (tests; a process that wants fresh reads)."""
    global _record_bytes
    with _lock:
        _records.clear()
        _lines.clear()
        _record_bytes = 0
