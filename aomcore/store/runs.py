"""Training runs: the history of one training, as snapshots and metrics in a workspace.

A run folder (``W/runs/<id>/``, or any folder for ``run import --out``)::

    run.json        kind (train | retrain | import), arch, edits, config, the version it
                    trained from (parent) and the version it made, status, snapshots:
                    [{iteration, file, test_accuracy}]
    metrics.jsonl   one JSON line per training step: epoch, step, steps, loss, accuracy,
                    seconds (appended while training; a torn last line is ignored)
    snapshots/      iter00000000.safetensors … weights at those iterations
    monitor.npz     DeepEyes statistics (perplexity histogram, max activation, activation
                    frequency, filter labels) gathered by a
                    :class:`~aomcore.deepeyes.statistics.TrainingMonitor` from the training
                    mini-batches between consecutive snapshots, on a leading snapshot axis
                    (``snapshots`` = the iteration closing each window); rewritten at every
                    snapshot, so it can be watched while the model trains

Snapshots are evenly spaced over the run and always include iteration 0 (the weights
before the first step) and the last iteration (:func:`snapshot_schedule`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from ..base.atomic import atomic_path, write_json
from ..base.data import ImageDataset
from ..base.editing import Edit, rebuild
from ..base.errors import InputError
from ..base.loaded import LoadedModel
from ..base.models import apply_state_dict, load_state_dict, save_state_dict, weights_digest
from ..base.paths import inside
from ..base.training import evaluate
from ..deepeyes.statistics import DeepEyesSeries, load_deepeyes_npz, save_deepeyes_npz, stack_deepeyes
from .job_records import list_jobs
from .reads import parse_json, read_appended_lines, read_record
from .schema import RunFile, short, validate
from .workspace import register_sweeper

__all__ = ["DEFAULT_SNAPSHOTS", "RunView", "RunWriter", "list_runs", "mark_interrupted", "read_metrics", "read_run",
           "read_run_view", "resolve_run", "run_model", "run_snapshots", "snapshot_file", "snapshot_schedule"]

DEFAULT_SNAPSHOTS = 20
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


def snapshot_schedule(steps: int, n: int = DEFAULT_SNAPSHOTS) -> list[int]:
    """Iterations at which to keep weights: ``n`` evenly spaced over ``[0, steps]``, ends included.

    ``n = 0`` gives none; ``n = 1`` only the last iteration; ``n > steps + 1`` every iteration.
    """
    if n < 0:
        raise InputError("snapshots must be >= 0", expected=">= 0 (0 turns them off)", found=str(n))
    if n == 0 or steps < 0:
        return []
    if n == 1:
        return [steps]
    return sorted({round(i * steps / (n - 1)) for i in range(n)})


class RunWriter:
    """Records a run while it trains: metrics per step, snapshots on the schedule.

    Parameters
    ----------
    folder : path
        The run's folder (created; must not exist).
    kind : {"train", "retrain", "import"}
    info : dict
        What describes the run (arch, edits, config, parent version…); stored in run.json.
    schedule : list of int
        Iterations at which to keep a snapshot (see :func:`snapshot_schedule`).
    test_set : ImageDataset, optional
        Evaluated at each snapshot (test accuracy in run.json).
    device : torch device, default "cpu"
    """

    def __init__(self, folder: str | os.PathLike, kind: str, info: dict, schedule: list[int],
                 test_set: ImageDataset | None = None, device="cpu"):
        self.folder = Path(folder)
        (self.folder / "snapshots").mkdir(parents=True, exist_ok=False)
        self.schedule = set(schedule)
        self.test_set, self.device = test_set, device
        self.record = {"id": self.folder.name, "kind": kind, "status": "running", "created": time.time(),
                       "snapshots": [], **info}
        self.monitor = None
        self._windows: list[dict] = []
        self._window_ends: list[int] = []
        self._metrics = open(self.folder / "metrics.jsonl", "a")
        self._last_flush = 0.0
        write_json(self.folder / "run.json", self.record)

    @classmethod
    def in_workspace(cls, ws, kind: str, info: dict, schedule: list[int], **kwargs) -> RunWriter:
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(3)}"
        return cls(ws.runs_dir / run_id, kind, info, schedule, **kwargs)

    def attach(self, monitor) -> None:
        """Record ``monitor``'s statistics (a :class:`~aomcore.deepeyes.statistics.TrainingMonitor`) at each
        snapshot."""
        self.monitor = monitor

    def _save_monitor(self, step: int) -> None:
        self._windows.append(self.monitor.snapshot())
        self._window_ends.append(step)
        series = DeepEyesSeries(iterations=np.array(self._window_ends, dtype=np.int64),
                                layers=stack_deepeyes(self._windows), taps=dict(self.monitor.taps_))
        save_deepeyes_npz(self.folder / "monitor.npz", series,
                          {"source": "training mini-batches", "positions": self.monitor.positions,
                           "seed": self.monitor.seed, "bins": self.monitor.bins, "run": self.record["id"]})

    def on_step(self, step: int, model: nn.Module) -> None:
        """Call with the step just finished (0 before the first): keeps a snapshot when scheduled."""
        if step not in self.schedule:
            return
        if self.monitor is not None and step > 0 and self.monitor.batches_ > 0:
            self._save_monitor(step)
        path = self.folder / "snapshots" / f"iter{step:08d}.safetensors"
        with atomic_path(path) as tmp:
            save_state_dict(model, tmp, fmt="safetensors")
        entry = {"iteration": step, "file": f"snapshots/{path.name}"}
        if self.test_set is not None:
            entry["test_accuracy"] = evaluate(model, self.test_set, device=self.device).accuracy
        self.record["snapshots"].append(entry)
        write_json(self.folder / "run.json", self.record)

    def log(self, metrics: dict) -> None:
        """Append one step's metrics (flushed at most twice a second, and at the end)."""
        self._metrics.write(json.dumps(metrics) + "\n")
        now = time.monotonic()
        if now - self._last_flush > 0.5 or metrics.get("step") == metrics.get("steps"):
            self._metrics.flush()
            self._last_flush = now

    def finish(self, **fields) -> dict:
        """Mark the run done (with e.g. ``version=`` the version it made)."""
        self._metrics.close()
        self.record.update(status="done", finished=time.time(), **fields)
        write_json(self.folder / "run.json", self.record)
        return self.record

    def discard(self) -> None:
        """Remove the run (a cancelled or failed training leaves no trace)."""
        self._metrics.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def read_run(folder: str | os.PathLike) -> dict:
    """A run's ``run.json`` with its ``path``.

    Raises
    ------
    InputError
        Not a run folder, or a ``run.json`` that does not fit
        :class:`~aomcore.store.schema.RunFile` (the message names the field).
    """
    folder = Path(folder)
    name = f"{folder.parent.name}/{folder.name}/run.json"

    def load(path: Path) -> dict:
        record = parse_json(path, name)
        validate(RunFile, record, name)
        return record

    try:
        record = read_record(folder / "run.json", load)
    except FileNotFoundError:
        raise InputError("not a run folder", expected="a folder holding run.json", found=str(folder)) from None
    except OSError as exc:
        raise InputError(f"{name}: unreadable", expected="JSON", found=short(f"{folder}: {exc}")) from None
    return record | {"path": str(folder)}


