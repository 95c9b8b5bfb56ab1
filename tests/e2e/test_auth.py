"""Shared deployment with sign-in: a real local OIDC provider, two users in two Chromium contexts.

Neither user can list, open (by the UI or a crafted URL), download from or cancel a job in the
other's workspace; a read-only grant lets the other look but not change anything. A crafted
workspace zip imported by one user runs no code, signals no process, reads no file outside its
workspace and counts against that user's disk quota.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from aomcore import Workspace, export_zip, list_jobs, list_workspaces
from tests.conftest import REPO
from tests.e2e.conftest import ARGS, CHROMIUM, SHOTS, _free_port, wait_idle

oidc_provider_mock = pytest.importorskip("oidc_provider_mock", reason="oidc-provider-mock is not installed")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")]


@contextlib.contextmanager
def _signed_in(home: Path, **env):
    """A shared-mode server with sign-in against a local OIDC provider; yields (url, workspaces root)."""
    with oidc_provider_mock.run_server_in_thread() as provider:
        port = _free_port()
        secrets_file = home / "secrets.toml"
        secrets_file.write_text(
            "[auth]\n"
            f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(16)}"\n'
            'client_id = "aomscope"\nclient_secret = "test-secret"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}/.well-known/openid-configuration"\n')
        env = dict(os.environ, AOMSCOPE_SHARED="1", AOMSCOPE_HOME=str(home / "data"),
                   AOMSCOPE_CACHE_DIR=str(home / "cache"), OMP_NUM_THREADS="1", **env)
        log = open(home / "streamlit.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                                 "--server.address", "127.0.0.1", "--secrets.files", str(secrets_file)],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            proc.kill()
            pytest.fail("streamlit did not become healthy")
        try:
            yield url, home / "data" / "workspaces"
        finally:
            proc.terminate()
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def signed_in_server(tmp_path_factory):
    with _signed_in(tmp_path_factory.mktemp("auth-home")) as server:
        yield server


def _idle(page, timeout=120_000):
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout)


def _sign_in(context, url, email):
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_placeholder("sub").fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(r"127\.0\.0\.1:\d+/.*ws="), timeout=60_000)
    _idle(page)
    return page


def _ws_id(page) -> str:
    return re.search(r"ws=([A-Za-z0-9_-]+)", page.url).group(1)


def _wait_jobs(ws: Workspace, count: int, timeout=300):
    """Wait until the workspace has ``count`` jobs and none is queued or running."""
    deadline = time.time() + timeout
    while len(list_jobs(ws)) < count or any(j["status"] in ("queued", "running") for j in list_jobs(ws)):
        assert time.time() < deadline, "job did not finish"
        time.sleep(0.5)


def test_two_users_are_isolated_and_a_grant_is_read_only(signed_in_server):
    url, root = signed_in_server
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        alice_ctx, bob_ctx = browser.new_context(), browser.new_context()
        alice = _sign_in(alice_ctx, url, "alice@example.com")
        bob = _sign_in(bob_ctx, url, "bob@example.com")
        assert "Signed in as alice@example.com" in alice.inner_text('[data-testid="stSidebar"]')
        alice_id, bob_id = _ws_id(alice), _ws_id(bob)
        assert alice_id != bob_id
        owners = {w.id: w.owner for w in list_workspaces(root)}
        assert owners == {alice_id: "alice@example.com", bob_id: "bob@example.com"}

        # Alice trains a model: a job in her workspace
        alice.get_by_role("button", name="Train").click()
        alice_ws = Workspace(root / alice_id)
        _wait_jobs(alice_ws, 1)
        assert sorted(alice_ws.versions()) == [0]

        # Bob's picker lists only his own workspace
        bob.goto(f"{url}/workspaces?ws={bob_id}")
        _idle(bob)
        text = bob.inner_text('[data-testid="stMain"]')
        assert alice_id not in text and bob_id in text
        # a crafted URL to Alice's workspace is refused, on every page
        for page_path in ("", "versions", "workspaces", "edit_retrain"):
            bob.goto(f"{url}/{page_path}?ws={alice_id}")
            _idle(bob)
            main = bob.inner_text('[data-testid="stMain"]') if bob.locator('[data-testid="stMain"]').count() else ""
            assert "belongs to another user" in bob.content(), page_path
            assert "Download" not in main and "Cancel" not in main
        bob.screenshot(path=str(SHOTS / "auth_refused.png"), full_page=True)

        # a queued job of Alice's cannot be cancelled by Bob: he cannot reach it
        alice.goto(f"{url}/compute_maps?ws={alice_id}")
        _idle(alice)
        alice.get_by_role("button", name="Compute").click()
        bob.goto(f"{url}/compute_maps?ws={alice_id}")
        _idle(bob)
        assert bob.get_by_role("button", name="Cancel").count() == 0
        _wait_jobs(alice_ws, 2)
        assert [j["status"] for j in list_jobs(alice_ws)] == ["done", "done"]

        # Alice shares read-only with Bob
        alice.goto(f"{url}/workspaces?ws={alice_id}")
        _idle(alice)
        alice.get_by_label("Share read-only with (their sign-in e-mail)").fill("bob@example.com")
        alice.get_by_label("Share read-only with (their sign-in e-mail)").press("Enter")
        _idle(alice)
        alice.get_by_role("button", name="Share").click()
        deadline = time.time() + 60
        while alice_ws.access("bob@example.com") != "read":
            assert time.time() < deadline, "the grant was not recorded"
            time.sleep(0.5)
        bob.goto(f"{url}/versions?ws={alice_id}")
        _idle(bob)
        assert "belongs to another user" not in bob.content()
        assert "read-only" in bob.inner_text('[data-testid="stSidebar"]')
        bob.screenshot(path=str(SHOTS / "auth_read_only.png"), full_page=True)
        before = (alice_ws.versions(), list_jobs(alice_ws), alice_ws.state()["name"])
        bob.goto(f"{url}/compute_maps?ws={alice_id}")
        _idle(bob)
        bob.get_by_role("button", name="Compute").click()
        bob.get_by_text("shared with you read-only").wait_for(timeout=60_000)
        assert (alice_ws.versions(), list_jobs(alice_ws), alice_ws.state()["name"]) == before
        browser.close()


# --- a crafted workspace zip (issue #22) -----------------------------------------------------------

_EVIL = """import pathlib
pathlib.Path({marker!r}).write_text("ran")
import torch
class Net(torch.nn.Module):
    pass
