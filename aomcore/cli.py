"""Command line: ``python -m aomcore {train,layers,maps,overview,deepeyes,embed,selectivity-experiment,edit,
reproduce,workspace,run} ...``."""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from .allocator import reuse_freed_memory
from .atomic import atomic_path, write_bytes, write_json
from .cache import DiskCache
from . import data as _data
from .data import Preprocessing
from .deepeyes import compute_deepeyes, deepeyes_over_snapshots, save_deepeyes_npz
from .distributed import distributed_from_env
from .editing import Edit, build_edited, load_edits, parse_edit
from .errors import InputError
from .experiment import summarize_experiment
from .export import load_maps_npz, save_maps_npz
from .layers import list_layers, resolve_layers
from .maps import compute_maps, resolve_device
from .models import ZOO_FOR_DATASET, save_state_dict
from .overview import layer_overview
from .reproduce import PAPER_MNIST, reproduce_mnist
from .training import TrainConfig, check_model_fits, default_train_config, evaluate
from .jobs import run_inline
from .runs import read_run, resolve_run
from .versions import FREEZE_MODES, edit_and_retrain, initial_version, measure
from .workflow import (LoadedModel, load_cached_maps, cached_experiment, cached_maps, load_model,
                       pretrained_zoo_model)
from .workspace import Workspace, export_zip, import_zip, list_workspaces

__all__ = ["main"]


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, found {text!r}") from None


