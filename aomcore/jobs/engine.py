"""The job engine: every long operation runs in a worker process and writes its state to disk.

A job belongs to a workspace (:mod:`aomcore.store.workspace`); its record
(:mod:`aomcore.store.job_records`) holds the kind, the parameters, the status and the
progress, so every browser tab, the CLI's ``workspace show`` and a restarted server see it.

Jobs run in a :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start
method (:class:`JobRunner`), so leaving a page, reloading or closing a tab never stops
them, and a crash or an out-of-memory kill takes down only its worker. Cancel is
cooperative (a ``<id>.cancel`` file the job polls at every training step or batch) with a
hard kill after a grace period — of a worker process this runner started, never of a pid
read from a file. A job writes its product (a version, a result) into the workspace only
at its end, atomically, so a cancelled, failed or interrupted job leaves nothing
half-written. The CLI runs the same job functions in its own process (:func:`run_inline`).

Job kinds are looked up by name in :mod:`aomcore.jobs.registry`; each takes ``(workspace,
params, context)`` and returns a JSON-serialisable result.
"""

from __future__ import annotations

import concurrent.futures as cf
import concurrent.futures.process  # noqa: F401 - registers the pool's exit hook now, before JobRunner's (below)
import json
import multiprocessing
import os
import signal
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from pathlib import Path

from ..base import threads
from ..base.allocator import release_freed_memory, reuse_freed_memory
from ..base.errors import Cancelled, InputError
from ..store.job_records import ACTIVE, load_record, new_job_record, read_job, request_cancel, write_job
from ..store.workspace import Workspace
from .registry import get_kind

__all__ = ["JobContext", "JobRunner", "run_inline", "submit_record"]


#: Cores a job worker leaves to the dashboard server (set by :func:`_init_worker`; 0 in the CLI).
_reserve = 0


class Interrupted(Exception):
    """The process that owns the job is gone (the worker's parent died)."""


def submit_record(ws: Workspace, kind: str, params: dict, owner_pid: int | None = None,
                  user: str | None = None) -> dict:
    """Write a new ``queued`` job record of a registered kind (the caller then runs it) and return it.

    Raises
    ------
    InputError
        Unknown kind, or a read-only workspace.
    """
    get_kind(kind)
    return new_job_record(ws, kind, params, owner_pid=owner_pid, user=user)


# --- the worker side ----------------------------------------------------------------------
class JobContext:
    """What a job function gets to report progress and notice a cancel.

    ``is_set()`` makes it usable wherever a cancel event is expected (e.g.
    :func:`aomcore.base.training.train`); :meth:`progress` raises :class:`Cancelled` when a
    cancel was requested, so loops that report progress stop there.
    """

    def __init__(self, ws: Workspace, record: dict, echo: Callable[[int, int, str], None] | None = None):
        self.ws, self.record, self.echo = ws, record, echo
        self.job_id = record["id"]
        self._cancel_file = ws.jobs_dir / f"{self.job_id}.cancel"
        self._parent = os.getppid()
        self._last_write = 0.0
        self._last_check, self._cancelled = 0.0, False

    def is_set(self) -> bool:
        now = time.monotonic()
        if now - self._last_check > 0.2:
            self._last_check = now
            if os.getppid() != self._parent:
                raise Interrupted("the server that started this job stopped")
            self._cancelled = self._cancelled or self._cancel_file.exists()
        return self._cancelled

    def check(self) -> None:
        if self.is_set():
            raise Cancelled("cancelled")

    def progress(self, done: int, total: int, text: str = "") -> None:
        """Record progress (written at most ~3 times a second); raises Cancelled on request."""
        self.check()
        threads.rebalance()  # give threads back when other jobs start, take them when they end
        if self.echo is not None:
            self.echo(done, total, text)
        now = time.monotonic()
        if now - self._last_write > 0.3 or done >= total:
            self._last_write = now
            self.record["progress"] = {"done": int(done), "total": int(total), "text": text}
            write_job(self.ws, self.record)


