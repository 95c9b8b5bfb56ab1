"""Benchmark: does looking help? Kernels kept by AOM statistics against the automated pruning criteria (issue #23).

For each setup (a dataset and a zoo model) and each conv layer of it, keep 25%, 50% and 75%
of the kernels — and the paper's keep rule at its own number — by every criterion of
:func:`aomcore.compare_criteria` (s(k), the keep rule, APoZ, L1, L2, BN scale where a
BatchNorm follows, first-order Taylor, random with ``--seeds`` seeds); remove the other
kernels and retrain with the paper's protocol (the layers up to the edited one frozen,
Adam, lr 1e-3, batch 128, ``--epochs`` epochs, the same seed for every selection). Report
test accuracy (with the other kernels silenced, and after retraining), parameters and FLOPs
per image. Maps and Taylor's batch come from the training images; accuracies from the whole
test split.

Setups (``--setups``): ``mnist/paper_mnist`` and ``mnist/deepeyes_mnist`` on real MNIST;
``fashion/paper_cifar10`` and ``fashion/resnet8`` on real FashionMNIST repeated to 3 channels
and resized to 32×32 (``zoo:resnet8``: three torchvision BasicBlocks; its layers are the
stem, whose channels the residual adds couple to layer1's, and each block's first conv).

The unpruned model is trained for one epoch on the whole training split (the paper's
protocol; cached on disk). ``--train-images N`` retrains on a fixed stratified sample of N
training images (one epoch is then one pass over N images; the maps and Taylor's batch come
from the same sample) — for machines without a GPU; the default is the whole split.
RESULTS.md says which was run.

Usage::

    python benchmarks/bench_criteria.py --data-root ../shared/datasets [--setups mnist/paper_mnist,...]
        [--layers conv1,conv2] [--fractions 0.25,0.5,0.75] [--train-images N] [--epochs 1] [--seeds 3]
        [--device auto] [--json criteria.json] [--markdown criteria.md] [--chart criteria.html]

``--json`` is written after every layer, so a long run can be read while it goes on; a
run given an existing ``--json`` skips the (setup, layer) pairs already in it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from aomcore import (  # noqa: E402
    Preprocessing,
    compare_criteria,
    compute_maps,
    default_train_config,
    kernel_scores,
    load_dataset,
    pretrained_zoo_model,
    resolve_device,
)
from aomcore.aom.retrain import measure  # noqa: E402
from aomcore.base.activations import stratified_sample  # noqa: E402
from aomcore.base.allocator import reuse_freed_memory  # noqa: E402

SETUPS = {
    "mnist/paper_mnist": dict(dataset="mnist", arch="zoo:paper_mnist", prep={}, layers=["conv1", "conv2"]),
    "mnist/deepeyes_mnist": dict(dataset="mnist", arch="zoo:deepeyes_mnist", prep={}, layers=["conv1", "conv2"]),
    "fashion/paper_cifar10": dict(dataset="fashion-mnist", arch="zoo:paper_cifar10",
                                  prep=dict(channels=3, resize=32), layers=[f"conv{i}" for i in range(1, 7)]),
    "fashion/resnet8": dict(dataset="fashion-mnist", arch="zoo:resnet8", prep=dict(channels=3, resize=32),
                            layers=["conv1", "layer1.0.conv1", "layer2.0.conv1", "layer3.0.conv1"]),
}
#: Criteria chosen by looking at the maps (AOM-based) and the automated ones they are held against.
AOM_BASED = ("selectivity", "keep_rule", "apoz")
AUTOMATED = ("l1", "l2", "bn_scale", "taylor")
#: Two retrained accuracies closer than this (in points) are a tie: the spread of random's seeds is larger.
TIE_POINTS = 0.5


def _subset(ds, n: int | None, seed: int = 0):
    if n is None or n >= len(ds):
        return ds
    idx = torch.as_tensor(np.sort(stratified_sample(ds.labels.numpy(), n, seed)))
    return dataclasses.replace(ds, images=ds.images[idx], labels=ds.labels[idx], name=f"{ds.name}[{n} of {len(ds)}]")


def run_layer(model, maps, layer: str, train_set, test_set, fractions, epochs: int, seeds: int, device) -> list[dict]:
    """Every keep count of ``layer``: one :func:`compare_criteria` with retraining, plus random's other seeds."""
    k = maps[layer].num_kernels
    rule_n = int((kernel_scores("keep_rule", maps=maps[layer]) >= 1).sum())
    counts = {max(1, min(k - 1, round(f * k))): f"{f:.0%}" for f in fractions}
    if 0 < rule_n < k:
        counts[rule_n] = counts.get(rule_n, "") + (" + " if rule_n in counts else "") + "keep rule"
    config = default_train_config(train_set.name.split("[")[0])
    rows = []
    for n, why in sorted(counts.items()):
        start = time.perf_counter()
        runs = [compare_criteria(model, maps, layer, n, test_set, train_set=train_set, device=device, seed=0,
                                 retrain_epochs=epochs, config=config)]
        runs += [compare_criteria(model, maps, layer, n, test_set, train_set=train_set, device=device, seed=s,
                                  criteria=("random",), retrain_epochs=epochs, config=config)
                 for s in range(1, seeds)]
        for seed, result in enumerate(runs):
            for name, r in result["criteria"].items():
                t = r["retrained"]
                rows.append({"layer": layer, "kernels": k, "keep": n, "why": why, "criterion": name,
                             "seed": seed, "kept": r["kept"], "silenced": r["accuracy"], "retrained": t["accuracy"],
                             "params": t["params"], "flops": t["flops"]})
        print(f"  {layer} keep {n}/{k} ({why}): {time.perf_counter() - start:.0f} s", flush=True)
    return rows


