"""Runs made elsewhere (checkpoint folders → run folders), the run's DeepEyes reading, and the CLI on
workspace runs (``run import``, ``deepeyes --run``)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aomcore import InputError, Workspace, build_model, list_runs, load_deepeyes_npz, run_inline
from aomcore.base.models import save_state_dict, weights_digest
from aomcore.deepeyes import filter_flags, histogram_change, learning_histogram, stable_layers
from aomcore.store.run_import import checkpoint_iteration, import_run
from tests.conftest import REPO

SHAPE = (1, 8, 8)


def _cli(*args, home):
    return subprocess.run([sys.executable, "-m", "aomcore", *args], cwd=REPO, capture_output=True, text=True,
                          env={"AOMSCOPE_HOME": str(home), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
                          timeout=300)


@pytest.fixture(scope="module")
def small_ws(tmp_path_factory):
    """digits_net trained 2 epochs on digits, 3 snapshots, with its monitor."""
    ws = Workspace.create(tmp_path_factory.mktemp("runs"), name="digits", dataset="digits")
    run_inline(ws, "train", {"arch": "zoo:digits_net", "snapshots": 3,
                             "config": {"epochs": 2, "lr": 3e-3, "batch_size": 64}})
    return ws


def _models(n):
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(build_model("zoo:digits_net", 10, SHAPE))
    return out


def test_checkpoint_iteration_is_the_last_number():
    assert [checkpoint_iteration(n) for n in ("iter20.pt", "run2_iter100.safetensors", "model.pt", "e3-s0400.pth")] \
        == [20, 100, None, 400]


def test_import_orders_by_number_and_keeps_the_rest_of_a_bad_folder(tmp_path):
    a, b, c = _models(3)
    folder = tmp_path / "ck"
    save_state_dict(a, folder / "iter100.pt")
    save_state_dict(b, folder / "iter20.safetensors")
    save_state_dict(c, folder / "iter3.pt")
    wrong = build_model("zoo:digits_net", 7, SHAPE)  # another number of classes: fc2 mis-shaped
    save_state_dict(wrong, folder / "iter50.pt")
    (folder / "iter60.safetensors").write_bytes(b"\x00" * 40)  # corrupt
    (folder / "final.pt").write_bytes((folder / "iter3.pt").read_bytes())  # no number
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "run"
    imported = import_run(folder, "zoo:digits_net", 10, SHAPE, out=out)
    snaps = imported.record["snapshots"]
    assert [s["iteration"] for s in snaps] == [3, 20, 100]  # iter20 before iter100
    assert [s["source_file"] for s in snaps] == ["iter3.pt", "iter20.safetensors", "iter100.pt"]
    assert weights_digest(load_file(out / snaps[2]["file"])) == weights_digest(a)
    reasons = dict(imported.skipped)
    assert sorted(reasons) == ["final.pt", "iter50.pt", "iter60.safetensors"]
    assert "do not fit the architecture" in reasons["iter50.pt"] and "fc2.weight (7, 64) vs (10, 64)" in \
        reasons["iter50.pt"]
    assert "could not read safetensors" in reasons["iter60.safetensors"]
    assert "no number" in reasons["final.pt"]
    assert json.loads((out / "run.json").read_text())["kind"] == "import"
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]  # the staging folder was renamed


def test_import_refuses_when_nothing_fits_and_leaves_nothing(tmp_path):
    folder = tmp_path / "ck"
    save_state_dict(build_model("zoo:digits_net", 7, SHAPE), folder / "iter1.pt")
    with pytest.raises(InputError, match="no checkpoint fits the architecture.*iter1.pt"):
        import_run(folder, "zoo:digits_net", 10, SHAPE, out=tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    with pytest.raises(InputError, match="already exists"):
        import_run(folder, "zoo:digits_net", 10, SHAPE, out=folder)


def test_learning_histogram_change_and_stability_exact():
    hist = np.array([[4, 0, 0, 0], [2, 2, 0, 0], [2, 2, 0, 0], [0, 0, 0, 0]])
    assert learning_histogram(hist).tolist() == [[0, 0, 0, 0], [-0.5, 0.5, 0, 0], [0, 0, 0, 0], [-0.5, -0.5, 0, 0]]
    change = histogram_change(hist)
    assert np.isnan(change[0]) and change[1:].tolist() == [1.0, 0.0, 1.0]
    layers = {"a": {"perplexity_histogram": hist[:3]}, "b": {"perplexity_histogram": hist}}
    assert stable_layers(layers, 0.1, 1) == {"a": True, "b": False}
    assert stable_layers(layers, 0.1, 3) == {"a": False, "b": False}  # only 2 changes in "a"
    flags = filter_flags(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.96, 0.5]), 0.95)
    assert flags["dead"].tolist() == [True, False, False] and flags["always_on"].tolist() == [False, True, False]
    with pytest.raises(InputError, match="always-on level"):
        filter_flags(np.zeros(2), np.zeros(2), 0.5)


def test_cli_run_import_into_a_workspace(small_ws, tmp_path):
    run = list_runs(small_ws)[-1]
    folder = tmp_path / "ck"
    folder.mkdir()
    for s in run["snapshots"]:
        (folder / f"iter{s['iteration']}.safetensors").write_bytes((small_ws.runs_dir / run["id"] / s["file"])
                                                                   .read_bytes())
    (folder / "iter999.pt").write_bytes(b"PK garbage")
    out = _cli("run", "import", str(folder), "--arch", "zoo:digits_net", "--workspace", str(small_ws.path),
               home=tmp_path)
    assert out.returncode == 0, out.stderr
    made = out.stdout.strip().splitlines()[-1]
    assert made.startswith(str(small_ws.runs_dir)) and "skipped iter999.pt" in out.stderr
    record = json.loads((tmp_path / made / "run.json").read_text())
    assert [s["iteration"] for s in record["snapshots"]] == [s["iteration"] for s in run["snapshots"]]
    assert [s["test_accuracy"] for s in record["snapshots"]] == [s["test_accuracy"] for s in run["snapshots"]]
    bad = _cli("run", "import", str(folder), "--arch", "zoo:nope", "--out", str(tmp_path / "r2"), "--dataset",
               "digits", home=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
    assert "unknown zoo model" in bad.stderr
    # no workspace and no dataset: never evaluated on a guessed one (digits for an MNIST model)
    bad = _cli("run", "import", str(folder), "--arch", "zoo:digits_net", "--out", str(tmp_path / "r3"), home=tmp_path)
    assert bad.returncode == 2 and "which data are the checkpoints for?" in bad.stderr
    assert "--dataset NAME" in bad.stderr and not (tmp_path / "r3").exists()


def test_cli_deepeyes_on_a_workspace_run(small_ws, tmp_path):
    run = [r for r in list_runs(small_ws) if r["kind"] == "train"][-1]
    out = _cli("deepeyes", "--workspace", str(small_ws.path), "--run", run["id"], "--no-similarity",
               "--out", str(tmp_path / "de.npz"), home=tmp_path)
    assert out.returncode == 0, out.stderr
    layers, meta, snapshots = load_deepeyes_npz(tmp_path / "de.npz")
    assert snapshots.tolist() == [s["iteration"] for s in run["snapshots"]]
    assert list(layers) == ["conv1", "conv2", "fc1", "fc2"] and layers["conv2"]["max_activation"].shape == (3, 16)
    assert meta["run"] == run["path"] and meta["split"] == "test"
    assert layers["fc2"]["perplexity_histogram"].sum(axis=1).tolist() == [450] * 3  # one vector per test image
    assert f"{len(run['snapshots'])} snapshots" in out.stdout
