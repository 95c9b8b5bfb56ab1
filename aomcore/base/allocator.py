"""Keep freed activation memory for reuse in batch-loop processes (the CLI, job workers).

PyTorch's CPU allocator takes each tensor from the C library's ``malloc``. glibc serves a
request above its mmap threshold (at most 32 MiB, however it adapts) with a fresh
``mmap`` and returns it to the kernel on ``free``; every page of the next batch's
activation is then faulted in and zeroed again. A 1000-image batch through a 12×28×28
conv layer is 37.6 MB, so a CPU forward pass over MNIST spends more time in the kernel
(page faults) than in the convolutions: measured on the benchmark's four-tap model, 12 s
of forward for 60,000 images, 4.7 s with the freed blocks kept (``benchmarks/RESULTS.md``).

:func:`reuse_freed_memory` raises glibc's mmap and trim thresholds with ``mallopt`` so large
blocks come from the heap and go back to it, where the next batch finds them. The peak
resident memory stays that of the largest batch (the heap is not trimmed while the process
runs). It is meant for processes that run a batch loop and exit (CLI commands) or idle
between jobs (job workers, which call :func:`release_freed_memory` after each job), not the
dashboard server. Both are no-ops outside glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["release_freed_memory", "reuse_freed_memory"]

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size come from the heap: 1 GiB covers any batch a machine of ours runs.
_THRESHOLD = 1 << 30

_done = False


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _ = libc.mallopt, libc.malloc_trim  # glibc has both; a libc without them (musl) raises AttributeError
    except (OSError, AttributeError):
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    return libc


def release_freed_memory() -> None:
    """Give the heap's free memory back to the kernel (glibc's ``malloc_trim(0)``), e.g. when a
    job worker goes idle after :func:`reuse_freed_memory` kept a large batch's memory."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def reuse_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds to 1 GiB for this process (once; idempotent).

    Call it before the batch loop; it applies to the allocations that follow.

    Returns
    -------
    bool
        True when glibc accepted both settings, False where there is no glibc (nothing
        changed).
    """
    global _done
    if _done:
        return True
    libc = _libc()
    if libc is None:
        return False
    _done = libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD) == 1
    return _done
