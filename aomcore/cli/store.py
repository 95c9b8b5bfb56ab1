"""``workspace`` (create, list, show, export, import) and ``run`` (import checkpoints as a run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..base.atomic import write_bytes
from ..base.devices import resolve_device
from ..base.errors import InputError
from ..base.files import read_regular_file
from ..store.archive import export_zip, import_zip
from ..store.job_records import list_jobs
from ..store.run_import import import_run, new_run_dir
from ..store.runs import list_runs
from ..store.workspace import Workspace, list_workspaces
from ._common import (
    add_data_args,
    add_workspace_args,
    load_dataset,
    open_workspace,
    preprocessing,
    progress_printer,
    read_edits,
)


def _cmd_workspace(args) -> int:
    if args.action == "create":
        if args.dir is None:
            dataset = args.dataset or "digits"
            for split in ("train", "test"):
                load_dataset(dataset, split, args.data_root, preprocessing(args), args.download)
            ws = Workspace.create(name=args.name or dataset, dataset=dataset, data_root=args.data_root,
                                  prep=preprocessing(args))
        else:
            args.workspace = args.dir
            ws = open_workspace(args, create=True)
            if args.name:
                ws.update(name=args.name)
        print(ws.path)
    elif args.action == "list":
        for ws in list_workspaces(args.root):
            s = ws.state()
            print(f"{ws.path}  {s['name']!r}  {s['dataset']['spec']}  {s.get('arch') or '-'}  "
                  f"v{s.get('current_version')} of {len(ws.versions())}")
    elif args.action == "show":
        summary = _summary(Workspace(args.dir))
        if args.json:
            print(json.dumps(summary, indent=1, default=str))
        else:
            _print_summary(summary)
    elif args.action == "export":
        write_bytes(args.out, export_zip(Workspace(args.dir)))
        print(args.out)
    elif args.action == "import":
        data = read_regular_file(args.zip, "workspace zip", "a zip made by `workspace export`", copies=2)
        print(import_zip(data, path=args.dir, trust_code=args.trust_code).path)
    return 0


def _cmd_run(args) -> int:
    ws = open_workspace(args, create=False)
    if ws is None and not args.out:
        raise InputError("nowhere to put the run", expected="--out DIR and/or --workspace DIR", found="neither")
    if ws is None and args.dataset is None:  # never a guess: digits' accuracy of an MNIST checkpoint is noise
        raise InputError("which data are the checkpoints for?", expected="--dataset NAME (its test split gives the "
                         "input shape, the classes and each snapshot's accuracy) or --workspace DIR",
                         found="neither")
    test_set = ws.load_split("test") if ws is not None else load_dataset(
        args.dataset, "test", args.data_root, preprocessing(args), args.download)
    out = Path(args.out) if args.out else new_run_dir(ws.runs_dir)
    edits = read_edits(args.edits) if args.edits else []
    imported = import_run(args.dir, args.arch, test_set.num_classes, test_set.input_shape, edits, out,
                          test_set=None if args.no_eval else test_set, device=resolve_device(args.device),
                          progress=progress_printer("checking checkpoints", unit="files"))
    for name, reason in imported.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    snaps = imported.record["snapshots"]
    last = snaps[-1]
    accuracy = f"; test accuracy {last['test_accuracy']:.2%} at the last" if "test_accuracy" in last else ""
    print(f"{len(snaps)} snapshots (iterations {snaps[0]['iteration']}–{snaps[-1]['iteration']}), "
          f"{len(imported.skipped)} skipped{accuracy}")
    print(imported.folder)
    return 0


def _summary(ws: Workspace) -> dict:
    """What ``workspace show --json`` prints: the state, versions, runs and jobs."""
    state = ws.state()
    return {"path": str(ws.path), "id": ws.id, "name": state["name"], "owner": state.get("owner"),
            "dataset": state["dataset"], "arch": state.get("arch"), "current_version": state.get("current_version"),
            "versions": list(ws.versions().values()), "results": state.get("results", []),
            "runs": list_runs(ws), "jobs": list_jobs(ws)}


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


def add_parsers(sub) -> None:
    """Add this group's commands to the ``python -m aomcore`` subparsers."""
    p = sub.add_parser("workspace", help="create, list, show, export or import workspaces")
    p.set_defaults(func=_cmd_workspace)
    wsub = p.add_subparsers(dest="action", required=True)
    w = wsub.add_parser("create", help="a new workspace for a dataset; prints its folder")
    w.add_argument("dir", nargs="?", default=None, help="folder (default: a new one under $AOMSCOPE_HOME/workspaces)")
    w.add_argument("--name", default=None)
    add_data_args(w)
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
    w.add_argument("--trust-code", action="store_true",
                   help="accept a workspace whose architecture is a FILE.py:CLASS (that file runs when the "
                        "workspace is used): only for code you trust")

    p = sub.add_parser("run", help="training runs: import a folder of checkpoints as a run")
    p.set_defaults(func=_cmd_run)
    rsub = p.add_subparsers(dest="action", required=True)
    r = rsub.add_parser("import", help="checkpoints (ordered by the number in each file name) → a run folder; "
                                       "prints the folder")
    r.add_argument("dir", help="folder of state_dict checkpoints (.pt/.pth read with weights_only, .safetensors)")
    r.add_argument("--arch", required=True, help="zoo:NAME | torchvision:NAME | FILE.py:CLASS")
    r.add_argument("--edits", default=None, help="edit list (JSON from `edit --log`) the checkpoints belong to")
    r.add_argument("--out", default=None, help="run folder to make (default with --workspace: in its runs/)")
    r.add_argument("--no-eval", action="store_true", help="skip the test accuracy of each snapshot")
    add_workspace_args(r)
    add_data_args(r)
