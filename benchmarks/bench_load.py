"""The shared server under load: N browser sessions computing and retraining while a probe navigates.

    python benchmarks/bench_load.py [--sessions 8] [--retrain 2] [--client-nice 19] [--out benchmarks/load.json]

Starts `streamlit run app.py` in shared mode on 127.0.0.1 with a private AOMSCOPE_HOME holding
N copies of a trained digits workspace; N Chromium sessions (Playwright, Debian's Chromium)
each open their workspace and compute maps, `--retrain` of them then edit and retrain, while a
probe session moves between pages through the sidebar, as a user does, and times each move
(the click until the new page's title is drawn and its script run has ended: page ready).
The N load sessions share one browser started at CPU priority
``--client-nice`` (default 19, the lowest), so their page drawing does not starve the server
they load on a small machine; the probe has a browser of its own at normal priority. Records:
jobs completed and failed, page errors, probe page-ready time p50/p95 while jobs run, the
server-side time of every script run while jobs run (the app's ``$AOMSCOPE_RENDER_LOG``: all
sessions, p50/p95 and per page; the probe's own runs, and its four slowest moves with the server time
of the probe's runs that ended inside each), the server's peak RSS (server process and its job workers),
and the CPU an idle open tab costs. A benchmark, not a test: it bounds every loop and talks
only to loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from aomcore import Workspace, default_train_config, list_jobs, run_inline  # noqa: E402

CHROMIUM = os.environ.get("AOMSCOPE_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
PAGES = ["Model & data", "Compute maps", "Explore", "Versions", "Edit & retrain", "Selectivity experiment"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its children (the job workers)."""
    total = 0
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _jobs(root: Path, ws_id: str, kind: str, status: str) -> int:
    return sum(1 for j in list_jobs(Workspace(root / ws_id)) if j["kind"] == kind and j["status"] == status)


async def _until(condition, seconds: float, message: str) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise TimeoutError(message)
        await asyncio.sleep(1)


async def _session(browser, url: str, root: Path, ws_id: str, retrain: bool, errors: list) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await page.goto(f"{url}/compute_maps?ws={ws_id}")
        await page.wait_for_selector(IDLE, timeout=120_000)
        await page.get_by_role("button", name="Compute").click()
        await _until(lambda: _jobs(root, ws_id, "maps", "done"), 900, "the maps job did not finish")
        if retrain:
            await page.goto(f"{url}/edit_retrain?ws={ws_id}")
            await page.wait_for_selector(IDLE, timeout=120_000)
            await page.get_by_text("Widen", exact=True).click()
            await page.wait_for_selector(IDLE, timeout=120_000)
            await page.get_by_role("button", name="Apply and retrain").click()
            await _until(lambda: _jobs(root, ws_id, "retrain", "done"), 900, "the retrain did not finish")
        errors.extend(["exception"] * await page.locator('[data-testid="stException"]').count())
    except Exception as exc:  # recorded, never raised: the benchmark reports errors
        errors.append(f"{ws_id}: {type(exc).__name__}: {str(exc)[:120]}")
    finally:
        await context.close()


_READY = """(title) => {
    const app = document.querySelector('[data-testid="stApp"]');
    return app !== null && app.getAttribute("data-test-script-state") === "notRunning"
        && [...document.querySelectorAll("h1")].some((h) => h.textContent.trim() === title);
}"""


