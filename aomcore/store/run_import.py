"""Import a training run made elsewhere: a folder of state_dict checkpoints → a run folder.

The checkpoints (``.pt``/``.pth`` read with ``weights_only=True`` by
:func:`~aomcore.base.models.load_checkpoint`, or ``.safetensors``) are ordered by the number in
each file name (the last one: ``iter20`` before ``iter100``, ``epoch3_step400`` → 400),
which becomes the snapshot's iteration. Each is checked against the architecture (built
with its edits) with :func:`~aomcore.base.models.apply_state_dict`; a file that does not fit, is
corrupt or has no number is left out with a message naming it, and the rest of the run is
kept. The run folder (:mod:`aomcore.store.runs`, kind ``import``, no ``metrics.jsonl`` rows) is
assembled in a staging folder beside ``out`` and renamed into place: it appears complete
or not at all.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..base.atomic import write_bytes, write_json
from ..base.data import ImageDataset
from ..base.editing import rebuild
from ..base.errors import InputError
from ..base.models import apply_state_dict, load_checkpoint, match_state_dict, save_state_dict
from ..base.training import evaluate

__all__ = ["CHECKPOINT_SUFFIXES", "ImportedRun", "checkpoint_iteration", "import_run", "import_run_files",
           "new_run_dir", "stage_checkpoints"]

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
_NUMBER = re.compile(r"\d+")


@dataclass
class ImportedRun:
    """The outcome of an import.

    Attributes
    ----------
    folder : Path
        The run folder.
    record : dict
        Its ``run.json``.
    skipped : list of (file name, reason)
        Checkpoints left out, in file order.
    """

    folder: Path
    record: dict
    skipped: list[tuple[str, str]] = field(default_factory=list)


def checkpoint_iteration(name: str) -> int | None:
    """The iteration in a checkpoint's file name: its last number (``run2_iter100.pt`` → 100), or None."""
    numbers = _NUMBER.findall(Path(name).stem)
    return int(numbers[-1]) if numbers else None


