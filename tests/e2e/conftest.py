"""A real `streamlit run` server (private home and cache) and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest

from aomcore import Workspace, default_train_config, list_jobs, run_inline
from tests.conftest import REPO, missing

CHROMIUM = os.environ.get("AOMSCOPE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("AOMSCOPE_SCREENSHOTS", REPO / "artifacts" / "screenshots"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
ACTIVE = ("queued", "running")
VIEWPORT = {"width": 1400, "height": 1000}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``streamlit run app.py`` on a private ``AOMSCOPE_HOME`` and cache; :meth:`restart` keeps both.

    Attributes
    ----------
    url : str
    home : Path
        ``$AOMSCOPE_HOME``: workspaces live in ``home / "workspaces"``.
    pid : int
        The server process (the job workers are its children).
    """

    def __init__(self, home: Path, cache: Path, log_dir: Path, env: dict | None = None,
                 app_args: tuple[str, ...] = ()):
        self.home, self.cache, self.log_dir = home, cache, log_dir
        self.env = dict(os.environ, AOMSCOPE_HOME=str(home), AOMSCOPE_CACHE_DIR=str(cache),
                        OMP_NUM_THREADS="1", **(env or {}))
        self.app_args = app_args
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def root(self) -> Path:
        return self.home / "workspaces"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> Server:
        port = _free_port()
        self.starts += 1
        log = open(self.log_dir / f"streamlit-{self.starts}.log", "w")
        extra = ["--", *self.app_args] if self.app_args else []
        self.proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                      "--server.address", "127.0.0.1", "--server.headless", "true",
                                      "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
                                      *extra],
                                     cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        pytest.fail(f"streamlit did not become healthy in 90 s; log: {self.log_dir}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def restart(self) -> Server:
        """Stop the server and start a new one on the same home and cache (a new port)."""
        self.stop()
        return self.start()

    def workspace(self, ws_id: str) -> Workspace:
        return Workspace(self.root / ws_id)


def make_server(tmp_path_factory, env: dict | None = None, app_args: tuple[str, ...] = ()) -> Server:
    return Server(tmp_path_factory.mktemp("e2e-home"), tmp_path_factory.mktemp("e2e-cache"),
                  tmp_path_factory.mktemp("e2e-log"), env, app_args).start()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One local-mode server for the module's tests (each test opens its own workspace)."""
    s = make_server(tmp_path_factory)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory):
    """A server in shared mode (several users, one process)."""
    s = make_server(tmp_path_factory, env={"AOMSCOPE_SHARED": "1"})
    yield s
    s.stop()


@pytest.fixture
def own_server(tmp_path_factory):
    """A server of this test alone (for restarts)."""
    s = make_server(tmp_path_factory)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def digits_template(tmp_path_factory) -> Path:
    """A digits workspace with zoo:digits_net trained (v0), made once in-process like the CLI does."""
    ws = Workspace.create(tmp_path_factory.mktemp("e2e-template"), name="digits", dataset="digits")
    run_inline(ws, "train", {"arch": "zoo:digits_net", "config": default_train_config("digits").__dict__,
                             "snapshots": 3, "monitor": False})
    return ws.path


def trained_workspace(server: Server, template: Path, name: str) -> Workspace:
    """A copy of the trained template in the server's home, renamed; open it with ``?ws=<id>``."""
    target = server.root / f"{name}-{os.urandom(4).hex()}"
    shutil.copytree(template, target)
    ws = Workspace(target)
    ws.update(name=name)
    return ws


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        missing(f"Debian's Chromium not found at {CHROMIUM} or on PATH: apt-get install -y chromium")
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    p = context.new_page()
    yield p
    context.close()


# --- waiting ------------------------------------------------------------------------------
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


def wait_jobs(ws: Workspace, timeout: float = 300, kinds: tuple[str, ...] | None = None) -> list[dict]:
    """Poll the workspace's job records until none (of ``kinds``) is queued or running; return them all."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        jobs = list_jobs(ws)
        if not any(j["status"] in ACTIVE and (kinds is None or j["kind"] in kinds) for j in jobs):
            return jobs
        time.sleep(0.25)
    raise AssertionError(f"jobs of {ws.path.name} still running after {timeout} s: {list_jobs(ws)}")


def wait_job_started(ws: Workspace, kind: str, timeout: float = 60, progressed: bool = True) -> dict:
    """The newest job of ``kind`` once it is running (with some progress if ``progressed``); fails if it
    ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [j for j in list_jobs(ws) if j["kind"] == kind]
        if found and found[-1]["status"] == "running" and (
                not progressed or (found[-1].get("progress") or {}).get("done")):
            return found[-1]
        if found and found[-1]["status"] not in ACTIVE:
            raise AssertionError(f"the {kind} job ended before it could be watched: {found[-1]}")
        time.sleep(0.1)
    raise AssertionError(f"no running {kind} job after {timeout} s")


