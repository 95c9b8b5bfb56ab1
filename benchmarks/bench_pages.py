"""Server-side script time of every dashboard page on an MNIST workspace: first render and idle reruns.

    python benchmarks/bench_pages.py [--out DIR] [--reruns 5] [--workspace W]

Makes (once, in ``DIR/home``) a workspace with ``zoo:paper_mnist`` trained one epoch on MNIST
and its maps (``python -m aomcore train`` then ``maps``) — or copies workspace ``W``, e.g. one
walked through the whole loop, so that every page draws its results — then opens each page of ``app.py`` in
Streamlit's ``AppTest`` (the page script runs as on the server, without a browser) and times
its first render (caches cold for that page) and ``--reruns`` idle reruns (what a click that
changes nothing, or a fragment-free rerun, costs). Needs ``$AOMSCOPE_DATA_ROOT``. Writes
``DIR/pages.json``; the goal is an idle rerun ≤ 300 ms (issue #24).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=tempfile.mkdtemp(prefix="bench_pages_"))
    parser.add_argument("--reruns", type=int, default=5)
    parser.add_argument("--workspace", help="copy this workspace (with its results) instead of making one")
    args = parser.parse_args()
    out = Path(args.out)
    home = out / "home"
    os.environ["AOMSCOPE_HOME"] = str(home)
    sys.path.insert(0, str(REPO))
    from streamlit.testing.v1 import AppTest

    from aomcore import default_root, list_workspaces

    ws_dir = home / "workspaces" / "mnist-pages"  # a workspace id: 8-64 letters, digits, - or _
    if args.workspace and not ws_dir.exists():
        shutil.copytree(args.workspace, ws_dir, ignore=shutil.ignore_patterns("jobs"))
    if not ws_dir.exists():
        env = dict(os.environ, PYTHONPATH=str(REPO))
        for cmd in (["train", "--workspace", str(ws_dir), "--dataset", "mnist"], ["maps", "--workspace", str(ws_dir)]):
            subprocess.run([sys.executable, "-m", "aomcore", *cmd], env=env, check=True, stdout=subprocess.DEVNULL)
    ws_id = next(w for w in list_workspaces(default_root()) if w.path == ws_dir.resolve()).id
    pages = sorted(str(p.relative_to(REPO)) for p in (REPO / "app_pages").rglob("*.py") if p.name != "__init__.py")
    rows = {}
    for page in pages:
        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
        at.query_params["ws"] = ws_id
        at.run()
        start = time.perf_counter()
        at.switch_page(page).run()
        first = time.perf_counter() - start
        idle = []
        for _ in range(args.reruns):
            start = time.perf_counter()
            at.run()
            idle.append(time.perf_counter() - start)
        idle.sort()
        drawn = bool(at.title) and not at.error and not at.exception  # timings of an error page mean nothing
        if not drawn:
            print(f"{page}: not drawn: {[e.value for e in at.error]} {at.exception}", file=sys.stderr)
        rows[page] = {"first_ms": round(first * 1000), "idle_median_ms": round(idle[len(idle) // 2] * 1000),
                      "idle_max_ms": round(idle[-1] * 1000), "exception": bool(at.exception), "drawn": drawn,
                      "infos": [i.value[:80] for i in at.info]}
        # A page that stopped at its empty state ("No maps yet for v1") drew little: say so beside its times.
        says = f" · says: {rows[page]['infos'][0]}" if rows[page]["infos"] else ""
        print(f"{page}: first {first * 1000:.0f} ms, idle median {rows[page]['idle_median_ms']} ms, "
              f"max {rows[page]['idle_max_ms']} ms{' (EXCEPTION)' if at.exception else ''}{says}", flush=True)
    (out / "pages.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
