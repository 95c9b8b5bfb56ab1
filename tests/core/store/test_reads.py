"""Workspace files read once per change: kept while the file is the same, read again when it is not."""

from __future__ import annotations

import json
import os
import time

import pytest

from aomcore import InputError, Workspace
from aomcore.base.atomic import write_json
from aomcore.store import reads
from aomcore.store.runs import read_metrics


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    reads.clear()
    yield
    reads.clear()


class _Loader:
    """A JSON loader that counts its reads and refuses a record without ``ok``."""

    def __init__(self):
        self.calls = 0

    def __call__(self, path):
        self.calls += 1
        record = json.loads(path.read_text())
        if not record.get("ok"):
            raise InputError("not ok", expected="ok: true", found=str(record))
        return record


def test_a_settled_file_is_read_once_and_each_caller_gets_its_own_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(reads, "SETTLE_SECONDS", 0.0)
    path = write_json(tmp_path / "r.json", {"ok": True, "items": [1, 2]})
    load = _Loader()
    first = reads.read_record(path, load)
    first["items"].append(3)  # a caller changing its copy
    second = reads.read_record(path, load)
    assert load.calls == 1
    assert second == {"ok": True, "items": [1, 2]}


def test_an_atomic_write_is_seen_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(reads, "SETTLE_SECONDS", 0.0)
    path = write_json(tmp_path / "r.json", {"ok": True, "n": 1})
    load = _Loader()
    assert reads.read_record(path, load)["n"] == 1
    write_json(path, {"ok": True, "n": 2})  # same size, new inode
    assert reads.read_record(path, load)["n"] == 2
    assert load.calls == 2


def test_a_write_in_place_that_keeps_size_and_mtime_is_seen(tmp_path, monkeypatch):
    """``cp -p`` or ``rsync -t`` over the file: same inode, size and mtime; only ctime tells."""
    monkeypatch.setattr(reads, "SETTLE_SECONDS", 0.0)
    path = write_json(tmp_path / "r.json", {"ok": True, "n": 1})
    before = os.stat(path)
    load = _Loader()
    assert reads.read_record(path, load)["n"] == 1
    time.sleep(0.05)  # past the file system's timestamp tick
    with open(path, "r+b") as f:
        f.write(path.read_bytes().replace(b'"n": 1', b'"n": 7'))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert reads.read_record(path, load)["n"] == 7


def test_a_freshly_changed_file_is_read_every_time(tmp_path):
    """Within SETTLE_SECONDS of a change, a second write in the same clock tick could keep every field."""
    path = write_json(tmp_path / "r.json", {"ok": True})
    load = _Loader()
    for _ in range(3):
        reads.read_record(path, load)
    assert load.calls == 3


def test_a_bad_file_is_never_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(reads, "SETTLE_SECONDS", 0.0)
    path = write_json(tmp_path / "r.json", {"ok": False})
    load = _Loader()
    for _ in range(2):
        with pytest.raises(InputError, match="not ok"):
            reads.read_record(path, load)
    assert load.calls == 2
    with pytest.raises(FileNotFoundError):
        reads.read_record(tmp_path / "missing.json", load)


def test_workspace_listings_read_each_file_once_until_it_changes(tmp_path, monkeypatch):
    """The page-rerun path: state, versions and results come from memory; a change on disk is seen."""
    monkeypatch.setattr(reads, "SETTLE_SECONDS", 0.0)
    ws = Workspace.create(tmp_path, name="w", dataset="digits")
    loads = []
    real = Workspace._load_state
    monkeypatch.setattr(Workspace, "_load_state", lambda self, path: loads.append(path) or real(self, path))
    reads.clear()
    ws.state()
    for _ in range(3):
        Workspace(ws.path, read_only=True).state()
        assert ws.results("maps") == []
    assert len(loads) == 1
    ws.update(name="renamed")
    assert Workspace(ws.path, read_only=True).name == "renamed"
    assert len(loads) == 2  # the written file is a new one


def _row(line: bytes):
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        return None


def test_appended_lines_are_parsed_once(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 0}\n{"step": 1}\n')
    parsed = []

    def parse(line):
        parsed.append(line)
        return _row(line)

    assert [r["step"] for r in reads.read_appended_lines(path, parse)] == [0, 1]
    with open(path, "ab") as f:
        f.write(b'{"step": 2}\n{"ste')  # a line being written
    assert [r["step"] for r in reads.read_appended_lines(path, parse)] == [0, 1, 2]
    with open(path, "ab") as f:
        f.write(b'p": 3}\n')
    assert [r["step"] for r in reads.read_appended_lines(path, parse)] == [0, 1, 2, 3]
    assert [line for line in parsed if line.endswith(b"}")] == [b'{"step": %d}' % i for i in range(4)]  # each once
    assert parsed.count(b'{"ste') == 1  # the line being written: tried, and read again when complete


