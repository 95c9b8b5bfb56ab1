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
    monkeypatch.setenv("AOMSCOPE_MAX_DATA_GB", str(64 * 64 / 2 / 2**30))  # a folder streams: each image is checked
    with pytest.raises(InputError, match=r"a/0.png declares 64×64 L = 4.0 KB"):
        load_dataset(f"imagefolder:{folder}")
    monkeypatch.delenv("AOMSCOPE_MAX_DATA_GB")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(InputError, match="image too large to decode"):
        load_dataset(f"imagefolder:{folder}")


def npz(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_pixels_are_scaled_by_their_range_or_refused(tmp_path):
    y = np.array([0, 1, 0, 1])
    x = np.array([0, 64, 128, 255], np.float32).reshape(4, 1, 1).repeat(4, 1).repeat(4, 2)
    data = load_dataset(npz(tmp_path / "f255.npz", x=x, y=y))
    assert data.transform(data.images).max().item() == 1.0 and data.scale == 1 / 255
    assert data.notes == ("x holds float32 values in [0, 255]: read as 8-bit pixels (divided by 255)",)
    assert "notes" in data.identity()
    with pytest.raises(InputError, match="found x int8 with min -128, max 127"):
        load_dataset(npz(tmp_path / "i8.npz", x=np.array([-128, 0, 5, 127], np.int8).reshape(4, 1, 1), y=y))
    with pytest.raises(InputError, match="pixel values out of range"):
        load_dataset(npz(tmp_path / "norm.npz", x=x / 128 - 1, y=y))
    wide = load_dataset(npz(tmp_path / "u16.npz", x=(x * 257).astype(np.uint16), y=y))
    assert wide.transform(wide.images).amax((1, 2, 3)).tolist() == pytest.approx([0, 64 / 255, 128 / 255, 1])
    assert "notes" not in load_dataset("digits").identity()


def test_labels_and_class_names_are_read_as_stored(tmp_path):
    x = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(InputError, match=r"found min 0, max 9223372036854775813 \(dtype uint64\)"):
        load_dataset(npz(tmp_path / "u64.npz", x=x, y=np.array([0, 1, 0, 2**63 + 5], np.uint64),
                         classes=np.array(["a", "b"])))
    with pytest.raises(InputError, match=r"expected integers in \[0, 3\]"):
        load_dataset(npz(tmp_path / "u64b.npz", x=x, y=np.array([0, 1, 0, 2**63 + 5], np.uint64)))
    with pytest.raises(InputError, match="classes must be a 1-D array of names.*found a single string 'ab'"):
        load_dataset(npz(tmp_path / "c0.npz", x=x, y=np.array([0, 1, 0, 1]), classes=np.array("ab")))


def test_image_folders_read_what_a_person_sees(tmp_path):
    folder = two_classes(tmp_path / "f")
    for hidden in (".git", ".ipynb_checkpoints", "__MACOSX"):
        png(folder / hidden / "0.png", np.zeros((8, 8), np.uint8))
    (folder / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    assert load_dataset(f"imagefolder:{folder}").classes == ["a", "b"]
    os.symlink(folder / "a", folder / "a" / "loop")
    with pytest.raises(InputError, match="a folder is reached twice"):
        load_dataset(f"imagefolder:{folder}")
    deep = tmp_path / "deep"
    for i, cls in enumerate(("a", "b")):
        for j in range(2):
            path = deep / cls / f"{j}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 6), 1000 * (2 * i + j + 1), np.uint16)).save(path)
    data = load_dataset(f"imagefolder:{deep}")
    x, _ = next(data.batches(8))
    assert x.shape == (4, 1, 4, 6) and x.amax((1, 2, 3)).tolist() == pytest.approx(
        [v / 65535 for v in (1000, 2000, 3000, 4000)])
    assert data.notes == ("16-bit images: pixels divided by 65535",)
    mixed = two_classes(tmp_path / "m")
    png(mixed / "b" / "rgb.png", np.zeros((8, 8, 3), np.uint8))
    data = load_dataset(f"imagefolder:{mixed}")
    assert data.input_shape == (3, 8, 8) and len(data) == 5 and "grayscale and RGB images mixed" in data.notes[0]
    split = tmp_path / "s"
    two_classes(split / "train")
    two_classes(split / "test")
    png(split / "test" / "c" / "0.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"found train \['a', 'b'\], test \['a', 'b', 'c'\]"):
        load_dataset(f"imagefolder:{split}")


def test_non_square_channels_last_images_work_end_to_end(tmp_path):
    import torch

    from aomcore import build_model, compute_maps

    x = np.random.default_rng(0).integers(0, 256, (6, 8, 12, 3), dtype=np.uint8)  # (N, H, W, C)
    data = load_dataset(npz(tmp_path / "wide.npz", x=x, y=np.arange(6) % 2))
    assert data.input_shape == (3, 8, 12) and "transposed to (N, C, H, W)" in data.notes[0]
    assert torch.equal(data.images[1, 2], torch.from_numpy(x[1, :, :, 2]))
    maps = compute_maps(build_model("zoo:digits_net", 2, data.input_shape), data, ["conv1"], device="cpu")
    assert maps["conv1"].counts.shape == (8, 2, 8, 12)


def test_devices_sizes_and_full_disks_are_messages(tmp_path, monkeypatch):
    import errno

    import aomcore.base.atomic
    from aomcore import Preprocessing, build_model, resolve_device, save_state_dict

    for name in ("xyz", "mps", "cuda:99"):
        with pytest.raises(InputError, match="no such device here: expected --device auto | cpu"):
            resolve_device(name)
    with pytest.raises(InputError, match=r"zoo:digits_net \(921,600,001,962 values\) is too large to allocate"):
        build_model("zoo:digits_net", 10, (1, 60000, 60000))
    with pytest.raises(InputError, match="one 3×60000×60000 float32 input image is too large"):
        load_dataset("digits", preprocessing=Preprocessing(channels=3, resize=60000))
    with pytest.raises(InputError, match="a NUL character in a path"):
        load_dataset(f"npz:{tmp_path}/a\x00b.npz")
    with pytest.raises(InputError, match="torchvision:raft_small is not an image classifier"):
        build_model("torchvision:raft_small", 10, (3, 32, 32))

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(aomcore.base.atomic.os, "replace", full)
    with pytest.raises(InputError, match="cannot write w.pt: .*No space left on device"):
        save_state_dict(build_model("zoo:digits_net", 10, (1, 8, 8)), tmp_path / "w.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_cifar_batch_is_a_message(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({"data": np.zeros((1, 100), np.uint8), "labels": [0]}))
    with pytest.raises(InputError, match="CIFAR-10 file malformed.*found test_batch: ValueError"):
        load_dataset("cifar10", "test", data_root=tmp_path)