#: The fields of a ``metrics.jsonl`` row that the pages read, and the JSON types each must have.
_METRICS_FIELDS = {"step": (int,), "steps": (int,), "loss": (int, float), "accuracy": (int, float)}


def _metrics_row(line: bytes) -> dict | None:
    """One ``metrics.jsonl`` line as a dict, or None when it is not JSON or lacks a field of :data:`_METRICS_FIELDS`."""
    try:
        row = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(row, dict) or not all(
            isinstance(row.get(name), kinds) and not isinstance(row.get(name), bool)
            for name, kinds in _METRICS_FIELDS.items()):
        return None
    return row


def read_metrics(folder: str | os.PathLike) -> list[dict]:
    """The run's per-step metrics, one dict per ``metrics.jsonl`` line, oldest first.

    A torn last line (a kill mid-write), lines that are not JSON objects and rows without an
    integer ``step`` and ``steps`` and a numeric ``loss`` and ``accuracy`` are skipped. Lines
    read by an earlier call are not parsed again (:func:`aomcore.store.reads.read_appended_lines`).
    A missing or unreadable file gives ``[]``.
    """
    try:
        rows = read_appended_lines(Path(folder) / "metrics.jsonl", _metrics_row)
    except OSError:
        return []
    return [dict(row) for row in rows]  # the kept rows stay as they were, whatever the caller does


