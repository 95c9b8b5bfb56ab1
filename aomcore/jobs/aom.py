"""Job kinds of the paper's loop (Garcia et al. 2019, Fig. 1): train, maps, retrain, the
selectivity experiment, the comparison of a kernel selection with pruning criteria, the maps
of a training snapshot, and the import of a training run."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable

import torch

from ..aom.criteria import compare_criteria
from ..aom.results import cached_experiment, cached_maps, maps_cache_key
from ..aom.retrain import Version, edit_and_retrain, measure
from ..base.cache import DiskCache
from ..base.editing import Edit
from ..base.models import build_model
from ..base.paths import inside
from ..base.training import TrainConfig, default_train_config, train
from ..deepeyes.statistics import TrainingMonitor
from ..store.run_import import import_run, new_run_dir
from ..store.runs import RunWriter, read_run, resolve_run, run_model, snapshot_schedule
from ..store.workspace import Workspace
from .engine import JobContext
from .registry import job_kind


def _steps(n_images: int, config) -> int:
    return config.epochs * math.ceil(n_images / config.batch_size)


def _train_progress(ctx: JobContext, run) -> Callable[[dict], None]:
    def report(m: dict) -> None:  # the page and the CLI put the job's label before this text
        run.log(m)
        ctx.progress(m["step"], m["steps"], f"epoch {m['epoch']}, step {m['step']}/{m['steps']}, loss {m['loss']:.3f}")
    return report


def _monitor(run, train_set, p: dict) -> Callable:
    """A factory of the DeepEyes monitor of a training (none with ``monitor: false`` or no snapshots)."""
    def build(model):
        if not p.get("monitor", True) or not run.schedule:
            return None
        monitor = TrainingMonitor(model, None, train_set.num_classes, train_set.input_shape,
                                  positions=p.get("positions", 10), seed=p.get("seed", 0))
        run.attach(monitor)
        return monitor
    return build


@job_kind("train", "Training")
def train_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """Train a zoo model from scratch on the workspace's train split → a new root version and a run."""
    train_set, test_set = ws.load_split("train"), ws.load_split("test")
    config = TrainConfig(**p["config"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = build_model(p["arch"], train_set.num_classes, train_set.input_shape)
    schedule = snapshot_schedule(_steps(len(train_set), config), p.get("snapshots", 20))
    run = RunWriter.in_workspace(ws, "train", {"arch": p["arch"], "edits": [], "config": p["config"],
                                               "parent": None, "job": ctx.job_id},
                                 schedule, test_set=test_set, device=p.get("device", "auto"))
    try:
        start = time.perf_counter()
        train(model, train_set, config, device=p.get("device", "auto"), cancel=ctx, on_step=run.on_step,
              progress=_train_progress(ctx, run), monitor=_monitor(run, train_set, p)(model))
        seconds = time.perf_counter() - start
        model = model.cpu().eval()
        ctx.progress(1, 1, "measuring accuracy, parameters and FLOPs")
        metrics = measure(model, test_set, p.get("device", "auto"))
        run.finish()
    except BaseException:
        run.discard()
        raise
    record = ws.add_version(model, parent=None, edits=[], metrics=metrics, arch=p["arch"],
                            note=f"trained here: {p['arch']}, {config.epochs} epoch(s)",
                            num_classes=train_set.num_classes, input_shape=train_set.input_shape,
                            classes=train_set.classes, retrain_seconds=seconds, retrain_config=p["config"],
                            run=run.record["id"])
    return {"version": record["id"], "run": run.record["id"]}


@job_kind("maps", "Computing maps")
def maps_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """The maps of a version's layers over a split, into the workspace's content-keyed results."""
    loaded = ws.loaded(p["version"])
    data = ws.load_split(p["split"])
    start = time.perf_counter()
    maps, hit = cached_maps(loaded, data, p["layers"], p["threshold"], p.get("batch_size", 256),
                            p.get("device", "auto"), cache=ws.results_cache,
                            progress=lambda d, t: ctx.progress(d, t, f"counting activations: {d:,} / {t:,} images"))
    key = maps_cache_key(loaded, data, p["layers"], p["threshold"], p.get("batch_size", 256))
    ws.record_result({"kind": "maps", "key": key, "digest": loaded.digest, "version": p["version"],
                      "layers": list(maps), "split": p["split"], "threshold": p["threshold"],
                      "seconds": time.perf_counter() - start, "from_cache": hit, "n_images": len(data),
                      "dataset": data.identity()})
    return {"key": key}


@job_kind("retrain", "Retraining")
def retrain_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """Edit a version, retrain with the paper's freezing, → a child version and a run."""
    parent_rec = ws.version(p["parent"])
    loaded = ws.loaded(p["parent"])
    parent = Version(id=p["parent"], parent=parent_rec["parent"], edits=loaded.edits, model=loaded.model,
                     digest=parent_rec["digest"], metrics=parent_rec["metrics"])
    edit = Edit.from_dict(p["edit"])
    train_set, test_set = ws.load_split("train"), ws.load_split("test")
    config = TrainConfig(**p["config"])
    schedule = snapshot_schedule(_steps(len(train_set), config), p.get("snapshots", 20))
    run = RunWriter.in_workspace(ws, "retrain", {"arch": ws.state()["arch"],
                                                 "edits": [*parent_rec["edits"], edit.to_dict()],
                                                 "config": p["config"], "freeze": p["freeze"],
                                                 "parent": p["parent"], "job": ctx.job_id},
                                 schedule, test_set=test_set, device=p.get("device", "auto"))
    try:
        version = edit_and_retrain(parent, edit, -1, train_set, test_set, p["freeze"], config,
                                   p.get("device", "auto"), progress=_train_progress(ctx, run),
                                   cancel=ctx, on_step=run.on_step, monitor=_monitor(run, train_set, p))
        run.finish()
    except BaseException:
        run.discard()
        raise
    record = ws.add_version(version.model, parent=p["parent"], edits=version.edits, metrics=version.metrics,
                            note=version.note, arch=ws.state()["arch"], num_classes=train_set.num_classes,
                            input_shape=train_set.input_shape, classes=train_set.classes,
                            retrain_seconds=version.retrain_seconds, retrain_config=p["config"] | {
                                "freeze": p["freeze"]}, run=run.record["id"], make_current="if_unmoved")
    return {"version": record["id"], "run": run.record["id"]}


@job_kind("experiment", "Experiment")
def experiment_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """The selectivity experiment (Sec. V-C) of a version's layer: maps on train, accuracies on test."""
    loaded = ws.loaded(p["version"])
    train_set, test_set = ws.load_split("train"), ws.load_split("test")
    device = p.get("device", "auto")
    maps, _ = cached_maps(loaded, train_set, [p["layer"]], 0.0, device=device, cache=ws.results_cache,
                          progress=lambda d, t: ctx.progress(d, 2 * t, f"maps of the train split: {d:,}/{t:,}"))
    rows, _ = cached_experiment(loaded, maps[p["layer"]], test_set, device=device, cache=ws.results_cache,
                                progress=lambda d, t: ctx.progress(t + d, 2 * t, f"evaluating: pass {d} of {t}"))
    key = f"{loaded.digest}:{p['layer']}:{test_set.digest}"
    ws.record_result({"kind": "experiment", "key": key, "digest": loaded.digest, "version": p["version"],
                      "layer": p["layer"], "tap": maps[p["layer"]].tap, "rows": rows})
    return {"key": key}


@job_kind("criteria", "Comparing criteria")
def criteria_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """Test accuracy with only ``keep`` kernels of a layer kept, chosen by each pruning criterion and by
    the user (:func:`~aomcore.aom.criteria.compare_criteria`): maps and Taylor's batch from the train
    split, accuracies on test.

    Parameters (``p``): ``version``, ``layer``, ``keep``, ``user_keep`` (list of kernel indices,
    optional), ``seed`` (default 0), ``retrain_epochs`` (default 0: silencing only), ``device``.
    Retraining uses the dataset's training recipe (:func:`~aomcore.base.training.default_train_config`)
    with ``retrain_epochs`` epochs. The result is indexed as a ``criteria`` result whose ``result``
    holds the comparison's JSON.
    """
    loaded = ws.loaded(p["version"])
    train_set, test_set = ws.load_split("train"), ws.load_split("test")
    device, seed, user = p.get("device", "auto"), p.get("seed", 0), p.get("user_keep")
    epochs = p.get("retrain_epochs", 0)  # checked by compare_criteria (limits.RETRAIN_EPOCHS)
    maps, _ = cached_maps(loaded, train_set, [p["layer"]], 0.0, device=device, cache=ws.results_cache,
                          progress=lambda d, t: ctx.progress(d, 2 * t, f"maps of the train split: {d:,}/{t:,}"))
    step = "evaluating and retraining" if epochs else "evaluating"
    result = compare_criteria(loaded.model, maps, p["layer"], p["keep"], test_set, user_keep=user, seed=seed,
                              device=device, train_set=train_set, retrain_epochs=epochs,
                              config=default_train_config(ws.state()["dataset"]["spec"]), cancel=ctx,
                              progress=lambda d, t: ctx.progress(t + d, 2 * t, f"{step}: criterion {d} of {t}"))
    key = DiskCache.key(kind="criteria", model=loaded.digest, layer=p["layer"], keep=result["keep"],
                        user=None if user is None else sorted(int(i) for i in user), seed=seed,
                        test=test_set.identity(), retrain_epochs=result.get("retrain_epochs", 0))
    ws.record_result({"kind": "criteria", "key": key, "digest": loaded.digest, "version": p["version"],
                      "layer": p["layer"], "tap": maps[p["layer"]].tap, "keep": result["keep"], "seed": seed,
                      "result": result})
    return {"key": key}


@job_kind("maps_snapshot", "Maps of a snapshot")
def maps_snapshot_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """The maps of a run's snapshot (params: run, iteration, layers, split, threshold) → a
    ``snapshot_maps`` result of the workspace."""
    folder = resolve_run(str(p["run"]), ws)
    state = ws.state()
    num_classes, input_shape = state.get("num_classes"), state.get("input_shape")
    if num_classes is None:  # a workspace that holds only imported runs
        test = ws.load_split("test")
        num_classes, input_shape = test.num_classes, test.input_shape
    loaded = run_model(read_run(folder), num_classes, input_shape, int(p["iteration"]), folder)
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


@job_kind("run_import", "Importing checkpoints")
def run_import_job(ws: Workspace, p: dict, ctx: JobContext) -> dict:
    """Checkpoints staged in the workspace (:func:`~aomcore.store.run_import.stage_checkpoints`) → a run.

    Parameters (``p``): ``folder`` (relative to the workspace), ``arch``, ``edits`` (list of
    edit dicts), ``device``. Each snapshot is evaluated on the test split. The staged files
    are removed afterwards, whatever the outcome.
    """
    folder = inside(ws.path, p.get("folder"), "the staged checkpoints")
    try:
        test = ws.load_split("test")
        imported = import_run(folder, p["arch"], test.num_classes, test.input_shape,
                              [Edit.from_dict(e) for e in p.get("edits") or []], new_run_dir(ws.runs_dir),
                              test_set=test, device=p.get("device", "auto"),
                              progress=lambda d, t: ctx.progress(d, t, f"checked {d} of {t} checkpoint(s)"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"run": imported.record["id"], "snapshots": len(imported.record["snapshots"]),
            "skipped": [list(s) for s in imported.skipped]}
