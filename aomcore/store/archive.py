"""Workspaces as zip files: export one, and open a zip as a new workspace.

Only plain data files travel (JSON, safetensors, npz, sha256 sidecars), never job records
or the lock; member paths stay inside the new folder, every JSON file is checked against
its schema, the unpacked size is bounded before anything is written and while writing, and
a workspace that names an architecture file is opened only when the user trusts it.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import zipfile
import zlib
from pathlib import Path

from ..base.atomic import write_json
from ..base.errors import InputError
from ..base.policy import current_policy
from .schema import model_for, short, validate
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
               path: str | os.PathLike | None = None, *, trust_code: bool = False,
               max_bytes: int | None = None) -> Workspace:
    """Open a zip made by :func:`export_zip` as a new workspace (a new id) and return it.

    A zip carries data, never authority:

    - job records (``jobs/``) and hidden files (``.lock``, staging folders) are dropped, the
      importer becomes the owner and no grants are carried over;
    - only plain data files are taken (JSON, safetensors, npz, sha256 sidecars), each member
      path relative, inside the workspace, with no part longer than 255 characters;
    - every ``workspace.json``, ``version.json`` and ``run.json`` is checked against its
      schema (:mod:`aomcore.store.schema`) before anything is written;
    - the sizes the zip declares are checked against ``max_bytes`` first, then the bytes
      actually written (a member that unpacks to more than it declared is refused);
    - an architecture file (``FILE.py:CLASS``, in ``workspace.json`` or a run) runs code
      when the workspace is opened, so it is refused unless ``trust_code`` is set, and in
      shared mode unless the file is on the allow-list even then
      (:meth:`~aomcore.base.policy.Policy.check_architecture`).

    Nothing is left behind after a refusal: the files are unpacked in a hidden staging
    folder beside the new one, renamed into place at the end, and removed on any error.

    Parameters
    ----------
    data : bytes
        The zip.
    root : path, optional
        Where the new workspace goes (default :func:`default_root`), under a new id.
    owner : str, optional
        The importing user, the new workspace's owner.
    path : path, optional
        An explicit folder instead of ``root/<id>``.
    trust_code : bool, default False
        Accept a workspace whose architecture is a Python file (the CLI's ``--trust-code``,
        the dashboard's confirmation naming the file).
    max_bytes : int, optional
        The most bytes the unpacked workspace may take (the importer's disk quota left);
        default ``MAX_IMPORT_BYTES`` (4 GiB).

    Raises
    ------
    InputError
        Not a zip or a damaged one (bad CRC, sizes that lie), no ``workspace.json``, a member
        outside the folder, of another type or with too long a name, a file that does not
        fit its schema, too large for ``max_bytes``, an architecture file without
        ``trust_code`` (or not allow-listed in shared mode), or a disk error while writing.
    """
    limit = MAX_IMPORT_BYTES if max_bytes is None else int(max_bytes)
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise InputError("not a workspace zip", expected="a zip made by workspace export",
                         found=short(str(exc))) from None
    kept = [i for i in infos if not i.is_dir() and not _dropped(i.filename)]
    names = [i.filename for i in kept]
    if _FILE not in names:
        raise InputError("not a workspace zip", expected=f"{_FILE} at the top level",
                         found=short(", ".join(names[:5])) if names else "an empty zip")
    for name in names:
        _check_name(name)
    total = sum(i.file_size for i in kept)
    if total > limit:
        raise InputError("workspace zip too large", expected=f"at most {_size(limit)} unpacked (the disk quota left)",
                         found=f"{_size(total)} declared")
    state = _check_members(z, kept, trust_code)
    folder = Path(path).expanduser() if path else Path(root or default_root()).expanduser() / secrets.token_urlsafe(16)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError("the target folder is not empty", expected="a new or empty folder", found=short(str(folder)))
    staging = folder.with_name(f".import-{secrets.token_hex(6)}")
    written = 0
    try:
        for info in kept:
            target = staging / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            member = 0
            with z.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    member += len(chunk)
                    written += len(chunk)
                    if member > info.file_size or written > limit:
                        raise InputError("workspace zip unpacks to more than it declares",
                                         expected=f"at most {_size(min(total, limit))}",
                                         found=f"more in {short(info.filename, 80)}")
                    dst.write(chunk)
        for sub in ("versions", "runs", "results", "jobs"):
            (staging / sub).mkdir(exist_ok=True)
        state["owner"], state["grants"] = owner, []  # the importer owns the copy; no grants carried over
        write_json(staging / _FILE, state)
        os.rename(staging, folder)
    except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
        raise InputError("damaged workspace zip", expected="a zip made by workspace export",
                         found=short(str(exc))) from None
    except OSError as exc:
        raise InputError("cannot write the imported workspace", expected="a writable folder with free space",
                         found=short(f"{folder}: {exc.strerror or exc}")) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Workspace(folder)


_CHUNK = 1 << 20
_MAX_NAME = 255  # bytes in one path component on common file systems


def _size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _dropped(name: str) -> bool:
    """Members a zip may hold but an import never takes: job records, cancel marks, hidden files."""
    parts = name.split("/")
    return parts[0] == "jobs" or name.endswith(".cancel") or any(p.startswith(".") and p not in (".", "..")
                                                                 for p in parts)


def _check_name(name: str) -> None:
    parts = Path(name).parts
    if (name.startswith("/") or ".." in parts or "\\" in name or "\x00" in name or ":" in name
            or not name.endswith(_ZIP_SUFFIXES)):
        raise InputError("unexpected file in the workspace zip",
                         expected=f"relative paths of {', '.join(_ZIP_SUFFIXES)} files", found=short(name, 120))
    if any(len(p.encode()) > _MAX_NAME for p in parts):
        raise InputError("too long a name in the workspace zip", expected=f"names of at most {_MAX_NAME} characters",
                         found=short(name, 120))


def _check_members(z: zipfile.ZipFile, kept: list[zipfile.ZipInfo], trust_code: bool) -> dict:
    """Read and check every JSON member with its schema; refuse architecture files not trusted.

    Returns ``workspace.json`` as a dict.
    """
    state = None
    for info in kept:
        if not info.filename.endswith(".json"):
            continue
        model = model_for(info.filename)
        if info.file_size > _MAX_JSON:
            raise InputError(f"{info.filename}: too large", expected=f"at most {_size(_MAX_JSON)}",
                             found=_size(info.file_size))
        try:
            record = json.loads(z.read(info))
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as exc:
            raise InputError("damaged workspace zip", expected="a zip made by workspace export",
                             found=short(f"{info.filename}: {exc}")) from None
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise InputError(f"{info.filename}: unreadable", expected="JSON", found=short(str(exc))) from None
        if info.filename == _FILE:
            schema = record.get("schema") if isinstance(record, dict) else None
            if isinstance(schema, int) and schema > SCHEMA_VERSION:
                raise InputError("unsupported workspace schema", expected=f"schema <= {SCHEMA_VERSION}",
                                 found=short(schema))
            state = record
        if model is not None:
            validate(model, record, info.filename)
            _check_arch(record.get("arch"), info.filename, trust_code)
    return state


_MAX_JSON = 64 * 2**20


def _check_arch(arch: str | None, file: str, trust_code: bool) -> None:
    if not isinstance(arch, str):
        return
    code, sep, _ = arch.rpartition(":")
    if not (sep and code.endswith(".py")):
        return
    current_policy().check_architecture(arch)  # shared mode: the allow-list first, trusted or not
    if not trust_code:
        raise InputError(f"{file}: arch names a Python file, which would run when the workspace opens",
                         expected="pass --trust-code (CLI) or confirm in the dashboard if you trust it",
                         found=short(code, 120))
