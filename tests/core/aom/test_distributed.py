"""torchrun with 2 Gloo processes gives exactly the single-process counts."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from aomcore import build_model, load_dataset, save_state_dict
from tests.conftest import REPO


def _one_and_two_processes(common: list[str], tmp_path) -> None:
    """``python -m aomcore *common`` to one.npz, then under torchrun with 2 processes to two.npz."""
    single = subprocess.run([sys.executable, "-m", "aomcore", *common, "--out", str(tmp_path / "one.npz")],
                            cwd=REPO, capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    multi = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                            "-m", "aomcore", *common, "--out", str(tmp_path / "two.npz")],
                           cwd=REPO, capture_output=True, text=True, timeout=600)
    assert multi.returncode == 0, multi.stderr[-3000:]


@pytest.mark.mnist
def test_two_gloo_processes_match_one(tmp_path, data_root):
    mnist = load_dataset("mnist", "train", data_root)
    n = 3001  # odd: the shards differ in size and DistributedSampler would pad
    np.savez(tmp_path / "subset.npz", x=mnist.images[:n, 0].numpy(), y=mnist.labels[:n].numpy(),
             classes=np.array(mnist.classes))
    torch.manual_seed(0)
    save_state_dict(build_model("zoo:paper_mnist", 10, (1, 28, 28)), tmp_path / "w.pt")
    common = ["maps", "--arch", "zoo:paper_mnist", "--weights", str(tmp_path / "w.pt"), "--dataset",
              f"npz:{tmp_path / 'subset.npz'}", "--device", "cpu", "--batch-size", "128",
              "--cache-dir", str(tmp_path / "cache")]
    _one_and_two_processes(common, tmp_path)
    with np.load(tmp_path / "one.npz") as one, np.load(tmp_path / "two.npz") as two:
        assert two["class_sizes"].sum() == n
        np.testing.assert_array_equal(one["class_sizes"], two["class_sizes"])
        for layer in ("conv1", "conv2"):
            np.testing.assert_array_equal(one[f"{layer}/counts"], two[f"{layer}/counts"])
            np.testing.assert_array_equal(one[f"{layer}/aom"], two[f"{layer}/aom"])


def test_an_image_folder_streamed_by_two_gloo_processes_matches_one(tmp_path):
    """Each rank decodes its shard of the folder's index in its own DataLoader worker."""
    from tests.core.base.test_folder import _mixed_folder

    folder = _mixed_folder(tmp_path / "photos", n_per_class=7)  # 21 images: shards of 11 and 10
    torch.manual_seed(0)
    save_state_dict(build_model("zoo:paper_cifar10", 3, (3, 32, 32)), tmp_path / "w.pt")
    common = ["maps", "--arch", "zoo:paper_cifar10", "--weights", str(tmp_path / "w.pt"), "--dataset",
              f"imagefolder:{folder}", "--transform", "Resize(40), CenterCrop(32)", "--workers", "1",
              "--device", "cpu", "--batch-size", "4", "--cache-dir", str(tmp_path / "cache"),
              "--layers", "conv1,conv6"]
    _one_and_two_processes(common, tmp_path)
    with np.load(tmp_path / "one.npz") as one, np.load(tmp_path / "two.npz") as two:
        assert two["class_sizes"].tolist() == [7, 7, 7]
        for layer in ("conv1", "conv6"):
            np.testing.assert_array_equal(one[f"{layer}/counts"], two[f"{layer}/counts"])