def _run(ws: str | Workspace, job_id: str, echo: Callable[[int, int, str], None] | None = None) -> dict:
    """Worker entry point: run one job to a final status (never raises).

    ``ws`` is a workspace folder (a worker process) or an open :class:`Workspace` (the CLI,
    whose models and splits loaded before the job are then not loaded again).
    """
    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    record = load_record(ws, job_id)
    if record["status"] != "queued" or (ws.jobs_dir / f"{job_id}.cancel").exists():
        record.update(status="cancelled", finished=time.time())
        write_job(ws, record)
        return record
    record.update(status="running", started=time.time(), worker_pid=os.getpid())
    write_job(ws, record)
    ctx = JobContext(ws, record, echo)
    try:
        with threads.running(_reserve):
            result = get_kind(record["kind"]).run(ws, record["params"], ctx)
        record.update(status="done", result=result, message=None)
    except Cancelled:
        record.update(status="cancelled", message="cancelled; the workspace is as it was")
    except Interrupted as exc:
        record.update(status="interrupted", message=str(exc))
    except InputError as exc:
        record.update(status="failed", message=str(exc))
    except MemoryError:
        record.update(status="failed", message="out of memory: the job needed more memory than it may use "
                                               f"(AOMSCOPE_JOB_MEMORY_GB={os.environ.get('AOMSCOPE_JOB_MEMORY_GB')})")
    except Exception as exc:  # a failed job must leave a message, never a dead worker
        traceback.print_exc()
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        if "alloc" in text.lower() and "memory" in text.lower():
            text = f"out of memory: {text}"
        record.update(status="failed", message=f"{type(exc).__name__}: {text}")
    record["finished"] = time.time()
    write_job(ws, record)
    (ws.jobs_dir / f"{job_id}.cancel").unlink(missing_ok=True)
    release_freed_memory()  # an idle worker keeps no batch-sized heap
    return record


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to end this process when its parent (the server) dies, however it dies
    (Linux ``PR_SET_PDEATHSIG``; elsewhere a no-op). Without it a ``kill -9`` of the server left
    its idle workers running, each holding its memory."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG = 1
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


#: How much lower a job worker's CPU priority is than the server's (nice levels).
WORKER_NICE = 10


def _lower_priority(pid: int, parent: int | None) -> None:
    """Set process ``pid`` to :data:`WORKER_NICE` levels below ``parent`` (this process if None), unless it is
    lower already. Idempotent: the server applies it to a worker it just started, so that the worker's
    imports (torch: ~2 s of CPU) already yield to page renders, and the worker applies it again to itself."""
    try:
        target = min(19, os.getpriority(os.PRIO_PROCESS, parent or 0) + WORKER_NICE)
        if os.getpriority(os.PRIO_PROCESS, pid) < target:
            os.setpriority(os.PRIO_PROCESS, pid, target)
    except OSError:  # gone already, or not ours to change
        pass