def import_run(folder: str | os.PathLike, arch: str, num_classes: int, input_shape: tuple[int, int, int],
               edits: list | None = None, out: str | os.PathLike | None = None, *, test_set: ImageDataset | None = None,
               device: str | torch.device = "cpu",
               progress: Callable[[int, int], None] | None = None) -> ImportedRun:
    """Import the checkpoints of ``folder`` (``.pt``, ``.pth``, ``.safetensors``) as a run in ``out``.

    Parameters
    ----------
    folder : path
        Holds the checkpoints (sub-folders and other files are ignored).
    arch : str
        ``zoo:NAME``, ``torchvision:NAME`` or ``FILE.py:CLASS``.
    num_classes, input_shape
        What the architecture is built for.
    edits : list of Edit, optional
        Edits applied to ``arch`` before the weights are loaded (checkpoints of an edited model).
    out : path
        The run folder to make (must not exist).
    test_set : ImageDataset, optional
        Evaluated at each snapshot (``test_accuracy`` in run.json).
    progress : callable(done, total), optional
        After each checkpoint.

    Returns
    -------
    ImportedRun

    Raises
    ------
    InputError
        ``folder`` unreadable or without checkpoints, ``out`` missing or existing, an
        unknown architecture, or no checkpoint that fits (every file's reason listed).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("not a folder of checkpoints", expected="a folder holding .pt/.safetensors files",
                         found=str(folder))
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    return import_run_files([(p.name, p) for p in files], arch, num_classes, input_shape, edits, out,
                            source=str(folder.resolve()), test_set=test_set, device=device, progress=progress)


def import_run_files(files: Iterable[tuple[str, str | os.PathLike | bytes]], arch: str, num_classes: int,
                     input_shape: tuple[int, int, int], edits: list | None = None,
                     out: str | os.PathLike | None = None, *, source: str = "upload",
                     test_set: ImageDataset | None = None, device: str | torch.device = "cpu",
                     progress: Callable[[int, int], None] | None = None) -> ImportedRun:
    """:func:`import_run` over (file name, path or bytes) pairs, e.g. uploaded files."""
    if out is None:
        raise InputError("nowhere to put the run", expected="an output folder", found="none")
    out = Path(out)
    if out.exists():
        raise InputError("the run folder already exists", expected="a new folder", found=str(out))
    files = list(files)
    if not files:
        raise InputError("no checkpoints", expected=f"files ending in {', '.join(CHECKPOINT_SUFFIXES)}", found="none")
    edits = list(edits or [])
    model = rebuild(arch, num_classes, input_shape, edits)  # InputError for an unknown arch

    skipped: list[tuple[str, str]] = []
    numbered: list[tuple[int, str, str | os.PathLike | bytes]] = []
    for name, data in files:
        iteration = checkpoint_iteration(name)
        if not name.endswith(CHECKPOINT_SUFFIXES):
            skipped.append((name, f"not a checkpoint file (expected {', '.join(CHECKPOINT_SUFFIXES)})"))
        elif iteration is None:
            skipped.append((name, "no number in the file name to order it by (e.g. iter100.pt)"))
        else:
            numbered.append((iteration, name, data))
    numbered.sort(key=lambda t: (t[0], t[1]))

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{secrets.token_hex(4)}"
    (staging / "snapshots").mkdir(parents=True)
    snapshots, names = [], {}
    try:
        for i, (iteration, name, data) in enumerate(numbered):
            if iteration in names:
                skipped.append((name, f"same iteration {iteration} as {names[iteration]}"))
                continue
            try:
                state_dict, _ = load_checkpoint(data, name=name)
                state_dict, _ = match_state_dict(model, state_dict)
                apply_state_dict(model, state_dict)
            except InputError as exc:
                skipped.append((name, str(exc)))
                continue
            names[iteration] = name
            path = staging / "snapshots" / f"iter{iteration:08d}.safetensors"
            save_state_dict(model, path, fmt="safetensors")
            entry = {"iteration": iteration, "file": f"snapshots/{path.name}", "source_file": name}
            if test_set is not None:
                entry["test_accuracy"] = evaluate(model, test_set, device=device).accuracy
            snapshots.append(entry)
            if progress is not None:
                progress(i + 1, len(numbered))
        if not snapshots:
            reasons = "; ".join(f"{n}: {r}" for n, r in skipped) or "none"
            raise InputError("no checkpoint fits the architecture", expected=f"state_dicts of {arch}"
                             + (f" with {len(edits)} edit(s)" if edits else ""), found=reasons)
        record = {"id": out.name, "kind": "import", "status": "done", "created": time.time(), "finished": time.time(),
                  "arch": arch, "edits": [e.to_dict() if hasattr(e, "to_dict") else e for e in edits],
                  "config": None, "parent": None, "source": source, "iterations_from": "file names",
                  "num_classes": int(num_classes), "input_shape": list(input_shape), "snapshots": snapshots,
                  "skipped": [{"file": n, "reason": r} for n, r in skipped]}
        write_json(staging / "run.json", record)
        (staging / "metrics.jsonl").touch()
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportedRun(folder=out, record=record | {"path": str(out)}, skipped=skipped)


def new_run_dir(runs_dir: str | os.PathLike) -> Path:
    """A fresh folder name for an imported run under a workspace's ``runs/``."""
    return Path(runs_dir) / f"{time.strftime('%Y%m%d-%H%M%S')}-import-{secrets.token_hex(3)}"


def stage_checkpoints(ws, files: Iterable[tuple[str, bytes]]) -> str:
    """Write uploaded checkpoint files into a fresh folder of the workspace, for the ``run_import`` job.

    Only the base name of each upload is kept, and only checkpoint suffixes
    (:data:`CHECKPOINT_SUFFIXES`). Returns the folder's name, relative to the workspace.

    Raises
    ------
    InputError
        No checkpoint among the files, or a read-only workspace.
    """
    ws.check_writable()
    kept = [(Path(name).name, data) for name, data in files if Path(name).suffix in CHECKPOINT_SUFFIXES]
    if not kept:
        raise InputError("no checkpoint files", expected=", ".join(CHECKPOINT_SUFFIXES), found="none")
    rel = f"uploads/{secrets.token_hex(8)}"
    folder = ws.path / rel
    folder.mkdir(parents=True)
    for name, data in kept:
        write_bytes(folder / name, data)
    return rel