def _positions(text: str) -> int | str:
    if text == "all":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', found {text!r}")
    return value


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=None,
                   help="digits | mnist | fashion-mnist | cifar10 | imagefolder:PATH | npz:PATH (default: digits)")
    p.add_argument("--data-root", default=None, help="folder in torchvision's layout (default: $AOMSCOPE_DATA_ROOT)")
    p.add_argument("--download", action="store_true", help="let torchvision download MNIST/FashionMNIST/CIFAR-10")
    p.add_argument("--mean", type=_floats, default=None, help="per-channel mean, e.g. 0.1307")
    p.add_argument("--std", type=_floats, default=None, help="per-channel std, e.g. 0.3081")
    p.add_argument("--channels", type=int, default=None, help="repeat grayscale images to N channels")
    p.add_argument("--resize", type=int, default=None, help="resize images to N×N pixels")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (maps: 256; train: the recipe's)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--cache-dir", default=None, help="disk cache (default: $AOMSCOPE_CACHE_DIR or ~/.cache/aomscope)")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default=None, help="zoo:NAME | torchvision:NAME | FILE.py:CLASS")
    p.add_argument("--weights", default=None, help="state_dict: .pt (weights_only) or .safetensors")
    p.add_argument("--edits", default=None, help="edit list (JSON from `edit --log`) that the weights belong to")
    _add_workspace_args(p, version=True)


def _add_workspace_args(p: argparse.ArgumentParser, version: bool = False) -> None:
    p.add_argument("--workspace", default=None, metavar="DIR",
                   help="record what this command does in the workspace DIR (created if missing); with it, "
                        "the model is the workspace's current version unless --version or --arch/--weights")
    if version:
        p.add_argument("--version", type=int, default=None, help="the workspace version to use (default: current)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aomcore",
                                     description="Activation occurrence maps (Garcia et al., IJCNN 2019).")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a zoo model; writes a state_dict and prints test accuracy")
    p.add_argument("--arch", default=None, help="zoo:NAME (default: the zoo model for the dataset)")
    _add_data_args(p)
    p.add_argument("--epochs", type=int, default=None, help="default: 1 (digits: 30)")
    p.add_argument("--lr", type=float, default=None, help="default: 1e-3 (digits: 3e-3)")
    p.add_argument("--optimizer", default="adam", help="adam | sgd | adamw")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snapshots", type=int, default=20, help="weights kept over the run (0: none; default 20)")
    p.add_argument("--out", default=None, help="output weights (.pt or .safetensors)")
    _add_workspace_args(p)

    p = sub.add_parser("layers", help="list the analysable layers of a model")
    _add_model_args(p)
    _add_data_args(p)
    p.add_argument("--all", action="store_true", help="also list pooling, activation and block modules")

    p = sub.add_parser("maps", help="compute AOM, ODM, CSM and selectivity; writes maps.npz")
    _add_model_args(p)
    _add_data_args(p)
    p.add_argument("--split", default="train", choices=("train", "test"))
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: every conv layer)")
    p.add_argument("--threshold", type=float, default=0.0, help="an activation occurs when > this (default 0)")
    p.add_argument("--amp", choices=("bf16", "fp16"), default=None, help="forward pass under autocast (GPU speed)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--max-resolution", type=int, default=None,
                   help="pool maps larger than N×N into N×N cells while counting (huge layers)")
    p.add_argument("--out", default=None, help="output .npz")

    p = sub.add_parser("overview", help="one row per layer: the paper's three tasks, with findings and edits")
    _add_model_args(p)
    _add_data_args(p)
    p.add_argument("--split", default="train", choices=("train", "test"), help="split the maps are computed on")
    p.add_argument("--maps", default=None, help="maps.npz of these weights (default: computed, or from the cache)")
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: every conv layer)")
    p.add_argument("--threshold", type=float, default=0.0, help="threshold when the maps are computed here")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")

    p = sub.add_parser("deepeyes", help="DeepEyes statistics (perplexity histogram, activation heatmap, "
                                        "filter similarity/labels); writes deepeyes.npz")
    _add_model_args(p)
    _add_data_args(p)
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: every conv and FC layer)")
    p.add_argument("--positions", type=_positions, default=10,
                   help="positions sampled per image (without replacement), or 'all' (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the position sampler (default 0)")
    p.add_argument("--bins", type=int, default=30, help="perplexity histogram bins (default 30)")
    p.add_argument("--no-similarity", action="store_true", help="skip the (K, K) filter similarity")
    p.add_argument("--run", default=None, help="a run folder (or, with --workspace, a run id or 'latest'): one pass "
                                              "per snapshot, stacked on a leading snapshot axis")
    p.add_argument("--out", required=True, help="output .npz")

    p = sub.add_parser("selectivity-experiment",
                       help="per-class test accuracy with only the selective kernels kept, and with them removed")
    _add_model_args(p)
    _add_data_args(p)
    p.add_argument("--layer", required=True, help="layer name (e.g. conv2)")
    p.add_argument("--maps", default=None, help="maps.npz holding the layer (default: computed on the train split)")
    p.add_argument("--threshold", type=float, default=0.0, help="threshold when the maps are computed here")
    p.add_argument("--out", default=None, help="output .json")

    p = sub.add_parser("edit", help="edit a layer (remove/reinit/widen/insert), retrain, report before → after")
    _add_model_args(p)
    _add_data_args(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--remove", metavar="LAYER:I,J", help="remove kernels, e.g. conv1:3,5,7")
    what.add_argument("--reinit", metavar="LAYER:I,J", help="re-initialise kernels, e.g. conv1:2")
    what.add_argument("--widen", metavar="LAYER:+N", help="add N kernels, e.g. conv2:+4")
    what.add_argument("--insert-after", metavar="LAYER", help="insert an identity 3×3 conv + ReLU after LAYER")
    p.add_argument("--freeze", default="auto", choices=FREEZE_MODES,
                   help="auto (remove: upto; others: before) | upto (paper) | before | edited | none")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snapshots", type=int, default=20, help="weights kept over the retraining (0: none)")
    p.add_argument("--out", default=None, help="edited weights (.pt or .safetensors)")
    p.add_argument("--log", default=None, help="edit list + results (.json); pass it as --edits later")

    p = sub.add_parser("embed", help="2-D projection of a layer: images (activations), DeepEyes' input map, "
                                     "or neurons; writes embed.npz")
    _add_model_args(p)
    _add_data_args(p)
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--layer", required=True, help="layer name (e.g. fc1); read at its tap")
    p.add_argument("--view", required=True, choices=("activations", "input-map", "neurons"),
                   help="activations: images by their activations (Rauber et al. 2017); input-map: sampled "
                        "receptive fields by their input patch (DeepEyes); neurons: kernels by 1 - |Pearson r|")
    p.add_argument("--n", type=int, default=5000,
                   help="images in the stratified sample (input-map: about this many points) (default 5000)")
    p.add_argument("--mode", choices=("flatten", "mean"), default="flatten",
                   help="activations view: whole map or per-kernel spatial mean (default flatten)")
    p.add_argument("--positions", type=int, default=10, help="input-map: positions sampled per image (default 10)")
    p.add_argument("--use", choices=("patch", "activations"), default="patch",
                   help="input-map: embed the input patch (DeepEyes) or the K activations (default patch)")
    p.add_argument("--method", choices=("tsne", "umap"), default="tsne")
    p.add_argument("--perplexity", type=float, default=30.0)
    p.add_argument("--n-iter", type=int, default=500, help="t-SNE iterations after early exaggeration")
    p.add_argument("--seed", type=int, default=0, help="seeds the sample and the embedding")
    p.add_argument("--out", required=True, help="output .npz")

    p = sub.add_parser("trails", help="training trails of a run (Rauber et al. 2017): one aligned projection of "
                                      "a fixed sample per snapshot; writes trails.npz")
    p.add_argument("--run", required=True, help="a run folder (or, with --workspace, a run id or 'latest')")
    p.add_argument("--arch", default=None, help="optional: must match the run's architecture")
    _add_workspace_args(p)
    _add_data_args(p)
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--layer", required=True, help="layer name (e.g. fc1); read at its tap")
    p.add_argument("--n", type=int, default=2000, help="images in the stratified sample (default 2000)")
    p.add_argument("--method", choices=("tsne", "umap"), default="tsne")
    p.add_argument("--stability", type=float, default=0.5,
                   help="0..1: higher keeps each snapshot's layout closer to the previous one (default 0.5)")
    p.add_argument("--n-iter", type=int, default=500, help="t-SNE iterations of the first snapshot (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seeds the sample and the embedding")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--png", default=None, help="also draw the bundled trails into this PNG")

    p = sub.add_parser("reproduce", help="reproduce a paper experiment end to end")
    p.add_argument("experiment", choices=["mnist", "deepeyes"],
                   help="mnist: Garcia et al. Sec. V-A; deepeyes: DeepEyes' MNIST use case "
                        "(conv1 20→10, fc1 500→100)")
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--out", required=True, help="results .json")
    _add_workspace_args(p)

    p = sub.add_parser("workspace", help="create, list, show, export or import workspaces")
    wsub = p.add_subparsers(dest="action", required=True)
    w = wsub.add_parser("create", help="a new workspace for a dataset; prints its folder")
    w.add_argument("dir", nargs="?", default=None, help="folder (default: a new one under $AOMSCOPE_HOME/workspaces)")
    w.add_argument("--name", default=None)
    _add_data_args(w)
    w = wsub.add_parser("list", help="the workspaces under a root")
    w.add_argument("--root", default=None, help="default: $AOMSCOPE_HOME/workspaces")
    w = wsub.add_parser("show", help="versions with metrics, current version, results, runs and jobs")
    w.add_argument("dir")
    w.add_argument("--json", action="store_true")
    w = wsub.add_parser("export", help="zip a workspace (opens on another machine with `workspace import`)")
    w.add_argument("dir")
    w.add_argument("--out", required=True, help="output .zip")
    w = wsub.add_parser("import", help="open a workspace zip as a new workspace; prints its folder")
    w.add_argument("zip")
    w.add_argument("dir", nargs="?", default=None, help="folder (default: a new one under $AOMSCOPE_HOME/workspaces)")

    p = sub.add_parser("run", help="training runs: import a folder of checkpoints as a run")
    rsub = p.add_subparsers(dest="action", required=True)
    r = rsub.add_parser("import", help="checkpoints (ordered by the number in each file name) → a run folder; "
                                       "prints the folder")
    r.add_argument("dir", help="folder of state_dict checkpoints (.pt/.pth read with weights_only, .safetensors)")
    r.add_argument("--arch", required=True, help="zoo:NAME | torchvision:NAME | FILE.py:CLASS")
    r.add_argument("--edits", default=None, help="edit list (JSON from `edit --log`) the checkpoints belong to")
    r.add_argument("--out", default=None, help="run folder to make (default with --workspace: in its runs/)")
    r.add_argument("--no-eval", action="store_true", help="skip the test accuracy of each snapshot")
    _add_workspace_args(r)
    _add_data_args(r)
    return parser


def _given(value, default):
    """``value`` unless the option was left out: 0 is refused later, never replaced."""
    return default if value is None else value


def _preprocessing(args) -> Preprocessing:
    return Preprocessing(mean=args.mean, std=args.std, channels=args.channels, resize=args.resize)


def _progress_printer(label: str, unit: str | None = "images"):
    """A progress callback printing to stderr every 10% (``done/total unit`` unless ``unit`` is None)."""
    state = {"next": 0.0, "start": time.perf_counter()}

    def report(done: int, total: int):
        frac = done / max(total, 1)
        if frac >= state["next"] or done == total:
            count = f"{done}/{total} {unit} " if unit else ""
            print(f"\r{label}: {count}({frac:5.1%}) {time.perf_counter() - state['start']:.1f}s",
                  end="" if done < total else "\n", file=sys.stderr, flush=True)
            state["next"] = frac + 0.1
    return report


def _train_printer(label: str):
    def progress(m):
        if m["step"] % 50 == 0 or m["step"] == m["steps"]:
            print(f"\r{label}: epoch {m['epoch']} step {m['step']}/{m['steps']} loss {m['loss']:.4f}",
                  end="" if m["step"] < m["steps"] else "\n", file=sys.stderr, flush=True)
    return progress


def _job_printer(label: str):
    state = {"next": 0.0}

    def echo(done: int, total: int, text: str):
        frac = done / max(total, 1)
        if frac >= state["next"] or done >= total:
            print(f"\r{label}: {text}", end="" if done < total else "\n", file=sys.stderr, flush=True)
            state["next"] = frac + 0.05
    return echo


def load_dataset(*args, **kwargs):
    """:func:`aomcore.load_dataset`, printing how the data was read when that is not obvious (``note:``)."""
    dataset = _data.load_dataset(*args, **kwargs)
    for note in dict.fromkeys(dataset.notes):
        print(f"note: {dataset.name} {dataset.split}: {note}", file=sys.stderr)
    return dataset


def _dataset_spec_matches(ws: Workspace, args) -> None:
    """With an existing workspace, the dataset options (when given) must be the workspace's."""
    d = ws.state()["dataset"]
    if getattr(args, "dataset", None) not in (None, d["spec"]):
        raise InputError("the workspace holds another dataset", expected=f"--dataset {d['spec']} (or none)",
                         found=repr(args.dataset))
    given = _preprocessing(args).to_dict()
    if any(v is not None for v in given.values()) and given != d["prep"]:
        raise InputError("the workspace holds other preprocessing", expected=str(d["prep"]), found=str(given))


def _workspace(args, create: bool) -> Workspace | None:
    """The ``--workspace`` folder: opened, or created for this dataset when ``create``."""
    if not getattr(args, "workspace", None):
        return None
    path = Path(args.workspace).expanduser()
    if (path / "workspace.json").is_file():
        ws = Workspace(path)
        _dataset_spec_matches(ws, args)
        return ws
    if not create:
        raise InputError("not a workspace folder", expected="a folder made by `train --workspace` or "
                         "`workspace create`", found=str(path))
    dataset = args.dataset or "digits"
    for split in ("train", "test"):  # fail before creating anything
        load_dataset(dataset, split, args.data_root, _preprocessing(args), args.download)
    return Workspace.create(name=path.name, dataset=dataset, data_root=args.data_root, prep=_preprocessing(args),
                            path=path)


def _cmd_train(args) -> int:
    dataset = args.dataset or "digits"
    arch = args.arch or f"zoo:{ZOO_FOR_DATASET.get(dataset.partition(':')[0], 'digits_net')}"
    if not arch.startswith("zoo:"):
        raise InputError("train builds zoo models", expected="--arch zoo:NAME", found=repr(arch))
    if not args.out and not args.workspace:
        raise InputError("nowhere to put the weights", expected="--out FILE and/or --workspace DIR", found="neither")
    recipe = default_train_config(dataset)
    config = TrainConfig(epochs=_given(args.epochs, recipe.epochs), lr=_given(args.lr, recipe.lr),
                         batch_size=_given(args.batch_size, recipe.batch_size), optimizer=args.optimizer,
                         seed=args.seed)
    start = time.perf_counter()
    ws = _workspace(args, create=True)
    if ws is not None:
        final = run_inline(ws, "train", {"arch": arch, "config": config.__dict__, "snapshots": args.snapshots,
                                         "device": args.device}, echo=_job_printer("train"))
        vid = final["result"]["version"]
        record = ws.version(vid)
        if args.out:
            save_state_dict(ws.load_version(vid), args.out)
        print(f"{arch} on {dataset}: test accuracy {record['metrics']['accuracy']:.2%} "
              f"({record['metrics']['params']:,} parameters, {time.perf_counter() - start:.1f}s) -> "
              f"{ws.path} v{vid} (run {final['result']['run']})" + (f", {args.out}" if args.out else ""))
        return 0
    prep = _preprocessing(args)
    train_set = load_dataset(dataset, "train", args.data_root, prep, args.download)
    test_set = load_dataset(dataset, "test", args.data_root, prep, args.download)
    loaded = pretrained_zoo_model(arch, train_set, config, device=resolve_device(args.device),
                                  cache=DiskCache(args.cache_dir), progress=_train_printer("train"))
    result = evaluate(loaded.model, test_set, device=resolve_device(args.device))
    save_state_dict(loaded.model, args.out)
    print(f"{arch} on {dataset}: test accuracy {result.accuracy:.2%} "
          f"({loaded.num_params:,} parameters, {time.perf_counter() - start:.1f}s; {loaded.source}) -> {args.out}")
    return 0


def _load_for(args, split: str):
    """The dataset split and the model: from --arch/--weights[/--edits], or the workspace's version."""
    ws = _workspace(args, create=bool(args.arch and args.weights))
    if args.arch is None and args.weights is None and ws is not None:
        state = ws.state()
        vid = args.version if args.version is not None else state.get("current_version")
        if vid is None:
            raise InputError("the workspace has no version yet", expected="`train --workspace` first",
                             found=str(ws.path))
        record = ws.version(vid)
        dataset = ws.load_split(split)
        loaded = LoadedModel(arch=state["arch"], model=ws.load_version(vid), digest=record["digest"],
                             source=f"{ws.path} v{vid}")
        return dataset, loaded, ws, vid
    if not (args.arch and args.weights):
        raise InputError("which model?", expected="--arch and --weights, or --workspace DIR",
                         found=f"--arch {args.arch!r}, --weights {args.weights!r}")
    dataset = load_dataset(args.dataset or "digits", split, args.data_root, _preprocessing(args), args.download)
    edits = _read_edits(args.edits) if getattr(args, "edits", None) else None
    loaded = load_model(args.arch, args.weights, dataset.num_classes, dataset.input_shape, edits=edits)
    vid = None
    if ws is not None:  # weights given with a workspace: they become a version of it
        test = ws.load_split("test")
        record = ws.add_version(loaded.model, parent=None, edits=edits or [], metrics=measure(loaded.model, test),
                                note=f"loaded: {args.weights}", arch=args.arch, num_classes=dataset.num_classes,
                                input_shape=dataset.input_shape, classes=dataset.classes)
        vid = record["id"]
    return dataset, loaded, ws, vid


def _read_edits(path: str) -> list[Edit]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError("cannot read the edit list", expected="a JSON file from `edit --log`",
                         found=f"{path}: {exc.strerror}") from None
    return load_edits(text)


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
    test_set, loaded, ws, vid = _load_for(args, "test")
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=_given(args.batch_size, 128), seed=args.seed)
    if ws is not None:
        final = run_inline(ws, "retrain", {"parent": vid, "edit": edit.to_dict(), "freeze": args.freeze,
                                           "config": config.__dict__, "device": args.device,
                                           "snapshots": args.snapshots}, echo=_job_printer("retrain"))
        parent, new = ws.version(vid), ws.version(final["result"]["version"])
        before, after, model = parent["metrics"], new["metrics"], ws.load_version(new["id"])
        edits, digest, note, seconds = new["edits"], new["digest"], new["note"], new["retrain_seconds"]
        where = f"{ws.path} v{new['id']} (run {final['result']['run']})"
    else:
        train_set = load_dataset(args.dataset or "digits", "train", args.data_root, _preprocessing(args),
                                 args.download)
        device = resolve_device(args.device)
        v0 = initial_version(loaded.model, test_set, device)
        v0.edits = _read_edits(args.edits) if args.edits else []
        v1 = edit_and_retrain(v0, edit, 1, train_set, test_set, args.freeze, config, device,
                              progress=_train_printer("retrain"))
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
                              "note": note})
        outputs.append(args.log)
    _print_before_after(note, before, after, seconds)
    print("-> " + ", ".join([*([where] if where else []), *outputs]))
    return 0