def list_runs(ws) -> list[dict]:
    """The runs of a workspace (oldest first): finished ones and those whose job still runs.

    A run whose job died (server restart, SIGKILL, out of memory; marked ``interrupted``
    by :meth:`Workspace.sweep`) is left out: like a cancelled or failed one, it made
    nothing. A ``run.json`` that does not fit its schema is left out and reported by
    ``ws.problems()``.
    """
    runs = []
    for folder in sorted(ws.runs_dir.iterdir()) if ws.runs_dir.is_dir() else []:
        if folder.is_dir() and not folder.name.startswith(".") and (folder / "run.json").is_file():
            rel = f"runs/{folder.name}/run.json"
            try:
                runs.append(read_run(folder))
            except InputError as exc:
                ws.note_problem(rel, str(exc))
                continue
            ws.note_problem(rel, None)
    runs = [r for r in runs if r.get("status") != "interrupted"]
    if any(r.get("status") == "running" for r in runs):
        live = {j["id"] for j in list_jobs(ws) if j["status"] in ("queued", "running")}
        runs = [r for r in runs if r.get("status") != "running" or r.get("job") in live]
    return runs


def mark_interrupted(ws) -> list[str]:
    """Mark ``interrupted`` the runs whose ``run.json`` says ``running`` but whose job died.

    A sweeper of :meth:`Workspace.sweep <aomcore.store.workspace.Workspace.sweep>` (run
    when a workspace opens for writing). The job is the run's ``job`` field; it died when
    its record is no longer queued or running (:func:`~aomcore.store.job_records.list_jobs`
    tells a dead worker). Such runs are marked, not removed: their snapshots and metrics up
    to the kill stay readable by path, a job on another host that only looks dead loses
    nothing, and :func:`list_runs` leaves them out as before. A running run without a
    ``job`` (written outside a job, e.g. by a script using :class:`RunWriter`) is left alone.

    Returns
    -------
    list of str : the run folders marked, relative to the workspace.
    """
    running = []
    for run_json in ws.runs_dir.glob("*/run.json") if ws.runs_dir.is_dir() else []:
        try:
            record = json.loads(run_json.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            continue  # list_runs reports it
        if isinstance(record, dict) and record.get("status") == "running" and isinstance(record.get("job"), str):
            running.append((run_json, record))
    if not running:
        return []
    live = {j["id"] for j in list_jobs(ws) if j["status"] in ("queued", "running")}
    marked = []
    for run_json, record in running:
        if record["job"] in live:
            continue
        record.update(status="interrupted", finished=time.time(),
                      message="the job running it stopped (server restart, kill or out of memory)")
        try:
            write_json(run_json, record)
        except OSError:
            continue
        marked.append(run_json.parent.relative_to(ws.path).as_posix())
    return marked


register_sweeper("interrupted", mark_interrupted)


def resolve_run(ref: str, ws=None) -> Path:
    """A run folder from a path, or (with a workspace) a run id, a unique id prefix or ``latest``.

    Raises
    ------
    InputError
        No such run.
    """
    path = Path(ref).expanduser()
    if (path / "run.json").is_file():
        return path
    if ws is not None and _RUN_ID.match(ref):
        done = [r for r in list_runs(ws) if r.get("status") == "done"]
        if ref == "latest" and done:
            return Path(done[-1]["path"])
        matches = [Path(r["path"]) for r in list_runs(ws) if r["id"] == ref or r["id"].startswith(ref)]
        if len(matches) == 1:
            return matches[0]
    raise InputError("no such run", expected="a run folder (holding run.json)"
                     + (", a run id of the workspace or 'latest'" if ws is not None else ""), found=repr(ref))


@dataclass
class RunView:
    """What a run folder holds, read once.

    Attributes
    ----------
    record : dict
        ``run.json`` with ``path``.
    metrics : list of dict
        ``metrics.jsonl`` rows (epoch, step, steps, loss, accuracy, seconds).
    layers : dict of str to dict of str to ndarray
        ``monitor.npz`` per layer, arrays on a leading window axis (empty without one).
    windows : ndarray, (S,) int64
        The iteration closing each monitor window (empty without ``monitor.npz``).
    meta : dict
        ``monitor.npz``'s meta.
    """

    record: dict
    metrics: list[dict]
    layers: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    windows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    meta: dict = field(default_factory=dict)

    @property
    def snapshots(self) -> list[dict]:
        return list(self.record.get("snapshots", []))

    def window_at(self, iteration: int) -> int | None:
        """Index of the monitor window that closes at ``iteration``, or None."""
        hits = np.flatnonzero(self.windows == int(iteration))
        return int(hits[0]) if hits.size else None


def read_run_view(folder: str | os.PathLike) -> RunView:
    """Read a run folder (a missing or half-written ``monitor.npz`` gives no layers).

    Raises
    ------
    InputError
        Not a run folder.
    """
    folder = Path(folder)
    record = read_run(folder)
    view = RunView(record=record, metrics=read_metrics(folder))
    if (folder / "monitor.npz").is_file():
        try:
            layers, meta, windows = load_deepeyes_npz(folder / "monitor.npz")
        except InputError:
            return view
        view.layers, view.meta = layers, meta
        view.windows = np.asarray(windows if windows is not None else [], dtype=np.int64)
    return view


def snapshot_file(folder: str | os.PathLike, entry: dict) -> Path:
    """The weights file of a snapshot entry of ``run.json``, refused unless it lies inside the run folder.

    Raises
    ------
    InputError
        A ``file`` that is not a relative path inside ``folder`` (absolute, ``../``, a link out).
    """
    return inside(folder, entry.get("file") if isinstance(entry, dict) else None, "a snapshot's weights file")


def run_snapshots(folder: str | os.PathLike, record: dict) -> list[tuple[int, Path]]:
    """``(iteration, weights file)`` of every snapshot of a run, each file confined to the run folder.

    Raises
    ------
    InputError
        A snapshot entry without an integer iteration or with a file outside the folder.
    """
    out = []
    for entry in record.get("snapshots", []):
        iteration = entry.get("iteration") if isinstance(entry, dict) else None
        if not isinstance(iteration, int) or isinstance(iteration, bool) or not 0 <= iteration < 2**53:
            raise InputError("bad snapshot entry in run.json", expected="an integer iteration >= 0",
                             found=repr(iteration)[:100])
        out.append((iteration, snapshot_file(folder, entry)))
    return out


def run_model(record: dict, num_classes: int, input_shape, iteration: int | None = None,
              folder: str | os.PathLike | None = None) -> LoadedModel:
    """The run's architecture (with its edits), with the snapshot at ``iteration`` loaded when given.

    Parameters
    ----------
    record : dict
        The run's ``run.json`` (:func:`read_run`).
    num_classes, input_shape
        What the model is built for (the run's own, when it records them).
    iteration : int, optional
        The snapshot whose weights to load (None: the architecture only, arbitrary weights).
    folder : path, optional
        The run folder (default ``record["path"]``).

    Raises
    ------
    InputError
        No snapshot at ``iteration``, a snapshot file outside the run folder, or weights
        that do not fit.
    """
    folder = Path(folder or record["path"])
    if "num_classes" in record and "input_shape" in record:  # an import says what it was built for
        num_classes, input_shape = record["num_classes"], record["input_shape"]
    edits = [Edit.from_dict(e) for e in record.get("edits", [])]
    model = rebuild(record["arch"], num_classes, input_shape, edits)
    if iteration is None:
        return LoadedModel(arch=record["arch"], model=model.eval(), digest="", source=str(folder), edits=edits)
    files = dict(run_snapshots(folder, record))
    if int(iteration) not in files:
        raise InputError("no snapshot at that iteration", expected=", ".join(map(str, files)) or "a run with snapshots",
                         found=str(iteration))
    apply_state_dict(model, load_state_dict(files[int(iteration)]))
    return LoadedModel(arch=record["arch"], model=model.eval(), digest=weights_digest(model),
                       source=f"run {record.get('id')}, iteration {iteration}", edits=edits)
