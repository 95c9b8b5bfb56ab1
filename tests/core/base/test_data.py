"""Datasets: the offline default, real MNIST, a CIFAR-10 fixture, npz and image folders."""

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from aomcore import InputError, Preprocessing, load_dataset


def test_digits_default_split_is_fixed_and_stratified():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert (len(train), len(test)) == (1347, 450)
    assert train.input_shape == (1, 8, 8) and train.num_classes == 10
    assert train.digest == load_dataset("digits", "train").digest != test.digest
    total = train.class_sizes() + test.class_sizes()
    assert np.abs(test.class_sizes() - 0.25 * total).max() <= 1  # stratified
    x, y = next(train.batches(16))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and y.dtype == torch.int64


def test_preprocessing_is_applied_and_recorded():
    ds = load_dataset("digits", "test", preprocessing=Preprocessing(mean=(0.5,), std=(0.25,), channels=3, resize=16))
    x, _ = next(ds.batches(4))
    assert x.shape == (4, 3, 16, 16) and ds.input_shape == (3, 16, 16)
    assert ds.identity()["preprocessing"] == {"mean": [0.5], "std": [0.25], "channels": 3, "resize": 16}
    assert x.min() < 0  # normalised


def test_mnist_from_the_shared_root(data_root):
    ds = load_dataset("mnist", "test", data_root)
    assert len(ds) == 10000 and ds.input_shape == (1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.classes[0] == "0 - zero"
    fashion = load_dataset("fashion-mnist", "test", data_root)
    assert fashion.classes[0] == "T-shirt/top"


@pytest.mark.parametrize("kind", ["mnist", "fashion-mnist"])
def test_mnist_reads_as_torchvision_reads_it(data_root, kind):
    from torchvision import datasets

    cls = datasets.MNIST if kind == "mnist" else datasets.FashionMNIST
    for split in ("train", "test"):
        ours, theirs = load_dataset(kind, split, data_root), cls(str(data_root), train=split == "train")
        assert ours.images.dtype == theirs.data.dtype == torch.uint8 and ours.images.is_contiguous()
        assert torch.equal(ours.images, theirs.data[:, None]) and torch.equal(ours.labels, theirs.targets.long())
        assert ours.classes == list(theirs.classes)


def _write_idx(folder, prefix, images, labels, image_magic=0x803):
    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        b"".join(v.to_bytes(4, "big") for v in (image_magic, n, h, w)) + images.tobytes())
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        b"".join(v.to_bytes(4, "big") for v in (0x801, len(labels))) + labels.tobytes())


def test_idx_files_are_read_exactly_and_bad_ones_refused(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (20, 5, 7), dtype=np.uint8), np.arange(20, dtype=np.uint8) % 10
    raw = tmp_path / "MNIST" / "raw"
    _write_idx(raw, "t10k", images, labels)
    ds = load_dataset("mnist", "test", tmp_path)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(images)) and ds.labels.tolist() == labels.tolist()
    assert ds.input_shape == (1, 5, 7)
    _write_idx(raw, "t10k", images, labels, image_magic=0x80D)  # float32 IDX: not MNIST's ubyte
    with pytest.raises(InputError, match="not an MNIST-style IDX file") as err:
        load_dataset("mnist", "test", tmp_path)
    assert "magic 0x00000803" in str(err.value) and "magic 0x0000080d" in str(err.value)
    _write_idx(raw, "t10k", images, labels)
    file = raw / "t10k-images-idx3-ubyte"
    file.write_bytes(file.read_bytes()[:-3])
    with pytest.raises(InputError, match="truncated or padded IDX file"):
        load_dataset("mnist", "test", tmp_path)
    _write_idx(raw, "t10k", images, labels[:19])
    with pytest.raises(InputError, match="images and labels differ in number"):
        load_dataset("mnist", "test", tmp_path)
    (raw / "t10k-labels-idx1-ubyte").write_bytes((0x801).to_bytes(4, "big") + b"\x00\x00")  # cut in its header
    with pytest.raises(InputError, match="not an MNIST-style IDX file") as err:
        load_dataset("mnist", "test", tmp_path)
    assert "a header of 8 bytes" in str(err.value) and "found 6 bytes" in str(err.value)
    _write_idx(raw, "t10k", images, labels + 5)
    with pytest.raises(InputError, match="labels out of range"):
        load_dataset("mnist", "test", tmp_path)


def test_missing_root_and_missing_data_are_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("AOMSCOPE_DATA_ROOT", raising=False)
    with pytest.raises(InputError, match="needs a data root"):
        load_dataset("mnist", "train")
    with pytest.raises(InputError, match="data root does not exist"):
        load_dataset("mnist", "train", tmp_path / "nowhere")
    with pytest.raises(InputError, match="mnist not found under the data root"):
        load_dataset("mnist", "train", tmp_path)
    with pytest.raises(InputError, match="unknown dataset"):
        load_dataset("imagenet", "train")
    with pytest.raises(InputError, match="unknown split"):
        load_dataset("digits", "val")


def _write_cifar(root, n=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {"batch_label": name, "labels": [int(v) for v in rng.integers(0, 10, n)],
                 "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "filenames": [f"{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck"], "num_cases_per_batch": n, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def test_cifar10_fixture(tmp_path):
    _write_cifar(tmp_path)
    train, test = load_dataset("cifar10", "train", tmp_path), load_dataset("cifar10", "test", tmp_path)
    assert len(train) == 30 and len(test) == 6 and train.input_shape == (3, 32, 32)
    assert train.classes[-1] == "truck"


def test_cifar10_refuses_a_code_carrying_pickle(tmp_path):
    folder = _write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    (folder / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(InputError, match="refusing to unpickle"):
        load_dataset("cifar10", "test", tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_npz_dataset_and_errors(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (20, 8, 8), dtype=np.uint8)
    y = np.arange(20) % 4
    np.savez(tmp_path / "ok.npz", x=x, y=y, classes=np.array(["a", "b", "c", "d"]))
    ds = load_dataset(f"npz:{tmp_path / 'ok.npz'}", "train")
    assert ds.input_shape == (1, 8, 8) and ds.classes == ["a", "b", "c", "d"]
    np.savez(tmp_path / "noy.npz", x=x)
    with pytest.raises(InputError, match="lacks arrays.*missing \\['y'\\]"):
        load_dataset(f"npz:{tmp_path / 'noy.npz'}", "train")
    np.savez(tmp_path / "range.npz", x=x, y=y, classes=np.array(["a", "b"]))
    with pytest.raises(InputError, match="labels out of range"):
        load_dataset(f"npz:{tmp_path / 'range.npz'}", "train")
    np.savez(tmp_path / "frac.npz", x=x, y=y + 0.5)
    with pytest.raises(InputError, match="labels must be integers"):
        load_dataset(f"npz:{tmp_path / 'frac.npz'}", "train")
    xf = x.astype(np.float32) / 255
    xf[3, 2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=xf, y=y)
    with pytest.raises(InputError, match="NaN or Inf.*index \\[3, 2, 1\\]"):
        load_dataset(f"npz:{tmp_path / 'nan.npz'}", "train")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable npz"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}", "train")


def test_imagefolder(tmp_path):
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((6, 6, 3), 40 * i, dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    ds = load_dataset(f"imagefolder:{tmp_path}", "test")
    assert len(ds) == 6 and ds.classes == ["cat", "dog"] and ds.input_shape == (3, 6, 6)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="unreadable image file.*broken.png"):
        load_dataset(f"imagefolder:{tmp_path}", "test")
