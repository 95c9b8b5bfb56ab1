"""The work survives what a user does in a real browser: reloads, second tabs, restarts, reverts, downloads.

Issue #10's "done when": every situation below keeps the work.
"""

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aomcore import Workspace, build_model, list_jobs, load_model, run_inline
from tests.conftest import REPO, _data_root, missing

from .conftest import (
    VIEWPORT,
    Server,
    go,
    main_text,
    no_exception,
    open_ws,
    revert_to,
    set_number,
    shot,
    sidebar_text,
    trained_workspace,
    url_ws,
    wait_app,
    wait_idle,
    wait_job_started,
    wait_jobs,
    wait_new_workspace,
)

pytestmark = pytest.mark.e2e
PROGRESS = '[data-testid="stMain"] [data-testid="stProgress"]'
RETRAIN_EPOCHS = 60  # digits: long enough (tens of seconds on a loaded 2-core machine) to act while it runs


@pytest.fixture(scope="session")
def edited_template(digits_template, tmp_path_factory):
    """The trained digits workspace plus v1 (conv1 kernels 0 and 1 removed, retrained one epoch)."""
    path = tmp_path_factory.mktemp("e2e-edited") / digits_template.name
    shutil.copytree(digits_template, path)
    ws = Workspace(path)
    run_inline(ws, "retrain", {"parent": 0, "edit": {"kind": "remove", "layer": "conv1", "kernels": [0, 1]},
                               "freeze": "auto", "config": {"epochs": 1, "lr": 3e-3, "batch_size": 64},
                               "device": "cpu", "snapshots": 0, "monitor": False})
    return path


def _status(ws, job_id: str) -> str:
    return next(j["status"] for j in list_jobs(ws) if j["id"] == job_id)


def _options(page, label: str) -> list[str]:
    """The options of the selectbox ``label`` (opened and closed again)."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label).first
    box.click()
    options = [o.inner_text().strip() for o in page.get_by_role("option").all()]
    page.keyboard.press("Escape")
    return options


def _see_progress(page, ws, job_id: str, name: str):
    """The page shows the job's progress bar; if not, say whether the job was still running."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.locator(PROGRESS).first.wait_for(timeout=20_000)
    except PlaywrightTimeout:
        shot(page, f"fail_{name}")
        raise AssertionError(f"{name}: no progress bar; the job is {_status(ws, job_id)}") from None


def _start_retrain(page, epochs=RETRAIN_EPOCHS, batch_size=None):
    """On Edit & retrain: widen conv2 (by the default, a quarter of its kernels) and retrain ``epochs`` epochs."""
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="conv2", exact=False).first.click()
    wait_idle(page)
    page.locator('[data-testid="stRadio"] label', has_text="Widen").click()
    wait_idle(page)
    page.get_by_text("Retraining", exact=True).click()
    set_number(page, "Epochs", epochs)
    if batch_size is not None:
        set_number(page, "Batch size", batch_size)
    page.locator(".st-key-apply button").click()
    page.locator(PROGRESS).first.wait_for(timeout=60_000)


def test_retrain_survives_reload_second_tab_and_restart(own_server, browser, digits_template):
    ws = trained_workspace(own_server, digits_template, "reload")
    tab = browser.new_context(viewport=VIEWPORT).new_page()
    open_ws(tab, own_server, ws.id, "edit_retrain")
    # about a minute (5,100 small steps): time for a second browser context to load and for a reload
    _start_retrain(tab, epochs=60, batch_size=16)
    job = wait_job_started(ws, "retrain")

    # a second tab on the same URL sees the running job
    other = browser.new_context(viewport=VIEWPORT).new_page()
    other.goto(tab.url)
    wait_app(other)
    _see_progress(other, ws, job["id"], "second_tab")
    assert "Retraining" in sidebar_text(other)

    # reload mid-way: the job goes on and the page shows its progress again
    tab.reload()
    wait_app(tab)
    assert url_ws(tab) == ws.id
    _see_progress(tab, ws, job["id"], "reload")
    assert _status(ws, job["id"]) == "running", "the retrain ended before the reload was seen"
    shot(tab, "ws_1_reloaded_mid_retrain")

    # the version appears in both tabs when the job ends, without a reload
    for page in (tab, other):
        page.get_by_text("v0 → v1").wait_for(timeout=180_000)
        wait_idle(page)
        no_exception(page)
        assert "v1 of 2" in sidebar_text(page)
    assert _status(ws, job["id"]) == "done"
    shot(tab, "ws_2_retrained_after_reload")

    # a server restart keeps every version
    own_server.restart()
    open_ws(tab, own_server, ws.id, "versions")
    assert "v1 of 2" in sidebar_text(tab)
    assert "widen conv2 by 4 kernel(s)" in main_text(tab)  # the current version's note
    assert _options(tab, "Version") == ["v0", "v1"]
    shot(tab, "ws_3_versions_after_restart")
    other.context.close()
    tab.context.close()