"""


def _crafted(template: Path, **members) -> bytes:
    """The template workspace's export with ``members`` (relative path -> bytes or a JSON-able value) set."""
    src = zipfile.ZipFile(io.BytesIO(export_zip(Workspace(template))))
    files = {name: src.read(name) for name in src.namelist()}
    files.update({k: v if isinstance(v, bytes) else json.dumps(v).encode() for k, v in members.items()})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _import(page, url, ws_id, data: bytes, tmp: Path, name: str) -> str:
    """Upload ``data`` on Workspaces and press Import; the page's text after it."""
    page.goto(f"{url}/workspaces?ws={ws_id}")
    _idle(page)
    path = tmp / name
    path.write_bytes(data)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.get_by_role("button", name="Import", exact=True).wait_for(timeout=30_000)
    page.get_by_role("button", name="Import", exact=True).click()
    wait_idle(page)
    return page.inner_text('[data-testid="stMain"]')


def test_a_crafted_zip_runs_no_code_kills_nothing_reads_nothing_outside_and_costs_its_importer(tmp_path_factory,
                                                                                                digits_template):
    tmp = tmp_path_factory.mktemp("crafted")
    marker, outside = tmp / "code_ran", tmp / "outside" / "weights.safetensors"
    (tmp / "evil.py").write_text(_EVIL.format(marker=str(marker)))
    outside.parent.mkdir()
    run_dir = next((digits_template / "runs").iterdir())
    snapshot = json.loads((run_dir / "run.json").read_text())["snapshots"][-1]
    outside.write_bytes((run_dir / snapshot["file"]).read_bytes())  # a real weights file: it would load
    victim = subprocess.Popen(["sleep", "600"])
    template_bytes = Workspace(digits_template).disk_usage()
    state = json.loads((digits_template / "workspace.json").read_text())
    run_json = json.loads((run_dir / "run.json").read_text())
    run_json["snapshots"] = [{**s, "file": str(outside)} for s in run_json["snapshots"]]
    forged_job = {"id": "forged000001", "kind": "train", "status": "running", "pid": victim.pid,
                  "created": time.time(), "params": {}, "owner": "someone@else"}
    code_zip = _crafted(digits_template, **{"workspace.json": state | {"arch": f"{tmp / 'evil.py'}:Net"}})
    data_zip = _crafted(digits_template, **{"jobs/forged000001.json": forged_job,
                                            f"runs/{run_dir.name}/run.json": run_json})
    # room for one imported copy beside the user's own new workspace, not for two
    quota_gb = 1.6 * template_bytes / 2**30
    try:
        with _signed_in(tmp, AOMSCOPE_MAX_DISK_GB=f"{quota_gb:.9f}") as (url, root), \
                playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            carol = _sign_in(browser.new_context(), url, "carol@example.com")
            own = _ws_id(carol)

            # 1. an architecture file named by workspace.json: refused by the allow-list, never run
            text = _import(carol, url, own, code_zip, tmp, "code.zip")
            assert "architecture files are disabled in shared mode" in text and "evil.py" in text
            assert not marker.exists()
            assert [w.id for w in list_workspaces(root)] == [own]

            # 2. a forged running job and snapshots outside the run folder: imported as data only
            text = _import(carol, url, own, data_zip, tmp, "data.zip")
            spaces = {w.id: w for w in list_workspaces(root)}
            assert len(spaces) == 2, text
            (imported,) = [w for i, w in spaces.items() if i != own]
            assert imported.owner == "carol@example.com" and list_jobs(imported) == []
            assert victim.poll() is None  # nothing signalled the pid the record named
            carol.goto(f"{url}/training_trails?ws={imported.id}")
            _idle(carol)
            assert carol.get_by_role("button", name="Cancel").count() == 0
            carol.get_by_role("button", name="Compute trails").click()
            _wait_jobs(imported, 1)
            (job,) = list_jobs(imported)
            assert job["status"] == "failed", job
            assert "a snapshot's weights file outside its folder" in job["message"], job
            carol.goto(f"{url}/training_trails?ws={imported.id}")
            _idle(carol)
            carol.screenshot(path=str(SHOTS / "auth_crafted_snapshot_refused.png"), full_page=True)
            assert victim.poll() is None and not marker.exists()

            # 3. the copy counts against carol's quota: a second one does not fit
            text = _import(carol, url, own, data_zip, tmp, "again.zip")
            assert "too large" in text and "quota" in text, text
            assert len(list_workspaces(root)) == 2  # the refused copy left nothing (and no job made one)

            # 4. a second user neither sees carol's copy nor pays for it: the same zip fits in his quota
            dave = _sign_in(browser.new_context(), url, "dave@example.com")
            dave.goto(f"{url}/training_trails?ws={imported.id}")
            _idle(dave)
            assert "belongs to another user" in dave.content()
            _import(dave, url, _ws_id(dave), data_zip, tmp, "dave.zip")
            owners = sorted(w.owner for w in list_workspaces(root))
            assert owners == ["carol@example.com"] * 2 + ["dave@example.com"] * 2
            assert victim.poll() is None and not marker.exists()
            browser.close()
    finally:
        victim.kill()
