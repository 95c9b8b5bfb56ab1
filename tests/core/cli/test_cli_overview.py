"""``python -m aomcore overview`` on digits: table, JSON, maps.npz reuse and its checks."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aomcore import CRITERIA, Edit, default_n_groups, kernel_scores, load_dataset, load_maps_npz, load_model
from tests.conftest import REPO


def _run(*args):
    return subprocess.run([sys.executable, "-m", "aomcore", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overview")
    for seed in (0, 1):
        out = _run("train", "--dataset", "digits", "--seed", str(seed), "--out", str(folder / f"d{seed}.pt"))
        assert out.returncode == 0, out.stderr
    out = _run("maps", "--arch", "zoo:digits_net", "--weights", str(folder / "d0.pt"), "--dataset", "digits",
               "--layers", "conv1,conv2,fc1", "--out", str(folder / "m.npz"))
    assert out.returncode == 0, out.stderr
    return folder


def _overview(weights, *args):
    return _run("overview", "--arch", "zoo:digits_net", "--weights", str(weights), "--dataset", "digits", *args)


def test_overview_json_from_maps_matches_computed(digits):
    out = _overview(digits / "d0.pt", "--maps", str(digits / "m.npz"), "--layers", "fc1,conv1", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["layer"] for r in rows] == ["conv1", "fc1"]  # forward order, whatever --layers says
    conv1, fc1 = rows
    assert conv1["kernels"] == 8 and fc1["kernels"] == 64 and conv1["tap"] == "relu1"
    maps, _ = load_maps_npz(digits / "m.npz")
    for r in rows:
        assert r["groups"] == default_n_groups(maps[r["layer"]].odm, maps[r["layer"]].aom)
    for r in rows:
        assert 0 <= r["multi_class_share"] <= 1 and 0 <= r["least_separated_e"] <= 1
        assert len(r["least_separated"]) == 2 and r["neighborhood_hit"] is None
        assert r["redundant_kernels"] <= r["kernels"] - r["groups"]  # at most one kernel of a group is kept
        assert 1 <= r["redundant_groups"] <= r["groups"]
        for f in r["findings"]:
            assert f["task"] in (1, 2, 3) and f["finding"]
            if f["edit"] is not None:
                assert Edit.from_dict(f["edit"]).layer == r["layer"]
        remove = [f["edit"]["kernels"] for f in r["findings"] if f["task"] == 1]
        assert sorted(sum(remove, []) + r["keep"]) == list(range(r["kernels"]))
    # FC layer: Task 3 never proposes an insert after it
    assert all(f["edit"] is None for f in fc1["findings"] if f["task"] == 3)
    computed = _overview(digits / "d0.pt", "--layers", "conv1,fc1", "--json")
    assert computed.returncode == 0, computed.stderr
    assert json.loads(computed.stdout) == rows


def test_overview_json_scores_every_kernel_by_every_criterion_that_applies(digits):
    out = _overview(digits / "d0.pt", "--maps", str(digits / "m.npz"), "--layers", "conv1,fc1", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["layer"]: r for r in json.loads(out.stdout)}
    train_set = load_dataset("digits", "train")  # --split's default: the maps' split and Taylor's batch
    model = load_model("zoo:digits_net", str(digits / "d0.pt"), 10, train_set.input_shape).model
    maps = load_maps_npz(digits / "m.npz")[0]
    for layer, k in (("conv1", 8), ("fc1", 64)):
        scores = rows[layer]["scores"]
        # no BatchNorm in digits_net: bn_scale cannot apply and is left out, every other criterion is there
        assert set(scores) == set(CRITERIA) - {"bn_scale"}, layer
        for name, values in scores.items():
            assert len(values) == k
            truth = kernel_scores(name, maps=maps[layer], model=model, layer=layer, data=train_set)
            np.testing.assert_allclose(values, truth, rtol=1e-12, err_msg=f"{layer} {name}")


def test_overview_table(digits):
    out = _overview(digits / "d0.pt", "--maps", str(digits / "m.npz"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["layer", "kernels", "dead"]
    assert [line.split()[0] for line in lines[1:] if not line.startswith(" ")][:3] == ["conv1", "conv2", "fc1"]
    assert "Task 1:" in out.stdout and "→ --remove conv1:" in out.stdout


def test_overview_refuses_maps_of_other_weights_and_unknown_layers(digits):
    out = _overview(digits / "d1.pt", "--maps", str(digits / "m.npz"))
    assert out.returncode == 2 and "the maps were computed for other weights" in out.stderr
    out = _overview(digits / "d0.pt", "--maps", str(digits / "m.npz"), "--layers", "fc2")
    assert out.returncode == 2 and "no layer 'fc2' in" in out.stderr