def job_shown(page, server: Server, kind: str, text: str, reopen: str, click, timeout: float = 300) -> None:
    """Start a job with ``click()``, follow it through its record, then wait for the page to show ``text``.

    Fails with the page's text when no job of ``kind`` reaches the workspace (after a second
    click: a click during a rerun can be lost), and with the job's record when it ends other
    than done. A page that shows ``text`` within 60 s of the job's end passes; one that does
    not is reported as a warning (its text, the sidebar and the server log's tail, and a
    screenshot ``failed_redraw_<kind>``), then page ``reopen`` is opened and must show it.
    The strict no-reload check is ``test_walk_every_page``'s; this is for the long runs on
    real data, where a CI run once waited 300 s with no trace of why.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ws = server.workspace(url_ws(page))
    before = {j["id"] for j in list_jobs(ws)}

    def started() -> list[dict]:
        deadline = time.time() + 30
        while time.time() < deadline:
            new = [j for j in list_jobs(ws) if j["id"] not in before and j["kind"] == kind]
            if new:
                return new
            time.sleep(0.25)
        return []

    click()
    if not (new := started()):
        warnings.warn(f"no {kind} job 30 s after the click; the page showed {main_text(page)[:400]!r}: "
                      "clicking again", stacklevel=2)
        wait_idle(page)
        click()
        new = started()
    assert new, f"no {kind} job reached the workspace; the page shows {main_text(page)[:600]!r}"
    wait_jobs(ws, timeout, kinds=(kind,))
    job = next(j for j in list_jobs(ws) if j["id"] == new[-1]["id"])
    assert job["status"] == "done", f"the {kind} job ended {job['status']}: {job.get('message')!r}"
    try:
        page.get_by_text(text).first.wait_for(timeout=60_000)
    except PlaywrightTimeout:
        logs = sorted(server.log_dir.glob("streamlit-*.log"))
        tail = logs[-1].read_text()[-1500:] if logs else ""
        warnings.warn(f"the page did not redraw within 60 s of the {kind} job's end; it showed "
                      f"{main_text(page)[:400]!r} and {sidebar_text(page)[:200]!r}; server log tail: {tail!r}",
                      stacklevel=2)
        shot(page, f"failed_redraw_{kind}")
        go(page, reopen)
        page.get_by_text(text).first.wait_for(timeout=60_000)
    wait_idle(page)
    no_exception(page)


def wait_progress_gone(page, timeout=300_000):
    """Wait until the page shows no progress bar (the job ended and the page was redrawn)."""
    page.wait_for_selector('[data-testid="stMain"] [data-testid="stProgress"]', state="detached", timeout=timeout)
    wait_idle(page)


# --- reading the page ---------------------------------------------------------------------
def no_exception(page):
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def go(page, title):
    """Click a page in the sidebar navigation and wait for it."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    wait_idle(page)
    no_exception(page)


TITLES = {"": None, "compute_maps": "Compute maps", "edit_retrain": "Edit & retrain", "versions": "Versions",
          "workspaces": "Workspaces"}


def open_ws(page, server: Server, ws_id: str, path: str = ""):
    """Open a workspace by URL (``/?ws=<id>``), then its page ``path`` through the sidebar.

    A deep link (``/versions?ws=<id>``) as the first visit to a fresh server opens the page
    without the router: see ``test_deep_link_on_a_fresh_server``.
    """
    page.goto(f"{server.url}/?ws={ws_id}")
    wait_app(page)
    if TITLES[path]:
        go(page, TITLES[path])


def wait_app(page):
    """After a goto or reload: wait for the app's first run to draw its sidebar and finish.

    Until then the tab may show Streamlit's own list of the files in pages/ and a
    "notRunning" state from before the run.
    """
    page.wait_for_function("() => (document.querySelector('[data-testid=\"stSidebar\"]')?.innerText || '')"
                           ".includes('AOMscope')", timeout=120_000)
    wait_idle(page)
    no_exception(page)


def wait_new_workspace(page, old_id: str, timeout: float = 180_000) -> str:
    """After Create on the dataset form: wait until the URL names a workspace other than ``old_id`` and
    the app is idle; return its id. The click's run ends in a page switch: between the runs the app is
    briefly idle with the old URL, or with none (``/workspaces`` without ``?ws=``), under a suite's load."""
    page.wait_for_function("(old) => { const ws = new URLSearchParams(location.search).get('ws');"
                           " return ws !== null && ws !== old; }", arg=old_id, timeout=timeout)
    wait_idle(page, timeout=timeout)
    return url_ws(page)


def url_ws(page) -> str:
    """The workspace id in the tab's URL."""
    from urllib.parse import parse_qs, urlparse

    return parse_qs(urlparse(page.url).query)["ws"][0]


def revert_to(page, version: str):
    """On Versions: choose ``version`` in the revert selector (after the comparison's) and make it current."""
    box = page.locator(".st-key-revert_version input")
    box.click()
    box.fill(version)
    page.keyboard.press("Enter")
    wait_idle(page)
    button = page.get_by_role("button", name=f"Make {version} current (revert)")
    button.click()
    # The button is drawn only while the chosen version is not the current one: its going is the
    # revert's effect. (While a job runs the sidebar's fragment reruns every second, and wait_idle
    # alone can take the end of one of those runs for the end of the revert's.)
    button.wait_for(state="detached", timeout=60_000)
    wait_idle(page)


def set_number(page, label: str, value, exact: bool = True):
    box = page.get_by_role("spinbutton", name=label, exact=exact).first
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


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


def choose_option(page, key: str, option: str, attempts: int = 3) -> None:
    """Choose ``option`` in the selectbox with widget key ``key``: typed into its box, then clicked.

    A rerun of the page (a fragment's poll, the app's first run) can redraw an open dropdown
    away; then the box is opened again, up to ``attempts`` times.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        box = page.locator(f".st-key-{key} input")
        box.click()
        box.fill(option)
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
            wait_idle(page)
    wait_idle(page)
