"""Live progress of a workspace's jobs: fragments that poll only while a job runs.

A job runs in a worker process and writes its progress into the workspace
(:mod:`aomcore.jobs.engine`); these fragments re-read it once a second while a job of the
workspace runs, every few seconds while its jobs only wait in the queue (their line changes
only when the queue moves: on a shared server most sessions wait, and their polls took the
core that page renders need), and rerun the whole page when one ends. An idle page has no
timer and costs no CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from aomcore import job_label
from aomcore.base.progress import timing_text
from aomcore.store import ACTIVE, list_runs, read_job, read_metrics
from ui import cached, views
from ui.state import View, reported

POLL_SECONDS = 1.0
QUEUED_POLL_SECONDS = 5.0  # while every job shown is queued
RECENT_SECONDS = 15 * 60  # how long a failed or cancelled job is mentioned on its page


def _progress(job: dict) -> float:
    p = job.get("progress") or {}
    return min(1.0, p.get("done", 0) / p["total"]) if p.get("total") else 0.0


def _line(job: dict) -> str:
    label = job_label(job["kind"])
    if job["status"] == "queued":
        place = cached.runner().queue_position(job["id"])
        return f"{label}: queued" + (f" (position {place} in the server's queue)" if place else "")
    progress = job.get("progress") or {}
    return f"{label}: {progress.get('text') or 'starting…'}{_timing(job)}"


def _timing(job: dict) -> str:
    """`` · 1 min 05 s elapsed, about 40 s left`` for a started job (the estimate from its own rate), else ""."""
    if not job.get("started"):
        return ""
    p = job.get("progress") or {}
    return f" · {timing_text(p.get('done', 0), p.get('total', 0), time.time() - job['started'])}"


def _curve(v: View, job: dict):
    run = next((r for r in list_runs(v.ws) if r.get("job") == job["id"]), None)
    metrics = read_metrics(run["path"]) if run else []
    return views.training_curve(metrics) if metrics else None


def poll_seconds(jobs: list[dict]) -> float | None:
    """How often to re-read ``jobs`` (active job records): None when there are none, :data:`POLL_SECONDS`
    when one runs, :data:`QUEUED_POLL_SECONDS` when all of them wait in the queue."""
    if not jobs:
        return None
    return POLL_SECONDS if any(j["status"] != "queued" for j in jobs) else QUEUED_POLL_SECONDS


def job_panel(v: View, kinds: tuple[str, ...], chart: bool = False) -> None:
    """Progress bars (and, for training, the live loss curve) of the workspace's running jobs, with Cancel."""
    active = v.active_jobs(kinds)
    ids, status = [j["id"] for j in active], {j["id"]: j["status"] for j in active}

    @st.fragment(run_every=poll_seconds(active))
    def panel():
        for job_id in ids:
            job = read_job(v.ws, job_id)
            if job["status"] != status[job_id]:
                st.rerun()  # a job ended (redraw the page with its result) or started (poll it faster)
            st.progress(_progress(job), text=_line(job))
            if chart and job["kind"] in ("train", "retrain") and (curve := _curve(v, job)) is not None:
                st.altair_chart(curve, width="stretch")
            if not v.ws.read_only and st.button("Cancel", key=f"cancel_{job_id}"):
                with reported():
                    cached.runner().cancel(v.ws, job_id)
                    st.toast("Cancelling: the job stops at its next step; nothing it did is kept.")

    panel()


def rerun_when(ready: Callable[[], bool]) -> None:
    """Poll ``ready()`` every :data:`POLL_SECONDS` and redraw the whole page once it is true: for what a
    running job makes before it ends (a training run's folder, which the Training monitor lists)."""

    @st.fragment(run_every=POLL_SECONDS)
    def poll():
        if ready():
            st.rerun()

    poll()


def job_outcome(v: View, kind: str) -> None:
    """Say how the last job of ``kind`` ended, if it failed, was cancelled or interrupted."""
    job = v.last_job(kind)
    if job is None or job["status"] in ACTIVE or job["status"] == "done":
        return
    if time.time() - (job.get("finished") or job.get("created", 0)) > RECENT_SECONDS:
        return
    label = job_label(kind)
    if job["status"] == "failed":
        st.error(f"{label} failed: {job.get('message')}. The workspace is as it was.", icon=":material/error:")
    elif job["status"] == "cancelled":
        st.warning(f"{label} was cancelled; the workspace is as it was.")
    else:
        st.warning(f"{label} was interrupted ({job.get('message')}); the workspace is as it was: start it again.")


def sidebar_jobs(v: View) -> None:
    """One line per running job of the workspace, updated while any runs."""
    active = v.active_jobs()
    ids, status = [j["id"] for j in active], {j["id"]: j["status"] for j in active}

    @st.fragment(run_every=poll_seconds(active))
    def lines():
        for job_id in ids:
            job = read_job(v.ws, job_id)
            if job["status"] != status[job_id]:
                st.rerun()  # ended, or started: see job_panel
            p = job.get("progress") or {}
            done = f" · {p['done']:,}/{p['total']:,}" if p.get("total") else ""
            timing = _timing(job) if job["status"] == "running" else ""
            st.caption(f"**{job_label(job['kind'])}** · {job['status']}{done}{timing}")

    lines()
