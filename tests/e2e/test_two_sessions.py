"""Two users of one shared server, each with an uploaded model, never see each other's."""

import pytest
import torch

from aomcore import build_model, default_train_config, load_dataset, pretrained_zoo_model, save_state_dict

from .conftest import shot, wait_idle

pytestmark = pytest.mark.e2e


def _main(page):
    return page.locator('[data-testid="stMain"]').inner_text()


def _sidebar(page):
    return page.locator('[data-testid="stSidebar"]').inner_text()


def _go(page, title):
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    wait_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0


def _upload(page, arch, weights, channels=None, resize=None):
    if channels:
        page.get_by_text("Preprocessing (recorded with every result)").click()
        for label, value in (("repeat to channels", channels), ("resize to N×N", resize)):
            box = page.get_by_role("spinbutton", name=label)
            box.fill(str(value))
            box.press("Enter")
            wait_idle(page)
        page.get_by_role("button", name="Use this dataset").click()
        wait_idle(page)
    page.get_by_text("Load weights", exact=True).click()
    wait_idle(page)
    box = page.get_by_role("textbox", name="Architecture")
    box.fill(arch)
    box.press("Enter")
    wait_idle(page)
    page.get_by_test_id("stFileUploaderDropzoneInput").last.set_input_files(str(weights))
    page.get_by_text(weights.name).first.wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Load", exact=True).click()
    page.locator('[data-testid="stSidebar"]').get_by_text(weights.name).wait_for(timeout=120_000)
    wait_idle(page, timeout=120_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_two_sessions_see_only_their_own_model(shared_server, browser, tmp_path):
    train = load_dataset("digits", "train")
    trained = pretrained_zoo_model("zoo:digits_net", train, default_train_config("digits"))
    weights_a = save_state_dict(trained.model, tmp_path / "alice.pt")
    torch.manual_seed(1)
    weights_b = save_state_dict(build_model("torchvision:resnet18", 10, (3, 32, 32)), tmp_path / "bob.safetensors")

    alice = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    bob = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    for page in (alice, bob):
        page.goto(shared_server.url)
        wait_idle(page)
    _upload(alice, "zoo:digits_net", weights_a)
    _upload(bob, "torchvision:resnet18", weights_b, channels=3, resize=32)

    assert "zoo:digits_net" in _sidebar(alice) and "alice.pt" in _sidebar(alice)
    assert "torchvision:resnet18" in _sidebar(bob) and "bob.safetensors" in _sidebar(bob)
    acc_a = alice.get_by_test_id("stMetricValue").first.inner_text()
    acc_b = bob.get_by_test_id("stMetricValue").first.inner_text()
    assert float(acc_a.rstrip("%")) > 90 and float(acc_b.rstrip("%")) < 50

    for page in (alice, bob):
        _go(page, "Compute maps")
    # the layer chips show each session's own layers
    assert "layer1.0.conv1" in _main(bob) and "layer1.0.conv1" not in _main(alice)
    assert "Conv2d (8, 8, 8)" in _main(alice) and "Conv2d (8, 8, 8)" not in _main(bob)
    for page in (alice, bob):
        page.get_by_role("button", name="Compute").click()
        wait_idle(page, timeout=300_000)
        page.get_by_text("Maps of").wait_for()
    _go(alice, "Explore")
    _go(bob, "Explore")
    assert "8 kernels × 10 classes × 8×8 positions" in _main(alice)
    assert "64 kernels × 10 classes" in _main(bob)
    # Alice's session after Bob's work: still her own model, accuracy and maps
    _go(alice, "Model & data")
    assert "zoo:digits_net" in _sidebar(alice) and acc_a in _sidebar(alice)
    _go(alice, "Explore")
    assert "8 kernels" in _main(alice) and "64 kernels" not in _main(alice)
    shot(alice, "8_two_sessions_alice")
    shot(bob, "8_two_sessions_bob")
