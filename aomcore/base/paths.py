"""Paths read from files stay inside their folder."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

__all__ = ["inside"]


def inside(folder: str | os.PathLike, relative: object, what: str = "a file") -> Path:
    """``folder / relative``, symlinks resolved, refused unless it lies inside ``folder``.

    Every path read back from a workspace or run file (a snapshot's ``file``, a version's
    weights) goes through here, so an absolute path, ``../`` or a link that leads out of
    the folder never reaches a reader.

    Parameters
    ----------
    folder : path
        The folder the path must stay in (a workspace, a run folder).
    relative : object
        The path as read from the file; anything but a non-empty relative string is refused.
    what : str
        What the path names, for the message.

    Raises
    ------
    InputError
        Not a string, absolute, or leading outside ``folder``.
    """
    root = Path(folder).resolve()
    if not isinstance(relative, str) or not relative or "\x00" in relative or os.path.isabs(relative):
        raise InputError(f"{what} outside its folder", expected=f"a relative path inside {root}",
                         found=repr(relative)[:200])
    target = (root / relative).resolve()
    if not target.is_relative_to(root):
        raise InputError(f"{what} outside its folder", expected=f"a relative path inside {root}",
                         found=repr(relative)[:200])
    return target
