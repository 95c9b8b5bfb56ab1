"""reproduce deepeyes: the rule that picks filters from DeepEyes' views, and the CLI on real MNIST."""

import json
import subprocess
import sys

import numpy as np
import pytest

from aomcore.deepeyes.reproduce import choose_by_deepeyes
from tests.conftest import REPO


def test_dead_and_always_on_go_first_then_one_per_cluster():
    # filters 0 dead, 1 always on; {2, 3} alike, {4, 5} alike: keeping 2 → one of each pair, the most confident
    max_act = np.array([0.0, 5.0, 1.0, 2.0, 3.0, 1.5])
    freq = np.array([0.0, 1.0, 0.3, 0.3, 0.5, 0.5])
    conf = np.array([0.0, 0.1, 0.9, 0.4, 0.2, 0.8])
    sim = np.eye(6)
    sim[2, 3] = sim[3, 2] = sim[4, 5] = sim[5, 4] = 0.9
    assert choose_by_deepeyes(max_act, freq, sim, conf, keep=2) == [2, 5]


def test_with_too_few_live_filters_all_live_ones_stay():
    max_act = np.array([0.0, 1.0, 2.0])
    freq = np.array([0.0, 0.5, 1.0])
    kept = choose_by_deepeyes(max_act, freq, np.eye(3), np.ones(3), keep=2)
    assert 1 in kept and len(kept) == 2


@pytest.mark.mnist
@pytest.mark.slow
def test_cli_reproduce_deepeyes(tmp_path, data_root):
    """Three 1-epoch trainings and two DeepEyes passes over MNIST: ~15 min on 1 CPU thread (not for a short CI)."""
    out = subprocess.run([sys.executable, "-m", "aomcore", "reproduce", "deepeyes", "--data-root", str(data_root),
                          "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "r.json")],
                         cwd=REPO, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr
    steps = json.loads((tmp_path / "r.json").read_text())["steps"]
    assert [s["step"] for s in steps] == ["baseline", "conv1", "fc1"]
    assert steps[0]["kernels"]["conv1"] == 20 and steps[-1]["kernels"] == steps[-1]["kernels"] | {"conv1": 10,
                                                                                                  "fc1": 100}
    assert steps[-1]["accuracy"] > 0.97 and steps[-1]["params"] < steps[0]["params"] / 3
