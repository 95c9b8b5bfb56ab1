"""Reading a whole file that a user named: a regular file only, never blocking, sized before it is read."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import InputError
from .policy import current_policy

__all__ = ["read_regular_file"]

#: ``stat`` file types that are not regular files, as a message names them.
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def read_regular_file(path: str | os.PathLike, what: str, expected: str, copies: float = 1.0) -> bytes:
    """The bytes of the regular file ``path``, after checking its kind and its size.

    A folder, FIFO, device or socket is refused by its ``stat`` before it is opened, and
    the file is opened with ``O_NONBLOCK`` and checked again on the open descriptor, so a
    path swapped for a FIFO between the two never blocks. The open file's size
    (``st_size``, which a sparse file reports in full) times ``copies`` must fit in memory
    (:meth:`~aomcore.base.policy.Policy.check_allocation`) before a byte is read; at most
    ``st_size`` bytes are read, so a file that grows meanwhile is not followed.

    Parameters
    ----------
    path : path
    what : str
        What the file is, for messages (e.g. ``"weights file"``).
    expected : str
        What it should have been (e.g. ``"a state_dict (.pt or .safetensors)"``).
    copies : float, default 1
        Bytes held per byte of the file while it is decoded (2 when the bytes and the
        decoded tensors are held at once).

    Raises
    ------
    InputError
        A missing path, one that is not a regular file (naming what it is), one that
        cannot be read (permissions), or one too large for memory.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} does not exist", expected="an existing file", found=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read the {what}", expected=expected, found=f"{path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"the {what} is {_kind(st.st_mode)}", expected=f"a regular file: {expected}",
                         found=str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        reason = "a socket" if exc.errno == errno.ENXIO else exc.strerror
        raise InputError(f"cannot read the {what}", expected=expected, found=f"{path}: {reason}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):  # replaced between stat and open
            raise InputError(f"the {what} is {_kind(st.st_mode)}", expected=f"a regular file: {expected}",
                             found=str(path))
        current_policy().check_allocation(int(st.st_size * copies), f"the {what} {path.name} ({st.st_size:,} bytes)",
                                          f"a {what} that fits in memory")
        try:
            return f.read(st.st_size)
        except OSError as exc:
            raise InputError(f"cannot read the {what}", expected=expected, found=f"{path}: {exc.strerror}") from None