def summarize(rows: list[dict]) -> dict:
    """Per (setup, layer, keep): each AOM-based criterion against each automated one and random's mean
    (retrained accuracy): counts of wins, ties (within :data:`TIE_POINTS`) and losses."""
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        cells.setdefault((r["setup"], r["layer"], r["keep"]), {}).setdefault(r["criterion"], []).append(r["retrained"])
    tally = {a: {b: [0, 0, 0] for b in (*AUTOMATED, "random")} for a in AOM_BASED}
    for acc in cells.values():
        mean = {c: float(np.mean(v)) for c, v in acc.items()}
        for a in AOM_BASED:
            for b in (*AUTOMATED, "random"):
                if a in mean and b in mean:
                    d = 100 * (mean[a] - mean[b])
                    tally[a][b][0 if d > TIE_POINTS else 1 if d >= -TIE_POINTS else 2] += 1
    return {a: {b: dict(zip(("win", "tie", "loss"), v, strict=True)) for b, v in row.items()}
            for a, row in tally.items()}


def markdown(report: dict) -> str:
    rows = report["rows"]
    names = ["selectivity", "keep_rule", "apoz", "l1", "l2", "bn_scale", "taylor", "random"]
    out = [f"Run: {report['when']}, {report['machine']}, torch {report['torch']}, device {report['device']}; "
           f"{report['epochs']} epoch(s) of retraining on {report['train_images']} training images; random: mean of "
           f"{report['seeds']} seeds. Accuracies are on the whole test split, in %: retrained (silenced before "
           "retraining in brackets).", ""]
    for setup, info in report["setups"].items():
        mine = [r for r in rows if r["setup"] == setup]
        if not mine:
            continue
        out += [f"**{setup}** ({info['arch']}, {info['dataset']}, unpruned: {100 * info['accuracy']:.2f}%, "
                f"{info['params']:,} params, {info['flops'] / 1e6:.2f} MFLOPs; "
                f"base trained in {info['seconds']:.0f} s)",
                "", "| layer | kept | params | MFLOPs | " + " | ".join(names) + " |",
                "| --- | --- | ---: | ---: | " + " | ".join("---:" for _ in names) + " |"]
        for layer in info["layers"]:
            for n in sorted({r["keep"] for r in mine if r["layer"] == layer}):
                cell = [r for r in mine if r["layer"] == layer and r["keep"] == n]
                by = {c: [r for r in cell if r["criterion"] == c] for c in names}
                mean = {c: np.mean([r["retrained"] for r in v]) for c, v in by.items() if v}
                best = max(mean.values())
                text = []
                for c in names:
                    if not by[c]:
                        text.append("—")
                        continue
                    value = f"{100 * mean[c]:.2f} ({100 * np.mean([r['silenced'] for r in by[c]]):.1f})"
                    text.append(f"**{value}**" if mean[c] >= best - TIE_POINTS / 100 else value)
                first = cell[0]
                out.append(f"| {layer} | {n}/{first['kernels']} ({first['why']}) | {first['params']:,} | "
                           f"{first['flops'] / 1e6:.2f} | " + " | ".join(text) + " |")
        out.append("")
    out += [f"Bold: within {TIE_POINTS} points of the best retrained accuracy of its row.", "",
            f"AOM-based against automated, retrained accuracy, every row above (win / tie within {TIE_POINTS} "
            "points / loss):", "", "| | " + " | ".join((*AUTOMATED, "random")) + " |",
            "| --- | " + " | ".join("---" for _ in (*AUTOMATED, "random")) + " |"]
    for a, row in report["summary"].items():
        out.append(f"| {a} | " + " | ".join(f"{v['win']} / {v['tie']} / {v['loss']}" for v in row.values()) + " |")
    return "\n".join(out) + "\n"