def test_revert_during_retrain_stays_reverted(server, page, edited_template):
    ws = trained_workspace(server, edited_template, "revert")
    open_ws(page, server, ws.id, "edit_retrain")
    assert "v1 of 2" in sidebar_text(page)
    # 200 epochs (~40 s alone): 60 ended before the revert once, on a machine less loaded than usual
    _start_retrain(page, epochs=200)
    wait_job_started(ws, "retrain")
    go(page, "Versions")
    revert_to(page, "v0")
    page.locator('[data-testid="stSidebar"]').get_by_text("v0 of 2").wait_for(timeout=30_000)
    assert any(j["status"] == "running" for j in list_jobs(ws)), "the retrain ended before the revert"

    wait_jobs(ws)
    assert [j["status"] for j in list_jobs(ws) if j["kind"] == "retrain"][-1] == "done"
    page.locator('[data-testid="stSidebar"]').get_by_text("v0 of 3").wait_for(timeout=30_000)
    assert ws.state()["current_version"] == 0 and len(ws.versions()) == 3
    page.reload()
    wait_app(page)
    assert "v0 of 3" in sidebar_text(page)
    shot(page, "ws_4_reverted_during_retrain")


def test_downloaded_version_loads_back(server, page, edited_template, tmp_path):
    ws = trained_workspace(server, edited_template, "download")
    open_ws(page, server, ws.id, "versions")
    page.get_by_text("Download v1").wait_for()
    files = {}
    for button in ("state_dict (.safetensors)", "Edit list (JSON)"):
        with page.expect_download() as download:
            page.get_by_role("button", name=button).click()
        files[button] = tmp_path / download.value.suggested_filename
        download.value.save_as(files[button])
    assert files["Edit list (JSON)"].name == "v1_edits.json"

    go(page, "Model & data")
    page.locator('[data-testid="stRadio"] label', has_text="Load weights").click()
    wait_idle(page)
    page.locator(".st-key-weights_upload input[type=file]").set_input_files(str(files["state_dict (.safetensors)"]))
    page.locator(".st-key-edits_upload input[type=file]").set_input_files(str(files["Edit list (JSON)"]))
    page.get_by_text("v1_edits.json").first.wait_for()
    wait_idle(page)
    page.locator(".st-key-load_weights button").click()
    page.locator('[data-testid="stSidebar"]').get_by_text("v2 of 3").wait_for(timeout=120_000)
    wait_idle(page)
    no_exception(page)
    versions = ws.versions()
    assert versions[2]["digest"] == versions[1]["digest"]
    assert versions[2]["edits"] == versions[1]["edits"]
    assert versions[2]["metrics"]["accuracy"] == pytest.approx(versions[1]["metrics"]["accuracy"])
    shot(page, "ws_5_loaded_back")


@pytest.fixture(scope="module")
def mnist_template(tmp_path_factory) -> Path:
    """An MNIST workspace whose v0 is zoo:paper_mnist as initialised (seed 0): its maps pass over the
    60,000 training images lasts seconds, long enough to leave the page while it runs."""
    if (data_root := _data_root()) is None:
        missing("real MNIST not found: set AOMSCOPE_DATA_ROOT to a folder holding MNIST/raw")
    ws = Workspace.create(tmp_path_factory.mktemp("e2e-mnist"), name="mnist", dataset="mnist",
                          data_root=str(data_root))
    test_set = ws.load_split("test")
    torch.manual_seed(0)
    model = build_model("zoo:paper_mnist", test_set.num_classes, test_set.input_shape)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    loaded = load_model("zoo:paper_mnist", buffer.getvalue(), test_set.num_classes, test_set.input_shape,
                        weights_name="init.pt")
    ws.record_weights(loaded, note="paper_mnist as initialised", test_set=test_set)
    return ws.path


