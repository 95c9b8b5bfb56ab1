"""Every file of a workspace is input: schema on read, imports that carry no authority, leftovers swept.

Each test closes a family of hostile cases rather than one: every damaged field of every
kind of file gives one message naming the file and the field, and the rest still opens.
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zipfile

import pytest
import torch

from aomcore import InputError, Workspace, build_model, export_zip, import_zip, list_workspaces
from aomcore.store import list_jobs, list_runs, read_job
from aomcore.store import workspace as workspace_module
from aomcore.store.job_records import new_job_record, write_job
from aomcore.store.runs import RunWriter, read_run
from aomcore.store.schema import JobFile, RunFile, VersionFile, WorkspaceFile, validate


def _add(ws, parent=None, seed=0):
    torch.manual_seed(seed)
    model = build_model("zoo:digits_net", 10, (1, 8, 8))
    return ws.add_version(model, parent=parent, edits=[], metrics={"accuracy": 0.5}, note="t", arch="zoo:digits_net",
                          num_classes=10, input_shape=(1, 8, 8))


@pytest.fixture
def ws(tmp_path):
    """A workspace with two versions (v1 current), one finished run and one finished job, as the code writes them."""
    ws = Workspace.create(tmp_path / "root", name="a", dataset="digits")
    _add(ws)
    _add(ws, parent=0, seed=1)
    run = RunWriter(ws.runs_dir / "r1", "train", {"arch": "zoo:digits_net", "edits": [], "config": {"epochs": 1},
                                                  "parent": None, "job": "abc123"}, schedule=[0])
    run.on_step(0, build_model("zoo:digits_net", 10, (1, 8, 8)))
    run.finish(version=1)
    job = new_job_record(ws, "train", {"epochs": 1})
    write_job(ws, job | {"status": "done", "result": {"version": 1}})
    return ws


def _edit(path, change):
    record = json.loads(path.read_text())
    record = change(record)
    path.write_text(json.dumps(record))


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(record):
        target = record
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
        return record
    return change


def test_the_files_the_code_writes_fit_the_schema(ws):
    validate(WorkspaceFile, ws.state(), "workspace.json")
    for vid, record in ws.versions().items():
        validate(VersionFile, record, f"v{vid}")
    assert [r["id"] for r in list_runs(ws)] == ["r1"]
    validate(RunFile, read_run(ws.runs_dir / "r1"), "run.json")
    assert [j["status"] for j in list_jobs(ws)] == ["done"]
    validate(JobFile, list_jobs(ws)[0], "job")
    assert ws.problems() == []


@pytest.mark.parametrize("change, field", [
    (_set("input_shape", [1, 2]), "input_shape"),
    (_set("dataset", "prep", "mean", "0.5"), "dataset.prep.mean"),
    (_set("num_classes", "10"), "num_classes"),
    (_set("current_version", 1e26), "current_version"),
    (_set("grants", [{"user": 5}]), "grants[0].user"),
    (_set("selection", {"d": {"conv1": [1, "2"]}}), "selection.d.conv1[1]"),
    (_set("name", None), "name"),
    (lambda r: [r], "workspace.json"),
])
def test_a_damaged_workspace_json_is_one_message(ws, change, field):
    _edit(ws.path / "workspace.json", change)
    with pytest.raises(InputError) as err:
        Workspace(ws.path)
    message = str(err.value)
    assert message.startswith("workspace.json") and field in message and "\n" not in message
    assert list_workspaces(ws.path.parent) == []  # left out of the picker, no traceback


_VERSION = "versions/v1/version.json"
_RUN = "runs/r1/run.json"


def _job_file(ws):
    return next(ws.jobs_dir.glob("*.json")).relative_to(ws.path).as_posix()


@pytest.mark.parametrize("file, change, field", [
    (_VERSION, _set("digest", 5), "digest"),
    (_VERSION, _set("parent", "0"), "parent"),
    (_VERSION, _set("edits", [{"kind": "remove", "layer": "conv1", "kernels": [1.5]}]), "edits[0].kernels[0]"),
    (_VERSION, _set("id", 7), "id"),
    (_VERSION, lambda r: [r], _VERSION),
    (_RUN, _set("snapshots", [{"iteration": "3", "file": "snapshots/a"}]), "snapshots[0].iteration"),
    (_RUN, _set("snapshots", [{"iteration": 1e26, "file": "snapshots/a"}]), "snapshots[0].iteration"),
    (_RUN, _set("snapshots", [{"iteration": 10**26, "file": "snapshots/a"}]), "snapshots[0].iteration"),
    (_RUN, _set("input_shape", [1, 2]), "input_shape"),
    (_RUN, _set("status", 3), "status"),
    (_RUN, lambda r: "x" * 1_000_000, _RUN),
    ("job", lambda r: [r], "jobs/"),
    ("job", _set("status", "weird"), "status"),
    ("job", _set("pid", "12"), "pid"),
    ("job", _set("progress", {"done": -1}), "progress.done"),
    ("job", _set("id", "../x"), "id"),
    ("job", lambda r: r | {"params": {**r["params"], "batch_size": 10**9}}, "params.batch_size"),
    ("job", lambda r: r | {"params": {**r["params"], "seed": -1}}, "params.seed"),
    ("job", lambda r: r | {"params": {**r["params"], "config": {"epochs": 10**8}}}, "params.config.epochs"),
])
def test_a_damaged_version_run_or_job_is_left_out_and_reported(ws, file, change, field):
    file = _job_file(ws) if file == "job" else file
    _edit(ws.path / file, change)
    ws = Workspace(ws.path)  # still opens
    versions, runs, jobs = ws.versions(), list_runs(ws), list_jobs(ws)
    if file == _VERSION:
        assert list(versions) == [0] and ws.current_version == 1
        with pytest.raises(InputError, match="no such version"):
            ws.loaded(1)
    else:
        assert list(versions) == [0, 1]
    assert len(runs) == (0 if file == _RUN else 1)
    assert len(jobs) == (0 if file.startswith("jobs/") else 1)
    [problem] = ws.problems()
    assert problem.startswith(file) and field in problem and "\n" not in problem and len(problem) < 400
    if file.startswith("jobs/"):
        with pytest.raises(InputError, match=field.replace("[", r"\[")):
            read_job(ws, file.removeprefix("jobs/").removesuffix(".json"))
    _edit(ws.path / file, lambda r: r)  # a problem is forgotten once the file reads well again
    if file == _RUN:
        with pytest.raises(InputError, match="run.json"):
            read_run(ws.runs_dir / "r1")


def test_a_missing_current_version_reads_as_none(ws):
    _edit(ws.path / "workspace.json", _set("current_version", 9))
    ws = Workspace(ws.path)
    assert ws.current_version is None and list(ws.versions()) == [0, 1]
    assert any("current_version" in p for p in ws.problems())


def test_unknown_fields_are_kept_wrong_types_refused(ws):
    future = {"added_later": {"x": [1, 2]}}
    _edit(ws.path / "workspace.json", lambda r: r | future | {"dataset": r["dataset"] | future})
    _edit(ws.path / _VERSION, lambda r: r | future)
    _edit(ws.path / _RUN, lambda r: r | future | {"snapshots": [s | future for s in r["snapshots"]]})
    _edit(ws.path / _job_file(ws), lambda r: r | future)
    ws = Workspace(ws.path)
    assert list(ws.versions()) == [0, 1] and len(list_runs(ws)) == 1 and len(list_jobs(ws)) == 1
    ws.set_n_groups("conv1", 3)
    assert ws.state()["added_later"] == future["added_later"] and ws.problems() == []


def test_preprocessing_the_cli_accepts_is_read_back(ws):
    """The schema's ranges are the CLI's (limits): a workspace made with --channels 8 --resize 5000 opens."""
    from aomcore.base import limits

    prep = {"channels": limits.CHANNELS_MAX, "resize": limits.RESIZE_MAX, "per_class": limits.PER_CLASS_MAX}
    _edit(ws.path / "workspace.json", lambda r: r | {"dataset": r["dataset"] | {"prep": prep}})
    assert Workspace(ws.path).state()["dataset"]["prep"] == prep
    too_big = {"resize": limits.RESIZE_MAX + 1}
    _edit(ws.path / "workspace.json", lambda r: r | {"dataset": r["dataset"] | {"prep": too_big}})
    with pytest.raises(InputError, match="resize"):
        Workspace(ws.path).state()


# --- import: data, never authority ------------------------------------------------------

def _zip(members: dict[str, bytes | dict | list], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data if isinstance(data, bytes) else json.dumps(data))
    return buf.getvalue()


def _members(ws) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(export_zip(ws))) as z:
        return {n: z.read(n) for n in z.namelist()}


def _state(members) -> dict:
    return json.loads(members["workspace.json"])


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "imports"
    root.mkdir()
    return root


def test_import_drops_jobs_and_authority(ws, root):
    members = _members(ws)
    members["workspace.json"] = _state(members) | {"owner": "mallory", "grants": [{"user": "eve", "mode": "read"}]}
    members["jobs/abc123.json"] = {"id": "abc123", "kind": "train", "status": "running", "pid": 1, "host": "x"}
    members["jobs/abc123.cancel"] = b""
    members[".lock"] = b""
    new = import_zip(_zip(members), root, owner="alice")
    assert new.owner == "alice" and new.state()["grants"] == []
    assert list(new.jobs_dir.iterdir()) == [] and list_jobs(new) == []
    assert list(new.versions()) == [0, 1] and len(list_runs(new)) == 1


def _lie_about_size(data: bytes, name: str, size: int) -> bytes:
    """The zip with ``name``'s uncompressed size set to ``size`` in its central directory entry."""
    at = data.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + name_len] == name.encode():
            return data[:at + 24] + struct.pack("<I", size) + data[at + 28:]
        at = data.index(b"PK\x01\x02", at + 4)


