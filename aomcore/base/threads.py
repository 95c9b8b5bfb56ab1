"""How many threads a process of ours may use: one rule for torch, OpenMP, BLAS, numba and openTSNE.

Left alone, every process sizes its thread pools for the whole machine: four jobs on 2 cores run
8+ compute threads that spin-wait on one another (DeepEyes over a 7-snapshot run took 27 s alone
and 578 s beside three other processes, 21× where a fair share is 4×; issue #24). Here one place
decides, for the job workers of the dashboard and for CLI commands alike:

* **Cores available** (:func:`available_cores`): this process's CPU affinity
  (``os.sched_getaffinity``), bounded by the cgroup CPU quota (cgroup v2 ``cpu.max``, v1
  ``cpu.cfs_quota_us / cpu.cfs_period_us``, rounded up), as containers set it.
* **Who else is running** (:func:`running`): a process that runs a batch job registers itself
  with a file named by its pid in a per-user folder of the temp directory (``aomscope-threads-
  <uid>``) for the time of the job; files of processes that are gone are ignored and removed.
  Only our own processes are counted; other programs get the kernel's fair share as usual.
* **The share** (:func:`share`): ``max(1, (cores - reserve) // running)``. The dashboard's job
  workers pass ``reserve=1`` on machines of 4 or more cores, so page renders keep a core; on fewer
  cores they run at nice 10 (:mod:`aomcore.jobs.engine`), and the kernel gives the server
  precedence instead.
* ``$AOMSCOPE_THREADS`` (an integer ≥ 1) overrides the share, e.g. to reproduce a measurement.
  An ``OMP_NUM_THREADS`` set when the process started (a deployment's or a user's choice, e.g.
  1 for servers whose jobs are many small steps) caps the share.

:func:`apply` sets the count everywhere it matters: ``torch.set_num_threads``; threadpoolctl's
limits for the BLAS and OpenMP libraries already loaded (NumPy's, scikit-learn's); the
``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS``/``NUMBA_NUM_THREADS`` variables
for libraries loaded later and for child processes; numba's thread count when numba is loaded.
:func:`current` is the count last applied (openTSNE's ``n_jobs``, DataLoader workers).
A long job calls :func:`rebalance` from its progress reports (at most every 2 s), so a job that
started alone gives threads back when others start, and takes them again when they end.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import limits

__all__ = ["THREADS_ENV", "apply", "available_cores", "current", "rebalance", "running", "share"]

THREADS_ENV = "AOMSCOPE_THREADS"
_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")
_REBALANCE_EVERY = 2.0  # seconds

#: OMP_NUM_THREADS as this process found it (before :func:`apply` wrote it): an explicit cap.
_STARTED_WITH = os.environ.get("OMP_NUM_THREADS", "")

_state = {"applied": None, "depth": 0, "reserve": 0, "checked": 0.0, "limiter": None}


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup CPU quota, or None when there is none (or no cgroup files)."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()  # v2: "<quota|max> <period>"
        if len(text) == 2 and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """Cores this process may run on: CPU affinity bounded by the cgroup quota (rounded up); ≥ 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def _folder() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"aomscope-threads-{uid}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process with the same pid: alive, not ours to count
        return True
    return True


def _running_count() -> int:
    """Our processes running a batch job now (this one included when registered)."""
    count = 0
    try:
        entries = list(os.scandir(_folder()))
    except OSError:
        return 1
    for entry in entries:
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid == os.getpid() or _alive(pid):
            count += 1
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass
    return max(1, count)


def share(reserve: int = 0) -> int:
    """Threads this process may use now: ``$AOMSCOPE_THREADS``, else ``max(1, (cores − reserve) // running)``,
    at most the ``OMP_NUM_THREADS`` the process started with.

    Parameters
    ----------
    reserve : int, default 0
        Cores kept for something else (the dashboard server's page renders).

    Raises
    ------
    InputError
        ``$AOMSCOPE_THREADS`` is not an integer in [1, 1024].
    """
    value = os.environ.get(THREADS_ENV)
    if value:
        number = int(value) if value.strip().isdigit() else value
        return limits.check_int(THREADS_ENV, number, limits.THREADS_MIN, limits.THREADS_MAX)
    count = max(1, (available_cores() - max(0, int(reserve))) // _running_count())
    cap = _STARTED_WITH.strip()
    return min(count, int(cap)) if cap.isdigit() and int(cap) >= 1 else count


def apply(threads: int) -> int:
    """Use ``threads`` compute threads in this process (torch, loaded BLAS/OpenMP, numba, env vars).

    Returns ``threads``. Calling it again with the same count does nothing.
    """
    threads = max(1, int(threads))
    if _state["applied"] == threads:
        return threads
    for name in _ENV_VARS:
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        _state["limiter"] = threadpool_limits(limits=threads)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    numba = sys.modules.get("numba")
    if numba is not None:
        try:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        except (AttributeError, ValueError):
            pass
    if "torch" in sys.modules:  # last: threadpoolctl and numba's OpenMP layer may set the runtime torch shares
        import torch

        torch.set_num_threads(threads)
    _state["applied"] = threads
    return threads


def current() -> int:
    """The thread count last applied in this process, else the share it would get now."""
    return _state["applied"] or share(_state["reserve"])


def rebalance() -> int:
    """Re-apply the share while registered (at most every 2 s; cheap otherwise). Returns the count."""
    now = time.monotonic()
    if _state["depth"] and now - _state["checked"] >= _REBALANCE_EVERY:
        _state["checked"] = now
        apply(share(_state["reserve"]))
    return current()


@contextmanager
def running(reserve: int = 0) -> Iterator[int]:
    """Register this process as running a batch job and apply its share; yields the thread count.

    Nested uses (a CLI command that runs a job inline) register once. The registration file is
    removed on exit; a killed process's file is ignored by the others and removed by the next count.
    """
    folder = _folder()
    mine = folder / str(os.getpid())
    if _state["depth"] == 0:
        _state["reserve"] = max(0, int(reserve))
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            mine.touch()
        except OSError:  # an unwritable temp directory: size as if alone
            pass
    _state["depth"] += 1
    try:
        _state["checked"] = time.monotonic()
        yield apply(share(_state["reserve"]))
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            try:
                mine.unlink()
            except OSError:
                pass
