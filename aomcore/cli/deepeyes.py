"""``deepeyes``: DeepEyes' statistics of every conv/FC layer, or of every snapshot of a run."""

from __future__ import annotations

import time

from ..base import limits
from ..base.devices import resolve_device
from ..base.errors import InputError
from ..base.loaded import LoadedModel
from ..deepeyes.input_map import filter_map
from ..deepeyes.statistics import compute_deepeyes, deepeyes_over_snapshots, save_deepeyes_npz
from ._common import add_data_args, add_model_args, given, load_for, progress_printer, run_target


def _cmd_deepeyes(args) -> int:
    if args.run:
        _ws, folder, record, dataset, build, snapshots = run_target(args, args.split)
        loaded = LoadedModel(arch=record["arch"], model=build(), digest="", source=str(folder))
    else:
        dataset, loaded, _, _ = load_for(args, args.split)
    layers = [n.strip() for n in args.layers.split(",") if n.strip()] if args.layers else None
    start = time.perf_counter()
    options = dict(positions=args.positions, seed=args.seed, bins=args.bins, batch_size=given(args.batch_size, 256),
                   device=resolve_device(args.device), similarity=not args.no_similarity)
    if args.filter_map and (args.run or args.no_similarity):
        raise InputError("--filter-map places the kernels of one model by their similarity",
                         expected="--filter-map without --run and without --no-similarity",
                         found="--run" if args.run else "--no-similarity")
    if args.run:
        series = deepeyes_over_snapshots(build, snapshots, dataset, layers,
                                         progress=progress_printer("deepeyes", unit="snapshots"), **options)
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
        results = compute_deepeyes(loaded.model, dataset, layers, progress=progress_printer("deepeyes (two passes)"),
                                   **options)
    filter_maps = {}
    if args.filter_map:  # the same function the page's filter-map job calls
        for name, r in results.items():
            filter_maps[name] = filter_map(r.filter_similarity, args.perplexity, args.seed)
    seconds = time.perf_counter() - start
    meta = {"model_digest": loaded.digest, "arch": loaded.arch, "weights": loaded.source,
            "dataset": dataset.identity(), "split": dataset.split, "preprocessing": dataset.preprocessing.to_dict(),
            "positions": args.positions, "seed": args.seed, "bins": args.bins,
            "similarity": not args.no_similarity, "seconds": seconds}
    if args.filter_map:
        meta["filter_map"] = {"method": "tsne", "perplexity": args.perplexity, "seed": args.seed,
                              "distance": "(1 - filter_similarity)^2"}
    save_deepeyes_npz(args.out, results, meta, filter_maps)
    for name, r in results.items():
        dead = int((r.max_activation == 0).sum())
        always = int((r.activation_frequency == 1).sum())
        hist, edges = r.perplexity_histogram, r.perplexity_bin_edges
        mode = int(hist.argmax())
        print(f"{name} (read at {r.tap}): {r.num_kernels} kernels, {r.n_samples:,} samples; "
              f"perplexity mode {edges[mode]:.1f}–{edges[mode + 1]:.1f}; {dead} dead, {always} always active")
    print(f"{len(dataset)} images in {seconds:.1f}s -> {args.out}")
    return 0


def add_parsers(sub) -> None:
    """Add this group's commands to the ``python -m aomcore`` subparsers."""
    p = sub.add_parser("deepeyes", help="DeepEyes statistics (perplexity histogram, activation heatmap, "
                                        "filter similarity/labels); writes deepeyes.npz")
    p.set_defaults(func=_cmd_deepeyes)
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--split", default="test", choices=("train", "test"))
    p.add_argument("--layers", default=None, help="comma-separated layer names (default: every conv and FC layer)")
    p.add_argument("--positions", type=limits.positions, default=10,
                   help="positions sampled per image (without replacement), or 'all' (default 10)")
    p.add_argument("--seed", type=limits.seed, default=0, help="seed of the position sampler (default 0)")
    p.add_argument("--bins", type=limits.bins, default=30, help="perplexity histogram bins (default 30)")
    p.add_argument("--no-similarity", action="store_true", help="skip the (K, K) filter similarity")
    p.add_argument("--filter-map", action="store_true",
                   help="also write L/filter_map (K, 2): the kernels placed by t-SNE of (1 - similarity)^2, "
                        "as the dashboard's filter map (embed --view filter-map makes it alone)")
    p.add_argument("--perplexity", type=limits.perplexity, default=30.0,
                   help="--filter-map: t-SNE perplexity, clamped to (K - 1)/3 (default 30)")
    p.add_argument("--run", default=None, help="a run folder (or, with --workspace, a run id or 'latest'): one pass "
                                              "per snapshot, stacked on a leading snapshot axis")
    p.add_argument("--out", required=True, help="output .npz")
