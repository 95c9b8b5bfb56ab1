"""What the CLI's command groups share: data, model and workspace options, loading, progress printers."""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
from pathlib import Path

from ..aom.maps_npz import load_maps_npz
from ..base import data as _data
from ..base import limits
from ..base.data import Preprocessing
from ..base.editing import Edit, load_edits
from ..base.errors import InputError
from ..base.files import read_regular_file
from ..base.loaded import load_model
from ..base.progress import timing_text
from ..store.runs import read_run, resolve_run, run_model, run_snapshots
from ..store.workspace import Workspace


def floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, found {text!r}") from None


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=None,
                   help="digits | mnist | fashion-mnist | cifar10 | imagefolder:PATH | npz:PATH (default: digits)")
    p.add_argument("--data-root", default=None, help="folder in torchvision's layout (default: $AOMSCOPE_DATA_ROOT)")
    p.add_argument("--download", action="store_true", help="let torchvision download MNIST/FashionMNIST/CIFAR-10")
    p.add_argument("--mean", type=floats, default=None, help="per-channel mean, e.g. 0.1307")
    p.add_argument("--std", type=floats, default=None, help="per-channel std, e.g. 0.3081")
    p.add_argument("--channels", type=limits.channels, default=None, help="repeat grayscale images to N channels")
    p.add_argument("--resize", type=limits.resize, default=None, help="resize images to N×N pixels")
    p.add_argument("--transform", default=None, metavar="STEPS",
                   help='torchvision v2 steps before scaling, e.g. "Resize(40), CenterCrop(32)" '
                        "(Resize, CenterCrop, Pad, Grayscale; literal arguments), or a weights preset, "
                        "torchvision:ResNet50_Weights.IMAGENET1K_V2 (sets --mean/--std)")
    p.add_argument("--per-class", type=limits.per_class, default=None, metavar="N",
                   help="a quick look: a stratified sample of at most N images per class of each split "
                        "(seeded; default: every image, as the paper does)")
    p.add_argument("--skip-unreadable", action="store_true",
                   help="image folders: decode every image once when loading and leave out those that do not "
                        "decode (named in the notes, left out of every count); default: such a file stops "
                        "the command with its path")
    p.add_argument("--workers", type=limits.workers, default=None,
                   help="processes decoding an image folder (default: min(4, this command's share of the "
                        "cores); 0 = in this process)")
    p.add_argument("--batch-size", type=limits.batch_size, default=None,
                   help="images per batch (maps: 256; train: the recipe's)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--cache-dir", default=None, help="disk cache (default: $AOMSCOPE_CACHE_DIR or ~/.cache/aomscope)")


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", default=None, help="zoo:NAME | torchvision:NAME | FILE.py:CLASS")
    p.add_argument("--weights", default=None, help="state_dict: .pt (weights_only) or .safetensors")
    p.add_argument("--edits", default=None, help="edit list (JSON from `edit --log`) that the weights belong to")
    add_workspace_args(p, version=True)


def add_workspace_args(p: argparse.ArgumentParser, version: bool = False) -> None:
    p.add_argument("--workspace", default=None, metavar="DIR",
                   help="record what this command does in the workspace DIR (created if missing); with it, "
                        "the model is the workspace's current version unless --version or --arch/--weights")
    if version:
        p.add_argument("--version", type=limits.version, default=None,
                       help="the workspace version to use (default: current)")


def given(value, default):
    """``value`` unless the option was left out: 0 is refused later, never replaced."""
    return default if value is None else value


def preprocessing(args) -> Preprocessing:
    return Preprocessing(mean=args.mean, std=args.std, channels=args.channels, resize=args.resize,
                         transform=args.transform, per_class=args.per_class,
                         skip_unreadable=args.skip_unreadable)


_LINE = {"open": False}  # a progress line on stderr not yet ended by a newline


