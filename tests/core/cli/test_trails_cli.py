"""The trails CLI on a digits workspace run, its --arch check, and the lagging-class rule."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aomcore import Workspace, default_train_config, run_inline
from aomcore.rauber import lagging_classes
from tests.conftest import REPO


def _run(*args):
    return subprocess.run([sys.executable, "-m", "aomcore", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    ws = Workspace.create(tmp_path_factory.mktemp("trails"), name="digits", dataset="digits")
    config = default_train_config("digits").__dict__ | {"epochs": 3}
    final = run_inline(ws, "train", {"arch": "zoo:digits_net", "config": config, "snapshots": 3, "monitor": False})
    return ws, final["result"]["run"]


def test_cli_trails_on_a_workspace_run(digits_run, tmp_path):
    ws, run_id = digits_run
    out = _run("trails", "--workspace", str(ws.path), "--run", "latest", "--layer", "fc1", "--n", "120",
               "--n-iter", "40", "--out", str(tmp_path / "t.npz"), "--png", str(tmp_path / "t.png"))
    assert out.returncode == 0, out.stderr
    assert "120 images × 3 snapshots" in out.stdout
    with np.load(tmp_path / "t.npz", allow_pickle=False) as npz:
        s = len(npz["snapshots"])
        assert npz["points"].shape == (s, 120, 2) and npz["points"].dtype == np.float64
        assert npz["labels"].shape == npz["index"].shape == (120,)
        assert npz["neighborhood_hit"].shape == (s,) and npz["snapshots"][0] == 0
        assert npz["class_neighborhood_hit"].shape == npz["class_accuracy"].shape == (10,)
        meta = json.loads(str(npz["meta"]))
    assert meta["run_id"] == run_id and meta["layer"] == "fc1" and meta["tap"] == "relu3"
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    (record,) = ws.results("trails")
    # the same request again is a cache hit, and a run folder path works without the workspace
    again = _run("trails", "--workspace", str(ws.path), "--run", run_id, "--layer", "fc1", "--n", "120",
                 "--n-iter", "40", "--out", str(tmp_path / "u.npz"))
    assert again.returncode == 0, again.stderr
    assert ws.results("trails")[-1]["from_cache"] and ws.results("trails")[-1]["key"] == record["key"]
    with np.load(tmp_path / "u.npz") as a, np.load(tmp_path / "t.npz") as b:
        np.testing.assert_array_equal(a["points"], b["points"])


def test_cli_trails_arch_mismatch_and_bad_layer(digits_run, tmp_path):
    ws, _ = digits_run
    out = _run("trails", "--workspace", str(ws.path), "--run", "latest", "--arch", "zoo:paper_mnist",
               "--layer", "fc1", "--out", str(tmp_path / "t.npz"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --arch does not match the run: expected zoo:digits_net, found zoo:paper_mnist"]
    out = _run("trails", "--workspace", str(ws.path), "--run", "nope", "--layer", "fc1", "--out",
               str(tmp_path / "t.npz"))
    assert out.returncode == 2 and out.stderr.startswith("error: no such run")
    assert not (tmp_path / "t.npz").exists()


def test_lagging_classes_are_those_below_the_median_by_the_margin():
    nh = np.array([0.90, 0.95, 0.80, 0.96, np.nan, 0.70])  # median of the finite five: 0.90
    assert lagging_classes(nh, 0.05).tolist() == [5, 2]
    assert lagging_classes(nh, 0.25).tolist() == []
    assert lagging_classes(np.full(3, np.nan)).tolist() == []
