"""Job kinds of the Training monitor: the AOM maps of one training snapshot."""

from __future__ import annotations

import time

from .errors import InputError

__all__ = ["job_maps_snapshot", "snapshot_model"]


def snapshot_model(ws, run_id: str, iteration: int):
    """A :class:`~aomcore.workflow.LoadedModel` of a workspace run's snapshot at ``iteration``.

    The run's architecture (with its edits) is rebuilt with
    :func:`~aomcore.editing.build_edited` and the snapshot's safetensors loaded into it.

    Raises
    ------
    InputError
        No such run or no snapshot at that iteration.
    """
    import torch

    from .editing import Edit, build_edited
    from .models import apply_state_dict, load_state_dict, weights_digest
    from .runs import read_run, resolve_run
    from .workflow import LoadedModel

    folder = resolve_run(run_id, ws)
    record = read_run(folder)
    snap = next((s for s in record.get("snapshots", []) if s["iteration"] == int(iteration)), None)
    if snap is None:
        raise InputError("no snapshot at that iteration", expected=", ".join(
            str(s["iteration"]) for s in record.get("snapshots", [])) or "a run with snapshots", found=str(iteration))
    state = ws.state()
    if "num_classes" in record:  # an import says what it was built for
        num_classes, input_shape = record["num_classes"], tuple(record["input_shape"])
    elif "num_classes" in state:
        num_classes, input_shape = state["num_classes"], tuple(state["input_shape"])
    else:
        test = ws.load_split("test")
        num_classes, input_shape = test.num_classes, test.input_shape
    edits = [Edit.from_dict(e) for e in record.get("edits", [])]
    with torch.random.fork_rng(devices=[]):
        model = build_edited(record["arch"], num_classes, input_shape, edits)
    apply_state_dict(model, load_state_dict(folder / snap["file"]))
    model.eval()
    return LoadedModel(arch=record["arch"], model=model, digest=weights_digest(model),
                       source=f"run {record['id']}, iteration {iteration}", edits=edits)


def job_maps_snapshot(ws, p: dict, ctx) -> dict:
    """The maps of a run's snapshot (params: run, iteration, layers, split, threshold) → a
    ``snapshot_maps`` result of the workspace."""
    from .workflow import cached_maps, maps_cache_key

    loaded = snapshot_model(ws, p["run"], p["iteration"])
    data = ws.load_split(p["split"])
    threshold = p.get("threshold", 0.0)
    start = time.perf_counter()
    maps, hit = cached_maps(loaded, data, p.get("layers"), threshold, p.get("batch_size", 256),
                            p.get("device", "auto"), cache=ws.results_cache,
                            progress=lambda d, t: ctx.progress(d, t, f"maps of iteration {p['iteration']}: "
                                                                     f"{d:,} / {t:,} images"))
    key = maps_cache_key(loaded, data, p.get("layers"), threshold, p.get("batch_size", 256))
    ws.record_result({"kind": "snapshot_maps", "key": key, "digest": loaded.digest, "run": p["run"],
                      "iteration": int(p["iteration"]), "layers": list(maps), "split": p["split"],
                      "threshold": threshold, "seconds": time.perf_counter() - start, "from_cache": hit,
                      "n_images": len(data), "dataset": data.identity()})
    return {"key": key}
