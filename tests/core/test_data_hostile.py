"""Hostile datasets (issue #15): each bad input is refused with a message, or read correctly."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from aomcore import InputError, load_dataset


def png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def two_classes(root, size=(8, 8)):
    for i, cls in enumerate(("a", "b")):
        for j in range(2):
            png(root / cls / f"{j}.png", np.full(size, 40 * i + j, np.uint8))
    return root


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """Shared mode with one allowed folder (``allowed``) and a folder outside it (``outside``)."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    monkeypatch.setenv("AOMSCOPE_SHARED", "1")
    monkeypatch.setenv("AOMSCOPE_DATA_DIRS", str(allowed))
    monkeypatch.setenv("AOMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    return allowed, outside


def test_every_opened_file_must_lie_inside_the_data_dirs(shared, tmp_path):
    allowed, outside = shared
    folder = two_classes(allowed / "images")
    assert load_dataset(f"imagefolder:{folder}").labels.tolist() == [0, 0, 1, 1]
    os.symlink(png(outside / "secret.png", np.zeros((8, 8), np.uint8)), folder / "a" / "link.png")
    two_classes(outside / "train")
    two_classes(outside / "test")
    (allowed / "split").mkdir()
    for split in ("train", "test"):
        os.symlink(outside / split, allowed / "split" / split)
    (outside / "MNIST").mkdir()
    os.symlink(outside / "MNIST", allowed / "MNIST")
    (allowed / "cifar-10-batches-py").mkdir()
    (outside / "batch").write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [0]}))
    os.symlink(outside / "batch", allowed / "cifar-10-batches-py" / "test_batch")
    np.savez(outside / "d.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 1]))
    os.symlink(outside / "d.npz", allowed / "d.npz")
    for spec, root in ((f"imagefolder:{folder}", None), (f"imagefolder:{allowed / 'split'}", None),
                       ("mnist", allowed), ("cifar10", allowed), (f"npz:{allowed / 'd.npz'}", None)):
        with pytest.raises(InputError, match="path outside the allowed data folders"):
            load_dataset(spec, "test", data_root=root)
    upload = tmp_path / "cache" / "uploads" / "abc.npz"  # where ui.views.save_upload puts an upload
    upload.parent.mkdir(parents=True)
    np.savez(upload, x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 0, 1]))
    assert len(load_dataset(f"npz:{upload}")) == 4


def test_declared_sizes_are_checked_before_decoding(tmp_path, monkeypatch):
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (640000, 28, 28)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:  # headers only: nothing behind them
        archive.writestr("x.npy", header.getvalue())
        archive.writestr("y.npy", header.getvalue())
    monkeypatch.setenv("AOMSCOPE_MAX_DATA_GB", "0.25")
    with pytest.raises(InputError, match=r"'x' declares 640000×28×28 uint8 = 0.47 GB"):
        load_dataset(f"npz:{tmp_path / 'bomb.npz'}")
    folder = two_classes(tmp_path / "images", size=(64, 64))
    monkeypatch.setenv("AOMSCOPE_MAX_DATA_GB", str(3 * 64 * 64 / 2**30))
    with pytest.raises(InputError, match=r"1.png declares 64×64 L = 4.0 KB after 12.0 KB of other files"):
        load_dataset(f"imagefolder:{folder}")
    monkeypatch.delenv("AOMSCOPE_MAX_DATA_GB")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InputError, match="image too large to decode"):
        load_dataset(f"imagefolder:{folder}")
