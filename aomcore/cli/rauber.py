"""``embed`` (2-D views of a layer) and ``trails`` (training trails of a run)."""

from __future__ import annotations

import time

import numpy as np

from ..base import limits
from ..base.activations import activation_vectors, stratified_sample
from ..base.atomic import atomic_path, write_bytes
from ..base.devices import resolve_device
from ..base.embedding import embedding_key
from ..base.layers import list_layers, resolve_layers
from ..base.npzfile import save_embedding_npz
from ..base.training import check_model_fits
from ..deepeyes.input_map import filter_map, input_map
from ..deepeyes.statistics import compute_deepeyes
from ..jobs.engine import run_inline
from ..rauber.projections import activation_projection, neuron_projection
from ..rauber.run_trails import compute_trails, trails_key, trails_npz_bytes
from ..rauber.trails import render_trails
from ._common import (
    add_data_args,
    add_model_args,
    add_workspace_args,
    job_printer,
    load_for,
    progress_printer,
    run_target,
)


def _cmd_embed(args) -> int:
    args.split = args.split or ("train" if args.view == "filter-map" else "test")  # the page's filter map: train
    dataset, loaded, _ws, _vid = load_for(args, args.split)
    check_model_fits(loaded.model, dataset)
    device = resolve_device(args.device)
    layer = resolve_layers(list_layers(loaded.model, dataset.input_shape, include_all=True), [args.layer])[0]
    options = {"method": args.method, "perplexity": args.perplexity, "n_iter": args.n_iter, "seed": args.seed}
    start = time.perf_counter()
    progress = progress_printer(f"embed {args.view}", unit=None)
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
    elif args.view == "filter-map":  # what the page's embed job does: DeepEyes statistics, then t-SNE
        stats = compute_deepeyes(loaded.model, dataset, [args.layer], positions=args.positions, seed=args.seed,
                                 batch_size=args.batch_size or 256, device=device, similarity=True,
                                 progress=progress_printer("deepeyes (two passes)"))[args.layer]
        arrays |= {f"deepeyes_{k}": v for k, v in stats.arrays.items()}
        arrays["points"] = filter_map(stats.filter_similarity, args.perplexity, args.seed, args.method, args.n_iter,
                                      progress=progress)
        options |= {"positions": args.positions}
        dead = int((stats.max_activation == 0).sum())
        summary = f"{stats.num_kernels} filters placed by similarity ({stats.n_samples:,} samples; {dead} dead)"
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
    ws, folder, record, dataset, build, snapshots = run_target(args, args.split)
    params = {"run": str(folder), "layer": args.layer, "n": args.n, "method": args.method, "seed": args.seed,
              "stability": args.stability, "split": args.split, "n_iter": args.n_iter, "device": args.device}
    start = time.perf_counter()
    if ws is not None:
        final = run_inline(ws, "trails", params, echo=job_printer("trails"))
        key = final["result"]["key"]
        arrays = ws.results_cache.load_arrays("trails", key)
    else:
        key = trails_key(record, snapshots, dataset, params)
        arrays = compute_trails(snapshots, build, dataset, params, progress=job_printer("trails"))
    seconds = time.perf_counter() - start
    tap = str(arrays["tap"])
    meta = {"key": key, "run": str(folder), "run_id": record.get("id"), "arch": record["arch"],
            "edits": record.get("edits", []), "layer": args.layer, "dataset": dataset.identity(),
            "split": args.split, "n": args.n, "method": args.method, "stability": args.stability,
            "n_iter": args.n_iter, "seed": args.seed, "classes": list(dataset.classes)}
    write_bytes(args.out, trails_npz_bytes(arrays, meta))
    if args.png:
        from PIL import Image

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


def add_parsers(sub) -> None:
    """Add this group's commands to the ``python -m aomcore`` subparsers."""
    p = sub.add_parser("embed", help="2-D projection of a layer: images (activations), DeepEyes' input map "
                                     "or filter map, or neurons; writes embed.npz")
    p.set_defaults(func=_cmd_embed)
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--split", default=None, choices=("train", "test"),
                   help="default: test (filter-map: train, as the dashboard)")
    p.add_argument("--layer", required=True, help="layer name (e.g. fc1); read at its tap")
    p.add_argument("--view", required=True, choices=("activations", "input-map", "filter-map", "neurons"),
                   help="activations: images by their activations (Rauber et al. 2017); input-map: sampled "
                        "receptive fields by their input patch (DeepEyes); filter-map: kernels by (1 - weighted "
                        "Jaccard similarity)^2 (DeepEyes); neurons: kernels by 1 - |Pearson r|")
    p.add_argument("--n", type=limits.sample, default=5000,
                   help="images in the stratified sample (input-map: about this many points) (default 5000)")
    p.add_argument("--mode", choices=("flatten", "mean"), default="flatten",
                   help="activations view: whole map or per-kernel spatial mean (default flatten)")
    p.add_argument("--positions", type=limits.positions_count, default=10,
                   help="input-map, filter-map: positions sampled per image (default 10)")
    p.add_argument("--use", choices=("patch", "activations"), default="patch",
                   help="input-map: embed the input patch (DeepEyes) or the K activations (default patch)")
    p.add_argument("--method", choices=("tsne", "umap"), default="tsne")
    p.add_argument("--perplexity", type=limits.perplexity, default=30.0,
                   help="t-SNE perplexity, clamped to (n - 1)/3 (default 30)")
    p.add_argument("--n-iter", type=limits.n_iter, default=500, help="t-SNE iterations after early exaggeration")
    p.add_argument("--seed", type=limits.seed, default=0, help="seeds the sample and the embedding")
    p.add_argument("--out", required=True, help="output .npz")

    p = sub.add_parser("trails", help="training trails of a run (Rauber et al. 2017): one aligned projection of "
                                      "a fixed sample per snapshot; writes trails.npz")
    p.set_defaults(func=_cmd_trails)
    p.add_argument("--run", required=True, help="a run folder (or, with --workspace, a run id or 'latest')")
    p.add_argument("--arch", default=None, help="optional: must match the run's architecture")
    add_workspace_args(p)
    add_data_args(p)
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--layer", required=True, help="layer name (e.g. fc1); read at its tap")
    p.add_argument("--n", type=limits.sample, default=2000, help="images in the stratified sample (default 2000)")
    p.add_argument("--method", choices=("tsne", "umap"), default="tsne")
    p.add_argument("--stability", type=float, default=0.5,
                   help="0..1: higher keeps each snapshot's layout closer to the previous one (default 0.5)")
    p.add_argument("--n-iter", type=limits.n_iter, default=500,
                   help="t-SNE iterations of the first snapshot (default 500)")
    p.add_argument("--seed", type=limits.seed, default=0, help="seeds the sample and the embedding")
    p.add_argument("--out", required=True, help="output .npz")
    p.add_argument("--png", default=None, help="also draw the bundled trails into this PNG")
