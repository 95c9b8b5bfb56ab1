"""The Training monitor in a real browser: it opens on the workspace's runs (or says how to get one)."""

import pytest

from .conftest import shot, wait_app, wait_idle

pytestmark = pytest.mark.e2e


def test_training_monitor_opens(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    wait_app(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Training monitor").first.click()
    page.get_by_role("heading", name="Training monitor").wait_for()
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    text = page.locator('[data-testid="stMain"]').inner_text()
    assert "Perplexity histograms" in text or "runs are recorded with snapshots" in text
    shot(page, "training_monitor")
    page.close()
