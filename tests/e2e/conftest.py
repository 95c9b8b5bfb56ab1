"""A real `streamlit run` server and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

CHROMIUM = os.environ.get("AOMSCOPE_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(os.environ.get("AOMSCOPE_SCREENSHOTS", REPO / "artifacts" / "screenshots"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path_factory, **extra_env):
    port = _free_port()
    cache = tmp_path_factory.mktemp("e2e-cache")
    env = dict(os.environ, AOMSCOPE_CACHE_DIR=str(cache), OMP_NUM_THREADS="2", **extra_env)
    log = open(tmp_path_factory.mktemp("e2e-log") / "streamlit.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("streamlit did not become healthy in 60 s")
    return proc, SimpleNamespace(url=url, cache=cache)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    proc, info = _serve(tmp_path_factory)
    yield info
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """A server in shared mode (several users, one process)."""
    proc, info = _serve(tmp_path_factory, AOMSCOPE_SHARED="1")
    yield info
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        pytest.skip(f"Debian's Chromium not found at {CHROMIUM}: apt-get install -y chromium")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def wait_idle(page, timeout=120_000):
    """Wait until the script run that the last action started has finished.

    A rerun may take a moment to start: wait briefly for the "running" state first, so an
    earlier "notRunning" is not mistaken for the end of this run.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="running"]', timeout=1500)
    except PlaywrightTimeout:
        pass  # the run was quick, or there was none
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)
    page.wait_for_timeout(300)


def shot(page, name: str) -> Path:
    """Screenshot the whole page: Streamlit scrolls inside its own container, so grow the viewport."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollHeight || 1000")
    page.set_viewport_size({"width": size["width"], "height": min(max(size["height"], height + 40), 6000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    page.set_viewport_size(size)
    return path
