"""Background jobs: the engine, the registry of job kinds, and the kinds themselves.

Importing this package registers every kind: the paper's loop (:mod:`.aom`), DeepEyes'
statistics (:mod:`.deepeyes`), the 2-D views (:mod:`.embed`) and training trails
(:mod:`.trails`). Records live in the workspace (:mod:`aomcore.store.job_records`).
"""

from . import aom, deepeyes, embed, trails  # noqa: F401  (each module registers its kinds)
from .embed import stored_embedding
from .engine import JobContext, JobRunner, run_inline, submit_record
from .registry import JOB_KINDS, JobKind, get_kind, job_kind, job_label

__all__ = ["JOB_KINDS", "JobContext", "JobKind", "JobRunner", "get_kind", "job_kind", "job_label", "run_inline",
           "stored_embedding", "submit_record"]
