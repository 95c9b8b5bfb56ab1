"""Every edit kind through the Edit & retrain page, on the paper's MNIST model and on resnet18."""

import os
import shutil
from pathlib import Path

import pytest
import torch

import aomcore
from aomcore import TrainConfig, Workspace, build_model, run_inline, save_state_dict
from tests.app.helpers import app, create_workspace, on_workspaces, wait_jobs, workspace
from tests.conftest import missing

KINDS = [("Remove kernels", "kernels", [0, 1, 2]), ("Re-initialise kernels", "kernels", [4]),
         ("Widen", "n", 4), ("Insert a layer after", None, None)]


def _run_edit(at, layer, kind, field, value):
    at.switch_page("app_pages/aom/edit_retrain.py").run()
    assert not at.exception, at.exception
    at.selectbox[0].set_value(layer).run()
    at.radio[0].set_value(kind).run()
    if field == "kernels":
        at.multiselect[0].set_value(value).run()
    elif field == "n":
        at.number_input[0].set_value(value).run()
    epochs = [w for w in at.number_input if w.label == "Epochs"][0]
    epochs.set_value(1).run()
    at.button(key="apply").click().run()
    at = wait_jobs(at, "app_pages/aom/edit_retrain.py", timeout=900)
    ws = workspace(at)
    assert [j["status"] for j in aomcore.list_jobs(ws)][-1] == "done", aomcore.list_jobs(ws)[-1].get("message")
    return ws.version(ws.current_version)


def _expected(kernels_before, kind, value):
    return {"Remove kernels": kernels_before - 3, "Re-initialise kernels": kernels_before,
            "Widen": kernels_before + 4, "Insert a layer after": kernels_before}[kind]


@pytest.fixture(scope="module")
def mnist_template(tmp_path_factory):
    """The paper's MNIST model trained once (1 epoch, as the paper) in a workspace copied into each test."""
    root = os.environ.get("AOMSCOPE_DATA_ROOT")
    if not root or not (Path(root) / "MNIST" / "raw").is_dir():
        missing("real MNIST not found: set AOMSCOPE_DATA_ROOT to a folder holding MNIST/raw")
    ws = Workspace.create(tmp_path_factory.mktemp("mnist"), name="mnist", dataset="mnist", data_root=root)
    run_inline(ws, "train", {"arch": "zoo:paper_mnist", "config": TrainConfig().__dict__, "snapshots": 2,
                             "monitor": False})
    return ws.path


@pytest.mark.mnist
@pytest.mark.parametrize("kind,field,value", KINDS, ids=[k[0] for k in KINDS])
def test_edit_kinds_on_the_paper_mnist_model(home, mnist_template, kind, field, value):
    shutil.copytree(mnist_template, home / "workspaces" / mnist_template.name)
    at = app(timeout=300)
    assert workspace(at).state()["arch"] == "zoo:paper_mnist"
    version = _run_edit(at, "conv2", kind, field, value)
    assert version["metrics"]["kernels"]["conv2"] == _expected(16, kind, value)
    assert version["metrics"]["accuracy"] > 0.95
    if kind == "Insert a layer after":
        assert version["metrics"]["kernels"]["conv2_ins"] == 16


@pytest.mark.parametrize("kind,field,value", KINDS, ids=[k[0] for k in KINDS])
def test_edit_kinds_on_resnet18(tmp_path, kind, field, value):
    torch.manual_seed(0)
    weights = save_state_dict(build_model("torchvision:resnet18", 10, (3, 32, 32)), tmp_path / "r.safetensors")
    at = on_workspaces(app(timeout=300))
    at.number_input(key="prep_channels").set_value(3).run()
    at.number_input(key="prep_resize").set_value(32).run()
    create_workspace(at)
    at.radio(key="model_source").set_value("Load weights").run()
    at.text_input(key="arch").set_value("torchvision:resnet18").run()
    at.file_uploader(key="weights_upload").set_value((weights.name, weights.read_bytes(), "application/octet-stream"))
    at.run()
    at.button(key="load_weights").click().run()
    assert not at.exception and not at.error, at.error
    version = _run_edit(at, "layer2.0.conv1", kind, field, value)
    assert version["metrics"]["kernels"]["layer2.0.conv1"] == _expected(128, kind, value)
    if kind == "Insert a layer after":
        assert version["metrics"]["kernels"]["layer2.0.bn1.conv"] == 128
