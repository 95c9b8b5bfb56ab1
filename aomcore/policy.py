"""Deployment policy: local mode (default) or shared mode, from the environment.

Shared mode is for one server with several users (see SECURITY.md):

=========================  ==============================================================
``AOMSCOPE_SHARED=1``      turn shared mode on
``AOMSCOPE_DATA_DIRS``     ``os.pathsep``-separated folders that data roots and image
                           folders must resolve inside (default in shared mode: none, so
                           only the bundled ``digits`` and uploads work)
``AOMSCOPE_ARCH_ALLOWLIST``  ``os.pathsep``-separated architecture files (``FILE.py``) that
                           may be imported; any other ``FILE.py:CLASS`` is refused
``AOMSCOPE_MAX_UPLOAD_MB`` largest accepted upload (default 200, as ``.streamlit/config.toml``)
``AOMSCOPE_MAX_VERSIONS``  versions kept per session before the oldest are evicted (12)
=========================  ==============================================================

In local mode every path is allowed (it is the user's own machine), and architecture
files run as any Python script the user runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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
    max_versions : int
    """

    shared: bool = False
    data_dirs: tuple[Path, ...] = ()
    arch_allowlist: tuple[Path, ...] = ()
    max_upload_mb: float = 200.0
    max_versions: int = 12

    def check_data_path(self, path: str | os.PathLike) -> Path:
        """``path`` resolved (symlinks followed); in shared mode it must lie inside a data dir.

        Raises
        ------
        InputError
            A path outside the allowed folders (``../``, absolute paths elsewhere, a
            symlink pointing out), in shared mode.
        """
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
    return Policy(shared=env.get("AOMSCOPE_SHARED", "").lower() in ("1", "true", "yes"),
                  data_dirs=_paths(env.get("AOMSCOPE_DATA_DIRS")),
                  arch_allowlist=_paths(env.get("AOMSCOPE_ARCH_ALLOWLIST")),
                  max_upload_mb=float(env.get("AOMSCOPE_MAX_UPLOAD_MB", 200)),
                  max_versions=int(env.get("AOMSCOPE_MAX_VERSIONS", 12)))