@pytest.mark.mnist
def test_leaving_compute_maps_midway_keeps_the_pass(server, page, mnist_template):
    ws = trained_workspace(server, mnist_template, "leave")
    open_ws(page, server, ws.id, "compute_maps")
    page.locator(".st-key-compute button").click()
    job = wait_job_started(ws, "maps", progressed=False)
    # Leave once the page shows the pass's progress: mid-pass, not during the script run that
    # submitted it (a click racing that run's st.rerun can leave the new page without its polling
    # fragment in Streamlit's frontend: seen once in CI and once in ~15 local runs).
    page.locator(PROGRESS).wait_for(timeout=60_000)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Explore").first.click()
    assert _status(ws, job["id"]) == "running", "the pass ended before the page was left"
    wait_idle(page)
    page.get_by_text("No maps yet").wait_for(timeout=30_000)  # Explore, while the pass runs elsewhere
    wait_jobs(ws)
    assert _status(ws, job["id"]) == "done"
    page.locator('[data-testid="stImage"]').first.wait_for(timeout=120_000)  # Explore redrawn with the maps
    no_exception(page)
    assert "16 kernels × 10 classes × 26×26 positions" in main_text(page)


def test_another_dataset_starts_a_new_workspace(server, page, edited_template):
    ws = trained_workspace(server, edited_template, "keep-me")
    open_ws(page, server, ws.id)
    go(page, "Workspaces")  # the one place a workspace is created
    page.locator(".st-key-use_dataset button").click()
    new_id = wait_new_workspace(page, ws.id, timeout=60_000)
    no_exception(page)
    assert new_id != ws.id
    page.get_by_text("No model yet").wait_for()
    assert "Created the workspace digits: 1,347 train and 450 test images" in main_text(page)  # said, on Model & data
    assert "none yet" in sidebar_text(page)
    assert len(ws.versions()) == 2 and ws.state()["current_version"] == 1
    go(page, "Workspaces")
    assert new_id in main_text(page)  # the open one
    listed = _options(page, "Workspace")
    assert "keep-me · digits · zoo:digits_net · 2 version(s)" in listed
    assert "digits · digits · — · 0 version(s)" in listed
    shot(page, "ws_6_another_dataset")


def _cli(*args, cwd, env):
    run = subprocess.run([sys.executable, "-m", "aomcore", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_cli_workspace_opens_in_the_dashboard(tmp_path, tmp_path_factory, browser):
    folder = tmp_path / "W"
    env = dict(os.environ, AOMSCOPE_CACHE_DIR=str(tmp_path / "cache"), AOMSCOPE_HOME=str(tmp_path / "home"),
               OMP_NUM_THREADS="1")
    _cli("train", "--workspace", str(folder), "--epochs", "3", "--snapshots", "0", cwd=REPO, env=env)
    _cli("maps", "--workspace", str(folder), cwd=REPO, env=env)
    _cli("edit", "--workspace", str(folder), "--remove", "conv1:0,1", "--epochs", "1", "--snapshots", "0",
         cwd=REPO, env=env)
    ws = Workspace(folder)
    assert len(ws.versions()) == 2

    server = Server(tmp_path_factory.mktemp("e2e-home"), tmp_path_factory.mktemp("e2e-cache"),
                    tmp_path_factory.mktemp("e2e-log"), app_args=("--workspace", str(folder))).start()
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(server.url)
        wait_app(page)
        assert url_ws(page) == ws.id
        assert "v1 of 2" in sidebar_text(page)
        go(page, "Versions")
        assert "remove 2 kernel(s) of conv1" in main_text(page)
        assert _options(page, "Version") == ["v0", "v1"]
        shot(page, "ws_7_cli_workspace")
        revert_to(page, "v0")
        assert "Maps · conv1, conv2" in sidebar_text(page)  # the CLI's maps of v0
        page.context.close()
    finally:
        server.stop()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its children (the job workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in [f"/proc/{pid}/stat", *(f"/proc/{c}/stat" for c in _children(pid))]:
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
            except OSError:
                continue
    return found


def test_idle_page_costs_no_cpu(server, page, edited_template):
    ws = trained_workspace(server, edited_template, "idle")
    open_ws(page, server, ws.id, "edit_retrain")  # a page with a job panel, no job running
    page.wait_for_timeout(2000)
    before, start = _cpu_seconds(server.pid), time.monotonic()
    page.wait_for_timeout(10_000)
    share = (_cpu_seconds(server.pid) - before) / (time.monotonic() - start)
    print(f"idle server CPU: {share:.2%} of a core over 10 s")
    assert share < 0.05


def test_deep_link_on_a_fresh_server(own_server, page, digits_template):
    """A tab left open on Versions across a server restart (or a bookmarked page) comes back with the router."""
    ws = trained_workspace(own_server, digits_template, "deep")
    page.goto(f"{own_server.url}/versions?ws={ws.id}")
    page.get_by_text("Download v0").wait_for(timeout=120_000)
    wait_idle(page)
    assert "AOMscope" in sidebar_text(page) and "Model & data" in sidebar_text(page)
