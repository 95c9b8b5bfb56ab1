"""Job records: the state of every background job, one JSON file each in ``W/jobs/``.

A record ``W/jobs/<id>.json`` holds the kind, the parameters, the status and the progress,
so every browser tab, the CLI's ``workspace show`` and a restarted server see it. The
engine that runs jobs is :mod:`aomcore.jobs`; this module only reads and writes records.
Statuses:

===========  ==========================================================================
queued       waiting for a worker (the queue is bounded: ``AOMSCOPE_MAX_JOBS`` at once)
running      in a worker process; ``progress`` = {done, total, text}
done         finished; ``result`` says what it made (a version, a result key)
failed       ``message`` says why; the workspace is as it was before the job
cancelled    stopped on request; the workspace is as it was before the job
interrupted  the process that ran it died (server restart, SIGKILL, out of memory)
===========  ==========================================================================
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path

from ..base.atomic import write_json
from ..base.errors import InputError
from .reads import parse_json, read_record
from .schema import JobFile, JobParams, short, validate
from .workspace import Workspace

__all__ = ["ACTIVE", "FINAL", "job_path", "list_jobs", "load_record", "new_job_record", "read_job", "request_cancel",
           "write_job"]

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled", "interrupted")
_HOST = socket.gethostname()


def job_path(ws: Workspace, job_id: str) -> Path:
    """The record file of ``job_id`` in ``ws``."""
    return ws.jobs_dir / f"{job_id}.json"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _effective(record: dict, path: Path) -> dict:
    """The record with ``interrupted`` in place of a queued/running job whose owner died.

    Its ``finished`` is then the record file's last write (the job's last progress), so the
    pages that mention a recent end mention this one too, however long ago it started.
    """
    if record.get("status") in ACTIVE:
        owner_alive = record.get("host") == _HOST and _alive(record.get("pid"))
        worker = record.get("worker_pid")
        worker_alive = worker is None or (record.get("host") == _HOST and _alive(worker))
        if not owner_alive or (record["status"] == "running" and not worker_alive):
            try:
                last = path.stat().st_mtime
            except OSError:
                last = None
            record = record | {"status": "interrupted", "finished": record.get("finished") or last,
                               "message": "the process running it stopped (server restart, kill or out of memory)"}
    return record


def read_job(ws: Workspace, job_id: str) -> dict:
    """One job's record, with its effective status.

    Raises
    ------
    InputError
        No such job in this workspace, or a record that does not fit
        :class:`~aomcore.store.schema.JobFile` (the message names the field).
    """
    if not isinstance(job_id, str) or not job_id.isalnum():
        raise InputError("malformed job id", expected="letters and digits", found=repr(job_id))
    path = job_path(ws, job_id)
    return _effective(_load(path), path)


def load_record(ws: Workspace, job_id: str) -> dict:
    """A job's record as stored (no effective status), checked against the schema (for the engine).

    Raises
    ------
    InputError
        No such job, or a record that is not valid.
    """
    if not isinstance(job_id, str) or not job_id.isalnum():
        raise InputError("malformed job id", expected="letters and digits", found=repr(job_id)[:100])
    return _load(job_path(ws, job_id))


def _load(path: Path) -> dict:
    """A job record checked against :class:`~aomcore.store.schema.JobFile` (its ``id`` must be its file's)."""
    name = f"jobs/{path.name}"

    def load(path: Path) -> dict:
        record = parse_json(path, name)
        validate(JobFile, record, name)
        if record["id"] != path.stem:
            raise InputError(f"{name}: id", expected=f"{path.stem!r}, its file's name", found=short(record["id"]))
        return record

    try:
        return read_record(path, load)
    except FileNotFoundError:
        raise InputError("no such job in this workspace", expected="a job id from `workspace show`",
                         found=path.stem) from None
    except OSError as exc:
        raise InputError(f"{name}: unreadable job record", expected="JSON", found=short(str(exc))) from None


def list_jobs(ws: Workspace) -> list[dict]:
    """Every job of the workspace, oldest first, with effective statuses.

    A record that does not fit its schema is left out and reported by ``ws.problems()``.
    """
    jobs = []
    for path in ws.jobs_dir.glob("*.json") if ws.jobs_dir.is_dir() else []:
        try:
            jobs.append(_effective(_load(path), path))
        except InputError as exc:
            ws.note_problem(f"jobs/{path.name}", str(exc))
            continue
        ws.note_problem(f"jobs/{path.name}", None)
    return sorted(jobs, key=lambda j: j.get("created", 0))


def write_job(ws: Workspace, record: dict) -> None:
    """Write a job record atomically."""
    write_json(job_path(ws, record["id"]), record)


def new_job_record(ws: Workspace, kind: str, params: dict, owner_pid: int | None = None,
                   user: str | None = None) -> dict:
    """Write a new ``queued`` job record (the caller checks the kind and then runs it) and return it.

    Raises
    ------
    InputError
        A parameter out of its range (:class:`~aomcore.store.schema.JobParams`), before anything is written.
    """
    validate(JobParams, params, f"the {kind} job's parameters")
    ws.check_writable()
    record = {"id": secrets.token_hex(6), "kind": kind, "params": params, "status": "queued",
              "created": time.time(), "host": _HOST, "pid": owner_pid or os.getpid(), "user": user,
              "progress": {"done": 0, "total": 0, "text": "queued"}, "message": None, "result": None}
    ws.jobs_dir.mkdir(exist_ok=True)
    write_job(ws, record)
    return record


def request_cancel(ws: Workspace, job_id: str) -> None:
    """Ask a job to stop: it stops at its next step, leaving the workspace as it was."""
    ws.check_writable()
    read_job(ws, job_id)
    (ws.jobs_dir / f"{job_id}.cancel").touch()


