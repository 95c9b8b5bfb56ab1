"""Workspaces as zip files: export one, and open a zip as a new workspace.

Only plain data files travel (JSON, safetensors, npz, sha256 sidecars), never job records
or the lock; member paths stay inside the new folder and the unpacked size is bounded
before anything is written.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import zipfile
from pathlib import Path

from ..base.atomic import write_json
from ..base.errors import InputError
from .workspace import SCHEMA_VERSION, Workspace, default_root
from .workspace import WORKSPACE_FILE as _FILE

__all__ = ["export_zip", "import_zip"]

_ZIP_SUFFIXES = (".json", ".jsonl", ".safetensors", ".npz", ".sha256")
MAX_IMPORT_BYTES = 4 * 2**30


def export_zip(ws: Workspace) -> bytes:
    """The workspace as a zip (versions, runs, results, the state; not jobs or the lock)."""
    buf = io.BytesIO()
    with ws.lock(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(ws.path.rglob("*")):
            rel = path.relative_to(ws.path)
            if (path.is_file() and not path.is_symlink() and rel.parts[0] != "jobs"
                    and not any(p.startswith(".") for p in rel.parts) and path.name.endswith(_ZIP_SUFFIXES)):
                z.write(path, rel.as_posix())
    return buf.getvalue()


def import_zip(data: bytes, root: str | os.PathLike | None = None, owner: str | None = None,
               path: str | os.PathLike | None = None) -> Workspace:
    """Open a zip made by :func:`export_zip` as a new workspace (a new id) and return it.

    Only plain data files are taken (JSON, safetensors, npz, sha256 sidecars), each member
    path must stay inside the workspace, and the unpacked size is bounded
    (``MAX_IMPORT_BYTES``) before anything is written.

    Raises
    ------
    InputError
        Not a zip, no ``workspace.json``, a member outside the folder or of another type, or
        too large.
    """
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = z.infolist()
    except zipfile.BadZipFile as exc:
        raise InputError("not a workspace zip", expected="a zip made by workspace export", found=str(exc)) from None
    names = [i.filename for i in infos if not i.is_dir()]
    if _FILE not in names:
        raise InputError("not a workspace zip", expected=f"{_FILE} at the top level",
                         found=", ".join(names[:5]) or "an empty zip")
    total = sum(i.file_size for i in infos)
    if total > MAX_IMPORT_BYTES:
        raise InputError("workspace zip too large", expected=f"at most {MAX_IMPORT_BYTES / 2**30:.0f} GiB unpacked",
                         found=f"{total / 2**30:.1f} GiB")
    for name in names:
        parts = Path(name).parts
        if name.startswith("/") or ".." in parts or not name.endswith(_ZIP_SUFFIXES) or "\\" in name:
            raise InputError("unexpected file in the workspace zip",
                             expected=f"relative paths of {', '.join(_ZIP_SUFFIXES)} files", found=repr(name))
    try:
        state = json.loads(z.read(_FILE))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("unreadable workspace.json in the zip", expected="JSON", found=str(exc)) from None
    if not isinstance(state, dict) or not isinstance(state.get("schema"), int) or state["schema"] > SCHEMA_VERSION:
        raise InputError("unsupported workspace schema", expected=f"schema <= {SCHEMA_VERSION}",
                         found=repr(state.get("schema") if isinstance(state, dict) else state))
    folder = Path(path).expanduser() if path else Path(root or default_root()).expanduser() / secrets.token_urlsafe(16)
    staging = folder.with_name(f".import-{secrets.token_hex(6)}")
    try:
        for info in infos:
            if info.is_dir():
                continue
            target = staging / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        for sub in ("versions", "runs", "results", "jobs"):
            (staging / sub).mkdir(exist_ok=True)
        state["owner"], state["grants"] = owner, []  # the importer owns the copy; no grants carried over
        write_json(staging / _FILE, state)
        os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Workspace(folder)