def _reproduction(args, experiment: str, arch: str):
    """MNIST's splits, the ``--workspace`` (or None) and a recorder that adds each step there as a version."""
    train_set = load_dataset("mnist", "train", args.data_root)
    test_set = load_dataset("mnist", "test", args.data_root)
    ws = None
    if args.workspace:
        args.dataset, args.mean, args.std, args.channels, args.resize, args.download = ("mnist", None, None, None,
                                                                                        None, False)
        ws = _workspace(args, create=True)

    def record(version, parent_id):  # each step becomes a version of the workspace
        rec = ws.add_version(version.model, parent=parent_id, edits=version.edits, metrics=version.metrics,
                             note=f"reproduce {experiment}: {version.note or 'baseline'}", arch=arch,
                             num_classes=train_set.num_classes, input_shape=train_set.input_shape,
                             classes=train_set.classes, retrain_seconds=version.retrain_seconds)
        return rec["id"]

    return train_set, test_set, ws, record


def _cmd_reproduce(args) -> int:
    if args.experiment == "deepeyes":
        return _cmd_reproduce_deepeyes(args)
    start = time.perf_counter()
    train_set, test_set, ws, record = _reproduction(args, "mnist", "zoo:paper_mnist")

    rows = reproduce_mnist(train_set, test_set, device=resolve_device(args.device), cache=DiskCache(args.cache_dir),
                           log=lambda line: print(line, file=sys.stderr), on_version=record if ws else None)
    seconds = time.perf_counter() - start
    results = {"experiment": "mnist", "steps": rows, "seconds": seconds, "paper": PAPER_MNIST}
    write_json(args.out, results)
    if ws is not None:
        ws.record_result({"kind": "reproduce", "key": "mnist", "digest": None, "steps": rows})
    paper = {"baseline": "96.96%", "conv1": "96.93% (16→5)", "conv2": "97.69%"}
    print(f"{'step':<10} {'kernels':>9} {'params':>9} {'FLOPs':>11} {'accuracy':>9}   paper")
    for r in rows:
        kernels = "" if r["kernels_before"] is None else f"{r['kernels_before']}→{r['kernels_after']}"
        print(f"{r['step']:<10} {kernels:>9} {r['params']:>9,} {r['flops']:>11,} {r['test_accuracy']:>9.2%}   "
              f"{paper[r['step']]}")
    print(f"{seconds:.0f}s -> {args.out}" + (f", {ws.path}" if ws else ""))
    return 0


