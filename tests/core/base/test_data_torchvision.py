"""Model inputs are bit-identical (torch.equal) to torchvision's own pipeline."""

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import transforms

from aomcore import Preprocessing, load_dataset
from tests.conftest import missing

from .test_data import _write_cifar

MNIST_NORM = ((0.1307,), (0.3081,))
CIFAR_NORM = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def _ours(ds, index: torch.Tensor) -> torch.Tensor:
    x, _ = next(ds.batches(len(index), indices=index))
    return x


def _theirs(tv_ds, index: torch.Tensor) -> torch.Tensor:
    return torch.stack([tv_ds[int(i)][0] for i in index])


@pytest.mark.mnist
@pytest.mark.parametrize("kind,tv_class", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
@pytest.mark.parametrize("split", ["train", "test"])
def test_mnist_inputs_equal_torchvision(data_root, kind, tv_class, split):
    if not (data_root / tv_class / "raw").is_dir():
        missing(f"{tv_class} not under {data_root}")
    mean, std = MNIST_NORM
    ours = load_dataset(kind, split, data_root, Preprocessing(mean=mean, std=std))
    theirs = getattr(torchvision.datasets, tv_class)(
        str(data_root), train=split == "train", download=False,
        transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)]))
    index = torch.arange(0, len(ours), len(ours) // 2000)  # 2000 images spread over the split
    x = _ours(ours, index)
    assert x.dtype == torch.float32 and x.shape == (len(index), 1, 28, 28)
    assert torch.equal(x, _theirs(theirs, index))
    assert torch.equal(ours.labels[index], torch.as_tensor([theirs.targets[int(i)] for i in index]))


@pytest.mark.mnist
def test_mnist_scaling_alone_and_resize_equal_torchvision(data_root):
    """ToTensor alone (the multiply-by-1/255 bug differed here), and Resize on the tensor."""
    theirs_plain = torchvision.datasets.MNIST(str(data_root), train=False, transform=transforms.ToTensor())
    index = torch.arange(0, 10000, 20)
    assert torch.equal(_ours(load_dataset("mnist", "test", data_root), index), _theirs(theirs_plain, index))
    mean, std = MNIST_NORM
    ours = load_dataset("mnist", "test", data_root, Preprocessing(mean=mean, std=std, resize=32))
    theirs = torchvision.datasets.MNIST(str(data_root), train=False, transform=transforms.Compose([
        transforms.ToTensor(), transforms.Resize((32, 32), antialias=True), transforms.Normalize(mean, std)]))
    assert torch.equal(_ours(ours, index[:200]), _theirs(theirs, index[:200]))


def test_imagefolder_inputs_equal_torchvision(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog", "emu"):
        (tmp_path / cls).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    mean, std = CIFAR_NORM
    ours = load_dataset(f"imagefolder:{tmp_path}", "train", preprocessing=Preprocessing(mean=mean, std=std))
    theirs = torchvision.datasets.ImageFolder(
        str(tmp_path), transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)]))
    index = torch.arange(len(theirs))
    assert ours.classes == theirs.classes and len(ours) == 12
    assert torch.equal(_ours(ours, index), _theirs(theirs, index))
    assert ours.labels.tolist() == theirs.targets
    plain = torchvision.datasets.ImageFolder(str(tmp_path), transform=transforms.ToTensor())
    assert torch.equal(_ours(load_dataset(f"imagefolder:{tmp_path}", "train"), index), _theirs(plain, index))


def test_cifar10_inputs_equal_torchvision(tmp_path, monkeypatch):
    _write_cifar(tmp_path)
    # The fixture's files are not the real CIFAR-10, so torchvision's md5 check must be skipped.
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    mean, std = CIFAR_NORM
    for split in ("train", "test"):
        ours = load_dataset("cifar10", split, tmp_path, Preprocessing(mean=mean, std=std))
        theirs = torchvision.datasets.CIFAR10(
            str(tmp_path), train=split == "train", download=False,
            transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)]))
        index = torch.arange(len(theirs))
        assert ours.classes == theirs.classes and len(ours) == len(theirs)
        assert torch.equal(_ours(ours, index), _theirs(theirs, index))
        assert ours.labels.tolist() == theirs.targets