def test_a_rewritten_or_replaced_lines_file_is_read_whole(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 0}\n{"step": 1}\n')
    assert len(reads.read_appended_lines(path, _row)) == 2
    path.write_bytes(b'{"step": 5}\n{"step": 6}\n{"step": 7}\n')  # same inode, truncated and rewritten
    assert [r["step"] for r in reads.read_appended_lines(path, _row)] == [5, 6, 7]
    path.write_bytes(b'{"step": 9}\n')  # shorter than what was read
    assert [r["step"] for r in reads.read_appended_lines(path, _row)] == [9]
    other = tmp_path / "other.jsonl"
    other.write_bytes(b'{"step": 1}\n{"step": 2}\n{"step": 3}\n')
    os.replace(other, path)  # a new file under the name
    assert [r["step"] for r in reads.read_appended_lines(path, _row)] == [1, 2, 3]


def test_read_metrics_skips_torn_malformed_and_incomplete_rows(tmp_path):
    """A row the pages could not draw (a crafted or foreign file) is left out, not a page error."""
    row = {"epoch": 1, "step": 1, "steps": 2, "loss": 0.5, "accuracy": 0.75, "seconds": 0.1}
    lines = [json.dumps(row), "[1, 2]", "not json", json.dumps({"step": 1}),
             json.dumps(row | {"steps": "2"}), json.dumps(row | {"step": True}), json.dumps(row | {"loss": None}),
             json.dumps(row | {"step": 2, "loss": float("nan")})]
    (tmp_path / "metrics.jsonl").write_bytes("\n".join(lines).encode() + b"\n\xff\xfe\n" + b'{"step": 3, "lo')
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2]  # a diverged loss (NaN) is a real row
    assert read_metrics(tmp_path / "missing") == []


def test_what_is_kept_stays_within_its_bounds(tmp_path, monkeypatch):
    monkeypatch.setattr(reads, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(reads, "MAX_RECORDS", 3)
    load = _Loader()
    paths = [write_json(tmp_path / f"r{i}.json", {"ok": True, "i": i}) for i in range(5)]
    for path in paths:
        reads.read_record(path, load)
    assert list(reads._records) == [str(p) for p in paths[2:]]  # the least recently used went first
    monkeypatch.setattr(reads, "MAX_RECORD_BYTES", 2 * len(reads._records[str(paths[4])][1]))
    reads.read_record(paths[0], load)
    assert len(reads._records) == 2 and reads._record_bytes <= reads.MAX_RECORD_BYTES
    assert reads._record_bytes == sum(len(data) for _, data in reads._records.values())


def test_a_record_nested_deeper_than_marshal_goes_is_returned_and_not_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(reads, "SETTLE_SECONDS", 0.0)
    path = write_json(tmp_path / "r.json", {"ok": True})
    deep: list = []
    for _ in range(3000):
        deep = [deep]
    calls = []

    def load(p):
        calls.append(p)
        return {"ok": True, "deep": deep}

    for _ in range(2):
        assert reads.read_record(path, load)["deep"] is deep
    assert len(calls) == 2 and str(path) not in reads._records


def test_a_rewrite_in_place_of_the_same_length_is_read_whole(tmp_path):
    """Same inode and size, the last line unchanged, an earlier one changed: not an append."""
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 0}\n{"step": 1}\n')
    assert [r["step"] for r in reads.read_appended_lines(path, _row)] == [0, 1]
    with open(path, "r+b") as f:
        f.write(b'{"step": 7}\n')
    assert [r["step"] for r in reads.read_appended_lines(path, _row)] == [7, 1]


def test_an_unterminated_last_line_is_shown_and_read_again(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 0}\n{"step": 1}')  # e.g. written by another tool without the last newline
    assert [r["step"] for r in reads.read_appended_lines(path, _row)] == [0, 1]
    with open(path, "ab") as f:
        f.write(b'\n{"step": 2}\n')
    assert [r["step"] for r in reads.read_appended_lines(path, _row)] == [0, 1, 2]


def test_lines_kept_stay_within_their_byte_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(reads, "MAX_LINE_BYTES", 30)
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    small.write_bytes(b'{"step": 0}\n')  # 12 bytes
    big.write_bytes(b'{"step": 0}\n' * 3)  # 36 bytes: over the whole bound, never kept
    for path in (small, big, small):
        reads.read_appended_lines(path, _row)
    assert list(reads._lines) == [str(small)] and reads._line_bytes == 12
    assert len(reads.read_appended_lines(big, _row)) == 3


def test_read_metrics_hands_out_rows_of_its_own(tmp_path):
    row = {"epoch": 1, "step": 1, "steps": 1, "loss": 0.5, "accuracy": 0.75}
    (tmp_path / "metrics.jsonl").write_text(json.dumps(row) + "\n")
    read_metrics(tmp_path)[0]["loss"] = 99.0
    assert read_metrics(tmp_path) == [row]


def test_json_nested_beyond_the_recursion_limit_is_an_unreadable_record_everywhere(tmp_path):
    """One parser for every workspace record: a crafted file is a clear InputError, never a RecursionError."""
    from aomcore import list_jobs

    ws = Workspace.create(tmp_path, name="w", dataset="digits")
    deep = b"[" * 200_000 + b"]" * 200_000
    (ws.jobs_dir / "abc123.json").write_bytes(deep)
    assert list_jobs(ws) == []
    assert any("jobs/abc123.json: unreadable" in p for p in ws.problems())
    (ws.path / "workspace.json").write_bytes(deep)
    with pytest.raises(InputError, match="workspace.json: unreadable"):
        Workspace(ws.path, read_only=True)