def _cmd_reproduce_deepeyes(args) -> int:
    from .reproduce_deepeyes import DEEPEYES_PAPER, reproduce_deepeyes

    start = time.perf_counter()
    train_set, test_set, ws, record = _reproduction(args, "deepeyes", "zoo:deepeyes_mnist")

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
    dataset, loaded, _, _ = _load_for(args, "test")
    print(f"{'name':<24} {'type':<14} {'kind':<6} {'output':<16} {'kernels':>7} {'params':>10}  tap")
    for layer in list_layers(loaded.model, dataset.input_shape, include_all=args.all):
        print(f"{layer.name:<24} {layer.type:<14} {layer.kind:<6} {str(layer.output_shape):<16} "
              f"{layer.kernels:>7} {layer.params:>10,}  {layer.tap}"
              + (f" ({layer.tap_note})" if layer.tap_note else ""))
    return 0


def _cmd_maps(args) -> int:
    if not args.out and not args.workspace:
        raise InputError("nowhere to put the maps", expected="--out FILE and/or --workspace DIR", found="neither")
    dataset, loaded, ws, vid = _load_for(args, args.split)
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    start = time.perf_counter()
    device = resolve_device(args.device)
    run = distributed_from_env(device)
    if run is None:
        if ws is not None and not (args.amp or args.channels_last or args.max_resolution):
            final = run_inline(ws, "maps", {"version": vid, "layers": layers, "split": args.split,
                                            "threshold": args.threshold, "batch_size": _given(args.batch_size, 256),
                                            "device": args.device}, echo=_job_printer("maps"))
            maps = load_cached_maps(ws.results_cache, final["result"]["key"])
            hit = next(r for r in ws.results("maps") if r["key"] == final["result"]["key"])["from_cache"]
        else:
            maps, hit = cached_maps(loaded, dataset, layers, args.threshold, _given(args.batch_size, 256), device,
                                    DiskCache(args.cache_dir), progress=_progress_printer("maps"),
                                    autocast=args.amp, channels_last=args.channels_last,
                                    max_resolution=args.max_resolution)
    else:  # torchrun: this rank's shard, counts summed over ranks, rank 0 writes
        try:
            progress = _progress_printer(f"maps (rank 0 of {run.world})") if run.is_main else None
            maps = compute_maps(loaded.model, dataset, layers, args.threshold, _given(args.batch_size, 256), run.device,
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
        save_maps_npz(args.out, maps, meta)
    for name, m in maps.items():
        print(f"{name} (read at {m.tap}): {m.num_kernels} kernels × {len(m.classes)} classes × "
              f"{m.counts.shape[2]}×{m.counts.shape[3]} positions; top selectivity "
              f"k{int(m.selectivity.argmax())} = {m.selectivity.max():.3f}")
    where = [*([f"{ws.path} v{vid}"] if ws is not None else []), *([args.out] if args.out else [])]
    print(f"{len(dataset)} images in {seconds:.1f}s{' (from cache)' if hit else ''} -> {', '.join(where)}")
    return 0


def _read_maps(path: str):
    try:
        return load_maps_npz(path)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise InputError("cannot read the maps file", expected="a maps.npz written by `maps` or the dashboard",
                         found=f"{path}: {type(exc).__name__}: {str(exc)[:120]}") from None


def _maps_for(args, loaded, all_maps: dict, meta: dict, names: list[str] | None) -> dict:
    """The layers ``names`` (default all) of maps read from ``args.maps``, checked against the weights."""
    if meta.get("model_digest") != loaded.digest:
        raise InputError("the maps were computed for other weights", expected=f"model digest {loaded.digest[:12]}",
                         found=f"{str(meta.get('model_digest'))[:12]} in {args.maps}")
    unknown = [n for n in names or [] if n not in all_maps]
    if unknown:
        raise InputError(f"no layer {', '.join(map(repr, unknown))} in {args.maps}",
                         expected=f"one of {list(all_maps)}", found=", ".join(unknown))
    return {n: all_maps[n] for n in names or all_maps}


_EDIT_FLAGS = {"remove": lambda e: f"--remove {e['layer']}:{','.join(map(str, e['kernels']))}",
               "widen": lambda e: f"--widen {e['layer']}:+{e['n']}",
               "insert": lambda e: f"--insert-after {e['layer']}"}


def _cmd_overview(args) -> int:
    dataset, loaded, ws, _ = _load_for(args, args.split)
    names = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    if args.maps:
        maps = _maps_for(args, loaded, *_read_maps(args.maps), names)
    else:
        cache = ws.results_cache if ws is not None else DiskCache(args.cache_dir)
        maps = cached_maps(loaded, dataset, names, args.threshold, _given(args.batch_size, 256),
                           resolve_device(args.device),
                           cache, progress=_progress_printer(f"maps ({args.split})"))[0]
    infos = list_layers(loaded.model, dataset.input_shape, include_all=True)
    forward = {layer.name: i for i, layer in enumerate(infos)}
    maps = dict(sorted(maps.items(), key=lambda item: forward.get(item[0], len(forward))))
    rows = layer_overview(maps, layer_kinds={layer.name: layer.kind for layer in infos})
    if args.json:
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


def _run_model(args, split: str):
    """For ``--run``: the run folder, its split of the data and a builder of its architecture."""
    ws = _workspace(args, create=False)
    folder = resolve_run(args.run, ws)
    record = read_run(folder)
    if args.arch and args.arch != record["arch"]:
        raise InputError("--arch does not match the run", expected=record["arch"], found=args.arch)
    dataset = ws.load_split(split) if ws is not None else load_dataset(args.dataset or "digits", split,
                                                                        args.data_root, _preprocessing(args))
    edits = [Edit.from_dict(e) for e in record.get("edits", [])]

    def build():
        with torch.random.fork_rng(devices=[]):
            return build_edited(record["arch"], dataset.num_classes, dataset.input_shape, edits)

    snapshots = [(s["iteration"], folder / s["file"]) for s in record["snapshots"]]
    if not snapshots:
        raise InputError("the run has no snapshots", expected="a run trained with --snapshots N > 0",
                         found=str(folder))
    return folder, record, dataset, build, snapshots


def _cmd_deepeyes(args) -> int:
    if args.run:
        folder, record, dataset, build, snapshots = _run_model(args, args.split)
        loaded = LoadedModel(arch=record["arch"], model=build(), digest="", source=str(folder))
    else:
        dataset, loaded, _, _ = _load_for(args, args.split)
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    if args.bins < 1:
        raise InputError("--bins must be positive", expected="an integer >= 1 such as 30", found=str(args.bins))
    start = time.perf_counter()
    options = dict(positions=args.positions, seed=args.seed, bins=args.bins, batch_size=_given(args.batch_size, 256),
                   device=resolve_device(args.device), similarity=not args.no_similarity)
    if args.run:
        series = deepeyes_over_snapshots(build, snapshots, dataset, layers,
                                         progress=_progress_printer("deepeyes (snapshots)"), **options)
        seconds = time.perf_counter() - start
        save_deepeyes_npz(args.out, series, {"arch": record["arch"], "run": str(folder), "dataset": dataset.identity(),
                                             "split": dataset.split, "positions": args.positions, "seed": args.seed,
                                             "bins": args.bins, "seconds": seconds})
        for name, arrays in series.layers.items():
            print(f"{name}: {arrays['max_activation'].shape[1]} kernels at {len(series.iterations)} snapshots "
                  f"(iterations {series.iterations[0]}–{series.iterations[-1]}); dead at the end: "
                  f"{int((arrays['max_activation'][-1] == 0).sum())}")
        print(f"{len(dataset)} images × {len(series.iterations)} snapshots in {seconds:.1f}s -> {args.out}")
        return 0
    else:
        results = compute_deepeyes(loaded.model, dataset, layers, progress=_progress_printer("deepeyes (two passes)"),
                                   **options)
    seconds = time.perf_counter() - start
    meta = {"model_digest": loaded.digest, "arch": loaded.arch, "weights": loaded.source,
            "dataset": dataset.identity(), "split": dataset.split, "preprocessing": dataset.preprocessing.to_dict(),
            "positions": args.positions, "seed": args.seed, "bins": args.bins,
            "similarity": not args.no_similarity, "seconds": seconds}
    save_deepeyes_npz(args.out, results, meta)
    for name, r in results.items():
        dead = int((r.max_activation == 0).sum())
        always = int((r.activation_frequency == 1).sum())
        hist, edges = r.perplexity_histogram, r.perplexity_bin_edges
        mode = int(hist.argmax())
        print(f"{name} (read at {r.tap}): {r.num_kernels} kernels, {r.n_samples:,} samples; "
              f"perplexity mode {edges[mode]:.1f}–{edges[mode + 1]:.1f}; {dead} dead, {always} always active")
    print(f"{len(dataset)} images in {seconds:.1f}s -> {args.out}")
    return 0


def _cmd_experiment(args) -> int:
    if not args.out and not args.workspace:
        raise InputError("nowhere to put the results", expected="--out FILE and/or --workspace DIR", found="neither")
    test_set, loaded, ws, vid = _load_for(args, "test")
    check_model_fits(loaded.model, test_set)
    if ws is not None and not args.maps:
        final = run_inline(ws, "experiment", {"version": vid, "layer": args.layer, "device": args.device},
                           echo=_job_printer("experiment"))
        rec = next(r for r in ws.results("experiment") if r["key"] == final["result"]["key"])
        rows, tap = rec["rows"], rec["tap"]
    else:
        if args.maps:
            maps = _maps_for(args, loaded, *_read_maps(args.maps), [args.layer])[args.layer]
        else:
            train_set = load_dataset(args.dataset or "digits", "train", args.data_root, _preprocessing(args),
                                     args.download)
            maps = cached_maps(loaded, train_set, [args.layer], args.threshold, _given(args.batch_size, 256),
                               resolve_device(args.device), DiskCache(args.cache_dir),
                               progress=_progress_printer("maps (train)"))[0][args.layer]
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


def _cmd_workspace(args) -> int:
    if args.action == "create":
        if args.dir is None:
            dataset = args.dataset or "digits"
            for split in ("train", "test"):
                load_dataset(dataset, split, args.data_root, _preprocessing(args), args.download)
            ws = Workspace.create(name=args.name or dataset, dataset=dataset, data_root=args.data_root,
                                  prep=_preprocessing(args))
        else:
            args.workspace = args.dir
            ws = _workspace(args, create=True)
            if args.name:
                ws.update(name=args.name)
        print(ws.path)
    elif args.action == "list":
        for ws in list_workspaces(args.root):
            s = ws.state()
            print(f"{ws.path}  {s['name']!r}  {s['dataset']['spec']}  {s.get('arch') or '-'}  "
                  f"v{s.get('current_version')} of {len(ws.versions())}")
    elif args.action == "show":
        summary = Workspace(args.dir).summary()
        if args.json:
            print(json.dumps(summary, indent=1, default=str))
        else:
            _print_summary(summary)
    elif args.action == "export":
        write_bytes(args.out, export_zip(Workspace(args.dir)))
        print(args.out)
    elif args.action == "import":
        try:
            data = Path(args.zip).read_bytes()
        except OSError as exc:
            raise InputError("cannot read the zip", expected="a workspace zip", found=f"{args.zip}: {exc.strerror}")
        print(import_zip(data, path=args.dir).path)
    return 0


def _cmd_run(args) -> int:
    from .run_import import import_run, new_run_dir

    ws = _workspace(args, create=False)
    if ws is None and not args.out:
        raise InputError("nowhere to put the run", expected="--out DIR and/or --workspace DIR", found="neither")
    test_set = ws.load_split("test") if ws is not None else load_dataset(
        args.dataset or "digits", "test", args.data_root, _preprocessing(args), args.download)
    out = Path(args.out) if args.out else new_run_dir(ws.runs_dir)
    edits = _read_edits(args.edits) if args.edits else []
    imported = import_run(args.dir, args.arch, test_set.num_classes, test_set.input_shape, edits, out,
                          test_set=None if args.no_eval else test_set, device=resolve_device(args.device),
                          progress=_progress_printer("checking checkpoints", unit="files"))
    for name, reason in imported.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    snaps = imported.record["snapshots"]
    last = snaps[-1]
    accuracy = f"; test accuracy {last['test_accuracy']:.2%} at the last" if "test_accuracy" in last else ""
    print(f"{len(snaps)} snapshots (iterations {snaps[0]['iteration']}–{snaps[-1]['iteration']}), "
          f"{len(imported.skipped)} skipped{accuracy}")
    print(imported.folder)
    return 0


def _print_summary(s: dict) -> None:
    print(f"{s['name']}  ({s['path']})")
    print(f"dataset {s['dataset']['spec']}  arch {s['arch']}  current v{s['current_version']}")
    print(f"{'version':<8} {'parent':<7} {'accuracy':>9} {'params':>10} {'FLOPs':>12}  note")
    for v in s["versions"]:
        m = v["metrics"]
        parent = "" if v["parent"] is None else f"v{v['parent']}"
        mark = "*" if v["id"] == s["current_version"] else " "
        print(f"{mark}v{v['id']:<7} {parent:<7} {m['accuracy']:>9.2%} {m['params']:>10,} {m['flops']:>12,}  "
              f"{v['note']}")
    for r in s["runs"]:
        print(f"run {r['id']}: {r['kind']}, {r['status']}, {len(r.get('snapshots', []))} snapshots")
    for r in s["results"]:
        print(f"result {r['kind']} {r['key']} (v{r.get('version')})")
    for j in s["jobs"]:
        print(f"job {j['id']}: {j['kind']} {j['status']} {j.get('message') or j['progress'].get('text', '')}")


def _cmd_embed(args) -> int:
    from .embedding import embedding_key
    from .export import save_embedding_npz
    from .projections import activation_projection, activation_vectors, input_map, neuron_projection, \
        stratified_sample

    dataset, loaded, _ws, _vid = _load_for(args, args.split)
    check_model_fits(loaded.model, dataset)
    device = resolve_device(args.device)
    layer = resolve_layers(list_layers(loaded.model, dataset.input_shape, include_all=True), [args.layer])[0]
    options = {"method": args.method, "perplexity": args.perplexity, "n_iter": args.n_iter, "seed": args.seed}
    start = time.perf_counter()
    progress = _progress_printer(f"embed {args.view}", unit=None)
    arrays: dict = {"classes": np.array(dataset.classes, dtype=str)}
    if args.view == "activations":
        proj = activation_projection(loaded.model, dataset, args.layer, n=args.n, seed=args.seed, mode=args.mode,
                                     method=args.method, perplexity=args.perplexity, n_iter=args.n_iter,
                                     batch_size=args.batch_size or 256, device=device, progress=progress)
        arrays |= proj.arrays()
        options["mode"] = args.mode
        summary = (f"{len(proj.points)} images, neighbourhood hit {proj.neighborhood_hit:.3f}, "
                   f"{int((proj.predicted != proj.labels).sum())} misclassified")
    elif args.view == "input-map":
        imap = input_map(loaded.model, dataset, args.layer, n=args.n, positions=args.positions, seed=args.seed,
                         use=args.use, method=args.method, perplexity=args.perplexity, n_iter=args.n_iter,
                         batch_size=args.batch_size or 128, device=device, progress=progress)
        sm = imap.samples
        arrays |= imap.arrays()
        options |= {"positions": args.positions, "use": args.use, "map_shape": list(sm.map_shape)}
        summary = (f"{len(imap.points)} receptive fields of {len(np.unique(sm.index))} images, "
                   f"neighbourhood hit {imap.neighborhood_hit:.3f}")
    else:
        idx = stratified_sample(dataset.labels.numpy(), args.n, args.seed)
        acts, _ = activation_vectors(loaded.model, dataset, args.layer, idx, "mean", args.batch_size or 256, device)
        neurons = neuron_projection(acts, dataset.labels.numpy()[idx], dataset.num_classes, method=args.method,
                                    perplexity=args.perplexity, seed=args.seed, n_iter=args.n_iter,
                                    progress=progress)
        arrays |= neurons.arrays()
        options["images"] = int(len(idx))
        summary = f"{len(neurons.points)} kernels from {len(idx)} images"
    seconds = time.perf_counter() - start
    parts = {"view": args.view, "model": loaded.digest, "dataset": dataset.identity(), "layer": args.layer,
             "tap": layer.tap, "n": args.n, **options}
    meta = {**parts, "arch": loaded.arch, "weights": loaded.source, "edits": args.edits, "split": dataset.split,
            "seconds": seconds, "key": embedding_key(**parts)}
    save_embedding_npz(args.out, arrays, meta)
    print(f"{args.view} of {args.layer} (read at {layer.tap}): {summary}; {seconds:.1f}s -> {args.out}")
    return 0


def _cmd_trails(args) -> int:
    from .export import save_embedding_npz
    from .trails_jobs import compute_trails, trails_key

    folder, record, dataset, _build, _snapshots = _run_model(args, args.split)
    params = {"run": str(folder), "layer": args.layer, "n": args.n, "method": args.method, "seed": args.seed,
              "stability": args.stability, "split": args.split, "n_iter": args.n_iter, "device": args.device}
    ws = _workspace(args, create=False)
    start = time.perf_counter()
    if ws is not None:
        final = run_inline(ws, "trails", params, echo=_job_printer("trails"))
        key = final["result"]["key"]
        arrays = ws.results_cache.load_arrays("trails", key)
    else:
        key = trails_key(folder, record, dataset, params)
        arrays = compute_trails(folder, record, dataset, params, progress=_job_printer("trails"))
    seconds = time.perf_counter() - start
    tap = str(arrays.pop("tap"))
    computed = float(arrays.pop("seconds"))
    meta = {"kind": "trails", "key": key, "run": str(folder), "run_id": record.get("id"), "arch": record["arch"],
            "edits": record.get("edits", []), "layer": args.layer, "tap": tap, "dataset": dataset.identity(),
            "split": args.split, "n": args.n, "method": args.method, "stability": args.stability,
            "n_iter": args.n_iter, "seed": args.seed, "classes": list(dataset.classes), "seconds": computed}
    save_embedding_npz(args.out, arrays, meta)
    if args.png:
        from PIL import Image

        from .trails import render_trails

        image = render_trails(arrays["points"], arrays["labels"])
        with atomic_path(args.png) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
    nh, lag = arrays["neighborhood_hit"], arrays["class_neighborhood_hit"]
    worst = int(np.nanargmin(lag))
    print(f"trails of {args.layer} (read at {tap}): {arrays['points'].shape[1]} images × {len(nh)} snapshots "
          f"(iterations {arrays['snapshots'][0]}–{arrays['snapshots'][-1]}); neighbourhood hit {nh[0]:.3f} → "
          f"{nh[-1]:.3f}; lowest final class {dataset.classes[worst]} ({lag[worst]:.3f}); {seconds:.1f}s -> "
          f"{args.out}" + (f", {args.png}" if args.png else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with a one-line message on bad input)."""
    args = _parser().parse_args(argv)
    reuse_freed_memory()  # a batch loop per command: keep freed activations for the next batch
    commands = {"train": _cmd_train, "layers": _cmd_layers, "maps": _cmd_maps, "overview": _cmd_overview,
                "deepeyes": _cmd_deepeyes, "embed": _cmd_embed, "selectivity-experiment": _cmd_experiment,
                "edit": _cmd_edit, "reproduce": _cmd_reproduce, "workspace": _cmd_workspace,
                "trails": _cmd_trails, "run": _cmd_run}
    try:
        return commands[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
