"""Freed activation memory is kept for the next batch (aomcore.base.allocator)."""

import subprocess
import sys

import pytest

_PROBE = """
import resource, sys, torch
from aomcore.base.allocator import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "reuse" else None
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.ones(1000, 12, 28, 28)
before = faults()
for batch in range(20):  # a batch loop: each layer's output is a fresh 37.6 MB tensor
    y = torch.relu(x - 0.5)
    z = y * 2
    del y, z
print(applied, faults() - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the setting is glibc's (Linux)")
def test_a_batch_loop_reuses_the_freed_pages():
    applied, reused = _faults("reuse")
    if applied != "True":
        pytest.skip("no glibc mallopt here (e.g. musl): reuse_freed_memory() is a no-op")
    _, fresh = _faults("default")
    pages = 20 * 3 * 1000 * 12 * 28 * 28 * 4 // 4096  # three 37.6 MB tensors per batch
    assert fresh > pages // 2  # glibc's default: a fresh mmap per tensor, every page faulted in again
    assert reused < fresh // 4  # kept in the heap: most pages are already there (measured: 3-14% of fresh)
