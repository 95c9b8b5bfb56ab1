"""Two users of one shared server (AOMSCOPE_SHARED=1): each gets a workspace of their own and never sees
the other's model, maps or workspace."""

import shutil

import pytest

from .conftest import (
    go,
    job_shown,
    main_text,
    no_exception,
    set_number,
    shot,
    sidebar_text,
    url_ws,
    wait_app,
    wait_idle,
)

pytestmark = pytest.mark.e2e


def _load(page, weights):
    page.locator('[data-testid="stRadio"] label', has_text="Load weights").click()
    wait_idle(page)
    page.locator(".st-key-weights_upload input[type=file]").set_input_files(str(weights))
    page.get_by_text(weights.name).first.wait_for()
    wait_idle(page)
    page.locator(".st-key-load_weights button").click()
    page.locator('[data-testid="stSidebar"]').get_by_text("v0 of 1").wait_for(timeout=120_000)
    wait_idle(page)
    no_exception(page)


def test_two_sessions_see_only_their_own_work(shared_server, browser, digits_template, tmp_path):
    weights = tmp_path / "alice.safetensors"
    shutil.copy(digits_template / "versions" / "v0" / "weights.safetensors", weights)
    alice = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    bob = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    for page in (alice, bob):
        page.goto(shared_server.url)
        wait_app(page)
        page.get_by_text("No model yet").wait_for()
    assert url_ws(alice) != url_ws(bob)  # each tab its own new workspace

    _load(alice, weights)  # Alice loads trained weights, Bob trains 2 epochs here
    set_number(bob, "Epochs", 2)
    bob.locator(".st-key-train button").click()
    bob.get_by_text("Test accuracy of v0").wait_for(timeout=300_000)
    wait_idle(bob)
    digest_a = alice.locator('[data-testid="stSidebar"] code').first.inner_text()
    digest_b = bob.locator('[data-testid="stSidebar"] code').first.inner_text()
    assert digest_a != digest_b

    go(alice, "Compute maps")
    # isolation is this test's subject; the live redraw after a job is test_walk_every_page's
    job_shown(alice, shared_server, "maps", "Maps of 2 layer(s)", "Compute maps",
              alice.locator(".st-key-compute button").click)
    go(bob, "Explore")  # Bob has no maps: Alice's are not his
    assert "No maps yet for v0" in main_text(bob) and "none for v0 yet" in sidebar_text(bob)
    assert "Maps · conv1, conv2" in sidebar_text(alice)

    for page in (alice, bob):
        go(page, "Workspaces")
        text = main_text(page)
        assert "workspaces are not listed" in text and url_ws(page) in text
        other = bob if page is alice else alice
        assert url_ws(other) not in text
    # Alice after Bob's training: still her own model
    go(alice, "Model & data")
    assert digest_a == alice.locator('[data-testid="stSidebar"] code').first.inner_text()
    shot(alice, "9_two_sessions_alice")
    shot(bob, "9_two_sessions_bob")
    alice.context.close()
    bob.context.close()
