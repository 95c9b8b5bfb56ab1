"""Shared deployment with sign-in: a real local OIDC provider, two users in two Chromium contexts.

Neither user can list, open (by the UI or a crafted URL), download from or cancel a job in the
other's workspace; a read-only grant lets the other look but not change anything.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request

import pytest

from aomcore import Workspace, list_jobs, list_workspaces
from tests.conftest import REPO
from tests.e2e.conftest import ARGS, CHROMIUM, SHOTS, _free_port

oidc_provider_mock = pytest.importorskip("oidc_provider_mock", reason="oidc-provider-mock is not installed")
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")]


@pytest.fixture(scope="module")
def signed_in_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("auth-home")
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
                   AOMSCOPE_CACHE_DIR=str(home / "cache"), OMP_NUM_THREADS="1")
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
