"""The store: workspaces on disk — versions, training runs, content-keyed results, job records."""

from .archive import export_zip, import_zip
from .job_records import ACTIVE, FINAL, list_jobs, read_job, request_cancel
from .run_import import CHECKPOINT_SUFFIXES, ImportedRun, import_run, import_run_files, stage_checkpoints
from .runs import (
    DEFAULT_SNAPSHOTS,
    RunView,
    RunWriter,
    list_runs,
    read_metrics,
    read_run,
    read_run_view,
    resolve_run,
    run_model,
    run_snapshots,
    snapshot_schedule,
)
from .workspace import SCHEMA_VERSION, Workspace, default_home, default_root, list_workspaces, open_by_id

__all__ = ["ACTIVE", "CHECKPOINT_SUFFIXES", "DEFAULT_SNAPSHOTS", "FINAL", "ImportedRun", "RunView", "RunWriter",
           "SCHEMA_VERSION", "Workspace", "default_home", "default_root", "export_zip", "import_run",
           "import_run_files", "import_zip", "list_jobs", "list_runs", "list_workspaces", "open_by_id", "read_job",
           "read_metrics", "read_run", "read_run_view", "request_cancel", "resolve_run", "run_model", "run_snapshots",
           "snapshot_schedule", "stage_checkpoints"]
