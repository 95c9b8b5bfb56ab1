"""The registry of job kinds: each kind registers itself where it is defined.

The engine (:mod:`aomcore.jobs.engine`) looks kinds up by name and never imports them;
the dashboard labels progress bars with :func:`job_label`. A kind is a function
``run(ws, params, ctx) -> dict`` (a JSON-serialisable result), registered with
:func:`job_kind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..base.errors import InputError

__all__ = ["JOB_KINDS", "JobKind", "get_kind", "job_kind", "job_label"]


@dataclass(frozen=True)
class JobKind:
    """One kind of background job.

    Attributes
    ----------
    name : str
        The kind as stored in job records (``"maps"``).
    label : str
        What a progress bar calls it (``"Computing maps"``).
    run : callable(ws, params, ctx) -> dict
        The job function; it reports progress through ``ctx`` (:class:`~aomcore.jobs.engine.JobContext`).
    """

    name: str
    label: str
    run: Callable


#: Every registered kind, by name (filled by the modules of :mod:`aomcore.jobs` as they are imported).
JOB_KINDS: dict[str, JobKind] = {}


def job_kind(name: str, label: str) -> Callable[[Callable], Callable]:
    """Register the decorated function as the job kind ``name``, shown as ``label``."""
    def register(run: Callable) -> Callable:
        if name in JOB_KINDS and JOB_KINDS[name].run is not run:
            raise ValueError(f"job kind {name!r} is registered twice")
        JOB_KINDS[name] = JobKind(name, label, run)
        return run
    return register


def get_kind(name: str) -> JobKind:
    """The registered kind ``name``.

    Raises
    ------
    InputError
        No such kind, naming the registered ones.
    """
    if name not in JOB_KINDS:
        raise InputError("unknown job kind", expected=", ".join(sorted(JOB_KINDS)), found=repr(name))
    return JOB_KINDS[name]


def job_label(name: str) -> str:
    """The label of the kind ``name`` (the name itself for a kind this process does not know)."""
    kind = JOB_KINDS.get(name)
    return kind.label if kind else name
