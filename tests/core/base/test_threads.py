"""One rule for the threads of a process (aomcore.base.threads, issue #24): cores, share, apply, registry."""

import os
import subprocess
import sys

import pytest
import torch

from aomcore.base import threads
from aomcore.base.errors import InputError


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A private registry folder, this process unregistered, torch's thread count restored after."""
    folder = tmp_path / "registry"
    monkeypatch.setattr(threads, "_folder", lambda: folder)
    monkeypatch.setattr(threads, "_state", {"applied": None, "depth": 0, "reserve": 0, "checked": 0.0,
                                            "limiter": None})
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    monkeypatch.setattr(threads, "_STARTED_WITH", "")
    for name in threads._ENV_VARS:
        monkeypatch.setenv(name, os.environ.get(name, ""))
    before = torch.get_num_threads()
    yield folder
    if threads._state["limiter"] is not None:
        threads._state["limiter"].restore_original_limits()
    torch.set_num_threads(before)


@pytest.fixture
def other_process():
    """A live process of 'ours' (a sleeping Python) to register beside this one."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_available_cores_is_the_affinity_bounded_by_the_cgroup_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: None)
    assert threads.available_cores() == 6
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 2.5)  # e.g. cpu.max "250000 100000"
    assert threads.available_cores() == 3
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: 0.2)
    assert threads.available_cores() == 1


def test_the_share_divides_the_cores_among_our_running_processes(registry, monkeypatch, other_process):
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    assert threads.share() == 8  # alone
    assert threads.share(reserve=1) == 7  # the dashboard keeps a core for page renders
    registry.mkdir()
    (registry / str(other_process)).touch()
    with threads.running() as count:  # this process and the sleeping one
        assert count == 4 and torch.get_num_threads() == 4
        assert os.environ["OMP_NUM_THREADS"] == "4" and os.environ["NUMBA_NUM_THREADS"] == "4"
        assert sorted(p.name for p in registry.iterdir()) == sorted([str(os.getpid()), str(other_process)])
        with threads.running() as inner:  # a job run inline by a CLI command: registered once
            assert inner == 4
        assert (registry / str(os.getpid())).exists()
    assert not (registry / str(os.getpid())).exists()


def test_a_dead_process_is_not_counted_and_its_file_is_removed(registry, monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    registry.mkdir()
    (registry / str(proc.pid)).touch()
    (registry / "not-a-pid").touch()
    assert threads.share() == 4
    assert not (registry / str(proc.pid)).exists()


def test_a_running_job_gives_threads_back_when_another_starts(registry, monkeypatch, other_process):
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    monkeypatch.setattr(threads, "_REBALANCE_EVERY", 0.0)
    with threads.running() as count:
        assert count == 4
        (registry / str(other_process)).touch()
        assert threads.rebalance() == 2 and torch.get_num_threads() == 2
        (registry / str(other_process)).unlink()
        assert threads.rebalance() == 4 and torch.get_num_threads() == 4
    assert threads.rebalance() == 4  # not registered: nothing re-applied


def test_the_environment_overrides_and_a_bad_value_is_refused(registry, monkeypatch):
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    monkeypatch.setattr(threads, "_STARTED_WITH", "1")  # e.g. a server started with OMP_NUM_THREADS=1
    assert threads.share() == 1
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.share() == 3
    for bad in ("0", "two", "-1", "100000"):
        monkeypatch.setenv(threads.THREADS_ENV, bad)
        with pytest.raises(InputError, match=threads.THREADS_ENV):
            threads.share()


def test_numpy_blas_is_limited_too(registry):
    from threadpoolctl import threadpool_info

    threads.apply(1)
    pools = [p for p in threadpool_info() if p["user_api"] in ("blas", "openmp")]
    assert pools and all(p["num_threads"] == 1 for p in pools)
