"""Command line: ``python -m aomcore {train,layers,maps,selectivity-experiment,edit,reproduce,embed} ...``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .cache import DiskCache
from .data import Preprocessing, load_dataset
from .distributed import distributed_from_env
from .editing import Edit, load_edits, parse_edit
from .errors import InputError
from .experiment import summarize_experiment
from .export import load_maps_npz, save_maps_npz
from .layers import list_layers, resolve_layers
from .maps import compute_maps, resolve_device
from .models import ZOO_FOR_DATASET, save_state_dict
from .reproduce import PAPER_MNIST, reproduce_mnist
from .training import TrainConfig, check_model_fits, default_train_config, evaluate
from .versions import FREEZE_MODES, edit_and_retrain, initial_version
from .workflow import cached_experiment, cached_maps, load_model, pretrained_zoo_model

__all__ = ["main"]


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, found {text!r}") from None


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits",
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
    p.add_argument("--arch", required=True, help="zoo:NAME | torchvision:NAME | FILE.py:CLASS")
    p.add_argument("--weights", required=True, help="state_dict: .pt (weights_only) or .safetensors")
    p.add_argument("--edits", default=None, help="edit list (JSON from `edit --log`) that the weights belong to")


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
    p.add_argument("--out", required=True, help="output weights (.pt or .safetensors)")

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
    p.add_argument("--out", required=True, help="output .npz")

    p = sub.add_parser("selectivity-experiment",
                       help="per-class test accuracy with only the selective kernels kept, and with them removed")
    _add_model_args(p)
    _add_data_args(p)
    p.add_argument("--layer", required=True, help="layer name (e.g. conv2)")
    p.add_argument("--maps", default=None, help="maps.npz holding the layer (default: computed on the train split)")
    p.add_argument("--threshold", type=float, default=0.0, help="threshold when the maps are computed here")
    p.add_argument("--out", required=True, help="output .json")

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
    p.add_argument("--out", required=True, help="edited weights (.pt or .safetensors)")
    p.add_argument("--log", required=True, help="edit list + results (.json); pass it as --edits later")

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

    p = sub.add_parser("reproduce", help="reproduce a paper experiment end to end")
    p.add_argument("experiment", choices=["mnist"])
    p.add_argument("--data-root", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--out", required=True, help="results .json")
    return parser


def _preprocessing(args) -> Preprocessing:
    return Preprocessing(mean=args.mean, std=args.std, channels=args.channels, resize=args.resize)


def _progress_printer(label: str):
    state = {"next": 0.0, "start": time.perf_counter()}

    def report(done: int, total: int):
        frac = done / max(total, 1)
        if frac >= state["next"] or done == total:
            print(f"\r{label}: {done}/{total} images ({frac:5.1%}) {time.perf_counter() - state['start']:.1f}s",
                  end="" if done < total else "\n", file=sys.stderr, flush=True)
            state["next"] = frac + 0.1
    return report


def _cmd_train(args) -> int:
    arch = args.arch or f"zoo:{ZOO_FOR_DATASET.get(args.dataset.partition(':')[0], 'digits_net')}"
    if not arch.startswith("zoo:"):
        raise InputError("train builds zoo models", expected="--arch zoo:NAME", found=repr(arch))
    prep = _preprocessing(args)
    train_set = load_dataset(args.dataset, "train", args.data_root, prep, args.download)
    test_set = load_dataset(args.dataset, "test", args.data_root, prep, args.download)
    recipe = default_train_config(args.dataset)
    config = TrainConfig(epochs=args.epochs or recipe.epochs, lr=args.lr or recipe.lr,
                         batch_size=args.batch_size or recipe.batch_size, optimizer=args.optimizer, seed=args.seed)
    start = time.perf_counter()

    def progress(m):
        if m["step"] % 50 == 0 or m["step"] == m["steps"]:
            print(f"\rtrain: epoch {m['epoch']} step {m['step']}/{m['steps']} loss {m['loss']:.4f}",
                  end="" if m["step"] < m["steps"] else "\n", file=sys.stderr, flush=True)

    loaded = pretrained_zoo_model(arch, train_set, config, device=resolve_device(args.device),
                                  cache=DiskCache(args.cache_dir), progress=progress)
    result = evaluate(loaded.model, test_set, device=resolve_device(args.device))
    save_state_dict(loaded.model, args.out)
    print(f"{arch} on {args.dataset}: test accuracy {result.accuracy:.2%} "
          f"({loaded.num_params:,} parameters, {time.perf_counter() - start:.1f}s; {loaded.source}) -> {args.out}")
    return 0


def _load_for(args, split: str):
    dataset = load_dataset(args.dataset, split, args.data_root, _preprocessing(args), args.download)
    edits = _read_edits(args.edits) if getattr(args, "edits", None) else None
    loaded = load_model(args.arch, args.weights, dataset.num_classes, dataset.input_shape, edits=edits)
    return dataset, loaded


def _read_edits(path: str) -> list[Edit]:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InputError("cannot read the edit list", expected="a JSON file from `edit --log`",
                         found=f"{path}: {exc.strerror}") from None
    return load_edits(text)


def _cmd_edit(args) -> int:
    test_set, loaded = _load_for(args, "test")
    train_set = load_dataset(args.dataset, "train", args.data_root, _preprocessing(args), args.download)
    prior = _read_edits(args.edits) if args.edits else []
    for kind in ("remove", "reinit", "widen"):
        if getattr(args, kind):
            edit = parse_edit(getattr(args, kind), kind, args.seed)
    if args.insert_after:
        edit = parse_edit(args.insert_after, "insert", args.seed)
    device = resolve_device(args.device)
    v0 = initial_version(loaded.model, test_set, device)
    v0.edits = prior
    config = TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size or 128, seed=args.seed)

    def progress(m):
        if m["step"] % 50 == 0 or m["step"] == m["steps"]:
            print(f"\rretrain: epoch {m['epoch']} step {m['step']}/{m['steps']} loss {m['loss']:.4f}",
                  end="" if m["step"] < m["steps"] else "\n", file=sys.stderr, flush=True)

    v1 = edit_and_retrain(v0, edit, 1, train_set, test_set, args.freeze, config, device, progress=progress)
    save_state_dict(v1.model, args.out)
    log = {"arch": args.arch, "base_weights": str(args.weights), "base_digest": loaded.digest,
           "edits": [e.to_dict() for e in v1.edits], "weights": str(args.out), "digest": v1.digest,
           "before": v0.metrics, "after": v1.metrics, "retrain_seconds": v1.retrain_seconds, "note": v1.note}
    Path(args.log).write_text(json.dumps(log, indent=2))
    b, a = v0.metrics, v1.metrics
    print(v1.note)
    print(f"{'':<14} {'before':>14} {'after':>14}")
    print(f"{'test accuracy':<14} {b['accuracy']:>14.2%} {a['accuracy']:>14.2%}")
    print(f"{'params':<14} {b['params']:>14,} {a['params']:>14,}")
    print(f"{'FLOPs/image':<14} {b['flops']:>14,} {a['flops']:>14,}")
    for layer in dict.fromkeys([*a["kernels"], *b["kernels"]]):
        print(f"{'  ' + layer:<14} {b['kernels'].get(layer, '-'):>14} {a['kernels'].get(layer, '-'):>14}")
    print(f"retrained in {v1.retrain_seconds:.1f}s -> {args.out}, {args.log}")
    return 0


def _cmd_reproduce(args) -> int:
    start = time.perf_counter()
    train_set = load_dataset("mnist", "train", args.data_root)
    test_set = load_dataset("mnist", "test", args.data_root)
    rows = reproduce_mnist(train_set, test_set, device=resolve_device(args.device), cache=DiskCache(args.cache_dir),
                           log=lambda line: print(line, file=sys.stderr))
    seconds = time.perf_counter() - start
    Path(args.out).write_text(json.dumps({"experiment": "mnist", "steps": rows, "seconds": seconds,
                                          "paper": PAPER_MNIST}, indent=2))
    paper = {"baseline": "96.96%", "conv1": "96.93% (16→5)", "conv2": "97.69%"}
    print(f"{'step':<10} {'kernels':>9} {'params':>9} {'FLOPs':>11} {'accuracy':>9}   paper")
    for r in rows:
        kernels = "" if r["kernels_before"] is None else f"{r['kernels_before']}→{r['kernels_after']}"
        print(f"{r['step']:<10} {kernels:>9} {r['params']:>9,} {r['flops']:>11,} {r['test_accuracy']:>9.2%}   "
              f"{paper[r['step']]}")
    print(f"{seconds:.0f}s -> {args.out}")
    return 0


def _cmd_layers(args) -> int:
    dataset, loaded = _load_for(args, "test")
    print(f"{'name':<24} {'type':<14} {'kind':<6} {'output':<16} {'kernels':>7} {'params':>10}  tap")
    for layer in list_layers(loaded.model, dataset.input_shape, include_all=args.all):
        print(f"{layer.name:<24} {layer.type:<14} {layer.kind:<6} {str(layer.output_shape):<16} "
              f"{layer.kernels:>7} {layer.params:>10,}  {layer.tap}")
    return 0


def _cmd_maps(args) -> int:
    dataset, loaded = _load_for(args, args.split)
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    start = time.perf_counter()
    device = resolve_device(args.device)
    run = distributed_from_env(device)
    if run is None:
        maps, hit = cached_maps(loaded, dataset, layers, args.threshold, args.batch_size or 256, device,
                                DiskCache(args.cache_dir), progress=_progress_printer("maps"),
                                autocast=args.amp, channels_last=args.channels_last,
                                max_resolution=args.max_resolution)
    else:  # torchrun: this rank's shard, counts summed over ranks, rank 0 writes
        try:
            progress = _progress_printer(f"maps (rank 0 of {run.world})") if run.is_main else None
            maps = compute_maps(loaded.model, dataset, layers, args.threshold, args.batch_size or 256, run.device,
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
    save_maps_npz(args.out, maps, meta)
    for name, m in maps.items():
        print(f"{name} (read at {m.tap}): {m.num_kernels} kernels × {len(m.classes)} classes × "
              f"{m.counts.shape[2]}×{m.counts.shape[3]} positions; top selectivity "
              f"k{int(m.selectivity.argmax())} = {m.selectivity.max():.3f}")
    print(f"{len(dataset)} images in {seconds:.1f}s{' (from cache)' if hit else ''} -> {args.out}")
    return 0


def _cmd_experiment(args) -> int:
    test_set, loaded = _load_for(args, "test")
    check_model_fits(loaded.model, test_set)
    if args.maps:
        all_maps, meta = load_maps_npz(args.maps)
        if meta.get("model_digest") != loaded.digest:
            raise InputError("the maps were computed for other weights", expected=f"model digest {loaded.digest[:12]}",
                             found=f"{str(meta.get('model_digest'))[:12]} in {args.maps}")
        if args.layer not in all_maps:
            raise InputError(f"no layer {args.layer!r} in {args.maps}", expected=f"one of {list(all_maps)}",
                             found=repr(args.layer))
        maps = all_maps[args.layer]
    else:
        train_set = load_dataset(args.dataset, "train", args.data_root, _preprocessing(args), args.download)
        maps = cached_maps(loaded, train_set, [args.layer], args.threshold, args.batch_size or 256,
                           resolve_device(args.device), DiskCache(args.cache_dir),
                           progress=_progress_printer("maps (train)"))[0][args.layer]
    rows, _ = cached_experiment(loaded, maps, test_set, resolve_device(args.device), DiskCache(args.cache_dir))
    Path(args.out).write_text(json.dumps({"layer": args.layer, "tap": maps.tap, "model_digest": loaded.digest,
                                          "classes": rows}, indent=2))
    print(f"{'class':<14} {'selective':>9} {'not sel.':>9} {'images':>7} {'all':>8} {'kept':>8} {'removed':>8}")
    for r in rows:
        print(f"{r['class'][:14]:<14} {r['n_selective']:>9} {r['n_not_selective']:>9} {r['n_images']:>7} "
              f"{r['acc_all']:>8.2%} {r['acc_selective_kept']:>8.2%} {r['acc_selective_removed']:>8.2%}")
    print(summarize_experiment(rows) + f" -> {args.out}")
    return 0


def _stage_printer(label: str):
    state = {"next": 0.0, "start": time.perf_counter()}

    def report(done: int, total: int):
        frac = done / max(total, 1)
        if frac >= state["next"] or done == total:
            print(f"\r{label}: {frac:5.1%} {time.perf_counter() - state['start']:.1f}s",
                  end="" if done < total else "\n", file=sys.stderr, flush=True)
            state["next"] = frac + 0.1
    return report


def _cmd_embed(args) -> int:
    from .embedding import embedding_key
    from .export import save_embedding_npz
    from .projections import activation_projection, activation_vectors, input_map, neuron_projection, \
        stratified_sample

    dataset, loaded = _load_for(args, args.split)
    check_model_fits(loaded.model, dataset)
    device = resolve_device(args.device)
    layer = resolve_layers(list_layers(loaded.model, dataset.input_shape, include_all=True), [args.layer])[0]
    options = {"method": args.method, "perplexity": args.perplexity, "n_iter": args.n_iter, "seed": args.seed}
    start = time.perf_counter()
    progress = _stage_printer(f"embed {args.view}")
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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (2 with a one-line message on bad input)."""
    args = _parser().parse_args(argv)
    commands = {"train": _cmd_train, "layers": _cmd_layers, "maps": _cmd_maps,
                "selectivity-experiment": _cmd_experiment, "edit": _cmd_edit, "reproduce": _cmd_reproduce,
                "embed": _cmd_embed}
    try:
        return commands[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