def _init_worker(gigabytes: float | None, parent: int | None = None) -> None:
    """Worker initializer: ends with the server (:func:`_die_with_parent`), a lower CPU priority than
    the server (pages stay responsive while jobs run), the process's data segment (heap and private
    mappings) bounded, and freed activation memory kept for the next batch
    (:func:`~aomcore.base.allocator.reuse_freed_memory`)."""
    global _reserve
    if parent is not None:
        _die_with_parent(parent)
    _reserve = 1 if threads.available_cores() >= 4 else 0  # page renders keep a core (fewer: nice 10 below)
    reuse_freed_memory()
    _lower_priority(os.getpid(), parent)
    if gigabytes:
        import resource

        limit = int(gigabytes * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def run_inline(ws: Workspace, kind: str, params: dict, echo: Callable[[int, int, str], None] | None = None) -> dict:
    """Run a job in this process (the CLI), recorded in the workspace like any other.

    Returns the final record; raises :class:`InputError` with the job's message when it
    failed, and re-raises ``KeyboardInterrupt``.
    """
    record = submit_record(ws, kind, params)
    try:
        final = _run(ws, record["id"], echo)
    except KeyboardInterrupt:
        rec = load_record(ws, record["id"])
        rec.update(status="cancelled", message="interrupted (Ctrl-C)", finished=time.time())
        write_job(ws, rec)
        raise
    if final["status"] != "done":
        raise InputError(f"{kind} {final['status']}: {final.get('message') or 'no message'}")
    return final


class JobRunner:
    """The server's worker pool: a bounded queue of jobs across every workspace.

    Parameters
    ----------
    max_jobs : int, optional
        Jobs running at once (default ``$AOMSCOPE_MAX_JOBS`` or 1: one per device).
    memory_gb : float, optional
        Memory limit of each worker process (default ``$AOMSCOPE_JOB_MEMORY_GB``; 8 in shared
        mode, none otherwise), applied as the worker's data-segment limit.
    kill_after : float, default 15
        Seconds a cancelled job may take to stop before its worker is killed.
    """

    _instances: weakref.WeakSet = weakref.WeakSet()
    _exit_hook = False

    def __init__(self, max_jobs: int | None = None, memory_gb: float | None = None, kill_after: float = 15.0):
        JobRunner._instances.add(self)
        if not JobRunner._exit_hook:
            # The pool's own exit hook joins its workers, so a server stopped with Ctrl-C would wait for
            # a running job to finish. threading's exit hooks run in reverse order of registration,
            # before the pool's join: registered after concurrent.futures.process (imported at the top of this
            # module, not lazily at the first pool), this one runs first.
            threading._register_atexit(JobRunner._stop_all_at_exit)
            JobRunner._exit_hook = True
        self.max_jobs = int(max_jobs or os.environ.get("AOMSCOPE_MAX_JOBS") or 1)
        mem = memory_gb if memory_gb is not None else os.environ.get("AOMSCOPE_JOB_MEMORY_GB")
        if mem is None and os.environ.get("AOMSCOPE_SHARED", "").lower() in ("1", "true", "yes"):
            mem = 8  # shared servers: one user's huge job must not take the machine's memory
        self.memory_gb = float(mem) if mem else None
        self.kill_after = kill_after
        self._lock = threading.Lock()
        self._pool: cf.ProcessPoolExecutor | None = None
        self._futures: dict[str, cf.Future] = {}
        self._pending: dict[str, tuple[str, float]] = {}  # job id -> (workspace path, submitted)
        self._owners: dict[str, str] = {}  # job id -> the user or workspace it counts against
        self._retried: dict[str, int] = {}

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None or getattr(self._pool, "_broken", False):
            self._pool = cf.ProcessPoolExecutor(max_workers=self.max_jobs,
                                                mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(self.memory_gb, os.getpid()))
        return self._pool

    def submit(self, ws: Workspace, kind: str, params: dict, user: str | None = None,
               per_owner_limit: int | None = None,
               owner_key: str | None = None) -> dict:
        """Queue a job for ``ws``; returns its record.

        Parameters
        ----------
        per_owner_limit : int, optional
            At most this many queued or running jobs per ``owner_key`` (a user or a
            workspace, in shared deployments); one more is refused with a message.
        """
        key = owner_key or str(ws.path)
        with self._lock:
            if per_owner_limit is not None:
                active = [j for j, k in self._owners.items() if k == key and not self._futures[j].done()]
                if len(active) >= per_owner_limit:
                    raise InputError("a job of yours is already queued or running",
                                     expected=f"at most {per_owner_limit} at once: wait for it or cancel it",
                                     found=f"{len(active)} queued or running")
            record = submit_record(ws, kind, params, user=user)
            job_id = record["id"]
            pool = self._executor()
            future = pool.submit(_run, str(ws.path), job_id)
            for process in list(getattr(pool, "_processes", {}).values()):  # those this submit started
                _lower_priority(process.pid, None)
            self._futures[job_id], self._owners[job_id] = future, key
            self._pending[job_id] = (str(ws.path), time.time())
        future.add_done_callback(lambda f: self._finished(ws, job_id, f))
        return record

    def _finished(self, ws: Workspace, job_id: str, future: cf.Future) -> None:
        """When a worker died (out of memory, killed), write a final status for its job."""
        if future.cancelled():
            try:
                rec = load_record(ws, job_id)
            except InputError:
                return
            rec.update(status="cancelled", message="cancelled before it started", finished=time.time())
            write_job(ws, rec)
            return
        exc = future.exception()
        if exc is None:
            return
        try:
            rec = load_record(ws, job_id)
        except InputError:  # the record is gone or damaged: nothing to mark
            return
        if rec.get("status") in ACTIVE:
            retried = self._retried.get(job_id, 0)
            if rec["status"] == "queued" and isinstance(exc, cf.process.BrokenProcessPool) and retried < 1:
                with self._lock:  # another job's worker died and took the pool with it: run this one again
                    self._retried[job_id] = retried + 1
                    try:
                        future2 = self._executor().submit(_run, str(ws.path), job_id)
                    except RuntimeError:  # the interpreter is shutting down
                        return
                    self._futures[job_id] = future2
                future2.add_done_callback(lambda f: self._finished(ws, job_id, f))
                return
            cancelled = (ws.jobs_dir / f"{job_id}.cancel").exists()
            rec.update(status="cancelled" if cancelled else "failed", finished=time.time(),
                       message="cancelled (the worker was stopped)" if cancelled else
                       "the worker process died (out of memory or killed); the workspace is as it was")
            write_job(ws, rec)

    def cancel(self, ws: Workspace, job_id: str) -> None:
        """Cancel a job: dequeue it, or ask it to stop and kill its worker if it does not."""
        request_cancel(ws, job_id)
        future = self._futures.get(job_id)
        if future is not None and future.cancel():
            return
        threading.Timer(self.kill_after, self._kill_if_running, args=(ws, job_id)).start()

    def _kill_if_running(self, ws: Workspace, job_id: str) -> None:
        """Kill the worker of a job that did not stop: only a worker process of this runner's pool.

        The record's ``worker_pid`` alone is never trusted (a record is a file anyone could
        have written): the pid must be one of the pool's own processes.
        """
        try:
            rec = read_job(ws, job_id)
        except InputError:
            return
        pid = rec.get("worker_pid")
        own = set(getattr(self._pool, "_processes", None) or {}) if self._pool is not None else set()
        if rec["status"] == "running" and isinstance(pid, int) and pid in own:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def queue_position(self, job_id: str) -> int | None:
        """1-based place among this server's jobs not yet started, or None."""
        with self._lock:
            waiting = []
            for jid, (path, submitted) in self._pending.items():
                future = self._futures.get(jid)
                if future is None or future.done():
                    continue
                try:
                    status = json.loads((Path(path) / "jobs" / f"{jid}.json").read_text())["status"]
                except (OSError, ValueError, KeyError, TypeError, RecursionError):  # a damaged or crafted record
                    continue
                if status == "queued":
                    waiting.append((submitted, jid))
            order = [jid for _, jid in sorted(waiting)]
            return order.index(job_id) + 1 if job_id in order else None

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; queued ones are cancelled, running ones finish (or are killed at exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)

    def stop_now(self, reason: str = "the server stopped while this job ran") -> None:
        """Stop at once: queued jobs are cancelled, running ones are marked ``interrupted`` with
        ``reason`` and their workers (this pool's own processes) killed. Nothing a job had not
        written is kept; its staging folder is swept when the workspace next opens."""
        with self._lock:
            jobs = [(jid, fut) for jid, fut in self._futures.items() if not fut.done()]
        for job_id, future in jobs:
            path = self._pending.get(job_id, (None, 0))[0]
            if future.cancel() or path is None:
                continue
            try:
                ws = Workspace(path)
                rec = load_record(ws, job_id)
            except InputError:
                continue
            if rec.get("status") in ACTIVE:
                rec.update(status="interrupted", finished=time.time(),
                           message=f"{reason}; the workspace is as it was: run it again")
                write_job(ws, rec)
        pool = self._pool
        if pool is not None:
            for pid in list(getattr(pool, "_processes", None) or {}):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            pool.shutdown(wait=False, cancel_futures=True)

    @classmethod
    def _stop_all_at_exit(cls) -> None:
        for runner in list(cls._instances):
            runner.stop_now()

    @classmethod
    def shutdown_all(cls) -> None:
        """Shut every runner of this process down and wait for their workers (tests)."""
        for runner in list(cls._instances):
            runner.shutdown(wait=True)