def status_line(text: str, final: bool) -> None:
    """Rewrite the progress line on stderr (``\\r``); ``final`` ends it with a newline."""
    print(f"\r{text}", end="\n" if final else "", file=sys.stderr, flush=True)
    _LINE["open"] = not final


def end_status_line() -> None:
    """End an open progress line, so what is printed next (an error) starts a line of its own."""
    if _LINE["open"]:
        print(file=sys.stderr, flush=True)
        _LINE["open"] = False


def progress_printer(label: str, unit: str | None = "images"):
    """A progress callback printing to stderr every 10% (``done/total unit`` unless ``unit`` is None)."""
    state = {"next": 0.0, "start": time.perf_counter()}

    def report(done: int, total: int):
        frac = done / max(total, 1)
        if frac >= state["next"] or done == total:
            count = f"{done}/{total} {unit} " if unit else ""
            timing = timing_text(done, total, time.perf_counter() - state["start"])
            status_line(f"{label}: {count}({frac:5.1%}; {timing})", done >= total)
            state["next"] = frac + 0.1
    return report


def train_printer(label: str):
    def progress(m):
        if m["step"] % 50 == 0 or m["step"] == m["steps"]:
            status_line(f"{label}: epoch {m['epoch']} step {m['step']}/{m['steps']} loss {m['loss']:.4f}",
                        m["step"] >= m["steps"])
    return progress


def job_printer(label: str):
    """A job's progress on stderr every 5%, with the time elapsed and an estimate from its own rate."""
    state = {"next": 0.0, "start": time.perf_counter()}

    def echo(done: int, total: int, text: str):
        frac = done / max(total, 1)
        if frac >= state["next"] or done >= total:
            timing = timing_text(done, total, time.perf_counter() - state["start"])
            status_line(f"{label}: {text} ({timing})", done >= total)
            state["next"] = frac + 0.05
    return echo


def load_dataset(*args, **kwargs):
    """:func:`aomcore.load_dataset`, printing how the data was read when that is not obvious (``note:``)."""
    return noted(_data.load_dataset(*args, **kwargs))


def dataset_spec_matches(ws: Workspace, args) -> None:
    """With an existing workspace, the dataset options (when given) must be the workspace's."""
    d = ws.state()["dataset"]
    if getattr(args, "dataset", None) not in (None, d["spec"]):
        raise InputError("the workspace holds another dataset", expected=f"--dataset {d['spec']} (or none)",
                         found=repr(args.dataset))
    given = preprocessing(args).to_dict()
    if any(v is not None for v in given.values()) and given != d["prep"]:
        raise InputError("the workspace holds other preprocessing", expected=str(d["prep"]), found=str(given))


def noted(dataset):
    """``dataset``, after printing how it was read when that is not obvious (``note:``)."""
    for note in dict.fromkeys(dataset.notes):
        print(f"note: {dataset.name} {dataset.split}: {note}", file=sys.stderr)
    return dataset


def open_workspace(args, create: bool) -> Workspace | None:
    """The ``--workspace`` folder: opened, or created for this dataset when ``create``.

    The workspace keeps what this command loads (its splits, its versions' models), so a
    job run inline loads nothing a second time.
    """
    if not getattr(args, "workspace", None):
        return None
    path = Path(args.workspace).expanduser()
    if (path / "workspace.json").is_file():
        ws = Workspace(path, keep_loaded=True, data_root=getattr(args, "data_root", None))
        dataset_spec_matches(ws, args)
        return ws
    if not create:
        raise InputError("not a workspace folder", expected="a folder made by `train --workspace` or "
                         "`workspace create`", found=str(path))
    if args.download:  # let torchvision fetch the files before the workspace exists
        for split in ("train", "test"):
            load_dataset(args.dataset or "digits", split, args.data_root, preprocessing(args), download=True)
    created = Workspace.create(name=path.name, dataset=args.dataset or "digits", data_root=args.data_root,
                               prep=preprocessing(args), path=path)
    ws = Workspace(created.path, keep_loaded=True)
    try:
        for split in ("train", "test"):  # a dataset that does not load leaves no workspace behind
            noted(ws.load_split(split))
    except BaseException:
        ws.delete()
        raise
    return ws


