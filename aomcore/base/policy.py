"""Deployment policy: local mode (default) or shared mode, from the environment.

Shared mode is for one server with several users (see SECURITY.md):

=========================  ==============================================================
``AOMSCOPE_SHARED=1``      turn shared mode on
``AOMSCOPE_DATA_DIRS``     ``os.pathsep``-separated folders that data roots and image
                           folders must resolve inside (default in shared mode: none, so
                           only the bundled ``digits`` and uploads work). Every file a
                           loader opens is checked, after following symlinks; the cache's
                           ``uploads`` folder is always allowed (uploaded ``.npz`` files)
``AOMSCOPE_MAX_DATA_GB``   decoded size a dataset may declare before it is read (default 4;
                           1 in shared mode): ``.npz`` headers and image sizes are checked
``AOMSCOPE_ARCH_ALLOWLIST``  ``os.pathsep``-separated architecture files (``FILE.py``) that
                           may be imported; any other ``FILE.py:CLASS`` is refused
``AOMSCOPE_MAX_UPLOAD_MB`` largest accepted upload (default 200, as ``.streamlit/config.toml``)
``AOMSCOPE_MAX_WORKSPACES``  workspaces a signed-in user may own (shared mode; default 20)
``AOMSCOPE_MAX_DISK_GB``   disk a signed-in user's workspaces (or, without sign-in, one
                           workspace) may use before new jobs are refused (shared mode; 5)
``AOMSCOPE_MAX_JOBS``      jobs running at once on the server (default 1; see aomcore.jobs.engine)
``AOMSCOPE_JOB_MEMORY_GB`` memory limit of each job's worker process (shared mode; 8)
=========================  ==============================================================

In local mode every path is allowed (it is the user's own machine), and architecture
files run as any Python script the user runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .cache import default_cache_dir
from .errors import InputError

__all__ = ["Policy", "current_policy"]


def _paths(value: str | None) -> tuple[Path, ...]:
    return tuple(Path(p).resolve() for p in (value or "").split(os.pathsep) if p.strip())


@dataclass(frozen=True)
class Policy:
    """What this deployment allows.

    Attributes
    ----------
    shared : bool
    data_dirs : tuple of Path
        Resolved folders data may come from (shared mode).
    arch_allowlist : tuple of Path
        Resolved architecture files that may run (shared mode).
    max_upload_mb : float
    max_workspaces : int or None
        Workspaces one signed-in user may own (None: no limit).
    max_disk_gb : float or None
        Disk one signed-in user's workspaces, or one anonymous workspace, may use.
    max_data_gb : float
        Decoded bytes (in GB, 2**30) a dataset may declare; checked before allocating.
    """

    shared: bool = False
    data_dirs: tuple[Path, ...] = ()
    arch_allowlist: tuple[Path, ...] = ()
    max_upload_mb: float = 200.0
    max_workspaces: int | None = None
    max_disk_gb: float | None = None
    max_data_gb: float = 4.0

    def check_data_path(self, path: str | os.PathLike) -> Path:
        """``path`` resolved (symlinks followed); in shared mode it must lie inside a data dir.

        Raises
        ------
        InputError
            A path outside the allowed folders (``../``, absolute paths elsewhere, a
            symlink pointing out), in shared mode; a path holding a NUL character.
        """
        if "\x00" in os.fspath(path):
            raise InputError("a NUL character in a path", expected="a path without NUL bytes",
                             found=repr(os.fspath(path)))
        resolved = Path(path).expanduser().resolve()
        if self.shared and not any(resolved == d or resolved.is_relative_to(d) for d in self.data_dirs):
            allowed = ", ".join(map(str, self.data_dirs)) or "none configured (set AOMSCOPE_DATA_DIRS)"
            raise InputError("path outside the allowed data folders", expected=f"a path inside: {allowed}",
                             found=f"{path} (resolves to {resolved})")
        return resolved

    def check_architecture(self, arch: str) -> None:
        """In shared mode, refuse ``FILE.py:CLASS`` unless the file is allow-listed."""
        file, sep, _ = arch.rpartition(":")
        if not (sep and file.endswith(".py")) or not self.shared:
            return
        if Path(file).resolve() not in self.arch_allowlist:
            raise InputError("architecture files are disabled in shared mode",
                             expected="zoo:NAME, torchvision:NAME or an allow-listed file (AOMSCOPE_ARCH_ALLOWLIST)",
                             found=file)

    def check_workspace_count(self, owned: int) -> None:
        """Refuse one more workspace when a user already owns ``max_workspaces``."""
        if self.max_workspaces is not None and owned >= self.max_workspaces:
            raise InputError("workspace quota reached", expected=f"at most {self.max_workspaces} workspaces per user "
                             "(delete one on Workspaces)", found=f"{owned} workspaces")

    def check_disk(self, used_bytes: int) -> None:
        """Refuse new results when ``used_bytes`` is at or over ``max_disk_gb`` (what exists is kept)."""
        if self.max_disk_gb is not None and used_bytes >= self.max_disk_gb * 2**30:
            raise InputError("disk quota reached", expected=f"at most {self.max_disk_gb:g} GB of workspaces "
                             "(delete versions' workspaces or export and delete one)",
                             found=f"{used_bytes / 2**30:.2f} GB used; nothing was removed")

    def check_allocation(self, nbytes: int, what: str, hint: str) -> None:
        """Refuse to allocate ``nbytes`` that this machine (or a shared job) cannot hold.

        The limit is the machine's physical memory, and in shared mode also
        ``AOMSCOPE_JOB_MEMORY_GB``; checked before allocating, so an oversize request is a
        message instead of an out-of-memory kill.
        """
        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        where = "this machine has"
        job = os.environ.get("AOMSCOPE_JOB_MEMORY_GB") or (8 if self.shared else None)
        if job is not None and float(job) * 2**30 < limit:
            limit, where = int(float(job) * 2**30), "a job may use (AOMSCOPE_JOB_MEMORY_GB)"
        if nbytes > limit:
            raise InputError(f"{what} is too large to allocate", expected=f"{hint}; {where} {limit / 2**30:.1f} GB",
                             found=f"it needs {nbytes / 2**30:,.1f} GB")

    def check_upload(self, data: bytes, name: str, what: str) -> bytes:
        """Refuse an empty or oversize upload with a clear message; returns ``data``."""
        if len(data) > self.max_upload_mb * 2**20:
            raise InputError("upload too large", expected=f"at most {self.max_upload_mb:g} MB",
                             found=f"{name}: {len(data) / 2**20:.1f} MB")
        if not data:
            raise InputError("upload is empty", expected=what, found=f"{name}: 0 bytes")
        return data


def current_policy() -> Policy:
    """The policy from the environment (read on every call, so tests and restarts see changes)."""
    env = os.environ
    shared = env.get("AOMSCOPE_SHARED", "").lower() in ("1", "true", "yes")
    uploads = (default_cache_dir() / "uploads").resolve()  # ui.views.save_upload stores uploaded files here
    return Policy(shared=shared,
                  data_dirs=_paths(env.get("AOMSCOPE_DATA_DIRS")) + ((uploads,) if shared else ()),
                  arch_allowlist=_paths(env.get("AOMSCOPE_ARCH_ALLOWLIST")),
                  max_upload_mb=float(env.get("AOMSCOPE_MAX_UPLOAD_MB", 200)),
                  max_workspaces=_number(env, "AOMSCOPE_MAX_WORKSPACES", 20 if shared else None, int),
                  max_disk_gb=_number(env, "AOMSCOPE_MAX_DISK_GB", 5.0 if shared else None, float),
                  max_data_gb=_number(env, "AOMSCOPE_MAX_DATA_GB", 1.0 if shared else 4.0, float))


def _number(env, name: str, default, kind):
    value = env.get(name)
    if value in (None, ""):
        return default
    try:
        return kind(value)
    except ValueError:
        raise InputError(f"bad {name}", expected=f"a {kind.__name__}", found=repr(value)) from None
