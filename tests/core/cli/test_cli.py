"""The CLI end to end: digits always, the paper's model on real MNIST when present."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO


def _run(*args, env_root=None):
    return subprocess.run([sys.executable, "-m", "aomcore", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


def _check_npz(path, layers, k, c, hw):
    with np.load(path, allow_pickle=False) as npz:
        for name in layers:
            assert npz[f"{name}/aom"].shape == (k, c, *hw) and npz[f"{name}/aom"].dtype == np.float64
            assert npz[f"{name}/counts"].dtype == np.int64
            assert npz[f"{name}/odm"].shape == (k, k)
            assert npz[f"{name}/csm"].shape == (k, c, *hw)
            assert npz[f"{name}/selectivity"].shape == (k,)
            assert sorted(npz[f"{name}/order"].tolist()) == list(range(k))
            np.testing.assert_allclose(npz[f"{name}/aom"],
                                       npz[f"{name}/counts"] / npz["class_sizes"][None, :, None, None])
        meta = json.loads(str(npz["meta"]))
        assert len(npz["classes"]) == c
    return meta


def test_cli_digits(tmp_path):
    out = _run("train", "--dataset", "digits", "--out", str(tmp_path / "d.pt"))
    assert out.returncode == 0, out.stderr
    acc = float(out.stdout.split("test accuracy ")[1].split("%")[0])
    assert acc > 90
    out = _run("maps", "--arch", "zoo:digits_net", "--weights", str(tmp_path / "d.pt"), "--dataset", "digits",
               "--layers", "conv1,fc1", "--out", str(tmp_path / "m.npz"))
    assert out.returncode == 0, out.stderr
    meta = _check_npz(tmp_path / "m.npz", ["conv1"], 8, 10, (8, 8))
    assert meta["taps"] == {"conv1": "relu1", "fc1": "relu3"} and meta["split"] == "train"
    assert len(meta["model_digest"]) == 64 and meta["dataset"]["n_images"] == 1347


@pytest.mark.parametrize("args,message", [
    (["--layers", "conv9"], "no analysable layer named 'conv9'"),
    (["--dataset", "mnist", "--data-root", "/nonexistent"], "data root does not exist"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    _run("train", "--dataset", "digits", "--out", str(tmp_path / "d.pt"))
    out = _run("maps", "--arch", "zoo:digits_net", "--weights", str(tmp_path / "d.pt"), "--out",
               str(tmp_path / "m.npz"), *args)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and message in out.stderr


def test_cli_threshold_not_a_number(tmp_path):
    out = _run("maps", "--arch", "zoo:digits_net", "--weights", "x.pt", "--threshold", "abc", "--out", "m.npz")
    assert out.returncode == 2 and "invalid float value: 'abc'" in out.stderr


@pytest.mark.mnist
def test_cli_paper_model_on_real_mnist(tmp_path, data_root):
    out = _run("train", "--arch", "zoo:paper_mnist", "--dataset", "mnist", "--data-root", str(data_root),
               "--out", str(tmp_path / "mnist.pt"))
    assert out.returncode == 0, out.stderr
    acc = float(out.stdout.split("test accuracy ")[1].split("%")[0])
    assert acc > 95, out.stdout  # the paper reports 96.96%
    out = _run("maps", "--arch", "zoo:paper_mnist", "--weights", str(tmp_path / "mnist.pt"), "--dataset", "mnist",
               "--data-root", str(data_root), "--split", "train", "--out", str(tmp_path / "maps.npz"))
    assert out.returncode == 0, out.stderr
    meta = _check_npz(tmp_path / "maps.npz", ["conv1"], 16, 10, (26, 26))
    _check_npz(tmp_path / "maps.npz", ["conv2"], 16, 10, (24, 24))
    assert meta["dataset"]["n_images"] == 60000 and meta["layers"] == ["conv1", "conv2"]
    with np.load(tmp_path / "maps.npz", allow_pickle=False) as npz:
        assert npz["class_sizes"].sum() == 60000 and npz["class_sizes"][1] == 6742


def test_cli_edit_chain_and_rebuild(tmp_path):
    _run("train", "--dataset", "digits", "--out", str(tmp_path / "d.pt"))
    out = _run("edit", "--arch", "zoo:digits_net", "--weights", str(tmp_path / "d.pt"), "--dataset", "digits",
               "--remove", "conv2:0,1,2,3", "--epochs", "5", "--out", str(tmp_path / "e1.pt"),
               "--log", str(tmp_path / "e1.json"))
    assert out.returncode == 0, out.stderr
    assert re.search(r"conv2\s+16\s+12\n", out.stdout), out.stdout
    out = _run("edit", "--arch", "zoo:digits_net", "--weights", str(tmp_path / "e1.pt"), "--edits",
               str(tmp_path / "e1.json"), "--dataset", "digits", "--insert-after", "conv1", "--out",
               str(tmp_path / "e2.safetensors"), "--log", str(tmp_path / "e2.json"))
    assert out.returncode == 0, out.stderr
    log = json.loads((tmp_path / "e2.json").read_text())
    assert [e["kind"] for e in log["edits"]] == ["remove", "insert"]
    assert log["after"]["kernels"]["conv1_ins"] == 8
    assert log["kernel_origin"] == {"conv1_ins": [None] * 8, "conv2": list(range(4, 16))}  # changed layers only
    out = _run("maps", "--arch", "zoo:digits_net", "--weights", str(tmp_path / "e2.safetensors"), "--edits",
               str(tmp_path / "e2.json"), "--dataset", "digits", "--out", str(tmp_path / "m.npz"))
    assert out.returncode == 0, out.stderr
    assert "conv1_ins (read at conv1_ins_relu)" in out.stdout
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        origin = json.loads(str(npz["meta"]))["kernel_origin"]
    assert origin["conv2"] == list(range(4, 16)) and origin["conv1"] == list(range(8))
    out = _run("edit", "--arch", "zoo:digits_net", "--weights", str(tmp_path / "d.pt"), "--dataset", "digits",
               "--remove", "conv1:0,1,2,3,4,5,6,7", "--out", str(tmp_path / "x.pt"), "--log", str(tmp_path / "x.json"))
    assert out.returncode == 2 and "cannot remove every kernel of conv1" in out.stderr
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.mnist
def test_cli_reproduce_mnist(tmp_path, data_root):
    out = _run("reproduce", "mnist", "--data-root", str(data_root), "--out", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    steps = json.loads((tmp_path / "r.json").read_text())["steps"]
    base, conv1, conv2 = steps
    assert conv1["kernels_after"] <= 6 and conv2["kernels_after"] < 16
    for step in (conv1, conv2):
        assert step["test_accuracy"] >= base["test_accuracy"] - 0.005, steps
    assert conv2["params"] < base["params"] and conv2["flops"] < base["flops"]


@pytest.mark.mnist
def test_cli_reproduce_cifar10_on_an_image_folder_and_on_a_workspace_model(tmp_path, data_root):
    """Sec. V-B on a real-format folder (FashionMNIST JPEGs of mixed sizes): conv1 then conv6 reduced,
    each step a version; run again on the workspace, it reduces the workspace's current version."""
    from aomcore import Workspace

    folder = tmp_path / "photos"
    made = subprocess.run([sys.executable, "benchmarks/make_folder.py", str(folder), "--data-root", str(data_root),
                           "--per-split", "600", "--processes", "1"], cwd=REPO, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    ws = tmp_path / "ws"
    data = ("--dataset", f"imagefolder:{folder}", "--transform", "Resize(40), CenterCrop(32)")
    out = _run("reproduce", "cifar10", *data, "--epochs", "4", "--out", str(tmp_path / "r.json"),
               "--workspace", str(ws))
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["section"] == "V-B" and result["dataset"] == f"imagefolder:{folder}"
    base, conv1, conv6 = result["steps"]
    assert [conv1["layer"], conv6["layer"]] == ["conv1", "conv6"]
    assert conv1["kernels_before"] == conv6["kernels_before"] == 64
    assert conv6["kernels"]["conv1"] == conv1["kernels_after"] and conv6["kernels"]["conv6"] == conv6["kernels_after"]
    assert conv1["kernels_after"] == len(conv1["kept"]) and conv6["params"] < base["params"]
    assert "paper" in out.stdout and "81.20% (kept 20)" in out.stdout
    workspace = Workspace(ws, read_only=True)
    versions = workspace.versions()
    assert len(versions) == 3 and versions[2]["parent"] == 1 and versions[1]["parent"] == 0
    assert workspace.current_version == 2 and workspace.results("reproduce")[0]["key"] == "cifar10"

    again = _run("reproduce", "cifar10", "--out", str(tmp_path / "r2.json"), "--workspace", str(ws))
    assert again.returncode == 0, again.stderr
    steps = json.loads((tmp_path / "r2.json").read_text())["steps"]
    assert steps[0]["test_accuracy"] == conv6["test_accuracy"] and steps[1]["kernels_before"] == conv1["kernels_after"]
    reduced = [step for step in steps[1:] if step["kernels_after"] < step["kernels_before"]]
    versions = Workspace(ws, read_only=True).versions()  # a step that removes nothing adds no version
    assert len(versions) == 3 + len(reduced) and [versions[i]["parent"] for i in versions][3:] == [2, 3][:len(reduced)]
    for step in steps[1:]:
        assert (step in reduced) != (f"{step['layer']}: the rule keeps all" in again.stderr)
    for vid, record in versions.items():  # each version's cumulative edit list rebuilds its model
        model = Workspace(ws, read_only=True).loaded(vid).model
        assert model.conv6.out_channels == record["metrics"]["kernels"]["conv6"]

    other = _run("reproduce", "mnist", "--out", str(tmp_path / "r3.json"), "--workspace", str(ws))
    assert other.returncode == 2 and "current version is another model" in other.stderr
    assert "zoo:paper_cifar10" in other.stderr and not (tmp_path / "r3.json").exists()


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    import torch

    from aomcore import build_model, save_state_dict

    torch.manual_seed(0)
    return save_state_dict(build_model("torchvision:resnet18", 10, (3, 32, 32)),
                           tmp_path_factory.mktemp("resnet") / "resnet18.safetensors")


@pytest.mark.parametrize("edit,kernels", [
    (["--remove", "layer1.0.conv2:0,1,2"], ("layer1.0.conv2", 61)),
    (["--reinit", "layer2.0.conv1:0,5"], ("layer2.0.conv1", 128)),
    (["--widen", "layer3.1.conv1:+8"], ("layer3.1.conv1", 264)),
    (["--insert-after", "layer1.1.conv1"], ("layer1.1.bn1.conv", 64)),
])
def test_cli_edit_resnet18(tmp_path, resnet_weights, edit, kernels):
    out = _run("edit", "--arch", "torchvision:resnet18", "--weights", str(resnet_weights), "--dataset", "digits",
               "--channels", "3", "--resize", "32", *edit, "--out", str(tmp_path / "r.pt"),
               "--log", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    after = json.loads((tmp_path / "r.json").read_text())["after"]
    assert after["kernels"][kernels[0]] == kernels[1]


@pytest.mark.mnist
def test_cli_train_in_a_workspace_uses_its_dataset(tmp_path, data_root):
    """`train --workspace W` on an MNIST workspace trains the MNIST model with the MNIST recipe
    (it used to take the digits defaults: digits_net's 30 epochs, on MNIST)."""
    ws = tmp_path / "w"
    out = _run("workspace", "create", str(ws), "--dataset", "mnist", "--data-root", str(data_root),
               "--per-class", "20")
    assert out.returncode == 0, out.stderr
    out = _run("train", "--workspace", str(ws))
    assert out.returncode == 0, out.stderr
    assert "zoo:paper_mnist on mnist" in out.stdout
    (job,) = [json.loads(p.read_text()) for p in (ws / "jobs").glob("*.json")]
    assert job["params"]["arch"] == "zoo:paper_mnist" and job["params"]["config"]["epochs"] == 1
    assert job["params"]["config"]["batch_size"] == 128


@pytest.mark.mnist
def test_cli_data_root_reaches_a_workspace_that_recorded_none(tmp_path, data_root):
    """A workspace made with $AOMSCOPE_DATA_ROOT records no root; a later command without the
    variable finds the files through --data-root (it used to say "mnist needs a data root")."""
    import os

    ws = tmp_path / "w"
    env = {**os.environ, "AOMSCOPE_DATA_ROOT": str(data_root)}
    made = subprocess.run([sys.executable, "-m", "aomcore", "workspace", "create", str(ws), "--dataset", "mnist",
                           "--per-class", "20"], cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert made.returncode == 0, made.stderr
    assert json.loads((ws / "workspace.json").read_text())["dataset"]["data_root"] is None
    bare = {k: v for k, v in os.environ.items() if k != "AOMSCOPE_DATA_ROOT"}
    args = [sys.executable, "-m", "aomcore", "train", "--workspace", str(ws)]
    out = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600, env=bare)
    assert out.returncode == 2 and "needs a data root" in out.stderr  # no root anywhere: said so
    out = subprocess.run([*args, "--data-root", str(data_root)], cwd=REPO, capture_output=True, text=True,
                         timeout=600, env=bare)
    assert out.returncode == 0, out.stderr
    assert json.loads((ws / "workspace.json").read_text())["dataset"]["data_root"] is None  # never written
