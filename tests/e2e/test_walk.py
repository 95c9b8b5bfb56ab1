"""Walk every page in a real browser on the digits default, with screenshots."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

from .conftest import shot, wait_idle

pytestmark = pytest.mark.e2e


def _no_exception(page):
    assert page.locator('[data-testid="stException"]').count() == 0, page.locator(
        '[data-testid="stException"]').first.inner_text()


def _go(page, title):
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    wait_idle(page)
    _no_exception(page)


def test_walk_every_page(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    wait_idle(page)
    _no_exception(page)
    page.get_by_text("Test accuracy:").first.wait_for()
    assert "digits" in page.locator('[data-testid="stSidebar"]').inner_text()
    shot(page, "1_model_data")

    _go(page, "Compute maps")
    page.get_by_role("button", name="Compute").click()
    wait_idle(page)
    page.get_by_text("Maps of 2 layer(s)").wait_for()
    _no_exception(page)
    shot(page, "2_compute_maps")

    _go(page, "Explore")
    assert page.locator('[data-testid="stImage"]').count() >= 1
    shot(page, "3_explore_aom")
    page.get_by_role("tab", name="ODM").click()
    page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
    shot(page, "3_explore_odm")
    page.get_by_role("tab", name="CSM").click()
    shot(page, "3_explore_csm")
    page.get_by_role("tab", name="Inspect a kernel").click()
    page.wait_for_timeout(800)
    shot(page, "3_explore_inspect")
    _no_exception(page)

    _go(page, "Select kernels")
    page.get_by_text("Kernels kept in conv1").wait_for()
    shot(page, "4_select")
    _no_exception(page)

    _go(page, "Selectivity experiment")
    page.get_by_role("button", name="Run").click()
    wait_idle(page)
    page.get_by_text("Removing the selective kernels costs more accuracy").wait_for()
    _no_exception(page)
    shot(page, "5_selectivity_experiment")


@pytest.mark.mnist
def test_mnist_end_to_end(server, browser, data_root, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    wait_idle(page)
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name="mnist", exact=True).click()
    root = page.get_by_role("textbox", name="Data root (torchvision layout)")
    root.fill(str(data_root))
    root.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Use this dataset").click()
    wait_idle(page)
    _no_exception(page)
    assert "60,000 train / 10,000 test images" in page.locator('[data-testid="stMain"]').inner_text()
    page.get_by_role("button", name="Train", exact=True).click()
    wait_idle(page, timeout=300_000)
    _no_exception(page)
    page.get_by_text("Test accuracy:").first.wait_for()
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "zoo:paper_mnist" in sidebar
    shot(page, "mnist_1_model_data")

    _go(page, "Compute maps")
    page.get_by_role("button", name="Compute").click()
    wait_idle(page, timeout=300_000)
    page.get_by_text("over 60,000 train images").wait_for()
    shot(page, "mnist_2_compute_maps")
    _go(page, "Explore")
    assert "16 kernels × 10 classes × 26×26 positions" in page.locator('[data-testid="stMain"]').inner_text()
    shot(page, "mnist_3_explore_aom")
    page.get_by_role("tab", name="CSM").click()
    page.wait_for_timeout(500)
    shot(page, "mnist_3_explore_csm")
    _go(page, "Select kernels")
    page.get_by_text("Kernels kept in conv1").wait_for()
    shot(page, "mnist_4_select")

    _go(page, "Selectivity experiment")
    page.get_by_role("button", name="Run").click()
    wait_idle(page, timeout=300_000)
    page.get_by_text("Removing the selective kernels costs more accuracy").wait_for()
    _no_exception(page)
    shot(page, "mnist_5_selectivity_experiment")
    with page.expect_download() as download:
        page.get_by_role("button", name="Table (CSV)").click()
    page_rows = pd.read_csv(download.value.path())

    # The CLI on the very weights the page trained, with a fresh cache, gives the same numbers.
    weights = max((server.cache / "models").glob("*.safetensors"), key=lambda p: p.stat().st_size)
    out = tmp_path / "experiment.json"
    env = dict(os.environ, AOMSCOPE_CACHE_DIR=str(tmp_path / "cli-cache"))
    run = subprocess.run([sys.executable, "-m", "aomcore", "selectivity-experiment", "--arch", "zoo:paper_mnist",
                          "--weights", str(weights), "--dataset", "mnist", "--data-root", str(data_root),
                          "--layer", "conv2", "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    cli_rows = pd.DataFrame(json.loads(out.read_text())["classes"])
    assert list(page_rows["class"]) == list(cli_rows["class"])
    for column in ("n_selective", "n_not_selective", "n_images"):
        assert list(page_rows[column]) == list(cli_rows[column])
    for column in ("acc_all", "acc_selective_kept", "acc_selective_removed"):
        np.testing.assert_allclose(page_rows[column], cli_rows[column], rtol=0, atol=1e-12)


def test_edit_retrain_compare_revert(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    wait_idle(page)
    _go(page, "Compute maps")
    page.get_by_role("button", name="Compute").click()
    wait_idle(page)
    _go(page, "Select kernels")
    page.get_by_text("Kernels kept in conv1").wait_for()
    main = page.locator('[data-testid="stMain"]')
    kept = int(main.get_by_test_id("stMetricValue").first.inner_text().split(" of ")[0])

    _go(page, "Edit & retrain")
    page.get_by_text("Pre-filled from your selection").wait_for()
    assert f"8 → {kept}" in main.get_by_test_id("stMetricValue").first.inner_text()
    shot(page, "6_edit_preview")
    page.get_by_role("button", name="Apply and retrain").click()
    page.get_by_text("v0 → v1").wait_for(timeout=120_000)
    wait_idle(page)
    _no_exception(page)
    shot(page, "6_edit_after")
    assert "v1 of 2" in page.locator('[data-testid="stSidebar"]').inner_text()

    _go(page, "Versions")
    page.get_by_text("Download v1").wait_for()
    shot(page, "7_versions")
    revert = page.get_by_test_id("stSelectbox").filter(has=page.get_by_text("Version", exact=True))
    revert.click()  # the revert selector (the comparison's "Version A" / "Version B" come first)
    page.get_by_role("option", name="v0", exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Make v0 current (revert)").click()
    wait_idle(page)
    _no_exception(page)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "v0 of 2" in sidebar and "v0: loaded" in sidebar
