"""Background retraining: a plain thread that never calls Streamlit, polled by a fragment.

The job object lives in the session's workspace. The thread appends metrics under a lock;
the page's ``st.fragment(run_every=…)`` draws them and offers Cancel. A finished job is
collected into the version history by :func:`collect`, which every page run calls, so
the result lands even if the user is on another page when training ends. A cancelled or
failed job leaves the current version as it was.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field

import aomcore
from aomcore import Edit, TrainConfig, Version
from aomcore.training import Cancelled


@dataclass
class RetrainJob:
    """One edit + retrain running in a thread.

    Attributes
    ----------
    status : {"running", "done", "cancelled", "failed"}
    metrics : list of dict
        Training steps so far (epoch, step, steps, loss, accuracy, seconds).
    result : Version or None
    error : str or None
    """

    edit: Edit
    parent: Version
    new_id: int
    freeze: str
    config: TrainConfig
    device: str
    status: str = "running"
    metrics: list[dict] = field(default_factory=list)
    result: Version | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    collected: bool = False

    def start(self, train_set, test_set) -> RetrainJob:
        threading.Thread(target=self._run, args=(train_set, test_set), daemon=True,
                         name=f"aomscope-retrain-v{self.new_id}").start()
        return self

    def _run(self, train_set, test_set) -> None:
        def progress(m):
            with self.lock:
                self.metrics.append(m)

        try:
            version = aomcore.edit_and_retrain(self.parent, self.edit, self.new_id, train_set, test_set, self.freeze,
                                               self.config, self.device, progress=progress, cancel=self.cancel)
            with self.lock:
                self.result, self.status = version, "done"
        except Cancelled:
            with self.lock:
                self.status = "cancelled"
        except aomcore.InputError as exc:
            with self.lock:
                self.error, self.status = str(exc), "failed"
        except Exception as exc:  # a failed run must never take the session down
            traceback.print_exc()
            with self.lock:
                self.error, self.status = f"{type(exc).__name__}: {exc}", "failed"

    def snapshot(self) -> tuple[str, list[dict]]:
        with self.lock:
            return self.status, list(self.metrics)


def collect(ws) -> None:
    """Move a finished job's version into the history and make it current (once)."""
    job: RetrainJob | None = ws.job
    if job is None or job.collected or job.status == "running":
        return
    job.collected = True
    if job.status == "done" and ws.history is not None:
        ws.history.add(job.result)
        ws.use_version(job.result)
