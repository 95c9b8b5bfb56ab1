"""Workspaces: one analysis on disk, shared by the CLI and the dashboard.

The paper's workflow (Garcia et al. 2019, Fig. 1: train → maps → look → edit → retrain →
compare → undo) is a history; a workspace keeps it in a folder of plain files::

    W/
      workspace.json          schema, name, owner, dataset spec + preprocessing, architecture,
                              current version, kernel selection and group cuts, result index
      .lock                   a filelock: every read-modify-write of workspace.json holds it
      versions/v3/            version.json (parent, cumulative edit list, metrics, retrain
                              config and time, run) + weights.safetensors; a version folder
                              appears by one rename, complete, or not at all
      runs/<id>/              a training run: run.json, metrics.jsonl, snapshots/*.safetensors
                              (see :mod:`aomcore.store.runs`)
      results/maps/<key>.npz  content-keyed results (:class:`aomcore.base.cache.DiskCache`)
      jobs/<id>.json          background jobs and their state (see :mod:`aomcore.jobs.engine`)

Files are JSON, safetensors and npz (never pickles); every write is atomic
(:mod:`aomcore.base.atomic`), so a SIGKILL at any point leaves a workspace that opens with
every version finished before the kill. A workspace folder can be zipped
(:func:`export_zip`) and opened on another machine (:func:`import_zip`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import filelock
from torch import nn

from ..aom.retrain import measure
from ..base.atomic import write_json
from ..base.cache import DiskCache
from ..base.data import ImageDataset, Preprocessing, load_dataset
from ..base.editing import Edit, rebuild_traced
from ..base.errors import InputError
from ..base.loaded import LoadedModel
from ..base.models import apply_state_dict, load_state_dict, save_state_dict, weights_digest
from ..base.training import check_model_fits
from .reads import parse_json, read_record
from .schema import VersionFile, WorkspaceFile, short, validate

__all__ = ["SCHEMA_VERSION", "Workspace", "default_home", "default_root", "list_workspaces", "open_by_id",
           "register_sweeper"]

SCHEMA_VERSION = 1
HOME_ENV = "AOMSCOPE_HOME"
WORKSPACE_FILE = "workspace.json"
_FILE = WORKSPACE_FILE
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_VERSION_DIR = re.compile(r"^v(\d+)$")
STAGING_MAX_AGE = 3600.0  # seconds: a hidden staging folder older than this was left by a killed writer
UPLOADS_MAX_AGE = 86400.0  # seconds: staged uploads (checkpoints for a run import) are kept a day
_SWEEP_EVERY = 600.0  # seconds between two sweeps of one workspace by one process
_swept: dict[Path, float] = {}
_SWEEPERS: dict[str, Callable[[Workspace], list[str]]] = {}
_log = logging.getLogger(__name__)


def default_home() -> Path:
    """``$AOMSCOPE_HOME``, else ``$XDG_DATA_HOME/aomscope``, else ``~/.local/share/aomscope``."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "aomscope"


def default_root() -> Path:
    """Where new workspaces go: ``default_home() / "workspaces"``."""
    return default_home() / "workspaces"


