"""``train``, ``layers``, ``maps``, ``overview``, ``selectivity-experiment``, ``criteria``, ``edit``, ``reproduce``."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

from ..aom.criteria import COMPARED_CRITERIA, compare_criteria, layer_scores, summarize_criteria
from ..aom.distributed import distributed_from_env
from ..aom.experiment import summarize_experiment
from ..aom.maps import compute_maps
from ..aom.maps_npz import save_maps_npz
from ..aom.overview import layer_overview
from ..aom.reproduce import PAPER_EXPERIMENTS, reproduce_paper
from ..aom.results import cached_experiment, cached_maps, load_cached_maps
from ..aom.retrain import FREEZE_MODES, edit_and_retrain, initial_version
from ..base import limits
from ..base.atomic import atomic_path, write_json
from ..base.cache import DiskCache
from ..base.devices import resolve_device
from ..base.editing import edit_log_origin, kernel_ranges, parse_edit
from ..base.errors import InputError
from ..base.layers import list_layers, unanalysable_layers
from ..base.loaded import pretrained_zoo_model
from ..base.models import ZOO_FOR_DATASET, save_state_dict
from ..base.training import TrainConfig, check_model_fits, default_train_config, evaluate
from ..deepeyes.reproduce import DEEPEYES_PAPER, reproduce_deepeyes
from ..jobs.engine import run_inline
from ._common import (
    add_data_args,
    add_model_args,
    add_workspace_args,
    given,
    job_printer,
    load_dataset,
    load_for,
    maps_for,
    noted,
    open_workspace,
    preprocessing,
    progress_printer,
    read_edits,
    read_maps,
    train_printer,
)


def _cmd_train(args) -> int:
    if not args.out and not args.workspace:
        raise InputError("nowhere to put the weights", expected="--out FILE and/or --workspace DIR", found="neither")
    if args.arch and not args.arch.startswith("zoo:"):  # before a workspace is created for it
        raise InputError("train builds zoo models", expected="--arch zoo:NAME", found=repr(args.arch))
    start = time.perf_counter()
    ws = open_workspace(args, create=True)
    # an existing workspace's dataset decides the default model and recipe (not the digits default)
    dataset = ws.state()["dataset"]["spec"] if ws is not None else args.dataset or "digits"
    arch = args.arch or f"zoo:{ZOO_FOR_DATASET.get(dataset.partition(':')[0], 'digits_net')}"
    recipe = default_train_config(dataset)
    config = TrainConfig(epochs=given(args.epochs, recipe.epochs), lr=given(args.lr, recipe.lr),
                         batch_size=given(args.batch_size, recipe.batch_size), optimizer=args.optimizer,
                         seed=args.seed)
    if ws is not None:
        final = run_inline(ws, "train", {"arch": arch, "config": config.__dict__, "snapshots": args.snapshots,
                                         "device": args.device}, echo=job_printer("train"))
        vid = final["result"]["version"]
        record = ws.version(vid)
        if args.out:
            save_state_dict(ws.load_version(vid), args.out)
        print(f"{arch} on {dataset}: test accuracy {record['metrics']['accuracy']:.2%} "
              f"({record['metrics']['params']:,} parameters, {time.perf_counter() - start:.1f}s) -> "
              f"{ws.path} v{vid} (run {final['result']['run']})" + (f", {args.out}" if args.out else ""))
        return 0
    prep = preprocessing(args)
    train_set = load_dataset(dataset, "train", args.data_root, prep, args.download)
    test_set = load_dataset(dataset, "test", args.data_root, prep, args.download)
    loaded = pretrained_zoo_model(arch, train_set, config, device=resolve_device(args.device),
                                  cache=DiskCache(args.cache_dir), progress=train_printer("train"))
    result = evaluate(loaded.model, test_set, device=resolve_device(args.device))
    save_state_dict(loaded.model, args.out)
    print(f"{arch} on {dataset}: test accuracy {result.accuracy:.2%} "
          f"({loaded.num_params:,} parameters, {time.perf_counter() - start:.1f}s; {loaded.source}) -> {args.out}")
    return 0


def _print_before_after(note: str, b: dict, a: dict, seconds: float) -> None:
    print(note)
    print(f"{'':<14} {'before':>14} {'after':>14}")
    print(f"{'test accuracy':<14} {b['accuracy']:>14.2%} {a['accuracy']:>14.2%}")
    print(f"{'params':<14} {b['params']:>14,} {a['params']:>14,}")
    print(f"{'FLOPs/image':<14} {b['flops']:>14,} {a['flops']:>14,}")
    for layer in dict.fromkeys([*a["kernels"], *b["kernels"]]):
        print(f"{'  ' + layer:<14} {b['kernels'].get(layer, '-'):>14} {a['kernels'].get(layer, '-'):>14}")
    print(f"retrained in {seconds:.1f}s")


def _cmd_edit(args) -> int:
    for kind in ("remove", "reinit", "widen"):
        if getattr(args, kind) is not None:
            edit = parse_edit(getattr(args, kind), kind, args.seed)
    if args.insert_after is not None:
        edit = parse_edit(args.insert_after, "insert", args.seed)
    if not args.workspace and not (args.out and args.log):
        raise InputError("nowhere to put the edited model", expected="--out and --log, and/or --workspace DIR",
                         found=f"--out {args.out!r}, --log {args.log!r}")
    test_set, loaded, ws, vid = load_for(args, "test")
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=given(args.batch_size, 128), seed=args.seed)
    if ws is not None:
        final = run_inline(ws, "retrain", {"parent": vid, "edit": edit.to_dict(), "freeze": args.freeze,
                                           "config": config.__dict__, "device": args.device,
                                           "snapshots": args.snapshots}, echo=job_printer("retrain"))
        parent, new = ws.version(vid), ws.version(final["result"]["version"])
        before, after, model = parent["metrics"], new["metrics"], ws.load_version(new["id"])
        edits, digest, note, seconds = new["edits"], new["digest"], new["note"], new["retrain_seconds"]
        where = f"{ws.path} v{new['id']} (run {final['result']['run']})"
    else:
        train_set = load_dataset(args.dataset or "digits", "train", args.data_root, preprocessing(args),
                                 args.download)
        device = resolve_device(args.device)
        v0 = initial_version(loaded.model, test_set, device, edits=read_edits(args.edits) if args.edits else None)
        v1 = edit_and_retrain(v0, edit, 1, train_set, test_set, args.freeze, config, device,
                              progress=train_printer("retrain"))
        before, after, model = v0.metrics, v1.metrics, v1.model
        edits, digest, note, seconds = [e.to_dict() for e in v1.edits], v1.digest, v1.note, v1.retrain_seconds
        where = ""
    outputs = []
    if args.out:
        with atomic_path(args.out) as tmp:
            save_state_dict(model, tmp, fmt="safetensors" if str(args.out).endswith(".safetensors") else "pt")
        outputs.append(args.out)
    if args.log:
        write_json(args.log, {"arch": loaded.arch, "base_weights": str(args.weights or loaded.source),
                              "base_digest": loaded.digest, "edits": edits, "weights": str(args.out),
                              "digest": digest, "before": before, "after": after, "retrain_seconds": seconds,
                              "note": note, "kernel_origin": edit_log_origin(loaded.arch, test_set, edits)})
        outputs.append(args.log)
    _print_before_after(note, before, after, seconds)
    print("-> " + ", ".join([*([where] if where else []), *outputs]))
    return 0


def _reproduction(args, experiment: str, arch: str, dataset: str, reduce_current: bool = True):
    """The splits, the ``--workspace`` (or None), its current version as the baseline (or None; always None
    unless ``reduce_current``) and a recorder that adds each step there as a version (the baseline too,
    unless it came from the workspace)."""
    exists = bool(args.workspace) and (Path(args.workspace).expanduser() / "workspace.json").is_file()
    if not exists:
        args.dataset = args.dataset or dataset
    ws = open_workspace(args, create=True)
    if ws is None:
        train_set, test_set = (load_dataset(args.dataset, split, args.data_root, preprocessing(args), args.download)
                               for split in ("train", "test"))
    else:
        train_set, test_set = (noted(ws.load_split(split)) for split in ("train", "test"))
    baseline = None
    if reduce_current and ws is not None and ws.current_version is not None:
        baseline = ws.loaded(ws.current_version)
        if baseline.arch != arch:
            raise InputError(f"reproduce {experiment} reduces {arch}; the workspace's current version is another model",
                             expected=f"a workspace whose current version is {arch}, or a new workspace folder",
                             found=f"{baseline.arch} (v{ws.current_version} of {ws.path})")

    def record(version, parent_id):  # each step becomes a version of the workspace
        if baseline is not None and parent_id is None:  # the baseline is the workspace's version already
            return ws.current_version
        rec = ws.add_version(version.model, parent=parent_id, edits=version.edits, metrics=version.metrics,
                             note=f"reproduce {experiment}: {version.note or 'baseline'}", arch=arch,
                             num_classes=train_set.num_classes, input_shape=train_set.input_shape,
                             classes=train_set.classes, retrain_seconds=version.retrain_seconds)
        return rec["id"]

    return train_set, test_set, ws, baseline, record


def _cmd_reproduce(args) -> int:
    if args.experiment == "deepeyes":
        return _cmd_reproduce_deepeyes(args)
    start = time.perf_counter()
    spec = PAPER_EXPERIMENTS[args.experiment]
    train_set, test_set, ws, baseline, record = _reproduction(args, args.experiment, spec["arch"], spec["dataset"])
    config = TrainConfig(epochs=args.epochs, batch_size=given(args.batch_size, TrainConfig.batch_size))
    rows = reproduce_paper(args.experiment, train_set, test_set, baseline=baseline, config=config,
                           device=resolve_device(args.device), cache=DiskCache(args.cache_dir),
                           log=lambda line: print(line, file=sys.stderr), on_version=record if ws else None)
    seconds = time.perf_counter() - start
    results = {"experiment": args.experiment, "section": spec["section"], "dataset": train_set.name,
               "steps": rows, "seconds": seconds, "paper": spec["paper"]}
    write_json(args.out, results)
    if ws is not None:
        ws.record_result({"kind": "reproduce", "key": args.experiment, "digest": None, "steps": rows})
    print(f"Sec. {spec['section']} on {train_set.name} ({len(train_set):,} train, {len(test_set):,} test images)")
    print(f"{'step':<10} {'kernels':>9} {'params':>9} {'FLOPs':>11} {'accuracy':>9}   paper")
    for r in rows:
        kernels = "" if r["kernels_before"] is None else f"{r['kernels_before']}→{r['kernels_after']}"
        print(f"{r['step']:<10} {kernels:>9} {r['params']:>9,} {r['flops']:>11,} {r['test_accuracy']:>9.2%}   "
              f"{_paper_text(spec['paper'][r['step']])}")
    print(f"{seconds:.0f}s -> {args.out}" + (f", {ws.path}" if ws else ""))
    return 0


def _paper_text(reported) -> str:
    """What the paper reports for a step: ``96.96%``, or ``96.93% (16→5)`` when it gives the kernels kept."""
    if not isinstance(reported, tuple):
        return f"{reported:.2%}"
    kept, accuracy = reported
    return f"{accuracy:.2%}" + (f" (kept {kept})" if kept is not None else "")


def _cmd_reproduce_deepeyes(args) -> int:
    start = time.perf_counter()
    train_set, test_set, ws, _, record = _reproduction(args, "deepeyes", "zoo:deepeyes_mnist", "mnist",
                                                      reduce_current=False)

    rows = reproduce_deepeyes(train_set, test_set, device=resolve_device(args.device),
                              cache=DiskCache(args.cache_dir), log=lambda line: print(line, file=sys.stderr),
                              on_version=record if ws else None)
    seconds = time.perf_counter() - start
    write_json(args.out, {"experiment": "deepeyes", "steps": rows, "seconds": seconds, "paper": DEEPEYES_PAPER})
    if ws is not None:
        ws.record_result({"kind": "reproduce", "key": "deepeyes", "digest": None, "steps": rows})
    print(f"{'step':<10} {'conv1':>6} {'fc1':>5} {'params':>9} {'FLOPs':>11} {'accuracy':>9}")
    for r in rows:
        print(f"{r['step']:<10} {r['kernels']['conv1']:>6} {r['kernels']['fc1']:>5} {r['params']:>9,} "
              f"{r['flops']:>11,} {r['accuracy']:>9.2%}")
    print(f"DeepEyes: conv1 10, fc1 100, 98.2%. {seconds:.0f}s -> {args.out}" + (f", {ws.path}" if ws else ""))
    return 0


def _cmd_layers(args) -> int:
    dataset, loaded, _, _ = load_for(args, "test")
    print(f"{'name':<24} {'type':<14} {'kind':<6} {'output':<16} {'kernels':>7} {'params':>10}  tap")
    for layer in list_layers(loaded.model, dataset.input_shape, include_all=args.all):
        print(f"{layer.name:<24} {layer.type:<14} {layer.kind:<6} {str(layer.output_shape):<16} "
              f"{layer.kernels:>7} {layer.params:>10,}  {layer.tap}"
              + (f" ({layer.tap_note})" if layer.tap_note else ""))
    for name, why in unanalysable_layers(loaded.model, dataset.input_shape):
        print(f"note: {name} is not analysable: {why}")
    return 0


def _cmd_maps(args) -> int:
    if not args.out and not args.workspace:
        raise InputError("nowhere to put the maps", expected="--out FILE and/or --workspace DIR", found="neither")
    dataset, loaded, ws, vid = load_for(args, args.split)
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    if layers is None:  # "every conv layer": say which ones it cannot include
        for name, why in unanalysable_layers(loaded.model, dataset.input_shape):
            print(f"note: {name} is left out: {why}", file=sys.stderr)
    start = time.perf_counter()
    device = resolve_device(args.device)
    run = distributed_from_env(device)
    if run is None:
        if ws is not None and not (args.amp or args.channels_last or args.max_resolution):
            final = run_inline(ws, "maps", {"version": vid, "layers": layers, "split": args.split,
                                            "threshold": args.threshold, "batch_size": given(args.batch_size, 256),
                                            "device": args.device}, echo=job_printer("maps"))
            maps = load_cached_maps(ws.results_cache, final["result"]["key"])
            hit = next(r for r in ws.results("maps") if r["key"] == final["result"]["key"])["from_cache"]
        else:
            maps, hit = cached_maps(loaded, dataset, layers, args.threshold, given(args.batch_size, 256), device,
                                    DiskCache(args.cache_dir), progress=progress_printer("maps"),
                                    autocast=args.amp, channels_last=args.channels_last,
                                    max_resolution=args.max_resolution)
    else:  # torchrun: this rank's shard, counts summed over ranks, rank 0 writes
        try:
            progress = progress_printer(f"maps (rank 0 of {run.world})") if run.is_main else None
            maps = compute_maps(loaded.model, dataset, layers, args.threshold, given(args.batch_size, 256), run.device,
                                progress=progress, indices=run.shard(len(dataset)), reduce=run.reduce,
                                autocast=args.amp, channels_last=args.channels_last,
                                max_resolution=args.max_resolution)
        finally:
            run.close()
        hit = False
        if not run.is_main:
            return 0
    seconds = time.perf_counter() - start
    meta = {"model_digest": loaded.digest, "arch": loaded.arch, "weights": loaded.source,
            "dataset": dataset.identity(), "split": dataset.split,
            "preprocessing": dataset.preprocessing.to_dict(), "seconds": seconds, "from_cache": hit,
            "processes": 1 if run is None else run.world, "autocast": args.amp}
    if args.out:
        save_maps_npz(args.out, maps, meta, loaded.lineage)
    for name, m in maps.items():
        print(f"{name} (read at {m.tap}): {m.num_kernels} kernels × {len(m.classes)} classes × "
              f"{m.counts.shape[2]}×{m.counts.shape[3]} positions; top selectivity "
              f"k{int(m.selectivity.argmax())} = {m.selectivity.max():.3f}")
    where = [*([f"{ws.path} v{vid}"] if ws is not None else []), *([args.out] if args.out else [])]
    print(f"{len(dataset)} images in {seconds:.1f}s{' (from cache)' if hit else ''} -> {', '.join(where)}")
    return 0


_EDIT_FLAGS = {"remove": lambda e: f"--remove {e['layer']}:{kernel_ranges(e['kernels'])}",
               "widen": lambda e: f"--widen {e['layer']}:+{e['n']}",
               "insert": lambda e: f"--insert-after {e['layer']}"}


def _cmd_overview(args) -> int:
    dataset, loaded, ws, _ = load_for(args, args.split)
    names = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    if args.maps:
        maps = maps_for(args, loaded, *read_maps(args.maps), names)
    else:
        cache = ws.results_cache if ws is not None else DiskCache(args.cache_dir)
        maps = cached_maps(loaded, dataset, names, args.threshold, given(args.batch_size, 256),
                           resolve_device(args.device),
                           cache, progress=progress_printer(f"maps ({args.split})"))[0]
    infos = list_layers(loaded.model, dataset.input_shape, include_all=True)
    forward = {layer.name: i for i, layer in enumerate(infos)}
    maps = dict(sorted(maps.items(), key=lambda item: forward.get(item[0], len(forward))))
    rows = layer_overview(maps, layer_kinds={layer.name: layer.kind for layer in infos}, lineage=loaded.lineage)
    if args.json:
        for r in rows:  # every kernel scored by each pruning criterion that applies (Taylor on this split)
            r["scores"] = layer_scores(loaded.model, maps[r["layer"]], data=dataset, device=args.device)
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'layer':<16} {'kernels':>7} {'dead':>5} {'on':>4} {'groups':>6} {'redundant':>9} {'mean s':>7}  "
          f"{'least separated (E)':<26} {'multi-class':>11} {'NH':>5}")
    for r in rows:
        pair = f"{r['least_separated'][0][:10]!r}/{r['least_separated'][1][:10]!r} ({r['least_separated_e']:.3f})"
        hit = "-" if r["neighborhood_hit"] is None else f"{r['neighborhood_hit']:.2f}"
        print(f"{r['layer'][:16]:<16} {r['kernels']:>7} {r['dead']:>5} {r['always_on']:>4} {r['groups']:>6} "
              f"{r['redundant_kernels']:>4} in {r['redundant_groups']:<2} {r['mean_selectivity']:>7.3f}  {pair:<26} "
              f"{r['multi_class_share']:>11.0%} {hit:>5}")
        for f in r["findings"]:
            edit = f"  → {_EDIT_FLAGS[f['edit']['kind']](f['edit'])}" if f["edit"] else ""
            print(f"  Task {f['task']}: {f['finding']}{edit}")
    print("Findings are for you to judge (Garcia et al. 2019, Sec. III); `edit` applies one and retrains.")
    return 0


def _cmd_experiment(args) -> int:
    if not args.out and not args.workspace:
        raise InputError("nowhere to put the results", expected="--out FILE and/or --workspace DIR", found="neither")
    test_set, loaded, ws, vid = load_for(args, "test")
    check_model_fits(loaded.model, test_set)
    if ws is not None and not args.maps:
        final = run_inline(ws, "experiment", {"version": vid, "layer": args.layer, "device": args.device},
                           echo=job_printer("experiment"))
        rec = next(r for r in ws.results("experiment") if r["key"] == final["result"]["key"])
        rows, tap = rec["rows"], rec["tap"]
    else:
        if args.maps:
            maps = maps_for(args, loaded, *read_maps(args.maps), [args.layer])[args.layer]
        else:
            train_set = load_dataset(args.dataset or "digits", "train", args.data_root, preprocessing(args),
                                     args.download)
            maps = cached_maps(loaded, train_set, [args.layer], args.threshold, given(args.batch_size, 256),
                               resolve_device(args.device), DiskCache(args.cache_dir),
                               progress=progress_printer("maps (train)"))[0][args.layer]
        rows, _ = cached_experiment(loaded, maps, test_set, resolve_device(args.device), DiskCache(args.cache_dir))
        tap = maps.tap
    if args.out:
        write_json(args.out, {"layer": args.layer, "tap": tap, "model_digest": loaded.digest, "classes": rows})
    print(f"{'class':<14} {'selective':>9} {'not sel.':>9} {'images':>7} {'all':>8} {'kept':>8} {'removed':>8}")
    for r in rows:
        print(f"{r['class'][:14]:<14} {r['n_selective']:>9} {r['n_not_selective']:>9} {r['n_images']:>7} "
              f"{r['acc_all']:>8.2%} {r['acc_selective_kept']:>8.2%} {r['acc_selective_removed']:>8.2%}")
    where = [*([f"{ws.path} v{vid}"] if ws is not None else []), *([args.out] if args.out else [])]
    print(summarize_experiment(rows) + f" -> {', '.join(where)}")
    return 0


def _kernel_list(text: str) -> list[int]:
    parts = [k.strip() for k in text.split(",") if k.strip()]
    if not parts or not all(re.fullmatch(r"[0-9]+", k) for k in parts):
        raise argparse.ArgumentTypeError(f"expected kernel indices such as 0,3,5, found {text!r}")
    return [int(k) for k in parts]


def _cmd_criteria(args) -> int:
    if not args.out and not args.workspace:
        raise InputError("nowhere to put the results", expected="--out FILE and/or --workspace DIR", found="neither")
    test_set, loaded, ws, vid = load_for(args, "test")
    check_model_fits(loaded.model, test_set)
    if ws is not None:
        final = run_inline(ws, "criteria", {"version": vid, "layer": args.layer, "keep": args.keep,
                                            "user_keep": args.user, "seed": args.seed, "device": args.device,
                                            "retrain_epochs": args.retrain_epochs},
                           echo=job_printer("criteria"))
        result = next(r for r in ws.results("criteria") if r["key"] == final["result"]["key"])["result"]
    else:
        device = resolve_device(args.device)
        train_set = load_dataset(args.dataset or "digits", "train", args.data_root, preprocessing(args),
                                 args.download)
        maps = cached_maps(loaded, train_set, [args.layer], 0.0, given(args.batch_size, 256), device,
                           DiskCache(args.cache_dir), progress=progress_printer("maps (train)"))[0]
        result = compare_criteria(loaded.model, maps, args.layer, args.keep, test_set, user_keep=args.user,
                                  seed=args.seed, device=device, train_set=train_set,
                                  retrain_epochs=args.retrain_epochs,
                                  config=default_train_config(args.dataset or "digits"),
                                  progress=progress_printer("evaluating", unit="criteria"))
    if args.out:
        write_json(args.out, result)
    retrained = bool(result.get("retrain_epochs"))
    print(f"{'criterion':<16} {'silenced':>9}" + (f" {'retrained':>10} {'params':>9} {'MFLOPs':>8}" if retrained
                                                    else "") + f"  kept ({result['keep']} of {args.layer})")
    for name, r in result["criteria"].items():
        extra = ""
        if retrained:
            t = r["retrained"]
            extra = f" {t['accuracy']:>10.2%} {t['params']:>9,} {t['flops'] / 1e6:>8.2f}"
        print(f"{name:<16} {r['accuracy']:>9.2%}{extra}  {kernel_ranges(r['kept'])}")
    where = [*([f"{ws.path} v{vid}"] if ws is not None else []), *([args.out] if args.out else [])]
    after = (f"; retrained: the others removed, {result['retrain_epochs']} epoch(s), frozen: {result['freeze']}"
             if retrained else "")
    print(f"Test accuracy with only the kept kernels (silenced: the others zeroed, before retraining{after}) "
          f"-> {', '.join(where)}")
    print(summarize_criteria(result))
    return 0


def add_parsers(sub) -> None:
    """Add this group's commands to the ``python -m aomcore`` subparsers."""
    p = sub.add_parser("train", help="train a zoo model; writes a state_dict and prints test accuracy")
    p.set_defaults(func=_cmd_train)
    p.add_argument("--arch", default=None, help="zoo:NAME (default: the zoo model for the dataset)")
    add_data_args(p)
    p.add_argument("--epochs", type=limits.epochs, default=None, help="default: 1 (digits: 30)")
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 (digits: 3e-3)")
    p.add_argument("--optimizer", default="adam", help="adam | sgd | adamw")
    p.add_argument("--seed", type=limits.seed, default=0)
    p.add_argument("--snapshots", type=limits.snapshots, default=20,
                   help="weights kept over the run (0: none; default 20)")
    p.add_argument("--out", default=None, help="output weights (.pt or .safetensors)")
    add_workspace_args(p)

    p = sub.add_parser("layers", help="list the analysable layers of a model")
    p.set_defaults(func=_cmd_layers)
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--all", action="store_true", help="also list pooling, activation and block modules")

    p = sub.add_parser("maps", help="compute AOM, ODM, CSM and selectivity; writes maps.npz")
    p.set_defaults(func=_cmd_maps)
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: every conv layer)")
    p.add_argument("--threshold", type=float, default=0.0, help="an activation occurs when > this (default 0)")
    p.add_argument("--amp", choices=("bf16", "fp16"), default=None, help="forward pass under autocast (GPU speed)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--max-resolution", type=limits.max_resolution, default=None,
                   help="pool maps larger than N×N into N×N cells while counting (huge layers)")
    p.add_argument("--out", default=None, help="output .npz")

    p = sub.add_parser("overview", help="one row per layer: the paper's three tasks, with findings and edits")
    p.set_defaults(func=_cmd_overview)
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--split", default="train", choices=("train", "test"), help="split the maps are computed on")
    p.add_argument("--maps", default=None, help="maps.npz of these weights (default: computed, or from the cache)")
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: every conv layer)")
    p.add_argument("--threshold", type=float, default=0.0, help="threshold when the maps are computed here")
    p.add_argument("--json", action="store_true", help="print the rows as JSON, each with every kernel's score by "
                   "each pruning criterion that applies ('scores'; Taylor on a batch of --split)")

    p = sub.add_parser("selectivity-experiment",
                       help="per-class test accuracy with only the selective kernels kept, and with them removed")
    p.set_defaults(func=_cmd_experiment)
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--layer", required=True, help="layer name (e.g. conv2)")
    p.add_argument("--maps", default=None, help="maps.npz holding the layer (default: computed on the train split)")
    p.add_argument("--threshold", type=float, default=0.0, help="threshold when the maps are computed here")
    p.add_argument("--out", default=None, help="output .json")

    p = sub.add_parser("criteria", help="test accuracy with only N kernels of a layer kept, chosen by each "
                                        "pruning criterion (and by you); maps of the train split")
    p.set_defaults(func=_cmd_criteria)
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--layer", required=True, help="layer name (e.g. conv2)")
    p.add_argument("--keep", type=limits.keep, required=True, help="kernels kept (1 to K-1)")
    p.add_argument("--user", type=_kernel_list, default=None, metavar="I,J,K",
                   help="your selection of --keep kernels, compared as 'user'")
    p.add_argument("--seed", type=limits.seed, default=0, help="seeds the random criterion and Taylor's batch")
    p.add_argument("--retrain-epochs", type=limits.retrain_epochs, default=0,
                   help="also remove the other kernels and retrain this many epochs with the paper's freezing "
                        "(adds 'retrained' entries; default 0: silencing only)")
    p.add_argument("--out", default=None, help="output .json")
    p.epilog = ("compares: user (with --user), " + ", ".join(COMPARED_CRITERIA)
                + " (bn_scale only when a BatchNorm follows the layer); the maps and Taylor's batch come from the "
                "train split, the accuracies from the test split")

    p = sub.add_parser("edit", help="edit a layer (remove/reinit/widen/insert), retrain, report before → after")
    p.set_defaults(func=_cmd_edit)
    add_model_args(p)
    add_data_args(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--remove", metavar="LAYER:I,J", help="remove kernels, e.g. conv1:3,5,7")
    what.add_argument("--reinit", metavar="LAYER:I,J", help="re-initialise kernels, e.g. conv1:2")
    what.add_argument("--widen", metavar="LAYER:+N", help="add N kernels, e.g. conv2:+4")
    what.add_argument("--insert-after", metavar="LAYER", help="insert an identity 3×3 conv + ReLU after LAYER")
    p.add_argument("--freeze", default="auto", choices=FREEZE_MODES,
                   help="auto (remove: upto; others: before) | upto (paper) | before | edited | none")
    p.add_argument("--epochs", type=limits.epochs, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=limits.seed, default=0)
    p.add_argument("--snapshots", type=limits.snapshots, default=20, help="weights kept over the retraining (0: none)")
    p.add_argument("--out", default=None, help="edited weights (.pt or .safetensors)")
    p.add_argument("--log", default=None, help="edit list + results (.json); pass it as --edits later")

    p = sub.add_parser("reproduce", help="reproduce a paper experiment end to end")
    p.set_defaults(func=_cmd_reproduce)
    p.add_argument("experiment", choices=["mnist", "cifar10", "deepeyes"],
                   help="mnist: Garcia et al. Sec. V-A (conv1, conv2); cifar10: Sec. V-B (conv1, conv6; on any "
                        "3-channel dataset, e.g. an image folder with --transform \"Resize(40), CenterCrop(32)\"); "
                        "deepeyes: DeepEyes' MNIST use case (conv1 20→10, fc1 500→100)")
    add_data_args(p)
    p.add_argument("--epochs", type=limits.epochs, default=1,
                   help="mnist, cifar10: epochs of the baseline's training when it is not the workspace's "
                        "(default 1, as the paper's MNIST model); each reduction is retrained 1 epoch")
    p.add_argument("--out", required=True, help="results .json")
    p.add_argument("--workspace", default=None, metavar="DIR",
                   help="record each step as a version of the workspace DIR (created if missing); mnist and "
                        "cifar10 reduce its current version when it has one")