def _corrupt(data: bytes, content: bytes) -> bytes:
    return data.replace(content, content[:-1] + bytes([content[-1] ^ 1]))


_ARCH_FILE = "/tmp/somewhere/evil.py:Net"


@pytest.mark.parametrize("damage, message", [
    (lambda m: m | {"results/a.npz": b"A" * 5000}, None),  # the good zip, for contrast
    (lambda m: {k: v for k, v in m.items() if k != "workspace.json"}, "not a workspace zip"),
    (lambda m: m | {"results/" + "a" * 300 + ".npz": b"x"}, "too long a name"),
    (lambda m: m | {"results/a.py": b"x"}, "unexpected file"),
    (lambda m: m | {"../a.npz": b"x"}, "unexpected file"),
    (lambda m: m | {_VERSION: _set("digest", 5)(json.loads(m[_VERSION]))}, "versions/v1/version.json: digest"),
    (lambda m: m | {_RUN: _set("snapshots", [{"iteration": 1e26, "file": "a"}])(json.loads(m[_RUN]))},
     "runs/r1/run.json: snapshots[0].iteration"),
    (lambda m: m | {"workspace.json": _state(m) | {"input_shape": [1, 2]}}, "workspace.json: input_shape"),
    (lambda m: m | {"workspace.json": _state(m) | {"schema": 99}}, "unsupported workspace schema"),
    (lambda m: m | {"workspace.json": b"{"}, "workspace.json: unreadable"),
    (lambda m: m | {"workspace.json": _state(m) | {"arch": _ARCH_FILE}}, "--trust-code"),
    (lambda m: m | {_RUN: json.loads(m[_RUN]) | {"arch": _ARCH_FILE}}, "--trust-code"),
])
def test_import_refuses_bad_members_and_leaves_nothing(ws, root, damage, message):
    data = _zip(damage(_members(ws)))
    if message is None:
        assert list(import_zip(data, root).versions()) == [0, 1]
        return
    with pytest.raises(InputError, match=message.replace("[", r"\[")) as err:
        import_zip(data, root)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("damage, message", [
    (lambda d: _corrupt(d, b"A" * 5000), "damaged workspace zip"),
    (lambda d: _lie_about_size(d, "results/a.npz", 10), "damaged|more than it declares"),
    (lambda d: _lie_about_size(d, "results/a.npz", 2**32 - 1), "too large"),
    (lambda d: d[: len(d) // 2], "not a workspace zip"),
])
def test_import_refuses_a_damaged_zip_and_leaves_nothing(ws, root, damage, message):
    data = damage(_zip(_members(ws) | {"results/a.npz": b"A" * 5000}))
    with pytest.raises(InputError, match=message):
        import_zip(data, root)
    assert list(root.iterdir()) == []


def test_import_counts_against_the_quota(ws, root):
    data = _zip(_members(ws) | {"results/a.npz": b"\0" * 2**21}, zipfile.ZIP_DEFLATED)
    assert len(data) < 2**20  # small upload, large unpacked
    with pytest.raises(InputError, match="too large"):
        import_zip(data, root, max_bytes=2**21)
    assert list(root.iterdir()) == []
    assert import_zip(data, root, max_bytes=2**23).disk_usage() > 2**21


def test_architecture_files_need_trust_and_the_allow_list_in_shared_mode(ws, root, monkeypatch):
    members = _members(ws)
    data = _zip(members | {"workspace.json": _state(members) | {"arch": _ARCH_FILE}})
    with pytest.raises(InputError, match="--trust-code"):
        import_zip(data, root)
    assert import_zip(data, root, trust_code=True).state()["arch"] == _ARCH_FILE  # nothing runs on import
    monkeypatch.setenv("AOMSCOPE_SHARED", "1")
    for trust in (False, True):  # the allow-list first: a shared user is never told to confirm what cannot be
        with pytest.raises(InputError, match="disabled in shared mode") as err:
            import_zip(data, root / "shared", trust_code=trust)
        assert "trust" not in str(err.value)
    assert not (root / "shared").exists() or list((root / "shared").iterdir()) == []
    monkeypatch.setenv("AOMSCOPE_ARCH_ALLOWLIST", _ARCH_FILE.rpartition(":")[0])
    with pytest.raises(InputError, match="--trust-code"):  # allow-listed: still confirmed by the importer
        import_zip(data, root / "shared")
    assert import_zip(data, root / "shared", trust_code=True).state()["arch"] == _ARCH_FILE


# --- leftovers ----------------------------------------------------------------------------

def _aged(path, seconds):
    path.mkdir(parents=True)
    (path / "f").write_bytes(b"x")
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_opening_for_writing_sweeps_leftovers(ws, monkeypatch):
    old_staging = _aged(ws.path / "versions" / ".staging-aaaa", 7200)
    new_staging = _aged(ws.path / "versions" / ".staging-bbbb", 60)
    old_run_staging = _aged(ws.runs_dir / ".r9.staging-cccc", 7200)
    old_upload = _aged(ws.path / "uploads" / "old", 2 * 86400)
    new_upload = _aged(ws.path / "uploads" / "new", 3600)
    for name, job in (("dead", "deadjob000"), ("live", None), ("nojob", None)):
        RunWriter(ws.runs_dir / name, "train", {"arch": "zoo:digits_net", "job": job}, schedule=[])
    live = new_job_record(ws, "train", {}, owner_pid=os.getpid())
    _edit(ws.runs_dir / "live" / "run.json", _set("job", live["id"]))

    Workspace(ws.path, read_only=True)  # a reader changes nothing
    assert old_staging.exists() and json.loads((ws.runs_dir / "dead" / "run.json").read_text())["status"] == "running"

    monkeypatch.setattr(workspace_module, "_swept", {})
    Workspace(ws.path)
    assert not old_staging.exists() and not old_run_staging.exists() and not old_upload.exists()
    assert new_staging.exists() and new_upload.exists()
    status = {name: json.loads((ws.runs_dir / name / "run.json").read_text())["status"]
              for name in ("dead", "live", "nojob", "r1")}
    assert status == {"dead": "interrupted", "live": "running", "nojob": "running", "r1": "done"}
    assert [r["id"] for r in list_runs(Workspace(ws.path))] == ["live", "r1"]
    assert list(Workspace(ws.path).versions()) == [0, 1]


@pytest.mark.parametrize("params, field", [
    ({"version": 0, "split": "test", "threshold": 0.0, "batch_size": 0}, "batch_size"),
    ({"version": 0, "split": "test", "threshold": float("nan")}, "threshold"),
    ({"version": -1, "split": "test"}, "version"),
    ({"version": 0, "split": "validation"}, "split"),
    ({"version": 0, "positions": 0}, "positions"),
    ({"version": 0, "bins": 10**9}, "bins"),
    ({"version": 0, "perplexity": 0.5}, "perplexity"),
    ({"parent": 0, "config": {"epochs": 1, "lr": float("inf"), "batch_size": 64}}, "config.lr"),
    ({"parent": 0, "config": {"epochs": 1, "batch_size": 64, "optimizer": "lbfgs"}}, "config.optimizer"),
])
def test_job_parameters_are_bounded_before_a_record_is_written(ws, params, field):
    """Every number a job reads has the CLI's range (aomcore.base.limits), checked when the job is
    queued (before anything is written) and when its record is read back."""
    before = sorted(ws.jobs_dir.glob("*.json"))
    with pytest.raises(InputError, match=f"the maps job's parameters: {field.replace('.', '[.]')}: expected"):
        new_job_record(ws, "maps", params)
    assert sorted(ws.jobs_dir.glob("*.json")) == before
    ok = new_job_record(ws, "maps", {"version": 0, "split": "test", "threshold": 0.0, "batch_size": 256,
                                     "positions": "all", "perplexity": 30, "config": {"epochs": 2, "lr": 1e-3}})
    assert read_job(ws, ok["id"])["params"]["positions"] == "all"