def load_for(args, split: str):
    """The dataset split and the model: from --arch/--weights[/--edits], or the workspace's version.

    Returns ``(dataset, loaded, ws, version id)``; with a workspace, weights given on the
    command line become a new version of it (:meth:`~aomcore.store.workspace.Workspace.record_weights`).
    """
    ws = open_workspace(args, create=bool(args.arch and args.weights))
    if args.arch is None and args.weights is None and ws is not None:
        vid = args.version if args.version is not None else ws.current_version
        if vid is None:
            raise InputError("the workspace has no version yet", expected="`train --workspace` first",
                             found=str(ws.path))
        return noted(ws.load_split(split)), ws.loaded(vid), ws, vid
    if not (args.arch and args.weights):
        raise InputError("which model?", expected="--arch and --weights, or --workspace DIR",
                         found=f"--arch {args.arch!r}, --weights {args.weights!r}")
    if ws is not None:
        dataset = noted(ws.load_split(split))
    else:
        dataset = load_dataset(args.dataset or "digits", split, args.data_root, preprocessing(args), args.download)
    edits = read_edits(args.edits) if getattr(args, "edits", None) else None
    loaded = load_model(args.arch, args.weights, dataset.num_classes, dataset.input_shape, edits=edits)
    vid = None
    if ws is not None:  # weights given with a workspace: they become a version of it
        vid = ws.record_weights(loaded, note=f"loaded: {args.weights}")["id"]
    return dataset, loaded, ws, vid


def read_edits(path: str) -> list[Edit]:
    data = read_regular_file(path, "edit list", "a JSON file from `edit --log`")
    return load_edits(data.decode("utf-8", "replace"))


def read_maps(path: str):
    try:
        return load_maps_npz(path)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise InputError("cannot read the maps file", expected="a maps.npz written by `maps` or the dashboard",
                         found=f"{path}: {type(exc).__name__}: {str(exc)[:120]}") from None


def maps_for(args, loaded, all_maps: dict, meta: dict, names: list[str] | None) -> dict:
    """The layers ``names`` (default all) of maps read from ``args.maps``, checked against the weights."""
    if meta.get("model_digest") != loaded.digest:
        raise InputError("the maps were computed for other weights", expected=f"model digest {loaded.digest[:12]}",
                         found=f"{str(meta.get('model_digest'))[:12]} in {args.maps}")
    unknown = [n for n in names or [] if n not in all_maps]
    if unknown:
        raise InputError(f"no layer {', '.join(map(repr, unknown))} in {args.maps}",
                         expected=f"one of {list(all_maps)}", found=", ".join(unknown))
    return {n: all_maps[n] for n in names or all_maps}


def run_target(args, split: str):
    """For ``--run``: the workspace (or None), the run folder, its record, the split of the data, a builder of its
    architecture and its ``(iteration, weights file)`` snapshots (each file inside the run folder)."""
    ws = open_workspace(args, create=False)
    folder = resolve_run(args.run, ws)
    record = read_run(folder)
    if args.arch and args.arch != record["arch"]:
        raise InputError("--arch does not match the run", expected=record["arch"], found=args.arch)
    dataset = noted(ws.load_split(split)) if ws is not None else load_dataset(
        args.dataset or "digits", split, args.data_root, preprocessing(args))
    snapshots = run_snapshots(folder, record)
    if not snapshots:
        raise InputError("the run has no snapshots", expected="a run trained with --snapshots N > 0",
                         found=str(folder))

    def build():
        return run_model(record, dataset.num_classes, dataset.input_shape, folder=folder).model

    return ws, folder, record, dataset, build, snapshots