class Workspace:
    """An open workspace folder.

    Parameters
    ----------
    path : path
        A folder holding ``workspace.json``.
    read_only : bool, default False
        Refuse every change (a workspace another user shared read-only): writes raise
        :class:`InputError`.
    keep_loaded : bool, default False
        Keep the splits and version models this object loads, so one command (the CLI)
        loads each once; off for long-lived processes such as the server.

    Every file is checked against its schema when it is read (:mod:`aomcore.store.schema`).
    A bad ``workspace.json`` refuses the workspace; a bad version, run or job record is left
    out of the listings and reported by :meth:`problems`, so the rest still opens. Opened
    for writing, the workspace is swept of what killed processes left (:meth:`sweep`).

    Raises
    ------
    InputError
        Not a workspace folder, an unreadable or invalid ``workspace.json`` (the message
        names the field), or a newer schema.
    """

    def __init__(self, path: str | os.PathLike, read_only: bool = False, keep_loaded: bool = False,
                 data_root: str | os.PathLike | None = None):
        self.path = Path(path).expanduser().resolve()
        self.read_only = read_only
        #: Where this process finds the dataset's files (the CLI's ``--data-root``), before the root
        #: the workspace recorded (none, or another machine's); never written to the workspace.
        self.data_root = data_root
        self._kept: dict | None = {} if keep_loaded else None
        self._problems: dict[str, str] = {}
        self._read()
        if not read_only and time.monotonic() - _swept.get(self.path, -_SWEEP_EVERY) >= _SWEEP_EVERY:
            _swept[self.path] = time.monotonic()
            self.sweep()

    # --- creation -------------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike | None = None, *, name: str, dataset: str,
               data_root: str | None = None, prep: Preprocessing | None = None, arch: str | None = None,
               owner: str | None = None, path: str | os.PathLike | None = None) -> Workspace:
        """Make a new workspace and return it.

        Parameters
        ----------
        root : path, optional
            Parent folder (default :func:`default_root`); the workspace gets an unguessable
            folder name (its id, also the capability token of a shared deployment).
        name : str
            Shown in the picker; can be renamed.
        dataset, data_root, prep
            The dataset spec (``digits``, ``mnist``, ``npz:PATH``…), its data root and
            preprocessing; fixed for the workspace's life.
        arch : str, optional
            Architecture spec; set by the first version.
        owner : str, optional
            The signed-in user the workspace belongs to (shared deployments).
        path : path, optional
            An explicit folder instead of ``root/<id>`` (the CLI's ``--workspace DIR``).
        """
        if path is None:
            folder = Path(root or default_root()).expanduser() / secrets.token_urlsafe(16)
        else:
            folder = Path(path).expanduser()
        if (folder / _FILE).exists():
            raise InputError("a workspace already exists there", expected="a new folder", found=str(folder))
        try:
            for sub in ("versions", "runs", "results", "jobs"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError("cannot create the workspace folder", expected="a writable location",
                             found=f"{folder}: {exc.strerror}") from None
        prep = prep or Preprocessing()
        state = {"schema": SCHEMA_VERSION, "name": name, "created": time.time(), "owner": owner, "grants": [],
                 "dataset": {"spec": dataset, "data_root": data_root, "prep": prep.to_dict()},
                 "arch": arch, "num_classes": None, "input_shape": None, "classes": None,
                 "current_version": None, "selection": {}, "n_groups": {}, "results": []}
        write_json(folder / _FILE, state)
        return cls(folder)

    # --- state ----------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.path.name

    def _read(self) -> dict:
        """``workspace.json``, checked against :class:`~aomcore.store.schema.WorkspaceFile`.

        A ``current_version`` whose folder is missing reads as None (noted in :meth:`problems`).
        """
        try:
            state = read_record(self.path / _FILE, self._load_state)
        except FileNotFoundError:
            raise InputError("not a workspace folder", expected=f"a folder holding {_FILE}",
                             found=str(self.path)) from None
        except OSError as exc:
            raise InputError(f"unreadable {_FILE}", expected="JSON", found=short(f"{self.path}: {exc}")) from None
        current = state.get("current_version")
        if current is not None and not (self.path / "versions" / f"v{current}" / "version.json").is_file():
            self.note_problem(_FILE, f"{_FILE}: current_version: no version {current}; none is current")
            state["current_version"] = None
        else:
            self.note_problem(_FILE, None)
        return state

    def _load_state(self, path: Path) -> dict:
        state = parse_json(path, _FILE)
        schema = state.get("schema") if isinstance(state, dict) else None
        if isinstance(schema, int) and not isinstance(schema, bool) and schema > SCHEMA_VERSION:
            raise InputError("unsupported workspace schema", expected=f"schema <= {SCHEMA_VERSION}",
                             found=f"{schema!r} in {self.path / _FILE}")
        validate(WorkspaceFile, state, _FILE)
        return state

    def note_problem(self, file: str, message: str | None) -> None:
        """Record that ``file`` (relative to the workspace) was left out, and why (see :meth:`problems`).

        ``message=None`` clears a problem noted before (the file reads well now).
        """
        if message is None:
            self._problems.pop(file, None)
            return
        if self._problems.get(file) != message:
            _log.warning("%s: %s", self.path.name, message)
        self._problems[file] = message

    def problems(self) -> list[str]:
        """Why files were left out when this object read them: one message each, naming file and field.

        Filled by :meth:`state`, :meth:`versions`, :func:`~aomcore.store.runs.list_runs` and
        :func:`~aomcore.store.job_records.list_jobs`; empty for a sound workspace.
        """
        return [self._problems[k] for k in sorted(self._problems)]

    def sweep(self, now: float | None = None) -> dict[str, list[str]]:
        """Clear what killed processes left behind; done when the workspace opens for writing.

        - hidden staging folders (``versions/.staging-*``, ``runs/.*.staging-*``) older than
          :data:`STAGING_MAX_AGE`: a writer killed before its one rename (they never hold a
          finished version or run);
        - staged uploads (``uploads/*``) older than :data:`UPLOADS_MAX_AGE`;
        - what the sweepers registered by higher floors clear (:func:`register_sweeper`):
          runs still ``running`` whose job died are marked ``interrupted``
          (:func:`aomcore.store.runs.mark_interrupted`).

        Parameters
        ----------
        now : float, optional
            The time to age folders against (default: now).

        Returns
        -------
        dict : ``{"staging": [...], "uploads": [...], "interrupted": [...]}``, the paths
        (relative to the workspace) removed or marked, one list per sweeper.
        """
        done: dict[str, list[str]] = {"staging": [], "uploads": []} | {name: [] for name in _SWEEPERS}
        if self.read_only:
            return done
        now = time.time() if now is None else now
        for pattern, age, what in (("versions/.staging-*", STAGING_MAX_AGE, "staging"),
                                   ("runs/.*.staging-*", STAGING_MAX_AGE, "staging"),
                                   ("uploads/*", UPLOADS_MAX_AGE, "uploads")):
            for entry in self.path.glob(pattern):
                try:
                    old = now - entry.lstat().st_mtime > age
                except OSError:
                    continue
                if old and not entry.is_symlink() and entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                    done[what].append(entry.relative_to(self.path).as_posix())
        for name, sweeper in _SWEEPERS.items():
            done[name] = sweeper(self)
        return done

    def lock(self, timeout: float = 60.0) -> filelock.FileLock:
        """The workspace's lock (re-entrant within a thread): hold it for read-modify-write."""
        return filelock.FileLock(self.path / ".lock", timeout=timeout)

    def state(self) -> dict:
        """``workspace.json`` as a dict (a fresh read; cheap)."""
        return self._read()

    def check_writable(self) -> None:
        """Raise :class:`InputError` when this workspace is open read-only."""
        if self.read_only:
            raise InputError("this workspace is shared with you read-only",
                             expected="a workspace of your own to change anything", found=self.path.name)

    def modify(self, change: Callable[[dict], object]) -> dict:
        """Apply ``change(state)`` under the lock and write the state back atomically."""
        self.check_writable()
        with self.lock():
            state = self._read()
            change(state)
            write_json(self.path / _FILE, state)
            return state

    def update(self, **fields) -> dict:
        return self.modify(lambda s: s.update(fields))

    @property
    def name(self) -> str:
        return self.state()["name"]

    @property
    def owner(self) -> str | None:
        return self.state().get("owner")

    # --- dataset --------------------------------------------------------------------
    def preprocessing(self, state: dict | None = None) -> Preprocessing:
        p = (state or self.state())["dataset"]["prep"]
        return Preprocessing(mean=tuple(p["mean"]) if p.get("mean") else None,
                             std=tuple(p["std"]) if p.get("std") else None,
                             channels=p.get("channels"), resize=p.get("resize"), transform=p.get("transform"),
                             per_class=p.get("per_class"), skip_unreadable=bool(p.get("skip_unreadable")))

    def load_split(self, split: str) -> ImageDataset:
        """One split of the workspace's dataset, preprocessed as recorded."""
        if self._kept is not None and ("split", split) in self._kept:
            return self._kept[("split", split)]
        state = self.state()
        d = state["dataset"]
        dataset = load_dataset(d["spec"], split, self.data_root or d.get("data_root"), self.preprocessing(state))
        if self._kept is not None:
            self._kept[("split", split)] = dataset
        return dataset

    # --- versions -------------------------------------------------------------------
    def versions(self) -> dict[int, dict]:
        """Every finished version's record, by id (ascending).

        A ``version.json`` that is unreadable or does not fit
        :class:`~aomcore.store.schema.VersionFile` (or whose ``id`` is not its folder's) is
        left out and reported by :meth:`problems`.
        """
        out = {}
        folder = self.path / "versions"
        for entry in sorted(folder.iterdir(), key=lambda p: p.name) if folder.is_dir() else []:
            m = _VERSION_DIR.match(entry.name)
            if not m or not (entry / "version.json").is_file():
                continue
            rel = f"versions/{entry.name}/version.json"
            try:
                try:
                    record = read_record(entry / "version.json", functools.partial(_load_version, rel=rel))
                except OSError as exc:
                    raise InputError(f"{rel}: unreadable", expected="JSON", found=short(str(exc))) from None
            except InputError as exc:  # never half-written (atomic), but damaged or crafted
                self.note_problem(rel, str(exc))
                continue
            self.note_problem(rel, None)
            out[int(m.group(1))] = record
        return dict(sorted(out.items()))

    def version(self, version_id: int) -> dict:
        versions = self.versions()
        if version_id not in versions:
            raise InputError("no such version", expected=f"one of {list(versions)}", found=str(version_id))
        return versions[version_id]

    @property
    def current_version(self) -> int | None:
        return self.state().get("current_version")

    def set_current(self, version_id: int) -> None:
        """Make ``version_id`` current (revert / undo); refuses unknown ids."""
        self.version(version_id)
        self.update(current_version=int(version_id))

    def add_version(self, model: nn.Module, *, parent: int | None, edits: list[Edit], metrics: dict, note: str,
                    arch: str, num_classes: int, input_shape: tuple, classes: list[str] | None = None,
                    retrain_seconds: float = 0.0, retrain_config: dict | None = None, run: str | None = None,
                    make_current: str = "always") -> dict:
        """Write a new version (weights + record) and return its record.

        The folder is written under a temporary name and renamed into ``versions/vN``
        while holding the lock, so it appears complete or not at all.

        Parameters
        ----------
        make_current : {"always", "if_unmoved", "never"}
            ``if_unmoved``: the new version becomes current only if the current version is
            still ``parent`` (a retrain that finishes after the user reverted elsewhere
            does not undo the revert).
        """
        if make_current not in ("always", "if_unmoved", "never"):
            raise ValueError(f"make_current must be always, if_unmoved or never, not {make_current!r}")
        self.check_writable()
        staging = self.path / "versions" / f".staging-{secrets.token_hex(6)}"
        staging.mkdir(parents=True)
        try:
            save_state_dict(model, staging / "weights.safetensors", fmt="safetensors")
            record = {"parent": parent, "edits": [e.to_dict() for e in edits], "digest": weights_digest(model),
                      "metrics": metrics, "note": note, "created": time.time(), "retrain_seconds": retrain_seconds,
                      "retrain_config": retrain_config, "run": run}
            with self.lock():
                state = self._read()
                if state.get("arch") not in (None, arch):
                    raise InputError("this workspace holds another architecture", expected=state["arch"],
                                     found=arch)
                existing = self.versions()
                new_id = max(existing, default=-1) + 1
                record["id"] = new_id
                write_json(staging / "version.json", record)
                os.rename(staging, self.path / "versions" / f"v{new_id}")
                state.update(arch=arch, num_classes=num_classes, input_shape=list(input_shape),
                             classes=classes or state.get("classes"))
                if make_current == "always" or (make_current == "if_unmoved"
                                                and state.get("current_version") in (parent, None)):
                    state["current_version"] = new_id
                write_json(self.path / _FILE, state)
            return record
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def weights_path(self, version_id: int) -> Path:
        return self.path / "versions" / f"v{int(version_id)}" / "weights.safetensors"

    def loaded(self, version_id: int) -> LoadedModel:
        """The version's model with what identifies it: the one way a version becomes a model.

        The architecture is rebuilt from the workspace's spec and the version's edit list
        (:func:`~aomcore.base.editing.rebuild`) and its weights loaded; on the CPU, in eval mode.

        Raises
        ------
        InputError
            Unknown version, or weights that do not fit the rebuilt architecture.
        """
        record = self.version(version_id)
        key = ("version", int(version_id), record["digest"])
        if self._kept is not None and key in self._kept:
            return self._kept[key]
        state = self.state()
        edits = [Edit.from_dict(e) for e in record["edits"]]
        model, lineage = rebuild_traced(state["arch"], state["num_classes"], state["input_shape"], edits)
        apply_state_dict(model, load_state_dict(self.weights_path(version_id)))
        loaded = LoadedModel(arch=state["arch"], model=model.eval(), digest=record["digest"],
                             source=f"{self.path} v{version_id}", edits=edits, lineage=lineage)
        if self._kept is not None:
            self._kept[key] = loaded
        return loaded

    def load_version(self, version_id: int) -> nn.Module:
        """The version's model on the CPU in eval mode (see :meth:`loaded`)."""
        return self.loaded(version_id).model

    def record_weights(self, loaded: LoadedModel, note: str, test_set: ImageDataset | None = None) -> dict:
        """Weights from outside (a file, an upload) as a new root version: the one way in.

        The model must fit the workspace's data (:func:`~aomcore.base.training.check_model_fits`);
        its accuracy, parameters and FLOPs are measured on the test split and recorded with
        the version.

        Parameters
        ----------
        loaded : LoadedModel
            The model (its ``arch`` and ``edits`` are recorded).
        note : str
            Shown with the version (e.g. ``"loaded: model.pt"``).
        test_set : ImageDataset, optional
            The workspace's test split, when the caller has it loaded already.

        Returns
        -------
        dict : the new version's record; the same weights loaded again (a root version with
        this digest and edit list, e.g. ``layers`` then ``maps`` with one ``--weights``) are
        not a new version: that version becomes current and its record is returned.

        Raises
        ------
        InputError
            The model does not fit the data, the workspace holds another architecture, or
            it is read-only.
        """
        self.check_writable()
        digest, edits = loaded.digest, [e.to_dict() for e in loaded.edits]
        same = [r for r in self.versions().values()
                if r["parent"] is None and r["digest"] == digest and r["edits"] == edits]
        if same and self.state().get("arch") == loaded.arch:
            self.set_current(same[0]["id"])
            return same[0]
        test_set = test_set if test_set is not None else self.load_split("test")
        check_model_fits(loaded.model, test_set)
        record = self.add_version(loaded.model, parent=None, edits=list(loaded.edits),
                                  metrics=measure(loaded.model, test_set), note=note, arch=loaded.arch,
                                  num_classes=test_set.num_classes, input_shape=test_set.input_shape,
                                  classes=test_set.classes)
        if self._kept is not None:
            self._kept[("version", record["id"], record["digest"])] = loaded
        return record

    # --- selection ------------------------------------------------------------------
    def selection(self, digest: str) -> dict:
        """The kept kernels per layer chosen for the weights ``digest`` (``{}`` if none)."""
        return self.state().get("selection", {}).get(digest, {})

    def set_selection(self, digest: str, layer: str, keep: list[int]) -> None:
        self.modify(lambda s: s.setdefault("selection", {}).setdefault(digest, {}).__setitem__(
            layer, sorted(int(k) for k in keep)))

    def n_groups(self, layer: str, default: int) -> int:
        return int(self.state().get("n_groups", {}).get(layer, default))

    def set_n_groups(self, layer: str, n: int) -> None:
        self.modify(lambda s: s.setdefault("n_groups", {}).__setitem__(layer, int(n)))

    # --- sharing --------------------------------------------------------------------
    def access(self, user: str | None) -> str | None:
        """What ``user`` may do here: ``"owner"``, ``"read"`` (a grant) or None.

        A workspace without an owner (local use, or a shared server without sign-in, where
        its unguessable id is the capability) is open to whoever has its path or URL.
        """
        state = self.state()
        owner = state.get("owner")
        if owner is None or owner == user:
            return "owner"
        if user is not None and any(g.get("user") == user for g in state.get("grants", [])):
            return "read"
        return None

    def grant(self, user: str, mode: str = "read") -> None:
        """Share this workspace with ``user`` (read-only: they can look and download, not change)."""
        if mode != "read":
            raise InputError("unknown grant", expected="read", found=repr(mode))
        user = user.strip()
        if not user:
            raise InputError("whom to share with?", expected="a user name (their sign-in e-mail)", found="nothing")

        def add(state):
            state["grants"] = [g for g in state.get("grants", []) if g.get("user") != user] + [
                {"user": user, "mode": mode, "granted": time.time()}]
        self.modify(add)

    def delete(self) -> None:
        """Delete the workspace and everything in it, for good.

        The folder is first renamed to a hidden name beside it (one atomic step: no listing
        ever shows a half-deleted workspace), then removed.

        Raises
        ------
        InputError
            Read-only (shared with you), or the folder cannot be moved.
        """
        self.check_writable()
        trash = self.path.with_name(f".deleted-{self.path.name}-{secrets.token_hex(4)}")
        try:
            with self.lock():
                os.rename(self.path, trash)
        except OSError as exc:
            raise InputError("cannot delete the workspace", expected="a folder this server may change",
                             found=f"{self.path}: {exc.strerror}") from None
        shutil.rmtree(trash, ignore_errors=True)

    def disk_usage(self) -> int:
        """Bytes used by the workspace's files."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file() and not p.is_symlink())

    # --- results --------------------------------------------------------------------
    @property
    def results_cache(self) -> DiskCache:
        """Content-keyed results of this workspace (maps, experiments)."""
        return DiskCache(self.path / "results")

    def record_result(self, record: dict) -> None:
        """Index a result (``kind``, ``key``, ``digest``, and what describes it); newest last."""
        record = {"created": time.time()} | record

        def add(state):
            results = [r for r in state.get("results", [])
                       if not (r.get("kind") == record["kind"] and r.get("key") == record["key"])]
            state["results"] = [*results, record]
        self.modify(add)

    def results(self, kind: str, digest: str | None = None) -> list[dict]:
        """Indexed results of ``kind`` (for the weights ``digest`` if given), newest last."""
        return [r for r in self.state().get("results", [])
                if r.get("kind") == kind and (digest is None or r.get("digest") == digest)]

    # --- runs and jobs --------------------------------------------------------------
    @property
    def runs_dir(self) -> Path:
        return self.path / "runs"

    @property
    def jobs_dir(self) -> Path:
        return self.path / "jobs"


def _load_version(path: Path, rel: str) -> dict:
    """``versions/vN/version.json`` checked against :class:`~aomcore.store.schema.VersionFile` (its ``id`` is N)."""
    record = parse_json(path, rel)
    validate(VersionFile, record, rel)
    number = int(_VERSION_DIR.match(path.parent.name).group(1))
    if record["id"] != number:
        raise InputError(f"{rel}: id", expected=f"{number}, its folder's number", found=short(record["id"]))
    return record


def register_sweeper(name: str, sweeper: Callable[[Workspace], list[str]]) -> None:
    """Have :meth:`Workspace.sweep` also call ``sweeper(ws)``, which clears one kind of leftover.

    For modules above this one (runs know about jobs; a workspace does not); ``sweeper``
    returns the paths it removed or marked, relative to the workspace.
    """
    _SWEEPERS[name] = sweeper


def list_workspaces(root: str | os.PathLike | None = None, owner: str | None = None,
                    shared_with: str | None = None) -> list[Workspace]:
    """Workspaces directly under ``root`` (newest first).

    With ``owner``, only that user's; with ``shared_with`` as well, also those granted to
    that user (opened read-only).
    """
    root = Path(root or default_root()).expanduser()
    found = []
    for entry in root.iterdir() if root.is_dir() else []:
        if (entry / _FILE).is_file():
            try:
                ws = Workspace(entry)
                state = ws.state()
            except InputError:
                continue
            if owner is None or state.get("owner") == owner:
                found.append((state.get("created", 0), ws))
            elif shared_with is not None and any(g.get("user") == shared_with for g in state.get("grants", [])):
                found.append((state.get("created", 0), Workspace(entry, read_only=True)))
    return [ws for _, ws in sorted(found, key=lambda t: -t[0])]


def open_by_id(root: str | os.PathLike | None, workspace_id: str) -> Workspace:
    """The workspace ``root/<id>``; ids are checked so a crafted id cannot name another folder.

    Raises
    ------
    InputError
        Malformed id or no such workspace.
    """
    if not isinstance(workspace_id, str) or not _ID.match(workspace_id):
        raise InputError("malformed workspace id", expected="8–64 letters, digits, - or _", found=repr(workspace_id))
    folder = Path(root or default_root()).expanduser() / workspace_id
    if not (folder / _FILE).is_file():
        raise InputError("no such workspace", expected="the id of an existing workspace", found=workspace_id)
    return Workspace(folder)
