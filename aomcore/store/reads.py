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
  run trains; only the bytes after the last complete line read before are parsed (while the
  file's first 4 kB and that line are still where they were).
* **Freshly written files are read every time** (git's "racy clean" rule): a file whose
  ``ctime`` is less than :data:`SETTLE_SECONDS` old is not kept, because a file system's clock
  ticks more coarsely than nanoseconds and a second write in the same tick could keep every
  field of the key.

What is kept is a private copy: callers get a fresh copy of a record (kept serialised with
:mod:`marshal`, in memory only: 30 µs to copy an 18 kB ``workspace.json`` where reading, parsing
and checking it takes 200 µs, and ``copy.deepcopy`` 370 µs), and the parsed rows of a
lines file as a new list of the kept (read-only) dicts. Failed reads are never kept: a bad file
is read, and reported, again on the next call. The memory is bounded
(:data:`MAX_RECORDS`, :data:`MAX_RECORD_BYTES`, :data:`MAX_LINE_FILES`, :data:`MAX_LINE_BYTES`); one
lock guards it for the server's threads.
"""

from __future__ import annotations

import json
import marshal
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ..base.errors import InputError
from .schema import short

__all__ = ["MAX_LINE_BYTES", "MAX_LINE_FILES", "MAX_RECORDS", "MAX_RECORD_BYTES", "SETTLE_SECONDS", "clear",
           "parse_json", "read_appended_lines", "read_record"]

T = TypeVar("T")

#: A file changed less than this many seconds ago is read afresh on every call (see the module docstring).
SETTLE_SECONDS = 2.0
#: Records kept, least recently used dropped first (a record is a few kB; ``workspace.json`` grows
#: with its results index, 18 kB for a workspace walked through the whole loop) ...
MAX_RECORDS = 4096
#: ... and at most this many bytes of them.
MAX_RECORD_BYTES = 64 * 2**20
#: Lines files (``metrics.jsonl``) kept, least recently used dropped first ...
MAX_LINE_FILES = 64
#: ... and at most this many bytes of them (file bytes: a parsed ``metrics.jsonl`` row takes about 6
#: times its line, so 16 MiB of lines hold about 100 MB; a 10-epoch MNIST run's file is 0.6 MB).
MAX_LINE_BYTES = 16 * 2**20

_lock = threading.Lock()
_records: OrderedDict[str, tuple[tuple, bytes]] = OrderedDict()
_record_bytes = 0
_lines: OrderedDict[str, dict] = OrderedDict()
_line_bytes = 0


def _identity(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _settled(st: os.stat_result) -> bool:
    return time.time() - st.st_ctime_ns / 1e9 >= SETTLE_SECONDS


def parse_json(path: Path, name: str) -> object:
    """The JSON in the file ``path``, for a record's loader (:func:`read_record`).

    Raises
    ------
    InputError
        ``"NAME: unreadable"`` when the text is not UTF-8, not JSON, or nested beyond Python's
        recursion limit (a crafted file).
    OSError
        The file cannot be read (``FileNotFoundError`` when missing): the caller says what that means.
    """
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{name}: unreadable", expected="JSON", found=short(str(exc))) from None


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
        try:
            data = marshal.dumps(value)
        except ValueError:  # nested deeper than marshal goes (a crafted file): read it every time
            return value
        _keep(key, _identity(after), data)
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
    """The parsed lines of a file that only grows by appends (e.g. ``metrics.jsonl``).

    Lines read before are not parsed again: while the file is the same file (device and
    inode) and still holds the first bytes and the last complete line read at the same places,
    only the bytes after that line are read. A file replaced, truncated or rewritten is read
    whole. A last line without its newline (a write in progress, a kill, another tool) is
    parsed for this call and read again on the next.

    Parameters
    ----------
    path : path
    parse : callable(bytes) -> object or None
        One line without its newline; None leaves the line out (e.g. undecodable).

    Returns
    -------
    list : a new list of the parsed lines, oldest first. Its items are shared with later
    calls: read them, do not change them (:func:`aomcore.store.runs.read_metrics` copies them).

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
        start, rows, head = 0, [], b""
        if kept is not None and kept["file"] == (st.st_dev, st.st_ino) and st.st_size >= kept["offset"]:
            head, tail = kept["head"], kept["tail"]
            f.seek(kept["offset"] - len(tail))
            same_tail = f.read(len(tail)) == tail
            f.seek(0)
            if same_tail and f.read(len(head)) == head:
                start, rows = kept["offset"], list(kept["rows"])
        f.seek(start)
        data = f.read(max(0, st.st_size - start))
    end = data.rfind(b"\n") + 1  # complete lines end here
    for line in data[:end].splitlines():
        if line.strip() and (row := parse(line)) is not None:
            rows.append(row)
    offset = start + end
    if end:
        last_start = data.rfind(b"\n", 0, end - 1) + 1
        tail = data[last_start:end]
        head = data[:_HEAD_BYTES] if start == 0 else head
        _keep_lines(key, {"file": (st.st_dev, st.st_ino), "offset": offset, "head": head, "tail": tail,
                          "rows": tuple(rows)})
    partial = data[end:]
    if partial.strip() and (row := parse(partial)) is not None:
        rows.append(row)
    return rows


#: The first bytes of a lines file that must be unchanged for its kept rows to be reused.
_HEAD_BYTES = 4096


def _keep_lines(key: str, entry: dict) -> None:
    global _line_bytes
    with _lock:
        old = _lines.pop(key, None)
        _line_bytes -= old["offset"] if old else 0
        if entry["offset"] > MAX_LINE_BYTES:
            return  # one file over the whole budget: parsed on every call, as before
        _lines[key] = entry
        _line_bytes += entry["offset"]
        while _lines and (len(_lines) > MAX_LINE_FILES or _line_bytes > MAX_LINE_BYTES):
            _line_bytes -= _lines.popitem(last=False)[1]["offset"]


def clear() -> None:
    """Forget everything kept (tests; a process that wants fresh reads)."""
    global _record_bytes, _line_bytes
    with _lock:
        _records.clear()
        _lines.clear()
        _record_bytes = _line_bytes = 0