def chart(report: dict, path: str) -> None:
    """Retrained accuracy against FLOPs per image, one line per criterion, a panel per (setup, layer)."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(report["rows"]).groupby(["setup", "layer", "criterion", "keep"], as_index=False).agg(
        accuracy=("retrained", "mean"), mflops=("flops", lambda f: f.iloc[0] / 1e6))
    frame["panel"] = frame["setup"] + " · " + frame["layer"]
    base = alt.Chart(frame).encode(x=alt.X("mflops:Q", title="MFLOPs per image", scale=alt.Scale(zero=False)),
                                   y=alt.Y("accuracy:Q", title="test accuracy after retraining",
                                           scale=alt.Scale(zero=False)),
                                   color=alt.Color("criterion:N"), tooltip=list(frame.columns))
    (base.mark_line(point=True)).properties(width=260, height=200).facet(
        facet="panel:N", columns=3).resolve_scale(x="independent", y="independent").save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", default=os.environ.get("AOMSCOPE_DATA_ROOT"))
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--layers", default=None, help="only these layers (of every setup that has them)")
    parser.add_argument("--fractions", default="0.25,0.5,0.75")
    parser.add_argument("--train-images", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--chart", default=None)
    args = parser.parse_args()
    reuse_freed_memory()  # as the CLI does: no mmap/munmap churn on every large activation
    device = resolve_device(args.device)
    fractions = [float(f) for f in args.fractions.split(",")]
    report = {"when": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "torch": torch.__version__, "device": str(device), "epochs": args.epochs, "seeds": args.seeds,
              "train_images": args.train_images or "all", "setups": {}, "rows": []}
    if args.json and Path(args.json).exists():
        report = json.loads(Path(args.json).read_text())
    for setup in args.setups.split(","):
        spec = SETUPS[setup]
        prep = Preprocessing(**spec["prep"])
        full = load_dataset(spec["dataset"], "train", args.data_root, prep)
        test_set = load_dataset(spec["dataset"], "test", args.data_root, prep)
        start = time.perf_counter()
        config = default_train_config(spec["dataset"])
        model = pretrained_zoo_model(spec["arch"], full, config, device=device).model
        seconds = time.perf_counter() - start
        train_set = _subset(full, args.train_images)
        layers = [n for n in spec["layers"] if args.layers is None or n in args.layers.split(",")]
        done = {r["layer"] for r in report["rows"] if r["setup"] == setup}
        todo = [n for n in layers if n not in done]
        if not todo:
            continue
        base = measure(model, test_set, device)
        info = report["setups"].setdefault(setup, {"arch": spec["arch"], "dataset": spec["dataset"], "layers": []})
        info.update(accuracy=base["accuracy"], params=base["params"], flops=base["flops"],
                    seconds=info.get("seconds", seconds))
        print(f"{setup}: unpruned {base['accuracy']:.2%}, maps of {todo}", flush=True)
        maps = compute_maps(model, train_set, todo, device=device)
        for layer in todo:
            rows = run_layer(model, maps, layer, train_set, test_set, fractions, args.epochs, args.seeds, device)
            report["rows"] += [{"setup": setup, **r} for r in rows]
            info["layers"] = [n for n in spec["layers"] if n in info["layers"] or n == layer]
            report["summary"] = summarize(report["rows"])
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=1))
    report["summary"] = summarize(report["rows"])
    text = markdown(report)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.chart:
        chart(report, args.chart)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
