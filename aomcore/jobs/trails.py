"""The ``trails`` job kind: training trails (Rauber et al. 2017) of a workspace run, content-keyed.

Computed once (:func:`aomcore.rauber.run_trails.compute_trails`) into ``ws.results_cache``
(kind ``trails``) and indexed with ``ws.record_result``.
"""

from __future__ import annotations

from ..base.embedding import SCHEDULE
from ..rauber.run_trails import compute_trails, trails_key, trails_options
from ..store.runs import read_run, resolve_run, run_model, run_snapshots
from ..store.workspace import Workspace
from .engine import JobContext
from .registry import job_kind

__all__ = ["trails_job"]


@job_kind("trails", "Training trails")
def trails_job(ws: Workspace, params: dict, ctx: JobContext) -> dict:
    """Job kind ``trails``: a workspace run's trails into ``ws.results_cache`` (kind ``trails``), indexed.

    ``params``: ``run`` (id), ``layer``, and the options of :data:`TRAILS_DEFAULTS`.
    Returns ``{"key": ...}``; asking again with the same content is a cache hit.
    """
    p = trails_options(params)
    folder = resolve_run(str(p["run"]), ws)
    record = read_run(folder)
    dataset = ws.load_split(p["split"])
    snapshots = run_snapshots(folder, record)
    key = trails_key(record, snapshots, dataset, p)
    arrays = ws.results_cache.load_arrays("trails", key)
    hit = arrays is not None
    if not hit:
        arrays = compute_trails(snapshots, lambda: run_model(record, dataset.num_classes, dataset.input_shape).model,
                                dataset, p, progress=ctx.progress, cancel=ctx)
        ws.results_cache.save_arrays("trails", key, arrays)
    nh = arrays["neighborhood_hit"]
    ws.record_result({"kind": "trails", "key": key, "digest": key, "run": record["id"], "arch": record["arch"],
                      "layer": p["layer"], "tap": str(arrays["tap"]), "n": p["n"], "method": p["method"],
                      "seed": p["seed"], "stability": p["stability"], "n_iter": p["n_iter"],
                      "split": p["split"], "snapshots": int(len(arrays["snapshots"])),
                      "final_neighborhood_hit": float(nh[-1]), "seconds": float(arrays["seconds"]),
                      "from_cache": hit, "dataset": dataset.identity(), "schedule": SCHEDULE})
    return {"key": key}