async def _probe(browser, url: str, ws_id: str, stop: asyncio.Event, times: list, errors: list) -> None:
    """Move between :data:`PAGES` as a user does, through the sidebar (no page reload), timing each move from
    the click until the new page's title is drawn and its script run has ended (page ready)."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{url}/?ws={ws_id}")
    await page.wait_for_selector(IDLE, timeout=120_000)
    i = 1
    deadline = time.time() + 1800
    while not stop.is_set() and time.time() < deadline:
        title = PAGES[i % len(PAGES)]
        start = time.perf_counter()
        try:
            await page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
            await page.wait_for_function(_READY, arg=title, timeout=60_000)
            seconds = time.perf_counter() - start
            times.append((title, time.time() - seconds, seconds))
        except Exception as exc:
            errors.append(f"probe: {type(exc).__name__}: {str(exc)[:120]}")
        i += 1
        await asyncio.sleep(0.5)
    await context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--retrain", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--client-nice", type=int, default=19,
                        help="CPU priority of the load sessions' browser (0: the server's own, as before)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "load.json"))
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="aomscope-load-"))
    root = home / "workspaces"
    template = Workspace.create(home / "template", name="digits", dataset="digits")
    run_inline(template, "train", {"arch": "zoo:digits_net", "config": default_train_config("digits").__dict__,
                                   "snapshots": 2})
    ids = []
    for k in range(args.sessions + 1):
        target = root / f"loadtest-session-{k:02d}"
        shutil.copytree(template.path, target)
        ids.append(target.name)
    port = _free_port()
    render_log = home / "renders.jsonl"
    env = dict(os.environ, AOMSCOPE_SHARED="1", AOMSCOPE_HOME=str(home), AOMSCOPE_CACHE_DIR=str(home / "cache"),
               OMP_NUM_THREADS="1", AOMSCOPE_RENDER_LOG=str(render_log))
    load_browser = home / "chromium-nice"
    load_browser.write_text(f'#!/bin/sh\nexec nice -n {int(args.client_nice)} {CHROMIUM} "$@"\n')
    load_browser.chmod(0o755)
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.address", "127.0.0.1"], cwd=REPO, env=env,
                              stdout=open(home / "server.log", "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    peak = {"rss": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["rss"] = max(peak["rss"], _tree_rss(server.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = asyncio.run(_run_and_idle(url, root, ids[:-1], args.retrain, ids[-1], server.pid, args.idle_seconds,
                                           str(load_browser)))
    finally:
        done.set()
        server.terminate()
        server.wait(timeout=30)
    jobs = [j for ws_id in ids for j in list_jobs(Workspace(root / ws_id))]
    moves = result["times"]  # (page title, wall clock at the click, seconds until ready)
    times = sorted(seconds for _, _, seconds in moves)
    renders = [json.loads(line) for line in render_log.read_text().splitlines()] if render_log.exists() else []
    probe = [r for r in renders if r.get("ws") == ids[-1]]
    slowest = []  # the probe's slowest moves, with the server time of the probe's script runs ending in them
    for title, clicked, seconds in sorted(moves, key=lambda m: -m[2])[:4]:
        runs = [r for r in probe if clicked <= r["time"] <= clicked + seconds]
        slowest.append({"page": title, "ready_s": round(seconds, 2),
                        "server_s": [round(r["seconds"], 2) for r in runs]})
    during = sorted(r["seconds"] for r in renders if result["start"] <= r["time"] <= result["end"])
    pages: dict[str, list[float]] = {}
    for r in renders:
        if result["start"] <= r["time"] <= result["end"]:
            pages.setdefault(r["page"] or "?", []).append(r["seconds"])
    probe_runs = sorted(r["seconds"] for r in probe if result["start"] <= r["time"] <= result["end"])
    report = {
        "sessions": args.sessions, "retraining_sessions": args.retrain,
        "jobs_submitted": sum(1 for j in jobs if j["kind"] != "train"),
        "jobs_done": sum(1 for j in jobs if j["kind"] != "train" and j["status"] == "done"),
        "jobs_failed": [j.get("message") for j in jobs if j["status"] in ("failed", "interrupted")],
        "errors": result["errors"],
        "probe_renders": len(times),
        "probe_p50_s": round(statistics.median(times), 2) if times else None,
        "probe_p95_s": round(times[int(0.95 * (len(times) - 1))], 2) if times else None,
        "probe_slowest": slowest,
        "client_nice": args.client_nice,
        "server_script_runs": len(during),
        "server_script_p50_s": round(statistics.median(during), 3) if during else None,
        "server_script_p95_s": round(during[int(0.95 * (len(during) - 1))], 3) if during else None,
        "probe_server_p50_s": round(statistics.median(probe_runs), 3) if probe_runs else None,
        "probe_server_max_s": round(probe_runs[-1], 3) if probe_runs else None,
        "server_script_median_by_page_s": {k: round(statistics.median(v), 3) for k, v in sorted(pages.items())},
        "server_peak_rss_mb": round(peak["rss"] / 2**20),
        "idle_tab_cpu_percent_of_a_core": round(result["idle_cpu"], 2),
        "wall_seconds": round(result["seconds"], 1),
    }
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))
    shutil.rmtree(home, ignore_errors=True)


async def _run_and_idle(url, root, ids, retrain, probe_id, server_pid, idle_seconds, load_browser) -> dict:
    from playwright.async_api import async_playwright

    errors, times = [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)  # the probe's, normal priority
        loaders = await p.chromium.launch(executable_path=load_browser, args=ARGS)
        stop = asyncio.Event()
        probe = asyncio.create_task(_probe(browser, url, probe_id, stop, times, errors))
        start, wall_start = time.perf_counter(), time.time()
        await asyncio.gather(*[_session(loaders, url, root, ws_id, k < retrain, errors)
                               for k, ws_id in enumerate(ids)])
        seconds, wall_end = time.perf_counter() - start, time.time()
        stop.set()
        await probe
        await loaders.close()
        context = await browser.new_context()
        page = await context.new_page()
        await page.goto(f"{url}/explore?ws={probe_id}")
        await page.wait_for_selector(IDLE, timeout=120_000)
        await asyncio.sleep(3)
        before = _cpu_seconds(server_pid)
        await asyncio.sleep(idle_seconds)
        idle_cpu = 100 * (_cpu_seconds(server_pid) - before) / idle_seconds
        await browser.close()
    return {"errors": errors, "times": times, "seconds": seconds, "idle_cpu": idle_cpu, "start": wall_start,
            "end": wall_end}


if __name__ == "__main__":
    main()
