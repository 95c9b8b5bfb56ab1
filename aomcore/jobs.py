"""Background jobs: every long operation runs in a worker process and writes its state to disk.

A job belongs to a workspace (:mod:`aomcore.workspace`); its record ``W/jobs/<id>.json``
holds the kind, the parameters, the status and the progress, so every browser tab, the
CLI's ``workspace show`` and a restarted server see it. Statuses:

===========  ==========================================================================
queued       waiting for a worker (the queue is bounded: ``AOMSCOPE_MAX_JOBS`` at once)
running      in a worker process; ``progress`` = {done, total, text}
done         finished; ``result`` says what it made (a version, a result key)
failed       ``message`` says why; the workspace is as it was before the job
cancelled    stopped on request; the workspace is as it was before the job
interrupted  the process that ran it died (server restart, SIGKILL, out of memory)
===========  ==========================================================================

Jobs run in a :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start
method (:class:`JobRunner`), so leaving a page, reloading or closing a tab never stops
them, and a crash or an out-of-memory kill takes down only its worker. Cancel is
cooperative (a ``<id>.cancel`` file the job polls at every training step or batch) with a
hard kill after a grace period. A job writes its product (a version, a result) into the
workspace only at its end, atomically, so a cancelled, failed or interrupted job leaves
nothing half-written. The CLI runs the same job functions in its own process
(:func:`run_inline`).

Job kinds are the functions in :data:`JOB_KINDS`; each takes ``(workspace, params,
context)`` and returns a JSON-serialisable result.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import math
import multiprocessing
import os
import secrets
import signal
import socket
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from pathlib import Path

from .allocator import release_freed_memory, reuse_freed_memory
from .atomic import write_json
from .embedding_jobs import job_deepeyes, job_embed
from .errors import InputError
from .monitor_jobs import job_maps_snapshot
from .training import Cancelled
from .trails_jobs import job_trails

__all__ = ["ACTIVE", "JOB_KINDS", "JobContext", "JobRunner", "list_jobs", "read_job", "request_cancel",
           "run_inline", "submit_record"]

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled", "interrupted")
_HOST = socket.gethostname()


class Interrupted(Exception):
    """The process that owns the job is gone (the worker's parent died)."""


# --- records ----------------------------------------------------------------------------
def _path(ws, job_id: str) -> Path:
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


def _effective(record: dict) -> dict:
    """The record with ``interrupted`` in place of a queued/running job whose owner died."""
    if record.get("status") in ACTIVE:
        owner_alive = record.get("host") == _HOST and _alive(record.get("pid"))
        worker = record.get("worker_pid")
        worker_alive = worker is None or (record.get("host") == _HOST and _alive(worker))
        if not owner_alive or (record["status"] == "running" and not worker_alive):
            record = record | {"status": "interrupted",
                               "message": "the process running it stopped (server restart, kill or out of memory)"}
    return record


def read_job(ws, job_id: str) -> dict:
    """One job's record, with its effective status.

    Raises
    ------
    InputError
        No such job in this workspace.
    """
    if not isinstance(job_id, str) or not job_id.isalnum():
        raise InputError("malformed job id", expected="letters and digits", found=repr(job_id))
    try:
        return _effective(json.loads(_path(ws, job_id).read_text()))
    except FileNotFoundError:
        raise InputError("no such job in this workspace", expected="a job id from `workspace show`",
                         found=job_id) from None
    except json.JSONDecodeError as exc:
        raise InputError("unreadable job record", expected="JSON", found=str(exc)) from None


def list_jobs(ws) -> list[dict]:
    """Every job of the workspace, oldest first, with effective statuses."""
    jobs = []
    for path in ws.jobs_dir.glob("*.json") if ws.jobs_dir.is_dir() else []:
        try:
            jobs.append(_effective(json.loads(path.read_text())))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(jobs, key=lambda j: j.get("created", 0))


def _write(ws, record: dict) -> None:
    write_json(_path(ws, record["id"]), record)


def submit_record(ws, kind: str, params: dict, owner_pid: int | None = None, user: str | None = None) -> dict:
    """Write a new ``queued`` job record (the caller then runs it) and return it.

    Raises
    ------
    InputError
        Unknown kind.
    """
    if kind not in JOB_KINDS:
        raise InputError("unknown job kind", expected=", ".join(JOB_KINDS), found=repr(kind))
    ws.check_writable()
    record = {"id": secrets.token_hex(6), "kind": kind, "params": params, "status": "queued",
              "created": time.time(), "host": _HOST, "pid": owner_pid or os.getpid(), "user": user,
              "progress": {"done": 0, "total": 0, "text": "queued"}, "message": None, "result": None}
    ws.jobs_dir.mkdir(exist_ok=True)
    _write(ws, record)
    return record


def request_cancel(ws, job_id: str) -> None:
    """Ask a job to stop: it stops at its next step, leaving the workspace as it was."""
    ws.check_writable()
    read_job(ws, job_id)
    (ws.jobs_dir / f"{job_id}.cancel").touch()


# --- the worker side ----------------------------------------------------------------------
class JobContext:
    """What a job function gets to report progress and notice a cancel.

    ``is_set()`` makes it usable wherever a cancel event is expected (e.g.
    :func:`aomcore.training.train`); :meth:`progress` raises :class:`Cancelled` when a
    cancel was requested, so loops that report progress stop there.
    """

    def __init__(self, ws, record: dict, echo: Callable[[int, int, str], None] | None = None):
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
        if self.echo is not None:
            self.echo(done, total, text)
        now = time.monotonic()
        if now - self._last_write > 0.3 or done >= total:
            self._last_write = now
            self.record["progress"] = {"done": int(done), "total": int(total), "text": text}
            _write(self.ws, self.record)


def _run(ws_path: str, job_id: str, echo: Callable[[int, int, str], None] | None = None) -> dict:
    """Worker entry point: run one job to a final status (never raises)."""
    from .workspace import Workspace

    ws = Workspace(ws_path)
    record = json.loads(_path(ws, job_id).read_text())
    if record["status"] != "queued" or (ws.jobs_dir / f"{job_id}.cancel").exists():
        record.update(status="cancelled", finished=time.time())
        _write(ws, record)
        return record
    record.update(status="running", started=time.time(), worker_pid=os.getpid())
    _write(ws, record)
    ctx = JobContext(ws, record, echo)
    try:
        result = JOB_KINDS[record["kind"]](ws, record["params"], ctx)
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
    _write(ws, record)
    (ws.jobs_dir / f"{job_id}.cancel").unlink(missing_ok=True)
    release_freed_memory()  # an idle worker keeps no batch-sized heap
    return record


def _init_worker(gigabytes: float | None) -> None:
    """Worker initializer: a lower CPU priority than the server (pages stay responsive while jobs
    run), the process's data segment (heap and private mappings) bounded, and freed activation
    memory kept for the next batch (:func:`~aomcore.allocator.reuse_freed_memory`)."""
    reuse_freed_memory()
    try:
        os.nice(10)
    except OSError:
        pass
    if gigabytes:
        import resource

        limit = int(gigabytes * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def run_inline(ws, kind: str, params: dict, echo: Callable[[int, int, str], None] | None = None) -> dict:
    """Run a job in this process (the CLI), recorded in the workspace like any other.

    Returns the final record; raises :class:`InputError` with the job's message when it
    failed, and re-raises ``KeyboardInterrupt``.
    """
    record = submit_record(ws, kind, params)
    try:
        final = _run(str(ws.path), record["id"], echo)
    except KeyboardInterrupt:
        rec = json.loads(_path(ws, record["id"]).read_text())
        rec.update(status="cancelled", message="interrupted (Ctrl-C)", finished=time.time())
        _write(ws, rec)
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

    def __init__(self, max_jobs: int | None = None, memory_gb: float | None = None, kill_after: float = 15.0):
        JobRunner._instances.add(self)
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
                                                initializer=_init_worker, initargs=(self.memory_gb,))
        return self._pool

    def submit(self, ws, kind: str, params: dict, user: str | None = None, per_owner_limit: int | None = None,
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
            future = self._executor().submit(_run, str(ws.path), job_id)
            self._futures[job_id], self._owners[job_id] = future, key
            self._pending[job_id] = (str(ws.path), time.time())
        future.add_done_callback(lambda f: self._finished(ws, job_id, f))
        return record

    def _finished(self, ws, job_id: str, future: cf.Future) -> None:
        """When a worker died (out of memory, killed), write a final status for its job."""
        if future.cancelled():
            rec = json.loads(_path(ws, job_id).read_text())
            rec.update(status="cancelled", message="cancelled before it started", finished=time.time())
            _write(ws, rec)
            return
        exc = future.exception()
        if exc is None:
            return
        try:
            rec = json.loads(_path(ws, job_id).read_text())
        except (OSError, json.JSONDecodeError):
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
            _write(ws, rec)

    def cancel(self, ws, job_id: str) -> None:
        """Cancel a job: dequeue it, or ask it to stop and kill its worker if it does not."""
        request_cancel(ws, job_id)
        future = self._futures.get(job_id)
        if future is not None and future.cancel():
            return
        threading.Timer(self.kill_after, self._kill_if_running, args=(ws, job_id)).start()

    def _kill_if_running(self, ws, job_id: str) -> None:
        try:
            rec = read_job(ws, job_id)
        except InputError:
            return
        if rec["status"] == "running" and rec.get("worker_pid"):
            try:
                os.kill(rec["worker_pid"], signal.SIGKILL)
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
                except (OSError, json.JSONDecodeError, KeyError):
                    continue
                if status == "queued":
                    waiting.append((submitted, jid))
            order = [jid for _, jid in sorted(waiting)]
            return order.index(job_id) + 1 if job_id in order else None

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking jobs; queued ones are cancelled, running ones finish (or are killed at exit)."""
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)

    @classmethod
    def shutdown_all(cls) -> None:
        """Shut every runner of this process down and wait for their workers (tests)."""
        for runner in list(cls._instances):
            runner.shutdown(wait=True)


# --- the job kinds ------------------------------------------------------------------------
def _steps(n_images: int, config) -> int:
    return config.epochs * math.ceil(n_images / config.batch_size)


def _train_progress(ctx: JobContext, run, label: str) -> Callable[[dict], None]:
    def report(m: dict) -> None:
        run.log(m)
        ctx.progress(m["step"], m["steps"], f"{label}: epoch {m['epoch']}, step {m['step']}/{m['steps']}, "
                                            f"loss {m['loss']:.3f}")
    return report


def _monitor(run, train_set, p: dict) -> Callable:
    """A factory of the DeepEyes monitor of a training (none with ``monitor: false`` or no snapshots)."""
    def build(model):
        if not p.get("monitor", True) or not run.schedule:
            return None
        from .deepeyes import TrainingMonitor

        monitor = TrainingMonitor(model, None, train_set.num_classes, train_set.input_shape,
                                  positions=p.get("positions", 10), seed=p.get("seed", 0))
        run.attach(monitor)
        return monitor
    return build


def _job_train(ws, p: dict, ctx: JobContext) -> dict:
    """Train a zoo model from scratch on the workspace's train split → a new root version and a run."""
    import torch

    from .models import build_model
    from .runs import RunWriter, snapshot_schedule
    from .training import TrainConfig, train
    from .versions import measure

    train_set, test_set = ws.load_split("train"), ws.load_split("test")
    config = TrainConfig(**p["config"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(p["arch"], train_set.num_classes, train_set.input_shape)
    schedule = snapshot_schedule(_steps(len(train_set), config), p.get("snapshots", 20))
    run = RunWriter.in_workspace(ws, "train", {"arch": p["arch"], "edits": [], "config": p["config"],
                                               "parent": None, "job": ctx.job_id},
                                 schedule, test_set=test_set, device=p.get("device", "auto"))
    try:
        start = time.perf_counter()
        train(model, train_set, config, device=p.get("device", "auto"), cancel=ctx, on_step=run.on_step,
              progress=_train_progress(ctx, run, "training"), monitor=_monitor(run, train_set, p)(model))
        seconds = time.perf_counter() - start
        model = model.cpu().eval()
        ctx.progress(1, 1, "measuring accuracy, parameters and FLOPs")
        metrics = measure(model, test_set, p.get("device", "auto"))
        run.finish()
    except BaseException:
        run.discard()
        raise
    record = ws.add_version(model, parent=None, edits=[], metrics=metrics, arch=p["arch"],
                            note=f"trained here: {p['arch']}, {config.epochs} epoch(s)",
                            num_classes=train_set.num_classes, input_shape=train_set.input_shape,
                            classes=train_set.classes, retrain_seconds=seconds, retrain_config=p["config"],
                            run=run.record["id"])
    return {"version": record["id"], "run": run.record["id"]}


def _loaded(ws, version_id: int):
    from .editing import Edit
    from .workflow import LoadedModel

    record = ws.version(version_id)
    return LoadedModel(arch=ws.state()["arch"], model=ws.load_version(version_id), digest=record["digest"],
                       source=f"v{version_id}", edits=[Edit.from_dict(e) for e in record["edits"]])


def _job_maps(ws, p: dict, ctx: JobContext) -> dict:
    """The maps of a version's layers over a split, into the workspace's content-keyed results."""
    from .workflow import cached_maps, maps_cache_key

    loaded = _loaded(ws, p["version"])
    data = ws.load_split(p["split"])
    start = time.perf_counter()
    maps, hit = cached_maps(loaded, data, p["layers"], p["threshold"], p.get("batch_size", 256),
                            p.get("device", "auto"), cache=ws.results_cache,
                            progress=lambda d, t: ctx.progress(d, t, f"counting activations: {d:,} / {t:,} images"))
    key = maps_cache_key(loaded, data, p["layers"], p["threshold"], p.get("batch_size", 256))
    ws.record_result({"kind": "maps", "key": key, "digest": loaded.digest, "version": p["version"],
                      "layers": list(maps), "split": p["split"], "threshold": p["threshold"],
                      "seconds": time.perf_counter() - start, "from_cache": hit, "n_images": len(data),
                      "dataset": data.identity()})
    return {"key": key}


def _job_retrain(ws, p: dict, ctx: JobContext) -> dict:
    """Edit a version, retrain with the paper's freezing, → a child version and a run."""
    from .editing import Edit
    from .runs import RunWriter, snapshot_schedule
    from .training import TrainConfig
    from .versions import Version, edit_and_retrain

    parent_rec = ws.version(p["parent"])
    parent = Version(id=p["parent"], parent=parent_rec["parent"],
                     edits=[Edit.from_dict(e) for e in parent_rec["edits"]], model=ws.load_version(p["parent"]),
                     digest=parent_rec["digest"], metrics=parent_rec["metrics"])
    edit = Edit.from_dict(p["edit"])
    train_set, test_set = ws.load_split("train"), ws.load_split("test")
    config = TrainConfig(**p["config"])
    schedule = snapshot_schedule(_steps(len(train_set), config), p.get("snapshots", 20))
    run = RunWriter.in_workspace(ws, "retrain", {"arch": ws.state()["arch"],
                                                 "edits": [*parent_rec["edits"], edit.to_dict()],
                                                 "config": p["config"], "freeze": p["freeze"],
                                                 "parent": p["parent"], "job": ctx.job_id},
                                 schedule, test_set=test_set, device=p.get("device", "auto"))
    try:
        version = edit_and_retrain(parent, edit, -1, train_set, test_set, p["freeze"], config,
                                   p.get("device", "auto"), progress=_train_progress(ctx, run, "retraining"),
                                   cancel=ctx, on_step=run.on_step, monitor=_monitor(run, train_set, p))
        run.finish()
    except BaseException:
        run.discard()
        raise
    record = ws.add_version(version.model, parent=p["parent"], edits=version.edits, metrics=version.metrics,
                            note=version.note, arch=ws.state()["arch"], num_classes=train_set.num_classes,
                            input_shape=train_set.input_shape, classes=train_set.classes,
                            retrain_seconds=version.retrain_seconds, retrain_config=p["config"] | {
                                "freeze": p["freeze"]}, run=run.record["id"], make_current="if_unmoved")
    return {"version": record["id"], "run": run.record["id"]}


def _job_experiment(ws, p: dict, ctx: JobContext) -> dict:
    """The selectivity experiment (Sec. V-C) of a version's layer: maps on train, accuracies on test."""
    from .workflow import cached_experiment, cached_maps

    loaded = _loaded(ws, p["version"])
    train_set, test_set = ws.load_split("train"), ws.load_split("test")
    device = p.get("device", "auto")
    maps, _ = cached_maps(loaded, train_set, [p["layer"]], 0.0, device=device, cache=ws.results_cache,
                          progress=lambda d, t: ctx.progress(d, 2 * t, f"maps of the train split: {d:,}/{t:,}"))
    rows, _ = cached_experiment(loaded, maps[p["layer"]], test_set, device=device, cache=ws.results_cache,
                                progress=lambda d, t: ctx.progress(t + d, 2 * t, f"evaluating: pass {d} of {t}"))
    key = f"{loaded.digest}:{p['layer']}:{test_set.digest}"
    ws.record_result({"kind": "experiment", "key": key, "digest": loaded.digest, "version": p["version"],
                      "layer": p["layer"], "tap": maps[p["layer"]].tap, "rows": rows})
    return {"key": key}


#: Every job kind: the AOM workflow's, then DeepEyes' and Rauber et al.'s views.
JOB_KINDS: dict[str, Callable] = {
    "train": _job_train, "maps": _job_maps, "retrain": _job_retrain, "experiment": _job_experiment,
    "deepeyes": job_deepeyes, "embed": job_embed, "maps_snapshot": job_maps_snapshot, "trails": job_trails,
}
